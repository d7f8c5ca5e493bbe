//! One directory per case under `tests/cases/`: `main.bps` (plus any files it includes or
//! reads), `expect` listing the diagnostics it must produce, and optionally `args` (one
//! `--set KEY=VALUE` per line; `--env NAME=VALUE` lines give the submitting environment that
//! `pass_env` is checked against, and a bare `--env` an empty one).  Each `expect` line is
//!
//! ```text
//! CODE FILE:LINE:COL-LINE:COL
//! ```
//!
//! giving the code and the exact primary span (1-based, columns in characters; the end is
//! exclusive).  The set of produced (code, span) pairs must equal the expected set: a case
//! fails on a missing diagnostic, an extra one, or a span on the wrong token.  `expect`
//! holding only `clean` means no diagnostics at all.  The rendered output of every case is
//! also snapshotted (source and diagnostics together) under `snapshots/`.

use std::path::{Path, PathBuf};

use bpsc::check::{check, Options};
use bpsc::fs::RealFs;

fn case_dirs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("tests/cases exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("main.bps").exists())
        .collect();
    v.sort();
    v
}

fn produced(dir: &Path) -> (Vec<String>, String, String) {
    let arg_text = std::fs::read_to_string(dir.join("args")).unwrap_or_default();
    let args: Vec<String> = arg_text.lines().filter_map(|l| l.trim().strip_prefix("--set ").map(|s| s.trim().to_string())).collect();
    let env_lines: Vec<&str> = arg_text.lines().filter_map(|l| l.trim().strip_prefix("--env")).collect();
    let env = (!env_lines.is_empty())
        .then(|| env_lines.iter().filter_map(|l| l.trim().split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect());
    let cwd_rel =
        |p: &Path| p.strip_prefix(dir).map(|x| x.to_string_lossy().into_owned()).unwrap_or_else(|_| p.to_string_lossy().into_owned());
    let allow_unknown_steps = arg_text.lines().any(|l| l.trim() == "--allow-unknown-steps");
    let c = check(&RealFs, &dir.join("main.bps"), &Options { sets: args, env, allow_unknown_steps, keep_tables: false });
    let mut got = Vec::new();
    for d in &c.diags.items {
        let line = match &d.primary {
            Some(p) => {
                let f = c.program.map.get(p.loc.file);
                let a = f.position(p.loc.span.lo);
                let b = f.position(p.loc.span.hi);
                format!("{} {}:{}:{}-{}:{}", d.code, cwd_rel(&f.path), a.line, a.column, b.line, b.column)
            }
            None => format!("{} -", d.code),
        };
        got.push(line);
    }
    got.sort();
    let rendered = bpsc::diag::render::render_human(&c.program.map, &c.diags.items, false);
    let rendered = rendered.replace(&format!("{}/", dir.display()), "");
    let source = std::fs::read_to_string(dir.join("main.bps")).unwrap_or_default();
    (got, rendered, source)
}

#[test]
fn every_case_produces_exactly_its_expected_diagnostics() {
    let dirs = case_dirs();
    assert!(dirs.len() >= 60, "expected at least 60 cases, found {}", dirs.len());
    let mut failures = Vec::new();
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let expect = std::fs::read_to_string(dir.join("expect")).unwrap_or_else(|_| panic!("{name}: missing expect file"));
        let mut want: Vec<String> = expect.lines().map(|l| l.trim().to_string()).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
        if want == ["clean"] {
            want.clear();
        }
        want.sort();
        let (got, rendered, source) = produced(dir);
        if got != want {
            failures.push(format!("--- {name}\nexpected:\n  {}\ngot:\n  {}\nrendered:\n{rendered}", want.join("\n  "), got.join("\n  ")));
        }
        insta::with_settings!({
            snapshot_path => Path::new(env!("CARGO_MANIFEST_DIR")).join("snapshots/cases"),
            prepend_module_to_snapshot => false,
            omit_expression => true,
            description => format!("tests/cases/{name}"),
        }, {
            insta::assert_snapshot!(name.clone(), format!("{source}\n----- bpsc check -----\n{rendered}"));
        });
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), dirs.len(), failures.join("\n"));
}

#[test]
fn every_error_and_warning_code_has_a_case() {
    let mut seen = std::collections::BTreeSet::new();
    for dir in case_dirs() {
        for l in std::fs::read_to_string(dir.join("expect")).unwrap_or_default().lines() {
            if let Some(code) = l.split_whitespace().next() {
                seen.insert(code.to_string());
            }
        }
    }
    let missing: Vec<&str> = bpsc::diag::codes::CODES
        .iter()
        .map(|c| c.code)
        // Backend codes (E8xx/W8xx: tests/capabilities.rs and the backend tests), the codes of
        // operations on a submitted campaign (E9xx: tests/operate.rs, the engines' ops.rs and
        // tests/explain.rs), the output-write error E409 (tests/cli.rs) and the lowering
        // warning W506 (tests/lowering.rs) are not checker cases.
        .filter(|c| {
            !c.starts_with("E8")
                && !c.starts_with("W8")
                && !c.starts_with("E9")
                && !matches!(*c, "E409" | "E504" | "W506" | "E701" | "W701")
        })
        .filter(|c| !seen.contains(*c))
        .collect();
    assert!(missing.is_empty(), "codes without a test case: {missing:?}");
}
