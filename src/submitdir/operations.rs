//! `operations.jsonl`: every operation on a submitted campaign (`bpsc submit`, `cancel`,
//! `hold`, `release`, `priority`), one typed JSON line each, appended in order: what was
//! asked, when, by whom, the exact engine commands with their exit status and output, the
//! engine's ids and the result.  Nothing else writes the file; `bpsc status` reads it to know
//! whether a campaign was ever submitted, is held, or was cancelled ([`Control`]).
//!
//! A line this version cannot read is skipped and reported, never fatal: the file is an
//! audit trail, and the engine's own state stays the ground truth for jobs.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The file, in the submit directory.
pub const OPERATIONS: &str = "operations.jsonl";

/// An operation on a submitted campaign.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Submit,
    Cancel,
    Hold,
    Release,
    Priority,
}

impl Op {
    pub const ALL: [Op; 5] = [Op::Submit, Op::Cancel, Op::Hold, Op::Release, Op::Priority];
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Submit => "submit",
            Op::Cancel => "cancel",
            Op::Hold => "hold",
            Op::Release => "release",
            Op::Priority => "priority",
        }
    }
}

/// One engine command, as bpsc runs it: `argv[0]` found on `PATH`, run from the submit
/// directory (or `cwd`, relative to it), with `env` added to bpsc's own environment.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cmd {
    pub argv: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<(String, String)>,
    /// Changes the engine's state (false: a read-only query).
    #[serde(default)]
    pub mutates: bool,
    /// Seconds before the command is killed (0: the runner's default).
    #[serde(default)]
    pub timeout_s: u64,
    /// Start it and do not wait (a workflow driver that must outlive bpsc, e.g. Nextflow):
    /// its output goes to this file (relative to the submit directory) and its pid is kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detach: Option<PathBuf>,
}

impl Cmd {
    /// A read-only query.
    pub fn query<S: AsRef<str>>(argv: &[S]) -> Cmd {
        Cmd { argv: argv.iter().map(|s| s.as_ref().to_string()).collect(), ..Default::default() }
    }
    /// A command that changes the engine's state.
    pub fn action<S: AsRef<str>>(argv: &[S]) -> Cmd {
        Cmd { mutates: true, ..Cmd::query(argv) }
    }
    pub fn env(mut self, k: &str, v: &str) -> Cmd {
        self.env.push((k.to_string(), v.to_string()));
        self
    }
    pub fn timeout(mut self, secs: u64) -> Cmd {
        self.timeout_s = secs;
        self
    }
    pub fn program(&self) -> &str {
        self.argv.first().map(String::as_str).unwrap_or("")
    }
    /// The command as a shell line (each word quoted when it needs to be), for people.
    pub fn line(&self) -> String {
        let mut words: Vec<String> = self.env.iter().map(|(k, v)| format!("{k}={}", sh_word(v))).collect();
        words.extend(self.argv.iter().map(|a| sh_word(a)));
        let mut s = words.join(" ");
        if let Some(c) = &self.cwd {
            s = format!("(cd {} && {s})", sh_word(&c.to_string_lossy()));
        }
        if let Some(f) = &self.detach {
            s = format!("{s} >{} 2>&1 &", sh_word(&f.to_string_lossy()));
        }
        s
    }
}

/// A word as the shell reads it back unchanged.
pub fn sh_word(s: &str) -> String {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%^".contains(&b)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// Why a command did not give an exit status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunError {
    /// The program is not on `PATH`.
    NotFound,
    /// Killed after its timeout.
    Timeout,
    /// Could not be started (permissions, ...).
    Spawn(String),
}

/// A command that ran (or could not): what the record keeps of it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Ran {
    #[serde(flatten)]
    pub cmd: Cmd,
    /// `argv` as one shell line (what a person would type).
    #[serde(default)]
    pub line: String,
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<RunError>,
    /// Standard output and error (the record keeps their last [`KEEP_OUTPUT`] bytes).
    #[serde(default)]
    pub stdout: String,
    #[serde(default)]
    pub stderr: String,
    pub seconds: f64,
    /// A detached command's process id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// A query repeated while waiting for the engine: how many times it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub polls: Option<u32>,
}

/// Output kept per command in the record.
pub const KEEP_OUTPUT: usize = 4000;

impl Ran {
    pub fn ok(&self) -> bool {
        self.error.is_none() && self.exit_code == Some(0)
    }
    /// Standard output and error together (for messages).
    pub fn output(&self) -> String {
        let mut s = self.stdout.trim_end().to_string();
        if !self.stderr.trim().is_empty() {
            if !s.is_empty() {
                s.push('\n');
            }
            s.push_str(self.stderr.trim_end());
        }
        s
    }
    /// The copy the record keeps: output cut to its last [`KEEP_OUTPUT`] bytes.
    pub fn for_record(&self) -> Ran {
        let tail = |s: &str| {
            if s.len() <= KEEP_OUTPUT {
                return s.to_string();
            }
            let mut i = s.len() - KEEP_OUTPUT;
            while !s.is_char_boundary(i) {
                i += 1;
            }
            format!("[{} bytes cut]{}", i, &s[i..])
        };
        Ran { stdout: tail(&self.stdout), stderr: tail(&self.stderr), ..self.clone() }
    }
}

/// How an operation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Done, and confirmed where the engine can confirm it.
    Ok,
    /// Refused before any engine command ran: the campaign's state does not allow it.
    Refused,
    /// The engine cannot do it (the error says what to do instead).
    Unsupported,
    /// An engine command failed, a tool is missing, or the engine did not confirm in time.
    Failed,
    /// `--dry-run`: the commands were shown, not run.
    DryRun,
}

/// A diagnostic as the record keeps it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ErrorRecord {
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
}

/// What was asked, beyond the operation itself.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct OpArgs {
    /// `submit --resubmit`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub resubmit: bool,
    /// `hold --now`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub now: bool,
    /// `release --set KEY=VALUE`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sets: Vec<String>,
    /// `priority N`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<i64>,
}

/// One line of `operations.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Operation {
    pub op: Op,
    #[serde(default)]
    pub args: OpArgs,
    /// When it started (RFC 3339 UTC) and how long it took.
    pub at: String,
    pub seconds: f64,
    /// Who: the user name, the host, the bpsc version.
    pub user: String,
    pub host: String,
    pub bpsc_version: String,
    pub backend: String,
    pub outcome: Outcome,
    /// The engine commands, in the order they ran.
    #[serde(default)]
    pub commands: Vec<Ran>,
    /// The engine's ids for what the operation touched (DAGMan job, Slurm jobs, a run
    /// directory, a driver's pid).
    #[serde(default)]
    pub engine_ids: Vec<String>,
    /// A detached driver's process id (Nextflow).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// What the operator should know (jobs that keep running, limits of the engine).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorRecord>,
    /// Fields of other versions, kept.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

impl Operation {
    pub fn succeeded(&self) -> bool {
        self.outcome == Outcome::Ok
    }
}

/// Read every operation of a submit directory (none when the file does not exist), with a
/// note per line that could not be read.
pub fn read(submit: &Path) -> (Vec<Operation>, Vec<String>) {
    let p = submit.join(OPERATIONS);
    let text = match std::fs::read(&p) {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (Vec::new(), Vec::new()),
        Err(e) => return (Vec::new(), vec![format!("{}: {e}", p.display())]),
    };
    let mut ops = Vec::new();
    let mut notes = Vec::new();
    for (i, l) in text.lines().enumerate() {
        if l.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Operation>(l) {
            Ok(o) => ops.push(o),
            Err(e) => notes.push(format!("{}: line {}: not an operation this version reads: {e}", p.display(), i + 1)),
        }
    }
    (ops, notes)
}

/// Append one operation (one `write` of one line, so concurrent appends do not interleave).
pub fn append(submit: &Path, op: &Operation) -> std::io::Result<()> {
    let mut line = serde_json::to_string(op).map_err(std::io::Error::other)?;
    line.push('\n');
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(submit.join(OPERATIONS))?;
    f.write_all(line.as_bytes())
}

/// Where a campaign stands as far as its operations say.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Control {
    /// The latest successful submission (index into the operations).
    pub submitted: Option<usize>,
    /// Successful submissions so far.
    pub submissions: usize,
    /// Held since (RFC 3339), when the latest successful hold is after the latest
    /// submission and not followed by a release or a cancel.
    pub held_since: Option<String>,
    /// `hold --now` was asked.
    pub held_now: bool,
    /// Cancelled at (RFC 3339): a successful cancel after the latest submission.
    pub cancelled_at: Option<String>,
    /// The campaign priority the latest successful `priority` set (since the submission).
    pub priority: Option<i64>,
    /// The engine ids of the latest submission.
    pub engine_ids: Vec<String>,
    /// The driver's pid of the latest submission (Nextflow).
    pub pid: Option<u32>,
    /// Since the latest submission: when `hold --now` stopped running jobs, until the
    /// release or cancel that followed (open while still held).  A job that ended then was
    /// stopped by bpsc, not failed by itself.
    pub stops: Vec<(String, Option<String>)>,
}

impl Control {
    /// Fold the operations, in order.
    pub fn of(ops: &[Operation]) -> Control {
        let mut c = Control::default();
        for (i, o) in ops.iter().enumerate() {
            if !o.succeeded() {
                continue;
            }
            match o.op {
                Op::Submit => {
                    c = Control {
                        submitted: Some(i),
                        submissions: c.submissions + 1,
                        engine_ids: o.engine_ids.clone(),
                        pid: o.pid,
                        priority: c.priority,
                        ..Default::default()
                    };
                }
                Op::Hold => {
                    if c.held_since.is_none() {
                        c.held_since = Some(o.at.clone());
                    }
                    if o.args.now && !c.held_now {
                        c.stops.push((o.at.clone(), None));
                    }
                    c.held_now |= o.args.now;
                }
                Op::Release | Op::Cancel => {
                    if let Some(open) = c.stops.last_mut().filter(|s| s.1.is_none()) {
                        open.1 = Some(o.at.clone());
                    }
                    if o.op == Op::Cancel {
                        c.cancelled_at = Some(o.at.clone());
                    }
                    c.held_since = None;
                    c.held_now = false;
                }
                Op::Priority => c.priority = o.args.priority.or(c.priority),
            }
        }
        c
    }
    pub fn is_submitted(&self) -> bool {
        self.submitted.is_some()
    }
    pub fn is_held(&self) -> bool {
        self.held_since.is_some()
    }
    pub fn is_cancelled(&self) -> bool {
        self.cancelled_at.is_some()
    }
}

/// Who runs bpsc: `$USER` (or `$LOGNAME`), else the numeric uid.
pub fn user() -> String {
    for v in ["USER", "LOGNAME"] {
        if let Ok(u) = std::env::var(v) {
            if !u.is_empty() {
                return u;
            }
        }
    }
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    // The name /etc/passwd gives the uid (no NSS: enough for a record).
    let named = std::fs::read_to_string("/etc/passwd").ok().and_then(|t| {
        t.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 2 && f[2] == uid.to_string()).then(|| f[0].to_string())
        })
    });
    named.unwrap_or_else(|| format!("uid {uid}"))
}

/// This machine's host name.
pub fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|s| s.trim().to_string()).unwrap_or_else(|_| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(op: Op, outcome: Outcome, at: &str) -> Operation {
        Operation {
            op,
            args: OpArgs::default(),
            at: at.into(),
            seconds: 0.1,
            user: "u".into(),
            host: "h".into(),
            bpsc_version: "0".into(),
            backend: "slurm".into(),
            outcome,
            commands: vec![],
            engine_ids: vec![format!("{at}-id")],
            pid: None,
            notes: vec![],
            error: None,
            other: BTreeMap::new(),
        }
    }

    #[test]
    fn control_follows_the_successful_operations_in_order() {
        let ops = vec![
            op(Op::Submit, Outcome::Failed, "t0"),
            op(Op::Submit, Outcome::Ok, "t1"),
            op(Op::Hold, Outcome::Ok, "t2"),
            op(Op::Hold, Outcome::Ok, "t3"),
            op(Op::Release, Outcome::Failed, "t4"),
        ];
        let c = Control::of(&ops);
        assert_eq!((c.submitted, c.submissions, c.held_since.as_deref()), (Some(1), 1, Some("t2")));
        assert_eq!(c.engine_ids, vec!["t1-id"]);
        let mut more = ops.clone();
        more.push(op(Op::Release, Outcome::Ok, "t5"));
        more.push(op(Op::Cancel, Outcome::Ok, "t6"));
        let c = Control::of(&more);
        assert!(!c.is_held() && c.cancelled_at.as_deref() == Some("t6"));
        more.push(op(Op::Submit, Outcome::Ok, "t7"));
        let c = Control::of(&more);
        assert!(!c.is_cancelled() && c.submissions == 2 && c.engine_ids == vec!["t7-id"]);
        let mut now = op(Op::Hold, Outcome::Ok, "t8");
        now.args.now = true;
        more.push(now);
        assert_eq!(Control::of(&more).stops, vec![("t8".to_string(), None)]);
        more.push(op(Op::Cancel, Outcome::Ok, "t9"));
        assert_eq!(Control::of(&more).stops, vec![("t8".to_string(), Some("t9".to_string()))]);
    }

    #[test]
    fn the_file_round_trips_and_bad_lines_are_reported() {
        let d = std::env::temp_dir().join(format!("bpsc-ops-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        assert_eq!(read(&d), (vec![], vec![]));
        let mut o = op(Op::Priority, Outcome::Ok, "t1");
        o.args.priority = Some(-5);
        o.commands.push(Ran { cmd: Cmd::action(&["scontrol", "update", "JobId=1", "Nice=5"]), exit_code: Some(0), ..Default::default() });
        append(&d, &o).unwrap();
        std::fs::write(d.join(OPERATIONS), format!("{}{{\"op\": 3}}\n", std::fs::read_to_string(d.join(OPERATIONS)).unwrap())).unwrap();
        let (ops, notes) = read(&d);
        assert_eq!(ops, vec![o]);
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert_eq!(Control::of(&ops).priority, Some(-5));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn command_lines_quote_what_needs_it() {
        let c = Cmd::action(&["condor_hold", "-constraint", "DAGManJobId == 42"]).env("BPSC", "/opt/b c/bpsc");
        assert_eq!(c.line(), "BPSC='/opt/b c/bpsc' condor_hold -constraint 'DAGManJobId == 42'");
        let long = Ran { stdout: "x".repeat(KEEP_OUTPUT + 10), ..Default::default() };
        assert!(long.for_record().stdout.starts_with("[10 bytes cut]"));
    }
}
