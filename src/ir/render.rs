//! Rendering one quantum: its command (the step's `run` with placeholders substituted and
//! quoted for where they land), dataset URLs and scratch paths.

use super::naming::instance_rel;
use super::quote::{quote_in, scan_quotes, var_in, Quote};
use super::{Part, Stage, StepSpec, Template};
use crate::coverage::Value;

/// A value as text: integers in decimal, strings as they are.
pub fn value_text(v: &Value) -> String {
    match v {
        Value::Int(i) => i.to_string(),
        Value::Str(s) => s.to_string(),
    }
}

/// `d1=v1,d2=v2`.
pub fn data_id_text(dims: &[String], vals: &[&Value]) -> String {
    dims.iter().zip(vals).map(|(d, v)| format!("{d}={}", value_text(v))).collect::<Vec<_>>().join(",")
}

/// `${BPSC_SCRATCH}/DATASET/V1_V2`: where a dataset instance lives in the job's scratch.
pub fn scratch_path(dataset: &str, vals: &[&Value]) -> String {
    format!("${{BPSC_SCRATCH}}/{}", instance_rel(dataset, vals))
}

/// A path under the job's scratch directory, `rest` already safe, for shell context `q`.
fn scratch_path_in(rest: &str, q: Quote, out: &mut String) {
    var_in("BPSC_SCRATCH", q, out);
    out.push('/');
    out.push_str(rest);
}

/// Append `text` percent-encoded: only `[A-Za-z0-9-_.~]` stay (RFC 3986 unreserved), so a
/// value can never add a path segment, a query or a scheme to a URL; a value made only of
/// dots (`.`, `..`) has them encoded too, so it cannot name a parent directory.
pub fn percent_encode(text: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let dots = !text.is_empty() && text.bytes().all(|b| b == b'.');
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_~".contains(&b) || (b == b'.' && !dots) {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 15) as usize] as char);
        }
    }
}

/// Fill a dataset URL template (`source`/`archive`) for one instance: data ID values are
/// percent-encoded, `{campaign}` and `{site}` written as they are, `{user}` left as `${USER}`.
pub fn fill_url(t: &Template, dims: &[String], vals: &[&Value], campaign: &str, site: Option<&str>) -> String {
    let mut s = String::new();
    for p in &t.parts {
        match p {
            Part::Lit(l) => s.push_str(l),
            Part::Ph(name) => match dims.iter().position(|d| d == name) {
                Some(i) => percent_encode(&value_text(vals[i]), &mut s),
                None => match name.as_str() {
                    "campaign" => s.push_str(campaign),
                    "site" => s.push_str(site.unwrap_or("local")),
                    "user" => s.push_str("${USER}"),
                    _ => {}
                },
            },
        }
    }
    s
}

/// The command of one quantum of step `st` with data ID `vals` (in the step's dimension
/// order): the step's `run` with every placeholder substituted and quoted for where it lands
/// in the shell text.  The compiler (`--emit ir`, `bpsc show`) and the job wrapper render
/// commands with this one function.
pub fn command(st: &StepSpec, campaign: &str, vals: &[&Value], job_id: &str) -> String {
    let mut out = String::with_capacity(st.run.text.len() + 32);
    let mut q = Quote::None;
    for p in &st.run.parts {
        match p {
            Part::Lit(l) => {
                out.push_str(l);
                q = scan_quotes(l, q);
            }
            Part::Ph(name) => {
                if let Some(i) = st.dims.iter().position(|d| d == name) {
                    quote_in(&value_text(vals[i]), q, &mut out);
                    continue;
                }
                if let Some(key) = name.strip_prefix("config.") {
                    let v = st.config.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).unwrap_or("");
                    quote_in(v, q, &mut out);
                    continue;
                }
                match name.as_str() {
                    "campaign" => quote_in(campaign, q, &mut out),
                    "step" => quote_in(&st.name, q, &mut out),
                    "site" => quote_in(st.site.as_deref().unwrap_or("local"), q, &mut out),
                    "user" => var_in("USER", q, &mut out),
                    "attempt" => var_in("BPSC_ATTEMPT", q, &mut out),
                    "job" => quote_in(job_id, q, &mut out),
                    "data_id" => quote_in(&data_id_text(&st.dims, vals), q, &mut out),
                    "outputs" => {
                        for (i, o) in st.outputs.iter().enumerate() {
                            if i > 0 {
                                out.push(' ');
                            }
                            scratch_path_in(&instance_rel(&o.dataset, vals), q, &mut out);
                        }
                    }
                    "inputs" => {
                        let mut first = true;
                        for inp in &st.inputs {
                            // Inputs over a subset of the step's dimensions are found by
                            // projection; others are not listed (see backends/ir/README.md).
                            let Some(pos) = inp.dims.iter().map(|d| st.dims.iter().position(|x| x == d)).collect::<Option<Vec<usize>>>()
                            else {
                                continue;
                            };
                            let iv: Vec<&Value> = pos.iter().map(|&k| vals[k]).collect();
                            if !first {
                                out.push(' ');
                            }
                            first = false;
                            if !inp.produced && inp.stage == Stage::None {
                                if let Some(src) = &inp.source {
                                    quote_in(&fill_url(src, &inp.dims, &iv, campaign, st.site.as_deref()), q, &mut out);
                                    continue;
                                }
                            }
                            scratch_path_in(&instance_rel(&inp.dataset, &iv), q, &mut out);
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_encode_values_that_could_escape() {
        let t = Template {
            text: "s3://b/{campaign}/{v}/{d}.fits".into(),
            parts: vec![
                Part::Lit("s3://b/".into()),
                Part::Ph("campaign".into()),
                Part::Lit("/".into()),
                Part::Ph("v".into()),
                Part::Lit("/".into()),
                Part::Ph("d".into()),
                Part::Lit(".fits".into()),
            ],
        };
        let (a, b) = (Value::Str("../x?y#z".into()), Value::Int(7));
        let got = fill_url(&t, &["v".into(), "d".into()], &[&a, &b], "c1", None);
        assert_eq!(got, "s3://b/c1/..%2Fx%3Fy%23z/7.fits");
        let dd = Value::Str("..".into());
        assert_eq!(fill_url(&t, &["v".into(), "d".into()], &[&dd, &b], "c1", None), "s3://b/c1/%2E%2E/7.fits");
    }
}
