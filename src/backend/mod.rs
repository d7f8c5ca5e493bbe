//! Backends: from the IR to a submit directory for a real engine.
//!
//! # The submit-directory contract shared by every backend
//!
//! ```text
//! SUBMIT/
//!   bpsc.json             what was compiled: campaign, backend, counts, bpsc version;
//!                         `compile` (file, --set, ...) and `notify`, added by `bpsc compile`;
//!                         `restart` and `provenance_db` in a `bpsc restart` directory
//!   tasks/GROUP.jsonl     one line per job of a group (a step, a cluster, or an inserted
//!                         kind), in the IR's job-line format (see backends/ir/README.md)
//!   tasks/GROUP.idx       little-endian u64 byte offsets of those lines: O(1) lookup
//!   provenance/           one JSON record per job attempt, written by `bpsc wrap`
//!   logs/GROUP/           JOB.ATTEMPT.out / .err, one pair per attempt
//!   provenance.sqlite     the campaign's provenance store (crate::provstore), when ingested
//!   status/notified       notifications `bpsc status --watch` has fired
//!   ...                   the engine's own files (DAG, sbatch scripts, workflow YAML, ...)
//! ```
//!
//! Every job of every engine runs `bpsc wrap SUBMIT --group GROUP --index K`: the wrapper
//! reads line K of the group's task table and runs it (compute quanta, transfers, removals).
//! A group's line numbers are stable, so engines index jobs by position (Slurm array task
//! ids, DAGMan VARS, Nextflow rows).
//!
//! Output is streamed to files; nothing builds a whole backend output in memory.

pub mod htcondor;
pub mod nextflow;
pub mod pegasus;
pub mod slurm;
pub mod tasks;

use std::io;
use std::path::Path;

use crate::ir::naming::sanitize;
use crate::ir::{Ir, JobKind};

/// The task group of every job, and each job's index within its group.
#[derive(Debug, Clone)]
pub struct Groups {
    pub names: Vec<String>,
    /// Group of each job (index into `names`).
    pub group_of: Vec<u32>,
    /// Position of each job within its group.
    pub index_in_group: Vec<u32>,
    /// Jobs of each group, in order.
    pub members: Vec<Vec<u32>>,
}

/// Jobs are grouped by what they run: compute jobs by step (unclustered) or cluster,
/// inserted jobs by kind.  Within a group, jobs keep IR order.
pub fn groups(ir: &Ir) -> Groups {
    let mut names: Vec<String> = Vec::new();
    let mut index: std::collections::BTreeMap<String, u32> = std::collections::BTreeMap::new();
    let mut group_of = Vec::with_capacity(ir.jobs.len());
    let mut index_in_group = Vec::with_capacity(ir.jobs.len());
    let mut members: Vec<Vec<u32>> = Vec::new();
    for (j, job) in ir.jobs.iter().enumerate() {
        let name = match job.kind {
            JobKind::Compute if job.owner == u32::MAX => sanitize(&ir.steps[ir.members[job.lo as usize].step as usize].name),
            JobKind::Compute => format!("cluster-{}", sanitize(&ir.clusters[job.owner as usize].name)),
            JobKind::StageIn => "stagein".into(),
            JobKind::StageOut => "stageout".into(),
            JobKind::Cleanup => "cleanup".into(),
            JobKind::Join => "join".into(),
            JobKind::Provenance => "provenance".into(),
        };
        let g = *index.entry(name.clone()).or_insert_with(|| {
            names.push(name);
            members.push(Vec::new());
            (names.len() - 1) as u32
        });
        group_of.push(g);
        index_in_group.push(members[g as usize].len() as u32);
        members[g as usize].push(j as u32);
    }
    Groups { names, group_of, index_in_group, members }
}

/// Write `bpsc.json`, the task tables and the empty provenance and log folders.
pub fn write_common(ir: &Ir, dir: &Path, backend: &str, g: &Groups) -> io::Result<()> {
    std::fs::create_dir_all(dir.join("tasks"))?;
    std::fs::create_dir_all(dir.join("provenance"))?;
    for name in &g.names {
        std::fs::create_dir_all(dir.join("logs").join(name))?;
    }
    tasks::write_tables(ir, dir, g)?;
    let meta = serde_json::json!({
        "bpsc_version": env!("CARGO_PKG_VERSION"),
        "ir_version": crate::ir::IR_VERSION,
        "campaign": ir.campaign,
        "backend": backend,
        "jobs": ir.jobs.len(),
        "edges": ir.edges.len(),
        "groups": g.names.iter().zip(&g.members).map(|(n, m)| serde_json::json!({"name": n, "jobs": m.len()})).collect::<Vec<_>>(),
        "steps": ir.steps.iter().map(|s| serde_json::json!({"name": s.name, "quanta": s.quanta.len(), "on_failure": s.settings.on_failure.as_str()})).collect::<Vec<_>>(),
    });
    std::fs::write(dir.join("bpsc.json"), serde_json::to_string_pretty(&meta).unwrap_or_default() + "\n")
}

/// What a backend wrote.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Written {
    /// Files written, relative to the submit directory, sorted.
    pub files: Vec<String>,
    /// The command that submits the workflow, as it should be run from the submit directory.
    pub submit_command: String,
}

pub const BACKENDS: &[&str] = &["slurm", "htcondor", "pegasus", "pegasus-dax", "nextflow"];

/// Write the submit directory of `backend` into `dir` (an empty directory).
pub fn write(backend: &str, ir: &Ir, dir: &Path) -> io::Result<Written> {
    let mut w = match backend {
        "slurm" => slurm::write(ir, dir)?,
        "htcondor" => htcondor::write(ir, dir)?,
        "pegasus" => pegasus::write_yaml(ir, dir)?,
        "pegasus-dax" => pegasus::write_dax(ir, dir)?,
        "nextflow" => nextflow::write(ir, dir)?,
        other => return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("unknown backend `{other}`"))),
    };
    w.files = list_files(dir)?;
    Ok(w)
}

/// Every file under `dir`, relative, sorted.
pub fn list_files(dir: &Path) -> io::Result<Vec<String>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let e = e?;
            let p = e.path();
            if e.file_type()?.is_dir() {
                stack.push(p);
            } else if let Ok(rel) = p.strip_prefix(dir) {
                out.push(rel.to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    Ok(out)
}
