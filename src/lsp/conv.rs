//! The one place where the language server converts between LSP positions (0-based line,
//! UTF-16 character) and byte offsets, and between `file://` URIs and paths.  Both
//! directions go through [`SourceFile::position`] and [`SourceFile::offset_of_utf16`], the
//! conversions the diagnostics renderer uses.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use lsp_types::{Position, Range, Uri};

use crate::diag::render::lsp::LspPosition;
use crate::source::{SourceFile, Span};

pub fn position(file: &SourceFile, off: u32) -> Position {
    let p = LspPosition::from(file.position(off));
    Position { line: p.line, character: p.character }
}

pub fn range(file: &SourceFile, span: Span) -> Range {
    Range { start: position(file, span.lo), end: position(file, span.hi) }
}

pub fn offset(file: &SourceFile, p: Position) -> u32 {
    file.offset_of_utf16(p.line, p.character)
}

/// The path of a `file://` URI (percent-decoded); `None` for other schemes.
pub fn path_of(uri: &Uri) -> Option<PathBuf> {
    let s = uri.as_str();
    let rest = s.strip_prefix("file://")?;
    // `file://host/path` is not local; `file:///path` has an empty host.
    let rest = if rest.starts_with('/') { rest } else { rest.strip_prefix("localhost")? };
    let bytes = rest.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(v) = u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"), 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    let s = String::from_utf8(out).ok()?;
    // `/C:/x` on Windows.
    let s = if s.len() > 2 && s.as_bytes()[2] == b':' && s.starts_with('/') { s[1..].to_string() } else { s };
    Some(crate::fs::normalize(Path::new(&s)))
}

/// The `file://` URI of a path (the same text the diagnostics renderer produces).
pub fn uri_of(path: &Path) -> Uri {
    let s = crate::diag::render::file_uri(path);
    Uri::from_str(&s).unwrap_or_else(|_| Uri::from_str("file:///").expect("a valid URI"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::FileId;

    #[test]
    fn uris_round_trip_with_escapes() {
        let p = Path::new("/tmp/sub dir/b \u{e9}.bps");
        let u = uri_of(p);
        assert!(u.as_str().ends_with("/sub%20dir/b%20%C3%A9.bps"), "{}", u.as_str());
        assert_eq!(path_of(&u).unwrap(), p);
        assert_eq!(path_of(&Uri::from_str("untitled:Untitled-1").unwrap()), None);
    }

    #[test]
    fn positions_are_utf16() {
        let f = SourceFile::new(FileId(0), "x".into(), "x".into(), "ab\n\u{e9}\u{1F600}x\n".into());
        let x = f.text.find('x').unwrap() as u32;
        assert_eq!(position(&f, x), Position { line: 1, character: 3 });
        assert_eq!(offset(&f, Position { line: 1, character: 3 }), x);
    }
}
