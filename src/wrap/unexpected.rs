//! Working areas and unexpected files (`unexpected = keep | discard`, language 1.1).
//!
//! **The quantum's working area** is a directory of its own that the wrapper creates for
//! each quantum of each attempt, `${BPSC_SCRATCH}/.bpsc-work/JOB.ATTEMPT/Q` (Q: the
//! quantum's position in the job), empty at the start; the payload runs with it as its
//! working directory, and `BPSC_WORKDIR` names it.  Whatever the payload leaves there that
//! is not a declared output is *unexpected*: after the attempt the wrapper moves each such
//! file to `SUBMIT/unexpected/STEP/DATAID/attempt-N/` under its relative path (`keep`) or
//! removes it (`discard`, the default), lists it in the quantum's record (`unexpected`:
//! path, size, where it was kept), and removes the working area.  Files a payload writes
//! elsewhere (absolute paths, the scratch's dataset folders that other jobs share) are not
//! seen: only the private working area can be attributed to one quantum.

use std::io;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::ir::settings::Unexpected;

/// Create the working area of quantum `q` of attempt `attempt` of `job` (emptied first).
pub fn create(scratch: &Path, job: &str, attempt: u32, q: usize) -> io::Result<PathBuf> {
    let dir = scratch.join(".bpsc-work").join(format!("{job}.{attempt}")).join(q.to_string());
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Remove a working area (and the attempt's folder once it is empty).
pub fn remove(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
    if let Some(p) = dir.parent() {
        let _ = std::fs::remove_dir(p);
    }
}

/// A data ID as a folder name: its values, in the order of their dimension names, encoded
/// as in job ids (`V1_V2`; `0` for an empty data ID).
pub fn data_id_dir(data_id: &Value) -> String {
    let mut s = String::new();
    if let Some(m) = data_id.as_object() {
        for (i, v) in m.values().enumerate() {
            if i > 0 {
                s.push('_');
            }
            let v = match v {
                Value::Number(n) if n.is_i64() => crate::coverage::Value::Int(n.as_i64().unwrap_or(0)),
                Value::String(t) => crate::coverage::Value::Str(t.as_str().into()),
                other => crate::coverage::Value::Str(other.to_string().into()),
            };
            crate::ir::naming::encode_value(&v, &mut s);
        }
    }
    if s.is_empty() {
        s.push('0');
    }
    s
}

/// Files under `dir`, relative, sorted (symbolic links as files; directories walked).
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(p),
                Ok(_) => {
                    if let Ok(rel) = p.strip_prefix(dir) {
                        out.push(rel.to_path_buf());
                    }
                }
                Err(_) => {}
            }
        }
    }
    out.sort();
    out
}

/// Move `from` to `to` (across filesystems too).
fn move_file(from: &Path, to: &Path) -> io::Result<()> {
    if let Some(p) = to.parent() {
        std::fs::create_dir_all(p)?;
    }
    match std::fs::rename(from, to) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
            let m = std::fs::symlink_metadata(from)?;
            if m.file_type().is_symlink() {
                std::os::unix::fs::symlink(std::fs::read_link(from)?, to)?;
            } else {
                std::fs::copy(from, to)?;
            }
            std::fs::remove_file(from)
        }
        Err(e) => Err(e),
    }
}

/// Where the files of one quantum's attempt are kept.
pub struct KeepAt<'a> {
    pub submit: &'a Path,
    pub step: &'a str,
    pub data_id: &'a Value,
    pub attempt: u32,
}

impl KeepAt<'_> {
    /// `unexpected/STEP/DATAID/attempt-N`, relative to the submit directory.
    pub fn rel(&self) -> PathBuf {
        Path::new("unexpected")
            .join(crate::ir::naming::sanitize(self.step))
            .join(data_id_dir(self.data_id))
            .join(format!("attempt-{}", self.attempt))
    }
}

/// Handle the unexpected files of working area `dir` by `policy`: the record entries.
/// `declared` are the quantum's declared output paths (never touched).
pub fn sweep(dir: &Path, declared: &[PathBuf], policy: Unexpected, keep: &KeepAt) -> Vec<Value> {
    let mut out = Vec::new();
    for rel in files(dir) {
        let p = dir.join(&rel);
        if declared.contains(&p) {
            continue;
        }
        let size = std::fs::symlink_metadata(&p).map(|m| m.len()).ok();
        let mut rec = json!({"path": rel, "size": size});
        match policy {
            Unexpected::Keep => {
                let to_rel = keep.rel().join(&rel);
                match move_file(&p, &keep.submit.join(&to_rel)) {
                    Ok(()) => rec["kept"] = json!(to_rel),
                    Err(e) => {
                        rec["kept"] = Value::Null;
                        rec["error"] = json!(e.to_string());
                        let _ = std::fs::remove_file(&p);
                        rec["removed"] = json!(true);
                    }
                }
            }
            Unexpected::Discard => {
                rec["removed"] = json!(std::fs::remove_file(&p).is_ok());
            }
        }
        out.push(rec);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_moves_and_discard_removes_what_is_not_declared() {
        let d = tempfile::tempdir().unwrap();
        let submit = d.path().join("submit");
        let work = create(&d.path().join("scratch"), "calibrate_1_2", 3, 0).unwrap();
        std::fs::create_dir_all(work.join("tmp")).unwrap();
        std::fs::write(work.join("core.123"), b"core").unwrap();
        std::fs::write(work.join("tmp/x.log"), b"log!").unwrap();
        std::fs::write(work.join("out.fits"), b"declared").unwrap();
        let did = json!({"visit": 1, "detector": "R 2"});
        let keep = KeepAt { submit: &submit, step: "calibrate", data_id: &did, attempt: 3 };
        let recs = sweep(&work, &[work.join("out.fits")], Unexpected::Keep, &keep);
        assert_eq!(recs.len(), 2, "{recs:?}");
        assert_eq!(recs[0]["path"], "core.123");
        assert_eq!(recs[0]["kept"], "unexpected/calibrate/R-202_1/attempt-3/core.123");
        assert_eq!(std::fs::read(submit.join("unexpected/calibrate/R-202_1/attempt-3/tmp/x.log")).unwrap(), b"log!");
        assert!(work.join("out.fits").exists());
        std::fs::write(work.join("again"), b"x").unwrap();
        let recs = sweep(&work, &[], Unexpected::Discard, &keep);
        assert_eq!(recs.len(), 2);
        assert!(recs.iter().all(|r| r["removed"] == true));
        remove(&work);
        assert!(!work.exists());
    }

    #[test]
    fn data_id_folders() {
        assert_eq!(data_id_dir(&json!({})), "0");
        assert_eq!(data_id_dir(&json!({"a": -3, "b": "x/y"})), "-2d3_x-2fy");
    }
}
