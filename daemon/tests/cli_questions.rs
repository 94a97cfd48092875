//! Spoken questions (fixtures/questions, made with the Piper voice) through the whole
//! pipeline at the default settings, with the shipped μLM: replay of several questions in
//! one recording. (The pipeline benchmark's modes: lab/tests/cli_bench.rs.)

mod common;

use common::{assets_present, firstword, root};

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
    text: String,
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
fn three_spoken_questions_give_three_turns_each_answered_by_opener_then_cloud() {
    if !assets_present(MODELS) {
        return;
    }
    let qs = questions();
    let picked: Vec<&Question> = ["sky", "egg", "australia"].iter().map(|id| qs.iter().find(|q| q.id == *id).unwrap()).collect();
    // The three recordings back to back, 6 s of silence between them (the reply plays there;
    // room enough that a slow turn on a busy CI machine is not barged in by the next question).
    let mut input = Vec::new();
    for q in &picked {
        input.extend(audio::load_wav_16k_mono(root().join(format!("fixtures/questions/{}.wav", q.id))).unwrap());
        input.extend(std::iter::repeat_n(0.0f32, 96_000));
    }
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("three.wav");
    audio::write_wav(&wav, &input, 16_000).unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, "[cloud]\nmax_tokens = 16\nlocal_latency_ms = 200\n").unwrap();
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
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(out_dir.join("timeline.json")).unwrap()).unwrap();
    let turns = v["turns"].as_array().unwrap();
    assert_eq!(turns.len(), 3, "one turn per question at the default 300 ms hangover: {v}");
    for (t, q) in turns.iter().zip(&picked) {
        let heard = t["transcript"].as_str().unwrap();
        let w = asr::wer::wer(&q.text, heard);
        assert!(w.wer <= 0.2, "{}: heard {heard:?} (WER {:.2})", q.id, w.wer);
        // The trained μLM writes an opener, and it is what plays first.
        let opener = t["opener_text"].as_str().unwrap();
        let words = opener.split_whitespace().count();
        assert!(words >= 1 && words <= t["opener_words"].as_u64().unwrap() as usize, "{}: opener {opener:?}", q.id);
        let segs = t["segments"].as_array().unwrap();
        assert!(!segs.is_empty(), "{}: nothing played before the next question (turn too slow): {t}", q.id);
        assert_eq!(segs[0]["part"], "opener", "{t}");
        // An opener of more than five words is spoken in two chunks (`turn.opener_first_words`).
        let spoken: Vec<&str> = segs.iter().take_while(|s| s["part"] == "opener").map(|s| s["text"].as_str().unwrap()).collect();
        assert_eq!(spoken.join(" "), opener, "{t}");
        let f = |k: &str| t[k].as_f64().unwrap();
        assert!(f("first_audio_ms") >= f("endpoint_ms"), "{t}");
        // Semantic endpointing: at most the hangover its judgement of the pause allows
        // (64 ms complete, 700 ms unsure, 1,000 ms unfinished), plus the pause and a frame.
        let wait = match t["endpoint_judged"].as_str() {
            Some("complete") => 64.0 + 64.0,
            Some("unsure") => 700.0 + 64.0,
            Some("unfinished") => 1_000.0 + 64.0,
            other => panic!("{}: no endpointing judgement {other:?}: {t}", q.id),
        };
        assert!(f("endpoint_ms") - f("speech_end_ms") <= wait + 32.0, "{t}");
        // The cloud answered (no fallback) after the opener was written.
        assert!(!t["fallback"].as_bool().unwrap(), "{t}");
        assert!(f("cloud_first_delta_ms") >= f("opener_ready_ms"), "{t}");
    }
}
