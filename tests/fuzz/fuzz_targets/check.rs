//! Longer runs than CI's bounded property tests.  From the repository root, with a nightly
//! toolchain and `cargo install cargo-fuzz`:
//!
//! ```text
//! cargo +nightly fuzz run --fuzz-dir tests/fuzz check -- -max_total_time=600
//! ```
//!
//! (`--fuzz-dir tests/fuzz` is needed: the fuzz crate lives in `tests/fuzz`, not in the
//! `fuzz/` that cargo-fuzz looks for by default.)  The input is a campaign file; the checker
//! and, when the file is clean, lowering must not panic on it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let fs = bpsc::fs::MemFs::new().with("c.bps", data.to_vec()).with("t.csv", b"visit,band\n1,g\n2,r\n".to_vec());
    let c = bpsc::check::check(&fs, std::path::Path::new("c.bps"), &bpsc::check::Options::default());
    // Every diagnostic is drawn the same way: the first 50 exercise the renderer, and an
    // input with thousands (one per invalid byte) does not spend the run in it.
    let shown = &c.diags.items[..c.diags.items.len().min(50)];
    let _ = bpsc::diag::render::render_human(&c.program.map, shown, false);
    if !c.has_errors() && !c.model.campaigns.is_empty() {
        let _ = bpsc::lower::lower(&c, &bpsc::lower::LowerOptions { coverage_warn: 10_000, ..Default::default() });
    }
});
