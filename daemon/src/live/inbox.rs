//! What the conversation loop hears about: the listener's utterance events, cloud events,
//! the end of a simulated input, and shutdown signals — all on one channel, in order.

use std::time::Instant;

use cloud::client::CloudEvent;
use cloud::protocol::RequestId;

/// One message for the conversation loop.
#[derive(Debug)]
pub enum Inbox {
    /// From the listening thread.
    Heard(Heard),
    /// A cloud event for `request`, stamped with its arrival time.
    Cloud { request: RequestId, at: Instant, event: CloudEvent },
    /// The simulated microphone's input is exhausted and the listener has reported
    /// everything in it.
    InputEnded,
    /// SIGTERM or SIGINT arrived (`signal` names it).
    Shutdown { signal: &'static str },
    /// The listening thread stopped on an error.
    ListenerFailed(String),
}

/// Utterance events from the VAD. Times in ms on the stream clock (16 kHz samples since the
/// microphone started).
#[derive(Debug, Clone)]
pub enum Heard {
    /// Speech confirmed: it began at `start_ms`; the VAD decided at `confirmed_ms`.
    SpeechStart { start_ms: f64, confirmed_ms: f64 },
    /// A pause that may end the utterance: its audio so far (16 kHz) for speculative work.
    Pause { last_voiced_ms: f64, audio: Vec<f32> },
    /// Speech came back after a pause: speculative work is void.
    Resume,
    /// The utterance ended; `audio` (16 kHz) runs from its start to the endpoint.
    SpeechEnd { start_ms: f64, last_voiced_ms: f64, endpoint_ms: f64, audio: Vec<f32> },
}
