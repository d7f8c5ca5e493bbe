//! Slurm backend: one sbatch job-array script per task group (and resource class), and a
//! `submit.sh` that submits the arrays held, in topological order, wires their dependencies
//! (`aftercorr`, `afterok`, `afterany`, per-task updates), then releases them all.
//!
//! ```text
//! SUBMIT/slurm/
//!   GROUP.sbatch, GROUP.2.sbatch   array scripts (one per group and resource class)
//!   bpsc-job.sh                    shell functions every script sources: attempts, retries
//!                                  (in place, or requeue with grown --mem), skip, abort, notify
//!   fanin.sbatch                   no-op job for dependency lists longer than Slurm takes
//!   submit.sh, cancel.sh           submission (records ids in slurm/jobids) and cancellation
//!   arrays.tsv                     every submission: variable, group, script, offset, tasks
//! ```
//!
//! How jobs become arrays (see [`plan`]): jobs of one group and resource class are put in
//! *buckets* by the set of buckets their parents are in (bucket ids are a topological order);
//! a bucket becomes one or more *segments*, each one sbatch array whose task K runs job
//! OFFSET+K of the group's task table.  A segment's offset is chosen, when possible, so that
//! its task ids equal those of its single parent in a parent segment: that dependency is then
//! `aftercorr`.  Dependencies shared by every task of a segment go on the sbatch line;
//! others are set per task with `scontrol update JobId=ARRAY_[tasks] Dependency=...` while the
//! arrays are held.  The mapping and the limits are documented in backends/slurm/README.md.

use std::collections::{BTreeMap, HashMap};

use crate::coverage::hash::FastMap;
use std::io::{self, Write};

use crate::backend::templates::{TemplateSet, Templates};
use crate::backend::{Emitted, Groups, Output};
use crate::diag::Diagnostic;
use crate::ir::adjacency::topo_jobs;
use crate::ir::quote::{expand_template, quote_in, Quote};
use crate::ir::{Ir, JobKind, JobSettings, OnFailure, Software};

/// Slurm's default `MaxJobCount`: the default of a site's `max_submit`.
pub const DEFAULT_MAX_SUBMIT: i64 = 10_000;
/// Slurm's default `MaxArraySize`: array task ids go from 0 to 1000.
pub const DEFAULT_MAX_ARRAY_SIZE: i64 = 1001;
/// Slurm rejects an `--array` specification longer than 4096 characters.
pub const ARRAY_SPEC_LIMIT: usize = 4000;
/// A `--dependency` string must stay under 128 KiB (the kernel's limit on one argument and
/// Slurm's limit on `SLURM_JOB_DEPENDENCY`, both 131072 bytes); longer lists go through
/// fan-in jobs.  The estimate counts every job id as [`ID_WIDTH`] digits.
pub const DEPENDENCY_LIMIT: usize = 100_000;
const ID_WIDTH: usize = 10;
/// The exit status of `bpsc wrap` when its payload was killed for memory (the wrapper's
/// `WRAP_OOM`), beside the job's own cgroup OOM counter that the job script reads itself.
pub const EXIT_OOM: i32 = crate::submitdir::exit::WRAP_OOM;
/// Task ids per `scontrol update JobId=A_[...]` call.
const UPDATE_SPEC_LIMIT: usize = 1000;

// ------------------------------------------------------------------ resource classes

/// Everything an sbatch script fixes: jobs of a group with equal classes share a script.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Class {
    group: u32,
    kind: JobKind,
    /// Step name, cluster name or inserted kind: `{step}` of notifications, comments.
    label: String,
    site: Option<String>,
    partition: Option<String>,
    account: Option<String>,
    qos: Option<String>,
    walltime: u64,
    /// Memory (MiB) of attempt 1, 2, ...: one entry when retries run in place.
    mem_mb: Vec<u64>,
    cpus: i64,
    tmp_mb: u64,
    exclude: Vec<String>,
    nodelist: Option<String>,
    env: Vec<(String, String)>,
    /// (is a container, image or setup text)
    software: Option<(bool, String)>,
    retries: i64,
    no_retry: Vec<i64>,
    /// `memory_growth_on`: "oom" or "any".
    grow_on: &'static str,
    abort: bool,
    throttle: Option<i64>,
    /// `BPSC_SCRATCH` as shell text for a double-quoted context.
    scratch: Option<String>,
    max_array: u32,
}

/// The templates of the Slurm files.
pub const TEMPLATES: TemplateSet = TemplateSet {
    templates: &[
        ("job.sbatch", include_str!("../../../templates/slurm/job.sbatch.j2")),
        ("bpsc-job.sh", include_str!("../../../templates/slurm/bpsc-job.sh.j2")),
        ("fanin.sbatch", include_str!("../../../templates/slurm/fanin.sbatch.j2")),
        ("cancel.sh", include_str!("../../../templates/slurm/cancel.sh.j2")),
        ("submit-head.sh", include_str!("../../../templates/slurm/submit-head.sh.j2")),
        ("submit-tail.sh", include_str!("../../../templates/slurm/submit-tail.sh.j2")),
    ],
    filters: &[],
};

fn slurm_name_ok(s: &str, extra: &[u8]) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._:@+-".contains(&b) || extra.contains(&b))
}

fn env_name_ok(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_') && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

fn mib_ceil(bytes: f64) -> u64 {
    let m = (bytes / (1u64 << 20) as f64).ceil();
    if m.is_finite() && m >= 1.0 {
        m.min(u64::MAX as f64 / 2.0) as u64
    } else {
        1
    }
}

/// A container image as `apptainer exec` takes it.  apptainer-exec(1) reads an argument
/// without a scheme as a local SIF file or sandbox directory, so a registry reference
/// (`ghcr.io/lsst/scipipe:w_2024_48`) must be `docker://...`; a reference with a scheme
/// (`docker://`, `library://`, `oras://`, ...), a path (`/`, `./`, `../`) or a `.sif` file
/// stays as written.  The same rule as the HTCondor backend's `container_image`.
pub fn image_ref(image: &str) -> String {
    if image.contains("://") || image.starts_with('/') || image.starts_with("./") || image.starts_with("../") || image.ends_with(".sif") {
        image.to_string()
    } else {
        format!("docker://{image}")
    }
}

/// Single-quoted shell word.
fn sq(s: &str) -> String {
    let mut out = String::new();
    quote_in(s, Quote::None, &mut out);
    if out.is_empty() {
        out.push_str("''");
    }
    out
}

/// Text safe inside a `#` comment line.
fn comment(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// Expand a site `scratch` template for a double-quoted shell context:
/// `{user}` -> `${USER:-$(id -un)}`, `{campaign}`, `{site}`; `{{`/`}}` are braces.
fn scratch_shell(t: &str, campaign: &str, site: &str) -> String {
    expand_template(t, Quote::Double, |name, q, out| match name {
        "user" => {
            out.push_str(match q {
                Quote::Double => "${USER:-$(id -un)}",
                Quote::None => "\"${USER:-$(id -un)}\"",
                Quote::Single => "'\"${USER:-$(id -un)}\"'",
            });
            true
        }
        "campaign" => {
            quote_in(campaign, q, out);
            true
        }
        "site" => {
            quote_in(site, q, out);
            true
        }
        _ => false,
    })
}

fn class_of_job(ir: &Ir, g: &Groups, j: u32, js: &JobSettings) -> Result<Class, Diagnostic> {
    let job = &ir.jobs[j as usize];
    let group = g.group_of[j as usize];
    let step = js.step;
    let st = step.map(|s| &ir.steps[s as usize]);
    let r = &js.resources;
    let where_ = || match st {
        Some(s) => format!("step `{}`", s.name),
        None => format!("group `{}`", g.names[group as usize]),
    };
    // A value Slurm cannot carry: E801, at the step.
    let invalid = |msg: String| -> Diagnostic {
        let d = Diagnostic::new("E801", format!("slurm: {}: {msg}", where_()));
        match st.and_then(|s| s.loc) {
            Some(l) => d.at_loc(l, "in this step"),
            None => d,
        }
    };
    let label = match job.kind {
        JobKind::Compute if job.owner != u32::MAX => ir.clusters[job.owner as usize].name.clone(),
        JobKind::Compute => st.map(|s| s.name.clone()).unwrap_or_default(),
        k => k.as_str().to_string(),
    };
    let site = js.site.clone();
    let mut c = Class {
        group,
        kind: job.kind,
        label,
        site: site.clone(),
        partition: None,
        account: None,
        qos: None,
        // Set per class afterwards: the largest walltime of its jobs (a cluster job sums
        // its quanta's walltimes, so chunks of different sizes still share one array).
        walltime: 0,
        mem_mb: Vec::new(),
        cpus: r.cpus.max(1),
        tmp_mb: mib_ceil(r.disk as f64),
        exclude: Vec::new(),
        nodelist: None,
        env: Vec::new(),
        software: None,
        retries: r.retries.max(0),
        no_retry: r.retry_unless_exit.clone(),
        grow_on: r.memory_growth_on.as_str(),
        abort: r.on_failure == OnFailure::Abort,
        throttle: None,
        scratch: None,
        max_array: DEFAULT_MAX_ARRAY_SIZE as u32,
    };
    let attempts = if r.grows() { c.retries as usize + 1 } else { 1 };
    // The memory ladder: each growth asks for the next step (on an out-of-memory kill, or
    // on any failure with `memory_growth_on = any`), up to the memory cap (never below the
    // first request).
    let cap = js.memory_cap.map(|m| (m as f64).max(r.memory as f64));
    let mut mem = r.memory as f64;
    for _ in 0..attempts {
        c.mem_mb.push(mib_ceil(cap.map_or(mem, |m| mem.min(m))));
        mem *= r.memory_growth;
    }
    if let Some(s) = site.as_deref().and_then(|n| ir.sites.iter().find(|x| x.name == n)) {
        let m = s.max_array_size.unwrap_or(DEFAULT_MAX_ARRAY_SIZE).clamp(1, u32::MAX as i64);
        c.max_array = m as u32;
        c.scratch = s.scratch.as_deref().map(|t| scratch_shell(t, &ir.campaign, &s.name));
    }
    {
        c.partition = js.partition.clone();
        c.account = js.account.clone();
        c.qos = js.qos.clone();
        for (key, v) in [("partition", &c.partition), ("account", &c.account), ("qos", &c.qos)] {
            if let Some(v) = v {
                if !slurm_name_ok(v, b"") {
                    return Err(invalid(format!("{key} = {v:?} is not a name Slurm accepts (letters, digits, `._:@+-`)")));
                }
            }
        }
        let hosts = js.hosts.clone();
        if hosts.len() > 1 {
            return Err(invalid(format!(
                "hosts = [{}]: Slurm cannot express \"run on any one of these hosts\": --nodelist asks for all of them at once \
                 (a {}-node job)",
                hosts.join(", "),
                hosts.len(),
            ))
            .help(format!(
                "keep one host (e.g. --set {}.hosts=[\"{}\"]), or use avoid_hosts to exclude the nodes the jobs must not use",
                st_name(ir, step),
                hosts[0]
            )));
        }
        for h in hosts.iter().chain(js.avoid_hosts.iter()) {
            if !slurm_name_ok(h, b"[],") {
                return Err(invalid(format!("host {h:?} is not a Slurm node name or host list")));
            }
        }
        c.nodelist = hosts.into_iter().next();
        c.exclude = js.avoid_hosts.clone();
        c.exclude.sort();
        c.exclude.dedup();
        for (k, v) in &js.env {
            if !env_name_ok(k) {
                return Err(invalid(format!("env {k:?} is not a valid environment variable name")));
            }
            c.env.push((k.clone(), v.clone()));
        }
        c.software = match &js.software {
            Some(Software::Container(i)) => Some((true, i.clone())),
            Some(Software::Setup(s)) => Some((false, s.clone())),
            None => None,
        };
        if job.kind == JobKind::Compute {
            c.throttle = js.max_jobs.filter(|n| *n > 0);
        }
    }
    if job.kind != JobKind::Compute {
        // Transfers, removals and joins run the wrapper alone: no payload software.
        c.software = None;
    }
    Ok(c)
}

/// S2: one `submit.sh` reaches one Slurm controller, and Slurm dependencies hold only
/// inside one cluster (sbatch.1), so every job of a submission must run at sites of one
/// controller.  Sites are their own controller unless they name one (`controller`, language
/// 1.1): two sites with the same `controller` are partitions of one Slurm cluster.  Returns
/// the controller, or E801 naming the alternative.
pub fn controllers(ir: &Ir) -> Result<Option<String>, Diagnostic> {
    // controller -> (sites, steps), in step order.
    let mut by: Vec<(String, Vec<String>, Vec<String>)> = Vec::new();
    for st in &ir.steps {
        let Some(site) = st.site.as_deref() else { continue };
        let ctl = ir.site(site).map(|s| s.controller().to_string()).unwrap_or_else(|| site.to_string());
        let e = match by.iter_mut().position(|x| x.0 == ctl) {
            Some(i) => &mut by[i],
            None => {
                by.push((ctl, Vec::new(), Vec::new()));
                by.last_mut().expect("pushed")
            }
        };
        if !e.1.iter().any(|x| x == site) {
            e.1.push(site.to_string());
        }
        e.2.push(st.name.clone());
    }
    if by.len() <= 1 {
        return Ok(by.pop().map(|x| x.0));
    }
    let describe = |x: &(String, Vec<String>, Vec<String>)| {
        let sites = x.1.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", ");
        if x.1.len() == 1 && x.1[0] == x.0 {
            format!("site {sites}")
        } else {
            format!("site{} {sites} (controller `{}`)", if x.1.len() == 1 { "" } else { "s" }, x.0)
        }
    };
    let list: Vec<String> = by.iter().map(describe).collect();
    let mut d = Diagnostic::new(
        "E801",
        format!(
            "the slurm backend cannot express one submission to several Slurm clusters: the campaign's jobs run at {}; one submit.sh reaches one controller, and Slurm dependencies hold only inside one cluster, so the other site's sbatch calls would fail and roll the whole submission back",
            list.join(" and ")
        ),
    );
    // Point at the first step of the second controller, where its site is chosen.
    if let Some(st) = ir.steps.iter().find(|s| by[1].2.first() == Some(&s.name)) {
        let at = st.set_at.iter().find(|x| x.key == "site" || x.key == "sites");
        if let Some(loc) = at.and_then(|x| x.loc).or(st.loc) {
            d = d.at_loc(loc, format!("step `{}` runs at site `{}`", st.name, st.site.as_deref().unwrap_or("")));
        }
    }
    for x in &by {
        let mut steps = x.2.clone();
        let more = steps.len().saturating_sub(6);
        steps.truncate(6);
        d = d.note(format!(
            "{}: step{} {}{}",
            describe(x),
            if x.2.len() == 1 { "" } else { "s" },
            steps.join(", "),
            if more > 0 { format!(" and {more} more") } else { String::new() }
        ));
    }
    let first = &by[0].2;
    Err(d.help(format!(
        "compile one submission per site with `--steps` (e.g. `--steps {}`), submitting each at its site; or, if these sites are partitions of one Slurm cluster, give them the same `controller = \"NAME\"` (language 1.1)",
        first.join(",")
    )))
}

fn st_name(ir: &Ir, step: Option<u32>) -> String {
    step.map(|s| ir.steps[s as usize].name.clone()).unwrap_or_default()
}

// ------------------------------------------------------------------ plan: buckets, segments

/// One sbatch submission: an array of tasks of one group and class.
#[derive(Debug, Clone)]
struct Segment {
    class: u32,
    offset: i64,
    /// (task id, job), sorted by task id.
    tasks: Vec<(u32, u32)>,
}

struct Plan {
    segs: Vec<Segment>,
    seg_of: Vec<u32>,
    tid_of: Vec<u32>,
}

/// `0-3,7,9-12`: task ids (sorted) as ranges.
fn ranges(tids: impl Iterator<Item = u32>) -> Vec<(u32, u32)> {
    let mut out: Vec<(u32, u32)> = Vec::new();
    for t in tids {
        match out.last_mut() {
            Some((_, hi)) if hi.checked_add(1) == Some(t) => *hi = t,
            _ => out.push((t, t)),
        }
    }
    out
}

fn spec(r: &[(u32, u32)]) -> String {
    let mut s = String::new();
    for (i, (a, b)) in r.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        if a == b {
            s.push_str(&a.to_string());
        } else {
            s.push_str(&format!("{a}-{b}"));
        }
    }
    s
}

/// Split sorted tasks into pieces whose array specification stays within `limit`.
fn split_by_spec(tasks: Vec<(u32, u32)>, limit: usize) -> Vec<Vec<(u32, u32)>> {
    let mut out = Vec::new();
    let mut cur: Vec<(u32, u32)> = Vec::new();
    // Length of the spec without its last range, and the last range.
    let mut done = 0usize;
    let mut last: Option<(u32, u32)> = None;
    let range_len = |(a, b): (u32, u32)| if a == b { a.to_string().len() } else { a.to_string().len() + 1 + b.to_string().len() };
    for (t, j) in tasks {
        let (next_done, next_last) = match last {
            Some((a, b)) if b.checked_add(1) == Some(t) => (done, (a, t)),
            Some(r) => (done + range_len(r) + 1, (t, t)),
            None => (0, (t, t)),
        };
        if !cur.is_empty() && next_done + range_len(next_last) > limit {
            out.push(std::mem::take(&mut cur));
            done = 0;
            last = Some((t, t));
        } else {
            done = next_done;
            last = Some(next_last);
        }
        cur.push((t, j));
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// `cap`: the most tasks of one array (a wave of a campaign larger than `max_submit` must
/// hold at least one whole array).
fn plan(ir: &Ir, g: &Groups, class_of: &[u32], classes: &[Class], poff: &[u32], pin: &[u32], cap: usize) -> Plan {
    let n = ir.jobs.len();
    let mut bucket_of = vec![u32::MAX; n];
    let mut keys: FastMap<(u32, Vec<u32>), u32> = FastMap::default();
    let mut buckets: Vec<(Vec<u32>, Vec<u32>)> = Vec::new(); // (sig, jobs)
                                                             // One signature buffer, handed back after a lookup that finds its bucket (most jobs).
    let mut sig: Vec<u32> = Vec::new();
    for j in topo_jobs(ir) {
        if ir.jobs[j as usize].kind == JobKind::Provenance {
            continue;
        }
        sig.clear();
        sig.extend(
            pin[poff[j as usize] as usize..poff[j as usize + 1] as usize].iter().map(|&p| bucket_of[p as usize]).filter(|&b| b != u32::MAX),
        );
        sig.sort_unstable();
        sig.dedup();
        let key = (class_of[j as usize], std::mem::take(&mut sig));
        let b = match keys.get(&key) {
            Some(&b) => {
                sig = key.1;
                b
            }
            None => {
                let b = buckets.len() as u32;
                buckets.push((key.1.clone(), Vec::new()));
                keys.insert(key, b);
                b
            }
        };
        buckets[b as usize].1.push(j);
        bucket_of[j as usize] = b;
    }
    drop(keys);
    let mut p = Plan { segs: Vec::new(), seg_of: vec![u32::MAX; n], tid_of: vec![0; n] };
    for (sig, mut jobs) in buckets {
        jobs.sort_by_key(|&j| g.index_in_group[j as usize]);
        let class = class_of[jobs[0] as usize];
        let max = classes[class as usize].max_array;
        let k = |j: u32| g.index_in_group[j as usize] as i64;
        // Aligned with a parent segment: each job has exactly one parent in bucket `r`, and
        // within each parent segment, own index - parent task id is constant.
        let mut parts: Option<Vec<(u32, i64, Vec<(u32, u32)>)>> = None;
        // (A single job gains nothing: its one task is covered by a plain dependency.)
        let cands: &[u32] = if jobs.len() > 1 { &sig } else { &[] };
        'cand: for &r in cands {
            let mut ps: Vec<(u32, i64, Vec<(u32, u32)>)> = Vec::new();
            for &j in &jobs {
                let mut it = pin[poff[j as usize] as usize..poff[j as usize + 1] as usize].iter().filter(|&&q| bucket_of[q as usize] == r);
                let (Some(&q), None) = (it.next(), it.next()) else { continue 'cand };
                let (s, t) = (p.seg_of[q as usize], p.tid_of[q as usize]);
                if t >= max {
                    continue 'cand;
                }
                let off = k(j) - t as i64;
                match ps.iter_mut().find(|x| x.0 == s) {
                    Some(x) if x.1 == off => x.2.push((t, j)),
                    Some(_) => continue 'cand,
                    None => ps.push((s, off, vec![(t, j)])),
                }
            }
            for x in &mut ps {
                x.2.sort_unstable();
                if spec(&ranges(x.2.iter().map(|y| y.0))).len() > ARRAY_SPEC_LIMIT {
                    continue 'cand;
                }
            }
            parts = Some(ps);
            break;
        }
        let pieces: Vec<(i64, Vec<(u32, u32)>)> = match parts {
            Some(ps) => ps.into_iter().map(|(_, off, t)| (off, t)).collect(),
            None => {
                // Chunks of MaxArraySize by group index; task id = index mod MaxArraySize.
                let mut out: Vec<(i64, Vec<(u32, u32)>)> = Vec::new();
                for &j in &jobs {
                    let chunk = k(j) / max as i64;
                    let t = (k(j) - chunk * max as i64) as u32;
                    match out.last_mut() {
                        Some((off, v)) if *off == chunk * max as i64 => v.push((t, j)),
                        _ => out.push((chunk * max as i64, vec![(t, j)])),
                    }
                }
                out.into_iter().flat_map(|(off, v)| split_by_spec(v, ARRAY_SPEC_LIMIT).into_iter().map(move |v| (off, v))).collect()
            }
        };
        let pieces = pieces.into_iter().flat_map(|(off, t)| {
            let n = t.len().div_ceil(cap.max(1)).max(1);
            let each = t.len().div_ceil(n).max(1);
            t.chunks(each).map(|c| (off, c.to_vec())).collect::<Vec<_>>()
        });
        for (offset, tasks) in pieces {
            let s = p.segs.len() as u32;
            for &(t, j) in &tasks {
                p.seg_of[j as usize] = s;
                p.tid_of[j as usize] = t;
            }
            p.segs.push(Segment { class, offset, tasks });
        }
    }
    p
}

// ------------------------------------------------------------------ throttles

/// `max_running = N` over every array of a step (or cluster).  Slurm's `%N` throttles one
/// array, and a step is often several arrays (MaxArraySize chunks, resource classes,
/// dependency buckets), so bpsc splits N among them: with k arrays and k <= N, array i gets
/// `%n_i` with the n_i summing to at most N (no array gets more than its task count, the
/// rest goes to the others); with k > N, each array gets `%1` and array i also waits
/// (`afterany`) for array i - N, so at most N arrays (N lanes) run at once.  The bound holds
/// at every moment; the price is that a lane whose array waits for its parents lends its
/// share to nobody.
struct Throttles {
    /// Per segment: its `%n`.
    share: Vec<Option<i64>>,
    /// Per segment: the earlier segment of its lane it waits for.
    after: Vec<Option<u32>>,
}

fn throttles(p: &Plan, classes: &[Class]) -> Throttles {
    let mut t = Throttles { share: vec![None; p.segs.len()], after: vec![None; p.segs.len()] };
    // Segments by throttle scope (the step or cluster label), in submission order.
    let mut scopes: BTreeMap<&str, (i64, Vec<u32>)> = BTreeMap::new();
    for (i, seg) in p.segs.iter().enumerate() {
        let c = &classes[seg.class as usize];
        if let Some(n) = c.throttle {
            let e = scopes.entry(c.label.as_str()).or_insert((n, Vec::new()));
            e.0 = e.0.min(n);
            e.1.push(i as u32);
        }
    }
    for (_, (n, segs)) in scopes {
        let k = segs.len() as i64;
        if k > n {
            for (i, &s) in segs.iter().enumerate() {
                t.share[s as usize] = Some(1);
                if i as i64 >= n {
                    t.after[s as usize] = Some(segs[i - n as usize]);
                }
            }
            continue;
        }
        // Water-filling: equal shares, capped at each array's size, the rest shared again.
        let size: Vec<i64> = segs.iter().map(|&s| p.segs[s as usize].tasks.len() as i64).collect();
        let mut share = vec![0i64; segs.len()];
        let mut left = n;
        loop {
            let open: Vec<usize> = (0..segs.len()).filter(|&i| share[i] < size[i]).collect();
            if open.is_empty() || left <= 0 {
                break;
            }
            let each = (left / open.len() as i64).max(1);
            for i in open {
                if left == 0 {
                    break;
                }
                let add = each.min(size[i] - share[i]).min(left);
                share[i] += add;
                left -= add;
            }
        }
        for (i, &s) in segs.iter().enumerate() {
            t.share[s as usize] = Some(share[i].max(1));
        }
    }
    t
}

// ------------------------------------------------------------------ dependencies

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Corr,
    Ok,
    Any,
}

impl Kind {
    fn word(self) -> &'static str {
        match self {
            Kind::Corr => "aftercorr",
            Kind::Ok => "afterok",
            Kind::Any => "afterany",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Ref {
    Whole(u32),
    Task(u32, u32),
    Fanin(u32),
}

impl Ref {
    fn text(self, out: &mut String) {
        match self {
            // Pushed piece by piece: this runs for every dependency of a million-job campaign.
            Ref::Whole(s) => {
                out.push_str("${J");
                out.push_str(itoa::Buffer::new().format(s));
                out.push('}');
            }
            Ref::Task(s, t) => {
                out.push_str("${J");
                out.push_str(itoa::Buffer::new().format(s));
                out.push_str("}_");
                out.push_str(itoa::Buffer::new().format(t));
            }
            Ref::Fanin(f) => {
                out.push_str("${F");
                out.push_str(itoa::Buffer::new().format(f));
                out.push('}');
            }
        }
    }
    fn est(self) -> usize {
        match self {
            Ref::Whole(_) | Ref::Fanin(_) => ID_WIDTH + 1,
            Ref::Task(_, t) => ID_WIDTH + 2 + itoa::Buffer::new().format(t).len(),
        }
    }
}

/// A dependency: kind -> refs (AND of everything).
type Deps = BTreeMap<Kind, Vec<Ref>>;

fn deps_text(d: &Deps) -> String {
    let mut s = String::new();
    for (k, refs) in d {
        if refs.is_empty() {
            continue;
        }
        if !s.is_empty() {
            s.push(',');
        }
        s.push_str(k.word());
        for r in refs {
            s.push(':');
            r.text(&mut s);
        }
    }
    s
}

fn deps_est(d: &Deps) -> usize {
    d.iter().map(|(k, r)| k.word().len() + 1 + r.iter().map(|x| x.est()).sum::<usize>()).sum()
}

fn merge(into: &mut Deps, from: &Deps) {
    for (k, r) in from {
        let v = into.entry(*k).or_default();
        v.extend_from_slice(r);
        v.sort_unstable();
        v.dedup();
    }
}

/// Writes `submit.sh` lines: fan-in jobs for over-long dependency lists.
struct Emitter {
    w: Vec<u8>,
    fanins: u32,
    updates: u64,
}

impl Emitter {
    /// Route `d` through fan-in jobs until it fits [`DEPENDENCY_LIMIT`].  A fan-in waits for
    /// its share with the same kinds and is waited for with `via` (`afterok` for ordinary
    /// jobs: a failed `afterok` parent cancels the fan-in and so the child; `afterany` for the
    /// provenance job).  `aftercorr` refs stay: they are per task and short.
    fn fit(&mut self, mut d: Deps, placement: &str, via: Kind, label: &str) -> io::Result<Deps> {
        while deps_est(&d) > DEPENDENCY_LIMIT {
            let mut rest: Vec<(Kind, Ref)> = Vec::new();
            for k in [Kind::Ok, Kind::Any] {
                if let Some(v) = d.remove(&k) {
                    rest.extend(v.into_iter().map(|r| (k, r)));
                }
            }
            let mut out: Deps = d.clone();
            let mut chunk: Deps = Deps::new();
            let mut len = 0;
            let flush = |chunk: &mut Deps, out: &mut Deps, me: &mut Self| -> io::Result<()> {
                let f = me.fanins;
                me.fanins += 1;
                writeln!(me.w, "sub F{f} fanin:{label} {placement} --dependency=\"{}\" slurm/fanin.sbatch", deps_text(chunk))?;
                chunk.clear();
                out.entry(via).or_default().push(Ref::Fanin(f));
                Ok(())
            };
            for (k, r) in rest {
                if len + r.est() + 12 > DEPENDENCY_LIMIT / 2 && !chunk.is_empty() {
                    flush(&mut chunk, &mut out, self)?;
                    len = 0;
                }
                len += r.est() + 1;
                chunk.entry(k).or_default().push(r);
            }
            if !chunk.is_empty() {
                flush(&mut chunk, &mut out, self)?;
            }
            d = out;
        }
        Ok(d)
    }
}

// ------------------------------------------------------------------ writing

fn sbatch_directives(c: &Class, name: &str, group: &str) -> Vec<String> {
    let mut d = vec![
        format!("--job-name={name}"),
        format!("--output=logs/{group}/slurm-%A_%a.out"),
        "--open-mode=append".to_string(),
        "--requeue".to_string(),
        "--kill-on-invalid-dep=yes".to_string(),
    ];
    d.extend(placement_args(c));
    let t = c.walltime;
    d.push(format!("--time={}-{:02}:{:02}:{:02}", t / 86400, t % 86400 / 3600, t % 3600 / 60, t % 60));
    // The job script ends the attempt and requeues itself when the walltime is nearly over.
    d.push(format!("--signal=B:USR1@{}", signal_lead(t)));
    d.push(format!("--mem={}M", c.mem_mb.first().copied().unwrap_or(1)));
    d.push(format!("--cpus-per-task={}", c.cpus));
    d.push(format!("--tmp={}M", c.tmp_mb));
    if !c.exclude.is_empty() {
        d.push(format!("--exclude={}", c.exclude.join(",")));
    }
    if let Some(h) = &c.nodelist {
        d.push(format!("--nodelist={h}"));
    }
    d
}

/// Seconds before the time limit that Slurm sends SIGUSR1 to the job script: a tenth of the
/// walltime, between 90 s and 5 min, and never more than half the walltime.  slurmctld looks
/// at time limits only every 30 s (PERIODIC_TIMEOUT, later under load), so a lead of 30 s
/// can fall between two looks and the job is killed at its limit without the signal (seen on
/// the test cluster: a 1-minute job with `@30` cancelled "DUE TO TIME LIMIT"); 90 s leaves
/// room for two late looks.  sbatch.1: the signal may also come up to 60 s earlier.
fn signal_lead(walltime: u64) -> u64 {
    (walltime / 10).clamp(90, 300).min(walltime / 2).max(1)
}

fn placement_args(c: &Class) -> Vec<String> {
    let mut d = Vec::new();
    if let Some(p) = &c.partition {
        d.push(format!("--partition={p}"));
    }
    if let Some(a) = &c.account {
        d.push(format!("--account={a}"));
    }
    if let Some(q) = &c.qos {
        d.push(format!("--qos={q}"));
    }
    d
}

fn render(e: &Templates, name: &str, ctx: minijinja::Value) -> Result<String, Diagnostic> {
    e.render(name, ctx)
}

/// The notification command as shell text: `{campaign}` quoted, `{event}` and `{step}` from
/// `BPSC_EVENT` and `BPSC_STEP`; `{job}` and `{data_id}` are empty (the job script knows its
/// array task, not the bpsc job it runs).
fn notify_shell(cmd: &str, campaign: &str) -> String {
    crate::ir::quote::notify_shell(cmd, |name| {
        use crate::ir::quote::Fill;
        Some(match name {
            "campaign" => Fill::Text(campaign),
            "event" => Fill::Var("BPSC_EVENT"),
            "step" => Fill::Var("BPSC_STEP"),
            "job" | "data_id" => Fill::Text(""),
            _ => return None,
        })
    })
}

/// Write the Slurm submit directory.
pub fn write(ir: &Ir, out: &dyn Output) -> Result<Emitted, Diagnostic> {
    controllers(ir)?;
    let g = crate::backend::groups(ir);
    let n = ir.jobs.len();
    let (poff, pin) = ir.parents();

    // Classes, validated before anything is written.
    let mut classes: Vec<Class> = Vec::new();
    let mut class_ids: HashMap<Class, u32> = HashMap::new();
    let mut class_of = vec![0u32; n];
    let mut cache: FastMap<(u32, u32), u32> = FastMap::default();
    let mut walltime: Vec<u64> = Vec::new();
    for j in 0..n as u32 {
        let js = ir.settings_of(j);
        let wt = js.resources.walltime;
        let key = (g.group_of[j as usize], ir.jobs[j as usize].settings);
        let id = match cache.get(&key) {
            Some(&id) => id,
            None => {
                let c = class_of_job(ir, &g, j, js)?;
                let next = classes.len() as u32;
                let id = *class_ids.entry(c.clone()).or_insert(next);
                if id == next {
                    classes.push(c);
                    walltime.push(0);
                }
                cache.insert(key, id);
                id
            }
        };
        class_of[j as usize] = id;
        walltime[id as usize] = walltime[id as usize].max(wt);
    }
    for (c, w) in classes.iter_mut().zip(walltime) {
        c.walltime = w.max(60);
    }
    drop(cache);
    drop(class_ids);

    // The job script checks its parents' records (dependencies fire on any end): the tables
    // keep parents.
    let opts = crate::submitdir::tasks::TableOptions { parents: true, ..Default::default() };
    crate::backend::alongside_common(ir, out, &g, &opts, || {
        let e = Templates::new(&TEMPLATES)?;
        let version = env!("CARGO_PKG_VERSION");
        let campaign_c = comment(&ir.campaign);
        let mut camp_tok = crate::ir::naming::sanitize(&ir.campaign);
        camp_tok.truncate(48);

        // Scripts: one per class, named after the group (GROUP.sbatch, GROUP.2.sbatch, ...).
        let mut script_of: Vec<String> = Vec::with_capacity(classes.len());
        let mut per_group: HashMap<u32, u32> = HashMap::new();
        let mut count = vec![0usize; classes.len()];
        for &c in &class_of {
            count[c as usize] += 1;
        }
        let notify_on: Vec<String> = ir.notify.on.clone();
        for (ci, c) in classes.iter().enumerate() {
            let group = &g.names[c.group as usize];
            let nth = per_group.entry(c.group).or_insert(0);
            *nth += 1;
            let file = if *nth == 1 { format!("{group}.sbatch") } else { format!("{group}.{nth}.sbatch") };
            let name = format!("{camp_tok}.{group}");
            let mut exports: Vec<String> = Vec::new();
            if let Some(s) = &c.scratch {
                exports.push(format!("BPSC_SCRATCH=\"{s}\""));
            }
            if let Some((container, s)) = &c.software {
                exports.push(format!("BPSC_SOFTWARE={}", sq(&format!("{}:{s}", if *container { "container" } else { "setup" }))));
            }
            for (k, v) in &c.env {
                exports.push(format!("{k}={}", sq(v)));
            }
            let slow = if c.kind == JobKind::Compute && notify_on.iter().any(|e| e == "slow") && ir.notify.command.is_some() {
                ir.notify.slow_after.map(|s| s.to_string()).unwrap_or_default()
            } else {
                String::new()
            };
            let what = match c.kind {
                JobKind::Compute => {
                    let steps: Vec<&str> = ir
                        .steps
                        .iter()
                        .filter(|s| {
                            if c.label == s.name {
                                return true;
                            }
                            s.cluster.is_some_and(|k| ir.clusters[k as usize].name == c.label)
                        })
                        .map(|s| s.name.as_str())
                        .collect();
                    format!("{} compute jobs of {}", count[ci], steps.join(", "))
                }
                k => format!("{} {} jobs (inserted by bpsc)", count[ci], k.as_str()),
            };
            let ctx = minijinja::context! {
                version,
                group,
                class_n => *nth,
                campaign => campaign_c,
                what => comment(&what),
                directives => sbatch_directives(c, &name, group),
                label => sq(&c.label),
                retries => c.retries,
                no_retry => c.no_retry.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(" "),
                mem_mb => c.mem_mb.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(" "),
                grow_on => c.grow_on,
                on_failure => if c.abort { "abort" } else { "continue" },
                container => match &c.software { Some((true, i)) => sq(&image_ref(i)), _ => "''".to_string() },
                setup => match &c.software { Some((false, s)) => sq(s), _ => String::new() },
                slow_after => if slow.is_empty() { "''".to_string() } else { slow },
                final => if c.kind == JobKind::Provenance { 1 } else { 0 },
                exports,
            };
            out.write_exec(&format!("slurm/{file}"), render(&e, "job.sbatch", ctx)?.as_bytes())?;
            script_of.push(file);
        }
        let notify_command = ir.notify.command.as_deref().map(|c| notify_shell(c, &ir.campaign)).unwrap_or_default();
        out.write(
            "slurm/bpsc-job.sh",
            render(
                &e,
                "bpsc-job.sh",
                minijinja::context! {
                    version, campaign => campaign_c, notify_command, notify_on => notify_on.join(" "),
                    exit_skipped => crate::submitdir::exit::WRAP_SKIPPED, exit_oom => EXIT_OOM,
                },
            )?
            .as_bytes(),
        )?;
        out.write_exec(
            "slurm/fanin.sbatch",
            render(&e, "fanin.sbatch", minijinja::context! { version, name => format!("{camp_tok}.fanin") })?.as_bytes(),
        )?;
        out.write_exec("slurm/cancel.sh", render(&e, "cancel.sh", minijinja::context! { version, campaign => campaign_c })?.as_bytes())?;

        // The plan, then submit.sh (streamed: one line per array, fan-in and update group).
        // S3: at most `max_submit` jobs of the campaign in the controller at once (MaxJobCount,
        // MaxSubmitJobs; every array task counts).  A larger campaign is cut into waves: the first
        // is submitted by submit.sh, the others by its background feeder as the queue drains.
        let used_sites: std::collections::BTreeSet<&str> = ir.job_settings.iter().filter_map(|s| s.site.as_deref()).collect();
        let max_submit = ir
            .sites
            .iter()
            .filter(|s| used_sites.contains(s.name.as_str()))
            .filter_map(|s| s.max_submit)
            .min()
            .unwrap_or(DEFAULT_MAX_SUBMIT)
            .max(1) as usize;
        // Room in each wave for fan-in jobs written with an array.
        let cap = max_submit - (max_submit / 4).min(16);
        let wave_mode = n > max_submit;
        let p = plan(ir, &g, &class_of, &classes, &poff, &pin, if wave_mode { cap } else { usize::MAX });
        let th = throttles(&p, &classes);
        let max_prio = ir.jobs.iter().map(|j| j.priority as i64).max().unwrap_or(0);
        // The body is kept in memory (one line per array, fan-in and update group, not per job):
        // the head, written first, states its counts.
        let mut em = Emitter { w: Vec::with_capacity(1 << 16), fanins: 0, updates: 0 };
        // Waves: (body, jobs) each.
        let mut waves: Vec<(Vec<u8>, usize)> = Vec::new();
        let (mut wave_jobs, mut wave_fanins) = (0usize, 0u32);
        let mut arrays = out.create("slurm/arrays.tsv")?;
        writeln!(arrays, "# var\tgroup\tscript\toffset\tarray\tjobs\tfirst_job")?;
        // Ids are needed for the first job of each array and the provenance job only: computed
        // as needed, not for every job.
        for (si, seg) in p.segs.iter().enumerate() {
            let si = si as u32;
            if wave_mode && wave_jobs > 0 && wave_jobs + (em.fanins - wave_fanins) as usize + seg.tasks.len() > cap {
                waves.push((std::mem::take(&mut em.w), wave_jobs + (em.fanins - wave_fanins) as usize));
                wave_jobs = 0;
                wave_fanins = em.fanins;
            }
            wave_jobs += seg.tasks.len();
            let c = &classes[seg.class as usize];
            let group = &g.names[c.group as usize];
            // Parents of each task, by parent segment.
            let mut by_parent: BTreeMap<u32, Vec<(u32, Vec<u32>)>> = BTreeMap::new();
            // (parent segment, parent task) pairs of one task, sorted: one buffer for all tasks.
            let mut pairs: Vec<(u32, u32)> = Vec::new();
            for &(t, j) in &seg.tasks {
                pairs.clear();
                for &q in &pin[poff[j as usize] as usize..poff[j as usize + 1] as usize] {
                    let s = p.seg_of[q as usize];
                    if s != u32::MAX {
                        pairs.push((s, p.tid_of[q as usize]));
                    }
                }
                pairs.sort_unstable();
                pairs.dedup();
                for run in pairs.chunk_by(|a, b| a.0 == b.0) {
                    by_parent.entry(run[0].0).or_default().push((t, run.iter().map(|x| x.1).collect()));
                }
            }
            let mut base = Deps::new();
            let mut sparse: BTreeMap<u32, Deps> = BTreeMap::new();
            let mut check = false;
            for (r, list) in &by_parent {
                let rs = &p.segs[*r as usize];
                let kind = if classes[rs.class as usize].abort { Kind::Ok } else { Kind::Any };
                let covering = list.len() == seg.tasks.len();
                let common = covering && list.windows(2).all(|w| w[0].1 == w[1].1);
                let has = |t: u32| rs.tasks.binary_search_by_key(&t, |x| x.0).is_ok();
                if common {
                    let q = &list[0].1;
                    let whole = q.len() == rs.tasks.len();
                    let refs = if whole { vec![Ref::Whole(*r)] } else { q.iter().map(|&t| Ref::Task(*r, t)).collect() };
                    base.entry(kind).or_default().extend(refs);
                    check |= kind == Kind::Any;
                } else if covering && list.iter().all(|(t, v)| v.len() == 1 && v[0] == *t && has(*t)) {
                    base.entry(Kind::Corr).or_default().push(Ref::Whole(*r));
                } else {
                    for (t, v) in list {
                        sparse.entry(*t).or_default().entry(kind).or_default().extend(v.iter().map(|&x| Ref::Task(*r, x)));
                    }
                    check |= kind == Kind::Any;
                }
            }
            // In waves, a parent array may have ended and left the controller (MinJobAge) before
            // its child is submitted; Slurm then takes the dependency as satisfied, so the
            // wrapper checks the parents' records.
            check |= wave_mode && !by_parent.is_empty();
            if let Some(prev) = th.after[si as usize] {
                // A throttle lane: this array starts when an earlier array of the step has ended.
                base.entry(Kind::Any).or_default().push(Ref::Whole(prev));
            }
            let placement = placement_args(c).join(" ");
            let base = em.fit(base, &placement, Kind::Ok, group)?;
            let prio = seg.tasks.iter().map(|&(_, j)| ir.jobs[j as usize].priority as i64).max().unwrap_or(0);
            let nice = (max_prio - prio).clamp(0, 2_147_483_645);
            let mut line = format!("sub J{si} {group}");
            let r = ranges(seg.tasks.iter().map(|x| x.0));
            line.push_str(&format!(" --array={}", spec(&r)));
            if let Some(n) = th.share[si as usize] {
                line.push_str(&format!("%{n}"));
            }
            if nice > 0 {
                line.push_str(&format!(" --nice={nice}"));
            }
            if !base.is_empty() {
                line.push_str(&format!(" --dependency=\"{}\"", deps_text(&base)));
            }
            line.push_str(&format!(" slurm/{} {} {}", script_of[seg.class as usize], seg.offset, u8::from(check)));
            writeln!(em.w, "{line}")?;
            let first = seg.tasks.first().map(|&(_, j)| ir.job_id(j)).unwrap_or_default();
            writeln!(
                arrays,
                "J{si}\t{group}\t{}\t{}\t{}\t{}\t{first}",
                script_of[seg.class as usize],
                seg.offset,
                spec(&r),
                seg.tasks.len()
            )?;
            // Per-task dependencies: base + the task's own, tasks with equal strings together.
            if !sparse.is_empty() {
                let mut same: BTreeMap<String, Vec<u32>> = BTreeMap::new();
                let mut order: Vec<String> = Vec::new();
                for (t, mut d) in sparse {
                    merge(&mut d, &base);
                    let d = em.fit(d, &placement, Kind::Ok, group)?;
                    let text = deps_text(&d);
                    let e = same.entry(text.clone()).or_default();
                    if e.is_empty() {
                        order.push(text);
                    }
                    e.push(t);
                }
                for text in order {
                    let tids = &same[&text];
                    let mut cur: Vec<u32> = Vec::new();
                    let mut len = 0;
                    for &t in tids {
                        let add = t.to_string().len() + 1;
                        if len + add > UPDATE_SPEC_LIMIT && !cur.is_empty() {
                            writeln!(em.w, "dep \"${{J{si}}}_[{}]\" \"{text}\"", spec(&ranges(cur.drain(..))))?;
                            em.updates += 1;
                            len = 0;
                        }
                        len += add;
                        cur.push(t);
                    }
                    if !cur.is_empty() {
                        writeln!(em.w, "dep \"${{J{si}}}_[{}]\" \"{text}\"", spec(&ranges(cur.drain(..))))?;
                        em.updates += 1;
                    }
                }
            }
        }
        waves.push((std::mem::take(&mut em.w), wave_jobs + (em.fanins - wave_fanins) as usize));
        // The provenance job: after every other submission, whatever happened to it.  In waves,
        // the feeder submits it last, waiting for the campaign's jobs still in the queue.
        let mut prov_count = 0;
        let mut prov_fn = String::new();
        for (j, job) in ir.jobs.iter().enumerate() {
            if job.kind != JobKind::Provenance {
                continue;
            }
            let c = &classes[class_of[j] as usize];
            let group = &g.names[c.group as usize];
            let mut d = Deps::new();
            if !p.segs.is_empty() {
                d.insert(Kind::Any, (0..p.segs.len() as u32).map(Ref::Whole).collect());
            }
            let k = g.index_in_group[j];
            if waves.len() > 1 {
                prov_fn.push_str(&format!(
                    "  sub P{prov_count} provenance --array=0 ${{1:+--dependency=afterany:$1}} slurm/{} {k} 0\n",
                    script_of[class_of[j] as usize]
                ));
            } else {
                let d = em.fit(d, &placement_args(c).join(" "), Kind::Any, "provenance")?;
                let mut line = format!("sub P{prov_count} provenance --array=0");
                if !d.is_empty() {
                    line.push_str(&format!(" --dependency=\"{}\"", deps_text(&d)));
                }
                line.push_str(&format!(" slurm/{} {k} 0", script_of[class_of[j] as usize]));
                writeln!(em.w, "{line}")?;
            }
            writeln!(arrays, "P{prov_count}\t{group}\t{}\t{k}\t0\t1\t{}", script_of[class_of[j] as usize], ir.job_id(j as u32))?;
            prov_count += 1;
        }
        arrays.flush()?;
        let (fanins, updates) = (em.fanins, em.updates);
        if waves.len() == 1 {
            waves[0].0.extend_from_slice(&em.w);
        }

        // submit.sh = head + body + tail, copied through a buffer.  In waves, the body is one
        // function per wave.
        {
            let mut w = out.create_buffered("slurm/submit.sh", 1 << 20)?;
            let sizes: Vec<String> = waves.iter().map(|x| x.1.to_string()).collect();
            let ctx = minijinja::context! {
                version, campaign => campaign_c, jobs => n, arrays => p.segs.len() + prov_count, fanins, updates,
                waves => waves.len(), wave_sizes => sizes.join(" "), max_submit,
            };
            w.write_all(render(&e, "submit-head.sh", ctx.clone())?.as_bytes())?;
            if waves.len() == 1 {
                w.write_all(&waves[0].0)?;
            } else {
                for (k, (body, size)) in waves.iter().enumerate() {
                    writeln!(w, "# wave {} of {}: {size} jobs", k + 1, waves.len())?;
                    writeln!(w, "bpsc_wave_{}() {{", k + 1)?;
                    w.write_all(body)?;
                    writeln!(w, "}}")?;
                }
                writeln!(w, "# the provenance job, submitted by the feeder after the last wave ($1: the ids it waits for)")?;
                writeln!(w, "bpsc_provenance() {{\n{prov_fn}}}")?;
            }
            w.write_all(render(&e, "submit-tail.sh", ctx)?.as_bytes())?;
            w.flush()?;
        }
        out.set_executable("slurm/submit.sh")?;
        Ok(Emitted {
            groups: g.counts(),
            submit_command: "slurm/submit.sh".into(),
            engine_jobs: crate::backend::kind_counts(ir, |_| true),
            engine_edges: ir.edges.len() as u64,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_specs() {
        assert_eq!(spec(&ranges([0, 1, 2, 5, 7, 8].into_iter())), "0-2,5,7-8");
        assert_eq!(spec(&ranges(std::iter::empty())), "");
        let many: Vec<(u32, u32)> = (0..3000).map(|t| (t * 2, t)).collect();
        let pieces = split_by_spec(many, ARRAY_SPEC_LIMIT);
        assert!(pieces.len() > 1);
        for p in &pieces {
            assert!(spec(&ranges(p.iter().map(|x| x.0))).len() <= ARRAY_SPEC_LIMIT);
        }
        assert_eq!(pieces.iter().map(|p| p.len()).sum::<usize>(), 3000);
    }

    #[test]
    fn scratch_and_notify_templates_quote_values() {
        assert_eq!(scratch_shell("/s/{user}/{campaign}/{site}", "a\"$(x)", "in2p3"), "/s/${USER:-$(id -un)}/a\\\"\\$(x)/in2p3");
        assert_eq!(scratch_shell("/s/{{x}}/{nope}", "c", "s"), "/s/{x}/{nope}");
        assert_eq!(
            notify_shell("notify.sh {campaign} {event} '{step}'", "it's"),
            "notify.sh 'it'\\''s' \"${BPSC_EVENT}\" ''\"${BPSC_STEP}\"''"
        );
    }

    #[test]
    fn long_dependency_lists_go_through_fanin_jobs() {
        let mut em = Emitter { w: Vec::new(), fanins: 0, updates: 0 };
        let mut d = Deps::new();
        d.insert(Kind::Corr, vec![Ref::Whole(1)]);
        d.insert(Kind::Any, (0..30_000).map(|t| Ref::Task(7, t)).collect());
        d.insert(Kind::Ok, vec![Ref::Whole(3)]);
        assert!(deps_est(&d) > DEPENDENCY_LIMIT);
        let out = em.fit(d, "--partition=p", Kind::Ok, "g").expect("fit");
        let text = String::from_utf8(em.w).expect("utf-8");
        assert!(deps_est(&out) <= DEPENDENCY_LIMIT);
        assert_eq!(out.get(&Kind::Corr), Some(&vec![Ref::Whole(1)]), "aftercorr stays on the job");
        let fanins = out.get(&Kind::Ok).expect("fan-ins");
        assert!(fanins.len() >= 4 && fanins.iter().all(|r| matches!(r, Ref::Fanin(_))));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), fanins.len());
        for l in &lines {
            assert!(
                l.starts_with("sub F") && l.contains(" fanin:g --partition=p --dependency=\"") && l.ends_with("slurm/fanin.sbatch"),
                "{l}"
            );
            assert!(l.len() < DEPENDENCY_LIMIT, "a fan-in's own list fits");
        }
        // Every original ref is waited for by exactly one fan-in.
        let refs: usize = lines.iter().map(|l| l.matches("${J7}_").count()).sum();
        assert_eq!(refs, 30_000);
        assert_eq!(lines.iter().filter(|l| l.contains("afterok:${J3}")).count(), 1);
    }

    #[test]
    fn container_images_get_a_scheme() {
        assert_eq!(image_ref("ghcr.io/lsst/scipipe:al9-w_2024_48"), "docker://ghcr.io/lsst/scipipe:al9-w_2024_48");
        assert_eq!(image_ref("ubuntu"), "docker://ubuntu");
        for kept in ["docker://ubuntu:22.04", "library://x/y/z", "oras://r/i:1", "/cvmfs/img.sif", "./img", "../sandbox/", "img.sif"] {
            assert_eq!(image_ref(kept), kept);
        }
    }

    #[test]
    fn names() {
        assert!(slurm_name_ok("rubin:production", b""));
        assert!(!slurm_name_ok("a b", b""));
        assert!(!slurm_name_ok("", b""));
        assert!(slurm_name_ok("node[01-04]", b"[],"));
        assert!(env_name_ok("OMP_NUM_THREADS"));
        assert!(!env_name_ok("1X"));
        assert!(!env_name_ok("A-B"));
    }
}
