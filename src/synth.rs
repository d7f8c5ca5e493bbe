//! Synthetic survey-like campaigns for benchmarks: visits × detectors through
//! `isr -> calibrate` (one-to-one), `make_warp` over (visit, tract, patch) through a
//! realistic overlap relation, `coadd` over (tract, patch, band), and one summary job.
//!
//! The overlap relation follows a survey's geometry: visits point at sky positions that
//! drift slowly across tracts; each detector falls on one patch, and one in five straddles
//! a patch boundary and touches two.  Everything is a deterministic function of the size.

use std::io::{self, Write};
use std::path::Path;

/// Knobs of a generated campaign.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub visits: u32,
    pub detectors: u32,
    pub bands: u32,
    pub tracts: u32,
    pub patches_per_tract: u32,
}

impl Shape {
    /// A shape with about `jobs` compute jobs (2 per visit-detector, plus warps, coadds, 1).
    pub fn for_jobs(jobs: u64) -> Shape {
        let detectors: u32 = if jobs >= 1_000_000 {
            189
        } else if jobs >= 100_000 {
            100
        } else {
            50
        };
        let visits = ((jobs as f64) / (2.0 * detectors as f64 * 1.02)).ceil().max(1.0) as u32;
        let tracts = (visits / 40).max(2);
        Shape { visits, detectors, bands: 6, tracts, patches_per_tract: 81 }
    }
}

const BANDS: [&str; 6] = ["u", "g", "r", "i", "z", "y"];

/// Small deterministic mixing function (SplitMix64 finaliser).
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Write `campaign.bps`, `data/exposures.csv` and `data/overlaps.csv` into `dir`.
/// Returns the number of overlap rows.
pub fn generate(dir: &Path, s: Shape) -> io::Result<u64> {
    std::fs::create_dir_all(dir.join("data"))?;
    let mut ex = io::BufWriter::with_capacity(1 << 20, std::fs::File::create(dir.join("data/exposures.csv"))?);
    writeln!(ex, "visit,band")?;
    let mut ov = io::BufWriter::with_capacity(1 << 20, std::fs::File::create(dir.join("data/overlaps.csv"))?);
    writeln!(ov, "visit,detector,tract,patch")?;
    let mut rows = 0u64;
    let side = (s.patches_per_tract as f64).sqrt() as u32; // 9 x 9 patches
    for v in 0..s.visits {
        let visit = 100_000 + v;
        let h = mix(v as u64);
        writeln!(ex, "{visit},{}", BANDS[(h % s.bands as u64) as usize])?;
        // The pointing drifts across tracts; within a tract it lands on a patch-grid cell.
        let tract = (v / 40) % s.tracts;
        let px = ((h >> 8) % side as u64) as u32;
        let py = ((h >> 16) % side as u64) as u32;
        for d in 0..s.detectors {
            // Detectors tile a square around the pointing: ~a 3 x 3 patch footprint.
            let dx = (d % 14) / 5;
            let dy = (d / 14) % 3;
            let patch = ((py + dy) % side) * side + (px + dx) % side;
            writeln!(ov, "{visit},{d},{tract},{patch}")?;
            rows += 1;
            if mix((v as u64) << 20 | d as u64) % 5 == 0 {
                let patch2 = ((py + dy) % side) * side + (px + dx + 1) % side;
                if patch2 != patch {
                    writeln!(ov, "{visit},{d},{tract},{patch2}")?;
                    rows += 1;
                }
            }
        }
    }
    ex.flush()?;
    ov.flush()?;
    let bands: Vec<String> = BANDS[..s.bands as usize].iter().map(|b| format!("\"{b}\"")).collect();
    let text = format!(
        r#"bps 1
# Synthetic survey campaign: {visits} visits x {detectors} detectors (bpsc synth).

site batch {{
  backend        = slurm
  shared_fs      = true
  partition      = "debug"
  max_array_size = 1001
}}

defaults {{
  memory        = 2GiB
  walltime      = 1h
  retries       = 2
  memory_growth = 1.5
}}

dimension detector = 0..{detectors}
dimension band     = [{bands}]
relation exposure(visit, band)                  = table("data/exposures.csv")
relation overlap(visit, detector, tract, patch) = table("data/overlaps.csv")

dataset calexp(visit, detector)   {{ persist = scratch }}
dataset warp(visit, tract, patch) {{ persist = scratch }}
dataset coadd(tract, patch, band) {{ persist = scratch }}

pipeline drp {{
  step isr over (visit, detector) {{
    run = "echo isr {{visit}} {{detector}}"
  }}
  step calibrate over (visit, detector) after isr {{
    outputs = [calexp]
    run     = "echo calibrate {{visit}} {{detector}}"
  }}
  step make_warp over (visit, tract, patch) {{
    inputs  = [calexp]
    outputs = [warp]
    run     = "echo warp {{visit}} {{tract}} {{patch}}"
  }}
  step coadd over (tract, patch, band) {{
    inputs  = [warp]
    outputs = [coadd]
    memory  = 8GiB
    run     = "echo coadd {{tract}} {{patch}} {{band}}"
  }}
  step summary after coadd all {{
    run = "echo summary"
  }}
}}

campaign "synthetic" {{
  use drp
  coverage = exposure * detector
  site     = batch
  order    = breadth_first
}}
"#,
        visits = s.visits,
        detectors = s.detectors,
        bands = bands.join(", "),
    );
    std::fs::write(dir.join("campaign.bps"), text)?;
    Ok(rows)
}

/// A campaign file of about `lines` lines: many sites, dimensions, datasets, and pipelines
/// with many steps, for the checker's speed (no tables).
pub fn generate_long_file(path: &Path, lines: usize) -> io::Result<()> {
    let mut w = io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(w, "bps 1\n# generated: a long campaign file for the checker benchmark\n")?;
    writeln!(w, "defaults {{\n  memory = 2GiB\n  walltime = 2h\n  retries = 3\n}}\n")?;
    writeln!(w, "dimension visit = 0..1000\ndimension detector = 0..189\n")?;
    let mut n = 10usize;
    let mut p = 0usize;
    while n < lines {
        writeln!(w, "site s{p} {{\n  backend = slurm\n  shared_fs = true\n  max_memory = 512GiB\n}}")?;
        writeln!(w, "dataset d{p}(visit, detector) {{ persist = scratch }}")?;
        writeln!(w, "pipeline p{p} {{\n  config c {{ \"a.b\" = 1, flag = true }}")?;
        n += 9;
        for k in 0..20 {
            let after = if k > 0 { format!(" after t{}", k - 1) } else { String::new() };
            let io = if k == 19 { format!("\n    outputs = [d{p}]") } else { String::new() };
            writeln!(w, "  step t{k} over (visit, detector){after} {{{io}\n    run = \"task {{visit}} {{detector}} {{config.a.b}}\"\n    memory = {}GiB\n  }}", 1 + k % 4)?;
            n += 4 + usize::from(k == 19);
        }
        writeln!(w, "}}\n")?;
        n += 2;
        p += 1;
    }
    writeln!(w, "campaign big {{\n  use p0 with c\n  site = s0\n  coverage = visit * detector where visit < 10\n}}")?;
    w.flush()
}

/// A campaign file of about `lines` lines whose one pipeline is a chain of steps that the
/// campaign uses (each step after the previous one, or reading its output): the shape whose
/// checking cost grew quadratically with the number of steps (issue 15).  About six lines
/// per step: 3,300 steps make about 20,000 lines.
pub fn generate_chain_file(path: &Path, lines: usize) -> io::Result<()> {
    let mut w = io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(w, "bps 1\n# generated: one long chain of steps for the checker benchmark\n")?;
    writeln!(w, "defaults {{\n  memory   = 2GiB\n  walltime = 2h\n  retries  = 3\n}}\n")?;
    writeln!(w, "site s0 {{\n  backend    = slurm\n  shared_fs  = true\n  max_memory = 512GiB\n}}\n")?;
    writeln!(w, "dimension visit    = 0..1000\ndimension detector = 0..189\n")?;
    let steps = (lines.saturating_sub(30) / 6).max(1);
    for k in 0..steps {
        writeln!(w, "dataset d{k}(visit, detector) {{ persist = scratch }}")?;
    }
    writeln!(w, "\npipeline p {{\n  config c {{ \"a.b\" = 1, flag = true }}\n")?;
    for k in 0..steps {
        // Even steps depend by `after`, odd ones by reading the previous step's output.
        let (after, inputs) = match k {
            0 => (String::new(), String::new()),
            k if k % 2 == 0 => (format!(" after t{}", k - 1), String::new()),
            k => (String::new(), format!("    inputs  = [d{}]\n", k - 1)),
        };
        writeln!(
            w,
            "  step t{k} over (visit, detector){after} {{\n{inputs}    outputs = [d{k}]\n    run     = \"task {{visit}} {{detector}} {{config.a.b}}\"\n    memory  = {}GiB\n  }}",
            1 + k % 4
        )?;
    }
    writeln!(w, "}}\n\ncampaign big {{\n  use p with c\n  site     = s0\n  coverage = visit * detector where visit < 10\n}}")?;
    w.flush()
}
