//! `bpsc status`, the provenance store and `bpsc restart` on synthetic submit directories:
//! a small campaign compiled for real, its jobs run through the real `bpsc wrap` (with the
//! examples' fake payload and injected failures), engine state written in each engine's
//! own format.  Counts are checked against what was run.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use bpsc::backend::state::EState;
use serde_json::Value;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn tmpdir(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let d =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("st-{tag}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst)));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A 3 x 3 (visit, detector) campaign: calibrate per visit-detector, coadd per visit
/// (archived: a stage-out each), a final provenance job.  16 jobs.
fn campaign(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir.join("raw")).unwrap();
    for v in 1..4 {
        for d in 0..3 {
            std::fs::write(dir.join(format!("raw/{v}-{d}.txt")), format!("raw {v} {d}\n")).unwrap();
        }
    }
    let d = dir.display();
    let text = format!(
        r#"bps 1

defaults {{
  memory  = 1GiB
  retries = 1
}}

site local {{
  backend   = htcondor
  shared_fs = true
  scratch   = "{d}/scratch"
}}

dimension visit    = 1..4
dimension detector = 0..3

dataset raw(visit, detector) {{
  source = "file://{d}/raw/{{visit}}-{{detector}}.txt"
  stage  = in_job
}}
dataset calexp(visit, detector)
dataset coadd(visit) {{
  persist = archive
  archive = "file://{d}/archive/coadd-{{visit}}.txt"
}}

pipeline p {{
  step calibrate over (visit, detector) {{
    inputs  = [raw]
    outputs = [calexp]
    run     = "$BPSC_EXAMPLE_DIR/bin/fake_task.sh --task={{step}} --data-id={{data_id}} --attempt={{attempt}} -- {{outputs}}"
  }}
  step coadd over (visit) {{
    inputs  = [calexp]
    outputs = [coadd]
    run     = "$BPSC_EXAMPLE_DIR/bin/fake_task.sh --task={{step}} --data-id={{data_id}} --attempt={{attempt}} -- {{outputs}}"
  }}
}}

campaign mini {{
  use p
  coverage = visit * detector
  site = local
  notify {{
    on         = [failure, done, slow]
    slow_after = 1h
    command    = "echo {{event}} {{campaign}} {{step}} >> '{d}/notify.log'"
  }}
}}
"#
    );
    let p = dir.join("mini.bps");
    std::fs::write(&p, text).unwrap();
    p
}

fn compile(bps: &Path, out: &Path) {
    let a = bpsc::cli::CompileArgs { file: bps.to_path_buf(), ..Default::default() };
    let mut err = Vec::new();
    let code = bpsc::cli::compile_backend(&bpsc::fs::RealFs, &a, Some("htcondor"), out, true, &mut err);
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&err));
}

struct Task {
    group: String,
    index: u64,
    parents: Vec<String>,
    kind: String,
}

fn tasks(submit: &Path) -> BTreeMap<String, Task> {
    common::table_jobs(submit)
        .into_iter()
        .map(|(id, t)| (id, Task { group: t.group, index: t.index, parents: t.parents, kind: t.kind }))
        .collect()
}

fn latest_exit(submit: &Path, job: &str) -> Option<i64> {
    let mut last = None;
    for a in 1.. {
        let Ok(t) = std::fs::read_to_string(submit.join(format!("provenance/{job}.{a}.json"))) else { break };
        last = serde_json::from_str::<Value>(&t).unwrap()["exit_code"].as_i64();
    }
    last
}

fn wrap(submit: &Path, t: &Task, env: &[(&str, &str)]) -> i32 {
    let mut c = Command::new(env!("CARGO_BIN_EXE_bpsc"));
    c.args(["wrap", &submit.to_string_lossy(), "--group", &t.group, "--index", &t.index.to_string()])
        .env("BPSC_EXAMPLE_DIR", repo().join("examples"))
        .env("FAKE_TASK_SLEEP", "0")
        .env("BPSC_SCRATCH", submit.parent().unwrap().join("scratch"))
        .env("BPSC_NO_SQLITE", "1");
    for (k, v) in env {
        c.env(k, v);
    }
    c.status().unwrap().code().unwrap_or(-1)
}

/// Run every job whose parents succeeded, in dependency order, like an engine that prunes
/// after a failure; with `retries`, a failed job runs again once.  The provenance job runs
/// last when `final_job`.
fn run_local(submit: &Path, env: &[(&str, &str)], retries: u32, final_job: bool) {
    let ts = tasks(submit);
    let mut done: HashMap<String, bool> = HashMap::new();
    loop {
        let mut progressed = false;
        for (id, t) in &ts {
            if done.contains_key(id) || t.kind == "provenance" {
                continue;
            }
            let ps: Vec<Option<i64>> = t.parents.iter().map(|p| latest_exit(submit, p)).collect();
            if ps.iter().any(|p| p.is_none()) {
                if t.parents.iter().any(|p| done.get(p) == Some(&false)) {
                    done.insert(id.clone(), false);
                    progressed = true;
                }
                continue;
            }
            progressed = true;
            if ps.iter().any(|p| *p != Some(0)) {
                done.insert(id.clone(), false);
                continue;
            }
            let mut rc = wrap(submit, t, env);
            for _ in 0..retries {
                if rc != 0 {
                    rc = wrap(submit, t, env);
                }
            }
            done.insert(id.clone(), rc == 0);
        }
        if !progressed {
            break;
        }
    }
    if final_job {
        if let Some(t) = ts.values().find(|t| t.kind == "provenance") {
            wrap(submit, t, &[]);
        }
    }
}

/// DAGMan has exited with `code` (its metrics file).
fn dag_finished(submit: &Path, code: i32) {
    std::fs::write(submit.join("workflow.dag.metrics"), format!("{{\"client\":\"condor_dagman\",\"exitcode\":{code}}}\n")).unwrap();
}

fn status_json(submit: &Path) -> (Value, u8) {
    let mut out = Vec::new();
    let mut err = Vec::new();
    let a = bpsc::status::StatusArgs { submit: submit.to_path_buf(), json: true, ..Default::default() };
    let code = bpsc::status::run(&a, &mut out, &mut err);
    (
        serde_json::from_slice(&out).unwrap_or_else(|e| panic!("{e}: {}{}", String::from_utf8_lossy(&out), String::from_utf8_lossy(&err))),
        code,
    )
}

fn step<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["steps"].as_array().unwrap().iter().find(|s| s["step"] == name).unwrap_or_else(|| panic!("no step {name} in {v}"))
}

fn counts(s: &Value) -> [u64; 6] {
    ["jobs", "pending", "running", "succeeded", "failed", "skipped"].map(|k| s[k].as_u64().unwrap())
}

const FAIL_2_1: (&str, &str) = ("FAKE_TASK_FAIL_CALIBRATE", "visit=2,detector=1");

#[test]
fn status_counts_match_what_ran() {
    let dir = tmpdir("counts");
    let bps = campaign(&dir);
    let sub = dir.join("submit");
    compile(&bps, &sub);
    // Never submitted: its own state and exit status (issue 12), every job pending.
    let (v, code) = status_json(&sub);
    assert_eq!((code, v["state"].as_str()), (bpsc::status::EXIT_NOT_SUBMITTED, Some("compiled")));
    assert_eq!(v["totals"]["pending"], 16);
    run_local(&sub, &[FAIL_2_1], 1, false);
    // Engine not finished: coadd 2 and its stage-out are still pending.
    let (v, code) = status_json(&sub);
    assert_eq!(code, bpsc::status::EXIT_RUNNING_WITH_FAILURES, "{v:#}");
    assert_eq!(counts(step(&v, "calibrate")), [9, 0, 0, 8, 1, 0]);
    assert_eq!(step(&v, "calibrate")["attempts"], 10, "the failed one ran twice");
    assert_eq!(counts(step(&v, "coadd")), [3, 1, 0, 2, 0, 0]);
    assert_eq!(counts(step(&v, "stage_out")), [3, 1, 0, 2, 0, 0]);
    assert_eq!(v["bpsc_status"], 1);
    assert_eq!(v["state"], "running");
    let f = &v["failed"][0];
    assert_eq!(f["job"], "calibrate_2_1");
    assert_eq!(f["data_id"], serde_json::json!({"visit": 2, "detector": 1}));
    assert_eq!(f["exit_code"], 1);
    assert_eq!(f["attempts"], 2);
    assert!(Path::new(f["log"].as_str().unwrap()).exists(), "{f}");
    assert!(f["host"].as_str().is_some_and(|h| !h.is_empty()));
    assert_eq!(v["hosts"][0]["failures"], 2);
    let w = &step(&v, "calibrate")["wall_seconds"];
    assert_eq!(w["n"], 9);
    assert!(w["min"].as_f64().unwrap() <= w["median"].as_f64().unwrap() && w["median"].as_f64().unwrap() <= w["max"].as_f64().unwrap());
    // DAGMan exits: what never ran is skipped; the campaign failed.
    dag_finished(&sub, 1);
    let (v, code) = status_json(&sub);
    assert_eq!(code, bpsc::status::EXIT_FAILED);
    assert_eq!(counts(step(&v, "coadd")), [3, 0, 0, 2, 0, 1]);
    assert_eq!(v["totals"]["skipped"], 3, "coadd 2, its stage-out, the provenance job");
    // The human summary says the same.
    let mut out = Vec::new();
    let code = bpsc::status::run(&bpsc::status::StatusArgs { submit: sub.clone(), ..Default::default() }, &mut out, &mut Vec::new());
    assert_eq!(code, 1);
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("calibrate_2_1 [calibrate] {detector=1, visit=2}: exit 1"), "{text}");
    assert!(text.contains("hosts with the most failures"), "{text}");
}

#[test]
fn status_reads_the_dagman_nodes_log_and_fires_slow() {
    let dir = tmpdir("slow");
    let bps = campaign(&dir);
    let sub = dir.join("submit");
    compile(&bps, &sub);
    // calibrate_1_0 executing for two hours, calibrate_1_1 idle, in DAGMan's own format.
    let t = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
    let secs = t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    // Local civil time for the log (as DAGMan writes it).
    let tm = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        let tt = secs as libc::time_t;
        libc::localtime_r(&tt, &mut tm);
        tm
    };
    let ts = format!("{:04}-{:02}-{:02} {:02}:{:02}:{:02}", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    let log = format!(
        "000 (7.000.000) {ts} Job submitted from host: <10.0.0.1:9618?addrs=10.0.0.1-9618&alias=sub>\n    DAG Node: calibrate_1_0\n...\n\
         000 (8.000.000) {ts} Job submitted from host: <10.0.0.1:9618?addrs=10.0.0.1-9618&alias=sub>\n    DAG Node: calibrate_1_1\n...\n\
         001 (7.000.000) {ts} Job executing on host: <10.0.0.2:9618?addrs=10.0.0.2-9618&alias=worker7>\n\tSlotName: slot1_1@worker7.example.org\n...\n\
         001 (8.000.000) {ts} Job executing on h"
    );
    std::fs::write(sub.join("workflow.dag.nodes.log"), log).unwrap();
    let (v, code) = status_json(&sub);
    assert_eq!(code, bpsc::status::EXIT_RUNNING);
    assert_eq!(counts(step(&v, "calibrate")), [9, 8, 1, 0, 0, 0]);
    assert_eq!(v["slow"][0]["job"], "calibrate_1_0");
    assert!(v["slow"][0]["running_seconds"].as_f64().unwrap() >= 7100.0);
    assert!(v["unreadable"].as_array().unwrap().iter().any(|u| u.as_str().unwrap().contains("partial last line")), "{v:#}");
    // --watch (auto: htcondor has no native slow hook) fires `slow` once, with the step.
    let a = bpsc::status::StatusArgs {
        submit: sub.clone(),
        watch: true,
        interval: 0.05,
        max_refreshes: Some(2),
        notify: bpsc::status::notify::Mode::Auto,
        json: true,
    };
    let code = bpsc::status::run(&a, &mut Vec::new(), &mut Vec::new());
    assert_eq!(code, bpsc::status::EXIT_RUNNING);
    let log = std::fs::read_to_string(dir.join("notify.log")).unwrap();
    assert_eq!(log, "slow mini calibrate\n");
    // A new watch remembers what it fired.
    bpsc::status::run(&a, &mut Vec::new(), &mut Vec::new());
    assert_eq!(std::fs::read_to_string(dir.join("notify.log")).unwrap(), "slow mini calibrate\n");
}

#[test]
fn watch_fires_done_and_failure_where_the_engine_does_not() {
    let dir = tmpdir("done");
    let bps = campaign(&dir);
    let sub = dir.join("submit");
    compile(&bps, &sub);
    run_local(&sub, &[], 0, true);
    let (v, code) = status_json(&sub);
    assert_eq!(code, bpsc::status::EXIT_DONE, "{v:#}");
    assert_eq!(v["totals"]["succeeded"], 16);
    let mut a = bpsc::status::StatusArgs { submit: sub.clone(), watch: true, interval: 0.05, max_refreshes: Some(3), ..Default::default() };
    // auto: DAGMan's FINAL POST script notifies `done` itself.
    assert_eq!(bpsc::status::run(&a, &mut Vec::new(), &mut Vec::new()), 0);
    assert!(!dir.join("notify.log").exists());
    a.notify = bpsc::status::notify::Mode::All;
    let mut out = Vec::new();
    assert_eq!(bpsc::status::run(&a, &mut out, &mut Vec::new()), 0);
    assert_eq!(std::fs::read_to_string(dir.join("notify.log")).unwrap(), "done mini \n", "{{step}} is empty for a campaign event");
    assert!(String::from_utf8(out).unwrap().contains("done: 16 of 16 jobs finished"));
    // A failed campaign: `failure` once, naming the first failed job's step.
    let dir = tmpdir("failure");
    let bps = campaign(&dir);
    let sub = dir.join("submit");
    compile(&bps, &sub);
    run_local(&sub, &[FAIL_2_1], 0, true);
    dag_finished(&sub, 1);
    let a = bpsc::status::StatusArgs {
        submit: sub,
        watch: true,
        interval: 0.05,
        notify: bpsc::status::notify::Mode::All,
        ..Default::default()
    };
    assert_eq!(bpsc::status::run(&a, &mut Vec::new(), &mut Vec::new()), 1);
    assert_eq!(std::fs::read_to_string(dir.join("notify.log")).unwrap(), "failure mini calibrate\n");
}

#[test]
fn slurm_pegasus_and_nextflow_states_map_to_jobs() {
    let dir = tmpdir("engines");
    let bps = campaign(&dir);
    let sub = dir.join("submit");
    compile(&bps, &sub);
    let set_backend = |b: &str| {
        let p = sub.join("bpsc.json");
        let mut m: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        m["backend"] = b.into();
        std::fs::write(&p, m.to_string()).unwrap();
    };
    // Slurm: submit.sh's records, then sacct and squeue as Slurm prints them (fake tools on
    // PATH for the bpsc process only).
    set_backend("slurm");
    std::fs::create_dir_all(sub.join("slurm")).unwrap();
    std::fs::write(sub.join("slurm/jobids"), "1001 J0 calibrate\n1002 J1 coadd\n1003 F0 fanin\n").unwrap();
    std::fs::write(
        sub.join("slurm/arrays.tsv"),
        "# var\tgroup\tscript\toffset\tarray\tjobs\tfirst_job\nJ0\tcalibrate\tcalibrate.sbatch\t0\t0-8\t9\tcalibrate_1_0\nJ1\tcoadd\tcoadd.sbatch\t1\t0-1\t2\tcoadd_2\n",
    )
    .unwrap();
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = |name: &str, body: &str| {
        let p = bin.join(name);
        std::fs::write(&p, format!("#!/bin/sh\ncat <<'EOF'\n{body}EOF\n")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    script(
        "sacct",
        "JobID|JobIDRaw|JobName|State|ExitCode|Start|End|Elapsed|NodeList|MaxRSS\n\
1002_0|2000|coadd|FAILED|3:0|2026-11-21T11:23:53|2026-11-21T11:23:58|00:00:05|n17|\n\
1002_0.batch|2000.batch|batch|FAILED|3:0|2026-11-21T11:23:53|2026-11-21T11:23:58|00:00:05|n17|2048K\n\
1002_1|2001|coadd|CANCELLED|0:0|None|2026-11-21T11:23:58|00:00:00|None assigned|\n",
    );
    script(
        "squeue",
        "1001_0|1001|1001|0|calibrate|RUNNING|None|(null)\n1001_[1-8%4]|1001|1001|1-8|calibrate|PENDING|JobArrayTaskLimit|(null)\n",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_bpsc"))
        .args(["status", "--json", &sub.to_string_lossy()])
        .env("PATH", format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(counts(step(&v, "calibrate")), [9, 8, 1, 0, 0, 0]);
    // Offset 1: array task 0 of J1 is coadd row 1 (visit 2), task 1 is row 2 (visit 3).
    assert_eq!(counts(step(&v, "coadd")), [3, 1, 0, 0, 1, 1]);
    let f = &v["failed"][0];
    assert_eq!((f["job"].as_str(), f["exit_code"].as_i64(), f["host"].as_str()), (Some("coadd_2"), Some(3), Some("n17")));
    assert!(v["engine"]["sources"].as_array().unwrap().iter().any(|s| s.as_str().unwrap().starts_with("sacct -D")));
    // Without Slurm's tools: said, not fatal.
    let out = Command::new(env!("CARGO_BIN_EXE_bpsc"))
        .args(["status", "--json", &sub.to_string_lossy()])
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["unreadable"].as_array().unwrap().iter().any(|u| u.as_str().unwrap().contains("cannot run sacct")), "{v:#}");
    assert_eq!(out.status.code(), Some(3));

    // Pegasus: the planner's run directory, job names TRANSFORMATION_ID.
    set_backend("pegasus");
    let run = sub.join("pegasus/me/pegasus/mini/run0001");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(run.join("braindump.yml"), "user: \"me\"\njsd: \"jobstate.log\"\ndag: \"mini-0.dag\"\n").unwrap();
    std::fs::write(
        run.join("jobstate.log"),
        "1700000000 INTERNAL *** DAGMAN_STARTED 1.0 ***\n\
1700000001 create_dir_mini_0_local SUBMIT 2.0 local - 1\n\
1700000002 create_dir_mini_0_local JOB_SUCCESS 0 local - 1\n\
1700000003 calibrate_calibrate_1_0 SUBMIT 3.0 local - 2\n\
1700000004 calibrate_calibrate_1_0 EXECUTE 3.0 local - 2\n\
1700000005 calibrate_calibrate_1_1 SUBMIT 4.0 local - 3\n\
1700000006 calibrate_calibrate_1_1 EXECUTE 4.0 local - 3\n\
1700000007 calibrate_calibrate_1_1 JOB_TERMINATED 4.0 local - 3\n\
1700000008 calibrate_calibrate_1_1 JOB_FAILURE 9 local - 3\n\
1700000009 calibrate_calibrate_1_2 SUBM",
    )
    .unwrap();
    let (v, code) = status_json(&sub);
    assert_eq!(code, 4);
    assert_eq!(counts(step(&v, "calibrate")), [9, 7, 1, 0, 1, 0]);
    assert_eq!(v["engine"]["unmapped_jobs"], 1, "create_dir is Pegasus's own job");
    assert_eq!(v["failed"][0]["exit_code"], 9);

    // Nextflow: the trace file, tagged with job ids.
    set_backend("nextflow");
    std::fs::create_dir_all(sub.join("nextflow")).unwrap();
    std::fs::write(
        sub.join("nextflow/trace.tsv"),
        "task_id\thash\tnative_id\tprocess\ttag\tname\tstatus\texit\tattempt\tsubmit\tstart\tcomplete\trealtime\tpeak_rss\tworkdir\n\
1\tab/1\t1\tcalibrate\tcalibrate_1_0\tcalibrate (calibrate_1_0)\tRUNNING\t-\t1\t-\t-\t-\t-\t-\t/w\n",
    )
    .unwrap();
    let (v, _) = status_json(&sub);
    assert_eq!(counts(step(&v, "calibrate")), [9, 8, 1, 0, 0, 0]);
}

/// Successful quantum records per (step, data ID), over several submit directories.
fn successes(dirs: &[&Path]) -> BTreeMap<(String, String), usize> {
    let mut m = BTreeMap::new();
    for d in dirs {
        bpsc::submitdir::records::for_each_record(d, |r, _| {
            for q in &r.quanta {
                if q.succeeded() {
                    *m.entry((q.step.clone(), bpsc::submitdir::records::data_id_key(&q.data_id))).or_insert(0) += 1;
                }
            }
        });
    }
    m
}

fn restart(submit: &Path, extra: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_bpsc")).arg("restart").arg(submit).args(extra).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn ids_of(submit: &Path) -> Vec<String> {
    tasks(submit).into_keys().collect()
}

#[test]
fn restart_runs_only_what_is_left_and_completes() {
    let dir = tmpdir("restart");
    let bps = campaign(&dir);
    let sub = dir.join("submit");
    compile(&bps, &sub);
    run_local(&sub, &[FAIL_2_1], 0, true);
    dag_finished(&sub, 1);
    let new = dir.join("restart1");
    let (code, out, err) = restart(&sub, &["-o", &new.to_string_lossy()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("2 of 12 quanta remain (10 succeeded and excluded, 0 designated"), "{out}");
    assert_eq!(ids_of(&new), ["calibrate_2_1", "coadd_2", "provenance", "stageout_coadd_2"]);
    // The edge calibrate_2_1 -> coadd_2 is kept; coadd_2's other parents (succeeded) are gone.
    let t = tasks(&new);
    assert_eq!(t["coadd_2"].parents, ["calibrate_2_1"]);
    assert!(std::fs::read_to_string(new.join("workflow.dag")).unwrap().contains("PARENT calibrate_2_1 CHILD coadd_2"));
    let meta: Value = serde_json::from_str(&std::fs::read_to_string(new.join("bpsc.json")).unwrap()).unwrap();
    assert_eq!(meta["restart"]["stats"]["quanta_succeeded_excluded"], 10);
    assert_eq!(meta["provenance_db"], serde_json::json!(std::fs::canonicalize(&sub).unwrap().join("provenance.sqlite")));
    // Run what is left: the campaign completes, and no succeeded quantum ran twice.
    run_local(&new, &[], 0, true);
    let (v, code) = status_json(&new);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["totals"]["succeeded"], 4);
    let s = successes(&[&sub, &new]);
    assert_eq!(s.len(), 12, "every quantum succeeded once: {s:?}");
    assert!(s.values().all(|n| *n == 1), "{s:?}");
    // Both runs land in the campaign's one store: coverage is complete.
    let mut csv = Vec::new();
    let scope = bpsc::provstore::resolve(&new, None, None, &mut Vec::new()).unwrap();
    bpsc::provstore::resolve(&sub, None, None, &mut Vec::new()).unwrap();
    let n = bpsc::provstore::query(
        &scope,
        &bpsc::provstore::Query::Coverage { step: "calibrate".into() },
        bpsc::provstore::Format::Csv,
        &mut csv,
    )
    .unwrap();
    assert_eq!(n, 9);
    // A second restart of the restart has nothing left but the provenance job.
    let (code, out, err) = restart(&new, &["-o", &dir.join("restart2").to_string_lossy()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("0 of 12 quanta remain (12 succeeded"), "{out}");
    assert_eq!(ids_of(&dir.join("restart2")), ["provenance"]);
}

#[test]
fn restart_from_a_step_and_listed_data_ids_and_with_new_settings() {
    let dir = tmpdir("designate");
    let bps = campaign(&dir);
    let sub = dir.join("submit");
    compile(&bps, &sub);
    run_local(&sub, &[], 0, true);
    let (code, out, err) = restart(&sub, &["--from", "coadd", "-o", &dir.join("r1").to_string_lossy(), "--set", "coadd.memory=3GiB"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        ids_of(&dir.join("r1")),
        ["coadd_1", "coadd_2", "coadd_3", "provenance", "stageout_coadd_1", "stageout_coadd_2", "stageout_coadd_3"]
    );
    let line = bpsc::submitdir::tasks::read_task(&dir.join("r1"), "coadd", 0).unwrap();
    assert!(line.contains(&format!("\"memory\":{}", 3u64 << 30)), "--set on restart: {line}");
    let meta: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("r1/bpsc.json")).unwrap()).unwrap();
    assert_eq!(meta["compile"]["sets"], serde_json::json!(["coadd.memory=3GiB"]));
    // Listed data IDs: visit 1 (every detector) and what depends on it.
    std::fs::write(dir.join("ids.csv"), "visit\n1\n").unwrap();
    let (code, out, err) = restart(&sub, &["--data-ids", &dir.join("ids.csv").to_string_lossy(), "-o", &dir.join("r2").to_string_lossy()]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(ids_of(&dir.join("r2")), ["calibrate_1_0", "calibrate_1_1", "calibrate_1_2", "coadd_1", "provenance", "stageout_coadd_1"]);
    // With a step column: only that step's quanta (and downstream).
    std::fs::write(dir.join("ids2.csv"), "step,visit,detector\ncalibrate,3,2\n").unwrap();
    let (code, out, err) = restart(&sub, &["--data-ids", &dir.join("ids2.csv").to_string_lossy(), "-o", &dir.join("r3").to_string_lossy()]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(ids_of(&dir.join("r3")), ["calibrate_3_2", "coadd_3", "provenance", "stageout_coadd_3"]);
    let (code, _, err) = restart(&sub, &["--from", "nosuch", "-o", &dir.join("r4").to_string_lossy()]);
    assert_eq!(code, 2);
    assert!(err.contains("no step `nosuch`"), "{err}");
}

#[test]
fn restart_avoids_hosts_with_repeated_failures() {
    let dir = tmpdir("hosts");
    let bps = campaign(&dir);
    let sub = dir.join("submit");
    compile(&bps, &sub);
    // Records as bpsc wrap writes them: calibrate_1_0 failed three times on one node.
    let rec = |job: &str, attempt: u32, host: &str, exit: i64, step: &str, data_id: Value| {
        let r = serde_json::json!({
            "record": 1, "job_id": job, "kind": "compute", "group": step, "index": 0, "attempt": attempt,
            "host": host, "start": "2026-11-21T10:00:00.000Z", "end": "2026-11-21T10:00:05.000Z", "seconds": 5.0,
            "exit_code": exit, "signal": null, "peak_rss_kib": 1000,
            "quanta": [{"step": step, "data_id": data_id, "exit_code": exit, "seconds": 5.0}],
            "inputs": [], "outputs": [], "error": null, "log": {"out": null, "err": null},
        });
        bpsc::wrap::write_record(&sub, job, attempt, &r).unwrap();
    };
    for a in 1..=3 {
        rec("calibrate_1_0", a, "bad-node.example.org", 137, "calibrate", serde_json::json!({"visit": 1, "detector": 0}));
    }
    rec("calibrate_1_1", 1, "bad2", 1, "calibrate", serde_json::json!({"visit": 1, "detector": 1}));
    rec("calibrate_1_1", 2, "good", 0, "calibrate", serde_json::json!({"visit": 1, "detector": 1}));
    let r1 = dir.join("r1");
    let (code, out, err) = restart(&sub, &["-o", &r1.to_string_lossy()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("host avoidance: added to avoid_hosts of every step (at least 3 failed attempts, at least 50% of the host's): bad-node.example.org (3 failures)"),
        "{out}"
    );
    let sub_file = std::fs::read_to_string(r1.join("htcondor/calibrate.sub")).unwrap();
    assert!(sub_file.contains("!(member(toLower(Machine), {\"bad-node.example.org\"})"), "{sub_file}");
    assert!(!sub_file.contains("bad2"));
    let meta: Value = serde_json::from_str(&std::fs::read_to_string(r1.join("bpsc.json")).unwrap()).unwrap();
    assert_eq!(meta["restart"]["avoid_hosts_added"], serde_json::json!([{"host": "bad-node.example.org", "failures": 3}]));
    assert!(!ids_of(&r1).contains(&"calibrate_1_1".to_string()), "succeeded on its second attempt");
    assert!(ids_of(&r1).contains(&"calibrate_1_0".to_string()));
    // A host that fails often but mostly succeeds is not avoided.
    for k in 0..4 {
        rec(&format!("calibrate_2_{}", k % 3), 10 + k, "busy", 0, "calibrate", serde_json::json!({"visit": 2, "detector": k % 3}));
    }
    for k in 0..3 {
        rec("calibrate_3_0", 10 + k, "busy", 1, "calibrate", serde_json::json!({"visit": 3, "detector": 0}));
    }
    let r2 = dir.join("r2");
    let (code, out, _) = restart(&sub, &["-o", &r2.to_string_lossy()]);
    assert_eq!(code, 0);
    assert!(out.contains("bad-node.example.org (3 failures)") && !out.contains("busy"), "3 of 7 failed on busy: {out}");
    // When every host would be avoided, none is.
    let lone = tmpdir("lone");
    let lone_sub = lone.join("submit");
    compile(&campaign(&lone), &lone_sub);
    for a in 1..=3 {
        let r = serde_json::json!({"job_id": "calibrate_1_0", "kind": "compute", "attempt": a, "host": "only", "exit_code": 1,
            "quanta": [{"step": "calibrate", "data_id": {"visit": 1, "detector": 0}, "exit_code": 1}]});
        bpsc::wrap::write_record(&lone_sub, "calibrate_1_0", a, &r).unwrap();
    }
    let (code, out, err) = restart(&lone_sub, &["-o", &lone.join("r").to_string_lossy()]);
    assert_eq!(code, 0);
    assert!(!out.contains("host avoidance") && err.contains("none is avoided"), "{out}{err}");
    // A threshold above the count, or 0: nothing avoided.
    for t in ["4", "0"] {
        let r = dir.join(format!("r-{t}"));
        let (code, out, _) = restart(&sub, &["--host-failures", t, "-o", &r.to_string_lossy()]);
        assert_eq!(code, 0);
        assert!(!out.contains("host avoidance"), "{out}");
        assert!(!std::fs::read_to_string(r.join("htcondor/calibrate.sub")).unwrap().contains("bad-node"));
    }
}

#[test]
fn provenance_ingest_query_and_diff() {
    let dir = tmpdir("prov");
    let bps = campaign(&dir);
    let a = dir.join("a");
    let b = dir.join("b");
    compile(&bps, &a);
    compile(&bps, &b);
    run_local(&a, &[FAIL_2_1], 1, false);
    run_local(&b, &[("FAKE_TASK_FAIL_CALIBRATE", "visit=3,detector=0")], 0, false);
    let bin = env!("CARGO_BIN_EXE_bpsc");
    let run = |args: &[&str]| {
        let o = Command::new(bin).args(args).output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };
    let a_s = a.to_string_lossy().into_owned();
    let b_s = b.to_string_lossy().into_owned();
    // Ingest is idempotent.
    let first = run(&["provenance", "ingest", &a_s, "--json"]);
    let v: Value = serde_json::from_str(&first).unwrap();
    let n = v["ingested"]["records"].as_u64().unwrap();
    assert_eq!(n, 8 + 2 + 2 + 2, "8 calibrate, the failed one twice, 2 coadd, 2 stage-out");
    assert_eq!(v["ingested"]["new"], n);
    let again: Value = serde_json::from_str(&run(&["provenance", "ingest", &a_s, "--json"])).unwrap();
    assert_eq!((again["ingested"]["new"].as_u64(), again["ingested"]["unchanged"].as_u64()), (Some(0), Some(n)));
    // Coverage: the succeeded data IDs of a step, one column per dimension.
    let cov = run(&["provenance", "query", &a_s, "--coverage", "calibrate"]);
    let lines: Vec<&str> = cov.lines().collect();
    assert_eq!(lines[0], "step,detector,visit,data_id,job,attempt,host,submit");
    assert_eq!(lines.len(), 1 + 8);
    assert!(!cov.contains("calibrate_2_1"));
    // History of one quantum: both attempts, failed.
    let hist: Value = serde_json::from_str(&run(&[
        "provenance",
        "query",
        &a_s,
        "--quantum",
        "calibrate",
        "--data-id",
        "visit=2,detector=1",
        "--format",
        "json",
    ]))
    .unwrap();
    let hist = hist.as_array().unwrap();
    assert_eq!(hist.len(), 2);
    assert!(hist.iter().all(|r| r["exit_code"] == 1 && r["job"] == "calibrate_2_1"));
    assert_eq!(hist[1]["attempt"], 2);
    // What ran on this host: everything.
    let host = hist[0]["host"].as_str().unwrap().to_string();
    let on_host: Value = serde_json::from_str(&run(&["provenance", "query", &a_s, "--host", &host, "--format", "json"])).unwrap();
    assert_eq!(on_host.as_array().unwrap().len() as u64, n);
    let job: Value = serde_json::from_str(&run(&["provenance", "query", &a_s, "--job", "coadd_1", "--format", "json"])).unwrap();
    assert_eq!(job.as_array().unwrap().len(), 1);
    // Metrics per step.
    let m: Value = serde_json::from_str(&run(&["provenance", "query", &a_s, "--metrics", "--format", "json"])).unwrap();
    let cal = m.as_array().unwrap().iter().find(|r| r["step"] == "calibrate").unwrap();
    assert_eq!(
        (cal["attempts"].as_u64(), cal["succeeded"].as_u64(), cal["failed"].as_u64(), cal["quanta_succeeded"].as_u64()),
        (Some(10), Some(8), Some(2), Some(8))
    );
    assert!(cal["wall_median"].as_f64().is_some());
    assert!(m.as_array().unwrap().iter().any(|r| r["step"] == "(stage_out)"));
    // Diff: per data ID, and per step.
    let d = run(&["provenance", "diff", &a_s, &b_s]);
    let row = |step: &str, did: &str| {
        d.lines().find(|l| l.starts_with(&format!("{step},\"{did}\""))).unwrap_or_else(|| panic!("{step} {did} in\n{d}")).to_string()
    };
    assert!(row("calibrate", r#"{""detector"":1,""visit"":2}"#).contains(",failed,succeeded,fixed,"));
    assert!(row("calibrate", r#"{""detector"":0,""visit"":3}"#).contains(",succeeded,failed,broke,"));
    assert!(row("coadd", r#"{""visit"":2}"#).contains(",absent,succeeded,only_b,"));
    assert!(row("coadd", r#"{""visit"":3}"#).contains(",succeeded,absent,only_a,"));
    assert!(row("coadd", r#"{""visit"":1}"#).contains(",succeeded,succeeded,same,"));
    let s: Value = serde_json::from_str(&run(&["provenance", "diff", &a_s, &b_s, "--summary", "--format", "json"])).unwrap();
    let cal = s.as_array().unwrap().iter().find(|r| r["step"] == "calibrate").unwrap();
    assert_eq!((cal["same"].as_u64(), cal["fixed"].as_u64(), cal["broke"].as_u64()), (Some(7), Some(1), Some(1)));
    assert!(cal["median_ratio"].as_f64().is_some());
    // A database file as the source, with a campaign chosen.
    let db = a.join("provenance.sqlite").to_string_lossy().into_owned();
    let cov2 = run(&["provenance", "query", &db, "--campaign", "mini", "--coverage", "calibrate"]);
    assert_eq!(cov2, cov);
    // The same store on both sides is refused.
    let o = Command::new(bin).args(["provenance", "diff", &a_s, &db]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    // The provenance job loads the store itself.
    let t = tasks(&b);
    let prov = t.values().find(|t| t.kind == "provenance").unwrap();
    let rc = Command::new(bin).args(["wrap", &b_s, "--group", &prov.group, "--index", &prov.index.to_string()]).status().unwrap();
    assert!(rc.success());
    assert!(b.join("provenance.sqlite").exists());
    let again: Value = serde_json::from_str(&run(&["provenance", "ingest", &b_s, "--json"])).unwrap();
    assert_eq!(again["ingested"]["new"], 1, "only the provenance job's own record is new");
}

#[test]
fn unreadable_records_and_missing_submit_dirs_are_reported() {
    let dir = tmpdir("bad");
    let bps = campaign(&dir);
    let sub = dir.join("submit");
    compile(&bps, &sub);
    std::fs::write(sub.join("provenance/calibrate_1_0.1.json"), "{\"job_id\": \"calibrate_1_0\", \"exit_co").unwrap();
    let (v, _) = status_json(&sub);
    assert!(v["unreadable"].as_array().unwrap().iter().any(|u| u.as_str().unwrap().contains("not a provenance record")), "{v:#}");
    let mut err = Vec::new();
    let code = bpsc::status::run(&bpsc::status::StatusArgs { submit: dir.join("nope"), ..Default::default() }, &mut Vec::new(), &mut err);
    assert_eq!(code, 2);
    assert!(String::from_utf8(err).unwrap().contains("not a bpsc submit directory"));
    let _ = EState::Pending;
}
