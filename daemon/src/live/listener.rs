//! The listening thread: capture ring → 16 kHz → VAD + endpointer → [`Heard`] events for the
//! conversation loop, each utterance with its audio.
//!
//! Barge-in is applied here first: when speech is confirmed while a reply is playing (the
//! conversation loop mirrors `Turn::is_replying` into `replying`), playback stops at once,
//! whatever the conversation loop is busy with; the loop then gets `SpeechStart`, and the
//! turn state machine's own `StopPlayback` / `CancelCloud` follow.
//!
//! Activation (`[activation]`, see `audio::activation`) is applied here too: with a wake word
//! or push-to-talk, an utterance's events leave this thread only once it is activated, its
//! audio cut after the wake phrase; utterances never activated are dropped unheard.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result};
use audio::device::PlaybackControl;
use audio::history::SampleHistory;
use audio::vad::{Vad, VadEvent};
use audio::wakeword::WakeSpotter;

use super::clock::Heartbeat;
use super::inbox::{Heard, Inbox, PauseAudio, PauseResumed, PauseSlot, PauseVerdict, UtteranceQueue};
use audio::activation::Verdict;
use audio::activation_gate::ActivationGate;
use audio::mic::Mic;
use audio::sample_ms as ms;

/// Audio kept before an utterance's confirmed start, in 16 kHz samples (2 s): the VAD
/// reports where speech began, which precedes the confirmation, and `vad.pre_roll_ms`
/// (at most 1 s) more is handed to ASR.
const PREROLL_SAMPLES: u64 = 32_000;
/// Longest utterance kept whole, in 16 kHz samples (60 s); older audio is dropped.
const MAX_UTTERANCE_SAMPLES: u64 = 960_000;
/// Sleep when the capture ring is empty, in ms.
const IDLE_SLEEP_MS: u64 = 5;

/// The running listener. Dropping it stops the thread.
pub struct Listener {
    thread: Option<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
}

/// What the listening thread works with.
pub struct ListenerParts {
    /// The microphone, echo-cancelled (see `mic`).
    pub reader: Mic,
    pub vad: Vad,
    pub playback: PlaybackControl,
    /// Mirrors `Turn::is_replying` of the active turn.
    pub replying: Arc<AtomicBool>,
    /// The VAD's barge-in onset profile (`vad.barge_in_threshold`, `barge_in_min_speech_ms`)
    /// applies while `replying`: true when the microphone is echo-cancelled, so that the
    /// reply's residual echo is too weak to trip it (`firstword bench echo`); and only once
    /// the canceller has converged ([`Mic::echo_converged`]).
    pub barge_in_profile: bool,
    pub tx: Sender<Inbox>,
    pub heartbeat: Arc<Heartbeat>,
    /// `vad.pre_roll_ms` in 16 kHz samples ([`audio::vad::Vad::pre_roll_samples`]).
    pub pre_roll_samples: u64,
    /// Semantic endpointing's hangover for the current pause, posted by the conversation loop.
    pub verdict: Arc<PauseVerdict>,
    /// Marked when speech resumes after a pause: its speculative Whisper run stops.
    pub resumed: Arc<PauseResumed>,
    /// The latest pause's audio (a newer pause replaces it).
    pub pauses: Arc<PauseSlot>,
    /// Ended utterances not yet taken by the conversation loop (bounded).
    pub utterances: Arc<UtteranceQueue>,
    /// Wake word / push-to-talk; None = every utterance is passed on (`mode = "always"`).
    pub gate: Option<ActivationGate>,
}

/// An ended utterance waiting for the wake-word spotter to catch up with it (its detection
/// fires up to half a phrase after the phrase).
struct PendingEnd {
    start: u64,
    last_voiced: u64,
    endpoint: u64,
    /// First sample of `audio`.
    audio_start: u64,
    audio: Vec<f32>,
    /// Decide once the spotter has heard up to here.
    deadline: u64,
}

struct State {
    parts: ListenerParts,
    hist: SampleHistory,
    /// Start sample of the open utterance.
    open: Option<u64>,
    /// `vad.pre_roll_ms` in 16 kHz samples: audio kept before the VAD's speech start.
    pre_roll: u64,
    /// Number of the latest pause (wrapping, never 0).
    pause_seq: u32,
    /// The open utterance's events are passed on (always true without a gate).
    forwarded: bool,
    /// Audio before this sample is not passed on (the wake phrase).
    cut_from: u64,
    pending: Option<PendingEnd>,
}

impl State {
    fn send(&self, h: Heard) -> bool {
        self.parts.tx.send(Inbox::Heard(h)).is_ok()
    }

    fn on_event(&mut self, ev: VadEvent) -> bool {
        match ev {
            VadEvent::SpeechStart { sample } => {
                self.open = Some(sample);
                self.cut_from = 0;
                if !self.resolve_pending(true) {
                    return false;
                }
                self.forwarded = match self.parts.gate.as_mut() {
                    None => true,
                    Some(g) => matches!(g.activation.speech_start(ms(sample)), Verdict::Answer { .. }),
                };
                if !self.forwarded {
                    return true;
                }
                self.start_forwarding(sample)
            }
            VadEvent::Pause { last_voiced_sample, at_sample } => {
                if !self.forwarded {
                    return true;
                }
                let start = self.open.unwrap_or(at_sample).saturating_sub(self.pre_roll).max(self.cut_from);
                self.pause_seq = self.pause_seq.wrapping_add(1).max(1);
                let seq = self.pause_seq;
                let audio = self.hist.slice(start, at_sample);
                self.parts.pauses.put(PauseAudio { seq, last_voiced_ms: ms(last_voiced_sample), audio });
                self.send(Heard::Pause { seq })
            }
            VadEvent::Resume { .. } => {
                self.parts.resumed.mark(self.pause_seq);
                !self.forwarded || self.send(Heard::Resume)
            }
            VadEvent::SpeechEnd { last_voiced_sample, endpoint_sample } => {
                let start = self.open.take().unwrap_or(last_voiced_sample);
                let audio_start = start.saturating_sub(self.pre_roll).max(self.hist.start());
                let end = PendingEnd {
                    start,
                    last_voiced: last_voiced_sample,
                    endpoint: endpoint_sample,
                    audio_start,
                    audio: self.hist.slice(audio_start, endpoint_sample),
                    deadline: endpoint_sample + self.parts.gate.as_ref().map_or(0, ActivationGate::decide_lag_samples),
                };
                if self.parts.gate.is_none() {
                    return self.send_end(end, None);
                }
                self.pending = Some(end);
                self.resolve_pending(false)
            }
        }
    }

    /// Passes on the start of the open utterance (barge-in included).
    fn start_forwarding(&mut self, sample: u64) -> bool {
        self.forwarded = true;
        if self.parts.replying.load(Ordering::Acquire) {
            self.parts.playback.stop();
        }
        self.send(Heard::SpeechStart { start_ms: ms(sample), confirmed_ms: ms(self.hist.end()) })
    }

    /// Sends an ended utterance, its audio from `from` (the wake phrase's end) when given.
    fn send_end(&mut self, end: PendingEnd, from: Option<u64>) -> bool {
        let skip = from.map_or(0, |f| f.saturating_sub(end.audio_start).min(end.audio.len() as u64) as usize);
        self.forwarded = false;
        if !self.parts.utterances.try_reserve() {
            tracing::warn!(
                start_ms = ms(end.start) as u64,
                queued = self.parts.utterances.queued(),
                "the conversation loop is behind: utterance dropped"
            );
            return true;
        }
        let mut audio = end.audio;
        audio.drain(..skip);
        let sent = self.send(Heard::SpeechEnd {
            start_ms: ms(end.start),
            last_voiced_ms: ms(end.last_voiced),
            endpoint_ms: ms(end.endpoint),
            audio,
        });
        if !sent {
            self.parts.utterances.release();
        }
        sent
    }

    /// Decides the ended utterance waiting for the spotter, once it has caught up (or `now`).
    fn resolve_pending(&mut self, now: bool) -> bool {
        let Some(end) = self.pending.take() else {
            return true;
        };
        let Some(g) = self.parts.gate.as_mut() else {
            return self.send_end(end, None);
        };
        let heard_up_to = g.spotter.as_ref().map_or(u64::MAX, WakeSpotter::position);
        match g.activation.speech_end(ms(end.last_voiced), now || heard_up_to >= end.deadline) {
            Verdict::Undecided => {
                self.pending = Some(end);
                true
            }
            Verdict::Drop => {
                tracing::info!(start_ms = ms(end.start) as u64, "activation: utterance not activated, dropped unheard");
                self.forwarded = false;
                true
            }
            Verdict::Answer { from_ms } => {
                let from = from_ms.map(audio::ms_sample);
                if !self.forwarded && !self.start_forwarding(end.start) {
                    return false;
                }
                self.send_end(end, from)
            }
        }
    }

    /// Wake-word detections and key changes for the audio just heard; listening starts are
    /// announced (earcon, LED hook).
    fn activate(&mut self, s16: &[f32]) -> bool {
        let replying = self.parts.replying.load(Ordering::Acquire);
        let Some(g) = self.parts.gate.as_mut() else {
            return true;
        };
        let heard = g.hear(s16, &self.hist, replying);
        if let Some(wake_end) = heard.wake_end.filter(|_| self.open.is_some() && self.cut_from == 0) {
            self.cut_from = wake_end;
        }
        let late_start = match (self.open, self.forwarded) {
            (Some(start), false) => matches!(g.activation.during(), Verdict::Answer { .. }).then_some(start),
            _ => None,
        };
        for how in heard.started {
            tracing::info!("listening ({how})");
            if self.parts.tx.send(Inbox::Listening).is_err() {
                return false;
            }
        }
        if let Some(start) = late_start {
            if !self.start_forwarding(start) {
                return false;
            }
        }
        self.resolve_pending(false)
    }

    fn trim(&mut self) {
        let end = self.hist.end();
        let keep_from = match self.open {
            Some(start) => {
                start.saturating_sub(self.pre_roll).min(end.saturating_sub(PREROLL_SAMPLES)).max(end.saturating_sub(MAX_UTTERANCE_SAMPLES))
            }
            None => end.saturating_sub(PREROLL_SAMPLES),
        };
        self.hist.forget_before(keep_from);
    }
}

fn listen(mut st: State, stop: &AtomicBool) -> Result<()> {
    // The microphone hands out 16 kHz already (resampled before echo cancellation).
    anyhow::ensure!(st.parts.reader.rate_hz() == audio::ASR_RATE_HZ, "the microphone stream is not at 16 kHz");
    let mut s16 = vec![0.0f32; 4096];
    let mut asr = vec![0.0f32; 4096];
    while !stop.load(Ordering::Acquire) {
        st.parts.heartbeat.listener();
        // Semantic endpointing: the conversation loop judged the current pause.
        if let Some(hangover_ms) = st.parts.verdict.take(st.pause_seq) {
            if let Some(ev) = st.parts.vad.set_pause_hangover_ms(hangover_ms) {
                if !st.on_event(ev) {
                    return Ok(());
                }
            }
        }
        let n = st.parts.reader.read(&mut s16, &mut asr);
        if n == 0 {
            if st.parts.reader.is_ended() {
                for ev in st.parts.vad.finish() {
                    st.on_event(ev);
                }
                // The spotter hears the end of the input too (a phrase at its very end).
                let tail = vec![0.0; st.parts.gate.as_ref().map_or(0, ActivationGate::decide_lag_samples) as usize];
                st.hist.extend(&tail);
                st.activate(&tail);
                st.resolve_pending(true);
                let _ = st.parts.tx.send(Inbox::InputEnded);
                st.parts.heartbeat.listener_done();
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(IDLE_SLEEP_MS));
            continue;
        }
        // Whisper's stream is kept; the VAD hears the suppressed one (see `mic`).
        st.hist.extend(&asr[..n]);
        let barge_in = st.parts.barge_in_profile && st.parts.replying.load(Ordering::Acquire) && st.parts.reader.echo_converged();
        st.parts.vad.set_barge_in(barge_in);
        for ev in st.parts.vad.push(&s16[..n]).context("VAD")? {
            if !st.on_event(ev) {
                return Ok(()); // the conversation loop is gone
            }
        }
        if !st.activate(&s16[..n]) {
            return Ok(());
        }
        st.trim();
    }
    Ok(())
}

impl Listener {
    /// Starts the listening thread.
    pub fn spawn(parts: ListenerParts) -> Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = std::thread::Builder::new()
            .name("listener".into())
            .spawn(move || {
                let tx = parts.tx.clone();
                let heartbeat = parts.heartbeat.clone();
                let pre_roll = parts.pre_roll_samples;
                let st = State {
                    parts,
                    hist: SampleHistory::default(),
                    open: None,
                    pre_roll,
                    pause_seq: 0,
                    forwarded: false,
                    cut_from: 0,
                    pending: None,
                };
                if let Err(e) = listen(st, &stop2) {
                    heartbeat.listener_done();
                    let _ = tx.send(Inbox::ListenerFailed(format!("{e:#}")));
                }
            })
            .context("starting the listener thread")?;
        Ok(Self { thread: Some(thread), stop })
    }

    /// Stops the thread and waits for it.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop();
    }
}
