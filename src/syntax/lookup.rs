//! Finding things in a syntax tree by byte offset (for the language server).

use super::ast::*;

/// Is `off` inside the body `b` (between its braces; to the end of what was parsed when
/// the closing brace is missing)?
pub fn in_body(b: &Body, off: u32) -> bool {
    if b.closed {
        b.span.lo < off && off < b.span.hi
    } else {
        b.span.lo < off && off <= b.span.hi.max(b.span.lo + 1)
    }
}

/// The statements enclosing byte offset `off`, outermost first: each one's body contains
/// the offset, except possibly the last, which is the statement at the offset itself.
pub fn enclosing(stmts: &[Stmt], off: u32) -> Vec<&Stmt> {
    let mut out = Vec::new();
    let mut level = stmts;
    'outer: loop {
        for s in level {
            if let Some(b) = s.kind.body() {
                if in_body(b, off) {
                    out.push(s);
                    level = &b.stmts;
                    continue 'outer;
                }
            }
            if s.span.lo <= off && off <= s.span.hi {
                out.push(s);
                break 'outer;
            }
        }
        break;
    }
    out
}

/// The statements whose bodies contain `off` (the blocks the offset is in), outermost first.
pub fn blocks_at(stmts: &[Stmt], off: u32) -> Vec<&Stmt> {
    enclosing(stmts, off).into_iter().filter(|s| s.kind.body().is_some_and(|b| in_body(b, off))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::FileId;

    #[test]
    fn finds_blocks_even_when_unclosed() {
        let src = "bps 1\npipeline p {\n  step a {\n    memory = 1GiB\n  }\n  step b {\n    me";
        let m = crate::syntax::parse(FileId(0), src).module;
        let off = src.find("memory").unwrap() as u32;
        let names: Vec<&str> = blocks_at(&m.stmts, off).iter().map(|s| s.kind.describe()).collect();
        assert_eq!(names, ["`pipeline` definition", "`step`"]);
        let end = src.len() as u32;
        let chain = blocks_at(&m.stmts, end);
        assert_eq!(chain.len(), 2, "the unclosed step b is found at the end of the file");
        match &chain[1].kind {
            StmtKind::Step { name, .. } => assert_eq!(name.name.name, "b"),
            k => panic!("{k:?}"),
        }
    }
}
