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
    /// Measure with this process's own allocator settings instead of the gateway service's
    /// (`GLIBC_TUNABLES` of configs/firstword-cloud.service).
    #[arg(long)]
    default_allocator: bool,
}

/// glibc reads its tunables at start-up only: without them (and without
/// `--default-allocator`) the bench runs itself again with the service unit's, so that the
/// RSS it reports is the deployed gateway's. Returns the child's exit status, or None to
/// measure in this process.
fn rerun_as_deployed(a: &AbuseArgs) -> Result<Option<std::process::ExitStatus>> {
    if a.default_allocator || std::env::var_os("GLIBC_TUNABLES").is_some() || !cfg!(target_env = "gnu") {
        return Ok(None);
    }
    let exe = std::env::current_exe().context("locating this binary to run it again")?;
    let status = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env("GLIBC_TUNABLES", cloud::gateway::SERVICE_GLIBC_TUNABLES)
        .status()
        .context("running the bench again with the gateway service's GLIBC_TUNABLES")?;
    Ok(Some(status))
}

pub fn run(a: &AbuseArgs) -> Result<()> {
    if let Some(status) = rerun_as_deployed(a)? {
        anyhow::ensure!(status.success(), "gateway abuse bench: {status}");
        return Ok(());
    }
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
            "RSS {} → peak {} → {} KiB (GLIBC_TUNABLES {:?}); descriptors {} → peak {} → {}",
            report.before.rss_kib,
            report.peak.rss_kib,
            report.after.rss_kib,
            report.glibc_tunables.as_deref().unwrap_or("unset"),
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
