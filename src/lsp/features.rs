//! What the language server answers: diagnostics, hover, definition, references,
//! completion, symbols, formatting and code actions.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use lsp_types::*;

use super::conv;
use super::index::{Kind, Sym};
use super::{Analysis, Doc};
use crate::check::keys::{self, Scope, Ty};
use crate::check::model::{self, Domain, RelSource};
use crate::check::resolve;
use crate::diag::render::lsp::{lsp_uri, to_lsp};
use crate::source::{FileId, Loc, Span};
use crate::syntax::ast::{Module, Stmt, StmtKind};
use crate::syntax::lookup;

// ---------------------------------------------------------------- diagnostics

fn lsp_diag(map: &crate::source::SourceMap, d: &crate::diag::Diagnostic) -> Option<(String, Diagnostic)> {
    let (uri, ld) = to_lsp(map, d)?;
    let v = serde_json::to_value(ld).ok()?;
    Some((uri, serde_json::from_value(v).ok()?))
}

/// Diagnostics of one analysis: for its root (under the client's URI) and for the files it
/// reads that are not open (each open file publishes its own).  Also returns the URIs of
/// those other files.
pub fn publish(a: &Analysis, root_uri: &Uri, _root: &Path, open: &BTreeSet<PathBuf>) -> (Vec<PublishDiagnosticsParams>, BTreeSet<String>) {
    let map = &a.checked.program.map;
    let mut per: BTreeMap<String, Vec<Diagnostic>> = BTreeMap::new();
    for d in &a.checked.diags.items {
        if let Some((u, ld)) = lsp_diag(map, d) {
            per.entry(u).or_default().push(ld);
        }
    }
    let mut out = Vec::new();
    let mut others = BTreeSet::new();
    for f in map.files() {
        let Some(u) = lsp_uri(map, f.id) else { continue };
        let diagnostics = per.remove(&u).unwrap_or_default();
        if f.id == a.root {
            out.push(PublishDiagnosticsParams { uri: root_uri.clone(), diagnostics, version: None });
        } else if !open.contains(&crate::fs::normalize(&f.path)) && f.path.is_absolute() {
            if let Ok(uri) = u.parse::<Uri>() {
                others.insert(u);
                out.push(PublishDiagnosticsParams { uri, diagnostics, version: None });
            }
        }
    }
    (out, others)
}

// ---------------------------------------------------------------- helpers

fn md(value: String) -> Hover {
    Hover { contents: HoverContents::Markup(MarkupContent { kind: MarkupKind::Markdown, value }), range: None }
}

/// `file.bps:12` for a location.
fn place(a: &Analysis, loc: Option<Loc>) -> String {
    let Some(l) = loc else { return String::new() };
    let Some(f) = a.checked.program.map.try_get(l.file) else { return String::new() };
    let name = f.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| f.name.clone());
    format!("{name}:{}", f.position(l.span.lo).line)
}

fn src_text(a: &Analysis, file: FileId, span: Span) -> String {
    a.checked.program.map.try_get(file).map(|f| f.slice(span).to_string()).unwrap_or_default()
}

/// Where the statements enclosing an offset put it.
#[derive(Default, Debug)]
struct Where<'a> {
    scope: Option<Scope>,
    pipeline: Option<&'a str>,
    step: Option<&'a str>,
    campaign: Option<&'a str>,
    site: Option<&'a str>,
}

fn where_in<'a>(blocks: &[&'a Stmt]) -> Where<'a> {
    let mut w = Where { scope: Some(Scope::Top), ..Default::default() };
    for s in blocks {
        w.scope = Some(match &s.kind {
            StmtKind::Defaults { .. } => Scope::Defaults,
            StmtKind::Site { name, .. } => {
                w.site = Some(&name.name);
                Scope::Site
            }
            StmtKind::Pipeline { name, .. } => {
                w.pipeline = Some(&name.name);
                Scope::Pipeline
            }
            StmtKind::Step { name, .. } => {
                w.step = Some(&name.name.name);
                if let Some(p) = &name.pipeline {
                    w.pipeline = Some(&p.name);
                }
                if w.campaign.is_some() {
                    Scope::StepOverride
                } else {
                    Scope::Step
                }
            }
            StmtKind::Campaign { name, .. } => {
                w.campaign = Some(&name.name);
                Scope::Campaign
            }
            StmtKind::Dataset { .. } => Scope::Dataset,
            StmtKind::Config { .. } => Scope::Config,
            StmtKind::Cluster { .. } => Scope::Cluster,
            StmtKind::Notify { .. } => Scope::Notify,
            StmtKind::Env { .. } => Scope::Env,
            StmtKind::Final { .. } => Scope::Final,
            _ => continue,
        });
    }
    w
}

/// Steps (with their pipeline and campaign) a setting written at `w` can affect.
fn affected<'m>(m: &'m model::Model, w: &Where<'_>) -> Vec<(Option<&'m model::Campaign>, &'m model::Pipeline, &'m model::Step)> {
    let mut out = Vec::new();
    let camps: Vec<Option<&model::Campaign>> = if m.campaigns.is_empty() { vec![None] } else { m.campaigns.iter().map(Some).collect() };
    for c in camps {
        if w.campaign.is_some_and(|n| c.is_none_or(|c| c.name != n)) {
            continue;
        }
        let pipes: Vec<&model::Pipeline> = match c {
            Some(c) => c.uses.iter().filter_map(|u| m.pipeline(&u.pipeline.name)).collect(),
            None => m.pipelines.iter().collect(),
        };
        for p in pipes {
            if w.pipeline.is_some_and(|n| n != p.name) {
                continue;
            }
            for s in &p.steps {
                if w.step.is_some_and(|n| n != s.name) {
                    continue;
                }
                out.push((c, p, s));
            }
        }
    }
    // A step defined in a pipeline that no campaign uses: resolve it without a campaign.
    if out.is_empty() && w.step.is_some() && w.campaign.is_none() {
        if let Some(p) = w.pipeline.and_then(|n| m.pipeline(n)) {
            for s in p.steps.iter().filter(|s| Some(s.name.as_str()) == w.step) {
                out.push((None, p, s));
            }
        }
    }
    out
}

/// The override chain of a resolved value; for a merged list (`pass_env`), every scope's
/// contribution instead.
fn chain_md(a: &Analysis, r: &resolve::Resolved, merged: &[(model::Value, resolve::Origin)]) -> String {
    let mut s = String::new();
    if !merged.is_empty() {
        let _ = writeln!(s, "merged from every scope that sets it:\n");
        for (k, (v, o)) in merged.iter().rev().enumerate() {
            let _ = writeln!(s, "{}. `{v}` from {} {}", k + 1, o.label, place(a, o.loc));
        }
        return s;
    }
    let _ = writeln!(s, "1. `{}` from {} {} (wins)", r.value, r.origin.label, place(a, r.origin.loc));
    for (k, (v, o)) in r.overridden.iter().rev().enumerate() {
        let _ = writeln!(s, "{}. `{v}` from {} {} (overridden)", k + 2, o.label, place(a, o.loc));
    }
    s
}

fn key_doc(k: &keys::KeyInfo) -> String {
    let mut s = format!("**{}**: {}\n\nType: {}", k.name, k.doc, k.ty.describe());
    if let Ty::Enum(vals) = k.ty {
        let _ = write!(s, " (`{}`)", vals.join("`, `"));
    }
    if let Some(b) = resolve::builtin(k.name) {
        let _ = write!(s, "; built-in default `{b}`");
    }
    let scopes: Vec<&str> = k.scopes.iter().map(|s| s.describe()).collect();
    let _ = write!(s, "\n\nAllowed in {}.", scopes.join(", "));
    s
}

// ---------------------------------------------------------------- hover

pub fn hover(doc: &Doc, pos: Position) -> Option<Hover> {
    let a = doc.analysis.as_ref()?;
    let file = a.file();
    let off = conv::offset(file, pos);
    if let Some(sym) = a.index.at(a.root, off) {
        let mut h = hover_sym(a, sym)?;
        h.range = Some(conv::range(file, sym.span));
        return Some(h);
    }
    let module = a.module()?;
    let chain = lookup::enclosing(&module.stmts, off);
    let (last, blocks) = chain.split_last()?;
    if let StmtKind::Attr { key, .. } = &last.kind {
        if key.span().contains(off) {
            let w = where_in(blocks);
            let mut h = md(hover_key(a, key.name(), &w)?);
            h.range = Some(conv::range(file, key.span()));
            return Some(h);
        }
    }
    None
}

fn hover_key(a: &Analysis, name: &str, w: &Where<'_>) -> Option<String> {
    if w.scope == Some(Scope::Env) {
        return Some(format!("environment variable `{name}` of the jobs"));
    }
    if w.scope == Some(Scope::Config) {
        return Some(format!("config parameter `{name}`: passed to the pipeline, and `{{config.{name}}}` in `run`"));
    }
    let k = keys::key(name)?;
    let mut s = key_doc(k);
    if !k.exec {
        return Some(s);
    }
    if w.scope == Some(Scope::Site) && k.name == "max_memory" {
        // In a site, `max_memory` is the site's limit, not a value in the steps' chain.
        let _ = write!(s, "\n\n---\nIn a site: the site's limit, checked after resolution; a step's own `max_memory` must stay under it.");
        return Some(s);
    }
    if matches!(w.scope, Some(Scope::Cluster | Scope::Final)) {
        // Not a value in any step's chain (a cluster's own throttle; not allowed in a final job).
        return Some(s);
    }
    let m = &a.checked.model;
    let mut steps = affected(m, w);
    if let Some(site) = w.site {
        steps.retain(|(c, p, st)| resolve::resolve_step(m, *c, p, st, &a.checked.sets).site.as_deref() == Some(site));
    }
    if steps.is_empty() {
        return Some(s);
    }
    let single = steps.len() == 1;
    let _ = write!(s, "\n\n---\n");
    for (c, p, st) in steps.iter().take(if single { 1 } else { 25 }) {
        let rs = resolve::resolve_step(m, *c, p, st, &a.checked.sets);
        let camp = c.map(|c| format!(" in campaign `{}`", c.name)).unwrap_or_default();
        let merged = rs.merged.get(keys::canonical(k.name)).map(|v| v.as_slice()).unwrap_or(&[]);
        match rs.resolved(k.name) {
            Some(r) if single => {
                let shown = keys::canonical(k.name);
                let _ = write!(s, "**{shown} = {}** for step `{}.{}`{camp}\n\n{}", r.value, p.name, st.name, chain_md(a, r, merged));
            }
            Some(r) => {
                let _ = writeln!(s, "- `{}.{}`{camp}: `{}` from {} {}", p.name, st.name, r.value, r.origin.label, place(a, r.origin.loc));
            }
            None => {
                let _ = writeln!(s, "- `{}.{}`{camp}: not set", p.name, st.name);
            }
        }
    }
    if steps.len() > 25 {
        let _ = writeln!(s, "- ... and {} more steps", steps.len() - 25);
    }
    Some(s)
}

fn hover_sym(a: &Analysis, sym: &Sym) -> Option<Hover> {
    let defs = a.index.defs_of(sym);
    let Some(d) = defs.first() else {
        return Some(md(format!("undefined {} `{}`", sym.kind.word(), sym.name)));
    };
    let m = &a.checked.model;
    let name = d.name.as_str();
    let mut s = String::new();
    match d.kind {
        Kind::Dimension => {
            let _ = write!(s, "**dimension** `{name}`");
            match dim_values(a, name) {
                Some(v) => {
                    let _ = write!(s, ": {} value{} ({})\n\n{}", v.count, if v.count == 1 { "" } else { "s" }, v.from, v.shown);
                }
                None => {
                    let _ = write!(s, "\n\nno values known (no domain, and no relation with a table names it)");
                }
            }
        }
        Kind::Dataset => {
            let ds = m.dataset(name)?;
            let dims: Vec<&str> = ds.dims.iter().map(|d| d.name.as_str()).collect();
            let _ = writeln!(s, "**dataset** `{name}({})`\n", dims.join(", "));
            let _ = writeln!(
                s,
                "- data ID: {}",
                if dims.is_empty() { "none (one per campaign)".to_string() } else { format!("({})", dims.join(", ")) }
            );
            if let Some(t) = &ds.source {
                let _ = writeln!(s, "- source: `{}`", t.text);
            }
            if let Some((st, _)) = ds.stage {
                let _ = writeln!(s, "- stage: {}", serde_json::to_value(st).ok()?.as_str().unwrap_or(""));
            }
            if let Some((p, _)) = ds.persist {
                let _ = writeln!(s, "- persist: {}", serde_json::to_value(p).ok()?.as_str().unwrap_or(""));
            }
            if let Some(t) = &ds.archive {
                let _ = writeln!(s, "- archive: `{}`", t.text);
            }
            if let Some(v) = ds.verify {
                let _ = writeln!(s, "- verify: {v}");
            }
            let by = |out: bool| -> Vec<String> {
                m.pipelines
                    .iter()
                    .flat_map(|p| {
                        p.steps
                            .iter()
                            .filter(move |st| {
                                if out {
                                    st.outputs.iter().any(|o| o.name == name)
                                } else {
                                    st.inputs.iter().any(|i| i.dataset.name == name)
                                }
                            })
                            .map(move |st| format!("{}.{}", p.name, st.name))
                    })
                    .collect()
            };
            let (prod, cons) = (by(true), by(false));
            if !prod.is_empty() {
                let _ = writeln!(s, "- written by: {}", prod.join(", "));
            } else if ds.source.is_some() {
                let _ = writeln!(s, "- an external input");
            }
            if !cons.is_empty() {
                let _ = writeln!(s, "- read by: {}", cons.join(", "));
            }
        }
        Kind::Step => {
            let p = d
                .scope
                .as_deref()
                .and_then(|p| m.pipeline(p))
                .or_else(|| m.pipelines.iter().find(|p| p.steps.iter().any(|s| s.name == name)))?;
            let st = p.steps.iter().find(|s| s.name == name)?;
            let over: Vec<&str> = st.over.iter().map(|d| d.name.as_str()).collect();
            let _ = write!(s, "**step** `{}.{}` over ({})", p.name, name, over.join(", "));
            if !st.after.is_empty() {
                let after: Vec<String> = st.after.iter().map(|d| format!("{}{}", d.step.name, if d.all { " all" } else { "" })).collect();
                let _ = write!(s, " after {}", after.join(", "));
            }
            s.push_str("\n\n");
            if !st.inputs.is_empty() {
                let i: Vec<String> = st
                    .inputs
                    .iter()
                    .map(|i| if i.optional { format!("optional({})", i.dataset.name) } else { i.dataset.name.clone() })
                    .collect();
                let _ = writeln!(s, "- inputs: {}", i.join(", "));
            }
            if !st.outputs.is_empty() {
                let o: Vec<&str> = st.outputs.iter().map(|o| o.name.as_str()).collect();
                let _ = writeln!(s, "- outputs: {}", o.join(", "));
            }
            let w = Where { pipeline: Some(&p.name), step: Some(name), ..Default::default() };
            if let Some((c, p, st)) = affected(m, &w).into_iter().next() {
                let rs = resolve::resolve_step(m, c, p, st, &a.checked.sets);
                let camp = c.map(|c| format!(" (campaign `{}`)", c.name)).unwrap_or_default();
                let _ =
                    writeln!(s, "\nResolved settings{camp}{}:\n", rs.site.as_ref().map(|x| format!(", site `{x}`")).unwrap_or_default());
                for (k, r) in &rs.values {
                    let _ = writeln!(s, "- {k} = `{}` ({})", r.value, r.origin.label);
                }
            }
        }
        Kind::Site => {
            let site = m.site(name)?;
            let _ = writeln!(s, "**site** `{name}`\n");
            if let Some((b, _)) = &site.backend {
                let _ = writeln!(s, "- backend: {b}");
            }
            if let Some(x) = site.shared_fs {
                let _ = writeln!(s, "- shared_fs: {x}");
            }
            if let Some((v, _)) = site.max_memory {
                let _ = writeln!(s, "- max_memory: {}", model::fmt_size(v));
            }
            if let Some((v, _)) = site.max_cpus {
                let _ = writeln!(s, "- max_cpus: {v}");
            }
            if let Some((v, _)) = site.max_walltime {
                let _ = writeln!(s, "- max_walltime: {}", model::fmt_duration(v));
            }
            for st in &site.layer.settings {
                let _ = writeln!(s, "- {} = {}", st.key, st.value);
            }
        }
        Kind::Pipeline => {
            let p = m.pipeline(name)?;
            let steps: Vec<&str> = p.steps.iter().map(|s| s.name.as_str()).collect();
            let configs: Vec<&str> = p.configs.iter().map(|c| c.name.as_str()).collect();
            let _ = write!(
                s,
                "**pipeline** `{name}`: {} step{}\n\n- steps: {}\n- configs: {}",
                steps.len(),
                if steps.len() == 1 { "" } else { "s" },
                steps.join(", "),
                configs.join(", ")
            );
            let users: Vec<&str> =
                m.campaigns.iter().filter(|c| c.uses.iter().any(|u| u.pipeline.name == name)).map(|c| c.name.as_str()).collect();
            if !users.is_empty() {
                let _ = write!(s, "\n- used by campaign {}", users.join(", "));
            }
        }
        Kind::Config => {
            let p = d.scope.as_deref().and_then(|p| m.pipeline(p))?;
            let mut c = p.configs.iter().find(|c| c.name == name);
            let _ = writeln!(s, "**config** `{}` of pipeline `{}`\n", name, p.name);
            let mut seen = BTreeSet::new();
            let mut depth = 0;
            while let Some(cfg) = c {
                for (k, v, _) in &cfg.params {
                    if seen.insert(k.clone()) {
                        let from = if cfg.name == name { String::new() } else { format!(" (from {})", cfg.name) };
                        let _ = writeln!(s, "- `{k}` = {v}{from}");
                    }
                }
                depth += 1;
                c = cfg.extends.as_ref().and_then(|e| p.configs.iter().find(|x| x.name == e.name)).filter(|_| depth < 32);
            }
        }
        Kind::Relation => {
            let r = m.relation(name)?;
            let dims: Vec<&str> = r.dims.iter().map(|d| d.name.as_str()).collect();
            let _ = write!(s, "**relation** `{name}({})`", dims.join(", "));
            match &r.source {
                RelSource::Table { path, .. } => {
                    let rows = a.checked.tables.get(path).map(|t| t.rows);
                    let _ = write!(
                        s,
                        "\n\nrows from `{}`{}",
                        path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default(),
                        rows.map(|r| format!(": {r} rows")).unwrap_or_default()
                    );
                }
                RelSource::Expr { expr, file } => {
                    let _ = write!(s, " = `{}`", src_text(a, *file, expr.span));
                }
            }
        }
        Kind::Coverage => {
            let c = m.coverage(name)?;
            let _ = write!(s, "**coverage** `{name}` = `{}`", src_text(a, c.file, c.expr.span));
        }
        Kind::Campaign => {
            let c = m.campaigns.iter().find(|c| c.name == name)?;
            let uses: Vec<String> = c
                .uses
                .iter()
                .map(|u| format!("{}{}", u.pipeline.name, u.config.as_ref().map(|c| format!(" with {}", c.name)).unwrap_or_default()))
                .collect();
            let _ = write!(s, "**campaign** `{name}`\n\n- uses: {}", uses.join(", "));
            if let Some((e, f, _)) = &c.coverage {
                let _ = write!(s, "\n- coverage: `{}`", src_text(a, *f, e.span));
            }
        }
        Kind::Cluster => {
            let _ = write!(s, "**cluster** `{name}`: steps run together in one job");
            if let Some(cl) = m.campaigns.iter().flat_map(|c| c.clusters.iter()).find(|c| c.name == name) {
                let list = |v: &[model::Named]| v.iter().map(|d| d.name.as_str()).collect::<Vec<_>>().join(", ");
                let _ = write!(s, "\n\n- steps: {}", list(&cl.steps));
                if !cl.by.is_empty() {
                    let _ = write!(s, "\n- by: {}", list(&cl.by));
                }
                if let Some((n, _)) = cl.size {
                    let _ = write!(s, "\n- size: {n} quanta per job");
                }
                if !cl.split_by.is_empty() {
                    let q = cl.max_quanta.map(|(n, _)| n.to_string()).unwrap_or_else(|| "?".into());
                    let _ = write!(s, "\n- split by {} into jobs of at most {q} quanta", list(&cl.split_by));
                }
                if let Some((n, _)) = cl.max_running {
                    let _ = write!(s, "\n- at most {n} jobs running at once");
                }
            }
        }
        Kind::Subset => {
            let p = d.scope.as_deref().and_then(|p| m.pipeline(p))?;
            let sub = p.subset(name)?;
            let steps: Vec<&str> = sub.steps.iter().map(|s| s.name.as_str()).collect();
            let _ =
                write!(s, "**subset** `{name}` of pipeline `{}`: {}\n\n`--steps {name}` compiles these steps", p.name, steps.join(", "));
        }
        Kind::Final => {
            let f = m.campaigns.iter().filter_map(|c| c.final_job.as_ref().map(|f| (c, f))).find(|(_, f)| f.name == name);
            let _ = write!(s, "**final job** `{name}`: runs after every other job");
            if let Some((c, f)) = f {
                let when = serde_json::to_value(f.when).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
                let _ = write!(s, " of campaign `{}`, when = {when}", c.name);
                if let Some(r) = &f.run {
                    let _ = write!(s, "\n\n- run: `{}`", r.text);
                }
            }
        }
        Kind::CoverageName | Kind::StepOrPipeline => return None,
    }
    Some(md(s))
}

struct DimValues {
    count: usize,
    from: String,
    shown: String,
}

fn show_values(v: &[String], total: usize) -> String {
    const SHOW: usize = 12;
    let mut s: Vec<String> = v.iter().take(SHOW).map(|x| format!("`{x}`")).collect();
    if total > SHOW {
        s.push(format!("... ({} more)", total - SHOW));
    }
    s.join(", ")
}

/// Distinct values of one column of a loaded table (numeric order when all are integers).
fn column_values(a: &Analysis, path: &Path, column: &str) -> Option<Vec<String>> {
    let t = a.checked.tables.get(path)?;
    let col = t.header.iter().position(|h| h == column)?;
    let text = a.checked.program.map.try_get(t.file)?.text.clone();
    let mut rdr = csv::ReaderBuilder::new().has_headers(true).flexible(true).from_reader(text.as_bytes());
    let mut set = BTreeSet::new();
    for rec in rdr.records().take(2_000_000) {
        let Ok(rec) = rec else { continue };
        if let Some(f) = rec.get(col) {
            let f = f.trim();
            if !set.contains(f) {
                set.insert(f.to_string());
            }
        }
    }
    let mut v: Vec<String> = set.into_iter().collect();
    if v.iter().all(|x| x.parse::<i64>().is_ok()) {
        v.sort_by_key(|x| x.parse::<i64>().unwrap_or(0));
    }
    Some(v)
}

fn dim_values(a: &Analysis, name: &str) -> Option<DimValues> {
    let m = &a.checked.model;
    let d = m.dim(name);
    match d.and_then(|d| d.domain.as_ref()) {
        Some(Domain::Range { lo, hi, inclusive }) => {
            let end = if *inclusive { *hi } else { hi - 1 };
            let count = if end < *lo { 0 } else { (end - lo + 1) as usize };
            let shown = if count == 0 { "empty".to_string() } else { format!("`{lo}` to `{end}`") };
            Some(DimValues { count, from: format!("range {lo}{}{hi}", if *inclusive { "..=" } else { ".." }), shown })
        }
        Some(Domain::List(items)) => {
            let v: Vec<String> = items
                .iter()
                .map(|l| match l {
                    model::Literal::Int(i) => i.to_string(),
                    model::Literal::Str(s) => format!("\"{s}\""),
                })
                .collect();
            Some(DimValues { count: v.len(), from: "list".into(), shown: show_values(&v, v.len()) })
        }
        Some(Domain::Table { path, column, .. }) => {
            let v = column_values(a, path, column)?;
            let file = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            Some(DimValues { count: v.len(), from: format!("column `{column}` of `{file}`"), shown: show_values(&v, v.len()) })
        }
        None => {
            // Values from the relations whose tables have this dimension as a column.
            let mut all: BTreeSet<String> = BTreeSet::new();
            let mut from = Vec::new();
            for r in &m.relations {
                if !r.dims.iter().any(|x| x.name == name) {
                    continue;
                }
                if let RelSource::Table { path, .. } = &r.source {
                    if let Some(v) = column_values(a, path, name) {
                        all.extend(v);
                        from.push(format!("relation `{}`", r.name));
                    }
                }
            }
            if from.is_empty() {
                return None;
            }
            let mut v: Vec<String> = all.into_iter().collect();
            if v.iter().all(|x| x.parse::<i64>().is_ok()) {
                v.sort_by_key(|x| x.parse::<i64>().unwrap_or(0));
            }
            Some(DimValues { count: v.len(), from: format!("from {}", from.join(", ")), shown: show_values(&v, v.len()) })
        }
    }
}

// ---------------------------------------------------------------- definition, references

fn location(a: &Analysis, file: FileId, span: Span, open: &BTreeMap<PathBuf, Uri>) -> Option<Location> {
    let f = a.checked.program.map.try_get(file)?;
    let uri = open.get(&crate::fs::normalize(&f.path)).cloned().unwrap_or_else(|| conv::uri_of(&f.path));
    Some(Location { uri, range: conv::range(f, span) })
}

pub fn definition(doc: &Doc, pos: Position, open: &BTreeMap<PathBuf, Uri>) -> Vec<Location> {
    let Some(a) = doc.analysis.as_ref() else { return Vec::new() };
    if let Some(loc) = include_target(a, pos, open) {
        return vec![loc];
    }
    let off = conv::offset(a.file(), pos);
    let Some(sym) = a.index.at(a.root, off) else { return Vec::new() };
    a.index.defs_of(sym).into_iter().filter_map(|d| location(a, d.file, d.span, open)).collect()
}

/// `include "x.bps"`: the included file.
fn include_target(a: &Analysis, pos: Position, open: &BTreeMap<PathBuf, Uri>) -> Option<Location> {
    let off = conv::offset(a.file(), pos);
    let m = a.module()?;
    let s = m.stmts.iter().find(|s| s.span.contains(off))?;
    let StmtKind::Include { path } = &s.kind else { return None };
    let target = crate::fs::relative_to(&a.file().path, &path.value);
    let uri = open.get(&target).cloned().unwrap_or_else(|| conv::uri_of(&target));
    Some(Location { uri, range: Range::default() })
}

/// The identity of a definition across analyses: its file's path and its span.
fn def_key(a: &Analysis, d: &Sym) -> Option<(PathBuf, Span)> {
    Some((crate::fs::normalize(&a.checked.program.map.try_get(d.file)?.path), d.span))
}

pub fn references(doc: &Doc, pos: Position, include_decl: bool, docs: &[&Doc], open: &BTreeMap<PathBuf, Uri>) -> Option<Vec<Location>> {
    let a = doc.analysis.as_ref()?;
    let off = conv::offset(a.file(), pos);
    let sym = a.index.at(a.root, off)?;
    let targets: BTreeSet<(PathBuf, Span)> = a.index.defs_of(sym).into_iter().filter_map(|d| def_key(a, d)).collect();
    if targets.is_empty() {
        return Some(Vec::new());
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    let analyses = std::iter::once(a).chain(docs.iter().filter_map(|d| d.analysis.as_ref()));
    for b in analyses {
        let defs: Vec<&Sym> = b.index.defs().filter(|d| def_key(b, d).is_some_and(|k| targets.contains(&k))).collect();
        for s in &b.index.syms {
            let hit = if s.def { include_decl && defs.iter().any(|d| std::ptr::eq(*d, s)) } else { defs.iter().any(|d| s.names(d)) };
            if !hit {
                continue;
            }
            let Some(f) = b.checked.program.map.try_get(s.file) else { continue };
            if seen.insert((crate::fs::normalize(&f.path), s.span)) {
                out.extend(location(b, s.file, s.span, open));
            }
        }
    }
    Some(out)
}

// ---------------------------------------------------------------- completion

const STATEMENTS: &[(&str, &[Scope], &str)] = &[
    ("include", &[Scope::Top], "include \"file.bps\""),
    ("defaults", &[Scope::Top], "execution settings for every step"),
    ("site", &[Scope::Top], "a site that runs jobs"),
    ("dimension", &[Scope::Top], "a dimension of data IDs"),
    ("relation", &[Scope::Top], "rows linking dimensions"),
    ("coverage", &[Scope::Top], "a named coverage"),
    ("dataset", &[Scope::Top], "a dataset type"),
    ("pipeline", &[Scope::Top], "a pipeline of steps"),
    ("campaign", &[Scope::Top], "a campaign: what runs, on which data"),
    ("order", &[Scope::Top, Scope::Pipeline, Scope::Campaign], "an order constraint"),
    ("config", &[Scope::Pipeline], "a pipeline config"),
    ("step", &[Scope::Pipeline, Scope::Campaign], "a step (in a campaign: an override)"),
    ("use", &[Scope::Campaign], "use PIPELINE with CONFIG"),
    ("cluster", &[Scope::Campaign], "run several quanta in one job"),
    ("notify", &[Scope::Campaign], "notifications"),
    ("final", &[Scope::Campaign], "final NAME { run = ..., when = always }: a job after every other job (1.1)"),
    ("subset", &[Scope::Pipeline], "subset NAME = [steps]: a name for --steps (1.1)"),
    ("equal", &[Scope::Top], "equal A = B: two dimensions that always hold the same value (1.1)"),
    ("env", &[Scope::Defaults, Scope::Site, Scope::Pipeline, Scope::Step, Scope::Campaign, Scope::StepOverride], "environment variables"),
];

fn item(label: &str, kind: CompletionItemKind, detail: Option<String>) -> CompletionItem {
    CompletionItem { label: label.to_string(), kind: Some(kind), detail, ..Default::default() }
}

fn names(a: Option<&Analysis>, kind: Kind, scope: Option<&str>) -> Vec<String> {
    let Some(a) = a else { return Vec::new() };
    let mut v: Vec<String> = a
        .index
        .defs()
        .filter(|d| d.kind == kind && (scope.is_none() || d.scope.is_none() || d.scope.as_deref() == scope))
        .map(|d| d.name.clone())
        .collect();
    v.sort();
    v.dedup();
    v
}

fn name_items(a: Option<&Analysis>, kind: Kind, scope: Option<&str>) -> Vec<CompletionItem> {
    let ck = match kind {
        Kind::Step => CompletionItemKind::FUNCTION,
        Kind::Pipeline => CompletionItemKind::MODULE,
        Kind::Dataset => CompletionItemKind::STRUCT,
        Kind::Dimension => CompletionItemKind::ENUM,
        Kind::Site => CompletionItemKind::REFERENCE,
        _ => CompletionItemKind::VARIABLE,
    };
    names(a, kind, scope).into_iter().map(|n| item(&n, ck, Some(kind.word().to_string()))).collect()
}

/// The identifier just before `line_end` in `line`: (start, word).
fn word_before(line: &str) -> (&str, &str) {
    let start = line.rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).map(|i| i + 1).unwrap_or(0);
    (&line[..start], &line[start..])
}

fn in_string_or_comment(line: &str) -> bool {
    let mut in_str = false;
    let mut esc = false;
    for c in line.chars() {
        if in_str {
            if esc {
                esc = false;
            } else if c == '\\' {
                esc = true;
            } else if c == '"' {
                in_str = false;
            }
        } else if c == '"' {
            in_str = true;
        } else if c == '#' {
            return true;
        }
    }
    in_str
}

pub fn completion(doc: &Doc, pos: Position) -> Vec<CompletionItem> {
    let off = conv::offset(&doc.lines, pos) as usize;
    let text: &str = &doc.text;
    let line_start = text[..off].rfind('\n').map(|i| i + 1).unwrap_or(0);
    let line = &text[line_start..off];
    if in_string_or_comment(line) {
        return Vec::new();
    }
    // Where the cursor is, from the current text (the analysis may be older); a scan back
    // to the enclosing block heads, not a parse of the whole file.
    let heads = block_heads(text, off);
    let w = where_in_heads(&heads);
    let a = doc.analysis.as_ref();
    let (before, _word) = word_before(line);
    // Only the current statement matters: text after the last `{`, `,` or `;` of the line
    // (outside brackets) is ignored before that.
    let stmt = last_statement(before);
    let t = stmt.trim_start();
    let words: Vec<&str> = t.split_whitespace().collect();
    let last = words.last().copied().unwrap_or("");

    // `key = value` (but not `dimension d = ...`, `coverage c = ...`, `relation r(...) = ...`)
    let is_attr = {
        let (_, rest) = word_before(t.split('=').next().unwrap_or("").trim_end());
        let head = t.split('=').next().unwrap_or("");
        t.contains('=') && !rest.is_empty() && head.trim() == rest && !t.contains("==")
    };
    if is_attr {
        let eq = t.find('=').unwrap_or(0);
        let key = t[..eq].trim();
        let value = &t[eq + 1..];
        if key == "coverage" || value.contains(" where ") || ends_with_word(value, "where") {
            return coverage_items(a, value);
        }
        if w.scope == Some(Scope::Env) || w.scope == Some(Scope::Config) {
            return Vec::new();
        }
        return value_items(a, key, &w);
    }
    // `use P with` / `use` / `extends` / `after` / `over (` / `order` ...
    if words.first() == Some(&"use") {
        return match words.as_slice() {
            ["use"] => name_items(a, Kind::Pipeline, None),
            ["use", p, "with"] => name_items(a, Kind::Config, Some(p)),
            ["use", _] => vec![item("with", CompletionItemKind::KEYWORD, None)],
            _ => Vec::new(),
        };
    }
    if last == "extends" {
        return name_items(a, Kind::Config, w.pipeline);
    }
    // `equal A = B` (1.1): dimensions on both sides.
    if words.first() == Some(&"equal") && (words.len() == 1 || t.trim_end().ends_with('=')) {
        return name_items(a, Kind::Dimension, None);
    }
    // `subset NAME = [a, b]` (1.1): steps of the pipeline.
    if words.first() == Some(&"subset") && t.contains('=') {
        return name_items(a, Kind::Step, w.pipeline);
    }
    if words.first() == Some(&"step") && words.len() == 1 && w.scope == Some(Scope::Campaign) {
        return name_items(a, Kind::Step, None);
    }
    if words.first() == Some(&"step") && t.contains(" after ") && !t.contains('{') && (last == "after" || t.trim_end().ends_with(',')) {
        return name_items(a, Kind::Step, w.pipeline);
    }
    if open_paren_dims(t) {
        return name_items(a, Kind::Dimension, None);
    }
    if words.first() == Some(&"step") && words.len() >= 2 && !t.contains('{') {
        let mut v = Vec::new();
        if !t.contains(" over ") {
            v.push(item("over", CompletionItemKind::KEYWORD, Some("over (dimensions)".into())));
        }
        if !t.contains(" after ") {
            v.push(item("after", CompletionItemKind::KEYWORD, Some("after steps".into())));
        }
        return v;
    }
    if words.first() == Some(&"order") {
        return match words.as_slice() {
            ["order"] | ["order", _, "before"] => {
                let mut v = name_items(a, Kind::Step, w.pipeline);
                if w.pipeline.is_none() {
                    v.extend(name_items(a, Kind::Pipeline, None));
                }
                v
            }
            ["order", _] => vec![item("before", CompletionItemKind::KEYWORD, None), item("serial", CompletionItemKind::KEYWORD, None)],
            ["order", _, "serial"] => vec![item("by", CompletionItemKind::KEYWORD, None)],
            ["order", _, "serial", "by"] => name_items(a, Kind::Dimension, None),
            _ => Vec::new(),
        };
    }
    // `key = value`
    if let Some(eq) = t.find('=') {
        let key = t[..eq].trim();
        let value = &t[eq + 1..];
        if key.starts_with("coverage") || key.starts_with("relation") || value.contains(" where ") || ends_with_word(value, "where") {
            return coverage_items(a, value);
        }
        if key.starts_with("dimension") {
            return Vec::new();
        }
        if w.scope == Some(Scope::Env) || w.scope == Some(Scope::Config) {
            return Vec::new();
        }
        return value_items(a, key, &w);
    }
    // A statement or key at the start of a statement.
    if !t.is_empty() {
        return Vec::new();
    }
    let scope = w.scope.unwrap_or(Scope::Top);
    let mut v: Vec<CompletionItem> = Vec::new();
    if !matches!(scope, Scope::Env | Scope::Config | Scope::Top) {
        for k in keys::keys_in(scope) {
            let mut it = item(k.name, CompletionItemKind::PROPERTY, Some(k.ty.describe().to_string()));
            it.documentation = Some(Documentation::MarkupContent(MarkupContent { kind: MarkupKind::Markdown, value: key_doc(k) }));
            it.insert_text = Some(format!("{} = ", k.name));
            v.push(it);
        }
    }
    for (kw, scopes, doc) in STATEMENTS {
        if scopes.contains(&scope) {
            v.push(item(kw, CompletionItemKind::KEYWORD, Some(doc.to_string())));
        }
    }
    v
}

/// Code of one line with strings blanked and any comment removed (braces in strings and
/// comments do not count).
fn code_of(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let (mut in_str, mut esc) = (false, false);
    for c in line.chars() {
        if in_str {
            if esc {
                esc = false;
            } else if c == '\\' {
                esc = true;
            } else if c == '"' {
                in_str = false;
                out.push('"');
                continue;
            }
            out.push(' ');
        } else if c == '"' {
            in_str = true;
            out.push('"');
        } else if c == '#' {
            break;
        } else {
            out.push(c);
        }
    }
    out
}

/// The heads of the blocks enclosing byte offset `off` (outermost first), each as the
/// words before its `{`: found by scanning back over the text and matching braces.
fn block_heads(text: &str, off: usize) -> Vec<Vec<String>> {
    let mut heads = Vec::new();
    let mut depth = 0i32;
    let mut end = off;
    let mut pending: Option<String> = None; // code before an unmatched `{`, to complete upwards
    while end > 0 || pending.is_some() {
        let start = text[..end].rfind('\n').map(|i| i + 1).unwrap_or(0);
        let code = code_of(&text[start..end]);
        if let Some(p) = pending.take() {
            // A head split over lines: prepend this line until it starts with a statement word.
            let joined = format!("{} {p}", code.trim());
            let first = joined.split_whitespace().next().unwrap_or("");
            if STATEMENT_WORDS.contains(&first) || start == 0 || joined.len() > 2000 {
                heads.push(joined);
            } else {
                pending = Some(joined);
            }
        } else {
            let b = code.as_bytes();
            for i in (0..b.len()).rev() {
                match b[i] {
                    b'}' => depth += 1,
                    b'{' if depth > 0 => depth -= 1,
                    b'{' => {
                        // Only the part after the previous `{`/`}`/`;` on this line belongs to this head.
                        let lo = code[..i].rfind(['{', '}', ';']).map(|k| k + 1).unwrap_or(0);
                        let head = code[lo..i].trim().to_string();
                        let first = head.split_whitespace().next().unwrap_or("");
                        if STATEMENT_WORDS.contains(&first) || lo > 0 || start == 0 {
                            heads.push(head);
                        } else {
                            pending = Some(head);
                            break;
                        }
                    }
                    _ => {}
                }
            }
        }
        if start == 0 {
            if let Some(p) = pending.take() {
                heads.push(p);
            }
            break;
        }
        end = start - 1;
    }
    heads.reverse();
    heads.into_iter().map(|h| h.replace(['(', ')', ','], " ").split_whitespace().map(str::to_string).collect()).collect()
}

const STATEMENT_WORDS: &[&str] =
    &["defaults", "site", "dataset", "pipeline", "config", "step", "campaign", "cluster", "notify", "env", "final"];

fn where_in_heads(heads: &[Vec<String>]) -> Where<'_> {
    let mut w = Where { scope: Some(Scope::Top), ..Default::default() };
    for h in heads {
        let name = h.get(1).map(|s| s.as_str());
        w.scope = Some(match h.first().map(|s| s.as_str()) {
            Some("defaults") => Scope::Defaults,
            Some("site") => {
                w.site = name;
                Scope::Site
            }
            Some("pipeline") => {
                w.pipeline = name;
                Scope::Pipeline
            }
            Some("step") => {
                let n = name.unwrap_or("");
                match n.split_once('.') {
                    Some((p, st)) => {
                        w.pipeline = Some(p);
                        w.step = Some(st);
                    }
                    None => w.step = name,
                }
                if w.campaign.is_some() {
                    Scope::StepOverride
                } else {
                    Scope::Step
                }
            }
            Some("campaign") => {
                w.campaign = name.map(|n| n.trim_matches('"'));
                Scope::Campaign
            }
            Some("dataset") => Scope::Dataset,
            Some("config") => Scope::Config,
            Some("cluster") => Scope::Cluster,
            Some("notify") => Scope::Notify,
            Some("env") => Scope::Env,
            Some("final") => Scope::Final,
            _ => continue,
        });
    }
    w
}

fn ends_with_word(s: &str, w: &str) -> bool {
    s.trim_end().split_whitespace().last() == Some(w)
}

/// The text of the statement the cursor is in, on this line: after the last `{`, `,` or `;`
/// that is not inside brackets or a string.
fn last_statement(line: &str) -> &str {
    let mut depth = 0i32;
    let mut cut = 0;
    let mut in_str = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => in_str = !in_str,
            _ if in_str => {}
            '(' | '[' => depth += 1,
            ')' | ']' => depth -= 1,
            '{' | ';' => {
                cut = i + 1;
                depth = 0;
            }
            ',' if depth <= 0 => {
                // `after a, b` continues the statement.
                if !line[..i].contains(" after ") {
                    cut = i + 1;
                }
            }
            _ => {}
        }
    }
    &line[cut..]
}

/// Inside the dimension list of `step .. over (`, `dataset NAME(` or `relation NAME(`?
fn open_paren_dims(t: &str) -> bool {
    let Some(open) = t.rfind('(') else { return false };
    if t[open..].contains(')') || t.contains('=') {
        return false;
    }
    let head = t[..open].trim_end();
    head.ends_with(" over") || t.starts_with("dataset ") || t.starts_with("relation ")
}

fn coverage_items(a: Option<&Analysis>, value: &str) -> Vec<CompletionItem> {
    let mut v = name_items(a, Kind::Dimension, None);
    if !value.contains(" where ") && !ends_with_word(value, "where") {
        v.extend(name_items(a, Kind::Relation, None));
        v.extend(name_items(a, Kind::Coverage, None));
        v.push(item("where", CompletionItemKind::KEYWORD, Some("filter the data IDs".into())));
    } else {
        for w in ["and", "or", "not", "in"] {
            v.push(item(w, CompletionItemKind::KEYWORD, None));
        }
    }
    v
}

fn value_items(a: Option<&Analysis>, key: &str, w: &Where<'_>) -> Vec<CompletionItem> {
    let Some(k) = keys::key(key) else { return Vec::new() };
    let word = |s: &str, d: &str| item(s, CompletionItemKind::ENUM_MEMBER, Some(d.to_string()));
    match k.ty {
        Ty::Enum(vals) => vals.iter().map(|v| word(v, k.name)).collect(),
        Ty::Bool => vec![word("true", k.name), word("false", k.name)],
        Ty::SiteRef | Ty::SiteList => name_items(a, Kind::Site, None),
        Ty::DatasetList => {
            let mut v = name_items(a, Kind::Dataset, None);
            if k.name == "inputs" {
                let mut it = item("optional", CompletionItemKind::FUNCTION, Some("optional(dataset): may be missing".into()));
                it.insert_text = Some("optional(".into());
                v.push(it);
            }
            v
        }
        Ty::StepList => name_items(a, Kind::Step, w.pipeline),
        Ty::DimList => name_items(a, Kind::Dimension, None),
        Ty::EventList => keys::EVENTS.iter().map(|e| word(e, "event")).collect(),
        Ty::Software => {
            let mut c = item("container", CompletionItemKind::FUNCTION, Some("container(\"image:tag\")".into()));
            c.insert_text = Some("container(\"".into());
            let mut s = item("setup", CompletionItemKind::FUNCTION, Some("setup(\"script\")".into()));
            s.insert_text = Some("setup(\"".into());
            vec![c, s]
        }
        Ty::Coverage => coverage_items(a, ""),
        _ => Vec::new(),
    }
}

// ---------------------------------------------------------------- symbols

#[allow(deprecated)]
fn symbol(
    file: &crate::source::SourceFile,
    name: String,
    detail: Option<String>,
    kind: SymbolKind,
    span: Span,
    sel: Span,
    children: Vec<DocumentSymbol>,
) -> DocumentSymbol {
    DocumentSymbol {
        name,
        detail,
        kind,
        tags: None,
        deprecated: None,
        range: conv::range(file, span),
        selection_range: conv::range(file, sel),
        children: if children.is_empty() { None } else { Some(children) },
    }
}

fn stmt_symbols(file: &crate::source::SourceFile, stmts: &[Stmt], in_campaign: bool) -> Vec<DocumentSymbol> {
    let mut out = Vec::new();
    for s in stmts {
        let kids = |c: bool| s.kind.body().map(|b| stmt_symbols(file, &b.stmts, c)).unwrap_or_default();
        let head = |n: usize| Span { lo: s.span.lo, hi: s.span.lo + n as u32 };
        let sym = match &s.kind {
            StmtKind::Attr { key, .. } => {
                let v = file.slice(s.span);
                let detail = v.split_once('=').map(|(_, r)| r.trim().chars().take(60).collect::<String>());
                symbol(file, key.name().to_string(), detail, SymbolKind::PROPERTY, s.span, key.span(), Vec::new())
            }
            StmtKind::Defaults { .. } => symbol(file, "defaults".into(), None, SymbolKind::NAMESPACE, s.span, head(8), kids(false)),
            StmtKind::Site { name, .. } => {
                symbol(file, name.name.clone(), Some("site".into()), SymbolKind::NAMESPACE, s.span, name.span, kids(false))
            }
            StmtKind::Dimension { name, .. } => {
                symbol(file, name.name.clone(), Some("dimension".into()), SymbolKind::ENUM, s.span, name.span, Vec::new())
            }
            StmtKind::Relation { name, dims, .. } => {
                let d: Vec<&str> = dims.iter().map(|d| d.name.as_str()).collect();
                symbol(
                    file,
                    name.name.clone(),
                    Some(format!("relation ({})", d.join(", "))),
                    SymbolKind::INTERFACE,
                    s.span,
                    name.span,
                    Vec::new(),
                )
            }
            StmtKind::Coverage { name, .. } => {
                symbol(file, name.name.clone(), Some("coverage".into()), SymbolKind::VARIABLE, s.span, name.span, Vec::new())
            }
            StmtKind::Dataset { name, dims, .. } => {
                let d: Vec<&str> = dims.iter().map(|d| d.name.as_str()).collect();
                symbol(
                    file,
                    name.name.clone(),
                    Some(format!("dataset ({})", d.join(", "))),
                    SymbolKind::STRUCT,
                    s.span,
                    name.span,
                    kids(false),
                )
            }
            StmtKind::Pipeline { name, .. } => {
                symbol(file, name.name.clone(), Some("pipeline".into()), SymbolKind::MODULE, s.span, name.span, kids(false))
            }
            StmtKind::Config { name, .. } => {
                symbol(file, name.name.clone(), Some("config".into()), SymbolKind::OBJECT, s.span, name.span, kids(false))
            }
            StmtKind::Step { name, over, .. } => {
                let d = over.as_ref().map(|(d, _)| d.iter().map(|d| d.name.as_str()).collect::<Vec<_>>().join(", "));
                let detail = if in_campaign { "step override".to_string() } else { format!("step over ({})", d.unwrap_or_default()) };
                symbol(file, name.name.name.clone(), Some(detail), SymbolKind::FUNCTION, s.span, name.name.span, kids(false))
            }
            StmtKind::Campaign { name, .. } => {
                symbol(file, name.name.clone(), Some("campaign".into()), SymbolKind::PACKAGE, s.span, name.span, kids(true))
            }
            StmtKind::Cluster { name, .. } => {
                symbol(file, name.name.clone(), Some("cluster".into()), SymbolKind::ARRAY, s.span, name.span, kids(false))
            }
            StmtKind::Notify { .. } => symbol(file, "notify".into(), None, SymbolKind::EVENT, s.span, head(6), kids(false)),
            StmtKind::Env { .. } => symbol(file, "env".into(), None, SymbolKind::OBJECT, s.span, head(3), kids(false)),
            StmtKind::Use { pipeline, config } => {
                let n = format!("use {}{}", pipeline.name, config.as_ref().map(|c| format!(" with {}", c.name)).unwrap_or_default());
                symbol(file, n, None, SymbolKind::CONSTANT, s.span, pipeline.span, Vec::new())
            }
            _ => continue,
        };
        out.push(sym);
    }
    out
}

pub fn symbols(doc: &Doc) -> Vec<DocumentSymbol> {
    let Some(a) = doc.analysis.as_ref() else { return Vec::new() };
    let Some(m): Option<&Module> = a.module() else { return Vec::new() };
    stmt_symbols(a.file(), &m.stmts, false)
}

// ---------------------------------------------------------------- formatting, code actions

pub fn format(doc: &Doc) -> Option<Vec<TextEdit>> {
    let out = crate::fmt::format_source(&doc.text).ok()?;
    if out == *doc.text {
        return Some(Vec::new());
    }
    let end = conv::position(&doc.lines, doc.text.len() as u32);
    Some(vec![TextEdit { range: Range { start: Position { line: 0, character: 0 }, end }, new_text: out }])
}

pub fn code_actions(doc: &Doc, range: Range) -> Vec<CodeActionOrCommand> {
    let Some(a) = doc.analysis.as_ref() else { return Vec::new() };
    let file = a.file();
    let (lo, hi) = (conv::offset(file, range.start), conv::offset(file, range.end));
    let map = &a.checked.program.map;
    let mut out = Vec::new();
    for d in &a.checked.diags.items {
        let in_range = |sp: Span| sp.lo <= hi && lo <= sp.hi;
        let at_diag = d.primary.as_ref().is_some_and(|p| p.loc.file == a.root && in_range(p.loc.span));
        for s in &d.suggestions {
            if s.loc.file != a.root || !(at_diag || in_range(s.loc.span)) {
                continue;
            }
            let edit = TextEdit { range: conv::range(file, s.loc.span), new_text: s.replacement.clone() };
            let mut changes = std::collections::HashMap::new();
            changes.insert(doc.uri.clone(), vec![edit]);
            let title = if s.message.is_empty() { format!("replace with `{}`", s.replacement) } else { s.message.clone() };
            out.push(CodeActionOrCommand::CodeAction(CodeAction {
                title,
                kind: Some(CodeActionKind::QUICKFIX),
                diagnostics: lsp_diag(map, d).map(|(_, ld)| vec![ld]),
                edit: Some(WorkspaceEdit { changes: Some(changes), ..Default::default() }),
                is_preferred: Some(d.suggestions.len() == 1),
                ..Default::default()
            }));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::{check, Options};
    use crate::fs::MemFs;
    use crate::lsp::{Analysis, Doc};
    use std::sync::Arc;

    const SRC: &str = "bps 1.1
dimension visit = 0..4
dimension exposure
dimension detector = 0..2
equal visit = exposure
dataset raw(exposure, detector) { source = \"file:///raw/{exposure}/{detector}\" }
defaults { pass_env = [\"HOME\"] }
pipeline drp {
  subset single_frame = [isr, calibrate]
  step isr over (exposure, detector) {
    inputs   = [raw]
    outputs  = [postisr]
    run      = \"isr {inputs.raw} {outputs.postisr}\"
    pass_env = [\"DRP_DIR\"]
  }
  step calibrate over (visit, detector) after isr { inputs = [postisr], run = \"cal {visit}\" }
}
campaign k {
  use drp
  coverage = visit * detector
  memory_growth_on = oom
  cluster sfm { steps = [isr, calibrate], by = [detector], split_by = [visit], max_quanta = 10 }
  final report {
    run  = \"report {campaign}\"
    when = failure
  }
}
";

    fn doc(text: &str) -> Doc {
        let path = std::path::PathBuf::from("/lsp-test/c.bps");
        let fs = MemFs::new().with(path.clone(), text.as_bytes().to_vec());
        let checked = check(&fs, &path, &Options::default());
        let index = super::super::index::Index::build(&checked.program.modules);
        let root = checked.program.root;
        let text: Arc<str> = Arc::from(text);
        let lines = crate::source::SourceFile::new(FileId(0), path.clone(), String::new(), text.clone());
        Doc {
            uri: conv::uri_of(&path),
            path,
            text,
            lines,
            due: None,
            analysis: Some(Analysis { checked, index, root }),
            published: BTreeSet::new(),
        }
    }

    /// The position just after the `n`-th occurrence (from 0) of `marker`.
    fn after(d: &Doc, marker: &str, n: usize) -> Position {
        let off = d.text.match_indices(marker).nth(n).map(|(i, _)| i + marker.len()).expect("marker");
        conv::position(&d.lines, off as u32)
    }

    fn labels(v: &[CompletionItem]) -> Vec<String> {
        v.iter().map(|i| i.label.clone()).collect()
    }

    fn hover_text(d: &Doc, pos: Position) -> String {
        match hover(d, pos).map(|h| h.contents) {
            Some(HoverContents::Markup(m)) => m.value,
            other => panic!("no markdown hover: {other:?}"),
        }
    }

    #[test]
    fn the_example_checks_clean() {
        let d = doc(SRC);
        let a = d.analysis.as_ref().unwrap();
        assert!(a.checked.diags.items.is_empty(), "{:#?}", a.checked.diags.items);
    }

    #[test]
    fn completion_knows_the_1_1_statements_keys_and_values() {
        // A new line at the top level, in a pipeline and in a campaign.
        let top = format!("{SRC}\n");
        let d = doc(&top);
        assert!(labels(&completion(&d, conv::position(&d.lines, top.len() as u32))).contains(&"equal".to_string()));
        let text = SRC.replace("  subset single_frame", "  \n  subset single_frame");
        let d = doc(&text);
        let l = labels(&completion(&d, after(&d, "pipeline drp {\n  ", 0)));
        assert!(l.contains(&"subset".to_string()), "{l:?}");
        let text = SRC.replace("  final report {\n", "  \n  final report {\n");
        let d = doc(&text);
        let l = labels(&completion(&d, after(&d, "max_quanta = 10 }\n  ", 0)));
        assert!(l.contains(&"final".to_string()) && l.contains(&"unexpected".to_string()) && l.contains(&"pass_env".to_string()), "{l:?}");
        // Keys of a final job, and its `when` values.
        let text = SRC.replace("    when = failure\n", "    when = failure\n    \n");
        let d = doc(&text);
        let l = labels(&completion(&d, after(&d, "when = failure\n    ", 0)));
        assert_eq!(l, ["run", "when"]);
        let d = doc(SRC);
        let text = SRC.replace("when = failure", "when = ");
        let d2 = doc(&text);
        assert_eq!(labels(&completion(&d2, after(&d2, "when = ", 0))), ["always", "success", "failure"]);
        assert_eq!(labels(&completion(&d, after(&d, "memory_growth_on = ", 0))), ["oom", "any"]);
        // Names: dimensions for split_by and equal, steps for a subset.
        let l = labels(&completion(&d, after(&d, "split_by = [", 0)));
        assert!(l.contains(&"visit".to_string()) && l.contains(&"exposure".to_string()), "{l:?}");
        let l = labels(&completion(&d, after(&d, "equal visit = ", 0)));
        assert!(l.contains(&"exposure".to_string()), "{l:?}");
        let l = labels(&completion(&d, after(&d, "subset single_frame = [", 0)));
        assert_eq!(l, ["calibrate", "isr"]);
    }

    #[test]
    fn hover_explains_1_1_settings_and_names() {
        let d = doc(SRC);
        // pass_env in the step: merged from defaults and the step.
        let h = hover_text(&d, after(&d, "    pass_", 0));
        assert!(h.contains("**pass_env = [\"HOME\", \"DRP_DIR\"]**") && h.contains("merged") && h.contains("defaults"), "{h}");
        let h = hover_text(&d, after(&d, "memory_growth_", 0));
        assert!(h.contains("memory_growth_on") && h.contains("built-in default `oom`"), "{h}");
        let h = hover_text(&d, after(&d, "subset single_", 0));
        assert!(h.contains("**subset** `single_frame`") && h.contains("isr, calibrate"), "{h}");
        let h = hover_text(&d, after(&d, "final rep", 0));
        assert!(h.contains("**final job** `report`") && h.contains("when = failure"), "{h}");
        let h = hover_text(&d, after(&d, "{inputs.r", 0));
        assert!(h.contains("**dataset** `raw(exposure, detector)`"), "{h}");
        let h = hover_text(&d, after(&d, "cluster sf", 0));
        assert!(h.contains("split by visit into jobs of at most 10 quanta"), "{h}");
    }
}
