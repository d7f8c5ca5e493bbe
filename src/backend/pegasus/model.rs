//! What both Pegasus formats (YAML 5.0 and DAX 3.6) are written from: the jobs Pegasus
//! runs, the dependencies between them, the files each job uses, the transformations and
//! the sites.
//!
//! # What Pegasus runs
//!
//! Pegasus plans data movement itself, so the IR's stage-in and stage-out jobs are dropped
//! and the edges re-wired around them; the provenance job becomes the workflow's `end`
//! hook.  Compute, join and cleanup jobs remain, one Pegasus job each, every one running
//! its task group's launcher (`launch/GROUP.sh K`, which runs `bpsc wrap SUBMIT --group
//! GROUP --index K`): a job's arguments are only its index.
//!
//! # Compact by construction (issue 13: at most 150 bytes a job)
//!
//! A million-job workflow is mostly repetition, so each job entry holds only what differs
//! between the jobs of its task group:
//!
//! * **Profiles**: every profile is computed per job, then placed where it is exact.  The
//!   Pegasus reference guide (configuration.rst, "Profiles": "The higher priority takes
//!   precedence (overwrites) a profile of a lower priority. 1. Transformation Catalog
//!   Profiles 2. Site Catalog Profiles 3. Job Profiles") makes a transformation-catalog
//!   profile win over the job's, so a key goes to the transformation catalog only when
//!   every job of the group (or of the group at one site) has the same value, and
//!   otherwise it is written on every job of that group and never in the catalog.
//! * **Site**: `selector.execution.site` only for a group whose jobs run at several
//!   sites; otherwise the transformation is catalogued at its one site, which pins it.
//! * **Metadata**: per job none (the job's step and data ID are in its task table:
//!   `bpsc show SUBMIT JOB`); the workflow and each transformation keep theirs.
//! * **Files** (`uses`): only where Pegasus must plan data: external `pre_job` inputs
//!   (it stages them from the replica catalog), archived outputs (it stages them out), and
//!   intermediate files whose producer and consumer run at different sites (it moves
//!   them).  An intermediate produced and consumed at one shared-filesystem site is not
//!   declared: the job wrapper reads and writes it in the site's working directory, where
//!   Pegasus cannot remove it early (its in-place cleanup only removes declared files);
//!   bpsc's own cleanup jobs, which Pegasus runs like any other job, remove `discard`
//!   outputs after their last consumer, as on every engine.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use crate::backend::{groups, Groups};
use crate::coverage::{Relation, Value};
use crate::ir::adjacency::topo_jobs;
use crate::ir::naming::instance_rel;
use crate::ir::render::fill_url;
use crate::ir::{GrowthOn, Ir, JobKind, JobSettings, OnFailure};
use crate::ir::{Persist, Software, Stage};

use super::quote::{classad_hosts, classad_str, node_name};

/// Execution site of jobs whose step names no site.
pub const DEFAULT_SITE: &str = "condorpool";
/// The submit host: joins run there, and it is the output site of archived files.
pub const LOCAL: &str = "local";

/// The exit status of bpsc's POST script (`bpsc-post.sh`) for a job that failed for good in
/// a group with `on_failure = abort`: `ABORT-DAG-ON <job> 3 RETURN 1`.
pub const POST_ABORT: i32 = 3;
/// ... and for a job whose exit status is one of `retry_unless_exit`: `RETRY <job> N
/// UNLESS-EXIT 2`.
pub const POST_NO_RETRY: i32 = 2;

/// The exit status with which the job wrapper reports an attempt that ran out of memory
/// (the wrapper's exit-status contract, `crate::submitdir::exit`: "75 out of memory").
pub const WRAP_OOM: i32 = 75;

/// Job ids of the IR, computed once and stored in one buffer.
pub struct Ids {
    buf: String,
    off: Vec<u32>,
}

impl Ids {
    fn new(ir: &Ir) -> Ids {
        let mut buf = String::with_capacity(ir.jobs.len() * 24);
        let mut off = Vec::with_capacity(ir.jobs.len() + 1);
        off.push(0);
        for j in 0..ir.jobs.len() as u32 {
            buf.push_str(&ir.job_id(j));
            off.push(buf.len() as u32);
        }
        Ids { buf, off }
    }
    pub fn get(&self, j: u32) -> &str {
        &self.buf[self.off[j as usize] as usize..self.off[j as usize + 1] as usize]
    }
}

/// A site of the Pegasus site catalog.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PSite {
    pub name: String,
    /// `sharedfs`, `condorio` or `nonsharedfs`.
    pub data_configuration: &'static str,
    /// Pegasus `style`: `glite` (a batch system through HTCondor's BLAHP) or `condor`.
    pub style: &'static str,
    /// HTCondor `grid_resource` for glite sites (`batch slurm`).
    pub grid_resource: Option<String>,
    pub scratch: String,
    pub shared_fs: bool,
    pub backend: String,
}

/// How a transformation gets its software.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Soft {
    None,
    /// `software = setup(TEXT)`: the launcher sources TEXT first.
    Setup(String),
    /// Index into [`Model::containers`].
    Container(usize),
}

/// A profile value: numbers stay numbers in YAML (as the Pegasus Python API writes them).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PVal {
    Num(i64),
    Text(String),
    /// Text bpsc writes for pegasus-plan to expand (`${BPSC_SUBMIT}`, `${BPSC_BIN}`); every
    /// other `${` is escaped (see [`super::quote`]).
    Plan(String),
}

impl PVal {
    pub fn text(&self) -> String {
        match self {
            PVal::Num(n) => n.to_string(),
            PVal::Text(t) | PVal::Plan(t) => t.clone(),
        }
    }
}

/// A profile: namespace, key, value.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Prof {
    pub ns: &'static str,
    pub key: String,
    pub val: PVal,
}

fn prof(ns: &'static str, key: &str, val: PVal) -> Prof {
    Prof { ns, key: key.to_string(), val }
}

/// One transformation per task group: the group's launcher, with the group's environment
/// and every profile its jobs share.
#[derive(Clone, Debug)]
pub struct Tx {
    pub name: String,
    /// The kind of the group's jobs (`compute`, `join`, `cleanup`).
    pub kind: JobKind,
    pub sites: BTreeSet<String>,
    pub soft: Soft,
    /// Profiles every job of the group has (env included).
    pub profiles: Vec<Prof>,
    /// Per site: profiles every job of the group at that site has (and not all of them).
    pub site_profiles: BTreeMap<String, Vec<Prof>>,
    pub max_jobs: Option<i64>,
    pub steps: Vec<String>,
    pub cluster: Option<String>,
}

impl Tx {
    /// Transformation metadata (the workflow's jobs carry none).
    pub fn metadata(&self) -> Vec<(&'static str, String)> {
        let mut m = vec![("kind", self.kind.as_str().to_string())];
        if !self.steps.is_empty() {
            m.push(("steps", self.steps.join(",")));
        }
        if let Some(c) = &self.cluster {
            m.push(("cluster", c.clone()));
        }
        m
    }

    /// The launcher, relative to the submit directory.
    pub fn launcher(&self) -> String {
        format!("launch/{}.sh", self.name)
    }
}

/// A file a job uses.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Use {
    pub lfn: String,
    pub output: bool,
    pub stage_out: bool,
    pub register: bool,
    pub optional: bool,
}

/// Lookup of the rows of a relation by the codes of some of its dimensions.
struct KeyIndex {
    /// Columns of the indexed relation, one per key dimension.
    cols: Vec<usize>,
    /// Rows sorted by their key codes.
    rows: Vec<u32>,
}

impl KeyIndex {
    fn build(rel: &Relation, cols: Vec<usize>) -> KeyIndex {
        let mut rows: Vec<u32> = (0..rel.len() as u32).collect();
        let c: Vec<&[u32]> = cols.iter().map(|&i| rel.column(i)).collect();
        rows.sort_by(|&a, &b| c.iter().map(|col| col[a as usize]).cmp(c.iter().map(|col| col[b as usize])));
        KeyIndex { cols, rows }
    }

    /// Rows whose key equals `key`.
    fn find<'a>(&'a self, rel: &Relation, key: &[u32]) -> &'a [u32] {
        let c: Vec<&[u32]> = self.cols.iter().map(|&i| rel.column(i)).collect();
        let cmp = |r: u32| c.iter().map(|col| col[r as usize]).cmp(key.iter().copied());
        let lo = self.rows.partition_point(|&r| cmp(r) == std::cmp::Ordering::Less);
        let hi = lo + self.rows[lo..].partition_point(|&r| cmp(r) != std::cmp::Ordering::Greater);
        &self.rows[lo..hi]
    }
}

/// How the instances of one input of one step are found.
enum InPlan {
    /// Not declared to Pegasus: read in place (`stage = none`), fetched by the wrapper
    /// (`in_job`), or produced outside this IR (`--steps`).
    Skip,
    /// An external `pre_job` input: rows of a stage set, in the replica catalog.
    External { set: usize, cons_cols: Vec<usize>, index: KeyIndex, optional: bool },
    /// Produced by step `producer`: its quanta, matched on the shared dimensions, kept when
    /// the producing job is a parent of the consumer (directly or through a join).
    Produced { dataset: String, producer: usize, dims_in_producer: Vec<usize>, cons_cols: Vec<usize>, index: KeyIndex },
}

pub struct Model<'a> {
    pub ir: &'a Ir,
    /// YAML (Pegasus 5) or DAX 3.6 (Pegasus 4.x): the resource profiles differ.
    pub yaml: bool,
    pub groups: Groups,
    pub ids: Ids,
    /// Jobs Pegasus runs (compute, join, cleanup), in a topological order.
    pub order: Vec<u32>,
    pub kept: Vec<bool>,
    /// Dependencies between kept jobs, sorted by (parent, child), no duplicates.
    pub edges: Vec<(u32, u32)>,
    pub sites: Vec<PSite>,
    /// Transformation of each group (`None` for groups Pegasus does not run).
    pub tx: Vec<Option<Tx>>,
    /// Container images.
    pub containers: Vec<String>,
    /// The workflow name: the campaign, made filename- and id-safe.
    pub name: String,
    /// The profiles each kept job has beyond its transformation's (index into
    /// [`Model::residuals`]; `u32::MAX` for jobs Pegasus does not run).
    pub residual_of: Vec<u32>,
    /// Distinct per-job profile sets; `residuals[0]` is empty.
    pub residuals: Vec<Vec<Prof>>,
    /// Some group runs bpsc's POST script (`bpsc-post.sh`).
    pub post_script: bool,
    /// Some job Pegasus runs writes a `persist = scratch` output: plan with `--cleanup
    /// none`, since leaf cleanup removes the workflow's working directory.
    pub keeps_scratch: bool,
    inputs: Vec<Vec<InPlan>>,
    /// Per step: some of its jobs may declare files (pre_job inputs, archived outputs,
    /// inputs from or outputs to another site).
    declares: Vec<bool>,
    /// Outputs (producer job, LFN) a job at another site consumes.
    cross_site: HashSet<(u32, String)>,
    /// The IR stage-in job of each instance of each stage set (`u32::MAX`: none).
    staged_by: Vec<Vec<u32>>,
    poff: Vec<u32>,
    pin: Vec<u32>,
}

/// The scratch template of a site with `{user}`, `{campaign}` and `{site}` filled in
/// (`{user}` as `${USER}`, expanded by pegasus-plan).
fn fill_scratch(t: &str, campaign: &str, site: &str) -> String {
    let mut out = String::with_capacity(t.len() + 16);
    let mut rest = t;
    while let Some(i) = rest.find(['{', '}']) {
        out.push_str(&rest[..i]);
        let r = &rest[i..];
        if r.starts_with("{{") || r.starts_with("}}") {
            out.push_str(&r[..1]);
            rest = &r[2..];
            continue;
        }
        if let Some(after) = r.strip_prefix('}') {
            out.push('}');
            rest = after;
            continue;
        }
        match r.find('}') {
            Some(e) => {
                match &r[1..e] {
                    "user" => out.push_str("${USER}"),
                    "campaign" => out.push_str(campaign),
                    "site" => out.push_str(site),
                    _ => {}
                }
                rest = &r[e + 1..];
            }
            None => {
                out.push_str(r);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

impl<'a> Model<'a> {
    pub fn new(ir: &'a Ir, yaml: bool) -> Model<'a> {
        let groups = groups(ir);
        let ids = Ids::new(ir);
        let kept: Vec<bool> = ir.jobs.iter().map(|j| matches!(j.kind, JobKind::Compute | JobKind::Join | JobKind::Cleanup)).collect();
        let edges = rewire(ir, &kept);
        let order: Vec<u32> = topo_jobs(ir).into_iter().filter(|&j| kept[j as usize]).collect();
        let (poff, pin) = ir.parents();

        // Sites: those the kept jobs run at, `local` for joins and outputs.
        let mut used: BTreeSet<String> = BTreeSet::new();
        for (j, job) in ir.jobs.iter().enumerate() {
            if kept[j] && job.kind != JobKind::Join {
                used.insert(ir.settings_of(j as u32).site.as_deref().unwrap_or(DEFAULT_SITE).to_string());
            }
        }
        used.insert(LOCAL.to_string());
        let campaign = &ir.campaign;
        let sites: Vec<PSite> = used
            .iter()
            .map(|name| {
                let s = ir.sites.iter().find(|s| &s.name == name);
                let backend = s.and_then(|s| s.backend.clone()).unwrap_or_else(|| "htcondor".into());
                let shared_fs = s.map(|s| s.shared_fs).unwrap_or(true);
                let (style, grid_resource) = site_style(name, &backend);
                let data_configuration = if shared_fs {
                    "sharedfs"
                } else if style == "condor" {
                    "condorio"
                } else {
                    "nonsharedfs"
                };
                let scratch = match s.and_then(|s| s.scratch.as_deref()) {
                    Some(t) => fill_scratch(t, campaign, name),
                    None => format!("${{BPSC_SUBMIT}}/pegasus-scratch/{}", node_name(name)),
                };
                PSite { name: name.clone(), data_configuration, style, grid_resource, scratch, shared_fs, backend }
            })
            .collect();
        let style_of = |site: &str| sites.iter().find(|s| s.name == site).map(|s| s.style).unwrap_or("condor");

        // Transformations: one per group Pegasus runs; the profiles of every kept job,
        // placed where they are exact (see the module documentation).
        let mut containers: Vec<String> = Vec::new();
        let mut tx: Vec<Option<Tx>> = vec![None; groups.names.len()];
        let mut residuals: Vec<Vec<Prof>> = vec![Vec::new()];
        let mut residual_index: HashMap<Vec<Prof>, u32> = HashMap::new();
        residual_index.insert(Vec::new(), 0);
        let mut residual_of = vec![u32::MAX; ir.jobs.len()];
        let mut post_script = false;
        for (g, members) in groups.members.iter().enumerate() {
            let Some(&first) = members.first() else { continue };
            if !kept[first as usize] {
                continue;
            }
            let job = &ir.jobs[first as usize];
            let js = ir.settings_of(first);
            let mut t = Tx {
                name: groups.names[g].clone(),
                kind: job.kind,
                sites: BTreeSet::new(),
                soft: Soft::None,
                profiles: Vec::new(),
                site_profiles: BTreeMap::new(),
                max_jobs: None,
                steps: Vec::new(),
                cluster: None,
            };
            if job.kind == JobKind::Compute {
                // The group's steps: the cluster's, or the one step.
                let steps: Vec<u32> = if job.owner != u32::MAX {
                    t.cluster = Some(ir.clusters[job.owner as usize].name.clone());
                    ir.clusters[job.owner as usize].steps.clone()
                } else {
                    vec![ir.members[job.lo as usize].step]
                };
                t.steps = steps.iter().map(|&s| ir.steps[s as usize].name.clone()).collect();
                if let Some(sw) = &js.software {
                    t.soft = match sw {
                        Software::Setup(s) => Soft::Setup(s.clone()),
                        Software::Container(c) => Soft::Container(intern(&mut containers, c)),
                    };
                }
                t.max_jobs = js.max_jobs;
            }
            // The distinct (settings, priority) of the group's jobs, each job's site.
            let site_of_job = |j: u32| -> String {
                match ir.jobs[j as usize].kind {
                    JobKind::Join => LOCAL.to_string(),
                    _ => ir.settings_of(j).site.as_deref().unwrap_or(DEFAULT_SITE).to_string(),
                }
            };
            let mut keys: BTreeMap<(u32, i32), String> = BTreeMap::new();
            for &j in members {
                let jb = &ir.jobs[j as usize];
                keys.entry((jb.settings, jb.priority)).or_insert_with(|| site_of_job(j));
            }
            for site in keys.values() {
                t.sites.insert(site.clone());
            }
            // Profiles of each key, then which (namespace, key) pairs are uniform over
            // the group, or over the group at one site.
            let sets: BTreeMap<(u32, i32), Vec<Prof>> = keys
                .iter()
                .map(|(&(si, prio), site)| {
                    let p = job_profiles(ir, &ir.job_settings[si as usize], job.kind, prio, style_of(site), yaml, &t.name);
                    ((si, prio), p)
                })
                .collect();
            post_script |= sets.values().flatten().any(|p| p.ns == "dagman" && p.key == "POST");
            let uniform = |filter: &dyn Fn(&(u32, i32)) -> bool| -> BTreeMap<(&'static str, String), Option<PVal>> {
                let mut u: BTreeMap<(&'static str, String), Option<PVal>> = BTreeMap::new();
                let mut n = 0usize;
                for (k, ps) in sets.iter().filter(|(k, _)| filter(k)) {
                    let _ = k;
                    for p in ps {
                        match u.get_mut(&(p.ns, p.key.clone())) {
                            None if n == 0 => {
                                u.insert((p.ns, p.key.clone()), Some(p.val.clone()));
                            }
                            None => {
                                u.insert((p.ns, p.key.clone()), None);
                            }
                            Some(v) => {
                                if v.as_ref() != Some(&p.val) {
                                    *v = None;
                                }
                            }
                        }
                    }
                    // A key some earlier set lacks is not uniform either.
                    for (key, v) in u.iter_mut() {
                        if !ps.iter().any(|p| (p.ns, &p.key) == (key.0, &key.1)) {
                            *v = None;
                        }
                    }
                    n += 1;
                }
                u
            };
            let all = uniform(&|_| true);
            for ((ns, key), v) in &all {
                if let Some(v) = v {
                    t.profiles.push(prof(ns, key, v.clone()));
                }
            }
            let mut placed: BTreeMap<String, BTreeSet<(&'static str, String)>> = BTreeMap::new();
            for site in &t.sites {
                let at = uniform(&|k: &(u32, i32)| keys.get(k) == Some(site));
                let mut ps = Vec::new();
                let mut here = BTreeSet::new();
                for ((ns, key), v) in &at {
                    if matches!(all.get(&(*ns, key.clone())), Some(Some(_))) {
                        here.insert((*ns, key.clone()));
                        continue;
                    }
                    if let Some(v) = v {
                        ps.push(prof(ns, key, v.clone()));
                        here.insert((*ns, key.clone()));
                    }
                }
                if !ps.is_empty() {
                    t.site_profiles.insert(site.clone(), ps);
                }
                placed.insert(site.clone(), here);
            }
            // What is left is per job, and the site when the group spans several.
            let several = t.sites.len() > 1;
            let selector = if yaml { "selector" } else { "hints" };
            let mut res_of_key: HashMap<(u32, i32), u32> = HashMap::new();
            for (k, ps) in &sets {
                let site = &keys[k];
                let done = &placed[site];
                let mut r: Vec<Prof> = ps.iter().filter(|p| !done.contains(&(p.ns, p.key.clone()))).cloned().collect();
                if several {
                    r.push(prof(selector, "execution.site", PVal::Text(site.clone())));
                }
                let next = residuals.len() as u32;
                let i = *residual_index.entry(r.clone()).or_insert_with(|| {
                    residuals.push(r);
                    next
                });
                res_of_key.insert(*k, i);
            }
            for &j in members {
                let jb = &ir.jobs[j as usize];
                residual_of[j as usize] = res_of_key[&(jb.settings, jb.priority)];
            }
            tx[g] = Some(t);
        }

        let keeps_scratch = ir.jobs.iter().enumerate().any(|(j, _)| {
            kept[j]
                && ir.job_members(j as u32).iter().any(|m| ir.steps[m.step as usize].outputs.iter().any(|o| o.persist == Persist::Scratch))
        });
        let mut m = Model {
            ir,
            yaml,
            groups,
            ids,
            order,
            kept,
            edges,
            sites,
            tx,
            containers,
            name: node_name(campaign),
            residual_of,
            residuals,
            post_script,
            keeps_scratch,
            inputs: Vec::new(),
            declares: Vec::new(),
            cross_site: HashSet::new(),
            staged_by: Vec::new(),
            poff,
            pin,
        };
        let mut staged_by: Vec<Vec<u32>> = ir.stage_sets.iter().map(|s| vec![u32::MAX; s.instances.len()]).collect();
        for (j, job) in ir.jobs.iter().enumerate() {
            if job.kind == JobKind::StageIn {
                for s in &ir.staged[job.lo as usize..job.hi as usize] {
                    if let Some(slot) = staged_by.get_mut(s.dataset as usize).and_then(|v| v.get_mut(s.row as usize)) {
                        *slot = j as u32;
                    }
                }
            }
        }
        m.staged_by = staged_by;
        m.inputs = m.plan_inputs();
        m.plan_declarations();
        m
    }

    /// Which steps may declare files, and which outputs cross sites.
    fn plan_declarations(&mut self) {
        let ir = self.ir;
        // The sites each step's jobs run at.
        let mut step_sites: Vec<BTreeSet<&str>> = vec![BTreeSet::new(); ir.steps.len()];
        for (j, job) in ir.jobs.iter().enumerate() {
            if job.kind != JobKind::Compute {
                continue;
            }
            let site = self.site_of(j as u32);
            for m in ir.job_members(j as u32) {
                step_sites[m.step as usize].insert(site);
            }
        }
        let mut declares: Vec<bool> = ir
            .steps
            .iter()
            .enumerate()
            .map(|(s, st)| {
                st.outputs.iter().any(|o| o.persist == Persist::Archive && o.archive.is_some())
                    || self.inputs[s].iter().any(|p| matches!(p, InPlan::External { .. }))
            })
            .collect();
        // Produced inputs whose producer's jobs and consumer's jobs may run at different
        // sites: find the exact (producer job, LFN) pairs.
        let mut cross: HashSet<(u32, String)> = HashSet::new();
        for (s, plans) in self.inputs.iter().enumerate() {
            for plan in plans {
                let InPlan::Produced { producer, .. } = plan else { continue };
                let (a, b) = (&step_sites[*producer], &step_sites[s]);
                if a.len() <= 1 && a == b {
                    continue;
                }
                declares[s] = true;
                declares[*producer] = true;
            }
        }
        self.declares = declares;
        if self.declares.iter().any(|&d| d) {
            let mut uses: Vec<Use> = Vec::new();
            for &j in &self.order {
                if self.ir.jobs[j as usize].kind != JobKind::Compute {
                    continue;
                }
                for (pj, lfn) in self.produced_inputs(j, &mut uses) {
                    if self.site_of(pj) != self.site_of(j) {
                        cross.insert((pj, lfn));
                    }
                }
            }
        }
        self.cross_site = cross;
    }

    fn plan_inputs(&self) -> Vec<Vec<InPlan>> {
        let ir = self.ir;
        let dim_col = |rel: &Relation, name: &str| ir.dicts.dim_id(name).and_then(|d| rel.position(d));
        ir.steps
            .iter()
            .map(|st| {
                st.inputs
                    .iter()
                    .map(|inp| {
                        // Shared dimensions, in the dataset's order, with their consumer columns.
                        let shared: Vec<&String> = inp.dims.iter().filter(|d| st.dims.contains(d)).collect();
                        let Some(cons_cols) = shared.iter().map(|d| dim_col(&st.quanta, d)).collect::<Option<Vec<usize>>>() else {
                            return InPlan::Skip;
                        };
                        if inp.produced {
                            let Some(p) = ir.steps.iter().position(|p| p.outputs.iter().any(|o| o.dataset == inp.dataset)) else {
                                return InPlan::Skip;
                            };
                            let prel = &ir.steps[p].quanta;
                            let Some(dims_in_producer) = inp.dims.iter().map(|d| dim_col(prel, d)).collect::<Option<Vec<usize>>>() else {
                                return InPlan::Skip;
                            };
                            let Some(kcols) = shared.iter().map(|d| dim_col(prel, d)).collect::<Option<Vec<usize>>>() else {
                                return InPlan::Skip;
                            };
                            InPlan::Produced {
                                dataset: inp.dataset.clone(),
                                producer: p,
                                dims_in_producer,
                                cons_cols,
                                index: KeyIndex::build(prel, kcols),
                            }
                        } else if inp.stage == Stage::PreJob {
                            let Some(set) = ir.stage_sets.iter().position(|s| s.dataset == inp.dataset) else {
                                return InPlan::Skip;
                            };
                            let rel = &ir.stage_sets[set].instances;
                            let Some(kcols) = shared.iter().map(|d| dim_col(rel, d)).collect::<Option<Vec<usize>>>() else {
                                return InPlan::Skip;
                            };
                            InPlan::External { set, cons_cols, index: KeyIndex::build(rel, kcols), optional: inp.optional }
                        } else {
                            InPlan::Skip
                        }
                    })
                    .collect()
            })
            .collect()
    }

    /// Is there an IR edge from `p` to `c`, directly or through a join parent of `c`?
    fn feeds(&self, p: u32, c: u32) -> bool {
        let e = &self.ir.edges;
        if e.binary_search(&(p, c)).is_ok() {
            return true;
        }
        self.pin[self.poff[c as usize] as usize..self.poff[c as usize + 1] as usize]
            .iter()
            .any(|&jn| self.ir.jobs[jn as usize].kind == JobKind::Join && e.binary_search(&(p, jn)).is_ok())
    }

    /// The (producer job, LFN) of every input job `j` reads from a job of this workflow.
    fn produced_inputs(&self, j: u32, _scratch: &mut Vec<Use>) -> Vec<(u32, String)> {
        let ir = self.ir;
        let mut out = Vec::new();
        let mut key: Vec<u32> = Vec::new();
        for m in ir.job_members(j) {
            let st = &ir.steps[m.step as usize];
            for plan in &self.inputs[m.step as usize] {
                let InPlan::Produced { dataset: ds, producer, dims_in_producer, cons_cols, index } = plan else { continue };
                key.clear();
                key.extend(cons_cols.iter().map(|&c| st.quanta.column(c)[m.q as usize]));
                let p = &ir.steps[*producer];
                for &r in index.find(&p.quanta, &key) {
                    let pj = p.job_of[r as usize];
                    if pj == j || !self.feeds(pj, j) {
                        continue;
                    }
                    let vals: Vec<&Value> =
                        dims_in_producer.iter().map(|&c| ir.dicts.decode(p.quanta.schema()[c], p.quanta.column(c)[r as usize])).collect();
                    out.push((pj, instance_rel(ds, &vals)));
                }
            }
        }
        out
    }

    /// The files job `j` declares to Pegasus, sorted by LFN: those Pegasus must plan (see
    /// the module documentation).  Inputs before outputs of the same name cannot happen: a
    /// file a job produces itself is not an input of it.
    pub fn uses(&self, j: u32, out: &mut Vec<Use>) {
        out.clear();
        let ir = self.ir;
        let job = &ir.jobs[j as usize];
        if job.kind != JobKind::Compute || !ir.job_members(j).iter().any(|m| self.declares[m.step as usize]) {
            return;
        }
        let mut key: Vec<u32> = Vec::new();
        for m in ir.job_members(j) {
            let st = &ir.steps[m.step as usize];
            let vals = ir.data_id(*m);
            for o in &st.outputs {
                let lfn = instance_rel(&o.dataset, &vals);
                let archived = o.persist == Persist::Archive && o.archive.is_some();
                if archived || (!self.cross_site.is_empty() && self.cross_site.contains(&(j, lfn.clone()))) {
                    out.push(Use { lfn, output: true, stage_out: archived, register: archived, optional: false });
                }
            }
        }
        let own: Vec<String> = ir
            .job_members(j)
            .iter()
            .flat_map(|m| {
                let st = &ir.steps[m.step as usize];
                let vals = ir.data_id(*m);
                st.outputs.iter().map(move |o| instance_rel(&o.dataset, &vals)).collect::<Vec<_>>()
            })
            .collect();
        let here = self.site_of(j);
        for m in ir.job_members(j) {
            let st = &ir.steps[m.step as usize];
            for plan in &self.inputs[m.step as usize] {
                match plan {
                    InPlan::Skip => {}
                    InPlan::External { set, cons_cols, index, optional } => {
                        key.clear();
                        key.extend(cons_cols.iter().map(|&c| st.quanta.column(c)[m.q as usize]));
                        let s = &ir.stage_sets[*set];
                        for &r in index.find(&s.instances, &key) {
                            // Only the instances the IR stages for this job: those of its
                            // stage-in parents (the shared dimensions alone can match more,
                            // e.g. every band's flat for a visit of one band).
                            let sj = self.staged_by[*set][r as usize];
                            if sj == u32::MAX || !self.feeds(sj, j) {
                                continue;
                            }
                            let vals = s.instances.row(r as usize, &ir.dicts);
                            out.push(Use {
                                lfn: instance_rel(&s.dataset, &vals),
                                output: false,
                                stage_out: false,
                                register: false,
                                optional: *optional,
                            });
                        }
                    }
                    InPlan::Produced { dataset: ds, producer, dims_in_producer, cons_cols, index } => {
                        key.clear();
                        key.extend(cons_cols.iter().map(|&c| st.quanta.column(c)[m.q as usize]));
                        let p = &ir.steps[*producer];
                        for &r in index.find(&p.quanta, &key) {
                            let pj = p.job_of[r as usize];
                            // Only files another site produced: Pegasus moves them here.
                            if pj == j || self.site_of(pj) == here || !self.feeds(pj, j) {
                                continue;
                            }
                            let vals: Vec<&Value> = dims_in_producer
                                .iter()
                                .map(|&c| ir.dicts.decode(p.quanta.schema()[c], p.quanta.column(c)[r as usize]))
                                .collect();
                            let lfn = instance_rel(ds, &vals);
                            if own.contains(&lfn) {
                                continue;
                            }
                            out.push(Use { lfn, output: false, stage_out: false, register: false, optional: false });
                        }
                    }
                }
            }
        }
        out.sort();
        out.dedup_by(|a, b| a.lfn == b.lfn && a.output == b.output);
    }

    /// Archived outputs of job `j`: (LFN, archive URL).
    pub fn archives(&self, j: u32, out: &mut Vec<(String, String)>) {
        out.clear();
        let ir = self.ir;
        for m in ir.job_members(j) {
            let st = &ir.steps[m.step as usize];
            let vals = ir.data_id(*m);
            for o in &st.outputs {
                if o.persist != Persist::Archive {
                    continue;
                }
                if let Some(t) = &o.archive {
                    out.push((instance_rel(&o.dataset, &vals), fill_url(t, &st.dims, &vals, &ir.campaign, st.site.as_deref())));
                }
            }
        }
    }

    /// External inputs Pegasus stages: (LFN, source URL), every instance of every `pre_job` set.
    pub fn replicas(&self) -> impl Iterator<Item = (String, String)> + '_ {
        let ir = self.ir;
        ir.stage_sets.iter().flat_map(move |s| {
            let dims: Vec<String> = s.instances.dim_names(&ir.dicts).iter().map(|d| d.to_string()).collect();
            (0..s.instances.len()).map(move |r| {
                let vals = s.instances.row(r, &ir.dicts);
                (instance_rel(&s.dataset, &vals), fill_url(&s.source, &dims, &vals, &ir.campaign, None))
            })
        })
    }

    /// The Pegasus site a kept job runs at.
    pub fn site_of(&self, j: u32) -> &str {
        match self.ir.jobs[j as usize].kind {
            JobKind::Join => LOCAL,
            _ => self.ir.settings_of(j).site.as_deref().unwrap_or(DEFAULT_SITE),
        }
    }

    /// The transformation (task group) name of a job.
    pub fn tx_name(&self, j: u32) -> &str {
        &self.groups.names[self.groups.group_of[j as usize] as usize]
    }

    pub fn index(&self, j: u32) -> u32 {
        self.groups.index_in_group[j as usize]
    }

    /// The profiles job `j` carries itself (those its transformation does not).
    pub fn job_profiles(&self, j: u32) -> &[Prof] {
        match self.residual_of.get(j as usize) {
            Some(&i) if i != u32::MAX => &self.residuals[i as usize],
            _ => &[],
        }
    }
}

/// Pegasus `style` and HTCondor `grid_resource` of a site: Slurm sites go through
/// HTCondor's BLAHP (`glite`), every other one is an HTCondor pool (`condor`).
fn site_style(name: &str, backend: &str) -> (&'static str, Option<String>) {
    match backend {
        "slurm" if name != LOCAL => ("glite", Some("batch slurm".to_string())),
        _ => ("condor", None),
    }
}

/// Does a Pegasus site of this style express memory growth?  Only HTCondor pools: an
/// expression in `condor.request_memory` (a glite site's memory is `pegasus.memory`, a
/// number that Pegasus passes to the batch system as `PER_PROCESS_MEMORY`).
pub fn grows_at(style: &str) -> bool {
    style == "condor"
}

fn mib(bytes: u64) -> i64 {
    i64::try_from(bytes.div_ceil(1 << 20)).unwrap_or(i64::MAX)
}

/// The expression that counts a job's memory failures in its own job ClassAd: its holds
/// for exceeding the memory limit (`HoldReasonCode` 34, `JobOutOfResources`) and the holds
/// bpsc's `on_exit_hold` puts on an attempt the wrapper reported as out of memory
/// (`HoldReasonCode` 3 `JobPolicy`, subcode 34).  `NumHoldsByReason` is HTCondor's
/// (job-classad-attributes.rst: "NumHoldsByReason").
const OOM_HOLDS: &str = "(ifThenElse(isUndefined(NumHoldsByReason.JobOutOfResources), 0, NumHoldsByReason.JobOutOfResources) + ifThenElse(isUndefined(NumHoldsByReason.JobPolicy), 0, NumHoldsByReason.JobPolicy))";

/// `ceiling(M * pow(G, N))`, capped at `cap` MiB.
fn grown(mem: i64, growth: f64, n: &str, cap: Option<i64>) -> String {
    let g = format!("ceiling({mem} * pow({}, {n}))", growth_text(growth));
    match cap {
        Some(c) => format!("ifThenElse({g} > {c}, {c}, {g})"),
        None => g,
    }
}

fn growth_text(g: f64) -> String {
    let s = format!("{g}");
    if s.contains('.') || s.contains('e') {
        s
    } else {
        format!("{s}.0")
    }
}

/// Every profile of a job of kind `kind` with settings `js` and priority `prio` at a site
/// of style `style`, sorted.  The site itself is not among them (see [`Model::new`]).
pub fn job_profiles(ir: &Ir, js: &JobSettings, kind: JobKind, prio: i32, style: &str, yaml: bool, group: &str) -> Vec<Prof> {
    let _ = ir;
    let mut p: Vec<Prof> = Vec::with_capacity(16);
    p.push(prof("dagman", "PRIORITY", PVal::Text(prio.to_string())));
    if kind == JobKind::Join {
        // Joins run on the submit host (HTCondor's local universe): no resources.
        p.sort();
        return p;
    }
    let r = &js.resources;
    let mem = mib(r.memory);
    let growth = r.grows() && grows_at(style);
    let cap = js.memory_cap.map(mib);
    // Resources (configuration.rst "Task Resource Requirements"): pegasus.memory (MB) and
    // pegasus.cores reach HTCondor (request_memory, request_cpus) and the batch system
    // through glite (PER_PROCESS_MEMORY, CORES).  A growing memory is an expression on
    // the job's own history, which only condor.request_memory takes.
    if growth {
        let expr = match r.memory_growth_on {
            // DAGMan's retry number: $(RETRY) is 0 on the first attempt (dagman docs, the
            // RETRY macro; Pegasus sets `VARS job My.DAGNodeRetry="$(RETRY)"` itself).
            GrowthOn::Any => grown(mem, r.memory_growth, "$(RETRY)", cap),
            // Only after a memory failure: the job's memory holds, released with more
            // memory by periodic_release (below).
            GrowthOn::Oom => grown(mem, r.memory_growth, OOM_HOLDS, cap),
        };
        p.push(prof("condor", "request_memory", PVal::Text(expr)));
        if r.memory_growth_on == GrowthOn::Oom {
            // The wrapper's "out of memory" exit becomes a memory hold too, and a memory
            // hold is released (with the grown request_memory) until the retries are
            // spent; then the job is removed and DAGMan sees it fail.
            p.push(prof("condor", "on_exit_hold", PVal::Text(format!("(ExitBySignal =?= false) && (ExitCode =?= {WRAP_OOM})"))));
            p.push(prof("condor", "on_exit_hold_subcode", PVal::Num(34)));
            p.push(prof(
                "condor",
                "on_exit_hold_reason",
                PVal::Text(format!("\"bpsc: the attempt ran out of memory (wrapper exit {WRAP_OOM})\"")),
            ));
            let is_oom = "((HoldReasonCode =?= 34) || (HoldReasonCode =?= 3 && HoldReasonSubCode =?= 34))";
            p.push(prof("condor", "periodic_release", PVal::Text(format!("{is_oom} && ({OOM_HOLDS} <= {})", r.retries))));
            p.push(prof("condor", "periodic_remove", PVal::Text(format!("(JobStatus == 5) && {is_oom} && ({OOM_HOLDS} > {})", r.retries))));
        }
    } else if yaml {
        p.push(prof("pegasus", "memory", PVal::Num(mem)));
    } else {
        p.push(prof("condor", "request_memory", PVal::Num(mem)));
    }
    if yaml {
        p.push(prof("pegasus", "cores", PVal::Num(r.cpus)));
        // pegasus.diskspace is in MB (HTCondor's request_disk in KB; Pegasus converts
        // since 5.0.6, PM-1912).
        p.push(prof("pegasus", "diskspace", PVal::Num(mib(r.disk))));
    } else {
        // Pegasus 4.x copies pegasus.cores/diskspace to request_cpus/request_disk without
        // converting units: the HTCondor keys themselves.
        p.push(prof("condor", "request_cpus", PVal::Num(r.cpus)));
        p.push(prof("condor", "request_disk", PVal::Num(i64::try_from(r.disk.div_ceil(1 << 10)).unwrap_or(i64::MAX))));
    }
    p.push(prof("pegasus", "runtime", PVal::Num(i64::try_from(r.walltime).unwrap_or(i64::MAX))));
    // Retries, retry_unless_exit and on_failure = abort.  DAGMan's ABORT-DAG-ON fires on
    // the first matching exit, before any retry ("An abort overrides node retries",
    // dagman-completion.rst), so bpsc's POST script decides: it exits POST_ABORT only
    // after the last attempt of an aborting job, POST_NO_RETRY for a retry_unless_exit
    // status (RETRY ... UNLESS-EXIT), 1 for any other failure.  The dagman profiles POST,
    // POST.PATH.<name> and POST.ARGUMENTS are Pegasus's way to run a user POST script
    // (configuration.rst, "The dagman Profile Namespace"); $RETURN, $RETRY and
    // $MAX_RETRIES are DAGMan's script macros.
    let abort = r.on_failure == OnFailure::Abort;
    let mut codes: Vec<i64> = r.retry_unless_exit.clone();
    codes.sort_unstable();
    codes.dedup();
    let filter = r.retries > 0 && !codes.is_empty();
    let retry = if filter { format!("{} UNLESS-EXIT {POST_NO_RETRY}", r.retries) } else { r.retries.to_string() };
    p.push(prof("dagman", "RETRY", PVal::Text(retry)));
    if abort || filter {
        let list = if filter { codes.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(",") } else { "-".into() };
        p.push(prof("dagman", "POST", PVal::Text("bpsc".into())));
        p.push(prof("dagman", "POST.PATH.bpsc", PVal::Plan("${BPSC_SUBMIT}/bpsc-post.sh".into())));
        p.push(prof("dagman", "POST.ARGUMENTS", PVal::Text(format!("$RETURN $RETRY $MAX_RETRIES {} {list}", abort as u8))));
    }
    if abort {
        p.push(prof("dagman", "ABORT-DAG-ON", PVal::Text(format!("{POST_ABORT} RETURN 1"))));
    }
    if js.max_jobs.is_some() && kind == JobKind::Compute {
        // max_running: the group is a DAGMan category, its limit in the properties
        // (`dagman.<category>.maxjobs`, configuration.rst: "the value of a dagman knob for a
        // category can only be specified at a per workflow basis in the properties").
        p.push(prof("dagman", "CATEGORY", PVal::Text(group.to_string())));
    }
    // Placement.
    if let Some(q) = &js.partition {
        p.push(prof("pegasus", "queue", PVal::Text(q.clone())));
    }
    if let Some(a) = &js.account {
        p.push(prof("pegasus", "project", PVal::Text(a.clone())));
    }
    if style == "glite" {
        let mut args: Vec<String> = Vec::new();
        if let Some(q) = &js.qos {
            args.push(format!("--qos={q}"));
        }
        if !js.hosts.is_empty() {
            args.push(format!("--nodelist={}", js.hosts.join(",")));
        }
        if !js.avoid_hosts.is_empty() {
            args.push(format!("--exclude={}", js.avoid_hosts.join(",")));
        }
        if !args.is_empty() {
            p.push(prof("pegasus", "glite.arguments", PVal::Text(args.join(" "))));
        }
    } else {
        // HTCondor's Machine is the fully qualified host name (machine-classad-attributes
        // "Machine"): a host given by its short name matches the part before the first dot.
        let mut req: Vec<String> = Vec::new();
        if !js.hosts.is_empty() {
            req.push(classad_hosts(&js.hosts));
        }
        if !js.avoid_hosts.is_empty() {
            req.push(format!("!{}", classad_hosts(&js.avoid_hosts)));
        }
        if !req.is_empty() {
            p.push(prof("condor", "requirements", PVal::Text(req.join(" && "))));
        }
    }
    // The job's environment: the campaign's env { } and pass_env values, and what the
    // launcher and the wrapper need.  Pegasus runs the job in its working directory, where
    // it stages the job's files under their LFNs (`dataset/v1_v2`): that is the scratch.
    let mut env: BTreeMap<&str, PVal> = js.env.iter().map(|(k, v)| (k.as_str(), PVal::Text(v.clone()))).collect();
    env.insert("BPSC_SCRATCH", PVal::Text(".".into()));
    env.insert("BPSC_SUBMIT", PVal::Plan("${BPSC_SUBMIT}".into()));
    env.insert("BPSC_BIN", PVal::Plan("${BPSC_BIN}".into()));
    if let Some(sw) = &js.software {
        env.insert("BPSC_SOFTWARE", PVal::Text(sw.label()));
    }
    for (k, v) in env {
        p.push(prof("env", k, v));
    }
    let _ = classad_str;
    p.sort();
    p
}

fn intern(v: &mut Vec<String>, s: &str) -> usize {
    match v.iter().position(|x| x == s) {
        Some(i) => i,
        None => {
            v.push(s.to_string());
            v.len() - 1
        }
    }
}

/// Edges between kept jobs: every kept parent reaches every kept job it reached in the IR
/// through dropped jobs only.  Sorted, without duplicates.
pub fn rewire(ir: &Ir, kept: &[bool]) -> Vec<(u32, u32)> {
    let (off, to) = ir.children();
    let n = ir.jobs.len();
    let mut out: Vec<(u32, u32)> = Vec::with_capacity(ir.edges.len());
    let mut seen = vec![u32::MAX; n];
    let mut stack: Vec<u32> = Vec::new();
    for u in 0..n as u32 {
        if !kept[u as usize] {
            continue;
        }
        for &c in &to[off[u as usize] as usize..off[u as usize + 1] as usize] {
            if kept[c as usize] {
                out.push((u, c));
            } else if seen[c as usize] != u {
                seen[c as usize] = u;
                stack.push(c);
            }
        }
        while let Some(s) = stack.pop() {
            for &c in &to[off[s as usize] as usize..off[s as usize + 1] as usize] {
                if kept[c as usize] {
                    out.push((u, c));
                } else if seen[c as usize] != u {
                    seen[c as usize] = u;
                    stack.push(c);
                }
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// The notify command for one event, its placeholders filled and shell-quoted where they
/// land, wrapped as `/bin/sh -c "…"`: pegasus-monitord runs hook commands through Python's
/// `shlex.split` without a shell, so the wrapper restores the shell semantics the command
/// was written for.  Inside shlex double quotes only `"` and `\` are escaped.
pub fn notify_command(template: &str, campaign: &str, event: &str, step: &str) -> String {
    let inner = notify_shell(template, campaign, event, step);
    let mut o = String::with_capacity(inner.len() + 16);
    o.push_str("/bin/sh -c \"");
    for c in inner.chars() {
        if c == '"' || c == '\\' {
            o.push('\\');
        }
        o.push(c);
    }
    o.push('"');
    o
}

/// The shell command inside [`notify_command`]: hooks fire for the whole workflow, so
/// `{job}` and `{data_id}` are empty.
pub fn notify_shell(template: &str, campaign: &str, event: &str, step: &str) -> String {
    use crate::ir::quote::Fill;
    crate::ir::quote::notify_shell(template, |name| {
        Some(match name {
            "campaign" => Fill::Text(campaign),
            "event" => Fill::Text(event),
            "step" => Fill::Text(step),
            "job" | "data_id" => Fill::Text(""),
            _ => return None,
        })
    })
}

/// The hook that gathers provenance when the workflow ends, whatever its outcome: the IR's
/// final provenance job.  `${BPSC_BIN}` and `${BPSC_SUBMIT}` are expanded by pegasus-plan.
pub fn provenance_command(group: &str, index: u32) -> String {
    format!("\"${{BPSC_BIN}}\" wrap \"${{BPSC_SUBMIT}}\" --group {group} --index {index}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scratch_template() {
        assert_eq!(fill_scratch("/s/{user}/bps/{campaign}/{site}", "c1", "s3df"), "/s/${USER}/bps/c1/s3df");
        assert_eq!(fill_scratch("/a/{{x}}", "c", "s"), "/a/{x}");
    }

    #[test]
    fn notify_is_shell_wrapped_and_quoted() {
        let inner = notify_shell("$D/notify.sh {campaign} {event} {step} \"{campaign}\"", "it's $(x)", "failure", "");
        assert_eq!(inner, "$D/notify.sh 'it'\\''s $(x)' failure '' \"it's \\$(x)\"");
        assert_eq!(notify_command("echo {event}", "c", "done", ""), r#"/bin/sh -c "echo done""#);
        assert_eq!(notify_command(r#"echo "{step}" \$x"#, "c", "done", r#"a"b"#), r#"/bin/sh -c "echo \"a\\\"b\" \\$x""#);
    }
}
