//! One onnxruntime per process, loaded from a file (`ort` with `load-dynamic`), shared by
//! Silero VAD and the Piper voice.
//!
//! Why the explicit check: ort 2.0.0-rc.12 hangs instead of failing when the library path is
//! wrong (../shared/stack.md), so the file is checked before ort ever sees it.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::AudioError;

static LOADED: Mutex<Option<PathBuf>> = Mutex::new(None);

/// Default location written by `scripts/setup.sh` (onnxruntime 1.24.2 from its PyPI wheel,
/// the ORT API level that ort rc.12 needs).
pub const DEFAULT_ONNXRUNTIME_LIB: &str = "models/onnxruntime/libonnxruntime.so.1.24.2";

/// Loads onnxruntime from `lib` once per process; later calls are no-ops (the first path
/// wins). `None` uses `ORT_DYLIB_PATH` if set, else [`DEFAULT_ONNXRUNTIME_LIB`].
///
/// Errors: [`AudioError::OnnxRuntimeMissing`] if the file does not exist or is not a regular
/// file, [`AudioError::OnnxRuntime`] if it cannot be loaded.
pub fn ensure_onnxruntime(lib: Option<&Path>) -> Result<(), AudioError> {
    let mut loaded = LOADED.lock().unwrap_or_else(|p| p.into_inner());
    if loaded.is_some() {
        return Ok(());
    }
    let path: PathBuf = match lib {
        Some(p) => p.to_path_buf(),
        None => std::env::var_os("ORT_DYLIB_PATH")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_ONNXRUNTIME_LIB)),
    };
    if !path.is_file() {
        return Err(AudioError::OnnxRuntimeMissing(path));
    }
    let builder = ort::init_from(&path).map_err(|e| AudioError::OnnxRuntime(format!("{}: {e}", path.display())))?;
    builder.with_name("firstword").commit();
    *loaded = Some(path);
    Ok(())
}
