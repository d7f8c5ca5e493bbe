//! The `bpsc` command line.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use bpsc::check::{self, Options};
use bpsc::cli;
use bpsc::fs::RealFs;

#[derive(Parser)]
#[command(
    name = "bpsc",
    version,
    about = "Batch production workflow compiler: .bps campaigns to Pegasus, HTCondor, Slurm and Nextflow"
)]
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let code = match cli.cmd {
        Cmd::Check {
            files,
            format,
            deny,
            sets,
            color,
        } => {
            let color = match color {
                Color::Always => true,
                Color::Never => false,
                Color::Auto => {
                    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
                }
            };
            let fmt = match format {
                Format::Human => cli::OutFormat::Human { color },
                Format::Json => cli::OutFormat::Json,
                Format::Sarif => cli::OutFormat::Sarif,
                Format::Junit => cli::OutFormat::Junit,
            };
            cli::check_files(
                &RealFs,
                &files,
                &Options { sets },
                fmt,
                deny.is_some(),
                &mut out,
            )
        }
        Cmd::Config {
            file,
            format,
            explain,
            sets,
            campaign,
        } => cli::config(
            &RealFs,
            &file,
            &Options { sets },
            format == Format::Json,
            explain.as_deref(),
            campaign.as_deref(),
            &mut out,
        ),
        Cmd::Explain { code } => cli::explain(code.as_deref(), &mut out),
    };
    let _ = out.flush();
    let _ = check::keys::KEYS.len();
    ExitCode::from(code)
}
