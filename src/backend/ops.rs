//! Operating a submitted campaign: the engine-neutral half of the contract.
//!
//! Every engine implements the five operations of [`super::Engine`] (`submit`, `cancel`,
//! `hold`, `release`, `set_priority`) in its folder's `ops.rs`, in the engine's own terms.
//! An operation is a short program over a [`Session`]: it runs engine commands ([`Cmd`])
//! through the session, which records each one with its exit status and output ([`Ran`]),
//! and either succeeds or returns a coded [`Diagnostic`]:
//!
//! | code | meaning |
//! |---|---|
//! | E901 | the campaign's state does not allow it (never submitted, cancelled, finished, still in the queue) |
//! | E902 | already submitted (`--resubmit` submits again) |
//! | E903 | the engine cannot do it; the help says what to do instead |
//! | E904 | an engine tool is not installed here (named, with what to install) |
//! | E905 | an engine command failed (its output is in the message) |
//! | E906 | the engine did not confirm in time |
//! | E907 | a `release --set` resource this engine cannot change on queued jobs |
//!
//! Commands run through a [`Runner`]: [`SystemRunner`] runs them for real, with a timeout,
//! in their own process group, never panicking; [`FakeRunner`] answers from a script and
//! keeps the command lines, so tests assert exactly what an engine would run (Pegasus and
//! Nextflow, which cannot run on the test machines).  `--dry-run` runs queries only and
//! shows the commands that would change the engine's state.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::diag::Diagnostic;
pub use crate::submitdir::operations::{sh_word, Cmd, Op, Ran, RunError};
use crate::submitdir::operations::{Control, Operation};
use crate::submitdir::Meta;

/// Seconds a command may run when it does not say (submission scripts of large campaigns
/// run sbatch thousands of times: generous).
pub const DEFAULT_TIMEOUT_S: u64 = 3600;

/// Runs engine commands.
pub trait Runner: Sync {
    /// Run `cmd` from directory `dir` (the submit directory); never panics.
    fn run(&self, dir: &Path, cmd: &Cmd) -> Ran;
    /// Whether `program` can be run (found on `PATH`, or a path that exists).
    fn has(&self, program: &str) -> bool;
    /// Wait between polls.
    fn pause(&self, d: Duration) {
        std::thread::sleep(d)
    }
}

/// The real thing: `std::process::Command`, each command in its own process group (killed as
/// a group on timeout), output captured, a detached command left running with its pid.
pub struct SystemRunner;

/// `program` on `PATH` (or as a path).
pub fn on_path(program: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let exec = |p: &Path| p.metadata().map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false);
    if program.contains('/') {
        let p = PathBuf::from(program);
        return exec(&p).then_some(p);
    }
    std::env::var_os("PATH").and_then(|paths| std::env::split_paths(&paths).map(|d| d.join(program)).find(|p| exec(p)))
}

fn read_all(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = r.read_to_end(&mut b);
        String::from_utf8_lossy(&b).into_owned()
    })
}

impl Runner for SystemRunner {
    fn has(&self, program: &str) -> bool {
        on_path(program).is_some()
    }

    fn run(&self, dir: &Path, cmd: &Cmd) -> Ran {
        use std::os::unix::process::{CommandExt, ExitStatusExt};
        let t0 = Instant::now();
        let mut ran = Ran { cmd: cmd.clone(), line: cmd.line(), ..Default::default() };
        let Some(program) = cmd.argv.first() else {
            ran.error = Some(RunError::Spawn("empty command".into()));
            return ran;
        };
        let mut c = Command::new(program);
        c.args(&cmd.argv[1..]).current_dir(cmd.cwd.as_ref().map(|d| dir.join(d)).unwrap_or_else(|| dir.to_path_buf()));
        for (k, v) in &cmd.env {
            c.env(k, v);
        }
        c.stdin(Stdio::null()).process_group(0);
        if let Some(log) = &cmd.detach {
            let out = match std::fs::OpenOptions::new().create(true).append(true).open(dir.join(log)) {
                Ok(f) => f,
                Err(e) => {
                    ran.error = Some(RunError::Spawn(format!("{}: {e}", dir.join(log).display())));
                    return ran;
                }
            };
            let err = out.try_clone();
            c.stdout(out);
            if let Ok(e) = err {
                c.stderr(e);
            }
            match c.spawn() {
                Ok(child) => {
                    ran.pid = Some(child.id());
                    ran.exit_code = Some(0);
                    // The child is reaped by nobody if bpsc outlives it (bpsc exits right after).
                    std::mem::forget(child);
                }
                Err(e) => ran.error = Some(spawn_error(&e)),
            }
            ran.seconds = t0.elapsed().as_secs_f64();
            return ran;
        }
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = match c.spawn() {
            Ok(ch) => ch,
            Err(e) => {
                ran.error = Some(spawn_error(&e));
                ran.seconds = t0.elapsed().as_secs_f64();
                return ran;
            }
        };
        let out = child.stdout.take().map(read_all);
        let err = child.stderr.take().map(read_all);
        let limit = Duration::from_secs(if cmd.timeout_s == 0 { DEFAULT_TIMEOUT_S } else { cmd.timeout_s });
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break Some(s),
                Ok(None) if t0.elapsed() >= limit => {
                    // The whole group: a script's children (sbatch, pegasus-plan) too.
                    // SAFETY: kill(2) on the process group this runner created for the child.
                    unsafe {
                        libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL);
                    }
                    let _ = child.kill();
                    let _ = child.wait();
                    ran.error = Some(RunError::Timeout);
                    break None;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(if t0.elapsed() < Duration::from_secs(2) { 5 } else { 50 })),
                Err(e) => {
                    ran.error = Some(RunError::Spawn(e.to_string()));
                    break None;
                }
            }
        };
        if let Some(s) = status {
            ran.exit_code = s.code();
            ran.signal = s.signal();
        }
        // A timed-out group is dead, so its pipes are closed and these joins return.
        ran.stdout = out.and_then(|h| h.join().ok()).unwrap_or_default();
        ran.stderr = err.and_then(|h| h.join().ok()).unwrap_or_default();
        ran.seconds = t0.elapsed().as_secs_f64();
        ran
    }
}

fn spawn_error(e: &std::io::Error) -> RunError {
    if e.kind() == std::io::ErrorKind::NotFound {
        RunError::NotFound
    } else {
        RunError::Spawn(e.to_string())
    }
}

/// A scripted runner for tests and `bpsc explain`: answers each command from the first
/// rule whose prefix its shell line starts with (a rule with several answers gives them in
/// order, then repeats its last), 0 with no output otherwise; keeps every command.
#[derive(Default)]
pub struct FakeRunner {
    rules: Mutex<Vec<(String, Vec<Ran>)>>,
    /// Files a rule's command writes (what the engine's tool would leave behind).
    creates: Mutex<Vec<(String, PathBuf, String)>>,
    missing: Vec<String>,
    log: Mutex<Vec<Cmd>>,
}

impl FakeRunner {
    pub fn new() -> FakeRunner {
        FakeRunner::default()
    }
    /// Commands whose line starts with `prefix` exit `code` with `stdout`.
    pub fn on(self, prefix: &str, code: i32, stdout: &str) -> FakeRunner {
        self.on_ran(prefix, Ran { exit_code: Some(code), stdout: stdout.into(), ..Default::default() })
    }
    /// ... with `stderr` too.
    pub fn on_err(self, prefix: &str, code: i32, stderr: &str) -> FakeRunner {
        self.on_ran(prefix, Ran { exit_code: Some(code), stderr: stderr.into(), ..Default::default() })
    }
    pub fn on_ran(self, prefix: &str, r: Ran) -> FakeRunner {
        {
            let mut rules = self.rules.lock().unwrap_or_else(|e| e.into_inner());
            match rules.iter_mut().find(|(p, _)| p == prefix) {
                Some((_, v)) => v.push(r),
                None => rules.push((prefix.to_string(), vec![r])),
            }
        }
        self
    }
    /// Commands whose line starts with `prefix` also write `file` (relative to the directory
    /// they run in) with `text`, as the engine's tool would.
    pub fn creating(self, prefix: &str, file: &str, text: &str) -> FakeRunner {
        self.creates.lock().unwrap_or_else(|e| e.into_inner()).push((prefix.to_string(), file.into(), text.to_string()));
        self
    }
    /// `program` is not installed.
    pub fn without(mut self, program: &str) -> FakeRunner {
        self.missing.push(program.to_string());
        self
    }
    /// Every command run so far, as shell lines.
    pub fn lines(&self) -> Vec<String> {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).iter().map(Cmd::line).collect()
    }
    pub fn commands(&self) -> Vec<Cmd> {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Runner for FakeRunner {
    fn has(&self, program: &str) -> bool {
        !self.missing.iter().any(|m| m == program || program.ends_with(&format!("/{m}")))
    }
    fn run(&self, dir: &Path, cmd: &Cmd) -> Ran {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).push(cmd.clone());
        let mut ran = Ran { cmd: cmd.clone(), line: cmd.line(), exit_code: Some(0), seconds: 0.0, ..Default::default() };
        if !self.has(cmd.program()) {
            ran.exit_code = None;
            ran.error = Some(RunError::NotFound);
            return ran;
        }
        let line = cmd.argv.iter().map(|a| sh_word(a)).collect::<Vec<_>>().join(" ");
        for (prefix, file, text) in self.creates.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            if line.starts_with(prefix.as_str()) {
                let p = dir.join(file);
                if let Some(parent) = p.parent() {
                    let _ = std::fs::create_dir_all(parent);
                }
                let _ = std::fs::write(p, text);
            }
        }
        let mut rules = self.rules.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, answers)) = rules.iter_mut().find(|(p, _)| line.starts_with(p.as_str())) {
            let a = if answers.len() > 1 { answers.remove(0) } else { answers[0].clone() };
            ran.exit_code = a.exit_code;
            ran.error = a.error;
            ran.stdout = a.stdout;
            ran.stderr = a.stderr;
            ran.pid = a.pid;
        }
        if cmd.detach.is_some() && ran.pid.is_none() {
            ran.pid = Some(4242);
        }
        ran
    }
    fn pause(&self, _d: Duration) {}
}

/// A resource `release --set` changes on queued jobs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resource {
    Memory,
    Cpus,
    Disk,
    Walltime,
    Partition,
    Account,
    Qos,
}

impl Resource {
    pub const ALL: [Resource; 7] =
        [Resource::Memory, Resource::Cpus, Resource::Disk, Resource::Walltime, Resource::Partition, Resource::Account, Resource::Qos];
    /// The campaign language's key (`queue` is the same as `partition`).
    pub fn key(self) -> &'static str {
        match self {
            Resource::Memory => "memory",
            Resource::Cpus => "cpus",
            Resource::Disk => "disk",
            Resource::Walltime => "walltime",
            Resource::Partition => "partition",
            Resource::Account => "account",
            Resource::Qos => "qos",
        }
    }
    pub fn of_key(k: &str) -> Option<Resource> {
        if k == "queue" {
            return Some(Resource::Partition);
        }
        Resource::ALL.into_iter().find(|r| r.key() == k)
    }
}

/// One `release --set KEY=VALUE`, typed: sizes in bytes, durations in seconds.
#[derive(Clone, Debug, PartialEq)]
pub struct ResourceSet {
    pub resource: Resource,
    pub value: ResourceValue,
    /// As given.
    pub text: String,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ResourceValue {
    Bytes(u64),
    Seconds(u64),
    Count(u64),
    Name(String),
}

impl ResourceSet {
    /// E907: this engine cannot apply the set (`why`).
    pub fn refused(&self, why: &str) -> Diagnostic {
        Diagnostic::new("E907", format!("`--set {}`: {why}", self.text))
            .help("`bpsc restart DIR --set KEY=VALUE` writes a new submit directory with any setting")
    }
    /// MiB, rounded up (sizes).
    pub fn mib(&self) -> Option<u64> {
        match self.value {
            ResourceValue::Bytes(b) => Some(b.div_ceil(1 << 20).max(1)),
            _ => None,
        }
    }
    pub fn seconds(&self) -> Option<u64> {
        match self.value {
            ResourceValue::Seconds(s) => Some(s),
            _ => None,
        }
    }
    pub fn count(&self) -> Option<u64> {
        match self.value {
            ResourceValue::Count(c) => Some(c),
            _ => None,
        }
    }
    pub fn name(&self) -> Option<&str> {
        match &self.value {
            ResourceValue::Name(s) => Some(s),
            _ => None,
        }
    }
}

/// What to install for an engine tool.
pub fn install_hint(program: &str) -> &'static str {
    let p = program.rsplit('/').next().unwrap_or(program);
    if p.starts_with("condor_") {
        "HTCondor's command-line tools: run bpsc on an access point (submit host) of the pool (https://htcondor.readthedocs.io/en/latest/getting-htcondor/)"
    } else if ["sbatch", "scontrol", "scancel", "squeue", "sacct"].contains(&p) {
        "the Slurm client tools (Debian: apt-get install slurm-client): run bpsc on a login node of the cluster"
    } else if p.starts_with("pegasus-") || p == "plan.sh" {
        "Pegasus WMS 5 on an HTCondor access point (https://pegasus.isi.edu/downloads/)"
    } else if p == "nextflow" {
        "Nextflow (https://www.nextflow.io/docs/latest/install.html; it needs Java 17 or later)"
    } else {
        "the engine's command-line tools"
    }
}

/// E904 for a missing tool.
pub fn tool_missing(program: &str, engine: &str) -> Diagnostic {
    Diagnostic::new("E904", format!("`{program}` is not installed here (not on PATH): the {engine} engine needs it"))
        .help(format!("install {}", install_hint(program)))
}

/// One operation in progress: what it may read, and what it ran.
pub struct Session<'a> {
    pub op: Op,
    pub submit: &'a Path,
    pub meta: &'a Meta,
    /// Every recorded operation of the directory, and what they add up to.
    pub history: &'a [Operation],
    pub control: &'a Control,
    runner: &'a dyn Runner,
    /// `--dry-run`: queries run, changes are only shown.
    pub dry_run: bool,
    /// `submit --resubmit`.
    pub resubmit: bool,
    /// How long to wait for the engine to confirm (cancel, hold), and how often to look.
    pub wait: Duration,
    pub poll: Duration,
    /// The bpsc executable the jobs run (`$BPSC_EXE`, else this one).
    pub bpsc_exe: String,
    pub ran: Vec<Ran>,
    pub engine_ids: Vec<String>,
    pub pid: Option<u32>,
    pub notes: Vec<String>,
}

impl<'a> Session<'a> {
    pub fn new(
        op: Op,
        submit: &'a Path,
        meta: &'a Meta,
        history: &'a [Operation],
        control: &'a Control,
        runner: &'a dyn Runner,
    ) -> Session<'a> {
        Session {
            op,
            submit,
            meta,
            history,
            control,
            runner,
            dry_run: false,
            resubmit: false,
            wait: Duration::from_secs(300),
            poll: Duration::from_secs(2),
            bpsc_exe: super::bpsc_exe().unwrap_or_else(|_| "bpsc".into()),
            ran: Vec::new(),
            engine_ids: Vec::new(),
            pid: None,
            notes: Vec::new(),
        }
    }

    /// E904 unless every program is installed.
    pub fn require(&self, programs: &[&str]) -> Result<(), Diagnostic> {
        match programs.iter().find(|p| !self.runner.has(p)) {
            Some(p) => Err(tool_missing(p, &self.meta.backend)),
            None => Ok(()),
        }
    }

    /// Run a command and record it; a missing program (E904), a timeout (E906) or a command
    /// that could not start (E905) is an error, any exit status is not.
    pub fn run(&mut self, cmd: Cmd) -> Result<Ran, Diagnostic> {
        if self.dry_run && cmd.mutates {
            let r = Ran { line: cmd.line(), cmd, exit_code: None, ..Default::default() };
            self.ran.push(r.clone());
            return Ok(Ran { exit_code: Some(0), ..r });
        }
        let r = self.runner.run(self.submit, &cmd);
        self.ran.push(r.clone());
        match &r.error {
            None => Ok(r),
            Some(RunError::NotFound) => Err(tool_missing(cmd.program(), &self.meta.backend)),
            Some(RunError::Timeout) => {
                Err(Diagnostic::new("E906", format!("`{}` did not finish in {} s and was killed", r.line, limit_s(&cmd)))
                    .help("the engine may be overloaded; look at it with the engine's own tools and `bpsc status`, then try again"))
            }
            Some(RunError::Spawn(e)) => Err(Diagnostic::new("E905", format!("`{}` could not be started: {e}", r.line))),
        }
    }

    /// [`Session::run`], and an exit status other than 0 is E905 too.
    pub fn run_ok(&mut self, cmd: Cmd) -> Result<Ran, Diagnostic> {
        let r = self.run(cmd)?;
        if r.exit_code == Some(0) {
            Ok(r)
        } else {
            Err(failed(&r))
        }
    }

    /// [`Session::run_ok`], except that a failure whose every error line `benign` accepts
    /// (jobs that finished meanwhile, nothing matched) is not one.
    pub fn run_tolerating(&mut self, cmd: Cmd, benign: &dyn Fn(&str) -> bool) -> Result<Ran, Diagnostic> {
        let r = self.run(cmd)?;
        if r.exit_code == Some(0) {
            return Ok(r);
        }
        let lines: Vec<&str> = r.stderr.lines().chain(r.stdout.lines()).map(str::trim).filter(|l| !l.is_empty()).collect();
        if !lines.is_empty() && lines.iter().all(|l| benign(l)) {
            Ok(r)
        } else {
            Err(failed(&r))
        }
    }

    /// Run the query `cmd` until `done` says so or [`Session::wait`] has passed (E906): the
    /// engine's confirmation.  The record keeps the last run with the number of polls.
    pub fn wait_until(&mut self, cmd: Cmd, what: &str, done: &dyn Fn(&Ran) -> bool) -> Result<Ran, Diagnostic> {
        if self.dry_run {
            self.notes.push(format!("would wait until {what} (`{}`)", cmd.line()));
            return Ok(Ran::default());
        }
        let t0 = Instant::now();
        let mut polls = 0u32;
        loop {
            let r = self.runner.run(self.submit, &cmd);
            polls += 1;
            let finished = r.error.is_none() && done(&r);
            if finished || r.error.is_some() || t0.elapsed() >= self.wait {
                let mut rec = r.clone();
                rec.polls = Some(polls);
                rec.seconds = t0.elapsed().as_secs_f64();
                self.ran.push(rec);
                if let Some(RunError::NotFound) = r.error {
                    return Err(tool_missing(cmd.program(), &self.meta.backend));
                }
                if finished {
                    return Ok(r);
                }
                return Err(Diagnostic::new(
                    "E906",
                    format!(
                        "the engine did not confirm that {what} within {} s ({polls} looks with `{}`)",
                        self.wait.as_secs(),
                        cmd.line()
                    ),
                )
                .help("the request was sent; look again with `bpsc status` or the engine's tools, or wait longer with --wait SECONDS"));
            }
            self.runner.pause(self.poll);
        }
    }

    pub fn note(&mut self, n: impl Into<String>) {
        self.notes.push(n.into());
    }

    /// E903: this engine cannot do the operation; `instead` says what to do.
    pub fn unsupported(&self, why: &str, instead: &str) -> Diagnostic {
        Diagnostic::new("E903", format!("{} cannot {}: {why}", self.meta.backend, op_phrase(self.op))).help(instead.to_string())
    }

    /// The engine ids the latest submission recorded (empty when none).
    pub fn submitted_ids(&self) -> &[String] {
        &self.control.engine_ids
    }
}

fn limit_s(cmd: &Cmd) -> u64 {
    if cmd.timeout_s == 0 {
        DEFAULT_TIMEOUT_S
    } else {
        cmd.timeout_s
    }
}

/// E905 for a command that exited with an error.
pub fn failed(r: &Ran) -> Diagnostic {
    let status = match (r.exit_code, r.signal) {
        (Some(c), _) => format!("exit status {c}"),
        (None, Some(s)) => format!("signal {s}"),
        _ => "no exit status".into(),
    };
    let out = r.output();
    let mut d = Diagnostic::new("E905", format!("`{}` failed ({status})", r.line));
    if !out.is_empty() {
        let shown: Vec<&str> = out.lines().rev().take(12).collect::<Vec<_>>().into_iter().rev().collect();
        d = d.note(format!("it said:\n{}", shown.join("\n")));
    }
    d
}

/// "hold the campaign", for messages.
pub fn op_phrase(op: Op) -> &'static str {
    match op {
        Op::Submit => "submit the campaign",
        Op::Cancel => "cancel the campaign",
        Op::Hold => "hold (pause) the campaign",
        Op::Release => "release the campaign",
        Op::Priority => "change the priority of the campaign's jobs",
    }
}

/// The words of a command line from `bpsc.json`'s `submit_command` (plain words only, as
/// the engines write it).
pub fn words(line: &str) -> Vec<String> {
    line.split_whitespace().map(str::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_runner_captures_output_times_out_and_names_missing_programs() {
        let d = std::env::temp_dir();
        let r = SystemRunner.run(&d, &Cmd::query(&["sh", "-c", "echo out; echo err >&2; exit 3"]));
        assert_eq!((r.exit_code, r.stdout.as_str(), r.stderr.as_str(), r.error.clone()), (Some(3), "out\n", "err\n", None));
        let t0 = Instant::now();
        let r = SystemRunner.run(&d, &Cmd::query(&["sh", "-c", "sleep 30 & sleep 30"]).timeout(1));
        assert_eq!(r.error, Some(RunError::Timeout));
        assert!(t0.elapsed() < Duration::from_secs(10), "the group was killed: {:?}", t0.elapsed());
        let r = SystemRunner.run(&d, &Cmd::query(&["bpsc-no-such-tool-xyz"]));
        assert_eq!(r.error, Some(RunError::NotFound));
        assert!(!SystemRunner.has("bpsc-no-such-tool-xyz") && SystemRunner.has("sh"));
        let r = SystemRunner.run(&d, &Cmd::default());
        assert!(matches!(r.error, Some(RunError::Spawn(_))));
    }

    #[test]
    fn the_fake_runner_answers_in_order_then_repeats() {
        let f = FakeRunner::new().on("squeue", 0, "1\n").on("squeue", 0, "").without("sbatch");
        let d = Path::new(".");
        assert_eq!(f.run(d, &Cmd::query(&["squeue", "-h"])).stdout, "1\n");
        assert_eq!(f.run(d, &Cmd::query(&["squeue", "-h"])).stdout, "");
        assert_eq!(f.run(d, &Cmd::query(&["squeue", "-h"])).stdout, "");
        assert_eq!(f.run(d, &Cmd::action(&["sbatch"])).error, Some(RunError::NotFound));
        assert_eq!(f.lines(), vec!["squeue -h", "squeue -h", "squeue -h", "sbatch"]);
    }
}
