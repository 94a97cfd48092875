//! Tensor naming, a plain name → tensor map of the weights, seeded random initialisation and
//! safetensors saving (paper §architecture; brief item 8 "development without a checkpoint").
//!
//! Safetensors checkpoints use Hugging Face Llama names and layout (half-split "NEOX" RoPE,
//! `[out, in]` matrices, no `lm_head.weight` because embeddings are tied), so a PyTorch trainer
//! built on `LlamaForCausalLM(tie_word_embeddings=True)` or a hand-written equivalent can write
//! them directly. GGUF uses llama.cpp names ([`TensorSpec::gguf_name`]).

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};

use crate::config::ModelConfig;
use crate::error::{LmError, Result};

/// Role of a tensor, which decides how it is quantized and whether it is RoPE-permuted in GGUF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TensorKind {
    /// Token embedding `[V, d]`, also the tied LM head.
    Embedding,
    /// RMSNorm gain `[d]` (kept in f32 in every GGUF type, like llama.cpp).
    Norm,
    /// A projection matrix `[out, in]`.
    Matrix,
    /// Query projection `[h·hd, d]`: rows permuted in GGUF for llama.cpp's interleaved RoPE.
    QueryMatrix,
    /// Key projection `[g·hd, d]`: rows permuted in GGUF like the query.
    KeyMatrix,
}

/// One tensor of the architecture: both names, its shape and role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorSpec {
    /// Hugging Face / safetensors name, e.g. `model.layers.0.self_attn.q_proj.weight`.
    pub hf_name: String,
    /// llama.cpp GGUF name, e.g. `blk.0.attn_q.weight`.
    pub gguf_name: String,
    /// Shape in PyTorch order (`[out, in]` for matrices).
    pub shape: Vec<usize>,
    /// Role of the tensor.
    pub kind: TensorKind,
}

/// Every tensor of a μLM with config `cfg`, in a fixed order (embedding, blocks, final norm).
pub fn tensor_specs(cfg: &ModelConfig) -> Vec<TensorSpec> {
    let (d, q, kv, f) = (cfg.hidden, cfg.q_dim(), cfg.kv_dim(), cfg.intermediate);
    let spec = |hf: String, gg: String, shape: Vec<usize>, kind| TensorSpec { hf_name: hf, gguf_name: gg, shape, kind };
    let mut out = vec![spec("model.embed_tokens.weight".into(), "token_embd.weight".into(), vec![cfg.vocab, d], TensorKind::Embedding)];
    for i in 0..cfg.layers {
        let hf = |s: &str| format!("model.layers.{i}.{s}.weight");
        let gg = |s: &str| format!("blk.{i}.{s}.weight");
        out.push(spec(hf("input_layernorm"), gg("attn_norm"), vec![d], TensorKind::Norm));
        out.push(spec(hf("self_attn.q_proj"), gg("attn_q"), vec![q, d], TensorKind::QueryMatrix));
        out.push(spec(hf("self_attn.k_proj"), gg("attn_k"), vec![kv, d], TensorKind::KeyMatrix));
        out.push(spec(hf("self_attn.v_proj"), gg("attn_v"), vec![kv, d], TensorKind::Matrix));
        out.push(spec(hf("self_attn.o_proj"), gg("attn_output"), vec![d, q], TensorKind::Matrix));
        out.push(spec(hf("post_attention_layernorm"), gg("ffn_norm"), vec![d], TensorKind::Norm));
        out.push(spec(hf("mlp.gate_proj"), gg("ffn_gate"), vec![f, d], TensorKind::Matrix));
        out.push(spec(hf("mlp.up_proj"), gg("ffn_up"), vec![f, d], TensorKind::Matrix));
        out.push(spec(hf("mlp.down_proj"), gg("ffn_down"), vec![d, f], TensorKind::Matrix));
    }
    out.push(spec("model.norm.weight".into(), "output_norm.weight".into(), vec![d], TensorKind::Norm));
    out
}

/// The μLM weights as f32 CPU tensors keyed by Hugging Face name. This is the exchange format
/// between random init, safetensors, GGUF export and the runtime [`crate::model::Model`].
#[derive(Debug, Clone)]
pub struct Weights {
    /// Architecture the tensors belong to.
    pub config: ModelConfig,
    /// f32 tensors keyed by [`TensorSpec::hf_name`]; exactly the names of [`tensor_specs`].
    pub tensors: HashMap<String, Tensor>,
}

/// SplitMix64: a tiny, well-mixed, seedable generator so random weights are reproducible across
/// machines without pulling in `rand` (candle's own `randn` is not seedable on CPU).
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// Generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1) with 53 bits of precision.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
    /// Standard normal via Box–Muller.
    pub fn next_normal(&mut self) -> f64 {
        let u1 = self.next_f64().max(f64::MIN_POSITIVE);
        let u2 = self.next_f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

impl Weights {
    /// Random weights of the real shapes for development without a trained checkpoint.
    /// Matrices `[out, in]` ~ N(0, 1/in) so activations and logits stay O(1) and attention is
    /// non-uniform (makes RoPE/GQA bugs visible in tests); norm gains are 1 + N(0, 0.1²) rather
    /// than exactly 1 so that swapping two norms changes the output.
    pub fn random_init(cfg: &ModelConfig, seed: u64) -> Result<Weights> {
        cfg.validate()?;
        let mut rng = SplitMix64::new(seed);
        let mut tensors = HashMap::new();
        for spec in tensor_specs(cfg) {
            let n: usize = spec.shape.iter().product();
            let data: Vec<f32> = match spec.kind {
                TensorKind::Norm => (0..n).map(|_| (1.0 + 0.1 * rng.next_normal()) as f32).collect(),
                _ => {
                    let std = 1.0 / (*spec.shape.last().unwrap_or(&1) as f64).sqrt();
                    (0..n).map(|_| (std * rng.next_normal()) as f32).collect()
                }
            };
            tensors.insert(spec.hf_name, Tensor::from_vec(data, spec.shape, &Device::Cpu)?);
        }
        Ok(Weights { config: cfg.clone(), tensors })
    }

    /// Tensor called `name` (Hugging Face name).
    pub fn get(&self, name: &str) -> Result<&Tensor> {
        self.tensors.get(name).ok_or_else(|| LmError::MissingTensor { name: name.to_string(), file: "in-memory weights".into() })
    }

    /// Write all tensors to a safetensors file in `dtype` (F32, F16 or BF16).
    pub fn save_safetensors(&self, path: &Path, dtype: DType) -> Result<()> {
        if !matches!(dtype, DType::F32 | DType::F16 | DType::BF16) {
            return Err(LmError::InvalidArgument(format!("safetensors dtype {dtype:?} (use F32, F16 or BF16)")));
        }
        let mut converted = HashMap::with_capacity(self.tensors.len());
        for (k, v) in &self.tensors {
            converted.insert(k.clone(), v.to_dtype(dtype)?);
        }
        candle_core::safetensors::save(&converted, path).map_err(|e| match e {
            candle_core::Error::Io(io) => LmError::io(path, io),
            other => LmError::Candle(other),
        })
    }

    /// Load and validate a safetensors checkpoint through candle's `VarBuilder` (memory-mapped).
    /// f16/bf16 tensors are widened to f32 (CPU inference runs in f32). Errors name the
    /// offending tensor: missing, unexpected (e.g. an untied `lm_head.weight`), wrong shape,
    /// unsupported dtype.
    pub fn load_safetensors(path: &Path, cfg: &ModelConfig) -> Result<Weights> {
        cfg.validate()?;
        if !path.exists() {
            return Err(LmError::io(path, std::io::Error::new(std::io::ErrorKind::NotFound, "no such file")));
        }
        let file = path.display().to_string();
        // SAFETY: the file is mapped read-only; the runtime owns checkpoints and does not modify
        // them while loaded (the usual candle/safetensors contract).
        let st = unsafe { candle_core::safetensors::MmapedSafetensors::new(path)? };
        let specs = tensor_specs(cfg);
        let expected: std::collections::HashSet<&str> = specs.iter().map(|s| s.hf_name.as_str()).collect();
        let mut present: Vec<String> = st.tensors().into_iter().map(|(n, _)| n).collect();
        present.sort();
        if let Some(extra) = present.iter().find(|n| !expected.contains(n.as_str())) {
            return Err(LmError::UnexpectedTensor { name: extra.clone(), file });
        }
        for spec in &specs {
            let view = st.get(&spec.hf_name).map_err(|_| LmError::MissingTensor { name: spec.hf_name.clone(), file: file.clone() })?;
            let dtype = format!("{:?}", view.dtype());
            if !matches!(dtype.as_str(), "F32" | "F16" | "BF16") {
                return Err(LmError::UnsupportedDtype { name: spec.hf_name.clone(), dtype });
            }
            if view.shape() != spec.shape.as_slice() {
                return Err(LmError::ShapeMismatch {
                    name: spec.hf_name.clone(),
                    expected: spec.shape.clone(),
                    found: view.shape().to_vec(),
                });
            }
        }
        let vb = candle_nn::VarBuilder::from_backend(Box::new(st), DType::F32, Device::Cpu);
        let mut tensors = HashMap::with_capacity(specs.len());
        for spec in specs {
            let t = vb.get(spec.shape.clone(), &spec.hf_name)?;
            tensors.insert(spec.hf_name, t);
        }
        Ok(Weights { config: cfg.clone(), tensors })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Preset;

    #[test]
    fn spec_count_matches_parameter_count() {
        for p in Preset::ALL {
            let cfg = p.config();
            let n: usize = tensor_specs(&cfg).iter().map(|s| s.shape.iter().product::<usize>()).sum();
            assert_eq!(n, cfg.parameter_count(), "{p}");
        }
    }

    #[test]
    fn random_init_is_seeded() {
        let cfg = Preset::Tiny64x2.config();
        let a = Weights::random_init(&cfg, 7).unwrap();
        let b = Weights::random_init(&cfg, 7).unwrap();
        let c = Weights::random_init(&cfg, 8).unwrap();
        let name = "model.layers.1.mlp.up_proj.weight";
        let va: Vec<f32> = a.get(name).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        let vb: Vec<f32> = b.get(name).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        let vc: Vec<f32> = c.get(name).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(va, vb);
        assert_ne!(va, vc);
    }
}
