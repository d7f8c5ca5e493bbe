//! `bpsc submit`, `cancel`, `hold`, `release`, `priority`: operating a compiled campaign
//! with its engine's own tools.  The engine half is [`crate::backend::ops`] and each
//! engine's `ops.rs`; this is the command half: it reads the submit directory, refuses what
//! the campaign's state does not allow (E901, E902), runs the engine's operation, records it
//! in `operations.jsonl` ([`crate::submitdir::operations`]) and reports it, for people or
//! as JSON.
//!
//! # `--json` (`"bpsc_operation": 1`)
//!
//! ```text
//! { "bpsc_operation": 1, "submit": "PATH", "campaign": "NAME", "backend": "ENGINE",
//!   "op": "submit|cancel|hold|release|priority", "args": {"resubmit"|"now"|"sets"|"priority"},
//!   "outcome": "ok|refused|unsupported|failed|dry_run", "exit_code": N,
//!   "at": "RFC 3339", "seconds": S, "user": "U", "host": "H", "bpsc_version": "V",
//!   "commands": [{"argv": [...], "line": "...", "mutates": bool, "exit_code": N|null,
//!                 "error": "not_found|timeout|{spawn:...}"|absent, "stdout": "...", "stderr": "...",
//!                 "seconds": S, "pid": N|absent, "polls": N|absent}],
//!   "engine_ids": ["..."], "pid": N|absent, "notes": ["..."],
//!   "error": {"code": "E9xx", "message": "...", "help": "..."}|absent }
//! ```
//!
//! Exit statuses: [`crate::submitdir::exit`] (0 done, 1 engine command failed, 2 usage,
//! 3 refused by the campaign's state, 4 not possible on this engine, 5 tool missing,
//! 6 not confirmed in time).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::backend::ops::{Resource, ResourceSet, ResourceValue, Runner, Session, SystemRunner};
use crate::diag::Diagnostic;
use crate::submitdir::exit::{op_status, OP_OK, OP_USAGE};
use crate::submitdir::operations::{self, Control, ErrorRecord, Op, OpArgs, Operation, Outcome};
use crate::submitdir::Meta;

/// Options every operation takes.
#[derive(clap::Args, Clone, Debug)]
pub struct OpOptions {
    /// Print the operation as JSON (schema `bpsc_operation` 1) on standard output.
    #[arg(long)]
    pub json: bool,
    /// Run the engine's queries only; show the commands that would change it.
    #[arg(long)]
    pub dry_run: bool,
    /// Seconds to wait for the engine to confirm (cancel, hold, release).
    #[arg(long, value_name = "SECONDS", default_value = "300")]
    pub wait: u64,
}

impl Default for OpOptions {
    fn default() -> OpOptions {
        OpOptions { json: false, dry_run: false, wait: 300 }
    }
}

/// `bpsc submit DIR [--resubmit]`.
#[derive(clap::Args, Clone, Debug)]
pub struct SubmitArgs {
    /// The submit directory (`bpsc compile -o DIR`).
    pub submit: PathBuf,
    /// Submit again a directory that was submitted before (after a cancel or a failure).
    #[arg(long)]
    pub resubmit: bool,
    #[command(flatten)]
    pub opts: OpOptions,
}

/// `bpsc cancel DIR`.
#[derive(clap::Args, Clone, Debug)]
pub struct CancelArgs {
    /// The submit directory (`bpsc compile -o DIR`), submitted with `bpsc submit`.
    pub submit: PathBuf,
    #[command(flatten)]
    pub opts: OpOptions,
}

/// `bpsc hold DIR [--now]`.
#[derive(clap::Args, Clone, Debug)]
pub struct HoldArgs {
    /// The submit directory (`bpsc compile -o DIR`), submitted with `bpsc submit`.
    pub submit: PathBuf,
    /// Stop and hold the running jobs too (where the engine can); they run again from the
    /// start after the release.
    #[arg(long)]
    pub now: bool,
    #[command(flatten)]
    pub opts: OpOptions,
}

/// `bpsc release DIR [--set KEY=VALUE]...`.
#[derive(clap::Args, Clone, Debug)]
pub struct ReleaseArgs {
    /// The submit directory (`bpsc compile -o DIR`), submitted with `bpsc submit`.
    pub submit: PathBuf,
    /// New resources for the queued jobs first: memory, cpus, disk, walltime, partition
    /// (queue), account, qos; values as in a campaign file (8GiB, 4h, "long").
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    #[command(flatten)]
    pub opts: OpOptions,
}

/// `bpsc priority DIR N`.
#[derive(clap::Args, Clone, Debug)]
pub struct PriorityArgs {
    /// The submit directory (`bpsc compile -o DIR`), submitted with `bpsc submit`.
    pub submit: PathBuf,
    /// The campaign's new priority (higher runs first); its pending jobs move by the
    /// difference to the current one.
    #[arg(allow_hyphen_values = true)]
    pub priority: i64,
    #[command(flatten)]
    pub opts: OpOptions,
}

/// What is asked.
#[derive(Clone, Debug, PartialEq)]
pub enum Request {
    Submit { resubmit: bool },
    Cancel,
    Hold { now: bool },
    Release { sets: Vec<String> },
    Priority(i64),
}

impl Request {
    pub fn op(&self) -> Op {
        match self {
            Request::Submit { .. } => Op::Submit,
            Request::Cancel => Op::Cancel,
            Request::Hold { .. } => Op::Hold,
            Request::Release { .. } => Op::Release,
            Request::Priority(_) => Op::Priority,
        }
    }
    fn args(&self) -> OpArgs {
        match self {
            Request::Submit { resubmit } => OpArgs { resubmit: *resubmit, ..Default::default() },
            Request::Hold { now } => OpArgs { now: *now, ..Default::default() },
            Request::Release { sets } => OpArgs { sets: sets.clone(), ..Default::default() },
            Request::Priority(p) => OpArgs { priority: Some(*p), ..Default::default() },
            Request::Cancel => OpArgs::default(),
        }
    }
}

/// The result of one operation.
#[derive(Clone, Debug)]
pub struct Done {
    /// What was (or would have been, for a directory that cannot be read) recorded.
    pub record: Operation,
    pub diag: Option<Diagnostic>,
    pub exit: u8,
    pub campaign: String,
    pub submit: PathBuf,
}

impl Done {
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(&self.record).unwrap_or_default();
        v["bpsc_operation"] = 1.into();
        v["submit"] = serde_json::json!(self.submit);
        v["campaign"] = serde_json::json!(self.campaign);
        v["exit_code"] = self.exit.into();
        v
    }
}

/// Parse `release --set KEY=VALUE` with the campaign language's value syntax.
pub fn parse_resource_set(text: &str) -> Result<ResourceSet, Diagnostic> {
    let bad = |why: String| {
        Diagnostic::new("E907", format!("`--set {text}`: {why}")).help(
            "release takes memory, cpus, disk, walltime, partition (or queue), account, qos: e.g. --set memory=8GiB --set walltime=4h",
        )
    };
    let Some((k, v)) = text.split_once('=') else { return Err(bad("needs KEY=VALUE".into())) };
    let (k, v) = (k.trim(), v.trim());
    let Some(resource) = Resource::of_key(k) else { return Err(bad(format!("`{k}` is not a resource a queued job has"))) };
    let info = crate::check::keys::key(if k == "queue" { "partition" } else { k }).ok_or_else(|| bad(format!("unknown key `{k}`")))?;
    let file = crate::source::FileId(0);
    let src = format!("bps 1\nx = {v}\n");
    let parsed = crate::syntax::parse(file, &src);
    let expr = match parsed.module.stmts.first() {
        Some(crate::syntax::ast::Stmt { kind: crate::syntax::ast::StmtKind::Attr { value, .. }, .. }) if parsed.diags.is_empty() => {
            Some(value)
        }
        _ => None,
    };
    let value = expr.and_then(|e| crate::check::build::typed_value(file, e, info.ty, k).ok().flatten());
    use crate::check::model::Value;
    let value = match (resource, value) {
        (Resource::Memory | Resource::Disk, Some(Value::Size(b))) => ResourceValue::Bytes(b),
        (Resource::Walltime, Some(Value::Duration(s))) => ResourceValue::Seconds(s),
        (Resource::Cpus, Some(Value::Int(n))) if n > 0 => ResourceValue::Count(n as u64),
        (Resource::Partition | Resource::Account | Resource::Qos, Some(Value::Str(s))) => ResourceValue::Name(s),
        // A bare name is fine on the command line.
        (Resource::Partition | Resource::Account | Resource::Qos, None)
            if !v.is_empty() && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) =>
        {
            ResourceValue::Name(v.to_string())
        }
        (r, _) => {
            let what = match r {
                Resource::Memory | Resource::Disk => "a size such as 8GiB",
                Resource::Walltime => "a duration such as 4h or 90m",
                Resource::Cpus => "a number of cores",
                _ => "a name",
            };
            return Err(bad(format!("`{v}` is not {what}")));
        }
    };
    Ok(ResourceSet { resource, value, text: text.to_string() })
}

fn record(op: Op, args: OpArgs, backend: &str, started: SystemTime) -> Operation {
    Operation {
        op,
        args,
        at: crate::submitdir::time::rfc3339(started),
        seconds: 0.0,
        user: operations::user(),
        host: operations::host(),
        bpsc_version: env!("CARGO_PKG_VERSION").to_string(),
        backend: backend.to_string(),
        outcome: Outcome::Ok,
        commands: Vec::new(),
        engine_ids: Vec::new(),
        pid: None,
        notes: Vec::new(),
        error: None,
        other: Default::default(),
    }
}

fn outcome_of(d: &Diagnostic) -> Outcome {
    match d.code {
        "E901" | "E902" | "E907" => Outcome::Refused,
        "E903" => Outcome::Unsupported,
        _ => Outcome::Failed,
    }
}

/// Whether the engine's own files show a submission that `operations.jsonl` does not
/// (a directory submitted by hand with the engine's tools).
fn engine_evidence(engine: &dyn crate::backend::Engine, submit: &Path) -> Option<String> {
    let st = engine.harvest(submit);
    st.sources.first().cloned()
}

/// Run one operation on `submit` with `runner`, record it, and say how it went.
pub fn operate(submit: &Path, req: &Request, opts: &OpOptions, runner: &dyn Runner) -> Done {
    let started = SystemTime::now();
    let t0 = Instant::now();
    let op = req.op();
    // Not a submit directory: nothing to record it in.
    let usage = |msg: String, backend: &str| {
        let mut rec = record(op, req.args(), backend, started);
        rec.outcome = Outcome::Refused;
        rec.error = Some(ErrorRecord { code: "usage".into(), message: msg, help: None });
        Done { record: rec, diag: None, exit: OP_USAGE, campaign: String::new(), submit: submit.to_path_buf() }
    };
    let meta = match Meta::read(submit) {
        Ok(m) => m,
        Err(e) => return usage(e, ""),
    };
    let Some(engine) = crate::backend::find(&meta.backend) else {
        return usage(format!("{}: unknown backend `{}` in bpsc.json", submit.display(), meta.backend), &meta.backend);
    };
    let (history, _notes) = operations::read(submit);
    let control = Control::of(&history);
    let mut rec = record(op, req.args(), &meta.backend, started);
    let finish = |mut rec: Operation, diag: Option<Diagnostic>, dry: bool| -> Done {
        rec.seconds = t0.elapsed().as_secs_f64();
        if let Some(d) = &diag {
            rec.outcome = outcome_of(d);
            rec.error = Some(ErrorRecord { code: d.code.into(), message: d.message.clone(), help: d.help.clone() });
        } else if dry {
            rec.outcome = Outcome::DryRun;
        }
        let mut exit = diag.as_ref().map_or(OP_OK, |d| op_status(d.code));
        if !dry {
            if let Err(e) = operations::append(submit, &rec) {
                // The operation happened; not recording it is still an error to report.
                let d = Diagnostic::new(
                    "E905",
                    format!("could not record the operation in {}: {e}", submit.join(operations::OPERATIONS).display()),
                );
                exit = exit.max(OP_USAGE);
                return Done { record: rec, diag: diag.or(Some(d)), exit, campaign: meta.campaign.clone(), submit: submit.to_path_buf() };
            }
        }
        Done { record: rec, diag, exit, campaign: meta.campaign.clone(), submit: submit.to_path_buf() }
    };
    // What the campaign's state allows.
    let evidence = if control.is_submitted() { None } else { engine_evidence(engine, submit) };
    let submitted = control.is_submitted() || evidence.is_some();
    let refuse = match req {
        Request::Submit { resubmit: false } if submitted => Some(
            match history.get(control.submitted.unwrap_or(usize::MAX)) {
                Some(o) => Diagnostic::new(
                    "E902",
                    format!(
                        "{} was already submitted, at {} by {}@{} (engine ids: {})",
                        submit.display(),
                        o.at,
                        o.user,
                        o.host,
                        o.engine_ids.join(" ")
                    ),
                ),
                None => Diagnostic::new(
                    "E902",
                    format!(
                        "{} was already submitted with the engine's own tools ({} exists)",
                        submit.display(),
                        evidence.clone().unwrap_or_default()
                    ),
                ),
            }
            .help("`bpsc submit --resubmit DIR` submits it again; `bpsc restart DIR` writes a new directory with only what is left"),
        ),
        Request::Submit { .. } => None,
        _ if !submitted => Some(
            Diagnostic::new("E901", format!("{} was never submitted: there is nothing to {}", submit.display(), op.as_str()))
                .help("submit it with `bpsc submit DIR`"),
        ),
        _ if control.is_cancelled() => Some(
            Diagnostic::new(
                "E901",
                format!(
                    "{} was cancelled at {}: there is nothing to {}",
                    submit.display(),
                    control.cancelled_at.clone().unwrap_or_default(),
                    op.as_str()
                ),
            )
            .help("`bpsc submit --resubmit DIR` submits it again"),
        ),
        _ => None,
    };
    if let Some(d) = refuse {
        return finish(rec, Some(d), false);
    }
    let sets = match req {
        Request::Release { sets } => match sets.iter().map(|s| parse_resource_set(s)).collect::<Result<Vec<_>, _>>() {
            Ok(v) => v,
            Err(d) => return finish(rec, Some(d), false),
        },
        _ => Vec::new(),
    };
    let mut s = Session::new(op, submit, &meta, &history, &control, runner);
    s.dry_run = opts.dry_run;
    s.resubmit = matches!(req, Request::Submit { resubmit: true }) && submitted;
    s.wait = Duration::from_secs(opts.wait);
    let from = control.priority.or(meta.priority).unwrap_or(0);
    let result = match req {
        Request::Submit { .. } => engine.submit(&mut s),
        Request::Cancel => engine.cancel(&mut s),
        Request::Hold { now } => engine.hold(&mut s, *now),
        Request::Release { .. } => engine.release(&mut s, &sets),
        Request::Priority(p) => engine.set_priority(&mut s, *p, from),
    };
    rec.commands = s.ran.iter().map(|r| r.for_record()).collect();
    rec.engine_ids = std::mem::take(&mut s.engine_ids);
    rec.pid = s.pid;
    rec.notes = std::mem::take(&mut s.notes);
    let dry = s.dry_run;
    finish(rec, result.err(), dry)
}

/// Report an operation: JSON on `out`, or for people on `err`.
pub fn report(d: &Done, json: bool, out: &mut dyn Write, err: &mut dyn Write) {
    if json {
        let _ = writeln!(out, "{}", serde_json::to_string_pretty(&d.to_json()).unwrap_or_default());
        return;
    }
    let r = &d.record;
    for c in &r.commands {
        let status = match (&c.error, c.exit_code) {
            (Some(crate::backend::ops::RunError::NotFound), _) => "not found".into(),
            (Some(crate::backend::ops::RunError::Timeout), _) => "timed out".into(),
            (Some(crate::backend::ops::RunError::Spawn(e)), _) => format!("not started: {e}"),
            (None, Some(code)) => format!("exit {code}"),
            (None, None) if r.outcome == Outcome::DryRun => "not run (--dry-run)".into(),
            (None, None) => "no exit status".into(),
        };
        let polls = c.polls.map(|p| format!(", {p} look{}", if p == 1 { "" } else { "s" })).unwrap_or_default();
        let _ = writeln!(err, "  $ {}    [{status}, {:.1} s{polls}]", c.line, c.seconds);
    }
    for n in &r.notes {
        let _ = writeln!(err, "  note: {n}");
    }
    match &d.diag {
        None if r.error.is_some() => {
            let _ = writeln!(err, "error: {}", r.error.as_ref().map(|e| e.message.as_str()).unwrap_or(""));
        }
        Some(diag) => {
            let _ = err.write_all(
                crate::diag::render::render_human(&crate::source::SourceMap::new(), std::slice::from_ref(diag), false).as_bytes(),
            );
        }
        None => {
            let what = match (r.op, r.outcome) {
                (_, Outcome::DryRun) => "dry run: nothing was changed".to_string(),
                (Op::Submit, _) => format!("submitted (engine ids: {})", r.engine_ids.join(" ")),
                (Op::Cancel, _) => "cancelled; the engine confirms nothing of it is left in the queue".to_string(),
                (Op::Hold, _) => "held: no new job starts until `bpsc release`".to_string(),
                (Op::Release, _) => "released".to_string(),
                (Op::Priority, _) => format!("priority set to {}", r.args.priority.unwrap_or(0)),
            };
            let _ = writeln!(err, "bpsc {}: campaign {} ({}): {what}", r.op.as_str(), d.campaign, r.backend);
        }
    }
}

/// Run and report one operation with the real engine tools; the exit status.
pub fn run(submit: &Path, req: &Request, opts: &OpOptions, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let d = operate(submit, req, opts, &SystemRunner);
    report(&d, opts.json, out, err);
    d.exit
}

pub fn submit_cmd(a: &SubmitArgs, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    run(&a.submit, &Request::Submit { resubmit: a.resubmit }, &a.opts, out, err)
}
pub fn cancel_cmd(a: &CancelArgs, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    run(&a.submit, &Request::Cancel, &a.opts, out, err)
}
pub fn hold_cmd(a: &HoldArgs, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    run(&a.submit, &Request::Hold { now: a.now }, &a.opts, out, err)
}
pub fn release_cmd(a: &ReleaseArgs, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    run(&a.submit, &Request::Release { sets: a.sets.clone() }, &a.opts, out, err)
}
pub fn priority_cmd(a: &PriorityArgs, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    run(&a.submit, &Request::Priority(a.priority), &a.opts, out, err)
}

// ------------------------------------------------------------------ bpsc explain

/// For an E9xx code: the example campaign compiled into a scratch directory and operated on
/// with a scripted engine ([`crate::backend::ops::FakeRunner`]), as `--operate=SCENARIO`
/// in the code's example arguments says.  `None` for other codes.
pub fn explain_example(info: &crate::diag::codes::CodeInfo) -> Option<(Vec<Diagnostic>, String)> {
    use crate::backend::ops::FakeRunner;
    let scenario = info.example_args.iter().find_map(|a| a.strip_prefix("--operate="))?;
    let backend = info.example_args.iter().find_map(|a| a.strip_prefix("--backend=")).unwrap_or("slurm");
    let dir = std::env::temp_dir().join(format!("bpsc-explain-{}-{}", info.code, std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let fail = |why: String| Some((Vec::new(), format!("(the example could not be prepared: {why})")));
    let fs = crate::fs::MemFs::new().with("example.bps", info.example.as_bytes().to_vec());
    let a = crate::pipeline::CompileArgs { file: "example.bps".into(), ..Default::default() };
    let (ir, _) = match crate::pipeline::lower_file(&fs, &a, &mut Vec::new()) {
        Ok(x) => x,
        Err(c) => return fail(format!("does not compile (exit {c})")),
    };
    let Some(engine) = crate::backend::find(backend) else { return fail(format!("no backend {backend}")) };
    if let Err(e) = crate::pipeline::write_submit_dir(engine, &ir, &dir, true, |e| crate::pipeline::meta_of(&ir, engine, e)) {
        return fail(match e {
            crate::pipeline::WriteError::Usage(m) => m,
            crate::pipeline::WriteError::Diag(d) => d.message,
        });
    }
    // A submission recorded as `bpsc submit` would record it.
    let submitted = |ids: &[&str]| {
        let mut r = record(Op::Submit, OpArgs::default(), backend, SystemTime::now());
        r.engine_ids = ids.iter().map(|s| s.to_string()).collect();
        let _ = operations::append(&dir, &r);
    };
    let opts = OpOptions { wait: 0, ..Default::default() };
    let (req, runner, command) = match scenario {
        "cancel" => (Request::Cancel, FakeRunner::new(), "bpsc cancel DIR"),
        "submit-twice" => {
            let f = FakeRunner::new().on("condor_submit_dag", 0, "1 job(s) submitted to cluster 7.\n");
            let _ = operate(&dir, &Request::Submit { resubmit: false }, &opts, &f);
            (Request::Submit { resubmit: false }, f, "bpsc submit DIR   (a second time)")
        }
        "hold" => {
            submitted(&["4242"]);
            (Request::Hold { now: false }, FakeRunner::new(), "bpsc hold DIR")
        }
        "submit-without-tools" => {
            (Request::Submit { resubmit: false }, FakeRunner::new().without("condor_submit_dag"), "bpsc submit DIR   (no HTCondor here)")
        }
        "priority-denied" => {
            let _ = std::fs::write(dir.join("slurm/jobids"), "101 A_0 a\n");
            submitted(&["101"]);
            let f =
                FakeRunner::new().on("squeue", 0, "101|0|Priority\n").on_err("scontrol update", 1, "Access/permission denied for job 101");
            (Request::Priority(10), f, "bpsc priority DIR 10   (as a user)")
        }
        "cancel-unconfirmed" => {
            let _ = std::fs::write(dir.join("slurm/jobids"), "101 A_0 a\n");
            submitted(&["101"]);
            (Request::Cancel, FakeRunner::new().on("squeue", 0, "101_0|RUNNING\n"), "bpsc cancel DIR --wait 0")
        }
        "release-set-qos" => {
            submitted(&["7"]);
            let mut h = record(Op::Hold, OpArgs::default(), backend, SystemTime::now());
            h.engine_ids = vec!["7".into()];
            let _ = operations::append(&dir, &h);
            (
                Request::Release { sets: vec!["qos=\"high\"".into()] },
                FakeRunner::new().on("condor_q 7", 0, "5\n"),
                "bpsc release DIR --set qos=high",
            )
        }
        other => return fail(format!("unknown scenario {other}")),
    };
    let d = operate(&dir, &req, &opts, &runner);
    let _ = std::fs::remove_dir_all(&dir);
    let mut text = format!("after `bpsc compile example.bps --backend {backend} -o DIR`, `{command}` says:\n\n");
    text.push_str(&crate::diag::render::render_human(&crate::source::SourceMap::new(), d.diag.as_slice(), false));
    Some((d.diag.into_iter().collect(), text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_sets_parse_with_the_language_syntax() {
        let s = parse_resource_set("memory=8GiB").unwrap();
        assert_eq!((s.resource, s.mib()), (Resource::Memory, Some(8192)));
        assert_eq!(parse_resource_set("walltime=1h30m").unwrap().seconds(), Some(5400));
        assert_eq!(parse_resource_set("cpus=4").unwrap().count(), Some(4));
        assert_eq!(parse_resource_set("partition=\"long\"").unwrap().name(), Some("long"));
        assert_eq!(parse_resource_set("queue=short").unwrap().resource, Resource::Partition);
        for bad in ["memory=lots", "walltime=4", "retries=3", "memory", "cpus=0", "partition=a b"] {
            assert_eq!(parse_resource_set(bad).unwrap_err().code, "E907", "{bad}");
        }
    }
}
