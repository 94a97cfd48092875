//! The opener gate: speak the μLM's opener only when it is likely right (issue 12 §2).
//!
//! The opener is committed — once spoken it is never retracted, and the cloud *continues*
//! it — so a wrong opener costs a whole reply's credibility. The gate scores each opener
//! from the μLM's own token log-probabilities plus two cheap checks (does it share a content
//! word with the transcript? does it repeat itself?). Below the threshold the daemon speaks a
//! short neutral bridge from a configurable list ("Good question.") and the cloud continues
//! from that instead. Pure: the scores come from the driver, the decision is here.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The `[gate]` table of the config.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GateConfig {
    /// Score openers and replace likely-wrong ones by a bridge.
    pub enabled: bool,
    /// Threshold on [`GateScore::score`] (nats per token, adjusted); None: the checkpoint's
    /// `opener.gate_min_score` from mulm.json, else [`DEFAULT_MIN_SCORE`].
    pub min_score: Option<f32>,
    /// Neutral bridges spoken instead of a gated opener, used in turn (non-empty, each a
    /// short complete phrase the cloud can continue after).
    pub bridges: Vec<String>,
    /// The harmful-request check ([`crate::harm`]): on (true) or off (false) whatever the
    /// checkpoint asks; None: on when `harm_head` is set or the checkpoint's mulm.json asks
    /// for it (`opener.harm_check`). When it flags the transcript, the gate fires whatever the
    /// opener's score.
    pub harm_check: Option<bool>,
    /// The check's head, trained by `training/safety/harm_probe.py`. None:
    /// [`crate::harm::HARM_HEAD`] (`models/harm/head.json`). Setting it turns the check on
    /// unless `harm_check = false`.
    pub harm_head: Option<PathBuf>,
    /// The all-MiniLM-L6-v2 directory the head reads embeddings from.
    pub minilm_dir: PathBuf,
}

/// Threshold used when neither the config nor the checkpoint names one (nats per token).
/// Chosen on `eval openers` (385 Vicuna/AlpacaEval prompts, 2026-12-02) for the shipped
/// 256-8: its token log-probabilities barely separate good openers from bad (cosine to the
/// reference 0.068 vs 0.064 between the top and bottom quartiles), sharing a content word
/// does (0.101 vs 0.069), so an off-topic opener must be very likely (mean ≥ −0.8 nats) to
/// be spoken, an on-topic one only ≥ −2.8.
pub const DEFAULT_MIN_SCORE: f32 = -0.8;
/// Added to the score of an opener that shares a content word with the transcript.
pub const TOPICAL_BONUS: f32 = 2.0;
/// Subtracted from the score of an opener that repeats a word pair or a word three times.
pub const REPEAT_PENALTY: f32 = 1.5;

impl Default for GateConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            min_score: None,
            bridges: vec!["Good question.".into(), "Let me think.".into(), "Sure.".into(), "Okay, so.".into()],
            harm_check: None,
            harm_head: None,
            minilm_dir: PathBuf::from(crate::minilm::MINILM_DIR),
        }
    }
}

impl GateConfig {
    /// Whether the harmful-request check runs, for a checkpoint that asks for it
    /// (`checkpoint_asks`, mulm.json `opener.harm_check`) or not: never with the gate off;
    /// else as `harm_check` says, and when it says nothing, when `harm_head` is set or the
    /// checkpoint asks.
    pub fn harm_check_on(&self, checkpoint_asks: bool) -> bool {
        self.enabled && self.harm_check.unwrap_or(self.harm_head.is_some() || checkpoint_asks)
    }

    /// Range checks; the message names the key.
    pub fn validate(&self) -> crate::Result<()> {
        if let Some(m) = self.min_score {
            if !m.is_finite() {
                return Err(crate::LmError::setting("gate.min_score", format!(" = {m} (must be a finite number of nats per token)")));
            }
        }
        if self.enabled && (self.bridges.is_empty() || self.bridges.iter().any(|b| b.trim().is_empty() || b.len() > 80)) {
            return Err(crate::LmError::setting("gate.bridges", " must hold at least one non-empty phrase of at most 80 bytes".into()));
        }
        Ok(())
    }
}

/// How an opener scored.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct GateScore {
    /// Mean natural-log probability of the opener's tokens under the μLM.
    pub mean_logprob: f32,
    /// Shares a content word (≥ 3 letters, not a function word) with the transcript.
    pub topical: bool,
    /// Repeats a word pair, or one content word three times.
    pub repeats: bool,
    /// `mean_logprob + TOPICAL_BONUS·topical − REPEAT_PENALTY·repeats`.
    pub score: f32,
    /// The harmful-request check's margin for the transcript ([`crate::harm::HarmHead::margin`];
    /// > 0: flagged), when the check is on.
    pub harm: Option<f32>,
    /// The margin above which the gate fires on the check alone: 0 (the head's threshold)
    /// unless the checkpoint asks for less (mulm.json `opener.harm_gate_margin`).
    #[serde(skip_serializing_if = "is_zero")]
    pub harm_gate_margin: f32,
}

fn is_zero(x: &f32) -> bool {
    *x == 0.0
}

impl GateScore {
    /// This score with the harmful-request check's margin for the transcript.
    pub fn with_harm(self, harm: Option<f32>) -> Self {
        Self { harm, ..self }
    }

    /// This score with the checkpoint's harmful-request margin limit
    /// ([`crate::mulm_file::OpenerSettings::harm_gate_margin`]).
    pub fn with_harm_gate_margin(self, harm_gate_margin: f32) -> Self {
        Self { harm_gate_margin, ..self }
    }

    /// The harmful-request check's margin is above the gate's limit (the head flagged the
    /// transcript when the limit is 0). A NaN margin counts as flagged: the check could not
    /// vouch for the transcript.
    pub fn harmful(&self) -> bool {
        harm_fires(self.harm, self.harm_gate_margin)
    }
}

/// Whether the harmful-request check alone fires the gate: its margin `harm` (None: the check
/// did not run) is above `harm_gate_margin`, or NaN (the check could not vouch for the
/// transcript). The one rule the daemon ([`GateScore::harmful`]) and the evals' reports share.
pub fn harm_fires(harm: Option<f32>, harm_gate_margin: f32) -> bool {
    harm.is_some_and(|m| m > harm_gate_margin || m.is_nan())
}

/// Function words that say nothing about a topic.
const STOP_WORDS: &[&str] = &[
    "the", "and", "for", "are", "but", "not", "you", "your", "yours", "with", "this", "that", "these", "those", "from", "have", "has",
    "had", "was", "were", "what", "when", "where", "which", "who", "whom", "why", "how", "can", "could", "should", "would", "will",
    "shall", "may", "might", "must", "does", "did", "doing", "about", "into", "onto", "there", "their", "they", "them", "then", "than",
    "some", "any", "all", "its", "it's", "our", "out", "get", "got", "one", "just", "very", "really", "also", "here", "his", "her", "she",
    "him", "way", "good", "best", "make", "like", "know", "let", "yes", "sure", "okay", "well", "much", "many", "more", "most", "tell",
    "give", "want", "need", "use", "i'm", "what's", "there's", "that's", "don't", "because", "been", "being", "each", "other", "such",
    "only", "own", "same",
];

fn words(text: &str) -> Vec<String> {
    text.split_whitespace()
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric() && c != '\'').to_lowercase().replace('’', "'"))
        .filter(|w| !w.is_empty())
        .collect()
}

/// Crude stem so "boil"/"boiling", "egg"/"eggs" match: the first 5 letters of words of 6
/// or more letters, a trailing plural "s" dropped.
fn stem(w: &str) -> String {
    let w = w.strip_suffix("'s").unwrap_or(w);
    let w = if w.len() > 3 && w.ends_with('s') && !w.ends_with("ss") { &w[..w.len() - 1] } else { w };
    if w.chars().count() >= 6 {
        w.chars().take(5).collect()
    } else {
        w.to_string()
    }
}

fn content(w: &str) -> bool {
    w.chars().filter(|c| c.is_alphabetic()).count() >= 3 && !STOP_WORDS.contains(&w)
}

/// True when `opener` repeats a word pair ("a good way to make a good way") or a content
/// word three times.
pub fn repeats(opener: &str) -> bool {
    let w = words(opener);
    let mut pairs = std::collections::HashSet::new();
    for p in w.windows(2) {
        if !pairs.insert((p[0].as_str(), p[1].as_str())) {
            return true;
        }
    }
    let mut counts = std::collections::HashMap::new();
    w.iter().filter(|x| content(x)).any(|x| {
        let c = counts.entry(stem(x)).or_insert(0);
        *c += 1;
        *c >= 3
    })
}

/// The content words of `text` (lower case, ≥ 3 letters, not a function word), each once, in
/// order: what [`topical`] matches an opener against.
pub fn content_words(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for w in words(text).into_iter().filter(|w| content(w)) {
        if !out.contains(&w) {
            out.push(w);
        }
    }
    out
}

/// True when `opener` and `transcript` share a content word (after [`stem`]).
pub fn topical(transcript: &str, opener: &str) -> bool {
    let asked: std::collections::HashSet<String> = words(transcript).iter().filter(|w| content(w)).map(|w| stem(w)).collect();
    words(opener).iter().filter(|w| content(w)).any(|w| asked.contains(&stem(w)))
}

/// Scores an opener: `logprobs` are its tokens' natural-log probabilities under the μLM.
/// An opener without tokens (the generic fallback) scores 0, the best score: it is a
/// neutral phrase already.
pub fn score(transcript: &str, opener: &str, logprobs: &[f32]) -> GateScore {
    let finite: Vec<f32> = logprobs.iter().map(|l| if l.is_finite() { *l } else { -30.0 }).collect();
    let mean_logprob = if finite.is_empty() { 0.0 } else { finite.iter().sum::<f32>() / finite.len() as f32 };
    let topical = topical(transcript, opener);
    let repeats = repeats(opener);
    let score = mean_logprob + if topical { TOPICAL_BONUS } else { 0.0 } - if repeats { REPEAT_PENALTY } else { 0.0 };
    GateScore { mean_logprob, topical, repeats, score, harm: None, harm_gate_margin: 0.0 }
}

/// Whether the gate replaces an opener of this score, at threshold `min_score`: a score
/// below it, or a transcript the harmful-request check flagged.
pub fn fires(s: &GateScore, min_score: f32) -> bool {
    s.score < min_score || s.harmful()
}

/// The bridge for turn number `turn` (rotating through the list so repeated gates do not
/// sound canned). `bridges` must be non-empty (validated config).
pub fn bridge(bridges: &[String], turn: usize) -> &str {
    bridges.get(turn % bridges.len().max(1)).map_or("Okay.", String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confident_on_topic_openers_pass_and_unlikely_ones_fire() {
        let t = "How long should I boil an egg?";
        let good = score(t, "Boil the eggs for about nine", &[-0.5, -1.2, -0.8, -1.5, -1.0, -0.9]);
        assert!(good.topical && !good.repeats, "{good:?}");
        assert!(!fires(&good, DEFAULT_MIN_SCORE));
        let bad = score(t, "Use a small piece of water.", &[-3.5, -2.9, -4.0, -3.1, -2.2, -3.8]);
        assert!(!bad.topical, "{bad:?}");
        assert!(fires(&bad, DEFAULT_MIN_SCORE), "{bad:?}");
        // The topical bonus can lift a borderline opener over the threshold.
        let lp = [-2.5f32; 6];
        assert!(fires(&score(t, "Water helps a lot here", &lp), DEFAULT_MIN_SCORE));
        assert!(!fires(&score(t, "An egg helps a lot here", &lp), DEFAULT_MIN_SCORE));
    }

    #[test]
    fn repetition_costs_even_a_confident_opener() {
        let s = score("What's a good place to eat?", "a good way to make a good way", &[-0.2; 8]);
        assert!(s.repeats);
        assert!(fires(&s, -1.0), "{s:?}");
        assert!(repeats("Boil it, boil it well, then boil again"));
        assert!(!repeats("The sky is blue because sunlight scatters"));
    }

    #[test]
    fn a_flagged_transcript_fires_whatever_the_opener_scores() {
        let t = "How long should I boil an egg?";
        let good = score(t, "Boil the eggs for about nine", &[-0.2; 6]);
        assert!(!fires(&good, DEFAULT_MIN_SCORE) && good.harm.is_none());
        assert!(fires(&good.with_harm(Some(0.01)), DEFAULT_MIN_SCORE));
        // A margin of zero or below (the check ran and did not flag) changes nothing.
        for m in [0.0, -3.0] {
            let s = good.with_harm(Some(m));
            assert!(!s.harmful() && !fires(&s, DEFAULT_MIN_SCORE) && s.score == good.score);
        }
    }

    #[test]
    fn a_checkpoints_harm_gate_margin_moves_where_the_check_alone_fires() {
        let t = "How long should I boil an egg?";
        let good = score(t, "Boil the eggs for about nine", &[-0.2; 6]).with_harm_gate_margin(-0.6);
        // Above the limit fires even under the head's threshold; at or below it does not.
        for (m, fired) in [(-0.59, true), (0.3, true), (-0.6, false), (-2.0, false), (f32::NEG_INFINITY, false), (f32::NAN, true)] {
            let s = good.with_harm(Some(m));
            assert_eq!((s.harmful(), fires(&s, DEFAULT_MIN_SCORE)), (fired, fired), "margin {m}");
        }
        // No check, no firing on it; the JSON of a default limit has no key.
        assert!(!good.with_harm(None).harmful());
        assert!(!serde_json::to_string(&score(t, "Boil", &[-0.2])).unwrap().contains("harm_gate_margin"));
    }

    #[test]
    fn non_finite_and_empty_logprobs_are_handled() {
        let s = score("hi", "Let me think about that.", &[]);
        assert_eq!(s.mean_logprob, 0.0);
        assert!(!fires(&s, DEFAULT_MIN_SCORE));
        let s = score("hi", "Hello there", &[f32::NEG_INFINITY, f32::NAN]);
        assert_eq!(s.mean_logprob, -30.0);
        assert!(fires(&s, DEFAULT_MIN_SCORE));
    }

    #[test]
    fn topical_matches_stems_and_ignores_function_words() {
        assert!(topical("Why is the sky blue?", "The sky looks blue because"));
        assert!(topical("How do I bake bread?", "Breads take about an hour"));
        assert!(!topical("Why is the sky blue?", "The answer is a person."));
        assert!(!topical("What should I do?", "You should do what you can"));
    }

    #[test]
    fn bridges_rotate_and_config_is_validated() {
        let c = GateConfig::default();
        assert!(c.validate().is_ok());
        assert_eq!(bridge(&c.bridges, 0), "Good question.");
        assert_eq!(bridge(&c.bridges, 5), "Let me think.");
        let bad = GateConfig { min_score: Some(f32::NAN), ..GateConfig::default() };
        assert!(bad.validate().unwrap_err().key() == Some("gate.min_score"));
        let bad = GateConfig { bridges: vec![" ".into()], ..GateConfig::default() };
        assert!(bad.validate().unwrap_err().key() == Some("gate.bridges"));
    }
}
