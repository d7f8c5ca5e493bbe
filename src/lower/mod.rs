//! Lowering: from a checked campaign to the IR DAG.
//!
//! 1. The campaign coverage is evaluated (dictionary-encoded relational algebra).
//! 2. Each step's quanta are its universe projected on its dimensions (see
//!    [`eval::Env::extend`]).
//! 3. Each step dependency (`after`, dataset flow) becomes quantum edges: the rows of the
//!    universe joined over both steps' dimensions.  `after P all` and `order A before B`
//!    are barriers through one join node.
//! 4. Clusters map quanta to jobs; job edges are the quantum edges between different jobs.
//!    A clustering that creates a cycle is E504.
//! 5. Parent sets of [`JOIN_MIN`] or more jobs shared by several children go through a join
//!    node, so the edge count stays linear.
//! 6. Stage-in, stage-out, cleanup and the final provenance job are inserted.
//! 7. Priorities follow the step level: breadth-first favours early steps, depth-first late.
//!
//! Every collection is built in a deterministic order (canonical relation order, definition
//! order of steps), so the same campaign always gives the same IR.

pub mod eval;
pub mod graph;
pub mod settings;

use std::collections::BTreeMap;

use crate::check::model::{Campaign, Model, Order, Persist, Pipeline, Stage, Step};
use crate::check::resolve;
use crate::check::Checked;
use crate::coverage;
use crate::diag::Diagnostic;
use crate::ir::{
    CampaignSettings, Cluster as IrCluster, Input as IrInput, Ir, Notify, OrderMode, Output as IrOutput, Site as IrSite, Step as IrStep,
    StepEdgeKind,
};
use eval::Env;

/// Parent sets at least this large, shared by at least two children, go through a join node.
pub const JOIN_MIN: usize = 8;

/// Default threshold of W701.
pub const DEFAULT_COVERAGE_WARN: usize = 1_000_000;

#[derive(Clone, Debug)]
pub struct LowerOptions {
    pub campaign: Option<String>,
    /// `A..B` or `A,B,C`.
    pub steps: Option<String>,
    pub coverage_warn: usize,
}

impl Default for LowerOptions {
    fn default() -> Self {
        LowerOptions { campaign: None, steps: None, coverage_warn: DEFAULT_COVERAGE_WARN }
    }
}

pub struct Lowered {
    pub ir: Option<Ir>,
    pub diags: Vec<Diagnostic>,
}

fn fail(diags: Vec<Diagnostic>) -> Lowered {
    Lowered { ir: None, diags }
}

pub fn pick_campaign<'a>(model: &'a Model, name: Option<&str>) -> Result<&'a Campaign, Diagnostic> {
    match name {
        Some(n) => model.campaigns.iter().find(|c| c.name == n).ok_or_else(|| {
            Diagnostic::new("E201", format!("no campaign named `{n}`"))
                .help(format!("campaigns: {}", model.campaigns.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ")))
        }),
        None => match model.campaigns.as_slice() {
            [one] => Ok(one),
            [] => Err(Diagnostic::new("E205", "the file defines no campaign to compile")
                .help("add `campaign NAME { use ..., coverage = ... }`, or compile the file that includes this one")),
            many => Err(Diagnostic::new("E209", format!("the file defines {} campaigns; choose one with --campaign", many.len()))
                .help(format!("campaigns: {}", many.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ")))),
        },
    }
}

/// Kinds of step-level dependency.
pub type DepKind = StepEdgeKind;

#[derive(Clone, Debug)]
pub struct StepDep {
    pub from: usize,
    pub to: usize,
    pub kind: DepKind,
}

/// Resolved config parameters of `use P with C`: inheritance applied (child wins), then the
/// `--set [P.]config.KEY=...` overrides (the checker's [`resolve::resolve_config`]).
fn config_params(p: &Pipeline, name: Option<&str>, sets: &[resolve::ConfigSet]) -> (Option<String>, Vec<(String, String)>) {
    let r = resolve::resolve_config(p, name, sets);
    let values = r.values();
    (r.name, values)
}

/// Select steps for `--steps A..B` (a range in topological order) or `--steps A,B`.
fn select_steps(spec: &str, names: &[String], topo: &[usize]) -> Result<Vec<bool>, Diagnostic> {
    let find = |n: &str| -> Result<usize, Diagnostic> {
        names.iter().position(|x| x == n || x.rsplit('.').next() == Some(n)).ok_or_else(|| {
            let mut d = Diagnostic::new("E201", format!("--steps: no step named `{n}`"));
            if let Some(s) = crate::diag::did_you_mean(n, names.iter().map(|x| x.as_str())) {
                d = d.help(format!("did you mean `{s}`?"));
            } else {
                d = d.help(format!("steps: {}", names.join(", ")));
            }
            d
        })
    };
    let mut keep = vec![false; names.len()];
    if let Some((a, b)) = spec.split_once("..") {
        let (ia, ib) = (find(a.trim())?, find(b.trim())?);
        let pa = topo.iter().position(|&x| x == ia).unwrap_or(0);
        let pb = topo.iter().position(|&x| x == ib).unwrap_or(0);
        if pa > pb {
            return Err(Diagnostic::new("E501", format!("--steps {spec}: `{}` comes after `{}`", a.trim(), b.trim()))
                .help("write the range from the earlier step to the later one"));
        }
        for &s in &topo[pa..=pb] {
            keep[s] = true;
        }
    } else {
        for n in spec.split(',') {
            keep[find(n.trim())?] = true;
        }
    }
    Ok(keep)
}

struct StepDef<'a> {
    pipe: &'a Pipeline,
    step: &'a Step,
    config_name: Option<String>,
    config: Vec<(String, String)>,
}

pub fn lower(c: &Checked, opts: &LowerOptions) -> Lowered {
    let model = &c.model;
    let camp = match pick_campaign(model, opts.campaign.as_deref()) {
        Ok(x) => x,
        Err(d) => return fail(vec![d]),
    };
    let mut diags = Vec::new();
    let mut env = Env::new(model, &c.program.map, &c.tables);
    let Some((cov_expr, _, cov_loc)) = &camp.coverage else {
        return fail(vec![Diagnostic::new("E205", format!("campaign `{}` has no coverage", camp.name)).at_loc(camp.loc, "here")]);
    };
    let cov = match env.eval(cov_expr, 0) {
        Ok(r) => r,
        Err(d) => return fail(vec![d.at_loc(*cov_loc, "while evaluating this coverage")]),
    };
    if cov.is_empty() {
        return fail(vec![Diagnostic::new("E701", format!("the coverage of campaign `{}` is empty", camp.name))
            .at_loc(*cov_loc, "no data IDs")
            .help("check the `where` conditions and the tables; a campaign must process at least one data ID")]);
    }
    if cov.len() > opts.coverage_warn {
        diags.push(
            Diagnostic::new("W701", format!("the coverage of campaign `{}` has {} data IDs", camp.name, group_digits(cov.len())))
                .at_loc(*cov_loc, format!("{} data IDs", group_digits(cov.len())))
                .help(format!(
                    "the warning threshold is {}; raise it with --coverage-warn if this is meant",
                    group_digits(opts.coverage_warn)
                )),
        );
    }

    // Steps of the campaign.
    let mut defs: Vec<StepDef> = Vec::new();
    for u in &camp.uses {
        let Some(p) = model.pipeline(&u.pipeline.name) else {
            continue;
        };
        let (config_name, config) = config_params(p, u.config.as_ref().map(|c| c.name.as_str()), &c.config_sets);
        for s in &p.steps {
            defs.push(StepDef { pipe: p, step: s, config_name: config_name.clone(), config: config.clone() });
        }
    }
    let multi = camp.uses.len() > 1;
    let qual: Vec<String> =
        defs.iter().map(|d| if multi { format!("{}.{}", d.pipe.name, d.step.name) } else { d.step.name.clone() }).collect();
    let deps = step_deps(model, camp, &defs);
    let Some(topo) = graph::topo_order(defs.len(), deps.iter().map(|d| (d.from, d.to))) else {
        return fail(vec![Diagnostic::new("E501", "the step graph has a cycle").at_loc(camp.loc, "in this campaign")]);
    };
    let keep = match &opts.steps {
        // Subset names (language 1.1) become their steps first.
        Some(spec) => match crate::check::subsets::expand_steps(model, camp, spec).and_then(|spec| select_steps(&spec, &qual, &topo)) {
            Ok(k) => k,
            Err(d) => return fail(vec![d]),
        },
        None => vec![true; defs.len()],
    };
    // Renumber kept steps in definition order.
    let mut new_index = vec![u32::MAX; defs.len()];
    let mut kept: Vec<usize> = Vec::new();
    for (i, k) in keep.iter().enumerate() {
        if *k {
            new_index[i] = kept.len() as u32;
            kept.push(i);
        }
    }
    let deps: Vec<StepDep> = deps
        .into_iter()
        .filter(|d| keep[d.from] && keep[d.to])
        .map(|d| StepDep { from: new_index[d.from] as usize, to: new_index[d.to] as usize, kind: d.kind })
        .collect();
    let levels = graph::levels(kept.len(), deps.iter().map(|d| (d.from, d.to)));

    // Quanta of each step.
    let produced: Vec<&str> = kept.iter().flat_map(|&i| defs[i].step.outputs.iter().map(|o| o.name.as_str())).collect();
    let mut steps: Vec<IrStep> = Vec::new();
    for (ni, &i) in kept.iter().enumerate() {
        let d = &defs[i];
        let dims: Vec<String> = d.step.over.iter().map(|x| x.name.clone()).collect();
        let dref: Vec<&str> = dims.iter().map(|s| s.as_str()).collect();
        let uni = match env.extend(&cov, &dref) {
            Ok(u) => u,
            Err(e) => return fail(vec![e.at_loc(d.step.loc, "while computing this step's quanta")]),
        };
        let quanta = match coverage::project(&uni, &dref, &env.dicts) {
            Ok(q) => q,
            Err(e) => return fail(vec![Diagnostic::new("E701", e.to_string()).at_loc(d.step.loc, "here")]),
        };
        if quanta.len() > opts.coverage_warn {
            diags.push(
                Diagnostic::new("W701", format!("step `{}` has {} quanta", qual[i], group_digits(quanta.len())))
                    .at_loc(d.step.loc, format!("{} quanta", group_digits(quanta.len())))
                    .help(format!("the warning threshold is {}", group_digits(opts.coverage_warn))),
            );
        }
        let resolved = resolve::resolve_step(model, Some(camp), d.pipe, d.step, &c.sets);
        let site = resolved.site.clone();
        let (settings, set_at) = settings::step_settings(&resolved, &c.passed_env);
        let shared_fs = site.as_ref().and_then(|s| model.site(s)).and_then(|s| s.shared_fs).unwrap_or(true);
        let inputs = d
            .step
            .inputs
            .iter()
            .map(|inp| {
                let ds = model.dataset(&inp.dataset.name);
                IrInput {
                    dataset: inp.dataset.name.clone(),
                    optional: inp.optional,
                    produced: produced.contains(&inp.dataset.name.as_str()),
                    stage: settings::stage(ds.and_then(|x| x.stage.map(|s| s.0)).unwrap_or(Stage::None)),
                    source: ds.and_then(|x| x.source.as_ref()).map(settings::template),
                    // A dataset a step produces has the producer's dimensions in the
                    // producer's order (its paths are written in that order), whatever the
                    // order of its declaration (E505 compares the sets).
                    dims: Some(producer_dims(&defs, &inp.dataset.name))
                        .filter(|d| !d.is_empty())
                        .unwrap_or_else(|| ds.map(|x| x.dims.iter().map(|d| d.name.clone()).collect()).unwrap_or_default()),
                }
            })
            .collect();
        let outputs = d
            .step
            .outputs
            .iter()
            .map(|o| {
                let ds = model.dataset(&o.name);
                let persist = ds.and_then(|x| x.persist.map(|p| p.0)).unwrap_or(Persist::Scratch);
                IrOutput {
                    dataset: o.name.clone(),
                    persist: settings::persist(persist),
                    archive: ds.and_then(|x| x.archive.as_ref()).map(settings::template),
                    verify: ds.and_then(|x| x.verify).unwrap_or(persist == Persist::Archive),
                    dims: dims.clone(),
                }
            })
            .collect();
        steps.push(IrStep {
            spec: crate::ir::StepSpec {
                name: qual[i].clone(),
                pipeline: d.pipe.name.clone(),
                dims,
                site,
                shared_fs,
                run: d.step.run.as_ref().map(settings::template).unwrap_or_default(),
                config_name: d.config_name.clone(),
                config: d.config.clone(),
                inputs,
                outputs,
            },
            quanta,
            settings,
            set_at,
            loc: Some(d.step.loc),
            level: levels[ni],
            cluster: None,
            job_of: Vec::new(),
            gathers: Vec::new(),
        });
    }

    let mut b = graph::Builder::new(env, cov, steps);
    for cl in &camp.clusters {
        let idx: Vec<u32> = cl
            .steps
            .iter()
            .filter_map(|n| b.steps.iter().position(|s| s.name == n.name || s.name.ends_with(&format!(".{}", n.name))).map(|i| i as u32))
            .collect();
        if idx.is_empty() {
            continue; // every step of the cluster is outside --steps
        }
        let by: Vec<String> = cl.by.iter().map(|d| d.name.clone()).collect();
        let split_by: Vec<String> = cl.split_by.iter().map(|d| d.name.clone()).collect();
        // Where each member step holds the key dimensions (its own name, or an equal one).
        let key_cols: Vec<(u32, Vec<usize>)> = idx
            .iter()
            .map(|&s| {
                let dims = &b.steps[s as usize].dims;
                let cols = by
                    .iter()
                    .chain(&split_by)
                    .filter_map(|k| dims.iter().position(|d| d == k).or_else(|| dims.iter().position(|d| model.equal_dims.same(d, k))))
                    .collect();
                (s, cols)
            })
            .collect();
        b.add_cluster(IrCluster {
            name: cl.name.clone(),
            steps: idx,
            by,
            size: cl.size.map(|s| s.0),
            loc: Some(cl.loc),
            split_by,
            max_quanta: cl.max_quanta.map(|m| m.0),
            max_running: cl.max_running.map(|m| m.0),
            key_cols,
        });
    }
    if let Err(d) = b.assign_jobs() {
        return fail(vec![d]);
    }
    diags.append(&mut b.warnings);
    for d in &deps {
        let r = match &d.kind {
            DepKind::Barrier => {
                b.barrier(d.from, d.to);
                Ok(())
            }
            DepKind::After => b.quantum_edges(d.from, d.to, None),
            DepKind::Dataset(ds) => b.quantum_edges(d.from, d.to, Some(ds)),
        };
        if let Err(e) = r {
            return fail(vec![e]);
        }
    }
    for o in camp.orders.iter() {
        if let Order::Serial { step, dim, .. } = o {
            if let Some(si) = b.steps.iter().position(|s| s.name == step.name || s.name.ends_with(&format!(".{}", step.name))) {
                b.serial(si, &dim.name);
            }
        }
    }
    for &i in &kept {
        for o in &defs[i].pipe.orders {
            if let Order::Serial { step, dim, .. } = o {
                if step.name == defs[i].step.name {
                    if let Some(si) = b.steps.iter().position(|s| s.name == qual[i]) {
                        b.serial(si, &dim.name);
                    }
                }
            }
        }
    }
    if let Err(mut d) = b.finish_edges() {
        if let Some(cl) = camp.clusters.iter().find(|c| d.message.contains(&format!("cluster `{}`", c.name))) {
            d = d.at_loc(cl.loc, "this cluster");
        }
        return fail(vec![d]);
    }
    if let Err(d) = b.external_gathers() {
        return fail(vec![d]);
    }
    if let Err(d) = b.insert_data_jobs() {
        return fail(vec![d]);
    }
    let sites = model
        .sites
        .iter()
        .map(|s| IrSite {
            name: s.name.clone(),
            backend: s.backend.as_ref().map(|b| b.0.clone()),
            shared_fs: s.shared_fs.unwrap_or(true),
            scratch: s.scratch.as_ref().map(|t| t.text.clone()),
            max_array_size: s.max_array_size.map(|x| x.0),
            max_memory: s.max_memory.map(|x| x.0),
            max_submit: s.max_submit.map(|x| x.0),
            controller: s.controller.as_ref().map(|x| x.0.clone()),
        })
        .collect();
    let priority_setting = camp.layer.get("priority");
    let campaign_settings = CampaignSettings {
        order: match camp.order_mode {
            crate::check::model::OrderMode::BreadthFirst => OrderMode::BreadthFirst,
            crate::check::model::OrderMode::DepthFirst => OrderMode::DepthFirst,
        },
        order_at: camp.order_loc,
        priority: match priority_setting.map(|s| &s.value) {
            Some(crate::check::model::Value::Int(p)) => *p,
            _ => 0,
        },
        priority_at: priority_setting.map(|s| s.loc),
        loc: Some(camp.loc),
    };
    let notify = camp
        .notify
        .as_ref()
        .map(|n| Notify {
            on: n.on.iter().map(|e| e.name.clone()).collect(),
            slow_after: n.slow_after,
            command: n.command.as_ref().map(|t| t.text.clone()),
            loc: Some(n.loc),
        })
        .unwrap_or_default();
    let mut ir = b.into_ir(camp.name.clone(), campaign_settings, sites, notify);
    ir.final_job = camp.final_job.as_ref().and_then(|f| {
        let run = f.run.as_ref()?;
        let resolved = resolve::resolve_final(model, camp, &c.sets);
        let (settings, _) = settings::step_settings(&resolved, &c.passed_env);
        // `{config.KEY}` reaches the config when the campaign uses one pipeline.
        let (config_name, config) = match camp.uses.as_slice() {
            [u] => model
                .pipeline(&u.pipeline.name)
                .map(|p| config_params(p, u.config.as_ref().map(|c| c.name.as_str()), &c.config_sets))
                .unwrap_or_default(),
            _ => (None, Vec::new()),
        };
        Some(crate::ir::FinalJob {
            spec: crate::ir::StepSpec {
                name: f.name.clone(),
                pipeline: match camp.uses.as_slice() {
                    [u] => u.pipeline.name.clone(),
                    _ => String::new(),
                },
                dims: Vec::new(),
                site: resolved.site.clone(),
                shared_fs: true,
                run: settings::template(run),
                config_name,
                config,
                inputs: Vec::new(),
                outputs: Vec::new(),
            },
            when: match f.when {
                crate::check::model::FinalWhen::Always => crate::ir::FinalWhen::Always,
                crate::check::model::FinalWhen::Success => crate::ir::FinalWhen::Success,
                crate::check::model::FinalWhen::Failure => crate::ir::FinalWhen::Failure,
            },
            settings,
            loc: Some(f.loc),
        })
    });
    ir.step_edges = deps.iter().map(|d| (d.from as u32, d.to as u32, d.kind.clone())).collect();
    settings::assign(&mut ir);
    if let Err(mut d) = graph::check_names(&ir) {
        if let Some(def) = defs.iter().find(|x| {
            d.message.contains(&format!("step `{}`", x.step.name)) || d.message.contains(&format!("step `{}.{}`", x.pipe.name, x.step.name))
        }) {
            d = d.at_loc(def.step.loc, "this name");
        } else if let Some(cl) = camp.clusters.iter().find(|c| d.message.contains(&format!("cluster `{}`", c.name))) {
            d = d.at_loc(cl.loc, "this name");
        }
        diags.push(d);
        return fail(diags);
    }
    Lowered { ir: Some(ir), diags }
}

fn producer_dims(defs: &[StepDef], dataset: &str) -> Vec<String> {
    defs.iter()
        .find(|d| d.step.outputs.iter().any(|o| o.name == dataset))
        .map(|d| d.step.over.iter().map(|x| x.name.clone()).collect())
        .unwrap_or_default()
}

/// Step-level dependencies: `after`, dataset flow, `order A before B` (as barriers).
fn step_deps(model: &Model, camp: &Campaign, defs: &[StepDef]) -> Vec<StepDep> {
    let mut out: Vec<StepDep> = Vec::new();
    let mut producer: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, d) in defs.iter().enumerate() {
        for o in &d.step.outputs {
            producer.entry(o.name.as_str()).or_insert(i);
        }
    }
    for (i, d) in defs.iter().enumerate() {
        for dep in &d.step.after {
            if let Some(j) = defs.iter().position(|x| x.pipe.name == d.pipe.name && x.step.name == dep.step.name) {
                out.push(StepDep { from: j, to: i, kind: if dep.all { DepKind::Barrier } else { DepKind::After } });
            }
        }
        for inp in &d.step.inputs {
            if let Some(&j) = producer.get(inp.dataset.name.as_str()) {
                if j != i {
                    out.push(StepDep { from: j, to: i, kind: DepKind::Dataset(inp.dataset.name.clone()) });
                }
            }
        }
    }
    let group = |name: &str, pipe_scope: Option<&str>| -> Vec<usize> {
        if pipe_scope.is_none() && camp.uses.iter().any(|u| u.pipeline.name == name) {
            return defs.iter().enumerate().filter(|(_, d)| d.pipe.name == name).map(|(i, _)| i).collect();
        }
        defs.iter()
            .enumerate()
            .filter(|(_, d)| d.step.name == name && pipe_scope.is_none_or(|p| d.pipe.name == p))
            .map(|(i, _)| i)
            .collect()
    };
    let mut orders: Vec<(&Order, Option<&str>)> = camp.orders.iter().chain(model.orders.iter()).map(|o| (o, None)).collect();
    for u in &camp.uses {
        if let Some(p) = model.pipeline(&u.pipeline.name) {
            orders.extend(p.orders.iter().map(|o| (o, Some(p.name.as_str()))));
        }
    }
    for (o, scope) in orders {
        if let Order::Before { first, second, .. } = o {
            for a in group(&first.name, scope) {
                for b in group(&second.name, scope) {
                    if a != b {
                        out.push(StepDep { from: a, to: b, kind: DepKind::Barrier });
                    }
                }
            }
        }
    }
    // One dependency per pair: a barrier subsumes the others; `after` and dataset flow
    // give the same quantum edges, keep the first.
    out.sort_by(|a, b| (a.from, a.to, &a.kind).cmp(&(b.from, b.to, &b.kind)));
    let mut dedup: Vec<StepDep> = Vec::new();
    for d in out {
        if let Some(last) = dedup.last_mut() {
            if last.from == d.from && last.to == d.to {
                if d.kind == DepKind::Barrier {
                    last.kind = DepKind::Barrier;
                }
                if let (DepKind::After, DepKind::Dataset(_)) = (&last.kind, &d.kind) {
                    last.kind = d.kind.clone();
                }
                continue;
            }
        }
        dedup.push(d);
    }
    dedup
}

pub fn group_digits(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}
