//! The listening thread: capture ring → 16 kHz → VAD + endpointer → [`Heard`] events for the
//! conversation loop, each utterance with its audio.
//!
//! Barge-in is applied here first: when speech is confirmed while a reply is playing (the
//! conversation loop mirrors `Turn::is_replying` into `replying`), playback stops at once,
//! whatever the conversation loop is busy with; the loop then gets `SpeechStart`, and the
//! turn state machine's own `StopPlayback` / `CancelCloud` follow.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result};
use audio::device::PlaybackControl;
use audio::resample_stream::StreamResampler;
use audio::vad::{Vad, VadEvent};

use super::clock::Heartbeat;
use super::inbox::{Heard, Inbox, PauseVerdict};
use super::mic::Mic;

/// Audio kept before an utterance's confirmed start, in 16 kHz samples (2 s): the VAD
/// reports where speech began, which precedes the confirmation, and `vad.pre_roll_ms`
/// (at most 1 s) more is handed to ASR.
const PREROLL_SAMPLES: u64 = 32_000;
/// Longest utterance kept whole, in 16 kHz samples (60 s); older audio is dropped.
const MAX_UTTERANCE_SAMPLES: u64 = 960_000;
/// Sleep when the capture ring is empty, in ms.
const IDLE_SLEEP_MS: u64 = 5;

fn ms(sample: u64) -> f64 {
    sample as f64 * 1000.0 / audio::ASR_RATE_HZ as f64
}

/// Recent 16 kHz audio with absolute sample positions.
struct History {
    base: u64,
    buf: Vec<f32>,
}

impl History {
    fn end(&self) -> u64 {
        self.base + self.buf.len() as u64
    }

    /// Samples `[from, to)`, clamped to what is kept.
    fn slice(&self, from: u64, to: u64) -> Vec<f32> {
        let a = from.saturating_sub(self.base).min(self.buf.len() as u64) as usize;
        let b = to.saturating_sub(self.base).min(self.buf.len() as u64) as usize;
        self.buf[a.min(b)..b].to_vec()
    }

    fn forget_before(&mut self, pos: u64) {
        let n = pos.saturating_sub(self.base).min(self.buf.len() as u64) as usize;
        if n > 0 {
            self.buf.drain(..n);
            self.base += n as u64;
        }
    }
}

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
    pub tx: Sender<Inbox>,
    pub heartbeat: Arc<Heartbeat>,
    /// `vad.pre_roll_ms` in 16 kHz samples ([`audio::vad::Vad::pre_roll_samples`]).
    pub pre_roll_samples: u64,
    /// Semantic endpointing's hangover for the current pause, posted by the conversation loop.
    pub verdict: Arc<PauseVerdict>,
}

struct State {
    parts: ListenerParts,
    hist: History,
    /// Start sample of the open utterance.
    open: Option<u64>,
    /// `vad.pre_roll_ms` in 16 kHz samples: audio kept before the VAD's speech start.
    pre_roll: u64,
    /// Number of the latest pause (wrapping, never 0).
    pause_seq: u32,
}

impl State {
    fn send(&self, h: Heard) -> bool {
        self.parts.tx.send(Inbox::Heard(h)).is_ok()
    }

    fn on_event(&mut self, ev: VadEvent) -> bool {
        match ev {
            VadEvent::SpeechStart { sample } => {
                self.open = Some(sample);
                if self.parts.replying.load(Ordering::Acquire) {
                    self.parts.playback.stop();
                }
                self.send(Heard::SpeechStart { start_ms: ms(sample), confirmed_ms: ms(self.hist.end()) })
            }
            VadEvent::Pause { last_voiced_sample, at_sample } => {
                let start = self.open.unwrap_or(at_sample).saturating_sub(self.pre_roll);
                self.pause_seq = self.pause_seq.wrapping_add(1).max(1);
                let seq = self.pause_seq;
                self.send(Heard::Pause { seq, last_voiced_ms: ms(last_voiced_sample), audio: self.hist.slice(start, at_sample) })
            }
            VadEvent::Resume { .. } => self.send(Heard::Resume),
            VadEvent::SpeechEnd { last_voiced_sample, endpoint_sample } => {
                let start = self.open.take().unwrap_or(last_voiced_sample);
                self.send(Heard::SpeechEnd {
                    start_ms: ms(start),
                    last_voiced_ms: ms(last_voiced_sample),
                    endpoint_ms: ms(endpoint_sample),
                    audio: self.hist.slice(start.saturating_sub(self.pre_roll), endpoint_sample),
                })
            }
        }
    }

    fn trim(&mut self) {
        let end = self.hist.end();
        let keep_from = match self.open {
            Some(start) => start
                .saturating_sub(self.pre_roll)
                .min(end.saturating_sub(PREROLL_SAMPLES))
                .max(end.saturating_sub(MAX_UTTERANCE_SAMPLES)),
            None => end.saturating_sub(PREROLL_SAMPLES),
        };
        self.hist.forget_before(keep_from);
    }
}

fn listen(mut st: State, stop: &AtomicBool) -> Result<()> {
    let mut rs = StreamResampler::new(st.parts.reader.rate_hz(), audio::ASR_RATE_HZ).context("capture resampler")?;
    let mut raw = vec![0.0f32; 4096];
    let mut s16 = Vec::with_capacity(4096);
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
        let n = st.parts.reader.read(&mut raw);
        if n == 0 {
            if st.parts.reader.is_ended() {
                for ev in st.parts.vad.finish() {
                    st.on_event(ev);
                }
                let _ = st.parts.tx.send(Inbox::InputEnded);
                st.parts.heartbeat.listener_done();
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(IDLE_SLEEP_MS));
            continue;
        }
        s16.clear();
        rs.process(&raw[..n], &mut s16).context("resampling the microphone")?;
        st.hist.buf.extend_from_slice(&s16);
        for ev in st.parts.vad.push(&s16).context("VAD")? {
            if !st.on_event(ev) {
                return Ok(()); // the conversation loop is gone
            }
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
                let st = State { parts, hist: History { base: 0, buf: Vec::new() }, open: None, pre_roll, pause_seq: 0 };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_slices_by_absolute_position() {
        let mut h = History { base: 0, buf: (0..10).map(|i| i as f32).collect() };
        h.forget_before(4);
        assert_eq!((h.base, h.end()), (4, 10));
        assert_eq!(h.slice(2, 6), vec![4.0, 5.0]);
        assert_eq!(h.slice(8, 20), vec![8.0, 9.0]);
        assert_eq!(h.slice(9, 3), Vec::<f32>::new());
    }
}
