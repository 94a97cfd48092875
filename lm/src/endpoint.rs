//! Semantic endpointing: at each VAD pause, how long to keep waiting, decided from the
//! speculative transcript and the μLM's probability that the user's turn ends there.
//!
//! A fixed hangover ends "Set a timer for … twelve minutes" at the pause and answers half a
//! sentence; a long one makes every answer late. The speculative ASR already runs at the
//! pause, so its text is free evidence: a trailing function word ("for", "and the") or a
//! comma says *unfinished* (wait up to `unfinished_hangover_ms`); final punctuation plus a
//! high μLM probability of `<|end|>` after the user's words says *complete* (end after
//! `complete_hangover_ms`). The μLM was trained with `<|end|>` closing user turns, so it
//! doubles as an end-of-turn model at no extra memory (LiveKit's turn detector and
//! Pipecat's smart-turn use a separate model for the same decision). Pure: no audio, no
//! model; the drivers compute the inputs and apply the hangover to the VAD.

use serde::Deserialize;

/// The `[endpoint]` table of the config.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EndpointConfig {
    /// Decide each pause's hangover from its transcript (false: `vad.hangover_ms` always).
    pub semantic: bool,
    /// Hangover of a pause judged complete, in ms of silence (≥ `vad.pause_ms` ends the
    /// utterance at the pause's decision, since the pause itself is that long already).
    pub complete_hangover_ms: u32,
    /// Hangover of a pause judged unfinished, in ms (the user is still mid-sentence).
    pub unfinished_hangover_ms: u32,
    /// Hangover of a pause that is neither (no final punctuation, or a low end-of-turn
    /// probability: commands such as "Set a timer for 12 minutes please." score ≈ 0.2),
    /// in ms; 0 = the VAD's `hangover_ms`. Longer than the VAD's default because Whisper
    /// often "completes" a cut-off fragment ("Set a timer for it.").
    pub unsure_hangover_ms: u32,
    /// μLM probability of `<|end|>` after the user's words at or above which a punctuated
    /// transcript counts as complete (0..1).
    pub end_of_turn_prob: f32,
    /// Speech that resumes within this long (ms) after the last voiced sample of an utterance
    /// whose turn is still in progress continues that utterance: the reply stops (barge-in)
    /// and both parts become one turn, one transcript and one answer. 0 = off (the second
    /// part is a turn of its own). At most [`MAX_RESUME_MERGE_MS`].
    pub resume_merge_ms: u32,
}

/// Largest accepted `endpoint.resume_merge_ms`, in ms.
pub const MAX_RESUME_MERGE_MS: u32 = 5_000;

impl Default for EndpointConfig {
    fn default() -> Self {
        Self {
            semantic: true,
            complete_hangover_ms: 64,
            unfinished_hangover_ms: 1_000,
            unsure_hangover_ms: 700,
            end_of_turn_prob: 0.5,
            resume_merge_ms: 1_000,
        }
    }
}

impl EndpointConfig {
    /// Range checks; the message names the key.
    pub fn validate(&self) -> crate::Result<()> {
        if self.complete_hangover_ms > 10_000 {
            return Err(crate::LmError::setting(
                "endpoint.complete_hangover_ms",
                format!(" = {} (must be 0..10000)", self.complete_hangover_ms),
            ));
        }
        if self.unfinished_hangover_ms > 10_000 {
            return Err(crate::LmError::setting(
                "endpoint.unfinished_hangover_ms",
                format!(" = {} (must be 0..10000)", self.unfinished_hangover_ms),
            ));
        }
        if self.unsure_hangover_ms > 10_000 {
            return Err(crate::LmError::setting(
                "endpoint.unsure_hangover_ms",
                format!(" = {} (must be 0..10000)", self.unsure_hangover_ms),
            ));
        }
        if self.resume_merge_ms > MAX_RESUME_MERGE_MS {
            return Err(crate::LmError::setting(
                "endpoint.resume_merge_ms",
                format!(" = {} (must be 0..={MAX_RESUME_MERGE_MS})", self.resume_merge_ms),
            ));
        }
        if !(0.0..=1.0).contains(&self.end_of_turn_prob) {
            return Err(crate::LmError::setting(
                "endpoint.end_of_turn_prob",
                format!(" = {} (must be a number in 0..1)", self.end_of_turn_prob),
            ));
        }
        Ok(())
    }
}

/// What a pause's transcript says about the user's turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Completeness {
    /// Ends a sentence and the μLM expects the turn to end: answer now.
    Complete,
    /// Clearly mid-sentence: keep listening.
    Unfinished,
    /// Neither: the configured VAD hangover decides.
    Unsure,
}

/// Words after which an English sentence cannot end: articles, prepositions, conjunctions,
/// possessives, auxiliaries and hesitations.
const TRAILING_WORDS: &[&str] = &[
    "a", "an", "the", "and", "or", "but", "nor", "so", "because", "if", "than", "that", "which", "who", "whose", "for", "to", "of", "in",
    "on", "at", "by", "with", "from", "into", "onto", "about", "like", "as", "over", "under", "between", "through", "after", "before",
    "during", "without", "my", "your", "his", "her", "its", "our", "their", "this", "these", "those", "is", "are", "was", "were", "be",
    "am", "do", "does", "did", "can", "could", "should", "would", "will", "shall", "may", "might", "must", "have", "has", "had", "um",
    "uh", "er", "erm", "hmm", "i", "we", "you", "some", "any", "very", "really", "me", "what's", "where's", "how's", "it's", "i'm",
];

/// Words that open a request when spoken alone before a pause ("Okay, … new conversation",
/// "Well … what's the time?"): Whisper writes the fragment as a sentence ("Okay.") and a μLM may
/// well expect a turn to end there (0.89 on the μLM shipped since 2026-12-07), yet as the whole
/// turn they ask for no answer, so waiting the unsure hangover for more costs nothing.
const PREFACE_WORDS: &[&str] = &["okay", "ok", "alright", "well", "now", "hey", "oh", "right", "actually", "listen", "wait"];

/// Judges a speculative transcript. `p_end` is the μLM's probability of `<|end|>` right
/// after the user's words (None when no μLM is loaded: punctuation alone decides). A transcript
/// of one preface word (`PREFACE_WORDS`: "Okay.", "Well?") is never complete: at most unsure.
pub fn judge(transcript: &str, p_end: Option<f32>, cfg: &EndpointConfig) -> Completeness {
    let t = transcript.trim();
    if t.is_empty() {
        return Completeness::Unsure;
    }
    if t.ends_with(',') || t.ends_with("...") || t.ends_with('…') || t.ends_with('-') || t.ends_with('—') {
        return Completeness::Unfinished;
    }
    let last = t
        .split_whitespace()
        .next_back()
        .unwrap_or("")
        .trim_matches(|c: char| !c.is_alphanumeric() && c != '\'')
        .to_lowercase()
        .replace('’', "'");
    if TRAILING_WORDS.contains(&last.as_str()) {
        return Completeness::Unfinished;
    }
    if t.split_whitespace().count() == 1 && PREFACE_WORDS.contains(&last.as_str()) {
        return Completeness::Unsure;
    }
    let punctuated = t.ends_with(['.', '?', '!']);
    match p_end {
        Some(p) if punctuated && p >= cfg.end_of_turn_prob => Completeness::Complete,
        None if punctuated => Completeness::Complete,
        _ => Completeness::Unsure,
    }
}

/// The hangover (ms of silence) for a pause judged `c`; `None` keeps `vad.hangover_ms`.
pub fn pause_hangover_ms(c: Completeness, cfg: &EndpointConfig) -> Option<u32> {
    if !cfg.semantic {
        return None;
    }
    match c {
        Completeness::Complete => Some(cfg.complete_hangover_ms),
        Completeness::Unfinished => Some(cfg.unfinished_hangover_ms),
        Completeness::Unsure => (cfg.unsure_hangover_ms > 0).then_some(cfg.unsure_hangover_ms),
    }
}

/// Whether speech starting at `start_ms` continues the utterance whose last voiced sample
/// was at `prev_last_voiced_ms` (its turn still in progress): the user resumed after an
/// early endpoint, within `endpoint.resume_merge_ms`. Times in ms on one clock.
pub fn continues_previous(prev_last_voiced_ms: f64, start_ms: f64, cfg: &EndpointConfig) -> bool {
    cfg.resume_merge_ms > 0 && start_ms - prev_last_voiced_ms <= f64::from(cfg.resume_merge_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speech_resuming_soon_after_an_endpoint_continues_the_utterance() {
        let mut cfg = EndpointConfig::default(); // 1,000 ms
        assert!(continues_previous(5_000.0, 5_650.0, &cfg), "a 650 ms pause mid-sentence");
        assert!(continues_previous(5_000.0, 6_000.0, &cfg));
        assert!(!continues_previous(5_000.0, 6_001.0, &cfg), "a new question after the reply began");
        cfg.resume_merge_ms = 0;
        assert!(!continues_previous(5_000.0, 5_100.0, &cfg), "off");
    }

    fn j(t: &str, p: Option<f32>) -> Completeness {
        judge(t, p, &EndpointConfig::default())
    }

    #[test]
    fn trailing_function_words_and_commas_are_unfinished() {
        for t in [
            "Set a timer for",
            "Set a timer for.",
            "Can you give me a recipe with...",
            "What's the weather going to be like in",
            "I want to go to the",
            "Tell me about, um",
            "Remind me to call my mom and",
            "So,",
            "What’s",
        ] {
            assert_eq!(j(t, Some(0.99)), Completeness::Unfinished, "{t:?}");
        }
    }

    #[test]
    fn punctuated_and_likely_ends_are_complete() {
        assert_eq!(j("Why is the sky blue?", Some(0.8)), Completeness::Complete);
        assert_eq!(j("Set a timer for twelve minutes.", Some(0.51)), Completeness::Complete);
        // Without a μLM, final punctuation alone decides.
        assert_eq!(j("How far away is the moon?", None), Completeness::Complete);
    }

    #[test]
    fn weak_evidence_is_unsure() {
        assert_eq!(j("Why is the sky blue?", Some(0.1)), Completeness::Unsure);
        // The μLM's view of a Whisper-"completed" fragment: 0.19 on the shipped checkpoint.
        assert_eq!(j("Set a timer for it.", Some(0.19)), Completeness::Unsure);
        assert_eq!(j("why is the sky blue", Some(0.9)), Completeness::Unsure);
        assert_eq!(j("   ", Some(0.9)), Completeness::Unsure);
        assert_eq!(j("", None), Completeness::Unsure);
    }

    #[test]
    fn a_lone_preface_word_is_unsure_whatever_the_mulm_says() {
        // Whisper at the comma pause of "Okay, new conversation.": 0.89 on the shipped μLM.
        for t in ["Okay.", "OK!", "Well?", "Alright.", " okay. "] {
            assert_eq!(j(t, Some(0.99)), Completeness::Unsure, "{t:?}");
            assert_eq!(j(t, None), Completeness::Unsure, "{t:?}");
        }
        // Only alone: a sentence that ends in one is judged as any other.
        assert_eq!(j("Is that okay?", Some(0.9)), Completeness::Complete);
        assert_eq!(j("Okay, new conversation.", Some(0.9)), Completeness::Complete);
        assert_eq!(j("Thanks.", Some(0.9)), Completeness::Complete);
    }

    #[test]
    fn hangover_follows_the_judgement_and_the_switch() {
        let mut cfg = EndpointConfig::default();
        assert_eq!(pause_hangover_ms(Completeness::Complete, &cfg), Some(64));
        assert_eq!(pause_hangover_ms(Completeness::Unfinished, &cfg), Some(1_000));
        assert_eq!(pause_hangover_ms(Completeness::Unsure, &cfg), Some(700));
        cfg.unsure_hangover_ms = 0;
        assert_eq!(pause_hangover_ms(Completeness::Unsure, &cfg), None);
        cfg.semantic = false;
        assert_eq!(pause_hangover_ms(Completeness::Unfinished, &cfg), None);
    }

    #[test]
    fn validation_names_the_key() {
        let bad = EndpointConfig { end_of_turn_prob: f32::NAN, ..EndpointConfig::default() };
        assert!(bad.validate().unwrap_err().key() == Some("endpoint.end_of_turn_prob"));
        let bad = EndpointConfig { unfinished_hangover_ms: 20_000, ..EndpointConfig::default() };
        assert!(bad.validate().unwrap_err().key() == Some("endpoint.unfinished_hangover_ms"));
        let bad = EndpointConfig { resume_merge_ms: MAX_RESUME_MERGE_MS + 1, ..EndpointConfig::default() };
        assert!(bad.validate().unwrap_err().key() == Some("endpoint.resume_merge_ms"));
        assert!(EndpointConfig::default().validate().is_ok());
    }
}

#[cfg(test)]
mod calibration {
    /// The μLM's end-of-turn probability on whole questions and on pause fragments as
    /// Whisper tiny.en transcribed them (fixtures/voices and fixtures/questions):
    /// `cargo test -p lm calibration -- --ignored --nocapture`; `MULM_DIR` names another
    /// checkpoint directory than the shipped `models/mulm`.
    #[test]
    #[ignore = "a measurement on the shipped μLM, not a check"]
    fn end_of_turn_probabilities() {
        let shipped = std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../models/mulm"));
        let dir = std::env::var_os("MULM_DIR").map_or(shipped, std::path::PathBuf::from);
        let m = crate::mulm::Mulm::load(&crate::checkpoint::LmSection { model_dir: dir, ..Default::default() }).unwrap();
        let whole = [
            "Why is the sky blue?",
            "How long shall I boil an egg?",
            "What time is it in Tokyo right now?",
            "Hi, can you help me plan a weekend trip?",
            "What is the capital on France?",
            "Can you recommend a good book to read?",
            "How far away is the moon?",
            "Where do penguins live?",
            "What's a good way to fall asleep faster?",
            "How do I keep my basil plant alive?",
            "Can you suggest a quick dinner for tonight?",
            "Set a timer for 12 minutes please.",
            "Can you give me a recipe with chicken and rice?",
            "Okay, new conversation.",
        ];
        let fragments = [
            "Set a timer for it.",
            "Can you give me a message?",
            "What's the weather going to be liking?",
            "Set a timer for",
            "Can you give me a recipe with",
            "What's the weather going to be like in",
            // Whisper at the comma pause of "Okay, new conversation.".
            "Okay.",
            "Okay,",
        ];
        for t in whole.iter().chain(&fragments) {
            eprintln!("{:.3}  {t}", m.end_of_turn_prob(t).unwrap());
        }
    }
}
