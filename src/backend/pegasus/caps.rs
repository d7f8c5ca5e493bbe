//! What Pegasus expresses of the language, and what it cannot.
//!
//! The table holds what is true at every site.  What depends on the site's kind (an
//! HTCondor pool, `style: condor`, or a Slurm cluster through HTCondor's BLAHP, `style:
//! glite`) is checked per step by [`check`].

use crate::backend::caps::{emulated, native, step_diagnostics, Capability, Feature, Feature::*};
use crate::diag::Diagnostic;
use crate::ir::{Ir, Step};

pub static TABLE: &[Capability] = &[
    native(Memory, "`pegasus.memory` (MB; DAX: `condor.request_memory`), or a `condor.request_memory` expression when it grows"),
    native(Cpus, "`pegasus.cores` (DAX: `condor.request_cpus`)"),
    native(Disk, "`pegasus.diskspace` (DAX: `condor.request_disk`)"),
    native(Walltime, "`pegasus.runtime`"),
    native(Retries, "`dagman.RETRY`"),
    native(RetryUnlessExit, "`dagman.RETRY N UNLESS-EXIT 2` + bpsc's POST script (`dagman.POST`), which exits 2 for those statuses"),
    native(
        MemoryGrowth,
        "at HTCondor sites (`style: condor`), a `condor.request_memory` expression: on `$(RETRY)` (any), on the job's memory holds with `periodic_release` (oom); at Slurm (glite) sites ignored, W801",
    ),
    native(StepPriority, "`dagman.PRIORITY`"),
    native(CampaignPriority, "`dagman.PRIORITY`"),
    native(Order, "`dagman.PRIORITY` by step level"),
    native(Partition, "`pegasus.queue`"),
    native(Account, "`pegasus.project`"),
    native(Qos, "`pegasus.glite.arguments` (`--qos`) at Slurm sites"),
    native(Hosts, "`condor.requirements` on the short or full `Machine` name / `--nodelist`"),
    native(SeveralHosts, "`condor.requirements`: any of the hosts (short or full name); at Slurm sites `--nodelist` (all of them)"),
    native(AvoidHosts, "`condor.requirements` / `--exclude`"),
    native(AvoidSites, "the step's site is chosen at compile time (`execution.site`)"),
    native(OnFailureAbort, "`dagman.ABORT-DAG-ON 3 RETURN 1` + bpsc's POST script, which exits 3 only after the last attempt"),
    native(Container, "transformation `container` (Singularity, submit directory and bpsc mounted)"),
    emulated(Setup, "the group's launcher sources it"),
    native(Env, "`env` profiles: `env { }` and the `pass_env` values captured at compile time"),
    native(MaxJobs, "DAGMan category (`dagman.CATEGORY`) + `dagman.<category>.maxjobs`"),
    native(NotifyDoneFailure, "workflow shell hooks (`on: end / error`)"),
    emulated(NotifySlow, "`bpsc status --watch`"),
];

/// The site's Pegasus style, as [`super::model`] writes it.
fn is_glite(ir: &Ir, st: &Step) -> bool {
    st.site.as_deref().and_then(|s| ir.site(s)).and_then(|s| s.backend.as_deref()) == Some("slurm")
}

/// What the table cannot say: memory growth at Slurm (glite) sites (W801), and sites
/// without a shared filesystem (E801).
pub fn check(engine: &str, ir: &Ir) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    // Memory growth where the site is a Slurm cluster: Pegasus passes `pegasus.memory` to
    // the batch system as PER_PROCESS_MEMORY (GLite.java, configuration.rst "Task Resource
    // Requirements"), a number fixed at planning; a condor.request_memory expression
    // reaches HTCondor's matchmaking only, not Slurm.
    let growing: Vec<&Step> =
        ir.steps.iter().filter(|st| st.settings.retries > 0 && st.settings.memory_growth > 1.0 && is_glite(ir, st)).collect();
    out.extend(step_diagnostics(
        engine,
        &growing,
        Feature::MemoryGrowth,
        false,
        "at a Slurm site Pegasus gives the batch system a fixed memory (`pegasus.memory`, PER_PROCESS_MEMORY): every retry asks for the first attempt's",
        "set `memory` to what the last retry would ask for, or use the slurm backend, which grows it",
    ));
    // Sites without a shared filesystem: the job wrapper needs the submit directory (task
    // tables in, provenance records and logs out) and Pegasus needs a staging file server
    // both the submit host and the site's workers reach (data-management.rst, "Non-shared
    // filesystem": "the staging site ... file server"); bpsc knows neither for such a site.
    let mut seen: Vec<&str> = Vec::new();
    for st in &ir.steps {
        let Some(site) = st.site.as_deref() else { continue };
        let Some(s) = ir.site(site) else { continue };
        if s.shared_fs || seen.contains(&site) {
            continue;
        }
        seen.push(site);
        let steps: Vec<&str> = ir.steps.iter().filter(|x| x.site.as_deref() == Some(site)).map(|x| x.name.as_str()).collect();
        let mut d = Diagnostic::new(
            "E801",
            format!(
                "the {engine} backend cannot run jobs at site `{site}` (`shared_fs = false`): every job needs this submit directory \
                 (it reads its task tables there and writes its provenance record and logs there), and Pegasus needs a staging \
                 file server that the submit host and the site's workers both reach; bpsc can give Pegasus neither for a site \
                 without a shared filesystem"
            ),
        );
        let at = st.set_at.iter().find(|x| x.key == "site");
        if let Some((loc, label)) =
            at.and_then(|x| x.loc.map(|l| (l, x.label.clone()))).or_else(|| st.loc.map(|l| (l, format!("step {}", st.name))))
        {
            d = d.at_loc(loc, format!("site = {site} ({label})"));
        }
        let more = steps.len().saturating_sub(8);
        let list = steps.iter().take(8).copied().collect::<Vec<_>>().join(", ")
            + &if more > 0 { format!(" and {more} more") } else { String::new() };
        out.push(d.note(format!("step{} {list}", if steps.len() == 1 { "" } else { "s" })).help(format!(
            "if the workers of `{site}` mount this submit directory and the site's scratch at the same paths as the submit host, \
             set `shared_fs = true` on site `{site}`; otherwise compile for `--backend htcondor`, whose jobs carry their task \
             tables and records with them, or move these steps to a site with a shared filesystem"
        )));
    }
    out
}
