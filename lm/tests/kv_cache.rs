//! Decoding with the KV cache must give the same logits as one full forward pass without a
//! cache: the strongest check of RoPE offsets, causal masking and GQA head grouping.
mod common;
use common::*;
use lm::{GgmlDType, Model};

fn check(model: &Model, n: usize, split: usize, tol: f32) {
    let toks = tokens(n, model.config().vocab);
    let mut full_cache = model.new_cache().unwrap();
    let full = model.forward(&toks, &mut full_cache, true).unwrap(); // [n, V]
    assert_eq!(full.dims(), &[n, model.config().vocab]);

    let mut cache = model.new_cache().unwrap();
    // chunked prefill of the first `split` tokens, then one token at a time
    let pre = model.forward(&toks[..split], &mut cache, true).unwrap();
    let d = max_abs_diff(&pre, &full.narrow(0, 0, split).unwrap());
    assert!(d <= tol, "prefill logits differ by {d}");
    for i in split..n {
        let step = model.forward(&toks[i..i + 1], &mut cache, false).unwrap();
        let d = max_abs_diff(&step, &full.get(i).unwrap());
        assert!(d <= tol, "position {i}: cached logits differ by {d}");
    }
    assert_eq!(cache.len(), n);
    // the test must be able to fail: logits vary with position
    assert!(max_abs_diff(&full.get(n - 1).unwrap(), &full.get(n - 2).unwrap()) > 1e-2);
}

#[test]
fn cached_decode_equals_full_forward_f32() {
    let (w, _) = tiny();
    let m = Model::from_weights(&w, None).unwrap();
    check(&m, 24, 5, 1e-4);
    // chunked: two multi-token chunks exercise the mask with a non-zero offset
    let toks = tokens(20, m.config().vocab);
    let mut c1 = m.new_cache().unwrap();
    let full = m.forward(&toks, &mut c1, true).unwrap();
    let mut c2 = m.new_cache().unwrap();
    m.forward(&toks[..7], &mut c2, true).unwrap();
    let tail = m.forward(&toks[7..], &mut c2, true).unwrap();
    assert!(max_abs_diff(&tail, &full.narrow(0, 7, 13).unwrap()) <= 1e-4);
}

#[test]
fn cached_decode_equals_full_forward_q8_0() {
    let (w, _) = tiny();
    let m = Model::from_weights(&w, Some(GgmlDType::Q8_0)).unwrap();
    // Q8_0 quantizes activations too; batch vs single-row kernels may round differently.
    check(&m, 16, 3, 2e-3);
}

#[test]
fn q8_0_model_tracks_f32_on_the_kernel_this_cpu_has() {
    let (w, _) = tiny();
    let f = Model::from_weights(&w, None).unwrap();
    let q = Model::from_weights(&w, Some(GgmlDType::Q8_0)).unwrap();
    // Where the CPU has one of lm::q8's kernels every Q8_0 matrix runs on it (unless forced to candle).
    let expect = match lm::q8::Q8Kernel::selected() {
        Some(k) => format!("lm::q8 {}", k.name()),
        None => "candle".to_string(),
    };
    assert_eq!(q.matmul_kernel(), expect);
    assert_eq!(f.matmul_kernel(), "candle");
    let toks = tokens(12, f.config().vocab);
    let lf = f.forward(&toks, &mut f.new_cache().unwrap(), true).unwrap();
    let lq = q.forward(&toks, &mut q.new_cache().unwrap(), true).unwrap();
    let scale = lf.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
    let d = max_abs_diff(&lf, &lq);
    // 8-bit weights and activations: a few % of the logit range, far from a wrong matmul.
    assert!(d > 0.0 && d < 0.05 * scale, "Q8_0 logits differ from f32 by {d} (max |logit| {scale})");
}

#[test]
fn cache_reset_reproduces_first_run() {
    let (w, _) = tiny();
    let m = Model::from_weights(&w, None).unwrap();
    let toks = tokens(8, m.config().vocab);
    let mut c = m.new_cache().unwrap();
    let a = m.forward(&toks, &mut c, false).unwrap();
    c.reset();
    let b = m.forward(&toks, &mut c, false).unwrap();
    assert_eq!(max_abs_diff(&a, &b), 0.0);
}

#[test]
fn context_overflow_is_an_error() {
    let (w, _) = tiny();
    let m = Model::from_weights(&w, None).unwrap();
    let mut c = m.new_cache().unwrap();
    let toks = tokens(m.config().max_seq_len + 1, m.config().vocab);
    assert!(matches!(m.forward(&toks, &mut c, false), Err(lm::LmError::PromptTooLong { .. })));
}
