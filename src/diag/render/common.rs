//! Helpers shared by the renderers: resolving a [`Loc`] to positions, counting words,
//! turning paths into URIs.

use std::path::{Component, Path};

use crate::diag::{Diagnostic, Severity};
use crate::source::{Loc, Position, SourceFile, SourceMap, Span};

/// A [`Loc`] resolved against its file: the name shown to people, the byte range clamped
/// to the text (and to character boundaries), and both ends as positions.
#[derive(Clone, Debug)]
pub(crate) struct Resolved<'m> {
    pub file: Option<&'m SourceFile>,
    pub name: String,
    pub span: Span,
    pub start: Position,
    pub end: Position,
}

impl Resolved<'_> {
    /// `name:line:col` with the 1-based character column.
    pub fn display(&self) -> String {
        format!("{}:{}:{}", self.name, self.start.line, self.start.column)
    }

    /// Text of the line the range starts on.
    pub fn start_line_text(&self) -> &str {
        match self.file {
            Some(f) => f.line_text(self.start.line.saturating_sub(1) as usize),
            None => "",
        }
    }
}

/// Resolve `loc`; a file id the map does not know (a bug elsewhere) still yields a
/// usable value: name `<file #N>`, the span as given, positions 1:1.
pub(crate) fn resolve(map: &SourceMap, loc: Loc) -> Resolved<'_> {
    match map.try_get(loc.file) {
        Some(f) => {
            let span = clamp_span(f, loc.span);
            Resolved { file: Some(f), name: f.name.clone(), span, start: f.position(span.lo), end: f.position(span.hi) }
        }
        None => {
            let p = Position { line: 1, column: 1, column_utf16: 1 };
            Resolved { file: None, name: format!("<file #{}>", loc.file.0), span: loc.span, start: p, end: p }
        }
    }
}

/// Clamp a span to the file's text, with both ends moved down to character boundaries.
pub(crate) fn clamp_span(f: &SourceFile, span: Span) -> Span {
    let text = &*f.text;
    let floor = |mut o: usize| {
        o = o.min(text.len());
        while o > 0 && !text.is_char_boundary(o) {
            o -= 1;
        }
        o
    };
    let lo = floor(span.lo as usize);
    let hi = floor(span.hi as usize).max(lo);
    Span::new(lo, hi)
}

/// Number of UTF-16 code units in `text`.
pub(crate) fn utf16_len(text: &str) -> usize {
    text.encode_utf16().count()
}

/// `1 error`, `2 errors`.
pub(crate) fn count(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

pub(crate) fn severity_counts(diags: &[Diagnostic]) -> (usize, usize, usize) {
    let mut c = (0, 0, 0);
    for d in diags {
        match d.severity {
            Severity::Error => c.0 += 1,
            Severity::Warning => c.1 += 1,
            Severity::Note => c.2 += 1,
        }
    }
    c
}

/// `error[E201]`.
pub(crate) fn header(d: &Diagnostic) -> String {
    format!("{}[{}]", d.severity.as_str(), d.code)
}

/// The message followed by `help:` and `note:` lines, for formats with one text field.
pub(crate) fn message_with_help(d: &Diagnostic) -> String {
    let mut s = d.message.clone();
    if let Some(h) = &d.help {
        s.push_str("\nhelp: ");
        s.push_str(h);
    }
    for n in &d.notes {
        s.push_str("\nnote: ");
        s.push_str(n);
    }
    s
}

/// Bytes percent-encoded in a URI path: all but RFC 3986 unreserved characters and `/`.
const URI_PATH: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~').remove(b'/');

fn percent_encode_path(s: &str, out: &mut String) {
    out.extend(percent_encoding::utf8_percent_encode(s, URI_PATH));
}

/// A relative URI reference for a relative path (forward slashes, `./` dropped,
/// percent-encoded); `None` when the path is absolute.
pub(crate) fn relative_uri(name: &str) -> Option<String> {
    let unified = name.replace('\\', "/");
    if unified.starts_with('/') || has_drive_letter(&unified) || Path::new(name).is_absolute() {
        return None;
    }
    let mut parts = Vec::new();
    for part in unified.split('/') {
        if part.is_empty() || part == "." {
            continue;
        }
        parts.push(part);
    }
    let mut out = String::new();
    percent_encode_path(&parts.join("/"), &mut out);
    Some(out)
}

fn has_drive_letter(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':'
}

/// A `file://` URI for an absolute path (`file:///C:/x` for a Windows drive path).
/// A relative path is first joined to the current directory.
pub(crate) fn file_uri(path: &Path) -> String {
    let abs;
    let path = if path.is_absolute() || has_drive_letter(&path.to_string_lossy()) {
        path
    } else {
        abs = std::env::current_dir().map(|d| d.join(path)).unwrap_or_else(|_| path.to_path_buf());
        &abs
    };
    // Drop `.` components; keep the rest as written (no symlink resolution).
    let mut segs: Vec<String> = Vec::new();
    for c in path.components() {
        match c {
            Component::Prefix(p) => segs.push(p.as_os_str().to_string_lossy().replace('\\', "/")),
            Component::RootDir => {}
            Component::CurDir => {}
            Component::ParentDir => segs.push("..".into()),
            Component::Normal(s) => segs.push(s.to_string_lossy().into_owned()),
        }
    }
    let mut out = String::from("file://");
    let mut first = true;
    for seg in &segs {
        out.push('/');
        if first && has_drive_letter(seg) && seg.len() == 2 {
            out.push_str(seg);
        } else {
            percent_encode_path(seg, &mut out);
        }
        first = false;
    }
    if segs.is_empty() {
        out.push('/');
    }
    out
}

#[cfg(test)]
pub(crate) mod fixture {
    //! The shared test fixture: two files with non-ASCII text before the spans.

    use std::sync::Arc;

    use crate::diag::{Diagnostic, Severity};
    use crate::source::{FileId, SourceMap, Span};

    /// `a.bps`: line 2 is `  x = "é😀" memroy` — the span of `memroy` starts at char
    /// column 12 and UTF-16 column 13.
    pub const A: &str = "bps 1\n  x = \"\u{e9}\u{1F600}\" memroy\n";
    /// `sub dir/b é.bps`: line 1 is `😀 step calibrate`.
    pub const B: &str = "\u{1F600} step calibrate\nbps 1\n";

    pub fn map() -> (SourceMap, FileId, FileId) {
        let mut m = SourceMap::new();
        // Relative paths keep their names as given (see `display_name`).
        let a = m.add("a.bps".into(), Arc::from(A));
        let b = m.add("sub dir/b \u{e9}.bps".into(), Arc::from(B));
        (m, a, b)
    }

    pub fn span_of(text: &str, needle: &str) -> Span {
        let lo = text.find(needle).unwrap();
        Span::new(lo, lo + needle.len())
    }

    /// 1. an error in a.bps with a secondary label in b.bps, help, two notes, and a
    ///    message full of characters that need escaping;
    /// 2. a warning in b.bps with a secondary label in the same file;
    /// 3. an error without any location.
    pub fn diags() -> Vec<Diagnostic> {
        let (_, a, b) = map();
        let nasty = "unknown key \"memroy\" <in> & 'defaults'\nsecond line\u{1}\u{1b}[31m";
        let d1 = Diagnostic::new("E203", nasty)
            .at(a, span_of(A, "memroy"), "not a <key> & \"setting\"")
            .also(b, span_of(B, "calibrate"), "step defined here")
            .help("did you mean `memory`?")
            .note("keys are \"case\" sensitive")
            .note("see <bpsc explain E203>")
            .suggest(crate::source::Loc { file: a, span: span_of(A, "memroy") }, "memory", "fix the typo");
        let d2 = Diagnostic::new("W201", "unused definition `calibrate`").at(b, span_of(B, "calibrate"), "never used").also(
            b,
            span_of(B, "bps 1"),
            "header",
        );
        let d3 = Diagnostic::new("E401", "cannot read file `nope.bps`").severity(Severity::Error);
        vec![d1, d2, d3]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixture_positions_differ_between_chars_and_utf16() {
        let (map, a, b) = fixture::map();
        let r = resolve(&map, Loc { file: a, span: fixture::span_of(fixture::A, "memroy") });
        assert_eq!(r.name, "a.bps");
        assert_eq!(r.start, Position { line: 2, column: 12, column_utf16: 13 });
        assert_eq!(r.end, Position { line: 2, column: 18, column_utf16: 19 });
        let r = resolve(&map, Loc { file: b, span: fixture::span_of(fixture::B, "calibrate") });
        assert_eq!(r.start, Position { line: 1, column: 8, column_utf16: 9 });
    }

    #[test]
    fn spans_are_clamped_to_text_and_char_boundaries() {
        let (map, a, _) = fixture::map();
        let f = map.get(a);
        let e = fixture::A.find('\u{e9}').unwrap();
        assert_eq!(clamp_span(f, Span::new(e + 1, 10_000)), Span::new(e, fixture::A.len()));
        let r = resolve(&map, Loc { file: crate::source::FileId(9), span: Span::new(1, 2) });
        assert_eq!(r.name, "<file #9>");
    }

    #[test]
    fn uris() {
        assert_eq!(relative_uri("./sub dir/b\u{e9}.bps").unwrap(), "sub%20dir/b%C3%A9.bps");
        assert_eq!(relative_uri("a\\b#1.bps").unwrap(), "a/b%231.bps");
        assert_eq!(relative_uri("/abs/x.bps"), None);
        assert_eq!(relative_uri("C:\\x.bps"), None);
        assert_eq!(file_uri(Path::new("/proj/sub dir/b\u{e9}.bps")), "file:///proj/sub%20dir/b%C3%A9.bps");
        assert_eq!(file_uri(Path::new("/proj/./a.bps")), "file:///proj/a.bps");
        assert!(file_uri(Path::new("rel.bps")).starts_with("file:///"));
    }

    #[test]
    fn counts() {
        assert_eq!(count(1, "error"), "1 error");
        assert_eq!(count(0, "warning"), "0 warnings");
    }
}
