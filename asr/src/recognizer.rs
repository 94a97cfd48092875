//! The Whisper recognizer: one loaded model and one reusable decoding state.

use std::time::Instant;

use serde::Serialize;
use whisper_rs::{FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters, WhisperState};

use crate::{AsrConfig, AsrError, AudioCtx, SAMPLE_RATE_HZ};

/// Encoder frames per second of audio (1500 frames for 30 s).
const CTX_FRAMES_PER_S: f64 = 50.0;
/// Extra encoder frames beyond the audio (a cut right at the end costs accuracy).
const CTX_MARGIN_FRAMES: usize = 64;
/// Smallest encoder window used; very short windows make Whisper hallucinate.
const CTX_MIN_FRAMES: usize = 384;
const CTX_FULL_FRAMES: usize = 1500;

/// A timed piece of the transcript.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Segment {
    /// Start, in ms from the start of the input.
    pub start_ms: u64,
    /// End, in ms from the start of the input.
    pub end_ms: u64,
    /// Text of the segment, trimmed.
    pub text: String,
}

/// Wall-clock cost of one transcription.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct AsrTimings {
    /// Duration of the input audio, in ms.
    pub audio_ms: f64,
    /// Time spent in whisper.cpp (mel + encoder + decoder), in ms.
    pub total_ms: f64,
    /// Real-time factor: `total_ms / audio_ms` (below 1 is faster than real time).
    pub rtf: f64,
    /// Encoder frames used (1500 = the full 30 s window).
    pub audio_ctx: usize,
}

/// The result of [`Asr::transcribe`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Transcript {
    /// All segments joined by single spaces, trimmed.
    pub text: String,
    pub segments: Vec<Segment>,
    pub timings: AsrTimings,
}

/// A loaded Whisper model with its decoding state (reused between calls, so a turn
/// allocates nothing large).
pub struct Asr {
    // `state` borrows nothing from `ctx` at the type level (whisper-rs keeps an Arc inside),
    // but keep the context alive for as long as the state anyway; shared by [`Asr::fork`]s.
    ctx: std::sync::Arc<WhisperContext>,
    state: WhisperState,
    cfg: AsrConfig,
}

impl Asr {
    /// Loads the ggml model named by `cfg.model`.
    ///
    /// Errors: [`AsrError::ModelMissing`] if the file does not exist,
    /// [`AsrError::ModelInvalid`] if whisper.cpp cannot load it.
    pub fn load(cfg: &AsrConfig) -> Result<Self, AsrError> {
        if !cfg.model.is_file() {
            return Err(AsrError::ModelMissing(cfg.model.clone()));
        }
        whisper_rs::install_logging_hooks();
        let invalid = |message: String| AsrError::ModelInvalid { path: cfg.model.clone(), message };
        // whisper.cpp reads the magic first; reject obvious non-models before handing it over.
        let mut magic = [0u8; 4];
        {
            use std::io::Read;
            let mut f = std::fs::File::open(&cfg.model).map_err(|e| invalid(e.to_string()))?;
            f.read_exact(&mut magic).map_err(|_| invalid("file shorter than 4 bytes".into()))?;
        }
        if u32::from_le_bytes(magic) != 0x6767_6d6c {
            return Err(invalid(format!("bad magic {magic:02x?}, expected ggml 0x67676d6c")));
        }
        let path = cfg.model.to_str().ok_or_else(|| invalid("path is not UTF-8".into()))?;
        let ctx = WhisperContext::new_with_params(path, WhisperContextParameters::default()).map_err(|e| invalid(e.to_string()))?;
        let state = ctx.create_state().map_err(|e| invalid(e.to_string()))?;
        Ok(Self { ctx: std::sync::Arc::new(ctx), state, cfg: cfg.clone() })
    }

    /// A second recognizer on the same model weights, with its own decoding state (the
    /// weights are not loaded twice): for another thread that transcribes beside this one,
    /// such as the wake-word check on the listener thread.
    ///
    /// Errors: [`AsrError::ModelInvalid`] if whisper.cpp cannot allocate the state.
    pub fn fork(&self) -> Result<Self, AsrError> {
        let state = self.ctx.create_state().map_err(|e| AsrError::ModelInvalid { path: self.cfg.model.clone(), message: e.to_string() })?;
        Ok(Self { ctx: self.ctx.clone(), state, cfg: self.cfg.clone() })
    }

    /// The configuration this recognizer was loaded with.
    pub fn config(&self) -> &AsrConfig {
        &self.cfg
    }

    /// Transcribes 16 kHz mono f32 samples in [-1, 1].
    ///
    /// Errors: [`AsrError::BadInput`] for empty input or NaN/infinite samples,
    /// [`AsrError::Whisper`] if whisper.cpp fails.
    pub fn transcribe(&mut self, samples: &[f32]) -> Result<Transcript, AsrError> {
        self.transcribe_prompted(samples, None)
    }

    /// [`Asr::transcribe`] with Whisper's initial prompt: text taken as what came before,
    /// which biases the spelling of words it names (a wake phrase Whisper does not know).
    ///
    /// Errors: as [`Asr::transcribe`].
    pub fn transcribe_prompted(&mut self, samples: &[f32], prompt: Option<&str>) -> Result<Transcript, AsrError> {
        self.run(samples, prompt, None)
    }

    /// [`Asr::transcribe`] that gives up as soon as `cancelled()` returns true: whisper.cpp
    /// asks between the operations of its encoder and decoder graphs (well under a
    /// millisecond apart), so a speculative run whose audio went stale (the user spoke on)
    /// frees the cores at once instead of finishing.
    ///
    /// Errors: as [`Asr::transcribe`], and [`AsrError::Cancelled`] when it gave up.
    pub fn transcribe_unless(
        &mut self,
        samples: &[f32],
        cancelled: impl Fn() -> bool + Send + Sync + 'static,
    ) -> Result<Transcript, AsrError> {
        self.run(samples, None, Some(std::sync::Arc::new(cancelled)))
    }

    fn run(&mut self, samples: &[f32], prompt: Option<&str>, cancelled: Option<StopFn>) -> Result<Transcript, AsrError> {
        if samples.is_empty() {
            return Err(AsrError::BadInput("no samples".into()));
        }
        if let Some(i) = samples.iter().position(|s| !s.is_finite()) {
            return Err(AsrError::BadInput(format!("sample {i} is not finite")));
        }
        let audio_ms = samples.len() as f64 * 1000.0 / SAMPLE_RATE_HZ as f64;
        let audio_ctx = match self.cfg.audio_ctx {
            AudioCtx::Full => CTX_FULL_FRAMES,
            AudioCtx::Auto => auto_audio_ctx(samples.len()),
        };
        let mut params = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
        params.set_n_threads(self.cfg.effective_threads() as i32);
        params.set_language(Some(&self.cfg.language));
        params.set_no_context(true);
        params.set_single_segment(self.cfg.single_segment && audio_ms <= 30_000.0);
        params.set_print_progress(false);
        params.set_print_realtime(false);
        params.set_print_special(false);
        params.set_print_timestamps(false);
        params.set_suppress_blank(true);
        // No temperature fallback: a retry at higher temperature doubles latency on a
        // mis-heard question; a wrong word is cheaper than a late answer here.
        params.set_temperature_inc(0.0);
        if audio_ctx < CTX_FULL_FRAMES {
            params.set_audio_ctx(audio_ctx as i32);
        }
        if let Some(p) = prompt {
            params.set_initial_prompt(p);
        }
        if let Some(c) = &cancelled {
            // whisper-rs 0.16's `set_abort_callback_safe` hands whisper.cpp a pointer of the
            // wrong type (a crash on the first call), so the raw callback is used: its user
            // data points at `cancelled`, which outlives the `full` call below, the only time
            // whisper.cpp calls it.
            // SAFETY: `ask_stop` matches whisper.cpp's abort-callback signature and reads
            // the data pointer as the `StopFn` it is, borrowed across `full`.
            unsafe {
                params.set_abort_callback(Some(ask_stop));
                params.set_abort_callback_user_data(c as *const StopFn as *mut std::ffi::c_void);
            }
        }
        let t0 = Instant::now();
        let ran = self.state.full(params, samples);
        if cancelled.is_some_and(|c| c()) {
            return Err(AsrError::Cancelled);
        }
        ran.map_err(|e| AsrError::Whisper(e.to_string()))?;
        let total_ms = t0.elapsed().as_secs_f64() * 1000.0;
        let mut segments = Vec::new();
        for seg in self.state.as_iter() {
            let text = seg.to_str_lossy().map_err(|e| AsrError::Whisper(e.to_string()))?.trim().to_string();
            if text.is_empty() {
                continue;
            }
            // whisper.cpp timestamps are in centiseconds.
            let start_ms = (seg.start_timestamp().max(0) as u64) * 10;
            let end_ms = (seg.end_timestamp().max(0) as u64) * 10;
            segments.push(Segment { start_ms, end_ms: end_ms.min(audio_ms.ceil() as u64), text });
        }
        let text = segments.iter().map(|s| s.text.as_str()).collect::<Vec<_>>().join(" ");
        Ok(Transcript { text, segments, timings: AsrTimings { audio_ms, total_ms, rtf: total_ms / audio_ms, audio_ctx } })
    }
}

/// A caller's stop condition for a run ([`Asr::transcribe_unless`]).
type StopFn = std::sync::Arc<dyn Fn() -> bool + Send + Sync>;

/// whisper.cpp's abort callback: true stops the run between two graph operations.
unsafe extern "C" fn ask_stop(data: *mut std::ffi::c_void) -> bool {
    // SAFETY: `data` is the `&StopFn` that `Asr::run` set for this `full` call (see there).
    let stop = unsafe { &*(data as *const StopFn) };
    stop()
}

/// Encoder frames for `n_samples` of 16 kHz audio under [`AudioCtx::Auto`].
pub(crate) fn auto_audio_ctx(n_samples: usize) -> usize {
    let secs = n_samples as f64 / SAMPLE_RATE_HZ as f64;
    let frames = (secs * CTX_FRAMES_PER_S).ceil() as usize + CTX_MARGIN_FRAMES;
    frames.clamp(CTX_MIN_FRAMES, CTX_FULL_FRAMES)
}

#[cfg(test)]
mod tests {
    use super::auto_audio_ctx;

    #[test]
    fn audio_ctx_follows_length_within_bounds() {
        assert_eq!(auto_audio_ctx(16_000), 384); // 1 s -> the minimum
        assert_eq!(auto_audio_ctx(16_000 * 11), 11 * 50 + 64);
        assert_eq!(auto_audio_ctx(16_000 * 40), 1500);
    }
}
