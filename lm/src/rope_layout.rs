//! Q/K row permutation between the runtime's RoPE layout and llama.cpp's.
//!
//! **Choice:** the runtime (and the safetensors checkpoints) use the Hugging Face / GPT-NeoX
//! "half-split" rotary layout: within each head, dimension `j` is rotated together with
//! `j + hd/2`. llama.cpp's `llama` architecture instead applies "normal" RoPE to interleaved
//! pairs `(2j, 2j+1)`. Exactly like llama.cpp's `convert_hf_to_gguf.py` (`LlamaModel.permute`),
//! the GGUF exporter reorders the *rows* of `attn_q`/`attn_k` so that interleaved RoPE on the
//! permuted weights computes the same function as half-split RoPE on the originals; the GGUF
//! importer applies the inverse permutation so the runtime keeps one RoPE code path. Because
//! q·k is invariant to a common permutation of both vectors' dimensions, logits match exactly.
//! The permutation moves whole rows, so it is lossless for quantized tensors too (every row is a
//! contiguous run of quantization blocks).

use std::borrow::Cow;

use candle_core::quantized::{QStorage, QTensor};
use candle_core::{Device, Tensor};

use crate::error::{LmError, Result};

/// For a `[n_heads·hd, in]` projection: `src[r]` is the half-split row that goes to GGUF row `r`.
/// GGUF row `h·hd + 2j + i` ← half-split row `h·hd + i·hd/2 + j` (i ∈ {0,1}, j < hd/2).
pub fn to_gguf_row_sources(n_rows: usize, n_heads: usize) -> Vec<usize> {
    let hd = n_rows / n_heads;
    let half = hd / 2;
    let mut src = vec![0; n_rows];
    for h in 0..n_heads {
        for j in 0..half {
            for i in 0..2 {
                src[h * hd + 2 * j + i] = h * hd + i * half + j;
            }
        }
    }
    src
}

/// Inverse of [`to_gguf_row_sources`]: `src[r]` is the GGUF row that becomes half-split row `r`.
pub fn from_gguf_row_sources(n_rows: usize, n_heads: usize) -> Vec<usize> {
    let fwd = to_gguf_row_sources(n_rows, n_heads);
    let mut inv = vec![0; n_rows];
    for (dst, &src) in fwd.iter().enumerate() {
        inv[src] = dst;
    }
    inv
}

/// Reorder the rows of a dense 2-D tensor: output row r = input row `sources[r]`.
pub fn permute_rows_dense(t: &Tensor, sources: &[usize]) -> Result<Tensor> {
    let idx: Vec<u32> = sources.iter().map(|&s| s as u32).collect();
    let idx = Tensor::from_vec(idx, sources.len(), t.device())?;
    Ok(t.index_select(&idx, 0)?)
}

/// Reorder the rows of a 2-D quantized tensor at the byte level (lossless for any GGML type).
pub fn permute_rows_quantized(t: &QTensor, sources: &[usize], name: &str) -> Result<QTensor> {
    let dims = t.shape().dims().to_vec();
    if dims.len() != 2 || dims[0] != sources.len() {
        return Err(LmError::ShapeMismatch { name: name.to_string(), expected: vec![sources.len(), 0], found: dims });
    }
    let data = t.data()?;
    let row_bytes = data.len() / dims[0];
    let mut out = Vec::with_capacity(data.len());
    for &s in sources {
        out.extend_from_slice(&data[s * row_bytes..(s + 1) * row_bytes]);
    }
    let storage = QStorage::from_data(Cow::Owned(out), &Device::Cpu, t.dtype())?;
    Ok(QTensor::new(storage, dims)?)
}

/// Stack 2-D quantized tensors of one dtype along rows (dim 0) at the byte level; used to fuse
/// q/k/v and gate/up into one matmul per block (one activation quantization instead of three).
pub fn concat_rows_quantized(parts: &[&QTensor]) -> Result<QTensor> {
    let first = parts.first().ok_or_else(|| LmError::InvalidArgument("nothing to concatenate".into()))?;
    let cols = first.shape().dims()[1];
    let mut rows = 0;
    let mut out = Vec::new();
    for p in parts {
        let d = p.shape().dims();
        if p.dtype() != first.dtype() || d.len() != 2 || d[1] != cols {
            return Err(LmError::InvalidArgument("concat_rows_quantized: mismatched parts".into()));
        }
        rows += d[0];
        out.extend_from_slice(&p.data()?);
    }
    let storage = QStorage::from_data(Cow::Owned(out), &Device::Cpu, first.dtype())?;
    Ok(QTensor::new(storage, (rows, cols))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permutation_matches_llama_cpp_converter() {
        // convert_hf_to_gguf: w.reshape(n_head, 2, hd/2, ...).swapaxes(1, 2).reshape(...)
        // for hd = 4, one head: GGUF rows = [0, 2, 1, 3]
        assert_eq!(to_gguf_row_sources(4, 1), vec![0, 2, 1, 3]);
        assert_eq!(to_gguf_row_sources(8, 2), vec![0, 2, 1, 3, 4, 6, 5, 7]);
        let fwd = to_gguf_row_sources(48, 3);
        let inv = from_gguf_row_sources(48, 3);
        for r in 0..48 {
            assert_eq!(fwd[inv[r]], r);
        }
    }
}
