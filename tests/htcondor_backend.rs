//! The HTCondor DAGMan backend: real-binding checks (PyPI `htcondor`, module `htcondor2`),
//! a structural DAG check of our own, DAG edges against the IR, hostile data IDs, POST-script
//! and launcher behaviour, sharding, determinism and snapshots.
//!
//! External tools: a Python with `htcondor2`/`classad2` (`$BPSC_CONDOR_PYTHON`, else `python3`)
//! and `../shared/engines/condor-offline-check.py`.  When either is missing the tests say so
//! loudly and fail if `CI` is set.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

const EXAMPLES: &[&str] = &["drp", "nightly_calib", "afterburner", "special_programs"];
const FAKE_EXE: &str = "/opt/bpsc/bin/bpsc";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn ci() -> bool {
    std::env::var("CI").is_ok()
}

/// A tool is missing: fail under CI, pass with a loud note otherwise.
fn missing(what: &str) {
    let msg = format!("MISSING: {what}");
    if ci() {
        panic!("{msg} (CI is set, so this test fails; see backends/htcondor/README.md for the install commands)");
    }
    // Written to the real stderr, not the test harness's captured one, so that it shows.
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "\n!!!!!!!! {msg}: check NOT run (it would fail under CI) !!!!!!!!\n");
}

fn tmpdir(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let d =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("htc-{tag}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst)));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("tmpdir");
    d
}

fn bpsc() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_bpsc"));
    c.env("BPSC_EXE", FAKE_EXE);
    c
}

fn compile_file(file: &Path, tag: &str) -> PathBuf {
    let out = tmpdir(tag).join("submit");
    let o = bpsc().arg("compile").arg(file).args(["--backend", "htcondor", "-o"]).arg(&out).arg("--force").output().expect("run bpsc");
    assert!(o.status.success(), "compile {} failed:\n{}", file.display(), String::from_utf8_lossy(&o.stderr));
    out
}

fn compile(example: &str) -> PathBuf {
    compile_file(&repo().join("examples").join(example).join(format!("{example}.bps")), example)
}

fn ir_jobs(file: &Path, tag: &str) -> Vec<serde_json::Value> {
    let out = tmpdir(&format!("{tag}-ir"));
    let o = bpsc().arg("compile").arg(file).args(["--emit", "ir", "-o"]).arg(&out).arg("--force").output().expect("run bpsc");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(out.join("ir.jsonl")).expect("ir.jsonl");
    text.lines().skip(1).map(|l| serde_json::from_str(l).expect("json")).collect()
}

fn list_files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir") {
            let e = e.expect("entry");
            let t = e.file_type().expect("type");
            assert!(!t.is_symlink(), "symlink in submit dir: {}", e.path().display());
            if t.is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path().strip_prefix(dir).expect("prefix").to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out
}

// ------------------------------------------------------------------ a DAG parser of our own

/// Split a DAG line into words; `"..."` (with `\"` and `\\`) is one word, quotes kept.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_q = false;
    let mut esc = false;
    for c in line.chars() {
        if in_q {
            cur.push(c);
            if esc {
                esc = false;
            } else if c == '\\' {
                esc = true;
            } else if c == '"' {
                in_q = false;
            }
        } else if c.is_whitespace() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
        } else {
            if c == '"' {
                in_q = true;
            }
            cur.push(c);
        }
    }
    assert!(!in_q, "unterminated quote in DAG line {line:?}");
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

#[derive(Default, Debug)]
struct Dag {
    /// node -> (submit file, NOOP)
    nodes: BTreeMap<String, (String, bool)>,
    final_node: Option<(String, String)>,
    edges: BTreeSet<(String, String)>,
    vars: BTreeMap<String, BTreeMap<String, String>>,
    retry: BTreeMap<String, (u32, Option<i64>)>,
    post: BTreeMap<String, Vec<String>>,
    /// node -> PRE script and its arguments (the attempt number of sandboxed nodes).
    pre: BTreeMap<String, Vec<String>>,
    priority: BTreeMap<String, i64>,
    category: BTreeMap<String, String>,
    maxjobs: BTreeMap<String, u64>,
    files: Vec<String>,
    counts: BTreeMap<String, usize>,
}

fn unquote_vars(v: &str) -> String {
    assert!(v.len() >= 2 && v.starts_with('"') && v.ends_with('"'), "VARS value not quoted: {v}");
    let mut out = String::new();
    let mut esc = false;
    for c in v[1..v.len() - 1].chars() {
        if esc {
            out.push(c);
            esc = false;
        } else if c == '\\' {
            esc = true;
        } else {
            assert!(c != '"', "unescaped quote in VARS value {v}");
            out.push(c);
        }
    }
    out
}

fn node_name_ok(n: &str) -> bool {
    !n.is_empty()
        && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        && !["PARENT", "CHILD", "ALL_NODES"].iter().any(|r| r.eq_ignore_ascii_case(n))
}

fn parse_dag(path: &Path) -> Dag {
    let text = std::fs::read_to_string(path).expect("dag");
    let mut d = Dag::default();
    // ALL_NODES sets a property of every node; a later line for one node overrides it
    // ("the last relevant command overrides earlier commands").  bpsc writes ALL_NODES only
    // after every JOB line, so it reaches every node (FINAL never).
    let mut all_nodes_seen = false;
    let mut explicit_retry = std::collections::HashSet::new();
    for (ln, line) in text.lines().enumerate() {
        let ln = ln + 1;
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let w = words(t);
        let kw = w[0].to_uppercase();
        *d.counts.entry(kw.clone()).or_default() += 1;
        let node = |i: usize| -> String {
            let n = w.get(i).unwrap_or_else(|| panic!("line {ln}: missing node name: {t}")).clone();
            assert!(node_name_ok(&n), "line {ln}: node name {n:?} is not DAGMan-safe");
            n
        };
        match kw.as_str() {
            "JOB" => {
                assert!(!all_nodes_seen, "line {ln}: a JOB after an ALL_NODES line would not get its defaults in bpsc's reading");
                let n = node(1);
                let sub = w.get(2).unwrap_or_else(|| panic!("line {ln}: JOB without submit file")).clone();
                let noop = w[3..].iter().any(|x| x == "NOOP");
                assert!(w[3..].iter().all(|x| x == "NOOP"), "line {ln}: unexpected JOB option: {t}");
                assert!(d.nodes.insert(n.clone(), (sub.clone(), noop)).is_none(), "line {ln}: node {n} defined twice");
                d.files.push(sub);
            }
            "FINAL" => {
                let n = node(1);
                assert!(d.final_node.is_none(), "line {ln}: second FINAL node");
                assert!(!d.nodes.contains_key(&n), "line {ln}: FINAL {n} also a JOB");
                d.files.push(w[2].clone());
                d.final_node = Some((n, w[2].clone()));
            }
            "PARENT" => {
                let ci = w.iter().position(|x| x == "CHILD").unwrap_or_else(|| panic!("line {ln}: PARENT without CHILD"));
                assert!(ci > 1 && ci + 1 < w.len(), "line {ln}: empty PARENT or CHILD list");
                for p in 1..ci {
                    for c in ci + 1..w.len() {
                        let (pn, cn) = (node(p), node(c));
                        assert!(d.edges.insert((pn, cn)), "line {ln}: duplicate edge");
                    }
                }
            }
            "VARS" => {
                let n = node(1);
                let map = d.vars.entry(n).or_default();
                for kv in &w[2..] {
                    let (k, v) = kv.split_once('=').unwrap_or_else(|| panic!("line {ln}: bad VARS pair {kv}"));
                    assert!(k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'), "line {ln}: bad macro name {k}");
                    assert!(!k.to_lowercase().starts_with("queue"), "line {ln}: macro name starts with queue");
                    let v = unquote_vars(v);
                    assert!(!v.contains('$'), "line {ln}: VARS value {v:?} would be macro-expanded");
                    assert!(map.insert(k.to_string(), v).is_none(), "line {ln}: macro {k} set twice");
                }
            }
            "RETRY" => {
                let count: u32 = w[2].parse().unwrap_or_else(|_| panic!("line {ln}: bad retry count"));
                let unless = match w.get(3).map(|s| s.as_str()) {
                    Some("UNLESS-EXIT") => Some(w[4].parse::<i64>().expect("unless-exit value")),
                    None => None,
                    Some(x) => panic!("line {ln}: unexpected {x}"),
                };
                if w[1].eq_ignore_ascii_case("ALL_NODES") {
                    all_nodes_seen = true;
                    for n in d.nodes.keys() {
                        d.retry.insert(n.clone(), (count, unless));
                    }
                } else {
                    let n = node(1);
                    assert!(explicit_retry.insert(n.clone()), "line {ln}: RETRY twice");
                    if count == 0 {
                        d.retry.remove(&n);
                    } else {
                        d.retry.insert(n, (count, unless));
                    }
                }
            }
            "SCRIPT" => {
                let n = node(2);
                d.files.push(w[3].clone());
                match w[1].as_str() {
                    "POST" => assert!(d.post.insert(n, w[3..].to_vec()).is_none(), "line {ln}: two POST scripts"),
                    "PRE" => assert!(d.pre.insert(n, w[3..].to_vec()).is_none(), "line {ln}: two PRE scripts"),
                    other => panic!("line {ln}: a {other} script is not one bpsc writes"),
                }
            }
            "PRIORITY" => {
                let p: i64 = w[2].parse().expect("priority");
                if w[1].eq_ignore_ascii_case("ALL_NODES") {
                    all_nodes_seen = true;
                    for n in d.nodes.keys() {
                        d.priority.insert(n.clone(), p);
                    }
                } else {
                    d.priority.insert(node(1), p);
                }
            }
            "CATEGORY" => {
                let n = node(1);
                d.category.insert(n, w[2].clone());
            }
            "MAXJOBS" => {
                d.maxjobs.insert(w[1].clone(), w[2].parse().expect("maxjobs"));
            }
            "CONFIG" => d.files.push(w[1].clone()),
            "NODE_STATUS_FILE" | "JOBSTATE_LOG" => {
                assert!(!w[1].contains('/'), "status files stay in the submit directory");
            }
            other => panic!("line {ln}: command {other} is not one bpsc writes"),
        }
    }
    d
}

/// Every structural rule DAGMan's own parser would enforce at run time (and the bindings do not).
fn check_structure(dir: &Path, d: &Dag) {
    let defined = |n: &String| d.nodes.contains_key(n) || d.final_node.as_ref().is_some_and(|f| &f.0 == n);
    for (p, c) in &d.edges {
        assert!(d.nodes.contains_key(p), "PARENT {p} is not a defined node");
        assert!(d.nodes.contains_key(c), "CHILD {c} is not a defined node");
    }
    for n in d.vars.keys().chain(d.retry.keys()).chain(d.post.keys()).chain(d.priority.keys()).chain(d.category.keys()) {
        assert!(defined(n), "{n} is referenced but not defined");
    }
    if let Some((f, _)) = &d.final_node {
        for m in [d.retry.contains_key(f), d.priority.contains_key(f), d.category.contains_key(f), d.pre.contains_key(f)] {
            assert!(!m, "FINAL node {f} may not have RETRY/PRIORITY/CATEGORY or a PRE script here");
        }
        assert!(!d.edges.iter().any(|(p, c)| p == f || c == f), "FINAL node in PARENT/CHILD");
    }
    for c in d.category.values() {
        assert!(d.maxjobs.contains_key(c), "category {c} without MAXJOBS");
    }
    for (n, (_, unless)) in &d.retry {
        if d.post.contains_key(n) {
            assert_eq!(*unless, Some(2), "{n}: with a POST script the UNLESS-EXIT value is the POST script's 2");
        }
    }
    for n in d.vars.keys().chain(d.retry.keys()).chain(d.pre.keys()) {
        assert!(defined(n), "{n} is referenced but not defined");
    }
    // Every referenced file exists, inside the submit directory.
    for f in &d.files {
        assert!(!f.starts_with('/') && !f.split('/').any(|c| c == ".."), "{f} leaves the submit directory");
        assert!(dir.join(f).is_file(), "{f} is referenced by the DAG but missing");
    }
    // Acyclic (Kahn).
    let mut indeg: HashMap<&str, usize> = d.nodes.keys().map(|n| (n.as_str(), 0)).collect();
    let mut kids: HashMap<&str, Vec<&str>> = HashMap::new();
    for (p, c) in &d.edges {
        *indeg.get_mut(c.as_str()).expect("node") += 1;
        kids.entry(p.as_str()).or_default().push(c.as_str());
    }
    let mut ready: Vec<&str> = indeg.iter().filter(|(_, &k)| k == 0).map(|(n, _)| *n).collect();
    let mut seen = 0;
    while let Some(n) = ready.pop() {
        seen += 1;
        for c in kids.get(n).cloned().unwrap_or_default() {
            let k = indeg.get_mut(c).expect("node");
            *k -= 1;
            if *k == 0 {
                ready.push(c);
            }
        }
    }
    assert_eq!(seen, d.nodes.len(), "the DAG has a cycle");
    // A node is its job: the submit file passes the node name ($(JOB), the job id) to the
    // wrapper, or, for jobs that carry their task table (file transfer), the node's VARS
    // give the index.  Submit files exist once per group, not per job.
    for (n, (sub, noop)) in &d.nodes {
        assert!(sub.starts_with("htcondor/") && sub.ends_with(".sub"), "{sub}");
        if *noop {
            continue;
        }
        let text = std::fs::read_to_string(dir.join(sub)).expect("submit file");
        let args = text.lines().find(|l| l.starts_with("arguments")).expect("arguments");
        if args.contains("--index $(bpsc_i)") {
            assert!(d.vars.get(n).is_some_and(|v| v.contains_key("bpsc_i")), "{n} has no bpsc_i");
            // A sandboxed node gets its attempt number from its PRE script, through the file
            // its submit description transfers in.
            assert!(args.contains("--attempt-file htcondor/attempt/$(JOB)"), "{sub}: {args}");
            assert!(text.contains("htcondor/attempt/$(JOB)\n"), "{sub}: the attempt file is not transferred");
            let pre = d.pre.get(n).unwrap_or_else(|| panic!("{n}: a sandboxed node without the PRE script"));
            assert_eq!(pre.len(), 3, "{n}: {pre:?}");
            assert_eq!((pre[0].as_str(), pre[1].as_str()), ("htcondor/bpsc-pre.sh", n.as_str()), "{n}: {pre:?}");
            assert_eq!(pre[2].trim_start_matches('_').to_lowercase(), n.trim_start_matches('_').to_lowercase(), "{n}: the job id");
            assert!(dir.join("htcondor/attempt").is_dir(), "htcondor/attempt/ is missing");
        } else {
            assert!(args.contains("--job $(JOB)"), "{sub}: {args}");
            assert!(!d.vars.get(n).is_some_and(|v| v.contains_key("bpsc_i")), "{n}: an index it does not need");
            assert!(!d.pre.contains_key(n), "{n}: a PRE script it does not need");
        }
    }
}

/// DAG edges are exactly the IR's edges (ids are node names); joins are NOOP nodes.
fn check_edges_match_ir(d: &Dag, jobs: &[serde_json::Value]) {
    let mut ir_edges = BTreeSet::new();
    for j in jobs {
        let id = j["id"].as_str().expect("id").to_string();
        for p in j["parents"].as_array().expect("parents") {
            ir_edges.insert((p.as_str().expect("parent").to_string(), id.clone()));
        }
        match j["kind"].as_str() {
            Some("join") => assert!(d.nodes.get(&id).is_some_and(|x| x.1), "join {id} is not a NOOP node"),
            Some("provenance") => assert_eq!(d.final_node.as_ref().map(|f| f.0.as_str()), Some(id.as_str()), "provenance is not FINAL"),
            _ => assert!(d.nodes.get(&id).is_some_and(|x| !x.1), "{id} missing or NOOP"),
        }
    }
    assert_eq!(d.nodes.len() + 1, jobs.len(), "node count");
    let missing: Vec<_> = ir_edges.difference(&d.edges).take(5).collect();
    let extra: Vec<_> = d.edges.difference(&ir_edges).take(5).collect();
    assert!(missing.is_empty() && extra.is_empty(), "edges differ: missing {missing:?}, extra {extra:?}");
}

// ------------------------------------------------------------------ the real bindings

fn shared_check_script() -> Option<PathBuf> {
    let p = repo().join("../shared/engines/condor-offline-check.py");
    if p.is_file() {
        Some(p)
    } else {
        missing(&format!("{} (../shared is absent or incomplete)", p.display()));
        None
    }
}

/// A Python that imports htcondor2 and classad2.
fn condor_python() -> Option<String> {
    let mut cands: Vec<String> = Vec::new();
    if let Ok(p) = std::env::var("BPSC_CONDOR_PYTHON") {
        cands.push(p);
    }
    cands.push("python3".into());
    for c in cands {
        if Command::new(&c).args(["-c", "import htcondor2, classad2"]).output().is_ok_and(|o| o.status.success()) {
            return Some(c);
        }
    }
    missing(
        "a Python with the HTCondor bindings (python3 -m venv V && V/bin/pip install htcondor; export BPSC_CONDOR_PYTHON=V/bin/python)",
    );
    None
}

fn offline_check(dir: &Path) {
    let (Some(py), Some(script)) = (condor_python(), shared_check_script()) else { return };
    let mut files: Vec<String> = list_files(dir).into_iter().filter(|f| f.ends_with(".sub")).collect();
    files.push("workflow.dag".into());
    let o = Command::new(&py).arg(&script).args(&files).current_dir(dir).output().expect("python");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "condor-offline-check failed in {}:\n{out}{}", dir.display(), String::from_utf8_lossy(&o.stderr));
    for f in &files {
        assert!(out.contains(&format!("OK   {f}")), "{f} not reported OK:\n{out}");
    }
    assert!(!dir.join("workflow.dag.condor.sub").exists(), "from_dag leftovers");
}

/// Submit each node's description as DAGMan would (VARS prepended, JOB/RETRY defined) with
/// the real submit-language implementation, expand the values, parse the ClassAd expressions
/// and evaluate requirements against machine ads.  Prints one JSON object per node.
const SIMULATE: &str = r#"
import json, sys, htcondor2, classad2
cases = json.load(open(sys.argv[1]))
out = []
def ev(expr, ad):
    v = classad2.ExprTree(expr).eval(classad2.ClassAd(ad))
    return v if isinstance(v, (bool, int, float, str)) else None
# Job-ad states: the memory request after holds, and the hold policy in held states.
memory_hold = lambda k: {"LastJobStatus": 5, "LastHoldReasonCode": 26, "LastHoldReasonSubCode": 34, "NumJobStarts": k}
MEMORY_STATES = {"fresh": {}, "running": {"JobStatus": 2, "LastJobStatus": 1, "NumJobStarts": 1},
                 "after_oom_kill": {"LastJobStatus": 5, "LastHoldReasonCode": 34, "LastHoldReasonSubCode": 0, "NumJobStarts": 1},
                 "after_other_hold": {"LastJobStatus": 5, "LastHoldReasonCode": 13, "LastHoldReasonSubCode": 2, "NumJobStarts": 1}}
MEMORY_STATES.update({f"after_memory_hold_{k}": memory_hold(k) for k in range(1, 6)})
held = lambda code, sub, k: {"JobStatus": 5, "HoldReasonCode": code, "HoldReasonSubCode": sub, "NumJobStarts": k}
POLICY_STATES = {"running": {"JobStatus": 2, "NumJobStarts": 1}, "oom_kill_1": held(34, 0, 1), "walltime": held(47, 0, 1),
                 "transfer": held(13, 2, 1), "job_policy_memory_1": held(3, 34, 1)}
POLICY_STATES.update({f"memory_hold_{k}": held(26, 34, k) for k in range(1, 6)})
for c in cases:
    text = open(c["sub"]).read()
    pre = "".join(f"{k} = {v}\n" for k, v in c["vars"].items())
    pre += f"JOB = {c['node']}\nRETRY = {c['retry']}\n"
    s = htcondor2.Submit(pre + text)
    r = {"node": c["node"], "retry": c["retry"]}
    for k in ("request_memory", "request_cpus", "request_disk", "arguments", "environment", "requirements",
              "periodic_remove", "periodic_release", "allowed_execute_duration", "output", "error", "transfer_input_files",
              "transfer_output_files", "accounting_group", "My.BpscCampaign", "My.ProjectName", "My.BpscGroup", "universe",
              "container_image", "getenv"):
        v = s.get(k)
        if v is not None:
            r[k] = s.expand(k)
    for k in ("requirements", "periodic_remove", "periodic_release", "My.BpscCampaign", "My.ProjectName", "My.BpscGroup"):
        if k in r:
            e = classad2.ExprTree(r[k])
            r[k + "!eval"] = repr(e.eval()) if k.startswith("My.") else None
    if "request_memory" in r:
        r["memory"] = {name: ev(r["request_memory"], ad) for name, ad in MEMORY_STATES.items()}
    r["policy"] = {name: [bool(ev(r[k], ad)) if k in r else False for k in ("periodic_release", "periodic_remove")]
                   for name, ad in POLICY_STATES.items()}
    if "requirements" in r:
        e = classad2.ExprTree(r["requirements"])
        r["matches"] = {m: bool(e.eval(classad2.ClassAd({"Machine": m, "BpscSite": c.get("site") or "x"})))
                        for m in c["machines"]}
    out.append(r)
print(json.dumps(out))
"#;

fn simulate(dir: &Path, cases: &serde_json::Value) -> Option<Vec<serde_json::Value>> {
    let py = condor_python()?;
    let cf = dir.join("../cases.json");
    std::fs::write(&cf, cases.to_string()).expect("write cases");
    let o = Command::new(&py).args(["-c", SIMULATE]).arg(&cf).current_dir(dir).output().expect("python");
    assert!(o.status.success(), "simulation failed: {}", String::from_utf8_lossy(&o.stderr));
    Some(serde_json::from_slice(&o.stdout).expect("json"))
}

/// One case per submit file (its first node), at RETRY 0 and 2.
fn cases_for(dir: &Path, d: &Dag, machines: &[&str]) -> serde_json::Value {
    let mut seen = BTreeSet::new();
    let mut cases = Vec::new();
    let nodes = d.nodes.iter().filter(|(_, (_, noop))| !noop).map(|(n, (s, _))| (n, s)).chain(d.final_node.as_ref().map(|(n, s)| (n, s)));
    for (n, sub) in nodes {
        if !seen.insert(sub.clone()) {
            continue;
        }
        let site = std::fs::read_to_string(dir.join(sub)).ok().and_then(|t| {
            t.lines().find_map(|l| l.strip_prefix("My.BpscSite").map(|r| r.trim_start_matches([' ', '=']).trim_matches('"').to_string()))
        });
        for retry in [0, 2] {
            cases.push(serde_json::json!({"sub": sub, "node": n, "retry": retry, "vars": d.vars.get(n).cloned().unwrap_or_default(),
                "site": site, "machines": machines}));
        }
    }
    serde_json::Value::Array(cases)
}

// ------------------------------------------------------------------ tests

#[test]
fn examples_pass_the_real_htcondor_bindings() {
    for ex in EXAMPLES {
        let dir = compile(ex);
        offline_check(&dir);
    }
}

#[test]
fn examples_dag_structure_and_edges_match_the_ir() {
    for ex in EXAMPLES {
        let dir = compile(ex);
        let d = parse_dag(&dir.join("workflow.dag"));
        check_structure(&dir, &d);
        let jobs = ir_jobs(&repo().join("examples").join(ex).join(format!("{ex}.bps")), ex);
        check_edges_match_ir(&d, &jobs);
        // Few files: one submit description per task group, never per job.
        let subs = list_files(&dir).iter().filter(|f| f.ends_with(".sub")).count();
        assert!(subs <= 20, "{ex}: {subs} submit files for {} nodes", d.nodes.len());
        // Node priorities are the IR's.
        for j in &jobs {
            let id = j["id"].as_str().unwrap_or_default();
            let p = j["priority"].as_i64().unwrap_or(0);
            if j["kind"] != "join" && j["kind"] != "provenance" {
                assert_eq!(d.priority.get(id).copied().unwrap_or(0), p, "{ex}: priority of {id}");
            }
        }
    }
}

#[test]
fn nightly_calib_maps_abort_retries_and_growth() {
    let dir = compile("nightly_calib");
    let d = parse_dag(&dir.join("workflow.dag"));
    // on_failure = abort everywhere: a POST script on every compute node that halts the DAG on
    // the final failure; no ABORT-DAG-ON (it crash-loops DAGMan 23.9, defect D2).
    let n = "bias_chain_90";
    assert_eq!(d.retry.get(n), Some(&(1, Some(2))));
    assert_eq!(d.post[n], ["htcondor/bpsc-post.sh", "node", "$RETURN", "$RETRY", "$MAX_RETRIES", "1", "2"]);
    assert_eq!(d.counts.get("ABORT-DAG-ON"), None);
    // certify: retries = 0 -> no RETRY line, still halts through the POST script.
    assert!(!d.retry.contains_key("certify"));
    assert_eq!(d.post["certify"][5], "1");
    // Campaign priority 90 + depth-first order: later steps higher.
    assert!(d.priority["certify"] > d.priority["bias_chain_90"]);
    let sub = std::fs::read_to_string(dir.join("htcondor/cluster-bias_chain.sub")).expect("sub");
    assert!(sub.contains("accounting_group         = group_rubin.nightly"), "{sub}");
    assert!(sub.contains("sdfrome041"));
    assert!(sub.contains("should_transfer_files    = NO"));
    let Some(res) = simulate(&dir, &cases_for(&dir, &d, &["sdfrome041.slac.stanford.edu", "sdfrome099", "SDFROME042"])) else { return };
    let case = |sub: &str, retry: u64| {
        res.iter().find(|r| r["retry"] == retry && d.nodes.get(r["node"].as_str().unwrap_or("")).is_some_and(|x| x.0 == sub)).cloned()
    };
    let c0 = case("htcondor/cluster-bias_chain.sub", 0).expect("case");
    let c2 = case("htcondor/cluster-bias_chain.sub", 2).expect("case");
    // memory_growth_on = oom (the default): combine_bias 6GiB in the cluster asks 6144 MiB
    // whatever DAGMan's retry count, and again after a hold that is not about memory; after
    // a memory hold the job is released in place with 1.5x per start (retries = 1: once).
    let m = &c0["memory"];
    assert_eq!((m["fresh"].as_u64(), c2["memory"]["fresh"].as_u64()), (Some(6144), Some(6144)), "{c0}");
    assert_eq!(m["after_other_hold"].as_u64(), Some(6144));
    assert_eq!(m["after_memory_hold_1"].as_u64(), Some(9216), "{m}");
    assert_eq!(m["after_oom_kill"].as_u64(), Some(9216), "a starter OOM hold (34/0) is a memory hold too: {m}");
    assert_eq!(m["running"].as_u64(), Some(6144), "{m}");
    let p = &c0["policy"];
    assert_eq!(p["memory_hold_1"], serde_json::json!([true, false]), "released after the first memory hold: {p}");
    assert_eq!(p["oom_kill_1"], serde_json::json!([true, false]), "{p}");
    assert_eq!(p["job_policy_memory_1"], serde_json::json!([true, false]), "{p}");
    assert_eq!(p["memory_hold_2"], serde_json::json!([false, true]), "retries spent: removed, DAGMan's RETRY decides: {p}");
    assert_eq!(c0["arguments"], format!("\"'{FAKE_EXE}' --group cluster-bias_chain --job bias_chain_90\""));
    assert_eq!(c0["matches"]["sdfrome041.slac.stanford.edu"], true);
    assert_eq!(c0["matches"]["SDFROME042"], true);
    assert_eq!(c0["matches"]["sdfrome099"], false);
}

/// `memory_growth_on = any` (language 1.0's behaviour): every DAGMan retry asks for more,
/// through $(RETRY) evaluated when DAGMan submits; memory holds are removed (then retried).
#[test]
fn memory_growth_on_any_grows_with_dagman_retries() {
    let out = tmpdir("growth-any").join("submit");
    let o = bpsc()
        .arg("compile")
        .arg(repo().join("examples/nightly_calib/nightly_calib.bps"))
        .args(["--backend", "htcondor", "--force", "--set", "memory_growth_on=any", "--set", "retries=3", "-o"])
        .arg(&out)
        .output()
        .expect("bpsc");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let d = parse_dag(&out.join("workflow.dag"));
    let Some(res) = simulate(&out, &cases_for(&out, &d, &["sdfrome041"])) else { return };
    let at = |retry: u64| {
        res.iter()
            .find(|r| r["retry"] == retry && r["node"] == "bias_chain_90")
            .map(|r| r["memory"]["fresh"].as_u64())
            .unwrap_or_else(|| panic!("no case at retry {retry}"))
    };
    assert_eq!((at(0), at(2)), (Some(6144), Some(13824)));
    let r = res.iter().find(|r| r["node"] == "bias_chain_90").expect("case");
    assert_eq!(r["policy"]["memory_hold_1"], serde_json::json!([false, true]), "{r}");
    let sub = std::fs::read_to_string(out.join("htcondor/cluster-bias_chain.sub")).expect("sub");
    assert!(!sub.contains("periodic_release"), "{sub}");
}

#[test]
fn examples_simulated_node_submission_with_the_bindings() {
    for ex in EXAMPLES {
        let dir = compile(ex);
        let d = parse_dag(&dir.join("workflow.dag"));
        let Some(res) = simulate(&dir, &cases_for(&dir, &d, &["sdfmilan072", "sdfmilan001", "ccwslurm0042.in2p3.fr"])) else { return };
        for r in &res {
            // request_memory is a number, or (memory_growth_on = oom) an expression of the job ad.
            let mem = r["memory"]["fresh"].as_u64().unwrap_or_else(|| panic!("{ex}: {r}"));
            assert!(mem >= 1, "{ex}: {r}");
            // A job that is running or idle is never released or removed by the hold policy.
            assert_eq!(r["policy"]["running"], serde_json::json!([false, false]), "{ex}: {r}");
            // Walltime holds are removed (DAGMan retries the node); unknown holds stay for a person.
            if r["universe"] != "local" {
                assert_eq!(r["policy"]["walltime"], serde_json::json!([false, true]), "{ex}: {r}");
            }
            assert_eq!(r["policy"]["transfer"], serde_json::json!([false, false]), "{ex}: {r}");
            assert!(r.get("getenv").is_none(), "{ex}: no variable of the submitting shell reaches a job: {r}");
            let args = r["arguments"].as_str().expect("arguments");
            assert!(args.contains("--group ") && (args.contains("--index ") || args.contains("--job ")), "{ex}: {args}");
            assert!(!args.contains("$("), "{ex}: unexpanded macro in {args}");
            if let Some(m) = r.get("matches").and_then(|m| m.as_object()) {
                if ex == &"drp" {
                    assert_eq!(m["sdfmilan072"], false, "{ex}: avoid_hosts");
                    assert_eq!(m["sdfmilan001"], true, "{ex}: {r}");
                }
            }
        }
    }
}

#[test]
fn hostile_data_ids_stay_inside_and_keep_quoting() {
    let src = tmpdir("hostile-src");
    std::fs::create_dir_all(src.join("data")).expect("mkdir");
    std::fs::write(
        src.join("data/visits.csv"),
        "visit,band\n\"../../etc\",g\n\"$(rm -rf ~)\",r\n\"a b\",i\n\"it's\",z\n\"say \"\"hi\"\"\",y\n\"back\\slash\",g\n\"semi;colon&amp\",r\n\"/abs\",i\n\"multi\nline\",i\n\"tab\there\",z\n",
    )
    .expect("csv");
    std::fs::write(
        src.join("hostile.bps"),
        r#"bps 1

site farm {
  backend     = htcondor
  shared_fs   = false
  scratch     = "/scratch/{user}/{campaign}"
  account     = "group_$(whoami).\"x\""
  avoid_hosts = ["bad\"host$(x)", "node-1"]
  env { TRICKY = "it's \"quoted\" $(rm -rf ~) `x` \\ end" }
}

dimension visit
dimension band
relation exposure(visit, band) = table("data/visits.csv")

dataset raw(visit) { source = "file:///data/raw/{visit}.fits", stage = pre_job }
dataset calexp(visit, band) { persist = archive, archive = "file:///archive/{visit}/{band}.fits" }

pipeline p {
  step calib over (visit, band) {
    inputs = [raw]
    outputs = [calexp]
    run = "echo {visit} '{band}' \"{data_id}\" -- {outputs}"
    retries = 2
    retry_unless_exit = [2, 3]
    software = setup("source '/opt/x $(y)/setup.sh'")
  }
  step summary after calib all {
    run = "echo done {campaign}"
    on_failure = abort
    max_jobs = 2
  }
}

campaign "evil $(rm -rf ~) \"q\" 'x'" {
  use p
  coverage = exposure
  site = farm
  notify { on = [done, failure], command = "printf '%s|%s|%s\\n' {campaign} \"{event}\" x{step}x >> \"$NOTIFY_OUT\"" }
}
"#,
    )
    .expect("bps");
    let file = src.join("hostile.bps");
    let dir = compile_file(&file, "hostile");
    let files = list_files(&dir);
    let hostile =
        ["../../etc", "$(rm -rf ~)", "it's", "a b", "say \"hi\"", "back\\slash", "semi;colon", "/abs", "multi\nline", "tab\there"];
    for f in &files {
        assert!(!f.contains(".."), "{f}");
        let top = f.split('/').next().unwrap_or_default();
        assert!(["bpsc.json", "workflow.dag", "htcondor", "tasks", "logs", "provenance", "configs"].contains(&top), "unexpected path {f}");
        assert!(f.bytes().all(|b| b.is_ascii_alphanumeric() || b"/._-".contains(&b)), "unsafe file name {f}");
    }
    // Engine files hold no raw data ID value outside comments (values reach jobs only through
    // the task tables, shell-quoted there by the lowering); `$` is always `$(DOLLAR)` in them.
    // (The shell scripts quote for the shell instead; the notify run below proves it.)
    for f in files.iter().filter(|f| f.ends_with(".dag") || f.ends_with(".sub") || f.ends_with(".config")) {
        let text = std::fs::read_to_string(dir.join(f)).expect("read");
        for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
            for h in &hostile {
                assert!(!line.contains(h), "{f}: raw hostile value {h:?} in {line:?}");
            }
        }
    }
    let d = parse_dag(&dir.join("workflow.dag"));
    check_structure(&dir, &d);
    check_edges_match_ir(&d, &ir_jobs(&file, "hostile"));
    // Multi-code retry_unless_exit: POST script + UNLESS-EXIT 2; abort step: ABORT-DAG-ON.
    let calib: Vec<_> = d.nodes.iter().filter(|(n, _)| n.starts_with("calib_")).map(|(n, _)| n.clone()).collect();
    assert_eq!(calib.len(), 10);
    for n in &calib {
        assert_eq!(d.retry[n], (2, Some(2)));
        assert_eq!(d.post[n].last().map(String::as_str), Some("2,3"));
        assert_eq!(d.post[n][5], "0");
    }
    // on_failure = abort: the POST script halts the DAG (no ABORT-DAG-ON, see D2).
    assert_eq!(d.post["summary"][5], "1");
    assert_eq!(d.counts.get("ABORT-DAG-ON"), None);
    assert_eq!(d.category.get("summary").map(String::as_str), Some("summary"));
    assert_eq!(d.maxjobs.get("summary"), Some(&2));
    // Non-shared filesystem: HTCondor file transfer of the control files.
    let sub = std::fs::read_to_string(dir.join("htcondor/calib.sub")).expect("sub");
    assert!(sub.contains("should_transfer_files    = YES") && sub.contains("transfer_output_files    = provenance, logs"));
    for st in ["stagein", "stageout"] {
        let t = std::fs::read_to_string(dir.join(format!("htcondor/{st}.sub"))).expect("sub");
        assert!(t.contains("should_transfer_files    = YES"), "{st}");
    }
    offline_check(&dir);
    // The notify command gets the campaign name as one word, whatever it holds.
    let out = dir.join("../notify.out");
    let st = Command::new("/bin/sh").arg(dir.join("htcondor/bpsc-post.sh")).args(["final", "0", "2", "1"]).env("NOTIFY_OUT", &out).status();
    assert_eq!(st.expect("sh").code(), Some(1));
    assert_eq!(std::fs::read_to_string(&out).expect("notify output"), "evil $(rm -rf ~) \"q\" 'x'|failure|xx\n");
    // The submit language gives back exactly the hostile text.
    let Some(res) = simulate(&dir, &cases_for(&dir, &d, &["node-1.example.org", "good", "bad\"host$(x)"])) else { return };
    let r = res.iter().find(|r| r["node"].as_str().is_some_and(|n| n.starts_with("calib_"))).expect("calib case");
    assert_eq!(r["My.BpscCampaign!eval"], "'evil $(rm -rf ~) \"q\" \\'x\\''", "{r}");
    assert_eq!(r["accounting_group"], "group_$(whoami).\"x\"");
    assert_eq!(r["My.ProjectName!eval"], "'group_$(whoami).\"x\"'");
    let env = r["environment"].as_str().expect("env");
    assert!(env.contains("TRICKY='it''s \"\"quoted\"\" $(rm -rf ~) `x` \\ end'"), "{env}");
    assert!(env.contains("BPSC_SETUP='source ''/opt/x $(y)/setup.sh'''"), "{env}");
    assert_eq!(r["matches"]["node-1.example.org"], false);
    assert_eq!(r["matches"]["bad\"host$(x)"], false);
    assert_eq!(r["matches"]["good"], true);
}

/// The POST script's mapping, run with /bin/sh (a stand-in `condor_rm` on PATH records what
/// the halt removes).
#[test]
fn post_script_maps_exit_codes() {
    let dir = compile("drp");
    let post = dir.join("htcondor/bpsc-post.sh");
    let bin = dir.join("../bin");
    std::fs::create_dir_all(&bin).expect("bin");
    let rm_log = dir.join("../condor_rm.log");
    std::fs::write(bin.join("condor_rm"), format!("#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{}'\n", rm_log.display())).expect("stub");
    Command::new("chmod").arg("755").arg(bin.join("condor_rm")).status().expect("chmod");
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let halt = dir.join("workflow.dag.halt");
    let run = |args: &[&str]| {
        Command::new("/bin/sh")
            .arg(&post)
            .args(args)
            .current_dir(&dir)
            .env("PATH", &path)
            .env("CONDOR_ID", "4242.0")
            .output()
            .expect("sh")
            .status
            .code()
    };
    // node RETURN RETRY MAX_RETRIES ABORT CODES
    assert_eq!(run(&["node", "0", "0", "3", "1", "2,5"]), Some(0));
    assert_eq!(run(&["node", "1", "0", "3", "0", "2,5"]), Some(1), "retryable");
    assert_eq!(run(&["node", "5", "0", "3", "0", "2,5"]), Some(2), "in the no-retry set");
    assert_eq!(run(&["node", "2", "1", "3", "0", "2,5"]), Some(2));
    assert_eq!(run(&["node", "25", "0", "3", "0", "2,5"]), Some(1), "25 is not 2 or 5");
    assert_eq!(run(&["node", "1", "3", "3", "0", "-"]), Some(1), "last attempt, continue");
    assert_eq!(run(&["node", "1", "1", "3", "1", "-"]), Some(1), "abort step, retries left");
    assert_eq!(run(&["node", "-9", "0", "2", "0", "9"]), Some(1), "signals are never exit codes");
    assert!(!halt.exists() && !rm_log.exists(), "nothing halted so far");
    // on_failure = abort, final failure: the DAG is halted, its idle node jobs removed, and
    // the node fails without a retry.
    assert_eq!(run(&["node", "1", "3", "3", "1", "-"]), Some(2), "last attempt, abort");
    assert!(halt.is_file(), "no halt file");
    let rm = std::fs::read_to_string(&rm_log).expect("condor_rm ran");
    assert_eq!(rm.lines().collect::<Vec<_>>(), ["-constraint DAGManJobId == 4242 && JobStatus == 1"; 2], "{rm}");
    assert_eq!(run(&["node", "2", "0", "3", "1", "2"]), Some(2), "no-retry code in an abort step");
    assert_eq!(run(&["node", "-1002", "0", "0", "1", "-"]), Some(2), "removed (memory/walltime) on the only attempt");
    // final RETURN DAG_STATUS FAILED_COUNT
    assert_eq!(run(&["final", "0", "0", "0"]), Some(0));
    assert_eq!(run(&["final", "0", "2", "3"]), Some(1), "nodes failed: the DAG fails");
    assert_eq!(run(&["final", "0", "6", "1"]), Some(1), "halted");
    assert_eq!(run(&["final", "1", "0", "0"]), Some(1));
    assert_eq!(run(&["bogus"]), Some(64));
}

/// The final POST script runs the campaign's notify command with the event, in the campaign's
/// environment as captured at compile time (pass_env): DAGMan's own environment has none of
/// it, so the script is run here with an empty one.
#[test]
fn final_post_script_notifies() {
    let out = tmpdir("notify").join("submit");
    let log = out.join("../notify.log");
    let ex = repo().join("examples");
    let o = bpsc()
        .arg("compile")
        .arg(ex.join("drp/drp.bps"))
        .args(["--backend", "htcondor", "--force", "--set", "pass_env=[\"FAKE_NOTIFY_LOG\"]", "-o"])
        .arg(&out)
        .env("BPSC_EXAMPLE_DIR", &ex)
        .env("FAKE_NOTIFY_LOG", &log)
        .output()
        .expect("bpsc");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let post = out.join("htcondor/bpsc-post.sh");
    for (args, event) in [(["final", "0", "0", "0"], "done"), (["final", "0", "2", "1"], "failure")] {
        let _ = Command::new("/bin/sh").arg(&post).args(args).env_clear().env("PATH", "/usr/bin:/bin").status().expect("sh");
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(text.lines().last().is_some_and(|l| l.split('\t').nth(1) == Some(event)), "{event}: {text:?}");
    }
}

/// A node job on a shared filesystem, run by hand: the launcher with the arguments DAGMan
/// would pass runs the real wrapper, which runs the payload and writes its provenance record.
#[test]
fn launcher_runs_the_wrapper_like_a_node_job() {
    let dir = compile("drp");
    let d = parse_dag(&dir.join("workflow.dag"));
    let (node, (sub, _)) = d.nodes.iter().find(|(_, (s, noop))| !noop && s == "htcondor/make_summary.sub").expect("make_summary node");
    let group = sub.trim_start_matches("htcondor/").trim_end_matches(".sub");
    // What DAGMan runs: the submit file's arguments with $(JOB) the node name.
    let o = Command::new(dir.join("htcondor/bpsc-job.sh"))
        .args([env!("CARGO_BIN_EXE_bpsc"), "--group", group, "--job", node])
        .current_dir(&dir)
        .env("BPSC_EXAMPLE_DIR", repo().join("examples"))
        .env("BPSC_SCRATCH", dir.join("../scratch"))
        .env("BPSC_SETUP", "export BPSC_TEST_SETUP=sourced")
        .env("FAKE_TASK_SLEEP", "0")
        .output()
        .expect("launcher");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join(format!("provenance/{node}.1.json"))).expect("record")).expect("json");
    assert_eq!(rec["exit_code"], 0);
    assert_eq!(rec["group"], group);
    assert!(dir.join(format!("logs/{group}/{node}.1.out")).is_file());
    // A failing setup never starts the wrapper.
    let o = Command::new(dir.join("htcondor/bpsc-job.sh"))
        .args([env!("CARGO_BIN_EXE_bpsc"), "--group", group, "--job", node])
        .current_dir(&dir)
        .env("BPSC_SETUP", "false")
        .output()
        .expect("launcher");
    assert_eq!(o.status.code(), Some(70));
}

/// Many jobs at a site without a shared filesystem: task tables are sharded so that each job
/// transfers at most SHARD lines; containers use the container universe.
#[test]
fn non_shared_fs_groups_are_sharded() {
    let src = tmpdir("shard-src");
    std::fs::write(
        src.join("big.bps"),
        r#"bps 1
site remote { backend = htcondor, shared_fs = false, scratch = "/lscratch/{campaign}" }
dimension x = 0..2500
pipeline p {
  step work over (x) {
    run = "echo {x}"
    software = container("ghcr.io/lsst/scipipe:al9-w_2024_48")
    retry_unless_exit = [3]
    retries = 1
    memory_growth = 2.0
  }
}
campaign "big" { use p, coverage = x, site = remote }
"#,
    )
    .expect("bps");
    let dir = compile_file(&src.join("big.bps"), "shard");
    let d = parse_dag(&dir.join("workflow.dag"));
    check_structure(&dir, &d);
    let shards: BTreeSet<String> = d.vars.values().filter_map(|v| v.get("bpsc_g").cloned()).collect();
    assert_eq!(shards, ["work.s0", "work.s1", "work.s2"].iter().map(|s| s.to_string()).collect());
    for s in &shards {
        let idx = std::fs::metadata(dir.join(format!("tasks/{s}.idx"))).expect("idx").len();
        assert!(idx / 8 <= 1000, "{s}: {} tasks", idx / 8);
    }
    // Single code: native UNLESS-EXIT, no POST script.
    let n = d.nodes.keys().find(|n| n.starts_with("work_")).expect("node");
    assert_eq!(d.retry[n], (1, Some(3)));
    assert!(d.post.keys().all(|k| d.final_node.as_ref().is_some_and(|f| &f.0 == k)), "only the FINAL node has a POST script");
    let sub = std::fs::read_to_string(dir.join("htcondor/work.sub")).expect("sub");
    assert!(sub.contains("universe                 = container"));
    assert!(sub.contains("container_image          = docker://ghcr.io/lsst/scipipe:al9-w_2024_48"));
    // memory_growth_on = oom (the default, version 1 files too): growth in place after a memory hold.
    assert!(sub.contains("pow(2.0, NumJobStarts)") && sub.contains("periodic_release"), "{sub}");
    assert_eq!(list_files(&dir).iter().filter(|f| f.ends_with(".sub")).count(), 2, "work.sub + provenance.sub");
    offline_check(&dir);
}

#[test]
fn output_is_deterministic() {
    for ex in ["drp", "special_programs"] {
        let (a, b) = (compile(ex), compile(ex));
        let fa = list_files(&a);
        assert_eq!(fa, list_files(&b));
        for f in &fa {
            assert!(std::fs::read(a.join(f)).expect("a") == std::fs::read(b.join(f)).expect("b"), "{ex}: {f} differs");
        }
    }
}

/// Snapshot: every file under htcondor/, the DAG's head and FINAL block, and counts.
#[test]
fn snapshots() {
    for ex in EXAMPLES {
        let dir = compile(ex);
        let d = parse_dag(&dir.join("workflow.dag"));
        let dag = std::fs::read_to_string(dir.join("workflow.dag")).expect("dag");
        let files = list_files(&dir);
        let mut s = String::new();
        s.push_str(&format!("files: {}\n", files.len()));
        for f in files.iter().filter(|f| !f.starts_with("tasks/")) {
            s.push_str(&format!("  {f}\n"));
        }
        s.push_str(&format!("task tables: {}\n", files.iter().filter(|f| f.starts_with("tasks/")).count()));
        s.push_str(&format!("DAG lines by command: {:?}\n", d.counts));
        s.push_str(&format!("DAG bytes: {}\n\n== workflow.dag (first 40 lines) ==\n", dag.len()));
        for l in dag.lines().take(40) {
            s.push_str(l);
            s.push('\n');
        }
        s.push_str("...\n== workflow.dag (from FINAL) ==\n");
        let mut on = false;
        for l in dag.lines() {
            on |= l.starts_with("# Provenance");
            if on {
                s.push_str(l);
                s.push('\n');
            }
        }
        for f in files.iter().filter(|f| f.starts_with("htcondor/")) {
            s.push_str(&format!("\n== {f} ==\n"));
            s.push_str(&std::fs::read_to_string(dir.join(f)).expect("read"));
        }
        insta::with_settings!({snapshot_path => repo().join("snapshots/htcondor"), prepend_module_to_snapshot => false}, {
            insta::assert_snapshot!(format!("htcondor_{ex}"), s);
        });
    }
}

/// A transfer-mode node job run by hand in a fake sandbox: only what transfer_input_files
/// names is there (the bpsc binary, the task-table shard with its relative path); the job
/// must leave its record and logs in `provenance/` and `logs/` for transfer_output_files.
#[test]
fn launcher_runs_in_a_transfer_sandbox() {
    let dir = compile("afterburner");
    let d = parse_dag(&dir.join("workflow.dag"));
    let (node, (sub, _)) = d.nodes.iter().find(|(_, (_, noop))| !noop).expect("a node");
    let text = std::fs::read_to_string(dir.join(sub)).expect("sub");
    assert!(text.contains("should_transfer_files    = YES"), "afterburner uses a container: transfer mode");
    let group =
        text.lines().find_map(|l| l.strip_prefix("bpsc_group")).map(|r| r.trim_start_matches([' ', '=']).to_string()).expect("group");
    let idx = &d.vars[node]["bpsc_i"];
    // On the access point, the node's PRE script numbers the attempt from the records there:
    // two earlier attempts (say, before a rescue DAG) make this one attempt 3.
    for a in [1, 2] {
        std::fs::write(dir.join(format!("provenance/{node}.{a}.json")), "{}\n").expect("record");
    }
    let pre = &d.pre[node];
    let o = Command::new(dir.join(&pre[0])).args(&pre[1..]).current_dir(&dir).output().expect("pre script");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::read_to_string(dir.join(format!("htcondor/attempt/{node}"))).expect("attempt file"), "3\n");
    let sandbox = dir.join("../sandbox");
    std::fs::create_dir_all(sandbox.join("tasks")).expect("mkdir");
    std::fs::create_dir_all(sandbox.join("htcondor/attempt")).expect("mkdir");
    // Exactly what transfer_input_files names (besides the binary), paths kept.
    let inputs = text.lines().find_map(|l| l.strip_prefix("transfer_input_files")).expect("transfer_input_files");
    for f in
        inputs.trim_start_matches([' ', '=']).split(',').map(str::trim).filter(|f| f.starts_with("tasks/") || f.starts_with("htcondor/"))
    {
        let f = f.replace("$(bpsc_group)", &group).replace("$(JOB)", node);
        std::fs::copy(dir.join(&f), sandbox.join(&f)).unwrap_or_else(|e| panic!("{f}: {e}"));
    }
    std::fs::copy(dir.join("htcondor/bpsc-job.sh"), sandbox.join("condor_exec.exe")).expect("copy");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_bpsc"), sandbox.join("bpsc")).expect("symlink");
    let o = Command::new(sandbox.join("condor_exec.exe"))
        // $(RETRY) + 1 is 1 here: the attempt file wins.
        .args(["./bpsc", "--group", &group, "--index", idx, "--attempt", "1", "--attempt-file", &format!("htcondor/attempt/{node}")])
        .current_dir(&sandbox)
        .env("BPSC_EXAMPLE_DIR", repo().join("examples"))
        .env("BPSC_SCRATCH", dir.join("../scratch"))
        .env("FAKE_TASK_SLEEP", "0")
        .output()
        .expect("launcher");
    let rec_path = sandbox.join(format!("provenance/{node}.3.json"));
    assert!(rec_path.is_file(), "no record: {}", String::from_utf8_lossy(&o.stderr));
    let rec: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(rec_path).expect("record")).expect("json");
    assert_eq!(rec["attempt"], 3);
    assert_eq!(rec["group"], group.as_str());
    assert!(sandbox.join(format!("logs/{group}/{node}.3.out")).is_file());
}

/// A campaign using the language 1.1 settings the HTCondor files carry: pass_env, a final
/// job, max_running per step and per cluster.
const V11: &str = r#"bps 1.1
site a { backend = htcondor, shared_fs = true }
dimension v = 0..6
dimension d = 0..2
pipeline p {
  step isr over (v, d) { run = "true", max_running = 5 }
  step cal over (v, d) after isr { run = "true", max_running = 7 }
  step coadd over (v) after cal { run = "true", max_running = 3 }
}
campaign c {
  use p
  coverage = v * d
  site = a
  pass_env = ["MY_PASSED"]
  env { FROM_ENV = "x" }
  cluster sfp { steps = [cal], by = [v], max_running = 2 }
  final report { run = "echo {campaign} > $MY_PASSED/report", when = always }
}
"#;

fn compile_v11(tag: &str, text: &str) -> Result<PathBuf, String> {
    let src = tmpdir(&format!("{tag}-src"));
    std::fs::write(src.join("c.bps"), text).expect("bps");
    let out = src.join("submit");
    let o = bpsc()
        .arg("compile")
        .arg(src.join("c.bps"))
        .args(["--backend", "htcondor", "--force", "-o"])
        .arg(&out)
        .env("MY_PASSED", "/data/passed it's")
        .env("NOT_PASSED", "must not leak")
        .output()
        .expect("bpsc");
    if o.status.success() {
        Ok(out)
    } else {
        Err(String::from_utf8_lossy(&o.stderr).into_owned())
    }
}

/// A job's environment is exactly the campaign's (env { } and the pass_env values captured at
/// compile time) plus bpsc's own variables: no getenv, nothing else of the compiling shell.
#[test]
fn job_environment_is_exactly_env_and_pass_env() {
    let dir = compile_v11("env", V11).expect("compile");
    let d = parse_dag(&dir.join("workflow.dag"));
    let Some(res) = simulate(&dir, &cases_for(&dir, &d, &["x"])) else { return };
    for r in res.iter().filter(|r| r["retry"] == 0) {
        let env = r["environment"].as_str().expect("environment");
        let env = env.trim_matches('"');
        let names: BTreeSet<&str> = env.split("' ").filter_map(|w| w.split('=').next()).map(str::trim).collect();
        let want: BTreeSet<&str> = ["FROM_ENV", "MY_PASSED"].into();
        assert_eq!(names, want, "{r}");
        assert!(env.contains("MY_PASSED='/data/passed it''s'"), "the value captured at compile time: {env}");
        assert!(!env.contains("must not leak"), "{env}");
        assert!(r.get("getenv").is_none(), "{r}");
    }
}

/// max_running: a DAGMan category per step or cluster with the smallest limit of the
/// cluster and its steps; the final job's node is the FINAL node, which runs after everything.
#[test]
fn max_running_and_the_final_job() {
    let dir = compile_v11("v11", V11).expect("compile");
    let d = parse_dag(&dir.join("workflow.dag"));
    check_structure(&dir, &d);
    assert_eq!(d.maxjobs, [("cluster-sfp".to_string(), 2), ("coadd".to_string(), 3), ("isr".to_string(), 5)].into());
    for (n, c) in &d.category {
        let want = if n.starts_with("sfp_") { "cluster-sfp" } else { n.split('_').next().unwrap_or_default() };
        assert_eq!(c, want, "{n}");
    }
    assert_eq!(d.category.len(), 12 + 6 + 6);
    // The provenance job carries the final job (the wrapper runs it after gathering), with the
    // final job's environment and its software setup, which may fail without stopping the
    // gathering.
    let (f, sub) = d.final_node.clone().expect("FINAL");
    assert_eq!(f, "provenance");
    let text = std::fs::read_to_string(dir.join(&sub)).expect("sub");
    assert!(text.contains("FROM_ENV='x' MY_PASSED='/data/passed it''s'"), "{text}");
    let setup =
        compile_v11("v11s", &V11.replace("site = a\n", "site = a\n  software = setup(\"source /opt/stack.sh\")\n")).expect("compile");
    let text = std::fs::read_to_string(setup.join(&sub)).expect("sub");
    assert!(text.contains("BPSC_SETUP='source /opt/stack.sh' BPSC_SETUP_OPTIONAL='1'"), "{text}");
    let line = std::fs::read_to_string(dir.join("tasks/provenance.jsonl")).unwrap_or_default();
    let spec = std::fs::read_to_string(dir.join("tasks/spec.json")).expect("spec");
    assert!(line.contains("report") || spec.contains("\"report\""), "the final job is in the task tables");
    // A final job cannot run in a container: the FINAL node runs on the access point.
    let err = compile_v11("v11c", &V11.replace("site = a\n", "site = a\n  software = container(\"img:1\")\n")).expect_err("refused");
    assert!(err.contains("E801") && err.contains("final job `report`"), "{err}");
}

/// The writers benchmark compares bpsc with a Python peer that computes and writes the same
/// DAG from the same tables (`tests/bench/fstring_same_dag.py`). Its time only means something
/// while its DAG is bpsc's: the same JOB lines, PARENT -> CHILD pairs, priorities, retries and
/// final node. A change to bpsc's DAG that the peer does not follow fails here, not silently in
/// a benchmark table.
#[test]
fn the_benchmarks_python_peer_writes_the_same_dag_as_bpsc() {
    let work = tmpdir("peer");
    let o = bpsc().args(["synth", "--jobs", "20000", "-o"]).arg(work.join("synth")).output().expect("run bpsc synth");
    assert!(o.status.success(), "synth failed: {}", String::from_utf8_lossy(&o.stderr));
    let submit = compile_file(&work.join("synth").join("campaign.bps"), "peer-bpsc");
    let peer = work.join("peer");
    let script = repo().join("tests/bench/fstring_same_dag.py");
    let Ok(o) = Command::new("python3").arg(&script).arg(work.join("synth")).arg(&peer).output() else {
        missing("python3 (for the benchmark peer)");
        return;
    };
    assert!(o.status.success(), "peer failed: {}", String::from_utf8_lossy(&o.stderr));
    let same = Command::new("python3")
        .arg(&script)
        .arg("--compare")
        .arg(submit.join("workflow.dag"))
        .arg(peer.join("workflow.dag"))
        .output()
        .expect("python3 ran a moment ago");
    let report = String::from_utf8_lossy(&same.stdout);
    assert!(same.status.success(), "the peer's DAG differs from bpsc's: {report}");
    let v: serde_json::Value = serde_json::from_str(report.trim()).expect("compare prints JSON");
    let d = parse_dag(&submit.join("workflow.dag"));
    assert_eq!(v["nodes"].as_u64(), Some(d.nodes.len() as u64 + 1), "{report}");
    assert_eq!(v["edges"].as_u64(), Some(d.edges.len() as u64), "{report}");
    assert!(d.edges.len() > 20_000, "a 20k-job campaign has more than 20k edges: {}", d.edges.len());

    // And the comparison is not blind: a DAG with one edge taken away is different.
    let text = std::fs::read_to_string(peer.join("workflow.dag")).expect("peer DAG");
    let cut: String = text.lines().filter(|l| !l.starts_with("PARENT join_0")).map(|l| format!("{l}\n")).collect();
    std::fs::write(peer.join("cut.dag"), cut).expect("write cut DAG");
    let differs = Command::new("python3")
        .arg(&script)
        .arg("--compare")
        .arg(submit.join("workflow.dag"))
        .arg(peer.join("cut.dag"))
        .output()
        .expect("python3");
    assert_eq!(differs.status.code(), Some(1), "{}", String::from_utf8_lossy(&differs.stdout));
}
