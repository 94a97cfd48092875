//! Gemma 3 decoder over GGUF quantized weights, on candle (CPU): the model behind the cloud
//! crate's local backend (`cloud::backend::local`) and the lab's `eval mc` Gemma scorer.
//!
//! A fork of candle-transformers 0.11.1 `models::quantized_gemma3` (same GGUF
//! tensor names and metadata keys) with fixes that matter for output quality
//! and memory on a small machine:
//! * the MLP gate uses GELU (tanh approximation, Gemma's `gelu_pytorch_tanh`);
//!   upstream hardcodes SiLU (candle issue #3745), which quietly degrades text;
//! * sliding-window layers really attend to at most `sliding_window` keys, also
//!   while decoding from the KV cache (upstream applies no mask when decoding);
//! * rotary tables are built once per base frequency for `max_context` positions
//!   and shared by all layers (upstream allocates 2×131072 positions per layer,
//!   about 2.3 GB for this model);
//! * weights in formats without a SIMD dot product in candle 0.11 (Q5_0, Q5_1,
//!   Q4_1; this GGUF stores the Q/K/gate/up projections as Q5_0) are re-quantized
//!   to Q8_0 at load time: the scalar Q5_0 path made decoding ~10× slower.

use candle_core::quantized::{gguf_file, GgmlDType, QMatMul, QTensor};
use candle_core::{DType, Device, IndexOp, Module, Result, Tensor};
use candle_nn::{Embedding, RmsNorm};

/// Every 6th layer is global; the others use sliding-window attention (Gemma 3).
const DEFAULT_SLIDING_WINDOW_TYPE: usize = 6;
const DEFAULT_ROPE_FREQUENCY: f32 = 1_000_000.;
const DEFAULT_ROPE_FREQUENCY_SLIDING: f32 = 10_000.;

/// Wrap a weight for matmul, re-quantizing formats whose CPU dot product has no
/// SIMD kernel in candle 0.11 to Q8_0 (which has one; precision is unchanged in
/// practice: 8-bit blocks of 32 hold 5-bit blocks of 32 exactly up to rounding).
fn fast_qmatmul(w: QTensor) -> Result<QMatMul> {
    let w = match w.dtype() {
        GgmlDType::Q5_0 | GgmlDType::Q5_1 | GgmlDType::Q4_1 | GgmlDType::Q8_1 => {
            let f = w.dequantize(&Device::Cpu)?;
            QTensor::quantize(&f, GgmlDType::Q8_0)?
        }
        _ => w,
    };
    QMatMul::from_qtensor(w)
}

/// An RMSNorm whose weight (already `1 + w`, as llama.cpp's converter stores Gemma's) is a
/// GGUF tensor.
fn rms_norm(w: QTensor, eps: f64, device: &Device) -> Result<RmsNorm> {
    Ok(RmsNorm::new(w.dequantize(device)?, eps))
}

/// `[b, n_kv_head, seq, d]` → `[b, n_kv_head * n_rep, seq, d]`, each KV head repeated for its
/// query heads (candle-transformers' `utils::repeat_kv`).
fn repeat_kv(xs: Tensor, n_rep: usize) -> Result<Tensor> {
    if n_rep == 1 {
        return Ok(xs);
    }
    let (b, n_kv_head, seq_len, head_dim) = xs.dims4()?;
    Tensor::cat(&vec![&xs; n_rep], 2)?.reshape((b, n_kv_head * n_rep, seq_len, head_dim))
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

#[derive(Debug, Clone)]
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
    kv_cache: Option<(Tensor, Tensor)>,
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

impl Layer {
    fn attention(&mut self, x: &Tensor, index_pos: usize) -> Result<Tensor> {
        let (b, seq_len, _) = x.dims3()?;
        let q = self.wq.forward(x)?.reshape((b, seq_len, self.n_head, self.head_dim))?.transpose(1, 2)?;
        let k = self.wk.forward(x)?.reshape((b, seq_len, self.n_kv_head, self.head_dim))?.transpose(1, 2)?;
        let v = self.wv.forward(x)?.reshape((b, seq_len, self.n_kv_head, self.head_dim))?.transpose(1, 2)?;
        let q = self.q_norm.forward(&q.contiguous()?)?;
        let k = self.k_norm.forward(&k.contiguous()?)?;
        let (q, k) = self.rope.apply(&q, &k, index_pos)?;
        let (k, v) = match (&self.kv_cache, index_pos) {
            (Some((kc, vc)), p) if p > 0 => (Tensor::cat(&[kc, &k], 2)?, Tensor::cat(&[vc, &v.contiguous()?], 2)?),
            _ => (k, v.contiguous()?),
        };
        self.kv_cache = Some((k.clone(), v.clone()));
        let rep = self.n_head / self.n_kv_head;
        let k = repeat_kv(k, rep)?;
        let v = repeat_kv(v, rep)?;
        let scale = 1.0 / (self.head_dim as f64).sqrt();
        let mut w = (q.matmul(&k.t()?)? * scale)?;
        if let Some(mask) = attention_mask(seq_len, index_pos, self.sliding_window, x.device())? {
            w = w.broadcast_add(&mask)?;
        }
        let w = candle_nn::ops::softmax_last_dim(&w)?;
        let out = w.matmul(&v)?.transpose(1, 2)?.reshape((b, seq_len, self.n_head * self.head_dim))?;
        self.wo.forward(&out)
    }

    fn mlp(&self, x: &Tensor) -> Result<Tensor> {
        // Gemma's FFN: down(gelu_tanh(gate(x)) * up(x)).
        let gated = (self.gate.forward(x)?.gelu()? * self.up.forward(x)?)?;
        self.down.forward(&gated)
    }
}

/// Gemma 3 weights plus KV cache for one sequence at a time.
#[derive(Debug, Clone)]
pub struct Gemma3 {
    embed: Embedding,
    hidden: usize,
    layers: Vec<Layer>,
    norm: RmsNorm,
    output: QMatMul,
    max_context: usize,
}

fn md<'a>(ct: &'a gguf_file::Content, prefix: &str, key: &str) -> Result<&'a gguf_file::Value> {
    let full = format!("{prefix}.{key}");
    ct.metadata.get(&full).ok_or_else(|| candle_core::Error::Msg(format!("cannot find {full} in GGUF metadata")))
}

impl Gemma3 {
    /// Load from GGUF content. `max_context` bounds prompt + generated tokens.
    pub fn from_gguf<R: std::io::Seek + std::io::Read>(
        ct: &gguf_file::Content,
        reader: &mut R,
        device: &Device,
        max_context: usize,
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
            let mm = |n: &str, r: &mut R| -> Result<QMatMul> { fast_qmatmul(qt(&format!("{p}.{n}.weight"), r)?) };
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
                kv_cache: None,
            });
        }
        Ok(Self { embed: Embedding::new(embed, hidden), hidden, layers, norm, output: fast_qmatmul(output)?, max_context })
    }

    /// The KV caches of all layers (cheap: tensors are reference-counted), to be
    /// restored with [`Gemma3::restore_kv`] for prefix caching.
    pub fn kv_snapshot(&self) -> Vec<Option<(Tensor, Tensor)>> {
        self.layers.iter().map(|l| l.kv_cache.clone()).collect()
    }

    /// Restore KV caches taken by [`Gemma3::kv_snapshot`]; continue with
    /// `forward(tokens, snapshot_len)`.
    pub fn restore_kv(&mut self, snapshot: &[Option<(Tensor, Tensor)>]) {
        for (l, s) in self.layers.iter_mut().zip(snapshot) {
            l.kv_cache = s.clone();
        }
    }

    /// Most positions (prompt + generated tokens) one sequence may use.
    pub fn max_context(&self) -> usize {
        self.max_context
    }

    /// Run `tokens` (shape `[1, seq_len]`, u32) starting at position `index_pos`;
    /// `index_pos == 0` starts a new sequence (clears the KV cache). Returns the
    /// logits of the last position, shape `[1, vocab]`.
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
        let mut x = (self.embed.forward(tokens)? * (self.hidden as f64).sqrt())?;
        for layer in self.layers.iter_mut() {
            let h = layer.attn_norm.forward(&x)?;
            let h = layer.attention(&h, index_pos)?;
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
    use super::attention_mask;
    use candle_core::Device;

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
}
