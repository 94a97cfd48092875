#!/usr/bin/env bash
# The main job on a fresh machine: set up models, build the release binary, then run a
# recorded question through the pipeline. Output goes to out/.
#
# It replays the recording through the whole pipeline (VAD, Whisper, the μLM opener, Piper,
# and the local cloud continuator, Gemma 3 270M, in-process) and writes out/reply.wav,
# out/timeline.json and out/timeline.svg. The μLM is the trained checkpoint committed in
# models/mulm (μLM-256-8, Q8_0 GGUF; training/README.md).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
IN="${1:-fixtures/questions/sky.wav}"

bash scripts/setup.sh
cargo build --release -p daemon
FW=target/release/firstword
mkdir -p out
[ -f models/mulm/mulm.json ] || { echo "demo: models/mulm is missing (git checkout -- models/mulm)" >&2; exit 1; }
exec "$FW" replay "$IN" --out out --cloud-latency-ms "${CLOUD_LATENCY_MS:-800}"
