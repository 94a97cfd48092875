#!/usr/bin/env bash
# Test the aarch64 build under qemu-user on this x86-64 machine (issue 15 §2):
#   1. the lm, audio, asr and tts crate tests, cross-built and run by qemu-aarch64 (-cpu max,
#      so lm::q8's dotprod kernel runs and is compared bit for bit with its scalar definition);
#   2. one `firstword replay` of a fixture by the aarch64 binary and by the x86-64 one: the
#      transcript and the opener must be equal.
#
#   scripts/test-aarch64.sh              both
#   scripts/test-aarch64.sh --crates     only 1
#   scripts/test-aarch64.sh --lm         only 1, for the lm crate (the part CI runs: its Q8_0
#                                        kernels and the model under emulation)
#   scripts/test-aarch64.sh --replay     only 2
#   FIXTURE=fixtures/voices/egg.wav X86_BIN=target/debug/firstword scripts/test-aarch64.sh --replay
#
# Needs scripts/build-aarch64.sh's packages (it runs it) and the models of scripts/setup.sh,
# plus onnxruntime's aarch64 library (fetched here with `setup.sh --arch aarch64`).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TARGET=aarch64-unknown-linux-gnu
CRATES=1 REPLAY=1 APT_FLAG="" PKGS=(-p lm -p audio -p asr -p tts)
for arg in "$@"; do
  case "$arg" in
    --crates) REPLAY=0 ;;
    --lm) REPLAY=0; PKGS=(-p lm) ;;
    --replay) CRATES=0 ;;
    --no-apt) APT_FLAG=--no-apt ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "test-aarch64: unknown option '$arg'" >&2; exit 2 ;;
  esac
done
say() { printf 'test-aarch64: %s\n' "$*" >&2; }
die() { printf 'test-aarch64: ERROR: %s\n' "$*" >&2; exit 1; }

bash scripts/setup.sh --no-apt --arch aarch64
# The lm tests alone need no firstword binary; the replay and the tts tests need its
# target/aarch64/dist (the binary with the espeak-ng data beside it).
if [ "${PKGS[*]}" = "-p lm" ]; then
  bash scripts/build-aarch64.sh $APT_FLAG --only-env-check
else
  bash scripts/build-aarch64.sh $APT_FLAG
fi
eval "$(bash scripts/build-aarch64.sh --no-apt --env)"
export ORT_DYLIB_PATH="$ROOT/models/onnxruntime-aarch64/libonnxruntime.so.1.24.2"
export FIRSTWORD_REQUIRE_MODELS=1
export PIPER_ESPEAKNG_DATA_DIRECTORY="$CARGO_TARGET_DIR/dist"
T0=$(date +%s)

if [ "$CRATES" = 1 ]; then
  say "crate tests under qemu-aarch64 -cpu max"
  /usr/bin/cargo test --release --locked --target $TARGET "${PKGS[@]}"
  say "crate tests passed in $(( $(date +%s) - T0 )) s"
fi

if [ "$REPLAY" = 1 ]; then
  FIXTURE="${FIXTURE:-fixtures/voices/egg.wav}"
  OUT="$ROOT/target/aarch64/replay"
  rm -rf "$OUT"; mkdir -p "$OUT/x86_64" "$OUT/aarch64"
  # The same config for both, except the onnxruntime library of each architecture.
  sed "s|models/onnxruntime/libonnxruntime.so.1.24.2|$ORT_DYLIB_PATH|" configs/firstword.toml > "$OUT/aarch64.toml"
  grep -q "onnxruntime-aarch64" "$OUT/aarch64.toml" || die "could not point the config at the aarch64 onnxruntime"
  say "replay $FIXTURE on x86-64"
  # X86_BIN: an x86-64 firstword already built (e.g. target/debug/firstword: the μLM and its
  # kernels are optimised in every profile); default: build the release binary.
  X86="${X86_BIN:-}"
  if [ -z "$X86" ]; then
    (unset CARGO_TARGET_DIR RUSTC RUSTDOC; cargo build --release --locked -p daemon --bin firstword)
    X86=target/release/firstword
  fi
  "$X86" replay "$FIXTURE" --out "$OUT/x86_64" --config configs/firstword.toml > "$OUT/x86_64.log" 2>&1 \
    || { tail -20 "$OUT/x86_64.log" >&2; die "x86-64 replay failed"; }
  say "replay $FIXTURE on aarch64 (qemu)"
  T1=$(date +%s)
  # The board's layout: target/aarch64/dist holds the binary with espeak-ng-data beside it.
  qemu-aarch64 -L / -cpu max "$CARGO_TARGET_DIR/dist/firstword" \
    replay "$FIXTURE" --out "$OUT/aarch64" --config "$OUT/aarch64.toml" > "$OUT/aarch64.log" 2>&1 \
    || { tail -20 "$OUT/aarch64.log" >&2; die "aarch64 replay failed"; }
  say "aarch64 replay took $(( $(date +%s) - T1 )) s under qemu"
  python3 - "$OUT/x86_64/timeline.json" "$OUT/aarch64/timeline.json" <<'PY'
import json, sys
def turns(path):
    t = json.load(open(path))
    # What was heard, what the μLM wrote, and what was spoken of it (after the gate).
    return [(x.get("transcript"), x.get("mulm_opener"), x.get("opener_text")) for x in t.get("turns", [])]
a, b = turns(sys.argv[1]), turns(sys.argv[2])
print(f"x86-64 : {a}\naarch64: {b}")
if not a or any(None in turn or not turn[0] or not turn[1] for turn in a):
    sys.exit("test-aarch64: the x86-64 timeline lacks a transcript or opener in some turn")
if a != b:
    sys.exit("test-aarch64: FAIL: transcript or opener differs between x86-64 and aarch64")
print("test-aarch64: replay identical (transcript and opener)")
PY
fi
say "all passed in $(( $(date +%s) - T0 )) s"
