//! `--steps` names (language 1.1): step subsets expanded for lowering.
//!
//! `--steps single_frame` compiles the steps of `subset single_frame = [...]`; items mix
//! freely (`--steps single_frame,coadd`).  Lowering selects steps by the names it gives them
//! (`STEP`, or `PIPELINE.STEP` when the campaign uses several pipelines), and so does the
//! expansion, so that `lower::select_steps` needs no change.

use super::model::{Campaign, Model, Pipeline};
use crate::diag::{did_you_mean, Diagnostic};

/// Expand the subset names of a `--steps` spec for campaign `camp`: each comma-separated item
/// that names a subset (`NAME`, or `PIPELINE.NAME`) becomes that subset's steps; items that
/// name steps are kept as written.  A range `A..B` runs between steps, so a subset there is
/// an error, as is a name that is neither a step nor a subset (E201, with "did you mean") and
/// a name that is a step in one used pipeline and a subset in another, or a subset in two
/// (E209).
pub fn expand_steps(model: &Model, camp: &Campaign, spec: &str) -> Result<String, Diagnostic> {
    let used: Vec<&Pipeline> = camp.uses.iter().filter_map(|u| model.pipeline(&u.pipeline.name)).collect();
    let multi = camp.uses.len() > 1;
    let step_name = |p: &Pipeline, s: &str| if multi { format!("{}.{s}", p.name) } else { s.to_string() };
    let is_step = |n: &str| -> bool { used.iter().any(|p| p.steps.iter().any(|s| s.name == n || format!("{}.{}", p.name, s.name) == n)) };
    // Subsets an item names: (pipeline, subset).
    let subsets_named = |n: &str| -> Vec<(&Pipeline, &super::model::Subset)> {
        let (qual, name) = match n.split_once('.') {
            Some((p, s)) => (Some(p), s),
            None => (None, n),
        };
        used.iter().filter(|p| qual.is_none_or(|q| q == p.name)).filter_map(|p| p.subset(name).map(|s| (*p, s))).collect()
    };
    let all_names = || -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        for p in &used {
            v.extend(p.steps.iter().map(|s| step_name(p, &s.name)));
            v.extend(p.subsets.iter().map(|s| step_name(p, &s.name)));
        }
        v
    };
    if let Some((a, b)) = spec.split_once("..") {
        for end in [a.trim(), b.trim()] {
            if !is_step(end) && !subsets_named(end).is_empty() {
                return Err(Diagnostic::new("E201", format!("--steps {spec}: `{end}` is a subset, and a range runs between steps"))
                    .help(format!("write `--steps {end}` for the subset, or name its first or last step in the range")));
            }
        }
        return Ok(spec.to_string());
    }
    let items: Vec<&str> = spec.split(',').map(str::trim).filter(|n| !n.is_empty()).collect();
    if items.is_empty() {
        return Err(Diagnostic::new("E201", format!("--steps `{spec}` names no step"))
            .help(format!("write step or subset names separated by `,`, or a range A..B; steps and subsets: {}", all_names().join(", "))));
    }
    let mut out: Vec<String> = Vec::new();
    for n in items {
        let subs = subsets_named(n);
        let step = is_step(n);
        match (step, subs.as_slice()) {
            (true, []) => out.push(n.to_string()),
            (false, [(p, sub)]) => out.extend(sub.steps.iter().map(|s| step_name(p, &s.name))),
            (false, []) => {
                let names = all_names();
                let mut d = Diagnostic::new("E201", format!("--steps: no step or subset named `{n}`"));
                d = match did_you_mean(n, names.iter().map(|s| s.as_str())) {
                    Some(s) => d.help(format!("did you mean `{s}`?")),
                    None => d.help(format!("steps and subsets: {}", names.join(", "))),
                };
                return Err(d);
            }
            (_, many) => {
                let mut whose: Vec<String> = many.iter().map(|(p, _)| format!("a subset of pipeline `{}`", p.name)).collect();
                if step {
                    whose.insert(0, "a step".into());
                }
                let qualified: Vec<String> = many.iter().map(|(p, _)| format!("{}.{n}", p.name)).collect();
                return Err(Diagnostic::new("E209", format!("--steps: `{n}` is {}", whose.join(" and ")))
                    .help(format!("qualify it: {}", qualified.join(" or "))));
            }
        }
    }
    Ok(out.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::{check, Options};
    use crate::fs::MemFs;
    use std::path::Path;

    fn checked(src: &str) -> crate::check::Checked {
        let fs = MemFs::new().with("c.bps", src.as_bytes().to_vec());
        let c = check(&fs, Path::new("c.bps"), &Options::default());
        assert!(!c.has_errors(), "{:?}", c.diags.items.iter().map(|d| d.message.clone()).collect::<Vec<_>>());
        c
    }

    const ONE: &str = "bps 1.1\ndimension v = 0..2\npipeline p {\n  subset sf = [a, b]\n  step a over (v) { run = \"a\" }\n  step b over (v) after a { run = \"b\" }\n  step c after b { run = \"c\" }\n}\ncampaign k {\n  use p\n  coverage = v\n}\n";

    #[test]
    fn subsets_expand_and_mix_with_steps() {
        let c = checked(ONE);
        let camp = &c.model.campaigns[0];
        assert_eq!(expand_steps(&c.model, camp, "sf").unwrap(), "a,b");
        assert_eq!(expand_steps(&c.model, camp, "sf,c").unwrap(), "a,b,c");
        assert_eq!(expand_steps(&c.model, camp, "p.sf").unwrap(), "a,b");
        assert_eq!(expand_steps(&c.model, camp, "a..c").unwrap(), "a..c");
        let e = expand_steps(&c.model, camp, "sff").unwrap_err();
        assert_eq!(e.code, "E201");
        assert!(e.help.as_deref().unwrap_or("").contains("`sf`"), "{:?}", e.help);
        assert_eq!(expand_steps(&c.model, camp, "sf..c").unwrap_err().code, "E201");
    }

    #[test]
    fn names_are_qualified_with_several_pipelines_and_ambiguity_is_e209() {
        let src = "bps 1.1\ndimension v = 0..2\npipeline p {\n  subset sf = [a]\n  step a over (v) { run = \"a\" }\n}\npipeline q {\n  subset sf = [x]\n  step x over (v) { run = \"x\" }\n}\ncampaign k {\n  use p\n  use q\n  coverage = v\n}\n";
        let c = checked(src);
        let camp = &c.model.campaigns[0];
        assert_eq!(expand_steps(&c.model, camp, "q.sf").unwrap(), "q.x");
        assert_eq!(expand_steps(&c.model, camp, "p.sf,q.x").unwrap(), "p.a,q.x");
        assert_eq!(expand_steps(&c.model, camp, "sf").unwrap_err().code, "E209");
    }

    #[test]
    fn lowering_compiles_a_subset() {
        let c = checked(ONE);
        let opts = crate::lower::LowerOptions { steps: Some("sf".into()), ..Default::default() };
        let l = crate::lower::lower(&c, &opts);
        let ir = l.ir.expect("lowered");
        let names: Vec<&str> = ir.steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
    }
}
