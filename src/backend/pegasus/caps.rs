//! What Pegasus expresses of the language, and what it cannot.

use crate::backend::caps::{emulated, ignored, native, Capability, Feature::*};

pub static TABLE: &[Capability] = &[
    native(Memory, "`condor.request_memory`"),
    native(Cpus, "`pegasus.cores` / `condor.request_cpus`"),
    native(Disk, "`condor.request_disk`"),
    native(Walltime, "`pegasus.runtime`"),
    native(Retries, "`dagman.RETRY`"),
    ignored(
        RetryUnlessExit,
        "DAGMan's `UNLESS-EXIT` sees the exit status of Pegasus's `pegasus-exitcode` POST script, not the payload's, so every failure is retried",
        "set `retries` to what a configuration error may cost, or use the htcondor backend",
    ),
    ignored(
        MemoryGrowth,
        "Pegasus 5 profiles take a fixed `request_memory`: every retry asks for the first attempt's memory",
        "set `memory` to what the last retry would ask for, or use the htcondor or slurm backend",
    ),
    native(StepPriority, "`dagman.PRIORITY`"),
    native(CampaignPriority, "`dagman.PRIORITY`"),
    native(Order, "`dagman.PRIORITY` by step level"),
    native(Partition, "`pegasus.queue`"),
    native(Account, "`pegasus.project`"),
    native(Qos, "`pegasus.glite.arguments` (`--qos`) at Slurm sites"),
    native(Hosts, "`condor.requirements` / `--nodelist`"),
    native(SeveralHosts, "`condor.requirements`: any of the hosts"),
    native(AvoidHosts, "`condor.requirements` / `--exclude`"),
    native(AvoidSites, "the step's site is chosen at compile time (`execution.site`)"),
    native(OnFailureAbort, "`dagman.ABORT-DAG-ON`"),
    native(Container, "transformation `container`"),
    emulated(Setup, "a launcher script sources it"),
    native(Env, "transformation `env` profiles"),
    native(MaxJobs, "DAGMan category + `dagman.<category>.maxjobs`"),
    native(NotifyDoneFailure, "workflow shell hooks (`on: end / error`)"),
    emulated(NotifySlow, "`bpsc status --watch`"),
];
