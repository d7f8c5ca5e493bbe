//! Atomic output directories: everything is written into a temporary sibling directory and
//! renamed into place at the end, so an interrupted compile never leaves a half-written
//! submit directory, and an existing one is replaced only with `--force`.

use std::io;
use std::path::{Path, PathBuf};

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

impl OutDir {
    pub fn create(target: &Path, force: bool) -> Result<OutDir, OutDirError> {
        if target.exists() && !force {
            return Err(OutDirError::Exists(target.to_path_buf()));
        }
        let parent = target.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent).map_err(|e| OutDirError::Io(parent.to_path_buf(), e))?;
        let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "out".into());
        let tmp = parent.join(format!(".{name}.bpsc-tmp-{}", std::process::id()));
        if tmp.exists() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        std::fs::create_dir(&tmp).map_err(|e| OutDirError::Io(tmp.clone(), e))?;
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
    pub fn commit(mut self) -> Result<PathBuf, OutDirError> {
        if self.target.exists() {
            if !self.force {
                return Err(OutDirError::Exists(self.target.clone()));
            }
            let old = self.tmp.with_extension("old");
            std::fs::rename(&self.target, &old).map_err(|e| OutDirError::Io(self.target.clone(), e))?;
            std::fs::rename(&self.tmp, &self.target).map_err(|e| OutDirError::Io(self.target.clone(), e))?;
            let _ = std::fs::remove_dir_all(&old);
        } else {
            std::fs::rename(&self.tmp, &self.target).map_err(|e| OutDirError::Io(self.target.clone(), e))?;
        }
        self.committed = true;
        Ok(self.target.clone())
    }
}

impl Drop for OutDir {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.tmp);
        }
    }
}
