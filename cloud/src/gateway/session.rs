//! One WebSocket connection: authentication, frame validation, request dispatch.
//!
//! Errors in one session (bad frames, bad token, oversize) are answered with an
//! `error` frame and never touch other sessions. When the client goes away,
//! every request it had in flight is cancelled upstream.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, OwnedSemaphorePermit};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use super::guard::{Bucket, ConnSlot};
use super::request::run_request;
use super::stats::GatewayStats;
use super::Shared;
use crate::backend::CancelToken;
use crate::protocol::{ClientFrame, ErrorCode, FinishReason, RequestId, ServerFrame, PROTOCOL_VERSION};

/// Frames above `max_frame_bytes` but below this multiple are answered with
/// `frame_too_large` and skipped; beyond it the WebSocket layer refuses to
/// buffer them at all and the connection is closed.
const HARD_LIMIT_FACTOR: usize = 16;

/// WebSocket settings for a gateway with the given soft frame limit.
pub(crate) fn ws_config(max_frame_bytes: usize) -> WebSocketConfig {
    let hard = max_frame_bytes.saturating_mul(HARD_LIMIT_FACTOR).max(1 << 20);
    WebSocketConfig::default().max_message_size(Some(hard)).max_frame_size(Some(hard))
}

/// Decrements the active-session gauge however the session ends (even if aborted).
struct ActiveGuard(Arc<Shared>);
impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.stats.sessions_active.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Constant-time comparison so the token cannot be guessed byte by byte from timing.
fn token_matches(given: &str, expected: &str) -> bool {
    let (a, b) = (given.as_bytes(), expected.as_bytes());
    let mut diff = (a.len() ^ b.len()) as u8;
    for i in 0..a.len().max(b.len()) {
        diff |= a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0xff);
    }
    diff == 0
}

fn error(id: Option<RequestId>, code: ErrorCode, message: impl Into<String>) -> ServerFrame {
    ServerFrame::Error { id, code, message: message.into() }
}

/// What the accept loop decided about a connection before its session starts.
pub(crate) struct Admission {
    /// The client's address (logged with failed authentication).
    pub(crate) peer: SocketAddr,
    /// Deadline for the whole handshake (TLS, upgrade, `hello`), from accept.
    pub(crate) deadline: Instant,
    /// The session slot; `None` when the gateway is full: the client then gets
    /// `too_many_sessions` and is closed.
    pub(crate) permit: Option<OwnedSemaphorePermit>,
    /// This connection's place in the per-address count (released on drop).
    pub(crate) _slot: ConnSlot,
    /// For refused connections: their place among the refusals in flight.
    pub(crate) _refusal: Option<OwnedSemaphorePermit>,
}

/// Removes a request from the session's in-flight table however its task ends
/// (normally, cancelled or panicking), so its slot can never leak.
struct InflightSlot {
    map: Arc<Mutex<HashMap<RequestId, CancelToken>>>,
    id: RequestId,
}
impl Drop for InflightSlot {
    fn drop(&mut self) {
        if let Ok(mut m) = self.map.lock() {
            m.remove(&self.id);
        }
    }
}

/// Queue a frame for the client without waiting; `false` when the queue is full
/// (the client is not reading) or the writer is gone: the session then ends.
fn reply(out: &mpsc::Sender<ServerFrame>, frame: ServerFrame) -> bool {
    out.try_send(frame).is_ok()
}

/// Serve one accepted connection (plain TCP, or TLS already negotiated).
pub(crate) async fn run_session<S>(stream: S, shared: Arc<Shared>, adm: Admission)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let peer = adm.peer;
    let cfg = ws_config(shared.config.max_frame_bytes);
    let upgrade = tokio_tungstenite::accept_async_with_config(stream, Some(cfg));
    let ws = match tokio::time::timeout_at(adm.deadline, upgrade).await {
        Ok(Ok(ws)) => ws,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "WebSocket handshake failed");
            return;
        }
        Err(_) => {
            GatewayStats::inc(&shared.stats.sessions_rejected);
            tracing::debug!(%peer, "WebSocket handshake timed out");
            return;
        }
    };
    let (mut sink, mut stream) = ws.split();
    let write_limit = Duration::from_millis(shared.config.write_timeout_ms);
    let Some(_permit) = adm.permit else {
        GatewayStats::inc(&shared.stats.sessions_rejected);
        let f = error(None, ErrorCode::TooManySessions, "gateway is at its session limit; retry later");
        let _ = tokio::time::timeout_at(adm.deadline, async {
            let _ = sink.send(WsMessage::text(f.encode())).await;
            let _ = sink.close().await;
        })
        .await;
        return;
    };

    // All frames go through one writer task so request tasks can send concurrently.
    // The queue is bounded and every socket write has a deadline: a client that
    // stops reading is dropped, and nothing outside its session waits for it.
    let (out_tx, mut out_rx) = mpsc::channel::<ServerFrame>(shared.config.send_queue_frames);
    let (ping_tx, mut ping_rx) = mpsc::channel::<()>(1);
    let mut tasks: JoinSet<()> = JoinSet::new();
    let (closing_tx, mut closing_rx) = mpsc::channel::<()>(1);
    let writer_stats = shared.stats.clone();
    tasks.spawn(async move {
        loop {
            let (msg, fatal) = tokio::select! {
                f = out_rx.recv() => match f {
                    Some(frame) => {
                        // Close the connection after an error that ends the session.
                        let fatal = matches!(
                            &frame,
                            ServerFrame::Error {
                                code: ErrorCode::Unauthorized | ErrorCode::VersionMismatch,
                                ..
                            }
                        );
                        (WsMessage::text(frame.encode()), fatal)
                    }
                    None => break,
                },
                Some(()) = ping_rx.recv() => (WsMessage::Ping(Default::default()), false),
            };
            match tokio::time::timeout(write_limit, sink.send(msg)).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => break,
                Err(_) => {
                    GatewayStats::inc(&writer_stats.slow_readers_dropped);
                    tracing::info!(%peer, "client stopped reading (write deadline passed): session dropped");
                    break;
                }
            }
            if fatal {
                let _ = tokio::time::timeout(write_limit, sink.close()).await;
                break;
            }
        }
        let _ = closing_tx.try_send(());
    });

    let inflight: Arc<Mutex<HashMap<RequestId, CancelToken>>> = Arc::new(Mutex::new(HashMap::new()));
    let mut authed = false;
    let mut _active: Option<ActiveGuard> = None;
    let max_frame = shared.config.max_frame_bytes;
    let ping_every = Duration::from_millis(shared.config.ping_interval_ms);
    let dead_after = ping_every + Duration::from_millis(shared.config.pong_timeout_ms);
    let mut last_inbound = Instant::now();
    let mut pinged = false;
    let mut bucket = Bucket::new(shared.config.requests_per_s, shared.config.request_burst, std::time::Instant::now());

    loop {
        // Before hello: the admission deadline. After: ping when the client has
        // been silent for `ping_interval_ms`, give up `pong_timeout_ms` later.
        let wake = if !authed {
            adm.deadline
        } else if pinged {
            last_inbound + dead_after
        } else {
            last_inbound + ping_every
        };
        let msg = tokio::select! {
            m = stream.next() => m,
            _ = tokio::time::sleep_until(wake) => {
                if !authed {
                    GatewayStats::inc(&shared.stats.sessions_rejected);
                    reply(&out_tx, error(None, ErrorCode::NotReady, "no valid hello in time"));
                    break;
                }
                if pinged {
                    GatewayStats::inc(&shared.stats.half_open_closed);
                    tracing::info!(%peer, "no frame or pong in time: half-open session closed");
                    break;
                }
                pinged = true;
                let _ = ping_tx.try_send(());
                continue;
            }
            _ = closing_rx.recv() => break,
            Some(_) = tasks.join_next(), if tasks.len() > 1 => continue,
        };
        last_inbound = Instant::now();
        pinged = false;
        let text = match msg {
            None | Some(Ok(WsMessage::Close(_))) => break,
            Some(Err(e)) => {
                // Typically a frame beyond the hard limit: report, then give up on
                // this connection (the stream cannot be resynchronised).
                GatewayStats::inc(&shared.stats.protocol_errors);
                reply(&out_tx, error(None, ErrorCode::FrameTooLarge, format!("connection error: {e}")));
                break;
            }
            Some(Ok(WsMessage::Text(t))) => t,
            Some(Ok(WsMessage::Binary(_))) => {
                GatewayStats::inc(&shared.stats.protocol_errors);
                let f = error(None, ErrorCode::BadFrame, "binary frames are not part of the protocol");
                if !reply(&out_tx, f) {
                    break;
                }
                continue;
            }
            // Ping/pong control frames are answered by the WebSocket layer; a pong
            // (like any frame) proves the peer is alive.
            Some(Ok(_)) => continue,
        };
        if text.len() > max_frame {
            GatewayStats::inc(&shared.stats.protocol_errors);
            let m = format!("frame of {} bytes exceeds max_frame_bytes {max_frame}", text.len());
            if !reply(&out_tx, error(None, ErrorCode::FrameTooLarge, m)) {
                break;
            }
            continue;
        }
        let frame = match ClientFrame::decode(text.as_str()) {
            Ok(f) => f,
            Err(e) => {
                GatewayStats::inc(&shared.stats.protocol_errors);
                if !reply(&out_tx, error(None, e.code(), e.to_string())) {
                    break;
                }
                continue;
            }
        };
        let sent = match frame {
            ClientFrame::Hello { version, token } => {
                if authed {
                    reply(&out_tx, error(None, ErrorCode::NotReady, "hello already received"))
                } else if version != PROTOCOL_VERSION {
                    GatewayStats::inc(&shared.stats.sessions_rejected);
                    GatewayStats::inc(&shared.stats.auth_failures);
                    shared.auth.record(peer.ip(), std::time::Instant::now());
                    tracing::warn!(%peer, version, "hello with a wrong protocol version");
                    let m = format!("server speaks protocol version {PROTOCOL_VERSION}, client sent {version}");
                    reply(&out_tx, error(None, ErrorCode::VersionMismatch, m))
                } else if !token_matches(&token, &shared.config.token) {
                    GatewayStats::inc(&shared.stats.sessions_rejected);
                    GatewayStats::inc(&shared.stats.auth_failures);
                    shared.auth.record(peer.ip(), std::time::Instant::now());
                    tracing::warn!(%peer, "hello with a bad token");
                    reply(&out_tx, error(None, ErrorCode::Unauthorized, "bad token"))
                } else {
                    authed = true;
                    shared.stats.sessions_active.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    GatewayStats::inc(&shared.stats.sessions_total);
                    _active = Some(ActiveGuard(shared.clone()));
                    let ready = ServerFrame::Ready {
                        version: PROTOCOL_VERSION,
                        backend: shared.backend.kind().to_string(),
                        max_frame_bytes: max_frame,
                    };
                    reply(&out_tx, ready)
                }
            }
            _ if !authed => {
                GatewayStats::inc(&shared.stats.protocol_errors);
                reply(&out_tx, error(None, ErrorCode::NotReady, "send hello first"))
            }
            ClientFrame::Ping { nonce } => reply(&out_tx, ServerFrame::Pong { nonce }),
            ClientFrame::Cancel { id } => {
                let token = inflight.lock().ok().and_then(|m| m.get(&id).cloned());
                match token {
                    Some(t) => {
                        t.cancel();
                        true
                    }
                    None => reply(&out_tx, error(Some(id), ErrorCode::UnknownId, "no such request in flight")),
                }
            }
            ClientFrame::Continue(mut req) => {
                let id = req.id;
                let cancel = CancelToken::new();
                let admitted = match inflight.lock() {
                    Ok(m) if m.contains_key(&id) => Err((ErrorCode::DuplicateId, "id already in flight")),
                    Ok(m) if m.len() >= shared.config.max_requests_per_session => {
                        Err((ErrorCode::TooManyRequests, "too many requests in flight on this connection"))
                    }
                    Ok(_) if !bucket.take(std::time::Instant::now()) => {
                        Err((ErrorCode::RateLimited, "too many requests per second on this connection"))
                    }
                    Ok(mut m) => {
                        m.insert(id, cancel.clone());
                        Ok(())
                    }
                    Err(_) => Err((ErrorCode::Internal, "session state poisoned")),
                };
                if let Err((code, m)) = admitted {
                    if code == ErrorCode::RateLimited {
                        GatewayStats::inc(&shared.stats.rate_limited);
                    } else {
                        GatewayStats::inc(&shared.stats.protocol_errors);
                    }
                    if !reply(&out_tx, error(Some(id), code, m)) {
                        break;
                    }
                    continue;
                }
                // The server's cap, whatever the client asked for.
                req.max_tokens = req.max_tokens.min(shared.config.max_tokens_cap);
                GatewayStats::inc(&shared.stats.requests_total);
                let (shared2, out2) = (shared.clone(), out_tx.clone());
                let slot = InflightSlot { map: inflight.clone(), id };
                tasks.spawn(async move {
                    let run = run_request(req, cancel, shared2.clone(), out2.clone());
                    if AssertUnwindSafe(run).catch_unwind().await.is_err() {
                        // A bug in this request: end it (and only it) with an error.
                        GatewayStats::inc(&shared2.stats.requests_panicked);
                        GatewayStats::inc(&shared2.stats.requests_failed);
                        tracing::error!(id, "request task panicked");
                        drop(slot);
                        let _ = out2.try_send(error(Some(id), ErrorCode::Internal, "internal error while serving this request"));
                        let _ = out2.try_send(ServerFrame::Done {
                            id,
                            finish_reason: FinishReason::Error,
                            usage: Default::default(),
                            timings_ms: Default::default(),
                        });
                    }
                });
                true
            }
        };
        if !sent {
            // The client does not read what it is sent: no point serving it.
            GatewayStats::inc(&shared.stats.slow_readers_dropped);
            tracing::info!(%peer, "client stopped reading (send queue full): session dropped");
            break;
        }
    }
    // The client is gone (or was refused): stop everything it had in flight.
    if let Ok(m) = inflight.lock() {
        for t in m.values() {
            t.cancel();
        }
    }
    drop(out_tx);
    // Let request tasks record their cancellation and the writer flush a final
    // error frame, but never wait long on a dead peer.
    let _ = tokio::time::timeout(Duration::from_millis(500), async { while tasks.join_next().await.is_some() {} }).await;
}

#[cfg(test)]
mod tests {
    use super::token_matches;

    #[test]
    fn token_comparison() {
        assert!(token_matches("secret", "secret"));
        assert!(!token_matches("secreT", "secret"));
        assert!(!token_matches("secret1", "secret"));
        assert!(!token_matches("", "secret"));
    }
}
