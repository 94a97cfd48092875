//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong loading a voice or synthesizing speech.
/// Every variant that concerns a file names it.
#[derive(Debug, thiserror::Error)]
pub enum TtsError {
    /// A value of the `[tts]` table out of range: `key` is its TOML key.
    #[error("{key}{problem}")]
    Setting {
        /// The TOML key (`tts.length_scale`).
        key: String,
        /// The rest of the message (` = 9 (must be in 0.25..4.0)`).
        problem: String,
    },
    /// The voice model (`.onnx`) or its config (`.onnx.json`) does not exist.
    #[error("voice model file not found: {path} (run the setup script, or set voice_onnx / FIRSTWORD_MODELS)")]
    MissingModel {
        /// The path that was looked up.
        path: PathBuf,
    },
    /// The voice config exists but is not a usable Piper `.onnx.json`.
    #[error("bad voice config {path}: {reason}")]
    BadVoiceConfig {
        /// The `.onnx.json` file.
        path: PathBuf,
        /// What was wrong with it.
        reason: String,
    },
    /// No onnxruntime shared library at the configured path (or `ORT_DYLIB_PATH`).
    /// Checked before ort is touched: ort 2.0.0-rc.12 hangs on a missing library.
    #[error("onnxruntime library not found: {path} (set onnxruntime_lib or ORT_DYLIB_PATH to libonnxruntime.so.1.24.x)")]
    OnnxRuntimeMissing {
        /// The path that was looked up.
        path: PathBuf,
    },
    /// The onnxruntime library exists but could not be loaded (wrong file,
    /// wrong architecture, API version older than 1.24).
    #[error("failed to load onnxruntime from {path}: {reason}")]
    OnnxRuntimeLoad {
        /// The library file.
        path: PathBuf,
        /// The loader's message.
        reason: String,
    },
    /// onnxruntime rejected the voice model.
    #[error("failed to load voice model {path}: {reason}")]
    ModelLoad {
        /// The `.onnx` file.
        path: PathBuf,
        /// onnxruntime's message.
        reason: String,
    },
    /// The configured espeak-ng data directory has no `espeak-ng-data` in it.
    #[error("espeak-ng data not found: {path} (expected a directory containing espeak-ng-data/)")]
    EspeakDataMissing {
        /// The configured directory.
        path: PathBuf,
    },
    /// espeak-ng could not turn text into phonemes.
    #[error("phonemization failed: {0}")]
    Phonemize(String),
    /// The voice model failed to run.
    #[error("synthesis failed: {0}")]
    Synthesis(String),
}
