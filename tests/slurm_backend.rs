//! Slurm backend without a cluster: snapshots of the generated scripts for every example,
//! determinism, the E801 error for `hosts` with several hosts, and bash syntax of every
//! generated shell file.  The real-cluster runs are in tests/slurm_integration.rs.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn tmp(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("slurm-backend").join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(d.parent().unwrap_or(Path::new("/"))).expect("temp dir");
    d
}

/// `bpsc compile FILE --backend slurm -o OUT --force ARGS...` -> (success, stderr)
fn compile(file: &Path, out: &Path, args: &[&str]) -> (bool, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_bpsc"))
        .arg("compile")
        .arg(file)
        .args(["--backend", "slurm", "-o"])
        .arg(out)
        .arg("--force")
        .args(args)
        .current_dir(repo())
        .output()
        .expect("run bpsc");
    (o.status.success(), String::from_utf8_lossy(&o.stderr).into_owned())
}

/// The examples, with the overrides the snapshots use (nightly_calib's three `hosts`
/// cannot be expressed in Slurm: E801, tested below).
const EXAMPLES: &[(&str, &str, &[&str])] = &[
    ("drp", "examples/drp/drp.bps", &[]),
    ("nightly_calib", "examples/nightly_calib/nightly_calib.bps", &["--set", "hosts=[\"sdfrome041\"]"]),
    ("afterburner", "examples/afterburner/afterburner.bps", &[]),
    ("special_programs", "examples/special_programs/special_programs.bps", &[]),
];

fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).expect("slurm dir").filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

/// Every script in full; submit.sh in full when short, else its head, its tail and counts.
fn snapshot_text(out: &Path) -> String {
    let sdir = out.join("slurm");
    let mut s = String::new();
    let names = files(&sdir);
    s.push_str(&format!("files in slurm/: {}\n\n", names.join(" ")));
    for n in &names {
        let text = std::fs::read_to_string(sdir.join(n)).expect("read");
        if n == "submit.sh" {
            let lines: Vec<&str> = text.lines().collect();
            let subs = lines.iter().filter(|l| l.starts_with("sub ")).count();
            let deps = lines.iter().filter(|l| l.starts_with("dep ")).count();
            s.push_str(&format!("==> slurm/{n} <== ({} lines: {subs} sub, {deps} dep)\n", lines.len()));
            if lines.len() <= 200 {
                s.push_str(&text);
            } else {
                for l in &lines[..120] {
                    s.push_str(l);
                    s.push('\n');
                }
                s.push_str(&format!("[... {} lines ...]\n", lines.len() - 160));
                for l in &lines[lines.len() - 40..] {
                    s.push_str(l);
                    s.push('\n');
                }
            }
        } else if n == "arrays.tsv" {
            let lines: Vec<&str> = text.lines().collect();
            s.push_str(&format!("==> slurm/{n} <== ({} lines)\n", lines.len()));
            for l in lines.iter().take(60) {
                s.push_str(l);
                s.push('\n');
            }
        } else {
            s.push_str(&format!("==> slurm/{n} <==\n{text}"));
        }
        s.push('\n');
    }
    s
}

#[test]
fn examples_snapshots() {
    for (name, file, args) in EXAMPLES {
        let out = tmp(name);
        let (ok, err) = compile(&repo().join(file), &out, args);
        assert!(ok, "{name}: compile failed:\n{err}");
        let text = snapshot_text(&out);
        insta::with_settings!({snapshot_path => repo().join("snapshots/slurm"), prepend_module_to_snapshot => false}, {
            insta::assert_snapshot!(format!("slurm_{name}"), text);
        });
    }
}

#[test]
fn output_is_deterministic_and_valid_bash() {
    for (name, file, args) in EXAMPLES {
        let a = tmp(&format!("{name}-a"));
        let b = tmp(&format!("{name}-b"));
        assert!(compile(&repo().join(file), &a, args).0);
        assert!(compile(&repo().join(file), &b, args).0);
        let la = common::list_files(&a);
        let lb = common::list_files(&b);
        assert_eq!(la, lb, "{name}: different file lists");
        for f in &la {
            assert_eq!(
                std::fs::read(a.join(f)).expect("read"),
                std::fs::read(b.join(f)).expect("read"),
                "{name}: {f} differs between two compilations"
            );
        }
        for f in files(&a.join("slurm")) {
            if f.ends_with(".sh") || f.ends_with(".sbatch") {
                let st = Command::new("bash").arg("-n").arg(a.join("slurm").join(&f)).status().expect("bash");
                assert!(st.success(), "{name}: slurm/{f} is not valid bash");
            }
        }
        // Every job of the campaign is in exactly one array task.
        let meta: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(a.join("bpsc.json")).expect("bpsc.json")).expect("json");
        let arrays = std::fs::read_to_string(a.join("slurm/arrays.tsv")).expect("arrays.tsv");
        let total: u64 = arrays.lines().filter(|l| !l.starts_with('#')).filter_map(|l| l.split('\t').nth(5)?.parse::<u64>().ok()).sum();
        assert_eq!(Some(total), meta["jobs"].as_u64(), "{name}: arrays.tsv does not cover every job once");
    }
}

#[test]
fn several_hosts_is_e801() {
    let out = tmp("e801");
    let (ok, err) = compile(&repo().join("examples/nightly_calib/nightly_calib.bps"), &out, &[]);
    assert!(!ok, "three hosts must not compile for Slurm");
    assert!(err.contains("E801") && err.contains("hosts") && err.contains("--nodelist") && err.contains("help:"), "{err}");
    assert!(!out.exists(), "nothing may be written on error");
}

#[test]
fn array_chunks_follow_max_array_size() {
    // 12 quanta, MaxArraySize 5: task ids 0..4 only, three chunks, and the aligned child
    // step uses aftercorr on each chunk.
    let dir = tmp("chunks-src");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(
        dir.join("c.bps"),
        r#"bps 1
site here { backend = slurm, shared_fs = true, max_array_size = 5 }
dimension n = 0..12
pipeline p {
  step a over (n) { outputs = [x], run = "true {outputs}" }
  step b over (n) { inputs = [x], outputs = [y], run = "true {outputs}" }
}
campaign "chunks" { use p, coverage = n, site = here, retries = 0 }
"#,
    )
    .expect("write");
    let out = tmp("chunks");
    let (ok, err) = compile(&dir.join("c.bps"), &out, &[]);
    assert!(ok, "{err}");
    let submit = std::fs::read_to_string(out.join("slurm/submit.sh")).expect("submit.sh");
    let subs: Vec<&str> = submit.lines().filter(|l| l.starts_with("sub J")).collect();
    assert_eq!(subs.len(), 6, "{submit}");
    for l in &subs {
        assert!(l.contains("--array=0-4 ") || l.contains("--array=0-1 "), "{l}");
    }
    assert_eq!(subs.iter().filter(|l| l.contains("aftercorr")).count(), 3, "{submit}");
    assert!(subs.iter().any(|l| l.ends_with("slurm/b.sbatch 10 0")), "{submit}");
}

/// Memory grows per attempt but never past the site's `max_memory`.
#[test]
fn memory_growth_stops_at_the_site_limit() {
    let d = std::env::temp_dir().join(format!("bpsc-slurm-cap-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(
        d.join("c.bps"),
        "bps 1\nsite hpc { backend = slurm, max_memory = 10GiB }\ndimension v = 0..2\npipeline p {\n  step a over (v) { run = \"true\", memory = 4GiB, retries = 3, memory_growth = 2.0 }\n}\ncampaign c {\n  use p\n  coverage = v\n  site = hpc\n}\n",
    )
    .unwrap();
    let c = bpsc::check::check(&bpsc::fs::RealFs, &d.join("c.bps"), &Default::default());
    assert!(!c.has_errors(), "{:#?}", c.diags.items);
    let ir = bpsc::lower::lower(&c, &Default::default()).ir.expect("lowers");
    let out = d.join("out");
    std::fs::create_dir_all(&out).unwrap();
    common::emit("slurm", &ir, &out).expect("slurm backend");
    let scripts: Vec<String> = common::list_files(&out).into_iter().filter(|f| f.ends_with(".sbatch")).collect();
    let text: String = scripts.iter().map(|f| std::fs::read_to_string(out.join(f)).unwrap()).collect();
    // 4 GiB, 8 GiB, then 16 and 32 GiB capped at 10 GiB.
    assert!(text.contains("BPSC_MEM_MB=(4096 8192 10240 10240)"), "{text}");
}
