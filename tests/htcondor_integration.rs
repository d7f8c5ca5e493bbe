//! The HTCondor backend on a real single-node HTCondor 23.9 pool (DAGMan, schedd, startd).
//!
//! Each example is compiled with `--backend htcondor`, submitted with `condor_submit_dag`, and
//! waited for until the DAGMan job has left the queue; then the provenance records, DAGMan's
//! own log and the job ads in `condor_history` are checked: every job completed, every child
//! started after each of its parents ended, the outputs exist; an injected failure gives the
//! expected failed and never-run nodes under `on_failure = continue` (and `abort`, see the
//! known defects below); a retry grows `request_memory`; hostile data ID values neither escape
//! the submit directory nor execute; `bpsc status` agrees with the records; a rescue DAG and
//! `bpsc restart` finish a failed campaign without running a succeeded quantum again; host
//! avoidance reaches the job's requirements; the FINAL provenance node runs after failures.
//!
//! Enabled when `CI` is set or `BPSC_HTCONDOR_TESTS=1`: the first test brings the pool up
//! with backends/htcondor/pool-up.sh (root; builds the pool's Debian 13 root on first use,
//! about a minute), then submits every scenario at once so that they share the pool.  Without
//! either variable each test prints a `SKIPPED` line that shows in `cargo test`'s output.
//! Under CI a pool that does not come up fails every test.  For development,
//! `BPSC_HTCONDOR_SCENARIOS=drp,hostile` submits only the named scenarios (the tests of the
//! others then fail).
//!
//! Submit directories live under the pool's bound work directory ($BPSC_CONDOR_WORK, default
//! /var/lib/bpsc-htcondor/work), never under /tmp (DAGMan's strict mode aborts a DAG whose
//! node log is there), and are owned by the pool's job user `bpsc` (HTCondor runs no job of
//! root's).
//!
//! ## Environment
//!
//! Jobs see only what bpsc gives them: the campaign's `env { }` and the `pass_env` variables
//! of the shell that compiled it, captured then.  The examples pass `BPSC_EXAMPLE_DIR` (and
//! `BPSC_TRANSFER_TOOL` where they copy from s3:// or root://); the harness compiles every
//! scenario with those set, and adds its own knobs (`FAKE_TASK_*`, the stand-in transfer
//! tool's log, `FAKE_NOTIFY_LOG`) with `--set pass_env=[...]`, the way an operator adds a
//! variable.  Nothing is appended to the generated files and DAGMan gets no `-include_env`:
//! `condor_submit_dag` runs with a canary variable that no job may see.  Only the
//! `drp_as_compiled` scenario adds nothing at all.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{assert_no, copy_example, read_results, repo, secs_of, sh, write_exec, Results};
use serde_json::Value;

const OPT_IN: &str = "BPSC_HTCONDOR_TESTS";
fn enabled() -> bool {
    common::engine_tests_enabled(OPT_IN)
}

fn skip_not_enabled(test: &str) {
    common::skipped(
        test,
        "the HTCondor integration tests need a local HTCondor pool; set BPSC_HTCONDOR_TESTS=1 (as root) to bring one up with \
         backends/htcondor/pool-up.sh and run them (CI runs them always)",
    );
}

fn work_dir() -> PathBuf {
    std::env::var_os("BPSC_CONDOR_WORK").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("BPSC_CONDOR_HOME").unwrap_or_else(|| "/var/lib/bpsc-htcondor".into())).join("work")
    })
}

fn pool_root() -> PathBuf {
    std::env::var_os("BPSC_CONDOR_ROOT").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("BPSC_CONDOR_HOME").unwrap_or_else(|| "/var/lib/bpsc-htcondor".into())).join("root")
    })
}

fn job_user() -> String {
    std::env::var("BPSC_CONDOR_USER").unwrap_or_else(|_| "bpsc".into())
}

fn hostname() -> String {
    sh("hostname", &["-s"]).1.trim().to_string()
}

// ------------------------------------------------------------------ scenarios

struct Scenario {
    name: &'static str,
    /// examples/<dir>; "" for a campaign the test writes (`write`).
    example: &'static str,
    main: &'static str,
    sets: Vec<String>,
    /// Variables the payloads must see, set when compiling and passed with pass_env.
    env: Vec<(&'static str, String)>,
    /// Writes the campaign's source for `example == ""`: (src dir, scenario root).
    write: Option<fn(&Path, &Path)>,
    /// Add the harness's knobs with `--set pass_env=[...]` (false: the example as it is).
    knobs: bool,
}

impl Scenario {
    fn example(name: &'static str, example: &'static str, main: &'static str, sets: Vec<String>) -> Self {
        Scenario { name, example, main, sets, env: vec![], write: None, knobs: true }
    }
    fn written(name: &'static str, main: &'static str, write: fn(&Path, &Path)) -> Self {
        Scenario { write: Some(write), ..Scenario::example(name, "", main, vec![]) }
    }
    fn env(mut self, k: &'static str, v: &str) -> Self {
        self.env.push((k, v.to_string()));
        self
    }
}

fn base_sets() -> Vec<String> {
    vec!["avoid_hosts=[\"bpsc-ghost\"]".into(), "memory=100MiB".into(), "software=setup(\"export BPSC_TEST_SETUP=ok\")".into()]
}

fn scenarios() -> Vec<Scenario> {
    let host = hostname();
    vec![
        // One measure quantum fails on its first attempt only: DAGMan retries it, with the same
        // memory (the failure is not about memory; memory_growth_on = oom by default).
        Scenario::example("drp", "drp", "drp.bps", base_sets())
            .env("FAKE_TASK_FAIL_MEASURE", "tract=9813,patch=37,band=g")
            .env("FAKE_TASK_FAIL_ATTEMPTS_MEASURE", "1"),
        Scenario::example(
            "nightly_calib",
            "nightly_calib",
            "nightly_calib.bps",
            [base_sets(), vec![format!("hosts=[\"{host}\"]")]].concat(),
        ),
        // Its container(...) software needs a container runtime on the execute point (this
        // pool has none, and images cannot be pulled here): run with a setup(...) instead.
        Scenario::example("afterburner", "afterburner", "afterburner.bps", base_sets()),
        Scenario::example("special_programs", "special_programs", "special_programs.bps", base_sets()),
        Scenario::example("drp_continue", "drp", "drp.bps", [base_sets(), vec!["measure.on_failure=continue".into()]].concat())
            .env("FAKE_TASK_FAIL_MEASURE", "tract=9813,patch=37,band=g"),
        Scenario::example(
            "drp_abort",
            "drp",
            "drp.bps",
            [base_sets(), vec!["calibrate.on_failure=abort".into(), "retries=0".into()]].concat(),
        )
        .env("FAKE_TASK_FAIL_CALIBRATE", "visit=30404,detector=3"),
        // The example as bpsc writes it: BPSC_EXAMPLE_DIR set in the compiling shell, no knob.
        Scenario { knobs: false, ..Scenario::example("drp_as_compiled", "drp", "drp.bps", base_sets()) },
        Scenario::written("hostile", "hostile.bps", write_hostile),
        // A small campaign with a failure on every attempt, finished later by a rescue DAG.
        Scenario::written("rescue_shared", "mini.bps", write_mini_shared).env("FAKE_TASK_FAIL_CALIBRATE", "visit=2,detector=1"),
        Scenario::written("rescue_transfer", "mini.bps", write_mini_transfer).env("FAKE_TASK_FAIL_CALIBRATE", "visit=2,detector=1"),
        // This machine in avoid_hosts: the job must never match.
        Scenario::written("avoid_self", "avoid.bps", write_avoid_self),
        // Payloads that use more memory than they ask for, on a pool that enforces memory.
        Scenario::written("memory", "memory.bps", write_memory),
        // Exactly the campaign's environment reaches the jobs, in both file modes.
        // (No harness knob: the campaign passes PASSED_VAR itself.)
        Scenario { knobs: false, ..Scenario::written("environment", "env.bps", write_env) }.env("PASSED_VAR", "compiled: it's \"q\" $HOME"),
        // The user's final job after a success, a failure (continue) and an abort.
        Scenario::written("final_ok", "final.bps", |s, r| write_final(s, r, "continue")),
        Scenario::written("final_failure", "final.bps", |s, r| write_final(s, r, "continue")).env("FAKE_TASK_FAIL_WORK", "n=1"),
        Scenario::written("final_abort", "final.bps", |s, r| write_final(s, r, "abort")).env("FAKE_TASK_FAIL_WORK", "n=1"),
    ]
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
# Hostile data ID values (data/targets.csv), run for real on HTCondor; max_running throttles
# each step through a DAGMan category.
site local {
  backend   = htcondor
  shared_fs = true
  scratch   = "@ROOT@/scratch/{campaign}"
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
    run     = "printf '%s\\n' {target} \"{target}\" '{target}' \"$HOSTILE_ENV\" > \"$BPSC_SCRATCH/echo-$BPSC_JOB.txt\" && $BPSC_EXAMPLE_DIR/bin/fake_task.sh --task={step} --data-id={data_id} -- {outputs}"
  }
}
campaign "hostile" {
  use p
  coverage  = target
  site      = local
  memory    = 64MiB
  retries   = 1
  max_running = 2
  env { HOSTILE_ENV = "it's $(touch @ROOT@/CANARY4) `touch @ROOT@/CANARY5` \"q\"" }
}
"#;
    std::fs::write(src.join("hostile.bps"), bps.replace("@ROOT@", &root.to_string_lossy())).expect("bps");
}

/// 4 visits x 3 detectors calibrated, one coadd per visit, raw inputs fetched in the job.
fn write_mini(src: &Path, root: &Path, shared_fs: bool) {
    std::fs::create_dir_all(root.join("raw")).expect("mkdir");
    for v in 1..5 {
        for d in 0..3 {
            std::fs::write(root.join(format!("raw/{v}-{d}.txt")), format!("raw {v} {d}\n")).expect("raw");
        }
    }
    let d = root.display();
    let text = format!(
        r#"bps 1.1
site local {{
  backend   = htcondor
  shared_fs = {shared_fs}
  scratch   = "{d}/scratch"
}}
dimension visit    = 1..5
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
  coverage      = visit * detector
  site          = local
  memory        = 64MiB
  retries       = 1
  memory_growth = 1.5
}}
"#
    );
    std::fs::write(src.join("mini.bps"), text).expect("bps");
}

fn write_mini_shared(src: &Path, root: &Path) {
    write_mini(src, root, true)
}

fn write_mini_transfer(src: &Path, root: &Path) {
    write_mini(src, root, false)
}

fn write_avoid_self(src: &Path, root: &Path) {
    let text = format!(
        r#"bps 1.1
site local {{
  backend     = htcondor
  shared_fs   = true
  scratch     = "{}/scratch"
  avoid_hosts = ["{}"]
}}
dimension n = 0..1
pipeline p {{
  step only over (n) {{ outputs = [x], run = "true {{outputs}}" }}
}}
campaign avoid {{ use p, coverage = n, site = local, memory = 64MiB, retries = 0 }}
"#,
        root.display(),
        hostname()
    );
    std::fs::write(src.join("avoid.bps"), text).expect("bps");
}

/// Steps whose payloads use more memory than they ask for (the pool holds them, as a
/// production pool's memory limit would), and steps that fail for other reasons.
fn write_memory(src: &Path, root: &Path) {
    let hog = |mib: u32| {
        format!("python3 -c \\\"import time; b = bytearray({mib} << 20); b[::4096] = bytes(len(b[::4096])); time.sleep(30)\\\" && touch {{outputs}}")
    };
    let text = format!(
        r#"bps 1.1
site local {{
  backend   = htcondor
  shared_fs = true
  scratch   = "{root}/scratch"
}}
dimension n = 0..1
pipeline p {{
  # 300 MiB: held at 100 and 200 MiB, runs at 400 (memory_growth_on = oom: in place).
  # (cpus = 2 and 3: a slot another job leaves claimed is never reused for these two, so the
  # slot's memory is exactly the request, rounded up to 128 MiB.)
  step hog over (n) {{ outputs = [h], cpus = 2, run = "{hog300}" }}
  # The same with max_memory = 300MiB: 100, 200, then the cap, 300 (a 384 MiB slot, not 512).
  step capped over (n) {{ outputs = [c], cpus = 3, max_memory = 300MiB, run = "{hog300}" }}
  # Fails once for another reason: DAGMan retries it with the same memory.
  step flaky over (n) {{ outputs = [f], run = "[ {{attempt}} -gt 1 ] || exit 3; touch {{outputs}}" }}
  # The same under memory_growth_on = any: the retry asks for twice as much.
  step any over (n) {{ outputs = [a], memory_growth_on = any, run = "[ {{attempt}} -gt 1 ] || exit 3; touch {{outputs}}" }}
}}
campaign memory {{
  use p
  coverage      = n
  site          = local
  memory        = 100MiB
  retries       = 3
  memory_growth = 2.0
}}
"#,
        root = root.display(),
        hog300 = hog(300),
    );
    std::fs::write(src.join("memory.bps"), text).expect("bps");
}

/// One step on a shared filesystem and one in HTCondor's sandbox, each writing its whole
/// environment to a file.
fn write_env(src: &Path, root: &Path) {
    let text = format!(
        r#"bps 1.1
site shared {{
  backend   = htcondor
  shared_fs = true
  scratch   = "{root}/scratch"
}}
site sandbox {{
  backend   = htcondor
  shared_fs = false
  scratch   = "{root}/scratch"
}}
dimension n = 0..1
pipeline p {{
  step here over (n) {{ site = shared, outputs = [a], run = "env > \"$BPSC_SCRATCH/env-here.txt\" && touch {{outputs}}" }}
  step there over (n) {{ site = sandbox, outputs = [b], run = "env > \"$BPSC_SCRATCH/env-there.txt\" && touch {{outputs}}" }}
}}
campaign environment {{
  use p
  coverage = n
  memory   = 64MiB
  retries  = 0
  pass_env = ["PASSED_VAR"]
  env {{ SET_VAR = "set in the campaign" }}
}}
"#,
        root = root.display()
    );
    std::fs::write(src.join("env.bps"), text).expect("bps");
}

/// Three quanta and a barrier step, with the user's final job; `on_failure` of the quanta.
fn write_final(src: &Path, root: &Path, on_failure: &str) {
    let text = format!(
        r#"bps 1.1
site local {{
  backend   = htcondor
  shared_fs = true
  scratch   = "{root}/scratch"
}}
dimension n = 0..3
pipeline p {{
  step work over (n) {{
    outputs    = [w]
    on_failure = {on_failure}
    run        = "$BPSC_EXAMPLE_DIR/bin/fake_task.sh --task={{step}} --data-id={{data_id}} --attempt={{attempt}} -- {{outputs}}"
  }}
  step total after work all {{ run = "$BPSC_EXAMPLE_DIR/bin/fake_task.sh --task={{step}} --attempt={{attempt}}" }}
}}
campaign final {{
  use p
  coverage = n
  site     = local
  memory   = 64MiB
  retries  = 0
  pass_env = ["FINAL_LOG"]
  final report {{ run = "echo \"{{campaign}} $BPSC_CAMPAIGN_OUTCOME\" >> \"$FINAL_LOG\"", when = always }}
}}
"#,
        root = root.display()
    );
    std::fs::write(src.join("final.bps"), text).expect("bps");
}

// ------------------------------------------------------------------ preparing and submitting

struct Run {
    root: PathBuf,
    submit: PathBuf,
    /// The DAGMan job's cluster id.
    dagman: Option<u64>,
    submitted: Instant,
    /// Compile or submit failure.
    error: Option<String>,
}

/// The variables every payload of a scenario needs: set in the compiling shell (the examples
/// pass BPSC_EXAMPLE_DIR and BPSC_TRANSFER_TOOL themselves; the rest are the harness's knobs,
/// passed with `--set pass_env=[...]`).
fn payload_env(extra: &[(&'static str, String)], root: &Path) -> Vec<(&'static str, String)> {
    let mut v = vec![
        ("BPSC_EXAMPLE_DIR", repo().join("examples").to_string_lossy().into_owned()),
        ("BPSC_TRANSFER_TOOL", root.join("transfer.sh").to_string_lossy().into_owned()),
        ("FAKE_TASK_SLEEP", "0.05".into()),
        ("FAKE_TASK_LOG", root.join("fake_task.log").to_string_lossy().into_owned()),
        ("FAKE_NOTIFY_LOG", root.join("notify.log").to_string_lossy().into_owned()),
        ("FAKE_TRANSFER_LOG", root.join("transfer.log").to_string_lossy().into_owned()),
        ("FINAL_LOG", root.join("final.log").to_string_lossy().into_owned()),
    ];
    v.extend(extra.iter().cloned());
    v
}

/// `pass_env=[...]` naming every variable of `env`: what the harness adds to a campaign.
fn knobs_set(env: &[(&str, String)]) -> String {
    format!("pass_env=[{}]", env.iter().map(|(k, _)| format!("\"{k}\"")).collect::<Vec<_>>().join(", "))
}

/// A variable in condor_submit_dag's environment that no job and no script may see.
const CANARY: (&str, &str) = ("BPSC_IT_CANARY", "leaked from the submitting shell");

fn chown_to_job_user(p: &Path) -> Result<(), String> {
    let (ok, _, err) = sh("chown", &["-R", &format!("{}:", job_user()), &p.to_string_lossy()]);
    if ok {
        Ok(())
    } else {
        Err(format!("chown -R {}: {}: {err}", job_user(), p.display()))
    }
}

/// condor_submit_dag in the submit directory; the DAGMan job's cluster id.  Its environment
/// holds the payload variables too (with other values for PASSED_VAR) and a canary: jobs
/// must see the values captured at compile time and nothing else.
fn submit_dag(submit: &Path, env: &[(&str, String)]) -> Result<u64, String> {
    let mut cmd = Command::new("condor_submit_dag");
    cmd.current_dir(submit).arg("workflow.dag");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.env(CANARY.0, CANARY.1).env("PASSED_VAR", "from condor_submit_dag's shell").env("LEAK_VAR", "from condor_submit_dag's shell");
    let o = cmd.output().map_err(|e| format!("cannot run condor_submit_dag: {e}"))?;
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    if !o.status.success() {
        return Err(format!("condor_submit_dag failed: {out}{}", String::from_utf8_lossy(&o.stderr)));
    }
    out.split("submitted to cluster ")
        .nth(1)
        .and_then(|r| r.split('.').next())
        .and_then(|n| n.trim().parse().ok())
        .ok_or_else(|| format!("no cluster id in condor_submit_dag's output: {out}"))
}

fn compile(src: &Path, main: &str, sets: &[String], out: &Path, env: &[(&str, String)]) -> Result<(), String> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bpsc"));
    cmd.arg("compile").arg(src.join(main)).args(["--backend", "htcondor", "-o"]).arg(out);
    for set in sets {
        cmd.arg("--set").arg(set);
    }
    cmd.env("BPSC_EXE", bpsc_for_jobs()).env("LEAK_VAR", "from the compiling shell, never passed").env(CANARY.0, CANARY.1);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let o = cmd.output().map_err(|e| format!("cannot run bpsc: {e}"))?;
    if o.status.success() {
        Ok(())
    } else {
        Err(format!("compile failed: {}", String::from_utf8_lossy(&o.stderr)))
    }
}

/// The bpsc executable the jobs run: this build's, when the pool sees it at the same path
/// (the folder holding the checkout is bound), else a copy in the work directory.
fn bpsc_for_jobs() -> PathBuf {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| {
        use std::os::unix::fs::MetadataExt;
        let exe = PathBuf::from(env!("CARGO_BIN_EXE_bpsc"));
        let inside = pool_root().join(exe.strip_prefix("/").unwrap_or(&exe));
        let same = match (std::fs::metadata(&exe), std::fs::metadata(&inside)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        };
        if same {
            return exe;
        }
        let copy = base_dir().join("bin/bpsc");
        std::fs::create_dir_all(copy.parent().expect("parent")).expect("mkdir");
        std::fs::copy(&exe, &copy).expect("copy bpsc into the work directory");
        copy
    })
    .clone()
}

/// This test process's directory under the work directory.
fn base_dir() -> PathBuf {
    work_dir().join(format!("htcondor-it-{}", std::process::id()))
}

/// Remove what earlier test processes left (their DAGs first).
fn clean_old_runs() {
    for e in std::fs::read_dir(work_dir()).into_iter().flatten().flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = n.strip_prefix("htcondor-it-") else { continue };
        if Path::new("/proc").join(pid).exists() {
            continue;
        }
        let p = e.path();
        let _ = sh("condor_rm", &["-constraint", &format!("JobUniverse == 7 && regexp(\"^{}/\", Iwd)", p.display())]);
        let _ = std::fs::remove_dir_all(&p);
    }
}

fn prepare(s: &Scenario, base: &Path) -> Run {
    let root = base.join(s.name);
    let submit = root.join("submit");
    let mut run = Run { root: root.clone(), submit: submit.clone(), dagman: None, submitted: Instant::now(), error: None };
    let r = (|| -> Result<u64, String> {
        std::fs::create_dir_all(&root).map_err(|e| e.to_string())?;
        let src = root.join("src");
        match s.write {
            Some(w) => {
                std::fs::create_dir_all(&src).map_err(|e| e.to_string())?;
                w(&src, &root)
            }
            None => copy_example(&repo().join("examples").join(s.example), &src, &root.join("fs")),
        }
        let env = payload_env(&s.env, &root);
        let mut sets = s.sets.clone();
        if s.knobs {
            sets.push(knobs_set(&env));
        }
        compile(&src, s.main, &sets, &submit, &env)?;
        write_exec(&root.join("transfer.sh"), common::TRANSFER_TOOL);
        chown_to_job_user(&root)?;
        run.submitted = Instant::now();
        submit_dag(&submit, &env)
    })();
    match r {
        Ok(id) => run.dagman = Some(id),
        Err(e) => run.error = Some(e),
    }
    run
}

static RUNS: OnceLock<Result<HashMap<&'static str, Run>, String>> = OnceLock::new();

/// Bring the pool up and submit every scenario, once; `None` when the tests are not enabled.
fn runs(test: &str) -> Option<&'static HashMap<&'static str, Run>> {
    if !enabled() {
        skip_not_enabled(test);
        return None;
    }
    let r = RUNS.get_or_init(|| {
        let t = Instant::now();
        let up = Command::new(repo().join("backends/htcondor/pool-up.sh")).output().map_err(|e| format!("pool-up.sh: {e}"))?;
        if !up.status.success() {
            return Err(format!(
                "backends/htcondor/pool-up.sh failed:\n{}{}",
                String::from_utf8_lossy(&up.stdout),
                String::from_utf8_lossy(&up.stderr)
            ));
        }
        eprintln!("[htcondor-it] pool up in {:.1} s", t.elapsed().as_secs_f64());
        clean_old_runs();
        let base = base_dir();
        let mut m = HashMap::new();
        // BPSC_HTCONDOR_SCENARIOS=a,b (development): submit only these scenarios.
        let only = std::env::var("BPSC_HTCONDOR_SCENARIOS").ok();
        for s in scenarios() {
            if only.as_deref().is_some_and(|o| !o.split(',').any(|n| n == s.name)) {
                continue;
            }
            m.insert(s.name, prepare(&s, &base));
        }
        Ok(m)
    });
    match r {
        Ok(m) => Some(m),
        Err(e) => panic!("{e}"),
    }
}

fn dagman_in_queue(id: u64) -> Result<bool, String> {
    let (ok, out, err) = sh("condor_q", &[&id.to_string(), "-af", "ClusterId"]);
    if !ok {
        return Err(err);
    }
    Ok(!out.trim().is_empty())
}

/// Wait until the DAGMan job has left the queue (DAGMan restarts itself after a crash, so
/// its log saying it exited is not enough); remove it after `limit`.
fn wait_dag(name: &str, run: &Run, limit: Duration) -> f64 {
    assert!(run.error.is_none(), "{name}: {}", run.error.as_deref().unwrap_or(""));
    let id = run.dagman.expect("dagman id");
    let deadline = Instant::now() + limit;
    loop {
        match dagman_in_queue(id) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => eprintln!("[htcondor-it] condor_q: {e}"),
        }
        // DAGMan restarts itself after a crash and may crash again in recovery: stop that.
        let crashes = dagman_out(&run.submit).matches("Assertion ERROR").count();
        if crashes >= 2 {
            let _ = sh("condor_rm", &[&id.to_string()]);
            let first = dagman_out(&run.submit).lines().find(|l| l.contains("Assertion ERROR")).unwrap_or_default().to_string();
            panic!("{name}: DAGMan crashed {crashes} times (restarting in recovery mode each time); removed job {id}: {first}");
        }
        if Instant::now() > deadline {
            let _ = sh("condor_rm", &[&id.to_string()]);
            let tail: String =
                dagman_out(&run.submit).lines().rev().take(15).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
            panic!("{name}: DAGMan job {id} still in the queue after {} s (removed it); dagman.out ends:\n{tail}", limit.as_secs());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let secs = run.submitted.elapsed().as_secs_f64();
    eprintln!("[htcondor-it] {name}: DAGMan job {id} left the queue {secs:.1} s after submission");
    secs
}

fn dagman_out(submit: &Path) -> String {
    std::fs::read_to_string(submit.join("workflow.dag.dagman.out")).unwrap_or_default()
}

/// The exit status DAGMan reported last ("EXITING WITH STATUS N").
fn dag_exit(submit: &Path) -> Option<i64> {
    dagman_out(submit).lines().rev().find_map(|l| l.split("EXITING WITH STATUS ").nth(1)).and_then(|s| s.trim().parse().ok())
}

/// Job ads of the DAG's node jobs in condor_history: (ClusterId, node, ExitCode, RequestMemory).
fn history(dagman: u64) -> Vec<(u64, String, String, u64)> {
    // The schedd writes the history file as jobs leave the queue; read until stable.
    let mut rows = Vec::new();
    for _ in 0..20 {
        let (_, out, _) = sh(
            "condor_history",
            &["-constraint", &format!("DAGManJobId == {dagman}"), "-af", "ClusterId", "DAGNodeName", "ExitCode", "RequestMemory"],
        );
        let now: Vec<(u64, String, String, u64)> = out
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.len() == 4).then(|| (f[0].parse().unwrap_or(0), f[1].to_string(), f[2].to_string(), f[3].parse().unwrap_or(0)))
            })
            .collect();
        if !now.is_empty() && now.len() == rows.len() {
            break;
        }
        rows = now;
        std::thread::sleep(Duration::from_millis(500));
    }
    rows.sort();
    rows
}

fn assert_all_completed(name: &str, run: &Run, res: &Results) {
    let not_ok: Vec<String> = res
        .runnable()
        .filter(|id| !res.ok(id))
        .map(|id| match res.last(id) {
            Some(r) => format!("{id} (attempt {}, exit code {})", r["attempt"], r["exit_code"]),
            None => format!("{id} (no record: never ran)"),
        })
        .collect();
    assert_no(not_ok, &format!("{name}: jobs without a successful record"));
    assert_eq!(dag_exit(&run.submit), Some(0), "{name}: DAGMan's exit status");
    let hist = history(run.dagman.expect("id"));
    assert!(!hist.is_empty(), "{name}: condor_history shows no node job");
    // Every node's last job exited 0 (earlier ones may be retried failures).
    let mut last: BTreeMap<&str, &str> = BTreeMap::new();
    for h in &hist {
        last.insert(&h.1, &h.2);
    }
    assert_no(last.iter().filter(|(_, c)| **c != "0").map(|(n, c)| format!("{n}: ExitCode {c}")).collect(), &format!("{name}: job ads"));
    assert_no(res.order_problems(), &format!("{name}: dependency order"));
    assert_no(res.missing_outputs(), &format!("{name}: outputs"));
}

fn run_scenario(test: &str, name: &str) -> Option<(&'static Run, Results, f64)> {
    let runs = runs(test)?;
    let run = runs.get(name).unwrap_or_else(|| panic!("scenario {name} was not submitted (BPSC_HTCONDOR_SCENARIOS?)"));
    // Every scenario shares the pool's 16 slots (some 2700 jobs in all, about 21 minutes on
    // the 2-core test machine, mostly for special_programs' 1134): generous limits.
    let secs = wait_dag(name, run, Duration::from_secs(2400));
    let res = read_results(&run.submit);
    let meta: Value = serde_json::from_str(&std::fs::read_to_string(run.submit.join("bpsc.json")).expect("bpsc.json")).expect("json");
    assert_eq!(Some(res.tasks.len() as u64), meta["jobs"].as_u64());
    assert!(run.submit.join("provenance/campaign.jsonl").is_file(), "{name}: the FINAL provenance node did not gather the records");
    Some((run, res, secs))
}

/// Run pool-up.sh with `args`; panic with its output when it fails.
fn pool_up(args: &[&str]) {
    let out = Command::new(repo().join("backends/htcondor/pool-up.sh")).args(args).output().expect("run pool-up.sh");
    assert!(
        out.status.success(),
        "pool-up.sh {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// CI clones the repository to the same path for every run and deletes it afterwards.  A bind
/// mount keeps showing the directory it was made from, so after the first run the pool's
/// root showed a deleted checkout: every example payload exited 127 ("No such file or
/// directory") on the next run.  pool-up.sh must notice and bind the new directory.
#[test]
fn pool_up_binds_a_directory_again_after_it_was_re_created() {
    if !enabled() {
        skip_not_enabled("pool_up_binds_a_directory_again_after_it_was_re_created");
        return;
    }
    // Not under the work directory (that bind would cover it) nor /tmp (refused).
    let dir = PathBuf::from(format!("/var/tmp/bpsc-rebind-{}", std::process::id()));
    let in_root = pool_root().join(dir.strip_prefix("/").expect("absolute"));
    let d = dir.to_string_lossy().into_owned();
    struct Cleanup(PathBuf);
    impl Drop for Cleanup {
        // On a failure too: remove the directory and let pool-up.sh drop its bind.
        fn drop(&mut self) {
            if self.0.exists() {
                let _ = std::fs::remove_dir_all(&self.0);
                let _ = Command::new(repo().join("backends/htcondor/pool-up.sh")).output();
            }
        }
    }
    let _cleanup = Cleanup(dir.clone());
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("marker"), "first").expect("write");
    pool_up(&[&d]);
    assert_eq!(std::fs::read_to_string(in_root.join("marker")).ok().as_deref(), Some("first"), "not bound at first");

    // Deleted and re-created, as a CI checkout is between runs.
    std::fs::remove_dir_all(&dir).expect("rm");
    std::fs::create_dir_all(&dir).expect("mkdir again");
    std::fs::write(dir.join("marker"), "second").expect("write");
    assert!(
        std::fs::read_to_string(in_root.join("marker")).is_err(),
        "the root sees the re-created directory before pool-up.sh ran again: this test no longer shows the hazard"
    );
    let (_, status, _) = sh(&repo().join("backends/htcondor/pool-up.sh").to_string_lossy(), &["--status"]);
    assert!(status.contains(&format!("bound: {d} STALE")), "--status does not report the stale bind:\n{status}");
    pool_up(&[&d]);
    assert_eq!(
        std::fs::read_to_string(in_root.join("marker")).ok().as_deref(),
        Some("second"),
        "after pool-up.sh the root still shows the deleted directory"
    );

    // Gone from the host: the next pool-up.sh unbinds it and forgets it.
    std::fs::remove_dir_all(&dir).expect("rm");
    pool_up(&[]);
    let (mounted, _, _) = sh("mountpoint", &["-q", &in_root.to_string_lossy()]);
    assert!(!mounted, "{} is still a mount point after its directory was deleted", in_root.display());
    let state = std::env::var_os("BPSC_CONDOR_HOME").map(PathBuf::from).unwrap_or_else(|| "/var/lib/bpsc-htcondor".into());
    let binds = std::fs::read_to_string(state.join("state/binds")).unwrap_or_default();
    assert!(!binds.lines().any(|l| l == d), "{d} is still in the bind list:\n{binds}");
}

#[test]
fn time_parsing() {
    assert_eq!(secs_of("1970-01-01T00:00:00.000Z"), 0.0);
    assert_eq!(secs_of("2023-11-14T22:13:20.123Z"), 1_700_000_000.123);
}

// ------------------------------------------------------------------ the tests

#[test]
fn drp_runs_and_retries_with_the_same_memory() {
    let Some((run, res, secs)) = run_scenario("drp_runs_and_retries_with_the_same_memory", "drp") else { return };
    assert_all_completed("drp", run, &res);
    // measure retries = 2: attempt 1 failed (exit 1, not a memory failure), attempt 2 ran.
    let id = "measure_9813_37_g";
    assert_eq!(res.exit_codes(id), vec![1, 0], "{id}: exit codes by attempt");
    assert_eq!(res.attempts(id), vec![1, 2], "{id}: attempt numbers");
    // Each DAGMan retry is a new job; memory_growth_on = oom: the same 100 MiB both times.
    let mem: Vec<(String, u64)> = history(run.dagman.unwrap()).into_iter().filter(|h| h.1 == id).map(|h| (h.2, h.3)).collect();
    assert_eq!(mem, vec![("1".to_string(), 100), ("0".to_string(), 100)], "{id}: (ExitCode, RequestMemory) of each job");
    // The dagman.out of the run says it retried the node.
    assert!(dagman_out(&run.submit).contains(&format!("Retrying node {id} (retry #1 of 2)")), "no retry in dagman.out");
    // Host avoidance reached every node job's requirements (the ghost host never exists).
    let (_, reqs, _) = sh(
        "condor_history",
        &["-constraint", &format!("DAGManJobId == {} && JobUniverse == 5", run.dagman.unwrap()), "-af:r", "Requirements"],
    );
    assert!(
        !reqs.is_empty() && reqs.lines().all(|l| l.contains("\"bpsc-ghost\"")),
        "avoid_hosts missing from some job's Requirements:\n{reqs}"
    );
    let notes = std::fs::read_to_string(run.root.join("notify.log")).unwrap_or_default();
    assert!(notes.contains("\tdone\t"), "the FINAL node's POST script sends `done`: {notes}");
    eprintln!("[htcondor-it] drp: {} jobs in {secs:.1} s; {id} retried with the same request_memory", res.tasks.len());
}

/// Per node job (cluster id), in order: the memory of each start (the execute event's
/// `Memory = N`, the slot's MiB) and each hold's (code, subcode).
#[derive(Debug, Default, Clone, PartialEq)]
struct NodeJob {
    cluster: u64,
    starts: Vec<u64>,
    holds: Vec<(i64, i64)>,
}

fn node_jobs(submit: &Path) -> BTreeMap<String, Vec<NodeJob>> {
    let text = std::fs::read_to_string(submit.join("workflow.dag.nodes.log")).unwrap_or_default();
    let mut node_of: HashMap<u64, String> = HashMap::new();
    let mut out: BTreeMap<String, Vec<NodeJob>> = BTreeMap::new();
    let mut lines = text.lines();
    while let Some(l) = lines.next() {
        let Some((code, rest)) = l.split_once(" (") else { continue };
        let Some(cluster) = rest.split('.').next().and_then(|c| c.parse::<u64>().ok()) else { continue };
        let body: Vec<&str> = lines.by_ref().take_while(|b| *b != "...").collect();
        match code {
            "000" => {
                if let Some(n) = body.iter().find_map(|b| b.trim().strip_prefix("DAG Node:")) {
                    node_of.insert(cluster, n.trim().to_string());
                    out.entry(n.trim().to_string()).or_default().push(NodeJob { cluster, ..Default::default() });
                }
            }
            "001" | "012" => {
                let Some(n) = node_of.get(&cluster) else { continue };
                let Some(j) = out.get_mut(n).and_then(|v| v.iter_mut().find(|j| j.cluster == cluster)) else { continue };
                if code == "001" {
                    if let Some(m) = body.iter().find_map(|b| b.trim().strip_prefix("Memory = ")).and_then(|m| m.parse().ok()) {
                        j.starts.push(m);
                    }
                } else if let Some(c) = body.iter().find_map(|b| b.trim().strip_prefix("Code ")) {
                    let mut it = c.split_whitespace();
                    let code = it.next().and_then(|x| x.parse().ok()).unwrap_or(-1);
                    let sub = it.nth(1).and_then(|x| x.parse().ok()).unwrap_or(-1);
                    j.holds.push((code, sub));
                }
            }
            _ => {}
        }
    }
    out
}

/// memory_growth_on on a pool that enforces memory: a payload over its request is held by
/// the pool and released in place with twice the memory (at most max_memory); a failure for
/// another reason is retried by DAGMan with the same memory, or, with memory_growth_on = any,
/// with more.
#[test]
fn memory_grows_only_after_memory_holds() {
    let Some((run, res, secs)) = run_scenario("memory_grows_only_after_memory_holds", "memory") else { return };
    assert_all_completed("memory", run, &res);
    let jobs = node_jobs(&run.submit);
    let one = |n: &str| -> NodeJob {
        let v = &jobs[n];
        assert_eq!(v.len(), 1, "{n}: one HTCondor job, released in place (no DAGMan retry): {v:?}");
        v[0].clone()
    };
    // 300 MiB used: held in a 128 MiB slot (request 100), then 256 (200), runs in 512 (400).
    let hog = one("hog_0");
    assert_eq!(hog.starts, vec![128, 256, 512], "{hog:?}");
    assert_eq!(hog.holds, vec![(26, 34), (26, 34)], "memory holds by the pool's policy: {hog:?}");
    // max_memory = 300MiB: the third request is 300, a 384 MiB slot (uncapped: 400, 512).
    // (300 MiB of payload data is about 342 MB of process: it fits 384.)
    let capped = one("capped_0");
    assert_eq!(capped.starts, vec![128, 256, 384], "{capped:?}");
    // Not a memory failure: DAGMan's RETRY, the same request both times.
    let hist = history(run.dagman.expect("id"));
    let mem = |n: &str| hist.iter().filter(|h| h.1 == n).map(|h| (h.2.clone(), h.3)).collect::<Vec<_>>();
    assert_eq!(mem("flaky_0"), vec![("3".into(), 100), ("0".into(), 100)], "flaky: (ExitCode, RequestMemory) per job");
    assert_eq!(res.exit_codes("flaky_0"), vec![3, 0]);
    // memory_growth_on = any: the retry asks for memory_growth times more.
    assert_eq!(mem("any_0"), vec![("3".into(), 100), ("0".into(), 200)], "any: (ExitCode, RequestMemory) per job");
    assert!(dagman_out(&run.submit).contains("Retrying node flaky_0 (retry #1 of 3)"));
    assert!(!dagman_out(&run.submit).contains("Retrying node hog_0"), "a memory hold is not a DAGMan retry");
    eprintln!("[htcondor-it] memory: {secs:.1} s; hog {:?}, capped {:?}", hog.starts, capped.starts);
}

/// HTCondor's own variables in a job's environment (the starter's, not the campaign's).
fn htcondor_var(k: &str) -> bool {
    k.starts_with("_CONDOR_")
        || k.starts_with("_CHIRP")
        || k.ends_with("_NUM_THREADS")
        || [
            "BATCH_SYSTEM",
            "TMPDIR",
            "TEMP",
            "TMP",
            "APPTAINER_CACHEDIR",
            "SINGULARITY_CACHEDIR",
            "CUDA_VISIBLE_DEVICES",
            "GPU_DEVICE_ORDINAL",
            "NVIDIA_VISIBLE_DEVICES",
            "OMP_THREAD_LIMIT",
            "CUBACORES",
            "GOMAXPROCS",
            "PYTHON_CPU_COUNT",
            "ROOT_MAX_THREADS",
            "TF_LOOP_PARALLEL_ITERATIONS",
        ]
        .contains(&k)
}

/// A job sees exactly the campaign's environment: env { }, the pass_env variables with the
/// values they had when the campaign was compiled, bpsc's own variables and HTCondor's; no
/// other variable of the compiling shell or of condor_submit_dag's, in either file mode.
#[test]
fn jobs_see_exactly_the_campaign_environment() {
    let Some((run, res, _)) = run_scenario("jobs_see_exactly_the_campaign_environment", "environment") else { return };
    assert_all_completed("environment", run, &res);
    for f in ["env-here.txt", "env-there.txt"] {
        let text = std::fs::read_to_string(run.root.join("scratch").join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        let vars: BTreeMap<&str, &str> = text.lines().filter_map(|l| l.split_once('=')).collect();
        assert_eq!(vars.get("PASSED_VAR"), Some(&"compiled: it's \"q\" $HOME"), "{f}: the value captured at compile time");
        assert_eq!(vars.get("SET_VAR"), Some(&"set in the campaign"), "{f}");
        let bpsc: BTreeSet<&str> =
            ["BPSC_ATTEMPT", "BPSC_JOB", "BPSC_SUBMIT", "BPSC_SCRATCH", "BPSC_WORKDIR", "BPSC_SOFTWARE"].into_iter().collect();
        let others: Vec<&str> = vars
            .keys()
            .copied()
            .filter(|k| !["PASSED_VAR", "SET_VAR", "PWD", "SHLVL", "_", "OLDPWD"].contains(k) && !bpsc.contains(k) && !htcondor_var(k))
            .collect();
        assert_no(others.iter().map(|k| format!("{k}={}", vars[k])).collect(), &format!("{f}: variables the campaign did not give"));
        for k in ["LEAK_VAR", CANARY.0, "BPSC_EXAMPLE_DIR", "HOME", "PATH"] {
            assert!(!vars.contains_key(k), "{f}: {k} leaked");
        }
    }
}

/// The FINAL node runs after a success, a failure and an abort, with the final job in its
/// task line; the wrapper then runs the final job (`when = always`) with the outcome.
fn final_job(test: &str, name: &str, dag_exit_status: i64, outcome: &str) {
    let Some((run, res, _)) = run_scenario(test, name) else { return };
    assert!(res.ok("provenance"), "{name}: the FINAL provenance node ran");
    assert_eq!(dag_exit(&run.submit), Some(dag_exit_status), "{name}: DAGMan's exit status");
    let line = res.tasks.get("provenance").map(|t| t.to_string()).unwrap_or_default();
    assert!(line.contains("\"final_job\"") && line.contains("report"), "{name}: the provenance job's line carries the final job: {line}");
    let log = std::fs::read_to_string(run.root.join("final.log")).unwrap_or_default();
    assert_eq!(log.trim(), format!("final {outcome}"), "{name}: the final job ran once, after the records were gathered");
}

#[test]
fn final_job_after_success() {
    final_job("final_job_after_success", "final_ok", 0, "success");
}

#[test]
fn final_job_after_a_failure() {
    final_job("final_job_after_a_failure", "final_failure", 1, "failure");
}

#[test]
fn final_job_after_an_abort() {
    final_job("final_job_after_an_abort", "final_abort", 1, "failure");
}

#[test]
fn nightly_calib_runs_on_the_named_host() {
    let Some((run, res, secs)) = run_scenario("nightly_calib_runs_on_the_named_host", "nightly_calib") else { return };
    assert_all_completed("nightly_calib", run, &res);
    // in_job inputs from s3:// went through the transfer tool.
    let log = std::fs::read_to_string(run.root.join("transfer.log")).unwrap_or_default();
    assert!(log.lines().filter(|l| l.starts_with("s3://")).count() >= 198, "expected 90 + 108 fetches:\n{log}");
    // hosts = [this machine] is in the requirements, and the jobs ran there.
    let sub = std::fs::read_to_string(run.submit.join("htcondor/flat_isr.sub")).expect("flat_isr.sub");
    assert!(sub.contains(&format!("{{\"{}\"}}", hostname().to_lowercase())), "{sub}");
    let hosts: BTreeSet<String> = res.recs.values().flatten().map(|r| r["host"].as_str().unwrap_or("").to_string()).collect();
    assert_eq!(hosts, BTreeSet::from([sh("hostname", &[]).1.trim().to_string()]), "hosts in the records");
    eprintln!("[htcondor-it] nightly_calib: {} jobs in {secs:.1} s", res.tasks.len());
}

#[test]
fn afterburner_runs() {
    let Some((run, res, secs)) = run_scenario("afterburner_runs", "afterburner") else { return };
    assert_all_completed("afterburner", run, &res);
    // max_jobs = 10: a DAGMan category throttle.
    let dag = std::fs::read_to_string(run.submit.join("workflow.dag")).expect("dag");
    assert!(dag.lines().any(|l| l.starts_with("MAXJOBS ") && l.ends_with(" 10")), "no MAXJOBS 10 line");
    eprintln!("[htcondor-it] afterburner: {} jobs in {secs:.1} s", res.tasks.len());
}

#[test]
fn special_programs_runs_with_file_transfer() {
    let Some((run, res, secs)) = run_scenario("special_programs_runs_with_file_transfer", "special_programs") else { return };
    assert_all_completed("special_programs", run, &res);
    let log = std::fs::read_to_string(run.root.join("transfer.log")).unwrap_or_default();
    assert!(
        log.lines().filter(|l| l.starts_with("root://")).count() >= 213 + 9 + 36,
        "stage-in of raw, bias, flat: {} lines",
        log.lines().count()
    );
    // The IN2P3 groups (shared_fs = false) ran in HTCondor's sandbox and their records came
    // back through transfer_output_files = provenance, logs.
    let isr = std::fs::read_to_string(run.submit.join("htcondor/cluster-single_frame.sub")).expect("single_frame.sub");
    assert!(isr.contains("should_transfer_files    = YES"), "{isr}");
    let sandboxed: Vec<String> = std::fs::read_to_string(run.submit.join("tasks/cluster-single_frame.jsonl"))
        .expect("task table")
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("task")["id"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(sandboxed.len(), 213);
    assert_no(sandboxed.iter().filter(|id| !res.ok(id)).cloned().collect(), "sandboxed jobs without a successful record");
    eprintln!("[htcondor-it] special_programs: {} jobs in {secs:.1} s", res.tasks.len());
}

/// The job that fails for good, and its descendants (which DAGMan never runs).
fn failure_sets(res: &Results, failed: &str) -> (BTreeSet<String>, Vec<String>) {
    let desc = res.descendants(failed);
    let unrun: Vec<String> = desc.iter().filter(|d| !res.recs.contains_key(*d)).cloned().collect();
    (desc, unrun)
}

/// The truth from the records: job -> latest record's outcome (no record: never ran).
fn truth(res: &Results) -> BTreeMap<String, &'static str> {
    res.runnable()
        .map(|id| {
            let s = match res.last(id) {
                None => "skipped",
                Some(r) if r["skipped"] == true => "skipped",
                Some(r) if r["exit_code"] == 0 => "succeeded",
                Some(_) => "failed",
            };
            (id.clone(), s)
        })
        .collect()
}

fn bpsc_status(sub: &Path) -> (i32, Value) {
    let o = Command::new(env!("CARGO_BIN_EXE_bpsc")).args(["status", "--json"]).arg(sub).output().expect("bpsc status");
    let out = String::from_utf8_lossy(&o.stdout);
    (
        o.status.code().unwrap_or(-1),
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{}", String::from_utf8_lossy(&o.stderr))),
    )
}

#[test]
fn failure_with_on_failure_continue_then_status_and_restart() {
    let test = "failure_with_on_failure_continue_then_status_and_restart";
    let Some((run, res, secs)) = run_scenario(test, "drp_continue") else { return };
    let failed = "measure_9813_37_g";
    assert_eq!(res.exit_codes(failed), vec![1, 1, 1], "{failed}: 1 + retries (2) attempts, all failed");
    assert_eq!(res.attempts(failed), vec![1, 2, 3]);
    let (desc, unrun) = failure_sets(&res, failed);
    assert_eq!(
        unrun.len(),
        desc.len(),
        "DAGMan runs no descendant of a failed node: {desc:?} ran {:?}",
        desc.iter().filter(|d| res.recs.contains_key(*d)).collect::<Vec<_>>()
    );
    for d in ["merge_measurements_9813_37", "make_summary", "stageout_measure_9813_37_g"] {
        assert!(desc.contains(d), "{d} is downstream of {failed}");
    }
    // Everything else went on and succeeded.
    let others: Vec<String> = res.runnable().filter(|id| *id != failed && !desc.contains(*id) && !res.ok(id)).cloned().collect();
    assert_no(others, "independent jobs that did not succeed under on_failure = continue");
    assert_no(res.order_problems(), "drp_continue: dependency order");
    // DAGMan: the DAG failed (status 1), wrote a rescue DAG, and the FINAL node ran anyway.
    assert_eq!(dag_exit(&run.submit), Some(1), "DAGMan's exit status");
    assert!(run.submit.join("workflow.dag.rescue001").is_file(), "no rescue DAG");
    assert!(res.ok("provenance"), "the FINAL provenance node runs after failures");
    let notes = std::fs::read_to_string(run.root.join("notify.log")).unwrap_or_default();
    assert!(notes.contains("\tfailure\t"), "the FINAL POST script sends `failure`: {notes}");

    // bpsc status reads the real DAGMan logs and agrees with the records.
    let t = truth(&res);
    let (code, v) = bpsc_status(&run.submit);
    assert_eq!(code, 1, "a failed campaign: {v:#}");
    let count = |s: &str| t.values().filter(|x| **x == s).count() as u64;
    for k in ["succeeded", "failed", "skipped"] {
        assert_eq!(v["totals"][k].as_u64(), Some(count(k)), "{k}: {v:#}");
    }
    assert_eq!((v["totals"]["pending"].as_u64(), v["totals"]["running"].as_u64()), (Some(0), Some(0)), "{v:#}");
    let f = v["failed"].as_array().expect("failed").iter().find(|f| f["job"] == failed).expect("the failed job is listed");
    assert_eq!(f["attempts"], 3, "{f}");
    assert_eq!(v["engine"]["name"], "htcondor", "{v:#}");
    assert!(v["engine"]["sources"].as_array().expect("sources").iter().any(|s| s.as_str().unwrap_or("").ends_with("dagman.out")), "{v:#}");

    // bpsc restart writes what is left; it runs to completion without the failure, and no
    // quantum that succeeded in the first run runs again.  The restart compiles the campaign
    // again, so it captures pass_env from its own shell: the operator has cleared the
    // variable that injected the failure (it stays set, empty, as pass_env requires).
    let new = run.root.join("restart1");
    let env = payload_env(&[("FAKE_TASK_FAIL_MEASURE", String::new())], &run.root);
    let o = Command::new(env!("CARGO_BIN_EXE_bpsc"))
        .arg("restart")
        .arg(&run.submit)
        .arg("-o")
        .arg(&new)
        .env("BPSC_EXE", bpsc_for_jobs())
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("bpsc restart");
    assert!(o.status.success(), "bpsc restart: {}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    chown_to_job_user(&new).expect("chown");
    let r2 = Run {
        root: run.root.clone(),
        submit: new.clone(),
        dagman: Some(submit_dag(&new, &env).expect("submit restart")),
        submitted: Instant::now(),
        error: None,
    };
    wait_dag("drp_continue restart", &r2, Duration::from_secs(900));
    assert_eq!(dag_exit(&new), Some(0), "the restart's DAG");
    let s = Results::quantum_successes(&[&run.submit, &new]);
    assert_no(
        s.iter().filter(|(_, n)| **n != 1).map(|(q, n)| format!("{q} succeeded {n} times")).collect(),
        "quanta across the run and its restart",
    );
    assert_eq!(s.len(), 729, "every quantum of drp succeeded once over the two runs");

    // bpsc report (issue 16) on the real pool's run and its restart, as one history: the
    // restart names its original; every job ends succeeded; the failed job's three failed
    // attempts of the first run are the failure rows, and it succeeded in the restart.
    let o = Command::new(env!("CARGO_BIN_EXE_bpsc")).args(["report", "--json"]).arg(&new).output().expect("bpsc report");
    assert!(o.status.success(), "bpsc report: {}", String::from_utf8_lossy(&o.stderr));
    let rep: serde_json::Value = serde_json::from_slice(&o.stdout).expect("report JSON");
    assert_eq!(rep["runs"].as_array().map(|r| r.len()), Some(2), "the run and its restart");
    assert_eq!(rep["state"], "done", "{:#}", rep["totals"]);
    assert_eq!(rep["totals"]["succeeded"], rep["totals"]["jobs"], "{:#}", rep["totals"]);
    let rows: Vec<&serde_json::Value> =
        rep["failures"]["rows"].as_array().expect("failure rows").iter().filter(|r| r["job"] == failed).collect();
    assert_eq!(rows.len(), 3, "{failed}: its three failed attempts");
    assert!(rows.iter().all(|r| r["run"] == 0 && r["final_state"] == "succeeded"), "{rows:?}");
    eprintln!("[htcondor-it] drp_continue: {secs:.1} s; 1 failed, {} never ran; restart completed", unrun.len());
}

/// Seconds after the failing attempt's end during which a node job already matched when the
/// DAG was halted may still start: DAGMan notices the halt file within its scan interval (1 s)
/// and the POST script removes idle node jobs twice, 3 s apart (see bpsc-post.sh).
const HALT_SLACK: f64 = 6.0;

#[test]
fn failure_with_on_failure_abort() {
    let Some((run, res, secs)) = run_scenario("failure_with_on_failure_abort", "drp_abort") else { return };
    let failed = "single_frame_30404";
    assert_eq!(res.exit_codes(failed), vec![1], "{failed}: one attempt (retries = 0), failed");
    let out = dagman_out(&run.submit);
    // The POST script halted the DAG (no ABORT-DAG-ON: it crash-loops DAGMan 23.9, D2).
    assert!(out.contains("DAG is halted because halt file workflow.dag.halt exists"), "the DAG was not halted");
    assert!(!out.contains("Assertion ERROR"), "DAGMan crashed during the abort");
    assert_eq!(out.matches("(CONDOR_DAGMAN) STARTING UP").count(), 1, "DAGMan restarted (a crash?)");
    let (desc, unrun) = failure_sets(&res, failed);
    assert_no(desc.iter().filter(|d| res.ok(d)).cloned().collect(), "descendants that succeeded");
    assert!(unrun.contains(&"make_summary".to_string()), "make_summary must never run");
    // Nothing but the provenance node started after the abort.
    let abort_at = res.last(failed).and_then(|r| r["end"].as_str()).map(secs_of).unwrap_or(0.0);
    let late: Vec<String> = res
        .recs
        .iter()
        .filter(|(id, v)| *id != "provenance" && v[0]["start"].as_str().map(secs_of).unwrap_or(0.0) > abort_at + HALT_SLACK)
        .map(|(id, v)| format!("{id} started {}", v[0]["start"]))
        .collect();
    assert_no(late, "jobs started after the abort");
    // The FINAL node ran, the failure was notified, the DAG failed.
    assert!(res.ok("provenance"), "the FINAL provenance node runs after an abort");
    let notes = std::fs::read_to_string(run.root.join("notify.log")).unwrap_or_default();
    assert!(notes.contains("\tfailure\t"), "the FINAL POST script sends `failure`: {notes}");
    assert_eq!(dag_exit(&run.submit), Some(1), "DAGMan's exit status");
    // bpsc status: failed; what never ran (never submitted, or removed while idle) is skipped.
    let t = truth(&res);
    let (code, v) = bpsc_status(&run.submit);
    assert_eq!(code, 1, "a failed campaign: {v:#}");
    assert_eq!(v["state"], "failed", "{v:#}");
    let count = |s: &str| t.values().filter(|x| **x == s).count() as u64;
    for k in ["succeeded", "failed", "skipped"] {
        assert_eq!(v["totals"][k].as_u64(), Some(count(k)), "{k}: {v:#}");
    }
    assert_eq!((v["totals"]["pending"].as_u64(), v["totals"]["running"].as_u64()), (Some(0), Some(0)), "{v:#}");
    assert!(count("skipped") as usize >= unrun.len(), "the never-run descendants are skipped");
    assert!(v["failed"].as_array().expect("failed").iter().any(|f| f["job"] == failed), "{v:#}");
    eprintln!("[htcondor-it] drp_abort: {secs:.1} s; {} jobs never ran", res.tasks.len() - res.recs.len());
}

#[test]
fn examples_run_as_compiled() {
    let Some((run, res, _)) = run_scenario("examples_run_as_compiled", "drp_as_compiled") else { return };
    // Every payload found $BPSC_EXAMPLE_DIR/bin/fake_task.sh: the variable reached the jobs.
    assert_all_completed("drp_as_compiled", run, &res);
}

#[test]
fn hostile_values_stay_quoted_and_inside() {
    let Some((run, res, secs)) = run_scenario("hostile_values_stay_quoted_and_inside", "hostile") else { return };
    assert_all_completed("hostile", run, &res);
    for n in 1..=5 {
        assert!(!run.root.join(format!("CANARY{n}")).exists(), "CANARY{n} exists: a value was executed");
    }
    // Every file the campaign wrote is under the scratch or submit directory.
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
                        || p.parent() == Some(run.root.as_path()),
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
    // Each value reached the payload verbatim in all three quoting contexts, and the env
    // value with $(...) and backquotes reached it as text.
    let env = format!("it's $(touch {0}/CANARY4) `touch {0}/CANARY5` \"q\"", run.root.display());
    for (id, t) in &res.tasks {
        if !id.starts_with("echo_") {
            continue;
        }
        let v = t["quanta"][0]["data_id"]["target"].as_str().expect("target");
        let text = std::fs::read_to_string(scratch.join(format!("echo-{id}.txt"))).expect("echo file");
        assert_eq!(text, format!("{v}\n{v}\n{v}\n{env}\n"), "{id}");
    }
    // max_jobs = 2 is a DAGMan category throttle.
    let dag = std::fs::read_to_string(run.submit.join("workflow.dag")).expect("dag");
    assert!(dag.lines().filter(|l| l.starts_with("MAXJOBS ") && l.ends_with(" 2")).count() >= 2, "MAXJOBS lines");
    eprintln!("[htcondor-it] hostile: {} jobs in {secs:.1} s", res.tasks.len());
}

/// Rescue DAG after a failure: remove the injected failure from the submit files, submit the
/// same DAG again (DAGMan picks the rescue DAG up), and check that it finishes, that no
/// succeeded quantum runs again and that attempt numbers go on from the first run's.
fn rescue(test: &str, name: &str) {
    let Some((run, res, _)) = run_scenario(test, name) else { return };
    let failed = "calibrate_2_1";
    assert_eq!(res.exit_codes(failed), vec![1, 1], "{failed}: retries = 1, both failed");
    assert_eq!(dag_exit(&run.submit), Some(1));
    assert!(run.submit.join("workflow.dag.rescue001").is_file(), "no rescue DAG");
    let first_records: BTreeSet<String> = std::fs::read_dir(run.submit.join("provenance"))
        .expect("provenance")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let before: BTreeMap<String, String> = first_records
        .iter()
        .filter(|n| n.ends_with(".json"))
        .map(|n| (n.clone(), std::fs::read_to_string(run.submit.join("provenance").join(n)).unwrap_or_default()))
        .collect();
    // The failure was injected through the environment: drop it.
    for e in std::fs::read_dir(run.submit.join("htcondor")).expect("htcondor").flatten() {
        if e.path().extension().is_some_and(|x| x == "sub") {
            let t = std::fs::read_to_string(e.path()).expect("read");
            std::fs::write(e.path(), t.replace(" FAKE_TASK_FAIL_CALIBRATE='visit=2,detector=1'", "")).expect("write");
        }
    }
    let env = payload_env(&[], &run.root);
    let r2 = Run {
        root: run.root.clone(),
        submit: run.submit.clone(),
        dagman: Some(submit_dag(&run.submit, &env).expect("resubmit")),
        submitted: Instant::now(),
        error: None,
    };
    wait_dag(&format!("{name} rescue"), &r2, Duration::from_secs(600));
    assert!(dagman_out(&run.submit).contains("USING RESCUE DAG workflow.dag.rescue001"), "DAGMan did not use the rescue DAG");
    assert_eq!(dag_exit(&run.submit), Some(0), "the rescue DAG's exit status");
    let res2 = read_results(&run.submit);
    let seen =
        |id: &str| res2.recs.get(id).into_iter().flatten().map(|r| (r["attempt"].as_u64(), r["exit_code"].as_i64())).collect::<Vec<_>>();
    assert!(
        res2.ok(failed) && res2.ok("coadd_2"),
        "the rescue ran what was left; (attempt, exit code) of {failed}: {:?}, of coadd_2: {:?}",
        seen(failed),
        seen("coadd_2")
    );
    // Attempt numbers are never reused: the first run's records are all still there, unchanged.
    let changed: Vec<String> = before
        .iter()
        .filter(|(n, text)| {
            *n != "provenance.1.json" && std::fs::read_to_string(run.submit.join("provenance").join(n)).unwrap_or_default() != **text
        })
        .map(|(n, _)| n.clone())
        .collect();
    assert_no(changed, &format!("{name}: records of the first run replaced by the rescue"));
    assert_eq!(res2.attempts(failed), vec![1, 2, 3], "{failed}: the rescue's attempt goes on from the first run's");
    let s = Results::quantum_successes(&[&run.submit]);
    assert_no(
        s.iter().filter(|(_, n)| **n != 1).map(|(q, n)| format!("{q} succeeded {n} times")).collect(),
        "quanta over the run and its rescue",
    );
    assert_eq!(s.len(), 12 + 4, "every quantum succeeded once");
}

#[test]
fn rescue_dag_on_shared_filesystem() {
    rescue("rescue_dag_on_shared_filesystem", "rescue_shared");
}

#[test]
fn rescue_dag_with_file_transfer() {
    rescue("rescue_dag_with_file_transfer", "rescue_transfer");
}

#[test]
fn avoided_host_never_runs_the_job() {
    let Some(runs) = runs("avoided_host_never_runs_the_job") else { return };
    let run = runs.get("avoid_self").expect("scenario avoid_self was not submitted (BPSC_HTCONDOR_SCENARIOS?)");
    assert!(run.error.is_none(), "{}", run.error.as_deref().unwrap_or(""));
    // Wait for the node job to be in the queue and negotiated a few times.
    let dagman = run.dagman.unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let job = loop {
        let (_, out, _) = sh("condor_q", &["-constraint", &format!("DAGManJobId == {dagman}"), "-af", "ClusterId"]);
        if let Some(id) = out.split_whitespace().next() {
            break id.to_string();
        }
        assert!(Instant::now() < deadline, "the node job was never submitted");
        std::thread::sleep(Duration::from_millis(500));
    };
    std::thread::sleep(Duration::from_secs(10));
    let (_, st, _) = sh("condor_q", &[&job, "-af:r", "JobStatus", "Requirements"]);
    let (_, why, _) = sh("condor_q", &["-better-analyze", &job]);
    let _ = sh("condor_rm", &[&dagman.to_string()]);
    assert!(st.starts_with("1 "), "the job must stay idle: {st}");
    assert!(st.contains(&format!("\"{}\"", hostname().to_lowercase())), "the host is in its requirements: {st}");
    assert!(why.contains("are rejected by your job's requirements") || why.contains("rejected by your job"), "{why}");
    assert!(
        !run.submit
            .join("provenance")
            .read_dir()
            .expect("provenance")
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("only")),
        "the job ran"
    );
}
