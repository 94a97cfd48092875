//! The wake word's second stage (issue 18): the template spotter (`audio::wakeword`) fires on
//! many stretches of speech that merely sound like the phrase, so a detection counts only when
//! Whisper hears the phrase in the audio that ends where the spotter says the phrase did
//! ([`confirms_phrase`]). One short Whisper run per detection, on the thread
//! that spots (the listener), with its own decoding state on the shared weights
//! (`asr::Asr::fork`).

use crate::{Asr, AsrError};

/// Audio given to Whisper before a detection's estimated phrase end, in ms: the phrase
/// (≈ 1 s) and the spotter's error in placing its end (0.2–0.95 s late on held-out voices).
pub const CHECK_BEFORE_MS: u64 = 2_200;
/// …and after it, in ms (as far as the stream has come when the detection fires: the
/// spotter fires half a template after the end). Tuned on the tune set of
/// scripts/make_wakeword.sh (2026-12-03): 1.8 s before and nothing after confirmed 12 of 16.
pub const CHECK_AFTER_MS: u64 = 500;

/// The window `[from, to)` (16 kHz samples) the check hears for a detection whose phrase
/// ended at `end_sample`, when the stream has reached `available` samples.
pub fn check_window(end_sample: u64, available: u64) -> (u64, u64) {
    let per_ms = u64::from(crate::SAMPLE_RATE_HZ) / 1000;
    (end_sample.saturating_sub(CHECK_BEFORE_MS * per_ms), (end_sample + CHECK_AFTER_MS * per_ms).min(available))
}

/// Confirms wake-word detections with Whisper.
pub struct WakeCheck {
    asr: Asr,
    phrase: String,
    /// Whisper's initial prompt: the phrase spelled as it should come out ("Hey Firstword."),
    /// without which Whisper writes a word it does not know as "first one", "folks", "1st".
    prompt: String,
}

/// What the check decided about one detection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// Whisper heard the phrase.
    pub confirmed: bool,
    /// What Whisper heard (logged at debug level only: it may be private speech).
    pub transcript: String,
}

impl WakeCheck {
    /// Checks for `phrase` (the reference's name) with `asr` (a fork of the daemon's).
    pub fn new(asr: Asr, phrase: &str) -> Self {
        let words: Vec<String> = phrase
            .split_whitespace()
            .map(|w| {
                let mut c = w.chars();
                c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
            })
            .collect();
        Self { asr, phrase: phrase.to_owned(), prompt: format!("{}.", words.join(" ")) }
    }

    /// The phrase it listens for.
    pub fn phrase(&self) -> &str {
        &self.phrase
    }

    /// The initial prompt Whisper gets ("Hey Firstword.").
    pub fn prompt(&self) -> &str {
        &self.prompt
    }

    /// Whether `audio` (16 kHz mono: the [`check_window`] around the detection's estimated
    /// end) holds the phrase. Errors: [`AsrError`] from Whisper (bad samples, internal).
    pub fn check(&mut self, audio: &[f32]) -> Result<Checked, AsrError> {
        let t = self.asr.transcribe_prompted(audio, Some(&self.prompt))?;
        let confirmed = confirms_phrase(&t.text, &self.phrase);
        Ok(Checked { confirmed, transcript: t.text })
    }
}

/// True when `transcript` (what ASR heard around a detection) holds the wake `phrase`, up to
/// a quarter of its letters wrong: both are compared as lowercase letters only (so "Hey,
/// First Word." holds "hey firstword"), and the phrase may start anywhere in the transcript
/// (approximate substring match, Levenshtein distance ≤ letters / 4). The second stage of
/// wake-word detection: the template spotter fires on many things that sound alike, ASR
/// tells the phrase from them.
pub fn confirms_phrase(transcript: &str, phrase: &str) -> bool {
    // Whisper writes numbers as digits ("Hey 1st word", "First1"): spell them out first.
    const DIGITS: [&str; 10] = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"];
    let letters = |t: &str| {
        let t = t.to_lowercase().replace("1st", "first");
        t.chars()
            .flat_map(|c| match c.to_digit(10) {
                Some(d) => DIGITS[d as usize].chars().collect::<Vec<_>>(),
                None => c.is_alphabetic().then_some(c).into_iter().collect(),
            })
            .collect::<Vec<char>>()
    };
    let (p, t) = (letters(phrase), letters(transcript));
    if p.is_empty() {
        return false;
    }
    let k = p.len() / 4;
    // Sellers' algorithm: row j holds the distance of p[..i] to the best substring ending at t[j].
    let mut prev: Vec<usize> = vec![0; t.len() + 1];
    for (i, pc) in p.iter().enumerate() {
        let mut cur = vec![i + 1; t.len() + 1];
        for (j, tc) in t.iter().enumerate() {
            let sub = prev[j] + usize::from(pc != tc);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev.iter().any(|&d| d <= k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_phrase_is_confirmed_through_asr_spellings_and_refused_otherwise() {
        let p = "hey firstword";
        for heard in
            ["Hey, first word.", "Hey Firstword, what is the capital of France?", "A first word.", "Hey, fürst word!", "hey first world"]
        {
            assert!(confirms_phrase(heard, p), "{heard:?}");
        }
        for heard in ["", "What is the capital of France?", "Hey, how are you?", "The first one.", "forward", "thirsty"] {
            assert!(!confirms_phrase(heard, p), "{heard:?}");
        }
        assert!(!confirms_phrase("anything", ""), "an empty phrase confirms nothing");
    }
}
