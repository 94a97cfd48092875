//! Gateway overhead benchmark (a helper, not a test): how much latency does the
//! gateway add on top of the backend?
//!
//! A gateway with an *instant* scripted backend runs on 127.0.0.1; `n_sessions`
//! clients connect and stay connected; in each of [`ROUNDS`] rounds every session
//! sends one `continue` at a random moment within [`ARRIVAL_SPREAD_MS`] (devices
//! do not ask in lockstep).
//!
//! The overhead of a request is *the client's first `delta`* minus *the backend's
//! first token*: the scripted backend records the instant it yields its first delta
//! ([`ScriptedBackend::record_first_tokens`]) and the client the instant the first
//! `delta` frame arrives, on the same monotonic clock (one process). That span is
//! everything the gateway puts between a model and a device on the way back:
//! filtering, scheduling, framing, the WebSocket write and loopback (the clients
//! share the machine). The full `continue` → first `delta` round trip is reported
//! too; with an instant backend it adds the request path (parse, admission,
//! starting the backend). Target at 200 sessions: 0 errors, overhead p99 ≤ 5 ms.
//! [`gateway_overhead_burst`] instead sends all requests of a round at the same
//! instant (a worst case: it measures queueing of n requests).

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use tokio::sync::Barrier;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::backend::scripted::{ScriptedBackend, ScriptedConfig};
use crate::backend::BackendConfig;
use crate::error::CloudError;
use crate::gateway::{spawn_with_backend, GatewayConfig};
use crate::protocol::{ClientFrame, ContinueRequest, Message, RecoveryMode, RequestId, ServerFrame, PROTOCOL_VERSION};

/// Rounds of requests per benchmark run (one request per session per round).
pub const ROUNDS: usize = 5;

/// Window over which the sessions' requests of one round arrive, ms.
pub const ARRIVAL_SPREAD_MS: u64 = 250;

/// Result of [`gateway_overhead`]. Latencies in ms.
#[derive(Debug, Clone, Serialize)]
pub struct OverheadReport {
    /// Concurrent sessions.
    pub sessions: usize,
    /// Requests measured (`sessions × ROUNDS`).
    pub requests: usize,
    /// Failed connects, error frames, missing or wrong replies, requests whose
    /// first token the backend did not record.
    pub errors: usize,
    /// Gateway overhead: client's first `delta` − backend's first token, median, ms.
    pub overhead_p50_ms: f64,
    /// Same, 99th percentile, ms.
    pub overhead_p99_ms: f64,
    /// Same, maximum, ms.
    pub overhead_max_ms: f64,
    /// Backend's own time to first token (stream requested → first delta yielded),
    /// 99th percentile, ms; ≈ 0 for the instant backend (a sanity check).
    pub backend_first_token_p99_ms: f64,
    /// `continue` sent → first `delta` received (round trip, request path
    /// included), median, ms.
    pub first_delta_p50_ms: f64,
    /// Same, 99th percentile, ms.
    pub first_delta_p99_ms: f64,
    /// Same, maximum, ms.
    pub first_delta_max_ms: f64,
    /// `continue` sent → `done` received, median, ms.
    pub done_p50_ms: f64,
    /// Same, 99th percentile, ms.
    pub done_p99_ms: f64,
    /// Window over which each round's requests were spread, ms (0 = burst).
    pub arrival_spread_ms: u64,
    /// Whole run, ms.
    pub wall_ms: f64,
    /// Whether the target (0 errors, overhead p99 ≤ [`TARGET_P99_MS`]) was met.
    pub meets_target: bool,
}

/// The overhead goal: p99 of (client first delta − backend first token), ms.
pub const TARGET_P99_MS: f64 = 5.0;

/// Client-side times of one request.
pub(crate) struct Sample {
    pub(crate) id: RequestId,
    pub(crate) sent: Instant,
    pub(crate) first_delta: Instant,
    pub(crate) done: Instant,
}

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

pub(crate) fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Run the benchmark with `n_sessions` concurrent sessions, requests spread over
/// [`ARRIVAL_SPREAD_MS`] per round (see module docs).
pub async fn gateway_overhead(n_sessions: usize) -> Result<OverheadReport, CloudError> {
    run(n_sessions, ARRIVAL_SPREAD_MS).await
}

/// Like [`gateway_overhead`] but every session sends at the same instant.
pub async fn gateway_overhead_burst(n_sessions: usize) -> Result<OverheadReport, CloudError> {
    run(n_sessions, 0).await
}

async fn run(n_sessions: usize, spread_ms: u64) -> Result<OverheadReport, CloudError> {
    let token = "bench-token";
    let mut config = GatewayConfig::new("127.0.0.1:0", token, BackendConfig::Scripted(ScriptedConfig::default()));
    config.max_sessions = n_sessions + 16;
    // Every simulated device connects from 127.0.0.1 and sends back to back.
    config.max_connections_per_ip = 0;
    config.requests_per_s = 1000.0;
    config.request_burst = 1000;
    let backend = ScriptedBackend::fixed(" Paris, on the Seine.").record_first_tokens();
    let gw = spawn_with_backend(config, Arc::new(backend.clone())).await?;
    let url = gw.url();
    let t0 = Instant::now();
    let barrier = Arc::new(Barrier::new(n_sessions));
    let mut tasks = Vec::with_capacity(n_sessions);
    for s in 0..n_sessions {
        let (url, barrier) = (url.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move { one_session(s, &url, token, barrier, spread_ms).await }));
    }
    let (mut samples, mut errors) = (Vec::new(), 0usize);
    for t in tasks {
        match t.await {
            Ok((s, e)) => {
                samples.extend(s);
                errors += e;
            }
            Err(_) => errors += ROUNDS,
        }
    }
    gw.shutdown().await;
    let (mut overhead, mut backend_ttft, mut first, mut done) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for s in &samples {
        first.push(ms(s.first_delta - s.sent));
        done.push(ms(s.done - s.sent));
        match backend.first_token_times(s.id) {
            Some(b) => {
                overhead.push(ms(s.first_delta.saturating_duration_since(b.first_token)));
                backend_ttft.push(ms(b.first_token - b.started));
            }
            None => errors += 1,
        }
    }
    for v in [&mut overhead, &mut backend_ttft, &mut first, &mut done] {
        v.sort_by(f64::total_cmp);
    }
    let p99 = percentile(&overhead, 0.99);
    Ok(OverheadReport {
        sessions: n_sessions,
        requests: n_sessions * ROUNDS,
        errors,
        overhead_p50_ms: percentile(&overhead, 0.5),
        overhead_p99_ms: p99,
        overhead_max_ms: overhead.last().copied().unwrap_or(f64::NAN),
        backend_first_token_p99_ms: percentile(&backend_ttft, 0.99),
        first_delta_p50_ms: percentile(&first, 0.5),
        first_delta_p99_ms: percentile(&first, 0.99),
        first_delta_max_ms: first.last().copied().unwrap_or(f64::NAN),
        done_p50_ms: percentile(&done, 0.5),
        done_p99_ms: percentile(&done, 0.99),
        arrival_spread_ms: spread_ms,
        wall_ms: ms(t0.elapsed()),
        meets_target: errors == 0 && p99 <= TARGET_P99_MS,
    })
}

/// One benchmark client: returns (samples of completed requests, errors).
async fn one_session(s: usize, url: &str, token: &str, barrier: Arc<Barrier>, spread_ms: u64) -> (Vec<Sample>, usize) {
    session_rounds(s, url, token, barrier, spread_ms, ROUNDS).await
}

/// A client doing `rounds` rounds of one request each (see [`one_session`]).
pub(crate) async fn session_rounds(
    s: usize,
    url: &str,
    token: &str,
    barrier: Arc<Barrier>,
    spread_ms: u64,
    rounds: usize,
) -> (Vec<Sample>, usize) {
    let (mut samples, mut errors) = (Vec::new(), 0);
    let ws = async {
        let (mut ws, _) = tokio_tungstenite::connect_async_with_config(url, None, true).await.ok()?;
        let hello = ClientFrame::Hello { version: PROTOCOL_VERSION, token: token.into() };
        ws.send(WsMessage::text(hello.encode())).await.ok()?;
        match ws.next().await {
            Some(Ok(WsMessage::Text(t))) if matches!(ServerFrame::decode(t.as_str()), Ok(ServerFrame::Ready { .. })) => Some(ws),
            _ => None,
        }
    }
    .await;
    // Every session reaches the barrier once per round, even a failed one, so the others never hang.
    let Some(mut ws) = ws else {
        for _ in 0..rounds {
            barrier.wait().await;
        }
        return (samples, rounds);
    };
    for round in 0..rounds {
        barrier.wait().await;
        if spread_ms > 0 {
            let wait = rand::Rng::random_range(&mut rand::rng(), 0..spread_ms * 1000);
            tokio::time::sleep(std::time::Duration::from_micros(wait)).await;
        }
        let id = (s * rounds + round) as RequestId;
        let req = ContinueRequest {
            id,
            messages: vec![Message::user("What is the capital of France?")],
            opener: "The capital of France is".into(),
            opener_complete: false,
            mode: RecoveryMode::Natural,
            max_tokens: 32,
        };
        let sent = Instant::now();
        if ws.send(WsMessage::text(ClientFrame::Continue(req).encode())).await.is_err() {
            errors += 1;
            continue;
        }
        let mut first_delta: Option<Instant> = None;
        loop {
            match ws.next().await {
                Some(Ok(WsMessage::Text(t))) => match ServerFrame::decode(t.as_str()) {
                    Ok(ServerFrame::Delta { .. }) if first_delta.is_none() => {
                        first_delta = Some(Instant::now());
                    }
                    Ok(ServerFrame::Done { .. }) => {
                        match first_delta {
                            Some(first_delta) => samples.push(Sample { id, sent, first_delta, done: Instant::now() }),
                            None => errors += 1,
                        }
                        break;
                    }
                    Ok(ServerFrame::Error { .. }) | Err(_) => {
                        errors += 1;
                        break;
                    }
                    Ok(_) => {}
                },
                Some(Ok(_)) => {}
                _ => {
                    errors += 1;
                    break;
                }
            }
        }
    }
    let _ = ws.close(None).await;
    (samples, errors)
}
