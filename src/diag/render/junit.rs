//! JUnit XML, for CI systems that show test reports.
//!
//! ```xml
//! <?xml version="1.0" encoding="UTF-8"?>
//! <testsuites name="bpsc" tests="2" failures="1" errors="0">
//!   <testsuite name="bpsc check" tests="2" failures="1" errors="0" skipped="0">
//!     <testcase classname="bpsc.check" name="campaign.bps">
//!       <failure message="1 error" type="bpsc">campaign.bps:4:11: error[E201]: undefined name `aa`
//!   help: did you mean `a`?</failure>
//!       <system-out>campaign.bps:9:3: warning[W201]: unused definition `x`</system-out>
//!     </testcase>
//!     <testcase classname="bpsc.check" name="common.bps"/>
//!   </testsuite>
//! </testsuites>
//! ```
//!
//! * One test case per checked file, in the order given, then one per other file that a
//!   diagnostic's primary label points into (an included file that was not listed), then
//!   `(no file)` if some diagnostic has no primary label: every diagnostic appears.
//! * A case fails when it has errors, or warnings with `deny_warnings`: one `<failure>`
//!   whose `message` counts them and whose text lists them, one per line as
//!   `file:line:col: error[CODE]: message`, with `help:`/`note:` lines indented below.
//! * Warnings that do not fail the case, and notes, go to `<system-out>` in the same form.
//! * Text and attributes are escaped; characters XML 1.0 forbids (C0 controls other than
//!   tab, newline, carriage return; U+FFFE, U+FFFF) are written as `\u{1b}`; newlines,
//!   tabs and carriage returns in attributes as character references.
//! * There is no `time` attribute, so the output is deterministic.

use std::borrow::Cow;
use std::io;

use quick_xml::events::attributes::Attribute;
use quick_xml::events::{BytesDecl, BytesText, Event};
use quick_xml::name::QName;
use quick_xml::Writer;

use super::common::{count, header, resolve};
use crate::diag::{Diagnostic, Severity};
use crate::source::SourceMap;

/// Name of the test case of diagnostics that have no place in any file.
pub const NO_FILE: &str = "(no file)";

/// Whether XML 1.0 allows `c` in a document.
fn xml_allowed(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}')
}

/// XML-escape `s`: quick-xml's escaper for the markup characters (`&<>`, and `"'` in
/// attributes), then what XML would otherwise change on reading: a raw newline or tab in an
/// attribute would come back as a space, a raw carriage return anywhere as a newline.
/// Characters XML 1.0 cannot hold at all become `\u{HEX}` text.
fn escape(s: &str, attribute: bool) -> String {
    let allowed: String = s.chars().map(|c| if xml_allowed(c) { c.to_string() } else { format!("\\u{{{:x}}}", c as u32) }).collect();
    let marked = if attribute { quick_xml::escape::escape(&allowed) } else { quick_xml::escape::partial_escape(&allowed) };
    let mut out = String::with_capacity(marked.len());
    for c in marked.chars() {
        match c {
            '\n' if attribute => out.push_str("&#10;"),
            '\t' if attribute => out.push_str("&#9;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
    out
}

fn attr<'a>(key: &'a str, value: &str) -> Attribute<'a> {
    Attribute { key: QName(key.as_bytes()), value: Cow::Owned(escape(value, true).into_bytes()) }
}

fn text(s: &str) -> Event<'static> {
    Event::Text(BytesText::from_escaped(escape(s, false)))
}

/// `file:line:col: error[E201]: message` and indented help and note lines.
fn line(map: &SourceMap, d: &Diagnostic) -> String {
    let mut s = match &d.primary {
        Some(p) => format!("{}: {}: {}", resolve(map, p.loc).display(), header(d), d.message),
        None => format!("{}: {}", header(d), d.message),
    };
    for l in &d.secondary {
        let place = resolve(map, l.loc).display();
        if l.message.is_empty() {
            s.push_str(&format!("\n  {place}: related location"));
        } else {
            s.push_str(&format!("\n  {place}: {}", l.message));
        }
    }
    if let Some(h) = &d.help {
        s.push_str(&format!("\n  help: {h}"));
    }
    for n in &d.notes {
        s.push_str(&format!("\n  note: {n}"));
    }
    s
}

struct Case<'d> {
    name: String,
    diags: Vec<&'d Diagnostic>,
}

/// JUnit XML for a `bpsc check` of `files_checked` (names as shown to people, i.e.
/// [`SourceFile::name`](crate::source::SourceFile::name)).  See the
/// [module documentation](self).
pub fn render_junit<S: AsRef<str>>(map: &SourceMap, files_checked: &[S], diags: &[Diagnostic], deny_warnings: bool) -> String {
    let mut cases: Vec<Case> = Vec::new();
    for f in files_checked {
        if !cases.iter().any(|c| c.name == f.as_ref()) {
            cases.push(Case { name: f.as_ref().to_string(), diags: Vec::new() });
        }
    }
    let mut extra: Vec<Case> = Vec::new();
    let mut no_file: Vec<&Diagnostic> = Vec::new();
    for d in diags {
        let Some(p) = &d.primary else {
            no_file.push(d);
            continue;
        };
        let name = resolve(map, p.loc).name;
        if let Some(c) = cases.iter_mut().find(|c| c.name == name) {
            c.diags.push(d);
        } else if let Some(c) = extra.iter_mut().find(|c| c.name == name) {
            c.diags.push(d);
        } else {
            extra.push(Case { name, diags: vec![d] });
        }
    }
    cases.extend(extra);
    if !no_file.is_empty() {
        cases.push(Case { name: NO_FILE.to_string(), diags: no_file });
    }

    let fails = |d: &Diagnostic| d.severity == Severity::Error || (deny_warnings && d.severity == Severity::Warning);
    let failures = cases.iter().filter(|c| c.diags.iter().any(|d| fails(d))).count();
    let tests = cases.len().to_string();
    let failures = failures.to_string();

    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    let result: io::Result<()> = (|| {
        w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
        w.create_element("testsuites")
            .with_attributes([attr("name", "bpsc"), attr("tests", &tests), attr("failures", &failures), attr("errors", "0")])
            .write_inner_content(|w| {
                w.create_element("testsuite")
                    .with_attributes([
                        attr("name", "bpsc check"),
                        attr("tests", &tests),
                        attr("failures", &failures),
                        attr("errors", "0"),
                        attr("skipped", "0"),
                    ])
                    .write_inner_content(|w| {
                        for c in &cases {
                            write_case(w, map, c, &fails)?;
                        }
                        Ok(())
                    })?;
                Ok(())
            })?;
        Ok(())
    })();
    result.expect("writing to a Vec cannot fail");
    let mut s = String::from_utf8(w.into_inner()).expect("only UTF-8 is written");
    s.push('\n');
    s
}

fn write_case(w: &mut Writer<Vec<u8>>, map: &SourceMap, c: &Case, fails: &dyn Fn(&Diagnostic) -> bool) -> io::Result<()> {
    let element = w.create_element("testcase").with_attributes([attr("classname", "bpsc.check"), attr("name", &c.name)]);
    if c.diags.is_empty() {
        element.write_empty()?;
        return Ok(());
    }
    let (failing, other): (Vec<&Diagnostic>, Vec<&Diagnostic>) = c.diags.iter().partition(|d| fails(d));
    element.write_inner_content(|w| {
        if !failing.is_empty() {
            let errors = failing.iter().filter(|d| d.severity == Severity::Error).count();
            let warnings = failing.len() - errors;
            let message = match (errors, warnings) {
                (e, 0) => count(e, "error"),
                (0, w) => count(w, "warning"),
                (e, w) => format!("{}, {}", count(e, "error"), count(w, "warning")),
            };
            let body: Vec<String> = failing.iter().map(|d| line(map, d)).collect();
            w.create_element("failure")
                .with_attributes([attr("message", &message), attr("type", "bpsc")])
                .write_inner_content(|w| w.write_event(text(&body.join("\n"))))?;
        }
        if !other.is_empty() {
            let body: Vec<String> = other.iter().map(|d| line(map, d)).collect();
            w.create_element("system-out").write_inner_content(|w| w.write_event(text(&body.join("\n"))))?;
        }
        Ok(())
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use quick_xml::events::Event;
    use quick_xml::Reader;

    use super::super::common::fixture;
    use super::*;
    use crate::source::Span;

    /// A parsed element: name, attributes (unescaped), text (unescaped), children.
    #[derive(Debug, Default)]
    struct El {
        name: String,
        attrs: Vec<(String, String)>,
        text: String,
        children: Vec<El>,
    }

    impl El {
        fn attr(&self, k: &str) -> &str {
            &self.attrs.iter().find(|(a, _)| a == k).unwrap_or_else(|| panic!("no {k} on {}", self.name)).1
        }
        fn child(&self, name: &str) -> Option<&El> {
            self.children.iter().find(|c| c.name == name)
        }
    }

    fn element(e: &quick_xml::events::BytesStart) -> El {
        El {
            name: String::from_utf8(e.name().as_ref().to_vec()).unwrap(),
            attrs: e
                .attributes()
                .map(|a| {
                    let a = a.unwrap();
                    let v = a.unescape_value().unwrap().into_owned();
                    (String::from_utf8(a.key.as_ref().to_vec()).unwrap(), v)
                })
                .collect(),
            ..El::default()
        }
    }

    /// Parse with quick-xml's checks on (end names, attributes); panics on any error.
    fn parse(xml: &str) -> El {
        let mut r = Reader::from_str(xml);
        r.config_mut().check_end_names = true;
        let mut stack: Vec<El> = vec![El::default()];
        loop {
            match r.read_event().unwrap_or_else(|e| panic!("not well-formed: {e}\n{xml}")) {
                Event::Start(e) => stack.push(element(&e)),
                Event::Empty(e) => {
                    let el = element(&e);
                    stack.last_mut().unwrap().children.push(el);
                }
                Event::End(_) => {
                    let el = stack.pop().unwrap();
                    stack.last_mut().unwrap().children.push(el);
                }
                Event::Text(t) => {
                    let t = t.decode().unwrap();
                    let t = quick_xml::escape::unescape(&t).unwrap().into_owned();
                    stack.last_mut().unwrap().text.push_str(&t);
                }
                Event::GeneralRef(g) => {
                    let name = g.decode().unwrap();
                    let s = match &*name {
                        "amp" => "&".to_string(),
                        "lt" => "<".to_string(),
                        "gt" => ">".to_string(),
                        "quot" => "\"".to_string(),
                        "apos" => "'".to_string(),
                        n => {
                            let c = g.resolve_char_ref().unwrap().unwrap_or_else(|| panic!("unknown entity {n}"));
                            c.to_string()
                        }
                    };
                    stack.last_mut().unwrap().text.push_str(&s);
                }
                Event::Eof => break,
                Event::Decl(_) => {}
                e => panic!("unexpected {e:?}"),
            }
        }
        assert_eq!(stack.len(), 1, "unclosed elements");
        let mut root = stack.pop().unwrap();
        assert_eq!(root.children.len(), 1);
        root.children.pop().unwrap()
    }

    fn assert_xml_chars(xml: &str) {
        for c in xml.chars() {
            assert!(xml_allowed(c), "{:?} is not allowed in XML 1.0", c);
        }
    }

    #[test]
    fn structure_counts_and_text() {
        let (map, _, _) = fixture::map();
        let xml = render_junit(&map, &["a.bps", "sub dir/b \u{e9}.bps", "c.bps"], &fixture::diags(), false);
        assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites"));
        assert_xml_chars(&xml);
        let root = parse(&xml);
        assert_eq!(root.name, "testsuites");
        assert_eq!((root.attr("tests"), root.attr("failures"), root.attr("errors")), ("4", "2", "0"));
        let suite = root.child("testsuite").unwrap();
        assert_eq!(suite.attr("name"), "bpsc check");
        assert_eq!((suite.attr("tests"), suite.attr("failures"), suite.attr("errors")), ("4", "2", "0"));
        let names: Vec<&str> = suite.children.iter().map(|c| c.attr("name")).collect();
        assert_eq!(names, ["a.bps", "sub dir/b \u{e9}.bps", "c.bps", NO_FILE]);
        assert!(suite.children.iter().all(|c| c.name == "testcase" && c.attr("classname") == "bpsc.check"));

        let a = &suite.children[0];
        let f = a.child("failure").unwrap();
        assert_eq!((f.attr("message"), f.attr("type")), ("1 error", "bpsc"));
        assert_eq!(
            f.text,
            "a.bps:2:12: error[E203]: unknown key \"memroy\" <in> & 'defaults'\nsecond line\\u{1}\\u{1b}[31m\n  \
             sub dir/b \u{e9}.bps:1:8: step defined here\n  help: did you mean `memory`?\n  \
             note: keys are \"case\" sensitive\n  note: see <bpsc explain E203>"
        );
        assert!(a.child("system-out").is_none());

        let b = &suite.children[1];
        assert!(b.child("failure").is_none(), "warnings do not fail by default");
        assert_eq!(
            b.child("system-out").unwrap().text,
            "sub dir/b \u{e9}.bps:1:8: warning[W201]: unused definition `calibrate`\n  sub dir/b \u{e9}.bps:2:1: header"
        );
        assert!(suite.children[2].children.is_empty(), "a clean file passes");
        let nf = suite.children[3].child("failure").unwrap();
        assert_eq!(nf.text, "error[E401]: cannot read file `nope.bps`");
    }

    #[test]
    fn deny_warnings_makes_warnings_failures() {
        let (map, _, b) = fixture::map();
        let mut ds = fixture::diags();
        ds.push(Diagnostic::new("E100", "bad").at(b, Span::new(0, 1), ""));
        let xml = render_junit(&map, &["a.bps"], &ds, true);
        let root = parse(&xml);
        let suite = root.child("testsuite").unwrap();
        let names: Vec<&str> = suite.children.iter().map(|c| c.attr("name")).collect();
        assert_eq!(names, ["a.bps", "sub dir/b \u{e9}.bps", NO_FILE], "unlisted files get their own case");
        assert_eq!(suite.attr("failures"), "3");
        let f = suite.children[1].child("failure").unwrap();
        assert_eq!(f.attr("message"), "1 error, 1 warning");
        assert!(f.text.starts_with("sub dir/b \u{e9}.bps:1:8: warning[W201]"), "{}", f.text);
        assert!(f.text.contains("\nsub dir/b \u{e9}.bps:1:1: error[E100]: bad"), "{}", f.text);
        assert!(suite.children[1].child("system-out").is_none());
    }

    #[test]
    fn any_text_is_escaped() {
        let mut map = SourceMap::new();
        let nasty = "q\"uo't <&> ]]> \r\n\ttab \u{0}\u{8}\u{b}\u{c}\u{1b}\u{7f}\u{85}\u{FFFE}\u{FFFF} \u{1F600}";
        let f = map.add(nasty.into(), std::sync::Arc::from("bps 1\n"));
        let name = map.get(f).name.clone();
        let d = Diagnostic::new("E100", nasty).at(f, Span::new(0, 3), nasty).help(nasty).note(nasty);
        let xml = render_junit(&map, &[name.as_str()], &[d], false);
        assert_xml_chars(&xml);
        let root = parse(&xml);
        let case = &root.child("testsuite").unwrap().children[0];
        let clean = "q\"uo't <&> ]]> \r\n\ttab \\u{0}\\u{8}\\u{b}\\u{c}\\u{1b}\u{7f}\u{85}\\u{fffe}\\u{ffff} \u{1F600}";
        assert_eq!(case.attr("name"), clean, "attributes keep quotes, newlines, tabs and CR");
        let text = &case.child("failure").unwrap().text;
        assert!(text.starts_with(&format!("{clean}:1:1: error[E100]: {clean}\n")), "{text:?}");
        assert!(text.ends_with(&format!("\n  note: {clean}")), "{text:?}");
    }

    #[test]
    fn nothing_checked() {
        let xml = render_junit::<&str>(&SourceMap::new(), &[], &[], false);
        let root = parse(&xml);
        assert_eq!(root.attr("tests"), "0");
        assert!(root.child("testsuite").unwrap().children.is_empty());
    }
}
