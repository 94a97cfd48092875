//! Process-wide native runtimes: the onnxruntime library and espeak-ng data.
//! Both are global to the process, so they are set up once, checked first.

use std::path::Path;

use crate::TtsError;

/// Loads onnxruntime once per process through the shared, checked loader in
/// [`audio::onnx::ensure_onnxruntime`] (Silero VAD uses the same one: ort can load only one
/// library, and rc.12 hangs on a library it cannot load, so the loader checks it first).
pub(crate) fn ensure_onnxruntime(configured: Option<&Path>) -> Result<(), TtsError> {
    audio::onnx::ensure_onnxruntime(configured).map_err(|e| match e {
        audio::AudioError::OnnxRuntimeMissing(path) => TtsError::OnnxRuntimeMissing { path },
        other => TtsError::OnnxRuntimeLoad { path: configured.map(Path::to_path_buf).unwrap_or_default(), reason: other.to_string() },
    })
}

/// Environment variable espeak-rs reads once, at its first phonemization.
const ESPEAK_ENV: &str = "PIPER_ESPEAKNG_DATA_DIRECTORY";

/// Points espeak-rs at `dir` (a directory holding `espeak-ng-data/`, or the
/// `espeak-ng-data` directory itself). espeak-rs exposes no setter, only this
/// variable, and reads it once; call before the first phonemization.
pub(crate) fn set_espeak_data_dir(dir: &Path) -> Result<(), TtsError> {
    let parent = if dir.file_name().is_some_and(|n| n == "espeak-ng-data") {
        dir.parent().unwrap_or(Path::new(".")).to_path_buf()
    } else {
        dir.to_path_buf()
    };
    if !parent.join("espeak-ng-data").is_dir() {
        return Err(TtsError::EspeakDataMissing { path: dir.to_path_buf() });
    }
    if std::env::var_os(ESPEAK_ENV).is_some_and(|v| Path::new(&v) != parent) {
        tracing::warn!("{ESPEAK_ENV} is set; espeak_data_dir overrides it");
    }
    // Process-global and read once by espeak-rs; set under the phonemizer lock
    // by the caller so no espeak call races with it.
    std::env::set_var(ESPEAK_ENV, &parent);
    Ok(())
}
