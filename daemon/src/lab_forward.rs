//! `firstword bench …` and `firstword eval …` run the lab's own binary, `firstword-lab`, with
//! the same arguments (`--config` first when given), the way `git foo` runs `git-foo`. The lab
//! is built on this crate's library, so it cannot be a feature of this binary without a
//! dependency cycle; a second binary keeps the device build free of it (README, "Layout").

use std::ffi::{OsStr, OsString};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Result};

/// The lab binary's file name.
pub const LAB_BIN: &str = "firstword-lab";

/// Where the lab binary is: beside `exe` (a cargo target directory, /usr/bin), else the first
/// directory of `path` (a `PATH`-style list) that holds it; None when neither does.
pub fn locate(exe: Option<&Path>, path: Option<&OsStr>) -> Option<PathBuf> {
    let beside = exe.and_then(Path::parent).map(|d| d.join(LAB_BIN));
    let on_path = path.into_iter().flat_map(std::env::split_paths).map(|d| d.join(LAB_BIN));
    beside.into_iter().chain(on_path).find(|p| p.is_file())
}

/// Replaces this process by `firstword-lab SUBCOMMAND ARGS…` (stdin/stdout/stderr and the
/// exit status are the lab's).
///
/// # Errors
/// When the lab binary is not installed beside `firstword` nor on `PATH` (the device and
/// package builds), or cannot be executed.
pub fn exec(subcommand: &str, config: Option<&Path>, args: &[OsString]) -> Result<()> {
    let exe = std::env::current_exe().ok();
    let Some(lab) = locate(exe.as_deref(), std::env::var_os("PATH").as_deref()) else {
        bail!(
            "`firstword {subcommand}` is the lab's command, and this build has no `{LAB_BIN}` beside it \
             or on PATH (the device build leaves the lab out): build it with `cargo build -p lab` \
             (add --release for figures) and run it again"
        );
    };
    let mut cmd = Command::new(&lab);
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    let err = cmd.arg(subcommand).args(args).exec();
    bail!("could not run {}: {err}", lab.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(dir: &Path) -> PathBuf {
        let p = dir.join(LAB_BIN);
        std::fs::write(&p, b"").unwrap();
        p
    }

    #[test]
    fn the_lab_beside_the_binary_wins_over_path() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (beside, on_path) = (touch(a.path()), touch(b.path()));
        let path = std::env::join_paths([b.path()]).unwrap();
        assert_eq!(locate(Some(&a.path().join("firstword")), Some(&path)), Some(beside));
        assert_eq!(locate(Some(Path::new("/nonexistent/firstword")), Some(&path)), Some(on_path));
    }

    #[test]
    fn no_lab_anywhere_is_none() {
        let a = tempfile::tempdir().unwrap();
        let path = std::env::join_paths([a.path()]).unwrap();
        assert_eq!(locate(Some(&a.path().join("firstword")), Some(&path)), None);
        assert_eq!(locate(None, None), None);
    }
}
