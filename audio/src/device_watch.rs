//! The conversation loop's view of its devices: a microphone loss latched (a loss that came
//! and went while the loop was busy with Whisper or the μLM still counts), and a lost speaker
//! reopened with backoff ([`REOPEN_FIRST`] doubling to [`REOPEN_MAX`]). Pure apart from the
//! reopen call: the caller passes the counters and the time, and acts on the [`DeviceChange`]s.

use std::time::{Duration, Instant};

use crate::device::AudioCounters;
use crate::devices::ReopenSpeaker;
use crate::mic::{Backoff, REOPEN_FIRST, REOPEN_MAX};

/// Something that happened to a device since the last [`DeviceWatch::poll`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DeviceChange {
    /// The microphone went away (once per loss).
    MicLost,
    /// The microphone is back.
    MicBack,
    /// The speaker went away; reopen attempts follow.
    SpeakerLost,
    /// The speaker was reopened after being gone this long.
    SpeakerBack { gone: Duration },
}

/// Device losses seen so far, and the lost speaker's reopen backoff.
#[derive(Debug, Default)]
pub struct DeviceWatch {
    mic_losses_seen: u64,
    mic_lost: bool,
    speaker_lost: Option<(Instant, Backoff)>,
}

impl DeviceWatch {
    /// True while the speaker is gone (utterances are not answered meanwhile).
    pub fn speaker_lost(&self) -> bool {
        self.speaker_lost.is_some()
    }

    /// Reads `counters` at `now`, tries a due speaker reopen with `reopen`, and returns what
    /// changed, losses first. A failed reopen is logged and retried later.
    pub fn poll(&mut self, counters: &AudioCounters, now: Instant, reopen: &mut ReopenSpeaker) -> Vec<DeviceChange> {
        let mut changes = Vec::new();
        if counters.playback_lost() {
            let (since, backoff) = self.speaker_lost.get_or_insert_with(|| {
                changes.push(DeviceChange::SpeakerLost);
                (now, Backoff::new(REOPEN_FIRST, REOPEN_MAX))
            });
            if backoff.due(now) {
                match reopen() {
                    // The reopen cleared `playback_lost` (cpal's and the simulated speaker's alike).
                    Ok(()) => {
                        changes.push(DeviceChange::SpeakerBack { gone: now.saturating_duration_since(*since) });
                        self.speaker_lost = None;
                    }
                    Err(e) => {
                        Backoff::log_failure("speaker", backoff.failed(now), &e);
                    }
                }
            }
        }
        let losses = counters.capture_losses();
        if losses > self.mic_losses_seen {
            self.mic_losses_seen = losses;
            self.mic_lost = true;
            changes.push(DeviceChange::MicLost);
        }
        if self.mic_lost && !counters.capture_lost() {
            self.mic_lost = false;
            changes.push(DeviceChange::MicBack);
        }
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[test]
    fn a_lost_speaker_is_reopened_with_backoff_and_reported_once() {
        let counters = AudioCounters::new();
        let calls = Arc::new(AtomicUsize::new(0));
        let (c, k) = (counters.clone(), calls.clone());
        // Fails twice, then works (and clears the loss, as the real reopen does).
        let mut reopen: ReopenSpeaker = Box::new(move || {
            if k.fetch_add(1, Ordering::SeqCst) < 2 {
                return Err(crate::device::DeviceError::SimThread("still unplugged".into()));
            }
            c.set_playback_lost(false);
            Ok(())
        });
        let mut w = DeviceWatch::default();
        let t0 = Instant::now();
        assert!(w.poll(&counters, t0, &mut reopen).is_empty());
        counters.set_playback_lost(true);
        assert_eq!(w.poll(&counters, t0, &mut reopen), vec![DeviceChange::SpeakerLost]);
        assert!(w.speaker_lost());
        let ms = |n| t0 + Duration::from_millis(n);
        // Attempts at 250 ms (fails), 750 ms (fails: waits 500), 1,750 ms (waits 1 s: works).
        for (at, expect_calls) in [(100, 0), (250, 1), (700, 1), (750, 2), (1_700, 2)] {
            assert!(w.poll(&counters, ms(at), &mut reopen).is_empty(), "at {at} ms");
            assert_eq!(calls.load(Ordering::SeqCst), expect_calls, "at {at} ms");
        }
        let back = w.poll(&counters, ms(1_750), &mut reopen);
        assert_eq!(back, vec![DeviceChange::SpeakerBack { gone: Duration::from_millis(1_750) }]);
        assert!(!w.speaker_lost());
    }

    #[test]
    fn a_speaker_back_after_5_s_is_in_use_within_the_1_s_cap() {
        let counters = AudioCounters::new();
        let (c, t0) = (counters.clone(), Instant::now());
        let back_at = t0 + Duration::from_secs(5);
        let now = Arc::new(std::sync::Mutex::new(t0));
        let clock = now.clone();
        // The device opens again from 5 s after the loss.
        let mut reopen: ReopenSpeaker = Box::new(move || {
            if *clock.lock().unwrap() < back_at {
                return Err(crate::device::DeviceError::SimThread("unplugged".into()));
            }
            c.set_playback_lost(false);
            Ok(())
        });
        let mut w = DeviceWatch::default();
        counters.set_playback_lost(true);
        // The conversation loop polls every 10 ms.
        let mut reopened = None;
        for ms in (0..10_000).step_by(10) {
            let at = t0 + Duration::from_millis(ms);
            *now.lock().unwrap() = at;
            if let Some(DeviceChange::SpeakerBack { gone }) = w.poll(&counters, at, &mut reopen).pop() {
                reopened = Some(gone);
                break;
            }
        }
        let gone = reopened.expect("never reopened");
        assert!(gone >= Duration::from_secs(5) && gone <= Duration::from_secs(6), "reopened {gone:?} after the loss");
    }

    #[test]
    fn a_microphone_loss_that_came_and_went_between_polls_is_still_reported() {
        let counters = AudioCounters::new();
        let mut reopen: ReopenSpeaker = Box::new(|| Ok(()));
        let mut w = DeviceWatch::default();
        let now = Instant::now();
        counters.set_capture_lost(true);
        counters.set_capture_lost(false);
        assert_eq!(w.poll(&counters, now, &mut reopen), vec![DeviceChange::MicLost, DeviceChange::MicBack]);
        counters.set_capture_lost(true);
        assert_eq!(w.poll(&counters, now, &mut reopen), vec![DeviceChange::MicLost]);
        assert!(w.poll(&counters, now, &mut reopen).is_empty(), "one report per loss");
        counters.set_capture_lost(false);
        assert_eq!(w.poll(&counters, now, &mut reopen), vec![DeviceChange::MicBack]);
    }
}
