//! `firstword bench cloud`: what the gateway itself adds — `n` concurrent streaming sessions
//! on one in-process gateway with a scripted instant backend. The overhead of a request is
//! the client's first delta minus the instant the backend yielded its first token (both on
//! this process's monotonic clock); `cloud::bench` has the details.

use anyhow::{Context, Result};
use serde::Serialize;

#[derive(Serialize)]
struct Report {
    bench: &'static str,
    /// Requests spread over a short arrival window (the realistic case).
    spread: cloud::bench::OverheadReport,
    /// All sessions send at the same instant (a worst case).
    burst: cloud::bench::OverheadReport,
    /// The goal: 0 errors and p99 overhead ≤ 5 ms for the spread case.
    goal_met: bool,
    /// The goal's p99 overhead bound, ms.
    goal_p99_ms: f64,
}

pub fn run(sessions: usize, json: bool) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let spread = rt.block_on(cloud::bench::gateway_overhead(sessions)).context("gateway overhead bench")?;
    let burst = rt.block_on(cloud::bench::gateway_overhead_burst(sessions)).context("gateway burst bench")?;
    let goal_met = spread.meets_target;
    let goal_p99_ms = cloud::bench::TARGET_P99_MS;
    let report = Report { bench: "cloud", spread, burst, goal_met, goal_p99_ms };
    if json {
        println!("{}", crate::provenance::report_json(&report)?);
    } else {
        for (name, r) in [("spread", &report.spread), ("burst", &report.burst)] {
            println!(
                "{name:<6} {} sessions, {} requests, {} errors: overhead (first delta − backend first token) \
                 p50 {:.2} ms, p99 {:.2} ms; continue → first delta p50 {:.2} ms, p99 {:.2} ms",
                r.sessions, r.requests, r.errors, r.overhead_p50_ms, r.overhead_p99_ms, r.first_delta_p50_ms, r.first_delta_p99_ms
            );
        }
        println!("goal (0 errors, spread p99 overhead ≤ {goal_p99_ms} ms): {}", if report.goal_met { "met" } else { "not met" });
    }
    Ok(())
}
