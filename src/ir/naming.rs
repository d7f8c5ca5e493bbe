//! Names: job ids, the encoding of data ID values for ids and paths, and name sanitising.
//!
//! Every id and path component bpsc generates matches `[A-Za-z0-9_-]+`: safe as a DAGMan
//! node name, a Pegasus id, a Slurm job name, a Nextflow value and a path component (no
//! `/`, no `.`, no quote, no space, no shell metacharacter), whatever the data ID holds.

use super::{Ir, JobKind, NO_CLUSTER};
use crate::coverage::Value;

/// A step or cluster name as a job-id prefix and file stem: `[A-Za-z0-9_]` stay, anything
/// else becomes `-`.
pub fn sanitize(name: &str) -> String {
    let mut s = String::with_capacity(name.len());
    push_sanitized(&mut s, name);
    s
}

/// [`sanitize`] `name` onto `out` (a name that needs no change is copied as it is).
fn push_sanitized(out: &mut String, name: &str) {
    if name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        out.push_str(name);
    } else {
        out.extend(name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '-' }));
    }
}

/// `sanitize(step)` then `_v1_v2`, appended to `out`.
fn push_step_quantum_id(step: &str, vals: &[&Value], out: &mut String) {
    push_sanitized(out, step);
    push_value_suffix(vals.iter().copied(), out);
}

/// `_v1_v2...`: each value [`encode_value`]d after an underscore, appended to `out`.
fn push_value_suffix<'v>(vals: impl Iterator<Item = &'v Value>, out: &mut String) {
    for v in vals {
        out.push('_');
        encode_value(v, out);
    }
}

/// Encode a data ID value for ids and paths: ASCII letters and digits stay, every other
/// byte becomes `-XX` (hex), and a negative integer starts with `-2d`.  The result matches
/// `[A-Za-z0-9-]+`.  It is injective, and since it never contains `_`, `prefix_v1_v2`
/// splits back unambiguously.
pub fn encode_value(v: &Value, out: &mut String) {
    match v {
        Value::Int(i) => {
            // itoa: no String allocated per value (this runs for every job id of a campaign).
            let mut buf = itoa::Buffer::new();
            if *i < 0 {
                out.push_str("-2d");
                out.push_str(buf.format(i.unsigned_abs()));
            } else {
                out.push_str(buf.format(*i));
            }
        }
        Value::Str(s) => {
            if s.is_empty() {
                out.push_str("-00-00");
            }
            for b in s.bytes() {
                if b.is_ascii_alphanumeric() {
                    out.push(b as char);
                } else {
                    const HEX: &[u8; 16] = b"0123456789abcdef";
                    out.push('-');
                    out.push(HEX[(b >> 4) as usize] as char);
                    out.push(HEX[(b & 15) as usize] as char);
                }
            }
        }
    }
}

/// The text [`encode_value`] encoded: letters and digits as they are, `-XX` a byte in hex.
/// `None` when `s` is not such an encoding (or not UTF-8 once decoded).  An integer and
/// its decimal text encode alike: the caller knows the dimension's kind.
pub fn decode_value(s: &str) -> Option<String> {
    if s == "-00-00" {
        return Some(String::new());
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'-' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            if !hex.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)) {
                return None;
            }
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else if b[i].is_ascii_alphanumeric() {
            out.push(b[i]);
            i += 1;
        } else {
            return None;
        }
    }
    String::from_utf8(out).ok()
}

/// `prefix_v1_v2`: values encoded by [`encode_value`].
pub fn quantum_id(prefix: &str, vals: &[&Value]) -> String {
    let mut s = String::with_capacity(prefix.len() + vals.len() * 8);
    s.push_str(prefix);
    push_value_suffix(vals.iter().copied(), &mut s);
    s
}

/// `DATASET/V1_V2`: the relative path of a dataset instance under the job's scratch.
pub fn instance_rel(dataset: &str, vals: &[&Value]) -> String {
    let mut s = String::with_capacity(dataset.len() + 16);
    push_instance_rel(dataset, vals, &mut s);
    s
}

/// Append [`instance_rel`] to `s`.
pub fn push_instance_rel(dataset: &str, vals: &[&Value], s: &mut String) {
    s.push_str(dataset);
    s.push('/');
    if vals.is_empty() {
        s.push('0');
    }
    for (i, v) in vals.iter().enumerate() {
        if i > 0 {
            s.push('_');
        }
        encode_value(v, s);
    }
}

/// How a cluster names its jobs.
#[derive(Clone, Copy, Debug)]
pub struct ClusterNaming<'a> {
    pub name: &'a str,
    /// The positions, in the first member's data ID, of the values that name the job: `by`
    /// then `split_by`.
    pub cols: &'a [usize],
    /// A `size` chunk: named by its first member's whole data ID.
    pub chunk: bool,
}

/// The id of a compute job: an unclustered quantum of step `step` with data ID `vals`, or
/// the cluster job whose first member that is.
pub fn compute_id(step: &str, vals: &[&Value], cluster: Option<ClusterNaming>) -> String {
    let mut s = String::with_capacity(step.len() + vals.len() * 8);
    push_compute_id(step, vals, cluster, &mut s);
    s
}

/// [`compute_id`] appended to `out`.
fn push_compute_id(step: &str, vals: &[&Value], cluster: Option<ClusterNaming>, out: &mut String) {
    match cluster {
        None => push_step_quantum_id(step, vals, out),
        // A chunk is named by its cluster and its first member's data ID.
        Some(c) if c.chunk => {
            out.push_str(c.name);
            out.push('_');
            push_step_quantum_id(step, vals, out);
        }
        Some(c) => {
            out.push_str(c.name);
            push_value_suffix(c.cols.iter().filter_map(|&i| vals.get(i).copied()), out);
        }
    }
}

/// The stable id of job `j` (see backends/ir/README.md for the forms).
pub fn job_id(ir: &Ir, j: u32) -> String {
    let mut s = String::with_capacity(32);
    push_job_id(ir, j, &mut s);
    s
}

/// [`job_id`] appended to `out`: no `String` of its own, for writers that keep a million ids
/// in one buffer.
pub fn push_job_id(ir: &Ir, j: u32, out: &mut String) {
    let job = &ir.jobs[j as usize];
    let mut n = itoa::Buffer::new();
    match job.kind {
        JobKind::Compute => {
            let m = ir.members[job.lo as usize];
            let step = &ir.steps[m.step as usize];
            let cluster = (job.owner != NO_CLUSTER).then(|| ir.clusters[job.owner as usize].naming(m.step));
            push_compute_id(&step.name, &ir.data_id(m), cluster, out);
        }
        JobKind::StageIn => {
            out.push_str("stagein_");
            out.push_str(n.format(job.owner));
        }
        JobKind::StageOut => {
            out.push_str("stageout_");
            push_job_id(ir, job.owner, out);
        }
        JobKind::Cleanup => {
            out.push_str("cleanup_");
            push_job_id(ir, job.owner, out);
        }
        JobKind::Join => {
            out.push_str("join_");
            out.push_str(n.format(job.owner));
        }
        JobKind::Provenance => out.push_str("provenance"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(v: Value) -> String {
        let mut s = String::new();
        encode_value(&v, &mut s);
        s
    }

    #[test]
    fn hostile_values_encode_to_safe_tokens() {
        for v in ["../../etc", "$(rm -rf ~)", "a b", "it's", "x\ny", "\"q\"", "g-r", "a_b", "", "\u{0}", "é"] {
            let e = enc(Value::Str(v.into()));
            assert!(!e.is_empty());
            assert!(e.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'), "{v:?} -> {e}");
        }
        assert_eq!(enc(Value::Str("../x".into())), "-2e-2e-2fx");
        assert_eq!(enc(Value::Int(-5)), "-2d5");
        assert_eq!(enc(Value::Str("é".into())), "-c3-a9");
        assert_ne!(enc(Value::Str("a-b".into())), enc(Value::Str("a".into())) + "-b");
        // Int 5 and string "5" encode alike; they can only meet in a dimension of mixed
        // kinds, which lowering checks for collisions (E802).
    }

    #[test]
    fn decoding_inverts_encoding() {
        for v in crate::ir::quote::INJECTION_CORPUS.iter().chain(["", "a-b", "-", "x_y", "ümlaut"].iter()) {
            assert_eq!(decode_value(&enc(Value::Str((*v).into()))).as_deref(), Some(*v), "{v:?}");
        }
        assert_eq!(decode_value(&enc(Value::Int(-42))).as_deref(), Some("-42"));
        for bad in ["a b", "-g0", "-4", "x_y", "-ff"] {
            assert_eq!(decode_value(bad), None, "{bad}");
        }
    }

    #[test]
    fn encoding_is_injective_on_strings() {
        let vals = ["a", "a-", "a-2d", "-", "--", "a-61", "a a", "a_a", "A", ""];
        let mut seen = std::collections::HashMap::new();
        for v in vals {
            let e = enc(Value::Str(v.into()));
            if let Some(prev) = seen.insert(e.clone(), v) {
                panic!("{prev:?} and {v:?} both encode to {e}");
            }
        }
    }

    #[test]
    fn ids_and_paths() {
        let (a, b) = (Value::Int(903334), Value::Str("../r".into()));
        assert_eq!(quantum_id("isr", &[&a, &b]), "isr_903334_-2e-2e-2fr");
        assert_eq!(instance_rel("calexp", &[&a, &b]), "calexp/903334_-2e-2e-2fr");
        assert_eq!(instance_rel("summary", &[]), "summary/0");
        assert_eq!(sanitize("drp.isr-x"), "drp-isr-x");
    }
}
