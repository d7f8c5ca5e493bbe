//! Files: checksums, file records, paths from job lines, atomic local copies and the removal
//! of stale outputs.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// sha256 and size of a file.
pub fn sha256_file(p: &Path) -> io::Result<(u64, String)> {
    let mut f = std::fs::File::open(p)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf)?;
        if k == 0 {
            break;
        }
        n += k as u64;
        h.update(&buf[..k]);
    }
    Ok((n, format!("{:x}", h.finalize())))
}

/// `{path, size, sha256}` of a local file, or `{path, size: null, sha256: null, missing: true}`.
pub fn file_record(path: &str) -> Value {
    match sha256_file(Path::new(path)) {
        Ok((size, sha)) => json!({"path": path, "size": size, "sha256": sha}),
        Err(_) => json!({"path": path, "size": null, "sha256": null, "missing": true}),
    }
}

/// Expand `${BPSC_SCRATCH}` and `${USER}` in a path from a task line (no shell involved).
pub fn expand(p: &str, scratch: &Path) -> String {
    p.replace("${BPSC_SCRATCH}", &scratch.to_string_lossy()).replace("${USER}", &std::env::var("USER").unwrap_or_default())
}

/// A local path for a URL: `file://` URLs and plain paths; other schemes need
/// `BPSC_TRANSFER_TOOL`.
pub fn local_path(url: &str) -> Option<PathBuf> {
    if let Some(p) = url.strip_prefix("file://") {
        return Some(PathBuf::from(p));
    }
    if !url.contains("://") {
        return Some(PathBuf::from(url));
    }
    None
}

/// The directory of `dest` (created) and its file name.
fn parent_and_name(dest: &Path) -> io::Result<(PathBuf, String)> {
    let parent = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
    std::fs::create_dir_all(&parent)?;
    let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "file".into());
    Ok((parent, name))
}

/// fsync a directory, so that a rename into it survives a crash (best effort: some
/// filesystems refuse to open a directory for syncing).
pub fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Copy local `from` to local `to` through a uniquely named temporary file beside `to`
/// (`.NAME.XXXXXX.bpsc-part`, so two destinations in one directory never share one, nor do
/// two wrappers copying to the same place), verify the copy's sha256 against the source's,
/// fsync it, and rename it into place.  Returns (size, sha256).
pub fn copy_verified(from: &Path, to: &Path) -> Result<(u64, String), String> {
    let (parent, name) = parent_and_name(to).map_err(|e| format!("{}: {e}", to.display()))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".bpsc-part")
        .tempfile_in(&parent)
        .map_err(|e| format!("{}: {e}", parent.display()))?;
    let mut src = std::fs::File::open(from).map_err(|e| format!("{}: {e}", from.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut n = 0u64;
    loop {
        if super::child::stop_requested().is_some() {
            return Err(format!("interrupted copying {} to {}", from.display(), to.display()));
        }
        let k = src.read(&mut buf).map_err(|e| format!("{}: {e}", from.display()))?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        n += k as u64;
        tmp.write_all(&buf[..k]).map_err(|e| format!("{}: {e}", tmp.path().display()))?;
    }
    tmp.as_file().sync_all().map_err(|e| format!("{}: {e}", tmp.path().display()))?;
    let sum = format!("{:x}", h.finalize());
    // Read the copy back: what landed is what was read.
    let (n2, sum2) = sha256_file(tmp.path()).map_err(|e| format!("{}: {e}", tmp.path().display()))?;
    if n2 != n || sum2 != sum {
        return Err(format!("checksum mismatch copying {} to {}", from.display(), to.display()));
    }
    tmp.persist(to).map_err(|e| format!("{}: {}", to.display(), e.error))?;
    sync_dir(&parent);
    Ok((n, sum))
}

/// A unique empty directory beside `dest` for a tool to write `dest`'s temporary copy into
/// (`.NAME.XXXXXX.bpsc-part/NAME`); removed when dropped.
pub fn tool_temp(dest: &Path) -> Result<(tempfile::TempDir, PathBuf), String> {
    let (parent, name) = parent_and_name(dest).map_err(|e| format!("{}: {e}", dest.display()))?;
    let dir = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".bpsc-part")
        .tempdir_in(&parent)
        .map_err(|e| format!("{}: {e}", parent.display()))?;
    let file = dir.path().join(&name);
    Ok((dir, file))
}

/// Move a verified temporary copy into place (fsynced first).
pub fn land(tmp: &Path, dest: &Path) -> Result<(), String> {
    if let Ok(f) = std::fs::File::open(tmp) {
        f.sync_all().map_err(|e| format!("{}: {e}", tmp.display()))?;
    }
    std::fs::rename(tmp, dest).map_err(|e| format!("{}: {e}", dest.display()))?;
    if let Some(p) = dest.parent() {
        sync_dir(p);
    }
    Ok(())
}

/// Remove a declared output left by an earlier attempt (a file, or a directory tree), so
/// that `verify` can only pass on what this attempt wrote.  Returns whether something was
/// there.
pub fn remove_stale(path: &Path) -> io::Result<bool> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path).map(|_| true),
        Ok(_) => std::fs::remove_file(path).map(|_| true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_destinations_in_one_directory_get_different_temporary_names() {
        // `x.fits` and `x.txt` shared `x.bpsc-part` with `with_extension`.
        let d = tempfile::tempdir().unwrap();
        let (a, _) = tool_temp(&d.path().join("x.fits")).unwrap();
        let (b, _) = tool_temp(&d.path().join("x.txt")).unwrap();
        let (c, _) = tool_temp(&d.path().join("x.txt")).unwrap();
        assert_ne!(a.path(), b.path());
        assert_ne!(b.path(), c.path(), "two copies to one destination must not share a temporary name");
        assert!(a.path().file_name().unwrap().to_string_lossy().starts_with(".x.fits."));
    }

    #[test]
    fn a_verified_copy_lands_whole_and_leaves_no_temporary_file() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("a"), b"hello").unwrap();
        std::fs::write(d.path().join("x.fits"), b"old").unwrap();
        let (n, sum) = copy_verified(&d.path().join("a"), &d.path().join("sub/x.fits")).unwrap();
        assert_eq!(n, 5);
        assert_eq!(sum, sha256_file(&d.path().join("a")).unwrap().1);
        assert_eq!(std::fs::read(d.path().join("sub/x.fits")).unwrap(), b"hello");
        let left: Vec<_> = std::fs::read_dir(d.path().join("sub")).unwrap().flatten().map(|e| e.file_name()).collect();
        assert_eq!(left.len(), 1, "{left:?}");
    }

    #[test]
    fn stale_outputs_are_removed_files_and_directories() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("f"), b"x").unwrap();
        std::fs::create_dir_all(d.path().join("dir/sub")).unwrap();
        assert!(remove_stale(&d.path().join("f")).unwrap());
        assert!(remove_stale(&d.path().join("dir")).unwrap());
        assert!(!remove_stale(&d.path().join("none")).unwrap());
        assert!(!d.path().join("f").exists() && !d.path().join("dir").exists());
    }
}
