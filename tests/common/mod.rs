//! What the integration tests share: the repository root, fresh scratch directories,
//! compiling a campaign through the library, emitting an engine's files, listing them,
//! reading a submit directory's jobs; and, for the engine tests, gating with visible skips,
//! running commands, and judging a finished run (completion, dependency order, outputs)
//! the same way for every engine.  Each test file includes it with `mod common;`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;

use serde_json::Value;

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

/// One job of a submit directory's task tables, as an engine would run it.
#[derive(Clone, Debug)]
pub struct TableJob {
    pub group: String,
    pub index: u64,
    pub kind: String,
    pub parents: Vec<String>,
    /// The job's line: what `bpsc wrap` runs.
    pub line: serde_json::Value,
}

/// The parents of every node of an HTCondor submit directory's DAG (`PARENT … CHILD …`).
pub fn dag_parents(submit: &Path) -> Option<std::collections::HashMap<String, Vec<String>>> {
    let text = std::fs::read_to_string(submit.join("workflow.dag")).ok()?;
    let mut m: std::collections::HashMap<String, Vec<String>> = std::collections::HashMap::new();
    for l in text.lines() {
        let w: Vec<&str> = l.split_whitespace().collect();
        if w.first() != Some(&"PARENT") {
            continue;
        }
        let ci = w.iter().position(|x| *x == "CHILD")?;
        for c in &w[ci + 1..] {
            m.entry(c.to_string()).or_default().extend(w[1..ci].iter().map(|p| p.to_string()));
        }
    }
    Some(m)
}

/// Every job of a submit directory by id, with its parents (from the tables when they keep
/// them, else from the engine's DAG, else from the campaign compiled again as bpsc.json
/// records it).
pub fn table_jobs(submit: &Path) -> std::collections::BTreeMap<String, TableJob> {
    let t = bpsc::submitdir::tasks::Tables::open(submit).expect("task tables");
    let meta = bpsc::submitdir::Meta::read(submit).expect("bpsc.json");
    let mut ir_parents: Option<std::collections::HashMap<String, Vec<String>>> = dag_parents(submit);
    let mut out = std::collections::BTreeMap::new();
    for g in &t.spec.groups {
        for k in 0..g.jobs {
            let line: serde_json::Value = serde_json::from_str(&t.line(&g.name, k).expect("job line")).expect("JSON line");
            let id = line["id"].as_str().expect("id").to_string();
            let parents = match line["parents"].as_array() {
                Some(ps) => ps.iter().map(|p| p.as_str().expect("parent").to_string()).collect(),
                None => {
                    let m = ir_parents.get_or_insert_with(|| {
                        let c = meta.compile.as_ref().expect("bpsc.json records how it was compiled");
                        let sets: Vec<&str> = c.sets.iter().map(|s| s.as_str()).collect();
                        let a = bpsc::pipeline::CompileArgs {
                            file: c.file.clone(),
                            sets: sets.iter().map(|s| s.to_string()).collect(),
                            campaign: c.campaign.clone(),
                            steps: c.steps.clone(),
                            coverage_warn: c.coverage_warn,
                            allow_unknown_steps: c.allow_unknown_steps,
                        };
                        let mut err = Vec::new();
                        let (ir, _) = bpsc::pipeline::lower_file(&bpsc::fs::RealFs, &a, &mut err).expect("the campaign compiles again");
                        let mut jl = bpsc::ir::jsonl::JobLines::new(&ir);
                        (0..ir.jobs.len() as u32)
                            .map(|j| {
                                let v: serde_json::Value = serde_json::from_str(jl.line(j)).expect("IR line");
                                let ps =
                                    v["parents"].as_array().expect("parents").iter().map(|p| p.as_str().unwrap().to_string()).collect();
                                (v["id"].as_str().unwrap().to_string(), ps)
                            })
                            .collect()
                    });
                    m.get(&id).cloned().unwrap_or_default()
                }
            };
            out.insert(
                id,
                TableJob { group: g.name.clone(), index: k, kind: line["kind"].as_str().unwrap_or("").to_string(), parents, line },
            );
        }
    }
    out
}

/// True under CI (the variable `CI` set, as .ci/run's caller does) or when the engine's
/// opt-in variable is `1`.
pub fn engine_tests_enabled(opt_in: &str) -> bool {
    std::env::var_os("CI").is_some() || std::env::var(opt_in).as_deref() == Ok("1")
}

/// Say that a test did not run, so that it shows in `cargo test`'s output even though the test
/// passes: libtest captures `print!`/`eprint!` of passing tests, not writes to the stderr
/// handle, so this line appears next to `test NAME ... ok`.
pub fn skipped(test: &str, why: &str) {
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
}

/// Run the bpsc binary with extra environment; (exit status, stdout, stderr).
pub fn bpsc_with(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_bpsc"));
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.output().expect("run bpsc");
    (o.status.code().unwrap_or(-1), String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

/// `bpsc ARGS --json` of an operation or of `bpsc status`: (exit status, the JSON, stderr).
pub fn bpsc_json(args: &[&str], env: &[(&str, &str)]) -> (i32, serde_json::Value, String) {
    let mut all: Vec<&str> = args.to_vec();
    all.push("--json");
    let (code, out, err) = bpsc_with(&all, env);
    let v = serde_json::from_str(&out).unwrap_or_else(|e| panic!("bpsc {}: not JSON ({e}):\n{out}\n{err}", all.join(" ")));
    (code, v, err)
}

/// Cancels what a test submitted when the test ends, passing or not (`bpsc cancel` of each
/// directory: only the campaign's own engine ids, never a broad removal), so that a failed
/// test leaves nothing running on a shared cluster or pool.
pub struct CancelOnDrop {
    pub dirs: Vec<PathBuf>,
    pub env: Vec<(String, String)>,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        let env: Vec<(&str, &str)> = self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        for d in &self.dirs {
            if d.join("bpsc.json").exists() {
                let _ = bpsc_with(&["cancel", "--wait", "60", &d.to_string_lossy()], &env);
            }
        }
    }
}

/// Run a program; (success, stdout, stderr).
pub fn sh(cmd: &str, args: &[&str]) -> (bool, String, String) {
    match std::process::Command::new(cmd).args(args).output() {
        Ok(o) => (o.status.success(), String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned()),
        Err(e) => (false, String::new(), format!("{cmd}: {e}")),
    }
}

pub fn write_exec(p: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(p, text).expect("write");
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// Copy an example, moving its absolute /sdf and /sps paths (scratch, archives) under `fs`.
pub fn copy_example(from: &Path, to: &Path, fs: &Path) {
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

/// Stand-in transfer tool (BPSC_TRANSFER_TOOL FROM TO): a remote source becomes a small file
/// naming it; a remote destination is only logged.
pub const TRANSFER_TOOL: &str = r#"#!/bin/sh
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

/// A finished submit directory: its task tables and provenance records.
pub struct Results {
    /// job id -> task line
    pub tasks: BTreeMap<String, Value>,
    /// job id -> records, by attempt
    pub recs: BTreeMap<String, Vec<Value>>,
}

pub fn read_results(submit: &Path) -> Results {
    // Every job's line as the wrapper renders it, with its parents (see table_jobs).
    let mut tasks = BTreeMap::new();
    for (id, t) in table_jobs(submit) {
        let mut line = t.line;
        line["parents"] = Value::from(t.parents);
        tasks.insert(id, line);
    }
    let mut recs: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for e in std::fs::read_dir(submit.join("provenance")).expect("provenance").flatten() {
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
    Results { tasks, recs }
}

impl Results {
    pub fn last(&self, id: &str) -> Option<&Value> {
        self.recs.get(id).and_then(|v| v.last())
    }
    pub fn ok(&self, id: &str) -> bool {
        self.last(id).is_some_and(|r| r["exit_code"] == 0)
    }
    pub fn exit_codes(&self, id: &str) -> Vec<i64> {
        self.recs.get(id).into_iter().flatten().map(|r| r["exit_code"].as_i64().unwrap_or(-1)).collect()
    }
    pub fn attempts(&self, id: &str) -> Vec<u64> {
        self.recs.get(id).into_iter().flatten().map(|r| r["attempt"].as_u64().unwrap_or(0)).collect()
    }
    /// Compute and inserted jobs (not the NOOP joins, which never run).
    pub fn runnable(&self) -> impl Iterator<Item = &String> {
        self.tasks.iter().filter(|(_, t)| t["kind"] != "join").map(|(id, _)| id)
    }
    pub fn descendants(&self, id: &str) -> BTreeSet<String> {
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
    pub fn order_problems(&self) -> Vec<String> {
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
    pub fn missing_outputs(&self) -> Vec<String> {
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
    /// (step, data ID) -> number of successful runs, over several submit directories' records.
    pub fn quantum_successes(dirs: &[&Path]) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for d in dirs {
            for v in read_results(d).recs.values() {
                for r in v {
                    for q in r["quanta"].as_array().into_iter().flatten() {
                        if q["exit_code"] == 0 {
                            *m.entry(format!("{} {}", q["step"], q["data_id"])).or_insert(0) += 1;
                        }
                    }
                }
            }
        }
        m
    }
}

/// Seconds since the epoch of an RFC 3339 UTC time as the wrapper writes it.
pub fn secs_of(t: &str) -> f64 {
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

pub fn assert_no(problems: Vec<String>, what: &str) {
    assert!(problems.is_empty(), "{what}:\n  {}", problems.join("\n  "));
}

/// Seconds since the epoch, now.
pub fn now_epoch() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// Poll `done` every 300 ms until it holds; panic naming `what` after `limit`.
pub fn wait_for(what: &str, limit: std::time::Duration, mut done: impl FnMut() -> bool) {
    let t0 = std::time::Instant::now();
    while !done() {
        assert!(t0.elapsed() < limit, "timed out after {limit:?} waiting until {what}");
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
}

/// (job, start in epoch seconds) of every recorded attempt of a submit directory.
pub fn attempt_starts(submit: &Path) -> Vec<(String, f64)> {
    let mut v = Vec::new();
    bpsc::submitdir::records::for_each_record(submit, |r, _| {
        if let Some(t) = r.start.as_deref().and_then(bpsc::backend::state::utc_epoch) {
            v.push((r.job_id.clone(), t));
        }
    });
    v
}

/// `bpsc status --json SUBMIT` until it exits `want` (records and the engine's accounting
/// settle a moment apart), for at most `limit`: the last (exit status, JSON).
pub fn status_until(submit: &Path, env: &[(&str, &str)], want: i32, limit: std::time::Duration) -> (i32, serde_json::Value) {
    let t0 = std::time::Instant::now();
    loop {
        let (code, v, _) = bpsc_json(&["status", &submit.to_string_lossy()], env);
        if code == want || t0.elapsed() > limit {
            return (code, v);
        }
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}

/// The quanta of every recorded attempt, asserting that each succeeded.
pub fn succeeded_quanta(submit: &Path) -> usize {
    let mut n = 0;
    bpsc::submitdir::records::for_each_record(submit, |r, _| {
        for q in &r.quanta {
            assert!(q.succeeded(), "{} {:?}", r.job_id, q);
            n += 1;
        }
    });
    n
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
    let prov = submit.join("provenance");
    std::fs::create_dir_all(&prov).expect("provenance directory");
    let t = bpsc::submitdir::tasks::Tables::open(submit).expect("task tables");
    let mut written = 0;
    for grp in &t.spec.groups {
        let g = grp.name.clone();
        for i in 0..grp.jobs {
            let line: Value = serde_json::from_str(&t.line(&g, i).expect("job line")).expect("task line");
            if line["kind"] == "join" {
                continue;
            }
            let id = line["id"].as_str().unwrap_or_default().to_string();
            for (a, mut rec) in plan(&TaskRef { group: &g, index: i, line: &line }).into_iter().enumerate() {
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
    let parents: Vec<(String, Vec<String>)> = table_jobs(submit).into_iter().map(|(id, t)| (id, t.parents)).collect();
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
