//! The lexer: nom combinators over `&str`, producing a flat token vector with byte spans.
//!
//! Lexing never fails: malformed input becomes an error token or a diagnostic, and lexing
//! goes on at the next character.  Comments are kept aside for the formatter.

use nom::branch::alt;
use nom::bytes::complete::{tag, take_while};
use nom::character::complete::{char as ch, digit1, satisfy};
use nom::combinator::recognize;
use nom::multi::many0;
use nom::sequence::pair;
use nom::{IResult, Parser};

use crate::diag::Diagnostic;
use crate::source::{FileId, Span};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tok {
    Ident,
    /// A number with an optional unit suffix, validated by the parser: `4`, `1.5`, `4GiB`, `1h30m`.
    Number,
    Str,
    /// A string whose closing quote is missing (E101 already reported).
    UnterminatedStr,
    LBrace,
    RBrace,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Eq,
    EqEq,
    NotEq,
    Lt,
    Le,
    Gt,
    Ge,
    Comma,
    Semi,
    Dot,
    DotDot,
    DotDotEq,
    Star,
    Plus,
    Minus,
    Eof,
}

impl Tok {
    pub fn describe(self) -> &'static str {
        match self {
            Tok::Ident => "a name",
            Tok::Number => "a number",
            Tok::Str | Tok::UnterminatedStr => "a string",
            Tok::LBrace => "`{`",
            Tok::RBrace => "`}`",
            Tok::LParen => "`(`",
            Tok::RParen => "`)`",
            Tok::LBracket => "`[`",
            Tok::RBracket => "`]`",
            Tok::Eq => "`=`",
            Tok::EqEq => "`==`",
            Tok::NotEq => "`!=`",
            Tok::Lt => "`<`",
            Tok::Le => "`<=`",
            Tok::Gt => "`>`",
            Tok::Ge => "`>=`",
            Tok::Comma => "`,`",
            Tok::Semi => "`;`",
            Tok::Dot => "`.`",
            Tok::DotDot => "`..`",
            Tok::DotDotEq => "`..=`",
            Tok::Star => "`*`",
            Tok::Plus => "`+`",
            Tok::Minus => "`-`",
            Tok::Eof => "end of file",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Token {
    pub kind: Tok,
    pub span: Span,
    /// A line break separates this token from the previous one.
    pub nl_before: bool,
}

pub struct Lexed {
    pub tokens: Vec<Token>,
    pub comments: Vec<Span>,
    pub diags: Vec<Diagnostic>,
}

type LResult<'a, T> = IResult<&'a str, T>;

fn ident(i: &str) -> LResult<'_, &str> {
    recognize(pair(satisfy(|c| c.is_ascii_alphabetic() || c == '_'), take_while(|c: char| c.is_ascii_alphanumeric() || c == '_'))).parse(i)
}

/// `12`, `1_000`, `1.5`, each optionally followed by letters (a unit) and, for compound
/// durations, further digit+letters groups: `1h30m`.  A `.` starts a fraction only when a
/// digit follows, so `0..10` lexes as `0` `..` `10`.  Further `.digits` groups stay in the
/// token (`1.5.3`), so that the parser reports one bad literal rather than a stray `.3`.
fn number(i: &str) -> LResult<'_, &str> {
    recognize((
        digit1,
        take_while(|c: char| c.is_ascii_digit() || c == '_'),
        many0(pair(ch('.'), digit1)),
        take_while(|c: char| c.is_ascii_alphabetic()),
        take_while(|c: char| c.is_ascii_alphanumeric()),
    ))
    .parse(i)
}

fn punct(i: &str) -> LResult<'_, Tok> {
    alt((
        alt((
            tag("..=").map(|_| Tok::DotDotEq),
            tag("..").map(|_| Tok::DotDot),
            tag("==").map(|_| Tok::EqEq),
            tag("!=").map(|_| Tok::NotEq),
            tag("<=").map(|_| Tok::Le),
            tag(">=").map(|_| Tok::Ge),
        )),
        alt((
            ch('{').map(|_| Tok::LBrace),
            ch('}').map(|_| Tok::RBrace),
            ch('(').map(|_| Tok::LParen),
            ch(')').map(|_| Tok::RParen),
            ch('[').map(|_| Tok::LBracket),
            ch(']').map(|_| Tok::RBracket),
            ch('=').map(|_| Tok::Eq),
            ch('<').map(|_| Tok::Lt),
            ch('>').map(|_| Tok::Gt),
            ch(',').map(|_| Tok::Comma),
            ch(';').map(|_| Tok::Semi),
            ch('.').map(|_| Tok::Dot),
            ch('*').map(|_| Tok::Star),
            ch('+').map(|_| Tok::Plus),
            ch('-').map(|_| Tok::Minus),
        )),
    ))
    .parse(i)
}

fn comment(i: &str) -> LResult<'_, &str> {
    recognize(pair(ch('#'), take_while(|c: char| c != '\n'))).parse(i)
}

/// A string body up to (and including) the closing quote on the same line.
/// Returns (consumed text, terminated?).
fn string_lit(i: &str) -> LResult<'_, bool> {
    let (mut rest, _) = ch('"').parse(i)?;
    loop {
        let mut chars = rest.char_indices();
        match chars.next() {
            None => return Ok((rest, false)),
            Some((_, '\n')) => return Ok((rest, false)),
            Some((_, '"')) => return Ok((&rest[1..], true)),
            Some((_, '\\')) => {
                // Skip the escaped character (validated by the parser), unless it ends the line.
                match chars.next() {
                    Some((j, c)) if c != '\n' => rest = &rest[j + c.len_utf8()..],
                    _ => rest = &rest[1..],
                }
            }
            Some((_, c)) => rest = &rest[c.len_utf8()..],
        }
    }
}

pub fn lex(file: FileId, src: &str) -> Lexed {
    let mut tokens = Vec::with_capacity(src.len() / 4 + 1);
    let mut comments = Vec::new();
    let mut diags = Vec::new();
    let mut rest = src;
    let mut nl = true;
    let off = |r: &str| src.len() - r.len();
    while let Some(&b0) = rest.as_bytes().first() {
        let start = off(rest);
        // Dispatch on the first byte; each token class is then lexed by its nom parser.
        match b0 {
            b' ' | b'\t' | b'\r' => {
                let n = rest.bytes().take_while(|b| matches!(b, b' ' | b'\t' | b'\r')).count();
                rest = &rest[n..];
                continue;
            }
            b'\n' => {
                nl = true;
                rest = &rest[1..];
                continue;
            }
            b'#' => {
                if let Ok((r, _)) = comment(rest) {
                    comments.push(Span::new(start, off(r)));
                    rest = r;
                    continue;
                }
            }
            0xEF if rest.starts_with('\u{feff}') => {
                rest = &rest[3..];
                continue;
            }
            _ => {}
        }
        let lexed = if b0.is_ascii_alphabetic() || b0 == b'_' {
            ident(rest).ok().map(|(r, _)| (r, Tok::Ident))
        } else if b0.is_ascii_digit() {
            number(rest).ok().map(|(r, _)| (r, Tok::Number))
        } else if b0 == b'"' {
            string_lit(rest).ok().map(|(r, terminated)| {
                if !terminated {
                    diags.push(
                        Diagnostic::new("E101", "unterminated string")
                            .at(file, Span::new(start, start + 1), "this string is never closed")
                            .help("close it with `\"` on the same line; strings cannot span lines"),
                    );
                }
                (r, if terminated { Tok::Str } else { Tok::UnterminatedStr })
            })
        } else {
            punct(rest).ok()
        };
        let (r, kind) = match lexed {
            Some(x) => x,
            None => {
                let c = rest.chars().next().unwrap_or('\u{fffd}');
                let len = c.len_utf8();
                // A run of invalid characters is one diagnostic (a file of NUL bytes is one
                // error, not one per byte): extend the previous E106 when it ends here.
                if let Some(prev) = diags.last_mut().filter(|d| d.code == "E106") {
                    if let Some(p) = prev.primary.as_mut().filter(|p| p.loc.file == file && p.loc.span.hi as usize == start) {
                        p.loc.span = Span::new(p.loc.span.lo as usize, start + len);
                        p.message = "no token starts with these characters".into();
                        let first = prev.message.split('`').nth(1).unwrap_or("").to_string();
                        prev.message = format!("invalid characters, starting with `{first}`");
                        rest = &rest[len..];
                        continue;
                    }
                }
                let mut d = Diagnostic::new("E106", format!("invalid character `{}`", c.escape_debug())).at(
                    file,
                    Span::new(start, start + len),
                    "no token starts with this character",
                );
                if c == '\'' {
                    d = d.help("strings use double quotes: \"...\"");
                } else if c == '!' {
                    d = d.help("negation is written `not`; inequality `!=`");
                } else if c == '&' || c == '|' {
                    d = d.help("predicates combine with `and` and `or`");
                }
                diags.push(d);
                rest = &rest[len..];
                continue;
            }
        };
        tokens.push(Token { kind, span: Span::new(start, off(r)), nl_before: nl });
        nl = false;
        rest = r;
    }
    tokens.push(Token { kind: Tok::Eof, span: Span::new(src.len(), src.len()), nl_before: true });
    Lexed { tokens, comments, diags }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(s: &str) -> Vec<Tok> {
        lex(FileId(0), s).tokens.iter().map(|t| t.kind).collect()
    }

    #[test]
    fn ranges_are_not_floats() {
        assert_eq!(kinds("0..104"), vec![Tok::Number, Tok::DotDot, Tok::Number, Tok::Eof]);
        assert_eq!(kinds("0..=9"), vec![Tok::Number, Tok::DotDotEq, Tok::Number, Tok::Eof]);
        assert_eq!(kinds("1.5GiB"), vec![Tok::Number, Tok::Eof]);
        assert_eq!(kinds("1.5.3"), vec![Tok::Number, Tok::Eof]);
        assert_eq!(kinds("1.5..3"), vec![Tok::Number, Tok::DotDot, Tok::Number, Tok::Eof]);
    }

    #[test]
    fn units_and_compound_durations_are_one_token() {
        let l = lex(FileId(0), "4GiB 1h30m 4 Gb");
        let texts: Vec<_> = l.tokens.iter().map(|t| &"4GiB 1h30m 4 Gb"[t.span.range()]).collect();
        assert_eq!(texts, vec!["4GiB", "1h30m", "4", "Gb", ""]);
    }

    #[test]
    fn strings_escapes_and_unterminated() {
        let l = lex(FileId(0), "\"a\\\"b\" \"open\nx");
        assert_eq!(l.tokens[0].kind, Tok::Str);
        assert_eq!(l.tokens[1].kind, Tok::UnterminatedStr);
        assert_eq!(l.tokens[2].kind, Tok::Ident);
        assert!(l.tokens[2].nl_before);
        assert_eq!(l.diags.len(), 1);
        assert_eq!(l.diags[0].code, "E101");
    }

    #[test]
    fn comments_and_bad_chars() {
        let l = lex(FileId(0), "a # note\n@ b");
        assert_eq!(l.comments, vec![Span::new(2, 8)]);
        assert_eq!(l.diags[0].code, "E106");
        assert_eq!(l.tokens.len(), 3);
    }

    #[test]
    fn a_run_of_bad_chars_is_one_diagnostic() {
        let l = lex(FileId(0), "a \0\0\0\0@ b $ c");
        let e106: Vec<_> = l.diags.iter().filter(|d| d.code == "E106").collect();
        assert_eq!(e106.len(), 2, "one for the run, one for `$`: {e106:?}");
        assert_eq!(e106[0].primary.as_ref().map(|p| p.loc.span), Some(Span::new(2, 7)));
        assert!(e106[0].message.starts_with("invalid characters"), "{}", e106[0].message);
        assert_eq!(e106[1].message, "invalid character `$`");
        assert_eq!(l.tokens.iter().filter(|t| t.kind == Tok::Ident).count(), 3);
    }
}
