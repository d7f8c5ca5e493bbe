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

// ------------------------------------------------------------------ past the checker
// The bodies of the fuzz targets (tests/fuzz/bodies.rs), bounded for CI: status harvesters
// on engine output, a damaged submit directory read by the wrapper, status and report, and
// data IDs through every engine's quoting.

#[path = "fuzz/bodies.rs"]
mod bodies;

/// Lines of the shapes the harvesters read (DAGMan's logs, sacct/squeue, the job-id and
/// array files, Nextflow's trace, Pegasus's braindump), to mutate and shuffle.
const ENGINE_LINES: &[&str] = &[
    "000 (123.000.000) 2026-12-07 12:00:00 Job submitted from host: <127.0.0.1:9618?addrs=127.0.0.1-9618>\n    DAG Node: a_1_plain\n...\n",
    "001 (123.000.000) 2026-12-07 12:00:01 Job executing on host: <127.0.0.1:9618>\n...\n",
    "005 (123.000.000) 2026-12-07 12:00:09 Job terminated.\n\t(1) Normal termination (return value 1)\n\t\tUsr 0 00:00:00, Sys 0 00:00:00  -  Run Remote Usage\n...\n",
    "012 (123.000.000) 2026-12-07 12:00:05 Job was held.\n\tJob has gone over cgroup memory limit of 64 megabytes.\n\tCode 34 Subcode 0\n...\n",
    "009 (123.000.000) 2026-12-07 12:00:09 Job was aborted.\n\tvia condor_rm (by user bpsc)\n...\n",
    "1733572800 a_1_plain SUBMIT 123.0 - 1\n", "1733572801 a_1_plain EXECUTE - - 1\n", "1733572809 a_1_plain JOB_FAILURE 1 - 1\n",
    "1733572809 INTERNAL *** DAGMAN_FINISHED 1 ***\n",
    "[\n  Type = \"NodeStatus\";\n  Node = \"a_1_plain\";\n  NodeStatus = 6;\n  StatusDetails = \"Job failed\";\n  RetryCount = 2;\n]\n",
    "12/07/26 12:00:09 Node a_1_plain job proc (123.0.0) failed with status 1.\n",
    "DONE a_1_plain\n", "JOB a_1_plain htcondor/a.sub\n", "{\"exitcode\": 2, \"jobs\": 5, \"jobs_failed\": 1}\n",
    "JobID|JobIDRaw|JobName|State|ExitCode|Start|End|Elapsed|NodeList|MaxRSS\n",
    "77_0|78|c-a|COMPLETED|0:0|2026-12-07T12:00:00|2026-12-07T12:00:09|00:00:09|n1|\n",
    "77_1.batch|79|batch|OUT_OF_MEMORY|0:125|2026-12-07T12:00:00|Unknown|00:00:09|n1|2048K\n",
    "77_[2-9%4]|77|c-a|PENDING|0:0|None|Unknown|00:00:00|None assigned|\n",
    "77 a\n", "a\ta\t0\t0\n", "0-4000000000\n", "1-9999999,1-9999999,1-9999999\n", "[0-3,5,7-9%4]\n",
    "task_id\thash\tnative_id\tname\ttag\tstatus\texit\tattempt\tstart\trealtime\tpeak_rss\thostname\n",
    "1\tab/123456\t4242\ta (1)\ta_1_plain\tFAILED\t137\t2\t2026-12-07 12:00:00.000\t9s\t2 GB\tn1\n",
    "dax /x/workflow.yml\nsubmit_dir /x/run0001\nwf_uuid 123\n", "\n", "\t", "|", "...", "\u{0}", "é",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn harvesters_never_panic_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..3000)) {
        bodies::harvest(&bytes);
    }

    #[test]
    fn harvesters_never_panic_on_engine_line_soup(
        lines in prop::collection::vec(prop::sample::select(ENGINE_LINES.to_vec()), 0..60),
        cut in any::<prop::sample::Index>(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
    ) {
        let mut b = lines.concat().into_bytes();
        for (at, byte) in flips {
            if !b.is_empty() { let i = at.index(b.len()); b[i] = byte; }
        }
        // Truncated as a log being written is.
        if !b.is_empty() { b.truncate(cut.index(b.len() + 1)); }
        bodies::harvest(&b);
    }
}

fn template() -> &'static bodies::Template {
    static T: std::sync::OnceLock<bodies::Template> = std::sync::OnceLock::new();
    T.get_or_init(|| {
        let root = std::env::temp_dir().join(format!("bpsc-robust-template-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        bodies::template(&root, "htcondor")
    })
}

/// One scratch directory per test thread.
fn scratch(name: &str) -> std::path::PathBuf {
    std::env::temp_dir()
        .join(format!("bpsc-robust-{name}-{}-{:?}", std::process::id(), std::thread::current().id()).replace(['(', ')'], ""))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn a_damaged_submit_directory_never_panics(data in prop::collection::vec(any::<u8>(), 2..600)) {
        let d = scratch("submit");
        bodies::submit_dir(&data, template(), &d);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_damaged_json_file_never_panics(which in any::<u8>(), at in any::<u8>(), text in "[\\[\\]{}\":,0-9a-z_\\-. \n]{0,200}") {
        // JSON-shaped garbage written into a file: gets further into the readers than bytes.
        let d = scratch("json");
        let mut data = vec![which, at];
        data.extend(text.into_bytes());
        bodies::submit_dir(&data, template(), &d);
        let _ = std::fs::remove_dir_all(&d);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn data_ids_stay_one_word_on_every_engine(labels in prop::collection::vec(
        prop::collection::vec(prop::sample::select(vec![
            "a", "b", " ", "'", "\"", "\\", "$", "$(", ")", "`", "{", "}", ";", "&", "|", "<", ">", "*", "?", "~", "#", "!", "=", "%", "\t", "é", "../", "${HOME}", "-n",
        ]), 1..8).prop_map(|v| v.concat()),
        1..4,
    )) {
        let d = scratch("quoting");
        let data: Vec<u8> = labels.iter().map(|l| l.as_bytes()).collect::<Vec<_>>().join(&0xffu8);
        let checked = bodies::quoting(&data, &d, true);
        let _ = std::fs::remove_dir_all(&d);
        // Printable labels check clean: every job (one per row, the fixed row included) of
        // every engine was read back.
        prop_assert_eq!(checked, (labels.len() + 1) * bodies::ENGINES.len());
    }
}

#[test]
fn the_injection_corpus_stays_one_word_on_every_engine() {
    let d = scratch("corpus");
    let labels: Vec<&str> =
        bpsc::ir::quote::INJECTION_CORPUS.iter().copied().filter(|v| !v.is_empty() && !v.contains('\u{ff}')).take(4).collect();
    let data: Vec<u8> = labels.iter().map(|l| l.as_bytes()).collect::<Vec<_>>().join(&0xffu8);
    let checked = bodies::quoting(&data, &d, true);
    let _ = std::fs::remove_dir_all(&d);
    assert!(checked > 0, "the checker refused the corpus's first values: {labels:?}");
}

/// A stage-out job whose owner record names itself (or any stage-out or cleanup job) is an
/// error, not an endless recursion: the fuzzer's `submit_dir` target died of a stack
/// overflow on such a table (two SIGSEGV exits that libFuzzer could not report).
#[test]
fn a_stage_out_job_that_owns_itself_is_an_error() {
    let t = template();
    let d = scratch("self-owner");
    let _ = std::fs::remove_dir_all(&d);
    bodies::copy_tree(&t.dir, &d);
    let tables = bpsc::submitdir::tasks::Tables::open(&d).expect("tables");
    let (gi, g) = tables
        .spec
        .groups
        .iter()
        .enumerate()
        .find(|(_, g)| g.layout == bpsc::submitdir::tasks::Layout::Owners)
        .map(|(i, g)| (i, g.clone()))
        .expect("the template has a stage-out group");
    let jobs = d.join("tasks").join(format!("{}.jobs", g.name));
    let mut b = std::fs::read(&jobs).expect("owners table");
    b[0..4].copy_from_slice(&(gi as u32).to_le_bytes());
    b[4..8].copy_from_slice(&0u32.to_le_bytes());
    std::fs::write(&jobs, &b).unwrap();
    let tables = bpsc::submitdir::tasks::Tables::open(&d).expect("tables");
    let e = tables.line(&g.name, 0).expect_err("a job that owns itself");
    assert!(e.contains("not a compute group"), "{e}");
    let _ = std::fs::remove_dir_all(&d);
}

/// A damaged `spec.json` whose step column names a dimension the spec does not have (the
/// fuzzer's `submit_dir` target spliced bytes into it after an hour) is refused when the tables
/// are opened, and a lookup by id never indexes past the dimensions: before, `bpsc status`
/// and the wrapper's lookup of a job by its id panicked (index out of bounds in `rank_of`).
#[test]
fn a_step_column_naming_a_missing_dimension_is_an_error() {
    // The fuzzer's own input, through the fuzz target's body: no panic.
    let crash: &[u8] = b").).helworkflow.dag.rescued";
    bodies::submit_dir(crash, template(), &scratch("bad-dim-fuzz"));
    let _ = std::fs::remove_dir_all(scratch("bad-dim-fuzz"));

    let t = template();
    let d = scratch("bad-dim");
    let _ = std::fs::remove_dir_all(&d);
    bodies::copy_tree(&t.dir, &d);
    let spec_path = d.join("tasks").join("spec.json");
    let mut spec: serde_json::Value = serde_json::from_slice(&std::fs::read(&spec_path).unwrap()).unwrap();
    let dims = spec["dims"].as_array().map_or(0, |a| a.len());
    let step = spec["steps"].as_array_mut().and_then(|s| s.iter_mut().find(|s| s["cols"].as_array().is_some_and(|c| !c.is_empty())));
    let step = step.expect("the template has a step with columns");
    step["cols"][0] = serde_json::json!(dims);
    std::fs::write(&spec_path, serde_json::to_vec(&spec).unwrap()).unwrap();
    let e = bpsc::submitdir::tasks::Tables::open(&d).err().expect("a column past the dimensions");
    assert!(e.contains(&format!("names dimension {dims}, but there are {dims} dimensions")), "{e}");
    let _ = std::fs::remove_dir_all(&d);
}
