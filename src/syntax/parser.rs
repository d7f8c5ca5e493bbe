//! The parser: nom combinators over the token stream of [`super::lexer`].
//!
//! `parse` always returns a [`Module`] plus diagnostics (the sprocket model): a statement
//! that fails to parse becomes [`StmtKind::Error`] and parsing resumes at the next line at
//! the same brace depth, so independent errors give independent diagnostics.  An unclosed
//! block reports its opening brace.  Bracket nesting is limited ([`MAX_DEPTH`]) so no input
//! can exhaust the stack.

use std::cell::{Cell, RefCell};

use nom::combinator::cut;
use nom::error::{ErrorKind, ParseError};
use nom::{Err, IResult, Input, Needed, Parser};

use super::ast::*;
use super::lexer::{lex, Tok, Token};
use crate::diag::{did_you_mean, Diagnostic};
use crate::source::{FileId, Span};

/// Deepest bracket nesting accepted (E107).
pub const MAX_DEPTH: u32 = 64;

pub struct Ctx<'a> {
    src: &'a str,
    file: FileId,
    diags: RefCell<Vec<Diagnostic>>,
    depth: Cell<u32>,
}

impl Ctx<'_> {
    fn report(&self, d: Diagnostic) {
        self.diags.borrow_mut().push(d);
    }
}

/// Parser input: the remaining tokens (always ending with `Eof`) and the shared context.
#[derive(Clone, Copy)]
pub struct Toks<'a> {
    toks: &'a [Token],
    ctx: &'a Ctx<'a>,
}

impl<'a> Toks<'a> {
    fn first(&self) -> Token {
        self.toks.first().copied().unwrap_or(Token { kind: Tok::Eof, span: self.eof_span(), nl_before: true })
    }
    fn second(&self) -> Token {
        self.toks.get(1).copied().unwrap_or(Token { kind: Tok::Eof, span: self.eof_span(), nl_before: true })
    }
    fn eof_span(&self) -> Span {
        Span::new(self.ctx.src.len(), self.ctx.src.len())
    }
    fn text(&self, t: Token) -> &'a str {
        self.ctx.src.get(t.span.range()).unwrap_or("")
    }
    fn advance(&self, n: usize) -> Toks<'a> {
        // Never step past the final Eof token.
        let n = n.min(self.toks.len().saturating_sub(1));
        Toks { toks: &self.toks[n..], ctx: self.ctx }
    }
    fn at_word(&self, w: &str) -> bool {
        let t = self.first();
        t.kind == Tok::Ident && self.text(t) == w
    }
}

impl<'a> Input for Toks<'a> {
    type Item = Token;
    type Iter = std::iter::Copied<std::slice::Iter<'a, Token>>;
    type IterIndices = std::iter::Enumerate<Self::Iter>;

    fn input_len(&self) -> usize {
        self.toks.len()
    }
    fn take(&self, index: usize) -> Self {
        Toks { toks: &self.toks[..index], ctx: self.ctx }
    }
    fn take_from(&self, index: usize) -> Self {
        Toks { toks: &self.toks[index..], ctx: self.ctx }
    }
    fn take_split(&self, index: usize) -> (Self, Self) {
        let (a, b) = self.toks.split_at(index);
        (Toks { toks: b, ctx: self.ctx }, Toks { toks: a, ctx: self.ctx })
    }
    fn position<P: Fn(Self::Item) -> bool>(&self, predicate: P) -> Option<usize> {
        self.toks.iter().position(|t| predicate(*t))
    }
    fn iter_elements(&self) -> Self::Iter {
        self.toks.iter().copied()
    }
    fn iter_indices(&self) -> Self::IterIndices {
        self.iter_elements().enumerate()
    }
    fn slice_index(&self, count: usize) -> Result<usize, Needed> {
        if count <= self.toks.len() {
            Ok(count)
        } else {
            Err(Needed::new(count - self.toks.len()))
        }
    }
}

/// A parse error: where, what was expected, and optionally a ready diagnostic.
#[derive(Debug)]
pub struct PErr {
    /// Tokens remaining at the error; fewer means further into the file.
    rem: usize,
    span: Span,
    found: Tok,
    expected: Vec<&'static str>,
    /// A specific diagnostic that replaces the generic "expected ..." one.
    diag: Option<Box<Diagnostic>>,
    /// The diagnostic was already pushed to the context.
    reported: bool,
}

impl<'a> ParseError<Toks<'a>> for PErr {
    fn from_error_kind(input: Toks<'a>, _kind: ErrorKind) -> Self {
        let t = input.first();
        PErr { rem: input.toks.len(), span: t.span, found: t.kind, expected: Vec::new(), diag: None, reported: false }
    }
    fn append(_input: Toks<'a>, _kind: ErrorKind, other: Self) -> Self {
        other
    }
    fn or(self, other: Self) -> Self {
        // Keep the error that got furthest; merge expectations at the same place.
        if self.reported || self.diag.is_some() {
            return self;
        }
        if other.reported || other.diag.is_some() {
            return other;
        }
        match self.rem.cmp(&other.rem) {
            std::cmp::Ordering::Less => self,
            std::cmp::Ordering::Greater => other,
            std::cmp::Ordering::Equal => {
                let mut m = self;
                for e in other.expected {
                    if !m.expected.contains(&e) {
                        m.expected.push(e);
                    }
                }
                m
            }
        }
    }
}

type PResult<'a, T> = IResult<Toks<'a>, T, PErr>;

fn expected<'a, T>(i: Toks<'a>, what: &'static str) -> PResult<'a, T> {
    let t = i.first();
    Err(Err::Error(PErr { rem: i.toks.len(), span: t.span, found: t.kind, expected: vec![what], diag: None, reported: false }))
}

fn fail_with<'a, T>(i: Toks<'a>, d: Diagnostic) -> PResult<'a, T> {
    let t = i.first();
    Err(Err::Failure(PErr {
        rem: i.toks.len(),
        span: t.span,
        found: t.kind,
        expected: Vec::new(),
        diag: Some(Box::new(d)),
        reported: false,
    }))
}

fn fail_reported<'a, T>(i: Toks<'a>) -> PResult<'a, T> {
    let t = i.first();
    Err(Err::Failure(PErr { rem: i.toks.len(), span: t.span, found: t.kind, expected: Vec::new(), diag: None, reported: true }))
}

/// Turn a parse error into its diagnostic.
fn to_diag(ctx: &Ctx<'_>, e: PErr) -> Option<Diagnostic> {
    if e.reported {
        return None;
    }
    if let Some(d) = e.diag {
        return Some(*d);
    }
    let found = match e.found {
        Tok::Eof => "end of file".to_string(),
        Tok::Ident | Tok::Number | Tok::Str => {
            format!("`{}`", ctx.src.get(e.span.range()).unwrap_or(""))
        }
        k => k.describe().to_string(),
    };
    let exp = match e.expected.len() {
        0 => "something else".to_string(),
        1 => e.expected[0].to_string(),
        _ => {
            let (last, init) = e.expected.split_last().map(|(l, i)| (*l, i)).unwrap_or(("", &[]));
            format!("{} or {}", init.join(", "), last)
        }
    };
    Some(Diagnostic::new("E100", format!("expected {exp}, found {found}")).at(ctx.file, e.span, format!("expected {exp}")))
}

// ---------------------------------------------------------------- leaf parsers

fn tok<'a>(kind: Tok, what: &'static str) -> impl Fn(Toks<'a>) -> PResult<'a, Token> {
    move |i: Toks<'a>| {
        let t = i.first();
        if t.kind == kind {
            Ok((i.advance(1), t))
        } else {
            expected(i, what)
        }
    }
}

fn word<'a>(w: &'static str, what: &'static str) -> impl Fn(Toks<'a>) -> PResult<'a, Token> {
    move |i: Toks<'a>| {
        if i.at_word(w) {
            Ok((i.advance(1), i.first()))
        } else {
            expected(i, what)
        }
    }
}

fn ident<'a>(what: &'static str) -> impl Fn(Toks<'a>) -> PResult<'a, Ident> {
    move |i: Toks<'a>| {
        let t = i.first();
        if t.kind == Tok::Ident {
            Ok((i.advance(1), Ident { name: i.text(t).to_string(), span: t.span }))
        } else {
            expected(i, what)
        }
    }
}

/// Decode a string token.  Escapes: `\"` `\\` `\n` `\t`; others give E109.
fn string_token(ctx: &Ctx<'_>, t: Token) -> StrLit {
    let raw = ctx.src.get(t.span.range()).unwrap_or("");
    let inner = raw.strip_prefix('"').unwrap_or(raw);
    let inner = if t.kind == Tok::Str { inner.strip_suffix('"').unwrap_or(inner) } else { inner };
    let mut value = String::with_capacity(inner.len());
    let mut had_escapes = false;
    let mut chars = inner.char_indices();
    while let Some((k, c)) = chars.next() {
        if c != '\\' {
            value.push(c);
            continue;
        }
        had_escapes = true;
        match chars.next() {
            Some((_, '"')) => value.push('"'),
            Some((_, '\\')) => value.push('\\'),
            Some((_, 'n')) => value.push('\n'),
            Some((_, 't')) => value.push('\t'),
            other => {
                let lo = t.span.lo as usize + 1 + k;
                let len = 1 + other.map(|(_, c)| c.len_utf8()).unwrap_or(0);
                ctx.report(
                    Diagnostic::new("E109", "invalid escape in string")
                        .at(ctx.file, Span::new(lo, lo + len), "unknown escape")
                        .help("valid escapes are \\\" \\\\ \\n \\t; write literal braces as {{ and }}"),
                );
                if let Some((_, c)) = other {
                    value.push(c);
                }
            }
        }
    }
    StrLit { value, span: t.span, had_escapes }
}

fn string<'a>(what: &'static str) -> impl Fn(Toks<'a>) -> PResult<'a, StrLit> {
    move |i: Toks<'a>| {
        let t = i.first();
        if matches!(t.kind, Tok::Str | Tok::UnterminatedStr) {
            Ok((i.advance(1), string_token(i.ctx, t)))
        } else {
            expected(i, what)
        }
    }
}

/// Enter one bracket level; E107 past [`MAX_DEPTH`].
fn enter<'a>(i: Toks<'a>, opener: Token) -> Result<(), Err<PErr>> {
    let d = i.ctx.depth.get() + 1;
    i.ctx.depth.set(d);
    if d > MAX_DEPTH {
        i.ctx.report(
            Diagnostic::new("E107", format!("nesting deeper than {MAX_DEPTH} levels"))
                .at(i.ctx.file, opener.span, "this bracket is too deeply nested")
                .help("flatten the structure; no campaign needs this much nesting"),
        );
        i.ctx.depth.set(d - 1);
        return match fail_reported::<()>(i) {
            Err(e) => Err(e),
            Ok(_) => Ok(()),
        };
    }
    Ok(())
}

fn leave(i: Toks<'_>) {
    i.ctx.depth.set(i.ctx.depth.get().saturating_sub(1));
}

// ---------------------------------------------------------------- numbers

fn looks_like_unit(s: &str) -> bool {
    let l = s.to_ascii_lowercase();
    matches!(
        l.as_str(),
        "b" | "kb"
            | "mb"
            | "gb"
            | "tb"
            | "kib"
            | "mib"
            | "gib"
            | "tib"
            | "k"
            | "m"
            | "g"
            | "t"
            | "s"
            | "h"
            | "d"
            | "min"
            | "sec"
            | "hr"
            | "hrs"
            | "hours"
            | "gigs"
            | "bytes"
    )
}

fn unit_help(suffix: &str) -> String {
    let l = suffix.to_ascii_lowercase();
    let guess = SizeUnit::ALL.iter().find(|u| u.to_ascii_lowercase() == l).copied();
    match (guess, l.as_str()) {
        (Some(g), _) if g != suffix => format!("did you mean `{g}`? units are case-sensitive"),
        (_, "gb" | "mb" | "kb" | "tb") => {
            let u = l.to_ascii_uppercase();
            let bin = format!("{}iB", &u[..1]);
            format!("`{suffix}` is not a unit; write `{u}` (powers of 1000) or `{bin}` (powers of 1024)")
        }
        (_, "g" | "m" | "k" | "t") if suffix != "m" => {
            let u = l.to_ascii_uppercase();
            format!("write `{u}iB` (powers of 1024) or `{u}B` (powers of 1000)")
        }
        (_, "min" | "mins" | "minutes") => "minutes are written `m`: `90m`".into(),
        (_, "hr" | "hrs" | "hours") => "hours are written `h`: `8h`".into(),
        (_, "sec" | "secs" | "seconds") => "seconds are written `s`: `30s`".into(),
        _ => "sizes take B, KiB, MiB, GiB, TiB, KB, MB, GB or TB; durations s, m, h or d (e.g. 4GiB, 1h30m)".into(),
    }
}

fn parse_duration(s: &str) -> Option<u64> {
    let mut total: u64 = 0;
    let mut num: Option<u64> = None;
    let mut seen_part = false;
    for c in s.chars() {
        if let Some(d) = c.to_digit(10) {
            num = Some(num.unwrap_or(0).checked_mul(10)?.checked_add(d as u64)?);
        } else if c == '_' {
            continue;
        } else {
            let mult = match c {
                's' => 1,
                'm' => 60,
                'h' => 3600,
                'd' => 86400,
                _ => return None,
            };
            total = total.checked_add(num.take()?.checked_mul(mult)?)?;
            seen_part = true;
        }
    }
    if num.is_some() || !seen_part {
        return None;
    }
    Some(total)
}

fn number_expr(ctx: &Ctx<'_>, t: Token) -> Result<ExprKind, Diagnostic> {
    let text = ctx.src.get(t.span.range()).unwrap_or("");
    let split = text.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(text.len());
    let (num, suffix) = text.split_at(split);
    let num_clean: String = num.chars().filter(|&c| c != '_').collect();
    let bad = |msg: String, help: String| Diagnostic::new("E103", msg).at(ctx.file, t.span, "bad literal").help(help);
    if suffix.is_empty() {
        if num_clean.contains('.') {
            return num_clean.parse::<f64>().map(ExprKind::Float).map_err(|_| {
                let help = if num_clean.matches('.').count() > 1 {
                    format!("a number has at most one `.`; quote a version: \"{text}\"")
                } else {
                    "write e.g. 1.5".into()
                };
                bad(format!("`{text}` is not a number"), help)
            });
        }
        return num_clean
            .parse::<i64>()
            .map(ExprKind::Int)
            .map_err(|_| bad(format!("integer `{text}` is too large"), format!("integers go up to {}", i64::MAX)));
    }
    if let Some(unit) = SizeUnit::parse(suffix) {
        let v: f64 = num_clean.parse().map_err(|_| bad(format!("`{text}` is not a size"), "write e.g. 4GiB".into()))?;
        let bytes = v * unit.bytes() as f64;
        if !(bytes.is_finite() && bytes < 1.8e19) {
            return Err(bad(format!("size `{text}` is too large"), "sizes go up to 16 EiB".into()));
        }
        return Ok(ExprKind::Size { bytes: bytes.round() as u64, unit });
    }
    if !num_clean.contains('.') {
        if let Some(secs) = parse_duration(text) {
            return Ok(ExprKind::Duration(secs));
        }
    }
    Err(bad(format!("`{text}` is not a valid size or duration"), unit_help(suffix)))
}

// ---------------------------------------------------------------- expressions

const EXPR_WORDS: [&str; 7] = ["where", "and", "or", "not", "in", "true", "false"];

fn number_or_range(i: Toks<'_>) -> PResult<'_, Expr> {
    let t = i.first();
    let neg = t.kind == Tok::Minus && i.second().kind == Tok::Number && i.second().span.lo == t.span.hi;
    let (i, t0, nt) = if neg { (i.advance(2), t, i.second()) } else { (i.advance(1), t, t) };
    let mut kind = match number_expr(i.ctx, nt) {
        Ok(k) => k,
        Err(d) => {
            i.ctx.report(d);
            ExprKind::Error
        }
    };
    if neg {
        kind = match kind {
            ExprKind::Int(v) => ExprKind::Int(-v),
            ExprKind::Float(v) => ExprKind::Float(-v),
            ExprKind::Error => ExprKind::Error,
            _ => {
                i.ctx.report(Diagnostic::new("E103", "sizes and durations cannot be negative").at(
                    i.ctx.file,
                    t0.span.to(nt.span),
                    "bad literal",
                ));
                ExprKind::Error
            }
        };
    }
    let mut span = t0.span.to(nt.span);
    // `4 Gb`: a unit separated from its number by a space.
    let nx = i.first();
    if nx.kind == Tok::Ident && !nx.nl_before && looks_like_unit(i.text(nx)) {
        let text = i.text(nx);
        i.ctx.report(
            Diagnostic::new("E103", format!("bad literal `{} {}`", i.ctx.src.get(span.range()).unwrap_or(""), text))
                .at(i.ctx.file, span.to(nx.span), "a unit must follow its number without a space")
                .help(if SizeUnit::parse(text).is_some() {
                    format!("write `{}{}`", i.ctx.src.get(span.range()).unwrap_or(""), text)
                } else {
                    unit_help(text)
                }),
        );
        return Ok((i.advance(1), Expr { kind: ExprKind::Error, span: span.to(nx.span) }));
    }
    // Ranges: `0..104`, `0..=103`.
    let nx = i.first();
    if matches!(nx.kind, Tok::DotDot | Tok::DotDotEq) {
        let inclusive = nx.kind == Tok::DotDotEq;
        let (i2, hi_expr) = cut(number_only).parse(i.advance(1))?;
        span = span.to(hi_expr.span);
        let k = match (kind, hi_expr.kind) {
            (ExprKind::Int(lo), ExprKind::Int(hi)) => ExprKind::Range { lo, hi, inclusive },
            (ExprKind::Error, _) | (_, ExprKind::Error) => ExprKind::Error,
            _ => {
                i.ctx.report(
                    Diagnostic::new("E301", "range bounds must be integers")
                        .at(i.ctx.file, span, "not an integer range")
                        .help("write e.g. 0..104 (half-open) or 0..=103 (inclusive)"),
                );
                ExprKind::Error
            }
        };
        return Ok((i2, Expr { kind: k, span }));
    }
    Ok((i, Expr { kind, span }))
}

fn number_only(i: Toks<'_>) -> PResult<'_, Expr> {
    let t = i.first();
    if t.kind != Tok::Number && !(t.kind == Tok::Minus && i.second().kind == Tok::Number) {
        return expected(i, "an integer");
    }
    let neg = t.kind == Tok::Minus;
    let nt = if neg { i.second() } else { t };
    let kind = match number_expr(i.ctx, nt) {
        Ok(ExprKind::Int(v)) if neg => ExprKind::Int(-v),
        Ok(k) => k,
        Err(d) => {
            i.ctx.report(d);
            ExprKind::Error
        }
    };
    Ok((i.advance(if neg { 2 } else { 1 }), Expr { kind, span: t.span.to(nt.span) }))
}

/// `[a, b, c]` with `,` or line breaks between items, trailing `,` allowed.
fn list(i: Toks<'_>) -> PResult<'_, Expr> {
    let open = i.first();
    let (mut i, _) = tok(Tok::LBracket, "`[`")(i)?;
    enter(i, open)?;
    let mut items = Vec::new();
    let mut need_sep = false;
    loop {
        let t = i.first();
        if t.kind == Tok::Comma {
            i = i.advance(1);
            need_sep = false;
            continue;
        }
        if t.kind == Tok::RBracket {
            leave(i);
            return Ok((i.advance(1), Expr { kind: ExprKind::List(items), span: open.span.to(t.span) }));
        }
        if matches!(t.kind, Tok::Eof | Tok::RBrace) || (t.nl_before && t.kind == Tok::Ident && i.second().kind == Tok::Eq) {
            leave(i);
            return fail_with(i, unclosed(i.ctx, open, t));
        }
        if need_sep && !t.nl_before {
            leave(i);
            return fail_with(
                i,
                Diagnostic::new("E100", format!("expected `,` or `]`, found {}", describe_found(i, t)))
                    .at(i.ctx.file, t.span, "expected `,` or `]`")
                    .also(i.ctx.file, open.span, "in this list"),
            );
        }
        let (r, e) = match expr(i) {
            Ok(x) => x,
            Err(e) => {
                leave(i);
                return Err(e);
            }
        };
        items.push(e);
        i = r;
        need_sep = true;
    }
}

fn describe_found(i: Toks<'_>, t: Token) -> String {
    match t.kind {
        Tok::Ident | Tok::Number | Tok::Str => format!("`{}`", i.text(t)),
        k => k.describe().to_string(),
    }
}

fn unclosed(ctx: &Ctx<'_>, open: Token, at: Token) -> Diagnostic {
    let sym = ctx.src.get(open.span.range()).unwrap_or("?");
    let close = match sym {
        "{" => "}",
        "(" => ")",
        _ => "]",
    };
    let where_ = if at.kind == Tok::Eof { "the file ends here".to_string() } else { "reached here without it".to_string() };
    Diagnostic::new("E102", format!("unclosed `{sym}`"))
        .at(ctx.file, open.span, format!("this `{sym}` is never closed"))
        .also(ctx.file, at.span, where_)
        .help(format!("add the matching `{close}`"))
}

fn call_args(i: Toks<'_>, open: Token) -> PResult<'_, (Vec<Expr>, Token)> {
    enter(i, open)?;
    let mut args = Vec::new();
    let mut i = i;
    loop {
        let t = i.first();
        if t.kind == Tok::RParen {
            leave(i);
            return Ok((i.advance(1), (args, t)));
        }
        if matches!(t.kind, Tok::Eof | Tok::RBrace) {
            leave(i);
            return fail_with(i, unclosed(i.ctx, open, t));
        }
        let (r, e) = match expr(i) {
            Ok(x) => x,
            Err(e) => {
                leave(i);
                return Err(e);
            }
        };
        args.push(e);
        i = r;
        match i.first().kind {
            Tok::Comma => i = i.advance(1),
            Tok::RParen => {}
            Tok::Eof | Tok::RBrace => {
                leave(i);
                return fail_with(i, unclosed(i.ctx, open, i.first()));
            }
            // The next line starts `key = ...`: the `)` was forgotten (as for lists).
            Tok::Ident if i.first().nl_before && i.second().kind == Tok::Eq => {
                leave(i);
                return fail_with(i, unclosed(i.ctx, open, i.first()));
            }
            _ => {
                let t = i.first();
                leave(i);
                return fail_with(
                    i,
                    Diagnostic::new("E100", format!("expected `,` or `)`, found {}", describe_found(i, t)))
                        .at(i.ctx.file, t.span, "expected `,` or `)`")
                        .also(i.ctx.file, open.span, "in this call"),
                );
            }
        }
    }
}

fn primary(i: Toks<'_>) -> PResult<'_, Expr> {
    let t = i.first();
    match t.kind {
        Tok::Number => number_or_range(i),
        Tok::Minus if i.second().kind == Tok::Number => number_or_range(i),
        Tok::Str | Tok::UnterminatedStr => {
            let s = string_token(i.ctx, t);
            Ok((i.advance(1), Expr { span: t.span, kind: ExprKind::Str(s) }))
        }
        Tok::LBracket => list(i),
        Tok::LParen => {
            enter(i, t)?;
            let r = (|| {
                let (i2, mut e) = expr(i.advance(1))?;
                let close = i2.first();
                if close.kind != Tok::RParen {
                    if matches!(close.kind, Tok::Eof | Tok::RBrace) {
                        return fail_with(i2, unclosed(i.ctx, t, close));
                    }
                    return fail_with(
                        i2,
                        Diagnostic::new("E100", format!("expected `)`, found {}", describe_found(i2, close)))
                            .at(i.ctx.file, close.span, "expected `)`")
                            .also(i.ctx.file, t.span, "to close this `(`"),
                    );
                }
                e.span = t.span.to(close.span);
                Ok((i2.advance(1), e))
            })();
            leave(i);
            r
        }
        Tok::Ident => {
            let text = i.text(t);
            match text {
                "true" | "false" => Ok((i.advance(1), Expr { span: t.span, kind: ExprKind::Bool(text == "true") })),
                w if EXPR_WORDS.contains(&w) => expected(i, "a value"),
                _ => {
                    let name = Ident { name: text.to_string(), span: t.span };
                    let nx = i.second();
                    if nx.kind == Tok::LParen && nx.span.lo == t.span.hi {
                        let (r, (args, close)) = call_args(i.advance(2), nx)?;
                        Ok((r, Expr { span: t.span.to(close.span), kind: ExprKind::Call { func: name, args } }))
                    } else {
                        Ok((i.advance(1), Expr { span: t.span, kind: ExprKind::Ident(name) }))
                    }
                }
            }
        }
        _ => expected(i, "a value"),
    }
}

fn postfix(i: Toks<'_>) -> PResult<'_, Expr> {
    let (mut i, mut e) = primary(i)?;
    while i.first().kind == Tok::Dot {
        let (r, member) = cut(ident("a column name after `.`")).parse(i.advance(1))?;
        let span = e.span.to(member.span);
        e = Expr { kind: ExprKind::Member { base: Box::new(e), member }, span };
        i = r;
    }
    Ok((i, e))
}

fn product(i: Toks<'_>) -> PResult<'_, Expr> {
    let (mut i, first) = postfix(i)?;
    if i.first().kind != Tok::Star {
        return Ok((i, first));
    }
    let mut span = first.span;
    let mut items = vec![first];
    while i.first().kind == Tok::Star {
        let (r, e) = cut(postfix).parse(i.advance(1))?;
        span = span.to(e.span);
        items.push(e);
        i = r;
    }
    Ok((i, Expr { kind: ExprKind::Product(items), span }))
}

fn set_expr(i: Toks<'_>) -> PResult<'_, Expr> {
    let (mut i, first) = product(i)?;
    let mut rest = Vec::new();
    let mut span = first.span;
    loop {
        let op = match i.first().kind {
            Tok::Plus => SetOp::Union,
            Tok::Minus => SetOp::Difference,
            _ => break,
        };
        let (r, e) = cut(product).parse(i.advance(1))?;
        span = span.to(e.span);
        rest.push((op, e));
        i = r;
    }
    if rest.is_empty() {
        return Ok((i, first));
    }
    Ok((i, Expr { kind: ExprKind::SetChain { first: Box::new(first), rest }, span }))
}

pub(crate) fn expr(i: Toks<'_>) -> PResult<'_, Expr> {
    let (i, base) = set_expr(i)?;
    if !i.at_word("where") {
        return Ok((i, base));
    }
    let (i, pred) = cut(predicate).parse(i.advance(1))?;
    let span = base.span.to(pred.span);
    Ok((i, Expr { kind: ExprKind::Where { base: Box::new(base), pred: Box::new(pred) }, span }))
}

fn operand(i: Toks<'_>) -> PResult<'_, Operand> {
    let t = i.first();
    match t.kind {
        Tok::Ident if !EXPR_WORDS.contains(&i.text(t)) => {
            Ok((i.advance(1), Operand::Ident(Ident { name: i.text(t).to_string(), span: t.span })))
        }
        Tok::Str | Tok::UnterminatedStr => Ok((i.advance(1), Operand::Str(string_token(i.ctx, t)))),
        Tok::Number | Tok::Minus => {
            let (r, e) = number_only(i)?;
            match e.kind {
                ExprKind::Int(v) => Ok((r, Operand::Int(v, e.span))),
                ExprKind::Float(v) => Ok((r, Operand::Float(v, e.span))),
                _ => Ok((r, Operand::Int(0, e.span))),
            }
        }
        _ => expected(i, "a dimension name or a value"),
    }
}

fn comparison(i: Toks<'_>) -> PResult<'_, Pred> {
    let t = i.first();
    if t.kind == Tok::LParen {
        enter(i, t)?;
        let r = (|| {
            let (i2, mut p) = predicate(i.advance(1))?;
            let close = i2.first();
            if close.kind != Tok::RParen {
                if matches!(close.kind, Tok::Eof | Tok::RBrace) {
                    return fail_with(i2, unclosed(i.ctx, t, close));
                }
                return expected(i2, "`)`");
            }
            p.span = t.span.to(close.span);
            Ok((i2.advance(1), p))
        })();
        leave(i);
        return r;
    }
    let (i, lhs) = operand(i)?;
    let nx = i.first();
    let op = match nx.kind {
        Tok::EqEq => Some(CmpOp::Eq),
        Tok::NotEq => Some(CmpOp::Ne),
        Tok::Lt => Some(CmpOp::Lt),
        Tok::Le => Some(CmpOp::Le),
        Tok::Gt => Some(CmpOp::Gt),
        Tok::Ge => Some(CmpOp::Ge),
        _ => None,
    };
    if let Some(op) = op {
        let (i, rhs) = cut(operand).parse(i.advance(1))?;
        let span = lhs.span().to(rhs.span());
        return Ok((i, Pred { kind: PredKind::Cmp { lhs, op, rhs }, span }));
    }
    if nx.kind == Tok::Eq {
        return fail_with(
            i,
            Diagnostic::new("E100", "expected a comparison operator, found `=`").at(i.ctx.file, nx.span, "use `==` to compare").suggest(
                crate::source::Loc { file: i.ctx.file, span: nx.span },
                "==",
                "use `==`",
            ),
        );
    }
    let (i, negated) = if i.at_word("not") { (i.advance(1), true) } else { (i, false) };
    if i.at_word("in") {
        let (i, set) = cut(set_expr).parse(i.advance(1))?;
        let span = lhs.span().to(set.span);
        return Ok((i, Pred { kind: PredKind::In { lhs, negated, set }, span }));
    }
    expected(i, "`==`, `!=`, `<`, `<=`, `>`, `>=` or `in`")
}

fn negation(i: Toks<'_>) -> PResult<'_, Pred> {
    // `not not x` folds by parity, so a long chain of `not`s cannot nest deeply.
    let mut i = i;
    let mut count = 0usize;
    let start = i.first().span;
    while i.at_word("not") {
        count += 1;
        i = i.advance(1);
    }
    let (i, p) = if count > 0 { cut(comparison).parse(i)? } else { comparison(i)? };
    if count % 2 == 1 {
        let span = start.to(p.span);
        Ok((i, Pred { kind: PredKind::Not(Box::new(p)), span }))
    } else {
        Ok((i, p))
    }
}

fn chain<'a>(i: Toks<'a>, sep: &'static str, item: fn(Toks<'a>) -> PResult<'a, Pred>, mk: fn(Vec<Pred>) -> PredKind) -> PResult<'a, Pred> {
    let (mut i, first) = item(i)?;
    if !i.at_word(sep) {
        return Ok((i, first));
    }
    let mut span = first.span;
    let mut items = vec![first];
    while i.at_word(sep) {
        let (r, p) = cut(item).parse(i.advance(1))?;
        span = span.to(p.span);
        items.push(p);
        i = r;
    }
    Ok((i, Pred { kind: mk(items), span }))
}

fn conjunction(i: Toks<'_>) -> PResult<'_, Pred> {
    chain(i, "and", negation, PredKind::And)
}

fn predicate(i: Toks<'_>) -> PResult<'_, Pred> {
    chain(i, "or", conjunction, PredKind::Or)
}

// ---------------------------------------------------------------- statements

/// `{ statements }`.  Never fails after the `{`: statement errors are recovered inside and
/// a missing `}` is reported at the opening brace.
fn body(i: Toks<'_>) -> PResult<'_, Body> {
    let open = i.first();
    if open.kind != Tok::LBrace {
        return expected(i, "`{`");
    }
    enter(i, open)?;
    let (i, stmts) = statements(i.advance(1), true);
    leave(i);
    let close = i.first();
    if close.kind == Tok::RBrace {
        Ok((i.advance(1), Body { stmts, span: open.span.to(close.span), closed: true }))
    } else {
        i.ctx.report(unclosed(i.ctx, open, close));
        Ok((i, Body { stmts, span: open.span.to(close.span), closed: false }))
    }
}

fn opt_body(i: Toks<'_>) -> PResult<'_, Option<Body>> {
    if i.first().kind == Tok::LBrace {
        let (i, b) = body(i)?;
        Ok((i, Some(b)))
    } else {
        Ok((i, None))
    }
}

fn dim_list(i: Toks<'_>) -> PResult<'_, (Vec<Ident>, Span)> {
    let open = i.first();
    if open.kind != Tok::LParen {
        return expected(i, "`(` and a list of dimensions");
    }
    let mut i = i.advance(1);
    let mut dims = Vec::new();
    loop {
        let t = i.first();
        match t.kind {
            Tok::RParen => return Ok((i.advance(1), (dims, open.span.to(t.span)))),
            Tok::Ident => {
                dims.push(Ident { name: i.text(t).to_string(), span: t.span });
                i = i.advance(1);
                match i.first().kind {
                    Tok::Comma => i = i.advance(1),
                    Tok::RParen => {}
                    Tok::Eof | Tok::LBrace | Tok::RBrace => return fail_with(i, unclosed(i.ctx, open, i.first())),
                    _ => return expected(i, "`,` or `)`"),
                }
            }
            Tok::Eof | Tok::LBrace | Tok::RBrace => return fail_with(i, unclosed(i.ctx, open, t)),
            _ => return expected(i, "a dimension name or `)`"),
        }
    }
}

fn attr_value(i: Toks<'_>) -> PResult<'_, Expr> {
    cut(expr).parse(i)
}

fn statement(i: Toks<'_>) -> PResult<'_, StmtKind> {
    let t = i.first();
    let nx = i.second();
    if t.kind == Tok::Str || t.kind == Tok::UnterminatedStr {
        let key = Key::Str(string_token(i.ctx, t));
        let (i, _) = cut(tok(Tok::Eq, "`=` after the key")).parse(i.advance(1))?;
        let (i, value) = attr_value(i)?;
        return Ok((i, StmtKind::Attr { key, value }));
    }
    if t.kind != Tok::Ident {
        return expected(i, "a statement");
    }
    let kw = i.text(t);
    if nx.kind == Tok::Eq {
        let key = Key::Ident(Ident { name: kw.to_string(), span: t.span });
        let (i, value) = attr_value(i.advance(2))?;
        return Ok((i, StmtKind::Attr { key, value }));
    }
    let rest = i.advance(1);
    match kw {
        "include" => {
            let (i, path) = cut(string("a quoted path after `include`")).parse(rest)?;
            Ok((i, StmtKind::Include { path }))
        }
        "defaults" => {
            let (i, body) = cut(body).parse(rest)?;
            Ok((i, StmtKind::Defaults { body }))
        }
        "site" => {
            let (i, name) = cut(ident("a site name")).parse(rest)?;
            let (i, body) = cut(body).parse(i)?;
            Ok((i, StmtKind::Site { name, body }))
        }
        "dimension" => {
            let (i, name) = cut(ident("a dimension name")).parse(rest)?;
            if i.first().kind == Tok::Eq {
                let (i, domain) = attr_value(i.advance(1))?;
                Ok((i, StmtKind::Dimension { name, domain: Some(domain) }))
            } else {
                Ok((i, StmtKind::Dimension { name, domain: None }))
            }
        }
        "relation" => {
            let (i, name) = cut(ident("a relation name")).parse(rest)?;
            let (i, (dims, _)) = cut(dim_list).parse(i)?;
            let (i, _) = cut(tok(Tok::Eq, "`=` and the relation's rows, e.g. table(\"file.csv\")")).parse(i)?;
            let (i, value) = attr_value(i)?;
            Ok((i, StmtKind::Relation { name, dims, value }))
        }
        "coverage" if nx.kind == Tok::Ident => {
            let (i, name) = ident("a coverage name")(rest)?;
            let (i, _) = cut(tok(Tok::Eq, "`=`")).parse(i)?;
            let (i, expr) = attr_value(i)?;
            Ok((i, StmtKind::Coverage { name, expr }))
        }
        "dataset" => {
            let (i, name) = cut(ident("a dataset name")).parse(rest)?;
            let (i, (dims, _)) = cut(dim_list).parse(i)?;
            let (i, body) = opt_body(i)?;
            Ok((i, StmtKind::Dataset { name, dims, body }))
        }
        "pipeline" => {
            let (i, name) = cut(ident("a pipeline name")).parse(rest)?;
            let (i, body) = cut(body).parse(i)?;
            Ok((i, StmtKind::Pipeline { name, body }))
        }
        "config" => {
            let (i, name) = cut(ident("a config name")).parse(rest)?;
            let (i, extends) = if i.at_word("extends") {
                let (i, p) = cut(ident("the name of the config to extend")).parse(i.advance(1))?;
                (i, Some(p))
            } else {
                (i, None)
            };
            let (i, body) = cut(body).parse(i)?;
            Ok((i, StmtKind::Config { name, extends, body }))
        }
        "step" => {
            let (mut i, first) = cut(ident("a step name")).parse(rest)?;
            let name = if i.first().kind == Tok::Dot {
                let (r, second) = cut(ident("a step name after `.`")).parse(i.advance(1))?;
                i = r;
                StepName { pipeline: Some(first), name: second }
            } else {
                StepName { pipeline: None, name: first }
            };
            let (i, over) = if i.at_word("over") {
                let (i, d) = cut(dim_list).parse(i.advance(1))?;
                (i, Some(d))
            } else {
                (i, None)
            };
            let mut after = Vec::new();
            let mut i = i;
            if i.at_word("after") {
                i = i.advance(1);
                loop {
                    let (r, name) = cut(ident("the name of a step")).parse(i)?;
                    i = r;
                    let all = if i.at_word("all") {
                        let s = i.first().span;
                        i = i.advance(1);
                        Some(s)
                    } else {
                        None
                    };
                    after.push(Dep { name, all });
                    if i.first().kind == Tok::Comma && i.second().kind == Tok::Ident && !i.second().nl_before {
                        i = i.advance(1);
                    } else {
                        break;
                    }
                }
            }
            let (i, body) = opt_body(i)?;
            Ok((i, StmtKind::Step { name, over, after, body }))
        }
        "campaign" => {
            let n = i.second();
            let (i, name, is_str) = match n.kind {
                Tok::Str | Tok::UnterminatedStr => {
                    let s = string_token(i.ctx, n);
                    (i.advance(2), Ident { name: s.value, span: s.span }, true)
                }
                Tok::Ident => (i.advance(2), Ident { name: i.text(n).to_string(), span: n.span }, false),
                _ => return fail_with(rest, generic(rest, "a campaign name (a string or a name)")),
            };
            let (i, body) = cut(body).parse(i)?;
            Ok((i, StmtKind::Campaign { name, name_is_string: is_str, body }))
        }
        "use" => {
            let (i, pipeline) = cut(ident("a pipeline name")).parse(rest)?;
            let (i, config) = if i.at_word("with") {
                let (i, c) = cut(ident("a config name")).parse(i.advance(1))?;
                (i, Some(c))
            } else {
                (i, None)
            };
            Ok((i, StmtKind::Use { pipeline, config }))
        }
        "cluster" => {
            let (i, name) = cut(ident("a cluster name")).parse(rest)?;
            let (i, body) = cut(body).parse(i)?;
            Ok((i, StmtKind::Cluster { name, body }))
        }
        "notify" => {
            let (i, body) = cut(body).parse(rest)?;
            Ok((i, StmtKind::Notify { body }))
        }
        "env" => {
            let (i, body) = cut(body).parse(rest)?;
            Ok((i, StmtKind::Env { body }))
        }
        "equal" => {
            let (i, left) = cut(ident("a dimension name")).parse(rest)?;
            let (i, eq) = cut(tok(Tok::Eq, "`=` between the two dimensions")).parse(i)?;
            if i.first().nl_before {
                // `equal visit =` and a line break: the next line is another statement.
                let d = Diagnostic::new("E100", "expected a dimension name after `=`")
                    .at(i.ctx.file, eq.span, "the line ends here")
                    .help(format!("write `equal {} = OTHER` on one line", left.name));
                return fail_with(i, d);
            }
            let (i, right) = cut(ident("a dimension name")).parse(i)?;
            Ok((i, StmtKind::Equal { left, right }))
        }
        "final" => {
            let (i, name) = cut(ident("a name for the final job")).parse(rest)?;
            let (i, body) = cut(body).parse(i)?;
            Ok((i, StmtKind::Final { name, body }))
        }
        "subset" => {
            let (i, name) = cut(ident("a subset name")).parse(rest)?;
            let (i, _) = cut(tok(Tok::Eq, "`=` and a list of steps")).parse(i)?;
            let (i, value) = attr_value(i)?;
            Ok((i, StmtKind::Subset { name, value }))
        }
        "order" => {
            let (i, first) = cut(ident("a step or pipeline name, or `=`")).parse(rest)?;
            if i.at_word("before") {
                let (i, second) = cut(ident("a step or pipeline name")).parse(i.advance(1))?;
                Ok((i, StmtKind::OrderBefore { first, second }))
            } else if i.at_word("serial") {
                let (i, _) = cut(word("by", "`by`")).parse(i.advance(1))?;
                let (i, dim) = cut(ident("a dimension name")).parse(i)?;
                Ok((i, StmtKind::OrderSerial { step: first, dim }))
            } else {
                fail_with(i, generic(i, "`before` or `serial by`"))
            }
        }
        _ => {
            // `key value` without `=`, or an unknown statement word.  A misspelt statement
            // word is the token at fault, not the name after it.
            if let Some(s) = did_you_mean(kw, STATEMENT_WORDS.iter().copied()) {
                let d = Diagnostic::new("E100", format!("unknown statement `{kw}`"))
                    .at(i.ctx.file, t.span, format!("did you mean `{s}`?"))
                    .help(format!("did you mean the statement `{s}`? a setting is written `{kw} = value`"));
                return fail_with(rest, d);
            }
            fail_with(rest, generic(rest, "`=` after this key"))
        }
    }
}

const STATEMENT_WORDS: [&str; 18] = [
    "equal",
    "final",
    "subset",
    "include",
    "defaults",
    "site",
    "dimension",
    "relation",
    "coverage",
    "dataset",
    "pipeline",
    "config",
    "step",
    "campaign",
    "use",
    "cluster",
    "notify",
    "order",
];

fn generic(i: Toks<'_>, what: &'static str) -> Diagnostic {
    let t = i.first();
    Diagnostic::new("E100", format!("expected {what}, found {}", describe_found(i, t))).at(i.ctx.file, t.span, format!("expected {what}"))
}

/// Skip to where the next statement can begin: a token on a new line at the same brace
/// depth, a `}` closing the enclosing block, or the end of the file.  Always consumes at
/// least one token unless at `}`/EOF.
fn recover(mut i: Toks<'_>, start_len: usize) -> Toks<'_> {
    let mut depth = 0usize;
    loop {
        let t = i.first();
        match t.kind {
            Tok::Eof => return i,
            Tok::RBrace if depth == 0 => return i,
            _ => {}
        }
        if depth == 0 && t.nl_before && i.toks.len() < start_len {
            return i;
        }
        match t.kind {
            Tok::LBrace => depth += 1,
            Tok::RBrace => depth -= 1,
            _ => {}
        }
        i = i.advance(1);
    }
}

fn statements(mut i: Toks<'_>, in_block: bool) -> (Toks<'_>, Vec<Stmt>) {
    let mut out = Vec::new();
    loop {
        while matches!(i.first().kind, Tok::Comma | Tok::Semi) {
            i = i.advance(1);
        }
        let t = i.first();
        match t.kind {
            Tok::Eof => return (i, out),
            Tok::RBrace if in_block => return (i, out),
            Tok::RBrace => {
                i.ctx.report(
                    Diagnostic::new("E108", "unexpected `}`")
                        .at(i.ctx.file, t.span, "this `}` closes nothing")
                        .help("remove it, or check the braces above"),
                );
                i = i.advance(1);
                continue;
            }
            Tok::RParen | Tok::RBracket => {
                i.ctx.report(stray_closer(i, t));
                i = i.advance(1);
                continue;
            }
            _ => {}
        }
        let start_len = i.toks.len();
        match statement(i) {
            Ok((r, kind)) => {
                let end = prev_end(i, r).max(t.span.lo);
                out.push(Stmt { kind, span: Span { lo: t.span.lo, hi: end } });
                let nx = r.first();
                let separated = matches!(nx.kind, Tok::Comma | Tok::Semi | Tok::Eof | Tok::RBrace) || nx.nl_before;
                i = r;
                if !separated && matches!(nx.kind, Tok::RParen | Tok::RBracket) {
                    // `outputs = [calexp]]`: a closer with no opener.
                    r.ctx.report(stray_closer(r, nx));
                    i = recover(r, start_len);
                } else if !separated {
                    let mut d = Diagnostic::new("E100", format!("expected a line break, `,` or `;` before {}", describe_found(r, nx))).at(
                        r.ctx.file,
                        nx.span,
                        "expected a line break, `,` or `;` here",
                    );
                    if nx.kind == Tok::Eq {
                        d = d.help("a key is a single name; string keys are quoted: \"isr.doCrosstalk\" = false");
                    }
                    r.ctx.report(d);
                    i = recover(r, start_len);
                }
            }
            Err(Err::Error(e) | Err::Failure(e)) => {
                if let Some(d) = to_diag(i.ctx, e) {
                    i.ctx.report(d);
                }
                let r = recover(i, start_len);
                let r = if r.toks.len() == start_len && !matches!(r.first().kind, Tok::Eof | Tok::RBrace) { r.advance(1) } else { r };
                out.push(Stmt { kind: StmtKind::Error, span: Span { lo: t.span.lo, hi: prev_end(i, r).max(t.span.lo) } });
                i = r;
            }
            Err(Err::Incomplete(_)) => {
                i = recover(i, start_len);
            }
        }
    }
}

/// E108 for a `)` or `]` that closes nothing.
fn stray_closer(i: Toks<'_>, t: Token) -> Diagnostic {
    let sym = i.text(t);
    Diagnostic::new("E108", format!("unexpected `{sym}`"))
        .at(i.ctx.file, t.span, format!("this `{sym}` closes nothing"))
        .help("remove it, or check the brackets before it")
}

/// End offset of the last token consumed between `before` and `after`.
fn prev_end(before: Toks<'_>, after: Toks<'_>) -> u32 {
    let consumed = before.toks.len() - after.toks.len();
    if consumed == 0 {
        return before.first().span.lo;
    }
    before.toks[consumed - 1].span.hi
}

/// `1` or `MAJOR.MINOR` with a minor of at least 1, without leading zeros: `1`, `1.1`, `2`,
/// `1.12`.  `1.0`, `01` or `1.1.1` are malformed (the canonical spelling of 1.0 is `1`).
fn parse_version(text: &str) -> Option<Version> {
    let part = |s: &str| -> Option<u32> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0')) {
            return None;
        }
        s.parse().ok()
    };
    match text.split_once('.') {
        None => Some(Version { major: part(text)?, minor: 0 }),
        Some((a, b)) => {
            let minor = part(b)?;
            (minor > 0).then_some(Version { major: part(a)?, minor })
        }
    }
}

pub struct Parsed {
    pub module: Module,
    pub diags: Vec<Diagnostic>,
}

/// Stack given to the parser thread.  With [`MAX_DEPTH`] the deepest parse needs well under
/// this even in debug builds (measured: 64 nested blocks overflow a 2 MiB stack in debug).
const PARSER_STACK: usize = 64 << 20;

/// Parse a whole file.  Always returns a module; problems are in `diags`.
///
/// Runs on a thread with a fixed stack, so nesting up to [`MAX_DEPTH`] is safe whatever
/// stack the caller has.  Each calling thread keeps its parser thread for later parses:
/// spawning one per parse (a 64 MiB stack to map, and under a sanitizer to unpoison) was
/// most of the cost of checking a small file.
pub fn parse(file: FileId, src: &str) -> Parsed {
    type Worker = (std::sync::mpsc::Sender<(FileId, std::sync::Arc<str>)>, std::sync::mpsc::Receiver<Parsed>);
    thread_local! {
        static WORKER: RefCell<Option<Worker>> = const { RefCell::new(None) };
    }
    let spawn = || -> Option<Worker> {
        let (job_tx, job_rx) = std::sync::mpsc::channel::<(FileId, std::sync::Arc<str>)>();
        let (res_tx, res_rx) = std::sync::mpsc::channel::<Parsed>();
        std::thread::Builder::new()
            .name("bpsc-parse".into())
            .stack_size(PARSER_STACK)
            .spawn(move || {
                while let Ok((file, src)) = job_rx.recv() {
                    if res_tx.send(parse_on_this_thread(file, &src)).is_err() {
                        break;
                    }
                }
            })
            .ok()?;
        Some((job_tx, res_rx))
    };
    let on_worker = WORKER
        .try_with(|w| {
            let mut w = w.try_borrow_mut().ok()?;
            if w.is_none() {
                *w = spawn();
            }
            let (tx, rx) = w.as_ref()?;
            let got = tx.send((file, std::sync::Arc::from(src))).ok().and_then(|_| rx.recv().ok());
            if got.is_none() {
                *w = None; // the worker died (a panic while parsing): parse here, to report it
            }
            got
        })
        .ok()
        .flatten();
    on_worker.unwrap_or_else(|| parse_on_this_thread(file, src))
}

fn parse_on_this_thread(file: FileId, src: &str) -> Parsed {
    let lexed = lex(file, src);
    let ctx = Ctx { src, file, diags: RefCell::new(lexed.diags), depth: Cell::new(0) };
    let i = Toks { toks: &lexed.tokens, ctx: &ctx };
    let mut version = None;
    let mut i = i;
    let first = i.first();
    if i.at_word("bps") {
        let n = i.second();
        if n.kind == Tok::Number && !n.nl_before {
            let text = i.text(n);
            match parse_version(text) {
                Some(v) if v.supported() => version = Some((v, first.span.to(n.span))),
                Some(v) => {
                    ctx.report(
                        Diagnostic::new("E105", format!("unsupported language version {v}"))
                            .at(file, n.span, "this bpsc reads versions 1 and 1.1")
                            .help("write `bps 1` or `bps 1.1`, or use the bpsc release that matches this file"),
                    );
                    version = Some((v, first.span.to(n.span)));
                }
                None => ctx.report(
                    Diagnostic::new("E104", format!("malformed version `{text}`"))
                        .at(file, n.span, "expected `1` or `1.1`")
                        .help("the first line is `bps 1` or `bps 1.1`"),
                ),
            }
            i = i.advance(2);
        } else {
            ctx.report(
                Diagnostic::new("E104", "missing language version after `bps`")
                    .at(file, first.span, "expected `bps 1` or `bps 1.1`")
                    .help("the first line is `bps 1` or `bps 1.1`"),
            );
            i = i.advance(1);
        }
    } else {
        let span = if first.kind == Tok::Eof { Span::new(0, 0) } else { first.span };
        ctx.report(
            Diagnostic::new("E104", "missing `bps 1` header")
                .at(file, span, "the file must start with `bps 1` or `bps 1.1`")
                .help("add `bps 1.1` as the first line: it states the language version"),
        );
    }
    let (_, stmts) = statements(i, false);
    let diags = ctx.diags.into_inner();
    Parsed { module: Module { file, version, stmts, comments: lexed.comments }, diags }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(src: &str) -> Parsed {
        parse(FileId(0), src)
    }
    fn codes(src: &str) -> Vec<&'static str> {
        p(src).diags.iter().map(|d| d.code).collect()
    }

    #[test]
    fn brief_example_parses_clean() {
        let src = include_str!("../../tests/fixtures/brief.bps");
        let r = p(src);
        assert!(r.diags.is_empty(), "{:#?}", r.diags);
        assert_eq!(r.module.version.map(|v| v.0), Some(Version::V1_0));
        assert!(r.module.stmts.len() >= 10);
    }

    #[test]
    fn five_independent_errors_give_five_diagnostics() {
        let src = "bps 1\ndefaults {\n  memory = = 1\n  cpus 4\n  walltime = 2x\n}\nsite { }\ndimension = 3\npipeline p { step a over (x y) { } }\n";
        let c = codes(src);
        assert_eq!(c.len(), 5, "{c:?}");
    }

    #[test]
    fn unclosed_block_points_at_opener() {
        let src = "bps 1\npipeline p {\n  step a {\n    run = \"x\"\n";
        let r = p(src);
        let d: Vec<_> = r.diags.iter().filter(|d| d.code == "E102").collect();
        assert_eq!(d.len(), 2);
        let spans: Vec<_> = d.iter().map(|d| d.primary.as_ref().unwrap().loc.span.lo).collect();
        assert!(spans.contains(&(src.find("p {").unwrap() as u32 + 2)));
        assert!(spans.contains(&(src.find("a {").unwrap() as u32 + 2)));
    }

    fn primary_text<'s>(src: &'s str, r: &Parsed, code: &str) -> Vec<&'s str> {
        r.diags.iter().filter(|d| d.code == code).map(|d| &src[d.primary.as_ref().unwrap().loc.span.range()]).collect()
    }

    #[test]
    fn dotted_version_is_one_bad_literal() {
        let src = "bps 1\npipeline p { config c { stack = 1.5.3 } }\n";
        let r = p(src);
        assert_eq!(r.diags.len(), 1, "{:#?}", r.diags);
        assert_eq!(primary_text(src, &r, "E103"), vec!["1.5.3"]);
    }

    #[test]
    fn stray_closers_are_e108() {
        let src = "bps 1\npipeline p {\n  step a { outputs = [x]], run = \"true\" }\n}\n)\n";
        let r = p(src);
        assert_eq!(r.diags.iter().map(|d| d.code).collect::<Vec<_>>(), vec!["E108", "E108"], "{:#?}", r.diags);
        assert_eq!(primary_text(src, &r, "E108"), vec!["]", ")"]);
    }

    #[test]
    fn unclosed_call_before_next_setting_points_at_paren() {
        let src = "bps 1\ndefaults {\n  software = container(\"img:1\"\n  cpus = 1\n}\n";
        let r = p(src);
        assert_eq!(r.diags.len(), 1, "{:#?}", r.diags);
        assert_eq!(primary_text(src, &r, "E102"), vec!["("]);
    }

    #[test]
    fn misspelt_statement_word_is_the_primary() {
        let src = "bps 1\npipline drp {\n}\n";
        let r = p(src);
        assert_eq!(primary_text(src, &r, "E100"), vec!["pipline"]);
    }

    #[test]
    fn bad_unit_with_space() {
        let src = "bps 1\ndefaults { memory = 4 Gb }\n";
        let r = p(src);
        assert_eq!(r.diags.len(), 1);
        assert_eq!(r.diags[0].code, "E103");
        let at = src.find("4 Gb").unwrap();
        assert_eq!(r.diags[0].primary.as_ref().unwrap().loc.span, Span::new(at, at + 4));
    }

    #[test]
    fn deep_list_nesting_is_bounded() {
        let src = format!("bps 1\ndefaults {{ x = {}1{} }}\n", "[".repeat(10_000), "]".repeat(10_000));
        assert!(codes(&src).contains(&"E107"));
    }

    #[test]
    fn deep_block_nesting_is_bounded() {
        let src = format!("bps 1\n{}", "defaults {".repeat(10_000));
        assert!(codes(&src).contains(&"E107"));
    }

    #[test]
    fn long_not_chain_is_flat() {
        let src = format!("bps 1\ncoverage c = v where {} v == 1\n", "not ".repeat(100_000));
        assert!(codes(&src).is_empty());
    }

    #[test]
    fn long_join_chain_is_flat() {
        let src = format!("bps 1\ncoverage c = v{}\n", " * v".repeat(100_000));
        assert!(codes(&src).is_empty());
    }

    #[test]
    fn versions_one_and_one_point_one() {
        assert_eq!(p("bps 1\n").module.version.map(|v| v.0), Some(Version::V1_0));
        assert_eq!(p("bps 1.1\n").module.version.map(|v| v.0), Some(Version::V1_1));
        assert!(p("bps 1.1\n").diags.is_empty());
        assert_eq!(codes("bps 1.2\n"), vec!["E105"]);
        assert_eq!(codes("bps 2\n"), vec!["E105"]);
        for bad in ["bps 1.0\n", "bps 01\n", "bps 1.1.1\n", "bps 1.01\n", "bps 1x\n"] {
            let c = codes(bad);
            assert!(c.contains(&"E104") || c.contains(&"E103"), "{bad}: {c:?}");
        }
        // An unsupported or malformed header does not gate features (no E212 cascade).
        assert_eq!(p("bps 7\n").module.effective_version(), Version::LATEST);
        assert_eq!(p("dimension v = 0..2\n").module.effective_version(), Version::LATEST);
        assert_eq!(p("bps 1\n").module.effective_version(), Version::V1_0);
    }

    #[test]
    fn where_predicates_and_ranges() {
        let r = p("bps 1\ncoverage c = exposure * detector where band in [\"g\", \"r\"] and not (visit != 1230 or visit < 3)\ndimension d = 0..=103\n");
        assert!(r.diags.is_empty(), "{:#?}", r.diags);
    }
}
