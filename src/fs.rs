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
