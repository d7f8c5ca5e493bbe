//! Text for people, drawn by miette's [`GraphicalReportHandler`].
//!
//! Each [`Diagnostic`] becomes one miette report:
//!
//! ```text
//! error[E203]
//!
//!   × unknown key `memroy`
//!    ╭─[defaults.bps:2:3]
//!  1 │ defaults {
//!  2 │   memroy = 4GiB
//!    ·   ───┬──
//!    ·      ╰── not a setting
//!  3 │ }
//!    ╰────
//!   help: did you mean `memory`?
//!   note: keys are case sensitive
//! ```
//!
//! * the header is `severity[CODE]`; the message follows miette's severity mark;
//! * the primary label is miette's primary span, secondary labels in the same file are
//!   further labels of the same snippet;
//! * `help` is miette's help; notes follow it as `note:` lines (miette has no notes);
//! * secondary labels in *other* files become further miette reports (severity advice),
//!   one per file, each with its own snippet and a `related location: file:line:col`
//!   message, drawn after the notes;
//! * columns in snippet headers count characters, like every `file:line:col` of bpsc
//!   (miette alone would count bytes);
//! * control characters in messages are written as `\u{1b}`; in source snippets they are
//!   shown as `?`, so neither can send escape sequences to the terminal;
//! * a diagnostic without a primary label has no snippet: `error[E401]: message`, then
//!   the help and notes;
//! * [`summary_line`] ends the output.
//!
//! Nothing depends on the terminal or the environment: the theme is chosen by `color`,
//! the width is fixed at [`WIDTH`], links and syntax highlighting are off.

use std::fmt;
use std::sync::Arc;

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, MietteError, MietteSpanContents, SourceSpan, SpanContents};

use super::common::{clamp_span, count, header, resolve, severity_counts};
use crate::diag::{Diagnostic, Label, Severity};
use crate::source::{FileId, SourceMap};

/// Width the text is wrapped at.
pub const WIDTH: usize = 100;

/// A [`Diagnostic`] in the shape miette draws.
#[derive(Debug)]
struct Report {
    code: Option<String>,
    severity: miette::Severity,
    message: String,
    help: Option<String>,
    source: Option<Source>,
    labels: Vec<LabeledSpan>,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Report {}

impl miette::Diagnostic for Report {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.code.as_ref().map(|c| Box::new(c) as Box<dyn fmt::Display>)
    }
    fn severity(&self) -> Option<miette::Severity> {
        Some(self.severity)
    }
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help.as_ref().map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.source.as_ref().map(|s| s as &dyn miette::SourceCode)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        if self.labels.is_empty() {
            None
        } else {
            Some(Box::new(self.labels.iter().cloned()))
        }
    }
}

fn miette_severity(s: Severity) -> miette::Severity {
    match s {
        Severity::Error => miette::Severity::Error,
        Severity::Warning => miette::Severity::Warning,
        Severity::Note => miette::Severity::Advice,
    }
}

/// A file's text as miette reads it.
///
/// Like `miette::NamedSource`, but the column miette prints in a snippet's
/// `[file:line:col]` header counts characters (as everywhere in bpsc) instead of bytes,
/// and control characters are shown as `?` (C0, DEL) or `¿` (C1) so that source text
/// cannot send escape sequences to the terminal.  Both replacements keep byte offsets.
///
/// miette draws no label for an empty span at the very end of the text (where E102
/// points); with `pad_eof` a space is appended so that it has a character to stand on.
///
/// miette finds a span's lines by scanning the text from its start, for every label: on a
/// large file with many diagnostics that is most of the cost of drawing them (the fuzzer
/// spent two thirds of its time there).  So `Source` keeps where each line starts and hands
/// miette only the few lines around the span (the same lines it would pick), shifting the
/// offsets and line number back.
#[derive(Clone, Debug)]
struct Source {
    name: String,
    text: Arc<str>,
    /// Byte offset of every line's start, as miette breaks lines (`\n`, `\r\n`, a lone `\r`).
    lines: Arc<[usize]>,
}

/// Where each line of `text` starts, line breaks as miette counts them.
fn line_starts(text: &str) -> Vec<usize> {
    let b = text.as_bytes();
    let mut v = vec![0];
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\n' => v.push(i + 1),
            b'\r' if b.get(i + 1) == Some(&b'\n') => {
                i += 1;
                v.push(i + 1);
            }
            b'\r' => v.push(i + 1),
            _ => {}
        }
        i += 1;
    }
    v
}

impl Source {
    fn new(name: &str, text: &Arc<str>, pad_eof: bool) -> Source {
        let text = if pad_eof {
            let mut t = text.to_string();
            t.push(' ');
            Arc::from(t)
        } else {
            text.clone()
        };
        let text = if text.chars().any(is_control) {
            let clean: String = text
                .chars()
                .map(|c| match c {
                    '\u{80}'..='\u{9f}' => "\u{bf}".to_string(),
                    c if is_control(c) => "?".to_string(),
                    c => c.to_string(),
                })
                .collect();
            debug_assert_eq!(clean.len(), text.len());
            Arc::from(clean)
        } else {
            text.clone()
        };
        let lines = line_starts(&text).into();
        Source { name: sanitize(name), text, lines }
    }

    /// The line (0-based) that holds byte `offset`.
    fn line_of(&self, offset: usize) -> usize {
        self.lines.partition_point(|&s| s <= offset).saturating_sub(1)
    }
}

impl miette::SourceCode for Source {
    fn read_span<'a>(&'a self, span: &SourceSpan, before: usize, after: usize) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        // A window of whole lines, one more than miette needs on each side (so it stops
        // where it would in the whole text), and the span relative to it.
        let first = self.line_of(span.offset()).saturating_sub(before + 1);
        let last = self.line_of(span.offset() + span.len()).saturating_add(after + 2);
        let (lo, hi) = (self.lines[first], self.lines.get(last).copied().unwrap_or(self.text.len()));
        let window = self.text.get(lo..hi).unwrap_or(&self.text);
        let lo = if window.len() == self.text.len() { 0 } else { lo };
        let first = if lo == 0 { 0 } else { first };
        let inner = SourceSpan::new(span.offset().saturating_sub(lo).into(), span.len());
        let c = window.read_span(&inner, before, after)?;
        let (at, len) = (c.span().offset() + lo, c.span().len());
        // miette's line count runs from the start of the text (it decides whether two labels'
        // snippets merge): the lines before the window count too.
        let c = MietteSpanContents::new(c.data(), SourceSpan::new(at.into(), len), c.line() + first, c.column(), c.line_count() + first);
        let start = c.span().offset();
        let line_start = start.saturating_sub(c.column());
        let column = self.text.get(line_start..start).map_or(c.column(), |p| p.chars().count());
        Ok(Box::new(MietteSpanContents::new_named(self.name.clone(), c.data(), *c.span(), c.line(), column, c.line_count())))
    }
}

/// Characters that must not reach a terminal as they are: C0 controls other than tab
/// and newline (and carriage return, which miette handles), DEL and C1 controls.
fn is_control(c: char) -> bool {
    c.is_control() && !matches!(c, '\t' | '\n' | '\r')
}

/// `text` with control characters (see [`is_control`]) written as `\u{1b}`.
fn sanitize(text: &str) -> String {
    if !text.chars().any(is_control) {
        return text.to_string();
    }
    let mut s = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_control(c) {
            s.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            s.push(c);
        }
    }
    s
}

/// The [`Source`] of `file` for drawing `labels` (all in that file).
fn source<'l>(map: &SourceMap, file: FileId, labels: impl IntoIterator<Item = &'l Label>) -> Option<Source> {
    let f = map.try_get(file)?;
    let len = f.text.len() as u32;
    let pad_eof = labels.into_iter().any(|l| {
        let s = clamp_span(f, l.loc.span);
        s.is_empty() && s.lo == len
    });
    // Preparing a source scans (and may copy) the whole file: do it once per file, not once
    // per diagnostic.  The cache holds the file's text, so a pointer is never reused for
    // another text while cached.
    type Cache = Vec<(Arc<str>, bool, Source)>;
    thread_local! {
        static CACHE: std::cell::RefCell<Cache> = const { std::cell::RefCell::new(Vec::new()) };
    }
    let hit = CACHE.with(|c| c.borrow().iter().find(|(t, p, _)| Arc::ptr_eq(t, &f.text) && *p == pad_eof).map(|(_, _, s)| s.clone()));
    if let Some(s) = hit.filter(|s| s.name == sanitize(&f.name)) {
        return Some(s);
    }
    let s = Source::new(&f.name, &f.text, pad_eof);
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() >= 8 {
            c.remove(0);
        }
        c.push((f.text.clone(), pad_eof, s.clone()));
    });
    Some(s)
}

fn labeled(map: &SourceMap, l: &Label, primary: bool) -> Option<LabeledSpan> {
    let f = map.try_get(l.loc.file)?;
    let span = clamp_span(f, l.loc.span);
    let text = (!l.message.is_empty()).then(|| sanitize(&l.message));
    let range = span.lo as usize..span.hi as usize;
    Some(if primary { LabeledSpan::new_primary_with_span(text, range) } else { LabeledSpan::new_with_span(text, range) })
}

/// Build the miette report of `d` (for a diagnostic with a primary label in a known file),
/// and one related report for each other file that secondary labels point into.
///
/// The related reports are not returned by `miette::Diagnostic::related`: miette would
/// draw them before our notes and prefix them with `Advice:`; [`render_one`] draws them
/// after the notes instead.
fn report(map: &SourceMap, d: &Diagnostic, primary: &Label) -> (Report, Vec<Report>) {
    let file = primary.loc.file;
    let mut labels: Vec<LabeledSpan> = labeled(map, primary, true).into_iter().collect();
    // Secondary labels in other files, grouped by file in order of first appearance.
    let mut others: Vec<(FileId, Vec<&Label>)> = Vec::new();
    for l in &d.secondary {
        if l.loc.file == file {
            labels.extend(labeled(map, l, false));
        } else if let Some(g) = others.iter_mut().find(|(f, _)| *f == l.loc.file) {
            g.1.push(l);
        } else {
            others.push((l.loc.file, vec![l]));
        }
    }
    let mut related = Vec::new();
    for (f, ls) in others {
        let places: Vec<String> = ls.iter().map(|l| resolve(map, l.loc).display()).collect();
        let message = if places.len() == 1 {
            format!("related location: {}", places[0])
        } else {
            format!("related locations: {}", places.join(", "))
        };
        let message = sanitize(&message);
        let source = source(map, f, ls.iter().copied());
        let labels = if source.is_some() { ls.iter().filter_map(|l| labeled(map, l, false)).collect() } else { Vec::new() };
        related.push(Report { code: None, severity: miette::Severity::Advice, message, help: None, source, labels });
    }
    let main = Report {
        code: Some(header(d)),
        severity: miette_severity(d.severity),
        message: sanitize(&d.message),
        help: d.help.as_deref().map(sanitize),
        source: source(map, file, std::iter::once(primary).chain(d.secondary.iter().filter(|l| l.loc.file == file))),
        labels,
    };
    (main, related)
}

fn handler(color: bool) -> GraphicalReportHandler {
    let theme = if color { GraphicalTheme::unicode() } else { GraphicalTheme::unicode_nocolor() };
    GraphicalReportHandler::new_themed(theme)
        .with_width(WIDTH)
        .with_links(false)
        .with_urls(false)
        .without_syntax_highlighting()
        .with_context_lines(1)
        .with_show_related_as_nested(false)
        // Break lines at spaces (and, by the default splitter, after hyphens): Unicode line
        // breaking (UAX #14) took half the time of drawing a diagnostic, and bpsc's messages
        // break the same way with either.
        .with_word_separator(textwrap::WordSeparator::AsciiSpace)
}

/// `  note: text` lines, continuation lines aligned under the text.
fn push_notes(out: &mut String, notes: &[String], theme: &GraphicalTheme) {
    for n in notes {
        let n = sanitize(n);
        let mut lines = n.lines();
        let first = lines.next().unwrap_or("");
        out.push_str(&format!("  {} {}\n", theme.styles.help.style("note:"), first));
        for l in lines {
            out.push_str("        ");
            out.push_str(l);
            out.push('\n');
        }
    }
}

/// Render one diagnostic (without the summary line).
pub fn render_one(map: &SourceMap, d: &Diagnostic, color: bool) -> String {
    let h = handler(color);
    let theme = if color { GraphicalTheme::unicode() } else { GraphicalTheme::unicode_nocolor() };
    let mut out = String::new();
    match d.primary.as_ref().filter(|p| map.try_get(p.loc.file).is_some()) {
        Some(p) => {
            let (main, related) = report(map, d, p);
            let mut s = String::new();
            if h.render_report(&mut s, &main).is_err() {
                // Only a broken `fmt::Write` or span makes miette fail; say what we can.
                s = format!("{}: {}\n", header(d), sanitize(&d.message));
            }
            out.push_str(&s);
            push_notes(&mut out, &d.notes, &theme);
            for rel in &related {
                let mut s = String::new();
                if h.render_report(&mut s, rel).is_ok() {
                    out.push_str(&s);
                }
            }
        }
        None => {
            let style = match d.severity {
                Severity::Error => theme.styles.error,
                Severity::Warning => theme.styles.warning,
                Severity::Note => theme.styles.advice,
            };
            out.push_str(&format!("{}: {}\n", style.style(header(d)), sanitize(&d.message)));
            if let Some(help) = &d.help {
                let help = sanitize(help);
                let mut lines = help.lines();
                out.push_str(&format!("  {} {}\n", theme.styles.help.style("help:"), lines.next().unwrap_or("")));
                for l in lines {
                    out.push_str("        ");
                    out.push_str(l);
                    out.push('\n');
                }
            }
            push_notes(&mut out, &d.notes, &theme);
            // A label in an unknown file, or secondary labels of a diagnostic without a
            // primary one: name their places at least.
            for l in d.primary.iter().chain(&d.secondary) {
                let mut msg = resolve(map, l.loc).display();
                if !l.message.is_empty() {
                    msg = format!("{msg}: {}", l.message);
                }
                let msg = sanitize(&msg);
                out.push_str(&format!("  {} {}\n", theme.styles.help.style("at:"), msg));
            }
        }
    }
    out
}

/// Render `diags` in the given order, a blank line between them, and end with
/// [`summary_line`].
pub fn render_human(map: &SourceMap, diags: &[Diagnostic], color: bool) -> String {
    let mut out = String::new();
    for d in diags {
        let s = render_one(map, d, color);
        out.push_str(s.trim_end_matches('\n'));
        out.push_str("\n\n");
    }
    out.push_str(&summary_line(diags));
    out.push('\n');
    out
}

/// `error: 3 errors, 1 warning in 2 files`.
///
/// The leading word is the worst severity present (`error`, `warning`, `note`), or `ok`
/// when there is nothing. Notes are counted only when there are some. Files are those
/// of the primary labels; ` in N files` is left out when no diagnostic has one.
pub fn summary_line(diags: &[Diagnostic]) -> String {
    let (errors, warnings, notes) = severity_counts(diags);
    let mut files: Vec<FileId> = diags.iter().filter_map(|d| d.file()).collect();
    files.sort();
    files.dedup();
    let lead = if errors > 0 {
        "error"
    } else if warnings > 0 {
        "warning"
    } else if notes > 0 {
        "note"
    } else {
        return "ok: no errors or warnings".to_string();
    };
    let mut s = format!("{lead}: {}, {}", count(errors, "error"), count(warnings, "warning"));
    if notes > 0 {
        s.push_str(&format!(", {}", count(notes, "note")));
    }
    if !files.is_empty() {
        s.push_str(&format!(" in {}", count(files.len(), "file")));
    }
    s
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::common::fixture;
    use super::*;
    use crate::source::Span;

    /// The windowed `read_span` gives miette exactly what miette's own gives for the whole
    /// text: every span of many small texts of `\n`, `\r\n`, lone `\r`, multi-byte
    /// characters, with 0 to 2 context lines.
    #[test]
    fn windowed_read_span_equals_miettes_own() {
        let pieces = ["a", "\n", "\r\n", "\r", "é", "bb"];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut compared = 0;
        for _ in 0..3000 {
            let mut text = String::new();
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let n = (seed % 14) as usize;
            for k in 0..n {
                text.push_str(pieces[((seed >> (4 * k % 60)) % pieces.len() as u64) as usize]);
            }
            let src = Source::new("f", &Arc::from(text.as_str()), false);
            for lo in 0..=text.len() {
                for len in 0..=(text.len() - lo) {
                    if !text.is_char_boundary(lo) || !text.is_char_boundary(lo + len) {
                        continue;
                    }
                    let span = SourceSpan::new(lo.into(), len);
                    for (before, after) in [(0, 0), (1, 1), (2, 2), (0, 2), (2, 0)] {
                        let want = miette::SourceCode::read_span(&*src.text, &span, before, after);
                        let got = miette::SourceCode::read_span(&src, &span, before, after);
                        match (want, got) {
                            (Ok(w), Ok(g)) => {
                                assert_eq!(g.data(), w.data(), "{text:?} {lo}+{len} ({before},{after})");
                                assert_eq!(*g.span(), *w.span(), "{text:?} {lo}+{len}");
                                assert_eq!(g.line(), w.line(), "{text:?} {lo}+{len}");
                                assert_eq!(g.line_count(), w.line_count(), "{text:?} {lo}+{len}");
                                compared += 1;
                            }
                            (Err(_), Err(_)) => {}
                            (w, g) => panic!("{text:?} {lo}+{len}: whole text {}, window {}", w.is_ok(), g.is_ok()),
                        }
                    }
                }
            }
        }
        assert!(compared > 10_000, "{compared}");
    }

    const EXPECTED_PLAIN: &str = r#"error[E203]

  × unknown key "memroy" <in> & 'defaults'
  │ second line\u{1}\u{1b}[31m
   ╭─[a.bps:2:12]
 1 │ bps 1
 2 │   x = "é😀" memroy
   ·             ───┬──
   ·                ╰── not a <key> & "setting"
   ╰────
  help: did you mean `memory`?
  note: keys are "case" sensitive
  note: see <bpsc explain E203>
  ☞ related location: sub dir/b é.bps:1:8
   ╭─[sub dir/b é.bps:1:8]
 1 │ 😀 step calibrate
   ·         ────┬────
   ·             ╰── step defined here
 2 │ bps 1
   ╰────

warning[W201]

  ⚠ unused definition `calibrate`
   ╭─[sub dir/b é.bps:1:8]
 1 │ 😀 step calibrate
   ·         ────┬────
   ·             ╰── never used
 2 │ bps 1
   · ──┬──
   ·   ╰── header
   ╰────

error[E401]: cannot read file `nope.bps`

error: 2 errors, 1 warning in 2 files
"#;

    /// Remove `ESC [ ... m` colour sequences.
    fn strip_ansi(s: &str) -> String {
        let mut out = String::new();
        let mut chars = s.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '\u{1b}' && chars.peek() == Some(&'[') {
                for c in chars.by_ref() {
                    if c == 'm' {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    }

    #[test]
    fn plain_output_is_exact() {
        let (map, _, _) = fixture::map();
        let out = render_human(&map, &fixture::diags(), false);
        assert_eq!(out, EXPECTED_PLAIN, "got:\n{out}");
        assert!(!out.contains('\u{1b}'), "the message's ESC must not reach the terminal");
    }

    #[test]
    fn colour_output_differs_only_by_colour_codes() {
        let (map, _, _) = fixture::map();
        let out = render_human(&map, &fixture::diags(), true);
        assert!(out.contains("\u{1b}["), "colour codes expected");
        assert_eq!(strip_ansi(&out), EXPECTED_PLAIN);
    }

    #[test]
    fn output_is_deterministic() {
        let (map, _, _) = fixture::map();
        let ds = fixture::diags();
        assert_eq!(render_human(&map, &ds, true), render_human(&map, &ds, true));
        let (map2, _, _) = fixture::map();
        assert_eq!(render_human(&map, &ds, false), render_human(&map2, &ds, false));
    }

    #[test]
    fn no_primary_label_with_help_notes_and_places() {
        let (map, a, _) = fixture::map();
        let d = Diagnostic::new("E401", "cannot read file").help("check the path\nand the permissions").note("tried: x.bps").also(
            a,
            Span::new(0, 3),
            "included here",
        );
        let out = render_one(&map, &d, false);
        assert_eq!(
            out,
            "error[E401]: cannot read file\n  help: check the path\n        and the permissions\n  note: tried: x.bps\n  at: a.bps:1:1: included here\n"
        );
    }

    #[test]
    fn unknown_file_falls_back_to_plain_form() {
        let (map, _, _) = fixture::map();
        let d = Diagnostic::new("E100", "oops").at(crate::source::FileId(7), Span::new(0, 1), "here");
        assert_eq!(render_one(&map, &d, false), "error[E100]: oops\n  at: <file #7>:1:1: here\n");
    }

    #[test]
    fn control_characters_in_source_are_masked_without_moving_spans() {
        let mut map = SourceMap::new();
        let text = "bps 1\nx \u{1b}[2J\u{85} = y\n";
        let f = map.add("c.bps".into(), Arc::from(text));
        let lo = text.find('=').unwrap();
        let d = Diagnostic::new("E106", "bad").at(f, Span::new(lo, lo + 1), "this one");
        let out = render_one(&map, &d, false);
        assert!(!out.contains('\u{1b}') && !out.contains('\u{85}'), "{out}");
        assert!(out.contains(" 2 │ x ?[2J\u{bf} = y\n"), "{out}");
        // `=` is the 9th character of its line.
        assert!(out.contains("[c.bps:2:9]"), "{out}");
        let col = out.lines().find(|l| l.contains('┬')).unwrap().chars().position(|c| c == '┬');
        let eq = out.lines().find(|l| l.starts_with(" 2 │")).unwrap().chars().position(|c| c == '=');
        assert_eq!(col, eq, "{out}");
    }

    #[test]
    fn empty_and_out_of_range_spans_render() {
        let (map, a, _) = fixture::map();
        let end = fixture::A.len();
        let d = Diagnostic::new("E102", "unclosed").at(a, Span::new(end, end + 50), "file ends here");
        let out = render_one(&map, &d, false);
        assert!(out.contains("[a.bps:3:1]"), "{out}");
        assert!(out.contains(" 3 │  \n   · ▲\n   · ╰── file ends here\n"), "{out}");
        // Without a final newline, the mark stands after the last character.
        let mut map = SourceMap::new();
        let f = map.add("c.bps".into(), Arc::from("bps 1\nabc"));
        let d = Diagnostic::new("E102", "unclosed").at(f, Span::new(1, 3), "opened here").also(f, Span::new(9, 9), "ends");
        let out = render_one(&map, &d, false);
        assert!(out.contains(" 2 │ abc \n   ·    ▲\n   ·    ╰── ends\n"), "{out}");
        // An empty span inside a line.
        let d = Diagnostic::new("E102", "x").at(f, Span::new(7, 7), "here");
        assert!(render_one(&map, &d, false).contains(" 2 │ abc\n   ·  ▲\n"));
    }

    #[test]
    fn summary_lines() {
        let (_, a, b) = fixture::map();
        assert_eq!(summary_line(&[]), "ok: no errors or warnings");
        let e = |f| Diagnostic::new("E100", "x").at(f, Span::new(0, 1), "");
        let w = Diagnostic::new("W201", "y").at(a, Span::new(0, 1), "");
        assert_eq!(summary_line(&[e(a), e(b), e(a), w.clone()]), "error: 3 errors, 1 warning in 2 files");
        assert_eq!(summary_line(std::slice::from_ref(&w)), "warning: 0 errors, 1 warning in 1 file");
        let n = Diagnostic::new("E100", "z").severity(Severity::Note);
        assert_eq!(summary_line(&[n]), "note: 0 errors, 0 warnings, 1 note");
    }
}
