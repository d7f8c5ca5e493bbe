//! The Slurm backend on a real single-node Slurm cluster.
//!
//! Each example is compiled with `--backend slurm`, submitted with the generated
//! `slurm/submit.sh`, and waited for; then the provenance records, sacct and the outputs are
//! checked: every job completed, every child started after each of its parents ended, the
//! outputs exist; injected failures give the expected failed, skipped and cancelled jobs under
//! `on_failure = continue` and `abort`; a retry grows `--mem`; hostile data ID values neither
//! escape the submit directory nor execute.
//!
//! Enabled when `CI` is set or `BPSC_SLURM_TESTS=1`: the first test brings the cluster up
//! with backends/slurm/cluster-up.sh (root; installs Debian packages when missing), then
//! submits every scenario at once so that they share the cluster.  Without either variable
//! every test prints that it is skipped.  Under CI a cluster that does not come up fails.
//!
//! The examples are copied to a temporary directory with their `/sdf/...` and `/sps/...`
//! paths (scratch, archives) moved under it; the payload is examples/bin/fake_task.sh; remote
//! URLs (s3://, root://) go through a stand-in transfer tool, and `apptainer` is a stand-in
//! that runs the command outside a container.  `--set` overrides make the jobs fit the local
//! node: partition "debug", 100 MiB, the cluster's ghost node as `avoid_hosts`.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

fn enabled() -> bool {
    common::engine_tests_enabled("BPSC_SLURM_TESTS")
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn sh(cmd: &str, args: &[&str]) -> (bool, String, String) {
    match Command::new(cmd).args(args).output() {
        Ok(o) => (o.status.success(), String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned()),
        Err(e) => (false, String::new(), format!("{cmd}: {e}")),
    }
}

fn hostname() -> String {
    sh("hostname", &["-s"]).1.trim().to_string()
}

// ------------------------------------------------------------------ scenarios

struct Scenario {
    name: &'static str,
    /// examples/<dir>, or "" for a campaign written by the test (see `write_own`).
    example: &'static str,
    main: &'static str,
    sets: Vec<String>,
    env: Vec<(&'static str, String)>,
}

fn base_sets() -> Vec<String> {
    vec![
        "partition=\"debug\"".into(),
        "avoid_hosts=[\"bpsc-ghost\"]".into(),
        "memory=100MiB".into(),
        "software=setup(\"export BPSC_TEST_SETUP=ok\")".into(),
    ]
}

fn scenarios() -> Vec<Scenario> {
    let host = hostname();
    let mut v = vec![
        Scenario {
            name: "drp",
            example: "drp",
            main: "drp.bps",
            // memory_growth_on = any: every failed attempt asks for more memory (the memory
            // scenario tests the default, growth on out-of-memory kills only).
            sets: [base_sets(), vec!["memory_growth_on=any".into()]].concat(),
            // One measure quantum fails on its first attempt only: a requeue with 2x memory.
            env: vec![("FAKE_TASK_FAIL_MEASURE", "tract=9813,patch=37,band=g".into()), ("FAKE_TASK_FAIL_ATTEMPTS_MEASURE", "1".into())],
        },
        Scenario {
            name: "nightly_calib",
            example: "nightly_calib",
            main: "nightly_calib.bps",
            sets: [base_sets(), vec![format!("hosts=[\"{host}\"]")]].concat(),
            env: vec![],
        },
        Scenario {
            name: "afterburner",
            example: "afterburner",
            main: "afterburner.bps",
            // Keeps its container(...) software: runs through the stand-in apptainer.
            sets: base_sets().into_iter().filter(|s| !s.starts_with("software")).collect(),
            env: vec![],
        },
        Scenario { name: "special_programs", example: "special_programs", main: "special_programs.bps", sets: base_sets(), env: vec![] },
        Scenario {
            name: "drp_continue",
            example: "drp",
            main: "drp.bps",
            sets: [base_sets(), vec!["measure.on_failure=continue".into()]].concat(),
            env: vec![("FAKE_TASK_FAIL_MEASURE", "tract=9813,patch=37,band=g".into())],
        },
        Scenario {
            name: "drp_abort",
            example: "drp",
            main: "drp.bps",
            // No retries: the abort comes in the first wave, while most jobs still wait.
            sets: [base_sets(), vec!["calibrate.on_failure=abort".into(), "retries=0".into()]].concat(),
            env: vec![("FAKE_TASK_FAIL_CALIBRATE", "visit=30404,detector=3".into())],
        },
    ];
    v.push(Scenario { name: "hostile", example: "", main: "hostile.bps", sets: vec![], env: vec![] });
    v.push(Scenario { name: "memory", example: "", main: "memory.bps", sets: vec![], env: vec![] });
    v.push(Scenario { name: "timeout", example: "", main: "timeout.bps", sets: vec![], env: vec![] });
    v.push(Scenario { name: "throttle", example: "", main: "throttle.bps", sets: vec![], env: vec![] });
    v
}

/// The variables of the submitting shell every scenario's jobs need, declared with
/// `pass_env` (captured when the campaign is compiled).  Anything else in the submitting
/// shell must not reach the jobs: `BPSC_LEAK_CANARY` is set there and must stay unset in the
/// jobs (checked by the hostile campaign's payload).
const PASS_ENV: &[&str] =
    &["BPSC_EXAMPLE_DIR", "FAKE_TASK_SLEEP", "FAKE_TASK_LOG", "FAKE_NOTIFY_LOG", "FAKE_TRANSFER_LOG", "FAKE_APPTAINER_LOG"];

/// The campaign files the test writes itself.
fn write_own(name: &str, src: &Path, root: &Path) {
    std::fs::create_dir_all(src).expect("mkdir");
    let put = |file: &str, text: &str| std::fs::write(src.join(file), text.replace("@ROOT@", &root.to_string_lossy())).expect("write bps");
    match name {
        "hostile" => write_hostile(src, root),
        // S5 + language 1.1 memory_growth_on: `hog` asks for 150 MB at --mem=100M and is killed
        // by the kernel in the job's cgroup (cluster-up.sh enforces memory): retried with
        // 200M.  `flaky` exits 1 once: retried at 100M (growth on out-of-memory only).
        // `flaky_any` (memory_growth_on = any) exits 1 once: retried with 200M.
        "memory" => put(
            "memory.bps",
            r#"bps 1.1
site local { backend = slurm, shared_fs = true, scratch = "@ROOT@/scratch/{campaign}" }
dimension n = 0..2
pipeline p {
  step hog over (n) {
    outputs = [h]
    run     = "if [ {n} = 0 ]; then python3 -c 'import os; os.urandom(150 << 20)' || exit; fi; $BPSC_EXAMPLE_DIR/bin/fake_task.sh --task={step} --data-id={data_id} -- {outputs}"
  }
  step flaky over (n) {
    outputs = [f]
    run     = "m=$BPSC_SCRATCH/failed-once-{step}-{n}; [ -e $m ] || {{ touch $m; exit 1; }}; $BPSC_EXAMPLE_DIR/bin/fake_task.sh --task={step} --data-id={data_id} -- {outputs}"
  }
  step flaky_any over (n) {
    outputs          = [g]
    memory_growth_on = any
    run              = "m=$BPSC_SCRATCH/failed-once-{step}-{n}; [ -e $m ] || {{ touch $m; exit 1; }}; $BPSC_EXAMPLE_DIR/bin/fake_task.sh --task={step} --data-id={data_id} -- {outputs}"
  }
}
campaign "memory" {
  use p
  coverage      = n
  site          = local
  partition     = "debug"
  memory        = 100MiB
  memory_growth = 2.0
  retries       = 2
  pass_env      = ["BPSC_EXAMPLE_DIR", "FAKE_TASK_SLEEP"]
  # Language 1.1's final job, on Slurm: run by the provenance job after every other job.
  final report {
    run  = "echo \"{campaign} $BPSC_CAMPAIGN_OUTCOME\" >> @ROOT@/final-memory.log"
    when = always
  }
}
"#,
        ),
        // S5: the first run of `slow` sleeps past its one-minute walltime; SIGUSR1 (30 s
        // before the limit) ends it and the job requeues itself; the second run succeeds.
        "timeout" => put(
            "timeout.bps",
            r#"bps 1.1
site local { backend = slurm, shared_fs = true, scratch = "@ROOT@/scratch/{campaign}" }
dimension n = 0..1
pipeline p {
  step slow over (n) {
    outputs  = [s]
    walltime = 3m
    run      = "m=$BPSC_SCRATCH/ran-once-{n}; [ -e $m ] || {{ touch $m; sleep 600; }}; $BPSC_EXAMPLE_DIR/bin/fake_task.sh --task={step} --data-id={data_id} -- {outputs}"
  }
}
campaign "timeout" {
  use p
  coverage  = n
  site      = local
  partition = "debug"
  memory    = 100MiB
  retries   = 2
  pass_env  = ["BPSC_EXAMPLE_DIR", "FAKE_TASK_SLEEP"]
}
"#,
        ),
        // S4 + language 1.1 max_running: `wide` (20 quanta, MaxArraySize 4: five arrays) with
        // max_running = 3, and `narrow` (12 quanta: three arrays) with max_running = 7.
        "throttle" => put(
            "throttle.bps",
            r#"bps 1.1
site local { backend = slurm, shared_fs = true, scratch = "@ROOT@/scratch/{campaign}", max_array_size = 4 }
dimension n = 0..20
dimension m = 0..12
pipeline p {
  step wide over (n) {
    outputs     = [w]
    max_running = 3
    run         = "sleep 2; $BPSC_EXAMPLE_DIR/bin/fake_task.sh --task={step} --data-id={data_id} -- {outputs}"
  }
  step narrow over (m) {
    outputs     = [x]
    max_running = 7
    run         = "sleep 2; $BPSC_EXAMPLE_DIR/bin/fake_task.sh --task={step} --data-id={data_id} -- {outputs}"
  }
}
campaign "throttle" {
  use p
  coverage  = n * m
  site      = local
  partition = "debug"
  memory    = 64MiB
  retries   = 0
  pass_env  = ["BPSC_EXAMPLE_DIR", "FAKE_TASK_SLEEP"]
}
"#,
        ),
        other => panic!("no campaign {other}"),
    }
}

/// Values that would escape a path or run a command if they reached a shell or a path
/// unquoted.  `@ROOT@` becomes the scenario directory (canaries must never appear).
const HOSTILE_VALUES: &[&str] =
    &["../../etc", "$(touch @ROOT@/CANARY1)", "`touch @ROOT@/CANARY2`", ";touch @ROOT@/CANARY3", "a b", "it's", "say \"hi\"", "-rf", "x,y"];

fn csv_field(v: &str) -> String {
    if v.contains([',', '"', ' ', '\'']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v.to_string()
    }
}

fn write_hostile(src: &Path, root: &Path) {
    std::fs::create_dir_all(src.join("data")).expect("mkdir");
    let mut csv = String::from("target\n");
    for v in HOSTILE_VALUES {
        csv.push_str(&csv_field(&v.replace("@ROOT@", &root.to_string_lossy())));
        csv.push('\n');
    }
    std::fs::write(src.join("data/targets.csv"), csv).expect("csv");
    let bps = r#"bps 1.1
# Hostile data ID values (data/targets.csv), run for real on Slurm.  MaxArraySize 4 makes
# each step three arrays; max_jobs throttles them.
site local {
  backend        = slurm
  shared_fs      = true
  scratch        = "@ROOT@/scratch/{campaign}"
  max_array_size = 4
}
dimension target = table("data/targets.csv").target
pipeline p {
  step make over (target) {
    outputs = [thing]
    run     = "$BPSC_EXAMPLE_DIR/bin/fake_task.sh --task={step} --data-id={data_id} --attempt={attempt} -- {outputs}"
  }
  step echo over (target) {
    inputs  = [thing]
    outputs = [echoed]
    run     = "printf '%s\\n' {target} \"{target}\" '{target}' \"$HOSTILE_ENV\" \"$(printenv BPSC_LEAK_CANARY || echo absent)\" \"$(printenv FAKE_TASK_SLEEP || echo absent)\" > \"$BPSC_SCRATCH/echo-$BPSC_JOB.txt\" && $BPSC_EXAMPLE_DIR/bin/fake_task.sh --task={step} --data-id={data_id} -- {outputs}"
  }
}
campaign "hostile" {
  use p
  coverage  = target
  site      = local
  partition = "debug"
  memory    = 64MiB
  retries   = 1
  max_jobs  = 2
  pass_env  = ["BPSC_EXAMPLE_DIR", "FAKE_TASK_SLEEP", "FAKE_TASK_LOG"]
  env { HOSTILE_ENV = "it's $(touch @ROOT@/CANARY4) `touch @ROOT@/CANARY5` \"q\"" }
}
"#;
    std::fs::write(src.join("hostile.bps"), bps.replace("@ROOT@", &root.to_string_lossy())).expect("bps");
}

/// Make every campaign file of a copied example `bps 1.1` (for `pass_env`).  With
/// `one_controller`, its sites also get `controller = "bpsc-local"`: special_programs spans two
/// facilities (E801 on Slurm, tests/slurm_backend.rs), which on this machine are partitions of
/// the one local cluster.
fn to_v1_1(dir: &Path, one_controller: bool) {
    for e in std::fs::read_dir(dir).expect("read copy").flatten() {
        let p = e.path();
        if p.is_dir() {
            to_v1_1(&p, one_controller);
        } else if p.extension().is_some_and(|x| x == "bps") {
            let mut text = std::fs::read_to_string(&p).expect("read bps");
            if let Some(rest) = text.strip_prefix("bps 1\n") {
                text = format!("bps 1.1\n{rest}");
            }
            if one_controller {
                let mut out = String::new();
                for l in text.lines() {
                    out.push_str(l);
                    out.push('\n');
                    if l.starts_with("site ") && l.trim_end().ends_with('{') {
                        out.push_str("  controller = \"bpsc-local\"\n");
                    }
                }
                text = out;
            }
            std::fs::write(&p, text).expect("write bps");
        }
    }
}

/// Copy an example, moving its absolute /sdf and /sps paths under `fs`.
fn copy_example(from: &Path, to: &Path, fs: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read example").flatten() {
        let p = e.path();
        let dest = to.join(e.file_name());
        if p.is_dir() {
            copy_example(&p, &dest, fs);
        } else if p.extension().is_some_and(|x| x == "bps") {
            let text = std::fs::read_to_string(&p).expect("read bps");
            let fs = fs.to_string_lossy();
            std::fs::write(&dest, text.replace("/sdf/", &format!("{fs}/sdf/")).replace("/sps/", &format!("{fs}/sps/"))).expect("write bps");
        } else {
            std::fs::copy(&p, &dest).expect("copy");
        }
    }
}

const TRANSFER_TOOL: &str = r#"#!/bin/sh
# Stand-in transfer tool (BPSC_TRANSFER_TOOL FROM TO): a remote source becomes a small
# file naming it; a remote destination is only logged.
echo "$1 -> $2" >> "$FAKE_TRANSFER_LOG"
to=$2
case $to in file://*) to=${to#file://} ;; *://*) exit 0 ;; esac
mkdir -p "$(dirname "$to")" || exit 1
case $1 in
  file://*) cp "${1#file://}" "$to" ;;
  *://*) printf 'stand-in for %s\n' "$1" > "$to" ;;
  *) cp "$1" "$to" ;;
esac
"#;

/// Stand-in for `apptainer exec [--bind SRC[:DST]]... IMAGE CMD...`.  No apptainer can run
/// here: Debian 12 does not package it, and no image registry is reachable.  What it checks
/// as apptainer does: the image argument must be a form apptainer-exec(1) accepts (a scheme
/// such as `docker://`, an existing `.sif` file or sandbox directory), else it fails like
/// apptainer ("could not open image"); every bind source must exist.  What it cannot catch:
/// it pulls and enters no image (so neither whether `bpsc` and the payload's tools exist
/// inside it, nor the image's own environment), and it does not isolate the filesystem: a
/// path the job reads outside its binds is still visible here, but would not be in a real
/// container unless the site's apptainer.conf binds it.
const APPTAINER: &str = r#"#!/bin/sh
echo "apptainer $*" >> "$FAKE_APPTAINER_LOG"
[ "$1" = exec ] || { echo "stand-in apptainer: only 'exec' is supported" >&2; exit 64; }
shift
while [ $# -gt 0 ]; do
  case $1 in
    --bind|-B)
      src=${2%%:*}
      [ -e "$src" ] || { echo "FATAL: container creation failed: mount $src: no such file or directory" >&2; exit 255; }
      shift 2 ;;
    -*) echo "stand-in apptainer: unknown option $1" >&2; exit 64 ;;
    *) break ;;
  esac
done
image=$1
case $image in
  docker://?*|library://?*|oras://?*|shub://?*|docker-archive:?*|docker-daemon:?*|http://?*|https://?*) ;;
  *) [ -f "$image" ] || [ -d "$image" ] || {
       echo "FATAL: could not open image $PWD/$image: failed to retrieve path for $image: lstat $PWD/$image: no such file or directory" >&2
       exit 255; } ;;
esac
shift
exec "$@"
"#;

fn write_exec(p: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(p, text).expect("write");
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

struct Run {
    root: PathBuf,
    submit: PathBuf,
    ids: Vec<String>,
    submitted: Instant,
    /// Compile or submit failure.
    error: Option<String>,
}

fn prepare(s: &Scenario, base: &Path) -> Run {
    let root = base.join(s.name);
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).expect("mkdir");
    let src = root.join("src");
    let mut sets = s.sets.clone();
    if s.example.is_empty() {
        write_own(s.name, &src, &root);
    } else {
        copy_example(&repo().join("examples").join(s.example), &src, &root.join("fs"));
        // Language 1.1 for pass_env; the jobs see the variables the payloads need and
        // nothing else from this process's environment.
        to_v1_1(&src, s.example == "special_programs");
        let names: Vec<String> = PASS_ENV.iter().chain(s.env.iter().map(|(k, _)| k)).map(|k| format!("\"{k}\"")).collect();
        sets.push(format!("pass_env=[{}]", names.join(", ")));
    }
    // What the submitting shell holds: pass_env captures from it at compile time, and
    // submit.sh runs in it (BPSC_LEAK_CANARY must never reach a job).
    let mut env: Vec<(String, std::ffi::OsString)> = vec![
        ("BPSC".into(), env!("CARGO_BIN_EXE_bpsc").into()),
        ("BPSC_EXAMPLE_DIR".into(), repo().join("examples").into()),
        ("BPSC_TRANSFER_TOOL".into(), root.join("transfer.sh").into()),
        ("BPSC_APPTAINER".into(), root.join("bin/apptainer").into()),
        ("BPSC_LEAK_CANARY".into(), "leaked".into()),
        ("FAKE_TASK_SLEEP".into(), "0.05".into()),
        ("FAKE_TASK_LOG".into(), root.join("fake_task.log").into()),
        ("FAKE_NOTIFY_LOG".into(), root.join("notify.log").into()),
        ("FAKE_TRANSFER_LOG".into(), root.join("transfer.log").into()),
        ("FAKE_APPTAINER_LOG".into(), root.join("apptainer.log").into()),
    ];
    env.extend(s.env.iter().map(|(k, v)| (k.to_string(), v.into())));
    let submit = root.join("submit");
    let mut run = Run { root: root.clone(), submit: submit.clone(), ids: Vec::new(), submitted: Instant::now(), error: None };
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bpsc"));
    cmd.arg("compile").arg(src.join(s.main)).args(["--backend", "slurm", "-o"]).arg(&submit);
    for set in &sets {
        cmd.arg("--set").arg(set);
    }
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    match cmd.output() {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            run.error = Some(format!("compile failed: {}", String::from_utf8_lossy(&o.stderr)));
            return run;
        }
        Err(e) => {
            run.error = Some(format!("cannot run bpsc: {e}"));
            return run;
        }
    }
    write_exec(&root.join("transfer.sh"), TRANSFER_TOOL);
    std::fs::create_dir_all(root.join("bin")).expect("mkdir");
    write_exec(&root.join("bin/apptainer"), APPTAINER);
    let mut cmd = Command::new(submit.join("slurm/submit.sh"));
    cmd.current_dir(&root).envs(env.iter().map(|(k, v)| (k, v)));
    run.submitted = Instant::now();
    match cmd.output() {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            run.error = Some(format!("submit.sh failed: {}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)));
            return run;
        }
        Err(e) => {
            run.error = Some(format!("cannot run submit.sh: {e}"));
            return run;
        }
    }
    run.ids = std::fs::read_to_string(submit.join("slurm/jobids"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect();
    run
}

static RUNS: OnceLock<Result<HashMap<&'static str, Run>, String>> = OnceLock::new();

/// Bring the cluster up and submit every scenario, once; `None` when the tests are not enabled.
fn runs() -> Option<&'static HashMap<&'static str, Run>> {
    if !enabled() {
        common::skipped(
            "slurm_integration",
            "needs the local Slurm cluster; tests/run.sh and CI run it (or set BPSC_SLURM_TESTS=1, as root: \
             backends/slurm/cluster-up.sh brings one up)",
        );
        return None;
    }
    let r = RUNS.get_or_init(|| {
        let t = Instant::now();
        let up = Command::new(repo().join("backends/slurm/cluster-up.sh")).output().map_err(|e| format!("cluster-up.sh: {e}"))?;
        if !up.status.success() {
            return Err(format!(
                "backends/slurm/cluster-up.sh failed:\n{}{}",
                String::from_utf8_lossy(&up.stdout),
                String::from_utf8_lossy(&up.stderr)
            ));
        }
        eprintln!("[slurm-it] cluster up in {:.1} s", t.elapsed().as_secs_f64());
        let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("slurm-it");
        let mut m = HashMap::new();
        for s in scenarios() {
            let run = prepare(&s, &base);
            m.insert(s.name, run);
        }
        Ok(m)
    });
    match r {
        Ok(m) => Some(m),
        Err(e) => panic!("{e}"),
    }
}

/// Wait until none of the run's jobs is in the queue.
fn wait(name: &str, run: &Run) -> f64 {
    assert!(run.error.is_none(), "{name}: {}", run.error.as_deref().unwrap_or(""));
    let ids = run.ids.join(",");
    let deadline = Instant::now() + Duration::from_secs(1800);
    // The queue must stay empty for 5 s: a job retried by requeue-hold is released with
    // `StartTime=now+2`, and an empty poll can fall into that gap.
    let mut quiet_since: Option<Instant> = None;
    loop {
        let (ok, out, err) = sh("squeue", &["-h", "-j", &ids, "-o", "%i %T %r"]);
        let active: Vec<&str> = out.lines().filter(|l| !l.contains("DependencyNeverSatisfied")).collect();
        if ok && active.is_empty() {
            let since = *quiet_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= Duration::from_secs(5) {
                break;
            }
            std::thread::sleep(Duration::from_millis(500));
            continue;
        }
        quiet_since = None;
        if Instant::now() > deadline {
            let _ = sh(&run.submit.join("slurm/cancel.sh").to_string_lossy(), &[]);
            panic!("{name}: jobs still queued after 1800 s: {}\n{err}", active.join("; "));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let secs = run.submitted.elapsed().as_secs_f64();
    eprintln!("[slurm-it] {name}: all jobs left the queue {secs:.1} s after submission");
    secs
}

// ------------------------------------------------------------------ reading the results

struct Results {
    /// id -> task line
    tasks: BTreeMap<String, Value>,
    /// id -> records by attempt
    recs: BTreeMap<String, Vec<Value>>,
    /// sacct -X rows: JobID -> (State, ExitCode, ReqMem)
    sacct: Vec<(String, String, String, String)>,
}

fn results(run: &Run) -> Results {
    // Every job's line as the wrapper renders it (the Slurm tables keep parents).
    let tasks: BTreeMap<String, Value> = common::table_jobs(&run.submit).into_iter().map(|(id, t)| (id, t.line)).collect();
    let mut recs: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for e in std::fs::read_dir(run.submit.join("provenance")).expect("provenance").flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        if n.starts_with('.') || !n.ends_with(".json") {
            continue;
        }
        let v: Value = serde_json::from_str(&std::fs::read_to_string(e.path()).expect("read")).expect("record");
        recs.entry(v["job_id"].as_str().unwrap_or_default().to_string()).or_default().push(v);
    }
    for v in recs.values_mut() {
        v.sort_by_key(|r| r["attempt"].as_u64());
    }
    // Accounting records arrive asynchronously.
    let ids = run.ids.join(",");
    let mut sacct = Vec::new();
    for _ in 0..120 {
        let (_, out, _) = sh("sacct", &["-X", "-n", "-P", "-o", "JobID,State,ExitCode,ReqMem", "-j", &ids]);
        sacct = out
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split('|').collect();
                (f.len() == 4).then(|| (f[0].to_string(), f[1].to_string(), f[2].to_string(), f[3].to_string()))
            })
            .collect();
        if !sacct.is_empty() && sacct.iter().all(|r| !matches!(r.1.as_str(), "PENDING" | "RUNNING" | "REQUEUED" | "COMPLETING")) {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    Results { tasks, recs, sacct }
}

impl Results {
    fn exit_codes(&self, id: &str) -> Vec<i64> {
        self.recs.get(id).into_iter().flatten().map(|r| r["exit_code"].as_i64().unwrap_or(-1)).collect()
    }
    fn last(&self, id: &str) -> Option<&Value> {
        self.recs.get(id).and_then(|v| v.last())
    }
    fn ok(&self, id: &str) -> bool {
        self.last(id).is_some_and(|r| r["exit_code"] == 0)
    }
    fn descendants(&self, id: &str) -> BTreeSet<String> {
        let mut children: HashMap<&str, Vec<&str>> = HashMap::new();
        for (c, t) in &self.tasks {
            for p in t["parents"].as_array().into_iter().flatten() {
                children.entry(p.as_str().unwrap_or_default()).or_default().push(c);
            }
        }
        let mut out = BTreeSet::new();
        let mut stack = vec![id];
        while let Some(x) = stack.pop() {
            for &c in children.get(x).into_iter().flatten() {
                if out.insert(c.to_string()) {
                    stack.push(c);
                }
            }
        }
        out
    }
    /// Every child's first attempt started after the last attempt of each parent ended.
    fn order_problems(&self) -> Vec<String> {
        let mut bad = Vec::new();
        for (id, t) in &self.tasks {
            let Some(first) = self.recs.get(id).and_then(|v| v.first()) else { continue };
            for p in t["parents"].as_array().into_iter().flatten() {
                let p = p.as_str().unwrap_or_default();
                if let Some(pl) = self.last(p) {
                    let (end, start) = (pl["end"].as_str().unwrap_or(""), first["start"].as_str().unwrap_or(""));
                    if end > start {
                        bad.push(format!("{id} started {start} before its parent {p} ended {end}"));
                    }
                }
            }
        }
        bad
    }
    /// Output files of successful compute jobs and archive copies of successful stage-outs.
    fn missing_outputs(&self) -> Vec<String> {
        let mut bad = Vec::new();
        // Discarded intermediates that cleanup jobs removed on purpose.
        let removed: BTreeSet<&str> = self
            .recs
            .values()
            .filter_map(|v| v.last())
            .filter(|r| r["kind"] == "cleanup" && r["exit_code"] == 0)
            .flat_map(|r| r["outputs"].as_array().into_iter().flatten())
            .filter_map(|o| o["path"].as_str())
            .collect();
        for (id, v) in &self.recs {
            let r = &v[v.len() - 1];
            if r["exit_code"] != 0 || !matches!(r["kind"].as_str(), Some("compute") | Some("stage_out")) {
                continue;
            }
            for o in r["outputs"].as_array().into_iter().flatten() {
                let path = o["path"].as_str().unwrap_or_default();
                if path.contains("://") || removed.contains(path) {
                    continue; // remote archive (the stand-in tool only logs it), or cleaned up
                }
                if o["missing"] == true || !Path::new(path).is_file() {
                    bad.push(format!("{id}: output {path} missing"));
                }
            }
        }
        bad
    }
}

/// Seconds since the epoch of an RFC 3339 UTC time as the wrapper writes it.
fn secs_of(t: &str) -> f64 {
    let num = |a: usize, b: usize| t.get(a..b).and_then(|x| x.parse::<i64>().ok()).unwrap_or(0);
    let (y, m, d) = (num(0, 4), num(5, 7), num(8, 10));
    let (y, m) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    let frac: f64 = t.get(19..23).and_then(|x| format!("0{x}").parse().ok()).unwrap_or(0.0);
    (days * 86400 + num(11, 13) * 3600 + num(14, 16) * 60 + num(17, 19)) as f64 + frac
}

fn assert_no(problems: Vec<String>, what: &str) {
    assert!(problems.is_empty(), "{what}:\n  {}", problems.join("\n  "));
}

fn assert_all_completed(name: &str, res: &Results) {
    let not_ok: Vec<String> = res.tasks.keys().filter(|id| !res.ok(id)).cloned().collect();
    assert_no(not_ok, &format!("{name}: jobs without a successful record"));
    let bad: Vec<String> = res.sacct.iter().filter(|r| r.1 != "COMPLETED").map(|r| format!("{} {} {}", r.0, r.1, r.2)).collect();
    assert_no(bad, &format!("{name}: sacct rows not COMPLETED"));
    assert!(!res.sacct.is_empty(), "{name}: sacct shows nothing");
    assert_no(res.order_problems(), &format!("{name}: dependency order"));
    assert_no(res.missing_outputs(), &format!("{name}: outputs"));
}

fn run_example(name: &str) -> Option<(&'static Run, Results, f64)> {
    let runs = runs()?;
    let run = runs.get(name).unwrap_or_else(|| panic!("no scenario {name}"));
    let secs = wait(name, run);
    let res = results(run);
    let meta: Value = serde_json::from_str(&std::fs::read_to_string(run.submit.join("bpsc.json")).expect("bpsc.json")).expect("json");
    assert_eq!(Some(res.tasks.len() as u64), meta["jobs"].as_u64());
    assert!(run.submit.join("provenance/campaign.jsonl").is_file(), "{name}: the provenance job did not gather the records");
    Some((run, res, secs))
}

/// Every remote transfer the task tables plan with scheme `scheme` (in-job fetches and
/// stage-in jobs), as "FROM -> TO" lines of the stand-in transfer tool's log.
fn planned_transfers(res: &Results, scheme: &str) -> Vec<String> {
    let mut v = Vec::new();
    for t in res.tasks.values() {
        for q in t["quanta"].as_array().into_iter().flatten() {
            for f in q["fetch"].as_array().into_iter().flatten() {
                let from = f["from"].as_str().unwrap_or_default();
                if from.starts_with(scheme) {
                    v.push(from.to_string());
                }
            }
        }
        for x in t["transfers"].as_array().into_iter().flatten() {
            let from = x["from"].as_str().unwrap_or_default();
            if from.starts_with(scheme) {
                v.push(from.to_string());
            }
        }
    }
    v.sort();
    v
}

/// The transfer log holds each planned source exactly once (a duplicate fetch, a missing
/// one or an unplanned one fails).
fn assert_transfers_once(log: &str, planned: &[String], scheme: &str) {
    let mut done: Vec<String> =
        log.lines().filter(|l| l.starts_with(scheme)).filter_map(|l| l.split(" -> ").next()).map(str::to_string).collect();
    done.sort();
    assert_eq!(done.len(), planned.len(), "{scheme} transfers: {} done, {} planned", done.len(), planned.len());
    assert_eq!(done, planned, "{scheme} transfers differ from the plan");
}

#[test]
fn time_parsing() {
    assert_eq!(secs_of("1970-01-01T00:00:00.000Z"), 0.0);
    assert_eq!(secs_of("2023-11-14T22:13:20.123Z"), 1_700_000_000.123);
}

// ------------------------------------------------------------------ the tests

#[test]
fn drp_runs_and_retries_with_more_memory() {
    let Some((run, res, secs)) = run_example("drp") else { return };
    assert_all_completed("drp", &res);
    // measure retries = 2, memory_growth = 2.0: attempt 1 failed, attempt 2 ran with 200M.
    let id = "measure_9813_37_g";
    let attempts: Vec<i64> = res.recs[id].iter().map(|r| r["exit_code"].as_i64().unwrap_or(-1)).collect();
    assert_eq!(attempts, vec![1, 0], "{id}: attempts");
    // The Slurm job of the task (its raw id, recorded by the wrapper) was requeued once.
    let raw = res.recs[id][0]["engine_job"].as_str().expect("engine_job").to_string();
    assert_eq!(res.recs[id][1]["engine_job"].as_str(), Some(raw.as_str()), "a requeue keeps the Slurm job id");
    let (_, out, _) = sh("sacct", &["-D", "-X", "-n", "-P", "-o", "JobID,State,ReqMem", "-j", &raw]);
    let rows: Vec<&str> = out.lines().collect();
    assert!(rows.iter().any(|r| r.contains("|REQUEUED|")), "{raw}: no REQUEUED row in sacct -D: {out}");
    assert!(rows.last().is_some_and(|r| r.ends_with("|COMPLETED|200M")), "{raw}: final sacct row should be COMPLETED with 200M: {out}");
    let (shown, show, _) = sh("scontrol", &["show", "job", &raw]);
    if shown {
        assert!(show.contains("Restarts=1") && show.contains("MinMemoryNode=200M"), "{raw}: scontrol show job:\n{show}");
    }
    let log = slurm_log(run, "measure", &raw);
    assert!(
        log.contains("retries used 0, --mem=100M)")
            && log.contains("requeue with --mem=200M")
            && log.contains("restart 1, retries used 1, --mem=200M)"),
        "{log}"
    );
    assert_no(provenance_last(&res), "drp: the provenance job runs last");
    eprintln!("[slurm-it] drp: {} jobs in {secs:.1} s; {id} retried with --mem 100M -> 200M", res.tasks.len());
}

/// The Slurm log (slurm-%A_%a.out) of the task whose Slurm id is `raw`: `ARRAY_TASK` (what
/// the wrapper records) names the file, a raw job id is looked for in the script's lines.
fn slurm_log(run: &Run, group: &str, raw: &str) -> String {
    if raw.contains('_') {
        let p = run.submit.join("logs").join(group).join(format!("slurm-{raw}.out"));
        return std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    }
    std::fs::read_dir(run.submit.join("logs").join(group))
        .expect("logs")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("slurm-"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .find(|t| t.contains(&format!("(Slurm job {raw},")))
        .unwrap_or_else(|| panic!("no Slurm log of job {raw} in logs/{group}"))
}

/// (State, ReqMem) of every run of a Slurm job (`ARRAY_TASK` or a raw job id), requeues
/// included (`sacct -D`).  Rows are kept by JobID or JobIDRaw: `-j RAW` of the task that
/// carries its array's own id selects every task of the array.
fn sacct_runs(raw: &str) -> Vec<(String, String)> {
    let (_, out, _) = sh("sacct", &["-D", "-X", "-n", "-P", "-o", "JobID,JobIDRaw,State,ReqMem", "-j", raw]);
    out.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('|').collect();
            (f.len() == 4 && (f[0] == raw || f[1] == raw)).then(|| (f[2].to_string(), f[3].to_string()))
        })
        .collect()
}

fn raw_job(res: &Results, id: &str) -> String {
    res.recs[id].last().and_then(|r| r["engine_job"].as_str()).unwrap_or_else(|| panic!("{id}: no engine_job")).to_string()
}

/// The provenance job (which runs the user's final job) started after every other job
/// ended, whatever happened to them (the final job's own record excepted).
fn provenance_last(res: &Results) -> Vec<String> {
    let Some(p) = res.recs.get("provenance").and_then(|v| v.first()) else { return vec!["provenance: no record".into()] };
    let start = p["start"].as_str().unwrap_or("");
    res.recs
        .iter()
        .filter(|(id, _)| *id != "provenance")
        // The user's final job is run by the provenance job itself, so it ends after it starts.
        .filter(|(_, v)| v.last().is_some_and(|r| r["kind"] != "final"))
        .filter_map(|(id, v)| v.last().map(|r| (id, r["end"].as_str().unwrap_or(""))))
        .filter(|(_, end)| *end > start)
        .map(|(id, end)| format!("{id} ended {end}, after the provenance job started {start}"))
        .collect()
}

#[test]
fn memory_grows_only_after_an_out_of_memory_kill() {
    let Some((run, res, secs)) = run_example("memory") else { return };
    assert_all_completed("memory", &res);
    // hog_0: killed by the kernel in its cgroup at 100M (exit 137, or the wrapper's OOM
    // status), requeued with 200M, then succeeded.
    let raw = raw_job(&res, "hog_0");
    let codes = res.exit_codes("hog_0");
    assert_eq!(codes.len(), 2, "hog_0: one killed attempt, one success: {codes:?}");
    assert!(codes[0] == 137 || codes[0] == 75, "hog_0: attempt 1 should be an OOM kill: {codes:?}");
    // sacct -D: one REQUEUED and one COMPLETED run.  The REQUEUED row's ReqMem is the value
    // set while the job was requeued (200M), so the first run's 100M is read from the log.
    assert_eq!(sacct_runs(&raw), vec![("REQUEUED".into(), "200M".into()), ("COMPLETED".into(), "200M".into())], "hog_0 ({raw})");
    let log = slurm_log(run, "hog", &raw);
    assert!(
        log.contains("restart 0, retries used 0, --mem=100M)")
            && log.contains("out of memory (exit ")
            && log.contains("requeue with --mem=200M")
            && log.contains("restart 1, retries used 1, --mem=200M)"),
        "{log}"
    );
    // hog_1 never exceeded its memory.
    assert_eq!(res.exit_codes("hog_1"), vec![0]);
    assert_eq!(sacct_runs(&raw_job(&res, "hog_1")), vec![("COMPLETED".into(), "100M".into())]);
    // flaky (memory_growth_on = oom, the default): exit 1 is retried in its allocation at 100M.
    for id in ["flaky_0", "flaky_1"] {
        assert_eq!(res.exit_codes(id), vec![1, 0], "{id}");
        let raw = raw_job(&res, id);
        assert_eq!(sacct_runs(&raw), vec![("COMPLETED".into(), "100M".into())], "{id} ({raw}): no requeue, no growth");
        assert!(slurm_log(run, "flaky", &raw).contains("exit 1: retry 1 of 2 in this allocation (--mem=100M)"));
    }
    // flaky_any (memory_growth_on = any): exit 1 grows the memory: requeued with 200M.  Each
    // task is requeued on its own: a requeue by the task that carries the array's own job id
    // must not requeue (or grow) its sibling.
    for id in ["flaky_any_0", "flaky_any_1"] {
        assert_eq!(res.exit_codes(id), vec![1, 0], "{id}");
        let raw = raw_job(&res, id);
        assert_eq!(sacct_runs(&raw), vec![("REQUEUED".into(), "200M".into()), ("COMPLETED".into(), "200M".into())], "{id} ({raw})");
        let log = slurm_log(run, "flaky_any", &raw);
        assert!(
            log.contains("restart 0, retries used 0, --mem=100M)") && log.contains("restart 1, retries used 1, --mem=200M)"),
            "{id}: {log}"
        );
    }
    // The final job ran once, after every other job, and saw the campaign's outcome.
    let fin = std::fs::read_to_string(run.root.join("final-memory.log")).unwrap_or_default();
    assert_eq!(fin, "memory success\n", "the final job's log");
    assert_no(provenance_last(&res), "memory: the provenance job (and its final job) ran last");
    eprintln!(
        "[slurm-it] memory: {} jobs in {secs:.1} s; hog_0 100M -> OOM -> 200M; flaky stays at 100M; flaky_any 100M -> 200M",
        res.tasks.len()
    );
}

#[test]
fn a_walltime_kill_is_retried() {
    let Some((run, res, secs)) = run_example("timeout") else { return };
    assert_all_completed("timeout", &res);
    let raw = raw_job(&res, "slow_0");
    let runs = sacct_runs(&raw);
    assert_eq!(runs.len(), 2, "slow_0 ({raw}): one run ended by the walltime signal, one success: {runs:?}");
    assert_eq!(runs[0].0, "REQUEUED", "the first run is requeued before Slurm's TIMEOUT: {runs:?}");
    assert_eq!(runs[1].0, "COMPLETED", "{runs:?}");
    let log = slurm_log(run, "slow", &raw);
    assert!(
        log.contains("walltime nearly over (SIGUSR1)") && log.contains("walltime (exit ") && log.contains("requeue with --mem=100M"),
        "{log}"
    );
    let script = std::fs::read_to_string(run.submit.join("slurm/slow.sbatch")).expect("script");
    // A lead of 90 s: slurmctld looks at time limits every 30 s, and a 30 s lead once fell
    // between two looks here (the job was killed at its limit, never signalled).
    assert!(script.contains("#SBATCH --time=0-00:03:00\n") && script.contains("#SBATCH --signal=B:USR1@90\n"), "{script}");
    eprintln!("[slurm-it] timeout: {secs:.1} s; slow_0 requeued at its walltime signal and completed");
}

/// Most jobs of `step` running at once, from the provenance records' start and end times.
fn max_concurrent(res: &Results, step: &str) -> usize {
    let mut ev: Vec<(f64, i32)> = Vec::new();
    for (id, v) in &res.recs {
        if !id.starts_with(&format!("{step}_")) {
            continue;
        }
        for r in v {
            ev.push((secs_of(r["start"].as_str().unwrap_or("")), 1));
            ev.push((secs_of(r["end"].as_str().unwrap_or("")), -1));
        }
    }
    ev.sort_by(|a, b| a.partial_cmp(b).expect("times"));
    let (mut cur, mut max) = (0i32, 0i32);
    for (_, d) in ev {
        cur += d;
        max = max.max(cur);
    }
    max as usize
}

#[test]
fn max_running_holds_across_every_array_of_a_step() {
    let Some((run, res, secs)) = run_example("throttle") else { return };
    assert_all_completed("throttle", &res);
    let submit = std::fs::read_to_string(run.submit.join("slurm/submit.sh")).expect("submit.sh");
    let wide: Vec<&str> = submit.lines().filter(|l| l.starts_with("sub J") && l.contains("slurm/wide.sbatch")).collect();
    let narrow: Vec<&str> = submit.lines().filter(|l| l.starts_with("sub J") && l.contains("slurm/narrow.sbatch")).collect();
    assert_eq!((wide.len(), narrow.len()), (5, 3), "{submit}");
    let (w, n) = (max_concurrent(&res, "wide"), max_concurrent(&res, "narrow"));
    assert!(w <= 3, "wide (max_running = 3) had {w} jobs running at once");
    assert!(n <= 7, "narrow (max_running = 7) had {n} jobs running at once");
    assert!(w >= 2 && n >= 3, "the throttles should still let jobs run side by side: wide {w}, narrow {n}");
    eprintln!("[slurm-it] throttle: {secs:.1} s; at most {w} of wide (max 3) and {n} of narrow (max 7) at once");
}

#[test]
fn nightly_calib_runs() {
    let Some((run, res, secs)) = run_example("nightly_calib") else { return };
    assert_all_completed("nightly_calib", &res);
    // in_job inputs from s3:// went through the transfer tool; --nodelist held.
    let log = std::fs::read_to_string(run.root.join("transfer.log")).unwrap_or_default();
    // Exactly one fetch per planned in-job input (90 + 108), none twice.
    let planned = planned_transfers(&res, "s3://");
    assert_eq!(planned.len(), 198, "in-job s3:// inputs planned by the task tables");
    assert_transfers_once(&log, &planned, "s3://");
    let script = std::fs::read_to_string(run.submit.join("slurm/flat_isr.sbatch")).expect("script");
    assert!(script.contains(&format!("#SBATCH --nodelist={}", hostname())), "{script}");
    eprintln!("[slurm-it] nightly_calib: {} jobs in {secs:.1} s", res.tasks.len());
}

#[test]
fn afterburner_runs_in_its_container() {
    let Some((run, res, secs)) = run_example("afterburner") else { return };
    assert_all_completed("afterburner", &res);
    let log = std::fs::read_to_string(run.root.join("apptainer.log")).unwrap_or_default();
    let compute = res.tasks.values().filter(|t| t["kind"] == "compute").count();
    let n = log
        .lines()
        .filter(|l| {
            l.starts_with(&format!("apptainer exec --bind {} ", run.submit.display()))
                && l.contains(&format!(
                    " --bind {} docker://ghcr.io/lsst/scipipe:al9-w_2024_48 {} wrap ",
                    env!("CARGO_BIN_EXE_bpsc"),
                    env!("CARGO_BIN_EXE_bpsc")
                ))
        })
        .count();
    assert_eq!(n, compute, "every compute job runs `bpsc wrap` through apptainer exec IMAGE:\n{log}");
    assert!(res
        .recs
        .values()
        .filter(|v| v[0]["kind"] == "compute")
        .all(|v| v[0]["software"] == "container:ghcr.io/lsst/scipipe:al9-w_2024_48"));
    // max_jobs = 10: the array's throttle.
    let submit = std::fs::read_to_string(run.submit.join("slurm/submit.sh")).expect("submit.sh");
    assert!(submit.contains("--array=0-19%10 "), "{submit}");
    eprintln!("[slurm-it] afterburner: {} jobs in {secs:.1} s", res.tasks.len());
}

#[test]
fn special_programs_runs() {
    let Some((run, res, secs)) = run_example("special_programs") else { return };
    assert_all_completed("special_programs", &res);
    let log = std::fs::read_to_string(run.root.join("transfer.log")).unwrap_or_default();
    // Exactly one stage-in per raw, bias and flat file (213 + 9 + 36), none twice.
    let planned = planned_transfers(&res, "root://");
    assert_eq!(planned.len(), 213 + 9 + 36, "root:// stage-ins planned by the task tables");
    assert_transfers_once(&log, &planned, "root://");
    eprintln!("[slurm-it] special_programs: {} jobs in {secs:.1} s", res.tasks.len());
}

/// The job that fails for good, its descendants (never successful: skipped with a record,
/// or cancelled without one), and everyone else.
fn failure_sets(res: &Results, failed: &str) -> (BTreeSet<String>, Vec<String>, Vec<String>) {
    let desc = res.descendants(failed);
    let skipped: Vec<String> =
        desc.iter().filter(|d| res.last(d).is_some_and(|r| r["skipped"] == true && r["exit_code"] == 79)).cloned().collect();
    let unrun: Vec<String> = desc.iter().filter(|d| !res.recs.contains_key(*d)).cloned().collect();
    (desc, skipped, unrun)
}

#[test]
fn failure_with_on_failure_continue() {
    let Some((run, res, secs)) = run_example("drp_continue") else { return };
    let failed = "measure_9813_37_g";
    let codes: Vec<i64> = res.recs[failed].iter().map(|r| r["exit_code"].as_i64().unwrap_or(-1)).collect();
    assert_eq!(codes, vec![1, 1, 1], "{failed}: 1 + retries (2) attempts, all failed");
    let (desc, skipped, unrun) = failure_sets(&res, failed);
    let problems: Vec<String> = desc.iter().filter(|d| res.ok(d)).map(|d| format!("{d} succeeded though {failed} failed")).collect();
    assert_no(problems, "descendants of the failed job");
    assert_eq!(skipped.len() + unrun.len(), desc.len(), "every descendant is skipped or never ran: {desc:?}");
    // afterany children run and skip; aftercorr children are cancelled by Slurm.
    for d in ["merge_measurements_9813_37", "make_summary", "stageout_make_summary"] {
        assert!(skipped.iter().any(|x| x == d), "{d} should be skipped (record with exit 79): skipped {skipped:?}");
    }
    for d in ["stageout_measure_9813_37_g", "stageout_merge_measurements_9813_37"] {
        assert!(unrun.iter().any(|x| x == d), "{d} should be cancelled (aftercorr): unrun {unrun:?}");
    }
    // Everything else went on.
    let others: Vec<String> = res.tasks.keys().filter(|id| *id != failed && !desc.contains(*id) && !res.ok(id)).cloned().collect();
    assert_no(others, "independent jobs that did not succeed under on_failure = continue");
    assert!(!run.submit.join("slurm/ABORTED").exists(), "continue must not abort");
    let cancelled = res.sacct.iter().filter(|r| r.1 == "CANCELLED").count();
    let failed_rows = res.sacct.iter().filter(|r| r.1 == "FAILED").count();
    assert_eq!(cancelled, unrun.len(), "sacct CANCELLED rows: {:?}", res.sacct.iter().filter(|r| r.1 != "COMPLETED").collect::<Vec<_>>());
    assert_eq!(failed_rows, 1 + skipped.len(), "sacct FAILED rows (the failure and the skips, exit 79)");
    assert_no(res.order_problems(), "drp_continue: dependency order");
    let notes = std::fs::read_to_string(run.root.join("notify.log")).unwrap_or_default();
    assert!(notes.contains("\tfailure\tmeasure") && notes.contains("\tdone\t"), "notify log: {notes}");
    eprintln!(
        "[slurm-it] drp_continue: {secs:.1} s; 1 failed, {} skipped, {} cancelled, {} completed",
        skipped.len(),
        unrun.len(),
        res.tasks.len() - 1 - desc.len()
    );
}

#[test]
fn failure_with_on_failure_abort() {
    let Some((run, res, secs)) = run_example("drp_abort") else { return };
    let failed = "single_frame_30404";
    let codes: Vec<i64> = res.recs[failed].iter().map(|r| r["exit_code"].as_i64().unwrap_or(-1)).collect();
    assert_eq!(codes, vec![1], "{failed}: one attempt (retries = 0), failed");
    let aborted = std::fs::read_to_string(run.submit.join("slurm/ABORTED")).expect("slurm/ABORTED written by the aborting job");
    assert!(aborted.contains("cluster-single_frame exit 1"), "{aborted}");
    let (desc, _skipped, unrun) = failure_sets(&res, failed);
    assert_no(desc.iter().filter(|d| res.ok(d)).cloned().collect(), "descendants that succeeded");
    assert!(unrun.contains(&"make_summary".to_string()), "make_summary must have been cancelled");
    // Nothing but the provenance job started after the abort (jobs being launched while
    // scancel ran may start within a moment of it: 2 s of slack).
    let abort_at = res.last(failed).and_then(|r| r["end"].as_str()).map(secs_of).unwrap_or(0.0);
    let late: Vec<String> = res
        .recs
        .iter()
        .filter(|(id, v)| *id != "provenance" && v[0]["start"].as_str().map(secs_of).unwrap_or(0.0) > abort_at + 2.0)
        .map(|(id, v)| format!("{id} started {}", v[0]["start"]))
        .collect();
    assert_no(late, "jobs started after the abort");
    assert!(res.ok("provenance"), "the provenance job still runs after an abort");
    assert_no(provenance_last(&res), "drp_abort: the provenance job runs after every other job, also after the abort");
    let by_user = res.sacct.iter().filter(|r| r.1.starts_with("CANCELLED by")).count();
    assert!(by_user >= 1, "sacct shows no job cancelled by the abort: {:?}", res.sacct);
    assert_no(res.order_problems(), "drp_abort: dependency order");
    eprintln!("[slurm-it] drp_abort: {secs:.1} s; {} jobs never ran, {by_user} cancelled by the abort", res.tasks.len() - res.recs.len());
}

#[test]
fn hostile_values_stay_quoted_and_inside() {
    let Some((run, res, secs)) = run_example("hostile") else { return };
    assert_all_completed("hostile", &res);
    // No canary was created: nothing executed.
    for n in 1..=5 {
        assert!(!run.root.join(format!("CANARY{n}")).exists(), "CANARY{n} exists: a value was executed");
    }
    // Every file the campaign wrote is under the scenario directory's scratch or submit dir.
    let scratch = run.root.join("scratch/hostile");
    let mut stack = vec![run.root.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                assert!(
                    p.starts_with(&scratch)
                        || p.starts_with(&run.submit)
                        || p.starts_with(run.root.join("src"))
                        || p.parent() == Some(run.root.as_path())
                        || p.starts_with(run.root.join("bin")),
                    "unexpected file {}",
                    p.display()
                );
            }
        }
    }
    let things: Vec<String> =
        std::fs::read_dir(scratch.join("thing")).expect("thing").flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(things.len(), HOSTILE_VALUES.len(), "{things:?}");
    assert!(things.iter().all(|n| n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')), "{things:?}");
    // Each value reached the payload verbatim in all three quoting contexts.
    let env = format!("it's $(touch {0}/CANARY4) `touch {0}/CANARY5` \"q\"", run.root.display());
    for (id, t) in &res.tasks {
        if !id.starts_with("echo_") {
            continue;
        }
        let v = t["quanta"][0]["data_id"]["target"].as_str().expect("target");
        let text = std::fs::read_to_string(scratch.join(format!("echo-{id}.txt"))).expect("echo file");
        // ... and the job saw its pass_env variable, not the submitting shell's others.
        assert_eq!(text, format!("{v}\n{v}\n{v}\n{env}\nabsent\n0.05\n"), "{id}");
    }
    // MaxArraySize 4: 9 jobs per step in three arrays of task ids 0-3; max_jobs 2 over
    // three arrays: %1 each, the third waiting for the first (two lanes).
    let submit = std::fs::read_to_string(run.submit.join("slurm/submit.sh")).expect("submit.sh");
    let echo_arrays: Vec<&str> = submit.lines().filter(|l| l.starts_with("sub J") && l.contains("slurm/echo.sbatch")).collect();
    assert_eq!(echo_arrays.len(), 3, "{submit}");
    assert!(echo_arrays.iter().all(|l| l.contains("%1 ")), "{echo_arrays:?}");
    assert!(echo_arrays[0].contains("--array=0-3%1 ") && echo_arrays[0].contains("aftercorr:"), "{echo_arrays:?}");
    assert!(echo_arrays[1].contains("--array=0-3%1 ") && echo_arrays[1].contains("aftercorr:"), "{echo_arrays:?}");
    let first = echo_arrays[0].split_whitespace().nth(1).expect("var");
    let afterany: Vec<&str> = echo_arrays[2]
        .split('"')
        .nth(1)
        .and_then(|d| d.split(',').find_map(|c| c.strip_prefix("afterany:")))
        .map(|l| l.split(':').collect())
        .unwrap_or_default();
    assert!(afterany.contains(&format!("${{{first}}}").as_str()), "the third array is in the first one's lane: {echo_arrays:?}");
    eprintln!("[slurm-it] hostile: {} jobs in {secs:.1} s", res.tasks.len());
}

#[test]
fn cancel_and_failed_submission_roll_back() {
    let Some(runs) = runs() else { return };
    let _ = runs;
    // A submission whose sbatch fails halfway (an unknown partition for the second group)
    // cancels what it had submitted and says so.
    let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("slurm-it").join("rollback");
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).expect("mkdir");
    std::fs::write(
        base.join("r.bps"),
        r#"bps 1
site here { backend = slurm, shared_fs = true, partition = "debug" }
dimension n = 0..3
pipeline p {
  step a over (n) { outputs = [x], run = "sleep 30; true {outputs}" }
  step b over (n) { inputs = [x], outputs = [y], run = "true {outputs}", partition = "no_such_partition" }
}
campaign "rollback" { use p, coverage = n, site = here, memory = 64MiB, retries = 0 }
"#,
    )
    .expect("write");
    let out = base.join("submit");
    let st = Command::new(env!("CARGO_BIN_EXE_bpsc"))
        .arg("compile")
        .arg(base.join("r.bps"))
        .args(["--backend", "slurm", "-o"])
        .arg(&out)
        .status()
        .expect("bpsc");
    assert!(st.success());
    let o = Command::new(out.join("slurm/submit.sh")).env("BPSC", env!("CARGO_BIN_EXE_bpsc")).output().expect("submit.sh");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "submit.sh must fail: {err}");
    assert!(err.contains("ERROR") && err.contains("cancelling the 1 Slurm jobs") && err.contains("NOT submitted"), "{err}");
    assert!(!out.join("slurm/jobids").exists() && out.join("slurm/jobids.cancelled").exists());
    let first = std::fs::read_to_string(out.join("slurm/jobids.cancelled")).expect("ids");
    let id = first.split_whitespace().next().expect("id").to_string();
    std::thread::sleep(Duration::from_secs(1));
    let (_, q, _) = sh("squeue", &["-h", "-j", &id, "-o", "%T"]);
    assert!(q.trim().is_empty() || q.contains("CANCELLED") || q.contains("COMPLETING"), "{id} still queued: {q}");
    // cancel.sh on a healthy submission: everything leaves the queue.
    std::fs::remove_file(out.join("slurm/jobids.cancelled")).expect("rm");
    let st = Command::new(env!("CARGO_BIN_EXE_bpsc"))
        .arg("compile")
        .arg(base.join("r.bps"))
        .args(["--backend", "slurm", "--force", "--set", "partition=\"debug\"", "-o"])
        .arg(&out)
        .status()
        .expect("bpsc");
    assert!(st.success());
    let o = Command::new(out.join("slurm/submit.sh")).env("BPSC", env!("CARGO_BIN_EXE_bpsc")).output().expect("submit.sh");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let again = Command::new(out.join("slurm/submit.sh")).env("BPSC", env!("CARGO_BIN_EXE_bpsc")).output().expect("submit.sh");
    assert!(!again.status.success() && String::from_utf8_lossy(&again.stderr).contains("already submitted"));
    let c = Command::new(out.join("slurm/cancel.sh")).output().expect("cancel.sh");
    assert!(c.status.success(), "{}", String::from_utf8_lossy(&c.stderr));
    let ids: Vec<String> = std::fs::read_to_string(out.join("slurm/jobids"))
        .expect("ids")
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, q, _) = sh("squeue", &["-h", "-j", &ids.join(","), "-t", "PENDING,RUNNING", "-o", "%i"]);
        if q.trim().is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "still queued after cancel.sh: {q}");
        std::thread::sleep(Duration::from_millis(300));
    }
}
