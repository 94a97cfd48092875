//! `firstword bench gateway-abuse`: the gateway under hostile clients (silent TCP
//! connections, slow readers, malformed and oversized frames, bad-token floods) while
//! well-behaved sessions stream; `cloud::bench_abuse` has the details.

use anyhow::{Context, Result};
use clap::Args;

#[derive(Args)]
pub struct AbuseArgs {
    /// Print the JSON report (otherwise a summary).
    #[arg(long)]
    json: bool,
    /// Well-behaved streaming sessions.
    #[arg(long, default_value_t = 50)]
    sessions: usize,
    /// Rounds of one request per well-behaved session (≈ 0.3 s each).
    #[arg(long, default_value_t = 30)]
    rounds: usize,
    /// Silent TCP connections.
    #[arg(long, default_value_t = 1000)]
    silent: usize,
    /// Sessions that stop reading.
    #[arg(long, default_value_t = 100)]
    slow_readers: usize,
    /// Senders of malformed and oversized frames.
    #[arg(long, default_value_t = 100)]
    malformed: usize,
    /// Bad-token floods.
    #[arg(long, default_value_t = 50)]
    bad_token_floods: usize,
}

pub fn run(a: &AbuseArgs) -> Result<()> {
    let spec = cloud::bench_abuse::AbuseSpec {
        sessions: a.sessions.max(1),
        rounds: a.rounds.max(1),
        silent: a.silent,
        slow_readers: a.slow_readers,
        malformed: a.malformed,
        bad_token_floods: a.bad_token_floods,
    };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let report = rt.block_on(cloud::bench_abuse::gateway_abuse(spec)).context("gateway abuse bench")?;
    if a.json {
        println!("{}", crate::provenance::report_json(&report)?);
    } else {
        println!(
            "{} well-behaved requests, {} errors; overhead p50 {:.2} ms, p99 {:.2} ms (goal ≤ {} ms)",
            report.requests,
            report.errors,
            report.overhead_p50_ms,
            report.overhead_p99_ms,
            cloud::bench_abuse::TARGET_ABUSE_P99_MS
        );
        println!(
            "RSS {} → peak {} → {} KiB; descriptors {} → peak {} → {}",
            report.before.rss_kib,
            report.peak.rss_kib,
            report.after.rss_kib,
            report.before.open_fds,
            report.peak.open_fds,
            report.after.open_fds
        );
        println!("attacks: {:?}", report.attacks);
        println!("gateway: {:?}", report.gateway);
        println!("goal: {}", if report.meets_target { "met" } else { "not met" });
    }
    Ok(())
}
