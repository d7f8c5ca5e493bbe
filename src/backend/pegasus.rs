//! Pegasus backend: the campaign as a Pegasus 5 abstract workflow (`--backend pegasus`,
//! YAML 5.0) or as a DAX 3.6 (`--backend pegasus-dax`, for sites still on Pegasus 4.x;
//! Pegasus 6 drops DAX).  See backends/pegasus/README.md for the feature mapping.
//!
//! ```text
//! SUBMIT/                      (plus the common bpsc.json, tasks/, provenance/, logs/)
//!   workflow.yml | workflow.dax   the jobs, their files, profiles and dependencies (streamed)
//!   sites.yml    | sites.xml      site catalog: one site per execution site, and `local`
//!   transformations.yml | (inline <executable>, empty tc.txt)   one transformation per task group
//!   replicas.yml | (inline <file>, replicas.rc for registrations)  external pre_job inputs
//!   outputs.yml  | outputs.rc     where each archived file goes (Replica output mapper)
//!   pegasus.properties            catalogs, data configuration, output mapper, max_jobs
//!   plan.sh                       sets BPSC_SUBMIT/BPSC_BIN and runs pegasus-plan
//!   launch/setup-K.sh             software setup launchers, when a step has setup(...)
//! ```
//!
//! Every job runs `bpsc wrap ${BPSC_SUBMIT} --group G --index K`.  The submit directory's
//! absolute path is not known at compile time (the directory is written under a temporary
//! name and may be moved or mounted elsewhere on the workers), so it is left as
//! `${BPSC_SUBMIT}`, which pegasus-plan expands from its environment (`plan.sh` sets it to
//! its own directory unless told otherwise); likewise `${BPSC_BIN}` for the bpsc binary.
//! Jobs run in Pegasus's working directory with `BPSC_SCRATCH=.`, so the wrapper reads and
//! writes dataset instances exactly where Pegasus stages them: an LFN is the instance's
//! path relative to the scratch directory (`dataset/v1_v2`, a "deep LFN").

mod catalogs;
mod dax;
pub mod model;
pub mod quote;
mod yaml;

use std::io;
use std::path::Path;

use super::{write_common, Written};
use crate::ir::Ir;

pub use quote::{xml_escape, yaml_str};

fn write_flavour(ir: &Ir, dir: &Path, yaml_flavour: bool) -> io::Result<Written> {
    let m = model::Model::new(ir);
    write_common(ir, dir, if yaml_flavour { "pegasus" } else { "pegasus-dax" }, &m.groups)?;
    if yaml_flavour {
        yaml::write(&m, dir)?;
    } else {
        dax::write(&m, dir)?;
    }
    catalogs::write_all(&m, dir, yaml_flavour)?;
    Ok(Written { files: Vec::new(), submit_command: "./plan.sh --submit".into() })
}

/// `--backend pegasus`: Pegasus 5 YAML.
pub fn write_yaml(ir: &Ir, dir: &Path) -> io::Result<Written> {
    write_flavour(ir, dir, true)
}

/// `--backend pegasus-dax`: DAX 3.6 XML for Pegasus 4.x.
pub fn write_dax(ir: &Ir, dir: &Path) -> io::Result<Written> {
    write_flavour(ir, dir, false)
}
