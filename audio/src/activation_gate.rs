//! The listener's activation gate (`[activation] mode` other than `always`): the pure
//! [`Activation`] machine with what feeds it, the wake-word spotter (its detections optionally
//! confirmed by a second opinion, e.g. Whisper, see `asr::wake_check`) and the push-to-talk
//! key. The listener hands it each chunk of 16 kHz audio; what to forward stays the listener's.

use crate::activation::{Activation, ActivationConfig, Mode, Timings};
use crate::history::SampleHistory;
use crate::ptt::{EvdevKey, KeySource, SimulatedKey};
use crate::wakeword::{WakeSettings, WakeSpotter};
use crate::{sample_ms as ms, AudioError};

/// Confirms a wake-word detection from the listener's audio and the detection's end sample:
/// Ok(false) rejects it; an error lets it count (fail open: a broken check must not lock the
/// user out).
pub type Confirm = Box<dyn FnMut(&SampleHistory, u64) -> Result<bool, String> + Send>;

/// Extra 16 kHz samples the spotter is given to decide after an utterance ends (60 ms).
const DECIDE_MARGIN_SAMPLES: u64 = 960;

/// The activation state and its inputs.
pub struct ActivationGate {
    pub activation: Activation,
    pub spotter: Option<WakeSpotter>,
    pub key: Option<Box<dyn KeySource>>,
    /// Second opinion on the spotter's detections (`[activation] wake_confirm`).
    pub confirm: Option<Confirm>,
}

/// What one chunk of audio did to activation.
#[derive(Debug, Default, PartialEq)]
pub struct GateUpdate {
    /// Listening started, and how ("wake word", "push-to-talk"): the earcon's cue.
    pub started: Vec<&'static str>,
    /// Where the first accepted wake phrase of the chunk ends, plus `wake_margin_ms` (16 kHz
    /// samples): an utterance that holds it is answered from there.
    pub wake_end: Option<u64>,
}

impl ActivationGate {
    /// The gate for `cfg.mode` (None for `always`): the spotter with its reference file, or
    /// the push-to-talk key (`ptt_simulated`, which needs a simulated input, else
    /// `ptt_device`). `conversation_idle_s` keeps follow-ups open after a reply.
    ///
    /// # Errors
    /// An unreadable or invalid reference, a key device that cannot be opened, or a key
    /// setting that does not fit (named by its TOML key).
    pub fn from_config(cfg: &ActivationConfig, conversation_idle_s: f64, simulated_input: bool) -> Result<Option<Self>, AudioError> {
        let activation = Activation::new(cfg.mode, Timings::new(cfg, conversation_idle_s));
        let (spotter, key): (_, Option<Box<dyn KeySource>>) = match cfg.mode {
            Mode::Always => return Ok(None),
            Mode::WakeWord => {
                let settings = WakeSettings { threshold: cfg.wake_threshold, min_scores: cfg.wake_min_scores, ..Default::default() };
                let spotter = WakeSpotter::from_file(&cfg.wake_word, &settings)
                    .map_err(|e| AudioError::invalid_config("activation.wake_word", format!(": {e}")))?;
                tracing::info!("activation: wake word {}", cfg.wake_word.display());
                (Some(spotter), None)
            }
            Mode::PushToTalk if !cfg.ptt_simulated.is_empty() => {
                if !simulated_input {
                    let why = " needs a simulated input (--input-wav); use ptt_device for a real key";
                    return Err(AudioError::invalid_config("activation.ptt_simulated", why.into()));
                }
                (None, Some(Box::new(SimulatedKey::new(cfg.ptt_simulated.clone()))))
            }
            Mode::PushToTalk => {
                let dev =
                    cfg.ptt_device.as_deref().ok_or_else(|| AudioError::invalid_config("activation.ptt_device", " is not set".into()))?;
                (None, Some(Box::new(EvdevKey::open(dev, &cfg.ptt_key)?)))
            }
        };
        if key.is_some() {
            tracing::info!("activation: push-to-talk");
        }
        Ok(Some(Self { activation, spotter, key, confirm: None }))
    }

    /// How far past an utterance's endpoint the spotter must have heard before the utterance
    /// is decided (16 kHz samples; 0 without a spotter).
    pub fn decide_lag_samples(&self) -> u64 {
        self.spotter.as_ref().map_or(0, |s| s.lag_samples() + DECIDE_MARGIN_SAMPLES)
    }

    /// Feeds the audio just heard (`s16`, 16 kHz, already in `hist`, whose end is now): key
    /// changes, wake-word detections (confirmed when a [`Confirm`] is set), the reply playing
    /// (`replying`) and the follow-up window's time-out.
    pub fn hear(&mut self, s16: &[f32], hist: &SampleHistory, replying: bool) -> GateUpdate {
        let now_ms = ms(hist.end());
        let mut out = GateUpdate::default();
        if let Some(pressed) = self.key.as_mut().and_then(|k| k.poll(now_ms)) {
            tracing::debug!(pressed, at_ms = now_ms as u64, "push-to-talk key");
            if self.activation.key(pressed, now_ms) {
                out.started.push("push-to-talk");
            }
        }
        for d in self.spotter.as_mut().map(|s| s.push(s16)).unwrap_or_default() {
            match self.confirm.as_mut().map(|c| c(hist, d.end_sample)) {
                Some(Ok(false)) => {
                    tracing::info!(end_ms = ms(d.end_sample) as u64, score = d.score, "wake word not confirmed by ASR");
                    continue;
                }
                Some(Err(e)) => tracing::warn!("wake-word check: {e}; the detection counts"),
                _ => {}
            }
            tracing::info!(end_ms = ms(d.end_sample) as u64, score = d.score, "wake word");
            if self.activation.wake(ms(d.end_sample)) {
                out.started.push("wake word");
            }
            out.wake_end.get_or_insert(d.end_sample + crate::ms_sample(self.activation.margin_ms()));
        }
        if replying {
            self.activation.replying(now_ms);
        }
        if self.activation.tick(now_ms) {
            tracing::info!("activation: follow-up window closed, waiting for the wake word");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ptt(presses: Vec<[f64; 2]>) -> ActivationConfig {
        ActivationConfig { mode: Mode::PushToTalk, ptt_simulated: presses, ..Default::default() }
    }

    #[test]
    fn always_has_no_gate_and_key_settings_are_named() {
        assert!(ActivationGate::from_config(&ActivationConfig::default(), 120.0, false).unwrap().is_none());
        let e = ActivationGate::from_config(&ptt(vec![[1000.0, 2000.0]]), 120.0, false).err().unwrap();
        assert!(e.to_string().contains("activation.ptt_simulated"), "{e}");
        let e = ActivationGate::from_config(&ptt(Vec::new()), 120.0, false).err().unwrap();
        assert!(e.to_string().contains("activation.ptt_device"), "{e}");
    }

    #[test]
    fn a_simulated_key_press_starts_listening_once() {
        let mut g = ActivationGate::from_config(&ptt(vec![[100.0, 900.0]]), 120.0, true).unwrap().unwrap();
        assert_eq!(g.decide_lag_samples(), 0);
        let mut hist = SampleHistory::default();
        let chunk = vec![0.0f32; 160]; // 10 ms
        let mut started = Vec::new();
        for _ in 0..100 {
            hist.extend(&chunk);
            started.extend(g.hear(&chunk, &hist, false).started);
        }
        assert_eq!(started, vec!["push-to-talk"]);
    }
}
