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
//!
//! Step 3 runs with a priority queue of candidate pairs over a linked list of
//! symbols (as llama.cpp does): O(n log n) in the fragment's length, where the
//! obvious rescan after every merge is quadratic (a 64 KB prompt took seconds).

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};

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
    /// User-defined tokens, matched verbatim before BPE (longest first; the first
    /// in vocabulary order among equal strings).
    user_defined: HashMap<String, u32>,
    /// Distinct byte lengths of the user-defined tokens, longest first.
    user_defined_lens: Vec<usize>,
    /// Most bytes of text one token can stand for (▁ counted as the one space it is).
    max_piece_bytes: usize,
    byte_tokens: [Option<u32>; 256],
    /// Beginning-of-sequence token id.
    pub bos: u32,
    /// End-of-sequence token id.
    pub eos: u32,
    /// `<end_of_turn>` id if present (instruction-tuned Gemma ends turns with it).
    pub end_of_turn: Option<u32>,
}

fn meta<'a>(ct: &'a gguf_file::Content, key: &str) -> Result<&'a gguf_file::Value, TokenizerError> {
    ct.metadata.get(key).ok_or_else(|| TokenizerError::Metadata(format!("missing {key}")))
}

impl GemmaTokenizer {
    /// Build from GGUF metadata (`tokenizer.ggml.*`).
    pub fn from_gguf(ct: &gguf_file::Content) -> Result<Self, TokenizerError> {
        let bad = |k: &str, e: candle_core::Error| TokenizerError::Metadata(format!("{k}: {e}"));
        let tokens = meta(ct, "tokenizer.ggml.tokens")?.to_vec().map_err(|e| bad("tokens", e))?;
        let pieces = tokens.iter().map(|v| v.to_string().cloned()).collect::<Result<Vec<String>, _>>().map_err(|e| bad("tokens", e))?;
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
        let id = |k: &str| -> Result<u32, TokenizerError> { meta(ct, k)?.to_u32().map_err(|e| bad(k, e)) };
        let bos = id("tokenizer.ggml.bos_token_id")?;
        let eos = id("tokenizer.ggml.eos_token_id")?;
        Self::new(pieces, scores, types, bos, eos)
    }

    /// Build from raw vocabulary arrays (same layout as the GGUF metadata).
    pub fn new(pieces: Vec<String>, scores: Vec<f32>, types: Vec<i32>, bos: u32, eos: u32) -> Result<Self, TokenizerError> {
        if pieces.len() != scores.len() || pieces.len() != types.len() {
            return Err(TokenizerError::Metadata(format!(
                "tokens/scores/token_type lengths differ: {} {} {}",
                pieces.len(),
                scores.len(),
                types.len()
            )));
        }
        // A NaN score would make "the best pair" ill-defined: rank it last.
        let scores: Vec<f32> = scores.into_iter().map(|s| if s.is_nan() { f32::NEG_INFINITY } else { s }).collect();
        let mut index = HashMap::with_capacity(pieces.len());
        let mut user_defined = HashMap::new();
        let mut byte_tokens = [None; 256];
        let mut max_piece_bytes = 1;
        for (i, p) in pieces.iter().enumerate() {
            let i = i as u32;
            index.entry(p.clone()).or_insert(i);
            max_piece_bytes = max_piece_bytes.max(p.len() - p.matches(SPACE).count() * (SPACE.len_utf8() - 1));
            match types[i as usize] {
                token_type::USER_DEFINED if !p.is_empty() => {
                    user_defined.entry(p.clone()).or_insert(i);
                }
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
        let mut user_defined_lens: Vec<usize> = user_defined.keys().map(String::len).collect();
        user_defined_lens.sort_unstable_by(|a, b| b.cmp(a));
        user_defined_lens.dedup();
        let end_of_turn = index.get("<end_of_turn>").copied();
        Ok(Self { pieces, scores, types, index, user_defined, user_defined_lens, max_piece_bytes, byte_tokens, bos, eos, end_of_turn })
    }

    /// Most bytes of text that one token stands for: a text of `n` bytes needs at
    /// least `n / max_piece_bytes()` tokens (a cheap bound before encoding).
    pub fn max_piece_bytes(&self) -> usize {
        self.max_piece_bytes
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
        self.user_defined_lens.iter().find_map(|&len| {
            let piece = s.get(..len)?;
            self.user_defined.get(piece).map(|&id| (len, id))
        })
    }

    fn encode_fragment(&self, frag: &str, out: &mut Vec<u32>) {
        if frag.is_empty() {
            return;
        }
        let escaped: String = frag.chars().map(|c| if c == ' ' { SPACE } else { c }).collect();
        // Symbols as a doubly linked list over `escaped`; a merge grows the left
        // symbol and empties the right one, so a symbol's index orders it by position.
        let mut syms: Vec<Sym> = Vec::with_capacity(escaped.len());
        for (i, (start, c)) in escaped.char_indices().enumerate() {
            syms.push(Sym { start, len: c.len_utf8(), prev: i.checked_sub(1), next: None });
            if i > 0 {
                syms[i - 1].next = Some(i);
            }
        }
        let mut heap = BinaryHeap::new();
        for left in 0..syms.len().saturating_sub(1) {
            self.push_pair(&escaped, &syms, left, &mut heap);
        }
        while let Some(pair) = heap.pop() {
            let Some(right) = syms[pair.left].next else {
                continue;
            };
            // Stale: one side changed since the pair was queued (lengths only grow).
            if syms[pair.left].len == 0 || syms[pair.left].len + syms[right].len != pair.len {
                continue;
            }
            syms[pair.left].len = pair.len;
            syms[pair.left].next = syms[right].next;
            syms[right].len = 0;
            if let Some(n) = syms[right].next {
                syms[n].prev = Some(pair.left);
            }
            if let Some(p) = syms[pair.left].prev {
                self.push_pair(&escaped, &syms, p, &mut heap);
            }
            self.push_pair(&escaped, &syms, pair.left, &mut heap);
        }
        let mut cur = (!syms.is_empty()).then_some(0);
        while let Some(i) = cur {
            let sym = &syms[i];
            let s = &escaped[sym.start..sym.start + sym.len];
            match self.index.get(s) {
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
            cur = sym.next;
        }
    }

    /// Queue the pair (`left`, its successor) if their concatenation is a piece.
    fn push_pair(&self, text: &str, syms: &[Sym], left: usize, heap: &mut BinaryHeap<Pair>) {
        let Some(right) = syms[left].next else {
            return;
        };
        let (a, b) = (&syms[left], &syms[right]);
        let joined = &text[a.start..b.start + b.len];
        if let Some(&id) = self.index.get(joined) {
            heap.push(Pair { score: self.scores[id as usize], left, len: a.len + b.len });
        }
    }

    /// Whether `id` is a control token (never printed).
    pub fn is_control(&self, id: u32) -> bool {
        self.types.get(id as usize).is_none_or(|&t| t == token_type::CONTROL)
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

/// One symbol of a fragment being merged (byte range of the escaped text).
#[derive(Debug, Clone, Copy)]
struct Sym {
    start: usize,
    /// Bytes; 0 once merged into its left neighbour.
    len: usize,
    prev: Option<usize>,
    next: Option<usize>,
}

/// A candidate merge: the best score first, the leftmost on ties.
#[derive(Debug, Clone, Copy)]
struct Pair {
    score: f32,
    left: usize,
    /// Bytes of the merged symbol, to recognize stale entries.
    len: usize,
}

impl PartialEq for Pair {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Pair {}
impl PartialOrd for Pair {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pair {
    fn cmp(&self, other: &Self) -> Ordering {
        self.score.total_cmp(&other.score).then_with(|| other.left.cmp(&self.left))
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
            Err(_) => return String::from_utf8_lossy(&std::mem::take(&mut self.bytes)).into_owned(),
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
        let mut pieces: Vec<String> = vec!["<pad>", "<eos>", "<bos>", "\n", "  "].into_iter().map(String::from).collect();
        let mut types = vec![3, 3, 3, 4, 4];
        for b in 0..=255u8 {
            pieces.push(format!("<0x{b:02X}>"));
            types.push(6);
        }
        for p in ["▁", "h", "e", "l", "o", "he", "ll", "hell", "hello", "▁hello", "w", "r", "d", "or", "ld", "▁w", "▁wor", "▁world"]
        {
            pieces.push(p.to_string());
            types.push(1);
        }
        let n = pieces.len();
        // Later pieces rank lower, like Gemma's -rank scores.
        let scores = (0..n).map(|i| -(i as f32)).collect();
        GemmaTokenizer::new(pieces, scores, types, 2, 1).unwrap()
    }

    /// The quadratic definition the heap-based merge must reproduce exactly:
    /// rescan all adjacent pairs, merge the best-scoring (leftmost on ties).
    fn reference_fragment(t: &GemmaTokenizer, frag: &str) -> Vec<u32> {
        let escaped: String = frag.chars().map(|c| if c == ' ' { SPACE } else { c }).collect();
        let mut syms: Vec<String> = escaped.chars().map(String::from).collect();
        loop {
            let mut best: Option<(usize, f32)> = None;
            for k in 0..syms.len().saturating_sub(1) {
                let joined = format!("{}{}", syms[k], syms[k + 1]);
                if let Some(&id) = t.index.get(joined.as_str()) {
                    let score = t.scores[id as usize];
                    if best.is_none_or(|(_, s)| score > s) {
                        best = Some((k, score));
                    }
                }
            }
            let Some((k, _)) = best else { break };
            let right = syms.remove(k + 1);
            syms[k].push_str(&right);
        }
        let mut out = Vec::new();
        for s in syms {
            match t.index.get(s.as_str()) {
                Some(&id) => out.push(id),
                None => out.extend(s.bytes().filter_map(|b| t.byte_tokens[b as usize])),
            }
        }
        out
    }

    #[test]
    fn heap_merge_equals_the_quadratic_definition() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let alphabet = ['a', 'b', 'c', '▁', 'é'];
        for round in 0..40 {
            // A random vocabulary over a tiny alphabet, with many equal scores so
            // that the leftmost-on-ties rule is exercised.
            let mut pieces: Vec<String> = vec!["<pad>".into(), "<eos>".into(), "<bos>".into()];
            let mut types = vec![3, 3, 3];
            for b in 0..=255u8 {
                pieces.push(format!("<0x{b:02X}>"));
                types.push(6);
            }
            for c in alphabet.iter().take(4) {
                pieces.push(c.to_string());
                types.push(1);
            }
            for _ in 0..60 {
                let len = rng.random_range(2..6);
                pieces.push((0..len).map(|_| alphabet[rng.random_range(0..4)]).collect());
                types.push(1);
            }
            let scores = (0..pieces.len()).map(|_| -(rng.random_range(0..6) as f32)).collect();
            let t = GemmaTokenizer::new(pieces, scores, types, 2, 1).unwrap();
            for _ in 0..50 {
                let len = rng.random_range(0..40);
                let text: String = (0..len)
                    .map(|_| match alphabet[rng.random_range(0..5)] {
                        '▁' => ' ',
                        c => c,
                    })
                    .collect();
                let mut fast = Vec::new();
                t.encode_fragment(&text, &mut fast);
                assert_eq!(fast, reference_fragment(&t, &text), "round {round}: {text:?}");
            }
        }
    }

    /// With Gemma's real vocabulary (when the model is present): the same ids as
    /// the quadratic definition on a long, varied prompt.
    #[test]
    fn heap_merge_equals_the_definition_on_gemma_vocabulary() {
        let Some(p) = testkit::require("models/gemma/gemma-3-270m-q4_k_m.gguf") else {
            return;
        };
        let mut f = std::fs::File::open(&p).unwrap();
        let ct = gguf_file::Content::read(&mut f).unwrap();
        let t = GemmaTokenizer::from_gguf(&ct).unwrap();
        let text = crate::continuation::base_model_prompt_prefix(crate::protocol::RecoveryMode::Natural)
            + "Über naïve café — 東京は? Paris, on the Seine!! 1234567 <b>x</b>  \tend";
        for frag in text.split('\n') {
            let mut fast = Vec::new();
            t.encode_fragment(frag, &mut fast);
            assert_eq!(fast, reference_fragment(&t, frag), "{frag:?}");
        }
        // How long a 60 KB fragment takes each way (printed, not asserted: timing
        // belongs in benches; run with --nocapture to see it).
        let long: String = text.replace('\n', " ").repeat(60_000 / text.len() + 1);
        let t0 = std::time::Instant::now();
        let mut fast = Vec::new();
        t.encode_fragment(&long, &mut fast);
        let fast_ms = t0.elapsed().as_secs_f64() * 1e3;
        eprintln!("encode {} bytes: heap {fast_ms:.1} ms, {} tokens", long.len(), fast.len());
        if std::env::var_os("FIRSTWORD_TOKENIZER_COMPARE").is_some() {
            let t0 = std::time::Instant::now();
            let slow = reference_fragment(&t, &long);
            eprintln!("quadratic definition: {:.1} ms", t0.elapsed().as_secs_f64() * 1e3);
            assert_eq!(fast, slow);
        }
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
