//! The Pegasus 5.0 abstract workflow (`workflow.yml`), the input replica catalog
//! (`replicas.yml`) and the output replica catalog (`outputs.yml`), streamed: one job (or
//! one replica) is rendered into a reused buffer and written, nothing else is kept.

use std::io::{self, Write};

use crate::backend::Output;

use super::model::{notify_command, provenance_command, Model, PVal, Prof, Use};
use super::quote::{yaml, yaml_expand, yaml_str, yaml_url};

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
        "# Pegasus 5 abstract workflow of campaign {} written by bpsc {}.\n# Plan it with ./plan.sh (see README in backends/pegasus of bpsc).\n\
         # A job's arguments are its index K in its task group: the transformation is the group's launcher\n\
         # (launch/GROUP.sh K runs `bpsc wrap SUBMIT --group GROUP --index K`); what the job runs:\n\
         # `bpsc show SUBMIT GROUP:K`.  Profiles its group shares are in transformations.yml.\n",
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

    // Per job one flow-style line (no space after a comma: YAML flow collections do not need
    // one, and a million jobs save 4 MB); its profiles, rendered once per distinct set.
    let residuals: Vec<String> = m.residuals.iter().map(|r| flow_profiles(r)).collect();
    let names: Vec<String> = m.groups.names.iter().map(|n| yaml(n)).collect();
    let mut uses: Vec<Use> = Vec::new();
    for &j in &m.order {
        b.clear();
        b.push_str("- {type: job,name: ");
        b.push_str(&names[m.groups.group_of[j as usize] as usize]);
        b.push_str(",id: ");
        b.push_str(m.ids.get(j));
        b.push_str(",arguments: [");
        push_u32(&mut b, m.index(j));
        b.push_str("],uses: ");
        m.uses(j, &mut uses);
        flow_uses(&uses, &mut b);
        let r = m.residual_of[j as usize];
        if r != 0 && r != u32::MAX {
            b.push_str(",profiles: ");
            b.push_str(&residuals[r as usize]);
        }
        b.push_str("}\n");
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
            b.push_str("- {id: ");
            b.push_str(m.ids.get(p));
            b.push_str(",children: [");
            let mut first = true;
            while i < m.edges.len() && m.edges[i].0 == p {
                if !first {
                    b.push(',');
                }
                first = false;
                b.push_str(m.ids.get(m.edges[i].1));
                i += 1;
            }
            b.push_str("]}\n");
            w.write_all(b.as_bytes())?;
        }
    }
    w.flush()
}

/// Append `n` in decimal, without allocating.
pub fn push_u32(b: &mut String, n: u32) {
    let mut d = [0u8; 10];
    let mut i = d.len();
    let mut n = n;
    loop {
        i -= 1;
        d[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    b.push_str(std::str::from_utf8(&d[i..]).unwrap_or("0"));
}

/// `[]` or `[{lfn: X, type: input}, ...]`.  LFNs are `[A-Za-z0-9_-]+/[A-Za-z0-9_-]+`
/// (see `crate::ir::naming`), which [`yaml_str`] leaves plain.
fn flow_uses(uses: &[Use], b: &mut String) {
    b.push('[');
    for (i, u) in uses.iter().enumerate() {
        if i > 0 {
            b.push_str(", ");
        }
        b.push_str("{lfn: ");
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
        b.push('}');
    }
    b.push(']');
}

/// A profile value in YAML: numbers as numbers (as the Pegasus Python API writes
/// resources), text quoted where needed; only bpsc's own plan-time variables stay for
/// pegasus-plan to expand.
pub fn prof_value(v: &PVal, out: &mut String) {
    match v {
        PVal::Num(n) => out.push_str(&n.to_string()),
        PVal::Text(t) => yaml_str(t, out),
        PVal::Plan(t) => yaml_url(t, out),
    }
}

/// `{ns: {key: value, ...}, ...}` in one line.
pub fn flow_profiles(ps: &[Prof]) -> String {
    let mut b = String::from("{");
    let mut namespaces: Vec<&str> = Vec::new();
    for p in ps {
        if !namespaces.contains(&p.ns) {
            namespaces.push(p.ns);
        }
    }
    for (i, ns) in namespaces.iter().enumerate() {
        if i > 0 {
            b.push_str(", ");
        }
        b.push_str(ns);
        b.push_str(": {");
        for (k, p) in ps.iter().filter(|p| p.ns == *ns).enumerate() {
            if k > 0 {
                b.push_str(", ");
            }
            yaml_str(&p.key, &mut b);
            b.push_str(": ");
            prof_value(&p.val, &mut b);
        }
        b.push('}');
    }
    b.push('}');
    b
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
