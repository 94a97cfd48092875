//! The wake word's second stage (issue 18): the template spotter (`audio::wakeword`) fires on
//! many stretches of speech that merely sound like the phrase, so a detection counts only when
//! Whisper hears the phrase in the audio that ends where the spotter says the phrase did
//! (`audio::wakeword::confirms_phrase`). One short Whisper run per detection, on the thread
//! that spots (the listener), with its own decoding state on the shared weights
//! (`asr::Asr::fork`).

use anyhow::{Context, Result};

/// Audio given to Whisper before a detection's estimated phrase end, in ms: the phrase
/// (≈ 1 s) and the spotter's error in placing its end (≈ 0.6 s late, p50).
pub const CHECK_WINDOW_MS: u64 = 1_800;

/// Confirms wake-word detections with Whisper.
pub struct WakeCheck {
    asr: asr::Asr,
    phrase: String,
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
    pub fn new(asr: asr::Asr, phrase: &str) -> Self {
        Self { asr, phrase: phrase.to_owned() }
    }

    /// The phrase it listens for.
    pub fn phrase(&self) -> &str {
        &self.phrase
    }

    /// Whether `audio` (16 kHz mono: the [`CHECK_WINDOW_MS`] before the detection's
    /// estimated end) holds the phrase. Errors: Whisper failed (bad samples, internal).
    pub fn check(&mut self, audio: &[f32]) -> Result<Checked> {
        let t = self.asr.transcribe(audio).context("wake-word check")?;
        let confirmed = audio::wakeword::confirms_phrase(&t.text, &self.phrase);
        Ok(Checked { confirmed, transcript: t.text })
    }
}
