//! The compile path shared by `bpsc compile`, `bpsc check --backend`, `bpsc graph` and
//! `bpsc restart`: check → lower → the engine's capability check → emit into an atomic
//! output directory → `bpsc.json`.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::backend::{DirOutput, Emitted, Engine, Output};
use crate::check::{self, Checked, Options};
use crate::diag::Diagnostic;
use crate::fs::Fs;
use crate::ir::Ir;
use crate::source::SourceMap;
use crate::source::Span;
use crate::submitdir::exit::{ERRORS, USAGE};
use crate::submitdir::meta::{CompileMeta, GroupMeta, Meta, NotifyMeta, StepMeta};
use crate::ui::Ui;

/// Options of `bpsc compile` and `bpsc graph`.
#[derive(Clone, Debug, Default)]
pub struct CompileArgs {
    pub file: PathBuf,
    pub sets: Vec<String>,
    pub campaign: Option<String>,
    pub steps: Option<String>,
    pub coverage_warn: Option<usize>,
    /// `--allow-unknown-steps` (see [`check::Options::allow_unknown_steps`]).
    pub allow_unknown_steps: bool,
}

impl CompileArgs {
    /// The checker's options for these arguments, in a command run from a shell.
    pub fn check_options(&self) -> Options {
        Options::cli(self.sets.clone()).unknown_steps(self.allow_unknown_steps)
    }
}

fn render(map: &SourceMap, diags: &[Diagnostic], err: &mut dyn Write) {
    if !diags.is_empty() {
        let _ = err.write_all(crate::diag::render::render_human(map, diags, false).as_bytes());
    }
}

/// `--set STEP.KEY=VALUE` whose STEP names no step of any pipeline: one E201 each, pointing
/// into the `--set` argument.  Every command that takes `--set` refuses these (exit 2);
/// `bpsc restart` gets it through [`lower_file`].  Under `--allow-unknown-steps` they are
/// W205 warnings instead, and the setting is ignored.
pub fn set_step_errors(c: &Checked, allow_unknown: bool) -> Vec<Diagnostic> {
    let mut names: Vec<String> = Vec::new();
    for p in &c.model.pipelines {
        for s in &p.steps {
            names.push(s.name.clone());
            names.push(format!("{}.{}", p.name, s.name));
        }
    }
    let mut out = Vec::new();
    for set in &c.sets {
        let Some(step) = &set.step else { continue };
        if names.iter().any(|n| n == step) {
            continue;
        }
        let mut d = if allow_unknown {
            Diagnostic::new("W205", format!("`--set {}` is ignored: no step named `{step}`", set.text))
        } else {
            Diagnostic::new("E201", format!("`--set {}`: no step named `{step}`", set.text))
        };
        if let Some(loc) = set.loc {
            let lead = set.text.len() - set.text.trim_start().len();
            d = d.at(loc.file, Span::new(lead, lead + step.len()), "no step of this name");
        }
        let unqualified: Vec<&str> = names.iter().filter(|n| !n.contains('.')).map(|n| n.as_str()).collect();
        d = match crate::diag::did_you_mean(step, unqualified.iter().copied()) {
            Some(s) => d.help(format!("did you mean `{s}`?")),
            None => d.help("use STEP.KEY with a step of the campaign, or KEY alone for every step"),
        };
        out.push(d);
    }
    out
}

/// Check a file for a command that needs it clean: diagnostics go to `err`; `Err(status)`
/// when the command cannot go on (unreadable file or `--set` naming no step: 2; errors: 1).
pub fn check_clean(fs: &dyn Fs, file: &Path, opts: &Options, ui: &Ui, err: &mut dyn Write) -> Result<Checked, u8> {
    let mut c = check::check(fs, file, opts);
    if c.program.root_unreadable {
        ui.diagnostics(&c.program.map, &c.diags.items, err);
        return Err(USAGE);
    }
    let set_errors = set_step_errors(&c, opts.allow_unknown_steps);
    if opts.allow_unknown_steps {
        c.diags.items.extend(set_errors);
    } else if !set_errors.is_empty() {
        let mut all = c.diags.items.clone();
        all.extend(set_errors);
        ui.diagnostics(&c.program.map, &all, err);
        return Err(USAGE);
    }
    if c.has_errors() {
        ui.diagnostics(&c.program.map, &c.diags.items, err);
        return Err(ERRORS);
    }
    Ok(c)
}

/// Check and lower; print diagnostics to `err`.  `Err(exit status)` when there is no IR.
pub fn lower_file(fs: &dyn Fs, a: &CompileArgs, err: &mut dyn Write) -> Result<(Ir, Checked), u8> {
    lower_file_ui(fs, a, &Ui::default(), err)
}

/// [`lower_file`] with the command line's conventions (JSON diagnostics, `--quiet`,
/// timings with `--verbose`).
pub fn lower_file_ui(fs: &dyn Fs, a: &CompileArgs, ui: &Ui, err: &mut dyn Write) -> Result<(Ir, Checked), u8> {
    let t0 = std::time::Instant::now();
    let mut copts = a.check_options();
    copts.keep_tables = true;
    let c = check_clean(fs, &a.file, &copts, ui, err)?;
    let t_check = t0.elapsed();
    let opts = crate::lower::LowerOptions {
        campaign: a.campaign.clone(),
        steps: a.steps.clone(),
        coverage_warn: a.coverage_warn.unwrap_or(crate::lower::DEFAULT_COVERAGE_WARN),
    };
    let t1 = std::time::Instant::now();
    let l = crate::lower::lower(&c, &opts);
    let mut ds = c.diags.items.clone();
    ds.extend(l.diags);
    ui.diagnostics(&c.program.map, &ds, err);
    ui.detail(
        err,
        format!(
            "checked {} in {:.1} ms, lowered in {:.1} ms",
            a.file.display(),
            t_check.as_secs_f64() * 1e3,
            t1.elapsed().as_secs_f64() * 1e3
        ),
    );
    match l.ir {
        Some(ir) => Ok((ir, c)),
        None => Err(ERRORS),
    }
}

/// The engine to use: the one asked for, or the `backend` of the sites the steps run at.
pub fn choose_engine(ir: &Ir, asked: Option<&str>) -> Result<&'static dyn Engine, Diagnostic> {
    let name = match asked {
        Some(b) => b.to_string(),
        None => {
            let used: std::collections::BTreeSet<&str> = ir.steps.iter().filter_map(|s| s.site.as_deref()).collect();
            let backends: std::collections::BTreeSet<&str> =
                ir.sites.iter().filter(|s| used.contains(s.name.as_str())).filter_map(|s| s.backend.as_deref()).collect();
            match backends.len() {
                1 => backends.into_iter().next().unwrap_or_default().to_string(),
                0 => {
                    return Err(Diagnostic::new("E205", "no backend chosen")
                        .help(format!("pass --backend ({}) or set `backend` in the site", crate::backend::names().join(", "))))
                }
                _ => {
                    return Err(Diagnostic::new(
                        "E205",
                        format!("the campaign's sites use several backends ({})", backends.into_iter().collect::<Vec<_>>().join(", ")),
                    )
                    .help("pass --backend, or compile each site's steps separately with --steps"))
                }
            }
        }
    };
    crate::backend::find(&name).ok_or_else(|| crate::backend::unknown(&name))
}

/// `bpsc.json` for a submit directory `engine` wrote.
pub fn meta_of(ir: &Ir, engine: &dyn Engine, emitted: &Emitted) -> Meta {
    Meta {
        bpsc_version: env!("CARGO_PKG_VERSION").to_string(),
        ir_version: crate::ir::IR_VERSION,
        campaign: ir.campaign.clone(),
        backend: engine.name().to_string(),
        jobs: ir.jobs.len() as u64,
        edges: ir.edges.len() as u64,
        groups: emitted.groups.iter().map(|(name, jobs)| GroupMeta { name: name.clone(), jobs: *jobs }).collect(),
        steps: ir
            .steps
            .iter()
            .map(|s| StepMeta {
                name: s.name.clone(),
                quanta: s.quanta.len() as u64,
                on_failure: Some(s.settings.on_failure.as_str().to_string()),
            })
            .collect(),
        notify: Some(NotifyMeta { on: ir.notify.on.clone(), slow_after: ir.notify.slow_after, command: ir.notify.command.clone() }),
        submit_command: Some(emitted.submit_command.clone()).filter(|c| !c.is_empty()),
        priority: Some(ir.priority()),
        ..Default::default()
    }
}

/// How a compile is recorded in `bpsc.json` (what `bpsc restart` needs to compile again).
pub fn compile_meta(a: &CompileArgs, engine: &dyn Engine) -> CompileMeta {
    CompileMeta {
        file: std::fs::canonicalize(&a.file).unwrap_or_else(|_| a.file.clone()),
        campaign: a.campaign.clone(),
        sets: a.sets.clone(),
        steps: a.steps.clone(),
        coverage_warn: a.coverage_warn,
        allow_unknown_steps: a.allow_unknown_steps,
        backend: engine.name().to_string(),
    }
}

/// Why a write failed: a usage problem (the target exists) or the output itself.
pub enum WriteError {
    /// A problem with the output directory (exists without --force, not writable).
    Usage(String),
    /// The engine or the files refused.
    Diag(Diagnostic),
}

/// Emit `ir` for `engine` into `target` (atomically: a temporary sibling renamed into
/// place when complete), with `bpsc.json` made by `meta` from what the engine wrote.
pub fn write_submit_dir(
    engine: &dyn Engine,
    ir: &Ir,
    target: &Path,
    force: bool,
    meta: impl FnOnce(&Emitted) -> Meta,
) -> Result<(PathBuf, Emitted, Vec<String>), WriteError> {
    let od = crate::outdir::OutDir::create(target, force).map_err(|e| WriteError::Usage(e.to_string()))?;
    let out = DirOutput::new(od.path());
    let emitted = engine.emit(ir, &out).map_err(WriteError::Diag)?;
    let files = out.files();
    meta(&emitted).write(od.path()).map_err(|e| WriteError::Diag(e.into()))?;
    let dir = od.commit().map_err(|e| WriteError::Usage(e.to_string()))?;
    Ok((dir, emitted, files))
}

/// Report diagnostics of the capability check; `Err(exit status)` when one is an error.
pub fn capabilities(engine: &dyn Engine, ir: &Ir, map: &SourceMap, err: &mut dyn Write) -> Result<Vec<Diagnostic>, u8> {
    let ds = crate::backend::caps::check(engine, ir);
    render(map, &ds, err);
    if ds.iter().any(|d| d.is_error()) {
        return Err(ERRORS);
    }
    Ok(ds)
}

/// Progress of a long compile for a person at a terminal: a spinner with the current phase,
/// shown only when standard error is a terminal and the compile has run for a second (a
/// short compile, or one whose output goes to a pipe or a CI log, shows nothing).
pub struct Progress {
    bar: indicatif::ProgressBar,
    shown: std::sync::Arc<std::sync::atomic::AtomicBool>,
    done: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Progress {
    pub fn start(first_phase: &str) -> Progress {
        use std::io::IsTerminal;
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;
        let bar = indicatif::ProgressBar::hidden();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {elapsed:>3} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        bar.set_message(first_phase.to_string());
        let shown = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicBool::new(false));
        if std::io::stderr().is_terminal() && std::env::var_os("BPSC_NO_PROGRESS").is_none() {
            let (b, s, d) = (bar.clone(), Arc::clone(&shown), Arc::clone(&done));
            std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_secs(1));
                if !d.load(Ordering::SeqCst) {
                    b.set_draw_target(indicatif::ProgressDrawTarget::stderr());
                    b.enable_steady_tick(std::time::Duration::from_millis(120));
                    s.store(true, Ordering::SeqCst);
                }
            });
        }
        Progress { bar, shown, done }
    }

    /// The phase now running ("lowering", "writing the htcondor files", ...).
    pub fn phase(&self, msg: impl Into<String>) {
        self.bar.set_message(msg.into());
    }

    /// Whether the spinner was drawn (the compile took over a second at a terminal).
    pub fn was_shown(&self) -> bool {
        self.shown.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.done.store(true, std::sync::atomic::Ordering::SeqCst);
        self.bar.finish_and_clear();
    }
}
