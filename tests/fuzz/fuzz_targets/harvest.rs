//! Every status harvester on arbitrary engine output (see `tests/fuzz/bodies.rs`).
//!
//! ```text
//! cargo +nightly fuzz run --fuzz-dir tests/fuzz harvest -- -max_total_time=600
//! ```
#![no_main]

#[path = "../bodies.rs"]
mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::harvest(data));
