//! Streaming speech chunker: LLM text deltas in, speakable chunks out.
//!
//! Speech can start before the model has finished its answer, but only at a
//! point where a pause sounds natural. The first chunk is cut at the first
//! clause boundary once it holds a few words ("Sure, that works," is spoken
//! while the rest is still being generated); later chunks end at sentence ends,
//! which gives the voice whole sentences to phrase. A sentence that grows too
//! long is cut at a clause boundary, and text with no boundary at all at a word
//! boundary. Pure text processing: no audio, no clock.

use crate::boundary::{self, Break};
use crate::normalize;

/// Tuning for [`Chunker`]. Lengths are in bytes of UTF-8 text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkerConfig {
    /// Words the first chunk needs before it may end at a clause boundary
    /// (`,` `;` `:` dash). A whole sentence ("Sure!") is emitted at once
    /// regardless. Default 3.
    pub first_min_words: usize,
    /// With no usable boundary yet, the first chunk is cut after this many complete words
    /// (0 = wait for a boundary). A continuation picks up the opener mid-sentence, so there an
    /// early cut costs little phrasing and lets speech resume sooner after the opener (the
    /// daemon's `turn.continuation_first_words`). Default 0.
    pub first_max_words: usize,
    /// Once a pending sentence is this long (bytes), it may be cut at a clause
    /// boundary instead of waiting for its end. Default 120.
    pub soft_max_bytes: usize,
    /// With no usable boundary, pending text longer than this (bytes) is cut at
    /// the last word boundary before it. Default 240.
    pub max_bytes: usize,
}

impl Default for ChunkerConfig {
    fn default() -> Self {
        Self { first_min_words: 3, first_max_words: 0, soft_max_bytes: 120, max_bytes: 240 }
    }
}

/// Accumulates streamed text and hands out chunks ready to speak.
///
/// Chunks are passed through [`normalize::for_speech`], so Markdown is already
/// removed; chunks that normalize to nothing (a code block, a rule) are not
/// returned. Code blocks, inline code and links are never split.
///
/// ```
/// let mut c = tts::chunk::Chunker::new();
/// let mut spoken = Vec::new();
/// for delta in ["Sure, I can", " help with that. It", " takes 3.5 min", "utes."] {
///     spoken.extend(c.push(delta));
/// }
/// spoken.extend(c.finish());
/// assert_eq!(spoken, ["Sure, I can help with that.", "It takes 3.5 minutes."]);
/// ```
#[derive(Debug, Clone, Default)]
pub struct Chunker {
    cfg: ChunkerConfig,
    buf: String,
    spoken_any: bool,
}

impl Chunker {
    /// A chunker with [`ChunkerConfig::default`].
    pub fn new() -> Self {
        Self::default()
    }

    /// A chunker with explicit tuning.
    pub fn with_config(cfg: ChunkerConfig) -> Self {
        Self { cfg, ..Self::default() }
    }

    /// Adds a text delta (any split, even inside a word or a UTF-8 character
    /// sequence already decoded to `&str`) and returns the chunks that became
    /// ready, in order. Usually empty or one chunk.
    pub fn push(&mut self, delta: &str) -> Vec<String> {
        self.buf.push_str(delta);
        self.drain(false)
    }

    /// Ends the stream: returns everything still pending, cut at sentence
    /// boundaries, and resets the chunker for the next answer.
    pub fn finish(&mut self) -> Vec<String> {
        let mut out = self.drain(true);
        let rest = std::mem::take(&mut self.buf);
        out.extend(speakable(&rest));
        self.spoken_any = false;
        out
    }

    /// Text received but not yet returned as a chunk.
    pub fn pending(&self) -> &str {
        &self.buf
    }

    fn drain(&mut self, complete: bool) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(cut) = self.next_cut(complete) {
            let rest = self.buf.split_off(cut);
            let raw = std::mem::replace(&mut self.buf, rest);
            if let Some(chunk) = speakable(&raw) {
                self.spoken_any = true;
                out.push(chunk);
            }
            // Leading whitespace would only shift the next boundary search.
            let trimmed = self.buf.trim_start().len();
            self.buf.drain(..self.buf.len() - trimmed);
        }
        out
    }

    /// Byte offset at which to cut the pending text now, if any.
    fn next_cut(&self, complete: bool) -> Option<usize> {
        let text = self.buf.as_str();
        if text.trim().is_empty() {
            return None;
        }
        let safe = safe_prefix_len(text);
        let bounds: Vec<_> = boundary::find(text, complete).into_iter().filter(|b| b.end <= safe && is_balanced(&text[..b.end])).collect();

        if !self.spoken_any {
            // First chunk: as early as it sounds natural.
            let first = bounds.iter().find(|b| b.kind == Break::Sentence || word_count(&text[..b.end]) >= self.cfg.first_min_words);
            if let Some(b) = first {
                if b.end <= self.cfg.max_bytes {
                    return Some(b.end);
                }
            }
            if self.cfg.first_max_words > 0 {
                if let Some(end) = end_of_nth_word(text, self.cfg.first_max_words) {
                    if end <= safe.min(self.cfg.max_bytes) && is_balanced(&text[..end]) {
                        return Some(end);
                    }
                }
            }
        } else if let Some(b) = bounds.iter().find(|b| b.kind == Break::Sentence) {
            if b.end <= self.cfg.max_bytes {
                return Some(b.end);
            }
        }
        // The sentence is long (or its end has not arrived yet): a clause
        // boundary will do once enough text is pending.
        let pending = bounds.iter().find(|b| b.kind == Break::Sentence).map_or(text.len(), |b| b.end);
        if pending >= self.cfg.soft_max_bytes {
            let clause =
                bounds.iter().rev().find(|b| b.end <= self.cfg.max_bytes && word_count(&text[..b.end]) >= self.cfg.first_min_words);
            if let Some(b) = clause {
                return Some(b.end);
            }
        }
        if pending > self.cfg.max_bytes {
            return word_cut(text, self.cfg.max_bytes.min(safe));
        }
        None
    }
}

/// Normalizes a raw chunk; `None` when nothing speakable is left.
fn speakable(raw: &str) -> Option<String> {
    let s = normalize::for_speech(raw);
    (!s.is_empty()).then_some(s)
}

/// Byte offset just after the `n`-th complete word of `s` (a word is complete once whitespace
/// follows it, since a delta may end mid-word); words as in [`word_count`].
fn end_of_nth_word(s: &str, n: usize) -> Option<usize> {
    let mut count = 0;
    let mut word_start: Option<usize> = None;
    for (i, ch) in s.char_indices() {
        match (ch.is_whitespace(), word_start) {
            (false, None) => word_start = Some(i),
            (true, Some(start)) => {
                word_start = None;
                if s[start..i].chars().any(char::is_alphanumeric) {
                    count += 1;
                    if count == n {
                        return Some(i);
                    }
                }
            }
            _ => {}
        }
    }
    None
}

fn word_count(s: &str) -> usize {
    s.split_whitespace().filter(|w| w.chars().any(char::is_alphanumeric)).count()
}

/// Last word boundary (whitespace) at or before `limit`; the word before it
/// is complete because whitespace follows it.
fn word_cut(text: &str, limit: usize) -> Option<usize> {
    let mut limit = limit.min(text.len());
    while !text.is_char_boundary(limit) {
        limit -= 1;
    }
    let head = &text[..limit];
    head.rfind(char::is_whitespace).filter(|&p| p > 0).map(|p| head[..p].trim_end().len()).filter(|&p| p > 0)
}

/// Length of the prefix that lies outside any still-open code fence: text
/// after an opening ```` ``` ```` line is held back until the fence closes.
fn safe_prefix_len(text: &str) -> usize {
    let mut open_at = None;
    let mut pos = 0;
    for line in text.split_inclusive('\n') {
        let t = line.trim_start();
        if t.starts_with("```") || t.starts_with("~~~") {
            // A fence line is only known to be complete once its newline is in.
            open_at = if open_at.is_some() && line.ends_with('\n') { None } else { Some(open_at.unwrap_or(pos)) };
        }
        pos += line.len();
    }
    open_at.unwrap_or(text.len())
}

/// A cut here keeps fences, inline code and link targets whole.
#[allow(clippy::manual_is_multiple_of)] // `is_multiple_of` needs Rust 1.87; the workspace MSRV is 1.85
fn is_balanced(prefix: &str) -> bool {
    let fences = prefix.lines().filter(|l| l.trim_start().starts_with("```") || l.trim_start().starts_with("~~~")).count();
    if fences % 2 == 1 {
        return false;
    }
    let outside_fences: String = {
        let mut inside = false;
        let mut s = String::new();
        for l in prefix.lines() {
            let t = l.trim_start();
            if t.starts_with("```") || t.starts_with("~~~") {
                inside = !inside;
            } else if !inside {
                s.push_str(l);
                s.push('\n');
            }
        }
        s
    };
    let ticks = outside_fences.matches('`').count();
    let open_brackets = outside_fences.matches('[').count() > outside_fences.matches(']').count();
    let open_target = outside_fences.rfind("](").is_some_and(|p| !outside_fences[p..].contains(')'));
    ticks % 2 == 0 && !open_brackets && !open_target
}

#[cfg(test)]
mod tests;
