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
/// cannot be expressed in Slurm, and special_programs spans two Slurm clusters: E801, tested
/// below).
const EXAMPLES: &[(&str, &str, &[&str])] = &[
    ("drp", "examples/drp/drp.bps", &[]),
    ("nightly_calib", "examples/nightly_calib/nightly_calib.bps", &["--set", "hosts=[\"sdfrome041\"]"]),
    ("afterburner", "examples/afterburner/afterburner.bps", &[]),
    // Two facilities: one submission per site (E801 otherwise, tested below).
    ("special_programs_in2p3", "examples/special_programs/special_programs.bps", &["--steps", "main_drp.isr,main_drp.calibrate"]),
    (
        "special_programs_s3df",
        "examples/special_programs/special_programs.bps",
        &["--steps", "main_drp.make_warp,main_drp.assemble_coadd,ddf.assemble_coadd,ddf.subtract_template,ddf.associate"],
    ),
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

/// S1: apptainer reads an image without a scheme as a local file, so a registry reference
/// reaches `apptainer exec` as `docker://...`; a `.sif` path stays as written.
#[test]
fn container_images_reach_apptainer_with_a_scheme() {
    let out = tmp("afterburner-image");
    let (ok, err) = compile(&repo().join("examples/afterburner/afterburner.bps"), &out, &[]);
    assert!(ok, "{err}");
    let scripts: String = common::list_files(&out)
        .into_iter()
        .filter(|f| f.ends_with(".sbatch"))
        .map(|f| std::fs::read_to_string(out.join(f)).expect("read"))
        .collect();
    assert!(scripts.contains("BPSC_CONTAINER=docker://ghcr.io/lsst/scipipe:al9-w_2024_48\n"), "{scripts}");
    assert!(!scripts.contains("BPSC_CONTAINER=ghcr.io"), "a bare registry reference reached apptainer");
    let out = tmp("afterburner-sif");
    let (ok, err) = compile(
        &repo().join("examples/afterburner/afterburner.bps"),
        &out,
        &["--set", "software=container(\"/cvmfs/unpacked.example.org/scipipe.sif\")"],
    );
    assert!(ok, "{err}");
    let scripts: String = common::list_files(&out)
        .into_iter()
        .filter(|f| f.ends_with(".sbatch"))
        .map(|f| std::fs::read_to_string(out.join(f)).expect("read"))
        .collect();
    assert!(scripts.contains("BPSC_CONTAINER=/cvmfs/unpacked.example.org/scipipe.sif\n"), "{scripts}");
}

fn write_campaign(name: &str, text: &str) -> PathBuf {
    let dir = tmp(&format!("{name}-src"));
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("c.bps"), text).expect("write");
    dir.join("c.bps")
}

fn slurm_text(out: &Path, file: &str) -> String {
    std::fs::read_to_string(out.join("slurm").join(file)).unwrap_or_else(|e| panic!("slurm/{file}: {e}"))
}

/// S2: special_programs runs at two facilities (IN2P3 and S3DF): one submit.sh cannot reach
/// both controllers.  E801 at compile time and from `bpsc check --backend slurm`, naming
/// both ways out; with one `controller` for both sites it compiles.
#[test]
fn sites_at_two_controllers_are_e801() {
    let out = tmp("two-controllers");
    let (ok, err) = compile(&repo().join("examples/special_programs/special_programs.bps"), &out, &[]);
    assert!(!ok, "two facilities must not compile into one Slurm submission");
    assert!(err.contains("E801") && err.contains("several Slurm clusters") && err.contains("`in2p3`") && err.contains("`s3df`"), "{err}");
    assert!(err.contains("--steps") && err.contains("controller = \"NAME\""), "the help names both alternatives: {err}");
    assert!(!out.exists(), "nothing may be written on error");
    let o = Command::new(env!("CARGO_BIN_EXE_bpsc"))
        .args(["check", "--backend", "slurm"])
        .arg(repo().join("examples/special_programs/special_programs.bps"))
        .output()
        .expect("bpsc check");
    let text = String::from_utf8_lossy(&o.stderr).into_owned() + &String::from_utf8_lossy(&o.stdout);
    assert!(!o.status.success() && text.contains("E801") && text.contains("several Slurm clusters"), "{text}");
    // Two sites of one controller (partitions of one cluster) share a submission.
    let f = write_campaign(
        "one-controller",
        r#"bps 1.1
site milano { backend = slurm, controller = "s3df", partition = "milano" }
site roma { backend = slurm, controller = "s3df", partition = "roma" }
dimension n = 0..3
pipeline p {
  step a over (n) { outputs = [x], run = "true {outputs}", site = milano }
  step b over (n) { inputs = [x], outputs = [y], run = "true {outputs}", site = roma }
}
campaign "c" { use p, coverage = n, retries = 0 }
"#,
    );
    let out = tmp("one-controller");
    let (ok, err) = compile(&f, &out, &[]);
    assert!(ok, "{err}");
    assert!(slurm_text(&out, "a.sbatch").contains("#SBATCH --partition=milano\n"));
    assert!(slurm_text(&out, "b.sbatch").contains("#SBATCH --partition=roma\n"));
    // Without the controller, the same campaign is refused.
    let f = write_campaign("two-sites", &std::fs::read_to_string(&f).expect("read").replace(", controller = \"s3df\"", ""));
    let (ok, err) = compile(&f, &tmp("two-sites"), &[]);
    assert!(!ok && err.contains("E801") && err.contains("`milano`") && err.contains("`roma`"), "{err}");
}

/// S4: `max_running = N` holds over every array of a step: shares that add up to N, or
/// `%1` lanes when the step has more than N arrays.
#[test]
fn max_running_is_split_over_the_arrays_of_a_step() {
    let f = write_campaign(
        "throttle",
        r#"bps 1.1
site here { backend = slurm, max_array_size = 4 }
dimension n = 0..20
dimension m = 0..12
pipeline p {
  step wide over (n) { outputs = [w], run = "true {outputs}", max_running = 3 }
  step narrow over (m) { outputs = [x], run = "true {outputs}", max_running = 7 }
  step one over (m) { outputs = [y], run = "true {outputs}", max_running = 40 }
}
campaign "c" { use p, coverage = n * m, site = here, retries = 0 }
"#,
    );
    let out = tmp("throttle");
    let (ok, err) = compile(&f, &out, &[]);
    assert!(ok, "{err}");
    let submit = slurm_text(&out, "submit.sh");
    let lines = |script: &str| -> Vec<String> {
        submit.lines().filter(|l| l.starts_with("sub J") && l.contains(script)).map(str::to_string).collect()
    };
    let share = |l: &str| -> u32 {
        l.split("--array=")
            .nth(1)
            .and_then(|x| x.split_whitespace().next())
            .and_then(|x| x.split('%').nth(1))
            .and_then(|x| x.parse().ok())
            .expect("a %n throttle")
    };
    // wide: 5 arrays > 3: %1 each, arrays 4 and 5 wait for arrays 1 and 2.
    let wide = lines("slurm/wide.sbatch");
    assert_eq!(wide.len(), 5, "{submit}");
    assert!(wide.iter().all(|l| share(l) == 1), "{wide:?}");
    let var = |l: &str| l.split_whitespace().nth(1).expect("var").to_string();
    assert!(
        wide[3].contains(&format!("afterany:${{{}}}", var(&wide[0]))) && wide[4].contains(&format!("afterany:${{{}}}", var(&wide[1]))),
        "{wide:?}"
    );
    assert!(!wide[2].contains("afterany"), "{wide:?}");
    // narrow: 3 arrays of 4 <= 7: shares 3 + 2 + 2.
    let narrow = lines("slurm/narrow.sbatch");
    let shares: Vec<u32> = narrow.iter().map(|l| share(l)).collect();
    assert_eq!(shares.iter().sum::<u32>(), 7, "{narrow:?}");
    assert!(shares.iter().all(|&s| s <= 4) && narrow.iter().all(|l| !l.contains("afterany")), "{narrow:?}");
    // one: more than the step's 12 jobs: each array at most its size, no lanes.
    let one = lines("slurm/one.sbatch");
    assert!(one.iter().all(|l| share(l) == 4), "{one:?}");
}

/// S3: a campaign larger than its site's `max_submit` is cut into waves of at most that many
/// jobs; a smaller one is submitted at once as before.
#[test]
fn campaigns_larger_than_max_submit_go_in_waves() {
    let text = |limit: &str| {
        format!(
            r#"bps 1.1
site here {{ backend = slurm, shared_fs = true{limit} }}
dimension n = 0..40
pipeline p {{
  step a over (n) {{ outputs = [x], run = "true {{outputs}}" }}
  step b over (n) {{ inputs = [x], outputs = [y], run = "true {{outputs}}" }}
  step c over () {{ inputs = [y], outputs = [z], run = "true {{outputs}}" }}
}}
campaign "c" {{ use p, coverage = n, site = here, retries = 0 }}
"#
        )
    };
    let out = tmp("no-waves");
    assert!(compile(&write_campaign("no-waves", &text("")), &out, &[]).0);
    let submit = slurm_text(&out, "submit.sh");
    assert!(!submit.contains("bpsc_wave_") && !submit.contains("bpsc_feed"), "82 jobs fit the default 10000");
    assert!(submit.contains("--export=\"$BPSC_EXPORT\""), "{submit}");
    let out = tmp("waves");
    let (ok, err) = compile(&write_campaign("waves", &text(", max_submit = 40")), &out, &[]);
    assert!(ok, "{err}");
    let submit = slurm_text(&out, "submit.sh");
    let sizes: Vec<usize> = submit
        .lines()
        .find_map(|l| l.strip_prefix("BPSC_WAVE_SIZE=(0 "))
        .expect("wave sizes")
        .trim_end_matches(')')
        .split(' ')
        .map(|x| x.parse().expect("size"))
        .collect();
    assert!(sizes.len() >= 3 && sizes.iter().all(|&n| n > 0 && n <= 40), "{sizes:?}");
    let meta: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("bpsc.json")).expect("bpsc.json")).expect("json");
    // Every job but the provenance job (submitted by the feeder) is in exactly one wave.
    assert_eq!(sizes.iter().sum::<usize>() as u64 + 1, meta["jobs"].as_u64().expect("jobs"), "{sizes:?}");
    for k in 1..=sizes.len() {
        assert!(submit.contains(&format!("bpsc_wave_{k}() {{\n")), "wave {k}");
    }
    // No array is larger than a wave; arrays with parents check their parents' records.
    for l in submit.lines().filter(|l| l.trim_start().starts_with("sub J")) {
        let spec = l.split("--array=").nth(1).and_then(|x| x.split_whitespace().next()).expect("array");
        let n: usize = spec
            .split(',')
            .map(|r| r.split_once('-').map_or(1, |(a, b)| b.parse::<usize>().unwrap() - a.parse::<usize>().unwrap() + 1))
            .sum();
        assert!(n <= 40, "{l}");
        if l.contains("--dependency") {
            assert!(l.ends_with(" 1"), "a child in waves checks its parents: {l}");
        }
    }
    let st = Command::new("bash").arg("-n").arg(out.join("slurm/submit.sh")).status().expect("bash");
    assert!(st.success(), "submit.sh with waves is not valid bash");
}
