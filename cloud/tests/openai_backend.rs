//! The OpenAI-compatible backend against a fake SSE server on 127.0.0.1.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cloud::backend::openai::{parse_chunk, OpenAiBackend, OpenAiConfig, OpenerMode};
use cloud::backend::{Backend, BackendError, BackendEvent, BackendRequest, CancelToken};
use cloud::protocol::{ContinueRequest, FinishReason, Message, RecoveryMode};
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn req() -> ContinueRequest {
    ContinueRequest {
        id: 1,
        messages: vec![Message::user("What is the capital of France?")],
        opener: "The capital of France is".into(),
        opener_complete: false,
        mode: RecoveryMode::Natural,
        max_tokens: 50,
    }
}

fn config(base_url: String, mode: OpenerMode) -> OpenAiConfig {
    OpenAiConfig {
        base_url,
        model: "test-model".into(),
        api_key_env: None,
        api_key_file: None,
        opener_mode: mode,
        temperature: Some(0.2),
        include_usage: true,
        connect_timeout_ms: 1000,
        request_timeout_ms: 60_000,
        idle_timeout_ms: 30_000,
    }
}

/// Read one HTTP request (headers + Content-Length body).
async fn read_request(sock: &mut TcpStream) -> (String, serde_json::Value) {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    loop {
        let n = sock.read(&mut tmp).await.unwrap();
        assert!(n > 0, "client closed early");
        buf.extend_from_slice(&tmp[..n]);
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..p]).to_string();
            let len: usize = head
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
                .unwrap_or(0);
            while buf.len() < p + 4 + len {
                let n = sock.read(&mut tmp).await.unwrap();
                buf.extend_from_slice(&tmp[..n]);
            }
            let body = serde_json::from_slice(&buf[p + 4..p + 4 + len]).unwrap();
            return (head, body);
        }
    }
}

fn chunk(content: &str) -> String {
    format!("data: {}\n\n", serde_json::json!({"choices": [{"index": 0, "delta": {"content": content}, "finish_reason": null}]}))
}

/// Fake server: answers one request with `events` (SSE), `delay` between them.
/// Returns the received (head, body) and whether the client hung up early.
async fn fake_server(events: Vec<String>, delay: Duration) -> (String, Arc<Mutex<Option<(String, serde_json::Value, bool)>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(None));
    let seen2 = seen.clone();
    tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let (head, body) = read_request(&mut sock).await;
        let mut hung_up = false;
        let _ = sock
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\nconnection: close\r\n\r\n")
            .await;
        for e in events {
            if sock.write_all(e.as_bytes()).await.is_err() || sock.flush().await.is_err() {
                hung_up = true;
                break;
            }
            tokio::time::sleep(delay).await;
        }
        if !hung_up {
            // Detect a client that went away: reads return 0 / error.
            let mut b = [0u8; 1];
            hung_up = matches!(tokio::time::timeout(Duration::from_millis(300), sock.read(&mut b)).await, Ok(Ok(0)) | Ok(Err(_)));
        }
        *seen2.lock().unwrap() = Some((head, body, hung_up));
    });
    (url, seen)
}

#[tokio::test]
async fn streams_sse_chunks_and_sends_the_continuation_request() {
    let events = vec![
        ": keepalive\n\n".to_string(),
        chunk(" Paris"),
        chunk(", on the Seine."),
        format!("data: {}\n\n", serde_json::json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})),
        format!("data: {}\n\n", serde_json::json!({"choices": [], "usage": {"prompt_tokens": 31, "completion_tokens": 5}})),
        "data: [DONE]\n\n".to_string(),
    ];
    let (url, seen) = fake_server(events, Duration::from_millis(5)).await;
    std::env::set_var("FIRSTWORD_TEST_KEY", "sk-test-123");
    let mut c = config(url, OpenerMode::ContinueFinalMessage);
    c.api_key_env = Some("FIRSTWORD_TEST_KEY".into());
    let backend = OpenAiBackend::new(c).unwrap();
    let mut s = backend.stream(BackendRequest { request: req(), cancel: CancelToken::new() });
    let mut text = String::new();
    let mut finished = None;
    while let Some(ev) = tokio::time::timeout(Duration::from_secs(5), s.next()).await.unwrap() {
        match ev.unwrap() {
            BackendEvent::Delta(t) => text.push_str(&t),
            BackendEvent::Finished { reason, usage } => finished = Some((reason, usage)),
        }
    }
    assert_eq!(text, " Paris, on the Seine.");
    let (reason, usage) = finished.unwrap();
    assert_eq!(reason, FinishReason::Stop);
    assert_eq!((usage.prompt_tokens, usage.completion_tokens), (31, 5));
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (head, body, _) = seen.lock().unwrap().clone().unwrap();
    assert!(head.starts_with("POST /v1/chat/completions"), "{head}");
    assert!(head.to_lowercase().contains("authorization: bearer sk-test-123"), "{head}");
    assert_eq!(body["stream"], true);
    assert_eq!(body["model"], "test-model");
    assert_eq!(body["max_tokens"], 50);
    assert_eq!(body["continue_final_message"], true);
    assert_eq!(body["add_generation_prompt"], false);
    let msgs = body["messages"].as_array().unwrap();
    assert_eq!(msgs[0]["role"], "system");
    assert_eq!(msgs.last().unwrap()["role"], "assistant");
    assert_eq!(msgs.last().unwrap()["content"], "The capital of France is");
}

#[test]
fn request_bodies_for_each_opener_mode() {
    let b = OpenAiBackend::new(config("http://127.0.0.1:1/v1".into(), OpenerMode::Prefix)).unwrap();
    let body = b.request_body(&req());
    let last = body["messages"].as_array().unwrap().last().unwrap().clone();
    assert_eq!((last["role"].as_str(), last["prefix"].as_bool()), (Some("assistant"), Some(true)));
    assert!(body.get("continue_final_message").is_none());

    let b = OpenAiBackend::new(config("http://127.0.0.1:1/v1".into(), OpenerMode::Instruction)).unwrap();
    let body = b.request_body(&req());
    let last = body["messages"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["role"], "user");
    assert!(last["content"].as_str().unwrap().contains("The capital of France is"));
    assert_eq!(body["stream_options"]["include_usage"], true);
}

#[tokio::test]
async fn cancel_closes_the_upstream_connection() {
    let events: Vec<String> = (0..100).map(|i| chunk(&format!(" w{i}"))).collect();
    let (url, seen) = fake_server(events, Duration::from_millis(20)).await;
    let backend = OpenAiBackend::new(config(url, OpenerMode::Instruction)).unwrap();
    let cancel = CancelToken::new();
    let mut s = backend.stream(BackendRequest { request: req(), cancel: cancel.clone() });
    let mut n = 0;
    while n < 3 {
        if let Some(Ok(BackendEvent::Delta(_))) = s.next().await {
            n += 1;
        }
    }
    cancel.cancel();
    let mut after = 0;
    let mut reason = None;
    while let Some(ev) = tokio::time::timeout(Duration::from_secs(5), s.next()).await.unwrap() {
        match ev.unwrap() {
            BackendEvent::Delta(_) => after += 1,
            BackendEvent::Finished { reason: r, .. } => reason = Some(r),
        }
    }
    assert!(after <= 1, "{after} deltas after cancel");
    assert_eq!(reason, Some(FinishReason::Cancelled));
    // The fake server sees the connection closed long before its 100 chunks.
    let t0 = std::time::Instant::now();
    while seen.lock().unwrap().is_none() && t0.elapsed() < Duration::from_secs(3) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (_, _, hung_up) = seen.lock().unwrap().clone().expect("server finished early");
    assert!(hung_up);
}

#[tokio::test]
async fn http_errors_and_missing_keys_are_typed() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let _ = read_request(&mut sock).await;
        let body = r#"{"error":{"message":"invalid api key"}}"#;
        let resp = format!(
            "HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = sock.write_all(resp.as_bytes()).await;
    });
    let backend = OpenAiBackend::new(config(url, OpenerMode::Instruction)).unwrap();
    let mut s = backend.stream(BackendRequest { request: req(), cancel: CancelToken::new() });
    match s.next().await {
        Some(Err(BackendError::Http { status: 401, body })) => {
            assert!(body.contains("invalid api key"))
        }
        other => panic!("expected HTTP 401, got {other:?}"),
    }
    let mut c = config("http://127.0.0.1:1/v1".into(), OpenerMode::Instruction);
    c.api_key_env = Some("FIRSTWORD_DEFINITELY_UNSET_VAR".into());
    assert!(matches!(OpenAiBackend::new(c), Err(BackendError::Config(_))));
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("key");
    std::fs::write(&p, "sk-from-file\n").unwrap();
    let mut c = config("http://127.0.0.1:1/v1".into(), OpenerMode::Instruction);
    c.api_key_file = Some(p);
    assert!(OpenAiBackend::new(c).is_ok());
}

#[test]
fn chunk_parsing() {
    let c = parse_chunk(r#"{"choices":[{"delta":{"content":"hi"},"finish_reason":"length"}]}"#).unwrap();
    assert_eq!(c.text.as_deref(), Some("hi"));
    assert_eq!(c.finish, Some(FinishReason::Length));
    assert!(parse_chunk("{oops").is_err());
    assert!(parse_chunk(r#"{"error":{"message":"overloaded"}}"#).is_err());
}

/// An upstream that accepts, reads the request and then never answers; reports
/// whether (and when) the client closed the connection.
async fn stuck_server() -> (String, tokio::sync::oneshot::Receiver<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let (hung_up_tx, hung_up) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let _ = read_request(&mut sock).await;
        let mut tmp = [0u8; 64];
        // Blocks until the client closes its end.
        while sock.read(&mut tmp).await.map(|n| n > 0).unwrap_or(false) {}
        let _ = hung_up_tx.send(());
    });
    (url, hung_up)
}

#[tokio::test]
async fn cancel_reaches_a_request_still_waiting_for_headers() {
    let (url, hung_up) = stuck_server().await;
    let backend = OpenAiBackend::new(config(url, OpenerMode::Instruction)).unwrap();
    let cancel = CancelToken::new();
    let mut s = backend.stream(BackendRequest { request: req(), cancel: cancel.clone() });
    tokio::time::sleep(Duration::from_millis(200)).await;
    cancel.cancel();
    let ev = tokio::time::timeout(Duration::from_secs(5), s.next()).await.expect("the stream ends after cancel").expect("a final item");
    assert!(matches!(ev, Ok(BackendEvent::Finished { reason: FinishReason::Cancelled, .. })), "{ev:?}");
    tokio::time::timeout(Duration::from_secs(5), hung_up).await.expect("the upstream socket is closed after cancel").unwrap();
}

#[tokio::test]
async fn a_stuck_upstream_times_out() {
    let (url, hung_up) = stuck_server().await;
    let mut cfg = config(url, OpenerMode::Instruction);
    cfg.request_timeout_ms = 300;
    let backend = OpenAiBackend::new(cfg).unwrap();
    let mut s = backend.stream(BackendRequest { request: req(), cancel: CancelToken::new() });
    let ev =
        tokio::time::timeout(Duration::from_secs(10), s.next()).await.expect("the request deadline ends the stream").expect("a final item");
    assert!(matches!(ev, Err(BackendError::Timeout(_))), "{ev:?}");
    tokio::time::timeout(Duration::from_secs(5), hung_up).await.expect("the upstream socket is closed at the deadline").unwrap();
}
