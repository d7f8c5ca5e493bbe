//! Operating a campaign on Pegasus (see [`crate::backend::ops`]).
//!
//! Pegasus plans the abstract workflow into an HTCondor DAG under `SUBMIT/pegasus/.../runNNNN`
//! (the run directory, with its `braindump.yml`) and runs it with DAGMan.  Command forms from
//! the Pegasus 5 manual pages (pegasus-plan(1), pegasus-run(1), pegasus-remove(1),
//! pegasus-halt(1)) and, for what Pegasus has no tool for, DAGMan's own (see
//! [`crate::backend::htcondor::ops`]):
//!
//! | operation | commands |
//! |---|---|
//! | submit | `./plan.sh --submit` (pegasus-plan ... --submit: plans, then pegasus-run submits the DAG); `--resubmit`: `pegasus-run RUNDIR` ("can also be used to resubmit a failed workflow": DAGMan's rescue DAG runs what is left) |
//! | cancel | `pegasus-remove RUNDIR` (condor_rm of the workflow's DAGMan job), then `condor_q` until the DAGMan job and its node jobs have left |
//! | hold | `condor_hold` of the Pegasus DAGMan job and its idle node jobs, as for htcondor (`pegasus-halt RUNDIR` is a different thing: DAGMan finishes the running jobs and exits; `pegasus-run` resumes) |
//! | release | `condor_qedit` / `condor_release` as for htcondor |
//! | priority | `condor_prio` of the DAGMan job and its queued node jobs, as for htcondor |
//!
//! The DAGMan job id is what pegasus-run printed ("submitted to cluster N"), else the
//! run's `jobstate.log` (`INTERNAL *** DAGMAN_STARTED N.0 ***`).

use std::path::PathBuf;

use crate::backend::htcondor::ops as dag;
use crate::backend::ops::{Cmd, ResourceSet, Session};
use crate::diag::Diagnostic;

/// The newest planned run directory (the one with the newest braindump.yml).
pub fn run_dir(s: &Session) -> Option<PathBuf> {
    if let Some(d) = s.submitted_ids().iter().find(|i| i.contains('/')) {
        return Some(PathBuf::from(d));
    }
    super::harvest::braindumps(s.submit).into_iter().next().and_then(|b| b.parent().map(|p| p.to_path_buf()))
}

fn planned(s: &Session) -> Result<PathBuf, Diagnostic> {
    run_dir(s).ok_or_else(|| {
        Diagnostic::new("E901", format!("{} has no planned Pegasus run (no braindump.yml under pegasus/)", s.submit.display()))
            .help("submit it first with `bpsc submit DIR` (./plan.sh --submit)")
    })
}

fn dagman(s: &Session) -> Result<String, Diagnostic> {
    if let Some(id) = s.submitted_ids().iter().find(|i| !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit())) {
        return Ok(id.clone());
    }
    let dir = planned(s)?;
    std::fs::read_to_string(dir.join("jobstate.log")).ok().as_deref().and_then(dag::dagman_of_jobstate).ok_or_else(|| {
        Diagnostic::new("E901", format!("the Pegasus run {} names no DAGMan job (no DAGMAN_STARTED in its jobstate.log)", dir.display()))
            .help("it was planned but not submitted: `bpsc submit --resubmit DIR` submits it")
    })
}

pub fn submit(s: &mut Session) -> Result<(), Diagnostic> {
    if s.resubmit {
        if let Some(dir) = run_dir(s) {
            s.require(&["pegasus-run", "condor_q"])?;
            if let Ok(id) = dagman(s) {
                let q = s.run_ok(Cmd::query(&["condor_q", &id, "-af", "JobStatus"]).timeout(120))?;
                if !q.stdout.trim().is_empty() {
                    return Err(Diagnostic::new("E901", format!("the workflow's DAGMan job {id} is still in the queue"))
                        .help("cancel it first with `bpsc cancel DIR`"));
                }
            }
            let d = dir.to_string_lossy().into_owned();
            let r = s.run_ok(Cmd::action(&["pegasus-run", &d]).timeout(600))?;
            s.engine_ids = dag::cluster_of_submit_output(&r.stdout).into_iter().chain([d]).collect();
            return Ok(());
        }
    }
    s.require(&["pegasus-plan", "condor_submit_dag"])?;
    let line = s.meta.submit_command.clone().unwrap_or_else(|| "./plan.sh --submit".into());
    let mut cmd = Cmd::action(&crate::backend::ops::words(&line)).timeout(3600);
    if std::env::var_os("BPSC_BIN").is_none() {
        cmd = cmd.env("BPSC_BIN", &s.bpsc_exe);
    }
    let r = s.run_ok(cmd)?;
    if s.dry_run {
        return Ok(());
    }
    let id = dag::cluster_of_submit_output(&r.stdout);
    let dir = super::harvest::braindumps(s.submit).into_iter().next().and_then(|b| b.parent().map(|p| p.to_string_lossy().into_owned()));
    match (id, dir) {
        (Some(id), Some(dir)) => s.engine_ids = vec![id, dir],
        (id, dir) => {
            s.engine_ids = id.into_iter().chain(dir).collect();
            s.note("pegasus-plan's output named no DAGMan job or run directory; bpsc cancel/hold read them from the run's jobstate.log");
        }
    }
    Ok(())
}

pub fn cancel(s: &mut Session) -> Result<(), Diagnostic> {
    let dir = planned(s)?;
    let id = dagman(s)?;
    s.require(&["pegasus-remove"])?;
    dag::cancel_dag(s, &id, Cmd::action(&["pegasus-remove", &dir.to_string_lossy()]).timeout(300))?;
    s.engine_ids.push(dir.to_string_lossy().into_owned());
    Ok(())
}

pub fn hold(s: &mut Session, now: bool) -> Result<(), Diagnostic> {
    let id = dagman(s)?;
    dag::hold_dag(s, &id, now)?;
    s.note("`pegasus-halt RUNDIR` is the graceful alternative: running jobs finish, DAGMan exits, `bpsc submit --resubmit` (pegasus-run) resumes");
    Ok(())
}

pub fn release(s: &mut Session, sets: &[ResourceSet]) -> Result<(), Diagnostic> {
    let id = dagman(s)?;
    dag::release_dag(s, &id, sets)
}

pub fn set_priority(s: &mut Session, priority: i64, from: i64) -> Result<(), Diagnostic> {
    let id = dagman(s)?;
    dag::prio_dag(s, &id, priority, from)
}
