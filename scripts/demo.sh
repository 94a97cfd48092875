#!/usr/bin/env bash
# The main job on a fresh machine: set up models, build the release binary, then run a
# recorded question through the pipeline. Output goes to out/.
#
# Until the turn pipeline (replay with the μLM opener and the cloud continuation) lands,
# this runs the speech half: Whisper hears the recording, Piper speaks a reply.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
IN="${1:-fixtures/audio/fetched/jfk.wav}"

bash scripts/setup.sh
cargo build --release -p daemon
FW=target/release/firstword
mkdir -p out
if "$FW" --help | grep -q '^  replay'; then
  exec "$FW" replay "$IN" --out out
fi
echo "== heard ($IN):"
"$FW" asr "$IN" --json | tee out/transcript.json
TEXT="$(python3 -c 'import json,sys; print(json.load(open("out/transcript.json"))["text"])')"
"$FW" say "You said: $TEXT" --out out/reply.wav
echo "== spoken reply: out/reply.wav"
