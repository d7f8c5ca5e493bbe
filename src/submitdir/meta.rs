//! `bpsc.json`: what a submit directory holds and how it was made, typed.  Written once by
//! the compiler (and by `bpsc restart`), read by status, restart, the store and the wrapper.
//! Fields this version does not know are kept as they are when a file is rewritten.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The whole file.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Meta {
    pub bpsc_version: String,
    pub ir_version: u32,
    pub campaign: String,
    pub backend: String,
    /// Jobs and edges of the IR (bpsc's view, inserted jobs included).
    pub jobs: u64,
    pub edges: u64,
    /// Task groups in table order.
    pub groups: Vec<GroupMeta>,
    /// Steps in campaign order.
    pub steps: Vec<StepMeta>,
    /// How it was compiled (for `bpsc restart`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compile: Option<CompileMeta>,
    /// The campaign's notifications (for `bpsc status --watch`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<NotifyMeta>,
    /// What a `bpsc restart` directory restarts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart: Option<RestartMeta>,
    /// The command that submits the directory, run from it (as the engine wrote it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submit_command: Option<String>,
    /// The campaign's priority as compiled (`bpsc priority` moves the pending jobs from it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i64>,
    /// The campaign's provenance store when it is not this directory's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance_db: Option<PathBuf>,
    /// Fields of other versions, kept.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct GroupMeta {
    pub name: String,
    pub jobs: u64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct StepMeta {
    pub name: String,
    pub quanta: u64,
    #[serde(default)]
    pub on_failure: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CompileMeta {
    pub file: PathBuf,
    pub campaign: Option<String>,
    #[serde(default)]
    pub sets: Vec<String>,
    pub steps: Option<String>,
    pub coverage_warn: Option<usize>,
    /// Compiled with `--allow-unknown-steps` (a restart compiles the same way).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_unknown_steps: bool,
    pub backend: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct NotifyMeta {
    #[serde(default)]
    pub on: Vec<String>,
    pub slow_after: Option<u64>,
    pub command: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RestartMeta {
    /// The submit directory restarted.
    pub of: PathBuf,
    #[serde(default)]
    pub from: Vec<String>,
    pub data_ids: Option<PathBuf>,
    #[serde(default)]
    pub sets: Vec<String>,
    pub host_failures_threshold: u64,
    pub host_failure_rate_threshold: f64,
    #[serde(default)]
    pub avoid_hosts_added: Vec<HostFailures>,
    pub stats: CutStats,
    #[serde(default)]
    pub records_from: Vec<PathBuf>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct HostFailures {
    pub host: String,
    pub failures: u64,
}

/// What a restart's cut kept and dropped.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct CutStats {
    pub quanta_total: u64,
    pub quanta_succeeded_excluded: u64,
    pub quanta_designated: u64,
    pub quanta_remaining: u64,
    pub jobs_before: u64,
    pub jobs_after: u64,
    /// Stage-out jobs that had not succeeded although their compute job had: their outputs
    /// are on the scratch area but were not archived by this campaign.
    #[serde(default)]
    pub unarchived: Vec<String>,
}

impl Meta {
    /// Read `DIR/bpsc.json`.
    pub fn read(dir: &Path) -> Result<Meta, String> {
        let p = dir.join(super::META);
        let text = std::fs::read_to_string(&p).map_err(|e| format!("{}: {e} (not a bpsc submit directory?)", p.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{}: not a bpsc.json this version reads: {e}", p.display()))
    }

    /// The file's text (pretty JSON, newline-terminated).
    pub fn to_text(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }

    /// Write `DIR/bpsc.json` atomically (temporary file, then rename).
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        let p = dir.join(super::META);
        let tmp = dir.join(format!(".{}.{}.tmp", super::META, std::process::id()));
        std::fs::write(&tmp, self.to_text())?;
        std::fs::rename(&tmp, &p)
    }

    /// The `on_failure` of step `name`, when recorded.
    pub fn on_failure(&self, step: &str) -> Option<&str> {
        self.steps.iter().find(|s| s.name == step).and_then(|s| s.on_failure.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_survive_a_rewrite() {
        let text = r#"{"bpsc_version":"0.0.9","ir_version":1,"campaign":"c","backend":"slurm","jobs":3,"edges":2,
            "groups":[{"name":"a","jobs":3}],"steps":[{"name":"a","quanta":3,"on_failure":"abort"}],"future":{"x":1}}"#;
        let m: Meta = serde_json::from_str(text).unwrap();
        assert_eq!(m.on_failure("a"), Some("abort"));
        let back: serde_json::Value = serde_json::from_str(&m.to_text()).unwrap();
        assert_eq!(back["future"]["x"], 1);
        assert!(back.get("restart").is_none());
    }

    #[test]
    fn a_broken_file_is_an_error_not_a_panic() {
        let d = std::env::temp_dir().join(format!("bpsc-meta-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        assert!(Meta::read(&d).unwrap_err().contains("not a bpsc submit directory"));
        std::fs::write(d.join("bpsc.json"), "{\"campaign\": 3").unwrap();
        assert!(Meta::read(&d).is_err());
        std::fs::remove_dir_all(&d).unwrap();
    }
}
