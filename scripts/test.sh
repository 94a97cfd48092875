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

if [ -x training/run.sh ] && [ -d training/tests ]; then
  echo "== training recipe tests (python)"
  bash training/run.sh test
fi

echo "== rust workspace tests"
export FIRSTWORD_REQUIRE_MODELS=1
cargo test --workspace --locked
