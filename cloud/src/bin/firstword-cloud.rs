//! `firstword-cloud [CONFIG]` — run the continuation gateway (default config:
//! `configs/cloud.toml`). Log level via `RUST_LOG` (default `info`).

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let path = std::env::args().nth(1).unwrap_or_else(|| "configs/cloud.toml".to_string());
    let config = match cloud::gateway::GatewayConfig::from_file(&path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("firstword-cloud: {e}");
            return ExitCode::from(2);
        }
    };
    match cloud::gateway::serve(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("firstword-cloud: {e}");
            ExitCode::FAILURE
        }
    }
}
