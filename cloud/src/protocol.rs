//! Wire protocol between the device (`firstword` daemon) and the cloud gateway.
//!
//! Every frame is one WebSocket **text** message holding one JSON object whose
//! `"type"` field names the frame (serde: `tag = "type"`, snake_case). The
//! protocol is versioned by [`PROTOCOL_VERSION`], sent in `hello` and echoed in
//! `ready`. See `docs/protocol.md` for the full description with example frames.
//!
//! Flow (paper §"Collaborative generation"): the device speaks its μLM opener at
//! once and, in parallel, sends `continue` with the conversation and the opener
//! text; the gateway streams back `delta`s that are concatenated directly after
//! the opener, plus a `repair` frame when the continuation begins a recovery.

use serde::{Deserialize, Serialize};

/// Protocol version spoken by this crate; `hello.version` must equal it.
pub const PROTOCOL_VERSION: u32 = 1;

/// Client-chosen request identifier, unique among the requests in flight on one connection.
pub type RequestId = u64;

/// Who said a message in the conversation history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Extra instructions from the device (rarely used; the gateway adds its own).
    System,
    /// The person talking to the device.
    User,
    /// Earlier spoken answers (each the full joined opener + continuation).
    Assistant,
}

/// One turn of the conversation history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Speaker of this turn.
    pub role: Role,
    /// Text of the turn (already transcribed speech for `user`).
    pub content: String,
}

impl Message {
    /// A `user` turn.
    pub fn user(content: impl Into<String>) -> Self {
        Self { role: Role::User, content: content.into() }
    }
    /// An `assistant` turn.
    pub fn assistant(content: impl Into<String>) -> Self {
        Self { role: Role::Assistant, content: content.into() }
    }
    /// A `system` turn.
    pub fn system(content: impl Into<String>) -> Self {
        Self { role: Role::System, content: content.into() }
    }
}

/// How the cloud recovers when the committed opener is wrong (paper: three recovery modes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecoveryMode {
    /// Finish the fragment minimally, then a short (≤ 12 words) fluent self-repair
    /// bridge, then the right answer. Preferred by users in the paper's study.
    #[default]
    Natural,
    /// Finish the opener quickly, treat the detour as a deliberate, self-deprecating
    /// joke, then snap back to the facts. For absurd or hallucinated openers.
    Humor,
    /// The paper's default: a new line starting `Correction:` with one corrective
    /// sentence, then the full answer.
    Explicit,
}

/// `continue` payload: ask the cloud to continue an opener the device already spoke.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContinueRequest {
    /// Client-chosen id; every server frame about this request carries it.
    pub id: RequestId,
    /// Conversation so far, oldest first, ending with the user's current question.
    pub messages: Vec<Message>,
    /// The words the device already spoke (committed, never retracted). May be empty.
    pub opener: String,
    /// `true` if the opener ends a sentence; `false` if it is a fragment that the
    /// continuation must first finish grammatically.
    pub opener_complete: bool,
    /// Recovery style to use if the opener turns out wrong.
    #[serde(default)]
    pub mode: RecoveryMode,
    /// Upper bound on generated tokens (backend tokens).
    pub max_tokens: u32,
}

impl ContinueRequest {
    /// The last `user` message's text: the question being answered ("" if none).
    pub fn query(&self) -> &str {
        self.messages.iter().rev().find(|m| m.role == Role::User).map(|m| m.content.as_str()).unwrap_or("")
    }
}

/// Frames sent by the device to the gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// First frame of every connection: protocol version and bearer token.
    Hello {
        /// Must equal [`PROTOCOL_VERSION`].
        version: u32,
        /// Shared secret configured on the gateway (`token` in `cloud.toml`).
        token: String,
    },
    /// Start a continuation. Several may be in flight on one connection.
    Continue(ContinueRequest),
    /// Stop a request; generation upstream stops within one token and the request
    /// ends with `done` whose `finish_reason` is `cancelled`.
    Cancel {
        /// The request to stop.
        id: RequestId,
    },
    /// Application-level keepalive; answered by `pong` with the same nonce.
    Ping {
        /// Opaque value echoed back (e.g. a send timestamp in ms for RTT).
        nonce: u64,
    },
}

/// Why a continuation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// The model finished its answer (end of turn, stop sequence).
    Stop,
    /// `max_tokens` was reached.
    Length,
    /// The client cancelled, or the connection went away.
    Cancelled,
    /// The backend failed mid-stream; an `error` frame precedes this `done`.
    Error,
}

/// Token accounting for one request (backend tokens; 0 when the backend does not report them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Tokens in the prompt sent to the model.
    pub prompt_tokens: u32,
    /// Tokens the model generated (before seam filtering).
    pub completion_tokens: u32,
}

/// Server-side timings of one request, in milliseconds from receipt of `continue`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    /// Time until the first `delta` frame was sent (includes injected latency);
    /// `None` if no text was sent.
    pub first_delta_ms: Option<f64>,
    /// Time until the request finished.
    pub total_ms: f64,
    /// Artificial latency added by the gateway's `[latency]` settings.
    pub injected_ms: f64,
}

/// Machine-readable error categories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Not valid JSON, or a known type with missing/ill-typed fields.
    BadFrame,
    /// Valid JSON with an unknown `type`.
    UnknownType,
    /// Frame larger than the gateway's `max_frame_bytes`.
    FrameTooLarge,
    /// Wrong token in `hello` (connection is closed afterwards).
    Unauthorized,
    /// `hello.version` differs from the server's (connection is closed afterwards).
    VersionMismatch,
    /// A frame other than `hello` before a successful `hello`, or a second `hello`.
    NotReady,
    /// `continue` with an id already in flight.
    DuplicateId,
    /// `cancel` for an id not in flight (harmless: the request may just have finished).
    UnknownId,
    /// Too many requests in flight on this connection.
    TooManyRequests,
    /// The gateway is at its maximum number of sessions (connection is closed afterwards).
    TooManySessions,
    /// The continuation backend failed.
    Backend,
    /// The backend's queue is full; retry later (the request ends with `done`, `error`).
    Busy,
    /// The session sends `continue` faster than the gateway's `requests_per_s`
    /// token bucket allows; the request was not started.
    RateLimited,
    /// Anything else (a bug).
    Internal,
}

/// Frames sent by the gateway to the device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// Reply to a good `hello`: the session is open.
    Ready {
        /// Server protocol version (equals the client's).
        version: u32,
        /// Backend kind serving this gateway (`local`, `openai`, `scripted`).
        backend: String,
        /// Largest frame the server accepts, in bytes.
        max_frame_bytes: usize,
    },
    /// Continuation text to append (already seam-filtered: the first delta carries
    /// the join space if one is needed, so the device can concatenate verbatim).
    Delta {
        /// Request this text belongs to.
        id: RequestId,
        /// Text to append after the opener / previous deltas.
        text: String,
    },
    /// The continuation began a recovery at this point in the text stream
    /// (paper: handoff correction). Sent at most once per request.
    Repair {
        /// Request that is repairing its opener.
        id: RequestId,
        /// Recovery mode in use.
        mode: RecoveryMode,
    },
    /// The request finished; no more frames for this id follow.
    Done {
        /// Request that finished.
        id: RequestId,
        /// Why it finished.
        finish_reason: FinishReason,
        /// Token accounting.
        usage: Usage,
        /// Server-side timings (ms).
        timings_ms: Timings,
    },
    /// Something went wrong; `id` is set when it concerns one request.
    Error {
        /// Request concerned, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        /// Category.
        code: ErrorCode,
        /// Human-readable detail.
        message: String,
    },
    /// Answer to `ping`.
    Pong {
        /// The nonce from the `ping`.
        nonce: u64,
    },
}

/// Names of the client frame types, used to tell "unknown type" from "bad frame".
pub const CLIENT_FRAME_TYPES: [&str; 4] = ["hello", "continue", "cancel", "ping"];

/// Why a client frame could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Not JSON, not an object, no string `type`, or fields missing / ill-typed.
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// A `type` this version does not know.
    #[error("unknown frame type {0:?}")]
    UnknownType(String),
}

impl DecodeError {
    /// The protocol error code to report for this decode failure.
    pub fn code(&self) -> ErrorCode {
        match self {
            DecodeError::Malformed(_) => ErrorCode::BadFrame,
            DecodeError::UnknownType(_) => ErrorCode::UnknownType,
        }
    }
}

impl ClientFrame {
    /// Decode one text frame, distinguishing unknown types from malformed frames.
    pub fn decode(text: &str) -> Result<Self, DecodeError> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| DecodeError::Malformed(e.to_string()))?;
        let ty =
            value.get("type").and_then(|t| t.as_str()).ok_or_else(|| DecodeError::Malformed("missing string field \"type\"".into()))?;
        if !CLIENT_FRAME_TYPES.contains(&ty) {
            return Err(DecodeError::UnknownType(ty.to_string()));
        }
        serde_json::from_value(value).map_err(|e| DecodeError::Malformed(e.to_string()))
    }

    /// Encode as one JSON text frame.
    pub fn encode(&self) -> String {
        // Serializing these plain data types cannot fail (no maps with non-string keys).
        serde_json::to_string(self).unwrap_or_default()
    }
}

impl ServerFrame {
    /// Decode one server text frame (client side).
    pub fn decode(text: &str) -> Result<Self, DecodeError> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| DecodeError::Malformed(e.to_string()))?;
        let ty = value
            .get("type")
            .and_then(|t| t.as_str())
            .ok_or_else(|| DecodeError::Malformed("missing string field \"type\"".into()))?
            .to_string();
        serde_json::from_value(value).map_err(|e| {
            if e.to_string().contains("unknown variant") {
                DecodeError::UnknownType(ty)
            } else {
                DecodeError::Malformed(e.to_string())
            }
        })
    }

    /// Encode as one JSON text frame.
    pub fn encode(&self) -> String {
        // Serializing these plain data types cannot fail (f64 NaN becomes null).
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The request id this frame concerns, if any.
    pub fn request_id(&self) -> Option<RequestId> {
        match self {
            ServerFrame::Delta { id, .. } | ServerFrame::Repair { id, .. } | ServerFrame::Done { id, .. } => Some(*id),
            ServerFrame::Error { id, .. } => *id,
            ServerFrame::Ready { .. } | ServerFrame::Pong { .. } => None,
        }
    }
}
