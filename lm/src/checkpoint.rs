//! The μLM checkpoint as the device loads it: the `[lm]` config table ([`LmSection`]) and
//! [`load_checkpoint`], which reads a checkpoint directory (lm/SCHEMA.md: mulm.json,
//! tokenizer.json, model.gguf or model.safetensors) into a ready model and tokenizer.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Deserialize;

use crate::LmError;

/// `[lm]`: the on-device micro LM that speaks the opener.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LmSection {
    /// Checkpoint directory: mulm.json, tokenizer.json, model.gguf or model.safetensors.
    pub model_dir: PathBuf,
    /// Threads for the μLM's forward pass (1 is fastest for decode on 2 shared cores).
    pub threads: usize,
    /// In-memory weight format for a safetensors checkpoint ("q8_0" or "f32"); a GGUF
    /// checkpoint keeps the type it was exported with.
    pub quant: LmQuant,
}

/// Weight format of the μLM's matrices in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(non_camel_case_types)] // Q8_0 is GGML's name for the format
pub enum LmQuant {
    /// 8-bit blocks of 32 (llama.cpp Q8_0): the fast decode format.
    Q8_0,
    /// Dense f32 (reference numerics).
    F32,
}

impl Default for LmSection {
    fn default() -> Self {
        LmSection { model_dir: PathBuf::from("models/mulm"), threads: 1, quant: LmQuant::Q8_0 }
    }
}

impl LmSection {
    /// Range checks; messages name the key.
    pub fn validate(&self) -> crate::Result<()> {
        if self.model_dir.as_os_str().is_empty() {
            return Err(LmError::setting("lm.model_dir", " is empty (default \"models/mulm\")".into()));
        }
        if !(1..=64).contains(&self.threads) {
            return Err(LmError::setting("lm.threads", format!(" = {} (must be in 1..=64)", self.threads)));
        }
        Ok(())
    }
}

/// A loaded μLM and what it is.
pub struct LoadedLm {
    pub model: crate::Model,
    pub tok: crate::ChatTokenizer,
    pub mulm: crate::MulmFile,
    /// Wall time to load (ms).
    pub load_ms: f64,
}

/// Load `dir` (mulm.json + tokenizer.json + model.gguf or model.safetensors). A safetensors
/// checkpoint is quantized in memory per `quant`; a GGUF keeps its own types.
pub fn load_checkpoint(dir: &Path, quant: LmQuant, threads: usize) -> crate::Result<LoadedLm> {
    let t0 = Instant::now();
    let mulm_path = dir.join(crate::mulm_file::MULM_JSON);
    if !mulm_path.is_file() {
        return Err(LmError::MissingCheckpoint { dir: dir.to_path_buf() });
    }
    let mulm = crate::MulmFile::load(&mulm_path).map_err(LmError::loading(&mulm_path))?;
    let gguf = dir.join(crate::load::GGUF_FILE);
    let st = dir.join(crate::load::SAFETENSORS_FILE);
    let mut model = if gguf.is_file() {
        crate::load_gguf(&gguf, Some(&mulm)).map_err(LmError::loading(&gguf))?.0
    } else if st.is_file() {
        let q = match quant {
            LmQuant::Q8_0 => Some(crate::GgmlDType::Q8_0),
            LmQuant::F32 => None,
        };
        crate::load_safetensors(&st, &mulm, q).map_err(LmError::loading(&st))?
    } else {
        return Err(LmError::NoWeights { dir: dir.to_path_buf() });
    };
    model.set_threads(threads)?;
    let tok_path = dir.join("tokenizer.json");
    let tok = crate::ChatTokenizer::from_file(&tok_path, &mulm).map_err(LmError::loading(&tok_path))?;
    Ok(LoadedLm { model, tok, mulm, load_ms: t0.elapsed().as_secs_f64() * 1e3 })
}
