//! Pegasus state: the planner's submit directory (found through its `braindump.yml`) and
//! the `jobstate.log` pegasus-monitord writes there.

use std::path::{Path, PathBuf};

use crate::backend::state::{read_text, EngineState};

/// Where plan.sh tells pegasus-plan to put its submit directories (`--dir`).
pub fn planner_root(submit: &Path) -> PathBuf {
    submit.join("pegasus")
}

/// Every `braindump.yml` under the planner root (at most 6 levels down: the default
/// `USER/pegasus/LABEL/runNNNN` layout), newest first by modification time.
pub fn braindumps(submit: &Path) -> Vec<PathBuf> {
    let mut found: Vec<(std::time::SystemTime, PathBuf)> = Vec::new();
    let mut stack = vec![(planner_root(submit), 0usize)];
    while let Some((d, depth)) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() && depth < 6 => stack.push((p, depth + 1)),
                Ok(t) if t.is_file() && e.file_name() == "braindump.yml" => {
                    let m = e.metadata().and_then(|m| m.modified()).unwrap_or(std::time::UNIX_EPOCH);
                    found.push((m, p));
                }
                _ => {}
            }
        }
    }
    found.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| b.1.cmp(&a.1)));
    found.into_iter().map(|x| x.1).collect()
}

/// `key: "value"` lines of a braindump (flat YAML, what the planner writes).
pub fn parse_braindump(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            if k.starts_with(' ') || k.starts_with('#') {
                return None;
            }
            let v = v.trim();
            let v = v.strip_prefix('"').and_then(|x| x.strip_suffix('"')).unwrap_or(v);
            Some((k.trim().to_string(), v.replace("\\\"", "\"")))
        })
        .collect()
}

/// Read the newest planned run.
pub fn harvest(submit: &Path) -> EngineState {
    let mut st = EngineState::new("pegasus");
    let Some(bd) = braindumps(submit).into_iter().next() else {
        st.unreadable.push(format!("no braindump.yml under {}: not planned yet (./plan.sh)", planner_root(submit).display()));
        return st;
    };
    let mut notes = Vec::new();
    let Some(text) = read_text(&bd, &mut notes) else {
        st.unreadable.extend(notes);
        return st;
    };
    st.sources.push(bd.display().to_string());
    let kv = parse_braindump(&text);
    let get = |k: &str| kv.iter().find(|(a, _)| a == k).map(|(_, v)| v.clone());
    let dir = bd.parent().map(Path::to_path_buf).unwrap_or_default();
    let jsd = dir.join(get("jsd").unwrap_or_else(|| "jobstate.log".into()));
    match read_text(&jsd, &mut notes) {
        Some(t) => st.overlay(crate::backend::htcondor::jobstate::parse(&t, &jsd.display().to_string())),
        None => notes.push(format!("{}: no job-state log yet (is pegasus-monitord running?)", jsd.display())),
    }
    st.unreadable.extend(notes);
    st.engine = "pegasus".into();
    st
}

/// A Pegasus job name -> the bpsc job id: compute jobs are named `TRANSFORMATION_ID`, so the
/// id is the longest `_`-suffix that is a known job id.  Pegasus's own jobs (create_dir,
/// stage_in/out, cleanup, register) match nothing.
pub fn job_of_name<'a>(name: &'a str, known: &dyn Fn(&str) -> bool) -> Option<&'a str> {
    if known(name) {
        return Some(name);
    }
    name.match_indices('_').map(|(i, _)| &name[i + 1..]).find(|s| !s.is_empty() && known(s))
}
