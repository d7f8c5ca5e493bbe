//! Operating a campaign on Slurm (see [`crate::backend::ops`]).
//!
//! `slurm/submit.sh` records one line per sbatch submission in `slurm/jobids` (`ID VAR
//! LABEL`: job arrays, single jobs and fan-in jobs); every operation acts on those ids.
//! Command forms, from the Slurm 22.05 manual pages (scancel(1), scontrol(1), squeue(1)):
//!
//! | operation | commands |
//! |---|---|
//! | submit | `slurm/submit.sh` (sbatch --hold of every array in topological order, dependencies, then `scontrol release`) |
//! | cancel | `scancel ID...`, then `squeue -h -j ID,... -o %i` until empty |
//! | hold | `scontrol hold ID,...` of the ids still queued ("hold: prevent a pending job from being started"); `--now`: `scontrol requeuehold TASK,...` of the running tasks (requeued in a held state; they start again from the beginning after the release); then `squeue` until every pending job says `JobHeldUser`/`JobHeldAdmin` |
//! | release | `scontrol update JobId=ID,... MinMemoryNode=MB TimeLimit=D-HH:MM:SS NumCPUs=N MinTmpDiskNode=MB Partition=P Account=A QOS=Q` (`--set`), then `scontrol release ID,...` |
//! | priority | `scontrol update JobId=ID,... Nice=N` per nice value (pending jobs), then `scontrol hold` again of the ones that were held |
//!
//! Slurm's priority knob for users is the nice value: a higher nice is a lower priority, and
//! only operators and administrators may lower a nice value ("Only privileged users can
//! specify a negative adjustment", sbatch(1) `--nice`).  So `bpsc priority` can lower a
//! campaign's priority as any user, and raise it only as an operator; Slurm's refusal is
//! reported with that explanation.  Slurm 22.05 also forgets a job's hold when its nice
//! value changes (seen on the real cluster: `Priority` goes from 0 to a positive value), so
//! held jobs are held again right after.
//!
//! While a campaign is held, `slurm/HELD` exists: a job that fails and retries by
//! requeueing itself (slurm/bpsc-job.sh) leaves its retry held instead of releasing it, so
//! nothing starts until `bpsc release`; the wave feeder of a campaign larger than its
//! site's `max_submit` submits no further wave while it exists (and leaves a wave it just
//! submitted held).  `cancel` stops the feeder (`slurm/STOP`, SIGTERM to
//! `slurm/feeder.pid`) before it cancels the jobs.

use std::path::{Path, PathBuf};

use crate::backend::ops::{Cmd, Resource, ResourceSet, Session};
use crate::diag::Diagnostic;

/// The marker of a held campaign (read by slurm/bpsc-job.sh).
pub const HELD_MARKER: &str = "slurm/HELD";
/// Ids per scancel / scontrol call.
const CHUNK: usize = 200;

fn jobids_file(submit: &Path) -> PathBuf {
    super::harvest::jobids_file(submit)
}

/// Every id in `slurm/jobids` (arrays, single and fan-in jobs), in submission order.
pub fn recorded_ids(submit: &Path) -> Vec<String> {
    std::fs::read_to_string(jobids_file(submit))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
        .map(str::to_string)
        .collect()
}

fn ids_or_refuse(s: &Session) -> Result<Vec<String>, Diagnostic> {
    let ids = recorded_ids(s.submit);
    if ids.is_empty() {
        return Err(Diagnostic::new("E901", format!("{} has no Slurm jobs: slurm/jobids is missing or empty", s.submit.display()))
            .help("submit it first with `bpsc submit DIR` (slurm/submit.sh writes slurm/jobids)"));
    }
    Ok(ids)
}

/// Lines Slurm prints for jobs that left the queue meanwhile (not an error here).
fn gone(line: &str) -> bool {
    line.contains("already completing or completed")
        || line.contains("Job has already finished")
        || line.contains("Invalid job id specified")
        || line.contains("Job is no longer pending execution")
}

/// `squeue -h -j IDS -o FORMAT` (no rows, or "Invalid job id" when every id has left: empty).
fn squeue(ids: &[String], format: &str, states: Option<&str>) -> Cmd {
    let mut argv = vec!["squeue".to_string(), "-h".into(), "-j".into(), ids.join(","), "-o".into(), format.into()];
    if let Some(t) = states {
        argv.extend(["-t".to_string(), t.to_string()]);
    }
    Cmd::query(&argv).timeout(120)
}

/// The rows of a squeue query, split at `|` (none when every job has left the queue).
fn rows(s: &mut Session, cmd: Cmd) -> Result<Vec<Vec<String>>, Diagnostic> {
    let r = s.run_tolerating(cmd, &gone)?;
    if r.exit_code != Some(0) {
        return Ok(Vec::new());
    }
    Ok(r.stdout.lines().filter(|l| !l.trim().is_empty()).map(|l| l.trim().split('|').map(str::to_string).collect()).collect())
}

fn queue_empty(r: &crate::backend::ops::Ran) -> bool {
    (r.exit_code == Some(0) && r.stdout.trim().is_empty()) || r.stderr.contains("Invalid job id specified")
}

/// Slurm's reasons for a held job: `scontrol hold` (JobHeldUser, JobHeldAdmin) and
/// `scontrol requeuehold` ("job requeued in held state").
pub fn held_reason(reason: &str) -> bool {
    reason.starts_with("JobHeld") || reason.contains("requeued in held state")
}

/// `scontrol VERB ID,...` in chunks, tolerating jobs that have left the queue.
fn scontrol_each(s: &mut Session, verb: &str, ids: &[String]) -> Result<(), Diagnostic> {
    for chunk in ids.chunks(CHUNK) {
        s.run_tolerating(Cmd::action(&["scontrol", verb, &chunk.join(",")]).timeout(300), &gone)?;
    }
    Ok(())
}

fn dedup(v: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for x in v {
        if !out.contains(&x) {
            out.push(x);
        }
    }
    out
}

pub fn submit(s: &mut Session) -> Result<(), Diagnostic> {
    s.require(&["sbatch", "scontrol", "scancel", "squeue"])?;
    let previous = recorded_ids(s.submit);
    if !previous.is_empty() {
        // `--resubmit` (the caller refuses otherwise): never while jobs of the last
        // submission are queued; their ids are kept as slurm/jobids.N.
        let queued = rows(s, squeue(&previous, "%i", None))?;
        if !queued.is_empty() {
            return Err(Diagnostic::new("E901", format!("{} jobs of the previous submission are still in the Slurm queue", queued.len()))
                .help("cancel them first with `bpsc cancel DIR`"));
        }
        if !s.dry_run {
            let mut n = 1;
            while s.submit.join(format!("slurm/jobids.{n}")).exists() {
                n += 1;
            }
            std::fs::rename(jobids_file(s.submit), s.submit.join(format!("slurm/jobids.{n}")))?;
            s.note(format!("the previous submission's ids are in slurm/jobids.{n}; Slurm has no rescue DAG, so every job runs again (`bpsc restart` runs only what is left)"));
        }
    }
    let _ = std::fs::remove_file(s.submit.join(HELD_MARKER));
    let line = s.meta.submit_command.clone().unwrap_or_else(|| "slurm/submit.sh".into());
    let mut cmd = Cmd::action(&crate::backend::ops::words(&line));
    // The jobs run `$BPSC wrap`: the bpsc the operator runs, unless told otherwise.
    if std::env::var_os("BPSC").is_none() {
        cmd = cmd.env("BPSC", &s.bpsc_exe);
    }
    let r = s.run_ok(cmd)?;
    if let Some(last) = r.stdout.lines().last() {
        s.note(last.trim().to_string());
    }
    s.engine_ids = recorded_ids(s.submit);
    Ok(())
}

pub fn cancel(s: &mut Session) -> Result<(), Diagnostic> {
    // A campaign submitted in waves (site `max_submit`): stop the feeder first, so that no
    // new wave arrives after the scancel (as slurm/cancel.sh does), then read the ids.
    let feeding = stop_feeder(s);
    let ids = ids_or_refuse(s)?;
    s.require(&["scancel", "squeue"])?;
    if rows(s, squeue(&ids, "%i|%T", None))?.is_empty() {
        if feeding {
            s.engine_ids = ids;
            return Ok(());
        }
        return Err(Diagnostic::new("E901", "no job of the campaign is in the Slurm queue any more: nothing to cancel")
            .help("`bpsc status DIR` shows how it ended"));
    }
    for chunk in ids.chunks(CHUNK) {
        let mut argv = vec!["scancel".to_string()];
        argv.extend(chunk.iter().cloned());
        s.run_tolerating(Cmd::action(&argv).timeout(300), &gone)?;
    }
    if !s.dry_run {
        let _ = std::fs::remove_file(s.submit.join(HELD_MARKER));
    }
    s.wait_until(squeue(&ids, "%i|%T", None), "every job of the campaign has left the Slurm queue", &queue_empty)?;
    s.engine_ids = ids;
    Ok(())
}

/// Stop the wave feeder of slurm/submit.sh, if one runs: `slurm/STOP` (it checks before each
/// wave) and SIGTERM to `slurm/feeder.pid`.  True when a feeder was running.
fn stop_feeder(s: &mut Session) -> bool {
    let pid_file = s.submit.join("slurm/feeder.pid");
    let Some(pid) = std::fs::read_to_string(&pid_file).ok().and_then(|t| t.trim().parse::<i32>().ok()).filter(|p| *p > 1) else {
        return false;
    };
    if s.dry_run {
        s.note(format!("would stop the wave feeder (pid {pid}) first"));
        return true;
    }
    let _ = std::fs::write(s.submit.join("slurm/STOP"), "bpsc cancel\n");
    // SAFETY: kill(2) with SIGTERM on the pid the feeder wrote itself.
    let alive = unsafe { libc::kill(pid, libc::SIGTERM) } == 0;
    let _ = std::fs::remove_file(&pid_file);
    if alive {
        s.note(format!("stopped the wave feeder (pid {pid}): no further waves are submitted"));
    }
    alive
}

pub fn hold(s: &mut Session, now: bool) -> Result<(), Diagnostic> {
    let ids = ids_or_refuse(s)?;
    s.require(&["scontrol", "squeue"])?;
    if !s.dry_run {
        std::fs::write(s.submit.join(HELD_MARKER), format!("held by bpsc hold{}\n", if now { " --now" } else { "" }))?;
    }
    // Array job ids of everything still queued (pending or running).
    let queued = rows(s, squeue(&ids, "%F|%i|%T", None))?;
    if queued.is_empty() {
        let _ = std::fs::remove_file(s.submit.join(HELD_MARKER));
        return Err(Diagnostic::new("E901", "no job of the campaign is in the Slurm queue any more: nothing to hold")
            .help("`bpsc status DIR` shows how it ended"));
    }
    let arrays = dedup(queued.iter().map(|r| r[0].clone()));
    scontrol_each(s, "hold", &arrays)?;
    let running: Vec<String> = queued.iter().filter(|r| r.get(2).is_some_and(|t| t == "RUNNING")).map(|r| r[1].clone()).collect();
    if now && !running.is_empty() {
        scontrol_each(s, "requeuehold", &running)?;
        s.note(format!(
            "{} running jobs were stopped and requeued held; they start again from the beginning after `bpsc release`",
            running.len()
        ));
    } else if !running.is_empty() {
        s.note(format!("{} jobs were running and keep running until they end (`bpsc hold --now` stops them too)", running.len()));
    }
    let done = move |r: &crate::backend::ops::Ran| {
        queue_empty(r)
            || r.stdout.lines().filter(|l| !l.trim().is_empty()).all(|l| {
                let f: Vec<&str> = l.trim().split('|').collect();
                let (state, reason) = (f.get(1).copied().unwrap_or(""), f.get(2).copied().unwrap_or(""));
                held_reason(reason) && !(now && matches!(state, "RUNNING" | "COMPLETING"))
                    || (!now && matches!(state, "RUNNING" | "COMPLETING"))
            })
    };
    s.wait_until(squeue(&ids, "%i|%T|%r", None), "every pending job of the campaign is held", &done)?;
    s.engine_ids = arrays;
    Ok(())
}

/// `KEY=VALUE` words of `scontrol update` for the sets.
pub fn update_words(s: &Session, sets: &[ResourceSet]) -> Result<Vec<String>, Diagnostic> {
    let mut w = Vec::new();
    for set in sets {
        let bad = |why: &str| set.refused(why);
        match set.resource {
            Resource::Memory => w.push(format!("MinMemoryNode={}", set.mib().ok_or_else(|| bad("memory takes a size, e.g. 8GiB"))?)),
            Resource::Walltime => {
                let t = set.seconds().ok_or_else(|| bad("walltime takes a duration, e.g. 4h"))?;
                w.push(format!("TimeLimit={}-{:02}:{:02}:{:02}", t / 86400, t % 86400 / 3600, t % 3600 / 60, t % 60))
            }
            Resource::Cpus => w.push(format!("NumCPUs={}", set.count().ok_or_else(|| bad("cpus takes a number"))?)),
            Resource::Disk => w.push(format!("MinTmpDiskNode={}", set.mib().ok_or_else(|| bad("disk takes a size"))?)),
            Resource::Partition => w.push(format!("Partition={}", set.name().ok_or_else(|| bad("partition takes a name"))?)),
            Resource::Account => w.push(format!("Account={}", set.name().ok_or_else(|| bad("account takes a name"))?)),
            Resource::Qos => w.push(format!("QOS={}", set.name().ok_or_else(|| bad("qos takes a name"))?)),
        }
    }
    let _ = s;
    Ok(w)
}

pub fn release(s: &mut Session, sets: &[ResourceSet]) -> Result<(), Diagnostic> {
    let ids = ids_or_refuse(s)?;
    s.require(&["scontrol", "squeue"])?;
    let words = update_words(s, sets)?;
    let queued = rows(s, squeue(&ids, "%F|%i|%T|%r", None))?;
    let held = dedup(queued.iter().filter(|r| r.get(3).is_some_and(|x| held_reason(x))).map(|r| r[0].clone()));
    let marker = s.submit.join(HELD_MARKER);
    if held.is_empty() && !marker.exists() {
        return Err(
            Diagnostic::new("E901", "no job of the campaign is held: nothing to release").help("`bpsc status DIR` shows where it stands")
        );
    }
    if !words.is_empty() {
        for chunk in held.chunks(CHUNK) {
            let mut argv = vec!["scontrol".to_string(), "update".into(), format!("JobId={}", chunk.join(","))];
            argv.extend(words.iter().cloned());
            s.run_tolerating(Cmd::action(&argv).timeout(300), &gone)?;
        }
        s.note(format!(
            "{} of the {} queued Slurm submissions now ask for: {}",
            held.len(),
            dedup(queued.iter().map(|r| r[0].clone())).len(),
            words.join(" ")
        ));
    }
    if !s.dry_run {
        let _ = std::fs::remove_file(&marker);
    }
    scontrol_each(s, "release", &held)?;
    let done = |r: &crate::backend::ops::Ran| queue_empty(r) || r.stdout.lines().all(|l| !l.split('|').nth(2).is_some_and(held_reason));
    s.wait_until(squeue(&ids, "%i|%T|%r", None), "no job of the campaign is held any more", &done)?;
    s.engine_ids = held;
    Ok(())
}

pub fn set_priority(s: &mut Session, priority: i64, from: i64) -> Result<(), Diagnostic> {
    let ids = ids_or_refuse(s)?;
    s.require(&["scontrol", "squeue"])?;
    let pending = rows(s, squeue(&ids, "%F|%y|%r", Some("PENDING")))?;
    if pending.is_empty() {
        return Err(Diagnostic::new("E901", "no job of the campaign is pending: there is nothing to re-prioritise")
            .help("`bpsc status DIR` shows where it stands"));
    }
    let delta = priority - from;
    if delta == 0 {
        s.note(format!("the campaign's priority is already {priority}: nothing changed"));
        return Ok(());
    }
    // New nice value per array (priority up = nice down), grouped into one update each.
    let mut groups: Vec<(i64, Vec<String>)> = Vec::new();
    let mut held: Vec<String> = Vec::new();
    for r in &pending {
        let (id, nice) = (r[0].clone(), r.get(1).and_then(|n| n.trim().parse::<i64>().ok()).unwrap_or(0));
        let new = (nice - delta).clamp(-2_147_483_645, 2_147_483_645);
        if r.get(2).is_some_and(|x| held_reason(x)) && !held.contains(&id) {
            held.push(id.clone());
        }
        match groups.iter_mut().find(|(n, _)| *n == new) {
            Some((_, v)) if !v.contains(&id) => v.push(id),
            Some(_) => {}
            None => groups.push((new, vec![id])),
        }
    }
    for (nice, arrays) in &groups {
        for chunk in arrays.chunks(CHUNK) {
            let cmd = Cmd::action(&["scontrol", "update", &format!("JobId={}", chunk.join(",")), &format!("Nice={nice}")]).timeout(300);
            let r = s.run(cmd)?;
            if r.exit_code != Some(0) && !r.output().lines().all(gone) {
                let mut d = crate::backend::ops::failed(&r);
                if r.output().contains("ermission denied") || r.output().contains("Access") {
                    d = d.help(format!(
                        "Slurm lets only its operators and administrators raise a job's priority (lower its nice value); \
                         as a user you can only lower it: `bpsc priority DIR N` with N below {from}. Ask an operator to raise it"
                    ));
                }
                return Err(d);
            }
        }
    }
    if !held.is_empty() {
        // Slurm forgets a hold when the nice value changes: hold them again.
        scontrol_each(s, "hold", &held)?;
    }
    s.note(format!("nice values moved by {} on {} pending Slurm submissions (a higher nice runs later)", -delta, pending.len()));
    s.engine_ids = groups.into_iter().flat_map(|(_, v)| v).collect();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::ops::{FakeRunner, Op, ResourceValue};
    use crate::submitdir::operations::Control;
    use crate::submitdir::Meta;

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("bpsc-slurm-ops-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("slurm")).unwrap();
        std::fs::write(d.join("slurm/jobids"), "101 A_0 calibrate\n102 A_1 coadd\n103 F_0 fanin\n").unwrap();
        d
    }

    fn meta() -> Meta {
        Meta { backend: "slurm".into(), submit_command: Some("slurm/submit.sh".into()), ..Default::default() }
    }

    #[test]
    fn hold_holds_what_is_queued_and_waits_until_slurm_says_held() {
        let d = dir("hold");
        let f = FakeRunner::new()
            .on("squeue -h -j 101,102,103 -o '%F|%i|%T'", 0, "101|101_3|RUNNING\n102|102_[0-9]|PENDING\n")
            .on("squeue -h -j 101,102,103 -o '%i|%T|%r'", 0, "101_3|RUNNING|None\n102_[0-9]|PENDING|Dependency\n")
            .on("squeue -h -j 101,102,103 -o '%i|%T|%r'", 0, "101_3|RUNNING|JobHeldUser\n102_[0-9]|PENDING|JobHeldUser\n");
        let (m, c) = (meta(), Control::default());
        let mut s = Session::new(Op::Hold, &d, &m, &[], &c, &f);
        hold(&mut s, false).unwrap();
        assert_eq!(
            f.lines(),
            vec![
                "squeue -h -j 101,102,103 -o '%F|%i|%T'",
                "scontrol hold 101,102",
                "squeue -h -j 101,102,103 -o '%i|%T|%r'",
                "squeue -h -j 101,102,103 -o '%i|%T|%r'",
            ]
        );
        assert!(d.join(HELD_MARKER).exists());
        assert_eq!(s.ran.last().unwrap().polls, Some(2));
        // --now: the running task is requeued held.
        let f = FakeRunner::new().on("squeue -h -j 101,102,103 -o '%F|%i|%T'", 0, "101|101_3|RUNNING\n").on(
            "squeue -h -j 101,102,103 -o '%i|%T|%r'",
            0,
            "101_3|PENDING|JobHeldUser\n",
        );
        let mut s = Session::new(Op::Hold, &d, &m, &[], &c, &f);
        hold(&mut s, true).unwrap();
        assert!(f.lines().contains(&"scontrol requeuehold 101_3".to_string()), "{:?}", f.lines());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn release_sets_resources_of_held_jobs_then_releases_them() {
        let d = dir("release");
        std::fs::write(d.join(HELD_MARKER), "").unwrap();
        let f = FakeRunner::new().on("squeue -h -j 101,102,103 -o '%F|%i|%T|%r'", 0, "102|102_[0-9]|PENDING|JobHeldUser\n").on(
            "squeue -h -j 101,102,103 -o '%i|%T|%r'",
            0,
            "102_[0-9]|PENDING|Dependency\n",
        );
        let (m, c) = (meta(), Control::default());
        let sets = vec![
            ResourceSet { resource: Resource::Memory, value: ResourceValue::Bytes(8 << 30), text: "memory=8GiB".into() },
            ResourceSet { resource: Resource::Walltime, value: ResourceValue::Seconds(90_061), text: "walltime=1d1h1m1s".into() },
            ResourceSet { resource: Resource::Partition, value: ResourceValue::Name("long".into()), text: "partition=long".into() },
        ];
        let mut s = Session::new(Op::Release, &d, &m, &[], &c, &f);
        release(&mut s, &sets).unwrap();
        assert_eq!(f.lines()[1], "scontrol update JobId=102 MinMemoryNode=8192 TimeLimit=1-01:01:01 Partition=long");
        assert_eq!(f.lines()[2], "scontrol release 102");
        assert!(!d.join(HELD_MARKER).exists());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn priority_moves_nice_values_and_holds_again_what_was_held_and_explains_a_refusal() {
        let d = dir("prio");
        let f = FakeRunner::new().on("squeue -h -j 101,102,103 -o '%F|%y|%r' -t PENDING", 0, "101|0|JobHeldUser\n102|5|Dependency\n");
        let (m, c) = (meta(), Control::default());
        let mut s = Session::new(Op::Priority, &d, &m, &[], &c, &f);
        set_priority(&mut s, -10, 0).unwrap();
        assert_eq!(f.lines()[1..], ["scontrol update JobId=101 Nice=10", "scontrol update JobId=102 Nice=15", "scontrol hold 101"]);
        let f =
            FakeRunner::new().on("squeue", 0, "101|0|Dependency\n").on_err("scontrol update", 1, "Access/permission denied for job 101");
        let mut s = Session::new(Op::Priority, &d, &m, &[], &c, &f);
        let e = set_priority(&mut s, 10, 0).unwrap_err();
        assert_eq!(e.code, "E905");
        assert!(e.help.unwrap().contains("only its operators and administrators"));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn cancel_cancels_every_recorded_id_and_waits_for_an_empty_queue() {
        let d = dir("cancel");
        let f = FakeRunner::new().on("squeue", 0, "102_3|RUNNING\n").on("squeue", 0, "102_3|RUNNING\n").on_err(
            "squeue",
            1,
            "slurm_load_jobs error: Invalid job id specified",
        );
        let (m, c) = (meta(), Control::default());
        let mut s = Session::new(Op::Cancel, &d, &m, &[], &c, &f);
        cancel(&mut s).unwrap();
        let q = "squeue -h -j 101,102,103 -o '%i|%T'";
        assert_eq!(f.lines(), vec![q, "scancel 101 102 103", q, q]);
        // Never submitted: refused before any command.
        std::fs::remove_file(d.join("slurm/jobids")).unwrap();
        let f = FakeRunner::new();
        let mut s = Session::new(Op::Cancel, &d, &m, &[], &c, &f);
        assert_eq!(cancel(&mut s).unwrap_err().code, "E901");
        assert!(f.lines().is_empty());
        std::fs::remove_dir_all(&d).unwrap();
    }
}
