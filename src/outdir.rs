//! Atomic output directories: everything is written into a temporary sibling directory and
//! renamed into place at the end, so a failed compile never leaves a half-written submit
//! directory, and an existing one is replaced only with `--force`.
//!
//! The temporary sibling of `DIR` is `.DIR.bpsc-tmp-PID-HOST` (the process id and host
//! name of the writer).  It never outlives its process:
//!
//! * an error, or any other return, removes it (`Drop`);
//! * SIGINT, SIGTERM and SIGHUP remove it too: the first [`OutDir::create`] installs a
//!   handler (a thread that waits for those signals, `signal-hook`) which removes every
//!   temporary directory still being written, then dies of the signal as it would have;
//! * a process killed outright (SIGKILL, a crash, a power cut) cannot clean up: the next
//!   [`OutDir::create`] into the same parent sweeps the temporary directories whose writer
//!   is gone, that is whose host is this host and whose process id is not running.
//!   Directories named by an older bpsc (`.DIR.bpsc-tmp-PID`, no host) are swept when their
//!   process is not running here and they are over a day old, as they may belong to a
//!   compile on another host sharing the file system.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

pub struct OutDir {
    target: PathBuf,
    tmp: PathBuf,
    force: bool,
    committed: bool,
}

#[derive(Debug)]
pub enum OutDirError {
    Exists(PathBuf),
    Io(PathBuf, io::Error),
}

impl std::fmt::Display for OutDirError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OutDirError::Exists(p) => write!(f, "{} already exists; pass --force to replace it", p.display()),
            OutDirError::Io(p, e) => write!(f, "{}: {e}", p.display()),
        }
    }
}

/// Temporary directories being written by this process.  Held while a commit renames, so a
/// signal never removes a directory half-way through being moved into place.
fn live() -> &'static Mutex<Vec<PathBuf>> {
    static LIVE: OnceLock<Mutex<Vec<PathBuf>>> = OnceLock::new();
    LIVE.get_or_init(|| Mutex::new(Vec::new()))
}

/// Set by the signal thread when it starts removing: from then on the process ends by the
/// signal, never by an error of a writer whose directory was just taken away.
static DYING: AtomicBool = AtomicBool::new(false);

/// Has a signal started the clean-up (and so the process's end)?
pub fn dying() -> bool {
    DYING.load(Ordering::SeqCst)
}

/// Called where an error would be reported or the process would exit: once a signal has
/// started the clean-up, an error is only the clean-up's doing (a writer found its
/// temporary directory gone), so this thread waits for the signal thread to end the
/// process with the signal's status instead of printing that error and exiting 2 first.
pub fn halt_if_dying() {
    if dying() {
        loop {
            std::thread::park();
        }
    }
}

/// Install the signal handler once: on SIGINT, SIGTERM or SIGHUP remove every temporary
/// directory of this process, then die of the signal (exit status 128 + signal for shells).
fn install_signal_cleanup() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) else {
            return;
        };
        let _ = std::thread::Builder::new().name("bpsc-signals".into()).spawn(move || {
            if let Some(sig) = signals.forever().next() {
                DYING.store(true, Ordering::SeqCst);
                remove_live_dirs();
                let _ = signal_hook::low_level::emulate_default_handler(sig);
                std::process::exit(128 + sig);
            }
        });
    });
}

/// Remove the temporary directories of this process (from the signal thread).  Each is
/// first renamed away, so a writer that is still running cannot add to it, and removed
/// again in case a writer recreated its path meanwhile.
fn remove_live_dirs() {
    let dirs = live().lock().map(|mut l| std::mem::take(&mut *l)).unwrap_or_default();
    for d in dirs {
        let mut dying = d.clone().into_os_string();
        dying.push(".dying");
        let dying = PathBuf::from(dying);
        if std::fs::rename(&d, &dying).is_ok() {
            let _ = std::fs::remove_dir_all(&dying);
        }
        let _ = std::fs::remove_dir_all(&d);
    }
}

/// This host's name (for temporary directory names), `localhost` when unknown.
fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `buf.len()` bytes into our buffer.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let n = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name: String = String::from_utf8_lossy(&buf[..n])
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c } else { '_' })
        .collect();
    if ok && !name.is_empty() {
        name
    } else {
        "localhost".into()
    }
}

/// Is process `pid` running on this host?  (A process of another user counts.)
fn pid_alive(pid: u32) -> bool {
    let Ok(p) = libc::pid_t::try_from(pid) else { return false };
    if p <= 0 {
        return true; // never a writer's id; leave such a directory alone
    }
    // SAFETY: signal 0 only checks that the process exists.
    if unsafe { libc::kill(p, 0) } == 0 {
        return true;
    }
    io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// The writer of a temporary or old-copy directory named by bpsc: `(pid, host)`, the host
/// absent for names written by an older bpsc.
pub fn parse_tmp_name(name: &str) -> Option<(u32, Option<&str>)> {
    let rest = name.strip_prefix('.')?;
    let (_, tail) = rest.rsplit_once(".bpsc-tmp-").or_else(|| rest.rsplit_once(".bpsc-old-"))?;
    let tail = tail.strip_suffix(".dying").unwrap_or(tail);
    let (pid, host) = match tail.split_once('-') {
        Some((p, h)) => (p, Some(h)),
        None => (tail, None),
    };
    if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((pid.parse().ok()?, host.filter(|h| !h.is_empty())))
}

/// Remove the temporary directories in `parent` left by writers that are gone; returns
/// what was removed.
pub fn sweep_stale(parent: &Path) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    let Ok(rd) = std::fs::read_dir(parent) else { return removed };
    let me = std::process::id();
    let host = host_name();
    for e in rd.flatten() {
        let name = e.file_name();
        let Some((pid, their_host)) = name.to_str().and_then(parse_tmp_name) else { continue };
        if pid == me || !e.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let stale = match their_host {
            Some(h) => h == host && !pid_alive(pid),
            None => {
                let old = e.metadata().and_then(|m| m.modified()).ok().and_then(|t| t.elapsed().ok());
                !pid_alive(pid) && old.is_some_and(|age| age.as_secs() > 24 * 3600)
            }
        };
        if stale && std::fs::remove_dir_all(e.path()).is_ok() {
            removed.push(e.path());
        }
    }
    removed
}

impl OutDir {
    pub fn create(target: &Path, force: bool) -> Result<OutDir, OutDirError> {
        if target.exists() && !force {
            return Err(OutDirError::Exists(target.to_path_buf()));
        }
        let parent = target.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent).map_err(|e| OutDirError::Io(parent.to_path_buf(), e))?;
        install_signal_cleanup();
        sweep_stale(parent);
        let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "out".into());
        let tmp = parent.join(format!(".{name}.bpsc-tmp-{}-{}", std::process::id(), host_name()));
        if tmp.exists() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        std::fs::create_dir(&tmp).map_err(|e| OutDirError::Io(tmp.clone(), e))?;
        if let Ok(mut l) = live().lock() {
            l.push(tmp.clone());
        }
        Ok(OutDir { target: target.to_path_buf(), tmp, force, committed: false })
    }

    /// Where to write while building.
    pub fn path(&self) -> &Path {
        &self.tmp
    }

    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Move the finished directory into place.
    pub fn commit(self) -> Result<PathBuf, OutDirError> {
        let r = self.commit_inner();
        if r.is_err() {
            halt_if_dying();
        }
        r
    }

    fn commit_inner(mut self) -> Result<PathBuf, OutDirError> {
        // Hold the registry: a signal now waits until the directory is in place.
        let mut l = live().lock().unwrap_or_else(|e| e.into_inner());
        if self.target.exists() {
            if !self.force {
                return Err(OutDirError::Exists(self.target.clone()));
            }
            let name = self.target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "out".into());
            let old = self.tmp.with_file_name(format!(".{name}.bpsc-old-{}-{}", std::process::id(), host_name()));
            std::fs::rename(&self.target, &old).map_err(|e| OutDirError::Io(self.target.clone(), e))?;
            if let Err(e) = std::fs::rename(&self.tmp, &self.target) {
                let _ = std::fs::rename(&old, &self.target);
                return Err(OutDirError::Io(self.target.clone(), e));
            }
            let _ = std::fs::remove_dir_all(&old);
        } else {
            std::fs::rename(&self.tmp, &self.target).map_err(|e| OutDirError::Io(self.target.clone(), e))?;
        }
        l.retain(|p| p != &self.tmp);
        self.committed = true;
        Ok(self.target.clone())
    }
}

impl Drop for OutDir {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.tmp);
            if let Ok(mut l) = live().lock() {
                l.retain(|p| p != &self.tmp);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_names_parse_back_to_their_writer() {
        assert_eq!(parse_tmp_name(".submit.bpsc-tmp-123-sdf-login01.slac"), Some((123, Some("sdf-login01.slac"))));
        assert_eq!(parse_tmp_name(".a.b.bpsc-tmp-7-h"), Some((7, Some("h"))));
        assert_eq!(parse_tmp_name(".submit.bpsc-old-9-h"), Some((9, Some("h"))));
        assert_eq!(parse_tmp_name(".submit.bpsc-tmp-42"), Some((42, None)));
        assert_eq!(parse_tmp_name(".submit.bpsc-tmp-42-h.dying"), Some((42, Some("h"))));
        assert_eq!(parse_tmp_name("submit.bpsc-tmp-42"), None);
        assert_eq!(parse_tmp_name(".submit.bpsc-tmp-x1"), None);
        assert_eq!(parse_tmp_name(".submit"), None);
    }

    #[test]
    fn sweep_removes_dirs_of_dead_writers_on_this_host_only() {
        let d = std::env::temp_dir().join(format!("bpsc-outdir-sweep-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        // A process that has exited: its id is free (until reused, which a test cannot rule
        // out, and then the directory is only kept longer).
        let dead = std::process::Command::new("true").spawn().unwrap();
        let dead_pid = dead.id();
        let mut dead = dead;
        dead.wait().unwrap();
        let host = host_name();
        let stale = d.join(format!(".s.bpsc-tmp-{dead_pid}-{host}"));
        let mine = d.join(format!(".s.bpsc-tmp-{}-{host}", std::process::id()));
        let other_host = d.join(format!(".s.bpsc-tmp-{dead_pid}-not-{host}"));
        let legacy_new = d.join(format!(".s.bpsc-tmp-{dead_pid}"));
        for p in [&stale, &mine, &other_host, &legacy_new] {
            std::fs::create_dir_all(p.join("sub")).unwrap();
        }
        let removed = sweep_stale(&d);
        if !pid_alive(dead_pid) {
            assert_eq!(removed, vec![stale.clone()]);
            assert!(!stale.exists());
        }
        assert!(mine.exists() && other_host.exists() && legacy_new.exists());
        let _ = std::fs::remove_dir_all(&d);
    }
}
