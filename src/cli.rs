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
use crate::source::{FileId, SourceMap};

pub use crate::pipeline::{lower_file, lower_file_ui, CompileArgs};
pub use crate::submitdir::exit::{ERRORS as EXIT_ERRORS, OK as EXIT_OK, USAGE as EXIT_USAGE};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutFormat {
    Human {
        color: bool,
    },
    Json,
    Sarif,
    Junit,
    /// GitHub Actions annotations (`::error file=...::message`).
    Github,
}

pub use crate::ui::{no_color_env, render_human_cli, ColorChoice, Ui};

pub use crate::pipeline::{check_clean, set_step_errors};

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

/// With `--backend B`: lower a file that checks clean and add what lowering and the
/// engine's capability check report (W801/E801...), so CI learns before compiling that the
/// engine would ignore or refuse a setting.
fn backend_diagnostics(c: &mut Checked, backend: &str) {
    if c.has_errors() || c.model.campaigns.is_empty() {
        return;
    }
    let Some(engine) = crate::backend::find(backend) else {
        c.diags.push(crate::backend::unknown(backend));
        return;
    };
    let l = crate::lower::lower(c, &crate::lower::LowerOptions::default());
    c.diags.extend(l.diags);
    if let Some(ir) = l.ir {
        c.diags.extend(crate::backend::caps::check(engine, &ir));
    }
}

/// Check each file; render all diagnostics together.
pub fn check_files(fs: &dyn Fs, files: &[PathBuf], opts: &Options, fmt: OutFormat, deny_warnings: bool, out: &mut dyn Write) -> u8 {
    check_paths(fs, files, opts, None, fmt, deny_warnings, &Ui::default(), out, &mut std::io::stderr())
}

/// `bpsc check PATH...`: files, directories (every `*.bps` under them that no other file
/// found there includes) and `-` (standard input, named `<stdin>`; includes and tables are
/// relative to the working directory).  With `backend`, each campaign is lowered too and
/// what that engine cannot express is reported (W801, E801).  The report goes to `out`;
/// problems with the arguments themselves to `err`.
#[allow(clippy::too_many_arguments)]
pub fn check_paths(
    fs: &dyn Fs,
    inputs: &[PathBuf],
    opts: &Options,
    backend: Option<&str>,
    fmt: OutFormat,
    deny_warnings: bool,
    ui: &Ui,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
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
        let mut c = check::check(fs, &f, opts);
        if let Some(b) = backend {
            backend_diagnostics(&mut c, b);
        }
        checks.push((f, walked, c));
    }
    // A file found in a directory that another file includes is checked through that file.
    let included: std::collections::BTreeSet<PathBuf> = checks
        .iter()
        .flat_map(|(_, _, c)| {
            c.program.modules.iter().filter(|m| m.file != c.program.root).map(|m| fs.identity(&c.program.map.get(m.file).path))
        })
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
        let set_errors = set_step_errors(&c, opts.allow_unknown_steps);
        usage |= !opts.allow_unknown_steps && !set_errors.is_empty();
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
        ui.detail(
            err,
            format!("checked {n_checked} file{} in {:.1} ms", if n_checked == 1 { "" } else { "s" }, t0.elapsed().as_secs_f64() * 1e3),
        );
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
    let c = match check_clean(fs, file, opts, ui, err) {
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
        if let Some(code) = explain_config(&c, camp, spec, json, out) {
            return code;
        }
        let Some((step_name, key)) = spec.rsplit_once('.') else {
            ui.error(err, "--explain takes STEP.KEY, e.g. coadd.memory");
            return EXIT_USAGE;
        };
        let Some((p, s)) = steps.iter().find(|(p, s)| s.name == step_name || format!("{}.{}", p.name, s.name) == step_name) else {
            ui.error(
                err,
                format!("no step `{step_name}`; steps: {}", steps.iter().map(|(_, s)| s.name.as_str()).collect::<Vec<_>>().join(", ")),
            );
            return EXIT_USAGE;
        };
        let st = resolve::resolve_step(&c.model, camp, p, s, &c.sets);
        let r = if let Some(var) = key.strip_prefix("env.") { st.env.get(var) } else { st.resolved(key) };
        let merged = st.merged.get(check::keys::canonical(key)).map(|v| v.as_slice()).unwrap_or(&[]);
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
            let merged: Vec<serde_json::Value> = merged
                .iter()
                .map(|(v, o)| serde_json::json!({"value": v, "display": v.to_string(), "origin": origin_json(map, o)}))
                .collect();
            let mut v = serde_json::json!({"step": format!("{}.{}", p.name, s.name), "key": key, "value": r.value, "display": r.value.to_string(), "origin": origin_json(map, &r.origin), "overridden": chain});
            if !merged.is_empty() {
                v["merged"] = serde_json::Value::Array(merged);
            }
            let _ = writeln!(out, "{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            return EXIT_OK;
        }
        let _ = writeln!(out, "{}.{}.{key} = {}", p.name, s.name, r.value);
        if !merged.is_empty() {
            // A merged list: the union of every scope's own list.
            for (v, o) in merged.iter().rev() {
                let _ = writeln!(out, "  {:<14} {:<40} {}  (merged)", v.to_string(), o.label, loc_text(map, o.loc));
            }
            return EXIT_OK;
        }
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

/// `bpsc config --explain config.KEY` / `PIPELINE.config.KEY` (language 1.1): a science
/// config parameter with its override chain (`extends`, then `--set`).  `None` when `spec`
/// names no config parameter.
fn explain_config(c: &Checked, camp: Option<&check::model::Campaign>, spec: &str, json: bool, out: &mut dyn Write) -> Option<u8> {
    let (pipe, key) = match spec.strip_prefix("config.") {
        Some(k) => (None, k),
        None => {
            let (p, rest) = spec.split_once('.')?;
            (Some(p), rest.strip_prefix("config.")?)
        }
    };
    let model = &c.model;
    let pipes: Vec<(&check::model::Pipeline, Option<&str>)> = match camp {
        Some(cp) => cp
            .uses
            .iter()
            .filter_map(|u| model.pipeline(&u.pipeline.name).map(|p| (p, u.config.as_ref().map(|x| x.name.as_str()))))
            .collect(),
        None => model.pipelines.iter().map(|p| (p, None)).collect(),
    };
    let pipes: Vec<_> = pipes.into_iter().filter(|(p, _)| pipe.is_none_or(|n| n == p.name)).collect();
    if pipes.is_empty() {
        let _ = writeln!(out, "error: no pipeline `{}` in this campaign", pipe.unwrap_or(""));
        return Some(EXIT_USAGE);
    }
    let map = &c.program.map;
    let mut list = Vec::new();
    for (p, chosen) in pipes {
        let r = resolve::resolve_config(p, chosen, &c.config_sets);
        let Some(param) = r.params.get(key) else {
            if !json {
                let _ = writeln!(out, "{}.config.{key} is not set (config {})", p.name, r.name.as_deref().unwrap_or("none chosen"));
            }
            continue;
        };
        if json {
            let chain: Vec<serde_json::Value> =
                param.overridden.iter().map(|(v, o)| serde_json::json!({"value": v.to_string(), "origin": origin_json(map, o)})).collect();
            list.push(serde_json::json!({"pipeline": p.name, "config": r.name, "key": key, "value": param.value.to_string(), "origin": origin_json(map, &param.origin), "overridden": chain}));
            continue;
        }
        let _ = writeln!(out, "{}.config.{key} = {}", p.name, param.value);
        let _ = writeln!(out, "  {:<14} {:<40} {}", param.value.to_string(), param.origin.label, loc_text(map, param.origin.loc));
        for (v, o) in param.overridden.iter().rev() {
            let _ = writeln!(out, "  {:<14} {:<40} {}  (overridden)", v.to_string(), o.label, loc_text(map, o.loc));
        }
    }
    if json {
        let _ = writeln!(out, "{}", serde_json::to_string_pretty(&serde_json::Value::Array(list)).unwrap_or_default());
    }
    Some(EXIT_OK)
}

/// Run the example of a code through the checker (and lowering, when it checks clean) and
/// render what bpsc says.
pub fn explain_example(info: &codes::CodeInfo) -> (Vec<Diagnostic>, String) {
    // E9xx: a compiled example operated on with a scripted engine (see crate::operate).
    if let Some(x) = crate::operate::explain_example(info) {
        return x;
    }
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
    if info.example_args.contains(&"--internal-error") {
        // What a broken engine template gives: the one way bpsc reports its own faults.
        let set = crate::backend::templates::TemplateSet { templates: &[("broken", "{% if %}")], filters: &[] };
        let diags: Vec<Diagnostic> = crate::backend::templates::Templates::new(&set).err().into_iter().collect();
        let text = crate::diag::render::render_human(&SourceMap::new(), &diags, false);
        return (diags, text);
    }
    // `--env` (an empty submitting environment) or `--env=NAME=VALUE`: check `pass_env`.
    let env_args: Vec<&str> = info.example_args.iter().filter_map(|a| a.strip_prefix("--env")).collect();
    let env = (!env_args.is_empty()).then(|| {
        env_args.iter().filter_map(|a| a.strip_prefix('=')?.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect()
    });
    let opts = Options {
        sets: info.example_args.iter().filter_map(|a| a.strip_prefix("--set=")).map(|s| s.to_string()).collect(),
        env,
        allow_unknown_steps: info.example_args.contains(&"--allow-unknown-steps"),
        keep_tables: false,
    };
    let c = check::check(&fs, Path::new("example.bps"), &opts);
    let mut diags = c.diags.items.clone();
    if !c.has_errors() && !c.model.campaigns.is_empty() {
        let l = crate::lower::lower(&c, &crate::lower::LowerOptions { coverage_warn: 1_000_000, ..Default::default() });
        diags.extend(l.diags);
        if let (Some(ir), Some(b)) = (l.ir, info.example_args.iter().find_map(|a| a.strip_prefix("--backend="))) {
            match crate::backend::find(b) {
                None => diags.push(crate::backend::unknown(b)),
                Some(engine) => {
                    let caps = crate::backend::caps::check(engine, &ir);
                    let refused = caps.iter().any(|d| d.is_error());
                    diags.extend(caps);
                    if !refused {
                        // Into memory, or into the path the example names (E408).
                        let r = match info.example_args.iter().find_map(|a| a.strip_prefix("--out=")) {
                            Some(out) => engine.emit(&ir, &crate::backend::DirOutput::new(Path::new(out))).map(|_| ()),
                            None => engine.emit(&ir, &crate::backend::MemOutput::new()).map(|_| ()),
                        };
                        diags.extend(r.err());
                    }
                }
            }
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
        let hint = crate::diag::did_you_mean(&code.to_ascii_uppercase(), known.iter().copied())
            .map(|s| format!(" (did you mean {s}?)"))
            .unwrap_or_default();
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
    // The command-line parts of the example: its `--set`s, and an environment for `pass_env`.
    if !info.example_args.iter().any(|a| a.starts_with("--operate=")) {
        let sets: String = info.example_args.iter().filter_map(|a| a.strip_prefix("--set=")).map(|a| format!(" --set '{a}'")).collect();
        let env = if info.example_args.iter().any(|a| a.starts_with("--env")) { " (in an environment without its variables)" } else { "" };
        let _ = writeln!(out, "\nbpsc check example.bps{sets}{env} says:\n");
    } else {
        let _ = writeln!(out);
    }
    let _ = writeln!(out, "{}", text.trim_end());
    let _ = Severity::Error;
    let _ = Value::Int(0);
    EXIT_OK
}

/// Counts of an IR, for the JSON results.
fn counts_json(ir: &crate::ir::Ir) -> serde_json::Value {
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
        crate::ir::jsonl::write_ir_jsonl(&ir, &mut w)?;
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
    let r = if job_level {
        crate::ir::jobgraph::write_job_graph(&ir, mermaid, out)
    } else {
        crate::ir::graphviz::write_graph(&ir, mermaid, out)
    };
    match r {
        Ok(()) => EXIT_OK,
        Err(e) => {
            ui.error(err, e);
            EXIT_USAGE
        }
    }
}

/// `bpsc compile FILE --backend B -o DIR`.
pub fn compile_backend(fs: &dyn Fs, a: &CompileArgs, backend: Option<&str>, outdir: &Path, force: bool, err: &mut dyn Write) -> u8 {
    compile_backend_ui(fs, a, backend, outdir, force, &Ui::default(), &mut std::io::sink(), err)
}

/// `bpsc compile FILE --backend B -o DIR`; with `--format json` the result (submit
/// directory, counts per engine job kind, files, submit command) on `out`.
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
    let progress = crate::pipeline::Progress::start(format!("checking and lowering {}", a.file.display()).as_str());
    let (ir, c) = match crate::pipeline::lower_file_ui(fs, a, ui, err) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let map = &c.program.map;
    let engine = match crate::pipeline::choose_engine(&ir, backend) {
        Ok(e) => e,
        Err(d) => {
            ui.diagnostics(map, &[d], err);
            return EXIT_USAGE;
        }
    };
    let caps = crate::backend::caps::check(engine, &ir);
    ui.diagnostics(map, &caps, err);
    if caps.iter().any(|d| d.is_error()) {
        return EXIT_ERRORS;
    }
    progress.phase(format!("writing {} jobs for {}", crate::lower::group_digits(ir.jobs.len()), engine.name()));
    let t0 = std::time::Instant::now();
    let written = crate::pipeline::write_submit_dir(engine, &ir, outdir, force, |e| {
        let mut m = crate::pipeline::meta_of(&ir, engine, e);
        m.compile = Some(crate::pipeline::compile_meta(a, engine));
        m
    });
    drop(progress);
    match written {
        Ok((dir, emitted, files)) => {
            ui.detail(err, format!("wrote {} files in {:.1} ms", files.len() + 1, t0.elapsed().as_secs_f64() * 1e3));
            let jobs: u64 = emitted.engine_jobs.iter().map(|(_, n)| n).sum();
            if ui.json {
                let by_kind: serde_json::Map<String, serde_json::Value> =
                    emitted.engine_jobs.iter().map(|(k, n)| (k.to_string(), (*n).into())).collect();
                let mut counts = counts_json(&ir);
                counts["engine_jobs"] = jobs.into();
                counts["engine_jobs_by_kind"] = by_kind.into();
                counts["engine_edges"] = emitted.engine_edges.into();
                let v = serde_json::json!({
                    "bpsc_compile": 1,
                    "campaign": ir.campaign,
                    "backend": engine.name(),
                    "submit_dir": absolute(&dir),
                    "counts": counts,
                    "files": files,
                    "submit_command": if emitted.submit_command.is_empty() { serde_json::Value::Null } else { emitted.submit_command.clone().into() },
                });
                let _ = writeln!(out, "{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            }
            let kinds: Vec<String> = emitted.engine_jobs.iter().map(|(k, n)| format!("{n} {k}")).collect();
            ui.info(
                err,
                format!(
                    "wrote {} for {}: {jobs} jobs ({}), {} edges, {} files",
                    dir.display(),
                    engine.name(),
                    kinds.join(", "),
                    emitted.engine_edges,
                    files.len() + 1
                ),
            );
            if !emitted.submit_command.is_empty() {
                ui.info(err, format!("submit with: cd {} && {}", dir.display(), emitted.submit_command));
            }
            EXIT_OK
        }
        Err(crate::pipeline::WriteError::Usage(e)) => {
            ui.error(err, e);
            EXIT_USAGE
        }
        Err(crate::pipeline::WriteError::Diag(d)) => {
            let code = if d.code == "E409" { EXIT_USAGE } else { EXIT_ERRORS };
            ui.diagnostics(map, &[d], err);
            code
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
    let c = match check_clean(fs, &a.file, &a.check_options(), ui, err) {
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
    let header = crate::ir::jsonl::header_json(&ir);
    if !ui.json {
        let _ = writeln!(out, "campaign {}: {} data IDs", ir.campaign, ir.coverage_size);
        let _ = writeln!(out, "{} jobs ({} compute), {} edges", ir.jobs.len(), ir.compute_jobs(), ir.edges.len());
        for s in &ir.steps {
            let _ = writeln!(out, "  {:<24} {} quanta", s.name, s.quanta.len());
        }
        let _ = writeln!(
            out,
            "check {:.3} s, lower {:.3} s, peak RSS {} KiB",
            t_check.as_secs_f64(),
            t_lower.as_secs_f64(),
            peak_rss_kib().unwrap_or(0)
        );
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

/// `bpsc show SUBMIT JOB`: one job of a submit directory, as the wrapper will run it: its
/// fully rendered line (commands, paths, transfers) and its resolved settings.  JOB is a job
/// id, or GROUP:INDEX as engines name it.
pub fn show(submit: &Path, job: &str, json: bool, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let t = match crate::submitdir::tasks::Tables::open(submit) {
        Ok(t) => t,
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            return EXIT_USAGE;
        }
    };
    let located = match job.rsplit_once(':').and_then(|(g, k)| Some((g, k.parse::<u64>().ok()?))) {
        Some((g, k)) if t.group(g).is_ok() => Ok((g.to_string(), k)),
        _ => t.locate(job),
    };
    let (group, index) = match located {
        Ok(x) => x,
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            return EXIT_USAGE;
        }
    };
    let line = match t.line(&group, index) {
        Ok(l) => l,
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            return EXIT_USAGE;
        }
    };
    let mut v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
    let settings = t.settings(&group, index).ok().flatten();
    v["group"] = serde_json::json!(group);
    v["index"] = serde_json::json!(index);
    v["settings"] = serde_json::to_value(settings).unwrap_or_default();
    if json {
        let _ = writeln!(out, "{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return EXIT_OK;
    }
    let _ =
        writeln!(out, "job {}  ({}; task group {group}, index {index})", v["id"].as_str().unwrap_or(""), v["kind"].as_str().unwrap_or(""));
    if let Some(s) = settings {
        let r = &s.resources;
        let _ = writeln!(
            out,
            "  site {}  memory {} MiB  cpus {}  disk {} MiB  walltime {} s  retries {}  memory growth {}  on_failure {}",
            s.site.as_deref().unwrap_or("-"),
            r.memory >> 20,
            r.cpus,
            r.disk >> 20,
            r.walltime,
            r.retries,
            r.memory_growth,
            r.on_failure.as_str()
        );
        for (k, val) in [("partition", &s.partition), ("account", &s.account), ("qos", &s.qos)] {
            if let Some(val) = val {
                let _ = writeln!(out, "  {k} {val}");
            }
        }
        if !s.hosts.is_empty() || !s.avoid_hosts.is_empty() {
            let _ = writeln!(out, "  hosts [{}]  avoid_hosts [{}]", s.hosts.join(", "), s.avoid_hosts.join(", "));
        }
        if let Some(sw) = &s.software {
            let _ = writeln!(out, "  software {}", sw.label());
        }
        for (k, val) in &s.env {
            let _ = writeln!(out, "  env {k}={val}");
        }
    }
    if let Some(ps) = v["parents"].as_array() {
        let _ = writeln!(out, "  parents: {}", ps.iter().filter_map(|p| p.as_str()).collect::<Vec<_>>().join(" "));
    }
    for q in v["quanta"].as_array().into_iter().flatten() {
        let _ = writeln!(out, "  quantum {} {}", q["step"].as_str().unwrap_or(""), q["data_id"]);
        let _ = writeln!(out, "    command: {}", q["command"].as_str().unwrap_or(""));
        for o in q["outputs"].as_array().into_iter().flatten() {
            let _ = writeln!(out, "    output {}: {}", o["dataset"].as_str().unwrap_or(""), o["path"].as_str().unwrap_or(""));
        }
        for f in q["fetch"].as_array().into_iter().flatten() {
            let _ = writeln!(
                out,
                "    fetch {}: {} -> {}",
                f["dataset"].as_str().unwrap_or(""),
                f["from"].as_str().unwrap_or(""),
                f["to"].as_str().unwrap_or("")
            );
        }
    }
    for key in ["transfers", "remove"] {
        for x in v[key].as_array().into_iter().flatten() {
            match x.as_str() {
                Some(p) => {
                    let _ = writeln!(out, "  remove {p}");
                }
                None => {
                    let _ = writeln!(
                        out,
                        "  transfer {}: {} -> {}",
                        x["dataset"].as_str().unwrap_or(""),
                        x["from"].as_str().unwrap_or(""),
                        x["to"].as_str().unwrap_or("")
                    );
                }
            }
        }
    }
    EXIT_OK
}
