//! Reading CSV tables: the one reader of the checker (`check::tables`) and of lowering
//! (`lower::eval`), so a table that checks clean always lowers.
//!
//! Records are split by the `csv` crate (RFC 4180: `,` between fields, `\n`, `\r\n` or a
//! lone `\r` between records, `"` quoting with `""` for a quote, a quote opening a quoted
//! field only as its first byte, a UTF-8 byte-order mark ignored). On top of it:
//!
//! * the first record that is not blank is the header; records holding only whitespace are
//!   skipped everywhere (empty lines the crate skips itself);
//! * unquoted fields are trimmed of ASCII whitespace; a quoted field keeps its content
//!   verbatim (whitespace after its closing quote is ignored, anything else there is an
//!   error, and so is a quote that is never closed);
//! * a value is an integer when it parses as `i64`, otherwise a string; duplicate rows
//!   collapse (set semantics);
//! * every problem carries the byte range in the text it is about, so diagnostics point at
//!   the field, the record or the header (the crate gives each record's byte offset; field
//!   ranges are recovered from the record's bytes only when an error needs one).
//!
//! Rows are numbered from 1, the header being row 1 and blank records not counted.

use std::fmt;
use std::ops::Range;

use super::dict::{Dictionaries, DimId};
use super::relation::{canonicalize, Relation};
use super::value::ValueKind;

/// Reading stops once this many errors have been collected.
pub const MAX_CSV_ERRORS: usize = 20;

/// One CSV problem, located for a diagnostic.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct CsvError {
    pub kind: CsvErrorKind,
    /// 1-based row: the header is row 1, blank records are not counted.
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
    /// The text holds no header line (span: the whole, blank, text).
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
    /// A field of a used column holds a NUL byte, which no shell command, argument or file
    /// name can carry (found by fuzzing: the job could never have run).
    NulByte { column: String },
    /// The first field of a used column whose kind differs from the kind of the column's first
    /// value (which is on row `first_row`). Reported once per column.
    MixedKinds { column: String, expected: ValueKind, found: ValueKind, first_row: usize },
    /// A quoted field is never closed (span: from the opening quote to the end of the text).
    UnterminatedQuote,
    /// Text between a closing quote and the next separator (span: that text).
    TextAfterQuote,
}

impl fmt::Display for CsvErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CsvErrorKind::NoHeader => f.write_str("the table has no header row"),
            CsvErrorKind::MissingColumn { name } => write!(f, "the header has no column `{name}`"),
            CsvErrorKind::DuplicateColumn { name } => write!(f, "column `{name}` appears twice in the header"),
            CsvErrorKind::EmptyColumnName => f.write_str("empty column name in the header"),
            CsvErrorKind::FieldCount { expected, found } => {
                write!(f, "this row has {found} fields, the header has {expected}")
            }
            CsvErrorKind::EmptyField { column } => write!(f, "empty value in column `{column}`"),
            CsvErrorKind::NulByte { column } => write!(f, "a NUL byte in a value of column `{column}`"),
            CsvErrorKind::MixedKinds { column, expected, found, first_row } => write!(
                f,
                "column `{column}` mixes kinds: this value is a {found}, but the column's first value (row {first_row}) is a {expected}"
            ),
            CsvErrorKind::UnterminatedQuote => f.write_str("quoted field is never closed"),
            CsvErrorKind::TextAfterQuote => f.write_str("unexpected text after a closing quote"),
        }
    }
}

impl fmt::Display for CsvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.column {
            Some(c) => write!(f, "row {}, column {}: {}", self.row, c, self.kind),
            None => write!(f, "row {}: {}", self.row, self.kind),
        }
    }
}

impl std::error::Error for CsvError {}

/// One value of a used column, handed to the row callback of [`read_csv`].
#[derive(Clone, Copy, Debug)]
pub struct Cell<'r> {
    /// The value (trimmed, or a quoted field's content).
    pub text: &'r str,
    /// The value as an integer, when it is one.
    pub int: Option<i64>,
    /// Same text as this column's value in the previous row (sorted tables repeat values in
    /// runs, and callers can skip a dictionary look-up).
    pub repeat: bool,
}

/// What [`read_csv`] learnt about a table, also when it found errors.
#[derive(Clone, Debug, Default)]
pub struct CsvTable {
    /// The header's column names (trimmed, or quoted content).
    pub header: Vec<String>,
    /// Byte range of the header record.
    pub header_span: Range<usize>,
    /// Header index of each used column, in the order asked for (a name asked twice once).
    pub used: Vec<usize>,
    /// Kind of each used column (of its first value; `None` without rows).
    pub kinds: Vec<Option<ValueKind>>,
    /// Data rows read (blank records not counted).
    pub rows: usize,
}

#[inline]
fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n' | 0x0b | 0x0c)
}

fn trim(b: &[u8]) -> &[u8] {
    let lo = b.iter().position(|&c| !is_ws(c)).unwrap_or(b.len());
    let hi = b.iter().rposition(|&c| !is_ws(c)).map_or(lo, |i| i + 1);
    &b[lo..hi]
}

/// Where one field sits in the text.
struct RawField {
    /// Trimmed (unquoted) or quote-to-quote (quoted) byte range; zero-width at the field's
    /// start when it is empty.
    span: Range<usize>,
    quoted: bool,
    /// Bytes after the closing quote (all whitespace unless `bad`).
    after_quote: usize,
}

/// Split the record text `text[lo..hi]` (without its line break) the way the `csv` crate
/// does, to locate fields.  Also reports a quote that is never closed or text after a
/// closing quote (the crate accepts both silently).
fn raw_fields(text: &[u8], lo: usize, hi: usize, row: usize) -> (Vec<RawField>, Option<CsvError>) {
    let mut out = Vec::new();
    let mut bad = None;
    let mut i = lo;
    loop {
        if i < hi && text[i] == b'"' {
            let q = i;
            let mut j = i + 1;
            let mut closed = false;
            while j < hi {
                if text[j] == b'"' {
                    if j + 1 < hi && text[j + 1] == b'"' {
                        j += 2;
                        continue;
                    }
                    closed = true;
                    break;
                }
                j += 1;
            }
            if !closed {
                bad.get_or_insert(CsvError {
                    kind: CsvErrorKind::UnterminatedQuote,
                    row,
                    column: Some(out.len() + 1),
                    span: q..text.len(),
                });
                out.push(RawField { span: q..hi, quoted: true, after_quote: 0 });
                return (out, bad);
            }
            let end = j + 1;
            let mut k = end;
            while k < hi && text[k] != b',' {
                k += 1;
            }
            let junk = trim(&text[end..k]);
            if !junk.is_empty() {
                let at = end + text[end..k].iter().position(|&c| !is_ws(c)).unwrap_or(0);
                bad.get_or_insert(CsvError {
                    kind: CsvErrorKind::TextAfterQuote,
                    row,
                    column: Some(out.len() + 1),
                    span: at..at + junk.len(),
                });
            }
            out.push(RawField { span: q..end, quoted: true, after_quote: k - end });
            i = k;
        } else {
            let mut k = i;
            while k < hi && text[k] != b',' {
                k += 1;
            }
            let f = &text[i..k];
            let a = f.iter().position(|&c| !is_ws(c));
            let span = match a {
                Some(a) => i + a..i + f.iter().rposition(|&c| !is_ws(c)).map_or(a, |b| b + 1),
                None => i..i,
            };
            out.push(RawField { span, quoted: false, after_quote: 0 });
            i = k;
        }
        if i < hi && text[i] == b',' {
            i += 1;
            continue;
        }
        return (out, bad);
    }
}

/// The record's own bytes: `start` as the crate reports it may sit before skipped empty
/// lines, `end` (where the next record starts) after the line break.
fn record_bounds(text: &[u8], start: usize, end: usize) -> (usize, usize) {
    let mut lo = start.min(text.len());
    let mut hi = end.min(text.len());
    while lo < hi && (text[lo] == b'\n' || text[lo] == b'\r') {
        lo += 1;
    }
    while hi > lo && (text[hi - 1] == b'\n' || text[hi - 1] == b'\r') {
        hi -= 1;
    }
    (lo, hi)
}

/// One record: values and, on demand, where its fields are.
struct Record<'t> {
    text: &'t [u8],
    lo: usize,
    hi: usize,
    row: usize,
    /// Field positions, computed when the record holds a quote or an error needs them.
    raw: Option<Vec<RawField>>,
}

impl Record<'_> {
    fn field_span(&mut self, i: usize) -> Range<usize> {
        if self.raw.is_none() {
            self.raw = Some(raw_fields(self.text, self.lo, self.hi, self.row).0);
        }
        let lo = self.lo;
        self.raw.as_deref().and_then(|f| f.get(i)).map_or(lo..lo, |f| f.span.clone())
    }

    fn span(&self) -> Range<usize> {
        let b = &self.text[self.lo..self.hi];
        let a = b.iter().position(|&c| !is_ws(c)).unwrap_or(b.len());
        self.lo + a..self.lo + a + trim(b).len()
    }
}

/// The `csv` crate's reader over a text, yielding non-blank records with their rows.
struct Reader<'t> {
    text: &'t [u8],
    /// Bytes skipped before the reader's input (a byte-order mark).
    base: usize,
    rdr: csv::Reader<&'t [u8]>,
    rec: csv::ByteRecord,
    row: usize,
}

impl<'t> Reader<'t> {
    fn new(text: &'t str) -> Reader<'t> {
        let text = text.as_bytes();
        let base = if text.starts_with("\u{feff}".as_bytes()) { 3 } else { 0 };
        let rdr = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(&text[base..]);
        Reader { text, base, rdr, rec: csv::ByteRecord::new(), row: 0 }
    }

    /// The next non-blank record (its values in `self.rec`), with the quote error it holds.
    fn next(&mut self) -> Option<(Record<'t>, Option<CsvError>)> {
        loop {
            let before = self.rdr.position().byte() as usize;
            // Reading from memory fails only on I/O errors, which a slice has none of.
            if !matches!(self.rdr.read_byte_record(&mut self.rec), Ok(true)) {
                return None;
            }
            let start = self.rec.position().map_or(before, |p| p.byte() as usize);
            let (lo, hi) = record_bounds(self.text, self.base + start, self.base + self.rdr.position().byte() as usize);
            // A line of spaces is blank; `""` is one empty field.
            if self.rec.len() == 1 && self.text[lo..hi].iter().all(|&b| is_ws(b)) {
                continue;
            }
            self.row += 1;
            let mut r = Record { text: self.text, lo, hi, row: self.row, raw: None };
            let mut bad = None;
            if self.text[lo..hi].contains(&b'"') {
                let (fields, b) = raw_fields(self.text, lo, hi, self.row);
                r.raw = Some(fields);
                bad = b;
            }
            return Some((r, bad));
        }
    }
}

/// The value of field `i` as read by the crate, trimmed unless it was quoted.
fn value<'r>(rec: &'r csv::ByteRecord, i: usize, raw: Option<&[RawField]>) -> &'r [u8] {
    let v = rec.get(i).unwrap_or(b"");
    match raw.and_then(|r| r.get(i)) {
        Some(f) if f.quoted => &v[..v.len().saturating_sub(f.after_quote)],
        _ => trim(v),
    }
}

fn utf8(b: &[u8]) -> &str {
    // Fields are cut at ASCII bytes of a `&str`, so they are UTF-8.
    std::str::from_utf8(b).unwrap_or("")
}

/// Read a CSV table: check it and hand every data row's used values to `on_row`, with the
/// names of the used columns.
///
/// `columns`: `None` uses every header column (header order); `Some(names)` only those, in
/// the given order (a name asked twice is used once).  Checked: the header exists, used
/// column names are present, non-empty and unique; every record has the header's field
/// count; used fields are non-empty and of one kind per column; quotes are well formed.
/// Unused columns are only split.  `on_row` is called for each row while no error has been
/// found; the errors (at most [`MAX_CSV_ERRORS`], in text order) come back with what was
/// learnt of the table.
pub fn read_csv(text: &str, columns: Option<&[&str]>, mut on_row: impl FnMut(&[String], &[Cell])) -> (CsvTable, Vec<CsvError>) {
    let mut table = CsvTable::default();
    let mut errors: Vec<CsvError> = Vec::new();
    let mut rd = Reader::new(text);
    let Some((mut header, bad)) = rd.next() else {
        return (table, vec![CsvError { kind: CsvErrorKind::NoHeader, row: 1, column: None, span: 0..text.len() }]);
    };
    table.header_span = header.span();
    if let Some(e) = bad {
        return (table, vec![e]);
    }
    table.header = (0..rd.rec.len()).map(|i| utf8(value(&rd.rec, i, header.raw.as_deref())).to_string()).collect();
    let ncols = table.header.len();
    let header_span = table.header_span.clone();
    let mut header_error = |kind, at: Option<usize>| CsvError {
        kind,
        row: 1,
        column: at.map(|i| i + 1),
        span: at.map_or(header_span.clone(), |i| header.field_span(i)),
    };
    match columns {
        None => {
            for (i, h) in table.header.iter().enumerate() {
                if h.is_empty() {
                    errors.push(header_error(CsvErrorKind::EmptyColumnName, Some(i)));
                } else if table.header[..i].contains(h) {
                    errors.push(header_error(CsvErrorKind::DuplicateColumn { name: h.clone() }, Some(i)));
                } else {
                    table.used.push(i);
                }
            }
        }
        Some(names) => {
            for (k, name) in names.iter().enumerate() {
                if names[..k].contains(name) {
                    continue;
                }
                let mut hits = table.header.iter().enumerate().filter(|(_, h)| h == name).map(|(i, _)| i);
                match (hits.next(), hits.next()) {
                    (None, _) => errors.push(header_error(CsvErrorKind::MissingColumn { name: name.to_string() }, None)),
                    (Some(i), second) => {
                        if let Some(j) = second {
                            errors.push(header_error(CsvErrorKind::DuplicateColumn { name: name.to_string() }, Some(j)));
                        }
                        table.used.push(i);
                    }
                }
            }
        }
    }
    let names: Vec<String> = table.used.iter().map(|&i| table.header[i].clone()).collect();
    let n = names.len();
    // Per used column: the kind of its first value and that value's row, whether a mixed
    // kind was reported, and the previous value (for `Cell::repeat`).
    let mut expected: Vec<Option<(ValueKind, usize)>> = vec![None; n];
    let mut mixed_reported = vec![false; n];
    let mut last: Vec<Option<(Vec<u8>, Option<i64>)>> = vec![None; n];
    let mut found: Vec<(Range<usize>, Option<i64>, bool)> = Vec::with_capacity(n);
    while errors.len() < MAX_CSV_ERRORS {
        let Some((mut r, bad)) = rd.next() else { break };
        if let Some(e) = bad {
            errors.push(e);
            continue;
        }
        let rec = &rd.rec;
        if rec.len() != ncols {
            errors.push(CsvError {
                kind: CsvErrorKind::FieldCount { expected: ncols, found: rec.len() },
                row: r.row,
                column: None,
                span: r.span(),
            });
            continue;
        }
        table.rows += 1;
        found.clear();
        let clean = errors.is_empty();
        for (c, &i) in table.used.iter().enumerate() {
            let v = value(rec, i, r.raw.as_deref());
            if v.is_empty() {
                errors.push(CsvError {
                    kind: CsvErrorKind::EmptyField { column: names[c].clone() },
                    row: r.row,
                    column: Some(i + 1),
                    span: r.field_span(i),
                });
                continue;
            }
            if v.contains(&0) {
                errors.push(CsvError {
                    kind: CsvErrorKind::NulByte { column: names[c].clone() },
                    row: r.row,
                    column: Some(i + 1),
                    span: r.field_span(i),
                });
                continue;
            }
            let (int, repeat) = match &mut last[c] {
                Some((t, int)) if t.as_slice() == v => (*int, true),
                slot => {
                    let int = utf8(v).parse::<i64>().ok();
                    let buf = slot.get_or_insert_with(|| (Vec::new(), None));
                    buf.0.clear();
                    buf.0.extend_from_slice(v);
                    buf.1 = int;
                    (int, false)
                }
            };
            let kind = if int.is_some() { ValueKind::Int } else { ValueKind::Str };
            match expected[c] {
                None => expected[c] = Some((kind, r.row)),
                Some((want, first_row)) if want != kind && !mixed_reported[c] => {
                    mixed_reported[c] = true;
                    errors.push(CsvError {
                        kind: CsvErrorKind::MixedKinds { column: names[c].clone(), expected: want, found: kind, first_row },
                        row: r.row,
                        column: Some(i + 1),
                        span: r.field_span(i),
                    });
                }
                Some(_) => {}
            }
            let at = v.as_ptr() as usize - rec.as_slice().as_ptr() as usize;
            found.push((at..at + v.len(), int, repeat));
        }
        if clean && errors.is_empty() {
            let s = rec.as_slice();
            let cells: Vec<Cell> =
                found.iter().map(|(range, int, repeat)| Cell { text: utf8(&s[range.clone()]), int: *int, repeat: *repeat }).collect();
            on_row(&names, &cells);
        }
    }
    table.kinds = expected.iter().map(|e| e.map(|(k, _)| k)).collect();
    errors.truncate(MAX_CSV_ERRORS);
    (table, errors)
}

/// Load a relation from CSV `text` (see [`read_csv`] for the format and the checks).
///
/// `columns`: `None` makes every header column a dimension (header order); `Some(names)`
/// loads only those columns, in the given order. Dimensions are named after their columns;
/// rename afterwards if needed. On success values are interned into `dicts` (new codes in
/// order of first occurrence). On failure `dicts` is left as it was (values and dimensions
/// added during the attempt are removed) and the errors are returned.
pub fn table_from_csv(text: &str, dicts: &mut Dictionaries, columns: Option<&[&str]>) -> Result<Relation, Vec<CsvError>> {
    let (_, errors, rel) = read_into(text, dicts, columns);
    rel.ok_or(errors)
}

/// [`table_from_csv`] that also gives back what [`read_csv`] learnt of the table (for the
/// checker) and its errors; the relation only when there are none.
pub fn read_into(text: &str, dicts: &mut Dictionaries, columns: Option<&[&str]>) -> (CsvTable, Vec<CsvError>, Option<Relation>) {
    struct Col {
        dim: DimId,
        /// Dictionary size before loading, for the undo on failure.
        dict_len: usize,
        codes: Vec<u32>,
    }
    let dims_before = dicts.len();
    let mut cols: Vec<Col> = Vec::new();
    let open = |dicts: &mut Dictionaries, cols: &mut Vec<Col>, names: &[String]| {
        if cols.is_empty() {
            for n in names {
                let dim = dicts.dim(n);
                cols.push(Col { dim, dict_len: dicts.dict(dim).len(), codes: Vec::new() });
            }
        }
    };
    let (table, errors) = read_csv(text, columns, |names, cells| {
        open(dicts, &mut cols, names);
        for (c, cell) in cols.iter_mut().zip(cells) {
            let code = match c.codes.last() {
                Some(&last) if cell.repeat => last,
                _ => {
                    let dict = dicts.dict_mut(c.dim);
                    match cell.int {
                        Some(i) => dict.intern_int(i),
                        None => dict.intern_str(cell.text),
                    }
                }
            };
            c.codes.push(code);
        }
    });
    if !errors.is_empty() {
        for c in &cols {
            dicts.dict_mut(c.dim).truncate(c.dict_len);
        }
        dicts.truncate_dims(dims_before);
        return (table, errors, None);
    }
    let names: Vec<String> = table.used.iter().map(|&i| table.header[i].clone()).collect();
    open(dicts, &mut cols, &names);
    let schema: Vec<DimId> = cols.iter().map(|c| c.dim).collect();
    let out: Vec<Vec<u32>> = cols.into_iter().map(|c| c.codes).collect();
    let rel = canonicalize(schema, out, table.rows, dicts);
    (table, errors, Some(rel))
}

/// A table the checker has read and interned into dictionaries of its own, kept so that
/// lowering imports it instead of parsing the text a second time (at a million jobs the
/// tables are a quarter of the work of check and lowering).
pub struct PreRead {
    dicts: Dictionaries,
    rel: Relation,
}

impl fmt::Debug for PreRead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PreRead({} rows)", self.rel.len())
    }
}

impl PreRead {
    /// Read `text` as [`read_csv`] does, keeping the used columns as a relation when the table
    /// is clean.
    pub fn read(text: &str, columns: Option<&[&str]>) -> (CsvTable, Vec<CsvError>, Option<PreRead>) {
        let mut dicts = Dictionaries::new();
        let (table, errors, rel) = read_into(text, &mut dicts, columns);
        (table, errors, rel.map(|rel| PreRead { dicts, rel }))
    }

    /// The relation `table_from_csv(text, into, Some(columns))` would give, with the same
    /// codes in `into`: each column's values are interned in the order they first occur in
    /// the table (the order of this reader's own dictionary), then the rows are projected
    /// and put in canonical order.  `None` when a column was not read.
    pub fn import(&self, columns: &[&str], into: &mut Dictionaries) -> Option<Relation> {
        let mut wanted: Vec<&str> = Vec::with_capacity(columns.len());
        for c in columns {
            if !wanted.contains(c) {
                wanted.push(c);
            }
        }
        let mut found = Vec::with_capacity(wanted.len());
        for name in &wanted {
            let d = self.dicts.dim_id(name)?;
            found.push((d, self.rel.schema().iter().position(|&x| x == d)?));
        }
        let mut schema = Vec::with_capacity(wanted.len());
        let mut cols = Vec::with_capacity(wanted.len());
        for (name, (d, k)) in wanted.iter().zip(found) {
            let nd = into.dim(name);
            let dict = into.dict_mut(nd);
            let map: Vec<u32> = self.dicts.dict(d).values().iter().map(|v| dict.intern(v.clone())).collect();
            cols.push(self.rel.column(k).iter().map(|&c| map[c as usize]).collect::<Vec<u32>>());
            schema.push(nd);
        }
        Some(canonicalize(schema, cols, self.rel.len(), into))
    }
}
