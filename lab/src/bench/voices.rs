//! `bench pipeline`'s measures on voices that are not the project's Piper voice (issue 13):
//! the single-utterance fixtures of `fixtures/voices/voices.toml` (espeak-ng and registry
//! voices, several speeds, rates and channel layouts, some noisy) through
//!
//! - replay (the pipeline of [`super::pipeline`], one turn per fixture): voice-to-voice per
//!   injected cloud latency, and the pipeline's WER against whole-file ASR of the same WAV;
//! - with `--live`, `firstword run` on simulated devices ([`super::live`]): the same fixtures
//!   in one WAV at real-time pace, the voice-to-voice a user hears.
//!
//! The scripted cloud answers every question with one generic sentence: these fixtures have
//! no per-question reply, and the measures here end at the first audio and the transcript.

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::pipeline::Question;

/// The scripted cloud's continuation for every voice fixture.
pub const GENERIC_REPLY: &str = "is a good question, and here is a short answer to it.";

/// One `[[fixture]]` of `voices.toml` (only what the benchmarks read).
#[derive(Debug, Deserialize)]
pub struct VoiceFixture {
    pub id: String,
    pub text: String,
    /// Silence inside the sentence (ms), for the paused-utterance measure.
    #[serde(default)]
    pub pause_after: Option<u32>,
    /// What is said after that pause.
    #[serde(default)]
    pub rest: Option<String>,
}

#[derive(Deserialize)]
struct VoiceFile {
    fixture: Vec<VoiceFixture>,
}

/// The `[[fixture]]` entries of `voices_toml`. Errors: an unreadable or malformed list.
pub fn read_fixtures(voices_toml: &Path) -> Result<Vec<VoiceFixture>> {
    let text = std::fs::read_to_string(voices_toml).with_context(|| format!("reading {}", voices_toml.display()))?;
    let file: VoiceFile = toml::from_str(&text).with_context(|| format!("parsing {}", voices_toml.display()))?;
    Ok(file.fixture)
}

/// The single-utterance fixtures of `voices_toml` (those without `pause_after`), each as a
/// question the scripted cloud answers with [`GENERIC_REPLY`], with its WAV (`<id>.wav`
/// beside the list) at 16 kHz mono.
///
/// Errors: an unreadable or malformed list, no single-utterance fixture, an unreadable WAV.
pub fn load(voices_toml: &Path) -> Result<Vec<(Question, Vec<f32>)>> {
    let fixtures = read_fixtures(voices_toml)?;
    let dir = voices_toml.parent().unwrap_or(Path::new("."));
    let mut out = Vec::new();
    for f in fixtures.into_iter().filter(|f| f.pause_after.is_none()) {
        let wav = dir.join(format!("{}.wav", f.id));
        let input = audio::load_wav_16k_mono(&wav).with_context(|| format!("voice fixture {}", f.id))?;
        // An empty keyword matches every request.
        out.push((Question { id: f.id, text: f.text, keyword: String::new(), cloud_reply: GENERIC_REPLY.into() }, input));
    }
    if out.is_empty() {
        bail!("{}: no single-utterance [[fixture]] (all have pause_after)", voices_toml.display());
    }
    Ok(out)
}

/// One fixture's transcripts and word error rates against its text.
#[derive(Debug, Serialize)]
pub struct WerSample {
    pub id: String,
    pub text: String,
    /// What the pipeline heard (the utterance the VAD cut, with pre-roll).
    pub pipeline: String,
    /// What Whisper hears in the whole WAV.
    pub whole_file: String,
    pub pipeline_wer: f64,
    pub whole_file_wer: f64,
}

/// Pipeline against whole-file ASR over the voice fixtures (issue 13: gap ≤ 2 points).
#[derive(Debug, Serialize)]
pub struct WerReport {
    pub fixtures: usize,
    /// Mean WER over the fixtures, 0..1 per fixture.
    pub pipeline_mean_wer: f64,
    pub whole_file_mean_wer: f64,
    /// `pipeline_mean_wer − whole_file_mean_wer`, in percentage points.
    pub gap_points: f64,
    pub samples: Vec<WerSample>,
}

impl WerReport {
    /// Builds the report from (fixture id, text, pipeline transcript, whole-file transcript).
    pub fn new(rows: Vec<(String, String, String, String)>) -> Self {
        let samples: Vec<WerSample> = rows
            .into_iter()
            .map(|(id, text, pipeline, whole_file)| WerSample {
                pipeline_wer: asr::wer::wer(&text, &pipeline).wer,
                whole_file_wer: asr::wer::wer(&text, &whole_file).wer,
                id,
                text,
                pipeline,
                whole_file,
            })
            .collect();
        let n = samples.len().max(1) as f64;
        let pipeline_mean_wer = samples.iter().map(|s| s.pipeline_wer).sum::<f64>() / n;
        let whole_file_mean_wer = samples.iter().map(|s| s.whole_file_wer).sum::<f64>() / n;
        Self {
            fixtures: samples.len(),
            pipeline_mean_wer,
            whole_file_mean_wer,
            gap_points: 100.0 * (pipeline_mean_wer - whole_file_mean_wer),
            samples,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gap_is_the_difference_of_mean_wers_in_points() {
        let r = WerReport::new(vec![
            (
                "a".into(),
                "How do I get rid of hiccups?".into(),
                "How do I get rid of pickups?".into(),
                "How do I get rid of hiccups?".into(),
            ),
            ("b".into(), "Why is the sky blue?".into(), "why is the sky blue".into(), "Why is this sky blue?".into()),
        ]);
        // a: pipeline 1/7, whole 0; b: pipeline 0, whole 1/5.
        assert!((r.pipeline_mean_wer - (1.0 / 7.0) / 2.0).abs() < 1e-12);
        assert!((r.whole_file_mean_wer - 0.1).abs() < 1e-12);
        assert!((r.gap_points - 100.0 * ((1.0 / 7.0) / 2.0 - 0.1)).abs() < 1e-9);
    }

    #[test]
    fn the_committed_list_yields_its_single_utterance_fixtures() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let qs = load(&root.join("fixtures/voices/voices.toml")).unwrap();
        assert!(qs.len() >= 10, "{} fixtures", qs.len());
        assert!(qs.iter().all(|(q, x)| q.keyword.is_empty() && !x.is_empty()));
        assert!(!qs.iter().any(|(q, _)| q.id == "timer"), "the paused fixture is measured elsewhere");
    }
}
