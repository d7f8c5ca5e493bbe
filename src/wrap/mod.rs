//! `bpsc wrap SUBMIT --group G --index K`: the job wrapper every engine runs.
//!
//! It reads task K of group G, then, by kind:
//! - compute: per quantum, fetches `in_job` inputs, records consumed inputs, removes stale
//!   outputs, runs the command in the quantum's own working area, verifies declared outputs
//!   (exit 66 when one is missing), handles unexpected files ([`compute`], [`unexpected`]);
//!   stops at the first failure;
//! - stage-in / stage-out: copies files, verified by sha256 where both ends can be read
//!   ([`transfer`]: the `BPSC_TRANSFER_TOOL` protocol);
//! - cleanup: removes discarded intermediates;
//! - join: nothing; provenance: gathers every record into `provenance/campaign.jsonl`,
//!   decides the campaign's outcome and runs the user's final job when its `when` matches
//!   ([`final_job`]), and loads the records into the campaign's SQLite store
//!   (`crate::provstore`; `BPSC_NO_SQLITE` skips it).
//!
//! Each attempt reserves a number that is never reused ([`attempt`]), writes its output to
//! `SUBMIT/logs/G/JOB.ATTEMPT.out` and `.err` (its own files, never appended to), and writes
//! one provenance record, atomically, to `SUBMIT/provenance/JOB.ATTEMPT.json`, also when the
//! engine stops it with a signal ([`child`]).  The wrapper exits with the payload's status,
//! or one of its own (`crate::submitdir::exit`: 66, 70, 74, 75 out of memory, 79, 128+N after
//! signal N).

pub mod attempt;
mod child;
mod compute;
mod files;
pub mod final_job;
pub mod memory;
mod transfer;
mod unexpected;

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub use attempt::write_record;
pub use files::sha256_file;

use crate::ir::settings::Unexpected;
use crate::submitdir::exit::{WRAP_INTERNAL as EXIT_WRAPPER, WRAP_OOM, WRAP_SKIPPED as EXIT_SKIPPED, WRAP_TRANSFER as EXIT_TRANSFER};
use crate::submitdir::time::rfc3339;
use attempt::Logs;
use transfer::note;

pub struct WrapArgs {
    pub submit: PathBuf,
    pub group: String,
    /// The job: its index in the group's table, or (`--job`, for engines that name jobs by
    /// id, like DAGMan's `$(JOB)`) its id.
    pub job: JobRef,
    /// The engine's attempt number (`--attempt`): the lowest number this attempt may take.
    /// Numbers are reserved on the submit side, so an engine that counts from 1 again (a
    /// rescue DAG) never reuses one where the records are visible.
    pub attempt: Option<u32>,
    /// Before running, check every parent's latest provenance record; when one is missing or
    /// not successful, record this job as skipped and exit [`EXIT_SKIPPED`] without running.
    /// For engines whose dependencies fire on any termination (Slurm `afterany`).
    pub skip_failed_parents: bool,
}

/// How the engine names the job to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobRef {
    Index(u64),
    Id(String),
}

/// One running attempt: who it is, where it works, its logs and tools.
pub(crate) struct Attempt {
    pub submit: PathBuf,
    pub group: String,
    pub job: String,
    pub number: u32,
    pub scratch: PathBuf,
    pub logs: Logs,
    pub cgroup: Option<memory::Cgroup>,
    pub tool: transfer::Tool,
    /// The job's `unexpected` setting (a quantum's line may say otherwise).
    pub unexpected: Unexpected,
}

/// What an attempt found, for its record.
#[derive(Default)]
pub(crate) struct Found {
    pub exit: i32,
    pub signal: Option<i32>,
    pub error: Option<String>,
    pub quanta: Vec<Value>,
    pub inputs: Vec<Value>,
    pub outputs: Vec<Value>,
    /// Out of memory: `None` when it cannot be told.
    pub oom: Option<bool>,
    /// Further record fields (by kind).
    pub extra: serde_json::Map<String, Value>,
}

impl Found {
    fn fail(&mut self, code: i32, error: String) {
        self.exit = code;
        self.error = Some(error);
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}

fn env_digest() -> String {
    let mut vars: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| {
            !matches!(k.as_str(), "BPSC_ATTEMPT" | "PWD" | "OLDPWD" | "SHLVL" | "_")
                && !k.starts_with("SLURM_")
                && !k.starts_with("_CONDOR")
        })
        .collect();
    vars.sort();
    let mut h = Sha256::new();
    for (k, v) in vars {
        h.update(k.as_bytes());
        h.update(b"=");
        h.update(v.as_bytes());
        h.update(b"\n");
    }
    format!("{:x}", h.finalize())
}

/// `ClusterId.ProcId` from the text of an HTCondor job ad.
fn condor_id(ad: &str) -> Option<String> {
    let get = |k: &str| {
        ad.lines().find_map(|l| {
            let (a, b) = l.split_once('=')?;
            (a.trim() == k).then(|| b.trim().to_string()).filter(|v| !v.is_empty() && v.bytes().all(|c| c.is_ascii_digit()))
        })
    };
    Some(format!("{}.{}", get("ClusterId")?, get("ProcId")?))
}

/// A Nextflow task's hash (`ab/cdef…`) from its work directory.
fn nextflow_hash(dir: &Path) -> Option<String> {
    let name = dir.file_name()?.to_str()?;
    let parent = dir.parent()?.file_name()?.to_str()?;
    let hex = |s: &str, n: usize| s.len() >= n && s.bytes().all(|c| c.is_ascii_hexdigit());
    (hex(parent, 2) && parent.len() == 2 && hex(name, 20)).then(|| format!("{parent}/{name}"))
}

/// The engine running this attempt and its own id of the job, where known: Slurm's job
/// (`ARRAYJOB_TASK`), HTCondor's `ClusterId.ProcId` (from the file `_CONDOR_JOB_AD` names),
/// Pegasus's DAG job id, Nextflow's task hash.
pub fn engine_ids() -> (Option<&'static str>, Option<String>) {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    if let Some(j) = var("SLURM_JOB_ID") {
        let id = match (var("SLURM_ARRAY_JOB_ID"), var("SLURM_ARRAY_TASK_ID")) {
            (Some(a), Some(t)) => format!("{a}_{t}"),
            _ => j,
        };
        return (Some("slurm"), Some(id));
    }
    let condor = var("_CONDOR_JOB_AD").and_then(|p| std::fs::read_to_string(p).ok()).and_then(|ad| condor_id(&ad));
    if let Some(p) = var("PEGASUS_DAG_JOB_ID") {
        return (Some("pegasus"), Some(condor.map(|c| format!("{p} {c}")).unwrap_or(p)));
    }
    if var("_CONDOR_JOB_AD").is_some() || var("_CONDOR_SCRATCH_DIR").is_some() {
        return (Some("htcondor"), condor);
    }
    let nxf = var("NXF_TASK_WORKDIR").map(PathBuf::from).or_else(|| std::env::current_dir().ok());
    if let Some(h) = nxf.as_deref().and_then(nextflow_hash) {
        return (Some("nextflow"), Some(h));
    }
    (None, None)
}

/// The job's line (rendered from the task tables), its index, and its `unexpected` setting.
fn load(a: &WrapArgs) -> Result<(u64, String, Unexpected), String> {
    let t = crate::submitdir::tasks::Tables::open(&a.submit)?;
    let index = match &a.job {
        JobRef::Index(k) => *k,
        // DAGMan node names are job ids, but for a DAGMan keyword, which gets a leading `_`.
        JobRef::Id(id) => t.find(&a.group, id).or_else(|e| match id.strip_prefix('_') {
            Some(rest) => t.find(&a.group, rest).map_err(|_| e),
            None => Err(e),
        })?,
    };
    let line = t.line(&a.group, index)?;
    let unexpected = t.settings(&a.group, index).ok().flatten().map(|s| s.unexpected).unwrap_or_default();
    Ok((index, line, unexpected))
}

/// The scratch area: `BPSC_SCRATCH`, else `SUBMIT/scratch`; made absolute (Pegasus sets
/// `BPSC_SCRATCH=.`, the job's working directory) so that paths stay valid in the payload's
/// own working area.
fn scratch(submit: &Path) -> PathBuf {
    let s = std::env::var_os("BPSC_SCRATCH").map(PathBuf::from).unwrap_or_else(|| submit.join("scratch"));
    if s.is_relative() {
        std::path::absolute(&s).unwrap_or(s)
    } else {
        s
    }
}

pub fn run(a: &WrapArgs) -> i32 {
    child::install();
    let (index, line, unexpected) = match load(a) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("bpsc wrap: {e}");
            return EXIT_WRAPPER;
        }
    };
    let task: Value = match serde_json::from_str(&line) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("bpsc wrap: task {index} of group {}: {e}", a.group);
            return EXIT_WRAPPER;
        }
    };
    let job = task["id"].as_str().unwrap_or("unknown").to_string();
    let kind = task["kind"].as_str().unwrap_or("").to_string();
    let r = match attempt::reserve(&a.submit, &a.group, &job, a.attempt.unwrap_or(1)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bpsc wrap: logs: {e}");
            return EXIT_WRAPPER;
        }
    };
    let lost = attempt::record_lost(&a.submit, &a.group, index, &job, &kind, r.attempt, &r.unrecorded);
    let mut at = Attempt {
        submit: a.submit.clone(),
        group: a.group.clone(),
        job,
        number: r.attempt,
        scratch: scratch(&a.submit),
        logs: r.logs,
        cgroup: memory::detect(),
        tool: transfer::Tool::from_env(),
        unexpected,
    };
    let t0 = SystemTime::now();
    let host = hostname();
    note(&at.logs.out, &attempt::header(&at.job, &kind, at.number, &host, &rfc3339(t0)));
    for m in &lost {
        note(&at.logs.err, &format!("[bpsc wrap] attempt {m} left no record (killed): recorded it as lost"));
    }
    let mut found = Found::default();
    let skipped = if a.skip_failed_parents { attempt::failed_parent(&a.submit, &task) } else { None };
    if let Some(why) = &skipped {
        note(&at.logs.err, &format!("[bpsc wrap] skipped: {why}"));
        found.fail(EXIT_SKIPPED, format!("skipped: {why}"));
    } else {
        dispatch(&mut at, &kind, &task, &mut found);
    }
    finish(&at, a, &kind, index, (t0, &host), skipped.is_some(), found)
}

fn dispatch(at: &mut Attempt, kind: &str, task: &Value, found: &mut Found) {
    match kind {
        "compute" => compute::run(at, task, found),
        "stage_in" | "stage_out" => transfers(at, kind, task, found),
        "cleanup" => cleanup(at, task, found),
        "provenance" => provenance(at, task, found),
        _ => {}
    }
}

fn transfers(at: &mut Attempt, kind: &str, task: &Value, found: &mut Found) {
    let empty = Vec::new();
    for t in task["transfers"].as_array().unwrap_or(&empty) {
        if let Some(s) = child::stop_requested() {
            found.fail(128 + s, format!("interrupted by {}", child::signal_name(s)));
            break;
        }
        let from = files::expand(t["from"].as_str().unwrap_or(""), &at.scratch);
        let to = files::expand(t["to"].as_str().unwrap_or(""), &at.scratch);
        match transfer::transfer(&from, &to, &mut at.tool, &at.logs.err) {
            Ok(c) => {
                let rec = c.into_record(json!({"dataset": t["dataset"], "from": from, "path": to}));
                if kind == "stage_in" {
                    found.inputs.push(rec);
                } else {
                    found.outputs.push(rec);
                }
            }
            Err(e) => {
                note(&at.logs.err, &format!("[bpsc wrap] {kind} failed: {e}"));
                found.fail(EXIT_TRANSFER, e);
                break;
            }
        }
    }
}

fn cleanup(at: &mut Attempt, task: &Value, found: &mut Found) {
    let empty = Vec::new();
    for p in task["remove"].as_array().unwrap_or(&empty) {
        let p = files::expand(p.as_str().unwrap_or(""), &at.scratch);
        match std::fs::remove_file(&p) {
            Ok(()) => found.outputs.push(json!({"path": p, "removed": true})),
            Err(e) if e.kind() == io::ErrorKind::NotFound => found.outputs.push(json!({"path": p, "removed": false})),
            Err(e) => note(&at.logs.err, &format!("[bpsc wrap] cannot remove {p}: {e}")),
        }
    }
}

/// Gather, decide the outcome, run the final job, load the store.
fn provenance(at: &mut Attempt, task: &Value, found: &mut Found) {
    if let Err(e) = gather(&at.submit) {
        note(&at.logs.err, &format!("[bpsc wrap] gathering provenance: {e}"));
        found.fail(1, e.to_string());
    }
    let outcome = final_job::outcome(&at.submit);
    match &outcome {
        Ok(o) => {
            note(&at.logs.out, &format!("[bpsc wrap] campaign outcome: {} ({} of {} jobs succeeded)", o.word(), o.succeeded, o.jobs));
            found.extra.insert("campaign".into(), o.json());
        }
        Err(e) => note(&at.logs.err, &format!("[bpsc wrap] campaign outcome: {e}")),
    }
    if task["final_job"].is_object() {
        let summary = run_final(at, &task["final_job"], outcome.as_ref().ok());
        if found.exit == 0 {
            if let Some(code) = summary["exit_code"].as_i64().filter(|&c| c != 0) {
                found.fail(code as i32, format!("final job {} failed", summary["name"].as_str().unwrap_or("")));
            }
        }
        found.extra.insert("final_job".into(), summary);
    }
    // Also load the records into the campaign's SQLite store (not fatal: the record files
    // stay the ground truth; `bpsc provenance ingest` can be run again).
    if std::env::var_os("BPSC_NO_SQLITE").is_none() {
        let db = crate::provstore::default_db(&at.submit);
        match crate::provstore::ingest(&at.submit, &db) {
            Ok(r) => note(&at.logs.out, &format!("[bpsc wrap] {} records ({} new) in {}", r.records, r.new, db.display())),
            Err(e) => note(&at.logs.err, &format!("[bpsc wrap] provenance store {}: {e}", db.display())),
        }
    }
}

/// Run the user's final job when its `when` matches the outcome; its own numbered attempt,
/// logs and record (`kind: final`).  Returns the summary for the provenance record.
fn run_final(at: &Attempt, fj: &Value, outcome: Option<&final_job::Outcome>) -> Value {
    let name = fj["name"].as_str().unwrap_or("final");
    let when = fj["when"].as_str().unwrap_or("always");
    let id = format!("final_{}", crate::ir::naming::sanitize(name));
    let due = outcome.is_some_and(|o| final_job::due(when, o));
    let mut summary = json!({"name": name, "when": when, "ran": due, "job_id": id});
    if !due {
        let why = outcome.map(|o| format!("the campaign's outcome is {}", o.word())).unwrap_or_else(|| "no outcome".into());
        note(&at.logs.out, &format!("[bpsc wrap] final job {name} (when = {when}) not run: {why}"));
        return summary;
    }
    let o = outcome.cloned().unwrap_or_default();
    let r = match attempt::reserve(&at.submit, &at.group, &id, 1) {
        Ok(r) => r,
        Err(e) => {
            summary["exit_code"] = json!(EXIT_WRAPPER);
            summary["error"] = json!(format!("logs: {e}"));
            return summary;
        }
    };
    let fin = Attempt {
        submit: at.submit.clone(),
        group: at.group.clone(),
        job: id.clone(),
        number: r.attempt,
        scratch: at.scratch.clone(),
        logs: r.logs,
        cgroup: at.cgroup.clone(),
        tool: transfer::Tool::from_env(),
        unexpected: crate::submitdir::tasks::Tables::open(&at.submit)
            .ok()
            .and_then(|t| t.spec.final_job.as_ref().map(|f| f.settings.unexpected))
            .unwrap_or_default(),
    };
    let t0 = SystemTime::now();
    let host = hostname();
    note(&fin.logs.out, &attempt::header(&id, "final", fin.number, &host, &rfc3339(t0)));
    let cmd = format!("export BPSC_CAMPAIGN_OUTCOME={}; {}", o.word(), fj["command"].as_str().unwrap_or(""));
    note(
        &fin.logs.out,
        &format!("[bpsc wrap] final job {name} (when = {when}, outcome {}): {}", o.word(), fj["command"].as_str().unwrap_or("")),
    );
    let data_id = json!({});
    let keep = unexpected::KeepAt { submit: &fin.submit, step: name, data_id: &data_id, attempt: fin.number };
    let ran = compute::run_in_area(&fin, &cmd, 0, &[], fin.unexpected, &keep);
    let mut f = Found {
        exit: if ran.oom == Some(true) { WRAP_OOM } else { ran.code },
        signal: ran.signal,
        error: ran.error,
        oom: ran.oom,
        ..Default::default()
    };
    f.extra.insert("when".into(), json!(when));
    f.extra.insert("campaign".into(), o.json());
    f.extra.insert("unexpected".into(), json!(ran.unexpected));
    let code = finish_record(&fin, "final", 0, (t0, &host), false, &mut f, None);
    summary["attempt"] = json!(fin.number);
    summary["exit_code"] = json!(code);
    // The gathered file also holds the final job's record.
    let _ = gather(&at.submit);
    summary
}

/// Settle the exit status (signals, OOM), write the record, return the status.
fn finish(at: &Attempt, a: &WrapArgs, kind: &str, index: u64, t0: (SystemTime, &str), skipped: bool, mut found: Found) -> i32 {
    finish_record(at, kind, index, t0, skipped, &mut found, a.attempt)
}

fn finish_record(
    at: &Attempt,
    kind: &str,
    index: u64,
    t0: (SystemTime, &str),
    skipped: bool,
    f: &mut Found,
    engine_attempt: Option<u32>,
) -> i32 {
    let interrupted = child::stop_requested();
    if let Some(s) = interrupted {
        note(&at.logs.err, &format!("[bpsc wrap] stopped by {}: no further work started", child::signal_name(s)));
        if f.oom != Some(true) {
            f.exit = 128 + s;
            f.signal = f.signal.or(Some(s));
            f.error.get_or_insert_with(|| format!("interrupted by {}", child::signal_name(s)));
        }
    }
    if f.oom == Some(true) {
        f.exit = WRAP_OOM;
        f.error.get_or_insert_with(|| "out of memory".into());
    }
    let t1 = SystemTime::now();
    let (peak, peak_source) = match at.cgroup.as_ref().and_then(|c| c.peak().map(|p| (p, c.source()))) {
        Some((p, s)) => ((p / 1024) as i64, s),
        None => (memory::children_maxrss_kib(), "getrusage"),
    };
    let (engine, engine_job) = engine_ids();
    let mut rec = json!({
        "record": 1,
        "job_id": at.job,
        "kind": kind,
        "group": at.group,
        "index": index,
        "attempt": at.number,
        "engine_attempt": engine_attempt,
        "host": t0.1,
        "start": rfc3339(t0.0),
        "end": rfc3339(t1),
        "seconds": t1.duration_since(t0.0).map(|d| d.as_secs_f64()).unwrap_or(0.0),
        "exit_code": f.exit,
        "skipped": skipped,
        "signal": f.signal,
        "interrupted": interrupted.map(child::signal_name),
        "oom": f.oom,
        "peak_rss_kib": peak,
        "peak_source": peak_source,
        "cgroup": at.cgroup.as_ref().map(|c| c.dir.clone()),
        "software": std::env::var("BPSC_SOFTWARE").ok(),
        "env_digest": env_digest(),
        "quanta": f.quanta,
        "inputs": f.inputs,
        "outputs": f.outputs,
        "error": f.error,
        "engine": engine,
        "engine_job": engine_job,
        "log": {"out": at.logs.out_path, "err": at.logs.err_path},
    });
    for (k, v) in std::mem::take(&mut f.extra) {
        rec[k] = v;
    }
    let end = rfc3339(t1);
    note(&at.logs.out, &format!("[bpsc wrap] exit {} at {end}", f.exit));
    if let Err(e) = attempt::write_record(&at.submit, &at.job, at.number, &rec) {
        eprintln!("bpsc wrap: writing provenance: {e}");
        let _ = writeln!(&at.logs.err, "[bpsc wrap] writing provenance: {e}");
        if f.exit == 0 {
            return EXIT_WRAPPER;
        }
    }
    f.exit
}

/// Concatenate every record into `provenance/campaign.jsonl`, sorted by job and attempt.
pub fn gather(submit: &Path) -> io::Result<usize> {
    let dir = submit.join("provenance");
    let mut names: Vec<String> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json") && !n.starts_with('.'))
        .collect();
    names.sort();
    let tmp = dir.join(format!(".campaign.jsonl.tmp-{}", std::process::id()));
    let mut out = io::BufWriter::new(std::fs::File::create(&tmp)?);
    for n in &names {
        let text = std::fs::read_to_string(dir.join(n))?;
        out.write_all(text.trim_end().as_bytes())?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    out.get_ref().sync_all()?;
    drop(out);
    std::fs::rename(&tmp, dir.join("campaign.jsonl"))?;
    Ok(names.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_ids_from_their_sources() {
        let ad = "MyType = \"Job\"\nClusterId = 1234\nProcId = 0\nOwner = \"x\"\n";
        assert_eq!(condor_id(ad).as_deref(), Some("1234.0"));
        assert_eq!(condor_id("ClusterId = 5\n"), None);
        assert_eq!(
            nextflow_hash(Path::new("/w/work/ab/cdef0123456789abcdef0123456789")).as_deref(),
            Some("ab/cdef0123456789abcdef0123456789")
        );
        assert_eq!(nextflow_hash(Path::new("/home/user/project")), None);
    }
}
