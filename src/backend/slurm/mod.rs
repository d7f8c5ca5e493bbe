//! Slurm: one sbatch job-array script per task group (and resource class), and a
//! `submit.sh` that submits the arrays held, in topological order, wires their dependencies,
//! then releases them.  See [`emit`] for the files, [`harvest`] for `bpsc status`, [`caps`]
//! for what is (not) expressible, and backends/slurm/README.md for the whole mapping.

pub mod caps;
pub mod emit;
pub mod harvest;
pub mod ops;

use std::path::Path;

use super::{Capability, Emitted, Engine, EngineState, JobName, Output};
use crate::diag::Diagnostic;
use crate::ir::Ir;

pub struct Slurm;

impl Engine for Slurm {
    fn name(&self) -> &'static str {
        "slurm"
    }

    fn describe(&self) -> &'static str {
        "Slurm: sbatch job arrays and a held, all-or-nothing submit.sh"
    }

    fn capabilities(&self) -> &'static [Capability] {
        caps::TABLE
    }

    fn emit(&self, ir: &Ir, out: &dyn Output) -> Result<Emitted, Diagnostic> {
        emit::write(ir, out)
    }

    fn harvest(&self, submit: &Path) -> EngineState {
        harvest::harvest(submit)
    }

    /// Slurm jobs are named `GROUP#INDEX` by the harvester (array task of a group's table).
    fn job_of_name<'a>(&self, name: &'a str, _known: &dyn Fn(&str) -> bool) -> Option<JobName<'a>> {
        let (group, index) = name.split_once('#')?;
        Some(JobName::Task { group, index: index.parse().ok()? })
    }

    fn check(&self, ir: &Ir) -> Vec<Diagnostic> {
        emit::controllers(ir).err().into_iter().collect()
    }

    fn native_events(&self) -> &'static [&'static str] {
        &["done", "failure", "slow"]
    }

    fn submit(&self, s: &mut super::ops::Session) -> Result<(), Diagnostic> {
        ops::submit(s)
    }

    fn cancel(&self, s: &mut super::ops::Session) -> Result<(), Diagnostic> {
        ops::cancel(s)
    }

    fn hold(&self, s: &mut super::ops::Session, now: bool) -> Result<(), Diagnostic> {
        ops::hold(s, now)
    }

    fn release(&self, s: &mut super::ops::Session, sets: &[super::ops::ResourceSet]) -> Result<(), Diagnostic> {
        ops::release(s, sets)
    }

    fn set_priority(&self, s: &mut super::ops::Session, priority: i64, from: i64) -> Result<(), Diagnostic> {
        ops::set_priority(s, priority, from)
    }
}
