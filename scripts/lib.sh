# Shell helpers shared by the build scripts (sourced, not run).

# host_espeak_data ROOT: the compiled espeak-ng-data/ of a host build of espeak-rs-sys (its
# dictionaries do not depend on the CPU), or nothing when no build has one. Always succeeds
# (callers run under `set -euo pipefail`: a pipeline over a missing target/release would end
# them silently).
host_espeak_data() {
  local d
  for d in "$1"/target/release/build/espeak-rs-sys-*/out/share/espeak-ng-data \
           "$1"/target/debug/build/espeak-rs-sys-*/out/share/espeak-ng-data; do
    if [ -s "$d/en_dict" ]; then
      echo "$d"
      return 0
    fi
  done
  return 0
}

# apt_install_missing WHO PKG...: installs the Debian packages of PKG... that are not
# installed yet (one apt-get update first), with sudo when not root; WHO prefixes messages.
apt_install_missing() {
  local who="$1"; shift
  local missing=() p sudo=""
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -gt 0 ] || return 0
  printf '%s: installing apt packages: %s\n' "$who" "${missing[*]}" >&2
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq || { printf '%s: ERROR: apt-get update failed\n' "$who" >&2; return 1; }
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || { printf '%s: ERROR: apt-get install failed for: %s\n' "$who" "${missing[*]}" >&2; return 1; }
}
