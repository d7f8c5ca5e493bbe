//! Rendering one quantum: its command (the step's `run` with placeholders substituted and
//! quoted for where they land), dataset URLs and scratch paths.

use super::naming::{instance_rel, push_instance_rel};
use super::quote::{quote_in, scan_quotes, var_in, Quote};
use super::{Part, Stage, StepSpec, Template};
use crate::coverage::Value;

/// A value as text: integers in decimal, strings as they are.
pub fn value_text(v: &Value) -> String {
    value_str(v, &mut itoa::Buffer::new()).to_string()
}

/// [`value_text`] without allocating: an integer is formatted into `buf`.
pub fn value_str<'b>(v: &'b Value, buf: &'b mut itoa::Buffer) -> &'b str {
    match v {
        Value::Int(i) => buf.format(*i),
        Value::Str(s) => s,
    }
}

/// `d1=v1,d2=v2`.
pub fn data_id_text(dims: &[String], vals: &[&Value]) -> String {
    dims.iter().zip(vals).map(|(d, v)| format!("{d}={}", value_text(v))).collect::<Vec<_>>().join(",")
}

/// `${BPSC_SCRATCH}/DATASET/V1_V2`: where a dataset instance lives in the job's scratch.
pub fn scratch_path(dataset: &str, vals: &[&Value]) -> String {
    let mut s = String::new();
    push_scratch_path(dataset, vals, &mut s);
    s
}

/// Append [`scratch_path`] to `out`.
pub fn push_scratch_path(dataset: &str, vals: &[&Value], out: &mut String) {
    out.push_str("${BPSC_SCRATCH}/");
    push_instance_rel(dataset, vals, out);
}

/// The URL template of an input read where it is (an external dataset with `stage = none`),
/// or `None` when the job reads it under its scratch directory.
fn read_in_place(inp: &super::Input) -> Option<&Template> {
    (!inp.produced && inp.stage == Stage::None).then_some(()).and(inp.source.as_ref())
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
    /// Everything but RFC 3986's unreserved characters.
    const NOT_UNRESERVED: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');
    /// The same, dots included: for a value made only of dots.
    const NOT_UNRESERVED_OR_DOT: &percent_encoding::AsciiSet = &NOT_UNRESERVED.add(b'.');
    let dots = !text.is_empty() && text.bytes().all(|b| b == b'.');
    let set = if dots { NOT_UNRESERVED_OR_DOT } else { NOT_UNRESERVED };
    out.extend(percent_encoding::utf8_percent_encode(text, set));
}

/// Fill a dataset URL template (`source`/`archive`) for one instance: data ID values are
/// percent-encoded, `{campaign}` and `{site}` written as they are, `{user}` left as `${USER}`.
pub fn fill_url(t: &Template, dims: &[String], vals: &[&Value], campaign: &str, site: Option<&str>) -> String {
    let mut s = String::new();
    push_fill_url(t, dims, vals, campaign, site, &mut s);
    s
}

/// Append [`fill_url`] to `s`.
pub fn push_fill_url(t: &Template, dims: &[String], vals: &[&Value], campaign: &str, site: Option<&str>, s: &mut String) {
    for p in &t.parts {
        match p {
            Part::Lit(l) => s.push_str(l),
            Part::Ph(name) => match dims.iter().position(|d| d == name) {
                Some(i) => percent_encode(value_str(vals[i], &mut itoa::Buffer::new()), s),
                None => match name.as_str() {
                    "campaign" => s.push_str(campaign),
                    "site" => s.push_str(site.unwrap_or("local")),
                    "user" => s.push_str("${USER}"),
                    _ => {}
                },
            },
        }
    }
}

/// The instances of one gathered input a quantum reads (see [`super::Gather`]): values over
/// `dims` (the producer's dimensions for a produced dataset, so paths are the ones the
/// producer writes; otherwise the input's).
#[derive(Clone, Debug)]
pub struct Gathered<'a> {
    pub input: u32,
    pub dims: &'a [String],
    /// Each instance's values over `dims`.
    pub instances: Vec<Vec<&'a Value>>,
}

/// One quantum to render: its step, its data ID (in the step's dimension order) and the
/// instances of its gathered inputs.
#[derive(Clone, Debug)]
pub struct Quantum<'a> {
    pub spec: &'a StepSpec,
    pub vals: Vec<&'a Value>,
    pub gathered: Vec<Gathered<'a>>,
}

/// Where one input instance is read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InputAt {
    /// Under the job's scratch directory (`DATASET/V1_V2`): produced by a step, or staged.
    Scratch(String),
    /// An external dataset read in place (`stage = none`): its URL.
    Url(String),
}

impl InputAt {
    /// As the job line writes it (`${BPSC_SCRATCH}/...` or the URL).
    pub fn text(&self) -> String {
        let mut s = String::new();
        self.push_text(&mut s);
        s
    }

    /// Append [`InputAt::text`] to `out`.
    pub fn push_text(&self, out: &mut String) {
        match self {
            InputAt::Scratch(rel) => {
                out.push_str("${BPSC_SCRATCH}/");
                out.push_str(rel);
            }
            InputAt::Url(u) => out.push_str(u),
        }
    }

    fn write(&self, q: Quote, out: &mut String) {
        match self {
            InputAt::Scratch(rel) => scratch_path_in(rel, q, out),
            InputAt::Url(u) => quote_in(u, q, out),
        }
    }
}

impl<'a> Quantum<'a> {
    pub fn new(spec: &'a StepSpec, vals: Vec<&'a Value>) -> Quantum<'a> {
        Quantum { spec, vals, gathered: Vec::new() }
    }

    /// Call `f` with the dimensions and values of every instance of input `k` this quantum
    /// reads: the gathered ones, or the one its data ID projects to (none when neither: an
    /// input over dimensions the IR could not relate).
    pub fn for_each_instance(&self, k: usize, mut f: impl FnMut(&[String], &[&Value])) {
        let st = self.spec;
        let Some(inp) = st.inputs.get(k) else { return };
        if let Some(g) = self.gathered.iter().find(|g| g.input as usize == k) {
            for vals in &g.instances {
                f(g.dims, vals);
            }
            return;
        }
        if let Some(pos) = inp.dims.iter().map(|d| st.dims.iter().position(|x| x == d)).collect::<Option<Vec<usize>>>() {
            let iv: Vec<&Value> = pos.iter().map(|&i| self.vals[i]).collect();
            f(&inp.dims, &iv);
        }
    }

    /// Where this quantum reads each instance of input `k` (see [`Quantum::for_each_instance`]).
    pub fn input_instances(&self, k: usize, campaign: &str) -> Vec<InputAt> {
        let st = self.spec;
        let Some(inp) = st.inputs.get(k) else { return Vec::new() };
        let mut out = Vec::new();
        self.for_each_instance(k, |dims, iv| {
            out.push(match read_in_place(inp) {
                Some(src) => InputAt::Url(fill_url(src, dims, iv, campaign, st.site.as_deref())),
                None => InputAt::Scratch(instance_rel(&inp.dataset, iv)),
            });
        });
        out
    }

    /// Append where this quantum reads one instance of input `k` (its values `iv` over
    /// `dims`, from [`Quantum::for_each_instance`]) as the job line writes it: the text of the
    /// [`InputAt`] that [`Quantum::input_instances`] gives, without building it.
    pub fn push_input_text(&self, k: usize, dims: &[String], iv: &[&Value], campaign: &str, out: &mut String) {
        let Some(inp) = self.spec.inputs.get(k) else { return };
        match read_in_place(inp) {
            Some(src) => push_fill_url(src, dims, iv, campaign, self.spec.site.as_deref(), out),
            None => push_scratch_path(&inp.dataset, iv, out),
        }
    }

    /// The scratch path of output `k`, relative to the scratch directory.
    pub fn output_rel(&self, k: usize) -> Option<String> {
        self.spec.outputs.get(k).map(|o| instance_rel(&o.dataset, &self.vals))
    }
}

/// Write `v`, a value a user wrote (a config value), for context `q`: `$NAME` and `${NAME}`
/// stay references for the job's shell to expand, the rest is quoted literally, and the whole
/// stays one word.  Any other `$` (`$1`, `$(...)`, `${X:-y}`) is literal text.
pub fn quote_with_vars(v: &str, q: Quote, out: &mut String) {
    let b = v.as_bytes();
    let name_start = |c: u8| c.is_ascii_alphabetic() || c == b'_';
    let name_char = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut lit_start = 0;
    let mut i = 0;
    let mut wrote = false;
    while i < b.len() {
        if b[i] == b'$' {
            // (name, end of the reference)
            let r = if i + 1 < b.len() && name_start(b[i + 1]) {
                let mut e = i + 2;
                while e < b.len() && name_char(b[e]) {
                    e += 1;
                }
                Some((&v[i + 1..e], e))
            } else if i + 2 < b.len() && b[i + 1] == b'{' && name_start(b[i + 2]) {
                let mut e = i + 3;
                while e < b.len() && name_char(b[e]) {
                    e += 1;
                }
                (e < b.len() && b[e] == b'}').then(|| (&v[i + 2..e], e + 1))
            } else {
                None
            };
            if let Some((name, end)) = r {
                if lit_start < i {
                    quote_in(&v[lit_start..i], q, out);
                }
                var_in(name, q, out);
                wrote = true;
                i = end;
                lit_start = end;
                continue;
            }
        }
        i += 1;
    }
    if lit_start < b.len() || !wrote {
        quote_in(&v[lit_start..], q, out);
    }
}

/// The command of one quantum: the step's `run` with every placeholder substituted and
/// quoted for where it lands in the shell text.  The compiler (`--emit ir`, `bpsc show`)
/// and the job wrapper render commands with this one function.
pub fn command(qn: &Quantum, campaign: &str, job_id: &str) -> String {
    let mut out = String::with_capacity(qn.spec.run.text.len() + 32);
    command_into(qn, campaign, job_id, &mut out);
    out
}

/// Append [`command`] to `out`.
pub fn command_into(qn: &Quantum, campaign: &str, job_id: &str, out: &mut String) {
    let st = qn.spec;
    let vals = &qn.vals;
    let mut q = Quote::None;
    // Paths of several instances, each one word, separated by spaces.
    let paths = |list: &mut dyn Iterator<Item = InputAt>, q: Quote, out: &mut String| {
        for (i, p) in list.enumerate() {
            if i > 0 {
                out.push(' ');
            }
            p.write(q, out);
        }
    };
    for p in &st.run.parts {
        match p {
            Part::Lit(l) => {
                out.push_str(l);
                q = scan_quotes(l, q);
            }
            Part::Ph(name) => {
                if let Some(i) = st.dims.iter().position(|d| d == name) {
                    quote_in(value_str(vals[i], &mut itoa::Buffer::new()), q, out);
                    continue;
                }
                if let Some(key) = name.strip_prefix("config.") {
                    let v = st.config.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).unwrap_or("");
                    quote_with_vars(v, q, out);
                    continue;
                }
                if let Some(ds) = name.strip_prefix("inputs.") {
                    if let Some(k) = st.inputs.iter().position(|i| i.dataset == ds) {
                        paths(&mut qn.input_instances(k, campaign).into_iter(), q, out);
                    }
                    continue;
                }
                if let Some(ds) = name.strip_prefix("outputs.") {
                    if let Some(rel) = st.outputs.iter().position(|o| o.dataset == ds).and_then(|k| qn.output_rel(k)) {
                        scratch_path_in(&rel, q, out);
                    }
                    continue;
                }
                match name.as_str() {
                    "campaign" => quote_in(campaign, q, out),
                    "step" => quote_in(&st.name, q, out),
                    "site" => quote_in(st.site.as_deref().unwrap_or("local"), q, out),
                    "user" => var_in("USER", q, out),
                    "attempt" => var_in("BPSC_ATTEMPT", q, out),
                    "job" => quote_in(job_id, q, out),
                    "data_id" => quote_in(&data_id_text(&st.dims, vals), q, out),
                    "outputs" => {
                        paths(&mut (0..st.outputs.len()).filter_map(|k| qn.output_rel(k)).map(InputAt::Scratch), q, out);
                    }
                    "inputs" => {
                        paths(&mut (0..st.inputs.len()).flat_map(|k| qn.input_instances(k, campaign)), q, out);
                    }
                    _ => {}
                }
            }
        }
    }
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
        // Every byte as the hand-written encoder this replaced wrote it: unreserved bytes as
        // they are, every other byte (UTF-8 included) as %XX in upper case.
        for text in ["a-b_c.d~e", "é/ü ?#%&+", "\u{0}\n\u{7f}", "x.y", "...", ".", ""] {
            let mut got = String::new();
            percent_encode(text, &mut got);
            let only_dots = !text.is_empty() && text.bytes().all(|b| b == b'.');
            let want: String = text
                .bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() || b"-_~".contains(&b) || (b == b'.' && !only_dots) {
                        (b as char).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect();
            assert_eq!(got, want, "{text:?}");
        }
        let dd = Value::Str("..".into());
        assert_eq!(fill_url(&t, &["v".into(), "d".into()], &[&dd, &b], "c1", None), "s3://b/c1/%2E%2E/7.fits");
    }
}
