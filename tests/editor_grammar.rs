//! The VS Code extension's TextMate grammar keeps step with grammar/bpsc.ebnf: every
//! keyword and every unit the grammar has is highlighted.

use std::path::Path;

fn read(p: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(p)).unwrap_or_else(|e| panic!("{p}: {e}"))
}

/// The grammar without its `(* ... *)` comments.
fn ebnf_without_comments() -> String {
    let g = read("grammar/bpsc.ebnf");
    let mut out = String::new();
    let mut rest = g.as_str();
    while let Some(i) = rest.find("(*") {
        out.push_str(&rest[..i]);
        rest = rest[i..].find("*)").map(|j| &rest[i + j + 2..]).unwrap_or("");
    }
    out.push_str(rest);
    out
}

/// Every double-quoted terminal made of letters.
fn word_terminals(g: &str) -> Vec<String> {
    let mut v: Vec<String> = g
        .split('"')
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, s)| s.to_string())
        .filter(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphabetic()))
        .collect();
    v.sort();
    v.dedup();
    v
}

/// Every regex of the TextMate grammar.
fn regexes(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                if matches!(k.as_str(), "match" | "begin" | "end") {
                    if let Some(s) = x.as_str() {
                        out.push(s.to_string());
                    }
                }
                regexes(x, out);
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| regexes(x, out)),
        _ => {}
    }
}

/// Is `word` one of the alternatives of a group in `re` (`(a|word|b)`)?
fn alternative(re: &str, word: &str) -> bool {
    ["(", "|", "(?:"].iter().any(|pre| [")", "|"].iter().any(|post| re.contains(&format!("{pre}{word}{post}"))))
}

#[test]
fn every_keyword_and_unit_of_the_grammar_is_in_the_textmate_grammar() {
    let tm: serde_json::Value = serde_json::from_str(&read("editors/vscode/syntaxes/bps.tmLanguage.json")).expect("valid JSON");
    assert_eq!(tm["scopeName"], "source.bps");
    let mut res = Vec::new();
    regexes(&tm, &mut res);
    let terms = word_terminals(&ebnf_without_comments());
    assert!(terms.iter().any(|t| t == "campaign") && terms.iter().any(|t| t == "GiB"), "{terms:?}");
    let mut missing = Vec::new();
    for t in &terms {
        let found = match t.len() {
            // Duration units `s m h d` and the escapes `\n \t`: character classes.
            1 if t.chars().all(|c| c.is_ascii_lowercase()) => {
                res.iter().any(|r| r.split('[').skip(1).any(|class| class.split(']').next().is_some_and(|c| c.contains(t.as_str()))))
            }
            _ => res.iter().any(|r| alternative(r, t)),
        };
        if !found {
            missing.push(t.clone());
        }
    }
    assert!(missing.is_empty(), "grammar/bpsc.ebnf terminals missing from the TextMate grammar: {missing:?}");
}

#[test]
fn the_extension_declares_the_language_and_starts_the_server() {
    let pkg: serde_json::Value = serde_json::from_str(&read("editors/vscode/package.json")).expect("valid JSON");
    assert_eq!(pkg["contributes"]["languages"][0]["extensions"][0], ".bps");
    assert_eq!(pkg["contributes"]["grammars"][0]["path"], "./syntaxes/bps.tmLanguage.json");
    assert!(pkg["dependencies"]["vscode-languageclient"].is_string());
    assert!(pkg["devDependencies"]["@vscode/vsce"].is_string());
    let ext = read("editors/vscode/extension.js");
    assert!(ext.contains("args: [\"lsp\"]"), "the client starts `bpsc lsp`");
    let lc: serde_json::Value = serde_json::from_str(&read("editors/vscode/language-configuration.json")).expect("valid JSON");
    assert_eq!(lc["comments"]["lineComment"], "#");
}
