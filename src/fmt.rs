//! The canonical formatter behind `bpsc fmt` and the language server's formatting.
//!
//! # The canonical style
//!
//! * `bps 1` or `bps 1.1` on the first line (after any leading comments); one statement per line;
//!   `,` and `;` between statements become line breaks.
//! * Indentation is two spaces per block level; `{` ends the line of its statement, `}`
//!   stands on a line of its own.  A block with nothing in it is written `{}`.
//! * Blank lines between statements and comments are kept, at most one in a row; blank
//!   lines just inside `{` and `}` and at the end of the file are removed.
//! * Within one block, the `=` of consecutive settings line up (`key   = value`).  Only a
//!   statement other than a setting (a block, `use`, `step` ...) ends such a run; blank
//!   lines and comment lines do not.
//! * One space around `=`, `*`, `+`, `-`, comparison operators and the words `where`,
//!   `and`, `or`, `not`, `in`; none inside `( )` and `[ ]`, around `.` and `..`, or
//!   between a function and its `(`; `, ` between items.  `step s over (a, b)` and
//!   `dataset d(a, b)` / `relation r(a, b)` are written as shown.
//! * A list `[...]` or a call's arguments stay on one line when they were written on one
//!   line; written over several lines, they become one item per line, each indented one
//!   level more and followed by `,`, with the closing bracket on a line of its own.  Any
//!   other expression written over several lines is joined onto one line.
//! * Parentheses are kept as written.  Literals (numbers, sizes, durations, strings with
//!   their escapes) are kept exactly as written.
//! * Comments are kept: a comment on a line of its own stays on a line of its own, at the
//!   indentation of what follows it; a comment after code stays after that code.  Trailing
//!   comments of consecutive lines are aligned two spaces after the longest line.  In the
//!   rare case of a comment inside a statement's head or inside an expression (other than
//!   between the items of a list or call), that statement's head is kept as written.
//! * Lines are not wrapped.  A byte-order mark is dropped; line ends become `\n`.
//!
//! The formatter refuses files with syntax errors (it never guesses at broken text), and
//! before returning it re-parses its output and checks that the syntax tree (spans aside)
//! and the comments are the same as the input's.  Formatting is idempotent.

use crate::diag::Diagnostic;
use crate::source::{FileId, Span};
use crate::syntax::ast::*;
use crate::syntax::lexer::{lex, Tok, Token};
use crate::syntax::parse;

#[derive(Debug)]
pub enum FmtError {
    /// The file does not parse; nothing was formatted.
    Syntax(Vec<Diagnostic>),
    /// The formatter's output would not mean the same as its input (a bug): refused.
    Internal(String),
}

impl std::fmt::Display for FmtError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FmtError::Syntax(d) => write!(f, "the file has {} syntax error(s); not formatted", d.len()),
            FmtError::Internal(m) => write!(f, "internal formatter error ({m}); the file was left unchanged"),
        }
    }
}

/// Format a whole `.bps` file.
pub fn format_source(src: &str) -> Result<String, FmtError> {
    let file = FileId(0);
    let parsed = parse(file, src);
    if !parsed.diags.is_empty() {
        return Err(FmtError::Syntax(parsed.diags));
    }
    if has_error_nodes(&parsed.module) {
        return Err(FmtError::Internal("syntax tree has error nodes but no diagnostics".into()));
    }
    let out = Printer::new(src, &parsed.module).run();
    // Safety net: the output must mean exactly what the input meant.
    let again = parse(file, &out);
    if !again.diags.is_empty() {
        return Err(FmtError::Internal(format!("the output does not parse: {}", again.diags[0].message)));
    }
    let (mut a, mut b) = (parsed.module.clone(), again.module.clone());
    strip_module(&mut a);
    strip_module(&mut b);
    if a != b {
        return Err(FmtError::Internal("the output parses to a different syntax tree".into()));
    }
    let ca: Vec<&str> = parsed.module.comments.iter().map(|c| src[c.range()].trim_end()).collect();
    let cb: Vec<&str> = again.module.comments.iter().map(|c| out[c.range()].trim_end()).collect();
    if ca != cb {
        return Err(FmtError::Internal("comments would be lost or reordered".into()));
    }
    Ok(out)
}

fn has_error_nodes(m: &Module) -> bool {
    fn stmts(v: &[Stmt]) -> bool {
        v.iter().any(|s| matches!(s.kind, StmtKind::Error) || s.kind.body().is_some_and(|b| !b.closed || stmts(&b.stmts)))
    }
    stmts(&m.stmts)
}

// ---------------------------------------------------------------- output lines

#[derive(Debug, Default)]
struct Line {
    indent: usize,
    /// A setting's key and its alignment run.
    key: Option<(String, usize)>,
    text: String,
    comment: Option<String>,
    /// Kept exactly as written (continuation lines of a head kept verbatim).
    raw: bool,
    blank: bool,
}

struct Printer<'a> {
    src: &'a str,
    module: &'a Module,
    toks: Vec<Token>,
    /// For each opening bracket token, the index of its closing token.
    close: Vec<u32>,
    comments: Vec<Span>,
    next_comment: usize,
    lines: Vec<Line>,
    cur: Option<Line>,
    runs: usize,
    /// Source end of the last item (statement or comment) printed, for blank lines.
    last_end: u32,
    /// No blank line may be emitted before the next item (start of a block).
    at_block_start: bool,
    /// Inside a list or call laid out one item per line (no blank lines there).
    in_list: u32,
}

impl<'a> Printer<'a> {
    fn new(src: &'a str, module: &'a Module) -> Printer<'a> {
        let toks = lex(module.file, src).tokens;
        let mut close = vec![u32::MAX; toks.len()];
        let mut stack: Vec<usize> = Vec::new();
        for (i, t) in toks.iter().enumerate() {
            match t.kind {
                Tok::LParen | Tok::LBracket | Tok::LBrace => stack.push(i),
                Tok::RParen | Tok::RBracket | Tok::RBrace => {
                    if let Some(o) = stack.pop() {
                        close[o] = i as u32;
                    }
                }
                _ => {}
            }
        }
        Printer {
            src,
            module,
            toks,
            close,
            comments: module.comments.clone(),
            next_comment: 0,
            lines: Vec::new(),
            cur: None,
            runs: 0,
            last_end: 0,
            at_block_start: true,
            in_list: 0,
        }
    }

    fn text(&self, s: Span) -> &'a str {
        self.src.get(s.range()).unwrap_or("")
    }

    // ---- line building

    fn start(&mut self, indent: usize) {
        debug_assert!(self.cur.is_none());
        self.cur = Some(Line { indent, ..Default::default() });
    }

    fn push(&mut self, s: &str) {
        if let Some(l) = &mut self.cur {
            l.text.push_str(s);
        }
    }

    /// Finish the current line; a comment after source position `pos` on the same source
    /// line, with no token in between, becomes its trailing comment.
    fn end_line(&mut self, pos: u32) {
        let comment = self.take_trailing(pos);
        if let Some(mut l) = self.cur.take() {
            l.comment = comment;
            self.lines.push(l);
        }
    }

    fn take_trailing(&mut self, pos: u32) -> Option<String> {
        let c = *self.comments.get(self.next_comment)?;
        if c.lo < pos || self.src.get(pos as usize..c.lo as usize).is_none_or(|gap| gap.contains('\n')) {
            return None;
        }
        let ti = self.toks.partition_point(|t| t.span.lo < pos);
        if self.toks.get(ti).is_some_and(|t| t.kind != Tok::Eof && t.span.lo < c.lo) {
            return None;
        }
        self.next_comment += 1;
        Some(self.text(c).trim_end().to_string())
    }

    /// Before an item starting at `pos`: a blank line if the source has one.
    fn blank_before(&mut self, pos: u32) {
        if self.at_block_start || self.in_list > 0 {
            return;
        }
        let gap = self.src.get(self.last_end as usize..pos as usize).unwrap_or("");
        if gap.bytes().filter(|&b| b == b'\n').count() >= 2 && self.lines.last().is_some_and(|l| !l.blank) {
            self.lines.push(Line { blank: true, ..Default::default() });
        }
    }

    /// Comments on lines of their own before `upto`, at `indent`.
    fn own_line_comments(&mut self, upto: u32, indent: usize) {
        while let Some(&c) = self.comments.get(self.next_comment) {
            if c.lo >= upto {
                break;
            }
            self.next_comment += 1;
            self.blank_before(c.lo);
            self.lines.push(Line { indent, text: self.text(c).trim_end().to_string(), ..Default::default() });
            self.last_end = c.hi;
            self.at_block_start = false;
        }
    }

    // ---- tokens

    fn tok_index_at(&self, pos: u32) -> usize {
        self.toks.partition_point(|t| t.span.lo < pos)
    }

    /// The span inside the parentheses when `span` is exactly one parenthesised group.
    fn paren_inner(&self, span: Span) -> Option<Span> {
        let i = self.tok_index_at(span.lo);
        let t = self.toks.get(i)?;
        if t.kind != Tok::LParen || t.span.lo != span.lo {
            return None;
        }
        let j = *self.close.get(i)? as usize;
        let c = self.toks.get(j)?;
        if c.span.hi != span.hi || j <= i + 1 {
            return None;
        }
        Some(Span { lo: self.toks[i + 1].span.lo, hi: self.toks[j - 1].span.hi })
    }

    /// End of the `,` right after `pos`, if there is one, else `pos`.
    fn after_comma(&self, pos: u32) -> u32 {
        let i = self.tok_index_at(pos);
        match self.toks.get(i) {
            Some(t) if t.kind == Tok::Comma => t.span.hi,
            _ => pos,
        }
    }

    fn has_newline(&self, span: Span) -> bool {
        self.text(span).contains('\n')
    }

    fn comments_before(&self, pos: u32) -> bool {
        self.comments.get(self.next_comment).is_some_and(|c| c.lo < pos)
    }

    // ---- the file

    fn run(mut self) -> String {
        let m = self.module;
        if let Some((_, vspan)) = m.version {
            self.own_line_comments(vspan.lo, 0);
            self.blank_before(vspan.lo);
            self.start(0);
            let v = self.text(vspan).split_whitespace().collect::<Vec<_>>().join(" ");
            self.push(&v);
            self.end_line(vspan.hi);
            self.last_end = vspan.hi;
            self.at_block_start = false;
        }
        self.stmts(&m.stmts, 0);
        self.own_line_comments(u32::MAX, 0);
        self.render()
    }

    fn stmts(&mut self, stmts: &[Stmt], indent: usize) {
        for s in stmts {
            self.own_line_comments(s.span.lo, indent);
            self.blank_before(s.span.lo);
            self.stmt(s, indent);
            self.last_end = s.span.hi;
            self.at_block_start = false;
        }
    }

    fn stmt(&mut self, s: &Stmt, indent: usize) {
        let body = s.kind.body();
        let head_end = body.map(|b| b.span.lo).unwrap_or(s.span.hi);
        let mark = (self.lines.len(), self.next_comment);
        self.start(indent);
        let run_before = self.runs;
        self.head(s, indent);
        let ok = !self.comments_before(head_end);
        if !ok {
            // A comment inside the head: keep the head as written.
            self.lines.truncate(mark.0);
            self.next_comment = mark.1;
            self.cur = None;
            self.runs = run_before + 1;
            self.verbatim_head(s, head_end, indent, body.is_some());
        }
        match body {
            Some(b) => {
                if ok {
                    self.runs += 1;
                }
                // A one-line statement's trailing comment goes on its head line.
                let one_line = !self.has_newline(s.span);
                self.body(b, indent, one_line.then_some(s.span.hi));
                self.end_line(s.span.hi);
            }
            None => {
                if ok {
                    self.end_line(s.span.hi);
                }
            }
        }
        if !matches!(s.kind, StmtKind::Attr { .. }) {
            self.runs += 1;
        }
    }

    /// The head of `s` kept as written, its first line re-indented.  For a statement with
    /// a body, the `{` follows (on a line of its own when the head ends in a comment).
    fn verbatim_head(&mut self, s: &Stmt, head_end: u32, indent: usize, with_body: bool) {
        let text = self.text(Span { lo: s.span.lo, hi: head_end }).trim_end();
        while self.comments_before(head_end) {
            self.next_comment += 1;
        }
        let head = Span { lo: s.span.lo, hi: head_end };
        let ends_in_comment = self
            .module
            .comments
            .iter()
            .any(|c| c.lo >= head.lo && c.hi <= head.hi && self.text(Span { lo: c.hi, hi: head.hi }).trim().is_empty());
        for (k, l) in text.lines().enumerate() {
            let l = l.trim_end();
            if k == 0 {
                self.lines.push(Line { indent, text: l.to_string(), ..Default::default() });
            } else {
                self.lines.push(Line { raw: true, text: l.to_string(), ..Default::default() });
            }
        }
        if with_body {
            if ends_in_comment {
                self.cur = Some(Line { indent, ..Default::default() });
            } else {
                let last = self.lines.pop().unwrap_or_default();
                self.cur = Some(last);
            }
        } else {
            // The caller ends no line: attach a trailing comment to the last line.
            let c = self.take_trailing(s.span.hi);
            if let Some(l) = self.lines.last_mut() {
                l.comment = c;
            }
        }
    }

    fn dims(&mut self, dims: &[Ident]) {
        let names: Vec<&str> = dims.iter().map(|d| d.name.as_str()).collect();
        self.push(&format!("({})", names.join(", ")));
    }

    fn head(&mut self, s: &Stmt, indent: usize) {
        match &s.kind {
            StmtKind::Attr { key, value } => {
                let k = self.text(key.span()).to_string();
                if let Some(l) = &mut self.cur {
                    l.key = Some((k, self.runs));
                }
                self.push("= ");
                self.expr(value, value.span, indent);
            }
            StmtKind::Include { path } => {
                let p = self.text(path.span);
                self.push(&format!("include {p}"));
            }
            StmtKind::Defaults { .. } => self.push("defaults"),
            StmtKind::Site { name, .. } => self.push(&format!("site {}", name.name)),
            StmtKind::Dimension { name, domain } => {
                self.push(&format!("dimension {}", name.name));
                if let Some(d) = domain {
                    self.push(" = ");
                    self.expr(d, d.span, indent);
                }
            }
            StmtKind::Relation { name, dims, value } => {
                self.push(&format!("relation {}", name.name));
                self.dims(dims);
                self.push(" = ");
                self.expr(value, value.span, indent);
            }
            StmtKind::Coverage { name, expr } => {
                self.push(&format!("coverage {} = ", name.name));
                self.expr(expr, expr.span, indent);
            }
            StmtKind::Dataset { name, dims, .. } => {
                self.push(&format!("dataset {}", name.name));
                self.dims(dims);
            }
            StmtKind::Pipeline { name, .. } => self.push(&format!("pipeline {}", name.name)),
            StmtKind::Config { name, extends, .. } => {
                self.push(&format!("config {}", name.name));
                if let Some(e) = extends {
                    self.push(&format!(" extends {}", e.name));
                }
            }
            StmtKind::Step { name, over, after, .. } => {
                self.push("step ");
                if let Some(p) = &name.pipeline {
                    self.push(&format!("{}.", p.name));
                }
                self.push(&name.name.name);
                if let Some((dims, _)) = over {
                    self.push(" over ");
                    self.dims(dims);
                }
                if !after.is_empty() {
                    let deps: Vec<String> =
                        after.iter().map(|d| if d.all.is_some() { format!("{} all", d.name.name) } else { d.name.name.clone() }).collect();
                    self.push(&format!(" after {}", deps.join(", ")));
                }
            }
            StmtKind::Campaign { name, .. } => {
                let n = self.text(name.span);
                self.push(&format!("campaign {n}"));
            }
            StmtKind::Use { pipeline, config } => {
                self.push(&format!("use {}", pipeline.name));
                if let Some(c) = config {
                    self.push(&format!(" with {}", c.name));
                }
            }
            StmtKind::Cluster { name, .. } => self.push(&format!("cluster {}", name.name)),
            StmtKind::Notify { .. } => self.push("notify"),
            StmtKind::Env { .. } => self.push("env"),
            StmtKind::OrderBefore { first, second } => self.push(&format!("order {} before {}", first.name, second.name)),
            StmtKind::OrderSerial { step, dim } => self.push(&format!("order {} serial by {}", step.name, dim.name)),
            StmtKind::Equal { left, right } => self.push(&format!("equal {} = {}", left.name, right.name)),
            StmtKind::Final { name, .. } => self.push(&format!("final {}", name.name)),
            StmtKind::Subset { name, value } => {
                self.push(&format!("subset {} = ", name.name));
                self.expr(value, value.span, indent);
            }
            StmtKind::Error => {
                let t = self.text(s.span).to_string();
                self.push(&t);
            }
        }
    }

    /// ` {` ... `}` (the current line holds the head); leaves the `}` line open.
    fn body(&mut self, b: &Body, indent: usize, trailing_at: Option<u32>) {
        if b.stmts.is_empty() && !self.comments_before(b.span.hi) {
            self.push(" {}");
            return;
        }
        let bare = self.cur.as_ref().is_some_and(|l| l.text.is_empty() && l.key.is_none());
        self.push(if bare { "{" } else { " {" });
        let moved = trailing_at.and_then(|p| {
            let keep = self.next_comment;
            // Only a comment after the whole statement; the body's own come first otherwise.
            if self.comments.get(keep).is_some_and(|c| c.lo >= p) {
                self.take_trailing(p)
            } else {
                None
            }
        });
        self.end_line(b.span.lo + 1);
        if let (Some(c), Some(l)) = (moved, self.lines.last_mut()) {
            l.comment = Some(c);
        }
        self.last_end = b.span.lo + 1;
        self.at_block_start = true;
        self.stmts(&b.stmts, indent + 1);
        // Comments before the `}` belong inside the block.
        self.own_line_comments(b.span.hi.saturating_sub(1), indent + 1);
        self.start(indent);
        self.push("}");
    }

    // ---- expressions

    fn expr(&mut self, e: &Expr, span: Span, indent: usize) {
        if let Some(inner) = self.paren_inner(span) {
            self.push("(");
            self.expr(e, inner, indent);
            self.push(")");
            return;
        }
        match &e.kind {
            ExprKind::Int(_)
            | ExprKind::Float(_)
            | ExprKind::Size { .. }
            | ExprKind::Duration(_)
            | ExprKind::Bool(_)
            | ExprKind::Str(_) => {
                let t = self.text(span).to_string();
                self.push(&t);
            }
            ExprKind::Ident(i) => self.push(&i.name),
            ExprKind::Range { .. } => {
                let lo = self.tok_index_at(span.lo);
                let mut t = String::new();
                for tok in self.toks[lo..].iter().take_while(|t| t.span.hi <= span.hi && t.kind != Tok::Eof) {
                    t.push_str(self.text(tok.span));
                }
                self.push(&t);
            }
            ExprKind::List(items) => self.items(items, span, "[", "]", indent),
            ExprKind::Call { func, args } => {
                self.push(&func.name);
                let rest = Span { lo: func.span.hi, hi: span.hi };
                self.items(args, rest, "(", ")", indent);
            }
            ExprKind::Member { base, member } => {
                self.expr(base, base.span, indent);
                self.push(&format!(".{}", member.name));
            }
            ExprKind::Product(items) => {
                for (k, it) in items.iter().enumerate() {
                    if k > 0 {
                        self.push(" * ");
                    }
                    self.expr(it, it.span, indent);
                }
            }
            ExprKind::SetChain { first, rest } => {
                self.expr(first, first.span, indent);
                for (op, it) in rest {
                    self.push(if *op == SetOp::Union { " + " } else { " - " });
                    self.expr(it, it.span, indent);
                }
            }
            ExprKind::Where { base, pred } => {
                self.expr(base, base.span, indent);
                self.push(" where ");
                self.pred(pred, pred.span, indent);
            }
            ExprKind::Error => {
                let t = self.text(span).to_string();
                self.push(&t);
            }
        }
    }

    /// Bracketed items (`span` runs from the opening bracket to the closing one).
    fn items(&mut self, items: &[Expr], span: Span, open: &str, close: &str, indent: usize) {
        if !self.has_newline(span) {
            self.push(open);
            for (k, it) in items.iter().enumerate() {
                if k > 0 {
                    self.push(", ");
                }
                self.expr(it, it.span, indent);
            }
            self.push(close);
            return;
        }
        self.push(open);
        self.end_line(span.lo + 1);
        self.in_list += 1;
        for it in items {
            self.own_line_comments(it.span.lo, indent + 1);
            self.start(indent + 1);
            self.expr(it, it.span, indent + 1);
            self.push(",");
            let after = self.after_comma(it.span.hi);
            self.end_line(after);
        }
        self.own_line_comments(span.hi.saturating_sub(1), indent + 1);
        self.in_list -= 1;
        self.start(indent);
        self.push(close);
    }

    fn pred(&mut self, p: &Pred, span: Span, indent: usize) {
        if let Some(inner) = self.paren_inner(span) {
            self.push("(");
            self.pred(p, inner, indent);
            self.push(")");
            return;
        }
        match &p.kind {
            PredKind::Or(items) | PredKind::And(items) => {
                let sep = if matches!(p.kind, PredKind::Or(_)) { " or " } else { " and " };
                for (k, it) in items.iter().enumerate() {
                    if k > 0 {
                        self.push(sep);
                    }
                    self.pred(it, it.span, indent);
                }
            }
            PredKind::Not(inner) => {
                self.push("not ");
                self.pred(inner, inner.span, indent);
            }
            PredKind::Cmp { lhs, op, rhs } => {
                self.operand(lhs);
                self.push(&format!(" {} ", op.as_str()));
                self.operand(rhs);
            }
            PredKind::In { lhs, negated, set } => {
                self.operand(lhs);
                self.push(if *negated { " not in " } else { " in " });
                self.expr(set, set.span, indent);
            }
            PredKind::Error => {
                let t = self.text(span).to_string();
                self.push(&t);
            }
        }
    }

    fn operand(&mut self, o: &Operand) {
        match o {
            Operand::Ident(i) => self.push(&i.name),
            _ => {
                let t = self.text(o.span()).to_string();
                self.push(&t);
            }
        }
    }

    // ---- rendering

    fn render(mut self) -> String {
        if let Some(l) = self.cur.take() {
            self.lines.push(l);
        }
        while self.lines.last().is_some_and(|l| l.blank) {
            self.lines.pop();
        }
        // Key widths per alignment run.
        let mut width: std::collections::HashMap<usize, usize> = std::collections::HashMap::new();
        for l in &self.lines {
            if let Some((k, run)) = &l.key {
                let w = width.entry(*run).or_default();
                *w = (*w).max(k.chars().count());
            }
        }
        let code: Vec<String> = self
            .lines
            .iter()
            .map(|l| {
                if l.blank {
                    return String::new();
                }
                if l.raw {
                    return l.text.clone();
                }
                let mut s = "  ".repeat(l.indent);
                if let Some((k, run)) = &l.key {
                    s.push_str(k);
                    let pad = width.get(run).copied().unwrap_or(0).saturating_sub(k.chars().count());
                    s.push_str(&" ".repeat(pad));
                    s.push(' ');
                }
                s.push_str(&l.text);
                s
            })
            .collect();
        // Trailing comments of consecutive lines share a column.
        let mut out = String::with_capacity(self.src.len() + 64);
        let n = self.lines.len();
        let mut i = 0;
        while i < n {
            let trailing = |j: usize| self.lines[j].comment.is_some() && !self.lines[j].blank;
            if !trailing(i) {
                out.push_str(code[i].trim_end());
                out.push('\n');
                i += 1;
                continue;
            }
            let mut j = i;
            while j < n && trailing(j) {
                j += 1;
            }
            let col = (i..j).map(|k| code[k].trim_end().chars().count()).max().unwrap_or(0) + 2;
            for k in i..j {
                let c = code[k].trim_end();
                out.push_str(c);
                out.push_str(&" ".repeat(col - c.chars().count()));
                out.push_str(self.lines[k].comment.as_deref().unwrap_or(""));
                out.push('\n');
            }
            i = j;
        }
        out
    }
}

// ---------------------------------------------------------------- span stripping

/// Set every span of a module to zero (and drop its comments), to compare syntax trees.
pub fn strip_module(m: &mut Module) {
    m.version = m.version.map(|(v, _)| (v, Span::default()));
    m.comments.clear();
    m.stmts.iter_mut().for_each(strip_stmt);
}

fn z(s: &mut Span) {
    *s = Span::default();
}

fn strip_ident(i: &mut Ident) {
    z(&mut i.span);
}

fn strip_body(b: &mut Body) {
    z(&mut b.span);
    b.stmts.iter_mut().for_each(strip_stmt);
}

fn strip_stmt(s: &mut Stmt) {
    z(&mut s.span);
    match &mut s.kind {
        StmtKind::Attr { key, value } => {
            match key {
                Key::Ident(i) => strip_ident(i),
                Key::Str(s) => z(&mut s.span),
            }
            strip_expr(value);
        }
        StmtKind::Include { path } => z(&mut path.span),
        StmtKind::Defaults { body } | StmtKind::Notify { body } | StmtKind::Env { body } => strip_body(body),
        StmtKind::Site { name, body }
        | StmtKind::Pipeline { name, body }
        | StmtKind::Cluster { name, body }
        | StmtKind::Final { name, body } => {
            strip_ident(name);
            strip_body(body);
        }
        StmtKind::Campaign { name, body, .. } => {
            strip_ident(name);
            strip_body(body);
        }
        StmtKind::Dimension { name, domain } => {
            strip_ident(name);
            if let Some(d) = domain {
                strip_expr(d);
            }
        }
        StmtKind::Relation { name, dims, value } => {
            strip_ident(name);
            dims.iter_mut().for_each(strip_ident);
            strip_expr(value);
        }
        StmtKind::Coverage { name, expr } => {
            strip_ident(name);
            strip_expr(expr);
        }
        StmtKind::Dataset { name, dims, body } => {
            strip_ident(name);
            dims.iter_mut().for_each(strip_ident);
            if let Some(b) = body {
                strip_body(b);
            }
        }
        StmtKind::Config { name, extends, body } => {
            strip_ident(name);
            if let Some(e) = extends {
                strip_ident(e);
            }
            strip_body(body);
        }
        StmtKind::Step { name, over, after, body } => {
            if let Some(p) = &mut name.pipeline {
                strip_ident(p);
            }
            strip_ident(&mut name.name);
            if let Some((dims, sp)) = over {
                dims.iter_mut().for_each(strip_ident);
                z(sp);
            }
            for d in after {
                strip_ident(&mut d.name);
                if let Some(a) = &mut d.all {
                    z(a);
                }
            }
            if let Some(b) = body {
                strip_body(b);
            }
        }
        StmtKind::Use { pipeline, config } => {
            strip_ident(pipeline);
            if let Some(c) = config {
                strip_ident(c);
            }
        }
        StmtKind::OrderBefore { first, second } => {
            strip_ident(first);
            strip_ident(second);
        }
        StmtKind::OrderSerial { step, dim } => {
            strip_ident(step);
            strip_ident(dim);
        }
        StmtKind::Equal { left, right } => {
            strip_ident(left);
            strip_ident(right);
        }
        StmtKind::Subset { name, value } => {
            strip_ident(name);
            strip_expr(value);
        }
        StmtKind::Error => {}
    }
}

fn strip_expr(e: &mut Expr) {
    z(&mut e.span);
    match &mut e.kind {
        ExprKind::Str(s) => z(&mut s.span),
        ExprKind::Ident(i) => strip_ident(i),
        ExprKind::List(items) | ExprKind::Product(items) => items.iter_mut().for_each(strip_expr),
        ExprKind::Call { func, args } => {
            strip_ident(func);
            args.iter_mut().for_each(strip_expr);
        }
        ExprKind::Member { base, member } => {
            strip_expr(base);
            strip_ident(member);
        }
        ExprKind::SetChain { first, rest } => {
            strip_expr(first);
            rest.iter_mut().for_each(|(_, e)| strip_expr(e));
        }
        ExprKind::Where { base, pred } => {
            strip_expr(base);
            strip_pred(pred);
        }
        _ => {}
    }
}

fn strip_operand(o: &mut Operand) {
    match o {
        Operand::Ident(i) => strip_ident(i),
        Operand::Int(_, s) | Operand::Float(_, s) => z(s),
        Operand::Str(s) => z(&mut s.span),
    }
}

fn strip_pred(p: &mut Pred) {
    z(&mut p.span);
    match &mut p.kind {
        PredKind::Or(v) | PredKind::And(v) => v.iter_mut().for_each(strip_pred),
        PredKind::Not(i) => strip_pred(i),
        PredKind::Cmp { lhs, rhs, .. } => {
            strip_operand(lhs);
            strip_operand(rhs);
        }
        PredKind::In { lhs, set, .. } => {
            strip_operand(lhs);
            strip_expr(set);
        }
        PredKind::Error => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(s: &str) -> String {
        match format_source(s) {
            Ok(o) => o,
            Err(e) => panic!("{e}: {e:?}"),
        }
    }

    #[test]
    fn canonical_layout() {
        let src = "bps 1\n\n\n# top\ndefaults { memory=4GiB, cpus = 2;walltime=1h }\nsite  s {backend=slurm}\n";
        assert_eq!(
            f(src),
            "bps 1\n\n# top\ndefaults {\n  memory   = 4GiB\n  cpus     = 2\n  walltime = 1h\n}\nsite s {\n  backend = slurm\n}\n"
        );
    }

    #[test]
    fn comments_stay_where_they_are() {
        let src = "bps 1 # v\npipeline p {   # the pipeline\n  # lead\n  step a over (x) {\n    run = \"r\"  # trailing\n    inputs = [\n      a, # first\n      # before b\n      b\n    ]\n    # end of a\n  }\n}\n# eof\n";
        let out = f(src);
        assert_eq!(
            out,
            "bps 1         # v\npipeline p {  # the pipeline\n  # lead\n  step a over (x) {\n    run    = \"r\"  # trailing\n    inputs = [\n      a,  # first\n      # before b\n      b,\n    ]\n    # end of a\n  }\n}\n# eof\n"
        );
        assert_eq!(f(&out), out);
    }

    #[test]
    fn expressions_spacing_and_parens() {
        let src = "bps 1\ncoverage c = ( exposure*detector ) where not(band in [\"g\",\"r\"] or visit>=3) and visit != -1\ndimension d = 0 ..= 3\nrelation r(a,b) = table(\"x.csv\")\n";
        assert_eq!(
            f(src),
            "bps 1\ncoverage c = (exposure * detector) where not (band in [\"g\", \"r\"] or visit >= 3) and visit != -1\ndimension d = 0..=3\nrelation r(a, b) = table(\"x.csv\")\n"
        );
    }

    #[test]
    fn comment_inside_a_head_keeps_it_verbatim() {
        let src = "bps 1\npipeline p {\n  step a over (x, # why\n     y) after b {\n    run = \"r\"\n  }\n  step b {}\n}\n";
        let out = f(src);
        assert!(out.contains("  step a over (x, # why\n     y) after b {\n    run = \"r\"\n  }\n"), "{out}");
        assert_eq!(f(&out), out);
    }

    #[test]
    fn language_1_1_statements() {
        let src = "bps   1.1\nequal  visit=exposure # same value\npipeline p {\n  subset sf=[a,b]\n  step a { run=\"x {inputs.raw}\" }\n}\ncampaign c {\n  cluster k { steps=[a], by=[d], split_by=[v], max_quanta=60 }\n  final report {run=\"r\", when=always}\n}\n";
        let out = f(src);
        assert_eq!(
            out,
            "bps 1.1\nequal visit = exposure  # same value\npipeline p {\n  subset sf = [a, b]\n  step a {\n    run = \"x {inputs.raw}\"\n  }\n}\ncampaign c {\n  cluster k {\n    steps      = [a]\n    by         = [d]\n    split_by   = [v]\n    max_quanta = 60\n  }\n  final report {\n    run  = \"r\"\n    when = always\n  }\n}\n"
        );
        assert_eq!(f(&out), out);
    }

    #[test]
    fn syntax_errors_are_refused() {
        assert!(matches!(format_source("bps 1\ndefaults { memory = = 1 }\n"), Err(FmtError::Syntax(_))));
    }
}
