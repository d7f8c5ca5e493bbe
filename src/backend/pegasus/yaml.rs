//! The Pegasus 5.0 abstract workflow (`workflow.yml`), the input replica catalog
//! (`replicas.yml`) and the output replica catalog (`outputs.yml`), streamed: one job (or
//! one replica) is rendered into a reused buffer and written, nothing else is kept.

use std::io::{self, Write};

use crate::backend::Output;

use super::model::{notify_command, provenance_command, Model, Use, Val};
use super::quote::{yaml_expand, yaml_str, yaml_url};

/// Write `workflow.yml`, `replicas.yml` and `outputs.yml`.
pub fn write(m: &Model, out: &dyn Output) -> io::Result<()> {
    write_workflow(m, out.create_buffered("workflow.yml", 1 << 20)?)?;
    write_replicas(m, out.create("replicas.yml")?)?;
    write_outputs(m, out.create("outputs.yml")?)
}

fn kv(out: &mut String, indent: &str, key: &str, value: &str) {
    out.push_str(indent);
    out.push_str(key);
    out.push_str(": ");
    yaml_str(value, out);
    out.push('\n');
}

/// Workflow-level hooks: the campaign's notify command for `failure` (`error`) and `done`
/// (`end`), and the provenance gathering (`end`).
pub fn hooks(m: &Model) -> Vec<(&'static str, String, bool)> {
    let ir = m.ir;
    let mut h: Vec<(&'static str, String, bool)> = Vec::new();
    if let Some(cmd) = &ir.notify.command {
        for (event, on) in [("failure", "error"), ("done", "end")] {
            if ir.notify.on.iter().any(|e| e == event) {
                h.push((on, notify_command(cmd, &ir.campaign, event, ""), false));
            }
        }
    }
    if let Some(p) = (0..ir.jobs.len() as u32).find(|&j| ir.jobs[j as usize].kind == crate::ir::JobKind::Provenance) {
        h.push(("end", provenance_command(m.tx_name(p), m.index(p)), true));
    }
    h
}

fn write_workflow(m: &Model, mut w: Box<dyn Write>) -> io::Result<()> {
    let ir = m.ir;
    let mut b = String::with_capacity(4096);
    b.push_str(&format!(
        "# Pegasus 5 abstract workflow of campaign {} written by bpsc {}.\n# Plan it with ./plan.sh (see README in backends/pegasus of bpsc).\n",
        m.name,
        env!("CARGO_PKG_VERSION")
    ));
    b.push_str("x-bpsc:\n");
    kv(&mut b, "  ", "version", env!("CARGO_PKG_VERSION"));
    b.push_str(&format!("  ir: {}\n", crate::ir::IR_VERSION));
    b.push_str("pegasus: '5.0'\n");
    kv(&mut b, "", "name", &m.name);
    b.push_str("metadata:\n");
    kv(&mut b, "  ", "campaign", &ir.campaign);
    kv(&mut b, "  ", "order", ir.order());
    b.push_str(&format!("  priority: {}\n", ir.priority()));
    b.push_str(&format!("  compute_jobs: {}\n", ir.compute_jobs()));
    let hooks = hooks(m);
    if !hooks.is_empty() {
        b.push_str("hooks:\n  shell:\n");
        for (on, cmd, expand) in &hooks {
            b.push_str(&format!("  - _on: {on}\n    cmd: "));
            if *expand {
                b.push_str(&yaml_expand(cmd));
            } else {
                yaml_str(cmd, &mut b);
            }
            b.push('\n');
        }
    }
    b.push_str("jobs:\n");
    w.write_all(b.as_bytes())?;

    let mut uses: Vec<Use> = Vec::new();
    for &j in &m.order {
        b.clear();
        job(m, j, &mut uses, &mut b);
        w.write_all(b.as_bytes())?;
    }

    // Dependencies, grouped by parent (edges are sorted by parent).
    w.write_all(b"jobDependencies:")?;
    if m.edges.is_empty() {
        w.write_all(b" []\n")?;
    } else {
        w.write_all(b"\n")?;
        let mut i = 0;
        while i < m.edges.len() {
            let p = m.edges[i].0;
            b.clear();
            b.push_str("- id: ");
            b.push_str(m.ids.get(p));
            b.push_str("\n  children:\n");
            while i < m.edges.len() && m.edges[i].0 == p {
                b.push_str("  - ");
                b.push_str(m.ids.get(m.edges[i].1));
                b.push('\n');
                i += 1;
            }
            w.write_all(b.as_bytes())?;
        }
    }
    w.flush()
}

/// One job entry.  Ids and group names are `[A-Za-z0-9_-]+` already; everything else goes
/// through [`yaml_str`].
fn job(m: &Model, j: u32, uses: &mut Vec<Use>, b: &mut String) {
    let id = m.ids.get(j);
    let name = m.tx_name(j);
    b.push_str("- type: job\n  namespace: bpsc\n  name: ");
    yaml_str(name, b);
    b.push_str("\n  id: ");
    b.push_str(id);
    b.push_str("\n  arguments: [wrap, '${BPSC_SUBMIT}', '--group', ");
    yaml_str(name, b);
    b.push_str(", '--index', '");
    b.push_str(&m.index(j).to_string());
    b.push_str("']\n");
    m.uses(j, uses);
    if uses.is_empty() {
        b.push_str("  uses: []\n");
    } else {
        b.push_str("  uses:\n");
        for u in uses.iter() {
            b.push_str("  - {lfn: ");
            yaml_str(&u.lfn, b);
            if u.output {
                b.push_str(", type: output, stageOut: ");
                b.push_str(if u.stage_out { "true" } else { "false" });
                b.push_str(", registerReplica: ");
                b.push_str(if u.register { "true" } else { "false" });
            } else {
                b.push_str(", type: input");
                if u.optional {
                    b.push_str(", optional: true");
                }
            }
            b.push_str("}\n");
        }
    }
    // Metadata and each profile namespace as one flow mapping: a million jobs' worth of
    // YAML stays a third smaller than in block style, and as readable.
    b.push_str("  metadata: {");
    for (i, (k, v)) in m.metadata(j).into_iter().enumerate() {
        if i > 0 {
            b.push_str(", ");
        }
        b.push_str(k);
        b.push_str(": ");
        match v {
            Val::Num(n) => b.push_str(&n.to_string()),
            Val::Text(t) => yaml_str(&t, b),
        }
    }
    b.push_str("}\n  profiles:\n");
    let profiles = m.profiles(j, "selector");
    let mut namespaces: Vec<&str> = Vec::with_capacity(5);
    for (ns, _, _) in &profiles {
        if !namespaces.contains(ns) {
            namespaces.push(ns);
        }
    }
    for ns in namespaces {
        b.push_str("    ");
        b.push_str(ns);
        b.push_str(": {");
        for (i, (_, k, v)) in profiles.iter().filter(|p| p.0 == ns).enumerate() {
            if i > 0 {
                b.push_str(", ");
            }
            b.push_str(k);
            b.push_str(": ");
            match v {
                // Resources as numbers, dagman values as strings: as the Pegasus Python API writes them.
                Val::Num(n) if numeric_key(k) => b.push_str(&n.to_string()),
                Val::Num(n) => {
                    b.push('\'');
                    b.push_str(&n.to_string());
                    b.push('\'');
                }
                Val::Text(t) => yaml_str(t, b),
            }
        }
        b.push_str("}\n");
    }
}

/// Profile values written as YAML numbers (as the Pegasus Python API writes them).
pub fn numeric_key(k: &str) -> bool {
    matches!(k, "request_memory" | "request_cpus" | "request_disk" | "runtime")
}

fn write_replicas(m: &Model, mut w: Box<dyn Write>) -> io::Result<()> {
    w.write_all(b"# Input replica catalog (external `stage = pre_job` datasets), written by bpsc.\npegasus: '5.0'\nreplicas:")?;
    let mut any = false;
    let mut b = String::with_capacity(512);
    for (lfn, url) in m.replicas() {
        if !any {
            w.write_all(b"\n")?;
            any = true;
        }
        b.clear();
        b.push_str("- lfn: ");
        yaml_str(&lfn, &mut b);
        b.push_str("\n  pfns:\n  - site: local\n    pfn: ");
        yaml_url(&url, &mut b);
        b.push('\n');
        w.write_all(b.as_bytes())?;
    }
    if !any {
        w.write_all(b" []\n")?;
    }
    w.flush()
}

fn write_outputs(m: &Model, mut w: Box<dyn Write>) -> io::Result<()> {
    w.write_all(
        b"# Output replica catalog for pegasus.dir.storage.mapper=Replica: where each archived\n# (stageOut) file goes on the output site `local`.  Written by bpsc.\npegasus: '5.0'\nreplicas:",
    )?;
    let mut any = false;
    let mut b = String::with_capacity(512);
    let mut arch: Vec<(String, String)> = Vec::new();
    for &j in &m.order {
        m.archives(j, &mut arch);
        for (lfn, url) in &arch {
            if !any {
                w.write_all(b"\n")?;
                any = true;
            }
            b.clear();
            b.push_str("- lfn: ");
            yaml_str(lfn, &mut b);
            b.push_str("\n  pfns:\n  - site: local\n    pfn: ");
            yaml_url(url, &mut b);
            b.push('\n');
            w.write_all(b.as_bytes())?;
        }
    }
    if !any {
        w.write_all(b" []\n")?;
    }
    w.flush()
}
