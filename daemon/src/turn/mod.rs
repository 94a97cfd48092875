//! One voice turn as a pure state machine: [`Event`]s in, [`Action`]s out, no audio, clock
//! or network. The driver (replay or live) performs the actions and feeds back what
//! happened, with times in ms on the input audio's clock.
//!
//! The rules it encodes (issue 6, after the paper's collaborative generation):
//! - the opener is committed: once written it is always spoken, never retracted;
//! - the cloud `continue` request goes out the moment the opener text exists;
//! - cloud deltas are chunked at clause/sentence boundaries and spoken in order after it;
//! - a late cloud gets one short filler after `filler_after_ms` of silence;
//! - a failed, timed-out or vanished cloud: the μLM finishes the sentence locally and a
//!   short fallback ends the turn — never silence mid-sentence;
//! - speech during the reply (barge-in) stops playback and cancels the cloud request;
//! - the turn owns its deadlines ([`Deadlines`]): no first delta in time, a cloud that goes
//!   quiet mid-reply while the listener hears silence, and the wall-clock limit all end the
//!   request with [`Action::CancelCloud`] and the local finish; the drivers only send `Tick`s.
//!
//! Events that do not apply in the current phase change nothing and are recorded in
//! [`TurnRecord::ignored_events`] (bounded), so a driver bug shows up in the timeline.

pub mod budget;

use serde::Serialize;

use crate::config::ConfigError;

/// Which part of the reply a piece of speech is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Part {
    Opener,
    Continuation,
    Filler,
    /// The μLM's local completion of a sentence the cloud did not finish.
    LocalFinish,
    Fallback,
}

/// Something that happened, at `at_ms` on the input clock.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The VAD confirmed speech. Replay applies barge-in after the fact (it knows the
    /// next utterance's time); the live loop sends this event.
    SpeechStarted { at_ms: f64 },
    /// The VAD ended the utterance: last voiced sample and the endpoint decision time.
    SpeechEnded { last_voiced_ms: f64, endpoint_ms: f64 },
    /// Whisper's transcript of the utterance.
    Transcript { text: String, at_ms: f64 },
    /// The μLM's opener; `complete` when it ended at end of turn, not at the word budget;
    /// `score` is the opener gate's score of it (None: not scored, never gated).
    Opener { text: String, complete: bool, at_ms: f64, score: Option<lm::gate::GateScore> },
    /// Continuation text from the cloud.
    CloudDelta { text: String, at_ms: f64 },
    /// The cloud began a recovery (bridge) because the opener went wrong.
    CloudRepair { at_ms: f64 },
    /// The cloud finished normally.
    CloudDone { at_ms: f64 },
    /// The cloud failed or disconnected (its request is already over).
    CloudFailed { reason: String, at_ms: f64 },
    /// The cloud client's own first-delta timer fired: the request is still open, so the turn
    /// cancels it and falls back (the turn's own [`Deadlines::first_delta_ms`] may fire first).
    CloudTimedOut { waited_ms: f64, at_ms: f64 },
    /// The μLM's local completion of the unfinished sentence.
    LocalFinish { text: String, at_ms: f64 },
    /// Everything queued so far has been played.
    PlaybackIdle { at_ms: f64 },
    /// Time passes: drives the filler and every deadline of [`Deadlines`].
    Tick { at_ms: f64 },
}

impl Event {
    /// The event's kind in snake case, for [`TurnRecord::ignored_events`].
    pub fn kind(&self) -> &'static str {
        match self {
            Event::SpeechStarted { .. } => "speech_started",
            Event::SpeechEnded { .. } => "speech_ended",
            Event::Transcript { .. } => "transcript",
            Event::Opener { .. } => "opener",
            Event::CloudDelta { .. } => "cloud_delta",
            Event::CloudRepair { .. } => "cloud_repair",
            Event::CloudDone { .. } => "cloud_done",
            Event::CloudFailed { .. } => "cloud_failed",
            Event::CloudTimedOut { .. } => "cloud_timed_out",
            Event::LocalFinish { .. } => "local_finish",
            Event::PlaybackIdle { .. } => "playback_idle",
            Event::Tick { .. } => "tick",
        }
    }
}

/// How long a turn waits for the cloud, in ms on the event clock. Built by the drivers from
/// `[cloud] first_delta_timeout_ms`, `[turn] cloud_stall_ms` and the 90 s wall limit
/// ([`crate::turn_shared::deadlines`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Deadlines {
    /// From the `continue` request to the first delta.
    pub first_delta_ms: f64,
    /// After the first delta: playback has drained and no delta came for this long.
    pub stall_ms: f64,
    /// From the endpoint: the cloud request is cancelled and the turn falls back; at twice
    /// this the turn ends whatever it is waiting for (playback that never drains).
    pub wall_ms: f64,
}

impl Default for Deadlines {
    fn default() -> Self {
        Self { first_delta_ms: 5_000.0, stall_ms: 2_500.0, wall_ms: 90_000.0 }
    }
}

/// Something the driver must do.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Run ASR on the utterance that just ended.
    Transcribe,
    /// Ask the μLM for an opener of `words` words.
    WriteOpener { transcript: String, words: usize },
    /// Send the cloud `continue` request.
    SendContinue { transcript: String, opener: String, opener_complete: bool },
    /// Synthesize and queue `text` for playback, after everything queued before it.
    Speak { text: String, part: Part },
    /// Ask the μLM to finish `prefix` (what was spoken) with a few words.
    FinishLocally { transcript: String, prefix: String },
    /// Stop playback now and drop the queue (barge-in).
    StopPlayback,
    /// Cancel the in-flight cloud request.
    CancelCloud,
    /// The turn is over; its record is final.
    EndTurn,
}

/// Turn settings (the `[turn]` table of the config).
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TurnConfig {
    /// Choose the opener length from the cloud's observed first-delta latency.
    pub adaptive_opener: bool,
    /// Opener words when not adaptive, and before the first observation.
    pub opener_words: usize,
    pub min_opener_words: usize,
    pub max_opener_words: usize,
    /// Speaking rate used by the adaptive budget, in words per second.
    pub speech_words_per_s: f64,
    /// Silence after the queue drains, with no cloud text yet, before the filler (ms; 0 = never).
    pub filler_after_ms: f64,
    /// The filler: short and natural, spoken at most once a turn.
    pub filler_text: String,
    /// Spoken after the local finish when the cloud failed.
    pub fallback_text: String,
    /// Start ASR and the opener at the VAD pause that precedes the endpoint (the hangover
    /// then hides their cost); the reply still never plays before the endpoint.
    pub speculative: bool,
    /// Speak the μLM's opener first (the product). `false` is the cloud-only baseline of
    /// `bench pipeline`: ASR → cloud → TTS, no opener, no filler, and on a cloud failure only
    /// the fallback line.
    pub local_opener: bool,
    /// The first continuation chunk is cut after this many words when no clause boundary has
    /// come yet (0 = wait for one). The continuation picks up the opener mid-sentence, so an
    /// early cut costs little phrasing and shortens the opener → continuation gap.
    pub continuation_first_words: usize,
    /// An opener of more than this many words + 1 is spoken as two chunks, the first N words
    /// then the rest (synthesized while the first plays), so a long opener's first sound does
    /// not wait for all of its synthesis. 0 = one chunk.
    pub opener_first_words: usize,
    /// The conversation ends (its history is dropped) after this long without speech, in s;
    /// 0 keeps no history (every question stands alone).
    pub conversation_idle_s: f64,
    /// Saying one of these (case and punctuation ignored, at most two more words) ends the
    /// conversation; the phrase itself starts the new one.
    pub conversation_end_phrases: Vec<String>,
    /// Most earlier turns (question + reply) sent with each cloud `continue`.
    pub cloud_history_turns: usize,
    /// Most earlier-turn tokens sent with each cloud `continue` (approximate: words).
    pub cloud_history_tokens: usize,
    /// Most earlier-turn tokens in the μLM's prompt (its own tokens); the model's context
    /// (minus the opener's tokens and the question) caps it too. More costs prefill time.
    pub mulm_history_tokens: usize,
    /// A cloud that goes quiet mid-reply: once playback has drained and no delta came for
    /// this long (ms), the request is cancelled and the μLM finishes the sentence locally.
    pub cloud_stall_ms: f64,
}

impl Default for TurnConfig {
    fn default() -> Self {
        Self {
            adaptive_opener: true,
            opener_words: 6,
            min_opener_words: 4,
            max_opener_words: 8,
            speech_words_per_s: 2.5,
            filler_after_ms: 1_200.0,
            filler_text: "Let me think about that.".into(),
            fallback_text: "I can't reach my cloud brain right now, so that's the short answer.".into(),
            speculative: true,
            local_opener: true,
            continuation_first_words: 5,
            opener_first_words: 4,
            conversation_idle_s: 120.0,
            conversation_end_phrases: vec!["new conversation".into(), "forget that".into()],
            cloud_history_turns: 8,
            cloud_history_tokens: 1_500,
            mulm_history_tokens: 256,
            cloud_stall_ms: 2_500.0,
        }
    }
}

impl TurnConfig {
    /// Range checks; the message names the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.min_opener_words > self.max_opener_words {
            return Err(ConfigError::invalid(
                "turn.min_opener_words/max_opener_words",
                format!(" = {}/{} (need min <= max)", self.min_opener_words, self.max_opener_words),
            ));
        }
        if self.conversation_end_phrases.len() > 32 || self.conversation_end_phrases.iter().any(|p| p.trim().is_empty() || p.len() > 100) {
            return Err(ConfigError::invalid(
                "turn.conversation_end_phrases",
                ": at most 32 phrases, each non-empty and at most 100 bytes".into(),
            ));
        }
        for (key, v, range) in [
            ("turn.min_opener_words", self.min_opener_words, 1..=16),
            ("turn.max_opener_words", self.max_opener_words, 1..=16),
            ("turn.opener_words", self.opener_words, 1..=16),
            ("turn.opener_first_words", self.opener_first_words, 0..=16),
            ("turn.continuation_first_words", self.continuation_first_words, 0..=64),
            ("turn.cloud_history_turns", self.cloud_history_turns, 0..=64),
            // The gateway's frames are 64 KiB.
            ("turn.cloud_history_tokens", self.cloud_history_tokens, 0..=4_000),
            ("turn.mulm_history_tokens", self.mulm_history_tokens, 0..=4_096),
        ] {
            ConfigError::check_range(key, v, range)?;
        }
        for (key, v, range) in [
            ("turn.speech_words_per_s", self.speech_words_per_s, 0.5..=6.0),
            ("turn.filler_after_ms", self.filler_after_ms, 0.0..=60_000.0),
            ("turn.conversation_idle_s", self.conversation_idle_s, 0.0..=86_400.0),
            ("turn.cloud_stall_ms", self.cloud_stall_ms, 100.0..=60_000.0),
        ] {
            ConfigError::check_range(key, v, range)?;
        }
        Ok(())
    }
}

/// What one turn did, for `timeline.json` (times in ms on the input clock; None if the
/// stage never happened).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TurnRecord {
    pub transcript: String,
    pub opener_text: String,
    pub continuation_text: String,
    pub repair: bool,
    pub fallback: bool,
    pub barged_in: bool,
    pub filler: bool,
    pub opener_words: usize,
    pub speech_end_ms: Option<f64>,
    pub endpoint_ms: Option<f64>,
    pub asr_done_ms: Option<f64>,
    pub opener_ready_ms: Option<f64>,
    pub cloud_first_delta_ms: Option<f64>,
    pub turn_end_ms: Option<f64>,
    /// The opener gate's score of the μLM's opener (None: not scored).
    pub gate_score: Option<f32>,
    /// The harmful-request check's margin for the transcript (> 0: flagged; None: off).
    pub harm_score: Option<f32>,
    /// The gate replaced the μLM's opener by a bridge; `mulm_opener` is what it replaced.
    pub gate_fired: bool,
    pub mulm_opener: String,
    /// Why the cloud's part ended early (failure, timeout, stall, wall limit), if it did.
    pub cloud_failure: Option<String>,
    /// Events that did not apply in the phase they came in (`"kind in phase"`, at most
    /// [`MAX_IGNORED_EVENTS`]; `Tick`s are not recorded).
    pub ignored_events: Vec<String>,
}

/// Most entries kept in [`TurnRecord::ignored_events`].
pub const MAX_IGNORED_EVENTS: usize = 16;

/// The opener gate as one turn applies it: the threshold and the bridge to speak instead
/// (chosen by the driver for this turn, see [`lm::gate::bridge`]).
#[derive(Debug, Clone, PartialEq)]
pub struct GatePolicy {
    pub min_score: f32,
    pub bridge: String,
}

/// The cloud request of a turn in [`Phase::Replying`] (it is open exactly in that phase).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Stream {
    /// When the `continue` request went out.
    sent_ms: f64,
    /// Everything queued has played (a `PlaybackIdle` came after the last `Speak`).
    drained: bool,
    /// Since when the listener hears nothing new: playback drained and no delta since
    /// (the filler and the stall deadline count from here; speaking the filler does not reset it).
    silent_since: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    /// Waiting for the user to finish speaking.
    Listening,
    Transcribing,
    WritingOpener,
    /// Opener queued; the cloud request is open and streaming (or not yet started).
    Replying(Stream),
    /// Cloud failed; waiting for the μLM's local finish.
    FinishingLocally,
    /// Everything is queued; waiting for playback to drain.
    Draining,
    Done,
}

impl Phase {
    fn name(&self) -> &'static str {
        match self {
            Phase::Listening => "listening",
            Phase::Transcribing => "transcribing",
            Phase::WritingOpener => "writing_opener",
            Phase::Replying(_) => "replying",
            Phase::FinishingLocally => "finishing_locally",
            Phase::Draining => "draining",
            Phase::Done => "done",
        }
    }
}

/// One turn's state. Create with [`Turn::new`] and feed events with [`Turn::on`].
#[derive(Debug, Clone)]
pub struct Turn {
    cfg: TurnConfig,
    deadlines: Deadlines,
    words: usize,
    phase: Phase,
    chunker: tts::chunk::Chunker,
    rec: TurnRecord,
    gate: Option<GatePolicy>,
}

/// The opener as spoken chunks: one chunk, or the first `first_words` words (cut earlier after
/// a word that ends with punctuation, where a pause is natural) and the rest, when more than
/// `first_words + 1` words (a one-word tail is not worth a seam). 0 = never split.
fn split_opener(opener: &str, first_words: usize) -> Vec<String> {
    let words: Vec<&str> = opener.split_whitespace().collect();
    if first_words == 0 || words.len() <= first_words + 1 {
        return vec![opener.to_string()];
    }
    let cut = (1..=first_words).rev().find(|&n| words[n - 1].ends_with([',', ';', ':', '.', '!', '?'])).unwrap_or(first_words);
    vec![words[..cut].join(" "), words[cut..].join(" ")]
}

fn ends_sentence(text: &str) -> bool {
    text.trim_end().ends_with(['.', '!', '?', '"', '\u{201d}'])
}

impl Turn {
    /// A new turn; `opener_words` is the budget decided for it (see [`budget::opener_words`]).
    /// Its deadlines are [`Deadlines::default`] until [`Turn::with_deadlines`].
    pub fn new(cfg: TurnConfig, opener_words: usize) -> Self {
        let chunker = tts::chunk::Chunker::with_config(tts::chunk::ChunkerConfig {
            first_max_words: cfg.continuation_first_words,
            ..Default::default()
        });
        Self {
            words: opener_words,
            deadlines: Deadlines { stall_ms: cfg.cloud_stall_ms, ..Deadlines::default() },
            cfg,
            phase: Phase::Listening,
            chunker,
            rec: TurnRecord { opener_words, ..TurnRecord::default() },
            gate: None,
        }
    }

    /// The same turn with the opener gate on: a scored opener below `policy.min_score` is
    /// replaced by `policy.bridge`, spoken and sent to the cloud in its place.
    pub fn with_gate(mut self, policy: Option<GatePolicy>) -> Self {
        self.gate = policy;
        self
    }

    /// The same turn with these deadlines.
    pub fn with_deadlines(mut self, deadlines: Deadlines) -> Self {
        self.deadlines = deadlines;
        self
    }

    /// The record so far (final once [`Turn::is_done`]).
    pub fn record(&self) -> &TurnRecord {
        &self.rec
    }

    /// True after [`Action::EndTurn`] was emitted.
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// True while reply audio may be playing or pending (barge-in applies).
    pub fn is_replying(&self) -> bool {
        matches!(self.phase, Phase::Replying(_) | Phase::FinishingLocally | Phase::Draining)
    }

    fn speak(&mut self, out: &mut Vec<Action>, text: String, part: Part) {
        if text.trim().is_empty() {
            return;
        }
        if let Phase::Replying(s) = &mut self.phase {
            s.drained = false;
            if part != Part::Filler {
                s.silent_since = None;
            }
        }
        out.push(Action::Speak { text, part });
    }

    fn end(&mut self, out: &mut Vec<Action>, at_ms: f64) {
        self.phase = Phase::Done;
        self.rec.turn_end_ms = Some(at_ms);
        out.push(Action::EndTurn);
    }

    fn ignore(&mut self, ev: &Event) {
        if !matches!(ev, Event::Tick { .. }) && self.rec.ignored_events.len() < MAX_IGNORED_EVENTS {
            self.rec.ignored_events.push(format!("{} in {}", ev.kind(), self.phase.name()));
        }
    }

    fn start_stream(&mut self, at_ms: f64) {
        self.phase = Phase::Replying(Stream { sent_ms: at_ms, drained: false, silent_since: None });
    }

    /// The cloud is gone: finish the sentence locally if it is open, then the fallback.
    /// `cancel`: the request is still open and must be cancelled first.
    fn cloud_failed(&mut self, out: &mut Vec<Action>, reason: String, cancel: bool) {
        if cancel {
            out.push(Action::CancelCloud);
        }
        self.rec.fallback = true;
        self.rec.cloud_failure = Some(reason);
        // Leave `Replying` before speaking what the chunker held: the stream is over.
        self.phase = Phase::Draining;
        for chunk in self.chunker.finish() {
            self.speak(out, chunk, Part::Continuation);
        }
        // Deltas carry their own leading space (the cloud fixes the seam); collapse runs.
        let spoken = format!("{} {}", self.rec.opener_text, self.rec.continuation_text).split_whitespace().collect::<Vec<_>>().join(" ");
        if ends_sentence(&spoken) || !self.cfg.local_opener {
            let fb = self.cfg.fallback_text.clone();
            self.speak(out, fb, Part::Fallback);
        } else {
            self.phase = Phase::FinishingLocally;
            out.push(Action::FinishLocally { transcript: self.rec.transcript.clone(), prefix: spoken });
        }
    }

    /// The deadlines and the filler, at `at_ms`.
    fn on_tick(&mut self, out: &mut Vec<Action>, at_ms: f64) {
        let age = self.rec.endpoint_ms.map_or(0.0, |t0| at_ms - t0);
        if self.phase != Phase::Listening && age >= 2.0 * self.deadlines.wall_ms {
            // Nothing the turn waits for came (playback that never drains, a lost local
            // finish): stop whatever is left.
            if let Phase::Replying(_) = self.phase {
                out.push(Action::CancelCloud);
            }
            self.rec.cloud_failure.get_or_insert_with(|| "turn wall-clock limit".into());
            out.push(Action::StopPlayback);
            self.end(out, at_ms);
            return;
        }
        let Phase::Replying(s) = self.phase else { return };
        let waited = at_ms - s.sent_ms;
        let first = self.rec.cloud_first_delta_ms.is_some();
        if age >= self.deadlines.wall_ms {
            self.cloud_failed(out, "turn wall-clock limit".into(), true);
        } else if !first && waited >= self.deadlines.first_delta_ms {
            self.cloud_failed(out, format!("no first delta after {waited:.0} ms"), true);
        } else if let Some(since) = s.silent_since {
            let silent = at_ms - since;
            if first && silent >= self.deadlines.stall_ms {
                self.cloud_failed(out, format!("the cloud stalled: {silent:.0} ms of silence mid-reply"), true);
            } else if !first
                && !self.rec.filler
                && self.cfg.filler_after_ms > 0.0
                && self.cfg.local_opener
                && silent >= self.cfg.filler_after_ms
            {
                self.rec.filler = true;
                let f = self.cfg.filler_text.clone();
                self.speak(out, f, Part::Filler);
            }
        }
    }

    /// Feeds one event; returns the actions to perform, in order.
    pub fn on(&mut self, ev: Event) -> Vec<Action> {
        let mut out = Vec::new();
        let applied = self.apply(&ev, &mut out);
        if !applied {
            self.ignore(&ev);
        }
        out
    }

    /// Applies `ev`; false when it does not apply in the current phase.
    fn apply(&mut self, ev: &Event, out: &mut Vec<Action>) -> bool {
        match (ev, self.phase) {
            (_, Phase::Done) => false,
            // Speech before the endpoint: the turn has not begun; nothing to do.
            (Event::SpeechStarted { .. }, Phase::Listening) => true,
            (Event::SpeechStarted { at_ms }, phase) if self.is_replying() => {
                // Barge-in: the user talks over the reply.
                self.rec.barged_in = true;
                out.push(Action::StopPlayback);
                if let Phase::Replying(_) = phase {
                    out.push(Action::CancelCloud);
                }
                self.end(out, *at_ms);
                true
            }
            (Event::SpeechEnded { last_voiced_ms, endpoint_ms }, Phase::Listening) => {
                self.rec.speech_end_ms = Some(*last_voiced_ms);
                self.rec.endpoint_ms = Some(*endpoint_ms);
                self.phase = Phase::Transcribing;
                out.push(Action::Transcribe);
                true
            }
            (Event::Transcript { text, at_ms }, Phase::Transcribing) => {
                self.rec.asr_done_ms = Some(*at_ms);
                self.rec.transcript = text.trim().to_string();
                if self.rec.transcript.is_empty() {
                    // Nothing intelligible: no reply (a cough, a door).
                    self.end(out, *at_ms);
                } else if !self.cfg.local_opener {
                    // Cloud-only: the cloud answers from scratch; nothing is spoken before it.
                    self.start_stream(*at_ms);
                    out.push(Action::SendContinue {
                        transcript: self.rec.transcript.clone(),
                        opener: String::new(),
                        opener_complete: false,
                    });
                } else {
                    self.phase = Phase::WritingOpener;
                    out.push(Action::WriteOpener { transcript: self.rec.transcript.clone(), words: self.words });
                }
                true
            }
            (Event::Opener { text, complete, at_ms, score }, Phase::WritingOpener) => {
                self.on_opener(out, text, *complete, *at_ms, *score);
                true
            }
            (Event::CloudDelta { text, at_ms }, Phase::Replying(s)) => {
                self.rec.cloud_first_delta_ms.get_or_insert(*at_ms);
                self.rec.continuation_text.push_str(text);
                // New text restarts the silence clock (when nothing is playing).
                self.phase = Phase::Replying(Stream { silent_since: s.drained.then_some(*at_ms), ..s });
                for chunk in self.chunker.push(text) {
                    self.speak(out, chunk, Part::Continuation);
                }
                true
            }
            (Event::CloudRepair { .. }, Phase::Replying(_)) => {
                self.rec.repair = true;
                true
            }
            (Event::CloudDone { .. }, Phase::Replying(_)) => {
                self.phase = Phase::Draining;
                for chunk in self.chunker.finish() {
                    self.speak(out, chunk, Part::Continuation);
                }
                true
            }
            (Event::CloudFailed { reason, .. }, Phase::Replying(_)) => {
                self.cloud_failed(out, reason.clone(), false);
                true
            }
            (Event::CloudTimedOut { waited_ms, .. }, Phase::Replying(_)) => {
                self.cloud_failed(out, format!("no first delta after {waited_ms:.0} ms (client timer)"), true);
                true
            }
            (Event::LocalFinish { text, .. }, Phase::FinishingLocally) => {
                let mut t = text.trim().to_string();
                if !t.is_empty() && !ends_sentence(&t) {
                    t.push('.');
                }
                self.phase = Phase::Draining;
                self.speak(out, t, Part::LocalFinish);
                let fb = self.cfg.fallback_text.clone();
                self.speak(out, fb, Part::Fallback);
                true
            }
            (Event::PlaybackIdle { at_ms }, Phase::Draining) => {
                self.end(out, *at_ms);
                true
            }
            (Event::PlaybackIdle { at_ms }, Phase::Replying(s)) => {
                self.phase = Phase::Replying(Stream { drained: true, silent_since: s.silent_since.or(Some(*at_ms)), ..s });
                true
            }
            (Event::Tick { at_ms }, _) => {
                self.on_tick(out, *at_ms);
                true
            }
            _ => false,
        }
    }

    fn on_opener(&mut self, out: &mut Vec<Action>, text: &str, complete: bool, at_ms: f64, score: Option<lm::gate::GateScore>) {
        self.rec.opener_ready_ms = Some(at_ms);
        self.rec.mulm_opener = text.trim().to_string();
        self.rec.opener_text = self.rec.mulm_opener.clone();
        self.rec.gate_score = score.map(|s| s.score);
        self.rec.harm_score = score.and_then(|s| s.harm);
        let mut complete = complete;
        if let (Some(g), Some(s)) = (&self.gate, score) {
            if lm::gate::fires(&s, g.min_score) {
                self.rec.gate_fired = true;
                self.rec.opener_text = g.bridge.trim().to_string();
                complete = false;
            }
        }
        // Cloud first: its latency is what the opener's audio has to cover.
        self.start_stream(at_ms);
        out.push(Action::SendContinue {
            transcript: self.rec.transcript.clone(),
            opener: self.rec.opener_text.clone(),
            opener_complete: complete,
        });
        let opener = self.rec.opener_text.clone();
        for part in split_opener(&opener, self.cfg.opener_first_words) {
            self.speak(out, part, Part::Opener);
        }
    }
}

#[cfg(test)]
mod tests;
