//! One turn in progress on the live loop: the state machine, what it needs to act (the
//! utterance's audio, the cloud request), where its speech landed, and its report when it
//! ends (metrics and one log line).

use cloud::protocol::RequestId;
use serde::{Deserialize, Serialize};

use super::speaker::Placed;
use crate::conversation::ContextUse;
use crate::metrics::Metrics;
use crate::turn::{Action, Part, Turn};

/// One ended turn's timings, as `firstword run --report-json` writes them (ms on the stream
/// clock; no words: transcripts are logged only on request).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TurnSummary {
    /// 1-based turn number.
    pub turn: usize,
    /// Last voiced sample of the question → first reply sample played (ms); None without audio.
    pub voice_to_voice_ms: Option<f64>,
    /// Last voiced sample → the endpoint decision (ms).
    pub endpoint_ms_after_speech: f64,
    /// End of the opener's audio → start of the continuation's (ms).
    pub handoff_gap_ms: Option<f64>,
    pub opener_words: usize,
    pub repair: bool,
    pub fallback: bool,
    pub filler: bool,
    pub barged_in: bool,
    /// The user resumed: the next turn answers this question too.
    pub merged_into_next: bool,
}

/// The turn being answered. Times in ms on the stream clock.
pub struct ActiveTurn {
    pub turn: Turn,
    /// 1-based turn number.
    pub number: usize,
    pub last_voiced_ms: f64,
    pub endpoint_ms: f64,
    /// The utterance at 16 kHz (speech start to endpoint).
    pub audio: Vec<f32>,
    pub cloud: Option<RequestId>,
    pub cloud_sent_ms: Option<f64>,
    /// Each piece of speech queued, in order.
    pub segments: Vec<(Part, Placed)>,
    /// `PlaybackIdle` was sent since the last piece was queued.
    pub idle_notified: bool,
    /// How much of the conversation this turn sent.
    pub context: ContextUse,
    /// The transcript was an end phrase: the conversation ended with it.
    pub end_phrase: bool,
    /// The user resumed right after this question (`endpoint.resume_merge_ms`): the next turn
    /// answers both parts, and this one is not kept in the conversation.
    pub merged_into_next: bool,
}

impl ActiveTurn {
    /// A turn for the utterance that ended at `endpoint_ms`.
    pub fn new(turn: Turn, number: usize, last_voiced_ms: f64, endpoint_ms: f64, audio: Vec<f32>) -> Self {
        Self {
            turn,
            number,
            last_voiced_ms,
            endpoint_ms,
            audio,
            cloud: None,
            cloud_sent_ms: None,
            segments: Vec::new(),
            idle_notified: false,
            context: ContextUse::default(),
            end_phrase: false,
            merged_into_next: false,
        }
    }

    /// This turn's timings (see [`TurnSummary`]).
    pub fn summary(&self) -> TurnSummary {
        let r = self.turn.record();
        let first = self.segments.first().map(|(_, p)| p.start_ms);
        let opener_end = self.segments.iter().filter(|(p, _)| *p == Part::Opener).map(|(_, s)| s.end_ms).reduce(f64::max);
        let cont_start = self.segments.iter().find(|(p, _)| *p == Part::Continuation).map(|(_, s)| s.start_ms);
        TurnSummary {
            turn: self.number,
            voice_to_voice_ms: first.map(|s| s - self.last_voiced_ms),
            endpoint_ms_after_speech: self.endpoint_ms - self.last_voiced_ms,
            handoff_gap_ms: opener_end.zip(cont_start).map(|(o, c)| c - o),
            opener_words: r.opener_words,
            repair: r.repair,
            fallback: r.fallback,
            filler: r.filler,
            barged_in: r.barged_in,
            merged_into_next: self.merged_into_next,
        }
    }

    /// Records the ended turn in `m`, prints its line (timings and flags; the words only to
    /// the log and only with `transcripts`), and returns the cloud's first-delta latency
    /// after the opener (ms) for the next opener budget.
    pub fn report(&self, m: &Metrics, transcripts: bool) -> Option<f64> {
        let r = self.turn.record();
        let sum = self.summary();
        m.turns.inc();
        for (flag, c) in [(r.repair, &m.repairs), (r.fallback, &m.fallbacks), (r.filler, &m.fillers), (r.barged_in, &m.barge_ins)] {
            if flag {
                c.inc();
            }
        }
        Metrics::observe_ms(&m.vad_endpoint, self.endpoint_ms - self.last_voiced_ms);
        if let Some(p) = self.segments.first().map(|(_, p)| *p) {
            Metrics::observe_ms(&m.tts_first_audio, p.ready_ms - self.endpoint_ms);
        }
        if let Some(v) = sum.voice_to_voice_ms {
            Metrics::observe_ms(&m.voice_to_voice, v);
        }
        if let (Some(d), Some(sent)) = (r.cloud_first_delta_ms, self.cloud_sent_ms) {
            Metrics::observe_ms(&m.cloud_first_delta, d - sent);
        }
        let gap = sum.handoff_gap_ms;
        if let Some(g) = gap {
            Metrics::observe_ms(&m.handoff_gap, g);
        }
        let fmt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.0}"));
        let flags: String = [(r.repair, ", repair"), (r.fallback, ", fallback"), (r.filler, ", filler"), (r.barged_in, ", barge-in")]
            .iter()
            .filter(|(f, _)| *f)
            .map(|(_, s)| *s)
            .chain(self.merged_into_next.then_some(", continued in the next turn"))
            .collect();
        let c = &self.context;
        println!(
            "turn {}: voice-to-voice {} ms, handoff gap {} ms, opener {} words{flags}, context {} turns (μLM {} turns, {} tokens; cloud ~{} tokens)",
            self.number,
            fmt(sum.voice_to_voice_ms),
            fmt(gap),
            r.opener_words,
            c.context_turns,
            c.mulm_context_turns,
            c.mulm_prompt_tokens,
            c.cloud_request_tokens,
        );
        if transcripts {
            tracing::info!(turn = self.number, "answered {:?} with {:?} + {:?}", r.transcript, r.opener_text, r.continuation_text.trim());
        }
        r.cloud_first_delta_ms.zip(r.opener_ready_ms).map(|(d, o)| d - o)
    }
}

/// An action's name for debug logs (never its text: transcripts are logged only on request).
pub fn action_name(a: &Action) -> &'static str {
    match a {
        Action::Transcribe => "transcribe",
        Action::WriteOpener { .. } => "write opener",
        Action::SendContinue { .. } => "send continue",
        Action::Speak { part: Part::Opener, .. } => "speak opener",
        Action::Speak { part: Part::Continuation, .. } => "speak continuation",
        Action::Speak { part: Part::Filler, .. } => "speak filler",
        Action::Speak { part: Part::LocalFinish, .. } => "speak local finish",
        Action::Speak { part: Part::Fallback, .. } => "speak fallback",
        Action::FinishLocally { .. } => "finish locally",
        Action::StopPlayback => "stop playback",
        Action::CancelCloud => "cancel cloud",
        Action::EndTurn => "end turn",
    }
}
