//! `lm`: the on-device micro language model (μLM) runtime of firstword, on candle (CPU).
//!
//! Implements the architecture of "Micro Language Models Enable Instant Responses" (Cheng et
//! al., 2026; summary in `shared/paper.md`): a Llama-style decoder of 8–30M parameters that
//! produces the first few words of an answer (the *opener*) within tens of milliseconds.
//!
//! - [`config`]: hyper-parameters and the paper's presets (`Preset::M512x8`, …).
//! - [`mulm_file`]: `mulm.json`, the one source of truth for config, special tokens and chat
//!   template (schema in `lm/SCHEMA.md`).
//! - [`weights`], [`load`]: random init, safetensors and GGUF loading with named errors.
//! - [`model`]: forward pass with KV cache; f32 or quantized (Q8_0) matrices.
//! - [`gguf_export`]: llama.cpp-compatible GGUF export (F32/F16/Q8_0/Q4_K).
//! - [`tokenizer`], [`sampler`], [`decode`]: BPE + chat template, sampling, decoding loop.
//! - [`opener`]: word-budgeted, word-boundary-exact openers with streaming callbacks.
//! - [`bench`]: the paper's fixed-window latency/throughput benchmark.
//! - [`dev`]: tiny tokenizer + random checkpoint for development without trained weights.
//! - [`checkpoint`]: the `[lm]` config table and the checkpoint directory loader.
//! - [`mulm`]: the μLM as the daemon uses it: openers after a chat history, the local finish.
//! - [`gate`]: the opener gate (is this opener likely right?); [`endpoint`]: semantic
//!   endpointing from the μLM's end-of-turn probability.
//! - [`gemma3`]: Gemma 3 (GGUF) on candle, the cloud crate's local backend and the lab's
//!   `eval mc` reference model (not the μLM; here so that neither reaches into the other).

// `%` instead of `is_multiple_of` keeps older toolchains happy; `!(x >= 0.0)` rejects NaN on purpose.
#![allow(clippy::manual_is_multiple_of, clippy::neg_cmp_op_on_partial_ord, clippy::nonminimal_bool)]

pub mod attention;
pub mod bench;
pub mod checkpoint;
pub mod config;
pub mod decode;
pub mod dev;
pub mod endpoint;
pub mod error;
pub mod gate;
pub mod gemma3;
pub mod gguf_check;
pub mod gguf_export;
pub mod harm;
pub mod harm_knn;
pub mod linear;
pub mod load;
pub mod minilm;
pub mod model;
pub mod mulm;
pub mod mulm_file;
pub mod opener;
pub mod prompt_bias;
pub mod q8;
pub mod rope_layout;
pub mod sampler;
pub mod swiglu;
pub(crate) mod tensor_view;
pub mod tokenizer;
pub mod weights;

pub use candle_core::quantized::GgmlDType;
pub use config::{ModelConfig, Preset};
pub use decode::{generate, Decoder, Generation, KvState, StopReason};
pub use error::{LmError, Result};
pub use gguf_export::{export_gguf, ExportType};
pub use load::{load_dir, load_gguf, load_safetensors};
pub use model::{configure_candle_threads, Cache, Model};
pub use mulm_file::MulmFile;
pub use opener::{opener, Opener, OpenerEngine, OpenerInput, WordBoundary};
pub use sampler::{Sampler, SamplingParams};
pub use tokenizer::{ChatMessage, ChatTokenizer, Role};
pub use weights::Weights;
