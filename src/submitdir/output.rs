//! Where a submit directory is written: the [`Output`] trait, a directory ([`DirOutput`]) for real
//! compiles and memory ([`MemOutput`]) for tests.  Engines never touch the filesystem
//! themselves, so a test can emit a whole submit directory into memory and look at it.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// A set of files under one root, written by path relative to it (`htcondor/x.sub`).
pub trait Output: Sync {
    /// Create (or truncate) file `rel`, its parent directories as needed, and return a
    /// buffered writer for it.  Several files may be open at once.
    fn create(&self, rel: &str) -> io::Result<Box<dyn Write>>;

    /// Like [`Output::create`], with a write buffer of about `buffer` bytes (for writers
    /// that keep many files open at once).
    fn create_buffered(&self, rel: &str, _buffer: usize) -> io::Result<Box<dyn Write>> {
        self.create(rel)
    }

    /// Create an empty directory (and its parents).
    fn mkdir(&self, rel: &str) -> io::Result<()>;

    /// Mark file `rel` executable (`0755`).
    fn set_executable(&self, rel: &str) -> io::Result<()>;

    /// Every file written so far, relative, sorted.
    fn files(&self) -> Vec<String>;

    /// The directory the files will be in, where there is one (for messages).
    fn root(&self) -> Option<&Path> {
        None
    }

    /// Write a whole file.
    fn write(&self, rel: &str, bytes: &[u8]) -> io::Result<()> {
        let mut w = self.create(rel)?;
        w.write_all(bytes)?;
        w.flush()
    }

    /// Write a whole file and make it executable.
    fn write_exec(&self, rel: &str, bytes: &[u8]) -> io::Result<()> {
        self.write(rel, bytes)?;
        self.set_executable(rel)
    }
}

/// Refuse a relative path that could leave the root.
fn checked(rel: &str) -> io::Result<&str> {
    let bad = rel.is_empty() || rel.starts_with('/') || rel.split('/').any(|c| c.is_empty() || c == "." || c == "..");
    if bad {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("bpsc bug: output path `{rel}` is not a plain relative path")));
    }
    Ok(rel)
}

/// Files under a directory on disk.
pub struct DirOutput {
    root: PathBuf,
    written: Mutex<Vec<String>>,
    buffer: usize,
}

impl DirOutput {
    pub fn new(root: &Path) -> DirOutput {
        DirOutput { root: root.to_path_buf(), written: Mutex::new(Vec::new()), buffer: 256 << 10 }
    }

    /// The path of `rel` on disk.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// Create the directories of `rel` (a checked relative path) one by one under the root,
    /// never the root itself: once an interrupted compile has removed its temporary root, a
    /// writer still running gets an error instead of recreating it (which left a
    /// `.NAME.bpsc-tmp-*` directory behind).
    fn make_dirs(&self, rel: &str) -> io::Result<()> {
        let mut cur = self.root.clone();
        for c in rel.split('/') {
            cur.push(c);
            match std::fs::create_dir(&cur) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && cur.is_dir() => {}
                Err(e) => {
                    crate::outdir::halt_if_dying();
                    return Err(io::Error::new(e.kind(), format!("{}: {e}", cur.display())));
                }
            }
        }
        Ok(())
    }
}

impl Output for DirOutput {
    fn create(&self, rel: &str) -> io::Result<Box<dyn Write>> {
        self.create_buffered(rel, self.buffer)
    }

    fn create_buffered(&self, rel: &str, buffer: usize) -> io::Result<Box<dyn Write>> {
        let rel = checked(rel)?;
        let p = self.root.join(rel);
        if let Some((dirs, _)) = rel.rsplit_once('/') {
            self.make_dirs(dirs)?;
        }
        let f = std::fs::File::create(&p).map_err(|e| {
            crate::outdir::halt_if_dying();
            io::Error::new(e.kind(), format!("{}: {e}", p.display()))
        })?;
        if let Ok(mut w) = self.written.lock() {
            w.push(rel.to_string());
        }
        Ok(Box::new(io::BufWriter::with_capacity(buffer, f)))
    }

    fn mkdir(&self, rel: &str) -> io::Result<()> {
        self.make_dirs(checked(rel)?)
    }

    fn set_executable(&self, rel: &str) -> io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(self.root.join(checked(rel)?), std::fs::Permissions::from_mode(0o755))
            .inspect_err(|_| crate::outdir::halt_if_dying())
    }

    fn files(&self) -> Vec<String> {
        let mut v = self.written.lock().map(|w| w.clone()).unwrap_or_default();
        v.sort();
        v.dedup();
        v
    }

    fn root(&self) -> Option<&Path> {
        Some(&self.root)
    }
}

/// Files in memory, for tests: every file's bytes and which are executable.
#[derive(Default, Clone)]
pub struct MemOutput {
    files: Arc<Mutex<BTreeMap<String, Vec<u8>>>>,
    dirs: Arc<Mutex<Vec<String>>>,
    exec: Arc<Mutex<Vec<String>>>,
}

impl MemOutput {
    pub fn new() -> MemOutput {
        MemOutput::default()
    }

    /// The bytes of file `rel`.
    pub fn get(&self, rel: &str) -> Option<Vec<u8>> {
        self.files.lock().ok()?.get(rel).cloned()
    }

    /// The text of file `rel` (lossy UTF-8), or an empty string when it was not written.
    pub fn text(&self, rel: &str) -> String {
        self.get(rel).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default()
    }

    pub fn is_executable(&self, rel: &str) -> bool {
        self.exec.lock().map(|e| e.iter().any(|x| x == rel)).unwrap_or(false)
    }

    pub fn dirs(&self) -> Vec<String> {
        self.dirs.lock().map(|d| d.clone()).unwrap_or_default()
    }
}

struct MemFile {
    files: Arc<Mutex<BTreeMap<String, Vec<u8>>>>,
    name: String,
}

impl Write for MemFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut m = self.files.lock().map_err(|_| io::Error::other("memory output poisoned"))?;
        m.entry(self.name.clone()).or_default().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Output for MemOutput {
    fn create(&self, rel: &str) -> io::Result<Box<dyn Write>> {
        let rel = checked(rel)?.to_string();
        self.files.lock().map_err(|_| io::Error::other("memory output poisoned"))?.insert(rel.clone(), Vec::new());
        Ok(Box::new(MemFile { files: Arc::clone(&self.files), name: rel }))
    }

    fn mkdir(&self, rel: &str) -> io::Result<()> {
        let rel = checked(rel)?.to_string();
        if let Ok(mut d) = self.dirs.lock() {
            d.push(rel);
        }
        Ok(())
    }

    fn set_executable(&self, rel: &str) -> io::Result<()> {
        if let Ok(mut e) = self.exec.lock() {
            e.push(checked(rel)?.to_string());
        }
        Ok(())
    }

    fn files(&self) -> Vec<String> {
        self.files.lock().map(|f| f.keys().cloned().collect()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_and_disk_agree() {
        let dir = std::env::temp_dir().join(format!("bpsc-output-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        // The root must exist: a writer never creates it (see `make_dirs`).
        assert!(DirOutput::new(&dir).create("x/a.txt").is_err());
        assert!(!dir.exists(), "a writer recreated a missing root");
        std::fs::create_dir(&dir).unwrap();
        let d = DirOutput::new(&dir);
        let m = MemOutput::new();
        for o in [&d as &dyn Output, &m as &dyn Output] {
            let mut a = o.create("x/a.txt").unwrap();
            let mut b = o.create("b.txt").unwrap();
            a.write_all(b"one ").unwrap();
            b.write_all(b"two").unwrap();
            a.write_all(b"three").unwrap();
            a.flush().unwrap();
            b.flush().unwrap();
            drop((a, b));
            o.write_exec("run.sh", b"#!/bin/sh\n").unwrap();
            o.mkdir("logs/g").unwrap();
            assert_eq!(o.files(), vec!["b.txt", "run.sh", "x/a.txt"]);
            for bad in ["../x", "/etc/passwd", "a/../../b", "", "a//b"] {
                assert!(o.create(bad).is_err(), "{bad}");
            }
        }
        assert_eq!(std::fs::read_to_string(dir.join("x/a.txt")).unwrap(), "one three");
        assert_eq!(m.text("x/a.txt"), "one three");
        assert!(m.is_executable("run.sh"));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(dir.join("run.sh")).unwrap().permissions().mode() & 0o777, 0o755);
        assert!(dir.join("logs/g").is_dir());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
