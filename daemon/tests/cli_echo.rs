//! Open-ear audio end to end (issue 16): `firstword run` on the simulated devices with an
//! echo path from the speaker to the microphone. Without echo cancellation the daemon hears
//! its own reply and stops it; with it, the reply plays out, and a user who talks over it at
//! 0 dB echo still stops it. A microphone that goes away for 5 s is survived: the next
//! question is answered. Each run takes its input's length in real time plus model loading.

mod common;

use std::sync::Mutex;

use common::{
    assets_present, audible_block, audible_s, barge_in_precondition, firstword, input_wav, load, playback_stopped_s, silence, OUT_RATE,
};

const MODELS: &[&str] = &[
    "models/whisper/ggml-tiny.en.bin",
    "models/piper/en_US-joe-medium.onnx",
    "models/gemma/gemma-3-270m-q4_k_m.gguf",
    "models/mulm/mulm.json",
    "models/silero/silero_vad.onnx",
    "fixtures/questions/sky.wav",
    "fixtures/questions/dinner.wav",
];

/// One daemon at a time: real-time runs on shared cores.
static SERIAL: Mutex<()> = Mutex::new(());

/// Runs the daemon on `parts` with `audio_toml` appended to `[audio]`; returns (stdout,
/// stderr, the speaker's output at 48 kHz).
fn run(parts: &[Vec<f32>], max_tokens: u32, audio_toml: &str) -> (String, String, Vec<f32>) {
    let dir = tempfile::tempdir().unwrap();
    let input = input_wav(dir.path(), parts);
    let cfg = dir.path().join("run.toml");
    std::fs::write(
        &cfg,
        format!(
            "[cloud]\nmax_tokens = {max_tokens}\nlocal_latency_ms = 200\n[log]\ntranscripts = true\n[audio]\n{}{audio_toml}",
            if audio_toml.contains("echo_cancellation") { "" } else { "echo_cancellation = true\n" }
        ),
    )
    .unwrap();
    let out_wav = dir.path().join("out.wav");
    let o = firstword(&[
        "run",
        "--config",
        cfg.to_str().unwrap(),
        "--input-wav",
        input.to_str().unwrap(),
        "--output-wav",
        out_wav.to_str().unwrap(),
    ]);
    let (stdout, stderr) = (String::from_utf8_lossy(&o.stdout).to_string(), String::from_utf8_lossy(&o.stderr).to_string());
    assert!(o.status.success(), "run failed:\n{stdout}\n{stderr}");
    (stdout, stderr, audio::read_wav(&out_wav).unwrap().mono)
}

const ECHO_MINUS_6: &str = "[audio.simulated_echo]\ndelay_ms = 40\ngain_db = -6\nroom_ms = 60\nnoise_dbfs = -60\n";
const ECHO_0: &str = "[audio.simulated_echo]\ndelay_ms = 80\ngain_db = 0\nroom_ms = 60\nnoise_dbfs = -60\n";

/// First audible 50 ms block of `out`, in seconds.
fn first_audible_s(out: &[f32]) -> Option<f64> {
    let blk = OUT_RATE / 20;
    out.chunks(blk).position(audible_block).map(|i| i as f64 * 0.05)
}

/// One question, then `tail_s` of silence in which the reply plays and its echo comes
/// back. None when the reply started less than 2 s before the input ended (a slow or
/// loaded machine: the echo could not be heard; try a longer tail).
fn one_question(audio_toml: &str, tail_s: f64) -> Option<(String, String, Vec<f32>)> {
    let sky = load("fixtures/questions/sky.wav");
    let input_end_s = 0.5 + sky.len() as f64 / 16_000.0 + tail_s;
    let (stdout, stderr, out) = run(&[silence(0.5), sky, silence(tail_s)], 48, audio_toml);
    match first_audible_s(&out) {
        Some(t) if t <= input_end_s - 2.0 => Some((stdout, stderr, out)),
        t => {
            eprintln!("the reply started at {t:?} s, the input ended at {input_end_s:.1} s (slow machine): {stdout}");
            None
        }
    }
}

/// Runs [`one_question`] with longer tails until the reply plays within the input.
fn one_question_in_time(audio_toml: &str) -> (String, String, Vec<f32>) {
    [10.0, 20.0, 40.0]
        .into_iter()
        .find_map(|tail| one_question(audio_toml, tail))
        .expect("the reply never started within 40 s of the question")
}

/// True when the log shows the daemon heard its own reply: the reply was stopped by
/// "barge-in", or the echo started another turn.
fn heard_itself(stdout: &str) -> bool {
    stdout.lines().any(|l| l.starts_with("turn 1:") && l.contains("barge-in")) || !stdout.contains("input finished: 1 turns")
}

#[test]
fn without_echo_cancellation_the_reply_interrupts_itself() {
    if !assets_present(MODELS) {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (stdout, stderr, _) = one_question_in_time(&format!("echo_cancellation = false\n{ECHO_MINUS_6}"));
    assert!(heard_itself(&stdout), "the echo of the reply went unnoticed without cancellation:\n{stdout}\n{stderr}");
}

#[test]
fn with_echo_cancellation_the_reply_plays_out_and_starts_no_turn() {
    if !assets_present(MODELS) {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (stdout, stderr, out) = one_question_in_time(ECHO_MINUS_6);
    assert!(stderr.contains("echo cancellation on"), "{stderr}");
    assert!(audible_s(&out, 0.0) >= 1.0, "no reply played: {stdout}\n{stderr}");
    assert!(!heard_itself(&stdout), "the daemon heard its own reply:\n{stdout}\n{stderr}");
}

/// The user talks over the reply `gap_s` after the question; false when the reply was not
/// playing, or not yet for the canceller to converge ([`barge_in_precondition`]: a slow
/// machine, try a longer gap).
fn barge_in_over_echo(gap_s: f64) -> bool {
    let sky = load("fixtures/questions/sky.wav");
    let dinner = load("fixtures/questions/dinner.wav");
    let a_end_s = 0.5 + sky.len() as f64 / 16_000.0;
    let b_speech_s = a_end_s + gap_s + 0.6;
    let b_end_s = a_end_s + gap_s + dinner.len() as f64 / 16_000.0 - 0.6;
    let (stdout, stderr, out) = run(&[silence(0.5), sky, silence(gap_s), dinner, silence(1.5)], 64, ECHO_0);
    if let Some(why) = barge_in_precondition(&out, a_end_s, b_speech_s) {
        eprintln!("gap {gap_s} s: {why} (a slow machine: trying a longer gap): {stdout}");
        return false;
    }
    let turn1 = stdout.lines().find(|l| l.starts_with("turn 1:")).unwrap_or_else(|| panic!("{stdout}"));
    assert!(turn1.contains("barge-in"), "the user did not stop the reply: {stdout}\n{stderr}");
    assert!(stdout.contains("input finished: 2 turns"), "{stdout}\n{stderr}");
    let stopped_s = playback_stopped_s(&out, b_speech_s, b_end_s);
    eprintln!("gap {gap_s} s: speech from {b_speech_s:.2} s, playback stopped at {stopped_s:.2} s");
    assert!(
        stopped_s <= b_speech_s + 0.5,
        "the reply kept playing over the user: speech from {b_speech_s:.2} s, playback until {stopped_s:.2} s"
    );
    let heard: Vec<&str> = stderr.lines().filter(|l| l.contains("heard: ")).collect();
    assert!(heard.last().is_some_and(|h| h.to_lowercase().contains("dinner")), "the interrupting question was not heard: {heard:?}");
    true
}

// Ignored in the default run. Its timing is now robust: an attempt counts only once the
// canceller has converged (`barge_in_precondition`; before it, on a loaded machine, the user
// spoke while the VAD's onset could miss the question, which failed it twice at load > 10 on
// 2026-12-02), and it passed 5 of 5 beside two busy loops on 2026-12-07. What stays variable
// is Whisper's transcript of a question spoken over 0 dB of echo: in the CI simulation of
// 2026-12-07 23:45 UTC playback stopped 0.25 s after the onset, yet Whisper heard "Any
// suggestions? Any suggestions?". `cargo test -p daemon --test cli_echo -- --ignored` runs it;
// `bench echo` measures the barge-in itself without wall-clock dependence.
#[test]
#[ignore = "Whisper's transcript over 0 dB echo varies; run with --ignored"]
fn talking_over_the_reply_at_0_db_echo_stops_it_and_is_heard() {
    if !assets_present(MODELS) {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // A loaded machine answers late; the user must talk while the reply plays.
    let ok = [5.0, 10.0, 20.0, 40.0].into_iter().any(barge_in_over_echo);
    assert!(ok, "the first reply never started within 40 s of the question");
}

/// A device gone for 5 s from `delay_s` after the first question; the next question comes
/// 1 s after it is back. `outage_key` is the `[audio]` key that schedules it. Returns
/// (stdout, stderr, the speaker's output, when it came back in s), or None when the first
/// question had not been endpointed yet when the speaker went away (the daemon then rightly
/// leaves it unanswered: a loaded machine, the outage came too early for this test).
fn try_outage(outage_key: &str, delay_s: f64) -> Option<(String, String, Vec<f32>, f64)> {
    let sky = load("fixtures/questions/sky.wav");
    let a_end_s = 0.5 + sky.len() as f64 / 16_000.0;
    let (gone, back) = (a_end_s + delay_s, a_end_s + delay_s + 5.0);
    let parts = [silence(0.5), sky, silence(delay_s + 6.0), load("fixtures/questions/dinner.wav"), silence(8.0)];
    let (stdout, stderr, out) = run(&parts, 16, &format!("{outage_key} = [[{gone:.2}, {back:.2}]]\n{ECHO_MINUS_6}"));
    if stderr.contains("utterance not answered") {
        eprintln!("the first question was not endpointed {delay_s} s after it ended (slow machine): {stdout}");
        return None;
    }
    Some((stdout, stderr, out, back))
}

/// A device gone for 5 s while the first question's reply is being written or played (from
/// 1.5 s after the question; later on a machine too loaded to endpoint it by then); asserts the
/// conversation went on: two turns, the second question heard.
fn run_with_outage(outage_key: &str) -> (String, String, Vec<f32>, f64) {
    let (stdout, stderr, out, back) = [1.5, 4.0, 8.0]
        .into_iter()
        .find_map(|delay_s| try_outage(outage_key, delay_s))
        .expect("the first question was never endpointed within 8 s of its end");
    assert!(stdout.contains("input finished: 2 turns"), "{stdout}\n{stderr}");
    let heard: Vec<&str> = stderr.lines().filter(|l| l.contains("heard: ")).collect();
    assert!(heard.last().is_some_and(|h| h.to_lowercase().contains("dinner")), "{heard:?}");
    (stdout, stderr, out, back)
}

#[test]
fn a_microphone_gone_for_5_s_is_survived_and_the_next_question_answered() {
    if !assets_present(MODELS) {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (_, stderr, out, back) = run_with_outage("sim_mic_outages");
    assert!(stderr.contains("microphone gone") && stderr.contains("microphone back"), "{stderr}");
    assert!(audible_s(&out, back + 3.0) >= 0.5, "no reply to the question after the microphone came back");
}

#[test]
fn a_speaker_gone_for_5_s_mid_reply_is_reopened_and_the_next_question_answered() {
    if !assets_present(MODELS) {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (_, stderr, out, back) = run_with_outage("sim_speaker_outages");
    assert!(stderr.contains("speaker gone") && stderr.contains("speaker back"), "{stderr}");
    assert!(stderr.contains("speaker still gone"), "reopen attempts during the outage fail and are retried: {stderr}");
    assert!(audible_s(&out, back - 5.0 + 0.05) - audible_s(&out, back) < 0.05, "the speaker played while it was gone");
    assert!(audible_s(&out, back + 3.0) >= 0.5, "no reply to the question after the speaker came back");
}
