//! Activation (issue 18 item 6): which utterances the daemon may hear at all. `[activation]`
//! picks the mode; [`Activation`] is the pure state machine the listener thread drives with
//! the VAD's utterances, wake-word detections, push-to-talk key changes and the reply's end,
//! and that answers, per utterance, "answer it (from where)" or "drop it unheard".
//!
//! - `always`: every utterance (the behaviour before activation existed).
//! - `wake_word`: idle until the wake phrase. The phrase opens listening for `listen_s` (a
//!   phrase alone is just that, plus the earcon); an utterance holding the phrase is answered
//!   from the phrase's end (+ `wake_margin_ms`). After an answered utterance the conversation
//!   stays open for follow-ups, without the phrase, until `turn.conversation_idle_s` after the
//!   reply. Utterances heard while idle never leave the listener thread.
//! - `push_to_talk`: an utterance is answered when the key was down at some time between its
//!   start and its end (a press just after speech starts still counts; speech that starts
//!   within `ptt_grace_ms` after the release too, because the VAD confirms speech late).
//!
//! Times are ms on the stream clock (16 kHz samples since the microphone started).

use std::path::PathBuf;

use serde::Deserialize;

/// `[activation] mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Answer every utterance.
    #[default]
    Always,
    /// Answer after the wake phrase, then follow-ups until the conversation goes idle.
    WakeWord,
    /// Answer speech while the push-to-talk key is held.
    PushToTalk,
}

/// `[activation]`: when the daemon listens (documented key by key in configs/firstword.toml).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ActivationConfig {
    pub mode: Mode,
    /// The wake phrase's reference (a rustpotter `.rpw`, `firstword wakeword build`).
    pub wake_word: PathBuf,
    /// Score (0..1) a window must reach against one of the reference's recordings.
    pub wake_threshold: f32,
    /// Windows over the threshold (10 ms apart) before a detection counts.
    pub wake_min_scores: usize,
    /// Second stage: a detection counts only when Whisper hears the phrase (the reference's
    /// name, up to a quarter of its letters wrong) around its estimated end (`asr::wake_check`).
    pub wake_confirm: bool,
    /// Audio skipped after the phrase's estimated end before the question, in ms.
    pub wake_margin_ms: f64,
    /// Speech after the phrase shorter than this is "the phrase alone", in ms.
    pub min_question_ms: f64,
    /// After the phrase alone (or a key press), how long the question may take to start, in s.
    pub listen_s: f64,
    /// Push-to-talk: the Linux input device (`/dev/input/eventN`, or a `/dev/input/by-id/` link).
    pub ptt_device: Option<PathBuf>,
    /// Push-to-talk: the key, as evdev names it ("KEY_PLAYPAUSE", "BTN_0", …).
    pub ptt_key: String,
    /// Push-to-talk: speech confirmed this long after the release still counts, in ms.
    pub ptt_grace_ms: f64,
    /// Simulated push-to-talk key for `--input-wav`: `[press_ms, release_ms]` pairs on the
    /// simulated microphone's clock. Replaces `ptt_device`.
    pub ptt_simulated: Vec<[f64; 2]>,
    /// Play a short soft tone when listening starts.
    pub earcon: bool,
    /// Run this (`sh -c`, not waited for) when listening starts, e.g. to light an LED.
    pub listening_command: Option<String>,
}

impl Default for ActivationConfig {
    fn default() -> Self {
        Self {
            mode: Mode::Always,
            wake_word: PathBuf::from("configs/wakeword/hey_firstword.rpw"),
            wake_threshold: 0.5,
            wake_min_scores: 3,
            wake_confirm: true,
            wake_margin_ms: 60.0,
            min_question_ms: 300.0,
            listen_s: 8.0,
            ptt_device: None,
            ptt_key: "KEY_PLAYPAUSE".into(),
            ptt_grace_ms: 400.0,
            ptt_simulated: Vec::new(),
            earcon: true,
            listening_command: None,
        }
    }
}

impl ActivationConfig {
    /// Range checks; messages name the key.
    pub fn validate(&self) -> Result<(), crate::AudioError> {
        if !(0.05..=0.99).contains(&self.wake_threshold) {
            return Err(crate::AudioError::invalid_config(
                "activation.wake_threshold",
                format!(" = {} (must be in 0.05..=0.99)", self.wake_threshold),
            ));
        }
        if !(1..=100).contains(&self.wake_min_scores) {
            return Err(crate::AudioError::invalid_config(
                "activation.wake_min_scores",
                format!(" = {} (must be in 1..=100)", self.wake_min_scores),
            ));
        }
        if !(0.0..=1_000.0).contains(&self.wake_margin_ms) {
            return Err(crate::AudioError::invalid_config(
                "activation.wake_margin_ms",
                format!(" = {} (must be in 0..=1000)", self.wake_margin_ms),
            ));
        }
        if !(0.0..=5_000.0).contains(&self.min_question_ms) {
            return Err(crate::AudioError::invalid_config(
                "activation.min_question_ms",
                format!(" = {} (must be in 0..=5000)", self.min_question_ms),
            ));
        }
        if !(0.5..=600.0).contains(&self.listen_s) {
            return Err(crate::AudioError::invalid_config("activation.listen_s", format!(" = {} (must be in 0.5..=600)", self.listen_s)));
        }
        if !(0.0..=5_000.0).contains(&self.ptt_grace_ms) {
            return Err(crate::AudioError::invalid_config(
                "activation.ptt_grace_ms",
                format!(" = {} (must be in 0..=5000)", self.ptt_grace_ms),
            ));
        }
        if self.ptt_key.trim().is_empty() {
            return Err(crate::AudioError::invalid_config("activation.ptt_key", " is empty (e.g. \"KEY_PLAYPAUSE\")".into()));
        }
        if self.ptt_simulated.len() > 10_000 {
            return Err(crate::AudioError::invalid_config(
                "activation.ptt_simulated",
                format!(" has {} presses (at most 10000)", self.ptt_simulated.len()),
            ));
        }
        for (i, [p, r]) in self.ptt_simulated.iter().enumerate() {
            if !(p.is_finite() && r.is_finite() && *p >= 0.0 && r > p) {
                return Err(crate::AudioError::invalid_config(
                    "activation.ptt_simulated",
                    format!("[{i}] = [{p}, {r}] (need 0 <= press_ms < release_ms)"),
                ));
            }
        }
        if self.listening_command.as_deref().is_some_and(|c| c.trim().is_empty()) {
            return Err(crate::AudioError::invalid_config("activation.listening_command", " is empty (leave it out for none)".into()));
        }
        if self.mode == Mode::WakeWord && self.wake_word.as_os_str().is_empty() {
            return Err(crate::AudioError::invalid_config(
                "activation.wake_word",
                " is empty (mode = \"wake_word\" needs a reference)".into(),
            ));
        }
        if self.mode == Mode::PushToTalk && self.ptt_device.is_none() && self.ptt_simulated.is_empty() {
            return Err(crate::AudioError::invalid_config(
                "activation.ptt_device",
                " is not set (mode = \"push_to_talk\" needs a key: ptt_device, or ptt_simulated with --input-wav)".into(),
            ));
        }
        Ok(())
    }
}

/// What the listener does with an utterance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    /// Pass it on; its audio starts at `from_ms` when set (after the wake phrase).
    Answer { from_ms: Option<f64> },
    /// Drop it: never transcribed, never answered.
    Drop,
    /// Not known yet (a wake detection may still come for it).
    Undecided,
}

/// Timings the state machine works with, in ms.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timings {
    pub follow_up_ms: f64,
    pub listen_ms: f64,
    pub margin_ms: f64,
    pub min_question_ms: f64,
    pub ptt_grace_ms: f64,
}

impl Timings {
    /// From the config (`follow_up` = `turn.conversation_idle_s`).
    pub fn new(cfg: &ActivationConfig, conversation_idle_s: f64) -> Self {
        Self {
            follow_up_ms: conversation_idle_s * 1000.0,
            listen_ms: cfg.listen_s * 1000.0,
            margin_ms: cfg.wake_margin_ms,
            min_question_ms: cfg.min_question_ms,
            ptt_grace_ms: cfg.ptt_grace_ms,
        }
    }
}

/// The activation state: pure, driven by the listener.
#[derive(Debug, Clone)]
pub struct Activation {
    mode: Mode,
    t: Timings,
    /// Wake-word mode: listening (and answering) until this time.
    open_until: Option<f64>,
    /// The open utterance: its start, and the end of a wake phrase heard in it.
    utterance: Option<(f64, Option<f64>)>,
    /// Push-to-talk: the key is down since.
    held_since: Option<f64>,
    /// Push-to-talk: the last release.
    released_at: Option<f64>,
}

impl Activation {
    /// Idle, key up.
    pub fn new(mode: Mode, t: Timings) -> Self {
        Self { mode, t, open_until: None, utterance: None, held_since: None, released_at: None }
    }

    /// Audio skipped after a wake phrase's end, in ms.
    pub fn margin_ms(&self) -> f64 {
        self.t.margin_ms
    }

    /// True when speech starting at `at_ms` would be answered without a wake phrase or key.
    pub fn is_open(&self, at_ms: f64) -> bool {
        match self.mode {
            Mode::Always => true,
            Mode::WakeWord => self.open_until.is_some_and(|u| at_ms <= u),
            Mode::PushToTalk => self.held_since.is_some() || self.released_at.is_some_and(|r| at_ms <= r + self.t.ptt_grace_ms),
        }
    }

    /// The wake phrase ended at `end_ms`. Returns true when listening starts with it (say so:
    /// earcon, LED); false when it was already open.
    pub fn wake(&mut self, end_ms: f64) -> bool {
        if self.mode != Mode::WakeWord {
            return false;
        }
        let was_open = self.is_open(end_ms);
        // The first phrase in an utterance marks where its question starts; a later detection
        // inside the question (a false one) must not move that.
        if let Some((start, wake)) = self.utterance.as_mut() {
            if end_ms >= *start && wake.is_none() {
                *wake = Some(end_ms);
            }
        }
        let until = end_ms + self.t.listen_ms;
        self.open_until = Some(self.open_until.map_or(until, |u| u.max(until)));
        !was_open
    }

    /// The push-to-talk key went down (`true`) or up at `at_ms`. Returns true when listening
    /// starts with it.
    pub fn key(&mut self, pressed: bool, at_ms: f64) -> bool {
        if self.mode != Mode::PushToTalk {
            return false;
        }
        match (pressed, self.held_since) {
            (true, None) => {
                self.held_since = Some(at_ms);
                true
            }
            (false, Some(_)) => {
                self.held_since = None;
                self.released_at = Some(at_ms);
                false
            }
            _ => false,
        }
    }

    /// Speech started at `start_ms`: answered (as far as is known now) or not yet.
    pub fn speech_start(&mut self, start_ms: f64) -> Verdict {
        self.utterance = Some((start_ms, None));
        if self.is_open(start_ms) {
            Verdict::Answer { from_ms: None }
        } else {
            Verdict::Undecided
        }
    }

    /// Whether the open utterance is answered so far: the key went down during it, or a wake
    /// phrase was heard in it (audio from the phrase's end plus the margin).
    pub fn during(&self) -> Verdict {
        let Some((start, wake)) = self.utterance else {
            return Verdict::Undecided;
        };
        match (self.mode, wake) {
            (Mode::WakeWord, Some(w)) => Verdict::Answer { from_ms: Some(w + self.t.margin_ms) },
            _ if self.is_open(start) => Verdict::Answer { from_ms: None },
            (Mode::PushToTalk, _) if self.held_since.is_some() => Verdict::Answer { from_ms: None },
            _ => Verdict::Undecided,
        }
    }

    /// The utterance's speech ended at `last_voiced_ms` (`final_` = no wake detection can
    /// still come for it). An answered utterance keeps the conversation open until the reply
    /// is over ([`Activation::replying`]) plus the follow-up time.
    pub fn speech_end(&mut self, last_voiced_ms: f64, final_: bool) -> Verdict {
        let Some((start, wake)) = self.utterance else {
            return Verdict::Drop;
        };
        let ptt_counts = self.mode == Mode::PushToTalk
            && (self.held_since.is_some() || self.released_at.is_some_and(|r| r + self.t.ptt_grace_ms >= start));
        let verdict = match (self.mode, wake) {
            (Mode::Always, _) => Verdict::Answer { from_ms: None },
            (Mode::WakeWord, Some(w)) if last_voiced_ms - w < self.t.min_question_ms => Verdict::Drop, // the phrase alone
            (Mode::WakeWord, Some(w)) => Verdict::Answer { from_ms: Some(w + self.t.margin_ms) },
            (Mode::WakeWord, None) if self.is_open(start) => Verdict::Answer { from_ms: None },
            (Mode::PushToTalk, _) if ptt_counts => Verdict::Answer { from_ms: None },
            _ if final_ => Verdict::Drop,
            _ => return Verdict::Undecided,
        };
        self.utterance = None;
        if matches!(verdict, Verdict::Answer { .. }) && self.mode == Mode::WakeWord {
            self.extend(last_voiced_ms + self.t.follow_up_ms);
        }
        verdict
    }

    /// A reply is playing at `now_ms` (wake-word mode: follow-ups stay open until
    /// `follow_up_ms` after it ends).
    pub fn replying(&mut self, now_ms: f64) {
        if self.mode == Mode::WakeWord && self.open_until.is_some() {
            self.extend(now_ms + self.t.follow_up_ms);
        }
    }

    /// Closes an expired wake-word window at `now_ms`; true when it closed just now.
    pub fn tick(&mut self, now_ms: f64) -> bool {
        if self.open_until.is_some_and(|u| now_ms > u) && self.utterance.is_none() {
            self.open_until = None;
            return true;
        }
        false
    }

    fn extend(&mut self, until: f64) {
        self.open_until = Some(self.open_until.map_or(until, |u| u.max(until)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Timings = Timings { follow_up_ms: 10_000.0, listen_ms: 5_000.0, margin_ms: 50.0, min_question_ms: 300.0, ptt_grace_ms: 400.0 };

    fn answer(v: Verdict) -> Option<Option<f64>> {
        match v {
            Verdict::Answer { from_ms } => Some(from_ms),
            _ => None,
        }
    }

    #[test]
    fn always_answers_everything() {
        let mut a = Activation::new(Mode::Always, T);
        assert_eq!(a.speech_start(100.0), Verdict::Answer { from_ms: None });
        assert_eq!(a.speech_end(900.0, false), Verdict::Answer { from_ms: None });
        assert!(!a.wake(1_000.0) && !a.key(true, 1_000.0));
    }

    #[test]
    fn wake_word_drops_speech_before_the_phrase() {
        let mut a = Activation::new(Mode::WakeWord, T);
        assert_eq!(a.speech_start(0.0), Verdict::Undecided);
        assert_eq!(a.speech_end(2_000.0, false), Verdict::Undecided, "a detection may still come");
        assert_eq!(a.speech_end(2_000.0, true), Verdict::Drop);
        assert!(!a.is_open(3_000.0));
    }

    #[test]
    fn phrase_then_question_is_answered_from_the_phrase_end() {
        let mut a = Activation::new(Mode::WakeWord, T);
        a.speech_start(1_000.0);
        assert!(a.wake(1_800.0), "listening starts");
        assert_eq!(a.during(), Verdict::Answer { from_ms: Some(1_850.0) });
        assert_eq!(a.speech_end(3_500.0, true), Verdict::Answer { from_ms: Some(1_850.0) });
        // Follow-up without the phrase while the reply plays and for follow_up_ms after it.
        a.replying(6_000.0);
        assert!(!a.tick(15_000.0));
        assert_eq!(answer(a.speech_start(15_500.0)), Some(None));
        assert_eq!(answer(a.speech_end(17_000.0, true)), Some(None));
        // Silence past the follow-up time closes it; the next utterance needs the phrase.
        assert!(a.tick(27_001.0));
        assert_eq!(a.speech_start(30_000.0), Verdict::Undecided);
        assert_eq!(a.speech_end(31_000.0, true), Verdict::Drop);
    }

    #[test]
    fn the_phrase_alone_opens_listening_for_the_next_utterance() {
        let mut a = Activation::new(Mode::WakeWord, T);
        a.speech_start(0.0);
        assert!(a.wake(700.0));
        assert_eq!(a.speech_end(800.0, true), Verdict::Drop, "nothing to answer yet");
        assert!(a.is_open(4_000.0));
        assert_eq!(answer(a.speech_start(4_000.0)), Some(None));
        assert_eq!(answer(a.speech_end(5_000.0, true)), Some(None));
        // A phrase alone that is not followed in time closes again.
        let mut b = Activation::new(Mode::WakeWord, T);
        b.wake(700.0);
        assert!(b.tick(5_701.0));
        b.speech_start(6_000.0);
        assert_eq!(b.speech_end(7_000.0, true), Verdict::Drop);
    }

    #[test]
    fn a_wake_detected_after_the_endpoint_still_counts() {
        let mut a = Activation::new(Mode::WakeWord, T);
        a.speech_start(0.0);
        assert_eq!(a.speech_end(2_000.0, false), Verdict::Undecided);
        a.wake(700.0);
        assert_eq!(a.speech_end(2_000.0, true), Verdict::Answer { from_ms: Some(750.0) });
    }

    #[test]
    fn push_to_talk_answers_only_speech_with_the_key_down() {
        let mut a = Activation::new(Mode::PushToTalk, T);
        a.speech_start(0.0);
        assert_eq!(a.speech_end(1_000.0, true), Verdict::Drop, "key never pressed");
        assert!(a.key(true, 2_000.0));
        assert_eq!(answer(a.speech_start(2_100.0)), Some(None));
        assert!(!a.key(false, 3_000.0));
        assert_eq!(answer(a.speech_end(3_400.0, true)), Some(None), "speech continues past the release");
        // Pressed in the middle of an utterance: it counts.
        a.speech_start(5_000.0);
        a.key(true, 5_500.0);
        assert_eq!(a.during(), Verdict::Answer { from_ms: None });
        a.key(false, 6_000.0);
        assert_eq!(answer(a.speech_end(6_500.0, true)), Some(None));
        // Confirmed just after the release (VAD latency): still counts; later: not.
        assert_eq!(answer(a.speech_start(6_300.0)), Some(None));
        a.speech_end(7_000.0, true);
        assert_eq!(a.speech_start(8_000.0), Verdict::Undecided);
        assert_eq!(a.speech_end(9_000.0, true), Verdict::Drop);
        assert!(!a.wake(9_500.0), "no wake word in push-to-talk");
    }

    #[test]
    fn config_errors_name_the_key() {
        let bad = |f: fn(&mut ActivationConfig)| {
            let mut c = ActivationConfig::default();
            f(&mut c);
            format!("{:#}", c.validate().unwrap_err())
        };
        assert!(bad(|c| c.wake_threshold = 2.0).contains("activation.wake_threshold"));
        assert!(bad(|c| c.listen_s = 0.0).contains("activation.listen_s"));
        assert!(bad(|c| c.ptt_simulated = vec![[500.0, 100.0]]).contains("activation.ptt_simulated[0]"));
        assert!(bad(|c| c.mode = Mode::PushToTalk).contains("activation.ptt_device"));
        assert!(bad(|c| c.ptt_key = " ".into()).contains("activation.ptt_key"));
        assert!(bad(|c| c.listening_command = Some(String::new())).contains("activation.listening_command"));
        ActivationConfig::default().validate().unwrap();
    }
}
