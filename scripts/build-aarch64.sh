#!/usr/bin/env bash
# Cross-build firstword for aarch64-unknown-linux-gnu boards (Raspberry Pi 5, Orange Pi 5:
# Cortex-A76) on an x86-64 Debian 12 machine, from Debian packages only (issue 15 §1).
#
#   scripts/build-aarch64.sh                  release binary and espeak-ng data: target/aarch64/dist/
#   scripts/build-aarch64.sh --tests          also the lm, audio, asr and tts test binaries (for scripts/test-aarch64.sh)
#   scripts/build-aarch64.sh --no-apt ...     skip the apt step (packages already installed)
#   scripts/build-aarch64.sh --env            print the cross environment (to `eval` for other cargo commands)
#   scripts/build-aarch64.sh --only-env-check install and check the toolchain, build nothing
#
# Why Debian's Rust: rustup cannot download another target's standard library here, but
# bookworm's rustc-web/cargo-web (1.96) with libstd-rust-web-dev:arm64 is a complete aarch64
# toolchain from packages (../shared/stack.md). It lives in /usr/bin beside rustup's; this
# script calls it by path and builds into its own target dir (target/aarch64) so the two
# compilers never invalidate each other's artifacts.
#
# Native code: whisper.cpp's ggml is built portable (GGML_NATIVE=OFF) for the Cortex-A76
# feature set (armv8.2-a + dotprod + fp16: Raspberry Pi 5, Orange Pi 5, not a Pi 4's A72);
# espeak-ng, oniguruma and ring with Debian's aarch64-linux-gnu gcc; CMake gets a toolchain
# file. espeak-ng skips compiling its dictionaries when cross-compiling: dist/ takes them from
# a host build (below). Rust code stays generic aarch64: lm::q8 picks its dotprod kernel at
# run time.
#
# qemu-user runs aarch64 programs with the multiarch arm64 glibc (`-L /`, libc6:arm64): with
# the cross toolchain's copy (`-L /usr/aarch64-linux-gnu`) Debian 12's qemu 7.2 hangs in the
# guest's first pthread_create.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"
TARGET=aarch64-unknown-linux-gnu
TDIR="$ROOT/target/aarch64"
APT=1 TESTS=0 PRINT_ENV=0 BUILD=1
for arg in "$@"; do
  case "$arg" in
    --no-apt) APT=0 ;;
    --tests) TESTS=1 ;;
    --env) PRINT_ENV=1 ;;
    --only-env-check) BUILD=0 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "build-aarch64: unknown option '$arg'" >&2; exit 2 ;;
  esac
done
say() { printf 'build-aarch64: %s\n' "$*" >&2; }
die() { printf 'build-aarch64: ERROR: %s\n' "$*" >&2; exit 1; }

# ------------------------------------------------------------------ packages
PKGS=(rustc-web cargo-web libstd-rust-web-dev:arm64 gcc-aarch64-linux-gnu g++-aarch64-linux-gnu
      libc6-dev-arm64-cross libc6:arm64 libgomp1:arm64 libasound2-dev:arm64 libsonic-dev:arm64 qemu-user cmake libclang-dev pkg-config)
if [ "$APT" = 1 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    say "adding the arm64 architecture to dpkg"
    $SUDO dpkg --add-architecture arm64
    $SUDO apt-get update -qq || die "apt-get update failed"
  fi
  apt_install_missing build-aarch64 "${PKGS[@]}" || exit 1
fi
for tool in /usr/bin/cargo /usr/bin/rustc aarch64-linux-gnu-gcc qemu-aarch64; do
  command -v "$tool" >/dev/null || die "$tool is missing (run without --no-apt)"
done
[ -d /usr/lib/rustlib/$TARGET ] || die "the aarch64 standard library is missing (libstd-rust-web-dev:arm64)"

# ------------------------------------------------------------------ cross environment
mkdir -p "$TDIR"
TOOLCHAIN="$TDIR/toolchain.cmake"
cat > "$TOOLCHAIN.tmp" <<'EOF'
# Written by scripts/build-aarch64.sh: CMake cross-compiling to aarch64 Linux with Debian's gcc.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
# Build-time tools that CMake runs (espeak-ng compiles its dictionaries with the binary it built).
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64;-L;/)
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu /usr/lib/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
EOF
mv "$TOOLCHAIN.tmp" "$TOOLCHAIN"

cross_env() {
  cat <<EOF
export CARGO_TARGET_DIR='$TDIR'
export RUSTC=/usr/bin/rustc
export RUSTDOC=/usr/bin/rustdoc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER='qemu-aarch64 -L / -cpu max'
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
export CXX_aarch64_unknown_linux_gnu=aarch64-linux-gnu-g++
export AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
export CMAKE_TOOLCHAIN_FILE_aarch64_unknown_linux_gnu='$TOOLCHAIN'
export PKG_CONFIG_ALLOW_CROSS=1
export PKG_CONFIG_LIBDIR_aarch64_unknown_linux_gnu=/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig
export BINDGEN_EXTRA_CLANG_ARGS_aarch64_unknown_linux_gnu='--sysroot=/usr/aarch64-linux-gnu -I/usr/include'
export GGML_NATIVE=OFF
export GGML_CPU_ARM_ARCH=armv8.2-a+dotprod+fp16
export QEMU_LD_PREFIX=/
EOF
}
if [ "$PRINT_ENV" = 1 ]; then cross_env; exit 0; fi
[ "$BUILD" = 1 ] || exit 0
eval "$(cross_env)"

cd "$ROOT"
say "building firstword (release) for $TARGET with $(/usr/bin/rustc --version)"
/usr/bin/cargo build --release --locked --target $TARGET -p daemon --bin firstword
BIN="$TDIR/$TARGET/release/firstword"
[ -x "$BIN" ] || die "no binary at $BIN"
file "$BIN" 2>/dev/null | grep -q "ARM aarch64" || die "$BIN is not an aarch64 executable: $(file "$BIN" 2>/dev/null)"

# What goes on the board: the binary with espeak-ng's data beside it (espeak-rs looks there).
# espeak-ng skips compiling its dictionaries when cross-compiling, and they do not depend on
# the CPU (little-endian data files), so they come from a host build of the same espeak-ng.
DATA="$(host_espeak_data "$ROOT")"
if [ -z "$DATA" ]; then
  say "building espeak-ng for the host once, for its compiled dictionaries"
  (unset CARGO_TARGET_DIR RUSTC RUSTDOC; cd "$ROOT" && cargo build --locked -p espeak-rs-sys)
  DATA="$(host_espeak_data "$ROOT")"
  [ -n "$DATA" ] || die "no espeak-ng-data with en_dict in a host build of espeak-rs-sys"
fi
DIST="$TDIR/dist"
rm -rf "$DIST.tmp"; mkdir -p "$DIST.tmp"
cp "$BIN" "$DIST.tmp/firstword"
cp -r "$DATA" "$DIST.tmp/espeak-ng-data"
rm -rf "$DIST"; mv "$DIST.tmp" "$DIST"
if [ "$TESTS" = 1 ]; then
  say "building the lm, audio, asr and tts test binaries"
  /usr/bin/cargo test --release --locked --target $TARGET -p lm -p audio -p asr -p tts --no-run
fi
say "done: $DIST/firstword (with espeak-ng-data beside it)"
