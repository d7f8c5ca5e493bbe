//! Semantic checking: load, build the model, verify, resolve settings.

pub mod build;
pub mod keys;
pub mod load;
pub mod model;
pub mod resolve;
pub mod subsets;
pub mod tables;
pub mod verify;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use crate::diag::{Diagnostic, Diagnostics};
use crate::fs::Fs;
use crate::source::FileId;
use crate::source::{Loc, Span};
use crate::syntax::ast::{Expr, ExprKind};
use load::Program;
use model::{ConfigValue, Model};
use resolve::{CliSet, ConfigSet};

#[derive(Clone, Debug, Default)]
pub struct Options {
    /// `--set KEY=VALUE` / `--set STEP.KEY=VALUE`, as written.
    pub sets: Vec<String>,
    /// The environment of the submitting shell, for `pass_env`: every name a `pass_env`
    /// lists must be set in it (E408), and [`Checked::passed_env`] captures the values.
    /// `None` (tests, the language server, `bpsc explain`): names are not checked and
    /// nothing is captured.  The checker itself never reads the process environment.
    pub env: Option<BTreeMap<String, String>>,
    /// `--allow-unknown-steps`: settings for a step the campaign does not have (a campaign
    /// `step X { }` block, `--set X.KEY=...`) are ignored with W205 instead of refused (E201),
    /// as operators' configs carry settings for steps a pipeline version dropped.
    pub allow_unknown_steps: bool,
    /// Keep each clean table's checked columns for lowering (a compile), so that lowering
    /// does not parse the tables a second time.  Off for `check` and the language server.
    pub keep_tables: bool,
}

impl Options {
    /// Options of a command run from a shell: its `--set`s, and its own environment for
    /// `pass_env` (variables whose name or value is not UTF-8 are left out).
    pub fn cli(sets: Vec<String>) -> Options {
        let env = std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))).collect();
        Options { sets, env: Some(env), allow_unknown_steps: false, keep_tables: false }
    }

    /// The same, with `--allow-unknown-steps` as given.
    pub fn unknown_steps(mut self, allow: bool) -> Options {
        self.allow_unknown_steps = allow;
        self
    }
}

pub struct Checked {
    pub program: Program,
    pub model: Model,
    pub tables: tables::Tables,
    pub sets: Vec<CliSet>,
    /// `--set config.KEY=VALUE` / `--set PIPELINE.config.KEY=VALUE` (language 1.1), in order;
    /// [`resolve::resolve_config`] applies them.
    pub config_sets: Vec<ConfigSet>,
    /// The values, from [`Options::env`], of every variable some `pass_env` names: what the
    /// jobs will see, captured at compile time (empty when `Options::env` is `None`).
    pub passed_env: BTreeMap<String, String>,
    pub diags: Diagnostics,
}

impl Checked {
    pub fn has_errors(&self) -> bool {
        self.diags.has_errors()
    }
}

/// Check one campaign file and everything it includes.
pub fn check(fs: &dyn Fs, path: &Path, opts: &Options) -> Checked {
    let mut diags = Vec::new();
    let mut program = load::load(fs, path, &mut diags);
    let (sets, config_sets) = parse_sets(&mut program, &opts.sets, &mut diags);
    let mut b = build::Builder::new(&program.map);
    for m in &program.modules {
        b.module(m);
    }
    let mut model = b.model;
    model.equal_dims = model::EqualDims::new(&model.equals);
    diags.extend(b.diags);
    for s in &sets {
        if let (Some(loc), model::Value::Names(names)) = (s.loc, &s.value) {
            let known: Vec<&str> = model.sites.iter().map(|x| x.name.as_str()).collect();
            for n in names.iter().filter(|n| !known.contains(&n.as_str())) {
                diags.push(
                    verify::undefined("site", &model::Named { name: n.clone(), loc }, &known).note("named by a --set on the command line"),
                );
            }
        }
    }
    check_config_sets(&model, &config_sets, &mut diags);
    let passed_env = pass_env_values(&model, &sets, opts.env.as_ref(), &mut diags);
    let tables = tables::load_all(fs, &mut program.map, &model, opts.keep_tables, &mut diags);
    let dim_kinds = tables::dim_kinds(&model, &tables);
    let mut v = verify::Verifier {
        model: &model,
        diags: Vec::new(),
        sets: &sets,
        config_sets: &config_sets,
        used: Default::default(),
        dim_kinds: &dim_kinds,
        coverage_stack: Vec::new(),
        coverage_cycles: Default::default(),
        allow_unknown_steps: opts.allow_unknown_steps,
    };
    v.run();
    let used = std::mem::take(&mut v.used);
    diags.extend(v.diags);
    // Unused definitions are reported for error-free programs only: a statement dropped by a
    // syntax error or a reference that failed to resolve leaves the uses incomplete, and the
    // warnings would then blame definitions the user did use.
    if !model.campaigns.is_empty() && !diags.iter().any(|d| d.is_error()) {
        unused(&model, &used, &mut diags);
    }
    let mut d = Diagnostics { items: diags };
    d.sort();
    Checked { program, model, tables, sets, config_sets, passed_env, diags: d }
}

/// Every `pass_env` name written anywhere (each with where it is written), checked against
/// the submitting environment when there is one: E408 for a name it does not set.  Returns
/// the values of the names it does set.
fn pass_env_values(
    model: &Model,
    sets: &[CliSet],
    env: Option<&BTreeMap<String, String>>,
    diags: &mut Vec<Diagnostic>,
) -> BTreeMap<String, String> {
    let Some(env) = env else { return BTreeMap::new() };
    let mut layers: Vec<&model::Layer> = vec![&model.defaults];
    layers.extend(model.sites.iter().map(|s| &s.layer));
    layers.extend(model.pipelines.iter().map(|p| &p.layer));
    layers.extend(model.pipelines.iter().flat_map(|p| p.steps.iter().map(|s| &s.layer)));
    layers.extend(model.campaigns.iter().map(|c| &c.layer));
    layers.extend(model.campaigns.iter().flat_map(|c| c.overrides.iter().map(|o| &o.layer)));
    let mut written: Vec<(String, Option<Loc>)> = Vec::new();
    for l in layers {
        for s in l.settings.iter().filter(|s| s.key == "pass_env") {
            if let model::Value::StrList(v) = &s.value {
                for (k, n) in v.iter().enumerate() {
                    written.push((n.clone(), Some(s.name_locs.get(k).copied().unwrap_or(s.loc))));
                }
            }
        }
    }
    for s in sets.iter().filter(|s| s.key == "pass_env") {
        if let model::Value::StrList(v) = &s.value {
            written.extend(v.iter().map(|n| (n.clone(), s.loc)));
        }
    }
    let mut out = BTreeMap::new();
    for (name, at) in written {
        match env.get(&name) {
            Some(v) => {
                out.insert(name, v.clone());
            }
            None => {
                let mut d = Diagnostic::new("E408", format!("`pass_env` names `{name}`, which is not set in this environment"));
                if let Some(l) = at {
                    d = d.at_loc(l, "not set at compile time");
                }
                diags.push(
                    d.help(format!("export {name} in the shell that runs bpsc, or remove it from `pass_env`"))
                        .note("the jobs see the values the variables have when the campaign is compiled"),
                );
            }
        }
    }
    out
}

/// `--set [PIPELINE.]config.KEY=...`: the pipeline exists (E201), has a config to override
/// (E205), and the key is one its config defines (W204 when it adds a key instead).
fn check_config_sets(model: &Model, sets: &[ConfigSet], diags: &mut Vec<Diagnostic>) {
    for s in sets {
        if let Some(p) = &s.pipeline {
            if model.pipeline(p).is_none() {
                let known: Vec<&str> = model.pipelines.iter().map(|p| p.name.as_str()).collect();
                let at = model::Named { name: p.clone(), loc: s.pipeline_loc.unwrap_or(s.loc) };
                diags.push(verify::undefined("pipeline", &at, &known).note("named by a --set on the command line"));
                continue;
            }
        }
        // The configs the override lands in: those the campaigns choose for the pipelines it
        // applies to (every config of a pipeline no campaign uses).
        let mut keys: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
        let mut any_config = false;
        for p in model.pipelines.iter().filter(|p| s.applies_to(&p.name)) {
            let uses: Vec<&model::Use> = model.campaigns.iter().flat_map(|c| c.uses.iter()).filter(|u| u.pipeline.name == p.name).collect();
            let names: Vec<Option<&str>> = if uses.is_empty() {
                p.configs.iter().map(|c| Some(c.name.as_str())).collect()
            } else {
                uses.iter().map(|u| u.config.as_ref().map(|c| c.name.as_str())).collect()
            };
            for n in names {
                let r = resolve::resolve_config(p, n, &[]);
                any_config |= r.name.is_some();
                keys.extend(r.params.into_keys());
            }
        }
        let at = s.loc;
        if !any_config {
            let whose = match &s.pipeline {
                Some(p) => format!("pipeline `{p}` has no config to override"),
                None => "no pipeline has a config to override".to_string(),
            };
            diags.push(
                Diagnostic::new("E205", format!("`--set {}`: {whose}", s.text))
                    .at_loc(at, "overrides nothing")
                    .help("define `config NAME { KEY = ... }` in the pipeline and choose it with `use PIPELINE with NAME`"),
            );
            continue;
        }
        if !keys.contains(&s.key) {
            let mut d = Diagnostic::new("W204", format!("`--set {}` adds `{}`, which the config does not define", s.text, s.key))
                .at_loc(s.key_loc, "a new config key");
            d = match crate::diag::did_you_mean(&s.key, keys.iter().map(|k| k.as_str())) {
                Some(k) => d.help(format!("did you mean `config.{k}`? as written, this adds a key and overrides nothing")),
                None => d.help(format!(
                    "config keys: {}; configs are free-form, so the key is added",
                    keys.iter().cloned().collect::<Vec<_>>().join(", ")
                )),
            };
            diags.push(d);
        }
    }
}

fn unused(model: &Model, used: &verify::Used, diags: &mut Vec<Diagnostic>) {
    let mut emit = |kind: &'static str, name: &str, loc: Loc| {
        if !used.has(kind, name) {
            diags.push(
                Diagnostic::new("W201", format!("{kind} `{name}` is never used"))
                    .at_loc(loc, "defined here, used nowhere")
                    .help(format!("remove it, or use it in a coverage, step or dataset")),
            );
        }
    };
    for d in &model.dims {
        emit("dimension", &d.name, d.loc);
    }
    for r in &model.relations {
        // A relation is used when a coverage names it, or implicitly when it links a step's
        // dimensions; only the explicit use is tracked here, so relations are used when any
        // of their dimensions is.
        if !used.has("relation", &r.name) && !r.dims.iter().any(|d| used.has("dimension", &d.name)) {
            emit("relation", &r.name, r.loc);
        }
    }
    for c in &model.coverages {
        emit("coverage", &c.name, c.loc);
    }
    for d in &model.datasets {
        emit("dataset", &d.name, d.loc);
    }
}

/// Parse `--set` arguments.  Each becomes a virtual file `<--set N>` so diagnostics can point
/// into it.  `config.KEY=...` and `PIPELINE.config.KEY=...` (language 1.1) override science
/// configs; the others are execution settings.
fn parse_sets(program: &mut Program, sets: &[String], diags: &mut Vec<Diagnostic>) -> (Vec<CliSet>, Vec<ConfigSet>) {
    let mut out = Vec::new();
    let mut configs = Vec::new();
    for (n, text) in sets.iter().enumerate() {
        let file = program.map.add(format!("<--set {}>", n + 1).into(), Arc::from(text.as_str()));
        let Some((lhs, rhs)) = text.split_once('=') else {
            diags.push(
                Diagnostic::new("E100", format!("`--set {text}` needs KEY=VALUE"))
                    .at(file, Span::new(0, text.len()), "no `=`")
                    .help("e.g. --set memory=4GiB, --set coadd.memory=32GiB or --set config.KEY=VALUE"),
            );
            continue;
        };
        let whole = Loc { file, span: Span::new(0, text.len()) };
        let lead = lhs.len() - lhs.trim_start().len();
        if let Some((pipeline, key_lo)) = config_target(lhs.trim()) {
            let key = &lhs.trim()[key_lo..];
            if key.trim().is_empty() {
                let config_word = Span::new(lead + key_lo - "config.".len(), lead + key_lo);
                diags.push(
                    Diagnostic::new("E100", format!("`--set {text}` names no config key"))
                        .at(file, config_word, "expected a key after `config.`")
                        .help("e.g. --set config.pipeline_yaml='\"...\"' or --set drp.config.doCrosstalk=false"),
                );
                continue;
            }
            if pipeline == Some("") {
                diags.push(
                    Diagnostic::new("E100", format!("`--set {text}` names no pipeline before `.config.`"))
                        .at(file, Span::new(lead, lead + 1), "expected a pipeline name")
                        .help("write `--set config.KEY=VALUE` for every pipeline, or `--set PIPELINE.config.KEY=VALUE`"),
                );
                continue;
            }
            let Some(value) = set_value(file, lhs, rhs, diags) else { continue };
            let text_of = &text[lhs.len() + 1..];
            let v = match &value.kind {
                ExprKind::Int(i) => ConfigValue::Int(*i),
                ExprKind::Float(x) => ConfigValue::Float(*x),
                ExprKind::Str(s) => ConfigValue::Str(s.value.clone()),
                ExprKind::Bool(b) => ConfigValue::Bool(*b),
                ExprKind::Size { .. } | ExprKind::Duration(_) | ExprKind::List(_) | ExprKind::Ident(_) | ExprKind::Range { .. } => {
                    ConfigValue::Other(text_of.trim().to_string())
                }
                ExprKind::Error => continue,
                _ => {
                    diags.push(
                        Diagnostic::new("E301", "config values are numbers, strings, booleans, sizes, durations or lists")
                            .at(file, value.span, "not a config value")
                            .help("quote a string: --set 'config.KEY=\"value\"'"),
                    );
                    continue;
                }
            };
            let pipeline_loc = pipeline.map(|p| Loc { file, span: Span::new(lead, lead + p.len()) });
            configs.push(ConfigSet {
                pipeline: pipeline.map(str::to_string),
                key: key.to_string(),
                value: v,
                text: text.clone(),
                loc: whole,
                pipeline_loc,
                key_loc: Loc { file, span: Span::new(lead + key_lo, lead + key_lo + key.len()) },
            });
            continue;
        }
        let (step, key) = match lhs.trim().rsplit_once('.') {
            Some((s, k)) => (Some(s.to_string()), k),
            None => (None, lhs.trim()),
        };
        // The key itself, after any `STEP.` prefix.
        let key_lo = lhs.trim_end().len() - key.len();
        let kspan = Span::new(key_lo, key_lo + key.len());
        let Some(info) = keys::key(key).filter(|k| k.exec) else {
            let cands: Vec<&str> = keys::exec_keys().map(|k| k.name).collect();
            let mut d = Diagnostic::new("E203", format!("`--set`: `{key}` is not an execution setting")).at(file, kspan, "unknown key");
            if let Some(s) = crate::diag::did_you_mean(key, cands.iter().copied()) {
                d = d.help(format!("did you mean `{s}`?"));
            }
            diags.push(d);
            continue;
        };
        let Some(value) = set_value(file, lhs, rhs, diags) else { continue };
        let typed = build::typed_value(file, &value, info.ty, key).map(|v| match v {
            Some(model::Value::StrList(names)) if info.name == "pass_env" => {
                let (kept, _, ds) = build::env_names(&names, &vec![whole; names.len()]);
                diags.extend(ds);
                Some(model::Value::StrList(kept))
            }
            v => v,
        });
        match typed {
            Ok(Some(v)) => out.push(CliSet {
                step,
                key: keys::key(keys::canonical(info.name)).map(|k| k.name).unwrap_or(info.name),
                value: v,
                text: text.clone(),
                loc: Some(whole),
            }),
            Ok(None) => {}
            Err(d) => diags.push(*d),
        }
    }
    (out, configs)
}

/// `config.KEY` or `PIPELINE.config.KEY`: the pipeline, if any, and where KEY starts.
fn config_target(lhs: &str) -> Option<(Option<&str>, usize)> {
    if lhs.starts_with("config.") {
        return Some((None, "config.".len()));
    }
    let (p, rest) = lhs.split_once('.')?;
    rest.starts_with("config.").then_some((Some(p), p.len() + 1 + "config.".len()))
}

/// The value of `--set LHS=RHS`, parsed with the language's own expression grammar, its spans
/// in the `--set` text.  `None` after a syntax error (reported).
fn set_value(file: FileId, lhs: &str, rhs: &str, diags: &mut Vec<Diagnostic>) -> Option<Expr> {
    let src = format!("bps 1\nx = {rhs}\n");
    let parsed = crate::syntax::parse(file, &src);
    let offset = (lhs.len() + 1) as i64 - 10; // position of rhs in `text` minus in `src`
    let shift = |sp: Span| Span::new((sp.lo as i64 + offset).max(0) as usize, (sp.hi as i64 + offset).max(0) as usize);
    let mut bad = false;
    for mut d in parsed.diags {
        if let Some(p) = &mut d.primary {
            p.loc.span = shift(p.loc.span);
        }
        d.secondary.clear();
        diags.push(d);
        bad = true;
    }
    if bad {
        return None;
    }
    let Some(crate::syntax::ast::Stmt { kind: crate::syntax::ast::StmtKind::Attr { value, .. }, .. }) = parsed.module.stmts.first() else {
        return None;
    };
    let mut value = value.clone();
    shift_expr(&mut value, &shift);
    Some(value)
}

fn shift_expr(e: &mut crate::syntax::ast::Expr, f: &dyn Fn(Span) -> Span) {
    e.span = f(e.span);
    use crate::syntax::ast::ExprKind;
    match &mut e.kind {
        ExprKind::List(items) => items.iter_mut().for_each(|i| shift_expr(i, f)),
        ExprKind::Call { func, args } => {
            func.span = f(func.span);
            args.iter_mut().for_each(|i| shift_expr(i, f));
        }
        ExprKind::Ident(i) => i.span = f(i.span),
        ExprKind::Str(s) => s.span = f(s.span),
        _ => {}
    }
}
