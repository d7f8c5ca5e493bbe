//! The job-state log: Pegasus's `jobstate.log` (written by pegasus-monitord) and DAGMan's
//! JOBSTATE_LOG share one format:
//!
//! ```text
//! EPOCH JOB EVENT CONDOR_ID_OR_CODE SITE TIME_REQ SEQ
//! EPOCH INTERNAL *** DAGMAN_FINISHED STATUS ***
//! ```

use crate::backend::state::{complete_lines, EState, EngineState};

pub fn parse(text: &str, what: &str) -> EngineState {
    let mut st = EngineState::new("jobstate");
    st.sources.push(what.to_string());
    let mut bad = 0u64;
    for line in complete_lines(text, what, &mut st.unreadable) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 3 {
            if !line.trim().is_empty() {
                bad += 1;
            }
            continue;
        }
        let Ok(epoch) = f[0].parse::<i64>() else {
            bad += 1;
            continue;
        };
        if f[1] == "INTERNAL" {
            st.events += 1;
            // *** DAGMAN_FINISHED 1 ***
            if let Some(p) = f.iter().position(|x| *x == "DAGMAN_FINISHED") {
                st.finished = Some(true);
                st.failed = f.get(p + 1).map(|c| *c != "0");
            } else if f.contains(&"DAGMAN_STARTED") {
                st.finished = Some(false);
                st.failed = None;
            }
            continue;
        }
        let (job, event) = (f[1], f[2]);
        let arg = f.get(3).copied().unwrap_or("");
        let code = arg.parse::<i64>().ok();
        st.events += 1;
        let j = st.job(job);
        match event {
            "PRE_SCRIPT_STARTED" | "PRE_SCRIPT_TERMINATED" | "PRE_SCRIPT_SUCCESS" => j.state = Some(EState::Pending),
            "SUBMIT" => {
                j.state = Some(EState::Pending);
                j.attempts += 1;
                j.exit_code = None;
                j.detail = None;
            }
            "EXECUTE" => {
                j.state = Some(EState::Running);
                j.started = Some(epoch);
            }
            "JOB_HELD" => {
                j.state = Some(EState::Held);
                j.detail = Some("held".into());
            }
            "JOB_RELEASED" => j.state = Some(EState::Pending),
            "JOB_EVICTED" => {
                j.state = Some(EState::Pending);
                j.detail = Some("evicted".into());
            }
            "JOB_TERMINATED" => {
                if let Some(s) = j.started {
                    j.wall_seconds = Some((epoch - s).max(0) as f64);
                }
            }
            "JOB_SUCCESS" => {
                j.state = Some(EState::Succeeded);
                j.exit_code = Some(0);
            }
            "JOB_FAILURE" => {
                j.state = Some(EState::Failed);
                j.exit_code = code;
            }
            "POST_SCRIPT_STARTED" | "POST_SCRIPT_TERMINATED" => {}
            "POST_SCRIPT_SUCCESS" => {
                j.state = Some(EState::Succeeded);
                j.detail = None;
            }
            "POST_SCRIPT_FAILURE" => {
                j.state = Some(EState::Failed);
                j.detail = Some(format!("POST script failed ({arg})"));
            }
            "PRE_SCRIPT_FAILURE" | "SUBMIT_FAILED" | "JOB_ABORTED" => {
                j.state = Some(EState::Failed);
                j.detail = Some(event.to_ascii_lowercase());
            }
            _ => {}
        }
    }
    if bad > 0 {
        st.unreadable.push(format!("{what}: {bad} lines not in the job-state format"));
    }
    st
}
