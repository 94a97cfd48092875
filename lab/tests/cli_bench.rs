//! The lab's benchmarks end to end: `bench lm --json` on a random-weight μLM (the report's
//! keys and their order of magnitude, not its timings: those are the benchmark's figures) and
//! `bench pipeline` over two spoken fixture questions in its μLM and cloud-only modes, and the
//! voice fixtures against whole-file ASR.

mod common;

use common::{assets_present, lab, root, stderr};

/// Both tests load real models and run on the same two cores; one at a time keeps the
/// pipeline's replayed turns from running seconds late (the next question would barge in).
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

const MODELS: &[&str] = &[
    "models/whisper/ggml-tiny.en.bin",
    "models/piper/en_US-joe-medium.onnx",
    "models/gemma/gemma-3-270m-q4_k_m.gguf",
    "models/mulm/mulm.json",
    "fixtures/questions/questions.toml",
];

#[derive(serde::Deserialize)]
struct Question {
    id: String,
}

#[derive(serde::Deserialize)]
struct Questions {
    question: Vec<Question>,
}

fn questions() -> Vec<Question> {
    let text = std::fs::read_to_string(root().join("fixtures/questions/questions.toml")).unwrap();
    toml::from_str::<Questions>(&text).unwrap().question
}

#[test]
fn bench_lm_json_has_the_required_keys() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let out = lab(&["bench", "lm", "--json", "--window-s", "1", "--warmup", "1", "--presets", "256-8", "--model", "/nonexistent/none"]);
    assert!(out.status.success(), "bench lm failed: {}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("bench lm --json prints JSON");
    let results = v["results"].as_array().expect("results");
    let precisions: Vec<&str> = results.iter().map(|r| r["precision"].as_str().unwrap()).collect();
    assert_eq!(precisions, ["f32", "q8_0"]);
    for r in results {
        assert_eq!(r["weights"], "random-init");
        assert_eq!(r["model"], "μLM-256-8");
        for k in [
            "ttft_ms",
            "time_to_4_words_ms",
            "time_to_8_words_ms",
            "generation_tok_s",
            "prefill_ms",
            "first_token_decode_ms",
            "prompt_tok_s",
            "end_to_end_tok_s",
            "peak_rss_mib",
        ] {
            assert!(r[k].as_f64().is_some_and(|x| x > 0.0), "{k} missing or not positive in {r}");
        }
        assert!(r["runs"].as_u64().unwrap() >= 1);
        assert_eq!(r["options"]["forced_tokens_per_word"], 1, "random-init must force one token per word");
        assert!(r.get("llama_cpp").is_none());
        let t4 = r["time_to_4_words_ms"].as_f64().unwrap();
        assert!(r["ttft_ms"].as_f64().unwrap() <= t4 && t4 <= r["time_to_8_words_ms"].as_f64().unwrap());
    }
    let p = &v["prompts"][0];
    assert_eq!(p["prompt_tokens"].as_u64().unwrap(), p["query_tokens"].as_u64().unwrap() + 4);

    let out = lab(&["bench", "lm", "--json", "--presets", "nope"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("nope"), "{}", stderr(&out));
}

/// `--precisions` picks the exports measured: Q4_K's row names its format, a smaller file.
#[test]
fn bench_lm_measures_the_precisions_asked_for() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let args = ["bench", "lm", "--json", "--window-s", "0.5", "--warmup", "1", "--presets", "256-8", "--model", "/nonexistent/none"];
    let out = lab(&[&args[..], &["--precisions", "q4_k, q8_0"]].concat());
    assert!(out.status.success(), "bench lm failed: {}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("bench lm --json prints JSON");
    let results = v["results"].as_array().expect("results");
    let col = |k: &str| results.iter().map(|r| r[k].as_str().unwrap().to_string()).collect::<Vec<_>>();
    assert_eq!(col("precision"), ["q4_k", "q8_0"]);
    assert_eq!(col("model_format"), ["gguf:q4k+q8_0", "gguf:q8_0"]);
    assert!(results[0]["gguf_bytes"].as_u64().unwrap() < results[1]["gguf_bytes"].as_u64().unwrap());

    let out = lab(&[&args[..], &["--precisions", "q3"]].concat());
    assert!(!out.status.success());
    assert!(stderr(&out).contains("q3") && !stderr(&out).contains("panicked"), "{}", stderr(&out));
}

#[test]
fn bench_pipeline_measures_the_mulm_and_the_cloud_only_baseline() {
    if !assets_present(MODELS) {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let out =
        lab(&["bench", "pipeline", "--limit", "2", "--latencies-ms", "400", "--cloud-tokens-per-s", "200", "--skip-paused", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows.iter().map(|r| r["mode"].as_str().unwrap()).collect::<Vec<_>>(), ["mulm", "cloud_only"]);
    let qs = questions();
    for r in rows {
        let turns = r["turns"].as_array().unwrap();
        assert_eq!(turns.len(), 2, "{r}");
        for (t, q) in turns.iter().zip(&qs) {
            assert_eq!(t["question"], q.id.as_str());
            let f = |k: &str| t[k].as_f64();
            let v2v = f("voice_to_voice_ms").expect("every turn is answered");
            // Nothing plays before the endpoint.
            assert!(v2v >= f("endpoint_ms_after_speech").unwrap() - 1e-6, "{t}");
            if r["mode"] == "mulm" {
                assert!(!t["opener_text"].as_str().unwrap().is_empty(), "{t}");
                assert!(f("opener_ready_ms_after_speech").is_some(), "{t}");
            } else {
                // The baseline speaks the cloud's first words, which come ≥ 400 ms after the
                // request, itself after the transcript.
                assert!(t["opener_text"].as_str().unwrap().is_empty(), "{t}");
                assert!(v2v >= 400.0 + f("asr_done_ms_after_speech").unwrap(), "{t}");
            }
        }
    }
    // The voice fixtures (not the Piper voice): replayed once per latency, and scored against
    // whole-file ASR; no live run was asked for, so its goal is not measured.
    let voices = &v["voices"];
    let n = voices["fixtures"].as_u64().unwrap();
    assert!(n >= 10, "{voices}");
    let replay = voices["replay"].as_array().unwrap();
    assert_eq!(replay.len(), 1);
    assert_eq!(replay[0]["mode"], "mulm_voices");
    assert_eq!(replay[0]["turns"].as_array().unwrap().len() as u64, n);
    let wer = &voices["wer"];
    let (p, w) = (wer["pipeline_mean_wer"].as_f64().unwrap(), wer["whole_file_mean_wer"].as_f64().unwrap());
    assert!((wer["gap_points"].as_f64().unwrap() - 100.0 * (p - w)).abs() < 1e-9, "{wer}");
    assert!(w < 0.5, "whole-file ASR hears these fixtures: {wer}");
    assert!(voices["live"].is_null() && v["goals"]["voices_live_v2v_p50_le_200ms"].is_null(), "{}", v["goals"]);
    assert!(v["goals"]["wer_gap_le_2_points"].is_boolean(), "{}", v["goals"]);
    assert!(v["goals"]["speedup_at_2s"].is_null(), "no 2 s row was run");
    // Not measured reads null, never "met" or "not met" (issue 17 §6).
    assert!(v["goals"]["speedup_at_2s_ge_5x"].is_null(), "{}", v["goals"]);
    assert!(v["goals"]["voice_to_voice_p50_le_350ms"].is_boolean(), "{}", v["goals"]);
    assert!(v["provenance"]["commit"].is_string() && v["provenance"]["cpu_threads"].as_u64().unwrap() >= 1, "{}", v["provenance"]);
}
