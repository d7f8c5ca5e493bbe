//! `bpsc wrap SUBMIT --group G --index K`: the job wrapper every engine runs.
//!
//! It reads task K of group G, then, by kind:
//! - compute: fetches `in_job` inputs, runs each quantum's command in order (stopping at the
//!   first failure), verifies declared outputs (exit 66 when one is missing);
//! - stage-in / stage-out: copies files (with sha256, verified after the copy);
//! - cleanup: removes discarded intermediates;
//! - join: nothing; provenance: gathers every record into `provenance/campaign.jsonl` and
//!   loads them into the campaign's SQLite store (`crate::provstore`; `BPSC_NO_SQLITE` skips it).
//!
//! Each attempt writes one provenance record, atomically (temporary file + rename), to
//! `SUBMIT/provenance/JOB.ATTEMPT.json`, and its output to `SUBMIT/logs/G/JOB.ATTEMPT.out`
//! and `.err`.  The attempt number is `--attempt`, or one more than the records already
//! there for the job.  The wrapper exits with the payload's exit status.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::SystemTime;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::submitdir::exit::{
    WRAP_INTERNAL as EXIT_WRAPPER, WRAP_MISSING_OUTPUT as EXIT_MISSING_OUTPUT, WRAP_SKIPPED as EXIT_SKIPPED, WRAP_TRANSFER as EXIT_TRANSFER,
};
use crate::submitdir::time::rfc3339;

pub struct WrapArgs {
    pub submit: PathBuf,
    pub group: String,
    /// The job: its index in the group's table, or (`--job`, for engines that name jobs by
    /// id, like DAGMan's `$(JOB)`) its id.
    pub job: JobRef,
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

fn now() -> (SystemTime, String) {
    let t = SystemTime::now();
    (t, rfc3339(t))
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}

/// sha256 and size of a file.
pub fn sha256_file(p: &Path) -> io::Result<(u64, String)> {
    let mut f = std::fs::File::open(p)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf)?;
        if k == 0 {
            break;
        }
        n += k as u64;
        h.update(&buf[..k]);
    }
    Ok((n, format!("{:x}", h.finalize())))
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

/// Expand `${BPSC_SCRATCH}` and `${USER}` in a path from a task line (no shell involved).
fn expand(p: &str, scratch: &Path) -> String {
    p.replace("${BPSC_SCRATCH}", &scratch.to_string_lossy()).replace("${USER}", &std::env::var("USER").unwrap_or_default())
}

/// A local path for a URL: `file://` URLs and plain paths; other schemes need
/// `BPSC_TRANSFER_TOOL`.
fn local_path(url: &str) -> Option<PathBuf> {
    if let Some(p) = url.strip_prefix("file://") {
        return Some(PathBuf::from(p));
    }
    if !url.contains("://") {
        return Some(PathBuf::from(url));
    }
    None
}

/// Copy `from` to `to` and verify the copy's sha256.  Returns (size, sha256).
fn transfer(from: &str, to: &str) -> Result<(u64, String), String> {
    match (local_path(from), local_path(to)) {
        (Some(a), Some(b)) => {
            if let Some(parent) = b.parent() {
                std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
            }
            let (n, sum) = sha256_file(&a).map_err(|e| format!("{from}: {e}"))?;
            let tmp = b.with_extension("bpsc-part");
            std::fs::copy(&a, &tmp).map_err(|e| format!("{from} -> {to}: {e}"))?;
            let (n2, sum2) = sha256_file(&tmp).map_err(|e| format!("{to}: {e}"))?;
            if n2 != n || sum2 != sum {
                let _ = std::fs::remove_file(&tmp);
                return Err(format!("checksum mismatch copying {from} to {to}"));
            }
            std::fs::rename(&tmp, &b).map_err(|e| format!("{to}: {e}"))?;
            Ok((n, sum))
        }
        _ => match std::env::var("BPSC_TRANSFER_TOOL") {
            Ok(tool) => {
                let st = Command::new(&tool).arg(from).arg(to).status().map_err(|e| format!("{tool}: {e}"))?;
                if !st.success() {
                    return Err(format!("{tool} {from} {to} failed: {st}"));
                }
                match local_path(to) {
                    Some(p) => sha256_file(&p).map_err(|e| e.to_string()),
                    None => Ok((0, String::new())),
                }
            }
            Err(_) => Err(format!("no transfer tool for {from} -> {to}; set BPSC_TRANSFER_TOOL to a command taking FROM TO")),
        },
    }
}

fn file_record(path: &str) -> Value {
    match sha256_file(Path::new(path)) {
        Ok((size, sha)) => json!({"path": path, "size": size, "sha256": sha}),
        Err(_) => json!({"path": path, "size": null, "sha256": null, "missing": true}),
    }
}

/// Peak RSS of waited-for children so far, in KiB.
fn children_maxrss_kib() -> i64 {
    // SAFETY: getrusage writes into the zeroed struct we pass; no other invariants.
    unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) == 0 {
            ru.ru_maxrss
        } else {
            -1
        }
    }
}

fn shell() -> &'static str {
    if Path::new("/bin/bash").exists() {
        "/bin/bash"
    } else {
        "/bin/sh"
    }
}

struct Logs {
    out: std::fs::File,
    err: std::fs::File,
    out_path: PathBuf,
    err_path: PathBuf,
}

fn open_logs(submit: &Path, group: &str, job: &str, attempt: u32) -> io::Result<Logs> {
    let dir = submit.join("logs").join(group);
    std::fs::create_dir_all(&dir)?;
    let out_path = dir.join(format!("{job}.{attempt}.out"));
    let err_path = dir.join(format!("{job}.{attempt}.err"));
    let out = std::fs::OpenOptions::new().create(true).append(true).open(&out_path)?;
    let err = std::fs::OpenOptions::new().create(true).append(true).open(&err_path)?;
    Ok(Logs { out, err, out_path, err_path })
}

/// Attempts already recorded for `job`.
fn recorded_attempts(submit: &Path, job: &str) -> u32 {
    let prefix = format!("{job}.");
    std::fs::read_dir(submit.join("provenance"))
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    n.strip_prefix(&prefix).and_then(|r| r.strip_suffix(".json")).is_some_and(|a| a.parse::<u32>().is_ok())
                })
                .count() as u32
        })
        .unwrap_or(0)
}

/// Write a record atomically.
pub fn write_record(submit: &Path, job: &str, attempt: u32, rec: &Value) -> io::Result<PathBuf> {
    let dir = submit.join("provenance");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("{job}.{attempt}.json"));
    let tmp = dir.join(format!(".{job}.{attempt}.json.tmp-{}", std::process::id()));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(serde_json::to_string(rec).unwrap_or_default().as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

/// The latest attempt record of `job`: (attempt, exit code).  Attempts are numbered from 1
/// without gaps, so this probes `JOB.1.json`, `JOB.2.json`, ... (no directory listing).
fn latest_record(submit: &Path, job: &str) -> Option<(u32, i64)> {
    let dir = submit.join("provenance");
    let mut last = None;
    for n in 1u32.. {
        let Ok(text) = std::fs::read_to_string(dir.join(format!("{job}.{n}.json"))) else { break };
        let code = serde_json::from_str::<Value>(&text).ok().and_then(|v| v["exit_code"].as_i64()).unwrap_or(-1);
        last = Some((n, code));
    }
    last
}

/// Why this task must not run: the first parent whose latest record is missing or failed.
/// On a filesystem that shows other nodes' files late, `BPSC_PARENT_WAIT=SECONDS` makes it
/// look again, once a second, for that long before calling a parent's record missing.
fn failed_parent(submit: &Path, task: &Value) -> Option<String> {
    let wait: u64 = std::env::var("BPSC_PARENT_WAIT").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
    let empty = Vec::new();
    for p in task["parents"].as_array().unwrap_or(&empty) {
        let Some(p) = p.as_str() else { continue };
        let mut state = latest_record(submit, p);
        for _ in 0..wait {
            if state.is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_secs(1));
            state = latest_record(submit, p);
        }
        match state {
            Some((_, 0)) => {}
            Some((n, code)) => return Some(format!("parent {p} failed (attempt {n} exited {code})")),
            None => return Some(format!("parent {p} has no provenance record (never ran, or was cancelled)")),
        }
    }
    None
}

/// The job's line (rendered from the task tables) and its index.
fn load(a: &WrapArgs) -> Result<(u64, String), String> {
    let t = crate::submitdir::tasks::Tables::open(&a.submit)?;
    let index = match &a.job {
        JobRef::Index(k) => *k,
        // DAGMan node names are job ids, but for a DAGMan keyword, which gets a leading `_`.
        JobRef::Id(id) => t.find(&a.group, id).or_else(|e| match id.strip_prefix('_') {
            Some(rest) => t.find(&a.group, rest).map_err(|_| e),
            None => Err(e),
        })?,
    };
    Ok((index, t.line(&a.group, index)?))
}

pub fn run(a: &WrapArgs) -> i32 {
    let (index, line) = match load(a) {
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
    let attempt = a.attempt.unwrap_or_else(|| recorded_attempts(&a.submit, &job) + 1);
    let scratch = std::env::var_os("BPSC_SCRATCH").map(PathBuf::from).unwrap_or_else(|| a.submit.join("scratch"));
    // A relative scratch (Pegasus sets `BPSC_SCRATCH=.`: the job's working directory) is
    // made absolute, so that paths stay valid when a payload changes directory.
    let scratch = if scratch.is_relative() { std::path::absolute(&scratch).unwrap_or(scratch) } else { scratch };
    let mut logs = match open_logs(&a.submit, &a.group, &job, attempt) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("bpsc wrap: logs: {e}");
            return EXIT_WRAPPER;
        }
    };
    let (t0, start) = now();
    let host = hostname();
    let _ = writeln!(logs.out, "[bpsc wrap] job {job} ({kind}) attempt {attempt} on {host} at {start}");
    let mut exit = 0i32;
    let mut signal: Option<i32> = None;
    let mut quanta_rec: Vec<Value> = Vec::new();
    let mut inputs: Vec<Value> = Vec::new();
    let mut outputs: Vec<Value> = Vec::new();
    let mut error: Option<String> = None;
    let skipped = if a.skip_failed_parents { failed_parent(&a.submit, &task) } else { None };
    if let Some(why) = &skipped {
        let _ = writeln!(logs.err, "[bpsc wrap] skipped: {why}");
        error = Some(format!("skipped: {why}"));
        exit = EXIT_SKIPPED;
    }
    match if skipped.is_some() { "" } else { kind.as_str() } {
        "compute" => {
            let empty = Vec::new();
            for q in task["quanta"].as_array().unwrap_or(&empty) {
                let (qt0, qstart) = now();
                // In-job stage-in.
                for f in q["fetch"].as_array().unwrap_or(&empty) {
                    let (from, to) = (f["from"].as_str().unwrap_or(""), expand(f["to"].as_str().unwrap_or(""), &scratch));
                    match transfer(from, &to) {
                        Ok((n, sum)) => inputs.push(json!({"dataset": f["dataset"], "path": to, "from": from, "size": n, "sha256": sum})),
                        Err(e) if f["optional"].as_bool() == Some(true) => {
                            let _ = writeln!(logs.err, "[bpsc wrap] optional input skipped: {e}");
                        }
                        Err(e) => {
                            let _ = writeln!(logs.err, "[bpsc wrap] stage-in failed: {e}");
                            error = Some(e);
                            exit = EXIT_TRANSFER;
                        }
                    }
                }
                if exit != 0 {
                    break;
                }
                for o in q["outputs"].as_array().unwrap_or(&empty) {
                    if let Some(parent) = Path::new(&expand(o["path"].as_str().unwrap_or(""), &scratch)).parent() {
                        let _ = std::fs::create_dir_all(parent);
                    }
                }
                let cmd = q["command"].as_str().unwrap_or("");
                let _ = writeln!(logs.out, "[bpsc wrap] quantum {} {}: {cmd}", q["step"].as_str().unwrap_or(""), q["data_id"]);
                let status = Command::new(shell())
                    .arg("-c")
                    .arg(cmd)
                    .env("BPSC_ATTEMPT", attempt.to_string())
                    .env("BPSC_JOB", &job)
                    .env("BPSC_SUBMIT", &a.submit)
                    .env("BPSC_SCRATCH", &scratch)
                    .stdin(Stdio::null())
                    .stdout(logs.out.try_clone().map(Stdio::from).unwrap_or(Stdio::inherit()))
                    .stderr(logs.err.try_clone().map(Stdio::from).unwrap_or(Stdio::inherit()))
                    .status();
                let (qcode, qsig) = match status {
                    Ok(s) => {
                        use std::os::unix::process::ExitStatusExt;
                        (s.code().unwrap_or(128 + s.signal().unwrap_or(0)), s.signal())
                    }
                    Err(e) => {
                        error = Some(format!("cannot start {}: {e}", shell()));
                        (EXIT_WRAPPER, None)
                    }
                };
                let mut qexit = qcode;
                let mut qouts = Vec::new();
                for o in q["outputs"].as_array().unwrap_or(&empty) {
                    let p = expand(o["path"].as_str().unwrap_or(""), &scratch);
                    let mut rec = file_record(&p);
                    rec["dataset"] = o["dataset"].clone();
                    let missing = rec.get("missing").is_some();
                    if qexit == 0 && missing && o["verify"].as_bool() == Some(true) {
                        let _ = writeln!(logs.err, "[bpsc wrap] declared output missing: {p}");
                        error = Some(format!("declared output missing: {p}"));
                        qexit = EXIT_MISSING_OUTPUT;
                    }
                    qouts.push(rec.clone());
                    outputs.push(rec);
                }
                let (_, qend) = now();
                quanta_rec.push(json!({"step": q["step"], "data_id": q["data_id"], "start": qstart, "end": qend, "exit_code": qexit, "signal": qsig, "seconds": qt0.elapsed().map(|d| d.as_secs_f64()).unwrap_or(0.0), "outputs": qouts}));
                if qexit != 0 {
                    exit = qexit;
                    signal = qsig;
                    break;
                }
            }
        }
        "stage_in" | "stage_out" => {
            let empty = Vec::new();
            for t in task["transfers"].as_array().unwrap_or(&empty) {
                let from = expand(t["from"].as_str().unwrap_or(""), &scratch);
                let to = expand(t["to"].as_str().unwrap_or(""), &scratch);
                match transfer(&from, &to) {
                    Ok((n, sum)) => {
                        let rec = json!({"dataset": t["dataset"], "from": from, "path": to, "size": n, "sha256": sum});
                        if kind == "stage_in" {
                            inputs.push(rec);
                        } else {
                            outputs.push(rec);
                        }
                    }
                    Err(e) => {
                        let _ = writeln!(logs.err, "[bpsc wrap] {kind} failed: {e}");
                        error = Some(e);
                        exit = EXIT_TRANSFER;
                        break;
                    }
                }
            }
        }
        "cleanup" => {
            let empty = Vec::new();
            for p in task["remove"].as_array().unwrap_or(&empty) {
                let p = expand(p.as_str().unwrap_or(""), &scratch);
                match std::fs::remove_file(&p) {
                    Ok(()) => outputs.push(json!({"path": p, "removed": true})),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => outputs.push(json!({"path": p, "removed": false})),
                    Err(e) => {
                        let _ = writeln!(logs.err, "[bpsc wrap] cannot remove {p}: {e}");
                    }
                }
            }
        }
        "provenance" => {
            if let Err(e) = gather(&a.submit) {
                let _ = writeln!(logs.err, "[bpsc wrap] gathering provenance: {e}");
                error = Some(e.to_string());
                exit = 1;
            }
            // Also load the records into the campaign's SQLite store (not fatal: the record
            // files stay the ground truth; `bpsc provenance ingest` can be run again).
            if std::env::var_os("BPSC_NO_SQLITE").is_none() {
                let db = crate::provstore::default_db(&a.submit);
                match crate::provstore::ingest(&a.submit, &db) {
                    Ok(r) => {
                        let _ = writeln!(logs.out, "[bpsc wrap] {} records ({} new) in {}", r.records, r.new, db.display());
                    }
                    Err(e) => {
                        let _ = writeln!(logs.err, "[bpsc wrap] provenance store {}: {e}", db.display());
                    }
                }
            }
        }
        _ => {}
    }
    let (t1, end) = now();
    let rec = json!({
        "record": 1,
        "job_id": job,
        "kind": kind,
        "group": a.group,
        "index": index,
        "attempt": attempt,
        "host": host,
        "start": start,
        "end": end,
        "seconds": t1.duration_since(t0).map(|d| d.as_secs_f64()).unwrap_or(0.0),
        "exit_code": exit,
        "skipped": skipped.is_some(),
        "signal": signal,
        "peak_rss_kib": children_maxrss_kib(),
        "software": std::env::var("BPSC_SOFTWARE").ok(),
        "env_digest": env_digest(),
        "quanta": quanta_rec,
        "inputs": inputs,
        "outputs": outputs,
        "error": error,
        "engine_job": std::env::var("SLURM_JOB_ID").ok().or_else(|| std::env::var("_CONDOR_JOB_AD").ok().map(|_| "condor".into())),
        "log": {"out": logs.out_path, "err": logs.err_path},
    });
    let _ = writeln!(logs.out, "[bpsc wrap] exit {exit} at {end}");
    if let Err(e) = write_record(&a.submit, &job, attempt, &rec) {
        eprintln!("bpsc wrap: writing provenance: {e}");
        if exit == 0 {
            return EXIT_WRAPPER;
        }
    }
    exit
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
    let tmp = dir.join(".campaign.jsonl.tmp");
    let mut out = io::BufWriter::new(std::fs::File::create(&tmp)?);
    for n in &names {
        let text = std::fs::read_to_string(dir.join(n))?;
        out.write_all(text.trim_end().as_bytes())?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    drop(out);
    std::fs::rename(&tmp, dir.join("campaign.jsonl"))?;
    Ok(names.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn skip_check_reads_the_latest_record_of_each_parent() {
        let d = std::env::temp_dir().join(format!("bpsc-wrap-skip-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let task = |parents: &[&str]| json!({"id": "c", "parents": parents});
        assert_eq!(failed_parent(&d, &task(&[])), None);
        assert!(failed_parent(&d, &task(&["a"])).is_some_and(|m| m.contains("no provenance record")));
        write_record(&d, "a", 1, &json!({"exit_code": 1})).expect("record");
        assert!(failed_parent(&d, &task(&["a"])).is_some_and(|m| m.contains("attempt 1 exited 1")));
        write_record(&d, "a", 2, &json!({"exit_code": 0})).expect("record");
        assert_eq!(failed_parent(&d, &task(&["a"])), None);
        write_record(&d, "b", 1, &json!({"exit_code": EXIT_SKIPPED})).expect("record");
        assert!(failed_parent(&d, &task(&["a", "b"])).is_some_and(|m| m.contains("parent b")));
        let _ = std::fs::remove_dir_all(&d);
    }
}
