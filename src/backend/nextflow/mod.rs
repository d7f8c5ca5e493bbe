//! Nextflow DSL2: a `main.nf` with one process per task group and `nextflow.config`;
//! jobs and edges are tables the workflow reads.  See [`emit`] for the files, [`harvest`]
//! for `bpsc status`, [`caps`] for what is (not) expressible, and
//! backends/nextflow/README.md for the whole mapping.

pub mod caps;
pub mod emit;
pub mod harvest;
pub mod ops;

use std::path::Path;

use super::{Capability, Emitted, Engine, EngineState, Output};
use crate::diag::Diagnostic;
use crate::ir::Ir;

pub struct Nextflow;

impl Engine for Nextflow {
    fn name(&self) -> &'static str {
        "nextflow"
    }

    fn describe(&self) -> &'static str {
        "Nextflow DSL2: main.nf, nextflow.config and the job and edge tables it reads"
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
