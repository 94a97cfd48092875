//! The earcon: the short sound the device plays when it starts listening (a wake word or a
//! push-to-talk press), so the user knows to speak.

/// Two 60 ms tones (880 Hz, then 1320 Hz) 40 ms apart at -24 dBFS, with 10 ms fades so they
/// do not click; `rate_hz` samples per second.
pub fn earcon_samples(rate_hz: u32) -> Vec<f32> {
    let n = |ms: f64| (ms * rate_hz as f64 / 1000.0) as usize;
    let tone = |hz: f64| -> Vec<f32> {
        let (len, fade) = (n(60.0), n(10.0).max(1));
        (0..len)
            .map(|i| {
                let env = (i.min(len - 1 - i) as f64 / fade as f64).min(1.0);
                (0.063 * env * (2.0 * std::f64::consts::PI * hz * i as f64 / rate_hz as f64).sin()) as f32
            })
            .collect()
    };
    [tone(880.0), vec![0.0; n(40.0)], tone(1320.0)].concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_faded_tones_at_minus_24_dbfs() {
        let x = earcon_samples(16_000);
        // 60 + 40 + 60 ms.
        assert_eq!(x.len(), 160 * 16);
        let peak = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert!((0.06..=0.0631).contains(&peak), "peak {peak}");
        // Faded in and out (no click), silent between the tones.
        assert!(x[0].abs() < 1e-6 && x[60 * 16 - 1].abs() < 0.01 && x[x.len() - 1].abs() < 0.01);
        assert!(x[60 * 16..100 * 16].iter().all(|v| *v == 0.0));
    }
}
