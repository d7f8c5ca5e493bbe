//! HTCondor DAGMan: one DAG file, one submit description per task group, a DAGMan
//! configuration, a job launcher and a POST script.  See [`emit`] for the files,
//! [`harvest`] for `bpsc status`, [`caps`] for what is (not) expressible, and
//! backends/htcondor/README.md for the whole mapping.

pub mod caps;
pub mod emit;
pub mod harvest;
pub mod jobstate;
pub mod ops;

use std::path::Path;

use super::{Capability, Emitted, Engine, EngineState, JobName, Output};
use crate::diag::Diagnostic;
use crate::ir::Ir;

pub use emit::{DAG_FILE, RESERVED_NODE_NAMES};

pub struct HtCondor;

impl Engine for HtCondor {
    fn name(&self) -> &'static str {
        "htcondor"
    }

    fn describe(&self) -> &'static str {
        "HTCondor DAGMan: workflow.dag and one submit description per task group"
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

    fn job_of_name<'a>(&self, name: &'a str, _known: &dyn Fn(&str) -> bool) -> Option<JobName<'a>> {
        Some(JobName::Id(harvest::node_to_job(name).into()))
    }

    fn native_events(&self) -> &'static [&'static str] {
        &["done", "failure"]
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
