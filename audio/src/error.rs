//! Typed errors for the audio crate. Every variant names the problem so a caller can report
//! it; none of them is ever raised by a panic.

use std::path::PathBuf;

/// What went wrong reading, writing, converting or analysing audio.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("cannot write {path}: {message}")]
    Write { path: PathBuf, message: String },
    #[error("empty input: 0 bytes")]
    Empty,
    #[error("not a WAV file: {0}")]
    NotWav(String),
    #[error("WAV header only: the file holds no audio samples")]
    NoSamples,
    #[error("truncated WAV data: header promises {expected} samples, file holds {got}")]
    Truncated { expected: u64, got: u64 },
    #[error("unsupported WAV format: {0}")]
    Unsupported(String),
    #[error("invalid WAV header: {0}")]
    BadHeader(String),
    #[error("sample {index} is not finite ({value}): NaN or infinity in the audio")]
    NonFinite { index: usize, value: f32 },
    #[error("resampling {from_hz} Hz -> {to_hz} Hz failed: {message}")]
    Resample { from_hz: u32, to_hz: u32, message: String },
    #[error("onnxruntime library not found at {0} (run scripts/setup.sh or set onnxruntime_lib)")]
    OnnxRuntimeMissing(PathBuf),
    #[error("onnxruntime: {0}")]
    OnnxRuntime(String),
    #[error("VAD model not found at {0}")]
    VadModelMissing(PathBuf),
    #[error("VAD: {0}")]
    Vad(String),
    #[error("wake word: {0}")]
    WakeWord(String),
    /// A config value out of range or inconsistent: `key` is its TOML key (`vad.threshold`),
    /// and the message reads `{key}{problem}` (`vad.threshold = 2 (must be in 0..1)`).
    #[error("{key}{problem}")]
    InvalidConfig { key: String, problem: String },
    /// The push-to-talk key's input device could not be used.
    #[error("push-to-talk: {0}")]
    PushToTalk(String),
    /// The echo canceller (AEC3) refused its set-up or a frame.
    #[error("echo canceller: {0}")]
    EchoCanceller(String),
    #[error("frame of {got} samples, expected {expected}")]
    FrameSize { expected: usize, got: usize },
}

impl AudioError {
    /// [`AudioError::InvalidConfig`]: `key` refused because of `problem` (the message's rest).
    pub fn invalid_config(key: &str, problem: String) -> Self {
        Self::InvalidConfig { key: key.to_owned(), problem }
    }
}
