//! Task groups: which table (`tasks/GROUP.jsonl`) each job is in, and its line there.

use crate::ir::naming::sanitize;
use crate::ir::{Ir, JobKind, NO_CLUSTER};

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

impl Groups {
    pub fn counts(&self) -> Vec<(String, u64)> {
        self.names.iter().zip(&self.members).map(|(n, m)| (n.clone(), m.len() as u64)).collect()
    }
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
            JobKind::Compute if job.owner == NO_CLUSTER => sanitize(&ir.steps[ir.members[job.lo as usize].step as usize].name),
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
