//! What Slurm expresses of the language, and what it cannot.

use crate::backend::caps::{emulated, native, refused, Capability, Feature::*};

pub static TABLE: &[Capability] = &[
    native(Memory, "`--mem`"),
    native(Cpus, "`--cpus-per-task`"),
    native(Disk, "`--tmp`"),
    native(Walltime, "`--time`"),
    emulated(Retries, "the job script retries in place, or requeues itself (after a walltime signal or an out-of-memory kill too)"),
    emulated(RetryUnlessExit, "the job script does not retry these exit codes"),
    emulated(
        MemoryGrowth,
        "`scontrol requeuehold` + `MinMemoryNode`: after an out-of-memory kill (the job's cgroup), or any failure with `memory_growth_on = any`",
    ),
    native(StepPriority, "`--nice` (relative within the campaign)"),
    native(
        CampaignPriority,
        "`--nice` relative to the campaign's highest job; only administrators can raise priority above other users' work",
    ),
    native(Order, "`--nice` by step level"),
    native(Partition, "`--partition`"),
    native(Account, "`--account`"),
    native(Qos, "`--qos`"),
    native(Hosts, "`--nodelist`"),
    refused(
        SeveralHosts,
        "`--nodelist` asks for all listed nodes at once; Slurm cannot say \"any one of these\"",
        "keep one host, exclude the unwanted nodes with `avoid_hosts`, or use a partition that holds exactly those nodes",
    ),
    native(AvoidHosts, "`--exclude`"),
    native(AvoidSites, "the step's site (its partition, account) is chosen at compile time"),
    emulated(OnFailureAbort, "the failing job cancels the campaign's other jobs"),
    emulated(Container, "`apptainer exec` of the image (`docker://` added to a bare registry name) in the job script"),
    emulated(Setup, "sourced by the job script"),
    native(Env, "exported by the job script; `sbatch --export` passes nothing else from the submitting shell"),
    native(MaxJobs, "array throttles `%n` that add up to N over every array of the step or cluster (`%1` lanes when it has more than N arrays)"),
    emulated(NotifyDoneFailure, "the job script runs the command"),
    emulated(NotifySlow, "the job script runs the command after `slow_after`"),
];
