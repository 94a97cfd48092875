//! Helpers shared by the lab's CLI tests: running `firstword-lab` from the repository root,
//! a development (random-weight) μLM checkpoint, and the eval wheels' cache. Model files follow
//! the workspace's one skip-or-fail rule ([`testkit::present`]).
// Each test binary uses a subset of these.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

#[allow(unused_imports)] // each test binary uses a subset
pub use testkit::{present as assets_present, root};

/// Runs `firstword-lab ARGS` from the repository root.
pub fn lab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_firstword-lab")).args(args).current_dir(root()).output().expect("run firstword-lab")
}

/// The process's stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Writes a random-weight checkpoint of `preset` into `dir` (what `firstword lm
/// dev-checkpoint` writes), with seed 1.
pub fn dev_checkpoint(dir: &Path, preset: &str) {
    let p = lm::Preset::from_name(preset).expect("a known preset");
    lm::dev::write_dev_checkpoint(dir, p.name(), &p.config(), 1).expect("writing a development checkpoint");
    for f in ["mulm.json", "tokenizer.json", "model.safetensors"] {
        assert!(dir.join(f).is_file(), "dev checkpoint without {f}");
    }
}

/// The training recipe's package cache, where scripts/setup.sh puts the eval wheels.
pub fn training_cache() -> PathBuf {
    std::env::var_os("FIRSTWORD_TRAINING_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/firstword/training-packages"))
}

/// True when every wheel is in the cache; else the skip-or-fail rule.
pub fn wheels_present(wheels: &[&str]) -> bool {
    let cache = training_cache();
    let paths: Vec<String> = wheels.iter().map(|w| cache.join(w).to_string_lossy().into_owned()).collect();
    testkit::present(&paths.iter().map(String::as_str).collect::<Vec<_>>())
}
