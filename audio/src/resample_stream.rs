//! Streaming sample-rate conversion for live audio (the microphone's rate → 16 kHz): blocks
//! of any size in, output as soon as the resampler has it, aligned with the input (the
//! resampler's delay is dropped from the start, so output sample `n` is input time `n / to_hz`).

use rubato::{FftFixedIn, Resampler};

use crate::AudioError;

/// Input frames per resampler call.
const CHUNK: usize = 512;

/// A stateful mono resampler from `from_hz` to `to_hz` (a pass-through when they are equal).
pub struct StreamResampler {
    inner: Option<FftFixedIn<f32>>,
    pending: Vec<f32>,
    /// Output samples still to drop (the resampler's delay).
    skip: usize,
    from_hz: u32,
    to_hz: u32,
}

impl StreamResampler {
    /// Creates a resampler. Errors: [`AudioError::Resample`] for a zero rate.
    pub fn new(from_hz: u32, to_hz: u32) -> Result<Self, AudioError> {
        let err = |message: String| AudioError::Resample { from_hz, to_hz, message };
        if from_hz == 0 || to_hz == 0 {
            return Err(err("sample rate of 0 Hz".into()));
        }
        let (inner, skip) = if from_hz == to_hz {
            (None, 0)
        } else {
            let rs = FftFixedIn::<f32>::new(from_hz as usize, to_hz as usize, CHUNK, 2, 1).map_err(|e| err(e.to_string()))?;
            let d = rs.output_delay();
            (Some(rs), d)
        };
        Ok(Self { inner, pending: Vec::with_capacity(CHUNK * 2), skip, from_hz, to_hz })
    }

    /// Input rate in Hz.
    pub fn from_hz(&self) -> u32 {
        self.from_hz
    }

    /// Output rate in Hz.
    pub fn to_hz(&self) -> u32 {
        self.to_hz
    }

    /// Feeds `input` and appends every output sample now available to `out`.
    pub fn process(&mut self, input: &[f32], out: &mut Vec<f32>) -> Result<(), AudioError> {
        let Some(rs) = self.inner.as_mut() else {
            out.extend_from_slice(input);
            return Ok(());
        };
        let (from_hz, to_hz) = (self.from_hz, self.to_hz);
        let err = |e: rubato::ResampleError| AudioError::Resample { from_hz, to_hz, message: e.to_string() };
        self.pending.extend_from_slice(input);
        let mut used = 0;
        while self.pending.len() - used >= rs.input_frames_next() {
            let n = rs.input_frames_next();
            let res = rs.process(&[&self.pending[used..used + n]], None).map_err(err)?;
            used += n;
            let chunk = &res[0];
            let drop = self.skip.min(chunk.len());
            self.skip -= drop;
            out.extend_from_slice(&chunk[drop..]);
        }
        self.pending.drain(..used);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streaming_in_odd_blocks_matches_offline_resampling() {
        let x: Vec<f32> = (0..48_000).map(|i| (2.0 * std::f32::consts::PI * 300.0 * i as f32 / 48_000.0).sin() * 0.5).collect();
        let offline = crate::resample::resample(&x, 48_000, 16_000).unwrap();
        let mut rs = StreamResampler::new(48_000, 16_000).unwrap();
        let mut out = Vec::new();
        for block in x.chunks(441) {
            rs.process(block, &mut out).unwrap();
        }
        // Everything but the last partial chunk has come out.
        assert!(out.len() > 15_500 && out.len() <= 16_000, "{} samples", out.len());
        let worst = out.iter().zip(&offline).skip(200).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(worst < 0.02, "streamed output differs from offline by {worst}");
    }

    #[test]
    fn equal_rates_pass_through() {
        let mut rs = StreamResampler::new(16_000, 16_000).unwrap();
        let mut out = Vec::new();
        rs.process(&[0.1, 0.2], &mut out).unwrap();
        assert_eq!(out, vec![0.1, 0.2]);
        assert!(StreamResampler::new(0, 16_000).is_err());
    }
}
