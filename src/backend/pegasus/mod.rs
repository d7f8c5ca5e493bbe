//! Pegasus backend: the campaign as a Pegasus 5 abstract workflow (`--backend pegasus`,
//! YAML 5.0) or as a DAX 3.6 (`--backend pegasus-dax`, for sites still on Pegasus 4.x;
//! Pegasus 6 drops DAX).  See backends/pegasus/README.md for the feature mapping.
//!
//! ```text
//! SUBMIT/                      (plus the common bpsc.json, tasks/, configs/, provenance/, logs/)
//!   workflow.yml | workflow.dax   the jobs (one line each: group, id, index, what differs), their
//!                                 declared files and dependencies (streamed)
//!   sites.yml    | sites.xml      site catalog: one site per execution site, and `local`
//!   transformations.yml | (inline <executable>, empty tc.txt)   one transformation per task group,
//!                                 with the profiles its jobs share
//!   replicas.yml | (inline <file>, replicas.rc for registrations)  external pre_job inputs
//!   outputs.yml  | outputs.rc     where each archived file goes (Replica output mapper)
//!   pegasus.properties            catalogs, data configuration, output mapper, max_running
//!   plan.sh                       sets BPSC_SUBMIT/BPSC_BIN and runs pegasus-plan
//!   launch/GROUP.sh               each task group's launcher: software setup, then `bpsc wrap`
//!   bpsc-post.sh                  the POST script of groups with on_failure = abort or
//!                                 retry_unless_exit
//! ```
//!
//! Every job runs `launch/GROUP.sh K`, which runs `bpsc wrap ${BPSC_SUBMIT} --group GROUP
//! --index K`.  The submit directory's absolute path is not known at compile time (the
//! directory is written under a temporary name and may be moved or mounted elsewhere on
//! the workers), so it is left as `${BPSC_SUBMIT}`, which pegasus-plan expands from its
//! environment (`plan.sh` sets it to its own directory unless told otherwise); likewise
//! `${BPSC_BIN}` for the bpsc binary.  Jobs run in Pegasus's working directory with
//! `BPSC_SCRATCH=.`, so the wrapper reads and writes dataset instances exactly where Pegasus
//! stages them: an LFN is the instance's path relative to the scratch directory
//! (`dataset/v1_v2`, a "deep LFN").
//!
//! Only sites with a shared filesystem (`sharedfs`) are accepted: a job needs the submit
//! directory (its task tables, and its provenance record and logs go there), and bpsc
//! cannot make either reach a site without one through Pegasus (E801, [`Pegasus::check`]).

pub mod caps;
mod catalogs;
mod dax;
pub mod harvest;
pub mod model;
pub mod ops;
pub mod quote;
mod yaml;

use std::path::Path;

use super::{Capability, Emitted, Engine, EngineState, JobName, Output};
use crate::diag::Diagnostic;
use crate::ir::{Ir, JobKind};

pub use quote::{xml_escape, yaml_str};

/// Pegasus, as a YAML 5.0 workflow (`pegasus`) or a DAX 3.6 (`pegasus-dax`).
pub struct Pegasus {
    yaml: bool,
}

impl Pegasus {
    pub const YAML: Pegasus = Pegasus { yaml: true };
    pub const DAX: Pegasus = Pegasus { yaml: false };
}

fn write_flavour(ir: &Ir, out: &dyn Output, yaml_flavour: bool) -> Result<Emitted, Diagnostic> {
    let m = model::Model::new(ir, yaml_flavour);
    super::alongside_common(ir, out, &m.groups, &Default::default(), || {
        if yaml_flavour {
            yaml::write(&m, out)?;
        } else {
            dax::write(&m, out)?;
        }
        catalogs::write_all(&m, out, yaml_flavour)?;
        // Pegasus plans transfers itself: bpsc's stage jobs are not in its workflow; its
        // cleanup jobs are (they remove undeclared `discard` outputs).
        let kept = |k: JobKind| matches!(k, JobKind::Compute | JobKind::Join | JobKind::Cleanup);
        Ok(Emitted {
            groups: m.groups.counts(),
            submit_command: "./plan.sh --submit".into(),
            engine_jobs: super::kind_counts(ir, kept),
            engine_edges: m.edges.len() as u64,
        })
    })
}

impl Engine for Pegasus {
    fn name(&self) -> &'static str {
        if self.yaml {
            "pegasus"
        } else {
            "pegasus-dax"
        }
    }

    fn describe(&self) -> &'static str {
        if self.yaml {
            "Pegasus 5: workflow.yml with site, transformation and replica catalogs"
        } else {
            "Pegasus 4.x: a DAX 3.6 workflow with its catalogs"
        }
    }

    fn capabilities(&self) -> &'static [Capability] {
        caps::TABLE
    }

    fn emit(&self, ir: &Ir, out: &dyn Output) -> Result<Emitted, Diagnostic> {
        write_flavour(ir, out, self.yaml)
    }

    fn harvest(&self, submit: &Path) -> EngineState {
        harvest::harvest(submit)
    }

    fn job_of_name<'a>(&self, name: &'a str, known: &dyn Fn(&str) -> bool) -> Option<JobName<'a>> {
        harvest::job_of_name(name, known).map(|id| JobName::Id(id.into()))
    }

    fn native_events(&self) -> &'static [&'static str] {
        &["done", "failure"]
    }

    fn check(&self, ir: &Ir) -> Vec<Diagnostic> {
        caps::check(self.name(), ir)
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
