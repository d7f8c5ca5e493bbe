//! The Nextflow backend: structure, semantics and safety of `main.nf`, `nextflow.config` and
//! the job tables.
//!
//! * `structural_*`: from the generated files alone (the workflow block of `main.nf`, the
//!   process blocks, the node and edge tables), rebuild the (parent job, child job) pairs the
//!   channel wiring enforces and compare them with the IR's edges, for every example.
//! * `sim_*`: execute the generated `main.nf` with Groovy on `backends/nextflow/nf-sim.groovy`
//!   (a model of Nextflow's operators and processes) and compare what each task waited for
//!   with the IR; inject failures; run a small campaign end to end with `bpsc wrap`.
//! * `syntax_*`: parse every generated file with Groovy (`../shared/engines/nf-syntax-check.sh`).
//! * `hostile_*`: data ID values such as `../../etc` or `$(touch PWNED)` stay inert.
//!
//! Tools: Groovy (`apt-get install --no-install-recommends groovy`, installed by
//! nf-syntax-check.sh when run as root) and bash.  When one is missing a test says so and
//! passes, except under CI (`CI` set), where it fails.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use bpsc::ir::{Ir, JobKind};

const EXAMPLES: &[(&str, &str)] = &[
    ("drp", "examples/drp/drp.bps"),
    ("nightly_calib", "examples/nightly_calib/nightly_calib.bps"),
    ("afterburner", "examples/afterburner/afterburner.bps"),
    ("special_programs", "examples/special_programs/special_programs.bps"),
];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fresh directory under Cargo's target tmp dir.
fn fresh(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("nextflow_backend").join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("create test dir");
    d
}

/// A tool or reference is missing: fail under CI, else say so loudly and skip.
fn missing(what: &str) {
    if std::env::var("CI").is_ok() {
        panic!("{what} (required when CI is set)");
    }
    eprintln!("NOTE: SKIPPED: {what}");
}

fn shared() -> Option<PathBuf> {
    let p = repo().join("../shared");
    if p.join("engines/nf-syntax-check.sh").is_file() {
        Some(p)
    } else {
        missing(&format!("../shared is absent ({}): cannot run shared/engines/nf-syntax-check.sh", p.display()));
        None
    }
}

fn have(cmd: &str) -> bool {
    Command::new("sh").arg("-c").arg(format!("command -v {cmd} >/dev/null 2>&1")).status().is_ok_and(|s| s.success())
}

/// Groovy for nf-sim: present, or installed by shared/engines/nf-syntax-check.sh (as root).
fn groovy() -> bool {
    if have("groovy") {
        return true;
    }
    if let Some(sh) = shared() {
        let probe = fresh("groovy_probe").join("probe.nf");
        let _ = std::fs::write(&probe, "workflow { }\n");
        let _ = Command::new(sh.join("engines/nf-syntax-check.sh")).arg(&probe).output();
    }
    if have("groovy") {
        return true;
    }
    missing("groovy is not installed (apt-get install --no-install-recommends groovy): cannot execute main.nf with nf-sim.groovy");
    false
}

fn lower(file: &Path) -> Ir {
    let a = bpsc::cli::CompileArgs { file: file.to_path_buf(), ..Default::default() };
    let mut err = Vec::new();
    match bpsc::cli::lower_file(&bpsc::fs::RealFs, &a, &mut err) {
        Ok((ir, _)) => ir,
        Err(code) => panic!("{} does not lower (exit {code}):\n{}", file.display(), String::from_utf8_lossy(&err)),
    }
}

fn compile(file: &Path, name: &str) -> (Ir, PathBuf) {
    let ir = lower(file);
    let dir = fresh(name);
    let w = common::emit("nextflow", &ir, &dir).expect("nextflow backend writes");
    assert_eq!(w.submit_command.split_whitespace().take(3).collect::<Vec<_>>(), ["nextflow", "run", "main.nf"]);
    (ir, dir)
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn ir_edges(ir: &Ir) -> BTreeSet<(String, String)> {
    ir.edges.iter().map(|&(p, c)| (ir.job_id(p), ir.job_id(c))).collect()
}

// ------------------------------------------------------------------ campaigns written by tests

const E2E_CSV: &str = "visit,detector,tract\n1,0,10\n1,1,10\n1,1,11\n2,0,11\n2,1,11\n3,0,10\n3,1,12\n";

/// A small campaign with every wiring shape: one-to-one (stage-out), gather (coadd <- warps),
/// relational (warps <- calibrate through `overlap`), a size cluster, broadcast and barrier
/// (summary after coadd), a serial order (a cyclic group cut into layers), archive (stage-out),
/// discard (cleanup), retries with a filter and memory growth, notify.
fn e2e_bps(root: &Path) -> String {
    let r = root.display();
    format!(
        r#"bps 1

defaults {{
  memory            = 1GiB
  walltime          = 10m
  retries           = 2
  retry_unless_exit = [3]
  memory_growth     = 2.0
}}

site here {{
  backend   = slurm
  shared_fs = true
  scratch   = "{r}/scratch/{{campaign}}"
}}

dimension visit    = [1, 2, 3]
dimension detector = 0..2
dimension tract
relation overlap(visit, detector, tract) = table("data/overlap.csv")

dataset raw(visit, detector)    {{ source = "file:///nonexistent/raw/{{visit}}/{{detector}}.fits", stage = none }}
dataset calexp(visit, detector) {{ persist = archive, archive = "file://{r}/archive/{{campaign}}/calexp/{{visit}}/{{detector}}.txt" }}
dataset warp(visit, tract)      {{ persist = discard }}
dataset coadd(tract)            {{ persist = archive, archive = "file://{r}/archive/{{campaign}}/coadd/{{tract}}.txt" }}

pipeline p {{
  step calibrate over (visit, detector) {{
    inputs  = [raw]
    outputs = [calexp]
    run     = "$BPSC_EXAMPLE_DIR/bin/fake_task.sh --task={{step}} --data-id={{data_id}} --attempt={{attempt}} -- {{outputs}}"
  }}
  step make_warp over (visit, tract) {{
    inputs  = [calexp]
    outputs = [warp]
    run     = "$BPSC_EXAMPLE_DIR/bin/fake_task.sh --task={{step}} --data-id={{data_id}} --attempt={{attempt}} -- {{outputs}}"
  }}
  step coadd over (tract) {{
    inputs  = [warp]
    outputs = [coadd]
    run     = "$BPSC_EXAMPLE_DIR/bin/fake_task.sh --task={{step}} --data-id={{data_id}} --attempt={{attempt}} -- {{outputs}}"
  }}
  step summary over () after coadd {{
    outputs = [summary]
    run     = "$BPSC_EXAMPLE_DIR/bin/fake_task.sh --task={{step}} --attempt={{attempt}} -- {{outputs}}"
  }}
  order coadd serial by tract
}}

campaign "e2e-nf" {{
  use p
  coverage = overlap
  site     = here
  cluster warps {{ steps = [make_warp], size = 2 }}
  notify {{
    on         = [failure, done, slow]
    slow_after = 1s
    command    = "$BPSC_EXAMPLE_DIR/bin/notify.sh {{campaign}} {{event}} {{step}}"
  }}
}}
"#
    )
}

fn write_e2e(name: &str) -> (PathBuf, PathBuf) {
    let root = fresh(name);
    std::fs::create_dir_all(root.join("data")).expect("mkdir");
    std::fs::write(root.join("data/overlap.csv"), E2E_CSV).expect("write csv");
    let bps = root.join("e2e.bps");
    std::fs::write(&bps, e2e_bps(&root)).expect("write bps");
    (root, bps)
}

/// Data ID values that must stay inert.
const HOSTILE: &[&str] = &[
    "../../etc",
    "$(touch PWNED)",
    "a b",
    "it's",
    "\"q\"",
    "x;y|z&",
    "`touch PWNED2`",
    "tab\there",
    "new\nline",
    "-rf",
    "*",
    "{name}",
    "%2e%2e",
    "ünï",
    "${HOME}",
];

const HOSTILE_CAMPAIGN: &str = "evil'; $(touch PWNED4) \"x\" `y`";

fn write_hostile(name: &str) -> (PathBuf, PathBuf) {
    let root = fresh(name);
    std::fs::create_dir_all(root.join("data")).expect("mkdir");
    let mut csv = String::from("name\n");
    for v in HOSTILE {
        csv.push('"');
        csv.push_str(&v.replace('"', "\"\""));
        csv.push_str("\"\n");
    }
    std::fs::write(root.join("data/names.csv"), csv).expect("write csv");
    let r = root.display();
    let bps = format!(
        r#"bps 1

site here {{
  backend   = slurm
  shared_fs = true
  scratch   = "{r}/scratch/{{user}}"
  account   = "acct"
}}

dimension name = table("data/names.csv").name

dataset out(name) {{ persist = archive, archive = "file://{r}/archive/{{name}}.txt" }}
dataset mid(name) {{ persist = discard }}

pipeline p {{
  env {{ GREETING = "it's $(touch PWNED3) \"quoted\" `x` \\ back" }}
  step make over (name) {{
    outputs = [mid]
    run     = "$BPSC_EXAMPLE_DIR/bin/fake_task.sh --task={{step}} --data-id={{data_id}} --attempt={{attempt}} -- {{outputs}}"
  }}
  step use over (name) {{
    inputs  = [mid]
    outputs = [out]
    run     = "test \"$GREETING\" = \"it's \\$(touch PWNED3) \\\"quoted\\\" \\`x\\` \\\\ back\" && $BPSC_EXAMPLE_DIR/bin/fake_task.sh --task={{step}} --data-id='{{name}}' --attempt={{attempt}} -- {{outputs}}"
  }}
  step gather over () {{
    inputs  = [out]
    outputs = [summary]
    run     = "$BPSC_EXAMPLE_DIR/bin/fake_task.sh --task={{step}} --attempt={{attempt}} -- {{outputs}}"
  }}
}}

campaign "{camp}" {{
  use p
  coverage = name
  site     = here
  notify {{
    on      = [failure, done]
    command = "echo {{campaign}} {{event}} >> {r}/notify.log"
  }}
}}
"#,
        camp = HOSTILE_CAMPAIGN.replace('\\', "\\\\").replace('"', "\\\"")
    );
    let file = root.join("hostile.bps");
    std::fs::write(&file, bps).expect("write bps");
    (root, file)
}

// ------------------------------------------------------------------ reading the wiring back

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Join,
    Combine,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum InForm {
    AllRoots,
    JoinReady,
    RootsMixJoin,
}

#[derive(Debug, Default)]
struct Wiring {
    /// Process cnode -> task group (from `--group G` in its script).
    processes: BTreeMap<String, String>,
    joins: BTreeSet<String>,
    /// Child cnode -> (parent cnode, edge table, operator).
    evs: BTreeMap<String, Vec<(String, String, Op)>>,
    grouped: BTreeSet<String>,
    ungrouped: BTreeSet<String>,
    inputs: BTreeMap<String, InForm>,
    nodes: BTreeSet<String>,
}

/// Parse the process blocks and the workflow block of a generated main.nf.  Only the forms
/// the backend emits are accepted; anything else fails the test, so the reconstruction
/// below knows exactly what each line does in Nextflow.
fn parse_wiring(main: &str) -> Wiring {
    let mut w = Wiring::default();
    let mut cur: Option<String> = None;
    let mut in_wf = false;
    let mut defined: BTreeSet<String> = BTreeSet::new();
    for raw in main.lines() {
        let l = raw.trim();
        if let Some(rest) = l.strip_prefix("process ") {
            cur = rest.strip_suffix(" {").map(|s| s.to_string());
            continue;
        }
        if let Some(p) = &cur {
            if let Some(i) = l.find(" wrap ${shq(params.submit)} --group ") {
                let g = l[i + " wrap ${shq(params.submit)} --group ".len()..].split(' ').next().unwrap_or("").to_string();
                assert!(
                    l.ends_with("--index ${k as long}") || l.ends_with("--index ${k as long} || bpsc_rc=\\$?"),
                    "process {p}: wrap line {l}"
                );
                w.processes.insert(p.clone(), g);
            }
            if raw == "}" {
                cur = None;
            }
            continue;
        }
        if l == "workflow {" {
            in_wf = true;
            continue;
        }
        if !in_wf {
            continue;
        }
        if raw == "}" {
            break;
        }
        if l.is_empty() || l.starts_with("//") {
            continue;
        }
        let (lhs, rhs) = match l.strip_prefix("def ").and_then(|x| x.split_once(" = ")) {
            Some(x) => x,
            None => {
                // A process invocation: NAME(in_NAME)
                let name = l.strip_suffix(')').and_then(|x| x.split_once('(')).map(|(a, b)| (a.to_string(), b.to_string()));
                match name {
                    Some((a, b)) if b == format!("in_{a}") && w.processes.contains_key(&a) && defined.contains(&b) => continue,
                    _ => panic!("unexpected workflow line: {l}"),
                }
            }
        };
        if let Some(x) = lhs.strip_prefix("nodes_") {
            assert_eq!(rhs, format!("bpscTable('nodes/{x}')"));
            w.nodes.insert(x.to_string());
        } else if let Some(x) = lhs.strip_prefix("ev_") {
            let terms = split_mix(rhs);
            let mut v = Vec::new();
            for t in terms {
                let (parent, table, op) = parse_term(&t, x);
                assert!(defined.contains(&format!("done_{parent}")), "{lhs} uses done_{parent} before it is defined");
                v.push((parent, table, op));
            }
            w.evs.insert(x.to_string(), v);
        } else if let Some(x) = lhs.strip_prefix("ready_") {
            if rhs == format!("ev_{x}.map {{ r -> r[1] }}") {
                w.ungrouped.insert(x.to_string());
            } else if rhs
                == format!("ev_{x}.map {{ r -> [groupKey(r[1], r[2] as int), r[0]] }}.groupTuple().map {{ r -> r[0].toString() }}")
            {
                w.grouped.insert(x.to_string());
            } else {
                panic!("unexpected ready line: {l}");
            }
        } else if let Some(x) = lhs.strip_prefix("in_") {
            let form = if rhs == format!("nodes_{x}") {
                InForm::AllRoots
            } else if rhs == format!("nodes_{x}.join(ready_{x})") {
                InForm::JoinReady
            } else if rhs == format!("nodes_{x}.filter {{ r -> r[2] == '0' }}.mix(nodes_{x}.filter {{ r -> r[2] != '0' }}.join(ready_{x}))")
            {
                InForm::RootsMixJoin
            } else {
                panic!("unexpected input line: {l}");
            };
            w.inputs.insert(x.to_string(), form);
        } else if let Some(x) = lhs.strip_prefix("done_") {
            if rhs == format!("{x}.out.done") {
                assert!(w.processes.contains_key(x), "done_{x} from an unknown process");
            } else if rhs == format!("in_{x}.map {{ r -> r[0] }}") {
                w.joins.insert(x.to_string());
            } else {
                panic!("unexpected done line: {l}");
            }
        } else {
            panic!("unexpected definition: {l}");
        }
        assert!(defined.insert(lhs.to_string()), "{lhs} defined twice");
    }
    w
}

/// `A.mix(B, C)` -> [A, B, C] (split at top-level commas).
fn split_mix(e: &str) -> Vec<String> {
    // The first term ends where `.mix(` starts at depth 0.
    let b = e.as_bytes();
    let mut depth = 0i32;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'(' => depth += 1,
            b')' => depth -= 1,
            b'.' if depth == 0 && e[i..].starts_with(".mix(") => {
                let first = e[..i].to_string();
                let inner = e[i + 5..].strip_suffix(')').expect("mix(...) closes the expression");
                let mut out = vec![first];
                let (mut d, mut start) = (0i32, 0usize);
                for (k, c) in inner.char_indices() {
                    match c {
                        '(' => d += 1,
                        ')' => d -= 1,
                        ',' if d == 0 => {
                            out.push(inner[start..k].trim().to_string());
                            start = k + 1;
                        }
                        _ => {}
                    }
                }
                out.push(inner[start..].trim().to_string());
                return out;
            }
            _ => {}
        }
        i += 1;
    }
    vec![e.to_string()]
}

fn parse_term(t: &str, child: &str) -> (String, String, Op) {
    if let Some(rest) = t.strip_prefix("bpscTable('edges/") {
        // bpscTable('edges/P--C').combine(done_P, by: 0)
        let (table, tail) = rest.split_once("')").expect("table name");
        let parent = tail.strip_prefix(".combine(done_").and_then(|x| x.strip_suffix(", by: 0)")).expect("combine(done_P, by: 0)");
        assert_eq!(table, format!("{parent}--{child}"), "edge table name");
        (parent.to_string(), table.to_string(), Op::Combine)
    } else if let Some(rest) = t.strip_prefix("done_") {
        // done_P.join(bpscTable('edges/P--C'))
        let (parent, tail) = rest.split_once(".join(bpscTable('edges/").expect("join(bpscTable(...))");
        let table = tail.strip_suffix("'))").expect("table name");
        assert_eq!(table, format!("{parent}--{child}"), "edge table name");
        (parent.to_string(), table.to_string(), Op::Join)
    } else {
        panic!("unexpected event term: {t}")
    }
}

fn rows(p: &Path) -> Vec<Vec<String>> {
    read(p).lines().map(|l| l.split('\t').map(|s| s.to_string()).collect()).collect()
}

/// Rebuild the enforced (parent id, child id) pairs from the files and check every wiring
/// rule on the way.  Returns the pairs and the job ids per cnode.
/// (parent id, child id) pairs, and the job ids of each cnode.
type Reconstructed = (BTreeSet<(String, String)>, BTreeMap<String, Vec<String>>);

fn reconstruct(dir: &Path) -> Reconstructed {
    let main = read(&dir.join("main.nf"));
    let w = parse_wiring(&main);
    let tdir = dir.join("nextflow");
    // Node tables: (cnode, k) -> id, id -> parent count.
    let mut id_of: BTreeMap<(String, String), String> = BTreeMap::new();
    let mut n_of: BTreeMap<String, u64> = BTreeMap::new();
    let mut jobs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for c in &w.nodes {
        assert!(w.processes.contains_key(c) ^ w.joins.contains(c), "{c} is exactly one of process / join");
        for r in rows(&tdir.join("nodes").join(format!("{c}.tsv"))) {
            assert!(r.len() >= 3, "node row {r:?}");
            let n: u64 = r[2].parse().expect("parent count");
            assert!(r[0].bytes().all(|b| b.is_ascii_digit()), "index {r:?}");
            assert!(n_of.insert(r[1].clone(), n).is_none(), "job {} in two node rows", r[1]);
            assert!(id_of.insert((c.clone(), r[0].clone()), r[1].clone()).is_none(), "index {} twice in {c}", r[0]);
            jobs.entry(c.clone()).or_default().push(r[1].clone());
            // A process runs `bpsc wrap --group G --index K`: line K of tasks/G.jsonl is this job.
            if let Some(g) = w.processes.get(c) {
                let line = bpsc::submitdir::tasks::read_task(&dir, g, r[0].parse().expect("k")).expect("task line");
                let v: serde_json::Value = serde_json::from_str(&line).expect("task json");
                assert_eq!(v["id"].as_str(), Some(r[1].as_str()), "{c}: --group {g} --index {} runs another job", r[0]);
            }
        }
    }
    // Edges, table by table, as the operators read them.
    let mut pairs: BTreeSet<(String, String)> = BTreeSet::new();
    let mut into: BTreeMap<String, u64> = BTreeMap::new();
    let mut used_tables: BTreeSet<String> = BTreeSet::new();
    for (child, terms) in &w.evs {
        for (parent, table, op) in terms {
            assert!(used_tables.insert(table.clone()), "edge table {table} wired twice");
            let mut seen_parent: BTreeSet<String> = BTreeSet::new();
            for r in rows(&tdir.join("edges").join(format!("{table}.tsv"))) {
                assert_eq!(r.len(), 3, "edge row {r:?}");
                let p = id_of.get(&(parent.clone(), r[0].clone())).unwrap_or_else(|| panic!("{table}: no parent {}", r[0])).clone();
                let c = id_of.get(&(child.clone(), r[1].clone())).unwrap_or_else(|| panic!("{table}: no child {}", r[1])).clone();
                assert_eq!(r[2].parse::<u64>().ok(), n_of.get(&c).copied(), "{table}: parent count of {c}");
                if *op == Op::Join {
                    // join pairs one event per key: a parent with two children here would
                    // release only one of them.
                    assert!(seen_parent.insert(r[0].clone()), "{table} is joined but parent {} has several children", r[0]);
                }
                *into.entry(c.clone()).or_default() += 1;
                assert!(pairs.insert((p, c)), "duplicate edge in {table}");
            }
        }
    }
    let on_disk: BTreeSet<String> = std::fs::read_dir(tdir.join("edges"))
        .expect("edges dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().trim_end_matches(".tsv").to_string())
        .collect();
    assert_eq!(on_disk, used_tables, "every edge table is wired, once");
    // Release rules: a job starts when `n` events arrived (grouped when n > 1), jobs with
    // n = 0 come straight from the node table, and the input form matches.
    for c in &w.nodes {
        let ids = &jobs[c];
        let ns: Vec<u64> = ids.iter().map(|i| n_of[i]).collect();
        for i in ids {
            assert_eq!(into.get(i).copied().unwrap_or(0), n_of[i], "{c}: events into {i} vs its parent count");
        }
        let form = w.inputs.get(c).cloned().unwrap_or_else(|| panic!("no in_{c}"));
        let (roots, others) = (ns.contains(&0), ns.iter().any(|&n| n > 0));
        let want = match (roots, others) {
            (true, false) => InForm::AllRoots,
            (false, true) => InForm::JoinReady,
            _ => InForm::RootsMixJoin,
        };
        assert_eq!(form, want, "{c}: input form");
        if others {
            assert!(w.evs.contains_key(c), "{c} has parents but no events");
            if ns.iter().any(|&n| n > 1) {
                assert!(w.grouped.contains(c), "{c}: a job with several parents needs groupTuple");
            } else {
                assert!(w.ungrouped.contains(c) || w.grouped.contains(c));
            }
        } else {
            assert!(!w.evs.contains_key(c), "{c}: events for jobs without parents");
        }
    }
    (pairs, jobs)
}

#[test]
fn structural_channel_graph_gives_exactly_the_ir_edges() {
    let (_, e2e) = write_e2e("structural_e2e_src");
    let (_, hostile) = write_hostile("structural_hostile_src");
    let mut cases: Vec<(String, PathBuf)> = EXAMPLES.iter().map(|(n, p)| (n.to_string(), repo().join(p))).collect();
    cases.push(("e2e".into(), e2e));
    cases.push(("hostile".into(), hostile));
    for (name, file) in cases {
        let (ir, dir) = compile(&file, &format!("structural_{name}"));
        let (pairs, jobs) = reconstruct(&dir);
        assert_eq!(pairs, ir_edges(&ir), "{name}: enforced pairs vs IR edges");
        // Every job but the provenance job is in exactly one node table.
        let all: BTreeSet<String> = jobs.values().flatten().cloned().collect();
        let want: BTreeSet<String> =
            (0..ir.jobs.len() as u32).filter(|&j| ir.jobs[j as usize].kind != JobKind::Provenance).map(|j| ir.job_id(j)).collect();
        assert_eq!(all, want, "{name}: jobs in node tables");
        assert_eq!(all.len(), jobs.values().map(|v| v.len()).sum::<usize>(), "{name}: a job in two tables");
        // The provenance job runs in workflow.onComplete.
        let main = read(&dir.join("main.nf"));
        if ir.jobs.iter().any(|j| j.kind == JobKind::Provenance) {
            assert!(
                main.contains("'wrap', params.submit.toString(), '--group', 'provenance', '--index', '0'"),
                "{name}: provenance in onComplete"
            );
        }
        eprintln!("{name}: {} jobs, {} edges reconstructed from the tables and the wiring", all.len(), pairs.len());
    }
}

#[test]
fn structural_cyclic_groups_are_layered() {
    // `order coadd serial by tract` makes coadd -> join -> coadd: the coadd group is cut.
    let (_, file) = write_e2e("layered_src");
    let (ir, dir) = compile(&file, "layered");
    let w = parse_wiring(&read(&dir.join("main.nf")));
    let coadd: Vec<&String> = w.processes.iter().filter(|(_, g)| g.as_str() == "coadd").map(|(p, _)| p).collect();
    let n_coadd = ir.steps.iter().find(|s| s.name == "coadd").map(|s| s.quanta.len()).unwrap_or(0);
    assert_eq!(coadd.len(), n_coadd, "one process per serial layer of coadd: {coadd:?}");
    assert!(coadd.iter().all(|p| p.starts_with("p_coadd_")));
}

#[test]
fn tables_are_data_and_the_script_stays_small() {
    let (ir, dir) = compile(&repo().join("examples/special_programs/special_programs.bps"), "small_script");
    let main = read(&dir.join("main.nf"));
    // No job id is inlined in the script: they are all in the tables.
    for j in 0..ir.jobs.len() as u32 {
        let id = ir.job_id(j);
        if ir.jobs[j as usize].kind == JobKind::Compute {
            assert!(!main.contains(&id), "job id {id} inlined in main.nf");
        }
    }
    let lines = main.lines().count();
    assert!(lines < 600, "main.nf has {lines} lines");
}

#[test]
fn output_is_deterministic() {
    for (name, p) in EXAMPLES {
        let ir = lower(&repo().join(p));
        let (a, b) = (fresh(&format!("det_a_{name}")), fresh(&format!("det_b_{name}")));
        common::emit("nextflow", &ir, &a).expect("write a");
        common::emit("nextflow", &lower(&repo().join(p)), &b).expect("write b");
        let fa = common::list_files(&a);
        assert_eq!(fa, common::list_files(&b), "{name}: file list");
        for f in fa {
            assert_eq!(std::fs::read(a.join(&f)).ok(), std::fs::read(b.join(&f)).ok(), "{name}: {f} differs between two compilations");
        }
    }
}

#[test]
fn directives_follow_the_settings() {
    let (_, dir) = compile(&repo().join("examples/drp/drp.bps"), "directives_drp");
    let main = read(&dir.join("main.nf"));
    // measure: memory_growth 2.0, retries 2, retry_unless_exit [2] (from defaults), 12 GiB,
    // growing up to the site's max_memory (480GiB = 491520 MiB).
    let block = process_block(&main, "p_measure");
    assert!(
        block.contains("memory { \"${Math.min(491520L, Math.ceil(12288.0d * Math.pow(2d, task.attempt - 1)) as long)} MB\" }"),
        "{block}"
    );
    assert!(block.contains("maxRetries 2"), "{block}");
    assert!(block.contains("errorStrategy { (task.exitStatus in [2]) ? 'ignore' : (task.attempt <= 2 ? 'retry' : 'ignore') }"), "{block}");
    assert!(block.contains("tag \"${id}\""));
    assert!(block.contains("queue 'milano'"));
    assert!(block.contains("beforeScript 'source /sdf/group/rubin/sw/w_2024_46/loadLSST.bash && setup lsst_distrib'"));
    assert!(block.contains("export OMP_NUM_THREADS=1"));
    let cfg = read(&dir.join("nextflow.config"));
    assert!(
        cfg.contains(
            "withName: 'p_measure' {\n                clusterOptions = '--account=rubin:production --qos=normal --exclude=sdfmilan072'"
        ),
        "{cfg}"
    );
    // The warps size-cluster has chunks of 20 and 11 quanta: walltime per job from the table.
    let warps = process_block(&main, "p_cluster_warps");
    assert!(warps.contains("time { \"${wt}s\" }") && warps.contains("val(mem), val(cpu), val(wt), val(dsk)"), "{warps}");
    let rows = rows(&dir.join("nextflow/nodes/p_cluster_warps.tsv"));
    let times: BTreeSet<&str> = rows.iter().map(|r| r[5].as_str()).collect();
    assert_eq!(times.len(), 2, "two walltimes: {times:?}");
    // nightly_calib: on_failure = abort -> terminate; hosts -> condor requirements.
    let (_, dir) = compile(&repo().join("examples/nightly_calib/nightly_calib.bps"), "directives_nightly");
    let main = read(&dir.join("main.nf"));
    let certify = process_block(&main, "p_certify");
    assert!(certify.contains("'terminate'") && !certify.contains("'ignore'"), "abort campaign terminates: {certify}");
    let cfg = read(&dir.join("nextflow.config"));
    assert!(cfg.contains("requirements = (Machine == "), "{cfg}");
    // afterburner: container, max_jobs.
    let (_, dir) = compile(&repo().join("examples/afterburner/afterburner.bps"), "directives_afterburner");
    let main = read(&dir.join("main.nf"));
    assert!(main.contains("container 'ghcr.io/lsst/scipipe:al9-w_2024_48'") && main.contains("maxForks 10"));
}

fn process_block<'a>(main: &'a str, name: &str) -> &'a str {
    let start = main.find(&format!("process {name} {{")).unwrap_or_else(|| panic!("no process {name}"));
    let end = main[start..].find("\n}\n").map(|e| start + e).unwrap_or(main.len());
    &main[start..end]
}

// ------------------------------------------------------------------ Groovy

#[test]
fn syntax_every_generated_file_parses_with_groovy() {
    let Some(sh) = shared() else { return };
    let (_, e2e) = write_e2e("syntax_e2e_src");
    let (_, hostile) = write_hostile("syntax_hostile_src");
    let mut files = Vec::new();
    let mut cases: Vec<(String, PathBuf)> = EXAMPLES.iter().map(|(n, p)| (n.to_string(), repo().join(p))).collect();
    cases.push(("e2e".into(), e2e));
    cases.push(("hostile".into(), hostile));
    for (name, file) in cases {
        let (_, dir) = compile(&file, &format!("syntax_{name}"));
        files.push(dir.join("main.nf"));
        files.push(dir.join("nextflow.config"));
    }
    let out = Command::new(sh.join("engines/nf-syntax-check.sh")).args(&files).output().expect("run nf-syntax-check.sh");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    match out.status.code() {
        Some(0) => assert_eq!(text.matches("OK   ").count(), files.len(), "{text}"),
        Some(2) => missing(&format!("nf-syntax-check.sh could not run groovy: {text}")),
        _ => panic!("Groovy rejects generated files:\n{text}"),
    }
}

#[derive(Debug)]
struct SimTask {
    process: String,
    tag: String,
    group: String,
    index: String,
    status: String,
    attempts: u32,
    mems: Vec<String>,
    tokens: BTreeSet<String>,
}

struct SimOut {
    tasks: Vec<SimTask>,
    execs: Vec<String>,
    success: bool,
    ignored: u64,
}

fn sim(dir: &Path, extra: &[&str], env: &[(&str, String)]) -> Option<SimOut> {
    if !groovy() {
        return None;
    }
    let out = dir.join("sim.tsv");
    let mut cmd = Command::new(repo().join("backends/nextflow/nf-sim.sh"));
    cmd.arg(dir).arg(&out).args(extra);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let o = cmd.output().expect("run nf-sim.sh");
    assert!(o.status.success(), "nf-sim failed:\n{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    let mut s = SimOut { tasks: Vec::new(), execs: Vec::new(), success: false, ignored: 0 };
    for l in read(&out).lines() {
        let f: Vec<&str> = l.split('\t').collect();
        match f[0] {
            "task" => s.tasks.push(SimTask {
                process: f[1].into(),
                tag: f[2].into(),
                group: f[3].into(),
                index: f[4].into(),
                status: f[5].into(),
                attempts: f[6].parse().expect("attempts"),
                mems: f[7].split(',').map(|x| x.to_string()).collect(),
                tokens: f.get(8).map(|t| t.split(',').filter(|x| !x.is_empty()).map(|x| x.to_string()).collect()).unwrap_or_default(),
            }),
            "exec" => s.execs.push(f[1..].join("\t")),
            "end" => {
                s.success = f[1] == "true";
                s.ignored = f[2].parse().expect("ignored");
            }
            other => panic!("unexpected sim line {other}"),
        }
    }
    Some(s)
}

/// Parents of each job with join nodes contracted (a join node is a channel expression: a
/// child waits for the join's parents).  Job ids.
fn contracted_parents(ir: &Ir) -> BTreeMap<String, BTreeSet<String>> {
    let (off, pin) = ir.parents();
    let mut memo: BTreeMap<u32, BTreeSet<u32>> = BTreeMap::new();
    fn resolve(ir: &Ir, off: &[u32], pin: &[u32], j: u32, memo: &mut BTreeMap<u32, BTreeSet<u32>>) -> BTreeSet<u32> {
        if let Some(s) = memo.get(&j) {
            return s.clone();
        }
        let mut s = BTreeSet::new();
        for &p in &pin[off[j as usize] as usize..off[j as usize + 1] as usize] {
            if ir.jobs[p as usize].kind == JobKind::Join {
                s.extend(resolve(ir, off, pin, p, memo));
            } else {
                s.insert(p);
            }
        }
        memo.insert(j, s.clone());
        s
    }
    let mut out = BTreeMap::new();
    for j in 0..ir.jobs.len() as u32 {
        if matches!(ir.jobs[j as usize].kind, JobKind::Join | JobKind::Provenance) {
            continue;
        }
        let ps = resolve(ir, &off, &pin, j, &mut memo);
        out.insert(ir.job_id(j), ps.into_iter().map(|p| ir.job_id(p)).collect());
    }
    out
}

fn descendants(ir: &Ir, roots: &[u32]) -> BTreeSet<u32> {
    let (off, to) = ir.children();
    let mut seen: BTreeSet<u32> = BTreeSet::new();
    let mut stack: Vec<u32> = roots.to_vec();
    while let Some(j) = stack.pop() {
        for &c in &to[off[j as usize] as usize..off[j as usize + 1] as usize] {
            if seen.insert(c) {
                stack.push(c);
            }
        }
    }
    seen
}

#[test]
fn sim_each_task_starts_after_exactly_its_ir_parents() {
    let (_, e2e) = write_e2e("sim_e2e_src");
    let mut cases: Vec<(String, PathBuf)> = EXAMPLES.iter().map(|(n, p)| (n.to_string(), repo().join(p))).collect();
    cases.push(("e2e".into(), e2e));
    for (name, file) in cases {
        let (ir, dir) = compile(&file, &format!("sim_{name}"));
        let Some(s) = sim(&dir, &[], &[]) else { return };
        let want = contracted_parents(&ir);
        let mut seen: BTreeSet<String> = BTreeSet::new();
        for t in &s.tasks {
            assert_eq!(t.status, "ok", "{name}: {t:?}");
            assert!(seen.insert(t.tag.clone()), "{name}: {} ran twice", t.tag);
            let ps = want.get(&t.tag).unwrap_or_else(|| panic!("{name}: task {} is no IR job", t.tag));
            assert_eq!(&t.tokens, ps, "{name}: {} waited for other jobs than its IR parents", t.tag);
            // The task runs its own line of its group's table.
            let line = bpsc::submitdir::tasks::read_task(&dir, &t.group, t.index.parse().expect("index")).expect("task line");
            assert!(line.starts_with(&format!("{{\"id\":\"{}\"", t.tag)), "{name}: {} runs {line}", t.tag);
            assert!(t.process.starts_with("p_"));
        }
        assert_eq!(seen.len(), want.len(), "{name}: every job ran once");
        assert!(s.success && s.ignored == 0);
        assert!(
            s.execs.iter().any(|e| e.starts_with("bpsc wrap ") && e.ends_with(" --group provenance --index 0")),
            "{name}: {:?}",
            s.execs
        );
        eprintln!("{name}: {} tasks ran, each after exactly its IR parents", s.tasks.len());
    }
}

#[test]
fn sim_failures_stop_descendants_retry_and_abort() {
    let (ir, dir) = compile(&repo().join("examples/drp/drp.bps"), "sim_fail_drp");
    // The first compute job fails on every attempt with exit 1 (retried: not in [2]).
    let victim = (0..ir.jobs.len() as u32).find(|&j| ir.jobs[j as usize].kind == JobKind::Compute).expect("a compute job");
    let vid = ir.job_id(victim);
    let Some(s) = sim(&dir, &["--fail", &format!("{vid}=1")], &[]) else { return };
    let lost = descendants(&ir, &[victim]);
    let ran: BTreeMap<&str, &SimTask> = s.tasks.iter().map(|t| (t.tag.as_str(), t)).collect();
    let r = ir.settings_of(victim).resources.clone();
    let v = ran[vid.as_str()];
    assert_eq!((v.status.as_str(), v.attempts as i64), ("ignored", r.retries + 1), "{v:?}");
    // Memory grows per attempt.
    let mib = r.memory.div_ceil(1 << 20) as f64;
    let want: Vec<String> = (0..=r.retries).map(|a| format!("{}MB", (mib * r.memory_growth.powi(a as i32)).ceil() as u64)).collect();
    assert_eq!(v.mems, want);
    for j in 0..ir.jobs.len() as u32 {
        let kind = ir.jobs[j as usize].kind;
        if matches!(kind, JobKind::Join | JobKind::Provenance) || j == victim {
            continue;
        }
        let id = ir.job_id(j);
        if lost.contains(&j) {
            assert!(!ran.contains_key(id.as_str()), "{id} ran although {vid} failed");
        } else {
            assert_eq!(ran.get(id.as_str()).map(|t| t.status.as_str()), Some("ok"), "{id} is independent of {vid}");
        }
    }
    assert!(s.success && s.ignored == 1);
    assert!(s.execs.iter().any(|e| e.contains(" failure ")), "failure notification: {:?}", s.execs);
    // Exit 2 is in retry_unless_exit: no retry.
    let Some(s) = sim(&dir, &["--fail", &format!("{vid}=2")], &[]) else { return };
    let v = s.tasks.iter().find(|t| t.tag == vid).expect("victim");
    assert_eq!((v.status.as_str(), v.attempts), ("ignored", 1));
    // A first-attempt failure is retried and the run completes.
    let Some(s) = sim(&dir, &["--fail", &format!("{vid}=1@1")], &[]) else { return };
    let v = s.tasks.iter().find(|t| t.tag == vid).expect("victim");
    assert_eq!((v.status.as_str(), v.attempts), ("ok", 2));
    assert!(s.success && s.ignored == 0 && s.tasks.iter().all(|t| t.status == "ok"));
    assert!(s.execs.iter().any(|e| e.contains(" done ")), "{:?}", s.execs);

    // nightly_calib aborts on failure: the run terminates, provenance and notify still run.
    let (ir, dir) = compile(&repo().join("examples/nightly_calib/nightly_calib.bps"), "sim_fail_nightly");
    let victim = (0..ir.jobs.len() as u32).find(|&j| ir.jobs[j as usize].kind == JobKind::Compute).expect("a compute job");
    let Some(s) = sim(&dir, &["--fail", &format!("{}=1", ir.job_id(victim))], &[]) else { return };
    let v = s.tasks.iter().find(|t| t.tag == ir.job_id(victim)).expect("victim");
    assert_eq!(v.status, "terminated");
    assert!(!s.success);
    assert!(s.execs.iter().any(|e| e.contains("--group provenance")) && s.execs.iter().any(|e| e.contains(" failure")), "{:?}", s.execs);
}

fn bash_ok() -> bool {
    if have("bash") {
        true
    } else {
        missing("bash is not installed: cannot run the generated task scripts");
        false
    }
}

#[test]
fn sim_end_to_end_with_bpsc_wrap() {
    if !bash_ok() {
        return;
    }
    let (root, file) = write_e2e("e2e_run_src");
    let (ir, dir) = compile(&file, "e2e_run");
    let env = [
        ("BPSC_EXAMPLE_DIR", repo().join("examples").display().to_string()),
        ("FAKE_TASK_SLEEP", "0".into()),
        ("FAKE_NOTIFY_LOG", root.join("notify.log").display().to_string()),
        ("FAKE_TASK_LOG", root.join("task.log").display().to_string()),
        ("FAKE_TASK_FAIL_CALIBRATE", "visit=2,detector=1".into()),
        ("FAKE_TASK_FAIL_ATTEMPTS_CALIBRATE", "1".into()),
        ("FAKE_TASK_SLEEP_SUMMARY", "2.5".into()),
    ];
    let Some(s) = sim(&dir, &["--run", env!("CARGO_BIN_EXE_bpsc")], &env) else { return };
    assert!(s.success && s.tasks.iter().all(|t| t.status == "ok"), "{:?}", s.tasks);
    let retried: Vec<&str> = s.tasks.iter().filter(|t| t.attempts > 1).map(|t| t.tag.as_str()).collect();
    assert_eq!(retried, ["calibrate_2_1"]);
    // Archived outputs reached the archive; discarded warps were cleaned up.
    for (v, d) in [(1, 0), (1, 1), (2, 0), (2, 1), (3, 0), (3, 1)] {
        assert!(root.join(format!("archive/e2e-nf/calexp/{v}/{d}.txt")).is_file(), "calexp {v} {d}");
    }
    for t in [10, 11, 12] {
        assert!(root.join(format!("archive/e2e-nf/coadd/{t}.txt")).is_file(), "coadd {t}");
    }
    let warps: Vec<_> = std::fs::read_dir(root.join("scratch/e2e-nf/warp")).map(|d| d.filter_map(|e| e.ok()).collect()).unwrap_or_default();
    assert!(warps.is_empty(), "warps left in scratch: {warps:?}");
    // One provenance record per attempt, gathered by the onComplete job.
    let tasks: usize = s.tasks.iter().map(|t| t.attempts as usize).sum();
    let gathered = read(&dir.join("provenance/campaign.jsonl")).lines().count();
    assert_eq!(gathered, tasks, "records gathered");
    // The summary task outlived slow_after (1s): its watchdog notified; the fast tasks'
    // watchdogs were stopped when they finished, so a slow notice names a step only when
    // one of its attempts really took a second or more (a loaded machine slows any task).
    let mut slow_steps: BTreeSet<String> = BTreeSet::new();
    for l in read(&dir.join("provenance/campaign.jsonl")).lines() {
        let r: serde_json::Value = serde_json::from_str(l).expect("record");
        if r["seconds"].as_f64().unwrap_or(0.0) >= 1.0 {
            for q in r["quanta"].as_array().into_iter().flatten() {
                slow_steps.insert(q["step"].as_str().unwrap_or_default().to_string());
            }
        }
    }
    let notes = read(&root.join("notify.log"));
    let lines: Vec<&str> = notes.lines().collect();
    assert_eq!(lines.last(), Some(&"e2e-nf\tdone\t"), "{notes}");
    assert!(lines.contains(&"e2e-nf\tslow\tsummary"), "{notes}");
    for l in &lines[..lines.len() - 1] {
        let step = l.strip_prefix("e2e-nf\tslow\t").unwrap_or_else(|| panic!("unexpected notice {l:?}"));
        assert!(slow_steps.contains(step), "{step} was notified slow but no attempt of it took 1 s: {notes}");
    }
    // The serial order: coadd tracts ran in order, each after the previous one.
    let order: Vec<&str> = s.tasks.iter().filter(|t| t.group == "coadd").map(|t| t.tag.as_str()).collect();
    assert_eq!(order, ["coadd_10", "coadd_11", "coadd_12"]);
    assert_eq!(s.tasks.len(), ir.jobs.iter().filter(|j| !matches!(j.kind, JobKind::Join | JobKind::Provenance)).count());
}

// ------------------------------------------------------------------ hostile values

#[test]
fn hostile_data_ids_stay_inert() {
    let (root, file) = write_hostile("hostile_src");
    let (ir, dir) = compile(&file, "hostile");
    // Tables hold indices, counts and encoded job ids only.
    for sub in ["nextflow/nodes", "nextflow/edges"] {
        for e in std::fs::read_dir(dir.join(sub)).expect("tables").filter_map(|e| e.ok()) {
            let name = e.file_name().to_string_lossy().into_owned();
            assert!(name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b)), "table file name {name}");
            for r in rows(&e.path()) {
                for (i, f) in r.iter().enumerate() {
                    let ok = if i == 1 && sub.ends_with("nodes") {
                        f.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                    } else {
                        f.bytes().all(|b| b.is_ascii_digit() || b == b'-')
                    };
                    assert!(ok, "{name}: field {f:?}");
                }
            }
        }
    }
    // No data ID value reaches the script or the config.
    let main = read(&dir.join("main.nf"));
    let cfg = read(&dir.join("nextflow.config"));
    for v in ["../../etc", "$(touch PWNED)", "`touch PWNED2`", "it's", "x;y|z&", "tab\there", "new\nline", "%2e%2e", "ünï"] {
        assert!(!main.contains(v) && !cfg.contains(v), "{v:?} in main.nf or nextflow.config");
    }
    // Tags are the encoded job ids; each process input is (k, id, n).
    assert!(main.matches("tag \"${id}\"").count() >= 3);
    let (pairs, _) = reconstruct(&dir);
    assert_eq!(pairs, ir_edges(&ir));
    // Run it for real: every value processed, nothing executed from a value.
    if !bash_ok() {
        return;
    }
    let env = [("BPSC_EXAMPLE_DIR", repo().join("examples").display().to_string()), ("FAKE_TASK_SLEEP", "0".into())];
    let Some(s) = sim(&dir, &["--run", env!("CARGO_BIN_EXE_bpsc")], &env) else { return };
    assert!(s.success && s.tasks.iter().all(|t| t.status == "ok"), "{:?}", s.tasks.iter().filter(|t| t.status != "ok").collect::<Vec<_>>());
    for v in HOSTILE {
        let mut enc = String::new();
        for b in v.bytes() {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                enc.push(b as char);
            } else {
                enc.push_str(&format!("%{b:02X}"));
            }
        }
        assert!(root.join("archive").join(format!("{enc}.txt")).is_file(), "archive of {v:?} ({enc})");
    }
    // A command substitution would have created the file in the task's working directory
    // (under dir/sim-work), the submit or campaign directory, or the test's cwd.
    for p in ["PWNED", "PWNED2", "PWNED3", "PWNED4"] {
        for base in [root.clone(), dir.clone()] {
            let found = Command::new("find").arg(&base).arg("-name").arg(p).output().map(|o| o.stdout).unwrap_or_default();
            assert!(found.is_empty(), "{p} created under {}: {}", base.display(), String::from_utf8_lossy(&found));
        }
        assert!(!Path::new(p).exists() && !repo().join(p).exists(), "{p} created in the cwd");
    }
    assert_eq!(read(&root.join("notify.log")), format!("{HOSTILE_CAMPAIGN} done\n"));
}

// ------------------------------------------------------------------ snapshots

fn table_digest(dir: &Path) -> String {
    let mut s = String::new();
    for f in common::list_files(dir) {
        if !f.starts_with("nextflow/") {
            continue;
        }
        let text = read(&dir.join(&f));
        let n = text.lines().count();
        s.push_str(&format!("== {f} ({n} rows)\n"));
        for l in text.lines().take(3) {
            s.push_str(l);
            s.push('\n');
        }
    }
    s
}

#[test]
fn snapshots() {
    for (name, p) in EXAMPLES {
        let (_, dir) = compile(&repo().join(p), &format!("snap_{name}"));
        insta::with_settings!({snapshot_path => repo().join("snapshots/nextflow"), prepend_module_to_snapshot => false}, {
            insta::assert_snapshot!(format!("{name}_main_nf"), read(&dir.join("main.nf")));
            insta::assert_snapshot!(format!("{name}_nextflow_config"), read(&dir.join("nextflow.config")));
            insta::assert_snapshot!(format!("{name}_tables"), table_digest(&dir));
        });
    }
}

#[test]
fn unsafe_batch_options_are_refused() {
    // A value that would have to be quoted inside #SBATCH/condor lines is an error, not a
    // silently mangled option.
    let (root, file) = write_e2e("unsafe_opts_src");
    let text = read(&file).replace("shared_fs = true", "shared_fs = true\n  account   = \"rubin prod\"");
    std::fs::write(&file, text).expect("write");
    let ir = lower(&file);
    let err = common::emit("nextflow", &ir, &fresh("unsafe_opts")).expect_err("refused");
    assert_eq!(err.code, "E801", "{err:?}");
    assert!(err.message.contains("account `rubin prod`"), "{}", err.message);
    let _ = root;
}
