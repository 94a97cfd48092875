//! Causal grouped-query attention over the KV cache, in plain Rust on f32 slices.
//!
//! Why not candle ops: for decode-sized inputs (1 query, ≤ 1024 keys) the work is a few
//! thousand multiply-adds per head, while candle's softmax/matmul/transpose path costs several
//! allocations plus rayon dispatches per layer — on a busy 2-core device each dispatch can wait
//! tens of microseconds for a thread. One tight loop per head also needs no mask tensor, no
//! K/V repetition for GQA and writes its output directly in `[s, h·hd]` order for `attn_output`.

/// Shapes of one attention call.
#[derive(Debug, Clone, Copy)]
pub struct AttnShape {
    /// New query positions s (tokens).
    pub s: usize,
    /// Tokens already in the cache before this call (absolute position of query 0).
    pub offset: usize,
    /// Query heads h.
    pub heads: usize,
    /// KV heads g (h % g == 0; query head i reads KV head i / (h/g), as in HF and llama.cpp).
    pub kv_heads: usize,
    /// Head width hd.
    pub head_dim: usize,
    /// Capacity of the cache buffers (positions per KV head).
    pub max_seq: usize,
}

#[inline]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    // 8 independent partial sums let the compiler vectorize without reassociation licence.
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

/// `q`: `[h, s, hd]` (RoPE applied); `k`, `v`: cache buffers `[g, max_seq, hd]` holding
/// positions `0..offset+s`; returns `[s, h·hd]`: softmax(q·kᵀ/√hd, causal) · v.
pub fn causal_gqa(q: &[f32], k: &[f32], v: &[f32], sh: AttnShape) -> Vec<f32> {
    let AttnShape { s, offset, heads, kv_heads, head_dim: hd, max_seq } = sh;
    let n_rep = heads / kv_heads;
    let scale = 1.0 / (hd as f32).sqrt();
    let mut out = vec![0f32; s * heads * hd];
    let mut p = vec![0f32; offset + s];
    for h in 0..heads {
        let base = (h / n_rep) * max_seq * hd;
        for i in 0..s {
            let t = offset + i + 1; // causal: keys 0..=offset+i
            let qv = &q[(h * s + i) * hd..(h * s + i + 1) * hd];
            let mut max = f32::NEG_INFINITY;
            for (j, pj) in p[..t].iter_mut().enumerate() {
                *pj = dot(qv, &k[base + j * hd..base + (j + 1) * hd]) * scale;
                max = max.max(*pj);
            }
            let mut sum = 0f32;
            for pj in p[..t].iter_mut() {
                *pj = (*pj - max).exp();
                sum += *pj;
            }
            let inv = 1.0 / sum;
            let o = &mut out[(i * heads + h) * hd..(i * heads + h + 1) * hd];
            for (j, &pj) in p[..t].iter().enumerate() {
                let w = pj * inv;
                for (oc, vc) in o.iter_mut().zip(&v[base + j * hd..base + (j + 1) * hd]) {
                    *oc += w * vc;
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor, D};

    /// Reference with candle ops: repeat KV heads, masked softmax, matmuls.
    #[test]
    fn matches_candle_reference() {
        let (h, g, hd, max_seq, offset, s) = (6, 2, 16, 32, 5, 4);
        let t = offset + s;
        let dev = Device::Cpu;
        let q = Tensor::randn(0f32, 1.0, (h, s, hd), &dev).unwrap();
        let kc = Tensor::randn(0f32, 1.0, (g, max_seq, hd), &dev).unwrap();
        let vc = Tensor::randn(0f32, 1.0, (g, max_seq, hd), &dev).unwrap();
        let flat = |x: &Tensor| x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let got = causal_gqa(&flat(&q), &flat(&kc), &flat(&vc), AttnShape { s, offset, heads: h, kv_heads: g, head_dim: hd, max_seq });

        let rep = |x: &Tensor| {
            let x = x.narrow(1, 0, t).unwrap();
            let parts: Vec<Tensor> = (0..h).map(|i| x.get(i / (h / g)).unwrap()).collect();
            Tensor::stack(&parts, 0).unwrap() // [h, t, hd]
        };
        let (k, v) = (rep(&kc), rep(&vc));
        let att = (q.matmul(&k.t().unwrap()).unwrap() / (hd as f64).sqrt()).unwrap(); // [h, s, t]
        let mask: Vec<f32> = (0..s).flat_map(|i| (0..t).map(move |j| if j > offset + i { f32::NEG_INFINITY } else { 0.0 })).collect();
        let mask = Tensor::from_vec(mask, (s, t), &dev).unwrap();
        let att = candle_nn::ops::softmax(&att.broadcast_add(&mask).unwrap(), D::Minus1).unwrap();
        let y = att.matmul(&v).unwrap().transpose(0, 1).unwrap(); // [s, h, hd]
        let want = flat(&y.contiguous().unwrap());
        let d = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(d < 1e-5, "{d}");
    }
}
