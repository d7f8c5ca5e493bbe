//! Quoting for the three text formats the Pegasus backend writes: YAML scalars, XML text
//! and attributes, and the File replica catalog's columns.
//!
//! All three share one Pegasus peculiarity: the planner reads every workflow and catalog
//! file through `VariableExpansionReader`, which replaces `${NAME}` by the planner's
//! environment variable NAME (and fails planning when it is unset) *before* the YAML or
//! XML parser sees the text.  bpsc uses that on purpose for `${BPSC_SUBMIT}` and
//! `${BPSC_BIN}` (see [`super`]); every other `${` that comes from user data (data ID
//! values, env values, notify commands) is written so that the raw text never contains
//! `${`: `\x24{` in a YAML double-quoted scalar, `&#36;{` in XML.  The parsed value is
//! unchanged.

/// YAML 1.1 words that a plain scalar would turn into a boolean or null (SnakeYAML, which
/// Pegasus's Jackson parser uses, follows YAML 1.1).
const YAML11_WORDS: &[&str] = &["y", "n", "yes", "no", "true", "false", "on", "off", "null"];

fn plain_ok(s: &str) -> bool {
    let b = s.as_bytes();
    let Some(&first) = b.first() else { return false };
    (first.is_ascii_alphabetic() || first == b'_' || first == b'/')
        && b.iter().all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'/' | b'-'))
        && !YAML11_WORDS.iter().any(|w| w.eq_ignore_ascii_case(s))
}

/// Characters that cannot stand as themselves inside a single-quoted YAML scalar on one
/// line: C0/C1 controls (NEL is a YAML 1.1 line break), DEL, the Unicode line and paragraph
/// separators, the byte-order mark and the two non-characters YAML excludes.
fn needs_escape(c: char) -> bool {
    let u = c as u32;
    u < 0x20 || (0x7f..=0x9f).contains(&u) || matches!(u, 0x2028 | 0x2029 | 0xfeff | 0xfffe | 0xffff)
}

/// Append `s` as a YAML scalar that YAML 1.1 and 1.2 parsers read back as exactly the
/// string `s`, on one line, and in which Pegasus's `${VAR}` expansion finds nothing.
///
/// Plain when it is an identifier-like word that no YAML version reads as anything but a
/// string; single-quoted when every character is printable and there is no `${`;
/// double-quoted with escapes otherwise.
pub fn yaml_str(s: &str, out: &mut String) {
    yaml_scalar(s, false, out)
}

/// The variables bpsc leaves for pegasus-plan to expand: `${USER}` (what `{user}` becomes
/// in URL and scratch templates, as the job wrapper expands it too), and the submit
/// directory and binary (see [`super`]).  Every other `${` is escaped.
pub const PLAN_VARS: &[&str] = &["${USER}", "${BPSC_SUBMIT}", "${BPSC_BIN_DIR}", "${BPSC_BIN}"];

fn plan_var_at(s: &str, i: usize) -> bool {
    PLAN_VARS.iter().any(|v| s[i..].starts_with(v))
}

/// Like [`yaml_str`], but the [`PLAN_VARS`] are left for Pegasus to expand at planning
/// time: for URLs and paths.  Data ID values in URLs are percent-encoded already.
pub fn yaml_url(s: &str, out: &mut String) {
    yaml_scalar(s, true, out)
}

fn yaml_scalar(s: &str, keep_vars: bool, out: &mut String) {
    if plain_ok(s) {
        out.push_str(s);
        return;
    }
    let dollar_brace = s.match_indices("${").any(|(i, _)| !(keep_vars && plan_var_at(s, i)));
    if !dollar_brace && !s.chars().any(needs_escape) {
        out.push('\'');
        for c in s.chars() {
            if c == '\'' {
                out.push_str("''");
            } else {
                out.push(c);
            }
        }
        out.push('\'');
        return;
    }
    out.push('"');
    let mut it = s.char_indices().peekable();
    while let Some((i, c)) = it.next() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '$' if it.peek().map(|p| p.1) == Some('{') && !(keep_vars && plan_var_at(s, i)) => out.push_str("\\x24"),
            '\u{2028}' => out.push_str("\\L"),
            '\u{2029}' => out.push_str("\\P"),
            c if needs_escape(c) => {
                let u = c as u32;
                if u <= 0xff {
                    out.push_str(&format!("\\x{u:02X}"));
                } else {
                    out.push_str(&format!("\\u{u:04X}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// [`yaml_str`] into a new string.
pub fn yaml(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    yaml_str(s, &mut o);
    o
}

/// A YAML scalar that Pegasus *should* expand (`${BPSC_SUBMIT}/...`): written verbatim in
/// single quotes.  `s` comes from bpsc itself, never from user data.
pub fn yaml_expand(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Escape `s` for XML 1.0 text or a double-quoted attribute.  `${` becomes `&#36;{` (see
/// the module doc); tab, line feed and carriage return become character references so
/// that attribute-value normalisation keeps them; characters XML 1.0 cannot carry at all
/// (other C0 controls, U+FFFE, U+FFFF) become U+FFFD — the only lossy case, and only
/// informational text (metadata, notification commands) can contain them.
pub fn xml_escape(s: &str) -> String {
    xml_text(s, false, true)
}

/// [`xml_escape`] for element text: quotes stay as they are.
pub fn xml_text_escape(s: &str) -> String {
    xml_text(s, false, false)
}

/// [`xml_escape`] that leaves `${NAME}` for Pegasus (URLs, see [`yaml_url`]).
pub fn xml_url(s: &str) -> String {
    xml_text(s, true, true)
}

pub fn xml_text(s: &str, keep_vars: bool, attr: bool) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    let mut it = s.char_indices().peekable();
    while let Some((i, c)) = it.next() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if attr => out.push_str("&quot;"),
            '\'' if attr => out.push_str("&apos;"),
            '$' if it.peek().map(|p| p.1) == Some('{') && !(keep_vars && plan_var_at(s, i)) => out.push_str("&#36;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// A column of the File replica catalog format (`"LFN" "PFN" site="local"`): quoted,
/// with `"` and `\` escaped by a backslash, and `$` too when it starts a `${` that is not
/// one of the [`PLAN_VARS`]: `\${X}` reads back as `${X}` whether or not the reader
/// expands variables first (Pegasus's expansion treats `\` before `${` as an escape, the
/// File format's quoted strings take `\$` for `$`).  The format has no escape for a line
/// break, so such values are refused (`None`).
pub fn rc_text(s: &str) -> Option<String> {
    if s.chars().any(|c| c == '\n' || c == '\r') {
        return None;
    }
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for (i, c) in s.char_indices() {
        if c == '"' || c == '\\' || (c == '$' && s[i + 1..].starts_with('{') && !plan_var_at(s, i)) {
            o.push('\\');
        }
        o.push(c);
    }
    o.push('"');
    Some(o)
}

/// A ClassAd string literal.
pub fn classad_str(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// `(member(toLower(Machine), {...}) || member(toLower(split(Machine, ".")[0]), {...}))`:
/// any of `hosts`, each given by its full or its short name.  HTCondor's `Machine` is "the
/// fully qualified host name" (machine-classad-attributes.rst), so a short name compares
/// with the part before the first dot; host names compare case-insensitively.  The same
/// form as the HTCondor backend's.
pub fn classad_hosts(hosts: &[String]) -> String {
    let list = hosts.iter().map(|h| classad_str(&h.to_lowercase())).collect::<Vec<_>>().join(", ");
    format!("(member(toLower(Machine), {{{list}}}) || member(toLower(split(Machine, \".\")[0]), {{{list}}}))")
}

/// A name Pegasus, DAGMan and the DAX `NodeIdentifierPattern` all accept: ASCII letters,
/// digits, `_` and `-`; anything else becomes `-`; never empty.
pub fn node_name(s: &str) -> String {
    let mut o: String = s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '-' }).collect();
    if o.is_empty() {
        o.push('x');
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_only_for_safe_words() {
        assert_eq!(yaml("isr"), "isr");
        assert_eq!(yaml("postisr/30400_0"), "postisr/30400_0");
        assert_eq!(yaml("yes"), "'yes'");
        assert_eq!(yaml("NULL"), "'NULL'");
        assert_eq!(yaml("30400"), "'30400'");
        assert_eq!(yaml(""), "''");
        assert_eq!(yaml("-o"), "'-o'");
        assert_eq!(yaml("a: b"), "'a: b'");
        assert_eq!(yaml("it's"), "'it''s'");
    }

    #[test]
    fn dollar_brace_never_survives() {
        assert_eq!(yaml("${HOME}"), "\"\\x24{HOME}\"");
        assert_eq!(yaml("$HOME"), "'$HOME'");
        assert_eq!(yaml("a\nb"), "\"a\\nb\"");
        assert_eq!(yaml("\u{85}"), "\"\\x85\"");
        assert!(!yaml("x${y}${z}").contains("${"));
        assert_eq!(xml_escape("${A}<&>\"'"), "&#36;{A}&lt;&amp;&gt;&quot;&apos;");
        assert_eq!(xml_escape("a\u{1}b"), "a\u{fffd}b");
        assert_eq!(rc_text("a\"b\\c"), Some("\"a\\\"b\\\\c\"".into()));
        assert_eq!(rc_text("a\nb"), None);
        assert_eq!(rc_text("/x/${HOME}"), Some("\"/x/\\${HOME}\"".into()));
        assert_eq!(rc_text("/x/${USER}"), Some("\"/x/${USER}\"".into()));
        assert!(rc_text("/x/${USER}").is_some());
        let mut h = String::new();
        yaml_url("file:///a/${HOME}/${USER}", &mut h);
        assert_eq!(h, "\"file:///a/\\x24{HOME}/${USER}\"");
        assert_eq!(xml_url("${HOME}${BPSC_BIN}"), "&#36;{HOME}${BPSC_BIN}");
        let mut u = String::new();
        yaml_url("file:///x/${USER}/a", &mut u);
        assert_eq!(u, "'file:///x/${USER}/a'");
    }

    #[test]
    fn hosts_match_short_and_full_names() {
        assert_eq!(
            classad_hosts(&["sdfrome041".into(), "Node.B".into()]),
            r#"(member(toLower(Machine), {"sdfrome041", "node.b"}) || member(toLower(split(Machine, ".")[0]), {"sdfrome041", "node.b"}))"#
        );
        assert_eq!(classad_str("a\"b\\"), r#""a\"b\\""#);
    }
}
