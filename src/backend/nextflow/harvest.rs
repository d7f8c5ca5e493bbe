//! Nextflow state: its trace file (one line per task attempt, tab-separated, with a
//! header naming the fields).  The bpsc Nextflow backend tags every task with its job id.

use std::path::{Path, PathBuf};

use crate::backend::state::{complete_lines, datetime_epoch, duration_seconds, memory_kib, read_text, EState, EngineState};

/// The trace file the backend's nextflow.config asks for (`trace.file`); `trace.txt`
/// (Nextflow's default name) at the top of the submit directory is looked at too.
pub fn trace_files(submit: &Path) -> Vec<PathBuf> {
    vec![submit.join("nextflow").join("trace.tsv"), submit.join("trace.txt")]
}

pub fn harvest(submit: &Path) -> EngineState {
    let mut st = EngineState::new("nextflow");
    let mut notes = Vec::new();
    for p in trace_files(submit) {
        if let Some(t) = read_text(&p, &mut notes) {
            st.overlay(parse_trace(&t, &p.display().to_string()));
            st.unreadable.extend(notes);
            st.engine = "nextflow".into();
            return st;
        }
    }
    st.unreadable.extend(notes);
    st.unreadable.push(format!("no Nextflow trace file ({}): not run yet", trace_files(submit)[0].display()));
    st
}

/// Times: epoch milliseconds (`trace.raw`) or `YYYY-MM-DD HH:MM:SS.mmm`.
fn time_of(s: &str) -> Option<i64> {
    if let Ok(ms) = s.parse::<i64>() {
        return Some(ms / 1000);
    }
    datetime_epoch(s)
}

pub fn parse_trace(text: &str, what: &str) -> EngineState {
    let mut st = EngineState::new("nextflow");
    st.sources.push(what.to_string());
    let mut lines = complete_lines(text, what, &mut st.unreadable);
    let Some(header) = lines.next() else { return st };
    let cols: Vec<&str> = header.split('\t').collect();
    let col = |n: &str| cols.iter().position(|c| *c == n);
    let Some(c_status) = col("status") else {
        st.unreadable.push(format!("{what}: header without a status field: {header:?}"));
        return st;
    };
    let c_key = col("tag").or(col("name"));
    let Some(c_key) = c_key else {
        st.unreadable.push(format!("{what}: header without tag or name"));
        return st;
    };
    let (c_exit, c_attempt, c_start, c_real, c_rss, c_host) =
        (col("exit"), col("attempt"), col("start"), col("realtime"), col("peak_rss"), col("hostname"));
    let mut bad = 0u64;
    for l in lines {
        let f: Vec<&str> = l.split('\t').collect();
        if f.len() != cols.len() {
            bad += 1;
            continue;
        }
        let get = |c: Option<usize>| c.and_then(|i| f.get(i).copied()).filter(|v| !v.is_empty() && *v != "-");
        // `name` is `process (tag)` when there is no tag column.
        let key = if cols[c_key] == "name" {
            f[c_key].rsplit_once(" (").map(|x| x.1.trim_end_matches(')')).unwrap_or(f[c_key])
        } else {
            f[c_key]
        };
        let attempt: u32 = get(c_attempt).and_then(|a| a.parse().ok()).unwrap_or(1);
        st.events += 1;
        let j = st.job(key);
        if attempt < j.attempts {
            continue; // an older attempt listed after a newer one
        }
        j.attempts = attempt;
        j.state = match f[c_status] {
            "COMPLETED" | "CACHED" => Some(EState::Succeeded),
            "FAILED" => Some(EState::Failed),
            "ABORTED" => Some(if get(c_start).is_some() { EState::Failed } else { EState::Skipped }),
            "RUNNING" => Some(EState::Running),
            "SUBMITTED" | "NEW" => Some(EState::Pending),
            other => {
                j.detail = Some(format!("unknown status {other}"));
                None
            }
        };
        j.exit_code = get(c_exit).and_then(|e| e.parse().ok());
        j.started = get(c_start).and_then(time_of);
        j.wall_seconds = get(c_real).and_then(duration_seconds);
        j.peak_rss_kib = get(c_rss).and_then(|r| memory_kib(r, 1.0 / 1024.0));
        j.host = get(c_host).map(|h| h.to_string());
    }
    if bad > 0 {
        st.unreadable.push(format!("{what}: {bad} lines with the wrong number of fields"));
    }
    st
}
