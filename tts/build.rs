// espeak-ng (vendored by espeak-rs-sys, pulled in by piper-rs) is configured to use the
// system libsonic instead of git-cloning it at build time, but espeak-rs-sys does not
// link it. Debian's libsonic-dev provides it (shared/stack.md, "piper-rs workarounds").
fn main() {
    println!("cargo:rustc-link-lib=dylib=sonic");
    // This crate's own test binaries: there `-lsonic` comes before espeak-ng's static archives
    // (a dependency's), and under the linker's --as-needed (Debian's rustc 1.96 passes it) it
    // is dropped before anything needs it: "undefined reference to sonicCreateStream" when
    // cross-linking for aarch64 (scripts/build-aarch64.sh). The `as-needed` link modifier is
    // still unstable, so keep it with a linker argument (tests, examples, benches of tts only).
    println!("cargo:rustc-link-arg=-Wl,--push-state,--no-as-needed,-lsonic,--pop-state");
    println!("cargo:rerun-if-changed=build.rs");
}
