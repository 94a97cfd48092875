//! Gemma 3 decoder over GGUF quantized weights, on candle (CPU): the model behind the cloud
//! crate's local backend (`cloud::backend::local`) and the lab's `eval mc` Gemma scorer.
//!
//! A fork of **candle-transformers 0.11.1 `models::quantized_gemma3`** (same GGUF tensor names
//! and metadata keys). Upstream is not used as is because of these differences, each of which
//! matters for output quality, speed or memory on a small machine:
//! * the MLP gate uses GELU (tanh approximation, Gemma's `gelu_pytorch_tanh`); upstream
//!   hardcodes SiLU (**candle issue #3745**), which quietly degrades text;
//! * sliding-window layers attend to at most `sliding_window` keys (query `i` sees keys
//!   `j` with `i - w < j ≤ i`, as llama.cpp's `LLAMA_SWA_TYPE_STANDARD`), also while decoding
//!   from the KV cache and in a prefill that continues a cached prefix; upstream applies no
//!   mask when decoding one token, none over cached keys, and lets `w + 1` keys through;
//! * rotary tables are built once per base frequency for `max_context` positions and shared
//!   by all layers (upstream allocates 2×131072 positions per layer, about 2.3 GB for this
//!   model);
//! * weights in formats without a SIMD dot product in candle 0.11 (Q5_0, Q5_1, Q4_1; the
//!   270M Q4_K_M GGUF stores the Q/K/gate/up projections as Q5_0) are re-quantized to Q8_0 at
//!   load time: the scalar Q5_0 path made decoding ~10× slower;
//! * the KV cache is preallocated and written in place ([`KV_CHUNK`] positions at a time)
//!   instead of `Tensor::cat` of the whole cache per token, its snapshots are copies (prefix
//!   caching, [`Gemma3::kv_snapshot`]), and grouped-query attention runs on the shared K/V
//!   heads directly instead of repeating them (`repeat_kv` copies the cache `n_head /
//!   n_kv_head` times per layer and token).
//!
//! The oracle is llama.cpp on the same GGUF (cloud/tests/llama_cpp_server.rs): same top
//! token, next-token log-probs within the noise of both sides' 8-bit rounding of matmul
//! inputs (≤ 0.6 nats, measured 0.34).

use candle_core::quantized::{gguf_file, GgmlDType, QMatMul, QTensor};
use candle_core::{DType, Device, IndexOp, Module, Result, Tensor};
use candle_nn::{Embedding, RmsNorm};

/// Every 6th layer is global; the others use sliding-window attention (Gemma 3).
const DEFAULT_SLIDING_WINDOW_TYPE: usize = 6;
const DEFAULT_ROPE_FREQUENCY: f32 = 1_000_000.;
const DEFAULT_ROPE_FREQUENCY_SLIDING: f32 = 10_000.;

/// Positions the KV cache grows by when a sequence outgrows it: each layer's buffers are
/// sized to a multiple of this (at most `max_context`), so a short sequence does not pay for
/// `max_context` positions. For Gemma 3 270M (18 layers, one KV head of 256) a chunk is
/// 18 × 2 × 256 × 256 × 4 B = 9 MiB; growing copies the cached prefix once into the larger
/// buffer.
pub const KV_CHUNK: usize = 256;

/// Wrap a weight for matmul, re-quantizing formats whose CPU dot product has no
/// SIMD kernel in candle 0.11 to Q8_0 (which has one; precision is unchanged in
/// practice: 8-bit blocks of 32 hold 5-bit blocks of 32 exactly up to rounding).
/// `dequantize` (tests) keeps the weight as f32 instead: candle's quantized matmuls also
/// quantize their input to 8 bits, a step function of it, which dense f32 does not.
fn fast_qmatmul(w: QTensor, dequantize: bool) -> Result<QMatMul> {
    if dequantize {
        return Ok(QMatMul::Tensor(w.dequantize(&Device::Cpu)?));
    }
    let w = match w.dtype() {
        GgmlDType::Q5_0 | GgmlDType::Q5_1 | GgmlDType::Q4_1 | GgmlDType::Q8_1 => {
            let f = w.dequantize(&Device::Cpu)?;
            QTensor::quantize(&f, GgmlDType::Q8_0)?
        }
        _ => w,
    };
    QMatMul::from_qtensor(w)
}

/// An RMSNorm whose (already `1 + w`, as llama.cpp's converter stores Gemma's) weight is a
/// GGUF tensor.
fn rms_norm(w: QTensor, eps: f64, device: &Device) -> Result<RmsNorm> {
    Ok(RmsNorm::new(w.dequantize(device)?, eps))
}

#[derive(Debug, Clone)]
struct Rope {
    sin: Tensor,
    cos: Tensor,
}

impl Rope {
    fn new(head_dim: usize, base: f32, max_len: usize, device: &Device) -> Result<Self> {
        let inv: Vec<f32> = (0..head_dim).step_by(2).map(|i| 1f32 / base.powf(i as f32 / head_dim as f32)).collect();
        let n = inv.len();
        let inv = Tensor::from_vec(inv, (1, n), device)?;
        let pos = Tensor::arange(0u32, max_len as u32, device)?.to_dtype(DType::F32)?.reshape((max_len, 1))?;
        let freqs = pos.matmul(&inv)?;
        Ok(Self { sin: freqs.sin()?, cos: freqs.cos()? })
    }

    fn apply(&self, q: &Tensor, k: &Tensor, index_pos: usize) -> Result<(Tensor, Tensor)> {
        let (_b, _h, seq_len, _d) = q.dims4()?;
        let cos = self.cos.narrow(0, index_pos, seq_len)?;
        let sin = self.sin.narrow(0, index_pos, seq_len)?;
        Ok((candle_nn::rotary_emb::rope(&q.contiguous()?, &cos, &sin)?, candle_nn::rotary_emb::rope(&k.contiguous()?, &cos, &sin)?))
    }
}

/// One layer's keys and values for the current sequence: two f32 buffers of shape
/// `[1, n_kv_head, capacity, head_dim]`, written in place (`slice_set`) along the position
/// axis; positions `0..len` are valid. Views handed out by [`KvCache::append`] live only
/// within one forward pass, and snapshots are copies, so writing in place is never seen by
/// anything that outlives the call.
#[derive(Debug, Default)]
struct KvCache {
    buf: Option<(Tensor, Tensor)>,
    len: usize,
}

impl KvCache {
    /// Positions the buffers hold (valid or not).
    fn capacity(&self) -> usize {
        self.buf.as_ref().map_or(0, |(k, _)| k.dims()[2])
    }

    /// Makes room for positions `0..needed`, keeping `0..keep`: when the buffers are too
    /// small, new ones (a multiple of `chunk` positions, at most `max`, at least `needed`)
    /// receive a copy of the kept prefix. `like` (`[1, n_kv_head, _, head_dim]`) gives the
    /// other dimensions.
    fn reserve(&mut self, like: &Tensor, needed: usize, keep: usize, chunk: usize, max: usize) -> Result<()> {
        if needed <= self.capacity() {
            return Ok(());
        }
        let cap = needed.div_ceil(chunk).saturating_mul(chunk).min(max).max(needed);
        let (b, h, _, d) = like.dims4()?;
        let k = Tensor::zeros((b, h, cap, d), like.dtype(), like.device())?;
        let v = Tensor::zeros((b, h, cap, d), like.dtype(), like.device())?;
        if let (Some((old_k, old_v)), true) = (&self.buf, keep > 0) {
            k.slice_set(&old_k.narrow(2, 0, keep)?.contiguous()?, 2, 0)?;
            v.slice_set(&old_v.narrow(2, 0, keep)?.contiguous()?, 2, 0)?;
        }
        self.buf = Some((k, v));
        Ok(())
    }

    /// Writes `k` and `v` (`[1, n_kv_head, seq, head_dim]`) at positions `pos..pos + seq`,
    /// discarding cached positions from `pos` on, and returns views of positions
    /// `0..pos + seq` (`[1, n_kv_head, pos + seq, head_dim]`).
    fn append(&mut self, k: &Tensor, v: &Tensor, pos: usize, chunk: usize, max: usize) -> Result<(Tensor, Tensor)> {
        if pos > self.len {
            candle_core::bail!("cannot continue at position {pos}: the KV cache holds {} positions", self.len);
        }
        let end = pos + k.dim(2)?;
        self.reserve(k, end, pos, chunk, max)?;
        let Some((kb, vb)) = self.buf.as_ref() else { candle_core::bail!("KV cache buffers missing after reserve") };
        kb.slice_set(&k.contiguous()?, 2, pos)?;
        vb.slice_set(&v.contiguous()?, 2, pos)?;
        self.len = end;
        Ok((kb.narrow(2, 0, end)?, vb.narrow(2, 0, end)?))
    }

    /// A copy (own storage) of the valid positions, `None` when there are none.
    fn snapshot(&self) -> Result<Option<(Tensor, Tensor)>> {
        match &self.buf {
            Some((k, v)) if self.len > 0 => {
                Ok(Some((k.narrow(2, 0, self.len)?.force_contiguous()?, v.narrow(2, 0, self.len)?.force_contiguous()?)))
            }
            _ => Ok(None),
        }
    }

    /// Replaces the cached positions with a copy of `snap` (from [`KvCache::snapshot`]);
    /// the snapshot itself is only read, never aliased.
    fn restore(&mut self, snap: Option<&(Tensor, Tensor)>, chunk: usize, max: usize) -> Result<()> {
        self.len = 0;
        if let Some((k, v)) = snap {
            let n = k.dim(2)?;
            // Room for the next token too, so that decoding does not grow the cache at once.
            self.reserve(k, (n + 1).min(max).max(n), 0, chunk, max)?;
            let Some((kb, vb)) = self.buf.as_ref() else { candle_core::bail!("KV cache buffers missing after reserve") };
            kb.slice_set(k, 2, 0)?;
            vb.slice_set(v, 2, 0)?;
            self.len = n;
        }
        Ok(())
    }
}

#[derive(Debug)]
struct Layer {
    wq: QMatMul,
    wk: QMatMul,
    wv: QMatMul,
    wo: QMatMul,
    q_norm: RmsNorm,
    k_norm: RmsNorm,
    attn_norm: RmsNorm,
    post_attn_norm: RmsNorm,
    ffn_norm: RmsNorm,
    post_ffn_norm: RmsNorm,
    gate: QMatMul,
    up: QMatMul,
    down: QMatMul,
    n_head: usize,
    n_kv_head: usize,
    head_dim: usize,
    sliding_window: Option<usize>,
    rope: Rope,
    kv: KvCache,
}

/// Additive attention mask (0 or -inf) for `seq_len` queries starting at absolute
/// position `index_pos` over `index_pos + seq_len` keys; `None` when nothing is masked.
fn attention_mask(seq_len: usize, index_pos: usize, window: Option<usize>, device: &Device) -> Result<Option<Tensor>> {
    let total = index_pos + seq_len;
    let needs_window = window.is_some_and(|w| total > w);
    if seq_len == 1 && !needs_window {
        return Ok(None);
    }
    let mut m = Vec::with_capacity(seq_len * total);
    for i in 0..seq_len {
        let qi = index_pos + i;
        for j in 0..total {
            let future = j > qi;
            let too_old = window.is_some_and(|w| qi - j.min(qi) >= w);
            m.push(if future || too_old { f32::NEG_INFINITY } else { 0f32 });
        }
    }
    Ok(Some(Tensor::from_vec(m, (1, 1, seq_len, total), device)?))
}

/// Scaled dot-product attention with grouped KV heads: `q` `[b, n_head, seq, head_dim]`,
/// `k` and `v` `[b, n_kv_head, total, head_dim]` (may be strided views of the cache),
/// `mask` additive `[1, 1, seq, total]`; returns `[b, n_head, seq, head_dim]`.
///
/// Query head `h` uses KV head `h / (n_head / n_kv_head)`. Instead of repeating K and V per
/// query head, the `n_head / n_kv_head` query heads of a group are stacked along the
/// position axis (a free reshape of contiguous `q`), so each KV head is read in place by
/// one matmul.
fn gqa_attention(q: &Tensor, k: &Tensor, v: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
    let (b, n_head, seq, head_dim) = q.dims4()?;
    let (_, n_kv_head, total, _) = k.dims4()?;
    let rep = n_head / n_kv_head;
    let scale = 1.0 / (head_dim as f64).sqrt();
    let q = q.contiguous()?.reshape((b, n_kv_head, rep * seq, head_dim))?;
    let w = (q.matmul(&k.t()?)? * scale)?.reshape((b, n_head, seq, total))?;
    let w = match mask {
        Some(mask) => w.broadcast_add(mask)?,
        None => w,
    };
    let w = candle_nn::ops::softmax_last_dim(&w)?;
    w.reshape((b, n_kv_head, rep * seq, total))?.matmul(v)?.reshape((b, n_head, seq, head_dim))
}

impl Layer {
    fn attention(&mut self, x: &Tensor, index_pos: usize, mask: Option<&Tensor>, chunk: usize, max: usize) -> Result<Tensor> {
        let (b, seq_len, _) = x.dims3()?;
        let q = self.wq.forward(x)?.reshape((b, seq_len, self.n_head, self.head_dim))?.transpose(1, 2)?;
        let k = self.wk.forward(x)?.reshape((b, seq_len, self.n_kv_head, self.head_dim))?.transpose(1, 2)?;
        let v = self.wv.forward(x)?.reshape((b, seq_len, self.n_kv_head, self.head_dim))?.transpose(1, 2)?;
        let q = self.q_norm.forward(&q.contiguous()?)?;
        let k = self.k_norm.forward(&k.contiguous()?)?;
        let (q, k) = self.rope.apply(&q, &k, index_pos)?;
        let (k, v) = self.kv.append(&k, &v, index_pos, chunk, max)?;
        let out = gqa_attention(&q, &k, &v, mask)?;
        let out = out.transpose(1, 2)?.reshape((b, seq_len, self.n_head * self.head_dim))?;
        self.wo.forward(&out)
    }

    fn mlp(&self, x: &Tensor) -> Result<Tensor> {
        // Gemma's FFN: down(gelu_tanh(gate(x)) * up(x)).
        let gated = (self.gate.forward(x)?.gelu()? * self.up.forward(x)?)?;
        self.down.forward(&gated)
    }
}

/// A copy of a [`Gemma3`]'s KV cache after a prefix of a sequence (prefix caching): taken by
/// [`Gemma3::kv_snapshot`], put back by [`Gemma3::restore_kv`] any number of times. It owns
/// its storage (per layer, keys and values `[1, n_kv_head, len, head_dim]` f32), so whatever
/// the model computes afterwards never changes it; cloning it is cheap and shares that
/// read-only storage.
#[derive(Debug, Clone)]
pub struct KvSnapshot {
    layers: Vec<Option<(Tensor, Tensor)>>,
    len: usize,
}

impl KvSnapshot {
    /// Positions (tokens) the snapshot holds; continue with `forward(tokens, len)`.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when it holds no position.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Gemma 3 weights plus the KV cache of one sequence at a time.
///
/// Not `Clone`: the cache is written in place; fork a sequence with
/// [`Gemma3::kv_snapshot`] / [`Gemma3::restore_kv`] instead.
#[derive(Debug)]
pub struct Gemma3 {
    embed: Embedding,
    hidden: usize,
    layers: Vec<Layer>,
    norm: RmsNorm,
    output: QMatMul,
    max_context: usize,
    /// Growth step of the KV cache, positions ([`KV_CHUNK`]; tests make it small).
    kv_chunk: usize,
}

fn md<'a>(ct: &'a gguf_file::Content, prefix: &str, key: &str) -> Result<&'a gguf_file::Value> {
    let full = format!("{prefix}.{key}");
    ct.metadata.get(&full).ok_or_else(|| candle_core::Error::Msg(format!("cannot find {full} in GGUF metadata")))
}

impl Gemma3 {
    /// Load from GGUF content (metadata under `gemma3.*`, `gemma2.*` or `gemma.*`; tensors
    /// named as llama.cpp's converter writes them). `max_context` bounds prompt + generated
    /// tokens (positions) of one sequence; it sizes the rotary tables (2 × `max_context` ×
    /// `head_dim` f32 per base frequency) and caps the KV cache, which itself grows by
    /// [`KV_CHUNK`] positions as needed.
    pub fn from_gguf<R: std::io::Seek + std::io::Read>(
        ct: &gguf_file::Content,
        reader: &mut R,
        device: &Device,
        max_context: usize,
    ) -> Result<Self> {
        Self::load(ct, reader, device, max_context, false)
    }

    /// [`Gemma3::from_gguf`], with every matrix dequantized to f32 when `dequantize`.
    fn load<R: std::io::Seek + std::io::Read>(
        ct: &gguf_file::Content,
        reader: &mut R,
        device: &Device,
        max_context: usize,
        dequantize: bool,
    ) -> Result<Self> {
        let prefix = ["gemma3", "gemma2", "gemma"]
            .into_iter()
            .find(|p| ct.metadata.contains_key(&format!("{p}.attention.head_count")))
            .unwrap_or("gemma3");
        let n_head = md(ct, prefix, "attention.head_count")?.to_u32()? as usize;
        let n_kv_head = md(ct, prefix, "attention.head_count_kv")?.to_u32()? as usize;
        let n_layer = md(ct, prefix, "block_count")?.to_u32()? as usize;
        let hidden = md(ct, prefix, "embedding_length")?.to_u32()? as usize;
        let head_dim = md(ct, prefix, "attention.key_length")?.to_u32()? as usize;
        let eps = md(ct, prefix, "attention.layer_norm_rms_epsilon")?.to_f32()? as f64;
        let window = md(ct, prefix, "attention.sliding_window")?.to_u32()? as usize;
        let window_type = md(ct, prefix, "attention.sliding_window_type")
            .and_then(|v| v.to_u32())
            .map(|v| v as usize)
            .unwrap_or(DEFAULT_SLIDING_WINDOW_TYPE);
        let base = md(ct, prefix, "rope.freq_base").and_then(|v| v.to_f32()).unwrap_or(DEFAULT_ROPE_FREQUENCY);
        let base_local = md(ct, prefix, "rope.local_freq_base").and_then(|v| v.to_f32()).unwrap_or(DEFAULT_ROPE_FREQUENCY_SLIDING);
        if n_kv_head == 0 || n_head % n_kv_head != 0 || window_type == 0 || max_context == 0 {
            candle_core::bail!(
                "unsupported Gemma 3 shape: {n_head} heads over {n_kv_head} KV heads, sliding window type {window_type}, max_context {max_context}"
            );
        }

        let rope_global = Rope::new(head_dim, base, max_context, device)?;
        let rope_local = Rope::new(head_dim, base_local, max_context, device)?;
        let qt = |name: &str, r: &mut R| -> Result<QTensor> { ct.tensor(r, name, device) };
        let embed = qt("token_embd.weight", reader)?.dequantize(device)?;
        let norm = rms_norm(qt("output_norm.weight", reader)?, eps, device)?;
        let output = match ct.tensor(reader, "output.weight", device) {
            Ok(t) => t,
            // Tied embeddings: the LM head is the embedding table.
            Err(_) => qt("token_embd.weight", reader)?,
        };
        let mut layers = Vec::with_capacity(n_layer);
        for i in 0..n_layer {
            let p = format!("blk.{i}");
            let mm = |n: &str, r: &mut R| -> Result<QMatMul> { fast_qmatmul(qt(&format!("{p}.{n}.weight"), r)?, dequantize) };
            let nm = |n: &str, r: &mut R| -> Result<RmsNorm> { rms_norm(qt(&format!("{p}.{n}.weight"), r)?, eps, device) };
            let sliding = (i + 1) % window_type > 0;
            layers.push(Layer {
                wq: mm("attn_q", reader)?,
                wk: mm("attn_k", reader)?,
                wv: mm("attn_v", reader)?,
                wo: mm("attn_output", reader)?,
                q_norm: nm("attn_q_norm", reader)?,
                k_norm: nm("attn_k_norm", reader)?,
                attn_norm: nm("attn_norm", reader)?,
                post_attn_norm: nm("post_attention_norm", reader)?,
                ffn_norm: nm("ffn_norm", reader)?,
                post_ffn_norm: nm("post_ffw_norm", reader)?,
                gate: mm("ffn_gate", reader)?,
                up: mm("ffn_up", reader)?,
                down: mm("ffn_down", reader)?,
                n_head,
                n_kv_head,
                head_dim,
                sliding_window: sliding.then_some(window),
                rope: if sliding { rope_local.clone() } else { rope_global.clone() },
                kv: KvCache::default(),
            });
        }
        Ok(Self {
            embed: Embedding::new(embed, hidden),
            hidden,
            layers,
            norm,
            output: fast_qmatmul(output, dequantize)?,
            max_context,
            kv_chunk: KV_CHUNK,
        })
    }

    /// A copy of the KV cache (every layer's positions `0..cached_len()`, about
    /// 36 KiB per position for Gemma 3 270M), to be put back with [`Gemma3::restore_kv`] for
    /// prefix caching. Later forward passes never change it.
    pub fn kv_snapshot(&self) -> Result<KvSnapshot> {
        let layers = self.layers.iter().map(|l| l.kv.snapshot()).collect::<Result<Vec<_>>>()?;
        Ok(KvSnapshot { layers, len: self.cached_len() })
    }

    /// Replace the KV cache with a copy of `snapshot` (taken from this model by
    /// [`Gemma3::kv_snapshot`]); continue with `forward(tokens, snapshot.len())`. The
    /// snapshot stays valid for further restores.
    pub fn restore_kv(&mut self, snapshot: &KvSnapshot) -> Result<()> {
        if snapshot.layers.len() != self.layers.len() {
            candle_core::bail!("KV snapshot of {} layers restored into a model of {}", snapshot.layers.len(), self.layers.len());
        }
        let (chunk, max) = (self.kv_chunk, self.max_context);
        for (l, s) in self.layers.iter_mut().zip(&snapshot.layers) {
            l.kv.restore(s.as_ref(), chunk, max)?;
        }
        Ok(())
    }

    /// Positions (tokens) of the current sequence held in the KV cache.
    pub fn cached_len(&self) -> usize {
        self.layers.first().map_or(0, |l| l.kv.len)
    }

    /// Most positions (prompt + generated tokens) one sequence may use.
    pub fn max_context(&self) -> usize {
        self.max_context
    }

    /// Run `tokens` (shape `[1, seq_len]`, u32) at positions `index_pos..index_pos + seq_len`
    /// and return the logits of the last one, shape `[1, vocab]` (f32). `index_pos` must be
    /// at most [`Gemma3::cached_len`]: `0` starts a new sequence, `cached_len()` continues the
    /// current one, anything between rewinds it (cached positions from `index_pos` on are
    /// discarded). `index_pos + seq_len` must not exceed [`Gemma3::max_context`].
    pub fn forward(&mut self, tokens: &Tensor, index_pos: usize) -> Result<Tensor> {
        let x = self.hidden_states(tokens, index_pos)?;
        let last = x.i((.., x.dim(1)? - 1, ..))?;
        let last = self.norm.forward(&last)?;
        self.output.forward(&last)
    }

    /// Like [`Gemma3::forward`], but returns the logits of every position, shape
    /// `[seq_len, vocab]` (f32): row `i` is the distribution of the token after
    /// `tokens[i]`. For scoring (log-likelihoods), not generation.
    pub fn forward_all(&mut self, tokens: &Tensor, index_pos: usize) -> Result<Tensor> {
        let x = self.hidden_states(tokens, index_pos)?;
        let x = self.norm.forward(&x.squeeze(0)?)?;
        self.output.forward(&x)
    }

    /// Per-position log-probabilities of a whole token sequence (natural log, a new
    /// sequence: the KV cache is reset): element `i` is `log p(tokens[i+1] | tokens[..=i])`,
    /// so the result has `tokens.len() - 1` entries (the first token is conditioned on).
    pub fn token_log_probs(&mut self, tokens: &[u32]) -> Result<Vec<f32>> {
        if tokens.len() < 2 {
            return Ok(Vec::new());
        }
        let input = Tensor::new(&tokens[..tokens.len() - 1], &Device::Cpu)?.unsqueeze(0)?;
        let logits = self.forward_all(&input, 0)?;
        let lp = candle_nn::ops::log_softmax(&logits, candle_core::D::Minus1)?;
        let rows: Vec<Vec<f32>> = lp.to_vec2()?;
        Ok(rows.iter().zip(&tokens[1..]).map(|(row, &t)| row[t as usize]).collect())
    }

    /// The decoder stack: hidden states `[1, seq_len, hidden]` before the final norm.
    fn hidden_states(&mut self, tokens: &Tensor, index_pos: usize) -> Result<Tensor> {
        let (_b, seq_len) = tokens.dims2()?;
        if index_pos + seq_len > self.max_context {
            candle_core::bail!("sequence of {} tokens exceeds max_context {}", index_pos + seq_len, self.max_context);
        }
        if index_pos > self.cached_len() {
            candle_core::bail!("cannot continue at position {index_pos}: the KV cache holds {} positions", self.cached_len());
        }
        let (chunk, max) = (self.kv_chunk, self.max_context);
        let mut x = (self.embed.forward(tokens)? * (self.hidden as f64).sqrt())?;
        // One mask per distinct window (global layers: none), shared by the layers using it.
        let mut masks: Vec<(Option<usize>, Option<Tensor>)> = Vec::with_capacity(2);
        for layer in self.layers.iter_mut() {
            let window = layer.sliding_window;
            let mask = match masks.iter().find(|(w, _)| *w == window) {
                Some((_, m)) => m.clone(),
                None => {
                    let m = attention_mask(seq_len, index_pos, window, x.device())?;
                    masks.push((window, m.clone()));
                    m
                }
            };
            let h = layer.attn_norm.forward(&x)?;
            let h = layer.attention(&h, index_pos, mask.as_ref(), chunk, max)?;
            let h = layer.post_attn_norm.forward(&h)?;
            let x1 = (h + &x)?;
            let h = layer.ffn_norm.forward(&x1)?;
            let h = layer.mlp(&h)?;
            let h = layer.post_ffn_norm.forward(&h)?;
            x = (h + x1)?;
        }
        Ok(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn rows(t: &Tensor) -> Vec<Vec<f32>> {
        t.to_vec2().unwrap()
    }

    fn max_abs_diff(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
        assert_eq!(a.len(), b.len());
        a.iter().zip(b).flat_map(|(x, y)| x.iter().zip(y).map(|(p, q)| (p - q).abs())).fold(0f32, f32::max)
    }

    fn ids(tokens: &[u32]) -> Tensor {
        Tensor::new(tokens, &Device::Cpu).unwrap().unsqueeze(0).unwrap()
    }

    /// Deterministic pseudo-random values, uniform in `[-scale, scale]` (xorshift64*).
    fn uniform(n: usize, scale: f32, seed: &mut u64) -> Vec<f32> {
        (0..n)
            .map(|_| {
                *seed ^= *seed >> 12;
                *seed ^= *seed << 25;
                *seed ^= *seed >> 27;
                let u = (seed.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 40) as f32 / (1u64 << 24) as f32;
                (2.0 * u - 1.0) * scale
            })
            .collect()
    }

    #[test]
    fn mask_is_causal_and_windowed() {
        let m = attention_mask(3, 0, Some(2), &Device::Cpu).unwrap().unwrap();
        let v: Vec<Vec<f32>> = m.squeeze(0).unwrap().squeeze(0).unwrap().to_vec2().unwrap();
        let inf = f32::NEG_INFINITY;
        assert_eq!(v, vec![vec![0., inf, inf], vec![0., 0., inf], vec![inf, 0., 0.]]);
        // Decoding one token beyond the window masks the oldest key.
        let m = attention_mask(1, 2, Some(2), &Device::Cpu).unwrap().unwrap();
        let v: Vec<Vec<f32>> = m.squeeze(0).unwrap().squeeze(0).unwrap().to_vec2().unwrap();
        assert_eq!(v, vec![vec![inf, 0., 0.]]);
        assert!(attention_mask(1, 1, Some(2), &Device::Cpu).unwrap().is_none());
    }

    /// The grouped attention (query heads stacked per KV head, K/V read in place from a
    /// strided cache view) equals the textbook form: every query head against its own copy
    /// of its KV head.
    #[test]
    fn grouped_attention_equals_repeated_kv_heads() {
        let dev = Device::Cpu;
        let (n_head, n_kv, seq, past, d) = (6, 2, 5, 4, 8);
        let total = past + seq;
        let seed = &mut 7;
        let q = Tensor::from_vec(uniform(n_head * seq * d, 1.0, seed), (1, n_head, seq, d), &dev).unwrap();
        // Keys and values as the cache hands them out: a prefix of a larger buffer.
        let kb = Tensor::from_vec(uniform(n_kv * (total + 7) * d, 1.0, seed), (1, n_kv, total + 7, d), &dev).unwrap();
        let vb = Tensor::from_vec(uniform(n_kv * (total + 7) * d, 1.0, seed), (1, n_kv, total + 7, d), &dev).unwrap();
        let (k, v) = (kb.narrow(2, 0, total).unwrap(), vb.narrow(2, 0, total).unwrap());
        assert!(!k.is_contiguous());
        let mask = attention_mask(seq, past, Some(3), &dev).unwrap().unwrap();
        let got = gqa_attention(&q, &k, &v, Some(&mask)).unwrap();

        let rep = n_head / n_kv;
        let mut heads = Vec::new();
        for h in 0..n_head {
            let qh = q.narrow(1, h, 1).unwrap();
            let kh = k.narrow(1, h / rep, 1).unwrap().contiguous().unwrap();
            let vh = v.narrow(1, h / rep, 1).unwrap().contiguous().unwrap();
            let w = (qh.matmul(&kh.t().unwrap()).unwrap() / (d as f64).sqrt()).unwrap().broadcast_add(&mask).unwrap();
            let w = candle_nn::ops::softmax_last_dim(&w).unwrap();
            heads.push(w.matmul(&vh).unwrap());
        }
        let want = Tensor::cat(&heads, 1).unwrap();
        let diff = (got - want).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap();
        assert!(diff < 1e-5, "max |grouped - repeated| = {diff}");
    }

    /// A pseudo-random Gemma-3-shaped GGUF, small enough to build in a test: 3 layers
    /// (sliding, sliding, global: `sliding_window_type` 3) with a sliding window of `window`,
    /// 4 query heads over 2 KV heads of 32, hidden 64, vocabulary 80. Matrices are F32, or with
    /// `quantized` Q8_0 and Q5_0 (re-quantized on load) besides F32.
    fn tiny_gguf(window: u32, quantized: bool) -> Vec<u8> {
        use gguf_file::Value;
        let dev = Device::Cpu;
        let (vocab, hidden, n_head, n_kv, hd, ffn, n_layer) = (80usize, 64usize, 4usize, 2usize, 32usize, 96usize, 3usize);
        let seed = &mut 0x9e37_79b9_7f4a_7c15u64;
        let mut mat = |rows: usize, cols: usize, dt: GgmlDType| {
            let w = Tensor::from_vec(uniform(rows * cols, 2.5 / (cols as f32).sqrt(), seed), (rows, cols), &dev).unwrap();
            QTensor::quantize(&w, if quantized { dt } else { GgmlDType::F32 }).unwrap()
        };
        let mut tensors: Vec<(String, QTensor)> = vec![("token_embd.weight".into(), mat(vocab, hidden, GgmlDType::Q8_0))];
        for i in 0..n_layer {
            let p = |n: &str| format!("blk.{i}.{n}.weight");
            tensors.extend([
                (p("attn_q"), mat(n_head * hd, hidden, GgmlDType::Q5_0)),
                (p("attn_k"), mat(n_kv * hd, hidden, GgmlDType::Q5_0)),
                (p("attn_v"), mat(n_kv * hd, hidden, GgmlDType::Q8_0)),
                (p("attn_output"), mat(hidden, n_head * hd, GgmlDType::F32)),
                (p("ffn_gate"), mat(ffn, hidden, GgmlDType::Q8_0)),
                (p("ffn_up"), mat(ffn, hidden, GgmlDType::Q8_0)),
                (p("ffn_down"), mat(hidden, ffn, GgmlDType::F32)),
            ]);
        }
        let mut norm = |name: String, n: usize| {
            let w: Vec<f32> = uniform(n, 0.2, seed).into_iter().map(|x| 1.0 + x).collect();
            (name, QTensor::quantize(&Tensor::from_vec(w, n, &dev).unwrap(), GgmlDType::F32).unwrap())
        };
        tensors.push(norm("output_norm.weight".into(), hidden));
        for i in 0..n_layer {
            for (n, size) in [("attn_q_norm", hd), ("attn_k_norm", hd)]
                .into_iter()
                .chain(["attn_norm", "post_attention_norm", "ffn_norm", "post_ffw_norm"].map(|n| (n, hidden)))
            {
                tensors.push(norm(format!("blk.{i}.{n}.weight"), size));
            }
        }
        let metadata: Vec<(&str, Value)> = vec![
            ("gemma3.attention.head_count", Value::U32(n_head as u32)),
            ("gemma3.attention.head_count_kv", Value::U32(n_kv as u32)),
            ("gemma3.block_count", Value::U32(n_layer as u32)),
            ("gemma3.embedding_length", Value::U32(hidden as u32)),
            ("gemma3.attention.key_length", Value::U32(hd as u32)),
            ("gemma3.attention.layer_norm_rms_epsilon", Value::F32(1e-6)),
            ("gemma3.attention.sliding_window", Value::U32(window)),
            ("gemma3.attention.sliding_window_type", Value::U32(3)),
            ("gemma3.rope.freq_base", Value::F32(1e6)),
            ("gemma3.rope.local_freq_base", Value::F32(1e4)),
        ];
        let md: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (*k, v)).collect();
        let ts: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
        let mut out = Cursor::new(Vec::new());
        gguf_file::write(&mut out, &md, &ts).unwrap();
        out.into_inner()
    }

    fn load(gguf: &[u8], max_context: usize) -> Gemma3 {
        let mut r = Cursor::new(gguf);
        let ct = gguf_file::Content::read(&mut r).unwrap();
        Gemma3::from_gguf(&ct, &mut r, &Device::Cpu, max_context).unwrap()
    }

    /// Logits of one forward pass over all of `tokens` (a new sequence), `[len][vocab]`.
    fn full_forward(m: &mut Gemma3, tokens: &[u32]) -> Vec<Vec<f32>> {
        rows(&m.forward_all(&ids(tokens), 0).unwrap())
    }

    /// Logits of the same tokens fed in pieces of `schedule` lengths (then one at a time),
    /// each continuing from the KV cache.
    fn incremental(m: &mut Gemma3, tokens: &[u32], schedule: &[usize]) -> Vec<Vec<f32>> {
        let mut out = Vec::new();
        let mut pos = 0;
        let mut pieces = schedule.iter().copied();
        while pos < tokens.len() {
            let n = pieces.next().unwrap_or(1).min(tokens.len() - pos);
            out.extend(rows(&m.forward_all(&ids(&tokens[pos..pos + n]), pos).unwrap()));
            pos += n;
            assert_eq!(m.cached_len(), pos);
        }
        out
    }

    /// Decoding from the KV cache (one token at a time, or a prefill followed by pieces)
    /// gives the logits of one forward pass over the whole sequence, well past the sliding
    /// window of 4 and across several growths of the cache (3 positions at a time).
    #[test]
    fn cached_decoding_equals_one_full_forward() {
        let mut m = load(&tiny_gguf(4, false), 64);
        m.kv_chunk = 3;
        let tokens: Vec<u32> = (0..23u32).map(|i| (i * 37 + 11) % 80).collect();
        let full = full_forward(&mut m, &tokens);
        assert_eq!(m.layers[0].kv.capacity(), 24, "grown in chunks, not to max_context");
        for schedule in [&[][..], &[7, 5, 2][..], &[1, 4, 9][..]] {
            let inc = incremental(&mut m, &tokens, schedule);
            let diff = max_abs_diff(&full, &inc);
            assert!(diff < 1e-4, "schedule {schedule:?}: max |cached - full| = {diff}");
        }
        // The window matters here: without it the same weights compute the same logits up to
        // position 4 and others after it.
        assert_eq!(m.layers.iter().map(|l| l.sliding_window).collect::<Vec<_>>(), [Some(4), Some(4), None]);
        for l in m.layers.iter_mut() {
            l.sliding_window = None;
        }
        let unwindowed = full_forward(&mut m, &tokens);
        assert!(max_abs_diff(&full[..4], &unwindowed[..4]) < 1e-4);
        assert!(max_abs_diff(&full[4..], &unwindowed[4..]) > 1e-2);
        // Beyond max_context, or past the cached positions: an error, not garbage.
        assert!(m.forward(&ids(&[1, 2]), 63).is_err());
        let n = m.cached_len();
        assert!(m.forward(&ids(&[1]), n + 1).is_err());
    }

    /// A snapshot is a copy: writing over the live cache's positions (a rewind) and growing
    /// it after the snapshot leave the snapshot intact, and it can be restored repeatedly.
    #[test]
    fn kv_snapshots_are_copies() {
        let mut m = load(&tiny_gguf(4, false), 64);
        m.kv_chunk = 4;
        let prefix: Vec<u32> = vec![3, 14, 15, 9, 26, 5];
        let cont: Vec<u32> = vec![35, 8, 9, 7, 9];
        m.forward(&ids(&prefix), 0).unwrap();
        let snap = m.kv_snapshot().unwrap();
        assert_eq!(snap.len(), prefix.len());
        let want = rows(&m.forward_all(&ids(&cont), prefix.len()).unwrap());
        // The same continuation on a fresh sequence of prefix + cont.
        let fresh = full_forward(&mut m, &[prefix.clone(), cont.clone()].concat());
        assert!(max_abs_diff(&fresh[prefix.len()..], &want) < 1e-4);
        // Overwrite positions 2.. in place and grow the buffers, then restore twice.
        m.forward(&ids(&[60, 61, 62, 63, 64, 65, 66, 67, 68, 69, 70, 71]), 2).unwrap();
        for _ in 0..2 {
            m.restore_kv(&snap).unwrap();
            assert_eq!(m.cached_len(), prefix.len());
            let got = rows(&m.forward_all(&ids(&cont), prefix.len()).unwrap());
            assert!(max_abs_diff(&got, &want) < 1e-6, "restored snapshot was changed");
        }
        // Rewinding to the end of the prefix without a restore discards the continuation.
        m.forward(&ids(&[1, 2, 3]), prefix.len()).unwrap();
        let got = rows(&m.forward_all(&ids(&cont), prefix.len()).unwrap());
        assert!(max_abs_diff(&got, &want) < 1e-6);
        // An empty snapshot restores an empty cache; one of another model is refused.
        let other = load(&tiny_gguf(4, false), 64);
        let empty = other.kv_snapshot().unwrap();
        assert!(empty.is_empty());
        m.restore_kv(&empty).unwrap();
        assert_eq!(m.cached_len(), 0);
        let wrong = KvSnapshot { layers: vec![None], len: 0 };
        assert!(m.restore_kv(&wrong).is_err());
    }

    /// The quantized formats load (Q5_0 re-quantized to Q8_0 for speed, Q8_0 kept) and decode.
    #[test]
    fn quantized_weights_load_and_decode() {
        let mut m = load(&tiny_gguf(4, true), 16);
        let dtype = |w: &QMatMul| match w {
            QMatMul::QTensor(t) => Some(t.dtype()),
            _ => None,
        };
        assert_eq!(dtype(&m.layers[0].wq), Some(GgmlDType::Q8_0), "Q5_0 re-quantized");
        assert_eq!(dtype(&m.layers[0].wv), Some(GgmlDType::Q8_0));
        assert_eq!(dtype(&m.layers[0].wo), None, "F32 stays dense");
        let logits = m.forward(&ids(&[1, 2, 3]), 0).unwrap();
        assert_eq!(logits.dims(), [1, 80]);
        let l: Vec<f32> = m.forward(&ids(&[4]), 3).unwrap().squeeze(0).unwrap().to_vec1().unwrap();
        assert!(l.iter().all(|x| x.is_finite()));
    }

    const GEMMA: &str = "models/gemma/gemma-3-270m-q4_k_m.gguf";

    /// The same with the real Gemma 3 270M weights, dequantized to f32, with its sliding
    /// window shrunk to 8 positions so that 40 tokens reach well past it (the shipped window,
    /// 512, would take minutes of token-by-token decoding on a small machine).
    ///
    /// Dequantized, because the quantized model is a step function of its inputs: candle's
    /// quantized matmuls round their input to 8 bits per element, so the last-bit differences
    /// between a 40-row and a 1-row attention matmul flip some of those roundings and move
    /// logits by up to ~4 (measured 2026-12-03, with the old `Tensor::cat` cache and this one
    /// alike). In f32 the two orders differ by 1.4e-4 (old cache) to 2.7e-4 on logits of
    /// magnitude ~36 (same date), which the 1e-3 bound allows; attending over the wrong keys
    /// moves them by tens (the window check at the end: ~43).
    #[test]
    fn real_gemma_cached_decoding_equals_one_full_forward() {
        let Some(path) = testkit::require(GEMMA) else { return };
        let mut f = std::fs::File::open(path).unwrap();
        let ct = gguf_file::Content::read(&mut f).unwrap();
        let mut m = Gemma3::load(&ct, &mut f, &Device::Cpu, 64, true).unwrap();
        m.kv_chunk = 16;
        for l in m.layers.iter_mut().filter(|l| l.sliding_window.is_some()) {
            l.sliding_window = Some(8);
        }
        // <bos> "The capital of France is Paris." then other vocabulary ids.
        let mut tokens: Vec<u32> = vec![2, 818, 5279, 529, 7001, 563, 9079, 236761];
        tokens.extend((0..32u32).map(|i| 1000 + i * 977 % 20_000));
        let full = full_forward(&mut m, &tokens);
        let inc = incremental(&mut m, &tokens, &[5]);
        let diff = max_abs_diff(&full, &inc);
        let scale = full.iter().flatten().fold(0f32, |a, x| a.max(x.abs()));
        println!("real Gemma (f32 weights), window 8: max |cached - full| logit = {diff:e} (max |logit| {scale})");
        assert!(diff < 1e-3, "max |cached - full| = {diff}");
        // What the bound guards against: the shipped window (not reached) instead of 8.
        for l in m.layers.iter_mut().filter(|l| l.sliding_window.is_some()) {
            l.sliding_window = Some(512);
        }
        let unwindowed = full_forward(&mut m, &tokens);
        assert!(max_abs_diff(&full[..8], &unwindowed[..8]) < 1e-3);
        let moved = max_abs_diff(&full[8..], &unwindowed[8..]);
        println!("window 8 vs 512: max |Δ logit| = {moved}");
        assert!(moved > 0.1, "{moved}");
    }
}
