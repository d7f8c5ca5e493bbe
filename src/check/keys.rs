//! The registry of keys: their types and the scopes that allow them.
//!
//! The checker, `bpsc config`, `bpsc explain` and the language server's completion all read
//! this one table.

/// Kinds of block a key or statement can appear in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    Top,
    Defaults,
    Site,
    Pipeline,
    /// A step defined in a pipeline.
    Step,
    Campaign,
    /// `step NAME { }` inside a campaign: an override.
    StepOverride,
    Dataset,
    Config,
    Cluster,
    Notify,
    Env,
    /// `final NAME { }` inside a campaign (language 1.1).
    Final,
}

impl Scope {
    pub fn describe(self) -> &'static str {
        match self {
            Scope::Top => "the top level",
            Scope::Defaults => "`defaults`",
            Scope::Site => "a `site`",
            Scope::Pipeline => "a `pipeline` body",
            Scope::Step => "a pipeline `step`",
            Scope::Campaign => "a `campaign`",
            Scope::StepOverride => "a campaign's step override",
            Scope::Dataset => "a `dataset`",
            Scope::Config => "a `config`",
            Scope::Cluster => "a `cluster`",
            Scope::Notify => "a `notify` block",
            Scope::Env => "an `env` block",
            Scope::Final => "a `final` job",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Ty {
    Size,
    Duration,
    /// Integer within inclusive bounds.
    Int(i64, i64),
    /// Float at least this.
    FloatMin(f64),
    Str,
    Bool,
    Enum(&'static [&'static str]),
    IntList(i64, i64),
    StrList,
    SiteRef,
    SiteList,
    Software,
    /// A string template with placeholders (`run`, `source`, `archive`, `command`).
    Template,
    /// `[dataset, optional(dataset)]`.
    DatasetList,
    StepList,
    DimList,
    EventList,
    /// A coverage expression.
    Coverage,
}

impl Ty {
    pub fn describe(self) -> &'static str {
        match self {
            Ty::Size => "a size such as 4GiB",
            Ty::Duration => "a duration such as 2h or 1h30m",
            Ty::Int(..) => "an integer",
            Ty::FloatMin(_) => "a number",
            Ty::Str => "a string",
            Ty::Bool => "true or false",
            Ty::Enum(_) => "one of a fixed set of words",
            Ty::IntList(..) => "a list of integers",
            Ty::StrList => "a list of strings",
            Ty::SiteRef => "a site name",
            Ty::SiteList => "a list of site names",
            Ty::Software => "container(\"image:tag\") or setup(\"script\")",
            Ty::Template => "a string (template)",
            Ty::DatasetList => "a list of dataset names",
            Ty::StepList => "a list of step names",
            Ty::DimList => "a list of dimension names",
            Ty::EventList => "a list of events (failure, done, slow)",
            Ty::Coverage => "a coverage expression",
        }
    }
}

use Scope::*;

/// Scopes that take execution settings.
pub const EXEC: &[Scope] = &[Defaults, Site, Pipeline, Step, Campaign, StepOverride];

/// `max_running`: wherever execution settings go (it applies per step), and in a cluster
/// (where it applies to the cluster's jobs).
const EXEC_AND_CLUSTER: &[Scope] = &[Defaults, Site, Pipeline, Step, Campaign, StepOverride, Cluster];

pub struct KeyInfo {
    pub name: &'static str,
    pub ty: Ty,
    pub scopes: &'static [Scope],
    pub doc: &'static str,
    /// Is this an execution setting resolved through the scope chain?
    pub exec: bool,
}

/// The engines a site may name: the one registry in `crate::backend`.
pub const BACKENDS: &[&str] = &crate::backend::NAMES;

macro_rules! keys {
    ($( $name:literal : $ty:expr, $scopes:expr, $exec:literal, $doc:literal; )*) => {
        pub static KEYS: &[KeyInfo] = &[ $( KeyInfo { name: $name, ty: $ty, scopes: $scopes, exec: $exec, doc: $doc }, )* ];
    };
}

keys! {
    "memory": Ty::Size, EXEC, true, "memory requested per job (first attempt)";
    "cpus": Ty::Int(1, 1024), EXEC, true, "CPU cores per job";
    "disk": Ty::Size, EXEC, true, "scratch disk per job";
    "walltime": Ty::Duration, EXEC, true, "wall-clock limit per attempt";
    "retries": Ty::Int(0, 100), EXEC, true, "automatic retries after a failure";
    "retry_unless_exit": Ty::IntList(0, 255), EXEC, true, "exit codes that are never retried";
    "memory_growth": Ty::FloatMin(1.0), EXEC, true, "memory multiplier per retry";
    "priority": Ty::Int(-1000, 1000), EXEC, true, "relative priority (higher runs first)";
    "queue": Ty::Str, EXEC, true, "batch queue";
    "partition": Ty::Str, EXEC, true, "Slurm partition (same as queue)";
    "account": Ty::Str, EXEC, true, "accounting project";
    "qos": Ty::Str, EXEC, true, "quality of service";
    "site": Ty::SiteRef, &[Defaults, Pipeline, Step, Campaign, StepOverride], true, "site that runs the jobs";
    "sites": Ty::SiteList, &[Defaults, Pipeline, Step, Campaign, StepOverride], true, "eligible sites, first preferred";
    "hosts": Ty::StrList, EXEC, true, "hosts the jobs must run on";
    "avoid_hosts": Ty::StrList, EXEC, true, "hosts the jobs must not run on";
    "avoid_sites": Ty::SiteList, &[Defaults, Pipeline, Step, Campaign, StepOverride], true, "sites never to use";
    "on_failure": Ty::Enum(&["continue", "abort"]), EXEC, true, "after a job fails for good: abort the workflow or continue with independent jobs";
    "software": Ty::Software, EXEC, true, "container image or setup script";
    "max_running": Ty::Int(1, 10_000_000), EXEC_AND_CLUSTER, true, "at most this many jobs of a step (in a cluster: of the cluster) run at once";
    "max_jobs": Ty::Int(1, 10_000_000), EXEC, true, "at most this many jobs of a step at once (the language 1.0 spelling of `max_running`)";
    "memory_growth_on": Ty::Enum(&["oom", "any"]), EXEC, true, "which failed attempts make a retry ask for more memory: out-of-memory only (`oom`) or any failure";
    "max_memory": Ty::Size, EXEC, true, "in a site, the site's limit on memory; elsewhere (language 1.1), the cap on a step's memory growth";
    "unexpected": Ty::Enum(&["keep", "discard"]), &[Step, Campaign, StepOverride], true, "files an attempt leaves that are not declared outputs: moved to the submit directory (`keep`) or removed (`discard`)";
    "pass_env": Ty::StrList, EXEC, true, "variables of the submitting shell that the jobs see (the lists of all scopes are merged)";
    "backend": Ty::Enum(BACKENDS), &[Site], false, "default backend for the site";
    "shared_fs": Ty::Bool, &[Site], false, "jobs share a filesystem with the submit host";
    "scratch": Ty::Template, &[Site], false, "scratch directory template";
    "max_cpus": Ty::Int(1, 100_000), &[Site], false, "site limit on cpus";
    "max_walltime": Ty::Duration, &[Site], false, "site limit on walltime";
    "max_array_size": Ty::Int(1, 100_000_000), &[Site], false, "Slurm MaxArraySize of the site";
    "max_submit": Ty::Int(1, 100_000_000), &[Site], false, "most jobs of the campaign in the site's queue at once (each array task counts): Slurm's MaxJobCount or the association's MaxSubmitJobs; a larger campaign is submitted in waves";
    "controller": Ty::Str, &[Site], false, "the batch controller the site's jobs are submitted to (a Slurm cluster's name): sites with the same controller are partitions of one engine and can share a submission";
    "run": Ty::Template, &[Step, Final], false, "the command line of one quantum (of a `final` job: its command)";
    "inputs": Ty::DatasetList, &[Step], false, "datasets the step reads";
    "outputs": Ty::DatasetList, &[Step], false, "datasets the step writes";
    "source": Ty::Template, &[Dataset], false, "URL template of an external input";
    "stage": Ty::Enum(&["pre_job", "in_job", "none"]), &[Dataset], false, "how an external input reaches the job";
    "persist": Ty::Enum(&["archive", "scratch", "discard"]), &[Dataset], false, "what happens to an output";
    "archive": Ty::Template, &[Dataset], false, "URL template where archived outputs go";
    "verify": Ty::Bool, &[Dataset], false, "fail a quantum whose output is missing";
    "coverage": Ty::Coverage, &[Campaign], false, "the data IDs the campaign processes";
    "order": Ty::Enum(&["breadth_first", "depth_first"]), &[Campaign], false, "engine priority order";
    "steps": Ty::StepList, &[Cluster], false, "steps grouped by the cluster";
    "by": Ty::DimList, &[Cluster], false, "dimensions whose values group quanta into one job";
    "size": Ty::Int(1, 1_000_000), &[Cluster], false, "quanta per job";
    "split_by": Ty::DimList, &[Cluster], false, "dimensions that cut each `by` group into jobs of at most `max_quanta` quanta, never splitting one value";
    "max_quanta": Ty::Int(1, 1_000_000), &[Cluster], false, "most quanta per job of a `split_by` cluster";
    "when": Ty::Enum(&["always", "success", "failure"]), &[Final], false, "when the final job runs: always, after success, or after a failure";
    "on": Ty::EventList, &[Notify], false, "events that notify";
    "slow_after": Ty::Duration, &[Notify], false, "a job running longer than this is slow";
    "command": Ty::Template, &[Notify], false, "command run for each event";
}

pub fn key(name: &str) -> Option<&'static KeyInfo> {
    KEYS.iter().find(|k| k.name == name)
}

pub fn exec_keys() -> impl Iterator<Item = &'static KeyInfo> {
    KEYS.iter().filter(|k| k.exec)
}

pub fn keys_in(scope: Scope) -> impl Iterator<Item = &'static KeyInfo> {
    KEYS.iter().filter(move |k| k.scopes.contains(&scope))
}

/// Keys that only exist in language version 1.1.
const V1_1_KEYS: &[&str] =
    &["memory_growth_on", "max_running", "unexpected", "pass_env", "split_by", "max_quanta", "when", "max_submit", "controller"];

/// The language version that introduced `key` in `scope` (1.0 for every key of version 1).
/// `max_memory` was a site limit in 1.0; as a step setting (any other scope) it is 1.1.
pub fn since(key: &str, scope: Scope) -> crate::syntax::ast::Version {
    use crate::syntax::ast::Version;
    if V1_1_KEYS.contains(&key) || (key == "max_memory" && scope != Site) {
        Version::V1_1
    } else {
        Version::V1_0
    }
}

/// Keys whose lists are merged across scopes rather than overridden.
pub const MERGED: &[&str] = &["pass_env"];

/// The one setting a key names: `max_jobs` is the language 1.0 spelling of `max_running`.
pub fn canonical(key: &str) -> &str {
    match key {
        "max_jobs" => "max_running",
        k => k,
    }
}

pub const EVENTS: &[&str] = &["failure", "done", "slow"];
