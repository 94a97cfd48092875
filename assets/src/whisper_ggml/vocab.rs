//! Whisper's base BPE vocabulary from `tokenizer.json`, as raw bytes in id order.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::ConvertError;

/// GPT-2's reversible byte → printable character table (256 entries): printable Latin-1 bytes
/// map to themselves, the rest are shifted to U+0100 and up so tokens never hold whitespace.
pub fn gpt2_bytes_to_unicode() -> BTreeMap<u8, char> {
    let keep = |b: u32| (0x21..=0x7e).contains(&b) || (0xa1..=0xac).contains(&b) || (0xae..=0xff).contains(&b);
    let mut table = BTreeMap::new();
    let mut shifted = 0u32;
    for b in 0u32..256 {
        let c = if keep(b) {
            b
        } else {
            shifted += 1;
            255 + shifted
        };
        table.insert(b as u8, char::from_u32(c).expect("U+0000..U+0143 are chars"));
    }
    table
}

/// Map a tokenizer.json token string back to its bytes; errors name a character outside the
/// GPT-2 byte alphabet.
pub fn decode_token(token: &str, decoder: &BTreeMap<char, u8>) -> Result<Vec<u8>, ConvertError> {
    token
        .chars()
        .map(|c| {
            decoder.get(&c).copied().ok_or_else(|| {
                ConvertError::Input(format!("tokenizer.json: token {token:?} has character {c:?} outside GPT-2's byte alphabet"))
            })
        })
        .collect()
}

/// The base tokens of a `tokenizer.json` (its `model.vocab` less every `added_tokens` entry:
/// `<|endoftext|>`, `<|startoftranscript|>`, languages, timestamps), as bytes ordered by id.
/// whisper.cpp synthesises the special tokens' names itself, as its own converter expects.
///
/// Errors: unreadable or malformed JSON, no BPE vocab, ids not contiguous from 0.
pub fn load_base_vocab(json: &str, source: &Path) -> Result<Vec<Vec<u8>>, ConvertError> {
    let bad = |what: String| ConvertError::Input(format!("{}: {what}", source.display()));
    let tok: serde_json::Value = serde_json::from_str(json).map_err(|e| bad(format!("not JSON: {e}")))?;
    let vocab = tok
        .pointer("/model/vocab")
        .and_then(|v| v.as_object())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| bad("no model.vocab mapping (not a BPE tokenizer.json?)".into()))?;
    let added: BTreeSet<&str> = tok
        .get("added_tokens")
        .and_then(|a| a.as_array())
        .map(|a| a.iter().filter_map(|t| t.get("content")?.as_str()).collect())
        .unwrap_or_default();
    let mut by_id: BTreeMap<u64, &str> = BTreeMap::new();
    for (s, id) in vocab {
        if added.contains(s.as_str()) {
            continue;
        }
        let id = id.as_u64().ok_or_else(|| bad(format!("token {s:?} has a non-integer id")))?;
        if by_id.insert(id, s).is_some() {
            return Err(bad(format!("two tokens share id {id}")));
        }
    }
    let n = by_id.len() as u64;
    if by_id.keys().next_back().is_some_and(|&max| max + 1 != n) {
        return Err(bad(format!(
            "base vocabulary ids are not contiguous from 0 ({n} tokens, max id {})",
            by_id.keys().next_back().copied().unwrap_or(0)
        )));
    }
    let decoder: BTreeMap<char, u8> = gpt2_bytes_to_unicode().into_iter().map(|(b, c)| (c, b)).collect();
    by_id.values().map(|s| decode_token(s, &decoder)).collect()
}
