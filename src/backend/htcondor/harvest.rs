//! HTCondor/DAGMan state: the nodes' job event log, the node status file, `dagman.out`,
//! the rescue DAGs, the JOBSTATE_LOG and the metrics file.
//!
//! Sources are read weakest first and overlaid (see [`harvest`]): the latest rescue DAG
//! (nodes DONE before the last run, failed nodes), the metrics file (left by the last
//! DAGMan that exited), the node status file (a snapshot
//! DAGMan rewrites every NODE_STATUS_FILE period; the only source of FUTILE nodes and the
//! DAG's own status), `dagman.out` (node completions, the exit status), the JOBSTATE_LOG,
//! then the nodes log (every job event as it happens: submit, execute with host, evict,
//! hold, terminate with return value or signal, POST script result).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::backend::state::{complete_lines, datetime_epoch, local_epoch, read_text, EState, EngineState};

/// Where DAGMan writes its files for the DAG the htcondor backend writes.  One function
/// per file so a change of layout is a one-line change.
pub fn dag_file(submit: &Path) -> PathBuf {
    submit.join(super::DAG_FILE)
}
pub fn nodes_log(submit: &Path) -> PathBuf {
    submit.join(format!("{}.nodes.log", super::DAG_FILE))
}
pub fn node_status_file(submit: &Path) -> PathBuf {
    submit.join(format!("{}.status", super::DAG_FILE))
}
pub fn dagman_out(submit: &Path) -> PathBuf {
    submit.join(format!("{}.dagman.out", super::DAG_FILE))
}
pub fn jobstate_log(submit: &Path) -> PathBuf {
    submit.join(format!("{}.jobstate.log", super::DAG_FILE))
}
pub fn metrics_file(submit: &Path) -> PathBuf {
    submit.join(format!("{}.metrics", super::DAG_FILE))
}
/// The newest rescue DAG (`workflow.dag.rescueNNN`), if any.
pub fn latest_rescue(submit: &Path) -> Option<PathBuf> {
    let prefix = format!("{}.rescue", super::DAG_FILE);
    std::fs::read_dir(submit)
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            let k: u32 = n.strip_prefix(&prefix)?.parse().ok()?;
            Some((k, e.path()))
        })
        .max_by_key(|x| x.0)
        .map(|x| x.1)
}

/// Read every DAGMan source of a submit directory.
pub fn harvest(submit: &Path) -> EngineState {
    let mut st = EngineState::new("htcondor");
    let mut notes = Vec::new();
    if let Some(p) = latest_rescue(submit) {
        if let Some(t) = read_text(&p, &mut notes) {
            st.overlay(parse_rescue(&t, &p.display().to_string()));
        }
    }
    // The metrics file is left from the last DAGMan that exited; a rescue run in progress
    // says so in dagman.out and the job-state log, read after it.
    let mp = metrics_file(submit);
    if let Some(t) = read_text(&mp, &mut notes) {
        st.overlay(parse_metrics(&t, &mp.display().to_string()));
    }
    type Parser = fn(&str, &str) -> EngineState;
    let sources: [(PathBuf, Parser); 4] = [
        (node_status_file(submit), parse_node_status),
        (dagman_out(submit), parse_dagman_out),
        (jobstate_log(submit), super::jobstate::parse),
        (nodes_log(submit), parse_nodes_log),
    ];
    for (p, f) in sources {
        if let Some(t) = read_text(&p, &mut notes) {
            st.overlay(f(&t, &p.display().to_string()));
        }
    }
    st.unreadable.extend(notes);
    st.engine = "htcondor".into();
    st
}

/// DAG node name -> bpsc job id: node names are the job ids, except that a DAGMan keyword
/// got a leading `_` (see backend::htcondor::node_names).
pub fn node_to_job(node: &str) -> String {
    match node.strip_prefix('_') {
        Some(rest) if super::RESERVED_NODE_NAMES.iter().any(|r| r.eq_ignore_ascii_case(rest)) => rest.to_string(),
        _ => node.to_string(),
    }
}

// ------------------------------------------------------------------ nodes log

/// `NNN (cluster.proc.subproc) DATE TIME text`: (event code, cluster.proc, epoch, text).
fn event_header(line: &str) -> Option<(u32, String, Option<i64>, &str)> {
    let b = line.as_bytes();
    if b.len() < 6 || !b[..3].iter().all(|c| c.is_ascii_digit()) || b[3] != b' ' || b[4] != b'(' {
        return None;
    }
    let code: u32 = line[..3].parse().ok()?;
    let close = line.find(')')?;
    let id = &line[5..close];
    let mut parts = id.split('.');
    let cluster: u64 = parts.next()?.parse().ok()?;
    let proc_: u64 = parts.next().unwrap_or("0").parse().ok()?;
    let rest = line.get(close + 2..)?;
    // DATE TIME: `2025-02-13 11:59:47` (ISO) or `02/13 11:59:47` (old, no year).
    let mut it = rest.splitn(3, ' ');
    let date = it.next()?;
    let time = it.next()?;
    let text = it.next().unwrap_or("");
    let epoch = if date.contains('-') {
        datetime_epoch(&format!("{date} {time}"))
    } else {
        let (m, d) = date.split_once('/')?;
        let t: Vec<i64> = time.split(':').filter_map(|x| x.parse().ok()).collect();
        match t.as_slice() {
            [h, mi, s] => local_epoch(1970, m.parse().ok()?, d.parse().ok()?, *h, *mi, *s),
            _ => None,
        }
    };
    Some((code, format!("{cluster}.{proc_}"), epoch, text))
}

/// The host in `Job executing on host: <10.0.0.33:9618?addrs=...&alias=test02&...>`.
fn host_of_address(text: &str) -> Option<String> {
    let start = text.find('<')?;
    let inner = &text[start + 1..text[start..].find('>').map(|e| start + e).unwrap_or(text.len())];
    if let Some(a) = inner.split(['?', '&']).find_map(|kv| kv.strip_prefix("alias=")) {
        return Some(a.to_string());
    }
    let hostport = inner.split('?').next()?;
    let host = hostport.rsplit_once(':').map(|x| x.0).unwrap_or(hostport);
    (!host.is_empty()).then(|| host.to_string())
}

/// The classic (non-XML) job event log shared by every node job.
pub fn parse_nodes_log(text: &str, what: &str) -> EngineState {
    let mut st = EngineState::new("htcondor");
    st.sources.push(what.to_string());
    let mut node_of: HashMap<String, String> = HashMap::new();
    let mut unknown_events = 0u64;
    let mut bad_lines = 0u64;
    // Split into events: a header line, body lines, `...`.  The last event may be partial.
    let mut lines = complete_lines(text, what, &mut st.unreadable).peekable();
    let mut partial_event = false;
    while let Some(line) = lines.next() {
        if line.trim().is_empty() || line == "..." {
            continue;
        }
        let Some((code, id, epoch, head)) = event_header(line) else {
            bad_lines += 1;
            continue;
        };
        let mut body: Vec<&str> = Vec::new();
        let mut closed = false;
        for l in lines.by_ref() {
            if l == "..." {
                closed = true;
                break;
            }
            body.push(l);
        }
        if !closed {
            partial_event = true;
        }
        st.events += 1;
        // The node: from this event's `DAG Node:` note, or the job's submit event.
        let note = body.iter().find_map(|l| l.trim().strip_prefix("DAG Node:").map(|n| n.trim().to_string()));
        if let (Some(n), 0) = (&note, code) {
            node_of.insert(id.clone(), n.clone());
        }
        let node = if code == 16 { note.clone() } else { node_of.get(&id).cloned().or(note.clone()) };
        let Some(node) = node else {
            unknown_events += 1;
            continue;
        };
        let j = st.job(&node);
        match code {
            0 => {
                j.state = Some(EState::Pending);
                j.attempts += 1;
                j.exit_code = None;
                j.signal = None;
                j.detail = None;
            }
            1 => {
                j.state = Some(EState::Running);
                j.started = epoch;
                let slot_host = body
                    .iter()
                    .find_map(|l| l.trim().strip_prefix("SlotName:").and_then(|s| s.rsplit_once('@')).map(|x| x.1.trim().to_string()));
                j.host = slot_host.or_else(|| host_of_address(head));
            }
            2 => {
                j.state = Some(EState::Failed);
                j.detail = Some("executable error".into());
            }
            4 => {
                j.state = Some(EState::Pending);
                j.detail = Some("evicted".into());
            }
            5 => {
                for l in &body {
                    let l = l.trim();
                    if let Some(r) = l.split("(return value ").nth(1) {
                        let v: i64 = r.trim_end_matches(')').trim().parse().unwrap_or(-1);
                        j.exit_code = Some(v);
                        j.signal = None;
                    } else if let Some(r) = l.split("Abnormal termination (signal ").nth(1) {
                        j.signal = r.trim_end_matches(')').trim().parse().ok();
                        j.exit_code = None;
                    } else if let Some(r) = l.strip_prefix("TimeExecute (s)") {
                        j.wall_seconds = r.trim_start_matches([' ', ':']).split_whitespace().next().and_then(|x| x.parse().ok());
                    } else if let Some(r) = l.strip_prefix("Memory (MB)") {
                        let usage = r.trim_start_matches([' ', ':']).split_whitespace().next().and_then(|x| x.parse::<u64>().ok());
                        if let Some(u) = usage {
                            j.peak_rss_kib = Some(u * 1024);
                        }
                    }
                }
                j.state = Some(if j.exit_code == Some(0) && j.signal.is_none() { EState::Succeeded } else { EState::Failed });
                if let (Some(s), Some(e)) = (j.started, epoch) {
                    if j.wall_seconds.is_none() {
                        j.wall_seconds = Some((e - s).max(0) as f64);
                    }
                }
            }
            6 => {
                for l in &body {
                    let l = l.trim();
                    if let Some((a, b)) = l.split_once("-  MemoryUsage of job (MB)") {
                        let _ = b;
                        if let Ok(mb) = a.trim().parse::<u64>() {
                            j.peak_rss_kib = Some(j.peak_rss_kib.unwrap_or(0).max(mb * 1024));
                        }
                    }
                }
            }
            9 => {
                j.state = Some(EState::Failed);
                j.detail = body.first().map(|l| format!("aborted: {}", l.trim()));
            }
            12 => {
                j.state = Some(EState::Held);
                j.detail = body.first().map(|l| format!("held: {}", l.trim()));
            }
            13 => {
                j.state = Some(EState::Pending);
                j.detail = None;
            }
            16 => {
                // POST script: its result is the node's.
                for l in &body {
                    if let Some(r) = l.split("(return value ").nth(1) {
                        let v: i64 = r.trim_end_matches(')').trim().parse().unwrap_or(-1);
                        j.state = Some(if v == 0 { EState::Succeeded } else { EState::Failed });
                        if v != 0 {
                            j.detail = Some(format!("POST script returned {v}"));
                        }
                    } else if let Some(r) = l.split("Abnormal termination (signal ").nth(1) {
                        j.state = Some(EState::Failed);
                        j.detail = Some(format!("POST script killed by signal {}", r.trim_end_matches(')')));
                    }
                }
            }
            _ => {}
        }
    }
    if partial_event {
        st.unreadable.push(format!("{what}: last event incomplete (no `...` yet); read what it has"));
    }
    if bad_lines > 0 {
        st.unreadable.push(format!("{what}: {bad_lines} lines outside any event"));
    }
    if unknown_events > 0 {
        st.unreadable.push(format!("{what}: {unknown_events} events of jobs with no DAG node (their submit event is missing)"));
    }
    st
}

// ------------------------------------------------------------------ node status file

/// `Key = value; /* comment */` -> (key, value without quotes).
fn ad_attr(line: &str) -> Option<(&str, &str)> {
    let (k, v) = line.split_once(" = ")?;
    let v = v.split("; /*").next().unwrap_or(v).trim().trim_end_matches(';').trim();
    Some((k.trim(), v.trim_matches('"')))
}

/// The NODE_STATUS_FILE: ClassAds in `[ ... ]`.
pub fn parse_node_status(text: &str, what: &str) -> EngineState {
    let mut st = EngineState::new("htcondor");
    st.sources.push(what.to_string());
    let mut ad: Vec<(String, String)> = Vec::new();
    let mut open = false;
    let mut ended = false;
    let lines: Vec<&str> = complete_lines(text, what, &mut st.unreadable).collect();
    let flush = |ad: &mut Vec<(String, String)>, st: &mut EngineState, ended: &mut bool| {
        let get = |k: &str| ad.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str());
        match get("Type") {
            Some("NodeStatus") => {
                if let (Some(node), Some(code)) = (get("Node"), get("NodeStatus").and_then(|v| v.parse::<i64>().ok())) {
                    st.events += 1;
                    let details = get("StatusDetails").filter(|d| !d.is_empty()).map(|d| d.to_string());
                    let retries: u32 = get("RetryCount").and_then(|v| v.parse().ok()).unwrap_or(0);
                    let j = st.job(node);
                    j.state = match code {
                        0..=2 => Some(EState::Pending), // not ready, ready, PRE script
                        // SUBMITTED covers idle and running procs; the nodes log tells them apart.
                        3 | 4 => Some(EState::Running), // 4: POST script
                        5 => Some(EState::Succeeded),
                        6 => Some(EState::Failed),
                        7 => Some(EState::Skipped),
                        _ => None,
                    };
                    if code == 6 {
                        if let Some(d) = &details {
                            if let Some(r) = d.split("failed with status ").nth(1) {
                                j.exit_code = r.split_whitespace().next().and_then(|x| x.parse().ok());
                            }
                        }
                    }
                    j.attempts = retries + u32::from(code >= 3 && code != 7);
                    j.detail = details;
                }
            }
            Some("DagStatus") => {
                st.events += 1;
                if let Some(code) = get("DagStatus").and_then(|v| v.parse::<i64>().ok()) {
                    // Node-status codes: 5 done, 6 error; others: still running.
                    st.failed = Some(code == 6);
                    if code == 5 || code == 6 {
                        st.finished = Some(true);
                    }
                }
            }
            Some("StatusEnd") => {
                st.events += 1;
                *ended = true;
                if get("NextUpdate") == Some("0") {
                    st.finished = Some(true);
                }
            }
            _ => {}
        }
        ad.clear();
    };
    for line in lines {
        let t = line.trim();
        if t == "[" {
            open = true;
            ad.clear();
        } else if t == "]" {
            if open {
                flush(&mut ad, &mut st, &mut ended);
            }
            open = false;
        } else if open {
            if let Some((k, v)) = ad_attr(t) {
                ad.push((k.to_string(), v.to_string()));
            }
        }
    }
    if open {
        st.unreadable.push(format!("{what}: last ClassAd incomplete (being rewritten?); ignored"));
    } else if !ended && !text.is_empty() {
        st.unreadable.push(format!("{what}: no StatusEnd ad (file cut short?)"));
    }
    st
}

// ------------------------------------------------------------------ dagman.out

/// DAGMan's debug log: node completions and failures, retries, the final exit status.
pub fn parse_dagman_out(text: &str, what: &str) -> EngineState {
    let mut st = EngineState::new("htcondor");
    st.sources.push(what.to_string());
    for line in complete_lines(text, what, &mut st.unreadable) {
        // `MM/DD/YY HH:MM:SS text`
        let msg = line.splitn(3, ' ').nth(2).unwrap_or("");
        if let Some(rest) = msg.strip_prefix("Node ") {
            let Some((node, tail)) = rest.split_once(' ') else { continue };
            if tail.contains("completed successfully") {
                st.events += 1;
                let j = st.job(node);
                j.state = Some(EState::Succeeded);
                j.exit_code = Some(0);
            } else if let Some(r) = tail.split("failed with status ").nth(1) {
                st.events += 1;
                let j = st.job(node);
                j.state = Some(EState::Failed);
                j.exit_code = r.trim_end_matches('.').parse().ok();
            } else if let Some(r) = tail.split("failed with signal ").nth(1) {
                st.events += 1;
                let j = st.job(node);
                j.state = Some(EState::Failed);
                j.signal = r.trim_end_matches('.').parse().ok();
            }
        } else if let Some(rest) = msg.strip_prefix("POST Script of node ") {
            let Some((node, tail)) = rest.split_once(' ') else { continue };
            st.events += 1;
            let j = st.job(node);
            if let Some(r) = tail.split("failed with status ").nth(1) {
                j.state = Some(EState::Failed);
                j.detail = Some(format!("POST script failed with status {}", r.trim_end_matches('.')));
            } else if tail.contains("completed successfully") {
                j.state = Some(EState::Succeeded);
            }
        } else if let Some(rest) = msg.strip_prefix("Retrying node ") {
            st.events += 1;
            if let Some(node) = rest.split_whitespace().next() {
                let j = st.job(node);
                j.state = Some(EState::Pending);
            }
        } else if msg.contains("(CONDOR_DAGMAN) STARTING UP") {
            // A new DAGMan (a rescue run) appends to the same file: not finished any more.
            st.events += 1;
            st.finished = Some(false);
            st.failed = None;
        } else if let Some(r) = msg.split("EXITING WITH STATUS ").nth(1) {
            st.events += 1;
            st.finished = Some(true);
            st.failed = Some(r.trim() != "0");
        }
    }
    st
}

// ------------------------------------------------------------------ rescue DAG, metrics

/// A rescue DAG: `DONE node` lines and the header's list of failed nodes.
pub fn parse_rescue(text: &str, what: &str) -> EngineState {
    let mut st = EngineState::new("htcondor");
    st.sources.push(what.to_string());
    let mut failed_next = false;
    for line in complete_lines(text, what, &mut st.unreadable) {
        if let Some(node) = line.strip_prefix("DONE ") {
            st.events += 1;
            st.job(node.trim()).state = Some(EState::Succeeded);
        } else if line.starts_with("# Nodes that failed:") {
            failed_next = true;
        } else if failed_next {
            failed_next = false;
            for n in line.trim_start_matches('#').trim().split(',') {
                let n = n.trim();
                if !n.is_empty() && n != "<ENDLIST>" {
                    st.events += 1;
                    st.job(n).state = Some(EState::Failed);
                }
            }
        }
    }
    st
}

/// DAGMan's metrics file (JSON, written when DAGMan exits).
pub fn parse_metrics(text: &str, what: &str) -> EngineState {
    let mut st = EngineState::new("htcondor");
    st.sources.push(what.to_string());
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(v) => {
            st.events += 1;
            st.finished = Some(true);
            if let Some(code) = v["exitcode"].as_i64() {
                st.failed = Some(code != 0);
            }
        }
        Err(e) => st.unreadable.push(format!("{what}: not complete JSON yet ({e})")),
    }
    st
}
