//! Mono f32 audio and the silence trimming applied to synthesized phrases.

/// Mono audio, f32 samples in [-1, 1].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Pcm {
    /// Samples, one channel.
    pub samples: Vec<f32>,
    /// Sample rate in Hz (22,050 for the joe voice).
    pub rate_hz: u32,
}

impl Pcm {
    /// Duration in milliseconds (`samples.len() / rate_hz * 1000`); 0 for an
    /// empty buffer or a zero rate.
    pub fn duration_ms(&self) -> f64 {
        if self.rate_hz == 0 {
            return 0.0;
        }
        self.samples.len() as f64 * 1000.0 / self.rate_hz as f64
    }

    /// Appends `ms` milliseconds of digital silence.
    pub(crate) fn push_silence_ms(&mut self, ms: u32) {
        let n = ms_to_samples(ms as f32, self.rate_hz);
        self.samples.resize(self.samples.len() + n, 0.0);
    }
}

/// Amplitude below which a sample counts as silence for trimming: 0.01 of
/// full scale (−40 dBFS). Piper voices peak around 0.3–0.9; breath noise at
/// the start of a phrase sits well under 0.01.
pub const TRIM_THRESHOLD: f32 = 0.01;

/// Milliseconds of audio kept before the first and after the last sample
/// above [`TRIM_THRESHOLD`], so soft onsets and decays are not clipped.
pub const TRIM_KEEP_MS: f32 = 15.0;

pub(crate) fn ms_to_samples(ms: f32, rate_hz: u32) -> usize {
    (ms * rate_hz as f32 / 1000.0).round() as usize
}

/// The part of `samples` between the first and last sample louder than
/// [`TRIM_THRESHOLD`], widened by [`TRIM_KEEP_MS`] on each side. All-silent
/// input gives an empty slice.
pub(crate) fn trim_silence(samples: &[f32], rate_hz: u32) -> &[f32] {
    let loud = |s: &f32| s.abs() > TRIM_THRESHOLD;
    let (Some(first), Some(last)) = (samples.iter().position(loud), samples.iter().rposition(loud)) else {
        return &[];
    };
    let keep = ms_to_samples(TRIM_KEEP_MS, rate_hz);
    let start = first.saturating_sub(keep);
    let end = (last + 1 + keep).min(samples.len());
    &samples[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration() {
        let p = Pcm { samples: vec![0.0; 22_050], rate_hz: 22_050 };
        assert_eq!(p.duration_ms(), 1000.0);
        assert_eq!(Pcm::default().duration_ms(), 0.0);
    }

    #[test]
    fn trim_keeps_margin() {
        let rate = 1000; // 1 sample per ms keeps the arithmetic readable
        let mut s = vec![0.0; 100];
        s.extend([0.5, -0.5, 0.5]);
        s.extend(vec![0.001; 100]);
        let t = trim_silence(&s, rate);
        assert_eq!(t.len(), 15 + 3 + 15);
        assert_eq!(t[15], 0.5);
        assert!(trim_silence(&[0.0; 50], rate).is_empty());
        assert!(trim_silence(&[], rate).is_empty());
    }

    #[test]
    fn silence() {
        let mut p = Pcm { samples: vec![], rate_hz: 22_050 };
        p.push_silence_ms(100);
        assert_eq!(p.samples.len(), 2205);
    }
}
