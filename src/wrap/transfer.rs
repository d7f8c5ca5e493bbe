//! Transfers: local copies with sha256, and remote ones through `BPSC_TRANSFER_TOOL`.
//!
//! # The transfer-tool protocol
//!
//! `BPSC_TRANSFER_TOOL` names an executable (no arguments) that the wrapper calls as:
//!
//! | call | must |
//! |---|---|
//! | `TOOL FROM TO` | copy URL or path `FROM` to `TO`; exit 0 on success |
//! | `TOOL capabilities` | optional: print words on stdout; `checksum` says the next call works |
//! | `TOOL checksum URL` | print the sha256 of `URL`'s content (64 hex digits) as the first word on stdout; exit 0 |
//!
//! A tool that only copies needs nothing more: `capabilities` is called with one argument,
//! which no two-argument copy can act on, and `checksum` is never called unless
//! `capabilities` offered it.  A remote source is copied to a temporary file beside its
//! local destination, checksummed there, compared with the source's checksum when the tool
//! can give it, and only then renamed into place.  A remote destination is checksummed back
//! through the tool after the copy, and a mismatch fails the transfer (exit 74).  The record
//! says `verified: true` only when both ends' sha256 were compared; otherwise
//! `verified: false` with the reason in `verify_note`, and `sha256`/`size` are those of the
//! local end (`null` when neither end is local).

use std::io::{Read, Seek, Write};
use std::process::{Command, Stdio};

use serde_json::{json, Value};

use super::child;
use super::files::{copy_verified, land, local_path, sha256_file, tool_temp};

/// What a transfer did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Copied {
    pub size: Option<u64>,
    pub sha256: Option<String>,
    /// Both ends' sha256 were compared.
    pub verified: bool,
    /// Why it was not verified.
    pub note: Option<String>,
}

impl Copied {
    /// Add `size`, `sha256`, `verified` (and `verify_note`) to a record object.
    pub fn into_record(self, mut rec: Value) -> Value {
        rec["size"] = json!(self.size);
        rec["sha256"] = json!(self.sha256);
        rec["verified"] = json!(self.verified);
        if let Some(n) = self.note {
            rec["verify_note"] = json!(n);
        }
        rec
    }
}

/// The transfer tool of this attempt, its capabilities asked once.
pub struct Tool {
    exe: Option<String>,
    checksum: Option<bool>,
}

/// Where a tool's stderr goes (the attempt's `.err` log).
pub type ErrSink<'a> = &'a std::fs::File;

impl Tool {
    /// `BPSC_TRANSFER_TOOL`, if set.
    pub fn from_env() -> Tool {
        Tool { exe: std::env::var("BPSC_TRANSFER_TOOL").ok().filter(|s| !s.is_empty()), checksum: None }
    }

    fn exe(&self, from: &str, to: &str) -> Result<&str, String> {
        self.exe
            .as_deref()
            .ok_or_else(|| format!("no transfer tool for {from} -> {to}; set BPSC_TRANSFER_TOOL to a command taking FROM TO"))
    }

    /// Run the tool with `args`; its stdout (when `Ok`).
    fn call(&self, args: &[&str], err: ErrSink) -> Result<String, String> {
        let exe = self.exe.as_deref().unwrap_or("");
        let mut out = tempfile::tempfile().map_err(|e| format!("temporary file: {e}"))?;
        let mut c = Command::new(exe);
        c.args(args).stdin(Stdio::null()).stdout(out.try_clone().map(Stdio::from).map_err(|e| e.to_string())?);
        if let Ok(e) = err.try_clone() {
            c.stderr(e);
        }
        let o = child::run(c).map_err(|e| format!("{exe}: {e}"))?;
        if o.code != 0 {
            return Err(format!("`{exe} {}` failed: exit {}", args.join(" "), o.code));
        }
        let mut s = String::new();
        out.rewind().map_err(|e| e.to_string())?;
        out.take(1 << 20).read_to_string(&mut s).map_err(|e| e.to_string())?;
        Ok(s)
    }

    fn supports_checksum(&mut self, err: ErrSink) -> bool {
        if self.checksum.is_none() {
            let ok = self.call(&["capabilities"], err).map(|s| s.split_whitespace().any(|w| w == "checksum")).unwrap_or(false);
            self.checksum = Some(ok);
        }
        self.checksum == Some(true)
    }

    /// The sha256 of `url` through the tool: `Ok(None)` when the tool cannot tell.
    fn checksum(&mut self, url: &str, err: ErrSink) -> Result<Option<String>, String> {
        if !self.supports_checksum(err) {
            return Ok(None);
        }
        let out = self.call(&["checksum", url], err)?;
        let word = out.split_whitespace().next().unwrap_or("").to_ascii_lowercase();
        if word.len() == 64 && word.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(Some(word))
        } else {
            Err(format!("`checksum {url}` printed no sha256: {:?}", out.trim()))
        }
    }

    /// The tool's copy.
    fn copy(&self, from: &str, to: &str, err: ErrSink) -> Result<(), String> {
        let exe = self.exe(from, to)?;
        let mut c = Command::new(exe);
        c.arg(from).arg(to).stdin(Stdio::null());
        if let Ok(e) = err.try_clone() {
            c.stdout(e);
        }
        if let Ok(e) = err.try_clone() {
            c.stderr(e);
        }
        let o = child::run(c).map_err(|e| format!("{exe}: {e}"))?;
        if o.code != 0 {
            return Err(format!("{exe} {from} {to} failed: exit {}", o.code));
        }
        Ok(())
    }
}

/// Why a checksum could not be compared.
fn unverified(sum: Result<Option<String>, String>) -> Result<Option<String>, String> {
    match sum {
        Ok(Some(s)) => Ok(Some(s)),
        Ok(None) => Err("the transfer tool offers no checksum (see `capabilities`)".into()),
        Err(e) => Err(e),
    }
}

/// Copy `from` to `to`, verifying what can be verified (see the module documentation).
pub fn transfer(from: &str, to: &str, tool: &mut Tool, err: ErrSink) -> Result<Copied, String> {
    match (local_path(from), local_path(to)) {
        (Some(a), Some(b)) => {
            let (n, sum) = copy_verified(&a, &b)?;
            Ok(Copied { size: Some(n), sha256: Some(sum), verified: true, note: None })
        }
        (None, Some(b)) => {
            tool.exe(from, to)?;
            let (_guard, tmp) = tool_temp(&b)?;
            tool.copy(from, &tmp.to_string_lossy(), err)?;
            let (n, sum) = sha256_file(&tmp).map_err(|e| format!("{to}: the tool wrote no file ({e})"))?;
            let remote = unverified(tool.checksum(from, err));
            if let Ok(Some(r)) = &remote {
                if *r != sum {
                    return Err(format!("checksum mismatch copying {from} to {to}: source {r}, copy {sum}"));
                }
            }
            land(&tmp, &b)?;
            Ok(Copied { size: Some(n), sha256: Some(sum), verified: remote.is_ok(), note: remote.err() })
        }
        (Some(a), None) => {
            tool.exe(from, to)?;
            let (n, sum) = sha256_file(&a).map_err(|e| format!("{from}: {e}"))?;
            tool.copy(from, to, err)?;
            let remote = unverified(tool.checksum(to, err));
            if let Ok(Some(r)) = &remote {
                if *r != sum {
                    return Err(format!("checksum mismatch copying {from} to {to}: source {sum}, destination {r}"));
                }
            }
            Ok(Copied { size: Some(n), sha256: Some(sum), verified: remote.is_ok(), note: remote.err() })
        }
        (None, None) => {
            tool.exe(from, to)?;
            tool.copy(from, to, err)?;
            let a = unverified(tool.checksum(from, err));
            let b = unverified(tool.checksum(to, err));
            match (a, b) {
                (Ok(Some(x)), Ok(Some(y))) if x == y => Ok(Copied { size: None, sha256: Some(x), verified: true, note: None }),
                (Ok(Some(x)), Ok(Some(y))) => Err(format!("checksum mismatch copying {from} to {to}: source {x}, destination {y}")),
                (Err(e), _) | (_, Err(e)) => Ok(Copied { size: None, sha256: None, verified: false, note: Some(e) }),
                _ => Ok(Copied { size: None, sha256: None, verified: false, note: None }),
            }
        }
    }
}

/// The sha256 of an input in place: a local file, or a remote one through the tool.
pub fn input_record(path: &str, tool: &mut Tool, err: ErrSink) -> Value {
    match local_path(path) {
        Some(p) => {
            let mut r = super::files::file_record(&p.to_string_lossy());
            r["path"] = json!(path);
            r
        }
        None => match unverified(tool.checksum(path, err)) {
            Ok(Some(s)) => json!({"path": path, "size": null, "sha256": s}),
            Ok(None) | Err(_) => json!({"path": path, "size": null, "sha256": null, "remote": true}),
        },
    }
}

/// Write a line to a log (best effort).
pub fn note(mut log: &std::fs::File, text: &str) {
    let _ = writeln!(log, "{text}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

    /// A transfer tool over a directory standing for the remote store (`mem://NAME` is
    /// `STORE/NAME`); `checksum` when `caps` says so, optionally lying.
    fn tool(dir: &Path, caps: &str, lie: bool) -> Tool {
        let store = dir.join("store");
        std::fs::create_dir_all(&store).unwrap();
        let p = dir.join("tool.sh");
        let sum = if lie { "echo 0000000000000000000000000000000000000000000000000000000000000000" } else { "sha256sum \"$(m \"$2\")\"" };
        std::fs::write(
            &p,
            format!(
                "#!/bin/sh\nm() {{ case $1 in mem://*) echo '{}'/${{1#mem://}} ;; *) echo \"$1\" ;; esac; }}\n\
                 case $1 in capabilities) echo '{caps}'; exit 0 ;; checksum) {sum}; exit $? ;; esac\n\
                 cp \"$(m \"$1\")\" \"$(m \"$2\")\"\n",
                store.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        Tool { exe: Some(p.to_string_lossy().into_owned()), checksum: None }
    }

    #[test]
    fn remote_ends_are_verified_when_the_tool_can_checksum() {
        let d = tempfile::tempdir().unwrap();
        let err = tempfile::tempfile().unwrap();
        let mut t = tool(d.path(), "copy checksum", false);
        std::fs::write(d.path().join("store/in.fits"), b"remote bytes").unwrap();
        let local = d.path().join("scratch/in.fits");
        let c = transfer("mem://in.fits", &local.to_string_lossy(), &mut t, &err).unwrap();
        assert!(c.verified, "{c:?}");
        assert_eq!(c.size, Some(12));
        assert_eq!(std::fs::read(&local).unwrap(), b"remote bytes");
        let c = transfer(&local.to_string_lossy(), "mem://out.fits", &mut t, &err).unwrap();
        assert!(c.verified, "{c:?}");
        assert_eq!(c.sha256.as_deref(), Some(sha256_file(&local).unwrap().1.as_str()));
        let c = transfer("mem://in.fits", "mem://copy.fits", &mut t, &err).unwrap();
        assert!(c.verified && c.sha256.is_some(), "{c:?}");
        // No temporary file left beside the local destination.
        assert_eq!(std::fs::read_dir(d.path().join("scratch")).unwrap().count(), 1);
    }

    #[test]
    fn a_copy_only_tool_gives_honest_unverified_records() {
        let d = tempfile::tempdir().unwrap();
        let err = tempfile::tempfile().unwrap();
        let mut t = tool(d.path(), "copy", false);
        let local = d.path().join("a.txt");
        std::fs::write(&local, b"abc").unwrap();
        let c = transfer(&local.to_string_lossy(), "mem://a.txt", &mut t, &err).unwrap();
        assert!(!c.verified);
        assert_eq!(c.size, Some(3), "the local source's size, not 0");
        assert!(c.sha256.as_deref().is_some_and(|s| s.len() == 64));
        assert!(c.note.as_deref().is_some_and(|n| n.contains("no checksum")), "{c:?}");
        let c = transfer("mem://a.txt", "mem://b.txt", &mut t, &err).unwrap();
        assert_eq!((c.verified, c.size, c.sha256), (false, None, None));
    }

    #[test]
    fn a_checksum_mismatch_fails_the_transfer() {
        let d = tempfile::tempdir().unwrap();
        let err = tempfile::tempfile().unwrap();
        let mut t = tool(d.path(), "checksum", true);
        std::fs::write(d.path().join("store/in.fits"), b"x").unwrap();
        let local = d.path().join("in.fits");
        let e = transfer("mem://in.fits", &local.to_string_lossy(), &mut t, &err).unwrap_err();
        assert!(e.contains("checksum mismatch"), "{e}");
        assert!(!local.exists(), "a copy that failed verification must not land");
        let e = transfer(&d.path().join("store/in.fits").to_string_lossy(), "mem://out", &mut t, &err).unwrap_err();
        assert!(e.contains("checksum mismatch"), "{e}");
    }
}
