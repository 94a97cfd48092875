//! ASR settings (the `[asr]` table of the daemon's config).

use std::path::PathBuf;

use serde::Deserialize;

/// How much of Whisper's 30 s encoder window to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AudioCtx {
    /// The audio's own length plus a margin (≈ 50 encoder frames per second); full window
    /// for audio over 30 s. Several times faster on short questions, at a small accuracy cost.
    #[default]
    Auto,
    /// The full 1500-frame (30 s) window: whisper.cpp's default.
    Full,
}

/// Whisper settings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AsrConfig {
    /// whisper.cpp ggml model file.
    pub model: PathBuf,
    /// Decoder/encoder threads; 0 means one per available core.
    pub threads: usize,
    /// Spoken language code ("en" for the .en models).
    pub language: String,
    /// Encoder window policy.
    pub audio_ctx: AudioCtx,
    /// Force a single segment (right for questions of a few seconds).
    pub single_segment: bool,
}

impl Default for AsrConfig {
    fn default() -> Self {
        Self {
            model: PathBuf::from("models/whisper/ggml-tiny.en.bin"),
            threads: 0,
            language: "en".into(),
            audio_ctx: AudioCtx::Auto,
            single_segment: true,
        }
    }
}

impl AsrConfig {
    /// Range checks the types cannot express.
    ///
    /// # Errors
    /// [`crate::AsrError::Setting`] naming the key (`asr.threads` above 256).
    pub fn validate(&self) -> Result<(), crate::AsrError> {
        if self.threads > 256 {
            return Err(crate::AsrError::Setting { key: "asr.threads".into(), problem: format!(" = {} (at most 256)", self.threads) });
        }
        Ok(())
    }

    /// The thread count to use: `threads`, or the number of available cores when 0.
    pub fn effective_threads(&self) -> usize {
        if self.threads > 0 {
            self.threads
        } else {
            std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
        }
    }
}
