//! Loading relations from CSV text.
//!
//! A small hand-written splitter (rather than the `csv` crate) because diagnostics need the
//! byte range of every field *in the source text*, and interning straight from borrowed
//! `&str` slices keeps the hot loop allocation-free.
//!
//! Format: the first non-blank line is the header. Fields are separated by `,`, records by
//! `\n` (a `\r` before it is trimmed as whitespace; a lone `\r` is not a line break). A field
//! may be quoted with `"`; inside quotes `,` and line breaks are literal and `""` is one `"`.
//! Unquoted fields are trimmed of ASCII whitespace; quoted contents are kept verbatim
//! (whitespace around the quotes is ignored). Lines holding only whitespace are skipped. A
//! leading UTF-8 byte-order mark is ignored. Each value is an integer if it parses as `i64`
//! (after trimming/unquoting), otherwise a string. Duplicate data rows collapse (set
//! semantics).

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

use super::dict::{Dictionaries, DimId};
use super::relation::{canonicalize, Relation};
use super::value::ValueKind;

/// Loading stops once this many errors have been collected.
pub const MAX_CSV_ERRORS: usize = 20;

/// One CSV problem, located for a diagnostic.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct CsvError {
    pub kind: CsvErrorKind,
    /// 1-based physical line number in the text (the header is on line 1 unless blank lines
    /// precede it). For a field this is the line the field starts on.
    pub row: usize,
    /// 1-based field index within the record, when the error is about one field.
    pub column: Option<usize>,
    /// Byte range in the text: the offending field (trimmed; for a quoted field including the
    /// quotes; zero-width at the field's position when it is empty), or the whole record
    /// (without its line break) for record-level errors, or the header record for header
    /// problems.
    pub span: Range<usize>,
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub enum CsvErrorKind {
    /// The text holds no header line (span `0..0`, or the blank text).
    NoHeader,
    /// A requested column is not in the header (span: the header record).
    MissingColumn { name: String },
    /// A used column name appears more than once in the header (span: the second occurrence).
    DuplicateColumn { name: String },
    /// A used header field is empty.
    EmptyColumnName,
    /// A record has `found` fields, the header `expected` (span: the record).
    FieldCount { expected: usize, found: usize },
    /// An empty field in a used column.
    EmptyField { column: String },
    /// The first field of a used column whose kind differs from the kind of the column's first
    /// value (which is on line `first_row`). Reported once per column.
    MixedKinds { column: String, expected: ValueKind, found: ValueKind, first_row: usize },
    /// A quoted field is never closed (span: from the opening quote to the end of the text).
    /// Loading stops here.
    UnterminatedQuote,
    /// Text between a closing quote and the next separator (span: that text).
    TextAfterQuote,
}

impl fmt::Display for CsvErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CsvErrorKind::NoHeader => f.write_str("the CSV text has no header line"),
            CsvErrorKind::MissingColumn { name } => write!(f, "the header has no column `{name}`"),
            CsvErrorKind::DuplicateColumn { name } => write!(f, "column `{name}` appears twice in the header"),
            CsvErrorKind::EmptyColumnName => f.write_str("empty column name in the header"),
            CsvErrorKind::FieldCount { expected, found } => {
                write!(f, "this row has {found} fields, the header has {expected}")
            }
            CsvErrorKind::EmptyField { column } => write!(f, "empty value in column `{column}`"),
            CsvErrorKind::MixedKinds { column, expected, found, first_row } => write!(
                f,
                "column `{column}` mixes kinds: this value is a {found}, but the column's first value (line {first_row}) is a {expected}"
            ),
            CsvErrorKind::UnterminatedQuote => f.write_str("quoted field is never closed"),
            CsvErrorKind::TextAfterQuote => f.write_str("unexpected text after a closing quote"),
        }
    }
}

impl fmt::Display for CsvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.column {
            Some(c) => write!(f, "line {}, column {}: {}", self.row, c, self.kind),
            None => write!(f, "line {}: {}", self.row, self.kind),
        }
    }
}

impl std::error::Error for CsvError {}

struct Field<'a> {
    value: Cow<'a, str>,
    span: Range<usize>,
    line: usize,
}

struct RecordInfo {
    line: usize,
    span: Range<usize>,
    /// A recoverable problem inside the record (text after a closing quote).
    bad: Option<CsvError>,
}

#[inline(always)]
fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | 0x0b | 0x0c)
}

struct Splitter<'a> {
    text: &'a str,
    pos: usize,
    line: usize,
}

impl<'a> Splitter<'a> {
    /// The next non-blank record into `fields`; `Ok(None)` at the end of the text; `Err` for
    /// an unterminated quote (fatal).
    fn next_record(&mut self, fields: &mut Vec<Field<'a>>) -> Result<Option<RecordInfo>, CsvError> {
        fields.clear();
        let text = self.text;
        let b = text.as_bytes();
        let n = b.len();
        // Skip blank lines.
        loop {
            let mut p = self.pos;
            while p < n && is_ws(b[p]) {
                p += 1;
            }
            if p >= n {
                self.pos = n;
                return Ok(None);
            }
            if b[p] == b'\n' {
                self.pos = p + 1;
                self.line += 1;
                continue;
            }
            break;
        }
        let start = self.pos;
        let start_line = self.line;
        let mut bad = None;
        loop {
            let field_line = self.line;
            let mut p = self.pos;
            while p < n && is_ws(b[p]) {
                p += 1;
            }
            if p < n && b[p] == b'"' {
                let q = p;
                p += 1;
                let content = p;
                let mut escaped = false;
                loop {
                    let Some(off) = b[p..].iter().position(|&c| c == b'"') else {
                        return Err(CsvError {
                            kind: CsvErrorKind::UnterminatedQuote,
                            row: field_line,
                            column: Some(fields.len() + 1),
                            span: q..n,
                        });
                    };
                    self.line += b[p..p + off].iter().filter(|&&c| c == b'\n').count();
                    p += off;
                    if p + 1 < n && b[p + 1] == b'"' {
                        escaped = true;
                        p += 2;
                        continue;
                    }
                    break;
                }
                let raw = &text[content..p];
                p += 1;
                let span = q..p;
                while p < n && is_ws(b[p]) {
                    p += 1;
                }
                if p < n && b[p] != b',' && b[p] != b'\n' {
                    let junk = p;
                    while p < n && b[p] != b',' && b[p] != b'\n' {
                        p += 1;
                    }
                    let mut je = p;
                    while je > junk && is_ws(b[je - 1]) {
                        je -= 1;
                    }
                    bad.get_or_insert(CsvError {
                        kind: CsvErrorKind::TextAfterQuote,
                        row: self.line,
                        column: Some(fields.len() + 1),
                        span: junk..je,
                    });
                }
                let value = if escaped { Cow::Owned(raw.replace("\"\"", "\"")) } else { Cow::Borrowed(raw) };
                fields.push(Field { value, span, line: field_line });
            } else {
                let e = p + b[p..].iter().position(|&c| c == b',' || c == b'\n').unwrap_or(n - p);
                let mut te = e;
                while te > p && is_ws(b[te - 1]) {
                    te -= 1;
                }
                // An empty field points at its position (right after the separator).
                let span = if te == p { self.pos..self.pos } else { p..te };
                fields.push(Field { value: Cow::Borrowed(&text[p..te]), span, line: field_line });
                p = e;
            }
            if p < n && b[p] == b',' {
                self.pos = p + 1;
                continue;
            }
            let mut end = p;
            while end > start && is_ws(b[end - 1]) {
                end -= 1;
            }
            if p < n {
                self.pos = p + 1;
                self.line += 1;
            } else {
                self.pos = n;
            }
            return Ok(Some(RecordInfo { line: start_line, span: start..end, bad }));
        }
    }
}

/// Per used column.
struct ColState<'a> {
    name: String,
    index: usize,
    dim: DimId,
    /// Dictionary size before loading, for the undo on failure.
    dict_len: usize,
    codes: Vec<u32>,
    /// Kind of the column's first value and its line.
    expected: Option<(ValueKind, usize)>,
    mixed_reported: bool,
    /// The previous field's text, code and kind (sorted files repeat values in runs).
    last: Option<(&'a str, u32, ValueKind)>,
}

/// Load a relation from CSV `text`.
///
/// `columns`: `None` makes every header column a dimension (header order); `Some(names)`
/// loads only those columns, in the given order (a name requested twice is loaded once).
/// Dimensions are named after their columns; rename afterwards if needed. On success values
/// are interned into `dicts` (new codes in order of first occurrence). On failure `dicts` is
/// left as it was (values and dimensions added during the attempt are removed) and up to
/// [`MAX_CSV_ERRORS`] errors are returned in text order (header errors alone if the header
/// is bad).
///
/// Checked: the header exists, used column names are present, non-empty and unique; every
/// record has the header's field count; used fields are non-empty and of one kind per column;
/// quotes are well formed. Unused columns are only split, not checked.
pub fn table_from_csv<'a>(text: &'a str, dicts: &mut Dictionaries, columns: Option<&[&str]>) -> Result<Relation, Vec<CsvError>> {
    let start = if text.starts_with('\u{feff}') { 3 } else { 0 };
    let mut sp = Splitter { text, pos: start, line: 1 };
    let mut fields: Vec<Field<'a>> = Vec::new();
    let header = match sp.next_record(&mut fields) {
        Err(e) => return Err(vec![e]),
        Ok(None) => return Err(vec![CsvError { kind: CsvErrorKind::NoHeader, row: 1, column: None, span: 0..text.len() }]),
        Ok(Some(h)) => h,
    };
    if let Some(e) = header.bad {
        return Err(vec![e]);
    }
    let ncols = fields.len();
    let mut errors = Vec::new();
    let header_error = |kind, f: Option<(usize, &Field)>| CsvError {
        kind,
        row: f.map_or(header.line, |(_, f)| f.line),
        column: f.map(|(i, _)| i + 1),
        span: f.map_or(header.span.clone(), |(_, f)| f.span.clone()),
    };
    let mut used: Vec<usize> = Vec::new();
    match columns {
        None => {
            for (i, f) in fields.iter().enumerate() {
                if f.value.is_empty() {
                    errors.push(header_error(CsvErrorKind::EmptyColumnName, Some((i, f))));
                } else if fields[..i].iter().any(|g| g.value == f.value) {
                    errors.push(header_error(CsvErrorKind::DuplicateColumn { name: f.value.to_string() }, Some((i, f))));
                } else {
                    used.push(i);
                }
            }
        }
        Some(names) => {
            for (k, name) in names.iter().enumerate() {
                if names[..k].contains(name) {
                    continue;
                }
                let mut hits = fields.iter().enumerate().filter(|(_, f)| f.value == *name);
                match (hits.next(), hits.next()) {
                    (None, _) => errors.push(header_error(CsvErrorKind::MissingColumn { name: name.to_string() }, None)),
                    (Some(_), Some(second)) => {
                        errors.push(header_error(CsvErrorKind::DuplicateColumn { name: name.to_string() }, Some(second)))
                    }
                    (Some((i, _)), None) => used.push(i),
                }
            }
        }
    }
    if !errors.is_empty() {
        errors.truncate(MAX_CSV_ERRORS);
        return Err(errors);
    }
    // Values are interned into `dicts` as they are read (codes follow first occurrence, so
    // they are deterministic); on failure every touched dictionary is cut back.
    let dims_before = dicts.len();
    let mut cols: Vec<ColState<'a>> = used
        .iter()
        .map(|&i| {
            let name = fields[i].value.to_string();
            let dim = dicts.dim(&name);
            ColState {
                name,
                index: i,
                dim,
                dict_len: dicts.dict(dim).len(),
                codes: Vec::new(),
                expected: None,
                mixed_reported: false,
                last: None,
            }
        })
        .collect();

    let mut nrows = 0usize;
    while errors.len() < MAX_CSV_ERRORS {
        let rec = match sp.next_record(&mut fields) {
            Err(e) => {
                errors.push(e);
                break;
            }
            Ok(None) => break,
            Ok(Some(rec)) => rec,
        };
        if let Some(e) = rec.bad {
            errors.push(e);
            continue;
        }
        if fields.len() != ncols {
            errors.push(CsvError {
                kind: CsvErrorKind::FieldCount { expected: ncols, found: fields.len() },
                row: rec.line,
                column: None,
                span: rec.span,
            });
            continue;
        }
        nrows += 1;
        for col in cols.iter_mut() {
            let f = &fields[col.index];
            if f.value.is_empty() {
                errors.push(CsvError {
                    kind: CsvErrorKind::EmptyField { column: col.name.clone() },
                    row: f.line,
                    column: Some(col.index + 1),
                    span: f.span.clone(),
                });
                continue;
            }
            let borrowed: Option<&'a str> = match &f.value {
                Cow::Borrowed(s) => Some(s),
                Cow::Owned(_) => None,
            };
            let (code, kind) = match (borrowed, col.last) {
                (Some(s), Some((last, code, kind))) if s == last => (code, kind),
                _ => {
                    let dict = dicts.dict_mut(col.dim);
                    let (code, kind) = match f.value.parse::<i64>() {
                        Ok(i) => (dict.intern_int(i), ValueKind::Int),
                        Err(_) => (dict.intern_str(&f.value), ValueKind::Str),
                    };
                    col.last = borrowed.map(|s| (s, code, kind));
                    (code, kind)
                }
            };
            match col.expected {
                None => col.expected = Some((kind, f.line)),
                Some((expected, first_row)) if expected != kind => {
                    if !col.mixed_reported {
                        col.mixed_reported = true;
                        errors.push(CsvError {
                            kind: CsvErrorKind::MixedKinds { column: col.name.clone(), expected, found: kind, first_row },
                            row: f.line,
                            column: Some(col.index + 1),
                            span: f.span.clone(),
                        });
                    }
                }
                Some(_) => {}
            }
            col.codes.push(code);
        }
    }
    if !errors.is_empty() {
        for col in &cols {
            dicts.dict_mut(col.dim).truncate(col.dict_len);
        }
        dicts.truncate_dims(dims_before);
        errors.truncate(MAX_CSV_ERRORS);
        return Err(errors);
    }
    let schema: Vec<DimId> = cols.iter().map(|c| c.dim).collect();
    let out: Vec<Vec<u32>> = cols.into_iter().map(|c| c.codes).collect();
    Ok(canonicalize(schema, out, nrows, dicts))
}
