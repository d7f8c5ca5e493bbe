//! `bpsc restart SUBMIT [--from STEP] [--data-ids FILE] [--set KEY=VALUE] [-o NEW_DIR]`:
//! a new submit directory holding only what is left to do.
//!
//! 1. The campaign is compiled again from its `.bps` file with the arguments recorded in
//!    `bpsc.json` (`compile`: file, campaign, `--set`s, `--steps`), plus the new `--set`s:
//!    settings and software may change on restart.
//! 2. The provenance records of the directory, and of the directories it restarted
//!    (`restart.of`, followed back), say which quanta succeeded: those are never run again
//!    and their outputs are taken as present.  Inserted jobs (stage-in, stage-out) that
//!    succeeded are not run again either.
//! 3. What the operator designates runs again even if it succeeded: `--from STEP` (that
//!    step and every step downstream of it) and `--data-ids FILE` (a CSV whose header names
//!    dimensions, optionally a `step` column: every quantum whose data ID agrees with a row
//!    on the dimensions they share), together with every job downstream of those quanta.
//! 4. The IR is cut down to the remaining quanta: a cluster keeps its remaining members; a
//!    stage-in runs when a remaining job needs it and it has not succeeded; stage-out and
//!    cleanup follow their compute job; joins stay where they still join remaining jobs;
//!    edges are kept among the remaining jobs; the provenance job is always there.
//! 5. Host avoidance: hosts with at least `--host-failures N` (default 3) failed attempts,
//!    which are at least `--host-failure-rate R` (default 0.5) of the host's attempts, are
//!    added to every step's `avoid_hosts`, and the restart says so.  When that would be
//!    every host the campaign ran on, none is added (a warning says why).
//!
//! The new directory's `bpsc.json` records `compile` (with the new `--set`s), `restart`
//! (`of`, what was excluded, hosts avoided, data jobs that could not be rerun) and
//! `provenance_db` (the campaign's store, shared with the original directory).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::coverage::Value as CVal;
use crate::ir::{Ir, JobKind, QRef, SetAt};
use crate::pipeline::CompileArgs;
use crate::submitdir::exit::{ERRORS as EXIT_ERRORS, OK as EXIT_OK, USAGE as EXIT_USAGE};
use crate::submitdir::meta::{CutStats, HostFailures, Meta, RestartMeta};
use crate::submitdir::records;

/// Options of `bpsc restart`.
#[derive(Clone, Debug, Default)]
pub struct RestartArgs {
    pub submit: PathBuf,
    pub from: Vec<String>,
    pub data_ids: Option<PathBuf>,
    pub sets: Vec<String>,
    pub out: Option<PathBuf>,
    pub force: bool,
    /// Failed attempts that put a host on `avoid_hosts` (0: never).
    pub host_failures: u64,
    /// ... and the share of the host's attempts that failed must be at least this.
    pub host_failure_rate: f64,
    /// The campaign file, when bpsc.json does not record it (or it moved).
    pub file: Option<PathBuf>,
    /// Print the result as one JSON object (`bpsc_restart` 1) instead of text; errors are
    /// still on standard error.
    pub json: bool,
}

/// What the provenance records say.
#[derive(Debug, Default)]
pub struct Done {
    /// (step, canonical data ID) of quanta that succeeded.
    pub quanta: HashSet<(String, String)>,
    /// Job ids whose latest attempt succeeded (for inserted jobs).
    pub jobs: HashSet<String>,
    /// Failed attempts per host.
    pub host_failures: BTreeMap<String, u64>,
    /// Attempts per host (skipped ones not counted).
    pub host_attempts: BTreeMap<String, u64>,
    pub dirs: Vec<PathBuf>,
    pub notes: Vec<String>,
}

/// Read the records of `submit` and of the directories it restarted.
pub fn done_work(submit: &Path) -> Done {
    let mut d = Done::default();
    let mut dir = Some(submit.to_path_buf());
    let mut seen = HashSet::new();
    while let Some(cur) = dir.take() {
        let key = std::fs::canonicalize(&cur).unwrap_or(cur.clone());
        if !seen.insert(key) || seen.len() > 1000 {
            break;
        }
        let notes = records::for_each_record(&cur, |r, _| {
            for q in &r.quanta {
                if q.succeeded() {
                    d.quanta.insert((q.step.clone(), records::data_id_key(&q.data_id)));
                }
            }
            let host = r.host.clone().unwrap_or_else(|| "unknown".into());
            if !r.skipped {
                *d.host_attempts.entry(host.clone()).or_default() += 1;
            }
            if r.succeeded() {
                d.jobs.insert(r.job_id.clone());
            } else if !r.skipped {
                *d.host_failures.entry(host).or_default() += 1;
            }
        });
        d.notes.extend(notes);
        d.dirs.push(cur.clone());
        let prev = Meta::read(&cur).ok().and_then(|m| m.restart.map(|r| r.of));
        if let Some(p) = prev {
            if p.join("bpsc.json").exists() {
                dir = Some(p);
            } else {
                d.notes.push(format!("{} (restarted by {}) is gone: its successes are not known", p.display(), cur.display()));
            }
        }
    }
    d
}

fn cval_text(v: &CVal) -> String {
    match v {
        CVal::Int(i) => i.to_string(),
        CVal::Str(s) => s.to_string(),
    }
}

/// The canonical data ID text of a quantum (as `records::data_id_key` gives for records).
pub fn quantum_key(ir: &Ir, r: QRef) -> String {
    let st = &ir.steps[r.step as usize];
    let mut m = serde_json::Map::new();
    for (d, v) in st.dims.iter().zip(ir.data_id(r)) {
        m.insert(
            d.clone(),
            match v {
                CVal::Int(i) => json!(i),
                CVal::Str(s) => json!(s),
            },
        );
    }
    serde_json::to_string(&Value::Object(m)).unwrap_or_default()
}

/// Rows of a `--data-ids` CSV: (optional step, [(dimension, value)]).
/// One `--data-ids` row: optional step, (dimension, value) pairs.
pub type DataIdRow = (Option<String>, Vec<(String, String)>);

pub fn read_data_ids(p: &Path) -> Result<Vec<DataIdRow>, String> {
    let mut rd = csv::ReaderBuilder::new().trim(csv::Trim::All).from_path(p).map_err(|e| format!("{}: {e}", p.display()))?;
    let header: Vec<String> = rd.headers().map_err(|e| format!("{}: {e}", p.display()))?.iter().map(|s| s.to_string()).collect();
    if header.iter().all(|h| h == "step") {
        return Err(format!("{}: the header must name dimensions (and optionally `step`)", p.display()));
    }
    let mut out = Vec::new();
    for rec in rd.records() {
        let rec = rec.map_err(|e| format!("{}: {e}", p.display()))?;
        let mut step = None;
        let mut kv = Vec::new();
        for (h, v) in header.iter().zip(rec.iter()) {
            if h == "step" {
                step = Some(v.to_string()).filter(|s| !s.is_empty());
            } else if !v.is_empty() {
                kv.push((h.clone(), v.to_string()));
            }
        }
        out.push((step, kv));
    }
    Ok(out)
}

/// Cut `ir` down to the remaining quanta.  `remaining[step][q]` says which quanta stay;
/// `done_jobs` holds inserted jobs that succeeded.
pub fn cut(ir: Ir, remaining: &[Vec<bool>], done_jobs: &HashSet<String>, stats: &mut CutStats) -> Ir {
    let n = ir.jobs.len();
    let ids: Vec<String> = (0..n as u32).map(|j| ir.job_id(j)).collect();
    let (coff, cto) = ir.children();
    let (poff, pin) = ir.parents();
    let mut keep = vec![false; n];
    for (j, job) in ir.jobs.iter().enumerate() {
        if job.kind == JobKind::Compute {
            keep[j] = ir.job_members(j as u32).iter().any(|m| remaining[m.step as usize][m.q as usize]);
        }
    }
    let kids = |j: usize| &cto[coff[j] as usize..coff[j + 1] as usize];
    let parents = |j: usize| &pin[poff[j] as usize..poff[j + 1] as usize];
    for (j, job) in ir.jobs.iter().enumerate() {
        match job.kind {
            JobKind::StageIn => keep[j] = !done_jobs.contains(&ids[j]) && kids(j).iter().any(|&c| keep[c as usize]),
            JobKind::StageOut => {
                let owner = job.owner as usize;
                keep[j] = keep[owner];
                if !keep[owner] && !done_jobs.contains(&ids[j]) {
                    stats.unarchived.push(ids[j].clone());
                }
            }
            JobKind::Cleanup => keep[j] = keep[job.owner as usize],
            JobKind::Provenance => keep[j] = true,
            _ => {}
        }
    }
    // Joins: kept when they still join a remaining job to a remaining job (chains of joins
    // resolved in topological order, then in reverse).
    let topo = crate::ir::adjacency::topo_jobs(&ir);
    let mut join_up = vec![false; n];
    for &j in &topo {
        let j = j as usize;
        if ir.jobs[j].kind == JobKind::Join {
            join_up[j] = parents(j).iter().any(|&p| keep[p as usize] || join_up[p as usize]);
        }
    }
    let mut join_down = vec![false; n];
    for &j in topo.iter().rev() {
        let j = j as usize;
        if ir.jobs[j].kind == JobKind::Join {
            join_down[j] = kids(j).iter().any(|&c| keep[c as usize] || join_down[c as usize]);
        }
    }
    for j in 0..n {
        if ir.jobs[j].kind == JobKind::Join {
            keep[j] = join_up[j] && join_down[j];
        }
    }
    // The new IR.
    let mut new_of = vec![u32::MAX; n];
    let mut jobs = Vec::new();
    let mut members = Vec::new();
    for (j, job) in ir.jobs.iter().enumerate() {
        if !keep[j] {
            continue;
        }
        let mut job = *job;
        if job.kind == JobKind::Compute {
            let lo = members.len() as u32;
            members.extend(ir.job_members(j as u32).iter().filter(|m| remaining[m.step as usize][m.q as usize]).copied());
            job.lo = lo;
            job.hi = members.len() as u32;
        }
        new_of[j] = jobs.len() as u32;
        jobs.push(job);
    }
    for job in &mut jobs {
        if matches!(job.kind, JobKind::StageOut | JobKind::Cleanup) {
            job.owner = new_of[job.owner as usize];
        }
    }
    let mut edges: Vec<(u32, u32)> = ir
        .edges
        .iter()
        .filter(|(p, c)| keep[*p as usize] && keep[*c as usize])
        .map(|&(p, c)| (new_of[p as usize], new_of[c as usize]))
        .collect();
    edges.sort_unstable();
    edges.dedup();
    let mut ir = ir;
    for (s, st) in ir.steps.iter_mut().enumerate() {
        for (q, j) in st.job_of.iter_mut().enumerate() {
            *j = if remaining[s][q] && (*j as usize) < n { new_of[*j as usize] } else { u32::MAX };
        }
    }
    stats.jobs_before = n as u64;
    stats.jobs_after = jobs.len() as u64;
    ir.jobs = jobs;
    ir.members = members;
    ir.edges = edges;
    // Joins and stage-in jobs may have lost the jobs their settings came from.
    crate::lower::settings::assign(&mut ir);
    ir
}

/// Add hosts to every step's `avoid_hosts` (a union with what the campaign says).
pub fn avoid_hosts(ir: &mut Ir, hosts: &[String]) {
    if hosts.is_empty() {
        return;
    }
    for st in &mut ir.steps {
        for h in hosts {
            if !st.settings.avoid_hosts.contains(h) {
                st.settings.avoid_hosts.push(h.clone());
            }
        }
        st.set_at.retain(|s| s.key != "avoid_hosts");
        st.set_at.push(SetAt { key: "avoid_hosts".into(), label: "bpsc restart: hosts with repeated failures".into(), loc: None });
    }
    crate::lower::settings::assign(ir);
}

fn default_out(submit: &Path) -> PathBuf {
    let base = submit.to_string_lossy().trim_end_matches('/').to_string();
    let base = base.rsplit_once(".restart").filter(|(_, n)| n.parse::<u32>().is_ok()).map(|x| x.0.to_string()).unwrap_or(base);
    (1..)
        .map(|k| PathBuf::from(format!("{base}.restart{k}")))
        .find(|p| !p.exists())
        .unwrap_or_else(|| PathBuf::from(format!("{base}.restart")))
}

/// `bpsc restart`.
pub fn run(a: &RestartArgs, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    match run_inner(a, out, err) {
        Ok(()) => EXIT_OK,
        Err((code, msg)) => {
            let _ = writeln!(err, "error: {msg}");
            code
        }
    }
}

fn run_inner(a: &RestartArgs, out: &mut dyn Write, err: &mut dyn Write) -> Result<(), (u8, String)> {
    let usage = |m: String| (EXIT_USAGE, m);
    let meta = Meta::read(&a.submit).map_err(usage)?;
    let comp = meta.compile.clone().unwrap_or_default();
    let file = a.file.clone().or_else(|| (!comp.file.as_os_str().is_empty()).then(|| comp.file.clone())).ok_or_else(|| {
        usage(format!("{}/bpsc.json does not record the campaign file (compiled by an older bpsc); pass --file", a.submit.display()))
    })?;
    let backend = meta.backend.clone();
    let engine = crate::backend::find(&backend)
        .ok_or_else(|| usage(format!("{}/bpsc.json names no known backend (`{backend}`)", a.submit.display())))?;
    let mut sets: Vec<String> = comp.sets.clone();
    sets.extend(a.sets.iter().cloned());
    let ca = CompileArgs {
        file,
        sets: sets.clone(),
        campaign: comp.campaign.clone().or_else(|| Some(meta.campaign.clone()).filter(|c| !c.is_empty())),
        steps: comp.steps.clone(),
        coverage_warn: comp.coverage_warn,
        allow_unknown_steps: comp.allow_unknown_steps,
    };
    let (mut ir, c) =
        crate::pipeline::lower_file(&crate::fs::RealFs, &ca, err).map_err(|c| (c, "the campaign does not compile any more".to_string()))?;
    let done = done_work(&a.submit);
    for n in &done.notes {
        let _ = writeln!(err, "warning: {n}");
    }
    // Designated steps: --from and everything downstream.
    let step_index: HashMap<&str, usize> = ir.steps.iter().enumerate().map(|(i, s)| (s.name.as_str(), i)).collect();
    let mut from_steps: HashSet<usize> = HashSet::new();
    for f in a.from.iter().flat_map(|f| f.split(',')).map(str::trim).filter(|f| !f.is_empty()) {
        let &s = step_index.get(f).ok_or_else(|| {
            usage(format!("--from: no step `{f}` (steps: {})", ir.steps.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", ")))
        })?;
        from_steps.insert(s);
    }
    loop {
        let before = from_steps.len();
        for (x, y, _) in &ir.step_edges {
            if from_steps.contains(&(*x as usize)) {
                from_steps.insert(*y as usize);
            }
        }
        if from_steps.len() == before {
            break;
        }
    }
    let rows = match &a.data_ids {
        Some(p) => read_data_ids(p).map_err(usage)?,
        None => Vec::new(),
    };
    // Per quantum: succeeded?  designated?
    let mut stats = CutStats::default();
    let mut remaining: Vec<Vec<bool>> = Vec::with_capacity(ir.steps.len());
    let mut designated_jobs: Vec<u32> = Vec::new();
    for (s, st) in ir.steps.iter().enumerate() {
        let mut v = vec![false; st.quanta.len()];
        for (q, slot) in v.iter_mut().enumerate() {
            let r = QRef { step: s as u32, q: q as u32 };
            stats.quanta_total += 1;
            let mut designated = from_steps.contains(&s);
            if !designated && !rows.is_empty() {
                let vals = ir.data_id(r);
                designated = rows.iter().any(|(step, kv)| {
                    step.as_ref().is_none_or(|x| *x == st.name) && {
                        let common: Vec<(usize, &String)> =
                            kv.iter().filter_map(|(d, val)| st.dims.iter().position(|x| x == d).map(|i| (i, val))).collect();
                        !common.is_empty() && common.iter().all(|(i, val)| cval_text(vals[*i]) == **val)
                    }
                });
            }
            if designated {
                stats.quanta_designated += 1;
                designated_jobs.push(st.job_of[q]);
                *slot = true;
            } else if done.quanta.contains(&(st.name.clone(), quantum_key(&ir, r))) {
                stats.quanta_succeeded_excluded += 1;
            } else {
                *slot = true;
            }
        }
        remaining.push(v);
    }
    // Everything downstream of a designated quantum's job runs again too.
    if !designated_jobs.is_empty() {
        let (off, to) = ir.children();
        let mut seen = vec![false; ir.jobs.len()];
        let mut stack: Vec<u32> = designated_jobs.into_iter().filter(|&j| (j as usize) < ir.jobs.len()).collect();
        while let Some(j) = stack.pop() {
            if std::mem::replace(&mut seen[j as usize], true) {
                continue;
            }
            for m in ir.job_members(j) {
                remaining[m.step as usize][m.q as usize] = true;
            }
            stack.extend_from_slice(&to[off[j as usize] as usize..off[j as usize + 1] as usize]);
        }
    }
    stats.quanta_remaining = remaining.iter().flatten().filter(|x| **x).count() as u64;
    // Host avoidance.
    let mut avoided: Vec<(String, u64)> = if a.host_failures > 0 {
        done.host_failures
            .iter()
            .filter(|(h, n)| {
                let tried = done.host_attempts.get(*h).copied().unwrap_or(**n).max(1);
                **n >= a.host_failures && **n as f64 / tried as f64 >= a.host_failure_rate && h.as_str() != "unknown"
            })
            .map(|(h, n)| (h.clone(), *n))
            .collect()
    } else {
        Vec::new()
    };
    // Never avoid every host the campaign has run on: that is a campaign problem, not a host one.
    let known_hosts = done.host_attempts.keys().filter(|h| h.as_str() != "unknown").count();
    if !avoided.is_empty() && avoided.len() >= known_hosts {
        let _ = writeln!(
            err,
            "warning: every host the campaign ran on ({known_hosts}) passes the host-failure threshold; none is avoided (the failures are not the hosts')"
        );
        avoided.clear();
    }
    avoid_hosts(&mut ir, &avoided.iter().map(|x| x.0.clone()).collect::<Vec<_>>());
    let ir = cut(ir, &remaining, &done.jobs, &mut stats);
    // Write.
    crate::pipeline::capabilities(engine, &ir, &c.program.map, err).map_err(|code| (code, "the backend cannot run the campaign".into()))?;
    let target = a.out.clone().unwrap_or_else(|| default_out(&a.submit));
    let of = std::fs::canonicalize(&a.submit).unwrap_or(a.submit.clone());
    let db = crate::provstore::default_db(&a.submit);
    let db = std::fs::canonicalize(db.parent().unwrap_or(Path::new("."))).map(|d| d.join(db.file_name().unwrap_or_default())).unwrap_or(db);
    let restart = RestartMeta {
        of,
        from: a.from.clone(),
        data_ids: a.data_ids.clone(),
        sets: a.sets.clone(),
        host_failures_threshold: a.host_failures,
        host_failure_rate_threshold: a.host_failure_rate,
        avoid_hosts_added: avoided.iter().map(|(h, n)| HostFailures { host: h.clone(), failures: *n }).collect(),
        stats: stats.clone(),
        records_from: done.dirs.clone(),
    };
    let ca_new = CompileArgs { sets: sets.clone(), ..ca.clone() };
    let (final_dir, written, _) = crate::pipeline::write_submit_dir(engine, &ir, &target, a.force, |e| {
        let mut m = crate::pipeline::meta_of(&ir, engine, e);
        m.compile = Some(crate::pipeline::compile_meta(&ca_new, engine));
        m.restart = Some(restart);
        m.provenance_db = Some(db);
        m
    })
    .map_err(|e| match e {
        crate::pipeline::WriteError::Usage(m) => usage(m),
        crate::pipeline::WriteError::Diag(d) => (EXIT_ERRORS, format!("{backend}: {}", d.message)),
    })?;
    if a.json {
        let v = json!({
            "bpsc_restart": 1,
            "of": a.submit,
            "out": final_dir,
            "backend": backend,
            "quanta": {
                "total": stats.quanta_total,
                "remaining": stats.quanta_remaining,
                "succeeded_excluded": stats.quanta_succeeded_excluded,
                "designated": stats.quanta_designated,
            },
            "jobs": {"before": stats.jobs_before, "after": stats.jobs_after},
            "avoided_hosts": avoided.iter().map(|(h, n)| json!({"host": h, "failures": n})).collect::<Vec<_>>(),
            "unarchived": stats.unarchived,
            "submit_command": written.submit_command,
        });
        let _ = writeln!(out, "{v}");
        return Ok(());
    }
    let _ = writeln!(
        out,
        "restart of {}: {} of {} quanta remain ({} succeeded and excluded, {} designated to run again); {} of {} jobs",
        a.submit.display(),
        stats.quanta_remaining,
        stats.quanta_total,
        stats.quanta_succeeded_excluded,
        stats.quanta_designated,
        stats.jobs_after,
        stats.jobs_before
    );
    if !avoided.is_empty() {
        let _ = writeln!(
            out,
            "host avoidance: added to avoid_hosts of every step (at least {} failed attempts, at least {:.0}% of the host's): {}",
            a.host_failures,
            a.host_failure_rate * 100.0,
            avoided.iter().map(|(h, n)| format!("{h} ({n} failures)")).collect::<Vec<_>>().join(", ")
        );
    }
    if !stats.unarchived.is_empty() {
        let _ = writeln!(
            out,
            "warning: {} stage-out jobs of succeeded work had not succeeded; their outputs stay on the scratch area, unarchived (first: {})",
            stats.unarchived.len(),
            stats.unarchived[0]
        );
    }
    let _ = writeln!(out, "wrote {} for {backend}", final_dir.display());
    if !written.submit_command.is_empty() {
        let _ = writeln!(out, "submit with: cd {} && {}", final_dir.display(), written.submit_command);
    }
    Ok(())
}
