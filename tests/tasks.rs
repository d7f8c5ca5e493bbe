//! The compact task tables: every job the wrapper reads back renders to exactly the line
//! `bpsc compile --emit ir` gives for it (command, paths, transfers, resources), for every
//! example and engine; ids find their jobs; a hostile campaign stays hostile-proof through
//! the tables; and the tables stay small.

mod common;

use std::collections::HashMap;

use bpsc::submitdir::tasks::Tables;

const EXAMPLES: &[&str] =
    &["drp/drp.bps", "nightly_calib/nightly_calib.bps", "afterburner/afterburner.bps", "special_programs/special_programs.bps"];
const ENGINES: &[&str] = &["htcondor", "slurm", "pegasus", "pegasus-dax", "nextflow"];

/// The IR's line of every job, by id: the `--emit ir` file's, with a compute job's
/// `resources` index replaced by the header's object it names.
fn ir_lines(ir: &bpsc::ir::Ir) -> HashMap<String, serde_json::Value> {
    let mut text = Vec::new();
    bpsc::ir::jsonl::write_ir_jsonl(ir, &mut text).expect("IR written");
    let text = String::from_utf8(text).expect("IR is UTF-8");
    let mut lines = text.lines();
    let header: serde_json::Value = serde_json::from_str(lines.next().expect("a header")).expect("header is JSON");
    assert_eq!(header["bpsc_ir"], 2);
    let shapes = header["resources"].as_array().expect("the header lists resources").clone();
    lines
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).expect("IR line is JSON");
            if let Some(k) = v.get("resources").map(|r| r.as_u64().expect("resources is an index") as usize) {
                v["resources"] = shapes.get(k).unwrap_or_else(|| panic!("resources {k} of {} shapes", shapes.len())).clone();
            }
            (v["id"].as_str().unwrap().to_string(), v)
        })
        .collect()
}

/// The self-contained line of every job (resources in full), as the task tables keep it.
fn self_contained_lines(ir: &bpsc::ir::Ir) -> HashMap<String, serde_json::Value> {
    let mut jl = bpsc::ir::jsonl::JobLines::new(ir);
    (0..ir.jobs.len() as u32)
        .map(|j| {
            let v: serde_json::Value = serde_json::from_str(jl.line(j)).expect("job line is JSON");
            (v["id"].as_str().unwrap().to_string(), v)
        })
        .collect()
}

#[test]
fn the_ir_file_says_what_the_self_contained_lines_say() {
    // IR 2 writes each settings shape's resources once, in the header: resolved, every job
    // line is the one the wrapper reads, field for field.
    for ex in EXAMPLES {
        let ir = common::lower(&common::repo().join("examples").join(ex), &[]);
        let (file, lines) = (ir_lines(&ir), self_contained_lines(&ir));
        assert_eq!(file.len(), ir.jobs.len(), "{ex}");
        assert!(file.values().any(|v| v["resources"]["memory"].as_u64().is_some()), "{ex} has compute jobs");
        for (id, v) in &lines {
            assert_eq!(file.get(id), Some(v), "{ex}: job {id}");
        }
    }
}

fn check_tables(ir: &bpsc::ir::Ir, engine: &str, name: &str) -> usize {
    let d = common::fresh(&format!("tasks-{name}-{engine}"));
    common::emit(engine, ir, &d).unwrap_or_else(|e| panic!("{name} {engine}: {}", e.message));
    let want = ir_lines(ir);
    let t = Tables::open(&d).expect("tables open");
    let mut seen = 0;
    for g in t.spec.groups.clone() {
        for k in 0..g.jobs {
            let line = t.line(&g.name, k).unwrap_or_else(|e| panic!("{name} {engine} {} {k}: {e}", g.name));
            assert!(line.ends_with('\n'));
            let mut got: serde_json::Value = serde_json::from_str(&line).expect("JSON line");
            let id = got["id"].as_str().unwrap().to_string();
            let mut exp = want.get(&id).unwrap_or_else(|| panic!("{name} {engine}: job {id} is not in the IR")).clone();
            if got.get("parents").is_none() {
                exp.as_object_mut().unwrap().remove("parents");
            } else {
                let sort = |v: &mut serde_json::Value| v["parents"].as_array_mut().unwrap().sort_by_key(|x| x.to_string());
                sort(&mut got);
                sort(&mut exp);
            }
            assert_eq!(got, exp, "{name} {engine}: job {id} (group {} index {k})", g.name);
            // The engine can name the job by id (DAGMan's $(JOB)).
            if engine == "htcondor" && g.layout != bpsc::submitdir::tasks::Layout::Lines {
                assert_eq!(t.find(&g.name, &id).unwrap_or_else(|e| panic!("{e}")), k, "{name}: find {id}");
            }
            seen += 1;
        }
    }
    assert_eq!(seen, ir.jobs.len(), "{name} {engine}: every job has a line");
    seen
}

#[test]
fn every_job_renders_back_to_its_ir_line() {
    for ex in EXAMPLES {
        let file = common::repo().join("examples").join(ex);
        let ir = common::lower(&file, &[]);
        // nightly_calib lists three hosts, which Slurm refuses (E801): one host there; and
        // special_programs runs at two facilities, one submission to one Slurm controller
        // (E801): one site there.
        let one_site: &[&str] = if ex.starts_with("special_programs") { &["site=s3df"] } else { &[] };
        let one_host = common::lower(&file, &[&["hosts=[\"sdfrome041\"]"], one_site].concat());
        for engine in ENGINES {
            check_tables(if *engine == "slurm" { &one_host } else { &ir }, engine, ex.split('/').next().unwrap());
        }
    }
}

#[test]
fn hostile_data_ids_render_back_exactly() {
    let d = common::fresh("tasks-hostile-src");
    let mut csv = String::from("visit,label\n");
    for (i, h) in bpsc::ir::quote::INJECTION_CORPUS.iter().enumerate() {
        csv.push_str(&format!("{i},\"{}\"\n", h.replace('"', "\"\"")));
    }
    csv.push_str("-7,\"negative visit\"\n");
    std::fs::write(d.join("labels.csv"), csv).unwrap();
    std::fs::write(
        d.join("c.bps"),
        "bps 1\nrelation lab(visit, label) = table(\"labels.csv\")\ndataset out(visit, label) { persist = archive, archive = \"file:///archive/{label}/{visit}\" }\npipeline p {\n  step a over (visit, label) {\n    outputs = [out]\n    run = \"echo {label} '{label}' \\\"{label}\\\" > {outputs}\"\n  }\n  step b over (label) after a { run = \"echo {label}\" }\n}\ncampaign c {\n  use p\n  coverage = lab\n}\n",
    )
    .unwrap();
    let ir = common::lower(&d.join("c.bps"), &[]);
    for engine in ENGINES {
        assert_eq!(check_tables(&ir, engine, "hostile"), ir.jobs.len());
    }
}

#[test]
fn a_step_of_a_million_rows_costs_eight_bytes_a_job() {
    // Two dimensions: one u32 rank each per quantum, no per-job text.
    let d = common::fresh("tasks-size-src");
    std::fs::write(
        d.join("c.bps"),
        "bps 1\ndimension visit = 0..1000\ndimension detector = 0..100\npipeline p { step a over (visit, detector) { run = \"echo {visit} {detector}\" } }\ncampaign c {\n  use p\n  coverage = visit * detector\n}\n",
    )
    .unwrap();
    let ir = common::lower(&d.join("c.bps"), &[]);
    let out = common::fresh("tasks-size");
    common::emit("nextflow", &ir, &out).unwrap();
    let t = Tables::open(&out).unwrap();
    let bytes = t.bytes();
    assert!(bytes < 100_000 * 8 + 40_000, "tables of 100,000 jobs take {bytes} bytes");
    // Random access: the last job, by index and by id.
    let line = t.line("a", 99_999).unwrap();
    assert!(line.contains("\"command\":\"echo 999 99\""), "{line}");
}

#[test]
fn show_prints_one_job_fully_rendered() {
    let file = common::repo().join("examples/drp/drp.bps");
    let ir = common::lower(&file, &[]);
    let out = common::fresh("tasks-show");
    common::emit("slurm", &ir, &out).unwrap();
    let want = ir_lines(&ir);
    let (id, line) = want.iter().find(|(_, v)| v["kind"] == "compute" && v["cluster"].is_null()).expect("an unclustered compute job");
    let run = |args: &[&str]| std::process::Command::new(env!("CARGO_BIN_EXE_bpsc")).args(args).output().expect("bpsc show");
    let o = run(&["show", out.to_str().unwrap(), id, "--format", "json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(v["quanta"], line["quanta"], "the command, paths and fetches of {id}");
    assert_eq!(v["settings"]["resources"], line["resources"]);
    // By GROUP:INDEX, in human form.
    let (g, k) = (v["group"].as_str().unwrap().to_string(), v["index"].as_u64().unwrap());
    let o = run(&["show", out.to_str().unwrap(), &format!("{g}:{k}")]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains(line["quanta"][0]["command"].as_str().unwrap()), "{text}");
    // An unknown job is a usage error that says so.
    let o = run(&["show", out.to_str().unwrap(), "no_such_job"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no job `no_such_job`"));
}
