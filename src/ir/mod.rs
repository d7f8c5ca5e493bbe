//! The IR: the closed contract between lowering and the engines.
//!
//! Lowering (`crate::lower`) decides everything once; engines (`crate::backend`) only
//! translate.  This module imports nothing from the checker: every value an engine needs is
//! here, typed — the step's dimensions and quanta, datasets with their schemes, the `run`
//! template, and per job the resolved [`JobSettings`] (resources, retries and growth, exit
//! filter, on_failure, site, partition/account/qos, hosts, software, env, throttle) chosen by
//! the one rule documented in [`settings`].
//!
//! Compact by design: a step's quanta are a [`Relation`] (dictionary codes, canonical
//! order), jobs are small fixed-size records, edges are a sorted `Vec<(u32, u32)>` of job
//! indices, and job settings are interned (a million jobs share a few dozen records).
//! Strings (job ids, commands) are produced on demand while writing, never stored per job.
//!
//! | module | what |
//! |---|---|
//! | [`settings`] | typed settings of steps and jobs, and the rule for which step governs a job |
//! | [`naming`] | job ids, value encoding for ids and paths, name sanitising |
//! | [`adjacency`] | children/parents (CSR) and the topological job order |
//! | [`quote`] | shell quoting: where a placeholder lands and how its value is quoted |
//! | [`render`] | commands, dataset URLs and paths of one quantum |
//! | [`jsonl`] | the IR as versioned JSON Lines (`--emit ir`, the task tables) |
//! | [`graphviz`] | step and job graphs as DOT or Mermaid |

pub mod adjacency;
pub mod graphviz;
pub mod jobgraph;
pub mod jsonl;
pub mod naming;
pub mod quote;
pub mod render;
pub mod settings;

pub use settings::{GrowthOn, JobSettings, OnFailure, Resources, SetAt, Software, StepSettings, Unexpected};

use crate::coverage::{Dictionaries, Relation, Value};
use crate::source::Loc;

/// The IR file's format version.  2: a compute job line's `resources` is an index into the
/// header's `resources` list (1 repeated the object on every line).
pub const IR_VERSION: u32 = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// Runs the quanta listed in its member range (one, or a cluster).
    Compute,
    /// Copies external `pre_job` inputs to the site before their consumers run.
    StageIn,
    /// Copies a compute job's archived outputs to their archive location, with checksums.
    StageOut,
    /// Removes a compute job's discarded outputs once their last consumer has finished.
    Cleanup,
    /// No-op node that carries a barrier or a large fan-in.
    Join,
    /// The final job: collects every provenance record.  Engine-native final node where the
    /// engine has one; it has no edges in the IR.
    Provenance,
}

impl JobKind {
    pub const ALL: [JobKind; 6] =
        [JobKind::Compute, JobKind::StageIn, JobKind::StageOut, JobKind::Cleanup, JobKind::Join, JobKind::Provenance];

    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Compute => "compute",
            JobKind::StageIn => "stage_in",
            JobKind::StageOut => "stage_out",
            JobKind::Cleanup => "cleanup",
            JobKind::Join => "join",
            JobKind::Provenance => "provenance",
        }
    }
}

/// One node of the DAG.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Job {
    pub kind: JobKind,
    /// Compute: the cluster index or [`NO_CLUSTER`] for an unclustered quantum.
    /// StageOut/Cleanup: the compute job it belongs to.  Join: its ordinal.
    /// StageIn: its ordinal among stage-in jobs.
    pub owner: u32,
    /// Compute: range into [`Ir::members`].  StageIn: range into [`Ir::staged`].
    pub lo: u32,
    pub hi: u32,
    pub priority: i32,
    /// Index into [`Ir::job_settings`]; set by lowering for every job.
    pub settings: u32,
}

/// `Job::owner` of an unclustered compute job.
pub const NO_CLUSTER: u32 = u32::MAX;

/// A quantum: step index and row in that step's quanta relation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QRef {
    pub step: u32,
    pub q: u32,
}

/// How an external input reaches the job (`stage` of a dataset).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    PreJob,
    InJob,
    None,
}

/// What happens to an output (`persist` of a dataset).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Persist {
    Archive,
    Scratch,
    Discard,
}

/// A template with `{placeholder}`s: literal text and names, as the checker validated them.
#[derive(Clone, Debug, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct Template {
    pub text: String,
    pub parts: Vec<Part>,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Part {
    Lit(String),
    /// `{name}` / `{config.key}`.
    Ph(String),
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Input {
    pub dataset: String,
    pub optional: bool,
    /// Produced by a step of this IR (otherwise external or produced outside `--steps`).
    pub produced: bool,
    pub stage: Stage,
    /// URL template of an external input.
    pub source: Option<Template>,
    pub dims: Vec<String>,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Output {
    pub dataset: String,
    pub persist: Persist,
    pub archive: Option<Template>,
    pub verify: bool,
    pub dims: Vec<String>,
}

/// What renders a quantum of a step: its name, dimensions, command template, config and
/// datasets.  Serializable: the submit directory keeps it (`tasks/spec.json`), so the job
/// wrapper renders commands at run time with the compiler's own code.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct StepSpec {
    pub name: String,
    pub pipeline: String,
    pub dims: Vec<String>,
    pub site: Option<String>,
    pub shared_fs: bool,
    pub run: Template,
    pub config_name: Option<String>,
    /// Resolved config parameters (with inheritance), for `{config.KEY}`.
    pub config: Vec<(String, String)>,
    pub inputs: Vec<Input>,
    pub outputs: Vec<Output>,
}

/// A step: its [`StepSpec`] (reached through `Deref`: `step.name`, `step.dims`, ...), its
/// quanta, its settings and its place in the graph.
#[derive(Clone, Debug)]
pub struct Step {
    pub spec: StepSpec,
    pub quanta: Relation,
    /// The step's resolved execution settings (the campaign's override chain applied).
    pub settings: StepSettings,
    /// Where settings that are not built-in defaults were written, for diagnostics.
    pub set_at: Vec<SetAt>,
    /// Where the step is defined.
    pub loc: Option<Loc>,
    /// Longest path from a root in the step graph.
    pub level: u32,
    pub cluster: Option<u32>,
    /// Job index of each quantum.
    pub job_of: Vec<u32>,
    /// The inputs whose dimensions are not all the step's (gathers and relational joins):
    /// which instances each quantum reads.
    pub gathers: Vec<Gather>,
}

/// The instances of one input each quantum of a step reads, when the input has dimensions
/// the step has not (a step over `(chrom)` reading a dataset over `(chrom, chunk)`, a coadd
/// reading the warps of its patch): by the universe rule, the instances that co-occur with
/// the quantum, as rows of [`GatherFrom`], quantum by quantum (CSR: quantum `q` reads
/// `rows[offsets[q]..offsets[q + 1]]`).
#[derive(Clone, Debug)]
pub struct Gather {
    /// Index into the step's inputs.
    pub input: u32,
    pub from: GatherFrom,
    pub offsets: Vec<u64>,
    pub rows: Vec<u32>,
}

impl Gather {
    /// The rows quantum `q` reads.
    pub fn rows_of(&self, q: u32) -> &[u32] {
        let (a, b) = (self.offsets[q as usize] as usize, self.offsets[q as usize + 1] as usize);
        &self.rows[a..b]
    }
}

/// Where a gather's rows point.
#[derive(Clone, Debug)]
pub enum GatherFrom {
    /// The producing step's quanta (the instance's path is the one the producer writes).
    Step(u32),
    /// The input's instances (over the input's dimensions), for a dataset no step of this
    /// IR produces.
    Instances(Relation),
}

impl std::ops::Deref for Step {
    type Target = StepSpec;
    fn deref(&self) -> &StepSpec {
        &self.spec
    }
}

impl std::ops::DerefMut for Step {
    fn deref_mut(&mut self) -> &mut StepSpec {
        &mut self.spec
    }
}

#[derive(Clone, Debug)]
pub struct Cluster {
    pub name: String,
    pub steps: Vec<u32>,
    pub by: Vec<String>,
    pub size: Option<u32>,
    pub loc: Option<Loc>,
    /// `split_by` (language 1.1): each `by` group is cut between values of these.
    pub split_by: Vec<String>,
    /// `max_quanta` (with `split_by`): at most this many quanta a job, unless one
    /// `split_by` value alone has more.
    pub max_quanta: Option<u32>,
    /// `max_running` of the cluster: at most this many of its jobs at once.
    pub max_running: Option<u32>,
    /// Per member step: the positions, in the step's dimensions, of `by` then `split_by`
    /// (a step may name a dimension `equal` to one of them).
    pub key_cols: Vec<(u32, Vec<usize>)>,
}

impl Cluster {
    /// The key positions (`by`, then `split_by`) of step `s`'s dimensions.
    pub fn key_cols_of(&self, s: u32) -> &[usize] {
        self.key_cols.iter().find(|(x, _)| *x == s).map(|(_, c)| c.as_slice()).unwrap_or(&[])
    }

    /// How the cluster names its jobs from a first member of step `s`.
    pub fn naming(&self, s: u32) -> naming::ClusterNaming<'_> {
        naming::ClusterNaming {
            name: &self.name,
            cols: if self.size.is_some() { &[] } else { self.key_cols_of(s) },
            chunk: self.size.is_some(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Site {
    pub name: String,
    pub backend: Option<String>,
    pub shared_fs: bool,
    pub scratch: Option<String>,
    pub max_array_size: Option<i64>,
    /// The site's `max_memory` (bytes): memory growth on retries never asks for more.
    pub max_memory: Option<u64>,
    /// The most jobs the campaign may have queued at the site at once (`max_submit`).
    pub max_submit: Option<i64>,
    /// The batch controller the site's jobs go to (`controller`; `None`: the site is its own).
    pub controller: Option<String>,
}

impl Site {
    /// The controller the site's jobs are submitted to: its `controller`, else its name.
    pub fn controller(&self) -> &str {
        self.controller.as_deref().unwrap_or(&self.name)
    }
}

/// One `pre_job` dataset instance to stage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Staged {
    pub dataset: u32,
    /// Row in [`Ir::stage_sets`]`[dataset]`.
    pub row: u32,
}

#[derive(Clone, Debug)]
pub struct StageSet {
    pub dataset: String,
    pub source: Template,
    /// The dataset's dimensions (the columns of `instances`).
    pub dims: Vec<String>,
    /// Distinct instances (data IDs over the dataset's dimensions).
    pub instances: Relation,
}

#[derive(Clone, Debug, Default)]
pub struct Notify {
    pub on: Vec<String>,
    pub slow_after: Option<u64>,
    pub command: Option<String>,
    pub loc: Option<Loc>,
}

/// The campaign's `order`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum OrderMode {
    #[default]
    BreadthFirst,
    DepthFirst,
}

impl OrderMode {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderMode::BreadthFirst => "breadth_first",
            OrderMode::DepthFirst => "depth_first",
        }
    }
}

/// A step-level dependency.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum StepEdgeKind {
    /// `after P`.
    After,
    /// `after P all` or `order A before B`: every quantum waits for every quantum.
    Barrier,
    /// The step consumes a dataset the other produces.
    Dataset(String),
}

impl StepEdgeKind {
    /// `after`, `all` or `data:DATASET`.
    pub fn label(&self) -> String {
        match self {
            StepEdgeKind::After => "after".into(),
            StepEdgeKind::Barrier => "all".into(),
            StepEdgeKind::Dataset(d) => format!("data:{d}"),
        }
    }
}

/// When the user's final job runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinalWhen {
    /// Whatever happened.
    Always,
    /// Only when every other job succeeded.
    Success,
    /// Only when some job failed for good.
    Failure,
}

impl FinalWhen {
    pub fn as_str(self) -> &'static str {
        match self {
            FinalWhen::Always => "always",
            FinalWhen::Success => "success",
            FinalWhen::Failure => "failure",
        }
    }
}

/// The campaign's `final NAME { run, when }` (language 1.1): run by the provenance job,
/// after it has gathered every record, on the engine's final-node mechanism.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct FinalJob {
    /// Renders like a step over `()` (the name, `run`, the campaign's one config).
    pub spec: StepSpec,
    pub when: FinalWhen,
    pub settings: StepSettings,
    #[serde(skip)]
    pub loc: Option<Loc>,
}

/// Campaign-level settings, with where they were written.
#[derive(Clone, Debug, Default)]
pub struct CampaignSettings {
    pub order: OrderMode,
    pub order_at: Option<Loc>,
    pub priority: i64,
    pub priority_at: Option<Loc>,
    pub loc: Option<Loc>,
}

#[derive(Debug)]
pub struct Ir {
    pub campaign: String,
    pub dicts: Dictionaries,
    pub coverage_size: usize,
    pub steps: Vec<Step>,
    pub clusters: Vec<Cluster>,
    pub sites: Vec<Site>,
    pub jobs: Vec<Job>,
    pub members: Vec<QRef>,
    pub stage_sets: Vec<StageSet>,
    pub staged: Vec<Staged>,
    /// (parent, child) job indices, sorted, no duplicates, no self-loops.
    pub edges: Vec<(u32, u32)>,
    pub settings: CampaignSettings,
    pub notify: Notify,
    /// Step-level dependencies: (from step, to step, kind).
    pub step_edges: Vec<(u32, u32, StepEdgeKind)>,
    /// Interned settings of every job ([`Job::settings`] indexes this).
    pub job_settings: Vec<JobSettings>,
    /// The user's final job, when the campaign has one.
    pub final_job: Option<FinalJob>,
}

impl Ir {
    pub fn job_members(&self, j: u32) -> &[QRef] {
        let job = &self.jobs[j as usize];
        match job.kind {
            JobKind::Compute => &self.members[job.lo as usize..job.hi as usize],
            _ => &[],
        }
    }

    /// Values of a quantum's data ID, in the step's dimension order.
    pub fn data_id(&self, r: QRef) -> Vec<&Value> {
        self.steps[r.step as usize].quanta.row(r.q as usize, &self.dicts)
    }

    /// A quantum to render: its data ID and the instances of its gathered inputs.
    pub fn quantum(&self, r: QRef) -> render::Quantum<'_> {
        let st = &self.steps[r.step as usize];
        let gathered = st
            .gathers
            .iter()
            .map(|g| {
                let (dims, instances) = match &g.from {
                    GatherFrom::Step(p) => {
                        let p = &self.steps[*p as usize];
                        (&p.dims[..], g.rows_of(r.q).iter().map(|&x| p.quanta.row(x as usize, &self.dicts)).collect())
                    }
                    GatherFrom::Instances(rel) => {
                        (&st.inputs[g.input as usize].dims[..], g.rows_of(r.q).iter().map(|&x| rel.row(x as usize, &self.dicts)).collect())
                    }
                };
                render::Gathered { input: g.input, dims, instances }
            })
            .collect();
        render::Quantum { spec: &st.spec, vals: self.data_id(r), gathered }
    }

    pub fn compute_jobs(&self) -> usize {
        self.jobs.iter().filter(|j| j.kind == JobKind::Compute).count()
    }

    /// The resolved settings of job `j`.
    pub fn settings_of(&self, j: u32) -> &JobSettings {
        &self.job_settings[self.jobs[j as usize].settings as usize]
    }

    pub fn site(&self, name: &str) -> Option<&Site> {
        self.sites.iter().find(|s| s.name == name)
    }

    /// The site record of job `j`, when it runs at a declared site.
    pub fn site_of(&self, j: u32) -> Option<&Site> {
        self.settings_of(j).site.as_deref().and_then(|s| self.site(s))
    }

    /// The campaign's `order` (`breadth_first` / `depth_first`).
    pub fn order(&self) -> &'static str {
        self.settings.order.as_str()
    }

    pub fn priority(&self) -> i64 {
        self.settings.priority
    }

    /// Children of each job (CSR: offsets, targets), built from the sorted edge list.
    pub fn children(&self) -> (Vec<u32>, Vec<u32>) {
        adjacency::csr_children(self.jobs.len(), &self.edges)
    }

    /// Parents of each job (CSR).
    pub fn parents(&self) -> (Vec<u32>, Vec<u32>) {
        adjacency::csr_parents(self.jobs.len(), &self.edges)
    }

    /// Stable, engine-safe id of a job (see [`naming`]).
    pub fn job_id(&self, j: u32) -> String {
        naming::job_id(self, j)
    }
}
