//! From syntax trees to the [`Model`]: scope rules, key and value types, duplicates.

use std::collections::BTreeMap;

use super::keys::{self, Scope, Ty};
use super::model::*;
use crate::diag::{did_you_mean, Diagnostic};
use crate::fs::relative_to;
use crate::source::{FileId, Loc, SourceMap, Span};
use crate::syntax::ast::*;

pub struct Builder<'a> {
    pub map: &'a SourceMap,
    pub model: Model,
    pub diags: Vec<Diagnostic>,
    /// First definition of each (kind, name), for E202.
    seen: BTreeMap<(&'static str, String), Loc>,
    /// The language version of the module being built (features of later versions: E212).
    version: Version,
    /// Span of that module's `bps` header, for the E212 fix.
    header: Option<Span>,
}

fn loc(file: FileId, span: Span) -> Loc {
    Loc { file, span }
}

fn named(file: FileId, i: &Ident) -> Named {
    Named { name: i.name.clone(), loc: loc(file, i.span) }
}

impl<'a> Builder<'a> {
    pub fn new(map: &'a SourceMap) -> Builder<'a> {
        Builder { map, model: Model::default(), diags: Vec::new(), seen: BTreeMap::new(), version: Version::LATEST, header: None }
    }

    /// E212 when the current file's version is older than `need`: `what` (e.g. "`equal`")
    /// is written at `span`.  The feature is still checked and built, so that nothing else
    /// is reported about it.
    fn gate(&mut self, file: FileId, span: Span, what: &str, need: Version) -> bool {
        if self.version >= need {
            return false;
        }
        let mut d = Diagnostic::new("E212", format!("{what} needs language version {need}; this file is `bps {}`", self.version))
            .at(file, span, format!("a version {need} feature"))
            .help(format!("change the first line to `bps {need}`; every version {} file means the same under {need}", self.version));
        if let Some(h) = self.header {
            d = d.also(file, h, "the file's version").suggest(
                Loc { file, span: h },
                format!("bps {need}"),
                format!("change to `bps {need}`"),
            );
        }
        self.err(d);
        true
    }

    fn err(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    /// Record a definition; E202 when the name is taken.
    fn define(&mut self, kind: &'static str, name: &str, at: Loc) -> bool {
        if let Some(first) = self.seen.get(&(kind, name.to_string())) {
            let first = *first;
            self.err(
                Diagnostic::new("E202", format!("{kind} `{name}` is defined twice"))
                    .at_loc(at, "defined again here")
                    .also_loc(first, "first defined here")
                    .help(format!("rename or remove one of the two definitions of `{name}`")),
            );
            return false;
        }
        self.seen.insert((kind, name.to_string()), at);
        true
    }

    pub fn module(&mut self, m: &Module) {
        self.version = m.effective_version();
        self.header = m.version.map(|(_, sp)| sp);
        for s in &m.stmts {
            self.top_stmt(m.file, s);
        }
    }

    /// Does `body` write `word` (a key or a statement word), even if it was rejected or failed
    /// to parse?  Then a "missing" diagnostic would only repeat the error already reported.
    fn attempted(&self, file: FileId, body: &Body, word: &str) -> bool {
        body.stmts.iter().any(|s| match &s.kind {
            StmtKind::Attr { key, .. } => key.name() == word,
            StmtKind::Error => {
                let text = self.map.get(file).slice(s.span);
                text.get(..first_word_len(text) as usize) == Some(word)
            }
            _ => false,
        })
    }

    fn not_allowed(&mut self, file: FileId, s: &Stmt, scope: Scope) {
        let what = s.kind.describe();
        let help = match &s.kind {
            StmtKind::Step { .. } => "steps are defined inside a `pipeline`; a campaign may override one with `step NAME { ... }`",
            StmtKind::Config { .. } => "configs are defined inside a `pipeline`",
            StmtKind::Use { .. } | StmtKind::Cluster { .. } | StmtKind::Notify { .. } | StmtKind::Final { .. } => {
                "this belongs in a `campaign`"
            }
            StmtKind::Subset { .. } => "a `subset` names steps of a `pipeline` and goes inside it",
            StmtKind::Equal { .. } => "`equal` declares two dimensions equal everywhere; it goes at the top level",
            StmtKind::Env { .. } => "`env` goes where execution settings go: defaults, site, pipeline, campaign or step",
            StmtKind::Include { .. } => "`include` is only allowed at the top level of a file",
            StmtKind::OrderBefore { .. } | StmtKind::OrderSerial { .. } => {
                "order constraints go in a pipeline or a campaign, or at the top level"
            }
            _ => "definitions of sites, dimensions, relations, datasets, pipelines and campaigns go at the top level",
        };
        let head = Span { lo: s.span.lo, hi: s.span.lo + first_word_len(self.map.get(file).slice(s.span)) };
        self.err(
            Diagnostic::new("E204", format!("{what} is not allowed in {}", scope.describe())).at(file, head, "not allowed here").help(help),
        );
    }

    fn top_stmt(&mut self, file: FileId, s: &Stmt) {
        match &s.kind {
            StmtKind::Error | StmtKind::Include { .. } => {}
            StmtKind::Attr { key, .. } => {
                let name = key.name().to_string();
                let help = if keys::key(&name).is_some_and(|k| k.exec) {
                    format!("put `{name}` in a `defaults {{ }}` block, or in a site, pipeline, campaign or step")
                } else {
                    "settings go inside a block: defaults, site, pipeline, step, campaign, dataset".to_string()
                };
                self.err(
                    Diagnostic::new("E204", format!("setting `{name}` is not allowed at the top level"))
                        .at(file, key.span(), "not allowed here")
                        .help(help),
                );
            }
            StmtKind::Defaults { body } => {
                let mut layer = std::mem::take(&mut self.model.defaults);
                self.exec_body(file, body, Scope::Defaults, &mut layer, &mut |_, _, _| false);
                self.model.defaults = layer;
            }
            StmtKind::Site { name, body } => self.site(file, name, body),
            StmtKind::Dimension { name, domain } => self.dimension(file, name, domain.as_ref()),
            StmtKind::Relation { name, dims, value } => self.relation(file, name, dims, value),
            StmtKind::Coverage { name, expr } => {
                if self.define("coverage", &name.name, loc(file, name.span)) {
                    self.model.coverages.push(NamedCoverage {
                        name: name.name.clone(),
                        loc: loc(file, name.span),
                        expr: expr.clone(),
                        file,
                    });
                }
            }
            StmtKind::Dataset { name, dims, body } => self.dataset(file, name, dims, body.as_ref()),
            StmtKind::Pipeline { name, body } => self.pipeline(file, name, body),
            StmtKind::Campaign { name, body, .. } => self.campaign(file, name, body),
            StmtKind::OrderBefore { .. } | StmtKind::OrderSerial { .. } => {
                if let Some(o) = order_of(file, s) {
                    self.model.orders.push(o);
                }
            }
            StmtKind::Equal { left, right } => {
                self.gate(file, head_span(self.map, file, s), "`equal`", Version::V1_1);
                self.model.equals.push(Equality { left: named(file, left), right: named(file, right), loc: loc(file, s.span) });
            }
            _ => self.not_allowed(file, s, Scope::Top),
        }
    }

    /// Walk a body whose attributes are execution settings (plus scope-specific keys handled
    /// by `extra`, which returns true when it took the attribute).
    fn exec_body(
        &mut self,
        file: FileId,
        body: &Body,
        scope: Scope,
        layer: &mut Layer,
        extra: &mut dyn FnMut(&mut Self, &Stmt, &mut Layer) -> bool,
    ) {
        for s in &body.stmts {
            if extra(self, s, layer) {
                continue;
            }
            match &s.kind {
                StmtKind::Error => {}
                StmtKind::Attr { key, value } => self.setting(file, s, key, value, scope, layer),
                StmtKind::Env { body } => self.env(file, body, layer),
                StmtKind::Equal { left, right } => {
                    // In the wrong place, but its meaning is clear: keep it, so that nothing
                    // else is reported because of the move.
                    self.not_allowed(file, s, scope);
                    self.model.equals.push(Equality { left: named(file, left), right: named(file, right), loc: loc(file, s.span) });
                }
                _ => self.not_allowed(file, s, scope),
            }
        }
    }

    fn env(&mut self, file: FileId, body: &Body, layer: &mut Layer) {
        for s in &body.stmts {
            match &s.kind {
                StmtKind::Error => {}
                StmtKind::Attr { key, value } => {
                    let name = key.name();
                    if !is_env_name(name) {
                        self.err(
                            Diagnostic::new("E303", format!("`{name}` is not a valid environment variable name"))
                                .at(file, key.span(), "invalid name")
                                .help("environment variable names are letters, digits and `_`, not starting with a digit"),
                        );
                        continue;
                    }
                    match &value.kind {
                        ExprKind::Str(s) => {
                            if let Some(prev) = layer.env.iter().find(|(n, _, _)| n == name) {
                                let prev = prev.2;
                                self.err(
                                    Diagnostic::new("E202", format!("`{name}` is set twice in this `env` block"))
                                        .at(file, key.span(), "set again here")
                                        .also_loc(prev, "first set here"),
                                );
                            }
                            layer.env.push((name.to_string(), s.value.clone(), loc(file, s.span)));
                        }
                        ExprKind::Error => {}
                        _ => self.err(
                            Diagnostic::new("E301", format!("environment variable `{name}` needs a string"))
                                .at(file, value.span, "not a string")
                                .help(format!("write `{name} = \"...\"`")),
                        ),
                    }
                }
                _ => self.not_allowed(file, s, Scope::Env),
            }
        }
    }

    /// One `key = value` in a scope that takes execution settings.
    fn setting(&mut self, file: FileId, s: &Stmt, key: &Key, value: &Expr, scope: Scope, layer: &mut Layer) {
        let name = key.name();
        let Some(info) = keys::key(name) else {
            self.unknown_key(file, key, scope);
            return;
        };
        if !info.scopes.contains(&scope) {
            self.key_not_in_scope(file, key, scope, info);
            return;
        }
        if !info.exec {
            // Non-exec keys reaching here are handled by the caller's `extra`.
            self.key_not_in_scope(file, key, scope, info);
            return;
        }
        if self.gate(file, key.span(), &format!("`{name}`"), keys::since(name, scope)) && name == "max_memory" {
            if let Some(d) = self.diags.last_mut() {
                d.notes.push(
                    "in version 1, `max_memory` is a site's limit and belongs in a `site`; elsewhere it is a step's own cap (1.1)".into(),
                );
            }
        }
        if name == "max_jobs" && self.version >= Version::V1_1 {
            self.err(
                Diagnostic::new("W203", "`max_jobs` is the language 1.0 spelling of `max_running`")
                    .at(file, key.span(), "deprecated spelling")
                    .help("write `max_running`; `max_jobs` still works and means the same")
                    .suggest(loc(file, key.span()), "max_running", "replace with `max_running`"),
            );
        }
        let canonical = keys::key(keys::canonical(info.name)).map(|k| k.name).unwrap_or(info.name);
        if let Some(v) = self.typed(file, value, info.ty, name) {
            if let Some(prev) = layer.settings.iter().find(|p| p.key == canonical) {
                let prev = prev.loc;
                let what = if name == canonical { format!("`{name}`") } else { format!("`{canonical}` (written `{name}`)") };
                self.err(
                    Diagnostic::new("E202", format!("{what} is set twice in this block"))
                        .at(file, key.span(), "set again here")
                        .also_loc(prev, "first set here")
                        .help("remove one of them; the later one would win"),
                );
            }
            let name_locs = match (&v, &value.kind) {
                (Value::Names(_), ExprKind::Ident(i)) => vec![loc(file, i.span)],
                (Value::Names(_), ExprKind::List(items)) => {
                    items.iter().filter(|it| matches!(it.kind, ExprKind::Ident(_))).map(|it| loc(file, it.span)).collect()
                }
                (Value::StrList(_), ExprKind::List(items)) if canonical == "pass_env" => {
                    items.iter().filter(|it| matches!(it.kind, ExprKind::Str(_))).map(|it| loc(file, it.span)).collect()
                }
                _ => Vec::new(),
            };
            let (v, name_locs) = match v {
                Value::StrList(names) if canonical == "pass_env" => {
                    let (kept, kept_locs, ds) = env_names(&names, &name_locs);
                    self.diags.extend(ds);
                    (Value::StrList(kept), kept_locs)
                }
                v => (v, name_locs),
            };
            layer.settings.push(Setting { key: canonical, value: v, loc: loc(file, s.span), name_locs });
        }
    }

    fn unknown_key(&mut self, file: FileId, key: &Key, scope: Scope) {
        let name = key.name();
        let all: Vec<&str> = keys::KEYS.iter().map(|k| k.name).chain(["env"]).collect();
        let in_scope: Vec<&str> = keys::keys_in(scope).map(|k| k.name).collect();
        let mut d = Diagnostic::new("E203", format!("unknown key `{name}`")).at(file, key.span(), "unknown key");
        if let Some(s) = did_you_mean(name, in_scope.iter().copied()).or_else(|| did_you_mean(name, all.iter().copied())) {
            d = d.help(format!("did you mean `{s}`?")).suggest(loc(file, key.span()), s, format!("replace with `{s}`"));
        } else {
            d = d.help(format!("keys allowed in {}: {}", scope.describe(), in_scope.join(", ")));
        }
        self.err(d);
    }

    fn key_not_in_scope(&mut self, file: FileId, key: &Key, scope: Scope, info: &keys::KeyInfo) {
        let wher: Vec<&str> = info.scopes.iter().map(|s| s.describe()).collect();
        self.err(
            Diagnostic::new("E204", format!("`{}` is not allowed in {}", info.name, scope.describe()))
                .at(file, key.span(), "not allowed here")
                .help(format!("`{}` belongs in {}", info.name, wher.join(" or "))),
        );
    }

    /// Check a value against a type; report and return None on mismatch.
    pub fn typed(&mut self, file: FileId, e: &Expr, ty: Ty, key: &str) -> Option<Value> {
        match typed_value(file, e, ty, key) {
            Ok(v) => v,
            Err(d) => {
                self.err(*d);
                None
            }
        }
    }

    fn template(&mut self, file: FileId, e: &Expr, key: &str) -> Option<Template> {
        match &e.kind {
            ExprKind::Str(s) => {
                let (t, ds) = parse_template(self.map, file, s);
                self.diags.extend(ds);
                for (name, l) in t.placeholders() {
                    if name.starts_with("inputs.") || name.starts_with("outputs.") {
                        let what = if name.starts_with("inputs.") { "`{inputs.NAME}`" } else { "`{outputs.NAME}`" };
                        self.gate(file, l.span, what, Version::V1_1);
                    }
                }
                Some(t)
            }
            ExprKind::Error => None,
            _ => {
                self.err(*type_mismatch(file, e, Ty::Template, key));
                None
            }
        }
    }

    fn site(&mut self, file: FileId, name: &Ident, body: &Body) {
        let at = loc(file, name.span);
        let fresh = self.define("site", &name.name, at);
        let mut site = Site {
            name: name.name.clone(),
            loc: at,
            layer: Layer::default(),
            backend: None,
            shared_fs: None,
            scratch: None,
            max_memory: None,
            max_cpus: None,
            max_walltime: None,
            max_array_size: None,
            max_submit: None,
            controller: None,
        };
        let mut layer = Layer::default();
        let mut take = |b: &mut Self, s: &Stmt, _: &mut Layer| -> bool {
            let StmtKind::Attr { key, value } = &s.kind else {
                return false;
            };
            let k = key.name();
            let Some(info) = keys::key(k) else {
                return false;
            };
            // `max_memory` in a site is the site's limit, checked after resolution (not a
            // value in the chain); elsewhere it is a step setting (language 1.1).
            if (info.exec && k != "max_memory") || !info.scopes.contains(&Scope::Site) {
                return false;
            }
            let vl = loc(file, value.span);
            if matches!(k, "max_submit" | "controller") {
                b.gate(file, key.span(), &format!("`{k}`"), keys::since(k, Scope::Site));
            }
            match k {
                "backend" => site.backend = b.typed(file, value, info.ty, k).and_then(|v| v.as_str().map(|s| (s.to_string(), vl))),
                "shared_fs" => {
                    site.shared_fs = b.typed(file, value, info.ty, k).and_then(|v| if let Value::Bool(x) = v { Some(x) } else { None })
                }
                "scratch" => site.scratch = b.template(file, value, k),
                "max_memory" => site.max_memory = b.typed(file, value, info.ty, k).and_then(|v| v.as_u64()).map(|v| (v, vl)),
                "max_walltime" => site.max_walltime = b.typed(file, value, info.ty, k).and_then(|v| v.as_u64()).map(|v| (v, vl)),
                "max_cpus" => {
                    site.max_cpus = b.typed(file, value, info.ty, k).and_then(|v| if let Value::Int(x) = v { Some((x, vl)) } else { None })
                }
                "max_array_size" => {
                    site.max_array_size =
                        b.typed(file, value, info.ty, k).and_then(|v| if let Value::Int(x) = v { Some((x, vl)) } else { None })
                }
                "max_submit" => {
                    site.max_submit =
                        b.typed(file, value, info.ty, k).and_then(|v| if let Value::Int(x) = v { Some((x, vl)) } else { None })
                }
                "controller" => site.controller = b.typed(file, value, info.ty, k).and_then(|v| v.as_str().map(|s| (s.to_string(), vl))),
                _ => return false,
            }
            true
        };
        self.exec_body(file, body, Scope::Site, &mut layer, &mut take);
        site.layer = layer;
        if fresh {
            self.model.sites.push(site);
        }
    }

    fn dimension(&mut self, file: FileId, name: &Ident, domain: Option<&Expr>) {
        let at = loc(file, name.span);
        if !self.define("dimension", &name.name, at) {
            return;
        }
        let mut dim = Dim { name: name.name.clone(), loc: at, domain: None, domain_loc: domain.map(|d| loc(file, d.span)) };
        if let Some(e) = domain {
            dim.domain = self.domain(file, e);
        }
        self.model.dims.push(dim);
    }

    fn domain(&mut self, file: FileId, e: &Expr) -> Option<Domain> {
        match &e.kind {
            ExprKind::Range { lo, hi, inclusive } => {
                let empty = if *inclusive { hi < lo } else { hi <= lo };
                if empty {
                    self.err(
                        Diagnostic::new("E303", "empty range")
                            .at(file, e.span, "this range has no values")
                            .help("`a..b` runs from a to b-1; `a..=b` from a to b"),
                    );
                }
                Some(Domain::Range { lo: *lo, hi: *hi, inclusive: *inclusive })
            }
            ExprKind::List(items) => {
                let mut out = Vec::new();
                let mut kind: Option<(bool, Span)> = None;
                for it in items {
                    let (lit, is_int) = match &it.kind {
                        ExprKind::Int(v) => (Literal::Int(*v), true),
                        ExprKind::Str(s) => (Literal::Str(s.value.clone()), false),
                        ExprKind::Error => continue,
                        _ => {
                            self.err(Diagnostic::new("E301", "dimension values are integers or strings").at(
                                file,
                                it.span,
                                "not an integer or a string",
                            ));
                            continue;
                        }
                    };
                    match kind {
                        None => kind = Some((is_int, it.span)),
                        Some((k, first)) if k != is_int => {
                            self.err(
                                Diagnostic::new("E301", "a dimension's values are all integers or all strings")
                                    .at(file, it.span, if is_int { "an integer" } else { "a string" })
                                    .also(file, first, if k { "the first value is an integer" } else { "the first value is a string" }),
                            );
                            continue;
                        }
                        _ => {}
                    }
                    out.push(lit);
                }
                Some(Domain::List(out))
            }
            ExprKind::Member { base, member } => match &base.kind {
                ExprKind::Call { func, args } if func.name == "table" => {
                    let path = self.table_path(file, func, args, e.span)?;
                    Some(Domain::Table { path, column: member.name.clone(), loc: loc(file, base.span), column_loc: loc(file, member.span) })
                }
                _ => {
                    self.err(Diagnostic::new("E301", "a dimension's domain is a range, a list or table(\"file.csv\").column").at(
                        file,
                        e.span,
                        "not a domain",
                    ));
                    None
                }
            },
            ExprKind::Error => None,
            ExprKind::Call { func, .. } if func.name == "table" => {
                self.err(
                    Diagnostic::new("E301", "a dimension takes one column of a table")
                        .at(file, e.span, "a whole table")
                        .help("write table(\"file.csv\").COLUMN"),
                );
                None
            }
            _ => {
                self.err(
                    Diagnostic::new("E301", "a dimension's domain is a range, a list or table(\"file.csv\").column")
                        .at(file, e.span, "not a domain")
                        .help("e.g. `0..104`, `[\"g\", \"r\"]` or `table(\"data/visits.csv\").visit`"),
                );
                None
            }
        }
    }

    fn table_path(&mut self, file: FileId, func: &Ident, args: &[Expr], span: Span) -> Option<std::path::PathBuf> {
        match args {
            [Expr { kind: ExprKind::Str(s), .. }] => Some(relative_to(&self.map.get(file).path, &s.value)),
            _ => {
                self.err(
                    Diagnostic::new("E301", "`table` takes one string: the CSV file's path")
                        .at(file, span, "bad arguments")
                        .also(file, func.span, "here")
                        .help("write table(\"data/file.csv\")"),
                );
                None
            }
        }
    }

    fn relation(&mut self, file: FileId, name: &Ident, dims: &[Ident], value: &Expr) {
        let at = loc(file, name.span);
        if !self.define("relation", &name.name, at) {
            return;
        }
        self.dup_dims(file, dims);
        let source = match &value.kind {
            ExprKind::Call { func, args } if func.name == "table" => match self.table_path(file, func, args, value.span) {
                Some(path) => RelSource::Table { path, loc: loc(file, value.span) },
                None => return,
            },
            ExprKind::Error => return,
            _ => RelSource::Expr { expr: value.clone(), file },
        };
        self.model.relations.push(Relation {
            name: name.name.clone(),
            loc: at,
            dims: dims.iter().map(|d| named(file, d)).collect(),
            source,
        });
    }

    fn dup_dims(&mut self, file: FileId, dims: &[Ident]) {
        for (i, d) in dims.iter().enumerate() {
            if let Some(first) = dims[..i].iter().find(|x| x.name == d.name) {
                self.err(Diagnostic::new("E202", format!("dimension `{}` is listed twice", d.name)).at(file, d.span, "listed again").also(
                    file,
                    first.span,
                    "first listed here",
                ));
            }
        }
    }

    fn dataset(&mut self, file: FileId, name: &Ident, dims: &[Ident], body: Option<&Body>) {
        let at = loc(file, name.span);
        let fresh = self.define("dataset", &name.name, at);
        self.dup_dims(file, dims);
        let mut ds = Dataset {
            name: name.name.clone(),
            loc: at,
            dims: dims.iter().map(|d| named(file, d)).collect(),
            source: None,
            stage: None,
            persist: None,
            archive: None,
            verify: None,
        };
        if let Some(body) = body {
            for s in &body.stmts {
                match &s.kind {
                    StmtKind::Error => {}
                    StmtKind::Attr { key, value } => {
                        let k = key.name();
                        let Some(info) = keys::key(k) else {
                            self.unknown_key(file, key, Scope::Dataset);
                            continue;
                        };
                        if !info.scopes.contains(&Scope::Dataset) {
                            self.key_not_in_scope(file, key, Scope::Dataset, info);
                            continue;
                        }
                        let vl = loc(file, value.span);
                        match k {
                            "source" => ds.source = self.template(file, value, k),
                            "archive" => ds.archive = self.template(file, value, k),
                            "verify" => {
                                ds.verify =
                                    self.typed(file, value, info.ty, k).and_then(|v| if let Value::Bool(b) = v { Some(b) } else { None })
                            }
                            "stage" => {
                                ds.stage = self.typed(file, value, info.ty, k).and_then(|v| match v.as_str() {
                                    Some("pre_job") => Some((Stage::PreJob, vl)),
                                    Some("in_job") => Some((Stage::InJob, vl)),
                                    Some("none") => Some((Stage::None, vl)),
                                    _ => None,
                                })
                            }
                            "persist" => {
                                ds.persist = self.typed(file, value, info.ty, k).and_then(|v| match v.as_str() {
                                    Some("archive") => Some((Persist::Archive, vl)),
                                    Some("scratch") => Some((Persist::Scratch, vl)),
                                    Some("discard") => Some((Persist::Discard, vl)),
                                    _ => None,
                                })
                            }
                            _ => {}
                        }
                    }
                    _ => self.not_allowed(file, s, Scope::Dataset),
                }
            }
        }
        if let Some((Persist::Archive, pl)) = ds.persist {
            if ds.archive.is_none() {
                self.err(
                    Diagnostic::new("E205", format!("dataset `{}` is archived but has no `archive` location", ds.name))
                        .at_loc(pl, "`persist = archive` needs `archive`")
                        .also_loc(at, "dataset declared here")
                        .help("add `archive = \"root://.../{dim}.fits\"` to the dataset"),
                );
            }
        }
        if let (Some(a), Some((p, _))) = (&ds.archive, ds.persist) {
            if p != Persist::Archive {
                self.err(
                    Diagnostic::new("E204", "`archive` without `persist = archive`")
                        .at_loc(a.loc, "this location is never used")
                        .help("set `persist = archive`, or remove `archive`"),
                );
            }
        }
        if fresh {
            self.model.datasets.push(ds);
        }
    }

    fn pipeline(&mut self, file: FileId, name: &Ident, body: &Body) {
        let at = loc(file, name.span);
        let fresh = self.define("pipeline", &name.name, at);
        let mut p = Pipeline {
            name: name.name.clone(),
            loc: at,
            layer: Layer::default(),
            configs: Vec::new(),
            steps: Vec::new(),
            orders: Vec::new(),
            subsets: Vec::new(),
        };
        let mut layer = Layer::default();
        let mut configs = Vec::new();
        let mut steps: Vec<Step> = Vec::new();
        // Step name -> its index in `steps`: duplicates are found without a scan per step.
        let mut step_at: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
        let mut orders = Vec::new();
        let mut subsets: Vec<Subset> = Vec::new();
        let pname = name.name.clone();
        self.exec_body(file, body, Scope::Pipeline, &mut layer, &mut |b, s, _| match &s.kind {
            StmtKind::Config { name, extends, body } => {
                if let Some(first) = configs.iter().find(|c: &&Config| c.name == name.name) {
                    let first = first.loc;
                    b.err(
                        Diagnostic::new("E202", format!("config `{}` is defined twice in pipeline `{pname}`", name.name))
                            .at(file, name.span, "defined again here")
                            .also_loc(first, "first defined here"),
                    );
                    return true;
                }
                let c = b.config(file, name, extends.as_ref(), body);
                configs.push(c);
                true
            }
            StmtKind::Step { name: sn, over, after, body } => {
                if let Some(q) = &sn.pipeline {
                    b.err(
                        Diagnostic::new("E204", "a qualified step name is not allowed in a pipeline")
                            .at(file, q.span, "qualifier not allowed here")
                            .help("`step PIPELINE.STEP` is for overrides inside a campaign"),
                    );
                }
                if let Some(&i) = step_at.get(&sn.name.name) {
                    let first = steps[i].loc;
                    b.err(
                        Diagnostic::new("E202", format!("step `{}` is defined twice in pipeline `{pname}`", sn.name.name))
                            .at(file, sn.name.span, "defined again here")
                            .also_loc(first, "first defined here"),
                    );
                    return true;
                }
                let st = b.step(file, &sn.name, over.as_ref(), after, body.as_ref());
                step_at.insert(st.name.clone(), steps.len());
                steps.push(st);
                true
            }
            StmtKind::OrderBefore { .. } | StmtKind::OrderSerial { .. } => {
                orders.extend(order_of(file, s));
                true
            }
            StmtKind::Subset { name, value } => {
                b.gate(file, head_span(b.map, file, s), "`subset`", Version::V1_1);
                let steps = b.name_list(file, value, "subset", Ty::StepList, "E202");
                if let Some(first) = subsets.iter().find(|x| x.name == name.name) {
                    let first = first.loc;
                    b.err(
                        Diagnostic::new("E202", format!("subset `{}` is defined twice in pipeline `{pname}`", name.name))
                            .at(file, name.span, "defined again here")
                            .also_loc(first, "first defined here"),
                    );
                    return true;
                }
                if steps.is_empty() && matches!(&value.kind, ExprKind::List(items) if items.is_empty()) {
                    b.err(
                        Diagnostic::new("E205", format!("subset `{}` names no steps", name.name))
                            .at(file, value.span, "empty")
                            .help("list the steps `--steps` should compile: `subset NAME = [a, b]`"),
                    );
                }
                subsets.push(Subset { name: name.name.clone(), loc: loc(file, name.span), steps });
                true
            }
            _ => false,
        });
        p.layer = layer;
        p.configs = configs;
        p.steps = steps;
        p.orders = orders;
        p.subsets = subsets;
        if fresh {
            self.model.pipelines.push(p);
        }
    }

    fn config(&mut self, file: FileId, name: &Ident, extends: Option<&Ident>, body: &Body) -> Config {
        let mut params: Vec<(String, ConfigValue, Loc)> = Vec::new();
        for s in &body.stmts {
            match &s.kind {
                StmtKind::Error => {}
                StmtKind::Attr { key, value } => {
                    let k = key.name().to_string();
                    if let Some(prev) = params.iter().find(|(n, _, _)| *n == k) {
                        let prev = prev.2;
                        self.err(
                            Diagnostic::new("E202", format!("config key `{k}` is set twice"))
                                .at(file, key.span(), "set again here")
                                .also_loc(prev, "first set here"),
                        );
                        continue;
                    }
                    let text = self.map.get(file).slice(value.span).to_string();
                    let v = match &value.kind {
                        ExprKind::Int(i) => ConfigValue::Int(*i),
                        ExprKind::Float(x) => ConfigValue::Float(*x),
                        ExprKind::Str(s) => ConfigValue::Str(s.value.clone()),
                        ExprKind::Bool(b) => ConfigValue::Bool(*b),
                        ExprKind::Error => continue,
                        ExprKind::Size { .. } | ExprKind::Duration(_) | ExprKind::List(_) | ExprKind::Ident(_) | ExprKind::Range { .. } => {
                            ConfigValue::Other(text)
                        }
                        _ => {
                            self.err(
                                Diagnostic::new("E301", "config values are numbers, strings, booleans, sizes, durations or lists").at(
                                    file,
                                    value.span,
                                    "not a config value",
                                ),
                            );
                            continue;
                        }
                    };
                    params.push((k, v, loc(file, s.span)));
                }
                _ => self.not_allowed(file, s, Scope::Config),
            }
        }
        Config { name: name.name.clone(), loc: loc(file, name.span), extends: extends.map(|e| named(file, e)), params }
    }

    fn step(&mut self, file: FileId, name: &Ident, over: Option<&(Vec<Ident>, Span)>, after: &[Dep], body: Option<&Body>) -> Step {
        let mut st = Step {
            name: name.name.clone(),
            loc: loc(file, name.span),
            over: over.map(|(d, _)| d.iter().map(|i| named(file, i)).collect()).unwrap_or_default(),
            over_loc: over.map(|(_, s)| loc(file, *s)),
            after: after.iter().map(|d| DepRef { step: named(file, &d.name), all: d.all.is_some() }).collect(),
            run: None,
            inputs: Vec::new(),
            outputs: Vec::new(),
            layer: Layer::default(),
        };
        if let Some((d, _)) = over {
            self.dup_dims(file, d);
        }
        let mut layer = Layer::default();
        let mut run = None;
        let mut inputs = Vec::new();
        let mut outputs = Vec::new();
        if let Some(body) = body {
            self.exec_body(file, body, Scope::Step, &mut layer, &mut |b, s, _| {
                let StmtKind::Attr { key, value } = &s.kind else {
                    return false;
                };
                match key.name() {
                    "run" => run = b.template(file, value, "run"),
                    "inputs" => {
                        inputs = b.dataset_list(file, value, true).into_iter().map(|(n, o)| InputRef { dataset: n, optional: o }).collect()
                    }
                    "outputs" => outputs = b.dataset_list(file, value, false).into_iter().map(|(n, _)| n).collect(),
                    _ => return false,
                }
                true
            });
        }
        if run.is_none() && !body.is_some_and(|b| self.attempted(file, b, "run")) {
            self.err(
                Diagnostic::new("E205", format!("step `{}` has no `run` command", name.name))
                    .at(file, name.span, "this step runs nothing")
                    .help("add `run = \"command {dim} ...\"` to the step's body"),
            );
        }
        st.layer = layer;
        st.run = run;
        st.inputs = inputs;
        st.outputs = outputs;
        st
    }

    fn dataset_list(&mut self, file: FileId, e: &Expr, allow_optional: bool) -> Vec<(Named, bool)> {
        let items: Vec<&Expr> = match &e.kind {
            ExprKind::List(items) => items.iter().collect(),
            ExprKind::Ident(_) => vec![e],
            ExprKind::Error => return Vec::new(),
            _ => {
                self.err(*type_mismatch(file, e, Ty::DatasetList, if allow_optional { "inputs" } else { "outputs" }));
                return Vec::new();
            }
        };
        let mut out: Vec<(Named, bool)> = Vec::new();
        for it in items {
            let (n, opt) = match &it.kind {
                ExprKind::Ident(i) => (named(file, i), false),
                ExprKind::Call { func, args } if func.name == "optional" && allow_optional => match args.as_slice() {
                    [Expr { kind: ExprKind::Ident(i), .. }] => (named(file, i), true),
                    _ => {
                        self.err(Diagnostic::new("E301", "`optional` takes one dataset name").at(
                            file,
                            it.span,
                            "expected optional(dataset)",
                        ));
                        continue;
                    }
                },
                ExprKind::Call { func, .. } if func.name == "optional" => {
                    self.err(Diagnostic::new("E204", "`optional` marks inputs only").at(file, func.span, "not allowed in outputs"));
                    continue;
                }
                ExprKind::Error => continue,
                _ => {
                    self.err(
                        Diagnostic::new("E301", "expected a dataset name")
                            .at(file, it.span, "not a dataset name")
                            .help("list datasets by name: [raw, bias] (no quotes)"),
                    );
                    continue;
                }
            };
            if let Some((first, _)) = out.iter().find(|(x, _)| x.name == n.name) {
                let first = first.loc;
                self.err(
                    Diagnostic::new("E202", format!("dataset `{}` is listed twice", n.name))
                        .at_loc(n.loc, "listed again")
                        .also_loc(first, "first listed here"),
                );
                continue;
            }
            out.push((n, opt));
        }
        out
    }

    fn campaign(&mut self, file: FileId, name: &Ident, body: &Body) {
        let at = loc(file, name.span);
        let fresh = self.define("campaign", &name.name, at);
        let mut c = Campaign {
            name: name.name.clone(),
            loc: at,
            uses: Vec::new(),
            coverage: None,
            layer: Layer::default(),
            overrides: Vec::new(),
            clusters: Vec::new(),
            notify: None,
            orders: Vec::new(),
            order_mode: OrderMode::BreadthFirst,
            order_loc: None,
            final_job: None,
        };
        let mut layer = Layer::default();
        let mut final_job: Option<FinalJob> = None;
        let mut uses: Vec<Use> = Vec::new();
        let mut coverage = None;
        let mut overrides: Vec<Override> = Vec::new();
        let mut clusters: Vec<Cluster> = Vec::new();
        let mut notify = None;
        let mut orders = Vec::new();
        let mut order_mode = OrderMode::BreadthFirst;
        let mut order_loc = None;
        self.exec_body(file, body, Scope::Campaign, &mut layer, &mut |b, s, _| {
            match &s.kind {
                StmtKind::Use { pipeline, config } => {
                    if let Some(first) = uses.iter().find(|u| u.pipeline.name == pipeline.name) {
                        let first = first.loc;
                        b.err(
                            Diagnostic::new("E210", format!("pipeline `{}` is used twice", pipeline.name))
                                .at(file, s.span, "used again here")
                                .also_loc(first, "first used here")
                                .help("a campaign runs each pipeline once, with one config"),
                        );
                        return true;
                    }
                    uses.push(Use {
                        pipeline: named(file, pipeline),
                        config: config.as_ref().map(|c| named(file, c)),
                        loc: loc(file, s.span),
                    });
                }
                StmtKind::Attr { key, value } if key.name() == "coverage" => {
                    if let Some((_, _, first)) = &coverage {
                        b.err(
                            Diagnostic::new("E202", "`coverage` is set twice")
                                .at(file, key.span(), "set again here")
                                .also_loc(*first, "first set here"),
                        );
                    }
                    coverage = Some((value.clone(), file, loc(file, s.span)));
                }
                StmtKind::Attr { key, value } if key.name() == "order" => {
                    if let Some(v) = b.typed(file, value, keys::key("order").map(|k| k.ty).unwrap_or(Ty::Str), "order") {
                        order_mode = if v.as_str() == Some("depth_first") { OrderMode::DepthFirst } else { OrderMode::BreadthFirst };
                        order_loc = Some(loc(file, s.span));
                    }
                }
                StmtKind::Step { name: sn, over, after, body } => {
                    if let Some((_, sp)) = over {
                        b.err(
                            Diagnostic::new("E204", "a campaign's step override cannot change `over`")
                                .at(file, *sp, "not allowed in an override")
                                .help("dimensions belong to the step's definition in its pipeline"),
                        );
                    }
                    if let Some(d) = after.first() {
                        b.err(
                            Diagnostic::new("E204", "a campaign's step override cannot add `after`")
                                .at(file, d.name.span, "not allowed in an override")
                                .help("use `order A before B` in the campaign to add an ordering"),
                        );
                    }
                    let mut ol = Layer::default();
                    if let Some(body) = body {
                        b.exec_body(file, body, Scope::StepOverride, &mut ol, &mut |_, _, _| false);
                    }
                    overrides.push(Override {
                        pipeline: sn.pipeline.as_ref().map(|p| named(file, p)),
                        step: named(file, &sn.name),
                        loc: loc(file, s.span),
                        layer: ol,
                    });
                }
                StmtKind::Cluster { name, body } => {
                    if let Some(first) = clusters.iter().find(|c| c.name == name.name) {
                        let first = first.loc;
                        b.err(
                            Diagnostic::new("E202", format!("cluster `{}` is defined twice", name.name))
                                .at(file, name.span, "defined again here")
                                .also_loc(first, "first defined here"),
                        );
                        return true;
                    }
                    clusters.push(b.cluster(file, name, body));
                }
                StmtKind::Notify { body } => {
                    if let Some(n) = &notify {
                        let n: &Notify = n;
                        b.err(
                            Diagnostic::new("E202", "`notify` is given twice")
                                .at(file, s.span, "given again here")
                                .also_loc(n.loc, "first given here"),
                        );
                    }
                    notify = Some(b.notify(file, s, body));
                }
                StmtKind::OrderBefore { .. } | StmtKind::OrderSerial { .. } => orders.extend(order_of(file, s)),
                StmtKind::Final { name, body } => {
                    b.gate(file, head_span(b.map, file, s), "`final`", Version::V1_1);
                    let f = b.final_job(file, name, body);
                    if let Some(first) = &final_job {
                        b.err(
                            Diagnostic::new("E202", "a campaign has one `final` job")
                                .at(file, name.span, format!("final job `{}`", f.name))
                                .also_loc(first.loc, format!("final job `{}` is given first", first.name))
                                .help("put both commands into one `run` (e.g. `a && b`); every engine has one final node"),
                        );
                    } else {
                        final_job = Some(f);
                    }
                }
                _ => return false,
            }
            true
        });
        if uses.is_empty() && !self.attempted(file, body, "use") {
            self.err(
                Diagnostic::new("E205", format!("campaign `{}` uses no pipeline", name.name))
                    .at(file, name.span, "nothing to run")
                    .help("add `use PIPELINE with CONFIG`"),
            );
        }
        if coverage.is_none() && !self.attempted(file, body, "coverage") {
            self.err(
                Diagnostic::new("E205", format!("campaign `{}` has no `coverage`", name.name))
                    .at(file, name.span, "no data IDs to process")
                    .help("add `coverage = ...`, e.g. `coverage = visit * detector`"),
            );
        }
        c.layer = layer;
        c.uses = uses;
        c.coverage = coverage;
        c.overrides = overrides;
        c.clusters = clusters;
        c.notify = notify;
        c.orders = orders;
        c.order_mode = order_mode;
        c.order_loc = order_loc;
        c.final_job = final_job;
        if fresh {
            self.model.campaigns.push(c);
        }
    }

    /// A list of names; a name listed twice is `dup_code` (E202, or E506 for a cluster's steps).
    fn name_list(&mut self, file: FileId, e: &Expr, key: &str, ty: Ty, dup_code: &'static str) -> Vec<Named> {
        let items: Vec<&Expr> = match &e.kind {
            ExprKind::List(items) => items.iter().collect(),
            ExprKind::Ident(_) => vec![e],
            ExprKind::Error => return Vec::new(),
            _ => {
                self.err(*type_mismatch(file, e, ty, key));
                return Vec::new();
            }
        };
        let mut out: Vec<Named> = Vec::new();
        for it in items {
            match &it.kind {
                ExprKind::Ident(i) => {
                    if let Some(first) = out.iter().find(|x| x.name == i.name) {
                        let first = first.loc;
                        self.err(
                            Diagnostic::new(dup_code, format!("`{}` is listed twice", i.name))
                                .at(file, i.span, "listed again")
                                .also_loc(first, "first listed here"),
                        );
                        continue;
                    }
                    out.push(named(file, i));
                }
                ExprKind::Error => {}
                _ => self.err(*type_mismatch(file, it, ty, key)),
            }
        }
        out
    }

    fn cluster(&mut self, file: FileId, name: &Ident, body: &Body) -> Cluster {
        let mut c = Cluster {
            name: name.name.clone(),
            loc: loc(file, name.span),
            steps: Vec::new(),
            by: Vec::new(),
            size: None,
            split_by: Vec::new(),
            max_quanta: None,
            max_running: None,
        };
        let int = |v: Option<Value>, at: Loc| match v {
            Some(Value::Int(i)) => u32::try_from(i).ok().map(|i| (i, at)),
            _ => None,
        };
        // Written, even if the value was rejected: no "missing" diagnostic on top of that one.
        let (mut steps_written, mut size_written, mut split_written, mut quanta_written) = (false, false, false, false);
        for s in &body.stmts {
            match &s.kind {
                StmtKind::Error => {}
                StmtKind::Attr { key, value } => match key.name() {
                    "steps" => {
                        steps_written = true;
                        c.steps = self.name_list(file, value, "steps", Ty::StepList, "E506")
                    }
                    "by" => c.by = self.name_list(file, value, "by", Ty::DimList, "E202"),
                    "split_by" => {
                        self.gate(file, key.span(), "`split_by`", Version::V1_1);
                        split_written = true;
                        c.split_by = self.name_list(file, value, "split_by", Ty::DimList, "E202");
                    }
                    "max_quanta" => {
                        self.gate(file, key.span(), "`max_quanta`", Version::V1_1);
                        quanta_written = true;
                        c.max_quanta = int(self.typed(file, value, Ty::Int(1, 1_000_000), "max_quanta"), loc(file, value.span));
                    }
                    "max_running" => {
                        self.gate(file, key.span(), "`max_running`", Version::V1_1);
                        c.max_running = int(self.typed(file, value, Ty::Int(1, 10_000_000), "max_running"), loc(file, value.span));
                    }
                    "size" => {
                        size_written = true;
                        c.size = self.typed(file, value, Ty::Int(1, 1_000_000), "size").and_then(|v| {
                            if let Value::Int(i) = v {
                                Some((i as u32, loc(file, value.span)))
                            } else {
                                None
                            }
                        })
                    }
                    k => match keys::key(k) {
                        Some(info) => self.key_not_in_scope(file, key, Scope::Cluster, info),
                        None => self.unknown_key(file, key, Scope::Cluster),
                    },
                },
                _ => self.not_allowed(file, s, Scope::Cluster),
            }
        }
        if c.steps.is_empty() && !steps_written {
            self.err(
                Diagnostic::new("E205", format!("cluster `{}` names no steps", c.name))
                    .at(file, name.span, "empty cluster")
                    .help("add `steps = [a, b]`"),
            );
        }
        match (&c.by.is_empty(), c.size) {
            (true, None) if !size_written => self.err(
                Diagnostic::new("E205", format!("cluster `{}` needs `by` or `size`", c.name))
                    .at(file, name.span, "how are quanta grouped?")
                    .help("`by = [visit]` groups quanta that share a visit; `size = 50` chunks a step's quanta 50 per job"),
            ),
            (false, Some((_, sl))) => self.err(
                Diagnostic::new("E506", format!("cluster `{}` sets both `by` and `size`", c.name))
                    .at_loc(sl, "`size` here")
                    .help("a cluster groups either by dimension values or in fixed-size chunks"),
            ),
            _ => {}
        }
        // A partitioned cluster: `split_by` and `max_quanta` cut the groups of a `by` cluster.
        let split_at = c.split_by.first().map(|d| d.loc).or(c.max_quanta.map(|(_, l)| l));
        if let (Some(at), true) = (split_at, c.by.is_empty()) {
            let what = if c.split_by.is_empty() { "`max_quanta`" } else { "`split_by`" };
            let mut d = Diagnostic::new("E506", format!("cluster `{}` sets {what} without `by`", c.name)).at_loc(at, "splits nothing");
            if let Some((_, sl)) = c.size {
                d = d.also_loc(sl, "`size` chunks without groups").help(format!(
                    "{what} cuts the groups of a `by` cluster; with `size` the jobs are already chunks of at most `size` quanta"
                ));
            } else {
                d = d.help("`split_by` and `max_quanta` cut the groups of a `by` cluster: add `by = [...]`");
            }
            self.err(d);
        } else if !c.split_by.is_empty() && c.max_quanta.is_none() && !quanta_written {
            self.err(
                Diagnostic::new("E205", format!("cluster `{}` sets `split_by` but no `max_quanta`", c.name))
                    .at_loc(c.split_by[0].loc, "split into jobs of how many quanta?")
                    .help("add `max_quanta = N`: each job takes at most N quanta, never splitting one `split_by` value"),
            );
        } else if c.split_by.is_empty() && c.max_quanta.is_some() && !split_written {
            if let Some((_, ml)) = c.max_quanta {
                self.err(
                    Diagnostic::new("E205", format!("cluster `{}` sets `max_quanta` but no `split_by`", c.name))
                        .at_loc(ml, "split where?")
                        .help("add `split_by = [DIM]`: a group is cut between values of DIM, never inside one"),
                );
            }
        }
        if c.size.is_some() && c.steps.len() > 1 {
            self.err(
                Diagnostic::new("E506", format!("cluster `{}` chunks by `size` but names {} steps", c.name, c.steps.len()))
                    .at(file, name.span, "`size` chunks one step")
                    .help("use `by` to group several steps, or one cluster per step"),
            );
        }
        c
    }

    fn final_job(&mut self, file: FileId, name: &Ident, body: &Body) -> FinalJob {
        let mut f = FinalJob { name: name.name.clone(), loc: loc(file, name.span), run: None, when: FinalWhen::Always, when_loc: None };
        let mut run_written = false;
        for st in &body.stmts {
            match &st.kind {
                StmtKind::Error => {}
                StmtKind::Attr { key, value } => match key.name() {
                    "run" => {
                        run_written = true;
                        f.run = self.template(file, value, "run");
                    }
                    "when" => {
                        let ty = keys::key("when").map(|k| k.ty).unwrap_or(Ty::Str);
                        if let Some(v) = self.typed(file, value, ty, "when") {
                            f.when = match v.as_str() {
                                Some("success") => FinalWhen::Success,
                                Some("failure") => FinalWhen::Failure,
                                _ => FinalWhen::Always,
                            };
                            f.when_loc = Some(loc(file, value.span));
                        }
                    }
                    k => match keys::key(k) {
                        Some(info) if info.exec => self.err(
                            Diagnostic::new("E204", format!("`{k}` is not allowed in a `final` job"))
                                .at(file, key.span(), "not allowed here")
                                .help(
                                    "a `final` job takes `run` and `when`; it runs with the campaign's settings (set them in the campaign)",
                                ),
                        ),
                        Some(info) => self.key_not_in_scope(file, key, Scope::Final, info),
                        None => self.unknown_key(file, key, Scope::Final),
                    },
                },
                _ => self.not_allowed(file, st, Scope::Final),
            }
        }
        if f.run.is_none() && !run_written {
            self.err(
                Diagnostic::new("E205", format!("final job `{}` has no `run` command", f.name))
                    .at(file, name.span, "this final job runs nothing")
                    .help("add `run = \"...\"`: a command with the placeholders of a step over `()`"),
            );
        }
        f
    }

    fn notify(&mut self, file: FileId, s: &Stmt, body: &Body) -> Notify {
        let mut n = Notify { loc: loc(file, s.span), on: Vec::new(), slow_after: None, command: None };
        for st in &body.stmts {
            match &st.kind {
                StmtKind::Error => {}
                StmtKind::Attr { key, value } => match key.name() {
                    "on" => {
                        n.on = self.name_list(file, value, "on", Ty::EventList, "E202");
                        for e in n.on.clone() {
                            if !keys::EVENTS.contains(&e.name.as_str()) {
                                let mut d = Diagnostic::new("E304", format!("unknown event `{}`", e.name)).at_loc(e.loc, "not an event");
                                d = match did_you_mean(&e.name, keys::EVENTS.iter().copied()) {
                                    Some(s) => d.help(format!("did you mean `{s}`? events are failure, done and slow")).suggest(
                                        e.loc,
                                        s,
                                        format!("replace with `{s}`"),
                                    ),
                                    None => d.help("events are failure, done and slow"),
                                };
                                self.err(d);
                            }
                        }
                    }
                    "slow_after" => n.slow_after = self.typed(file, value, Ty::Duration, "slow_after").and_then(|v| v.as_u64()),
                    "command" => n.command = self.template(file, value, "command"),
                    k => match keys::key(k) {
                        Some(info) => self.key_not_in_scope(file, key, Scope::Notify, info),
                        None => self.unknown_key(file, key, Scope::Notify),
                    },
                },
                _ => self.not_allowed(file, st, Scope::Notify),
            }
        }
        // A key written with a rejected value was reported already; it is not missing.
        let written = |k: &str| body.stmts.iter().any(|st| matches!(&st.kind, StmtKind::Attr { key, .. } if key.name() == k));
        if n.command.is_none() && !written("command") {
            self.err(
                Diagnostic::new("E205", "`notify` has no `command`")
                    .at(file, Span { lo: s.span.lo, hi: s.span.lo + 6 }, "nothing to run")
                    .help("add `command = \"mail -s '{campaign} {event}' ops@example.org\"`"),
            );
        }
        if n.on.iter().any(|e| e.name == "slow") && n.slow_after.is_none() && !written("slow_after") {
            self.err(
                Diagnostic::new("E205", "notification on `slow` needs `slow_after`")
                    .at(file, Span { lo: s.span.lo, hi: s.span.lo + 6 }, "when is a job slow?")
                    .help("add `slow_after = 12h`"),
            );
        }
        n
    }
}

/// The statement's first word (`equal`, `final`, `subset` ...).
fn head_span(map: &SourceMap, file: FileId, s: &Stmt) -> Span {
    Span { lo: s.span.lo, hi: s.span.lo + first_word_len(map.get(file).slice(s.span)) }
}

fn first_word_len(s: &str) -> u32 {
    s.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(s.len()).max(1) as u32
}

/// The names of a `pass_env` list (`locs[k]` where `names[k]` is written): invalid names are
/// E303 and a name listed twice is E202; both are left out of the names returned (with
/// their locations, when `locs` gives them).
pub fn env_names(names: &[String], locs: &[Loc]) -> (Vec<String>, Vec<Loc>, Vec<Diagnostic>) {
    let mut kept: Vec<String> = Vec::new();
    let mut kept_locs: Vec<Loc> = Vec::new();
    let mut first: Vec<(usize, Loc)> = Vec::new();
    let mut diags = Vec::new();
    for (k, n) in names.iter().enumerate() {
        let at = locs.get(k).or(locs.last()).copied();
        if !is_env_name(n) {
            let mut d = Diagnostic::new("E303", format!("`{n}` is not a valid environment variable name"));
            if let Some(l) = at {
                d = d.at_loc(l, "invalid name");
            }
            let help = if n.starts_with('$') {
                format!("name the variable without `$`: \"{}\"", n.trim_start_matches(['$', '{']).trim_end_matches('}'))
            } else {
                "environment variable names are letters, digits and `_`, not starting with a digit".to_string()
            };
            diags.push(d.help(help));
            continue;
        }
        if let Some(&(_, fl)) = first.iter().find(|(j, _)| names[*j] == *n) {
            let mut d = Diagnostic::new("E202", format!("`{n}` is listed twice"));
            if let Some(l) = at {
                d = d.at_loc(l, "listed again").also_loc(fl, "first listed here");
            }
            diags.push(d);
            continue;
        }
        if let Some(l) = at {
            first.push((k, l));
            if locs.len() == names.len() {
                kept_locs.push(l);
            }
        }
        kept.push(n.clone());
    }
    (kept, kept_locs, diags)
}

pub fn is_env_name(s: &str) -> bool {
    let mut cs = s.chars();
    matches!(cs.next(), Some(c) if c.is_ascii_alphabetic() || c == '_') && cs.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn order_of(file: FileId, s: &Stmt) -> Option<Order> {
    match &s.kind {
        StmtKind::OrderBefore { first, second } => {
            Some(Order::Before { first: named(file, first), second: named(file, second), loc: loc(file, s.span) })
        }
        StmtKind::OrderSerial { step, dim } => {
            Some(Order::Serial { step: named(file, step), dim: named(file, dim), loc: loc(file, s.span) })
        }
        _ => None,
    }
}

fn found_desc(e: &Expr) -> &'static str {
    match &e.kind {
        ExprKind::Int(_) => "an integer",
        ExprKind::Float(_) => "a number",
        ExprKind::Size { .. } => "a size",
        ExprKind::Duration(_) => "a duration",
        ExprKind::Str(_) => "a string",
        ExprKind::Bool(_) => "a boolean",
        ExprKind::Ident(_) => "a name",
        ExprKind::List(_) => "a list",
        ExprKind::Range { .. } => "a range",
        ExprKind::Call { .. } => "a call",
        _ => "an expression",
    }
}

pub fn type_mismatch(file: FileId, e: &Expr, ty: Ty, key: &str) -> Box<Diagnostic> {
    let found = found_desc(e);
    let code = match (ty, &e.kind) {
        (Ty::Size, ExprKind::Duration(_)) | (Ty::Duration, ExprKind::Size { .. }) => "E302",
        _ => "E301",
    };
    let mut d = Diagnostic::new(code, format!("`{key}` expects {}, found {found}", ty.describe())).at(
        file,
        e.span,
        format!("expected {}", ty.describe()),
    );
    d = match (ty, &e.kind) {
        (Ty::Size, ExprKind::Int(n)) => d.help(format!("sizes need a unit: `{n}GiB` or `{n}MiB`")),
        (Ty::Duration, ExprKind::Int(n)) => d.help(format!("durations need a unit: `{n}h`, `{n}m` or `{n}s`")),
        (Ty::Size, ExprKind::Duration(_)) => d.help("sizes use B, KiB, MiB, GiB, TiB (or KB, MB, GB, TB); `m` means minutes"),
        (Ty::Duration, ExprKind::Size { .. }) => d.help("durations use s, m, h, d"),
        (Ty::Str | Ty::Template, ExprKind::Ident(i)) => d.help(format!("quote it: \"{}\"", i.name)),
        (Ty::Int(..), ExprKind::Str(s)) if s.value.parse::<i64>().is_ok() => d.help(format!("drop the quotes: {}", s.value)),
        (Ty::StepList | Ty::DimList | Ty::DatasetList | Ty::SiteRef | Ty::SiteList, ExprKind::Str(s)) => {
            d.help(format!("names are written without quotes: {}", s.value))
        }
        (Ty::Enum(opts), _) => d.help(format!("one of: {}", opts.join(", "))),
        _ => d,
    };
    Box::new(d)
}

/// Check `e` against `ty`.  `Ok(None)`: the value was already an error node.
pub fn typed_value(file: FileId, e: &Expr, ty: Ty, key: &str) -> Result<Option<Value>, Box<Diagnostic>> {
    if matches!(e.kind, ExprKind::Error) {
        return Ok(None);
    }
    let mismatch = || Err(type_mismatch(file, e, ty, key));
    let range_err = |msg: String| Err(Box::new(Diagnostic::new("E303", msg).at(file, e.span, "out of range")));
    let v = match (ty, &e.kind) {
        (Ty::Size, ExprKind::Size { bytes, .. }) => {
            if *bytes == 0 {
                return range_err(format!("`{key}` must be more than zero"));
            }
            Value::Size(*bytes)
        }
        (Ty::Duration, ExprKind::Duration(s)) => {
            if *s == 0 {
                return range_err(format!("`{key}` must be more than zero"));
            }
            Value::Duration(*s)
        }
        (Ty::Int(lo, hi), ExprKind::Int(v)) => {
            if *v < lo || *v > hi {
                return range_err(format!("`{key}` must be between {lo} and {hi}, found {v}"));
            }
            Value::Int(*v)
        }
        (Ty::FloatMin(min), ExprKind::Float(x)) => {
            if *x < min || !x.is_finite() {
                return range_err(format!("`{key}` must be at least {min:.1}, found {x}"));
            }
            Value::Float(*x)
        }
        (Ty::FloatMin(min), ExprKind::Int(x)) => {
            if (*x as f64) < min {
                return range_err(format!("`{key}` must be at least {min:.1}, found {x}"));
            }
            Value::Float(*x as f64)
        }
        (Ty::Str, ExprKind::Str(s)) => Value::Str(s.value.clone()),
        (Ty::Bool, ExprKind::Bool(b)) => Value::Bool(*b),
        (Ty::Enum(opts), ExprKind::Ident(i)) => {
            if !opts.contains(&i.name.as_str()) {
                let mut d =
                    Diagnostic::new("E304", format!("`{}` is not a valid value for `{key}`", i.name)).at(file, i.span, "invalid choice");
                d = match did_you_mean(&i.name, opts.iter().copied()) {
                    Some(s) => d.help(format!("did you mean `{s}`? `{key}` is one of: {}", opts.join(", "))).suggest(
                        Loc { file, span: i.span },
                        s,
                        format!("replace with `{s}`"),
                    ),
                    None => d.help(format!("`{key}` is one of: {}", opts.join(", "))),
                };
                return Err(Box::new(d));
            }
            Value::Word(i.name.clone())
        }
        (Ty::Enum(opts), ExprKind::Str(s)) if opts.contains(&s.value.as_str()) => {
            return Err(Box::new(
                Diagnostic::new("E301", format!("`{key}` takes a bare word, not a string"))
                    .at(file, e.span, "quoted")
                    .help(format!("write {} without quotes", s.value))
                    .suggest(Loc { file, span: e.span }, s.value.clone(), "remove the quotes"),
            ))
        }
        (Ty::IntList(lo, hi), ExprKind::List(items)) => {
            let mut out = Vec::new();
            for it in items {
                match &it.kind {
                    ExprKind::Int(v) if *v >= lo && *v <= hi => out.push(*v),
                    ExprKind::Int(v) => {
                        return Err(Box::new(
                            Diagnostic::new("E303", format!("`{key}` values must be between {lo} and {hi}, found {v}")).at(
                                file,
                                it.span,
                                "out of range",
                            ),
                        ))
                    }
                    ExprKind::Error => {}
                    _ => return Err(type_mismatch(file, it, Ty::Int(lo, hi), key)),
                }
            }
            Value::IntList(out)
        }
        (Ty::StrList, ExprKind::List(items)) => {
            let mut out = Vec::new();
            for it in items {
                match &it.kind {
                    ExprKind::Str(s) => out.push(s.value.clone()),
                    ExprKind::Error => {}
                    _ => return Err(type_mismatch(file, it, Ty::Str, key)),
                }
            }
            Value::StrList(out)
        }
        (Ty::SiteRef, ExprKind::Ident(i)) => Value::Names(vec![i.name.clone()]),
        (Ty::SiteList, ExprKind::List(items)) => {
            let mut out = Vec::new();
            for it in items {
                match &it.kind {
                    ExprKind::Ident(i) => out.push(i.name.clone()),
                    ExprKind::Error => {}
                    _ => return Err(type_mismatch(file, it, Ty::SiteRef, key)),
                }
            }
            Value::Names(out)
        }
        (Ty::Software, ExprKind::Call { func, args }) if func.name == "container" || func.name == "setup" => match args.as_slice() {
            [Expr { kind: ExprKind::Str(s), .. }] if !s.value.trim().is_empty() => {
                if func.name == "container" {
                    Value::Software(Software::Container(s.value.clone()))
                } else {
                    Value::Software(Software::Setup(s.value.clone()))
                }
            }
            _ => {
                return Err(Box::new(
                    Diagnostic::new("E301", format!("`{}` takes one non-empty string", func.name))
                        .at(file, e.span, "bad arguments")
                        .help(format!("write {}(\"...\")", func.name)),
                ))
            }
        },
        (Ty::Software, ExprKind::Call { func, .. }) => {
            let mut d =
                Diagnostic::new("E304", format!("unknown software kind `{}`", func.name)).at(file, func.span, "not container or setup");
            if let Some(s) = did_you_mean(&func.name, ["container", "setup"]) {
                d = d.help(format!("did you mean `{s}`?")).suggest(Loc { file, span: func.span }, s, format!("replace with `{s}`"));
            } else {
                d = d.help("software is container(\"image:tag\") or setup(\"source /path/setup.sh\")");
            }
            return Err(Box::new(d));
        }
        _ => return mismatch(),
    };
    Ok(Some(v))
}

/// Split a template string into literal text and `{placeholders}`, with exact spans.
/// Placeholders are found in the raw source text (escapes never produce braces).
pub fn parse_template(map: &SourceMap, file: FileId, s: &StrLit) -> (Template, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    let src = map.get(file);
    let raw_full = src.slice(s.span);
    let base = s.span.lo as usize + 1;
    let raw = raw_full.strip_prefix('"').unwrap_or(raw_full);
    let raw = raw.strip_suffix('"').unwrap_or(raw);
    let mut parts = Vec::new();
    let mut lit = String::new();
    let bytes = raw.as_bytes();
    let mut i = 0;
    let decode = |t: &str, out: &mut String| {
        if !t.contains('\\') {
            out.push_str(t);
            return;
        }
        let mut cs = t.chars();
        while let Some(c) = cs.next() {
            if c == '\\' {
                match cs.next() {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some(o) => out.push(o),
                    None => {}
                }
            } else {
                out.push(c);
            }
        }
    };
    let mut run_start = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'{' if bytes.get(i + 1) == Some(&b'{') => {
                decode(&raw[run_start..i], &mut lit);
                lit.push('{');
                i += 2;
                run_start = i;
            }
            b'}' if bytes.get(i + 1) == Some(&b'}') => {
                decode(&raw[run_start..i], &mut lit);
                lit.push('}');
                i += 2;
                run_start = i;
            }
            b'{' => {
                decode(&raw[run_start..i], &mut lit);
                let close = raw[i + 1..].find(['}', '{']).map(|j| i + 1 + j);
                match close {
                    Some(j) if bytes[j] == b'}' => {
                        let name = raw[i + 1..j].trim();
                        let span = Span::new(base + i, base + j + 1);
                        if !lit.is_empty() {
                            parts.push(Part::Lit(std::mem::take(&mut lit)));
                        }
                        if !valid_placeholder(name) {
                            let help = if name.starts_with("inputs.") || name.starts_with("outputs.") {
                                "`{inputs.NAME}` and `{outputs.NAME}` take one dataset name, e.g. {inputs.raw}"
                            } else {
                                "placeholders are names like {visit} or {config.KEY}; write literal braces as {{ and }}"
                            };
                            diags.push(
                                Diagnostic::new("E206", format!("`{{{name}}}` is not a placeholder"))
                                    .at(file, span, "malformed placeholder")
                                    .help(help),
                            );
                        }
                        parts.push(Part::Ph { name: name.to_string(), loc: Loc { file, span } });
                        i = j + 1;
                        run_start = i;
                    }
                    _ => {
                        diags.push(
                            Diagnostic::new("E206", "unclosed `{` in template")
                                .at(file, Span::new(base + i, base + i + 1), "this `{` is never closed")
                                .help("close the placeholder with `}`, or write a literal brace as `{{`"),
                        );
                        i += 1;
                    }
                }
            }
            b'}' => {
                diags.push(
                    Diagnostic::new("E206", "single `}` in template")
                        .at(file, Span::new(base + i, base + i + 1), "closes no placeholder")
                        .help("write a literal brace as `}}`"),
                );
                i += 1;
            }
            _ => i += 1,
        }
    }
    decode(&raw[run_start.min(raw.len())..], &mut lit);
    if !lit.is_empty() {
        parts.push(Part::Lit(lit));
    }
    (Template { text: s.value.clone(), parts, loc: Loc { file, span: s.span } }, diags)
}

/// Is `name` (the text between the braces) a well-formed placeholder?  `NAME`, or
/// `config.KEY` (any key without spaces or braces), or `inputs.NAME` / `outputs.NAME` with a
/// dataset name (language 1.1).  Malformed ones are E206 here, and not looked at again.
pub(crate) fn valid_placeholder(name: &str) -> bool {
    let (head, rest) = match name.split_once('.') {
        Some((h, r)) => (h, Some(r)),
        None => (name, None),
    };
    let ident_ok = |s: &str| {
        let mut cs = s.chars();
        matches!(cs.next(), Some(c) if c.is_ascii_alphabetic() || c == '_') && cs.all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    if matches!(head, "inputs" | "outputs") && rest.is_some() {
        return rest.is_some_and(ident_ok);
    }
    ident_ok(head) && rest.is_none_or(|r| !r.is_empty() && r.chars().all(|c| !c.is_whitespace() && c != '{' && c != '}'))
}
