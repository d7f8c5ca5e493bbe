//! The IR as versioned JSON Lines: the header (everything but the jobs), then one line per
//! job in a topological order.  `bpsc compile --emit ir` writes it, and the task tables the
//! job wrapper reads are made of the same job lines (see backends/ir/README.md).

use std::io::{self, Write};

use super::adjacency::topo_jobs;
use super::render::{command, fill_url, scratch_path};
use super::{Ir, JobKind, Persist, Stage, IR_VERSION};
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
        "sites": ir.sites.iter().map(|s| serde_json::json!({"name": s.name, "backend": s.backend, "shared_fs": s.shared_fs, "scratch": s.scratch, "max_array_size": s.max_array_size, "max_memory": s.max_memory})).collect::<Vec<_>>(),
        "steps": steps,
        "clusters": ir.clusters.iter().map(|c| serde_json::json!({"name": c.name, "steps": c.steps.iter().map(|&s| ir.steps[s as usize].name.clone()).collect::<Vec<_>>(), "by": c.by, "size": c.size})).collect::<Vec<_>>(),
        "notify": {"on": ir.notify.on, "slow_after": ir.notify.slow_after, "command": ir.notify.command},
    })
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
        if let (JobKind::Compute | JobKind::StageOut | JobKind::Cleanup, Some(site)) = (job.kind, ir.settings_of(j).site.as_deref()) {
            line.push_str(&format!(",\"site\":{}", jstr(site)));
        }
        match job.kind {
            JobKind::Compute => {
                if job.owner != u32::MAX {
                    line.push_str(&format!(",\"cluster\":{}", jstr(&ir.clusters[job.owner as usize].name)));
                }
                let r = &ir.settings_of(j).resources;
                line.push_str(&format!(",\"resources\":{}", serde_json::to_string(r).unwrap_or_default()));
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
                            jstr(&scratch_path(&o.dataset, &vals)),
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
                            jstr(&scratch_path(&inp.dataset, &iv)),
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
                        jstr(&scratch_path(&set.dataset, &vals))
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
                        let from = scratch_path(&o.dataset, &vals);
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
