//! The command line, end to end through the real binary: exit statuses, output formats,
//! `--deny warnings`, `config --explain`, atomic output directories, and hostile data IDs
//! that must neither escape a path nor execute.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bpsc(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bpsc")).args(args).current_dir(cwd).env("NO_COLOR", "1").output().expect("run bpsc")
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("bpsc-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[test]
fn exit_status_is_0_clean_1_errors_2_usage() {
    let r = repo();
    let o = bpsc(&["check", "examples/drp/drp.bps", "examples/afterburner/afterburner.bps"], &r);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = bpsc(&["check", "tests/cases/e201_undefined_step_in_after/main.bps"], &r);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("E201"));
    let o = bpsc(&["check", "no/such/file.bps"], &r);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("cannot read"), "{}", text(&o));
    let o = bpsc(&["check"], &r);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn deny_warnings_turns_warnings_into_failures() {
    let d = tmp("deny");
    std::fs::write(
        d.join("c.bps"),
        "bps 1\ndimension visit = 1..3\ndimension band = [\"g\"]\npipeline p { step a over (visit) { run = \"true\" } }\ncampaign c {\n  use p\n  coverage = visit\n}\n",
    )
    .unwrap();
    let o = bpsc(&["check", "c.bps"], &d);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("W201"));
    let o = bpsc(&["check", "c.bps", "--deny", "warnings"], &d);
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn json_sarif_and_junit_outputs_are_machine_readable() {
    let r = repo();
    let case = "tests/cases/e103_size_with_space/main.bps";
    let o = bpsc(&["check", case, "--format", "json"], &r);
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(!lines.is_empty());
    let d = &lines[0];
    assert_eq!(d["code"], "E103");
    assert!(d["file"].as_str().unwrap().ends_with("main.bps"));
    for k in ["line", "column", "column_utf16"] {
        assert!(d["start"][k].as_u64().unwrap() >= 1, "{d}");
    }
    assert!(d["range"]["end"].as_u64() > d["range"]["start"].as_u64());
    let o = bpsc(&["check", case, "examples/drp/drp.bps", "--format", "sarif"], &r);
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(s["version"], "2.1.0");
    assert_eq!(s["runs"][0]["results"][0]["ruleId"], "E103");
    let o = bpsc(&["check", case, "examples/drp/drp.bps", "--format", "junit"], &r);
    let x = String::from_utf8_lossy(&o.stdout);
    assert!(x.contains("<testsuites") && x.contains("tests=\"2\"") && x.contains("failures=\"1\""), "{x}");
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn config_resolves_through_the_scope_chain_and_explains_it() {
    let r = repo();
    let o = bpsc(&["config", "examples/drp/drp.bps", "--explain", "assemble_coadd.memory"], &r);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    let lines: Vec<&str> = t.lines().collect();
    assert!(lines[0].ends_with("= 24GiB"), "{t}");
    assert!(lines[1].contains("campaign override of assemble_coadd") && lines[1].contains("drp.bps:"), "{t}");
    assert!(t.contains("(overridden)") && t.contains("built-in"), "{t}");
    // --set wins over everything and is reported as such.
    let o = bpsc(&["config", "examples/drp/drp.bps", "--explain", "assemble_coadd.memory", "--set", "assemble_coadd.memory=32GiB"], &r);
    let t = text(&o);
    assert!(t.lines().next().unwrap().ends_with("= 32GiB") && t.contains("--set assemble_coadd.memory=32GiB"), "{t}");
    let o = bpsc(&["config", "examples/drp/drp.bps", "--format", "json"], &r);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let steps = v["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 10);
    let coadd = steps.iter().find(|s| s["step"] == "assemble_coadd").unwrap();
    assert_eq!(coadd["settings"]["memory"]["value"], 24u64 << 30);
    assert_eq!(coadd["settings"]["memory"]["origin"]["scope"], "campaign step override");
}

#[test]
fn compile_writes_atomically_and_never_overwrites_without_force() {
    let d = tmp("atomic");
    let out = d.join("submit");
    let file = repo().join("examples/afterburner/afterburner.bps");
    let f = file.to_str().unwrap();
    let o = bpsc(&["compile", f, "--emit", "ir", "-o", out.to_str().unwrap()], &d);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let first = std::fs::read(out.join("ir.jsonl")).unwrap();
    std::fs::write(out.join("operator-notes.txt"), "keep me").unwrap();
    let o = bpsc(&["compile", f, "--emit", "ir", "-o", out.to_str().unwrap()], &d);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("--force"), "{}", text(&o));
    assert!(out.join("operator-notes.txt").exists(), "existing directory touched without --force");
    let o = bpsc(&["compile", f, "--emit", "ir", "-o", out.to_str().unwrap(), "--force"], &d);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(std::fs::read(out.join("ir.jsonl")).unwrap(), first, "same campaign, same bytes");
    assert!(!out.join("operator-notes.txt").exists());
    // A failing compile leaves nothing behind: no target, no temporary directory.
    let bad = d.join("bad");
    let o = bpsc(
        &[
            "compile",
            repo().join("tests/cases/e201_undefined_step_in_after/main.bps").to_str().unwrap(),
            "--emit",
            "ir",
            "-o",
            bad.to_str().unwrap(),
        ],
        &d,
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(!bad.exists());
    let leftovers: Vec<_> =
        std::fs::read_dir(&d).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().contains("bpsc-tmp")).collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

const HOSTILE: &[&str] = &["../../etc", "$(rm -rf ~)", "it's", "say \"hi\"", "a b", "`id`", "x;touch PWNED", "/abs/path", "-rf", ""];

/// A campaign whose data IDs are hostile strings, run through the generated commands.
#[test]
fn hostile_data_ids_neither_escape_nor_execute() {
    let d = tmp("hostile");
    let mut csv = String::from("visit,label\n");
    for (i, h) in HOSTILE.iter().enumerate().filter(|(_, h)| !h.is_empty()) {
        csv.push_str(&format!("{i},\"{}\"\n", h.replace('"', "\"\"")));
    }
    std::fs::write(d.join("labels.csv"), csv).unwrap();
    std::fs::write(
        d.join("c.bps"),
        "bps 1\nrelation lab(visit, label) = table(\"labels.csv\")\ndataset out(visit, label) { persist = scratch }\npipeline p {\n  step a over (visit, label) {\n    outputs = [out]\n    run = \"printf '%s\\\\n' {label} > {outputs}; printf 'q=%s\\\\n' \\\"{label}\\\" >> {outputs}; echo '{label}' >> {outputs}\"\n  }\n}\ncampaign c {\n  use p\n  coverage = lab\n}\n",
    )
    .unwrap();
    let o = bpsc(&["compile", "c.bps", "--emit", "ir", "-o", "ir"], &d);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let ir = std::fs::read_to_string(d.join("ir/ir.jsonl")).unwrap();
    let scratch = d.join("scratch");
    let mut n = 0;
    for line in ir.lines().skip(1) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        if v["kind"] != "compute" {
            continue;
        }
        let id = v["id"].as_str().unwrap();
        assert!(id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'), "{id}");
        let q = &v["quanta"][0];
        let label = q["data_id"]["label"].as_str().unwrap().to_string();
        let path = q["outputs"][0]["path"].as_str().unwrap().replace("${BPSC_SCRATCH}", scratch.to_str().unwrap());
        assert!(!path[scratch.to_str().unwrap().len()..].contains(".."), "{path}");
        std::fs::create_dir_all(Path::new(&path).parent().unwrap()).unwrap();
        let st = Command::new("bash")
            .arg("-c")
            .arg(q["command"].as_str().unwrap())
            .env("BPSC_SCRATCH", &scratch)
            .current_dir(&d)
            .status()
            .unwrap();
        assert!(st.success(), "{}", q["command"]);
        let got = std::fs::read_to_string(&path).unwrap();
        assert_eq!(got, format!("{label}\nq={label}\n{label}\n"), "command {}", q["command"]);
        assert!(Path::new(&path).starts_with(&scratch));
        n += 1;
    }
    assert_eq!(n, HOSTILE.len() - 1);
    assert!(!d.join("PWNED").exists(), "a data ID executed");
}

/// A table with CR-only line endings (classic Mac, some spreadsheet exports) checks and
/// compiles alike: one CSV reader serves the checker and lowering.  A broken table is
/// reported the same way by both, with a diagnostic, never a Rust debug dump.
#[test]
fn cr_only_tables_check_and_compile_alike_and_errors_are_diagnostics() {
    let d = tmp("cr-table");
    std::fs::write(d.join("exposures.csv"), "visit,band\r903334,r\r903336,g\r").unwrap();
    std::fs::write(
        d.join("c.bps"),
        "bps 1\nrelation exposure(visit, band) = table(\"exposures.csv\")\npipeline p { step a over (visit, band) { run = \"echo {visit} {band}\" } }\ncampaign c {\n  use p\n  coverage = exposure\n}\n",
    )
    .unwrap();
    let o = bpsc(&["check", "c.bps"], &d);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = bpsc(&["compile", "c.bps", "--emit", "ir", "-o", "ir"], &d);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let ir = std::fs::read_to_string(d.join("ir/ir.jsonl")).unwrap();
    assert!(ir.contains("903334") && ir.contains("903336"), "{ir}");
    // A broken CR-only table: the same E406 from check and from compile.
    std::fs::write(d.join("exposures.csv"), "visit,band\r903334,r\r903336\r").unwrap();
    let check = bpsc(&["check", "c.bps"], &d);
    let compile = bpsc(&["compile", "c.bps", "--emit", "ir", "-o", "ir2"], &d);
    for o in [&check, &compile] {
        let t = text(o);
        assert_eq!(o.status.code(), Some(1), "{t}");
        assert!(t.contains("E406") && t.contains("row 3 has 1 fields, the header has 2"), "{t}");
        for debug in ["Some(", "CsvError", "kind:", "MissingColumn", "FieldCount {"] {
            assert!(!t.contains(debug), "Rust debug text `{debug}` reached the user:\n{t}");
        }
    }
}
