//! Loading failures: each must be a typed error naming the file, never a
//! hang or a panic. Own test binary, so onnxruntime is not yet loaded when
//! the bad-library cases run.

mod common;

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

use tts::{Tts, TtsConfig, TtsError};

/// Runs `Tts::load` on a thread and fails the test if it takes > 60 s.
fn load_within_timeout(cfg: TtsConfig) -> Result<Tts, TtsError> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(Tts::load(&cfg));
    });
    rx.recv_timeout(Duration::from_secs(60)).expect("Tts::load hung for 60 s")
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tts-loading-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn missing_model_names_the_file() {
    let cfg = TtsConfig::for_voice("/nonexistent/voices/en_US-nobody.onnx");
    let err = Tts::load(&cfg).unwrap_err();
    assert!(matches!(&err, TtsError::MissingModel { path } if path.ends_with("en_US-nobody.onnx")), "{err:?}");
    assert!(err.to_string().contains("/nonexistent/voices/en_US-nobody.onnx"), "{err}");
}

#[test]
fn missing_voice_json_names_the_file() {
    let d = scratch("json");
    std::fs::write(d.join("v.onnx"), b"not really a model").unwrap();
    let err = Tts::load(&TtsConfig::for_voice(d.join("v.onnx"))).unwrap_err();
    assert!(err.to_string().contains("v.onnx.json"), "{err}");
}

#[test]
fn bad_voice_json_is_reported() {
    let d = scratch("badjson");
    std::fs::write(d.join("v.onnx"), b"not really a model").unwrap();
    std::fs::write(d.join("v.onnx.json"), b"{\"audio\": {}}").unwrap();
    let err = Tts::load(&TtsConfig::for_voice(d.join("v.onnx"))).unwrap_err();
    assert!(matches!(err, TtsError::BadVoiceConfig { .. }), "{err:?}");
    assert!(err.to_string().contains("v.onnx.json"), "{err}");
}

/// Bad onnxruntime paths, then the good one, in this order in one test: once
/// a library is loaded the process keeps it.
#[test]
fn onnxruntime_path_is_checked_before_ort_runs() {
    let Some(good) = common::config() else { return };

    let mut cfg = good.clone();
    cfg.onnxruntime_lib = Some("/nonexistent/libonnxruntime.so.1.24.2".into());
    let err = load_within_timeout(cfg).unwrap_err();
    assert!(matches!(&err, TtsError::OnnxRuntimeMissing { .. }), "{err:?}");
    assert!(err.to_string().contains("/nonexistent/libonnxruntime.so.1.24.2"), "{err}");

    // A directory is not a library.
    let mut cfg = good.clone();
    cfg.onnxruntime_lib = Some(std::env::temp_dir());
    assert!(matches!(load_within_timeout(cfg), Err(TtsError::OnnxRuntimeMissing { .. })));

    // A real file that is not a shared library: loader error, not a hang.
    let mut cfg = good.clone();
    cfg.onnxruntime_lib = Some(good.voice_json.clone());
    let err = load_within_timeout(cfg).unwrap_err();
    assert!(matches!(&err, TtsError::OnnxRuntimeLoad { .. }), "{err:?}");

    // Neither configured nor in the environment.
    if std::env::var_os("ORT_DYLIB_PATH").is_none() {
        let mut cfg = good.clone();
        cfg.onnxruntime_lib = None;
        assert!(matches!(load_within_timeout(cfg), Err(TtsError::OnnxRuntimeMissing { .. })));
    }

    // A wrong espeak data directory is named too.
    let mut cfg = good.clone();
    cfg.espeak_data_dir = Some("/nonexistent/espeak".into());
    let err = load_within_timeout(cfg).unwrap_err();
    assert!(matches!(&err, TtsError::EspeakDataMissing { .. }), "{err:?}");

    // And the real library still loads afterwards.
    let mut tts = load_within_timeout(good).expect("the real voice loads");
    assert!(!tts.synthesize("Fine.").unwrap().samples.is_empty());
}
