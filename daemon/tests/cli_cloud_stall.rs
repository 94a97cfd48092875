//! A cloud that goes quiet mid-sentence (issue 14, item 11): the gateway streams the start of
//! a continuation and then nothing, without closing the stream. The turn's own stall deadline
//! (`turn.cloud_stall_ms`) must cancel the request once playback has drained, let the μLM
//! finish the sentence locally and speak the fallback line: the user never waits for the
//! 90 s wall limit in silence.

mod common;

use std::sync::Arc;

use cloud::backend::{Backend, BackendEvent, BackendRequest, DeltaStream};
use cloud::gateway::GatewayConfig;
use common::{assets_present, firstword};

/// Streams `deltas`, then stays open forever with nothing more.
struct GoesQuiet {
    deltas: Vec<&'static str>,
}

impl Backend for GoesQuiet {
    fn kind(&self) -> &'static str {
        "scripted"
    }

    fn stream(&self, _req: BackendRequest) -> DeltaStream {
        let items: Vec<Result<BackendEvent, cloud::backend::BackendError>> =
            self.deltas.iter().map(|d| Ok(BackendEvent::Delta(d.to_string()))).collect();
        Box::pin(futures_util::stream::iter(items).chain(futures_util::stream::pending()))
    }
}

use futures_util::StreamExt;

#[test]
fn a_cloud_that_stalls_mid_sentence_is_finished_locally() {
    if !assets_present(&[
        "models/whisper/ggml-tiny.en.bin",
        "models/piper/en_US-joe-medium.onnx",
        "models/mulm/mulm.json",
        "fixtures/questions/sky.wav",
    ]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let gcfg = GatewayConfig::from_toml_str("listen = \"127.0.0.1:0\"\ntoken = \"t\"\n[backend]\nkind = \"scripted\"\n").unwrap();
    let backend = GoesQuiet { deltas: vec![" sunlight", " scatters", " off", " the", " air", " and", " blue", " light"] };
    let gateway = rt.block_on(cloud::gateway::spawn_with_backend(gcfg, Arc::new(backend))).unwrap();

    let cfg = dir.path().join("c.toml");
    // The gate off: the μLM's own opener is spoken, whatever its score.
    std::fs::write(
        &cfg,
        format!("[cloud]\nurl = {:?}\ntoken = \"t\"\n[turn]\ncloud_stall_ms = 800\n[gate]\nenabled = false\n", gateway.url()),
    )
    .unwrap();
    let out_dir = dir.path().join("out");
    let out = firstword(&["replay", "fixtures/questions/sky.wav", "--out", out_dir.to_str().unwrap(), "--config", cfg.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "replay failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    rt.block_on(gateway.shutdown());

    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(out_dir.join("timeline.json")).unwrap()).unwrap();
    let turns = v["turns"].as_array().unwrap();
    assert_eq!(turns.len(), 1, "{stdout}");
    let t = &turns[0];
    assert_eq!(t["fallback"], true, "{t:#}");
    assert!(t["cloud_failure"].as_str().unwrap().contains("stalled"), "{t:#}");
    assert_eq!(t["continuation_text"], "sunlight scatters off the air and blue light");
    let parts: Vec<&str> = t["segments"].as_array().unwrap().iter().map(|s| s["part"].as_str().unwrap()).collect();
    assert_eq!(parts.first(), Some(&"opener"), "{parts:?}");
    assert_eq!(parts.last(), Some(&"fallback"), "{parts:?}");
    assert!(parts.contains(&"continuation"), "what the cloud sent before it stalled is spoken: {parts:?}");
    // The silence the listener heard: the longest gap between two pieces of speech, from the
    // end of what played before the stall to the held-back words the turn flushed when it gave
    // up: at least the stall deadline, and far below the 90 s wall limit.
    let segs = t["segments"].as_array().unwrap();
    let gap = segs.windows(2).map(|w| w[1]["start_ms"].as_f64().unwrap() - w[0]["end_ms"].as_f64().unwrap()).fold(0.0, f64::max);
    assert!((800.0..30_000.0).contains(&gap), "longest silence inside the reply: {gap} ms");
}
