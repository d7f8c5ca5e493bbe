//! Writing the IR: commands (placeholders substituted, shell-quoted), dataset paths, job
//! resources, JSON Lines, and step/job graphs in DOT and Mermaid.
//!
//! Everything streams to a `Write`; nothing builds the whole output as one string.

use std::io::{self, Write};

use super::ir::*;
use crate::check::model::{Part, Persist, Stage, Template, Value as SVal};
use crate::coverage::Value;

// ------------------------------------------------------------------ shell quoting

/// Where a placeholder sits in the template's shell text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quote {
    None,
    Single,
    Double,
}

/// Quoting state after shell text `s`, starting from `q`.
pub fn scan_quotes(s: &str, mut q: Quote) -> Quote {
    let mut esc = false;
    for c in s.chars() {
        match q {
            Quote::None => {
                if esc {
                    esc = false;
                } else if c == '\\' {
                    esc = true;
                } else if c == '\'' {
                    q = Quote::Single;
                } else if c == '"' {
                    q = Quote::Double;
                }
            }
            Quote::Single => {
                if c == '\'' {
                    q = Quote::None;
                }
            }
            Quote::Double => {
                if esc {
                    esc = false;
                } else if c == '\\' {
                    esc = true;
                } else if c == '"' {
                    q = Quote::None;
                }
            }
        }
    }
    q
}

fn is_plain(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"_./:=,+@%-".contains(&b))
}

/// Quote literal text `v` so that, placed in context `q`, the shell reads exactly `v`.
pub fn quote_in(v: &str, q: Quote, out: &mut String) {
    match q {
        Quote::None => {
            if is_plain(v) {
                out.push_str(v);
            } else {
                out.push('\'');
                out.push_str(&v.replace('\'', "'\\''"));
                out.push('\'');
            }
        }
        Quote::Single => out.push_str(&v.replace('\'', "'\\''")),
        Quote::Double => {
            for c in v.chars() {
                if matches!(c, '\\' | '"' | '$' | '`') {
                    out.push('\\');
                }
                out.push(c);
            }
        }
    }
}

/// An environment variable reference, usable in any quoting context.
pub fn var_in(name: &str, q: Quote, out: &mut String) {
    match q {
        Quote::None => out.push_str(&format!("\"${{{name}}}\"")),
        Quote::Double => out.push_str(&format!("${{{name}}}")),
        Quote::Single => out.push_str(&format!("'\"${{{name}}}\"'")),
    }
}

/// Substitute `{name}` placeholders in shell text starting in quoting context `start`
/// (literal text is copied as is; for a double-quoted context it is escaped).  `sub` writes
/// a placeholder's value quoted for the context it lands in and returns false for an
/// unknown name, which is then kept literally.
pub fn expand_template(t: &str, start: Quote, sub: impl Fn(&str, Quote, &mut String) -> bool) -> String {
    let mut out = String::new();
    let mut q = start;
    let mut lit = String::new();
    let flush = |lit: &mut String, q: &mut Quote, out: &mut String| {
        if start == Quote::Double {
            quote_in(lit, Quote::Double, out);
        } else {
            out.push_str(lit);
            *q = scan_quotes(lit, *q);
        }
        lit.clear();
    };
    let mut it = t.char_indices().peekable();
    while let Some((i, c)) = it.next() {
        match c {
            '{' if t[i + 1..].starts_with('{') => {
                lit.push('{');
                it.next();
            }
            '}' if t[i + 1..].starts_with('}') => {
                lit.push('}');
                it.next();
            }
            '{' => match t[i + 1..].find('}') {
                Some(end) if t[i + 1..i + 1 + end].bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.') => {
                    let name = &t[i + 1..i + 1 + end];
                    flush(&mut lit, &mut q, &mut out);
                    let mut v = String::new();
                    if sub(name, q, &mut v) {
                        out.push_str(&v);
                    } else {
                        lit.push_str(&t[i..i + 2 + end]);
                    }
                    for _ in 0..=end {
                        it.next();
                    }
                }
                _ => lit.push('{'),
            },
            _ => lit.push(c),
        }
    }
    flush(&mut lit, &mut q, &mut out);
    out
}

/// A path under the job's scratch directory: `${BPSC_SCRATCH}/<rest>`, `rest` already safe.
fn scratch_path_in(rest: &str, q: Quote, out: &mut String) {
    var_in("BPSC_SCRATCH", q, out);
    out.push('/');
    out.push_str(rest);
}

/// `<dataset>/<encoded data id>`: the relative path of a dataset instance in scratch.
pub fn instance_rel(dataset: &str, vals: &[&Value]) -> String {
    let mut s = String::with_capacity(dataset.len() + 16);
    s.push_str(dataset);
    s.push('/');
    if vals.is_empty() {
        s.push('0');
    }
    for (i, v) in vals.iter().enumerate() {
        if i > 0 {
            s.push('_');
        }
        encode_value(v, &mut s);
    }
    s
}

fn value_text(v: &Value) -> String {
    match v {
        Value::Int(i) => i.to_string(),
        Value::Str(s) => s.to_string(),
    }
}

/// Fill a dataset URL template (`source`/`archive`) for one instance.
pub fn fill_url(t: &Template, dims: &[String], vals: &[&Value], campaign: &str, site: Option<&str>) -> String {
    let mut s = String::new();
    for p in &t.parts {
        match p {
            Part::Lit(l) => s.push_str(l),
            Part::Ph { name, .. } => match dims.iter().position(|d| d == name) {
                Some(i) => {
                    // Values inside URLs are percent-encoded where they could escape a path.
                    for b in value_text(vals[i]).bytes() {
                        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                            s.push(b as char);
                        } else {
                            s.push_str(&format!("%{b:02X}"));
                        }
                    }
                }
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

pub fn data_id_text(dims: &[String], vals: &[&Value]) -> String {
    dims.iter().zip(vals).map(|(d, v)| format!("{d}={}", value_text(v))).collect::<Vec<_>>().join(",")
}

/// The command of one quantum: the step's `run` with every placeholder substituted and
/// quoted for where it lands in the shell text.
pub fn command(ir: &Ir, r: QRef, job_id: &str) -> String {
    let st = &ir.steps[r.step as usize];
    let vals = ir.data_id(r);
    let mut out = String::with_capacity(st.run.text.len() + 32);
    let mut q = Quote::None;
    for p in &st.run.parts {
        match p {
            Part::Lit(l) => {
                out.push_str(l);
                q = scan_quotes(l, q);
            }
            Part::Ph { name, .. } => {
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
                    "campaign" => quote_in(&ir.campaign, q, &mut out),
                    "step" => quote_in(&st.name, q, &mut out),
                    "site" => quote_in(st.site.as_deref().unwrap_or("local"), q, &mut out),
                    "user" => var_in("USER", q, &mut out),
                    "attempt" => var_in("BPSC_ATTEMPT", q, &mut out),
                    "job" => quote_in(job_id, q, &mut out),
                    "data_id" => quote_in(&data_id_text(&st.dims, &vals), q, &mut out),
                    "outputs" => {
                        for (i, o) in st.outputs.iter().enumerate() {
                            if i > 0 {
                                out.push(' ');
                            }
                            scratch_path_in(&instance_rel(&o.dataset, &vals), q, &mut out);
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
                                    quote_in(&fill_url(src, &inp.dims, &iv, &ir.campaign, st.site.as_deref()), q, &mut out);
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

// ------------------------------------------------------------------ resources

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Resources {
    pub memory: u64,
    pub cpus: i64,
    pub disk: u64,
    pub walltime: u64,
    pub retries: i64,
    pub memory_growth: f64,
    pub retry_unless_exit: Vec<i64>,
    pub on_failure: String,
}

/// Resources of inserted (non-compute) jobs.
pub fn inserted_resources() -> Resources {
    Resources {
        memory: 1 << 30,
        cpus: 1,
        disk: 1 << 30,
        walltime: 3600,
        retries: 3,
        memory_growth: 1.0,
        retry_unless_exit: Vec::new(),
        on_failure: "continue".into(),
    }
}

/// Resources of a job.  A cluster takes the maximum memory, cpus and disk of its steps, the
/// sum of its quanta's walltimes, the maximum retries and memory growth, the union of the
/// exit-code filters, and `abort` if any step aborts.
pub fn resources(ir: &Ir, j: u32) -> Resources {
    let job = &ir.jobs[j as usize];
    if job.kind != JobKind::Compute {
        return inserted_resources();
    }
    let mut r: Option<Resources> = None;
    let mut walltime = 0u64;
    let mut last_step = u32::MAX;
    let mut step_res: Option<Resources> = None;
    for m in ir.job_members(j) {
        if m.step != last_step {
            let st = &ir.steps[m.step as usize].settings;
            step_res = Some(Resources {
                memory: st.size("memory").unwrap_or(2 << 30),
                cpus: st.int("cpus").unwrap_or(1),
                disk: st.size("disk").unwrap_or(10 << 30),
                walltime: st.size("walltime").unwrap_or(12 * 3600),
                retries: st.int("retries").unwrap_or(0),
                memory_growth: match st.get("memory_growth") {
                    Some(SVal::Float(f)) => *f,
                    _ => 1.0,
                },
                retry_unless_exit: match st.get("retry_unless_exit") {
                    Some(SVal::IntList(v)) => v.clone(),
                    _ => Vec::new(),
                },
                on_failure: st.get("on_failure").and_then(|v| v.as_str()).unwrap_or("continue").to_string(),
            });
            last_step = m.step;
        }
        let Some(s) = &step_res else { continue };
        walltime = walltime.saturating_add(s.walltime);
        r = Some(match r {
            None => s.clone(),
            Some(mut a) => {
                a.memory = a.memory.max(s.memory);
                a.cpus = a.cpus.max(s.cpus);
                a.disk = a.disk.max(s.disk);
                a.retries = a.retries.max(s.retries);
                a.memory_growth = a.memory_growth.max(s.memory_growth);
                for c in &s.retry_unless_exit {
                    if !a.retry_unless_exit.contains(c) {
                        a.retry_unless_exit.push(*c);
                    }
                }
                if s.on_failure == "abort" {
                    a.on_failure = "abort".into();
                }
                a
            }
        });
    }
    let mut r = r.unwrap_or_else(inserted_resources);
    r.walltime = walltime.max(1);
    r.retry_unless_exit.sort_unstable();
    r
}

// ------------------------------------------------------------------ job order

/// Jobs in a topological order (parents before children), ties by index: stable.
pub fn topo_jobs(ir: &Ir) -> Vec<u32> {
    let n = ir.jobs.len();
    let (off, to) = ir.children();
    let mut indeg = vec![0u32; n];
    for &(_, c) in &ir.edges {
        indeg[c as usize] += 1;
    }
    let mut heap: std::collections::BinaryHeap<std::cmp::Reverse<u32>> =
        (0..n as u32).filter(|&i| indeg[i as usize] == 0).map(std::cmp::Reverse).collect();
    let mut out = Vec::with_capacity(n);
    while let Some(std::cmp::Reverse(v)) = heap.pop() {
        out.push(v);
        for &w in &to[off[v as usize] as usize..off[v as usize + 1] as usize] {
            indeg[w as usize] -= 1;
            if indeg[w as usize] == 0 {
                heap.push(std::cmp::Reverse(w));
            }
        }
    }
    out
}

// ------------------------------------------------------------------ JSON Lines

fn jstr(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

fn jval(v: &Value) -> String {
    match v {
        Value::Int(i) => i.to_string(),
        Value::Str(s) => jstr(s),
    }
}

fn data_id_json(dims: &[String], vals: &[&Value]) -> String {
    let mut s = String::from("{");
    for (i, (d, v)) in dims.iter().zip(vals).enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&jstr(d));
        s.push(':');
        s.push_str(&jval(v));
    }
    s.push('}');
    s
}

/// The header: everything except the jobs.
pub fn header_json(ir: &Ir) -> serde_json::Value {
    let mut by_kind = serde_json::Map::new();
    for k in [JobKind::Compute, JobKind::StageIn, JobKind::StageOut, JobKind::Cleanup, JobKind::Join, JobKind::Provenance] {
        by_kind.insert(k.as_str().into(), ir.jobs.iter().filter(|j| j.kind == k).count().into());
    }
    let steps: Vec<serde_json::Value> = ir
        .steps
        .iter()
        .map(|s| {
            let settings: serde_json::Map<String, serde_json::Value> = s.settings.values.iter().map(|(k, r)| ((*k).to_string(), serde_json::to_value(&r.value).unwrap_or_default())).collect();
            let env: serde_json::Map<String, serde_json::Value> = s.settings.env.iter().map(|(k, r)| (k.clone(), serde_json::to_value(&r.value).unwrap_or_default())).collect();
            serde_json::json!({
                "name": s.name,
                "pipeline": s.pipeline,
                "dims": s.dims,
                "quanta": s.quanta.len(),
                "site": s.site,
                "shared_fs": s.shared_fs,
                "level": s.level,
                "cluster": s.cluster.map(|c| ir.clusters[c as usize].name.clone()),
                "settings": settings,
                "env": env,
                "run": s.run.text,
                "config": s.config_name,
                "config_values": s.config.iter().cloned().collect::<std::collections::BTreeMap<String, String>>(),
                "inputs": s.inputs.iter().map(|i| serde_json::json!({"dataset": i.dataset, "optional": i.optional, "produced": i.produced, "stage": i.stage, "dims": i.dims, "source": i.source.as_ref().map(|t| t.text.clone())})).collect::<Vec<_>>(),
                "outputs": s.outputs.iter().map(|o| serde_json::json!({"dataset": o.dataset, "persist": o.persist, "archive": o.archive.as_ref().map(|t| t.text.clone()), "verify": o.verify, "dims": o.dims})).collect::<Vec<_>>(),
            })
        })
        .collect();
    serde_json::json!({
        "bpsc_ir": IR_VERSION,
        "campaign": ir.campaign,
        "order": ir.order,
        "priority": ir.priority,
        "coverage_size": ir.coverage_size,
        "counts": {"jobs": ir.jobs.len(), "edges": ir.edges.len(), "quanta": ir.members.len(), "by_kind": by_kind},
        "sites": ir.sites.iter().map(|s| serde_json::json!({"name": s.name, "backend": s.backend, "shared_fs": s.shared_fs, "scratch": s.scratch, "max_array_size": s.max_array_size, "max_memory": s.max_memory})).collect::<Vec<_>>(),
        "steps": steps,
        "clusters": ir.clusters.iter().map(|c| serde_json::json!({"name": c.name, "steps": c.steps.iter().map(|&s| ir.steps[s as usize].name.clone()).collect::<Vec<_>>(), "by": c.by, "size": c.size})).collect::<Vec<_>>(),
        "notify": {"on": ir.notify.on, "slow_after": ir.notify.slow_after, "command": ir.notify.command},
    })
}

/// The memory cap of a job's site (`max_memory`, bytes): retries with memory growth never
/// ask for more than this.
pub fn memory_cap(ir: &Ir, j: u32) -> Option<u64> {
    let site = job_site(ir, j)?;
    ir.sites.iter().find(|s| s.name == site).and_then(|s| s.max_memory)
}

/// Site of a job: the site of its first member's step, or of the job it serves.
pub fn job_site(ir: &Ir, j: u32) -> Option<&str> {
    let job = &ir.jobs[j as usize];
    match job.kind {
        JobKind::Compute => ir.steps[ir.members[job.lo as usize].step as usize].site.as_deref(),
        JobKind::StageOut | JobKind::Cleanup => job_site(ir, job.owner),
        _ => None,
    }
}

/// Job lines of the IR format, one at a time, with ids and parents computed once.
pub struct JobLines<'a> {
    ir: &'a Ir,
    ids: Vec<String>,
    poff: Vec<u32>,
    pin: Vec<u32>,
    line: String,
}

impl<'a> JobLines<'a> {
    pub fn new(ir: &'a Ir) -> JobLines<'a> {
        let ids: Vec<String> = (0..ir.jobs.len() as u32).map(|j| ir.job_id(j)).collect();
        let (poff, pin) = ir.parents();
        JobLines { ir, ids, poff, pin, line: String::with_capacity(512) }
    }

    pub fn id(&self, j: u32) -> &str {
        &self.ids[j as usize]
    }

    pub fn ids(&self) -> &[String] {
        &self.ids
    }

    /// The JSON line of job `j`, newline included.
    pub fn line(&mut self, j: u32) -> &str {
        let ir = self.ir;
        let ids = &self.ids;
        let (poff, pin) = (&self.poff, &self.pin);
        let line = &mut self.line;
        line.clear();
        let job = &ir.jobs[j as usize];
        let id = &ids[j as usize];
        line.push_str(&format!("{{\"id\":{},\"kind\":\"{}\",\"priority\":{}", jstr(id), job.kind.as_str(), job.priority));
        line.push_str(",\"parents\":[");
        for (k, &p) in pin[poff[j as usize] as usize..poff[j as usize + 1] as usize].iter().enumerate() {
            if k > 0 {
                line.push(',');
            }
            line.push_str(&jstr(&ids[p as usize]));
        }
        line.push(']');
        if let Some(site) = job_site(ir, j) {
            line.push_str(&format!(",\"site\":{}", jstr(site)));
        }
        match job.kind {
            JobKind::Compute => {
                if job.owner != u32::MAX {
                    line.push_str(&format!(",\"cluster\":{}", jstr(&ir.clusters[job.owner as usize].name)));
                }
                let r = resources(ir, j);
                line.push_str(&format!(",\"resources\":{}", serde_json::to_string(&r).unwrap_or_default()));
                line.push_str(",\"quanta\":[");
                for (k, m) in ir.job_members(j).iter().enumerate() {
                    if k > 0 {
                        line.push(',');
                    }
                    let st = &ir.steps[m.step as usize];
                    let vals = ir.data_id(*m);
                    line.push_str(&format!(
                        "{{\"step\":{},\"data_id\":{},\"command\":{},\"outputs\":[",
                        jstr(&st.name),
                        data_id_json(&st.dims, &vals),
                        jstr(&command(ir, *m, id))
                    ));
                    for (k, o) in st.outputs.iter().enumerate() {
                        if k > 0 {
                            line.push(',');
                        }
                        line.push_str(&format!(
                            "{{\"dataset\":{},\"path\":{},\"verify\":{}}}",
                            jstr(&o.dataset),
                            jstr(&format!("${{BPSC_SCRATCH}}/{}", instance_rel(&o.dataset, &vals))),
                            o.verify
                        ));
                    }
                    line.push_str("],\"fetch\":[");
                    let mut first = true;
                    for inp in st.inputs.iter().filter(|i| !i.produced && i.stage == Stage::InJob) {
                        let (Some(src), Some(pos)) =
                            (&inp.source, inp.dims.iter().map(|d| st.dims.iter().position(|x| x == d)).collect::<Option<Vec<usize>>>())
                        else {
                            continue;
                        };
                        let iv: Vec<&Value> = pos.iter().map(|&k| vals[k]).collect();
                        if !first {
                            line.push(',');
                        }
                        first = false;
                        line.push_str(&format!(
                            "{{\"dataset\":{},\"from\":{},\"to\":{},\"optional\":{}}}",
                            jstr(&inp.dataset),
                            jstr(&fill_url(src, &inp.dims, &iv, &ir.campaign, st.site.as_deref())),
                            jstr(&format!("${{BPSC_SCRATCH}}/{}", instance_rel(&inp.dataset, &iv))),
                            inp.optional
                        ));
                    }
                    line.push_str("]}");
                }
                line.push(']');
            }
            JobKind::StageIn => {
                line.push_str(",\"transfers\":[");
                for (k, s) in ir.staged[job.lo as usize..job.hi as usize].iter().enumerate() {
                    if k > 0 {
                        line.push(',');
                    }
                    let set = &ir.stage_sets[s.dataset as usize];
                    let dims: Vec<String> = set.instances.dim_names(&ir.dicts).iter().map(|s| s.to_string()).collect();
                    let vals = set.instances.row(s.row as usize, &ir.dicts);
                    line.push_str(&format!(
                        "{{\"dataset\":{},\"data_id\":{},\"from\":{},\"to\":{}}}",
                        jstr(&set.dataset),
                        data_id_json(&dims, &vals),
                        jstr(&fill_url(&set.source, &dims, &vals, &ir.campaign, None)),
                        jstr(&format!("${{BPSC_SCRATCH}}/{}", instance_rel(&set.dataset, &vals)))
                    ));
                }
                line.push(']');
            }
            JobKind::StageOut | JobKind::Cleanup => {
                let key = if job.kind == JobKind::StageOut { "transfers" } else { "remove" };
                line.push_str(&format!(",\"of\":{},\"{key}\":[", jstr(&ids[job.owner as usize])));
                let mut first = true;
                for m in ir.job_members(job.owner) {
                    let st = &ir.steps[m.step as usize];
                    let vals = ir.data_id(*m);
                    for o in &st.outputs {
                        let wanted =
                            if job.kind == JobKind::StageOut { o.persist == Persist::Archive } else { o.persist == Persist::Discard };
                        if !wanted {
                            continue;
                        }
                        if !first {
                            line.push(',');
                        }
                        first = false;
                        let from = format!("${{BPSC_SCRATCH}}/{}", instance_rel(&o.dataset, &vals));
                        if job.kind == JobKind::StageOut {
                            let to = o
                                .archive
                                .as_ref()
                                .map(|t| fill_url(t, &st.dims, &vals, &ir.campaign, st.site.as_deref()))
                                .unwrap_or_default();
                            line.push_str(&format!(
                                "{{\"dataset\":{},\"from\":{},\"to\":{},\"checksum\":\"sha256\"}}",
                                jstr(&o.dataset),
                                jstr(&from),
                                jstr(&to)
                            ));
                        } else {
                            line.push_str(&jstr(&from));
                        }
                    }
                }
                line.push(']');
            }
            JobKind::Provenance => line.push_str(",\"final\":true"),
            JobKind::Join => {}
        }
        line.push_str("}\n");
        line
    }
}

/// Write the IR as JSON Lines: the header, then one job per line in topological order.
pub fn write_ir_jsonl(ir: &Ir, out: &mut dyn Write) -> io::Result<()> {
    let header = header_json(ir);
    writeln!(out, "{}", serde_json::to_string(&header).unwrap_or_default())?;
    let mut lines = JobLines::new(ir);
    for j in topo_jobs(ir) {
        out.write_all(lines.line(j).as_bytes())?;
    }
    Ok(())
}

// ------------------------------------------------------------------ graphs

fn dot_id(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Step graph (step level) with job counts, or the job graph (job level), as DOT or Mermaid.
pub fn write_graph(ir: &Ir, mermaid: bool, job_level: bool, out: &mut dyn Write) -> io::Result<()> {
    if job_level {
        let ids: Vec<String> = (0..ir.jobs.len() as u32).map(|j| ir.job_id(j)).collect();
        if mermaid {
            writeln!(out, "flowchart TD")?;
            for (j, id) in ids.iter().enumerate() {
                writeln!(out, "  n{j}[\"{}\"]", id.replace('"', "'"))?;
            }
            for &(p, c) in &ir.edges {
                writeln!(out, "  n{p} --> n{c}")?;
            }
        } else {
            writeln!(out, "digraph jobs {{\n  rankdir=TB;\n  node [shape=box, fontsize=10];")?;
            for (j, id) in ids.iter().enumerate() {
                let shape = match ir.jobs[j].kind {
                    JobKind::Compute => "box",
                    JobKind::Join => "point",
                    JobKind::Provenance => "doubleoctagon",
                    _ => "ellipse",
                };
                writeln!(out, "  {} [shape={shape}];", dot_id(id))?;
            }
            for &(p, c) in &ir.edges {
                writeln!(out, "  {} -> {};", dot_id(&ids[p as usize]), dot_id(&ids[c as usize]))?;
            }
            writeln!(out, "}}")?;
        }
        return Ok(());
    }
    // Step level: the step dependencies, clusters drawn as boxes around their steps.
    let n = ir.steps.len();
    let jobs_of_step = |s: usize| {
        let mut v = ir.steps[s].job_of.clone();
        v.sort_unstable();
        v.dedup();
        v.len()
    };
    let label = |s: usize| {
        let st = &ir.steps[s];
        let jobs = if st.cluster.is_some() { String::new() } else { format!(", {} jobs", jobs_of_step(s)) };
        format!("{}\\n({}) {} quanta{jobs}", st.name, st.dims.join(", "), st.quanta.len())
    };
    let edge_label = |k: &str| -> String {
        match k {
            "all" => "all".into(),
            "after" => String::new(),
            other => other.strip_prefix("data:").unwrap_or(other).to_string(),
        }
    };
    if mermaid {
        writeln!(out, "flowchart TD")?;
        for (ci, c) in ir.clusters.iter().enumerate() {
            let jobs = ir.jobs.iter().filter(|j| j.kind == JobKind::Compute && j.owner == ci as u32).count();
            writeln!(out, "  subgraph c{ci}[\"cluster {} ({} jobs)\"]", c.name, jobs)?;
            for &s in &c.steps {
                writeln!(out, "    s{s}[\"{}\"]", label(s as usize).replace("\\n", "<br/>"))?;
            }
            writeln!(out, "  end")?;
        }
        for s in (0..n).filter(|&s| ir.steps[s].cluster.is_none()) {
            writeln!(out, "  s{s}[\"{}\"]", label(s).replace("\\n", "<br/>"))?;
        }
        for (a, b, k) in &ir.step_edges {
            let l = edge_label(k);
            let arrow = if k == "all" { "-.->" } else { "-->" };
            if l.is_empty() {
                writeln!(out, "  s{a} {arrow} s{b}")?;
            } else {
                writeln!(out, "  s{a} {arrow}|{l}| s{b}")?;
            }
        }
    } else {
        writeln!(out, "digraph steps {{\n  rankdir=TB;\n  node [shape=box, style=rounded, fontsize=11];\n  edge [fontsize=9];")?;
        writeln!(
            out,
            "  label={};\n  labelloc=t;",
            dot_id(&format!(
                "campaign {}: {} data IDs, {} jobs ({} compute), {} edges",
                ir.campaign,
                ir.coverage_size,
                ir.jobs.len(),
                ir.compute_jobs(),
                ir.edges.len()
            ))
        )?;
        for (ci, c) in ir.clusters.iter().enumerate() {
            let jobs = ir.jobs.iter().filter(|j| j.kind == JobKind::Compute && j.owner == ci as u32).count();
            writeln!(
                out,
                "  subgraph cluster_{ci} {{\n    label={};\n    style=dashed;",
                dot_id(&format!("cluster {}: {} jobs", c.name, jobs))
            )?;
            for &s in &c.steps {
                writeln!(out, "    s{s} [label=\"{}\"];", label(s as usize).replace('"', "'"))?;
            }
            writeln!(out, "  }}")?;
        }
        for s in (0..n).filter(|&s| ir.steps[s].cluster.is_none()) {
            writeln!(out, "  s{s} [label=\"{}\"];", label(s).replace('"', "'"))?;
        }
        for (a, b, k) in &ir.step_edges {
            let l = edge_label(k);
            let style = if k == "all" { ", style=dashed" } else { "" };
            writeln!(out, "  s{a} -> s{b} [label={}{style}];", dot_id(&l))?;
        }
        writeln!(out, "}}")?;
    }
    Ok(())
}
