//! The μLM as the daemon uses it: a loaded checkpoint directory, openers with a word budget,
//! and the local finish of a sentence the cloud left open.

use std::path::Path;

use anyhow::{bail, Context, Result};

/// A loaded μLM checkpoint (`mulm.json` + `tokenizer.json` + model weights).
pub struct Mulm {
    model: lm::Model,
    tok: lm::ChatTokenizer,
    mulm: lm::MulmFile,
}

/// An opener and whether it ended the answer (end of turn) rather than at the word budget.
pub struct OpenerText {
    pub text: String,
    pub complete: bool,
    /// Tokens of the prompt it was written after (history, question, template tokens).
    pub prompt_tokens: usize,
}

impl Mulm {
    /// Loads the checkpoint directory `dir` (see lm/SCHEMA.md).
    pub fn load(dir: &Path) -> Result<Self> {
        if !dir.join("mulm.json").is_file() {
            bail!(
                "no μLM checkpoint in {} (mulm.json missing): the trained default ships in the \
                 repository's models/mulm (`git checkout -- models/mulm`); \
                 `firstword lm dev-checkpoint --out {}` writes random weights of the real shapes",
                dir.display(),
                dir.display()
            );
        }
        lm::configure_candle_threads(1);
        let (model, mulm) = lm::load_dir(dir).with_context(|| format!("loading the μLM from {}", dir.display()))?;
        let tok = lm::ChatTokenizer::from_file(&dir.join("tokenizer.json"), &mulm)
            .with_context(|| format!("loading {}", dir.join("tokenizer.json").display()))?;
        Ok(Self { model, tok, mulm })
    }

    /// The opener for `query`: the first `words` words (or fewer at end of turn).
    pub fn opener(&self, query: &str, words: usize) -> Result<OpenerText> {
        self.opener_in(&[lm::Turn::user(query)], words)
    }

    /// The opener after a chat `history` that ends with the user's question (multi-turn, in
    /// the model's chat template). The caller keeps the history within
    /// [`Mulm::history_budget`]; beyond the context, the oldest messages would be dropped.
    pub fn opener_in(&self, history: &[lm::Turn], words: usize) -> Result<OpenerText> {
        let o = lm::opener(&self.model, &self.tok, lm::OpenerInput::History(history), Some(words), |_, _| {}).context("μLM opener")?;
        Ok(OpenerText { complete: o.stop == lm::StopReason::EndOfTurn, text: o.text.trim().to_string(), prompt_tokens: o.prompt_tokens })
    }

    /// Tokens of `turns` in the prompt, without the template's begin and generation tokens.
    pub fn turns_tokens(&self, turns: &[lm::Turn]) -> Result<usize> {
        let fixed = self.tok.encode_chat(&[], usize::MAX)?.ids.len();
        Ok(self.tok.encode_chat(turns, usize::MAX)?.ids.len().saturating_sub(fixed))
    }

    /// Tokens left for earlier turns before `question`: the context minus the opener's new
    /// tokens, the template's fixed tokens and the question; at most `cap`.
    pub fn history_budget(&self, question: &str, cap: usize) -> Result<usize> {
        let fixed = self.tok.encode_chat(&[], usize::MAX)?.ids.len();
        let q = self.turns_tokens(&[lm::Turn::user(question)])?;
        let room = self.mulm.model.max_seq_len.saturating_sub(self.mulm.opener.max_new_tokens.max(1) + fixed + q);
        Ok(room.min(cap))
    }

    /// Continues the assistant's unfinished `prefix` to the end of its sentence (at most
    /// `max_tokens` tokens; cut back to the last whole word if no sentence end comes), after a
    /// chat `history` that ends with the user's question.
    pub fn finish_sentence(&self, history: &[lm::Turn], prefix: &str, max_tokens: usize) -> Result<String> {
        let room = self.mulm.model.max_seq_len.saturating_sub(max_tokens.max(1));
        let mut ids = self.tok.encode_chat(history, room)?.ids;
        ids.extend(self.tok.encode_text(prefix)?);
        let mut text = String::new();
        let mut ended = false;
        lm::generate(&self.model, &self.tok, &ids, max_tokens.max(1), lm::SamplingParams::default(), |piece| {
            text.push_str(piece);
            ended = text.trim_end().ends_with(['.', '!', '?']);
            !ended
        })
        .context("μLM local finish")?;
        if !ended {
            // Drop a possibly cut last word.
            if let Some(i) = text.trim_end().rfind(char::is_whitespace) {
                text.truncate(i);
            }
        }
        Ok(text.trim().to_string())
    }
}
