//! The HTML page: one self-contained file (inline CSS and SVG, no script, no external
//! resource; a Content-Security-Policy that forbids both), readable on a laptop and
//! printable (`@media print`).  Every value from the submit directory goes through
//! [`esc`].

use std::fmt::Write;

use super::hint::{duration_human, size_human};
use super::model::*;
use super::svg::{self, esc};

const CSS: &str = r#"
:root { --ok:#2e7d32; --retry:#9ccc65; --fail:#c62828; --skip:#9e9e9e; --run:#1565c0; --pend:#e3e6ea; --ink:#1d2329; --muted:#5f6b76; --line:#d5dae0; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: var(--ink); margin: 0; background: #f6f7f9; }
main { max-width: 1240px; margin: 0 auto; padding: 16px 24px 48px; }
header.top { background: #fff; border-bottom: 1px solid var(--line); }
header.top .in { max-width: 1240px; margin: 0 auto; padding: 14px 24px; display: flex; gap: 16px; align-items: baseline; flex-wrap: wrap; }
h1 { font-size: 22px; margin: 0; }
h2 { font-size: 17px; margin: 0 0 10px; }
h3 { font-size: 15px; margin: 14px 0 6px; }
nav a { margin-right: 12px; color: var(--run); text-decoration: none; }
section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 14px 18px; margin: 16px 0; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #eceff2; vertical-align: top; }
th { font-weight: 600; color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .03em; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
code, pre, .mono { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 12.5px; }
pre.paste { background: #f3f6f3; border-left: 3px solid var(--ok); padding: 6px 10px; margin: 4px 0; white-space: pre-wrap; }
.badge { display: inline-block; padding: 2px 10px; border-radius: 12px; color: #fff; font-weight: 600; font-size: 13px; }
.badge.done { background: var(--ok); } .badge.failed { background: var(--fail); } .badge.running { background: var(--run); }
.muted { color: var(--muted); }
.kpis { display: flex; gap: 12px; flex-wrap: wrap; }
.kpi { border: 1px solid var(--line); border-radius: 6px; padding: 6px 12px; min-width: 110px; }
.kpi b { display: block; font-size: 20px; }
.legend span { display: inline-block; margin-right: 14px; font-size: 12px; }
.legend i { display: inline-block; width: 12px; height: 12px; border-radius: 2px; vertical-align: -2px; margin-right: 4px; }
.scroll { max-height: 36em; overflow: auto; }
.wide { overflow-x: auto; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(600px, 1fr)); gap: 12px; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px; break-inside: avoid; }
.charts { display: flex; gap: 16px; flex-wrap: wrap; }
.charts figure { margin: 0; } .charts figcaption { font-size: 12px; color: var(--muted); }
.hint.lower { color: #33691e; } .hint.raise { color: var(--fail); } .hint.keep { color: var(--muted); }
td.err { max-width: 28em; overflow-wrap: anywhere; } td.path { max-width: 22em; overflow-wrap: anywhere; }
.s-succeeded, .o-succeeded, i.s-succeeded { fill: var(--ok); background: var(--ok); }
.o-retry, i.o-retry { fill: var(--retry); background: var(--retry); }
.s-failed, .o-failed, i.s-failed { fill: var(--fail); background: var(--fail); }
.s-skipped, .o-skipped, i.s-skipped { fill: var(--skip); background: var(--skip); }
.s-running, i.s-running { fill: var(--run); background: var(--run); }
.s-pending, i.s-pending { fill: var(--pend); background: var(--pend); }
.s-held, i.s-held { fill: var(--pend); background: var(--pend); opacity: 0.5; }
.s-cancelled, i.s-cancelled { fill: var(--skip); background: var(--skip); opacity: 0.5; }
svg .frame { fill: none; stroke: #b8c0c8; stroke-width: 1; }
svg .retry { stroke: #1b5e20; stroke-width: .8; }
svg .o-failed.retry { stroke: #7f0000; }
svg .edge { fill: none; stroke: #7b8794; stroke-width: 1.4; } svg .arrowhead { fill: #7b8794; }
svg .nodebox { fill: #fff; stroke: #7b8794; stroke-width: 1.2; }
svg a:hover .nodebox { stroke: var(--run); stroke-width: 2; }
svg .nodename { font-size: 13px; font-weight: 600; text-anchor: middle; fill: var(--ink); }
svg .nodecount { font-size: 11px; text-anchor: middle; fill: var(--muted); }
svg .axis { font-size: 10px; fill: var(--muted); text-anchor: middle; } svg .axis.start { text-anchor: start; } svg .axis.end { text-anchor: end; } svg .reqtext { fill: var(--fail); }
svg .tick { stroke: #eef0f2; } svg .lanesep { stroke: #e3e6ea; }
svg .lanename { font-size: 12px; font-weight: 600; fill: var(--ink); } svg .lanecount { font-size: 10px; fill: var(--muted); }
svg .runline { stroke: #6a1b9a; stroke-dasharray: 4 3; } svg .runlabel { font-size: 10px; fill: #6a1b9a; }
svg .histbar { fill: #5c7c99; } svg .req { stroke: var(--fail); stroke-width: 2; } svg .p95 { stroke: #ef6c00; stroke-dasharray: 3 2; stroke-width: 1.5; }
svg .baseline { stroke: #b8c0c8; }
svg.graph, svg.timeline { max-width: 100%; height: auto; }
@media print {
  body { background: #fff; font-size: 10.5pt; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  nav { display: none; }
  main { max-width: none; padding: 0; }
  section { border: none; padding: 0; margin: 0 0 14pt; break-inside: auto; }
  .scroll, .wide { max-height: none; overflow: visible; }
  .cards { display: block; } .card { margin-bottom: 8pt; }
  h2 { break-after: avoid; } tr, .card, figure, svg { break-inside: avoid; }
  a { color: inherit; text-decoration: none; }
}
"#;

fn n(x: u64) -> String {
    // 1234567 -> 1,234,567
    let s = x.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn opt(s: &Option<String>) -> String {
    s.as_deref().map(esc).unwrap_or_else(|| "<span class=\"muted\">–</span>".into())
}

fn code_text(exit: Option<i64>, sig: Option<i64>) -> String {
    match (exit, sig) {
        (_, Some(s)) => format!("signal {s}"),
        (Some(c), None) => format!("exit {c}"),
        (None, None) => "?".into(),
    }
}

fn legend_states() -> &'static str {
    r#"<div class="legend"><span><i class="s-succeeded"></i>succeeded</span><span><i class="s-failed"></i>failed</span><span><i class="s-skipped"></i>skipped</span><span><i class="s-running"></i>running</span><span><i class="s-pending"></i>pending</span><span><i class="s-held"></i>held</span><span><i class="s-cancelled"></i>cancelled</span></div>"#
}

fn legend_outcomes() -> &'static str {
    r#"<div class="legend"><span><i class="s-succeeded"></i>succeeded on its first try</span><span><i class="o-retry"></i>succeeded on a retry</span><span><i class="s-failed"></i>failed</span><span><i class="s-skipped"></i>skipped</span><span class="muted">dark outline: a retry (try 2 or later); dashed line: a restart begins</span></div>"#
}

/// The whole page.
pub fn render(d: &ReportData) -> String {
    let mut o = String::with_capacity(64 << 10);
    let title = format!("bpsc report — {}", d.campaign);
    let _ = write!(
        o,
        r##"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="bpsc {ver}">
<title>{title}</title>
<style>{CSS}</style>
</head><body>
<header class="top"><div class="in"><h1 id="campaign">{camp}</h1><span class="badge {state}" id="state">{state}</span>
<span class="muted">{runs} · generated {gen}</span>
<nav><a href="#steps">steps</a><a href="#graph">graph</a><a href="#timeline">timeline</a><a href="#resources">resources</a><a href="#failures">failures</a><a href="#hosts">hosts</a><a href="#provenance">provenance</a></nav></div></header>
<main>
"##,
        ver = esc(&d.bpsc_version),
        title = esc(&title),
        camp = esc(&d.campaign),
        state = esc(&d.state),
        runs = if d.runs.len() == 1 {
            "1 run".to_string()
        } else {
            format!("{} runs (the original and {} restart{})", d.runs.len(), d.runs.len() - 1, if d.runs.len() == 2 { "" } else { "s" })
        },
        gen = esc(&d.generated_at),
    );
    summary(d, &mut o);
    steps(d, &mut o);
    let _ = writeln!(
        o,
        r#"<section id="graph"><h2>Step graph</h2><p class="muted">From the {}. Each box: jobs done of the step's jobs; click a step for its details.</p><div class="wide">{}</div>{}</section>"#,
        esc(&d.graph.source),
        svg::step_graph(d),
        legend_states()
    );
    timeline(d, &mut o);
    resources(d, &mut o);
    failures(d, &mut o);
    hosts(d, &mut o);
    provenance(d, &mut o);
    runs(d, &mut o);
    if !d.unreadable.is_empty() {
        o.push_str("<section id=\"notes\"><h2>Could not read</h2><ul>");
        for u in &d.unreadable {
            let _ = write!(o, "<li class=\"mono\">{}</li>", esc(u));
        }
        o.push_str("</ul></section>\n");
    }
    let _ = write!(
        o,
        r#"<footer class="muted"><p>Written by <code>bpsc report</code> {}: {} attempts read; timeline {} (every attempt up to {} attempts, else binned in {} time bins); at most {} failures and {} hosts listed. The same data: <code>bpsc report --json</code>.</p></footer>
</main></body></html>
"#,
        esc(&d.bpsc_version),
        n(d.provenance.records),
        if d.timeline.mode == "attempts" { "draws every attempt" } else { "is binned" },
        n(d.limits.timeline_attempts as u64),
        d.limits.timeline_bins,
        n(d.limits.failure_rows as u64),
        d.limits.hosts
    );
    o
}

fn summary(d: &ReportData, o: &mut String) {
    let t = &d.totals;
    let _ = write!(
        o,
        r#"<section id="summary"><h2>Campaign</h2><div class="kpis">
<div class="kpi"><span class="muted">jobs</span><b id="total-jobs">{}</b></div>
<div class="kpi"><span class="muted">succeeded</span><b id="total-succeeded">{}</b></div>
<div class="kpi"><span class="muted">failed</span><b id="total-failed">{}</b></div>
<div class="kpi"><span class="muted">skipped</span><b id="total-skipped">{}</b></div>
<div class="kpi"><span class="muted">running</span><b id="total-running">{}</b></div>
<div class="kpi"><span class="muted">pending</span><b id="total-pending">{}</b></div>
<div class="kpi"><span class="muted">attempts</span><b id="total-attempts">{}</b></div>
<div class="kpi"><span class="muted">failed attempts</span><b>{}</b></div>
</div><p>{}</p>{}</section>
"#,
        n(t.jobs),
        n(t.succeeded),
        n(t.failed),
        n(t.skipped),
        n(t.running),
        n(t.pending),
        n(t.attempts),
        n(d.failures.failed_attempts),
        svg::progress_bar(t, 900.0, 16.0),
        legend_states()
    );
}

fn steps(d: &ReportData, o: &mut String) {
    o.push_str(r#"<section id="steps"><h2>Progress per step</h2><div class="wide"><table id="steps-table"><thead><tr><th>step</th><th>progress</th><th class="num">jobs</th><th class="num">succeeded</th><th class="num">failed</th><th class="num">skipped</th><th class="num">running</th><th class="num">pending</th><th class="num">held</th><th class="num">cancelled</th><th class="num">attempts</th><th class="num">retried</th></tr></thead><tbody>"#);
    for (i, s) in d.steps.iter().enumerate() {
        let c = &s.counts;
        let name = if s.kind == "compute" { esc(&s.step) } else { format!("<span class=\"muted\">({})</span>", esc(&s.step)) };
        let members = if s.member_steps.is_empty() {
            String::new()
        } else {
            format!("<br><span class=\"muted\">cluster of {}</span>", esc(&s.member_steps.join(", ")))
        };
        let _ = write!(
            o,
            r#"<tr id="step-{i}" data-step="{}" data-kind="{}"><td>{name}{members}</td><td>{}</td><td class="num">{}</td><td class="num" data-count="succeeded">{}</td><td class="num" data-count="failed">{}</td><td class="num" data-count="skipped">{}</td><td class="num" data-count="running">{}</td><td class="num" data-count="pending">{}</td><td class="num" data-count="held">{}</td><td class="num" data-count="cancelled">{}</td><td class="num" data-count="attempts">{}</td><td class="num">{}</td></tr>"#,
            esc(&s.step),
            esc(&s.kind),
            svg::progress_bar(c, 240.0, 12.0),
            n(c.jobs),
            n(c.succeeded),
            n(c.failed),
            n(c.skipped),
            n(c.running),
            n(c.pending),
            n(c.held),
            n(c.cancelled),
            n(c.attempts),
            n(s.retried_jobs),
        );
    }
    o.push_str("</tbody></table></div></section>\n");
}

fn timeline(d: &ReportData, o: &mut String) {
    let t = &d.timeline;
    let how = if t.mode == "attempts" {
        "Every attempt, from its start to its end, one lane per step.".to_string()
    } else {
        format!(
            "More than {} attempts: each lane shows how many attempts were running, per {} time bin, stacked by outcome.",
            n(d.limits.timeline_attempts as u64),
            duration_human(t.bin_seconds)
        )
    };
    let _ = writeln!(
        o,
        r#"<section id="timeline"><h2>Timeline of attempts</h2><p class="muted">{} Starts at {} and spans {}.</p><div class="wide">{}</div>{}</section>"#,
        esc(&how),
        opt(&t.start),
        esc(&duration_human(t.span_seconds)),
        svg::timeline(d, d.limits.lane_rows),
        legend_outcomes()
    );
}

fn resources(d: &ReportData, o: &mut String) {
    o.push_str(r#"<section id="resources"><h2>Wall time and peak memory against the request</h2><p class="muted">Over every attempt that ran (skipped ones excluded); peak memory is the payload's peak RSS as the job wrapper measured it. Red line: requested (first attempt); dashed orange: 95th percentile.</p>"#);
    // Every suggested change, one block per step (`memory` and `walltime` together).
    let mut per_step: Vec<(String, Vec<String>)> = Vec::new();
    for h in d.steps.iter().flat_map(|s| s.hints.iter()).filter(|h| !h.paste.is_empty()) {
        for st in &h.steps {
            let kv = format!("{} = {}", h.key, h.value);
            match per_step.iter_mut().find(|(n, _)| n == st) {
                Some((_, v)) if !v.contains(&kv) => v.push(kv),
                Some(_) => {}
                None => per_step.push((st.clone(), vec![kv])),
            }
        }
    }
    if !per_step.is_empty() {
        let text: Vec<String> = per_step.iter().map(|(st, kv)| format!("step {st} {{ {} }}", kv.join(", "))).collect();
        let _ = write!(
            o,
            "<h3>Right-sizing: paste into the campaign block of <code>{}</code></h3><pre class=\"paste\" id=\"paste-all\">{}</pre>",
            esc(&d.campaign),
            esc(&text.join("\n"))
        );
    }
    o.push_str("<div class=\"cards\">");
    for (i, s) in d.steps.iter().enumerate() {
        if s.kind != "compute" {
            continue;
        }
        let r = &s.requested;
        let _ = write!(
            o,
            r#"<div class="card" id="res-{i}" data-step="{}"><h3>{}</h3><p class="muted">requested: memory {}, walltime {}, cpus {}, retries {}{}</p>"#,
            esc(&s.step),
            esc(&s.step),
            r.memory_bytes.map(|b| size_human(b as f64)).unwrap_or_else(|| "–".into()),
            r.walltime_seconds.map(|w| duration_human(w as f64)).unwrap_or_else(|| "–".into()),
            r.cpus.map(|c| c.to_string()).unwrap_or_else(|| "–".into()),
            r.retries.map(|c| c.to_string()).unwrap_or_else(|| "–".into()),
            r.memory_growth.filter(|g| *g != 1.0).map(|g| format!(", memory ×{g} per retry")).unwrap_or_default()
        );
        let q = |x: &Option<Quantiles>, f: &dyn Fn(f64) -> String| {
            match x {
            Some(q) => format!(
                "<td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>",
                n(q.n as u64),
                esc(&f(q.min)),
                esc(&f(q.p50)),
                esc(&f(q.p90)),
                esc(&f(q.p95)),
                esc(&f(q.p99)),
                esc(&f(q.max))
            ),
            None => "<td colspan=\"7\" class=\"muted\">not measured</td>".into(),
        }
        };
        let mib = |v: f64| size_human(v * 1048576.0);
        let _ = write!(
            o,
            r#"<table><thead><tr><th></th><th class="num">n</th><th class="num">min</th><th class="num">median</th><th class="num">p90</th><th class="num">p95</th><th class="num">p99</th><th class="num">max</th></tr></thead><tbody><tr><td>wall time</td>{}</tr><tr><td>peak memory</td>{}</tr></tbody></table>"#,
            q(&s.wall_seconds, &duration_human),
            q(&s.peak_rss_mib, &mib)
        );
        o.push_str("<div class=\"charts\">");
        if let Some(h) = &s.wall_hist {
            let _ = write!(
                o,
                "<figure>{}<figcaption>wall time</figcaption></figure>",
                svg::histogram(h, r.walltime_seconds.map(|w| w as f64), s.wall_seconds.as_ref().map(|q| q.p95), "s")
            );
        }
        if let Some(h) = &s.rss_hist {
            let _ = write!(
                o,
                "<figure>{}<figcaption>peak memory</figcaption></figure>",
                svg::histogram(h, r.memory_bytes.map(|b| b as f64 / 1048576.0), s.peak_rss_mib.as_ref().map(|q| q.p95), "MiB")
            );
        }
        o.push_str("</div>");
        for h in &s.hints {
            let _ = write!(
                o,
                r#"<p class="hint {}" data-key="{}"><b>{}: {}</b> — {}</p>"#,
                esc(&h.action),
                esc(&h.key),
                esc(&h.key),
                esc(&h.action),
                esc(&h.evidence)
            );
            if !h.paste.is_empty() {
                let _ = write!(o, "<pre class=\"paste\">{}</pre>", esc(&h.paste));
            }
        }
        if s.hints.is_empty() && (s.wall_seconds.is_some() || s.peak_rss_mib.is_some()) {
            o.push_str("<p class=\"muted\">No hint: fewer than 3 measured attempts, or nothing requested in the task table.</p>");
        }
        o.push_str("</div>");
    }
    o.push_str("</div></section>\n");
}

fn failures(d: &ReportData, o: &mut String) {
    let f = &d.failures;
    let _ = write!(
        o,
        r#"<section id="failures"><h2>Failures</h2><p><b id="failed-attempts">{}</b> failed attempts; <b id="failed-jobs">{}</b> jobs still failed.</p>"#,
        n(f.failed_attempts),
        n(f.failed_jobs)
    );
    if f.failed_attempts == 0 {
        o.push_str("<p class=\"muted\">No attempt failed.</p></section>\n");
        return;
    }
    o.push_str("<div class=\"charts\"><div><h3>By exit status</h3><table><tbody>");
    for c in f.by_code.iter().take(20) {
        let _ = write!(o, "<tr><td>{}</td><td class=\"num\">{}</td></tr>", esc(&c.what), n(c.count));
    }
    o.push_str("</tbody></table></div><div><h3>By step</h3><table><tbody>");
    for c in &f.by_step {
        let _ = write!(o, "<tr><td>{}</td><td class=\"num\">{}</td></tr>", esc(&c.what), n(c.count));
    }
    o.push_str("</tbody></table></div></div>");
    o.push_str(r#"<h3>Failed attempts</h3><p class="muted">Jobs still failed first (their latest try), then earlier failed tries.</p><div class="scroll"><table id="failures-table"><thead><tr><th>step</th><th>job</th><th>data ID</th><th>exit</th><th>host</th><th>run / attempt (try)</th><th>now</th><th>log</th><th>error</th></tr></thead><tbody>"#);
    for r in &f.rows {
        let _ = write!(
            o,
            r#"<tr class="failure" data-job="{}"><td>{}</td><td class="mono">{}</td><td class="mono">{}</td><td>{}</td><td>{}</td><td class="num">{} / {} ({})</td><td>{}</td><td class="path mono">{}</td><td class="err">{}</td></tr>"#,
            esc(&r.job),
            esc(&r.step),
            esc(&r.job),
            esc(&r.data_id_text),
            esc(&code_text(r.exit_code, r.signal)),
            opt(&r.host),
            r.run + 1,
            r.attempt,
            r.try_number,
            esc(&r.final_state),
            log_cell(d, r),
            opt(&r.error),
        );
    }
    o.push_str("</tbody></table></div>");
    if f.not_shown > 0 {
        let _ = write!(
            o,
            "<p class=\"muted\" id=\"failures-not-shown\">… and {} more failed attempts not listed (<code>bpsc status --json</code> and <code>bpsc provenance query</code> list them all).</p>",
            n(f.not_shown)
        );
    }
    o.push_str("</section>\n");
}

/// A failure's log path, shortened to `logs/...` when it is under its run's submit
/// directory (the whole path in the cell's tooltip).
fn log_cell(d: &ReportData, r: &FailureRow) -> String {
    let Some(log) = &r.log else { return opt(&None) };
    let short = d
        .runs
        .get(r.run)
        .and_then(|run| log.strip_prefix(run.submit.trim_end_matches('/')))
        .and_then(|rest| rest.strip_prefix('/'))
        .map(|rest| if d.runs.len() > 1 { format!("run {}: {rest}", r.run + 1) } else { rest.to_string() });
    match short {
        Some(s) => format!("<span title=\"{}\">{}</span>", esc(log), esc(&s)),
        None => esc(log),
    }
}

fn hosts(d: &ReportData, o: &mut String) {
    let _ = write!(
        o,
        r#"<section id="hosts"><h2>Hosts with the most failures</h2><p class="muted">{} hosts ran attempts.</p>"#,
        n(d.hosts_total as u64)
    );
    if d.hosts.is_empty() {
        o.push_str("<p class=\"muted\">No host had a failed attempt.</p></section>\n");
        return;
    }
    o.push_str(r#"<table id="hosts-table"><thead><tr><th>host</th><th class="num">failed attempts</th><th class="num">attempts</th><th class="num">share failed</th></tr></thead><tbody>"#);
    for h in &d.hosts {
        let _ = write!(
            o,
            r#"<tr><td class="mono">{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{:.0}%</td></tr>"#,
            esc(&h.host),
            n(h.failures),
            n(h.attempts),
            h.failures as f64 * 100.0 / h.attempts.max(1) as f64
        );
    }
    o.push_str("</tbody></table></section>\n");
}

fn provenance(d: &ReportData, o: &mut String) {
    let p = &d.provenance;
    let _ = write!(
        o,
        r#"<section id="provenance"><h2>Provenance</h2><div class="kpis"><div class="kpi"><span class="muted">records</span><b>{}</b></div><div class="kpi"><span class="muted">inputs read</span><b>{}</b><span class="muted">{}</span></div><div class="kpi"><span class="muted">outputs written</span><b>{}</b><span class="muted">{}</span></div><div class="kpi"><span class="muted">environments</span><b>{}</b><span class="muted">distinct digests</span></div></div>"#,
        n(p.records),
        n(p.inputs_files),
        esc(&size_human(p.inputs_bytes as f64)),
        n(p.outputs_files),
        esc(&size_human(p.outputs_bytes as f64)),
        n(p.env_digests as u64)
    );
    o.push_str("<h3>Software</h3>");
    if p.software.is_empty() {
        o.push_str("<p class=\"muted\">No record names its software (<code>BPSC_SOFTWARE</code> unset).</p>");
    } else {
        o.push_str("<table><thead><tr><th>software</th><th class=\"num\">attempts</th></tr></thead><tbody>");
        for s in &p.software {
            let _ = write!(o, "<tr><td class=\"mono\">{}</td><td class=\"num\">{}</td></tr>", esc(&s.what), n(s.count));
        }
        o.push_str("</tbody></table>");
    }
    if !p.env_digest_top.is_empty() {
        o.push_str("<h3>Environment digests</h3><table><thead><tr><th>digest</th><th class=\"num\">attempts</th></tr></thead><tbody>");
        for s in &p.env_digest_top {
            let _ = write!(o, "<tr><td class=\"mono\">{}</td><td class=\"num\">{}</td></tr>", esc(&s.what), n(s.count));
        }
        o.push_str("</tbody></table>");
    }
    o.push_str("<h3>Inputs and outputs of succeeded attempts</h3>");
    if p.files.is_empty() {
        o.push_str("<p class=\"muted\">No file recorded.</p>");
    } else {
        o.push_str(r#"<table id="files-table"><thead><tr><th>direction</th><th>dataset</th><th class="num">files</th><th class="num">size</th><th class="num">without size</th></tr></thead><tbody>"#);
        for f in &p.files {
            let _ = write!(
                o,
                r#"<tr><td>{}</td><td class="mono">{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td></tr>"#,
                if f.direction == "in" { "input" } else { "output" },
                esc(&f.dataset),
                n(f.files),
                esc(&size_human(f.bytes as f64)),
                n(f.without_size)
            );
        }
        o.push_str("</tbody></table>");
    }
    o.push_str("</section>\n");
}

fn runs(d: &ReportData, o: &mut String) {
    o.push_str(r#"<section id="runs"><h2>Runs and configuration</h2><div class="wide"><table id="runs-table"><thead><tr><th>run</th><th>submit directory</th><th>engine</th><th>state</th><th class="num">jobs</th><th class="num">attempts</th><th>from – to</th><th>configuration</th></tr></thead><tbody>"#);
    for (i, r) in d.runs.iter().enumerate() {
        let mut cfg: Vec<String> = Vec::new();
        if let Some(f) = &r.campaign_file {
            cfg.push(format!(
                "campaign file <code>{}</code>{}",
                esc(f),
                if r.campaign_file_present { "" } else { " <span class=\"muted\">(no longer there)</span>" }
            ));
        }
        if let Some(of) = &r.restart_of {
            cfg.push(format!("restart of <code>{}</code>", esc(of)));
        }
        if !r.restart_from.is_empty() {
            cfg.push(format!("--from {}", esc(&r.restart_from.join(","))));
        }
        for s in &r.sets {
            cfg.push(format!("--set <code>{}</code>", esc(s)));
        }
        if !r.avoid_hosts_added.is_empty() {
            cfg.push(format!("avoids {}", esc(&r.avoid_hosts_added.join(", "))));
        }
        cfg.push(format!("bpsc {}", esc(&r.bpsc_version)));
        let _ = write!(
            o,
            r#"<tr><td class="num">{}</td><td class="mono path">{}</td><td>{}</td><td>{}</td><td class="num">{}</td><td class="num">{}</td><td class="mono">{} – {}</td><td>{}</td></tr>"#,
            i + 1,
            esc(&r.submit),
            esc(&r.backend),
            esc(&r.state),
            n(r.jobs),
            n(r.attempts),
            opt(&r.first_start),
            opt(&r.last_end),
            cfg.join("<br>")
        );
    }
    o.push_str("</tbody></table></div></section>\n");
}
