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
