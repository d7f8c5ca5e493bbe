//! Slurm state: `sacct` (every attempt, with `-D`) plus `squeue` (queued and running
//! tasks), for the job ids `submit.sh` recorded.
//!
//! The Slurm backend's `submit.sh` records one line per sbatch submission in
//! `slurm/jobids` (`SLURM_ID VAR LABEL`), and `slurm/arrays.tsv` says which task-table
//! rows each submission runs (`VAR GROUP SCRIPT OFFSET ARRAY JOBS FIRST_JOB`): array task
//! K of submission VAR runs row OFFSET+K of `tasks/GROUP.jsonl`.  Engine job names here
//! are `GROUP#INDEX`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::backend::state::{clock_seconds, complete_lines, datetime_epoch, memory_kib, read_text, EState, EngineState};

pub fn jobids_file(submit: &Path) -> PathBuf {
    submit.join("slurm").join("jobids")
}
pub fn arrays_file(submit: &Path) -> PathBuf {
    submit.join("slurm").join("arrays.tsv")
}

/// `sacct` columns bpsc asks for.
pub const SACCT_FORMAT: &str = "JobID,JobIDRaw,JobName,State,ExitCode,Start,End,Elapsed,NodeList,MaxRSS";
/// `squeue` output format bpsc asks for (`|`-separated, like the reference outputs).
pub const SQUEUE_FORMAT: &str = "%i|%A|%F|%K|%j|%T|%r|%E";

/// Slurm submission id -> (group, offset).
#[derive(Debug, Default, Clone)]
pub struct IdMap {
    pub by_id: HashMap<u64, (String, u64)>,
}

impl IdMap {
    /// The engine name of array task `task` of submission `id`.
    pub fn name(&self, id: u64, task: Option<u64>) -> Option<String> {
        let (g, off) = self.by_id.get(&id)?;
        Some(format!("{g}#{}", off + task.unwrap_or(0)))
    }
    pub fn ids(&self) -> Vec<u64> {
        let mut v: Vec<u64> = self.by_id.keys().copied().collect();
        v.sort_unstable();
        v
    }
}

/// Read `slurm/jobids` and `slurm/arrays.tsv`.
pub fn read_ids(jobids: &str, arrays: &str, unreadable: &mut Vec<String>) -> IdMap {
    let mut var: HashMap<String, (String, u64)> = HashMap::new();
    for l in complete_lines(arrays, "slurm/arrays.tsv", unreadable) {
        if l.starts_with('#') || l.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = l.split('\t').collect();
        match (f.first(), f.get(1), f.get(3).and_then(|o| o.parse::<u64>().ok())) {
            (Some(v), Some(g), Some(off)) => {
                var.insert(v.to_string(), (g.to_string(), off));
            }
            _ => unreadable.push(format!("slurm/arrays.tsv: cannot read line {l:?}")),
        }
    }
    let mut m = IdMap::default();
    for l in complete_lines(jobids, "slurm/jobids", unreadable) {
        let f: Vec<&str> = l.split_whitespace().collect();
        let (Some(id), Some(v)) = (f.first().and_then(|x| x.parse::<u64>().ok()), f.get(1)) else {
            if !l.trim().is_empty() {
                unreadable.push(format!("slurm/jobids: cannot read line {l:?}"));
            }
            continue;
        };
        // Fan-in jobs have no task-table rows.
        if let Some(x) = var.get(*v) {
            m.by_id.insert(id, x.clone());
        }
    }
    m
}

/// `1_0` -> (1, Some(0)); `11` -> (11, None); `1_[0-9%4]` -> (1, None) (a pending range).
fn split_jobid(s: &str) -> Option<(u64, Option<u64>)> {
    match s.split_once('_') {
        Some((a, t)) => Some((a.parse().ok()?, t.parse().ok())),
        None => Some((s.parse().ok()?, None)),
    }
}

/// The most task ids one array can have: Slurm's `MaxArraySize` is at most 4,000,001.
pub const MAX_ARRAY_TASKS: u64 = 4_000_001;

/// `0-9`, `0-3,5,7-9%4`, `[0-9]` -> task ids; at most [`MAX_ARRAY_TASKS`] of them (a
/// damaged line cannot make status allocate without bound: found by fuzzing, where
/// `1-9999999,1-9999999,...` took gigabytes).
pub fn expand_tasks(spec: &str) -> Vec<u64> {
    let spec = spec.trim_start_matches('[').trim_end_matches(']');
    let spec = spec.split('%').next().unwrap_or("");
    let mut out = Vec::new();
    for part in spec.split(',') {
        let room = MAX_ARRAY_TASKS.saturating_sub(out.len() as u64);
        if room == 0 {
            break;
        }
        let part = part.split(':').next().unwrap_or(part); // step syntax a-b:s not used by bpsc
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<u64>(), b.parse::<u64>()) {
                    if b >= a && b - a < MAX_ARRAY_TASKS {
                        out.extend(a..=b.min(a + room - 1));
                    }
                }
            }
            None => {
                if let Ok(a) = part.parse() {
                    out.push(a);
                }
            }
        }
    }
    out
}

fn slurm_state(state: &str, start: Option<&str>) -> Option<EState> {
    let word = state.split_whitespace().next().unwrap_or("");
    Some(match word {
        "PENDING" | "REQUEUED" | "REQUEUE_HOLD" | "REQUEUE_FED" | "RESV_DEL_HOLD" | "SUSPENDED" | "STOPPED" | "RESIZING" => EState::Pending,
        "RUNNING" | "CONFIGURING" | "COMPLETING" | "SIGNALING" | "STAGE_OUT" => EState::Running,
        "COMPLETED" => EState::Succeeded,
        "CANCELLED" if matches!(start, Some("None") | Some("Unknown") | None) => EState::Skipped,
        "CANCELLED" | "FAILED" | "TIMEOUT" | "OUT_OF_MEMORY" | "NODE_FAIL" | "PREEMPTED" | "BOOT_FAIL" | "DEADLINE" => EState::Failed,
        _ => return None,
    })
}

/// `sacct --parsable2` output (a header line, then `|`-separated rows; job steps such as
/// `1_0.batch` give MaxRSS).  Rows repeat per attempt with `-D`; the last one wins.
pub fn parse_sacct(text: &str, ids: &IdMap, what: &str) -> EngineState {
    let mut st = EngineState::new("slurm");
    st.sources.push(what.to_string());
    let mut lines = complete_lines(text, what, &mut st.unreadable);
    let Some(header) = lines.next() else { return st };
    let cols: Vec<&str> = header.split('|').collect();
    let col = |n: &str| cols.iter().position(|c| *c == n);
    let (Some(c_id), Some(c_state)) = (col("JobID"), col("State")) else {
        st.unreadable.push(format!("{what}: header without JobID and State: {header:?}"));
        return st;
    };
    let (c_exit, c_start, c_end, c_elapsed, c_nodes, c_rss) =
        (col("ExitCode"), col("Start"), col("End"), col("Elapsed"), col("NodeList"), col("MaxRSS"));
    let mut bad = 0u64;
    let mut unmapped = 0u64;
    for l in lines {
        let f: Vec<&str> = l.split('|').collect();
        if f.len() != cols.len() {
            bad += 1;
            continue;
        }
        let get = |c: Option<usize>| c.and_then(|i| f.get(i).copied()).filter(|v| !v.is_empty());
        let jobid = f[c_id];
        let (base, step) = match jobid.split_once('.') {
            Some((b, s)) => (b, Some(s)),
            None => (jobid, None),
        };
        let Some((id, task)) = split_jobid(base) else {
            bad += 1;
            continue;
        };
        let Some(name) = ids.name(id, task) else {
            unmapped += 1;
            continue;
        };
        st.events += 1;
        let j = st.job(&name);
        if step.is_some() {
            if let Some(k) = get(c_rss).and_then(|v| memory_kib(v, 1.0 / 1024.0)) {
                j.peak_rss_kib = Some(j.peak_rss_kib.unwrap_or(0).max(k));
            }
            continue;
        }
        // A job Slurm cancelled while it was still pending (e.g. --kill-on-invalid-dep) has no
        // node: it never started, whatever its Start column says.
        let start = if get(c_nodes).is_some_and(|n| n == "None assigned") { None } else { get(c_start) };
        j.attempts += 1;
        j.state = slurm_state(f[c_state], start);
        if j.state.is_none() {
            j.detail = Some(format!("unknown Slurm state {}", f[c_state]));
        }
        j.exit_code = None;
        j.signal = None;
        if let Some((code, sig)) = get(c_exit).and_then(|e| e.split_once(':')) {
            let (code, sig) = (code.parse::<i64>().unwrap_or(0), sig.parse::<i64>().unwrap_or(0));
            if sig != 0 {
                j.signal = Some(sig);
            } else if j.state.is_some_and(EState::is_final) {
                j.exit_code = Some(code);
            }
        }
        j.started = start.and_then(datetime_epoch);
        j.wall_seconds = get(c_elapsed).and_then(clock_seconds);
        if let (Some(s), Some(e)) = (j.started, get(c_end).and_then(datetime_epoch)) {
            j.wall_seconds = Some((e - s).max(0) as f64);
        }
        j.host = get(c_nodes).filter(|n| *n != "None assigned").map(|n| n.to_string());
        if matches!(j.state, Some(EState::Failed) | Some(EState::Skipped)) {
            j.detail = Some(f[c_state].to_string());
        }
    }
    if bad > 0 {
        st.unreadable.push(format!("{what}: {bad} rows not in the expected format"));
    }
    if unmapped > 0 {
        st.unreadable.push(format!("{what}: {unmapped} rows of jobs bpsc did not record (fan-in jobs or other campaigns)"));
    }
    st
}

/// `squeue -o '%i|%A|%F|%K|%j|%T|%r|%E'` output (with its header).  Pending array ranges
/// (`1_[0-9]`) expand to one entry per task.
pub fn parse_squeue(text: &str, ids: &IdMap, what: &str) -> EngineState {
    let mut st = EngineState::new("slurm");
    st.sources.push(what.to_string());
    let mut bad = 0u64;
    for l in complete_lines(text, what, &mut st.unreadable) {
        let f: Vec<&str> = l.split('|').collect();
        if f.len() < 8 {
            if !l.trim().is_empty() {
                bad += 1;
            }
            continue;
        }
        if f[0] == "JOBID" {
            continue;
        }
        let Ok(array) = f[2].parse::<u64>() else {
            bad += 1;
            continue;
        };
        let tasks: Vec<Option<u64>> = if f[3] == "N/A" { vec![None] } else { expand_tasks(f[3]).into_iter().map(Some).collect() };
        let (state, reason) = (f[5], f[6]);
        let s = match state {
            "PENDING" if reason.starts_with("DependencyNeverSatisfied") => EState::Skipped,
            // `scontrol hold` (a user's or an administrator's) or `requeuehold`: starts only when
            // released.
            _ if super::ops::held_reason(reason) => EState::Held,
            other => slurm_state(other, None).unwrap_or(EState::Pending),
        };
        for t in tasks {
            let Some(name) = ids.name(array, t) else { continue };
            st.events += 1;
            let j = st.job(&name);
            j.state = Some(s);
            j.detail = (reason != "None").then(|| format!("{state} ({reason})"));
        }
    }
    if bad > 0 {
        st.unreadable.push(format!("{what}: {bad} lines not in the expected format"));
    }
    st
}

fn run(cmd: &str, args: &[String], st: &mut EngineState) -> Option<String> {
    let shown = format!("{cmd} {}", args.join(" "));
    match Command::new(cmd).args(args).output() {
        // squeue -j on ids that have all left the queue says so and fails: nothing queued.
        Ok(o) if o.status.success() || String::from_utf8_lossy(&o.stderr).contains("Invalid job id") => {
            st.sources.push(shown);
            Some(String::from_utf8_lossy(&o.stdout).into_owned())
        }
        Ok(o) => {
            st.unreadable.push(format!("`{shown}` failed ({}): {}", o.status, String::from_utf8_lossy(&o.stderr).trim()));
            None
        }
        Err(e) => {
            st.unreadable.push(format!("cannot run {cmd}: {e} (not a Slurm submit host?)"));
            None
        }
    }
}

/// Ask Slurm about the recorded jobs.
pub fn harvest(submit: &Path) -> EngineState {
    let mut st = EngineState::new("slurm");
    let mut notes = Vec::new();
    let Some(jobids) = read_text(&jobids_file(submit), &mut notes) else {
        st.unreadable.extend(notes);
        st.unreadable.push(format!("{}: not submitted yet (slurm/submit.sh writes it)", jobids_file(submit).display()));
        return st;
    };
    // The ids submit.sh recorded: a source, and the proof that it was submitted.
    st.sources.push(jobids_file(submit).display().to_string());
    let arrays = read_text(&arrays_file(submit), &mut notes).unwrap_or_default();
    let ids = read_ids(&jobids, &arrays, &mut notes);
    st.unreadable.extend(notes);
    let all = ids.ids();
    if all.is_empty() {
        return st;
    }
    let mut queued_any = false;
    for chunk in all.chunks(500) {
        let list = chunk.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(",");
        let args =
            vec!["-D".into(), "--parsable2".into(), "--noconvert".into(), "-j".into(), list.clone(), format!("--format={SACCT_FORMAT}")];
        if let Some(out) = run("sacct", &args, &mut st) {
            let s = parse_sacct(&out, &ids, "sacct");
            st.overlay(s);
        }
        let args = vec!["--noheader".into(), "-r".into(), "-j".into(), list, "-o".into(), SQUEUE_FORMAT.into()];
        if let Some(out) = run("squeue", &args, &mut st) {
            let s = parse_squeue(&out, &ids, "squeue");
            queued_any |= s.events > 0;
            st.overlay(s);
        } else {
            queued_any = true;
        }
    }
    // Nothing queued any more: the campaign has ended.
    if !queued_any {
        st.finished = Some(true);
    }
    st.engine = "slurm".into();
    st
}
