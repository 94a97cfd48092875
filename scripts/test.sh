#!/usr/bin/env bash
# Runs every test of the project on a fresh machine: setup first (idempotent; a second run
# does no network work), then the Python tests of the Whisper converter and the training
# recipe, then the Rust workspace. Tests that need model files fail (not skip) here.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

bash scripts/setup.sh
CACHE="${FIRSTWORD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/firstword/packages}"
PY="$(dirname "$CACHE")/pyenv/bin/python"

echo "== converter tests (python)"
"$PY" -m unittest discover -s scripts -p 'test_*.py'

echo "== training recipe tests (python; CPU PyTorch)"
TVENV=training/.venv
if ! "$TVENV/bin/python" -c 'import torch, tokenizers, datasketch, safetensors' 2>/dev/null; then
  python3 -m venv "$TVENV"
  "$TVENV/bin/pip" install -q -r training/requirements.txt -r training/requirements-torch.txt
fi
"$TVENV/bin/python" -m unittest discover -s training/tests

echo "== rust workspace tests"
export FIRSTWORD_REQUIRE_MODELS=1
cargo test --workspace --locked
