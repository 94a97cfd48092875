//! `firstword setup`: make every selected file of the manifest present and verified under a
//! data root. A second run finds everything in place and does no network work (and does not
//! re-read the package files).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::archive::{self, part_path};
use crate::manifest::{CacheKind, Derived, DerivedKind, Group, Manifest, Package};
use crate::registry::{sha256_file, Fetcher};
use crate::{whisper_ggml, AssetError};

/// Where and what to set up.
#[derive(Debug, Clone)]
pub struct Options {
    /// Data root: every `to` of the manifest is relative to it.
    pub root: PathBuf,
    /// Groups to set up.
    pub groups: Vec<Group>,
    /// Also fetch the architecture-specific packages of this (foreign) CPU architecture, into
    /// `models/<dir>-<arch>/` (qemu tests of a cross-built binary).
    pub extra_arch: Option<String>,
    /// Cache of package files (`$FIRSTWORD_CACHE`).
    pub cache_dir: PathBuf,
    /// Cache of evaluation wheels (`$FIRSTWORD_TRAINING_CACHE`).
    pub training_cache_dir: PathBuf,
    /// Never download: a package missing from the cache is an error.
    pub offline: bool,
}

impl Options {
    /// Options for `root` and `groups` with the caches from the environment
    /// ([`default_cache_dir`], [`default_training_cache_dir`]), online, host architecture only.
    pub fn new(root: impl Into<PathBuf>, groups: Vec<Group>) -> Options {
        Options {
            root: root.into(),
            groups,
            extra_arch: None,
            cache_dir: default_cache_dir(),
            training_cache_dir: default_training_cache_dir(),
            offline: false,
        }
    }
}

fn home() -> PathBuf {
    std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/root"))
}

/// `$FIRSTWORD_CACHE`, else `$XDG_CACHE_HOME/firstword/packages`, else
/// `~/.cache/firstword/packages`.
pub fn default_cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("FIRSTWORD_CACHE") {
        return d.into();
    }
    let base = std::env::var_os("XDG_CACHE_HOME").map(PathBuf::from).unwrap_or_else(|| home().join(".cache"));
    base.join("firstword/packages")
}

/// `$FIRSTWORD_TRAINING_CACHE`, else `~/.cache/firstword/training-packages` (where
/// `firstword eval` and training/prepare.py look).
pub fn default_training_cache_dir() -> PathBuf {
    std::env::var_os("FIRSTWORD_TRAINING_CACHE").map(PathBuf::from).unwrap_or_else(|| home().join(".cache/firstword/training-packages"))
}

/// What a run did, one line per package or derived file.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// Package files fetched or found verified in the cache.
    pub packages_used: Vec<String>,
    /// Files extracted.
    pub extracted: Vec<PathBuf>,
    /// Derived files built (and verified).
    pub derived: Vec<PathBuf>,
}

impl Report {
    /// True when the run changed nothing (everything was in place).
    pub fn nothing_to_do(&self) -> bool {
        self.packages_used.is_empty() && self.extracted.is_empty() && self.derived.is_empty()
    }
}

/// The destination of a manifest path for a package of `arch`: a foreign architecture's file
/// goes to `models/<dir>-<arch>/...` beside the host's `models/<dir>/...`.
pub fn arch_destination(to: &str, pkg_arch: Option<&str>, host_arch: &str) -> PathBuf {
    match pkg_arch {
        Some(a) if a != host_arch => {
            let mut parts: Vec<String> = to.split('/').map(str::to_string).collect();
            if parts.len() > 2 && parts[0] == "models" {
                parts[1] = format!("{}-{a}", parts[1]);
            }
            PathBuf::from(parts.join("/"))
        }
        _ => PathBuf::from(to),
    }
}

fn exists_nonempty(p: &Path) -> bool {
    std::fs::metadata(p).map(|m| m.len() > 0 || m.is_dir()).unwrap_or(false)
}

/// True when `dest` (a manifest path) feeds `d`: it is an input or sits in an input directory.
fn feeds(dest: &str, d: &Derived) -> bool {
    d.inputs.iter().any(|i| i == dest || Path::new(dest).parent() == Some(Path::new(i)))
}

/// Run the setup: fetch, verify, extract, derive. Errors name the package, member or file.
pub fn run(manifest: &Manifest, opts: &Options) -> Result<Report, AssetError> {
    let host = std::env::consts::ARCH;
    let fetcher = Fetcher::new(opts.offline)?;
    let mut report = Report::default();
    let wanted_group = |g: Group| opts.groups.contains(&g);
    let derived: Vec<&Derived> = manifest.derived.iter().filter(|d| wanted_group(d.group)).collect();
    // A derived file already in place makes its inputs unnecessary.
    let satisfied: Vec<&Derived> = derived.iter().copied().filter(|d| exists_nonempty(&opts.root.join(&d.to))).collect();

    for pkg in manifest.packages.iter().filter(|p| wanted_group(p.group)) {
        let arch_ok = match pkg.arch.as_deref() {
            None => true,
            Some(a) => a == host || opts.extra_arch.as_deref() == Some(a),
        };
        if !arch_ok {
            continue;
        }
        let mut members: BTreeMap<String, PathBuf> = BTreeMap::new();
        for e in &pkg.extract {
            let dest = opts.root.join(arch_destination(&e.to, pkg.arch.as_deref(), host));
            let consumed = satisfied.iter().any(|d| feeds(&e.to, d));
            if !consumed && !exists_nonempty(&dest) {
                members.insert(e.member.clone(), dest);
            }
        }
        if pkg.extract.is_empty() || !members.is_empty() {
            let cache = match pkg.cache {
                CacheKind::Packages => &opts.cache_dir,
                CacheKind::Training => &opts.training_cache_dir,
            };
            let file = fetcher.fetch(pkg, cache)?;
            report.packages_used.push(pkg.id.clone());
            if !members.is_empty() {
                archive::extract(pkg.registry, &file, &members)?;
                report.extracted.extend(members.into_values());
            }
        }
    }
    for d in derived {
        let out = opts.root.join(&d.to);
        if satisfied.iter().any(|s| s.id == d.id) {
            continue;
        }
        build_derived(d, &opts.root, &out)?;
        report.derived.push(out);
    }
    Ok(report)
}

/// Build one derived file through `OUT.part`, check its pinned sha256, rename it into place
/// and (when asked) remove its inputs.
fn build_derived(d: &Derived, root: &Path, out: &Path) -> Result<(), AssetError> {
    let part = part_path(out);
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).map_err(|e| AssetError::io(dir, e))?;
    }
    let inputs: Vec<PathBuf> = d.inputs.iter().map(|i| root.join(i)).collect();
    eprintln!("setup: building {} ({:?})", d.to, d.kind);
    let built = match d.kind {
        DerivedKind::WhisperCt2ToGgml => {
            let dir = inputs.first().ok_or_else(|| AssetError::Manifest(format!("entry '{}': no input", d.id)))?;
            whisper_ggml::convert(dir, &part).map(|_| ()).map_err(|e| AssetError::Convert { what: d.id.clone(), source: e })
        }
        DerivedKind::Concat => concat(&inputs, &part),
    };
    if let Err(e) = built {
        let _ = std::fs::remove_file(&part);
        return Err(e);
    }
    let got = sha256_file(&part)?;
    if got != d.sha256 {
        let _ = std::fs::remove_file(&part);
        return Err(AssetError::Corrupt { what: d.to.clone(), got, want: d.sha256.clone() });
    }
    std::fs::rename(&part, out).map_err(|e| AssetError::io(out, e))?;
    if d.remove_inputs {
        for i in &inputs {
            let _ = if i.is_dir() { std::fs::remove_dir_all(i) } else { std::fs::remove_file(i) };
        }
    }
    Ok(())
}

fn concat(inputs: &[PathBuf], out: &Path) -> Result<(), AssetError> {
    let mut w = std::fs::File::create(out).map_err(|e| AssetError::io(out, e))?;
    for i in inputs {
        let mut r = std::fs::File::open(i).map_err(|e| AssetError::io(i, e))?;
        std::io::copy(&mut r, &mut w).map_err(|e| AssetError::io(out, e))?;
    }
    w.sync_all().map_err(|e| AssetError::io(out, e))
}

/// Every package of `groups` (host architecture), for `--list`: id, registry, name, version.
pub fn list<'a>(manifest: &'a Manifest, groups: &[Group]) -> Vec<&'a Package> {
    manifest.packages.iter().filter(|p| groups.contains(&p.group)).collect()
}
