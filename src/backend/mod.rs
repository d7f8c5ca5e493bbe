//! Engines: from the IR to a submit directory for a real workflow engine, and back from
//! the engine's own files to the state of a submitted campaign.
//!
//! # The engine contract
//!
//! Every engine is one folder here (`htcondor/`, `slurm/`, `pegasus/`, `nextflow/`), all of
//! the same shape:
//!
//! | file | what |
//! |---|---|
//! | `mod.rs` | the [`Engine`] implementation: name, capabilities, emit, harvest, control |
//! | `caps.rs` | the capability table: how the engine carries every language feature, and what it cannot express |
//! | `emit.rs` | the writer of the engine's files (through an [`Output`]) |
//! | `harvest.rs` | the reader of the engine's own state (logs, queue) for `bpsc status` |
//! | `ops.rs` | operating a submitted campaign: submit, cancel, hold, release, priority ([`ops`]) |
//!
//! Engines only translate: every setting a job gets was decided by lowering and is in the
//! IR ([`crate::ir::JobSettings`]).  An engine that cannot express a setting says so in its
//! capability table, and [`caps::check`] turns that into a coded diagnostic (W801 where the
//! campaign still runs correctly without it, E801 where it would not) before anything is
//! written.  Errors are [`Diagnostic`]s, never `io::Error` messages parsed back.
//!
//! The one registry is [`ENGINES`]: adding an engine is one folder and one line there.
//!
//! The submit directory every engine writes is described in [`crate::submitdir`].

pub mod caps;
pub mod ops;
pub mod state;
pub mod templates;

pub mod htcondor;
pub mod nextflow;
pub mod pegasus;
pub mod slurm;

use std::path::Path;

use crate::diag::Diagnostic;
use crate::ir::{Ir, JobKind};

pub use crate::submitdir::groups::{groups, Groups};
pub use crate::submitdir::output::{DirOutput, MemOutput, Output};
pub use caps::{Capability, Feature, Support};
pub use state::{EState, EngineJob, EngineState};

/// A workflow engine bpsc compiles for.
pub trait Engine: Sync {
    /// The name on the command line (`--backend`) and in `bpsc.json`.
    fn name(&self) -> &'static str;

    /// One line: what the engine's files are.
    fn describe(&self) -> &'static str;

    /// How the engine carries every language feature (one row per [`Feature`]).
    fn capabilities(&self) -> &'static [Capability];

    /// Write the submit directory of `ir` through `out`: the engine's files and the common
    /// contract (task tables, provenance and log folders).  `bpsc.json` is written by the
    /// caller from what this returns.
    fn emit(&self, ir: &Ir, out: &dyn Output) -> Result<Emitted, Diagnostic>;

    /// What the engine's own files and tools say about a submitted campaign.
    fn harvest(&self, submit: &Path) -> EngineState;

    /// The bpsc job an engine job name stands for (`known` says whether a job id exists).
    fn job_of_name<'a>(&self, name: &'a str, _known: &dyn Fn(&str) -> bool) -> Option<JobName<'a>> {
        Some(JobName::Id(std::borrow::Cow::Borrowed(name)))
    }

    /// Notification events the engine's files fire themselves; `bpsc status --watch` fires
    /// the others.
    fn native_events(&self) -> &'static [&'static str] {
        &[]
    }

    /// What the engine cannot express that no single row of its capability table can say,
    /// because it depends on more than one setting (a step's site, the campaign's sites
    /// together, the jobs of one task group), as W801/E801 diagnostics like the table's.
    /// [`caps::check`] adds them to the table's.
    fn check(&self, _ir: &Ir) -> Vec<Diagnostic> {
        Vec::new()
    }

    // Operating a submitted campaign ([`ops`]): each runs the engine's own commands through
    // the session (which records them), or says with E903 that the engine cannot and what
    // to do instead.  The caller has checked the campaign's state and records the result.

    /// Submit the compiled directory; `s.resubmit`: submit it again (after a cancel or a
    /// failure), the way the engine continues a run.  Sets the engine ids.
    fn submit(&self, s: &mut ops::Session) -> Result<(), Diagnostic>;

    /// Remove everything the submission created and wait until the engine confirms.
    fn cancel(&self, s: &mut ops::Session) -> Result<(), Diagnostic>;

    /// Pause: no new job starts; running jobs finish, or with `now` are stopped and held
    /// too where the engine can.
    fn hold(&self, s: &mut ops::Session, now: bool) -> Result<(), Diagnostic>;

    /// Resume a held campaign, first changing the resources of its queued jobs (`sets`).
    fn release(&self, s: &mut ops::Session, sets: &[ops::ResourceSet]) -> Result<(), Diagnostic>;

    /// Move the pending jobs to campaign priority `priority` (higher runs first), from the
    /// campaign's current priority `from`.
    fn set_priority(&self, s: &mut ops::Session, priority: i64, from: i64) -> Result<(), Diagnostic>;
}

/// How an engine names a bpsc job in its state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobName<'a> {
    /// By job id.
    Id(std::borrow::Cow<'a, str>),
    /// By task group and index (Slurm array tasks).
    Task { group: &'a str, index: usize },
}

/// The registry: every engine with its name, in the order `--help` lists them.  Adding an
/// engine is its folder and one line here.
const REGISTRY: &[(&str, &dyn Engine)] = &[
    ("slurm", &slurm::Slurm),
    ("htcondor", &htcondor::HtCondor),
    ("pegasus", &pegasus::Pegasus::YAML),
    ("pegasus-dax", &pegasus::Pegasus::DAX),
    ("nextflow", &nextflow::Nextflow),
];

const fn registry_engines<const N: usize>() -> [&'static dyn Engine; N] {
    let mut out: [&'static dyn Engine; N] = [&htcondor::HtCondor; N];
    let mut i = 0;
    while i < N {
        out[i] = REGISTRY[i].1;
        i += 1;
    }
    out
}

const fn registry_names<const N: usize>() -> [&'static str; N] {
    let mut out = [""; N];
    let mut i = 0;
    while i < N {
        out[i] = REGISTRY[i].0;
        i += 1;
    }
    out
}

/// Every engine.
pub static ENGINES: [&dyn Engine; REGISTRY.len()] = registry_engines::<{ REGISTRY.len() }>();

/// Every engine's name (what `--backend` and a site's `backend` take).
pub static NAMES: [&str; REGISTRY.len()] = registry_names::<{ REGISTRY.len() }>();

/// The engine called `name`.
pub fn find(name: &str) -> Option<&'static dyn Engine> {
    REGISTRY.iter().find(|(n, _)| *n == name).map(|(_, e)| *e)
}

/// The names of every engine.
pub fn names() -> Vec<&'static str> {
    NAMES.to_vec()
}

/// An unknown engine name, as a diagnostic with the names there are.
pub fn unknown(name: &str) -> Diagnostic {
    let names = names();
    let mut d = Diagnostic::new("E201", format!("no backend named `{name}`"));
    match crate::diag::did_you_mean(name, names.iter().copied()) {
        Some(s) => d = d.help(format!("did you mean `{s}`?")),
        None => d = d.help(format!("backends: {}", names.join(", "))),
    }
    d
}

/// What an engine wrote.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Emitted {
    /// Task groups, in table order, with their job counts.
    pub groups: Vec<(String, u64)>,
    /// The command that submits the workflow, run from the submit directory.
    pub submit_command: String,
    /// Jobs the engine itself will see, by kind (compute, stage_in, ...): inserted jobs an
    /// engine handles by other means (Pegasus plans transfers itself) are not counted.
    pub engine_jobs: Vec<(String, u64)>,
    /// Dependencies the engine will see.
    pub engine_edges: u64,
}

/// Jobs of every kind, as the engine sees them when it runs the jobs `keep` says.
pub fn kind_counts(ir: &Ir, keep: impl Fn(JobKind) -> bool) -> Vec<(String, u64)> {
    JobKind::ALL
        .iter()
        .filter(|k| keep(**k))
        .map(|k| (k.as_str().to_string(), ir.jobs.iter().filter(|j| j.kind == *k).count() as u64))
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// Write the parts of the submit-directory contract every engine shares: the task tables,
/// and the provenance and per-group log folders.
pub fn write_common(ir: &Ir, out: &dyn Output, g: &Groups, opts: &crate::submitdir::tasks::TableOptions) -> Result<(), Diagnostic> {
    out.mkdir(crate::submitdir::PROVENANCE)?;
    for name in &g.names {
        out.mkdir(&format!("{}/{name}", crate::submitdir::LOGS))?;
    }
    crate::submitdir::tasks::write_tables(ir, out, g, opts)?;
    write_configs(ir, out)?;
    Ok(())
}

/// `configs/PIPELINE.CONFIG.json`: each pipeline's resolved config, as its steps use it.
pub fn write_configs(ir: &Ir, out: &dyn Output) -> Result<(), Diagnostic> {
    let mut done = std::collections::BTreeSet::new();
    for st in ir.steps.iter().map(|s| &s.spec).chain(ir.final_job.as_ref().map(|f| &f.spec)) {
        let Some(path) = crate::ir::jsonl::config_path(st) else { continue };
        if !done.insert(path.clone()) {
            continue;
        }
        let values: serde_json::Map<String, serde_json::Value> =
            st.config.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect();
        let doc = serde_json::json!({
            "pipeline": st.pipeline,
            "config": st.config_name,
            "campaign": ir.campaign,
            "values": values,
        });
        out.write(&path, (serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n").as_bytes())?;
    }
    Ok(())
}

/// The bpsc executable the jobs run: `$BPSC_EXE` at compile time, else this executable.
pub fn bpsc_exe() -> Result<String, Diagnostic> {
    if let Ok(e) = std::env::var("BPSC_EXE") {
        if !e.is_empty() {
            return Ok(e);
        }
    }
    let p = std::env::current_exe()?;
    Ok(p.to_string_lossy().into_owned())
}

/// Text safe inside a comment line of any engine file: control characters become `?`.
pub fn comment_text(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { '?' } else { c }).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn registry_names_are_the_engines_own() {
        for (name, e) in super::REGISTRY {
            assert_eq!(*name, e.name());
        }
        assert_eq!(super::NAMES.len(), super::ENGINES.len());
    }
}

/// Run `engine` (an engine writing its own files) on this thread while [`write_common`]
/// writes the task tables and configs on a second one: the two are the largest writes of a
/// compile, read the IR only and write disjoint files, so a million-job compile overlaps
/// them on two cores. The shared part's error wins when both fail (it is the one the engine's
/// files depend on); a panic on either thread goes on as that panic.
pub fn alongside_common<T>(
    ir: &Ir,
    out: &dyn Output,
    g: &Groups,
    opts: &crate::submitdir::tasks::TableOptions,
    engine: impl FnOnce() -> Result<T, Diagnostic>,
) -> Result<T, Diagnostic> {
    std::thread::scope(|s| {
        let common = std::thread::Builder::new().name("bpsc-tables".into()).spawn_scoped(s, || write_common(ir, out, g, opts));
        let Ok(common) = common else {
            // No second thread to be had: write the shared part here, first.
            write_common(ir, out, g, opts)?;
            return engine();
        };
        let r = engine();
        match common.join() {
            Ok(c) => c.and(r),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}
