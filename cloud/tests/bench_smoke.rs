//! The overhead benchmark runs and reports no errors (its latency target is
//! checked by running the example in release mode, not here: test machines are
//! shared and debug builds are slower).

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_overhead_200_sessions_without_errors() {
    let r = cloud::bench::gateway_overhead(200)
        .await
        .expect("bench runs");
    println!("{}", serde_json::to_string(&r).unwrap());
    assert_eq!(r.requests, 200 * cloud::bench::ROUNDS);
    assert_eq!(r.errors, 0, "{r:?}");
    assert!(r.first_delta_p50_ms.is_finite());
}
