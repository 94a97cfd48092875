//! Loading checkpoints into a [`Model`]: safetensors (f32/f16/bf16, Hugging Face names) through
//! candle's `VarBuilder`, and GGUF (F32/F16/Q8_0/Q4_K/…, llama.cpp names) through candle's
//! quantized tensors. Every mismatch between `mulm.json` and the checkpoint is an error that
//! names the tensor or metadata key.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::quantized::GgmlDType;
use candle_core::Device;

use crate::config::ModelConfig;
use crate::error::{LmError, Result};
use crate::model::{Model, Param};
use crate::mulm_file::{MulmFile, MULM_JSON};
use crate::rope_layout::{from_gguf_row_sources, permute_rows_dense, permute_rows_quantized};
use crate::weights::{tensor_specs, TensorKind, Weights};

/// GGUF metadata key under which the exporter embeds the full mulm.json text, so a GGUF file
/// alone carries the special tokens and chat template (llama.cpp ignores unknown keys).
pub const GGUF_MULM_KEY: &str = "mulm.config_json";

/// Conventional checkpoint file names inside a model directory.
pub const SAFETENSORS_FILE: &str = "model.safetensors";
/// See [`SAFETENSORS_FILE`].
pub const GGUF_FILE: &str = "model.gguf";

/// Load `path` (safetensors) as described by `mulm`. `quant = Some(GgmlDType::Q8_0)` quantizes
/// the matrices in memory for faster decode.
pub fn load_safetensors(path: &Path, mulm: &MulmFile, quant: Option<GgmlDType>) -> Result<Model> {
    let w = Weights::load_safetensors(path, &mulm.model)?;
    Model::from_weights(&w, quant)
}

/// Load a model directory holding `mulm.json` and `model.gguf` or `model.safetensors`
/// (GGUF preferred when both exist: it is the deployable, quantized form).
pub fn load_dir(dir: &Path) -> Result<(Model, MulmFile)> {
    let mulm = MulmFile::load(&dir.join(MULM_JSON))?;
    let gguf = dir.join(GGUF_FILE);
    if gguf.exists() {
        let (m, _) = load_gguf(&gguf, Some(&mulm))?;
        return Ok((m, mulm));
    }
    let st = dir.join(SAFETENSORS_FILE);
    Ok((load_safetensors(&st, &mulm, None)?, mulm))
}

fn md<'a>(c: &'a Content, key: &str) -> Result<&'a Value> {
    c.metadata.get(key).ok_or_else(|| LmError::GgufMetadata { key: key.to_string(), problem: "missing".into() })
}

fn md_usize(c: &Content, key: &str) -> Result<usize> {
    let v = md(c, key)?;
    let n = match v {
        Value::U8(x) => *x as u64,
        Value::U16(x) => *x as u64,
        Value::U32(x) => *x as u64,
        Value::U64(x) => *x,
        Value::I32(x) if *x >= 0 => *x as u64,
        Value::I64(x) if *x >= 0 => *x as u64,
        other => return Err(LmError::GgufMetadata { key: key.into(), problem: format!("expected an unsigned integer, found {other:?}") }),
    };
    Ok(n as usize)
}

fn md_f64(c: &Content, key: &str) -> Result<f64> {
    match md(c, key)? {
        Value::F32(x) => Ok(*x as f64),
        Value::F64(x) => Ok(*x),
        other => Err(LmError::GgufMetadata { key: key.into(), problem: format!("expected a float, found {other:?}") }),
    }
}

/// Read the architecture hyper-parameters from a GGUF's `llama.*` metadata.
pub fn gguf_model_config(c: &Content) -> Result<ModelConfig> {
    let arch = md(c, "general.architecture")?
        .to_string()
        .map_err(|e| LmError::GgufMetadata { key: "general.architecture".into(), problem: e.to_string() })?;
    if arch != "llama" {
        return Err(LmError::GgufMetadata { key: "general.architecture".into(), problem: format!("{arch:?}, expected \"llama\"") });
    }
    let vocab = match md_usize(c, "llama.vocab_size") {
        Ok(v) => v,
        // llama.cpp does not require llama.vocab_size; fall back to the token list length.
        Err(_) => md(c, "tokenizer.ggml.tokens")?
            .to_vec()
            .map(|v| v.len())
            .map_err(|e| LmError::GgufMetadata { key: "tokenizer.ggml.tokens".into(), problem: e.to_string() })?,
    };
    Ok(ModelConfig {
        hidden: md_usize(c, "llama.embedding_length")?,
        layers: md_usize(c, "llama.block_count")?,
        heads: md_usize(c, "llama.attention.head_count")?,
        kv_heads: md_usize(c, "llama.attention.head_count_kv")?,
        intermediate: md_usize(c, "llama.feed_forward_length")?,
        vocab,
        rope_theta: md_f64(c, "llama.rope.freq_base").unwrap_or(10_000.0),
        rms_eps: md_f64(c, "llama.attention.layer_norm_rms_epsilon")?,
        max_seq_len: md_usize(c, "llama.context_length")?,
    })
}

/// Compare the GGUF's hyper-parameters with mulm.json; floats compare with a relative
/// tolerance because GGUF stores them as f32.
fn check_config(expected: &ModelConfig, found: &ModelConfig, source_name: &str) -> Result<()> {
    let ints = [
        ("hidden", expected.hidden, found.hidden),
        ("layers", expected.layers, found.layers),
        ("heads", expected.heads, found.heads),
        ("kv_heads", expected.kv_heads, found.kv_heads),
        ("intermediate", expected.intermediate, found.intermediate),
        ("vocab", expected.vocab, found.vocab),
        ("max_seq_len", expected.max_seq_len, found.max_seq_len),
    ];
    for (key, e, f) in ints {
        if e != f {
            return Err(LmError::ConfigMismatch {
                key: key.into(),
                expected: e.to_string(),
                found: f.to_string(),
                source_name: source_name.into(),
            });
        }
    }
    for (key, e, f) in [("rope_theta", expected.rope_theta, found.rope_theta), ("rms_eps", expected.rms_eps, found.rms_eps)] {
        if ((e - f) / e).abs() > 1e-6 {
            return Err(LmError::ConfigMismatch {
                key: key.into(),
                expected: e.to_string(),
                found: f.to_string(),
                source_name: source_name.into(),
            });
        }
    }
    Ok(())
}

/// Load a GGUF of llama.cpp's `llama` architecture written by [`crate::gguf_export`] (or by
/// llama.cpp's converter from our safetensors). Q/K rows are un-permuted back to the runtime's
/// half-split RoPE layout (see [`crate::rope_layout`]). The config comes from `mulm` when
/// given (and must match the GGUF metadata), else from the embedded mulm.json, else from the
/// `llama.*` metadata alone. Returns the model and the embedded mulm.json if any.
pub fn load_gguf(path: &Path, mulm: Option<&MulmFile>) -> Result<(Model, Option<MulmFile>)> {
    load_gguf_with(path, mulm, true)
}

/// [`load_gguf`] with control over FFN padding (see [`Model::from_params_with`]).
pub fn load_gguf_with(path: &Path, mulm: Option<&MulmFile>, pad_ffn: bool) -> Result<(Model, Option<MulmFile>)> {
    let file_name = path.display().to_string();
    let mut f = File::open(path).map_err(|e| LmError::io(path, e))?;
    crate::gguf_check::check_gguf_alignment(&mut f)
        .map_err(|problem| LmError::GgufMetadata { key: format!("{file_name}: header"), problem })?;
    let content = Content::read(&mut f)?;
    let gguf_cfg = gguf_model_config(&content)?;
    let embedded = match content.metadata.get(GGUF_MULM_KEY) {
        Some(v) => {
            let text = v.to_string().map_err(|e| LmError::GgufMetadata { key: GGUF_MULM_KEY.into(), problem: e.to_string() })?;
            Some(MulmFile::from_json_str(text, &PathBuf::from(format!("{file_name}:{GGUF_MULM_KEY}")))?)
        }
        None => None,
    };
    let cfg = match (mulm, &embedded) {
        (Some(m), _) => m.model.clone(),
        (None, Some(e)) => e.model.clone(),
        (None, None) => gguf_cfg.clone(),
    };
    check_config(&cfg, &gguf_cfg, &file_name)?;
    cfg.validate()?;

    let specs = tensor_specs(&cfg);
    let expected: std::collections::HashSet<&str> = specs.iter().map(|s| s.gguf_name.as_str()).collect();
    let mut names: Vec<&String> = content.tensor_infos.keys().collect();
    names.sort();
    if let Some(extra) = names.iter().find(|n| !expected.contains(n.as_str())) {
        return Err(LmError::UnexpectedTensor { name: extra.to_string(), file: file_name });
    }
    let mut params = HashMap::with_capacity(specs.len());
    let mut dtypes: Vec<GgmlDType> = Vec::new();
    for spec in &specs {
        let info = content
            .tensor_infos
            .get(&spec.gguf_name)
            .ok_or_else(|| LmError::MissingTensor { name: spec.gguf_name.clone(), file: file_name.clone() })?;
        if info.shape.dims() != spec.shape.as_slice() {
            return Err(LmError::ShapeMismatch {
                name: spec.gguf_name.clone(),
                expected: spec.shape.clone(),
                found: info.shape.dims().to_vec(),
            });
        }
        let q = content
            .tensor(&mut f, &spec.gguf_name, &Device::Cpu)
            .map_err(|e| LmError::UnsupportedDtype { name: spec.gguf_name.clone(), dtype: format!("{:?} ({e})", info.ggml_dtype) })?;
        if spec.kind != TensorKind::Norm && !dtypes.contains(&q.dtype()) {
            dtypes.push(q.dtype());
        }
        let heads = match spec.kind {
            TensorKind::QueryMatrix => Some(cfg.heads),
            TensorKind::KeyMatrix => Some(cfg.kv_heads),
            _ => None,
        };
        let dense = matches!(q.dtype(), GgmlDType::F32 | GgmlDType::F16 | GgmlDType::BF16) || spec.kind == TensorKind::Norm;
        let p = match (dense, heads) {
            (true, None) => Param::Dense(q.dequantize(&Device::Cpu)?),
            (true, Some(n)) => {
                let t = q.dequantize(&Device::Cpu)?;
                Param::Dense(permute_rows_dense(&t, &from_gguf_row_sources(spec.shape[0], n))?)
            }
            (false, None) => Param::Quant(Arc::new(q)),
            (false, Some(n)) => {
                Param::Quant(Arc::new(permute_rows_quantized(&q, &from_gguf_row_sources(spec.shape[0], n), &spec.gguf_name)?))
            }
        };
        params.insert(spec.hf_name.clone(), p);
    }
    let label = format!("gguf:{}", dtypes.iter().map(|d| format!("{d:?}").to_lowercase()).collect::<Vec<_>>().join("+"));
    let model = Model::from_params_with(&cfg, &params, &label, pad_ffn)?;
    Ok((model, embedded))
}
