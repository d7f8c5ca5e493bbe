//! What an engine says about its jobs, in one shape for every engine.
//!
//! Each engine parser fills an [`EngineState`]: one [`EngineJob`] per engine job name (a
//! DAGMan node, a Pegasus job, a Slurm array task, a Nextflow task tag), whether the
//! workflow as a whole has finished, the sources it read and what it could not read.
//! Parsers never panic on what they read: a line they do not understand is counted and
//! reported, and a last line without its newline (a log still being written) is left for
//! the next look.

use std::collections::BTreeMap;

/// A job's state as the engine sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EState {
    /// Not yet submitted, queued, held, or waiting for a retry.
    Pending,
    Running,
    Succeeded,
    Failed,
    /// Will never run: an ancestor failed (DAGMan futile, Slurm DependencyNeverSatisfied,
    /// cancelled before it started, `bpsc wrap --skip-failed-parents`).
    Skipped,
    /// Held in the queue: it starts only when released (`bpsc hold`, or the engine's own hold).
    Held,
    /// Removed by `bpsc cancel` before it succeeded.
    Cancelled,
}

impl EState {
    pub fn as_str(self) -> &'static str {
        match self {
            EState::Pending => "pending",
            EState::Running => "running",
            EState::Succeeded => "succeeded",
            EState::Failed => "failed",
            EState::Skipped => "skipped",
            EState::Held => "held",
            EState::Cancelled => "cancelled",
        }
    }
    pub fn is_final(self) -> bool {
        matches!(self, EState::Succeeded | EState::Failed | EState::Skipped | EState::Cancelled)
    }
}

/// One engine job.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EngineJob {
    pub state: Option<EState>,
    pub exit_code: Option<i64>,
    pub signal: Option<i64>,
    pub host: Option<String>,
    /// Submissions (or executions) the engine recorded for it.
    pub attempts: u32,
    /// Start of the current or last execution, seconds since the epoch.
    pub started: Option<i64>,
    pub wall_seconds: Option<f64>,
    pub peak_rss_kib: Option<u64>,
    /// Engine's words: hold reason, status details, Slurm reason.
    pub detail: Option<String>,
}

/// Everything one look at an engine gave.
#[derive(Clone, Debug, Default)]
pub struct EngineState {
    pub engine: String,
    /// Keyed by the engine's job name.
    pub jobs: BTreeMap<String, EngineJob>,
    /// The workflow has ended (DAGMan exited, DAGMAN_FINISHED, nothing left in the queue).
    pub finished: Option<bool>,
    /// The workflow ended in failure (DAGMan exit status, Pegasus DAGMAN_FINISHED 1).
    pub failed: Option<bool>,
    /// Files read and commands run.
    pub sources: Vec<String>,
    /// What could not be read, one sentence each.
    pub unreadable: Vec<String>,
    /// Events, lines or records understood.
    pub events: u64,
}

impl EngineState {
    pub fn new(engine: &str) -> EngineState {
        EngineState { engine: engine.into(), ..Default::default() }
    }
    pub fn job(&mut self, name: &str) -> &mut EngineJob {
        if !self.jobs.contains_key(name) {
            self.jobs.insert(name.to_string(), EngineJob::default());
        }
        // The entry was just ensured.
        self.jobs.entry(name.to_string()).or_default()
    }
    /// Overlay a later (more current) source: its job entries replace fields they set.
    pub fn overlay(&mut self, later: EngineState) {
        for (name, j) in later.jobs {
            let e = self.jobs.entry(name).or_default();
            if j.state.is_some() {
                e.state = j.state;
                e.exit_code = j.exit_code;
                e.signal = j.signal;
            }
            if j.host.is_some() {
                e.host = j.host;
            }
            e.attempts = e.attempts.max(j.attempts);
            if j.started.is_some() {
                e.started = j.started;
            }
            if j.wall_seconds.is_some() {
                e.wall_seconds = j.wall_seconds;
            }
            if j.peak_rss_kib.is_some() {
                e.peak_rss_kib = j.peak_rss_kib;
            }
            if j.detail.is_some() {
                e.detail = j.detail;
            }
        }
        if later.finished.is_some() {
            self.finished = later.finished;
        }
        if later.failed.is_some() {
            self.failed = later.failed;
        }
        self.sources.extend(later.sources);
        self.unreadable.extend(later.unreadable);
        self.events += later.events;
    }
}

/// Complete lines of `text`, and a note when the last one has no newline yet.
pub fn complete_lines<'a>(text: &'a str, what: &str, unreadable: &mut Vec<String>) -> std::str::Lines<'a> {
    let body = match text.rfind('\n') {
        Some(p) if p + 1 < text.len() => {
            unreadable.push(format!("{what}: partial last line ({} bytes) not read yet", text.len() - p - 1));
            &text[..p + 1]
        }
        None if !text.is_empty() => {
            unreadable.push(format!("{what}: partial last line ({} bytes) not read yet", text.len()));
            ""
        }
        _ => text,
    };
    body.lines()
}

/// Read a file as text (invalid UTF-8 replaced); `None` and a note when it cannot be read.
pub fn read_text(path: &std::path::Path, unreadable: &mut Vec<String>) -> Option<String> {
    match std::fs::read(path) {
        Ok(b) => Some(String::from_utf8_lossy(&b).into_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            unreadable.push(format!("{}: {e}", path.display()));
            None
        }
    }
}

/// Seconds since the epoch of a local civil time (the engines' logs write local time), in
/// the system's time zone (`TZ`, else `/etc/localtime`), by jiff: a time in a DST gap or
/// fold resolves as Temporal's "compatible" rule does.  None for an impossible date.
pub fn local_epoch(y: i64, mo: i64, d: i64, h: i64, mi: i64, s: i64) -> Option<i64> {
    let n = |v: i64| i8::try_from(v).ok();
    // A leap second (:60) is read as the next second, as mktime normalised it.
    let (s, extra) = if s == 60 { (59, 1) } else { (s, 0) };
    let dt = jiff::civil::DateTime::new(i16::try_from(y).ok()?, n(mo)?, n(d)?, n(h)?, n(mi)?, n(s)?, 0).ok()?;
    let z = dt.to_zoned(jiff::tz::TimeZone::system()).ok()?;
    Some(z.timestamp().as_second() + extra)
}

/// Days from 1970-01-01 of a civil date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `YYYY-MM-DD?HH:MM:SS[.fff][Z]`: (date, time, fraction, utc).
fn split_datetime(s: &str) -> Option<([i64; 6], f64, bool)> {
    let s = s.trim();
    let b = s.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !(b[10] == b'T' || b[10] == b' ') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r).and_then(|x| x.parse::<i64>().ok());
    let v = [num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?];
    let rest = &s[19..];
    let (frac, rest) = match rest.strip_prefix('.') {
        Some(r) => {
            let n = r.bytes().take_while(|c| c.is_ascii_digit()).count();
            (format!("0.{}", &r[..n]).parse::<f64>().unwrap_or(0.0), &r[n..])
        }
        None => (0.0, rest),
    };
    Some((v, frac, rest == "Z" || rest == "+00:00"))
}

/// An RFC 3339 UTC time (what `bpsc wrap` writes) as seconds since the epoch.
pub fn utc_epoch(s: &str) -> Option<f64> {
    let (v, frac, _) = split_datetime(s)?;
    Some((days_from_civil(v[0], v[1], v[2]) * 86400 + v[3] * 3600 + v[4] * 60 + v[5]) as f64 + frac)
}

/// `YYYY-MM-DD HH:MM:SS` or `YYYY-MM-DDTHH:MM:SS` in local time (UTC when it ends in Z).
pub fn datetime_epoch(s: &str) -> Option<i64> {
    let (v, _, utc) = split_datetime(s)?;
    if utc {
        return Some(days_from_civil(v[0], v[1], v[2]) * 86400 + v[3] * 3600 + v[4] * 60 + v[5]);
    }
    local_epoch(v[0], v[1], v[2], v[3], v[4], v[5])
}

/// `[DD-]HH:MM:SS`, `MM:SS` (Slurm Elapsed) as seconds.
pub fn clock_seconds(s: &str) -> Option<f64> {
    let (days, rest) = match s.split_once('-') {
        Some((d, r)) => (d.parse::<f64>().ok()?, r),
        None => (0.0, s),
    };
    let parts: Vec<f64> = rest.split(':').map(|p| p.parse::<f64>().ok()).collect::<Option<Vec<_>>>()?;
    let secs = match parts.as_slice() {
        [h, m, s] => h * 3600.0 + m * 60.0 + s,
        [m, s] => m * 60.0 + s,
        [s] => *s,
        _ => return None,
    };
    Some(days * 86400.0 + secs)
}

/// Memory with a unit (`12.3 MB`, `512K`, `1.5G`, `2048` KiB when bare) as KiB.
pub fn memory_kib(s: &str, bare_unit_kib: f64) -> Option<u64> {
    let s = s.trim();
    if s.is_empty() || s == "-" {
        return None;
    }
    let n = s.bytes().take_while(|c| c.is_ascii_digit() || *c == b'.').count();
    let v: f64 = s[..n].parse().ok()?;
    let unit = s[n..].trim().to_ascii_uppercase();
    let k = match unit.as_str() {
        "" => bare_unit_kib,
        "B" => 1.0 / 1024.0,
        "K" | "KB" | "KIB" => 1.0,
        "M" | "MB" | "MIB" => 1024.0,
        "G" | "GB" | "GIB" => 1024.0 * 1024.0,
        "T" | "TB" | "TIB" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    Some((v * k).round() as u64)
}

/// Nextflow durations: `1h 2m 3s`, `1.5s`, `350ms`, `2d 1h`, or bare milliseconds.
pub fn duration_seconds(s: &str) -> Option<f64> {
    let s = s.trim();
    if s.is_empty() || s == "-" {
        return None;
    }
    if let Ok(ms) = s.parse::<f64>() {
        return Some(ms / 1000.0);
    }
    let mut total = 0.0;
    for part in s.split_whitespace() {
        let n = part.bytes().take_while(|c| c.is_ascii_digit() || *c == b'.').count();
        let v: f64 = part[..n].parse().ok()?;
        total += v * match &part[n..] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            _ => return None,
        };
    }
    Some(total)
}

#[cfg(test)]
mod tests {

    /// Local times read as coreutils' `date` reads them in the same time zone; impossible
    /// dates (and years no log has) are None, never a panic or a wrapped value.
    #[test]
    fn local_epoch_agrees_with_date_and_refuses_impossible_dates() {
        for (y, mo, d, h, mi, s) in [(2026, 12, 7, 12, 0, 0), (2026, 7, 1, 23, 59, 59), (1970, 1, 1, 0, 0, 0), (2024, 2, 29, 6, 30, 15)] {
            let text = format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}");
            let out = std::process::Command::new("date").args(["-d", &text, "+%s"]).output().expect("date");
            let want: i64 = String::from_utf8_lossy(&out.stdout).trim().parse().expect("date prints seconds");
            assert_eq!(local_epoch(y, mo, d, h, mi, s), Some(want), "{text}");
        }
        for bad in [(2026, 2, 30, 0, 0, 0), (2026, 13, 1, 0, 0, 0), (99_999_999_999, 1, 1, 0, 0, 0), (2026, 1, 1, 24, 0, 0)] {
            let (y, mo, d, h, mi, s) = bad;
            assert_eq!(local_epoch(y, mo, d, h, mi, s), None, "{bad:?}");
        }
    }
    use super::*;
    #[test]
    fn units_and_times() {
        assert_eq!(utc_epoch("2023-11-14T22:13:20.123Z"), Some(1_700_000_000.123));
        assert_eq!(datetime_epoch("2023-11-14T22:13:20Z"), Some(1_700_000_000));
        assert_eq!(clock_seconds("1-00:00:01"), Some(86401.0));
        assert_eq!(clock_seconds("01:02"), Some(62.0));
        assert_eq!(memory_kib("12 MB", 1.0), Some(12 * 1024));
        assert_eq!(memory_kib("100K", 1.0), Some(100));
        assert_eq!(memory_kib("2048", 1.0), Some(2048));
        assert_eq!(duration_seconds("1m 3s"), Some(63.0));
        assert!((duration_seconds("350ms").unwrap() - 0.35).abs() < 1e-9);
        assert_eq!(duration_seconds("1500"), Some(1.5));
        assert!(duration_seconds("3 parsecs").is_none());
        let mut u = Vec::new();
        assert_eq!(complete_lines("a\nb", "x", &mut u).collect::<Vec<_>>(), vec!["a"]);
        assert_eq!(u.len(), 1);
    }
}
