//! The scale benchmark (not a timed test): `cargo bench --bench scale`.
//!
//! Generates synthetic survey campaigns (`bpsc synth`: visits × detectors → isr → calibrate
//! → make_warp over an overlap relation → coadd over tract × patch × band → summary) at
//! 10k, 100k, 1M and 3M jobs, a 20,000-line campaign file, campaigns of one long chain of
//! steps (20k, 40k and 100k lines: the checker must stay linear) and a 1,000,000-row table for
//! the checker, then runs the release `bpsc` on each and prints a Markdown table of wall
//! time and peak RSS (from `wait4`'s rusage of the child).  With BPSC_BENCH_BACKENDS=1 it
//! also compiles the 100k and 1M campaigns with every backend that is implemented.
//! BPSC_BENCH_SIZES=10000,100000 limits the sizes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

fn bpsc() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_bpsc"))
}

/// Run a command; return (seconds, peak RSS in MiB, stdout).
fn measure(args: &[&str]) -> (f64, f64, String) {
    let t = Instant::now();
    let mut child =
        Command::new(bpsc()).args(args).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::null()).spawn().expect("bpsc");
    let pid = child.id() as libc::pid_t;
    let mut out = String::new();
    if let Some(mut so) = child.stdout.take() {
        use std::io::Read;
        let _ = so.read_to_string(&mut out);
    }
    let mut status = 0;
    // SAFETY: wait4 on our own child with a zeroed rusage.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    let secs = t.elapsed().as_secs_f64();
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "bpsc {args:?} failed");
    (secs, ru.ru_maxrss as f64 / 1024.0, out)
}

fn main() {
    if cfg!(debug_assertions) {
        eprintln!("note: run with `cargo bench` (release) for meaningful numbers");
    }
    let dir = std::env::temp_dir().join("bpsc-bench");
    let _ = std::fs::create_dir_all(&dir);
    let sizes: Vec<u64> = std::env::var("BPSC_BENCH_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![10_000, 100_000, 1_000_000, 3_000_000]);
    println!("| campaign | jobs | edges | check | lower | total wall | peak RSS |");
    println!("|---|---|---|---|---|---|---|");
    for &n in &sizes {
        let d = dir.join(format!("synth-{n}"));
        if !d.join("campaign.bps").exists() {
            let _ = measure(&["synth", "--jobs", &n.to_string(), "-o", d.to_str().unwrap()]);
        }
        let (secs, rss, out) = measure(&["compile", d.join("campaign.bps").to_str().unwrap(), "--emit", "summary"]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
        println!(
            "| synthetic {n} | {} | {} | {:.2} s | {:.2} s | {secs:.2} s | {rss:.0} MiB |",
            v["counts"]["jobs"],
            v["counts"]["edges"],
            v["check_seconds"].as_f64().unwrap_or(0.0),
            v["lower_seconds"].as_f64().unwrap_or(0.0)
        );
    }
    // The checker on a long file and on a large table.
    let long = dir.join("long.bps");
    let _ = measure(&["synth", "--jobs", "0", "--lines", "20000", "-o", long.to_str().unwrap()]);
    let mut best = f64::MAX;
    let mut rss = 0.0;
    for _ in 0..10 {
        let (s, r, _) = measure(&["check", long.to_str().unwrap(), "--color", "never"]);
        best = best.min(s);
        rss = r;
    }
    println!("\n| checker input | best of 10 | peak RSS |\n|---|---|---|");
    println!("| 20,000-line campaign file | {:.1} ms | {rss:.0} MiB |", best * 1000.0);
    // One pipeline of chained steps that the campaign uses (`bpsc synth --lines N --chain`,
    // about six lines per step): the shape whose checking was quadratic in the number of
    // steps (issue 15).  Linear means the time per 1,000 lines stays flat.
    for lines in [20_000usize, 40_000, 100_000] {
        let f = dir.join(format!("chain-{lines}.bps"));
        let _ = measure(&["synth", "--jobs", "0", "--lines", &lines.to_string(), "--chain", "-o", f.to_str().unwrap()]);
        let mut best = f64::MAX;
        for _ in 0..10 {
            let (s, r, _) = measure(&["check", f.to_str().unwrap(), "--color", "never"]);
            best = best.min(s);
            rss = r;
        }
        let n = std::fs::read_to_string(&f).map(|t| t.lines().count()).unwrap_or(lines);
        println!(
            "| {n}-line campaign, one chain of {} steps | {:.1} ms ({:.2} ms per 1,000 lines) | {rss:.0} MiB |",
            (lines.saturating_sub(30) / 6).max(1),
            best * 1000.0,
            best * 1e6 / n as f64
        );
    }
    let t = dir.join("table");
    write_million_row_table(&t);
    let mut best = f64::MAX;
    for _ in 0..5 {
        let (s, r, _) = measure(&["check", t.join("c.bps").to_str().unwrap(), "--color", "never"]);
        best = best.min(s);
        rss = r;
    }
    println!("| campaign with a 1,000,000-row table | {:.0} ms | {rss:.0} MiB |", best * 1000.0);
    if std::env::var("BPSC_BENCH_BACKENDS").is_ok() {
        println!("\n| backend | jobs | wall | peak RSS | files |\n|---|---|---|---|---|");
        for &n in sizes.iter().filter(|&&n| n == 100_000 || n == 1_000_000) {
            for b in ["htcondor", "slurm", "pegasus", "pegasus-dax", "nextflow"] {
                let out = dir.join(format!("out-{b}-{n}"));
                let _ = std::fs::remove_dir_all(&out);
                let t = Instant::now();
                let st = Command::new(bpsc())
                    .args([
                        "compile",
                        dir.join(format!("synth-{n}/campaign.bps")).to_str().unwrap(),
                        "--backend",
                        b,
                        "-o",
                        out.to_str().unwrap(),
                    ])
                    .output()
                    .expect("bpsc");
                if !st.status.success() {
                    println!("| {b} | {n} | not available: {} | | |", String::from_utf8_lossy(&st.stderr).lines().last().unwrap_or(""));
                    continue;
                }
                let secs = t.elapsed().as_secs_f64();
                let (_, rss, _) = measure(&[
                    "compile",
                    dir.join(format!("synth-{n}/campaign.bps")).to_str().unwrap(),
                    "--backend",
                    b,
                    "-o",
                    out.to_str().unwrap(),
                    "--force",
                ]);
                let files = bpsc::backend::list_files(&out).map(|f| f.len()).unwrap_or(0);
                println!("| {b} | {n} | {secs:.2} s | {rss:.0} MiB | {files} |");
            }
        }
    }
}

fn write_million_row_table(dir: &Path) {
    if dir.join("c.bps").exists() {
        return;
    }
    std::fs::create_dir_all(dir).unwrap();
    let mut csv = String::from("visit,detector,tract,patch\n");
    for i in 0..1_000_000u64 {
        let (v, d) = (100_000 + i / 189, i % 189);
        csv.push_str(&format!("{v},{d},{},{}\n", v % 97, (v * 7 + d) % 81));
    }
    std::fs::write(dir.join("overlaps.csv"), csv).unwrap();
    std::fs::write(
        dir.join("c.bps"),
        "bps 1\nrelation overlap(visit, detector, tract, patch) = table(\"overlaps.csv\")\npipeline p {\n  step isr over (visit, detector) { run = \"echo {visit} {detector}\" }\n  step warp over (visit, tract, patch) after isr { run = \"echo {visit} {tract} {patch}\" }\n}\ncampaign c {\n  use p\n  coverage = overlap where detector != 3\n}\n",
    )
    .unwrap();
}
