//! Diagnostics in the shape of the Language Server Protocol.
//!
//! These are plain serde structs whose JSON is that of LSP 3.17 `Diagnostic` and
//! `PublishDiagnosticsParams` (camelCase field names), so a server can send them as they
//! are, or convert them to `lsp-types` through `serde_json` once a server crate is chosen.
//!
//! * `range`: 0-based line and 0-based UTF-16 `character`, end exclusive, of the primary
//!   label (or, lacking one, the first secondary label);
//! * `severity`: 1 error, 2 warning, 3 information (our notes);
//! * `code`: the stable code; `source`: `"bpsc"`;
//! * `message`: the message, then `help:` and `note:` lines;
//! * `relatedInformation`: the secondary labels, each with a `file://` URI.
//!
//! File URIs are made from [`SourceFile::path`](crate::source::SourceFile::path), made
//! absolute against the current directory if it is relative, percent-encoded.

use serde::{Deserialize, Serialize};

use super::common::{file_uri, message_with_help, resolve};
use crate::diag::{Diagnostic, Label, Severity};
use crate::source::{FileId, Position, SourceMap};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LspPosition {
    /// 0-based line.
    pub line: u32,
    /// 0-based UTF-16 code unit offset in the line.
    pub character: u32,
}

impl From<Position> for LspPosition {
    fn from(p: Position) -> LspPosition {
        LspPosition { line: p.line.saturating_sub(1), character: p.column_utf16.saturating_sub(1) }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LspRange {
    pub start: LspPosition,
    pub end: LspPosition,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LspLocation {
    pub uri: String,
    pub range: LspRange,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LspRelatedInformation {
    pub location: LspLocation,
    pub message: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "u8", try_from = "u8")]
pub enum LspSeverity {
    Error = 1,
    Warning = 2,
    Information = 3,
    Hint = 4,
}

impl From<LspSeverity> for u8 {
    fn from(s: LspSeverity) -> u8 {
        s as u8
    }
}

impl TryFrom<u8> for LspSeverity {
    type Error = String;
    fn try_from(v: u8) -> Result<LspSeverity, String> {
        match v {
            1 => Ok(LspSeverity::Error),
            2 => Ok(LspSeverity::Warning),
            3 => Ok(LspSeverity::Information),
            4 => Ok(LspSeverity::Hint),
            _ => Err(format!("invalid LSP diagnostic severity {v}")),
        }
    }
}

impl From<Severity> for LspSeverity {
    fn from(s: Severity) -> LspSeverity {
        match s {
            Severity::Error => LspSeverity::Error,
            Severity::Warning => LspSeverity::Warning,
            Severity::Note => LspSeverity::Information,
        }
    }
}

/// An LSP `Diagnostic`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LspDiagnostic {
    pub range: LspRange,
    pub severity: LspSeverity,
    pub code: String,
    pub source: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub related_information: Vec<LspRelatedInformation>,
}

/// LSP `PublishDiagnosticsParams`: the diagnostics of one document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishDiagnosticsParams {
    pub uri: String,
    pub diagnostics: Vec<LspDiagnostic>,
}

/// The `file://` URI of a file of the map (`None` for an id the map does not know).
pub fn lsp_uri(map: &SourceMap, file: FileId) -> Option<String> {
    map.try_get(file).map(|f| file_uri(&f.path))
}

fn location(map: &SourceMap, l: &Label) -> Option<LspLocation> {
    let uri = lsp_uri(map, l.loc.file)?;
    let r = resolve(map, l.loc);
    Some(LspLocation { uri, range: LspRange { start: r.start.into(), end: r.end.into() } })
}

/// One diagnostic for LSP, with the URI of the document it belongs to.
///
/// `None` when it has no label in a known file: LSP cannot place it (a server may send
/// it as `window/showMessage`).  Without a primary label, the first secondary label that
/// can be placed stands in for it.
pub fn to_lsp(map: &SourceMap, d: &Diagnostic) -> Option<(String, LspDiagnostic)> {
    let mut labels = d.primary.iter().chain(&d.secondary);
    let (main, loc) = labels.find_map(|l| location(map, l).map(|loc| (l, loc)))?;
    let related_information = d
        .secondary
        .iter()
        .filter(|l| !std::ptr::eq(*l, main))
        .filter_map(|l| {
            let location = location(map, l)?;
            let message = if l.message.is_empty() { "related location".to_string() } else { l.message.clone() };
            Some(LspRelatedInformation { location, message })
        })
        .collect();
    let diag = LspDiagnostic {
        range: loc.range,
        severity: d.severity.into(),
        code: d.code.to_string(),
        source: "bpsc".to_string(),
        message: message_with_help(d),
        related_information,
    };
    Some((loc.uri, diag))
}

/// `textDocument/publishDiagnostics` parameters for every file of the map, in source-map
/// order, each with its diagnostics in the given order.  Files without diagnostics get an
/// empty list, which clears what the editor showed before.  Diagnostics that [`to_lsp`]
/// cannot place are left out.
pub fn lsp_publish(map: &SourceMap, diags: &[Diagnostic]) -> Vec<PublishDiagnosticsParams> {
    let mut out: Vec<PublishDiagnosticsParams> =
        map.files().map(|f| PublishDiagnosticsParams { uri: file_uri(&f.path), diagnostics: Vec::new() }).collect();
    for d in diags {
        if let Some((uri, ld)) = to_lsp(map, d) {
            if let Some(p) = out.iter_mut().find(|p| p.uri == uri) {
                p.diagnostics.push(ld);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::common::fixture;
    use super::*;
    use crate::source::Span;

    fn uri(name: &str) -> String {
        file_uri(&std::env::current_dir().unwrap().join(name))
    }

    #[test]
    fn conversion_uses_zero_based_utf16_positions() {
        let (map, a, _) = fixture::map();
        let ds = fixture::diags();
        let (u, d) = to_lsp(&map, &ds[0]).unwrap();
        assert_eq!(u, uri("a.bps"));
        assert!(u.starts_with("file:///") && u.ends_with("/a.bps"));
        assert_eq!(d.range, LspRange { start: LspPosition { line: 1, character: 12 }, end: LspPosition { line: 1, character: 18 } });
        // Back to bytes with the conversion the server will use on requests.
        let f = map.get(a);
        let span = fixture::span_of(fixture::A, "memroy");
        assert_eq!(f.offset_of_utf16(d.range.start.line, d.range.start.character), span.lo);
        assert_eq!(f.offset_of_utf16(d.range.end.line, d.range.end.character), span.hi);
        assert_eq!(d.severity, LspSeverity::Error);
        assert_eq!(d.code, "E203");
        assert_eq!(d.source, "bpsc");
        assert_eq!(
            d.message,
            "unknown key \"memroy\" <in> & 'defaults'\nsecond line\u{1}\u{1b}[31m\nhelp: did you mean `memory`?\nnote: keys are \"case\" sensitive\nnote: see <bpsc explain E203>"
        );
        assert_eq!(
            d.related_information,
            vec![LspRelatedInformation {
                location: LspLocation {
                    uri: uri("sub dir/b \u{e9}.bps"),
                    range: LspRange { start: LspPosition { line: 0, character: 8 }, end: LspPosition { line: 0, character: 17 } },
                },
                message: "step defined here".into(),
            }]
        );
        assert!(d.related_information[0].location.uri.ends_with("/sub%20dir/b%20%C3%A9.bps"));
    }

    #[test]
    fn json_shape_is_lsp() {
        let (map, _, _) = fixture::map();
        let (_, d) = to_lsp(&map, &fixture::diags()[1]).unwrap();
        let v = serde_json::to_value(&d).unwrap();
        assert_eq!(
            v,
            json!({
                "range": {"start": {"line": 0, "character": 8}, "end": {"line": 0, "character": 17}},
                "severity": 2,
                "code": "W201",
                "source": "bpsc",
                "message": "unused definition `calibrate`",
                "relatedInformation": [{
                    "location": {
                        "uri": uri("sub dir/b \u{e9}.bps"),
                        "range": {"start": {"line": 1, "character": 0}, "end": {"line": 1, "character": 5}}
                    },
                    "message": "header"
                }]
            })
        );
        let back: LspDiagnostic = serde_json::from_value(v).unwrap();
        assert_eq!(back, d);
        let note = Diagnostic::new("E100", "n").severity(Severity::Note).at(FileId(0), Span::new(0, 0), "");
        let (_, n) = to_lsp(&map, &note).unwrap();
        let v = serde_json::to_value(&n).unwrap();
        assert_eq!(v["severity"], 3);
        assert!(v.get("relatedInformation").is_none());
    }

    #[test]
    fn publish_groups_by_file_and_clears_clean_ones() {
        let (map, _, b) = fixture::map();
        let mut ds = fixture::diags();
        // Without a primary label, the first secondary label places it.
        ds.push(Diagnostic::new("E402", "cycle").also(b, Span::new(0, 4), "here"));
        let p = lsp_publish(&map, &ds);
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].uri, uri("a.bps"));
        assert_eq!(p[0].diagnostics.iter().map(|d| d.code.as_str()).collect::<Vec<_>>(), ["E203"]);
        assert_eq!(p[1].diagnostics.iter().map(|d| d.code.as_str()).collect::<Vec<_>>(), ["W201", "E402"]);
        let e402 = &p[1].diagnostics[1];
        assert_eq!(e402.range.end, LspPosition { line: 0, character: 2 }, "😀 is 4 bytes, 2 UTF-16 units");
        assert!(e402.related_information.is_empty());
        assert!(to_lsp(&map, &ds[2]).is_none(), "no place at all");
        let none = lsp_publish(&map, &[]);
        assert!(none.iter().all(|p| p.diagnostics.is_empty()) && none.len() == 2);
    }
}
