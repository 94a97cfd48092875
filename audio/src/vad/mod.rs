//! Voice activity detection and endpointing on 16 kHz mono audio in 512-sample frames (32 ms).
//!
//! A [`SpeechDetector`] gives a speech probability per frame (Silero VAD, or an energy
//! detector when the model file is missing); the [`Endpointer`] turns probabilities into
//! speech-start / pause / speech-end events with hysteresis, a minimum speech length and a
//! hangover. The endpointer is pure (no model, no clock) so tests drive it frame by frame.

mod endpointer;
mod energy;
mod silero;
mod utterances;

pub use endpointer::{Endpointer, VadEvent};
pub use energy::EnergyDetector;
pub use silero::SileroDetector;
pub use utterances::{utterance_audio, utterances, Utterance};

use std::path::PathBuf;

use serde::Deserialize;

use crate::AudioError;

/// Samples per VAD frame at 16 kHz (Silero's window; 32 ms).
pub const FRAME_SAMPLES: usize = 512;
/// Duration of one frame, in ms.
pub const FRAME_MS: f64 = FRAME_SAMPLES as f64 * 1000.0 / crate::ASR_RATE_HZ as f64;

/// A per-frame speech probability source.
pub trait SpeechDetector: Send {
    /// Probability in [0, 1] that `frame` (exactly [`FRAME_SAMPLES`] samples at 16 kHz)
    /// contains speech. Errors on a frame of the wrong size or a model failure.
    fn speech_prob(&mut self, frame: &[f32]) -> Result<f32, AudioError>;
    /// Forgets all recurrent state (start of a new stream).
    fn reset(&mut self);
    /// "silero" or "energy", for logs and benchmarks.
    fn name(&self) -> &'static str;
}

/// VAD settings (the `[vad]` table of the daemon's config).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct VadConfig {
    /// Silero VAD ONNX model; when missing the energy detector is used instead.
    pub model: PathBuf,
    /// onnxruntime shared library (None: `ORT_DYLIB_PATH` or the setup default).
    pub onnxruntime_lib: Option<PathBuf>,
    /// Probability at or above which a frame is speech.
    pub threshold: f32,
    /// Probability below which a frame is silence (hysteresis; between the two keeps state).
    pub neg_threshold: f32,
    /// Speech must last this long (ms) before a speech-start event is emitted.
    pub min_speech_ms: u32,
    /// While a reply plays (echo-cancelled), the probability at or above which a frame
    /// starts an utterance (0 < it ≤ `threshold`): a user talking over the reply is heard
    /// through the canceller's double-talk suppression, which lowers Silero's probability.
    /// `firstword bench echo` measures it (README, "Open-ear audio").
    pub barge_in_threshold: f32,
    /// While a reply plays, speech must last this long (ms, ≤ `min_speech_ms`) to count.
    pub barge_in_min_speech_ms: u32,
    /// Silence after speech that ends the utterance (the endpointing hangover), in ms.
    pub hangover_ms: u32,
    /// Silence after speech that raises a `Pause` event (speculative work may start), in ms.
    pub pause_ms: u32,
    /// Energy detector: frame level (dBFS) at which the probability reaches 0.5.
    pub energy_threshold_db: f32,
    /// Audio kept before the VAD's speech start and handed to ASR with the utterance, in
    /// ms (0..=[`MAX_PRE_ROLL_MS`]). Silero needs a frame or two of speech before its
    /// probability crosses the threshold, so the detected start lies 30–60 ms after an
    /// abrupt onset; without pre-roll Whisper hears "ow do I" for "How do I".
    pub pre_roll_ms: u32,
    /// Longest utterance, in ms ([`MIN_UTTERANCE_CAP_MS`]..=[`MAX_UTTERANCE_MS`]): speech that
    /// goes on without a pause long enough to end it (a TV in the room) ends here, and what
    /// follows is a new utterance. Keeps each utterance's audio and Whisper run bounded
    /// (Whisper's window is 30 s).
    pub max_utterance_ms: u32,
}

/// Largest accepted `vad.pre_roll_ms`, in ms (the live listener keeps 2 s of history).
pub const MAX_PRE_ROLL_MS: u32 = 1_000;
/// Largest accepted `vad.max_utterance_ms`, in ms (the live listener keeps 60 s of audio).
pub const MAX_UTTERANCE_MS: u32 = 60_000;
/// Smallest accepted `vad.max_utterance_ms`, in ms.
pub const MIN_UTTERANCE_CAP_MS: u32 = 1_000;

impl Default for VadConfig {
    fn default() -> Self {
        Self {
            model: PathBuf::from("models/silero/silero_vad.onnx"),
            onnxruntime_lib: None,
            threshold: 0.5,
            neg_threshold: 0.35,
            min_speech_ms: 96,
            barge_in_threshold: 0.3,
            barge_in_min_speech_ms: 32,
            hangover_ms: 300,
            pause_ms: 32,
            energy_threshold_db: -38.0,
            pre_roll_ms: 200,
            max_utterance_ms: 30_000,
        }
    }
}

impl VadConfig {
    /// Checks value ranges; the message names the key.
    pub fn validate(&self) -> Result<(), AudioError> {
        if !(0.0..=1.0).contains(&self.threshold) {
            return Err(AudioError::invalid_config("vad.threshold", format!(" = {} (must be in 0..1)", self.threshold)));
        }
        if !(0.0..=self.threshold).contains(&self.neg_threshold) {
            return Err(AudioError::invalid_config("vad.neg_threshold", format!(" = {} (must be in 0..threshold)", self.neg_threshold)));
        }
        if !(self.barge_in_threshold > 0.0 && self.barge_in_threshold <= self.threshold) {
            return Err(AudioError::invalid_config(
                "vad.barge_in_threshold",
                format!(" = {} (must be in (0, threshold])", self.barge_in_threshold),
            ));
        }
        if self.barge_in_min_speech_ms > self.min_speech_ms {
            return Err(AudioError::invalid_config(
                "vad.barge_in_min_speech_ms",
                format!(" = {} (must not exceed min_speech_ms = {})", self.barge_in_min_speech_ms, self.min_speech_ms),
            ));
        }
        if self.hangover_ms < FRAME_MS as u32 || self.hangover_ms > 10_000 {
            return Err(AudioError::invalid_config("vad.hangover_ms", format!(" = {} (must be 32..10000)", self.hangover_ms)));
        }
        if self.pause_ms > self.hangover_ms {
            return Err(AudioError::invalid_config("vad.pause_ms", format!(" = {} (must not exceed hangover_ms)", self.pause_ms)));
        }
        if !self.energy_threshold_db.is_finite() {
            return Err(AudioError::invalid_config(
                "vad.energy_threshold_db",
                format!(" = {} (must be a finite dBFS level)", self.energy_threshold_db),
            ));
        }
        if !(MIN_UTTERANCE_CAP_MS..=MAX_UTTERANCE_MS).contains(&self.max_utterance_ms) {
            return Err(AudioError::invalid_config(
                "vad.max_utterance_ms",
                format!(" = {} (must be {MIN_UTTERANCE_CAP_MS}..={MAX_UTTERANCE_MS})", self.max_utterance_ms),
            ));
        }
        if self.pre_roll_ms > MAX_PRE_ROLL_MS {
            return Err(AudioError::invalid_config("vad.pre_roll_ms", format!(" = {} (must be 0..={MAX_PRE_ROLL_MS})", self.pre_roll_ms)));
        }
        Ok(())
    }

    /// Builds Silero if its model file exists, else the energy detector (logged).
    /// Errors only when the Silero model exists but cannot be loaded.
    pub fn detector(&self) -> Result<Box<dyn SpeechDetector>, AudioError> {
        if self.model.is_file() {
            Ok(Box::new(SileroDetector::load(&self.model, self.onnxruntime_lib.as_deref())?))
        } else {
            tracing::warn!(model = %self.model.display(), "Silero VAD model missing; using the energy VAD");
            Ok(Box::new(EnergyDetector::new(self.energy_threshold_db)))
        }
    }
}

/// The sample range handed to ASR for an utterance whose VAD speech start is
/// `start` and whose endpoint is `end` (16 kHz sample positions in a buffer of
/// `len` samples): `pre_roll` samples earlier than the start, clamped to the
/// buffer. Replay and the live listener both cut utterances with it.
pub fn utterance_span(start: u64, end: u64, pre_roll: u64, len: usize) -> std::ops::Range<usize> {
    let e = usize::try_from(end).unwrap_or(usize::MAX).min(len);
    let s = usize::try_from(start.saturating_sub(pre_roll)).unwrap_or(usize::MAX).min(e);
    s..e
}

/// A speech segment found in a buffer, in samples at 16 kHz: `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub start: u64,
    pub end: u64,
}

/// Detector + endpointer over a stream of samples of any chunk size.
pub struct Vad {
    detector: Box<dyn SpeechDetector>,
    endpointer: Endpointer,
    pending: Vec<f32>,
}

impl Vad {
    /// Creates a VAD from config (Silero, or energy as the fallback).
    pub fn new(cfg: &VadConfig) -> Result<Self, AudioError> {
        Ok(Self::with_detector(cfg.detector()?, cfg))
    }

    /// Creates a VAD around a given detector.
    pub fn with_detector(detector: Box<dyn SpeechDetector>, cfg: &VadConfig) -> Self {
        Self { detector, endpointer: Endpointer::new(cfg), pending: Vec::with_capacity(FRAME_SAMPLES * 2) }
    }

    /// `vad.pre_roll_ms` in 16 kHz samples.
    pub fn pre_roll_samples(cfg: &VadConfig) -> u64 {
        u64::from(cfg.pre_roll_ms) * crate::ASR_RATE_HZ as u64 / 1000
    }

    /// Name of the detector in use.
    pub fn detector_name(&self) -> &'static str {
        self.detector.name()
    }

    /// Feeds 16 kHz mono samples; returns the events of every completed frame, positions in
    /// samples since the stream start.
    pub fn push(&mut self, samples: &[f32]) -> Result<Vec<VadEvent>, AudioError> {
        let mut events = Vec::new();
        self.pending.extend_from_slice(samples);
        let mut off = 0;
        while self.pending.len() - off >= FRAME_SAMPLES {
            let p = self.detector.speech_prob(&self.pending[off..off + FRAME_SAMPLES])?;
            events.extend(self.endpointer.push_prob(p));
            off += FRAME_SAMPLES;
        }
        self.pending.drain(..off);
        Ok(events)
    }

    /// Semantic endpointing: the hangover of the current pause only, in ms; see
    /// [`Endpointer::set_pause_hangover`]. Returns the `SpeechEnd` when the silence so far
    /// already reaches it (the utterance ends now).
    pub fn set_pause_hangover_ms(&mut self, ms: u32) -> Option<VadEvent> {
        self.endpointer.set_pause_hangover(u64::from(ms) * crate::ASR_RATE_HZ as u64 / 1000)
    }

    /// Barge-in onset profile on while a reply plays (see [`Endpointer::set_barge_in`]).
    pub fn set_barge_in(&mut self, on: bool) {
        self.endpointer.set_barge_in(on);
    }

    /// Ends the stream: an open utterance ends at its last voiced frame.
    pub fn finish(&mut self) -> Vec<VadEvent> {
        self.endpointer.finish().into_iter().collect()
    }

    /// Resets detector and endpointer state for a new stream.
    pub fn reset(&mut self) {
        self.detector.reset();
        self.endpointer.reset();
        self.pending.clear();
    }

    /// Speech segments of a whole buffer (a convenience over [`Vad::push`]).
    pub fn segments(&mut self, samples: &[f32]) -> Result<Vec<Segment>, AudioError> {
        self.reset();
        let mut events = self.push(samples)?;
        events.extend(self.finish());
        let mut out = Vec::new();
        let mut start = None;
        for e in events {
            match e {
                VadEvent::SpeechStart { sample } => start = Some(sample),
                VadEvent::SpeechEnd { last_voiced_sample, .. } => {
                    if let Some(s) = start.take() {
                        out.push(Segment { start: s, end: last_voiced_sample });
                    }
                }
                VadEvent::Pause { .. } | VadEvent::Resume { .. } => {}
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utterance_span_adds_pre_roll_and_clamps() {
        assert_eq!(utterance_span(8_000, 40_000, 3_200, 100_000), 4_800..40_000);
        assert_eq!(utterance_span(1_000, 40_000, 3_200, 100_000), 0..40_000);
        assert_eq!(utterance_span(8_000, 400_000, 0, 100_000), 8_000..100_000);
        assert_eq!(utterance_span(200_000, 400_000, 0, 100_000), 100_000..100_000);
    }

    #[test]
    fn pre_roll_is_validated_and_converted_to_samples() {
        let mut c = VadConfig::default();
        assert!(c.validate().is_ok());
        c.pre_roll_ms = 250;
        assert_eq!(Vad::pre_roll_samples(&c), 4_000);
        c.pre_roll_ms = MAX_PRE_ROLL_MS + 1;
        let e = c.validate().unwrap_err();
        assert!(matches!(&e, AudioError::InvalidConfig { key, .. } if key == "vad.pre_roll_ms"), "{e}");
    }

    #[test]
    fn max_utterance_is_validated_by_name() {
        for bad in [0, MIN_UTTERANCE_CAP_MS - 1, MAX_UTTERANCE_MS + 1, u32::MAX] {
            let c = VadConfig { max_utterance_ms: bad, ..VadConfig::default() };
            let e = c.validate().unwrap_err();
            assert!(matches!(&e, AudioError::InvalidConfig { key, .. } if key == "vad.max_utterance_ms"), "{e}");
        }
        for ok in [MIN_UTTERANCE_CAP_MS, 30_000, MAX_UTTERANCE_MS] {
            assert!(VadConfig { max_utterance_ms: ok, ..VadConfig::default() }.validate().is_ok());
        }
    }

    #[test]
    fn barge_in_settings_are_validated_by_name() {
        for bad in [0.0, -0.1, 0.6, f32::NAN] {
            let c = VadConfig { barge_in_threshold: bad, ..VadConfig::default() };
            let e = c.validate().unwrap_err();
            assert!(matches!(&e, AudioError::InvalidConfig { key, .. } if key == "vad.barge_in_threshold"), "{e}");
        }
        let c = VadConfig { barge_in_min_speech_ms: 128, ..VadConfig::default() };
        let e = c.validate().unwrap_err();
        assert!(matches!(&e, AudioError::InvalidConfig { key, .. } if key == "vad.barge_in_min_speech_ms"), "{e}");
    }

    #[test]
    fn non_finite_energy_threshold_is_rejected_by_name() {
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let c = VadConfig { energy_threshold_db: bad, ..VadConfig::default() };
            let e = c.validate().unwrap_err();
            assert!(matches!(&e, AudioError::InvalidConfig { key, .. } if key == "vad.energy_threshold_db"), "{e}");
        }
    }
}
