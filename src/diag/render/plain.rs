//! Temporary plain renderer (replaced by the miette/JSON/SARIF/JUnit renderers).
use crate::diag::Diagnostic;
use crate::source::{FileId, SourceMap};

fn at(map: &SourceMap, l: &crate::diag::Label) -> String {
    let f = map.get(l.loc.file);
    let p = f.position(l.loc.span.lo);
    format!("{}:{}:{}", f.name, p.line, p.column)
}

pub fn render_human(map: &SourceMap, diags: &[Diagnostic], _color: bool) -> String {
    let mut s = String::new();
    for d in diags {
        match &d.primary {
            Some(p) => s.push_str(&format!(
                "{}: {}[{}]: {}\n  {} {}\n",
                at(map, p),
                d.severity.as_str(),
                d.code,
                d.message,
                "-->",
                p.message
            )),
            None => s.push_str(&format!(
                "{}[{}]: {}\n",
                d.severity.as_str(),
                d.code,
                d.message
            )),
        }
        for l in &d.secondary {
            s.push_str(&format!("  {}: {}\n", at(map, l), l.message));
        }
        if let Some(h) = &d.help {
            s.push_str(&format!("  help: {h}\n"));
        }
        for n in &d.notes {
            s.push_str(&format!("  note: {n}\n"));
        }
    }
    s
}
pub fn summary_line(_map: &SourceMap, diags: &[Diagnostic], files: usize) -> String {
    let e = diags.iter().filter(|d| d.is_error()).count();
    format!("{e} errors, {} warnings in {files} files", diags.len() - e)
}
pub fn render_json(map: &SourceMap, diags: &[Diagnostic]) -> String {
    render_human(map, diags, false)
}
pub fn render_sarif(map: &SourceMap, diags: &[Diagnostic]) -> String {
    render_human(map, diags, false)
}
pub fn render_junit(
    map: &SourceMap,
    _files: &[FileId],
    diags: &[Diagnostic],
    _deny: bool,
) -> String {
    render_human(map, diags, false)
}
