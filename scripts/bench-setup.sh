#!/usr/bin/env bash
# Bench setup (not a build dependency): a Python venv with llama.cpp for
# `firstword bench lm --vs-llama-cpp`, at ~/.cache/firstword/bench-venv.
#
# Installs the prebuilt `xllamacpp` wheel (llama.cpp compiled in; no compiler needed), pinned
# by version and sha256. Only if that fails and FIRSTWORD_BENCH_ALLOW_BUILD=1 is set does it fall
# back to `llama-cpp-python`, which compiles llama.cpp from source (minutes on 2 cores) and which
# scripts/bench_llama_cpp.py does not drive yet.
#
# Usage: scripts/bench-setup.sh            (idempotent; re-run to repair)
set -euo pipefail

VENV="${FIRSTWORD_BENCH_VENV:-$HOME/.cache/firstword/bench-venv}"
CACHE="$HOME/.cache/firstword/packages"
XLLAMACPP_VERSION="2026.10.11549"
XLLAMACPP_WHEEL="xllamacpp-${XLLAMACPP_VERSION}-cp310-abi3-manylinux2014_x86_64.manylinux_2_17_x86_64.whl"
XLLAMACPP_SHA256="c54e7d13520ecc989c63dc99d55de3065e2f343a91f43f053d16b5e62077c261"
LLAMA_CPP_PYTHON_VERSION="0.3.16"

PY="${PYTHON:-python3}"
mkdir -p "$CACHE"
if [ ! -x "$VENV/bin/python" ]; then
    echo "creating venv $VENV"
    "$PY" -m venv "$VENV"
fi

installed() { "$VENV/bin/python" -c "import xllamacpp, sys; sys.exit(xllamacpp.__version__ != '$XLLAMACPP_VERSION')" 2>/dev/null; }

if installed; then
    echo "xllamacpp $XLLAMACPP_VERSION already in $VENV"
    exit 0
fi

wheel="$CACHE/$XLLAMACPP_WHEEL"
if [ ! -f "$wheel" ]; then
    echo "downloading xllamacpp==$XLLAMACPP_VERSION (prebuilt llama.cpp, ~34 MB)"
    "$VENV/bin/pip" download --no-deps -d "$CACHE" "xllamacpp==$XLLAMACPP_VERSION" || true
fi
if [ -f "$wheel" ]; then
    got=$(sha256sum "$wheel" | cut -d' ' -f1)
    if [ "$got" != "$XLLAMACPP_SHA256" ]; then
        echo "sha256 mismatch for $wheel: $got (expected $XLLAMACPP_SHA256)" >&2
        exit 1
    fi
    # No dependencies are needed at runtime (orjson/gguf are optional extras).
    "$VENV/bin/pip" install --no-deps --force-reinstall "$wheel"
fi

if installed; then
    echo "ok: llama.cpp via xllamacpp $XLLAMACPP_VERSION in $VENV"
    "$VENV/bin/python" -c "import xllamacpp as x; print('llama.cpp build', x.BUILD_INFO)"
    exit 0
fi

if [ "${FIRSTWORD_BENCH_ALLOW_BUILD:-0}" = "1" ]; then
    echo "xllamacpp unavailable; building llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION from source (slow)" >&2
    CMAKE_ARGS="-DGGML_NATIVE=ON" "$VENV/bin/pip" install "llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION"
    echo "note: scripts/bench_llama_cpp.py drives xllamacpp; llama-cpp-python is installed for manual use" >&2
    exit 0
fi
echo "could not install xllamacpp $XLLAMACPP_VERSION into $VENV (set FIRSTWORD_BENCH_ALLOW_BUILD=1 to build llama-cpp-python)" >&2
exit 1
