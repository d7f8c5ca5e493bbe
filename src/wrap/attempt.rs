//! Attempt numbers, per-attempt logs, and records.
//!
//! # Numbering (never reused)
//!
//! An attempt reserves its number `N` by creating its log `logs/GROUP/JOB.N.out` with
//! `O_CREAT|O_EXCL` (atomic, also on NFS v3 and later): the first `N` from the floor (1, or
//! the engine's `--attempt`) whose record `provenance/JOB.N.json` does not exist and whose
//! log it creates.  Two attempts racing for one number cannot both win, and an attempt's log
//! is always its own (never appended to another attempt's).  The running attempt holds an
//! exclusive `flock` on its `.out` log for as long as it or its payload lives (the payload
//! inherits the descriptor).
//!
//! # Attempts that left no record
//!
//! SIGKILL (the engine's hard kill after its grace period, the OOM killer choosing the
//! wrapper, a lost node) leaves a log and no record.  The next attempt of the job finds such
//! a log while numbering; when the log's lock is free (its writer and payload are gone) it
//! writes the record the killed attempt could not: `lost: true`, `exit_code: null`, host and
//! start from the log's first line.  It is written without replacing anything, and a late
//! real record (an attempt thought dead that was not) replaces it.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

/// The attempt's log files.
pub struct Logs {
    pub out: File,
    pub err: File,
    pub out_path: PathBuf,
    pub err_path: PathBuf,
}

fn lock(f: &File, wait: bool) -> io::Result<()> {
    let op = libc::LOCK_EX | if wait { 0 } else { libc::LOCK_NB };
    // SAFETY: flock on an open descriptor.
    if unsafe { libc::flock(f.as_raw_fd(), op) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// What [`reserve`] found.
pub struct Reserved {
    pub attempt: u32,
    pub logs: Logs,
    /// Earlier attempts with a log and no record.
    pub unrecorded: Vec<u32>,
}

/// `logs/GROUP`.
pub fn log_dir(submit: &Path, group: &str) -> PathBuf {
    submit.join("logs").join(group)
}

/// Reserve the job's next attempt number (at least `floor`) and open its logs.
pub fn reserve(submit: &Path, group: &str, job: &str, floor: u32) -> io::Result<Reserved> {
    let dir = log_dir(submit, group);
    std::fs::create_dir_all(&dir)?;
    let prov = submit.join("provenance");
    let mut unrecorded = Vec::new();
    let mut n = floor.max(1);
    loop {
        let out_path = dir.join(format!("{job}.{n}.out"));
        if prov.join(format!("{job}.{n}.json")).exists() {
            n += 1;
            continue;
        }
        match OpenOptions::new().write(true).create_new(true).open(&out_path) {
            Ok(out) => {
                lock(&out, false)?;
                let err_path = dir.join(format!("{job}.{n}.err"));
                let err = OpenOptions::new().write(true).create(true).truncate(true).open(&err_path)?;
                return Ok(Reserved { attempt: n, logs: Logs { out, err, out_path, err_path }, unrecorded });
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                unrecorded.push(n);
                n += 1;
            }
            Err(e) => return Err(e),
        }
        if n > floor.max(1) + 100_000 {
            return Err(io::Error::other(format!("{}: no free attempt number", dir.display())));
        }
    }
}

/// The first line the wrapper writes to an attempt's `.out` log.
pub fn header(job: &str, kind: &str, attempt: u32, host: &str, start: &str) -> String {
    format!("[bpsc wrap] job {job} ({kind}) attempt {attempt} on {host} at {start} pid {}", std::process::id())
}

/// Host and start from a [`header`] line.
fn parse_header(line: &str) -> (Option<String>, Option<String>) {
    let Some(rest) = line.strip_prefix("[bpsc wrap] job ") else { return (None, None) };
    let Some((_, rest)) = rest.split_once(" on ") else { return (None, None) };
    let Some((host, rest)) = rest.split_once(" at ") else { return (Some(rest.to_string()), None) };
    let start = rest.split(' ').next().unwrap_or("").to_string();
    (Some(host.to_string()), (!start.is_empty()).then_some(start))
}

/// Write records for the `unrecorded` attempts whose writers are gone (see the module
/// documentation).  Returns the attempts recorded as lost.
pub fn record_lost(submit: &Path, group: &str, index: u64, job: &str, kind: &str, by: u32, unrecorded: &[u32]) -> Vec<u32> {
    let dir = log_dir(submit, group);
    let mut lost = Vec::new();
    for &m in unrecorded {
        let out_path = dir.join(format!("{job}.{m}.out"));
        let Ok(f) = OpenOptions::new().read(true).open(&out_path) else { continue };
        match lock(&f, false) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EWOULDBLOCK) => continue, // still running
            Err(_) => {}                                                       // no locks here: assume gone
        }
        let first = io::BufReader::new(&f).lines().next().and_then(|l| l.ok()).unwrap_or_default();
        let (host, start) = parse_header(&first);
        let rec = json!({
            "record": 1,
            "job_id": job,
            "kind": kind,
            "group": group,
            "index": index,
            "attempt": m,
            "host": host,
            "start": start,
            "end": null,
            "exit_code": null,
            "signal": null,
            "lost": true,
            "skipped": false,
            "error": format!("attempt {m} left no record: its wrapper was killed (SIGKILL after the engine's grace period, an out-of-memory kill of the wrapper, a lost node); recorded by attempt {by}"),
            "log": {"out": out_path, "err": dir.join(format!("{job}.{m}.err"))},
        });
        if write_record_new(submit, job, m, &rec).unwrap_or(false) {
            lost.push(m);
        }
    }
    lost
}

fn record_tmp(dir: &Path, job: &str, attempt: u32, rec: &Value) -> io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{job}.{attempt}.json.tmp-{}", std::process::id()));
    let mut f = File::create(&tmp)?;
    f.write_all(serde_json::to_string(rec).unwrap_or_default().as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()?;
    Ok(tmp)
}

/// Write a record atomically (temporary file, fsync, rename over any earlier one).
pub fn write_record(submit: &Path, job: &str, attempt: u32, rec: &Value) -> io::Result<PathBuf> {
    let dir = submit.join("provenance");
    let path = dir.join(format!("{job}.{attempt}.json"));
    let tmp = record_tmp(&dir, job, attempt, rec)?;
    std::fs::rename(&tmp, &path)?;
    super::files::sync_dir(&dir);
    Ok(path)
}

/// Write a record atomically unless one exists: `Ok(false)` when it does.
pub fn write_record_new(submit: &Path, job: &str, attempt: u32, rec: &Value) -> io::Result<bool> {
    let dir = submit.join("provenance");
    let path = dir.join(format!("{job}.{attempt}.json"));
    let tmp = record_tmp(&dir, job, attempt, rec)?;
    let r = std::fs::hard_link(&tmp, &path);
    let _ = std::fs::remove_file(&tmp);
    match r {
        Ok(()) => {
            super::files::sync_dir(&dir);
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

/// The latest attempt record of `job`: (attempt, exit code; -1 when it has none).  Probes
/// `JOB.1.json`, `JOB.2.json`, ... (no directory listing), looking past a gap of up to two
/// numbers (an attempt killed before anything recorded it).
pub fn latest_record(submit: &Path, job: &str) -> Option<(u32, i64)> {
    let dir = submit.join("provenance");
    let mut last = None;
    let mut n = 1u32;
    let mut misses = 0;
    while misses < 3 {
        match std::fs::read_to_string(dir.join(format!("{job}.{n}.json"))) {
            Ok(text) => {
                let code = serde_json::from_str::<Value>(&text).ok().and_then(|v| v["exit_code"].as_i64()).unwrap_or(-1);
                last = Some((n, code));
                misses = 0;
            }
            Err(_) => misses += 1,
        }
        n += 1;
    }
    last
}

/// Why this task must not run: the first parent whose latest record is missing or failed.
/// On a filesystem that shows other nodes' files late, `BPSC_PARENT_WAIT=SECONDS` makes it
/// look again, once a second, for that long before calling a parent's record missing.
pub fn failed_parent(submit: &Path, task: &Value) -> Option<String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skip_check_reads_the_latest_record_of_each_parent() {
        let d = tempfile::tempdir().unwrap();
        let d = d.path();
        let task = |parents: &[&str]| json!({"id": "c", "parents": parents});
        assert_eq!(failed_parent(d, &task(&[])), None);
        assert!(failed_parent(d, &task(&["a"])).is_some_and(|m| m.contains("no provenance record")));
        write_record(d, "a", 1, &json!({"exit_code": 1})).expect("record");
        assert!(failed_parent(d, &task(&["a"])).is_some_and(|m| m.contains("attempt 1 exited 1")));
        write_record(d, "a", 2, &json!({"exit_code": 0})).expect("record");
        assert_eq!(failed_parent(d, &task(&["a"])), None);
        write_record(d, "b", 1, &json!({"exit_code": crate::submitdir::exit::WRAP_SKIPPED})).expect("record");
        assert!(failed_parent(d, &task(&["a", "b"])).is_some_and(|m| m.contains("parent b")));
        // A gap (an attempt killed before anything recorded it) does not hide later attempts.
        write_record(d, "a", 4, &json!({"exit_code": 1})).expect("record");
        assert!(failed_parent(d, &task(&["a"])).is_some_and(|m| m.contains("attempt 4")));
    }

    #[test]
    fn attempt_numbers_are_reserved_once_and_logs_are_never_shared() {
        let d = tempfile::tempdir().unwrap();
        let a = reserve(d.path(), "g", "j", 1).unwrap();
        let b = reserve(d.path(), "g", "j", 1).unwrap();
        assert_eq!((a.attempt, b.attempt), (1, 2), "a running attempt's number is taken");
        assert_eq!(b.unrecorded, vec![1]);
        // Attempt 1 still holds its lock: not lost.
        assert!(record_lost(d.path(), "g", 0, "j", "compute", 2, &b.unrecorded).is_empty());
        drop(a);
        // Another test thread that forks a child at this moment lends it attempt 1's
        // descriptor (and so its lock) until the child execs: under load that can take a
        // while, so wait for it to pass (seen once, with CI running beside the tests).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let lost = loop {
            let lost = record_lost(d.path(), "g", 0, "j", "compute", 2, &b.unrecorded);
            if !lost.is_empty() || std::time::Instant::now() > deadline {
                break lost;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        assert_eq!(lost, vec![1]);
        let lost: Value = serde_json::from_str(&std::fs::read_to_string(d.path().join("provenance/j.1.json")).unwrap()).unwrap();
        assert_eq!(lost["lost"], true);
        assert!(lost["exit_code"].is_null());
        // A record written later by a real attempt 1 would win; a second lost record does not.
        assert!(!write_record_new(d.path(), "j", 1, &json!({"x": 1})).unwrap());
        // The engine's floor (HTCondor's sandbox passes --attempt) is respected.
        assert_eq!(reserve(d.path(), "g", "j", 7).unwrap().attempt, 7);
        assert_eq!(reserve(d.path(), "g", "j", 1).unwrap().attempt, 3);
    }

    #[test]
    fn header_lines_parse_back() {
        let h = header("calibrate_1_2", "compute", 3, "node7.example", "2026-01-02T03:04:05.006Z");
        assert_eq!(parse_header(&h), (Some("node7.example".into()), Some("2026-01-02T03:04:05.006Z".into())));
    }
}
