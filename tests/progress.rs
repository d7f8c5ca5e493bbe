//! A long compile shows a spinner with its phase at a terminal, and nothing on a pipe.

mod common;

use std::process::Command;

/// A campaign that takes a few seconds to compile with a debug build.
fn big_campaign() -> std::path::PathBuf {
    let d = common::fresh("progress-src");
    let o = Command::new(env!("CARGO_BIN_EXE_bpsc")).args(["synth", "--jobs", "200000", "-o"]).arg(&d).output().expect("synth");
    assert!(o.status.success());
    d.join("campaign.bps")
}

#[test]
fn spinner_at_a_terminal_nothing_on_a_pipe() {
    let file = big_campaign();
    let out = common::fresh("progress-out");
    // A pipe: no escape sequences, no spinner line; the summary is there.
    let o = Command::new(env!("CARGO_BIN_EXE_bpsc"))
        .args(["compile", file.to_str().unwrap(), "--backend", "slurm", "--force", "-o"])
        .arg(out.join("a"))
        .output()
        .expect("compile");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(!err.contains('\u{1b}') && !err.contains("writing"), "progress on a pipe: {err:?}");
    // A terminal (script(1) gives the command a pseudo-terminal).
    if Command::new("script").arg("--version").output().is_err() {
        let _ = std::io::Write::write_all(&mut std::io::stderr(), b"SKIPPED terminal half: script(1) (util-linux) is not installed\n");
        assert!(std::env::var_os("CI").is_none(), "CI needs script(1) for this test");
        return;
    }
    let cmd = format!("{} compile {} --backend slurm --force -o {}", env!("CARGO_BIN_EXE_bpsc"), file.display(), out.join("b").display());
    let o = Command::new("script").args(["-qec", &cmd, "/dev/null"]).output().expect("script");
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{text}");
    assert!(text.contains("writing") && text.contains("jobs"), "no phase shown at a terminal: {text:?}");
}
