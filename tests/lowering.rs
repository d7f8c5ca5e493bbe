//! Lowering: IR invariants on every example, quanta and edges checked against numbers
//! computed independently of the implementation (by hand in examples/README.md, and by a
//! naive nested-loop builder here), determinism, `--steps`, and a property test comparing
//! the join-based builder with the naive one on random small campaigns.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use bpsc::check::{check, Options};
use bpsc::fs::{MemFs, RealFs};
use bpsc::ir::{Ir, JobKind};
use bpsc::lower::{lower, LowerOptions};
use proptest::prelude::*;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn lower_path(fs: &dyn bpsc::fs::Fs, p: &Path, opts: LowerOptions, sets: &[&str]) -> Ir {
    let c = check(fs, p, &Options { sets: sets.iter().map(|s| s.to_string()).collect(), ..Default::default() });
    assert!(!c.has_errors(), "{}: {:#?}", p.display(), c.diags.items);
    let l = lower(&c, &opts);
    l.ir.unwrap_or_else(|| panic!("{}: {:#?}", p.display(), l.diags))
}

/// Acyclic, no dangling or duplicate edges, no self-loops, one provenance job without
/// edges, every quantum in exactly one compute job.
fn assert_well_formed(ir: &Ir) {
    let n = ir.jobs.len() as u32;
    for w in ir.edges.windows(2) {
        assert!(w[0] < w[1], "edges not sorted/unique: {:?}", w);
    }
    for &(p, c) in &ir.edges {
        assert!(p < n && c < n, "dangling edge {p}->{c} with {n} jobs");
        assert_ne!(p, c, "self-loop on {p}");
    }
    assert!(bpsc::lower::graph::job_cycle(ir.jobs.len(), &ir.edges).is_none(), "cycle in IR");
    let prov: Vec<usize> = ir.jobs.iter().enumerate().filter(|(_, j)| j.kind == JobKind::Provenance).map(|(i, _)| i).collect();
    assert_eq!(prov.len(), 1);
    assert!(ir.edges.iter().all(|&(p, c)| p as usize != prov[0] && c as usize != prov[0]));
    let mut seen = BTreeSet::new();
    for (j, job) in ir.jobs.iter().enumerate() {
        if job.kind == JobKind::Compute {
            for m in ir.job_members(j as u32) {
                assert!(seen.insert((m.step, m.q)), "quantum in two jobs");
                assert_eq!(ir.steps[m.step as usize].job_of[m.q as usize], j as u32);
            }
        }
    }
    let total: usize = ir.steps.iter().map(|s| s.quanta.len()).sum();
    assert_eq!(seen.len(), total);
    let ids: BTreeSet<String> = (0..n).map(|j| ir.job_id(j)).collect();
    assert_eq!(ids.len(), n as usize, "job ids are not unique");
    for id in &ids {
        assert!(id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'), "unsafe id {id}");
    }
}

fn quanta_counts(ir: &Ir) -> Vec<(String, usize)> {
    ir.steps.iter().map(|s| (s.name.clone(), s.quanta.len())).collect()
}

/// Quantum-level edges between two steps, following join nodes (compute jobs only).
fn step_pairs(ir: &Ir, from: &str, to: &str) -> BTreeSet<(u32, u32)> {
    let fs = ir.steps.iter().position(|s| s.name == from).unwrap() as u32;
    let ts = ir.steps.iter().position(|s| s.name == to).unwrap() as u32;
    let (off, to_) = ir.children();
    let mut out = BTreeSet::new();
    for (q, &j) in ir.steps[fs as usize].job_of.iter().enumerate() {
        let mut stack = vec![j];
        let mut seen = BTreeSet::new();
        while let Some(v) = stack.pop() {
            for &w in &to_[off[v as usize] as usize..off[v as usize + 1] as usize] {
                if !seen.insert(w) {
                    continue;
                }
                match ir.jobs[w as usize].kind {
                    JobKind::Join => stack.push(w),
                    JobKind::Compute => {
                        for m in ir.job_members(w) {
                            if m.step == ts {
                                out.insert((q as u32, m.q));
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    out
}

fn read_csv(p: &Path) -> Vec<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(p).unwrap();
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<String> = lines.next().unwrap().split(',').map(|s| s.trim().to_string()).collect();
    lines.map(|l| header.iter().cloned().zip(l.split(',').map(|s| s.trim().to_string())).collect()).collect()
}

#[test]
fn examples_lower_to_well_formed_irs_with_the_independently_computed_quanta() {
    // Expected counts from examples/README.md, computed there by hand/with a separate script.
    let cases: &[(&str, &[(&str, usize)], usize)] = &[
        (
            "examples/drp/drp.bps",
            &[
                ("isr", 184),
                ("characterize", 184),
                ("calibrate", 184),
                ("make_warp", 91),
                ("assemble_coadd", 23),
                ("detect", 23),
                ("merge_detections", 8),
                ("measure", 23),
                ("merge_measurements", 8),
                ("make_summary", 1),
            ],
            114,
        ),
        (
            "examples/nightly_calib/nightly_calib.bps",
            &[("bias_isr", 90), ("combine_bias", 9), ("flat_isr", 108), ("combine_flat", 27), ("certify", 1)],
            145,
        ),
        ("examples/afterburner/afterburner.bps", &[("calibrate", 20), ("write_source_table", 20)], 20),
        (
            "examples/special_programs/special_programs.bps",
            &[
                ("main_drp.isr", 213),
                ("main_drp.calibrate", 213),
                ("main_drp.make_warp", 82),
                ("main_drp.assemble_coadd", 26),
                ("ddf.assemble_coadd", 12),
                ("ddf.subtract_template", 12),
                ("ddf.associate", 6),
            ],
            351,
        ),
    ];
    for (file, expected, compute_jobs) in cases {
        let ir = lower_path(&RealFs, &repo().join(file), LowerOptions::default(), &[]);
        assert_well_formed(&ir);
        let got = quanta_counts(&ir);
        let want: Vec<(String, usize)> = expected.iter().map(|(s, n)| (s.to_string(), *n)).collect();
        assert_eq!(got, want, "{file}");
        assert_eq!(ir.compute_jobs(), *compute_jobs, "{file}: compute jobs");
    }
}

#[test]
fn drp_relational_edges_match_a_nested_loop_join_of_the_tables() {
    let ir = lower_path(&RealFs, &repo().join("examples/drp/drp.bps"), LowerOptions::default(), &[]);
    // calibrate(visit, detector) -> make_warp(visit, tract, patch) through overlap, within the
    // coverage `exposure * detector where visit != 30462`, computed with plain loops.
    let overlaps = read_csv(&repo().join("examples/drp/data/overlaps.csv"));
    let exposures = read_csv(&repo().join("examples/drp/data/exposures.csv"));
    let visits: BTreeSet<String> = exposures.iter().map(|r| r["visit"].clone()).filter(|v| v != "30462").collect();
    let mut want = BTreeSet::new();
    for o in &overlaps {
        if visits.contains(&o["visit"]) && o["detector"].parse::<i64>().unwrap() < 8 {
            want.insert((o["visit"].clone(), o["detector"].clone(), o["tract"].clone(), o["patch"].clone()));
        }
    }
    let pairs = step_pairs(&ir, "calibrate", "make_warp");
    let cal = ir.steps.iter().find(|s| s.name == "calibrate").unwrap();
    let warp = ir.steps.iter().find(|s| s.name == "make_warp").unwrap();
    // Calibrate is clustered by visit and make_warp in chunks, so the IR keeps the edges
    // between jobs: the job pairs holding the nested-loop pairs must be exactly the IR's
    // (a missing edge or a spurious one fails).
    let index = |st: &bpsc::ir::Step| -> BTreeMap<Vec<String>, usize> {
        (0..st.quanta.len()).map(|q| (st.quanta.row(q, &ir.dicts).iter().map(|v| v.to_string()).collect(), q)).collect()
    };
    let (cal_q, warp_q) = (index(cal), index(warp));
    let want_jobs: BTreeSet<(u32, u32)> = want
        .iter()
        .map(|(v, d, t, p)| {
            let a = cal_q[&vec![v.clone(), d.clone()]];
            let b = warp_q[&vec![v.clone(), t.clone(), p.clone()]];
            (cal.job_of[a], warp.job_of[b])
        })
        .collect();
    let got_jobs: BTreeSet<(u32, u32)> = pairs.iter().map(|&(a, b)| (cal.job_of[a as usize], warp.job_of[b as usize])).collect();
    assert_eq!(want_jobs, got_jobs, "calibrate -> make_warp job edges");
    assert_eq!(want.len(), 264, "the README's independent count");
}

#[test]
fn lowering_is_byte_for_byte_deterministic() {
    for file in ["examples/drp/drp.bps", "examples/special_programs/special_programs.bps"] {
        let a = lower_path(&RealFs, &repo().join(file), LowerOptions::default(), &[]);
        let b = lower_path(&RealFs, &repo().join(file), LowerOptions::default(), &[]);
        let (mut x, mut y) = (Vec::new(), Vec::new());
        bpsc::ir::jsonl::write_ir_jsonl(&a, &mut x).unwrap();
        bpsc::ir::jsonl::write_ir_jsonl(&b, &mut y).unwrap();
        assert!(x == y, "{file}: two lowerings differ");
        assert!(x.len() > 1000);
    }
}

/// Every example campaign under `examples/` (the other `.bps` files there are imported by these).
const EXAMPLE_CAMPAIGNS: [&str; 5] = [
    "drp/drp.bps",
    "afterburner/afterburner.bps",
    "nightly_calib/nightly_calib.bps",
    "special_programs/special_programs.bps",
    "step1_port/step1_port.bps",
];

/// `compile` lowers from the tables the checker kept (each imported with the codes parsing
/// would give) instead of parsing them again: every example, relation and domain tables
/// alike, gives the IR it gives without them.
#[test]
fn lowering_from_the_checkers_tables_equals_lowering_from_the_text() {
    let (mut compared, mut tables) = (0, 0);
    for file in EXAMPLE_CAMPAIGNS {
        let p = repo().join("examples").join(file);
        let mut ir = Vec::new();
        for keep in [false, true] {
            let c = check(&RealFs, &p, &Options { keep_tables: keep, ..Default::default() });
            assert!(!c.has_errors(), "{file}: {:#?}", c.diags.items);
            assert!(c.tables.by_path.values().all(|t| t.pre.is_some() == keep), "{file}: tables kept only when asked");
            tables += usize::from(keep) * c.tables.by_path.len();
            let l = lower(&c, &LowerOptions::default());
            let mut x = Vec::new();
            bpsc::ir::jsonl::write_ir_jsonl(&l.ir.unwrap_or_else(|| panic!("{file}: {:#?}", l.diags)), &mut x).unwrap();
            ir.push(x);
        }
        assert!(ir[0] == ir[1], "{file}: lowering from the kept tables gives another IR");
        compared += 1;
    }
    assert_eq!(compared, 5);
    assert!(tables >= 6, "the examples read relation and domain tables: {tables}");
}

#[test]
fn steps_subset_takes_outside_inputs_as_present() {
    let all = lower_path(&RealFs, &repo().join("examples/drp/drp.bps"), LowerOptions::default(), &[]);
    let sub = lower_path(
        &RealFs,
        &repo().join("examples/drp/drp.bps"),
        LowerOptions { steps: Some("make_warp..detect".into()), ..Default::default() },
        &[],
    );
    let names: Vec<&str> = sub.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["make_warp", "assemble_coadd", "detect"]);
    assert_well_formed(&sub);
    // Same quanta as in the full campaign; warps have no parents now.
    for s in &sub.steps {
        let full = all.steps.iter().find(|x| x.name == s.name).unwrap();
        assert_eq!(s.quanta, full.quanta);
    }
    let warp = &sub.steps[0];
    let (poff, pin) = sub.parents();
    for &j in &warp.job_of {
        let parents = &pin[poff[j as usize] as usize..poff[j as usize + 1] as usize];
        assert!(parents.iter().all(|&p| sub.jobs[p as usize].kind != JobKind::Compute), "make_warp still has compute parents");
    }
    let list = lower_path(
        &RealFs,
        &repo().join("examples/drp/drp.bps"),
        LowerOptions { steps: Some("isr,make_summary".into()), ..Default::default() },
        &[],
    );
    assert_eq!(list.steps.len(), 2);
}

#[test]
fn barriers_and_big_fan_ins_go_through_join_nodes() {
    // 40 a-quanta, 40 b-quanta, `after a all`: a naive graph has 1600 edges.
    let src = "bps 1\ndimension v = 0..40\npipeline p {\n  step a over (v) { run = \"true\" }\n  step b over (v) after a all { run = \"true\" }\n}\ncampaign c {\n  use p\n  coverage = v\n}\n";
    let fs = MemFs::new().with("c.bps", src);
    let ir = lower_path(&fs, Path::new("c.bps"), LowerOptions::default(), &[]);
    assert_well_formed(&ir);
    let joins = ir.jobs.iter().filter(|j| j.kind == JobKind::Join).count();
    assert_eq!(joins, 1);
    assert_eq!(ir.edges.len(), 80, "40 into the join, 40 out of it");
    assert_eq!(step_pairs(&ir, "a", "b").len(), 1600, "still every a before every b");
}

#[test]
fn clustering_that_would_create_a_cycle_is_e504() {
    // a(v) -> b() -> c(v); clustering a and c by v puts c's job before and after b.
    let src = "bps 1\ndimension v = 0..3\npipeline p {\n  step a over (v) { run = \"true\" }\n  step b after a { run = \"true\" }\n  step c over (v) after b { run = \"true\" }\n}\ncampaign k {\n  use p\n  coverage = v\n  cluster bad { steps = [a, c], by = [v] }\n}\n";
    let fs = MemFs::new().with("c.bps", src);
    let c = check(&fs, Path::new("c.bps"), &Options::default());
    assert!(!c.has_errors(), "{:#?}", c.diags.items);
    let l = lower(&c, &LowerOptions::default());
    assert!(l.ir.is_none());
    assert_eq!(l.diags.len(), 1);
    assert_eq!(l.diags[0].code, "E504");
    assert!(l.diags[0].message.contains("cluster `bad`"), "{}", l.diags[0].message);
    assert!(l.diags[0].message.contains("step `b`"), "{}", l.diags[0].message);
}

#[test]
fn empty_and_large_coverages() {
    let src = "bps 1\ndimension v = 0..10\npipeline p { step a over (v) { run = \"true\" } }\ncampaign c {\n  use p\n  coverage = v where v > 100\n}\n";
    let fs = MemFs::new().with("c.bps", src);
    let c = check(&fs, Path::new("c.bps"), &Options::default());
    let l = lower(&c, &LowerOptions::default());
    assert!(l.ir.is_none());
    assert_eq!(l.diags[0].code, "E701");
    let src = "bps 1\ndimension v = 0..10\ndimension d = 0..20\npipeline p { step a over (v, d) { run = \"true\" } }\ncampaign c {\n  use p\n  coverage = v * d\n}\n";
    let fs = MemFs::new().with("c.bps", src);
    let c = check(&fs, Path::new("c.bps"), &Options::default());
    let l = lower(&c, &LowerOptions { coverage_warn: 150, ..Default::default() });
    assert!(l.ir.is_some());
    let w: Vec<_> = l.diags.iter().filter(|d| d.code == "W701").collect();
    assert_eq!(w.len(), 2, "coverage and step both have 200");
    assert!(w[0].message.contains("200"));
}

#[test]
fn inserted_jobs_follow_the_data_handling_schemes() {
    let ir = lower_path(&RealFs, &repo().join("examples/special_programs/special_programs.bps"), LowerOptions::default(), &[]);
    let count = |k: JobKind| ir.jobs.iter().filter(|j| j.kind == k).count();
    // raw, bias and flat are `pre_job` at the non-shared site: every instance staged once.
    let staged: usize = ir.stage_sets.iter().map(|s| s.instances.len()).sum();
    assert_eq!(ir.staged.len(), staged, "each instance staged exactly once");
    let by_ds: BTreeMap<&str, usize> = ir.stage_sets.iter().map(|s| (s.dataset.as_str(), s.instances.len())).collect();
    assert_eq!(by_ds.get("raw"), Some(&213));
    assert!(count(JobKind::StageIn) > 0 && count(JobKind::StageOut) > 0 && count(JobKind::Cleanup) > 0);
    // Every stage-in job precedes only compute jobs, every stage-out/cleanup follows its job.
    for &(p, c) in &ir.edges {
        let (pk, ck) = (ir.jobs[p as usize].kind, ir.jobs[c as usize].kind);
        if pk == JobKind::StageIn {
            assert_eq!(ck, JobKind::Compute);
        }
        if ck == JobKind::StageOut {
            assert_eq!(ir.jobs[c as usize].owner, p);
        }
    }
    let nightly = lower_path(&RealFs, &repo().join("examples/nightly_calib/nightly_calib.bps"), LowerOptions::default(), &[]);
    assert_eq!(nightly.jobs.iter().filter(|j| j.kind == JobKind::StageIn).count(), 0, "in_job inputs need no stage-in jobs");
}

// ------------------------------------------------------------------ property test

/// A random small campaign: dimensions a, b, c with small integer domains, relations
/// r(a, b) and s(b, c) with random rows, a random coverage, and three steps over random
/// dimension subsets chained with `after`.
#[derive(Clone, Debug)]
struct Rand {
    r: Vec<(i64, i64)>,
    s: Vec<(i64, i64)>,
    cov: u8,
    k: i64,
    dims: [Vec<&'static str>; 3],
}

fn arb() -> impl Strategy<Value = Rand> {
    let dimset = prop::sample::subsequence(vec!["a", "b", "c"], 0..=3);
    (
        prop::collection::vec((0i64..4, 0i64..4), 1..10),
        prop::collection::vec((0i64..4, 0i64..3), 1..10),
        0u8..5,
        0i64..4,
        dimset.clone(),
        dimset.clone(),
        dimset,
    )
        .prop_map(|(r, s, cov, k, d0, d1, d2)| Rand { r, s, cov, k, dims: [d0, d1, d2] })
}

fn cov_text(x: &Rand) -> &'static str {
    match x.cov {
        0 => "a",
        1 => "r",
        2 => "r where a != K",
        3 => "a * s",
        _ => "(r - (r where b == K)) + (r where a == K)",
    }
}

fn campaign_text(x: &Rand) -> String {
    let mut s = String::from("bps 1\ndimension a = 0..4\ndimension b = 0..4\ndimension c = 0..3\nrelation r(a, b) = table(\"r.csv\")\nrelation s(b, c) = table(\"s.csv\")\npipeline p {\n");
    for (i, d) in x.dims.iter().enumerate() {
        let after = if i > 0 { format!(" after s{}", i - 1) } else { String::new() };
        s.push_str(&format!("  step s{i} over ({}){after} {{ run = \"true\" }}\n", d.join(", ")));
    }
    s.push_str(&format!("}}\ncampaign c {{\n  use p\n  coverage = {}\n}}\n", cov_text(x).replace('K', &x.k.to_string())));
    s
}

type Row = BTreeMap<&'static str, i64>;

/// The naive builder: nested loops over rows as maps, the same universe rule.
fn naive_rows(x: &Rand, target: &[&'static str]) -> BTreeSet<Vec<i64>> {
    let r: Vec<Row> = x.r.iter().map(|&(a, b)| Row::from([("a", a), ("b", b)])).collect();
    let s: Vec<Row> = x.s.iter().map(|&(b, c)| Row::from([("b", b), ("c", c)])).collect();
    let dom = |d: &str| -> Vec<Row> {
        let n = match d {
            "a" | "b" => 4,
            _ => 3,
        };
        (0..n)
            .map(|v| {
                Row::from([(
                    if d == "a" {
                        "a"
                    } else if d == "b" {
                        "b"
                    } else {
                        "c"
                    },
                    v,
                )])
            })
            .collect()
    };
    let join = |xs: &[Row], ys: &[Row]| -> Vec<Row> {
        let mut out = BTreeSet::new();
        for p in xs {
            for q in ys {
                if p.iter().all(|(k, v)| q.get(k).is_none_or(|w| w == v)) {
                    let mut m = p.clone();
                    m.extend(q.iter().map(|(k, v)| (*k, *v)));
                    out.insert(m);
                }
            }
        }
        out.into_iter().collect()
    };
    let set = |v: &[Row]| -> BTreeSet<Row> { v.iter().cloned().collect() };
    let k = x.k;
    let mut rows: Vec<Row> = match x.cov {
        0 => dom("a"),
        1 => r.clone(),
        2 => r.iter().filter(|m| m["a"] != k).cloned().collect(),
        3 => join(&dom("a"), &s),
        _ => {
            let minus: BTreeSet<Row> =
                set(&r).difference(&set(&r.iter().filter(|m| m["b"] == k).cloned().collect::<Vec<_>>())).cloned().collect();
            let plus: BTreeSet<Row> = r.iter().filter(|m| m["a"] == k).cloned().collect();
            minus.union(&plus).cloned().collect()
        }
    };
    // Same rule as the implementation: relations with a missing dimension that share one
    // with what we have first, then any relation with a missing dimension, then domains.
    let rels: [(&str, &Vec<Row>, [&str; 2]); 2] = [("r", &r, ["a", "b"]), ("s", &s, ["b", "c"])];
    let mut used = [false; 2];
    // The schema is tracked explicitly: rows may be empty.
    let mut have: BTreeSet<&str> = match x.cov {
        0 => ["a"].into(),
        3 => ["a", "b", "c"].into(),
        _ => ["a", "b"].into(),
    };
    loop {
        let missing: Vec<&str> = target.iter().copied().filter(|d| !have.contains(d)).collect();
        if missing.is_empty() {
            break;
        }
        let linked =
            (0..2).find(|&i| !used[i] && rels[i].2.iter().any(|d| missing.contains(d)) && rels[i].2.iter().any(|d| have.contains(d)));
        let any = (0..2).find(|&i| !used[i] && rels[i].2.iter().any(|d| missing.contains(d)));
        if let Some(i) = linked.or(any) {
            used[i] = true;
            rows = join(&rows, rels[i].1);
            have.extend(rels[i].2);
            continue;
        }
        rows = join(&rows, &dom(missing[0]));
        have.insert(missing[0]);
    }
    rows.iter().map(|m| target.iter().map(|d| m[d]).collect()).collect()
}

fn ir_quanta(ir: &Ir, s: usize) -> BTreeSet<Vec<i64>> {
    (0..ir.steps[s].quanta.len()).map(|q| ir.steps[s].quanta.row(q, &ir.dicts).iter().map(|v| v.as_int().unwrap()).collect()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn join_based_builder_matches_naive_nested_loops(x in arb()) {
        let csv_r: String = std::iter::once("a,b".to_string()).chain(x.r.iter().map(|(a, b)| format!("{a},{b}"))).collect::<Vec<_>>().join("\n");
        let csv_s: String = std::iter::once("b,c".to_string()).chain(x.s.iter().map(|(b, c)| format!("{b},{c}"))).collect::<Vec<_>>().join("\n");
        let fs = MemFs::new().with("c.bps", campaign_text(&x)).with("r.csv", csv_r).with("s.csv", csv_s);
        let c = check(&fs, Path::new("c.bps"), &Options::default());
        let errors: Vec<_> = c.diags.items.iter().filter(|d| d.is_error()).collect();
        prop_assert!(errors.is_empty(), "{:#?}\n{}", errors, campaign_text(&x));
        let l = lower(&c, &LowerOptions::default());
        let cov_rows = naive_rows(&x, &[]);
        if cov_rows.is_empty() {
            // Empty coverage: the naive builder gives nothing, the compiler must refuse (E701).
            prop_assert!(l.ir.is_none());
            prop_assert_eq!(l.diags[0].code, "E701");
            return Ok(());
        }
        // A coverage the naive builder finds rows in must compile: a refusal is a failure.
        prop_assert!(l.ir.is_some(), "refused a non-empty coverage ({} rows): {:?}\n{}", cov_rows.len(), l.diags.iter().map(|d| &d.message).collect::<Vec<_>>(), campaign_text(&x));
        let ir = l.ir.unwrap();
        assert_well_formed(&ir);
        // A compile keeps the checker's reading of the tables and imports it: the same IR.
        let kept = check(&fs, Path::new("c.bps"), &Options { keep_tables: true, ..Default::default() });
        let kept = lower(&kept, &LowerOptions::default()).ir.expect("lowers with kept tables");
        let (mut xa, mut xb) = (Vec::new(), Vec::new());
        bpsc::ir::jsonl::write_ir_jsonl(&ir, &mut xa).unwrap();
        bpsc::ir::jsonl::write_ir_jsonl(&kept, &mut xb).unwrap();
        prop_assert!(xa == xb, "kept tables give another IR\n{}", campaign_text(&x));
        for i in 0..3 {
            let want = naive_rows(&x, &x.dims[i]);
            prop_assert_eq!(ir_quanta(&ir, i), want, "step s{} over {:?}\n{}", i, x.dims[i], campaign_text(&x));
        }
        for i in 1..3 {
            // Edges s(i-1) -> s(i): naive pairs over the union of both steps' dimensions.
            let (pd, sd) = (&x.dims[i - 1], &x.dims[i]);
            let mut joint: Vec<&'static str> = pd.clone();
            for d in sd { if !joint.contains(d) { joint.push(d); } }
            let rows = naive_rows(&x, &joint);
            let want: BTreeSet<(Vec<i64>, Vec<i64>)> = rows.iter().map(|r| {
                let pick = |ds: &Vec<&'static str>| ds.iter().map(|d| r[joint.iter().position(|j| j == d).unwrap()]).collect::<Vec<i64>>();
                (pick(pd), pick(sd))
            }).collect();
            let got: BTreeSet<(Vec<i64>, Vec<i64>)> = step_pairs(&ir, &format!("s{}", i - 1), &format!("s{i}")).into_iter().map(|(a, b)| {
                let ra: Vec<i64> = ir.steps[i - 1].quanta.row(a as usize, &ir.dicts).iter().map(|v| v.as_int().unwrap()).collect();
                let rb: Vec<i64> = ir.steps[i].quanta.row(b as usize, &ir.dicts).iter().map(|v| v.as_int().unwrap()).collect();
                (ra, rb)
            }).collect();
            prop_assert_eq!(got, want, "edges s{} -> s{}\n{}", i - 1, i, campaign_text(&x));
        }
    }
}

#[test]
fn command_line_config_overrides_and_step_subsets_reach_the_ir() {
    // Language 1.1: `--set config.KEY` (every used pipeline's chosen config) then
    // `--set PIPELINE.config.KEY` (in command-line order, the later wins), over `extends`;
    // `--steps SUBSET,STEP`.
    let src = "bps 1.1\ndimension v = 0..2\npipeline p {\n  config base { yaml = \"a.yaml\", n = 1 }\n  config rc extends base { n = 2 }\n  subset first = [a]\n  step a over (v) { run = \"run {config.yaml} {config.n} {config.extra}\" }\n  step b over (v) after a { run = \"b\" }\n  step c after b { run = \"c\" }\n}\ncampaign k {\n  use p with rc\n  coverage = v\n}\n";
    let fs = MemFs::new().with("c.bps", src);
    let sets = ["config.n=3", "p.config.yaml=\"b.yaml\"", "config.extra=true"];
    let c = check(&fs, Path::new("c.bps"), &Options { sets: sets.iter().map(|s| s.to_string()).collect(), ..Default::default() });
    assert!(!c.has_errors(), "{:#?}", c.diags.items);
    assert_eq!(c.diags.items.iter().map(|d| d.code).collect::<Vec<_>>(), ["W204"], "`extra` is added, with a warning");
    let opts = LowerOptions { steps: Some("first,c".into()), ..Default::default() };
    let l = lower(&c, &opts);
    let ir = l.ir.unwrap_or_else(|| panic!("{:#?}", l.diags));
    let names: Vec<&str> = ir.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["a", "c"]);
    let a = &ir.steps[0];
    assert_eq!(a.config_name.as_deref(), Some("rc"));
    let cfg: BTreeMap<&str, &str> = a.config.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(cfg, BTreeMap::from([("extra", "true"), ("n", "3"), ("yaml", "b.yaml")]));
}

fn lower_text(text: &str) -> bpsc::lower::Lowered {
    let fs = MemFs::new().with("c.bps", text.to_string());
    let c = check(&fs, Path::new("c.bps"), &Options::default());
    let errors: Vec<_> = c.diags.items.iter().filter(|d| d.is_error()).map(|d| d.message.clone()).collect();
    assert!(errors.is_empty(), "{errors:?}");
    lower(&c, &LowerOptions::default())
}

/// `equal visit = exposure`: steps over either name are one-to-one, and a cluster by one
/// takes the quanta of both.
#[test]
fn equal_dimensions_are_one_dimension() {
    let text = "bps 1.1\nequal visit = exposure\ndimension visit = 0..3\ndimension exposure\ndimension detector = 0..2\npipeline p {\n  step a over (visit, detector) { run = \"a {visit}\" }\n  step b over (exposure, detector) after a { run = \"b {exposure}\" }\n}\ncampaign c {\n  use p\n  coverage = visit * detector\n}\n";
    let ir = lower_text(text).ir.expect("compiles");
    assert_eq!((ir.steps[0].quanta.len(), ir.steps[1].quanta.len()), (6, 6));
    let pairs = step_pairs(&ir, "a", "b");
    assert_eq!(pairs.len(), 6, "one-to-one: {pairs:?}");
    for (x, y) in pairs {
        assert_eq!(ir.steps[0].quanta.row(x as usize, &ir.dicts), ir.steps[1].quanta.row(y as usize, &ir.dicts));
    }
    let text =
        text.replace("  coverage = visit * detector\n", "  coverage = visit * detector\n  cluster k { steps = [a, b], by = [visit] }\n");
    let ir = lower_text(&text).ir.expect("compiles");
    assert_eq!(ir.compute_jobs(), 3, "one job per visit");
    for j in (0..ir.jobs.len() as u32).filter(|&j| ir.jobs[j as usize].kind == JobKind::Compute) {
        let ms = ir.job_members(j);
        assert_eq!(ms.len(), 4, "both steps' quanta of one visit: {}", ir.job_id(j));
        let visits: BTreeSet<String> = ms.iter().map(|m| ir.data_id(*m)[0].to_string()).collect();
        assert_eq!(visits.len(), 1);
        assert!(ir.job_id(j).starts_with("k_"), "{}", ir.job_id(j));
    }
}

/// `split_by` + `max_quanta`: each `by` group is cut into jobs of at most `max_quanta`
/// quanta without splitting one `split_by` value; a value with more is one job (W506).
#[test]
fn partitioned_clusters_never_split_a_value() {
    let text = |max: u32| {
        format!("bps 1.1\ndimension visit = 0..2\ndimension detector = 0..5\npipeline p {{\n  step a over (visit, detector) {{ run = \"a\" }}\n  step b over (visit, detector) after a {{ run = \"b\" }}\n}}\ncampaign c {{\n  use p\n  coverage = visit * detector\n  cluster k {{ steps = [a, b], by = [visit], split_by = [detector], max_quanta = {max} }}\n}}\n")
    };
    for max in [1u32, 2, 3, 4, 5, 10, 20] {
        let l = lower_text(&text(max));
        let ir = l.ir.expect("compiles");
        let mut ids = BTreeSet::new();
        let mut owner: BTreeMap<(String, String), u32> = BTreeMap::new();
        let mut quanta = 0;
        for j in (0..ir.jobs.len() as u32).filter(|&j| ir.jobs[j as usize].kind == JobKind::Compute) {
            assert!(ids.insert(ir.job_id(j)), "duplicate id {}", ir.job_id(j));
            let ms = ir.job_members(j);
            quanta += ms.len();
            // Each detector value (2 quanta: a and b) fits unless max is 1.
            assert!(ms.len() <= max.max(2) as usize, "max {max}: job {} has {}", ir.job_id(j), ms.len());
            for m in ms {
                let id = ir.data_id(*m);
                let key = (id[0].to_string(), id[1].to_string());
                if let Some(prev) = owner.insert(key.clone(), j) {
                    assert_eq!(prev, j, "max {max}: {key:?} split across jobs");
                }
            }
            // Dependency order within the job: a's quanta before b's of the same detector.
            let order: Vec<u32> = ms.iter().map(|m| m.step).collect();
            assert!(order.windows(2).all(|w| w[0] <= w[1]), "{order:?}");
        }
        assert_eq!(quanta, 20, "every quantum in one job");
        let jobs_per_visit = ((10 / 2) as f64 / (max / 2).max(1) as f64).ceil() as usize;
        assert_eq!(ir.compute_jobs(), 2 * jobs_per_visit, "max {max}");
        let w506 = l.diags.iter().filter(|d| d.code == "W506").count();
        assert_eq!(w506, usize::from(max < 2), "max {max}: {:?}", l.diags);
    }
}

/// `--emit ir` formats its job lines on several threads, chunk by chunk, and writes the
/// chunks in order: with any number of threads and any chunk size the file is the one a
/// single thread writes, for every example (every job kind: stage-in, stage-out, cleanup,
/// joins, the final job).
#[test]
fn the_parallel_ir_writer_writes_what_one_thread_writes() {
    for file in EXAMPLE_CAMPAIGNS {
        let ir = lower_path(&RealFs, &repo().join("examples").join(file), LowerOptions::default(), &[]);
        let mut one = Vec::new();
        bpsc::ir::jsonl::write_ir_jsonl_on(&ir, &mut one, 1, 4096).unwrap();
        assert_eq!(one.iter().filter(|&&b| b == b'\n').count(), ir.jobs.len() + 1, "{file}: a header and a line per job");
        for (threads, chunk) in [(2, 1), (3, 7), (4, 64)] {
            let mut many = Vec::new();
            bpsc::ir::jsonl::write_ir_jsonl_on(&ir, &mut many, threads, chunk).unwrap();
            assert!(one == many, "{file}: {threads} threads, chunks of {chunk}: the file differs");
        }
        let mut default = Vec::new();
        bpsc::ir::jsonl::write_ir_jsonl(&ir, &mut default).unwrap();
        assert!(one == default, "{file}: write_ir_jsonl differs from one thread");
    }
}

/// A writer that fails after some bytes: the parallel IR writer returns the error (its
/// threads stop) instead of hanging or panicking.
#[test]
fn the_parallel_ir_writer_stops_on_a_write_error() {
    struct Full(usize);
    impl std::io::Write for Full {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            if self.0 < b.len() {
                return Err(std::io::Error::new(std::io::ErrorKind::StorageFull, "disk full"));
            }
            self.0 -= b.len();
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let ir = lower_path(&RealFs, &repo().join("examples/drp/drp.bps"), LowerOptions::default(), &[]);
    let e = bpsc::ir::jsonl::write_ir_jsonl_on(&ir, &mut Full(20_000), 3, 2).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::StorageFull);
}
