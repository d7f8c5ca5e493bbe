//! Typed settings: what the campaign says about a step's jobs, and what each job gets.
//!
//! # Which step governs a job (the one rule)
//!
//! Lowering gives every job a *governing step*, and every engine reads a job's placement
//! (site, partition, account, qos, hosts, env) from it and nowhere else:
//!
//! | job | governing step |
//! |---|---|
//! | compute | the step of its first quantum (a cluster's first member, in dependency order) |
//! | stage-out, cleanup | the governing step of the compute job it serves |
//! | stage-in, join | the governing step of the first compute job reached through its children (breadth-first, by job index), else through its parents |
//! | provenance | the first step, in definition order, at a site with a shared filesystem; else the first step |
//!
//! Resources follow the job's kind: a compute job combines its quanta's steps (the maximum
//! memory, cpus and disk, the **sum** of the quanta's walltimes, the maximum retries and
//! memory growth, the union of the exit-code filters, `abort` if any step aborts, the smallest
//! throttle); inserted jobs (stage-in, stage-out, cleanup, join, provenance) get
//! [`Resources::inserted`] and no payload software.

use crate::source::Loc;

/// `software = container("image")` or `setup("shell to source")`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Software {
    Container(String),
    Setup(String),
}

impl Software {
    /// `container:IMAGE` / `setup:TEXT`: the form recorded in provenance (`BPSC_SOFTWARE`).
    pub fn label(&self) -> String {
        match self {
            Software::Container(c) => format!("container:{c}"),
            Software::Setup(s) => format!("setup:{s}"),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnFailure {
    #[default]
    Continue,
    Abort,
}

/// Which failed attempts make a retry ask for more memory (`memory_growth_on`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrowthOn {
    /// Only an attempt that ran out of memory (the engine's own signal, or the kernel's OOM
    /// kill seen by the wrapper): the default of language 1.1.
    #[default]
    Oom,
    /// Any failed attempt (language 1.0's behaviour).
    Any,
}

impl GrowthOn {
    pub fn as_str(self) -> &'static str {
        match self {
            GrowthOn::Oom => "oom",
            GrowthOn::Any => "any",
        }
    }
}

/// What happens to files an attempt leaves that are not declared outputs (`unexpected`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unexpected {
    /// Moved to `unexpected/STEP/DATAID/attempt-N/` in the submit directory.
    Keep,
    /// Removed (the default).
    #[default]
    Discard,
}

impl OnFailure {
    pub fn as_str(self) -> &'static str {
        match self {
            OnFailure::Continue => "continue",
            OnFailure::Abort => "abort",
        }
    }
}

/// Every execution setting of one step, resolved through the campaign's override chain.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StepSettings {
    pub memory: u64,
    pub cpus: i64,
    pub disk: u64,
    pub walltime: u64,
    pub retries: i64,
    pub retry_unless_exit: Vec<i64>,
    pub memory_growth: f64,
    pub priority: i64,
    pub on_failure: OnFailure,
    /// `partition` or `queue` (one setting under two names: the more specific scope wins,
    /// `partition` on a tie).
    pub partition: Option<String>,
    pub account: Option<String>,
    pub qos: Option<String>,
    pub hosts: Vec<String>,
    pub avoid_hosts: Vec<String>,
    pub software: Option<Software>,
    /// `env { }` and, captured when the campaign was compiled, the `pass_env` variables of
    /// the submitting shell (an `env` value wins): the job's whole environment from the
    /// campaign.
    pub env: Vec<(String, String)>,
    /// The `pass_env` names (their values are in `env`).
    pub pass_env: Vec<String>,
    pub max_jobs: Option<i64>,
    pub memory_growth_on: GrowthOn,
    /// The step's `max_memory` (bytes): its memory growth stops there (and at the site's).
    pub max_memory: Option<u64>,
    pub unexpected: Unexpected,
}

impl Default for StepSettings {
    /// The built-in defaults.
    fn default() -> Self {
        StepSettings {
            memory: 2 << 30,
            cpus: 1,
            disk: 10 << 30,
            walltime: 12 * 3600,
            retries: 3,
            retry_unless_exit: Vec::new(),
            memory_growth: 1.5,
            priority: 0,
            on_failure: OnFailure::Continue,
            partition: None,
            account: None,
            qos: None,
            hosts: Vec::new(),
            avoid_hosts: Vec::new(),
            software: None,
            env: Vec::new(),
            pass_env: Vec::new(),
            max_jobs: None,
            memory_growth_on: GrowthOn::Oom,
            max_memory: None,
            unexpected: Unexpected::Discard,
        }
    }
}

impl StepSettings {
    /// The settings as a JSON object, keyed by setting name (sizes in bytes, durations in
    /// seconds): the `settings` of a step in the IR header.
    pub fn to_json(&self) -> serde_json::Map<String, serde_json::Value> {
        use serde_json::json;
        let mut m = serde_json::Map::new();
        let mut put = |k: &str, v: serde_json::Value| {
            m.insert(k.to_string(), v);
        };
        if let Some(a) = &self.account {
            put("account", json!(a));
        }
        if !self.avoid_hosts.is_empty() {
            put("avoid_hosts", json!(self.avoid_hosts));
        }
        put("cpus", json!(self.cpus));
        put("disk", json!(self.disk));
        if !self.hosts.is_empty() {
            put("hosts", json!(self.hosts));
        }
        if let Some(n) = self.max_jobs {
            put("max_running", json!(n));
        }
        if let Some(m) = self.max_memory {
            put("max_memory", json!(m));
        }
        put("memory", json!(self.memory));
        put("memory_growth", json!(self.memory_growth));
        put("memory_growth_on", json!(self.memory_growth_on.as_str()));
        if !self.pass_env.is_empty() {
            put("pass_env", json!(self.pass_env));
        }
        put("on_failure", json!(self.on_failure.as_str()));
        if let Some(p) = &self.partition {
            put("partition", json!(p));
        }
        put("priority", json!(self.priority));
        if let Some(q) = &self.qos {
            put("qos", json!(q));
        }
        put("retries", json!(self.retries));
        put("retry_unless_exit", json!(self.retry_unless_exit));
        if let Some(s) = &self.software {
            put("software", json!(s.label()));
        }
        put(
            "unexpected",
            json!(match self.unexpected {
                Unexpected::Keep => "keep",
                Unexpected::Discard => "discard",
            }),
        );
        put("walltime", json!(self.walltime));
        m
    }
}

/// Where a setting that is not a built-in default was written.
#[derive(Clone, Debug, PartialEq)]
pub struct SetAt {
    /// The setting (`memory`, `priority`, `env.NAME`, ...).
    pub key: String,
    /// The scope, e.g. `campaign step override`, `site in2p3`, `--set coadd.memory=32GiB`.
    pub label: String,
    pub loc: Option<Loc>,
}

/// Resources of one job, as engines request them.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Resources {
    pub memory: u64,
    pub cpus: i64,
    pub disk: u64,
    pub walltime: u64,
    pub retries: i64,
    pub memory_growth: f64,
    /// Which failures grow memory (a cluster grows on any failure if one of its steps does).
    pub memory_growth_on: GrowthOn,
    pub retry_unless_exit: Vec<i64>,
    pub on_failure: OnFailure,
}

impl Resources {
    /// Resources of inserted (non-compute) jobs: transfers, removals, joins, provenance.
    pub fn inserted() -> Resources {
        Resources {
            memory: 1 << 30,
            cpus: 1,
            disk: 1 << 30,
            walltime: 3600,
            retries: 3,
            memory_growth: 1.0,
            memory_growth_on: GrowthOn::Oom,
            retry_unless_exit: Vec::new(),
            on_failure: OnFailure::Continue,
        }
    }

    /// The resources of one quantum of a step.
    pub fn of_step(s: &StepSettings) -> Resources {
        Resources {
            memory: s.memory,
            cpus: s.cpus,
            disk: s.disk,
            walltime: s.walltime,
            retries: s.retries,
            memory_growth: s.memory_growth,
            memory_growth_on: s.memory_growth_on,
            retry_unless_exit: s.retry_unless_exit.clone(),
            on_failure: s.on_failure,
        }
    }

    /// Fold another quantum's resources into a cluster job's: maxima, summed walltime,
    /// union of exit filters, abort wins.
    pub fn combine(&mut self, s: &Resources) {
        self.memory = self.memory.max(s.memory);
        self.cpus = self.cpus.max(s.cpus);
        self.disk = self.disk.max(s.disk);
        self.retries = self.retries.max(s.retries);
        self.memory_growth = self.memory_growth.max(s.memory_growth);
        if s.memory_growth_on == GrowthOn::Any {
            self.memory_growth_on = GrowthOn::Any;
        }
        for c in &s.retry_unless_exit {
            if !self.retry_unless_exit.contains(c) {
                self.retry_unless_exit.push(*c);
            }
        }
        if s.on_failure == OnFailure::Abort {
            self.on_failure = OnFailure::Abort;
        }
    }

    /// Retries grow memory (`retries > 0` and `memory_growth > 1`).
    pub fn grows(&self) -> bool {
        self.retries > 0 && self.memory_growth > 1.0
    }
}

/// Everything an engine needs to know about one job, resolved by lowering.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct JobSettings {
    pub kind: super::JobKind,
    /// The governing step (see the module documentation); `None` only in a campaign
    /// without steps.
    pub step: Option<u32>,
    /// The site the job runs at (the governing step's).
    pub site: Option<String>,
    pub resources: Resources,
    /// Memory growth never asks for more (bytes): the smaller of the governing step's
    /// `max_memory` and its site's.
    pub memory_cap: Option<u64>,
    pub partition: Option<String>,
    pub account: Option<String>,
    pub qos: Option<String>,
    pub hosts: Vec<String>,
    pub avoid_hosts: Vec<String>,
    /// Payload software: compute jobs only.
    pub software: Option<Software>,
    pub env: Vec<(String, String)>,
    /// At most this many jobs of the step (or cluster) at once: compute jobs only.
    pub max_jobs: Option<i64>,
    /// Files an attempt leaves besides its outputs (the governing step's setting).
    pub unexpected: Unexpected,
}
