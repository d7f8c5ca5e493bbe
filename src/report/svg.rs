//! Inline SVG drawings: progress bars, the step graph, the timeline, histograms.  Every
//! text that comes from a submit directory goes through [`esc`]; numbers are formatted
//! here; colours are CSS classes of the page (see `html.rs`), never values from data.

use std::fmt::Write;

use super::hint::{duration_human, size_human};
use super::model::*;

/// Escape text for HTML and SVG, in element content and in quoted attribute values alike:
/// `& < > " '`, and control characters (other than tab and newline) become U+FFFD.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' => out.push(c),
            c if c.is_control() => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// At most `n` characters, with an ellipsis when cut (before escaping).
pub fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// A stacked bar of a step's job states.
pub fn progress_bar(c: &crate::status::Counts, width: f64, height: f64) -> String {
    let mut out = format!(
        r#"<svg class="bar" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" role="img" aria-label="{}">"#,
        esc(&format!(
            "{} succeeded, {} failed, {} skipped, {} cancelled, {} running, {} pending, {} held of {}",
            c.succeeded, c.failed, c.skipped, c.cancelled, c.running, c.pending, c.held, c.jobs
        ))
    );
    let total = c.jobs.max(1) as f64;
    let mut x = 0.0;
    for (n, class) in [
        (c.succeeded, "s-succeeded"),
        (c.failed, "s-failed"),
        (c.skipped, "s-skipped"),
        (c.cancelled, "s-cancelled"),
        (c.running, "s-running"),
        (c.pending, "s-pending"),
        (c.held, "s-held"),
    ] {
        if n == 0 {
            continue;
        }
        let w = n as f64 / total * width;
        let _ = write!(out, r#"<rect class="{class}" x="{x:.2}" y="0" width="{w:.2}" height="{height:.0}"/>"#);
        x += w;
    }
    let _ = write!(out, r#"<rect class="frame" x="0" y="0" width="{width:.0}" height="{height:.0}"/></svg>"#);
    out
}

/// The step graph, layered by longest path from a root, edges drawn parent to child.
pub fn step_graph(d: &ReportData) -> String {
    let g = &d.graph;
    if g.nodes.is_empty() {
        return "<p class=\"muted\">No compute steps.</p>".into();
    }
    let (nw, nh) = (150.0, 52.0);
    let max_level = g.levels.iter().copied().max().unwrap_or(0) as usize;
    let mut rows: Vec<Vec<usize>> = vec![Vec::new(); max_level + 1];
    for (i, &l) in g.levels.iter().enumerate() {
        rows[l as usize].push(i);
    }
    let widest = rows.iter().map(|r| r.len()).max().unwrap_or(1);
    // A long chain reads left to right; a wide graph top to bottom.
    let horizontal = rows.len() > widest;
    let (along, across) = if horizontal { (nw + 40.0, nh + 18.0) } else { (nh + 46.0, nw + 24.0) };
    let (width, height) = if horizontal {
        (rows.len() as f64 * along - 40.0 + 20.0, (widest as f64 * across - 18.0 + 20.0).max(nh + 20.0))
    } else {
        ((widest as f64 * across - 24.0 + 20.0).max(400.0), rows.len() as f64 * along - 46.0 + 20.0)
    };
    // Top-left corner of each node (index into g.nodes), rows centred across.
    let mut pos: Vec<(f64, f64)> = vec![(0.0, 0.0); g.nodes.len()];
    for (l, row) in rows.iter().enumerate() {
        for (k, &i) in row.iter().enumerate() {
            if horizontal {
                let y0 = (height - (row.len() as f64 * across - 18.0)) / 2.0;
                pos[i] = (10.0 + l as f64 * along, y0 + k as f64 * across);
            } else {
                let x0 = (width - (row.len() as f64 * across - 24.0)) / 2.0;
                pos[i] = (x0 + k as f64 * across, 10.0 + l as f64 * along);
            }
        }
    }
    let node_of = |step: usize| g.nodes.iter().position(|&s| s == step);
    let mut out = format!(
        r#"<svg class="graph" viewBox="0 0 {width:.0} {height:.0}" width="{width:.0}" height="{height:.0}" role="img" aria-label="step graph"><defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" class="arrowhead"/></marker></defs>"#
    );
    for &(a, b) in &g.edges {
        let (Some(a), Some(b)) = (node_of(a), node_of(b)) else { continue };
        let path = if horizontal {
            let (x1, y1) = (pos[a].0 + nw, pos[a].1 + nh / 2.0);
            let (x2, y2) = (pos[b].0 - 2.0, pos[b].1 + nh / 2.0);
            let mx = (x1 + x2) / 2.0;
            format!("M{x1:.1},{y1:.1} C{mx:.1},{y1:.1} {mx:.1},{y2:.1} {x2:.1},{y2:.1}")
        } else {
            let (x1, y1) = (pos[a].0 + nw / 2.0, pos[a].1 + nh);
            let (x2, y2) = (pos[b].0 + nw / 2.0, pos[b].1 - 2.0);
            let my = (y1 + y2) / 2.0;
            format!("M{x1:.1},{y1:.1} C{x1:.1},{my:.1} {x2:.1},{my:.1} {x2:.1},{y2:.1}")
        };
        let _ = write!(out, r#"<path class="edge" d="{path}" marker-end="url(#arrow)"/>"#);
    }
    for (i, &s) in g.nodes.iter().enumerate() {
        let st = &d.steps[s];
        let (x, y) = pos[i];
        let cx = x + nw / 2.0;
        let c = &st.counts;
        let _ = write!(
            out,
            r##"<a href="#step-{s}"><g class="node" data-step="{name}"><title>{title}</title><rect class="nodebox" x="{x:.1}" y="{y:.1}" width="{nw:.0}" height="{nh:.0}" rx="6"/><text class="nodename" x="{cx:.1}" y="{ty:.1}">{short}</text><text class="nodecount" x="{cx:.1}" y="{cy:.1}">{done}/{jobs} done{fail}</text>"##,
            name = esc(&st.step),
            title = esc(&format!("{}: {} jobs, {} succeeded, {} failed, {} skipped", st.step, c.jobs, c.succeeded, c.failed, c.skipped)),
            short = esc(&clip(&st.step, 19)),
            ty = y + 17.0,
            cy = y + 31.0,
            done = c.succeeded,
            jobs = c.jobs,
            fail = if c.failed > 0 { format!(", {} failed", c.failed) } else { String::new() },
        );
        // Mini progress bar along the bottom of the node.
        let (bx, by, bw) = (x + 8.0, y + nh - 12.0, nw - 16.0);
        let total = c.jobs.max(1) as f64;
        let mut off = 0.0;
        for (n, class) in [
            (c.succeeded, "s-succeeded"),
            (c.failed, "s-failed"),
            (c.skipped, "s-skipped"),
            (c.cancelled, "s-cancelled"),
            (c.running, "s-running"),
            (c.pending, "s-pending"),
            (c.held, "s-held"),
        ] {
            if n == 0 {
                continue;
            }
            let w = n as f64 / total * bw;
            let _ = write!(out, r#"<rect class="{class}" x="{:.1}" y="{by:.1}" width="{w:.1}" height="6"/>"#, bx + off);
            off += w;
        }
        out.push_str("</g></a>");
    }
    out.push_str("</svg>");
    out
}

/// Elapsed time for axis labels: `0`, `45s`, `12m`, `3h20m`, `2d4h`.
fn elapsed(s: f64) -> String {
    let s = s.max(0.0).round() as u64;
    if s == 0 {
        "0".into()
    } else if s < 120 {
        format!("{s}s")
    } else if s < 600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else if s < 7200 {
        format!("{}m", s / 60)
    } else if s < 172_800 {
        format!("{}h{:02}m", s / 3600, s % 3600 / 60)
    } else {
        format!("{}d{}h", s / 86_400, s % 86_400 / 3600)
    }
}

fn outcome_class(o: &str) -> &'static str {
    match o {
        "succeeded" => "o-succeeded",
        "retry_succeeded" => "o-retry",
        "failed" => "o-failed",
        _ => "o-skipped",
    }
}

/// The timeline: one lane per step; every attempt as a bar (packed into rows), or, past the
/// threshold, the number of attempts running per time bin, stacked by outcome.
pub fn timeline(d: &ReportData, max_rows: usize) -> String {
    let t = &d.timeline;
    if t.start.is_none() || t.lanes.iter().all(|l| l.attempts_total == 0) {
        return "<p class=\"muted\">No attempt has a start time yet.</p>".into();
    }
    let (left, width, plot) = (150.0, 1000.0, 830.0);
    let span = t.span_seconds.max(1.0);
    let xof = |s: f64| left + (s / span).clamp(0.0, 1.0) * plot;
    let row_h = 6.0;
    let lanes: Vec<&TimelineLane> = t.lanes.iter().filter(|l| l.attempts_total > 0).collect();
    // Lane layouts first (heights).
    struct Lane<'a> {
        lane: &'a TimelineLane,
        rows: Vec<usize>,
        n_rows: usize,
        height: f64,
    }
    let mut layouts: Vec<Lane> = Vec::new();
    for lane in lanes {
        if t.mode == "attempts" {
            let mut ends: Vec<f64> = Vec::new();
            let mut rows = Vec::with_capacity(lane.attempts.len());
            for a in &lane.attempts {
                let slot = ends.iter().position(|e| *e <= a.start + span * 0.002);
                let r = match slot {
                    Some(r) => r,
                    None if ends.len() < max_rows => {
                        ends.push(0.0);
                        ends.len() - 1
                    }
                    // All rows busy: the row that frees first (bars overlap there).
                    None => ends.iter().enumerate().min_by(|a, b| a.1.total_cmp(b.1)).map(|x| x.0).unwrap_or(0),
                };
                ends[r] = ends[r].max(a.end);
                rows.push(r);
            }
            let n_rows = ends.len().max(1);
            layouts.push(Lane { lane, rows, n_rows, height: (n_rows as f64 * row_h + 10.0).max(32.0) });
        } else {
            layouts.push(Lane { lane, rows: Vec::new(), n_rows: 0, height: 44.0 });
        }
    }
    let top = 22.0;
    let height = top + layouts.iter().map(|l| l.height).sum::<f64>() + 8.0;
    let mut out = format!(
        r#"<svg class="timeline" viewBox="0 0 {width:.0} {height:.0}" width="{width:.0}" height="{height:.0}" role="img" aria-label="timeline of attempts">"#
    );
    // Axis: ticks over the span.
    for k in 0..=6 {
        let s = span * k as f64 / 6.0;
        let x = xof(s);
        let _ = write!(
            out,
            r#"<line class="tick" x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}"/><text class="{}" x="{x:.1}" y="12">+{}</text>"#,
            top - 4.0,
            height - 6.0,
            match k {
                0 => "axis start",
                6 => "axis end",
                _ => "axis",
            },
            elapsed(s)
        );
    }
    // Runs (restarts) as dashed lines.
    for (r, s) in t.run_starts.iter().enumerate() {
        if let (Some(s), true) = (s, r > 0) {
            let x = xof(*s);
            let _ = write!(
                out,
                r#"<line class="runline" x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}"/><text class="runlabel" x="{:.1}" y="{:.1}">run {}</text>"#,
                top - 6.0,
                height - 4.0,
                x + 3.0,
                top + 6.0,
                r + 1
            );
        }
    }
    let mut y = top;
    for l in &layouts {
        let st = &d.steps[l.lane.step];
        let _ = write!(
            out,
            r##"<g class="lane" data-step="{name}"><line class="lanesep" x1="0" y1="{y:.1}" x2="{width:.0}" y2="{y:.1}"/><text class="lanename" x="4" y="{ty:.1}"><title>{name}</title>{short}</text><text class="lanecount" x="4" y="{cy:.1}">{n} attempts</text>"##,
            name = esc(&st.step),
            short = esc(&clip(&st.step, 20)),
            ty = y + 13.0,
            cy = y + 25.0,
            n = l.lane.attempts_total,
        );
        if t.mode == "attempts" {
            for (a, &r) in l.lane.attempts.iter().zip(&l.rows) {
                let x0 = xof(a.start);
                let w = (xof(a.end) - x0).max(1.0);
                let ry = y + 5.0 + (r % l.n_rows.max(1)) as f64 * row_h;
                let retry = if a.try_number > 1 { " retry" } else { "" };
                let _ = write!(
                    out,
                    r#"<rect class="att {}{retry}" x="{x0:.1}" y="{ry:.1}" width="{w:.1}" height="{:.0}"><title>{}</title></rect>"#,
                    outcome_class(&a.outcome),
                    row_h - 1.0,
                    esc(&format!(
                        "{} — run {} attempt {} (try {}), {}, {}{}",
                        a.job,
                        a.run + 1,
                        a.attempt,
                        a.try_number,
                        a.outcome.replace('_', " "),
                        duration_human(a.end - a.start),
                        a.host.as_deref().map(|h| format!(", on {h}")).unwrap_or_default()
                    ))
                );
            }
        } else {
            let maxc = l.lane.bins.iter().map(|b| b.iter().sum::<f32>()).fold(0.0f32, f32::max).max(1e-6) as f64;
            let bw = plot / l.lane.bins.len().max(1) as f64;
            let lane_h = l.height - 8.0;
            let mut paths = [String::new(), String::new(), String::new(), String::new()];
            for (b, v) in l.lane.bins.iter().enumerate() {
                let mut base = y + 4.0 + lane_h;
                let x = left + b as f64 * bw;
                for (o, p) in paths.iter_mut().enumerate() {
                    let hgt = v[o] as f64 / maxc * lane_h;
                    if hgt <= 0.01 {
                        continue;
                    }
                    base -= hgt;
                    let _ = write!(p, "M{x:.1},{base:.1}h{bw:.2}v{hgt:.2}h{:.2}z", -bw);
                }
            }
            for (o, p) in paths.iter().enumerate() {
                if !p.is_empty() {
                    let _ = write!(out, r#"<path class="att {}" d="{p}"/>"#, outcome_class(OUTCOMES[o]));
                }
            }
            let _ = write!(out, r#"<text class="lanecount" x="4" y="{:.1}">at most {:.0} running</text>"#, y + 37.0, maxc.ceil());
        }
        out.push_str("</g>");
        y += l.height;
    }
    out.push_str("</svg>");
    out
}

/// A histogram with the requested value (and the 95th percentile) marked.
pub fn histogram(h: &Histogram, requested: Option<f64>, p95: Option<f64>, unit: &str) -> String {
    let (w, ht, left, bottom, top) = (300.0, 104.0, 6.0, 16.0, 16.0);
    let plot_w = w - 2.0 * left;
    let plot_h = ht - bottom - top;
    let maxc = h.counts.iter().copied().max().unwrap_or(0).max(1) as f64;
    let bw = plot_w / h.counts.len().max(1) as f64;
    let fmt = |v: f64| match unit {
        "MiB" => size_human(v * 1048576.0),
        _ => duration_human(v),
    };
    let mut out = format!(
        r#"<svg class="hist" viewBox="0 0 {w:.0} {ht:.0}" width="{w:.0}" height="{ht:.0}" role="img" aria-label="{}">"#,
        esc(&format!("histogram of {} values", h.counts.iter().sum::<u64>()))
    );
    for (i, c) in h.counts.iter().enumerate() {
        if *c == 0 {
            continue;
        }
        let bh = (*c as f64 / maxc * plot_h).max(1.0);
        let x = left + i as f64 * bw;
        let lo = h.lo + (h.hi - h.lo) * i as f64 / h.counts.len() as f64;
        let hi = h.lo + (h.hi - h.lo) * (i + 1) as f64 / h.counts.len() as f64;
        let _ = write!(
            out,
            r#"<rect class="histbar" x="{x:.1}" y="{:.1}" width="{:.1}" height="{bh:.1}"><title>{}</title></rect>"#,
            top + plot_h - bh,
            (bw - 0.5).max(0.5),
            esc(&format!("{}–{}: {c}", fmt(lo), fmt(hi)))
        );
    }
    let xof = |v: f64| left + ((v - h.lo) / (h.hi - h.lo).max(1e-9)).clamp(0.0, 1.0) * plot_w;
    if let Some(p) = p95 {
        let x = xof(p);
        let _ = write!(
            out,
            r#"<line class="p95" x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}"><title>95th percentile: {}</title></line>"#,
            top - 2.0,
            top + plot_h,
            esc(&fmt(p))
        );
    }
    if let Some(r) = requested.filter(|r| *r <= h.hi) {
        let x = xof(r);
        let _ = write!(
            out,
            r#"<line class="req" x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}"><title>requested: {}</title></line>"#,
            top - 6.0,
            top + plot_h,
            esc(&fmt(r))
        );
    }
    let _ = write!(
        out,
        r#"<line class="baseline" x1="{left:.0}" y1="{b:.1}" x2="{:.1}" y2="{b:.1}"/><text class="axis start" x="{left:.0}" y="{ty:.1}">0</text><text class="axis end" x="{:.1}" y="{ty:.1}">{}</text>{off}</svg>"#,
        left + plot_w,
        left + plot_w,
        esc(&fmt(h.hi)),
        b = top + plot_h,
        ty = ht - 3.0,
        off = match requested {
            Some(r) if r > h.hi =>
                format!(r#"<text class="axis end reqtext" x="{:.1}" y="10">requested {} →</text>"#, left + plot_w, esc(&fmt(r))),
            _ => String::new(),
        }
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_controls() {
        assert_eq!(esc(r#"<a href="x">'&'</a>"#), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
        assert_eq!(esc("a\u{0}b\u{1b}c\td"), "a\u{FFFD}b\u{FFFD}c\td");
        assert_eq!(clip("abcdef", 4), "abc…");
        assert_eq!(elapsed(5400.0), "90m");
        assert_eq!(elapsed(140.0), "2m20s");
        assert_eq!(elapsed(9000.0), "2h30m");
    }
}
