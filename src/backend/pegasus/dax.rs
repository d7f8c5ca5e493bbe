//! The same workflow as a DAX 3.6 XML file (`workflow.dax`) for sites still on Pegasus
//! 4.x, streamed through quick-xml's `Writer`, plus the File-format output replica catalog
//! (`outputs.rc`).  The input replica catalog (`<file>`) and the transformation catalog
//! (`<executable>`) are inline, as DAX 3 allows; the site catalog is `sites.xml`.
//!
//! DAX is legacy: Pegasus 5 still plans it (deprecated), Pegasus 6 removes it.

use std::borrow::Cow;
use std::io::{self, Write};

use crate::backend::Output;
use crate::diag::Diagnostic;

use quick_xml::events::attributes::Attribute;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::name::QName;
use quick_xml::Writer;

use super::model::{Model, PVal, Prof, Use};
use super::quote::{rc_text, xml_escape, xml_text, xml_text_escape, xml_url};
use super::yaml::hooks;

type W = Writer<Box<dyn Write>>;

/// An element start with attributes already escaped by [`xml_escape`]/[`xml_url`].
fn start<'a>(name: &'a str, attrs: &'a [(&'a str, Cow<'a, str>)]) -> BytesStart<'a> {
    let mut e = BytesStart::new(name);
    for (k, v) in attrs {
        e.push_attribute(Attribute { key: QName(k.as_bytes()), value: Cow::Borrowed(v.as_bytes()) });
    }
    e
}

/// Escape only when needed: ids and LFNs (most attributes) are safe tokens.
fn esc(s: &str) -> Cow<'_, str> {
    if s.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-./:=,+@% ".contains(&b)) {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(xml_escape(s))
    }
}

fn esc_text(s: &str) -> Cow<'_, str> {
    if s.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-./:=,+@% ".contains(&b)) {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(xml_text_escape(s))
    }
}

fn empty(w: &mut W, name: &str, attrs: &[(&str, Cow<str>)]) -> io::Result<()> {
    w.write_event(Event::Empty(start(name, attrs)))
}

/// `<name attrs>text</name>`, `text` escaped here.
fn text_elem(w: &mut W, name: &str, attrs: &[(&str, Cow<str>)], text: &str) -> io::Result<()> {
    w.write_event(Event::Start(start(name, attrs)))?;
    w.write_event(Event::Text(BytesText::from_escaped(esc_text(text))))?;
    w.write_event(Event::End(BytesEnd::new(name)))
}

fn a<'v>(k: &'static str, v: &'v str) -> (&'static str, Cow<'v, str>) {
    (k, esc(v))
}

/// DAX `invoke` `when` for a YAML hook `_on`.
fn when(on: &str) -> &'static str {
    match on {
        "error" => "on_error",
        "success" => "on_success",
        "start" => "start",
        _ => "at_end",
    }
}

pub fn write(m: &Model, out: &dyn Output) -> Result<(), Diagnostic> {
    write_dax(m, out.create_buffered("workflow.dax", 1 << 20)?)?;
    write_outputs_rc(m, out.create("outputs.rc")?)
}

fn write_dax(m: &Model, file: Box<dyn Write>) -> io::Result<()> {
    let ir = m.ir;
    let mut w: W = Writer::new_with_indent(file, b' ', 2);
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    // The campaign is in the metadata: a comment cannot hold `--`, which names may.
    w.write_event(Event::Comment(BytesText::from_escaped(format!(
        " DAX 3.6 written by bpsc {}; plan with ./plan.sh (Pegasus 4.x; Pegasus 6 drops DAX) ",
        env!("CARGO_PKG_VERSION")
    ))))?;
    w.write_event(Event::Start(start(
        "adag",
        &[
            ("xmlns", "http://pegasus.isi.edu/schema/DAX".into()),
            ("xmlns:xsi", "http://www.w3.org/2001/XMLSchema-instance".into()),
            ("xsi:schemaLocation", "http://pegasus.isi.edu/schema/DAX http://pegasus.isi.edu/schema/dax-3.6.xsd".into()),
            ("version", "3.6".into()),
            a("name", &m.name),
            ("index", "0".into()),
            ("count", "1".into()),
        ],
    )))?;
    // Section 1: metadata; 2: invokes.
    text_elem(&mut w, "metadata", &[("key", "campaign".into())], &ir.campaign)?;
    text_elem(&mut w, "metadata", &[("key", "order".into())], ir.order())?;
    text_elem(&mut w, "metadata", &[("key", "priority".into())], &ir.priority().to_string())?;
    text_elem(&mut w, "metadata", &[("key", "compute_jobs".into())], &ir.compute_jobs().to_string())?;
    for (on, cmd, expand) in hooks(m) {
        w.write_event(Event::Start(start("invoke", &[("when", when(on).into())])))?;
        let t = if expand { xml_text(&cmd, true, false) } else { xml_text_escape(&cmd) };
        w.write_event(Event::Text(BytesText::from_escaped(t)))?;
        w.write_event(Event::End(BytesEnd::new("invoke")))?;
    }
    // Section 3: files (the input replica catalog).
    for (lfn, url) in m.replicas() {
        w.write_event(Event::Start(start("file", &[a("name", &lfn)])))?;
        empty(&mut w, "pfn", &[("url", xml_url(&url).into()), ("site", "local".into())])?;
        w.write_event(Event::End(BytesEnd::new("file")))?;
    }
    // Section 4: executables (the transformation catalog), one per transformation and site:
    // the group's launcher with the profiles all its jobs share (DAX 3.6 CatalogType:
    // profiles, metadata, then each pfn with the profiles of the jobs at that site).
    for t in m.tx.iter().flatten() {
        for site in &t.sites {
            w.write_event(Event::Start(start(
                "executable",
                &[a("name", &t.name), ("installed", "true".into()), ("arch", "x86_64".into()), ("os", "linux".into())],
            )))?;
            for p in &t.profiles {
                profile(&mut w, p)?;
            }
            for (k, v) in t.metadata() {
                text_elem(&mut w, "metadata", &[("key", k.into())], &v)?;
            }
            let pfn = format!("file://${{BPSC_SUBMIT}}/{}", t.launcher());
            match t.site_profiles.get(site) {
                Some(ps) => {
                    w.write_event(Event::Start(start("pfn", &[("url", xml_url(&pfn).into()), a("site", site)])))?;
                    for p in ps {
                        profile(&mut w, p)?;
                    }
                    w.write_event(Event::End(BytesEnd::new("pfn")))?;
                }
                None => empty(&mut w, "pfn", &[("url", xml_url(&pfn).into()), a("site", site)])?,
            }
            w.write_event(Event::End(BytesEnd::new("executable")))?;
        }
    }
    // Sections 6 and 7, the bulk: one line per job and per child, written directly (no
    // indentation: a million jobs' worth of XML stays under 150 bytes a job).
    let mut inner = w.into_inner();
    inner.write_all(b"\n")?;
    let mut uses: Vec<Use> = Vec::new();
    let residuals: Vec<String> = m.residuals.iter().map(|r| r.iter().map(profile_xml).collect::<String>()).collect();
    let mut b = String::with_capacity(4096);
    for &j in &m.order {
        b.clear();
        b.push_str("<job id=\"");
        b.push_str(m.ids.get(j));
        b.push_str("\" name=\"");
        b.push_str(m.tx_name(j));
        b.push_str("\"><argument>");
        super::yaml::push_u32(&mut b, m.index(j));
        b.push_str("</argument>");
        // Pegasus 4.x pins sites with the `hints` namespace (`selector` came with 5.0).
        let r = m.residual_of[j as usize];
        if r != 0 && r != u32::MAX {
            b.push_str(&residuals[r as usize]);
        }
        m.uses(j, &mut uses);
        for u in uses.iter() {
            b.push_str("<uses name=\"");
            b.push_str(&esc(&u.lfn));
            if u.output {
                b.push_str("\" link=\"output\" transfer=\"");
                b.push_str(if u.stage_out { "true" } else { "false" });
                b.push_str("\" register=\"");
                b.push_str(if u.register { "true" } else { "false" });
                b.push('"');
            } else {
                b.push_str("\" link=\"input\" transfer=\"true\" register=\"false\"");
                if u.optional {
                    b.push_str(" optional=\"true\"");
                }
            }
            b.push_str("/>");
        }
        b.push_str("</job>\n");
        inner.write_all(b.as_bytes())?;
    }
    // Dependencies, grouped by child.
    let mut by_child = m.edges.clone();
    by_child.sort_unstable_by_key(|&(p, c)| (c, p));
    let mut i = 0;
    while i < by_child.len() {
        let c = by_child[i].1;
        b.clear();
        b.push_str("<child ref=\"");
        b.push_str(m.ids.get(c));
        b.push_str("\">");
        while i < by_child.len() && by_child[i].1 == c {
            b.push_str("<parent ref=\"");
            b.push_str(m.ids.get(by_child[i].0));
            b.push_str("\"/>");
            i += 1;
        }
        b.push_str("</child>\n");
        inner.write_all(b.as_bytes())?;
    }
    inner.write_all(b"</adag>\n")?;
    inner.flush()
}

/// A `<profile>` element as text: bpsc's plan-time variables stay for pegasus-plan, every
/// other `${` is escaped.
fn profile_xml(p: &Prof) -> String {
    let v = match &p.val {
        PVal::Plan(t) => xml_text(t, true, false),
        v => xml_text_escape(&v.text()),
    };
    format!("<profile namespace=\"{}\" key=\"{}\">{v}</profile>", p.ns, xml_escape(&p.key))
}

/// `<name attrs>text</name>` with `text` already escaped.
fn text_raw(w: &mut W, name: &str, attrs: &[(&str, Cow<str>)], escaped: &str) -> io::Result<()> {
    w.write_event(Event::Start(start(name, attrs)))?;
    w.write_event(Event::Text(BytesText::from_escaped(escaped)))?;
    w.write_event(Event::End(BytesEnd::new(name)))
}

/// One profile element: bpsc's plan-time variables stay for pegasus-plan, every other `${`
/// is escaped.
fn profile(w: &mut W, p: &Prof) -> io::Result<()> {
    let attrs = [("namespace", Cow::Borrowed(p.ns)), a("key", &p.key)];
    match &p.val {
        PVal::Plan(t) => text_raw(w, "profile", &attrs, &xml_text(t, true, false)),
        v => text_elem(w, "profile", &attrs, &v.text()),
    }
}

/// The output replica catalog in the File format Pegasus 4.x reads:
/// `"LFN" "URL" site="local"` per archived file.
fn write_outputs_rc(m: &Model, mut w: Box<dyn Write>) -> Result<(), Diagnostic> {
    w.write_all(b"# Output replica catalog (File format) for pegasus.dir.storage.mapper=Replica, written by bpsc.\n")?;
    let mut arch: Vec<(String, String)> = Vec::new();
    for &j in &m.order {
        m.archives(j, &mut arch);
        for (lfn, url) in &arch {
            match (rc_text(lfn), rc_text(url)) {
                (Some(l), Some(u)) => writeln!(w, "{l} {u} site=\"local\"")?,
                _ => {
                    return Err(Diagnostic::new(
                        "E801",
                        format!("pegasus-dax: the archive URL of {lfn} has a line break, which the File replica catalog cannot hold"),
                    ))
                }
            }
        }
    }
    w.flush()?;
    Ok(())
}
