//! `firstword-setup`: the same command as `firstword setup`, without the rest of the daemon,
//! so `scripts/setup.sh` can fetch the model files before the heavy crates are built.

use clap::Parser;

#[derive(Parser)]
#[command(name = "firstword-setup", about = "Fetch, verify and convert firstword's model files (configs/assets.toml)")]
struct Cli {
    #[command(flatten)]
    args: assets::cli::SetupArgs,
}

fn main() -> std::process::ExitCode {
    match assets::cli::run(&Cli::parse().args) {
        Ok(_) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("setup: ERROR: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
