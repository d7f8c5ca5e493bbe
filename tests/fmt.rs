//! `bpsc fmt` over every example and every test case: idempotent, and the formatted file
//! parses to the same syntax tree (spans aside) with the same comments.

use std::path::{Path, PathBuf};

use bpsc::fmt::{format_source, strip_module, FmtError};
use bpsc::source::FileId;
use bpsc::syntax::parse;

fn bps_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            bps_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "bps") {
            out.push(p);
        }
    }
}

fn all_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut v = Vec::new();
    for d in ["examples", "tests/cases", "tests/fixtures"] {
        bps_files(&root.join(d), &mut v);
    }
    v
}

#[test]
fn every_example_and_case_formats_idempotently_to_the_same_tree() {
    let files = all_files();
    assert!(files.len() > 150, "found only {} .bps files", files.len());
    let (mut formatted, mut refused) = (0, 0);
    let mut failures = Vec::new();
    for f in &files {
        let Ok(text) = std::fs::read_to_string(f) else { continue }; // E403 cases are not UTF-8
        let parsed = parse(FileId(0), &text);
        match format_source(&text) {
            Ok(once) => {
                formatted += 1;
                let twice = format_source(&once).unwrap_or_else(|e| panic!("{}: formatting the output failed: {e}", f.display()));
                if twice != once {
                    failures.push(format!("{}: not idempotent\n--- once\n{once}\n--- twice\n{twice}", f.display()));
                }
                let again = parse(FileId(0), &once);
                assert!(again.diags.is_empty(), "{}: output does not parse", f.display());
                let (mut a, mut b) = (parsed.module.clone(), again.module.clone());
                strip_module(&mut a);
                strip_module(&mut b);
                if a != b {
                    failures.push(format!("{}: different syntax tree", f.display()));
                }
                let ca: Vec<&str> = parsed.module.comments.iter().map(|c| text[c.range()].trim_end()).collect();
                let cb: Vec<&str> = again.module.comments.iter().map(|c| once[c.range()].trim_end()).collect();
                if ca != cb {
                    failures.push(format!("{}: comments differ", f.display()));
                }
            }
            Err(FmtError::Syntax(d)) => {
                refused += 1;
                assert!(!parsed.diags.is_empty() && !d.is_empty(), "{}", f.display());
            }
            Err(e) => failures.push(format!("{}: {e}", f.display())),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(formatted > 100, "formatted only {formatted} files ({refused} refused)");
}

#[test]
fn files_with_syntax_errors_are_refused_and_left_alone() {
    let dir = std::env::temp_dir().join(format!("bpsc-fmt-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.bps");
    let text = "bps 1\ndefaults {   memory = = 4GiB }\n";
    std::fs::write(&bad, text).unwrap();
    let good = dir.join("good.bps");
    std::fs::write(&good, "bps 1\ndefaults {memory=4GiB}\n").unwrap();
    let mut out = Vec::new();
    let mut err = Vec::new();
    let code = bpsc::cli::fmt_files(&[bad.clone(), good.clone()], true, &mut out, &mut err);
    assert_eq!(code, 1);
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains("good.bps"), "--check lists the file that would change: {out}");
    assert!(String::from_utf8_lossy(&err).contains("E100"), "syntax errors are reported");
    assert_eq!(std::fs::read_to_string(&good).unwrap(), "bps 1\ndefaults {memory=4GiB}\n", "--check writes nothing");
    let code = bpsc::cli::fmt_files(&[bad.clone(), good.clone()], false, &mut Vec::new(), &mut Vec::new());
    assert_eq!(code, 1, "a file with syntax errors fails the run");
    assert_eq!(std::fs::read_to_string(&bad).unwrap(), text, "never touched");
    assert_eq!(std::fs::read_to_string(&good).unwrap(), "bps 1\ndefaults {\n  memory = 4GiB\n}\n");
    let code = bpsc::cli::fmt_files(&[good.clone()], true, &mut Vec::new(), &mut Vec::new());
    assert_eq!(code, 0, "formatted files pass --check");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The project's own campaign files are in the canonical style: `bpsc fmt --check` passes on
/// every `.bps` under `examples/` and on every ```bps snippet of the README (a snippet
/// without the `bps 1` header is checked with one).
#[test]
fn examples_and_readme_snippets_are_formatted() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    bps_files(&root.join("examples"), &mut files);
    assert!(files.len() >= 11, "found only {} example files", files.len());
    let mut unformatted = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        match format_source(&text) {
            Ok(out) if out == text => {}
            Ok(_) => unformatted.push(format!("{} (run `bpsc fmt {}`)", f.display(), f.display())),
            Err(e) => unformatted.push(format!("{}: {e}", f.display())),
        }
    }
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let mut snippets = 0;
    for (i, block) in readme.split("```bps\n").skip(1).enumerate() {
        let body = block.split("```").next().unwrap_or("");
        let pre = if body.starts_with("bps 1") { "" } else { "bps 1\n" };
        let text = format!("{pre}{body}");
        snippets += 1;
        match format_source(&text) {
            Ok(out) if out == text => {}
            Ok(out) => unformatted.push(format!("README.md snippet {}:\n{}", i + 1, &out[pre.len()..])),
            Err(e) => unformatted.push(format!("README.md snippet {}: {e}", i + 1)),
        }
    }
    assert!(snippets >= 5, "found only {snippets} bps snippets in README.md");
    assert!(unformatted.is_empty(), "not in the canonical style:\n{}", unformatted.join("\n"));
}

/// Concurrent `bpsc fmt` runs on the same file never share a temporary file: each writes
/// its own (tempfile) and renames it over the file, so every run succeeds and none leaves a
/// temporary file behind.  (With one fixed temporary name, one run's rename took the other's
/// file away and it failed with "No such file or directory".)
#[test]
fn concurrent_fmt_runs_do_not_share_a_temporary_file() {
    let dir = std::env::temp_dir().join(format!("bpsc-fmt-concurrent-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("c.bps");
    let ugly = "bps 1\ndefaults {   memory = 4GiB\n walltime=1h }\n";
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let file = file.clone();
            std::thread::spawn(move || {
                let mut codes = Vec::new();
                for _ in 0..40 {
                    // Atomically too, so a run never reads half a file.
                    bpsc::cli::write_atomically(&file, ugly.as_bytes()).unwrap();
                    let mut err = Vec::new();
                    codes.push((
                        bpsc::cli::fmt_files(std::slice::from_ref(&file), false, &mut Vec::new(), &mut err),
                        String::from_utf8_lossy(&err).into_owned(),
                    ));
                }
                codes
            })
        })
        .collect();
    for t in threads {
        for (code, err) in t.join().unwrap() {
            assert_eq!(code, 0, "{err}");
        }
    }
    let left: Vec<String> =
        std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| n != "c.bps").collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
