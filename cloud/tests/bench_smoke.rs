//! The overhead benchmark runs and reports no errors (its latency target is
//! checked by running the example in release mode, not here: test machines are
//! shared and debug builds are slower).

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_overhead_200_sessions_without_errors() {
    let r = cloud::bench::gateway_overhead(200).await.expect("bench runs");
    println!("{}", serde_json::to_string(&r).unwrap());
    assert_eq!(r.requests, 200 * cloud::bench::ROUNDS);
    assert_eq!(r.errors, 0, "{r:?}");
    // Every request's overhead was measured against the backend's recorded first token.
    assert!(r.overhead_p50_ms.is_finite() && r.overhead_p99_ms.is_finite(), "{r:?}");
    assert!(r.overhead_p50_ms >= 0.0 && r.overhead_p50_ms <= r.overhead_p99_ms, "{r:?}");
    assert!(r.backend_first_token_p99_ms.is_finite() && r.backend_first_token_p99_ms >= 0.0);
    // The backend's first token comes after `continue` was sent, so the overhead is part
    // of the round trip: each sample, hence each percentile, is at most the round trip's.
    assert!(r.overhead_p50_ms <= r.first_delta_p50_ms, "{r:?}");
    assert!(r.overhead_p99_ms <= r.first_delta_p99_ms, "{r:?}");
    assert!(r.overhead_max_ms <= r.first_delta_max_ms, "{r:?}");
}
