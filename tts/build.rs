// espeak-ng (vendored by espeak-rs-sys, pulled in by piper-rs) is configured to use the
// system libsonic instead of git-cloning it at build time, but espeak-rs-sys does not
// link it. Debian's libsonic-dev provides it (shared/stack.md, "piper-rs workarounds").
fn main() {
    println!("cargo:rustc-link-lib=dylib=sonic");
    println!("cargo:rerun-if-changed=build.rs");
}
