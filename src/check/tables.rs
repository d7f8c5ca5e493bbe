//! CSV tables: loaded once, checked, kept in the source map so that diagnostics can point
//! at a row and column and lowering can reuse the text without reading the disk again.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use super::load::add_text;
use super::model::*;
use crate::coverage::{read_csv, CsvError, CsvErrorKind, PreRead, ValueKind, MAX_CSV_ERRORS};
use crate::diag::Diagnostic;
use crate::fs::{Fs, ReadError};
use crate::source::{FileId, Loc, SourceMap, Span};

/// Largest CSV table accepted (E407).
pub const MAX_TABLE_BYTES: u64 = 1 << 30;

#[derive(Clone, Debug)]
pub struct Table {
    pub file: FileId,
    pub header: Vec<String>,
    /// Per column: Some(true) all integers, Some(false) all strings, None no rows.
    pub kinds: Vec<Option<bool>>,
    pub rows: usize,
    /// The table was read and every checked column is clean.
    pub ok: bool,
    /// The checked columns as a relation, for lowering to import (when the checker was asked
    /// to keep them and the table is clean).
    pub pre: Option<Arc<PreRead>>,
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

/// Read and check every table the model names.  `keep`: also keep each clean table's
/// checked columns for lowering (a compile), instead of lowering parsing the text again.
pub fn load_all(fs: &dyn Fs, map: &mut SourceMap, model: &Model, keep: bool, diags: &mut Vec<Diagnostic>) -> Tables {
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
        let t = check_table(map, file, &text, &needs, keep, diags);
        out.by_path.insert(path, t);
    }
    out
}

fn check_table(map: &SourceMap, file: FileId, text: &str, needs: &[(String, Loc, Loc)], keep: bool, diags: &mut Vec<Diagnostic>) -> Table {
    // One reader for the checker and for lowering (`coverage::read_csv`), asked for every
    // column some declaration needs: a table that checks clean always lowers.
    let mut cols: Vec<&str> = Vec::new();
    for (name, _, _) in needs {
        if !cols.contains(&name.as_str()) {
            cols.push(name);
        }
    }
    let (t, errors, pre) = if keep {
        PreRead::read(text, Some(&cols))
    } else {
        let (t, errors) = read_csv(text, Some(&cols), |_, _| {});
        (t, errors, None)
    };
    let name = &map.get(file).name;
    for e in &errors {
        diags.push(csv_diagnostic(name, file, text, e, &t.header, needs));
    }
    if errors.len() >= MAX_CSV_ERRORS {
        let at = errors.last().map_or(0, |e| e.span.start);
        diags.push(Diagnostic::new("E406", format!("too many errors in table {name}; stopped reading it")).at(
            file,
            Span::new(at, at),
            "stopped here",
        ));
    }
    let mut kinds = vec![None; t.header.len()];
    for (k, &i) in t.used.iter().enumerate() {
        kinds[i] = t.kinds.get(k).copied().flatten().map(|k| k == ValueKind::Int);
    }
    Table { file, ok: errors.is_empty(), header: t.header, kinds, rows: t.rows, pre: pre.map(Arc::new) }
}

/// A diagnostic for one problem of a table (`name` as shown, the table's `file` and `text`),
/// for the checker and for lowering alike.  `needs`: the columns wanted, each with the
/// declaration of the table and the place that needs the column (may be empty).
pub fn csv_diagnostic(name: &str, file: FileId, text: &str, e: &CsvError, header: &[String], needs: &[(String, Loc, Loc)]) -> Diagnostic {
    let span = Span::new(e.span.start, e.span.end);
    let decl_of = |col: &str| needs.iter().find(|(n, _, _)| n == col).or(needs.first()).map(|(_, d, _)| *d);
    let with_decl = |d: Diagnostic, col: &str| match decl_of(col) {
        Some(l) => d.also_loc(l, "table declared here"),
        None => d,
    };
    let row = e.row;
    let col_no = e.column.unwrap_or(0);
    match &e.kind {
        CsvErrorKind::NoHeader => {
            let d = Diagnostic::new("E406", "table is empty").at(file, Span::new(0, 0), "no header row");
            let d = with_decl(d, "");
            if needs.is_empty() {
                d
            } else {
                d.help(format!("the first row names the columns: {}", needs.iter().map(|n| n.0.as_str()).collect::<Vec<_>>().join(",")))
            }
        }
        CsvErrorKind::MissingColumn { name: col } => {
            let mut d = Diagnostic::new("E405", format!("table {name} has no column `{col}`")).at(
                file,
                span,
                format!("header: {}", header.join(",")),
            );
            if let Some((_, _, at)) = needs.iter().find(|(n, _, _)| n == col) {
                d = d.also_loc(*at, "this column is needed here");
            }
            match crate::diag::did_you_mean(col, header.iter().map(|h| h.as_str())) {
                Some(s) => d.help(format!("the header has `{s}`; rename the column or the dimension")),
                None => d.help(format!("add a `{col}` column to the header row")),
            }
        }
        CsvErrorKind::DuplicateColumn { name: col } => with_decl(
            Diagnostic::new("E406", format!("column `{col}` appears twice in the header")).at(file, span, "duplicate column"),
            col,
        ),
        CsvErrorKind::EmptyColumnName => {
            with_decl(Diagnostic::new("E406", "empty column name in the header").at(file, span, format!("column {col_no}")), "")
        }
        CsvErrorKind::FieldCount { expected, found } => with_decl(
            Diagnostic::new("E406", format!("row {row} has {found} fields, the header has {expected}")).at(
                file,
                span,
                format!("row {row}"),
            ),
            "",
        ),
        CsvErrorKind::EmptyField { column } => with_decl(
            Diagnostic::new("E406", format!("empty value in column `{column}`, row {row}")).at(
                file,
                span,
                format!("row {row}, column {col_no}"),
            ),
            column,
        ),
        CsvErrorKind::NulByte { column } => with_decl(
            Diagnostic::new("E406", format!("a value in column `{column}`, row {row}, holds a NUL byte"))
                .at(file, span, format!("row {row}, column {col_no}"))
                .help("a data ID value lands in shell commands, arguments and file names, none of which can hold a NUL byte; remove it"),
            column,
        ),
        CsvErrorKind::MixedKinds { column, expected, first_row, .. } => {
            let raw = text.get(e.span.clone()).unwrap_or("");
            let value = raw.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(raw).replace("\"\"", "\"");
            let (want, got) = if *expected == ValueKind::Int { ("integers", "a string") } else { ("strings", "an integer") };
            with_decl(
                Diagnostic::new("E406", format!("column `{column}` holds {want}, but row {row} has {got} `{value}`")).at(
                    file,
                    span,
                    format!("row {row}, column {col_no}"),
                ),
                column,
            )
            .note(format!("row {first_row} set the column's kind"))
        }
        CsvErrorKind::UnterminatedQuote => with_decl(
            Diagnostic::new("E406", format!("row {row}: a quoted field is never closed"))
                .at(file, Span::new(e.span.start, e.span.start + 1), "this quote is not closed")
                .help("close the quote; a quote inside a quoted field is written twice (\"\")"),
            "",
        ),
        CsvErrorKind::TextAfterQuote => with_decl(
            Diagnostic::new("E406", format!("row {row}: text after a closing quote"))
                .at(file, span, "after the closing quote")
                .help("quote the whole field, writing a quote inside it twice (\"\"), or remove the quotes"),
            "",
        ),
    }
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
