//! The `bpsc` command line.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use bpsc::check::Options;

/// mimalloc: the compiler allocates many small nodes; glibc's malloc/free was a third of
/// all instructions when checking a 20,000-line file.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use bpsc::cli;
use bpsc::fs::RealFs;

#[derive(Parser)]
#[command(name = "bpsc", version, about = "Batch production workflow compiler: .bps campaigns to Pegasus, HTCondor, Slurm and Nextflow")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Format {
    Human,
    Json,
    Sarif,
    Junit,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Deny {
    Warnings,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Color {
    Auto,
    Always,
    Never,
}

#[derive(Subcommand)]
enum Cmd {
    /// Check campaign files; exit 0 when clean, 1 on errors, 2 on usage or I/O problems.
    Check {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
        /// `--deny warnings` makes warnings fail the check.
        #[arg(long, value_enum)]
        deny: Option<Deny>,
        /// Override a setting: KEY=VALUE or STEP.KEY=VALUE.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        #[arg(long, value_enum, default_value = "auto")]
        color: Color,
        /// Also lower each campaign and report what this engine cannot express (W801, E801).
        #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(bpsc::backend::NAMES))]
        backend: Option<String>,
    },
    /// Print the resolved settings of every step.
    Config {
        file: PathBuf,
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
        /// Print the override chain of one setting: STEP.KEY.
        #[arg(long, value_name = "STEP.KEY")]
        explain: Option<String>,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        /// Campaign to resolve for (default: the only one).
        #[arg(long)]
        campaign: Option<String>,
    },
    /// Explain a diagnostic code, with an example.  Without a code, list all codes.
    Explain { code: Option<String> },
    /// Compile a campaign into a submit directory (or the IR).
    Compile {
        file: PathBuf,
        /// Engine to compile for (default: the `backend` of the campaign's site).
        #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(bpsc::backend::NAMES))]
        backend: Option<String>,
        /// Write the IR instead of a submit directory.
        #[arg(long, value_enum, conflicts_with = "backend")]
        emit: Option<Emit>,
        /// Output directory (written atomically; an existing one needs --force).
        #[arg(short = 'o', long = "out", required_unless_present = "emit")]
        out: Option<PathBuf>,
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Run one job of a submit directory (what every engine's job executes).
    Wrap {
        submit: PathBuf,
        #[arg(long)]
        group: String,
        #[arg(long)]
        index: u64,
        /// Attempt number (default: one more than the provenance records of the job).
        #[arg(long)]
        attempt: Option<u32>,
        /// Do not run when a parent's latest provenance record is missing or failed: record
        /// the job as skipped and exit 79 (for engines whose dependencies fire on any end).
        #[arg(long)]
        skip_failed_parents: bool,
    },
    /// Format campaign files in the canonical style (in place; `-` filters standard input).
    Fmt {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Write nothing; list the files that would change and exit 1 if there are any.
        #[arg(long)]
        check: bool,
    },
    /// Run the language server on standard input and output (for editors).
    Lsp,
    /// Generate a synthetic survey campaign (for benchmarks).
    #[command(hide = true)]
    Synth {
        #[arg(long, required_unless_present = "lines")]
        jobs: Option<u64>,
        #[arg(short = 'o', long = "out")]
        out: PathBuf,
        /// Instead: write one long campaign file of about this many lines.
        #[arg(long)]
        lines: Option<usize>,
    },
    /// Where a campaign stands: jobs per step and state, failures, hosts.  Exit 0 done,
    /// 1 failed, 2 usage, 3 running, 4 running with failures.
    Status {
        submit: PathBuf,
        /// JSON for programs (schema: `bpsc_status` 1, see the status module docs).
        #[arg(long)]
        json: bool,
        /// Refresh until the campaign ends, with a progress bar per step; fire notifications.
        #[arg(long)]
        watch: bool,
        /// Seconds between refreshes with --watch.
        #[arg(long, default_value = "30")]
        interval: f64,
        /// Notifications with --watch: `auto` fires the events the engine has no native hook for.
        #[arg(long, value_enum, default_value = "auto")]
        notify: NotifyMode,
        #[arg(long, hide = true)]
        max_refreshes: Option<u64>,
    },
    /// The provenance store (SQLite): ingest records, query them, compare campaigns.
    Provenance {
        #[command(subcommand)]
        cmd: ProvCmd,
    },
    /// Write a new submit directory with only what is left to do (failed and never-run jobs,
    /// plus what --from / --data-ids designate); succeeded quanta are never run again.
    Restart {
        submit: PathBuf,
        /// Run this step and everything downstream of it again (repeatable, or A,B).
        #[arg(long)]
        from: Vec<String>,
        /// CSV of data IDs to run again (header: dimension names, optionally `step`).
        #[arg(long, value_name = "FILE")]
        data_ids: Option<PathBuf>,
        /// Override a setting for the restart: KEY=VALUE or STEP.KEY=VALUE.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        /// New submit directory (default: SUBMIT.restartN).
        #[arg(short = 'o', long = "out")]
        out: Option<PathBuf>,
        #[arg(long)]
        force: bool,
        /// Hosts with at least this many failed attempts go to avoid_hosts (0: never).
        #[arg(long, default_value = "3")]
        host_failures: u64,
        /// ... and at least this share of the host's attempts failed.
        #[arg(long, default_value = "0.5")]
        host_failure_rate: f64,
        /// The campaign file (default: the one recorded in bpsc.json).
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// A self-contained HTML report of a campaign (the original submit directory and its
    /// restarts as one history): progress, step graph, timeline, resources against requests
    /// with right-sizing hints, failures, hosts, provenance.  Exit 0 written, 2 usage or I/O.
    Report {
        #[arg(required = true)]
        submits: Vec<PathBuf>,
        /// Output file (`-`: standard output).  Default: report.html; with --json, standard output.
        #[arg(short = 'o', long = "out")]
        out: Option<PathBuf>,
        /// The report's data as JSON (`bpsc_report` 1, see the report module docs).
        #[arg(long)]
        json: bool,
    },
    /// Draw the step graph (with job counts) or the job graph of a small campaign.
    Graph {
        file: PathBuf,
        #[arg(long, value_enum, default_value = "dot")]
        format: GraphFormat,
        #[arg(long, value_enum, default_value = "step")]
        level: GraphLevel,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum NotifyMode {
    Auto,
    All,
    None,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum RowFormat {
    Csv,
    Json,
}

impl RowFormat {
    fn get(self) -> bpsc::provstore::Format {
        match self {
            RowFormat::Csv => bpsc::provstore::Format::Csv,
            RowFormat::Json => bpsc::provstore::Format::Json,
        }
    }
}

#[derive(Subcommand)]
enum ProvCmd {
    /// Load every provenance record of a submit directory (idempotent).
    Ingest {
        submit: PathBuf,
        /// Database file (default: the campaign's, SUBMIT/provenance.sqlite).
        #[arg(long)]
        db: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Ask the store: coverage of a step, what ran on a host, a quantum's history, metrics.
    #[command(group(clap::ArgGroup::new("what").required(true).args(["coverage", "host", "quantum", "job", "metrics"])))]
    Query {
        /// A submit directory (ingested first) or a database file.
        source: PathBuf,
        #[arg(long)]
        db: Option<PathBuf>,
        #[arg(long)]
        campaign: Option<String>,
        #[arg(long, value_enum, default_value = "csv")]
        format: RowFormat,
        /// Data IDs of this step that succeeded.
        #[arg(long, value_name = "STEP")]
        coverage: Option<String>,
        /// Every attempt that ran on this host.
        #[arg(long)]
        host: Option<String>,
        /// The history of one quantum of this step (with --data-id).
        #[arg(long, value_name = "STEP", requires = "data_id")]
        quantum: Option<String>,
        /// `k=v,k=v`: the data ID for --quantum.
        #[arg(long)]
        data_id: Option<String>,
        /// The history of one job.
        #[arg(long)]
        job: Option<String>,
        /// Runtime metrics per step.
        #[arg(long)]
        metrics: bool,
    },
    /// Compare two campaigns: success per data ID, runtime differences.
    Diff {
        a: PathBuf,
        b: PathBuf,
        #[arg(long)]
        a_campaign: Option<String>,
        #[arg(long)]
        b_campaign: Option<String>,
        #[arg(long)]
        step: Option<String>,
        /// One row per step instead of one per data ID.
        #[arg(long)]
        summary: bool,
        #[arg(long, value_enum, default_value = "csv")]
        format: RowFormat,
    },
}

#[derive(clap::Args, Clone, Default)]
struct Common {
    /// Override a setting: KEY=VALUE or STEP.KEY=VALUE.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// Campaign to compile (default: the only one).
    #[arg(long)]
    campaign: Option<String>,
    /// Compile a subset of steps: `A..B` (a range in dependency order) or `A,B`.
    #[arg(long)]
    steps: Option<String>,
    /// Warn when the coverage or a step has more data IDs than this (W701).
    #[arg(long, value_name = "N")]
    coverage_warn: Option<usize>,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Emit {
    /// The IR as JSON Lines (needs -o).
    Ir,
    /// Check and lower only; print counts and phase timings as JSON (writes nothing).
    Summary,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum GraphFormat {
    Dot,
    Mermaid,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum GraphLevel {
    Step,
    Job,
}

fn args(file: PathBuf, c: Common) -> cli::CompileArgs {
    cli::CompileArgs { file, sets: c.sets, campaign: c.campaign, steps: c.steps, coverage_warn: c.coverage_warn }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Cmd::Lsp = cli.cmd {
        // The server's writer thread needs standard output: run it before locking it here.
        return match bpsc::lsp::run_stdio() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: bpsc lsp: {e}");
                ExitCode::from(cli::EXIT_USAGE)
            }
        };
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let code = match cli.cmd {
        Cmd::Check { files, format, deny, sets, color, backend } => {
            let color = match color {
                Color::Always => true,
                Color::Never => false,
                Color::Auto => std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
            };
            let fmt = match format {
                Format::Human => cli::OutFormat::Human { color },
                Format::Json => cli::OutFormat::Json,
                Format::Sarif => cli::OutFormat::Sarif,
                Format::Junit => cli::OutFormat::Junit,
            };
            cli::check_files_for(&RealFs, &files, &Options { sets }, backend.as_deref(), fmt, deny.is_some(), &mut out)
        }
        Cmd::Config { file, format, explain, sets, campaign } => {
            cli::config(&RealFs, &file, &Options { sets }, format == Format::Json, explain.as_deref(), campaign.as_deref(), &mut out)
        }
        Cmd::Explain { code } => cli::explain(code.as_deref(), &mut out),
        Cmd::Fmt { files, check } => cli::fmt_files(&files, check, &mut out, &mut std::io::stderr()),
        Cmd::Lsp => unreachable!("handled before stdout is locked"),
        Cmd::Compile { file, backend, emit, out: dir, force, common } => {
            let a = args(file, common);
            match (emit, dir) {
                (Some(Emit::Summary), _) => cli::compile_summary(&RealFs, &a, &mut out, &mut std::io::stderr()),
                (Some(Emit::Ir), Some(dir)) => cli::compile_ir(&RealFs, &a, &dir, force, &mut std::io::stderr()),
                (None, Some(dir)) => cli::compile_backend(&RealFs, &a, backend.as_deref(), &dir, force, &mut std::io::stderr()),
                (_, None) => {
                    eprintln!("error: -o DIR is required");
                    cli::EXIT_USAGE
                }
            }
        }
        Cmd::Wrap { submit, group, index, attempt, skip_failed_parents } => {
            let code = bpsc::wrap::run(&bpsc::wrap::WrapArgs { submit, group, index, attempt, skip_failed_parents });
            let _ = out.flush();
            std::process::exit(code);
        }
        Cmd::Synth { jobs, out: dir, lines } => {
            let r = match lines {
                Some(n) => bpsc::synth::generate_long_file(&dir, n).map(|_| format!("wrote {} ({n} lines)", dir.display())),
                None => {
                    let shape = bpsc::synth::Shape::for_jobs(jobs.unwrap_or(0));
                    bpsc::synth::generate(&dir, shape).map(|rows| format!("wrote {}: {shape:?}, {rows} overlap rows", dir.display()))
                }
            };
            match r {
                Ok(m) => {
                    eprintln!("{m}");
                    cli::EXIT_OK
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    cli::EXIT_USAGE
                }
            }
        }
        Cmd::Status { submit, json, watch, interval, notify, max_refreshes } => {
            let notify = match notify {
                NotifyMode::Auto => bpsc::status::notify::Mode::Auto,
                NotifyMode::All => bpsc::status::notify::Mode::All,
                NotifyMode::None => bpsc::status::notify::Mode::None,
            };
            let a = bpsc::status::StatusArgs { submit, json, watch, interval, notify, max_refreshes };
            bpsc::status::run(&a, &mut out, &mut std::io::stderr())
        }
        Cmd::Provenance { cmd } => match cmd {
            ProvCmd::Ingest { submit, db, json } => {
                bpsc::provstore::ingest_cmd(&submit, db.as_deref(), json, &mut out, &mut std::io::stderr())
            }
            ProvCmd::Query { source, db, campaign, format, coverage, host, quantum, data_id, job, metrics } => {
                use bpsc::provstore::Query;
                let q = if let Some(step) = coverage {
                    Query::Coverage { step }
                } else if let Some(host) = host {
                    Query::Host { host }
                } else if let Some(step) = quantum {
                    Query::Quantum { step, data_id: data_id.unwrap_or_default() }
                } else if let Some(job) = job {
                    Query::Job { job }
                } else {
                    let _ = metrics;
                    Query::Metrics
                };
                bpsc::provstore::query_cmd(&source, db.as_deref(), campaign.as_deref(), &q, format.get(), &mut out, &mut std::io::stderr())
            }
            ProvCmd::Diff { a, b, a_campaign, b_campaign, step, summary, format } => bpsc::provstore::diff_cmd(
                &a,
                &b,
                a_campaign.as_deref(),
                b_campaign.as_deref(),
                step.as_deref(),
                summary,
                format.get(),
                &mut out,
                &mut std::io::stderr(),
            ),
        },
        Cmd::Restart { submit, from, data_ids, sets, out: dir, force, host_failures, host_failure_rate, file } => {
            let a = bpsc::restart::RestartArgs { submit, from, data_ids, sets, out: dir, force, host_failures, host_failure_rate, file };
            bpsc::restart::run(&a, &mut out, &mut std::io::stderr())
        }
        Cmd::Report { submits, out: file, json } => {
            bpsc::report::run(&bpsc::report::ReportArgs { submits, out: file, json }, &mut out, &mut std::io::stderr())
        }
        Cmd::Graph { file, format, level, common } => cli::graph(
            &RealFs,
            &args(file, common),
            format == GraphFormat::Mermaid,
            level == GraphLevel::Job,
            &mut out,
            &mut std::io::stderr(),
        ),
    };
    let _ = out.flush();
    ExitCode::from(code)
}
