//! One `continue` request inside a session: backend stream → pacing → seam/repair
//! filter → `delta` / `repair` / `done` frames.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::latency::Pacer;
use super::stats::GatewayStats;
use super::Shared;
use crate::backend::{BackendError, BackendEvent, BackendRequest, CancelToken};
use crate::continuation::{ContinuationFilter, FilterEvent};
use crate::protocol::{ContinueRequest, ErrorCode, FinishReason, RecoveryMode, RequestId, ServerFrame, Timings, Usage};

/// Run one request to completion, sending frames to `out`. Returns when `done`
/// was sent or the connection is gone.
pub(crate) async fn run_request(req: ContinueRequest, cancel: CancelToken, shared: Arc<Shared>, out: mpsc::Sender<ServerFrame>) {
    let start = Instant::now();
    let limit = Duration::from_millis(shared.config.write_timeout_ms);
    let out = Out { tx: &out, limit };
    let id = req.id;
    let mode = req.mode;
    let mut pacer = Pacer::new(start, shared.config.latency.as_ref());
    let mut filter = ContinuationFilter::new(&req.opener);
    let mut stream = shared.backend.stream(BackendRequest { request: req, cancel: cancel.clone() });
    let mut first_delta_ms: Option<f64> = None;
    let mut usage = Usage::default();
    let mut injected_ms = 0.0;
    let mut repaired = false;

    let finish = loop {
        let item = tokio::select! {
            biased;
            _ = cancel.cancelled() => break FinishReason::Cancelled,
            item = stream.next() => item,
        };
        match item {
            None => break FinishReason::Stop,
            Some(Ok(BackendEvent::Delta(text))) => {
                let due = pacer.next_release();
                let now = Instant::now();
                if due > now {
                    injected_ms += (due - now).as_secs_f64() * 1e3;
                    tokio::select! {
                        biased;
                        _ = cancel.cancelled() => break FinishReason::Cancelled,
                        _ = tokio::time::sleep_until(due.into()) => {}
                    }
                }
                pacer.released(Instant::now());
                if !send_events(&out, id, mode, start, filter.push(&text), &mut first_delta_ms, &mut repaired).await {
                    cancel.cancel();
                    break FinishReason::Cancelled;
                }
            }
            Some(Ok(BackendEvent::Finished { reason, usage: u })) => {
                usage = u;
                break reason;
            }
            Some(Err(e)) => {
                let code = match e {
                    BackendError::Busy(_) => ErrorCode::Busy,
                    _ => ErrorCode::Backend,
                };
                tracing::warn!(id, error = %e, "backend failed");
                out.send(ServerFrame::Error { id: Some(id), code, message: e.to_string() }).await;
                break FinishReason::Error;
            }
        }
    };
    // Dropping the stream stops the backend if it is still generating.
    drop(stream);
    if finish != FinishReason::Cancelled {
        // Release text the filter held back (end of the seam, a partial marker).
        send_events(&out, id, mode, start, filter.finish(), &mut first_delta_ms, &mut repaired).await;
    }
    if repaired {
        GatewayStats::inc(&shared.stats.repairs);
    }
    match finish {
        FinishReason::Stop | FinishReason::Length => GatewayStats::inc(&shared.stats.requests_completed),
        FinishReason::Cancelled => GatewayStats::inc(&shared.stats.requests_cancelled),
        FinishReason::Error => GatewayStats::inc(&shared.stats.requests_failed),
    }
    let timings_ms = Timings { first_delta_ms, total_ms: start.elapsed().as_secs_f64() * 1e3, injected_ms };
    out.send(ServerFrame::Done { id, finish_reason: finish, usage, timings_ms }).await;
}

/// The session's send queue as seen by one request: a full queue is waited on for
/// at most the write deadline, after which the client counts as gone.
#[derive(Clone, Copy)]
struct Out<'a> {
    tx: &'a mpsc::Sender<ServerFrame>,
    limit: Duration,
}

impl Out<'_> {
    /// Queue `frame`; `false` if the connection is gone or not reading.
    async fn send(&self, frame: ServerFrame) -> bool {
        self.tx.send_timeout(frame, self.limit).await.is_ok()
    }
}

/// Send filter events as frames; `false` if the connection is gone. Records the
/// first-delta time and whether a repair was sent.
async fn send_events(
    out: &Out<'_>,
    id: RequestId,
    mode: RecoveryMode,
    start: Instant,
    events: Vec<FilterEvent>,
    first: &mut Option<f64>,
    repaired: &mut bool,
) -> bool {
    for e in events {
        let frame = match e {
            FilterEvent::Text(text) => {
                if text.is_empty() {
                    continue;
                }
                if first.is_none() {
                    *first = Some(start.elapsed().as_secs_f64() * 1e3);
                }
                ServerFrame::Delta { id, text }
            }
            FilterEvent::Repair => {
                *repaired = true;
                ServerFrame::Repair { id, mode }
            }
        };
        if !out.send(frame).await {
            return false;
        }
    }
    true
}
