//! The IR as versioned JSON Lines: the header (everything but the jobs), then one line per
//! job in a topological order.  `bpsc compile --emit ir` writes it, and the task tables the
//! job wrapper reads are made of the same job lines (see backends/ir/README.md).

use std::io::{self, Write};

use super::adjacency::topo_jobs;
use super::render::{command, fill_url, scratch_path, Quantum};
use super::{Ir, JobKind, Persist, Resources, Stage, StepSpec, IR_VERSION, NO_CLUSTER};
use crate::coverage::Value;

fn jstr(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

fn jval(v: &Value) -> String {
    match v {
        Value::Int(i) => i.to_string(),
        Value::Str(s) => jstr(s),
    }
}

pub fn data_id_json(dims: &[String], vals: &[&Value]) -> String {
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
    line.push_str(&format!("{{\"id\":{},\"kind\":\"{}\",\"priority\":{}", jstr(v.id), v.kind.as_str(), v.priority));
    if let Some(parents) = &v.parents {
        line.push_str(",\"parents\":[");
        for (k, p) in parents.iter().enumerate() {
            if k > 0 {
                line.push(',');
            }
            line.push_str(&jstr(p));
        }
        line.push(']');
    }
    if let Some(site) = v.site {
        line.push_str(&format!(",\"site\":{}", jstr(site)));
    }
    match v.kind {
        JobKind::Compute => {
            if let Some(c) = v.cluster {
                line.push_str(&format!(",\"cluster\":{}", jstr(c)));
            }
            if let Some(r) = v.resources {
                line.push_str(&format!(",\"resources\":{}", serde_json::to_string(r).unwrap_or_default()));
            }
            line.push_str(",\"quanta\":[");
            for (k, qn) in v.quanta.iter().enumerate() {
                let (st, vals) = (qn.spec, &qn.vals);
                if k > 0 {
                    line.push(',');
                }
                line.push_str(&format!(
                    "{{\"step\":{},\"data_id\":{},\"command\":{},",
                    jstr(&st.name),
                    data_id_json(&st.dims, vals),
                    jstr(&command(qn, campaign, v.id))
                ));
                if let Some(c) = config_path(st) {
                    line.push_str(&format!("\"config\":{},", jstr(&c)));
                }
                line.push_str("\"inputs\":[");
                let mut first = true;
                for (k, inp) in st.inputs.iter().enumerate() {
                    for at in qn.input_instances(k, campaign) {
                        if !first {
                            line.push(',');
                        }
                        first = false;
                        line.push_str(&format!(
                            "{{\"dataset\":{},\"path\":{},\"optional\":{}}}",
                            jstr(&inp.dataset),
                            jstr(&at.text()),
                            inp.optional
                        ));
                    }
                }
                line.push_str("],\"outputs\":[");
                for (k, o) in st.outputs.iter().enumerate() {
                    if k > 0 {
                        line.push(',');
                    }
                    line.push_str(&format!(
                        "{{\"dataset\":{},\"path\":{},\"verify\":{}}}",
                        jstr(&o.dataset),
                        jstr(&scratch_path(&o.dataset, vals)),
                        o.verify
                    ));
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
                        line.push_str(&format!(
                            "{{\"dataset\":{},\"from\":{},\"to\":{},\"optional\":{}}}",
                            jstr(&inp.dataset),
                            jstr(&fill_url(src, dims, iv, campaign, st.site.as_deref())),
                            jstr(&scratch_path(&inp.dataset, iv)),
                            inp.optional
                        ));
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
                line.push_str(&format!(
                    "{{\"dataset\":{},\"data_id\":{},\"from\":{},\"to\":{}}}",
                    jstr(&set.dataset),
                    data_id_json(&set.dims, vals),
                    jstr(&fill_url(&set.source, &set.dims, vals, campaign, None)),
                    jstr(&scratch_path(&set.dataset, vals))
                ));
            }
            line.push(']');
        }
        JobKind::StageOut | JobKind::Cleanup => {
            let key = if v.kind == JobKind::StageOut { "transfers" } else { "remove" };
            line.push_str(&format!(",\"of\":{},\"{key}\":[", jstr(v.of.unwrap_or(""))));
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
        JobKind::Provenance => {
            line.push_str(",\"final\":true");
            if let Some(f) = v.final_job {
                line.push_str(&format!(
                    ",\"final_job\":{{\"name\":{},\"when\":\"{}\",\"command\":{}}}",
                    jstr(&f.spec.name),
                    f.when.as_str(),
                    jstr(&command(&Quantum::new(&f.spec, Vec::new()), campaign, "final"))
                ));
            }
        }
        JobKind::Join => {}
    }
    line.push_str("}\n");
}

/// Job lines of the IR format, one at a time, with ids and parents computed once.
pub struct JobLines<'a> {
    ir: &'a Ir,
    ids: Vec<String>,
    poff: Vec<u32>,
    pin: Vec<u32>,
    stage_sets: Vec<StageSetSpec>,
    line: String,
}

impl<'a> JobLines<'a> {
    pub fn new(ir: &'a Ir) -> JobLines<'a> {
        let ids: Vec<String> = (0..ir.jobs.len() as u32).map(|j| ir.job_id(j)).collect();
        let (poff, pin) = ir.parents();
        let stage_sets = ir.stage_sets.iter().map(StageSetSpec::of).collect();
        JobLines { ir, ids, poff, pin, stage_sets, line: String::with_capacity(512) }
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
        let job = &ir.jobs[j as usize];
        let js = ir.settings_of(j);
        let ids = &self.ids;
        let parents: Vec<&str> = self.pin[self.poff[j as usize] as usize..self.poff[j as usize + 1] as usize]
            .iter()
            .map(|&p| ids[p as usize].as_str())
            .collect();
        let quanta_of = |owner: u32| -> Vec<Quantum> { ir.job_members(owner).iter().map(|m| ir.quantum(*m)).collect() };
        let view = JobView {
            id: &ids[j as usize],
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
            of: matches!(job.kind, JobKind::StageOut | JobKind::Cleanup).then(|| ids[job.owner as usize].as_str()),
            final_job: if job.kind == JobKind::Provenance { ir.final_job.as_ref() } else { None },
        };
        self.line.clear();
        write_job_line(&ir.campaign, &view, &mut self.line);
        &self.line
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
