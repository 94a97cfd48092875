#!/usr/bin/env bash
# The main job on a fresh machine: set up models, build the release binary, then run a
# recorded question through the pipeline. Output goes to out/.
#
# It replays the recording through the whole pipeline (VAD, Whisper, the μLM opener, Piper,
# and the local cloud continuator, Gemma 3 270M, in-process) and writes out/reply.wav,
# out/timeline.json and out/timeline.svg. Until the training recipe ships a trained μLM in
# models/mulm, a random-weight development checkpoint stands in (its openers are noise).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
IN="${1:-fixtures/audio/fetched/jfk.wav}"

bash scripts/setup.sh
cargo build --release -p daemon
FW=target/release/firstword
mkdir -p out
if [ ! -f models/mulm/mulm.json ]; then
  echo "demo: no trained μLM in models/mulm yet; writing a random-weight development checkpoint" >&2
  "$FW" lm dev-checkpoint --out models/mulm --preset 256-8
fi
exec "$FW" replay "$IN" --out out --cloud-latency-ms "${CLOUD_LATENCY_MS:-800}"
