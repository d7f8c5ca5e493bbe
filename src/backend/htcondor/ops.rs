//! Operating a campaign on HTCondor DAGMan (see [`crate::backend::ops`]); Pegasus uses the
//! same functions on the DAGMan job of its planned workflow.
//!
//! The campaign is the DAGMan job (`condor_submit_dag workflow.dag` prints "1 job(s)
//! submitted to cluster N."): every node job DAGMan submits carries `DAGManJobId == N`.
//! Command forms from the HTCondor 23 manual ("Running and Managing DAGMan", condor_rm(1),
//! condor_hold(1), condor_release(1), condor_qedit(1), condor_prio(1)):
//!
//! | operation | commands |
//! |---|---|
//! | submit | `condor_submit_dag workflow.dag` (again after a cancel or a failure: DAGMan runs the newest rescue DAG, i.e. only what is left) |
//! | cancel | `condor_rm N` ("removes both the DAGMan proper job and all node jobs"), then `condor_q -constraint 'ClusterId == N \|\| DAGManJobId == N'` until empty |
//! | hold | `condor_hold N` ("no new node jobs will be submitted") and `condor_hold -constraint 'DAGManJobId == N && JobStatus == 1'` (node jobs DAGMan had already queued would otherwise still start); `--now`: every node job (`DAGManJobId == N`), running ones are stopped |
//! | release | `condor_qedit -constraint 'DAGManJobId == N && (JobStatus == 1 \|\| JobStatus == 5)' RequestMemory MB RequestCpus N RequestDisk KiB AllowedExecuteDuration S` (`--set`), `condor_release -constraint 'DAGManJobId == N && JobStatus == 5'`, `condor_release N` |
//! | priority | `condor_prio +D N NODE_JOBS...` / `condor_prio -D ...`: the DAGMan job and its queued node jobs move by D |
//!
//! Holding the DAGMan job stops DAGMan (it is restarted in recovery mode by the release, and
//! rereads the node log); running POST scripts are killed and rerun.  Node jobs DAGMan has not
//! submitted yet take their resources from the submit files and their priority from the DAG's
//! PRIORITY lines: `release --set` and `priority` change the node jobs in the queue.

use crate::backend::ops::{Cmd, Ran, Resource, ResourceSet, Session};
use crate::diag::Diagnostic;

/// "N" of "1 job(s) submitted to cluster N." (condor_submit_dag, pegasus-run).
pub fn cluster_of_submit_output(out: &str) -> Option<String> {
    out.split("submitted to cluster ").nth(1)?.split(|c: char| !c.is_ascii_digit()).next().filter(|n| !n.is_empty()).map(str::to_string)
}

/// The DAGMan job id in a JOBSTATE_LOG: `TIME INTERNAL *** DAGMAN_STARTED N.0 ***` (the
/// latest; DAGMan writes one per start, recovery included).
pub fn dagman_of_jobstate(text: &str) -> Option<String> {
    text.lines()
        .rev()
        .filter_map(|l| l.split("DAGMAN_STARTED ").nth(1))
        .filter_map(|r| r.split_whitespace().next())
        .find_map(|id| id.split('.').next().filter(|c| !c.is_empty() && c.bytes().all(|b| b.is_ascii_digit())).map(str::to_string))
}

/// The DAGMan job of the latest submission: recorded by `bpsc submit`, else the
/// JOBSTATE_LOG of a DAG submitted by hand.
pub fn dagman_id(s: &Session, jobstate: &std::path::Path) -> Result<String, Diagnostic> {
    if let Some(id) = s.submitted_ids().first() {
        return Ok(id.clone());
    }
    if let Some(id) = std::fs::read_to_string(jobstate).ok().as_deref().and_then(dagman_of_jobstate) {
        return Ok(id);
    }
    Err(Diagnostic::new("E901", format!("{} has no DAGMan job: it was never submitted", s.submit.display()))
        .help("submit it first with `bpsc submit DIR`"))
}

fn benign(line: &str) -> bool {
    let l = line.to_ascii_lowercase();
    l.contains("couldn't find") || l.contains("does not exist") || l.contains("already") || l.contains("not held") || l.contains("no jobs")
}

fn in_queue(id: &str) -> Cmd {
    Cmd::query(&[
        "condor_q",
        "-constraint",
        &format!("ClusterId == {id} || DAGManJobId == {id}"),
        "-af",
        "ClusterId",
        "ProcId",
        "JobStatus",
    ])
    .timeout(120)
}

fn empty(r: &Ran) -> bool {
    r.exit_code == Some(0) && r.stdout.trim().is_empty()
}

/// The DAGMan job's JobStatus (1 idle, 2 running, 5 held; none when it has left the queue).
fn dagman_status(id: &str) -> Cmd {
    Cmd::query(&["condor_q", id, "-af", "JobStatus"]).timeout(120)
}

/// Submit `workflow.dag` (or what bpsc.json says).
pub fn submit(s: &mut Session) -> Result<(), Diagnostic> {
    s.require(&["condor_submit_dag", "condor_q"])?;
    if s.resubmit {
        if let Ok(id) = dagman_id(s, &super::harvest::jobstate_log(s.submit)) {
            let r = s.run_ok(in_queue(&id))?;
            if !empty(&r) {
                return Err(Diagnostic::new("E901", format!("DAGMan job {id} of the previous submission is still in the queue"))
                    .help("cancel it first with `bpsc cancel DIR`; then `bpsc submit --resubmit DIR` runs the rescue DAG"));
            }
        }
    }
    let line = s.meta.submit_command.clone().unwrap_or_else(|| format!("condor_submit_dag {}", super::DAG_FILE));
    let r = s.run_ok(Cmd::action(&crate::backend::ops::words(&line)).timeout(600))?;
    if s.dry_run {
        return Ok(());
    }
    let id = cluster_of_submit_output(&r.stdout).ok_or_else(|| {
        Diagnostic::new("E905", format!("`{}` printed no DAGMan job id (\"submitted to cluster N\"):\n{}", r.line, r.output()))
    })?;
    s.engine_ids = vec![id];
    if std::fs::canonicalize(s.submit).is_ok_and(|p| p.starts_with("/tmp")) {
        s.note("the submit directory is under /tmp: DAGMan warns about node logs there and, with DAGMAN_USE_STRICT (the default), stops the DAG");
    }
    Ok(())
}

/// Remove the DAGMan job `id` (DAGMan removes its node jobs) and wait until the queue has
/// none of them.
pub fn cancel_dag(s: &mut Session, id: &str, remove: Cmd) -> Result<(), Diagnostic> {
    s.require(&["condor_q"])?;
    if empty(&s.run_ok(in_queue(id))?) {
        return Err(Diagnostic::new("E901", format!("DAGMan job {id} and its node jobs are not in the queue any more: nothing to cancel"))
            .help("`bpsc status DIR` shows how it ended"));
    }
    s.run_tolerating(remove, &benign)?;
    s.wait_until(in_queue(id), &format!("DAGMan job {id} and its node jobs have left the queue"), &empty)?;
    s.engine_ids = vec![id.to_string()];
    Ok(())
}

pub fn cancel(s: &mut Session) -> Result<(), Diagnostic> {
    let id = dagman_id(s, &super::harvest::jobstate_log(s.submit))?;
    s.require(&["condor_rm"])?;
    cancel_dag(s, &id, Cmd::action(&["condor_rm", &id]).timeout(120))
}

/// Hold DAGMan job `id` and its idle node jobs (all node jobs with `now`), and wait until
/// the DAGMan job is held.
pub fn hold_dag(s: &mut Session, id: &str, now: bool) -> Result<(), Diagnostic> {
    s.require(&["condor_hold", "condor_q"])?;
    let st = s.run_ok(dagman_status(id))?;
    if st.stdout.trim().is_empty() {
        return Err(Diagnostic::new("E901", format!("DAGMan job {id} is not in the queue any more: nothing to hold"))
            .help("`bpsc status DIR` shows how it ended"));
    }
    s.run_tolerating(Cmd::action(&["condor_hold", "-reason", "bpsc hold", id]).timeout(120), &benign)?;
    let which = if now { format!("DAGManJobId == {id}") } else { format!("DAGManJobId == {id} && JobStatus == 1") };
    s.run_tolerating(Cmd::action(&["condor_hold", "-reason", "bpsc hold", "-constraint", &which]).timeout(120), &benign)?;
    s.wait_until(dagman_status(id), &format!("DAGMan job {id} is held"), &|r: &Ran| r.stdout.trim() == "5")?;
    if !now {
        let running =
            s.run_ok(Cmd::query(&["condor_q", "-constraint", &format!("DAGManJobId == {id} && JobStatus == 2"), "-af", "ClusterId"]))?;
        let n = running.stdout.lines().filter(|l| !l.trim().is_empty()).count();
        if n > 0 {
            s.note(format!("{n} node jobs were running and keep running until they end (`bpsc hold --now` stops them too)"));
        }
    }
    s.engine_ids = vec![id.to_string()];
    Ok(())
}

pub fn hold(s: &mut Session, now: bool) -> Result<(), Diagnostic> {
    let id = dagman_id(s, &super::harvest::jobstate_log(s.submit))?;
    hold_dag(s, &id, now)
}

/// `ATTR VALUE` pairs of `condor_qedit` for the sets.
pub fn qedit_pairs(sets: &[ResourceSet], engine: &str) -> Result<Vec<String>, Diagnostic> {
    let mut w = Vec::new();
    for set in sets {
        let bad = |why: &str| set.refused(why);
        match set.resource {
            Resource::Memory => w.extend(["RequestMemory".to_string(), set.mib().ok_or_else(|| bad("memory takes a size"))?.to_string()]),
            Resource::Cpus => w.extend(["RequestCpus".to_string(), set.count().ok_or_else(|| bad("cpus takes a number"))?.to_string()]),
            Resource::Disk => {
                w.extend(["RequestDisk".to_string(), (set.mib().ok_or_else(|| bad("disk takes a size"))? * 1024).to_string()])
            }
            Resource::Walltime => {
                w.extend(["AllowedExecuteDuration".to_string(), set.seconds().ok_or_else(|| bad("walltime takes a duration"))?.to_string()])
            }
            Resource::Partition | Resource::Qos => {
                return Err(bad(&format!("{engine} has no partitions or QOS: jobs match machines by their requirements")))
            }
            Resource::Account => {
                return Err(bad(&format!("{engine} sets a job's accounting group when it is submitted; it cannot be changed in the queue")))
            }
        }
    }
    Ok(w)
}

/// Change the queued node jobs' resources, release the held node jobs and the DAGMan job.
pub fn release_dag(s: &mut Session, id: &str, sets: &[ResourceSet]) -> Result<(), Diagnostic> {
    s.require(&["condor_release", "condor_q"])?;
    let pairs = qedit_pairs(sets, &s.meta.backend.clone())?;
    let st = s.run_ok(dagman_status(id))?;
    if st.stdout.trim().is_empty() {
        return Err(Diagnostic::new("E901", format!("DAGMan job {id} is not in the queue any more: nothing to release"))
            .help("`bpsc status DIR` shows how it ended; `bpsc submit --resubmit DIR` runs what is left"));
    }
    if st.stdout.trim() != "5" {
        let held =
            s.run_ok(Cmd::query(&["condor_q", "-constraint", &format!("DAGManJobId == {id} && JobStatus == 5"), "-af", "ClusterId"]))?;
        if held.stdout.trim().is_empty() {
            return Err(Diagnostic::new("E901", format!("neither DAGMan job {id} nor any of its node jobs is held: nothing to release"))
                .help("`bpsc status DIR` shows where it stands"));
        }
    }
    if !pairs.is_empty() {
        s.require(&["condor_qedit"])?;
        let mut argv =
            vec!["condor_qedit".to_string(), "-constraint".into(), format!("DAGManJobId == {id} && (JobStatus == 1 || JobStatus == 5)")];
        argv.extend(pairs.iter().cloned());
        s.run_tolerating(Cmd::action(&argv).timeout(120), &benign)?;
        s.note("the node jobs in the queue have the new resources; node jobs DAGMan submits later take them from the submit files (`bpsc restart --set` changes those)");
    }
    s.run_tolerating(
        Cmd::action(&["condor_release", "-constraint", &format!("DAGManJobId == {id} && JobStatus == 5")]).timeout(120),
        &benign,
    )?;
    s.run_tolerating(Cmd::action(&["condor_release", id]).timeout(120), &benign)?;
    s.wait_until(dagman_status(id), &format!("DAGMan job {id} is released"), &|r: &Ran| r.stdout.trim() != "5")?;
    s.engine_ids = vec![id.to_string()];
    Ok(())
}

pub fn release(s: &mut Session, sets: &[ResourceSet]) -> Result<(), Diagnostic> {
    let id = dagman_id(s, &super::harvest::jobstate_log(s.submit))?;
    release_dag(s, &id, sets)
}

/// Move the DAGMan job and its queued node jobs by `priority - from`.
pub fn prio_dag(s: &mut Session, id: &str, priority: i64, from: i64) -> Result<(), Diagnostic> {
    s.require(&["condor_prio", "condor_q"])?;
    let delta = priority - from;
    let q = s.run_ok(
        Cmd::query(&[
            "condor_q",
            "-constraint",
            &format!("DAGManJobId == {id} && (JobStatus == 1 || JobStatus == 5)"),
            "-af",
            "ClusterId",
            "ProcId",
        ])
        .timeout(120),
    )?;
    let nodes: Vec<String> =
        q.stdout.lines().filter_map(|l| l.split_once(' ').map(|(c, p)| format!("{}.{}", c.trim(), p.trim()))).collect();
    let st = s.run_ok(dagman_status(id))?;
    if st.stdout.trim().is_empty() {
        return Err(Diagnostic::new("E901", format!("DAGMan job {id} is not in the queue any more: nothing to re-prioritise"))
            .help("`bpsc status DIR` shows how it ended"));
    }
    if delta == 0 {
        s.note(format!("the campaign's priority is already {priority}: nothing changed"));
        return Ok(());
    }
    let by = if delta > 0 { format!("+{delta}") } else { delta.to_string() };
    let mut all = vec![id.to_string()];
    all.extend(nodes.iter().cloned());
    for chunk in all.chunks(500) {
        let mut argv = vec!["condor_prio".to_string(), by.clone()];
        argv.extend(chunk.iter().cloned());
        s.run_tolerating(Cmd::action(&argv).timeout(120), &benign)?;
    }
    s.note(format!(
        "JobPrio moved by {by} on the DAGMan job and {} queued node jobs; node jobs DAGMan submits later take their priority from the DAG's PRIORITY lines",
        nodes.len()
    ));
    s.engine_ids = all;
    Ok(())
}

pub fn set_priority(s: &mut Session, priority: i64, from: i64) -> Result<(), Diagnostic> {
    let id = dagman_id(s, &super::harvest::jobstate_log(s.submit))?;
    prio_dag(s, &id, priority, from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::ops::{FakeRunner, Op, ResourceValue};
    use crate::submitdir::operations::Control;
    use crate::submitdir::Meta;

    fn meta() -> Meta {
        Meta { backend: "htcondor".into(), submit_command: Some("condor_submit_dag workflow.dag".into()), ..Default::default() }
    }

    #[test]
    fn ids_from_submit_output_and_the_jobstate_log() {
        let out = "File for submitting this DAG to HTCondor           : workflow.dag.condor.sub\n\
                   -----------------------------------------------------------------------\n\
                   Submitting job(s).\n1 job(s) submitted to cluster 5116.\n";
        assert_eq!(cluster_of_submit_output(out).as_deref(), Some("5116"));
        assert_eq!(cluster_of_submit_output("nothing"), None);
        let log = "1677911023 INTERNAL *** DAGMAN_STARTED 1.0 ***\n1677911024 a SUBMIT 2.0 local - 1\n1677911099 INTERNAL *** DAGMAN_STARTED 7.0 ***\n";
        assert_eq!(dagman_of_jobstate(log).as_deref(), Some("7"));
    }

    #[test]
    fn every_operation_runs_the_documented_commands() {
        let d = std::env::temp_dir();
        let m = meta();
        let c = Control { submitted: Some(0), submissions: 1, engine_ids: vec!["42".into()], ..Default::default() };
        let f = FakeRunner::new().on("condor_submit_dag", 0, "Submitting job(s).\n1 job(s) submitted to cluster 42.\n");
        let c0 = Control::default();
        let mut s = Session::new(Op::Submit, &d, &m, &[], &c0, &f);
        submit(&mut s).unwrap();
        assert_eq!((f.lines(), s.engine_ids.clone()), (vec!["condor_submit_dag workflow.dag".to_string()], vec!["42".to_string()]));

        let f = FakeRunner::new().on("condor_q 42", 0, "2\n").on("condor_q 42", 0, "5\n").on("condor_q -constraint", 0, "43 0\n");
        let mut s = Session::new(Op::Hold, &d, &m, &[], &c, &f);
        hold(&mut s, false).unwrap();
        assert_eq!(
            f.lines(),
            vec![
                "condor_q 42 -af JobStatus",
                "condor_hold -reason 'bpsc hold' 42",
                "condor_hold -reason 'bpsc hold' -constraint 'DAGManJobId == 42 && JobStatus == 1'",
                "condor_q 42 -af JobStatus",
                "condor_q -constraint 'DAGManJobId == 42 && JobStatus == 2' -af ClusterId",
            ]
        );
        assert!(s.notes[0].contains("1 node jobs were running"));

        let f = FakeRunner::new().on("condor_q 42", 0, "5\n").on("condor_q 42", 0, "1\n");
        let sets = vec![
            ResourceSet { resource: Resource::Memory, value: ResourceValue::Bytes(3 << 30), text: "memory=3GiB".into() },
            ResourceSet { resource: Resource::Walltime, value: ResourceValue::Seconds(7200), text: "walltime=2h".into() },
        ];
        let mut s = Session::new(Op::Release, &d, &m, &[], &c, &f);
        release(&mut s, &sets).unwrap();
        assert_eq!(
            f.lines()[1..4],
            [
                "condor_qedit -constraint 'DAGManJobId == 42 && (JobStatus == 1 || JobStatus == 5)' RequestMemory 3072 AllowedExecuteDuration 7200",
                "condor_release -constraint 'DAGManJobId == 42 && JobStatus == 5'",
                "condor_release 42",
            ]
        );
        let bad = [ResourceSet { resource: Resource::Qos, value: ResourceValue::Name("x".into()), text: "qos=x".into() }];
        let mut s = Session::new(Op::Release, &d, &m, &[], &c, &f);
        assert_eq!(release(&mut s, &bad).unwrap_err().code, "E907");

        let f = FakeRunner::new().on("condor_q -constraint", 0, "43 0\n43 1\n").on("condor_q 42", 0, "2\n");
        let mut s = Session::new(Op::Priority, &d, &m, &[], &c, &f);
        set_priority(&mut s, 40, 50).unwrap();
        assert_eq!(f.lines().last().unwrap(), "condor_prio -10 42 43.0 43.1");

        let f = FakeRunner::new().on("condor_q -constraint", 0, "42 0 2\n").on("condor_q -constraint", 0, "42 0 2\n").on(
            "condor_q -constraint",
            0,
            "",
        );
        let mut s = Session::new(Op::Cancel, &d, &m, &[], &c, &f);
        cancel(&mut s).unwrap();
        let q = "condor_q -constraint 'ClusterId == 42 || DAGManJobId == 42' -af ClusterId ProcId JobStatus";
        assert_eq!(f.lines(), vec![q, "condor_rm 42", q, q]);
    }

    #[test]
    fn a_missing_tool_is_named_with_what_to_install() {
        let d = std::env::temp_dir();
        let m = meta();
        let c = Control::default();
        let f = FakeRunner::new().without("condor_submit_dag");
        let mut s = Session::new(Op::Submit, &d, &m, &[], &c, &f);
        let e = submit(&mut s).unwrap_err();
        assert_eq!(e.code, "E904");
        assert!(e.message.contains("condor_submit_dag") && e.help.unwrap().contains("access point"));
    }
}
