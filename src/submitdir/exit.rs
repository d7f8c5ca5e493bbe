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
//! | 5 | held: `bpsc hold` paused it (or every job left is held); nothing new starts |
//! | 6 | cancelled: `bpsc cancel` removed it from the engine |
//! | 7 | compiled, never submitted |
//!
//! # Operating a campaign (`bpsc submit`, `cancel`, `hold`, `release`, `priority`)
//!
//! | status | meaning |
//! |---|---|
//! | 0 | done, and confirmed by the engine where it can confirm (`--dry-run`: shown) |
//! | 1 | an engine command failed (E905); its output is shown and recorded |
//! | 2 | usage or I/O error: not a submit directory, a bad argument (E907 for `--set`) |
//! | 3 | refused by the campaign's state: already submitted (E902), never submitted, finished or not held (E901) |
//! | 4 | not possible on this engine (E903); the message says what to do instead |
//! | 5 | an engine tool is not installed here (E904) |
//! | 6 | sent, but the engine did not confirm in time (E906) |
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

/// `bpsc status`: held (paused).
pub const STATUS_HELD: u8 = 5;
/// `bpsc status`: cancelled.
pub const STATUS_CANCELLED: u8 = 6;
/// `bpsc status`: compiled, never submitted.
pub const STATUS_NOT_SUBMITTED: u8 = 7;

/// Operations: done (and confirmed).
pub const OP_OK: u8 = 0;
/// Operations: an engine command failed.
pub const OP_FAILED: u8 = 1;
/// Operations: usage or I/O error.
pub const OP_USAGE: u8 = 2;
/// Operations: refused by the campaign's state.
pub const OP_REFUSED: u8 = 3;
/// Operations: not possible on this engine.
pub const OP_UNSUPPORTED: u8 = 4;
/// Operations: an engine tool is missing.
pub const OP_NO_TOOL: u8 = 5;
/// Operations: not confirmed in time.
pub const OP_UNCONFIRMED: u8 = 6;

/// The exit status of an operation that ended with diagnostic `code`.
pub fn op_status(code: &str) -> u8 {
    match code {
        "E901" | "E902" => OP_REFUSED,
        "E903" => OP_UNSUPPORTED,
        "E904" => OP_NO_TOOL,
        "E906" => OP_UNCONFIRMED,
        "E907" => OP_USAGE,
        _ => OP_FAILED,
    }
}

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
