//! Helpers shared by the CLI tests: the repository root, running the binary there, and the
//! model/fixture check (skip with a message locally, fail under FIRSTWORD_REQUIRE_MODELS).
// Each test binary uses a subset of these.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

/// The repository root (the working directory the default config expects).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs `firstword ARGS` from the repository root.
pub fn firstword(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_firstword")).args(args).current_dir(root()).output().expect("run firstword")
}

/// True when every path (relative to the root) exists. Otherwise: panics if
/// FIRSTWORD_REQUIRE_MODELS is set (CI), else prints SKIP and returns false.
pub fn assets_present(needed: &[&str]) -> bool {
    let missing: Vec<_> = needed.iter().filter(|p| !root().join(p).exists()).collect();
    if missing.is_empty() {
        return true;
    }
    if std::env::var_os("FIRSTWORD_REQUIRE_MODELS").is_some() {
        panic!("missing {missing:?}: run scripts/setup.sh");
    }
    eprintln!("SKIP: missing {missing:?} (run scripts/setup.sh)");
    false
}
