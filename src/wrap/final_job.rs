//! The provenance job's second half: the campaign's outcome and the user's final job
//! (`final NAME { run, when }`, language 1.1).
//!
//! After gathering every record, the provenance job decides the campaign's **outcome** from
//! the task tables and the latest record of each job: `success` when every job (joins and
//! the provenance job itself aside) has a successful latest record, `failure` otherwise (a
//! job failed for good, was skipped, or never ran).  When the final job's `when` is
//! `always`, or equals the outcome, its command runs (under `/bin/bash -c`, in a working
//! area of its own, with `BPSC_CAMPAIGN_OUTCOME=success|failure`), numbered, logged and
//! recorded like any attempt: `provenance/final_NAME.N.json`, `kind: "final"`.  The
//! provenance job fails with the final job's status when it fails.

use std::collections::HashMap;
use std::path::Path;

use serde_json::{json, Value};

use crate::submitdir::records;

/// The campaign's outcome from the tables and records.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Outcome {
    pub success: bool,
    pub jobs: u64,
    pub succeeded: u64,
    /// Latest record failed (skipped included).
    pub failed: u64,
    /// No record at all.
    pub never_ran: u64,
}

impl Outcome {
    pub fn word(&self) -> &'static str {
        if self.success {
            "success"
        } else {
            "failure"
        }
    }

    pub fn json(&self) -> Value {
        json!({"outcome": self.word(), "jobs": self.jobs, "succeeded": self.succeeded, "failed": self.failed, "never_ran": self.never_ran})
    }
}

/// Decide the outcome of the campaign in `submit`.
pub fn outcome(submit: &Path) -> Result<Outcome, String> {
    let mut latest: HashMap<String, (u32, bool)> = HashMap::new();
    records::for_each_record(submit, |r, _| {
        let ok = r.succeeded();
        let e = latest.entry(r.job_id.clone()).or_insert((r.attempt, ok));
        if r.attempt >= e.0 {
            *e = (r.attempt, ok);
        }
    });
    let mut o = Outcome::default();
    let notes = records::for_each_task(submit, |_, _, t| {
        if matches!(t.kind.as_str(), "join" | "provenance") {
            return;
        }
        o.jobs += 1;
        match latest.get(&t.id) {
            Some((_, true)) => o.succeeded += 1,
            Some((_, false)) => o.failed += 1,
            None => o.never_ran += 1,
        }
    });
    if let Some(n) = notes.first() {
        return Err(format!("reading the task tables: {n}"));
    }
    o.success = o.succeeded == o.jobs;
    Ok(o)
}

/// Does `when` call for a run given the outcome?
pub fn due(when: &str, o: &Outcome) -> bool {
    match when {
        "always" => true,
        "success" => o.success,
        "failure" => !o.success,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_matches_the_outcome() {
        let ok = Outcome { success: true, ..Default::default() };
        let bad = Outcome::default();
        assert!(due("always", &ok) && due("always", &bad));
        assert!(due("success", &ok) && !due("success", &bad));
        assert!(!due("failure", &ok) && due("failure", &bad));
        assert!(!due("never", &ok));
    }
}
