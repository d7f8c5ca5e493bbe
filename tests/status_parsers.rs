//! The status harvesters' parsers on the REAL engine logs in `../shared/reference/`
//! (HTCondor/DAGMan, Pegasus, Slurm) and on truncated copies of them: they never panic,
//! say what they could not read, and never count more than the whole file gives.
//!
//! When `../shared/reference` is absent the tests say so loudly and fail if `CI` is set.

use std::path::PathBuf;

use bpsc::backend::htcondor::{harvest as htcondor, jobstate};
use bpsc::backend::nextflow::harvest as nextflow;
use bpsc::backend::pegasus::harvest as pegasus;
use bpsc::backend::slurm::harvest as slurm;
use bpsc::backend::state::{EState, EngineState};

fn ci() -> bool {
    std::env::var("CI").is_ok()
}

/// `../shared/reference/SUB/NAME`, or None (failing under CI) when it is absent.
fn reference(sub: &str, name: &str) -> Option<String> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/reference").join(sub).join(name);
    match std::fs::read(&p) {
        Ok(b) => Some(String::from_utf8_lossy(&b).into_owned()),
        Err(e) => {
            let msg = format!("MISSING: {} ({e}): ../shared/reference is absent or incomplete", p.display());
            if ci() {
                panic!("{msg} (CI is set, so this test fails)");
            }
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "\n!!!!!!!! {msg}: check NOT run (it would fail under CI) !!!!!!!!\n");
            None
        }
    }
}

fn state(st: &EngineState, name: &str) -> Option<EState> {
    st.jobs.get(name).and_then(|j| j.state)
}

fn count(st: &EngineState, s: EState) -> usize {
    st.jobs.values().filter(|j| j.state == Some(s)).count()
}

const FAILED_NODE: &str = "057c8caf-66f6-4612-abf7-cdea5b666b1b_label1_val1a_val2b";
const FUTILE_NODE: &str = "40040b97-606d-4997-98d3-e0493055fe7e_label2_val1a_val2b";

#[test]
fn dagman_nodes_log() {
    let Some(t) = reference("htcondor", "tiny_problems.dag.nodes.log") else { return };
    let st = htcondor::parse_nodes_log(&t, "nodes.log");
    // htcondor2.JobEventLog reads 20 events from it (OFFLINE-CHECKS.md).
    assert_eq!(st.events, 20, "{:?}", st.unreadable);
    assert!(st.unreadable.is_empty(), "{:?}", st.unreadable);
    assert_eq!(state(&st, "pipetaskInit"), Some(EState::Succeeded));
    let f = &st.jobs[FAILED_NODE];
    assert_eq!((f.state, f.exit_code, f.host.as_deref()), (Some(EState::Failed), Some(1), Some("test02")));
    assert_eq!(f.wall_seconds, Some(10.0));
    assert_eq!(f.attempts, 1);
    // The FINAL node's job succeeded but its POST script returned 2: the node failed.
    assert_eq!(state(&st, "finalJob"), Some(EState::Failed));
    // The SERVICE node was aborted when the DAG exited.
    assert_eq!(state(&st, "provisioningJob"), Some(EState::Failed));
    assert_eq!(st.jobs.len(), 6);
    // The futile node never reached the queue.
    assert!(!st.jobs.contains_key(FUTILE_NODE));
}

#[test]
fn dagman_synthetic_nodes_log() {
    let Some(t) = reference("htcondor", "synthetic.nodes.log") else { return };
    let st = htcondor::parse_nodes_log(&t, "synthetic.nodes.log");
    // htcondor2 reads 11 events (synthetic.nodes.log.parsed.txt).
    assert_eq!(st.events, 11);
    assert_eq!(state(&st, "A"), Some(EState::Succeeded));
    // B: return value 3, then resubmitted (103), held, removed.
    let b = &st.jobs["B"];
    assert_eq!((b.state, b.attempts), (Some(EState::Failed), 2));
    assert!(b.detail.as_deref().unwrap_or("").contains("condor_rm"), "{b:?}");
    // 104 has no submit event, so no DAG node: reported, not guessed.
    assert!(st.unreadable.iter().any(|u| u.contains("no DAG node")), "{:?}", st.unreadable);
    assert_eq!(st.jobs["A"].host.as_deref(), Some("vm"));
}

#[test]
fn dagman_node_status_file() {
    let Some(t) = reference("htcondor", "tiny_problems.node_status") else { return };
    let st = htcondor::parse_node_status(&t, "node_status");
    assert!(st.unreadable.is_empty(), "{:?}", st.unreadable);
    assert_eq!(st.jobs.len(), 6);
    assert_eq!(count(&st, EState::Succeeded), 3);
    assert_eq!(count(&st, EState::Failed), 2);
    assert_eq!(state(&st, FUTILE_NODE), Some(EState::Skipped));
    assert_eq!(st.jobs[FAILED_NODE].exit_code, Some(1));
    assert_eq!((st.finished, st.failed), (Some(true), Some(true)));
}

#[test]
fn dagman_out_rescue_and_metrics() {
    let Some(t) = reference("htcondor", "tiny_problems.dag.dagman.out") else { return };
    let st = htcondor::parse_dagman_out(&t, "dagman.out");
    assert_eq!((st.finished, st.failed), (Some(true), Some(true)));
    assert_eq!(st.jobs[FAILED_NODE].exit_code, Some(1));
    assert_eq!(state(&st, FAILED_NODE), Some(EState::Failed));
    assert_eq!(state(&st, "pipetaskInit"), Some(EState::Succeeded));
    assert_eq!(state(&st, "finalJob"), Some(EState::Failed));
    // A rescue run appends to the same dagman.out: once it starts, the DAG is running again.
    let rerun = format!("{t}02/13/25 12:05:00 ** condor_scheduniv_exec.9300.0 (CONDOR_DAGMAN) STARTING UP\n");
    let st = htcondor::parse_dagman_out(&rerun, "dagman.out");
    assert_eq!((st.finished, st.failed), (Some(false), None));
    let Some(t) = reference("htcondor", "tiny_problems.dag.rescue001") else { return };
    let st = htcondor::parse_rescue(&t, "rescue001");
    assert_eq!(count(&st, EState::Succeeded), 3);
    assert_eq!(count(&st, EState::Failed), 2);
    assert_eq!(state(&st, "finalJob"), Some(EState::Failed));
    let Some(t) = reference("htcondor", "tiny_problems.dag.metrics") else { return };
    let st = htcondor::parse_metrics(&t, "metrics");
    assert_eq!((st.finished, st.failed), (Some(true), Some(true)));
}

#[test]
fn pegasus_jobstate_and_braindump() {
    let Some(t) = reference("pegasus/runtime", "process_wf_failure.jobstate.log") else { return };
    let st = jobstate::parse(&t, "jobstate.log");
    assert!(st.unreadable.is_empty(), "{:?}", st.unreadable);
    let ls = &st.jobs["ls_ID0000001"];
    assert_eq!((ls.state, ls.exit_code, ls.attempts), (Some(EState::Failed), Some(2), 2));
    assert_eq!(state(&st, "create_dir_process_0_local"), Some(EState::Succeeded));
    assert_eq!((st.finished, st.failed), (Some(true), Some(true)));
    let Some(t) = reference("pegasus/runtime", "process_wf_success.jobstate.log") else { return };
    let st = jobstate::parse(&t, "jobstate.log");
    assert!(st.jobs.values().all(|j| j.state == Some(EState::Succeeded)), "{:?}", st.jobs);
    assert_eq!((st.finished, st.failed), (Some(true), Some(false)));
    assert_eq!(st.jobs["ls_ID0000001"].wall_seconds, Some(1.0));
    // Pegasus names compute jobs TRANSFORMATION_ID: the bpsc id is the longest known suffix.
    let known = |s: &str| s == "ID0000001" || s == "calibrate_1_0";
    assert_eq!(pegasus::job_of_name("ls_ID0000001", &known), Some("ID0000001"));
    assert_eq!(pegasus::job_of_name("group_calibrate_1_0", &known), Some("calibrate_1_0"));
    assert_eq!(pegasus::job_of_name("create_dir_process_0_local", &known), None);
    let Some(t) = reference("pegasus/runtime", "process_wf_success.braindump.yml") else { return };
    let kv = pegasus::parse_braindump(&t);
    let get = |k: &str| kv.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str());
    assert_eq!(get("jsd"), Some("jobstate.log"));
    assert_eq!(get("submit_dir"), Some("/home/mzalam/processwf/submit/mzalam/pegasus/process/run0001"));
    assert_eq!(get("planner_arguments").map(|a| a.starts_with("\"--conf")), Some(true));
}

/// Arrays of the Slurm smoke run: every id of the reference outputs, as its own group.
fn slurm_ids() -> slurm::IdMap {
    let mut m = slurm::IdMap::default();
    for (id, g) in [
        (1, "A"),
        (2, "B"),
        (3, "C"),
        (4, "F"),
        (5, "G"),
        (6, "H"),
        (7, "N"),
        (8, "Y"),
        (9, "R"),
        (10, "X"),
        (11, "Z"),
        (12, "K"),
        (13, "KG"),
        (14, "KH"),
    ] {
        m.by_id.insert(id, (g.to_string(), 0));
    }
    m
}

#[test]
fn slurm_sacct() {
    let Some(t) = reference("slurm", "sacct-parsable.txt") else { return };
    let st = slurm::parse_sacct(&t, &slurm_ids(), "sacct");
    assert!(st.unreadable.is_empty(), "{:?}", st.unreadable);
    let j = |n: &str| st.jobs[n].clone();
    assert_eq!(j("X#1").state, Some(EState::Failed));
    assert_eq!(j("X#1").exit_code, Some(5));
    assert_eq!((j("X#2").state, j("X#2").signal), (Some(EState::Failed), Some(9)));
    assert_eq!(j("A#9").state, Some(EState::Succeeded));
    assert_eq!(j("A#9").host.as_deref(), Some("vm"));
    assert_eq!(j("A#9").wall_seconds, Some(1.0));
    // Cancelled before it ever started: skipped (pruned); cancelled while running: failed.
    assert_eq!(j("KG#0").state, Some(EState::Skipped));
    assert_eq!(j("KH#1").state, Some(EState::Skipped));
    assert_eq!(j("Z#0").state, Some(EState::Failed));
    assert_eq!(j("K#1").exit_code, Some(1));
    // 10 A tasks, 10 C, 4 F, 4 H, 3 X, 2 K, 2 KH and B, G, N, Y, R, Z, KG.
    assert_eq!(st.jobs.len(), 42);
    let Some(t) = reference("slurm", "sacct-duplicates-X-parsable.txt") else { return };
    let st = slurm::parse_sacct(&t, &slurm_ids(), "sacct -D");
    // R and F_2 were requeued once: two attempts, the last one completed.
    assert_eq!((st.jobs["R#0"].attempts, st.jobs["R#0"].state), (2, Some(EState::Succeeded)));
    assert_eq!((st.jobs["F#2"].attempts, st.jobs["F#2"].state), (2, Some(EState::Succeeded)));
}

#[test]
fn slurm_squeue() {
    let Some(t) = reference("slurm", "squeue-after-submit.txt") else { return };
    let st = slurm::parse_squeue(&t, &slurm_ids(), "squeue");
    // 1_[0-9] is ten pending tasks.
    assert_eq!((0..10).filter(|k| st.jobs.get(&format!("A#{k}")).is_some_and(|j| j.state == Some(EState::Pending))).count(), 10);
    assert_eq!(st.jobs.len(), 10 + 1 + 10 + 4 + 1 + 4 + 1 + 1 + 1 + 3 + 1 + 2 + 1 + 2);
    let Some(t) = reference("slurm", "squeue-never-satisfied.txt") else { return };
    let st = slurm::parse_squeue(&t, &slurm_ids(), "squeue");
    assert_eq!(state(&st, "G#0"), Some(EState::Skipped));
    assert_eq!(state(&st, "H#2"), Some(EState::Skipped));
    let Some(t) = reference("slurm", "squeue-while-running.txt") else { return };
    let st = slurm::parse_squeue(&t, &slurm_ids(), "squeue");
    assert_eq!(state(&st, "Z#0"), Some(EState::Running));
    assert_eq!(state(&st, "K#1"), Some(EState::Pending));
    assert_eq!(slurm::expand_tasks("[0-3,5,7-8%4]"), vec![0, 1, 2, 3, 5, 7, 8]);
    // A damaged line expands to at most one array's worth of ids (fuzzing found gigabytes).
    assert_eq!(slurm::expand_tasks("0-3999999,0-3999999,0-3999999,7").len() as u64, slurm::MAX_ARRAY_TASKS);
    assert!(slurm::expand_tasks("0-4000001").is_empty(), "larger than any array Slurm allows");
}

#[test]
fn nextflow_trace() {
    // Hand-written in the layout the backend's nextflow.config asks for (no reference
    // trace file is in ../shared): a retry, a failure, a running task, raw and human units.
    let t = "task_id\thash\tnative_id\tprocess\ttag\tname\tstatus\texit\tattempt\tsubmit\tstart\tcomplete\trealtime\tpeak_rss\tworkdir\n\
1\tab/cdef12\t101\tp_calibrate\tcalibrate_1_0\tp_calibrate (calibrate_1_0)\tCOMPLETED\t0\t1\t2024-01-01 10:00:00.000\t2024-01-01 10:00:01.000\t2024-01-01 10:00:04.000\t3s\t12.5 MB\t/w/ab\n\
2\tab/cdef13\t102\tp_calibrate\tcalibrate_1_1\tp_calibrate (calibrate_1_1)\tFAILED\t1\t1\t-\t-\t-\t1.5s\t-\t/w/ac\n\
3\tab/cdef14\t103\tp_calibrate\tcalibrate_1_1\tp_calibrate (calibrate_1_1)\tFAILED\t3\t2\t-\t-\t-\t2m 1s\t1 GB\t/w/ad\n\
4\tab/cdef15\t104\tp_coadd\tcoadd_1\tp_coadd (coadd_1)\tRUNNING\t-\t1\t-\t1700000000000\t-\t-\t-\t/w/ae\n";
    let st = nextflow::parse_trace(t, "trace.tsv");
    assert!(st.unreadable.is_empty(), "{:?}", st.unreadable);
    let a = &st.jobs["calibrate_1_0"];
    assert_eq!((a.state, a.exit_code, a.wall_seconds, a.peak_rss_kib), (Some(EState::Succeeded), Some(0), Some(3.0), Some(12800)));
    let b = &st.jobs["calibrate_1_1"];
    assert_eq!((b.state, b.exit_code, b.attempts, b.wall_seconds), (Some(EState::Failed), Some(3), 2, Some(121.0)));
    let c = &st.jobs["coadd_1"];
    assert_eq!((c.state, c.started), (Some(EState::Running), Some(1_700_000_000)));
    truncations(t, |x| nextflow::parse_trace(x, "trace"), 7);
}

/// Parse every prefix of `text` cut every `step` bytes: no panic, never more events or
/// jobs than the whole file, and a note whenever the cut falls inside a line.
fn truncations(text: &str, parse: impl Fn(&str) -> EngineState, step: usize) {
    let full = parse(text);
    let bytes = text.as_bytes();
    let mut cuts = 0;
    for cut in (0..bytes.len()).step_by(step) {
        let prefix = String::from_utf8_lossy(&bytes[..cut]).into_owned();
        let st = parse(&prefix);
        cuts += 1;
        assert!(st.events <= full.events, "cut at {cut}: {} events > {}", st.events, full.events);
        assert!(st.jobs.len() <= full.jobs.len(), "cut at {cut}: {} jobs > {}", st.jobs.len(), full.jobs.len());
        let finals = st.jobs.values().filter(|j| j.state.is_some_and(EState::is_final)).count();
        assert!(finals <= full.jobs.len());
        for name in st.jobs.keys() {
            assert!(full.jobs.contains_key(name), "cut at {cut}: job {name} not in the whole file");
        }
        if cut > 0 && bytes[cut - 1] != b'\n' {
            assert!(!st.unreadable.is_empty(), "cut at {cut}: nothing said about the partial line");
        }
    }
    assert!(cuts > 0);
}

#[test]
#[allow(clippy::type_complexity)]
fn truncated_reference_logs() {
    let cases: Vec<(&str, &str, Box<dyn Fn(&str) -> EngineState>)> = vec![
        ("htcondor", "tiny_problems.dag.nodes.log", Box::new(|t| htcondor::parse_nodes_log(t, "nodes.log"))),
        ("htcondor", "synthetic.nodes.log", Box::new(|t| htcondor::parse_nodes_log(t, "nodes.log"))),
        ("htcondor", "tiny_problems.node_status", Box::new(|t| htcondor::parse_node_status(t, "node_status"))),
        ("htcondor", "tiny_problems.dag.dagman.out", Box::new(|t| htcondor::parse_dagman_out(t, "dagman.out"))),
        ("htcondor", "tiny_problems.dag.rescue001", Box::new(|t| htcondor::parse_rescue(t, "rescue"))),
        ("htcondor", "tiny_problems.dag.metrics", Box::new(|t| htcondor::parse_metrics(t, "metrics"))),
        ("pegasus/runtime", "process_wf_failure.jobstate.log", Box::new(|t| jobstate::parse(t, "jobstate.log"))),
        ("pegasus/runtime", "process_wf_success.jobstate.log", Box::new(|t| jobstate::parse(t, "jobstate.log"))),
        ("slurm", "sacct-parsable.txt", Box::new(|t| slurm::parse_sacct(t, &slurm_ids(), "sacct"))),
        ("slurm", "sacct-duplicates-X-parsable.txt", Box::new(|t| slurm::parse_sacct(t, &slurm_ids(), "sacct"))),
        ("slurm", "squeue-after-submit.txt", Box::new(|t| slurm::parse_squeue(t, &slurm_ids(), "squeue"))),
        ("slurm", "squeue-while-running.txt", Box::new(|t| slurm::parse_squeue(t, &slurm_ids(), "squeue"))),
    ];
    for (sub, name, parse) in cases {
        let Some(t) = reference(sub, name) else { return };
        // "every few hundred bytes", plus a fine pass on the small files.
        let step = if t.len() > 20_000 { 211 } else { 37 };
        truncations(&t, &*parse, step);
        let _ = name;
    }
    // The metrics file is JSON: a cut copy says it is incomplete.
    let Some(t) = reference("htcondor", "tiny_problems.dag.metrics") else { return };
    let st = htcondor::parse_metrics(&t[..t.len() / 2], "metrics");
    assert!(st.finished.is_none() && !st.unreadable.is_empty());
    // The node status file cut inside an ad: the partial ad is ignored and said so.
    let Some(t) = reference("htcondor", "tiny_problems.node_status") else { return };
    let cut = t.find("STATUS_FUTILE").unwrap_or(t.len() / 2);
    let st = htcondor::parse_node_status(&t[..cut], "node_status");
    assert!(st.unreadable.iter().any(|u| u.contains("incomplete") || u.contains("partial")), "{:?}", st.unreadable);
    assert!(!st.jobs.contains_key(FUTILE_NODE), "the partial ad is not used");
    assert_eq!(st.jobs.len(), 3);
}

#[test]
fn garbage_never_panics() {
    let junk = [
        "\u{0}\u{1}\n[\n]\n",
        "005 (x.y.z) garbage\n...\n",
        "000 (1.0.0) 2025-99-99 99:99:99 x\n    DAG Node: \n...\n",
        "1|2|3\n",
        "JobID|State\n1_x|RUNNING\n",
        "\t\t\n",
    ];
    for j in junk {
        let _ = htcondor::parse_nodes_log(j, "x");
        let _ = htcondor::parse_node_status(j, "x");
        let _ = htcondor::parse_dagman_out(j, "x");
        let _ = htcondor::parse_rescue(j, "x");
        let _ = htcondor::parse_metrics(j, "x");
        let _ = jobstate::parse(j, "x");
        let _ = slurm::parse_sacct(j, &slurm_ids(), "x");
        let _ = slurm::parse_squeue(j, &slurm_ids(), "x");
        let _ = nextflow::parse_trace(j, "x");
    }
}
