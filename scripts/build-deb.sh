#!/usr/bin/env bash
# Build firstword's Debian package with cargo-deb (issue 15 §4).
#
#   scripts/build-deb.sh                 amd64, release profile (builds the binary)
#   scripts/build-deb.sh --profile dev   amd64 from target/debug (what the tests built; the
#                                        package test uses this to spare a release build)
#   scripts/build-deb.sh --arch arm64    arm64 from scripts/build-aarch64.sh's release binary
#
# The package holds the binary (/usr/bin/firstword), configs/firstword.toml as the conffile
# /etc/firstword/firstword.toml, configs/firstword.service, the μLM (models/mulm, in git) and
# espeak-ng-data under /usr/share/firstword. Every other model file is fetched and verified on
# the target by `sudo firstword setup` (configs/assets.toml). Output: target/debian/*.deb;
# the last line printed is the package's path.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PROFILE=release
ARCH=amd64
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) shift; PROFILE="${1:-}" ;;
    --arch) shift; ARCH="${1:-}" ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "build-deb: unknown option '$1'" >&2; exit 2 ;;
  esac
  shift
done
say() { printf 'build-deb: %s\n' "$*" >&2; }
die() { printf 'build-deb: ERROR: %s\n' "$*" >&2; exit 1; }

CARGO_DEB_VERSION=3.8.0
if ! cargo deb --version 2>/dev/null | grep -q "$CARGO_DEB_VERSION"; then
  say "installing cargo-deb $CARGO_DEB_VERSION (crates.io)"
  cargo install --locked --quiet cargo-deb --version "$CARGO_DEB_VERSION"
fi

# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"

case "$ARCH" in
  amd64)
    # The device binary: the daemon package alone, never the lab (lab/, `firstword-lab`).
    cargo build --profile "$PROFILE" --locked -p daemon --bin firstword
    TARGET_ARGS=()
    ;;
  arm64)
    [ "$PROFILE" = release ] || die "arm64 packages are built from the release cross-build only"
    BIN="$ROOT/target/aarch64/aarch64-unknown-linux-gnu/release/firstword"
    [ -x "$BIN" ] || die "no aarch64 binary at $BIN: run scripts/build-aarch64.sh first"
    export CARGO_TARGET_DIR="$ROOT/target/aarch64"
    TARGET_ARGS=(--target aarch64-unknown-linux-gnu)
    ;;
  *) die "unknown architecture '$ARCH' (amd64, arm64)" ;;
esac

DATA="$(host_espeak_data "$ROOT")"
[ -n "$DATA" ] || die "no espeak-ng-data in a host build of espeak-rs-sys (build the workspace first)"
STAGE="$ROOT/target/deb-staging"
rm -rf "$STAGE"; mkdir -p "$STAGE"
cp -r "$DATA" "$STAGE/espeak-ng-data"

mkdir -p "$ROOT/target/debian"
# cargo-deb prints the package's path last. Its output goes to our stderr through a log file
# (tee to /dev/stderr would reopen, and truncate, a log file that stderr points to).
LOG="$ROOT/target/debian/cargo-deb.log"
cargo deb -p daemon --no-build --locked --profile "$PROFILE" "${TARGET_ARGS[@]}" \
  --output "$ROOT/target/debian/" >"$LOG" 2>&1 || { cat "$LOG" >&2; die "cargo deb failed"; }
cat "$LOG" >&2
OUT="$(tail -1 "$LOG")"
[ -f "$OUT" ] || die "cargo deb wrote no package (last line: $OUT)"
say "built $(dpkg-deb -f "$OUT" Package Version Architecture | tr '\n' ' ')"
echo "$OUT"
