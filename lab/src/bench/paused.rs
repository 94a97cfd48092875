//! `bench pipeline`'s paused-utterance measure (issue 13): the espeak-ng fixtures spoken with
//! a 450–650 ms pause mid-sentence (`fixtures/voices/voices.toml`, entries with
//! `pause_after`) replayed through the whole pipeline. An utterance is kept whole when the
//! turn that answers it heard both parts: a single turn, or a turn merged from the part
//! before the pause (`endpoint.resume_merge_ms`), whose transcript holds a word of each part.

use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

use daemon::config::Config;
use daemon::replay::{self, ReplayOptions};

/// One paused utterance's outcome.
#[derive(Debug, Serialize)]
pub struct PausedResult {
    pub id: String,
    /// Pause inside the sentence, in ms.
    pub pause_ms: u32,
    /// Turns the replay made of it.
    pub turns: usize,
    /// The answering (last) turn's transcript.
    pub transcript: String,
    /// The answering turn was merged from the part before the pause.
    pub merged: bool,
    pub kept_whole: bool,
}

/// All paused fixtures: how many were answered as one sentence.
#[derive(Debug, Serialize)]
pub struct PausedSummary {
    pub fixtures: usize,
    pub kept_whole: usize,
    pub share: f64,
    pub results: Vec<PausedResult>,
}

/// Words of at least four letters (the ones Whisper's spelling of numbers and short function
/// words does not change), lowercased.
fn content_words(text: &str) -> Vec<String> {
    asr::wer::normalize_words(text).into_iter().filter(|w| w.chars().count() >= 4).collect()
}

/// Replays every fixture of `voices_toml` that has a pause (its WAV `<id>.wav` beside it).
/// Errors: an unreadable list or WAV, or a replay that fails.
pub fn run(cfg: &Config, voices_toml: &Path) -> Result<PausedSummary> {
    let fixtures = super::voices::read_fixtures(voices_toml)?;
    let dir = voices_toml.parent().unwrap_or(Path::new("."));
    let mut cfg = cfg.clone();
    // Only the transcripts matter here: keep the cloud's part short.
    cfg.cloud.max_tokens = cfg.cloud.max_tokens.min(8);
    let mut results = Vec::new();
    for f in fixtures {
        let (Some(pause_ms), Some(rest)) = (f.pause_after, f.rest.as_deref()) else {
            continue;
        };
        // Replay writes its timeline and audio; only the turns returned are read.
        let out_dir = std::env::temp_dir().join(format!("firstword-bench-paused-{}-{}", std::process::id(), f.id));
        let opts = ReplayOptions {
            input: dir.join(format!("{}.wav", f.id)),
            out_dir,
            cloud_latency_ms: Some(500.0),
            realtime: false,
            clock: Default::default(),
        };
        let turns = replay::run(&cfg, &opts).with_context(|| format!("paused fixture {}", f.id));
        let _ = std::fs::remove_dir_all(&opts.out_dir);
        let turns = turns?;
        let Some(last) = turns.last() else { continue };
        let heard = content_words(&last.transcript);
        let has_any = |part: &str| content_words(part).iter().any(|w| heard.contains(w));
        let merged = last.merged_from.is_some();
        let kept_whole = (turns.len() == 1 || merged) && has_any(&f.text) && has_any(rest);
        results.push(PausedResult { id: f.id, pause_ms, turns: turns.len(), transcript: last.transcript.clone(), merged, kept_whole });
    }
    let kept_whole = results.iter().filter(|r| r.kept_whole).count();
    let share = if results.is_empty() { 0.0 } else { kept_whole as f64 / results.len() as f64 };
    Ok(PausedSummary { fixtures: results.len(), kept_whole, share, results })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_words_skip_short_words_and_punctuation() {
        assert_eq!(content_words("Set a timer for 12 minutes, please."), ["timer", "minutes", "please"]);
    }
}
