//! Text-to-speech for firstword: a Piper voice (piper-rs 0.2.0 on onnxruntime
//! through ort 2.0.0-rc.12, espeak-ng phonemes), plus the text side of
//! speaking an LLM's streamed answer.
//!
//! - [`Tts`] loads a voice from a [`TtsConfig`] and synthesizes [`Pcm`]
//!   (mono f32, 22,050 Hz for the default voice), whole or as [`Phrase`]s
//!   per clause so playback can start early.
//! - [`chunk::Chunker`] cuts streamed text deltas into speakable chunks.
//! - [`normalize::for_speech`] strips Markdown, URLs and emoji.
//! - [`heard::heard_text`] says which words of a reply had played when playback stopped.
//!
//! Typical use: LLM deltas → `Chunker::push` → `Tts::synthesize_phrases` →
//! audio output.

mod boundary;
pub mod chunk;
mod config;
mod error;
pub mod heard;
pub mod normalize;
mod pcm;
mod phonemize;
mod runtime;
mod synth;

pub use config::{TtsConfig, DEFAULT_ONNXRUNTIME_LIB, DEFAULT_VOICE_ONNX};
pub use error::TtsError;
pub use pcm::{Pcm, TRIM_KEEP_MS, TRIM_THRESHOLD};
pub use synth::{Phrase, Tts, MAX_KEPT_CLAUSES};
