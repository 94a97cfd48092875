//! The speaking side: Piper synthesizes each `Speak` clause by clause, each clause is
//! resampled from the voice's rate (22,050 Hz) to the speaker's and queued as soon as it is
//! ready, with the seam pause the replay timeline uses between pieces of one reply.

use std::ops::ControlFlow;
use std::time::Duration;

use anyhow::{Context, Result};
use audio::device::{PlaybackControl, PlaybackQueue, PushOutcome};

use super::clock::Clock;
use crate::config::Config;
use crate::turn_shared::seam_gap_ms;
use tts::heard::{heard_text, Spoken};

/// A full playback ring that does not move for this long means the device stopped.
const STALL_TIMEOUT: Duration = Duration::from_secs(5);

/// The playback device stopped taking audio: the ring stayed full for [`STALL_TIMEOUT`].
/// Fatal for the daemon (systemd restarts it); any other speaking error only ends the turn.
#[derive(Debug, thiserror::Error)]
#[error("the playback device stopped taking audio (ring full for {STALL_TIMEOUT:?})")]
pub struct PlaybackStalled;

/// Where a piece of speech landed on the stream clock (ms).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Placed {
    /// When its first audio was queued.
    pub ready_ms: f64,
    /// When it starts playing (after what was queued before it, and its seam pause).
    pub start_ms: f64,
    /// When its last sample plays.
    pub end_ms: f64,
}

/// Most phrases of one reply remembered for [`Speaker::heard_text`] (a reply is a few
/// sentences; the rest would still play but not be kept).
const MAX_REPLY_PHRASES: usize = 512;

/// One phrase of the current reply and where its audio sits in the played-sample count.
#[derive(Debug, Clone)]
struct PhraseMark {
    text: String,
    start: u64,
    end: u64,
}

/// The speaker worker's state.
pub struct Speaker {
    queue: PlaybackQueue,
    control: PlaybackControl,
    clock: Clock,
    /// When the audio queued so far ends (ms, stream clock).
    last_end_ms: f64,
    /// The previous piece of this reply (for the seam pause); None at a reply's start.
    prev_text: Option<String>,
    /// The phrases of this reply queued so far.
    phrases: Vec<PhraseMark>,
}

impl Speaker {
    /// A speaker queuing into `queue`.
    pub fn new(queue: PlaybackQueue, clock: Clock) -> Self {
        let control = queue.control();
        Self { queue, control, clock, last_end_ms: 0.0, prev_text: None, phrases: Vec::new() }
    }

    /// The handle that stops playback (shared with the listener for barge-in).
    pub fn control(&self) -> PlaybackControl {
        self.control.clone()
    }

    /// A new reply starts: no seam pause before its first piece, playback accepted again.
    pub fn begin_reply(&mut self) {
        self.prev_text = None;
        self.phrases.clear();
        self.control.resume();
    }

    /// What the user heard of this reply, once it is over: every phrase queued, or, when
    /// playback was stopped (barge-in, shutdown), the phrases played, cut at the last word
    /// played of the one playing (see [`tts::heard::heard_text`]; positions from the
    /// device's played-sample count, exact to one device period).
    pub fn heard_text(&self) -> String {
        let stop = self.control.is_stopped().then(|| self.control.played_samples() as f64);
        let pieces: Vec<Spoken<'_>> =
            self.phrases.iter().map(|p| Spoken { text: &p.text, start: p.start as f64, end: p.end as f64 }).collect();
        heard_text(&pieces, stop)
    }

    /// Plays the "listening" earcon (two soft 60 ms tones) when nothing else is playing.
    /// Returns whether it was queued. Never waits: a full ring just skips it.
    pub fn earcon(&mut self) -> bool {
        if !self.is_idle() {
            return false;
        }
        self.control.resume();
        let tone = audio::earcon::earcon_samples(self.queue.rate_hz());
        self.queue.push(&tone) == tone.len()
    }

    /// Stops playback now (barge-in, shutdown).
    pub fn stop(&self) {
        self.control.stop();
    }

    /// True between a stop (barge-in, shutdown) and the next reply.
    pub fn is_stopped(&self) -> bool {
        self.control.is_stopped()
    }

    /// True when nothing is left to play.
    pub fn is_idle(&self) -> bool {
        self.queue.queued() == 0
    }

    /// When the audio already queued will have played, in ms on the stream clock.
    fn play_from_ms(&self) -> f64 {
        self.clock.now_ms() + self.queue.queued() as f64 * 1000.0 / self.queue.rate_hz() as f64
    }

    /// Speaks `text` (Markdown and URLs made speakable first). Returns where it landed, or
    /// None when nothing was queued (nothing pronounceable, or playback was stopped first).
    /// Errors: synthesis or resampling failures, and a playback device that stopped.
    pub fn speak(&mut self, voice: &mut tts::Tts, cfg: &Config, text: &str) -> Result<Option<Placed>> {
        let spoken = tts::normalize::for_speech(text);
        if spoken.trim().is_empty() || self.control.is_stopped() {
            return Ok(None);
        }
        let gap_ms = self.prev_text.as_deref().map(|p| seam_gap_ms(cfg, p)).unwrap_or(0.0);
        let (voice_hz, dev_hz) = (voice.sample_rate_hz(), self.queue.rate_hz());
        let mut placed: Option<Placed> = None;
        let mut failure: Option<anyhow::Error> = None;
        let synth = voice.synthesize_phrases(&spoken, |phrase| {
            if self.control.is_stopped() {
                return ControlFlow::Break(());
            }
            let pcm = match audio::resample::resample(&phrase.pcm.samples, voice_hz, dev_hz) {
                Ok(p) => p,
                Err(e) => {
                    failure = Some(e.into());
                    return ControlFlow::Break(());
                }
            };
            let mut outcome = PushOutcome::Queued;
            if placed.is_none() {
                let play_from = self.play_from_ms();
                let silence_ms = if self.prev_text.is_some() { (self.last_end_ms + gap_ms - play_from).max(0.0) } else { 0.0 };
                let zeros = vec![0.0f32; (silence_ms * dev_hz as f64 / 1000.0) as usize];
                outcome = self.queue.push_all(&zeros, STALL_TIMEOUT);
                let start = play_from + silence_ms;
                placed = Some(Placed { ready_ms: self.clock.now_ms(), start_ms: start, end_ms: start });
            }
            if outcome == PushOutcome::Queued {
                // Where this phrase starts in the played-sample count: everything queued plays
                // first (played before queued: a callback in between makes it at most one
                // period early, never late).
                let start = self.control.played_samples() + self.queue.queued() as u64;
                if self.phrases.len() < MAX_REPLY_PHRASES {
                    self.phrases.push(PhraseMark { text: phrase.text.clone(), start, end: start + pcm.len() as u64 });
                }
                outcome = self.queue.push_all(&pcm, STALL_TIMEOUT);
                // More clauses may follow: running dry from here on is an underrun.
                self.control.set_streaming(true);
            }
            self.last_end_ms = self.play_from_ms();
            if let Some(p) = placed.as_mut() {
                p.end_ms = self.last_end_ms;
            }
            match outcome {
                PushOutcome::Queued => ControlFlow::Continue(()),
                PushOutcome::Stopped => ControlFlow::Break(()),
                PushOutcome::Stalled => {
                    failure = Some(PlaybackStalled.into());
                    ControlFlow::Break(())
                }
            }
        });
        self.control.set_streaming(false);
        synth.context("Piper")?;
        if let Some(e) = failure {
            return Err(e);
        }
        if placed.is_some() {
            self.prev_text = Some(text.to_string());
        }
        Ok(placed)
    }
}
