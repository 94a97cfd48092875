//! What the conversation loop hears about: the listener's utterance events, cloud events,
//! the end of a simulated input, and shutdown signals — all on one channel, in order.

use std::sync::atomic::{AtomicU64, Ordering};
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
    /// Listening started (wake word heard, push-to-talk key pressed): say so (earcon, LED hook).
    Listening,
}

/// Utterance events from the VAD. Times in ms on the stream clock (16 kHz samples since the
/// microphone started).
#[derive(Debug, Clone)]
pub enum Heard {
    /// Speech confirmed: it began at `start_ms`; the VAD decided at `confirmed_ms`.
    SpeechStart { start_ms: f64, confirmed_ms: f64 },
    /// A pause that may end the utterance: its audio so far (16 kHz, pre-roll included) for
    /// speculative work. `seq` numbers the pauses, so a [`PauseVerdict`] reaches only the
    /// pause it was made for.
    Pause { seq: u32, last_voiced_ms: f64, audio: Vec<f32> },
    /// Speech came back after a pause: speculative work is void.
    Resume,
    /// The utterance ended; `audio` (16 kHz) runs from its start to the endpoint.
    SpeechEnd { start_ms: f64, last_voiced_ms: f64, endpoint_ms: f64, audio: Vec<f32> },
}

/// Semantic endpointing's answer to one pause, from the conversation loop (which transcribes
/// it) to the listener thread (which owns the VAD): the hangover for pause `seq`, in ms.
/// Lock-free: one `u64`, `seq` in the high half and the hangover in the low half; 0 = none.
#[derive(Debug, Default)]
pub struct PauseVerdict(AtomicU64);

impl PauseVerdict {
    /// Posts the hangover for pause `seq` (≥ 1), replacing any verdict not yet taken.
    pub fn set(&self, seq: u32, hangover_ms: u32) {
        self.0.store((u64::from(seq) << 32) | u64::from(hangover_ms), Ordering::Release);
    }

    /// Takes the posted verdict if it is for pause `seq`; a stale one is discarded.
    pub fn take(&self, seq: u32) -> Option<u32> {
        let v = self.0.swap(0, Ordering::AcqRel);
        (v != 0 && (v >> 32) as u32 == seq).then_some(v as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verdict_reaches_only_its_own_pause() {
        let v = PauseVerdict::default();
        assert_eq!(v.take(1), None);
        v.set(3, 1_000);
        assert_eq!(v.take(3), Some(1_000));
        assert_eq!(v.take(3), None, "taken once");
        v.set(3, 64);
        assert_eq!(v.take(4), None, "stale: pause 4 came after it");
        assert_eq!(v.take(3), None, "discarded, not kept for later");
        v.set(u32::MAX, 0);
        assert_eq!(v.take(u32::MAX), Some(0));
    }
}
