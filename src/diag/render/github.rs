//! GitHub Actions workflow commands: one annotation per diagnostic, which GitHub shows on
//! the lines of the pull request's diff and in the run's summary.
//!
//! ```text
//! ::error file=drp.bps,line=12,col=5,endLine=12,endColumn=9,title=E201 undefined name::undefined step `calibrat`%0Ahelp: did you mean `calibrate`?
//! ```
//!
//! Errors become `::error`, warnings `::warning`, notes `::notice`.  The message is the
//! diagnostic's message followed by its help and notes, one per line.  Values are escaped as
//! GitHub's own toolkit does (`%` `\r` `\n` in the message; also `:` and `,` in the
//! properties), nothing else: the runner decodes exactly these.

use super::common::resolve;
use crate::diag::{codes, Diagnostic, Severity};
use crate::source::SourceMap;

fn escape_data(s: &str) -> String {
    s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// Render diagnostics as GitHub annotations, one line each.
pub fn render_github(map: &SourceMap, diags: &[Diagnostic]) -> String {
    let mut out = String::new();
    for d in diags {
        let kind = match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Note => "notice",
        };
        let mut props: Vec<String> = Vec::new();
        if let Some(p) = &d.primary {
            let r = resolve(map, p.loc);
            props.push(format!("file={}", escape_property(&r.name)));
            props.push(format!("line={}", r.start.line));
            props.push(format!("col={}", r.start.column));
            props.push(format!("endLine={}", r.end.line));
            props.push(format!("endColumn={}", r.end.column));
        }
        let title = match codes::lookup(d.code) {
            Some(info) => format!("{} {}", d.code, info.title),
            None => d.code.to_string(),
        };
        props.push(format!("title={}", escape_property(&title)));
        let mut msg = d.message.clone();
        if let Some(h) = &d.help {
            msg.push_str(&format!("\nhelp: {h}"));
        }
        for n in &d.notes {
            msg.push_str(&format!("\nnote: {n}"));
        }
        out.push_str(&format!("::{kind} {}::{}\n", props.join(","), escape_data(&msg)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::Span;
    use std::sync::Arc;

    #[test]
    fn annotations_carry_position_code_and_escaped_text() {
        let mut map = SourceMap::new();
        let f = map.add("dir/a,b.bps".into(), Arc::from("bps 1\nstep x after calibrat\n"));
        let d = Diagnostic::new("E201", "undefined step `calibrat`: 100%")
            .at(f, Span::new(19, 27), "no step of this name")
            .help("did you mean `calibrate`?");
        let s = render_github(&map, &[d, Diagnostic::new("W201", "dimension `band` is never used")]);
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("::error file=dir/a%2Cb.bps,line=2,col=14,endLine=2,endColumn=22,title=E201"), "{s}");
        assert!(lines[0].ends_with("::undefined step `calibrat`: 100%25%0Ahelp: did you mean `calibrate`?"), "{s}");
        assert!(lines[1].starts_with("::warning title=W201"), "{s}");
    }
}
