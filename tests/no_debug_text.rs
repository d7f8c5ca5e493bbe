//! No Rust `Debug` text reaches a user: the command line's own files format user-facing
//! messages with `Display` only.  (`{:?}` is for assertions and tests.)  Behaviour is tested
//! in `tests/cli.rs`; this keeps new code from reintroducing `{:?}` in these files.

use std::path::Path;

/// Files whose every message is for people: the command line, output directories, table
/// reading and the job-graph writer.
const FILES: &[&str] = &[
    "src/main.rs",
    "src/cli.rs",
    "src/outdir.rs",
    "src/check/tables.rs",
    "src/coverage/csv_load.rs",
    "src/lower/eval.rs",
    "src/lower/jobgraph.rs",
];

#[test]
fn no_debug_formatting_in_user_facing_code() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut found = Vec::new();
    for f in FILES {
        let Ok(text) = std::fs::read_to_string(root.join(f)) else { continue };
        // Unit tests at the end of a file may use `{:?}` freely.
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        for (n, line) in code.lines().enumerate() {
            let l = line.trim_start();
            if l.starts_with("//") || l.contains("assert") || l.contains("panic!") || l.contains("unreachable!") {
                continue;
            }
            if line.contains(":?}") || line.contains(":#?}") {
                found.push(format!("{f}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(found.is_empty(), "Debug formatting in user-facing code:\n{}", found.join("\n"));
}
