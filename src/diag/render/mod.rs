//! Renderers of diagnostics.
//!
//! | module | output | entry points |
//! |---|---|---|
//! | [`human`] | text for people, drawn by miette | [`render_human`], [`summary_line`] |
//! | [`json`] | JSON Lines, one object per diagnostic | [`render_json`], [`diagnostic_to_json_value`] |
//! | [`sarif`] | SARIF 2.1.0 for GitHub code scanning | [`render_sarif`], [`sarif_value`] |
//! | [`junit`] | JUnit XML for CI test reports | [`render_junit`] |
//! | [`github`] | GitHub Actions annotations | [`render_github`] |
//! | [`lsp`] | LSP `Diagnostic`s and `PublishDiagnosticsParams` | [`to_lsp`], [`lsp_publish`] |
//!
//! They render diagnostics in the order given; sort them first with
//! [`Diagnostics::sort`](crate::diag::Diagnostics::sort).  All are pure and
//! deterministic (the same source map and diagnostics give the same bytes), except that
//! the LSP `file://` URI of a file whose path is relative is made absolute against the
//! current directory.
//!
//! Positions are taken from [`SourceFile::position`](crate::source::SourceFile::position)
//! everywhere: columns for people count characters, SARIF and LSP count UTF-16 code units.

mod common;
pub mod github;
pub mod human;
pub mod json;
pub mod junit;
pub mod lsp;
pub mod sarif;

pub(crate) use common::file_uri;
pub use github::render_github;
pub use human::{render_human, summary_line};
pub use json::{diagnostic_to_json_value, render_json};
pub use junit::render_junit;
pub use lsp::{lsp_publish, to_lsp};
pub use sarif::{render_sarif, sarif_value};

#[cfg(test)]
mod proptests {
    use std::sync::Arc;

    use proptest::prelude::*;

    use super::*;
    use crate::diag::Diagnostic;
    use crate::source::{SourceMap, Span};

    fn text() -> impl Strategy<Value = String> {
        // ASCII, controls, CR/LF, multi-byte and astral characters.
        proptest::collection::vec(
            prop_oneof![
                Just('a'),
                Just(' '),
                Just('\n'),
                Just('\r'),
                Just('\t'),
                Just('\u{0}'),
                Just('\u{1b}'),
                Just('\u{85}'),
                Just('é'),
                Just('\u{1F600}'),
                Just('<'),
                Just('&'),
                Just('"'),
                Just('\u{FFFF}'),
            ],
            0..40,
        )
        .prop_map(|v| v.into_iter().collect())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// No renderer panics on any text and any span (out of range and mid-character
        /// included), and the machine formats always parse back.
        #[test]
        fn renderers_never_panic(src in text(), msg in text(), lo in 0usize..60, len in 0usize..20, lo2 in 0usize..60) {
            let mut map = SourceMap::new();
            let f = map.add("f.bps".into(), Arc::from(src.as_str()));
            let g = map.add("g.bps".into(), Arc::from("bps 1\n"));
            let d = Diagnostic::new("E100", msg.clone())
                .at(f, Span::new(lo, lo + len), msg.clone())
                .also(f, Span::new(lo2, lo2), msg.clone())
                .also(g, Span::new(lo2, lo2 + 1), "")
                .help(msg.clone())
                .note(msg.clone());
            let ds = vec![d, Diagnostic::new("W201", msg.clone())];
            let human = render_human(&map, &ds, false);
            prop_assert!(!human.contains('\u{1b}'), "ESC in human output");
            prop_assert!(!human.contains("Failed to read"), "{}", human);
            for line in render_json(&map, &ds).lines() {
                serde_json::from_str::<serde_json::Value>(line).unwrap();
            }
            serde_json::from_str::<serde_json::Value>(&render_sarif(&map, &ds)).unwrap();
            let xml = render_junit(&map, &["f.bps"], &ds, true);
            let mut r = quick_xml::Reader::from_str(&xml);
            loop {
                match r.read_event() {
                    Ok(quick_xml::events::Event::Eof) => break,
                    Ok(_) => {}
                    Err(e) => panic!("{e}: {xml}"),
                }
            }
            let ok = xml.chars().all(|c| matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}'));
            prop_assert!(ok, "character not allowed in XML 1.0");
            let published = lsp_publish(&map, &ds);
            prop_assert_eq!(published.len(), 2);
        }
    }
}
