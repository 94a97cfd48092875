//! Speculative work at the VAD's pause: Whisper and the μLM opener run on the audio so far
//! while the hangover decides whether the user is done. At the endpoint the turn takes the
//! results if the utterance did not change since (same last voiced sample, no resume);
//! otherwise they are dropped. The turn state machine is driven the same either way.

/// An opener written at a pause: its text, whether it ended the answer, its gate score.
pub type SpeculativeOpener = (String, bool, Option<lm::gate::GateScore>);

/// Results computed at a pause, keyed by the utterance's last voiced sample.
#[derive(Debug, Default)]
pub struct Speculation {
    last_voiced_ms: Option<f64>,
    transcript: Option<String>,
    /// (transcript, words) → the opener and its gate score.
    opener: Option<(String, usize, SpeculativeOpener)>,
}

impl Speculation {
    /// Drops everything (speech resumed, or a new utterance began).
    pub fn clear(&mut self) {
        *self = Self::default();
    }

    /// Stores the transcript of the utterance whose last voiced sample is at `last_voiced_ms`.
    pub fn store_transcript(&mut self, last_voiced_ms: f64, text: String) {
        self.clear();
        self.last_voiced_ms = Some(last_voiced_ms);
        self.transcript = Some(text);
    }

    /// Stores the opener written for `transcript` with a budget of `words`.
    pub fn store_opener(&mut self, transcript: &str, words: usize, opener: SpeculativeOpener) {
        self.opener = Some((transcript.to_string(), words, opener));
    }

    /// The stored transcript if it belongs to the utterance that ended at `last_voiced_ms`.
    pub fn take_transcript(&mut self, last_voiced_ms: f64) -> Option<String> {
        if self.last_voiced_ms == Some(last_voiced_ms) {
            self.transcript.take()
        } else {
            None
        }
    }

    /// The stored opener if it was written for this transcript and budget.
    pub fn take_opener(&mut self, transcript: &str, words: usize) -> Option<SpeculativeOpener> {
        match self.opener.take() {
            Some((t, w, o)) if t == transcript && w == words => Some(o),
            _ => None,
        }
    }
}

/// The question so far when the user resumed right after its endpoint
/// (`endpoint.resume_merge_ms`): its audio, to be joined with the next utterance's.
#[derive(Debug, Clone)]
pub struct ResumedQuestion {
    /// 16 kHz samples up to `end_ms`.
    pub audio: Vec<f32>,
    /// Where `audio` ends, in ms on the stream clock.
    pub end_ms: f64,
}

impl ResumedQuestion {
    /// The earlier part followed by `next` (16 kHz audio that begins at `next_start_ms` on
    /// the stream clock), without the stretch both cover (pre-roll reaching back before the
    /// earlier part's end).
    pub fn join(&self, next: &[f32], next_start_ms: f64) -> Vec<f32> {
        let overlap_ms = (self.end_ms - next_start_ms).max(0.0);
        let skip = ((overlap_ms * audio::ASR_RATE_HZ as f64 / 1000.0) as usize).min(next.len());
        let mut out = Vec::with_capacity(self.audio.len() + next.len() - skip);
        out.extend_from_slice(&self.audio);
        out.extend_from_slice(&next[skip..]);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resumed_question_joins_without_repeating_audio() {
        // The first part ends at 2,000 ms; the next audio starts 200 ms earlier (pre-roll).
        let q = ResumedQuestion { audio: vec![1.0; 16_000], end_ms: 2_000.0 };
        let next: Vec<f32> = (0..8_000).map(|i| if i < 3_200 { 1.0 } else { 2.0 }).collect();
        let joined = q.join(&next, 1_800.0);
        assert_eq!(joined.len(), 16_000 + 8_000 - 3_200);
        assert!(joined[..16_000].iter().all(|&v| v == 1.0) && joined[16_000..].iter().all(|&v| v == 2.0));
        // A gap between the parts: nothing is skipped.
        assert_eq!(q.join(&next, 2_500.0).len(), 24_000);
        // Overlap longer than the next part: only the earlier part.
        assert_eq!(q.join(&next, 0.0), vec![1.0; 16_000]);
    }

    #[test]
    fn results_only_serve_the_utterance_they_were_made_for() {
        let mut s = Speculation::default();
        s.store_transcript(1000.0, "why is the sky blue".into());
        s.store_opener("why is the sky blue", 6, ("The sky looks blue because".into(), false, None));
        assert_eq!(s.take_transcript(1032.0), None, "a later last voiced sample means more speech");
        assert_eq!(s.take_transcript(1000.0).as_deref(), Some("why is the sky blue"));
        assert_eq!(s.take_opener("why is the sky blue", 5), None, "another word budget");
        s.store_opener("a", 6, ("b".into(), true, None));
        s.clear();
        assert_eq!(s.take_opener("a", 6), None);
    }
}
