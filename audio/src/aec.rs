//! Acoustic echo cancellation on 16 kHz mono audio: WebRTC's AEC3 (the pure-Rust port in the
//! `aec3` crate) behind a frame-oriented API, and the pairing of microphone samples with the
//! speaker's reference that feeds it.
//!
//! Why `aec3` and not `webrtc-audio-processing` 2.1 (`bundled`): the bundled C++ build needs
//! meson, ninja and abseil ≥ 20240722; Debian 12 ships abseil 20220623, so meson's wrap
//! downloads abseil from GitHub at build time, which these machines cannot reach. `aec3` is
//! the same algorithm (linear filter, delay estimator, residual echo suppressor) in Rust,
//! compiles with the workspace, and runs on the listener thread at a fraction of real time.
//!
//! Only AEC3 runs: noise suppression and automatic gain control would change the levels the
//! VAD's thresholds and Whisper were tuned on, and the high-pass filter changed clean speech
//! enough to flip Whisper's transcripts (correlation with the input 0.92; without it the
//! linear output equals the input while nothing plays, and the ERLE is unchanged:
//! `firstword bench echo`, 2026-12-03).

use aec3::api::EchoCanceller3Config;
use aec3::nodes::audio::AudioFormat;
use aec3::pipelines::linear::{self, LinearPipeline};

/// The canceller's rate, in Hz (the VAD's and Whisper's).
pub const AEC_RATE_HZ: u32 = crate::ASR_RATE_HZ;
/// Samples per canceller frame (10 ms at 16 kHz).
pub const AEC_FRAME: usize = (AEC_RATE_HZ / 100) as usize;

/// Delay of [`EchoCanceller::linear_into`]'s output behind the microphone, in samples
/// (AEC3's 64-sample block framing): sample `n` of the linear output is microphone sample
/// `n - LINEAR_LATENCY_SAMPLES` minus its echo.
pub const LINEAR_LATENCY_SAMPLES: usize = 64;
/// Delay of [`EchoCanceller::process`]'s output behind the microphone, in samples (block
/// framing plus the suppressor's frequency-domain analysis).
pub const OUTPUT_LATENCY_SAMPLES: usize = 128;

/// Seconds of audible reference (frames above [`AUDIBLE_REFERENCE_DBFS`]) after which a
/// fresh canceller counts as converged: its first reply's ERLE is 20–25 dB lower than the
/// rest (`firstword bench echo`), so the VAD's sensitive barge-in onset waits for this.
pub const CONVERGED_AFTER_S: f64 = 2.0;
/// A reference frame quieter than this (dBFS RMS) teaches the canceller nothing.
pub const AUDIBLE_REFERENCE_DBFS: f32 = -50.0;

/// Counts how much audible reference a canceller has seen (pure: frames in, a verdict out).
#[derive(Debug, Clone, Default)]
pub struct Convergence {
    audible_samples: u64,
}

impl Convergence {
    /// A reference frame (16 kHz) went through the canceller.
    pub fn push_reference(&mut self, frame: &[f32]) {
        let energy = frame.iter().map(|v| v * v).sum::<f32>() / frame.len().max(1) as f32;
        if 10.0 * energy.max(1e-12).log10() > AUDIBLE_REFERENCE_DBFS {
            self.audible_samples += frame.len() as u64;
        }
    }

    /// True once [`CONVERGED_AFTER_S`] of audible reference went through.
    pub fn converged(&self) -> bool {
        self.audible_samples as f64 >= CONVERGED_AFTER_S * AEC_RATE_HZ as f64
    }
}

/// Why the canceller failed (a frame the wrong size, or an internal error of `aec3`).
#[derive(Debug, thiserror::Error)]
#[error("echo canceller: {0}")]
pub struct AecError(String);

/// AEC3 on 10 ms frames of 16 kHz mono: [`EchoCanceller::process`] takes the microphone
/// frame and the reference frame played at the same instant.
pub struct EchoCanceller {
    pipeline: LinearPipeline,
    /// The last frame's linear output (valid when `has_linear`); preallocated.
    linear: Vec<f32>,
    has_linear: bool,
}

impl EchoCanceller {
    /// A canceller; `delay_hint_ms` is the expected speaker-to-microphone delay when known
    /// (AEC3 estimates it anyway; the hint only speeds up convergence).
    /// Errors: [`AecError`] when `aec3` refuses the configuration.
    pub fn new(delay_hint_ms: Option<u32>) -> Result<Self, AecError> {
        let format = AudioFormat::ten_ms(AEC_RATE_HZ, 1);
        // Transparent mode (no echo path, e.g. earbuds: the suppressor stops treating the
        // user's voice as echo) by WebRTC's current HMM classifier, as upstream does by
        // default: about 2 s of reply with no filter convergence switch it on, where the
        // legacy rule (the `aec3` crate's default) waits 6 s, and until then a user
        // talking over the reply reaches the VAD 20-40 dB down (no barge-in).
        let mut config = EchoCanceller3Config::default();
        config.transparent_mode.use_hmm = true;
        let mut b = linear::builder(format, format)
            .aec3_config(config)
            .enable_high_pass_filter(false)
            .enable_noise_suppression(false)
            .enable_gain_controller2(false)
            .enable_post_filter(false)
            .export_linear_output(true);
        if let Some(ms) = delay_hint_ms {
            b = b.initial_delay_ms(ms.min(500) as i32);
        }
        let pipeline = b.build().map_err(|e| AecError(format!("{e:?}")))?;
        Ok(Self { pipeline, linear: vec![0.0; AEC_FRAME], has_linear: false })
    }

    /// Cancels the echo of `reference` (what the speaker played, [`AEC_FRAME`] samples) in
    /// `mic` ([`AEC_FRAME`] samples, same instant), writing [`AEC_FRAME`] samples to `out`.
    /// Errors: [`AecError`] for frames of the wrong size or an internal failure.
    pub fn process(&mut self, mic: &[f32], reference: &[f32], out: &mut [f32]) -> Result<(), AecError> {
        if mic.len() != AEC_FRAME || reference.len() != AEC_FRAME || out.len() != AEC_FRAME {
            return Err(AecError(format!(
                "frames must be {AEC_FRAME} samples (mic {}, reference {}, out {})",
                mic.len(),
                reference.len(),
                out.len()
            )));
        }
        self.pipeline.handle_render_frame(reference).map_err(|e| AecError(format!("{e:?}")))?;
        self.pipeline.process_capture_frame(mic, out).map_err(|e| AecError(format!("{e:?}")))?;
        // Drained every frame so that the export's queue never fills.
        self.has_linear = false;
        if let Some(p) = self.pipeline.try_pull_linear_output().map_err(|e| AecError(format!("{e:?}")))? {
            let lin = p.payload().samples();
            if lin.len() == AEC_FRAME {
                self.linear.copy_from_slice(lin);
                self.has_linear = true;
            }
        }
        Ok(())
    }

    /// Copies the linear filter's output of the last [`EchoCanceller::process`] call
    /// ([`AEC_FRAME`] samples: the microphone minus the estimated echo, before the residual
    /// echo suppressor) into `out`; false (and `out` untouched) when AEC3 produced none.
    /// The suppressor also attenuates a user talking over the reply (double-talk), so
    /// speech recognition hears this output better (`firstword bench echo`).
    pub fn linear_into(&self, out: &mut [f32]) -> bool {
        let ok = self.has_linear && out.len() == AEC_FRAME;
        if ok {
            out.copy_from_slice(&self.linear);
        }
        ok
    }
}

/// Echo return loss enhancement in dB: how much quieter `after` is than `before` (same
/// span, echo only), `10·log10(Σbefore² / Σafter²)`; None when `before` is silent.
pub fn erle_db(before: &[f32], after: &[f32]) -> Option<f64> {
    let e = |x: &[f32]| x.iter().map(|v| (*v as f64) * (*v as f64)).sum::<f64>();
    let (b, a) = (e(before), e(after));
    (b > 0.0).then(|| 10.0 * (b / a.max(1e-20)).log10())
}

/// Pairs microphone samples with reference samples by position, both at 16 kHz: sample `n`
/// of the microphone stream is heard while sample `n` of the reference stream is played (up
/// to the fixed device latency that AEC3 estimates). Bounded: when the reference does not
/// come (the speaker is gone or not started), the microphone is not held back for more than
/// `max_wait` samples; silence stands in for the missing reference.
pub struct Pairing {
    mic: Vec<f32>,
    reference: Vec<f32>,
    max_wait: usize,
    /// Reference samples replaced by silence (the speaker fell behind), for the log.
    pub filled: u64,
}

impl Pairing {
    /// A pairing that holds back at most `max_wait` microphone samples.
    pub fn new(max_wait: usize) -> Self {
        Self {
            mic: Vec::with_capacity(max_wait + AEC_FRAME),
            reference: Vec::with_capacity(max_wait + AEC_FRAME),
            max_wait: max_wait.max(AEC_FRAME),
            filled: 0,
        }
    }

    /// Appends microphone samples.
    pub fn push_mic(&mut self, s: &[f32]) {
        self.mic.extend_from_slice(s);
    }

    /// Appends reference samples.
    pub fn push_reference(&mut self, s: &[f32]) {
        self.reference.extend_from_slice(s);
    }

    /// Microphone samples held that have no reference yet.
    pub fn unpaired_mic(&self) -> usize {
        self.mic.len().saturating_sub(self.reference.len())
    }

    /// Reference samples the pairing can still take before it holds more than the
    /// microphone has asked for (read at most this many from the reference ring).
    pub fn reference_room(&self) -> usize {
        (self.mic.len() + self.max_wait).saturating_sub(self.reference.len())
    }

    /// The speaker is gone: no reference will come for the microphone samples held so far,
    /// so silence stands in for it at once (not after `max_wait`). Without this the
    /// reference would resume `max_wait` too early against the microphone once the speaker
    /// is back, and the canceller could not find the echo (it would come before its
    /// reference).
    pub fn fill_reference(&mut self) {
        let fill = self.mic.len().saturating_sub(self.reference.len());
        self.filled += fill as u64;
        self.reference.resize(self.reference.len() + fill, 0.0);
    }

    /// Puts up to `n` samples of silence into the reference, no more than the microphone
    /// samples still waiting for theirs; returns how many. For microphone samples heard
    /// while the speaker was gone but read only after it came back (a listener busy at
    /// that moment): the reference that resumes belongs to later ones.
    pub fn fill_reference_up_to(&mut self, n: usize) -> usize {
        let fill = n.min(self.mic.len().saturating_sub(self.reference.len()));
        self.filled += fill as u64;
        self.reference.resize(self.reference.len() + fill, 0.0);
        fill
    }

    /// Moves the microphone samples still waiting for their reference to `out` (the end
    /// of the input), unprocessed, and forgets the reference.
    pub fn flush_mic(&mut self, out: &mut Vec<f32>) {
        out.append(&mut self.mic);
        self.reference.clear();
    }

    /// Calls `f(mic, reference)` for each complete [`AEC_FRAME`] pair, oldest first, then
    /// drops them. When the microphone is more than `max_wait` ahead of the reference the
    /// missing reference is taken as silence.
    pub fn drain_frames<E>(&mut self, mut f: impl FnMut(&[f32], &[f32]) -> Result<(), E>) -> Result<(), E> {
        if self.mic.len() > self.reference.len() + self.max_wait {
            let fill = self.mic.len() - self.max_wait - self.reference.len();
            self.filled += fill as u64;
            self.reference.resize(self.reference.len() + fill, 0.0);
        }
        let frames = self.mic.len().min(self.reference.len()) / AEC_FRAME;
        for k in 0..frames {
            let r = k * AEC_FRAME..(k + 1) * AEC_FRAME;
            f(&self.mic[r.clone()], &self.reference[r])?;
        }
        self.mic.drain(..frames * AEC_FRAME);
        self.reference.drain(..frames * AEC_FRAME);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Speech-like noise: white noise shaped by a slow random envelope (deterministic).
    fn babble(n: usize, seed: u64) -> Vec<f32> {
        let mut x = seed.max(1);
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
        };
        let mut lp = 0.0f32;
        (0..n)
            .map(|i| {
                let env = 0.5 + 0.5 * ((i as f32 / 1_600.0).sin() * (i as f32 / 3_700.0).cos()).abs();
                lp = 0.7 * lp + 0.3 * next();
                0.3 * env * lp
            })
            .collect()
    }

    #[test]
    fn the_canceller_removes_a_delayed_echo_by_more_than_20_db() {
        let far = babble(16_000 * 6, 7);
        let delay = 640; // 40 ms
        let mic: Vec<f32> = (0..far.len()).map(|i| if i >= delay { 0.5 * far[i - delay] } else { 0.0 }).collect();
        let mut aec = EchoCanceller::new(None).unwrap();
        let mut out = vec![0.0f32; far.len()];
        for k in 0..far.len() / AEC_FRAME {
            let r = k * AEC_FRAME..(k + 1) * AEC_FRAME;
            aec.process(&mic[r.clone()], &far[r.clone()], &mut out[r]).unwrap();
        }
        // After 2 s of convergence.
        let erle = erle_db(&mic[32_000..], &out[32_000..]).unwrap();
        assert!(erle > 20.0, "ERLE {erle:.1} dB");
    }

    #[test]
    fn near_end_speech_passes_when_nothing_plays() {
        let near = babble(16_000 * 2, 3);
        let mut aec = EchoCanceller::new(None).unwrap();
        let mut out = vec![0.0f32; near.len()];
        let silent = [0.0f32; AEC_FRAME];
        for k in 0..near.len() / AEC_FRAME {
            let r = k * AEC_FRAME..(k + 1) * AEC_FRAME;
            aec.process(&near[r.clone()], &silent, &mut out[r]).unwrap();
        }
        let loss = erle_db(&near[8_000..], &out[8_000..]).unwrap();
        assert!(loss.abs() < 3.0, "near-end speech changed by {loss:.1} dB");
    }

    #[test]
    fn with_nothing_playing_both_outputs_are_the_microphone_delayed_by_their_latency() {
        let near = babble(16_000, 5);
        let mut aec = EchoCanceller::new(None).unwrap();
        let (mut out, mut lin) = (vec![0.0f32; near.len()], vec![0.0f32; near.len()]);
        let silent = [0.0f32; AEC_FRAME];
        for k in 0..near.len() / AEC_FRAME {
            let r = k * AEC_FRAME..(k + 1) * AEC_FRAME;
            aec.process(&near[r.clone()], &silent, &mut out[r.clone()]).unwrap();
            assert!(aec.linear_into(&mut lin[r]), "a linear output every frame");
        }
        let worst = |x: &[f32], lag: usize| x[lag..].iter().zip(&near).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(worst(&lin, LINEAR_LATENCY_SAMPLES) < 1e-4, "linear: {}", worst(&lin, LINEAR_LATENCY_SAMPLES));
        // The suppressor passes speech with nothing playing, up to rounding of its gains.
        let corr = |x: &[f32], lag: usize| {
            let (a, b) = (&x[lag..], &near[..near.len() - lag]);
            let d: f32 = a.iter().zip(b).map(|(p, q)| p * q).sum();
            d / (a.iter().map(|p| p * p).sum::<f32>() * b.iter().map(|q| q * q).sum::<f32>()).sqrt()
        };
        assert!(corr(&out, OUTPUT_LATENCY_SAMPLES) > 0.99, "output: {}", corr(&out, OUTPUT_LATENCY_SAMPLES));
    }

    /// Drains `p`, which holds 100 ms of 1.0 paired, 500 ms of microphone 2.0 heard while
    /// the speaker was gone and 100 ms of 3.0 both ways: the outage pairs with silence and
    /// the rest with the reference of its own moment.
    fn assert_outage_paired_with_silence(p: &mut Pairing) {
        let mut pairs = Vec::new();
        p.drain_frames(|m, r| {
            pairs.push((m[0], r[0]));
            Ok::<_, ()>(())
        })
        .unwrap();
        assert_eq!(pairs.len(), 70);
        assert!(pairs.iter().all(|&(m, r)| r == 0.0 && m == 2.0 || r == m), "{pairs:?}");
    }

    #[test]
    fn a_lost_speaker_keeps_the_reference_aligned_when_it_comes_back() {
        let mut p = Pairing::new(3_200);
        // 100 ms paired, then the speaker is gone for 500 ms while the microphone goes on.
        p.push_mic(&[1.0; 1_600]);
        p.push_reference(&[1.0; 1_600]);
        p.push_mic(&[2.0; 8_000]);
        p.fill_reference();
        // Back: new reference samples pair with the microphone samples of the same moment.
        p.push_mic(&[3.0; 1_600]);
        p.push_reference(&[3.0; 1_600]);
        assert_outage_paired_with_silence(&mut p);
    }

    #[test]
    fn microphone_heard_while_the_speaker_was_gone_but_read_after_it_came_back_gets_silence() {
        let mut p = Pairing::new(3_200);
        p.push_mic(&[1.0; 1_600]);
        p.push_reference(&[1.0; 1_600]);
        // Gone for 500 ms, then back for 100 ms before the first read after it, which holds
        // 300 ms of the outage: 9,600 microphone samples exist and 1,600 reference samples,
        // so 8,000 of silence are owed.
        p.push_mic(&[2.0; 4_800]);
        assert_eq!(p.fill_reference_up_to(8_000), 4_800, "no more than the microphone has");
        p.push_mic(&[2.0; 3_200]);
        p.push_mic(&[3.0; 1_600]);
        assert_eq!(p.fill_reference_up_to(3_200), 3_200);
        p.push_reference(&[3.0; 1_600]);
        assert_outage_paired_with_silence(&mut p);
        assert_eq!(p.filled, 8_000);
    }

    #[test]
    fn convergence_counts_only_audible_reference() {
        let mut c = Convergence::default();
        let quiet = [1e-4f32; AEC_FRAME];
        let loud = [0.1f32; AEC_FRAME];
        for _ in 0..1_000 {
            c.push_reference(&quiet);
        }
        assert!(!c.converged(), "10 s of silence teach nothing");
        for _ in 0..199 {
            c.push_reference(&loud);
        }
        assert!(!c.converged());
        c.push_reference(&loud);
        assert!(c.converged(), "2 s of audible reference");
    }

    #[test]
    fn wrong_frame_sizes_are_errors() {
        let mut aec = EchoCanceller::new(Some(40)).unwrap();
        let mut out = [0.0f32; AEC_FRAME];
        assert!(aec.process(&[0.0; 10], &[0.0; AEC_FRAME], &mut out).is_err());
    }

    #[test]
    fn pairing_matches_by_position_and_fills_a_missing_reference() {
        let mut p = Pairing::new(320);
        p.push_mic(&[1.0; 400]);
        p.push_reference(&[2.0; 200]);
        let mut seen = Vec::new();
        p.drain_frames(|m, r| {
            seen.push((m[0], r[0]));
            Ok::<(), ()>(())
        })
        .unwrap();
        assert_eq!(seen, vec![(1.0, 2.0)], "one full pair; the rest waits for the reference");
        assert_eq!(p.reference_room(), 240 + 320 - 40);
        // The reference stops coming: after `max_wait` the microphone goes on with silence.
        p.push_mic(&[1.0; 800]);
        seen.clear();
        p.drain_frames(|m, r| {
            seen.push((m[0], r[0]));
            Ok::<(), ()>(())
        })
        .unwrap();
        assert!(seen.len() == 4 && seen.iter().skip(1).all(|&(_, r)| r == 0.0), "{seen:?}");
        assert!(p.filled > 0);
        assert!(erle_db(&[0.0; 4], &[0.0; 4]).is_none());
        assert!((erle_db(&[1.0; 4], &[0.1; 4]).unwrap() - 20.0).abs() < 1e-4);
    }
}
