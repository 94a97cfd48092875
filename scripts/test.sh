#!/usr/bin/env bash
# Runs every test of the project on a fresh machine: setup first (scripts/setup.sh and
# scripts/bench-setup.sh, both idempotent; a second run does no network work), then the
# Python tests of the training recipe, the Rust workspace, the Debian package (installed,
# set up, replayed as its service user and removed) and the lm crate under qemu-aarch64.
# Tests that need model files (or the llama.cpp venv) fail (not skip) here.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

bash scripts/setup.sh
# llama.cpp (prebuilt xllamacpp wheel) for the OpenAI-backend test against a real
# llama.cpp server (cloud/tests/llama_cpp_server.rs) and `bench lm --vs-llama-cpp`.
bash scripts/bench-setup.sh
echo "== training recipe tests (python; CPU PyTorch)"
TVENV=training/.venv
PIP_TMP="$ROOT/target/pip-tmp"
if ! "$TVENV/bin/python" -c 'import torch, tokenizers, datasketch, safetensors, gguf' 2>/dev/null; then
  # PyPI's torch is the CUDA build (~2.6 GB of wheels, ~5 GB installed, both on disk while pip
  # runs; ../shared/stack.md). No pip cache copy, and the download's temporary files beside
  # the venv: a small /tmp or a full disk is what stopped earlier CI runs here.
  NEED_MIB=8500
  free_mib() { df -Pm "$1" | awk 'NR==2 {print $4}'; }
  echo "   disk free before torch: $(free_mib "$ROOT") MiB (pip needs about ${NEED_MIB})"
  if [ "${FIRSTWORD_CI:-0}" = 1 ] && [ "$(free_mib "$ROOT")" -lt "$NEED_MIB" ] \
    && [ "$(free_mib "$ROOT/target/")" -ge "$NEED_MIB" ]; then
    # CI on a short disk: .ci/run has put target/ in memory, so the throwaway venv goes there
    # too, and is gone (memory back) before the Rust build.
    TVENV="$ROOT/target/ci-training-venv"
    PIP_TMP="$ROOT/target/ci-pip-tmp"
    echo "   too little disk: the CI venv goes to target/, in memory ($TVENV)"
  fi
  python3 -m venv "$TVENV"
  mkdir -p "$PIP_TMP"
  TMPDIR="$PIP_TMP" "$TVENV/bin/pip" install -q --no-cache-dir \
    -r training/requirements.txt -r training/requirements-torch.txt
  rm -rf "$PIP_TMP"
fi
"$TVENV/bin/python" -m unittest discover -s training/tests
echo "== README tables against their reports (scripts/readme_tables.py; regenerate: python3 scripts/readme_tables.py)"
python3 -m unittest discover -s scripts/tests
python3 scripts/readme_tables.py --check
if [ "${FIRSTWORD_CI:-0}" = 1 ]; then
  # CI only: torch's ~5 GB go before the Rust build needs its own few GB of disk (or memory).
  rm -rf "$TVENV"
fi

echo "== rust formatting (rustfmt.toml; fix with: cargo fmt --all)"
cargo fmt --all --check
echo "== clippy (every target, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== the device build links no lab dependency (lab/ is firstword-lab, beside it)"
LAB_ONLY='^(lab|plotters|font8x8) '
if cargo tree -p daemon -e normal,build --locked --prefix none | grep -E "$LAB_ONLY"; then
  echo "the daemon package depends on the lab's crates above" >&2
  exit 1
fi

echo "== rust workspace tests"
export FIRSTWORD_REQUIRE_MODELS=1
# --no-fail-fast: one failing suite must not hide the results of the others.
cargo test --workspace --locked --no-fail-fast

echo "== soak (short): firstword run on simulated devices, 2 min of conversation, the gateway killed and restarted"
# The full 30-minute figures: python3 scripts/soak.py (docs/results/soak.json; issue 14).
python3 scripts/soak.py --minutes 2 --bin target/debug/firstword --kill-min-s 25 --kill-max-s 45 --out target/soak-short.json

echo "== Debian package: install, firstword setup, check-config, replay as the service user, remove"
bash scripts/test-deb.sh

echo "== aarch64: the lm crate's tests cross-built and run under qemu-user (boards; issue 15)"
# Its Q8_0 NEON dotprod kernel against the scalar definition, and the model, emulated. The
# other crates' tests and the replay comparison take longer under emulation than CI allows:
# scripts/test-aarch64.sh runs them (README, "On a board").
timeout 1800 bash scripts/test-aarch64.sh --lm
