//! Injected latency (see [`super::LatencyConfig`]).

use std::time::{Duration, Instant};

use rand::Rng;

use super::config::{Distribution, LatencyConfig};

/// Release schedule for one request's deltas.
#[derive(Debug, Clone)]
pub(crate) struct Pacer {
    start: Instant,
    first_delay: Duration,
    interval: Option<Duration>,
    first_at: Option<Instant>,
    released: u32,
}

/// Sample a first-delta delay, ms (never negative).
pub(crate) fn sample_first_delay_ms(c: &LatencyConfig) -> f64 {
    let mut rng = rand::rng();
    let d = match c.distribution {
        Distribution::Uniform if c.first_delta_jitter_ms > 0.0 => {
            c.first_delta_ms + rng.random_range(-c.first_delta_jitter_ms..=c.first_delta_jitter_ms)
        }
        Distribution::Normal if c.first_delta_jitter_ms > 0.0 => {
            // Box–Muller: one standard normal sample from two uniforms.
            let u1: f64 = rng.random_range(f64::MIN_POSITIVE..1.0);
            let u2: f64 = rng.random();
            let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
            c.first_delta_ms + z * c.first_delta_jitter_ms
        }
        _ => c.first_delta_ms,
    };
    d.max(0.0)
}

impl Pacer {
    /// Schedule for a request that arrived at `start`; `None` config = no delays.
    pub fn new(start: Instant, config: Option<&LatencyConfig>) -> Self {
        let (first_delay, interval) = match config {
            Some(c) => (Duration::from_secs_f64(sample_first_delay_ms(c) / 1e3), c.tokens_per_s.map(|r| Duration::from_secs_f64(1.0 / r))),
            None => (Duration::ZERO, None),
        };
        Self { start, first_delay, interval, first_at: None, released: 0 }
    }

    /// Earliest instant at which the next backend delta may be released.
    pub fn next_release(&self) -> Instant {
        match (self.first_at, self.interval) {
            (None, _) => self.start + self.first_delay,
            (Some(f), Some(i)) => f + i * self.released,
            (Some(_), None) => self.start,
        }
    }

    /// Record that a delta was released at `now`.
    pub fn released(&mut self, now: Instant) {
        if self.first_at.is_none() {
            self.first_at = Some(now);
        }
        self.released += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_delay_stays_in_range() {
        let c = LatencyConfig {
            first_delta_ms: 800.0,
            first_delta_jitter_ms: 200.0,
            distribution: Distribution::Uniform,
            tokens_per_s: Some(20.0),
        };
        for _ in 0..1000 {
            let d = sample_first_delay_ms(&c);
            assert!((600.0..=1000.0).contains(&d), "{d}");
        }
        let n = LatencyConfig { distribution: Distribution::Normal, ..c };
        let mean = (0..4000).map(|_| sample_first_delay_ms(&n)).sum::<f64>() / 4000.0;
        assert!((mean - 800.0).abs() < 30.0, "{mean}");
    }

    #[test]
    fn pacing_schedule() {
        let t0 = Instant::now();
        let c = LatencyConfig {
            first_delta_ms: 100.0,
            first_delta_jitter_ms: 0.0,
            distribution: Distribution::Uniform,
            tokens_per_s: Some(10.0),
        };
        let mut p = Pacer::new(t0, Some(&c));
        assert_eq!(p.next_release(), t0 + Duration::from_millis(100));
        let f = t0 + Duration::from_millis(120);
        p.released(f);
        assert_eq!(p.next_release(), f + Duration::from_millis(100));
    }
}
