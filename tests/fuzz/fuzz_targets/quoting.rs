//! Data IDs made of the input, through check, lowering, every engine and the task tables:
//! every rendered command gives each value back as one word, to a word splitter and to
//! `/bin/sh` (see `tests/fuzz/bodies.rs`).  Works in `$TMPDIR`; runs `/bin/sh` per job.
//!
//! ```text
//! cargo +nightly fuzz run --fuzz-dir tests/fuzz quoting -- -max_total_time=600
//! ```
#![no_main]

#[path = "../bodies.rs"]
mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let scratch = std::env::temp_dir().join(format!("bpsc-fuzz-quoting-{}", std::process::id()));
    bodies::quoting(data, &scratch, true);
});
