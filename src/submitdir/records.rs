//! Provenance records (`SUBMIT/provenance/JOB.ATTEMPT.json`, written by `bpsc wrap`) and
//! task tables (`SUBMIT/tasks/GROUP.jsonl`), read leniently.

use std::collections::HashMap;
use std::io::BufRead;
use std::path::Path;

/// One attempt's record: the fields status, the store and restart use.  Unknown fields
/// are ignored; missing ones take their defaults.
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct Record {
    pub job_id: String,
    pub kind: String,
    pub group: String,
    pub index: u64,
    pub attempt: u32,
    pub host: Option<String>,
    pub start: Option<String>,
    pub end: Option<String>,
    pub seconds: Option<f64>,
    pub exit_code: Option<i64>,
    pub signal: Option<i64>,
    pub peak_rss_kib: Option<i64>,
    pub software: Option<String>,
    pub env_digest: Option<String>,
    pub error: Option<String>,
    /// `bpsc wrap --skip-failed-parents` did not run the job.
    pub skipped: bool,
    pub quanta: Vec<RecQuantum>,
    pub log: RecLog,
    /// The engine's own id of the attempt (Slurm `JOB_TASK`, HTCondor `ClusterId.ProcId`,
    /// Nextflow's task hash, Pegasus's DAG job id), and which engine (`engine`).
    pub engine_job: Option<String>,
    pub engine: Option<String>,
    /// The attempt ran out of memory (`None`: it could not be told).
    pub oom: Option<bool>,
    /// The signal that stopped the wrapper (`SIGTERM`, ...), when one did.
    pub interrupted: Option<String>,
    /// Written by a later attempt for one that was killed before it could write its own.
    pub lost: bool,
}

#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct RecQuantum {
    pub step: String,
    pub data_id: serde_json::Value,
    pub start: Option<String>,
    pub end: Option<String>,
    pub exit_code: Option<i64>,
    pub signal: Option<i64>,
    pub seconds: Option<f64>,
    pub oom: Option<bool>,
    /// The quantum's config file, relative to the submit directory.
    pub config: Option<String>,
    pub peak_rss_kib: Option<i64>,
}

#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct RecLog {
    pub out: Option<String>,
    pub err: Option<String>,
}

impl Record {
    pub fn succeeded(&self) -> bool {
        self.exit_code == Some(0) && self.signal.is_none() && !self.skipped && !self.lost
    }

    /// The user's final job (run by the provenance job; not a job of the task tables).
    pub fn is_final_job(&self) -> bool {
        self.kind == "final"
    }
}

impl RecQuantum {
    pub fn succeeded(&self) -> bool {
        self.exit_code == Some(0) && self.signal.is_none()
    }
}

/// The canonical text of a data ID: JSON with keys sorted (serde_json's map is ordered).
pub fn data_id_key(v: &serde_json::Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// `k=v, k=v` for people.
pub fn data_id_text(v: &serde_json::Value) -> String {
    match v.as_object() {
        Some(m) => m
            .iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => format!("{k}={s}"),
                other => format!("{k}={other}"),
            })
            .collect::<Vec<_>>()
            .join(", "),
        None => String::new(),
    }
}

/// Is `name` a record file (`JOB.ATTEMPT.json`)?
fn record_name(name: &str) -> bool {
    !name.starts_with('.')
        && name.strip_suffix(".json").and_then(|s| s.rsplit_once('.')).is_some_and(|(job, a)| !job.is_empty() && a.parse::<u32>().is_ok())
}

/// Call `f` with every record of `SUBMIT/provenance` (and its raw text), in file-name
/// order.  Unreadable records are reported in the returned notes, never fatal.
pub fn for_each_record(submit: &Path, mut f: impl FnMut(Record, &str)) -> Vec<String> {
    let mut notes = Vec::new();
    let dir = submit.join("provenance");
    let mut names: Vec<String> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| record_name(n)).collect(),
        Err(e) => {
            if e.kind() != std::io::ErrorKind::NotFound {
                notes.push(format!("{}: {e}", dir.display()));
            }
            return notes;
        }
    };
    names.sort();
    let mut bad = 0usize;
    for n in names {
        let p = dir.join(&n);
        let text = match std::fs::read_to_string(&p) {
            Ok(t) => t,
            Err(e) => {
                notes.push(format!("{}: {e}", p.display()));
                continue;
            }
        };
        match serde_json::from_str::<Record>(&text) {
            Ok(r) if !r.job_id.is_empty() => f(r, &text),
            _ => {
                bad += 1;
                if bad <= 5 {
                    notes.push(format!("{}: not a provenance record", p.display()));
                }
            }
        }
    }
    if bad > 5 {
        notes.push(format!("... and {} more unreadable provenance records", bad - 5));
    }
    notes
}

/// A job line of a task table: what status needs.
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct TaskLine {
    pub id: String,
    pub kind: String,
    pub parents: Vec<String>,
    pub cluster: Option<String>,
    pub quanta: Vec<TaskQuantum>,
}

#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct TaskQuantum {
    pub step: String,
    pub data_id: serde_json::Value,
}

/// Call `f(group, index, line)` for every job of every task table, groups in name order.
pub fn for_each_task(submit: &Path, mut f: impl FnMut(&str, u64, TaskLine)) -> Vec<String> {
    let t = match super::tasks::Tables::open(submit) {
        Ok(t) => t,
        Err(e) => return vec![e],
    };
    let mut notes = Vec::new();
    let mut order: Vec<usize> = (0..t.spec.groups.len()).collect();
    order.sort_by(|&a, &b| t.spec.groups[a].name.cmp(&t.spec.groups[b].name));
    let data_id = |dims: &[String], vals: &[crate::coverage::Value]| {
        let mut m = serde_json::Map::new();
        for (d, v) in dims.iter().zip(vals) {
            let j = match v {
                crate::coverage::Value::Int(i) => serde_json::Value::from(*i),
                crate::coverage::Value::Str(s) => serde_json::Value::from(&**s),
            };
            m.insert(d.clone(), j);
        }
        serde_json::Value::Object(m)
    };
    for gi in order {
        let g = &t.spec.groups[gi];
        if g.layout == super::tasks::Layout::Lines {
            let p = submit.join(super::TASKS).join(format!("{}.jsonl", g.name));
            let file = match std::fs::File::open(&p) {
                Ok(f) => f,
                Err(e) => {
                    notes.push(format!("{}: {e}", p.display()));
                    continue;
                }
            };
            for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
                let Ok(line) = line else {
                    notes.push(format!("{}: unreadable after line {i}", p.display()));
                    break;
                };
                match serde_json::from_str::<TaskLine>(&line) {
                    Ok(l) => f(&g.name, i as u64, l),
                    Err(e) => notes.push(format!("{}:{}: {e}", p.display(), i + 1)),
                }
            }
            continue;
        }
        for k in 0..g.jobs {
            let job = match t.job(gi, k) {
                Ok(j) => j,
                Err(e) => {
                    notes.push(e);
                    break;
                }
            };
            let quanta = job
                .quanta
                .iter()
                .map(|(s, _, vals)| TaskQuantum { step: t.step_name(*s).to_string(), data_id: data_id(t.step_dims(*s), vals) })
                .collect();
            let cluster = job.cluster.and_then(|c| t.spec.clusters.get(c as usize)).map(|c| c.name.clone());
            let parents = match t.parents(gi, k) {
                Ok(p) => p.unwrap_or_default(),
                Err(e) => {
                    notes.push(e);
                    Vec::new()
                }
            };
            f(&g.name, k, TaskLine { id: job.id, kind: job.kind.as_str().to_string(), parents, cluster, quanta });
        }
    }
    notes
}

/// Attempt log files present: job -> highest attempt with a log.
pub fn log_attempts(submit: &Path) -> HashMap<String, (u32, std::path::PathBuf)> {
    let mut out: HashMap<String, (u32, std::path::PathBuf)> = HashMap::new();
    let Ok(groups) = std::fs::read_dir(submit.join("logs")) else { return out };
    for g in groups.flatten() {
        let Ok(rd) = std::fs::read_dir(g.path()) else { continue };
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            let Some((job, a)) = n.strip_suffix(".out").and_then(|s| s.rsplit_once('.')) else { continue };
            let Ok(a) = a.parse::<u32>() else { continue };
            let slot = out.entry(job.to_string()).or_insert((0, e.path()));
            if a >= slot.0 {
                *slot = (a, e.path());
            }
        }
    }
    out
}
