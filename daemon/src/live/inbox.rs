//! What the conversation loop hears about: the listener's utterance events, cloud events,
//! the end of a simulated input, and shutdown signals — all on one channel, in order.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
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
    /// A pause that may end the utterance; its audio so far waits in the [`PauseSlot`] for
    /// speculative work. `seq` numbers the pauses, so a [`PauseVerdict`] reaches only the
    /// pause it was made for, and the slot's audio only the latest pause.
    Pause { seq: u32 },
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

/// The latest pause after which the user spoke on, from the listener (which hears it) to a
/// speculative Whisper run on the conversation loop (which stops as soon as its pause is
/// stale, freeing the cores for the next pause). Lock-free: the pause's number, 0 = none.
#[derive(Debug, Default)]
pub struct PauseResumed(AtomicU32);

impl PauseResumed {
    /// Speech resumed after pause `seq` (≥ 1; pauses are numbered in order).
    pub fn mark(&self, seq: u32) {
        self.0.store(seq, Ordering::Release);
    }

    /// Whether speech resumed after pause `seq` or after a later one (so after `seq` too).
    /// Pause numbers wrap; a mark counts as later when it is less than 2³¹ pauses ahead.
    pub fn after(&self, seq: u32) -> bool {
        let r = self.0.load(Ordering::Acquire);
        r != 0 && r.wrapping_sub(seq) < 1 << 31
    }
}

/// The audio of a VAD pause for speculative work: 16 kHz, pre-roll included.
#[derive(Debug)]
pub struct PauseAudio {
    pub seq: u32,
    /// End of the last speech frame before the pause, in ms on the stream clock.
    pub last_voiced_ms: f64,
    pub audio: Vec<f32>,
}

/// The latest pause's audio, from the listener to the conversation loop. Speculation only
/// ever helps for the latest pause, so a newer pause replaces an older one not yet taken:
/// under continuous speech (a TV in the room) a busy conversation loop never accumulates
/// copies of the utterance, whatever the number of pauses. The lock is held only to swap.
#[derive(Debug, Default)]
pub struct PauseSlot(Mutex<Option<PauseAudio>>);

impl PauseSlot {
    /// Stores `pause`, replacing (and dropping) any pause not yet taken.
    pub fn put(&self, pause: PauseAudio) {
        let old = self.0.lock().unwrap_or_else(|p| p.into_inner()).replace(pause);
        drop(old); // freed outside the lock
    }

    /// Takes the audio of pause `seq`, if that is the latest pause; None when a newer pause
    /// replaced it (its own `Pause` message is on the way) or it was taken already.
    pub fn take(&self, seq: u32) -> Option<PauseAudio> {
        let mut slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match slot.as_ref() {
            Some(p) if p.seq == seq => slot.take(),
            _ => None,
        }
    }
}

/// Ended utterances sent to the conversation loop and not yet taken from the inbox. The
/// listener drops an utterance rather than queue more than `limit` (a stuck or far-behind
/// loop), so the inbox's audio stays bounded: `limit` × `vad.max_utterance_ms`.
#[derive(Debug)]
pub struct UtteranceQueue {
    queued: AtomicUsize,
    limit: usize,
}

impl UtteranceQueue {
    /// Allows `limit` ended utterances in flight.
    pub fn new(limit: usize) -> Self {
        Self { queued: AtomicUsize::new(0), limit }
    }

    /// Reserves a place for one more utterance; false when `limit` are already queued.
    pub fn try_reserve(&self) -> bool {
        self.queued.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < self.limit).then_some(n + 1)).is_ok()
    }

    /// One queued utterance was taken (or its send failed).
    pub fn release(&self) {
        let _ = self.queued.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }

    /// Utterances queued now.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pause(seq: u32, samples: usize) -> PauseAudio {
        PauseAudio { seq, last_voiced_ms: f64::from(seq) * 100.0, audio: vec![0.5; samples] }
    }

    #[test]
    fn only_the_latest_pause_keeps_its_audio() {
        let slot = PauseSlot::default();
        assert!(slot.take(1).is_none());
        slot.put(pause(1, 16_000));
        slot.put(pause(2, 32_000));
        assert!(slot.take(1).is_none(), "pause 1 was replaced by pause 2");
        let p = slot.take(2).expect("the latest pause");
        assert_eq!((p.seq, p.audio.len(), p.last_voiced_ms), (2, 32_000, 200.0));
        assert!(slot.take(2).is_none(), "taken once");
        // However many pauses come while the loop is busy, one copy of the audio is held.
        for seq in 3..1_000 {
            slot.put(pause(seq, 1_000));
        }
        assert!(slot.take(998).is_none());
        assert_eq!(slot.take(999).map(|p| p.seq), Some(999));
    }

    #[test]
    fn the_utterance_queue_holds_at_most_its_limit() {
        let q = UtteranceQueue::new(2);
        assert!(q.try_reserve());
        assert!(q.try_reserve());
        assert!(!q.try_reserve(), "a third utterance waits for none");
        assert_eq!(q.queued(), 2);
        q.release();
        assert!(q.try_reserve());
        q.release();
        q.release();
        q.release(); // one too many: stays at 0, never wraps
        assert_eq!(q.queued(), 0);
        assert!(q.try_reserve());
    }

    #[test]
    fn a_resume_makes_its_pause_and_earlier_ones_stale_and_no_later_one() {
        let r = PauseResumed::default();
        assert!(!r.after(1), "nothing resumed yet");
        r.mark(5);
        assert!(r.after(5));
        assert!(r.after(4), "an earlier pause is stale too");
        assert!(!r.after(6), "the next pause is not");
        r.mark(1); // numbers wrapped past u32::MAX
        assert!(r.after(u32::MAX));
        assert!(!r.after(2));
    }

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
