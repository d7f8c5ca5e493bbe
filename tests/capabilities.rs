//! The engines' capability tables: every setting an engine cannot express is a coded
//! diagnostic at the place the setting is written (W801 when the campaign still runs
//! correctly without it, E801 when it would not), from `bpsc check --backend B` and from
//! `bpsc compile`; and backends/README.md shows the whole table as the code has it.

mod common;

use std::path::Path;
use std::process::Command;

fn bpsc(args: &[&str], dir: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_bpsc")).args(args).current_dir(dir).output().expect("bpsc runs")
}

/// (code, line, column) of every diagnostic `bpsc check --backend B --format json` gives.
fn check_json(dir: &Path, file: &str, backend: &str) -> (i32, Vec<(String, u64, u64, String)>) {
    let o = bpsc(&["check", file, "--backend", backend, "--format", "json"], dir);
    let mut v = Vec::new();
    for line in String::from_utf8_lossy(&o.stdout).lines() {
        let d: serde_json::Value = serde_json::from_str(line).expect("JSON line");
        v.push((
            d["code"].as_str().unwrap_or("").to_string(),
            d["start"]["line"].as_u64().unwrap_or(0),
            d["start"]["column"].as_u64().unwrap_or(0),
            d["message"].as_str().unwrap_or("").to_string(),
        ));
    }
    (o.status.code().unwrap_or(-1), v)
}

const CAMPAIGN: &str = r#"bps 1
defaults {
  retry_unless_exit = [2]
  memory_growth     = 2.0
}
site s { backend = slurm, partition = "roma" }
dimension detector = 0..4
pipeline calib {
  step bias over (detector) {
    run      = "make_bias {detector}"
    priority = 10
    qos      = "high"
  }
}
campaign nightly {
  use calib
  coverage = detector
  order    = depth_first
}
"#;

#[test]
fn every_silent_drop_is_a_warning_at_its_setting() {
    let d = common::fresh("caps-drops");
    std::fs::write(d.join("c.bps"), CAMPAIGN).unwrap();
    // (backend, the W801s expected: line, column, a word of the message)
    let want: &[(&str, &[(u64, u64, &str)])] = &[
        ("htcondor", &[(6, 27, "`partition / queue`"), (12, 5, "`qos`")]),
        ("nextflow", &[(11, 5, "`priority (step)`"), (18, 3, "`order`")]),
        // retry_unless_exit: bpsc's POST script (RETRY N UNLESS-EXIT 2); memory_growth only at
        // HTCondor sites, and `s` is a Slurm site (Pegasus's glite style).
        ("pegasus", &[(4, 3, "`memory_growth`")]),
        ("pegasus-dax", &[(4, 3, "`memory_growth`")]),
        ("slurm", &[]),
    ];
    for (backend, expected) in want {
        let (code, got) = check_json(&d, "c.bps", backend);
        assert_eq!(code, 0, "{backend}: warnings do not fail a check: {got:?}");
        let w801: Vec<_> = got.iter().filter(|x| x.0 == "W801").collect();
        assert_eq!(w801.len(), expected.len(), "{backend}: {got:?}");
        for (line, col, word) in *expected {
            assert!(
                w801.iter().any(|x| x.1 == *line && x.2 == *col && x.3.contains(word) && x.3.contains(backend.trim_end_matches("-dax"))),
                "{backend}: no W801 for {word} at {line}:{col} in {got:?}"
            );
        }
        // --deny warnings makes them fail CI.
        let o = bpsc(&["check", "c.bps", "--backend", backend, "--deny", "warnings"], &d);
        assert_eq!(o.status.code(), Some(if expected.is_empty() { 0 } else { 1 }), "{backend}");
    }
    // Without --backend the checker says nothing about engines.
    let o = bpsc(&["check", "c.bps", "--format", "json"], &d);
    assert_eq!(o.status.code(), Some(0));
    assert!(!String::from_utf8_lossy(&o.stdout).contains("W801"));
}

#[test]
fn compile_reports_the_same_warnings_and_still_writes() {
    let d = common::fresh("caps-compile");
    std::fs::write(d.join("c.bps"), CAMPAIGN).unwrap();
    let o = bpsc(&["compile", "c.bps", "--backend", "nextflow", "-o", "out"], &d);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("W801") && err.contains("ignores `order`"), "{err}");
    assert!(d.join("out/main.nf").is_file());
}

#[test]
fn a_refused_setting_stops_compile_before_anything_is_written() {
    let d = common::fresh("caps-refused");
    let text = CAMPAIGN.replace("    qos      = \"high\"", "    hosts    = [\"node01\", \"node02\"]");
    std::fs::write(d.join("c.bps"), text).unwrap();
    let (code, got) = check_json(&d, "c.bps", "slurm");
    assert_eq!(code, 1, "{got:?}");
    assert!(got.iter().any(|x| x.0 == "E801" && x.1 == 12 && x.2 == 5 && x.3.contains("hosts (several)")), "{got:?}");
    let o = bpsc(&["compile", "c.bps", "--backend", "slurm", "-o", "out"], &d);
    assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("E801"));
    let left: Vec<_> = std::fs::read_dir(&d).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(left, vec!["c.bps".to_string()], "nothing written, no temporary left");
    // HTCondor can: any of the hosts.
    let (code, got) = check_json(&d, "c.bps", "htcondor");
    assert!(code == 0 && !got.iter().any(|x| x.0 == "E801"), "{got:?}");
}

#[test]
fn readme_table_is_the_code_table() {
    let path = common::repo().join("backends/README.md");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let (begin, end) = ("<!-- capability table: generated from src/backend/*/caps.rs -->\n", "<!-- end of capability table -->");
    let table = bpsc::backend::caps::markdown_table();
    if std::env::var_os("BPSC_UPDATE_README").is_some() {
        let (a, rest) = text.split_once(begin).expect("begin marker");
        let (_, b) = rest.split_once(end).expect("end marker");
        std::fs::write(&path, format!("{a}{begin}{table}{end}{b}")).unwrap();
        return;
    }
    let got = text.split_once(begin).and_then(|(_, r)| r.split_once(end)).map(|(t, _)| t).unwrap_or("");
    assert_eq!(got, table, "backends/README.md is out of date: run BPSC_UPDATE_README=1 cargo test --test capabilities readme");
}
