//! Channel downmix and sample-rate conversion (rubato's FFT resampler: band-limited, exact
//! rational ratio, which is what 8/22.05/44.1/48 kHz → 16 kHz needs).

use rubato::{FftFixedIn, Resampler};

use crate::AudioError;

/// Averages interleaved frames of `channels` samples into mono. A trailing partial frame is
/// dropped. `channels` of 0 or 1 returns the input unchanged.
pub fn downmix(interleaved: &[f32], channels: usize) -> Vec<f32> {
    if channels <= 1 {
        return interleaved.to_vec();
    }
    let inv = 1.0 / channels as f32;
    interleaved.chunks_exact(channels).map(|f| f.iter().sum::<f32>() * inv).collect()
}

/// Resamples mono `samples` from `from_hz` to `to_hz`. The output has
/// `round(len * to_hz / from_hz)` samples and is aligned with the input (the resampler's
/// delay is removed). Equal rates return a copy.
///
/// Errors: [`AudioError::Resample`] for a zero rate or a resampler failure.
pub fn resample(samples: &[f32], from_hz: u32, to_hz: u32) -> Result<Vec<f32>, AudioError> {
    let err = |message: String| AudioError::Resample { from_hz, to_hz, message };
    if from_hz == 0 || to_hz == 0 {
        return Err(err("sample rate of 0 Hz".into()));
    }
    if from_hz == to_hz || samples.is_empty() {
        return Ok(samples.to_vec());
    }
    const CHUNK: usize = 1024;
    let mut rs = FftFixedIn::<f32>::new(from_hz as usize, to_hz as usize, CHUNK, 2, 1).map_err(|e| err(e.to_string()))?;
    let delay = rs.output_delay();
    let want = ((samples.len() as u64 * to_hz as u64 + from_hz as u64 / 2) / from_hz as u64) as usize;
    let mut out = Vec::with_capacity(want + delay + CHUNK);
    let mut pos = 0;
    while pos + rs.input_frames_next() <= samples.len() {
        let n = rs.input_frames_next();
        let res = rs.process(&[&samples[pos..pos + n]], None).map_err(|e| err(e.to_string()))?;
        out.extend_from_slice(&res[0]);
        pos += n;
    }
    // Flush: the tail, then zeros until the delayed output is complete.
    // An empty tail (the input was a whole number of chunks) must go in as `None`: rubato
    // rejects an empty input buffer ("Insufficient buffer size 0").
    let tail = &samples[pos..];
    if !tail.is_empty() {
        let res = rs.process_partial(Some(&[tail]), None).map_err(|e| err(e.to_string()))?;
        out.extend_from_slice(&res[0]);
    }
    while out.len() < want + delay {
        let res = rs.process_partial::<&[f32]>(None, None).map_err(|e| err(e.to_string()))?;
        if res[0].is_empty() {
            break;
        }
        out.extend_from_slice(&res[0]);
    }
    let end = (delay + want).min(out.len());
    Ok(out[delay.min(end)..end].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(freq: f32, rate: u32, secs: f32) -> Vec<f32> {
        (0..(rate as f32 * secs) as usize).map(|i| (2.0 * std::f32::consts::PI * freq * i as f32 / rate as f32).sin() * 0.5).collect()
    }

    /// Zero crossings per second estimate the frequency of a pure tone.
    fn est_freq(x: &[f32], rate: u32) -> f32 {
        let crossings = x.windows(2).filter(|w| w[0] <= 0.0 && w[1] > 0.0).count();
        crossings as f32 * rate as f32 / x.len() as f32
    }

    #[test]
    fn whole_chunks_of_input_resample_too() {
        // A phrase of exactly 2 × 1024 samples once made the flush fail (a live turn was
        // abandoned: "Insufficient buffer size 0 for input channel 0, expected 1024").
        for n in [1024, 2048, 4096] {
            let x = sine(440.0, 22_050, n as f32 / 22_050.0);
            assert_eq!(x.len(), n);
            let y = resample(&x, 22_050, 48_000).unwrap();
            // n · 48000 / 22050 samples, rounded to the nearest.
            assert_eq!(y.len(), ((n as u64 * 48_000 + 11_025) / 22_050) as usize, "{n}");
            assert!((est_freq(&y, 48_000) - 440.0).abs() < 60.0, "{n}: still a 440 Hz tone");
        }
    }

    #[test]
    fn downmix_averages_frames() {
        assert_eq!(downmix(&[1.0, 0.0, 0.5, 0.5, 0.2], 2), vec![0.5, 0.5]);
        assert_eq!(downmix(&[0.3, 0.6, 0.9], 3), vec![0.6]);
    }

    #[test]
    fn resample_keeps_pitch_length_and_alignment() {
        for &(from, to) in &[(8_000u32, 16_000u32), (44_100, 16_000), (48_000, 16_000), (22_050, 16_000)] {
            let x = sine(440.0, from, 1.0);
            let y = resample(&x, from, to).unwrap();
            assert_eq!(y.len(), to as usize, "{from}->{to} length");
            let f = est_freq(&y, to);
            assert!((f - 440.0).abs() < 5.0, "{from}->{to}: tone at {f} Hz");
            // Aligned: the first positive-going zero crossing stays near t = 0 (sin starts at 0).
            let mid = y.len() / 2;
            let expect = (2.0 * std::f32::consts::PI * 440.0 * mid as f32 / to as f32).sin() * 0.5;
            assert!((y[mid] - expect).abs() < 0.05, "{from}->{to}: misaligned ({} vs {expect})", y[mid]);
        }
    }

    #[test]
    fn resample_removes_content_above_new_nyquist() {
        // A 7 kHz tone at 48 kHz must not alias into the 16 kHz output (Nyquist 8 kHz keeps it);
        // an 11 kHz tone must vanish.
        let y = resample(&sine(11_000.0, 48_000, 0.5), 48_000, 16_000).unwrap();
        let rms = (y[1000..y.len() - 1000].iter().map(|v| v * v).sum::<f32>() / (y.len() - 2000) as f32).sqrt();
        assert!(rms < 0.02, "11 kHz leaked through: rms {rms}");
    }

    #[test]
    fn zero_rate_is_an_error() {
        assert!(matches!(resample(&[0.0; 10], 0, 16_000), Err(AudioError::Resample { .. })));
    }
}
