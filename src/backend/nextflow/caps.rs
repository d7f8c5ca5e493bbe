//! What Nextflow expresses of the language, and what it cannot.

use crate::backend::caps::{emulated, ignored, native, Capability, Feature::*};

pub static TABLE: &[Capability] = &[
    native(Memory, "`memory`"),
    native(Cpus, "`cpus`"),
    native(Disk, "`disk`"),
    native(Walltime, "`time`"),
    native(Retries, "`errorStrategy 'retry'` + `maxRetries`"),
    native(RetryUnlessExit, "`errorStrategy` tests `task.exitStatus`"),
    native(MemoryGrowth, "`memory` grows with `task.attempt`"),
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
    native(Hosts, "`clusterOptions` (`--nodelist` / `requirements`)"),
    native(SeveralHosts, "condor profile `requirements`; not in the slurm profile"),
    native(AvoidHosts, "`clusterOptions` (`--exclude` / `requirements`)"),
    native(AvoidSites, "the step's site (its executor profile) is chosen at compile time"),
    native(OnFailureAbort, "`errorStrategy 'terminate'` after the last retry"),
    native(Container, "`container`"),
    native(Setup, "`beforeScript`"),
    native(Env, "exported in the task script"),
    native(MaxJobs, "`maxForks`"),
    native(NotifyDoneFailure, "`workflow.onComplete`"),
    emulated(NotifySlow, "the task script runs the command after `slow_after`"),
];
