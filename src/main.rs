//! The `bpsc` command line.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

use bpsc::check::Options;

/// mimalloc: the compiler allocates many small nodes; glibc's malloc/free was a third of
/// all instructions when checking a 20,000-line file.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use bpsc::cli::{self, Ui};
use bpsc::fs::RealFs;

const TOP_HELP: &str = "\
Examples:
  bpsc check campaign.bps                      check a campaign file (and what it includes)
  bpsc check campaigns/ --format github        check every campaign under a directory, for CI
  bpsc config campaign.bps --explain coadd.memory
  bpsc compile campaign.bps --backend slurm -o submit
  bpsc status submit --watch

Exit status: 0 done and clean; 1 the input has errors; 2 usage or I/O problems (`bpsc status`
has its own, see `bpsc status --help`).  Every diagnostic code has a page: `bpsc explain CODE`.";

#[derive(Parser)]
#[command(
    name = "bpsc",
    version,
    about = "Batch production workflow compiler: .bps campaigns to Pegasus, HTCondor, Slurm and Nextflow",
    after_help = TOP_HELP,
    propagate_version = true
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    cmd: Cmd,
}

/// Options every command takes.
#[derive(Args)]
struct Global {
    /// When to colour the output: `auto` colours a terminal unless NO_COLOR is set.
    #[arg(long, value_enum, default_value = "auto", global = true, value_name = "WHEN")]
    color: Color,
    /// Print errors only: no warnings, progress or summary lines.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// Print more: what was read and how long each phase took.
    #[arg(short, long, global = true)]
    verbose: bool,
}

/// Report formats of `bpsc check`.
#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum CheckFormat {
    /// Text for people, with source snippets.
    Human,
    /// JSON Lines, one diagnostic per line.
    Json,
    /// SARIF 2.1.0, for code-scanning services.
    Sarif,
    /// JUnit XML, one test case per file.
    Junit,
    /// GitHub Actions annotations (`::error file=...`), shown on the pull request.
    Github,
}

/// Output formats of commands whose result is data: text for people or one JSON document.
#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum DataFormat {
    /// Text for people.
    Human,
    /// JSON on standard output; diagnostics as JSON Lines on standard error.
    Json,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Deny {
    /// Warnings fail the check (exit status 1).
    Warnings,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Color {
    /// Colour when writing to a terminal and NO_COLOR is not set.
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Shell {
    Bash,
    Zsh,
    Fish,
    Elvish,
    Powershell,
}

#[derive(Subcommand)]
enum Cmd {
    /// Check campaign files: syntax, names, types, tables, the step graph, sites.
    #[command(after_help = "\
Examples:
  bpsc check campaign.bps
  bpsc check campaigns/                   every *.bps under the directory, except files that another one includes
  cat campaign.bps | bpsc check -         standard input (includes and tables relative to the working directory)
  bpsc check campaign.bps --format sarif > bpsc.sarif
  bpsc check campaign.bps --deny warnings --set coadd.memory=32GiB

Exit status: 0 clean, 1 errors (or warnings with --deny warnings), 2 usage or I/O problems.
The report goes to standard output.")]
    Check {
        /// Campaign files, directories to search for *.bps files, or `-` for standard input.
        #[arg(required = true, value_name = "PATH")]
        files: Vec<PathBuf>,
        /// Report format.
        #[arg(long, value_enum, default_value = "human")]
        format: CheckFormat,
        /// `--deny warnings` makes warnings fail the check.
        #[arg(long, value_enum)]
        deny: Option<Deny>,
        /// Override a setting: KEY=VALUE for every step or STEP.KEY=VALUE for one (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        /// Also lower each campaign and report what this engine cannot express (W801, E801).
        #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(bpsc::backend::NAMES))]
        backend: Option<String>,
        /// Settings for steps the campaign does not have are warnings (W205), not errors.
        #[arg(long)]
        allow_unknown_steps: bool,
    },
    /// Print the resolved execution settings of every step, or the override chain of one.
    #[command(after_help = "\
Examples:
  bpsc config campaign.bps
  bpsc config campaign.bps --explain coadd.memory          where each value of the chain is written
  bpsc config campaign.bps --format json --set memory=4GiB

The result goes to standard output; diagnostics and errors to standard error (JSON Lines with
--format json).  Exit status: 0 done, 1 the file has errors, 2 usage or I/O problems.")]
    Config {
        /// The campaign file.
        file: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value = "human")]
        format: DataFormat,
        /// Print the override chain of one setting: STEP.KEY (or PIPELINE.STEP.KEY).
        #[arg(long, value_name = "STEP.KEY")]
        explain: Option<String>,
        /// Override a setting: KEY=VALUE for every step or STEP.KEY=VALUE for one (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        /// Campaign to resolve for (default: the only one).
        #[arg(long)]
        campaign: Option<String>,
    },
    /// Explain a diagnostic code, with an example.  Without a code, list all codes.
    #[command(after_help = "\
Examples:
  bpsc explain           list every code with its severity and title
  bpsc explain E201      the page of E201, with an example and what bpsc says about it")]
    Explain {
        /// A diagnostic code such as E201 or W701 (any case).
        code: Option<String>,
    },
    /// Compile a campaign into a submit directory for a workflow engine (or the IR).
    #[command(after_help = "\
Examples:
  bpsc compile campaign.bps -o submit                        the backend of the campaign's site
  bpsc compile campaign.bps --backend htcondor -o submit --force
  bpsc compile campaign.bps --backend slurm -o submit --format json
  bpsc compile campaign.bps --steps isr..calibrate -o part   a subset of the steps
  bpsc compile campaign.bps --emit ir -o ir                  the IR as JSON Lines
  bpsc compile campaign.bps --emit summary                   counts and timings (JSON), writes nothing

The directory is written atomically: an interrupted compile (error, Ctrl-C, SIGTERM) leaves
nothing behind.  With --format json the result (submit directory, counts, files, submit
command) goes to standard output.")]
    Compile {
        /// The campaign file.
        file: PathBuf,
        /// Engine to compile for (default: the `backend` of the campaign's site).
        #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(bpsc::backend::NAMES))]
        backend: Option<String>,
        /// Write the IR (`ir`, needs -o) or print counts and timings (`summary`) instead.
        #[arg(long, value_enum, conflicts_with = "backend")]
        emit: Option<Emit>,
        /// Output directory (written atomically; an existing one needs --force).
        #[arg(short = 'o', long = "out", required_unless_present = "emit", value_name = "DIR")]
        out: Option<PathBuf>,
        /// Replace an existing output directory.
        #[arg(long)]
        force: bool,
        /// Submit the directory once it is written (`bpsc submit`).
        #[arg(long, conflicts_with = "emit")]
        submit: bool,
        /// Output format (default: human; json for --emit summary).
        #[arg(long, value_enum)]
        format: Option<DataFormat>,
        #[command(flatten)]
        common: Common,
    },
    /// Submit a compiled directory with its engine's own tool; refuses a second submission
    /// without --resubmit.  Exit 0 done, 1 engine command failed, 2 usage, 3 refused by the
    /// campaign's state, 4 not possible on this engine, 5 tool missing, 6 not confirmed.
    #[command(after_help = "\
Examples:
  bpsc submit out/drp
  bpsc submit out/drp --resubmit        after a cancel, or once the engine gave up")]
    Submit(bpsc::operate::SubmitArgs),
    /// Remove everything a submission put in the engine and wait until the engine confirms.
    #[command(after_help = "\
Example:
  bpsc cancel out/drp && bpsc status out/drp        status then says cancelled")]
    Cancel(bpsc::operate::CancelArgs),
    /// Pause a submitted campaign: no new job starts (--now: running jobs are stopped too).
    #[command(after_help = "\
Examples:
  bpsc hold out/drp           running jobs finish, no new job starts
  bpsc hold out/drp --now     running jobs are stopped and held too")]
    Hold(bpsc::operate::HoldArgs),
    /// Resume a held campaign, optionally with new resources for its queued jobs.
    #[command(after_help = "\
Examples:
  bpsc release out/drp
  bpsc release out/drp --set memory=8GiB --set partition=long")]
    Release(bpsc::operate::ReleaseArgs),
    /// Change the priority of a submitted campaign's pending jobs (higher runs first).
    #[command(after_help = "\
Example:
  bpsc priority out/drp 80")]
    Priority(bpsc::operate::PriorityArgs),
    /// Run one job of a submit directory (what every engine's job executes).
    #[command(after_help = "\
Example:
  bpsc wrap /path/to/submit --group isr --index 17

Engines run this; people rarely do.  Exit status: the payload's, 79 when skipped because a
parent failed (--skip-failed-parents).")]
    Wrap {
        /// The submit directory.
        submit: PathBuf,
        /// Job group (a step or cluster) of the task table.
        #[arg(long)]
        group: String,
        /// The job's index in the group's task table.
        #[arg(long, required_unless_present = "job", conflicts_with = "job")]
        index: Option<u64>,
        /// The job's id (engines that name jobs by id, e.g. DAGMan's $(JOB)).
        #[arg(long)]
        job: Option<String>,
        /// Attempt number (default: one more than the provenance records of the job).
        #[arg(long)]
        attempt: Option<u32>,
        /// Do not run when a parent's latest provenance record is missing or failed: record
        /// the job as skipped and exit 79 (for engines whose dependencies fire on any end).
        #[arg(long)]
        skip_failed_parents: bool,
    },
    /// Format campaign files in the canonical style (in place; `-` filters standard input).
    #[command(after_help = "\
Examples:
  bpsc fmt campaign.bps sites.bps      rewrite the files in place
  bpsc fmt --check examples/*.bps      list the files that would change; exit 1 if any
  bpsc fmt - < campaign.bps            write the formatted text to standard output")]
    Fmt {
        /// Campaign files, or `-` for standard input to standard output.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Write nothing; list the files that would change and exit 1 if there are any.
        #[arg(long)]
        check: bool,
    },
    /// Run the language server on standard input and output (for editors).
    #[command(after_help = "Editors start it; see editors/vscode/ for the VS Code extension.")]
    Lsp,
    /// Generate a synthetic survey campaign (for benchmarks).
    #[command(hide = true)]
    Synth {
        /// About this many compute jobs.
        #[arg(long, required_unless_present = "lines")]
        jobs: Option<u64>,
        /// Output directory (or file with --lines).
        #[arg(short = 'o', long = "out")]
        out: PathBuf,
        /// Instead: write one long campaign file of about this many lines.
        #[arg(long)]
        lines: Option<usize>,
        /// With --lines: one pipeline of chained steps that the campaign uses (about six lines
        /// per step), instead of many independent pipelines.
        #[arg(long, requires = "lines")]
        chain: bool,
    },
    /// Where a campaign stands: jobs per step and state, failures, hosts.
    #[command(after_help = "\
Examples:
  bpsc status submit
  bpsc status submit --watch --interval 60     refresh until the campaign ends; fire notifications
  bpsc status submit --format json

Exit status: 0 done (every job succeeded), 1 finished with failures, 2 usage or I/O problems,
3 running, 4 running with failures.")]
    Status {
        /// The submit directory.
        submit: PathBuf,
        /// Output format (json: schema `bpsc_status` 1, see the status module docs).
        #[arg(long, value_enum, default_value = "human")]
        format: DataFormat,
        /// Same as --format json (kept for scripts).
        #[arg(long, hide = true)]
        json: bool,
        /// Refresh until the campaign ends, with a progress bar per step; fire notifications.
        #[arg(long)]
        watch: bool,
        /// Seconds between refreshes with --watch.
        #[arg(long, default_value = "30", value_name = "SECONDS")]
        interval: f64,
        /// Notifications with --watch: `auto` fires the events the engine has no native hook for.
        #[arg(long, value_enum, default_value = "auto")]
        notify: NotifyMode,
        #[arg(long, hide = true)]
        max_refreshes: Option<u64>,
    },
    /// The provenance store (SQLite): ingest records, query them, compare campaigns.
    #[command(after_help = "\
Examples:
  bpsc provenance ingest submit
  bpsc provenance query submit --coverage coadd --format json
  bpsc provenance query submit --host node017
  bpsc provenance diff submit-a submit-b --summary")]
    Provenance {
        #[command(subcommand)]
        cmd: ProvCmd,
    },
    /// Write a new submit directory with only what is left to do (failed and never-run jobs,
    /// plus what --from / --data-ids designate); succeeded quanta are never run again.
    #[command(after_help = "\
Examples:
  bpsc restart submit                               failed and never-run jobs
  bpsc restart submit --from coadd                  also rerun coadd and everything after it
  bpsc restart submit --data-ids redo.csv --set memory=8GiB -o submit.retry")]
    Restart {
        /// The submit directory of the earlier compile.
        submit: PathBuf,
        /// Run this step and everything downstream of it again (repeatable, or A,B).
        #[arg(long, value_name = "STEP")]
        from: Vec<String>,
        /// CSV of data IDs to run again (header: dimension names, optionally `step`).
        #[arg(long, value_name = "FILE")]
        data_ids: Option<PathBuf>,
        /// Override a setting for the restart: KEY=VALUE or STEP.KEY=VALUE (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        /// New submit directory (default: SUBMIT.restartN).
        #[arg(short = 'o', long = "out", value_name = "DIR")]
        out: Option<PathBuf>,
        /// Replace an existing output directory.
        #[arg(long)]
        force: bool,
        /// Hosts with at least this many failed attempts go to avoid_hosts (0: never).
        #[arg(long, default_value = "3", value_name = "N")]
        host_failures: u64,
        /// ... and at least this share of the host's attempts failed.
        #[arg(long, default_value = "0.5", value_name = "RATE")]
        host_failure_rate: f64,
        /// The campaign file (default: the one recorded in bpsc.json).
        #[arg(long)]
        file: Option<PathBuf>,
        /// Output format of the result (json: one object, `bpsc_restart` 1).
        #[arg(long, value_enum, default_value = "human")]
        format: DataFormat,
    },
    /// One job of a submit directory, fully rendered: its command(s), paths, transfers and
    /// settings, exactly as `bpsc wrap` will run it.
    ///
    /// Examples:
    ///   bpsc show out/drp isr_903334_42
    ///   bpsc show out/drp isr:17 --format json
    Show {
        /// The submit directory.
        submit: PathBuf,
        /// A job id, or GROUP:INDEX (a task group and the job's line in it).
        job: String,
        /// Output format.
        #[arg(long, value_enum, default_value = "human")]
        format: DataFormat,
    },
    /// A self-contained HTML report of a campaign (the original submit directory and its
    /// restarts as one history): progress, step graph, timeline, resources against requests
    /// with right-sizing hints, failures, hosts, provenance.  Exit 0 written, 2 usage or I/O.
    #[command(after_help = "\
Examples:
  bpsc report out/drp out/drp.restart1 -o drp.html
  bpsc report out/drp --json | jq .steps")]
    Report {
        /// The submit directories: the original first, then its restarts.
        #[arg(required = true)]
        submits: Vec<PathBuf>,
        /// Output file (`-`: standard output).  Default: report.html; with --json, standard output.
        #[arg(short = 'o', long = "out")]
        out: Option<PathBuf>,
        /// The report's data as JSON (`bpsc_report` 1, see the report module docs).
        #[arg(long)]
        json: bool,
    },
    /// Draw the step graph (with job counts) or the job graph of a small campaign.
    #[command(after_help = "\
Examples:
  bpsc graph campaign.bps | dot -Tsvg > steps.svg
  bpsc graph campaign.bps --format mermaid > steps.mmd
  bpsc graph campaign.bps --level job --steps isr..calibrate | dot -Tsvg > jobs.svg

The job graph groups jobs by step and ranks them by level; it draws at most 5000 jobs.")]
    Graph {
        /// The campaign file.
        file: PathBuf,
        /// Graph language.
        #[arg(long, value_enum, default_value = "dot")]
        format: GraphFormat,
        /// Steps (with job counts) or jobs.
        #[arg(long, value_enum, default_value = "step")]
        level: GraphLevel,
        #[command(flatten)]
        common: Common,
    },
    /// Print a shell completion script.
    #[command(after_help = "\
Examples:
  bpsc completions bash > ~/.local/share/bash-completion/completions/bpsc
  bpsc completions zsh > ~/.zfunc/_bpsc           (with fpath+=~/.zfunc before compinit)
  bpsc completions fish > ~/.config/fish/completions/bpsc.fish")]
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: Shell,
    },
    /// Print the manual page (roff), or write one page per command into a directory.
    #[command(after_help = "\
Examples:
  bpsc man | man -l -
  bpsc man --dir /usr/local/share/man/man1        bpsc.1, bpsc-check.1, bpsc-compile.1, ...")]
    Man {
        /// Write bpsc.1 and bpsc-COMMAND.1 for every command into this directory.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum NotifyMode {
    /// The events the engine has no native hook for.
    Auto,
    /// Every event.
    All,
    /// None.
    None,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum RowFormat {
    /// Comma-separated values with a header.
    Csv,
    /// A JSON array of objects.
    Json,
}

impl RowFormat {
    fn get(self) -> bpsc::provstore::Format {
        match self {
            RowFormat::Csv => bpsc::provstore::Format::Csv,
            RowFormat::Json => bpsc::provstore::Format::Json,
        }
    }
}

#[derive(Subcommand)]
enum ProvCmd {
    /// Load every provenance record of a submit directory (idempotent).
    #[command(after_help = "Example:\n  bpsc provenance ingest submit --format json")]
    Ingest {
        /// The submit directory.
        submit: PathBuf,
        /// Database file (default: the campaign's, SUBMIT/provenance.sqlite).
        #[arg(long)]
        db: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value = "human")]
        format: DataFormat,
        /// Same as --format json (kept for scripts).
        #[arg(long, hide = true)]
        json: bool,
    },
    /// Ask the store: coverage of a step, what ran on a host, a quantum's history, metrics.
    #[command(group(clap::ArgGroup::new("what").required(true).args(["coverage", "host", "quantum", "job", "metrics"])))]
    #[command(after_help = "\
Examples:
  bpsc provenance query submit --coverage coadd
  bpsc provenance query submit --quantum isr --data-id visit=903334,detector=12
  bpsc provenance query provenance.sqlite --metrics --format json")]
    Query {
        /// A submit directory (ingested first) or a database file.
        source: PathBuf,
        /// Database file (default: the campaign's, SUBMIT/provenance.sqlite).
        #[arg(long)]
        db: Option<PathBuf>,
        /// Campaign to ask about (default: the only one in the store).
        #[arg(long)]
        campaign: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value = "csv")]
        format: RowFormat,
        /// Data IDs of this step that succeeded.
        #[arg(long, value_name = "STEP")]
        coverage: Option<String>,
        /// Every attempt that ran on this host.
        #[arg(long)]
        host: Option<String>,
        /// The history of one quantum of this step (with --data-id).
        #[arg(long, value_name = "STEP", requires = "data_id")]
        quantum: Option<String>,
        /// `k=v,k=v`: the data ID for --quantum.
        #[arg(long)]
        data_id: Option<String>,
        /// The history of one job.
        #[arg(long)]
        job: Option<String>,
        /// Runtime metrics per step.
        #[arg(long)]
        metrics: bool,
    },
    /// Compare two campaigns: success per data ID, runtime differences.
    #[command(after_help = "Example:\n  bpsc provenance diff submit-w46 submit-w47 --step coadd --format json")]
    Diff {
        /// The first submit directory or database file.
        a: PathBuf,
        /// The second submit directory or database file.
        b: PathBuf,
        /// Campaign in A (default: the only one).
        #[arg(long)]
        a_campaign: Option<String>,
        /// Campaign in B (default: the only one).
        #[arg(long)]
        b_campaign: Option<String>,
        /// Compare this step only.
        #[arg(long)]
        step: Option<String>,
        /// One row per step instead of one per data ID.
        #[arg(long)]
        summary: bool,
        /// Output format.
        #[arg(long, value_enum, default_value = "csv")]
        format: RowFormat,
    },
}

#[derive(clap::Args, Clone, Default)]
struct Common {
    /// Override a setting: KEY=VALUE for every step or STEP.KEY=VALUE for one (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// Campaign to compile (default: the only one).
    #[arg(long)]
    campaign: Option<String>,
    /// Compile a subset of steps: `A..B` (a range in dependency order) or `A,B`.
    #[arg(long)]
    steps: Option<String>,
    /// Warn when the coverage or a step has more data IDs than this (W701).
    #[arg(long, value_name = "N")]
    coverage_warn: Option<usize>,
    /// Ignore, with warning W205, settings for steps the campaign does not have (a campaign's
    /// `step X { }` block, `--set X.KEY=...`) instead of refusing them (E201).
    #[arg(long)]
    allow_unknown_steps: bool,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Emit {
    /// The IR as JSON Lines (needs -o).
    Ir,
    /// Check and lower only; print counts and phase timings (writes nothing).
    Summary,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum GraphFormat {
    /// Graphviz DOT.
    Dot,
    /// A Mermaid flowchart.
    Mermaid,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum GraphLevel {
    /// One node per step, with its numbers of quanta and jobs.
    Step,
    /// One node per job, grouped by step and ranked by level.
    Job,
}

fn args(file: PathBuf, c: Common) -> cli::CompileArgs {
    cli::CompileArgs {
        file,
        sets: c.sets,
        campaign: c.campaign,
        steps: c.steps,
        coverage_warn: c.coverage_warn,
        allow_unknown_steps: c.allow_unknown_steps,
    }
}

/// The manual pages: bpsc(1) and one per command (bpsc-check(1), ...).
fn man_pages(dir: Option<&std::path::Path>, out: &mut dyn Write) -> std::io::Result<()> {
    let cmd = Cli::command();
    let Some(dir) = dir else {
        return clap_mangen::Man::new(cmd).render(out);
    };
    std::fs::create_dir_all(dir)?;
    let mut f = std::fs::File::create(dir.join("bpsc.1"))?;
    clap_mangen::Man::new(cmd.clone()).render(&mut f)?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("bpsc-{}", sub.get_name());
        let page = sub.clone().name(name.clone());
        let mut f = std::fs::File::create(dir.join(format!("{name}.1")))?;
        clap_mangen::Man::new(page).render(&mut f)?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Cmd::Lsp = cli.cmd {
        // The server's writer thread needs standard output: run it before locking it here.
        return match bpsc::lsp::run_stdio() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: bpsc lsp: {e}");
                ExitCode::from(cli::EXIT_USAGE)
            }
        };
    }
    let mut ui = Ui {
        color: match cli.global.color {
            Color::Auto => cli::ColorChoice::Auto,
            Color::Always => cli::ColorChoice::Always,
            Color::Never => cli::ColorChoice::Never,
        },
        quiet: cli.global.quiet,
        verbose: cli.global.verbose,
        out_tty: std::io::stdout().is_terminal(),
        err_tty: std::io::stderr().is_terminal(),
        json: false,
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut err = std::io::stderr();
    let code = match cli.cmd {
        Cmd::Check { files, format, deny, sets, backend, allow_unknown_steps } => {
            let fmt = match format {
                CheckFormat::Human => cli::OutFormat::Human { color: ui.color_for(ui.out_tty) },
                CheckFormat::Json => cli::OutFormat::Json,
                CheckFormat::Sarif => cli::OutFormat::Sarif,
                CheckFormat::Junit => cli::OutFormat::Junit,
                CheckFormat::Github => cli::OutFormat::Github,
            };
            ui.json = format == CheckFormat::Json;
            cli::check_paths(
                &RealFs,
                &files,
                &Options::cli(sets).unknown_steps(allow_unknown_steps),
                backend.as_deref(),
                fmt,
                deny.is_some(),
                &ui,
                &mut out,
                &mut err,
            )
        }
        Cmd::Config { file, format, explain, sets, campaign } => {
            ui.json = format == DataFormat::Json;
            cli::config(&RealFs, &file, &Options::cli(sets), explain.as_deref(), campaign.as_deref(), &ui, &mut out, &mut err)
        }
        Cmd::Explain { code } => cli::explain_to(code.as_deref(), &ui, &mut out, &mut err),
        Cmd::Fmt { files, check } => cli::fmt_files_ui(&files, check, &ui, &mut out, &mut err),
        Cmd::Lsp => unreachable!("handled before stdout is locked"),
        Cmd::Compile { file, backend, emit, out: dir, force, submit, format, common } => {
            let a = args(file, common);
            ui.json = match format {
                Some(f) => f == DataFormat::Json,
                None => emit == Some(Emit::Summary),
            };
            match (emit, dir) {
                (Some(Emit::Summary), _) => cli::compile_summary_ui(&RealFs, &a, &ui, &mut out, &mut err),
                (Some(Emit::Ir), Some(dir)) => cli::compile_ir_ui(&RealFs, &a, &dir, force, &ui, &mut out, &mut err),
                (None, Some(dir)) => match cli::compile_backend_ui(&RealFs, &a, backend.as_deref(), &dir, force, &ui, &mut out, &mut err) {
                    cli::EXIT_OK if submit => {
                        let s = bpsc::operate::SubmitArgs { submit: dir, resubmit: false, opts: Default::default() };
                        bpsc::operate::submit_cmd(&s, &mut out, &mut err)
                    }
                    code => code,
                },
                (_, None) => {
                    ui.error(&mut err, "-o DIR is required");
                    cli::EXIT_USAGE
                }
            }
        }
        Cmd::Wrap { submit, group, index, job, attempt, skip_failed_parents } => {
            let job = match (index, job) {
                (Some(k), _) => bpsc::wrap::JobRef::Index(k),
                (None, Some(id)) => bpsc::wrap::JobRef::Id(id),
                (None, None) => bpsc::wrap::JobRef::Index(0),
            };
            let code = bpsc::wrap::run(&bpsc::wrap::WrapArgs { submit, group, job, attempt, skip_failed_parents });
            let _ = out.flush();
            std::process::exit(code);
        }
        Cmd::Synth { jobs, out: dir, lines, chain } => {
            let r = match lines {
                Some(n) if chain => bpsc::synth::generate_chain_file(&dir, n).map(|_| format!("wrote {} ({n} lines)", dir.display())),
                Some(n) => bpsc::synth::generate_long_file(&dir, n).map(|_| format!("wrote {} ({n} lines)", dir.display())),
                None => {
                    let shape = bpsc::synth::Shape::for_jobs(jobs.unwrap_or(0));
                    bpsc::synth::generate(&dir, shape).map(|rows| {
                        format!("wrote {}: {} visits x {} detectors, {rows} overlap rows", dir.display(), shape.visits, shape.detectors)
                    })
                }
            };
            match r {
                Ok(m) => {
                    ui.info(&mut err, m);
                    cli::EXIT_OK
                }
                Err(e) => {
                    ui.error(&mut err, e);
                    cli::EXIT_USAGE
                }
            }
        }
        Cmd::Show { submit, job, format } => cli::show(&submit, &job, format == DataFormat::Json, &mut out, &mut err),
        Cmd::Status { submit, format, json, watch, interval, notify, max_refreshes } => {
            let notify = match notify {
                NotifyMode::Auto => bpsc::status::notify::Mode::Auto,
                NotifyMode::All => bpsc::status::notify::Mode::All,
                NotifyMode::None => bpsc::status::notify::Mode::None,
            };
            let json = json || format == DataFormat::Json;
            let a = bpsc::status::StatusArgs { submit, json, watch, interval, notify, max_refreshes };
            bpsc::status::run(&a, &mut out, &mut err)
        }
        Cmd::Provenance { cmd } => match cmd {
            ProvCmd::Ingest { submit, db, format, json } => {
                bpsc::provstore::ingest_cmd(&submit, db.as_deref(), json || format == DataFormat::Json, &mut out, &mut err)
            }
            ProvCmd::Query { source, db, campaign, format, coverage, host, quantum, data_id, job, metrics } => {
                use bpsc::provstore::Query;
                let q = if let Some(step) = coverage {
                    Query::Coverage { step }
                } else if let Some(host) = host {
                    Query::Host { host }
                } else if let Some(step) = quantum {
                    Query::Quantum { step, data_id: data_id.unwrap_or_default() }
                } else if let Some(job) = job {
                    Query::Job { job }
                } else {
                    let _ = metrics;
                    Query::Metrics
                };
                bpsc::provstore::query_cmd(&source, db.as_deref(), campaign.as_deref(), &q, format.get(), &mut out, &mut err)
            }
            ProvCmd::Diff { a, b, a_campaign, b_campaign, step, summary, format } => bpsc::provstore::diff_cmd(
                &a,
                &b,
                a_campaign.as_deref(),
                b_campaign.as_deref(),
                step.as_deref(),
                summary,
                format.get(),
                &mut out,
                &mut err,
            ),
        },
        Cmd::Restart { submit, from, data_ids, sets, out: dir, force, host_failures, host_failure_rate, file, format } => {
            let json = format == DataFormat::Json;
            let a =
                bpsc::restart::RestartArgs { submit, from, data_ids, sets, out: dir, force, host_failures, host_failure_rate, file, json };
            bpsc::restart::run(&a, &mut out, &mut err)
        }
        Cmd::Submit(a) => bpsc::operate::submit_cmd(&a, &mut out, &mut err),
        Cmd::Cancel(a) => bpsc::operate::cancel_cmd(&a, &mut out, &mut err),
        Cmd::Hold(a) => bpsc::operate::hold_cmd(&a, &mut out, &mut err),
        Cmd::Release(a) => bpsc::operate::release_cmd(&a, &mut out, &mut err),
        Cmd::Priority(a) => bpsc::operate::priority_cmd(&a, &mut out, &mut err),
        Cmd::Report { submits, out: file, json } => {
            bpsc::report::run(&bpsc::report::ReportArgs { submits, out: file, json }, &mut out, &mut err)
        }
        Cmd::Graph { file, format, level, common } => {
            cli::graph(&RealFs, &args(file, common), format == GraphFormat::Mermaid, level == GraphLevel::Job, &ui, &mut out, &mut err)
        }
        Cmd::Completions { shell } => {
            let shell = match shell {
                Shell::Bash => clap_complete::Shell::Bash,
                Shell::Zsh => clap_complete::Shell::Zsh,
                Shell::Fish => clap_complete::Shell::Fish,
                Shell::Elvish => clap_complete::Shell::Elvish,
                Shell::Powershell => clap_complete::Shell::PowerShell,
            };
            clap_complete::generate(shell, &mut Cli::command(), "bpsc", &mut out);
            cli::EXIT_OK
        }
        Cmd::Man { dir } => match man_pages(dir.as_deref(), &mut out) {
            Ok(()) => cli::EXIT_OK,
            Err(e) => {
                ui.error(&mut err, e);
                cli::EXIT_USAGE
            }
        },
    };
    let _ = out.flush();
    // Interrupted: the signal thread is removing the temporary directory and will end the
    // process with the signal's status; do not exit before it with this command's.
    bpsc::outdir::halt_if_dying();
    ExitCode::from(code)
}
