//! Notifications: the campaign's `notify { on = [...], slow_after = ..., command = "..." }`.
//!
//! Events: `failure` (the first failed job, or the campaign ended failed), `done` (every job
//! succeeded), `slow` (a job running longer than `slow_after`; once per job).  The command
//! runs under `/bin/sh -c` with `BPSC_EVENT`, `BPSC_CAMPAIGN`, `BPSC_STEP`, `BPSC_JOB` and
//! `BPSC_SUBMIT` in its environment; its `{campaign}`, `{event}`, `{step}`, `{job}` and
//! `{user}` placeholders become references to those variables, quoted for where they
//! stand, so no value is ever parsed by the shell.
//!
//! Native hooks: where the engine fires an event itself, `bpsc status --watch` (in the
//! default `--notify auto`) leaves it to the engine:
//!
//! | engine | native hooks | left to `--watch` |
//! |---|---|---|
//! | htcondor | `done`, `failure`: the FINAL node's POST script (bpsc-post.sh) | `slow` |
//! | slurm | `done`, `failure`, `slow`: the job script (bpsc-job.sh) | — |
//! | pegasus | `done`, `failure`: workflow shell hooks | `slow` |
//! | nextflow | `done`, `failure`: `workflow.onComplete` / `onError`; `slow`: a per-task watchdog | — |
//!
//! Events already fired are remembered in `SUBMIT/status/notified` (`EVENT JOB` lines), so
//! a restarted watch does not repeat them.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::Report;
use crate::backend::EState;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// Fire the events the engine has no native hook for.
    #[default]
    Auto,
    /// Fire every configured event.
    All,
    None,
}

/// Events the engine fires itself.
pub fn native_events(backend: &str) -> &'static [&'static str] {
    crate::backend::find(backend).map(|e| e.native_events()).unwrap_or(&[])
}

/// The notify command with placeholders turned into quoted variable references (the
/// variables [`fire`] sets); `{data_id}` is empty: an event names a job, not its data ID.
pub fn shell_command(template: &str) -> String {
    use crate::ir::quote::{notify_shell, Fill};
    notify_shell(template, |name| {
        Some(match name {
            "campaign" => Fill::Var("BPSC_CAMPAIGN"),
            "event" => Fill::Var("BPSC_EVENT"),
            "step" => Fill::Var("BPSC_STEP"),
            "job" => Fill::Var("BPSC_JOB"),
            "data_id" => Fill::Text(""),
            _ => return None,
        })
    })
}

/// One event to fire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub event: String,
    pub step: String,
    pub job: String,
}

/// Run the command for one event; returns a line for the operator.
pub fn fire(command: &str, campaign: &str, submit: &Path, ev: &Event) -> String {
    let st = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(shell_command(command))
        .env("BPSC_EVENT", &ev.event)
        .env("BPSC_CAMPAIGN", campaign)
        .env("BPSC_STEP", &ev.step)
        .env("BPSC_JOB", &ev.job)
        .env("BPSC_SUBMIT", submit)
        .stdin(std::process::Stdio::null())
        .status();
    let what = if ev.job.is_empty() { ev.event.clone() } else { format!("{} ({})", ev.event, ev.job) };
    match st {
        Ok(s) if s.success() => format!("notified: {what}"),
        Ok(s) => format!("notify command for {what} failed: {s}"),
        Err(e) => format!("notify command for {what} could not start: {e}"),
    }
}

/// Fires each event once.
pub struct Notifier {
    mode: Mode,
    state_file: PathBuf,
    fired: HashSet<String>,
}

impl Notifier {
    pub fn new(submit: &Path, mode: Mode) -> Notifier {
        let state_file = submit.join("status").join("notified");
        let fired = std::fs::read_to_string(&state_file).map(|t| t.lines().map(|l| l.to_string()).collect()).unwrap_or_default();
        Notifier { mode, state_file, fired }
    }

    /// The events this report calls for that have not fired yet.
    pub fn due(&self, r: &Report) -> Vec<Event> {
        if self.mode == Mode::None {
            return Vec::new();
        }
        let on: Vec<&str> = r.meta.notify.iter().flat_map(|n| n.on.iter().map(|s| s.as_str())).collect();
        let native = native_events(&r.backend);
        let wanted = |e: &str| on.contains(&e) && (self.mode == Mode::All || !native.contains(&e));
        let mut out = Vec::new();
        let push = |event: &str, step: &str, job: &str, out: &mut Vec<Event>| {
            let key = format!("{event} {job}");
            if !self.fired.contains(&key) {
                out.push(Event { event: event.into(), step: step.into(), job: job.into() });
            }
        };
        if wanted("failure") {
            if let Some(j) = r.jobs_in(EState::Failed).next() {
                push("failure", r.label(j), "", &mut out);
            } else if r.exit_code() == super::EXIT_FAILED {
                push("failure", "", "", &mut out);
            }
        }
        if wanted("done") && r.exit_code() == super::EXIT_DONE {
            push("done", "", "", &mut out);
        }
        if wanted("slow") {
            for (j, _) in r.slow() {
                push("slow", r.label(j), &r.tables.jobs[j].id, &mut out);
            }
        }
        // `failure` names the first failed job in BPSC_JOB, but fires once per campaign.
        for e in &mut out {
            if e.event == "failure" {
                if let Some(j) = r.jobs_in(EState::Failed).next() {
                    e.job = r.tables.jobs[j].id.clone();
                }
            }
        }
        out
    }

    /// Fire what is due; remember it.  `status/notified` is locked (`flock`) from reading
    /// what has fired to recording what this call fires, so two watchers of one submit
    /// directory never fire one event twice.
    pub fn observe(&mut self, r: &Report) -> Vec<String> {
        let Some(cmd) = r.meta.notify.as_ref().and_then(|n| n.command.clone()) else { return Vec::new() };
        if self.due(r).is_empty() {
            return Vec::new();
        }
        if let Some(d) = self.state_file.parent() {
            let _ = std::fs::create_dir_all(d);
        }
        let mut state = std::fs::OpenOptions::new().create(true).read(true).append(true).open(&self.state_file).ok();
        if let Some(f) = &state {
            use std::io::Read;
            use std::os::fd::AsRawFd;
            // SAFETY: flock on an open descriptor; released when `state` is closed.
            if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } == 0 {
                let mut text = String::new();
                let _ = (&*f).read_to_string(&mut text);
                self.fired.extend(text.lines().map(|l| l.to_string()));
            }
        }
        let due = self.due(r);
        let mut msgs = Vec::new();
        for ev in due {
            msgs.push(fire(&cmd, &r.campaign, &r.submit, &ev));
            let key = format!("{} {}", ev.event, if ev.event == "failure" { "" } else { &ev.job });
            self.fired.insert(key.clone());
            if let Some(f) = state.as_mut() {
                let _ = writeln!(f, "{key}");
                let _ = f.sync_data();
            }
        }
        msgs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn placeholders_become_quoted_variables() {
        assert_eq!(shell_command("mail -s '{campaign} {event}' ops"), "mail -s ''\"${BPSC_CAMPAIGN}\"' '\"${BPSC_EVENT}\"'' ops");
        assert_eq!(shell_command("echo \"{job}\" {step} {{x}} {other}"), "echo \"${BPSC_JOB}\" \"${BPSC_STEP}\" {x} {other}");
    }
}
