//! Speech recognition for firstword: whisper.cpp (through whisper-rs) over Whisper tiny.en,
//! converted from CTranslate2 to ggml by `firstword setup` (`assets::whisper_ggml`).
//!
//! Tuned for short spoken questions: greedy decoding, no context carried between turns, one
//! segment, and an encoder context cut to the audio's length ([`AudioCtx::Auto`]) because
//! whisper.cpp otherwise encodes a full 30 s window for a 2 s question.

mod config;
mod recognizer;
pub mod wake_check;
pub mod wer;

pub use config::{AsrConfig, AudioCtx};
pub use recognizer::{Asr, AsrTimings, Segment, Transcript};

/// Input sample rate, in Hz: Whisper listens at 16 kHz mono.
pub const SAMPLE_RATE_HZ: u32 = 16_000;

/// What went wrong loading Whisper or transcribing.
#[derive(Debug, thiserror::Error)]
pub enum AsrError {
    #[error("Whisper model not found at {0} (run scripts/setup.sh or set asr.model)")]
    ModelMissing(std::path::PathBuf),
    #[error("cannot load Whisper model {path}: {message} (not a whisper.cpp ggml file?)")]
    ModelInvalid { path: std::path::PathBuf, message: String },
    #[error("invalid audio for ASR: {0}")]
    BadInput(String),
    #[error("whisper.cpp failed: {0}")]
    Whisper(String),
    /// The caller's stop condition ([`Asr::transcribe_unless`]) turned true mid-run.
    #[error("transcription cancelled")]
    Cancelled,
    /// A value of the `[asr]` table out of range: `key` is its TOML key.
    #[error("{key}{problem}")]
    Setting { key: String, problem: String },
}
