//! Step and job graphs as DOT or Mermaid (`bpsc graph`, the pictures beside the examples).

use std::io::{self, Write};

use super::{Ir, JobKind, StepEdgeKind};

fn dot_id(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The step graph with job counts, as DOT or Mermaid (the job graph: [`super::jobgraph`]).
pub fn write_graph(ir: &Ir, mermaid: bool, out: &mut dyn Write) -> io::Result<()> {
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
    let edge_label = |k: &StepEdgeKind| -> String {
        match k {
            StepEdgeKind::Barrier => "all".into(),
            StepEdgeKind::After => String::new(),
            StepEdgeKind::Dataset(d) => d.clone(),
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
            let arrow = if *k == StepEdgeKind::Barrier { "-.->" } else { "-->" };
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
            let style = if *k == StepEdgeKind::Barrier { ", style=dashed" } else { "" };
            writeln!(out, "  s{a} -> s{b} [label={}{style}];", dot_id(&l))?;
        }
        writeln!(out, "}}")?;
    }
    Ok(())
}
