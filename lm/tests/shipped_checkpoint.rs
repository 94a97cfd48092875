//! The shipped μLM (`models/mulm`: Q8_0 GGUF + tokenizer + mulm.json + parity.json from
//! training/export.py) against the PyTorch f32 logits it was exported with. Q8_0 rounding
//! moves logits by a few hundredths, so the check is the decision that matters for greedy
//! openers — the same top token — plus a bound on the KL divergence of the distributions, on
//! every parity case.
//!
//! Runs when `models/mulm/parity.json` and `model.gguf` exist; otherwise testkit's rule
//! (skip with a message, or fail when models are required).

mod common;

use std::path::PathBuf;

use lm::{ChatMessage, ChatTokenizer, Role};
use serde_json::Value;

fn shipped_dir() -> Option<PathBuf> {
    testkit::present(&["models/mulm/parity.json", "models/mulm/model.gguf"]).then(|| testkit::root().join("models/mulm"))
}

/// KL(p ‖ q) in nats between the softmax distributions of logits `p` and `q` (same length).
fn kl_nats(p: &[f32], q: &[f32]) -> f32 {
    let log_sum_exp = |v: &[f32]| {
        let m = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        m + v.iter().map(|x| (x - m).exp()).sum::<f32>().ln()
    };
    let (zp, zq) = (log_sum_exp(p), log_sum_exp(q));
    p.iter().zip(q).map(|(a, b)| (a - zp).exp() * ((a - zp) - (b - zq))).sum()
}

fn argmax(v: &[f32]) -> usize {
    v.iter().enumerate().fold((0, f32::NEG_INFINITY), |b, (i, &x)| if x > b.1 { (i, x) } else { b }).0
}

#[test]
fn shipped_q8_0_gguf_keeps_pytorch_greedy_choices() {
    let Some(dir) = shipped_dir() else { return };
    let (model, mulm) = lm::load_dir(&dir).unwrap();
    assert!(model.format().starts_with("gguf:"), "the shipped checkpoint is a GGUF: {}", model.format());
    let tok = ChatTokenizer::from_file(&dir.join("tokenizer.json"), &mulm).unwrap();
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("parity.json")).unwrap()).unwrap();
    let cases = doc["cases"].as_array().unwrap();
    assert!(cases.len() >= 3);
    for c in cases {
        let ids: Vec<u32> = c["ids"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect();
        if let Some(msgs) = c["messages"].as_array() {
            let turns: Vec<ChatMessage> = msgs
                .iter()
                .map(|m| ChatMessage {
                    role: if m["role"] == "user" { Role::User } else { Role::Assistant },
                    content: m["content"].as_str().unwrap().to_string(),
                })
                .collect();
            let ours = tok.encode_chat(&turns, mulm.model.max_seq_len).unwrap().ids;
            // parity.json stores the prompt as PyTorch serialized it (with the generation prefix
            // for a chat ending on a user turn): ours must be a prefix of it or equal.
            assert!(ids.starts_with(&ours) || ours == ids, "{}: ids differ", c["name"]);
        }
        let want: Vec<f32> = c["logits_last"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
        let mut cache = model.new_cache().unwrap();
        let got = model.forward(&ids, &mut cache, false).unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(got.len(), want.len());
        assert_eq!(argmax(&got), argmax(&want), "{}: greedy token differs from PyTorch", c["name"]);
        // Q8_0's error is judged on the distribution the opener samples from: KL(PyTorch ‖ Q8_0)
        // in nats. The largest single-logit difference is a loose guard only: it sits in the
        // improbable tail, and it varies between weights whose per-tensor Q8_0 error is the same
        // (0.54 % RMS): "longer" went 0.12 → 0.45 from the weights of 16:40 to those of 23:25
        // on 2026-12-07, while its KL went 0.0006 → 0.0013.
        let kl = kl_nats(&want, &got);
        let drift = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(kl < 0.005, "{}: KL(PyTorch ‖ Q8_0) {kl} nats", c["name"]);
        assert!(drift < 1.0, "{}: max |Δlogit| {drift} vs PyTorch f32", c["name"]);
        eprintln!("{}: same greedy token, KL {kl:.5} nats, max |Δlogit| {drift:.4}", c["name"]);
    }
}

/// A conversation's openers from the kept KV cache (only the new turns prefilled) are the
/// openers a fresh cache writes: same tokens, log-probabilities within float rounding.
#[test]
fn openers_from_the_kept_cache_equal_fresh_ones() {
    let Some(dir) = shipped_dir() else { return };
    let (model, mulm) = lm::load_dir(&dir).unwrap();
    let tok = ChatTokenizer::from_file(&dir.join("tokenizer.json"), &mulm).unwrap();
    let turn1 = [ChatMessage::user("Why is the sky blue?")];
    let turn2 = [
        ChatMessage::user("Why is the sky blue?"),
        ChatMessage::assistant("Sunlight scatters off the air, and blue scatters most."),
        ChatMessage::user("And why are sunsets red?"),
    ];
    let fresh =
        |h: &[ChatMessage]| lm::OpenerEngine::new(&model, &tok).unwrap().opener(lm::OpenerInput::History(h), Some(8), |_, _| {}).unwrap();
    let mut kept = lm::OpenerEngine::new(&model, &tok).unwrap();
    let a1 = kept.opener(lm::OpenerInput::History(&turn1), Some(8), |_, _| {}).unwrap();
    // The second prompt starts with the first one: only the rest is prefilled.
    let before = kept.into_kv();
    let shared = before.tokens().len();
    assert!(shared > a1.prompt_tokens, "the opener's own tokens are cached too");
    let mut kept = lm::OpenerEngine::resume(&model, &tok, before).unwrap();
    let a2 = kept.opener(lm::OpenerInput::History(&turn2), Some(8), |_, _| {}).unwrap();
    for (got, h) in [(&a1, &turn1[..]), (&a2, &turn2[..])] {
        let want = fresh(h);
        assert_eq!(got.tokens, want.tokens, "{:?} vs {:?}", got.text, want.text);
        assert_eq!(got.prompt_tokens, want.prompt_tokens);
        for (x, y) in got.token_logprobs.iter().zip(&want.token_logprobs) {
            assert!((x - y).abs() < 1e-3, "log-probability {x} vs {y}");
        }
    }
    // Warming with the conversation so far runs only its new answer; again, nothing is
    // left to run but the one token whose logits a prefill needs.
    let mut earlier = turn2.to_vec();
    earlier.push(ChatMessage::assistant("The light crosses more air at sunset."));
    let answer = tok.encode_text("The light crosses more air at sunset.").unwrap().len();
    let n = kept.warm(&earlier).unwrap();
    assert!((answer..answer + 8).contains(&n), "{n} tokens run for an answer of {answer}");
    assert_eq!(kept.warm(&earlier).unwrap(), 1);
    // A cache made for another model (the 2-layer test preset) is refused.
    let other = lm::Model::from_weights(&common::tiny().0, None).unwrap();
    assert!(lm::OpenerEngine::resume(&other, &tok, kept.into_kv()).is_err());
}

/// The prompt bias (`opener.prompt_bias`) makes the shipped μLM restate the question's words
/// where its own opener does not, each word once, and the gate still reads the model's own
/// log-probabilities: the greedy choice without the bias is the most likely token, so the first
/// token chosen under the bias is never more likely than it.
#[test]
fn the_prompt_bias_restates_the_question_once_with_the_models_own_logprobs() {
    let Some(dir) = shipped_dir() else { return };
    let (model, mulm) = lm::load_dir(&dir).unwrap();
    let tok = ChatTokenizer::from_file(&dir.join("tokenizer.json"), &mulm).unwrap();
    let mut plain = lm::OpenerEngine::new(&model, &tok).unwrap();
    plain.settings.prompt_bias = 0.0;
    let mut biased = lm::OpenerEngine::new(&model, &tok).unwrap();
    biased.settings.prompt_bias = 4.0;
    // Questions whose 8-word opener from the shipped model (since 2026-12-07 13:20 UTC) shares
    // no word with them without the bias (`eval everyday`, fixtures/everyday).
    let mut restated = 0;
    for q in
        ["What helps me fall asleep faster at night?", "Why do we hear thunder after lightning?", "Why do bananas turn brown so quickly?"]
    {
        let a = plain.opener(lm::OpenerInput::Query(q), Some(8), |_, _| {}).unwrap();
        let b = biased.opener(lm::OpenerInput::Query(q), Some(8), |_, _| {}).unwrap();
        let shares = |o: &str| lm::gate::topical(q, o);
        if !shares(&a.text) && shares(&b.text) {
            restated += 1;
        }
        assert!(b.token_logprobs[0] <= a.token_logprobs[0] + 1e-4, "{q}: {:?} vs {:?}", b.token_logprobs, a.token_logprobs);
        assert!(b.token_logprobs.iter().all(|l| l.is_finite() && *l <= 0.0), "{q}");
        // No question word is pulled in twice: each content word at most once more than the
        // plain opener has it.
        for w in lm::gate::content_words(q) {
            let count =
                |o: &str| o.to_lowercase().split_whitespace().filter(|x| x.trim_matches(|c: char| !c.is_alphanumeric()) == w).count();
            assert!(count(&b.text) <= count(&a.text).max(1), "{q}: {w:?} in {:?}", b.text);
        }
        eprintln!("{q}: {:?} → {:?}", a.text, b.text);
    }
    assert!(restated >= 2, "the bias restated the question in {restated} of 3 openers");
}

/// A question whose harmful-request margin is over `opener.prompt_bias_max_harm` gets the
/// opener the model writes without the bias; one under it, or with no margin (the check off),
/// gets the biased one.
#[test]
fn the_prompt_bias_is_withheld_above_the_harm_limit() {
    let Some(dir) = shipped_dir() else { return };
    let (model, mulm) = lm::load_dir(&dir).unwrap();
    let tok = ChatTokenizer::from_file(&dir.join("tokenizer.json"), &mulm).unwrap();
    let mut engine = lm::OpenerEngine::new(&model, &tok).unwrap();
    engine.settings.prompt_bias = 0.0;
    let q = lm::OpenerInput::Query("How long should I boil an egg?");
    let plain = engine.opener(q, Some(8), |_, _| {}).unwrap().text;
    engine.settings.prompt_bias = 4.0;
    engine.settings.prompt_bias_max_harm = Some(-0.4);
    let biased = engine.opener(q, Some(8), |_, _| {}).unwrap().text;
    assert_ne!(plain, biased, "the bias must change this opener for the test to say anything");
    let at = |e: &mut lm::OpenerEngine, m| e.opener_for_harm(q, Some(8), m, |_, _| {}).unwrap().text;
    assert_eq!(at(&mut engine, Some(0.3)), plain);
    assert_eq!(at(&mut engine, Some(-0.39)), plain);
    assert_eq!(at(&mut engine, Some(-0.4)), biased);
    assert_eq!(at(&mut engine, Some(-3.0)), biased);
    assert_eq!(at(&mut engine, None), biased);
}
