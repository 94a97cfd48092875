//! CTranslate2 Whisper variables → whisper.cpp tensors: names, fused-projection splits and the
//! shapes whisper.cpp's `whisper_model_load` checks (it refuses unknown, missing or mis-shaped
//! tensors, so this table is the contract).

use std::collections::{BTreeMap, BTreeSet};

use super::ct2::Tensor;
use super::ConvertError;

/// Whisper dimensions, read off the tensor shapes (CT2's config.json lacks them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hparams {
    /// Vocabulary rows of the token embedding.
    pub n_vocab: usize,
    /// Encoder positions (1500 for 30 s).
    pub n_audio_ctx: usize,
    /// Encoder width.
    pub n_audio_state: usize,
    /// Encoder attention heads.
    pub n_audio_head: usize,
    /// Encoder blocks.
    pub n_audio_layer: usize,
    /// Decoder positions (448).
    pub n_text_ctx: usize,
    /// Decoder width.
    pub n_text_state: usize,
    /// Decoder attention heads.
    pub n_text_head: usize,
    /// Decoder blocks.
    pub n_text_layer: usize,
    /// Mel bands of the input (80).
    pub n_mels: usize,
}

type Vars = BTreeMap<String, Tensor>;

fn require<'a>(vars: &'a Vars, name: &str) -> Result<&'a Tensor, ConvertError> {
    vars.get(name).ok_or_else(|| ConvertError::Input(format!("model.bin: missing tensor '{name}'")))
}

fn count_layers(vars: &Vars, prefix: &str) -> usize {
    let mut n = 0;
    while vars.keys().any(|k| k.starts_with(&format!("{prefix}/layer_{n}/"))) {
        n += 1;
    }
    n
}

/// Derive the dimensions. Errors name a missing tensor or one of the wrong rank.
pub fn derive_hparams(vars: &Vars) -> Result<Hparams, ConvertError> {
    let ranked = |name: &str, rank: usize| -> Result<&Tensor, ConvertError> {
        let t = require(vars, name)?;
        if t.shape.len() != rank {
            return Err(ConvertError::Input(format!("model.bin: tensor '{name}' has shape {:?}, expected rank {rank}", t.shape)));
        }
        Ok(t)
    };
    let emb = ranked("decoder/embeddings/weight", 2)?;
    let enc_pe = ranked("encoder/position_encodings/encodings", 2)?;
    let dec_pe = ranked("decoder/position_encodings/encodings", 2)?;
    let conv1 = ranked("encoder/conv1/weight", 3)?;
    let heads = |name: &str| -> Result<usize, ConvertError> {
        require(vars, name)?
            .scalar_i64()
            .filter(|&h| h > 0)
            .map(|h| h as usize)
            .ok_or_else(|| ConvertError::Input(format!("model.bin: '{name}' is not a positive scalar")))
    };
    Ok(Hparams {
        n_vocab: emb.shape[0],
        n_audio_ctx: enc_pe.shape[0],
        n_audio_state: enc_pe.shape[1],
        n_audio_head: heads("encoder/num_heads")?,
        n_audio_layer: count_layers(vars, "encoder"),
        n_text_ctx: dec_pe.shape[0],
        n_text_state: emb.shape[1],
        n_text_head: heads("decoder/num_heads")?,
        n_text_layer: count_layers(vars, "decoder"),
        n_mels: conv1.shape[1],
    })
}

/// Every tensor whisper.cpp's loader creates, with its row-major shape (ggml's `ne` is the
/// reverse): 11 top-level tensors, 15 per encoder block, 24 per decoder block.
pub fn expected_shapes(hp: &Hparams) -> BTreeMap<String, Vec<usize>> {
    let (a, t) = (hp.n_audio_state, hp.n_text_state);
    let mut s: BTreeMap<String, Vec<usize>> = [
        ("encoder.positional_embedding", vec![hp.n_audio_ctx, a]),
        ("encoder.conv1.weight", vec![a, hp.n_mels, 3]),
        ("encoder.conv1.bias", vec![a, 1]),
        ("encoder.conv2.weight", vec![a, a, 3]),
        ("encoder.conv2.bias", vec![a, 1]),
        ("encoder.ln_post.weight", vec![a]),
        ("encoder.ln_post.bias", vec![a]),
        ("decoder.positional_embedding", vec![hp.n_text_ctx, t]),
        ("decoder.token_embedding.weight", vec![hp.n_vocab, t]),
        ("decoder.ln.weight", vec![t]),
        ("decoder.ln.bias", vec![t]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let mut block = |prefix: String, n: usize, cross: bool| {
        let mut put = |k: &str, v: Vec<usize>| {
            s.insert(format!("{prefix}.{k}"), v);
        };
        put("mlp_ln.weight", vec![n]);
        put("mlp_ln.bias", vec![n]);
        put("mlp.0.weight", vec![4 * n, n]);
        put("mlp.0.bias", vec![4 * n]);
        put("mlp.2.weight", vec![n, 4 * n]);
        put("mlp.2.bias", vec![n]);
        let attns: &[&str] = if cross { &["attn", "cross_attn"] } else { &["attn"] };
        for att in attns {
            put(&format!("{att}_ln.weight"), vec![n]);
            put(&format!("{att}_ln.bias"), vec![n]);
            put(&format!("{att}.query.weight"), vec![n, n]);
            put(&format!("{att}.query.bias"), vec![n]);
            // Whisper's key projection has no bias.
            put(&format!("{att}.key.weight"), vec![n, n]);
            put(&format!("{att}.value.weight"), vec![n, n]);
            put(&format!("{att}.value.bias"), vec![n]);
            put(&format!("{att}.out.weight"), vec![n, n]);
            put(&format!("{att}.out.bias"), vec![n]);
        }
    };
    for i in 0..hp.n_audio_layer {
        block(format!("encoder.blocks.{i}"), a, false);
    }
    for i in 0..hp.n_text_layer {
        block(format!("decoder.blocks.{i}"), t, true);
    }
    s
}

/// Split a fused projection along its first axis into `parts` equal tensors, in order
/// (Q|K|V or K|V: CT2 concatenates the separate projections on axis 0). An empty tensor is
/// refused (a hostile model.bin may declare one).
pub fn split_fused(t: &Tensor, parts: usize, name: &str) -> Result<Vec<Tensor>, ConvertError> {
    if t.shape.is_empty() || parts == 0 || t.is_empty() || !t.shape[0].is_multiple_of(parts) {
        return Err(ConvertError::Input(format!(
            "tensor '{name}' has shape {:?}; cannot split its first axis into {parts} equal parts",
            t.shape
        )));
    }
    let chunk = t.data.len() / parts;
    let mut shape = t.shape.clone();
    shape[0] /= parts;
    Ok(t.data.chunks_exact(chunk).map(|d| Tensor { shape: shape.clone(), dtype: t.dtype, data: d.to_vec() }).collect())
}

/// Mapped tensors in the order they are written (the order whisper.cpp's own converter uses).
pub type Mapped = Vec<(String, Tensor)>;

struct Mapper<'a> {
    vars: &'a Vars,
    out: Mapped,
}

impl Mapper<'_> {
    fn put(&mut self, dst: String, t: Tensor) {
        self.out.push((dst, t));
    }
    fn copy(&mut self, src: &str, dst: &str) -> Result<(), ConvertError> {
        let t = require(self.vars, src)?.clone();
        self.put(dst.to_string(), t);
        Ok(())
    }
    /// CT2 names a layer norm's scale/shift gamma/beta; PyTorch weight/bias.
    fn ln(&mut self, src: &str, dst: &str) -> Result<(), ConvertError> {
        self.copy(&format!("{src}/gamma"), &format!("{dst}.weight"))?;
        self.copy(&format!("{src}/beta"), &format!("{dst}.bias"))
    }
    fn linear(&mut self, src: &str, dst: &str) -> Result<(), ConvertError> {
        self.copy(&format!("{src}/weight"), &format!("{dst}.weight"))?;
        self.copy(&format!("{src}/bias"), &format!("{dst}.bias"))
    }
    /// Split fused projection `src` into `dsts`; the key (`key_index`) gets no bias, and a
    /// non-zero key bias is refused because dropping it would silently change the model.
    fn split_linear(&mut self, src: &str, dsts: &[String], key_index: usize) -> Result<(), ConvertError> {
        let wname = format!("{src}/weight");
        let bname = format!("{src}/bias");
        let ws = split_fused(require(self.vars, &wname)?, dsts.len(), &wname)?;
        let bs = split_fused(require(self.vars, &bname)?, dsts.len(), &bname)?;
        for (i, ((dst, w), b)) in dsts.iter().zip(ws).zip(bs).enumerate() {
            self.put(format!("{dst}.weight"), w);
            if i == key_index {
                if b.to_f32_vec().iter().any(|&v| v != 0.0) {
                    return Err(ConvertError::Input(format!("model.bin: {bname} has a non-zero key bias; whisper.cpp has no slot for it")));
                }
            } else {
                self.put(format!("{dst}.bias"), b);
            }
        }
        Ok(())
    }
}

/// Rename and split the CT2 variables into whisper.cpp tensors, then check the result against
/// [`expected_shapes`]. Values keep their CT2 dtype; the writer converts to f16/f32.
///
/// Errors name a missing tensor, a shape whisper.cpp would refuse, a quantized (integer)
/// weight, or a tensor whisper.cpp does not know.
pub fn map_tensors(vars: &Vars, hp: &Hparams) -> Result<Mapped, ConvertError> {
    let mut m = Mapper { vars, out: Vec::new() };
    for k in 1..=2 {
        m.copy(&format!("encoder/conv{k}/weight"), &format!("encoder.conv{k}.weight"))?;
        // whisper.cpp declares conv biases 2-D ([n_state, 1] row-major) to broadcast over time.
        let mut bias = require(vars, &format!("encoder/conv{k}/bias"))?.clone();
        bias.shape = vec![bias.len(), 1];
        m.put(format!("encoder.conv{k}.bias"), bias);
    }
    m.copy("encoder/position_encodings/encodings", "encoder.positional_embedding")?;
    m.ln("encoder/layer_norm", "encoder.ln_post")?;
    let qkv = |dst: &str| [format!("{dst}.query"), format!("{dst}.key"), format!("{dst}.value")];
    for i in 0..hp.n_audio_layer {
        let (src, dst) = (format!("encoder/layer_{i}"), format!("encoder.blocks.{i}"));
        m.ln(&format!("{src}/self_attention/layer_norm"), &format!("{dst}.attn_ln"))?;
        m.split_linear(&format!("{src}/self_attention/linear_0"), &qkv(&format!("{dst}.attn")), 1)?;
        m.linear(&format!("{src}/self_attention/linear_1"), &format!("{dst}.attn.out"))?;
        m.ln(&format!("{src}/ffn/layer_norm"), &format!("{dst}.mlp_ln"))?;
        m.linear(&format!("{src}/ffn/linear_0"), &format!("{dst}.mlp.0"))?;
        m.linear(&format!("{src}/ffn/linear_1"), &format!("{dst}.mlp.2"))?;
    }
    m.copy("decoder/embeddings/weight", "decoder.token_embedding.weight")?;
    m.copy("decoder/position_encodings/encodings", "decoder.positional_embedding")?;
    m.ln("decoder/layer_norm", "decoder.ln")?;
    for i in 0..hp.n_text_layer {
        let (src, dst) = (format!("decoder/layer_{i}"), format!("decoder.blocks.{i}"));
        m.ln(&format!("{src}/self_attention/layer_norm"), &format!("{dst}.attn_ln"))?;
        m.split_linear(&format!("{src}/self_attention/linear_0"), &qkv(&format!("{dst}.attn")), 1)?;
        m.linear(&format!("{src}/self_attention/linear_1"), &format!("{dst}.attn.out"))?;
        m.ln(&format!("{src}/attention/layer_norm"), &format!("{dst}.cross_attn_ln"))?;
        m.linear(&format!("{src}/attention/linear_0"), &format!("{dst}.cross_attn.query"))?;
        // Cross-attention K|V are fused because both project the encoder output.
        let kv = [format!("{dst}.cross_attn.key"), format!("{dst}.cross_attn.value")];
        m.split_linear(&format!("{src}/attention/linear_1"), &kv, 0)?;
        m.linear(&format!("{src}/attention/linear_2"), &format!("{dst}.cross_attn.out"))?;
        m.ln(&format!("{src}/ffn/layer_norm"), &format!("{dst}.mlp_ln"))?;
        m.linear(&format!("{src}/ffn/linear_0"), &format!("{dst}.mlp.0"))?;
        m.linear(&format!("{src}/ffn/linear_1"), &format!("{dst}.mlp.2"))?;
    }
    let out = m.out;
    let expected = expected_shapes(hp);
    let have: BTreeMap<&str, &Tensor> = out.iter().map(|(k, t)| (k.as_str(), t)).collect();
    for (name, shape) in &expected {
        let t = have.get(name.as_str()).ok_or_else(|| ConvertError::Input(format!("missing tensor '{name}' after mapping")))?;
        if &t.shape != shape {
            return Err(ConvertError::Input(format!("tensor '{name}' has shape {:?}, whisper.cpp expects {shape:?}", t.shape)));
        }
    }
    // Integer CT2 weights are quantized and need their *_scale tensors; cast straight to f16
    // they would load fine and produce garbage, so they are refused.
    if let Some((name, t)) = out.iter().find(|(_, t)| !t.dtype.is_float()) {
        return Err(ConvertError::Input(format!(
            "tensor '{name}' is stored as {:?} (a quantized CT2 model); convert the model with float16 \
             or float32 weights",
            t.dtype
        )));
    }
    let extra: BTreeSet<&str> = have.keys().copied().filter(|k| !expected.contains_key(*k)).collect();
    if !extra.is_empty() {
        return Err(ConvertError::Input(format!("unexpected tensors after mapping: {extra:?}")));
    }
    Ok(out)
}
