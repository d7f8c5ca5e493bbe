//! The submit directory: the contract between the compiler, the engines, the job wrapper,
//! `bpsc status`, `bpsc restart` and `bpsc provenance`.  Its layout, its typed `bpsc.json`
//! ([`meta`]), the task tables ([`tasks`]), the provenance records ([`records`]) and every
//! exit code bpsc's programs use ([`exit`]) are defined here and nowhere else.
//!
//! ```text
//! SUBMIT/
//!   bpsc.json             what was compiled (crate::submitdir::meta::Meta): campaign,
//!                         backend, counts, groups, steps, how it was compiled, notify;
//!                         `restart` and `provenance_db` in a `bpsc restart` directory
//!   tasks/GROUP.jsonl     one line per job of a group (a step, a cluster, or an inserted
//!                         kind), in the IR's job-line format (see backends/ir/README.md)
//!   tasks/GROUP.idx       little-endian u64 byte offsets of those lines: O(1) lookup
//!   provenance/           one JSON record per job attempt, written by `bpsc wrap`
//!   logs/GROUP/           JOB.ATTEMPT.out / .err, one pair per attempt
//!   provenance.sqlite     the campaign's provenance store (crate::provstore), when ingested
//!   status/notified       notifications `bpsc status --watch` has fired
//!   operations.jsonl      every bpsc submit/cancel/hold/release/priority: what, when, who,
//!                         the exact engine commands, engine ids, result (operations)
//!   ...                   the engine's own files (DAG, sbatch scripts, workflow YAML, ...)
//! ```
//!
//! Every job of every engine runs `bpsc wrap SUBMIT --group GROUP --index K`: the wrapper
//! reads line K of the group's task table and runs it (compute quanta, transfers, removals).
//! A group's line numbers are stable, so engines index jobs by position (Slurm array task
//! ids, DAGMan VARS, Nextflow rows).

pub mod exit;
pub mod groups;
pub mod meta;
pub mod operations;
pub mod output;
pub mod records;
pub mod tasks;
pub mod time;

use std::path::{Path, PathBuf};

pub use meta::Meta;

/// `bpsc.json`.
pub const META: &str = "bpsc.json";
/// Task tables.
pub const TASKS: &str = "tasks";
/// Provenance records, one per attempt.
pub const PROVENANCE: &str = "provenance";
/// Per-attempt logs, one folder per task group.
pub const LOGS: &str = "logs";
/// What `bpsc status --watch` keeps (notifications fired).
pub const STATUS: &str = "status";
/// The default provenance store of a submit directory.
pub const PROVENANCE_DB: &str = "provenance.sqlite";

/// Paths inside one submit directory.
#[derive(Clone, Debug)]
pub struct SubmitDir {
    root: PathBuf,
}

impl SubmitDir {
    pub fn new(root: &Path) -> SubmitDir {
        SubmitDir { root: root.to_path_buf() }
    }
    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn meta(&self) -> PathBuf {
        self.root.join(META)
    }
    pub fn tasks(&self) -> PathBuf {
        self.root.join(TASKS)
    }
    /// `tasks/GROUP.jsonl`.
    pub fn table(&self, group: &str) -> PathBuf {
        self.root.join(TASKS).join(format!("{group}.jsonl"))
    }
    pub fn provenance(&self) -> PathBuf {
        self.root.join(PROVENANCE)
    }
    /// `provenance/JOB.ATTEMPT.json`.
    pub fn record(&self, job: &str, attempt: u32) -> PathBuf {
        self.root.join(PROVENANCE).join(format!("{job}.{attempt}.json"))
    }
    pub fn logs(&self, group: &str) -> PathBuf {
        self.root.join(LOGS).join(group)
    }
    pub fn status(&self) -> PathBuf {
        self.root.join(STATUS)
    }
    /// Read `bpsc.json`.
    pub fn read_meta(&self) -> Result<Meta, String> {
        Meta::read(&self.root)
    }
}
