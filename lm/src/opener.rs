//! Openers: the first N words of the answer, generated on the device and committed (paper
//! §idea, §collaborative generation). Generation stops exactly at a word boundary — a word is
//! complete when whitespace follows it or the turn ends — and each finished word is streamed
//! through a callback so speech can start before the last word exists. Inputs longer than a
//! configured query length get a generic opener instead (paper §results, "query lengths").

use std::time::Instant;

use serde::Serialize;

use crate::decode::{ms, Decoder, KvState, StopReason};
use crate::error::{LmError, Result};
use crate::model::Model;
use crate::mulm_file::OpenerSettings;
use crate::prompt_bias::PromptBias;
use crate::sampler::{repeated_ngram_continuations, SamplingParams};
use crate::tokenizer::{ChatMessage, ChatPrompt, ChatTokenizer, Role, TextStream};

/// Largest word budget accepted (paper: 4–8 is the operating range; 16 the largest studied).
pub const MAX_WORDS: usize = 16;

/// Pure word-boundary state machine over decoded text pieces (one piece per token).
///
/// Words are maximal runs of non-whitespace characters; punctuation attaches to its word
/// ("Paris," is one word). Word k is *finished* when a whitespace character follows it, i.e.
/// when the token that starts word k+1 (or a whitespace-only token) arrives, or at end of turn
/// ([`WordBoundary::finish`]). After `budget` finished words the machine is done and ignores
/// further input, so an opener never contains a cut word.
#[derive(Debug, Clone)]
pub struct WordBoundary {
    budget: usize,
    words: Vec<String>,
    current: String,
    /// Exact text (original spacing) from the first word's first character to the end of the
    /// last finished word.
    text: String,
    /// Whitespace seen after the last finished word and not yet committed to `text`.
    pending_ws: String,
    done: bool,
}

impl WordBoundary {
    /// Machine that stops after `budget` words (≥ 1).
    pub fn new(budget: usize) -> WordBoundary {
        WordBoundary {
            budget: budget.max(1),
            words: Vec::new(),
            current: String::new(),
            text: String::new(),
            pending_ws: String::new(),
            done: false,
        }
    }

    fn close_word(&mut self, out: &mut Vec<String>) {
        let w = std::mem::take(&mut self.current);
        if !self.text.is_empty() {
            self.text.push_str(&self.pending_ws);
        }
        self.pending_ws.clear();
        self.text.push_str(&w);
        self.words.push(w.clone());
        out.push(w);
        if self.words.len() >= self.budget {
            self.done = true;
        }
    }

    /// Feed the text of one decoded token; returns the words this piece finished (in order).
    pub fn push(&mut self, piece: &str) -> Vec<String> {
        let mut out = Vec::new();
        for c in piece.chars() {
            if self.done {
                break;
            }
            if c.is_whitespace() {
                if !self.current.is_empty() {
                    self.close_word(&mut out);
                }
                if !self.done && !self.words.is_empty() {
                    self.pending_ws.push(c);
                }
            } else {
                self.current.push(c);
            }
        }
        out
    }

    /// End of turn: the word in progress (if any) is complete. Returns it.
    pub fn finish(&mut self) -> Option<String> {
        if self.done || self.current.is_empty() {
            return None;
        }
        let mut out = Vec::new();
        self.close_word(&mut out);
        self.done = true;
        out.pop()
    }

    /// True once `budget` words are finished (or after [`WordBoundary::finish`]).
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Finished words so far.
    pub fn words(&self) -> &[String] {
        &self.words
    }

    /// Finished words joined with their original spacing (no leading/trailing whitespace).
    pub fn text(&self) -> &str {
        &self.text
    }
}

/// Run [`WordBoundary`] over a hand-made token stream; returns (words, tokens consumed until
/// the machine stopped). A convenience for tests and offline analysis.
pub fn first_words(pieces: &[&str], budget: usize) -> (Vec<String>, usize) {
    let mut wb = WordBoundary::new(budget);
    for (i, p) in pieces.iter().enumerate() {
        wb.push(p);
        if wb.is_done() {
            return (wb.words().to_vec(), i + 1);
        }
    }
    wb.finish();
    (wb.words().to_vec(), pieces.len())
}

/// What to open on.
#[derive(Debug, Clone, Copy)]
pub enum OpenerInput<'a> {
    /// A single user query (single-turn chat).
    Query(&'a str),
    /// A multi-turn history whose last turn is the user's.
    History(&'a [ChatMessage]),
}

/// Timings of one opener (ms from the start of the call).
#[derive(Debug, Clone, Default, Serialize)]
pub struct OpenerTimings {
    /// Prompt serialization + prefill forward + first sample.
    pub prefill_ms: f64,
    /// Until the first generated token's text was available.
    pub first_token_ms: f64,
    /// Whole call.
    pub total_ms: f64,
    /// When each word was handed to the callback.
    pub word_ms: Vec<f64>,
}

/// A committed opener.
#[derive(Debug, Clone, Serialize)]
pub struct Opener {
    /// The words with their original spacing (what is spoken and sent to the cloud).
    pub text: String,
    /// The words.
    pub words: Vec<String>,
    /// Generated token ids, including the one that revealed the final word boundary.
    pub tokens: Vec<u32>,
    /// Natural-log probability of each of `tokens` under the model (same length; empty for
    /// the generic fallback opener). The opener gate scores with it.
    pub token_logprobs: Vec<f32>,
    /// Prompt length (tokens).
    pub prompt_tokens: usize,
    /// Why generation stopped ([`StopReason::Fallback`] for the generic opener).
    pub stop: StopReason,
    /// Timings.
    pub timings: OpenerTimings,
}

/// Holds a model, its tokenizer and a reusable decoder (KV cache stays allocated between
/// calls, and a prompt that starts like the previous one prefills only what differs: a
/// conversation's next opener runs only the new turns).
#[derive(Debug)]
pub struct OpenerEngine<'m> {
    tok: &'m ChatTokenizer,
    decoder: Decoder<'m>,
    /// Opener settings (defaults from mulm.json).
    pub settings: OpenerSettings,
    /// Sampling (greedy by default).
    pub sampling: SamplingParams,
}

impl<'m> OpenerEngine<'m> {
    /// Engine with mulm.json's opener settings and greedy decoding.
    pub fn new(model: &'m Model, tok: &'m ChatTokenizer) -> Result<OpenerEngine<'m>> {
        Self::resume(model, tok, KvState::new(model)?)
    }

    /// [`OpenerEngine::new`] over a cache an earlier engine or decoder of `model` left
    /// ([`OpenerEngine::into_kv`]). Errors: a cache made for another model.
    pub fn resume(model: &'m Model, tok: &'m ChatTokenizer, kv: KvState) -> Result<OpenerEngine<'m>> {
        Ok(OpenerEngine {
            tok,
            decoder: Decoder::resume(model, kv, SamplingParams::default())?,
            settings: tok.mulm().opener.clone(),
            sampling: SamplingParams::default(),
        })
    }

    /// The KV cache and the tokens in it (the last prompt and the opener fed after it).
    pub fn into_kv(self) -> KvState {
        self.decoder.into_kv()
    }

    /// Runs `history`'s prompt into the cache without writing an opener, so that the next
    /// opener whose prompt starts the same way prefills only the rest (a conversation's
    /// earlier turns, run while the device waits for the next question). Returns the
    /// tokens prefilled now. Errors: an empty history, a tokenizer or model failure.
    pub fn warm(&mut self, history: &[ChatMessage]) -> Result<usize> {
        let prompt = self.encode(history)?;
        let model = self.decoder.model();
        model.install(|| self.prefill(&prompt.ids, &[]).map(|(_, ran)| ran))
    }

    /// `history` in the chat template, leaving room for the opener's new tokens. Errors: an
    /// empty history, a tokenizer failure.
    fn encode(&self, history: &[ChatMessage]) -> Result<ChatPrompt> {
        if history.is_empty() {
            return Err(LmError::InvalidArgument("empty history".into()));
        }
        let max_seq = self.decoder.model().config().max_seq_len;
        self.tok.encode_chat(history, max_seq.saturating_sub(self.settings.max_new_tokens.max(1)))
    }

    /// Prefills what of `ids` the cache does not hold already; returns the first new token
    /// (sampled with `bias`, [`Decoder::prefill_steered`]) and how many tokens ran.
    fn prefill(&mut self, ids: &[u32], bias: &[(u32, f32)]) -> Result<(u32, usize)> {
        let kept = self.decoder.rewind_to_prefix(ids, self.sampling.clone())?;
        Ok((self.decoder.prefill_steered(&ids[kept..], bias)?, ids.len() - kept))
    }

    /// Generate an opener of `budget_words` words (1..=16; None = settings.default_words),
    /// calling `on_word(word, index)` as each word is finished.
    pub fn opener(
        &mut self,
        input: OpenerInput<'_>,
        budget_words: Option<usize>,
        on_word: impl FnMut(&str, usize) + Send,
    ) -> Result<Opener> {
        self.opener_for_harm(input, budget_words, None, on_word)
    }

    /// [`OpenerEngine::opener`] for a question whose harmful-request margin is `harm_margin`
    /// (None: the check did not run): the prompt bias is
    /// [`OpenerSettings::prompt_bias_for`] of it, so a question that looks harmful is not
    /// steered toward restating itself.
    pub fn opener_for_harm(
        &mut self,
        input: OpenerInput<'_>,
        budget_words: Option<usize>,
        harm_margin: Option<f32>,
        on_word: impl FnMut(&str, usize) + Send,
    ) -> Result<Opener> {
        let model = self.decoder.model();
        let bias_nats = self.settings.prompt_bias_for(harm_margin);
        model.install(|| self.opener_in_pool(input, budget_words, bias_nats, on_word))
    }

    fn opener_in_pool(
        &mut self,
        input: OpenerInput<'_>,
        budget_words: Option<usize>,
        bias_nats: f32,
        mut on_word: impl FnMut(&str, usize),
    ) -> Result<Opener> {
        let t0 = Instant::now();
        let budget = budget_words.unwrap_or(self.settings.default_words);
        if !(1..=MAX_WORDS).contains(&budget) {
            return Err(LmError::InvalidArgument(format!("opener budget {budget} words not in 1..={MAX_WORDS}")));
        }
        let single;
        let history: &[ChatMessage] = match input {
            OpenerInput::Query(q) => {
                single = [ChatMessage::user(q)];
                &single
            }
            OpenerInput::History(h) => h,
        };
        let prompt = self.encode(history)?;
        if prompt.query_tokens > self.settings.max_query_tokens {
            return Ok(self.fallback(prompt.ids.len(), t0, &mut on_word));
        }

        let last_user = history.iter().rev().find(|m| matches!(m.role, Role::User)).map_or("", |m| m.content.as_str());
        let mut bias = PromptBias::for_question(self.tok, last_user, bias_nats)?;
        let (mut next, _) = self.prefill(&prompt.ids, &bias.logit_bias())?;
        let prefill_ms = ms(t0);
        let mut first_token_ms = 0.0;
        let mut stream = TextStream::new();
        let mut wb = WordBoundary::new(budget);
        let mut tokens = Vec::new();
        let mut token_logprobs = Vec::new();
        let mut word_ms = Vec::new();
        let mut banned = Vec::new();
        let mut emit = |w: &str, word_ms: &mut Vec<f64>| {
            on_word(w, word_ms.len());
            word_ms.push(ms(t0));
        };
        let stop = loop {
            if self.tok.stop_ids().contains(&next) {
                if let Some(w) = wb.finish() {
                    emit(&w, &mut word_ms);
                }
                break StopReason::EndOfTurn;
            }
            tokens.push(next);
            token_logprobs.push(self.decoder.last_logprob());
            bias.used(next);
            let piece = stream.push(self.tok, next)?;
            if tokens.len() == 1 {
                first_token_ms = ms(t0);
            }
            for w in wb.push(&piece) {
                emit(&w, &mut word_ms);
            }
            if wb.is_done() {
                break StopReason::WordBudget;
            }
            if tokens.len() >= self.settings.max_new_tokens.max(1) {
                break StopReason::MaxTokens;
            }
            if self.decoder.remaining() == 0 {
                break StopReason::ContextFull;
            }
            repeated_ngram_continuations(&tokens, self.settings.no_repeat_ngram, &mut banned);
            next = self.decoder.step_steered(next, &banned, &bias.logit_bias())?;
        };
        if first_token_ms == 0.0 {
            first_token_ms = ms(t0);
        }
        Ok(Opener {
            text: wb.text().to_string(),
            words: wb.words().to_vec(),
            tokens,
            token_logprobs,
            prompt_tokens: prompt.ids.len(),
            stop,
            timings: OpenerTimings { prefill_ms, first_token_ms, total_ms: ms(t0), word_ms },
        })
    }

    fn fallback(&self, prompt_tokens: usize, t0: Instant, on_word: &mut impl FnMut(&str, usize)) -> Opener {
        let text = self.settings.fallback_opener.trim().to_string();
        let words: Vec<String> = text.split_whitespace().map(str::to_string).collect();
        let mut word_ms = Vec::with_capacity(words.len());
        for (i, w) in words.iter().enumerate() {
            on_word(w, i);
            word_ms.push(ms(t0));
        }
        let t = ms(t0);
        Opener {
            text,
            words,
            tokens: Vec::new(),
            token_logprobs: Vec::new(),
            prompt_tokens,
            stop: StopReason::Fallback,
            timings: OpenerTimings { prefill_ms: 0.0, first_token_ms: t, total_ms: t, word_ms },
        }
    }
}

/// One-shot opener (allocates a KV cache per call; use [`OpenerEngine`] in a loop).
pub fn opener(
    model: &Model,
    tok: &ChatTokenizer,
    input: OpenerInput<'_>,
    budget_words: Option<usize>,
    on_word: impl FnMut(&str, usize) + Send,
) -> Result<Opener> {
    OpenerEngine::new(model, tok)?.opener(input, budget_words, on_word)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stops_when_next_word_begins() {
        // "The capital of France is Paris." in byte-level-ish pieces
        let pieces = ["The", " capital", " of", " Fr", "ance", " is", " Paris", "."];
        let (w, used) = first_words(&pieces, 3);
        assert_eq!(w, vec!["The", "capital", "of"]);
        // word 3 ("of") is only known complete when " Fr" arrives
        assert_eq!(used, 4);
        let (w, used) = first_words(&pieces, 4);
        assert_eq!(w, vec!["The", "capital", "of", "France"]);
        assert_eq!(used, 6);
    }

    #[test]
    fn never_cuts_a_multi_token_word() {
        let pieces = [" Photo", "syn", "thesis", " is", " how"];
        let (w, used) = first_words(&pieces, 1);
        assert_eq!(w, vec!["Photosynthesis"]);
        assert_eq!(used, 4);
    }

    #[test]
    fn punctuation_attaches_and_end_of_turn_finishes() {
        let pieces = [" Yes", ",", " it", " is", "."];
        let (w, used) = first_words(&pieces, 6);
        assert_eq!(w, vec!["Yes,", "it", "is."]);
        assert_eq!(used, 5);
    }

    #[test]
    fn newlines_and_multiple_spaces_are_boundaries_and_text_keeps_spacing() {
        let mut wb = WordBoundary::new(3);
        assert!(wb.push("\n").is_empty()); // leading whitespace is not a boundary
        assert!(wb.push("Sure").is_empty());
        assert_eq!(wb.push("!\n\n"), vec!["Sure!"]);
        assert_eq!(wb.push("Here  is"), vec!["Here"]);
        assert!(!wb.is_done());
        assert_eq!(wb.push(" a"), vec!["is"]);
        assert!(wb.is_done());
        assert_eq!(wb.text(), "Sure!\n\nHere  is");
        // after done, input is ignored
        assert!(wb.push(" more words").is_empty());
        assert_eq!(wb.finish(), None);
    }

    #[test]
    fn piece_with_boundary_inside_finishes_only_up_to_budget() {
        let (w, used) = first_words(&["one two three"], 2);
        assert_eq!(w, vec!["one", "two"]);
        assert_eq!(used, 1);
    }

    #[test]
    fn empty_stream_gives_no_words() {
        let (w, used) = first_words(&[], 4);
        assert!(w.is_empty());
        assert_eq!(used, 0);
    }
}
