//! What HTCondor DAGMan expresses of the language, and what it cannot.

use crate::backend::caps::{emulated, ignored, native, Capability, Feature::*};

pub static TABLE: &[Capability] = &[
    native(Memory, "`request_memory`"),
    native(Cpus, "`request_cpus`"),
    native(Disk, "`request_disk`"),
    native(Walltime, "`allowed_execute_duration` (hold 47, removed, retried)"),
    native(Retries, "DAG `RETRY`"),
    native(RetryUnlessExit, "`RETRY … UNLESS-EXIT` (several codes through the POST script)"),
    native(
        MemoryGrowth,
        "`memory_growth_on = oom`: a memory hold is released in place with a larger `request_memory` (`periodic_release`, \
         up to the memory cap); `any`: `request_memory` grows with `$(RETRY)`",
    ),
    native(StepPriority, "node `PRIORITY`"),
    native(CampaignPriority, "node `PRIORITY` (orders one user's jobs on one access point)"),
    native(Order, "node `PRIORITY` by step level"),
    ignored(
        Partition,
        "an HTCondor pool has no partitions or queues",
        "select machines with `hosts` / `avoid_hosts`, or label the pool's machines with a `BpscSite` attribute and use `site`",
    ),
    native(Account, "`accounting_group` and `ProjectName`"),
    ignored(Qos, "HTCondor has no quality-of-service setting", "use `priority`, or an `accounting_group` (`account`) with its own quota"),
    native(Hosts, "`requirements` on `Machine` (full or short name)"),
    native(SeveralHosts, "`requirements`: any of the hosts"),
    native(AvoidHosts, "`requirements`: none of the hosts"),
    ignored(
        AvoidSites,
        "an HTCondor pool has no sites: bpsc steers a job to its site by the execute points' `BpscSite` attribute, and an \
         execute point without one matches every site, so in a pool that does not label its machines the avoided site's \
         machines still run the jobs",
        "label the pool's execute points (`BpscSite = \"<site>\"`, `STARTD_ATTRS = $(STARTD_ATTRS) BpscSite`), or name the \
         machines to avoid with `avoid_hosts`",
    ),
    emulated(OnFailureAbort, "the POST script halts the DAG after the last retry (halt file; idle node jobs removed)"),
    native(Container, "container universe"),
    emulated(Setup, "the job launcher sources it"),
    native(Env, "`environment`: exactly `env { }` and the `pass_env` values captured at compile time"),
    native(MaxJobs, "`CATEGORY` + `MAXJOBS` per step or cluster"),
    emulated(NotifyDoneFailure, "the FINAL node's POST script"),
    emulated(NotifySlow, "`bpsc status --watch`"),
];
