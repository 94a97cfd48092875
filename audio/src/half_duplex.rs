//! Half-duplex fallback: while the speaker plays, the microphone is ignored except for a
//! loud, sustained onset (the user talking over the reply on hardware whose echo the
//! canceller cannot remove). Pure: 10 ms frames in, 10 ms frames out, no clock.
//!
//! While the reply plays the output is held back by the onset window, so that an onset
//! that qualifies is passed on whole (its first syllable included) rather than from the
//! moment it was recognised; an onset that does not qualify comes out as silence.

use std::collections::VecDeque;

/// Level (dBFS RMS) of the reference above which the speaker counts as playing.
const PLAYING_DBFS: f32 = -55.0;
/// The speaker counts as playing for this many frames after its last audible one (the
/// room's echo tail and the device's latency), in 10 ms frames.
const PLAYING_HOLD_FRAMES: usize = 30;

fn dbfs(frame: &[f32]) -> f32 {
    let ms = frame.iter().map(|v| v * v).sum::<f32>() / frame.len().max(1) as f32;
    10.0 * ms.max(1e-12).log10()
}

/// The gate. Frames must all have the same length.
pub struct HalfDuplexGate {
    onset_dbfs: f32,
    onset_frames: usize,
    /// Frames held back while playing (at most `onset_frames`).
    held: VecDeque<Vec<f32>>,
    /// Consecutive loud frames at the end of `held`.
    loud_run: usize,
    /// Frames since the reference was last audible.
    since_played: usize,
    /// A qualifying onset opened the gate until playback stops.
    open: bool,
}

impl HalfDuplexGate {
    /// An onset must reach `onset_dbfs` in every 10 ms frame for `onset_ms`.
    pub fn new(onset_dbfs: f32, onset_ms: u32) -> Self {
        let onset_frames = (onset_ms as usize).div_ceil(10).max(1);
        Self {
            onset_dbfs,
            onset_frames,
            held: VecDeque::with_capacity(onset_frames + 1),
            loud_run: 0,
            since_played: usize::MAX,
            open: false,
        }
    }

    /// True while the speaker counts as playing.
    pub fn playing(&self) -> bool {
        self.since_played < PLAYING_HOLD_FRAMES
    }

    /// One microphone frame and the reference frame played at the same time; appends what
    /// the listener may hear to `out` (nothing while an onset is being judged).
    pub fn push(&mut self, mic: &[f32], reference: &[f32], out: &mut Vec<f32>) {
        self.since_played = if dbfs(reference) > PLAYING_DBFS { 0 } else { self.since_played.saturating_add(1) };
        if !self.playing() {
            // The reply is over: release what was held, and listen normally.
            self.open = false;
            self.loud_run = 0;
            while let Some(f) = self.held.pop_front() {
                out.extend_from_slice(&f);
            }
            out.extend_from_slice(mic);
            return;
        }
        if self.open {
            out.extend_from_slice(mic);
            return;
        }
        self.loud_run = if dbfs(mic) >= self.onset_dbfs { self.loud_run + 1 } else { 0 };
        self.held.push_back(mic.to_vec());
        if self.loud_run >= self.onset_frames {
            // A loud, sustained onset: barge-in. Pass it on whole.
            self.open = true;
            while let Some(f) = self.held.pop_front() {
                out.extend_from_slice(&f);
            }
            return;
        }
        // Keep only what could still become the start of an onset; the rest is silence.
        while self.held.len() > self.loud_run.max(1).min(self.onset_frames) {
            if let Some(f) = self.held.pop_front() {
                out.extend(std::iter::repeat_n(0.0, f.len()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const F: usize = 160;

    fn run(gate: &mut HalfDuplexGate, mic: &[f32], reference: &[f32]) -> Vec<f32> {
        let mut out = Vec::new();
        for (m, r) in mic.chunks(F).zip(reference.chunks(F)) {
            gate.push(m, r, &mut out);
        }
        out
    }

    #[test]
    fn echo_while_playing_is_silenced_and_the_next_question_heard() {
        let mut g = HalfDuplexGate::new(-20.0, 200);
        let reply = vec![0.05f32; F * 100]; // -26 dBFS, 1 s
        let echo = vec![0.05f32; F * 100];
        let first = run(&mut g, &echo, &reply);
        assert!(first.iter().all(|v| *v == 0.0), "echo got through");
        assert!(g.playing());
        // 400 ms after the reply the microphone is heard as it is.
        let then = run(&mut g, &vec![0.01; F * 40], &vec![0.0; F * 40]);
        assert!(!g.playing());
        assert!(then.iter().rev().take(F * 5).all(|v| *v == 0.01));
        assert_eq!(first.len() + then.len(), F * 140, "no sample lost or added");
    }

    #[test]
    fn a_loud_sustained_onset_is_passed_on_whole_a_short_one_is_not() {
        let mut g = HalfDuplexGate::new(-20.0, 100);
        let reply = vec![0.05f32; F * 60];
        // 50 ms of shouting (too short), then 300 ms of talking loudly.
        let mut mic = vec![0.0f32; F * 10];
        mic.extend(vec![0.5f32; F * 5]);
        mic.extend(vec![0.0f32; F * 10]);
        mic.extend(vec![0.3f32; F * 30]);
        mic.extend(vec![0.0f32; F * 5]);
        let out = run(&mut g, &mic, &reply);
        assert!(!out.contains(&0.5), "a 50 ms burst opened the gate");
        assert_eq!(out.iter().filter(|v| **v == 0.3).count(), F * 30, "the onset passed whole");
        assert_eq!(out.len(), mic.len(), "every frame out once the gate opened");
    }
}
