//! A compiled submit directory with one file damaged, read as the job wrapper, `bpsc status`
//! and `bpsc report` read it (see `tests/fuzz/bodies.rs`).  Works in `$TMPDIR`.
//!
//! ```text
//! cargo +nightly fuzz run --fuzz-dir tests/fuzz submit_dir -- -max_total_time=600
//! ```
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

#[path = "../bodies.rs"]
mod bodies;

fn root() -> PathBuf {
    std::env::temp_dir().join(format!("bpsc-fuzz-submit-{}", std::process::id()))
}

static TEMPLATE: OnceLock<bodies::Template> = OnceLock::new();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let t = TEMPLATE.get_or_init(|| bodies::template(&root(), "htcondor"));
    bodies::submit_dir(data, t, &root().join("scratch"));
});
