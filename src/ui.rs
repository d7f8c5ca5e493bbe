//! How a command talks to people and programs: colour, quiet and verbose, JSON results on
//! standard output and diagnostics on standard error.  Shared by the command line
//! (`crate::cli`) and the compile path (`crate::pipeline`).

use std::io::Write;

use crate::diag::{codes, Diagnostic};
use crate::source::SourceMap;

/// `--color`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ColorChoice {
    #[default]
    Auto,
    Always,
    Never,
}

/// `NO_COLOR` is set to something (https://no-color.org).
pub fn no_color_env() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

/// How a command talks to people and programs: colour, verbosity, JSON.
#[derive(Clone, Copy, Debug, Default)]
pub struct Ui {
    pub color: ColorChoice,
    /// Errors only: no warnings, progress or summary lines.
    pub quiet: bool,
    /// Also what was read and how long each phase took.
    pub verbose: bool,
    /// Standard output and standard error are terminals (set by `main`).
    pub out_tty: bool,
    pub err_tty: bool,
    /// `--format json`: results as JSON on standard output, diagnostics as JSON Lines on
    /// standard error.
    pub json: bool,
}

impl Ui {
    /// Colour for a stream that is (`tty`) or is not a terminal.
    pub fn color_for(&self, tty: bool) -> bool {
        match self.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => tty && !no_color_env(),
        }
    }

    /// Diagnostics on standard error: text for people or JSON Lines; warnings and notes are
    /// left out with `--quiet`.
    pub fn diagnostics(&self, map: &SourceMap, diags: &[Diagnostic], err: &mut dyn Write) {
        if diags.iter().any(|d| d.is_error()) {
            crate::outdir::halt_if_dying();
        }
        let shown: Vec<Diagnostic> = diags.iter().filter(|d| !self.quiet || d.is_error()).cloned().collect();
        if shown.is_empty() {
            return;
        }
        let text = if self.json {
            crate::diag::render::render_json(map, &shown)
        } else {
            render_human_cli(map, &shown, self.color_for(self.err_tty))
        };
        let _ = err.write_all(text.as_bytes());
    }

    /// An error that is about no file (a bad argument, an unreadable output directory).
    pub fn error(&self, err: &mut dyn Write, msg: impl std::fmt::Display) {
        // An error caused by an interrupt's clean-up is not reported: the signal ends bpsc.
        crate::outdir::halt_if_dying();
        if self.json {
            let v = serde_json::json!({
                "code": null, "severity": "error", "message": msg.to_string(), "file": null, "range": null,
                "start": null, "end": null, "label": null, "labels": [], "help": null, "notes": [], "suggestions": [],
            });
            let _ = writeln!(err, "{v}");
        } else {
            let _ = writeln!(err, "error: {msg}");
        }
    }

    /// A line for people on standard error (left out with `--quiet` and `--format json`).
    pub fn info(&self, err: &mut dyn Write, msg: impl std::fmt::Display) {
        if !self.quiet && !self.json {
            let _ = writeln!(err, "{msg}");
        }
    }

    /// A line printed with `--verbose` only.
    pub fn detail(&self, err: &mut dyn Write, msg: impl std::fmt::Display) {
        if self.verbose && !self.quiet && !self.json {
            let _ = writeln!(err, "{msg}");
        }
    }
}

/// Human diagnostics as the command line prints them: each ends with where to read more,
/// `see `bpsc explain CODE``.
pub fn render_human_cli(map: &SourceMap, diags: &[Diagnostic], color: bool) -> String {
    let with_hint: Vec<Diagnostic> = diags
        .iter()
        .map(|d| {
            let mut d = d.clone();
            if codes::lookup(d.code).is_some() {
                d.notes.push(format!("see `bpsc explain {}`", d.code));
            }
            d
        })
        .collect();
    crate::diag::render::render_human(map, &with_hint, color)
}
