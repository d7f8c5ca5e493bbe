//! Operating a campaign on Nextflow (see [`crate::backend::ops`]).
//!
//! A Nextflow run is its driver process: `nextflow run main.nf -profile P`, which submits
//! every task itself (locally, or as Slurm/HTCondor jobs with the slurm/condor profiles) and
//! must keep running until the workflow ends.  `bpsc submit` starts it detached from the
//! submit directory (output to `nextflow/driver.log`) and records its pid; that pid is the
//! run's engine id.  From the Nextflow manual (CLI reference, `nextflow run`; executors):
//!
//! | operation | commands |
//! |---|---|
//! | submit | `nextflow run main.nf -profile P` (detached); `--resubmit`: `nextflow run main.nf -profile P -resume` ("tasks that completed are not run again") |
//! | cancel | `kill -TERM PID` of the driver bpsc started (Nextflow then kills its running tasks and cancels the jobs it submitted to a batch system, unless run with `-disable-jobs-cancellation`), then `ps -o args= -p PID` until it has exited |
//! | hold, release | not possible: Nextflow has no way to pause a run; cancel, then resubmit (`-resume`) |
//! | priority | not possible: Nextflow has no job priority (W801 at compile time) |

use crate::backend::ops::{Cmd, Ran, ResourceSet, Session};
use crate::diag::Diagnostic;

/// Where the detached driver's output goes.
pub const DRIVER_LOG: &str = "nextflow/driver.log";

fn driver(s: &Session) -> Option<u32> {
    s.control.pid.or_else(|| s.submitted_ids().first().and_then(|p| p.parse().ok()))
}

/// `ps -o args= -p PID`: the command line of a live process (exit 1 when there is none).
fn ps(pid: u32) -> Cmd {
    Cmd::query(&["ps", "-o", "args=", "-p", &pid.to_string()]).timeout(30)
}

fn is_nextflow(r: &Ran) -> bool {
    r.exit_code == Some(0) && r.stdout.contains("nextflow")
}

pub fn submit(s: &mut Session) -> Result<(), Diagnostic> {
    s.require(&["nextflow"])?;
    if let Some(pid) = driver(s) {
        let r = s.run(ps(pid))?;
        if is_nextflow(&r) {
            return Err(Diagnostic::new("E901", format!("the Nextflow run bpsc started (pid {pid}) is still running"))
                .help("cancel it first with `bpsc cancel DIR`"));
        }
    }
    let line = s.meta.submit_command.clone().unwrap_or_else(|| "nextflow run main.nf -profile local".into());
    let mut argv = crate::backend::ops::words(&line);
    if s.resubmit {
        argv.push("-resume".into());
    }
    let cmd = Cmd { detach: Some(DRIVER_LOG.into()), ..Cmd::action(&argv) };
    let r = s.run_ok(cmd)?;
    s.pid = r.pid;
    s.engine_ids = r.pid.map(|p| p.to_string()).into_iter().collect();
    s.note(format!("Nextflow runs in the background (pid {}); its output: {DRIVER_LOG}", r.pid.unwrap_or(0)));
    Ok(())
}

pub fn cancel(s: &mut Session) -> Result<(), Diagnostic> {
    let Some(pid) = driver(s) else {
        return Err(Diagnostic::new("E901", "bpsc did not start this Nextflow run, so it has no process to stop").help(
            "stop the `nextflow run` process that runs this directory (Ctrl-C, or kill PID): Nextflow then cancels the tasks it submitted",
        ));
    };
    s.require(&["ps", "kill"])?;
    let r = s.run(ps(pid))?;
    if !is_nextflow(&r) {
        return Err(Diagnostic::new(
            "E901",
            format!("the Nextflow run bpsc started (pid {pid}) is not running any more: nothing to cancel"),
        )
        .help("`bpsc status DIR` shows how it ended"));
    }
    s.run_ok(Cmd::action(&["kill", "-TERM", &pid.to_string()]).timeout(30))?;
    s.wait_until(ps(pid), &format!("the Nextflow driver (pid {pid}) has exited"), &|r: &Ran| !is_nextflow(r))?;
    s.engine_ids = vec![pid.to_string()];
    Ok(())
}

pub fn hold(s: &mut Session, _now: bool) -> Result<(), Diagnostic> {
    Err(s.unsupported(
        "Nextflow has no way to pause a run: it submits each task as soon as its inputs are ready",
        "stop it with `bpsc cancel DIR` and continue later with `bpsc submit --resubmit DIR` (`nextflow run -resume`: tasks that completed are not run again)",
    ))
}

pub fn release(s: &mut Session, _sets: &[ResourceSet]) -> Result<(), Diagnostic> {
    Err(s.unsupported(
        "a Nextflow run is never held",
        "to run the rest with other resources: `bpsc cancel DIR`, then `bpsc restart DIR --set memory=...` (a new directory with what is left), \
         or edit nextflow.config and `bpsc submit --resubmit DIR` (-resume keeps the completed tasks)",
    ))
}

pub fn set_priority(s: &mut Session, _priority: i64, _from: i64) -> Result<(), Diagnostic> {
    Err(s.unsupported(
        "Nextflow has no job priority",
        "with the slurm or condor profile the tasks are batch jobs: change them with the batch system's tools (scontrol update JobId=... Nice=..., condor_prio); \
         or compile the campaign for the slurm or htcondor backend, which carry priorities",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::ops::{FakeRunner, Op};
    use crate::submitdir::operations::Control;
    use crate::submitdir::Meta;

    #[test]
    fn submit_starts_the_driver_detached_and_cancel_stops_it() {
        let d = std::env::temp_dir();
        let m =
            Meta { backend: "nextflow".into(), submit_command: Some("nextflow run main.nf -profile slurm".into()), ..Default::default() };
        let c = Control::default();
        let f = FakeRunner::new();
        let mut s = Session::new(Op::Submit, &d, &m, &[], &c, &f);
        submit(&mut s).unwrap();
        let cmds = f.commands();
        assert_eq!(cmds[0].argv, ["nextflow", "run", "main.nf", "-profile", "slurm"]);
        assert_eq!(cmds[0].detach.as_deref(), Some(std::path::Path::new(DRIVER_LOG)));
        assert_eq!((s.pid, s.engine_ids.clone()), (Some(4242), vec!["4242".to_string()]));

        let c = Control { submitted: Some(0), submissions: 1, pid: Some(4242), engine_ids: vec!["4242".into()], ..Default::default() };
        let f =
            FakeRunner::new().on("ps", 0, "java ... nextflow.cli.Launcher run main.nf\n").on("ps", 0, "java nextflow\n").on("ps", 1, "");
        let mut s = Session::new(Op::Cancel, &d, &m, &[], &c, &f);
        cancel(&mut s).unwrap();
        assert_eq!(f.lines(), vec!["ps -o args= -p 4242", "kill -TERM 4242", "ps -o args= -p 4242", "ps -o args= -p 4242"]);

        let f = FakeRunner::new().on("ps", 1, "");
        let mut s = Session::new(Op::Submit, &d, &m, &[], &c, &f);
        s.resubmit = true;
        submit(&mut s).unwrap();
        assert_eq!(f.lines()[1], "nextflow run main.nf -profile slurm -resume >nextflow/driver.log 2>&1 &");
    }

    #[test]
    fn hold_release_and_priority_say_what_to_do_instead() {
        let d = std::env::temp_dir();
        let m = Meta { backend: "nextflow".into(), ..Default::default() };
        let c = Control::default();
        let f = FakeRunner::new();
        let mut s = Session::new(Op::Hold, &d, &m, &[], &c, &f);
        let e = hold(&mut s, false).unwrap_err();
        assert_eq!(e.code, "E903");
        assert!(e.message.contains("cannot hold") && e.help.as_deref().unwrap().contains("-resume"), "{e:?}");
        s.op = Op::Priority;
        assert!(set_priority(&mut s, 1, 0).unwrap_err().help.unwrap().contains("scontrol update"));
        s.op = Op::Release;
        assert_eq!(release(&mut s, &[]).unwrap_err().code, "E903");
        assert!(f.lines().is_empty(), "nothing ran");
    }
}
