//! CSV tables: loaded once, checked, kept in the source map so that diagnostics can point
//! at a row and column and lowering can reuse the text without reading the disk again.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::load::add_text;
use super::model::*;
use crate::diag::Diagnostic;
use crate::fs::{Fs, ReadError};
use crate::source::{FileId, Loc, SourceMap, Span};

/// Largest CSV table accepted (E407).
pub const MAX_TABLE_BYTES: u64 = 1 << 30;
/// Diagnostics reported per table before giving up on it.
const MAX_ERRORS_PER_TABLE: usize = 20;

#[derive(Clone, Debug)]
pub struct Table {
    pub file: FileId,
    pub header: Vec<String>,
    /// Per column: Some(true) all integers, Some(false) all strings, None no rows.
    pub kinds: Vec<Option<bool>>,
    pub rows: usize,
    /// The table was read and every checked column is clean.
    pub ok: bool,
}

#[derive(Clone, Debug, Default)]
pub struct Tables {
    pub by_path: BTreeMap<PathBuf, Table>,
}

impl Tables {
    pub fn get(&self, p: &std::path::Path) -> Option<&Table> {
        self.by_path.get(p)
    }
}

/// Columns each table must have, with the declaration that needs them.
fn requirements(model: &Model) -> BTreeMap<PathBuf, Vec<(String, Loc, Loc)>> {
    let mut req: BTreeMap<PathBuf, Vec<(String, Loc, Loc)>> = BTreeMap::new();
    for r in &model.relations {
        if let RelSource::Table { path, loc } = &r.source {
            let e = req.entry(path.clone()).or_default();
            for d in &r.dims {
                e.push((d.name.clone(), *loc, d.loc));
            }
        }
    }
    for d in &model.dims {
        if let Some(Domain::Table { path, column, loc, column_loc }) = &d.domain {
            req.entry(path.clone()).or_default().push((column.clone(), *loc, *column_loc));
        }
    }
    req
}

pub fn load_all(fs: &dyn Fs, map: &mut SourceMap, model: &Model, diags: &mut Vec<Diagnostic>) -> Tables {
    let mut out = Tables::default();
    for (path, needs) in requirements(model) {
        let decl = needs[0].1;
        let bytes = match fs.read(&path, MAX_TABLE_BYTES) {
            Ok(b) => b,
            Err(e) => {
                let code = if matches!(e, ReadError::TooLarge { .. }) { "E407" } else { "E404" };
                let mut d = Diagnostic::new(code, format!("cannot read table {}: {e}", crate::source::display_name(&path)))
                    .at_loc(decl, "this table");
                for (_, l, _) in needs.iter().skip(1).filter(|(_, l, _)| *l != decl) {
                    d = d.also_loc(*l, "also used here");
                }
                if code == "E404" {
                    d = d.help("table paths are relative to the file that declares them");
                }
                diags.push(d);
                continue;
            }
        };
        let (file, utf8) = add_text(map, path.clone(), bytes, diags);
        if !utf8 {
            continue;
        }
        let text = map.get(file).text.clone();
        let t = check_table(map, file, &text, &needs, diags);
        out.by_path.insert(path, t);
    }
    out
}

fn check_table(map: &SourceMap, file: FileId, text: &str, needs: &[(String, Loc, Loc)], diags: &mut Vec<Diagnostic>) -> Table {
    let mut rdr = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(text.as_bytes());
    let mut rec = csv::ByteRecord::new();
    let mut header: Vec<String> = Vec::new();
    let mut ok = true;
    let mut errors = 0usize;
    let header_span;
    match rdr.read_byte_record(&mut rec) {
        Ok(true) => {
            header = rec.iter().map(|f| String::from_utf8_lossy(f).trim().to_string()).collect();
            let start = rec.position().map(|p| p.byte() as usize).unwrap_or(0);
            let line_end = text[start..].find('\n').map(|i| start + i).unwrap_or(text.len());
            header_span = Span::new(start, line_end);
        }
        Ok(false) => {
            diags.push(
                Diagnostic::new("E406", "table is empty")
                    .at(file, Span::new(0, 0), "no header row")
                    .also_loc(needs[0].1, "table declared here")
                    .help(format!("the first row names the columns: {}", needs.iter().map(|n| n.0.as_str()).collect::<Vec<_>>().join(","))),
            );
            return Table { file, header, kinds: Vec::new(), rows: 0, ok: false };
        }
        Err(e) => {
            diags.push(
                Diagnostic::new("E406", format!("cannot parse table: {e}"))
                    .at(file, Span::new(0, 0), "here")
                    .also_loc(needs[0].1, "table declared here"),
            );
            return Table { file, header, kinds: Vec::new(), rows: 0, ok: false };
        }
    }
    // Duplicate header names.
    for (i, h) in header.iter().enumerate() {
        if header[..i].contains(h) {
            diags.push(
                Diagnostic::new("E406", format!("column `{h}` appears twice in the header"))
                    .at(file, header_span, "duplicate column")
                    .also_loc(needs[0].1, "table declared here"),
            );
            ok = false;
        }
    }
    let mut cols: Vec<usize> = Vec::new();
    let mut col_decl: Vec<Loc> = Vec::new();
    for (name, decl, dim_loc) in needs {
        match header.iter().position(|h| h == name) {
            Some(i) => {
                if !cols.contains(&i) {
                    cols.push(i);
                    col_decl.push(*decl);
                }
            }
            None => {
                let mut d = Diagnostic::new("E405", format!("table {} has no column `{name}`", map.get(file).name))
                    .at(file, header_span, format!("header: {}", header.join(",")))
                    .also_loc(*dim_loc, "this column is needed here");
                if let Some(s) = crate::diag::did_you_mean(name, header.iter().map(|h| h.as_str())) {
                    d = d.help(format!("the header has `{s}`; rename the column or the dimension"));
                } else {
                    d = d.help(format!("add a `{name}` column to the header row"));
                }
                diags.push(d);
                ok = false;
            }
        }
    }
    let mut kinds: Vec<Option<(bool, usize)>> = vec![None; header.len()];
    let mut rows = 0usize;
    let ncols = header.len();
    loop {
        match rdr.read_byte_record(&mut rec) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                let at = e.position().map(|p| p.byte() as usize).unwrap_or(0);
                diags.push(Diagnostic::new("E406", format!("cannot parse table: {e}")).at(file, Span::new(at, at + 1), "here"));
                ok = false;
                break;
            }
        }
        rows += 1;
        let row_no = rows + 1; // 1-based, header is row 1
        let start = rec.position().map(|p| p.byte() as usize).unwrap_or(0);
        if rec.len() == 1 && rec.get(0).is_some_and(|f| f.iter().all(|b| b.is_ascii_whitespace())) {
            continue; // blank line
        }
        if rec.len() != ncols {
            let end = text[start..].find('\n').map(|i| start + i).unwrap_or(text.len());
            diags.push(
                Diagnostic::new("E406", format!("row {row_no} has {} fields, the header has {ncols}", rec.len()))
                    .at(file, Span::new(start, end), format!("row {row_no}"))
                    .also_loc(col_decl.first().copied().unwrap_or(needs[0].1), "table declared here"),
            );
            ok = false;
            errors += 1;
            if errors >= MAX_ERRORS_PER_TABLE {
                break;
            }
            continue;
        }
        for (ci, &c) in cols.iter().enumerate() {
            let Some(field) = rec.get(c) else { continue };
            let fspan = field_span(&rec, c, start, text);
            let s = std::str::from_utf8(field).unwrap_or("").trim();
            if s.is_empty() {
                diags.push(
                    Diagnostic::new("E406", format!("empty value in column `{}`, row {row_no}", header[c]))
                        .at(file, fspan, format!("row {row_no}, column {}", c + 1))
                        .also_loc(col_decl[ci], "table declared here"),
                );
                ok = false;
                errors += 1;
            } else {
                let is_int = s.parse::<i64>().is_ok();
                match kinds[c] {
                    None => kinds[c] = Some((is_int, row_no)),
                    Some((k, first_row)) if k != is_int => {
                        let (want, got) = if k { ("integers", "a string") } else { ("strings", "an integer") };
                        diags.push(
                            Diagnostic::new("E406", format!("column `{}` holds {want}, but row {row_no} has {got} `{s}`", header[c]))
                                .at(file, fspan, format!("row {row_no}, column {}", c + 1))
                                .also_loc(col_decl[ci], "table declared here")
                                .note(format!("row {first_row} set the column's kind")),
                        );
                        ok = false;
                        errors += 1;
                    }
                    _ => {}
                }
            }
            if errors >= MAX_ERRORS_PER_TABLE {
                break;
            }
        }
        if errors >= MAX_ERRORS_PER_TABLE {
            diags.push(Diagnostic::new("E406", format!("too many errors in table {}; stopped reading it", map.get(file).name)).at(
                file,
                Span::new(start, start),
                "stopped here",
            ));
            break;
        }
    }
    Table { file, header, kinds: kinds.into_iter().map(|k| k.map(|(b, _)| b)).collect(), rows, ok }
}

/// Byte span of field `c` of a record that starts at `start`.  Exact for unquoted fields;
/// quoted fields are located by scanning the line.
fn field_span(rec: &csv::ByteRecord, c: usize, start: usize, text: &str) -> Span {
    let line_end = text[start..].find('\n').map(|i| start + i).unwrap_or(text.len());
    let line = &text.as_bytes()[start..line_end];
    if !line.contains(&b'"') {
        let mut lo = 0usize;
        for (i, f) in rec.iter().enumerate() {
            if i == c {
                return Span::new(start + lo, start + lo + f.len());
            }
            lo += f.len() + 1;
        }
    }
    // Quoted: walk the line honouring quotes.
    let mut field = 0usize;
    let mut in_q = false;
    let mut lo = 0usize;
    for (i, &b) in line.iter().enumerate() {
        match b {
            b'"' => in_q = !in_q,
            b',' if !in_q => {
                if field == c {
                    return Span::new(start + lo, start + i);
                }
                field += 1;
                lo = i + 1;
            }
            _ => {}
        }
    }
    Span::new(start + lo, line_end)
}

/// Value kind (integer or string) of each dimension, from domains and tables.
pub fn dim_kinds(model: &Model, tables: &Tables) -> BTreeMap<String, bool> {
    let mut out = BTreeMap::new();
    for d in &model.dims {
        let k = match &d.domain {
            Some(Domain::Range { .. }) => Some(true),
            Some(Domain::List(v)) => v.first().map(|l| matches!(l, Literal::Int(_))),
            Some(Domain::Table { path, column, .. }) => {
                tables.get(path).and_then(|t| t.header.iter().position(|h| h == column).and_then(|i| t.kinds.get(i).copied().flatten()))
            }
            None => None,
        };
        if let Some(k) = k {
            out.insert(d.name.clone(), k);
        }
    }
    for r in &model.relations {
        if let RelSource::Table { path, .. } = &r.source {
            if let Some(t) = tables.get(path) {
                for d in &r.dims {
                    if let Some(k) = t.header.iter().position(|h| *h == d.name).and_then(|i| t.kinds.get(i).copied().flatten()) {
                        out.entry(d.name.clone()).or_insert(k);
                    }
                }
            }
        }
    }
    out
}
