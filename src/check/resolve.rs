//! Execution settings through the scope chain:
//! built-in < `defaults` < site < pipeline < campaign < step < campaign's step override < `--set`.
//!
//! Every resolved value keeps where it came from and every value it overrode.

use std::collections::BTreeMap;

use super::keys;
use super::model::*;
use crate::source::Loc;

/// Built-in values, the bottom of every chain.  Chosen for a production operator: a failed
/// job is retried three times with 50% more memory each time, and a failure does not stop
/// unrelated work (`on_failure = continue`).
pub fn builtin(key: &str) -> Option<Value> {
    Some(match key {
        "memory" => Value::Size(2 << 30),
        "cpus" => Value::Int(1),
        "disk" => Value::Size(10 << 30),
        "walltime" => Value::Duration(12 * 3600),
        "retries" => Value::Int(3),
        "retry_unless_exit" => Value::IntList(Vec::new()),
        "memory_growth" => Value::Float(1.5),
        "priority" => Value::Int(0),
        "on_failure" => Value::Word("continue".into()),
        // Language 1.1 (they apply to version 1 files too): a retry asks for more memory only
        // after running out of it; files an attempt leaves besides its outputs are removed.
        "memory_growth_on" => Value::Word("oom".into()),
        "unexpected" => Value::Word("discard".into()),
        _ => return None,
    })
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub enum ScopeKind {
    #[serde(rename = "built-in")]
    Builtin,
    #[serde(rename = "defaults")]
    Defaults,
    #[serde(rename = "site")]
    Site,
    #[serde(rename = "pipeline")]
    Pipeline,
    #[serde(rename = "campaign")]
    Campaign,
    #[serde(rename = "step")]
    Step,
    #[serde(rename = "campaign step override")]
    Override,
    #[serde(rename = "--set")]
    CommandLine,
}

#[derive(Clone, Debug)]
pub struct Origin {
    pub scope: ScopeKind,
    /// e.g. `site in2p3`, `pipeline drp`, `--set coadd.memory=32GiB`.
    pub label: String,
    pub loc: Option<Loc>,
}

#[derive(Clone, Debug)]
pub struct Resolved {
    pub value: Value,
    pub origin: Origin,
    /// Lower-precedence values this one overrode, lowest first.
    pub overridden: Vec<(Value, Origin)>,
}

/// A `--set` from the command line, already typed.
#[derive(Clone, Debug)]
pub struct CliSet {
    /// `None`: every step.  `Some(step)`: one step.
    pub step: Option<String>,
    pub key: &'static str,
    pub value: Value,
    pub text: String,
    pub loc: Option<Loc>,
}

/// The resolved execution settings of one step (or of a campaign's `final` job).
///
/// Keys are the canonical names of [`keys::KEYS`]: `max_jobs` (the language 1.0 spelling)
/// resolves as `max_running`, and [`StepSettings::get`] answers for either name.
#[derive(Clone, Debug, Default)]
pub struct StepSettings {
    pub values: BTreeMap<&'static str, Resolved>,
    /// `env { }`: a name also in `pass_env` takes this value.
    pub env: BTreeMap<String, Resolved>,
    /// The site the step runs at (`None` when the program defines no site).
    pub site: Option<String>,
    /// Keys whose lists are merged across scopes ([`keys::MERGED`]: `pass_env`): every
    /// contributing scope's own list, lowest precedence first.  `values[key]` holds their
    /// union (in order of first appearance), its origin the most specific contributing
    /// scope, and nothing in `overridden`.
    pub merged: BTreeMap<&'static str, Vec<(Value, Origin)>>,
}

impl StepSettings {
    /// The value of `key` (`max_jobs` answers with `max_running`).
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.values.get(keys::canonical(key)).map(|r| &r.value)
    }

    /// The resolved entry of `key` with its chain (`max_jobs` answers with `max_running`).
    pub fn resolved(&self, key: &str) -> Option<&Resolved> {
        self.values.get(keys::canonical(key))
    }

    /// `pass_env`: the names of the submitting shell's variables the jobs see.
    pub fn pass_env(&self) -> Vec<String> {
        self.names("pass_env")
    }
    pub fn size(&self, key: &str) -> Option<u64> {
        self.get(key).and_then(|v| v.as_u64())
    }
    pub fn int(&self, key: &str) -> Option<i64> {
        match self.get(key) {
            Some(Value::Int(i)) => Some(*i),
            _ => None,
        }
    }
    pub fn names(&self, key: &str) -> Vec<String> {
        match self.get(key) {
            Some(Value::Names(v)) | Some(Value::StrList(v)) => v.clone(),
            _ => Vec::new(),
        }
    }
}

pub struct Chain<'a> {
    pub layers: Vec<(Origin, &'a Layer)>,
}

/// Add one scope's value of `key`: it overrides what lower scopes said, or, for a merged key,
/// adds its names to theirs.
fn apply(st: &mut StepSettings, key: &'static str, value: Value, origin: Origin) {
    if !keys::MERGED.contains(&key) {
        push(&mut st.values, key, value, origin);
        return;
    }
    let mut union = match st.values.get(key).map(|r| &r.value) {
        Some(Value::StrList(v)) => v.clone(),
        _ => Vec::new(),
    };
    if let Value::StrList(v) = &value {
        for n in v {
            if !union.contains(n) {
                union.push(n.clone());
            }
        }
    }
    st.merged.entry(key).or_default().push((value, origin.clone()));
    st.values.insert(key, Resolved { value: Value::StrList(union), origin, overridden: Vec::new() });
}

fn push(values: &mut BTreeMap<&'static str, Resolved>, key: &'static str, value: Value, origin: Origin) {
    match values.get_mut(key) {
        Some(r) => {
            let old = std::mem::replace(r, Resolved { value, origin, overridden: Vec::new() });
            r.overridden = old.overridden;
            r.overridden.push((old.value, old.origin));
        }
        None => {
            values.insert(key, Resolved { value, origin, overridden: Vec::new() });
        }
    }
}

/// Resolve all execution settings of `step` (of pipeline `pipe`) in `camp`.
///
/// The site layer depends on the resolved `site`/`sites`/`avoid_sites`, which the site
/// cannot set itself, so these are resolved first without it.
pub fn resolve_step(model: &Model, camp: Option<&Campaign>, pipe: &Pipeline, step: &Step, sets: &[CliSet]) -> StepSettings {
    let overrides: Vec<&Override> = camp
        .map(|c| {
            c.overrides.iter().filter(|o| o.step.name == step.name && o.pipeline.as_ref().is_none_or(|p| p.name == pipe.name)).collect()
        })
        .unwrap_or_default();
    let mut layers: Vec<(Origin, &Layer)> = Vec::new();
    layers.push((Origin { scope: ScopeKind::Defaults, label: "defaults".into(), loc: None }, &model.defaults));
    let site_slot = layers.len();
    layers.push((Origin { scope: ScopeKind::Pipeline, label: format!("pipeline {}", pipe.name), loc: Some(pipe.loc) }, &pipe.layer));
    if let Some(c) = camp {
        layers.push((Origin { scope: ScopeKind::Campaign, label: format!("campaign {}", c.name), loc: Some(c.loc) }, &c.layer));
    }
    layers.push((Origin { scope: ScopeKind::Step, label: format!("step {}.{}", pipe.name, step.name), loc: Some(step.loc) }, &step.layer));
    for o in &overrides {
        layers.push((
            Origin { scope: ScopeKind::Override, label: format!("campaign override of {}", step.name), loc: Some(o.loc) },
            &o.layer,
        ));
    }
    let applies = |s: &CliSet| s.step.as_deref().is_none_or(|n| n == step.name || n == format!("{}.{}", pipe.name, step.name));
    resolve_layers(model, layers, site_slot, sets, &applies)
}

/// Resolve the execution settings of campaign `camp`'s `final` job: a job over `()` that
/// belongs to no pipeline, so its chain is built-in < `defaults` < site < campaign < the
/// `--set`s that name no step.
pub fn resolve_final(model: &Model, camp: &Campaign, sets: &[CliSet]) -> StepSettings {
    let layers: Vec<(Origin, &Layer)> = vec![
        (Origin { scope: ScopeKind::Defaults, label: "defaults".into(), loc: None }, &model.defaults),
        (Origin { scope: ScopeKind::Campaign, label: format!("campaign {}", camp.name), loc: Some(camp.loc) }, &camp.layer),
    ];
    resolve_layers(model, layers, 1, sets, &|s: &CliSet| s.step.is_none())
}

/// The chain of `layers` (lowest first; the chosen site's layer goes in at `site_slot`), then
/// the `--set`s for which `applies` holds.
fn resolve_layers<'a>(
    model: &'a Model,
    mut layers: Vec<(Origin, &'a Layer)>,
    site_slot: usize,
    sets: &[CliSet],
    applies: &dyn Fn(&CliSet) -> bool,
) -> StepSettings {
    // Pass 1: where does the step run?
    let mut pre = BTreeMap::new();
    for (origin, layer) in &layers {
        for s in &layer.settings {
            if matches!(s.key, "site" | "sites" | "avoid_sites") {
                push(&mut pre, s.key, s.value.clone(), Origin { loc: Some(s.loc), ..origin.clone() });
            }
        }
    }
    for s in sets.iter().filter(|s| applies(s)) {
        if matches!(s.key, "site" | "sites" | "avoid_sites") {
            push(
                &mut pre,
                s.key,
                s.value.clone(),
                Origin { scope: ScopeKind::CommandLine, label: format!("--set {}", s.text), loc: s.loc },
            );
        }
    }
    let site = choose_site(model, &pre);
    if let Some(site) = site.as_ref().and_then(|n| model.site(n)) {
        layers
            .insert(site_slot, (Origin { scope: ScopeKind::Site, label: format!("site {}", site.name), loc: Some(site.loc) }, &site.layer));
    }

    // Pass 2: everything.
    let mut st = StepSettings { site, ..Default::default() };
    for k in keys::exec_keys() {
        if let Some(v) = builtin(k.name) {
            st.values.insert(
                k.name,
                Resolved {
                    value: v,
                    origin: Origin { scope: ScopeKind::Builtin, label: "built-in".into(), loc: None },
                    overridden: Vec::new(),
                },
            );
        }
    }
    for (origin, layer) in &layers {
        for s in &layer.settings {
            apply(&mut st, s.key, s.value.clone(), Origin { loc: Some(s.loc), ..origin.clone() });
        }
        for (name, val, loc) in &layer.env {
            let o = Origin { loc: Some(*loc), ..origin.clone() };
            match st.env.get_mut(name) {
                Some(r) => {
                    let old = std::mem::replace(r, Resolved { value: Value::Str(val.clone()), origin: o, overridden: Vec::new() });
                    r.overridden = old.overridden;
                    r.overridden.push((old.value, old.origin));
                }
                None => {
                    st.env.insert(name.clone(), Resolved { value: Value::Str(val.clone()), origin: o, overridden: Vec::new() });
                }
            }
        }
    }
    for s in sets.iter().filter(|s| applies(s)) {
        apply(&mut st, s.key, s.value.clone(), Origin { scope: ScopeKind::CommandLine, label: format!("--set {}", s.text), loc: s.loc });
    }
    // `queue` and `partition` are one setting under two names: the later scope wins.
    st
}

/// The site a step runs at: `site` if set; else the first of `sites` not avoided; else the
/// only site the program defines.  `None` when nothing qualifies (the checker reports why).
pub fn choose_site(model: &Model, pre: &BTreeMap<&'static str, Resolved>) -> Option<String> {
    let avoid: Vec<String> = match pre.get("avoid_sites").map(|r| &r.value) {
        Some(Value::Names(v)) => v.clone(),
        _ => Vec::new(),
    };
    if let Some(Value::Names(v)) = pre.get("site").map(|r| &r.value) {
        return v.first().filter(|s| !avoid.contains(s)).cloned();
    }
    if let Some(Value::Names(v)) = pre.get("sites").map(|r| &r.value) {
        return v.iter().find(|s| !avoid.contains(s)).cloned();
    }
    match model.sites.as_slice() {
        [only] if !avoid.contains(&only.name) => Some(only.name.clone()),
        _ => None,
    }
}

/// Resolve `site`, `sites`, `avoid_sites` alone (for diagnostics).
pub fn site_settings(
    model: &Model,
    camp: Option<&Campaign>,
    pipe: &Pipeline,
    step: &Step,
    sets: &[CliSet],
) -> BTreeMap<&'static str, Resolved> {
    let all = resolve_step(model, camp, pipe, step, sets);
    all.values.into_iter().filter(|(k, _)| matches!(*k, "site" | "sites" | "avoid_sites")).collect()
}

/// `--set config.KEY=VALUE` (the chosen config of every pipeline the campaign uses) or
/// `--set PIPELINE.config.KEY=VALUE` (language 1.1), already parsed.
#[derive(Clone, Debug)]
pub struct ConfigSet {
    /// `None`: every pipeline's chosen config.
    pub pipeline: Option<String>,
    pub key: String,
    pub value: ConfigValue,
    /// The argument as written.
    pub text: String,
    /// The whole argument (in its `<--set N>` file).
    pub loc: Loc,
    /// Where `PIPELINE` is written in the argument.
    pub pipeline_loc: Option<Loc>,
    /// Where `KEY` is written in the argument.
    pub key_loc: Loc,
}

impl ConfigSet {
    pub fn applies_to(&self, pipeline: &str) -> bool {
        self.pipeline.as_deref().is_none_or(|p| p == pipeline)
    }
}

/// One parameter of a resolved config, with where it came from.
#[derive(Clone, Debug)]
pub struct ResolvedParam {
    pub value: ConfigValue,
    pub origin: Origin,
    /// Lower-precedence values this one overrode, lowest first: a config it `extends`, then
    /// earlier `--set`s.
    pub overridden: Vec<(ConfigValue, Origin)>,
}

/// A pipeline's chosen config with `extends` applied (the child wins) and then the
/// `--set config.KEY=...` that apply to the pipeline, in command-line order.
#[derive(Clone, Debug, Default)]
pub struct ResolvedConfig {
    /// The chosen config (`None`: the pipeline has none chosen; then no parameters at all).
    pub name: Option<String>,
    pub params: BTreeMap<String, ResolvedParam>,
}

impl ResolvedConfig {
    /// `KEY` -> value as the job sees it (strings unquoted), in key order.
    pub fn values(&self) -> Vec<(String, String)> {
        self.params
            .iter()
            .map(|(k, r)| {
                let s = match &r.value {
                    ConfigValue::Str(s) => s.clone(),
                    other => other.to_string(),
                };
                (k.clone(), s)
            })
            .collect()
    }
}

/// The config `use PIPELINE with NAME` chooses (`name`), or the pipeline's only config.
pub fn chosen_config<'a>(pipe: &'a Pipeline, name: Option<&str>) -> Option<&'a Config> {
    match name {
        Some(n) => pipe.configs.iter().find(|c| c.name == n),
        None if pipe.configs.len() == 1 => pipe.configs.first(),
        None => None,
    }
}

/// Resolve pipeline `pipe`'s config `name` (see [`chosen_config`]): its `extends` chain, most
/// general first, then the `sets` that apply to the pipeline.
pub fn resolve_config(pipe: &Pipeline, name: Option<&str>, sets: &[ConfigSet]) -> ResolvedConfig {
    let Some(c) = chosen_config(pipe, name) else {
        return ResolvedConfig::default();
    };
    let mut chain: Vec<&Config> = Vec::new();
    let mut cur = Some(c);
    while let Some(cf) = cur {
        if chain.iter().any(|x| x.name == cf.name) {
            break; // an `extends` cycle (E208)
        }
        chain.push(cf);
        cur = cf.extends.as_ref().and_then(|e| pipe.configs.iter().find(|x| x.name == e.name));
    }
    let mut params: BTreeMap<String, ResolvedParam> = BTreeMap::new();
    let mut put = |k: &str, value: ConfigValue, origin: Origin| match params.get_mut(k) {
        Some(r) => {
            let old = std::mem::replace(r, ResolvedParam { value, origin, overridden: Vec::new() });
            r.overridden = old.overridden;
            r.overridden.push((old.value, old.origin));
        }
        None => {
            params.insert(k.to_string(), ResolvedParam { value, origin, overridden: Vec::new() });
        }
    };
    for cf in chain.iter().rev() {
        for (k, v, loc) in &cf.params {
            let label = format!("config {} of pipeline {}", cf.name, pipe.name);
            put(k, v.clone(), Origin { scope: ScopeKind::Pipeline, label, loc: Some(*loc) });
        }
    }
    for s in sets.iter().filter(|s| s.applies_to(&pipe.name)) {
        put(&s.key, s.value.clone(), Origin { scope: ScopeKind::CommandLine, label: format!("--set {}", s.text), loc: Some(s.loc) });
    }
    ResolvedConfig { name: Some(c.name.clone()), params }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::{check, Options};
    use crate::fs::MemFs;
    use std::path::Path;

    fn checked(src: &str, sets: &[&str]) -> crate::check::Checked {
        let fs = MemFs::new().with("c.bps", src.as_bytes().to_vec());
        let opts = Options { sets: sets.iter().map(|s| s.to_string()).collect(), ..Default::default() };
        let c = check(&fs, Path::new("c.bps"), &opts);
        assert!(!c.has_errors(), "{:?}", c.diags.items.iter().map(|d| d.message.clone()).collect::<Vec<_>>());
        c
    }

    const SRC: &str = "bps 1.1\nsite s { backend = slurm, max_memory = 64GiB, pass_env = [\"SITE_VAR\"] }\ndefaults { pass_env = [\"HOME\"], max_jobs = 5 }\ndimension v = 0..2\npipeline p {\n  step a over (v) { run = \"a\", pass_env = [\"DRP_DIR\", \"HOME\"], max_memory = 32GiB }\n}\ncampaign k {\n  use p\n  coverage = v\n  max_running = 7\n  final report { run = \"report {campaign}\" }\n}\n";

    #[test]
    fn pass_env_lists_are_merged_with_every_contribution_recorded() {
        let c = checked(SRC, &["pass_env=[\"CLI_VAR\"]"]);
        let (camp, p) = (&c.model.campaigns[0], &c.model.pipelines[0]);
        let st = resolve_step(&c.model, Some(camp), p, &p.steps[0], &c.sets);
        assert_eq!(st.pass_env(), ["HOME", "SITE_VAR", "DRP_DIR", "CLI_VAR"]);
        let labels: Vec<&str> = st.merged["pass_env"].iter().map(|(_, o)| o.label.as_str()).collect();
        assert_eq!(labels, ["defaults", "site s", "step p.a", "--set pass_env=[\"CLI_VAR\"]"]);
        assert!(st.values["pass_env"].overridden.is_empty());
        assert_eq!(st.values["pass_env"].origin.scope, ScopeKind::CommandLine);
    }

    #[test]
    fn max_jobs_is_max_running_and_builtins_of_1_1() {
        let c = checked(SRC, &[]);
        let (camp, p) = (&c.model.campaigns[0], &c.model.pipelines[0]);
        let st = resolve_step(&c.model, Some(camp), p, &p.steps[0], &c.sets);
        assert_eq!(st.int("max_running"), Some(7));
        assert_eq!(st.int("max_jobs"), Some(7), "the 1.0 spelling answers too");
        let r = st.resolved("max_jobs").unwrap();
        assert_eq!(r.overridden.len(), 1, "defaults' max_jobs = 5 was overridden");
        assert_eq!(st.get("memory_growth_on"), Some(&Value::Word("oom".into())));
        assert_eq!(st.get("unexpected"), Some(&Value::Word("discard".into())));
        assert_eq!(st.size("max_memory"), Some(32 << 30), "the step's cap, not the site's limit");
        assert!(c.model.sites[0].layer.get("max_memory").is_none(), "a site's max_memory stays a limit");
    }

    #[test]
    fn the_final_job_resolves_with_the_campaign_settings() {
        let c = checked(SRC, &["memory=3GiB", "a.memory=5GiB"]);
        let camp = &c.model.campaigns[0];
        let f = camp.final_job.as_ref().unwrap();
        assert_eq!((f.name.as_str(), f.when), ("report", crate::check::model::FinalWhen::Always));
        let st = resolve_final(&c.model, camp, &c.sets);
        assert_eq!(st.site.as_deref(), Some("s"));
        assert_eq!(st.size("memory"), Some(3 << 30), "step-specific --set does not apply");
        assert_eq!(st.int("max_running"), Some(7));
        assert_eq!(st.pass_env(), ["HOME", "SITE_VAR"]);
    }
}
