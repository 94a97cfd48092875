//! `firstword replay` end to end on a real recording: VAD, Whisper, a (random-weight,
//! development) μLM, Piper, and the local Gemma gateway in-process.

mod common;

use std::path::{Path, PathBuf};

use common::{assets_present, firstword, root};

/// What a replay through every stage reads, besides the μLM (a development one here).
const REPLAY_ASSETS: [&str; 4] = [
    "models/whisper/ggml-tiny.en.bin",
    "models/piper/en_US-joe-medium.onnx",
    "models/gemma/gemma-3-270m-q4_k_m.gguf",
    "fixtures/audio/fetched/speech_orig_16k.wav",
];

/// A random-weight development μLM-256-8 written to `dir/mulm`; returns that directory.
fn dev_checkpoint(dir: &Path) -> PathBuf {
    let ckpt = dir.join("mulm");
    let p = lm::Preset::from_name("256-8").unwrap();
    lm::dev::write_dev_checkpoint(&ckpt, p.name(), &p.config(), 1).expect("writing a development checkpoint");
    ckpt
}

#[test]
fn replay_writes_a_consistent_timeline_for_each_question() {
    if !assets_present(&REPLAY_ASSETS) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ckpt = dev_checkpoint(dir.path());
    let cfg = dir.path().join("replay.toml");
    std::fs::write(
        &cfg,
        format!(
            "[vad]\nhangover_ms = 480\n[lm]\nmodel_dir = {:?}\n[cloud]\nmax_tokens = 24\nlocal_latency_ms = 300\n",
            ckpt.to_str().unwrap()
        ),
    )
    .unwrap();
    // Two questions separated by 1.5 s of silence: the recording, twice.
    let rec = audio::load_wav_16k_mono(root().join("fixtures/audio/fetched/speech_orig_16k.wav")).unwrap();
    let mut two = rec.clone();
    two.extend(std::iter::repeat_n(0.0f32, 24_000));
    two.extend_from_slice(&rec);
    let input = dir.path().join("two.wav");
    audio::write_wav(&input, &two, 16_000).unwrap();
    let out_dir = dir.path().join("out");
    let out = firstword(&[
        "replay",
        input.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
        "--config",
        cfg.to_str().unwrap(),
        "--clock",
        "modeled",
    ]);
    assert!(out.status.success(), "replay failed: {}", String::from_utf8_lossy(&out.stderr));

    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(out_dir.join("timeline.json")).unwrap()).unwrap();
    assert_eq!(v["clock"], "modeled");
    let turns = v["turns"].as_array().unwrap();
    // The pauses between the recording's sentences are shorter than this test's 480 ms
    // hangover: one turn per copy.
    assert_eq!(turns.len(), 2, "{v}");
    let second_start = turns[1]["speech_start_ms"].as_f64().unwrap();
    assert!((second_start - (rec.len() as f64 / 16.0 + 1_500.0)).abs() < 700.0, "second turn at {second_start} ms");
    let all: String = turns.iter().map(|t| t["transcript"].as_str().unwrap().to_lowercase()).collect::<Vec<_>>().join(" ");
    assert!(all.contains("birch canoe") && all.contains("steady work"), "{all}");
    for t in turns {
        let f = |k: &str| t[k].as_f64();
        let (end, endpoint) = (f("speech_end_ms").unwrap(), f("endpoint_ms").unwrap());
        assert!(endpoint >= end, "{t}");
        assert!(f("asr_done_ms").unwrap() > f("speech_start_ms").unwrap(), "{t}");
        // `--clock modeled`: Whisper took its modeled cost (replay::clock::CostModel: 60 ms +
        // 0.05 × the audio, which runs from ≤ 500 ms of pre-roll before the speech start to
        // the endpoint), not what it took on this host.
        let asr_ms = f("asr_done_ms").unwrap() - f("work_start_ms").unwrap();
        let speech_ms = endpoint - f("speech_start_ms").unwrap();
        assert!((60.0 + 0.05 * speech_ms - 1.0..=60.0 + 0.05 * (speech_ms + 500.0) + 5.0).contains(&asr_ms), "ASR took {asr_ms} ms: {t}");
        // The reply never starts before the endpoint, and the cloud request follows the opener.
        if let Some(first) = f("first_audio_ms") {
            assert!(first >= endpoint, "audio before the endpoint: {t}");
            assert!((first - end - f("voice_to_voice_ms").unwrap()).abs() < 1e-6);
        }
        if let (Some(d), Some(o)) = (f("cloud_first_delta_ms"), f("opener_ready_ms")) {
            assert!(d >= o, "{t}");
        }
        let segs = t["segments"].as_array().unwrap();
        for w in segs.windows(2) {
            assert!(w[1]["start_ms"].as_f64().unwrap() >= w[0]["end_ms"].as_f64().unwrap() - 1e-6, "overlapping speech: {t}");
        }
    }
    let d = audio::read_wav(out_dir.join("reply.wav")).unwrap();
    assert!(d.duration_ms() >= two.len() as f64 / 16.0, "reply.wav shorter than the input");
    let svg = std::fs::read_to_string(out_dir.join("timeline.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("turn 1"));
}

/// A checkpoint whose mulm.json asks for the gate's harmful-request check gets it: every
/// turn's timeline carries the check's margin, with no `[gate]` setting; `harm_check = false`
/// in the config turns it off.
#[test]
fn a_checkpoint_that_asks_for_the_harm_check_gets_it_unless_the_config_says_no() {
    if !assets_present(&[&REPLAY_ASSETS[..], &["models/minilm/model.safetensors", lm::harm::HARM_HEAD]].concat()) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ckpt = dev_checkpoint(dir.path());
    let json = ckpt.join("mulm.json");
    let mut mulm: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    mulm["opener"]["harm_check"] = true.into();
    std::fs::write(&json, serde_json::to_vec_pretty(&mulm).unwrap()).unwrap();
    let input = root().join("fixtures/audio/fetched/speech_orig_16k.wav");
    for (gate, on) in [("", true), ("[gate]\nharm_check = false\n", false)] {
        let cfg = dir.path().join("replay.toml");
        let lm_table = format!("[lm]\nmodel_dir = {:?}\n", ckpt.to_str().unwrap());
        std::fs::write(&cfg, format!("{lm_table}[cloud]\nmax_tokens = 8\nlocal_latency_ms = 300\n{gate}")).unwrap();
        let out_dir = dir.path().join(format!("out-{on}"));
        let (input, out, cfg) = (input.to_str().unwrap(), out_dir.to_str().unwrap(), cfg.to_str().unwrap());
        let run = firstword(&["replay", input, "--out", out, "--config", cfg, "--clock", "modeled"]);
        assert!(run.status.success(), "replay failed: {}", String::from_utf8_lossy(&run.stderr));
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(out_dir.join("timeline.json")).unwrap()).unwrap();
        let turns = v["turns"].as_array().unwrap();
        assert!(!turns.is_empty(), "{v}");
        for t in turns {
            // A harmless sentence ("The birch canoe slid on the smooth planks."): not flagged.
            assert_eq!(t["harm_score"].as_f64().map(|m| m < 0.0), on.then_some(true), "harm_check on: {on}: {t}");
        }
    }
}

#[test]
fn replay_of_a_broken_file_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("broken.wav");
    std::fs::write(&bad, b"RIFF").unwrap();
    let out = firstword(&["replay", bad.to_str().unwrap(), "--out", dir.path().join("o").to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("broken.wav") && !err.contains("panicked"), "{err}");
}
