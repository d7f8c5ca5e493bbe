//! Every exit status bpsc's programs use, in one place.
//!
//! # Commands (`bpsc check`, `compile`, `config`, `fmt`, ...)
//!
//! | status | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | the input has errors (diagnostics say which) |
//! | 2 | usage or I/O error: a bad argument, an unreadable file, an unwritable output |
//!
//! # `bpsc status`
//!
//! | status | meaning |
//! |---|---|
//! | 0 | done: every job succeeded |
//! | 1 | failed: nothing left to run, and some job failed or was skipped |
//! | 2 | usage or I/O error (not a submit directory) |
//! | 3 | running: jobs pending or running, no failure so far |
//! | 4 | running, with failures already |
//!
//! # The job wrapper (`bpsc wrap`), as engines see it
//!
//! | status | meaning |
//! |---|---|
//! | the payload's | the payload's own exit status |
//! | 66 | a declared output is missing after the payload succeeded (`verify`) |
//! | 70 | the wrapper itself failed (task table unreadable, record not writable, software setup failed) |
//! | 74 | a transfer (stage-in, stage-out, in-job fetch) failed, or its checksum did not match |
//! | 75 | out of memory: the payload failed and the kernel's OOM killer killed a process of the attempt's memory cgroup (the record says `oom: true`) |
//! | 79 | skipped: a parent did not succeed, nothing ran |
//! | 128+N | the engine stopped the attempt with signal N (SIGTERM: 143): the wrapper forwarded it to the payload, started nothing new and wrote the record (`interrupted`) |

/// Success.
pub const OK: u8 = 0;
/// The input has errors.
pub const ERRORS: u8 = 1;
/// Usage or I/O error.
pub const USAGE: u8 = 2;

/// `bpsc status`: every job succeeded.
pub const STATUS_DONE: u8 = 0;
/// `bpsc status`: nothing left to run and something failed or was skipped.
pub const STATUS_FAILED: u8 = 1;
/// `bpsc status`: not a submit directory, or unreadable.
pub const STATUS_USAGE: u8 = 2;
/// `bpsc status`: jobs pending or running, no failure so far.
pub const STATUS_RUNNING: u8 = 3;
/// `bpsc status`: running, with failures already.
pub const STATUS_RUNNING_WITH_FAILURES: u8 = 4;

/// `bpsc wrap`: a declared output is missing.
pub const WRAP_MISSING_OUTPUT: i32 = 66;
/// `bpsc wrap`: the wrapper itself failed.
pub const WRAP_INTERNAL: i32 = 70;
/// `bpsc wrap`: a transfer failed.
pub const WRAP_TRANSFER: i32 = 74;
/// `bpsc wrap`: the attempt ran out of memory.
///
/// The contract for engines with `memory_growth_on = oom`: a wrapper exit of 75 means "this
/// failure was a memory failure", and only then does the retry ask for more memory (Slurm's
/// job script: `rc = 75`, or the job's `OUT_OF_MEMORY` state; HTCondor's POST script:
/// `$RETURN = 75`, or the job's memory hold, code 34, which removes the wrapper before it can
/// exit).  The wrapper decides it from the memory cgroup's `oom_kill` counter (v2
/// `memory.events`, v1 `memory.oom_control`) rising while the payload ran and the payload
/// failing (typically SIGKILL, 137); without a readable memory cgroup it never claims an OOM
/// (the record's `oom` is `null`).  A payload that itself exits 75 is indistinguishable by
/// status alone; the record's `oom` field is the authority.  An OOM that kills the wrapper
/// itself leaves no exit status: the next attempt records the killed one as `lost`, and
/// the engine's own signal is the only evidence.
pub const WRAP_OOM: i32 = 75;
/// `bpsc wrap`: skipped because a parent did not succeed.
pub const WRAP_SKIPPED: i32 = 79;
