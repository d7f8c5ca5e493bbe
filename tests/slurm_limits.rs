//! S3 on the real cluster: a campaign larger than the controller's `MaxJobCount` runs to
//! completion in waves within its site's `max_submit`, where submitting it at once fails.
//!
//! The cluster is reconfigured for the test (backends/slurm/cluster-up.sh with
//! `BPSC_SLURM_EXTRA_CONF`: `MaxJobCount=60`, `MinJobAge=5` so that finished jobs leave the
//! controller within seconds) and restored when the test ends, pass or fail.  Every job of
//! every user counts towards MaxJobCount, so this runs in its own test binary (cargo runs test
//! binaries one after another) and should not run while others use the cluster.  Enabled like
//! the other engine tests (CI, or BPSC_SLURM_TESTS=1).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const MAX_JOB_COUNT: usize = 60;

fn cluster_up(extra: Option<&str>) -> Result<(), String> {
    let mut cmd = Command::new(common::repo().join("backends/slurm/cluster-up.sh"));
    match extra {
        Some(x) => cmd.env("BPSC_SLURM_EXTRA_CONF", x),
        None => cmd.env_remove("BPSC_SLURM_EXTRA_CONF"),
    };
    let o = cmd.output().map_err(|e| format!("cluster-up.sh: {e}"))?;
    if o.status.success() {
        Ok(())
    } else {
        Err(format!("cluster-up.sh failed:\n{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
    }
}

/// Puts the cluster back to its usual configuration, however the test ends.
struct Restore;
impl Drop for Restore {
    fn drop(&mut self) {
        if let Err(e) = cluster_up(None) {
            eprintln!("slurm_limits: restoring the cluster failed: {e}");
        }
    }
}

/// 40 + 40 (one-to-one) + a gather + the provenance job: 82 jobs, more than MaxJobCount.
fn campaign(dir: &Path, max_submit: Option<usize>) -> PathBuf {
    std::fs::create_dir_all(dir).expect("mkdir");
    let limit = max_submit.map(|n| format!("  max_submit = {n}\n")).unwrap_or_default();
    let text = format!(
        r#"bps 1.1
site local {{
  backend    = slurm
  shared_fs  = true
  scratch    = "{root}/scratch"
{limit}}}
dimension n = 0..40
pipeline p {{
  step a over (n) {{ outputs = [x], run = "$BPSC_EXAMPLE_DIR/bin/fake_task.sh --task={{step}} --data-id={{data_id}} -- {{outputs}}" }}
  step b over (n) {{ inputs = [x], outputs = [y], run = "$BPSC_EXAMPLE_DIR/bin/fake_task.sh --task={{step}} --data-id={{data_id}} -- {{outputs}}" }}
  step c over () {{ inputs = [y], outputs = [z], run = "$BPSC_EXAMPLE_DIR/bin/fake_task.sh --task={{step}} --data-id=all -- {{outputs}}" }}
}}
campaign "waves" {{
  use p
  coverage  = n
  site      = local
  partition = "debug"
  memory    = 64MiB
  retries   = 0
  pass_env  = ["BPSC_EXAMPLE_DIR", "FAKE_TASK_SLEEP"]
}}
"#,
        root = dir.display()
    );
    let f = dir.join("waves.bps");
    std::fs::write(&f, text).expect("write");
    f
}

fn compile(file: &Path, out: &Path) {
    let o = Command::new(env!("CARGO_BIN_EXE_bpsc"))
        .arg("compile")
        .arg(file)
        .args(["--backend", "slurm", "--force", "-o"])
        .arg(out)
        .env("BPSC_EXAMPLE_DIR", common::repo().join("examples"))
        .env("FAKE_TASK_SLEEP", "0.3")
        .output()
        .expect("bpsc");
    assert!(o.status.success(), "compile: {}", String::from_utf8_lossy(&o.stderr));
}

fn submit(out: &Path) -> std::process::Output {
    Command::new(out.join("slurm/submit.sh"))
        .env("BPSC", env!("CARGO_BIN_EXE_bpsc"))
        .env("BPSC_FEED_INTERVAL", "2")
        .output()
        .expect("submit.sh")
}

fn ids(out: &Path) -> Vec<String> {
    std::fs::read_to_string(out.join("slurm/jobids"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

#[test]
fn a_campaign_larger_than_max_job_count_runs_in_waves() {
    if !common::engine_tests_enabled("BPSC_SLURM_TESTS") {
        common::skipped("slurm_limits", "needs the local Slurm cluster (CI, tests/run.sh, or BPSC_SLURM_TESTS=1 as root)");
        return;
    }
    let _restore = Restore;
    cluster_up(Some(&format!("MaxJobCount={MAX_JOB_COUNT}\nMinJobAge=5"))).expect("cluster with a small MaxJobCount");
    let (_, conf, _) = common::sh("scontrol", &["show", "config"]);
    assert!(conf.lines().any(|l| l.starts_with("MaxJobCount") && l.trim_end().ends_with(&format!("= {MAX_JOB_COUNT}"))), "{conf}");
    let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("slurm-limits");
    let _ = std::fs::remove_dir_all(&base);

    // Before: the whole campaign at once (max_submit defaults to Slurm's 10000) is refused
    // by the controller and rolled back.
    let dir = base.join("at-once");
    let out = dir.join("submit");
    compile(&campaign(&dir, None), &out);
    let o = submit(&out);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "the whole campaign at once under MaxJobCount={MAX_JOB_COUNT} must fail: {err}");
    assert!(err.contains("NOT submitted"), "{err}");

    // The refused jobs were cancelled by the roll-back but still count towards MaxJobCount
    // until MinJobAge purges them: wait for that (submit.sh's first wave does not wait out a
    // full controller; only the feeder does).
    let purge = Instant::now() + Duration::from_secs(180);
    loop {
        let (_, q, _) = common::sh("squeue", &["-h", "-r", "-t", "all", "-o", "%i %j %T %r %Z"]);
        if q.lines().count() + 40 <= MAX_JOB_COUNT {
            break;
        }
        assert!(Instant::now() < purge, "the refused campaign's jobs were not purged within 180 s:\n{q}");
        std::thread::sleep(Duration::from_secs(1));
    }

    // After: max_submit = 40: waves of at most 40 jobs, the campaign completes.
    let dir = base.join("waves");
    let out = dir.join("submit");
    compile(&campaign(&dir, Some(40)), &out);
    let script = std::fs::read_to_string(out.join("slurm/submit.sh")).expect("submit.sh");
    let waves = script.lines().filter(|l| l.starts_with("bpsc_wave_") && l.ends_with("() {")).count();
    assert!(waves >= 3, "82 jobs in waves of at most 40: {waves} waves");
    let t0 = Instant::now();
    let o = submit(&out);
    assert!(o.status.success(), "submit.sh: {}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut most = 0usize;
    loop {
        let feeding = out.join("slurm/feeder.pid").exists();
        let list = ids(&out).join(",");
        let (_, q, _) = common::sh("squeue", &["-h", "-r", "-j", &list, "-o", "%i"]);
        most = most.max(q.lines().count());
        if !feeding && q.trim().is_empty() {
            break;
        }
        if Instant::now() > deadline {
            let _ = Command::new(out.join("slurm/cancel.sh")).output();
            panic!(
                "waves: not done after 600 s; feeder log:\n{}",
                std::fs::read_to_string(out.join("slurm/feeder.log")).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let secs = t0.elapsed().as_secs_f64();
    let log = std::fs::read_to_string(out.join("slurm/feeder.log")).unwrap_or_default();
    assert!(!out.join("slurm/SUBMIT_FAILED").exists(), "the feeder failed:\n{log}");
    assert_eq!(log.lines().filter(|l| l.contains(&format!(" of {waves} ("))).count(), waves - 1, "one line per fed wave:\n{log}");
    let res = common::read_results(&out);
    let n = res.tasks.len();
    assert!(n > MAX_JOB_COUNT, "{n} jobs");
    assert!(log.contains(&format!("done: {n} jobs")), "{log}");
    let not_ok: Vec<String> = res.tasks.keys().filter(|id| !res.ok(id)).cloned().collect();
    common::assert_no(not_ok, "jobs without a successful record");
    common::assert_no(res.order_problems(), "dependency order across waves");
    assert!(most <= 40 + 16, "at most max_submit jobs (plus fan-in room) queued at once: saw {most}");
    eprintln!("[slurm-limits] {n} jobs under MaxJobCount={MAX_JOB_COUNT} in {waves} waves: {secs:.1} s (at most {most} queued at once)");
}
