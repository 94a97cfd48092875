//! Client settings and the request/event types of the device API.

use std::path::PathBuf;

use crate::protocol::{ErrorCode, FinishReason, Message, RecoveryMode, Timings, Usage};

/// Settings for [`super::CloudClient`]. All durations in ms.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Limit for TCP/TLS connect + WebSocket upgrade + `hello`/`ready`, ms.
    pub connect_timeout_ms: u64,
    /// A request with no `delta` this long after `continue` gets a
    /// [`CloudEvent::FirstDeltaTimeout`] (the request keeps running; the daemon
    /// decides whether to cancel and fall back), ms. Roughly the time the opener
    /// masks: 4–8 spoken words at ~2.5 words/s (paper) ≈ 1.6–3.2 s.
    pub first_delta_timeout_ms: u64,
    /// Keepalive `ping` interval, ms.
    pub ping_interval_ms: u64,
    /// The connection counts as dead when nothing arrived for
    /// `ping_interval_ms + pong_timeout_ms`, ms.
    pub pong_timeout_ms: u64,
    /// First reconnect delay, ms; doubles after each failure.
    pub backoff_initial_ms: u64,
    /// Longest reconnect delay, ms.
    pub backoff_max_ms: u64,
    /// The backoff returns to `backoff_initial_ms` only after a session stayed up
    /// this long: a gateway that accepts and then drops every session (flapping)
    /// sees reconnects slow down to `backoff_max_ms`, not one every 100 ms, ms.
    pub backoff_reset_after_ms: u64,
    /// Random spread of each reconnect delay, as a fraction (0.2 = ±20 %), so a
    /// fleet of devices does not reconnect in lockstep.
    pub backoff_jitter: f64,
    /// Also send `Authorization: Bearer <token>` on the WebSocket upgrade (for
    /// proxies / load balancers that check it); the token always goes in `hello` too.
    pub bearer_header: bool,
    /// PEM file of extra CA certificates to trust for `wss://`, in addition to the
    /// built-in public roots (webpki-roots): the private CA or the self-signed
    /// certificate of your own gateway. Read by [`super::CloudClient::connect`],
    /// which fails with [`crate::CloudError::Config`] if the file is unreadable or
    /// holds no certificate. `None`: public roots only.
    pub tls_ca_file: Option<PathBuf>,
    /// Allow `ws://` (token sent in clear) to a host that is not loopback
    /// (`127.0.0.0/8`, `::1`, `localhost`). Off: such URLs are refused by
    /// [`super::CloudClient::connect`]; use `wss://`.
    pub allow_insecure: bool,
}

impl ClientOptions {
    /// Values the client cannot work with; errors name the field.
    pub fn validate(&self) -> Result<(), crate::error::CloudError> {
        if !(self.backoff_jitter.is_finite() && (0.0..=1.0).contains(&self.backoff_jitter)) {
            return Err(crate::error::CloudError::invalid_config(
                "backoff_jitter",
                format!(" = {} (must be a finite number in 0..=1)", self.backoff_jitter),
            ));
        }
        if self.backoff_initial_ms == 0 || self.backoff_max_ms < self.backoff_initial_ms {
            return Err(crate::error::CloudError::invalid_config("backoff_initial_ms", " must be > 0 and <= backoff_max_ms".into()));
        }
        if self.ping_interval_ms == 0 || self.connect_timeout_ms == 0 {
            return Err(crate::error::CloudError::invalid_config("ping_interval_ms", " and connect_timeout_ms must be > 0".into()));
        }
        Ok(())
    }
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            connect_timeout_ms: 3_000,
            first_delta_timeout_ms: 2_000,
            ping_interval_ms: 5_000,
            pong_timeout_ms: 3_000,
            backoff_initial_ms: 100,
            backoff_max_ms: 5_000,
            backoff_reset_after_ms: 10_000,
            backoff_jitter: 0.2,
            bearer_header: true,
            tls_ca_file: None,
            allow_insecure: false,
        }
    }
}

/// What to continue (a `continue` frame minus the id, which the client assigns).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContinueParams {
    /// Conversation so far, ending with the user's question.
    pub messages: Vec<Message>,
    /// Words the device already spoke.
    pub opener: String,
    /// Whether the opener ends a sentence.
    pub opener_complete: bool,
    /// Recovery mode if the opener is wrong.
    pub mode: RecoveryMode,
    /// Most tokens to generate.
    pub max_tokens: u32,
}

impl ContinueParams {
    /// A single-turn request: `question` answered after `opener` (natural recovery,
    /// 120 tokens — enough for the 2–4 spoken sentences the prompt asks for).
    pub fn new(question: impl Into<String>, opener: impl Into<String>) -> Self {
        Self {
            messages: vec![Message::user(question)],
            opener: opener.into(),
            opener_complete: false,
            mode: RecoveryMode::Natural,
            max_tokens: 120,
        }
    }
}

/// Why a request failed on the client side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloudErrorKind {
    /// The gateway reported an error for this request.
    Server(ErrorCode),
    /// No connection when the request was made (the client is reconnecting).
    NotConnected,
    /// The connection dropped while the request was in flight.
    ConnectionLost,
}

/// Events of one request, in order. The receiver closes after the terminal event:
/// `Done`, or an `Error` whose kind is `NotConnected` / `ConnectionLost` (or a
/// server error that ends the request, e.g. `duplicate_id`).
#[derive(Debug, Clone, PartialEq)]
pub enum CloudEvent {
    /// Text to append (the first one includes the join space).
    Delta(String),
    /// The continuation started a recovery (handoff correction).
    Repair(RecoveryMode),
    /// The request finished.
    Done {
        /// Why.
        finish_reason: FinishReason,
        /// Token counts.
        usage: Usage,
        /// Server-side timings (ms).
        timings_ms: Timings,
    },
    /// Something failed.
    Error {
        /// Category.
        kind: CloudErrorKind,
        /// Detail.
        message: String,
    },
    /// No text within `first_delta_timeout_ms`; the request is still running.
    FirstDeltaTimeout {
        /// How long it has waited, ms.
        waited_ms: u64,
    },
}

/// Connection counters of a client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// Successful sessions (`ready` received), including the first.
    pub connects: u64,
    /// Sessions that ended (server gone, network, keepalive timeout).
    pub disconnects: u64,
    /// Last connection error, if any.
    pub last_error: Option<String>,
}
