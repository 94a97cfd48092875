//! Process-wide native runtimes: the onnxruntime library and espeak-ng data.
//! Both are global to the process, so they are set up once, checked first.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::TtsError;

/// The onnxruntime library this process loaded (ort can load only one).
static LOADED_ORT: Mutex<Option<PathBuf>> = Mutex::new(None);

/// Finds the onnxruntime library (`configured`, else `ORT_DYLIB_PATH`),
/// checks that it is a regular file, and loads it into ort.
///
/// The check comes first because ort 2.0.0-rc.12 with `load-dynamic` does not
/// return an error for a missing library: it hangs (shared/stack.md). Loading
/// through `ort::init_from` with a checked, absolute path avoids both that
/// and ort's own lookup relative to the executable.
pub(crate) fn ensure_onnxruntime(configured: Option<&Path>) -> Result<(), TtsError> {
    let path = match configured {
        Some(p) => p.to_path_buf(),
        None => match std::env::var_os("ORT_DYLIB_PATH") {
            Some(p) if !p.is_empty() => PathBuf::from(p),
            _ => return Err(TtsError::OnnxRuntimeMissing { path: PathBuf::from("(onnxruntime_lib unset and ORT_DYLIB_PATH unset)") }),
        },
    };
    // `is_file` follows symlinks; a dangling link or a directory is "missing".
    if !path.is_file() {
        return Err(TtsError::OnnxRuntimeMissing { path });
    }
    let abs = path.canonicalize().map_err(|_| TtsError::OnnxRuntimeMissing { path: path.clone() })?;

    let mut loaded = LOADED_ORT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(prev) = loaded.as_ref() {
        if *prev != abs {
            tracing::warn!(
                loaded = %prev.display(), requested = %abs.display(),
                "onnxruntime is already loaded in this process; keeping the first library"
            );
        }
        return Ok(());
    }
    let builder = ort::init_from(&abs).map_err(|e| TtsError::OnnxRuntimeLoad { path: abs.clone(), reason: e.to_string() })?;
    // `false` means another crate (e.g. the VAD, same ort) committed an
    // environment first; the library we just checked is still the one in use
    // only if it also loaded it — ort keeps the first library either way.
    let _ = builder.commit();
    tracing::debug!(path = %abs.display(), "onnxruntime loaded");
    *loaded = Some(abs);
    Ok(())
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
