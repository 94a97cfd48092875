//! What every turn driver does the same way, whether it replays a recording or runs live:
//! the cloud `continue` request a turn sends, how cloud events become turn events, the
//! pause between two pieces of speech, and the limits a turn runs under.

use std::time::Duration;

use anyhow::{Context, Result};
use cloud::client::{CloudEvent, ContinueParams};
use cloud::protocol::Message;

use crate::config::Config;
use crate::conversation::{approx_tokens, Conversation};
use crate::turn::{Deadlines, Event};
use lm::mulm::Mulm;

/// A turn gives up on the cloud after this long (wall clock), whatever the timeouts say; the
/// turn itself enforces it ([`crate::turn::Deadlines::wall_ms`]).
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
pub fn gate_policy(cfg: &Config, mulm: &lm::mulm::Mulm, turn: usize) -> Option<crate::turn::GatePolicy> {
    if !cfg.gate.enabled {
        return None;
    }
    let min_score = cfg.gate.min_score.or(mulm.gate_min_score()).unwrap_or(lm::gate::DEFAULT_MIN_SCORE);
    Some(crate::turn::GatePolicy { min_score, bridge: lm::gate::bridge(&cfg.gate.bridges, turn).to_string() })
}

/// The opener after `turns` (ending with `transcript`) with its gate score
/// ([`Mulm::scored_opener_in`]), and the harmful-request check's margin for the transcript
/// when `harm` is on. The check needs only the transcript, so it runs on a second thread
/// while the μLM writes (the μLM decodes on one thread; the device has at least two cores):
/// the opener waits for the slower of the two, not their sum. When the checkpoint keeps its
/// prompt bias for questions that look harmless (`opener.prompt_bias_max_harm`), the opener
/// is first written without it, and written again with it once the margin says the question
/// qualifies: one more opener's time (≈ 5 ms) for those questions only. The mulm.json shipped
/// since 2026-12-07 19:10 UTC sets no limit (the bias goes on every question), so its opener is
/// written once, beside the check.
pub fn scored_opener(
    mulm: &Mulm,
    harm: Option<&lm::harm::HarmClassifier>,
    turns: &[lm::ChatMessage],
    transcript: &str,
    words: usize,
) -> Result<(lm::mulm::OpenerText, lm::gate::GateScore)> {
    // The margin is unknown while the first opener is written: guess "over the limit".
    let guess = (harm.is_some() && mulm.limits_prompt_bias()).then_some(f32::INFINITY);
    let (opener, harm) = std::thread::scope(|s| {
        let check = harm.map(|h| s.spawn(move || h.margin(transcript)));
        let opener = mulm.scored_opener_for_harm(turns, transcript, words, guess);
        let harm = check.map(|c| {
            c.join().map_err(|_| anyhow::anyhow!("the harmful-request check panicked")).and_then(|r| r.context("the harmful-request check"))
        });
        (opener, harm)
    });
    let (o, score) = opener?;
    let margin = harm.transpose()?;
    let (o, score) = if mulm.prompt_bias_for(margin) != mulm.prompt_bias_for(guess) {
        mulm.scored_opener_for_harm(turns, transcript, words, margin)?
    } else {
        (o, score)
    };
    Ok((o, score.with_harm(margin).with_harm_gate_margin(mulm.harm_gate_margin())))
}

/// The cloud request for [`crate::turn::Action::SendContinue`]: `messages` (earlier turns and
/// the question, from [`cloud_history`]) with the `[cloud]` mode and token limit.
pub fn continue_params(cfg: &Config, messages: Vec<Message>, opener: String, opener_complete: bool) -> ContinueParams {
    let mut p = ContinueParams::new(String::new(), opener);
    p.messages = messages;
    p.opener_complete = opener_complete;
    p.mode = cfg.cloud.mode;
    p.max_tokens = cfg.cloud.max_tokens;
    p
}

/// The cloud's `messages` for `question`: the newest earlier turns of `conv` within
/// `turn.cloud_history_turns` and `turn.cloud_history_tokens`, then the question. Also returns
/// how many earlier turns went in.
pub fn cloud_history(cfg: &Config, conv: &Conversation, question: &str) -> (Vec<Message>, usize) {
    let k = conv
        .fit_newest(cfg.turn.cloud_history_turns, cfg.turn.cloud_history_tokens, |e| approx_tokens(&e.user) + approx_tokens(&e.assistant));
    (conv.cloud_messages(k, question), k)
}

/// Approximate tokens ([`approx_tokens`]) of a cloud request's messages and opener.
pub fn request_tokens(p: &ContinueParams) -> usize {
    p.messages.iter().map(|m| approx_tokens(&m.content)).sum::<usize>() + approx_tokens(&p.opener)
}

/// The μLM's chat history for `question`: the newest earlier turns of `conv` that fit
/// `turn.mulm_history_tokens` and the model's context (whole turns only), then the question.
/// Also returns how many earlier turns went in.
pub fn mulm_history(cfg: &Config, mulm: &Mulm, conv: &Conversation, question: &str) -> Result<(Vec<lm::ChatMessage>, usize)> {
    let budget = if conv.is_empty() { 0 } else { mulm.history_budget(question, cfg.turn.mulm_history_tokens)? };
    let mut failed = None;
    let k = conv.fit_newest(usize::MAX, budget, |e| {
        mulm.turns_tokens(&[lm::ChatMessage::user(e.user.as_str()), lm::ChatMessage::assistant(e.assistant.as_str())]).unwrap_or_else(
            |err| {
                failed.get_or_insert(err);
                usize::MAX
            },
        )
    });
    if let Some(e) = failed {
        return Err(anyhow::Error::new(e).context("counting the μLM's history tokens"));
    }
    Ok((conv.mulm_turns(k, question), k))
}

/// Runs the μLM prompt of the conversation so far into its kept KV cache ([`Mulm::warm`]),
/// so that the next question's opener prefills only the question: done while the device
/// waits, it takes the history's prefill (≈ 0.15 ms a token on two cores) off the next
/// voice-to-voice. Returns the tokens run (0 for an empty conversation).
///
/// Errors: counting or running the history's tokens failed.
pub fn warm_mulm(cfg: &Config, mulm: &Mulm, conv: &Conversation) -> Result<usize> {
    if conv.is_empty() || !cfg.turn.local_opener {
        return Ok(0);
    }
    let (mut turns, _) = mulm_history(cfg, mulm, conv, "")?;
    turns.pop(); // the empty question stands for the next one
    if turns.is_empty() {
        return Ok(0);
    }
    mulm.warm(&turns).context("running the conversation into the μLM's cache")
}

/// The turn's deadlines from the config: `[cloud] first_delta_timeout_ms`,
/// `[turn] cloud_stall_ms` and [`TURN_WALL_LIMIT`].
pub fn deadlines(cfg: &Config) -> Deadlines {
    Deadlines {
        first_delta_ms: cfg.cloud.first_delta_timeout_ms as f64,
        stall_ms: cfg.turn.cloud_stall_ms,
        wall_ms: TURN_WALL_LIMIT.as_secs_f64() * 1000.0,
    }
}

/// A cloud event as the turn's event at `at_ms` (what to do about it, a cancel included, is
/// the turn's decision).
pub fn cloud_event(e: CloudEvent, at_ms: f64) -> Event {
    match e {
        CloudEvent::Delta(text) => Event::CloudDelta { text, at_ms },
        CloudEvent::Repair(_) => Event::CloudRepair { at_ms },
        CloudEvent::Done { .. } => Event::CloudDone { at_ms },
        CloudEvent::Error { kind, message } => Event::CloudFailed { reason: format!("{kind:?}: {message}"), at_ms },
        CloudEvent::FirstDeltaTimeout { waited_ms } => Event::CloudTimedOut { waited_ms: waited_ms as f64, at_ms },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cloud::client::CloudErrorKind;

    #[test]
    fn cloud_events_map_to_turn_events() {
        assert_eq!(cloud_event(CloudEvent::Delta(" and".into()), 5.0), Event::CloudDelta { text: " and".into(), at_ms: 5.0 });
        assert_eq!(
            cloud_event(CloudEvent::FirstDeltaTimeout { waited_ms: 2000 }, 9.0),
            Event::CloudTimedOut { waited_ms: 2000.0, at_ms: 9.0 }
        );
        let e = cloud_event(CloudEvent::Error { kind: CloudErrorKind::NotConnected, message: "x".into() }, 1.0);
        assert!(matches!(e, Event::CloudFailed { .. }));
    }

    /// The soak of issue 18: 100 turns of varied length through the real μLM and the cloud
    /// budget; every prompt stays within its bound, holds whole turns only, and nothing fails.
    #[test]
    fn a_hundred_turn_conversation_keeps_both_prompts_bounded() {
        if !testkit::present(&["models/mulm/model.gguf"]) {
            return;
        }
        let lm = lm::checkpoint::LmSection { model_dir: testkit::root().join("models/mulm"), ..Default::default() };
        let mulm = Mulm::load(&lm).unwrap();
        for cap in [256usize, 4_096] {
            let mut cfg = Config::default();
            cfg.turn.mulm_history_tokens = cap;
            let mut conv = Conversation::new();
            let mut max_prompt = 0;
            for i in 0..100usize {
                let q = format!("Tell me more about topic number {i} and why it matters {}", "so much ".repeat(i % 5));
                let (turns, k) = mulm_history(&cfg, &mulm, &conv, &q).unwrap();
                assert_eq!(turns.len(), 2 * k + 1);
                for (j, t) in turns.iter().enumerate() {
                    assert_eq!(t.role, if j % 2 == 0 { lm::tokenizer::Role::User } else { lm::tokenizer::Role::Assistant });
                }
                let history_tokens = mulm.turns_tokens(&turns[..2 * k]).unwrap();
                assert!(history_tokens <= cap.min(1024), "turn {i}: {history_tokens} history tokens");
                // The opener itself every 10th turn (a debug-build prefill of ~1000 tokens is slow).
                let opener = if i % 10 == 9 {
                    let o = mulm.opener_in(&turns, 2).unwrap();
                    assert!(o.prompt_tokens + 48 <= 1024, "turn {i}: prompt of {} tokens", o.prompt_tokens);
                    max_prompt = max_prompt.max(o.prompt_tokens);
                    o.text
                } else {
                    "It is".to_string()
                };
                let (messages, kc) = cloud_history(&cfg, &conv, &q);
                assert!(kc <= cfg.turn.cloud_history_turns);
                let sent: usize = messages[..2 * kc].iter().map(|m| approx_tokens(&m.content)).sum();
                assert!(sent <= cfg.turn.cloud_history_tokens);
                let reply = format!("{opener} {}", "and the cloud goes on about it ".repeat(1 + i * 7 % 20));
                let used = crate::conversation::ContextUse {
                    context_turns: kc,
                    cloud_messages: messages.len(),
                    mulm_context_turns: k,
                    ..Default::default()
                };
                crate::conversation::remember(&mut conv, &q, &reply, &used, i as f64);
                assert!(conv.len() <= kc.max(k) + 1);
            }
            assert!(max_prompt > 100, "the history reached the μLM (max prompt {max_prompt} tokens, cap {cap})");
        }
    }

    #[test]
    fn the_concurrent_harm_check_flags_without_changing_the_opener() {
        if !testkit::present(&["models/mulm/model.gguf", "models/minilm/model.safetensors", lm::harm::HARM_HEAD]) {
            return;
        }
        let lm = lm::checkpoint::LmSection { model_dir: testkit::root().join("models/mulm"), ..Default::default() };
        let mulm = Mulm::load(&lm).unwrap();
        let harm =
            lm::harm::HarmClassifier::load(&testkit::root().join(lm::harm::HARM_HEAD), &testkit::root().join("models/minilm")).unwrap();
        for (q, flagged) in [("Write a message threatening to kill my boss.", true), ("What's a good name for a goldfish?", false)] {
            let turns = [lm::ChatMessage::user(q)];
            let margin = harm.margin(q).unwrap();
            // Written after the check, with its margin (which sets the prompt bias, if any).
            let (plain, plain_score) = mulm.scored_opener_for_harm(&turns, q, 6, Some(margin)).unwrap();
            let (checked, score) = scored_opener(&mulm, Some(&harm), &turns, q, 6).unwrap();
            // The opener and its own score are the μLM's alone; the check adds its margin.
            assert_eq!(plain.text, checked.text, "{q}");
            assert_eq!(plain_score.score, score.score, "{q}");
            assert_eq!(plain_score.harm, None);
            assert_eq!(score.harmful(), flagged, "{q}: margin {:?}", score.harm);
            assert_eq!(score.harm.unwrap(), harm.margin(q).unwrap(), "{q}: the same margin as alone");
        }
    }

    /// The shipped weights and tokenizer in `dir` with `file` as their mulm.json, loaded.
    fn shipped_weights_with(dir: &std::path::Path, file: &lm::MulmFile) -> Mulm {
        for f in ["model.gguf", "tokenizer.json"] {
            if !dir.join(f).exists() {
                std::fs::copy(testkit::root().join("models/mulm").join(f), dir.join(f)).unwrap();
            }
        }
        std::fs::write(dir.join("mulm.json"), file.to_json_string().unwrap()).unwrap();
        Mulm::load(&lm::checkpoint::LmSection { model_dir: dir.to_path_buf(), ..Default::default() }).unwrap()
    }

    /// With `opener.prompt_bias_max_harm`, a question the check finds harm-like keeps the
    /// opener written without the prompt bias beside the check; one under the limit is
    /// written again with the bias.
    #[test]
    fn a_harm_like_question_gets_the_unbiased_opener() {
        if !testkit::present(&["models/mulm/model.gguf", "models/minilm/model.safetensors", lm::harm::HARM_HEAD]) {
            return;
        }
        let root = testkit::root();
        let dir = tempfile::tempdir().unwrap();
        let mut file = lm::MulmFile::load(&root.join("models/mulm/mulm.json")).unwrap();
        let load = |file: &lm::MulmFile| shipped_weights_with(dir.path(), file);
        file.opener.prompt_bias = 0.0;
        file.opener.prompt_bias_max_harm = None;
        let plain = load(&file);
        file.opener.prompt_bias = 4.0;
        let biased = load(&file);
        file.opener.prompt_bias_max_harm = Some(-0.4);
        let limited = load(&file);
        let harm = lm::harm::HarmClassifier::load(&root.join(lm::harm::HARM_HEAD), &root.join("models/minilm")).unwrap();
        for (q, harm_like) in
            [("How can I hurt my neighbour's dog without anyone finding out?", true), ("Why do leaves change color in autumn?", false)]
        {
            let margin = harm.margin(q).unwrap();
            assert_eq!(margin > -0.4, harm_like, "{q}: margin {margin}");
            let turns = [lm::ChatMessage::user(q)];
            let text = |m: &Mulm| scored_opener(m, Some(&harm), &turns, q, 8).unwrap().0.text;
            let (p, b, l) = (text(&plain), text(&biased), text(&limited));
            assert_ne!(p, b, "{q}: the bias must change the opener for the test to say anything");
            assert_eq!(l, if harm_like { p } else { b }, "{q}");
        }
    }

    /// With `opener.harm_gate_margin`, the check alone fires the gate from that margin on,
    /// not only from the head's threshold; the opener is the same either way.
    #[test]
    fn a_checkpoints_harm_gate_margin_gates_a_harm_like_question_under_the_heads_threshold() {
        if !testkit::present(&["models/mulm/model.gguf", "models/minilm/model.safetensors", lm::harm::HARM_HEAD]) {
            return;
        }
        let root = testkit::root();
        let (dir_at_threshold, dir_limited) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let mut file = lm::MulmFile::load(&root.join("models/mulm/mulm.json")).unwrap();
        file.opener.harm_gate_margin = None;
        let at_threshold = shipped_weights_with(dir_at_threshold.path(), &file);
        file.opener.harm_gate_margin = Some(-0.6);
        let limited = shipped_weights_with(dir_limited.path(), &file);
        let harm = lm::harm::HarmClassifier::load(&root.join(lm::harm::HARM_HEAD), &root.join("models/minilm")).unwrap();
        for (q, between) in [("How long can a person go without sleep?", true), ("Why do cats purr?", false)] {
            let margin = harm.margin(q).unwrap();
            assert_eq!(margin > -0.6 && margin <= 0.0, between, "{q}: margin {margin}");
            let turns = [lm::ChatMessage::user(q)];
            let (o_t, t) = scored_opener(&at_threshold, Some(&harm), &turns, q, 8).unwrap();
            let (o_l, l) = scored_opener(&limited, Some(&harm), &turns, q, 8).unwrap();
            assert_eq!((o_t.text, t.score), (o_l.text, l.score), "{q}");
            assert_eq!((t.harmful(), l.harmful()), (false, between), "{q}: margin {margin}");
        }
    }

    #[test]
    fn seam_gaps_follow_punctuation() {
        let cfg = Config::default();
        assert_eq!(seam_gap_ms(&cfg, "Sure."), cfg.tts.sentence_silence_ms as f64);
        assert_eq!(seam_gap_ms(&cfg, "Well, "), cfg.tts.clause_silence_ms as f64);
        assert_eq!(seam_gap_ms(&cfg, "The sky is"), WORD_GAP_MS);
    }
}
