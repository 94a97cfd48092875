//! Turn-taking on speech that is not the project's Piper voice (fixtures/voices, espeak-ng):
//! pre-roll keeps an abrupt first word, and semantic endpointing keeps an utterance with a
//! 450–650 ms pause mid-sentence ("Set a timer for … twelve minutes") as one turn, where the
//! fixed 300 ms hangover split it in two; and when an endpoint came too early anyway, the user
//! going on merges both parts into one question (`endpoint.resume_merge_ms`).

mod common;

use common::{assets_present, firstword, root};

const MODELS: &[&str] = &[
    "models/whisper/ggml-tiny.en.bin",
    "models/piper/en_US-joe-medium.onnx",
    "models/gemma/gemma-3-270m-q4_k_m.gguf",
    "models/mulm/mulm.json",
];

/// (fixture, words that only its second half contains)
const PAUSED: [(&str, &str); 3] = [("timer", "minutes"), ("recipe", "rice"), ("weather", "tomorrow")];

fn replay(input: &[f32], extra_config: &str) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("in.wav");
    audio::write_wav(&wav, input, 16_000).unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, format!("{extra_config}\n[cloud]\nmax_tokens = 8\nlocal_latency_ms = 200\n")).unwrap();
    let out_dir = dir.path().join("out");
    let out = firstword(&[
        "replay",
        wav.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
        "--config",
        cfg.to_str().unwrap(),
        "--clock",
        "modeled",
    ]);
    assert!(out.status.success(), "replay failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&std::fs::read(out_dir.join("timeline.json")).unwrap()).unwrap()
}

#[test]
fn other_voices_are_heard_whole_and_paused_sentences_stay_one_turn() {
    if !assets_present(MODELS) {
        return;
    }
    // An abrupt onset ("How…") first, then the three paused sentences; 5 s of silence after
    // each (the reply plays there).
    let mut input = Vec::new();
    let mut ids = vec!["hiccups"];
    ids.extend(PAUSED.iter().map(|(id, _)| *id));
    for id in &ids {
        input.extend(audio::load_wav_16k_mono(root().join(format!("fixtures/voices/{id}.wav"))).unwrap());
        input.extend(std::iter::repeat_n(0.0f32, 80_000));
    }
    let v = replay(&input, "");
    let turns = v["turns"].as_array().unwrap();
    let heard: Vec<&str> = turns.iter().map(|t| t["transcript"].as_str().unwrap()).collect();
    eprintln!("turns: {heard:?}");

    // Pre-roll: the replay keeps the abrupt first word that whole-file ASR hears (without
    // it Whisper heard "I'll do my get freedom" for "How do I get rid …").
    let whole = firstword(&["asr", "fixtures/voices/hiccups.wav"]);
    assert!(whole.status.success(), "{}", String::from_utf8_lossy(&whole.stderr));
    let whole = String::from_utf8_lossy(&whole.stdout);
    let first_words = |t: &str| asr::wer::normalize_words(t).into_iter().take(3).collect::<Vec<_>>();
    assert_eq!(first_words(heard[0]), first_words(&whole), "replay {:?} vs whole file {whole:?}", heard[0]);

    // A question the μLM expects to end ends at the pause, not after the hangover.
    assert_eq!(turns[0]["endpoint_judged"], "complete", "{}", turns[0]);
    let f = |t: &serde_json::Value, k: &str| t[k].as_f64().unwrap();
    assert!(f(&turns[0], "endpoint_ms") - f(&turns[0], "speech_end_ms") < 150.0, "{}", turns[0]);

    // Whisper tiny sometimes "completes" a cut-off fragment into a plausible question
    // ("Can you give me a recipe with" → "Can you give me a message?"), which the μLM then
    // rightly calls complete; "Set a timer for" is the fragment it keeps as heard. Kept
    // whole: that one, always; the share over all paused fixtures is a benchmark figure.
    let timer = turns.iter().find(|t| t["transcript"].as_str().unwrap().to_lowercase().starts_with("set a timer")).unwrap();
    let text = timer["transcript"].as_str().unwrap().to_lowercase();
    assert!(text.contains("minutes"), "the timer request lost its second half: {heard:?}");
    assert!(f(timer, "first_audio_ms") >= f(timer, "endpoint_ms") && f(timer, "endpoint_ms") >= f(timer, "speech_end_ms"), "{timer}");
    let whole = PAUSED
        .iter()
        .filter(|(_, tail)| heard.iter().any(|h| h.to_lowercase().contains(tail) && h.split_whitespace().count() >= 4))
        .count();
    eprintln!("paused utterances kept whole: {whole}/{}", PAUSED.len());
}

#[test]
fn a_question_resumed_after_an_early_endpoint_is_answered_as_one() {
    if !assets_present(MODELS) {
        return;
    }
    // The fixed 300 ms hangover alone (semantic endpointing off) ends "Set a timer for" at
    // its 450-650 ms pause, and the reply begins. The user going on within
    // `endpoint.resume_merge_ms` stops that reply, and the next turn answers the whole
    // question: one transcript holding both parts.
    let mut input = audio::load_wav_16k_mono(root().join("fixtures/voices/timer.wav")).unwrap();
    input.extend(std::iter::repeat_n(0.0f32, 80_000));
    let v = replay(&input, "[endpoint]\nsemantic = false");
    let turns = v["turns"].as_array().unwrap();
    assert_eq!(turns.len(), 2, "{v}");
    assert_eq!(turns[0]["merged_into_next"], true, "{}", turns[0]);
    assert_eq!(turns[1]["merged_from"], 0, "{}", turns[1]);
    let whole = turns[1]["transcript"].as_str().unwrap().to_lowercase();
    assert!(whole.contains("timer") && whole.contains("minutes"), "not one question: {whole:?}");
    let f = |t: &serde_json::Value, k: &str| t[k].as_f64().unwrap();
    assert_eq!(f(&turns[1], "speech_start_ms"), f(&turns[0], "speech_start_ms"), "the merged turn spans both parts");
    // The interrupted reply stopped where the second part was heard.
    if let Some(end) = turns[0]["turn_end_ms"].as_f64() {
        assert!(end <= f(&turns[1], "endpoint_ms"), "{}", turns[0]);
    }

    // Merging off: the baseline, two turns, the second only the tail of the sentence.
    let v = replay(&input, "[endpoint]\nsemantic = false\nresume_merge_ms = 0");
    let turns = v["turns"].as_array().unwrap();
    assert_eq!(turns.len(), 2, "{v}");
    assert!(turns[1]["merged_from"].is_null(), "{}", turns[1]);
    let tail = turns[1]["transcript"].as_str().unwrap().to_lowercase();
    assert!(!tail.contains("timer"), "the second turn heard the first part: {tail:?}");
}
