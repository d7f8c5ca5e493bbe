//! The IR as versioned JSON Lines: the header (everything but the jobs), then one line per
//! job in a topological order.  `bpsc compile --emit ir` writes it, and the task tables the
//! job wrapper reads are made of the same job lines (see backends/ir/README.md).

use std::io::{self, Write};

use super::adjacency::topo_jobs;
use super::render::{command, command_into, fill_url, push_fill_url, push_scratch_path, scratch_path, Quantum};
use super::{Ir, JobKind, Persist, Resources, Stage, StepSpec, IR_VERSION, NO_CLUSTER};
use crate::coverage::Value;

/// Append `s` as a JSON string, escaped exactly as `serde_json` escapes it (`"`, `\\`, the
/// short escapes `\b \t \n \f \r`, other control characters as `\u00xx`, everything else
/// as it is), without allocating: the writer of a million job lines calls this ~20 times a
/// line.  serde_json's own escaper is private; `a_job_line_string_is_escaped_as_serde_json_does`
/// compares the two on every character class.
pub fn push_jstr(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(s.len() + 2);
    out.push('"');
    let b = s.as_bytes();
    let mut start = 0;
    loop {
        let e = first_escape(b, start);
        // Only ASCII bytes are escaped, so `e` is a character boundary.
        out.push_str(&s[start..e]);
        let Some(&c) = b.get(e) else { break };
        match c {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x08 => out.push_str("\\b"),
            b'\t' => out.push_str("\\t"),
            b'\n' => out.push_str("\\n"),
            0x0c => out.push_str("\\f"),
            b'\r' => out.push_str("\\r"),
            _ => {
                out.push_str("\\u00");
                out.push(HEX[(c >> 4) as usize] as char);
                out.push(HEX[(c & 15) as usize] as char);
            }
        }
        start = e + 1;
    }
    out.push('"');
}

/// The index of the first byte of `b` at or after `i` that JSON escapes, or `b.len()`:
/// eight bytes at a time, read in place (a last, shorter piece padded with `A`).
#[inline]
fn first_escape(b: &[u8], mut i: usize) -> usize {
    let needs = |c: u8| c < 0x20 || c == b'"' || c == b'\\';
    let find = |i: usize, n: usize| b[i..i + n].iter().position(|&c| needs(c)).map(|k| i + k);
    while let Some(word) = b.get(i..i + 8).and_then(|w| <[u8; 8]>::try_from(w).ok()) {
        if word_needs_escape(u64::from_le_bytes(word)) {
            if let Some(at) = find(i, 8) {
                return at;
            }
        }
        i += 8;
    }
    let n = b.len().saturating_sub(i);
    if n > 0 {
        let mut a = [b'A'; 8];
        a[..n].copy_from_slice(&b[i..]);
        if word_needs_escape(u64::from_le_bytes(a)) {
            if let Some(at) = find(i, n) {
                return at;
            }
        }
    }
    b.len()
}

/// Does any of the eight bytes of `w` need escaping in JSON (below 0x20, `"` or `\\`)?
/// The classic bit tricks: `(x - 0x01..) & !x & 0x80..` is non-zero exactly when some byte
/// of `x` is zero, and `(x - n*0x01..) & !x & 0x80..` when some byte is below `n` (n <= 128).
#[inline]
fn word_needs_escape(w: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero_byte = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let control = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
    (control | zero_byte(w ^ (ONES * b'"' as u64)) | zero_byte(w ^ (ONES * b'\\' as u64))) != 0
}

fn push_jval(out: &mut String, v: &Value) {
    match v {
        Value::Int(i) => out.push_str(itoa::Buffer::new().format(*i)),
        Value::Str(s) => push_jstr(out, s),
    }
}

/// Append a data ID as a JSON object (`{"visit":1,"band":"r"}`).
pub fn push_data_id_json(out: &mut String, dims: &[String], vals: &[&Value]) {
    out.push('{');
    for (i, (d, v)) in dims.iter().zip(vals).enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_jstr(out, d);
        out.push(':');
        push_jval(out, v);
    }
    out.push('}');
}

pub fn data_id_json(dims: &[String], vals: &[&Value]) -> String {
    let mut s = String::new();
    push_data_id_json(&mut s, dims, vals);
    s
}

/// The header: everything except the jobs.
pub fn header_json(ir: &Ir) -> serde_json::Value {
    let mut by_kind = serde_json::Map::new();
    for k in JobKind::ALL {
        by_kind.insert(k.as_str().into(), ir.jobs.iter().filter(|j| j.kind == k).count().into());
    }
    let steps: Vec<serde_json::Value> = ir
        .steps
        .iter()
        .map(|s| {
            let settings = s.settings.to_json();
            let env: serde_json::Map<String, serde_json::Value> =
                s.settings.env.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect();
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
        "order": ir.order(),
        "priority": ir.priority(),
        "coverage_size": ir.coverage_size,
        "counts": {"jobs": ir.jobs.len(), "edges": ir.edges.len(), "quanta": ir.members.len(), "by_kind": by_kind},
        "sites": ir.sites.iter().map(|s| serde_json::json!({"name": s.name, "backend": s.backend, "shared_fs": s.shared_fs, "scratch": s.scratch, "max_array_size": s.max_array_size, "max_memory": s.max_memory, "max_submit": s.max_submit, "controller": s.controller})).collect::<Vec<_>>(),
        "steps": steps,
        "clusters": ir.clusters.iter().map(|c| serde_json::json!({"name": c.name, "steps": c.steps.iter().map(|&s| ir.steps[s as usize].name.clone()).collect::<Vec<_>>(), "by": c.by, "size": c.size})).collect::<Vec<_>>(),
        "notify": {"on": ir.notify.on, "slow_after": ir.notify.slow_after, "command": ir.notify.command},
        "resources": ir.job_settings.iter().map(|s| serde_json::to_value(&s.resources).unwrap_or_default()).collect::<Vec<_>>(),
    })
}

/// Everything one job line says, by reference: filled from the IR by [`JobLines`] at compile
/// time, and from the submit directory's compact tables by the job wrapper at run time
/// (`crate::submitdir::tasks`), so both write the same line with the same code.
pub struct JobView<'a> {
    pub id: &'a str,
    pub kind: JobKind,
    pub priority: i32,
    /// `None`: not known (the compact tables keep parents only where an engine needs them).
    pub parents: Option<Vec<&'a str>>,
    pub site: Option<&'a str>,
    pub cluster: Option<&'a str>,
    pub resources: Option<&'a Resources>,
    /// Compute: the quanta, in dependency order.  Stage-out and cleanup: the quanta of the
    /// job they serve.
    pub quanta: Vec<Quantum<'a>>,
    /// Stage-in: the dataset instances (set, values over the set's dimensions).
    pub staged: Vec<(&'a StageSetSpec, Vec<&'a Value>)>,
    /// Stage-out and cleanup: the id of the job they serve.
    pub of: Option<&'a str>,
    /// Provenance: the user's final job it runs after gathering the records.
    pub final_job: Option<&'a super::FinalJob>,
}

/// `configs/PIPELINE.CONFIG.json`: where the submit directory keeps a pipeline's resolved
/// config (the provenance record of every quantum names it).
pub fn config_path(st: &StepSpec) -> Option<String> {
    let c = st.config_name.as_deref()?;
    Some(format!("configs/{}.{}.json", super::naming::sanitize(&st.pipeline), super::naming::sanitize(c)))
}

/// What stage-in needs of a stage set: the dataset, its URL template and dimensions.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct StageSetSpec {
    pub dataset: String,
    pub source: super::Template,
    pub dims: Vec<String>,
}

impl StageSetSpec {
    pub fn of(s: &super::StageSet) -> StageSetSpec {
        StageSetSpec { dataset: s.dataset.clone(), source: s.source.clone(), dims: s.dims.clone() }
    }
}

/// Append the JSON line of `v` (newline included) to `line`.
pub fn write_job_line(campaign: &str, v: &JobView, line: &mut String) {
    write_job_line_with(campaign, v, line, &mut String::new(), &mut |r, l| l.push_str(&serde_json::to_string(r).unwrap_or_default()));
}

/// [`write_job_line`], with a compute job's `resources` written by `resources` (the IR file's
/// writer passes one that writes the index of the job's settings shape; the task tables' one
/// that reuses the text of the shape's object it has already written).
fn write_job_line_with(
    campaign: &str,
    v: &JobView,
    line: &mut String,
    scratch: &mut String,
    resources: &mut dyn FnMut(&Resources, &mut String),
) {
    // `scratch` holds one rendered value at a time (a command, a path, a URL) before it is
    // escaped into the line: one buffer for the whole writer instead of a String per value.
    let put = |line: &mut String, scratch: &mut String, fill: &mut dyn FnMut(&mut String)| {
        scratch.clear();
        fill(scratch);
        push_jstr(line, scratch);
    };
    line.push_str("{\"id\":");
    push_jstr(line, v.id);
    line.push_str(",\"kind\":\"");
    line.push_str(v.kind.as_str());
    line.push_str("\",\"priority\":");
    line.push_str(itoa::Buffer::new().format(v.priority));
    if let Some(parents) = &v.parents {
        line.push_str(",\"parents\":[");
        for (k, p) in parents.iter().enumerate() {
            if k > 0 {
                line.push(',');
            }
            push_jstr(line, p);
        }
        line.push(']');
    }
    if let Some(site) = v.site {
        line.push_str(",\"site\":");
        push_jstr(line, site);
    }
    match v.kind {
        JobKind::Compute => {
            if let Some(c) = v.cluster {
                line.push_str(",\"cluster\":");
                push_jstr(line, c);
            }
            if let Some(r) = v.resources {
                line.push_str(",\"resources\":");
                resources(r, line);
            }
            line.push_str(",\"quanta\":[");
            for (k, qn) in v.quanta.iter().enumerate() {
                let (st, vals) = (qn.spec, &qn.vals);
                if k > 0 {
                    line.push(',');
                }
                line.push_str("{\"step\":");
                push_jstr(line, &st.name);
                line.push_str(",\"data_id\":");
                push_data_id_json(line, &st.dims, vals);
                line.push_str(",\"command\":");
                put(line, scratch, &mut |b| command_into(qn, campaign, v.id, b));
                line.push(',');
                if let Some(c) = config_path(st) {
                    line.push_str("\"config\":");
                    push_jstr(line, &c);
                    line.push(',');
                }
                line.push_str("\"inputs\":[");
                let mut first = true;
                for (k, inp) in st.inputs.iter().enumerate() {
                    qn.for_each_instance(k, |dims, iv| {
                        if !first {
                            line.push(',');
                        }
                        first = false;
                        line.push_str("{\"dataset\":");
                        push_jstr(line, &inp.dataset);
                        line.push_str(",\"path\":");
                        put(line, scratch, &mut |b| qn.push_input_text(k, dims, iv, campaign, b));
                        line.push_str(if inp.optional { ",\"optional\":true}" } else { ",\"optional\":false}" });
                    });
                }
                line.push_str("],\"outputs\":[");
                for (k, o) in st.outputs.iter().enumerate() {
                    if k > 0 {
                        line.push(',');
                    }
                    line.push_str("{\"dataset\":");
                    push_jstr(line, &o.dataset);
                    line.push_str(",\"path\":");
                    put(line, scratch, &mut |b| push_scratch_path(&o.dataset, vals, b));
                    line.push_str(if o.verify { ",\"verify\":true}" } else { ",\"verify\":false}" });
                }
                line.push_str("],\"fetch\":[");
                let mut first = true;
                for (k, inp) in st.inputs.iter().enumerate() {
                    let Some(src) = inp.source.as_ref().filter(|_| !inp.produced && inp.stage == Stage::InJob) else {
                        continue;
                    };
                    qn.for_each_instance(k, |dims, iv| {
                        if !first {
                            line.push(',');
                        }
                        first = false;
                        line.push_str("{\"dataset\":");
                        push_jstr(line, &inp.dataset);
                        line.push_str(",\"from\":");
                        put(line, scratch, &mut |b| push_fill_url(src, dims, iv, campaign, st.site.as_deref(), b));
                        line.push_str(",\"to\":");
                        put(line, scratch, &mut |b| push_scratch_path(&inp.dataset, iv, b));
                        line.push_str(if inp.optional { ",\"optional\":true}" } else { ",\"optional\":false}" });
                    });
                }
                line.push_str("]}");
            }
            line.push(']');
        }
        JobKind::StageIn => {
            line.push_str(",\"transfers\":[");
            for (k, (set, vals)) in v.staged.iter().enumerate() {
                if k > 0 {
                    line.push(',');
                }
                line.push_str("{\"dataset\":");
                push_jstr(line, &set.dataset);
                line.push_str(",\"data_id\":");
                push_data_id_json(line, &set.dims, vals);
                line.push_str(",\"from\":");
                put(line, scratch, &mut |b| push_fill_url(&set.source, &set.dims, vals, campaign, None, b));
                line.push_str(",\"to\":");
                put(line, scratch, &mut |b| push_scratch_path(&set.dataset, vals, b));
                line.push('}');
            }
            line.push(']');
        }
        JobKind::StageOut | JobKind::Cleanup => {
            line.push_str(",\"of\":");
            push_jstr(line, v.of.unwrap_or(""));
            line.push_str(if v.kind == JobKind::StageOut { ",\"transfers\":[" } else { ",\"remove\":[" });
            let mut first = true;
            for qn in &v.quanta {
                let (st, vals) = (qn.spec, &qn.vals);
                for o in &st.outputs {
                    let wanted = if v.kind == JobKind::StageOut { o.persist == Persist::Archive } else { o.persist == Persist::Discard };
                    if !wanted {
                        continue;
                    }
                    if !first {
                        line.push(',');
                    }
                    first = false;
                    let from = scratch_path(&o.dataset, vals);
                    if v.kind == JobKind::StageOut {
                        let to = o.archive.as_ref().map(|t| fill_url(t, &st.dims, vals, campaign, st.site.as_deref())).unwrap_or_default();
                        line.push_str("{\"dataset\":");
                        push_jstr(line, &o.dataset);
                        line.push_str(",\"from\":");
                        push_jstr(line, &from);
                        line.push_str(",\"to\":");
                        push_jstr(line, &to);
                        line.push_str(",\"checksum\":\"sha256\"}");
                    } else {
                        push_jstr(line, &from);
                    }
                }
            }
            line.push(']');
        }
        JobKind::Provenance => {
            line.push_str(",\"final\":true");
            if let Some(f) = v.final_job {
                line.push_str(",\"final_job\":{\"name\":");
                push_jstr(line, &f.spec.name);
                line.push_str(",\"when\":\"");
                line.push_str(f.when.as_str());
                line.push_str("\",\"command\":");
                push_jstr(line, &command(&Quantum::new(&f.spec, Vec::new()), campaign, "final"));
                line.push('}');
            }
        }
        JobKind::Join => {}
    }
    line.push_str("}\n");
}

/// Every job's id, in one buffer (a million ids in one allocation instead of a million).
struct JobIds {
    text: String,
    /// Where each id ends in `text`; it starts where the one before it ends.
    end: Vec<usize>,
}

impl JobIds {
    /// The ids of the jobs in `range`.
    fn of(ir: &Ir, range: std::ops::Range<u32>) -> JobIds {
        let mut ids = JobIds { text: String::with_capacity(range.len() * 24), end: Vec::with_capacity(range.len()) };
        for j in range {
            super::naming::push_job_id(ir, j, &mut ids.text);
            ids.end.push(ids.text.len());
        }
        ids
    }

    /// Add the ids of the jobs after these.
    fn append(&mut self, more: JobIds) {
        let base = self.text.len();
        self.text.push_str(&more.text);
        self.end.extend(more.end.iter().map(|e| e + base));
    }

    /// The id of job `j`.
    fn get(&self, j: u32) -> &str {
        let j = j as usize;
        let start = if j == 0 { 0 } else { self.end[j - 1] };
        &self.text[start..self.end[j]]
    }
}

/// What every job line needs of the whole IR, computed once and shared by the threads
/// that write lines: job ids, parents (CSR) and stage sets.
pub struct JobIndex<'a> {
    ir: &'a Ir,
    ids: JobIds,
    poff: Vec<u32>,
    pin: Vec<u32>,
    stage_sets: Vec<StageSetSpec>,
}

impl<'a> JobIndex<'a> {
    pub fn new(ir: &'a Ir) -> JobIndex<'a> {
        JobIndex::with_ids(ir, JobIds::of(ir, 0..ir.jobs.len() as u32))
    }

    /// The index, with the ids computed by the caller (all of them, or a first part that
    /// the caller completes before any line is written).
    fn with_ids(ir: &'a Ir, ids: JobIds) -> JobIndex<'a> {
        let (poff, pin) = ir.parents();
        let stage_sets = ir.stage_sets.iter().map(StageSetSpec::of).collect();
        JobIndex { ir, ids, poff, pin, stage_sets }
    }

    /// Append the JSON line of job `j` (newline included) to `line`; `resources` writes a
    /// compute job's resources object.
    fn push_line(&self, j: u32, line: &mut String, scratch: &mut String, resources: &mut dyn FnMut(&Resources, &mut String)) {
        let ir = self.ir;
        let job = &ir.jobs[j as usize];
        let js = ir.settings_of(j);
        let ids = &self.ids;
        let parents: Vec<&str> =
            self.pin[self.poff[j as usize] as usize..self.poff[j as usize + 1] as usize].iter().map(|&p| ids.get(p)).collect();
        let quanta_of = |owner: u32| -> Vec<Quantum> { ir.job_members(owner).iter().map(|m| ir.quantum(*m)).collect() };
        let view = JobView {
            id: ids.get(j),
            kind: job.kind,
            priority: job.priority,
            parents: Some(parents),
            site: match job.kind {
                JobKind::Compute | JobKind::StageOut | JobKind::Cleanup => js.site.as_deref(),
                _ => None,
            },
            cluster: (job.kind == JobKind::Compute && job.owner != NO_CLUSTER).then(|| ir.clusters[job.owner as usize].name.as_str()),
            resources: (job.kind == JobKind::Compute).then_some(&js.resources),
            quanta: match job.kind {
                JobKind::Compute => quanta_of(j),
                JobKind::StageOut | JobKind::Cleanup => {
                    ir.job_members(job.owner).iter().map(|m| Quantum::new(&ir.steps[m.step as usize].spec, ir.data_id(*m))).collect()
                }
                _ => Vec::new(),
            },
            staged: match job.kind {
                JobKind::StageIn => ir.staged[job.lo as usize..job.hi as usize]
                    .iter()
                    .map(|s| {
                        let set = &ir.stage_sets[s.dataset as usize];
                        (&self.stage_sets[s.dataset as usize], set.instances.row(s.row as usize, &ir.dicts))
                    })
                    .collect(),
                _ => Vec::new(),
            },
            of: matches!(job.kind, JobKind::StageOut | JobKind::Cleanup).then(|| ids.get(job.owner)),
            final_job: if job.kind == JobKind::Provenance { ir.final_job.as_ref() } else { None },
        };
        write_job_line_with(&ir.campaign, &view, line, scratch, resources);
    }
}

/// What one thread keeps between the job lines it writes: how a compute job's `resources`
/// are written, and the scratch buffer values are rendered into.
struct LineCache<'a> {
    ir: &'a Ir,
    /// `None`: as the index of the job's settings shape (the IR file, whose header lists each
    /// shape's resources object once).  `Some`: as the object itself, each shape's serialized
    /// once (a campaign has a handful of shapes; a million jobs share them): the lines of the
    /// task tables, which the job wrapper and `bpsc show` read one at a time.
    by_shape: Option<Vec<Option<String>>>,
    scratch: String,
}

impl<'a> LineCache<'a> {
    /// Lines for the IR file: resources by index.
    fn indexed(ir: &'a Ir) -> LineCache<'a> {
        LineCache { ir, by_shape: None, scratch: String::with_capacity(256) }
    }

    /// Self-contained lines: resources in full.
    fn inline(ir: &'a Ir) -> LineCache<'a> {
        LineCache { ir, by_shape: Some(vec![None; ir.job_settings.len()]), scratch: String::with_capacity(256) }
    }

    fn push_line(&mut self, idx: &JobIndex, j: u32, line: &mut String) {
        let shape = self.ir.jobs[j as usize].settings as usize;
        match &mut self.by_shape {
            None => idx.push_line(j, line, &mut self.scratch, &mut |_, l| l.push_str(itoa::Buffer::new().format(shape))),
            Some(cache) => idx.push_line(j, line, &mut self.scratch, &mut |r, l| match cache.get_mut(shape) {
                Some(slot) => l.push_str(slot.get_or_insert_with(|| serde_json::to_string(r).unwrap_or_default())),
                None => l.push_str(&serde_json::to_string(r).unwrap_or_default()),
            }),
        }
    }
}

/// Self-contained job lines (resources in full, as the task tables keep them for the job
/// wrapper), one at a time, with ids and parents computed once.
pub struct JobLines<'a> {
    idx: JobIndex<'a>,
    res: LineCache<'a>,
    line: String,
}

impl<'a> JobLines<'a> {
    pub fn new(ir: &'a Ir) -> JobLines<'a> {
        JobLines { idx: JobIndex::new(ir), res: LineCache::inline(ir), line: String::with_capacity(512) }
    }

    pub fn id(&self, j: u32) -> &str {
        self.idx.ids.get(j)
    }

    /// The JSON line of job `j`, newline included.
    pub fn line(&mut self, j: u32) -> &str {
        self.line.clear();
        self.res.push_line(&self.idx, j, &mut self.line);
        &self.line
    }
}

/// Jobs per chunk of the parallel IR writer: large enough that handing a chunk over costs
/// nothing beside formatting it, small enough that the chunks in flight stay a few MB.
const CHUNK: usize = 1024;

/// Write the IR as JSON Lines: the header, then one job per line in topological order.
///
/// The job lines are formatted on as many threads as the machine has cores (at most 4), in
/// chunks of [`CHUNK`] jobs, each taken by the first worker free; this thread writes the
/// chunks in their order, so the file is byte for byte the one a single thread writes
/// (`the_parallel_ir_writer_writes_what_one_thread_writes`).
pub fn write_ir_jsonl(ir: &Ir, out: &mut dyn Write) -> io::Result<()> {
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).min(4);
    write_ir_jsonl_on(ir, out, threads, CHUNK)
}

/// [`write_ir_jsonl`] with the number of formatting threads (1: this thread only) and the
/// jobs per chunk given.
pub fn write_ir_jsonl_on(ir: &Ir, out: &mut dyn Write, threads: usize, chunk: usize) -> io::Result<()> {
    let mut header = serde_json::to_string(&header_json(ir)).unwrap_or_default();
    header.push('\n');
    out.write_all(header.as_bytes())?;
    // The topological order, and the ids of the jobs in two halves, on three threads.
    let n = ir.jobs.len() as u32;
    let half = if threads > 1 { n / 2 } else { n };
    let (order, upper, mut idx) = std::thread::scope(|s| {
        let order = s.spawn(|| topo_jobs(ir));
        let upper = s.spawn(move || JobIds::of(ir, half..n));
        let idx = JobIndex::with_ids(ir, JobIds::of(ir, 0..half));
        let order = order.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        let upper = upper.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (order, upper, idx)
    });
    idx.ids.append(upper);
    let chunks: Vec<&[u32]> = order.chunks(chunk.max(1)).collect();
    if threads <= 1 || chunks.len() < 2 {
        let mut res = LineCache::indexed(ir);
        let mut line = String::with_capacity(chunk.min(CHUNK) * 1024);
        for part in &chunks {
            line.clear();
            for &j in *part {
                res.push_line(&idx, j, &mut line);
            }
            out.write_all(line.as_bytes())?;
        }
        return Ok(());
    }
    let threads = threads.min(chunks.len());
    // Room for a chunk of long lines (the 1M-job benchmark averages 349 bytes a line).
    let cap = chunk.min(CHUNK) * 1024;
    // A worker takes an empty buffer, then the next chunk nobody has taken (so a worker
    // with light chunks does not wait behind one with heavy ones), formats it and hands it
    // over; this thread writes the chunks in their order and gives the buffers back. The
    // buffers are few and reused (fresh multi-MB buffers cost more in page zeroing than the
    // formatting they hold), and they bound how far ahead the workers run. A worker holds a
    // buffer before it takes a chunk, so the first chunk not yet written is always being
    // formatted or waiting here: no deadlock.
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        // The channels belong to this closure: when it returns (an I/O error included), they
        // close, and the workers stop before the scope waits for them.
        let (free_tx, free_rx) = crossbeam_channel::unbounded::<String>();
        for _ in 0..2 * threads + 2 {
            let _ = free_tx.send(String::with_capacity(cap));
        }
        let (done_tx, done_rx) = crossbeam_channel::unbounded::<(usize, String)>();
        for w in 0..threads {
            let (free_rx, done_tx, next, idx, chunks) = (free_rx.clone(), done_tx.clone(), &next, &idx, &chunks);
            let spawned = std::thread::Builder::new().name(format!("bpsc-ir-{w}")).spawn_scoped(s, move || {
                let mut res = LineCache::indexed(ir);
                // Both channels fail only when the writer has stopped (an I/O error).
                while let Ok(mut buf) = free_rx.recv() {
                    let c = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(part) = chunks.get(c) else { return };
                    buf.clear();
                    for &j in *part {
                        res.push_line(idx, j, &mut buf);
                    }
                    if done_tx.send((c, buf)).is_err() {
                        return;
                    }
                }
            });
            if spawned.is_err() {
                return Err(io::Error::other("cannot start a thread to format the IR"));
            }
        }
        drop(done_tx);
        // The chunks that came early, by index (at most as many as there are buffers).
        let mut early: std::collections::BTreeMap<usize, String> = std::collections::BTreeMap::new();
        for c in 0..chunks.len() {
            let buf = loop {
                if let Some(b) = early.remove(&c) {
                    break b;
                }
                let Ok((k, b)) = done_rx.recv() else {
                    return Err(io::Error::other("a thread formatting the IR stopped"));
                };
                early.insert(k, b);
            };
            out.write_all(buf.as_bytes())?;
            let _ = free_tx.send(buf);
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_line_string_is_escaped_as_serde_json_does() {
        let mut samples: Vec<String> = (0u32..0x80).map(|c| char::from_u32(c).map(String::from).unwrap_or_default()).collect();
        samples.extend(
            ["", "plain", "a\"b\\c", "tab\there\nnew\rline", "\u{7f}del", "é/ü–\u{2028}\u{1F600}", "x\u{1}y\u{1f}z", "end\\"]
                .map(String::from),
        );
        // Escapes at every offset of an eight-byte word, and after long clean runs.
        for c in ['"', '\\', '\n', '\u{1}', '\u{1f}', ' ', '~', '\u{7f}', 'é'] {
            for pos in 0..20 {
                let mut t: String = "abcdefghijklmnopqrstuvwxyz".chars().take(20).collect();
                t.insert(pos, c);
                samples.push(t);
            }
        }
        // And random mixes (a fixed linear congruential sequence: the same strings every run).
        let palette = ['a', 'Z', '0', '"', '\\', '\n', '\t', '\u{0}', '\u{1b}', '\u{7f}', 'é', '€', '\u{1F600}', ' ', '$', '/'];
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..2000 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let len = (x >> 58) as usize;
            let t: String = (0..len).map(|k| palette[((x >> (k % 60)) as usize + k * 7) % palette.len()]).collect();
            samples.push(t);
        }
        for s in samples {
            let mut got = String::from("prefix");
            push_jstr(&mut got, &s);
            let want = format!("prefix{}", serde_json::to_string(&s).unwrap());
            assert_eq!(got, want, "escaping {s:?}");
        }
    }
}
