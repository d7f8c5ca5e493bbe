//! Helpers shared by the engine integration tests (tests/htcondor_integration.rs): gating and
//! visible skips, running commands, and reading a finished submit directory (task tables and
//! provenance records) to judge completion, dependency order and outputs the same way for
//! every engine.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
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

/// Run a program; (success, stdout, stderr).
pub fn sh(cmd: &str, args: &[&str]) -> (bool, String, String) {
    match Command::new(cmd).args(args).output() {
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
    let mut tasks = BTreeMap::new();
    for e in std::fs::read_dir(submit.join("tasks")).expect("tasks").flatten() {
        if e.path().extension().is_some_and(|x| x == "jsonl") {
            for l in std::fs::read_to_string(e.path()).expect("read").lines() {
                let v: Value = serde_json::from_str(l).expect("task line");
                tasks.insert(v["id"].as_str().unwrap_or_default().to_string(), v);
            }
        }
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
