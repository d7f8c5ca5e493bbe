//! `bpsc status SUBMIT_DIR`: where a campaign stands, the same way on every engine.
//!
//! # Sources
//!
//! The task tables (`tasks/*.jsonl`) say which jobs exist and which step and data ID each
//! runs.  The provenance records (`provenance/JOB.ATTEMPT.json`, one per attempt, written by
//! `bpsc wrap`) are the ground truth for succeeded and failed attempts.  The engine's own
//! state adds what the records cannot know: which jobs are pending, running or will never
//! run (skipped, pruned after a failure).  Per engine (`bpsc.json`'s `backend`):
//!
//! | engine | what is read | module |
//! |---|---|---|
//! | htcondor | `workflow.dag.rescueNNN`, `workflow.dag.status` (NODE_STATUS_FILE), `workflow.dag.dagman.out`, `workflow.dag.jobstate.log`, `workflow.dag.nodes.log`, `workflow.dag.metrics` | [`htcondor`] |
//! | slurm | `slurm/jobids` + `slurm/arrays.tsv` (from `submit.sh`), then `sacct -D --parsable2` and `squeue -r` for those ids | [`slurm`] |
//! | pegasus | the newest `braindump.yml` under `SUBMIT/pegasus/` and the `jobstate.log` of that run | [`pegasus`], [`jobstate`] |
//! | nextflow | `nextflow/trace.tsv` (or `trace.txt`) | [`nextflow`] |
//!
//! Parsers tolerate files still being written (a partial last line or event is left for
//! the next look) and list what they could not read under `unreadable`.
//!
//! # A job's state
//!
//! 1. its latest record succeeded: **succeeded**;
//! 2. else the engine says it is running, or pending (queued, held, waiting for a retry):
//!    **running** / **pending**;
//! 3. else its latest record says skipped (`bpsc wrap --skip-failed-parents`): **skipped**;
//!    failed: **failed**;
//! 4. else, no record: the engine's word (failed: **failed**; futile, dependency never
//!    satisfied, cancelled before starting: **skipped**; an engine "success" without a
//!    record counts as **failed**, "no provenance record", since the record is the proof);
//! 5. else nothing is known: **pending**, or **skipped** (never ran) once the engine has
//!    finished.  With no engine source at all, a wrapper log for the next attempt without
//!    its record means **running**.
//! 6. after a `bpsc cancel` (recorded in `operations.jsonl`), every job that had not
//!    succeeded is **cancelled**, except a failure that ended before the cancel.
//!
//! A job the engine holds (`scontrol hold`, `condor_hold`) is **held**.
//!
//! # The campaign's state
//!
//! | state | when |
//! |---|---|
//! | `compiled` | never submitted: no `bpsc submit` recorded and no engine file or id found |
//! | `cancelled` | `bpsc cancel` removed it, and some job had not succeeded |
//! | `held` | `bpsc hold` paused it (until `bpsc release`), or every unfinished job is held |
//! | `running` | jobs pending, running or held, none failed (`running` with failures: exit 4) |
//! | `done` | every job succeeded |
//! | `failed` | nothing left to run, and some job failed or was skipped |
//!
//! Join jobs (no-op barriers) are bookkeeping, not work: they are not counted.
//!
//! # Exit status
//!
//! | status | meaning |
//! |---|---|
//! | 0 | done: every job succeeded |
//! | 1 | failed: nothing left to run, and some job failed or was skipped |
//! | 2 | usage or I/O error (not a submit directory) |
//! | 3 | running: jobs pending or running, no failure so far |
//! | 4 | running, with failures already |
//! | 5 | held |
//! | 6 | cancelled |
//! | 7 | compiled, never submitted |
//!
//! `--watch` ends on `done`, `failed`, `cancelled` and `compiled`, not on `held`.
//!
//! # `--json` schema (`"bpsc_status": 1`)
//!
//! ```text
//! {
//!   "bpsc_status": 1,
//!   "submit": "PATH", "campaign": "NAME", "backend": "htcondor|slurm|pegasus|pegasus-dax|nextflow",
//!   "state": "compiled" | "running" | "held" | "cancelled" | "done" | "failed",
//!   "exit_code": 0 | 1 | 3 | 4 | 5 | 6 | 7,
//!   "submitted": bool, "submissions": N, "held_since": "RFC 3339"|null,
//!   "cancelled_at": "RFC 3339"|null, "priority": N|null,   // from operations.jsonl
//!   "finished": bool,                     // the engine has ended (or every job is final)
//!   "engine": {"name": "...", "finished": bool|null, "failed": bool|null, "events": N,
//!              "sources": ["file or command", ...], "unmapped_jobs": N},
//!   "totals": COUNTS,
//!   "steps": [{"step": "NAME", "kind": "compute|stage_in|stage_out|cleanup|provenance", ...COUNTS,
//!              "wall_seconds": DIST|null, "peak_rss_mib": DIST|null}],
//!   "failed": [{"job": "ID", "step": "NAME", "data_id": {...}|null, "data_id_text": "k=v, ...",
//!               "quanta": N, "exit_code": N|null, "signal": N|null, "host": "H"|null,
//!               "attempts": N, "log": "PATH"|null, "error": "TEXT"|null}],
//!   "hosts": [{"host": "H", "failures": N, "attempts": N}],   // most failures first
//!   "slow": [{"job": "ID", "step": "NAME", "running_seconds": S}],  // over notify.slow_after
//!   "unreadable": ["what could not be read", ...]
//! }
//! COUNTS = {"jobs": N, "pending": N, "running": N, "succeeded": N, "failed": N,
//!           "skipped": N, "held": N, "cancelled": N, "attempts": N}   // attempts: provenance records
//! DIST   = {"n": N, "min": X, "median": X, "p90": X, "max": X}
//! ```
//!
//! Wall time and peak memory distributions are over the latest recorded attempt of each
//! job of the step (peak memory: the wrapper's peak RSS of the payload, in MiB).

pub mod notify;

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::backend::{EState, EngineJob, EngineState, JobName};
use crate::submitdir::records::{self, Record};
use crate::submitdir::Meta;
use serde_json::{json, Value};

pub use crate::submitdir::exit::{
    STATUS_CANCELLED as EXIT_CANCELLED, STATUS_DONE as EXIT_DONE, STATUS_FAILED as EXIT_FAILED, STATUS_HELD as EXIT_HELD,
    STATUS_NOT_SUBMITTED as EXIT_NOT_SUBMITTED, STATUS_RUNNING as EXIT_RUNNING, STATUS_RUNNING_WITH_FAILURES as EXIT_RUNNING_WITH_FAILURES,
    STATUS_USAGE as EXIT_USAGE,
};
use crate::submitdir::operations::{self, Control};

/// A job of the task tables.
#[derive(Clone, Debug)]
pub struct JobInfo {
    pub id: String,
    pub kind: &'static str,
    pub index: u64,
    /// Index into [`Tables::labels`]: the step (or cluster, or inserted kind).
    pub label: u32,
    /// Data ID of the first quantum (compute jobs), as compact JSON.
    pub data_id: Option<Box<str>>,
    pub quanta: u32,
}

impl JobInfo {
    /// The data ID as JSON (null for jobs without quanta).
    pub fn data_value(&self) -> Value {
        self.data_id.as_deref().and_then(|d| serde_json::from_str(d).ok()).unwrap_or(Value::Null)
    }
}

fn kind_str(k: &str) -> &'static str {
    match k {
        "compute" => "compute",
        "stage_in" => "stage_in",
        "stage_out" => "stage_out",
        "cleanup" => "cleanup",
        "join" => "join",
        "provenance" => "provenance",
        _ => "other",
    }
}

/// Every job of a submit directory.
#[derive(Clone, Debug, Default)]
pub struct Tables {
    pub jobs: Vec<JobInfo>,
    pub by_id: HashMap<String, u32>,
    /// Group -> job of each index.
    pub by_group: HashMap<String, Vec<u32>>,
    /// Step (or cluster, or kind) names, in campaign order, with their kind.
    pub labels: Vec<(String, String)>,
}

/// The inserted kinds, in the order they are shown after the steps.
const INSERTED: &[&str] = &["stage_in", "stage_out", "cleanup", "provenance"];

/// Read bpsc.json and the task tables.
pub fn read_tables(submit: &Path, meta: &Meta, notes: &mut Vec<String>) -> Tables {
    let mut t = Tables::default();
    let mut label_of: HashMap<(String, String), u32> = HashMap::new();
    // Steps first, in bpsc.json order, so the table reads in campaign order.
    for s in &meta.steps {
        label_of.insert(("compute".into(), s.name.clone()), t.labels.len() as u32);
        t.labels.push((s.name.clone(), "compute".into()));
    }
    let mut pending_labels: Vec<(String, String)> = Vec::new();
    let n = records::for_each_task(submit, |g, i, line| {
        let label_name = match line.kind.as_str() {
            "compute" => {
                let first = line.quanta.first().map(|q| q.step.clone()).unwrap_or_default();
                if line.quanta.iter().all(|q| q.step == first) {
                    first
                } else {
                    line.cluster.clone().unwrap_or(first)
                }
            }
            k => k.to_string(),
        };
        let kind = if line.kind == "compute" { "compute".to_string() } else { line.kind.clone() };
        let key = (kind.clone(), label_name.clone());
        let label = match label_of.get(&key) {
            Some(l) => *l,
            None => {
                let l = (t.labels.len() + pending_labels.len()) as u32;
                pending_labels.push((label_name, kind));
                label_of.insert(key, l);
                l
            }
        };
        let j = t.jobs.len() as u32;
        t.by_id.insert(line.id.clone(), j);
        let v = t.by_group.entry(g.to_string()).or_default();
        if v.len() as u64 == i {
            v.push(j);
        }
        t.jobs.push(JobInfo {
            id: line.id,
            kind: kind_str(&line.kind),
            index: i,
            label,
            data_id: line.quanta.first().map(|q| records::data_id_key(&q.data_id).into_boxed_str()),
            quanta: line.quanta.len() as u32,
        });
    });
    notes.extend(n);
    t.labels.extend(pending_labels);
    // Order: steps (campaign order), clusters, then inserted kinds in a fixed order.
    let rank = |(name, kind): &(String, String)| -> (usize, usize) {
        match INSERTED.iter().position(|k| k == kind) {
            Some(p) => (2, p),
            None if kind == "join" => (3, 0),
            None => (if meta.steps.iter().any(|s| s.name == *name) { 0 } else { 1 }, 0),
        }
    };
    let mut order: Vec<u32> = (0..t.labels.len() as u32).collect();
    order.sort_by_key(|&l| (rank(&t.labels[l as usize]), l));
    let mut new_of = vec![0u32; order.len()];
    for (new, &old) in order.iter().enumerate() {
        new_of[old as usize] = new as u32;
    }
    t.labels = order.iter().map(|&l| t.labels[l as usize].clone()).collect();
    for j in &mut t.jobs {
        j.label = new_of[j.label as usize];
    }
    t
}

/// One job's merged state.
#[derive(Clone, Debug, Default)]
pub struct JobStatus {
    pub state: Option<EState>,
    pub attempts: u32,
    pub exit_code: Option<i64>,
    pub signal: Option<i64>,
    pub host: Option<String>,
    pub log: Option<String>,
    pub error: Option<String>,
    /// Start of the running attempt (epoch seconds).
    pub started: Option<f64>,
    pub wall: Option<f64>,
    pub rss_kib: Option<u64>,
}

#[derive(Clone, Copy, Debug, Default, serde::Serialize, PartialEq, Eq)]
pub struct Counts {
    pub jobs: u64,
    pub pending: u64,
    pub running: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub skipped: u64,
    pub held: u64,
    pub cancelled: u64,
    pub attempts: u64,
}

impl Counts {
    fn add(&mut self, s: EState, attempts: u32) {
        self.jobs += 1;
        self.attempts += attempts as u64;
        match s {
            EState::Pending => self.pending += 1,
            EState::Running => self.running += 1,
            EState::Succeeded => self.succeeded += 1,
            EState::Failed => self.failed += 1,
            EState::Skipped => self.skipped += 1,
            EState::Held => self.held += 1,
            EState::Cancelled => self.cancelled += 1,
        }
    }
    pub fn finished(&self) -> u64 {
        self.succeeded + self.failed + self.skipped + self.cancelled
    }
    /// Jobs that may still run: pending, running or held.
    pub fn unfinished(&self) -> u64 {
        self.pending + self.running + self.held
    }
}

#[derive(Clone, Debug, serde::Serialize, PartialEq)]
pub struct Dist {
    pub n: usize,
    pub min: f64,
    pub median: f64,
    pub p90: f64,
    pub max: f64,
}

/// Nearest-rank quantiles.
pub fn dist(mut v: Vec<f64>) -> Option<Dist> {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let q = |p: f64| v[(((v.len() as f64) * p).ceil() as usize).clamp(1, v.len()) - 1];
    Some(Dist { n: v.len(), min: v[0], median: q(0.5), p90: q(0.9), max: v[v.len() - 1] })
}

/// What status keeps of a job's latest record.
#[derive(Clone, Debug)]
struct Latest {
    attempt: u32,
    succeeded: bool,
    skipped: bool,
    exit_code: Option<i64>,
    signal: Option<i64>,
    host: Option<String>,
    log: Option<String>,
    error: Option<String>,
    seconds: Option<f64>,
    rss_kib: Option<u64>,
    /// End of the attempt (epoch seconds).
    end: Option<f64>,
}

impl From<Record> for Latest {
    fn from(r: Record) -> Latest {
        Latest {
            attempt: r.attempt,
            succeeded: r.succeeded(),
            skipped: r.skipped,
            exit_code: r.exit_code,
            signal: r.signal,
            host: r.host,
            log: r.log.err.or(r.log.out),
            error: r.error,
            seconds: r.seconds,
            rss_kib: r.peak_rss_kib.and_then(|k| u64::try_from(k).ok()),
            end: r.end.as_deref().and_then(crate::backend::state::utc_epoch),
        }
    }
}

/// The whole picture.
#[derive(Clone, Debug)]
pub struct Report {
    pub submit: PathBuf,
    pub campaign: String,
    pub backend: String,
    pub meta: Meta,
    pub tables: Tables,
    pub jobs: Vec<JobStatus>,
    pub engine: EngineState,
    pub unmapped: u64,
    pub finished: bool,
    pub totals: Counts,
    pub steps: Vec<Counts>,
    /// host -> (failed attempts, attempts)
    pub hosts: BTreeMap<String, (u64, u64)>,
    pub unreadable: Vec<String>,
    pub slow_after: Option<u64>,
    pub now: f64,
    /// What `operations.jsonl` says: submitted, held, cancelled, priority.
    pub control: Control,
    /// No submission recorded and nothing of the engine found.
    pub never_submitted: bool,
}

/// The engine's state, by backend.
pub fn harvest_engine(submit: &Path, backend: &str) -> EngineState {
    match crate::backend::find(backend) {
        Some(e) => e.harvest(submit),
        None => {
            let mut st = EngineState::new(backend);
            st.unreadable.push(format!("no harvester for backend `{backend}`"));
            st
        }
    }
}

fn now_epoch() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// Build the report of a submit directory.
pub fn collect(submit: &Path) -> Result<Report, String> {
    let meta = Meta::read(submit)?;
    let backend = meta.backend.clone();
    // Never submitted: no engine to ask (the Slurm harvester would say so; the others find
    // no files either), and its own state.
    let engine = harvest_engine(submit, &backend);
    Ok(collect_with(submit, meta, engine))
}

/// Build the report from an already harvested engine state (tests pass their own).
pub fn collect_with(submit: &Path, meta: Meta, engine: EngineState) -> Report {
    let (ops, mut unreadable) = operations::read(submit);
    let control = Control::of(&ops);
    let nothing_of_the_engine = !control.is_submitted() && engine.sources.is_empty();
    let cancelled_at = control.cancelled_at.as_deref().and_then(crate::backend::state::utc_epoch);
    let epoch = |t: &Option<String>| t.as_deref().and_then(crate::backend::state::utc_epoch);
    let stops: Vec<(f64, f64)> =
        control.stops.iter().filter_map(|(a, b)| Some((epoch(&Some(a.clone()))?, epoch(b).unwrap_or(f64::INFINITY)))).collect();
    // A failure that ended while `hold --now` stopped the running jobs was bpsc's doing.
    let stopped = |end: Option<f64>| end.is_some_and(|e| stops.iter().any(|(a, b)| e >= *a && e <= *b));
    let tables = read_tables(submit, &meta, &mut unreadable);
    let n = tables.jobs.len();
    // Latest record of each job (what status shows of it), and per-host attempt counts.
    let mut latest: Vec<Option<Latest>> = vec![None; n];
    let mut counts: Vec<u32> = vec![0; n];
    let mut hosts: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut orphans = 0u64;
    unreadable.extend(records::for_each_record(submit, |r, _| {
        let Some(&j) = tables.by_id.get(&r.job_id) else {
            // The user's final job is run by the provenance job, not a table job.
            orphans += u64::from(!r.is_final_job());
            return;
        };
        let j = j as usize;
        counts[j] += 1;
        if !r.skipped {
            let h = hosts.entry(r.host.clone().unwrap_or_else(|| "unknown".into())).or_default();
            h.1 += 1;
            if !r.succeeded() {
                h.0 += 1;
            }
        }
        if latest[j].as_ref().is_none_or(|l| r.attempt >= l.attempt) {
            latest[j] = Some(Latest::from(r));
        }
    }));
    if orphans > 0 {
        unreadable.push(format!("{orphans} provenance records of jobs not in the task tables"));
    }
    // Engine jobs by bpsc job.
    let mut ejob: Vec<Option<&EngineJob>> = vec![None; n];
    let mut unmapped = 0u64;
    let eng = crate::backend::find(&engine.engine);
    for (name, ej) in &engine.jobs {
        let known = |s: &str| tables.by_id.contains_key(s);
        let j = match eng.map_or(Some(JobName::Id(name.as_str().into())), |e| e.job_of_name(name, &known)) {
            Some(JobName::Task { group, index }) => tables.by_group.get(group).and_then(|v| v.get(index)).copied(),
            Some(JobName::Id(id)) => tables.by_id.get(id.as_ref()).copied(),
            None => None,
        };
        match j {
            Some(j) => ejob[j as usize] = Some(ej),
            None => unmapped += 1,
        }
    }
    let finished = engine.finished == Some(true);
    let no_engine = engine.sources.is_empty();
    let logs = if no_engine { records::log_attempts(submit) } else { HashMap::new() };
    let mut jobs: Vec<JobStatus> = Vec::with_capacity(n);
    for j in 0..n {
        let info = &tables.jobs[j];
        let rec = latest[j].as_ref();
        let e = ejob[j];
        let es = e.and_then(|e| e.state);
        let mut s = JobStatus { attempts: counts[j].max(rec.map_or(0, |r| r.attempt)), ..Default::default() };
        if let Some(r) = rec {
            s.exit_code = r.exit_code;
            s.signal = r.signal;
            s.host = r.host.clone();
            s.log = r.log.clone();
            s.error = r.error.clone();
            s.wall = r.seconds;
            s.rss_kib = r.rss_kib;
        }
        let state = if rec.is_some_and(|r| r.succeeded) {
            EState::Succeeded
        } else if matches!(es, Some(EState::Running) | Some(EState::Pending) | Some(EState::Held)) {
            let ej = e.cloned().unwrap_or_default();
            s.started = ej.started.map(|t| t as f64);
            if ej.host.is_some() {
                s.host = ej.host;
            }
            s.attempts = s.attempts.max(ej.attempts.saturating_sub(1));
            es.unwrap_or(EState::Pending)
        } else if let Some(r) = rec {
            if r.skipped {
                EState::Skipped
            } else {
                EState::Failed
            }
        } else if let (Some(st), Some(ej)) = (es, e) {
            s.exit_code = ej.exit_code;
            s.signal = ej.signal;
            s.host = ej.host.clone();
            s.wall = ej.wall_seconds;
            s.rss_kib = ej.peak_rss_kib;
            s.error = ej.detail.clone();
            match st {
                EState::Succeeded if info.kind == "join" => EState::Succeeded,
                EState::Succeeded => {
                    s.error = Some("engine reports success but there is no provenance record".into());
                    EState::Failed
                }
                other => other,
            }
        } else if finished {
            if info.kind == "join" {
                EState::Succeeded
            } else {
                s.error = Some("never ran".into());
                EState::Skipped
            }
        } else if let Some((a, p)) = logs.get(&info.id).filter(|(a, _)| *a > counts[j]) {
            s.attempts = *a;
            s.log = Some(p.display().to_string());
            s.started = std::fs::metadata(p)
                .and_then(|m| m.created().or_else(|_| m.modified()))
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_secs_f64());
            EState::Running
        } else {
            EState::Pending
        };
        // After a cancel, what had not succeeded was cancelled; a failure that ended before
        // the cancel stays a failure, unless `hold --now` stopped it.
        let failed_before = |t: f64| rec.and_then(|r| r.end).is_some_and(|e| e < t) && !stopped(rec.and_then(|r| r.end));
        let state = match cancelled_at {
            Some(t) if state != EState::Succeeded && !(state == EState::Failed && failed_before(t)) => EState::Cancelled,
            _ => state,
        };
        if state == EState::Failed && rec.is_none() {
            if let Some(h) = &s.host {
                let e = hosts.entry(h.clone()).or_default();
                e.0 += 1;
                e.1 += 1;
            }
        }
        s.state = Some(state);
        jobs.push(s);
    }
    let mut steps = vec![Counts::default(); tables.labels.len()];
    let mut totals = Counts::default();
    for (j, s) in jobs.iter().enumerate() {
        let info = &tables.jobs[j];
        if info.kind == "join" {
            continue;
        }
        let st = s.state.unwrap_or(EState::Pending);
        steps[info.label as usize].add(st, s.attempts);
        totals.add(st, s.attempts);
    }
    // Never submitted: no submission recorded, nothing of the engine, no job ever started.
    let never_submitted = nothing_of_the_engine && totals.attempts == 0 && totals.running == 0;
    let finished = finished || totals.unfinished() == 0;
    let campaign = meta.campaign.clone();
    let backend = meta.backend.clone();
    let slow_after = meta.notify.as_ref().and_then(|n| n.slow_after);
    unreadable.extend(engine.unreadable.iter().cloned());
    Report {
        submit: submit.to_path_buf(),
        campaign,
        backend,
        meta,
        tables,
        jobs,
        engine,
        unmapped,
        finished,
        totals,
        steps,
        hosts,
        unreadable,
        slow_after,
        now: now_epoch(),
        control,
        never_submitted,
    }
}

impl Report {
    pub fn exit_code(&self) -> u8 {
        let t = &self.totals;
        if self.never_submitted {
            EXIT_NOT_SUBMITTED
        } else if self.control.is_cancelled() && t.succeeded < t.jobs {
            EXIT_CANCELLED
        } else if t.unfinished() > 0 {
            if self.control.is_held() || (t.held > 0 && t.pending + t.running == 0) {
                EXIT_HELD
            } else if t.failed + t.skipped > 0 {
                EXIT_RUNNING_WITH_FAILURES
            } else {
                EXIT_RUNNING
            }
        } else if t.failed + t.skipped + t.cancelled > 0 {
            EXIT_FAILED
        } else {
            EXIT_DONE
        }
    }

    pub fn state_word(&self) -> &'static str {
        match self.exit_code() {
            EXIT_DONE => "done",
            EXIT_FAILED => "failed",
            EXIT_HELD => "held",
            EXIT_CANCELLED => "cancelled",
            EXIT_NOT_SUBMITTED => "compiled",
            _ => "running",
        }
    }

    /// `--watch` stops here: the campaign has ended, or was never submitted.
    pub fn terminal(&self) -> bool {
        matches!(self.exit_code(), EXIT_DONE | EXIT_FAILED | EXIT_CANCELLED | EXIT_NOT_SUBMITTED)
    }

    /// Share of jobs finished, in percent.
    pub fn percent(&self) -> f64 {
        if self.totals.jobs == 0 {
            100.0
        } else {
            100.0 * self.totals.finished() as f64 / self.totals.jobs as f64
        }
    }

    /// Jobs of a state, in job order.
    pub fn jobs_in(&self, s: EState) -> impl Iterator<Item = usize> + '_ {
        (0..self.jobs.len()).filter(move |&j| self.jobs[j].state == Some(s) && self.tables.jobs[j].kind != "join")
    }

    pub fn label(&self, j: usize) -> &str {
        &self.tables.labels[self.tables.jobs[j].label as usize].0
    }

    /// Running jobs over `slow_after`: (job, seconds running).
    pub fn slow(&self) -> Vec<(usize, f64)> {
        let Some(limit) = self.slow_after else { return Vec::new() };
        self.jobs_in(EState::Running)
            .filter_map(|j| self.jobs[j].started.map(|t| (j, self.now - t)))
            .filter(|(_, secs)| *secs > limit as f64)
            .collect()
    }

    /// Hosts by failures (most first), then name.
    pub fn host_ranking(&self) -> Vec<(&str, u64, u64)> {
        let mut v: Vec<(&str, u64, u64)> = self.hosts.iter().filter(|(_, c)| c.0 > 0).map(|(h, c)| (h.as_str(), c.0, c.1)).collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        v
    }

    /// Wall time and peak memory (MiB) distributions of each label, over finished jobs.
    fn dists(&self) -> Vec<(Option<Dist>, Option<Dist>)> {
        let mut wall: Vec<Vec<f64>> = vec![Vec::new(); self.tables.labels.len()];
        let mut rss: Vec<Vec<f64>> = vec![Vec::new(); self.tables.labels.len()];
        for (j, info) in self.tables.jobs.iter().enumerate() {
            let s = &self.jobs[j];
            if !matches!(s.state, Some(EState::Succeeded) | Some(EState::Failed)) {
                continue;
            }
            if let Some(w) = s.wall {
                wall[info.label as usize].push(w);
            }
            if let Some(k) = s.rss_kib {
                rss[info.label as usize].push(k as f64 / 1024.0);
            }
        }
        wall.into_iter().zip(rss).map(|(w, r)| (dist(w), dist(r))).collect()
    }

    pub fn to_json(&self) -> Value {
        let dists = self.dists();
        let steps: Vec<Value> = self
            .tables
            .labels
            .iter()
            .enumerate()
            .filter(|(i, (_, kind))| kind != "join" && self.steps[*i].jobs > 0)
            .map(|(i, (name, kind))| {
                let (w, r) = dists[i].clone();
                let mut v = serde_json::to_value(self.steps[i]).unwrap_or_default();
                v["step"] = json!(name);
                v["kind"] = json!(kind);
                v["wall_seconds"] = serde_json::to_value(w).unwrap_or_default();
                v["peak_rss_mib"] = serde_json::to_value(r).unwrap_or_default();
                v
            })
            .collect();
        let failed: Vec<Value> = self
            .jobs_in(EState::Failed)
            .map(|j| {
                let (info, s) = (&self.tables.jobs[j], &self.jobs[j]);
                let did = info.data_value();
                json!({
                    "job": info.id, "step": self.label(j), "data_id": did,
                    "data_id_text": records::data_id_text(&did),
                    "quanta": info.quanta, "exit_code": s.exit_code, "signal": s.signal, "host": s.host,
                    "attempts": s.attempts, "log": s.log, "error": s.error,
                })
            })
            .collect();
        let hosts: Vec<Value> = self.host_ranking().into_iter().map(|(h, f, a)| json!({"host": h, "failures": f, "attempts": a})).collect();
        let slow: Vec<Value> = self
            .slow()
            .into_iter()
            .map(|(j, secs)| json!({"job": self.tables.jobs[j].id, "step": self.label(j), "running_seconds": secs.round()}))
            .collect();
        json!({
            "bpsc_status": 1,
            "submit": self.submit,
            "campaign": self.campaign,
            "backend": self.backend,
            "state": self.state_word(),
            "exit_code": self.exit_code(),
            "finished": self.finished,
            "submitted": !self.never_submitted,
            "submissions": self.control.submissions,
            "held_since": self.control.held_since,
            "cancelled_at": self.control.cancelled_at,
            "priority": self.control.priority.or(self.meta.priority),
            "engine": {
                "name": self.engine.engine, "finished": self.engine.finished, "failed": self.engine.failed,
                "events": self.engine.events, "sources": self.engine.sources, "unmapped_jobs": self.unmapped,
            },
            "totals": self.totals,
            "steps": steps,
            "failed": failed,
            "hosts": hosts,
            "slow": slow,
            "unreadable": self.unreadable,
        })
    }

    /// The human summary.
    pub fn render(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let t = &self.totals;
        writeln!(
            out,
            "campaign {} ({}) — {}: {} of {} jobs finished",
            self.campaign,
            self.backend,
            self.state_word(),
            t.finished(),
            t.jobs
        )?;
        if self.never_submitted {
            writeln!(out, "not submitted yet: `bpsc submit {}` submits it", self.submit.display())?;
        }
        if let Some(since) = &self.control.held_since {
            writeln!(out, "held since {since} (bpsc hold): no new job starts until `bpsc release`")?;
        }
        if let Some(at) = &self.control.cancelled_at {
            writeln!(out, "cancelled at {at} (bpsc cancel)")?;
        }
        // Held and cancelled columns only when some job is.
        let (held, cancelled) = (t.held > 0 || self.control.is_held(), t.cancelled > 0);
        let row = |out: &mut dyn Write, name: &str, c: &Counts| -> std::io::Result<()> {
            write!(
                out,
                "{:<24} {:>7} {:>8} {:>8} {:>10} {:>7} {:>8}",
                name, c.jobs, c.pending, c.running, c.succeeded, c.failed, c.skipped
            )?;
            if held {
                write!(out, " {:>6}", c.held)?;
            }
            if cancelled {
                write!(out, " {:>9}", c.cancelled)?;
            }
            writeln!(out, " {:>9}", c.attempts)
        };
        write!(
            out,
            "\n{:<24} {:>7} {:>8} {:>8} {:>10} {:>7} {:>8}",
            "step", "jobs", "pending", "running", "succeeded", "failed", "skipped"
        )?;
        if held {
            write!(out, " {:>6}", "held")?;
        }
        if cancelled {
            write!(out, " {:>9}", "cancelled")?;
        }
        writeln!(out, " {:>9}", "attempts")?;
        for (i, (name, kind)) in self.tables.labels.iter().enumerate() {
            let c = &self.steps[i];
            if kind == "join" || c.jobs == 0 {
                continue;
            }
            let shown = if kind == "compute" { name.clone() } else { format!("({name})") };
            row(out, &shown, c)?;
        }
        row(out, "total", t)?;
        let mut header = false;
        let dists = self.dists();
        for (i, (name, kind)) in self.tables.labels.iter().enumerate() {
            if kind == "join" || self.steps[i].jobs == 0 {
                continue;
            }
            let (w, r) = dists[i].clone();
            if w.is_none() && r.is_none() {
                continue;
            }
            if !header {
                writeln!(
                    out,
                    "\n{:<24} {:>34}   {:>34}",
                    "step", "wall time s (min/median/p90/max)", "peak memory MiB (min/median/p90/max)"
                )?;
                header = true;
            }
            let f = |d: Option<Dist>| {
                d.map(|d| format!("{:.0}/{:.0}/{:.0}/{:.0}", d.min, d.median, d.p90, d.max)).unwrap_or_else(|| "-".into())
            };
            writeln!(out, "{:<24} {:>34}   {:>34}", name, f(w), f(r))?;
        }
        let failed: Vec<usize> = self.jobs_in(EState::Failed).collect();
        if !failed.is_empty() {
            writeln!(out, "\nfailed jobs ({}):", failed.len())?;
            for &j in failed.iter().take(20) {
                let (info, s) = (&self.tables.jobs[j], &self.jobs[j]);
                let code = match (s.exit_code, s.signal) {
                    (_, Some(sig)) => format!("signal {sig}"),
                    (Some(c), None) => format!("exit {c}"),
                    (None, None) => "exit ?".into(),
                };
                let did = records::data_id_text(&info.data_value());
                let more = if info.quanta > 1 { format!(" (+{} quanta)", info.quanta - 1) } else { String::new() };
                writeln!(
                    out,
                    "  {} [{}] {{{did}}}{more}: {code}, host {}, attempt {}{}",
                    info.id,
                    self.label(j),
                    s.host.as_deref().unwrap_or("?"),
                    s.attempts,
                    s.log.as_ref().map(|l| format!(", log {l}")).unwrap_or_default()
                )?;
                if let Some(e) = &s.error {
                    writeln!(out, "      {e}")?;
                }
            }
            if failed.len() > 20 {
                writeln!(out, "  ... and {} more (--json lists them all)", failed.len() - 20)?;
            }
        }
        let hosts = self.host_ranking();
        if !hosts.is_empty() {
            writeln!(out, "\nhosts with the most failures:")?;
            for (h, f, a) in hosts.iter().take(5) {
                writeln!(out, "  {h}: {f} failed of {a} attempts")?;
            }
        }
        let slow = self.slow();
        if !slow.is_empty() {
            writeln!(out, "\n{} jobs running longer than slow_after ({}s)", slow.len(), self.slow_after.unwrap_or(0))?;
        }
        writeln!(
            out,
            "\nengine: {} ({} sources, {} events{})",
            self.engine.engine,
            self.engine.sources.len(),
            self.engine.events,
            if self.unmapped > 0 { format!(", {} engine jobs not in the task tables", self.unmapped) } else { String::new() }
        )?;
        if !self.unreadable.is_empty() {
            writeln!(out, "could not read:")?;
            for u in self.unreadable.iter().take(10) {
                writeln!(out, "  {u}")?;
            }
            if self.unreadable.len() > 10 {
                writeln!(out, "  ... and {} more", self.unreadable.len() - 10)?;
            }
        }
        Ok(())
    }
}

/// Options of `bpsc status`.
#[derive(Clone, Debug, Default)]
pub struct StatusArgs {
    pub submit: PathBuf,
    pub json: bool,
    pub watch: bool,
    /// Seconds between refreshes.
    pub interval: f64,
    /// Which notifications `--watch` fires.
    pub notify: notify::Mode,
    /// Stop after this many refreshes (tests).
    pub max_refreshes: Option<u64>,
}

/// `bpsc status SUBMIT [--json] [--watch]`.
pub fn run(a: &StatusArgs, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    if a.watch {
        return watch(a, out, err);
    }
    let r = match collect(&a.submit) {
        Ok(r) => r,
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            return EXIT_USAGE;
        }
    };
    let res = if a.json { writeln!(out, "{}", serde_json::to_string_pretty(&r.to_json()).unwrap_or_default()) } else { r.render(out) };
    if let Err(e) = res {
        let _ = writeln!(err, "error: {e}");
        return EXIT_USAGE;
    }
    r.exit_code()
}

/// Refresh until the campaign has ended: a progress bar per step (on a terminal), one
/// line per refresh otherwise, notifications, then the final summary.
fn watch(a: &StatusArgs, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
    use std::io::IsTerminal;
    let tty = std::io::stderr().is_terminal() && !a.json;
    let mp = MultiProgress::with_draw_target(if tty { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() });
    let style = ProgressStyle::with_template("{prefix:>24} [{bar:40}] {pos}/{len} {msg}")
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    let mut bars: Vec<Option<ProgressBar>> = Vec::new();
    let mut notifier = notify::Notifier::new(&a.submit, a.notify);
    let mut refreshes = 0u64;
    loop {
        let r = match collect(&a.submit) {
            Ok(r) => r,
            Err(e) => {
                let _ = writeln!(err, "error: {e}");
                return EXIT_USAGE;
            }
        };
        refreshes += 1;
        if bars.is_empty() {
            for (i, (name, kind)) in r.tables.labels.iter().enumerate() {
                if kind == "join" || r.steps[i].jobs == 0 {
                    bars.push(None);
                    continue;
                }
                let b = mp.add(ProgressBar::new(r.steps[i].jobs));
                b.set_style(style.clone());
                b.set_prefix(name.clone());
                bars.push(Some(b));
            }
        }
        for (i, b) in bars.iter().enumerate() {
            if let (Some(b), Some(c)) = (b, r.steps.get(i)) {
                b.set_length(c.jobs);
                b.set_position(c.finished());
                b.set_message(format!(
                    "{:.0}% — {} running, {} failed, {} skipped{}{}",
                    if c.jobs == 0 { 100.0 } else { 100.0 * c.finished() as f64 / c.jobs as f64 },
                    c.running,
                    c.failed,
                    c.skipped,
                    if c.held > 0 { format!(", {} held", c.held) } else { String::new() },
                    if c.cancelled > 0 { format!(", {} cancelled", c.cancelled) } else { String::new() }
                ));
            }
        }
        if !tty && !a.json {
            let t = &r.totals;
            let _ = writeln!(
                out,
                "[{}] {} {:.0}%: {} pending, {} running, {} succeeded, {} failed, {} skipped, {} held, {} cancelled",
                crate::submitdir::time::rfc3339(std::time::SystemTime::now()),
                r.state_word(),
                r.percent(),
                t.pending,
                t.running,
                t.succeeded,
                t.failed,
                t.skipped,
                t.held,
                t.cancelled
            );
        }
        for msg in notifier.observe(&r) {
            let _ = mp.println(&msg).or_else(|_| writeln!(err, "{msg}"));
        }
        let code = r.exit_code();
        let stop = r.terminal() || a.max_refreshes.is_some_and(|m| refreshes >= m);
        if stop {
            for b in bars.iter().flatten() {
                b.finish();
            }
            let _ = mp.clear();
            let res =
                if a.json { writeln!(out, "{}", serde_json::to_string_pretty(&r.to_json()).unwrap_or_default()) } else { r.render(out) };
            if let Err(e) = res {
                let _ = writeln!(err, "error: {e}");
            }
            return code;
        }
        std::thread::sleep(std::time::Duration::from_secs_f64(a.interval.max(0.05)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn quantiles() {
        let d = dist((1..=10).map(|x| x as f64).collect()).unwrap();
        assert_eq!((d.min, d.median, d.p90, d.max), (1.0, 5.0, 9.0, 10.0));
        assert!(dist(vec![]).is_none());
        let d = dist(vec![3.0]).unwrap();
        assert_eq!((d.median, d.p90), (3.0, 3.0));
    }
}
