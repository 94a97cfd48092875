//! Recent audio addressed by absolute sample position: the listener keeps the open
//! utterance (with its pre-roll) and cuts it, its pauses and the wake-word check's window out
//! of it by the VAD's positions, while forgetting what no one can ask for any more.

/// Samples `[base, base + len)` of a stream (16 kHz on the listener), positions counted from
/// the stream's start. Bounded by its owner, which calls [`SampleHistory::forget_before`].
#[derive(Debug, Default)]
pub struct SampleHistory {
    base: u64,
    buf: Vec<f32>,
}

impl SampleHistory {
    /// The position just after the newest sample kept.
    pub fn end(&self) -> u64 {
        self.base + self.buf.len() as u64
    }

    /// The position of the oldest sample kept.
    pub fn start(&self) -> u64 {
        self.base
    }

    /// Appends the stream's next samples.
    pub fn extend(&mut self, samples: &[f32]) {
        self.buf.extend_from_slice(samples);
    }

    /// Samples `[from, to)`, clamped to what is kept (empty when `to <= from`).
    pub fn slice(&self, from: u64, to: u64) -> Vec<f32> {
        let a = from.saturating_sub(self.base).min(self.buf.len() as u64) as usize;
        let b = to.saturating_sub(self.base).min(self.buf.len() as u64) as usize;
        self.buf[a.min(b)..b].to_vec()
    }

    /// Drops every sample before position `pos`.
    pub fn forget_before(&mut self, pos: u64) {
        let n = pos.saturating_sub(self.base).min(self.buf.len() as u64) as usize;
        if n > 0 {
            self.buf.drain(..n);
            self.base += n as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_by_absolute_position() {
        let mut h = SampleHistory::default();
        h.extend(&(0..10).map(|i| i as f32).collect::<Vec<_>>());
        h.forget_before(4);
        assert_eq!((h.start(), h.end()), (4, 10));
        assert_eq!(h.slice(2, 6), vec![4.0, 5.0]);
        assert_eq!(h.slice(8, 20), vec![8.0, 9.0]);
        assert_eq!(h.slice(9, 3), Vec::<f32>::new());
        h.forget_before(2);
        assert_eq!(h.start(), 4, "forgetting the past again changes nothing");
    }
}
