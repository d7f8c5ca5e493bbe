//! Reading a campaign's submit directories into one history: every attempt of every run,
//! each job's latest state, the step graph and what each step asks for.
//!
//! Everything is read through the submit-directory contract: `bpsc status`'s collected
//! [`crate::status::Report`] per run (task tables, records and the engine's own state
//! merged, so a job's state is the one `bpsc status` gives), then the records once more for
//! the per-attempt facts status does not keep ([`records::for_each_record`]), the task
//! tables for the parents of every job ([`records::for_each_task`]) and one line per step
//! for its requested resources ([`tasks::read_task`]).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::backend::EState;
use crate::status::{self, Counts};
use crate::submitdir::records::{self, Record};
use crate::submitdir::{tasks, Meta, SubmitDir};

use super::model::Requested;

/// No host recorded.
pub const NO_HOST: u32 = u32::MAX;

/// One attempt (one provenance record), compactly: a million of them fit in ~60 MB.
#[derive(Clone, Debug)]
pub struct Attempt {
    pub run: u16,
    /// Index into [`History::jobs`].
    pub job: u32,
    pub attempt: u32,
    /// Epoch seconds.
    pub start: Option<f64>,
    pub end: Option<f64>,
    pub seconds: Option<f64>,
    pub exit_code: Option<i64>,
    pub signal: Option<i64>,
    pub rss_kib: Option<u64>,
    pub skipped: bool,
    pub succeeded: bool,
    /// Index into [`History::hosts`], or [`NO_HOST`].
    pub host: u32,
    /// Index into [`History::failed`] for a failed attempt.
    pub detail: Option<u32>,
}

/// What a failed attempt says beyond its numbers.
#[derive(Clone, Debug)]
pub struct FailDetail {
    pub data_id: serde_json::Value,
    pub log: Option<String>,
    pub error: Option<String>,
    pub start: Option<String>,
}

/// A job the engine says failed, with no record of a failed attempt (no record at all).
#[derive(Clone, Debug)]
pub struct EngineFailure {
    pub run: usize,
    pub job: u32,
    pub attempts: u32,
    pub exit_code: Option<i64>,
    pub signal: Option<i64>,
    pub host: Option<String>,
    pub log: Option<String>,
    pub error: Option<String>,
}

/// A job of the history (the same id in several runs is one job).
#[derive(Clone, Debug)]
pub struct Job {
    pub id: String,
    /// Index into [`History::labels`].
    pub label: u32,
    pub kind: &'static str,
    /// Its state in the latest run whose task tables hold it.
    pub state: EState,
    /// Data ID of its first quantum (compact JSON).
    pub data_id: Option<Box<str>>,
}

/// A step, cluster or inserted kind, as `bpsc status` labels jobs.
#[derive(Clone, Debug, Default)]
pub struct Label {
    pub name: String,
    pub kind: String,
    /// Steps of its quanta (a cluster has several).
    pub steps: Vec<String>,
    /// Its jobs are clusters (a `cluster` in the task table): several quanta per job.
    pub clustered: bool,
    pub requested: Requested,
}

/// One submit directory.
#[derive(Clone, Debug)]
pub struct Run {
    pub dir: PathBuf,
    pub meta: Meta,
    pub state: &'static str,
    pub counts: Counts,
}

/// Files per (direction, dataset): files, bytes, files without a size.
pub type FileTally = BTreeMap<(&'static str, String), (u64, u64, u64)>;

/// The whole history of a campaign.
#[derive(Debug, Default)]
pub struct History {
    pub campaign: String,
    pub runs: Vec<Run>,
    pub labels: Vec<Label>,
    pub jobs: Vec<Job>,
    pub attempts: Vec<Attempt>,
    pub failed: Vec<FailDetail>,
    pub engine_failures: Vec<EngineFailure>,
    pub hosts: Vec<String>,
    /// Label edges (parent, child), compute labels only.
    pub edges: HashSet<(u32, u32)>,
    pub software: HashMap<String, u64>,
    pub env_digests: HashMap<String, u64>,
    pub files: FileTally,
    pub unreadable: Vec<String>,
}

/// Put the directories in history order: each restart after the directory it restarted
/// (`restart.of`, followed back even when not named), the rest in the order given.
pub fn order_runs(dirs: &[PathBuf]) -> Result<Vec<(PathBuf, Meta)>, String> {
    let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let mut seen: HashSet<PathBuf> = HashSet::new();
    let mut all: Vec<(PathBuf, Meta)> = Vec::new();
    let mut queue: Vec<PathBuf> = dirs.to_vec();
    let mut i = 0;
    while i < queue.len() {
        let d = queue[i].clone();
        i += 1;
        if !seen.insert(canon(&d)) {
            continue;
        }
        let meta = SubmitDir::new(&d).read_meta()?;
        if let Some(of) = meta.restart.as_ref().map(|r| r.of.clone()) {
            // Follow the history back when the directory is still there.
            if of.join(crate::submitdir::META).is_file() && seen.len() + queue.len() < 10_000 {
                queue.push(of);
            }
        }
        all.push((d, meta));
    }
    if let Some((d, m)) = all.iter().find(|(_, m)| m.campaign != all[0].1.campaign) {
        return Err(format!(
            "{} is campaign `{}`, {} is campaign `{}`: a report shows one campaign",
            d.display(),
            m.campaign,
            all[0].0.display(),
            all[0].1.campaign
        ));
    }
    // Depth: how many of the given directories precede each one through `restart.of`.
    let keys: Vec<PathBuf> = all.iter().map(|(d, _)| canon(d)).collect();
    let parent: Vec<Option<usize>> =
        all.iter().map(|(_, m)| m.restart.as_ref().and_then(|r| keys.iter().position(|k| *k == canon(&r.of)))).collect();
    let depth = |mut i: usize| {
        let mut n = 0;
        while let Some(p) = parent[i] {
            n += 1;
            i = p;
            if n > all.len() {
                break;
            }
        }
        n
    };
    let mut order: Vec<usize> = (0..all.len()).collect();
    order.sort_by_key(|&i| (depth(i), i));
    let mut slots: Vec<Option<(PathBuf, Meta)>> = all.into_iter().map(Some).collect();
    Ok(order.into_iter().filter_map(|i| slots[i].take()).collect())
}

/// Epoch seconds of an RFC 3339 time.
pub fn epoch(s: &str) -> Option<f64> {
    s.parse::<jiff::Timestamp>().ok().map(|t| t.as_millisecond() as f64 / 1000.0)
}

/// Read the history of the given submit directories (and those they restarted).
pub fn collect(dirs: &[PathBuf]) -> Result<History, String> {
    let ordered = order_runs(dirs)?;
    let mut h = History { campaign: ordered.first().map(|(_, m)| m.campaign.clone()).unwrap_or_default(), ..Default::default() };
    let mut label_of: HashMap<(String, String), u32> = HashMap::new();
    let mut job_of: HashMap<String, u32> = HashMap::new();
    let mut host_of: HashMap<String, u32> = HashMap::new();
    for (run_ix, (dir, _)) in ordered.iter().enumerate() {
        // bpsc status's view and every record, read at the same time (two passes over the
        // same files: on two cores this halves the wait for a million records).
        let run_u16 = run_ix.min(u16::MAX as usize) as u16;
        let (st, (pending, notes)) = std::thread::scope(|scope| {
            let status = scope.spawn(|| status::collect(dir));
            let pass = read_attempts(dir, run_u16, &mut h, &mut host_of);
            (status.join().unwrap_or_else(|_| Err("bpsc status panicked".to_string())), pass)
        });
        let st = st?;
        let _ = notes; // status lists unreadable records too
        let prefix = |s: &str| if ordered.len() > 1 { format!("{}: {s}", dir.display()) } else { s.to_string() };
        h.unreadable.extend(st.unreadable.iter().map(|s| prefix(s)));
        // Labels of this run -> history labels.
        let lmap: Vec<u32> = st
            .tables
            .labels
            .iter()
            .map(|(name, kind)| {
                *label_of.entry((name.clone(), kind.clone())).or_insert_with(|| {
                    h.labels.push(Label { name: name.clone(), kind: kind.clone(), ..Default::default() });
                    (h.labels.len() - 1) as u32
                })
            })
            .collect();
        // Jobs: the latest run holding a job decides its state.
        let mut gj: Vec<u32> = Vec::with_capacity(st.tables.jobs.len());
        for (j, info) in st.tables.jobs.iter().enumerate() {
            let state = st.jobs[j].state.unwrap_or(EState::Pending);
            let label = lmap[info.label as usize];
            let g = match job_of.get(info.id.as_str()) {
                Some(&g) => {
                    let job = &mut h.jobs[g as usize];
                    job.state = state;
                    job.label = label;
                    g
                }
                None => {
                    h.jobs.push(Job { id: info.id.clone(), label, kind: info.kind, state, data_id: info.data_id.clone() });
                    let g = (h.jobs.len() - 1) as u32;
                    job_of.insert(info.id.clone(), g);
                    g
                }
            };
            gj.push(g);
        }
        // The step graph and the steps of each label, from the parents in the task tables.
        graph_of_run(dir, &st, &lmap, &mut h);
        // What each label asks for: the first job of each label (the latest run's).
        requested_of_run(dir, &st, &lmap, &mut h);
        // Every attempt, now that the jobs are known.
        let mut has_record = vec![false; st.tables.jobs.len()];
        for (job_id, mut a) in pending {
            let Some(&j) = st.tables.by_id.get(&*job_id) else { continue };
            has_record[j as usize] = true;
            a.job = gj[j as usize];
            if let Some(d) = a.detail {
                let fd = &mut h.failed[d as usize];
                if fd.data_id.is_null() {
                    fd.data_id = st.tables.jobs[j as usize].data_value();
                }
            }
            h.attempts.push(a);
        }
        for (j, js) in st.jobs.iter().enumerate() {
            if js.state == Some(EState::Failed) && !has_record[j] {
                h.engine_failures.push(EngineFailure {
                    run: run_ix,
                    job: gj[j],
                    attempts: js.attempts,
                    exit_code: js.exit_code,
                    signal: js.signal,
                    host: js.host.clone(),
                    log: js.log.clone(),
                    error: js.error.clone(),
                });
            }
        }
        h.runs.push(Run { dir: dir.clone(), meta: st.meta.clone(), state: st.state_word(), counts: st.totals });
    }
    Ok(h)
}

/// Every record of a directory, with its job id (mapped to a job once the task tables are
/// read): hosts, software, environments and files are tallied into `h` as they come.
fn read_attempts(dir: &Path, run: u16, h: &mut History, host_of: &mut HashMap<String, u32>) -> (Vec<(Box<str>, Attempt)>, Vec<String>) {
    let mut out: Vec<(Box<str>, Attempt)> = Vec::new();
    let notes = records::for_each_record(dir, |r: Record, raw: &str| {
        let host = match &r.host {
            Some(name) => *host_of.entry(name.clone()).or_insert_with(|| {
                h.hosts.push(name.clone());
                (h.hosts.len() - 1) as u32
            }),
            None => NO_HOST,
        };
        let succeeded = r.succeeded();
        if !r.skipped {
            if let Some(s) = &r.software {
                *h.software.entry(s.clone()).or_default() += 1;
            }
            if let Some(s) = &r.env_digest {
                *h.env_digests.entry(s.clone()).or_default() += 1;
            }
        }
        if succeeded {
            tally_files(raw, &mut h.files);
        }
        let detail = if !succeeded && !r.skipped {
            // The quantum that failed (null: the job's first, filled in from the tables).
            let q = r.quanta.iter().find(|q| !q.succeeded()).or(r.quanta.first());
            let data_id = q.map(|q| q.data_id.clone()).unwrap_or_default();
            h.failed.push(FailDetail {
                data_id,
                log: r.log.err.clone().or(r.log.out.clone()),
                error: r.error.clone(),
                start: r.start.clone(),
            });
            Some((h.failed.len() - 1) as u32)
        } else {
            None
        };
        let a = Attempt {
            run,
            job: 0,
            attempt: r.attempt,
            start: r.start.as_deref().and_then(epoch),
            end: r.end.as_deref().and_then(epoch),
            seconds: r.seconds,
            exit_code: r.exit_code,
            signal: r.signal,
            rss_kib: r.peak_rss_kib.and_then(|k| u64::try_from(k).ok()),
            skipped: r.skipped,
            succeeded,
            host,
            detail,
        };
        out.push((r.job_id.into_boxed_str(), a));
    });
    (out, notes)
}

/// Inputs and outputs of a succeeded attempt: `inputs[]` / `outputs[]` of its record
/// (dataset, size); removals (`removed`) are not files written.
fn tally_files(raw: &str, files: &mut FileTally) {
    #[derive(serde::Deserialize, Default)]
    #[serde(default)]
    struct F {
        dataset: Option<String>,
        size: Option<u64>,
        removed: Option<bool>,
    }
    #[derive(serde::Deserialize, Default)]
    #[serde(default)]
    struct Io {
        inputs: Vec<F>,
        outputs: Vec<F>,
    }
    let Ok(io) = serde_json::from_str::<Io>(raw) else { return };
    for (dir, list) in [("in", io.inputs), ("out", io.outputs)] {
        for f in list {
            if f.removed.is_some() {
                continue;
            }
            let e = files.entry((dir, f.dataset.unwrap_or_else(|| "(no dataset)".into()))).or_default();
            e.0 += 1;
            match f.size {
                Some(s) => e.1 += s,
                None => e.2 += 1,
            }
        }
    }
}

/// Label edges of one run: a compute job's parents' labels, through join jobs (no-op
/// barriers) and inserted jobs; and the steps of each label's quanta.
fn graph_of_run(dir: &Path, st: &status::Report, lmap: &[u32], h: &mut History) {
    let n = st.tables.jobs.len();
    // For joins: their parents (job indices), resolved after the pass.
    let mut join_parents: HashMap<u32, Vec<u32>> = HashMap::new();
    let mut via_join: Vec<(u32, u32)> = Vec::new(); // (join job, child label)
    let mut steps: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    let mut clustered: HashSet<u32> = HashSet::new();
    let compute = |j: u32| st.tables.jobs[j as usize].kind == "compute";
    let mut any_parents = false;
    let notes = records::for_each_task(dir, |_, _, line| {
        any_parents |= !line.parents.is_empty();
        let Some(&c) = st.tables.by_id.get(&line.id) else { return };
        let info = &st.tables.jobs[c as usize];
        let cl = lmap[info.label as usize];
        if info.kind == "compute" {
            if line.cluster.is_some() || line.quanta.len() > 1 {
                clustered.insert(cl);
            }
            let set = steps.entry(cl).or_default();
            for q in &line.quanta {
                if !set.contains(&q.step) {
                    set.push(q.step.clone());
                }
            }
        }
        for p in &line.parents {
            let Some(&p) = st.tables.by_id.get(p) else { continue };
            let pk = st.tables.jobs[p as usize].kind;
            if info.kind == "join" {
                join_parents.entry(c).or_default().push(p);
            } else if pk == "join" && info.kind == "compute" {
                via_join.push((p, cl));
            } else if pk == "compute" && info.kind == "compute" {
                let pl = lmap[st.tables.jobs[p as usize].label as usize];
                if pl != cl {
                    h.edges.insert((pl, cl));
                }
            }
        }
    });
    let _ = notes; // status listed unreadable task lines
                   // Labels feeding each join, through nested joins.
    let mut memo: HashMap<u32, Vec<u32>> = HashMap::new();
    fn feeders(
        j: u32,
        jp: &HashMap<u32, Vec<u32>>,
        memo: &mut HashMap<u32, Vec<u32>>,
        label: &dyn Fn(u32) -> Option<u32>,
        depth: usize,
    ) -> Vec<u32> {
        if let Some(v) = memo.get(&j) {
            return v.clone();
        }
        let mut out: Vec<u32> = Vec::new();
        if depth < 64 {
            for &p in jp.get(&j).map(|v| v.as_slice()).unwrap_or(&[]) {
                match label(p) {
                    Some(l) => out.push(l),
                    None if jp.contains_key(&p) => out.extend(feeders(p, jp, memo, label, depth + 1)),
                    None => {}
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        memo.insert(j, out.clone());
        out
    }
    let label = |p: u32| compute(p).then(|| lmap[st.tables.jobs[p as usize].label as usize]);
    for (j, cl) in via_join {
        for pl in feeders(j, &join_parents, &mut memo, &label, 0) {
            if pl != cl {
                h.edges.insert((pl, cl));
            }
        }
    }
    for l in clustered {
        h.labels[l as usize].clustered = true;
    }
    if !any_parents {
        // The tables keep no parents (every engine but Slurm): the compiler's step graph,
        // drawn between the labels that hold the steps.
        let mut label_of_step: HashMap<&str, u32> = HashMap::new();
        for (l, set) in &steps {
            for s in set {
                label_of_step.entry(s.as_str()).or_insert(*l);
            }
        }
        if let Ok(t) = crate::submitdir::tasks::Tables::open(dir) {
            for [a, b] in &t.spec.step_edges {
                if let (Some(&la), Some(&lb)) = (label_of_step.get(a.as_str()), label_of_step.get(b.as_str())) {
                    if la != lb {
                        h.edges.insert((la, lb));
                    }
                }
            }
        }
    }
    for (l, set) in steps {
        let lab = &mut h.labels[l as usize];
        for s in set {
            if !lab.steps.contains(&s) {
                lab.steps.push(s);
            }
        }
    }
    let _ = n;
}

/// The `resources` of the first job of each compute label (the latest run wins).
fn requested_of_run(dir: &Path, st: &status::Report, lmap: &[u32], h: &mut History) {
    #[derive(serde::Deserialize, Default)]
    #[serde(default)]
    struct Line {
        resources: Option<Res>,
    }
    #[derive(serde::Deserialize, Default)]
    #[serde(default)]
    struct Res {
        memory: Option<u64>,
        walltime: Option<u64>,
        cpus: Option<u64>,
        retries: Option<u64>,
        memory_growth: Option<f64>,
    }
    let mut first: HashMap<u32, (String, u64)> = HashMap::new();
    let mut groups: Vec<(&String, &Vec<u32>)> = st.tables.by_group.iter().collect();
    groups.sort();
    for (g, jobs) in groups {
        for &j in jobs {
            let info = &st.tables.jobs[j as usize];
            if info.kind == "compute" {
                first.entry(lmap[info.label as usize]).or_insert_with(|| (g.clone(), info.index));
            }
        }
    }
    for (l, (g, i)) in first {
        let Ok(text) = tasks::read_task(dir, &g, i) else { continue };
        let Ok(line) = serde_json::from_str::<Line>(&text) else { continue };
        if let Some(r) = line.resources {
            h.labels[l as usize].requested = Requested {
                memory_bytes: r.memory,
                walltime_seconds: r.walltime,
                cpus: r.cpus,
                retries: r.retries,
                memory_growth: r.memory_growth,
            };
        }
    }
}
