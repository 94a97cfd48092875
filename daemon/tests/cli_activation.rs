//! Activation (issue 18 item 6) through the live daemon with simulated devices: in
//! `wake_word` mode speech without the phrase is never transcribed or answered, the phrase
//! followed by a question is answered (Whisper hears only the question), and a follow-up
//! within the idle time needs no phrase; with push-to-talk (a simulated key) speech outside
//! the press is ignored and speech inside it answered. Turns are read from the daemon's output
//! (`turn N:` lines, `heard:` with `[log] transcripts = true`), never from timing.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use common::{assets_present, firstword, load, secs, silence};

const MODELS: &[&str] = &[
    "models/whisper/ggml-tiny.en.bin",
    "models/piper/en_US-joe-medium.onnx",
    "models/gemma/gemma-3-270m-q4_k_m.gguf",
    "models/mulm/mulm.json",
];
/// One daemon at a time: real-time runs on shared cores.
static SERIAL: Mutex<()> = Mutex::new(());

/// Runs `firstword run` on `parts` with `activation` as the `[activation]` table; returns
/// (stdout, stderr).
fn run(dir: &Path, parts: &[Vec<f32>], activation: &str) -> (String, String) {
    let input: PathBuf = dir.join("in.wav");
    audio::write_wav(&input, &parts.concat(), 16_000).unwrap();
    let cfg = dir.join("run.toml");
    std::fs::write(
        &cfg,
        format!("[cloud]\nmax_tokens = 16\nlocal_latency_ms = 200\n[log]\ntranscripts = true\n[activation]\n{activation}"),
    )
    .unwrap();
    let out_wav = dir.join("out.wav");
    let o = firstword(&[
        "run",
        "--config",
        cfg.to_str().unwrap(),
        "--input-wav",
        input.to_str().unwrap(),
        "--output-wav",
        out_wav.to_str().unwrap(),
    ]);
    let (stdout, stderr) = (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned());
    assert!(o.status.success(), "run failed:\n{stdout}\n{stderr}");
    (stdout, stderr)
}

/// The transcripts the daemon logged (`heard: "…"`), in order.
fn heard(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter_map(|l| {
            let rest = &l[l.find("heard: \"")? + 8..];
            Some(rest[..rest.find('"')?].to_lowercase())
        })
        .collect()
}

#[test]
fn wake_word_mode_answers_only_after_the_phrase_then_follow_ups() {
    if !assets_present(MODELS) {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    // A question without the phrase (a colleague), then the phrase + a question in one
    // breath, then a follow-up without the phrase.
    let parts = [
        silence(0.5),
        load("fixtures/wakeword/no_phrase.wav"),
        silence(2.0),
        load("fixtures/wakeword/phrase_question.wav"),
        silence(8.0),
        load("fixtures/wakeword/followup.wav"),
        silence(6.0),
    ];
    let (stdout, stderr) = run(dir.path(), &parts, "mode = \"wake_word\"\n");
    assert!(stdout.contains("input finished: 2 turns"), "{stdout}\n{stderr}");
    assert_eq!(stderr.matches("not activated, dropped unheard").count(), 1, "{stderr}");
    assert!(stderr.contains("listening (wake word)"), "{stderr}");
    let h = heard(&stderr);
    assert_eq!(h.len(), 2, "only the activated utterances reach Whisper: {h:?}");
    assert!(h.iter().all(|t| !t.contains("school") && !t.contains("learn")), "the colleague's question was transcribed: {h:?}");
    // Whisper hears the question, not the phrase before it.
    assert!(h[0].contains("capital") && h[0].contains("france"), "{h:?}");
    assert!(!h[0].contains("first") && !h[0].contains("hey"), "the wake phrase reached Whisper: {h:?}");
    assert!(h[1].contains("people"), "{h:?}");
}

#[test]
fn push_to_talk_answers_only_speech_with_the_key_down() {
    if !assets_present(MODELS) {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let outside = load("fixtures/wakeword/no_phrase.wav");
    let inside = load("fixtures/voices/france.wav");
    let press_s = 0.5 + secs(&outside) + 1.5;
    let release_s = press_s + secs(&inside) - 0.3;
    let parts = [silence(0.5), outside, silence(1.5), inside, silence(7.0)];
    let act = format!("mode = \"push_to_talk\"\nptt_simulated = [[{:.0}, {:.0}]]\n", press_s * 1000.0, release_s * 1000.0);
    let (stdout, stderr) = run(dir.path(), &parts, &act);
    assert!(stdout.contains("input finished: 1 turns"), "{stdout}\n{stderr}");
    assert_eq!(stderr.matches("not activated, dropped unheard").count(), 1, "{stderr}");
    assert!(stderr.contains("listening (push-to-talk)"), "{stderr}");
    let h = heard(&stderr);
    assert_eq!(h.len(), 1, "{h:?}");
    assert!(h[0].contains("france"), "{h:?}");
}
