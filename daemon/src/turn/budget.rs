//! Adaptive opener length: pick the μLM's word budget so that the spoken opener lasts about
//! as long as the cloud takes to send its first delta (paper §"Idea": 4 and 8 words mask
//! ~1 and ~2 s when read; speech is slower, ~2.5 words/s, so they mask more).

/// Running estimate of the cloud's first-delta latency (exponentially weighted mean, ms).
#[derive(Debug, Clone)]
pub struct LatencyEstimate {
    mean_ms: Option<f64>,
    alpha: f64,
}

impl LatencyEstimate {
    /// `alpha` is the weight of each new observation (0 < alpha <= 1).
    pub fn new(alpha: f64) -> Self {
        Self { mean_ms: None, alpha: alpha.clamp(0.01, 1.0) }
    }

    /// Adds one observed first-delta latency, in ms (non-finite or negative values ignored).
    pub fn observe(&mut self, ms: f64) {
        if !ms.is_finite() || ms < 0.0 {
            return;
        }
        self.mean_ms = Some(match self.mean_ms {
            None => ms,
            Some(m) => m + self.alpha * (ms - m),
        });
    }

    /// The current estimate, if any observation was made.
    pub fn mean_ms(&self) -> Option<f64> {
        self.mean_ms
    }
}

/// Word budget for the next opener: enough words, spoken at `words_per_s`, to cover the
/// expected cloud latency, clamped to `[min_words, max_words]`; `default_words` before the
/// first observation.
pub fn opener_words(est: &LatencyEstimate, words_per_s: f64, min_words: usize, max_words: usize, default_words: usize) -> usize {
    match est.mean_ms() {
        None => default_words.clamp(min_words, max_words),
        Some(ms) => ((ms / 1000.0 * words_per_s).ceil() as usize).clamp(min_words, max_words),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_covers_latency_within_bounds() {
        let mut e = LatencyEstimate::new(0.5);
        assert_eq!(opener_words(&e, 2.5, 4, 8, 6), 6);
        e.observe(500.0);
        assert_eq!(opener_words(&e, 2.5, 4, 8, 6), 4); // 1.25 words -> at least 4
        e.observe(2_500.0); // mean 1500 ms -> 3.75 words
        assert_eq!(e.mean_ms(), Some(1_500.0));
        assert_eq!(opener_words(&e, 2.5, 4, 8, 6), 4);
        e.observe(4_500.0); // mean 3000 ms -> 7.5 words
        assert_eq!(opener_words(&e, 2.5, 4, 8, 6), 8);
        e.observe(f64::NAN);
        assert_eq!(e.mean_ms(), Some(3_000.0));
        e.observe(10_000.0);
        assert_eq!(opener_words(&e, 2.5, 4, 8, 6), 8);
    }
}
