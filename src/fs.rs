//! The only way the core reads files: the [`Fs`] trait.  `RealFs` reads the disk;
//! `MemFs` holds a tree in memory for tests and the language server's unsaved buffers.

use std::collections::BTreeMap;
use std::io;
use std::path::{Component, Path, PathBuf};

pub trait Fs: Sync {
    /// Read a whole file, refusing files larger than `limit` bytes with `FileTooLarge`.
    fn read(&self, path: &Path, limit: u64) -> Result<Vec<u8>, ReadError>;
    /// A stable identity for cycle detection (canonical path where it exists).
    fn identity(&self, path: &Path) -> PathBuf {
        normalize(path)
    }
}

#[derive(Debug)]
pub enum ReadError {
    Io(io::Error),
    TooLarge { size: u64, limit: u64 },
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Io(e) => match e.kind() {
                io::ErrorKind::NotFound => write!(f, "no such file"),
                io::ErrorKind::PermissionDenied => write!(f, "permission denied"),
                _ => write!(f, "{e}"),
            },
            ReadError::TooLarge { size, limit } => {
                write!(f, "the file is {:.1} MiB ({size} bytes), over the {} MiB limit", *size as f64 / 1048576.0, limit >> 20)
            }
        }
    }
}

pub struct RealFs;

impl Fs for RealFs {
    fn read(&self, path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
        use std::io::Read;
        let meta = std::fs::metadata(path).map_err(ReadError::Io)?;
        if meta.is_dir() {
            return Err(ReadError::Io(io::Error::other("is a directory")));
        }
        if meta.len() > limit {
            return Err(ReadError::TooLarge { size: meta.len(), limit });
        }
        let f = std::fs::File::open(path).map_err(ReadError::Io)?;
        let mut buf = Vec::with_capacity(meta.len() as usize);
        // Guard against files that grow while being read.
        f.take(limit + 1).read_to_end(&mut buf).map_err(ReadError::Io)?;
        if buf.len() as u64 > limit {
            return Err(ReadError::TooLarge { size: buf.len() as u64, limit });
        }
        Ok(buf)
    }
    fn identity(&self, path: &Path) -> PathBuf {
        std::fs::canonicalize(path).unwrap_or_else(|_| normalize(path))
    }
}

/// An in-memory file tree.
#[derive(Default, Clone)]
pub struct MemFs {
    pub files: BTreeMap<PathBuf, Vec<u8>>,
}

impl MemFs {
    pub fn new() -> MemFs {
        MemFs::default()
    }
    pub fn with(mut self, path: impl Into<PathBuf>, text: impl Into<Vec<u8>>) -> MemFs {
        self.files.insert(normalize(&path.into()), text.into());
        self
    }
}

impl Fs for MemFs {
    fn read(&self, path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
        match self.files.get(&normalize(path)) {
            Some(b) if b.len() as u64 > limit => Err(ReadError::TooLarge { size: b.len() as u64, limit }),
            Some(b) => Ok(b.clone()),
            None => Err(ReadError::Io(io::Error::from(io::ErrorKind::NotFound))),
        }
    }
}

/// Lexical normalisation: drop `.`, fold `a/..`.
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// Resolve `rel` against the directory of `base_file`.
pub fn relative_to(base_file: &Path, rel: &str) -> PathBuf {
    let rel = Path::new(rel);
    if rel.is_absolute() {
        return normalize(rel);
    }
    normalize(&base_file.parent().unwrap_or(Path::new("")).join(rel))
}

/// Unsaved editor buffers over another file system (the language server's view): a path
/// with a buffer reads the buffer, any other path reads `base`.
pub struct OverlayFs<'a> {
    pub base: &'a dyn Fs,
    /// Buffers by normalised absolute path.
    pub buffers: BTreeMap<PathBuf, std::sync::Arc<str>>,
}

impl<'a> OverlayFs<'a> {
    pub fn new(base: &'a dyn Fs) -> OverlayFs<'a> {
        OverlayFs { base, buffers: BTreeMap::new() }
    }
    pub fn set(&mut self, path: &Path, text: std::sync::Arc<str>) {
        self.buffers.insert(normalize(path), text);
    }
    pub fn remove(&mut self, path: &Path) {
        self.buffers.remove(&normalize(path));
    }
}

impl Fs for OverlayFs<'_> {
    fn read(&self, path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
        match self.buffers.get(&normalize(path)) {
            Some(b) if b.len() as u64 > limit => Err(ReadError::TooLarge { size: b.len() as u64, limit }),
            Some(b) => Ok(b.as_bytes().to_vec()),
            None => self.base.read(path, limit),
        }
    }
    fn identity(&self, path: &Path) -> PathBuf {
        if self.buffers.contains_key(&normalize(path)) && !path.exists() {
            return normalize(path);
        }
        self.base.identity(path)
    }
}

#[cfg(test)]
mod overlay_tests {
    use super::*;

    #[test]
    fn buffers_shadow_the_base() {
        let base = MemFs::new().with("/w/a.bps", "disk a").with("/w/b.bps", "disk b");
        let mut o = OverlayFs::new(&base);
        o.set(Path::new("/w/./a.bps"), "buffer a".into());
        assert_eq!(o.read(Path::new("/w/a.bps"), 100).unwrap(), b"buffer a");
        assert_eq!(o.read(Path::new("/w/b.bps"), 100).unwrap(), b"disk b");
        assert!(matches!(o.read(Path::new("/w/a.bps"), 3), Err(ReadError::TooLarge { .. })));
        o.remove(Path::new("/w/a.bps"));
        assert_eq!(o.read(Path::new("/w/a.bps"), 100).unwrap(), b"disk a");
    }
}
