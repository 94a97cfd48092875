//! Text → clauses → Piper phoneme strings: the clause-punctuation fix.
//!
//! piper-rs 0.2.0 phonemizes a whole text with espeak-rs, whose output loses
//! the clause punctuation (`,` `;` `:`) and glues clauses together, so
//! "Hello there, world." is spoken without its pause or comma intonation.
//! Piper voices were trained on phonemes that keep the punctuation (the
//! original Piper phonemizer appends each clause's terminator). So we split
//! the text at punctuation ourselves, phonemize each clause, and append the
//! punctuation to the phonemes; the result goes to
//! `Piper::create(phonemes, true, …)`.

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use crate::boundary::{self, Break};
use crate::TtsError;

/// espeak-ng keeps global state (current voice, clause pointer) and is not
/// thread-safe; every call into it goes through this lock.
static ESPEAK: Mutex<()> = Mutex::new(());

/// Set once espeak-rs has initialized espeak-ng; after that its data
/// directory can no longer change.
static ESPEAK_STARTED: AtomicBool = AtomicBool::new(false);

/// Clauses longer than this (bytes) are split at a word boundary: one Piper
/// inference per clause, and an unbounded one would delay the first audio.
const MAX_CLAUSE_BYTES: usize = 300;

/// A piece of text spoken in one inference.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Clause {
    /// The text as written, with its punctuation.
    pub text: String,
    /// The words only (trailing punctuation removed), for espeak.
    pub words: String,
    /// Punctuation the voice hears after the clause (`,` `.` `?` `!` `;` `:`).
    pub punct: char,
    /// Whether a sentence ends here (or the text does).
    pub sentence_end: bool,
}

/// Splits `text` into clauses at punctuation and line breaks. Clauses with
/// nothing pronounceable (only symbols or emoji) are kept: espeak may still
/// read them ("%", "&"); [`Phonemizer::phonemes`] reports when it did not.
pub(crate) fn split_clauses(text: &str) -> Vec<Clause> {
    let mut out = Vec::new();
    let mut start = 0;
    let bounds = boundary::find(text, true);
    for b in bounds.iter().map(|b| (b.end, b.kind == Break::Sentence, b.punct)).chain([(text.len(), true, '.')]) {
        let (end, sentence_end, punct) = b;
        if end <= start {
            continue;
        }
        push_clause(&mut out, text[start..end].trim(), punct, sentence_end);
        start = end;
    }
    if let Some(last) = out.last_mut() {
        last.sentence_end = true;
    }
    out
}

fn push_clause(out: &mut Vec<Clause>, mut text: &str, punct: char, sentence_end: bool) {
    while text.len() > MAX_CLAUSE_BYTES {
        // Cut at the last space before the limit; a clause that is one
        // enormous token is cut at a char boundary instead.
        let mut limit = MAX_CLAUSE_BYTES;
        while !text.is_char_boundary(limit) {
            limit -= 1;
        }
        let cut = text[..limit].rfind(char::is_whitespace).filter(|&p| p > 0).unwrap_or(limit);
        let (head, tail) = text.split_at(cut);
        push_one(out, head.trim(), ',', false);
        text = tail.trim_start();
    }
    push_one(out, text, punct, sentence_end);
}

fn push_one(out: &mut Vec<Clause>, text: &str, punct: char, sentence_end: bool) {
    if text.is_empty() {
        return;
    }
    let words = text
        .trim_end_matches(|c: char| matches!(c, '.' | ',' | ';' | ':' | '?' | '!' | '…' | '—' | '–' | '-') || is_closer_or_space(c))
        .trim_start_matches(|c: char| matches!(c, '—' | '–' | '-') || c.is_whitespace())
        .to_string();
    out.push(Clause { text: text.to_string(), words, punct, sentence_end });
}

fn is_closer_or_space(c: char) -> bool {
    c.is_whitespace() || matches!(c, '"' | '\'' | ')' | ']' | '}' | '’' | '”' | '»')
}

/// espeak-ng front end for one voice.
pub(crate) struct Phonemizer {
    /// espeak voice name from the voice config, e.g. "en-us".
    voice: String,
    /// Phoneme characters the voice model has ids for.
    known: HashSet<char>,
}

impl Phonemizer {
    pub(crate) fn new(voice: String, known: HashSet<char>, data_dir: Option<&Path>) -> Result<Self, TtsError> {
        if let Some(dir) = data_dir {
            let _guard = ESPEAK.lock().unwrap_or_else(|e| e.into_inner());
            if ESPEAK_STARTED.load(Ordering::Relaxed) {
                tracing::warn!(dir = %dir.display(), "espeak-ng is already initialized in this process; espeak_data_dir takes effect only for the first voice loaded");
            }
            crate::runtime::set_espeak_data_dir(dir)?;
        }
        Ok(Self { voice, known })
    }

    /// Piper phoneme string for one clause: espeak's IPA for the words, then
    /// the clause punctuation. `None` when the clause has nothing the voice
    /// can pronounce (empty, emoji espeak skips, unknown symbols).
    pub(crate) fn phonemes(&self, clause: &Clause) -> Result<Option<String>, TtsError> {
        // NUL cannot cross into C; control characters mean nothing to speech.
        let words: String = clause.words.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
        if words.trim().is_empty() {
            return Ok(None);
        }
        let pieces = {
            let _guard = ESPEAK.lock().unwrap_or_else(|e| e.into_inner());
            ESPEAK_STARTED.store(true, Ordering::Relaxed);
            espeak_rs::text_to_phonemes(&words, &self.voice, None).map_err(|e| TtsError::Phonemize(e.to_string()))?
        };
        // espeak may still split inside the clause (brackets, symbols) and
        // may end pieces with its own '.'; we decide the punctuation.
        let body = pieces
            .iter()
            .map(|p| p.trim().trim_end_matches(['.', ',', ';', ':', '?', '!']).trim())
            .filter(|p| !p.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        if !body.chars().any(|c| c.is_alphabetic() && self.known.contains(&c)) {
            return Ok(None);
        }
        let mut s = body;
        if self.known.contains(&clause.punct) {
            s.push(clause.punct);
        }
        Ok(Some(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(text: &str) -> Vec<(String, char, bool)> {
        split_clauses(text).into_iter().map(|c| (c.words, c.punct, c.sentence_end)).collect()
    }

    #[test]
    fn splits_at_clause_and_sentence_punctuation() {
        assert_eq!(
            shape("Hello there, world. How are you? Fine; thanks!"),
            [
                ("Hello there".into(), ',', false),
                ("world".into(), '.', true),
                ("How are you".into(), '?', true),
                ("Fine".into(), ';', false),
                ("thanks".into(), '!', true),
            ]
        );
    }

    #[test]
    fn text_without_final_punctuation_is_one_sentence() {
        assert_eq!(
            shape("It costs 3.5 dollars, e.g. today"),
            [("It costs 3.5 dollars".into(), ',', false), ("e.g. today".into(), '.', true)]
        );
    }

    #[test]
    fn long_clauses_are_split_at_words() {
        let text = "word ".repeat(200);
        let c = split_clauses(&text);
        assert!(c.len() >= 3);
        assert!(c.iter().all(|c| c.text.len() <= MAX_CLAUSE_BYTES && c.words.split(' ').all(|w| w == "word")));
        let token = "x".repeat(1000);
        assert_eq!(split_clauses(&token).iter().map(|c| c.text.len()).sum::<usize>(), 1000);
    }

    /// Uses espeak-ng's data at the path compiled in by espeak-rs-sys (exists
    /// on the build machine); no voice model needed.
    #[test]
    fn phonemes_keep_clause_punctuation() {
        let known: HashSet<char> = "abcdefhijklmnopqrstuvwxyzæðŋɐɑɔəɚɛɜɡɪɹɾʃʊʌʒʔˈˌːθ ,.?!;:".chars().collect();
        let p = Phonemizer::new("en-us".into(), known, None).unwrap();
        let ph: Vec<String> = split_clauses("Hello there, world. Really?").iter().map(|c| p.phonemes(c).unwrap().unwrap()).collect();
        assert_eq!(ph.len(), 3);
        assert!(ph[0].ends_with(',') && ph[0].starts_with('h'), "{ph:?}");
        assert!(ph[1].ends_with('.'), "{ph:?}");
        assert!(ph[2].ends_with('?'), "{ph:?}");
        assert_eq!(p.phonemes(&split_clauses("?!")[0]).unwrap(), None);
        // espeak-ng reads emoji by name; normalize::for_speech drops them first.
        assert!(p.phonemes(&split_clauses("🎉")[0]).unwrap().is_some());
    }

    #[test]
    fn degenerate() {
        assert!(split_clauses("").is_empty());
        assert!(split_clauses("   \n ").is_empty());
        let p = split_clauses("?!...");
        assert!(p.iter().all(|c| c.words.is_empty()), "{p:?}");
    }
}
