//! Silero VAD v6 (ONNX, PyPI `silero-vad` 6.2.3) through ort.
//!
//! Model I/O: `input` f32 [1, 64 + 512] (the last 64 samples of the previous window as
//! context, then the new 512), `state` f32 [2, 1, 128], `sr` i64 scalar (16000); outputs
//! the speech probability [1, 1] and the next state [2, 1, 128]. Matches the reference
//! Python wrapper (`OnnxWrapper` in silero-vad's utils_vad.py).

use std::path::Path;

use ort::session::Session;
use ort::value::Tensor;

use super::{SpeechDetector, FRAME_SAMPLES};
use crate::AudioError;

const CONTEXT: usize = 64;
const STATE_LEN: usize = 2 * 128;

/// A loaded Silero VAD session with its recurrent state.
pub struct SileroDetector {
    session: Session,
    state: Vec<f32>,
    input: Vec<f32>,
}

impl SileroDetector {
    /// Loads the ONNX model; onnxruntime comes from `ort_lib` (see
    /// [`crate::onnx::ensure_onnxruntime`]). One intra-op thread: a 512-sample frame is tiny.
    pub fn load(model: &Path, ort_lib: Option<&Path>) -> Result<Self, AudioError> {
        if !model.is_file() {
            return Err(AudioError::VadModelMissing(model.to_path_buf()));
        }
        crate::onnx::ensure_onnxruntime(ort_lib)?;
        let err = |e: ort::Error| AudioError::Vad(format!("{}: {e}", model.display()));
        let session = Session::builder()
            .map_err(err)?
            .with_intra_threads(1)
            .map_err(|e| AudioError::Vad(e.to_string()))?
            .commit_from_file(model)
            .map_err(err)?;
        Ok(Self { session, state: vec![0.0; STATE_LEN], input: vec![0.0; CONTEXT + FRAME_SAMPLES] })
    }
}

impl SpeechDetector for SileroDetector {
    fn speech_prob(&mut self, frame: &[f32]) -> Result<f32, AudioError> {
        if frame.len() != FRAME_SAMPLES {
            return Err(AudioError::FrameSize { expected: FRAME_SAMPLES, got: frame.len() });
        }
        // Shift: keep the last 64 samples of the previous window as this window's context.
        self.input.copy_within(FRAME_SAMPLES.., 0);
        self.input[CONTEXT..].copy_from_slice(frame);
        let verr = |e: ort::Error| AudioError::Vad(e.to_string());
        let input = Tensor::from_array(([1usize, CONTEXT + FRAME_SAMPLES], self.input.clone())).map_err(verr)?;
        let state = Tensor::from_array(([2usize, 1, 128], self.state.clone())).map_err(verr)?;
        let sr = Tensor::from_array((Vec::<i64>::new(), vec![crate::ASR_RATE_HZ as i64])).map_err(verr)?;
        let outputs = self.session.run(ort::inputs!["input" => input, "state" => state, "sr" => sr]).map_err(verr)?;
        let (_, prob) = outputs[0].try_extract_tensor::<f32>().map_err(verr)?;
        let (_, next) = outputs[1].try_extract_tensor::<f32>().map_err(verr)?;
        if next.len() != STATE_LEN || prob.is_empty() {
            return Err(AudioError::Vad(format!("unexpected output sizes: prob {}, state {}", prob.len(), next.len())));
        }
        let p = prob[0];
        self.state.copy_from_slice(next);
        Ok(p)
    }

    fn reset(&mut self) {
        self.state.fill(0.0);
        self.input.fill(0.0);
    }

    fn name(&self) -> &'static str {
        "silero"
    }
}
