//! The command line, end to end through the real binary: exit statuses, output formats,
//! `--deny warnings`, `config --explain`, atomic output directories, and hostile data IDs
//! that must neither escape a path nor execute.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bpsc(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bpsc")).args(args).current_dir(cwd).env("NO_COLOR", "1").output().expect("run bpsc")
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("bpsc-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[test]
fn exit_status_is_0_clean_1_errors_2_usage() {
    let r = repo();
    let o = bpsc(&["check", "examples/drp/drp.bps", "examples/afterburner/afterburner.bps"], &r);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = bpsc(&["check", "tests/cases/e201_undefined_step_in_after/main.bps"], &r);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("E201"));
    let o = bpsc(&["check", "no/such/file.bps"], &r);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("cannot read"), "{}", text(&o));
    let o = bpsc(&["check"], &r);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn deny_warnings_turns_warnings_into_failures() {
    let d = tmp("deny");
    std::fs::write(
        d.join("c.bps"),
        "bps 1\ndimension visit = 1..3\ndimension band = [\"g\"]\npipeline p { step a over (visit) { run = \"true\" } }\ncampaign c {\n  use p\n  coverage = visit\n}\n",
    )
    .unwrap();
    let o = bpsc(&["check", "c.bps"], &d);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("W201"));
    let o = bpsc(&["check", "c.bps", "--deny", "warnings"], &d);
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn json_sarif_and_junit_outputs_are_machine_readable() {
    let r = repo();
    let case = "tests/cases/e103_size_with_space/main.bps";
    let o = bpsc(&["check", case, "--format", "json"], &r);
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(!lines.is_empty());
    let d = &lines[0];
    assert_eq!(d["code"], "E103");
    assert!(d["file"].as_str().unwrap().ends_with("main.bps"));
    for k in ["line", "column", "column_utf16"] {
        assert!(d["start"][k].as_u64().unwrap() >= 1, "{d}");
    }
    assert!(d["range"]["end"].as_u64() > d["range"]["start"].as_u64());
    let o = bpsc(&["check", case, "examples/drp/drp.bps", "--format", "sarif"], &r);
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(s["version"], "2.1.0");
    assert_eq!(s["runs"][0]["results"][0]["ruleId"], "E103");
    let o = bpsc(&["check", case, "examples/drp/drp.bps", "--format", "junit"], &r);
    let x = String::from_utf8_lossy(&o.stdout);
    assert!(x.contains("<testsuites") && x.contains("tests=\"2\"") && x.contains("failures=\"1\""), "{x}");
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn config_resolves_through_the_scope_chain_and_explains_it() {
    let r = repo();
    let o = bpsc(&["config", "examples/drp/drp.bps", "--explain", "assemble_coadd.memory"], &r);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    let lines: Vec<&str> = t.lines().collect();
    assert!(lines[0].ends_with("= 24GiB"), "{t}");
    assert!(lines[1].contains("campaign override of assemble_coadd") && lines[1].contains("drp.bps:"), "{t}");
    assert!(t.contains("(overridden)") && t.contains("built-in"), "{t}");
    // --set wins over everything and is reported as such.
    let o = bpsc(&["config", "examples/drp/drp.bps", "--explain", "assemble_coadd.memory", "--set", "assemble_coadd.memory=32GiB"], &r);
    let t = text(&o);
    assert!(t.lines().next().unwrap().ends_with("= 32GiB") && t.contains("--set assemble_coadd.memory=32GiB"), "{t}");
    let o = bpsc(&["config", "examples/drp/drp.bps", "--format", "json"], &r);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let steps = v["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 10);
    let coadd = steps.iter().find(|s| s["step"] == "assemble_coadd").unwrap();
    assert_eq!(coadd["settings"]["memory"]["value"], 24u64 << 30);
    assert_eq!(coadd["settings"]["memory"]["origin"]["scope"], "campaign step override");
}

#[test]
fn compile_writes_atomically_and_never_overwrites_without_force() {
    let d = tmp("atomic");
    let out = d.join("submit");
    let file = repo().join("examples/afterburner/afterburner.bps");
    let f = file.to_str().unwrap();
    let o = bpsc(&["compile", f, "--emit", "ir", "-o", out.to_str().unwrap()], &d);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let first = std::fs::read(out.join("ir.jsonl")).unwrap();
    std::fs::write(out.join("operator-notes.txt"), "keep me").unwrap();
    let o = bpsc(&["compile", f, "--emit", "ir", "-o", out.to_str().unwrap()], &d);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("--force"), "{}", text(&o));
    assert!(out.join("operator-notes.txt").exists(), "existing directory touched without --force");
    let o = bpsc(&["compile", f, "--emit", "ir", "-o", out.to_str().unwrap(), "--force"], &d);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(std::fs::read(out.join("ir.jsonl")).unwrap(), first, "same campaign, same bytes");
    assert!(!out.join("operator-notes.txt").exists());
    // A failing compile leaves nothing behind: no target, no temporary directory.
    let bad = d.join("bad");
    let o = bpsc(
        &[
            "compile",
            repo().join("tests/cases/e201_undefined_step_in_after/main.bps").to_str().unwrap(),
            "--emit",
            "ir",
            "-o",
            bad.to_str().unwrap(),
        ],
        &d,
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(!bad.exists());
    let leftovers: Vec<_> =
        std::fs::read_dir(&d).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().contains("bpsc-tmp")).collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

const HOSTILE: &[&str] = &["../../etc", "$(rm -rf ~)", "it's", "say \"hi\"", "a b", "`id`", "x;touch PWNED", "/abs/path", "-rf", ""];

/// A campaign whose data IDs are hostile strings, run through the generated commands.
#[test]
fn hostile_data_ids_neither_escape_nor_execute() {
    let d = tmp("hostile");
    let mut csv = String::from("visit,label\n");
    for (i, h) in HOSTILE.iter().enumerate().filter(|(_, h)| !h.is_empty()) {
        csv.push_str(&format!("{i},\"{}\"\n", h.replace('"', "\"\"")));
    }
    std::fs::write(d.join("labels.csv"), csv).unwrap();
    std::fs::write(
        d.join("c.bps"),
        "bps 1\nrelation lab(visit, label) = table(\"labels.csv\")\ndataset out(visit, label) { persist = scratch }\npipeline p {\n  step a over (visit, label) {\n    outputs = [out]\n    run = \"printf '%s\\\\n' {label} > {outputs}; printf 'q=%s\\\\n' \\\"{label}\\\" >> {outputs}; echo '{label}' >> {outputs}\"\n  }\n}\ncampaign c {\n  use p\n  coverage = lab\n}\n",
    )
    .unwrap();
    let o = bpsc(&["compile", "c.bps", "--emit", "ir", "-o", "ir"], &d);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let ir = std::fs::read_to_string(d.join("ir/ir.jsonl")).unwrap();
    let scratch = d.join("scratch");
    let mut n = 0;
    for line in ir.lines().skip(1) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        if v["kind"] != "compute" {
            continue;
        }
        let id = v["id"].as_str().unwrap();
        assert!(id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'), "{id}");
        let q = &v["quanta"][0];
        let label = q["data_id"]["label"].as_str().unwrap().to_string();
        let path = q["outputs"][0]["path"].as_str().unwrap().replace("${BPSC_SCRATCH}", scratch.to_str().unwrap());
        assert!(!path[scratch.to_str().unwrap().len()..].contains(".."), "{path}");
        std::fs::create_dir_all(Path::new(&path).parent().unwrap()).unwrap();
        let st = Command::new("bash")
            .arg("-c")
            .arg(q["command"].as_str().unwrap())
            .env("BPSC_SCRATCH", &scratch)
            .current_dir(&d)
            .status()
            .unwrap();
        assert!(st.success(), "{}", q["command"]);
        let got = std::fs::read_to_string(&path).unwrap();
        assert_eq!(got, format!("{label}\nq={label}\n{label}\n"), "command {}", q["command"]);
        assert!(Path::new(&path).starts_with(&scratch));
        n += 1;
    }
    assert_eq!(n, HOSTILE.len() - 1);
    assert!(!d.join("PWNED").exists(), "a data ID executed");
}

/// A table with CR-only line endings (classic Mac, some spreadsheet exports) checks and
/// compiles alike: one CSV reader serves the checker and lowering.  A broken table is
/// reported the same way by both, with a diagnostic, never a Rust debug dump.
#[test]
fn cr_only_tables_check_and_compile_alike_and_errors_are_diagnostics() {
    let d = tmp("cr-table");
    std::fs::write(d.join("exposures.csv"), "visit,band\r903334,r\r903336,g\r").unwrap();
    std::fs::write(
        d.join("c.bps"),
        "bps 1\nrelation exposure(visit, band) = table(\"exposures.csv\")\npipeline p { step a over (visit, band) { run = \"echo {visit} {band}\" } }\ncampaign c {\n  use p\n  coverage = exposure\n}\n",
    )
    .unwrap();
    let o = bpsc(&["check", "c.bps"], &d);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = bpsc(&["compile", "c.bps", "--emit", "ir", "-o", "ir"], &d);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let ir = std::fs::read_to_string(d.join("ir/ir.jsonl")).unwrap();
    assert!(ir.contains("903334") && ir.contains("903336"), "{ir}");
    // A broken CR-only table: the same E406 from check and from compile.
    std::fs::write(d.join("exposures.csv"), "visit,band\r903334,r\r903336\r").unwrap();
    let check = bpsc(&["check", "c.bps"], &d);
    let compile = bpsc(&["compile", "c.bps", "--emit", "ir", "-o", "ir2"], &d);
    for o in [&check, &compile] {
        let t = text(o);
        assert_eq!(o.status.code(), Some(1), "{t}");
        assert!(t.contains("E406") && t.contains("row 3 has 1 fields, the header has 2"), "{t}");
        for debug in ["Some(", "CsvError", "kind:", "MissingColumn", "FieldCount {"] {
            assert!(!t.contains(debug), "Rust debug text `{debug}` reached the user:\n{t}");
        }
    }
}

fn bpsc_env(args: &[&str], cwd: &Path, env: &[(&str, &str)], stdin: Option<&str>) -> Output {
    use std::io::Write;
    let mut c = Command::new(env!("CARGO_BIN_EXE_bpsc"));
    c.args(args).current_dir(cwd).env_remove("NO_COLOR");
    for (k, v) in env {
        c.env(k, v);
    }
    c.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let mut child = c.spawn().expect("run bpsc");
    if let Some(mut si) = child.stdin.take() {
        let _ = si.write_all(stdin.unwrap_or("").as_bytes());
    }
    child.wait_with_output().expect("wait bpsc")
}

/// `--set STEP.KEY=VALUE` naming no step is the same usage error (exit 2, E201 pointing
/// into the argument, nothing on standard output) in every command that takes `--set`.
#[test]
fn set_of_an_unknown_step_is_an_error_in_every_command() {
    let r = repo();
    let f = "examples/drp/drp.bps";
    let d = tmp("set-unknown");
    let out = d.join("o");
    let out = out.to_str().unwrap();
    for args in [
        vec!["check", f],
        vec!["config", f],
        vec!["config", f, "--explain", "isr.memory"],
        vec!["graph", f],
        vec!["graph", f, "--level", "job"],
        vec!["compile", f, "--emit", "summary"],
        vec!["compile", f, "--emit", "ir", "-o", out],
        vec!["compile", f, "--backend", "slurm", "-o", out],
    ] {
        let mut a = args.clone();
        a.extend(["--set", "nope.memory=2GiB"]);
        let o = bpsc(&a, &r);
        let t = text(&o);
        assert_eq!(o.status.code(), Some(2), "{a:?}: {t}");
        assert!(t.contains("E201") && t.contains("no step named `nope`"), "{a:?}: {t}");
        if args[0] != "check" {
            assert!(o.stdout.is_empty(), "{a:?}: a result was printed: {}", String::from_utf8_lossy(&o.stdout));
        }
        assert!(!Path::new(out).exists(), "{a:?}: wrote an output directory");
        // A near miss gets a suggestion; a known step is fine.
        let mut a = args.clone();
        a.extend(["--set", "isrr.memory=2GiB"]);
        assert!(text(&bpsc(&a, &r)).contains("did you mean `isr`?"), "{a:?}");
    }
    let o = bpsc(&["config", f, "--set", "isr.memory=2GiB", "--explain", "isr.memory"], &r);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

/// Every `--format` is honoured or refused; results go to standard output, errors and
/// diagnostics to standard error (JSON Lines with `--format json`).
#[test]
fn formats_are_honoured_or_refused_and_errors_go_to_stderr() {
    let r = repo();
    let broken = "tests/cases/e201_undefined_step_in_after/main.bps";
    // config: human and json only.
    for f in ["sarif", "junit", "github"] {
        let o = bpsc(&["config", "examples/drp/drp.bps", "--format", f], &r);
        assert_eq!(o.status.code(), Some(2), "{f}");
        assert!(String::from_utf8_lossy(&o.stderr).contains("invalid value"), "{f}: {}", text(&o));
        assert!(o.stdout.is_empty());
    }
    // config --format json on a broken file: nothing on stdout, JSON Lines on stderr.
    let o = bpsc(&["config", broken, "--format", "json"], &r);
    assert_eq!(o.status.code(), Some(1));
    assert!(o.stdout.is_empty(), "{}", String::from_utf8_lossy(&o.stdout));
    let lines: Vec<serde_json::Value> =
        String::from_utf8_lossy(&o.stderr).lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect();
    assert_eq!(lines[0]["code"], "E201");
    // ... and in human form, the diagnostics on stderr too.
    let o = bpsc(&["config", broken], &r);
    assert_eq!(o.status.code(), Some(1));
    assert!(o.stdout.is_empty() && String::from_utf8_lossy(&o.stderr).contains("E201"));
    // A usage error of config: on stderr, as JSON with --format json.
    let o = bpsc(&["config", "examples/drp/drp.bps", "--explain", "nostep.memory", "--format", "json"], &r);
    assert_eq!(o.status.code(), Some(2));
    assert!(o.stdout.is_empty());
    let v: serde_json::Value = serde_json::from_slice(&o.stderr).unwrap();
    assert_eq!(v["severity"], "error");
    assert!(v["code"].is_null() && v["message"].as_str().unwrap().contains("no step `nostep`"), "{v}");
    // explain: the page on stdout, an unknown code on stderr.
    let o = bpsc(&["explain", "E999"], &r);
    assert_eq!(o.status.code(), Some(2));
    assert!(o.stdout.is_empty() && String::from_utf8_lossy(&o.stderr).contains("unknown code `E999`"));
    // graph: dot and mermaid only.
    let o = bpsc(&["graph", "examples/drp/drp.bps", "--format", "json"], &r);
    assert_eq!(o.status.code(), Some(2));
    // check: github annotations.
    let o = bpsc(&["check", broken, "--format", "github"], &r);
    assert_eq!(o.status.code(), Some(1));
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(s.starts_with("::error file=tests/cases/e201_undefined_step_in_after/main.bps,line=18,col=47,"), "{s}");
    assert!(s.contains("title=E201 ") && s.contains("::undefined step `isrr`%0Ahelp: did you mean `isr`?"), "{s}");
    // status and provenance keep --json as a hidden spelling of --format json.
    let help = String::from_utf8_lossy(&bpsc(&["status", "--help"], &r).stdout).into_owned();
    assert!(help.contains("--format") && !help.contains("--json"), "{help}");
}

/// Human diagnostics end with where to read more; `--quiet` leaves errors only.
#[test]
fn human_diagnostics_point_to_explain_and_quiet_keeps_errors_only() {
    let d = tmp("quiet");
    std::fs::write(
        d.join("warn.bps"),
        "bps 1\ndimension visit = 1..3\ndimension band = [\"g\"]\npipeline p { step a over (visit) { run = \"true\" } }\ncampaign c {\n  use p\n  coverage = visit\n}\n",
    )
    .unwrap();
    let o = bpsc(&["check", "warn.bps"], &d);
    let t = text(&o);
    assert!(t.contains("W201") && t.contains("note: see `bpsc explain W201`"), "{t}");
    let o = bpsc(&["check", "warn.bps", "--quiet"], &d);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(text(&o), "", "--quiet printed something for a warning-only file");
    let o = bpsc(&["-q", "check", "warn.bps", "--deny", "warnings"], &d);
    assert_eq!(o.status.code(), Some(1));
    let o = bpsc(&["check", &repo().join("tests/cases/e201_undefined_step_in_after/main.bps").to_string_lossy(), "-q"], &d);
    assert!(text(&o).contains("see `bpsc explain E201`"), "{}", text(&o));
    // --verbose says what was checked.
    let o = bpsc(&["check", "warn.bps", "--verbose"], &d);
    assert!(String::from_utf8_lossy(&o.stderr).contains("checked 1 file in"), "{}", text(&o));
    assert_eq!(bpsc(&["check", "warn.bps", "-q", "-v"], &d).status.code(), Some(2), "--quiet and --verbose conflict");
}

/// `--color always|never|auto` on every command, and NO_COLOR for `auto`.
#[test]
fn color_flag_on_every_command_and_no_color() {
    let r = repo();
    let broken = "tests/cases/e201_undefined_step_in_after/main.bps";
    let esc = |o: &Output| o.stdout.contains(&0x1b) || o.stderr.contains(&0x1b);
    for cmd in [
        vec!["check", broken],
        vec!["config", broken],
        vec!["graph", broken],
        vec!["compile", broken, "--emit", "summary", "--format", "human"],
    ] {
        let mut a = cmd.clone();
        a.extend(["--color", "always"]);
        assert!(esc(&bpsc_env(&a, &r, &[], None)), "{a:?}: no colour with --color always");
        let mut a = cmd.clone();
        a.extend(["--color", "never"]);
        assert!(!esc(&bpsc_env(&a, &r, &[], None)), "{a:?}");
        // Not a terminal: auto means no colour.
        assert!(!esc(&bpsc_env(&cmd, &r, &[], None)), "{cmd:?}");
    }
    // The option is global: it may come before the command, and applies to every one.
    for cmd in [["explain", "E201"], ["fmt", "--help"], ["completions", "bash"], ["man", "--help"]] {
        let mut a = vec!["--color", "never"];
        a.extend(cmd);
        assert_eq!(bpsc_env(&a, &r, &[], None).status.code(), Some(0), "{a:?}");
    }
    // NO_COLOR only matters for auto, which needs a terminal: script(1) gives one.
    if Command::new("script").arg("--version").output().is_ok_and(|o| o.status.success()) {
        let bin = env!("CARGO_BIN_EXE_bpsc");
        let run = |no_color: Option<&str>| {
            let mut c = Command::new("script");
            c.args(["-qec", &format!("{bin} check {broken}"), "/dev/null"]).current_dir(&r).env_remove("NO_COLOR");
            if let Some(v) = no_color {
                c.env("NO_COLOR", v);
            }
            c.output().unwrap().stdout.contains(&0x1b)
        };
        assert!(run(None), "a terminal should get colour");
        assert!(!run(Some("1")), "NO_COLOR=1 should turn colour off");
    }
}

/// `check -` reads standard input; `check DIR` checks every campaign under it, except files
/// that another one there includes.
#[test]
fn check_reads_stdin_and_walks_directories() {
    let r = repo();
    let src = std::fs::read_to_string(r.join("examples/afterburner/afterburner.bps")).unwrap();
    let o = bpsc_env(&["check", "-", "--color", "never"], &r.join("examples/afterburner"), &[], Some(&src));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = bpsc_env(&["check", "-", "--format", "json"], &r, &[], Some("bps 1\nstep x\n"));
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_str(String::from_utf8_lossy(&o.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(v["file"], "<stdin>");
    let o = bpsc(&["check", "examples", "--format", "junit"], &r);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let x = String::from_utf8_lossy(&o.stdout);
    // drp.bps, afterburner.bps, nightly_calib.bps, special_programs.bps, step1_port.bps; not the files they include.
    assert!(x.contains("tests=\"5\""), "{x}");
    assert!(!x.contains("sites.bps\"") && !x.contains("pipeline.bps\""), "{x}");
    let d = tmp("empty-dir");
    let o = bpsc(&["check", d.to_str().unwrap()], &r);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("no .bps files under"));
}

/// `compile --format json`: the submit directory, counts, files and submit command on
/// standard output, and nothing for people on standard error.
#[test]
fn compile_reports_its_result_as_json() {
    let d = tmp("compile-json");
    let f = repo().join("examples/afterburner/afterburner.bps");
    let o = bpsc(&["compile", f.to_str().unwrap(), "--backend", "slurm", "-o", "submit", "--format", "json"], &d);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(o.stderr.is_empty(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["bpsc_compile"], 1);
    assert_eq!(v["backend"], "slurm");
    assert_eq!(Path::new(v["submit_dir"].as_str().unwrap()), std::fs::canonicalize(d.join("submit")).unwrap());
    assert!(v["counts"]["jobs"].as_u64().unwrap() > 0 && v["counts"]["edges"].as_u64().is_some());
    let files: Vec<&str> = v["files"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
    assert!(files.contains(&"slurm/submit.sh"), "{files:?}");
    for f in &files {
        assert!(d.join("submit").join(f).exists(), "{f}");
    }
    assert!(v["submit_command"].as_str().unwrap().contains("submit.sh"), "{v}");
    let o = bpsc(&["compile", f.to_str().unwrap(), "--emit", "ir", "-o", "ir", "--format", "json"], &d);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["ir"].as_str().unwrap().ends_with("ir.jsonl") && v["counts"]["jobs"].as_u64().is_some(), "{v}");
    // --emit summary: JSON by default, text with --format human.
    let o = bpsc(&["compile", f.to_str().unwrap(), "--emit", "summary"], &d);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["counts"]["jobs"].as_u64().is_some());
    let o = bpsc(&["compile", f.to_str().unwrap(), "--emit", "summary", "--format", "human"], &d);
    assert!(String::from_utf8_lossy(&o.stdout).contains(" jobs ("), "{}", text(&o));
}

/// Help with examples on every command, every argument described; completions and man pages.
#[test]
fn help_completions_and_man_pages() {
    let r = repo();
    let top = String::from_utf8_lossy(&bpsc(&["--help"], &r).stdout).into_owned();
    let cmds: Vec<String> = top
        .split("Commands:")
        .nth(1)
        .unwrap()
        .split("Options:")
        .next()
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|c| c != "help")
        .collect();
    assert!(cmds.len() >= 13, "{cmds:?}");
    let mut paths: Vec<Vec<String>> = cmds.iter().map(|c| vec![c.clone()]).collect();
    for sub in ["ingest", "query", "diff"] {
        paths.push(vec!["provenance".into(), sub.into()]);
    }
    for p in &paths {
        let mut a: Vec<&str> = p.iter().map(|s| s.as_str()).collect();
        a.push("--help");
        let o = bpsc(&a, &r);
        assert_eq!(o.status.code(), Some(0), "{p:?}");
        let h = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(h.contains("Example") || p == &["lsp"] || p == &["provenance"], "{p:?} has no examples:\n{h}");
        // Every argument and option has a description: no line that names one and stops.
        let mut undocumented = Vec::new();
        let lines: Vec<&str> = h.lines().collect();
        // In long help an argument's line is indented by 2 to 6 spaces and its description
        // follows, indented by 10.
        let indent = |l: &str| l.len() - l.trim_start().len();
        let in_args = |l: &&str| !l.trim().is_empty();
        for (i, l) in lines.iter().enumerate().filter(|(_, l)| in_args(l)) {
            let t = l.trim_start();
            let is_arg = (2..=6).contains(&indent(l)) && (t.starts_with('-') || t.starts_with('<') || t.starts_with('['));
            if is_arg {
                let next = lines.get(i + 1).copied().unwrap_or("");
                if next.trim().is_empty() || indent(next) < 10 {
                    undocumented.push(t.to_string());
                }
            }
        }
        assert!(undocumented.is_empty(), "{p:?}: undocumented {undocumented:?}");
    }
    for shell in ["bash", "zsh", "fish"] {
        let o = bpsc(&["completions", shell], &r);
        assert_eq!(o.status.code(), Some(0), "{shell}");
        let s = String::from_utf8_lossy(&o.stdout);
        let backend = if shell == "fish" { "-l backend" } else { "--backend" };
        assert!(s.contains("bpsc") && s.contains("compile") && s.contains(backend), "{shell}: {s}");
    }
    if Command::new("bash").arg("--version").output().is_ok() {
        let o = Command::new("bash")
            .arg("-n")
            .arg("-c")
            .arg(String::from_utf8_lossy(&bpsc(&["completions", "bash"], &r).stdout).as_ref())
            .output()
            .unwrap();
        assert!(o.status.success(), "bash -n: {}", String::from_utf8_lossy(&o.stderr));
    }
    let o = bpsc(&["man"], &r);
    let m = String::from_utf8_lossy(&o.stdout);
    assert!(m.starts_with(".ie") || m.contains(".TH bpsc"), "{m}");
    assert!(m.contains("compile"));
    let d = tmp("man");
    let o = bpsc(&["man", "--dir", d.to_str().unwrap()], &r);
    assert_eq!(o.status.code(), Some(0));
    for page in ["bpsc.1", "bpsc-check.1", "bpsc-compile.1", "bpsc-status.1"] {
        let t = std::fs::read_to_string(d.join(page)).unwrap_or_else(|_| panic!("{page} missing"));
        assert!(t.contains(".TH"), "{page}");
    }
    assert!(std::fs::read_to_string(d.join("bpsc-compile.1")).unwrap().contains("\\-\\-backend"));
}

/// `graph --level job` for a few hundred jobs: one box per step, one column per level.
#[test]
fn job_graph_groups_by_step_and_ranks_by_level() {
    let r = repo();
    let o = bpsc(&["graph", "examples/drp/drp.bps", "--level", "job"], &r);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let dot = String::from_utf8_lossy(&o.stdout);
    for step in
        ["step assemble_coadd (23 jobs)", "cluster single_frame (23 jobs)", "step make_summary (1 job)", "stage out of step assemble_coadd"]
    {
        assert!(dot.contains(step), "{step} missing:\n{dot}");
    }
    assert!(dot.contains("rankdir=LR") && dot.matches("rank=same").count() >= 5, "{dot}");
    // Labels are data IDs, not whole job ids; the job id is the tooltip.
    assert!(dot.contains("[label=\"9812, 43, g\", tooltip=\"assemble_coadd_9812_43_g\"]"), "{dot}");
    let nodes = dot.lines().filter(|l| l.trim_start().starts_with('j') && l.contains("[label=")).count();
    assert_eq!(nodes, 221);
    if Command::new("dot").arg("-V").output().is_ok() {
        let mut c =
            Command::new("dot").arg("-Tsvg").stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).spawn().unwrap();
        std::io::Write::write_all(&mut c.stdin.take().unwrap(), dot.as_bytes()).unwrap();
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success() && o.stdout.starts_with(b"<?xml"), "dot rejects the job graph");
    }
    let o = bpsc(&["graph", "examples/drp/drp.bps", "--level", "job", "--format", "mermaid"], &r);
    let m = String::from_utf8_lossy(&o.stdout);
    assert!(m.starts_with("flowchart TD") && m.contains("subgraph") && m.contains("step assemble_coadd (23 jobs)"), "{m}");
}

/// Issue 17 item 4: settings for a step the campaign does not have are E201 unless
/// `--allow-unknown-steps`, which ignores them with W205 (and keeps every other setting);
/// a restart compiles the same way.
#[test]
fn unknown_steps_are_errors_unless_allowed() {
    let d = tmp("unknown-steps");
    std::fs::write(
        d.join("c.bps"),
        "bps 1.1\ndimension visit = 1..3\npipeline p { step a over (visit) { run = \"echo {visit}\" } }\ncampaign k {\n  use p\n  coverage = visit\n  step a { memory = 3GiB }\n  step dropped { memory = 8GiB }\n}\n",
    )
    .unwrap();
    let text = |o: &Output| format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    let o = bpsc(&["check", "c.bps"], &d);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("E201") && text(&o).contains("dropped"), "{}", text(&o));
    let o = bpsc(&["check", "c.bps", "--allow-unknown-steps"], &d);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("W205"), "{}", text(&o));
    // A --set naming no step: usage error (2) without the option, a warning with it.
    let o = bpsc(
        &["compile", "c.bps", "--backend", "slurm", "-o", "o1", "--allow-unknown-steps", "--set", "gone.cpus=2", "--set", "a.cpus=2"],
        &d,
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let t = text(&o);
    assert_eq!(t.matches("W205").count(), 4, "two warnings, each with its explain line: {t}");
    // The known step keeps its settings: 3 GiB from the campaign, 2 cpus from --set.
    let line = String::from_utf8_lossy(&bpsc(&["show", "o1", "a:0", "--format", "json"], &d).stdout).into_owned();
    let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(v["resources"]["memory"], 3u64 << 30, "{v}");
    assert_eq!(v["resources"]["cpus"], 2, "{v}");
    let meta: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(d.join("o1/bpsc.json")).unwrap()).unwrap();
    assert_eq!(meta["compile"]["allow_unknown_steps"], true);
    let o = bpsc(&["restart", "o1", "-o", "o1r", "--format", "json"], &d);
    assert_eq!(o.status.code(), Some(0), "a restart compiles as the original did: {}", text(&o));
    // The restart's result as JSON (issue 15): nothing ran, so every quantum remains.
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o)));
    assert_eq!(r["bpsc_restart"], 1);
    assert_eq!(r["quanta"]["total"], 2);
    assert_eq!(r["quanta"]["remaining"], 2);
    assert_eq!(r["jobs"]["after"], r["jobs"]["before"]);
    assert_eq!(r["backend"], "slurm");
    assert!(r["out"].as_str().is_some_and(|p| p.ends_with("o1r")), "{r}");
    let o = bpsc(&["compile", "c.bps", "--backend", "slurm", "-o", "o2", "--set", "gone.cpus=2"], &d);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(!d.join("o2").exists());
}
