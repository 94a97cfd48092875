//! The gateway against hostile or broken clients: stalled upgrades, per-address
//! caps, half-open sessions, clients that stop reading, request floods, bad-token
//! floods and a request that panics. Each test has a well-behaved session check
//! that nothing leaked to it.

mod common;

use std::sync::Arc;
use std::time::Duration;

use cloud::backend::scripted::{ScriptRule, ScriptedBackend, ScriptedConfig};
use cloud::backend::{Backend, BackendRequest, DeltaStream};
use cloud::gateway::{spawn_with_backend, GatewayHandle, StatsSnapshot};
use cloud::protocol::*;
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Poll `f` until it holds or `limit` passes; the timing is a bound, not a measurement.
async fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t0 = std::time::Instant::now();
    while t0.elapsed() < limit {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    f()
}

/// Open a TCP connection that sends half an HTTP upgrade request, then nothing.
async fn stalled(gw: &GatewayHandle) -> TcpStream {
    let mut s = TcpStream::connect(gw.local_addr()).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n").await.unwrap();
    s
}

/// Whether the server closed `s` within `limit` (EOF or reset on read).
async fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 256];
    let t0 = std::time::Instant::now();
    while t0.elapsed() < limit {
        match tokio::time::timeout(limit.saturating_sub(t0.elapsed()), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
    false
}

async fn well_behaved_request(url: &str) {
    let mut ws = session(url).await;
    send_frame(&mut ws, &request(1, "What time is it?", "It is")).await;
    let out = collect(&mut ws, &[1]).await;
    assert_eq!(out[&1].done, Some(FinishReason::Stop));
    assert_eq!(out[&1].text, "— you asked: What time is it.");
}

#[tokio::test]
async fn stalled_upgrades_do_not_lock_out_real_clients() {
    let mut cfg = config("127.0.0.1:0");
    cfg.max_sessions = 4;
    cfg.hello_timeout_ms = 300;
    cfg.max_connections_per_ip = 0;
    let (gw, _) = gateway(cfg, ScriptedConfig::default()).await;
    let mut stalls = Vec::new();
    for _ in 0..4 {
        stalls.push(stalled(&gw).await);
    }
    // The one deadline from accept closes every stalled upgrade...
    for s in &mut stalls {
        assert!(closed_within(s, Duration::from_secs(5)).await, "stalled upgrade still open");
    }
    // ...and their slots are free again for a real client.
    well_behaved_request(&gw.url()).await;
}

#[tokio::test]
async fn connections_over_the_per_address_cap_are_closed_at_accept() {
    let mut cfg = config("127.0.0.1:0");
    cfg.max_connections_per_ip = 2;
    cfg.hello_timeout_ms = 30_000;
    let (gw, _) = gateway(cfg, ScriptedConfig::default()).await;
    let _a = stalled(&gw).await;
    let _b = stalled(&gw).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut c = stalled(&gw).await;
    assert!(closed_within(&mut c, Duration::from_secs(3)).await, "third connection from one address was not refused");
    assert!(gw.stats().connections_refused >= 1);
    drop((_a, _b));
    // Their places are given back when they close.
    tokio::time::sleep(Duration::from_millis(200)).await;
    well_behaved_request(&gw.url()).await;
}

#[tokio::test]
async fn half_open_sessions_are_closed_and_live_ones_kept() {
    let mut cfg = config("127.0.0.1:0");
    cfg.ping_interval_ms = 100;
    cfg.pong_timeout_ms = 200;
    let (gw, _) = gateway(cfg, ScriptedConfig::default()).await;
    // A device that vanished: its session is open but it never reads or answers.
    let _silent = session(&gw.url()).await;
    // A live device that only listens: it answers the gateway's pings.
    let mut live = session(&gw.url()).await;
    let reader = tokio::spawn(async move {
        let t0 = std::time::Instant::now();
        while t0.elapsed() < Duration::from_millis(1500) {
            let _ = tokio::time::timeout(Duration::from_millis(50), futures_util::StreamExt::next(&mut live)).await;
        }
        live
    });
    let stats = gw.stats_handle();
    assert!(eventually(Duration::from_secs(5), || stats.snapshot().half_open_closed >= 1).await, "{:?}", stats.snapshot());
    let mut live = reader.await.unwrap();
    assert_eq!(gw.stats().half_open_closed, 1, "the live session was kept");
    assert_eq!(gw.stats().sessions_active, 1);
    send_frame(&mut live, &request(1, "What time is it?", "It is")).await;
    assert_eq!(collect(&mut live, &[1]).await[&1].done, Some(FinishReason::Stop));
}

#[tokio::test]
async fn a_client_that_stops_reading_is_dropped_and_others_stream_on() {
    let mut cfg = config("127.0.0.1:0");
    cfg.write_timeout_ms = 300;
    cfg.send_queue_frames = 64;
    // Enough frames to fill the kernel's socket buffers (several MB on loopback).
    cfg.max_tokens_cap = 1_000_000;
    let long: String = (0..40_000).map(|i| format!(" word{i}")).collect();
    let scripted = ScriptedConfig { rules: vec![rule("flood", &long)], ..Default::default() };
    let (gw, _) = gateway(cfg, scripted).await;
    // A slow reader with a tiny receive window asks for a lot and never reads.
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    let tcp = sock.connect(gw.local_addr()).await.unwrap();
    let (mut slow, _) = tokio_tungstenite::client_async(gw.url(), tokio_tungstenite::MaybeTlsStream::Plain(tcp)).await.unwrap();
    send_frame(&mut slow, &ClientFrame::Hello { version: PROTOCOL_VERSION, token: TOKEN.into() }).await;
    assert!(matches!(recv(&mut slow).await, Some(ServerFrame::Ready { .. })));
    for id in 0..8 {
        let mut f = request(id, "flood", "Sure");
        if let ClientFrame::Continue(r) = &mut f {
            r.max_tokens = 1_000_000;
        }
        send_frame(&mut slow, &f).await;
    }
    // Everyone else is served as usual meanwhile.
    well_behaved_request(&gw.url()).await;
    let stats = gw.stats_handle();
    assert!(
        eventually(Duration::from_secs(10), || {
            let s = stats.snapshot();
            s.slow_readers_dropped >= 1 && s.sessions_active == 0
        })
        .await,
        "slow reader still held: {:?}",
        stats.snapshot()
    );
    well_behaved_request(&gw.url()).await;
    drop(slow);
}

#[tokio::test]
async fn max_tokens_is_capped_by_the_server() {
    let mut cfg = config("127.0.0.1:0");
    cfg.max_tokens_cap = 3;
    let scripted = ScriptedConfig { rules: vec![rule("count", " one two three four five six seven.")], ..Default::default() };
    let (gw, _) = gateway(cfg, scripted).await;
    let mut ws = session(&gw.url()).await;
    send_frame(&mut ws, &request(1, "count", "Okay")).await;
    let out = collect(&mut ws, &[1]).await;
    assert_eq!(out[&1].done, Some(FinishReason::Length), "{:?}", out[&1]);
    assert_eq!(out[&1].text, " one two three");
}

#[tokio::test]
async fn requests_beyond_the_rate_are_refused() {
    let mut cfg = config("127.0.0.1:0");
    cfg.requests_per_s = 0.01;
    cfg.request_burst = 2;
    let (gw, _) = gateway(cfg, ScriptedConfig::default()).await;
    let mut ws = session(&gw.url()).await;
    for id in 1..=4 {
        send_frame(&mut ws, &request(id, "What time is it?", "It is")).await;
    }
    let (mut done, mut limited) = (0, 0);
    while done + limited < 4 {
        match recv(&mut ws).await.expect("open") {
            ServerFrame::Done { .. } => done += 1,
            ServerFrame::Error { code: ErrorCode::RateLimited, id: Some(_), .. } => limited += 1,
            _ => {}
        }
    }
    assert_eq!((done, limited), (2, 2));
    assert_eq!(gw.stats().rate_limited, 2);
}

#[tokio::test]
async fn bad_token_floods_are_throttled_per_address() {
    let mut cfg = config("127.0.0.1:0");
    cfg.auth_failures_per_min = 3;
    let (gw, _) = gateway(cfg, ScriptedConfig::default()).await;
    for _ in 0..3 {
        let mut ws = connect_raw(&gw.url()).await;
        send_frame(&mut ws, &ClientFrame::Hello { version: PROTOCOL_VERSION, token: "guess".into() }).await;
        assert!(matches!(recv(&mut ws).await, Some(ServerFrame::Error { code: ErrorCode::Unauthorized, .. })));
    }
    // Now even the right token is not heard from this address for a while.
    let refused = match tokio_tungstenite::connect_async(gw.url()).await {
        Err(_) => true,
        Ok((mut ws, _)) => {
            send_frame(&mut ws, &ClientFrame::Hello { version: PROTOCOL_VERSION, token: TOKEN.into() }).await;
            recv(&mut ws).await.is_none()
        }
    };
    assert!(refused);
    let s: StatsSnapshot = gw.stats();
    assert_eq!(s.auth_failures, 3);
    assert!(s.connections_refused >= 1);
}

/// Scripted replies, except that a question containing "panic" panics inside the
/// stream (a stand-in for a bug in a backend).
struct PanickyBackend(ScriptedBackend);

impl Backend for PanickyBackend {
    fn kind(&self) -> &'static str {
        "scripted"
    }
    fn stream(&self, req: BackendRequest) -> DeltaStream {
        if req.request.query().contains("panic") {
            type Item = Result<cloud::backend::BackendEvent, cloud::backend::BackendError>;
            return Box::pin(futures_util::stream::poll_fn(|_| -> std::task::Poll<Option<Item>> { panic!("backend bug") }));
        }
        self.0.stream(req)
    }
}

#[tokio::test]
async fn a_panicking_request_ends_alone_and_frees_its_slot() {
    let mut cfg = config("127.0.0.1:0");
    cfg.max_requests_per_session = 1;
    let backend = PanickyBackend(ScriptedBackend::new(ScriptedConfig {
        rules: vec![ScriptRule { when_query_contains: Some("time".into()), when_opener_contains: None, reply: " noon.".into() }],
        ..Default::default()
    }));
    let gw = spawn_with_backend(cfg, Arc::new(backend)).await.unwrap();
    let mut ws = session(&gw.url()).await;
    send_frame(&mut ws, &request(1, "please panic", "Well")).await;
    let out = tokio::time::timeout(Duration::from_secs(5), collect(&mut ws, &[1])).await.expect("the panicking request still ends");
    assert_eq!(out[&1].done, Some(FinishReason::Error));
    assert_eq!(out[&1].errors, vec![ErrorCode::Internal]);
    // Its in-flight slot is free: with a limit of 1 the next request runs.
    send_frame(&mut ws, &request(2, "What time is it?", "It is")).await;
    let out = collect(&mut ws, &[2]).await;
    assert_eq!(out[&2].done, Some(FinishReason::Stop));
    assert_eq!(out[&2].text, " noon.");
    assert_eq!(gw.stats().requests_panicked, 1);
}

#[test]
fn accepted_sockets_get_tcp_keepalive() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let (_c, (s, _)) = tokio::join!(TcpStream::connect(addr), async { l.accept().await.unwrap() });
        cloud::gateway::configure_socket(&s, 30, 8192).unwrap();
        assert!(socket2::SockRef::from(&s).keepalive().unwrap());
        // Linux doubles the value asked for (bookkeeping) and stops autotuning it.
        let sndbuf = socket2::SockRef::from(&s).send_buffer_size().unwrap();
        assert!((8192..=2 * 8192).contains(&sndbuf), "send buffer {sndbuf}");
        assert!(s.nodelay().unwrap());
    });
}
