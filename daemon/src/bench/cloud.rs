//! `firstword bench cloud`: what the gateway itself adds — `n` concurrent streaming sessions
//! on one in-process gateway with a scripted instant backend, so the first-delta time is the
//! gateway's overhead (the backend's first token is immediate).

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
}

pub fn run(sessions: usize, json: bool) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let spread = rt.block_on(cloud::bench::gateway_overhead(sessions)).context("gateway overhead bench")?;
    let burst = rt.block_on(cloud::bench::gateway_overhead_burst(sessions)).context("gateway burst bench")?;
    let goal_met = spread.errors == 0 && spread.first_delta_p99_ms <= 5.0;
    let report = Report { bench: "cloud", spread, burst, goal_met };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for (name, r) in [("spread", &report.spread), ("burst", &report.burst)] {
            println!(
                "{name:<6} {} sessions, {} requests, {} errors: first delta p50 {:.2} ms, p99 {:.2} ms",
                r.sessions, r.requests, r.errors, r.first_delta_p50_ms, r.first_delta_p99_ms
            );
        }
    }
    Ok(())
}
