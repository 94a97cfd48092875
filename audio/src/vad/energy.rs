//! Energy VAD: the fallback when the Silero model is missing. Frame RMS in dBFS mapped to a
//! pseudo-probability around a threshold. Crude (noise triggers it), but needs no model.

use super::{SpeechDetector, FRAME_SAMPLES};
use crate::AudioError;

/// Level-threshold detector; probability 0.5 at `threshold_db`, ±6 dB spans 0..1.
#[derive(Debug, Clone)]
pub struct EnergyDetector {
    threshold_db: f32,
}

impl EnergyDetector {
    /// `threshold_db`: frame RMS level in dBFS (e.g. -38) that counts as speech.
    pub fn new(threshold_db: f32) -> Self {
        Self { threshold_db }
    }
}

/// RMS level of `frame` in dBFS (full scale sine ≈ -3 dB); -120 for digital silence.
pub fn rms_db(frame: &[f32]) -> f32 {
    if frame.is_empty() {
        return -120.0;
    }
    let ms = frame.iter().map(|s| s * s).sum::<f32>() / frame.len() as f32;
    if ms <= 1e-12 {
        -120.0
    } else {
        10.0 * ms.log10()
    }
}

impl SpeechDetector for EnergyDetector {
    fn speech_prob(&mut self, frame: &[f32]) -> Result<f32, AudioError> {
        if frame.len() != FRAME_SAMPLES {
            return Err(AudioError::FrameSize { expected: FRAME_SAMPLES, got: frame.len() });
        }
        Ok(((rms_db(frame) - self.threshold_db) / 12.0 + 0.5).clamp(0.0, 1.0))
    }
    fn reset(&mut self) {}
    fn name(&self) -> &'static str {
        "energy"
    }
}
