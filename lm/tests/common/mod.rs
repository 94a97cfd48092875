//! Shared helpers for the integration tests.
#![allow(dead_code)]

use candle_core::Tensor;
use lm::{ChatTokenizer, MulmFile, Preset, Weights};

pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims(), "shape mismatch");
    let a: Vec<f32> = a.flatten_all().unwrap().to_vec1().unwrap();
    let b: Vec<f32> = b.flatten_all().unwrap().to_vec1().unwrap();
    a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

pub fn max_abs(a: &Tensor) -> f32 {
    let a: Vec<f32> = a.flatten_all().unwrap().to_vec1().unwrap();
    a.iter().map(|x| x.abs()).fold(0.0, f32::max)
}

/// A deterministic token sequence inside the tiny vocab.
pub fn tokens(n: usize, vocab: usize) -> Vec<u32> {
    (0..n).map(|i| ((i * 7919 + 13) % vocab) as u32).collect()
}

pub fn tiny() -> (Weights, MulmFile) {
    let mulm = MulmFile::for_preset(Preset::Tiny64x2);
    (Weights::random_init(&mulm.model, 42).unwrap(), mulm)
}

/// Dev tokenizer written to `dir/tokenizer.json`, wrapped for `mulm`.
pub fn tokenizer(dir: &std::path::Path, mulm: &MulmFile) -> (std::path::PathBuf, ChatTokenizer) {
    let path = dir.join("tokenizer.json");
    lm::dev::dev_tokenizer(mulm).unwrap().save(&path, false).unwrap();
    let tok = ChatTokenizer::from_file(&path, mulm).unwrap();
    (path, tok)
}

/// ‖a − b‖ / ‖a‖ over all elements.
pub fn rel_rms_err(a: &Tensor, b: &Tensor) -> f32 {
    let a: Vec<f32> = a.flatten_all().unwrap().to_vec1().unwrap();
    let b: Vec<f32> = b.flatten_all().unwrap().to_vec1().unwrap();
    let num: f32 = a.iter().zip(&b).map(|(x, y)| (x - y) * (x - y)).sum();
    let den: f32 = a.iter().map(|x| x * x).sum();
    (num / den).sqrt()
}

pub fn argmax(a: &Tensor) -> u32 {
    let v: Vec<f32> = a.flatten_all().unwrap().to_vec1().unwrap();
    lm::sampler::argmax(&v)
}
