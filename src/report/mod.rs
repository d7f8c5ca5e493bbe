//! `bpsc report SUBMIT... [-o report.html] [--json]`: a campaign report an operator would
//! rather look at than read.  One self-contained HTML file (inline CSS and SVG, no script,
//! no network: a Content-Security-Policy forbids scripts and every external resource),
//! readable on a laptop and printable; or `--json`, the same data from the same code.
//!
//! # Sources
//!
//! Several submit directories of one campaign (the original and its restarts) make one
//! history.  Each directory's `restart.of` is followed back, so naming the latest restart
//! is enough; the directories are ordered oldest first.  Per directory ([`collect`]):
//! `bpsc status`'s collected report (task tables, provenance records and the engine's own
//! state, so a job's state is the one `bpsc status` gives, on every engine), every
//! provenance record (one per attempt), the parents of every job in the task tables (the
//! step graph, so the report needs neither the campaign file nor a compile) and the
//! `resources` of one job line per step (what was requested).  A job in several runs (the
//! same id) is one job, in its state in the latest run holding it; its attempts over all
//! runs are its *tries* (try 2 or later is a retry, whether the engine retried it or a
//! restart did).  The requested resources are the latest run's (a restart may change them).
//!
//! # What it shows
//!
//! The campaign's state and totals; per step a progress bar (succeeded / failed / skipped /
//! running / pending) and the step graph as SVG; a timeline of attempts per step, coloured
//! by outcome, retries outlined and restarts marked; per step the distribution of wall time
//! and peak memory (quantiles and histograms) against the request, with right-sizing
//! hints written as settings to paste ([`hint`]); failures (data ID, exit code or signal,
//! host, run, attempt and try, log path, error) with counts by exit status and by step,
//! and the hosts with the most failures; the provenance summary (software, environment
//! digests, input and output files and bytes per dataset) and each run's configuration
//! (campaign file, `--set`s, restart options, hosts avoided).
//!
//! # Large campaigns
//!
//! The data is aggregated before anything is drawn, so the page is bounded whatever the
//! campaign's size ([`Limits`]):
//! - the timeline draws every attempt up to 3,000 attempts; beyond that each step's lane
//!   is binned: 200 time bins, each holding the mean number of attempts running in it per
//!   outcome (a stacked area);
//! - per step, wall time and peak memory are quantiles (min, median, p90, p95, p99, max)
//!   and 30-bin histograms, never the values;
//! - failures: at most 200 rows (jobs still failed first), with complete counts by exit
//!   status and by step, and the number not listed; at most 20 hosts and software lines.
//!
//! So the HTML of a 1M-job campaign is a few hundred kilobytes; reading its million
//! records is what takes the time (measured in the README).
//!
//! # Escaping
//!
//! Every value from a submit directory (data IDs, hosts, job ids, commands, errors, log
//! paths, software) is escaped by one function, [`svg::esc`], in text and attributes
//! alike; no value becomes a tag, an attribute name, a URL or a style.
//!
//! # Exit status
//!
//! 0 written; 2 usage or I/O error (not a submit directory, directories of different
//! campaigns, output not writable).  The campaign's own state is in the report, not in the
//! exit status (`bpsc status` gives that).
//!
//! # `--json` (`"bpsc_report": 1`)
//!
//! The [`model::ReportData`] value: `campaign`, `state`, `runs[]`, `totals`, `steps[]`
//! (counts, `requested`, `wall_seconds` / `peak_rss_mib` quantiles, histograms, `hints[]`
//! with `paste`), `graph` (`nodes`, `levels`, `edges` as step indices), `timeline`
//! (`mode` `attempts` or `binned`, `lanes[]`), `failures` (`rows[]`, `not_shown`,
//! `by_step`, `by_code`), `hosts[]`, `provenance`, `limits`, `unreadable`.

pub mod aggregate;
pub mod collect;
pub mod hint;
pub mod html;
pub mod model;
pub mod svg;

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::submitdir::exit::{OK as EXIT_OK, USAGE as EXIT_USAGE};

pub use model::ReportData;

/// Where aggregation starts (see the module docs).
#[derive(Clone, Debug, serde::Serialize)]
pub struct Limits {
    /// Up to this many attempts the timeline draws each; beyond, it is binned.
    pub timeline_attempts: usize,
    pub timeline_bins: usize,
    /// Rows of the failures table.
    pub failure_rows: usize,
    /// Hosts (and software lines) listed.
    pub hosts: usize,
    pub hist_bins: usize,
    /// Rows of concurrent attempts drawn per lane in the detailed timeline.
    pub lane_rows: usize,
    /// Lines of "could not read".
    pub unreadable: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { timeline_attempts: 3000, timeline_bins: 200, failure_rows: 200, hosts: 20, hist_bins: 30, lane_rows: 14, unreadable: 30 }
    }
}

/// Options of `bpsc report`.
#[derive(Clone, Debug, Default)]
pub struct ReportArgs {
    pub submits: Vec<PathBuf>,
    /// Output file; `-` for standard output.  Default: `report.html`, or standard output
    /// with `--json`.
    pub out: Option<PathBuf>,
    pub json: bool,
}

/// Collect and aggregate the report of the given submit directories.
pub fn build(submits: &[PathBuf], limits: &Limits) -> Result<ReportData, String> {
    if submits.is_empty() {
        return Err("no submit directory given".into());
    }
    let h = collect::collect(submits)?;
    Ok(aggregate::aggregate(&h, limits))
}

/// The JSON text of the report.
pub fn to_json(d: &ReportData) -> String {
    serde_json::to_string_pretty(d).unwrap_or_default() + "\n"
}

/// Write `bytes` to `path` atomically (a temporary file beside it, then a rename).
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "report".into());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// `bpsc report SUBMIT... [-o FILE] [--json]`.
pub fn run(a: &ReportArgs, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let d = match build(&a.submits, &Limits::default()) {
        Ok(d) => d,
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            return EXIT_USAGE;
        }
    };
    let text = if a.json { to_json(&d) } else { html::render(&d) };
    let target = a.out.clone().or_else(|| (!a.json).then(|| PathBuf::from("report.html")));
    match target {
        Some(p) if p.as_os_str() != "-" => {
            if let Err(e) = write_atomic(&p, text.as_bytes()) {
                let _ = writeln!(err, "error: {}: {e}", p.display());
                return EXIT_USAGE;
            }
            let _ = writeln!(
                err,
                "wrote {} ({} bytes): campaign {} {}, {} jobs, {} attempts over {} run{}",
                p.display(),
                text.len(),
                d.campaign,
                d.state,
                d.totals.jobs,
                d.totals.attempts,
                d.runs.len(),
                if d.runs.len() == 1 { "" } else { "s" }
            );
        }
        _ => {
            if let Err(e) = out.write_all(text.as_bytes()) {
                let _ = writeln!(err, "error: {e}");
                return EXIT_USAGE;
            }
        }
    }
    EXIT_OK
}
