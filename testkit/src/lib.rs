//! Test support shared by every crate's tests (issue 17 §7): where the repository is, and the
//! one rule for tests that need model files or fixtures that `scripts/setup.sh` fetches —
//! absent files skip the test with a visible message on a developer's machine and fail it
//! under `FIRSTWORD_REQUIRE_MODELS` (set by `scripts/test.sh`, hence in CI).

use std::io::Write;
use std::path::{Path, PathBuf};

/// The variable that turns a skip into a failure.
pub const REQUIRE_ENV: &str = "FIRSTWORD_REQUIRE_MODELS";

/// The repository root: the parent of this crate's directory (every crate is one level down).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("testkit sits inside the repository").to_path_buf()
}

/// True when `FIRSTWORD_REQUIRE_MODELS` is set: absent model files are then a failure.
pub fn models_required() -> bool {
    std::env::var_os(REQUIRE_ENV).is_some()
}

/// The paths of `needed` (relative to the root, or absolute) that do not exist.
pub fn missing(needed: &[&str]) -> Vec<PathBuf> {
    needed.iter().map(|p| root().join(p)).filter(|p| !p.exists()).collect()
}

/// True when every path in `needed` (relative to the root, or absolute) exists. Otherwise:
/// panics naming the missing files when [`models_required`], else writes `SKIP: …` to stderr
/// (the handle, not `eprintln!`, which libtest captures for passing tests) and returns false.
///
/// # Panics
/// When a file is missing and `FIRSTWORD_REQUIRE_MODELS` is set.
pub fn present(needed: &[&str]) -> bool {
    let missing = missing(needed);
    if missing.is_empty() {
        return true;
    }
    skip_or_fail(&format!("missing {missing:?}"));
    false
}

/// The absolute path of `rel` (relative to the root) when it exists, else the rule of
/// [`present`]: `None` after a SKIP message, or a panic under `FIRSTWORD_REQUIRE_MODELS`.
pub fn require(rel: &str) -> Option<PathBuf> {
    present(&[rel]).then(|| root().join(rel))
}

/// The one place the rule lives: panic with `why` when models are required, else say SKIP.
///
/// # Panics
/// When `FIRSTWORD_REQUIRE_MODELS` is set.
pub fn skip_or_fail(why: &str) {
    if models_required() {
        panic!("{why} ({REQUIRE_ENV} is set): run scripts/setup.sh");
    }
    let _ = writeln!(std::io::stderr(), "SKIP: {why} (run scripts/setup.sh; set {REQUIRE_ENV}=1 to make this a failure)");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_holds_the_workspace_manifest() {
        let manifest = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
        assert!(manifest.contains("[workspace]"), "{}", root().display());
    }

    #[test]
    fn missing_lists_only_absent_paths() {
        let m = missing(&["Cargo.toml", "no/such/file.gguf"]);
        assert_eq!(m, vec![root().join("no/such/file.gguf")]);
        assert!(present(&["Cargo.toml", "testkit/src/lib.rs"]));
        assert_eq!(require("Cargo.toml"), Some(root().join("Cargo.toml")));
    }
}
