//! `firstword`: the voice daemon's command line.
//!
//! Subcommands: `asr` (transcribe a WAV), `say` (speak text to a WAV), `bench` (JSON
//! benchmarks), `check-config` (validate a TOML config).

mod bench;
mod cmd_asr;
mod cmd_say;
mod config;
mod rss;
mod turn;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "firstword", version, about = "Instant voice answers: a micro LM speaks first, the cloud continues")]
struct Cli {
    /// Config file (TOML). Default: configs/firstword.toml if it exists, else built-in defaults.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Transcribe a WAV file (any rate, 1-8 channels) with Whisper.
    Asr {
        file: PathBuf,
        /// Print JSON: text, segments (ms), timings.
        #[arg(long)]
        json: bool,
    },
    /// Speak TEXT with the Piper voice into a WAV file.
    Say {
        text: String,
        #[arg(long)]
        out: PathBuf,
    },
    /// Run a benchmark and print its report.
    Bench {
        #[command(subcommand)]
        which: bench::Which,
    },
    /// Validate a config file; errors name the offending key.
    CheckConfig { file: PathBuf },
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::CheckConfig { file } => {
            config::Config::load(&file)?;
            println!("{}: ok", file.display());
            Ok(())
        }
        cmd => {
            let cfg = config::Config::load_or_default(cli.config.as_deref())?;
            match cmd {
                Cmd::Asr { file, json } => cmd_asr::run(&cfg, &file, json),
                Cmd::Say { text, out } => cmd_say::run(&cfg, &text, &out),
                Cmd::Bench { which } => bench::run(&cfg, which),
                Cmd::CheckConfig { .. } => unreachable!("handled above"),
            }
        }
    }
}
