//! The `firstword` μLM command end to end on a development (random-weight) checkpoint:
//! `opener --json`, clear errors for a missing model and `[lm]` config errors that name the
//! key. Uses the small 64-2 preset where speed matters. (`lm dev-checkpoint` itself is the
//! lab's: lab/tests/cli_lm.rs.)

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn firstword(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_firstword")).args(args).current_dir(root()).output().expect("run firstword")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// What `firstword lm dev-checkpoint` writes: random weights of `preset`'s shapes, seed 1.
fn dev_checkpoint(dir: &Path, preset: &str) {
    let p = lm::Preset::from_name(preset).expect("a known preset");
    lm::dev::write_dev_checkpoint(dir, p.name(), &p.config(), 1).expect("writing a development checkpoint");
}

#[test]
fn dev_checkpoint_then_opener_json_respects_the_word_budget() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("mulm");
    dev_checkpoint(&dir, "64-2");
    let out = firstword(&["opener", "What should I cook tonight?", "--json", "--words", "4", "--model", dir.to_str().unwrap()]);
    assert!(out.status.success(), "opener failed: {}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("opener --json prints JSON");
    let words: Vec<&str> = v["words"].as_array().expect("words array").iter().map(|w| w.as_str().unwrap()).collect();
    assert!(words.len() <= 4, "{words:?}");
    let text = v["text"].as_str().unwrap();
    // The text keeps the model's own spacing; collapsing whitespace must give the words joined.
    assert_eq!(text.split_whitespace().collect::<Vec<_>>(), words, "text {text:?}");
    assert!(v["tokens"].as_array().is_some(), "{v}");
    assert!(v["prompt_tokens"].as_u64().unwrap() > 4);
    for k in ["prefill_ms", "first_token_ms", "total_ms"] {
        assert!(v[k].as_f64().is_some_and(|x| x >= 0.0), "{k} missing: {v}");
    }
    assert_eq!(v["word_ms"].as_array().unwrap().len(), words.len());
    // A development checkpoint does not ask for the harmful-request check.
    assert!(v["harm_margin"].is_null(), "{v}");
    assert_eq!(v["model"]["name"], "64-2");
    assert!(v["model"]["precision"].as_str().unwrap().contains("q8_0"), "{v}");

    // Plain output is the text alone.
    let out = firstword(&["opener", "What should I cook tonight?", "--words", "2", "--model", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).split_whitespace().count() <= 2);

    let out = firstword(&["opener", "Hi", "--words", "99", "--model", dir.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--words"), "{}", stderr(&out));
}

#[test]
fn missing_model_dir_is_a_clear_error_not_a_panic() {
    let out = firstword(&["opener", "Hello?", "--model", "/nonexistent/mulm-ckpt"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("/nonexistent/mulm-ckpt"), "{err}");
    assert!(err.contains("lm dev-checkpoint"), "error should say how to get a checkpoint: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn lm_config_errors_name_the_key() {
    let tmp = tempfile::tempdir().unwrap();
    for (text, key) in
        [("[lm]\nthreads = 0\n", "lm.threads"), ("[lm]\nquant = \"q4\"\n", "quant"), ("[lm]\nmodel_dri = \"x\"\n", "model_dri")]
    {
        let cfg = tmp.path().join("bad.toml");
        std::fs::write(&cfg, text).unwrap();
        let out = firstword(&["check-config", cfg.to_str().unwrap()]);
        assert!(!out.status.success(), "{text:?} accepted");
        assert!(stderr(&out).contains(key), "{text:?}: {}", stderr(&out));
    }
}
