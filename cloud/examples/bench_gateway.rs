//! `cargo run --release -p cloud --example bench_gateway [N_SESSIONS]` — prints the
//! gateway overhead report (JSON) for N concurrent sessions (default 200);
//! `--burst` sends each round's requests all at once.

#[tokio::main]
async fn main() {
    let n = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(200);
    let burst = std::env::args().any(|a| a == "--burst");
    let r = if burst { cloud::bench::gateway_overhead_burst(n).await } else { cloud::bench::gateway_overhead(n).await };
    match r {
        Ok(r) => println!("{}", serde_json::to_string_pretty(&r).unwrap_or_default()),
        Err(e) => {
            eprintln!("bench failed: {e}");
            std::process::exit(1);
        }
    }
}
