//! `firstword-lab`: the lab beside the device binary. `bench …` measures the runtime (JSON
//! reports under docs/results; timing goals live here, never in tests) and `eval …` runs the
//! paper's measures on firstword's models. `firstword bench|eval …` runs this binary when it
//! sits beside `firstword`. Built on the `daemon` library; the board and package builds leave
//! it out, so none of its dependencies (BERT, the HTTP judge, zip/gzip readers, plotting)
//! reach a device.

mod bench;
mod eval;
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
}

fn main() -> Result<()> {
    // As in `firstword`: size candle's quantized-matmul pool before any thread exists.
    lm::configure_candle_threads(1);
    let cli = Cli::parse();
    daemon::logging::init("warn");
    let cfg = daemon::config::Config::load_or_default(cli.config.as_deref())?;
    match cli.cmd {
        Cmd::Bench { which } => bench::run(&cfg, which),
        Cmd::Eval { which } => eval::run(&cfg, which),
    }
}
