//! Shared helpers for the model tests: where the models are, and whether a
//! test may skip when they are absent (testkit's rule).
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use tts::{Tts, TtsConfig};

/// The models directory: `$FIRSTWORD_MODELS` (relative to the working directory,
/// made absolute), else `<repo>/models`.
pub fn models_dir() -> PathBuf {
    match std::env::var_os("FIRSTWORD_MODELS") {
        Some(d) if !d.is_empty() => std::path::absolute(d).expect("FIRSTWORD_MODELS as an absolute path"),
        _ => testkit::root().join("models"),
    }
}

/// Config for the real joe voice, or `None` when a model file is absent, under
/// testkit's rule: the test skips with a printed reason, or fails when models are
/// required (`testkit::models_required`, as in CI).
pub fn config() -> Option<TtsConfig> {
    let dir = models_dir();
    let mut cfg = TtsConfig::for_voice(dir.join("piper/en_US-joe-medium.onnx"));
    // ORT_DYLIB_PATH (onnxruntime's own variable) wins: the aarch64 library under qemu-user.
    let ort = std::env::var_os("ORT_DYLIB_PATH").map(PathBuf::from).unwrap_or_else(|| dir.join("onnxruntime/libonnxruntime.so.1.24.2"));
    let needed = [&cfg.voice_onnx, &cfg.voice_json, &ort].map(|p| p.to_string_lossy());
    if !testkit::present(&needed.each_ref().map(|p| &**p)) {
        return None;
    }
    cfg.onnxruntime_lib = Some(ort);
    Some(cfg)
}

/// One voice shared by the tests of a binary: loading is the slow part, and
/// serialized synthesis keeps timings from fighting over the CPU.
pub fn shared() -> Option<&'static Mutex<Tts>> {
    static TTS: OnceLock<Option<Mutex<Tts>>> = OnceLock::new();
    TTS.get_or_init(|| config().map(|c| Mutex::new(Tts::load(&c).expect("loading the real voice")))).as_ref()
}

/// Root-mean-square amplitude.
pub fn rms(s: &[f32]) -> f32 {
    if s.is_empty() {
        return 0.0;
    }
    (s.iter().map(|x| x * x).sum::<f32>() / s.len() as f32).sqrt()
}

/// Longest run of 10 ms frames whose RMS is below `thresh`, in ms, ignoring
/// silence touching the start or end of the buffer.
pub fn longest_inner_gap_ms(s: &[f32], rate_hz: u32, thresh: f32) -> f32 {
    let frame = (rate_hz / 100) as usize;
    let quiet: Vec<bool> = s.chunks(frame).map(|f| rms(f) < thresh).collect();
    let (Some(first), Some(last)) = (quiet.iter().position(|q| !q), quiet.iter().rposition(|q| !q)) else {
        return 0.0;
    };
    let mut best = 0;
    let mut run = 0;
    for &q in &quiet[first..=last] {
        run = if q { run + 1 } else { 0 };
        best = best.max(run);
    }
    best as f32 * 10.0
}
