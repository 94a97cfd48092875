//! Helpers shared by the gateway tests: a gateway with a scripted backend on
//! 127.0.0.1 and a raw WebSocket test client.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use cloud::backend::scripted::{ScriptRule, ScriptedBackend, ScriptedConfig};
use cloud::backend::BackendConfig;
use cloud::gateway::{spawn_with_backend, GatewayConfig, GatewayHandle};
use cloud::protocol::*;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const TOKEN: &str = "test-token";

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub fn rule(query: &str, reply: &str) -> ScriptRule {
    ScriptRule { when_query_contains: Some(query.into()), when_opener_contains: None, reply: reply.into() }
}

pub fn config(listen: &str) -> GatewayConfig {
    GatewayConfig::new(listen, TOKEN, BackendConfig::Scripted(ScriptedConfig::default()))
}

pub async fn gateway(cfg: GatewayConfig, scripted: ScriptedConfig) -> (GatewayHandle, ScriptedBackend) {
    let backend = ScriptedBackend::new(scripted);
    let gw = spawn_with_backend(cfg, Arc::new(backend.clone())).await.expect("gateway starts");
    (gw, backend)
}

pub async fn connect_raw(url: &str) -> Ws {
    tokio_tungstenite::connect_async(url).await.expect("connect").0
}

pub async fn send(ws: &mut Ws, text: impl Into<String>) {
    ws.send(WsMessage::text(text.into())).await.expect("send");
}

pub async fn send_frame(ws: &mut Ws, f: &ClientFrame) {
    send(ws, f.encode()).await;
}

/// Next server frame within 60 s (the real-model tests decode slowly on a shared
/// CPU); `None` if the connection closed.
pub async fn recv(ws: &mut Ws) -> Option<ServerFrame> {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(60), ws.next()).await.expect("frame within 60 s");
        match m {
            Some(Ok(WsMessage::Text(t))) => return Some(ServerFrame::decode(t.as_str()).expect("valid server frame")),
            Some(Ok(WsMessage::Close(_))) | None | Some(Err(_)) => return None,
            Some(Ok(_)) => continue,
        }
    }
}

/// Connect and complete `hello`.
pub async fn session(url: &str) -> Ws {
    let mut ws = connect_raw(url).await;
    send_frame(&mut ws, &ClientFrame::Hello { version: PROTOCOL_VERSION, token: TOKEN.into() }).await;
    match recv(&mut ws).await {
        Some(ServerFrame::Ready { version, .. }) => assert_eq!(version, PROTOCOL_VERSION),
        other => panic!("expected ready, got {other:?}"),
    }
    ws
}

pub fn request(id: RequestId, question: &str, opener: &str) -> ClientFrame {
    ClientFrame::Continue(ContinueRequest {
        id,
        messages: vec![Message::user(question)],
        opener: opener.into(),
        opener_complete: false,
        mode: RecoveryMode::Natural,
        max_tokens: 200,
    })
}

/// Collected frames of one request.
#[derive(Debug, Default, Clone)]
pub struct Outcome {
    pub text: String,
    pub deltas: usize,
    pub repairs: usize,
    pub done: Option<FinishReason>,
    pub errors: Vec<ErrorCode>,
    pub timings: Option<Timings>,
    pub usage: Option<Usage>,
}

/// Read frames until every id in `ids` is done.
pub async fn collect(ws: &mut Ws, ids: &[RequestId]) -> std::collections::HashMap<RequestId, Outcome> {
    let mut out: std::collections::HashMap<RequestId, Outcome> = ids.iter().map(|&i| (i, Outcome::default())).collect();
    while out.values().any(|o| o.done.is_none()) {
        match recv(ws).await.expect("connection stays open") {
            ServerFrame::Delta { id, text } => {
                let o = out.get_mut(&id).expect("known id");
                o.text.push_str(&text);
                o.deltas += 1;
            }
            ServerFrame::Repair { id, .. } => out.get_mut(&id).expect("known id").repairs += 1,
            ServerFrame::Done { id, finish_reason, timings_ms, usage } => {
                let o = out.get_mut(&id).expect("known id");
                o.done = Some(finish_reason);
                o.timings = Some(timings_ms);
                o.usage = Some(usage);
            }
            ServerFrame::Error { id: Some(id), code, .. } => out.get_mut(&id).expect("known id").errors.push(code),
            other => panic!("unexpected {other:?}"),
        }
    }
    out
}
