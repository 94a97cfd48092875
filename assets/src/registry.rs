//! Downloads a pinned package file from its registry into a cache, checking its sha256.
//!
//! PyPI through the Simple API's JSON form (PEP 691), npm through its registry document's
//! `dist.tarball`, Debian through `apt-get download`. A file is streamed into a temporary name
//! in the cache, hashed on the way, and renamed into place only when the hash matches: a
//! failed or interrupted download never leaves a file that looks complete.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::manifest::{Package, Registry};
use crate::AssetError;

/// Largest package file accepted (bytes): a registry that sends more is refused.
pub const MAX_PACKAGE_BYTES: u64 = 2 << 30;

/// Default PyPI Simple API root (`$FIRSTWORD_PYPI_INDEX` overrides).
pub const DEFAULT_PYPI_INDEX: &str = "https://pypi.org/simple";
/// Default npm registry (`$FIRSTWORD_NPM_REGISTRY` overrides).
pub const DEFAULT_NPM_REGISTRY: &str = "https://registry.npmjs.org";

/// Lowercase hex sha256 of a file. Errors: the file cannot be read.
pub fn sha256_file(path: &Path) -> Result<String, AssetError> {
    let mut f = std::fs::File::open(path).map_err(|e| AssetError::io(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| AssetError::io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// PEP 503 name normalisation: lowercase, runs of `-_.` become one `-`.
pub fn normalize_pypi_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !out.ends_with('-') {
                out.push('-');
            }
        } else {
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

/// Fetches package files over HTTP(S) (and `apt-get` for Debian).
pub struct Fetcher {
    client: reqwest::blocking::Client,
    pypi_index: String,
    npm_registry: String,
    offline: bool,
}

impl Fetcher {
    /// A fetcher using `$FIRSTWORD_PYPI_INDEX` / `$FIRSTWORD_NPM_REGISTRY` when set. With
    /// `offline`, a package missing from the cache is an error instead of a download.
    pub fn new(offline: bool) -> Result<Fetcher, AssetError> {
        let env = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_string());
        Fetcher::with_registries(
            &env("FIRSTWORD_PYPI_INDEX", DEFAULT_PYPI_INDEX),
            &env("FIRSTWORD_NPM_REGISTRY", DEFAULT_NPM_REGISTRY),
            offline,
        )
    }

    /// A fetcher for these registries: a PyPI Simple API root (`https://pypi.org/simple`)
    /// and an npm registry root (`https://registry.npmjs.org`).
    pub fn with_registries(pypi_index: &str, npm_registry: &str, offline: bool) -> Result<Fetcher, AssetError> {
        let client = reqwest::blocking::Client::builder()
            .connect_timeout(Duration::from_secs(30))
            .timeout(Duration::from_secs(30 * 60))
            .user_agent(concat!("firstword-setup/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| AssetError::Download { what: "HTTP client".into(), why: e.to_string() })?;
        Ok(Fetcher {
            client,
            pypi_index: pypi_index.trim_end_matches('/').to_string(),
            npm_registry: npm_registry.trim_end_matches('/').to_string(),
            offline,
        })
    }

    /// Make `cache_dir/<pkg.file>` the verified package file and return its path: nothing is
    /// downloaded when a file with the pinned hash is already there.
    ///
    /// Errors: offline with the file missing, the registry does not list the file, the
    /// download fails, or the bytes do not hash to the pin ([`AssetError::Corrupt`]).
    pub fn fetch(&self, pkg: &Package, cache_dir: &Path) -> Result<PathBuf, AssetError> {
        let dest = cache_dir.join(&pkg.file);
        if dest.is_file() && sha256_file(&dest)? == pkg.sha256 {
            return Ok(dest);
        }
        if self.offline {
            return Err(AssetError::Download {
                what: format!("{} {}", pkg.name, pkg.version),
                why: format!("not in the cache ({}) and --offline was given", dest.display()),
            });
        }
        std::fs::create_dir_all(cache_dir).map_err(|e| AssetError::io(cache_dir, e))?;
        eprintln!("setup: downloading {} package {} {}", pkg.registry.name(), pkg.name, pkg.version);
        let tmp = cache_dir.join(format!(".dl-{}.{}", pkg.file, std::process::id()));
        let result = match pkg.registry {
            Registry::Pypi => self.pypi_url(pkg).and_then(|url| self.download(&url, &tmp)),
            Registry::Npm => self.npm_url(pkg).and_then(|url| self.download(&url, &tmp)),
            Registry::Deb => apt_download(pkg, cache_dir, &tmp),
        };
        let got = match result {
            Ok(sha) => sha,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
        };
        if got != pkg.sha256 {
            let _ = std::fs::remove_file(&tmp);
            return Err(AssetError::Corrupt { what: pkg.file.clone(), got, want: pkg.sha256.clone() });
        }
        std::fs::rename(&tmp, &dest).map_err(|e| AssetError::io(&dest, e))?;
        Ok(dest)
    }

    fn get_json(&self, url: &str, accept: &str) -> Result<serde_json::Value, AssetError> {
        let err = |why: String| AssetError::Download { what: url.to_string(), why };
        let resp = self
            .client
            .get(url)
            .header(reqwest::header::ACCEPT, accept)
            .send()
            .and_then(|r| r.error_for_status())
            .map_err(|e| err(e.to_string()))?;
        // Index documents are small; a huge one is refused rather than read into memory.
        let mut body = Vec::new();
        resp.take(64 << 20).read_to_end(&mut body).map_err(|e| err(e.to_string()))?;
        serde_json::from_slice(&body).map_err(|e| err(format!("not the expected JSON: {e}")))
    }

    fn pypi_url(&self, pkg: &Package) -> Result<String, AssetError> {
        let url = format!("{}/{}/", self.pypi_index, normalize_pypi_name(&pkg.name));
        let index = self.get_json(&url, "application/vnd.pypi.simple.v1+json")?;
        let file = index
            .get("files")
            .and_then(|f| f.as_array())
            .and_then(|files| files.iter().find(|f| f.get("filename").and_then(|n| n.as_str()) == Some(&pkg.file)))
            .ok_or_else(|| AssetError::Download {
                what: format!("{} {}", pkg.name, pkg.version),
                why: format!("{url} does not list {}", pkg.file),
            })?;
        if let Some(listed) = file.pointer("/hashes/sha256").and_then(|h| h.as_str()) {
            if listed != pkg.sha256 {
                return Err(AssetError::Corrupt {
                    what: format!("{} (as listed by {url})", pkg.file),
                    got: listed.into(),
                    want: pkg.sha256.clone(),
                });
            }
        }
        let href = file.get("url").and_then(|u| u.as_str()).unwrap_or_default();
        // PEP 691 allows a URL relative to the index page.
        Ok(if href.starts_with("http://") || href.starts_with("https://") {
            href.to_string()
        } else {
            reqwest::Url::parse(&url)
                .and_then(|base| base.join(href))
                .map(|u| u.to_string())
                .map_err(|e| AssetError::Download { what: url.clone(), why: format!("bad file URL '{href}': {e}") })?
        })
    }

    fn npm_url(&self, pkg: &Package) -> Result<String, AssetError> {
        let url = format!("{}/{}/{}", self.npm_registry, pkg.name, pkg.version);
        let doc = self.get_json(&url, "application/json")?;
        doc.pointer("/dist/tarball")
            .and_then(|t| t.as_str())
            .map(str::to_string)
            .ok_or_else(|| AssetError::Download { what: url, why: "no dist.tarball in the registry document".into() })
    }

    /// Stream `url` into `tmp`, returning the sha256 of what was written.
    fn download(&self, url: &str, tmp: &Path) -> Result<String, AssetError> {
        let err = |why: String| AssetError::Download { what: url.to_string(), why };
        let resp = self.client.get(url).send().and_then(|r| r.error_for_status()).map_err(|e| err(e.to_string()))?;
        let mut body = resp.take(MAX_PACKAGE_BYTES + 1);
        let mut out = std::fs::File::create(tmp).map_err(|e| AssetError::io(tmp, e))?;
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0u64;
        loop {
            let n = body.read(&mut buf).map_err(|e| err(e.to_string()))?;
            if n == 0 {
                break;
            }
            total += n as u64;
            if total > MAX_PACKAGE_BYTES {
                return Err(err(format!("larger than {MAX_PACKAGE_BYTES} bytes")));
            }
            h.update(&buf[..n]);
            out.write_all(&buf[..n]).map_err(|e| AssetError::io(tmp, e))?;
        }
        out.sync_all().map_err(|e| AssetError::io(tmp, e))?;
        Ok(hex(&h.finalize()))
    }
}

/// `apt-get download NAME=VERSION` in a scratch directory of the cache, moved to `tmp`.
fn apt_download(pkg: &Package, cache_dir: &Path, tmp: &Path) -> Result<String, AssetError> {
    let work = cache_dir.join(format!(".apt-{}", std::process::id()));
    std::fs::create_dir_all(&work).map_err(|e| AssetError::io(&work, e))?;
    let spec = format!("{}={}", pkg.name, pkg.version);
    let run = || std::process::Command::new("apt-get").args(["download", "-q", &spec]).current_dir(&work).output();
    let mut out = run();
    if !matches!(&out, Ok(o) if o.status.success()) {
        // The package lists may be stale or absent (a fresh container): refresh once.
        let _ = std::process::Command::new("apt-get").args(["update", "-qq"]).output();
        out = run();
    }
    let result = match out {
        Ok(o) if o.status.success() => {
            let got = work.join(&pkg.file);
            std::fs::rename(&got, tmp)
                .map_err(|e| AssetError::Download { what: spec.clone(), why: format!("apt-get did not produce {}: {e}", pkg.file) })
                .and_then(|_| sha256_file(tmp))
        }
        Ok(o) => Err(AssetError::Download { what: spec.clone(), why: String::from_utf8_lossy(&o.stderr).trim().to_string() }),
        Err(e) => Err(AssetError::Download { what: spec.clone(), why: format!("cannot run apt-get: {e}") }),
    };
    let _ = std::fs::remove_dir_all(&work);
    result
}
