//! From the history (every attempt) to the report's bounded data: counts per step,
//! quantiles and histograms, hints, the timeline (every attempt, or binned), failures
//! (capped, with complete counts), hosts and the provenance summary.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, UNIX_EPOCH};

use crate::backend::EState;
use crate::status::Counts;
use crate::submitdir::records;

use super::collect::{History, NO_HOST};
use super::hint;
use super::model::*;
use super::Limits;

/// RFC 3339 of epoch seconds.
pub fn time_text(t: f64) -> String {
    crate::submitdir::time::rfc3339(UNIX_EPOCH + Duration::from_secs_f64(t.max(0.0)))
}

fn add(c: &mut Counts, s: EState) {
    c.jobs += 1;
    match s {
        EState::Pending => c.pending += 1,
        EState::Running => c.running += 1,
        EState::Succeeded => c.succeeded += 1,
        EState::Failed => c.failed += 1,
        EState::Skipped => c.skipped += 1,
        EState::Held => c.held += 1,
        EState::Cancelled => c.cancelled += 1,
    }
}

/// `running`, `held`, `cancelled`, `failed` or `done`, from the counts alone (a run's own
/// state, which also knows about `bpsc hold` and `bpsc cancel`, comes from `bpsc status`).
pub fn state_word(t: &Counts) -> &'static str {
    if t.pending + t.running > 0 {
        "running"
    } else if t.held > 0 {
        "held"
    } else if t.cancelled > 0 {
        "cancelled"
    } else if t.failed + t.skipped > 0 {
        "failed"
    } else {
        "done"
    }
}

/// Bins from 0 to a little over the largest value; the request is inside the range when it
/// is at most twice the largest value (else the drawing says where it is).
fn histogram(sorted: &[f64], requested: Option<f64>, bins: usize) -> Option<Histogram> {
    let max = *sorted.last()?;
    let top = match requested {
        Some(r) if r <= 2.0 * max => max.max(r),
        _ => max,
    };
    let hi = top.max(f64::MIN_POSITIVE) * 1.05;
    let mut counts = vec![0u64; bins.max(1)];
    for v in sorted {
        let b = ((v / hi) * counts.len() as f64).floor().clamp(0.0, (counts.len() - 1) as f64) as usize;
        counts[b] += 1;
    }
    Some(Histogram { lo: 0.0, hi, counts })
}

/// The wall time of an attempt: its record's `seconds`, else end - start.
fn wall(a: &super::collect::Attempt) -> Option<f64> {
    a.seconds.or_else(|| Some(a.end? - a.start?)).filter(|w| w.is_finite() && *w >= 0.0)
}

/// Build the report's data.
pub fn aggregate(h: &History, limits: &Limits) -> ReportData {
    // Steps shown: labels with jobs, joins excluded.
    let mut counts: Vec<Counts> = vec![Counts::default(); h.labels.len()];
    let mut totals = Counts::default();
    for j in &h.jobs {
        if j.kind == "join" {
            continue;
        }
        add(&mut counts[j.label as usize], j.state);
        add(&mut totals, j.state);
    }
    // Tries: the attempts of each job over the whole history, in (run, attempt) order.
    let mut order: Vec<u32> = (0..h.attempts.len() as u32).collect();
    order.sort_unstable_by_key(|&i| {
        let a = &h.attempts[i as usize];
        (a.job, a.run, a.attempt)
    });
    let mut try_no = vec![0u32; h.attempts.len()];
    let mut tries_of_job: HashMap<u32, u32> = HashMap::new();
    {
        let mut prev: Option<u32> = None;
        let mut n = 0u32;
        for &i in &order {
            let a = &h.attempts[i as usize];
            if prev != Some(a.job) {
                n = 0;
                prev = Some(a.job);
            }
            if !a.skipped {
                n += 1;
            }
            try_no[i as usize] = n.max(1);
            tries_of_job.insert(a.job, n);
        }
    }
    let outcome = |i: usize| -> usize {
        let a = &h.attempts[i];
        if a.skipped {
            3
        } else if a.succeeded {
            if try_no[i] > 1 {
                1
            } else {
                0
            }
        } else {
            2
        }
    };
    // Per label: attempts, measured values.
    let nl = h.labels.len();
    let mut rss: Vec<Vec<f64>> = vec![Vec::new(); nl];
    let mut walls: Vec<Vec<f64>> = vec![Vec::new(); nl];
    for (i, a) in h.attempts.iter().enumerate() {
        let l = h.jobs[a.job as usize].label as usize;
        counts[l].attempts += 1;
        totals.attempts += 1;
        let _ = i;
        if a.skipped {
            continue;
        }
        if let Some(k) = a.rss_kib.filter(|k| *k > 0) {
            rss[l].push(k as f64 / 1024.0);
        }
        if let Some(w) = wall(a) {
            walls[l].push(w);
        }
    }
    let mut retried = vec![0u64; nl];
    for (j, n) in &tries_of_job {
        if *n > 1 {
            retried[h.jobs[*j as usize].label as usize] += 1;
        }
    }
    // Steps in dependency order (longest path from a root), then the inserted kinds.
    let mut depth = vec![0u32; nl];
    for _ in 0..nl {
        let mut changed = false;
        for &(a, b) in &h.edges {
            let (a, b) = (a as usize, b as usize);
            if depth[b] < depth[a] + 1 && (depth[a] as usize) < nl {
                depth[b] = depth[a] + 1;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let mut shown: Vec<usize> = (0..nl).filter(|&l| h.labels[l].kind != "join" && counts[l].jobs > 0).collect();
    shown.sort_by_key(|&l| (h.labels[l].kind != "compute", depth[l], l));
    let step_of: HashMap<usize, usize> = shown.iter().enumerate().map(|(s, &l)| (l, s)).collect();
    let steps: Vec<StepReport> = shown
        .iter()
        .map(|&l| {
            let lab = &h.labels[l];
            let mut r = std::mem::take(&mut rss[l]);
            let mut w = std::mem::take(&mut walls[l]);
            let rq = hint::quantiles(&mut r);
            let wq = hint::quantiles(&mut w);
            let req_mib = lab.requested.memory_bytes.map(|b| b as f64 / 1048576.0);
            let req_wall = lab.requested.walltime_seconds.map(|s| s as f64);
            let hints =
                if lab.kind == "compute" { hint::hints(&lab.name, &lab.steps, lab.clustered, &lab.requested, &r, &w) } else { Vec::new() };
            let members =
                if lab.steps.len() > 1 || lab.steps.first().is_some_and(|s| *s != lab.name) { lab.steps.clone() } else { Vec::new() };
            StepReport {
                step: lab.name.clone(),
                kind: lab.kind.clone(),
                counts: counts[l],
                retried_jobs: retried[l],
                member_steps: members,
                requested: lab.requested.clone(),
                wall_hist: histogram(&w, req_wall, limits.hist_bins),
                rss_hist: histogram(&r, req_mib, limits.hist_bins),
                wall_seconds: wq,
                peak_rss_mib: rq,
                hints,
            }
        })
        .collect();
    // The step graph (compute labels).
    let graph = {
        let nodes: Vec<usize> = (0..steps.len()).filter(|&s| steps[s].kind == "compute").collect();
        let mut edges: Vec<(usize, usize)> =
            h.edges.iter().filter_map(|&(a, b)| Some((*step_of.get(&(a as usize))?, *step_of.get(&(b as usize))?))).collect();
        edges.sort_unstable();
        edges.dedup();
        let mut level: HashMap<usize, u32> = nodes.iter().map(|&n| (n, 0)).collect();
        // Longest path from a root (bounded relaxation: a cycle cannot loop forever).
        for _ in 0..nodes.len() {
            let mut changed = false;
            for &(a, b) in &edges {
                let la = level.get(&a).copied().unwrap_or(0);
                if let Some(lb) = level.get_mut(&b) {
                    if *lb < la + 1 && la + 1 < nodes.len() as u32 + 1 {
                        *lb = la + 1;
                        changed = true;
                    }
                }
            }
            if !changed {
                break;
            }
        }
        let levels = nodes.iter().map(|n| level[n]).collect();
        Graph { nodes, levels, edges, source: "task tables (parents of every job)".into() }
    };
    // Timeline.
    let starts: Vec<(usize, f64, f64)> = h
        .attempts
        .iter()
        .enumerate()
        .filter_map(|(i, a)| {
            let s = a.start?;
            let e = a.end.or_else(|| a.seconds.map(|w| s + w)).unwrap_or(s).max(s);
            Some((i, s, e))
        })
        .collect();
    let t0 = starts.iter().map(|x| x.1).fold(f64::INFINITY, f64::min);
    let t1 = starts.iter().map(|x| x.2).fold(f64::NEG_INFINITY, f64::max);
    let span = if t0.is_finite() { (t1 - t0).max(1.0) } else { 0.0 };
    let detailed = starts.len() <= limits.timeline_attempts;
    let bins = if detailed { 0 } else { limits.timeline_bins.max(1) };
    let bin_seconds = if bins > 0 { span / bins as f64 } else { 0.0 };
    let mut lanes: Vec<TimelineLane> = (0..steps.len())
        .map(|s| TimelineLane {
            step: s,
            attempts_total: 0,
            attempts: Vec::new(),
            bins: if detailed { Vec::new() } else { vec![[0.0; 4]; bins] },
        })
        .collect();
    let mut run_starts: Vec<Option<f64>> = vec![None; h.runs.len()];
    for &(i, s, e) in &starts {
        let a = &h.attempts[i];
        let rs = &mut run_starts[a.run as usize];
        if rs.is_none_or(|x| s - t0 < x) {
            *rs = Some(s - t0);
        }
        let Some(&st) = step_of.get(&(h.jobs[a.job as usize].label as usize)) else { continue };
        let lane = &mut lanes[st];
        lane.attempts_total += 1;
        let o = outcome(i);
        if detailed {
            lane.attempts.push(TimelineAttempt {
                job: h.jobs[a.job as usize].id.clone(),
                run: a.run as usize,
                attempt: a.attempt,
                try_number: try_no[i],
                start: s - t0,
                end: e - t0,
                outcome: OUTCOMES[o].into(),
                host: (a.host != NO_HOST).then(|| h.hosts[a.host as usize].clone()),
            });
        } else {
            let (x0, x1) = ((s - t0) / bin_seconds, (e - t0) / bin_seconds);
            let (b0, b1) = (x0.floor().max(0.0) as usize, (x1.ceil() as usize).min(bins));
            for b in b0..b1.max(b0 + 1).min(bins) {
                let ov = (x1.min(b as f64 + 1.0) - x0.max(b as f64)).max(0.0);
                lane.bins[b][o] += ov as f32;
            }
        }
    }
    for lane in &mut lanes {
        lane.attempts.sort_by(|a, b| a.start.total_cmp(&b.start).then(a.job.cmp(&b.job)));
    }
    let timeline = Timeline {
        mode: if detailed { "attempts" } else { "binned" }.into(),
        start: t0.is_finite().then(|| time_text(t0)),
        span_seconds: span,
        bin_seconds,
        run_starts,
        lanes,
    };
    // Failures.
    let step_name = |job: u32| h.labels[h.jobs[job as usize].label as usize].name.clone();
    let mut failed_idx: Vec<usize> = (0..h.attempts.len()).filter(|&i| h.attempts[i].detail.is_some()).collect();
    let mut last_failed: HashMap<u32, usize> = HashMap::new();
    for &i in &failed_idx {
        let a = &h.attempts[i];
        let e = last_failed.entry(a.job).or_insert(i);
        if try_no[i] >= try_no[*e] {
            *e = i;
        }
    }
    let label_rank = |job: u32| step_of.get(&(h.jobs[job as usize].label as usize)).copied().unwrap_or(usize::MAX);
    failed_idx.sort_by(|&x, &y| {
        let (a, b) = (&h.attempts[x], &h.attempts[y]);
        let still = |i: usize, a: &super::collect::Attempt| {
            !(h.jobs[a.job as usize].state == EState::Failed && last_failed.get(&a.job) == Some(&i))
        };
        (still(x, a), label_rank(a.job), &h.jobs[a.job as usize].id, try_no[x]).cmp(&(
            still(y, b),
            label_rank(b.job),
            &h.jobs[b.job as usize].id,
            try_no[y],
        ))
    });
    let mut by_step: BTreeMap<usize, u64> = BTreeMap::new();
    let mut by_code: BTreeMap<String, u64> = BTreeMap::new();
    let code_text = |exit: Option<i64>, sig: Option<i64>| match (exit, sig) {
        (_, Some(s)) => format!("signal {s}"),
        (Some(c), None) => format!("exit {c}"),
        (None, None) => "no exit status".to_string(),
    };
    for &i in &failed_idx {
        let a = &h.attempts[i];
        *by_step.entry(label_rank(a.job)).or_default() += 1;
        *by_code.entry(code_text(a.exit_code, a.signal)).or_default() += 1;
    }
    let mut rows: Vec<FailureRow> = Vec::new();
    for &i in failed_idx.iter().take(limits.failure_rows) {
        let a = &h.attempts[i];
        let d = &h.failed[a.detail.unwrap_or(0) as usize];
        rows.push(FailureRow {
            job: h.jobs[a.job as usize].id.clone(),
            step: step_name(a.job),
            data_id_text: records::data_id_text(&d.data_id),
            data_id: d.data_id.clone(),
            run: a.run as usize,
            attempt: a.attempt,
            try_number: try_no[i],
            exit_code: a.exit_code,
            signal: a.signal,
            host: (a.host != NO_HOST).then(|| h.hosts[a.host as usize].clone()),
            log: d.log.clone(),
            error: d.error.clone(),
            start: d.start.clone(),
            final_state: h.jobs[a.job as usize].state.as_str().into(),
        });
    }
    // Jobs the engine says failed without a failed record (no record at all).
    let mut engine_failed = 0u64;
    for f in &h.engine_failures {
        engine_failed += 1;
        *by_code.entry(code_text(f.exit_code, f.signal)).or_default() += 1;
        *by_step.entry(label_rank(f.job)).or_default() += 1;
        if rows.len() < limits.failure_rows {
            let job = &h.jobs[f.job as usize];
            let did: serde_json::Value = job.data_id.as_deref().and_then(|d| serde_json::from_str(d).ok()).unwrap_or_default();
            rows.push(FailureRow {
                job: job.id.clone(),
                step: step_name(f.job),
                data_id_text: records::data_id_text(&did),
                data_id: did,
                run: f.run,
                attempt: f.attempts,
                try_number: f.attempts,
                exit_code: f.exit_code,
                signal: f.signal,
                host: f.host.clone(),
                log: f.log.clone(),
                error: f.error.clone(),
                start: None,
                final_state: job.state.as_str().into(),
            });
        }
    }
    let failed_attempts = failed_idx.len() as u64 + engine_failed;
    let mut by_code: Vec<CountRow> = by_code.into_iter().map(|(what, count)| CountRow { what, count }).collect();
    by_code.sort_by(|a, b| b.count.cmp(&a.count).then(a.what.cmp(&b.what)));
    let failures = Failures {
        failed_attempts,
        failed_jobs: totals.failed,
        not_shown: failed_attempts.saturating_sub(rows.len() as u64),
        rows,
        by_step: by_step
            .into_iter()
            .map(|(s, count)| CountRow { what: steps.get(s).map(|x| x.step.clone()).unwrap_or_else(|| "(other)".into()), count })
            .collect(),
        by_code,
    };
    // Hosts.
    let mut per_host: Vec<(u64, u64)> = vec![(0, 0); h.hosts.len()];
    for a in &h.attempts {
        if a.skipped || a.host == NO_HOST {
            continue;
        }
        let e = &mut per_host[a.host as usize];
        e.1 += 1;
        if !a.succeeded {
            e.0 += 1;
        }
    }
    let mut extra: BTreeMap<String, u64> = BTreeMap::new();
    for f in &h.engine_failures {
        if let Some(host) = &f.host {
            *extra.entry(host.clone()).or_default() += 1;
        }
    }
    let mut hosts: Vec<HostRow> = h
        .hosts
        .iter()
        .zip(&per_host)
        .map(|(n, c)| {
            let x = extra.remove(n).unwrap_or(0);
            HostRow { host: n.clone(), failures: c.0 + x, attempts: c.1 + x }
        })
        .collect();
    hosts.extend(extra.into_iter().map(|(host, x)| HostRow { host, failures: x, attempts: x }));
    let hosts_total = hosts.iter().filter(|r| r.attempts > 0).count();
    hosts.retain(|r| r.failures > 0);
    hosts.sort_by(|a, b| b.failures.cmp(&a.failures).then(a.host.cmp(&b.host)));
    hosts.truncate(limits.hosts);
    // Provenance.
    let top = |m: &HashMap<String, u64>, n: usize| {
        let mut v: Vec<CountRow> = m.iter().map(|(k, c)| CountRow { what: k.clone(), count: *c }).collect();
        v.sort_by(|a, b| b.count.cmp(&a.count).then(a.what.cmp(&b.what)));
        v.truncate(n);
        v
    };
    let files: Vec<FileRow> = h
        .files
        .iter()
        .map(|((d, ds), (n, b, u))| FileRow { direction: d.to_string(), dataset: ds.clone(), files: *n, bytes: *b, without_size: *u })
        .collect();
    let sum = |dir: &str| files.iter().filter(|f| f.direction == dir).fold((0, 0), |acc, f| (acc.0 + f.files, acc.1 + f.bytes));
    let (inputs_files, inputs_bytes) = sum("in");
    let (outputs_files, outputs_bytes) = sum("out");
    let provenance = Provenance {
        software: top(&h.software, limits.hosts),
        env_digests: h.env_digests.len(),
        env_digest_top: top(&h.env_digests, 5),
        files,
        inputs_files,
        inputs_bytes,
        outputs_files,
        outputs_bytes,
        records: h.attempts.len() as u64,
    };
    // Runs.
    let mut run_span: Vec<(f64, f64, u64)> = vec![(f64::INFINITY, f64::NEG_INFINITY, 0); h.runs.len()];
    for a in &h.attempts {
        let r = &mut run_span[a.run as usize];
        r.2 += 1;
        if let Some(s) = a.start {
            r.0 = r.0.min(s);
            r.1 = r.1.max(a.end.unwrap_or(s));
        }
    }
    let runs: Vec<RunInfo> = h
        .runs
        .iter()
        .zip(&run_span)
        .map(|(r, span)| {
            let m = &r.meta;
            let compile = m.compile.as_ref();
            RunInfo {
                submit: std::fs::canonicalize(&r.dir).unwrap_or_else(|_| r.dir.clone()).display().to_string(),
                backend: m.backend.clone(),
                bpsc_version: m.bpsc_version.clone(),
                restart_of: m.restart.as_ref().map(|x| x.of.display().to_string()),
                campaign_file: compile.map(|c| c.file.display().to_string()),
                campaign_file_present: compile.is_some_and(|c| c.file.is_file()),
                sets: compile.map(|c| c.sets.clone()).unwrap_or_default(),
                restart_from: m.restart.as_ref().map(|x| x.from.clone()).unwrap_or_default(),
                avoid_hosts_added: m
                    .restart
                    .as_ref()
                    .map(|x| x.avoid_hosts_added.iter().map(|h| h.host.clone()).collect())
                    .unwrap_or_default(),
                jobs: r.counts.jobs,
                state: r.state.into(),
                counts: r.counts,
                attempts: span.2,
                first_start: span.0.is_finite().then(|| time_text(span.0)),
                last_end: span.1.is_finite().then(|| time_text(span.1)),
            }
        })
        .collect();
    let mut unreadable: Vec<String> = h.unreadable.iter().take(limits.unreadable).cloned().collect();
    if h.unreadable.len() > limits.unreadable {
        unreadable.push(format!("... and {} more", h.unreadable.len() - limits.unreadable));
    }
    ReportData {
        bpsc_report: FORMAT_VERSION,
        campaign: h.campaign.clone(),
        generated_at: crate::submitdir::time::rfc3339(std::time::SystemTime::now()),
        bpsc_version: env!("CARGO_PKG_VERSION").into(),
        state: state_word(&totals).into(),
        runs,
        totals,
        steps,
        graph,
        timeline,
        failures,
        hosts,
        hosts_total,
        provenance,
        limits: limits.clone(),
        unreadable,
    }
}
