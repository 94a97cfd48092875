//! Benchmark a random-weight μLM (default 512-8) in f32 and Q8_0 (through a GGUF export and
//! import, the deployment path) with the paper's fixed-window method.
//!
//! `cargo run --release -p lm --example bench_mulm -- [preset] [window_s]`
//! Prints one JSON report per (format, tokens-per-word) combination.

use lm::bench::{run_with, BenchOptions};
use lm::gguf_export::ExportType;
use lm::{ChatTokenizer, Model, Preset};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Quantized matmuls: one thread unless CANDLE_NUM_THREADS says otherwise (see lm::model).
    lm::configure_candle_threads(1);
    let args: Vec<String> = std::env::args().collect();
    let preset = Preset::from_name(args.get(1).map(String::as_str).unwrap_or("512-8"))?;
    let window_s: f64 = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(5.0);
    let dir = tempfile::tempdir()?;
    let t = std::time::Instant::now();
    let (ck, weights, mulm) = lm::dev::write_dev_checkpoint(dir.path(), preset.name(), &preset.config(), 1)?;
    eprintln!("random {preset} checkpoint written in {:.1} s", t.elapsed().as_secs_f64());
    let tok = ChatTokenizer::from_file(&ck.tokenizer_json, &mulm)?;
    let gguf = dir.path().join("model.gguf");
    let s = lm::export_gguf(&weights, &mulm, &ck.tokenizer_json, &gguf, ExportType::Q8_0)?;
    eprintln!("Q8_0 GGUF: {:.1} MB", s.bytes as f64 / 1e6);

    // The paper's mean query length is 14 μLM tokens: pick the candidate closest to 14 content
    // tokens with the dev tokenizer (+4 template tokens: <|bos|><|user|> … <|end|><|assistant|>).
    let candidates = [
        "Why is the sky blue?",
        "How far is the moon from the Earth?",
        "What should I cook tonight with tomatoes and garlic?",
        "Can you recommend a good book about the Seine river?",
        "Could you tell me quickly why cats purr when people pet them?",
    ];
    let mut best = (usize::MAX, candidates[0], 0);
    for c in candidates {
        let n = tok.encode_text(c)?.len();
        if n.abs_diff(14) < best.0 {
            best = (n.abs_diff(14), c, n);
        }
    }
    let (_, query, q_tokens) = best;
    eprintln!("query: {query:?} = {q_tokens} tokens (+4 template tokens)");

    let f32_model = Model::from_weights(&weights, None)?;
    let (q8_model, _) = lm::load_gguf(&gguf, Some(&mulm))?;
    for (name, model) in [("f32", &f32_model), ("q8_0", &q8_model)] {
        for k in [1usize, 2] {
            let o = BenchOptions { window_s, forced_tokens_per_word: Some(k), ..Default::default() };
            let r = run_with(model, &tok, query, &o)?;
            println!("{}", serde_json::json!({"model": name, "tokens_per_word": k, "report": r}));
        }
    }
    Ok(())
}
