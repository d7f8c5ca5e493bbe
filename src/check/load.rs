//! Loading a campaign file and everything it includes.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::diag::Diagnostic;
use crate::fs::{relative_to, Fs, ReadError};
use crate::source::{FileId, SourceMap, Span};
use crate::syntax::ast::{Module, StmtKind};
use crate::syntax::parse;

/// Largest campaign file accepted (E407).
pub const MAX_SOURCE_BYTES: u64 = 16 << 20;

pub struct Program {
    pub map: SourceMap,
    /// Parsed `.bps` files in include order (root first, each include where it is met).
    pub modules: Vec<Module>,
    pub root: FileId,
    /// The root file itself could not be read: a usage/I/O problem (exit status 2).
    pub root_unreadable: bool,
}

impl Program {
    pub fn module(&self, file: FileId) -> Option<&Module> {
        self.modules.iter().find(|m| m.file == file)
    }
}

/// Decode bytes as UTF-8, or report E403 at the first bad byte (the file is still added to
/// the map, lossily decoded, so the diagnostic can point into it).
pub fn add_text(map: &mut SourceMap, path: PathBuf, bytes: Vec<u8>, diags: &mut Vec<Diagnostic>) -> (FileId, bool) {
    match String::from_utf8(bytes) {
        Ok(s) => (map.add(path, Arc::from(s)), true),
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
            // Offsets before `at` are the same in the lossy text, where the bad byte(s) became
            // one U+FFFD: the label covers that character.
            let id = map.add(path, Arc::from(text));
            diags.push(
                Diagnostic::new("E403", "file is not valid UTF-8")
                    .at(id, Span::new(at, at + '\u{fffd}'.len_utf8()), format!("byte {at} is not UTF-8"))
                    .help("save the file as UTF-8"),
            );
            (id, false)
        }
    }
}

pub fn load(fs: &dyn Fs, root: &Path, diags: &mut Vec<Diagnostic>) -> Program {
    let mut prog = Program { map: SourceMap::new(), modules: Vec::new(), root: FileId(0), root_unreadable: false };
    let mut stack: Vec<(PathBuf, FileId, Span)> = Vec::new();
    let mut seen: Vec<PathBuf> = Vec::new();
    match load_one(fs, root, None, &mut prog, &mut stack, &mut seen, diags) {
        Some(id) => prog.root = id,
        None => prog.root_unreadable = true,
    }
    prog
}

fn load_one(
    fs: &dyn Fs,
    path: &Path,
    from: Option<(FileId, Span)>,
    prog: &mut Program,
    stack: &mut Vec<(PathBuf, FileId, Span)>,
    seen: &mut Vec<PathBuf>,
    diags: &mut Vec<Diagnostic>,
) -> Option<FileId> {
    let ident = fs.identity(path);
    if let Some(pos) = stack.iter().position(|(p, _, _)| *p == ident) {
        if let Some((file, span)) = from {
            let mut d = Diagnostic::new("E402", "include cycle").at(
                file,
                span,
                format!("includes {}, which is already being included", crate::source::display_name(path)),
            );
            for (_, f, s) in &stack[pos + 1..] {
                d = d.also(*f, *s, "included from here");
            }
            let chain: Vec<String> =
                stack[pos..].iter().map(|(p, _, _)| crate::source::display_name(p)).chain([crate::source::display_name(path)]).collect();
            d = d
                .note(format!("cycle: {}", chain.join(" -> ")))
                .help("remove one of these includes; shared definitions belong in a file that includes nothing");
            diags.push(d);
        }
        return None;
    }
    if seen.contains(&ident) {
        return None; // included twice along different paths: read once
    }
    let bytes = match fs.read(path, MAX_SOURCE_BYTES) {
        Ok(b) => b,
        Err(e) => {
            let code = if matches!(e, ReadError::TooLarge { .. }) { "E407" } else { "E401" };
            let mut d = Diagnostic::new(code, format!("cannot read {}: {e}", crate::source::display_name(path)));
            if let Some((file, span)) = from {
                d = d.at(file, span, "included here");
                if code == "E401" {
                    d = d.help("include paths are relative to the including file");
                }
            }
            diags.push(d);
            return None;
        }
    };
    seen.push(ident.clone());
    let (id, ok) = add_text(&mut prog.map, path.to_path_buf(), bytes, diags);
    if !ok {
        return Some(id);
    }
    let text = prog.map.get(id).text.clone();
    let parsed = parse(id, &text);
    diags.extend(parsed.diags);
    let includes: Vec<(String, Span)> = parsed
        .module
        .stmts
        .iter()
        .filter_map(|s| match &s.kind {
            StmtKind::Include { path } => Some((path.value.clone(), path.span)),
            _ => None,
        })
        .collect();
    prog.modules.push(parsed.module);
    stack.push((ident, id, Span::default()));
    for (rel, span) in includes {
        let child = relative_to(path, &rel);
        if let Some(top) = stack.last_mut() {
            top.2 = span;
        }
        load_one(fs, &child, Some((id, span)), prog, stack, seen, diags);
    }
    stack.pop();
    Some(id)
}
