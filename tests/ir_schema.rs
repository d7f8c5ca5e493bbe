//! Every example's IR validates against backends/ir/ir-v2.schema.json, checked with a
//! real JSON Schema validator (Python `jsonschema`; tests/run.sh installs it).  Under CI a
//! missing validator fails the test; elsewhere the test says loudly that it did not run.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

const VALIDATE: &str = r##"
import json, sys
from jsonschema import Draft202012Validator
schema = json.load(open(sys.argv[1]))
header_schema = dict(schema); header_schema["$ref"] = "#/$defs/header"
job_schema = dict(schema); job_schema["$ref"] = "#/$defs/job"
hv, jv = Draft202012Validator(header_schema), Draft202012Validator(job_schema)
bad = 0
lines = sys.stdin.read().splitlines()
shapes = 0
for i, line in enumerate(lines):
    v = hv if i == 0 else jv
    obj = json.loads(line)
    for e in v.iter_errors(obj):
        bad += 1
        if bad < 10:
            print(f"line {i+1}: {e.message} at {list(e.path)}")
    # What a schema cannot say: a job's resources index points into the header's list.
    if i == 0:
        shapes = len(obj.get("resources", []))
    elif isinstance(obj.get("resources"), int) and obj["resources"] >= shapes:
        bad += 1
        print(f"line {i+1}: resources {obj['resources']} is not an index into the header's {shapes}")
print(f"checked {len(lines)} lines, {bad} errors")
sys.exit(1 if bad else 0)
"##;

fn python() -> Option<String> {
    for c in [std::env::var("BPSC_PYTHON").ok(), Some("python3".to_string())].into_iter().flatten() {
        if Command::new(&c).args(["-c", "import jsonschema"]).output().is_ok_and(|o| o.status.success()) {
            return Some(c);
        }
    }
    None
}

#[test]
fn example_irs_validate_against_the_schema() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let Some(py) = python() else {
        let msg = "IR schema validation NOT RUN: no python3 with jsonschema (tests/run.sh installs one; or set BPSC_PYTHON)";
        assert!(std::env::var("CI").is_err(), "{msg}");
        eprintln!("{msg}");
        return;
    };
    for ex in ["drp/drp.bps", "nightly_calib/nightly_calib.bps", "afterburner/afterburner.bps", "special_programs/special_programs.bps"] {
        let c = bpsc::check::check(&bpsc::fs::RealFs, &root.join("examples").join(ex), &Default::default());
        let l = bpsc::lower::lower(&c, &Default::default());
        let ir = l.ir.expect("lowers");
        let mut text = Vec::new();
        bpsc::ir::jsonl::write_ir_jsonl(&ir, &mut text).unwrap();
        let mut child = Command::new(&py)
            .arg("-c")
            .arg(VALIDATE)
            .arg(root.join("backends/ir/ir-v2.schema.json"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&text).unwrap();
        let out = child.wait_with_output().unwrap();
        let s = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{ex}: {s}");
        assert!(s.contains(&format!("checked {} lines, 0 errors", ir.jobs.len() + 1)), "{ex}: {s}");
    }
}

#[test]
fn job_lines_come_parents_first() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let c = bpsc::check::check(&bpsc::fs::RealFs, &root.join("examples/special_programs/special_programs.bps"), &Default::default());
    let ir = bpsc::lower::lower(&c, &Default::default()).ir.unwrap();
    let mut text = Vec::new();
    bpsc::ir::jsonl::write_ir_jsonl(&ir, &mut text).unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for line in String::from_utf8(text).unwrap().lines().skip(1) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        for p in v["parents"].as_array().unwrap() {
            assert!(seen.contains(p.as_str().unwrap()), "{} before its parent {p}", v["id"]);
        }
        seen.insert(v["id"].as_str().unwrap().to_string());
    }
    assert_eq!(seen.len(), ir.jobs.len());
}
