//! Latency/throughput benchmark with the paper's method (paper §results, Orange Pi 5 table):
//! warm up, then repeat single-turn inference for a fixed time window and count runs, prompt
//! tokens and generated tokens.
//!
//! Definitions (all means over the runs in the window):
//! - `prefill_ms`: forward over the whole serialized prompt and sampling of the first token;
//! - `ttft_ms`: until the first generated token's *text* is available (prefill + detokenize);
//! - `first_token_decode_ms`: the first single-token decode step (KV cache) after the first
//!   token. The paper's "TTFT = prefill + first-token decode" corresponds to
//!   `prefill_ms + first_token_decode_ms` here;
//! - `time_to_{4,8}_words_ms`: until word 4 / 8 is *finished*, i.e. until the token that starts
//!   the next word exists (the opener's stopping rule);
//! - `prompt_tok_s` = prompt tokens / prefill time; `generation_tok_s` = decode steps / decode
//!   time; `end_to_end_tok_s` = generated tokens / whole run time.
//!
//! With random weights word boundaries are random, so [`BenchOptions::forced_tokens_per_word`]
//! can fix the count: word n is finished when token n·k + 1 is generated. The end-of-turn token
//! is ignored by default so every run reaches 8 words (speed, not content, is measured).

use std::time::Instant;

use serde::Serialize;

use crate::decode::{ms, Decoder};
use crate::error::{LmError, Result};
use crate::model::Model;
use crate::opener::WordBoundary;
use crate::sampler::SamplingParams;
use crate::tokenizer::{ChatMessage, ChatTokenizer, TextStream};

/// Benchmark settings.
#[derive(Debug, Clone, Serialize)]
pub struct BenchOptions {
    /// Measurement window (seconds); the paper used 90 s.
    pub window_s: f64,
    /// Untimed runs before the window (fills caches, spins up threads).
    pub warmup_runs: usize,
    /// Stop a run after this many generated tokens even if 8 words are not finished.
    pub max_new_tokens: usize,
    /// Count a word every k tokens instead of detecting whitespace (for random weights).
    pub forced_tokens_per_word: Option<usize>,
    /// Keep decoding through end-of-turn tokens.
    pub ignore_eos: bool,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions { window_s: 10.0, warmup_runs: 3, max_new_tokens: 64, forced_tokens_per_word: None, ignore_eos: true }
    }
}

/// Benchmark result (serializable for the CLI).
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// Weight storage of the model ("f32", "q8_0", "gguf:q8_0", …).
    pub model_format: String,
    /// Parameters of the model.
    pub parameters: usize,
    /// Serialized prompt length (tokens).
    pub prompt_tokens: usize,
    /// Mean prefill time (ms).
    pub prefill_ms: f64,
    /// Mean first single-token decode step (ms).
    pub first_token_decode_ms: f64,
    /// Mean time to first generated token text (ms).
    pub ttft_ms: f64,
    /// Mean time until 4 words are finished (ms); None if no run got there.
    pub time_to_4_words_ms: Option<f64>,
    /// Mean time until 8 words are finished (ms); None if no run got there.
    pub time_to_8_words_ms: Option<f64>,
    /// Mean decode step (ms per token).
    pub decode_ms_per_token: f64,
    /// Prompt throughput (tokens/s).
    pub prompt_tok_s: f64,
    /// Decode throughput (tokens/s).
    pub generation_tok_s: f64,
    /// Generated tokens over whole-run time (tokens/s).
    pub end_to_end_tok_s: f64,
    /// Mean generated tokens per run.
    pub generated_tokens_per_run: f64,
    /// Timed runs in the window.
    pub runs: usize,
    /// Settings used.
    pub options: BenchOptions,
}

/// [`run_with`] with default options and the given window (seconds).
pub fn run(model: &Model, tok: &ChatTokenizer, prompt: &str, window_s: f64) -> Result<BenchReport> {
    run_with(model, tok, prompt, &BenchOptions { window_s, ..BenchOptions::default() })
}

struct RunStats {
    prefill_ms: f64,
    ttft_ms: f64,
    first_step_ms: Option<f64>,
    w4: Option<f64>,
    w8: Option<f64>,
    steps: usize,
    step_ms_total: f64,
    generated: usize,
    total_ms: f64,
}

/// One run on the model's own pool, as openers run (see `Model::install`).
fn model_install_run(dec: &mut Decoder<'_>, tok: &ChatTokenizer, ids: &[u32], o: &BenchOptions) -> Result<RunStats> {
    let model = dec.model();
    model.install(|| one_run(dec, tok, ids, o))
}

fn one_run(dec: &mut Decoder<'_>, tok: &ChatTokenizer, ids: &[u32], o: &BenchOptions) -> Result<RunStats> {
    dec.reset(SamplingParams::default())?;
    let t0 = Instant::now();
    let mut next = dec.prefill(ids)?;
    let prefill_ms = ms(t0);
    let mut stream = TextStream::new();
    let mut wb = WordBoundary::new(8);
    let (mut w4, mut w8) = (None, None);
    let (mut generated, mut steps, mut step_ms_total, mut first_step_ms, mut ttft_ms) = (0usize, 0usize, 0.0, None, 0.0);
    loop {
        if !o.ignore_eos && tok.stop_ids().contains(&next) {
            break;
        }
        generated += 1;
        let piece = stream.push(tok, next)?;
        if generated == 1 {
            ttft_ms = ms(t0);
        }
        let words = match o.forced_tokens_per_word {
            Some(k) => generated.saturating_sub(1) / k.max(1),
            None => {
                wb.push(&piece);
                wb.words().len()
            }
        };
        if words >= 4 && w4.is_none() {
            w4 = Some(ms(t0));
        }
        if words >= 8 {
            w8 = Some(ms(t0));
            break;
        }
        if generated >= o.max_new_tokens || dec.remaining() == 0 {
            break;
        }
        let ts = Instant::now();
        next = dec.step(next)?;
        let d = ms(ts);
        first_step_ms.get_or_insert(d);
        steps += 1;
        step_ms_total += d;
    }
    Ok(RunStats { prefill_ms, ttft_ms, first_step_ms, w4, w8, steps, step_ms_total, generated, total_ms: ms(t0) })
}

/// Benchmark `model` on the single-turn chat prompt `prompt`.
pub fn run_with(model: &Model, tok: &ChatTokenizer, prompt: &str, o: &BenchOptions) -> Result<BenchReport> {
    if !(o.window_s >= 0.0) || o.max_new_tokens == 0 {
        return Err(LmError::InvalidArgument("bench: window_s ≥ 0 and max_new_tokens ≥ 1 required".into()));
    }
    let max_seq = model.config().max_seq_len;
    let ids = tok.encode_chat(&[ChatMessage::user(prompt)], max_seq.saturating_sub(o.max_new_tokens))?.ids;
    let mut dec = Decoder::new(model, SamplingParams::default())?;
    for _ in 0..o.warmup_runs {
        model_install_run(&mut dec, tok, &ids, o)?;
    }
    let start = Instant::now();
    let mut runs = Vec::new();
    while runs.is_empty() || start.elapsed().as_secs_f64() < o.window_s {
        runs.push(model_install_run(&mut dec, tok, &ids, o)?);
    }
    let n = runs.len() as f64;
    let mean = |f: &dyn Fn(&RunStats) -> f64| runs.iter().map(f).sum::<f64>() / n;
    let mean_opt = |f: &dyn Fn(&RunStats) -> Option<f64>| {
        let v: Vec<f64> = runs.iter().filter_map(f).collect();
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
    };
    let prefill_total: f64 = runs.iter().map(|r| r.prefill_ms).sum();
    let steps: usize = runs.iter().map(|r| r.steps).sum();
    let step_total: f64 = runs.iter().map(|r| r.step_ms_total).sum();
    let generated: usize = runs.iter().map(|r| r.generated).sum();
    let total: f64 = runs.iter().map(|r| r.total_ms).sum();
    let decode_ms_per_token = if steps > 0 { step_total / steps as f64 } else { 0.0 };
    Ok(BenchReport {
        model_format: model.format().to_string(),
        parameters: model.config().parameter_count(),
        prompt_tokens: ids.len(),
        prefill_ms: mean(&|r| r.prefill_ms),
        first_token_decode_ms: mean_opt(&|r| r.first_step_ms).unwrap_or(0.0),
        ttft_ms: mean(&|r| r.ttft_ms),
        time_to_4_words_ms: mean_opt(&|r| r.w4),
        time_to_8_words_ms: mean_opt(&|r| r.w8),
        decode_ms_per_token,
        prompt_tok_s: (ids.len() as f64 * n) / (prefill_total / 1e3),
        generation_tok_s: if step_total > 0.0 { steps as f64 / (step_total / 1e3) } else { 0.0 },
        end_to_end_tok_s: generated as f64 / (total / 1e3),
        generated_tokens_per_run: generated as f64 / n,
        runs: runs.len(),
        options: o.clone(),
    })
}
