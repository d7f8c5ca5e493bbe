//! Command implementations behind `main.rs`, kept in the library so tests can call them.
//! Every command writes to a `Write` and returns the process exit status.
//!
//! The conventions every command follows:
//!
//! * standard output carries the command's result (for `check`, its report), in the format
//!   asked for with `--format`; diagnostics and errors go to standard error, as text for
//!   people or, with `--format json`, as JSON Lines (the schema of `check --format json`;
//!   an error that is about no file has `"code": null`);
//! * human diagnostics end with `see `bpsc explain CODE``;
//! * `--quiet` leaves errors only, `--verbose` adds what was read and how long it took;
//! * colour follows `--color auto|always|never`; `auto` colours a terminal unless
//!   `NO_COLOR` is set (to anything but the empty string);
//! * exit status 0: done, clean; 1: the input has errors (or, `--deny warnings`, warnings);
//!   2: usage or I/O problems (a bad argument, an unreadable file, `--set` naming no step).

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::check::{self, model::Value, resolve, Checked, Options};
use crate::diag::{codes, Diagnostic, Diagnostics, Severity};
use crate::fs::{Fs, MemFs, ReadError};
use crate::source::{FileId, SourceMap, Span};

pub const EXIT_OK: u8 = 0;
pub const EXIT_ERRORS: u8 = 1;
pub const EXIT_USAGE: u8 = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutFormat {
    Human { color: bool },
    Json,
    Sarif,
    Junit,
    /// GitHub Actions annotations (`::error file=...::message`).
    Github,
}

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
        let shown: Vec<Diagnostic> = diags.iter().filter(|d| !self.quiet || d.is_error()).cloned().collect();
        if shown.is_empty() {
            return;
        }
        let text = if self.json { crate::diag::render::render_json(map, &shown) } else { render_human_cli(map, &shown, self.color_for(self.err_tty)) };
        let _ = err.write_all(text.as_bytes());
    }

    /// An error that is about no file (a bad argument, an unreadable output directory).
    pub fn error(&self, err: &mut dyn Write, msg: impl std::fmt::Display) {
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

/// `--set STEP.KEY=VALUE` whose STEP names no step of any pipeline: one E201 each, pointing
/// into the `--set` argument.  Every command that takes `--set` refuses these (exit 2);
/// `bpsc restart` gets it through [`lower_file`].
pub fn set_step_errors(c: &Checked) -> Vec<Diagnostic> {
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
        let mut d = Diagnostic::new("E201", format!("`--set {}`: no step named `{step}`", set.text));
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
pub fn check_clean(fs: &dyn Fs, file: &Path, sets: &[String], ui: &Ui, err: &mut dyn Write) -> Result<Checked, u8> {
    let c = check::check(fs, file, &Options { sets: sets.to_vec() });
    if c.program.root_unreadable {
        ui.diagnostics(&c.program.map, &c.diags.items, err);
        return Err(EXIT_USAGE);
    }
    let set_errors = set_step_errors(&c);
    if !set_errors.is_empty() {
        let mut all = c.diags.items.clone();
        all.extend(set_errors);
        ui.diagnostics(&c.program.map, &all, err);
        return Err(EXIT_USAGE);
    }
    if c.has_errors() {
        ui.diagnostics(&c.program.map, &c.diags.items, err);
        return Err(EXIT_ERRORS);
    }
    Ok(c)
}

/// A file system that reads one file from standard input (`bpsc check -`) and everything
/// else (includes, tables, relative to the working directory) from `base`.
struct StdinFs<'a> {
    base: &'a dyn Fs,
    name: PathBuf,
    bytes: Vec<u8>,
}

impl Fs for StdinFs<'_> {
    fn read(&self, path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
        if path == self.name {
            if self.bytes.len() as u64 > limit {
                return Err(ReadError::TooLarge { size: self.bytes.len() as u64, limit });
            }
            return Ok(self.bytes.clone());
        }
        self.base.read(path, limit)
    }
    fn identity(&self, path: &Path) -> PathBuf {
        if path == self.name {
            self.name.clone()
        } else {
            self.base.identity(path)
        }
    }
}

/// The `.bps` files under a directory, in name order; hidden directories are skipped.
pub fn bps_files_under(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let mut entries: Vec<std::fs::DirEntry> = std::fs::read_dir(&d)?.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        let mut subdirs = Vec::new();
        for e in entries {
            let name = e.file_name();
            if name.to_string_lossy().starts_with('.') {
                continue;
            }
            let p = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                subdirs.push(p);
            } else if p.extension().is_some_and(|x| x == "bps") {
                out.push(p);
            }
        }
        stack.extend(subdirs.into_iter().rev());
    }
    out.sort();
    Ok(out)
}

/// Check each file; render all diagnostics together.
pub fn check_files(fs: &dyn Fs, files: &[PathBuf], opts: &Options, fmt: OutFormat, deny_warnings: bool, out: &mut dyn Write) -> u8 {
    check_paths(fs, files, opts, fmt, deny_warnings, &Ui::default(), out, &mut std::io::stderr())
}

/// `bpsc check PATH...`: files, directories (every `*.bps` under them that no other file
/// found there includes) and `-` (standard input, named `<stdin>`; includes and tables are
/// relative to the working directory).  The report goes to `out`; problems with the
/// arguments themselves to `err`.
#[allow(clippy::too_many_arguments)]
pub fn check_paths(fs: &dyn Fs, inputs: &[PathBuf], opts: &Options, fmt: OutFormat, deny_warnings: bool, ui: &Ui, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let t0 = std::time::Instant::now();
    let mut usage = false;
    // (path, found by walking a directory)
    let mut roots: Vec<(PathBuf, bool)> = Vec::new();
    let mut stdin: Option<StdinFs> = None;
    for p in inputs {
        if p.as_os_str() == "-" {
            if stdin.is_some() {
                ui.error(err, "`-` (standard input) can be given once");
                return EXIT_USAGE;
            }
            let mut bytes = Vec::new();
            if let Err(e) = std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes) {
                ui.error(err, format!("reading standard input: {e}"));
                return EXIT_USAGE;
            }
            stdin = Some(StdinFs { base: fs, name: PathBuf::from("<stdin>"), bytes });
            roots.push((PathBuf::from("<stdin>"), false));
        } else if p.is_dir() {
            match bps_files_under(p) {
                Ok(v) if v.is_empty() => {
                    ui.error(err, format!("no .bps files under {}", p.display()));
                    usage = true;
                }
                Ok(v) => roots.extend(v.into_iter().map(|f| (f, true))),
                Err(e) => {
                    ui.error(err, format!("cannot read directory {}: {e}", p.display()));
                    usage = true;
                }
            }
        } else {
            roots.push((p.clone(), false));
        }
    }
    let fs: &dyn Fs = match &stdin {
        Some(s) => s,
        None => fs,
    };
    let mut checks: Vec<(PathBuf, bool, Checked)> = Vec::new();
    for (f, walked) in roots {
        if checks.iter().any(|(g, _, _)| *g == f) {
            continue;
        }
        let c = check::check(fs, &f, opts);
        checks.push((f, walked, c));
    }
    // A file found in a directory that another file includes is checked through that file.
    let included: std::collections::BTreeSet<PathBuf> = checks
        .iter()
        .flat_map(|(_, _, c)| c.program.modules.iter().filter(|m| m.file != c.program.root).map(|m| fs.identity(&c.program.map.get(m.file).path)))
        .collect();
    checks.retain(|(f, walked, _)| !*walked || !included.contains(&fs.identity(f)));
    let mut merged = SourceMap::new();
    let mut all = Diagnostics::default();
    let mut checked_files: Vec<FileId> = Vec::new();
    let n_checked = checks.len();
    for (_, _, c) in checks {
        if c.program.root_unreadable {
            usage = true;
        }
        let set_errors = set_step_errors(&c);
        usage |= !set_errors.is_empty();
        let base = merged.files().count() as u32;
        let (root, diags) = merge(&mut merged, c);
        if let Some(r) = root {
            checked_files.push(r);
        }
        all.extend(diags);
        for mut d in set_errors {
            shift_files(&mut d, base);
            all.push(d);
        }
    }
    all.sort();
    let failed = all.has_errors() || (deny_warnings && all.warning_count() > 0);
    let text = match fmt {
        OutFormat::Human { color } => {
            let shown: Vec<Diagnostic> = all.items.iter().filter(|d| !ui.quiet || d.is_error()).cloned().collect();
            if ui.quiet && shown.is_empty() {
                String::new()
            } else {
                render_human_cli(&merged, &shown, color)
            }
        }
        OutFormat::Json => crate::diag::render::render_json(&merged, &all.items),
        OutFormat::Sarif => crate::diag::render::render_sarif(&merged, &all.items),
        OutFormat::Junit => {
            let names: Vec<String> = checked_files.iter().map(|f| merged.get(*f).name.clone()).collect();
            crate::diag::render::render_junit(&merged, &names, &all.items, deny_warnings)
        }
        OutFormat::Github => crate::diag::render::render_github(&merged, &all.items),
    };
    let _ = out.write_all(text.as_bytes());
    if matches!(fmt, OutFormat::Human { .. }) {
        ui.detail(err, format!("checked {n_checked} file{} in {:.1} ms", if n_checked == 1 { "" } else { "s" }, t0.elapsed().as_secs_f64() * 1e3));
    }
    if usage {
        EXIT_USAGE
    } else if failed {
        EXIT_ERRORS
    } else {
        EXIT_OK
    }
}

/// Renumber the file ids of a diagnostic by `base`.
fn shift_files(d: &mut Diagnostic, base: u32) {
    let shift = |id: &mut FileId| id.0 += base;
    if let Some(p) = &mut d.primary {
        shift(&mut p.loc.file);
    }
    for l in &mut d.secondary {
        shift(&mut l.loc.file);
    }
    for s in &mut d.suggestions {
        shift(&mut s.loc.file);
    }
}

/// Move one check's files into `merged`, renumbering file ids in its diagnostics.
fn merge(merged: &mut SourceMap, c: Checked) -> (Option<FileId>, Vec<Diagnostic>) {
    let base = merged.files().count() as u32;
    for f in c.program.map.files() {
        merged.add(f.path.clone(), f.text.clone());
    }
    let mut diags = c.diags.items;
    for d in &mut diags {
        shift_files(d, base);
    }
    let root = (!c.program.root_unreadable).then(|| FileId(c.program.root.0 + base));
    (root, diags)
}

fn loc_text(map: &SourceMap, loc: Option<crate::source::Loc>) -> String {
    match loc.and_then(|l| map.try_get(l.file).map(|f| (f, l))) {
        Some((f, l)) => {
            let p = f.position(l.span.lo);
            format!("{}:{}:{}", f.name, p.line, p.column)
        }
        None => String::new(),
    }
}

fn pick_campaign<'a>(c: &'a Checked, name: Option<&str>, ui: &Ui, err: &mut dyn Write) -> Result<Option<&'a check::model::Campaign>, u8> {
    match name {
        Some(n) => match c.model.campaigns.iter().find(|x| x.name == n) {
            Some(x) => Ok(Some(x)),
            None => {
                ui.error(err, format!("no campaign named `{n}`"));
                Err(EXIT_USAGE)
            }
        },
        None => match c.model.campaigns.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(one)),
            many => {
                ui.error(
                    err,
                    format!(
                        "the file defines {} campaigns; choose one with --campaign ({})",
                        many.len(),
                        many.iter().map(|x| x.name.as_str()).collect::<Vec<_>>().join(", ")
                    ),
                );
                Err(EXIT_USAGE)
            }
        },
    }
}

/// Steps of a campaign (or of every pipeline when there is none), in definition order.
pub fn campaign_steps<'a>(
    model: &'a check::model::Model,
    camp: Option<&'a check::model::Campaign>,
) -> Vec<(&'a check::model::Pipeline, &'a check::model::Step)> {
    match camp {
        Some(c) => {
            c.uses.iter().filter_map(|u| model.pipeline(&u.pipeline.name)).flat_map(|p| p.steps.iter().map(move |s| (p, s))).collect()
        }
        None => model.pipelines.iter().flat_map(|p| p.steps.iter().map(move |s| (p, s))).collect(),
    }
}

fn origin_json(map: &SourceMap, o: &resolve::Origin) -> serde_json::Value {
    let mut v = serde_json::json!({ "scope": o.scope, "label": o.label });
    if let Some(l) = o.loc {
        if let Some(f) = map.try_get(l.file) {
            let p = f.position(l.span.lo);
            v["file"] = serde_json::Value::String(f.name.clone());
            v["line"] = p.line.into();
            v["column"] = p.column.into();
        }
    }
    v
}

/// `bpsc config FILE [--explain STEP.KEY] [--format json]`: the result on `out`; the
/// file's diagnostics and errors on `err` (JSON Lines with `ui.json`).
#[allow(clippy::too_many_arguments)]
pub fn config(
    fs: &dyn Fs,
    file: &Path,
    opts: &Options,
    explain: Option<&str>,
    campaign: Option<&str>,
    ui: &Ui,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    let json = ui.json;
    let c = match check_clean(fs, file, &opts.sets, ui, err) {
        Ok(c) => c,
        Err(code) => return code,
    };
    ui.diagnostics(&c.program.map, &c.diags.items, err);
    let camp = match pick_campaign(&c, campaign, ui, err) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let steps = campaign_steps(&c.model, camp);
    let map = &c.program.map;
    if let Some(spec) = explain {
        let Some((step_name, key)) = spec.rsplit_once('.') else {
            ui.error(err, "--explain takes STEP.KEY, e.g. coadd.memory");
            return EXIT_USAGE;
        };
        let Some((p, s)) = steps.iter().find(|(p, s)| s.name == step_name || format!("{}.{}", p.name, s.name) == step_name) else {
            ui.error(err, format!("no step `{step_name}`; steps: {}", steps.iter().map(|(_, s)| s.name.as_str()).collect::<Vec<_>>().join(", ")));
            return EXIT_USAGE;
        };
        let st = resolve::resolve_step(&c.model, camp, p, s, &c.sets);
        let r = if let Some(var) = key.strip_prefix("env.") { st.env.get(var) } else { st.values.get(key) };
        let Some(r) = r else {
            if check::keys::key(key).is_some() || key.starts_with("env.") {
                if json {
                    let v = serde_json::json!({"step": format!("{}.{}", p.name, s.name), "key": key, "value": null});
                    let _ = writeln!(out, "{}", serde_json::to_string_pretty(&v).unwrap_or_default());
                } else {
                    let _ = writeln!(out, "{}.{}.{key} is not set at any scope", p.name, s.name);
                }
                return EXIT_OK;
            }
            let cands: Vec<&str> = check::keys::exec_keys().map(|k| k.name).collect();
            let hint = crate::diag::did_you_mean(key, cands.iter().copied()).map(|s| format!("; did you mean `{s}`?")).unwrap_or_default();
            ui.error(err, format!("`{key}` is not a setting{hint}"));
            return EXIT_USAGE;
        };
        if json {
            let chain: Vec<serde_json::Value> = r
                .overridden
                .iter()
                .map(|(v, o)| serde_json::json!({"value": v, "display": v.to_string(), "origin": origin_json(map, o)}))
                .collect();
            let v = serde_json::json!({"step": format!("{}.{}", p.name, s.name), "key": key, "value": r.value, "display": r.value.to_string(), "origin": origin_json(map, &r.origin), "overridden": chain});
            let _ = writeln!(out, "{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            return EXIT_OK;
        }
        let _ = writeln!(out, "{}.{}.{key} = {}", p.name, s.name, r.value);
        let _ = writeln!(out, "  {:<14} {:<40} {}", r.value.to_string(), r.origin.label, loc_text(map, r.origin.loc));
        for (v, o) in r.overridden.iter().rev() {
            let _ = writeln!(out, "  {:<14} {:<40} {}  (overridden)", v.to_string(), o.label, loc_text(map, o.loc));
        }
        return EXIT_OK;
    }
    if json {
        let mut list = Vec::new();
        for (p, s) in &steps {
            let st = resolve::resolve_step(&c.model, camp, p, s, &c.sets);
            let mut settings = serde_json::Map::new();
            for (k, r) in &st.values {
                settings.insert((*k).to_string(), serde_json::json!({"value": r.value, "display": r.value.to_string(), "origin": origin_json(map, &r.origin), "overridden": r.overridden.len()}));
            }
            let env: serde_json::Map<String, serde_json::Value> = st
                .env
                .iter()
                .map(|(k, r)| (k.clone(), serde_json::json!({"value": r.value, "origin": origin_json(map, &r.origin)})))
                .collect();
            list.push(serde_json::json!({"pipeline": p.name, "step": s.name, "site": st.site, "settings": settings, "env": env}));
        }
        let v = serde_json::json!({"campaign": camp.map(|c| c.name.clone()), "steps": list});
        let _ = writeln!(out, "{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return EXIT_OK;
    }
    if let Some(cp) = camp {
        let _ = writeln!(out, "campaign {}", cp.name);
    }
    for (p, s) in &steps {
        let st = resolve::resolve_step(&c.model, camp, p, s, &c.sets);
        let _ = writeln!(out, "\nstep {}.{}{}", p.name, s.name, st.site.as_ref().map(|x| format!("  (site {x})")).unwrap_or_default());
        for (k, r) in &st.values {
            let _ = writeln!(out, "  {:<18} {:<28} {}", k, r.value.to_string(), r.origin.label);
        }
        for (k, r) in &st.env {
            let _ = writeln!(out, "  env.{:<14} {:<28} {}", k, r.value.to_string(), r.origin.label);
        }
    }
    EXIT_OK
}

/// Run the example of a code through the checker (and lowering, when it checks clean) and
/// render what bpsc says.
pub fn explain_example(info: &codes::CodeInfo) -> (Vec<Diagnostic>, String) {
    let bytes: Vec<u8> = match info.code {
        // Latin-1: é becomes the single byte 0xE9.
        "E403" => info.example.chars().map(|c| if (c as u32) < 256 { c as u32 as u8 } else { b'?' }).collect(),
        _ => info.example.as_bytes().to_vec(),
    };
    let mut fs = MemFs::new().with("example.bps", bytes);
    for (p, t) in codes::example_files(info.code) {
        fs = fs.with(*p, t.as_bytes().to_vec());
    }
    if info.code == "E407" {
        let mut big = b"bps 1\n".to_vec();
        big.resize((crate::check::load::MAX_SOURCE_BYTES + 1) as usize, b'#');
        fs = fs.with("huge.bps", big);
    }
    let opts = Options { sets: info.example_args.iter().filter_map(|a| a.strip_prefix("--set=")).map(|s| s.to_string()).collect() };
    let c = check::check(&fs, Path::new("example.bps"), &opts);
    let mut diags = c.diags.items.clone();
    if !c.has_errors() && !c.model.campaigns.is_empty() {
        let l = crate::lower::lower(&c, &crate::lower::LowerOptions { coverage_warn: 1_000_000, ..Default::default() });
        diags.extend(l.diags);
        if let (Some(ir), Some(b)) = (l.ir, info.example_args.iter().find_map(|a| a.strip_prefix("--backend="))) {
            let dir = std::env::temp_dir().join(format!("bpsc-explain-{}-{}", info.code, std::process::id()));
            let _ = std::fs::create_dir_all(&dir);
            if let Err(e) = crate::backend::write(b, &ir, &dir) {
                diags.extend(backend_diagnostic(b, &e));
            }
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
    let text = crate::diag::render::render_human(&c.program.map, &diags, false);
    (diags, text)
}

/// `bpsc explain [CODE]` (an unknown code is reported on standard error).
pub fn explain(code: Option<&str>, out: &mut dyn Write) -> u8 {
    explain_to(code, &Ui::default(), out, &mut std::io::stderr())
}

/// `bpsc explain [CODE]`: the page on `out`, errors on `err`.
pub fn explain_to(code: Option<&str>, ui: &Ui, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let Some(code) = code else {
        for c in codes::CODES {
            let _ = writeln!(out, "{}  {:<8} {}", c.code, c.severity.as_str(), c.title);
        }
        return EXIT_OK;
    };
    let Some(info) = codes::lookup(code) else {
        let known: Vec<&str> = codes::CODES.iter().map(|c| c.code).collect();
        let hint = crate::diag::did_you_mean(&code.to_ascii_uppercase(), known.iter().copied()).map(|s| format!(" (did you mean {s}?)")).unwrap_or_default();
        ui.error(err, format!("unknown code `{code}`{hint}; `bpsc explain` lists them"));
        return EXIT_USAGE;
    };
    let _ = writeln!(out, "{} ({}): {}\n", info.code, info.severity.as_str(), info.title);
    let _ = writeln!(out, "{}\n", info.explanation);
    let _ = writeln!(out, "Example (example.bps):\n");
    for l in info.example.lines() {
        let _ = writeln!(out, "    {l}");
    }
    for (p, t) in codes::example_files(info.code) {
        let _ = writeln!(out, "\n{p}:\n");
        for l in t.lines() {
            let _ = writeln!(out, "    {l}");
        }
    }
    let (_, text) = explain_example(info);
    let _ = writeln!(out, "\nbpsc check example.bps says:\n");
    let _ = writeln!(out, "{}", text.trim_end());
    let _ = Severity::Error;
    let _ = Value::Int(0);
    EXIT_OK
}

/// Options of `bpsc compile` and `bpsc graph`.
#[derive(Clone, Debug, Default)]
pub struct CompileArgs {
    pub file: PathBuf,
    pub sets: Vec<String>,
    pub campaign: Option<String>,
    pub steps: Option<String>,
    pub coverage_warn: Option<usize>,
}

/// Check and lower; print diagnostics to `err`.  `Err(code)` when there is no IR.
pub fn lower_file(fs: &dyn Fs, a: &CompileArgs, err: &mut dyn Write) -> Result<(crate::lower::ir::Ir, Checked), u8> {
    lower_file_ui(fs, a, &Ui::default(), err)
}

/// [`lower_file`] with the command line's conventions (JSON diagnostics, `--quiet`,
/// timings with `--verbose`).
pub fn lower_file_ui(fs: &dyn Fs, a: &CompileArgs, ui: &Ui, err: &mut dyn Write) -> Result<(crate::lower::ir::Ir, Checked), u8> {
    let t0 = std::time::Instant::now();
    let c = check_clean(fs, &a.file, &a.sets, ui, err)?;
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
    ui.detail(err, format!("checked {} in {:.1} ms, lowered in {:.1} ms", a.file.display(), t_check.as_secs_f64() * 1e3, t1.elapsed().as_secs_f64() * 1e3));
    match l.ir {
        Some(ir) => Ok((ir, c)),
        None => Err(EXIT_ERRORS),
    }
}

/// Counts of an IR, for the JSON results.
fn counts_json(ir: &crate::lower::ir::Ir) -> serde_json::Value {
    serde_json::json!({
        "steps": ir.steps.len(),
        "jobs": ir.jobs.len(),
        "compute_jobs": ir.compute_jobs(),
        "edges": ir.edges.len(),
        "coverage_size": ir.coverage_size,
    })
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// `bpsc compile FILE --emit ir -o DIR`.
pub fn compile_ir(fs: &dyn Fs, a: &CompileArgs, outdir: &Path, force: bool, err: &mut dyn Write) -> u8 {
    compile_ir_ui(fs, a, outdir, force, &Ui::default(), &mut std::io::sink(), err)
}

/// `bpsc compile FILE --emit ir -o DIR`; with `--format json` the result on `out`.
pub fn compile_ir_ui(fs: &dyn Fs, a: &CompileArgs, outdir: &Path, force: bool, ui: &Ui, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let (ir, _c) = match lower_file_ui(fs, a, ui, err) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let od = match crate::outdir::OutDir::create(outdir, force) {
        Ok(o) => o,
        Err(e) => {
            ui.error(err, e);
            return EXIT_USAGE;
        }
    };
    let path = od.path().join("ir.jsonl");
    let res = std::fs::File::create(&path).and_then(|f| {
        let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
        crate::lower::emit::write_ir_jsonl(&ir, &mut w)?;
        w.flush()
    });
    if let Err(e) = res {
        ui.error(err, format!("writing {}: {e}", path.display()));
        return EXIT_USAGE;
    }
    match od.commit() {
        Ok(p) => {
            if ui.json {
                let v = serde_json::json!({
                    "bpsc_compile": 1,
                    "campaign": ir.campaign,
                    "emit": "ir",
                    "out": absolute(&p),
                    "ir": absolute(&p.join("ir.jsonl")),
                    "counts": counts_json(&ir),
                });
                let _ = writeln!(out, "{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            }
            ui.info(err, format!("wrote {} ({} jobs, {} edges)", p.join("ir.jsonl").display(), ir.jobs.len(), ir.edges.len()));
            EXIT_OK
        }
        Err(e) => {
            ui.error(err, e);
            EXIT_USAGE
        }
    }
}

/// Most jobs `--level job` draws.
pub const MAX_GRAPH_JOBS: usize = 5000;

/// `bpsc graph FILE --format dot|mermaid --level step|job`.
#[allow(clippy::too_many_arguments)]
pub fn graph(fs: &dyn Fs, a: &CompileArgs, mermaid: bool, job_level: bool, ui: &Ui, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let (ir, _c) = match lower_file_ui(fs, a, ui, err) {
        Ok(x) => x,
        Err(code) => return code,
    };
    if job_level && ir.jobs.len() > MAX_GRAPH_JOBS {
        ui.error(
            err,
            format!(
                "the job graph has {} jobs; --level job draws campaigns of at most {MAX_GRAPH_JOBS} jobs (use --level step, or --steps to draw a part)",
                ir.jobs.len()
            ),
        );
        return EXIT_USAGE;
    }
    let r = if job_level { crate::lower::jobgraph::write_job_graph(&ir, mermaid, out) } else { crate::lower::emit::write_graph(&ir, mermaid, false, out) };
    match r {
        Ok(()) => EXIT_OK,
        Err(e) => {
            ui.error(err, e);
            EXIT_USAGE
        }
    }
}

/// The backend to use: the one asked for, or the `backend` of the sites the steps run at.
pub fn choose_backend(ir: &crate::lower::ir::Ir, asked: Option<&str>) -> Result<String, String> {
    if let Some(b) = asked {
        return Ok(b.to_string());
    }
    let used: std::collections::BTreeSet<&str> = ir.steps.iter().filter_map(|s| s.site.as_deref()).collect();
    let backends: std::collections::BTreeSet<&str> =
        ir.sites.iter().filter(|s| used.contains(s.name.as_str())).filter_map(|s| s.backend.as_deref()).collect();
    match backends.len() {
        1 => Ok(backends.into_iter().next().unwrap_or_default().to_string()),
        0 => Err("no backend chosen: pass --backend (slurm, htcondor, pegasus, pegasus-dax, nextflow) or set `backend` in the site".into()),
        _ => Err(format!(
            "the campaign's sites use several backends ({}); pass --backend",
            backends.into_iter().collect::<Vec<_>>().join(", ")
        )),
    }
}

/// `bpsc compile FILE --backend B -o DIR`.
pub fn compile_backend(fs: &dyn Fs, a: &CompileArgs, backend: Option<&str>, outdir: &Path, force: bool, err: &mut dyn Write) -> u8 {
    compile_backend_ui(fs, a, backend, outdir, force, &Ui::default(), &mut std::io::sink(), err)
}

/// `bpsc compile FILE --backend B -o DIR`; with `--format json` the result (submit
/// directory, counts, files, submit command) on `out`.
#[allow(clippy::too_many_arguments)]
pub fn compile_backend_ui(
    fs: &dyn Fs,
    a: &CompileArgs,
    backend: Option<&str>,
    outdir: &Path,
    force: bool,
    ui: &Ui,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    let (ir, _c) = match lower_file_ui(fs, a, ui, err) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let backend = match choose_backend(&ir, backend) {
        Ok(b) => b,
        Err(e) => {
            ui.error(err, e);
            return EXIT_USAGE;
        }
    };
    let od = match crate::outdir::OutDir::create(outdir, force) {
        Ok(o) => o,
        Err(e) => {
            ui.error(err, e);
            return EXIT_USAGE;
        }
    };
    let t0 = std::time::Instant::now();
    let written = match crate::backend::write(&backend, &ir, od.path()) {
        Ok(w) => w,
        Err(e) => {
            match backend_diagnostic(&backend, &e) {
                Some(d) => ui.diagnostics(&SourceMap::new(), &[d], err),
                None => ui.error(err, format!("{backend}: {e}")),
            }
            return if e.kind() == std::io::ErrorKind::InvalidInput { EXIT_ERRORS } else { EXIT_USAGE };
        }
    };
    // What `bpsc restart` needs to compile the campaign again, and the notify settings
    // `bpsc status --watch` fires.
    if let Err(e) = crate::restart::record_compile(od.path(), a, &backend, &ir) {
        ui.error(err, format!("bpsc.json: {e}"));
        return EXIT_USAGE;
    }
    match od.commit() {
        Ok(p) => {
            ui.detail(err, format!("wrote {} files in {:.1} ms", written.files.len(), t0.elapsed().as_secs_f64() * 1e3));
            if ui.json {
                let v = serde_json::json!({
                    "bpsc_compile": 1,
                    "campaign": ir.campaign,
                    "backend": backend,
                    "submit_dir": absolute(&p),
                    "counts": counts_json(&ir),
                    "files": written.files,
                    "submit_command": if written.submit_command.is_empty() { serde_json::Value::Null } else { written.submit_command.clone().into() },
                });
                let _ = writeln!(out, "{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            }
            ui.info(
                err,
                format!("wrote {} for {backend}: {} jobs, {} edges, {} files", p.display(), ir.jobs.len(), ir.edges.len(), written.files.len()),
            );
            if !written.submit_command.is_empty() {
                ui.info(err, format!("submit with: cd {} && {}", p.display(), written.submit_command));
            }
            EXIT_OK
        }
        Err(e) => {
            ui.error(err, e);
            EXIT_USAGE
        }
    }
}

/// Peak resident set size of this process so far, in KiB (Linux `VmHWM`).
pub fn peak_rss_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// `bpsc compile FILE --emit summary`: check and lower, print counts and timings.
pub fn compile_summary(fs: &dyn Fs, a: &CompileArgs, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    compile_summary_ui(fs, a, &Ui { json: true, ..Ui::default() }, out, err)
}

/// `bpsc compile FILE --emit summary`: JSON (`ui.json`, the default for a summary) or a few
/// lines of text.
pub fn compile_summary_ui(fs: &dyn Fs, a: &CompileArgs, ui: &Ui, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let t0 = std::time::Instant::now();
    let c = match check_clean(fs, &a.file, &a.sets, ui, err) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let t_check = t0.elapsed();
    let t1 = std::time::Instant::now();
    let opts = crate::lower::LowerOptions {
        campaign: a.campaign.clone(),
        steps: a.steps.clone(),
        coverage_warn: a.coverage_warn.unwrap_or(usize::MAX),
    };
    let l = crate::lower::lower(&c, &opts);
    let t_lower = t1.elapsed();
    let Some(ir) = l.ir else {
        ui.diagnostics(&c.program.map, &l.diags, err);
        return EXIT_ERRORS;
    };
    let header = crate::lower::emit::header_json(&ir);
    if !ui.json {
        let _ = writeln!(out, "campaign {}: {} data IDs", ir.campaign, ir.coverage_size);
        let _ = writeln!(out, "{} jobs ({} compute), {} edges", ir.jobs.len(), ir.compute_jobs(), ir.edges.len());
        for s in &ir.steps {
            let _ = writeln!(out, "  {:<24} {} quanta", s.name, s.quanta.len());
        }
        let _ = writeln!(out, "check {:.3} s, lower {:.3} s, peak RSS {} KiB", t_check.as_secs_f64(), t_lower.as_secs_f64(), peak_rss_kib().unwrap_or(0));
        return EXIT_OK;
    }
    let v = serde_json::json!({
        "campaign": ir.campaign,
        "coverage_size": ir.coverage_size,
        "counts": header["counts"],
        "steps": ir.steps.iter().map(|s| serde_json::json!({"name": s.name, "quanta": s.quanta.len()})).collect::<Vec<_>>(),
        "check_seconds": t_check.as_secs_f64(),
        "lower_seconds": t_lower.as_secs_f64(),
        "peak_rss_kib": peak_rss_kib(),
    });
    let _ = writeln!(out, "{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    EXIT_OK
}

/// A backend error whose message starts with a diagnostic code (`E801: ...`) as a diagnostic.
pub fn backend_diagnostic(backend: &str, e: &std::io::Error) -> Option<Diagnostic> {
    let msg = e.to_string();
    let (code, rest) = msg.split_once(": ")?;
    let info = codes::lookup(code)?;
    let mut d = Diagnostic::new(info.code, format!("{backend}: {rest}"));
    if info.code == "E801" {
        d = d.note(format!(
            "the {backend} backend cannot express this setting; `bpsc explain E801` and backends/{}/README.md list the alternatives",
            backend.trim_end_matches("-dax")
        ));
    }
    Some(d)
}

/// `bpsc fmt [--check] FILE...`: format files in place (`-` reads standard input and writes
/// standard output).  With `check`, write nothing and list the files that would change.
/// Exit 0 when everything is (or now is) formatted; 1 when `check` found a file to change
/// or a file has syntax errors (such a file is never touched); 2 when a file cannot be read
/// or written.
pub fn fmt_files(files: &[PathBuf], check: bool, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    fmt_files_ui(files, check, &Ui::default(), out, err)
}

/// Replace `path` by `bytes` atomically: a uniquely named temporary file in the same
/// directory (`tempfile`), the original's permissions, then a rename over it.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut tmp = tempfile::Builder::new().prefix(&format!(".{name}.")).suffix(".bpsc-fmt").tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    if let Ok(meta) = std::fs::metadata(path) {
        let _ = std::fs::set_permissions(tmp.path(), meta.permissions());
    }
    tmp.persist(path).map(|_| ()).map_err(|e| e.error)
}

/// [`fmt_files`] with `--quiet` (no `formatted FILE` lines) and `--verbose`.
pub fn fmt_files_ui(files: &[PathBuf], check: bool, ui: &Ui, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let quiet = ui.quiet;
    let mut code = EXIT_OK;
    for path in files {
        let stdin = path.as_os_str() == "-";
        let text = if stdin {
            let mut s = String::new();
            match std::io::Read::read_to_string(&mut std::io::stdin(), &mut s) {
                Ok(_) => s,
                Err(e) => {
                    let _ = writeln!(err, "error: reading standard input: {e}");
                    code = EXIT_USAGE;
                    continue;
                }
            }
        } else {
            match std::fs::read(path).map(String::from_utf8) {
                Ok(Ok(s)) => s,
                Ok(Err(_)) => {
                    let _ = writeln!(err, "error: {}: not UTF-8; not formatted", path.display());
                    code = code.max(EXIT_ERRORS);
                    continue;
                }
                Err(e) => {
                    let _ = writeln!(err, "error: cannot read {}: {e}", path.display());
                    code = EXIT_USAGE;
                    continue;
                }
            }
        };
        let formatted = match crate::fmt::format_source(&text) {
            Ok(f) => f,
            Err(crate::fmt::FmtError::Syntax(diags)) => {
                let mut map = SourceMap::new();
                let id = map.add(path.clone(), std::sync::Arc::from(text.as_str()));
                let diags: Vec<Diagnostic> = diags
                    .into_iter()
                    .map(|mut d| {
                        if let Some(p) = &mut d.primary {
                            p.loc.file = id;
                        }
                        d.secondary.iter_mut().for_each(|l| l.loc.file = id);
                        d
                    })
                    .collect();
                let _ = err.write_all(render_human_cli(&map, &diags, ui.color_for(ui.err_tty)).as_bytes());
                let _ = writeln!(err, "error: {}: syntax errors; not formatted", path.display());
                code = code.max(EXIT_ERRORS);
                if stdin && !check {
                    let _ = out.write_all(text.as_bytes());
                }
                continue;
            }
            Err(e) => {
                let _ = writeln!(err, "error: {}: {e}", path.display());
                code = code.max(EXIT_ERRORS);
                if stdin && !check {
                    let _ = out.write_all(text.as_bytes());
                }
                continue;
            }
        };
        if check {
            if formatted != text {
                let _ = writeln!(out, "{}", path.display());
                code = code.max(EXIT_ERRORS);
            }
            continue;
        }
        if stdin {
            let _ = out.write_all(formatted.as_bytes());
            continue;
        }
        if formatted == text {
            continue;
        }
        // Write beside the file, under a name of its own (two runs never share one), and
        // rename over it: a crash never leaves half a file.
        let res = write_atomically(path, formatted.as_bytes());
        match res {
            Ok(()) => {
                if !quiet {
                    let _ = writeln!(err, "formatted {}", path.display());
                }
            }
            Err(e) => {
                let _ = writeln!(err, "error: cannot write {}: {e}", path.display());
                code = EXIT_USAGE;
            }
        }
    }
    code
}
