//! Capabilities: how each engine carries every language feature, and the diagnostics for
//! what it cannot express.
//!
//! Each engine's `caps.rs` holds one [`Capability`] per [`Feature`] (a test checks that
//! every table is complete).  [`check`] finds the features a campaign uses and reports, for
//! each one the engine cannot express, a coded diagnostic at the place the setting is
//! written: **W801** when the campaign still runs correctly without it (the setting is
//! ignored), **E801** when it would not run as written.  Both name the alternative.
//! `bpsc check --backend B` and `bpsc compile` report them; `bpsc explain W801` / `E801`
//! explain them; [`markdown_table`] renders the whole table for backends/README.md.

use std::collections::BTreeMap;

use crate::diag::Diagnostic;
use crate::ir::{Ir, OnFailure, OrderMode, Software, Step};
use crate::source::Loc;

/// A language feature an engine may or may not express.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Feature {
    Memory,
    Cpus,
    Disk,
    Walltime,
    Retries,
    RetryUnlessExit,
    MemoryGrowth,
    StepPriority,
    CampaignPriority,
    Order,
    Partition,
    Account,
    Qos,
    Hosts,
    SeveralHosts,
    AvoidHosts,
    OnFailureAbort,
    Container,
    Setup,
    Env,
    MaxJobs,
    NotifyDoneFailure,
    NotifySlow,
}

impl Feature {
    pub const ALL: &'static [Feature] = &[
        Feature::Memory,
        Feature::Cpus,
        Feature::Disk,
        Feature::Walltime,
        Feature::Retries,
        Feature::RetryUnlessExit,
        Feature::MemoryGrowth,
        Feature::StepPriority,
        Feature::CampaignPriority,
        Feature::Order,
        Feature::Partition,
        Feature::Account,
        Feature::Qos,
        Feature::Hosts,
        Feature::SeveralHosts,
        Feature::AvoidHosts,
        Feature::OnFailureAbort,
        Feature::Container,
        Feature::Setup,
        Feature::Env,
        Feature::MaxJobs,
        Feature::NotifyDoneFailure,
        Feature::NotifySlow,
    ];

    /// How the feature is written in a campaign.
    pub fn spelling(self) -> &'static str {
        match self {
            Feature::Memory => "memory",
            Feature::Cpus => "cpus",
            Feature::Disk => "disk",
            Feature::Walltime => "walltime",
            Feature::Retries => "retries",
            Feature::RetryUnlessExit => "retry_unless_exit",
            Feature::MemoryGrowth => "memory_growth",
            Feature::StepPriority => "priority (step)",
            Feature::CampaignPriority => "priority (campaign)",
            Feature::Order => "order",
            Feature::Partition => "partition / queue",
            Feature::Account => "account",
            Feature::Qos => "qos",
            Feature::Hosts => "hosts (one host)",
            Feature::SeveralHosts => "hosts (several)",
            Feature::AvoidHosts => "avoid_hosts",
            Feature::OnFailureAbort => "on_failure = abort",
            Feature::Container => "software = container(...)",
            Feature::Setup => "software = setup(...)",
            Feature::Env => "env { }",
            Feature::MaxJobs => "max_running (max_jobs)",
            Feature::NotifyDoneFailure => "notify on done, failure",
            Feature::NotifySlow => "notify on slow",
        }
    }

    /// The setting keys whose location a diagnostic points at.
    fn keys(self) -> &'static [&'static str] {
        match self {
            Feature::Memory => &["memory"],
            Feature::Cpus => &["cpus"],
            Feature::Disk => &["disk"],
            Feature::Walltime => &["walltime"],
            Feature::Retries => &["retries"],
            Feature::RetryUnlessExit => &["retry_unless_exit"],
            Feature::MemoryGrowth => &["memory_growth", "retries"],
            Feature::StepPriority => &["priority"],
            Feature::Partition => &["partition", "queue"],
            Feature::Account => &["account"],
            Feature::Qos => &["qos"],
            Feature::Hosts | Feature::SeveralHosts => &["hosts"],
            Feature::AvoidHosts => &["avoid_hosts"],
            Feature::OnFailureAbort => &["on_failure"],
            Feature::Container | Feature::Setup => &["software"],
            Feature::MaxJobs => &["max_running", "max_jobs"],
            Feature::Env | Feature::CampaignPriority | Feature::Order | Feature::NotifyDoneFailure | Feature::NotifySlow => &[],
        }
    }

    /// Does `step` use this feature (a step-level feature)?
    fn used_by(self, st: &Step) -> bool {
        let s = &st.settings;
        match self {
            Feature::Memory | Feature::Cpus | Feature::Disk | Feature::Walltime => true,
            Feature::Retries => s.retries > 0,
            Feature::RetryUnlessExit => s.retries > 0 && !s.retry_unless_exit.is_empty(),
            Feature::MemoryGrowth => s.retries > 0 && s.memory_growth > 1.0,
            Feature::StepPriority => s.priority != 0,
            Feature::Partition => s.partition.is_some(),
            Feature::Account => s.account.is_some(),
            Feature::Qos => s.qos.is_some(),
            Feature::Hosts => s.hosts.len() == 1,
            Feature::SeveralHosts => s.hosts.len() > 1,
            Feature::AvoidHosts => !s.avoid_hosts.is_empty(),
            Feature::OnFailureAbort => s.on_failure == OnFailure::Abort,
            Feature::Container => matches!(s.software, Some(Software::Container(_))),
            Feature::Setup => matches!(s.software, Some(Software::Setup(_))),
            Feature::Env => !s.env.is_empty(),
            Feature::MaxJobs => s.max_jobs.is_some(),
            Feature::CampaignPriority | Feature::Order | Feature::NotifyDoneFailure | Feature::NotifySlow => false,
        }
    }
}

/// How an engine carries a feature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Support {
    /// The engine expresses it; the text says how.
    Native(&'static str),
    /// bpsc carries it for the engine (the job wrapper, a POST script, `bpsc status --watch`).
    Emulated(&'static str),
    /// Not expressible, and ignored: the campaign still runs correctly (W801).
    Ignored { why: &'static str, instead: &'static str },
    /// Not expressible: the campaign would not run as written (E801).
    Refused { why: &'static str, instead: &'static str },
}

/// One row of an engine's capability table.
#[derive(Clone, Copy, Debug)]
pub struct Capability {
    pub feature: Feature,
    pub support: Support,
}

/// `Capability { feature, support: Native(how) }`.
pub const fn native(feature: Feature, how: &'static str) -> Capability {
    Capability { feature, support: Support::Native(how) }
}

pub const fn emulated(feature: Feature, how: &'static str) -> Capability {
    Capability { feature, support: Support::Emulated(how) }
}

pub const fn ignored(feature: Feature, why: &'static str, instead: &'static str) -> Capability {
    Capability { feature, support: Support::Ignored { why, instead } }
}

pub const fn refused(feature: Feature, why: &'static str, instead: &'static str) -> Capability {
    Capability { feature, support: Support::Refused { why, instead } }
}

/// The row of `feature` in `table`.
pub fn support(table: &[Capability], feature: Feature) -> Option<Support> {
    table.iter().find(|c| c.feature == feature).map(|c| c.support)
}

/// Where a campaign uses a feature: the location of the setting, and the steps it concerns.
struct Use {
    loc: Option<Loc>,
    label: String,
    steps: Vec<String>,
}

/// Every use of every feature, grouped by where the setting is written.
fn uses(ir: &Ir) -> BTreeMap<Feature, Vec<Use>> {
    let mut out: BTreeMap<Feature, Vec<Use>> = BTreeMap::new();
    for st in &ir.steps {
        for &f in Feature::ALL {
            if !f.used_by(st) {
                continue;
            }
            let at = f.keys().iter().find_map(|k| st.set_at.iter().find(|s| s.key == *k));
            let (loc, label) = match at {
                Some(s) => (s.loc.or(st.loc), s.label.clone()),
                None if f == Feature::Env => {
                    let e = st.set_at.iter().find(|s| s.key.starts_with("env."));
                    (e.and_then(|s| s.loc).or(st.loc), e.map(|s| s.label.clone()).unwrap_or_else(|| "built-in".into()))
                }
                None => (st.loc, "built-in default".into()),
            };
            let list = out.entry(f).or_default();
            match list.iter_mut().find(|u| u.loc == loc && u.label == label) {
                Some(u) => u.steps.push(st.name.clone()),
                None => list.push(Use { loc, label, steps: vec![st.name.clone()] }),
            }
        }
    }
    let c = &ir.settings;
    if c.priority != 0 {
        out.entry(Feature::CampaignPriority).or_default().push(Use {
            loc: c.priority_at.or(c.loc),
            label: format!("campaign {}", ir.campaign),
            steps: Vec::new(),
        });
    }
    if c.order_at.is_some() || c.order == OrderMode::DepthFirst {
        out.entry(Feature::Order).or_default().push(Use {
            loc: c.order_at.or(c.loc),
            label: format!("campaign {}", ir.campaign),
            steps: Vec::new(),
        });
    }
    let n = &ir.notify;
    if n.command.is_some() {
        if n.on.iter().any(|e| e == "done" || e == "failure") {
            out.entry(Feature::NotifyDoneFailure).or_default().push(Use { loc: n.loc, label: "notify".into(), steps: Vec::new() });
        }
        if n.on.iter().any(|e| e == "slow") {
            out.entry(Feature::NotifySlow).or_default().push(Use { loc: n.loc, label: "notify".into(), steps: Vec::new() });
        }
    }
    out
}

/// The features of `ir` that `engine` cannot express, as diagnostics (W801, E801).
pub fn check(engine: &dyn super::Engine, ir: &Ir) -> Vec<Diagnostic> {
    let table = engine.capabilities();
    let mut out = Vec::new();
    for (f, list) in uses(ir) {
        let (code, why, instead) = match support(table, f) {
            Some(Support::Ignored { why, instead }) => ("W801", why, instead),
            Some(Support::Refused { why, instead }) => ("E801", why, instead),
            _ => continue,
        };
        for u in list {
            let verb = if code == "W801" { "ignores" } else { "cannot express" };
            let mut d = Diagnostic::new(code, format!("the {} backend {verb} `{}`: {why}", engine.name(), f.spelling()));
            if let Some(loc) = u.loc {
                d = d.at_loc(loc, format!("{} ({})", f.spelling(), u.label));
            }
            if !u.steps.is_empty() {
                let mut s = u.steps.clone();
                let more = s.len().saturating_sub(8);
                s.truncate(8);
                let list = s.join(", ") + &if more > 0 { format!(" and {more} more") } else { String::new() };
                d = d.note(format!("step{} {list}", if u.steps.len() == 1 { "" } else { "s" }));
            }
            out.push(d.help(instead.to_string()));
        }
    }
    out.extend(engine.check(ir));
    out
}

/// The capability table of every engine as Markdown: a row per feature, a column per
/// engine (backends/README.md holds it; a test keeps the two equal).
pub fn markdown_table() -> String {
    let engines = super::ENGINES;
    let mut s = String::from("| feature |");
    for e in engines {
        s.push_str(&format!(" {} |", e.name()));
    }
    s.push_str("\n|---|");
    for _ in engines {
        s.push_str("---|");
    }
    s.push('\n');
    for &f in Feature::ALL {
        s.push_str(&format!("| `{}` |", f.spelling()));
        for e in engines {
            let cell = match support(e.capabilities(), f) {
                Some(Support::Native(how)) => how.to_string(),
                Some(Support::Emulated(how)) => format!("bpsc: {how}"),
                Some(Support::Ignored { why, .. }) => format!("**ignored** (W801): {why}"),
                Some(Support::Refused { why, .. }) => format!("**refused** (E801): {why}"),
                None => "?".into(),
            };
            s.push_str(&format!(" {} |", cell.replace('|', "\\|")));
        }
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_engine_has_one_row_per_feature() {
        for e in super::super::ENGINES {
            for &f in Feature::ALL {
                let n = e.capabilities().iter().filter(|c| c.feature == f).count();
                assert_eq!(n, 1, "{}: {} rows for {f:?}", e.name(), n);
            }
            assert_eq!(e.capabilities().len(), Feature::ALL.len(), "{}: extra rows", e.name());
        }
    }
}
