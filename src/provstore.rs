//! The provenance store: an embedded SQLite database of every job attempt.
//!
//! One file per campaign by default: `SUBMIT/provenance.sqlite` of the campaign's first
//! submit directory.  A directory written by `bpsc restart` records that file as
//! `provenance_db` in its `bpsc.json`, so the runs of one campaign (the original and its
//! restarts) share it.  `--db PATH` chooses another file; one file may hold many campaigns.
//!
//! # Schema (`PRAGMA user_version = 1`)
//!
//! ```sql
//! runs(run_id INTEGER PRIMARY KEY, campaign TEXT, submit TEXT UNIQUE, backend TEXT,
//!      bpsc_version TEXT, restart_of TEXT, ingested_at TEXT)
//! attempts(run_id, job, attempt, kind, grp, idx, host, start, "end", seconds, exit_code,
//!          signal, peak_rss_kib, skipped, software, env_digest, error, log_out, log_err,
//!          engine_job, record,                      -- record: the whole JSON record
//!          PRIMARY KEY (run_id, job, attempt))
//! quanta(run_id, job, attempt, step, data_id, start, "end", seconds, exit_code, signal,
//!        PRIMARY KEY (run_id, job, attempt, step, data_id))   -- data_id: JSON, keys sorted
//! files(run_id, job, attempt, direction, dataset, path, size, sha256)  -- direction: in|out
//! ```
//!
//! Ingest is idempotent: a record already stored with the same text is skipped, a changed
//! one replaces the stored one.
//!
//! # Queries (`bpsc provenance query SOURCE ...`; SOURCE is a submit directory, ingested
//! first, or a database file)
//!
//! | option | rows (CSV header / JSON keys) |
//! |---|---|
//! | `--coverage STEP` | `step, <dimensions...>, data_id, job, attempt, host, submit`: data IDs of STEP that succeeded in the campaign (any run) |
//! | `--host HOST` | `campaign, submit, job, attempt, kind, steps, start, end, seconds, exit_code, signal, peak_rss_kib` |
//! | `--quantum STEP --data-id k=v,...` or `--job JOB` | `campaign, submit, job, attempt, step, data_id, host, start, end, seconds, exit_code, signal, error, log` |
//! | `--metrics` | `step, attempts, succeeded, failed, quanta_succeeded, wall_min, wall_median, wall_p90, wall_max, rss_mib_min, rss_mib_median, rss_mib_p90, rss_mib_max` |
//!
//! `bpsc provenance diff A B` compares two campaigns per (step, data ID): `step, data_id,
//! a, b, change, a_seconds, b_seconds, delta_seconds` with `a`/`b` one of `succeeded`,
//! `failed`, `absent` and `change` one of `same`, `fixed`, `broke`, `only_a`, `only_b`,
//! `still_failed`; `--summary` gives one row per step instead.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{json, Value};

use crate::submitdir::records::{self, Record};
use crate::submitdir::Meta;

pub const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS runs (
  run_id INTEGER PRIMARY KEY,
  campaign TEXT NOT NULL,
  submit TEXT NOT NULL UNIQUE,
  backend TEXT,
  bpsc_version TEXT,
  restart_of TEXT,
  ingested_at TEXT
);
CREATE TABLE IF NOT EXISTS attempts (
  run_id INTEGER NOT NULL REFERENCES runs(run_id),
  job TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  kind TEXT, grp TEXT, idx INTEGER, host TEXT, start TEXT, "end" TEXT, seconds REAL,
  exit_code INTEGER, signal INTEGER, peak_rss_kib INTEGER, skipped INTEGER NOT NULL DEFAULT 0,
  software TEXT, env_digest TEXT, error TEXT, log_out TEXT, log_err TEXT, engine_job TEXT,
  record TEXT NOT NULL,
  PRIMARY KEY (run_id, job, attempt)
);
CREATE TABLE IF NOT EXISTS quanta (
  run_id INTEGER NOT NULL,
  job TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  step TEXT NOT NULL,
  data_id TEXT NOT NULL,
  start TEXT, "end" TEXT, seconds REAL, exit_code INTEGER, signal INTEGER,
  PRIMARY KEY (run_id, job, attempt, step, data_id)
);
CREATE TABLE IF NOT EXISTS files (
  run_id INTEGER NOT NULL, job TEXT NOT NULL, attempt INTEGER NOT NULL,
  direction TEXT NOT NULL, dataset TEXT, path TEXT, size INTEGER, sha256 TEXT
);
CREATE INDEX IF NOT EXISTS quanta_step ON quanta(step, data_id);
CREATE INDEX IF NOT EXISTS attempts_host ON attempts(host);
CREATE INDEX IF NOT EXISTS files_attempt ON files(run_id, job, attempt);
"#;

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Open (creating) a store.
pub fn open(db: &Path) -> Result<Connection, String> {
    if let Some(d) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    let c = Connection::open(db).map_err(|e| format!("{}: {e}", db.display()))?;
    c.busy_timeout(std::time::Duration::from_secs(30)).map_err(err)?;
    let v: i64 = c.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(err)?;
    if v > SCHEMA_VERSION {
        return Err(format!("{}: schema version {v} is newer than this bpsc's ({SCHEMA_VERSION})", db.display()));
    }
    c.execute_batch(SCHEMA).map_err(|e| format!("{}: {e}", db.display()))?;
    c.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}")).map_err(err)?;
    Ok(c)
}

/// The default store of a submit directory: `provenance_db` of its bpsc.json (a restart
/// points at its campaign's first directory's), else `SUBMIT/provenance.sqlite`.
pub fn default_db(submit: &Path) -> PathBuf {
    Meta::read(submit).ok().and_then(|m| m.provenance_db).unwrap_or_else(|| submit.join(crate::submitdir::PROVENANCE_DB))
}

fn abs(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| std::env::current_dir().map(|d| d.join(p)).unwrap_or_else(|_| p.to_path_buf()))
}

/// What an ingest did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Ingested {
    pub records: u64,
    pub new: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub notes: Vec<String>,
}

/// Load every record of a submit directory into `db`.
pub fn ingest(submit: &Path, db: &Path) -> Result<Ingested, String> {
    let meta = Meta::read(submit)?;
    let mut c = open(db)?;
    let submit_abs = abs(submit);
    let campaign = meta.campaign.clone();
    let tx = c.transaction().map_err(err)?;
    let now = crate::submitdir::time::rfc3339(std::time::SystemTime::now());
    tx.execute(
        "INSERT INTO runs(campaign, submit, backend, bpsc_version, restart_of, ingested_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT(submit) DO UPDATE SET campaign = excluded.campaign, backend = excluded.backend,
           bpsc_version = excluded.bpsc_version, restart_of = excluded.restart_of, ingested_at = excluded.ingested_at",
        params![
            campaign,
            submit_abs.to_string_lossy(),
            meta.backend,
            meta.bpsc_version,
            meta.restart.as_ref().map(|r| r.of.to_string_lossy().into_owned()),
            now
        ],
    )
    .map_err(err)?;
    let run_id: i64 =
        tx.query_row("SELECT run_id FROM runs WHERE submit = ?1", [submit_abs.to_string_lossy()], |r| r.get(0)).map_err(err)?;
    let mut out = Ingested::default();
    let mut failure: Option<String> = None;
    {
        let mut existing = tx.prepare("SELECT record FROM attempts WHERE run_id = ?1 AND job = ?2 AND attempt = ?3").map_err(err)?;
        let mut del_q = tx.prepare("DELETE FROM quanta WHERE run_id = ?1 AND job = ?2 AND attempt = ?3").map_err(err)?;
        let mut del_f = tx.prepare("DELETE FROM files WHERE run_id = ?1 AND job = ?2 AND attempt = ?3").map_err(err)?;
        let mut ins_a = tx
            .prepare(
                "INSERT OR REPLACE INTO attempts(run_id, job, attempt, kind, grp, idx, host, start, \"end\", seconds, exit_code, signal,
                 peak_rss_kib, skipped, software, env_digest, error, log_out, log_err, engine_job, record)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)",
            )
            .map_err(err)?;
        let mut ins_q = tx
            .prepare(
                "INSERT OR REPLACE INTO quanta(run_id, job, attempt, step, data_id, start, \"end\", seconds, exit_code, signal)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )
            .map_err(err)?;
        let mut ins_f = tx
            .prepare(
                "INSERT INTO files(run_id, job, attempt, direction, dataset, path, size, sha256) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .map_err(err)?;
        let notes = records::for_each_record(submit, |r: Record, raw: &str| {
            if failure.is_some() {
                return;
            }
            out.records += 1;
            let raw = raw.trim_end();
            let res = (|| -> rusqlite::Result<()> {
                let old: Option<String> = existing.query_row(params![run_id, r.job_id, r.attempt], |x| x.get(0)).optional()?;
                match old {
                    Some(o) if o == raw => {
                        out.unchanged += 1;
                        return Ok(());
                    }
                    Some(_) => out.updated += 1,
                    None => out.new += 1,
                }
                del_q.execute(params![run_id, r.job_id, r.attempt])?;
                del_f.execute(params![run_id, r.job_id, r.attempt])?;
                ins_a.execute(params![
                    run_id,
                    r.job_id,
                    r.attempt,
                    r.kind,
                    r.group,
                    r.index as i64,
                    r.host,
                    r.start,
                    r.end,
                    r.seconds,
                    r.exit_code,
                    r.signal,
                    r.peak_rss_kib,
                    r.skipped,
                    r.software,
                    r.env_digest,
                    r.error,
                    r.log.out,
                    r.log.err,
                    r.engine_job,
                    raw
                ])?;
                for q in &r.quanta {
                    ins_q.execute(params![
                        run_id,
                        r.job_id,
                        r.attempt,
                        q.step,
                        records::data_id_key(&q.data_id),
                        q.start,
                        q.end,
                        q.seconds,
                        q.exit_code,
                        q.signal
                    ])?;
                }
                let full: Value = serde_json::from_str(raw).unwrap_or(Value::Null);
                for (dir, key) in [("in", "inputs"), ("out", "outputs")] {
                    for f in full[key].as_array().into_iter().flatten() {
                        ins_f.execute(params![
                            run_id,
                            r.job_id,
                            r.attempt,
                            dir,
                            f["dataset"].as_str(),
                            f["path"].as_str(),
                            f["size"].as_i64(),
                            f["sha256"].as_str()
                        ])?;
                    }
                }
                Ok(())
            })();
            if let Err(e) = res {
                failure = Some(format!("{} attempt {}: {e}", r.job_id, r.attempt));
            }
        });
        out.notes = notes;
    }
    if let Some(f) = failure {
        return Err(f);
    }
    tx.commit().map_err(err)?;
    Ok(out)
}

/// The records of one campaign as the store holds them, for restart and diff: one row per
/// quantum attempt.
#[derive(Clone, Debug)]
pub struct QuantumRow {
    pub submit: String,
    pub job: String,
    pub attempt: i64,
    pub step: String,
    pub data_id: String,
    pub host: Option<String>,
    pub seconds: Option<f64>,
    pub exit_code: Option<i64>,
    pub signal: Option<i64>,
}

impl QuantumRow {
    pub fn succeeded(&self) -> bool {
        self.exit_code == Some(0) && self.signal.is_none()
    }
}

/// Where to read: a database and a campaign in it.
#[derive(Clone, Debug)]
pub struct Scope {
    pub db: PathBuf,
    pub campaign: String,
}

/// A submit directory (ingested first) or a database file, and the campaign to look at.
pub fn resolve(source: &Path, db: Option<&Path>, campaign: Option<&str>, log: &mut dyn Write) -> Result<Scope, String> {
    if source.is_dir() {
        let meta = Meta::read(source)?;
        let db = db.map(Path::to_path_buf).unwrap_or_else(|| default_db(source));
        let r = ingest(source, &db)?;
        if r.new + r.updated > 0 {
            let _ = writeln!(log, "ingested {} new and {} changed records of {} into {}", r.new, r.updated, source.display(), db.display());
        }
        let campaign = campaign.map(str::to_string).unwrap_or(meta.campaign);
        return Ok(Scope { db, campaign });
    }
    if !source.exists() {
        return Err(format!("{}: no such submit directory or database", source.display()));
    }
    let c = open(source)?;
    let campaign = match campaign {
        Some(c) => c.to_string(),
        None => {
            let mut st = c.prepare("SELECT DISTINCT campaign FROM runs ORDER BY campaign").map_err(err)?;
            let names: Vec<String> = st.query_map([], |r| r.get(0)).map_err(err)?.filter_map(|x| x.ok()).collect();
            match names.as_slice() {
                [one] => one.clone(),
                [] => return Err(format!("{}: no campaign ingested yet", source.display())),
                many => {
                    return Err(format!("{} holds several campaigns ({}); choose one with --campaign", source.display(), many.join(", ")))
                }
            }
        }
    };
    Ok(Scope { db: source.to_path_buf(), campaign })
}

/// Every quantum attempt of a campaign (optionally one step), in a stable order.
pub fn quantum_rows(c: &Connection, campaign: &str, step: Option<&str>) -> Result<Vec<QuantumRow>, String> {
    let sql = "SELECT r.submit, q.job, q.attempt, q.step, q.data_id, a.host, q.seconds, q.exit_code, q.signal
               FROM quanta q JOIN attempts a ON a.run_id = q.run_id AND a.job = q.job AND a.attempt = q.attempt
               JOIN runs r ON r.run_id = q.run_id
               WHERE r.campaign = ?1 AND (?2 IS NULL OR q.step = ?2)
               ORDER BY q.step, q.data_id, r.run_id, q.attempt";
    let mut st = c.prepare(sql).map_err(err)?;
    let rows = st
        .query_map(params![campaign, step], |r| {
            Ok(QuantumRow {
                submit: r.get(0)?,
                job: r.get(1)?,
                attempt: r.get(2)?,
                step: r.get(3)?,
                data_id: r.get(4)?,
                host: r.get(5)?,
                seconds: r.get(6)?,
                exit_code: r.get(7)?,
                signal: r.get(8)?,
            })
        })
        .map_err(err)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(err)?;
    Ok(rows)
}

// ------------------------------------------------------------------ output

/// CSV or JSON rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Csv,
    Json,
}

/// Write rows (all with the same keys, in `header` order).
pub fn write_rows(fmt: Format, header: &[String], rows: &[Vec<Value>], out: &mut dyn Write) -> Result<(), String> {
    match fmt {
        Format::Json => {
            let list: Vec<Value> = rows
                .iter()
                .map(|r| Value::Object(header.iter().cloned().zip(r.iter().cloned()).collect::<serde_json::Map<String, Value>>()))
                .collect();
            writeln!(out, "{}", serde_json::to_string_pretty(&list).map_err(err)?).map_err(err)
        }
        Format::Csv => {
            let mut w = csv::Writer::from_writer(out);
            w.write_record(header).map_err(err)?;
            for r in rows {
                w.write_record(r.iter().map(|v| match v {
                    Value::Null => String::new(),
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                }))
                .map_err(err)?;
            }
            w.flush().map_err(err)
        }
    }
}

fn h(cols: &[&str]) -> Vec<String> {
    cols.iter().map(|s| s.to_string()).collect()
}

/// Parse `k=v,k=v` into the JSON object a record would hold (integers as numbers).
pub fn parse_data_id(s: &str) -> Result<BTreeMap<String, String>, String> {
    let mut m = BTreeMap::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').ok_or_else(|| format!("--data-id: `{part}` is not KEY=VALUE"))?;
        m.insert(k.trim().to_string(), v.trim().to_string());
    }
    Ok(m)
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Does the stored data ID (JSON text) hold every `k=v`?
fn data_id_matches(stored: &str, want: &BTreeMap<String, String>) -> bool {
    let Ok(Value::Object(m)) = serde_json::from_str::<Value>(stored) else { return false };
    want.iter().all(|(k, v)| m.get(k).is_some_and(|x| value_text(x) == *v))
}

/// What `bpsc provenance query` asks.
#[derive(Clone, Debug)]
pub enum Query {
    Coverage { step: String },
    Host { host: String },
    Quantum { step: String, data_id: String },
    Job { job: String },
    Metrics,
}

pub fn query(scope: &Scope, q: &Query, fmt: Format, out: &mut dyn Write) -> Result<usize, String> {
    let c = open(&scope.db)?;
    let camp = scope.campaign.as_str();
    match q {
        Query::Coverage { step } => {
            let rows = quantum_rows(&c, camp, Some(step))?;
            let mut seen: BTreeMap<String, &QuantumRow> = BTreeMap::new();
            for r in rows.iter().filter(|r| r.succeeded()) {
                seen.entry(r.data_id.clone()).or_insert(r);
            }
            let dims: Vec<String> = seen
                .keys()
                .next()
                .and_then(|d| serde_json::from_str::<Value>(d).ok())
                .and_then(|v| v.as_object().map(|m| m.keys().cloned().collect()))
                .unwrap_or_default();
            let mut header = vec!["step".to_string()];
            header.extend(dims.iter().cloned());
            header.extend(h(&["data_id", "job", "attempt", "host", "submit"]));
            let out_rows: Vec<Vec<Value>> = seen
                .values()
                .map(|r| {
                    let v: Value = serde_json::from_str(&r.data_id).unwrap_or(Value::Null);
                    let mut row = vec![json!(r.step)];
                    row.extend(dims.iter().map(|d| v[d].clone()));
                    row.extend([json!(r.data_id), json!(r.job), json!(r.attempt), json!(r.host), json!(r.submit)]);
                    row
                })
                .collect();
            write_rows(fmt, &header, &out_rows, out)?;
            Ok(out_rows.len())
        }
        Query::Host { host } => {
            let mut st = c
                .prepare(
                    "SELECT r.campaign, r.submit, a.job, a.attempt, a.kind,
                       (SELECT group_concat(DISTINCT q.step) FROM quanta q WHERE q.run_id = a.run_id AND q.job = a.job AND q.attempt = a.attempt),
                       a.start, a.\"end\", a.seconds, a.exit_code, a.signal, a.peak_rss_kib
                     FROM attempts a JOIN runs r ON r.run_id = a.run_id
                     WHERE a.host = ?1 AND r.campaign = ?2 ORDER BY a.start, a.job, a.attempt",
                )
                .map_err(err)?;
            let rows: Vec<Vec<Value>> = st
                .query_map(params![host, camp], |r| {
                    Ok(vec![
                        json!(r.get::<_, String>(0)?),
                        json!(r.get::<_, String>(1)?),
                        json!(r.get::<_, String>(2)?),
                        json!(r.get::<_, i64>(3)?),
                        json!(r.get::<_, Option<String>>(4)?),
                        json!(r.get::<_, Option<String>>(5)?),
                        json!(r.get::<_, Option<String>>(6)?),
                        json!(r.get::<_, Option<String>>(7)?),
                        json!(r.get::<_, Option<f64>>(8)?),
                        json!(r.get::<_, Option<i64>>(9)?),
                        json!(r.get::<_, Option<i64>>(10)?),
                        json!(r.get::<_, Option<i64>>(11)?),
                    ])
                })
                .map_err(err)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(err)?;
            let header = h(&[
                "campaign",
                "submit",
                "job",
                "attempt",
                "kind",
                "steps",
                "start",
                "end",
                "seconds",
                "exit_code",
                "signal",
                "peak_rss_kib",
            ]);
            write_rows(fmt, &header, &rows, out)?;
            Ok(rows.len())
        }
        Query::Quantum { .. } | Query::Job { .. } => {
            let (step, want, job) = match q {
                Query::Quantum { step, data_id } => (Some(step.as_str()), Some(parse_data_id(data_id)?), None),
                Query::Job { job } => (None, None, Some(job.as_str())),
                _ => (None, None, None),
            };
            let mut st = c
                .prepare(
                    "SELECT r.campaign, r.submit, q.job, q.attempt, q.step, q.data_id, a.host, q.start, q.\"end\", q.seconds,
                       q.exit_code, q.signal, a.error, coalesce(a.log_err, a.log_out)
                     FROM quanta q JOIN attempts a ON a.run_id = q.run_id AND a.job = q.job AND a.attempt = q.attempt
                     JOIN runs r ON r.run_id = q.run_id
                     WHERE r.campaign = ?1 AND (?2 IS NULL OR q.step = ?2) AND (?3 IS NULL OR q.job = ?3)
                     ORDER BY r.run_id, q.start, q.attempt",
                )
                .map_err(err)?;
            let rows: Vec<Vec<Value>> = st
                .query_map(params![camp, step, job], |r| {
                    let mut v = Vec::with_capacity(14);
                    for i in 0..14 {
                        let x: rusqlite::types::Value = r.get(i)?;
                        v.push(match x {
                            rusqlite::types::Value::Null => Value::Null,
                            rusqlite::types::Value::Integer(n) => json!(n),
                            rusqlite::types::Value::Real(f) => json!(f),
                            rusqlite::types::Value::Text(s) => json!(s),
                            rusqlite::types::Value::Blob(_) => Value::Null,
                        });
                    }
                    Ok(v)
                })
                .map_err(err)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(err)?
                .into_iter()
                .filter(|row| want.as_ref().is_none_or(|w| data_id_matches(row[5].as_str().unwrap_or(""), w)))
                .collect();
            let header = h(&[
                "campaign",
                "submit",
                "job",
                "attempt",
                "step",
                "data_id",
                "host",
                "start",
                "end",
                "seconds",
                "exit_code",
                "signal",
                "error",
                "log",
            ]);
            write_rows(fmt, &header, &rows, out)?;
            Ok(rows.len())
        }
        Query::Metrics => {
            let rows = metrics(&c, camp)?;
            let header = h(&[
                "step",
                "attempts",
                "succeeded",
                "failed",
                "quanta_succeeded",
                "wall_min",
                "wall_median",
                "wall_p90",
                "wall_max",
                "rss_mib_min",
                "rss_mib_median",
                "rss_mib_p90",
                "rss_mib_max",
            ]);
            write_rows(fmt, &header, &rows, out)?;
            Ok(rows.len())
        }
    }
}

/// Per step (compute) or kind (inserted jobs): attempts, outcomes, wall time of each quantum
/// attempt and peak memory of each job attempt.
fn metrics(c: &Connection, camp: &str) -> Result<Vec<Vec<Value>>, String> {
    #[derive(Default)]
    struct Acc {
        attempts: std::collections::HashSet<(i64, String, i64)>,
        ok: std::collections::HashSet<(i64, String, i64)>,
        quanta_ok: u64,
        wall: Vec<f64>,
        rss: Vec<f64>,
    }
    let mut by: BTreeMap<String, Acc> = BTreeMap::new();
    let mut st = c
        .prepare(
            "SELECT a.run_id, a.job, a.attempt, a.kind, a.exit_code, a.signal, a.skipped, a.seconds, a.peak_rss_kib, q.step, q.seconds, q.exit_code, q.signal
             FROM attempts a JOIN runs r ON r.run_id = a.run_id
             LEFT JOIN quanta q ON q.run_id = a.run_id AND q.job = a.job AND q.attempt = a.attempt
             WHERE r.campaign = ?1",
        )
        .map_err(err)?;
    let mut rows = st.query(params![camp]).map_err(err)?;
    while let Some(r) = rows.next().map_err(err)? {
        let key: (i64, String, i64) = (r.get(0).map_err(err)?, r.get(1).map_err(err)?, r.get(2).map_err(err)?);
        let kind: Option<String> = r.get(3).map_err(err)?;
        let (code, sig, skipped): (Option<i64>, Option<i64>, bool) =
            (r.get(4).map_err(err)?, r.get(5).map_err(err)?, r.get(6).map_err(err)?);
        if skipped {
            continue;
        }
        let step: Option<String> = r.get(9).map_err(err)?;
        let label = step.clone().unwrap_or_else(|| format!("({})", kind.unwrap_or_default()));
        let a = by.entry(label).or_default();
        let fresh = a.attempts.insert(key.clone());
        if code == Some(0) && sig.is_none() {
            a.ok.insert(key);
        }
        if fresh {
            if let Some(k) = r.get::<_, Option<i64>>(8).map_err(err)? {
                a.rss.push(k as f64 / 1024.0);
            }
        }
        if step.is_some() {
            if let Some(s) = r.get::<_, Option<f64>>(10).map_err(err)? {
                a.wall.push(s);
            }
            if r.get::<_, Option<i64>>(11).map_err(err)? == Some(0) && r.get::<_, Option<i64>>(12).map_err(err)?.is_none() {
                a.quanta_ok += 1;
            }
        } else if fresh {
            if let Some(s) = r.get::<_, Option<f64>>(7).map_err(err)? {
                a.wall.push(s);
            }
        }
    }
    let d = |v: &[f64]| crate::status::dist(v.to_vec());
    Ok(by
        .into_iter()
        .map(|(label, a)| {
            let (w, m) = (d(&a.wall), d(&a.rss));
            let n = a.attempts.len() as u64;
            let ok = a.ok.len() as u64;
            vec![
                json!(label),
                json!(n),
                json!(ok),
                json!(n - ok),
                json!(a.quanta_ok),
                json!(w.as_ref().map(|x| x.min)),
                json!(w.as_ref().map(|x| x.median)),
                json!(w.as_ref().map(|x| x.p90)),
                json!(w.as_ref().map(|x| x.max)),
                json!(m.as_ref().map(|x| x.min)),
                json!(m.as_ref().map(|x| x.median)),
                json!(m.as_ref().map(|x| x.p90)),
                json!(m.as_ref().map(|x| x.max)),
            ]
        })
        .collect())
}

/// The outcome of each (step, data ID) in a campaign: succeeded if any attempt succeeded
/// (seconds of the last success), else failed (seconds of the last attempt).
/// (step, data ID) -> (succeeded, seconds).
pub type Outcomes = BTreeMap<(String, String), (bool, Option<f64>)>;

pub fn outcomes(c: &Connection, camp: &str, step: Option<&str>) -> Result<Outcomes, String> {
    let mut m: Outcomes = BTreeMap::new();
    for r in quantum_rows(c, camp, step)? {
        let e = m.entry((r.step.clone(), r.data_id.clone())).or_insert((false, None));
        if r.succeeded() {
            *e = (true, r.seconds);
        } else if !e.0 {
            e.1 = r.seconds;
        }
    }
    Ok(m)
}

/// `bpsc provenance diff A B`.
pub fn diff(a: &Scope, b: &Scope, step: Option<&str>, summary: bool, fmt: Format, out: &mut dyn Write) -> Result<usize, String> {
    if a.db == b.db && a.campaign == b.campaign {
        return Err(format!("both sides are campaign `{}` of {}", a.campaign, a.db.display()));
    }
    let ca = open(&a.db)?;
    let cb = open(&b.db)?;
    let oa = outcomes(&ca, &a.campaign, step)?;
    let ob = outcomes(&cb, &b.campaign, step)?;
    let mut keys: Vec<&(String, String)> = oa.keys().chain(ob.keys()).collect();
    keys.sort();
    keys.dedup();
    let word = |o: Option<&(bool, Option<f64>)>| match o {
        Some((true, _)) => "succeeded",
        Some((false, _)) => "failed",
        None => "absent",
    };
    let mut rows = Vec::new();
    #[derive(Default)]
    struct S {
        total: u64,
        a_ok: u64,
        b_ok: u64,
        changes: BTreeMap<&'static str, u64>,
        a_secs: Vec<f64>,
        b_secs: Vec<f64>,
    }
    let mut per: BTreeMap<String, S> = BTreeMap::new();
    for k in keys {
        let (x, y) = (oa.get(k), ob.get(k));
        let change = match (x.map(|v| v.0), y.map(|v| v.0)) {
            (Some(true), Some(true)) => "same",
            (Some(false), Some(true)) => "fixed",
            (Some(true), Some(false)) => "broke",
            (Some(false), Some(false)) => "still_failed",
            (Some(_), None) => "only_a",
            (None, Some(_)) => "only_b",
            (None, None) => "same",
        };
        let (sa, sb) = (x.and_then(|v| v.1), y.and_then(|v| v.1));
        let s = per.entry(k.0.clone()).or_default();
        s.total += 1;
        s.a_ok += u64::from(x.is_some_and(|v| v.0));
        s.b_ok += u64::from(y.is_some_and(|v| v.0));
        *s.changes.entry(change).or_default() += 1;
        if x.is_some_and(|v| v.0) && y.is_some_and(|v| v.0) {
            if let (Some(p), Some(q)) = (sa, sb) {
                s.a_secs.push(p);
                s.b_secs.push(q);
            }
        }
        rows.push(vec![
            json!(k.0),
            json!(k.1),
            json!(word(x)),
            json!(word(y)),
            json!(change),
            json!(sa),
            json!(sb),
            json!(match (sa, sb) {
                (Some(p), Some(q)) => Some(((q - p) * 1000.0).round() / 1000.0),
                _ => None,
            }),
        ]);
    }
    if summary {
        let header = h(&[
            "step",
            "data_ids",
            "a_succeeded",
            "b_succeeded",
            "same",
            "fixed",
            "broke",
            "still_failed",
            "only_a",
            "only_b",
            "a_median_seconds",
            "b_median_seconds",
            "median_ratio",
        ]);
        let srows: Vec<Vec<Value>> = per
            .into_iter()
            .map(|(step, s)| {
                let ma = crate::status::dist(s.a_secs.clone()).map(|d| d.median);
                let mb = crate::status::dist(s.b_secs.clone()).map(|d| d.median);
                let c = |k: &str| s.changes.get(k).copied().unwrap_or(0);
                vec![
                    json!(step),
                    json!(s.total),
                    json!(s.a_ok),
                    json!(s.b_ok),
                    json!(c("same")),
                    json!(c("fixed")),
                    json!(c("broke")),
                    json!(c("still_failed")),
                    json!(c("only_a")),
                    json!(c("only_b")),
                    json!(ma),
                    json!(mb),
                    json!(match (ma, mb) {
                        (Some(p), Some(q)) if p > 0.0 => Some(((q / p) * 1000.0).round() / 1000.0),
                        _ => None,
                    }),
                ]
            })
            .collect();
        write_rows(fmt, &header, &srows, out)?;
        return Ok(srows.len());
    }
    let header = h(&["step", "data_id", "a", "b", "change", "a_seconds", "b_seconds", "delta_seconds"]);
    write_rows(fmt, &header, &rows, out)?;
    Ok(rows.len())
}

// ------------------------------------------------------------------ commands

/// `bpsc provenance ingest SUBMIT [--db PATH]`.
pub fn ingest_cmd(submit: &Path, db: Option<&Path>, json_out: bool, out: &mut dyn Write, errw: &mut dyn Write) -> u8 {
    let db = db.map(Path::to_path_buf).unwrap_or_else(|| default_db(submit));
    match ingest(submit, &db) {
        Ok(r) => {
            for n in &r.notes {
                let _ = writeln!(errw, "warning: {n}");
            }
            if json_out {
                let _ = writeln!(out, "{}", serde_json::to_string_pretty(&json!({"db": db, "ingested": r})).unwrap_or_default());
            } else {
                let _ = writeln!(
                    out,
                    "{}: {} records ({} new, {} changed, {} unchanged) into {}",
                    submit.display(),
                    r.records,
                    r.new,
                    r.updated,
                    r.unchanged,
                    db.display()
                );
            }
            crate::submitdir::exit::OK
        }
        Err(e) => {
            let _ = writeln!(errw, "error: {e}");
            crate::submitdir::exit::USAGE
        }
    }
}

/// `bpsc provenance query SOURCE ...`.
pub fn query_cmd(
    source: &Path,
    db: Option<&Path>,
    campaign: Option<&str>,
    q: &Query,
    fmt: Format,
    out: &mut dyn Write,
    errw: &mut dyn Write,
) -> u8 {
    let res = resolve(source, db, campaign, errw).and_then(|s| query(&s, q, fmt, out));
    match res {
        Ok(_) => crate::submitdir::exit::OK,
        Err(e) => {
            let _ = writeln!(errw, "error: {e}");
            crate::submitdir::exit::USAGE
        }
    }
}

/// `bpsc provenance diff A B ...`.
#[allow(clippy::too_many_arguments)]
pub fn diff_cmd(
    a: &Path,
    b: &Path,
    a_campaign: Option<&str>,
    b_campaign: Option<&str>,
    step: Option<&str>,
    summary: bool,
    fmt: Format,
    out: &mut dyn Write,
    errw: &mut dyn Write,
) -> u8 {
    let res = resolve(a, None, a_campaign, errw)
        .and_then(|sa| resolve(b, None, b_campaign, errw).map(|sb| (sa, sb)))
        .and_then(|(sa, sb)| diff(&sa, &sb, step, summary, fmt, out));
    match res {
        Ok(_) => crate::submitdir::exit::OK,
        Err(e) => {
            let _ = writeln!(errw, "error: {e}");
            crate::submitdir::exit::USAGE
        }
    }
}
