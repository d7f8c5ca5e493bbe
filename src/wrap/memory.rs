//! Memory: the job's peak memory and out-of-memory kills, from the memory cgroup the engine
//! put the job in.
//!
//! Engines enforce memory through the job's cgroup (Slurm's task/cgroup, HTCondor's cgroup
//! per job, Docker/Apptainer for Nextflow and Pegasus containers), so the cgroup is what
//! tells what the job used and whether the kernel killed part of it:
//!
//! | | cgroup v2 | cgroup v1 (memory controller) |
//! |---|---|---|
//! | peak | `memory.peak` | `memory.max_usage_in_bytes` |
//! | OOM kills | `oom_kill` in `memory.events` | `oom_kill` in `memory.oom_control` (kernel ≥ 4.13) |
//!
//! The wrapper's own cgroup is found from `/proc/self/cgroup` and `/proc/self/mountinfo`; the
//! root cgroup is never used (it is the whole machine's).  An attempt **ran out of memory**
//! when the payload failed and the cgroup's `oom_kill` count rose while it ran.  Without a
//! readable memory cgroup (a job run by hand outside any engine, a kernel without the
//! counter) nothing is claimed: `oom` is `null`, and the peak falls back to `getrusage`
//! (the largest single process, not the sum).  The cgroup may be shared with other work when
//! the wrapper is run by hand; the record names the cgroup so a reader can tell.
//! `BPSC_MEMORY_CGROUP=DIR` overrides the detection.
//!
//! Per quantum, on cgroup v2 with a kernel that resets `memory.peak` per open file
//! (Linux ≥ 6.12), the peak of each quantum of a cluster job is measured on its own; on v1
//! the shared `max_usage_in_bytes` is never reset (the engine reads it too).

use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// Which cgroup hierarchy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

/// The wrapper's memory cgroup.
#[derive(Clone, Debug)]
pub struct Cgroup {
    pub version: Version,
    pub dir: PathBuf,
}

/// The mount point and root of the cgroup hierarchy holding `memory` (v1) or the unified one
/// (v2), from `/proc/self/mountinfo`.
fn mount_of(mountinfo: &str, v: Version) -> Option<(String, String)> {
    for line in mountinfo.lines() {
        let Some((pre, post)) = line.split_once(" - ") else { continue };
        let f: Vec<&str> = pre.split(' ').collect();
        let g: Vec<&str> = post.split(' ').collect();
        let (Some(root), Some(mnt), Some(fstype)) = (f.get(3), f.get(4), g.first()) else { continue };
        let ok = match v {
            Version::V2 => *fstype == "cgroup2",
            Version::V1 => *fstype == "cgroup" && g.get(2).is_some_and(|o| o.split(',').any(|x| x == "memory")),
        };
        if ok {
            return Some((root.to_string(), mnt.to_string()));
        }
    }
    None
}

/// The memory cgroup described by `/proc/self/cgroup` text and `/proc/self/mountinfo` text
/// (files checked under `sysroot`, `/` in production).
pub fn find(cgroup: &str, mountinfo: &str, sysroot: &Path) -> Option<Cgroup> {
    let at = |mnt: &str, root: &str, path: &str| -> Option<PathBuf> {
        let rel = if root != "/" { path.strip_prefix(root).unwrap_or(path) } else { path };
        let rel = rel.trim_start_matches('/');
        if rel.is_empty() {
            return None; // the root cgroup: the whole machine's
        }
        Some(sysroot.join(mnt.trim_start_matches('/')).join(rel))
    };
    // v2 first, when its memory controller is enabled there.
    if let Some(path) = cgroup.lines().find_map(|l| l.strip_prefix("0::")) {
        if let Some((root, mnt)) = mount_of(mountinfo, Version::V2) {
            if let Some(dir) = at(&mnt, &root, path).filter(|d| d.join("memory.events").exists()) {
                return Some(Cgroup { version: Version::V2, dir });
            }
        }
    }
    let path = cgroup.lines().find_map(|l| {
        let mut it = l.splitn(3, ':');
        let (_, ctl, p) = (it.next()?, it.next()?, it.next()?);
        ctl.split(',').any(|c| c == "memory").then_some(p)
    })?;
    let (root, mnt) = mount_of(mountinfo, Version::V1)?;
    let dir = at(&mnt, &root, path).filter(|d| d.join("memory.oom_control").exists() || d.join("memory.max_usage_in_bytes").exists())?;
    Some(Cgroup { version: Version::V1, dir })
}

/// The wrapper's memory cgroup, if it has a readable one.  `BPSC_MEMORY_CGROUP=DIR` names
/// it instead (a site whose jobs see a namespaced `/proc/self/cgroup`; tests): v2 when `DIR`
/// has `memory.events`, else v1.
pub fn detect() -> Option<Cgroup> {
    if let Some(dir) = std::env::var_os("BPSC_MEMORY_CGROUP").map(PathBuf::from) {
        let version = if dir.join("memory.events").exists() { Version::V2 } else { Version::V1 };
        return Some(Cgroup { version, dir });
    }
    let cg = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let mi = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    find(&cg, &mi, Path::new("/"))
}

fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(' ')).and_then(|v| v.trim().parse().ok()))
}

impl Cgroup {
    /// Processes of this cgroup killed by the OOM killer so far.
    pub fn oom_kills(&self) -> Option<u64> {
        let f = match self.version {
            Version::V2 => "memory.events",
            Version::V1 => "memory.oom_control",
        };
        keyed(&std::fs::read_to_string(self.dir.join(f)).ok()?, "oom_kill")
    }

    /// The cgroup's peak memory (bytes).
    pub fn peak(&self) -> Option<u64> {
        let f = match self.version {
            Version::V2 => "memory.peak",
            Version::V1 => "memory.max_usage_in_bytes",
        };
        std::fs::read_to_string(self.dir.join(f)).ok()?.trim().parse().ok()
    }

    /// Where [`Cgroup::peak`] comes from.
    pub fn source(&self) -> &'static str {
        match self.version {
            Version::V2 => "cgroup2 memory.peak",
            Version::V1 => "cgroup1 memory.max_usage_in_bytes",
        }
    }

    /// A per-quantum peak meter (cgroup v2 on Linux ≥ 6.12 only).
    pub fn meter(&self) -> Option<Meter> {
        if self.version != Version::V2 {
            return None;
        }
        let mut f = std::fs::OpenOptions::new().read(true).write(true).open(self.dir.join("memory.peak")).ok()?;
        f.write_all(b"reset\n").ok()?;
        Some(Meter { f })
    }
}

/// `memory.peak` reset for this file descriptor: the peak since [`Cgroup::meter`].
pub struct Meter {
    f: std::fs::File,
}

impl Meter {
    pub fn read(&mut self) -> Option<u64> {
        let mut s = String::new();
        self.f.rewind().ok()?;
        self.f.read_to_string(&mut s).ok()?;
        s.trim().parse().ok()
    }
}

/// Peak resident memory of the wrapper's waited-for children so far (KiB), the fallback.
pub fn children_maxrss_kib() -> i64 {
    // SAFETY: getrusage writes into the zeroed struct we pass; no other invariants.
    unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) == 0 {
            ru.ru_maxrss
        } else {
            -1
        }
    }
}

/// Watches one run of a payload for OOM kills.
pub struct OomWatch {
    before: Option<u64>,
}

impl OomWatch {
    pub fn start(cg: Option<&Cgroup>) -> OomWatch {
        OomWatch { before: cg.and_then(|c| c.oom_kills()) }
    }

    /// `Some(kills)` during the run (0 when none); `None` when it cannot be told.
    pub fn kills(&self, cg: Option<&Cgroup>) -> Option<u64> {
        let after = cg.and_then(|c| c.oom_kills())?;
        Some(after.saturating_sub(self.before?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MI: &str = "22 1 0:20 / /sys/fs/cgroup rw - tmpfs tmpfs rw
30 22 0:26 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
31 22 0:27 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn finds_the_v1_memory_cgroup_and_reads_its_counters() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("sys/fs/cgroup/memory/job_7/step_0");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("memory.oom_control"), "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n").unwrap();
        std::fs::write(dir.join("memory.max_usage_in_bytes"), "1048576\n").unwrap();
        let cg = find("4:memory:/job_7/step_0\n0::/\n", MI, root.path()).expect("v1 cgroup");
        assert_eq!(cg.version, Version::V1);
        assert_eq!(cg.oom_kills(), Some(2));
        assert_eq!(cg.peak(), Some(1 << 20));
        // The root cgroup is the machine's, never the job's.
        assert!(find("4:memory:/\n0::/\n", MI, root.path()).is_none());
    }

    #[test]
    fn prefers_v2_when_its_memory_controller_is_there() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("sys/fs/cgroup/unified/system.slice/job_8");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("memory.events"), "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n").unwrap();
        std::fs::write(dir.join("memory.peak"), "2097152\n").unwrap();
        let cg = find("0::/system.slice/job_8\n", MI, root.path()).expect("v2 cgroup");
        assert_eq!(cg.version, Version::V2);
        assert_eq!(cg.oom_kills(), Some(1));
        assert_eq!(cg.peak(), Some(2 << 20));
        let w = OomWatch::start(Some(&cg));
        std::fs::write(dir.join("memory.events"), "oom 2\noom_kill 3\n").unwrap();
        assert_eq!(w.kills(Some(&cg)), Some(2));
        assert_eq!(OomWatch::start(None).kills(None), None);
    }
}
