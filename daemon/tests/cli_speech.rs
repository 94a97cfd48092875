//! The `firstword` binary on real models: say → asr round trip, JSON output, clear errors
//! on bad input. Runs from the repository root, where the default config points.

mod common;

use common::{assets_present, firstword};

/// What the speech tests need from scripts/setup.sh.
const SPEECH_MODELS: &[&str] =
    &["models/whisper/ggml-tiny.en.bin", "models/piper/en_US-joe-medium.onnx", "models/onnxruntime/libonnxruntime.so.1.24.2"];

#[test]
fn piper_speaks_whisper_hears_it_back() {
    if !assets_present(SPEECH_MODELS) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("said.wav");
    let sentence = "The quick brown fox jumps over the lazy dog near the river bank.";
    let out = firstword(&["say", sentence, "--out", wav.to_str().unwrap()]);
    assert!(out.status.success(), "say failed: {}", String::from_utf8_lossy(&out.stderr));
    let d = audio::read_wav(&wav).unwrap();
    assert_eq!(d.rate_hz, 22_050);
    assert!((2_000.0..8_000.0).contains(&d.duration_ms()), "{} ms", d.duration_ms());

    let out = firstword(&["asr", wav.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "asr failed: {}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("asr --json prints JSON");
    let text = v["text"].as_str().unwrap();
    let w = asr::wer::wer(sentence, text);
    eprintln!("round trip: {text:?} WER {:.3}", w.wer);
    assert!(w.wer <= 0.15, "round-trip WER {:.3}: {text:?}", w.wer);
    assert!(v["segments"].as_array().is_some_and(|s| !s.is_empty()));
    assert!(v["timings"]["total_ms"].as_f64().unwrap() > 0.0);
}

#[test]
fn say_strips_markdown_before_speaking() {
    if !assets_present(SPEECH_MODELS) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("md.wav");
    let out = firstword(&["say", "**Sure!** See https://example.com for `details`.", "--out", wav.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = firstword(&["asr", wav.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout).to_lowercase();
    assert!(text.contains("sure"), "{text:?}");
    assert!(!text.contains("asterisk") && !text.contains("star"), "markdown was read aloud: {text:?}");
}

#[test]
fn broken_input_gives_a_clear_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.wav");
    std::fs::write(&bad, b"RIFF\x10\x00\x00\x00WAVEfmt ").unwrap();
    let out = firstword(&["asr", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.wav") && err.to_lowercase().contains("header"), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    let out = firstword(&["asr", "/nonexistent/q.wav"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/q.wav"));
}

#[test]
fn check_config_names_the_bad_key() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "[vad]\nhangover_ms = 1\n").unwrap();
    let out = firstword(&["check-config", cfg.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("vad.hangover_ms"));
    let out = firstword(&["check-config", "configs/firstword.toml"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
