//! Gemma's SentencePiece tokenizer rebuilt from GGUF metadata.
//!
//! The GGUF carries no `tokenizer.json`, only `tokenizer.ggml.tokens`, `scores`
//! and `token_type` (model `llama`, i.e. SentencePiece BPE with byte fallback).
//! The `tokenizers` crate's Unigram model cannot reproduce this vocabulary: the
//! scores are negative merge ranks, so a Viterbi search over them prefers many
//! short pieces to one long one. This is therefore a small own encoder that does
//! what llama.cpp's SPM tokenizer does:
//! 1. split the text on user-defined tokens (`\n`, `\n\n`, runs of spaces, HTML tags);
//! 2. in each other fragment replace ' ' by '▁' and start from single characters;
//! 3. repeatedly merge the adjacent pair whose concatenation is in the vocabulary
//!    with the highest score (leftmost on ties);
//! 4. characters not in the vocabulary become `<0xXX>` byte tokens.

use std::collections::HashMap;

use candle_core::quantized::gguf_file;

/// SentencePiece's whitespace marker.
const SPACE: char = '▁';

/// GGUF token types (llama.cpp `LLAMA_TOKEN_TYPE_*`).
mod token_type {
    pub const CONTROL: i32 = 3;
    pub const USER_DEFINED: i32 = 4;
    pub const BYTE: i32 = 6;
}

/// Errors building the tokenizer from GGUF metadata.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    /// A required metadata key is missing or has the wrong type.
    #[error("GGUF tokenizer metadata: {0}")]
    Metadata(String),
}

/// Gemma tokenizer (encode + streaming decode).
#[derive(Debug, Clone)]
pub struct GemmaTokenizer {
    pieces: Vec<String>,
    scores: Vec<f32>,
    types: Vec<i32>,
    index: HashMap<String, u32>,
    /// User-defined tokens, longest first, matched verbatim before BPE.
    user_defined: Vec<(String, u32)>,
    byte_tokens: [Option<u32>; 256],
    /// Beginning-of-sequence token id.
    pub bos: u32,
    /// End-of-sequence token id.
    pub eos: u32,
    /// `<end_of_turn>` id if present (instruction-tuned Gemma ends turns with it).
    pub end_of_turn: Option<u32>,
}

fn meta<'a>(ct: &'a gguf_file::Content, key: &str) -> Result<&'a gguf_file::Value, TokenizerError> {
    ct.metadata
        .get(key)
        .ok_or_else(|| TokenizerError::Metadata(format!("missing {key}")))
}

impl GemmaTokenizer {
    /// Build from GGUF metadata (`tokenizer.ggml.*`).
    pub fn from_gguf(ct: &gguf_file::Content) -> Result<Self, TokenizerError> {
        let bad = |k: &str, e: candle_core::Error| TokenizerError::Metadata(format!("{k}: {e}"));
        let tokens = meta(ct, "tokenizer.ggml.tokens")?
            .to_vec()
            .map_err(|e| bad("tokens", e))?;
        let pieces = tokens
            .iter()
            .map(|v| v.to_string().cloned())
            .collect::<Result<Vec<String>, _>>()
            .map_err(|e| bad("tokens", e))?;
        let scores = meta(ct, "tokenizer.ggml.scores")?
            .to_vec()
            .map_err(|e| bad("scores", e))?
            .iter()
            .map(|v| v.to_f32())
            .collect::<Result<Vec<f32>, _>>()
            .map_err(|e| bad("scores", e))?;
        let types = meta(ct, "tokenizer.ggml.token_type")?
            .to_vec()
            .map_err(|e| bad("token_type", e))?
            .iter()
            .map(|v| v.to_i32())
            .collect::<Result<Vec<i32>, _>>()
            .map_err(|e| bad("token_type", e))?;
        let id = |k: &str| -> Result<u32, TokenizerError> {
            meta(ct, k)?.to_u32().map_err(|e| bad(k, e))
        };
        let bos = id("tokenizer.ggml.bos_token_id")?;
        let eos = id("tokenizer.ggml.eos_token_id")?;
        Self::new(pieces, scores, types, bos, eos)
    }

    /// Build from raw vocabulary arrays (same layout as the GGUF metadata).
    pub fn new(
        pieces: Vec<String>,
        scores: Vec<f32>,
        types: Vec<i32>,
        bos: u32,
        eos: u32,
    ) -> Result<Self, TokenizerError> {
        if pieces.len() != scores.len() || pieces.len() != types.len() {
            return Err(TokenizerError::Metadata(format!(
                "tokens/scores/token_type lengths differ: {} {} {}",
                pieces.len(),
                scores.len(),
                types.len()
            )));
        }
        let mut index = HashMap::with_capacity(pieces.len());
        let mut user_defined = Vec::new();
        let mut byte_tokens = [None; 256];
        for (i, p) in pieces.iter().enumerate() {
            let i = i as u32;
            index.entry(p.clone()).or_insert(i);
            match types[i as usize] {
                token_type::USER_DEFINED => user_defined.push((p.clone(), i)),
                token_type::BYTE => {
                    if let Some(hex) = p.strip_prefix("<0x").and_then(|s| s.strip_suffix('>')) {
                        if let Ok(b) = u8::from_str_radix(hex, 16) {
                            byte_tokens[b as usize] = Some(i);
                        }
                    }
                }
                _ => {}
            }
        }
        user_defined.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
        let end_of_turn = index.get("<end_of_turn>").copied();
        Ok(Self {
            pieces,
            scores,
            types,
            index,
            user_defined,
            byte_tokens,
            bos,
            eos,
            end_of_turn,
        })
    }

    /// Vocabulary size.
    pub fn vocab_size(&self) -> usize {
        self.pieces.len()
    }

    /// Encode text (no special-token parsing: `<bos>` in the text is plain text).
    pub fn encode(&self, text: &str, add_bos: bool) -> Vec<u32> {
        let mut out = Vec::with_capacity(text.len() / 3 + 2);
        if add_bos {
            out.push(self.bos);
        }
        let mut frag_start = 0;
        let mut i = 0;
        while i < text.len() {
            if let Some((len, id)) = self.user_defined_at(&text[i..]) {
                self.encode_fragment(&text[frag_start..i], &mut out);
                out.push(id);
                i += len;
                frag_start = i;
            } else {
                i += text[i..].chars().next().map_or(1, char::len_utf8);
            }
        }
        self.encode_fragment(&text[frag_start..], &mut out);
        out
    }

    fn user_defined_at(&self, s: &str) -> Option<(usize, u32)> {
        let first = s.chars().next()?;
        // Fast path: every user-defined token here starts with one of these.
        if !matches!(first, '\n' | ' ' | '\t' | '<' | '[') {
            return None;
        }
        self.user_defined
            .iter()
            .find(|(p, _)| s.starts_with(p.as_str()))
            .map(|(p, id)| (p.len(), *id))
    }

    fn encode_fragment(&self, frag: &str, out: &mut Vec<u32>) {
        if frag.is_empty() {
            return;
        }
        let escaped: String = frag
            .chars()
            .map(|c| if c == ' ' { SPACE } else { c })
            .collect();
        let mut syms: Vec<String> = escaped.chars().map(String::from).collect();
        let mut buf = String::new();
        loop {
            let mut best: Option<(usize, f32, u32)> = None;
            for k in 0..syms.len().saturating_sub(1) {
                buf.clear();
                buf.push_str(&syms[k]);
                buf.push_str(&syms[k + 1]);
                if let Some(&id) = self.index.get(buf.as_str()) {
                    let score = self.scores[id as usize];
                    if best.is_none_or(|(_, s, _)| score > s) {
                        best = Some((k, score, id));
                    }
                }
            }
            let Some((k, _, _)) = best else { break };
            let right = syms.remove(k + 1);
            syms[k].push_str(&right);
        }
        for s in syms {
            match self.index.get(s.as_str()) {
                Some(&id) => out.push(id),
                None => {
                    for b in s.as_bytes() {
                        // Gemma has all 256 byte tokens; fall back to <unk>-free skipping otherwise.
                        if let Some(id) = self.byte_tokens[*b as usize] {
                            out.push(id);
                        }
                    }
                }
            }
        }
    }

    /// Whether `id` is a control token (never printed).
    pub fn is_control(&self, id: u32) -> bool {
        self.types
            .get(id as usize)
            .is_none_or(|&t| t == token_type::CONTROL)
    }

    /// Decode a whole token sequence to text (control tokens dropped).
    pub fn decode(&self, ids: &[u32]) -> String {
        let mut d = StreamDecoder::default();
        let mut s = String::new();
        for &id in ids {
            s.push_str(&d.push(self, id));
        }
        s.push_str(&d.flush());
        s
    }
}

/// Incremental decoder: turns token ids into text, holding back incomplete UTF-8
/// sequences spread over byte-fallback tokens.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    bytes: Vec<u8>,
}

impl StreamDecoder {
    /// Add one token; returns the text it completes (maybe empty).
    pub fn push(&mut self, tok: &GemmaTokenizer, id: u32) -> String {
        let i = id as usize;
        match tok.types.get(i) {
            None | Some(&token_type::CONTROL) => {}
            Some(&token_type::BYTE) => {
                if let Some(b) = tok.byte_tokens.iter().position(|t| *t == Some(id)) {
                    self.bytes.push(b as u8);
                }
            }
            Some(_) => {
                let piece = tok.pieces[i].replace(SPACE, " ");
                self.bytes.extend_from_slice(piece.as_bytes());
            }
        }
        self.take_valid()
    }

    /// Release the longest valid UTF-8 prefix.
    fn take_valid(&mut self) -> String {
        let valid = match std::str::from_utf8(&self.bytes) {
            Ok(s) => s.len(),
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            // Invalid bytes (not just incomplete): give them up lossily.
            Err(_) => {
                return String::from_utf8_lossy(&std::mem::take(&mut self.bytes)).into_owned()
            }
        };
        let rest = self.bytes.split_off(valid);
        String::from_utf8(std::mem::replace(&mut self.bytes, rest)).unwrap_or_default()
    }

    /// End of stream: whatever bytes remain, lossily.
    pub fn flush(&mut self) -> String {
        String::from_utf8_lossy(&std::mem::take(&mut self.bytes)).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A toy vocabulary in Gemma's layout.
    fn toy() -> GemmaTokenizer {
        let mut pieces: Vec<String> = vec!["<pad>", "<eos>", "<bos>", "\n", "  "]
            .into_iter()
            .map(String::from)
            .collect();
        let mut types = vec![3, 3, 3, 4, 4];
        for b in 0..=255u8 {
            pieces.push(format!("<0x{b:02X}>"));
            types.push(6);
        }
        for p in [
            "▁", "h", "e", "l", "o", "he", "ll", "hell", "hello", "▁hello", "w", "r", "d", "or",
            "ld", "▁w", "▁wor", "▁world",
        ] {
            pieces.push(p.to_string());
            types.push(1);
        }
        let n = pieces.len();
        // Later pieces rank lower, like Gemma's -rank scores.
        let scores = (0..n).map(|i| -(i as f32)).collect();
        GemmaTokenizer::new(pieces, scores, types, 2, 1).unwrap()
    }

    #[test]
    fn merges_and_round_trips() {
        let t = toy();
        let ids = t.encode("hello world", true);
        let names: Vec<&str> = ids.iter().map(|&i| t.pieces[i as usize].as_str()).collect();
        assert_eq!(names, vec!["<bos>", "hello", "▁world"]);
        assert_eq!(t.decode(&ids), "hello world");
    }

    #[test]
    fn user_defined_and_byte_fallback() {
        let t = toy();
        let ids = t.encode("hello\n  é", false);
        assert_eq!(t.decode(&ids), "hello\n  é");
        assert!(ids.contains(&3) && ids.contains(&4));
        // é is two byte tokens; the stream decoder holds the first half back.
        let mut d = StreamDecoder::default();
        let n = ids.len();
        assert_eq!(d.push(&t, ids[n - 2]), "");
        assert_eq!(d.push(&t, ids[n - 1]), "é");
    }
}
