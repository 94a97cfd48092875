//! The seam decision ([`super::seam::decide_start`]) made incrementally.
//!
//! `decide_start` looks at the whole buffered start of the continuation; called
//! again after every delta while the decision waits (a run of blanks, repeated
//! meta phrases, a restart that keeps echoing a long opener), its work grew with
//! the buffer and, in the overlap search, with the square of the opener's length.
//! [`StartDecider`] gives the same answers on the same buffers while scanning each
//! new byte once: whitespace already skipped, meta phrases already stripped and
//! words already split are remembered; the overlap search is one Z-function pass
//! over word ids (linear in the opener's words) per call.

use std::collections::HashMap;

use super::markers::PrefixMatch;
use super::seam::{join, meta_patterns, trailing_punct, MIN_OVERLAP_WORDS};

/// The opener's words, normalized and numbered for the overlap search.
#[derive(Debug)]
pub(crate) struct OpenerWords {
    /// `norm_word` of each word.
    pub(crate) words: Vec<String>,
    ids: Vec<u32>,
    index: HashMap<String, u32>,
    last_punct: String,
}

/// Id of a continuation word that is no opener word.
const UNKNOWN: u32 = u32::MAX;
/// Separator between the two sequences of the Z-function.
const SEP: u32 = u32::MAX - 1;

impl OpenerWords {
    pub(crate) fn new(opener: &str, words: Vec<String>) -> Self {
        let mut index = HashMap::new();
        let ids = words
            .iter()
            .map(|w| {
                let next = index.len() as u32;
                *index.entry(w.clone()).or_insert(next)
            })
            .collect();
        let last_punct = opener.split_whitespace().last().map(trailing_punct).unwrap_or("").to_string();
        Self { words, ids, index, last_punct }
    }
}

/// One unit of the text after the leading whitespace, for meta-phrase matching:
/// a character, or a whole whitespace run (a pattern's space matches any run).
#[derive(Debug, Clone, Copy)]
struct Unit {
    ws: bool,
    ch: char,
    /// Byte offset just after the unit, in the buffer.
    end: usize,
}

/// A word of the continuation (byte range in the buffer) and its `norm_word`.
#[derive(Debug, Clone)]
struct Word {
    start: usize,
    end: usize,
    /// Lower-case alphanumeric core; empty if the word has none (then the word
    /// itself is its normal form, as in `norm_word`).
    alnum: String,
}

impl Word {
    fn norm<'a>(&'a self, buf: &'a str) -> &'a str {
        if self.alnum.is_empty() {
            &buf[self.start..self.end]
        } else {
            &self.alnum
        }
    }
}

/// Incremental state of the seam decision over one growing buffer.
#[derive(Debug, Default)]
pub(crate) struct StartDecider {
    /// Start of the text not yet stripped as a meta phrase.
    s_off: usize,
    /// `buf[s_off..t_off]` is whitespace; `t_off` is final once a non-blank follows.
    t_off: usize,
    stripped_any: bool,
    /// Meta-phrase units from `t_off`, at most one more than the longest pattern.
    units: Vec<Unit>,
    unit_pos: usize,
    units_full: bool,
    /// Complete words from `t_off` (followed by whitespace), at most as many as the
    /// opener has, and the word still being written.
    words: Vec<Word>,
    partial: Option<Word>,
    word_pos: usize,
    /// The overlap was cut here; only whitespace came after it so far.
    after_cut: Option<usize>,
}

/// Outcome of the overlap search, in absolute buffer offsets.
enum Overlap {
    Cut(usize),
    NeedMore,
    None,
}

fn max_pattern_chars() -> usize {
    static MAX: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *MAX.get_or_init(|| meta_patterns().iter().map(|p| p.chars().count()).max().unwrap_or(0))
}

/// `meta_match` on units: the end offset of the match when full.
fn match_units(units: &[Unit], pattern: &str) -> (PrefixMatch, usize) {
    let mut i = 0;
    for pc in pattern.chars() {
        let Some(u) = units.get(i) else {
            return (PrefixMatch::Partial, 0);
        };
        if u.ws != (pc == ' ') {
            return (PrefixMatch::No, 0);
        }
        if !u.ws {
            let c = if u.ch == '’' { '\'' } else { u.ch };
            if !c.to_lowercase().eq(pc.to_lowercase()) {
                return (PrefixMatch::No, 0);
            }
        }
        i += 1;
    }
    (PrefixMatch::Full, units[i - 1].end)
}

/// Z-function: `z[i]` = length of the longest common prefix of `s` and `s[i..]`.
fn z_function(s: &[u32]) -> Vec<usize> {
    let n = s.len();
    let mut z = vec![0; n];
    let (mut l, mut r) = (0, 0);
    for i in 1..n {
        if i < r {
            z[i] = (r - i).min(z[i - l]);
        }
        while i + z[i] < n && s[z[i]] == s[i + z[i]] {
            z[i] += 1;
        }
        if i + z[i] > r {
            l = i;
            r = i + z[i];
        }
    }
    z
}

impl StartDecider {
    /// Same as `decide_start(opener, &ow.words, buf, fin)`; `buf` must only grow
    /// between calls.
    pub(crate) fn decide(&mut self, opener: &str, ow: &OpenerWords, buf: &str, fin: bool) -> Option<String> {
        if let Some(rest) = self.after_cut {
            return self.after_cut_decision(opener, buf, rest, fin);
        }
        loop {
            self.t_off = skip_ws(buf, self.t_off);
            if self.t_off == buf.len() {
                return fin.then(String::new);
            }
            self.scan_units(buf);
            match self.strip_meta(fin) {
                Meta::NeedMore => return None,
                Meta::Stripped(end) => {
                    // A full match that no pattern can still extend: final.
                    self.restart_at(end);
                    self.stripped_any = true;
                    continue;
                }
                Meta::None => {}
            }
            self.scan_words(buf, ow.words.len());
            match self.overlap(ow, buf, fin) {
                Overlap::NeedMore => return None,
                Overlap::Cut(at) => {
                    // Every candidate is settled, so later text cannot change the cut.
                    self.after_cut = Some(at);
                    return self.after_cut_decision(opener, buf, at, fin);
                }
                Overlap::None => {}
            }
            let leading = &buf[self.s_off..self.t_off];
            let newline = !self.stripped_any && leading.contains('\n');
            return Some(join(opener, &buf[self.t_off..], newline));
        }
    }

    /// Whether the buffer holds nothing but whitespace (as `buf.trim().is_empty()`).
    pub(crate) fn only_whitespace(&mut self, buf: &str) -> bool {
        if self.stripped_any || self.after_cut.is_some() {
            return false;
        }
        self.t_off = skip_ws(buf, self.t_off);
        self.t_off == buf.len()
    }

    fn after_cut_decision(&mut self, opener: &str, buf: &str, at: usize, fin: bool) -> Option<String> {
        let rest = skip_ws(buf, at);
        self.after_cut = Some(rest);
        if rest == buf.len() {
            return fin.then(String::new);
        }
        Some(join(opener, &buf[rest..], false))
    }

    fn restart_at(&mut self, off: usize) {
        *self = Self { s_off: off, t_off: off, stripped_any: self.stripped_any, unit_pos: off, word_pos: off, ..Self::default() };
    }

    fn scan_units(&mut self, buf: &str) {
        if self.units_full {
            return;
        }
        let limit = max_pattern_chars() + 1;
        let from = self.unit_pos.max(self.t_off);
        for (i, c) in buf[from..].char_indices() {
            let end = from + i + c.len_utf8();
            let ws = c.is_whitespace();
            if let Some(last) = self.units.last_mut().filter(|u| ws && u.ws) {
                last.end = end;
                continue;
            }
            if self.units.len() >= limit {
                // No pattern reaches this far.
                self.units_full = true;
                return;
            }
            self.units.push(Unit { ws, ch: c, end });
        }
        self.unit_pos = buf.len();
    }

    fn strip_meta(&self, fin: bool) -> Meta {
        let mut best: Option<usize> = None;
        let mut partial = false;
        for pattern in meta_patterns() {
            match match_units(&self.units, pattern) {
                (PrefixMatch::Full, n) => best = Some(best.map_or(n, |b| b.max(n))),
                (PrefixMatch::Partial, _) => partial = true,
                (PrefixMatch::No, _) => {}
            }
        }
        if partial && !fin {
            return Meta::NeedMore;
        }
        match best {
            Some(n) => Meta::Stripped(n),
            None => Meta::None,
        }
    }

    /// Split new text into words, up to `max_words` complete ones.
    fn scan_words(&mut self, buf: &str, max_words: usize) {
        if self.word_pos < self.t_off {
            self.word_pos = self.t_off;
        }
        if self.words.len() >= max_words {
            return;
        }
        for (i, c) in buf[self.word_pos..].char_indices() {
            let at = self.word_pos + i;
            if c.is_whitespace() {
                if let Some(mut w) = self.partial.take() {
                    w.end = at;
                    self.words.push(w);
                    if self.words.len() >= max_words {
                        self.word_pos = at;
                        return;
                    }
                }
            } else {
                let w = self.partial.get_or_insert_with(|| Word { start: at, end: at, alnum: String::new() });
                if c.is_alphanumeric() {
                    w.alnum.extend(c.to_lowercase());
                }
            }
        }
        self.word_pos = buf.len();
        if let Some(w) = &mut self.partial {
            w.end = buf.len();
        }
    }

    /// `find_overlap` on the remembered words.
    fn overlap(&self, ow: &OpenerWords, buf: &str, fin: bool) -> Overlap {
        let n = ow.words.len();
        if n < MIN_OVERLAP_WORDS {
            return Overlap::None;
        }
        // With the stream ended, the word being written is complete too.
        let last = self.partial.as_ref().filter(|_| fin);
        let complete: Vec<&Word> = self.words.iter().chain(last).take(n).collect();
        let partial = self.partial.as_ref().filter(|_| !fin && self.words.len() < n);
        let c = complete.len();
        let mut seq: Vec<u32> = complete.iter().map(|w| ow.index.get(w.norm(buf)).copied().unwrap_or(UNKNOWN)).collect();
        seq.push(SEP);
        seq.extend_from_slice(&ow.ids);
        let z = z_function(&seq);
        let mut pending = false;
        let mut best: Option<usize> = None;
        for j in 0..=(n - MIN_OVERLAP_WORDS) {
            let need = n - j;
            let lcp = z[c + 1 + j];
            if lcp >= need {
                best = best.or(Some(j));
            } else if lcp == c {
                // Every continuation word so far matches; the next decides.
                match partial {
                    Some(p) => pending |= ow.words[j + c].starts_with(p.norm(buf)),
                    None => pending |= !fin,
                }
            }
        }
        if pending && !fin {
            return Overlap::NeedMore;
        }
        let Some(j) = best else {
            return Overlap::None;
        };
        let w = complete[n - j - 1];
        let word = &buf[w.start..w.end];
        // Keep punctuation the continuation adds beyond the opener's own.
        let tail = trailing_punct(word);
        let keep = match tail.strip_prefix(ow.last_punct.as_str()) {
            Some(extra) => extra.len(),
            None => tail.len(),
        };
        Overlap::Cut(w.end - keep)
    }
}

enum Meta {
    Stripped(usize),
    NeedMore,
    None,
}

/// First offset at or after `from` that is not whitespace (or `buf.len()`).
fn skip_ws(buf: &str, from: usize) -> usize {
    let rest = &buf[from..];
    from + (rest.len() - rest.trim_start().len())
}
