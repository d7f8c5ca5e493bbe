//! What the integration tests share: the repository root, fresh scratch directories,
//! compiling a campaign through the library, emitting an engine's files, listing them.
//! Each test file includes it with `mod common;` and uses what it needs.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `../shared` beside the repository, or `None` (say so in the test that needs it).
pub fn shared() -> Option<PathBuf> {
    let p = repo().join("../shared");
    p.is_dir().then_some(p)
}

/// A fresh, empty directory under the target directory, named for the test.
pub fn fresh(name: &str) -> PathBuf {
    let d = repo().join("target").join("test-scratch").join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("scratch directory");
    d
}

/// Check and lower `file` (a campaign of the repository or a test's own), panicking with
/// the diagnostics when it does not compile.
pub fn lower(file: &Path, sets: &[&str]) -> bpsc::ir::Ir {
    let a =
        bpsc::pipeline::CompileArgs { file: file.to_path_buf(), sets: sets.iter().map(|s| s.to_string()).collect(), ..Default::default() };
    let mut err = Vec::new();
    match bpsc::pipeline::lower_file(&bpsc::fs::RealFs, &a, &mut err) {
        Ok((ir, _)) => ir,
        Err(code) => panic!("{} does not compile (exit {code}):\n{}", file.display(), String::from_utf8_lossy(&err)),
    }
}

/// Emit `ir` for engine `name` into directory `dir` (created; not atomic).
pub fn emit(name: &str, ir: &bpsc::ir::Ir, dir: &Path) -> Result<bpsc::backend::Emitted, bpsc::diag::Diagnostic> {
    let engine = bpsc::backend::find(name).unwrap_or_else(|| panic!("no engine {name}"));
    std::fs::create_dir_all(dir).expect("output directory");
    engine.emit(ir, &bpsc::backend::DirOutput::new(dir))
}

/// Every file under `dir`, relative, sorted.
pub fn list_files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("readable directory").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(rel) = p.strip_prefix(dir) {
                out.push(rel.to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out
}

// ------------------------------------------------------------------ synthetic runs

/// A deterministic pseudo-random number from `x` (SplitMix64's finaliser).
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A job line of a task table, as written (`id`, `kind`, `quanta`, `resources`, ...).
pub struct TaskRef<'a> {
    pub group: &'a str,
    pub index: u64,
    pub line: &'a serde_json::Value,
}

/// Write provenance records for the jobs of `submit`'s task tables, as `bpsc wrap` lays
/// them out (`provenance/JOB.ATTEMPT.json`), without its fsyncs so that a million can be
/// written in a test.  `plan` gives each job's attempts, oldest first, as partial records
/// (`exit_code`, `host`, `start`, `end`, `seconds`, `peak_rss_kib`, `signal`, `error`,
/// `skipped`, `software`, `inputs`, `outputs`, ...); `record`, `job_id`, `kind`, `group`,
/// `index`, `attempt`, `quanta` (the line's steps and data IDs, with the attempt's exit
/// status) and `log` are filled in when absent.  Join jobs are never asked about.
/// Returns the number of records written.
pub fn synth_records(submit: &Path, mut plan: impl FnMut(&TaskRef) -> Vec<serde_json::Value>) -> usize {
    use serde_json::{json, Value};
    use std::io::BufRead;
    let prov = submit.join("provenance");
    std::fs::create_dir_all(&prov).expect("provenance directory");
    let mut groups: Vec<String> = std::fs::read_dir(submit.join("tasks"))
        .expect("task tables")
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().strip_suffix(".jsonl").map(str::to_string))
        .collect();
    groups.sort();
    let mut written = 0;
    for g in groups {
        let f = std::fs::File::open(submit.join("tasks").join(format!("{g}.jsonl"))).expect("task table");
        for (i, l) in std::io::BufReader::new(f).lines().enumerate() {
            let line: Value = serde_json::from_str(&l.expect("line")).expect("task line");
            if line["kind"] == "join" {
                continue;
            }
            let id = line["id"].as_str().unwrap_or_default().to_string();
            for (a, mut rec) in plan(&TaskRef { group: &g, index: i as u64, line: &line }).into_iter().enumerate() {
                let attempt = a as u64 + 1;
                let exit = rec["exit_code"].clone();
                let m = rec.as_object_mut().expect("a record is an object");
                m.entry("record").or_insert(json!(1));
                m.entry("job_id").or_insert(json!(id));
                m.entry("kind").or_insert(line["kind"].clone());
                m.entry("group").or_insert(json!(g));
                m.entry("index").or_insert(json!(i));
                m.entry("attempt").or_insert(json!(attempt));
                let quanta: Vec<Value> = line["quanta"]
                    .as_array()
                    .map(|qs| qs.iter().map(|q| json!({"step": q["step"], "data_id": q["data_id"], "exit_code": exit})).collect())
                    .unwrap_or_default();
                m.entry("quanta").or_insert(json!(quanta));
                let log = submit.join("logs").join(&g).join(format!("{id}.{attempt}"));
                m.entry("log").or_insert(json!({"out": format!("{}.out", log.display()), "err": format!("{}.err", log.display())}));
                let mut text = serde_json::to_string(&rec).expect("json");
                text.push('\n');
                std::fs::write(prov.join(format!("{id}.{attempt}.json")), text).expect("record");
                written += 1;
            }
        }
    }
    written
}

/// RFC 3339 (as the records write it) of epoch seconds.
pub fn rfc3339(epoch: f64) -> String {
    bpsc::submitdir::time::rfc3339(std::time::UNIX_EPOCH + std::time::Duration::from_secs_f64(epoch))
}

/// DAGMan has exited with `code` (its metrics file): what `bpsc status` reads to know an
/// HTCondor campaign has ended.
pub fn dag_finished(submit: &Path, code: i32) {
    std::fs::write(submit.join("workflow.dag.metrics"), format!("{{\"client\":\"condor_dagman\",\"exitcode\":{code}}}\n"))
        .expect("metrics");
}

/// Run the `bpsc` binary (tests with a `[[bin]]` target only): exit code, stdout, stderr.
#[macro_export]
macro_rules! bpsc_cmd {
    ($($arg:expr),* $(,)?) => {{
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_bpsc")).args([$(std::ffi::OsStr::new(&$arg)),*]).output().expect("bpsc runs");
        (o.status.code().unwrap_or(-1), String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
    }};
}

/// Jobs of `submit`'s task tables downstream of `roots` (the roots included): what an
/// engine never runs after they fail.
pub fn descendants(submit: &Path, roots: &[&str]) -> std::collections::HashSet<String> {
    let mut parents: Vec<(String, Vec<String>)> = Vec::new();
    for e in std::fs::read_dir(submit.join("tasks")).expect("task tables").flatten() {
        if !e.file_name().to_string_lossy().ends_with(".jsonl") {
            continue;
        }
        for l in std::fs::read_to_string(e.path()).expect("task table").lines() {
            let v: serde_json::Value = serde_json::from_str(l).expect("task line");
            let ps = v["parents"].as_array().map(|a| a.iter().filter_map(|p| p.as_str().map(str::to_string)).collect()).unwrap_or_default();
            parents.push((v["id"].as_str().unwrap_or_default().to_string(), ps));
        }
    }
    let mut out: std::collections::HashSet<String> = roots.iter().map(|s| s.to_string()).collect();
    loop {
        let before = out.len();
        for (id, ps) in &parents {
            if !out.contains(id) && ps.iter().any(|p| out.contains(p)) {
                out.insert(id.clone());
            }
        }
        if out.len() == before {
            return out;
        }
    }
}

/// A small HTCondor campaign `name` written into `dir`: calibrate over 3 x 3 (visit,
/// detector), coadd per visit, payload `true`; 1 GiB, 1 h, one retry.  Returns its file.
pub fn mini_campaign(dir: &Path, name: &str) -> PathBuf {
    let d = dir.display();
    let text = format!(
        r#"bps 1
defaults {{
  memory   = 1GiB
  walltime = 1h
  retries  = 1
}}
site local {{
  backend   = htcondor
  shared_fs = true
  scratch   = "{d}/scratch"
}}
dimension visit    = 1..4
dimension detector = 0..3
dataset calexp(visit, detector)
dataset coadd(visit)
pipeline p {{
  step calibrate over (visit, detector) {{
    outputs = [calexp]
    run     = "true"
  }}
  step coadd over (visit) {{
    inputs  = [calexp]
    outputs = [coadd]
    run     = "true"
  }}
}}
campaign {name} {{
  use p
  coverage = visit * detector
  site     = local
}}
"#
    );
    let p = dir.join(format!("{name}.bps"));
    std::fs::write(&p, text).unwrap();
    p
}

// ------------------------------------------------------------------ the local Slurm cluster

/// Slurm tests run when `CI` is set or `BPSC_SLURM_TESTS=1` (as root: the cluster is
/// brought up, and Slurm installed, by backends/slurm/cluster-up.sh).
pub fn slurm_enabled() -> bool {
    std::env::var_os("CI").is_some() || std::env::var("BPSC_SLURM_TESTS").as_deref() == Ok("1")
}

/// Bring the cluster up (idempotent); panics with its output when it does not come up.
pub fn slurm_up() {
    let up = std::process::Command::new(repo().join("backends/slurm/cluster-up.sh")).output().expect("cluster-up.sh");
    assert!(up.status.success(), "cluster-up.sh failed:\n{}{}", String::from_utf8_lossy(&up.stdout), String::from_utf8_lossy(&up.stderr));
}

/// Submit a Slurm submit directory with its `slurm/submit.sh` (payload: the examples'
/// fake task, `env` added) and return the job ids it submitted.
pub fn slurm_submit(bpsc: &str, sub: &Path, env: &[(&str, &str)]) -> Vec<String> {
    let mut c = std::process::Command::new(sub.join("slurm/submit.sh"));
    c.env("BPSC", bpsc).env("BPSC_EXAMPLE_DIR", repo().join("examples")).env("FAKE_TASK_SLEEP", "0.05");
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.output().expect("submit.sh runs");
    assert!(o.status.success(), "submit.sh: {}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    std::fs::read_to_string(sub.join("slurm/jobids"))
        .expect("slurm/jobids")
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

/// Wait until the jobs have left the queue for good: the queue must stay empty for 5 s
/// (a job retried by requeue-hold is released with `StartTime=now+2`, and one empty poll
/// can fall into that gap).  At most `limit`.
pub fn slurm_wait(ids: &[String], limit: std::time::Duration) {
    use std::time::Instant;
    let deadline = Instant::now() + limit;
    let mut quiet_since: Option<Instant> = None;
    loop {
        let o = std::process::Command::new("squeue").args(["-h", "-j", &ids.join(","), "-o", "%i %T %r"]).output().expect("squeue");
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        let active: Vec<&str> = out.lines().filter(|l| !l.contains("DependencyNeverSatisfied")).collect();
        if o.status.success() && active.is_empty() {
            let since = *quiet_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= std::time::Duration::from_secs(5) {
                return;
            }
        } else {
            quiet_since = None;
        }
        assert!(Instant::now() < deadline, "jobs still queued after {limit:?}: {}", active.join("; "));
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}
