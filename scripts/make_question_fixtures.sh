#!/usr/bin/env bash
# Regenerates fixtures/questions/*.wav from fixtures/questions/questions.toml with the Piper
# voice (`firstword say --rate 16000 --pad-ms 600`). Piper samples noise, so a rerun gives
# slightly different audio: the committed WAVs are the reference inputs; rerun only when the
# question list changes.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BIN="${FIRSTWORD_BIN:-target/release/firstword}"
[ -x "$BIN" ] || cargo build --release -p daemon --bin firstword
python3 - <<'PY' | while IFS=$'\t' read -r id text; do
import tomllib
for q in tomllib.load(open("fixtures/questions/questions.toml", "rb"))["question"]:
    print(f"{q['id']}\t{q['text']}")
PY
  "$BIN" ${FIRSTWORD_CONFIG:+--config "$FIRSTWORD_CONFIG"} say "$text" --out "fixtures/questions/$id.wav" --rate 16000 --pad-ms 600
done
