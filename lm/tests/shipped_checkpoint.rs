//! The shipped μLM (`models/mulm`: Q8_0 GGUF + tokenizer + mulm.json + parity.json from
//! training/export.py) against the PyTorch f32 logits it was exported with. Q8_0 rounding
//! moves logits by a few hundredths, so the check is the decision that matters for greedy
//! openers — the same top token — plus a bound on the drift, on every parity case.
//!
//! Runs when `models/mulm/parity.json` and `model.gguf` exist; otherwise testkit's rule
//! (skip with a message, or fail when models are required).

use std::path::PathBuf;

use lm::{ChatMessage, ChatTokenizer, Role};
use serde_json::Value;

fn shipped_dir() -> Option<PathBuf> {
    testkit::present(&["models/mulm/parity.json", "models/mulm/model.gguf"]).then(|| testkit::root().join("models/mulm"))
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
        let drift = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(drift < 0.25, "{}: max |Δlogit| {drift} vs PyTorch f32", c["name"]);
        eprintln!("{}: same greedy token, max |Δlogit| {drift:.4}", c["name"]);
    }
}
