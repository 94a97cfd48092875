//! The μLM forward pass (paper §architecture): pre-norm decoder blocks with RMSNorm, RoPE
//! (θ = 1e6, half-split layout), grouped-query attention, SwiGLU MLP, no biases, tied
//! embeddings, and a preallocated KV cache for decoding. Computation is f32 on the CPU;
//! matrices may be dense f32 or GGML-quantized: Q8_0 on [`crate::q8`] where the CPU has
//! AVX-512 VNNI, otherwise candle's `QMatMul` (see [`crate::linear`]).

use std::collections::HashMap;
use std::sync::Arc;

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{DType, Device, Tensor, D};

use crate::attention::{causal_gqa, AttnShape};
use crate::config::ModelConfig;
use crate::error::{LmError, Result};
use crate::linear::{q8_kernel_enabled, Linear};
use crate::q8::Q8Kernel;
use crate::rope_layout::concat_rows_quantized;
use crate::swiglu::swiglu;
use crate::tensor_view::with_f32;
use crate::weights::{tensor_specs, TensorKind, Weights};

/// One parameter as handed to [`Model::from_params`]: dense f32 or GGML-quantized.
#[derive(Debug, Clone)]
pub enum Param {
    /// Dense f32 tensor (any shape).
    Dense(Tensor),
    /// Quantized 2-D matrix `[out, in]`.
    Quant(Arc<QTensor>),
}

impl Param {
    fn dense(&self) -> Result<Tensor> {
        match self {
            Param::Dense(t) => Ok(t.to_dtype(DType::F32)?),
            Param::Quant(q) => Ok(q.dequantize(&Device::Cpu)?),
        }
    }
    fn matmul(&self) -> Result<Linear> {
        match self {
            Param::Dense(t) => Ok(Linear::dense(t.to_dtype(DType::F32)?)),
            Param::Quant(q) => Linear::quantized(q.clone()),
        }
    }
}

/// Several projections of the same input. Fusing them into one matrix means one matmul call
/// (and one activation quantization for Q8_0) instead of three, which matters for decode.
#[derive(Debug, Clone)]
enum Proj {
    /// One stacked matrix; output split into chunks of `sizes` along the last dim.
    Fused { w: Linear, sizes: Vec<usize> },
    /// Parts of different dtypes (e.g. a mixed-quant GGUF) stay separate.
    Split(Vec<Linear>),
}

impl Proj {
    fn new(parts: &[&Param]) -> Result<Proj> {
        let sizes: Vec<usize> = parts
            .iter()
            .map(|p| match p {
                Param::Dense(t) => t.dims()[0],
                Param::Quant(q) => q.shape().dims()[0],
            })
            .collect();
        if parts.iter().all(|p| matches!(p, Param::Dense(_))) {
            let ts = parts.iter().map(|p| p.dense()).collect::<Result<Vec<_>>>()?;
            return Ok(Proj::Fused { w: Linear::dense(Tensor::cat(&ts, 0)?), sizes });
        }
        let qs: Vec<&QTensor> = parts
            .iter()
            .filter_map(|p| match p {
                Param::Quant(q) => Some(q.as_ref()),
                Param::Dense(_) => None,
            })
            .collect();
        if qs.len() == parts.len() && qs.iter().all(|q| q.dtype() == qs[0].dtype()) {
            let fused = concat_rows_quantized(&qs)?;
            return Ok(Proj::Fused { w: Linear::quantized(Arc::new(fused))?, sizes });
        }
        Ok(Proj::Split(parts.iter().map(|p| p.matmul()).collect::<Result<Vec<_>>>()?))
    }

    /// x `[1, s, in]` → one `[1, s, out_i]` per part.
    fn forward(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        match self {
            Proj::Fused { w, sizes } => {
                let y = w.forward(x)?;
                let mut out = Vec::with_capacity(sizes.len());
                let mut start = 0;
                for &n in sizes {
                    out.push(y.narrow(D::Minus1, start, n)?);
                    start += n;
                }
                Ok(out)
            }
            Proj::Split(ws) => ws.iter().map(|w| w.forward(x)).collect(),
        }
    }
}

#[derive(Debug, Clone)]
struct Block {
    attn_norm: Tensor,
    qkv: Proj,
    o: Linear,
    ffn_norm: Tensor,
    gate_up: Proj,
    down: Linear,
}

/// Per-layer key/value buffers `[1, g, max_seq_len, hd]`, allocated once and overwritten in
/// place, so decoding allocates no cache memory after construction. Deliberately not `Clone`:
/// candle tensors share storage, so a clone would write into the same buffers.
#[derive(Debug)]
pub struct Cache {
    k: Vec<Tensor>,
    v: Vec<Tensor>,
    len: usize,
    max_seq_len: usize,
}

impl Cache {
    /// Empty cache sized for `cfg.max_seq_len` tokens.
    pub fn new(cfg: &ModelConfig) -> Result<Cache> {
        let shape = (1, cfg.kv_heads, cfg.max_seq_len, cfg.head_dim());
        let mut k = Vec::with_capacity(cfg.layers);
        let mut v = Vec::with_capacity(cfg.layers);
        for _ in 0..cfg.layers {
            k.push(Tensor::zeros(shape, DType::F32, &Device::Cpu)?);
            v.push(Tensor::zeros(shape, DType::F32, &Device::Cpu)?);
        }
        Ok(Cache { k, v, len: 0, max_seq_len: cfg.max_seq_len })
    }
    /// Tokens already processed (= position of the next token).
    pub fn len(&self) -> usize {
        self.len
    }
    /// True before the first forward call.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Forget all positions (keeps the buffers).
    pub fn reset(&mut self) {
        self.len = 0;
    }
    /// Positions the buffers hold.
    pub fn max_seq_len(&self) -> usize {
        self.max_seq_len
    }
    /// Layers the cache is for.
    pub fn layers(&self) -> usize {
        self.k.len()
    }
    /// Roll back to `len` tokens (e.g. to reuse a shared prompt prefix).
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }
}

/// A loaded μLM ready for inference. Immutable: decoding state lives in [`Cache`], so one model
/// can serve several sessions.
#[derive(Debug, Clone)]
pub struct Model {
    cfg: ModelConfig,
    /// `[V, d]` f32, for the embedding lookup (dequantized if the checkpoint was quantized).
    embed: Tensor,
    blocks: Vec<Block>,
    final_norm: Tensor,
    /// Tied LM head: the token embedding used as a `[V, d]` matrix (possibly quantized).
    lm_head: Linear,
    /// RoPE tables `[max_seq_len, hd/2]`.
    cos: Tensor,
    sin: Tensor,
    format: String,
    /// Private rayon pool every forward runs in (see [`Model::set_threads`]).
    pool: Arc<rayon::ThreadPool>,
}

impl Model {
    /// Build from parameters keyed by Hugging Face name (see [`tensor_specs`]); shapes are
    /// checked and errors name the tensor. `format` is a label such as "f32" or "q8_0".
    pub fn from_params(cfg: &ModelConfig, params: &HashMap<String, Param>, format: &str) -> Result<Model> {
        Model::from_params_with(cfg, params, format, true)
    }

    /// [`Model::from_params`] with control over FFN padding: `pad_ffn` zero-pads quantized
    /// SwiGLU intermediates to a multiple of 256 when candle's kernels run them, so its fast
    /// x86 path applies (same function up to its coarser per-256 activation quantization).
    /// Q8_0 on [`crate::q8`] is never padded: it takes any multiple of 32 and quantizes
    /// activations per 32 like llama.cpp.
    pub fn from_params_with(cfg: &ModelConfig, params: &HashMap<String, Param>, format: &str, pad_ffn: bool) -> Result<Model> {
        cfg.validate()?;
        for spec in tensor_specs(cfg) {
            let p = params
                .get(&spec.hf_name)
                .ok_or_else(|| LmError::MissingTensor { name: spec.hf_name.clone(), file: "parameters".into() })?;
            let found = match p {
                Param::Dense(t) => t.dims().to_vec(),
                Param::Quant(q) => q.shape().dims().to_vec(),
            };
            if found != spec.shape {
                return Err(LmError::ShapeMismatch { name: spec.hf_name, expected: spec.shape, found });
            }
        }
        // Presence was checked above, so indexing by name cannot fail below.
        let get = |n: String| -> Result<&Param> { params.get(&n).ok_or(LmError::MissingTensor { name: n, file: "parameters".into() }) };
        let embed_p = get("model.embed_tokens.weight".into())?;
        let embed = embed_p.dense()?;
        let lm_head = embed_p.matmul()?;
        let mut blocks = Vec::with_capacity(cfg.layers);
        for i in 0..cfg.layers {
            let n = |s: &str| format!("model.layers.{i}.{s}.weight");
            let (gate, up, down) = if pad_ffn {
                pad_ffn_for_fast_kernels(get(n("mlp.gate_proj"))?, get(n("mlp.up_proj"))?, get(n("mlp.down_proj"))?)?
            } else {
                (get(n("mlp.gate_proj"))?.clone(), get(n("mlp.up_proj"))?.clone(), get(n("mlp.down_proj"))?.clone())
            };
            blocks.push(Block {
                attn_norm: get(n("input_layernorm"))?.dense()?,
                qkv: Proj::new(&[get(n("self_attn.q_proj"))?, get(n("self_attn.k_proj"))?, get(n("self_attn.v_proj"))?])?,
                o: get(n("self_attn.o_proj"))?.matmul()?,
                ffn_norm: get(n("post_attention_layernorm"))?.dense()?,
                gate_up: Proj::new(&[&gate, &up])?,
                down: down.matmul()?,
            });
        }
        let final_norm = get("model.norm.weight".into())?.dense()?;
        let (cos, sin) = rope_tables(cfg)?;
        Ok(Model {
            cfg: cfg.clone(),
            embed,
            blocks,
            final_norm,
            lm_head,
            cos,
            sin,
            format: format.to_string(),
            pool: Arc::new(build_pool(DEFAULT_THREADS)?),
        })
    }

    /// Build from f32 [`Weights`]; with `quant = Some(Q8_0)` (etc.) every matrix whose row length
    /// is a multiple of the block size is quantized in memory, the rest stay f32.
    pub fn from_weights(w: &Weights, quant: Option<GgmlDType>) -> Result<Model> {
        let mut params = HashMap::with_capacity(w.tensors.len());
        for spec in tensor_specs(&w.config) {
            let t = w.get(&spec.hf_name)?;
            let p = match quant {
                Some(q) if spec.kind != TensorKind::Norm && q != GgmlDType::F32 && spec.shape[1] % q.block_size() == 0 => {
                    Param::Quant(Arc::new(QTensor::quantize(t, q)?))
                }
                _ => Param::Dense(t.clone()),
            };
            params.insert(spec.hf_name, p);
        }
        let label = quant.map(|q| format!("{q:?}").to_lowercase()).unwrap_or_else(|| "f32".into());
        Model::from_params(&w.config, &params, &label)
    }

    /// Architecture of this model.
    pub fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    /// Weight storage label ("f32", "q8_0", "gguf:q8_0", …).
    pub fn format(&self) -> &str {
        &self.format
    }

    /// The kernel of the quantized matrices: `"lm::q8 <kernel>"` (e.g. `"lm::q8 avx2"`) when
    /// Q8_0 weights run on [`crate::q8`], else `"candle"` (dense f32, other GGML types, a CPU
    /// without a [`crate::q8::Q8Kernel`], or `FIRSTWORD_Q8_KERNEL=candle`).
    pub fn matmul_kernel(&self) -> &'static str {
        match &self.lm_head {
            Linear::Q8(w) => match w.kernel() {
                Some(Q8Kernel::Avx512Vnni) => "lm::q8 avx512-vnni",
                Some(Q8Kernel::Avx2) => "lm::q8 avx2",
                Some(Q8Kernel::NeonDotprod) => "lm::q8 neon-dotprod",
                None => "candle",
            },
            Linear::Candle(_) => "candle",
        }
    }

    /// A fresh KV cache for this model.
    pub fn new_cache(&self) -> Result<Cache> {
        Cache::new(&self.cfg)
    }

    /// Run `tokens` (s ≥ 1 new tokens at positions `cache.len()..`) through the model, appending
    /// their keys/values to `cache`. Returns f32 logits `[s, V]` when `all_logits`, else the last
    /// position's logits `[V]`.
    pub fn forward(&self, tokens: &[u32], cache: &mut Cache, all_logits: bool) -> Result<Tensor> {
        if self.pool.current_thread_index().is_some() {
            // Already on this model's pool (inside [`Model::install`]): no hand-off.
            return self.forward_inner(tokens, cache, all_logits);
        }
        self.pool.install(|| self.forward_inner(tokens, cache, all_logits))
    }

    /// Runs `f` on this model's thread pool. Every [`Model::forward`] inside it then runs in
    /// place instead of handing its work to the pool and waiting (a thread wake-up per call,
    /// tens of µs on a busy core: a few % of a 1.5 ms decode step). Decoding loops (openers,
    /// [`crate::generate`], the benchmark) run inside it.
    pub fn install<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        if self.pool.current_thread_index().is_some() {
            return f();
        }
        self.pool.install(f)
    }

    /// Threads for this model: the rayon-parallel element-wise ops (rms_norm, rope), dense f32
    /// matmuls and the Q8_0 matmuls of [`crate::q8`] (output tiles split across the pool).
    /// Default 1: on the 2-core target the cores are shared with ASR and TTS; 2 threads halve
    /// 512-8's Q8_0 decode step on a quiet machine. (Candle's own quantized kernels, used
    /// without AVX-512 VNNI, have a separate pool sized by `CANDLE_NUM_THREADS`; see
    /// [`configure_candle_threads`].)
    pub fn set_threads(&mut self, n: usize) -> Result<()> {
        self.pool = Arc::new(build_pool(n)?);
        Ok(())
    }

    fn forward_inner(&self, tokens: &[u32], cache: &mut Cache, all_logits: bool) -> Result<Tensor> {
        let s = tokens.len();
        if s == 0 {
            return Err(LmError::InvalidArgument("forward needs at least one token".into()));
        }
        let offset = cache.len;
        if cache.max_seq_len != self.cfg.max_seq_len || cache.k.len() != self.blocks.len() {
            return Err(LmError::InvalidArgument("KV cache was made for a different model config".into()));
        }
        if offset + s > self.cfg.max_seq_len {
            return Err(LmError::PromptTooLong { tokens: offset + s, max: self.cfg.max_seq_len });
        }
        if let Some(&bad) = tokens.iter().find(|&&t| t as usize >= self.cfg.vocab) {
            return Err(LmError::InvalidArgument(format!("token id {bad} >= vocab {}", self.cfg.vocab)));
        }
        let ids = Tensor::new(tokens, &Device::Cpu)?;
        let mut x = self.embed.index_select(&ids, 0)?.unsqueeze(0)?; // [1, s, d]
        let cos = self.cos.narrow(0, offset, s)?;
        let sin = self.sin.narrow(0, offset, s)?;
        for (i, b) in self.blocks.iter().enumerate() {
            x = self.block_forward(b, &x, &cos, &sin, &cache.k[i], &cache.v[i], offset)?;
        }
        cache.len = offset + s;
        let x = if all_logits { x } else { x.narrow(1, s - 1, 1)? };
        let x = candle_nn::ops::rms_norm(&x, &self.final_norm, self.cfg.rms_eps as f32)?;
        let logits = self.lm_head.forward(&x)?.squeeze(0)?; // [s', V]
        Ok(if all_logits { logits } else { logits.squeeze(0)? })
    }

    #[allow(clippy::too_many_arguments)]
    fn block_forward(
        &self,
        b: &Block,
        x: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        k_cache: &Tensor,
        v_cache: &Tensor,
        offset: usize,
    ) -> Result<Tensor> {
        let cfg = &self.cfg;
        let (s, h, g, hd) = (x.dim(1)?, cfg.heads, cfg.kv_heads, cfg.head_dim());
        let eps = cfg.rms_eps as f32;

        // --- attention (pre-norm) ---
        let hn = candle_nn::ops::rms_norm(x, &b.attn_norm, eps)?;
        let qkv = b.qkv.forward(&hn)?;
        let heads = |t: &Tensor, n: usize| -> Result<Tensor> {
            Ok(t.reshape((1, s, n, hd))?.transpose(1, 2)?.contiguous()?) // [1, n, s, hd]
        };
        let q = candle_nn::rotary_emb::rope(&heads(&qkv[0], h)?, cos, sin)?;
        let k = candle_nn::rotary_emb::rope(&heads(&qkv[1], g)?, cos, sin)?;
        let v = heads(&qkv[2], g)?;
        k_cache.slice_set(&k, 2, offset)?;
        v_cache.slice_set(&v, 2, offset)?;
        let shape = AttnShape { s, offset, heads: h, kv_heads: g, head_dim: hd, max_seq: k_cache.dim(2)? };
        let y = with_f32(&q, |q| with_f32(k_cache, |k| with_f32(v_cache, |v| causal_gqa(q, k, v, shape))))???;
        let y = Tensor::from_vec(y, (1, s, h * hd), &Device::Cpu)?;
        let x = (x + b.o.forward(&y)?)?;

        // --- SwiGLU MLP (pre-norm) ---
        let hn = candle_nn::ops::rms_norm(&x, &b.ffn_norm, eps)?;
        let act = match &b.gate_up {
            // One pass over the fused [gate | up] output (vectorized exp, no temporaries).
            Proj::Fused { w, sizes } if sizes.len() == 2 && sizes[0] == sizes[1] => {
                let y = w.forward(&hn)?.contiguous()?; // [1, s, 2f]
                let f = sizes[0];
                Tensor::from_vec(with_f32(&y, |v| swiglu(v, f))?, (1, s, f), &Device::Cpu)?
            }
            _ => {
                let gu = b.gate_up.forward(&hn)?;
                (candle_nn::ops::silu(&gu[0])? * &gu[1])?
            }
        };
        Ok((x + b.down.forward(&act)?)?)
    }
}

/// RoPE cos/sin tables `[max_seq_len, hd/2]` for θ = `cfg.rope_theta` (computed in f64).
fn rope_tables(cfg: &ModelConfig) -> Result<(Tensor, Tensor)> {
    let hd = cfg.head_dim();
    let half = hd / 2;
    let mut cos = Vec::with_capacity(cfg.max_seq_len * half);
    let mut sin = Vec::with_capacity(cfg.max_seq_len * half);
    for p in 0..cfg.max_seq_len {
        for i in 0..half {
            let inv_freq = cfg.rope_theta.powf(-(2.0 * i as f64) / hd as f64);
            let a = p as f64 * inv_freq;
            cos.push(a.cos() as f32);
            sin.push(a.sin() as f32);
        }
    }
    Ok((Tensor::from_vec(cos, (cfg.max_seq_len, half), &Device::Cpu)?, Tensor::from_vec(sin, (cfg.max_seq_len, half), &Device::Cpu)?))
}

/// Default size of a model's private rayon pool (see [`Model::set_threads`]).
pub const DEFAULT_THREADS: usize = 1;

fn build_pool(n: usize) -> Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(n.max(1))
        .thread_name(|i| format!("lm-{i}"))
        .build()
        .map_err(|e| LmError::InvalidArgument(format!("thread pool: {e}")))
}

/// Set `CANDLE_NUM_THREADS` (the size of candle's spinning barrier pool used by quantized
/// matmuls) unless the environment already sets it. Must run before the first quantized
/// matmul in the process and before other threads read the environment. On a loaded 2-core
/// machine 1 thread is several times faster for decode than 2 (spinning workers fight for cores).
pub fn configure_candle_threads(n: usize) {
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        std::env::set_var("CANDLE_NUM_THREADS", n.max(1).to_string());
    }
}

/// Zero-pad the SwiGLU intermediate of quantized blocks to a multiple of 256 when candle's
/// kernels will run them (not for Q8_0 on [`crate::q8`]). Why: candle's fast x86 Q8_0/Q4_K kernels need the reduction length to be a multiple of 256;
/// 512-8's intermediate 1408 is not, and its `ffn_down` then takes a path ~6× slower. Extra
/// gate/up rows of zeros give silu(0)·0 = 0 activations that meet zero columns in `ffn_down`,
/// so the function is unchanged. Padding is done on the raw blocks (all-zero bytes decode to
/// 0.0 in every GGML type), so nothing is re-quantized.
fn pad_ffn_for_fast_kernels(gate: &Param, up: &Param, down: &Param) -> Result<(Param, Param, Param)> {
    let same = || (gate.clone(), up.clone(), down.clone());
    let (Param::Quant(g), Param::Quant(u), Param::Quant(d)) = (gate, up, down) else {
        return Ok(same());
    };
    let dt = d.dtype();
    if dt == GgmlDType::Q8_0 && q8_kernel_enabled() {
        // Our Q8_0 kernel takes any multiple of 32; padding would only add bytes to stream.
        return Ok(same());
    }
    let f = d.shape().dims()[1];
    let fp = f.div_ceil(256) * 256;
    if g.dtype() != dt || u.dtype() != dt || f % 256 == 0 || (fp - f) % dt.block_size() != 0 {
        return Ok(same());
    }
    let pad_rows = |q: &QTensor| -> Result<Param> {
        let cols = q.shape().dims()[1];
        let mut data = q.data()?.into_owned();
        let row_bytes = data.len() / f;
        data.resize(data.len() + (fp - f) * row_bytes, 0);
        let st = candle_core::quantized::QStorage::from_data(std::borrow::Cow::Owned(data), &Device::Cpu, dt)?;
        Ok(Param::Quant(Arc::new(QTensor::new(st, (fp, cols))?)))
    };
    let rows = d.shape().dims()[0];
    let src = d.data()?;
    let row_bytes = src.len() / rows;
    let extra = (fp - f) / dt.block_size() * dt.type_size();
    let mut data = Vec::with_capacity(rows * (row_bytes + extra));
    for r in 0..rows {
        data.extend_from_slice(&src[r * row_bytes..(r + 1) * row_bytes]);
        data.resize(data.len() + extra, 0);
    }
    let st = candle_core::quantized::QStorage::from_data(std::borrow::Cow::Owned(data), &Device::Cpu, dt)?;
    let down = Param::Quant(Arc::new(QTensor::new(st, (rows, fp))?));
    Ok((pad_rows(g)?, pad_rows(u)?, down))
}
