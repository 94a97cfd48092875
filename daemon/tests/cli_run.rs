//! `firstword run`, the live daemon, end to end through the simulated microphone and speaker
//! (`--input-wav` / `--output-wav`: the same capture/playback ring logic the cpal callbacks
//! run, at real-time pace): spoken questions answered out loud, barge-in, the Prometheus
//! endpoint, systemd notifications and a clean SIGTERM. Each run takes the input's length in
//! real time plus model loading; the runs are serialized so they do not slow each other.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::Duration;

use common::{assets_present, audible_s, barge_in_precondition, firstword, input_wav, load, playback_stopped_s, root, silence, OUT_RATE};

const MODELS: &[&str] = &[
    "models/whisper/ggml-tiny.en.bin",
    "models/piper/en_US-joe-medium.onnx",
    "models/gemma/gemma-3-270m-q4_k_m.gguf",
    "models/mulm/mulm.json",
    "fixtures/questions/sky.wav",
    "fixtures/questions/egg.wav",
    "fixtures/questions/dinner.wav",
];

/// One daemon at a time: real-time runs on shared cores.
static SERIAL: Mutex<()> = Mutex::new(());

/// RMS of the output between `from_s` and `to_s` (clamped).
fn rms(out: &[f32], from_s: f64, to_s: f64) -> f32 {
    let a = ((from_s * OUT_RATE as f64) as usize).min(out.len());
    let b = ((to_s * OUT_RATE as f64) as usize).min(out.len()).max(a);
    if a == b {
        return 0.0;
    }
    (out[a..b].iter().map(|v| v * v).sum::<f32>() / (b - a) as f32).sqrt()
}

/// Whisper's transcript of the audible part of the speaker's output after `from_s` (48 kHz
/// → 16 kHz, trimmed to its first and last audible 50 ms blocks so that Whisper does not
/// loop on trailing silence).
fn transcribe(out: &[f32], from_s: f64, dir: &Path) -> String {
    let blk = OUT_RATE / 20;
    let a = ((from_s * OUT_RATE as f64) as usize).min(out.len());
    let loud: Vec<usize> =
        (a..out.len()).step_by(blk).filter(|&i| rms(out, i as f64 / OUT_RATE as f64, (i + blk) as f64 / OUT_RATE as f64) > 0.01).collect();
    let (first, last) = (*loud.first().expect("no audible output"), *loud.last().unwrap());
    let span = &out[first.saturating_sub(blk * 4)..(last + blk * 6).min(out.len())];
    let wav = dir.join("reply16k.wav");
    audio::write_wav(&wav, &audio::resample::resample(span, OUT_RATE as u32, 16_000).unwrap(), 16_000).unwrap();
    let o = firstword(&["asr", wav.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    v["text"].as_str().unwrap().to_string()
}

/// Share of `said`'s words that Whisper found in `played` (each word used once).
fn word_recall(said: &str, played: &str) -> f64 {
    let said = asr::wer::normalize_words(said);
    let mut pool = asr::wer::normalize_words(played);
    let found = said.iter().filter(|w| pool.iter().position(|p| p == *w).map(|i| pool.swap_remove(i)).is_some()).count();
    found as f64 / said.len().max(1) as f64
}

/// The first `"…"` after `key` in `log` (a Debug-quoted string; escapes left as they are).
fn quoted_after<'a>(log: &'a str, key: &str) -> Option<&'a str> {
    let rest = &log[log.find(key)? + key.len()..];
    let rest = &rest[rest.find('"')? + 1..];
    Some(&rest[..rest.find('"')?])
}

fn write_config(dir: &Path, extra: &str) -> PathBuf {
    let cfg = dir.join("run.toml");
    std::fs::write(&cfg, format!("[cloud]\nmax_tokens = 16\nlocal_latency_ms = 200\n{extra}")).unwrap();
    cfg
}

#[test]
fn a_spoken_question_is_answered_out_loud_after_it_ends() {
    if !assets_present(MODELS) {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let sky = load("fixtures/questions/sky.wav");
    let question_end_s = 0.5 + sky.len() as f64 / 16_000.0;
    let input = input_wav(dir.path(), &[silence(0.5), sky, silence(6.0)]);
    let cfg = write_config(dir.path(), "[log]\ntranscripts = true\n");
    let out_wav = dir.path().join("out.wav");
    let report = dir.path().join("turns.json");
    let o = firstword(&[
        "run",
        "--config",
        cfg.to_str().unwrap(),
        "--input-wav",
        input.to_str().unwrap(),
        "--output-wav",
        out_wav.to_str().unwrap(),
        "--report-json",
        report.to_str().unwrap(),
    ]);
    let (stdout, stderr) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "run failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("turn 1: voice-to-voice") && stdout.contains("input finished: 1 turns"), "{stdout}");

    // The turn report holds the one turn, with the voice-to-voice its log line printed.
    let log: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let turns = log["turns"].as_array().unwrap();
    assert_eq!(turns.len(), 1, "{log}");
    let v2v = turns[0]["voice_to_voice_ms"].as_f64().unwrap();
    assert!(stdout.contains(&format!("turn 1: voice-to-voice {v2v:.0} ms")), "report {v2v} vs {stdout}");
    let endpoint = turns[0]["endpoint_ms_after_speech"].as_f64().unwrap();
    assert!((0.0..=v2v).contains(&endpoint), "endpoint {endpoint} ms after speech, first audio {v2v} ms");

    // The live path heard the question (48 kHz simulated microphone → 16 kHz → VAD → Whisper).
    let heard = quoted_after(&stderr, "heard: ").unwrap_or_else(|| panic!("no transcript logged: {stderr}"));
    let w = asr::wer::wer("Why is the sky blue?", heard);
    assert!(w.wer <= 0.2, "heard {heard:?}");

    // The speaker was silent until the question ended, then spoke the reply.
    let d = audio::read_wav(&out_wav).unwrap();
    assert_eq!(d.rate_hz as usize, OUT_RATE);
    let out = d.mono;
    assert!(out.len() as f64 / OUT_RATE as f64 >= 8.0, "output shorter than the input");
    assert_eq!(rms(&out, 0.0, question_end_s - 0.5), 0.0, "the speaker played before the question ended");
    assert!(audible_s(&out, question_end_s - 0.5) >= 1.0, "no reply audio after the question");
    // The first audible reply block starts no later than the report says (the fixture's last
    // voiced sample is before its end, so the reply may start earlier relative to the end).
    let blk = OUT_RATE / 20;
    let first_loud =
        (0..out.len()).step_by(blk).find(|&i| rms(&out, i as f64 / OUT_RATE as f64, (i + blk) as f64 / OUT_RATE as f64) > 0.01);
    let first_loud_ms = first_loud.unwrap() as f64 * 1000.0 / OUT_RATE as f64;
    assert!(
        first_loud_ms - question_end_s * 1000.0 <= v2v + 50.0,
        "reply audible at {first_loud_ms} ms, question ended {question_end_s} s, v2v {v2v}"
    );

    // What was played is what the turn said it spoke.
    let said = quoted_after(&stderr, " + ").unwrap_or_else(|| panic!("no answer logged: {stderr}"));
    let played = transcribe(&out, question_end_s - 0.5, dir.path());
    let recall = word_recall(said, &played);
    assert!(recall >= 0.7, "the turn said {said:?}, the speaker played {played:?} (recall {recall:.2})");
}

/// One barge-in attempt: the second question starts `gap_s` after the first ends. Returns
/// false when the first reply was not playing, or not long enough for the echo canceller to
/// converge, when the user spoke ([`barge_in_precondition`]: a slow machine, try a longer
/// gap); otherwise checks that the reply stopped and the second question was answered.
fn barge_in_attempt(gap_s: f64) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let sky = load("fixtures/questions/sky.wav");
    let dinner = load("fixtures/questions/dinner.wav");
    let a_end_s = 0.5 + sky.len() as f64 / 16_000.0;
    let b_start_s = a_end_s + gap_s;
    let b_end_s = b_start_s + dinner.len() as f64 / 16_000.0;
    let input = input_wav(dir.path(), &[silence(0.5), sky, silence(gap_s), dinner, silence(1.0)]);
    // Up to 64 continuation tokens: the first reply would play for many seconds.
    let cfg = dir.path().join("run.toml");
    std::fs::write(&cfg, "[cloud]\nmax_tokens = 64\nlocal_latency_ms = 200\n[log]\ntranscripts = true\n").unwrap();
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
    let (stdout, stderr) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "run failed:\n{stdout}\n{stderr}");
    let out = audio::read_wav(&out_wav).unwrap().mono;
    // The fixtures carry 600 ms of silence at each end: the second question's speech starts
    // 0.6 s into it, and its VAD confirmation ~0.1 s later.
    let (b_speech_s, b_speech_end_s) = (b_start_s + 0.6, b_end_s - 0.6);
    if let Some(why) = barge_in_precondition(&out, a_end_s, b_speech_s) {
        eprintln!("gap {gap_s} s: {why} (a slow machine: trying a longer gap): {stdout}");
        return false;
    }
    let turn1 = stdout.lines().find(|l| l.starts_with("turn 1:")).unwrap_or_else(|| panic!("{stdout}"));
    assert!(turn1.contains("barge-in"), "the first reply was not interrupted: {stdout}\n{stderr}");
    assert!(stdout.contains("input finished: 2 turns"), "{stdout}");
    // Playback stopped soon after the user started talking, and stayed off while they talked.
    let stopped_s = playback_stopped_s(&out, b_speech_s, b_speech_end_s);
    eprintln!("gap {gap_s} s: speech from {b_speech_s:.2} s, playback stopped at {stopped_s:.2} s");
    assert!(
        stopped_s <= b_speech_s + 0.5,
        "the reply kept playing over the user: speech from {b_speech_s:.2} s, playback until {stopped_s:.2} s\n{stderr}"
    );
    // The second question was heard whole and got its own reply.
    let heard: Vec<&str> = stderr.lines().filter_map(|l| quoted_after(l, "heard: ")).collect();
    assert!(heard.last().is_some_and(|h| h.to_lowercase().contains("dinner")), "{heard:?}");
    assert!(audible_s(&out, b_speech_end_s) >= 0.5, "no reply to the second question");
    // The conversation keeps the first reply as heard: cut where playback stopped, a strict
    // prefix of what the turn said (issue 18).
    let kept = stderr.lines().find_map(|l| quoted_after(l, "heard of the reply: ")).unwrap_or_else(|| panic!("{stderr}"));
    let answered = stderr.lines().find(|l| l.contains("answered ")).unwrap_or_else(|| panic!("{stderr}"));
    let said = format!("{} {}", quoted_after(answered, " with ").unwrap_or(""), quoted_after(answered, " + ").unwrap_or(""));
    let (kept_w, said_w) = (asr::wer::normalize_words(kept), asr::wer::normalize_words(&said));
    assert!(!kept_w.is_empty() && kept_w.len() < said_w.len() && said_w.starts_with(&kept_w), "kept {kept:?} of {said:?}");
    true
}

#[test]
fn talking_over_the_reply_stops_it() {
    if !assets_present(MODELS) {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // The reply's start depends on this machine's speed; the check needs it playing, with
    // the canceller converged (2 s of reply), when the user talks, so a slow machine gets
    // longer gaps. The shortest gap comes first: the reply's length is the models' (64
    // tokens, often ten seconds), so the user must talk early in it.
    let ok = [3.5, 5.0, 8.0, 12.0, 20.0].into_iter().any(barge_in_attempt);
    assert!(ok, "the first reply never started within 20 s of the question");
}

/// Reads the child's stdout lines on a thread; `wait_for` returns the first line containing
/// `needle` (panics after `timeout`).
struct Lines {
    rx: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Lines {
    fn new(child: &mut Child) -> Self {
        let (tx, rx) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Self { rx, seen: Vec::new() }
    }

    fn wait_for(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(l) => {
                    self.seen.push(l.clone());
                    if l.contains(needle) {
                        return l;
                    }
                }
                Err(_) => panic!("no {needle:?} line; stdout so far: {:?}", self.seen),
            }
        }
    }
}

fn scrape(addr: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    body
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("{name} missing from /metrics:\n{text}"))
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn metrics_systemd_notifications_and_sigterm() {
    if !assets_present(MODELS) {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let input = input_wav(
        dir.path(),
        &[silence(0.5), load("fixtures/questions/sky.wav"), silence(4.0), load("fixtures/questions/egg.wav"), silence(1.0)],
    );
    let cfg = write_config(dir.path(), "[metrics]\nlisten = \"127.0.0.1:0\"\n");
    let out_wav = dir.path().join("out.wav");
    let sock_path = dir.path().join("notify.sock");
    // Read notifications as they come, as systemd does (an unread socket fills up after a
    // few datagrams and blocks the sender).
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let notes = std::thread::spawn(move || {
        let mut notes = Vec::new();
        let mut buf = [0u8; 4096];
        while stop_rx.try_recv().is_err() {
            if let Ok(n) = sock.recv(&mut buf) {
                notes.push(String::from_utf8_lossy(&buf[..n]).to_string());
            }
        }
        notes
    });

    let mut child = Command::new(env!("CARGO_BIN_EXE_firstword"))
        .args([
            "run",
            "--keep-running",
            "--config",
            cfg.to_str().unwrap(),
            "--input-wav",
            input.to_str().unwrap(),
            "--output-wav",
            out_wav.to_str().unwrap(),
        ])
        .current_dir(root())
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "3000000")
        .env_remove("WATCHDOG_PID")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err_pipe = child.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err_pipe.read_to_string(&mut s);
        s
    });
    let mut lines = Lines::new(&mut child);
    let addr = lines.wait_for("metrics: http://", Duration::from_secs(120));
    let addr = addr.trim_start_matches("metrics: http://").trim_end_matches("/metrics").to_string();
    lines.wait_for("ready:", Duration::from_secs(180));
    lines.wait_for("input finished:", Duration::from_secs(240));

    // Two questions, two turns, each transcribed once or more (speculation may add runs).
    let text = scrape(&addr);
    assert_eq!(metric(&text, "firstword_turns_total"), 2.0, "{text}");
    assert!(metric(&text, "firstword_asr_seconds_count") >= 2.0, "{text}");
    assert!(metric(&text, "firstword_asr_seconds_sum") > 0.0, "{text}");
    assert!(text.contains("firstword_asr_seconds_bucket{le=\"+Inf\"}"), "{text}");
    assert_eq!(metric(&text, "firstword_vad_endpoint_seconds_count"), 2.0, "{text}");
    assert!(metric(&text, "firstword_voice_to_voice_seconds_count") >= 1.0, "{text}");

    // SIGTERM while idle: exit 0, output written.
    let kill = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    let status = child.wait().unwrap();
    let stderr = stderr.join().unwrap();
    assert!(status.success(), "exit {status:?} after SIGTERM: {stderr}");
    assert!(out_wav.is_file(), "no output WAV after SIGTERM");

    // systemd heard READY, watchdog pings, then STOPPING — in that order.
    stop_tx.send(()).unwrap();
    let notes = notes.join().unwrap();
    let pos = |s: &str| notes.iter().position(|n| n.lines().any(|l| l == s)).unwrap_or_else(|| panic!("no {s} in {notes:?}"));
    assert!(pos("READY=1") < pos("STOPPING=1"), "{notes:?}");
    assert!(notes.iter().any(|n| n.lines().any(|l| l == "WATCHDOG=1")), "{notes:?}");

    // Transcripts stay out of the log unless [log] transcripts = true.
    let all = format!("{}\n{stderr}", lines.seen.join("\n")).to_lowercase();
    assert!(!all.contains("sky") && !all.contains("egg"), "a transcript was logged: {all}");
}

#[test]
fn check_config_names_a_bad_audio_or_metrics_key() {
    let dir = tempfile::tempdir().unwrap();
    for (text, key) in [
        ("[audio]\nbuffer_frames = 7\n", "audio.buffer_frames"),
        ("[audio]\noutput_wav = \"o.wav\"\n", "audio.output_wav"),
        ("[metrics]\nlisten = \"everywhere\"\n", "metrics.listen"),
        ("[audio]\nspeaker = \"hw:0\"\n", "speaker"),
    ] {
        let p = dir.path().join("bad.toml");
        std::fs::write(&p, text).unwrap();
        let o = firstword(&["check-config", p.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains(key) && err.contains("bad.toml"), "{text}: {err}");
    }
}

#[test]
fn a_missing_sound_card_is_named_before_models_load() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, "[audio]\ninput_device = \"no-such-card-42\"\n").unwrap();
    let o = firstword(&["run", "--config", cfg.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(err.contains("audio.input_device") && err.contains("no-such-card-42"), "{err}");
}
