//! The parser and checker never panic: arbitrary bytes, mutated valid files, and the
//! pathological inputs of the issue (non-UTF-8, 50 MB, 10,000 nesting levels, a CSV with a
//! million rows).  CI runs a bounded number of cases; `tests/fuzz/` has a cargo-fuzz target for
//! longer runs.

use std::path::Path;

use bpsc::check::{check, Options};
use bpsc::fs::MemFs;
use proptest::prelude::*;

fn run(fs: &MemFs) -> bpsc::check::Checked {
    check(fs, Path::new("c.bps"), &Options::default())
}

fn valid_sources() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut v = vec![std::fs::read_to_string(root.join("tests/fixtures/brief.bps")).unwrap()];
    for f in [
        "examples/drp/drp.bps",
        "examples/drp/pipeline.bps",
        "examples/nightly_calib/nightly_calib.bps",
        "examples/special_programs/special_programs.bps",
    ] {
        v.push(std::fs::read_to_string(root.join(f)).unwrap());
    }
    v
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2000)) {
        let c = run(&MemFs::new().with("c.bps", bytes));
        // Every diagnostic has a code from the registry.
        for d in &c.diags.items {
            prop_assert!(bpsc::diag::codes::lookup(d.code).is_some());
        }
        let _ = bpsc::diag::render::render_human(&c.program.map, &c.diags.items, false);
        let _ = bpsc::diag::render::render_sarif(&c.program.map, &c.diags.items);
    }

    #[test]
    fn mutated_valid_files_never_panic(which in 0usize..5, edits in prop::collection::vec((any::<prop::sample::Index>(), 0u8..4, any::<u8>()), 1..12)) {
        let srcs = valid_sources();
        let mut b = srcs[which % srcs.len()].clone().into_bytes();
        for (at, op, byte) in edits {
            if b.is_empty() { break; }
            let i = at.index(b.len());
            match op {
                0 => { b.remove(i); }
                1 => b.insert(i, byte),
                2 => b[i] = byte,
                _ => { let j = (i + 40).min(b.len()); b.drain(i..j); }
            }
        }
        let c = run(&MemFs::new().with("c.bps", b));
        if !c.has_errors() && !c.model.campaigns.is_empty() {
            let _ = bpsc::lower::lower(&c, &bpsc::lower::LowerOptions::default());
        }
    }

    #[test]
    fn token_soup_never_panics(toks in prop::collection::vec(prop::sample::select(vec![
        "bps 1\n", "step", "s", "over", "(", ")", "{", "}", "[", "]", "=", "==", "\"x{y}\"", "4GiB", "4 Gb", "1h30m", ",", "\n",
        "where", "and", "not", "in", "0..", "..=", "*", "+", "-", ".", "table(\"t.csv\")", "campaign", "use", "p", "coverage",
        "pipeline", "dimension", "relation", "dataset", "cluster", "after", "all", "#c\n", "\"", "env", "order", "site",
    ]), 0..200)) {
        let src: String = toks.join(" ");
        let _ = run(&MemFs::new().with("c.bps", src).with("t.csv", "a\n1\n"));
    }
}

#[test]
fn non_utf8_input_is_e403_at_the_first_bad_byte() {
    let c = run(&MemFs::new().with("c.bps", b"bps 1\n# caf\xe9\n".to_vec()));
    let d = &c.diags.items[0];
    assert_eq!(d.code, "E403");
    assert_eq!(d.primary.as_ref().unwrap().loc.span.lo as usize, "bps 1\n# caf".len());
}

#[test]
fn a_50_mb_file_is_refused_with_e407() {
    let mut big = b"bps 1\n".to_vec();
    big.resize(50 << 20, b'#');
    let c = run(&MemFs::new().with("c.bps", big));
    assert!(c.program.root_unreadable);
    assert_eq!(c.diags.items.len(), 1);
    assert_eq!(c.diags.items[0].code, "E407");
    assert!(c.diags.items[0].message.contains("50.0 MiB"), "{}", c.diags.items[0].message);
}

#[test]
fn ten_thousand_levels_of_nesting_end_in_e107() {
    for src in [
        format!("bps 1\ndefaults {{ x = {}1{} }}\n", "[".repeat(10_000), "]".repeat(10_000)),
        format!("bps 1\n{}", "defaults { env { ".repeat(5_000)),
        format!("bps 1\ncoverage c = {}v{}\n", "(".repeat(10_000), ")".repeat(10_000)),
        format!("bps 1\ncoverage c = v where {}v == 1{}\n", "(".repeat(10_000), ")".repeat(10_000)),
    ] {
        let c = run(&MemFs::new().with("c.bps", src));
        assert!(c.diags.items.iter().any(|d| d.code == "E107"), "{:?}", c.diags.items.iter().map(|d| d.code).collect::<Vec<_>>());
    }
}

#[test]
fn a_csv_with_a_million_rows_checks() {
    let mut csv = String::from("visit,detector\n");
    for i in 0..1_000_000u32 {
        csv.push_str(&format!("{},{}\n", 100_000 + i / 100, i % 100));
    }
    let src = "bps 1\nrelation obs(visit, detector) = table(\"obs.csv\")\npipeline p { step a over (visit, detector) { run = \"true\" } }\ncampaign c {\n  use p\n  coverage = obs\n}\n";
    let c = run(&MemFs::new().with("c.bps", src).with("obs.csv", csv));
    assert!(!c.has_errors(), "{:#?}", c.diags.items);
    let t = c.tables.by_path.values().next().unwrap();
    assert_eq!(t.rows, 1_000_000);
}
