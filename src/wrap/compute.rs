//! Compute jobs: each quantum in order, stopping at the first failure.
//!
//! Per quantum: fetch its `in_job` inputs (verified copies); record its consumed inputs
//! (`inputs` of the line when it has them, `[{dataset, path}]`, with size and sha256 taken
//! before the payload runs; else what was fetched); remove its declared outputs left by an
//! earlier attempt; run its command in its own working area (see [`super::unexpected`])
//! with the OOM watch on; check its declared outputs (`verify`); then handle the unexpected
//! files of its working area.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{json, Value};

use super::files::{expand, file_record, remove_stale};
use super::memory::OomWatch;
use super::transfer::{input_record, note, transfer};
use super::unexpected::{self, KeepAt};
use super::{child, Attempt, Found};
use crate::ir::settings::Unexpected;
use crate::submitdir::exit::{WRAP_INTERNAL, WRAP_MISSING_OUTPUT, WRAP_OOM, WRAP_TRANSFER};
use crate::submitdir::time::rfc3339;

fn shell() -> &'static str {
    if Path::new("/bin/bash").exists() {
        "/bin/bash"
    } else {
        "/bin/sh"
    }
}

/// The command of a payload: `shell -c CMD` in `workdir`, its output to the attempt's logs.
pub fn payload(at: &Attempt, cmd: &str, workdir: &Path) -> Command {
    let mut c = Command::new(shell());
    c.arg("-c")
        .arg(cmd)
        .current_dir(workdir)
        .env("BPSC_ATTEMPT", at.number.to_string())
        .env("BPSC_JOB", &at.job)
        .env("BPSC_SUBMIT", &at.submit)
        .env("BPSC_SCRATCH", &at.scratch)
        .env("BPSC_WORKDIR", workdir)
        .stdin(Stdio::null())
        .stdout(at.logs.out.try_clone().map(Stdio::from).unwrap_or(Stdio::inherit()))
        .stderr(at.logs.err.try_clone().map(Stdio::from).unwrap_or(Stdio::inherit()));
    c
}

/// What running one payload gave.
pub struct Ran {
    pub code: i32,
    pub signal: Option<i32>,
    pub oom: Option<bool>,
    pub maxrss_kib: i64,
    pub cgroup_peak_kib: Option<u64>,
    pub error: Option<String>,
    pub unexpected: Vec<Value>,
}

/// Run `cmd` in a fresh working area for quantum `q`, watching for OOM kills, then sweep
/// the area by `policy` (files kept under `keep`).
pub fn run_in_area(at: &Attempt, cmd: &str, q: usize, declared: &[PathBuf], policy: Unexpected, keep: &KeepAt) -> Ran {
    let mut ran =
        Ran { code: WRAP_INTERNAL, signal: None, oom: None, maxrss_kib: -1, cgroup_peak_kib: None, error: None, unexpected: Vec::new() };
    let work = match unexpected::create(&at.scratch, &at.job, at.number, q) {
        Ok(w) => w,
        Err(e) => {
            ran.error = Some(format!("cannot create the working area under {}: {e}", at.scratch.display()));
            return ran;
        }
    };
    let cg = at.cgroup.as_ref();
    let watch = OomWatch::start(cg);
    let mut meter = cg.and_then(|c| c.meter());
    match child::run(payload(at, cmd, &work)) {
        Ok(o) => {
            ran.code = o.code;
            ran.signal = o.signal;
            ran.maxrss_kib = o.maxrss_kib;
            for s in &o.forwarded {
                note(&at.logs.err, &format!("[bpsc wrap] received {}: forwarded to the payload's process group", child::signal_name(*s)));
            }
            if o.killed {
                note(&at.logs.err, "[bpsc wrap] the payload outlived the grace period (BPSC_KILL_GRACE): killed with SIGKILL");
            }
            if o.leftovers {
                note(&at.logs.err, "[bpsc wrap] processes left behind by the payload were killed");
            }
        }
        Err(e) => ran.error = Some(format!("cannot start {}: {e}", shell())),
    }
    ran.cgroup_peak_kib = meter.as_mut().and_then(|m| m.read()).map(|b| b / 1024);
    // Out of memory: the payload failed and the kernel's OOM killer struck in its cgroup.
    ran.oom = watch.kills(cg).map(|k| k > 0 && ran.code != 0);
    if ran.oom == Some(true) {
        note(&at.logs.err, "[bpsc wrap] out of memory: the kernel's OOM killer killed a process of this attempt");
    }
    ran.unexpected = unexpected::sweep(&work, declared, policy, keep);
    unexpected::remove(&work);
    ran
}

/// Fetch the quantum's `in_job` inputs.  `Err` stops the job (exit 74).
fn fetch(at: &mut Attempt, q: &Value, qinputs: &mut Vec<Value>) -> Result<(), String> {
    let empty = Vec::new();
    for f in q["fetch"].as_array().unwrap_or(&empty) {
        let (from, to) = (f["from"].as_str().unwrap_or(""), expand(f["to"].as_str().unwrap_or(""), &at.scratch));
        match transfer(from, &to, &mut at.tool, &at.logs.err) {
            Ok(c) => qinputs.push(c.into_record(json!({"dataset": f["dataset"], "path": to, "from": from}))),
            Err(e) if f["optional"].as_bool() == Some(true) => note(&at.logs.err, &format!("[bpsc wrap] optional input skipped: {e}")),
            Err(e) => {
                note(&at.logs.err, &format!("[bpsc wrap] stage-in failed: {e}"));
                return Err(e);
            }
        }
    }
    Ok(())
}

/// The consumed inputs the line names (`inputs: [{dataset, path}]`), checksummed in place;
/// inputs just fetched are not read twice.
fn consumed(at: &mut Attempt, q: &Value, qinputs: &mut Vec<Value>) {
    let Some(list) = q["inputs"].as_array() else { return };
    for i in list {
        let path = expand(i["path"].as_str().unwrap_or(""), &at.scratch);
        if qinputs.iter().any(|r| r["path"].as_str() == Some(path.as_str())) {
            continue;
        }
        let mut r = input_record(&path, &mut at.tool, &at.logs.err);
        r["dataset"] = i["dataset"].clone();
        qinputs.push(r);
    }
}

/// The job's unexpected-files policy for quantum `q`: the line's, else the job's.
fn policy(at: &Attempt, q: &Value) -> Unexpected {
    match q["unexpected"].as_str() {
        Some("keep") => Unexpected::Keep,
        Some("discard") => Unexpected::Discard,
        _ => at.unexpected,
    }
}

/// Run quantum `qi`; `false` when the job must stop.
fn quantum(at: &mut Attempt, qi: usize, q: &Value, found: &mut Found) -> bool {
    let empty = Vec::new();
    let qt0 = std::time::SystemTime::now();
    let qstart = rfc3339(qt0);
    let mut qinputs = Vec::new();
    if let Err(e) = fetch(at, q, &mut qinputs) {
        found.inputs.extend(qinputs);
        found.fail(WRAP_TRANSFER, e);
        return false;
    }
    consumed(at, q, &mut qinputs);
    let outs: Vec<(PathBuf, &Value)> = q["outputs"]
        .as_array()
        .unwrap_or(&empty)
        .iter()
        .map(|o| (PathBuf::from(expand(o["path"].as_str().unwrap_or(""), &at.scratch)), o))
        .collect();
    let mut stale = Vec::new();
    for (p, _) in &outs {
        match remove_stale(p) {
            Ok(true) => stale.push(p.clone()),
            Ok(false) => {}
            Err(e) => note(&at.logs.err, &format!("[bpsc wrap] cannot remove the earlier output {}: {e}", p.display())),
        }
        if let Some(parent) = p.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
    }
    for p in &stale {
        note(&at.logs.out, &format!("[bpsc wrap] removed an output left by an earlier attempt: {}", p.display()));
    }
    let cmd = q["command"].as_str().unwrap_or("");
    note(&at.logs.out, &format!("[bpsc wrap] quantum {} {}: {cmd}", q["step"].as_str().unwrap_or(""), q["data_id"]));
    let declared: Vec<PathBuf> = outs.iter().map(|(p, _)| p.clone()).collect();
    let keep = KeepAt { submit: &at.submit, step: q["step"].as_str().unwrap_or(""), data_id: &q["data_id"], attempt: at.number };
    let ran = run_in_area(at, cmd, qi, &declared, policy(at, q), &keep);
    if let Some(e) = &ran.error {
        found.error = Some(e.clone());
    }
    let mut qexit = ran.code;
    let mut qouts = Vec::new();
    for (p, o) in &outs {
        let p = p.to_string_lossy();
        let mut rec = file_record(&p);
        rec["dataset"] = o["dataset"].clone();
        if qexit == 0 && rec.get("missing").is_some() && o["verify"].as_bool() == Some(true) {
            note(&at.logs.err, &format!("[bpsc wrap] declared output missing: {p}"));
            found.error = Some(format!("declared output missing: {p}"));
            qexit = WRAP_MISSING_OUTPUT;
        }
        qouts.push(rec);
    }
    found.outputs.extend(qouts.iter().cloned());
    found.inputs.extend(qinputs.iter().cloned());
    if ran.oom.is_some() {
        found.oom = Some(found.oom.unwrap_or(false) || ran.oom == Some(true));
    }
    found.quanta.push(json!({
        "step": q["step"], "data_id": q["data_id"], "config": q["config"],
        "start": qstart, "end": rfc3339(std::time::SystemTime::now()),
        "exit_code": qexit, "signal": ran.signal, "oom": ran.oom,
        "seconds": qt0.elapsed().map(|d| d.as_secs_f64()).unwrap_or(0.0),
        "peak_rss_kib": ran.maxrss_kib, "cgroup_peak_kib": ran.cgroup_peak_kib,
        "inputs": qinputs, "outputs": qouts,
        "stale_outputs_removed": stale, "unexpected": ran.unexpected,
    }));
    if qexit != 0 {
        found.exit = if ran.oom == Some(true) { WRAP_OOM } else { qexit };
        found.signal = ran.signal;
        return false;
    }
    child::stop_requested().is_none()
}

/// Run every quantum of a compute job's line.
pub fn run(at: &mut Attempt, task: &Value, found: &mut Found) {
    let empty = Vec::new();
    for (qi, q) in task["quanta"].as_array().unwrap_or(&empty).iter().enumerate() {
        if !quantum(at, qi, q, found) {
            break;
        }
    }
}
