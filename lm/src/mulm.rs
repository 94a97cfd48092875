//! The μLM as the daemon uses it: a loaded checkpoint directory, openers with a word budget,
//! and the local finish of a sentence the cloud left open.

use crate::checkpoint::LmSection;
use crate::{LmError, Result};

/// A loaded μLM checkpoint (`mulm.json` + `tokenizer.json` + model weights).
pub struct Mulm {
    model: crate::Model,
    tok: crate::ChatTokenizer,
    mulm: crate::MulmFile,
    /// The openers' KV cache and the prompt in it, kept between turns so that a
    /// conversation's next opener prefills only its new turns. Taken for the length of a
    /// call; a call that finds it taken (another thread) uses a fresh cache.
    kv: std::sync::Mutex<Option<crate::KvState>>,
}

/// An opener and whether it ended the answer (end of turn) rather than at the word budget.
pub struct OpenerText {
    pub text: String,
    pub complete: bool,
    /// Tokens of the prompt it was written after (history, question, template tokens).
    pub prompt_tokens: usize,
    /// Natural-log probability of each generated token (empty for the generic opener).
    pub logprobs: Vec<f32>,
}

impl Mulm {
    /// Loads the checkpoint `[lm]` names (`model_dir`, see lm/SCHEMA.md), with its `quant`
    /// and `threads` ([`crate::checkpoint::load_checkpoint`]).
    ///
    /// Errors: [`LmError::MissingCheckpoint`] without `mulm.json`, [`LmError::NoWeights`]
    /// without weights, [`LmError::Loading`] naming the file that failed.
    pub fn load(cfg: &LmSection) -> Result<Self> {
        crate::configure_candle_threads(cfg.threads);
        let m = crate::checkpoint::load_checkpoint(&cfg.model_dir, cfg.quant, cfg.threads)?;
        Ok(Self { model: m.model, tok: m.tok, mulm: m.mulm, kv: std::sync::Mutex::new(None) })
    }

    /// An opener engine over the kept KV cache (or a fresh one when another call holds it).
    fn engine(&self) -> Result<crate::OpenerEngine<'_>> {
        let kept = self.kv.try_lock().ok().and_then(|mut k| k.take());
        match kept {
            Some(kv) => crate::OpenerEngine::resume(&self.model, &self.tok, kv),
            None => crate::OpenerEngine::new(&self.model, &self.tok),
        }
    }

    /// Keeps `engine`'s cache for the next call.
    fn keep(&self, engine: crate::OpenerEngine<'_>) {
        if let Ok(mut k) = self.kv.try_lock() {
            *k = Some(engine.into_kv());
        }
    }

    /// Runs the prompt of `history` (a conversation's earlier turns) into the kept KV cache,
    /// so that the next opener after them prefills only the new question: for the time the
    /// device waits for the user. Returns the tokens run now (1 when all were cached: a
    /// prefill runs at least the last token, for its logits).
    /// Errors: an empty history, a tokenizer or model failure.
    pub fn warm(&self, history: &[crate::ChatMessage]) -> Result<usize> {
        let mut engine = self.engine()?;
        let ran = engine.warm(history);
        self.keep(engine);
        ran
    }

    /// The opener for `query`: the first `words` words (or fewer at end of turn).
    pub fn opener(&self, query: &str, words: usize) -> Result<OpenerText> {
        self.opener_in(&[crate::ChatMessage::user(query)], words)
    }

    /// The opener after a chat `history` that ends with the user's question (multi-turn, in
    /// the model's chat template). The caller keeps the history within
    /// [`Mulm::history_budget`]; beyond the context, the oldest messages would be dropped.
    pub fn opener_in(&self, history: &[crate::ChatMessage], words: usize) -> Result<OpenerText> {
        self.opener_in_for_harm(history, words, None)
    }

    /// [`Mulm::opener_in`] for a question whose harmful-request margin is `harm_margin`
    /// (None: the check did not run; [`crate::OpenerEngine::opener_for_harm`]).
    pub fn opener_in_for_harm(&self, history: &[crate::ChatMessage], words: usize, harm_margin: Option<f32>) -> Result<OpenerText> {
        let mut engine = self.engine()?;
        let o = engine.opener_for_harm(crate::OpenerInput::History(history), Some(words), harm_margin, |_, _| {});
        self.keep(engine);
        let o = o?;
        Ok(OpenerText {
            complete: o.stop == crate::StopReason::EndOfTurn,
            text: o.text.trim().to_string(),
            prompt_tokens: o.prompt_tokens,
            logprobs: o.token_logprobs,
        })
    }

    /// Tokens of `turns` in the prompt, without the template's begin and generation tokens.
    pub fn turns_tokens(&self, turns: &[crate::ChatMessage]) -> Result<usize> {
        let fixed = self.tok.encode_chat(&[], usize::MAX)?.ids.len();
        Ok(self.tok.encode_chat(turns, usize::MAX)?.ids.len().saturating_sub(fixed))
    }

    /// Tokens left for earlier turns before `question`: the context minus the opener's new
    /// tokens, the template's fixed tokens and the question; at most `cap`.
    pub fn history_budget(&self, question: &str, cap: usize) -> Result<usize> {
        let fixed = self.tok.encode_chat(&[], usize::MAX)?.ids.len();
        let q = self.turns_tokens(&[crate::ChatMessage::user(question)])?;
        let room = self.mulm.model.max_seq_len.saturating_sub(self.mulm.opener.max_new_tokens.max(1) + fixed + q);
        Ok(room.min(cap))
    }

    /// The opener after a chat `history` ending with `query` ([`Mulm::opener_in`]), with the
    /// opener gate's score of it against `query` ([`crate::gate::score`]).
    pub fn scored_opener_in(
        &self,
        history: &[crate::ChatMessage],
        query: &str,
        words: usize,
    ) -> Result<(OpenerText, crate::gate::GateScore)> {
        self.scored_opener_for_harm(history, query, words, None)
    }

    /// [`Mulm::scored_opener_in`] for a question whose harmful-request margin is
    /// `harm_margin` ([`Mulm::opener_in_for_harm`]); the score does not include the margin.
    pub fn scored_opener_for_harm(
        &self,
        history: &[crate::ChatMessage],
        query: &str,
        words: usize,
        harm_margin: Option<f32>,
    ) -> Result<(OpenerText, crate::gate::GateScore)> {
        let o = self.opener_in_for_harm(history, words, harm_margin)?;
        let s = crate::gate::score(query, &o.text, &o.logprobs);
        Ok((o, s))
    }

    /// The prompt bias (nats) an opener gets for the harmful-request margin `harm_margin`
    /// ([`crate::mulm_file::OpenerSettings::prompt_bias_for`]).
    pub fn prompt_bias_for(&self, harm_margin: Option<f32>) -> f32 {
        self.mulm.opener.prompt_bias_for(harm_margin)
    }

    /// Whether the prompt bias depends on the harmful-request margin: it is on and
    /// `opener.prompt_bias_max_harm` is set.
    pub fn limits_prompt_bias(&self) -> bool {
        self.mulm.opener.prompt_bias > 0.0 && self.mulm.opener.prompt_bias_max_harm.is_some()
    }

    /// The harmful-request margin above which this checkpoint's gate fires (mulm.json
    /// `opener.harm_gate_margin`, else 0).
    pub fn harm_gate_margin(&self) -> f32 {
        self.mulm.opener.harm_gate_margin()
    }

    /// The gate threshold this checkpoint was calibrated with (mulm.json
    /// `opener.gate_min_score`), if any.
    pub fn gate_min_score(&self) -> Option<f32> {
        self.mulm.opener.gate_min_score
    }

    /// Whether this checkpoint asks for the gate's harmful-request check (mulm.json
    /// `opener.harm_check`).
    pub fn asks_harm_check(&self) -> bool {
        self.mulm.opener.harm_check
    }

    /// Probability (0..1) that the user's turn ends right after `text`: the μLM's softmax
    /// mass on the user role's closing token (`<|end|>`, the first name of the template's
    /// user suffix) after `begin + user prefix + text`. The μLM was trained with that token
    /// closing every user turn, so this is an end-of-turn model at no extra memory
    /// (semantic endpointing, [`crate::endpoint`]). Text longer than the context keeps its
    /// last tokens. Errors: a template without a user suffix, or a model failure.
    pub fn end_of_turn_prob(&self, text: &str) -> Result<f32> {
        let t = &self.mulm.chat_template;
        let user = t.roles.get("user").ok_or_else(|| LmError::Template("no user role".into()))?;
        let Some(end_name) = user.suffix.first() else {
            return Err(LmError::Template("the user role has no suffix, so there is no end-of-turn token".into()));
        };
        let end_id = self.mulm.special_id(end_name)?;
        let mut ids = Vec::new();
        for name in t.begin.iter().chain(&user.prefix) {
            ids.push(self.mulm.special_id(name)?);
        }
        let content = self.tok.encode_text(text.trim())?;
        let room = self.mulm.model.max_seq_len.saturating_sub(ids.len()).max(1);
        ids.extend_from_slice(&content[content.len().saturating_sub(room)..]);
        let mut cache = self.model.new_cache()?;
        let logits: Vec<f32> = self.model.forward(&ids, &mut cache, false)?.to_vec1()?;
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let sum: f32 = logits.iter().map(|l| (l - max).exp()).sum();
        let p = logits.get(end_id as usize).map_or(0.0, |l| (l - max).exp() / sum);
        Ok(if p.is_finite() { p } else { 0.0 })
    }

    /// Continues the assistant's unfinished `prefix` to the end of its sentence (at most
    /// `max_tokens` tokens; cut back to the last whole word if no sentence end comes). A
    /// small model loops ("a good way to make a good way to make …"): generation stops at
    /// the first repeated word trigram of `prefix` + the finish, and the repeat is cut off.
    /// The chat `history` ends with the user's question.
    pub fn finish_sentence(&self, history: &[crate::ChatMessage], prefix: &str, max_tokens: usize) -> Result<String> {
        let room = self.mulm.model.max_seq_len.saturating_sub(max_tokens.max(1));
        let mut ids = self.tok.encode_chat(history, room)?.ids;
        ids.extend(self.tok.encode_text(prefix)?);
        let mut text = String::new();
        let mut ended = false;
        let mut repeat_at = None;
        crate::generate(&self.model, &self.tok, &ids, max_tokens.max(1), crate::SamplingParams::default(), |piece| {
            text.push_str(piece);
            ended = text.trim_end().ends_with(['.', '!', '?']);
            repeat_at = first_repeat(prefix, &text, REPEAT_NGRAM);
            !ended && repeat_at.is_none()
        })?;
        if let Some(cut) = repeat_at {
            text.truncate(cut);
            return Ok(text.trim().to_string());
        }
        if !ended {
            // Drop a possibly cut last word.
            if let Some(i) = text.trim_end().rfind(char::is_whitespace) {
                text.truncate(i);
            }
        }
        Ok(text.trim().to_string())
    }
}

/// Words per n-gram whose second occurrence ends the local finish.
pub const REPEAT_NGRAM: usize = 3;

/// Where the local finish `text` (continuing `prefix`) first repeats an `n`-word sequence
/// already said in `prefix + text`: the byte offset in `text` of the repeat's first word, or
/// None. Only finished words count (a word is finished when whitespace follows it), so a
/// word still being generated is never judged.
pub fn first_repeat(prefix: &str, text: &str, n: usize) -> Option<usize> {
    let norm = |w: &str| w.trim_matches(|c: char| !c.is_alphanumeric()).to_lowercase();
    let mut words: Vec<(String, Option<usize>)> = prefix.split_whitespace().map(|w| (norm(w), None)).collect();
    let finished = text.trim_end_matches(|c: char| !c.is_whitespace());
    let mut pos = 0;
    for w in finished.split_whitespace() {
        let at = pos + finished[pos..].find(w).unwrap_or(0);
        pos = at + w.len();
        words.push((norm(w), Some(at)));
    }
    let n = n.max(1);
    let mut seen = std::collections::HashSet::new();
    for i in 0..words.len().saturating_sub(n - 1) {
        let gram: Vec<&str> = words[i..i + n].iter().map(|(w, _)| w.as_str()).collect();
        if !seen.insert(gram) {
            // The repeat starts at word i; cut the finish there (or at its first word when
            // the repeat starts inside the prefix).
            return words[i..].iter().find_map(|(_, at)| *at).or(Some(0));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_local_finish_stops_at_its_first_repeated_trigram() {
        let text = " a good way to make a good way to make a good place.";
        let cut = first_repeat("", text, 3).unwrap();
        assert_eq!(text[..cut].trim(), "a good way to make");
        // The repeat may begin in the opener the finish continues.
        let cut = first_repeat("Use a good way", " to make a good way to", 3).unwrap();
        assert_eq!(" to make a good way to"[..cut].trim(), "to make");
        assert_eq!(first_repeat("The sky is blue", " because sunlight scatters.", 3), None);
        // An unfinished last word is not judged yet.
        assert_eq!(first_repeat("", " a good way a good wa", 3), None);
        assert!(first_repeat("", " a good way a good way ", 3).is_some());
    }
}
