//! From the checker's resolved settings to the IR's typed ones, and the job settings of
//! every job by the one rule of [`crate::ir::settings`].

use std::collections::HashMap;

use crate::coverage::hash::FastMap;

use crate::check::model::{self as cm, Software as CSoftware, Value};
use crate::check::resolve::{self, ScopeKind};
use crate::ir::adjacency::{csr_children, csr_parents, row};
use crate::ir::{self, GrowthOn, Ir, JobKind, JobSettings, OnFailure, Resources, SetAt, Software, StepSettings, Unexpected};

/// A checker template as an IR template (locations dropped).
pub fn template(t: &cm::Template) -> ir::Template {
    ir::Template {
        text: t.text.clone(),
        parts: t
            .parts
            .iter()
            .map(|p| match p {
                cm::Part::Lit(l) => ir::Part::Lit(l.clone()),
                cm::Part::Ph { name, .. } => ir::Part::Ph(name.clone()),
            })
            .collect(),
    }
}

pub fn persist(p: cm::Persist) -> ir::Persist {
    match p {
        cm::Persist::Archive => ir::Persist::Archive,
        cm::Persist::Scratch => ir::Persist::Scratch,
        cm::Persist::Discard => ir::Persist::Discard,
    }
}

pub fn stage(s: cm::Stage) -> ir::Stage {
    match s {
        cm::Stage::PreJob => ir::Stage::PreJob,
        cm::Stage::InJob => ir::Stage::InJob,
        cm::Stage::None => ir::Stage::None,
    }
}

fn scope_rank(s: &ScopeKind) -> u8 {
    match s {
        ScopeKind::Builtin => 0,
        ScopeKind::Defaults => 1,
        ScopeKind::Site => 2,
        ScopeKind::Pipeline => 3,
        ScopeKind::Campaign => 4,
        ScopeKind::Step => 5,
        ScopeKind::Override => 6,
        ScopeKind::CommandLine => 7,
    }
}

/// The typed settings of a step and where its non-default values were written.  `passed`
/// holds the values of the submitting shell's variables captured at compile time (the
/// `pass_env` names found there become part of the job's environment; `env { }` wins).
pub fn step_settings(r: &resolve::StepSettings, passed: &std::collections::BTreeMap<String, String>) -> (StepSettings, Vec<SetAt>) {
    let d = StepSettings::default();
    let get = |k: &str| r.get(k);
    let text = |k: &str| get(k).and_then(|v| v.as_str()).filter(|s| !s.is_empty()).map(str::to_string);
    let names = |k: &str| match get(k) {
        Some(Value::Names(v)) | Some(Value::StrList(v)) => v.clone(),
        _ => Vec::new(),
    };
    let int = |k: &str| match get(k) {
        Some(Value::Int(i)) => Some(*i),
        _ => None,
    };
    // `partition` and `queue` are one setting under two names: the more specific scope
    // wins, `partition` on a tie.
    let partition = match (r.resolved("partition"), r.resolved("queue")) {
        (Some(p), Some(q)) if scope_rank(&q.origin.scope) > scope_rank(&p.origin.scope) => q.value.as_str(),
        (Some(p), _) => p.value.as_str(),
        (None, Some(q)) => q.value.as_str(),
        (None, None) => None,
    }
    .filter(|s| !s.is_empty())
    .map(str::to_string);
    let s = StepSettings {
        memory: get("memory").and_then(Value::as_u64).unwrap_or(d.memory),
        cpus: int("cpus").unwrap_or(d.cpus),
        disk: get("disk").and_then(Value::as_u64).unwrap_or(d.disk),
        walltime: get("walltime").and_then(Value::as_u64).unwrap_or(d.walltime),
        retries: int("retries").unwrap_or(d.retries),
        retry_unless_exit: match get("retry_unless_exit") {
            Some(Value::IntList(v)) => v.clone(),
            _ => d.retry_unless_exit.clone(),
        },
        memory_growth: match get("memory_growth") {
            Some(Value::Float(f)) => *f,
            _ => d.memory_growth,
        },
        priority: int("priority").unwrap_or(d.priority),
        on_failure: match get("on_failure").and_then(|v| v.as_str()) {
            Some("abort") => OnFailure::Abort,
            _ => OnFailure::Continue,
        },
        partition,
        account: text("account"),
        qos: text("qos"),
        hosts: names("hosts"),
        avoid_hosts: names("avoid_hosts"),
        software: match get("software") {
            Some(Value::Software(CSoftware::Container(c))) => Some(Software::Container(c.clone())),
            Some(Value::Software(CSoftware::Setup(s))) => Some(Software::Setup(s.clone())),
            _ => None,
        },
        env: {
            let mut env: Vec<(String, String)> = r
                .env
                .iter()
                .map(|(k, v)| (k.clone(), v.value.as_str().map(str::to_string).unwrap_or_else(|| v.value.to_string())))
                .collect();
            for name in r.pass_env() {
                if let (Some(v), false) = (passed.get(&name), env.iter().any(|(k, _)| *k == name)) {
                    env.push((name, v.clone()));
                }
            }
            env.sort();
            env
        },
        pass_env: r.pass_env(),
        max_jobs: int("max_running"),
        memory_growth_on: match get("memory_growth_on").and_then(|v| v.as_str()) {
            Some("any") => GrowthOn::Any,
            _ => GrowthOn::Oom,
        },
        max_memory: get("max_memory").and_then(Value::as_u64),
        unexpected: match get("unexpected").and_then(|v| v.as_str()) {
            Some("keep") => Unexpected::Keep,
            _ => Unexpected::Discard,
        },
    };
    let mut at: Vec<SetAt> = r
        .values
        .iter()
        .filter(|(_, v)| v.origin.scope != ScopeKind::Builtin)
        .map(|(k, v)| SetAt { key: (*k).to_string(), label: v.origin.label.clone(), loc: v.origin.loc })
        .collect();
    at.extend(r.env.iter().map(|(k, v)| SetAt { key: format!("env.{k}"), label: v.origin.label.clone(), loc: v.origin.loc }));
    (s, at)
}

/// How far [`governing_steps`] looks through joins and stage-in jobs for a compute job.
const SEARCH_LIMIT: usize = 4096;

/// The governing step of every job (see `crate::ir::settings`).
pub fn governing_steps(ir: &Ir) -> Vec<Option<u32>> {
    let n = ir.jobs.len();
    let children = csr_children(n, &ir.edges);
    let parents = csr_parents(n, &ir.edges);
    let provenance_step = {
        let shared = |s: &ir::Step| s.site.as_deref().and_then(|x| ir.site(x)).is_some_and(|x| x.shared_fs);
        ir.steps.iter().position(shared).or(if ir.steps.is_empty() { None } else { Some(0) }).map(|s| s as u32)
    };
    let first_step = |j: u32| -> Option<u32> { ir.members.get(ir.jobs[j as usize].lo as usize).map(|m| m.step) };
    let mut out: Vec<Option<u32>> = vec![None; n];
    // Compute jobs first, then the jobs that serve them.
    for (j, job) in ir.jobs.iter().enumerate() {
        if job.kind == JobKind::Compute {
            out[j] = first_step(j as u32);
        }
    }
    for (j, job) in ir.jobs.iter().enumerate() {
        out[j] = match job.kind {
            JobKind::Compute => continue,
            JobKind::StageOut | JobKind::Cleanup => out[job.owner as usize],
            JobKind::Provenance => provenance_step,
            JobKind::StageIn | JobKind::Join => {
                let mut found = None;
                'search: for adj in [&children, &parents] {
                    let mut queue = std::collections::VecDeque::from([j as u32]);
                    let mut seen = 0;
                    while let Some(x) = queue.pop_front() {
                        seen += 1;
                        if seen > SEARCH_LIMIT {
                            break;
                        }
                        for &y in row(adj, x) {
                            match ir.jobs[y as usize].kind {
                                JobKind::Compute => {
                                    found = out[y as usize];
                                    break 'search;
                                }
                                JobKind::Join | JobKind::StageIn => queue.push_back(y),
                                _ => {}
                            }
                        }
                    }
                }
                found
            }
        };
    }
    out
}

/// Resources of a job by its kind (see `crate::ir::settings`).
fn resources(ir: &Ir, j: u32) -> (Resources, Option<i64>) {
    let job = &ir.jobs[j as usize];
    if job.kind != JobKind::Compute {
        return (Resources::inserted(), None);
    }
    let mut r: Option<Resources> = None;
    let mut walltime = 0u64;
    // A cluster's own max_running throttles its jobs, and so does each member step's.
    let mut throttle: Option<i64> =
        (job.owner != ir::NO_CLUSTER).then(|| ir.clusters[job.owner as usize].max_running.map(i64::from)).flatten();
    let mut last = u32::MAX;
    let mut step_res = Resources::inserted();
    for m in ir.job_members(j) {
        if m.step != last {
            let st = &ir.steps[m.step as usize].settings;
            step_res = Resources::of_step(st);
            if let Some(t) = st.max_jobs {
                throttle = Some(throttle.map_or(t, |x: i64| x.min(t)));
            }
            last = m.step;
        }
        walltime = walltime.saturating_add(step_res.walltime);
        match &mut r {
            None => r = Some(step_res.clone()),
            Some(a) => a.combine(&step_res),
        }
    }
    let mut r = r.unwrap_or_else(Resources::inserted);
    r.walltime = walltime.max(1);
    r.retry_unless_exit.sort_unstable();
    (r, throttle)
}

/// Fill [`Ir::job_settings`] and every job's index into it.
pub fn assign(ir: &mut Ir) {
    let gov = governing_steps(ir);
    let mut table: Vec<JobSettings> = Vec::new();
    let mut index: HashMap<JobKey, u32> = HashMap::new();
    let mut idx = vec![0u32; ir.jobs.len()];
    // A job's settings follow from its kind, governing step, owner and, for a compute job
    // of one quantum, that quantum's step: remember the index per such shape, so that the
    // million unclustered jobs of a campaign skip building and hashing their full key.
    // Clustered jobs (several quanta) always take the full path.
    let mut by_shape: FastMap<(u8, u32, u32, u32), u32> = FastMap::default();
    for j in 0..ir.jobs.len() {
        let kind = ir.jobs[j].kind;
        let members = ir.job_members(j as u32);
        let shape = match (kind, members) {
            (JobKind::Compute, [m]) => Some((kind as u8, gov[j].unwrap_or(u32::MAX), ir.jobs[j].owner, m.step)),
            (JobKind::Compute, _) => None,
            _ => Some((kind as u8, gov[j].unwrap_or(u32::MAX), u32::MAX, u32::MAX)),
        };
        if let Some(i) = shape.and_then(|k| by_shape.get(&k)) {
            idx[j] = *i;
            continue;
        }
        let (resources, max_jobs) = resources(ir, j as u32);
        let key = JobKey { kind, step: gov[j], res: ResKey::of(&resources), max_jobs };
        let i = *index.entry(key).or_insert_with(|| {
            let st = gov[j].map(|s| &ir.steps[s as usize]);
            let site = st.and_then(|s| s.site.clone());
            let ss = st.map(|s| &s.settings);
            let site_cap = site.as_deref().and_then(|n| ir.site(n)).and_then(|s| s.max_memory);
            let step_cap = if kind == JobKind::Compute { ss.and_then(|s| s.max_memory) } else { None };
            let memory_cap = match (site_cap, step_cap) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            table.push(JobSettings {
                kind,
                step: gov[j],
                site,
                resources,
                memory_cap,
                partition: ss.and_then(|s| s.partition.clone()),
                account: ss.and_then(|s| s.account.clone()),
                qos: ss.and_then(|s| s.qos.clone()),
                hosts: ss.map(|s| s.hosts.clone()).unwrap_or_default(),
                avoid_hosts: ss.map(|s| s.avoid_hosts.clone()).unwrap_or_default(),
                software: if kind == JobKind::Compute { ss.and_then(|s| s.software.clone()) } else { None },
                env: ss.map(|s| s.env.clone()).unwrap_or_default(),
                max_jobs,
                unexpected: ss.map(|s| s.unexpected).unwrap_or_default(),
            });
            table.len() as u32 - 1
        });
        if let Some(k) = shape {
            by_shape.insert(k, i);
        }
        idx[j] = i;
    }
    for (job, i) in ir.jobs.iter_mut().zip(idx) {
        job.settings = i;
    }
    ir.job_settings = table;
}

/// What makes two jobs' settings equal: kind, governing step, resources, throttle.
#[derive(Hash, PartialEq, Eq)]
struct JobKey {
    kind: JobKind,
    step: Option<u32>,
    res: ResKey,
    max_jobs: Option<i64>,
}

#[derive(Hash, PartialEq, Eq)]
struct ResKey {
    memory: u64,
    cpus: i64,
    disk: u64,
    walltime: u64,
    retries: i64,
    growth_bits: u64,
    growth_any: bool,
    no_retry: Vec<i64>,
    abort: bool,
}

impl ResKey {
    fn of(r: &Resources) -> ResKey {
        ResKey {
            memory: r.memory,
            cpus: r.cpus,
            disk: r.disk,
            walltime: r.walltime,
            retries: r.retries,
            growth_bits: r.memory_growth.to_bits(),
            growth_any: r.memory_growth_on == GrowthOn::Any,
            no_retry: r.retry_unless_exit.clone(),
            abort: r.on_failure == OnFailure::Abort,
        }
    }
}
