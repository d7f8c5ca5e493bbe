//! The `bpsc` command line.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use bpsc::check::Options;
use bpsc::cli;
use bpsc::fs::RealFs;

#[derive(Parser)]
#[command(name = "bpsc", version, about = "Batch production workflow compiler: .bps campaigns to Pegasus, HTCondor, Slurm and Nextflow")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Format {
    Human,
    Json,
    Sarif,
    Junit,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Deny {
    Warnings,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Color {
    Auto,
    Always,
    Never,
}

#[derive(Subcommand)]
enum Cmd {
    /// Check campaign files; exit 0 when clean, 1 on errors, 2 on usage or I/O problems.
    Check {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
        /// `--deny warnings` makes warnings fail the check.
        #[arg(long, value_enum)]
        deny: Option<Deny>,
        /// Override a setting: KEY=VALUE or STEP.KEY=VALUE.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        #[arg(long, value_enum, default_value = "auto")]
        color: Color,
    },
    /// Print the resolved settings of every step.
    Config {
        file: PathBuf,
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
        /// Print the override chain of one setting: STEP.KEY.
        #[arg(long, value_name = "STEP.KEY")]
        explain: Option<String>,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        /// Campaign to resolve for (default: the only one).
        #[arg(long)]
        campaign: Option<String>,
    },
    /// Explain a diagnostic code, with an example.  Without a code, list all codes.
    Explain { code: Option<String> },
    /// Compile a campaign into a submit directory (or the IR).
    Compile {
        file: PathBuf,
        /// Engine to compile for (default: the `backend` of the campaign's site).
        #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(bpsc::backend::BACKENDS))]
        backend: Option<String>,
        /// Write the IR instead of a submit directory.
        #[arg(long, value_enum, conflicts_with = "backend")]
        emit: Option<Emit>,
        /// Output directory (written atomically; an existing one needs --force).
        #[arg(short = 'o', long = "out", required_unless_present = "emit")]
        out: Option<PathBuf>,
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Run one job of a submit directory (what every engine's job executes).
    Wrap {
        submit: PathBuf,
        #[arg(long)]
        group: String,
        #[arg(long)]
        index: u64,
        /// Attempt number (default: one more than the provenance records of the job).
        #[arg(long)]
        attempt: Option<u32>,
    },
    /// Format campaign files in the canonical style (in place; `-` filters standard input).
    Fmt {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Write nothing; list the files that would change and exit 1 if there are any.
        #[arg(long)]
        check: bool,
    },
    /// Run the language server on standard input and output (for editors).
    Lsp,
    /// Generate a synthetic survey campaign (for benchmarks).
    #[command(hide = true)]
    Synth {
        #[arg(long, required_unless_present = "lines")]
        jobs: Option<u64>,
        #[arg(short = 'o', long = "out")]
        out: PathBuf,
        /// Instead: write one long campaign file of about this many lines.
        #[arg(long)]
        lines: Option<usize>,
    },
    /// Draw the step graph (with job counts) or the job graph of a small campaign.
    Graph {
        file: PathBuf,
        #[arg(long, value_enum, default_value = "dot")]
        format: GraphFormat,
        #[arg(long, value_enum, default_value = "step")]
        level: GraphLevel,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(clap::Args, Clone, Default)]
struct Common {
    /// Override a setting: KEY=VALUE or STEP.KEY=VALUE.
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
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Emit {
    /// The IR as JSON Lines (needs -o).
    Ir,
    /// Check and lower only; print counts and phase timings as JSON (writes nothing).
    Summary,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum GraphFormat {
    Dot,
    Mermaid,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum GraphLevel {
    Step,
    Job,
}

fn args(file: PathBuf, c: Common) -> cli::CompileArgs {
    cli::CompileArgs { file, sets: c.sets, campaign: c.campaign, steps: c.steps, coverage_warn: c.coverage_warn }
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
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let code = match cli.cmd {
        Cmd::Check { files, format, deny, sets, color } => {
            let color = match color {
                Color::Always => true,
                Color::Never => false,
                Color::Auto => std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
            };
            let fmt = match format {
                Format::Human => cli::OutFormat::Human { color },
                Format::Json => cli::OutFormat::Json,
                Format::Sarif => cli::OutFormat::Sarif,
                Format::Junit => cli::OutFormat::Junit,
            };
            cli::check_files(&RealFs, &files, &Options { sets }, fmt, deny.is_some(), &mut out)
        }
        Cmd::Config { file, format, explain, sets, campaign } => {
            cli::config(&RealFs, &file, &Options { sets }, format == Format::Json, explain.as_deref(), campaign.as_deref(), &mut out)
        }
        Cmd::Explain { code } => cli::explain(code.as_deref(), &mut out),
        Cmd::Fmt { files, check } => cli::fmt_files(&files, check, &mut out, &mut std::io::stderr()),
        Cmd::Lsp => unreachable!("handled before stdout is locked"),
        Cmd::Compile { file, backend, emit, out: dir, force, common } => {
            let a = args(file, common);
            match (emit, dir) {
                (Some(Emit::Summary), _) => cli::compile_summary(&RealFs, &a, &mut out, &mut std::io::stderr()),
                (Some(Emit::Ir), Some(dir)) => cli::compile_ir(&RealFs, &a, &dir, force, &mut std::io::stderr()),
                (None, Some(dir)) => cli::compile_backend(&RealFs, &a, backend.as_deref(), &dir, force, &mut std::io::stderr()),
                (_, None) => {
                    eprintln!("error: -o DIR is required");
                    cli::EXIT_USAGE
                }
            }
        }
        Cmd::Wrap { submit, group, index, attempt } => {
            let code = bpsc::wrap::run(&bpsc::wrap::WrapArgs { submit, group, index, attempt });
            let _ = out.flush();
            std::process::exit(code);
        }
        Cmd::Synth { jobs, out: dir, lines } => {
            let r = match lines {
                Some(n) => bpsc::synth::generate_long_file(&dir, n).map(|_| format!("wrote {} ({n} lines)", dir.display())),
                None => {
                    let shape = bpsc::synth::Shape::for_jobs(jobs.unwrap_or(0));
                    bpsc::synth::generate(&dir, shape).map(|rows| format!("wrote {}: {shape:?}, {rows} overlap rows", dir.display()))
                }
            };
            match r {
                Ok(m) => {
                    eprintln!("{m}");
                    cli::EXIT_OK
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    cli::EXIT_USAGE
                }
            }
        }
        Cmd::Graph { file, format, level, common } => cli::graph(
            &RealFs,
            &args(file, common),
            format == GraphFormat::Mermaid,
            level == GraphLevel::Job,
            &mut out,
            &mut std::io::stderr(),
        ),
    };
    let _ = out.flush();
    ExitCode::from(code)
}
