//! The one diagnostic type of bpsc, and its renderers.
//!
//! Every phase (syntax, names, types, files, graph, sites, coverage, backends) reports
//! problems as [`Diagnostic`]s with a stable [`codes`] entry, a primary label on the token
//! at fault, optional secondary labels, help and notes.  Renderers turn them into text for
//! people (miette), JSON, SARIF 2.1.0, JUnit XML and LSP.

pub mod codes;
pub mod render;

use crate::source::{FileId, Loc, Span};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
    Note,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Note => "note",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Label {
    pub loc: Loc,
    pub message: String,
}

/// A machine-applicable fix: replace `loc` by `replacement` (used for "did you mean").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Suggestion {
    pub loc: Loc,
    pub replacement: String,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// Stable code such as `E201`; see [`codes::lookup`].
    pub code: &'static str,
    pub severity: Severity,
    pub message: String,
    /// Where the problem is.  `None` only for problems with no place in any file
    /// (e.g. a command-line argument).
    pub primary: Option<Label>,
    pub secondary: Vec<Label>,
    pub help: Option<String>,
    pub notes: Vec<String>,
    pub suggestions: Vec<Suggestion>,
}

impl Diagnostic {
    /// A diagnostic whose severity is the code's default.
    pub fn new(code: &'static str, message: impl Into<String>) -> Diagnostic {
        let severity = codes::lookup(code).map(|c| c.severity).unwrap_or(Severity::Error);
        debug_assert!(codes::lookup(code).is_some(), "unregistered diagnostic code {code}");
        Diagnostic {
            code,
            severity,
            message: message.into(),
            primary: None,
            secondary: Vec::new(),
            help: None,
            notes: Vec::new(),
            suggestions: Vec::new(),
        }
    }

    pub fn at(mut self, file: FileId, span: Span, label: impl Into<String>) -> Diagnostic {
        self.primary = Some(Label { loc: Loc { file, span }, message: label.into() });
        self
    }

    pub fn at_loc(self, loc: Loc, label: impl Into<String>) -> Diagnostic {
        self.at(loc.file, loc.span, label)
    }

    pub fn also(mut self, file: FileId, span: Span, label: impl Into<String>) -> Diagnostic {
        self.secondary.push(Label { loc: Loc { file, span }, message: label.into() });
        self
    }

    pub fn also_loc(self, loc: Loc, label: impl Into<String>) -> Diagnostic {
        self.also(loc.file, loc.span, label)
    }

    pub fn help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    pub fn note(mut self, note: impl Into<String>) -> Diagnostic {
        self.notes.push(note.into());
        self
    }

    pub fn suggest(mut self, loc: Loc, replacement: impl Into<String>, message: impl Into<String>) -> Diagnostic {
        self.suggestions.push(Suggestion { loc, replacement: replacement.into(), message: message.into() });
        self
    }

    pub fn severity(mut self, s: Severity) -> Diagnostic {
        self.severity = s;
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    pub fn file(&self) -> Option<FileId> {
        self.primary.as_ref().map(|l| l.loc.file)
    }
}

/// Collected diagnostics of a run, kept in a stable order.
#[derive(Debug, Default, Clone)]
pub struct Diagnostics {
    pub items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn push(&mut self, d: Diagnostic) {
        self.items.push(d);
    }
    pub fn extend(&mut self, ds: impl IntoIterator<Item = Diagnostic>) {
        self.items.extend(ds);
    }
    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|d| d.is_error())
    }
    pub fn error_count(&self) -> usize {
        self.items.iter().filter(|d| d.is_error()).count()
    }
    pub fn warning_count(&self) -> usize {
        self.items.iter().filter(|d| d.severity == Severity::Warning).count()
    }
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
    /// Sort by file, then position, then code; keeps output deterministic.
    pub fn sort(&mut self) {
        self.items.sort_by(|a, b| {
            let ka = a.primary.as_ref().map(|l| (l.loc.file, l.loc.span.lo, l.loc.span.hi));
            let kb = b.primary.as_ref().map(|l| (l.loc.file, l.loc.span.lo, l.loc.span.hi));
            ka.cmp(&kb).then(a.code.cmp(b.code)).then(a.message.cmp(&b.message))
        });
        self.items.dedup();
    }
}

/// Levenshtein-based "did you mean" over candidate names.
pub fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let mut best: Option<(usize, &'a str)> = None;
    let limit = (name.chars().count().max(3)) / 3 + 1;
    for c in candidates {
        if c == name {
            continue;
        }
        let d = if c.eq_ignore_ascii_case(name) { 0 } else { edit_distance(name, c) };
        if d <= limit && best.is_none_or(|(bd, bc)| d < bd || (d == bd && c < bc)) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
}

/// Levenshtein distance in characters (`strsim`); names over 64 characters are never close.
pub fn edit_distance(a: &str, b: &str) -> usize {
    if a.chars().count() > 64 || b.chars().count() > 64 {
        return usize::MAX / 2;
    }
    strsim::levenshtein(a, b)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn did_you_mean_picks_closest() {
        assert_eq!(did_you_mean("calibrat", ["isr", "calibrate", "coadd"]), Some("calibrate"));
        assert_eq!(did_you_mean("memroy", ["memory", "cpus"]), Some("memory"));
        assert_eq!(did_you_mean("zzzzzz", ["memory", "cpus"]), None);
    }
}

/// An I/O failure while writing output (a submit directory, an IR file): E409.
impl From<std::io::Error> for Diagnostic {
    fn from(e: std::io::Error) -> Diagnostic {
        Diagnostic::new("E409", format!("cannot write the output: {e}"))
            .help("check that the output directory's parent exists, is writable and has free space")
    }
}
