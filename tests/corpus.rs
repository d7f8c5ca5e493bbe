//! Grammar, corpus and parser cannot drift apart silently:
//! - every `.bps` file under examples/ and tests/ goes through the parser; files outside
//!   tests/cases must parse without syntax diagnostics, and a case's syntax diagnostics must
//!   be exactly the E1xx lines of its `expect`;
//! - every keyword the parser accepts is spelled in grammar/bpsc.ebnf, and every terminal
//!   word of the grammar is accepted by the parser.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn bps_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            bps_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "bps") {
            out.push(p);
        }
    }
}

#[test]
fn every_bps_file_goes_through_the_parser() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    bps_files(&root.join("examples"), &mut files);
    bps_files(&root.join("tests"), &mut files);
    files.sort();
    assert!(files.len() >= 70, "only {} .bps files found", files.len());
    let mut problems = Vec::new();
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        let Ok(text) = String::from_utf8(bytes) else { continue }; // E403 cases
        let parsed = bpsc::syntax::parse(bpsc::source::FileId(0), &text);
        let got: BTreeSet<&str> = parsed.diags.iter().map(|d| d.code).filter(|c| c.starts_with("E1")).collect();
        let case_dir = f.parent().unwrap();
        let want: BTreeSet<String> =
            if case_dir.parent().is_some_and(|p| p.ends_with("tests/cases")) && f.file_name().is_some_and(|n| n == "main.bps") {
                std::fs::read_to_string(case_dir.join("expect"))
                    .unwrap_or_default()
                    .lines()
                    .filter(|l| l.contains("main.bps:"))
                    .filter_map(|l| l.split_whitespace().next())
                    .filter(|c| c.starts_with("E1"))
                    .map(|c| c.to_string())
                    .collect()
            } else if case_dir.ancestors().any(|p| p.ends_with("tests/cases")) {
                // Included files of a case: syntax errors only where the case expects them.
                std::fs::read_to_string(
                    case_dir.ancestors().find(|p| p.parent().is_some_and(|q| q.ends_with("tests/cases"))).unwrap().join("expect"),
                )
                .unwrap_or_default()
                .lines()
                .filter(|l| l.contains(&format!("{}:", f.file_name().unwrap().to_string_lossy())))
                .filter_map(|l| l.split_whitespace().next())
                .filter(|c| c.starts_with("E1"))
                .map(|c| c.to_string())
                .collect()
            } else {
                BTreeSet::new()
            };
        let got: BTreeSet<String> = got.into_iter().map(|s| s.to_string()).collect();
        if got != want {
            problems.push(format!("{}: syntax codes {:?}, expected {:?}", f.display(), got, want));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Words the parser gives a meaning to.
const PARSER_WORDS: &[&str] = &[
    "bps",
    "include",
    "defaults",
    "site",
    "dimension",
    "relation",
    "coverage",
    "dataset",
    "pipeline",
    "config",
    "extends",
    "step",
    "over",
    "after",
    "all",
    "campaign",
    "use",
    "with",
    "cluster",
    "notify",
    "env",
    "order",
    "before",
    "serial",
    "by",
    "where",
    "and",
    "or",
    "not",
    "in",
    "true",
    "false",
    "equal",
    "final",
    "subset",
];

#[test]
fn grammar_and_parser_agree_on_keywords() {
    let g = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("grammar/bpsc.ebnf")).unwrap();
    // Terminal words of the grammar, outside comments.
    let mut body = String::new();
    let mut depth = 0;
    let b = g.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"(*") {
            depth += 1;
            i += 2;
        } else if b[i..].starts_with(b"*)") && depth > 0 {
            depth -= 1;
            i += 2;
        } else {
            if depth == 0 {
                body.push(b[i] as char);
            }
            i += 1;
        }
    }
    let mut words = BTreeSet::new();
    for part in body.split('"').skip(1).step_by(2) {
        if part.chars().all(|c| c.is_ascii_lowercase() || c == '_') && !part.is_empty() {
            words.insert(part.to_string());
        }
    }
    let parser: BTreeSet<String> = PARSER_WORDS.iter().map(|s| s.to_string()).collect();
    // Single-letter terminals are duration units, not keywords.
    let words: BTreeSet<String> = words.into_iter().filter(|w| w.len() > 1).collect();
    assert_eq!(words, parser, "grammar terminals vs parser keywords");
    // And the parser really accepts each statement keyword: a file using them all parses.
    let src = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/brief.bps")).unwrap();
    let p = bpsc::syntax::parse(bpsc::source::FileId(0), &src);
    assert!(p.diags.is_empty(), "{:#?}", p.diags);
}

#[test]
fn the_language_1_1_fixture_checks_clean_with_every_feature_in_the_model() {
    use bpsc::check::model::FinalWhen;
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1_1.bps");
    let env: std::collections::BTreeMap<String, String> =
        [("HOME", "/home/ops"), ("SLURM_CONF", "/etc/slurm.conf"), ("DRP_PIPE_DIR", "/opt/drp")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    let opts = bpsc::check::Options { sets: Vec::new(), env: Some(env), allow_unknown_steps: false, keep_tables: false };
    let c = bpsc::check::check(&bpsc::fs::RealFs, &path, &opts);
    assert!(c.diags.items.is_empty(), "{}", bpsc::diag::render::render_human(&c.program.map, &c.diags.items, false));
    let m = &c.model;
    assert!(m.equal_dims.same("visit", "exposure"));
    let camp = &m.campaigns[0];
    let cl = &camp.clusters[0];
    assert_eq!((cl.split_by[0].name.as_str(), cl.max_quanta.map(|q| q.0), cl.max_running.map(|q| q.0)), ("visit", Some(60), Some(20)));
    assert_eq!(camp.final_job.as_ref().map(|f| f.when), Some(FinalWhen::Always));
    assert_eq!(m.pipelines[0].subset("single_frame").map(|s| s.steps.len()), Some(2));
    assert_eq!(c.passed_env.len(), 3, "every pass_env name captured: {:?}", c.passed_env);
    let p = &m.pipelines[0];
    let st = bpsc::check::resolve::resolve_step(m, Some(camp), p, &p.steps[0], &c.sets);
    assert_eq!(st.pass_env(), ["HOME", "SLURM_CONF", "DRP_PIPE_DIR"]);
    assert_eq!(st.size("max_memory"), Some(64 << 30));
}
