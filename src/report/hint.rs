//! Right-sizing hints: from what a step's attempts used to a setting an operator can paste.
//!
//! **Memory.**  Over every attempt that ran (skipped ones excluded) with a peak RSS: the
//! 95th percentile is reported against the request; the suggested `memory` is the 99th
//! percentile plus 20 % headroom, rounded up (to 128 MiB below 1 GiB, to 0.5 GiB below
//! 16 GiB, to whole GiB above).  It is suggested when it is below 70 % of the request
//! (asked too much) or above the request (attempts were at or over it); otherwise the
//! hint says to keep the request.
//!
//! **Wall time.**  Over the same attempts: the suggested `walltime` is the 99th
//! percentile times 1.5, rounded up (to 5 minutes below 2 h, to 30 minutes above; at
//! least 5 minutes).  It is suggested when below half the request, or when the 99th
//! percentile is above 90 % of the request (attempts near or past the limit).
//!
//! A cluster's jobs take the largest memory of their steps and the sum of their wall
//! times, so a cluster gets a memory hint written for each of its steps and no wall-time
//! hint (a `size` cluster of one step too: its jobs run several quanta).  Fewer than 3 measured attempts give no hint.

use super::model::{Hint, Quantiles, Requested};

const MIB: f64 = 1024.0 * 1024.0;
const GIB: f64 = 1024.0 * MIB;

/// Nearest-rank quantile of sorted values.
pub fn quantile(sorted: &[f64], p: f64) -> f64 {
    let n = sorted.len();
    sorted[(((n as f64) * p).ceil() as usize).clamp(1, n) - 1]
}

/// Quantiles of the values (sorted in place); `None` when there are none.
pub fn quantiles(v: &mut Vec<f64>) -> Option<Quantiles> {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    Some(Quantiles {
        n: v.len(),
        min: v[0],
        p50: quantile(v, 0.5),
        p90: quantile(v, 0.9),
        p95: quantile(v, 0.95),
        p99: quantile(v, 0.99),
        max: v[v.len() - 1],
    })
}

/// A size as bpsc writes it: `1.5GiB`, `384MiB`, `24GiB`.
pub fn size_text(bytes: f64) -> String {
    if bytes >= GIB {
        let g = bytes / GIB;
        if (g - g.round()).abs() < 1e-9 {
            format!("{}GiB", g.round() as u64)
        } else {
            format!("{:.1}GiB", g).replace(".0GiB", "GiB")
        }
    } else if bytes >= MIB {
        format!("{}MiB", (bytes / MIB).round() as u64)
    } else if bytes >= 1024.0 {
        format!("{}KiB", (bytes / 1024.0).round() as u64)
    } else {
        format!("{}B", bytes.round() as u64)
    }
}

/// A size for people: `1.3 GiB`, `812 MiB`.
pub fn size_human(bytes: f64) -> String {
    if bytes >= 1024.0 * GIB {
        format!("{:.1} TiB", bytes / (1024.0 * GIB))
    } else if bytes >= GIB {
        format!("{:.1} GiB", bytes / GIB)
    } else if bytes >= MIB {
        format!("{:.0} MiB", bytes / MIB)
    } else if bytes >= 1024.0 {
        format!("{:.0} KiB", bytes / 1024.0)
    } else {
        format!("{:.0} B", bytes)
    }
}

/// A duration as bpsc writes it (integer parts): `1h30m`, `45m`, `2d`.
pub fn duration_text(seconds: u64) -> String {
    if seconds == 0 {
        return "0s".into();
    }
    let (d, h, m, s) = (seconds / 86_400, seconds % 86_400 / 3600, seconds % 3600 / 60, seconds % 60);
    let mut out = String::new();
    for (v, u) in [(d, "d"), (h, "h"), (m, "m"), (s, "s")] {
        if v > 0 {
            out.push_str(&format!("{v}{u}"));
        }
    }
    out
}

/// A duration for people: `0.4 s`, `12 s`, `3.5 min`, `2.1 h`.
pub fn duration_human(seconds: f64) -> String {
    if seconds < 10.0 {
        format!("{seconds:.1} s")
    } else if seconds < 120.0 {
        format!("{seconds:.0} s")
    } else if seconds < 3600.0 {
        format!("{:.1} min", seconds / 60.0)
    } else {
        format!("{:.1} h", seconds / 3600.0)
    }
}

fn round_up_memory(bytes: f64) -> f64 {
    let step = if bytes < GIB {
        128.0 * MIB
    } else if bytes < 16.0 * GIB {
        0.5 * GIB
    } else {
        GIB
    };
    ((bytes / step).ceil() * step).max(128.0 * MIB)
}

fn round_up_walltime(seconds: f64) -> u64 {
    let step = if seconds < 7200.0 { 300.0 } else { 1800.0 };
    ((seconds / step).ceil() * step).max(300.0) as u64
}

fn pct(x: f64) -> String {
    let p = x * 100.0;
    if p >= 99.95 || p == p.round() {
        format!("{p:.0}%")
    } else {
        format!("{p:.1}%")
    }
}

/// The settings block to paste for `key = value` on each of `steps`.
fn paste(steps: &[String], key: &str, value: &str) -> String {
    steps.iter().map(|s| format!("step {s} {{ {key} = {value} }}")).collect::<Vec<_>>().join("\n")
}

/// Hints for one label: `label` is a step, or a cluster whose quanta belong to `steps`.
/// `rss_mib` and `wall` are sorted ascending.
pub fn hints(label: &str, steps: &[String], clustered: bool, req: &Requested, rss_mib: &[f64], wall: &[f64]) -> Vec<Hint> {
    let mut out = Vec::new();
    let cluster = clustered || steps.len() > 1 || steps.first().is_some_and(|s| s != label);
    let targets: Vec<String> = if steps.is_empty() { vec![label.to_string()] } else { steps.to_vec() };
    if let (Some(mem), true) = (req.memory_bytes, rss_mib.len() >= 3) {
        let mem = mem as f64;
        let used: Vec<f64> = rss_mib.iter().map(|m| m * MIB).collect();
        let p95 = quantile(&used, 0.95);
        let p99 = quantile(&used, 0.99);
        let sug = round_up_memory(p99 * 1.2);
        let fits = used.iter().filter(|u| **u <= sug).count() as f64 / used.len() as f64;
        let over = used.iter().filter(|u| **u > mem).count();
        let action = if sug < 0.7 * mem {
            "lower"
        } else if sug > mem && (p99 > mem * 0.95 || over > 0) {
            "raise"
        } else {
            "keep"
        };
        let value = if action == "keep" { size_text(mem) } else { size_text(sug) };
        let mut evidence = format!("{label}: 95% of {} attempts used < {} of {} requested", used.len(), size_human(p95), size_human(mem));
        match action {
            "keep" => evidence.push_str(&format!(
                "; the request fits {} of them",
                pct(used.iter().filter(|u| **u <= mem).count() as f64 / used.len() as f64)
            )),
            _ => evidence.push_str(&format!("; memory = {value} would fit {}", pct(fits))),
        }
        if over > 0 {
            evidence.push_str(&format!(" ({over} used more than requested)"));
        }
        if cluster {
            evidence.push_str(" (a cluster's jobs take the largest memory of their steps)");
        }
        let paste = if action == "keep" { String::new() } else { paste(&targets, "memory", &value) };
        out.push(Hint { key: "memory".into(), value, action: action.into(), evidence, steps: targets.clone(), paste });
    }
    if let (Some(wt), true, false) = (req.walltime_seconds, wall.len() >= 3, cluster) {
        let wt = wt as f64;
        let p95 = quantile(wall, 0.95);
        let p99 = quantile(wall, 0.99);
        let sug = round_up_walltime(p99 * 1.5);
        let fits = wall.iter().filter(|w| **w <= sug as f64).count() as f64 / wall.len() as f64;
        let action = if (sug as f64) < 0.5 * wt {
            "lower"
        } else if p99 > 0.9 * wt {
            "raise"
        } else {
            "keep"
        };
        let value = if action == "keep" { duration_text(wt as u64) } else { duration_text(sug) };
        let evidence = match action {
            "keep" => format!("{label}: 95% of {} attempts ran < {} of {} requested", wall.len(), duration_human(p95), duration_human(wt)),
            _ => format!(
                "{label}: 95% of {} attempts ran < {} of {} requested; walltime = {value} would fit {}",
                wall.len(),
                duration_human(p95),
                duration_human(wt),
                pct(fits)
            ),
        };
        let paste = if action == "keep" { String::new() } else { paste(&targets, "walltime", &value) };
        out.push(Hint { key: "walltime".into(), value, action: action.into(), evidence, steps: targets.clone(), paste });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts() {
        assert_eq!(size_text(1.5 * GIB), "1.5GiB");
        assert_eq!(size_text(4.0 * GIB), "4GiB");
        assert_eq!(size_text(384.0 * MIB), "384MiB");
        assert_eq!(duration_text(5400), "1h30m");
        assert_eq!(duration_text(300), "5m");
        assert_eq!(duration_text(2 * 86_400), "2d");
        assert_eq!(round_up_memory(1.25 * GIB), 1.5 * GIB);
        assert_eq!(round_up_memory(10.0 * MIB), 128.0 * MIB);
        assert_eq!(round_up_walltime(1.0), 300);
        assert_eq!(round_up_walltime(7300.0), 9000);
    }

    #[test]
    fn the_issue_example() {
        // 100 attempts of isr between 0.7 and 1.2 GiB, 4 GiB asked.
        let rss: Vec<f64> = (0..100).map(|i| 700.0 + i as f64 * 5.2).collect();
        let req = Requested { memory_bytes: Some(4 << 30), walltime_seconds: Some(7200), ..Default::default() };
        let wall: Vec<f64> = (0..100).map(|i| 60.0 + i as f64).collect();
        let h = hints("isr", &["isr".into()], false, &req, &rss, &wall);
        assert_eq!(h[0].action, "lower");
        assert_eq!(h[0].paste, "step isr { memory = 1.5GiB }");
        assert!(
            h[0].evidence.contains("95% of 100 attempts used < 1.2 GiB of 4.0 GiB requested; memory = 1.5GiB would fit 100%"),
            "{}",
            h[0].evidence
        );
        assert_eq!(h[1].paste, "step isr { walltime = 5m }");
        // Attempts over the request: raise.
        let rss: Vec<f64> = (0..10).map(|i| 3500.0 + i as f64 * 100.0).collect();
        let h = hints("isr", &["isr".into()], false, &req, &rss, &[]);
        assert_eq!(h[0].action, "raise", "{h:?}");
        assert_eq!(h[0].value, "5.5GiB");
        // A cluster: memory for each step, no wall time.
        let h = hints("single_frame", &["isr".into(), "calibrate".into()], true, &req, &[100.0, 100.0, 100.0], &wall);
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].paste, "step isr { memory = 128MiB }\nstep calibrate { memory = 128MiB }");
    }
}
