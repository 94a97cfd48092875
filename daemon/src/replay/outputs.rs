//! What replay writes: `timeline.json`, `timeline.svg` and `reply.wav` (user and reply
//! audio mixed on one 16 kHz timeline).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

use super::Utterance;
use crate::conversation::ContextUse;
use crate::turn::{Part, TurnRecord};
use tts::heard::{heard_text, Spoken};

/// A piece of reply speech on the input clock (ms).
#[derive(Debug, Clone, Serialize)]
pub struct Segment {
    pub part: Part,
    pub text: String,
    pub start_ms: f64,
    pub end_ms: f64,
    /// When its audio was synthesized (it cannot start earlier).
    pub ready_ms: f64,
    #[serde(skip)]
    pub samples: Vec<f32>,
}

/// One turn of `timeline.json`; all times in ms on the input audio's clock.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TurnTimeline {
    pub index: usize,
    pub transcript: String,
    pub opener_text: String,
    /// The μLM's own opener; differs from `opener_text` when the gate replaced it.
    pub mulm_opener: String,
    /// The opener gate's score of the μLM's opener, and whether it fired.
    pub gate_score: Option<f32>,
    /// The harmful-request check's margin for the transcript (> 0: flagged; absent: off).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub harm_score: Option<f32>,
    pub gate_fired: bool,
    pub continuation_text: String,
    pub repair: bool,
    pub fallback: bool,
    pub filler: bool,
    /// Why the cloud's part ended early (error, timeout, stall, wall limit), if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cloud_failure: Option<String>,
    /// Events the turn machine did not apply in their phase (bounded; see `TurnRecord`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ignored_events: Vec<String>,
    pub barged_in: bool,
    /// The user resumed within `endpoint.resume_merge_ms` of this question's last word: its
    /// reply stopped, and the next turn answers both parts as one question.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub merged_into_next: bool,
    /// This turn's question continues the one of turn `merged_from` (its audio and
    /// transcript cover both parts).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merged_from: Option<usize>,
    pub speculative: bool,
    pub opener_words: usize,
    pub speech_start_ms: f64,
    pub speech_end_ms: f64,
    pub endpoint_ms: f64,
    /// Semantic endpointing's judgement of the pause that ended the turn (`complete`:
    /// ended early; `unfinished`: waited longer), None when the VAD's hangover decided.
    pub endpoint_judged: Option<lm::endpoint::Completeness>,
    /// When the turn's work started: the endpoint, or the VAD pause that it confirmed when
    /// the work was speculative (ms on the input clock).
    pub work_start_ms: f64,
    pub asr_done_ms: Option<f64>,
    pub opener_ready_ms: Option<f64>,
    pub first_audio_ms: Option<f64>,
    pub cloud_first_delta_ms: Option<f64>,
    pub continuation_audio_ms: Option<f64>,
    pub handoff_gap_ms: Option<f64>,
    pub turn_end_ms: Option<f64>,
    /// Last voiced sample of the question → first reply sample.
    pub voice_to_voice_ms: Option<f64>,
    /// The reply as the user heard it (cut at the last word played on barge-in): what the
    /// conversation keeps.
    pub heard_text: String,
    /// How much of the conversation this turn sent (earlier turns, token counts).
    #[serde(flatten)]
    pub context: ContextUse,
    /// The conversation ended before this turn: "idle" (`turn.conversation_idle_s`) or
    /// "phrase" (this turn said one of `turn.conversation_end_phrases`).
    pub conversation_end: Option<&'static str>,
    pub segments: Vec<Segment>,
}

impl TurnTimeline {
    /// A turn before any of its work: the utterance's times (ms on the input clock) and its
    /// opener budget (words); `speculative` when the work starts at the VAD pause.
    pub fn new(index: usize, u: &Utterance, speculative: bool, opener_words: usize) -> Self {
        Self {
            index,
            speculative,
            opener_words,
            speech_start_ms: u.start_ms,
            speech_end_ms: u.last_voiced_ms,
            endpoint_ms: u.endpoint_ms,
            endpoint_judged: u.judged,
            work_start_ms: if speculative { u.pause_ms.unwrap_or(u.endpoint_ms) } else { u.endpoint_ms },
            ..Self::default()
        }
    }

    /// What of the segments was heard if playback stopped at `stop_ms` (None: all of it).
    fn heard(&self, stop_ms: Option<f64>) -> String {
        let pieces: Vec<Spoken<'_>> = self.segments.iter().map(|s| Spoken { text: &s.text, start: s.start_ms, end: s.end_ms }).collect();
        heard_text(&pieces, stop_ms)
    }

    /// Copies the state machine's record and derives the audio measures from the segments.
    pub fn fill_from(&mut self, r: &TurnRecord) {
        self.transcript = r.transcript.clone();
        self.opener_text = r.opener_text.clone();
        self.mulm_opener = r.mulm_opener.clone();
        self.gate_score = r.gate_score;
        self.harm_score = r.harm_score;
        self.gate_fired = r.gate_fired;
        self.continuation_text = r.continuation_text.trim().to_string();
        self.repair = r.repair;
        self.fallback = r.fallback;
        self.filler = r.filler;
        self.cloud_failure = r.cloud_failure.clone();
        self.ignored_events = r.ignored_events.clone();
        self.asr_done_ms = r.asr_done_ms;
        self.opener_ready_ms = r.opener_ready_ms;
        self.cloud_first_delta_ms = r.cloud_first_delta_ms;
        self.heard_text = self.heard(None);
        self.derive();
    }

    fn derive(&mut self) {
        self.first_audio_ms = self.segments.first().map(|s| s.start_ms);
        self.voice_to_voice_ms = self.first_audio_ms.map(|f| f - self.speech_end_ms);
        let opener_end = self
            .segments
            .iter()
            .filter(|s| s.part == Part::Opener)
            .map(|s| s.end_ms)
            .fold(None, |a: Option<f64>, e| Some(a.map_or(e, |a| a.max(e))));
        self.continuation_audio_ms = self.segments.iter().find(|s| s.part == Part::Continuation).map(|s| s.start_ms);
        self.handoff_gap_ms = match (opener_end, self.continuation_audio_ms) {
            (Some(o), Some(c)) => Some(c - o),
            _ => None,
        };
        self.turn_end_ms = self.segments.last().map(|s| s.end_ms).or(self.opener_ready_ms);
    }

    /// The user spoke again at `at_ms`: playback stops there (barge-in).
    pub fn barge_in_at(&mut self, at_ms: f64) {
        if self.turn_end_ms.is_none_or(|e| at_ms >= e) {
            return;
        }
        self.barged_in = true;
        self.heard_text = self.heard(Some(at_ms));
        self.segments.retain(|s| s.start_ms < at_ms);
        if let Some(last) = self.segments.last_mut() {
            if last.end_ms > at_ms {
                let rate = last.samples.len() as f64 / (last.end_ms - last.start_ms).max(1e-9);
                last.samples.truncate(((at_ms - last.start_ms) * rate) as usize);
                last.end_ms = at_ms;
            }
        }
        self.derive();
        self.turn_end_ms = Some(at_ms);
    }
}

#[derive(Serialize)]
struct TimelineFile<'a> {
    input_ms: f64,
    /// How the device's work was placed on the timeline (`wall` or `modeled`).
    clock: super::clock::ClockMode,
    turns: &'a [TurnTimeline],
}

/// Writes reply.wav, timeline.json and timeline.svg into `dir`.
pub fn write_all(dir: &Path, input: &[f32], turns: &[TurnTimeline], tts_rate: u32, clock: super::clock::ClockMode) -> Result<()> {
    let [wav, json, svg] = super::output_paths(dir);
    let input_ms = input.len() as f64 / 16.0;
    let file = TimelineFile { input_ms, clock, turns };
    std::fs::write(&json, serde_json::to_string_pretty(&file)?).with_context(|| format!("writing {}", json.display()))?;
    let end_ms = turns.iter().filter_map(|t| t.turn_end_ms).fold(input_ms, f64::max) + 300.0;
    let mut mix = vec![0.0f32; (end_ms * 16.0) as usize];
    for (m, x) in mix.iter_mut().zip(input) {
        *m = *x;
    }
    for s in turns.iter().flat_map(|t| &t.segments) {
        let y = audio::resample::resample(&s.samples, tts_rate, 16_000)?;
        let off = (s.start_ms * 16.0) as usize;
        for (i, v) in y.iter().enumerate() {
            if let Some(m) = mix.get_mut(off + i) {
                *m = (*m + v).clamp(-1.0, 1.0);
            }
        }
    }
    audio::write_wav(&wav, &mix, 16_000).with_context(|| format!("writing {}", wav.display()))?;
    std::fs::write(&svg, render_svg(turns, end_ms)).with_context(|| format!("writing {}", svg.display()))?;
    Ok(())
}

fn color(part: Part) -> &'static str {
    match part {
        Part::Opener => "#e07a1f",
        Part::Continuation => "#2f7ed8",
        Part::Filler => "#9b59b6",
        Part::LocalFinish => "#8e8e8e",
        Part::Fallback => "#c0392b",
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A picture of the turns: user speech, opener, continuation and gaps on one time axis.
pub fn render_svg(turns: &[TurnTimeline], end_ms: f64) -> String {
    let (w, left, row_h) = (1200.0, 110.0, 26.0);
    let scale = (w - left - 20.0) / end_ms.max(1.0);
    let x = |ms: f64| left + ms * scale;
    let h = 60.0 + row_h * 3.0 + 22.0 * turns.len() as f64 + 30.0;
    let mut s = String::new();
    let _ = write!(s, r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">"#);
    let _ = write!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    for (i, label) in ["user", "opener", "continuation"].iter().enumerate() {
        let _ = write!(s, r#"<text x="8" y="{}">{label}</text>"#, 40.0 + row_h * i as f64 + 16.0);
    }
    let mut t = 0.0;
    while t <= end_ms {
        let _ = write!(
            s,
            r##"<line x1="{0}" x2="{0}" y1="30" y2="{1}" stroke="#eee"/><text x="{0}" y="24" fill="#888">{2:.0}s</text>"##,
            x(t),
            40.0 + row_h * 3.0,
            t / 1000.0
        );
        t += 1000.0;
    }
    for turn in turns {
        let _ = write!(
            s,
            r##"<rect x="{}" y="40" width="{}" height="20" fill="#27ae60"><title>{}</title></rect>"##,
            x(turn.speech_start_ms),
            ((turn.speech_end_ms - turn.speech_start_ms) * scale).max(1.0),
            esc(&turn.transcript)
        );
        let _ = write!(
            s,
            r##"<line x1="{0}" x2="{0}" y1="36" y2="{1}" stroke="#333" stroke-dasharray="3,2"/>"##,
            x(turn.endpoint_ms),
            40.0 + row_h * 3.0
        );
        for seg in &turn.segments {
            let row = if seg.part == Part::Opener { 1.0 } else { 2.0 };
            let _ = write!(
                s,
                r#"<rect x="{}" y="{}" width="{}" height="20" fill="{}"><title>{}</title></rect>"#,
                x(seg.start_ms),
                40.0 + row_h * row,
                ((seg.end_ms - seg.start_ms) * scale).max(1.0),
                color(seg.part),
                esc(&seg.text)
            );
        }
    }
    let mut y = 40.0 + row_h * 3.0 + 20.0;
    for turn in turns {
        let v2v = turn.voice_to_voice_ms.map_or("-".into(), |v| format!("{v:.0} ms"));
        let gap = turn.handoff_gap_ms.map_or("-".into(), |v| format!("{v:.0} ms"));
        let _ = write!(
            s,
            r#"<text x="8" y="{y}">turn {}: voice-to-voice {v2v}, handoff gap {gap}{}{} — "{}" → "{}"</text>"#,
            turn.index + 1,
            if turn.repair { ", repair" } else { "" },
            if turn.fallback { ", fallback" } else { "" },
            esc(&truncate(&turn.transcript, 50)),
            esc(&truncate(&turn.opener_text, 50)),
        );
        y += 22.0;
    }
    s.push_str("</svg>\n");
    s
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n).collect::<String>() + "…"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(part: Part, text: &str, start_ms: f64, end_ms: f64) -> Segment {
        Segment {
            part,
            text: text.into(),
            start_ms,
            end_ms,
            ready_ms: start_ms,
            samples: vec![0.0; ((end_ms - start_ms) * 22.05) as usize],
        }
    }

    fn timeline() -> TurnTimeline {
        let u =
            Utterance { start_ms: 0.0, confirmed_ms: 100.0, last_voiced_ms: 1_000.0, endpoint_ms: 1_300.0, pause_ms: None, judged: None };
        let mut t = TurnTimeline::new(0, &u, false, 4);
        t.segments = vec![
            seg(Part::Opener, "The capital of", 1_320.0, 2_000.0),
            seg(Part::Opener, "France is", 2_000.0, 2_600.0),
            seg(Part::Continuation, "Paris, on the Seine.", 2_640.0, 4_000.0),
        ];
        t.fill_from(&TurnRecord::default());
        t
    }

    #[test]
    fn the_reply_heard_is_all_of_it_or_what_played_before_the_barge_in() {
        assert_eq!(timeline().heard_text, "The capital of France is Paris, on the Seine.");
        // Stopped between two pieces: exactly the pieces played.
        let mut t = timeline();
        t.barge_in_at(2_620.0);
        assert_eq!(t.heard_text, "The capital of France is");
        // Stopped inside "Paris, on the Seine." (weights 6 3 4 6 = 19 over 1360 ms): "Paris,"
        // ends at 2640 + 1360·6/19 ≈ 3069 ms, "on" at ≈ 3284 ms.
        let mut t = timeline();
        t.barge_in_at(3_100.0);
        assert_eq!(t.heard_text, "The capital of France is Paris,");
        assert_eq!(t.segments.last().unwrap().end_ms, 3_100.0);
        // Speech after the reply ended is no barge-in.
        let mut t = timeline();
        t.barge_in_at(5_000.0);
        assert!(!t.barged_in);
        assert_eq!(t.heard_text, "The capital of France is Paris, on the Seine.");
    }
}
