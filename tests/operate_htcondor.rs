//! Operating a campaign on a real HTCondor pool (issue 12): `bpsc submit`
//! (condor_submit_dag), a second submit refused, `bpsc hold` (the DAGMan job and its idle
//! node jobs held: no new job starts, from the queue's view and the provenance start times),
//! `bpsc priority` (condor_prio of the DAGMan job and its queued node jobs), `bpsc release
//! --set memory=...` (condor_qedit of the queued node jobs; the campaign then finishes with
//! every quantum succeeded), and `bpsc cancel` of a second submission (condor_rm of the
//! DAGMan job: the queue is empty and `bpsc status` says cancelled).
//!
//! Enabled when `CI` is set or `BPSC_HTCONDOR_TESTS=1` (as root), like the Slurm tests.  The
//! pool: `backends/htcondor/pool-up.sh` (idempotent: it binds this checkout into the pool's
//! root even when the pool already runs), else `../shared/engines/htcondor-up.sh`.  Submit directories live under
//! /var/lib/bpsc-htcondor/work (DAGMan refuses node logs under /tmp) and belong to the pool's
//! job user `bpsc`.  Jobs get no environment from the submitting shell, so the payload is a
//! script at an absolute path.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{
    attempt_starts, bpsc_json, bpsc_with, engine_tests_enabled, now_epoch, repo, sh, shared, skipped, status_until, succeeded_quanta,
    wait_for, write_exec,
};
use serde_json::Value;

const SLEEP: u64 = 8;
const WORK: &str = "/var/lib/bpsc-htcondor/work";

fn pool_up() -> Result<(), String> {
    let ready = || sh("condor_status", &["-af", "Name"]).0 && sh("condor_q", &["-totals"]).0;
    // Always the script, even when a pool answers: it binds this checkout (the jobs run its
    // bpsc) into the pool's root, and binds it again when it was re-created since (CI).
    let script = [repo().join("backends/htcondor/pool-up.sh"), shared().map(|s| s.join("engines/htcondor-up.sh")).unwrap_or_default()]
        .into_iter()
        .find(|p| p.is_file())
        .ok_or("no pool script: backends/htcondor/pool-up.sh nor ../shared/engines/htcondor-up.sh")?;
    let (ok, out, err) = sh(&script.to_string_lossy(), &[]);
    if ok && ready() {
        Ok(())
    } else {
        Err(format!("{} failed:\n{out}{err}", script.display()))
    }
}

/// A `condor_prio` for the pool's tools when its scripts did not install one: the same
/// wrapper as condor_q's, for condor_prio.
fn tools_dir(dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    if bpsc::backend::ops::on_path("condor_prio").is_none() {
        let q = bpsc::backend::ops::on_path("condor_q").expect("condor_q");
        let text = std::fs::read_to_string(q).unwrap().replace("condor_q", "condor_prio");
        write_exec(&bin.join("condor_prio"), &text);
    }
    bin
}

fn campaign(dir: &Path, cpus: u64) -> PathBuf {
    let d = dir.display();
    write_exec(&dir.join("task.sh"), &format!("#!/bin/sh\n# task.sh STEP VISIT\nsleep {SLEEP}\necho \"$1 $2 done\"\n"));
    // Step a asks for a quarter of the slot's CPUs: at most four of its six jobs run at once,
    // the others wait idle in the queue (what `hold` must hold and `release --set` edits).
    let text = format!(
        r#"bps 1
site local {{
  backend   = htcondor
  shared_fs = true
  scratch   = "{d}/scratch"
}}
dimension visit = 1..7
pipeline p {{
  step a over (visit) {{ run = "{d}/task.sh a {{visit}}", cpus = {cpus} }}
  step b over (visit) after a {{ run = "{d}/task.sh b {{visit}}" }}
  step c after b {{ run = "{d}/task.sh c all" }}
}}
campaign ops {{
  use p
  coverage = visit
  site     = local
  memory   = 100MiB
  disk     = 10MiB
  retries  = 0
}}
"#
    );
    let p = dir.join("ops.bps");
    std::fs::write(&p, text).unwrap();
    p
}

/// `condor_q -constraint C -af ATTRS` rows.
fn q(constraint: &str, attrs: &[&str]) -> Vec<String> {
    let mut args = vec!["-constraint", constraint, "-af"];
    args.extend(attrs);
    let (_, out, _) = sh("condor_q", &args);
    out.lines().map(str::to_string).filter(|l| !l.trim().is_empty()).collect()
}

fn compile(bps: &Path, sub: &Path, env: &[(&str, &str)]) {
    let (code, _, err) = bpsc_with(&["compile", &bps.to_string_lossy(), "--backend", "htcondor", "-o", &sub.to_string_lossy()], env);
    assert_eq!(code, 0, "{err}");
    let (ok, _, err) = sh("chown", &["-R", "bpsc:", &sub.parent().unwrap().to_string_lossy()]);
    assert!(ok, "chown: {err}");
}

#[test]
fn submit_hold_priority_release_and_cancel_on_real_htcondor() {
    let test = "submit_hold_priority_release_and_cancel_on_real_htcondor";
    if !engine_tests_enabled("BPSC_HTCONDOR_TESTS") {
        skipped(test, "needs a local HTCondor pool; set BPSC_HTCONDOR_TESTS=1 (as root) to bring one up (CI runs it always)");
        return;
    }
    if let Err(e) = pool_up() {
        panic!("no HTCondor pool: {e}");
    }
    let dir = Path::new(WORK).join(format!("operate-htcondor-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let bin = tools_dir(&dir);
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let env: Vec<(&str, &str)> = vec![("PATH", &path), ("BPSC_EXE", env!("CARGO_BIN_EXE_bpsc"))];
    let slot_cpus: u64 = sh("condor_status", &["-af", "TotalSlotCpus"]).1.lines().filter_map(|l| l.trim().parse().ok()).max().unwrap_or(2);
    let bps = campaign(&dir, (slot_cpus / 4).max(1));
    let sub = dir.join("submit");
    let sub_s = sub.to_string_lossy().into_owned();
    let _cleanup = common::CancelOnDrop {
        dirs: vec![sub.clone(), dir.join("submit2")],
        env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
    };
    compile(&bps, &sub, &env);
    let t_all = Instant::now();

    let (code, st, _) = bpsc_json(&["status", &sub_s], &env);
    assert_eq!((code, st["state"].as_str()), (7, Some("compiled")), "{st:#}");
    let (code, v, err) = bpsc_json(&["submit", &sub_s], &env);
    assert_eq!(code, 0, "submit: {v:#}\n{err}");
    assert_eq!(v["commands"][0]["line"], "condor_submit_dag workflow.dag");
    let dagman = v["engine_ids"][0].as_str().unwrap().to_string();
    let t_submitted = t_all.elapsed();
    let nodes = format!("DAGManJobId == {dagman}");

    let (code, v, _) = bpsc_json(&["submit", &sub_s], &env);
    assert_eq!((code, v["error"]["code"].as_str()), (3, Some("E902")), "a second submit is refused: {v:#}");

    // Hold while step a runs and some of its jobs still wait idle.
    wait_for("a node job runs", Duration::from_secs(180), || q(&nodes, &["JobStatus"]).iter().any(|s| s == "2"));
    let (code, v, err) = bpsc_json(&["hold", &sub_s], &env);
    assert_eq!(code, 0, "hold: {v:#}\n{err}");
    let t_held = now_epoch();
    let hold_seconds = v["seconds"].as_f64().unwrap();
    assert_eq!(q(&format!("ClusterId == {dagman}"), &["JobStatus"]), vec!["5"], "the DAGMan job is held");
    let held_nodes: Vec<String> = q(&format!("{nodes} && JobStatus == 5"), &["ClusterId"]);
    assert!(q(&format!("{nodes} && JobStatus == 1"), &["ClusterId"]).is_empty(), "no node job left idle");
    let (code, st, _) = bpsc_json(&["status", &sub_s], &env);
    assert_eq!((code, st["state"].as_str()), (5, Some("held")), "{st:#}");

    // Priority while held: condor_prio moves the DAGMan job and the queued node jobs by +7
    // (from the campaign's compiled priority 0; node jobs start from their DAG PRIORITY).
    let prios = || q(&format!("{nodes} && JobStatus == 5"), &["ClusterId", "JobPrio"]);
    let before = prios();
    let (code, v, err) = bpsc_json(&["priority", &sub_s, "7"], &env);
    assert_eq!(code, 0, "priority: {v:#}\n{err}");
    assert_eq!(q(&format!("ClusterId == {dagman}"), &["JobPrio"]), vec!["7"]);
    let moved: Vec<String> = before
        .iter()
        .map(|l| {
            let (c, p) = l.split_once(' ').unwrap();
            format!("{c} {}", p.parse::<i64>().unwrap() + 7)
        })
        .collect();
    assert_eq!(prios(), moved, "held node jobs moved by +7");

    // Nothing new starts while held: the running jobs end, no node job runs, none is submitted.
    wait_for("the jobs running at the hold have ended", Duration::from_secs(120), || {
        q(&format!("{nodes} && JobStatus == 2"), &["ClusterId"]).is_empty()
    });
    let submitted_at_hold = q(&nodes, &["ClusterId"]).len();
    std::thread::sleep(Duration::from_secs(SLEEP + 4));
    assert!(q(&format!("{nodes} && JobStatus == 2"), &["ClusterId"]).is_empty(), "the queue's view: no node job runs");
    assert!(q(&nodes, &["ClusterId"]).len() <= submitted_at_hold, "DAGMan submitted nothing while held");
    let late: Vec<_> = attempt_starts(&sub).into_iter().filter(|(_, t)| *t > t_held).collect();
    assert!(late.is_empty(), "no attempt started after the hold: {late:?}");
    let held_for = now_epoch() - t_held;

    // Release with more memory for the queued node jobs; then the DAG finishes.
    let (code, v, err) = bpsc_json(&["release", &sub_s, "--set", "memory=150MiB"], &env);
    assert_eq!(code, 0, "release: {v:#}\n{err}");
    let t_release = Instant::now();
    wait_for("the DAG has left the queue", Duration::from_secs(600), || {
        q(&format!("ClusterId == {dagman} || {nodes}"), &["ClusterId"]).is_empty()
    });
    let finished_after_release = t_release.elapsed();
    if !held_nodes.is_empty() {
        let (_, hist, _) = sh("condor_history", &["-constraint", &nodes, "-af", "ClusterId", "RequestMemory"]);
        for c in &held_nodes {
            assert!(hist.lines().any(|l| l == format!("{c} 150")), "node job {c} ran with the new memory: {hist}");
        }
    }
    let (code, st) = status_until(&sub, &env, 0, Duration::from_secs(30));
    assert_eq!((code, st["state"].as_str()), (0, Some("done")), "{st:#}");
    assert_eq!(succeeded_quanta(&sub), 6 + 6 + 1, "every quantum ran once and succeeded");

    // Cancel a second submission while it runs.
    let sub2 = dir.join("submit2");
    let sub2_s = sub2.to_string_lossy().into_owned();
    compile(&bps, &sub2, &env);
    let (code, v, _) = bpsc_json(&["submit", &sub2_s], &env);
    assert_eq!(code, 0, "{v:#}");
    let dag2 = v["engine_ids"][0].as_str().unwrap().to_string();
    wait_for("a node job of the second DAG runs", Duration::from_secs(180), || {
        q(&format!("DAGManJobId == {dag2}"), &["JobStatus"]).iter().any(|s| s == "2")
    });
    // hold --now: the running node jobs are stopped and held too.
    let (code, v, err) = bpsc_json(&["hold", "--now", &sub2_s], &env);
    assert_eq!(code, 0, "hold --now: {v:#}\n{err}");
    let states = q(&format!("ClusterId == {dag2} || DAGManJobId == {dag2}"), &["JobStatus"]);
    assert!(!states.is_empty() && states.iter().all(|s| s == "5"), "the DAGMan job and every node job are held: {states:?}");
    // Cancel the held campaign.
    let (code, v, err) = bpsc_json(&["cancel", &sub2_s], &env);
    assert_eq!(code, 0, "cancel: {v:#}\n{err}");
    let cancel_seconds = v["seconds"].as_f64().unwrap();
    assert!(q(&format!("ClusterId == {dag2} || DAGManJobId == {dag2}"), &["ClusterId"]).is_empty(), "nothing of it is in the queue");
    let (code, st, _) = bpsc_json(&["status", &sub2_s], &env);
    assert_eq!((code, st["state"].as_str()), (6, Some("cancelled")), "{st:#}");
    assert_eq!(st["totals"]["failed"], 0, "cancelled jobs are not failures: {st:#}");
    let t: &Value = &st["totals"];
    assert_eq!(t["cancelled"].as_u64().unwrap() + t["succeeded"].as_u64().unwrap(), t["jobs"].as_u64().unwrap(), "{st:#}");
    eprintln!(
        "timings: submit {:.1} s, hold {hold_seconds:.1} s ({} idle node jobs held, then given 150 MiB), held {held_for:.0} s with nothing started, DAG gone {:.0} s after the release, cancel {cancel_seconds:.1} s, whole test {:.0} s",
        t_submitted.as_secs_f64(),
        held_nodes.len(),
        finished_after_release.as_secs_f64(),
        t_all.elapsed().as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
