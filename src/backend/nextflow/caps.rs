//! What Nextflow expresses of the language, and what it cannot.

use crate::backend::caps::{emulated, ignored, native, step_diagnostics, Capability, Feature, Feature::*};
use crate::diag::Diagnostic;
use crate::ir::Ir;

pub static TABLE: &[Capability] = &[
    native(Memory, "`memory`"),
    native(Cpus, "`cpus`"),
    native(Disk, "`disk` (slurm profile: also `--tmp`)"),
    native(Walltime, "`time`"),
    native(Retries, "`errorStrategy 'retry'` + `maxRetries`"),
    native(RetryUnlessExit, "`errorStrategy` tests `task.exitStatus`"),
    native(MemoryGrowth, "`memory` grows with `task.attempt` (any), or from `task.previousTrace` after exit 137 or the wrapper's 75 (oom)"),
    ignored(
        StepPriority,
        "Nextflow has no job priority: tasks are submitted as their inputs become ready",
        "order work with dependencies (`after`, `order A before B`), or use the htcondor or slurm backend",
    ),
    ignored(
        CampaignPriority,
        "Nextflow has no job priority",
        "use the batch system's own priority for the Nextflow run, or the htcondor or slurm backend",
    ),
    ignored(
        Order,
        "Nextflow submits tasks as their inputs become ready; breadth- or depth-first cannot be asked for",
        "use `order A before B` for a hard order, or the htcondor or slurm backend",
    ),
    native(Partition, "`queue`"),
    native(Account, "`clusterOptions` (`--account` / `accounting_group`)"),
    native(Qos, "`clusterOptions` (`--qos`)"),
    native(Hosts, "`clusterOptions` (`--nodelist` / `requirements` on the short or full `Machine` name)"),
    native(SeveralHosts, "condor profile `requirements`: any of them; the slurm profile cannot (W801 when it is the campaign's profile)"),
    native(AvoidHosts, "`clusterOptions` (`--exclude` / `requirements`)"),
    native(AvoidSites, "the step's site (its executor profile) is chosen at compile time"),
    native(OnFailureAbort, "`errorStrategy 'terminate'` after the last retry"),
    native(Container, "`container`, with Apptainer enabled and the submit directory, scratch and bpsc mounted"),
    native(Setup, "sourced by the task script once the job's environment is set"),
    native(Env, "exported by the task script, which first unsets every variable but the identity and the batch system's"),
    native(MaxJobs, "`maxForks`"),
    native(NotifyDoneFailure, "`workflow.onComplete` / `onError` in the entry workflow"),
    emulated(NotifySlow, "the task script runs the command after `slow_after`"),
];

/// What the table cannot say: steps at several sites (E801: one Nextflow run has one
/// executor), and several hosts when the campaign's profile is slurm (W801).
pub fn check(ir: &Ir) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    // Several sites.  A Nextflow run submits every task through the executor of the
    // profile it runs with (`process.executor`), and Nextflow's grid executors call the
    // batch system's commands on the host Nextflow runs on (sbatch, condor_submit): one
    // Slurm controller or one HTCondor schedd.  Two facilities cannot be reached from one
    // run.
    let mut sites: Vec<&str> = Vec::new();
    for st in &ir.steps {
        if let Some(s) = st.site.as_deref() {
            if !sites.contains(&s) {
                sites.push(s);
            }
        }
    }
    if sites.len() > 1 {
        let second = sites[1];
        if let Some(st) = ir.steps.iter().find(|s| s.site.as_deref() == Some(second)) {
            let list = sites.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", ");
            let mut d = Diagnostic::new(
                "E801",
                format!(
                    "the nextflow backend cannot run one workflow at several sites ({list}): a Nextflow run submits every task \
                     through one executor, which reaches one batch system (one Slurm controller, one HTCondor schedd)"
                ),
            );
            let at = st.set_at.iter().find(|x| x.key == "site");
            if let Some((loc, label)) =
                at.and_then(|x| x.loc.map(|l| (l, x.label.clone()))).or_else(|| st.loc.map(|l| (l, format!("step {}", st.name))))
            {
                d = d.at_loc(loc, format!("site = {second} ({label})"));
            }
            for s in &sites {
                let steps: Vec<&str> = ir.steps.iter().filter(|x| x.site.as_deref() == Some(*s)).map(|x| x.name.as_str()).collect();
                let more = steps.len().saturating_sub(6);
                let names = steps.iter().take(6).copied().collect::<Vec<_>>().join(", ");
                d = d.note(format!("site {s}: {names}{}", if more > 0 { format!(" and {more} more") } else { String::new() }));
            }
            out.push(d.help(
                "compile the steps of each site on their own (`--steps`), one submit directory per site, or use the pegasus or \
                 htcondor backend, which run one workflow across sites",
            ));
        }
    }
    // Several hosts in the slurm profile.
    if super::emit::default_profile(ir) == "slurm" {
        let several: Vec<&crate::ir::Step> = ir.steps.iter().filter(|st| st.settings.hosts.len() > 1).collect();
        out.extend(step_diagnostics(
            "nextflow",
            &several,
            Feature::SeveralHosts,
            false,
            "the campaign's profile is slurm, and Slurm has no `any of these nodes` option (--nodelist asks for all of them): the hosts are left out",
            "name one host, or run with `-profile condor` at an HTCondor site",
        ));
    }
    out
}
