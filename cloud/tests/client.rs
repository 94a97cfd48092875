//! The device-side CloudClient against a real gateway on 127.0.0.1.

mod common;

use std::time::Duration;

use cloud::backend::scripted::ScriptedConfig;
use cloud::client::{ClientOptions, CloudClient, CloudErrorKind, CloudEvent, ContinueParams};
use cloud::gateway::{Distribution, LatencyConfig};
use cloud::protocol::FinishReason;
use common::*;
use tokio::sync::mpsc::UnboundedReceiver;

fn fast_opts() -> ClientOptions {
    ClientOptions {
        connect_timeout_ms: 2_000,
        first_delta_timeout_ms: 2_000,
        ping_interval_ms: 200,
        pong_timeout_ms: 300,
        backoff_initial_ms: 50,
        backoff_max_ms: 200,
        backoff_reset_after_ms: 10_000,
        backoff_jitter: 0.2,
        bearer_header: true,
        tls_ca_file: None,
        allow_insecure: false,
    }
}

async fn next(rx: &mut UnboundedReceiver<CloudEvent>) -> Option<CloudEvent> {
    tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.expect("event within 5 s")
}

/// Drain to the terminal event; returns (text, repairs, last event).
async fn drain(rx: &mut UnboundedReceiver<CloudEvent>) -> (String, usize, CloudEvent) {
    let (mut text, mut repairs) = (String::new(), 0);
    loop {
        match next(rx).await.expect("terminal event before close") {
            CloudEvent::Delta(t) => text.push_str(&t),
            CloudEvent::Repair(_) => repairs += 1,
            CloudEvent::FirstDeltaTimeout { .. } => {}
            e @ (CloudEvent::Done { .. } | CloudEvent::Error { .. }) => return (text, repairs, e),
        }
    }
}

#[tokio::test]
async fn continue_streams_events() {
    let scripted = ScriptedConfig {
        rules: vec![rule("tflite", " tiny sensors for spacecraft.\n<repair> Just kidding. It is a framework.")],
        ..Default::default()
    };
    let (gw, _) = gateway(config("127.0.0.1:0"), scripted).await;
    let client = CloudClient::connect(&gw.url(), TOKEN, fast_opts()).await.unwrap();
    assert!(client.is_connected(), "pre-warmed: connected when connect returns");
    let mut c = client.continue_(ContinueParams::new("What is TFLite Micro?", "TFLite Micro is a company that specializes in"));
    let (text, repairs, last) = drain(&mut c.events).await;
    assert_eq!(text, " tiny sensors for spacecraft.\nJust kidding. It is a framework.");
    assert_eq!(repairs, 1);
    assert!(matches!(last, CloudEvent::Done { finish_reason: FinishReason::Stop, .. }), "{last:?}");
    assert!(next(&mut c.events).await.is_none(), "closed after done");
}

#[tokio::test]
async fn client_cancel_ends_with_cancelled() {
    let long = (0..80).map(|i| format!(" w{i}")).collect::<String>();
    let scripted = ScriptedConfig { rules: vec![rule("long", &long)], first_token_ms: 0, token_ms: 20 };
    let (gw, backend) = gateway(config("127.0.0.1:0"), scripted).await;
    let client = CloudClient::connect(&gw.url(), TOKEN, fast_opts()).await.unwrap();
    let mut c = client.continue_(ContinueParams::new("long", "Here"));
    assert!(matches!(next(&mut c.events).await, Some(CloudEvent::Delta(_))));
    client.cancel(c.id);
    let (_, _, last) = drain(&mut c.events).await;
    assert!(matches!(last, CloudEvent::Done { finish_reason: FinishReason::Cancelled, .. }), "{last:?}");
    assert!(backend.tokens_emitted() < 20);
}

#[tokio::test]
async fn first_delta_timeout_is_reported_and_the_request_continues() {
    let mut cfg = config("127.0.0.1:0");
    cfg.latency =
        Some(LatencyConfig { first_delta_ms: 500.0, first_delta_jitter_ms: 0.0, distribution: Distribution::Uniform, tokens_per_s: None });
    let scripted = ScriptedConfig { rules: vec![rule("capital", " Paris.")], ..Default::default() };
    let (gw, _) = gateway(cfg, scripted).await;
    let opts = ClientOptions { first_delta_timeout_ms: 150, ..fast_opts() };
    let client = CloudClient::connect(&gw.url(), TOKEN, opts).await.unwrap();
    let mut c = client.continue_(ContinueParams::new("capital of France?", "The capital of France is"));
    match next(&mut c.events).await {
        Some(CloudEvent::FirstDeltaTimeout { waited_ms }) => {
            // The watchdog never fires early; how late it fires depends on the host's load,
            // so no upper bound here (issue 17 §5): that it comes before the 500 ms delta is
            // the behaviour under test.
            assert!(waited_ms >= 150, "{waited_ms}")
        }
        other => panic!("expected FirstDeltaTimeout first, got {other:?}"),
    }
    let (text, _, last) = drain(&mut c.events).await;
    assert_eq!(text, " Paris.");
    assert!(matches!(last, CloudEvent::Done { .. }));
}

#[tokio::test]
async fn server_killed_mid_stream_is_reported_and_the_client_reconnects() {
    let long = (0..200).map(|i| format!(" w{i}")).collect::<String>();
    let scripted = ScriptedConfig { rules: vec![rule("long", &long), rule("capital", " Paris.")], first_token_ms: 0, token_ms: 20 };
    let (gw, _) = gateway(config("127.0.0.1:0"), scripted.clone()).await;
    let addr = gw.local_addr();
    let client = CloudClient::connect(&gw.url(), TOKEN, fast_opts()).await.unwrap();
    assert!(client.is_connected());
    let mut c = client.continue_(ContinueParams::new("long", "Here"));
    assert!(matches!(next(&mut c.events).await, Some(CloudEvent::Delta(_))));

    gw.shutdown().await; // the server dies mid-stream
    let (_, _, last) = drain(&mut c.events).await;
    assert!(matches!(last, CloudEvent::Error { kind: CloudErrorKind::ConnectionLost, .. }), "{last:?}");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!client.is_connected(), "{:?}", client.stats());
    // While down, requests fail fast instead of hanging.
    let mut down = client.continue_(ContinueParams::new("capital?", "The capital is"));
    assert!(matches!(next(&mut down.events).await, Some(CloudEvent::Error { kind: CloudErrorKind::NotConnected, .. })));

    // The server comes back on the same address; the client reconnects by itself.
    let (gw2, _) = gateway(config(&addr.to_string()), scripted).await;
    assert!(client.wait_connected(Duration::from_secs(5)).await, "reconnected");
    let mut c2 = client.continue_(ContinueParams::new("capital of France?", "The capital of France is"));
    let (text, _, last) = drain(&mut c2.events).await;
    assert_eq!(text, " Paris.");
    assert!(matches!(last, CloudEvent::Done { .. }));
    let st = client.stats();
    assert_eq!(st.connects, 2, "{st:?}");
    assert!(st.disconnects >= 1);
    drop(gw2);
}

#[tokio::test]
async fn unreachable_gateway_does_not_block_startup() {
    // Reserve a port, then free it so nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let opts = ClientOptions { connect_timeout_ms: 300, ..fast_opts() };
    let t0 = std::time::Instant::now();
    let client = CloudClient::connect(&format!("ws://127.0.0.1:{port}"), TOKEN, opts).await.unwrap();
    assert!(t0.elapsed() < Duration::from_secs(2));
    assert!(!client.is_connected());
    let mut c = client.continue_(ContinueParams::new("q", "o"));
    assert!(matches!(next(&mut c.events).await, Some(CloudEvent::Error { kind: CloudErrorKind::NotConnected, .. })));
    assert!(CloudClient::connect("http://x", TOKEN, fast_opts()).await.is_err());
}

#[tokio::test]
async fn bad_token_keeps_the_client_disconnected() {
    let (gw, _) = gateway(config("127.0.0.1:0"), ScriptedConfig::default()).await;
    let opts = ClientOptions { connect_timeout_ms: 500, ..fast_opts() };
    let client = CloudClient::connect(&gw.url(), "wrong", opts).await.unwrap();
    assert!(!client.is_connected());
    let err = client.stats().last_error.unwrap_or_default();
    assert!(err.contains("Unauthorized"), "{err}");
}

#[tokio::test]
async fn a_flapping_gateway_does_not_get_a_reconnect_storm() {
    use futures_util::{SinkExt, StreamExt};
    use std::sync::atomic::{AtomicUsize, Ordering};
    // A gateway that answers every hello with ready and then drops the session.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    let sessions = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = sessions.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else { return };
                let _ = ws.next().await;
                let ready = cloud::protocol::ServerFrame::Ready {
                    version: cloud::protocol::PROTOCOL_VERSION,
                    backend: "flaky".into(),
                    max_frame_bytes: 65536,
                };
                let _ = ws.send(tokio_tungstenite::tungstenite::Message::text(ready.encode())).await;
                counter.fetch_add(1, Ordering::SeqCst);
                let _ = ws.close(None).await;
            });
        }
    });
    let opts = ClientOptions { backoff_initial_ms: 50, backoff_max_ms: 800, backoff_jitter: 0.0, ..fast_opts() };
    let client = CloudClient::connect(&url, TOKEN, opts).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let n = sessions.load(Ordering::SeqCst);
    // Growing backoff: sleeps of 50, 100, 200, 400, 800 ms fit at most 6 sessions
    // in 1.5 s; resetting after every hello would reconnect every ~50 ms.
    assert!((2..=6).contains(&n), "{n} sessions in 1.5 s");
    drop(client);
}

#[tokio::test]
async fn plain_ws_to_a_remote_host_is_refused_unless_allowed() {
    let e = CloudClient::connect("ws://192.0.2.1:8787", TOKEN, fast_opts()).await;
    assert!(matches!(e, Err(cloud::CloudError::Config(_))), "{:?}", e.err());
    let allowed = ClientOptions { allow_insecure: true, connect_timeout_ms: 100, ..fast_opts() };
    let c = CloudClient::connect("ws://192.0.2.1:8787", TOKEN, allowed).await;
    assert!(c.is_ok(), "allowed by the option (it just cannot connect)");
    let nan = ClientOptions { backoff_jitter: f64::NAN, ..fast_opts() };
    let e = CloudClient::connect("ws://127.0.0.1:1", TOKEN, nan).await;
    assert!(e.err().is_some_and(|e| e.to_string().contains("backoff_jitter")));
}
