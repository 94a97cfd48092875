//! Checkpoint round trips: safetensors, GGUF export/import, llama.cpp-convention cross-check,
//! and named errors for broken checkpoints.
mod common;
use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use common::*;
use lm::gguf_export::ExportType;
use lm::{export_gguf, load_gguf, LmError, Model, ModelConfig, MulmFile, Weights};

fn last_logits(m: &Model, toks: &[u32]) -> Tensor {
    let mut c = m.new_cache().unwrap();
    m.forward(toks, &mut c, false).unwrap()
}

#[test]
fn safetensors_round_trip_same_logits() {
    let dir = tempfile::tempdir().unwrap();
    let (w, mulm) = tiny();
    let toks = tokens(12, mulm.model.vocab);
    let reference = last_logits(&Model::from_weights(&w, None).unwrap(), &toks);

    let p = dir.path().join("model.safetensors");
    w.save_safetensors(&p, DType::F32).unwrap();
    let m = lm::load_safetensors(&p, &mulm, None).unwrap();
    assert_eq!(max_abs_diff(&reference, &last_logits(&m, &toks)), 0.0);

    // f16 / bf16 checkpoints load (widened to f32) and stay close
    for (dt, tol) in [(DType::F16, 2e-2), (DType::BF16, 1.5e-1)] {
        let p = dir.path().join(format!("model-{dt:?}.safetensors"));
        w.save_safetensors(&p, dt).unwrap();
        let m = lm::load_safetensors(&p, &mulm, None).unwrap();
        let d = max_abs_diff(&reference, &last_logits(&m, &toks));
        println!("{dt:?} safetensors: max |Δlogit| = {d}");
        assert!(d < tol, "{dt:?}: {d}");
    }
}

#[test]
fn load_dir_reads_mulm_json_and_safetensors() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = lm::Preset::Tiny64x2.config();
    let (ck, w, _) = lm::dev::write_dev_checkpoint(dir.path(), "64-2", &cfg, 9).unwrap();
    let (m, mulm) = lm::load_dir(&ck.dir).unwrap();
    assert_eq!(mulm.model, cfg);
    let toks = tokens(6, cfg.vocab);
    let reference = last_logits(&Model::from_weights(&w, None).unwrap(), &toks);
    assert_eq!(max_abs_diff(&reference, &last_logits(&m, &toks)), 0.0);
}

fn export(dir: &std::path::Path, w: &Weights, mulm: &MulmFile, ty: ExportType, name: &str) -> std::path::PathBuf {
    let (tok_path, _) = tokenizer(dir, mulm);
    let out = dir.join(name);
    let s = export_gguf(w, mulm, &tok_path, &out, ty).unwrap();
    println!("{name}: {} bytes", s.bytes);
    assert!(s.tensor_types.iter().all(|(n, _)| n != "output.weight"));
    out
}

#[test]
fn gguf_f32_export_import_matches_safetensors_model() {
    let dir = tempfile::tempdir().unwrap();
    let (w, mulm) = tiny();
    let toks = tokens(12, mulm.model.vocab);
    let reference_model = Model::from_weights(&w, None).unwrap();
    let mut c = reference_model.new_cache().unwrap();
    let reference = reference_model.forward(&toks, &mut c, true).unwrap();

    let path = export(dir.path(), &w, &mulm, ExportType::F32, "f32.gguf");
    let (m, embedded) = load_gguf(&path, Some(&mulm)).unwrap();
    assert_eq!(embedded.as_ref(), Some(&mulm), "mulm.json is embedded in the GGUF");
    let mut c = m.new_cache().unwrap();
    let got = m.forward(&toks, &mut c, true).unwrap();
    let d = max_abs_diff(&reference, &got);
    println!("GGUF F32: max |Δlogit| = {d}");
    assert!(d <= 1e-4, "{d}");

    // without mulm.json the embedded copy / metadata suffice
    let (m2, _) = load_gguf(&path, None).unwrap();
    assert!(max_abs_diff(&reference.get(11).unwrap(), &last_logits(&m2, &toks)) <= 1e-4);
}

#[test]
fn gguf_quantized_exports_are_close() {
    let dir = tempfile::tempdir().unwrap();
    let (w, mulm) = tiny();
    let toks = tokens(12, mulm.model.vocab);
    let reference = last_logits(&Model::from_weights(&w, None).unwrap(), &toks);
    let scale = max_abs(&reference);
    for (ty, name, rel_tol) in [(ExportType::F16, "f16.gguf", 0.01), (ExportType::Q8_0, "q8_0.gguf", 0.05)] {
        let path = export(dir.path(), &w, &mulm, ty, name);
        let (m, _) = load_gguf(&path, Some(&mulm)).unwrap();
        let d = max_abs_diff(&reference, &last_logits(&m, &toks));
        println!("GGUF {ty:?} ({}): max |Δlogit| = {d} (max |logit| {scale})", m.format());
        assert!(d <= rel_tol * scale, "{ty:?}: {d}");
        if ty == ExportType::Q8_0 {
            // Row permutation does not move elements between Q8_0 blocks, so export → import
            // must reproduce in-memory quantization of the original weights exactly.
            let mem = Model::from_weights(&w, Some(lm::GgmlDType::Q8_0)).unwrap();
            let d = max_abs_diff(&last_logits(&mem, &toks), &last_logits(&m, &toks));
            assert!(d <= 1e-5, "GGUF Q8_0 vs in-memory Q8_0: {d}");
        }
    }
}

/// Q4_K needs rows that are multiples of 256: a custom config with hidden 256.
#[test]
fn gguf_q4k_export_import() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ModelConfig {
        hidden: 256,
        layers: 1,
        heads: 4,
        kv_heads: 2,
        intermediate: 768,
        vocab: 512,
        rope_theta: 1e6,
        rms_eps: 1e-5,
        max_seq_len: 64,
    };
    let mulm = MulmFile::for_config("custom", cfg.clone());
    let w = Weights::random_init(&cfg, 3).unwrap();
    let toks = tokens(10, cfg.vocab);
    let reference = last_logits(&Model::from_weights(&w, None).unwrap(), &toks);
    let path = export(dir.path(), &w, &mulm, ExportType::Q4K, "q4k.gguf");
    let (m, _) = load_gguf(&path, Some(&mulm)).unwrap();
    assert!(m.format().contains("q4k"), "{}", m.format());
    let d = max_abs_diff(&reference, &last_logits(&m, &toks));
    println!("GGUF Q4_K ({}): max |Δlogit| = {d} (max |logit| {})", m.format(), max_abs(&reference));
    // 4-bit noise on random (structureless) weights is large; only a sanity bound here …
    assert!(d <= 0.5 * max_abs(&reference), "{d}");
    // … the exact check: same function as quantizing the original weights to Q4_K in memory
    // (each 256-row is one Q4_K super-block, so the row permutation is lossless).
    let mem = Model::from_weights(&w, Some(lm::GgmlDType::Q4K)).unwrap();
    let d = max_abs_diff(&last_logits(&mem, &toks), &last_logits(&m, &toks));
    assert!(d <= 1e-5, "GGUF Q4_K vs in-memory Q4_K: {d}");
}

/// Independent check of the llama.cpp convention: candle-transformers' `quantized_llama`
/// (interleaved "normal" RoPE on permuted Q/K, token_embd fallback for the tied head, like
/// llama.cpp) must compute the same logits from our GGUF as our runtime does from safetensors.
#[test]
fn exported_gguf_runs_in_llama_cpp_convention_reference() {
    use candle_transformers::models::quantized_llama::ModelWeights;
    let dir = tempfile::tempdir().unwrap();
    let (w, mulm) = tiny();
    let toks = tokens(12, mulm.model.vocab);
    let ours = last_logits(&Model::from_weights(&w, None).unwrap(), &toks);
    for (ty, tol) in [(ExportType::F32, 1e-3f32), (ExportType::Q8_0, 5e-2 * max_abs(&ours))] {
        let path = export(dir.path(), &w, &mulm, ty, "ref.gguf");
        let mut f = std::fs::File::open(&path).unwrap();
        let ct = candle_core::quantized::gguf_file::Content::read(&mut f).unwrap();
        let mut reference = ModelWeights::from_gguf(ct, &mut f, &Device::Cpu).unwrap();
        let x = Tensor::new(toks.as_slice(), &Device::Cpu).unwrap().unsqueeze(0).unwrap();
        let theirs = reference.forward(&x, 0).unwrap().squeeze(0).unwrap();
        let d = max_abs_diff(&ours, &theirs);
        println!("llama.cpp-convention reference {ty:?}: max |Δlogit| vs f32 runtime = {d}");
        assert!(d <= tol, "{ty:?}: {d}");
        // Same GGUF through our importer (Q/K un-permuted, FFN not padded): bit-identical,
        // since both then run the same candle kernels on the same blocks.
        let (m, _) = lm::load::load_gguf_with(&path, Some(&mulm), false).unwrap();
        let d = max_abs_diff(&last_logits(&m, &toks), &theirs);
        println!("llama.cpp-convention reference {ty:?}: max |Δlogit| vs our GGUF import = {d}");
        assert!(d <= 1e-5, "{ty:?}: {d}");
    }
}

/// The one full-size test: 512-8 random weights, Q8_0 GGUF export → import vs f32.
#[test]
fn preset_512_8_q8_0_gguf_close_to_f32() {
    let dir = tempfile::tempdir().unwrap();
    let mulm = MulmFile::for_preset(lm::Preset::M512x8);
    let w = Weights::random_init(&mulm.model, 5).unwrap();
    let toks = tokens(14, mulm.model.vocab);
    let reference = last_logits(&Model::from_weights(&w, None).unwrap(), &toks);
    let path = export(dir.path(), &w, &mulm, ExportType::Q8_0, "512-8-q8_0.gguf");
    let (m, _) = load_gguf(&path, Some(&mulm)).unwrap();
    let got = last_logits(&m, &toks);
    let d = max_abs_diff(&reference, &got);
    let rel_rms = rel_rms_err(&reference, &got);
    println!("512-8 GGUF Q8_0: max |Δlogit| = {d} (max |logit| {}), relative RMS error {rel_rms}", max_abs(&reference));
    // Same weights without FFN padding (llama.cpp's per-32 activation quantization for ffn_down)
    let (m2, _) = lm::load::load_gguf_with(&path, Some(&mulm), false).unwrap();
    println!("512-8 GGUF Q8_0 unpadded: relative RMS error {}", rel_rms_err(&reference, &last_logits(&m2, &toks)));
    let f16 = export(dir.path(), &w, &mulm, ExportType::F16, "512-8-f16.gguf");
    let (m3, _) = load_gguf(&f16, Some(&mulm)).unwrap();
    println!("512-8 GGUF F16: relative RMS error {}", rel_rms_err(&reference, &last_logits(&m3, &toks)));
    // Random (untrained) weights amplify perturbations layer by layer, and candle's fast x86
    // kernels quantize activations per 256 (Q8_K): a few % RMS error on the logits.
    assert!(rel_rms <= 0.08, "{rel_rms}");
    assert_eq!(argmax(&reference), argmax(&got));
}

#[test]
fn gguf_config_mismatch_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let (w, mulm) = tiny();
    let path = export(dir.path(), &w, &mulm, ExportType::F32, "m.gguf");
    let mut other = mulm.clone();
    other.preset = "custom".into();
    other.model.intermediate = 256;
    match load_gguf(&path, Some(&other)) {
        Err(LmError::ConfigMismatch { key, .. }) => assert_eq!(key, "intermediate"),
        other => panic!("expected ConfigMismatch, got {other:?}"),
    }
}

fn broken_safetensors(dir: &std::path::Path, edit: impl FnOnce(&mut HashMap<String, Tensor>)) -> Result<Model, LmError> {
    let (w, mulm) = tiny();
    let mut t = w.tensors.clone();
    edit(&mut t);
    let p = dir.join("broken.safetensors");
    candle_core::safetensors::save(&t, &p).unwrap();
    lm::load_safetensors(&p, &mulm, None)
}

#[test]
fn missing_tensor_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let err = broken_safetensors(dir.path(), |t| {
        t.remove("model.layers.1.mlp.down_proj.weight");
    })
    .unwrap_err();
    match &err {
        LmError::MissingTensor { name, .. } => assert_eq!(name, "model.layers.1.mlp.down_proj.weight"),
        e => panic!("expected MissingTensor, got {e:?}"),
    }
    assert!(err.to_string().contains("model.layers.1.mlp.down_proj.weight"));
}

#[test]
fn wrong_shape_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let err = broken_safetensors(dir.path(), |t| {
        t.insert("model.layers.0.self_attn.k_proj.weight".into(), Tensor::zeros((64, 64), DType::F32, &Device::Cpu).unwrap());
    })
    .unwrap_err();
    match &err {
        LmError::ShapeMismatch { name, expected, found } => {
            assert_eq!(name, "model.layers.0.self_attn.k_proj.weight");
            assert_eq!(expected, &vec![32, 64]);
            assert_eq!(found, &vec![64, 64]);
        }
        e => panic!("expected ShapeMismatch, got {e:?}"),
    }
}

#[test]
fn untied_lm_head_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let err = broken_safetensors(dir.path(), |t| {
        let e = t["model.embed_tokens.weight"].clone();
        t.insert("lm_head.weight".into(), e);
    })
    .unwrap_err();
    assert!(matches!(&err, LmError::UnexpectedTensor { name, .. } if name == "lm_head.weight"), "{err:?}");
}

#[test]
fn gguf_missing_tensor_is_named() {
    // write a GGUF lacking one block tensor by hand
    use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
    let dir = tempfile::tempdir().unwrap();
    let (w, mulm) = tiny();
    let good = export(dir.path(), &w, &mulm, ExportType::F32, "good.gguf");
    let mut f = std::fs::File::open(&good).unwrap();
    let ct = gguf_file::Content::read(&mut f).unwrap();
    let mut tensors: Vec<(String, QTensor)> = Vec::new();
    for name in ct.tensor_infos.keys() {
        if name != "blk.1.ffn_up.weight" {
            let q = ct.tensor(&mut f, name, &Device::Cpu).unwrap();
            tensors.push((name.clone(), QTensor::quantize(&q.dequantize(&Device::Cpu).unwrap(), GgmlDType::F32).unwrap()));
        }
    }
    let md: Vec<(&str, &gguf_file::Value)> = ct.metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let ts: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let bad = dir.path().join("bad.gguf");
    gguf_file::write(&mut std::fs::File::create(&bad).unwrap(), &md, &ts).unwrap();
    match load_gguf(&bad, Some(&mulm)) {
        Err(LmError::MissingTensor { name, .. }) => assert_eq!(name, "blk.1.ffn_up.weight"),
        other => panic!("expected MissingTensor, got {:?}", other.map(|_| ())),
    }
}
