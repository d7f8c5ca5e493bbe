//! The job wrapper (`bpsc wrap`) as engines run it: small campaigns compiled for real (the
//! HTCondor backend, shared filesystem), their jobs run by hand through the real `bpsc`
//! binary, and what an attempt leaves checked: records, logs, attempt numbers, outputs,
//! unexpected files, the final job.  Signals are sent for real; the out-of-memory test runs
//! a payload out of memory in a real memory cgroup when the machine lets the test create
//! one (root, cgroup v1 memory controller or v2 with memory delegated), and otherwise in a
//! simulation that it names in its output.
//!
//! `BPSC_TEST_EXE=PATH` runs another `bpsc` (an older build, to see these tests fail).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use serde_json::Value;

fn exe() -> String {
    std::env::var("BPSC_TEST_EXE").unwrap_or_else(|_| env!("CARGO_BIN_EXE_bpsc").to_string())
}

/// A one-step campaign over `visit` in 1, 2: each quantum fetches its `raw` (in_job) and
/// writes `calexp` (verify = true) with `run`.  `@D@` in the texts is the test directory.
fn setup(tag: &str, run: &str, step_extra: &str, campaign_extra: &str) -> (PathBuf, PathBuf) {
    let dir = common::fresh(&format!("wrap-{tag}"));
    std::fs::create_dir_all(dir.join("raw")).unwrap();
    for v in 1..3 {
        std::fs::write(dir.join(format!("raw/{v}.txt")), format!("raw {v}\n")).unwrap();
    }
    let text = r#"bps 1.1

site local {
  backend   = htcondor
  shared_fs = true
  scratch   = "@D@/scratch"
}

dimension visit = 1..3

dataset raw(visit) {
  source = "file://@D@/raw/{visit}.txt"
  stage  = in_job
}
dataset calexp(visit) { verify = true }

pipeline p {
  config c { mode = "fast" }
  step calibrate over (visit) {
    inputs  = [raw]
    outputs = [calexp]
    run     = "@RUN@"
    @STEP@
  }
}

campaign w {
  use p with c
  coverage = visit
  site = local
  @CAMPAIGN@
}
"#
    .replace("@RUN@", run)
    .replace("@STEP@", step_extra)
    .replace("@CAMPAIGN@", campaign_extra)
    .replace("@D@", &dir.to_string_lossy());
    let bps = dir.join("w.bps");
    std::fs::write(&bps, text).unwrap();
    let sub = dir.join("submit");
    let a = bpsc::cli::CompileArgs { file: bps, ..Default::default() };
    let mut err = Vec::new();
    let code = bpsc::cli::compile_backend(&bpsc::fs::RealFs, &a, Some("htcondor"), &sub, true, &mut err);
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&err));
    (dir, sub)
}

/// (group, index) of job `id`.
fn locate(sub: &Path, id: &str) -> (String, u64) {
    let jobs = common::table_jobs(sub);
    let j = jobs.get(id).unwrap_or_else(|| panic!("no job {id} in {:?}", jobs.keys().collect::<Vec<_>>()));
    (j.group.clone(), j.index)
}

fn wrap_cmd(sub: &Path, id: &str, env: &[(&str, &str)]) -> Command {
    let (group, index) = locate(sub, id);
    let mut c = Command::new(exe());
    c.args(["wrap", &sub.to_string_lossy(), "--group", &group, "--index", &index.to_string()])
        .env("BPSC_SCRATCH", sub.parent().unwrap().join("scratch"))
        .env("BPSC_NO_SQLITE", "1")
        .env_remove("SLURM_JOB_ID")
        .env_remove("_CONDOR_JOB_AD");
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

fn wrap(sub: &Path, id: &str, env: &[(&str, &str)]) -> i32 {
    wrap_cmd(sub, id, env).status().unwrap().code().unwrap_or(-1)
}

fn record(sub: &Path, job: &str, attempt: u32) -> Value {
    let p = sub.join(format!("provenance/{job}.{attempt}.json"));
    let t = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&t).unwrap()
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < Duration::from_secs(30), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_exit(c: &mut Child) -> std::process::ExitStatus {
    let t = Instant::now();
    loop {
        if let Some(s) = c.try_wait().unwrap() {
            return s;
        }
        if t.elapsed() > Duration::from_secs(30) {
            let _ = c.kill();
            panic!("the wrapper did not exit");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Is process `pid` running (a zombie is not)?
fn running(pid: i32) -> bool {
    let s = read(Path::new(&format!("/proc/{pid}/stat")));
    !s.is_empty() && !s.contains(") Z ")
}

/// The first attempt of each quantum sleeps (its pid in @D@/pid-VISIT); later ones succeed.
const SLEEPER: &str = "if [ $BPSC_ATTEMPT = 1 ]; then echo $BASHPID > @D@/pid-{visit}; exec sleep 30; fi; echo ok > {outputs}";

#[test]
fn sigterm_is_forwarded_recorded_and_the_next_attempt_gets_a_new_number() {
    let (dir, sub) = setup("term", SLEEPER, "", "");
    let pidfile = dir.join("pid-1");
    let mut w = wrap_cmd(&sub, "calibrate_1", &[]).spawn().unwrap();
    wait_for("the payload", || read(&pidfile).trim().parse::<i32>().is_ok());
    let payload: i32 = read(&pidfile).trim().parse().unwrap();
    assert!(running(payload));
    // What condor_rm, scancel or a walltime kill does first: SIGTERM to the wrapper.
    unsafe {
        libc::kill(w.id() as i32, libc::SIGTERM);
    }
    let st = wait_exit(&mut w);
    assert_eq!(st.code(), Some(143), "128 + SIGTERM");
    assert!(!running(payload), "the payload outlived its attempt");
    let r = record(&sub, "calibrate_1", 1);
    assert_eq!(r["attempt"], 1);
    assert_eq!(r["exit_code"], 143);
    assert_eq!(r["interrupted"], "SIGTERM");
    assert_eq!(r["signal"], 15);
    assert_eq!(r["quanta"][0]["signal"], 15, "the payload died of the forwarded signal: {r:#}");
    let err1 = sub.join("logs/calibrate/calibrate_1.1.err");
    assert!(read(&err1).contains("received SIGTERM"), "{}", read(&err1));
    // The next attempt: a new number, its own logs.
    let ad = dir.join("job.ad");
    std::fs::write(&ad, "ClusterId = 77\nProcId = 3\n").unwrap();
    assert_eq!(wrap(&sub, "calibrate_1", &[("_CONDOR_JOB_AD", ad.to_str().unwrap())]), 0);
    let r2 = record(&sub, "calibrate_1", 2);
    assert_eq!((r2["attempt"].as_u64(), r2["exit_code"].as_i64()), (Some(2), Some(0)));
    assert_eq!((r2["engine"].as_str(), r2["engine_job"].as_str()), (Some("htcondor"), Some("77.3")));
    let out1 = read(&sub.join("logs/calibrate/calibrate_1.1.out"));
    let out2 = read(&sub.join("logs/calibrate/calibrate_1.2.out"));
    assert!(out1.contains("attempt 1 ") && !out1.contains("attempt 2 "), "attempt 1's log: {out1}");
    assert!(out2.contains("attempt 2 ") && !out2.contains("attempt 1 "), "attempt 2's log: {out2}");
    assert_eq!(r2["log"]["out"].as_str(), Some(sub.join("logs/calibrate/calibrate_1.2.out").to_str().unwrap()));
}

#[test]
fn sigkill_leaves_a_lost_record_and_the_number_is_not_reused() {
    let (dir, sub) = setup("kill", SLEEPER, "", "");
    let pidfile = dir.join("pid-2");
    let mut w = wrap_cmd(&sub, "calibrate_2", &[]).spawn().unwrap();
    wait_for("the payload", || read(&pidfile).trim().parse::<i32>().is_ok());
    let payload: i32 = read(&pidfile).trim().parse().unwrap();
    w.kill().unwrap(); // SIGKILL: nothing can be recorded by the wrapper itself
    wait_exit(&mut w);
    wait_for("the payload to die with its wrapper", || !running(payload));
    assert!(!sub.join("provenance/calibrate_2.1.json").exists());
    // A Slurm-run retry: the engine's id is recorded.
    assert_eq!(wrap(&sub, "calibrate_2", &[("SLURM_JOB_ID", "900"), ("SLURM_ARRAY_JOB_ID", "899"), ("SLURM_ARRAY_TASK_ID", "1")]), 0);
    let lost = record(&sub, "calibrate_2", 1);
    assert_eq!(lost["lost"], true, "{lost:#}");
    assert!(lost["exit_code"].is_null());
    assert!(lost["host"].is_string(), "host from the killed attempt's log: {lost:#}");
    let r2 = record(&sub, "calibrate_2", 2);
    assert_eq!(r2["exit_code"], 0);
    assert_eq!((r2["engine"].as_str(), r2["engine_job"].as_str()), (Some("slurm"), Some("899_1")));
    assert!(!read(&sub.join("logs/calibrate/calibrate_2.1.out")).contains("attempt 2 "), "attempt 2 appended to attempt 1's log");
    // bpsc status reads the lost record as a failed attempt and the job as succeeded.
    let mut out = Vec::new();
    let a = bpsc::status::StatusArgs { submit: sub.clone(), json: true, ..Default::default() };
    bpsc::status::run(&a, &mut out, &mut Vec::new());
    let v: Value = serde_json::from_slice(&out).unwrap();
    let step = v["steps"].as_array().unwrap().iter().find(|s| s["step"] == "calibrate").unwrap().clone();
    assert_eq!(step["succeeded"], 1, "{v:#}");
}

#[test]
fn outputs_left_by_an_earlier_attempt_cannot_pass_verify() {
    // Attempt 1 writes its output and fails; attempt 2 succeeds without writing it.
    let run = "if [ $BPSC_ATTEMPT = 1 ]; then echo stale > {outputs}; exit 1; fi; exit 0";
    let (dir, sub) = setup("stale", run, "", "");
    assert_eq!(wrap(&sub, "calibrate_1", &[]), 1);
    assert!(dir.join("scratch/calexp/1").exists());
    assert_eq!(wrap(&sub, "calibrate_1", &[]), bpsc::submitdir::exit::WRAP_MISSING_OUTPUT);
    let r = record(&sub, "calibrate_1", 2);
    assert_eq!(r["quanta"][0]["stale_outputs_removed"][0].as_str(), Some(dir.join("scratch/calexp/1").to_str().unwrap()));
    assert_eq!(r["outputs"][0]["missing"], true);
}

#[test]
fn records_name_inputs_config_and_unexpected_files_kept() {
    let run = "pwd > @D@/cwd-{visit}; echo junk > junk.txt; mkdir -p sub; echo x > sub/y.log; echo ok > {outputs}";
    let (dir, sub) = setup("keep", run, "unexpected = keep", "");
    assert_eq!(wrap(&sub, "calibrate_1", &[]), 0);
    let r = record(&sub, "calibrate_1", 1);
    let q = &r["quanta"][0];
    // The quantum's working area: its own, under the scratch, removed afterwards.
    let cwd = read(&dir.join("cwd-1")).trim().to_string();
    assert!(cwd.starts_with(dir.join("scratch/.bpsc-work/calibrate_1.1").to_str().unwrap()), "{cwd}");
    assert!(!Path::new(&cwd).exists());
    let un = q["unexpected"].as_array().unwrap();
    assert_eq!(un.len(), 2, "{q:#}");
    assert_eq!(un[0]["path"], "junk.txt");
    assert_eq!(un[0]["kept"], "unexpected/calibrate/1/attempt-1/junk.txt");
    assert_eq!(read(&sub.join("unexpected/calibrate/1/attempt-1/junk.txt")), "junk\n");
    assert_eq!(read(&sub.join("unexpected/calibrate/1/attempt-1/sub/y.log")), "x\n");
    assert_eq!(q["config"], "configs/p.c.json");
    assert!(sub.join(q["config"].as_str().unwrap()).exists());
    // The consumed input (fetched in the job) with its checksum.
    assert_eq!(q["inputs"][0]["dataset"], "raw");
    assert_eq!(q["inputs"][0]["sha256"].as_str().map(|s| s.len()), Some(64));
    assert_eq!(q["inputs"][0]["verified"], true);
    assert_eq!(r["inputs"], q["inputs"]);
    // discard (the default): listed and removed.
    let (_, sub) = setup("discard", run, "", "");
    assert_eq!(wrap(&sub, "calibrate_1", &[]), 0);
    let r = record(&sub, "calibrate_1", 1);
    let un = r["quanta"][0]["unexpected"].as_array().unwrap().clone();
    assert_eq!(un.len(), 2);
    assert!(un.iter().all(|u| u["removed"] == true && u.get("kept").is_none()), "{un:?}");
    assert!(!sub.join("unexpected").exists());
}

/// Make group `group` of `sub` a rendered-lines group holding `lines`.
fn hand_written(sub: &Path, group: &str, lines: &[Value]) {
    let p = sub.join("tasks/spec.json");
    let mut spec: Value = serde_json::from_str(&read(&p)).unwrap();
    for g in spec["groups"].as_array_mut().unwrap() {
        if g["name"] == group {
            g["layout"] = "lines".into();
            g["jobs"] = lines.len().into();
        }
    }
    std::fs::write(&p, spec.to_string()).unwrap();
    let (mut text, mut idx) = (String::new(), Vec::new());
    for l in lines {
        idx.extend_from_slice(&(text.len() as u64).to_le_bytes());
        text.push_str(&l.to_string());
        text.push('\n');
    }
    std::fs::write(sub.join(format!("tasks/{group}.jsonl")), text).unwrap();
    std::fs::write(sub.join(format!("tasks/{group}.idx")), idx).unwrap();
}

#[test]
fn per_quantum_inputs_of_the_line_are_recorded_with_checksums() {
    let (dir, sub) = setup("inputs", "echo ok > {outputs}", "", "");
    std::fs::create_dir_all(dir.join("scratch/calexp")).unwrap();
    std::fs::write(dir.join("scratch/calexp/0"), b"parent product").unwrap();
    let (group, _) = locate(&sub, "calibrate_1");
    let line = serde_json::json!({
        "id": "calibrate_1", "kind": "compute", "priority": 0,
        "quanta": [{
            "step": "calibrate", "data_id": {"visit": 1},
            "command": "cat ${BPSC_SCRATCH}/calexp/0 > ${BPSC_SCRATCH}/calexp/1",
            "outputs": [{"dataset": "calexp", "path": "${BPSC_SCRATCH}/calexp/1", "verify": true}],
            "fetch": [],
            "inputs": [
                {"dataset": "calexp", "path": "${BPSC_SCRATCH}/calexp/0"},
                {"dataset": "raw", "path": format!("{}/raw/1.txt", dir.display())},
                {"dataset": "raw", "path": format!("{}/raw/none.txt", dir.display())}
            ]
        }]
    });
    hand_written(&sub, &group, &[line]);
    assert_eq!(wrap(&sub, "calibrate_1", &[]), 0);
    let r = record(&sub, "calibrate_1", 1);
    let ins = r["quanta"][0]["inputs"].as_array().unwrap();
    assert_eq!(ins.len(), 3, "{r:#}");
    assert_eq!(ins[0]["path"].as_str(), Some(dir.join("scratch/calexp/0").to_str().unwrap()));
    assert_eq!(ins[0]["size"], 14);
    assert_eq!(ins[0]["sha256"].as_str(), Some(bpsc::wrap::sha256_file(&dir.join("scratch/calexp/0")).unwrap().1.as_str()));
    assert_eq!(ins[1]["dataset"], "raw");
    assert_eq!(ins[2]["missing"], true);
}

fn run_all(sub: &Path) -> i32 {
    for id in ["calibrate_1", "calibrate_2"] {
        wrap(sub, id, &[]);
    }
    wrap(sub, "provenance", &[])
}

#[test]
fn the_final_job_runs_when_its_when_matches_the_outcome() {
    let run = "if [ -e @D@/fail-{visit} ]; then exit 3; fi; echo ok > {outputs}";
    for when in ["always", "success", "failure"] {
        for fail in [false, true] {
            let fin = format!("final report {{\n    run  = \"echo $BPSC_CAMPAIGN_OUTCOME > @D@/final.txt\"\n    when = {when}\n  }}");
            let (dir, sub) = setup(&format!("final-{when}-{fail}"), run, "", &fin);
            if fail {
                std::fs::write(dir.join("fail-2"), "").unwrap();
            }
            let rc = run_all(&sub);
            let outcome = if fail { "failure" } else { "success" };
            let due = when == "always" || when == outcome;
            let what = format!("when = {when}, outcome {outcome}");
            assert_eq!(rc, 0, "{what}");
            let p = record(&sub, "provenance", 1);
            assert_eq!(p["campaign"]["outcome"], outcome, "{what}: {p:#}");
            assert_eq!(p["final_job"]["ran"], due, "{what}");
            assert_eq!(read(&dir.join("final.txt")), if due { format!("{outcome}\n") } else { String::new() }, "{what}");
            let fr = sub.join("provenance/final_report.1.json");
            assert_eq!(fr.exists(), due, "{what}");
            if due {
                let f = record(&sub, "final_report", 1);
                assert_eq!((f["kind"].as_str(), f["exit_code"].as_i64()), (Some("final"), Some(0)), "{what}");
                assert!(read(&sub.join("provenance/campaign.jsonl")).contains("\"final_report\""), "{what}");
            }
        }
    }
}

/// A memory cgroup for the test: (dir, real).  Real when the test can create a child of its
/// own memory cgroup with a limit; else a directory that stands for one.
fn test_cgroup(dir: &Path, limit: u64) -> (PathBuf, bool) {
    if let Some(cg) = bpsc::wrap::memory::detect() {
        let child = cg.dir.join(format!("bpsc-oom-test-{}", std::process::id()));
        let limit_file = match cg.version {
            bpsc::wrap::memory::Version::V1 => "memory.limit_in_bytes",
            bpsc::wrap::memory::Version::V2 => "memory.max",
        };
        if std::fs::create_dir(&child).is_ok() || child.is_dir() {
            if std::fs::write(child.join(limit_file), limit.to_string()).is_ok() {
                return (child, true);
            }
            let _ = std::fs::remove_dir(&child);
        }
    }
    let fake = dir.join("fake-cgroup");
    std::fs::create_dir_all(&fake).unwrap();
    std::fs::write(fake.join("memory.events"), "oom 0\noom_kill 0\n").unwrap();
    std::fs::write(fake.join("memory.peak"), "1048576\n").unwrap();
    (fake, false)
}

#[test]
fn an_attempt_that_runs_out_of_memory_is_recorded_and_exits_75() {
    // 400 MiB in a 64 MiB cgroup: the kernel's OOM killer kills perl.
    let real_run = "perl -e 'print length(chr(97) x 419430400)'";
    let probe = common::fresh("wrap-oom-probe");
    let (cg, real) = test_cgroup(&probe, 64 << 20);
    let run = if real {
        real_run.to_string()
    } else {
        // Simulation: what the kernel does on an OOM kill, by hand: count it, SIGKILL.
        "echo oom_kill 1 >> $BPSC_MEMORY_CGROUP/memory.events; kill -9 $BASHPID".to_string()
    };
    eprintln!("an_attempt_that_runs_out_of_memory: {} ({})", if real { "REAL cgroup" } else { "SIMULATED cgroup" }, cg.display());
    let (_, sub) = setup("oom", &run, "", "");
    let (group, index) = locate(&sub, "calibrate_1");
    let mut c = Command::new("/bin/sh");
    let env_cg = if real { String::new() } else { cg.to_string_lossy().into_owned() };
    c.args(["-c", "[ -z \"$BPSC_MEMORY_CGROUP\" ] && { echo $$ > \"$0/cgroup.procs\" || exit 99; }; exec \"$@\""])
        .arg(&cg)
        .args([exe(), "wrap".into(), sub.to_string_lossy().into_owned(), "--group".into(), group, "--index".into(), index.to_string()])
        .env("BPSC_SCRATCH", sub.parent().unwrap().join("scratch"))
        .env("BPSC_NO_SQLITE", "1");
    if real {
        c.env_remove("BPSC_MEMORY_CGROUP");
    } else {
        c.env("BPSC_MEMORY_CGROUP", &env_cg);
    }
    let rc = c.status().unwrap().code();
    if real {
        let _ = std::fs::remove_dir(&cg);
    }
    assert_eq!(rc, Some(bpsc::submitdir::exit::WRAP_OOM), "{}", read(&sub.join("logs/calibrate/calibrate_1.1.err")));
    let r = record(&sub, "calibrate_1", 1);
    assert_eq!(r["oom"], true, "{r:#}");
    assert_eq!(r["exit_code"], 75);
    assert_eq!(r["quanta"][0]["oom"], true);
    assert_eq!(r["quanta"][0]["signal"], 9);
    assert!(r["peak_source"].as_str().unwrap().starts_with("cgroup"), "{r:#}");
    // A failure that is not a memory failure is not called one.
    let (_, sub) = setup("not-oom", "exit 9", "", "");
    let mut c = wrap_cmd(&sub, "calibrate_1", &[]);
    if !real {
        std::fs::write(cg.join("memory.events"), "oom_kill 5\n").unwrap();
        c.env("BPSC_MEMORY_CGROUP", &cg);
    }
    assert_eq!(c.status().unwrap().code(), Some(9));
    let r = record(&sub, "calibrate_1", 1);
    assert_ne!(r["oom"], true, "{r:#}");
}

#[test]
fn two_watchers_never_fire_one_notification_twice() {
    let fin = "notify {\n    on = [done]\n    command = \"echo {event} >> @D@/notify.log\"\n  }";
    let (dir, sub) = setup("notify", "echo ok > {outputs}", "", fin);
    assert_eq!(run_all(&sub), 0);
    std::fs::write(sub.join("workflow.dag.metrics"), "{\"client\":\"condor_dagman\",\"exitcode\":0}\n").unwrap();
    let r = bpsc::status::collect(&sub).unwrap();
    // Both started before either fired (two `bpsc status --watch` of one directory).
    let mut a = bpsc::status::notify::Notifier::new(&sub, bpsc::status::notify::Mode::All);
    let mut b = bpsc::status::notify::Notifier::new(&sub, bpsc::status::notify::Mode::All);
    let fired: Vec<String> = [a.observe(&r), b.observe(&r)].concat();
    assert_eq!(read(&dir.join("notify.log")), "done\n", "{fired:?}");
}
