//! What every turn driver does the same way, whether it replays a recording or runs live:
//! the cloud `continue` request a turn sends, how cloud events become turn events, the
//! pause between two pieces of speech, and the limits a turn runs under.

use std::time::Duration;

use cloud::client::{CloudEvent, ContinueParams};

use crate::config::Config;
use crate::turn::Event;

/// A turn gives up on the cloud after this long (wall clock), whatever the timeouts say.
pub const TURN_WALL_LIMIT: Duration = Duration::from_secs(90);
/// Gap between two pieces of speech joined mid-sentence (a word boundary), in ms.
pub const WORD_GAP_MS: f64 = 40.0;
/// Tokens the μLM may use to finish a sentence locally.
pub const LOCAL_FINISH_TOKENS: usize = 16;

/// The pause before the next piece of speech, after `prev` text, in ms: a sentence or clause
/// gap (`[tts]` settings), or a word gap when the sentence goes on.
pub fn seam_gap_ms(cfg: &Config, prev: &str) -> f64 {
    let t = prev.trim_end();
    if t.ends_with(['.', '!', '?']) {
        cfg.tts.sentence_silence_ms as f64
    } else if t.ends_with([',', ';', ':']) {
        cfg.tts.clause_silence_ms as f64
    } else {
        WORD_GAP_MS
    }
}

/// The opener gate for turn number `turn` (None when `gate.enabled` is false): the
/// threshold from `gate.min_score`, else the checkpoint's calibrated one, else the default;
/// the bridges rotate by turn.
pub fn gate_policy(cfg: &Config, mulm: &crate::mulm::Mulm, turn: usize) -> Option<crate::turn::GatePolicy> {
    if !cfg.gate.enabled {
        return None;
    }
    let min_score = cfg.gate.min_score.or(mulm.gate_min_score()).unwrap_or(crate::gate::DEFAULT_MIN_SCORE);
    Some(crate::turn::GatePolicy { min_score, bridge: crate::gate::bridge(&cfg.gate.bridges, turn).to_string() })
}

/// The cloud request for [`crate::turn::Action::SendContinue`], with the `[cloud]` mode and
/// token limit.
pub fn continue_params(cfg: &Config, transcript: String, opener: String, opener_complete: bool) -> ContinueParams {
    let mut p = ContinueParams::new(transcript, opener);
    p.opener_complete = opener_complete;
    p.mode = cfg.cloud.mode;
    p.max_tokens = cfg.cloud.max_tokens;
    p
}

/// A cloud event as the turn's event at `at_ms`. The flag is true when the driver must also
/// cancel the request (no first delta in time: the turn falls back and the cloud must stop).
pub fn cloud_event(e: CloudEvent, at_ms: f64) -> (Event, bool) {
    match e {
        CloudEvent::Delta(text) => (Event::CloudDelta { text, at_ms }, false),
        CloudEvent::Repair(_) => (Event::CloudRepair { at_ms }, false),
        CloudEvent::Done { .. } => (Event::CloudDone { at_ms }, false),
        CloudEvent::Error { kind, message } => (Event::CloudFailed { reason: format!("{kind:?}: {message}"), at_ms }, false),
        CloudEvent::FirstDeltaTimeout { waited_ms } => {
            (Event::CloudFailed { reason: format!("no first delta after {waited_ms} ms"), at_ms }, true)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cloud::client::CloudErrorKind;

    #[test]
    fn cloud_events_map_to_turn_events() {
        assert_eq!(cloud_event(CloudEvent::Delta(" and".into()), 5.0), (Event::CloudDelta { text: " and".into(), at_ms: 5.0 }, false));
        let (e, cancel) = cloud_event(CloudEvent::FirstDeltaTimeout { waited_ms: 2000 }, 9.0);
        assert!(cancel && matches!(e, Event::CloudFailed { at_ms, .. } if at_ms == 9.0));
        let (e, cancel) = cloud_event(CloudEvent::Error { kind: CloudErrorKind::NotConnected, message: "x".into() }, 1.0);
        assert!(!cancel && matches!(e, Event::CloudFailed { .. }));
    }

    #[test]
    fn seam_gaps_follow_punctuation() {
        let cfg = Config::default();
        assert_eq!(seam_gap_ms(&cfg, "Sure."), cfg.tts.sentence_silence_ms as f64);
        assert_eq!(seam_gap_ms(&cfg, "Well, "), cfg.tts.clause_silence_ms as f64);
        assert_eq!(seam_gap_ms(&cfg, "The sky is"), WORD_GAP_MS);
    }
}
