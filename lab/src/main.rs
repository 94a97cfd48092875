//! `firstword-lab`: the lab beside the device binary. `bench …` measures the runtime (JSON
//! reports under docs/results; timing goals live here, never in tests), `eval …` runs the
//! paper's measures on firstword's models, and `lm …` holds the model tools (development
//! checkpoint, GGUF export). `firstword bench|eval|lm …` runs this binary when it sits
//! beside `firstword`. Built on the `daemon` library; the board and package builds leave
//! it out, so none of its dependencies (BERT, the HTTP judge, zip/gzip readers, plotting)
//! reach a device.

mod bench;
mod eval;
mod lm_tools;
mod provenance;
mod rss;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "firstword-lab", version, about = "firstword's lab: benchmarks and evaluations")]
struct Cli {
    /// Config file (TOML). Default: configs/firstword.toml if it exists, else built-in defaults.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a benchmark and print its report.
    Bench {
        #[command(subcommand)]
        which: bench::Which,
    },
    /// Evaluation: the paper's measures on firstword's models (JSON with --json; reports
    /// under docs/results).
    Eval {
        #[command(subcommand)]
        which: eval::EvalCmd,
    },
    /// μLM model tools: a development checkpoint, the GGUF export of a trained one.
    Lm {
        #[command(subcommand)]
        which: lm_tools::LmCmd,
    },
}

fn main() -> Result<()> {
    // As in `firstword`: size candle's quantized-matmul pool before any thread exists.
    lm::configure_candle_threads(1);
    let cli = Cli::parse();
    daemon::logging::init("warn");
    if let Cmd::Lm { which } = cli.cmd {
        return lm_tools::run(which);
    }
    let cfg = daemon::config::Config::load_or_default(cli.config.as_deref())?;
    match cli.cmd {
        Cmd::Bench { which } => bench::run(&cfg, cli.config.as_deref(), which),
        Cmd::Eval { which } => eval::run(&cfg, which),
        Cmd::Lm { .. } => unreachable!("handled above: the model tools need no config"),
    }
}
