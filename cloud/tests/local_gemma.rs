//! The local Gemma 3 270M backend with the real model: tokenizer round trips and
//! an end-to-end continuation through the gateway. Skips (with a message) only
//! when the model file is missing and models are not required (testkit's rule).

mod common;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use candle_core::quantized::gguf_file;
use cloud::backend::local::tokenizer::GemmaTokenizer;
use cloud::backend::local::{LocalBackend, LocalConfig};
use cloud::backend::{Backend, BackendEvent, BackendRequest, CancelToken};
use cloud::gateway::spawn_with_backend;
use cloud::protocol::*;
use futures_util::StreamExt;

fn model_path() -> Option<PathBuf> {
    testkit::require("models/gemma/gemma-3-270m-q4_k_m.gguf")
}

/// One model instance shared by the tests of this file (loading takes ~1 s).
fn backend() -> Option<Arc<LocalBackend>> {
    static B: OnceLock<Option<Arc<LocalBackend>>> = OnceLock::new();
    B.get_or_init(|| {
        let path = model_path()?;
        // One matmul thread: on a shared 2-core machine it is several times faster (LocalConfig::threads).
        let cfg = LocalConfig { model_path: path, threads: Some(1), ..LocalConfig::default() };
        Some(Arc::new(LocalBackend::load(&cfg).expect("model loads")))
    })
    .clone()
}

#[test]
fn tokenizer_from_gguf_round_trips() {
    let Some(path) = model_path() else { return };
    let mut f = std::fs::File::open(path).unwrap();
    let ct = gguf_file::Content::read(&mut f).unwrap();
    let tok = GemmaTokenizer::from_gguf(&ct).unwrap();
    assert_eq!(tok.vocab_size(), 262_144);
    for s in [
        "The capital of France is Paris.",
        "User: What is TFLite Micro?\nAssistant: It is a framework.\n\n",
        "  two spaces, tabs\tand ünïcödé — “quotes” 日本語 🎉 <repair> 3.14159",
        "Correction: the Moon is rock, not cheese!",
    ] {
        let ids = tok.encode(s, true);
        assert_eq!(ids[0], tok.bos);
        assert_eq!(tok.decode(&ids), s, "round trip of {s:?} via {ids:?}");
    }
    // Whole words are single pieces, as in llama.cpp's SentencePiece tokenizer.
    let ids = tok.encode("The capital of France", false);
    assert_eq!(ids.len(), 4, "{ids:?}");
    assert_eq!(tok.encode(" the", false), vec![506]);
    assert_eq!(tok.encode("\n\n", false), vec![108]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemma_continues_an_opener_end_to_end() {
    let Some(backend) = backend() else { return };
    println!("model load: {:.0} ms", backend.load_ms);
    let request = ContinueRequest {
        id: 1,
        messages: vec![Message::user("Why do cats purr?")],
        opener: "Cats purr mostly because".into(),
        opener_complete: false,
        mode: RecoveryMode::Natural,
        max_tokens: 48,
    };

    // Backend alone: time to first token and decode speed. Round 0 computes the
    // few-shot prefix's KV cache; round 1 restores it and must produce the same text.
    let mut texts = Vec::new();
    for round in 0..2 {
        let t0 = Instant::now();
        let mut s = backend.stream(BackendRequest { request: request.clone(), cancel: CancelToken::new() });
        let mut first = None;
        let mut text = String::new();
        let mut fin = None;
        while let Some(ev) = s.next().await {
            match ev.expect("no backend error") {
                BackendEvent::Delta(t) => {
                    first.get_or_insert(t0.elapsed());
                    text.push_str(&t);
                }
                BackendEvent::Finished { reason, usage } => fin = Some((reason, usage)),
            }
        }
        let total = t0.elapsed();
        let (reason, usage) = fin.expect("finished");
        let ttft = first.expect("some text").as_secs_f64() * 1e3;
        let decode_s = total.as_secs_f64() - ttft / 1e3;
        let tps = (usage.completion_tokens.saturating_sub(1)) as f64 / decode_s.max(1e-9);
        println!(
            "round {round} ({}): TTFT {ttft:.0} ms, {} prompt tokens, {} generated in {:.0} ms ({tps:.1} tokens/s after the first), finish {reason:?}",
            if round == 0 { "cold prefix cache" } else { "warm prefix cache" },
            usage.prompt_tokens,
            usage.completion_tokens,
            total.as_secs_f64() * 1e3
        );
        println!("raw continuation: {:?}", text);
        assert!(!text.trim().is_empty());
        assert!(matches!(reason, FinishReason::Stop | FinishReason::Length));
        assert!(!text.contains("\nUser:"), "stop sequence leaked: {text:?}");
        texts.push(text);
    }
    assert_eq!(texts[0], texts[1], "restored prefix cache changed the output");

    // Through the gateway: filtered deltas, done frame.
    let gw = spawn_with_backend(common::config("127.0.0.1:0"), backend.clone()).await.unwrap();
    let mut ws = common::session(&gw.url()).await;
    common::send_frame(&mut ws, &ClientFrame::Continue(ContinueRequest { id: 2, ..request.clone() })).await;
    let out = common::collect(&mut ws, &[2]).await;
    let o = &out[&2];
    println!("spoken: {:?}", format!("{}{}", request.opener, o.text));
    println!("timings: {:?}", o.timings);
    assert!(matches!(o.done, Some(FinishReason::Stop | FinishReason::Length)));
    assert!(o.text.starts_with(' ') || o.text.starts_with(|c: char| c.is_ascii_punctuation()), "join: {:?}", o.text);
    assert!(!o.text.contains("<repair>"));

    // A wrong opener, explicit mode: print what the model does with it.
    common::send_frame(
        &mut ws,
        &ClientFrame::Continue(ContinueRequest {
            id: 3,
            messages: vec![Message::user("What is the capital of Australia?")],
            opener: "The capital of Australia is Sydney, which".into(),
            mode: RecoveryMode::Explicit,
            ..request.clone()
        }),
    )
    .await;
    let out = common::collect(&mut ws, &[3]).await;
    println!("wrong opener → {:?} (repair events: {})", out[&3].text, out[&3].repairs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemma_cancel_stops_generation() {
    let Some(backend) = backend() else { return };
    let request = ContinueRequest {
        id: 1,
        messages: vec![Message::user("Tell me a long story about a dragon.")],
        opener: "Once upon a time, a dragon".into(),
        opener_complete: false,
        mode: RecoveryMode::Natural,
        max_tokens: 400,
    };
    let cancel = CancelToken::new();
    let mut s = backend.stream(BackendRequest { request, cancel: cancel.clone() });
    let mut n = 0;
    while n < 2 {
        match s.next().await.expect("stream open").expect("no error") {
            BackendEvent::Delta(_) => n += 1,
            BackendEvent::Finished { .. } => return, // finished before we could cancel: nothing to test
        }
    }
    cancel.cancel();
    let mut after = 0;
    let mut reason = None;
    while let Some(ev) = s.next().await {
        match ev.unwrap() {
            BackendEvent::Delta(_) => after += 1,
            BackendEvent::Finished { reason: r, .. } => reason = Some(r),
        }
    }
    assert!(after <= 1, "{after} deltas after cancel");
    assert_eq!(reason, Some(FinishReason::Cancelled));
}
