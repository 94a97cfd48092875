//! Autoregressive decoding with the KV cache: one prefill over the prompt, then one
//! single-token forward per generated token (paper §architecture "KV cache for decoding";
//! the paper's own demo decoded without a cache).

use std::time::Instant;

use crate::error::{LmError, Result};
use crate::model::{Cache, Model};
use crate::sampler::{log_prob, Sampler, SamplingParams};
use crate::tokenizer::{ChatTokenizer, TextStream};

/// Decoding state for one model: KV cache and sampler. Reusing a `Decoder` across requests
/// keeps the cache buffers allocated (call [`Decoder::reset`] between prompts, or
/// [`Decoder::rewind_to_prefix`] to keep what a new prompt shares with the cached one).
#[derive(Debug)]
pub struct Decoder<'m> {
    model: &'m Model,
    kv: KvState,
    sampler: Sampler,
    /// Log-probability of the last sampled token under the model (see [`Decoder::last_logprob`]).
    last_logprob: f32,
}

/// A KV cache with the tokens it holds, kept between decoders of the same model (a
/// conversation's prompt prefix: the next turn's prompt starts with the previous one).
#[derive(Debug)]
pub struct KvState {
    cache: Cache,
    /// The tokens whose keys and values are in `cache`, in order (`cache.len()` of them).
    tokens: Vec<u32>,
}

impl KvState {
    /// An empty cache for `model` (`[1, g, max_seq_len, hd]` per layer for K and V).
    pub fn new(model: &Model) -> Result<KvState> {
        Ok(KvState { cache: model.new_cache()?, tokens: Vec::new() })
    }

    /// The tokens in the cache.
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }
}

impl<'m> Decoder<'m> {
    /// New decoder with its own cache (`[1, g, max_seq_len, hd]` per layer for K and V).
    pub fn new(model: &'m Model, sampling: SamplingParams) -> Result<Decoder<'m>> {
        Self::resume(model, KvState::new(model)?, sampling)
    }

    /// A decoder over a cache an earlier decoder of the same `model` left
    /// ([`Decoder::into_kv`]). A cache of another shape (another model) is an error.
    pub fn resume(model: &'m Model, kv: KvState, sampling: SamplingParams) -> Result<Decoder<'m>> {
        if kv.cache.max_seq_len() != model.config().max_seq_len || kv.cache.layers() != model.config().layers {
            return Err(LmError::InvalidArgument("the KV cache was made for another model".into()));
        }
        Ok(Decoder { model, kv, sampler: Sampler::new(sampling)?, last_logprob: 0.0 })
    }

    /// The cache and the tokens in it, for a later [`Decoder::resume`].
    pub fn into_kv(self) -> KvState {
        self.kv
    }

    /// Forget the previous prompt (buffers stay allocated) and reseed the sampler.
    pub fn reset(&mut self, sampling: SamplingParams) -> Result<()> {
        self.kv.cache.reset();
        self.kv.tokens.clear();
        self.sampler = Sampler::new(sampling)?;
        Ok(())
    }

    /// Keeps the longest start of the cache that `prompt` shares, but at least one token of
    /// `prompt` short (its last token's logits are needed), reseeds the sampler, and returns
    /// how many tokens were kept: prefill `prompt[kept..]` next. A causal model's keys and
    /// values for a token depend only on the tokens before it, so the kept ones are what a
    /// full prefill would compute (up to float rounding of the batch shape).
    pub fn rewind_to_prefix(&mut self, prompt: &[u32], sampling: SamplingParams) -> Result<usize> {
        let shared = self.kv.tokens.iter().zip(prompt).take_while(|(a, b)| a == b).count();
        let kept = shared.min(prompt.len().saturating_sub(1));
        self.kv.cache.truncate(kept);
        self.kv.tokens.truncate(kept);
        self.sampler = Sampler::new(sampling)?;
        Ok(kept)
    }

    /// The model being decoded.
    pub fn model(&self) -> &'m Model {
        self.model
    }

    /// Tokens in the cache (prompt + fed tokens).
    pub fn position(&self) -> usize {
        self.kv.cache.len()
    }

    /// Room left in the context window (tokens).
    pub fn remaining(&self) -> usize {
        self.model.config().max_seq_len.saturating_sub(self.kv.cache.len())
    }

    /// Run the prompt (appended after whatever is cached) and sample the first new token.
    pub fn prefill(&mut self, prompt: &[u32]) -> Result<u32> {
        self.prefill_steered(prompt, &[])
    }

    /// [`Decoder::prefill`] with `bias` (token id, nats) added to those tokens' logits for the
    /// sampler only, as in [`Decoder::step_steered`].
    pub fn prefill_steered(&mut self, prompt: &[u32], bias: &[(u32, f32)]) -> Result<u32> {
        let logits = self.model.forward(prompt, &mut self.kv.cache, false)?;
        self.kv.tokens.extend_from_slice(prompt);
        self.pick(&logits, &[], bias)
    }

    /// Feed the token just produced and sample the next one.
    pub fn step(&mut self, token: u32) -> Result<u32> {
        self.step_excluding(token, &[])
    }

    /// [`Decoder::step`] that never returns a token of `banned` (ids out of the vocabulary are
    /// ignored): their logits are −∞ for the sampler only, so [`Decoder::last_logprob`] stays
    /// the model's own probability of the token chosen. Used for the opener's no-repeat
    /// n-gram constraint.
    pub fn step_excluding(&mut self, token: u32, banned: &[u32]) -> Result<u32> {
        self.step_steered(token, banned, &[])
    }

    /// [`Decoder::step_excluding`] that also adds `bias` (token id, nats; ids out of the
    /// vocabulary ignored) to those tokens' logits for the sampler only: the opener's prompt
    /// bias toward the question's own words. A banned token stays banned whatever its bias,
    /// and [`Decoder::last_logprob`] stays the model's own probability of the token chosen.
    pub fn step_steered(&mut self, token: u32, banned: &[u32], bias: &[(u32, f32)]) -> Result<u32> {
        let logits = self.model.forward(&[token], &mut self.kv.cache, false)?;
        self.kv.tokens.push(token);
        self.pick(&logits, banned, bias)
    }

    /// Natural-log probability, under the model's own softmax (temperature 1), of the token
    /// that the last [`Decoder::prefill`] or [`Decoder::step`] returned.
    pub fn last_logprob(&self) -> f32 {
        self.last_logprob
    }

    fn pick(&mut self, logits: &candle_core::Tensor, banned: &[u32], bias: &[(u32, f32)]) -> Result<u32> {
        let mut v: Vec<f32> = logits.flatten_all()?.to_vec1()?;
        let touched = bias.iter().map(|&(b, _)| b).chain(banned.iter().copied());
        let saved: Vec<(usize, f32)> = touched.filter_map(|b| v.get(b as usize).map(|&l| (b as usize, l))).collect();
        for &(i, b) in bias {
            if let Some(l) = v.get_mut(i as usize) {
                *l += b;
            }
        }
        for &i in banned {
            if let Some(l) = v.get_mut(i as usize) {
                *l = f32::NEG_INFINITY;
            }
        }
        let id = self.sampler.sample_slice(&v)?;
        for &(i, l) in &saved {
            v[i] = l;
        }
        self.last_logprob = log_prob(&v, id);
        Ok(id)
    }
}

/// Why generation stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The opener's word budget was reached (at a word boundary).
    WordBudget,
    /// The model produced an end-of-turn token.
    EndOfTurn,
    /// `max_new_tokens` was reached.
    MaxTokens,
    /// The context window is full.
    ContextFull,
    /// The caller's callback asked to stop.
    Caller,
    /// The input was too long; the generic opener was returned (paper: fallback for long inputs).
    Fallback,
}

/// Result of [`generate`].
#[derive(Debug, Clone)]
pub struct Generation {
    /// Generated ids (excluding the stop token).
    pub tokens: Vec<u32>,
    /// Decoded text.
    pub text: String,
    /// Prompt forward + first sample (ms).
    pub prefill_ms: f64,
    /// Wall time per decode step after the first token (ms).
    pub step_ms: Vec<f64>,
    /// Total (ms).
    pub total_ms: f64,
    /// Why it stopped.
    pub stop: StopReason,
}

/// Plain generation: prefill `prompt` and decode up to `max_new_tokens` tokens, streaming text
/// pieces through `on_piece`; return `false` from it to stop early.
pub fn generate(
    model: &Model,
    tok: &ChatTokenizer,
    prompt: &[u32],
    max_new_tokens: usize,
    sampling: SamplingParams,
    on_piece: impl FnMut(&str) -> bool + Send,
) -> Result<Generation> {
    if max_new_tokens == 0 {
        return Err(LmError::InvalidArgument("max_new_tokens must be ≥ 1".into()));
    }
    model.install(|| generate_in_pool(model, tok, prompt, max_new_tokens, sampling, on_piece))
}

fn generate_in_pool(
    model: &Model,
    tok: &ChatTokenizer,
    prompt: &[u32],
    max_new_tokens: usize,
    sampling: SamplingParams,
    mut on_piece: impl FnMut(&str) -> bool,
) -> Result<Generation> {
    let t0 = Instant::now();
    let mut dec = Decoder::new(model, sampling)?;
    let mut next = dec.prefill(prompt)?;
    let prefill_ms = ms(t0);
    let mut stream = TextStream::new();
    let mut tokens = Vec::new();
    let mut text = String::new();
    let mut step_ms = Vec::new();
    let stop = loop {
        if tok.stop_ids().contains(&next) {
            break StopReason::EndOfTurn;
        }
        tokens.push(next);
        let piece = stream.push(tok, next)?;
        text.push_str(&piece);
        if !piece.is_empty() && !on_piece(&piece) {
            break StopReason::Caller;
        }
        if tokens.len() >= max_new_tokens {
            break StopReason::MaxTokens;
        }
        if dec.remaining() == 0 {
            break StopReason::ContextFull;
        }
        let ts = Instant::now();
        next = dec.step(next)?;
        step_ms.push(ms(ts));
    };
    Ok(Generation { tokens, text, prefill_ms, step_ms, total_ms: ms(t0), stop })
}

/// Milliseconds since `t`.
pub(crate) fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}
