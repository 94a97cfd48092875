//! One WebSocket connection: authentication, frame validation, request dispatch.
//!
//! Errors in one session (bad frames, bad token, oversize) are answered with an
//! `error` frame and never touch other sessions. When the client goes away,
//! every request it had in flight is cancelled upstream.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, OwnedSemaphorePermit};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use super::request::run_request;
use super::stats::GatewayStats;
use super::Shared;
use crate::backend::CancelToken;
use crate::protocol::{ClientFrame, ErrorCode, RequestId, ServerFrame, PROTOCOL_VERSION};

/// Outgoing frames buffered per session before request tasks wait.
const OUT_QUEUE: usize = 256;

/// Frames above `max_frame_bytes` but below this multiple are answered with
/// `frame_too_large` and skipped; beyond it the WebSocket layer refuses to
/// buffer them at all and the connection is closed.
const HARD_LIMIT_FACTOR: usize = 16;

/// WebSocket settings for a gateway with the given soft frame limit.
pub(crate) fn ws_config(max_frame_bytes: usize) -> WebSocketConfig {
    let hard = max_frame_bytes
        .saturating_mul(HARD_LIMIT_FACTOR)
        .max(1 << 20);
    WebSocketConfig::default()
        .max_message_size(Some(hard))
        .max_frame_size(Some(hard))
}

/// Decrements the active-session gauge however the session ends (even if aborted).
struct ActiveGuard(Arc<Shared>);
impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0
            .stats
            .sessions_active
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
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
    ServerFrame::Error {
        id,
        code,
        message: message.into(),
    }
}

/// Serve one accepted connection (plain TCP, or TLS already negotiated). `permit`
/// is `None` when the gateway is full: the client then gets `too_many_sessions`
/// and is closed.
pub(crate) async fn run_session<S>(
    stream: S,
    shared: Arc<Shared>,
    permit: Option<OwnedSemaphorePermit>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let cfg = ws_config(shared.config.max_frame_bytes);
    let ws = match tokio_tungstenite::accept_async_with_config(stream, Some(cfg)).await {
        Ok(ws) => ws,
        Err(e) => {
            tracing::debug!(error = %e, "WebSocket handshake failed");
            return;
        }
    };
    let (mut sink, mut stream) = ws.split();
    let Some(_permit) = permit else {
        GatewayStats::inc(&shared.stats.sessions_rejected);
        let f = error(
            None,
            ErrorCode::TooManySessions,
            "gateway is at its session limit; retry later",
        );
        let _ = sink.send(WsMessage::text(f.encode())).await;
        let _ = sink.close().await;
        return;
    };

    // All frames go through one writer task so request tasks can send concurrently.
    let (out_tx, mut out_rx) = mpsc::channel::<ServerFrame>(OUT_QUEUE);
    let mut tasks: JoinSet<()> = JoinSet::new();
    let (closing_tx, mut closing_rx) = mpsc::channel::<()>(1);
    tasks.spawn(async move {
        while let Some(frame) = out_rx.recv().await {
            // Close the connection after an error that ends the session.
            let fatal = matches!(
                &frame,
                ServerFrame::Error {
                    code: ErrorCode::Unauthorized | ErrorCode::VersionMismatch,
                    ..
                }
            );
            if sink.send(WsMessage::text(frame.encode())).await.is_err() {
                break;
            }
            if fatal {
                let _ = sink.close().await;
                break;
            }
        }
        let _ = closing_tx.send(()).await;
    });

    let inflight: Arc<Mutex<HashMap<RequestId, CancelToken>>> =
        Arc::new(Mutex::new(HashMap::new()));
    let mut authed = false;
    let mut _active: Option<ActiveGuard> = None;
    let hello_deadline =
        tokio::time::Instant::now() + Duration::from_millis(shared.config.hello_timeout_ms);
    let max_frame = shared.config.max_frame_bytes;

    loop {
        let msg = tokio::select! {
            m = stream.next() => m,
            _ = tokio::time::sleep_until(hello_deadline), if !authed => {
                GatewayStats::inc(&shared.stats.sessions_rejected);
                let _ = out_tx.send(error(None, ErrorCode::NotReady, "no valid hello in time")).await;
                break;
            }
            _ = closing_rx.recv() => break,
            Some(_) = tasks.join_next(), if tasks.len() > 1 => continue,
        };
        let text = match msg {
            None | Some(Ok(WsMessage::Close(_))) => break,
            Some(Err(e)) => {
                // Typically a frame beyond the hard limit: report, then give up on
                // this connection (the stream cannot be resynchronised).
                GatewayStats::inc(&shared.stats.protocol_errors);
                let _ = out_tx
                    .send(error(
                        None,
                        ErrorCode::FrameTooLarge,
                        format!("connection error: {e}"),
                    ))
                    .await;
                break;
            }
            Some(Ok(WsMessage::Text(t))) => t,
            Some(Ok(WsMessage::Binary(_))) => {
                GatewayStats::inc(&shared.stats.protocol_errors);
                let _ = out_tx
                    .send(error(
                        None,
                        ErrorCode::BadFrame,
                        "binary frames are not part of the protocol",
                    ))
                    .await;
                continue;
            }
            // Ping/pong control frames are answered by the WebSocket layer.
            Some(Ok(_)) => continue,
        };
        if text.len() > max_frame {
            GatewayStats::inc(&shared.stats.protocol_errors);
            let m = format!(
                "frame of {} bytes exceeds max_frame_bytes {max_frame}",
                text.len()
            );
            let _ = out_tx.send(error(None, ErrorCode::FrameTooLarge, m)).await;
            continue;
        }
        let frame = match ClientFrame::decode(text.as_str()) {
            Ok(f) => f,
            Err(e) => {
                GatewayStats::inc(&shared.stats.protocol_errors);
                let _ = out_tx.send(error(None, e.code(), e.to_string())).await;
                continue;
            }
        };
        match frame {
            ClientFrame::Hello { version, token } => {
                if authed {
                    let _ = out_tx
                        .send(error(None, ErrorCode::NotReady, "hello already received"))
                        .await;
                } else if version != PROTOCOL_VERSION {
                    GatewayStats::inc(&shared.stats.sessions_rejected);
                    let m = format!(
                        "server speaks protocol version {PROTOCOL_VERSION}, client sent {version}"
                    );
                    let _ = out_tx
                        .send(error(None, ErrorCode::VersionMismatch, m))
                        .await;
                } else if !token_matches(&token, &shared.config.token) {
                    GatewayStats::inc(&shared.stats.sessions_rejected);
                    let _ = out_tx
                        .send(error(None, ErrorCode::Unauthorized, "bad token"))
                        .await;
                } else {
                    authed = true;
                    shared
                        .stats
                        .sessions_active
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    GatewayStats::inc(&shared.stats.sessions_total);
                    _active = Some(ActiveGuard(shared.clone()));
                    let ready = ServerFrame::Ready {
                        version: PROTOCOL_VERSION,
                        backend: shared.backend.kind().to_string(),
                        max_frame_bytes: max_frame,
                    };
                    let _ = out_tx.send(ready).await;
                }
            }
            _ if !authed => {
                GatewayStats::inc(&shared.stats.protocol_errors);
                let _ = out_tx
                    .send(error(None, ErrorCode::NotReady, "send hello first"))
                    .await;
            }
            ClientFrame::Ping { nonce } => {
                let _ = out_tx.send(ServerFrame::Pong { nonce }).await;
            }
            ClientFrame::Cancel { id } => {
                let token = inflight.lock().ok().and_then(|m| m.get(&id).cloned());
                match token {
                    Some(t) => t.cancel(),
                    None => {
                        let _ = out_tx
                            .send(error(
                                Some(id),
                                ErrorCode::UnknownId,
                                "no such request in flight",
                            ))
                            .await;
                    }
                }
            }
            ClientFrame::Continue(req) => {
                let id = req.id;
                let cancel = CancelToken::new();
                let admitted = match inflight.lock() {
                    Ok(m) if m.contains_key(&id) => {
                        Err((ErrorCode::DuplicateId, "id already in flight"))
                    }
                    Ok(m) if m.len() >= shared.config.max_requests_per_session => Err((
                        ErrorCode::TooManyRequests,
                        "too many requests in flight on this connection",
                    )),
                    Ok(mut m) => {
                        m.insert(id, cancel.clone());
                        Ok(())
                    }
                    Err(_) => Err((ErrorCode::Internal, "session state poisoned")),
                };
                if let Err((code, m)) = admitted {
                    GatewayStats::inc(&shared.stats.protocol_errors);
                    let _ = out_tx.send(error(Some(id), code, m)).await;
                    continue;
                }
                GatewayStats::inc(&shared.stats.requests_total);
                let (shared2, out2, inflight2) = (shared.clone(), out_tx.clone(), inflight.clone());
                tasks.spawn(async move {
                    run_request(req, cancel, shared2, out2).await;
                    if let Ok(mut m) = inflight2.lock() {
                        m.remove(&id);
                    }
                });
            }
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
    let _ = tokio::time::timeout(Duration::from_millis(500), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
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
