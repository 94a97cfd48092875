//! Export a μLM as a GGUF of llama.cpp's `llama` architecture (F32, F16, Q8_0, or Q4_K with
//! fallbacks), with a byte-level BPE (`gpt2`) tokenizer and chat template embedded.
//!
//! Conventions llama.cpp relies on:
//! - tensor names `token_embd`, `blk.N.attn_{norm,q,k,v,output}`, `blk.N.ffn_{norm,gate,up,down}`,
//!   `output_norm`; no `output.weight` (tied head: llama.cpp falls back to `token_embd`);
//! - `attn_q`/`attn_k` rows permuted for interleaved RoPE (see [`crate::rope_layout`]);
//! - 1-D norm gains stay F32 in every file type.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};

use crate::error::{LmError, Result};
use crate::load::GGUF_MULM_KEY;
use crate::mulm_file::MulmFile;
use crate::rope_layout::{permute_rows_dense, to_gguf_row_sources};
use crate::weights::{tensor_specs, TensorKind, Weights};

/// Weight type of an exported GGUF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportType {
    /// Everything f32 (reference; bit-comparable with the safetensors model).
    F32,
    /// Matrices f16.
    F16,
    /// Matrices Q8_0 (8-bit, block 32): the fast decode format, ~1/4 of f32 size.
    Q8_0,
    /// Matrices Q4_K where the row length is a multiple of 256, else Q8_0 (e.g. 512-8's
    /// `ffn_down` with rows of 1408).
    Q4K,
}

impl ExportType {
    /// llama.cpp `general.file_type` (LLAMA_FTYPE_*): ALL_F32 0, MOSTLY_F16 1, MOSTLY_Q8_0 7,
    /// MOSTLY_Q4_K_S 14.
    fn file_type(self) -> u32 {
        match self {
            ExportType::F32 => 0,
            ExportType::F16 => 1,
            ExportType::Q8_0 => 7,
            ExportType::Q4K => 14,
        }
    }

    /// Parse "f32", "f16", "q8_0", "q4_k".
    pub fn from_name(s: &str) -> Result<ExportType> {
        match s.to_ascii_lowercase().as_str() {
            "f32" => Ok(ExportType::F32),
            "f16" => Ok(ExportType::F16),
            "q8_0" | "q8" => Ok(ExportType::Q8_0),
            "q4_k" | "q4k" => Ok(ExportType::Q4K),
            other => Err(LmError::InvalidArgument(format!("export type {other:?} (f32, f16, q8_0, q4_k)"))),
        }
    }

    /// GGML type for a matrix whose rows have `row_len` elements.
    fn matrix_dtype(self, row_len: usize) -> GgmlDType {
        match self {
            ExportType::F32 => GgmlDType::F32,
            ExportType::F16 => GgmlDType::F16,
            ExportType::Q8_0 if row_len % 32 == 0 => GgmlDType::Q8_0,
            ExportType::Q4K if row_len % 256 == 0 => GgmlDType::Q4K,
            ExportType::Q4K if row_len % 32 == 0 => GgmlDType::Q8_0,
            _ => GgmlDType::F16,
        }
    }
}

/// What [`export_gguf`] wrote.
#[derive(Debug, Clone)]
pub struct ExportSummary {
    /// File size in bytes.
    pub bytes: u64,
    /// (GGUF tensor name, GGML type) in file order.
    pub tensor_types: Vec<(String, GgmlDType)>,
}

/// llama.cpp token types (`llama_token_type`).
const TOKEN_NORMAL: i32 = 1;
const TOKEN_CONTROL: i32 = 3;
const TOKEN_USER_DEFINED: i32 = 4;
const TOKEN_UNUSED: i32 = 5;

/// Vocabulary pieces of a byte-level BPE tokenizer.json, padded to `vocab` entries.
struct GgufVocab {
    tokens: Vec<String>,
    types: Vec<i32>,
    merges: Vec<String>,
}

fn read_vocab(tokenizer_json: &Path, vocab: usize) -> Result<GgufVocab> {
    let text = std::fs::read_to_string(tokenizer_json).map_err(|e| LmError::io(tokenizer_json, e))?;
    let j: serde_json::Value = serde_json::from_str(&text).map_err(|e| LmError::Json { path: tokenizer_json.to_path_buf(), source: e })?;
    let bad = |m: &str| LmError::Tokenizer(format!("{}: {m}", tokenizer_json.display()));
    if j["model"]["type"].as_str() != Some("BPE") {
        return Err(bad("model.type is not BPE (GGUF export writes a gpt2/byte-level BPE vocabulary)"));
    }
    let mut tokens: Vec<Option<String>> = vec![None; vocab];
    let mut types = vec![TOKEN_UNUSED; vocab];
    let mut put = |id: u64, s: &str, ty: i32| -> Result<()> {
        let id = id as usize;
        if id >= vocab {
            return Err(LmError::ConfigMismatch {
                key: "vocab".into(),
                expected: vocab.to_string(),
                found: format!("token id {id} ({s:?})"),
                source_name: tokenizer_json.display().to_string(),
            });
        }
        tokens[id] = Some(s.to_string());
        types[id] = ty;
        Ok(())
    };
    let v = j["model"]["vocab"].as_object().ok_or_else(|| bad("model.vocab is not an object"))?;
    for (s, id) in v {
        put(id.as_u64().ok_or_else(|| bad("vocab id not an integer"))?, s, TOKEN_NORMAL)?;
    }
    if let Some(added) = j["added_tokens"].as_array() {
        for a in added {
            let id = a["id"].as_u64().ok_or_else(|| bad("added_tokens[].id"))?;
            let s = a["content"].as_str().ok_or_else(|| bad("added_tokens[].content"))?;
            let ty = if a["special"].as_bool().unwrap_or(false) { TOKEN_CONTROL } else { TOKEN_USER_DEFINED };
            put(id, s, ty)?;
        }
    }
    // llama.cpp needs exactly n_vocab token strings; ids the tokenizer never produces (the model's
    // vocab may be padded past the tokenizer's) get unique placeholder pieces of type UNUSED.
    let tokens = tokens.into_iter().enumerate().map(|(i, t)| t.unwrap_or_else(|| format!("<|unused_{i}|>"))).collect();
    // tokenizers ≥ 0.20 writes merges as ["a", "b"] pairs, older versions as "a b" strings.
    let merges = j["model"]["merges"]
        .as_array()
        .ok_or_else(|| bad("model.merges is not an array"))?
        .iter()
        .map(|m| match m {
            serde_json::Value::String(s) => Ok(s.clone()),
            serde_json::Value::Array(p) if p.len() == 2 => {
                Ok(format!("{} {}", p[0].as_str().unwrap_or_default(), p[1].as_str().unwrap_or_default()))
            }
            _ => Err(bad("unrecognised merge entry")),
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(GgufVocab { tokens, types, merges })
}

/// Write `weights` as a llama.cpp `llama` GGUF at `out`, with hyper-parameters from `mulm`,
/// vocabulary/merges from `tokenizer_json`, the chat template as Jinja, and the full mulm.json
/// embedded under [`GGUF_MULM_KEY`].
pub fn export_gguf(weights: &Weights, mulm: &MulmFile, tokenizer_json: &Path, out: &Path, ty: ExportType) -> Result<ExportSummary> {
    mulm.validate()?;
    let cfg = &mulm.model;
    if &weights.config != cfg {
        return Err(LmError::ConfigMismatch {
            key: "model".into(),
            expected: format!("{cfg:?}"),
            found: format!("{:?}", weights.config),
            source_name: "weights".into(),
        });
    }
    let vocab = read_vocab(tokenizer_json, cfg.vocab)?;
    for t in mulm.special_tokens.values() {
        if vocab.tokens.get(t.id as usize) != Some(&t.content) {
            return Err(LmError::SpecialTokenMismatch {
                content: t.content.clone(),
                expected: t.id,
                found: vocab.tokens.iter().position(|s| s == &t.content).map(|p| p as u32),
            });
        }
    }

    // Tensors first (quantization may fail on shapes), in llama.cpp's usual order.
    let mut qtensors: Vec<(String, QTensor)> = Vec::new();
    for spec in tensor_specs(cfg) {
        let mut t = weights.get(&spec.hf_name)?.clone();
        let heads = match spec.kind {
            TensorKind::QueryMatrix => Some(cfg.heads),
            TensorKind::KeyMatrix => Some(cfg.kv_heads),
            _ => None,
        };
        if let Some(n) = heads {
            t = permute_rows_dense(&t, &to_gguf_row_sources(spec.shape[0], n))?;
        }
        let dtype = match spec.kind {
            TensorKind::Norm => GgmlDType::F32,
            _ => ty.matrix_dtype(spec.shape[1]),
        };
        qtensors.push((spec.gguf_name, QTensor::quantize(&t, dtype)?));
    }

    let u32v = |x: usize| Value::U32(x as u32);
    let strs = |v: &[String]| Value::Array(v.iter().map(|s| Value::String(s.clone())).collect());
    let mut md: Vec<(String, Value)> = vec![
        ("general.architecture".into(), Value::String("llama".into())),
        ("general.name".into(), Value::String(format!("mulm-{}", mulm.preset))),
        ("general.file_type".into(), Value::U32(ty.file_type())),
        ("llama.context_length".into(), u32v(cfg.max_seq_len)),
        ("llama.embedding_length".into(), u32v(cfg.hidden)),
        ("llama.block_count".into(), u32v(cfg.layers)),
        ("llama.feed_forward_length".into(), u32v(cfg.intermediate)),
        ("llama.attention.head_count".into(), u32v(cfg.heads)),
        ("llama.attention.head_count_kv".into(), u32v(cfg.kv_heads)),
        ("llama.rope.dimension_count".into(), u32v(cfg.head_dim())),
        ("llama.rope.freq_base".into(), Value::F32(cfg.rope_theta as f32)),
        ("llama.attention.layer_norm_rms_epsilon".into(), Value::F32(cfg.rms_eps as f32)),
        ("llama.vocab_size".into(), u32v(cfg.vocab)),
        ("tokenizer.ggml.model".into(), Value::String("gpt2".into())),
        // "default" selects llama.cpp's GPT-2 pre-tokenizer regex, the same split as the
        // tokenizers-crate ByteLevel pre-tokenizer (use_regex = true).
        ("tokenizer.ggml.pre".into(), Value::String("default".into())),
        ("tokenizer.ggml.tokens".into(), strs(&vocab.tokens)),
        ("tokenizer.ggml.token_type".into(), Value::Array(vocab.types.iter().map(|&t| Value::I32(t)).collect())),
        ("tokenizer.ggml.merges".into(), strs(&vocab.merges)),
        ("tokenizer.ggml.bos_token_id".into(), Value::U32(mulm.special_id("bos")?)),
        ("tokenizer.ggml.eos_token_id".into(), Value::U32(mulm.special_id("end")?)),
        // The chat template inserts <|bos|> itself.
        ("tokenizer.ggml.add_bos_token".into(), Value::Bool(false)),
        ("tokenizer.ggml.add_eos_token".into(), Value::Bool(false)),
        ("tokenizer.chat_template".into(), Value::String(mulm.jinja_chat_template()?)),
        (GGUF_MULM_KEY.into(), Value::String(mulm.to_json_string()?)),
    ];
    if let Ok(pad) = mulm.special_id("pad") {
        md.push(("tokenizer.ggml.padding_token_id".into(), Value::U32(pad)));
    }
    let md_refs: Vec<(&str, &Value)> = md.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let t_refs: Vec<(&str, &QTensor)> = qtensors.iter().map(|(k, v)| (k.as_str(), v)).collect();

    let file = File::create(out).map_err(|e| LmError::io(out, e))?;
    let mut w = BufWriter::new(file);
    gguf_file::write(&mut w, &md_refs, &t_refs)?;
    let file = w.into_inner().map_err(|e| LmError::io(out, e.into_error()))?;
    file.sync_all().map_err(|e| LmError::io(out, e))?;
    let bytes = std::fs::metadata(out).map_err(|e| LmError::io(out, e))?.len();
    Ok(ExportSummary { bytes, tensor_types: qtensors.iter().map(|(n, q)| (n.clone(), q.dtype())).collect() })
}
