//! The IR DAG every backend reads.
//!
//! Compact by design: a step's quanta are a [`Relation`] (dictionary codes, canonical
//! order), jobs are small fixed-size records, edges are a sorted `Vec<(u32, u32)>` of job
//! indices.  Strings (job ids, commands) are produced on demand while writing, never stored
//! per job, so a million-job campaign stays within a few tens of megabytes.

use crate::check::model::{Persist, Stage, Template};
use crate::check::resolve::StepSettings;
use crate::coverage::{Dictionaries, Relation, Value};

pub const IR_VERSION: u32 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// Runs the quanta listed in its member range (one, or a cluster).
    Compute,
    /// Copies external `pre_job` inputs to the site before their consumers run.
    StageIn,
    /// Copies a compute job's archived outputs to their archive location, with checksums.
    StageOut,
    /// Removes a compute job's discarded outputs once their last consumer has finished.
    Cleanup,
    /// No-op node that carries a barrier or a large fan-in.
    Join,
    /// The final job: collects every provenance record.  Engine-native final node where the
    /// engine has one; it has no edges in the IR.
    Provenance,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Compute => "compute",
            JobKind::StageIn => "stage_in",
            JobKind::StageOut => "stage_out",
            JobKind::Cleanup => "cleanup",
            JobKind::Join => "join",
            JobKind::Provenance => "provenance",
        }
    }
}

/// One node of the DAG.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Job {
    pub kind: JobKind,
    /// Compute: the cluster index or `u32::MAX` for an unclustered quantum.
    /// StageOut/Cleanup: the compute job it belongs to.  Join: its ordinal.
    /// StageIn: its ordinal among stage-in jobs.
    pub owner: u32,
    /// Compute: range into [`Ir::members`].  StageIn: range into [`Ir::staged`].
    pub lo: u32,
    pub hi: u32,
    pub priority: i32,
}

/// A quantum: step index and row in that step's quanta relation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QRef {
    pub step: u32,
    pub q: u32,
}

#[derive(Clone, Debug)]
pub struct IrInput {
    pub dataset: String,
    pub optional: bool,
    /// Produced by a step of this IR (otherwise external or produced outside `--steps`).
    pub produced: bool,
    pub stage: Stage,
    /// URL template of an external input.
    pub source: Option<Template>,
    pub dims: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct IrOutput {
    pub dataset: String,
    pub persist: Persist,
    pub archive: Option<Template>,
    pub verify: bool,
    pub dims: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct IrStep {
    pub name: String,
    pub pipeline: String,
    pub dims: Vec<String>,
    pub quanta: Relation,
    pub settings: StepSettings,
    pub site: Option<String>,
    pub shared_fs: bool,
    pub run: Template,
    pub config_name: Option<String>,
    /// Resolved config parameters (with inheritance), for `{config.KEY}`.
    pub config: Vec<(String, String)>,
    pub inputs: Vec<IrInput>,
    pub outputs: Vec<IrOutput>,
    /// Longest path from a root in the step graph.
    pub level: u32,
    pub cluster: Option<u32>,
    /// Job index of each quantum.
    pub job_of: Vec<u32>,
}

#[derive(Clone, Debug)]
pub struct IrCluster {
    pub name: String,
    pub steps: Vec<u32>,
    pub by: Vec<String>,
    pub size: Option<u32>,
}

#[derive(Clone, Debug)]
pub struct IrSite {
    pub name: String,
    pub backend: Option<String>,
    pub shared_fs: bool,
    pub scratch: Option<String>,
    pub max_array_size: Option<i64>,
    /// The site's `max_memory` (bytes): memory growth on retries never asks for more.
    pub max_memory: Option<u64>,
}

/// One `pre_job` dataset instance to stage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Staged {
    pub dataset: u32,
    /// Row in [`Ir::stage_sets`]`[dataset]`.
    pub row: u32,
}

#[derive(Clone, Debug)]
pub struct StageSet {
    pub dataset: String,
    pub source: Template,
    /// Distinct instances (data IDs over the dataset's dimensions).
    pub instances: Relation,
}

#[derive(Clone, Debug, Default)]
pub struct Notify {
    pub on: Vec<String>,
    pub slow_after: Option<u64>,
    pub command: Option<String>,
}

#[derive(Debug)]
pub struct Ir {
    pub campaign: String,
    pub dicts: Dictionaries,
    pub coverage_size: usize,
    pub steps: Vec<IrStep>,
    pub clusters: Vec<IrCluster>,
    pub sites: Vec<IrSite>,
    pub jobs: Vec<Job>,
    pub members: Vec<QRef>,
    pub stage_sets: Vec<StageSet>,
    pub staged: Vec<Staged>,
    /// (parent, child) job indices, sorted, no duplicates, no self-loops.
    pub edges: Vec<(u32, u32)>,
    pub order: String,
    pub priority: i64,
    pub notify: Notify,
    /// Step-level dependencies: (from step, to step, kind): `after`, `all` (barrier, also
    /// `order A before B`), or `data:DATASET` (dataset flow).
    pub step_edges: Vec<(u32, u32, String)>,
}

impl Ir {
    pub fn job_members(&self, j: u32) -> &[QRef] {
        let job = &self.jobs[j as usize];
        match job.kind {
            JobKind::Compute => &self.members[job.lo as usize..job.hi as usize],
            _ => &[],
        }
    }

    /// Values of a quantum's data ID, in the step's dimension order.
    pub fn data_id(&self, r: QRef) -> Vec<&Value> {
        self.steps[r.step as usize].quanta.row(r.q as usize, &self.dicts)
    }

    pub fn compute_jobs(&self) -> usize {
        self.jobs.iter().filter(|j| j.kind == JobKind::Compute).count()
    }

    /// Children of each job (CSR: offsets, targets), built from the sorted edge list.
    pub fn children(&self) -> (Vec<u32>, Vec<u32>) {
        csr_children(self.jobs.len(), &self.edges)
    }

    /// Parents of each job (CSR).
    pub fn parents(&self) -> (Vec<u32>, Vec<u32>) {
        csr_parents(self.jobs.len(), &self.edges)
    }

    /// Stable, engine-safe id of a job (see [`encode_value`]).
    pub fn job_id(&self, j: u32) -> String {
        let job = &self.jobs[j as usize];
        match job.kind {
            JobKind::Compute => {
                if job.owner == u32::MAX {
                    let m = self.members[job.lo as usize];
                    quantum_id(&super::graph::sanitize(&self.steps[m.step as usize].name), &self.data_id(m))
                } else {
                    let c = &self.clusters[job.owner as usize];
                    let m = self.members[job.lo as usize];
                    if c.size.is_some() {
                        // Chunks are numbered within the cluster; the ordinal is the job's
                        // position among the cluster's jobs, recorded in `priority`-free form:
                        // the first member's data ID identifies the chunk stably.
                        let step = &self.steps[m.step as usize];
                        format!("{}_{}", c.name, quantum_id(&super::graph::sanitize(&step.name), &self.data_id(m)))
                    } else {
                        let step = &self.steps[m.step as usize];
                        let vals: Vec<&Value> =
                            c.by.iter()
                                .filter_map(|d| step.dims.iter().position(|x| x == d))
                                .map(|i| step.quanta.row(m.q as usize, &self.dicts)[i])
                                .collect();
                        quantum_id(&c.name, &vals)
                    }
                }
            }
            JobKind::StageIn => format!("stagein_{}", job.owner),
            JobKind::StageOut => format!("stageout_{}", self.job_id(job.owner)),
            JobKind::Cleanup => format!("cleanup_{}", self.job_id(job.owner)),
            JobKind::Join => format!("join_{}", job.owner),
            JobKind::Provenance => "provenance".to_string(),
        }
    }
}

/// Children of each of `n` nodes as CSR (offsets of length n+1, targets), from edges sorted
/// by parent.
pub fn csr_children(n: usize, edges: &[(u32, u32)]) -> (Vec<u32>, Vec<u32>) {
    let mut off = vec![0u32; n + 1];
    for &(p, _) in edges {
        off[p as usize + 1] += 1;
    }
    for i in 0..n {
        off[i + 1] += off[i];
    }
    let mut pos = off.clone();
    let mut out = vec![0u32; edges.len()];
    for &(p, c) in edges {
        out[pos[p as usize] as usize] = c;
        pos[p as usize] += 1;
    }
    (off, out)
}

/// Parents of each of `n` nodes as CSR, from edges in any order.
pub fn csr_parents(n: usize, edges: &[(u32, u32)]) -> (Vec<u32>, Vec<u32>) {
    let flipped: Vec<(u32, u32)> = edges.iter().map(|&(p, c)| (c, p)).collect();
    csr_children(n, &flipped)
}

/// `step_v1_v2`: values encoded by [`encode_value`].
pub fn quantum_id(prefix: &str, vals: &[&Value]) -> String {
    let mut s = String::with_capacity(prefix.len() + vals.len() * 8);
    s.push_str(prefix);
    for v in vals {
        s.push('_');
        encode_value(v, &mut s);
    }
    s
}

/// Encode a data ID value for ids and paths: ASCII letters and digits stay, every other
/// byte becomes `-XX` (hex), and a negative integer starts with `-2d`.  The result matches
/// `[A-Za-z0-9-]+`: safe as a DAGMan node name, a Pegasus id, a Slurm job name and a path
/// component (no `/`, no `.`, no quote, no space).  It is injective, and since it never
/// contains `_`, `prefix_v1_v2` splits back unambiguously.
pub fn encode_value(v: &Value, out: &mut String) {
    match v {
        Value::Int(i) => {
            if *i < 0 {
                out.push_str("-2d");
                out.push_str(&i.unsigned_abs().to_string());
            } else {
                out.push_str(&i.to_string());
            }
        }
        Value::Str(s) => {
            if s.is_empty() {
                out.push_str("-00-00");
            }
            for b in s.bytes() {
                if b.is_ascii_alphanumeric() {
                    out.push(b as char);
                } else {
                    out.push_str(&format!("-{b:02x}"));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    fn enc(v: Value) -> String {
        let mut s = String::new();
        encode_value(&v, &mut s);
        s
    }
    #[test]
    fn hostile_values_encode_to_safe_tokens() {
        for v in ["../../etc", "$(rm -rf ~)", "a b", "it's", "x\ny", "\"q\"", "g-r", "a_b"] {
            let e = enc(Value::Str(v.into()));
            assert!(e.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'), "{v:?} -> {e}");
        }
        assert_eq!(enc(Value::Str("../x".into())), "-2e-2e-2fx");
        assert_eq!(enc(Value::Int(-5)), "-2d5");
        assert_ne!(enc(Value::Str("a-b".into())), enc(Value::Str("a".into())) + "-b");
        // Int 5 and string "5" encode alike; they can only meet in a dimension of mixed
        // kinds, which lowering checks for collisions (E802).
    }
}
