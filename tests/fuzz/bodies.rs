//! What the fuzz targets check, shared by the cargo-fuzz targets (`tests/fuzz/fuzz_targets/`,
//! long runs on nightly) and the bounded property tests CI runs (`tests/robustness.rs`), so
//! both test the same thing.  Each function panics when bpsc misbehaves on its input; a
//! diagnostic or an error message is a correct answer.
//!
//! - [`harvest`]: every status harvester on arbitrary engine output (DAGMan's nodes log,
//!   node status file, dagman.out, rescue DAG, metrics, job-state log; Slurm's sacct and
//!   squeue output, job-id and array files; Pegasus's braindump; Nextflow's trace).
//! - [`submit_dir`]: a compiled submit directory with one file replaced or damaged (a task
//!   table, `tasks/spec.json`, `bpsc.json`, an engine log, a provenance record, the operations
//!   log): the wrapper's reading of its task (`Tables`), its record probes and the final job's
//!   outcome, `bpsc status` and `bpsc report` must answer without panicking.
//! - [`quoting`]: data IDs built from the input, through check, lowering, every engine and the
//!   task tables: each rendered command splits into exactly the words the template has, each
//!   placeholder one word holding exactly the data ID's value (nothing escapes a quote).

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use bpsc::backend::{htcondor, nextflow, pegasus, slurm};

/// Engines a submit directory can be written for.
pub const ENGINES: &[&str] = &["htcondor", "slurm", "pegasus", "pegasus-dax", "nextflow"];

/// Every harvester on the input as text.
pub fn harvest(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let t = text.as_ref();
    let _ = htcondor::harvest::parse_nodes_log(t, "nodes.log");
    let _ = htcondor::harvest::parse_node_status(t, "node.status");
    let _ = htcondor::harvest::parse_dagman_out(t, "dagman.out");
    let _ = htcondor::harvest::parse_rescue(t, "rescue");
    let _ = htcondor::harvest::parse_metrics(t, "metrics");
    let _ = htcondor::jobstate::parse(t, "jobstate.log");
    let _ = htcondor::harvest::node_to_job(t);
    // Slurm: the first line stands for the job-id file, the second for the arrays file,
    // the rest for sacct's and squeue's output.
    let mut parts = t.splitn(3, '\n');
    let (jobids, arrays, rest) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let mut notes = Vec::new();
    let ids = slurm::harvest::read_ids(jobids, arrays, &mut notes);
    let _ = slurm::harvest::parse_sacct(rest, &ids, "sacct");
    let _ = slurm::harvest::parse_squeue(rest, &ids, "squeue");
    let ids = slurm::harvest::read_ids(t, t, &mut notes);
    let _ = slurm::harvest::parse_sacct(t, &ids, "sacct");
    let tasks = slurm::harvest::expand_tasks(t);
    assert!(
        tasks.len() as u64 <= slurm::harvest::MAX_ARRAY_TASKS,
        "an array spec of {} bytes expands to {} task ids",
        t.len(),
        tasks.len()
    );
    let _ = pegasus::harvest::parse_braindump(t);
    let _ = pegasus::harvest::job_of_name(t, &|_| true);
    let _ = nextflow::harvest::parse_trace(t, "trace.txt");
}

/// A small campaign with a gather, a cluster, a stage-out and hostile-looking labels, for
/// [`submit_dir`]'s template.
pub const TEMPLATE_BPS: &str = r#"bps 1
relation lab(visit, label) = table("labels.csv")
dataset raw(visit, label) { persist = archive, archive = "file:///archive/{label}/{visit}" }
dataset sum(label) { persist = archive, archive = "file:///archive/sum/{label}" }
pipeline p {
  step a over (visit, label) {
    outputs = [raw]
    run = "echo {label} '{label}' > {outputs}"
  }
  step b over (label) {
    inputs = [raw]
    outputs = [sum]
    run = "cat {inputs} > {outputs}"
  }
}
campaign c {
  use p
  coverage = lab
}
"#;

pub const TEMPLATE_CSV: &str = "visit,label\n1,plain\n2,\"a b\"\n3,\"it's\"\n4,\"$(touch x)\"\n1,\"a b\"\n";

/// Files [`submit_dir`] may replace besides the template's own: engine logs the harvesters
/// read, a provenance record, the operations log.
const EXTRA: &[&str] = &[
    "workflow.dag.nodes.log",
    "workflow.dag.dagman.out",
    "workflow.dag.jobstate.log",
    "workflow.dag.metrics",
    "workflow.dag.status",
    "workflow.dag.rescue001",
    "provenance/a_1_plain.1.json",
    "provenance/b_plain.2.json",
    "operations.jsonl",
];

/// A compiled submit directory to damage, and the list of its files.
pub struct Template {
    pub dir: PathBuf,
    pub files: Vec<String>,
}

fn list(dir: &Path, rel: &str, out: &mut Vec<String>) {
    let Ok(rd) = std::fs::read_dir(dir.join(rel)) else { return };
    let mut names: Vec<String> = rd.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    for n in names {
        let r = if rel.is_empty() { n } else { format!("{rel}/{n}") };
        if dir.join(&r).is_dir() {
            list(dir, &r, out);
        } else {
            out.push(r);
        }
    }
}

/// Compile [`TEMPLATE_BPS`] for `engine` under `root` (created).
pub fn template(root: &Path, engine: &str) -> Template {
    let src = root.join("src");
    std::fs::create_dir_all(&src).expect("template source directory");
    std::fs::write(src.join("c.bps"), TEMPLATE_BPS).expect("write c.bps");
    std::fs::write(src.join("labels.csv"), TEMPLATE_CSV).expect("write labels.csv");
    let fs = bpsc::fs::RealFs;
    let c = bpsc::check::check(&fs, &src.join("c.bps"), &bpsc::check::Options::default());
    assert!(!c.has_errors(), "the fuzz template does not check");
    let ir = bpsc::lower::lower(&c, &bpsc::lower::LowerOptions::default()).ir.expect("the fuzz template lowers");
    let dir = root.join(engine);
    std::fs::create_dir_all(&dir).expect("template directory");
    let e = bpsc::backend::find(engine).expect("engine");
    let emitted = e.emit(&ir, &bpsc::backend::DirOutput::new(&dir)).unwrap_or_else(|d| panic!("template emit: {}", d.message));
    bpsc::pipeline::meta_of(&ir, e, &emitted).write(&dir).expect("bpsc.json");
    let mut files = Vec::new();
    list(&dir, "", &mut files);
    files.extend(EXTRA.iter().map(|s| s.to_string()));
    Template { dir, files }
}

/// Copy every file of the directory `from` to `to` (a template to a scratch directory).
pub fn copy_tree(from: &Path, to: &Path) {
    let mut files = Vec::new();
    list(from, "", &mut files);
    for f in files {
        let dest = to.join(&f);
        if let Some(p) = dest.parent() {
            std::fs::create_dir_all(p).expect("scratch directory");
        }
        std::fs::copy(from.join(&f), &dest).expect("copy template file");
    }
}

/// Damage one file of a copy of the template in `scratch`, then read the directory as the
/// wrapper, `bpsc status` and `bpsc report` do.  The first byte picks the file, the second
/// how it is damaged (replaced by the rest of the input, the rest written over it at an
/// offset, or cut at an offset); the rest is the new content.
pub fn submit_dir(data: &[u8], t: &Template, scratch: &Path) {
    if data.len() < 2 {
        return;
    }
    let _ = std::fs::remove_dir_all(scratch);
    copy_tree(&t.dir, scratch);
    let rel = &t.files[data[0] as usize % t.files.len()];
    let path = scratch.join(rel);
    if let Some(p) = path.parent() {
        let _ = std::fs::create_dir_all(p);
    }
    let old = std::fs::read(&path).unwrap_or_default();
    let body = &data[2..];
    let new: Vec<u8> = match data[1] % 3 {
        0 => body.to_vec(),
        1 => {
            let at = if old.is_empty() { 0 } else { (data[1] as usize * 7919) % old.len() };
            let mut v = old.clone();
            let end = (at + body.len()).min(v.len());
            v.splice(at..end, body.iter().copied());
            v
        }
        _ => old[..(body.len() % (old.len() + 1))].to_vec(),
    };
    std::fs::write(&path, &new).expect("write the damaged file");

    // The wrapper: its task by group and index, parents, settings, lookups by id.
    if let Ok(tables) = bpsc::submitdir::tasks::Tables::open(scratch) {
        let groups = tables.spec.groups.clone();
        for (gi, g) in groups.iter().enumerate() {
            for k in 0..g.jobs.min(8) {
                let _ = tables.line(&g.name, k);
                let _ = tables.parents(gi, k);
                let _ = tables.settings(&g.name, k);
            }
            let _ = tables.line(&g.name, g.jobs);
            let _ = tables.line(&g.name, u64::MAX);
            let _ = tables.find(&g.name, "a_1_plain");
            let _ = tables.find(&g.name, "");
        }
        let _ = tables.locate("b_plain");
        let _ = tables.line("no such group", 0);
        if groups.iter().map(|g| g.jobs).sum::<u64>() <= 10_000 {
            let _ = tables.for_each_job(|_, _, _| {});
        }
    }
    let _ = bpsc::submitdir::tasks::read_task(scratch, "a", 0);
    let _ = bpsc::wrap::attempt::latest_record(scratch, "a_1_plain");
    let _ = bpsc::wrap::final_job::outcome(scratch);
    // bpsc status (the engine's files as the harvester reads them) and bpsc report.
    if let Ok(r) = bpsc::status::collect(scratch) {
        let _ = r.to_json();
        let mut out = Vec::new();
        let _ = r.render(&mut out);
    }
    if let Ok(d) = bpsc::report::build(&[scratch.to_path_buf()], &bpsc::report::Limits::default()) {
        let _ = bpsc::report::html::render(&d);
    }
}

/// Split a shell command into words as a POSIX shell does for quoting (no expansion).
fn words(cmd: &str) -> Option<Vec<String>> {
    shlex::split(cmd)
}

/// What `/bin/sh` prints running `cmd` in the empty directory `cwd` with almost no
/// environment: the oracle for expansions (`$`, backquotes) that word splitting alone does
/// not see.  Panics when the command created a file.
fn sh_output(cmd: &str, cwd: &Path) -> String {
    std::fs::create_dir_all(cwd).expect("sh directory");
    let o = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(cmd)
        .current_dir(cwd)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", "/nonexistent")
        .output()
        .expect("/bin/sh");
    let left: Vec<_> = std::fs::read_dir(cwd).map(|r| r.flatten().map(|e| e.file_name()).collect()).unwrap_or_default();
    assert!(left.is_empty(), "{cmd:?} created {left:?}");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The input's bytes become labels (one per 0xFF-separated part) of a campaign whose
/// command puts `{label}` in each quoting context; every job of every engine, read back
/// from its task tables, must give the label back as exactly one word in each, to a word
/// splitter and (`run_shell`) to `/bin/sh` running the command.  Returns how
/// many job lines were checked (0 when the checker refused the labels, which is allowed).
pub fn quoting(data: &[u8], scratch: &Path, run_shell: bool) -> usize {
    let mut labels: Vec<String> = data.split(|b| *b == 0xff).map(|p| String::from_utf8_lossy(p).into_owned()).take(4).collect();
    labels.retain(|l| !l.is_empty());
    if labels.is_empty() {
        return 0;
    }
    let _ = std::fs::remove_dir_all(scratch);
    let src = scratch.join("src");
    std::fs::create_dir_all(&src).expect("scratch");
    let mut csv = String::from("visit,label\n0,\"x y\"\n");
    for (i, l) in labels.iter().enumerate() {
        csv.push_str(&format!("{},\"{}\"\n", i + 1, l.replace('"', "\"\"")));
    }
    std::fs::write(src.join("labels.csv"), csv).expect("write csv");
    std::fs::write(
        src.join("c.bps"),
        "bps 1\nrelation lab(visit, label) = table(\"labels.csv\")\npipeline p {\n  step a over (visit, label) { run = \"printf [%s] {label} '{label}' \\\"{label}\\\"\" }\n}\ncampaign c {\n  use p\n  coverage = lab\n}\n",
    )
    .expect("write c.bps");
    let c = bpsc::check::check(&bpsc::fs::RealFs, &src.join("c.bps"), &bpsc::check::Options::default());
    let _ = bpsc::diag::render::render_human(&c.program.map, &c.diags.items[..c.diags.items.len().min(20)], false);
    if c.has_errors() {
        return 0;
    }
    let Some(ir) = bpsc::lower::lower(&c, &bpsc::lower::LowerOptions::default()).ir else { return 0 };
    let mut checked = 0;
    for engine in ENGINES {
        let dir = scratch.join(engine);
        std::fs::create_dir_all(&dir).expect("engine directory");
        let e = bpsc::backend::find(engine).expect("engine");
        match e.emit(&ir, &bpsc::backend::DirOutput::new(&dir)) {
            Ok(_) => {}
            Err(d) => {
                assert!(!d.message.contains("bpsc bug"), "{engine}: {}", d.message);
                continue;
            }
        }
        let t = bpsc::submitdir::tasks::Tables::open(&dir).unwrap_or_else(|e| panic!("{engine}: tables: {e}"));
        let g = t.spec.groups.iter().find(|g| g.name == "a").unwrap_or_else(|| panic!("{engine}: no group a"));
        for k in 0..g.jobs {
            let line = t.line("a", k).unwrap_or_else(|e| panic!("{engine}: job {k}: {e}"));
            let v: serde_json::Value = serde_json::from_str(&line).expect("a task line is JSON");
            let q = &v["quanta"][0];
            let label = q["data_id"]["label"].as_str().map(str::to_string).unwrap_or_else(|| q["data_id"]["label"].to_string());
            let cmd = q["command"].as_str().expect("command");
            let w = words(cmd).unwrap_or_else(|| panic!("{engine}: job {k}: unbalanced quotes in {cmd:?}"));
            assert_eq!(
                w,
                vec!["printf".to_string(), "[%s]".into(), label.clone(), label.clone(), label.clone()],
                "{engine}: job {k}: {cmd:?}"
            );
            if run_shell {
                assert_eq!(sh_output(cmd, &scratch.join("sh")), format!("[{label}]").repeat(3), "{engine}: job {k}: {cmd:?}");
            }
            let id = v["id"].as_str().expect("id");
            assert!(
                !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.'),
                "{engine}: job id {id:?} is not a plain name"
            );
            checked += 1;
        }
    }
    checked
}
