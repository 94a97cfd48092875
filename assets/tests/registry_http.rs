//! The registry client against a local HTTP server playing PyPI's Simple API (PEP 691 JSON)
//! and npm: a good file lands in the cache; a registry that serves other bytes, or lists
//! another hash, is refused and leaves nothing; a file the index does not list is named.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use assets::manifest::{Manifest, Package};
use assets::registry::{normalize_pypi_name, Fetcher};
use assets::AssetError;
use sha2::Digest;

fn sha(bytes: &[u8]) -> String {
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

type Seen = Arc<Mutex<Vec<String>>>;

/// Serve fixed routes (path → body; anything else 404) on 127.0.0.1 for the rest of the
/// test; `routes` gets the base URL so bodies can link to the server itself. Returns the base
/// URL and the paths requested so far.
fn serve(routes: impl Fn(&str) -> Vec<(String, Vec<u8>)>) -> (String, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let table = routes(&base);
    let seen: Seen = Arc::default();
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request = String::new();
            if reader.read_line(&mut request).is_err() {
                continue;
            }
            let path = request.split_whitespace().nth(1).unwrap_or("").to_string();
            let mut header = String::new();
            while reader.read_line(&mut header).map(|n| n > 0).unwrap_or(false) && header != "\r\n" {
                header.clear();
            }
            log.lock().unwrap().push(path.clone());
            let mut s = stream;
            let (status, body) = match table.iter().find(|(p, _)| *p == path) {
                Some((_, body)) => ("200 OK", body.as_slice()),
                None => ("404 Not Found", &[][..]),
            };
            let _ = write!(s, "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
            let _ = s.write_all(body);
        }
    });
    (base, seen)
}

fn package(registry: &str, name: &str, file: &str, sha256: &str) -> Package {
    let m = Manifest::parse(&format!(
        "[[package]]\nid = \"p\"\ngroup = \"runtime\"\nregistry = \"{registry}\"\nname = \"{name}\"\n\
         version = \"1.0\"\nfile = \"{file}\"\nsha256 = \"{sha256}\"\n"
    ))
    .unwrap();
    m.packages[0].clone()
}

const FILE: &str = "My_Pkg-1.0-py3-none-any.whl";

/// A PEP 691 index page for my-pkg listing FILE (with `listed_sha`) beside another file.
fn pypi(body: Vec<u8>, listed_sha: String) -> impl Fn(&str) -> Vec<(String, Vec<u8>)> {
    move |base| {
        let index = serde_json::json!({
            "meta": {"api-version": "1.0"},
            "files": [
                {"filename": "my_pkg-1.0.tar.gz", "url": format!("{base}/files/sdist"), "hashes": {}},
                {"filename": FILE, "url": format!("/files/{FILE}"), "hashes": {"sha256": listed_sha}},
            ]
        });
        vec![("/simple/my-pkg/".to_string(), index.to_string().into_bytes()), (format!("/files/{FILE}"), body.clone())]
    }
}

fn cache_files(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect()
}

#[test]
fn a_pypi_file_is_found_verified_and_cached() {
    let body = b"a wheel's bytes".to_vec();
    let (base, seen) = serve(pypi(body.clone(), sha(&body)));
    let cache = tempfile::tempdir().unwrap();
    let f = Fetcher::with_registries(&format!("{base}/simple"), &base, false).unwrap();
    let pkg = package("pypi", "My_Pkg", FILE, &sha(&body));
    let got = f.fetch(&pkg, cache.path()).unwrap();
    assert_eq!(std::fs::read(&got).unwrap(), body);
    // The index page gave a relative URL: resolved against the page.
    assert_eq!(*seen.lock().unwrap(), vec!["/simple/my-pkg/".to_string(), format!("/files/{FILE}")]);
    // A second fetch finds the verified file and asks the registry nothing.
    f.fetch(&pkg, cache.path()).unwrap();
    assert_eq!(seen.lock().unwrap().len(), 2);
    assert_eq!(cache_files(cache.path()), vec![FILE.to_string()]);
    assert_eq!(normalize_pypi_name("My_Pkg..Two"), "my-pkg-two");
}

#[test]
fn a_registry_serving_other_bytes_is_refused_and_leaves_nothing() {
    let pinned = b"the real wheel".to_vec();
    let served = b"something else".to_vec();
    // The index lists the pinned hash, the file route serves other bytes.
    let (base, _) = serve(pypi(served, sha(&pinned)));
    let cache = tempfile::tempdir().unwrap();
    let f = Fetcher::with_registries(&format!("{base}/simple"), &base, false).unwrap();
    let e = f.fetch(&package("pypi", "my-pkg", FILE, &sha(&pinned)), cache.path()).unwrap_err();
    assert!(matches!(&e, AssetError::Corrupt { got, .. } if *got == sha(b"something else")), "{e}");
    assert!(cache_files(cache.path()).is_empty(), "{:?}", cache_files(cache.path()));
}

#[test]
fn an_index_listing_another_hash_is_refused_before_downloading() {
    let body = b"a wheel".to_vec();
    let (base, seen) = serve(pypi(body.clone(), sha(b"another wheel")));
    let cache = tempfile::tempdir().unwrap();
    let f = Fetcher::with_registries(&format!("{base}/simple"), &base, false).unwrap();
    let e = f.fetch(&package("pypi", "my-pkg", FILE, &sha(&body)), cache.path()).unwrap_err();
    assert!(e.to_string().contains("as listed by"), "{e}");
    assert_eq!(seen.lock().unwrap().len(), 1, "only the index page was read");
    // A file the index does not list is named.
    let e = f.fetch(&package("pypi", "my-pkg", "my_pkg-2.0-py3-none-any.whl", &sha(&body)), cache.path()).unwrap_err();
    assert!(e.to_string().contains("does not list my_pkg-2.0-py3-none-any.whl"), "{e}");
}

#[test]
fn an_npm_tarball_comes_from_its_registry_document() {
    let body = b"npm tarball bytes".to_vec();
    let b2 = body.clone();
    let (base, _) = serve(move |base| {
        let doc = serde_json::json!({"name": "rec", "version": "1.0", "dist": {"tarball": format!("{base}/rec/-/rec-1.0.tgz")}});
        vec![("/rec/1.0".to_string(), doc.to_string().into_bytes()), ("/rec/-/rec-1.0.tgz".to_string(), b2.clone())]
    });
    let cache = tempfile::tempdir().unwrap();
    let f = Fetcher::with_registries(&base, &base, false).unwrap();
    let got = f.fetch(&package("npm", "rec", "rec-1.0.tgz", &sha(&body)), cache.path()).unwrap();
    assert_eq!(std::fs::read(got).unwrap(), body);
    // Offline, a package missing from the cache is an error, not a download.
    let off = Fetcher::with_registries(&base, &base, true).unwrap();
    let e = off.fetch(&package("npm", "rec", "rec-2.0.tgz", &sha(&body)), cache.path()).unwrap_err();
    assert!(e.to_string().contains("--offline"), "{e}");
}
