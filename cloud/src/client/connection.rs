//! The client's connection task: connect, `hello`, keepalive, dispatch, reconnect.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use rand::Rng;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use super::{ClientOptions, CloudErrorKind, CloudEvent, Shared};
use crate::protocol::{ClientFrame, ErrorCode, ServerFrame, PROTOCOL_VERSION};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Connect, upgrade, `hello`, wait for `ready`. `tls` replaces the default rustls
/// connector (public roots only) for `wss://`.
async fn connect_once(url: &str, token: &str, tls: Option<Connector>, opts: &ClientOptions) -> Result<Ws, String> {
    let mut request = url.into_client_request().map_err(|e| format!("bad URL: {e}"))?;
    if opts.bearer_header {
        if let Ok(v) = HeaderValue::from_str(&format!("Bearer {token}")) {
            request.headers_mut().insert("Authorization", v);
        }
    }
    let limit = Duration::from_millis(opts.connect_timeout_ms);
    let handshake = async {
        let (mut ws, _) =
            tokio_tungstenite::connect_async_tls_with_config(request, None, true, tls).await.map_err(|e| format!("connect: {e}"))?;
        let hello = ClientFrame::Hello { version: PROTOCOL_VERSION, token: token.to_string() };
        ws.send(WsMessage::text(hello.encode())).await.map_err(|e| format!("send hello: {e}"))?;
        loop {
            match ws.next().await {
                Some(Ok(WsMessage::Text(t))) => match ServerFrame::decode(t.as_str()) {
                    Ok(ServerFrame::Ready { .. }) => return Ok(ws),
                    Ok(ServerFrame::Error { code, message, .. }) => return Err(format!("gateway refused session ({code:?}): {message}")),
                    _ => continue,
                },
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(format!("handshake: {e}")),
                None => return Err("connection closed during handshake".into()),
            }
        }
    };
    tokio::time::timeout(limit, handshake).await.map_err(|_| "connect timed out".to_string())?
}

/// Reconnect delay with ± jitter.
fn jittered(base_ms: u64, jitter: f64) -> Duration {
    let j = jitter.clamp(0.0, 1.0);
    let f = if j > 0.0 { rand::rng().random_range(1.0 - j..=1.0 + j) } else { 1.0 };
    Duration::from_secs_f64(base_ms as f64 * f / 1e3)
}

/// Forward one server frame to the request it concerns.
fn dispatch(shared: &Shared, frame: ServerFrame) {
    let Ok(mut pending) = shared.pending.lock() else {
        return;
    };
    match frame {
        ServerFrame::Delta { id, text } => {
            if let Some(p) = pending.get_mut(&id) {
                p.got_delta = true;
                let _ = p.tx.send(CloudEvent::Delta(text));
            }
        }
        ServerFrame::Repair { id, mode } => {
            if let Some(p) = pending.get(&id) {
                let _ = p.tx.send(CloudEvent::Repair(mode));
            }
        }
        ServerFrame::Done { id, finish_reason, usage, timings_ms } => {
            if let Some(p) = pending.remove(&id) {
                let _ = p.tx.send(CloudEvent::Done { finish_reason, usage, timings_ms });
            }
        }
        ServerFrame::Error { id: Some(id), code, message } => {
            // Errors that refuse the request outright are terminal: no `done` follows.
            let terminal = matches!(
                code,
                ErrorCode::DuplicateId | ErrorCode::TooManyRequests | ErrorCode::RateLimited | ErrorCode::BadFrame | ErrorCode::NotReady
            );
            if code == ErrorCode::UnknownId {
                // A cancel that raced with completion: nothing to report.
                return;
            }
            let ev = CloudEvent::Error { kind: CloudErrorKind::Server(code), message };
            if terminal {
                if let Some(p) = pending.remove(&id) {
                    let _ = p.tx.send(ev);
                }
            } else if let Some(p) = pending.get(&id) {
                let _ = p.tx.send(ev);
            }
        }
        ServerFrame::Error { id: None, code, message } => {
            tracing::warn!(?code, %message, "gateway error");
            drop(pending);
            if let Ok(mut s) = shared.stats.lock() {
                s.last_error = Some(format!("{code:?}: {message}"));
            }
        }
        ServerFrame::Ready { .. } | ServerFrame::Pong { .. } => {}
    }
}

/// Serve one open session until it breaks or the client shuts down.
async fn run_session(mut ws: Ws, opts: &ClientOptions, shared: &Shared, cmd_rx: &mut mpsc::UnboundedReceiver<ClientFrame>) -> String {
    let mut ping = tokio::time::interval(Duration::from_millis(opts.ping_interval_ms.max(1)));
    ping.tick().await; // the first tick is immediate
    let dead_after = Duration::from_millis(opts.ping_interval_ms + opts.pong_timeout_ms);
    let mut last_seen = Instant::now();
    let mut nonce = 0u64;
    loop {
        tokio::select! {
            _ = shared.shutdown.cancelled() => {
                let _ = ws.close(None).await;
                return "client closed".into();
            }
            cmd = cmd_rx.recv() => {
                let Some(frame) = cmd else {
                    let _ = ws.close(None).await;
                    return "client dropped".into();
                };
                // A request already failed by an earlier disconnect is not resent.
                if let ClientFrame::Continue(r) = &frame {
                    if !shared.pending.lock().is_ok_and(|p| p.contains_key(&r.id)) {
                        continue;
                    }
                }
                if let Err(e) = ws.send(WsMessage::text(frame.encode())).await {
                    return format!("send: {e}");
                }
            }
            msg = ws.next() => {
                last_seen = Instant::now();
                match msg {
                    None => return "connection closed by gateway".into(),
                    Some(Err(e)) => return format!("connection error: {e}"),
                    Some(Ok(WsMessage::Close(_))) => return "gateway closed the session".into(),
                    Some(Ok(WsMessage::Text(t))) => match ServerFrame::decode(t.as_str()) {
                        Ok(f) => dispatch(shared, f),
                        Err(e) => tracing::warn!(error = %e, "undecodable frame from gateway"),
                    },
                    Some(Ok(_)) => {}
                }
            }
            _ = ping.tick() => {
                if last_seen.elapsed() > dead_after {
                    return "keepalive timeout".into();
                }
                nonce += 1;
                if let Err(e) = ws.send(WsMessage::text(ClientFrame::Ping { nonce }.encode())).await {
                    return format!("send ping: {e}");
                }
            }
        }
    }
}

/// The connection task: runs until the client is closed or dropped.
pub(crate) async fn run(
    url: String,
    token: String,
    tls: Option<Connector>,
    opts: Arc<ClientOptions>,
    shared: Arc<Shared>,
    mut cmd_rx: mpsc::UnboundedReceiver<ClientFrame>,
) {
    let mut backoff_ms = opts.backoff_initial_ms.max(1);
    loop {
        if shared.shutdown.is_cancelled() {
            break;
        }
        let attempt = tokio::select! {
            r = connect_once(&url, &token, tls.clone(), &opts) => r,
            _ = shared.shutdown.cancelled() => break,
        };
        match attempt {
            Ok(ws) => {
                let opened = Instant::now();
                if let Ok(mut s) = shared.stats.lock() {
                    s.connects += 1;
                }
                let _ = shared.connected.send_replace(true);
                tracing::info!(%url, "cloud session open");
                let why = run_session(ws, &opts, &shared, &mut cmd_rx).await;
                let _ = shared.connected.send_replace(false);
                if shared.shutdown.is_cancelled() {
                    tracing::debug!(%url, reason = %why, "cloud session ended");
                } else {
                    tracing::warn!(%url, reason = %why, "cloud session ended");
                }
                if let Ok(mut s) = shared.stats.lock() {
                    s.disconnects += 1;
                    s.last_error = Some(why.clone());
                }
                shared.fail_all(CloudErrorKind::ConnectionLost, &why);
                // Only a session that stayed up a while proves the gateway healthy;
                // one dropped right after `ready` keeps the backoff growing.
                if opened.elapsed() >= Duration::from_millis(opts.backoff_reset_after_ms) {
                    backoff_ms = opts.backoff_initial_ms.max(1);
                }
            }
            Err(e) => {
                tracing::debug!(%url, error = %e, "cloud connect failed");
                if let Ok(mut s) = shared.stats.lock() {
                    s.last_error = Some(e);
                }
            }
        }
        // Back off; meanwhile drop commands (their requests were already failed).
        let sleep = tokio::time::sleep(jittered(backoff_ms, opts.backoff_jitter));
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = &mut sleep => break,
                _ = shared.shutdown.cancelled() => break,
                cmd = cmd_rx.recv() => if cmd.is_none() { shared.shutdown.cancel(); break },
            }
        }
        backoff_ms = (backoff_ms.saturating_mul(2)).min(opts.backoff_max_ms.max(1));
    }
    let _ = shared.connected.send_replace(false);
    shared.fail_all(CloudErrorKind::ConnectionLost, "client closed");
}
