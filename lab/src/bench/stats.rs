//! Summary statistics for benchmark samples.

use serde::Serialize;

/// Distribution of a timed measurement, in the unit of its samples (ms unless named).
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub n: usize,
    pub p50: f64,
    pub p95: f64,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
}

/// Nearest-rank percentile (`q` in 0..=1) of sorted, non-empty `sorted`.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Summarizes `samples`; None when empty.
pub fn summarize(samples: &[f64]) -> Option<Summary> {
    if samples.is_empty() {
        return None;
    }
    let mut s = samples.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    Some(Summary {
        n: s.len(),
        p50: percentile(&s, 0.5),
        p95: percentile(&s, 0.95),
        min: s[0],
        max: s[s.len() - 1],
        mean: s.iter().sum::<f64>() / s.len() as f64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let s = summarize(&[5.0, 1.0, 3.0, 2.0, 4.0]).unwrap();
        assert_eq!((s.p50, s.p95, s.min, s.max, s.mean), (3.0, 5.0, 1.0, 5.0, 3.0));
        let s = summarize(&(1..=100).map(f64::from).collect::<Vec<_>>()).unwrap();
        assert_eq!((s.p50, s.p95), (50.0, 95.0));
        assert!(summarize(&[]).is_none());
    }
}
