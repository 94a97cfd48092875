# Shell helpers shared by the build scripts (sourced, not run).

# host_espeak_data ROOT: the compiled espeak-ng-data/ of a host build of espeak-rs-sys (its
# dictionaries do not depend on the CPU), or nothing when no build has one.
host_espeak_data() {
  ls -d "$1"/target/{release,debug}/build/espeak-rs-sys-*/out/share/espeak-ng-data 2>/dev/null \
    | while read -r d; do [ -s "$d/en_dict" ] && echo "$d"; done | head -1
}
