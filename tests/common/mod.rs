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

/// True under CI (the variable `CI` set, as .ci/run's caller does) or when the engine's
/// opt-in variable is `1`.
pub fn engine_tests_enabled(opt_in: &str) -> bool {
    std::env::var_os("CI").is_some() || std::env::var(opt_in).as_deref() == Ok("1")
}

/// Say that a test did not run, so that it shows in `cargo test`'s output even though the test
/// passes: libtest captures `print!`/`eprint!` of passing tests, not writes to the stderr
/// handle, so this line appears next to `test NAME ... ok`.
pub fn skipped(test: &str, why: &str) {
    use std::io::Write;
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
