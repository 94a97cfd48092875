//! A simulated acoustic echo path, speaker → room → microphone, for the simulated devices:
//! a direct path (delay and gain), a short room impulse response of sparse reflections with
//! an exponential decay, and white background noise. Deterministic for a given seed.
//!
//! The impulse response is sparse on purpose: a dense FIR of 150 ms at 48 kHz would cost
//! ~350 M multiply-adds per second on the simulated hardware thread; 25 taps cost nothing
//! and still give the canceller a multi-path echo to model.

use serde::Deserialize;

/// Echo path settings (`[audio.simulated_echo]`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EchoPathConfig {
    /// Delay of the direct path, speaker to microphone, in ms (10..=120 is realistic for
    /// glasses and open-ear buds with their device buffers).
    pub delay_ms: f32,
    /// Gain of the direct path in dB (-20..=0; 0 dB: the echo is as loud as the reply).
    pub gain_db: f32,
    /// Length of the room's reflections after the direct path, in ms (0 = direct path only).
    pub room_ms: f32,
    /// Level of the reflections' envelope at the direct path's end, relative to it, in dB
    /// (they decay exponentially to -60 dB over `room_ms`).
    pub reflections_db: f32,
    /// Background noise level at the microphone, dBFS RMS (-120 or lower = none).
    pub noise_dbfs: f32,
    /// Seed of the reflections' positions and signs and of the noise.
    pub seed: u64,
}

impl Default for EchoPathConfig {
    fn default() -> Self {
        Self { delay_ms: 40.0, gain_db: -6.0, room_ms: 60.0, reflections_db: -10.0, noise_dbfs: -60.0, seed: 1 }
    }
}

/// Number of reflections in the room response.
const REFLECTIONS: usize = 24;

impl EchoPathConfig {
    /// Range checks; the message names the key.
    pub fn validate(&self) -> Result<(), crate::AudioError> {
        if !(0.0..=500.0).contains(&self.delay_ms) {
            return Err(crate::AudioError::invalid_config("simulated_echo.delay_ms", format!(" = {} (must be 0..=500)", self.delay_ms)));
        }
        if !(-60.0..=12.0).contains(&self.gain_db) {
            return Err(crate::AudioError::invalid_config("simulated_echo.gain_db", format!(" = {} (must be -60..=12)", self.gain_db)));
        }
        if !(0.0..=500.0).contains(&self.room_ms) {
            return Err(crate::AudioError::invalid_config("simulated_echo.room_ms", format!(" = {} (must be 0..=500)", self.room_ms)));
        }
        if !(-60.0..=0.0).contains(&self.reflections_db) {
            return Err(crate::AudioError::invalid_config(
                "simulated_echo.reflections_db",
                format!(" = {} (must be -60..=0)", self.reflections_db),
            ));
        }
        if !(-200.0..=-10.0).contains(&self.noise_dbfs) {
            return Err(crate::AudioError::invalid_config(
                "simulated_echo.noise_dbfs",
                format!(" = {} (must be -200..=-10)", self.noise_dbfs),
            ));
        }
        Ok(())
    }
}

/// A small deterministic PRNG (xorshift64*), enough for reflections and noise.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).max(1))
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// The running echo path: feed it what the speaker played, get what the microphone hears of
/// it (plus noise). Never allocates after [`EchoPath::new`].
#[derive(Debug, Clone)]
pub struct EchoPath {
    /// Sparse impulse response: (lag in samples, gain).
    taps: Vec<(usize, f32)>,
    /// The last `history.len()` played samples, a circular buffer.
    history: Vec<f32>,
    pos: usize,
    noise_amp: f32,
    rng: Rng,
}

impl EchoPath {
    /// The path for `cfg` at `rate_hz` (mono). `cfg` should pass [`EchoPathConfig::validate`].
    pub fn new(cfg: &EchoPathConfig, rate_hz: u32) -> Self {
        let per_ms = rate_hz as f32 / 1000.0;
        let direct = (cfg.delay_ms.max(0.0) * per_ms).round() as usize;
        let g = 10f32.powf(cfg.gain_db / 20.0);
        let mut rng = Rng::new(cfg.seed);
        let mut taps = vec![(direct, g)];
        let room = (cfg.room_ms.max(0.0) * per_ms) as usize;
        if room > 0 {
            let start = 10f32.powf(cfg.reflections_db / 20.0);
            // -60 dB over `room`: amplitude factor 1e-3 at the end.
            let decay = (1e-3f32).ln() / room as f32;
            for _ in 0..REFLECTIONS {
                let at = 1 + (rng.unit() * room as f32) as usize;
                let sign = if rng.next_u64() & 1 == 0 { 1.0 } else { -1.0 };
                taps.push((direct + at, sign * g * start * (decay * at as f32).exp()));
            }
        }
        let len = taps.iter().map(|t| t.0).max().unwrap_or(0) + 1;
        let noise_amp = if cfg.noise_dbfs <= -120.0 { 0.0 } else { 10f32.powf(cfg.noise_dbfs / 20.0) * 3f32.sqrt() };
        Self { taps, history: vec![0.0; len], pos: 0, noise_amp, rng }
    }

    /// Adds to `mic` (one sample per played sample, same rate) the echo of `played` (and of
    /// what was played before it) and the background noise.
    /// Panics never; `mic` and `played` may differ in length (the shorter one is used).
    pub fn apply(&mut self, played: &[f32], mic: &mut [f32]) {
        let n = self.history.len();
        for (m, &p) in mic.iter_mut().zip(played) {
            self.history[self.pos] = p;
            let mut e = 0.0;
            for &(lag, g) in &self.taps {
                e += g * self.history[(self.pos + n - lag) % n];
            }
            self.pos = (self.pos + 1) % n;
            let noise = if self.noise_amp > 0.0 { (self.rng.unit() * 2.0 - 1.0) * self.noise_amp } else { 0.0 };
            *m += e + noise;
        }
    }

    /// Delay of the direct path, in samples.
    pub fn delay_samples(&self) -> usize {
        self.taps[0].0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quiet(delay_ms: f32, gain_db: f32, room_ms: f32) -> EchoPathConfig {
        EchoPathConfig { delay_ms, gain_db, room_ms, noise_dbfs: -200.0, ..Default::default() }
    }

    #[test]
    fn an_impulse_comes_back_delayed_and_attenuated() {
        let mut p = EchoPath::new(&quiet(10.0, -6.0, 0.0), 16_000);
        let mut played = vec![0.0f32; 400];
        played[5] = 1.0;
        let mut mic = vec![0.0f32; 400];
        p.apply(&played, &mut mic);
        let peak = mic.iter().enumerate().max_by(|a, b| a.1.abs().total_cmp(&b.1.abs())).unwrap();
        assert_eq!(peak.0, 5 + 160, "10 ms at 16 kHz");
        assert!((peak.1 - 0.501).abs() < 0.01, "-6 dB: {}", peak.1);
        assert_eq!(mic.iter().filter(|v| **v != 0.0).count(), 1);
    }

    #[test]
    fn the_room_adds_decaying_reflections_after_the_direct_path_only() {
        let mut p = EchoPath::new(&quiet(20.0, 0.0, 50.0), 16_000);
        let mut played = vec![0.0f32; 2_000];
        played[0] = 1.0;
        let mut mic = vec![0.0f32; 2_000];
        p.apply(&played, &mut mic);
        assert!(mic[..320].iter().all(|v| *v == 0.0), "nothing before the direct path");
        assert_eq!(mic[320], 1.0);
        let late: Vec<f32> = mic[321..].iter().copied().filter(|v| *v != 0.0).collect();
        assert!(late.len() >= 20, "reflections: {}", late.len());
        assert!(late.iter().all(|v| v.abs() < 0.32 + 1e-3), "below the direct path by 10 dB");
        assert!(mic[320 + 800..].iter().all(|v| *v == 0.0), "nothing after 50 ms of room");
    }

    #[test]
    fn noise_has_the_configured_level_and_the_same_seed_repeats() {
        let cfg = EchoPathConfig { noise_dbfs: -40.0, ..quiet(10.0, -6.0, 0.0) };
        let mut a = EchoPath::new(&cfg, 16_000);
        let mut mic = vec![0.0f32; 16_000];
        a.apply(&vec![0.0; 16_000], &mut mic);
        let rms = (mic.iter().map(|v| v * v).sum::<f32>() / mic.len() as f32).sqrt();
        assert!((20.0 * rms.log10() + 40.0).abs() < 0.5, "rms {rms}");
        let mut b = EchoPath::new(&cfg, 16_000);
        let mut mic2 = vec![0.0f32; 16_000];
        b.apply(&vec![0.0; 16_000], &mut mic2);
        assert_eq!(mic, mic2);
    }

    #[test]
    fn validation_names_the_key() {
        let bad = EchoPathConfig { gain_db: 30.0, ..Default::default() };
        let e = bad.validate().unwrap_err();
        assert!(matches!(&e, crate::AudioError::InvalidConfig { key, .. } if key == "simulated_echo.gain_db"), "{e}");
        assert_eq!(e.to_string(), "simulated_echo.gain_db = 30 (must be -60..=12)");
        assert!(EchoPathConfig::default().validate().is_ok());
    }
}
