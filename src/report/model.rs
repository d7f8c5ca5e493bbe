//! The report's data: what `--json` prints and what the HTML page draws.  Everything here is
//! already aggregated (bounded in size whatever the campaign's), so both outputs come from
//! one value of [`ReportData`].

use serde::Serialize;

use crate::status::Counts;

/// Version of the JSON document (`"bpsc_report": 1`).
pub const FORMAT_VERSION: u32 = 1;

/// The whole report.
#[derive(Clone, Debug, Serialize)]
pub struct ReportData {
    pub bpsc_report: u32,
    pub campaign: String,
    pub generated_at: String,
    pub bpsc_version: String,
    /// `done`, `failed` or `running`, as `bpsc status` words it, over the whole history.
    pub state: String,
    /// The submit directories, oldest first (the original, then each restart).
    pub runs: Vec<RunInfo>,
    /// Every job of the history, counted once, in its latest state.
    pub totals: Counts,
    pub steps: Vec<StepReport>,
    pub graph: Graph,
    pub timeline: Timeline,
    pub failures: Failures,
    /// Hosts by failed attempts, most first (at most [`super::Limits::hosts`]).
    pub hosts: Vec<HostRow>,
    /// Hosts that ran something, in total.
    pub hosts_total: usize,
    pub provenance: Provenance,
    pub limits: super::Limits,
    /// What could not be read, one sentence each (capped).
    pub unreadable: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct RunInfo {
    pub submit: String,
    pub backend: String,
    pub bpsc_version: String,
    /// The directory this one restarted (`bpsc.json`'s `restart.of`).
    pub restart_of: Option<String>,
    /// The campaign file it was compiled from, and whether it is still there.
    pub campaign_file: Option<String>,
    pub campaign_file_present: bool,
    /// `--set`s of the compile (a restart's include its own).
    pub sets: Vec<String>,
    /// `--from` steps of a restart.
    pub restart_from: Vec<String>,
    pub avoid_hosts_added: Vec<String>,
    /// Jobs of its task tables (joins not counted), and its state as `bpsc status` sees it.
    pub jobs: u64,
    pub state: String,
    pub counts: Counts,
    pub attempts: u64,
    /// First start and last end of its attempts (RFC 3339), when it ran anything.
    pub first_start: Option<String>,
    pub last_end: Option<String>,
}

/// Nearest-rank quantiles.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Quantiles {
    pub n: usize,
    pub min: f64,
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

/// Equal-width bins from `lo` to `hi`.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Histogram {
    pub lo: f64,
    pub hi: f64,
    pub counts: Vec<u64>,
}

/// What the task tables ask for a step's jobs (first attempt; retries may grow memory).
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Requested {
    pub memory_bytes: Option<u64>,
    pub walltime_seconds: Option<u64>,
    pub cpus: Option<u64>,
    pub retries: Option<u64>,
    pub memory_growth: Option<f64>,
}

/// One right-sizing hint: a setting to paste, and why.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Hint {
    /// `memory` or `walltime`.
    pub key: String,
    /// The value as bpsc writes it (`1.5GiB`, `1h30m`).
    pub value: String,
    /// `lower`, `raise` or `keep`.
    pub action: String,
    /// One sentence with the numbers.
    pub evidence: String,
    /// The steps the setting is for (a cluster's hint is for each of its steps).
    pub steps: Vec<String>,
    /// The text to paste into the campaign block (several lines for a cluster's steps), or
    /// empty for `keep`.
    pub paste: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct StepReport {
    pub step: String,
    /// `compute` (a step or a cluster), `stage_in`, `stage_out`, `cleanup`, `provenance`.
    pub kind: String,
    #[serde(flatten)]
    pub counts: Counts,
    /// Jobs that needed more than one attempt (over the whole history).
    pub retried_jobs: u64,
    /// Steps of a cluster's quanta (empty for a plain step).
    pub member_steps: Vec<String>,
    pub requested: Requested,
    pub wall_seconds: Option<Quantiles>,
    pub peak_rss_mib: Option<Quantiles>,
    pub wall_hist: Option<Histogram>,
    pub rss_hist: Option<Histogram>,
    pub hints: Vec<Hint>,
}

/// The step graph: compute steps (and clusters) with their dependencies.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Graph {
    /// Indices into `steps`.
    pub nodes: Vec<usize>,
    /// Longest path from a root, per node.
    pub levels: Vec<u32>,
    /// (parent, child) as indices into `steps`.
    pub edges: Vec<(usize, usize)>,
    /// Where it comes from: `task tables`.
    pub source: String,
}

/// Attempt outcomes, as drawn.
pub const OUTCOMES: [&str; 4] = ["succeeded", "retry_succeeded", "failed", "skipped"];

/// One attempt on the timeline (detailed mode).
#[derive(Clone, Debug, Serialize)]
pub struct TimelineAttempt {
    pub job: String,
    /// Index into `runs`.
    pub run: usize,
    pub attempt: u32,
    /// Tries of the job over the whole history so far (1 = first).
    pub try_number: u32,
    /// Seconds from `timeline.start`.
    pub start: f64,
    pub end: f64,
    /// One of [`OUTCOMES`].
    pub outcome: String,
    pub host: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct TimelineLane {
    /// Index into `steps`.
    pub step: usize,
    pub attempts_total: u64,
    /// Every attempt (detailed mode), start order.
    pub attempts: Vec<TimelineAttempt>,
    /// Binned mode: per bin, the mean number of attempts running, per outcome
    /// (`[succeeded, retry_succeeded, failed, skipped]`).
    pub bins: Vec<[f32; 4]>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Timeline {
    /// `attempts` (every attempt drawn) or `binned` (concurrency per time bin), chosen by
    /// the number of attempts ([`super::Limits::timeline_attempts`]).
    pub mode: String,
    /// First start (RFC 3339) and the span in seconds.
    pub start: Option<String>,
    pub span_seconds: f64,
    pub bin_seconds: f64,
    /// Seconds from `start` at which each run's first attempt started.
    pub run_starts: Vec<Option<f64>>,
    pub lanes: Vec<TimelineLane>,
}

#[derive(Clone, Debug, Serialize)]
pub struct FailureRow {
    pub job: String,
    pub step: String,
    pub data_id: serde_json::Value,
    pub data_id_text: String,
    /// Index into `runs`, the attempt in that run, and the try over the whole history.
    pub run: usize,
    pub attempt: u32,
    pub try_number: u32,
    pub exit_code: Option<i64>,
    pub signal: Option<i64>,
    pub host: Option<String>,
    pub log: Option<String>,
    pub error: Option<String>,
    pub start: Option<String>,
    /// The job's final state: `failed` (still), `succeeded` (a later try worked), ...
    pub final_state: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct CountRow {
    pub what: String,
    pub count: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Failures {
    /// Failed attempts (skips not counted) and jobs whose latest state is failed.
    pub failed_attempts: u64,
    pub failed_jobs: u64,
    /// Rows shown: the failed jobs' latest failed attempts first, then earlier failed
    /// attempts, at most [`super::Limits::failure_rows`].
    pub rows: Vec<FailureRow>,
    /// Failed attempts not listed in `rows`.
    pub not_shown: u64,
    /// Failed attempts per step, and per exit code or signal (`exit 1`, `signal 9`).
    pub by_step: Vec<CountRow>,
    pub by_code: Vec<CountRow>,
}

#[derive(Clone, Debug, Serialize)]
pub struct HostRow {
    pub host: String,
    pub failures: u64,
    pub attempts: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct FileRow {
    /// `in` or `out`.
    pub direction: String,
    pub dataset: String,
    pub files: u64,
    pub bytes: u64,
    /// Files whose record has no size (missing, not measured).
    pub without_size: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Provenance {
    /// Software set-ups (`BPSC_SOFTWARE`) by attempts, most first.
    pub software: Vec<CountRow>,
    /// Distinct environment digests, and the most common ones.
    pub env_digests: usize,
    pub env_digest_top: Vec<CountRow>,
    /// Files read and written by succeeded attempts, per dataset.
    pub files: Vec<FileRow>,
    pub inputs_files: u64,
    pub inputs_bytes: u64,
    pub outputs_files: u64,
    pub outputs_bytes: u64,
    /// Attempts with a record, over every run.
    pub records: u64,
}
