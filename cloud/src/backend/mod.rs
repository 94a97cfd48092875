//! Continuation backends behind one trait.
//!
//! A backend turns a [`ContinueRequest`] into a stream of *raw* text deltas (the
//! gateway applies the [`crate::continuation::ContinuationFilter`] afterwards).
//!
//! * [`scripted::ScriptedBackend`] — deterministic replies, instant or paced (tests, benchmarks).
//! * [`openai::OpenAiBackend`] — OpenAI-compatible `/v1/chat/completions` with SSE
//!   streaming (OpenAI, vLLM, llama.cpp server, Ollama, DeepSeek, Mistral).
//! * [`local::LocalBackend`] — Gemma 3 270M base (GGUF) on the CPU via candle.

pub mod cancel;
pub mod local;
pub mod openai;
pub mod scripted;
pub mod sse;

use std::pin::Pin;
use std::sync::Arc;

use futures_util::Stream;
use serde::Deserialize;
use tokio::sync::mpsc;

pub use cancel::CancelToken;

use crate::protocol::{ContinueRequest, FinishReason, Usage};

/// One continuation job for a backend.
#[derive(Debug, Clone)]
pub struct BackendRequest {
    /// What to continue (conversation, opener, recovery mode, `max_tokens`).
    pub request: ContinueRequest,
    /// Cancelled by the gateway on `cancel` or when the client disconnects; the
    /// backend must stop generating within one token.
    pub cancel: CancelToken,
}

/// An item of a backend's output stream.
#[derive(Debug, Clone, PartialEq)]
pub enum BackendEvent {
    /// Raw continuation text (unfiltered).
    Delta(String),
    /// Generation ended; the last item of a stream.
    Finished {
        /// Why it ended.
        reason: FinishReason,
        /// Token accounting (zeros when unknown).
        usage: Usage,
    },
}

/// Errors from backends.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// Bad configuration (missing model file, missing API key, …).
    #[error("backend configuration: {0}")]
    Config(String),
    /// The upstream HTTP server answered with an error status.
    #[error("upstream HTTP {status}: {body}")]
    Http {
        /// HTTP status code.
        status: u16,
        /// Start of the response body.
        body: String,
    },
    /// Network / transport failure talking to the upstream.
    #[error("upstream transport: {0}")]
    Transport(String),
    /// The upstream sent something this client cannot understand.
    #[error("upstream protocol: {0}")]
    Protocol(String),
    /// The local model failed (loading, tokenizing, inference).
    #[error("model: {0}")]
    Model(String),
    /// The backend's worker is gone (thread panicked or shut down).
    #[error("backend unavailable: {0}")]
    Unavailable(String),
    /// The backend's queue is full; the request was refused at once (error code `busy`).
    #[error("backend busy: {0}")]
    Busy(String),
    /// The upstream did not answer in time (`request_timeout_ms`, `idle_timeout_ms`).
    #[error("upstream timeout: {0}")]
    Timeout(String),
}

/// Stream of backend events; ends after [`BackendEvent::Finished`] or an error.
/// Dropping it cancels the generation upstream.
pub type DeltaStream = Pin<Box<dyn Stream<Item = Result<BackendEvent, BackendError>> + Send>>;

/// A continuation backend.
pub trait Backend: Send + Sync {
    /// Short name reported in `ready.backend` (`scripted`, `openai`, `local`).
    fn kind(&self) -> &'static str;

    /// Start generating the raw continuation for `req`. Must return at once (the
    /// work happens while the stream is polled or on a worker); must stop within
    /// one token of `req.cancel` being cancelled or the stream being dropped.
    fn stream(&self, req: BackendRequest) -> DeltaStream;
}

/// Backend selection in `cloud.toml` (`[backend]` table, `kind = …`).
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum BackendConfig {
    /// Local Gemma 3 270M GGUF on the CPU.
    Local(local::LocalConfig),
    /// OpenAI-compatible HTTP server.
    Openai(openai::OpenAiConfig),
    /// Deterministic scripted replies.
    Scripted(scripted::ScriptedConfig),
}

/// `Err` naming `key` unless `v` is finite and within `lo..=hi`.
pub(crate) fn check_range(key: &str, v: f64, lo: f64, hi: f64) -> Result<(), crate::error::CloudError> {
    if v.is_finite() && (lo..=hi).contains(&v) {
        Ok(())
    } else {
        Err(crate::error::CloudError::invalid_config(key, format!(" = {v} (must be a finite number in {lo}..={hi})")))
    }
}

impl BackendConfig {
    /// Range checks the types cannot express (non-finite numbers included); errors
    /// name the key (`backend.temperature`, …).
    pub fn validate(&self) -> Result<(), crate::error::CloudError> {
        match self {
            BackendConfig::Local(c) => c.validate(),
            BackendConfig::Openai(c) => c.validate(),
            BackendConfig::Scripted(_) => Ok(()),
        }
    }

    /// Build the configured backend (loads the local model, reads API keys).
    pub fn build(&self) -> Result<Arc<dyn Backend>, BackendError> {
        Ok(match self {
            BackendConfig::Local(c) => Arc::new(local::LocalBackend::load(c)?),
            BackendConfig::Openai(c) => Arc::new(openai::OpenAiBackend::new(c.clone())?),
            BackendConfig::Scripted(c) => Arc::new(scripted::ScriptedBackend::new(c.clone())),
        })
    }
}

/// Channel capacity between a producer task/thread and the stream it feeds.
pub(crate) const STREAM_CHANNEL: usize = 64;

/// A stream fed by an mpsc receiver (the producer stops when the stream is dropped,
/// because its sends start failing).
pub(crate) fn receiver_stream(mut rx: mpsc::Receiver<Result<BackendEvent, BackendError>>) -> DeltaStream {
    Box::pin(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)))
}

/// Rough token count for backends that cannot count (≈ words; documented as such).
pub(crate) fn approx_tokens(text: &str) -> u32 {
    text.split_whitespace().count() as u32
}
