//! Source files, byte spans and position conversion.
//!
//! Every position in bpsc is a byte offset into one file's text.  Conversion to
//! line/column (for people) and to UTF-16 columns (for editors speaking LSP) happens here
//! and nowhere else.

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Index of a file in a [`SourceMap`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct FileId(pub u32);

/// A half-open byte range `lo..hi` within one file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct Span {
    pub lo: u32,
    pub hi: u32,
}

impl Span {
    pub fn new(lo: usize, hi: usize) -> Span {
        Span { lo: clamp_u32(lo), hi: clamp_u32(hi.max(lo)) }
    }
    pub fn to(self, other: Span) -> Span {
        Span { lo: self.lo.min(other.lo), hi: self.hi.max(other.hi) }
    }
    pub fn len(self) -> usize {
        (self.hi - self.lo) as usize
    }
    pub fn is_empty(self) -> bool {
        self.hi == self.lo
    }
    pub fn range(self) -> std::ops::Range<usize> {
        self.lo as usize..self.hi as usize
    }
    pub fn contains(self, off: u32) -> bool {
        self.lo <= off && off <= self.hi
    }
}

fn clamp_u32(v: usize) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

/// A byte span in a particular file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Loc {
    pub file: FileId,
    pub span: Span,
}

/// 1-based line and column; `column` counts Unicode scalar values, `column_utf16` counts
/// UTF-16 code units (1-based as well), `character_utf16` is the 0-based LSP character.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Position {
    pub line: u32,
    pub column: u32,
    pub column_utf16: u32,
}

#[derive(Debug)]
pub struct SourceFile {
    pub id: FileId,
    /// Path as it is used to read the file (absolute or as given).
    pub path: PathBuf,
    /// Path as shown to people: relative to the working directory when it can be.
    pub name: String,
    pub text: Arc<str>,
    line_starts: Vec<u32>,
}

impl SourceFile {
    pub fn new(id: FileId, path: PathBuf, name: String, text: Arc<str>) -> SourceFile {
        let mut line_starts = vec![0u32];
        for (i, b) in text.bytes().enumerate() {
            if b == b'\n' {
                line_starts.push(clamp_u32(i + 1));
            }
        }
        SourceFile { id, path, name, text, line_starts }
    }

    pub fn line_count(&self) -> usize {
        self.line_starts.len()
    }

    /// 0-based line index containing byte offset `off`.
    pub fn line_index(&self, off: u32) -> usize {
        match self.line_starts.binary_search(&off) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        }
    }

    pub fn line_start(&self, line_idx: usize) -> u32 {
        self.line_starts.get(line_idx).copied().unwrap_or(self.text.len() as u32)
    }

    /// Text of the 0-based line (without the newline).
    pub fn line_text(&self, line_idx: usize) -> &str {
        let lo = self.line_start(line_idx) as usize;
        let hi = self.line_starts.get(line_idx + 1).map(|&h| h as usize).unwrap_or(self.text.len());
        self.text.get(lo..hi).unwrap_or("").trim_end_matches(['\n', '\r'])
    }

    pub fn position(&self, off: u32) -> Position {
        let off = off.min(self.text.len() as u32);
        let li = self.line_index(off);
        let start = self.line_start(li) as usize;
        let mut end = off as usize;
        while end > start && !self.text.is_char_boundary(end) {
            end -= 1;
        }
        let prefix = self.text.get(start..end).unwrap_or("");
        Position { line: li as u32 + 1, column: prefix.chars().count() as u32 + 1, column_utf16: prefix.encode_utf16().count() as u32 + 1 }
    }

    /// Byte offset of a 0-based (line, UTF-16 character) position, as LSP sends them.
    pub fn offset_of_utf16(&self, line: u32, character: u32) -> u32 {
        let li = line as usize;
        if li >= self.line_starts.len() {
            return self.text.len() as u32;
        }
        let start = self.line_start(li) as usize;
        let text = self.line_text(li);
        let mut units = 0u32;
        for (i, ch) in text.char_indices() {
            if units >= character {
                return (start + i) as u32;
            }
            units += ch.len_utf16() as u32;
        }
        (start + text.len()) as u32
    }

    pub fn slice(&self, span: Span) -> &str {
        self.text.get(span.range()).unwrap_or("")
    }
}

/// All files of one compilation: campaign files, included files and CSV tables.
#[derive(Debug, Default)]
pub struct SourceMap {
    files: Vec<SourceFile>,
}

impl SourceMap {
    pub fn new() -> SourceMap {
        SourceMap::default()
    }

    pub fn add(&mut self, path: PathBuf, text: Arc<str>) -> FileId {
        let id = FileId(self.files.len() as u32);
        let name = display_name(&path);
        self.files.push(SourceFile::new(id, path, name, text));
        id
    }

    pub fn get(&self, id: FileId) -> &SourceFile {
        &self.files[id.0 as usize]
    }

    pub fn try_get(&self, id: FileId) -> Option<&SourceFile> {
        self.files.get(id.0 as usize)
    }

    pub fn find(&self, path: &Path) -> Option<FileId> {
        self.files.iter().find(|f| f.path == path).map(|f| f.id)
    }

    pub fn files(&self) -> impl Iterator<Item = &SourceFile> {
        self.files.iter()
    }
}

/// A path as shown to people: relative to the current directory where possible.
pub fn display_name(path: &Path) -> String {
    if let Ok(cwd) = std::env::current_dir() {
        if let Ok(rel) = path.strip_prefix(&cwd) {
            return rel.to_string_lossy().into_owned();
        }
    }
    path.to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_chars_and_utf16_units() {
        let f = SourceFile::new(FileId(0), "x".into(), "x".into(), "ab\n\u{e9}\u{1F600}x\n".into());
        assert_eq!(f.position(0), Position { line: 1, column: 1, column_utf16: 1 });
        assert_eq!(f.position(3), Position { line: 2, column: 1, column_utf16: 1 });
        // é is 2 bytes, 1 char, 1 UTF-16 unit; 😀 is 4 bytes, 1 char, 2 UTF-16 units.
        let x = f.text.find('x').unwrap() as u32;
        assert_eq!(f.position(x), Position { line: 2, column: 3, column_utf16: 4 });
        assert_eq!(f.offset_of_utf16(1, 3), x);
        assert_eq!(f.line_text(1), "\u{e9}\u{1F600}x");
    }
}
