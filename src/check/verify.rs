//! Cross-reference checks over the whole [`Model`]: names, configs, step graphs, datasets,
//! dimensions, placeholders and sites.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use super::model::*;
use super::resolve::{self, CliSet};
use crate::diag::{did_you_mean, Diagnostic};
use crate::source::Loc;
use crate::syntax::ast::{ExprKind, Operand, Pred, PredKind};

pub struct Verifier<'a> {
    pub model: &'a Model,
    pub diags: Vec<Diagnostic>,
    pub sets: &'a [CliSet],
    /// `--set [PIPELINE.]config.KEY=...`: keys they add are keys `{config.KEY}` may use.
    pub config_sets: &'a [resolve::ConfigSet],
    /// Names used somewhere, for W201.
    pub used: Used,
    /// Value kind of each dimension known so far (true = integer), from domains and tables.
    pub dim_kinds: &'a BTreeMap<String, bool>,
    /// Named coverages being expanded, each with the reference that led to it (the
    /// definition's name for the outermost), to find cycles between them.
    pub coverage_stack: Vec<(String, Loc)>,
    /// Cycles of named coverages already reported, as sorted member lists.
    pub coverage_cycles: BTreeSet<Vec<String>>,
    /// `--allow-unknown-steps`: a campaign's settings for a step it does not have are W205.
    pub allow_unknown_steps: bool,
}

/// Names used somewhere, by kind (for W201).  Marking allocates only on first use.
#[derive(Default, Debug)]
pub struct Used(BTreeMap<&'static str, BTreeSet<String>>);

impl Used {
    pub fn mark(&mut self, kind: &'static str, name: &str) {
        let set = self.0.entry(kind).or_default();
        if !set.contains(name) {
            set.insert(name.to_string());
        }
    }
    pub fn has(&self, kind: &str, name: &str) -> bool {
        self.0.get(kind).is_some_and(|s| s.contains(name))
    }
}

pub fn undefined(kind: &str, n: &Named, candidates: &[&str]) -> Diagnostic {
    let mut d = Diagnostic::new("E201", format!("undefined {kind} `{}`", n.name)).at_loc(n.loc, format!("no {kind} of this name"));
    match did_you_mean(&n.name, candidates.iter().copied()) {
        Some(s) => d = d.help(format!("did you mean `{s}`?")).suggest(n.loc, s, format!("replace with `{s}`")),
        None if candidates.is_empty() => d = d.help(format!("no {kind} is defined; define one first")),
        None if candidates.len() <= 12 => d = d.help(format!("defined {kind}s: {}", candidates.join(", "))),
        None => {}
    }
    d
}

/// W205: settings for a step the campaign does not have, ignored under
/// `--allow-unknown-steps` (what would otherwise be E201).
pub fn unknown_step_ignored(n: &Named, steps: &[&str]) -> Diagnostic {
    let mut d = Diagnostic::new("W205", format!("settings for step `{}` are ignored: the campaign has no step of this name", n.name))
        .at_loc(n.loc, "no step of this name");
    d = match did_you_mean(&n.name, steps.iter().copied()) {
        Some(s) => d.help(format!("did you mean `{s}`? (`--allow-unknown-steps` turned this error into a warning)")),
        None => d.help("`--allow-unknown-steps` turned this error into a warning; remove the block once the step is gone for good"),
    };
    d
}

/// Datasets by name (the first definition when a name repeats, like [`Model::dataset`]).
type DatasetIndex<'m> = HashMap<&'m str, &'m Dataset>;

/// The fixed placeholders of `run` templates.
pub const RUN_PLACEHOLDERS: &[&str] = &["campaign", "step", "user", "site", "attempt", "inputs", "outputs", "data_id", "job"];

/// The placeholders a dataset's `source`/`archive` may use besides its dimensions.
pub const DATASET_PLACEHOLDERS: &[&str] = &["campaign", "user", "site"];

/// The placeholders of a notify command.
pub const NOTIFY_PLACEHOLDERS: &[&str] = &["campaign", "event", "step", "job", "data_id"];

/// The placeholders of a site's scratch template.
pub const SCRATCH_PLACEHOLDERS: &[&str] = &["user", "campaign", "site"];

/// Step graph edge kinds, for cycle messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum EdgeWhy {
    After,
    Dataset,
    Order,
}

#[derive(Clone, Debug)]
pub struct StepEdge {
    pub from: usize,
    pub to: usize,
    pub why: EdgeWhy,
    pub loc: Loc,
    pub detail: String,
}

impl<'a> Verifier<'a> {
    fn err(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    pub fn known_dims(&self) -> BTreeSet<&'a str> {
        let mut s: BTreeSet<&str> = self.model.dims.iter().map(|d| d.name.as_str()).collect();
        for r in &self.model.relations {
            s.extend(r.dims.iter().map(|d| d.name.as_str()));
        }
        s
    }

    fn check_dim(&mut self, n: &Named, known: &BTreeSet<&str>) -> bool {
        if known.contains(n.name.as_str()) {
            self.used.mark("dimension", &n.name);
            return true;
        }
        let c: Vec<&str> = known.iter().copied().collect();
        let d = undefined("dimension", n, &c).note("dimensions are declared with `dimension NAME = ...` or as columns of a `relation`");
        self.err(d);
        false
    }

    pub fn run(&mut self) {
        let known = self.known_dims();
        let model = self.model;
        for ds in &model.datasets {
            for d in &ds.dims {
                self.check_dim(d, &known);
            }
            for t in ds.source.iter().chain(ds.archive.iter()) {
                let dims: Vec<&str> = ds.dims.iter().map(|d| d.name.as_str()).collect();
                self.placeholders(t, &dims, DATASET_PLACEHOLDERS, None, "a dataset template");
            }
        }
        self.equalities(&known);
        for s in &model.sites {
            if let Some(t) = &s.scratch {
                self.placeholders(t, &[], SCRATCH_PLACEHOLDERS, None, "a site's scratch");
            }
        }
        for nc in &model.coverages {
            self.coverage_stack.push((nc.name.clone(), nc.loc));
            self.coverage_schema(&nc.expr, nc.file, 0);
            self.coverage_stack.pop();
        }
        for r in &model.relations {
            if let RelSource::Expr { expr, file } = &r.source {
                if let Some(schema) = self.coverage_schema(expr, *file, 0) {
                    let declared: BTreeSet<&str> = r.dims.iter().map(|d| d.name.as_str()).collect();
                    let got: BTreeSet<&str> = schema.iter().map(|s| s.as_str()).collect();
                    if declared != got {
                        self.err(
                            Diagnostic::new(
                                "E305",
                                format!(
                                    "relation `{}` declares ({}) but its expression is over ({})",
                                    r.name,
                                    r.dims.iter().map(|d| d.name.as_str()).collect::<Vec<_>>().join(", "),
                                    schema.join(", ")
                                ),
                            )
                            .at(*file, expr.span, "dimensions differ")
                            .also_loc(r.loc, "declared here"),
                        );
                    }
                }
            }
        }
        // Every dataset some step produces, for inputs that are not declared (one set, not a
        // scan of every step per input: the checker stays linear in the number of steps).
        let all_outputs: HashSet<&str> =
            model.pipelines.iter().flat_map(|q| q.steps.iter().flat_map(|t| t.outputs.iter().map(|o| o.name.as_str()))).collect();
        // Datasets by name: looked up per step input and output.
        let datasets: DatasetIndex = model.datasets.iter().rev().map(|d| (d.name.as_str(), d)).collect();
        for (pi, p) in model.pipelines.iter().enumerate() {
            self.pipeline(pi, p, &known, &all_outputs, &datasets);
        }
        for c in &model.campaigns {
            self.campaign(c, &known, &datasets);
        }
        self.top_orders();
        // Site names in every layer.
        let mut layers: Vec<&Layer> = vec![&model.defaults];
        layers.extend(model.pipelines.iter().map(|p| &p.layer));
        layers.extend(model.pipelines.iter().flat_map(|p| p.steps.iter().map(|s| &s.layer)));
        layers.extend(model.campaigns.iter().map(|c| &c.layer));
        layers.extend(model.campaigns.iter().flat_map(|c| c.overrides.iter().map(|o| &o.layer)));
        let site_names: Vec<&str> = model.sites.iter().map(|s| s.name.as_str()).collect();
        for l in layers {
            for s in &l.settings {
                if let ("site" | "sites" | "avoid_sites", Value::Names(v)) = (s.key, &s.value) {
                    for (k, n) in v.iter().enumerate() {
                        self.used.mark("site", &n);
                        if !site_names.contains(&n.as_str()) {
                            let named = Named { name: n.clone(), loc: s.name_locs.get(k).copied().unwrap_or(s.loc) };
                            self.err(undefined("site", &named, &site_names));
                        }
                    }
                }
            }
        }
    }

    /// `equal A = B`: both dimensions defined and different (E211), of the same value kind
    /// with domains that can meet (E211), and not already implied by earlier ones (W202).
    fn equalities(&mut self, known: &BTreeSet<&str>) {
        let model = self.model;
        let mut so_far: Vec<Equality> = Vec::new();
        for e in &model.equals {
            let ok_l = self.check_dim(&e.left, known);
            let ok_r = self.check_dim(&e.right, known);
            if e.left.name == e.right.name {
                self.err(
                    Diagnostic::new("E211", format!("`equal {0} = {0}` declares a dimension equal to itself", e.left.name))
                        .at_loc(e.right.loc, "the same dimension")
                        .help("name two different dimensions, e.g. `equal visit = exposure`"),
                );
                continue;
            }
            if !(ok_l && ok_r) {
                continue;
            }
            let before = EqualDims::new(&so_far);
            if before.same(&e.left.name, &e.right.name) {
                let class = before.class_of(&e.left.name);
                let mut d = Diagnostic::new("W202", format!("`{}` and `{}` are already equal", e.left.name, e.right.name))
                    .at_loc(e.loc, "redundant");
                for x in so_far.iter().filter(|x| class.contains(&x.left.name.as_str())) {
                    d = d.also_loc(x.loc, "through this");
                }
                self.err(d.help("remove this declaration; equality is symmetric and transitive"));
                continue;
            }
            if let (Some(&a), Some(&b)) = (self.dim_kinds.get(&e.left.name), self.dim_kinds.get(&e.right.name)) {
                if a != b {
                    let kind = |int: bool| if int { "integers" } else { "strings" };
                    self.err(
                        Diagnostic::new(
                            "E211",
                            format!(
                                "`{}` holds {} but `{}` holds {}: they can never be equal",
                                e.left.name,
                                kind(a),
                                e.right.name,
                                kind(b)
                            ),
                        )
                        .at_loc(e.loc, "never equal")
                        .help("an equality joins two dimensions that always hold the same value for a data ID"),
                    );
                    continue;
                }
            }
            if let (Some(dl), Some(dr)) = (model.dim(&e.left.name), model.dim(&e.right.name)) {
                if let (Some(a), Some(b)) = (&dl.domain, &dr.domain) {
                    if domains_disjoint(a, b) {
                        let mut d = Diagnostic::new(
                            "E211",
                            format!("`{}` and `{}` have no value in common: equal, they would leave no data ID", e.left.name, e.right.name),
                        )
                        .at_loc(e.loc, "never equal");
                        if let Some(l) = dl.domain_loc {
                            d = d.also_loc(l, format!("values of `{}`", e.left.name));
                        }
                        if let Some(l) = dr.domain_loc {
                            d = d.also_loc(l, format!("values of `{}`", e.right.name));
                        }
                        self.err(d.help("check the two domains, or remove the equality"));
                        continue;
                    }
                }
            }
            so_far.push(e.clone());
        }
    }

    /// Is `d` in an `equal` whose other side is not a dimension?  (E201 said so; what the
    /// equality would have made of `d` is not reported again.)
    fn in_broken_equality(&self, d: &str, known: &BTreeSet<&str>) -> bool {
        self.model.equals.iter().any(|e| {
            (e.left.name == d && !known.contains(e.right.name.as_str())) || (e.right.name == d && !known.contains(e.left.name.as_str()))
        })
    }

    fn top_orders(&mut self) {
        let model = self.model;
        for o in &model.orders {
            if let Order::Before { first, second, .. } = o {
                for n in [first, second] {
                    let is_step = model.pipelines.iter().any(|p| p.steps.iter().any(|s| s.name == n.name));
                    if model.pipeline(&n.name).is_none() && !is_step {
                        let mut c: Vec<&str> = model.pipelines.iter().map(|p| p.name.as_str()).collect();
                        c.extend(model.pipelines.iter().flat_map(|p| p.steps.iter().map(|s| s.name.as_str())));
                        self.err(undefined("step or pipeline", n, &c));
                    }
                }
            }
        }
    }

    /// Placeholders of a template: allowed dims, fixed names, and `config.KEY` when
    /// `configs` gives the keys available (None: config placeholders are not allowed).
    ///
    /// `datasets` gives the step's input and output dataset names for `{inputs.NAME}` and
    /// `{outputs.NAME}` (language 1.1); `None` where a template has no datasets.
    /// `no_config` is the label for `{config.KEY}` where configs are not available.
    #[allow(clippy::too_many_arguments)]
    fn placeholders_in(
        &mut self,
        t: &Template,
        dims: &[&str],
        fixed: &[&str],
        configs: Option<&[BTreeSet<String>]>,
        no_config: &str,
        datasets: Option<(&[&str], &[&str])>,
        what: &str,
    ) {
        for (name, loc) in t.placeholders() {
            if !super::build::valid_placeholder(name) {
                continue; // malformed: E206 already
            }
            if let Some((dir, ds)) =
                name.strip_prefix("inputs.").map(|d| ("inputs", d)).or_else(|| name.strip_prefix("outputs.").map(|d| ("outputs", d)))
            {
                let Some((ins, outs)) = datasets else {
                    self.err(
                        Diagnostic::new("E206", format!("`{{{name}}}` is not available in {what}"))
                            .at_loc(loc, "no datasets here")
                            .help("`{inputs.NAME}` and `{outputs.NAME}` are the paths of a step's datasets, in its `run`"),
                    );
                    continue;
                };
                let (mine, other, other_dir) = if dir == "inputs" { (ins, outs, "outputs") } else { (outs, ins, "inputs") };
                if mine.contains(&ds) {
                    continue;
                }
                let kind = if dir == "inputs" { "input" } else { "output" };
                let mut d = Diagnostic::new("E206", format!("`{{{name}}}`: `{ds}` is not an {kind} of {what}"))
                    .at_loc(loc, format!("not an {kind}"));
                if other.contains(&ds) {
                    let fix = format!("{{{other_dir}.{ds}}}");
                    d = d
                        .help(format!("`{ds}` is an {} of {what}: write `{fix}`", if dir == "inputs" { "output" } else { "input" }))
                        .suggest(loc, fix.clone(), format!("replace with `{fix}`"));
                } else if let Some(sug) = did_you_mean(ds, mine.iter().copied()) {
                    let fix = format!("{{{dir}.{sug}}}");
                    d = d.help(format!("did you mean `{fix}`?")).suggest(loc, fix.clone(), format!("replace with `{fix}`"));
                } else if mine.is_empty() {
                    d = d.help(format!("{what} has no {kind}s"));
                } else {
                    d = d.help(format!("{kind}s of {what}: {}", mine.join(", ")));
                }
                self.err(d);
                continue;
            }
            if let Some(key) = name.strip_prefix("config.") {
                match configs {
                    Some(sets) if !sets.is_empty() => {
                        let missing = sets.iter().all(|s| !s.contains(key));
                        if missing {
                            let all: Vec<&str> = sets.iter().flat_map(|s| s.iter().map(|k| k.as_str())).collect();
                            let mut d = Diagnostic::new("E206", format!("`{{{name}}}`: no config defines `{key}`"))
                                .at_loc(loc, "unknown config key");
                            if let Some(s) = did_you_mean(key, all.iter().copied()) {
                                d = d.help(format!("did you mean `{{config.{s}}}`?"));
                            } else if !all.is_empty() {
                                d = d.help(format!("config keys: {}", all.join(", ")));
                            }
                            self.err(d);
                        }
                    }
                    Some(_) => self.err(
                        Diagnostic::new("E206", format!("`{{{name}}}` refers to a config, but the pipeline has none"))
                            .at_loc(loc, "no config")
                            .help("define `config NAME { KEY = ... }` in the pipeline and choose it with `use PIPELINE with NAME`"),
                    ),
                    None => self.err(Diagnostic::new("E206", format!("`{{{name}}}` is not available in {what}")).at_loc(loc, no_config)),
                }
                continue;
            }
            if dims.contains(&name) || fixed.contains(&name) {
                continue;
            }
            let known = self.known_dims();
            let mut d = Diagnostic::new("E206", format!("unknown placeholder `{{{name}}}`")).at_loc(loc, "unknown placeholder");
            let cands: Vec<&str> = dims.iter().chain(fixed.iter()).copied().collect();
            if let Some(x) = dims.iter().find(|x| self.model.equal_dims.same(x, name)) {
                d = d.help(format!("`{name}` is declared equal to `{x}`, which this step has: write `{{{x}}}`")).suggest(
                    loc,
                    format!("{{{x}}}"),
                    format!("replace with `{{{x}}}`"),
                );
            } else if known.contains(name) {
                d = d.help(format!(
                    "`{name}` is a dimension, but not one of {what}'s: {}",
                    if dims.is_empty() { "it has none".to_string() } else { dims.join(", ") }
                ));
            } else if let Some(s) = did_you_mean(name, cands.iter().copied()) {
                d = d.help(format!("did you mean `{{{s}}}`?")).suggest(loc, format!("{{{s}}}"), format!("replace with `{{{s}}}`"));
            } else {
                d = d.help(format!("placeholders here: {}", cands.iter().map(|c| format!("{{{c}}}")).collect::<Vec<_>>().join(" ")));
            }
            if name.starts_with('$') || name.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
                d = d.note("environment variables are written $NAME, without braces");
            }
            self.err(d);
        }
    }

    fn placeholders(&mut self, t: &Template, dims: &[&str], fixed: &[&str], configs: Option<&[BTreeSet<String>]>, what: &str) {
        self.placeholders_in(t, dims, fixed, configs, "config values are for `run`", None, what);
    }

    /// Keys of a config including inherited ones; E208 on cycles.
    fn config_keys(&mut self, p: &Pipeline, c: &Config, report: bool) -> BTreeSet<String> {
        let mut keys = BTreeSet::new();
        let mut seen: Vec<&str> = Vec::new();
        let mut cur = Some(c);
        while let Some(cf) = cur {
            if seen.contains(&cf.name.as_str()) {
                // Report each cycle once: from its member defined first, and not from configs
                // that merely extend a config on a cycle.
                let order = |n: &str| p.configs.iter().position(|x| x.name == n);
                let first_of_cycle = cf.name == c.name && seen.iter().all(|n| order(n) >= order(&c.name));
                if report && first_of_cycle {
                    let chain = seen.iter().copied().chain([cf.name.as_str()]).collect::<Vec<_>>().join(" extends ");
                    let at = c.extends.as_ref().map(|e| e.loc).unwrap_or(c.loc);
                    self.err(
                        Diagnostic::new("E208", format!("config `{}` inherits from itself", c.name))
                            .at_loc(at, "cycle starts here")
                            .note(format!("chain: {chain}")),
                    );
                }
                break;
            }
            seen.push(&cf.name);
            keys.extend(cf.params.iter().map(|(k, _, _)| k.clone()));
            cur = match &cf.extends {
                Some(e) => {
                    let parent = p.configs.iter().find(|x| x.name == e.name);
                    if parent.is_none() && report && cf.name == c.name {
                        let cands: Vec<&str> = p.configs.iter().map(|x| x.name.as_str()).collect();
                        self.err(undefined("config", e, &cands));
                    }
                    parent
                }
                None => None,
            };
        }
        keys
    }

    fn pipeline(&mut self, _pi: usize, p: &Pipeline, known: &BTreeSet<&str>, all_outputs: &HashSet<&str>, datasets: &DatasetIndex) {
        for c in &p.configs {
            self.config_keys(p, c, true);
        }
        let names: Vec<&str> = p.steps.iter().map(|s| s.name.as_str()).collect();
        let name_set: HashSet<&str> = names.iter().copied().collect();
        let produced: BTreeMap<&str, &Step> = {
            let mut m: BTreeMap<&str, &Step> = BTreeMap::new();
            for s in &p.steps {
                for o in &s.outputs {
                    if let Some(first) = m.get(o.name.as_str()) {
                        let first_loc = first.outputs.iter().find(|x| x.name == o.name).map(|x| x.loc).unwrap_or(first.loc);
                        self.err(
                            Diagnostic::new("E503", format!("dataset `{}` is produced by two steps", o.name))
                                .at_loc(o.loc, format!("produced by `{}`", s.name))
                                .also_loc(first_loc, format!("already produced by `{}`", first.name))
                                .help("every dataset has one producer; give one of the outputs another name"),
                        );
                    } else {
                        m.insert(o.name.as_str(), s);
                    }
                }
            }
            m
        };
        // Placeholders: config keys from every config of the pipeline that a campaign uses, or
        // from all configs when no campaign uses the pipeline (the same for every step).
        let chosen = self.configs_in_use(p);
        let sets: Vec<BTreeSet<String>> = chosen.iter().map(|c| self.config_keys_with_sets(p, c)).collect();
        for s in &p.steps {
            let mut dims_ok = true;
            for d in &s.over {
                dims_ok &= self.check_dim(d, known);
            }
            for dep in &s.after {
                if dep.step.name == s.name {
                    self.err(
                        Diagnostic::new("E501", format!("step `{}` runs after itself", s.name)).at_loc(dep.step.loc, "depends on itself"),
                    );
                } else if !name_set.contains(dep.step.name.as_str()) {
                    self.err(undefined("step", &dep.step, &names).note(format!("`after` names a step of pipeline `{}`", p.name)));
                }
            }
            for inp in &s.inputs {
                self.used.mark("dataset", &inp.dataset.name);
                let declared = datasets.contains_key(inp.dataset.name.as_str());
                let produced_anywhere = all_outputs.contains(inp.dataset.name.as_str());
                if !declared && !produced_anywhere {
                    let mut c: Vec<&str> = self.model.datasets.iter().map(|d| d.name.as_str()).collect();
                    c.extend(p.steps.iter().flat_map(|t| t.outputs.iter().map(|o| o.name.as_str())));
                    self.err(undefined("dataset", &inp.dataset, &c).note("an input is a declared `dataset` or the output of a step"));
                }
                if produced.get(inp.dataset.name.as_str()).is_some_and(|t| t.name == s.name) {
                    self.err(
                        Diagnostic::new("E501", format!("step `{}` consumes its own output `{}`", s.name, inp.dataset.name))
                            .at_loc(inp.dataset.loc, "produced by this same step"),
                    );
                }
            }
            for o in &s.outputs {
                self.used.mark("dataset", &o.name);
                if let (Some(ds), true) = (datasets.get(o.name.as_str()).copied(), dims_ok) {
                    let a: BTreeSet<&str> = ds.dims.iter().map(|d| d.name.as_str()).collect();
                    let b: BTreeSet<&str> = s.over.iter().map(|d| d.name.as_str()).collect();
                    if a != b {
                        self.err(
                            Diagnostic::new(
                                "E505",
                                format!(
                                    "step `{}` over ({}) produces `{}`, declared over ({})",
                                    s.name,
                                    s.over.iter().map(|d| d.name.as_str()).collect::<Vec<_>>().join(", "),
                                    o.name,
                                    ds.dims.iter().map(|d| d.name.as_str()).collect::<Vec<_>>().join(", ")
                                ),
                            )
                            .at_loc(o.loc, "dimensions differ")
                            .also_loc(ds.loc, "dataset declared here")
                            .help("a step writes one instance of each output per quantum, so the dimensions must be equal"),
                        );
                        let renamed: Vec<String> = ds
                            .dims
                            .iter()
                            .filter(|d| !b.contains(d.name.as_str()))
                            .filter_map(|d| {
                                self.model.equal_dims.find_in(&s.over, &d.name).map(|x| format!("`{}` for `{}`", x.name, d.name))
                            })
                            .collect();
                        if !renamed.is_empty() {
                            if let Some(d) = self.diags.last_mut() {
                                d.notes.push(format!(
                                    "the dimensions are declared equal, but a dataset is written with its step's own names: declare it with {}",
                                    renamed.join(", ")
                                ));
                            }
                        }
                    }
                }
            }
            if let Some(run) = &s.run {
                let dims: Vec<&str> = s.over.iter().map(|d| d.name.as_str()).collect();
                let ins: Vec<&str> = s.inputs.iter().map(|i| i.dataset.name.as_str()).collect();
                let outs: Vec<&str> = s.outputs.iter().map(|o| o.name.as_str()).collect();
                self.placeholders_in(run, &dims, RUN_PLACEHOLDERS, Some(&sets), "", Some((&ins, &outs)), "this step");
            }
        }
        for o in &p.orders {
            match o {
                Order::Before { first, second, .. } => {
                    for n in [first, second] {
                        if !name_set.contains(n.name.as_str()) {
                            self.err(undefined("step", n, &names));
                        }
                    }
                }
                Order::Serial { step, dim, .. } => self.serial(p, step, dim, &names),
            }
        }
        // Subsets (language 1.1): steps of this pipeline, under a name no step has.
        for sub in &p.subsets {
            if let Some(st) = p.steps.iter().find(|st| st.name == sub.name) {
                self.err(
                    Diagnostic::new("E202", format!("subset `{}` has the name of a step of pipeline `{}`", sub.name, p.name))
                        .at_loc(sub.loc, "subset defined here")
                        .also_loc(st.loc, "step defined here")
                        .help("rename the subset: `--steps NAME` must say which one it means"),
                );
            }
            for n in &sub.steps {
                if names.contains(&n.name.as_str()) {
                    continue;
                }
                let mut d = undefined("step", n, &names).note(format!("a subset lists steps of pipeline `{}`", p.name));
                if p.subset(&n.name).is_some() {
                    d = d.note("a subset lists steps, not other subsets; list that subset's steps here");
                }
                self.err(d);
            }
        }
        let edges = self.pipeline_edges(p, &produced);
        let nodes: Vec<(String, Loc)> = p.steps.iter().map(|s| (s.name.clone(), s.loc)).collect();
        if let Some(cycle) = find_cycle(nodes.len(), &edges) {
            self.report_cycle(&nodes, &cycle);
        }
    }

    fn serial(&mut self, p: &Pipeline, step: &Named, dim: &Named, names: &[&str]) {
        match p.steps.iter().find(|s| s.name == step.name) {
            None => self.err(undefined("step", step, names)),
            Some(s) => {
                if self.model.equal_dims.find_in(&s.over, &dim.name).is_none() {
                    self.err(
                        Diagnostic::new("E506", format!("step `{}` has no dimension `{}` to serialise by", s.name, dim.name))
                            .at_loc(dim.loc, "not a dimension of the step")
                            .also_loc(
                                s.loc,
                                format!(
                                    "`{}` runs over ({})",
                                    s.name,
                                    s.over.iter().map(|d| d.name.as_str()).collect::<Vec<_>>().join(", ")
                                ),
                            ),
                    );
                }
            }
        }
    }

    /// Keys of a config with inheritance, and those `--set config.KEY=...` adds to it.
    fn config_keys_with_sets(&mut self, p: &Pipeline, c: &Config) -> BTreeSet<String> {
        let mut keys = self.config_keys(p, c, false);
        keys.extend(self.config_sets.iter().filter(|s| s.applies_to(&p.name)).map(|s| s.key.clone()));
        keys
    }

    /// The config campaign `c` chooses for pipeline `p` (none, or one).
    fn configs_in_campaign<'b>(&self, c: &Campaign, p: &'b Pipeline) -> Vec<&'b Config> {
        c.uses
            .iter()
            .filter(|u| u.pipeline.name == p.name)
            .filter_map(|u| match &u.config {
                Some(n) => p.configs.iter().find(|x| x.name == n.name),
                None if p.configs.len() == 1 => p.configs.first(),
                None => None,
            })
            .collect()
    }

    fn configs_in_use<'b>(&self, p: &'b Pipeline) -> Vec<&'b Config> {
        let mut out: Vec<&Config> = Vec::new();
        let mut used_by_campaign = false;
        for c in &self.model.campaigns {
            for u in &c.uses {
                if u.pipeline.name == p.name {
                    used_by_campaign = true;
                    let chosen = match &u.config {
                        Some(n) => p.configs.iter().find(|x| x.name == n.name),
                        None if p.configs.len() == 1 => p.configs.first(),
                        None => None,
                    };
                    if let Some(cf) = chosen {
                        if !out.iter().any(|x| x.name == cf.name) {
                            out.push(cf);
                        }
                    }
                }
            }
        }
        if !used_by_campaign {
            out = p.configs.iter().collect();
        }
        out
    }

    fn pipeline_edges(&self, p: &Pipeline, produced: &BTreeMap<&str, &Step>) -> Vec<StepEdge> {
        let index: HashMap<&str, usize> = p.steps.iter().enumerate().map(|(i, s)| (s.name.as_str(), i)).rev().collect();
        let idx = |n: &str| index.get(n).copied();
        let mut edges = Vec::new();
        for (si, s) in p.steps.iter().enumerate() {
            for dep in &s.after {
                if let Some(pi) = idx(&dep.step.name) {
                    if pi != si {
                        edges.push(StepEdge {
                            from: pi,
                            to: si,
                            why: EdgeWhy::After,
                            loc: dep.step.loc,
                            detail: format!("`{}` runs after `{}`", s.name, dep.step.name),
                        });
                    }
                }
            }
            for inp in &s.inputs {
                if let Some(prod) = produced.get(inp.dataset.name.as_str()) {
                    if let Some(pi) = idx(&prod.name) {
                        if pi != si {
                            edges.push(StepEdge {
                                from: pi,
                                to: si,
                                why: EdgeWhy::Dataset,
                                loc: inp.dataset.loc,
                                detail: format!("`{}` reads `{}` from `{}`", s.name, inp.dataset.name, prod.name),
                            });
                        }
                    }
                }
            }
        }
        for o in &p.orders {
            if let Order::Before { first, second, loc } = o {
                if let (Some(a), Some(b)) = (idx(&first.name), idx(&second.name)) {
                    edges.push(StepEdge {
                        from: a,
                        to: b,
                        why: EdgeWhy::Order,
                        loc: *loc,
                        detail: format!("`order {} before {}`", first.name, second.name),
                    });
                }
            }
        }
        edges.sort_by_key(|e| (e.from, e.to, e.why));
        edges
    }

    fn report_cycle(&mut self, nodes: &[(String, Loc)], cycle: &[&StepEdge]) {
        let Some(first) = cycle.first() else { return };
        let names: Vec<&str> = cycle.iter().map(|e| nodes[e.from].0.as_str()).chain([nodes[first.from].0.as_str()]).collect();
        let mut d = Diagnostic::new("E501", format!("dependency cycle: {}", names.join(" -> "))).at_loc(first.loc, first.detail.clone());
        for e in &cycle[1..] {
            d = d.also_loc(e.loc, e.detail.clone());
        }
        d = d.help("remove one of these dependencies; ordering constraints may not contradict data flow");
        self.err(d);
    }

    /// Static schema of a coverage expression: its dimensions, in order.
    pub fn coverage_schema(&mut self, e: &crate::syntax::ast::Expr, file: crate::source::FileId, depth: u32) -> Option<Vec<String>> {
        let model = self.model;
        if depth > 64 {
            self.err(Diagnostic::new("E501", "named coverages refer to each other in a cycle").at(file, e.span, "here"));
            return None;
        }
        match &e.kind {
            ExprKind::Ident(i) => {
                if let Some(d) = model.dim(&i.name) {
                    self.used.mark("dimension", &d.name);
                    if d.domain.is_none() && d.domain_loc.is_some() {
                        return None; // a domain was written but is invalid: already reported
                    }
                    if d.domain.is_none() {
                        self.err(
                            Diagnostic::new("E207", format!("dimension `{}` has no domain to take values from", d.name))
                                .at(file, i.span, "no values")
                                .also_loc(d.loc, "declared without a domain")
                                .help(format!("give it a domain (`dimension {} = ...`) or use a relation that has it", d.name)),
                        );
                        return None;
                    }
                    return Some(vec![d.name.clone()]);
                }
                if let Some(r) = model.relation(&i.name) {
                    self.used.mark("relation", &r.name);
                    // Its columns are used too: a dimension declared for a relation's column
                    // (its domain, its value kind) is not unused because no step names it.
                    for d in &r.dims {
                        self.used.mark("dimension", &d.name);
                    }
                    return Some(r.dims.iter().map(|d| d.name.clone()).collect());
                }
                if let Some(c) = model.coverage(&i.name) {
                    self.used.mark("coverage", &c.name);
                    let here = Loc { file, span: i.span };
                    if let Some(pos) = self.coverage_stack.iter().position(|(n, _)| *n == c.name) {
                        // A cycle: stack[pos..] plus this reference back to stack[pos].  Report
                        // it once, at its first edge, whichever coverage the walk started from.
                        let mut edges: Vec<(String, String, Loc)> = Vec::new();
                        for w in pos..self.coverage_stack.len() {
                            let to = self.coverage_stack.get(w + 1).map(|(n, l)| (n.clone(), *l)).unwrap_or((c.name.clone(), here));
                            edges.push((self.coverage_stack[w].0.clone(), to.0, to.1));
                        }
                        let mut members: Vec<String> = edges.iter().map(|e| e.0.clone()).collect();
                        members.sort();
                        if self.coverage_cycles.insert(members) {
                            let names: Vec<&str> = edges.iter().map(|e| e.0.as_str()).chain([c.name.as_str()]).collect();
                            let mut d =
                                Diagnostic::new("E501", format!("named coverages refer to each other in a cycle: {}", names.join(" -> ")))
                                    .at_loc(edges[0].2, format!("`{}` refers to `{}`", edges[0].0, edges[0].1));
                            for (from, to, l) in &edges[1..] {
                                d = d.also_loc(*l, format!("`{from}` refers to `{to}`"));
                            }
                            self.err(d.help("a coverage cannot be defined in terms of itself; write one of them out"));
                        }
                        return None;
                    }
                    let (expr, f) = (c.expr.clone(), c.file);
                    self.coverage_stack.push((c.name.clone(), here));
                    let r = self.coverage_schema(&expr, f, depth + 1);
                    self.coverage_stack.pop();
                    return r;
                }
                let mut cands: Vec<&str> = model.dims.iter().map(|d| d.name.as_str()).collect();
                cands.extend(model.relations.iter().map(|r| r.name.as_str()));
                cands.extend(model.coverages.iter().map(|c| c.name.as_str()));
                self.err(undefined(
                    "dimension, relation or coverage",
                    &Named { name: i.name.clone(), loc: Loc { file, span: i.span } },
                    &cands,
                ));
                None
            }
            ExprKind::Product(items) => {
                let mut out: Vec<String> = Vec::new();
                let mut ok = true;
                for it in items {
                    match self.coverage_schema(it, file, depth + 1) {
                        Some(s) => {
                            for d in s {
                                if !out.contains(&d) {
                                    out.push(d);
                                }
                            }
                        }
                        None => ok = false,
                    }
                }
                ok.then_some(out)
            }
            ExprKind::SetChain { first, rest } => {
                let base = self.coverage_schema(first, file, depth + 1);
                let mut ok = base.is_some();
                for (op, it) in rest {
                    let s = self.coverage_schema(it, file, depth + 1);
                    if let (Some(b), Some(s)) = (&base, &s) {
                        let x: BTreeSet<&String> = b.iter().collect();
                        let y: BTreeSet<&String> = s.iter().collect();
                        if x != y {
                            let opname = if *op == crate::syntax::ast::SetOp::Union { "union" } else { "difference" };
                            self.err(
                                Diagnostic::new("E305", format!("{opname} of coverages over different dimensions"))
                                    .at(file, it.span, format!("over ({})", s.join(", ")))
                                    .also(file, first.span, format!("over ({})", b.join(", ")))
                                    .help("both sides of `+` and `-` need the same dimensions; join (`*`) with a relation or dimension to extend one side"),
                            );
                            ok = false;
                        }
                    } else {
                        ok = false;
                    }
                }
                if ok {
                    base
                } else {
                    None
                }
            }
            ExprKind::Where { base, pred } => {
                let s = self.coverage_schema(base, file, depth + 1)?;
                self.predicate(pred, &s, file);
                Some(s)
            }
            ExprKind::List(items) if items.is_empty() => Some(Vec::new()),
            ExprKind::Error => None,
            ExprKind::Call { func, .. } if func.name == "table" => {
                self.err(
                    Diagnostic::new("E301", "an inline table needs a relation declaration")
                        .at(file, e.span, "declare it as a relation")
                        .help("write `relation NAME(dims...) = table(\"...\")` and use NAME here"),
                );
                None
            }
            _ => {
                self.err(
                    Diagnostic::new("E301", "not a coverage expression")
                        .at(file, e.span, "expected dimensions, relations and coverages combined with * + - where")
                        .help("e.g. `exposure * detector where band in [\"g\", \"r\"]`"),
                );
                None
            }
        }
    }

    fn predicate(&mut self, p: &Pred, schema: &[String], file: crate::source::FileId) {
        let mut stack = vec![p];
        while let Some(p) = stack.pop() {
            match &p.kind {
                PredKind::Or(v) | PredKind::And(v) => stack.extend(v.iter()),
                PredKind::Not(x) => stack.push(x),
                PredKind::Cmp { lhs, op, rhs } => {
                    let is_ord = !matches!(op, crate::syntax::ast::CmpOp::Eq | crate::syntax::ast::CmpOp::Ne);
                    match (lhs, rhs) {
                        (Operand::Ident(d), v) | (v, Operand::Ident(d)) if !matches!(v, Operand::Ident(_)) => {
                            self.pred_dim(d, schema, file, Some(v), is_ord);
                        }
                        (Operand::Ident(a), Operand::Ident(b)) => {
                            self.pred_dim(a, schema, file, None, is_ord);
                            self.pred_dim(b, schema, file, None, is_ord);
                        }
                        _ => self.err(
                            Diagnostic::new("E306", "a comparison needs a dimension")
                                .at(file, p.span, "compares two values")
                                .help("write e.g. `visit != 1230`"),
                        ),
                    }
                }
                PredKind::In { lhs, set, .. } => match lhs {
                    Operand::Ident(d) => {
                        if let ExprKind::List(items) = &set.kind {
                            for it in items {
                                let op = match &it.kind {
                                    ExprKind::Int(v) => Some(Operand::Int(*v, it.span)),
                                    ExprKind::Str(s) => Some(Operand::Str(s.clone())),
                                    _ => {
                                        self.err(Diagnostic::new("E306", "`in` lists hold integers or strings").at(
                                            file,
                                            it.span,
                                            "not a value",
                                        ));
                                        None
                                    }
                                };
                                if let Some(op) = op {
                                    self.pred_dim(d, schema, file, Some(&op), false);
                                }
                            }
                        } else if let ExprKind::Range { .. } = &set.kind {
                            self.pred_dim(d, schema, file, Some(&Operand::Int(0, set.span)), false);
                        } else {
                            self.err(
                                Diagnostic::new("E306", "`in` takes a list or a range")
                                    .at(file, set.span, "not a list")
                                    .help("write e.g. `band in [\"g\", \"r\"]` or `detector in 0..9`"),
                            );
                        }
                    }
                    other => {
                        self.err(Diagnostic::new("E306", "`in` needs a dimension on its left").at(file, other.span(), "not a dimension"))
                    }
                },
                PredKind::Error => {}
            }
        }
    }

    fn pred_dim(
        &mut self,
        d: &crate::syntax::ast::Ident,
        schema: &[String],
        file: crate::source::FileId,
        v: Option<&Operand>,
        ordering: bool,
    ) {
        if !schema.contains(&d.name) {
            let mut diag = Diagnostic::new("E306", format!("`{}` is not a dimension of this coverage", d.name)).at(
                file,
                d.span,
                "not in the coverage",
            );
            diag = match did_you_mean(&d.name, schema.iter().map(|s| s.as_str())) {
                Some(s) => diag.help(format!("did you mean `{s}`? the coverage is over ({})", schema.join(", "))).suggest(
                    Loc { file, span: d.span },
                    s,
                    format!("replace with `{s}`"),
                ),
                None => diag.help(format!("the coverage is over ({})", schema.join(", "))),
            };
            self.err(diag);
            return;
        }
        let Some(v) = v else { return };
        let Some(&is_int) = self.dim_kinds.get(&d.name) else {
            return;
        };
        let (val_int, val_desc) = match v {
            Operand::Int(..) => (true, "an integer"),
            Operand::Str(_) => (false, "a string"),
            Operand::Float(..) => {
                self.err(Diagnostic::new("E306", "dimension values are integers or strings, not decimals").at(
                    file,
                    v.span(),
                    "a decimal number",
                ));
                return;
            }
            Operand::Ident(_) => return,
        };
        if val_int != is_int {
            let dim_desc = if is_int { "integers" } else { "strings" };
            let mut diag = Diagnostic::new("E306", format!("`{}` holds {dim_desc}, compared with {val_desc}", d.name))
                .at(file, v.span(), format!("{val_desc}"))
                .also(file, d.span, format!("`{}` holds {dim_desc}", d.name));
            if let Operand::Str(s) = v {
                if s.value.parse::<i64>().is_ok() {
                    diag = diag.help(format!("drop the quotes: {}", s.value));
                }
            } else if !is_int {
                diag = diag.help("quote the value: \"...\"");
            }
            self.err(diag);
        } else if ordering && !is_int {
            // Strings order lexicographically; allowed.
        }
    }

    fn campaign(&mut self, c: &Campaign, known: &BTreeSet<&str>, datasets: &DatasetIndex) {
        let model = self.model;
        let pipe_names: Vec<&str> = model.pipelines.iter().map(|p| p.name.as_str()).collect();
        let mut used: Vec<&Pipeline> = Vec::new();
        for u in &c.uses {
            let Some(p) = model.pipeline(&u.pipeline.name) else {
                self.err(undefined("pipeline", &u.pipeline, &pipe_names));
                continue;
            };
            self.used.mark("pipeline", &p.name);
            used.push(p);
            match &u.config {
                Some(cn) => {
                    if !p.configs.iter().any(|x| x.name == cn.name) {
                        let cands: Vec<&str> = p.configs.iter().map(|x| x.name.as_str()).collect();
                        self.err(undefined("config", cn, &cands).note(format!("configs of pipeline `{}`", p.name)));
                    }
                }
                None if p.configs.len() > 1 => {
                    let cands: Vec<&str> = p.configs.iter().map(|x| x.name.as_str()).collect();
                    self.err(
                        Diagnostic::new("E205", format!("pipeline `{}` has {} configs; choose one", p.name, p.configs.len()))
                            .at_loc(u.loc, "which config?")
                            .help(format!("write `use {} with {}`", p.name, cands.join(" | "))),
                    );
                }
                None => {}
            }
        }
        // Steps of the campaign, with their pipelines.
        let steps: Vec<(&Pipeline, &Step)> = used.iter().flat_map(|p| p.steps.iter().map(move |s| (*p, s))).collect();
        let step_names: Vec<&str> = steps.iter().map(|(_, s)| s.name.as_str()).collect();
        let find = |v: &mut Self, n: &Named, qual: Option<&Named>| -> Option<usize> {
            let hits: Vec<usize> = steps
                .iter()
                .enumerate()
                .filter(|(_, (p, s))| s.name == n.name && qual.is_none_or(|q| q.name == p.name))
                .map(|(i, _)| i)
                .collect();
            match hits.as_slice() {
                [one] => Some(*one),
                [] => {
                    if let Some(q) = qual {
                        if !used.iter().any(|p| p.name == q.name) {
                            v.err(
                                undefined("pipeline", q, &used.iter().map(|p| p.name.as_str()).collect::<Vec<_>>())
                                    .note("the qualifier names a pipeline the campaign uses"),
                            );
                            return None;
                        }
                    }
                    v.err(undefined("step", n, &step_names).note("steps of the pipelines this campaign uses"));
                    None
                }
                many => {
                    let ps: Vec<&str> = many.iter().map(|i| steps[*i].0.name.as_str()).collect();
                    v.err(
                        Diagnostic::new("E209", format!("step `{}` is defined in pipelines {}", n.name, ps.join(" and ")))
                            .at_loc(n.loc, "ambiguous")
                            .help(format!("qualify it: `{}.{}`", ps[0], n.name)),
                    );
                    None
                }
            }
        };
        for o in &c.overrides {
            let qual_ok = o.pipeline.as_ref().is_none_or(|q| used.iter().any(|p| p.name == q.name));
            if self.allow_unknown_steps && qual_ok && !step_names.contains(&o.step.name.as_str()) {
                self.diags.push(unknown_step_ignored(&o.step, &step_names));
                continue;
            }
            find(self, &o.step, o.pipeline.as_ref());
        }
        let mut in_cluster: BTreeMap<usize, &Cluster> = BTreeMap::new();
        for cl in &c.clusters {
            // `split_by` (language 1.1): defined dimensions, none of them (or equal to one) in `by`.
            let mut split_ok: Vec<&Named> = Vec::new();
            for sb in &cl.split_by {
                if !self.check_dim(sb, known) {
                    continue;
                }
                if let Some(b) = cl.by.iter().find(|b| model.equal_dims.same(&b.name, &sb.name)) {
                    let same = if b.name == sb.name { String::new() } else { format!(" (`{}` equals `{}`)", b.name, sb.name) };
                    self.err(
                        Diagnostic::new("E506", format!("cluster `{}` splits by `{}`, which it also groups by{same}", cl.name, sb.name))
                            .at_loc(sb.loc, "in `by` too")
                            .also_loc(b.loc, "grouped by here")
                            .help("a `by` group holds one value of each `by` dimension, so there is nothing to split; split by another dimension of the steps"),
                    );
                    continue;
                }
                split_ok.push(sb);
            }
            // Each `split_by` dimension is one of every step's (reported once per dimension).
            let members: Vec<&Step> = cl
                .steps
                .iter()
                .filter_map(|sn| {
                    let hits: Vec<&Step> = steps.iter().filter(|(_, st)| st.name == sn.name).map(|(_, st)| *st).collect();
                    if hits.len() == 1 {
                        Some(hits[0])
                    } else {
                        None
                    }
                })
                .collect();
            for sb in &split_ok {
                let lacking: Vec<&&Step> = members.iter().filter(|st| model.equal_dims.find_in(&st.over, &sb.name).is_none()).collect();
                if lacking.is_empty() {
                    continue;
                }
                let names: Vec<String> = lacking.iter().map(|st| format!("`{}`", st.name)).collect();
                let mut d = Diagnostic::new(
                    "E506",
                    format!(
                        "cluster `{}` splits by `{}`, which step{} {} not have",
                        cl.name,
                        sb.name,
                        if names.len() == 1 { "" } else { "s" },
                        {
                            let v = names.join(" and ");
                            if names.len() == 1 {
                                format!("{v} does")
                            } else {
                                format!("{v} do")
                            }
                        }
                    ),
                )
                .at_loc(sb.loc, "not a dimension of every step");
                for st in &lacking {
                    d = d.also_loc(
                        st.loc,
                        format!("`{}` runs over ({})", st.name, st.over.iter().map(|d| d.name.as_str()).collect::<Vec<_>>().join(", ")),
                    );
                }
                self.err(
                    d.help("the quanta of a job are ordered and cut by the `split_by` values, so every step of the cluster needs them"),
                );
            }
            for sn in &cl.steps {
                if let Some(i) = find(self, sn, None) {
                    if let Some(other) = in_cluster.get(&i) {
                        self.err(
                            Diagnostic::new("E506", format!("step `{}` is in two clusters", sn.name))
                                .at_loc(sn.loc, format!("in cluster `{}`", cl.name))
                                .also_loc(other.loc, format!("already in cluster `{}`", other.name)),
                        );
                        continue;
                    }
                    in_cluster.insert(i, cl);
                    let st = steps[i].1;
                    for b in &cl.by {
                        if !self.check_dim(b, known) {
                            continue;
                        }
                        if model.equal_dims.find_in(&st.over, &b.name).is_none()
                            && !(self.in_broken_equality(&b.name, known) || st.over.iter().any(|d| self.in_broken_equality(&d.name, known)))
                        {
                            self.err(
                                Diagnostic::new(
                                    "E506",
                                    format!("cluster `{}` groups by `{}`, which step `{}` does not have", cl.name, b.name, st.name),
                                )
                                .at_loc(b.loc, "not a dimension of every step")
                                .also_loc(
                                    st.loc,
                                    format!(
                                        "`{}` runs over ({})",
                                        st.name,
                                        st.over.iter().map(|d| d.name.as_str()).collect::<Vec<_>>().join(", ")
                                    ),
                                ),
                            );
                        }
                    }
                }
            }
        }
        for o in &c.orders {
            match o {
                Order::Before { first, second, .. } => {
                    for n in [first, second] {
                        if model.pipeline(&n.name).is_none() || !used.iter().any(|p| p.name == n.name) {
                            if used.iter().any(|p| p.name == n.name) {
                                continue;
                            }
                            find(self, n, None);
                        }
                    }
                }
                Order::Serial { step, dim, .. } => {
                    if let Some(i) = find(self, step, None) {
                        let p = steps[i].0;
                        let names: Vec<&str> = p.steps.iter().map(|s| s.name.as_str()).collect();
                        self.serial(p, step, dim, &names);
                    }
                }
            }
        }
        // Coverage and the dimensions each step needs.
        let cov_schema = match &c.coverage {
            Some((e, f, _)) => self.coverage_schema(e, *f, 0),
            None => None,
        };
        if let Some(schema) = &cov_schema {
            // A dimension is determined by the coverage, by any relation that has it (joined,
            // or crossed in when it shares nothing with the coverage), or by its own domain.
            let mut closure: BTreeSet<String> = schema.iter().cloned().collect();
            for r in &model.relations {
                closure.extend(r.dims.iter().map(|d| d.name.clone()));
            }
            // A dimension equal to a determined one is determined (`equal`, language 1.1).
            for class in model.equal_dims.classes() {
                if class.iter().any(|d| closure.contains(d)) {
                    closure.extend(class.iter().cloned());
                }
            }
            for (_, s) in &steps {
                for d in &s.over {
                    if closure.contains(&d.name)
                        || model.dim(&d.name).is_some_and(|x| x.domain.is_some() || x.domain_loc.is_some())
                        || !known.contains(d.name.as_str())
                        || self.in_broken_equality(&d.name, known)
                    {
                        continue;
                    }
                    let mut diag =
                        Diagnostic::new("E207", format!("step `{}` runs over `{}`, which the coverage does not determine", s.name, d.name))
                            .at_loc(d.loc, format!("`{}` is not reachable from the coverage", d.name));
                    if let Some((_, _, cl)) = &c.coverage {
                        diag = diag.also_loc(*cl, format!("the coverage is over ({})", schema.join(", ")));
                    }
                    if let Some(dim) = model.dim(&d.name) {
                        diag = diag.also_loc(dim.loc, "declared without a domain");
                    }
                    diag = diag.help(format!(
                        "declare a relation that links `{}` to the coverage, e.g. `relation {}_map({}, {}) = table(\"data/{}_map.csv\")`, or give `{}` a domain",
                        d.name,
                        d.name,
                        schema.first().map(|s| s.as_str()).unwrap_or("visit"),
                        d.name,
                        d.name,
                        d.name
                    ));
                    self.err(diag);
                }
            }
        }
        // Datasets across the campaign's pipelines.
        let mut producers: BTreeMap<&str, (&Pipeline, &Step, Loc)> = BTreeMap::new();
        for (p, s) in &steps {
            for o in &s.outputs {
                if let Some((pp, ps, ploc)) = producers.get(o.name.as_str()) {
                    if pp.name != p.name {
                        self.err(
                            Diagnostic::new("E503", format!("dataset `{}` is produced in two pipelines", o.name))
                                .at_loc(o.loc, format!("produced by `{}.{}`", p.name, s.name))
                                .also_loc(*ploc, format!("already produced by `{}.{}`", pp.name, ps.name)),
                        );
                    }
                    continue;
                }
                producers.insert(o.name.as_str(), (p, s, o.loc));
            }
        }
        for (_, s) in &steps {
            for inp in &s.inputs {
                if inp.optional || producers.contains_key(inp.dataset.name.as_str()) {
                    continue;
                }
                match datasets.get(inp.dataset.name.as_str()).copied() {
                    Some(ds) if ds.source.is_none() => {
                        self.err(
                            Diagnostic::new("E502", format!("nothing produces `{}`, and it has no `source`", ds.name))
                                .at_loc(inp.dataset.loc, format!("consumed by `{}`", s.name))
                                .also_loc(ds.loc, "declared here without `source`")
                                .help(format!("add `source = \"...\"` to dataset `{}`, produce it in an earlier step, or mark the input `optional({})`", ds.name, ds.name)),
                        );
                    }
                    Some(_) => {}
                    None if !model
                        .pipelines
                        .iter()
                        .any(|q| q.steps.iter().any(|t| t.outputs.iter().any(|o| o.name == inp.dataset.name))) =>
                    {
                        // Neither declared nor produced anywhere: E201 already said so.
                    }
                    None => {
                        // Produced in a pipeline the campaign does not use.
                        self.err(
                            Diagnostic::new("E502", format!("nothing in campaign `{}` produces `{}`", c.name, inp.dataset.name))
                                .at_loc(inp.dataset.loc, format!("consumed by `{}`", s.name))
                                .help("use the pipeline that produces it, or declare it as a dataset with a `source`"),
                        );
                    }
                }
            }
        }
        // Cross-pipeline cycles: dataset flow and `order` between steps or pipelines.
        let mut edges: Vec<StepEdge> = Vec::new();
        // (pipeline, step) -> index in `steps`, the first when a name repeats.
        let step_index: HashMap<(&str, &str), usize> =
            steps.iter().enumerate().rev().map(|(i, (q, t))| ((q.name.as_str(), t.name.as_str()), i)).collect();
        for (si, (p, s)) in steps.iter().enumerate() {
            let local = |n: &str| step_index.get(&(p.name.as_str(), n)).copied();
            for dep in &s.after {
                if let Some(pi) = local(&dep.step.name) {
                    edges.push(StepEdge {
                        from: pi,
                        to: si,
                        why: EdgeWhy::After,
                        loc: dep.step.loc,
                        detail: format!("`{}` runs after `{}`", s.name, dep.step.name),
                    });
                }
            }
            for inp in &s.inputs {
                if let Some((pp, ps, _)) = producers.get(inp.dataset.name.as_str()) {
                    if let Some(pi) = step_index.get(&(pp.name.as_str(), ps.name.as_str())).copied() {
                        if pi != si {
                            edges.push(StepEdge {
                                from: pi,
                                to: si,
                                why: EdgeWhy::Dataset,
                                loc: inp.dataset.loc,
                                detail: format!("`{}` reads `{}` from `{}`", s.name, inp.dataset.name, ps.name),
                            });
                        }
                    }
                }
            }
            for o in &p.orders {
                if let Order::Before { first, second, loc } = o {
                    if second.name == s.name {
                        if let Some(pi) = local(&first.name) {
                            edges.push(StepEdge {
                                from: pi,
                                to: si,
                                why: EdgeWhy::Order,
                                loc: *loc,
                                detail: format!("`order {} before {}`", first.name, second.name),
                            });
                        }
                    }
                }
            }
        }
        for o in c.orders.iter().chain(model.orders.iter()) {
            if let Order::Before { first, second, loc } = o {
                let group = |n: &str| -> Vec<usize> {
                    if used.iter().any(|p| p.name == n) {
                        steps.iter().enumerate().filter(|(_, (p, _))| p.name == n).map(|(i, _)| i).collect()
                    } else {
                        steps.iter().enumerate().filter(|(_, (_, s))| s.name == n).map(|(i, _)| i).collect()
                    }
                };
                for a in group(&first.name) {
                    for b in group(&second.name) {
                        edges.push(StepEdge {
                            from: a,
                            to: b,
                            why: EdgeWhy::Order,
                            loc: *loc,
                            detail: format!("`order {} before {}`", first.name, second.name),
                        });
                    }
                }
            }
        }
        edges.sort_by_key(|e| (e.from, e.to, e.why));
        let nodes: Vec<(String, Loc)> =
            steps.iter().map(|(p, s)| (if used.len() > 1 { format!("{}.{}", p.name, s.name) } else { s.name.clone() }, s.loc)).collect();
        if let Some(cycle) = find_cycle(nodes.len(), &edges) {
            // Pipeline-local cycles were reported with the pipeline.
            let all_local = cycle.iter().all(|e| {
                e.why != EdgeWhy::Order
                    || c.orders.iter().chain(model.orders.iter()).all(|o| match o {
                        Order::Before { loc, .. } => *loc != e.loc,
                        _ => true,
                    })
            }) && cycle.iter().all(|e| steps[e.from].0.name == steps[e.to].0.name);
            if !all_local {
                self.report_cycle(&nodes, &cycle);
            }
        }
        // The final job (language 1.1): a job over `()` with a step's placeholders; its
        // `{config.KEY}` are those of the chosen config when the campaign uses one pipeline.
        if let Some(f) = &c.final_job {
            if let Some((p, st)) = steps.iter().find(|(_, st)| st.name == f.name) {
                self.err(
                    Diagnostic::new("E202", format!("final job `{}` has the name of step `{}.{}`", f.name, p.name, st.name))
                        .at_loc(f.loc, "final job named here")
                        .also_loc(st.loc, "step defined here")
                        .help("rename the final job: job names must be unique in the workflow"),
                );
            }
            if let Some(run) = &f.run {
                let sets: Vec<BTreeSet<String>> = match used.as_slice() {
                    [p] => self.configs_in_campaign(c, p).iter().map(|cf| self.config_keys_with_sets(p, cf)).collect(),
                    _ => Vec::new(),
                };
                let no_config = if used.len() > 1 { "the campaign uses several pipelines: whose config?" } else { "no config" };
                let configs = if used.len() == 1 { Some(sets.as_slice()) } else { None };
                self.placeholders_in(run, &[], RUN_PLACEHOLDERS, configs, no_config, None, "a final job");
            }
        }
        // Placeholders of notify.
        if let Some(n) = &c.notify {
            if let Some(t) = &n.command {
                self.placeholders(t, &[], NOTIFY_PLACEHOLDERS, None, "a notify command");
            }
        }
        // Sites and limits, per step.
        for (p, s) in &steps {
            self.step_sites(c, p, s);
        }
    }

    /// Report a per-step site problem once per setting at fault: when a setting shared by
    /// several steps (in `defaults` or the campaign) causes it, later steps add a note to the
    /// first diagnostic instead of repeating it at the same place.
    fn err_once_per_setting(&mut self, d: Diagnostic, step: &str) {
        let at = d.primary.as_ref().map(|l| l.loc);
        if let Some(first) = self.diags.iter_mut().find(|x| x.code == d.code && x.primary.as_ref().map(|l| l.loc) == at) {
            first.notes.push(format!("step `{step}` is affected too"));
            return;
        }
        self.err(d);
    }

    fn step_sites(&mut self, c: &Campaign, p: &Pipeline, s: &Step) {
        let model = self.model;
        let st = resolve::resolve_step(model, Some(c), p, s, self.sets);
        self.memory_cap(&st, s);
        let avoid = st.names("avoid_sites");
        let chosen_explicit = st.values.get("site").map(|r| (r.value.clone(), r.origin.clone()));
        if let Some((Value::Names(v), origin)) = &chosen_explicit {
            if let Some(n) = v.first() {
                if avoid.contains(n) {
                    let av = &st.values["avoid_sites"];
                    let mut d = Diagnostic::new("E601", format!("step `{}` runs at site `{n}`, which it also avoids", s.name));
                    d = match origin.loc {
                        Some(l) => d.at_loc(l, format!("`site = {n}` from {}", origin.label)),
                        None => d.at_loc(s.loc, format!("`site = {n}` from {}", origin.label)),
                    };
                    if let Some(l) = av.origin.loc {
                        d = d.also_loc(l, format!("`avoid_sites` from {}", av.origin.label));
                    }
                    d = d.help("remove the site from `avoid_sites`, or choose another site");
                    self.err_once_per_setting(d, &s.name);
                    return;
                }
            }
        }
        if st.site.is_none() && !model.sites.is_empty() {
            let mut d = Diagnostic::new("E602", format!("no eligible site for step `{}`", s.name)).at_loc(s.loc, "nowhere to run");
            d = match (st.values.get("sites"), st.values.get("avoid_sites")) {
                (Some(ss), Some(av)) => {
                    if let Some(l) = ss.origin.loc {
                        d = d.also_loc(l, format!("candidates from {}", ss.origin.label));
                    }
                    if let Some(l) = av.origin.loc {
                        d = d.also_loc(l, format!("all avoided by {}", av.origin.label));
                    }
                    d.help("every candidate site is avoided; remove one from `avoid_sites` or add a site to `sites`")
                }
                _ => d.help(format!(
                    "the program defines {} sites; choose one with `site = NAME` in the campaign or the step (sites: {})",
                    model.sites.len(),
                    model.sites.iter().map(|x| x.name.as_str()).collect::<Vec<_>>().join(", ")
                )),
            };
            self.err(d);
            return;
        }
        let Some(site) = st.site.as_ref().and_then(|n| model.site(n)) else {
            return;
        };
        self.used.mark("site", &site.name);
        let limits: [(&str, Option<(u64, Loc)>, &str); 4] = [
            ("memory", site.max_memory, "max_memory"),
            // The step's own cap on memory growth (language 1.1) stays under the site's.
            ("max_memory", site.max_memory, "max_memory"),
            ("walltime", site.max_walltime, "max_walltime"),
            ("cpus", site.max_cpus.map(|(v, l)| (v.max(0) as u64, l)), "max_cpus"),
        ];
        for (key, limit, lname) in limits {
            let (Some((lim, lloc)), Some(r)) = (limit, st.values.get(key)) else {
                continue;
            };
            let Some(v) = r.value.as_u64() else { continue };
            if v > lim {
                let fmt = |x: u64| match key {
                    "memory" | "max_memory" => fmt_size(x),
                    "walltime" => fmt_duration(x),
                    _ => x.to_string(),
                };
                let mut d = Diagnostic::new(
                    "E603",
                    format!("step `{}` asks for {key} = {}, over site `{}`'s {lname} = {}", s.name, fmt(v), site.name, fmt(lim)),
                );
                d = match r.origin.loc {
                    Some(l) => d.at_loc(l, format!("{} from {}", fmt(v), r.origin.label)),
                    None => d.at_loc(s.loc, format!("{} from {}", fmt(v), r.origin.label)),
                };
                d = d.also_loc(lloc, format!("limit of site `{}`", site.name));
                let mut chain: Vec<String> = r.overridden.iter().map(|(v, o)| format!("{v} ({})", o.label)).collect();
                chain.push(format!("{} ({})", r.value, r.origin.label));
                d = d
                    .note(format!("override chain: {}", chain.join(" < ")))
                    .help(format!("lower `{key}`, or run step `{}` at a site that allows it", s.name));
                self.err_once_per_setting(d, &s.name);
            }
        }
    }

    /// E604: the first attempt asks for more memory than the step's own `max_memory`, the cap
    /// of its growth on retries.
    fn memory_cap(&mut self, st: &resolve::StepSettings, s: &Step) {
        let (Some(mem), Some(cap)) = (st.resolved("memory"), st.resolved("max_memory")) else { return };
        let (Some(m), Some(c)) = (mem.value.as_u64(), cap.value.as_u64()) else { return };
        if m <= c {
            return;
        }
        let mut d = Diagnostic::new(
            "E604",
            format!("step `{}` asks for memory = {} but caps its memory at max_memory = {}", s.name, fmt_size(m), fmt_size(c)),
        );
        d = d.at_loc(mem.origin.loc.unwrap_or(s.loc), format!("{} from {}", fmt_size(m), mem.origin.label));
        if let Some(l) = cap.origin.loc {
            d = d.also_loc(l, format!("max_memory {} from {}", fmt_size(c), cap.origin.label));
        }
        let mut chain: Vec<String> = mem.overridden.iter().map(|(v, o)| format!("{v} ({})", o.label)).collect();
        chain.push(format!("{} ({})", mem.value, mem.origin.label));
        d = d
            .note(format!("memory override chain: {}", chain.join(" < ")))
            .help("`max_memory` caps the growth of `memory` on retries, so it cannot be below the first request: raise `max_memory` or lower `memory`");
        self.err_once_per_setting(d, &s.name);
    }
}

/// A cycle in a graph of `n` nodes, as its edges in order, or `None`.  Iterative DFS.
pub fn find_cycle(n: usize, edges: &[StepEdge]) -> Option<Vec<&StepEdge>> {
    let mut adj: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, e) in edges.iter().enumerate() {
        if e.from < n && e.to < n {
            adj[e.from].push(i);
        }
    }
    // 0 = unvisited, 1 = on stack, 2 = done
    let mut state = vec![0u8; n];
    for start in 0..n {
        if state[start] != 0 {
            continue;
        }
        let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
        let mut path_edges: Vec<usize> = Vec::new();
        state[start] = 1;
        while let Some(&mut (v, ref mut k)) = stack.last_mut() {
            if *k < adj[v].len() {
                let ei = adj[v][*k];
                *k += 1;
                let w = edges[ei].to;
                match state[w] {
                    0 => {
                        state[w] = 1;
                        path_edges.push(ei);
                        stack.push((w, 0));
                    }
                    1 => {
                        // Cycle: edges from w along the path back to v, plus ei.
                        let mut cyc: Vec<&StepEdge> = Vec::new();
                        let pos = path_edges.iter().position(|&pe| edges[pe].from == w).unwrap_or(path_edges.len());
                        for &pe in &path_edges[pos..] {
                            cyc.push(&edges[pe]);
                        }
                        cyc.push(&edges[ei]);
                        return Some(cyc);
                    }
                    _ => {}
                }
            } else {
                state[v] = 2;
                stack.pop();
                path_edges.pop();
            }
        }
    }
    None
}

/// Two literal domains (ranges, lists) with no value in common.  Tables are not read here:
/// `false` for them.
fn domains_disjoint(a: &Domain, b: &Domain) -> bool {
    fn values(d: &Domain) -> Option<Result<(i64, i64), Vec<String>>> {
        match d {
            Domain::Range { lo, hi, inclusive } => Some(Ok((*lo, if *inclusive { *hi } else { hi.saturating_sub(1) }))),
            Domain::List(items) => Some(Err(items
                .iter()
                .map(|l| match l {
                    Literal::Int(i) => i.to_string(),
                    Literal::Str(s) => format!("\"{s}\""),
                })
                .collect())),
            Domain::Table { .. } => None,
        }
    }
    let in_range = |v: &str, (lo, hi): (i64, i64)| v.parse::<i64>().is_ok_and(|x| lo <= x && x <= hi);
    match (values(a), values(b)) {
        (Some(Ok((a0, a1))), Some(Ok((b0, b1)))) => a1 < b0 || b1 < a0 || a1 < a0 || b1 < b0,
        (Some(Ok(r)), Some(Err(l))) | (Some(Err(l)), Some(Ok(r))) => !l.iter().any(|v| in_range(v, r)),
        (Some(Err(x)), Some(Err(y))) => !x.iter().any(|v| y.contains(v)),
        _ => false,
    }
}
