//! `bpsc report` from real runs on the local single-node Slurm cluster, with injected
//! failures and retries: a campaign whose calibrate 2,1 fails on every try (so coadd 2 and
//! the summary never run) and whose coadd 1 fails once and succeeds on its retry; then a
//! `bpsc restart` that completes it.  The report of the first run counts what `bpsc status`
//! counts; the report of the restart shows both runs as one history (failed tries listed
//! with the job's final state, retries on the timeline, requested against used memory).
//! The report is kept as `target/report-slurm/report.html`.
//!
//! Same gating as tests/status_slurm.rs: enabled when `CI` is set or
//! `BPSC_SLURM_TESTS=1`; under CI a cluster that does not come up fails the test.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

fn campaign(dir: &Path) -> std::path::PathBuf {
    std::fs::create_dir_all(dir.join("raw")).unwrap();
    for v in 1..4 {
        for d in 0..3 {
            std::fs::write(dir.join(format!("raw/{v}-{d}.txt")), format!("raw {v} {d}\n")).unwrap();
        }
    }
    let d = dir.display();
    let run = "$BPSC_EXAMPLE_DIR/bin/fake_task.sh --task={step} --data-id={data_id} --attempt={attempt} -- {outputs}";
    let text = format!(
        r#"bps 1.1
site local {{
  backend   = slurm
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
dataset summary()
pipeline p {{
  step calibrate over (visit, detector) {{
    inputs   = [raw]
    outputs  = [calexp]
    walltime = 30m
    run      = "{run}"
  }}
  step coadd over (visit) {{
    inputs  = [calexp]
    outputs = [coadd]
    run     = "{run}"
  }}
  step summarize over () {{
    inputs  = [coadd]
    outputs = [summary]
    run     = "{run}"
  }}
}}
campaign slurm_report {{
  use p
  coverage      = visit * detector
  site          = local
  partition     = "debug"
  memory        = 100MiB
  memory_growth = 2.0
  walltime      = 1h
  retries       = 1
  # Jobs see only what the campaign passes them (captured when it is compiled).
  pass_env      = ["BPSC_EXAMPLE_DIR", "FAKE_TASK_SLEEP", "FAKE_TASK_FAIL_CALIBRATE", "FAKE_TASK_FAIL_COADD", "FAKE_TASK_FAIL_ATTEMPTS_COADD"]
}}
"#
    );
    let p = dir.join("slurm_report.bps");
    std::fs::write(&p, text).unwrap();
    p
}

fn json_of(args: &[&dyn AsRef<std::ffi::OsStr>]) -> (i32, Value) {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_bpsc")).args(args.iter().map(|a| a.as_ref())).output().unwrap();
    let v = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)));
    (o.status.code().unwrap_or(-1), v)
}

fn rows_of<'a>(v: &'a Value, job: &str) -> Vec<&'a Value> {
    v["failures"]["rows"].as_array().unwrap().iter().filter(|r| r["job"] == job).collect()
}

#[test]
fn report_of_a_real_slurm_run_and_its_restart() {
    if !common::slurm_enabled() {
        eprintln!("SKIPPED: needs a local Slurm cluster; set BPSC_SLURM_TESTS=1 (as root) to bring one up with backends/slurm/cluster-up.sh (CI runs it always)");
        return;
    }
    common::slurm_up();
    let bpsc = env!("CARGO_BIN_EXE_bpsc");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("report-slurm-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let bps = campaign(&dir);
    let sub = dir.join("submit");
    // The payload's environment, captured at compile time (pass_env): the injected failures
    // for the first run, none for the restart.
    let examples = common::repo().join("examples").display().to_string();
    let env = |fail: bool| -> Vec<(&'static str, String)> {
        let f = |v: &str| if fail { v.to_string() } else { String::new() };
        vec![
            ("BPSC_EXAMPLE_DIR", examples.clone()),
            ("FAKE_TASK_SLEEP", "0.05".into()),
            ("FAKE_TASK_FAIL_CALIBRATE", f("visit=2,detector=1")),
            ("FAKE_TASK_FAIL_COADD", f("visit=1")),
            ("FAKE_TASK_FAIL_ATTEMPTS_COADD", f("1")),
        ]
    };
    let run_bpsc = |args: &[&str], env: &[(&'static str, String)]| {
        let e: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        common::bpsc_with(args, &e)
    };
    let (code, _, err) = run_bpsc(&["compile", bps.to_str().unwrap(), "--backend", "slurm", "-o", sub.to_str().unwrap()], &env(true));
    assert_eq!(code, 0, "{err}");
    let ids = common::slurm_submit(bpsc, &sub, &[]);
    common::slurm_wait(&ids, Duration::from_secs(600));
    // The first run: the report counts what bpsc status counts (read together until they
    // agree: records and sacct settle a moment apart).
    let settle = Instant::now() + Duration::from_secs(30);
    let (st, one) = loop {
        let (_, st) = json_of(&[&"status", &"--json", &sub]);
        let (code, one) = json_of(&[&"report", &"--json", &sub]);
        assert_eq!(code, 0);
        if (st["totals"] == one["totals"] && st["state"] == "failed") || Instant::now() > settle {
            break (st, one);
        }
        std::thread::sleep(Duration::from_secs(1));
    };
    assert_eq!(one["totals"], st["totals"], "report and status agree");
    assert_eq!(one["state"], "failed");
    assert_eq!(one["runs"][0]["backend"], "slurm");
    let step = |v: &Value, s: &str| {
        v["steps"].as_array().unwrap().iter().find(|x| x["step"] == s).cloned().unwrap_or_else(|| panic!("no step {s}"))
    };
    assert_eq!(step(&one, "calibrate")["failed"], 1);
    assert_eq!(step(&one, "summarize")["skipped"], 1);
    let cal = rows_of(&one, "calibrate_2_1");
    assert_eq!(cal.len(), 2, "retries = 1: two failed tries");
    assert!(cal.iter().all(|r| r["exit_code"] == 1 && r["final_state"] == "failed" && r["host"].as_str().is_some_and(|h| !h.is_empty())));
    assert!(cal.iter().all(|r| Path::new(r["log"].as_str().unwrap()).exists()), "{cal:?}");
    let coadd1 = rows_of(&one, "coadd_1");
    assert_eq!((coadd1.len(), coadd1[0]["final_state"].as_str()), (1, Some("succeeded")), "coadd 1 succeeded on its retry");
    assert_eq!(step(&one, "coadd")["retried_jobs"], 1, "coadd 1, retried by Slurm");
    assert_eq!(step(&one, "calibrate")["requested"]["memory_bytes"], 100u64 << 20);
    assert!(step(&one, "calibrate")["peak_rss_mib"]["max"].as_f64().unwrap() > 0.0, "the wrapper measured the payload");
    // The restart completes the campaign; its report is the whole history.
    let new = dir.join("restart1");
    let (code, out, err) = run_bpsc(&["restart", sub.to_str().unwrap(), "-o", new.to_str().unwrap()], &env(false));
    assert_eq!(code, 0, "{out}{err}");
    let ids = common::slurm_submit(bpsc, &new, &[]);
    common::slurm_wait(&ids, Duration::from_secs(600));
    let settle = Instant::now() + Duration::from_secs(30);
    let v = loop {
        let (_, v) = json_of(&[&"report", &"--json", &new]);
        if v["state"] == "done" || Instant::now() > settle {
            break v;
        }
        std::thread::sleep(Duration::from_secs(1));
    };
    assert_eq!(v["state"], "done", "{:#}", v["totals"]);
    assert_eq!(v["runs"].as_array().unwrap().len(), 2);
    assert_eq!(v["totals"]["jobs"], one["totals"]["jobs"]);
    assert_eq!(v["totals"]["succeeded"], v["totals"]["jobs"]);
    let cal = rows_of(&v, "calibrate_2_1");
    assert!(cal.len() == 2 && cal.iter().all(|r| r["final_state"] == "succeeded" && r["run"] == 0), "{cal:?}");
    let lanes = v["timeline"]["lanes"].as_array().unwrap();
    let attempts: Vec<&Value> = lanes.iter().flat_map(|l| l["attempts"].as_array().unwrap()).collect();
    let third = attempts.iter().find(|a| a["job"] == "calibrate_2_1" && a["run"] == 1).expect("calibrate 2,1 ran in the restart");
    assert_eq!((third["try_number"].as_u64(), third["outcome"].as_str()), (Some(3), Some("retry_succeeded")));
    let retry = attempts.iter().find(|a| a["job"] == "coadd_1" && a["try_number"] == 2).expect("coadd 1's retry");
    assert_eq!((retry["run"].as_u64(), retry["outcome"].as_str()), (Some(0), Some("retry_succeeded")));
    assert!(v["timeline"]["run_starts"][1].as_f64().unwrap() > 0.0);
    assert!(v["hosts"][0]["failures"].as_u64().unwrap() >= 3);
    // The page, kept as an artefact.
    let keep = common::repo().join("target/report-slurm");
    std::fs::create_dir_all(&keep).unwrap();
    let (code, _, err) = bpsc_cmd!("report", &new, "-o", keep.join("report.html"));
    assert_eq!(code, 0, "{err}");
    let html = std::fs::read_to_string(keep.join("report.html")).unwrap();
    for s in ["calibrate", "coadd", "summarize", "calibrate_2_1", "retry succeeded"] {
        assert!(html.contains(s), "{s}");
    }
}
