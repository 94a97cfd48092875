//! Parity with the PyTorch trainer (training/model.py): the Rust runtime must compute the same
//! logits as PyTorch (f32, max |Δ| ≤ 1e-4) on the same weights, and serialize chats to the same
//! token ids.
//!
//! The model directory comes from `FIRSTWORD_PARITY_DIR` (e.g. a real export from
//! training/export.py) or else the committed fixture `lm/tests/fixtures/parity-tiny/`, written by
//! `training/parity.py` (tiny 64-2 preset, vocab 512, seeded random weights; < 1 MB), so this test
//! runs in CI without torch. The directory holds mulm.json, tokenizer.json, model.safetensors and
//! parity.json (cases: messages, token ids, the PyTorch logits of the last position — the full
//! vector or its top-20 — and, for small models, the logits of every position).

use std::path::{Path, PathBuf};

use lm::gguf_export::ExportType;
use lm::{export_gguf, ChatMessage, ChatTokenizer, Model, Role};
use serde_json::Value;

fn parity_dir() -> PathBuf {
    match std::env::var_os("FIRSTWORD_PARITY_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/parity-tiny"),
    }
}

fn read_json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).unwrap()
}

fn f32s(v: &Value) -> Vec<f32> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

fn u32s(v: &Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

struct Case {
    name: String,
    ids: Vec<u32>,
    messages: Option<Vec<ChatMessage>>,
    last: Option<Vec<f32>>,
    top: Vec<(usize, f32)>,
    all: Option<Vec<Vec<f32>>>,
}

fn cases(doc: &Value) -> Vec<Case> {
    doc["cases"]
        .as_array()
        .expect("parity.json: cases")
        .iter()
        .map(|c| Case {
            name: c["name"].as_str().unwrap_or("?").to_string(),
            ids: u32s(&c["ids"]),
            messages: c.get("messages").filter(|m| !m.is_null()).map(|m| {
                m.as_array()
                    .unwrap()
                    .iter()
                    .map(|t| ChatMessage {
                        role: match t["role"].as_str().unwrap() {
                            "user" => Role::User,
                            "assistant" => Role::Assistant,
                            "system" => Role::System,
                            r => panic!("role {r}"),
                        },
                        content: t["content"].as_str().unwrap().to_string(),
                    })
                    .collect()
            }),
            last: c.get("logits_last").filter(|v| !v.is_null()).map(f32s),
            top: c["top"]
                .as_array()
                .map(|a| a.iter().map(|p| (p[0].as_u64().unwrap() as usize, p[1].as_f64().unwrap() as f32)).collect())
                .unwrap_or_default(),
            all: c.get("logits_all").filter(|v| !v.is_null()).map(|v| v.as_array().unwrap().iter().map(f32s).collect()),
        })
        .collect()
}

/// Max |Δ| between Rust last-position logits and the PyTorch reference of `c`.
fn compare_last(c: &Case, got: &[f32]) -> f32 {
    let mut d = 0f32;
    if let Some(want) = &c.last {
        d = d.max(max_abs_diff(got, want));
    }
    for &(i, v) in &c.top {
        d = d.max((got[i] - v).abs());
    }
    // the top-1 token must agree when it is not a near tie
    if c.top.len() >= 2 && c.top[0].1 - c.top[1].1 > 1e-3 {
        let arg = got.iter().enumerate().fold((0, f32::NEG_INFINITY), |b, (i, &v)| if v > b.1 { (i, v) } else { b }).0;
        assert_eq!(arg, c.top[0].0, "{}: argmax differs", c.name);
    }
    d
}

fn check_model(m: &Model, cs: &[Case], tol: f32, label: &str) -> f32 {
    let mut worst = 0f32;
    for c in cs {
        // prefill in one call
        let mut cache = m.new_cache().unwrap();
        let got: Vec<f32> = m.forward(&c.ids, &mut cache, false).unwrap().to_vec1().unwrap();
        let d = compare_last(c, &got);
        println!("{label} {}: {} tokens, max |Δlogit| last position = {d:.3e}", c.name, c.ids.len());
        worst = worst.max(d);
        // every position (prefill with all logits)
        if let Some(all) = &c.all {
            let mut cache = m.new_cache().unwrap();
            let got: Vec<Vec<f32>> = m.forward(&c.ids, &mut cache, true).unwrap().to_vec2().unwrap();
            assert_eq!(got.len(), all.len());
            let d = got.iter().zip(all).map(|(g, w)| max_abs_diff(g, w)).fold(0.0, f32::max);
            println!("{label} {}: max |Δlogit| all positions = {d:.3e}", c.name);
            worst = worst.max(d);
        }
        // token-by-token decoding through the KV cache must agree as well
        let mut cache = m.new_cache().unwrap();
        let mut last = Vec::new();
        for &t in &c.ids {
            last = m.forward(&[t], &mut cache, false).unwrap().to_vec1().unwrap();
        }
        let d = compare_last(c, &last);
        println!("{label} {}: max |Δlogit| incremental decode = {d:.3e}", c.name);
        worst = worst.max(d);
    }
    assert!(worst <= tol, "{label}: Rust vs PyTorch max |Δlogit| {worst:.3e} > {tol:.1e}");
    worst
}

#[test]
fn rust_logits_match_pytorch() {
    let dir = parity_dir();
    let doc = read_json(&dir.join("parity.json"));
    let tol = doc["tolerance"].as_f64().unwrap_or(1e-4) as f32;
    assert!(tol <= 1e-4, "parity tolerance must be ≤ 1e-4 (f32)");
    let cs = cases(&doc);
    assert!(!cs.is_empty());
    // The f32 safetensors, even where the export also holds a (preferred) quantized GGUF.
    let mulm = lm::MulmFile::load(&dir.join("mulm.json")).expect("mulm.json");
    let m = lm::load_safetensors(&dir.join("model.safetensors"), &mulm, None).expect("load model.safetensors");
    assert_eq!(m.format(), "f32", "parity is checked on the f32 safetensors weights");
    assert_eq!(doc["preset"].as_str().unwrap(), mulm.preset);
    let worst = check_model(&m, &cs, tol, "safetensors");
    println!("parity: max |Δlogit| over all cases = {worst:.3e} (tolerance {tol:.0e})");

    // The same weights through the f32 GGUF export (llama.cpp names, permuted Q/K rows) agree too.
    let tmp = tempfile::tempdir().unwrap();
    let w = lm::Weights::load_safetensors(&dir.join("model.safetensors"), &mulm.model).unwrap();
    let out = tmp.path().join("model.gguf");
    export_gguf(&w, &mulm, &dir.join("tokenizer.json"), &out, ExportType::F32).unwrap();
    let (g, _) = lm::load_gguf(&out, Some(&mulm)).unwrap();
    check_model(&g, &cs, tol, "gguf-f32");
}

#[test]
fn rust_chat_serialization_matches_pytorch() {
    let dir = parity_dir();
    let doc = read_json(&dir.join("parity.json"));
    let mulm = lm::MulmFile::load(&dir.join("mulm.json")).unwrap();
    let tok = ChatTokenizer::from_file(&dir.join("tokenizer.json"), &mulm).unwrap();
    let mut checked = 0;
    for c in cases(&doc) {
        if let Some(msgs) = &c.messages {
            let p = tok.encode_chat(msgs, mulm.model.max_seq_len).unwrap();
            assert_eq!(p.dropped_turns, 0);
            assert_eq!(p.ids, c.ids, "{}: Rust and PyTorch serialize the chat differently", c.name);
            checked += 1;
        }
    }
    assert!(checked > 0, "parity.json has no chat cases");
}
