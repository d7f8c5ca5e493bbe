//! The job graph (`bpsc graph --level job`), drawn to be read for a few hundred jobs:
//!
//! * jobs are grouped by step (a cluster's jobs by cluster), each group a box titled with
//!   the step and its number of jobs; the stage-out and cleanup jobs of a step have a box
//!   next to it, stage-in and join jobs a box per kind, and the final provenance job stands
//!   alone at the end;
//! * a job is labelled with its data ID values only (`903334, 12`): the step is the box's
//!   title; the full job id is the node's tooltip (DOT);
//! * in DOT, jobs are ranked by level (the longest path from a root): every level is one
//!   column, left to right, so a level of many jobs makes the drawing taller, not wider.
//!
//! DOT ids are `jN` (job index), labels are escaped, so a data ID value cannot break out of
//! its string.

use std::collections::BTreeMap;
use std::io::{self, Write};

use super::{Ir, JobKind};

/// The group a job is drawn in.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Group {
    /// Compute jobs of one step or one cluster (index).
    Step(u32),
    Cluster(u32),
    /// Stage-out or cleanup jobs of the compute jobs of a group.
    Aux(&'static str, Box<Group>),
    /// Stage-in, join, provenance.
    Kind(&'static str),
}

/// Longest path from a root, per job; the provenance job (no edges) goes below the rest.
pub fn levels(ir: &Ir) -> Vec<u32> {
    let n = ir.jobs.len();
    let (off, kids) = ir.children();
    let mut indeg = vec![0u32; n];
    for &(_, c) in &ir.edges {
        indeg[c as usize] += 1;
    }
    let mut level = vec![0u32; n];
    let mut queue: Vec<u32> = (0..n as u32).filter(|&j| indeg[j as usize] == 0).collect();
    let mut i = 0;
    while i < queue.len() {
        let j = queue[i] as usize;
        i += 1;
        for &c in &kids[off[j] as usize..off[j + 1] as usize] {
            let c = c as usize;
            level[c] = level[c].max(level[j] + 1);
            indeg[c] -= 1;
            if indeg[c] == 0 {
                queue.push(c as u32);
            }
        }
    }
    let max = level.iter().copied().max().unwrap_or(0);
    for (j, job) in ir.jobs.iter().enumerate() {
        if job.kind == JobKind::Provenance {
            level[j] = max + 1;
        }
    }
    level
}

fn group_of(ir: &Ir, j: u32) -> Group {
    let job = &ir.jobs[j as usize];
    match job.kind {
        JobKind::Compute if job.owner != u32::MAX => Group::Cluster(job.owner),
        JobKind::Compute => Group::Step(ir.job_members(j).first().map_or(0, |m| m.step)),
        JobKind::StageIn => Group::Kind("stage in"),
        JobKind::StageOut if job.owner < j => Group::Aux("stage out", Box::new(group_of(ir, job.owner))),
        JobKind::Cleanup if job.owner < j => Group::Aux("cleanup", Box::new(group_of(ir, job.owner))),
        JobKind::StageOut => Group::Kind("stage out"),
        JobKind::Cleanup => Group::Kind("cleanup"),
        JobKind::Join => Group::Kind("join"),
        JobKind::Provenance => Group::Kind("provenance"),
    }
}

/// A short label: a compute job's data ID values (a cluster job's `by` values and its
/// number of quanta); the kind and number of other jobs.
fn label(ir: &Ir, j: u32) -> String {
    let job = &ir.jobs[j as usize];
    match job.kind {
        JobKind::Compute => {
            let members = ir.job_members(j);
            let Some(&m) = members.first() else { return ir.job_id(j) };
            let vals: Vec<String> = ir.data_id(m).iter().map(|v| v.to_string()).collect();
            let base = if job.owner == u32::MAX {
                vals.join(", ")
            } else {
                let c = &ir.clusters[job.owner as usize];
                let step = &ir.steps[m.step as usize];
                let by: Vec<String> = c.by.iter().filter_map(|d| step.dims.iter().position(|x| x == d)).map(|i| vals[i].clone()).collect();
                if by.is_empty() {
                    vals.join(", ")
                } else {
                    by.join(", ")
                }
            };
            if members.len() > 1 {
                format!("{base} ({} quanta)", members.len())
            } else if base.is_empty() {
                "(one quantum)".to_string()
            } else {
                base
            }
        }
        JobKind::Provenance => "provenance".to_string(),
        // Drawn in the box of their compute job's group: that job's label says which.
        JobKind::StageOut | JobKind::Cleanup if job.owner < j => label(ir, job.owner),
        _ => ir.job_id(j),
    }
}

fn group_title(ir: &Ir, g: &Group, jobs: usize) -> String {
    fn name(ir: &Ir, g: &Group) -> String {
        match g {
            Group::Step(s) => format!("step {}", ir.steps[*s as usize].name),
            Group::Cluster(c) => format!("cluster {}", ir.clusters[*c as usize].name),
            Group::Aux(k, of) => format!("{k} of {}", name(ir, of)),
            Group::Kind(k) => (*k).to_string(),
        }
    }
    let what = name(ir, g);
    format!("{what} ({jobs} job{})", if jobs == 1 { "" } else { "s" })
}

/// Text safe inside a DOT or Mermaid double-quoted string: no quote, backslash or control
/// character survives.
fn quoted(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '"' => '\''.to_string(),
            '\\' => "\\\\".to_string(),
            c if c.is_control() => "?".to_string(),
            c => c.to_string(),
        })
        .collect()
}

/// Mermaid treats some characters in labels as markup even inside quotes.
fn mermaid_text(s: &str) -> String {
    quoted(s).replace('<', "&lt;").replace('>', "&gt;").replace('#', "&num;").replace('`', "'")
}

/// Write the job graph as DOT or Mermaid.
pub fn write_job_graph(ir: &Ir, mermaid: bool, out: &mut dyn Write) -> io::Result<()> {
    let n = ir.jobs.len() as u32;
    let mut groups: BTreeMap<Group, Vec<u32>> = BTreeMap::new();
    for j in 0..n {
        groups.entry(group_of(ir, j)).or_default().push(j);
    }
    if mermaid {
        writeln!(out, "flowchart TD")?;
        for (gi, (g, jobs)) in groups.iter().enumerate() {
            if *g == Group::Kind("provenance") {
                for &j in jobs {
                    writeln!(out, "  j{j}[\"{}\"]", mermaid_text(&label(ir, j)))?;
                }
                continue;
            }
            writeln!(out, "  subgraph g{gi}[\"{}\"]", mermaid_text(&group_title(ir, g, jobs.len())))?;
            for &j in jobs {
                writeln!(out, "    j{j}[\"{}\"]", mermaid_text(&label(ir, j)))?;
            }
            writeln!(out, "  end")?;
        }
        for &(p, c) in &ir.edges {
            writeln!(out, "  j{p} --> j{c}")?;
        }
        return Ok(());
    }
    let level = levels(ir);
    writeln!(out, "digraph jobs {{")?;
    writeln!(out, "  rankdir=LR;\n  newrank=true;\n  ranksep=0.5;\n  nodesep=0.08;")?;
    writeln!(
        out,
        "  label=\"campaign {}: {} jobs ({} compute), {} edges\";\n  labelloc=t;",
        quoted(&ir.campaign),
        ir.jobs.len(),
        ir.compute_jobs(),
        ir.edges.len()
    )?;
    writeln!(out, "  node [shape=box, style=\"rounded,filled\", fillcolor=white, fontsize=9, height=0.25, margin=\"0.06,0.02\"];")?;
    writeln!(out, "  edge [arrowsize=0.5, color=\"#00000060\"];")?;
    for (gi, (g, jobs)) in groups.iter().enumerate() {
        let shape = match g {
            Group::Kind("join") => ", shape=point, width=0.08",
            Group::Kind("provenance") => ", shape=doubleoctagon",
            Group::Kind(_) | Group::Aux(..) => ", shape=ellipse",
            _ => "",
        };
        if *g == Group::Kind("provenance") {
            for &j in jobs {
                writeln!(out, "  j{j} [label=\"{}\", tooltip=\"{}\"{shape}];", quoted(&label(ir, j)), quoted(&ir.job_id(j)))?;
            }
            continue;
        }
        writeln!(out, "  subgraph cluster_{gi} {{")?;
        writeln!(
            out,
            "    label=\"{}\";\n    style=\"rounded,filled\";\n    fillcolor=\"#f4f4f4\";\n    color=\"#bbbbbb\";",
            quoted(&group_title(ir, g, jobs.len()))
        )?;
        for &j in jobs {
            writeln!(out, "    j{j} [label=\"{}\", tooltip=\"{}\"{shape}];", quoted(&label(ir, j)), quoted(&ir.job_id(j)))?;
        }
        writeln!(out, "  }}")?;
    }
    // One row per level.
    let mut by_level: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    for j in 0..n {
        by_level.entry(level[j as usize]).or_default().push(j);
    }
    for (l, jobs) in &by_level {
        let ids: Vec<String> = jobs.iter().map(|j| format!("j{j}")).collect();
        writeln!(out, "  {{ rank=same; /* level {l} */ {}; }}", ids.join("; "))?;
    }
    for &(p, c) in &ir.edges {
        writeln!(out, "  j{p} -> j{c};")?;
    }
    // The provenance job has no edges in the IR: keep it after the last level.
    if let (Some(p), Some((_, last))) =
        (ir.jobs.iter().position(|j| j.kind == JobKind::Provenance), by_level.range(..u32::MAX).rev().nth(1))
    {
        if let Some(&j) = last.first() {
            writeln!(out, "  j{j} -> j{p} [style=invis];")?;
        }
    }
    writeln!(out, "}}")
}
