//! BPE tokenizer (`tokenizer.json`, tokenizers crate) plus the chat serialization declared in
//! mulm.json (paper §architecture: "BPE tokenizer with vocabulary 12,288 … chat serialization
//! with explicit turn-boundary tokens"), and incremental detokenization for streaming.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{LmError, Result};
use crate::mulm_file::MulmFile;

/// Speaker of a chat turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Optional instructions turn.
    System,
    /// The person talking to the device.
    User,
    /// The model (μLM opener + cloud continuation in firstword).
    Assistant,
}

impl Role {
    /// Key of this role in `chat_template.roles`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

/// One message of a chat (a user or assistant turn in the chat template); named apart from
/// the daemon's voice-turn state machine (`daemon::turn::Turn`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Speaker.
    pub role: Role,
    /// Text of the turn.
    pub content: String,
}

impl ChatMessage {
    /// A user turn.
    pub fn user(text: impl Into<String>) -> ChatMessage {
        ChatMessage { role: Role::User, content: text.into() }
    }
    /// An assistant turn.
    pub fn assistant(text: impl Into<String>) -> ChatMessage {
        ChatMessage { role: Role::Assistant, content: text.into() }
    }
}

/// A serialized chat history ready for prefill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatPrompt {
    /// Token ids: begin tokens, turns, generation prefix.
    pub ids: Vec<u32>,
    /// Content tokens of the last user turn (what the paper calls the query length).
    pub query_tokens: usize,
    /// Oldest turns dropped to fit the token budget.
    pub dropped_turns: usize,
}

/// The tokenizer together with the special-token ids and chat template from mulm.json.
#[derive(Debug, Clone)]
pub struct ChatTokenizer {
    inner: tokenizers::Tokenizer,
    mulm: MulmFile,
    stop_ids: Vec<u32>,
}

impl ChatTokenizer {
    /// Load `tokenizer.json` and check that every special token of `mulm` has the same id there.
    pub fn from_file(path: &Path, mulm: &MulmFile) -> Result<ChatTokenizer> {
        let inner = tokenizers::Tokenizer::from_file(path).map_err(|e| LmError::Tokenizer(format!("{}: {e}", path.display())))?;
        ChatTokenizer::new(inner, mulm)
    }

    /// Wrap an in-memory tokenizer (e.g. one trained in a test), checking special-token ids
    /// and that the tokenizer fits the model's vocabulary.
    pub fn new(inner: tokenizers::Tokenizer, mulm: &MulmFile) -> Result<ChatTokenizer> {
        for t in mulm.special_tokens.values() {
            let found = inner.token_to_id(&t.content);
            if found != Some(t.id) {
                return Err(LmError::SpecialTokenMismatch { content: t.content.clone(), expected: t.id, found });
            }
        }
        let size = inner.get_vocab_size(true);
        if size > mulm.model.vocab {
            return Err(LmError::ConfigMismatch {
                key: "vocab".into(),
                expected: mulm.model.vocab.to_string(),
                found: size.to_string(),
                source_name: "tokenizer.json".into(),
            });
        }
        Ok(ChatTokenizer { stop_ids: mulm.stop_ids()?, inner, mulm: mulm.clone() })
    }

    /// The wrapped tokenizers-crate tokenizer.
    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }

    /// The mulm.json this tokenizer was checked against.
    pub fn mulm(&self) -> &MulmFile {
        &self.mulm
    }

    /// Ids that end an assistant turn.
    pub fn stop_ids(&self) -> &[u32] {
        &self.stop_ids
    }

    /// Encode plain text without adding special tokens.
    pub fn encode_text(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self.inner.encode(text, false).map_err(LmError::tok)?;
        Ok(enc.get_ids().to_vec())
    }

    /// Decode ids to text, dropping special tokens.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.inner.decode(ids, true).map_err(LmError::tok)
    }

    fn names_to_ids(&self, names: &[String]) -> Result<Vec<u32>> {
        names.iter().map(|n| self.mulm.special_id(n)).collect()
    }

    /// Serialize `history` per the chat template, ending with the generation prefix, within
    /// `max_tokens` (tokens). Oldest turns are dropped first; the last turn is never dropped.
    pub fn encode_chat(&self, history: &[ChatMessage], max_tokens: usize) -> Result<ChatPrompt> {
        let t = &self.mulm.chat_template;
        let begin = self.names_to_ids(&t.begin)?;
        let gen = self.names_to_ids(&t.generation_prefix)?;
        let mut turns: Vec<Vec<u32>> = Vec::with_capacity(history.len());
        let mut query_tokens = 0;
        for turn in history {
            let fmt = t
                .roles
                .get(turn.role.as_str())
                .ok_or_else(|| LmError::InvalidConfig(format!("chat_template.roles lacks {:?}", turn.role.as_str())))?;
            let text = if t.trim_content { turn.content.trim() } else { turn.content.as_str() };
            let content = self.encode_text(text)?;
            if turn.role == Role::User {
                query_tokens = content.len();
            }
            let mut ids = self.names_to_ids(&fmt.prefix)?;
            ids.extend_from_slice(&content);
            ids.extend(self.names_to_ids(&fmt.suffix)?);
            turns.push(ids);
        }
        let fixed = begin.len() + gen.len();
        let mut total: usize = fixed + turns.iter().map(Vec::len).sum::<usize>();
        let mut dropped = 0;
        while total > max_tokens && turns.len() - dropped > 1 {
            total -= turns[dropped].len();
            dropped += 1;
        }
        if total > max_tokens {
            return Err(LmError::PromptTooLong { tokens: total, max: max_tokens });
        }
        let mut ids = begin;
        for turn in &turns[dropped..] {
            ids.extend_from_slice(turn);
        }
        ids.extend(gen);
        Ok(ChatPrompt { ids, query_tokens, dropped_turns: dropped })
    }
}

/// Incremental detokenizer: turns a stream of ids into text pieces without splitting UTF-8
/// characters that span several byte-level tokens (a piece is released only once it decodes
/// without a trailing U+FFFD).
#[derive(Debug, Clone, Default)]
pub struct TextStream {
    ids: Vec<u32>,
    prev: usize,
    current: usize,
}

impl TextStream {
    /// Empty stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add one id; returns the newly completed text (possibly empty).
    pub fn push(&mut self, tok: &ChatTokenizer, id: u32) -> Result<String> {
        let prev_text = if self.current > self.prev { tok.decode(&self.ids[self.prev..self.current])? } else { String::new() };
        self.ids.push(id);
        let text = tok.decode(&self.ids[self.prev..])?;
        if text.len() > prev_text.len() && !text.ends_with('\u{FFFD}') && text.is_char_boundary(prev_text.len()) {
            let piece = text[prev_text.len()..].to_string();
            self.prev = self.current;
            self.current = self.ids.len();
            Ok(piece)
        } else {
            Ok(String::new())
        }
    }

    /// All ids pushed so far.
    pub fn ids(&self) -> &[u32] {
        &self.ids
    }
}
