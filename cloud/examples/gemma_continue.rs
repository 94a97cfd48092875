//! `cargo run -p cloud --example gemma_continue -- [QUESTION] [OPENER]` — run the
//! local Gemma backend once and print the continuation, time to first token and
//! decode speed (tokens/s). Model: models/gemma/gemma-3-270m-q4_k_m.gguf.

use std::time::Instant;

use cloud::backend::local::{LocalBackend, LocalConfig};
use cloud::backend::{Backend, BackendEvent, BackendRequest, CancelToken};
use cloud::continuation::filter_complete;
use cloud::protocol::{ContinueRequest, Message, RecoveryMode};
use futures_util::StreamExt;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let question = args.next().unwrap_or_else(|| "Why is the sky blue?".into());
    let opener = args.next().unwrap_or_else(|| "The sky looks blue because".into());
    let rounds: usize = std::env::var("ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(2);
    let threads = std::env::var("THREADS").ok().and_then(|s| s.parse().ok()).or(Some(1));
    let backend = match LocalBackend::load(&LocalConfig { threads, ..LocalConfig::default() }) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("load failed: {e}");
            std::process::exit(1);
        }
    };
    println!("load {:.0} ms", backend.load_ms);
    let request = ContinueRequest {
        id: 1,
        messages: vec![Message::user(question)],
        opener: opener.clone(),
        opener_complete: false,
        mode: RecoveryMode::Natural,
        max_tokens: 48,
    };
    for round in 0..rounds {
        let t0 = Instant::now();
        let mut s = backend.stream(BackendRequest { request: request.clone(), cancel: CancelToken::new() });
        let (mut first, mut raw, mut fin) = (None, String::new(), None);
        while let Some(ev) = s.next().await {
            match ev {
                Ok(BackendEvent::Delta(t)) => {
                    first.get_or_insert(t0.elapsed());
                    raw.push_str(&t);
                }
                Ok(BackendEvent::Finished { reason, usage }) => fin = Some((reason, usage)),
                Err(e) => {
                    eprintln!("error: {e}");
                    std::process::exit(1);
                }
            }
        }
        let total = t0.elapsed().as_secs_f64();
        let ttft = first.map(|d| d.as_secs_f64()).unwrap_or(total);
        let (reason, usage) = fin.unwrap_or_default_pair();
        let tps = usage.completion_tokens.saturating_sub(1) as f64 / (total - ttft).max(1e-9);
        let (text, repaired) = filter_complete(&opener, &raw);
        println!(
            "round {round}: TTFT {:.0} ms, prompt {} tokens, {} tokens in {:.0} ms → {tps:.1} tokens/s, {reason:?}, repair {repaired}",
            ttft * 1e3,
            usage.prompt_tokens,
            usage.completion_tokens,
            total * 1e3
        );
        println!("  spoken: {}{}", opener, text);
    }
}

trait OrDefault {
    fn unwrap_or_default_pair(self) -> (cloud::protocol::FinishReason, cloud::protocol::Usage);
}
impl OrDefault for Option<(cloud::protocol::FinishReason, cloud::protocol::Usage)> {
    fn unwrap_or_default_pair(self) -> (cloud::protocol::FinishReason, cloud::protocol::Usage) {
        self.unwrap_or((cloud::protocol::FinishReason::Error, Default::default()))
    }
}
