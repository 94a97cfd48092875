//! `firstword-lab lm …`, the model tools, end to end: a development checkpoint of the test
//! preset, its GGUF export (what `make -C training export` runs) loaded back as the daemon
//! loads it, and clear errors for a bad preset or export type.

mod common;

use common::{lab, stderr};

#[test]
fn dev_checkpoint_then_export_gguf_gives_a_checkpoint_the_daemon_loads() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("mulm");
    let d = dir.to_str().unwrap();
    let out = lab(&["lm", "dev-checkpoint", "--out", d, "--preset", "64-2"]);
    assert!(out.status.success(), "dev-checkpoint failed: {}", stderr(&out));
    for f in ["mulm.json", "tokenizer.json", "model.safetensors"] {
        assert!(dir.join(f).is_file(), "dev-checkpoint did not write {f}");
    }
    let f32_ckpt = lm::checkpoint::load_checkpoint(&dir, lm::checkpoint::LmQuant::F32, 1).expect("the safetensors checkpoint loads");
    assert!(!f32_ckpt.model.format().contains("gguf"), "{}", f32_ckpt.model.format());

    let out = lab(&["lm", "export-gguf", "--model", d, "--type", "q8_0"]);
    assert!(out.status.success(), "export-gguf failed: {}", stderr(&out));
    let gguf = std::fs::read(dir.join("model.gguf")).expect("export-gguf writes MODEL/model.gguf");
    assert_eq!(&gguf[..4], b"GGUF");
    // The daemon prefers the GGUF beside the safetensors.
    let m = lm::checkpoint::load_checkpoint(&dir, lm::checkpoint::LmQuant::F32, 1).expect("the GGUF checkpoint loads");
    assert!(m.model.format().contains("gguf"), "{}", m.model.format());
    assert_eq!(m.mulm.preset, "64-2");
}

/// `--type q4_k` (how a 512-8 fits the repository): Q4_K matrices where a row is a multiple of
/// 256 weights, a smaller file than Q8_0, and a checkpoint the daemon loads (`bench lm
/// --precisions q4_k` decodes one).
#[test]
fn export_gguf_q4_k_is_smaller_than_q8_0_and_loads() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("mulm");
    common::dev_checkpoint(&dir, "256-8");
    let d = dir.to_str().unwrap();
    let q8 = tmp.path().join("q8.gguf");
    let out = lab(&["lm", "export-gguf", "--model", d, "--type", "q8_0", "--out", q8.to_str().unwrap()]);
    assert!(out.status.success(), "export-gguf q8_0 failed: {}", stderr(&out));
    let out = lab(&["lm", "export-gguf", "--model", d, "--type", "Q4_K"]);
    assert!(out.status.success(), "export-gguf q4_k failed: {}", stderr(&out));
    let q4_bytes = std::fs::metadata(dir.join("model.gguf")).unwrap().len();
    let q8_bytes = std::fs::metadata(&q8).unwrap().len();
    // Rows of a multiple of 256 weights (all of 256-8's matrices but ffn_down, rows of 704)
    // go from 8.5 to 4.5 bits per weight.
    assert!(q4_bytes * 10 < q8_bytes * 7, "q4_k {q4_bytes} B is not well under q8_0 {q8_bytes} B");
    let m = lm::checkpoint::load_checkpoint(&dir, lm::checkpoint::LmQuant::F32, 1).expect("the Q4_K checkpoint loads");
    assert_eq!(m.model.format(), "gguf:q4k+q8_0");
}

#[test]
fn a_bad_preset_or_type_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("x");
    let out = lab(&["lm", "dev-checkpoint", "--out", d.to_str().unwrap(), "--preset", "999-1"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("999-1") && !stderr(&out).contains("panicked"), "{}", stderr(&out));
    let out = lab(&["lm", "export-gguf", "--model", d.to_str().unwrap(), "--type", "q3"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("q3") && !stderr(&out).contains("panicked"), "{}", stderr(&out));
}
