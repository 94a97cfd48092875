//! Seam hygiene: make the continuation join the already-spoken opener cleanly.
//!
//! Applied to the *start* of the continuation only:
//! 1. leading meta phrases ("Sure, continuing:", "Here is the continuation:") are removed;
//! 2. if the continuation restarts by repeating the opener (the paper's restart
//!    failure) or repeats the opener's last words, the overlap is removed;
//! 3. the join gets exactly one space, none before punctuation, or a line break
//!    before an explicit `Correction:`.
//!
//! Every decision waits until the text seen so far settles it, so the output
//! does not depend on how the stream was split into deltas.

use super::instructions::CORRECTION_PREFIX;
use super::markers::{prefix_match, PrefixMatch};

/// Acknowledgement words that may precede a meta phrase ("Sure, continuing:").
const ACKS: [&str; 8] = ["sure", "okay", "ok", "certainly", "of course", "alright", "got it", "absolutely"];
/// Separators after an acknowledgement.
const ACK_SEPS: [&str; 4] = [", ", "! ", ". ", " "];
/// Meta phrases that announce the continuation instead of being part of it.
const META_PHRASES: [&str; 14] = [
    "continuing:",
    "continuing from where i left off:",
    "continuing the answer:",
    "continuing the response:",
    "continuation:",
    "here is the continuation:",
    "here's the continuation:",
    "here is the rest:",
    "here's the rest:",
    "here is the rest of the answer:",
    "here's the rest of the answer:",
    "(continuing)",
    "...",
    "…",
];

/// Minimum number of repeated words treated as an overlap with the opener; one
/// shared word ("the", "is") is too likely to be a legitimate continuation.
pub const MIN_OVERLAP_WORDS: usize = 2;

/// Match `input` against `pattern` case-insensitively, where a space in the
/// pattern matches any run of whitespace and `'` also matches `’`. Returns the
/// bytes of `input` consumed on a full match.
fn meta_match(input: &str, pattern: &str) -> (PrefixMatch, usize) {
    let mut it = input.char_indices().peekable();
    for pc in pattern.chars() {
        if pc == ' ' {
            match it.peek() {
                None => return (PrefixMatch::Partial, 0),
                Some((_, c)) if c.is_whitespace() => {
                    while let Some((_, c)) = it.peek() {
                        if !c.is_whitespace() {
                            break;
                        }
                        it.next();
                    }
                }
                Some(_) => return (PrefixMatch::No, 0),
            }
            continue;
        }
        match it.next() {
            None => return (PrefixMatch::Partial, 0),
            Some((_, c)) => {
                let c = if c == '’' { '\'' } else { c };
                if !c.to_lowercase().eq(pc.to_lowercase()) {
                    return (PrefixMatch::No, 0);
                }
            }
        }
    }
    let used = it.peek().map(|(i, _)| *i).unwrap_or(input.len());
    (PrefixMatch::Full, used)
}

/// Every meta phrase, alone and after each acknowledgement ("Sure, continuing:").
pub(super) fn meta_patterns() -> &'static [String] {
    static PATTERNS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    PATTERNS.get_or_init(|| {
        let mut v = Vec::new();
        for phrase in META_PHRASES {
            v.push(phrase.to_string());
            for ack in ACKS {
                for sep in ACK_SEPS {
                    v.push(format!("{ack}{sep}{phrase}"));
                }
            }
        }
        v
    })
}

/// Result of trying to strip one meta phrase.
enum Meta {
    Stripped(usize),
    NeedMore,
    None,
}

fn strip_meta(s: &str, fin: bool) -> Meta {
    let mut best: Option<usize> = None;
    let mut partial = false;
    for pattern in meta_patterns() {
        match meta_match(s, pattern) {
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

/// Lower-case alphanumeric core of a word, used to compare words ("France," = "france").
pub(crate) fn norm_word(w: &str) -> String {
    let core: String = w.chars().filter(|c| c.is_alphanumeric()).flat_map(|c| c.to_lowercase()).collect();
    if core.is_empty() {
        w.to_string()
    } else {
        core
    }
}

/// Non-alphanumeric tail of a word ("France," → ",").
pub(super) fn trailing_punct(w: &str) -> &str {
    let end = w.char_indices().rfind(|(_, c)| c.is_alphanumeric()).map(|(i, c)| i + c.len_utf8());
    match end {
        Some(e) => &w[e..],
        None => "",
    }
}

/// Whitespace-separated words with byte ranges.
fn words(s: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    for (i, c) in s.char_indices() {
        if c.is_whitespace() {
            if let Some(st) = start.take() {
                out.push((st, i));
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(st) = start {
        out.push((st, s.len()));
    }
    out
}

/// Result of looking for a repeated opener at the start of the continuation.
enum Overlap {
    /// Remove this many bytes.
    Cut(usize),
    NeedMore,
    None,
}

fn find_overlap(opener_words: &[String], opener_last_punct: &str, s: &str, fin: bool) -> Overlap {
    let n = opener_words.len();
    if n < MIN_OVERLAP_WORDS {
        return Overlap::None;
    }
    let ws = words(s);
    // The last word is complete only if whitespace follows it (or the stream ended).
    let complete = |k: usize| fin || ws.get(k).is_some_and(|&(_, e)| e < s.len());
    let mut pending = false;
    let mut best: Option<usize> = None; // smallest j = longest overlap
    for j in 0..=(n - MIN_OVERLAP_WORDS) {
        let need = n - j;
        let mut ok = true;
        let mut matched_all = true;
        for k in 0..need {
            let Some(&(a, b)) = ws.get(k) else {
                // Ran out of continuation words while still matching.
                matched_all = false;
                if !fin {
                    pending = true;
                }
                ok = false;
                break;
            };
            let cw = norm_word(&s[a..b]);
            let ow = &opener_words[j + k];
            if complete(k) {
                if &cw != ow {
                    ok = false;
                    matched_all = false;
                    break;
                }
            } else {
                // Partial last word: still possible if it is a prefix of the opener word.
                if ow.starts_with(&cw) {
                    pending = true;
                }
                ok = false;
                matched_all = false;
                break;
            }
        }
        if ok && matched_all && best.is_none() {
            best = Some(j);
        }
    }
    if pending && !fin {
        // A longer overlap might still be completing; decide only when all are settled.
        return Overlap::NeedMore;
    }
    let Some(j) = best else { return Overlap::None };
    let (a, b) = ws[n - j - 1];
    let word = &s[a..b];
    // Keep punctuation the continuation adds beyond the opener's own ("France" + "France," → ",").
    let tail = trailing_punct(word);
    let keep = match tail.strip_prefix(opener_last_punct) {
        Some(extra) => extra.len(),
        None => tail.len(),
    };
    Overlap::Cut(b - keep)
}

/// Characters that attach to the preceding word without a space.
fn attaches_left(c: char) -> bool {
    matches!(c, '.' | ',' | ';' | ':' | '!' | '?' | ')' | ']' | '}' | '…' | '—' | '–' | '\'' | '’' | '%')
}

/// Decide how the start of the continuation joins the opener.
///
/// Returns `None` while more text is needed, else the text to emit (which may be
/// empty when the whole buffer was meta text or repetition).
pub(crate) fn decide_start(opener: &str, opener_words: &[String], buf: &str, fin: bool) -> Option<String> {
    let opener_last_punct = opener.split_whitespace().last().map(trailing_punct).unwrap_or("");
    let mut s = buf;
    let mut stripped_any = false;
    loop {
        let t = s.trim_start();
        if t.is_empty() {
            return if fin { Some(String::new()) } else { None };
        }
        match strip_meta(t, fin) {
            Meta::NeedMore => return None,
            Meta::Stripped(n) => {
                s = &t[n..];
                stripped_any = true;
                continue;
            }
            Meta::None => {}
        }
        match find_overlap(opener_words, opener_last_punct, t, fin) {
            Overlap::NeedMore => return None,
            Overlap::Cut(n) => {
                s = &t[n..];
                // Only one overlap is removed; then decide the spacing.
                let rest = s.trim_start();
                if rest.is_empty() {
                    return if fin { Some(String::new()) } else { None };
                }
                return Some(join(opener, rest, false));
            }
            Overlap::None => {}
        }
        let leading = &s[..s.len() - t.len()];
        let newline = !stripped_any && leading.contains('\n');
        return Some(join(opener, t, newline));
    }
}

/// Prefix `rest` (non-empty, no leading whitespace) with the right separator.
pub(super) fn join(opener: &str, rest: &str, newline: bool) -> String {
    let first = rest.chars().next().unwrap_or(' ');
    let is_correction = prefix_match(rest, CORRECTION_PREFIX, false) == PrefixMatch::Full;
    let sep = if opener.is_empty() {
        ""
    } else if is_correction || newline {
        "\n"
    } else if opener.ends_with(char::is_whitespace)
        || opener.ends_with(['(', '[', '“', '—', '-'])
        || attaches_left(first)
        || rest.starts_with("'s ")
        || rest.starts_with("’s ")
    {
        ""
    } else {
        " "
    };
    let sep = if opener.ends_with('\n') { "" } else { sep };
    format!("{sep}{rest}")
}
