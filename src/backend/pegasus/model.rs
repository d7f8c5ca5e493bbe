//! What both Pegasus formats (YAML 5.0 and DAX 3.6) are written from: the jobs Pegasus
//! runs, the dependencies between them, the files each job uses, the transformations and
//! the sites.
//!
//! Pegasus plans data movement itself, so the IR's stage-in, stage-out and cleanup jobs
//! are dropped and the edges re-wired around them; the provenance job becomes the
//! workflow's `end` hook.  Compute and join jobs remain, one Pegasus job each, every one
//! running `bpsc wrap SUBMIT --group G --index K`.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use crate::backend::{groups, Groups};
use crate::coverage::{Relation, Value};
use crate::ir::adjacency::topo_jobs;
use crate::ir::naming::instance_rel;
use crate::ir::render::fill_url;
use crate::ir::{Ir, JobKind, OnFailure, QRef, Resources};
use crate::ir::{Persist, Software, Stage};

use super::quote::node_name;

/// Execution site of jobs whose step names no site.
pub const DEFAULT_SITE: &str = "condorpool";
/// The submit host: joins run there, and it is the output site of archived files.
pub const LOCAL: &str = "local";

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
    /// Index into [`Model::launchers`].
    Setup(usize),
    /// Index into [`Model::containers`].
    Container(usize),
}

/// One transformation per task group: the bpsc binary, with the group's environment.
#[derive(Clone, Debug)]
pub struct Tx {
    pub name: String,
    pub sites: BTreeSet<String>,
    pub env: Vec<(String, String)>,
    pub soft: Soft,
    /// Per-site profiles: (namespace, key, value).
    pub site_profiles: BTreeMap<String, Vec<(&'static str, &'static str, String)>>,
    pub max_jobs: Option<i64>,
    pub steps: Vec<String>,
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
    pub groups: Groups,
    pub ids: Ids,
    /// Jobs Pegasus runs (compute and join), in a topological order.
    pub order: Vec<u32>,
    pub kept: Vec<bool>,
    /// Dependencies between kept jobs, sorted by (parent, child), no duplicates.
    pub edges: Vec<(u32, u32)>,
    pub sites: Vec<PSite>,
    /// Transformation of each group (`None` for groups Pegasus does not run).
    pub tx: Vec<Option<Tx>>,
    /// Setup scripts, one launcher each.
    pub launchers: Vec<String>,
    /// Container images.
    pub containers: Vec<String>,
    /// The workflow name: the campaign, made filename- and id-safe.
    pub name: String,
    inputs: Vec<Vec<InPlan>>,
    /// The IR stage-in job of each instance of each stage set (`u32::MAX`: none).
    staged_by: Vec<Vec<u32>>,
    /// Resources of each step's unclustered jobs.
    step_res: Vec<Option<Res>>,
    poff: Vec<u32>,
    pin: Vec<u32>,
}

/// A ClassAd string literal.
fn classad_str(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
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
    pub fn new(ir: &'a Ir) -> Model<'a> {
        let groups = groups(ir);
        let ids = Ids::new(ir);
        let kept: Vec<bool> = ir.jobs.iter().map(|j| matches!(j.kind, JobKind::Compute | JobKind::Join)).collect();
        let edges = rewire(ir, &kept);
        let order: Vec<u32> = topo_jobs(ir).into_iter().filter(|&j| kept[j as usize]).collect();
        let (poff, pin) = ir.parents();

        // Sites: those the kept compute jobs run at, `local` for joins and outputs.
        let mut used: BTreeSet<String> = BTreeSet::new();
        for (j, job) in ir.jobs.iter().enumerate() {
            if job.kind == JobKind::Compute {
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
                let (style, grid_resource) = match backend.as_str() {
                    "slurm" if name != LOCAL => ("glite", Some("batch slurm".to_string())),
                    _ => ("condor", None),
                };
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

        // Transformations: one per group Pegasus runs.
        let mut launchers: Vec<String> = Vec::new();
        let mut containers: Vec<String> = Vec::new();
        let mut tx: Vec<Option<Tx>> = vec![None; groups.names.len()];
        for (g, members) in groups.members.iter().enumerate() {
            let Some(&first) = members.first() else { continue };
            if !kept[first as usize] {
                continue;
            }
            let job = &ir.jobs[first as usize];
            let mut t = Tx {
                name: groups.names[g].clone(),
                sites: BTreeSet::new(),
                env: Vec::new(),
                soft: Soft::None,
                site_profiles: BTreeMap::new(),
                max_jobs: None,
                steps: Vec::new(),
            };
            if job.kind == JobKind::Join {
                t.sites.insert(LOCAL.into());
                tx[g] = Some(t);
                continue;
            }
            for &j in members {
                t.sites.insert(ir.settings_of(j).site.as_deref().unwrap_or(DEFAULT_SITE).to_string());
            }
            // The group's steps: the cluster's, or the one step.
            let steps: Vec<u32> =
                if job.owner != u32::MAX { ir.clusters[job.owner as usize].steps.clone() } else { vec![ir.members[job.lo as usize].step] };
            let js = ir.settings_of(first);
            let mut env: BTreeMap<String, String> = js.env.iter().cloned().collect();
            for &s in &steps {
                t.steps.push(ir.steps[s as usize].name.clone());
            }
            // Pegasus runs the job in its working directory, where it stages the job's
            // files under their LFNs (`dataset/v1_v2`): that directory is the scratch.
            env.insert("BPSC_SCRATCH".into(), ".".into());
            if let Some(sw) = &js.software {
                env.insert("BPSC_SOFTWARE".into(), sw.label());
                t.soft = match sw {
                    Software::Setup(s) => Soft::Setup(intern(&mut launchers, s)),
                    Software::Container(c) => Soft::Container(intern(&mut containers, c)),
                };
            }
            if matches!(t.soft, Soft::Setup(_)) {
                // The launcher execs the bpsc that pegasus-plan found.
                env.insert("BPSC_BIN".into(), "${BPSC_BIN}".into());
            }
            t.env = env.into_iter().collect();
            t.max_jobs = js.max_jobs;
            // Batch settings, per site of the group.
            for site in &t.sites {
                let backend = sites.iter().find(|s| &s.name == site).map(|s| s.style).unwrap_or("condor");
                let mut p: Vec<(&'static str, &'static str, String)> = Vec::new();
                if let Some(q) = &js.partition {
                    p.push(("pegasus", "queue", q.to_string()));
                }
                if let Some(a) = &js.account {
                    p.push(("pegasus", "project", a.to_string()));
                }
                let hosts = &js.hosts;
                let avoid = &js.avoid_hosts;
                if backend == "glite" {
                    let mut args: Vec<String> = Vec::new();
                    if let Some(q) = &js.qos {
                        args.push(format!("--qos={q}"));
                    }
                    if !hosts.is_empty() {
                        args.push(format!("--nodelist={}", hosts.join(",")));
                    }
                    if !avoid.is_empty() {
                        args.push(format!("--exclude={}", avoid.join(",")));
                    }
                    if !args.is_empty() {
                        p.push(("pegasus", "glite.arguments", args.join(" ")));
                    }
                } else {
                    let mut req: Vec<String> = Vec::new();
                    if !hosts.is_empty() {
                        req.push(format!(
                            "({})",
                            hosts.iter().map(|h| format!("Machine == {}", classad_str(h))).collect::<Vec<_>>().join(" || ")
                        ));
                    }
                    for h in avoid {
                        req.push(format!("(Machine =!= {})", classad_str(h)));
                    }
                    if !req.is_empty() {
                        p.push(("condor", "requirements", req.join(" && ")));
                    }
                }
                if !p.is_empty() {
                    t.site_profiles.insert(site.clone(), p);
                }
            }
            tx[g] = Some(t);
        }

        let mut m = Model {
            ir,
            groups,
            ids,
            order,
            kept,
            edges,
            sites,
            tx,
            launchers,
            containers,
            name: node_name(campaign),
            inputs: Vec::new(),
            staged_by: Vec::new(),
            step_res: Vec::new(),
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
        m.step_res = ir
            .steps
            .iter()
            .map(|st| {
                let j = *st.job_of.first()?;
                (ir.jobs[j as usize].owner == u32::MAX).then(|| Res::of(&ir.settings_of(j).resources))
            })
            .collect();
        m.inputs = m.plan_inputs();
        m
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

    /// The files job `j` uses, sorted by LFN (inputs before outputs of the same name cannot
    /// happen: a file a job produces itself is not an input of it).
    pub fn uses(&self, j: u32, out: &mut Vec<Use>) {
        out.clear();
        let ir = self.ir;
        let job = &ir.jobs[j as usize];
        if job.kind != JobKind::Compute {
            return;
        }
        let mut key: Vec<u32> = Vec::new();
        for m in ir.job_members(j) {
            let st = &ir.steps[m.step as usize];
            let vals = ir.data_id(*m);
            for o in &st.outputs {
                let lfn = instance_rel(&o.dataset, &vals);
                let archived = o.persist == Persist::Archive && o.archive.is_some();
                out.push(Use { lfn, output: true, stage_out: archived, register: archived, optional: false });
            }
        }
        let n_out = out.len();
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
                            if pj == j || !self.feeds(pj, j) {
                                continue;
                            }
                            let vals: Vec<&Value> = dims_in_producer
                                .iter()
                                .map(|&c| ir.dicts.decode(p.quanta.schema()[c], p.quanta.column(c)[r as usize]))
                                .collect();
                            let lfn = instance_rel(ds, &vals);
                            if out[..n_out].iter().any(|o| o.lfn == lfn) {
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

    /// Metadata of a kept job: (key, value) in a fixed order.
    pub fn metadata(&self, j: u32) -> Vec<(&'static str, Val<'_>)> {
        let ir = self.ir;
        let job = &ir.jobs[j as usize];
        let mut md: Vec<(&'static str, Val<'_>)> = Vec::with_capacity(5);
        md.push(("campaign", Val::Text(Cow::Borrowed(&ir.campaign))));
        match job.kind {
            JobKind::Compute => {
                let ms = ir.job_members(j);
                let first: QRef = ms[0];
                let st = &ir.steps[first.step as usize];
                let step = if ms.iter().all(|m| m.step == first.step) {
                    Cow::Borrowed(st.name.as_str())
                } else {
                    let mut steps: Vec<&str> = Vec::new();
                    for m in ms {
                        let n = ir.steps[m.step as usize].name.as_str();
                        if !steps.contains(&n) {
                            steps.push(n);
                        }
                    }
                    Cow::Owned(steps.join(","))
                };
                md.push(("step", Val::Text(step)));
                let vals = ir.data_id(first);
                let mut data_id = String::with_capacity(32);
                let mut push = |d: &str, v: &Value| {
                    if !data_id.is_empty() {
                        data_id.push(',');
                    }
                    data_id.push_str(d);
                    data_id.push('=');
                    match v {
                        Value::Int(i) => data_id.push_str(itoa(*i).as_str()),
                        Value::Str(s) => data_id.push_str(s),
                    }
                };
                if job.owner != u32::MAX && ir.clusters[job.owner as usize].size.is_none() {
                    for d in &ir.clusters[job.owner as usize].by {
                        if let Some(i) = st.dims.iter().position(|x| x == d) {
                            push(d, vals[i]);
                        }
                    }
                } else {
                    for (d, v) in st.dims.iter().zip(&vals) {
                        push(d, v);
                    }
                }
                md.push(("data_id", Val::Text(Cow::Owned(data_id))));
                if job.owner != u32::MAX {
                    md.push(("cluster", Val::Text(Cow::Borrowed(&ir.clusters[job.owner as usize].name))));
                    md.push(("quanta", Val::Num(ms.len() as i64)));
                }
            }
            _ => md.push(("kind", Val::Text(Cow::Borrowed(job.kind.as_str())))),
        }
        md
    }

    /// The resources of a compute job: per step for unclustered jobs (computed once),
    /// aggregated by lowering for clusters.
    fn res(&self, j: u32) -> Res {
        let job = &self.ir.jobs[j as usize];
        if job.owner == u32::MAX {
            if let Some(r) = self.step_res[self.ir.members[job.lo as usize].step as usize] {
                return r;
            }
        }
        Res::of(&self.ir.settings_of(j).resources)
    }

    /// Profiles of a kept job, as (namespace, key, value).
    pub fn profiles(&self, j: u32, selector_ns: &'static str) -> Vec<(&'static str, &'static str, Val<'_>)> {
        let job = &self.ir.jobs[j as usize];
        let mut p: Vec<(&'static str, &'static str, Val<'_>)> = Vec::with_capacity(10);
        if job.kind == JobKind::Compute {
            let r = self.res(j);
            p.push(("condor", "request_memory", Val::Num(r.memory_mib)));
            p.push(("condor", "request_cpus", Val::Num(r.cpus)));
            p.push(("condor", "request_disk", Val::Num(r.disk_kib)));
            p.push(("pegasus", "runtime", Val::Num(r.walltime)));
            p.push(("dagman", "RETRY", Val::Num(r.retries)));
            if r.abort {
                p.push(("dagman", "ABORT-DAG-ON", Val::Text(Cow::Borrowed("1 RETURN 1"))));
            }
            if let Some(t) = &self.tx[self.groups.group_of[j as usize] as usize] {
                if t.max_jobs.is_some() {
                    p.push(("dagman", "CATEGORY", Val::Text(Cow::Borrowed(&t.name))));
                }
            }
        }
        p.push(("dagman", "PRIORITY", Val::Num(job.priority as i64)));
        p.push((selector_ns, "execution.site", Val::Text(Cow::Borrowed(self.site_of(j)))));
        p
    }
}

/// A metadata or profile value.
#[derive(Clone, Debug, PartialEq)]
pub enum Val<'a> {
    Num(i64),
    Text(Cow<'a, str>),
}

impl Val<'_> {
    pub fn text(&self) -> Cow<'_, str> {
        match self {
            Val::Num(n) => Cow::Owned(itoa(*n)),
            Val::Text(t) => Cow::Borrowed(t),
        }
    }
}

fn itoa(n: i64) -> String {
    n.to_string()
}

/// What the profiles need of [`Resources`].
#[derive(Clone, Copy, Debug)]
struct Res {
    memory_mib: i64,
    cpus: i64,
    disk_kib: i64,
    walltime: i64,
    retries: i64,
    abort: bool,
}

impl Res {
    fn of(r: &Resources) -> Res {
        let clamp = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        Res {
            memory_mib: clamp(r.memory.div_ceil(1 << 20)),
            cpus: r.cpus,
            disk_kib: clamp(r.disk.div_ceil(1 << 10)),
            walltime: clamp(r.walltime),
            retries: r.retries,
            abort: r.on_failure == OnFailure::Abort,
        }
    }
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

/// The shell command inside [`notify_command`].
pub fn notify_shell(template: &str, campaign: &str, event: &str, step: &str) -> String {
    use crate::ir::quote::{quote_in, scan_quotes, Quote};
    let mut cmd = String::with_capacity(template.len() + 32);
    let mut q = Quote::None;
    let mut rest = template;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("{{") {
            cmd.push('{');
            q = scan_quotes("{", q);
            rest = r;
        } else if let Some(r) = rest.strip_prefix("}}") {
            cmd.push('}');
            q = scan_quotes("}", q);
            rest = r;
        } else if rest.starts_with('{') {
            match rest.find('}') {
                Some(e) => {
                    let v = match &rest[1..e] {
                        "campaign" => campaign,
                        "event" => event,
                        "step" => step,
                        _ => "",
                    };
                    quote_in(v, q, &mut cmd);
                    rest = &rest[e + 1..];
                }
                None => {
                    cmd.push_str(rest);
                    rest = "";
                }
            }
        } else {
            let e = rest.find(['{', '}']).unwrap_or(rest.len());
            let e = if e == 0 { 1 } else { e };
            let lit = &rest[..e];
            cmd.push_str(lit);
            q = scan_quotes(lit, q);
            rest = &rest[e..];
        }
    }
    cmd
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
