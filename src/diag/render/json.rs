//! Diagnostics as JSON Lines: one JSON object per diagnostic, each on its own line.
//!
//! # Schema (a public contract: fields are only ever added)
//!
//! ```text
//! {
//!   "code":     "E203",                        // stable code, see `bpsc explain`
//!   "severity": "error" | "warning" | "note",
//!   "message":  "unknown key `memroy`",
//!   "file":     "defaults.bps" | null,         // file of the primary label
//!   "range":    {"start": 17, "end": 23} | null,  // byte offsets, half-open
//!   "start":    Position | null,               // first character of the range
//!   "end":      Position | null,               // first character after the range
//!   "label":    "not a setting" | null,        // message of the primary label
//!   "labels":   [Label],                       // secondary labels, in order
//!   "help":     "did you mean `memory`?" | null,
//!   "notes":    ["..."],
//!   "suggestions": [Suggestion]
//! }
//! Position   = {"line": 2, "column": 3, "column_utf16": 3}
//!              // all 1-based; `column` counts Unicode scalar values,
//!              // `column_utf16` counts UTF-16 code units (LSP `character` + 1)
//! Label      = {"file", "range", "start", "end", "message"}      // all non-null
//! Suggestion = {"file", "range", "start", "end", "replacement", "message"}
//!              // replace the bytes of `range` in `file` by `replacement`
//! ```
//!
//! Every key is always present; `file`, `range`, `start`, `end` and `label` are `null`
//! together, for a diagnostic that has no place in any file.  `file` is the name the
//! file is shown under (relative to the working directory when it can be).  Byte ranges
//! are clamped to the file and to character boundaries.  A label in a file the source
//! map does not know (a bug) is named `<file #N>` with positions 1:1.

use serde::{Deserialize, Serialize};

use super::common::{resolve, Resolved};
use crate::diag::Diagnostic;
use crate::source::{Loc, Position, SourceMap};

/// A half-open byte range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsonRange {
    pub start: u32,
    pub end: u32,
}

/// A position: 1-based line, column in characters and column in UTF-16 code units.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsonPosition {
    pub line: u32,
    pub column: u32,
    pub column_utf16: u32,
}

impl From<Position> for JsonPosition {
    fn from(p: Position) -> JsonPosition {
        JsonPosition { line: p.line, column: p.column, column_utf16: p.column_utf16 }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsonLabel {
    pub file: String,
    pub range: JsonRange,
    pub start: JsonPosition,
    pub end: JsonPosition,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsonSuggestion {
    pub file: String,
    pub range: JsonRange,
    pub start: JsonPosition,
    pub end: JsonPosition,
    pub replacement: String,
    pub message: String,
}

/// One line of `bpsc check --format json`; see the [module documentation](self).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsonDiagnostic {
    pub code: String,
    pub severity: String,
    pub message: String,
    pub file: Option<String>,
    pub range: Option<JsonRange>,
    pub start: Option<JsonPosition>,
    pub end: Option<JsonPosition>,
    pub label: Option<String>,
    pub labels: Vec<JsonLabel>,
    pub help: Option<String>,
    pub notes: Vec<String>,
    pub suggestions: Vec<JsonSuggestion>,
}

fn range(r: &Resolved) -> JsonRange {
    JsonRange { start: r.span.lo, end: r.span.hi }
}

fn label(map: &SourceMap, loc: Loc, message: &str) -> JsonLabel {
    let r = resolve(map, loc);
    JsonLabel { range: range(&r), start: r.start.into(), end: r.end.into(), file: r.name, message: message.to_string() }
}

impl JsonDiagnostic {
    pub fn new(map: &SourceMap, d: &Diagnostic) -> JsonDiagnostic {
        let primary = d.primary.as_ref().map(|p| (resolve(map, p.loc), p.message.clone()));
        JsonDiagnostic {
            code: d.code.to_string(),
            severity: d.severity.as_str().to_string(),
            message: d.message.clone(),
            file: primary.as_ref().map(|(r, _)| r.name.clone()),
            range: primary.as_ref().map(|(r, _)| range(r)),
            start: primary.as_ref().map(|(r, _)| r.start.into()),
            end: primary.as_ref().map(|(r, _)| r.end.into()),
            label: primary.as_ref().map(|(_, m)| m.clone()),
            labels: d.secondary.iter().map(|l| label(map, l.loc, &l.message)).collect(),
            help: d.help.clone(),
            notes: d.notes.clone(),
            suggestions: d
                .suggestions
                .iter()
                .map(|s| {
                    let l = label(map, s.loc, &s.message);
                    JsonSuggestion {
                        file: l.file,
                        range: l.range,
                        start: l.start,
                        end: l.end,
                        replacement: s.replacement.clone(),
                        message: l.message,
                    }
                })
                .collect(),
        }
    }
}

/// One diagnostic as a JSON value (the object of one line of [`render_json`]).
pub fn diagnostic_to_json_value(map: &SourceMap, d: &Diagnostic) -> serde_json::Value {
    serde_json::to_value(JsonDiagnostic::new(map, d)).expect("plain data serializes")
}

/// JSON Lines: one object per diagnostic, in the given order, each line ending in `\n`.
/// Newlines inside strings are escaped, so every object is on exactly one line.
pub fn render_json(map: &SourceMap, diags: &[Diagnostic]) -> String {
    let mut out = String::new();
    for d in diags {
        out.push_str(&serde_json::to_string(&JsonDiagnostic::new(map, d)).expect("plain data serializes"));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::common::fixture;
    use super::*;

    #[test]
    fn one_line_per_diagnostic_and_parses_back() {
        let (map, _, _) = fixture::map();
        let ds = fixture::diags();
        let out = render_json(&map, &ds);
        assert!(out.ends_with('\n'));
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3);
        for (line, d) in lines.iter().zip(&ds) {
            let back: JsonDiagnostic = serde_json::from_str(line).unwrap();
            assert_eq!(back, JsonDiagnostic::new(&map, d));
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(v, diagnostic_to_json_value(&map, d));
        }
    }

    #[test]
    fn exact_values() {
        let (map, _, _) = fixture::map();
        let ds = fixture::diags();
        let a = fixture::A.find("memroy").unwrap() as u32;
        let b = fixture::B.find("calibrate").unwrap() as u32;
        assert_eq!(
            diagnostic_to_json_value(&map, &ds[0]),
            json!({
                "code": "E203",
                "severity": "error",
                "message": "unknown key \"memroy\" <in> & 'defaults'\nsecond line\u{1}\u{1b}[31m",
                "file": "a.bps",
                "range": {"start": a, "end": a + 6},
                "start": {"line": 2, "column": 12, "column_utf16": 13},
                "end": {"line": 2, "column": 18, "column_utf16": 19},
                "label": "not a <key> & \"setting\"",
                "labels": [{
                    "file": "sub dir/b \u{e9}.bps",
                    "range": {"start": b, "end": b + 9},
                    "start": {"line": 1, "column": 8, "column_utf16": 9},
                    "end": {"line": 1, "column": 17, "column_utf16": 18},
                    "message": "step defined here"
                }],
                "help": "did you mean `memory`?",
                "notes": ["keys are \"case\" sensitive", "see <bpsc explain E203>"],
                "suggestions": [{
                    "file": "a.bps",
                    "range": {"start": a, "end": a + 6},
                    "start": {"line": 2, "column": 12, "column_utf16": 13},
                    "end": {"line": 2, "column": 18, "column_utf16": 19},
                    "replacement": "memory",
                    "message": "fix the typo"
                }]
            })
        );
        assert_eq!(
            diagnostic_to_json_value(&map, &ds[2]),
            json!({
                "code": "E401", "severity": "error", "message": "cannot read file `nope.bps`",
                "file": null, "range": null, "start": null, "end": null, "label": null,
                "labels": [], "help": null, "notes": [], "suggestions": []
            })
        );
        assert_eq!(diagnostic_to_json_value(&map, &ds[1])["severity"], "warning");
    }

    #[test]
    fn control_characters_are_escaped() {
        let (map, _, _) = fixture::map();
        let out = render_json(&map, &fixture::diags());
        assert!(out.contains(r#"\nsecond line\u0001\u001b[31m"#), "{out}");
        assert!(!out.chars().any(|c| c.is_control() && c != '\n'));
    }
}
