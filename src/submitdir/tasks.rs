//! Task tables: what the job wrapper needs to run job K of a task group, written compactly.
//!
//! A million-job campaign is mostly repetition: every quantum of a step runs the same
//! template with its own data ID.  So the tables keep per step what is the same for all of
//! its quanta (the [`StepSpec`]: template, config, datasets) once, and per job only what
//! differs: for a step's own group, nothing at all — job K is quantum K of the step, whose
//! data ID is row K of the step's quanta.  The wrapper renders the job's line (command,
//! paths, transfers) at run time with the compiler's own code
//! ([`crate::ir::jsonl::write_job_line`]), so what it runs is byte for byte what
//! `bpsc compile --emit ir` shows; `bpsc show SUBMIT JOB` prints it.
//!
//! ```text
//! tasks/
//!   spec.json             campaign, dimensions, step specs, clusters, stage sets, the job
//!                         settings table, and each group: kind, layout, job count
//!   dims/D.values         the values of dimension D in value order, one JSON value a line
//!   dims/D.offsets        u64 offsets of those lines (LE), one more than values
//!   steps/S.rows          step S's quanta: per quantum one u32 rank per dimension (LE),
//!                         rows in value order (the IR's canonical order)
//!   stage/K.rows          stage set K's instances, the same way
//!   G.jobs                per job of a group that is not one step's quanta, a fixed record:
//!                           members (clusters):  u64 first member, u32 settings, i32 priority
//!                           owners (stage-out, cleanup): u32 group, u32 index, u32 settings, i32 priority
//!                           staged (stage-in):   u64 first item, u32 ordinal, u32 settings, i32 priority
//!                           joins:               u32 ordinal, i32 priority
//!   G.members, G.items    (step u32, quantum u32) / (set u32, row u32) records
//!   G.byid                (when the engine names jobs by id) u32 job index per job, in id order
//!   G.parents, G.poff     (when the engine needs them) parents as (group u32, index u32), u64 offsets
//!   G.jsonl, G.idx        the rendered job lines and their u64 offsets, for groups whose jobs
//!                         carry their table with them (HTCondor file transfer, one shard a job)
//! ```
//!
//! Ranks are positions in value order over every value a dimension has in the campaign, so
//! a step's rows are sorted by rank tuple and a data ID can be found by binary search.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::groups::Groups;
use super::output::Output;
use crate::coverage::Value;
use crate::ir::jsonl::{write_job_line, JobLines, JobView, StageSetSpec};
use crate::ir::naming::{compute_id, sanitize};
use crate::ir::render::{Gathered, Quantum};
use crate::ir::{GatherFrom, Ir, JobKind, JobSettings, StepSpec, NO_CLUSTER};

/// `spec.json`'s format version.
pub const FORMAT: u32 = 2;

/// The static part of the tables (`tasks/spec.json`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Spec {
    pub format: u32,
    pub campaign: String,
    pub dims: Vec<DimSpec>,
    pub steps: Vec<StepTable>,
    pub clusters: Vec<ClusterSpec>,
    pub stage_sets: Vec<StageTable>,
    pub settings: Vec<JobSettings>,
    pub groups: Vec<GroupSpec>,
    #[serde(default)]
    pub final_job: Option<crate::ir::FinalJob>,
    /// The step graph (producer, consumer), by step name: what a reader draws when the
    /// tables keep no parents (only Slurm's jobs check theirs).
    #[serde(default)]
    pub step_edges: Vec<[String; 2]>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DimSpec {
    pub name: String,
    pub values: u64,
    /// Holds integers (`int`), strings (`str`), both (`mixed`) or nothing (`empty`).
    pub kind: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StepTable {
    #[serde(flatten)]
    pub spec: StepSpec,
    /// Dimension indices (into [`Spec::dims`]) of the step's columns.
    pub cols: Vec<u32>,
    pub quanta: u64,
    /// The step's gathered inputs (`steps/S.gK.off`, `.rows`, and `.inst` for instances of
    /// a dataset no step produces).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gathers: Vec<GatherTable>,
}

/// One gathered input of a step (see [`crate::ir::Gather`]).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GatherTable {
    /// Index into the step's inputs.
    pub input: u32,
    /// The producing step (rows are its quanta), or none: rows are of `S.gK.inst`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_step: Option<u32>,
    /// Instances: their dimension indices (into [`Spec::dims`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cols: Vec<u32>,
    #[serde(default)]
    pub instances: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StageTable {
    #[serde(flatten)]
    pub spec: StageSetSpec,
    pub cols: Vec<u32>,
    pub instances: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClusterSpec {
    pub name: String,
    pub by: Vec<String>,
    pub size: Option<u32>,
    /// Per member step: the positions of the values that name a job (see [`crate::ir::Cluster`]).
    #[serde(default)]
    pub key_cols: Vec<(u32, Vec<usize>)>,
}

/// How a group's jobs are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// Job K is quantum K of one step.
    Step,
    /// Cluster jobs: members per job.
    Members,
    /// Stage-out or cleanup jobs: the job each serves.
    Owners,
    /// Stage-in jobs: the instances each stages.
    Staged,
    /// Join jobs: their ordinals.
    Joins,
    /// The provenance job.
    Final,
    /// Rendered job lines (`G.jsonl` + `G.idx`).
    Lines,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GroupSpec {
    pub name: String,
    pub kind: JobKind,
    pub layout: Layout,
    pub jobs: u64,
    /// Step layout: the step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<u32>,
    /// Members layout: the cluster (index into [`Spec::clusters`]), if the jobs are a cluster's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<u32>,
    /// Step layout: the settings and priority every job of the group has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
    /// `G.byid` exists.
    #[serde(default)]
    pub byid: bool,
    /// `G.parents` exists.
    #[serde(default)]
    pub parents: bool,
}

/// What an engine asks of the tables.
#[derive(Clone, Debug, Default)]
pub struct TableOptions {
    /// Write `G.byid` for groups whose ids cannot be decoded (the engine passes `--job ID`).
    pub by_id: bool,
    /// Write every job's parents (the engine's jobs check their parents' records).
    pub parents: bool,
    /// Groups written as rendered lines instead (by name).
    pub lines: Vec<String>,
}

// ------------------------------------------------------------------ writing

fn le32(w: &mut dyn Write, x: u32) -> io::Result<()> {
    w.write_all(&x.to_le_bytes())
}

fn le64(w: &mut dyn Write, x: u64) -> io::Result<()> {
    w.write_all(&x.to_le_bytes())
}

fn dim_kind(d: crate::coverage::DimKind) -> &'static str {
    match d {
        crate::coverage::DimKind::Int => "int",
        crate::coverage::DimKind::Str => "str",
        crate::coverage::DimKind::Mixed => "mixed",
        crate::coverage::DimKind::Empty => "empty",
    }
}

fn value_json(v: &Value) -> String {
    match v {
        Value::Int(i) => i.to_string(),
        Value::Str(s) => serde_json::to_string(&**s).unwrap_or_else(|_| "\"\"".into()),
    }
}

/// Write every group's table.
pub fn write_tables(ir: &Ir, out: &dyn Output, g: &Groups, opts: &TableOptions) -> io::Result<()> {
    let t = super::TASKS;
    // Dimensions: every dimension a step or stage set uses, in dictionary order.
    let mut dim_index: HashMap<crate::coverage::DimId, u32> = HashMap::new();
    let mut dims: Vec<DimSpec> = Vec::new();
    let mut dim_of = |d: crate::coverage::DimId, dims: &mut Vec<DimSpec>| -> u32 {
        *dim_index.entry(d).or_insert_with(|| {
            let dict = ir.dicts.dict(d);
            dims.push(DimSpec { name: ir.dicts.name(d).to_string(), values: dict.len() as u64, kind: dim_kind(dict.kind()).into() });
            dims.len() as u32 - 1
        })
    };
    let mut steps = Vec::with_capacity(ir.steps.len());
    for st in &ir.steps {
        let cols: Vec<u32> = st.quanta.schema().iter().map(|&d| dim_of(d, &mut dims)).collect();
        let gathers = st
            .gathers
            .iter()
            .map(|g| match &g.from {
                GatherFrom::Step(p) => GatherTable { input: g.input, from_step: Some(*p), cols: Vec::new(), instances: 0 },
                GatherFrom::Instances(rel) => GatherTable {
                    input: g.input,
                    from_step: None,
                    cols: rel.schema().iter().map(|&d| dim_of(d, &mut dims)).collect(),
                    instances: rel.len() as u64,
                },
            })
            .collect();
        steps.push(StepTable { spec: st.spec.clone(), cols, quanta: st.quanta.len() as u64, gathers });
    }
    let mut stage_sets = Vec::with_capacity(ir.stage_sets.len());
    for s in &ir.stage_sets {
        let cols: Vec<u32> = s.instances.schema().iter().map(|&d| dim_of(d, &mut dims)).collect();
        stage_sets.push(StageTable { spec: StageSetSpec::of(s), cols, instances: s.instances.len() as u64 });
    }
    // Dimension values in value order, and the rank of every code.
    let mut schema_dims: Vec<(crate::coverage::DimId, u32)> = dim_index.iter().map(|(&d, &i)| (d, i)).collect();
    schema_dims.sort_by_key(|x| x.1);
    for &(d, i) in &schema_dims {
        let dict = ir.dicts.dict(d);
        let name = sanitize(&dims[i as usize].name);
        let mut vw = out.create(&format!("{t}/dims/{i}-{name}.values"))?;
        let mut ow = out.create(&format!("{t}/dims/{i}-{name}.offsets"))?;
        let mut off = 0u64;
        for &code in dict.by_rank() {
            le64(&mut *ow, off)?;
            let mut text = value_json(dict.value(code));
            text.push('\n');
            vw.write_all(text.as_bytes())?;
            off += text.len() as u64;
        }
        le64(&mut *ow, off)?;
        vw.flush()?;
        ow.flush()?;
    }
    let rank = |d: crate::coverage::DimId, code: u32| ir.dicts.dict(d).rank(code);
    // Quanta and stage instances as rank rows.
    for (si, st) in ir.steps.iter().enumerate() {
        let mut w = out.create_buffered(&format!("{t}/steps/{si}.rows"), 1 << 20)?;
        let schema = st.quanta.schema();
        let cols: Vec<&[u32]> = (0..schema.len()).map(|c| st.quanta.column(c)).collect();
        let mut buf = Vec::with_capacity(4 * schema.len());
        for q in 0..st.quanta.len() {
            buf.clear();
            for (c, &d) in schema.iter().enumerate() {
                buf.extend_from_slice(&rank(d, cols[c][q]).to_le_bytes());
            }
            w.write_all(&buf)?;
        }
        w.flush()?;
    }
    for (si, st) in ir.steps.iter().enumerate() {
        for (k, g) in st.gathers.iter().enumerate() {
            let mut w = out.create_buffered(&format!("{t}/steps/{si}.g{k}.off"), 1 << 20)?;
            for &o in &g.offsets {
                le64(&mut *w, o)?;
            }
            w.flush()?;
            let mut w = out.create_buffered(&format!("{t}/steps/{si}.g{k}.rows"), 1 << 20)?;
            for &r in &g.rows {
                le32(&mut *w, r)?;
            }
            w.flush()?;
            if let GatherFrom::Instances(rel) = &g.from {
                let mut w = out.create_buffered(&format!("{t}/steps/{si}.g{k}.inst"), 1 << 20)?;
                let schema = rel.schema();
                for q in 0..rel.len() {
                    for (c, &d) in schema.iter().enumerate() {
                        le32(&mut *w, rank(d, rel.column(c)[q]))?;
                    }
                }
                w.flush()?;
            }
        }
    }
    for (k, s) in ir.stage_sets.iter().enumerate() {
        let mut w = out.create(&format!("{t}/stage/{k}.rows"))?;
        let schema = s.instances.schema();
        for q in 0..s.instances.len() {
            for (c, &d) in schema.iter().enumerate() {
                le32(&mut *w, rank(d, s.instances.column(c)[q]))?;
            }
        }
        w.flush()?;
    }
    // Groups.  A stage-out or cleanup group whose jobs serve jobs of a rendered group is
    // rendered too (its lines need the served jobs' quanta).
    let mut as_lines: Vec<bool> = g.names.iter().map(|n| opts.lines.iter().any(|l| l == n)).collect();
    for (gi, members) in g.members.iter().enumerate() {
        let served = members.iter().filter(|&&j| matches!(ir.jobs[j as usize].kind, JobKind::StageOut | JobKind::Cleanup));
        if served.map(|&j| g.group_of[ir.jobs[j as usize].owner as usize] as usize).any(|og| as_lines[og]) {
            as_lines[gi] = true;
        }
    }
    let mut groups = Vec::with_capacity(g.names.len());
    let mut lines: Option<JobLines> = None;
    for (gi, name) in g.names.iter().enumerate() {
        let members = &g.members[gi];
        let first = members.first().map(|&j| &ir.jobs[j as usize]);
        let kind = first.map(|j| j.kind).unwrap_or(JobKind::Join);
        let mut spec = GroupSpec {
            name: name.clone(),
            kind,
            layout: Layout::Final,
            jobs: members.len() as u64,
            step: None,
            cluster: None,
            settings: None,
            priority: None,
            byid: false,
            parents: false,
        };
        if as_lines[gi] {
            spec.layout = Layout::Lines;
            let jl = lines.get_or_insert_with(|| JobLines::new(ir));
            let mut jw = out.create(&format!("{t}/{name}.jsonl"))?;
            let mut xw = out.create(&format!("{t}/{name}.idx"))?;
            let mut off = 0u64;
            for &j in members {
                let line = jl.line(j);
                le64(&mut *xw, off)?;
                jw.write_all(line.as_bytes())?;
                off += line.len() as u64;
            }
            jw.flush()?;
            xw.flush()?;
            groups.push(spec);
            continue;
        }
        match kind {
            JobKind::Compute => {
                let plain = first.is_some_and(|f| f.owner == NO_CLUSTER) && {
                    let s = ir.members[first.map(|f| f.lo).unwrap_or(0) as usize].step;
                    let st = &ir.steps[s as usize];
                    st.job_of.len() == members.len() && st.job_of.iter().zip(members).all(|(a, b)| a == b)
                };
                let uniform = members.iter().all(|&j| {
                    let (a, b) = (&ir.jobs[j as usize], &ir.jobs[members[0] as usize]);
                    a.settings == b.settings && a.priority == b.priority
                });
                if plain && uniform {
                    spec.layout = Layout::Step;
                    spec.step = first.map(|f| ir.members[f.lo as usize].step);
                    spec.settings = first.map(|f| f.settings);
                    spec.priority = first.map(|f| f.priority);
                } else {
                    spec.layout = Layout::Members;
                    spec.cluster = first.and_then(|f| (f.owner != NO_CLUSTER).then_some(f.owner));
                    let mut jw = out.create(&format!("{t}/{name}.jobs"))?;
                    let mut mw = out.create_buffered(&format!("{t}/{name}.members"), 1 << 20)?;
                    let mut off = 0u64;
                    for &j in members {
                        let job = &ir.jobs[j as usize];
                        le64(&mut *jw, off)?;
                        le32(&mut *jw, job.settings)?;
                        le32(&mut *jw, job.priority as u32)?;
                        for m in ir.job_members(j) {
                            le32(&mut *mw, m.step)?;
                            le32(&mut *mw, m.q)?;
                            off += 1;
                        }
                    }
                    le64(&mut *jw, off)?;
                    jw.flush()?;
                    mw.flush()?;
                }
            }
            JobKind::StageOut | JobKind::Cleanup => {
                spec.layout = Layout::Owners;
                let mut jw = out.create(&format!("{t}/{name}.jobs"))?;
                for &j in members {
                    let job = &ir.jobs[j as usize];
                    le32(&mut *jw, g.group_of[job.owner as usize])?;
                    le32(&mut *jw, g.index_in_group[job.owner as usize])?;
                    le32(&mut *jw, job.settings)?;
                    le32(&mut *jw, job.priority as u32)?;
                }
                jw.flush()?;
            }
            JobKind::StageIn => {
                spec.layout = Layout::Staged;
                let mut jw = out.create(&format!("{t}/{name}.jobs"))?;
                let mut iw = out.create(&format!("{t}/{name}.items"))?;
                let mut off = 0u64;
                for &j in members {
                    let job = &ir.jobs[j as usize];
                    le64(&mut *jw, off)?;
                    le32(&mut *jw, job.owner)?;
                    le32(&mut *jw, job.settings)?;
                    le32(&mut *jw, job.priority as u32)?;
                    for s in &ir.staged[job.lo as usize..job.hi as usize] {
                        le32(&mut *iw, s.dataset)?;
                        le32(&mut *iw, s.row)?;
                        off += 1;
                    }
                }
                le64(&mut *jw, off)?;
                jw.flush()?;
                iw.flush()?;
            }
            JobKind::Join => {
                spec.layout = Layout::Joins;
                let mut jw = out.create(&format!("{t}/{name}.jobs"))?;
                for &j in members {
                    le32(&mut *jw, ir.jobs[j as usize].owner)?;
                    le32(&mut *jw, ir.jobs[j as usize].priority as u32)?;
                }
                jw.flush()?;
            }
            JobKind::Provenance => {
                spec.layout = Layout::Final;
                spec.settings = first.map(|f| f.settings);
                spec.priority = first.map(|f| f.priority);
            }
        }
        groups.push(spec);
    }
    // Optional indexes.
    if opts.by_id || opts.parents {
        let ids: Vec<String> = (0..ir.jobs.len() as u32).map(|j| ir.job_id(j)).collect();
        for (gi, spec) in groups.iter_mut().enumerate() {
            let members = &g.members[gi];
            if opts.by_id && !matches!(spec.layout, Layout::Step | Layout::Final) {
                let mut order: Vec<u32> = (0..members.len() as u32).collect();
                order.sort_by(|&a, &b| ids[members[a as usize] as usize].cmp(&ids[members[b as usize] as usize]));
                let mut w = out.create(&format!("{t}/{}.byid", spec.name))?;
                for k in order {
                    le32(&mut *w, k)?;
                }
                w.flush()?;
                spec.byid = true;
            }
            if opts.parents {
                let (poff, pin) = ir.parents();
                let mut pw = out.create(&format!("{t}/{}.parents", spec.name))?;
                let mut ow = out.create(&format!("{t}/{}.poff", spec.name))?;
                let mut off = 0u64;
                for &j in members {
                    le64(&mut *ow, off)?;
                    for &p in &pin[poff[j as usize] as usize..poff[j as usize + 1] as usize] {
                        le32(&mut *pw, g.group_of[p as usize])?;
                        le32(&mut *pw, g.index_in_group[p as usize])?;
                        off += 1;
                    }
                }
                le64(&mut *ow, off)?;
                pw.flush()?;
                ow.flush()?;
                spec.parents = true;
            }
        }
    }
    let spec = Spec {
        format: FORMAT,
        campaign: ir.campaign.clone(),
        dims,
        steps,
        clusters: ir
            .clusters
            .iter()
            .map(|c| ClusterSpec {
                name: c.name.clone(),
                by: c.by.clone(),
                size: c.size,
                key_cols: if c.size.is_some() { Vec::new() } else { c.key_cols.clone() },
            })
            .collect(),
        stage_sets,
        settings: ir.job_settings.clone(),
        groups,
        final_job: ir.final_job.clone(),
        step_edges: ir
            .step_edges
            .iter()
            .filter_map(|&(a, b, _)| Some([ir.steps.get(a as usize)?.name.clone(), ir.steps.get(b as usize)?.name.clone()]))
            .collect(),
    };
    let mut w = out.create(&format!("{t}/spec.json"))?;
    w.write_all(serde_json::to_string(&spec).unwrap_or_default().as_bytes())?;
    w.write_all(b"\n")?;
    w.flush()
}

// ------------------------------------------------------------------ reading

fn bad(p: &Path, what: impl std::fmt::Display) -> String {
    format!("{}: {what}", p.display())
}

/// Read `n` bytes at `off` of a file.
fn read_at(f: &File, p: &Path, off: u64, n: usize) -> Result<Vec<u8>, String> {
    let mut buf = vec![0u8; n];
    f.read_exact_at(&mut buf, off).map_err(|e| bad(p, format!("reading {n} bytes at {off}: {e}")))?;
    Ok(buf)
}

fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

fn u64_at(b: &[u8], i: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[i..i + 8]);
    u64::from_le_bytes(a)
}

/// An open file of the tables, opened on first use.
struct Lazy {
    path: PathBuf,
    file: std::cell::OnceCell<Result<File, String>>,
}

impl Lazy {
    fn new(path: PathBuf) -> Lazy {
        Lazy { path, file: std::cell::OnceCell::new() }
    }
    fn at(&self, off: u64, n: usize) -> Result<Vec<u8>, String> {
        let f = self.file.get_or_init(|| File::open(&self.path).map_err(|e| bad(&self.path, e)));
        match f {
            Ok(f) => read_at(f, &self.path, off, n),
            Err(e) => Err(e.clone()),
        }
    }
    fn len(&self) -> Result<u64, String> {
        std::fs::metadata(&self.path).map(|m| m.len()).map_err(|e| bad(&self.path, e))
    }
}

/// One job as the tables describe it.
#[derive(Clone, Debug)]
pub struct TableJob {
    pub id: String,
    pub kind: JobKind,
    pub priority: i32,
    pub settings: Option<u32>,
    /// (step, quantum index, data ID values)
    pub quanta: Vec<(u32, u64, Vec<Value>)>,
    /// Stage-in: (stage set, values).
    pub staged: Vec<(u32, Vec<Value>)>,
    /// Stage-out and cleanup: the id of the job served.
    pub of: Option<String>,
    pub cluster: Option<u32>,
}

/// The task tables of a submit directory, read on demand (the wrapper reads one job with a
/// handful of positioned reads; `bpsc status` walks them all).
pub struct Tables {
    dir: PathBuf,
    pub spec: Spec,
    dim_values: Vec<Lazy>,
    dim_offsets: Vec<Lazy>,
    step_rows: Vec<Lazy>,
    stage_rows: Vec<Lazy>,
    /// Values already read, per dimension and rank.
    cache: std::cell::RefCell<HashMap<(u32, u32), Value>>,
}

impl Tables {
    /// Open `SUBMIT/tasks`.  Submit directories written before format 2 (only `.jsonl`
    /// tables) are read through [`Tables::line_of_old`].
    pub fn open(submit: &Path) -> Result<Tables, String> {
        let dir = submit.join(super::TASKS);
        let p = dir.join("spec.json");
        let text =
            std::fs::read_to_string(&p).map_err(|e| bad(&p, format!("{e} (not a bpsc submit directory, or one from before bpsc 0.2?)")))?;
        let spec: Spec = serde_json::from_str(&text).map_err(|e| bad(&p, e))?;
        if spec.format != FORMAT {
            return Err(bad(&p, format!("task tables of format {}; this bpsc reads format {FORMAT}", spec.format)));
        }
        // Every column names a dimension of the spec: the readers index by them.
        let n_dims = spec.dims.len() as u64;
        let cols = spec
            .steps
            .iter()
            .flat_map(|s| s.cols.iter().chain(s.gathers.iter().flat_map(|g| g.cols.iter())))
            .chain(spec.stage_sets.iter().flat_map(|t| t.cols.iter()));
        if let Some(c) = cols.into_iter().find(|&&c| u64::from(c) >= n_dims) {
            return Err(bad(&p, format!("a table column names dimension {c}, but there are {n_dims} dimensions")));
        }
        let dim_file = |i: usize, ext: &str| Lazy::new(dir.join("dims").join(format!("{i}-{}.{ext}", sanitize(&spec.dims[i].name))));
        let dim_values = (0..spec.dims.len()).map(|i| dim_file(i, "values")).collect();
        let dim_offsets = (0..spec.dims.len()).map(|i| dim_file(i, "offsets")).collect();
        let step_rows = (0..spec.steps.len()).map(|i| Lazy::new(dir.join("steps").join(format!("{i}.rows")))).collect();
        let stage_rows = (0..spec.stage_sets.len()).map(|i| Lazy::new(dir.join("stage").join(format!("{i}.rows")))).collect();
        Ok(Tables { dir, spec, dim_values, dim_offsets, step_rows, stage_rows, cache: Default::default() })
    }

    fn file(&self, group: &str, ext: &str) -> Lazy {
        Lazy::new(self.dir.join(format!("{group}.{ext}")))
    }

    pub fn group(&self, name: &str) -> Result<(usize, &GroupSpec), String> {
        self.spec
            .groups
            .iter()
            .enumerate()
            .find(|(_, g)| g.name == name)
            .ok_or_else(|| format!("{}: no task group `{name}`", self.dir.display()))
    }

    /// The value of rank `r` of dimension `d`.
    fn value(&self, d: u32, r: u32) -> Result<Value, String> {
        if let Some(v) = self.cache.borrow().get(&(d, r)) {
            return Ok(v.clone());
        }
        let dim = self.spec.dims.get(d as usize).ok_or("bad dimension index")?;
        if u64::from(r) >= dim.values {
            return Err(format!("dimension {}: no value of rank {r}", dim.name));
        }
        let o = self.dim_offsets[d as usize].at(u64::from(r) * 8, 16)?;
        let (a, b) = (u64_at(&o, 0), u64_at(&o, 8));
        if b < a || b - a > (64 << 20) {
            return Err(format!("dimension {}: bad offsets at rank {r}", dim.name));
        }
        let text = self.dim_values[d as usize].at(a, (b - a) as usize)?;
        let v: serde_json::Value = serde_json::from_slice(&text).map_err(|e| format!("dimension {}: value of rank {r}: {e}", dim.name))?;
        let v = match v {
            serde_json::Value::Number(n) => Value::Int(n.as_i64().ok_or("integer out of range")?),
            serde_json::Value::String(s) => Value::Str(s.into()),
            _ => return Err(format!("dimension {}: value of rank {r} is neither an integer nor a string", dim.name)),
        };
        self.cache.borrow_mut().insert((d, r), v.clone());
        Ok(v)
    }

    /// The data ID (values in column order) of row `q` of a rank-row file.
    fn row(&self, rows: &Lazy, cols: &[u32], q: u64) -> Result<Vec<Value>, String> {
        let w = 4 * cols.len();
        if w == 0 {
            return Ok(Vec::new());
        }
        let b = rows.at(q * w as u64, w)?;
        cols.iter().enumerate().map(|(c, &d)| self.value(d, u32_at(&b, 4 * c))).collect()
    }

    /// Quantum `q` of step `s`.
    pub fn quantum(&self, s: u32, q: u64) -> Result<Vec<Value>, String> {
        let st = self.spec.steps.get(s as usize).ok_or("bad step index")?;
        if q >= st.quanta {
            return Err(format!("step {}: no quantum {q}", st.spec.name));
        }
        self.row(&self.step_rows[s as usize], &st.cols, q)
    }

    /// The instances quantum `q` of step `s` gathers, per gathered input: (input, values).
    pub fn gathered(&self, s: u32, q: u64) -> Result<Vec<(u32, Vec<Vec<Value>>)>, String> {
        let st = self.spec.steps.get(s as usize).ok_or("bad step index")?;
        let mut out = Vec::with_capacity(st.gathers.len());
        for (k, g) in st.gathers.iter().enumerate() {
            let file = |ext: &str| Lazy::new(self.dir.join("steps").join(format!("{s}.g{k}.{ext}")));
            let off = file("off").at(q * 8, 16)?;
            let (a, b) = (u64_at(&off, 0), u64_at(&off, 8));
            if b < a || b - a > 50_000_000 {
                return Err(format!("step {}: bad gather range of quantum {q}", st.spec.name));
            }
            let rows = file("rows").at(a * 4, ((b - a) * 4) as usize)?;
            let inst = file("inst");
            let mut vals = Vec::with_capacity((b - a) as usize);
            for i in 0..(b - a) as usize {
                let r = u64::from(u32_at(&rows, 4 * i));
                vals.push(match g.from_step {
                    Some(p) => self.quantum(p, r)?,
                    None => {
                        if r >= g.instances {
                            return Err(format!("step {}: gather row {r} out of range", st.spec.name));
                        }
                        self.row(&inst, &g.cols, r)?
                    }
                });
            }
            out.push((g.input, vals));
        }
        Ok(out)
    }

    fn compute_id(&self, s: u32, vals: &[Value], cluster: Option<u32>) -> String {
        let st = &self.spec.steps[s as usize].spec;
        let refs: Vec<&Value> = vals.iter().collect();
        let c = cluster.and_then(|c| self.spec.clusters.get(c as usize)).map(|c| crate::ir::naming::ClusterNaming {
            name: &c.name,
            cols: c.key_cols.iter().find(|(x, _)| *x == s).map(|(_, k)| k.as_slice()).unwrap_or(&[]),
            chunk: c.size.is_some(),
        });
        compute_id(&st.name, &refs, c)
    }

    /// Job `k` of group `gi`.
    pub fn job(&self, gi: usize, k: u64) -> Result<TableJob, String> {
        let g = self.spec.groups.get(gi).ok_or("bad group index")?;
        if k >= g.jobs {
            return Err(format!("task group {} has {} jobs; no job {k}", g.name, g.jobs));
        }
        let mut job = TableJob {
            id: String::new(),
            kind: g.kind,
            priority: g.priority.unwrap_or(0),
            settings: g.settings,
            quanta: Vec::new(),
            staged: Vec::new(),
            of: None,
            cluster: None,
        };
        match g.layout {
            Layout::Step => {
                let s = g.step.ok_or("step group without a step")?;
                let vals = self.quantum(s, k)?;
                job.id = self.compute_id(s, &vals, None);
                job.quanta.push((s, k, vals));
            }
            Layout::Members => {
                let f = self.file(&g.name, "jobs");
                let r = f.at(k * 16, 24)?;
                let (lo, settings, prio, hi) = (u64_at(&r, 0), u32_at(&r, 8), u32_at(&r, 12) as i32, u64_at(&r, 16));
                if hi < lo || hi - lo > 10_000_000 {
                    return Err(format!("{}: bad member range of job {k}", g.name));
                }
                job.settings = Some(settings);
                job.priority = prio;
                let m = self.file(&g.name, "members").at(lo * 8, ((hi - lo) * 8) as usize)?;
                for i in 0..(hi - lo) as usize {
                    let (s, q) = (u32_at(&m, 8 * i), u32_at(&m, 8 * i + 4));
                    job.quanta.push((s, u64::from(q), self.quantum(s, u64::from(q))?));
                }
                job.cluster = g.cluster;
                let (s, _, vals) = job.quanta.first().ok_or("a compute job without members")?;
                job.id = self.compute_id(*s, vals, job.cluster);
            }
            Layout::Owners => {
                let r = self.file(&g.name, "jobs").at(k * 16, 16)?;
                let (og, oi) = (u32_at(&r, 0) as usize, u64::from(u32_at(&r, 4)));
                job.settings = Some(u32_at(&r, 8));
                job.priority = u32_at(&r, 12) as i32;
                // An owner is a compute job, never another stage-out or cleanup: a damaged
                // record naming one could recurse without end (found by fuzzing: a stage-out
                // job that owned itself overflowed the stack).
                if self.spec.groups.get(og).is_none_or(|o| o.layout == Layout::Owners) {
                    return Err(format!("{}: job {k} names group {og} as its owner, which is not a compute group", g.name));
                }
                let owner = self.job(og, oi)?;
                let prefix = if g.kind == JobKind::StageOut { "stageout" } else { "cleanup" };
                job.id = format!("{prefix}_{}", owner.id);
                job.quanta = owner.quanta;
                job.of = Some(owner.id);
            }
            Layout::Staged => {
                let f = self.file(&g.name, "jobs");
                let r = f.at(k * 20, 28)?;
                let (lo, ord, settings, prio, hi) = (u64_at(&r, 0), u32_at(&r, 8), u32_at(&r, 12), u32_at(&r, 16) as i32, u64_at(&r, 20));
                if hi < lo || hi - lo > 10_000_000 {
                    return Err(format!("{}: bad item range of job {k}", g.name));
                }
                job.id = format!("stagein_{ord}");
                job.settings = Some(settings);
                job.priority = prio;
                let items = self.file(&g.name, "items").at(lo * 8, ((hi - lo) * 8) as usize)?;
                for i in 0..(hi - lo) as usize {
                    let (set, row) = (u32_at(&items, 8 * i), u32_at(&items, 8 * i + 4));
                    let t = self.spec.stage_sets.get(set as usize).ok_or("bad stage set")?;
                    job.staged.push((set, self.row(&self.stage_rows[set as usize], &t.cols, u64::from(row))?));
                }
            }
            Layout::Joins => {
                let r = self.file(&g.name, "jobs").at(k * 8, 8)?;
                job.id = format!("join_{}", u32_at(&r, 0));
                job.priority = u32_at(&r, 4) as i32;
            }
            Layout::Final => job.id = "provenance".into(),
            Layout::Lines => {
                let line = self.line_of_lines(g, k)?;
                let v: serde_json::Value = serde_json::from_str(&line).map_err(|e| format!("{}: {e}", g.name))?;
                job.id = v["id"].as_str().unwrap_or("").to_string();
            }
        }
        Ok(job)
    }

    fn line_of_lines(&self, g: &GroupSpec, k: u64) -> Result<String, String> {
        let table = self.dir.join(format!("{}.jsonl", g.name));
        read_task_line(&table, k).map_err(|e| bad(&table, e))
    }

    /// The parents of job `k` of group `gi`, when the tables keep them.
    pub fn parents(&self, gi: usize, k: u64) -> Result<Option<Vec<String>>, String> {
        let g = &self.spec.groups[gi];
        if !g.parents {
            return Ok(None);
        }
        let o = self.file(&g.name, "poff").at(k * 8, 16)?;
        let (a, b) = (u64_at(&o, 0), u64_at(&o, 8));
        if b < a || b - a > 10_000_000 {
            return Err(format!("{}: bad parent range of job {k}", g.name));
        }
        let p = self.file(&g.name, "parents").at(a * 8, ((b - a) * 8) as usize)?;
        let mut out = Vec::new();
        for i in 0..(b - a) as usize {
            out.push(self.job(u32_at(&p, 8 * i) as usize, u64::from(u32_at(&p, 8 * i + 4)))?.id);
        }
        Ok(Some(out))
    }

    /// The job line (the IR's job-line format) of job `k` of group `group`, rendered with the
    /// compiler's code: what the wrapper runs.
    pub fn line(&self, group: &str, k: u64) -> Result<String, String> {
        let (gi, g) = self.group(group)?;
        if g.layout == Layout::Lines {
            return self.line_of_lines(g, k);
        }
        let job = self.job(gi, k)?;
        let parents = self.parents(gi, k)?;
        let settings = job.settings.and_then(|s| self.spec.settings.get(s as usize));
        let steps: Vec<&StepSpec> = self.spec.steps.iter().map(|s| &s.spec).collect();
        let mut gathered = Vec::with_capacity(job.quanta.len());
        for (s, q, _) in &job.quanta {
            gathered.push(if job.kind == JobKind::Compute { self.gathered(*s, *q)? } else { Vec::new() });
        }
        let quanta: Vec<Quantum> = job
            .quanta
            .iter()
            .zip(&gathered)
            .map(|((s, _, v), g)| {
                let spec = steps[*s as usize];
                let gathered = g
                    .iter()
                    .map(|(input, instances)| {
                        let (input, instances) = (*input, instances.iter().map(|vals| vals.iter().collect()).collect());
                        let from = self.spec.steps[*s as usize].gathers.iter().find(|t| t.input == input).and_then(|t| t.from_step);
                        let dims = match from.and_then(|p| self.spec.steps.get(p as usize)) {
                            Some(p) => &p.spec.dims[..],
                            None => spec.inputs.get(input as usize).map(|i| &i.dims[..]).unwrap_or(&[]),
                        };
                        Gathered { input, dims, instances }
                    })
                    .collect();
                Quantum { spec, vals: v.iter().collect(), gathered }
            })
            .collect();
        let view = JobView {
            id: &job.id,
            kind: job.kind,
            priority: job.priority,
            parents: parents.as_ref().map(|p| p.iter().map(|s| s.as_str()).collect()),
            site: match job.kind {
                JobKind::Compute | JobKind::StageOut | JobKind::Cleanup => settings.and_then(|s| s.site.as_deref()),
                _ => None,
            },
            cluster: job.cluster.and_then(|c| self.spec.clusters.get(c as usize)).map(|c| c.name.as_str()),
            resources: (job.kind == JobKind::Compute).then(|| settings.map(|s| &s.resources)).flatten(),
            quanta,
            staged: job.staged.iter().map(|(s, v)| (&self.spec.stage_sets[*s as usize].spec, v.iter().collect())).collect(),
            of: job.of.as_deref(),
            final_job: if job.kind == JobKind::Provenance { self.spec.final_job.as_ref() } else { None },
        };
        let mut line = String::new();
        write_job_line(&self.spec.campaign, &view, &mut line);
        Ok(line)
    }

    /// The group and index of the job with id `id`, whatever its group.
    pub fn locate(&self, id: &str) -> Result<(String, u64), String> {
        for g in &self.spec.groups {
            if let Ok(k) = self.find(&g.name, id) {
                return Ok((g.name.clone(), k));
            }
        }
        Err(format!("{}: no job `{id}` in any task group", self.dir.display()))
    }

    /// The settings of job `k` of group `group` (the resolved [`JobSettings`]).
    pub fn settings(&self, group: &str, k: u64) -> Result<Option<&JobSettings>, String> {
        let (gi, _) = self.group(group)?;
        let job = self.job(gi, k)?;
        Ok(job.settings.and_then(|s| self.spec.settings.get(s as usize)))
    }

    /// The index of the job with id `id` in group `group`.
    pub fn find(&self, group: &str, id: &str) -> Result<u64, String> {
        let (gi, g) = self.group(group)?;
        let not_found = || format!("task group {group} has no job `{id}`");
        match g.layout {
            Layout::Final if id == "provenance" && g.jobs > 0 => Ok(0),
            Layout::Final => Err(not_found()),
            Layout::Step => self.find_in_step(gi, id)?.ok_or_else(not_found),
            _ if g.byid => {
                let f = self.file(&g.name, "byid");
                let (mut lo, mut hi) = (0u64, g.jobs);
                while lo < hi {
                    let mid = (lo + hi) / 2;
                    let k = u64::from(u32_at(&f.at(mid * 4, 4)?, 0));
                    let got = self.job(gi, k)?.id;
                    match got.as_str().cmp(id) {
                        std::cmp::Ordering::Equal => return Ok(k),
                        std::cmp::Ordering::Less => lo = mid + 1,
                        std::cmp::Ordering::Greater => hi = mid,
                    }
                }
                Err(not_found())
            }
            _ => {
                // Small groups without an index: a scan.
                if g.jobs > 100_000 {
                    return Err(format!("task group {group} has no id index; pass --index"));
                }
                for k in 0..g.jobs {
                    if self.job(gi, k)?.id == id {
                        return Ok(k);
                    }
                }
                Err(not_found())
            }
        }
    }

    /// A step's job by id: decode the data ID from the id, find its values' ranks, then the
    /// row by binary search (rows are in rank order).
    fn find_in_step(&self, gi: usize, id: &str) -> Result<Option<u64>, String> {
        let g = &self.spec.groups[gi];
        let Some(s) = g.step else { return Ok(None) };
        let st = &self.spec.steps[s as usize];
        let prefix = sanitize(&st.spec.name);
        let Some(rest) = id.strip_prefix(prefix.as_str()) else { return Ok(None) };
        let parts: Vec<&str> = if st.cols.is_empty() {
            if !rest.is_empty() {
                return Ok(None);
            }
            Vec::new()
        } else {
            let Some(rest) = rest.strip_prefix('_') else { return Ok(None) };
            rest.split('_').collect()
        };
        if parts.len() != st.cols.len() {
            return Ok(None);
        }
        // Candidate ranks per column (a dimension with integers and strings may read both ways).
        let mut ranks: Vec<Vec<u32>> = Vec::new();
        for (part, &d) in parts.iter().zip(&st.cols) {
            let Some(text) = crate::ir::naming::decode_value(part) else { return Ok(None) };
            let mut cands = Vec::new();
            if let Ok(i) = text.parse::<i64>() {
                cands.push(Value::Int(i));
            }
            cands.push(Value::Str(text.into()));
            let mut rs = Vec::new();
            for v in cands {
                if let Some(r) = self.rank_of(d, &v)? {
                    rs.push(r);
                }
            }
            if rs.is_empty() {
                return Ok(None);
            }
            ranks.push(rs);
        }
        // Every combination (one in all but mixed dimensions).
        let mut combos: Vec<Vec<u32>> = vec![Vec::new()];
        for rs in &ranks {
            combos = combos.into_iter().flat_map(|c| rs.iter().map(move |&r| [c.clone(), vec![r]].concat())).collect();
        }
        let rows = &self.step_rows[s as usize];
        let w = 4 * st.cols.len() as u64;
        for want in combos {
            let (mut lo, mut hi) = (0u64, st.quanta);
            while lo < hi {
                let mid = (lo + hi) / 2;
                let b = rows.at(mid * w, w as usize)?;
                let got: Vec<u32> = (0..st.cols.len()).map(|c| u32_at(&b, 4 * c)).collect();
                match got.cmp(&want) {
                    std::cmp::Ordering::Equal => return Ok(Some(mid)),
                    std::cmp::Ordering::Less => lo = mid + 1,
                    std::cmp::Ordering::Greater => hi = mid,
                }
            }
        }
        Ok(None)
    }

    /// The rank of value `v` in dimension `d`, by binary search over the value-ordered file.
    fn rank_of(&self, d: u32, v: &Value) -> Result<Option<u32>, String> {
        let (mut lo, mut hi) = (0u64, self.spec.dims.get(d as usize).ok_or("bad dimension index")?.values);
        while lo < hi {
            let mid = (lo + hi) / 2;
            let got = self.value(d, mid as u32)?;
            match got.cmp(v) {
                std::cmp::Ordering::Equal => return Ok(Some(mid as u32)),
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
            }
        }
        Ok(None)
    }

    /// Every job: `f(group, index, job)`, groups in table order.
    pub fn for_each_job(&self, mut f: impl FnMut(&str, u64, TableJob)) -> Vec<String> {
        let mut notes = Vec::new();
        for (gi, g) in self.spec.groups.iter().enumerate() {
            for k in 0..g.jobs {
                match self.job(gi, k) {
                    Ok(j) => f(&g.name, k, j),
                    Err(e) => {
                        notes.push(e);
                        break;
                    }
                }
            }
        }
        notes
    }

    pub fn step_name(&self, s: u32) -> &str {
        self.spec.steps.get(s as usize).map(|s| s.spec.name.as_str()).unwrap_or("")
    }

    pub fn step_dims(&self, s: u32) -> &[String] {
        self.spec.steps.get(s as usize).map(|s| s.spec.dims.as_slice()).unwrap_or(&[])
    }

    /// Total size of the tables' files (for `bpsc show`).
    pub fn bytes(&self) -> u64 {
        let mut n = 0;
        let mut stack = vec![self.dir.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    n += Lazy::new(p).len().unwrap_or(0);
                }
            }
        }
        n
    }
}

/// Read line `index` of a rendered table (`G.jsonl`) through its offsets (`G.idx`).
pub fn read_task_line(table: &Path, index: u64) -> io::Result<String> {
    let idx = table.with_extension("idx");
    let mut xf = File::open(&idx)?;
    let len = xf.metadata()?.len();
    if (index + 1) * 8 > len {
        return Err(io::Error::new(io::ErrorKind::NotFound, format!("{} has {} tasks; no task {index}", table.display(), len / 8)));
    }
    xf.seek(SeekFrom::Start(index * 8))?;
    let mut b = [0u8; 8];
    xf.read_exact(&mut b)?;
    let start = u64::from_le_bytes(b);
    let end = if (index + 2) * 8 <= len {
        xf.read_exact(&mut b)?;
        u64::from_le_bytes(b)
    } else {
        std::fs::metadata(table)?.len()
    };
    if end < start || end - start > (64 << 20) {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("{}: bad offsets for task {index}", idx.display())));
    }
    let mut f = File::open(table)?;
    f.seek(SeekFrom::Start(start))?;
    let mut buf = vec![0u8; (end - start) as usize];
    f.read_exact(&mut buf)?;
    String::from_utf8(buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// The job line of job `index` of `group` (what `bpsc wrap` runs).
pub fn read_task(submit: &Path, group: &str, index: u64) -> Result<String, String> {
    Tables::open(submit)?.line(group, index)
}
