//! One onnxruntime per process, loaded from a file (`ort` with `load-dynamic`), shared by
//! Silero VAD and the Piper voice.
//!
//! Why the explicit checks: ort 2.0.0-rc.12 hangs instead of failing when it cannot load the
//! library — a wrong path (../shared/stack.md) or a file that is not onnxruntime. When its
//! `init_from` fails, building the error value calls into the ONNX Runtime API, which tries
//! to load the library again inside the same `OnceLock` initializer: a deadlock. So the file
//! is opened and checked here first, the way ort would, and ort only gets a library that
//! is known to load.

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
        None => std::env::var_os("ORT_DYLIB_PATH").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(DEFAULT_ONNXRUNTIME_LIB)),
    };
    // `is_file` follows symlinks; a dangling link or a directory counts as missing.
    if !path.is_file() {
        return Err(AudioError::OnnxRuntimeMissing(path));
    }
    let abs = path.canonicalize().map_err(|_| AudioError::OnnxRuntimeMissing(path.clone()))?;
    check_library(&abs)?;
    let builder = ort::init_from(&abs).map_err(|e| AudioError::OnnxRuntime(format!("{}: {e}", abs.display())))?;
    // `false` only means an environment was already committed: harmless.
    let _ = builder.with_name("firstword").commit();
    tracing::debug!(path = %abs.display(), "onnxruntime loaded");
    *loaded = Some(abs);
    Ok(())
}

/// ONNX Runtime API version ort 2.0.0-rc.12 asks for: the library must be 1.24 or newer.
const ORT_API_MIN: u32 = ort::MINOR_VERSION;

/// Opens the library as ort will and runs ort's own checks (entry point present, version
/// at least 1.[`ORT_API_MIN`], API table available).
fn check_library(path: &Path) -> Result<(), AudioError> {
    let fail = |reason: String| AudioError::OnnxRuntime(format!("{}: {reason}", path.display()));
    // SAFETY: loading a shared library runs its initializers; the path is the configured
    // onnxruntime, the same file ort itself would load.
    let lib = unsafe { libloading::Library::new(path) }.map_err(|e| fail(e.to_string()))?;
    // SAFETY: `OrtGetApiBase` has this signature in every ONNX Runtime release.
    let get_base = unsafe { lib.get::<unsafe extern "C" fn() -> *const ort::sys::OrtApiBase>(b"OrtGetApiBase") }
        .map_err(|_| fail("no OrtGetApiBase symbol: not an onnxruntime library".into()))?;
    // SAFETY: the symbol is ONNX Runtime's entry point; it returns a static table or null.
    let base = unsafe { get_base() };
    if base.is_null() {
        return Err(fail("OrtGetApiBase returned null".into()));
    }
    // SAFETY: non-null `base` points at ONNX Runtime's static OrtApiBase; the version string
    // is static and NUL-terminated.
    let version = unsafe { std::ffi::CStr::from_ptr(((*base).GetVersionString)()) }.to_string_lossy().into_owned();
    let minor = version.split('.').nth(1).and_then(|m| m.parse::<u32>().ok()).unwrap_or(0);
    if minor < ORT_API_MIN {
        return Err(fail(format!("onnxruntime {version} is too old; ort 2.0.0-rc.12 needs 1.{ORT_API_MIN} or newer")));
    }
    // SAFETY: as above; GetApi returns null for an unsupported API version.
    if unsafe { ((*base).GetApi)(ORT_API_MIN) }.is_null() {
        return Err(fail(format!("onnxruntime {version} does not provide API version {ORT_API_MIN}")));
    }
    Ok(())
}
