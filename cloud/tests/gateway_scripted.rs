//! Gateway + scripted backend over a real 127.0.0.1 socket.

mod common;

use std::time::{Duration, Instant};

use cloud::backend::scripted::ScriptedConfig;
use cloud::gateway::{Distribution, LatencyConfig};
use cloud::protocol::*;
use common::*;

#[tokio::test]
async fn a_continuation_streams_back_with_a_clean_seam() {
    let scripted = ScriptedConfig {
        // The restart failure: the model repeats the opener, then continues.
        rules: vec![rule("capital of france", "Sure, continuing: The capital of France is Paris, on the Seine.")],
        ..Default::default()
    };
    let (gw, _) = gateway(config("127.0.0.1:0"), scripted).await;
    let mut ws = session(&gw.url()).await;
    send_frame(&mut ws, &request(1, "What is the capital of France?", "The capital of France is")).await;
    let out = collect(&mut ws, &[1]).await;
    let o = &out[&1];
    assert_eq!(o.text, " Paris, on the Seine.");
    assert_eq!(o.done, Some(FinishReason::Stop));
    assert_eq!(o.repairs, 0);
    assert!(o.timings.unwrap().first_delta_ms.is_some());
    let s = gw.stats();
    assert_eq!((s.requests_total, s.requests_completed, s.sessions_active), (1, 1, 1));
}

#[tokio::test]
async fn several_requests_in_flight_on_one_connection() {
    let scripted = ScriptedConfig {
        rules: vec![
            rule("one", " alpha beta gamma delta epsilon."),
            rule("two", " uno dos tres cuatro cinco."),
            rule("three", " eins zwei drei vier fünf."),
        ],
        first_token_ms: 20,
        token_ms: 40,
    };
    let (gw, _) = gateway(config("127.0.0.1:0"), scripted).await;
    let mut ws = session(&gw.url()).await;
    for (id, q) in [(1, "one"), (2, "two"), (3, "three")] {
        send_frame(&mut ws, &request(id, q, "Say")).await;
    }
    // Record the arrival order of ids to see that the streams interleave.
    let mut order = Vec::new();
    let mut texts = std::collections::HashMap::<u64, String>::new();
    let mut done = 0;
    while done < 3 {
        match recv(&mut ws).await.expect("open") {
            ServerFrame::Delta { id, text } => {
                order.push(id);
                texts.entry(id).or_default().push_str(&text);
            }
            ServerFrame::Done { finish_reason, .. } => {
                assert_eq!(finish_reason, FinishReason::Stop);
                done += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(texts[&1], " alpha beta gamma delta epsilon.");
    assert_eq!(texts[&2], " uno dos tres cuatro cinco.");
    assert_eq!(texts[&3], " eins zwei drei vier fünf.");
    // Interleaved: the ids alternate rather than arriving in three blocks.
    let switches = order.windows(2).filter(|w| w[0] != w[1]).count();
    assert!(switches >= 4, "streams did not interleave: {order:?}");
    // Concurrent, not queued: the interleaving above shows it on any host; a wall-clock bound
    // (three 5-delta streams at 40 ms take ~0.2 s, not ~0.6 s) would fail on a busy one.
}

#[tokio::test]
async fn cancel_stops_generation_within_one_token() {
    let long = (0..60).map(|i| format!(" w{i}")).collect::<String>();
    let scripted = ScriptedConfig { rules: vec![rule("long", &long)], first_token_ms: 0, token_ms: 30 };
    let (gw, backend) = gateway(config("127.0.0.1:0"), scripted).await;
    let mut ws = session(&gw.url()).await;
    send_frame(&mut ws, &request(5, "a long answer please", "Here")).await;
    let mut got = 0;
    while got < 3 {
        if let Some(ServerFrame::Delta { .. }) = recv(&mut ws).await {
            got += 1;
        }
    }
    let at_cancel = backend.tokens_emitted();
    send_frame(&mut ws, &ClientFrame::Cancel { id: 5 }).await;
    let mut after = 0;
    loop {
        match recv(&mut ws).await.expect("open") {
            ServerFrame::Delta { .. } => after += 1,
            ServerFrame::Done { id, finish_reason, .. } => {
                assert_eq!((id, finish_reason), (5, FinishReason::Cancelled));
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let produced_after = backend.tokens_emitted() - at_cancel;
    assert!(produced_after <= 1, "backend produced {produced_after} tokens after cancel");
    assert!(after <= 1, "{after} deltas after cancel");
    assert_eq!(gw.stats().requests_cancelled, 1);
    // Cancelling again: the id is no longer in flight.
    send_frame(&mut ws, &ClientFrame::Cancel { id: 5 }).await;
    match recv(&mut ws).await {
        Some(ServerFrame::Error { id: Some(5), code: ErrorCode::UnknownId, .. }) => {}
        other => panic!("expected unknown_id, got {other:?}"),
    }
}

#[tokio::test]
async fn bad_frames_get_error_frames_and_other_sessions_keep_working() {
    let mut cfg = config("127.0.0.1:0");
    cfg.max_frame_bytes = 1024;
    let scripted = ScriptedConfig { rules: vec![rule("capital", " Paris.")], ..Default::default() };
    let (gw, _) = gateway(cfg, scripted).await;
    let url = gw.url();

    // A healthy session opened before the misbehaving ones.
    let mut good = session(&url).await;

    // Before hello: not_ready.
    let mut early = connect_raw(&url).await;
    send_frame(&mut early, &request(1, "capital?", "The capital is")).await;
    assert!(matches!(recv(&mut early).await, Some(ServerFrame::Error { code: ErrorCode::NotReady, .. })));

    // Bad token: unauthorized, then the connection is closed.
    let mut intruder = connect_raw(&url).await;
    send_frame(&mut intruder, &ClientFrame::Hello { version: PROTOCOL_VERSION, token: "wrong".into() }).await;
    assert!(matches!(recv(&mut intruder).await, Some(ServerFrame::Error { code: ErrorCode::Unauthorized, .. })));
    assert!(recv(&mut intruder).await.is_none(), "connection closed after unauthorized");

    // Wrong version: version_mismatch.
    let mut old = connect_raw(&url).await;
    send_frame(&mut old, &ClientFrame::Hello { version: 99, token: TOKEN.into() }).await;
    assert!(matches!(recv(&mut old).await, Some(ServerFrame::Error { code: ErrorCode::VersionMismatch, .. })));

    // An authenticated session that sends garbage keeps working afterwards.
    let mut messy = session(&url).await;
    send(&mut messy, "this is not json").await;
    assert!(matches!(recv(&mut messy).await, Some(ServerFrame::Error { id: None, code: ErrorCode::BadFrame, .. })));
    send(&mut messy, r#"{"type":"frobnicate","id":3}"#).await;
    assert!(matches!(recv(&mut messy).await, Some(ServerFrame::Error { code: ErrorCode::UnknownType, .. })));
    send(&mut messy, r#"{"type":"continue","id":"seven"}"#).await;
    assert!(matches!(recv(&mut messy).await, Some(ServerFrame::Error { code: ErrorCode::BadFrame, .. })));
    let huge = format!(r#"{{"type":"ping","nonce":1,"pad":"{}"}}"#, "x".repeat(4000));
    send(&mut messy, huge).await;
    assert!(matches!(recv(&mut messy).await, Some(ServerFrame::Error { code: ErrorCode::FrameTooLarge, .. })));
    send(&mut messy, r#"{"type":"hello","version":1,"token":"test-token"}"#).await;
    assert!(matches!(recv(&mut messy).await, Some(ServerFrame::Error { code: ErrorCode::NotReady, .. })));
    // Duplicate id while the first is in flight: the second is refused.
    send_frame(&mut messy, &request(9, "capital?", "The capital is")).await;
    let out = collect(&mut messy, &[9]).await;
    assert_eq!(out[&9].text, " Paris.");
    send_frame(&mut messy, &ClientFrame::Ping { nonce: 77 }).await;
    assert_eq!(recv(&mut messy).await, Some(ServerFrame::Pong { nonce: 77 }));

    // The healthy session was never disturbed.
    send_frame(&mut good, &request(1, "capital?", "The capital is")).await;
    let out = collect(&mut good, &[1]).await;
    assert_eq!(out[&1].text, " Paris.");
    assert_eq!(out[&1].done, Some(FinishReason::Stop));
    let s = gw.stats();
    assert!(s.protocol_errors >= 5, "{s:?}");
    assert!(s.sessions_rejected >= 2, "{s:?}");
}

#[tokio::test]
async fn duplicate_id_in_flight_is_refused() {
    let scripted = ScriptedConfig { rules: vec![rule("slow", " a b c d e f.")], first_token_ms: 50, token_ms: 30 };
    let (gw, _) = gateway(config("127.0.0.1:0"), scripted).await;
    let mut ws = session(&gw.url()).await;
    send_frame(&mut ws, &request(4, "slow", "Go")).await;
    send_frame(&mut ws, &request(4, "slow", "Go")).await;
    let out = collect(&mut ws, &[4]).await;
    assert_eq!(out[&4].errors, vec![ErrorCode::DuplicateId]);
    assert_eq!(out[&4].text, " a b c d e f.");
}

#[tokio::test]
async fn a_vanishing_client_cancels_its_upstream_request() {
    let long = (0..100).map(|i| format!(" w{i}")).collect::<String>();
    let scripted = ScriptedConfig { rules: vec![rule("long", &long)], first_token_ms: 0, token_ms: 20 };
    let (gw, backend) = gateway(config("127.0.0.1:0"), scripted).await;
    let mut ws = session(&gw.url()).await;
    send_frame(&mut ws, &request(1, "long", "Here")).await;
    send_frame(&mut ws, &request(2, "long", "Here")).await;
    let mut got = 0;
    while got < 4 {
        if let Some(ServerFrame::Delta { .. }) = recv(&mut ws).await {
            got += 1;
        }
    }
    drop(ws); // no close frame: the TCP connection just goes away
    tokio::time::sleep(Duration::from_millis(300)).await;
    let n = backend.tokens_emitted();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(backend.tokens_emitted(), n, "backend kept generating after the client vanished");
    assert!(n < 40, "{n} tokens: generation was not stopped early");
    let s = gw.stats();
    assert_eq!(s.requests_cancelled, 2, "{s:?}");
    assert_eq!(s.sessions_active, 0, "{s:?}");
}

#[tokio::test]
async fn repairs_are_reported_and_counted() {
    let scripted = ScriptedConfig {
        rules: vec![
            rule("tflite", " tiny devices.<repair> Or rather, it powers them: it is a framework for microcontrollers."),
            rule("sun", " hot.\nCorrection: it is a star, not a planet."),
            rule("capital", " Paris."),
        ],
        ..Default::default()
    };
    let (gw, _) = gateway(config("127.0.0.1:0"), scripted).await;
    let mut ws = session(&gw.url()).await;
    send_frame(&mut ws, &request(1, "What is TFLite Micro?", "TFLite Micro is a company that specializes in")).await;
    send_frame(&mut ws, &request(2, "Is the sun a planet?", "The sun is a planet that is")).await;
    send_frame(&mut ws, &request(3, "capital of France?", "The capital of France is")).await;
    let out = collect(&mut ws, &[1, 2, 3]).await;
    assert_eq!(out[&1].repairs, 1);
    assert_eq!(out[&1].text, " tiny devices. Or rather, it powers them: it is a framework for microcontrollers.");
    assert_eq!(out[&2].repairs, 1);
    assert!(out[&2].text.contains("\nCorrection: it is a star"));
    assert_eq!(out[&3].repairs, 0);
    let s = gw.stats();
    assert_eq!(s.repairs, 2);
    assert!((s.handoff_correction_rate - 2.0 / 3.0).abs() < 1e-9);
}

#[tokio::test]
async fn injected_latency_delays_the_first_delta() {
    let mut cfg = config("127.0.0.1:0");
    cfg.latency = Some(LatencyConfig {
        first_delta_ms: 300.0,
        first_delta_jitter_ms: 50.0,
        distribution: Distribution::Uniform,
        tokens_per_s: Some(50.0),
    });
    let scripted = ScriptedConfig { rules: vec![rule("capital", " Paris is on the Seine river.")], ..Default::default() };
    let (gw, _) = gateway(cfg, scripted).await;
    let mut ws = session(&gw.url()).await;
    let t0 = Instant::now();
    send_frame(&mut ws, &request(1, "capital?", "The capital of France is")).await;
    let out = collect(&mut ws, &[1]).await;
    let total = t0.elapsed();
    let t = out[&1].timings.unwrap();
    let first = t.first_delta_ms.unwrap();
    // The injected delay is drawn from 300 ± 50 ms; the delta cannot come earlier. No upper
    // bound: a busy host adds to wall time (issue 17 §5), and the injection is checked below.
    assert!(first >= 250.0, "first delta at {first} ms");
    // 6 deltas at 50/s after the first: ≥ 100 ms more.
    assert!(t.total_ms >= first + 90.0, "{t:?}");
    assert!(t.injected_ms >= 240.0, "{t:?}");
    assert!(total >= Duration::from_millis(340), "{total:?}");
}

#[tokio::test]
async fn session_limit_refuses_extra_connections() {
    let mut cfg = config("127.0.0.1:0");
    cfg.max_sessions = 1;
    let (gw, _) = gateway(cfg, ScriptedConfig::default()).await;
    let mut first = session(&gw.url()).await;
    let mut second = connect_raw(&gw.url()).await;
    assert!(matches!(recv(&mut second).await, Some(ServerFrame::Error { code: ErrorCode::TooManySessions, .. })));
    // The first session is unaffected; the echo rule answers.
    send_frame(&mut first, &request(1, "What time is it?", "It is")).await;
    let out = collect(&mut first, &[1]).await;
    assert_eq!(out[&1].text, "— you asked: What time is it.");
}
