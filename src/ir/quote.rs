//! Shell quoting: where a placeholder lands in a template's shell text, and how a value is
//! written there so that the shell reads exactly that value, as one word, and runs nothing.
//!
//! Templates (`run`, notify commands) are shell text with `{placeholders}`.  The literal
//! text decides the quoting context at each placeholder ([`scan_quotes`]): outside quotes,
//! inside `'...'`, or inside `"..."`; [`quote_in`] writes a value for that context and
//! [`var_in`] a reference to an environment variable left for the job's shell.

/// Where a placeholder sits in the template's shell text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quote {
    None,
    Single,
    Double,
}

/// Data ID values that have broken quoting somewhere: every test of a writer that places
/// data ID values runs them (shell, DAGMan, submit-file, Groovy and YAML contexts).
pub const INJECTION_CORPUS: &[&str] = &[
    "../../etc",
    "$(rm -rf ~)",
    "it's",
    "say \"hi\"",
    "a b",
    "`id`",
    "x;touch PWNED",
    "/abs/path",
    "-rf",
    "$HOME",
    "${IFS}",
    "a\\b",
    "\\",
    "'",
    "\"",
    "'\"'\"'",
    "*",
    "?",
    "[a]",
    "~",
    "a&b|c",
    "$((1+1))",
    "!!",
    "#comment",
    "tab\there",
    "{campaign}",
    "%s%n",
    "é",
];

/// Quoting state after shell text `s`, starting from `q`.
pub fn scan_quotes(s: &str, mut q: Quote) -> Quote {
    let mut esc = false;
    for c in s.chars() {
        match q {
            Quote::None => {
                if esc {
                    esc = false;
                } else if c == '\\' {
                    esc = true;
                } else if c == '\'' {
                    q = Quote::Single;
                } else if c == '"' {
                    q = Quote::Double;
                }
            }
            Quote::Single => {
                if c == '\'' {
                    q = Quote::None;
                }
            }
            Quote::Double => {
                if esc {
                    esc = false;
                } else if c == '\\' {
                    esc = true;
                } else if c == '"' {
                    q = Quote::None;
                }
            }
        }
    }
    q
}

/// Text the shell reads as one literal word without quotes.
fn is_plain(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"_./:=,+@%-".contains(&b))
}

/// Quote literal text `v` so that, placed in context `q`, the shell reads exactly `v`.
pub fn quote_in(v: &str, q: Quote, out: &mut String) {
    match q {
        Quote::None => {
            if is_plain(v) {
                out.push_str(v);
            } else {
                out.push('\'');
                out.push_str(&v.replace('\'', "'\\''"));
                out.push('\'');
            }
        }
        Quote::Single => out.push_str(&v.replace('\'', "'\\''")),
        Quote::Double => {
            for c in v.chars() {
                if matches!(c, '\\' | '"' | '$' | '`') {
                    out.push('\\');
                }
                out.push(c);
            }
        }
    }
}

/// `v` as one single-quoted shell word, whatever it holds.
pub fn single_quoted(v: &str) -> String {
    format!("'{}'", v.replace('\'', "'\\''"))
}

/// An environment variable reference, usable in any quoting context.
pub fn var_in(name: &str, q: Quote, out: &mut String) {
    match q {
        Quote::None => out.push_str(&format!("\"${{{name}}}\"")),
        Quote::Double => out.push_str(&format!("${{{name}}}")),
        Quote::Single => out.push_str(&format!("'\"${{{name}}}\"'")),
    }
}

/// Substitute `{name}` placeholders in shell text starting in quoting context `start`
/// (literal text is copied as is; for a double-quoted context it is escaped).  `sub` writes
/// a placeholder's value quoted for the context it lands in and returns false for an
/// unknown name, which is then kept literally.
pub fn expand_template(t: &str, start: Quote, sub: impl Fn(&str, Quote, &mut String) -> bool) -> String {
    let mut out = String::new();
    let mut q = start;
    let mut lit = String::new();
    let flush = |lit: &mut String, q: &mut Quote, out: &mut String| {
        if start == Quote::Double {
            quote_in(lit, Quote::Double, out);
        } else {
            out.push_str(lit);
            *q = scan_quotes(lit, *q);
        }
        lit.clear();
    };
    let mut it = t.char_indices().peekable();
    while let Some((i, c)) = it.next() {
        match c {
            '{' if t[i + 1..].starts_with('{') => {
                lit.push('{');
                it.next();
            }
            '}' if t[i + 1..].starts_with('}') => {
                lit.push('}');
                it.next();
            }
            '{' => match t[i + 1..].find('}') {
                Some(end) if t[i + 1..i + 1 + end].bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.') => {
                    let name = &t[i + 1..i + 1 + end];
                    flush(&mut lit, &mut q, &mut out);
                    let mut v = String::new();
                    if sub(name, q, &mut v) {
                        out.push_str(&v);
                    } else {
                        lit.push_str(&t[i..i + 2 + end]);
                    }
                    for _ in 0..=end {
                        it.next();
                    }
                }
                _ => lit.push('{'),
            },
            _ => lit.push(c),
        }
    }
    flush(&mut lit, &mut q, &mut out);
    out
}

/// What a placeholder of a notify command stands for where the command runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fill<'a> {
    /// A value known when the files are written, quoted as literal text.
    Text(&'a str),
    /// A variable of the shell that runs the command, referenced so that it expands there.
    Var(&'a str),
}

/// The notify command `template` as shell text: each placeholder (the checker allows
/// `{campaign}`, `{event}`, `{step}`, `{job}`, `{data_id}`) becomes what `fill` says, quoted
/// for the place it lands; a name `fill` does not know stays as written.  Every engine's
/// notification and `bpsc status --watch` render through this one function, so a
/// placeholder means the same on all of them.
pub fn notify_shell<'a>(template: &str, fill: impl Fn(&str) -> Option<Fill<'a>>) -> String {
    expand_template(template, Quote::None, |name, q, out| match fill(name) {
        Some(Fill::Text(v)) => {
            quote_in(v, q, out);
            true
        }
        Some(Fill::Var(v)) => {
            var_in(v, q, out);
            true
        }
        None => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// Run `script` with /bin/sh and return its stdout.
    fn sh(script: &str) -> String {
        let o = Command::new("/bin/sh").arg("-c").arg(script).env("HOME", "/nonexistent").output().expect("/bin/sh");
        assert!(o.status.success(), "sh failed on {script:?}: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Every value of the corpus, in every context a template can put it, reaches the
    /// program as exactly one argument holding exactly that text, and runs nothing.
    #[test]
    fn corpus_stays_one_word_in_every_context() {
        let dir = std::env::temp_dir().join(format!("bpsc-quote-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for v in INJECTION_CORPUS {
            // (template text around the placeholder, context at the placeholder)
            for (before, after) in [("printf '[%s]\\n' ", ""), ("printf '[%s]\\n' '", "'"), ("printf '[%s]\\n' \"", "\"")] {
                let q = scan_quotes(before, Quote::None);
                let mut cmd = format!("cd '{}' && ", dir.display());
                cmd.push_str(before);
                quote_in(v, q, &mut cmd);
                cmd.push_str(after);
                let got = sh(&cmd);
                assert_eq!(got, format!("[{v}]\n"), "value {v:?} in context {q:?}: {cmd}");
            }
            // Through the template expander, as a step's `run` is rendered.
            for t in ["printf '[%s]\\n' {x}", "printf '[%s]\\n' '{x}'", "printf '[%s]\\n' \"{x}\""] {
                let cmd = expand_template(t, Quote::None, |name, q, out| {
                    if name == "x" {
                        quote_in(v, q, out);
                        true
                    } else {
                        false
                    }
                });
                assert_eq!(sh(&format!("cd '{}' && {cmd}", dir.display())), format!("[{v}]\n"), "template {t} with {v:?}: {cmd}");
            }
        }
        let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert!(left.is_empty(), "a value created files: {left:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn single_quoted_words() {
        for v in INJECTION_CORPUS {
            assert_eq!(sh(&format!("printf '%s' {}", single_quoted(v))), *v);
        }
    }

    #[test]
    fn variables_stay_for_the_shell() {
        for (t, want) in [("echo {v}", "x y\n"), ("echo '{v}'", "x y\n"), ("echo \"{v}\"", "x y\n")] {
            let cmd = expand_template(t, Quote::None, |_, q, out| {
                var_in("BPSC_T", q, out);
                true
            });
            let o = Command::new("/bin/sh").arg("-c").arg(&cmd).env("BPSC_T", "x y").output().unwrap();
            assert_eq!(String::from_utf8_lossy(&o.stdout), want, "{cmd}");
        }
    }

    #[test]
    fn braces_and_unknown_names() {
        let cmd = expand_template("a {{b}} {c} {not closed", Quote::None, |_, _, _| false);
        assert_eq!(cmd, "a {b} {c} {not closed");
        let cmd = expand_template("say {x}", Quote::Double, |_, q, out| {
            quote_in("$HOME", q, out);
            true
        });
        assert_eq!(cmd, "say \\$HOME");
    }
}
