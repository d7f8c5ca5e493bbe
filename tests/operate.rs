//! `bpsc submit`, `cancel`, `hold`, `release`, `priority` without a real engine: the
//! commands Pegasus and Nextflow would run, asserted against their documented command
//! lines (a scripted runner answers for the engine); and the command line's refusals,
//! missing tools, dry runs, JSON output, exit statuses and records, with stand-in engine
//! tools on PATH.  The real-engine tests are tests/operate_slurm.rs and
//! tests/operate_htcondor.rs.

mod common;

use std::path::{Path, PathBuf};

use bpsc::backend::ops::FakeRunner;
use bpsc::operate::{operate, OpOptions, Request};
use bpsc::submitdir::operations::{self, Op, Outcome};
use common::{bpsc_json, bpsc_with, fresh};

fn campaign(dir: &Path) -> PathBuf {
    let p = dir.join("c.bps");
    std::fs::write(
        &p,
        "bps 1\ndimension visit = 1..4\npipeline p {\n  step a over (visit) { run = \"true\" }\n  step b after a { run = \"true\" }\n}\ncampaign ops {\n  use p\n  coverage = visit\n  priority = 50\n}\n",
    )
    .unwrap();
    p
}

fn compile(dir: &Path, backend: &str) -> PathBuf {
    let sub = dir.join(format!("sub-{backend}"));
    let (code, _, err) = bpsc_with(&["compile", &campaign(dir).to_string_lossy(), "--backend", backend, "-o", &sub.to_string_lossy()], &[]);
    assert_eq!(code, 0, "{err}");
    sub
}

fn opts() -> OpOptions {
    OpOptions { wait: 5, ..Default::default() }
}

#[test]
fn pegasus_runs_its_documented_commands() {
    let dir = fresh("operate-pegasus");
    let sub = compile(&dir, "pegasus");
    // What pegasus-plan leaves: the run directory with its braindump (pegasus-plan(1): the
    // submit directory is --dir/USER/pegasus/LABEL/runNNNN).
    let run = sub.join("pegasus/bpsc/pegasus/ops/run0001");
    let run_s = run.to_string_lossy().into_owned();

    // submit: plan.sh runs `pegasus-plan ... --submit` (pegasus-run prints the DAGMan cluster).
    let f = FakeRunner::new().on("./plan.sh --submit", 0, "2025.01.01 INFO  ...\n1 job(s) submitted to cluster 77.\n").creating(
        "./plan.sh --submit",
        "pegasus/bpsc/pegasus/ops/run0001/braindump.yml",
        "dag: \"ops-0.dag\"\njsd: \"jobstate.log\"\n",
    );
    let d = operate(&sub, &Request::Submit { resubmit: false }, &opts(), &f);
    assert_eq!(d.exit, 0, "{:?}", d.diag);
    let cmd = &f.commands()[0];
    assert_eq!(cmd.argv, ["./plan.sh", "--submit"]);
    assert!(cmd.env.iter().any(|(k, _)| k == "BPSC_BIN"), "plan.sh gets the bpsc for the jobs");
    assert_eq!(d.record.engine_ids, vec!["77".to_string(), run_s.clone()]);

    // hold: the Pegasus DAGMan job as DAGMan (condor_hold(1)), and its idle node jobs.
    let f = FakeRunner::new().on("condor_q 77", 0, "2\n").on("condor_q 77", 0, "5\n");
    let d = operate(&sub, &Request::Hold { now: false }, &opts(), &f);
    assert_eq!(d.exit, 0, "{:?}", d.diag);
    assert_eq!(
        f.lines()[1..3],
        ["condor_hold -reason 'bpsc hold' 77", "condor_hold -reason 'bpsc hold' -constraint 'DAGManJobId == 77 && JobStatus == 1'"]
    );
    assert!(d.record.notes.iter().any(|n| n.contains("pegasus-halt")), "the graceful alternative is named");

    // priority: condor_prio(1) `+value` of the DAGMan job and the queued node jobs, from the
    // compiled campaign priority 50.
    let f = FakeRunner::new().on("condor_q -constraint", 0, "78 0\n").on("condor_q 77", 0, "5\n");
    let d = operate(&sub, &Request::Priority(60), &opts(), &f);
    assert_eq!(d.exit, 0, "{:?}", d.diag);
    assert_eq!(f.lines().last().unwrap(), "condor_prio +10 77 78.0");
    // ... and the next one moves from 60.
    let f = FakeRunner::new().on("condor_q -constraint", 0, "").on("condor_q 77", 0, "5\n");
    operate(&sub, &Request::Priority(55), &opts(), &f);
    assert_eq!(f.lines().last().unwrap(), "condor_prio -5 77");

    // release --set: condor_qedit(1) of the queued node jobs, condor_release(1).
    let f = FakeRunner::new().on("condor_q 77", 0, "5\n").on("condor_q 77", 0, "2\n");
    let d = operate(&sub, &Request::Release { sets: vec!["memory=4GiB".into(), "cpus=2".into()] }, &opts(), &f);
    assert_eq!(d.exit, 0, "{:?}", d.diag);
    assert_eq!(
        f.lines()[1..4],
        [
            "condor_qedit -constraint 'DAGManJobId == 77 && (JobStatus == 1 || JobStatus == 5)' RequestMemory 4096 RequestCpus 2",
            "condor_release -constraint 'DAGManJobId == 77 && JobStatus == 5'",
            "condor_release 77",
        ]
    );

    // cancel: `pegasus-remove [rundir]` (pegasus-remove(1)), confirmed with condor_q.
    let q = "condor_q -constraint 'ClusterId == 77 || DAGManJobId == 77' -af ClusterId ProcId JobStatus";
    let f = FakeRunner::new().on(q, 0, "77 0 2\n").on(q, 0, "");
    let d = operate(&sub, &Request::Cancel, &opts(), &f);
    assert_eq!(d.exit, 0, "{:?}", d.diag);
    assert_eq!(f.lines(), vec![q.to_string(), format!("pegasus-remove {run_s}"), q.to_string()]);

    // resubmit: `pegasus-run [rundir]` (pegasus-run(1): "can also be used to resubmit a
    // failed workflow").
    let f = FakeRunner::new().on("pegasus-run", 0, "1 job(s) submitted to cluster 80.\n");
    let d = operate(&sub, &Request::Submit { resubmit: false }, &opts(), &f);
    assert_eq!(d.diag.as_ref().map(|x| x.code), Some("E902"));
    let d = operate(&sub, &Request::Submit { resubmit: true }, &opts(), &f);
    assert_eq!(d.exit, 0, "{:?}", d.diag);
    assert_eq!(f.lines(), vec!["condor_q 77 -af JobStatus".to_string(), format!("pegasus-run {run_s}")]);
    assert_eq!(d.record.engine_ids[0], "80");

    // Everything is in operations.jsonl, in order.
    let (ops, bad) = operations::read(&sub);
    assert!(bad.is_empty());
    let seq: Vec<(Op, Outcome)> = ops.iter().map(|o| (o.op, o.outcome)).collect();
    assert_eq!(
        seq,
        [
            (Op::Submit, Outcome::Ok),
            (Op::Hold, Outcome::Ok),
            (Op::Priority, Outcome::Ok),
            (Op::Priority, Outcome::Ok),
            (Op::Release, Outcome::Ok),
            (Op::Cancel, Outcome::Ok),
            (Op::Submit, Outcome::Refused),
            (Op::Submit, Outcome::Ok)
        ]
    );
}

#[test]
fn nextflow_runs_its_driver_and_says_what_it_cannot_do() {
    let dir = fresh("operate-nextflow");
    let sub = compile(&dir, "nextflow");
    // submit: `nextflow run [options] [project]` (Nextflow CLI reference), started in the
    // background from the submit directory.
    let f = FakeRunner::new();
    let d = operate(&sub, &Request::Submit { resubmit: false }, &opts(), &f);
    assert_eq!(d.exit, 0, "{:?}", d.diag);
    assert_eq!(f.lines(), vec!["nextflow run main.nf -profile local >nextflow/driver.log 2>&1 &"]);
    assert_eq!(d.record.pid, Some(4242));
    // hold, release, priority: not possible (exit 4), with what to do instead.
    for (req, word) in [
        (Request::Hold { now: true }, "-resume"),
        (Request::Release { sets: vec![] }, "bpsc restart"),
        (Request::Priority(3), "scontrol update"),
    ] {
        let d = operate(&sub, &req, &opts(), &FakeRunner::new());
        let e = d.diag.expect("refused");
        assert_eq!((d.exit, e.code), (4, "E903"));
        assert!(e.help.unwrap().contains(word));
        assert_eq!(d.record.outcome, Outcome::Unsupported);
    }
    // cancel: SIGTERM to the driver (Nextflow then cancels its jobs), until it has exited.
    let f = FakeRunner::new().on("ps", 0, "java -Xms1g nextflow.cli.Launcher run main.nf\n").on("ps", 0, "").on("ps", 1, "");
    let d = operate(&sub, &Request::Cancel, &opts(), &f);
    assert_eq!(d.exit, 0, "{:?}", d.diag);
    assert_eq!(f.lines()[..2], ["ps -o args= -p 4242", "kill -TERM 4242"]);
    // resubmit: `-resume` (only what did not complete runs).
    let f = FakeRunner::new().on("ps", 1, "");
    let d = operate(&sub, &Request::Submit { resubmit: true }, &opts(), &f);
    assert_eq!(d.exit, 0, "{:?}", d.diag);
    assert_eq!(f.lines()[1], "nextflow run main.nf -profile local -resume >nextflow/driver.log 2>&1 &");
}

/// Stand-in HTCondor tools: condor_submit_dag prints what the real one prints.
fn stand_in_tools(dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let w = |name: &str, body: &str| common::write_exec(&bin.join(name), &format!("#!/bin/sh\n{body}\n"));
    w(
        "condor_submit_dag",
        "echo \"$@\" >> \"$(dirname \"$0\")/submitted\"\necho 'Submitting job(s).'\necho '1 job(s) submitted to cluster 99.'",
    );
    w("condor_q", "exit 0");
    bin
}

#[test]
fn the_command_line_refuses_records_and_reports() {
    let dir = fresh("operate-cli");
    let sub = compile(&dir, "htcondor");
    let s = sub.to_string_lossy().into_owned();
    // Never submitted: its own status, and nothing to hold or cancel (exit 3, E901).
    let (code, v, _) = bpsc_json(&["status", &s], &[]);
    assert_eq!((code, v["state"].as_str(), v["submitted"].as_bool()), (7, Some("compiled"), Some(false)), "{v:#}");
    for op in ["hold", "cancel", "release"] {
        let (code, v, _) = bpsc_json(&[op, &s], &[]);
        assert_eq!((code, v["error"]["code"].as_str(), v["outcome"].as_str()), (3, Some("E901"), Some("refused")), "{op}: {v:#}");
    }
    let (code, v, _) = bpsc_json(&["priority", &s, "-3"], &[]);
    assert_eq!(code, 3, "{v:#}");
    // No HTCondor on PATH: E904 names the tool and what to install (exit 5).
    let (code, v, _) = bpsc_json(&["submit", &s], &[("PATH", "/usr/bin:/bin")]);
    assert_eq!((code, v["error"]["code"].as_str()), (5, Some("E904")), "{v:#}");
    assert!(v["error"]["message"].as_str().unwrap().contains("condor_submit_dag"));
    assert!(v["error"]["help"].as_str().unwrap().contains("access point"));
    let (code, _, err) = bpsc_with(&["submit", &s], &[("PATH", "/usr/bin:/bin")]);
    assert_eq!(code, 5);
    assert!(err.contains("E904") && err.contains("condor_submit_dag"), "{err}");
    // A dry run shows the command and changes nothing.
    let bin = stand_in_tools(&dir);
    let path = format!("{}:/usr/bin:/bin", bin.display());
    let (code, v, _) = bpsc_json(&["submit", &s, "--dry-run"], &[("PATH", &path)]);
    assert_eq!((code, v["outcome"].as_str()), (0, Some("dry_run")), "{v:#}");
    assert_eq!(v["commands"][0]["line"], "condor_submit_dag workflow.dag");
    assert!(!bin.join("submitted").exists(), "nothing ran");
    // Submitted (by the stand-in): recorded with the DAGMan id; status is no longer "compiled".
    let (code, v, _) = bpsc_json(&["submit", &s], &[("PATH", &path)]);
    assert_eq!((code, v["engine_ids"][0].as_str(), v["bpsc_operation"].as_u64()), (0, Some("99"), Some(1)), "{v:#}");
    assert_eq!(std::fs::read_to_string(bin.join("submitted")).unwrap(), "workflow.dag\n");
    let (code, v, _) = bpsc_json(&["status", &s], &[]);
    assert_eq!((code, v["state"].as_str(), v["submissions"].as_u64()), (3, Some("running"), Some(1)), "{v:#}");
    // A second submit is refused, and says when and by whom the first was made.
    let (code, v, _) = bpsc_json(&["submit", &s], &[("PATH", &path)]);
    assert_eq!((code, v["error"]["code"].as_str()), (3, Some("E902")), "{v:#}");
    assert!(v["error"]["message"].as_str().unwrap().contains("already submitted, at 20"), "{v:#}");
    assert_eq!(std::fs::read_to_string(bin.join("submitted")).unwrap().lines().count(), 1);
    // release --set of something that is not a resource: E907, exit 2.
    let (code, v, _) = bpsc_json(&["release", &s, "--set", "retries=4"], &[("PATH", &path)]);
    assert_eq!((code, v["error"]["code"].as_str()), (2, Some("E907")), "{v:#}");
    // Every attempt is in the record: the failed, refused and successful ones.
    let (ops, _) = operations::read(&sub);
    let outcomes: Vec<Outcome> = ops.iter().filter(|o| o.op == Op::Submit).map(|o| o.outcome).collect();
    assert_eq!(outcomes, [Outcome::Failed, Outcome::Failed, Outcome::Ok, Outcome::Refused]);
    // Not a submit directory: exit 2.
    let (code, _, err) = bpsc_with(&["cancel", &dir.to_string_lossy()], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not a bpsc submit directory"), "{err}");
}

#[test]
fn status_watch_ends_at_once_on_a_never_submitted_directory() {
    let dir = fresh("operate-watch");
    let sub = compile(&dir, "slurm");
    let t0 = std::time::Instant::now();
    let (code, out, _) = bpsc_with(&["status", "--watch", "--interval", "30", &sub.to_string_lossy()], &[]);
    assert_eq!(code, 7);
    assert!(t0.elapsed() < std::time::Duration::from_secs(20), "it did not wait for a refresh");
    assert!(out.contains("compiled: 0 of") && out.contains("not submitted yet"), "{out}");
}
