//! Probability-per-frame → utterance events. Pure state machine, no audio.

use super::{VadConfig, FRAME_MS, FRAME_SAMPLES};

/// An endpointing event. Positions are in samples at 16 kHz since the stream start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VadEvent {
    /// Speech confirmed (lasted `min_speech_ms`); `sample` is where it began.
    SpeechStart { sample: u64 },
    /// Silence has lasted `pause_ms` after speech: a likely end, not yet final. Speculative
    /// work (ASR, opener) may start; a `Resume` or the final `SpeechEnd` follows.
    Pause { last_voiced_sample: u64, at_sample: u64 },
    /// Speech came back after a `Pause`: speculative work must be discarded.
    Resume { sample: u64 },
    /// The utterance ended: `last_voiced_sample` is the end of the last speech frame and
    /// `endpoint_sample` where the hangover expired (when the decision was made), or where
    /// the utterance reached `vad.max_utterance_ms` (speech going on past it starts a new
    /// utterance at the next speech frame).
    SpeechEnd { last_voiced_sample: u64, endpoint_sample: u64 },
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Silence,
    /// Speech frames seen, not yet `min_speech_ms` of them.
    Onset {
        start: u64,
        voiced: u32,
    },
    /// In an utterance that began at `start`; `silence_since` is the start of trailing
    /// silence, if any.
    Speech {
        start: u64,
        last_voiced_end: u64,
        silence_since: Option<u64>,
        paused: bool,
    },
}

/// Hysteresis endpointer in the manner of Silero's `get_speech_timestamps`, made streaming.
#[derive(Debug, Clone)]
pub struct Endpointer {
    threshold: f32,
    neg_threshold: f32,
    min_speech_frames: u32,
    /// Onset criteria while a reply plays ([`Endpointer::set_barge_in`]): a lower threshold
    /// and a shorter minimum speech, so that a user talking over the echo-cancelled reply is
    /// confirmed sooner.
    barge_in_threshold: f32,
    barge_in_min_speech_frames: u32,
    barge_in: bool,
    hangover_samples: u64,
    pause_samples: u64,
    /// Longest utterance, in samples: speech that never pauses long enough (a TV in the
    /// room) is cut here so that each utterance's audio and ASR work stay bounded.
    max_utterance_samples: u64,
    /// Hangover for the current pause only, set by [`Endpointer::set_pause_hangover`].
    pause_hangover: Option<u64>,
    state: State,
    frame: u64,
}

impl Endpointer {
    /// Creates an endpointer with the thresholds and durations of `cfg`.
    pub fn new(cfg: &VadConfig) -> Self {
        let frames = |ms: u32| ((ms as f64 / FRAME_MS).ceil() as u32).max(1);
        let samples = |ms: u32| ms as u64 * crate::ASR_RATE_HZ as u64 / 1000;
        Self {
            threshold: cfg.threshold,
            neg_threshold: cfg.neg_threshold,
            min_speech_frames: frames(cfg.min_speech_ms),
            barge_in_threshold: cfg.barge_in_threshold,
            barge_in_min_speech_frames: frames(cfg.barge_in_min_speech_ms),
            barge_in: false,
            hangover_samples: samples(cfg.hangover_ms),
            pause_samples: samples(cfg.pause_ms),
            max_utterance_samples: samples(cfg.max_utterance_ms),
            pause_hangover: None,
            state: State::Silence,
            frame: 0,
        }
    }

    /// True while inside a confirmed utterance.
    pub fn in_speech(&self) -> bool {
        matches!(self.state, State::Speech { .. })
    }

    /// Barge-in onset profile on or off: while on (a reply is playing), a new utterance
    /// starts at `vad.barge_in_threshold` and is confirmed after
    /// `vad.barge_in_min_speech_ms`; an utterance already under way is not affected, and
    /// it ends by the usual `neg_threshold` and hangover.
    pub fn set_barge_in(&mut self, on: bool) {
        self.barge_in = on;
    }

    /// (speech threshold, silence threshold, minimum frames) for an onset now.
    fn onset_criteria(&self) -> (f32, f32, u32) {
        if self.barge_in {
            (self.barge_in_threshold, self.neg_threshold.min(self.barge_in_threshold), self.barge_in_min_speech_frames)
        } else {
            (self.threshold, self.neg_threshold, self.min_speech_frames)
        }
    }

    /// Forgets the current utterance and restarts the frame count at 0.
    pub fn reset(&mut self) {
        self.state = State::Silence;
        self.pause_hangover = None;
        self.frame = 0;
    }

    /// Semantic endpointing: sets the hangover of the current pause only, in 16 kHz samples
    /// (a complete utterance may end sooner than `vad.hangover_ms`, an unfinished one waits
    /// longer). Speech resuming restores the configured hangover. Outside a pause (no
    /// `Pause` event since the last speech frame) it does nothing. When the silence so far
    /// already reaches `samples`, the utterance ends now: the returned `SpeechEnd` has its
    /// endpoint at the end of the last frame pushed.
    pub fn set_pause_hangover(&mut self, samples: u64) -> Option<VadEvent> {
        let State::Speech { last_voiced_end, silence_since: Some(since), paused: true, .. } = self.state else {
            return None;
        };
        let now = self.frame * FRAME_SAMPLES as u64;
        if now.saturating_sub(since) >= samples {
            self.state = State::Silence;
            self.pause_hangover = None;
            return Some(VadEvent::SpeechEnd { last_voiced_sample: last_voiced_end, endpoint_sample: now });
        }
        self.pause_hangover = Some(samples);
        None
    }

    /// Consumes the probability of the next frame; returns at most one event.
    pub fn push_prob(&mut self, prob: f32) -> Option<VadEvent> {
        let start = self.frame * FRAME_SAMPLES as u64;
        let end = start + FRAME_SAMPLES as u64;
        self.frame += 1;
        let silence = prob < self.neg_threshold;
        let (onset_threshold, onset_silence, _) = self.onset_criteria();
        match self.state {
            State::Silence => {
                if prob >= onset_threshold {
                    self.state = State::Onset { start, voiced: 1 };
                    return self.confirm(end);
                }
                None
            }
            State::Onset { start: s, voiced } => {
                if prob >= onset_threshold {
                    self.state = State::Onset { start: s, voiced: voiced + 1 };
                    self.confirm(end)
                } else if prob < onset_silence {
                    self.state = State::Silence;
                    None
                } else {
                    None
                }
            }
            State::Speech { start: s, last_voiced_end, silence_since, paused } => {
                if end - s >= self.max_utterance_samples {
                    // Cut: the next speech frame opens a new utterance (after min_speech_ms).
                    self.state = State::Silence;
                    self.pause_hangover = None;
                    let last_voiced_sample = if silence { last_voiced_end } else { end };
                    return Some(VadEvent::SpeechEnd { last_voiced_sample, endpoint_sample: end });
                }
                if !silence {
                    // Speech (or the hysteresis band) continues the utterance.
                    self.state = State::Speech { start: s, last_voiced_end: end, silence_since: None, paused: false };
                    self.pause_hangover = None;
                    return paused.then_some(VadEvent::Resume { sample: start });
                }
                let since = silence_since.unwrap_or(start);
                let quiet = end - since;
                if quiet >= self.pause_hangover.unwrap_or(self.hangover_samples) {
                    self.state = State::Silence;
                    self.pause_hangover = None;
                    return Some(VadEvent::SpeechEnd { last_voiced_sample: last_voiced_end, endpoint_sample: end });
                }
                let pause_now = !paused && quiet >= self.pause_samples;
                self.state = State::Speech { start: s, last_voiced_end, silence_since: Some(since), paused: paused || pause_now };
                pause_now.then_some(VadEvent::Pause { last_voiced_sample: last_voiced_end, at_sample: end })
            }
        }
    }

    fn confirm(&mut self, end: u64) -> Option<VadEvent> {
        if let State::Onset { start, voiced } = self.state {
            if voiced >= self.onset_criteria().2 {
                self.state = State::Speech { start, last_voiced_end: end, silence_since: None, paused: false };
                return Some(VadEvent::SpeechStart { sample: start });
            }
        }
        None
    }

    /// End of stream: closes an open utterance at its last voiced frame.
    pub fn finish(&mut self) -> Option<VadEvent> {
        let end = self.frame * FRAME_SAMPLES as u64;
        let ev = match self.state {
            State::Speech { last_voiced_end, .. } => {
                Some(VadEvent::SpeechEnd { last_voiced_sample: last_voiced_end, endpoint_sample: end })
            }
            _ => None,
        };
        self.state = State::Silence;
        self.pause_hangover = None;
        ev
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> VadConfig {
        VadConfig { min_speech_ms: 64, hangover_ms: 320, pause_ms: 128, ..VadConfig::default() }
    }

    fn run(probs: &[f32]) -> Vec<(usize, VadEvent)> {
        let mut e = Endpointer::new(&cfg());
        let mut out: Vec<(usize, VadEvent)> = probs.iter().enumerate().filter_map(|(i, &p)| e.push_prob(p).map(|ev| (i, ev))).collect();
        if let Some(ev) = e.finish() {
            out.push((probs.len(), ev));
        }
        out
    }

    #[test]
    fn start_pause_end_at_exact_frames() {
        // 3 silent, 10 speech, 12 silent frames. min speech 2 frames, pause 4, hangover 10.
        let mut p = vec![0.0; 3];
        p.extend([0.9; 10]);
        p.extend([0.05; 12]);
        let ev = run(&p);
        assert_eq!(
            ev,
            vec![
                (4, VadEvent::SpeechStart { sample: 3 * 512 }),
                (16, VadEvent::Pause { last_voiced_sample: 13 * 512, at_sample: 17 * 512 }),
                (22, VadEvent::SpeechEnd { last_voiced_sample: 13 * 512, endpoint_sample: 23 * 512 }),
            ]
        );
    }

    #[test]
    fn a_click_is_not_speech() {
        let mut p = vec![0.0; 3];
        p.push(0.95);
        p.extend([0.0; 20]);
        assert!(run(&p).is_empty());
    }

    #[test]
    fn short_gap_resumes_the_same_utterance() {
        let mut p = vec![0.9; 6];
        p.extend([0.0; 5]); // 160 ms: a pause, not an end
        p.extend([0.9; 6]);
        p.extend([0.0; 11]);
        let ev = run(&p);
        assert_eq!(
            ev,
            vec![
                (1, VadEvent::SpeechStart { sample: 0 }),
                (9, VadEvent::Pause { last_voiced_sample: 6 * 512, at_sample: 10 * 512 }),
                (11, VadEvent::Resume { sample: 11 * 512 }),
                (20, VadEvent::Pause { last_voiced_sample: 17 * 512, at_sample: 21 * 512 }),
                (26, VadEvent::SpeechEnd { last_voiced_sample: 17 * 512, endpoint_sample: 27 * 512 }),
            ]
        );
    }

    #[test]
    fn hysteresis_band_keeps_speech() {
        let mut p = vec![0.9; 4];
        p.extend([0.4; 20]); // between neg_threshold and threshold
        p.extend([0.0; 11]);
        let ev = run(&p);
        assert_eq!(ev.last().unwrap().1, VadEvent::SpeechEnd { last_voiced_sample: 24 * 512, endpoint_sample: 34 * 512 });
    }

    #[test]
    fn a_pause_hangover_ends_sooner_or_waits_longer_for_that_pause_only() {
        let mut e = Endpointer::new(&cfg()); // pause 4 frames, hangover 10
        let mut events = Vec::new();
        let push = |e: &mut Endpointer, p: f32, n: usize, ev: &mut Vec<VadEvent>| {
            for _ in 0..n {
                ev.extend(e.push_prob(p));
            }
        };
        // Outside a pause the override does nothing.
        assert_eq!(e.set_pause_hangover(512), None);
        push(&mut e, 0.9, 6, &mut events);
        assert_eq!(e.set_pause_hangover(512), None);
        push(&mut e, 0.0, 4, &mut events); // Pause after 4 silent frames
        assert!(matches!(events.last(), Some(VadEvent::Pause { .. })));
        // Unfinished: wait 30 frames instead of 10; the configured hangover passes quietly.
        assert_eq!(e.set_pause_hangover(30 * 512), None);
        push(&mut e, 0.0, 20, &mut events);
        assert!(e.in_speech(), "{events:?}");
        // Speech resumes: the override is gone, the next pause ends after the usual 10 frames.
        push(&mut e, 0.9, 3, &mut events);
        push(&mut e, 0.0, 10, &mut events);
        assert_eq!(events.last(), Some(&VadEvent::SpeechEnd { last_voiced_sample: 33 * 512, endpoint_sample: 43 * 512 }));
        // A complete utterance: the override is already reached, so it ends at once.
        push(&mut e, 0.9, 4, &mut events);
        push(&mut e, 0.0, 4, &mut events);
        assert_eq!(e.set_pause_hangover(2 * 512), Some(VadEvent::SpeechEnd { last_voiced_sample: 47 * 512, endpoint_sample: 51 * 512 }));
        assert!(!e.in_speech());
    }

    #[test]
    fn speech_that_never_pauses_is_cut_at_max_utterance_ms() {
        // 1,024 ms = 32 frames; min speech 2 frames.
        let c = VadConfig { max_utterance_ms: 1_024, ..cfg() };
        let mut e = Endpointer::new(&c);
        let mut ev: Vec<(usize, VadEvent)> = Vec::new();
        for i in 0..80 {
            ev.extend(e.push_prob(0.9).map(|x| (i, x)));
        }
        ev.extend(e.finish().map(|x| (80, x)));
        assert_eq!(
            ev,
            vec![
                (1, VadEvent::SpeechStart { sample: 0 }),
                (31, VadEvent::SpeechEnd { last_voiced_sample: 32 * 512, endpoint_sample: 32 * 512 }),
                // The speech goes on: a new utterance from the next frames, cut again.
                (33, VadEvent::SpeechStart { sample: 32 * 512 }),
                (63, VadEvent::SpeechEnd { last_voiced_sample: 64 * 512, endpoint_sample: 64 * 512 }),
                (65, VadEvent::SpeechStart { sample: 64 * 512 }),
                (80, VadEvent::SpeechEnd { last_voiced_sample: 80 * 512, endpoint_sample: 80 * 512 }),
            ]
        );
        // Every utterance is at most 32 frames long.
        let spans: Vec<u64> = ev
            .chunks(2)
            .map(|p| match p {
                [(_, VadEvent::SpeechStart { sample }), (_, VadEvent::SpeechEnd { endpoint_sample, .. })] => endpoint_sample - sample,
                _ => panic!("{p:?}"),
            })
            .collect();
        assert!(spans.iter().all(|&n| n <= 32 * 512), "{spans:?}");
    }

    #[test]
    fn a_cut_in_trailing_silence_keeps_the_last_voiced_frame() {
        let c = VadConfig { max_utterance_ms: 1_024, ..cfg() };
        let mut e = Endpointer::new(&c);
        let mut ev = Vec::new();
        for i in 0..40 {
            // Speech until frame 29, then silence: the cut at 32 frames comes before the
            // 10-frame hangover would.
            ev.extend(e.push_prob(if i < 30 { 0.9 } else { 0.0 }));
        }
        assert_eq!(ev.last(), Some(&VadEvent::SpeechEnd { last_voiced_sample: 30 * 512, endpoint_sample: 32 * 512 }));
        assert!(!e.in_speech());
    }

    #[test]
    fn while_a_reply_plays_a_softer_shorter_onset_is_confirmed() {
        // Defaults of the barge-in profile: threshold 0.3, one 32 ms frame.
        let c = VadConfig { barge_in_threshold: 0.3, barge_in_min_speech_ms: 32, ..cfg() };
        let probs = [0.0, 0.0, 0.4, 0.45, 0.4, 0.45, 0.0];
        let mut quiet = Endpointer::new(&c);
        assert!(probs.iter().all(|&p| quiet.push_prob(p).is_none()), "0.4 is below the usual 0.5");
        let mut e = Endpointer::new(&c);
        e.set_barge_in(true);
        let ev: Vec<(usize, VadEvent)> = probs.iter().enumerate().filter_map(|(i, &p)| e.push_prob(p).map(|x| (i, x))).collect();
        assert_eq!(ev, vec![(2, VadEvent::SpeechStart { sample: 2 * 512 })]);
        // At the usual threshold it takes the usual two frames (64 ms), not one.
        let mut e = Endpointer::new(&c);
        let ev: Vec<usize> = [0.0, 0.9, 0.9, 0.9].iter().enumerate().filter_map(|(i, &p)| e.push_prob(p).map(|_| i)).collect();
        assert_eq!(ev, vec![2]);
    }

    #[test]
    fn the_barge_in_profile_does_not_change_an_utterance_under_way() {
        let c = VadConfig { barge_in_threshold: 0.3, barge_in_min_speech_ms: 32, ..cfg() };
        let mut p = vec![0.9; 4];
        p.extend([0.0; 11]);
        let plain: Vec<VadEvent> = {
            let mut e = Endpointer::new(&c);
            p.iter().filter_map(|&x| e.push_prob(x)).collect()
        };
        let mut e = Endpointer::new(&c);
        let mut with: Vec<VadEvent> = p[..2].iter().filter_map(|&x| e.push_prob(x)).collect();
        e.set_barge_in(true);
        with.extend(p[2..].iter().filter_map(|&x| e.push_prob(x)));
        assert_eq!(with, plain);
        assert!(matches!(plain.last(), Some(VadEvent::SpeechEnd { .. })));
    }

    #[test]
    fn finish_closes_open_utterance() {
        let ev = run(&[0.9; 8]);
        assert_eq!(ev.last().unwrap().1, VadEvent::SpeechEnd { last_voiced_sample: 8 * 512, endpoint_sample: 8 * 512 });
    }
}
