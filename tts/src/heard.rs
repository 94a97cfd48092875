//! What the user heard of a reply that playback stopped early (barge-in, shutdown): the
//! words of the synthesized pieces that had played by then. Piper gives no word timings, so
//! a word's end is estimated from the letters before it (issue 18: the conversation keeps the
//! reply as heard).

/// A piece of speech that was queued for playback: its text and where its audio starts and
/// ends, in any one unit (ms on a clock, or samples of the played-sample count).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spoken<'a> {
    pub text: &'a str,
    pub start: f64,
    pub end: f64,
}

/// What the user heard of `pieces` if playback stopped at `stop` (same unit as the pieces;
/// None = it played to the end). Whole pieces that ended by `stop` count; within the piece
/// being played, a word counts once its estimated end has played, the piece's duration being
/// shared among its words by their letters plus one (Piper gives no word timings, and the
/// letter count follows the phoneme count closely enough at word scale). The words are joined
/// with single spaces (none before punctuation).
pub fn heard_text(pieces: &[Spoken<'_>], stop: Option<f64>) -> String {
    let mut out = String::new();
    let mut push = |w: &str| {
        if !out.is_empty() && !w.starts_with([',', '.', ';', ':', '!', '?']) {
            out.push(' ');
        }
        out.push_str(w);
    };
    for p in pieces {
        let stop = stop.unwrap_or(f64::INFINITY);
        if p.start >= stop {
            break;
        }
        let ws: Vec<&str> = p.text.split_whitespace().collect();
        if p.end <= stop {
            ws.iter().for_each(|w| push(w));
            continue;
        }
        let weight = |w: &str| w.chars().filter(|c| c.is_alphanumeric()).count() as f64 + 1.0;
        let total: f64 = ws.iter().map(|w| weight(w)).sum();
        let mut cum = 0.0;
        for w in &ws {
            cum += weight(w);
            if p.start + (p.end - p.start) * cum / total > stop {
                break;
            }
            push(w);
        }
        break;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heard_text_is_cut_at_the_last_word_played() {
        let pieces = [
            Spoken { text: "The sky is", start: 0.0, end: 900.0 },
            Spoken { text: "blue because air scatters blue light.", start: 940.0, end: 3_000.0 },
            Spoken { text: "Let me think.", start: 3_200.0, end: 4_000.0 },
        ];
        assert_eq!(heard_text(&pieces, None), "The sky is blue because air scatters blue light. Let me think.");
        assert_eq!(heard_text(&pieces, Some(4_000.0)), "The sky is blue because air scatters blue light. Let me think.");
        assert_eq!(heard_text(&pieces, Some(920.0)), "The sky is", "stopped between pieces");
        assert_eq!(heard_text(&pieces, Some(0.0)), "");
        // "blue because air scatters blue light." = weights 5 8 4 9 5 6 (letters + 1) = 37 over
        // 2060 ms: "blue" ends at 940 + 2060·5/37 ≈ 1218.4, "because" at ≈ 1663.8.
        assert_eq!(heard_text(&pieces, Some(1_218.0)), "The sky is");
        assert_eq!(heard_text(&pieces, Some(1_219.0)), "The sky is blue");
        assert_eq!(heard_text(&pieces, Some(1_700.0)), "The sky is blue because");
        // A piece starting with punctuation joins without a space.
        let p2 = [Spoken { text: "Paris", start: 0.0, end: 1.0 }, Spoken { text: ", of course.", start: 1.0, end: 2.0 }];
        assert_eq!(heard_text(&p2, None), "Paris, of course.");
    }
}
