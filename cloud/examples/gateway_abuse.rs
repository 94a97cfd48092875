//! The gateway-under-abuse benchmark without the daemon binary:
//! `cargo run -p cloud --example gateway_abuse -- [SESSIONS ROUNDS SILENT SLOW MALFORMED FLOODS]`
//! prints the JSON report (`firstword bench gateway-abuse --json` prints the same).

fn main() {
    let n: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let d = cloud::bench_abuse::AbuseSpec::default();
    let get = |i: usize, dflt: usize| n.get(i).copied().unwrap_or(dflt);
    let spec = cloud::bench_abuse::AbuseSpec {
        sessions: get(0, d.sessions).max(1),
        rounds: get(1, d.rounds).max(1),
        silent: get(2, d.silent),
        slow_readers: get(3, d.slow_readers),
        malformed: get(4, d.malformed),
        bad_token_floods: get(5, d.bad_token_floods),
    };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    match rt.block_on(cloud::bench_abuse::gateway_abuse(spec)) {
        Ok(r) => println!("{}", serde_json::to_string_pretty(&r).unwrap_or_default()),
        Err(e) => {
            eprintln!("gateway abuse bench: {e}");
            std::process::exit(1);
        }
    }
}
