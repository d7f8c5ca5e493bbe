//! Payload processes and signals.
//!
//! Engines stop a job with a signal to the wrapper: SIGTERM at Slurm's walltime and on
//! `scancel`, on HTCondor's hold and `condor_rm`, on a Nextflow kill; SIGINT from a
//! terminal; SIGUSR1/SIGUSR2 as a warning (Slurm `--signal`); SIGHUP and SIGXCPU from some
//! batch systems.  The wrapper traps them all ([`install`]).  Every payload (and every
//! transfer tool) runs in its own process group ([`run`]), and a trapped signal is forwarded
//! to that whole group.  After a *terminating* signal (anything but USR1/USR2, which are
//! only forwarded) the wrapper waits at most `BPSC_KILL_GRACE` seconds (default 5) for the
//! group to exit, then kills it with SIGKILL, starts nothing new, and writes the attempt's
//! record (`interrupted`) before the engine's own hard kill.  A payload is also killed when
//! the wrapper dies (`PR_SET_PDEATHSIG`), and processes a payload leaves behind in its group
//! are killed when it exits: no payload outlives its attempt.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Signals received and not yet forwarded (bit `1 << signo`).
static PENDING: AtomicU64 = AtomicU64::new(0);
/// The first terminating signal received (0: none).
static STOP: AtomicI32 = AtomicI32::new(0);

/// The signals the wrapper traps.
pub const TRAPPED: [i32; 6] = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGXCPU, libc::SIGUSR1, libc::SIGUSR2];

fn terminating(sig: i32) -> bool {
    sig != libc::SIGUSR1 && sig != libc::SIGUSR2
}

extern "C" fn on_signal(sig: libc::c_int) {
    // Only atomics: async-signal-safe.
    PENDING.fetch_or(1u64 << (sig as u32 & 63), Ordering::SeqCst);
    if terminating(sig) {
        let _ = STOP.compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst);
    }
}

/// Trap [`TRAPPED`] (no `SA_RESTART`: a blocking call returns `EINTR`).
pub fn install() {
    for sig in TRAPPED {
        // SAFETY: a plain sigaction with a handler that only touches atomics.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            libc::sigemptyset(&mut sa.sa_mask);
            sa.sa_flags = 0;
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

/// The first terminating signal the wrapper received, if any.
pub fn stop_requested() -> Option<i32> {
    match STOP.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// Signals received since the last call (consumed).
fn take_pending() -> Vec<i32> {
    let bits = PENDING.swap(0, Ordering::SeqCst);
    (1..64).filter(|s| bits & (1u64 << s) != 0).collect()
}

/// `SIGTERM`, `SIGKILL`, ... (`SIG<number>` when unknown).
pub fn signal_name(sig: i32) -> String {
    let n = match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGABRT => "SIGABRT",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGBUS => "SIGBUS",
        _ => return format!("SIG{sig}"),
    };
    n.to_string()
}

/// How a payload process ended.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// The exit status as a shell reports it (128 + N for a signal).
    pub code: i32,
    /// The signal that ended it.
    pub signal: Option<i32>,
    /// Largest resident set of the process or one of its waited-for descendants (KiB,
    /// from `wait4`).
    pub maxrss_kib: i64,
    /// Signals the wrapper received and forwarded to the group while it ran.
    pub forwarded: Vec<i32>,
    /// The group did not exit within the grace period and was killed with SIGKILL.
    pub killed: bool,
    /// Processes were left in the group after it exited, and were killed.
    pub leftovers: bool,
}

fn grace() -> Duration {
    let s: f64 = std::env::var("BPSC_KILL_GRACE").ok().and_then(|v| v.parse().ok()).unwrap_or(5.0);
    Duration::from_secs_f64(s.clamp(0.0, 3600.0))
}

fn nap() {
    // One `nanosleep`: a trapped signal cuts it short (std's sleep would resume).
    let ts = libc::timespec { tv_sec: 0, tv_nsec: 50_000_000 };
    // SAFETY: nanosleep with a valid timespec and no remainder pointer.
    unsafe {
        libc::nanosleep(&ts, std::ptr::null_mut());
    }
}

/// Run `cmd` in a process group of its own and wait for it, forwarding trapped signals to
/// the group (see the module documentation).  `Err` when it cannot start, or when a stop
/// was requested before it started.
pub fn run(mut cmd: Command) -> io::Result<Outcome> {
    if let Some(s) = stop_requested() {
        return Err(io::Error::new(io::ErrorKind::Interrupted, format!("not started: the wrapper received {}", signal_name(s))));
    }
    cmd.process_group(0);
    // SAFETY: prctl and getppid are async-signal-safe; nothing is allocated.
    unsafe {
        let parent = libc::getpid();
        cmd.pre_exec(move || {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0);
            if libc::getppid() != parent {
                libc::_exit(70);
            }
            Ok(())
        });
    }
    let child = cmd.spawn()?;
    let pid = child.id() as libc::pid_t;
    let mut out = Outcome::default();
    let mut deadline: Option<Instant> = None;
    loop {
        let mut status: libc::c_int = 0;
        // SAFETY: zeroed rusage is a valid out-parameter.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: wait4 on our own child with valid out-pointers.
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut ru) };
        if r == pid {
            out.maxrss_kib = ru.ru_maxrss;
            if libc::WIFEXITED(status) {
                out.code = libc::WEXITSTATUS(status);
            } else if libc::WIFSIGNALED(status) {
                let s = libc::WTERMSIG(status);
                out.signal = Some(s);
                out.code = 128 + s;
            }
            break;
        }
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EINTR) {
                return Err(e);
            }
        }
        for sig in take_pending() {
            // SAFETY: signalling our child's process group.
            unsafe {
                libc::kill(-pid, sig);
            }
            out.forwarded.push(sig);
            if terminating(sig) && deadline.is_none() {
                deadline = Some(Instant::now() + grace());
            }
        }
        if deadline.is_some_and(|d| Instant::now() >= d) && !out.killed {
            // SAFETY: as above.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
            out.killed = true;
        }
        nap();
    }
    drop(child);
    // Anything still in the group (background processes of the payload) dies with it.
    // SAFETY: as above; signal 0 only probes.
    unsafe {
        if libc::kill(-pid, 0) == 0 {
            libc::kill(-pid, libc::SIGKILL);
            out.leftovers = true;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_status_and_signal_are_reported() {
        let mut c = Command::new("/bin/sh");
        c.args(["-c", "exit 3"]);
        let o = run(c).unwrap();
        assert_eq!((o.code, o.signal), (3, None));
        let mut c = Command::new("/bin/sh");
        c.args(["-c", "kill -KILL $$"]);
        let o = run(c).unwrap();
        assert_eq!((o.code, o.signal), (137, Some(9)));
    }

    #[test]
    fn background_processes_of_a_payload_do_not_survive_it() {
        let d = tempfile::tempdir().unwrap();
        let pidfile = d.path().join("pid");
        let mut c = Command::new("/bin/sh");
        c.args(["-c", &format!("sleep 30 & echo $! > '{}'", pidfile.display())]);
        let o = run(c).unwrap();
        assert_eq!(o.code, 0);
        assert!(o.leftovers);
        let pid: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
        std::thread::sleep(Duration::from_millis(100));
        // Reaped by init or a zombie at most: not running.
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        assert!(state.is_empty() || state.contains(") Z"), "sleep still running: {state}");
    }

    #[test]
    fn signal_names() {
        assert_eq!(signal_name(libc::SIGTERM), "SIGTERM");
        assert_eq!(signal_name(64), "SIG64");
    }
}
