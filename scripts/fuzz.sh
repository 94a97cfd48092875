#!/usr/bin/env bash
# Coverage-guided fuzzing of every parser that takes outside input (issue 14): the WAV
# reader, protocol frames, config files, GGUF headers, the TTS text normaliser and the seam
# filter. libFuzzer via cargo-fuzz on the nightly toolchain (rustup's nightly must already be
# installed: rustup cannot download one here). Each target runs RUNS inputs (default 1M) from
# seeds taken from the repository's own files; a crash stops the script with libFuzzer's
# reproducer under fuzz/artifacts/<target>/. Writes docs/results/fuzz.json.
#   scripts/fuzz.sh [--runs N] [target ...]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

RUNS=1000000
TARGETS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS="$2"; shift 2 ;;
    -h|--help) sed -n 2,8p "$0"; exit 0 ;;
    *) TARGETS+=("$1"); shift ;;
  esac
done
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(wav protocol config gguf_header tts_normalize seam_filter)

rustup toolchain list | grep -q '^nightly' || { echo "fuzz: no nightly toolchain (rustup toolchain list)" >&2; exit 1; }
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --version 0.13.2 --locked

# Seeds: small real inputs of each kind.
seed() { mkdir -p "fuzz/corpus/$1"; }
seed wav
for f in fixtures/voices/egg.wav fixtures/voices/timer.wav; do head -c 16384 "$f" > "fuzz/corpus/wav/$(basename "$f")"; done
python3 - <<'PY'
import struct, wave, io, pathlib
# 8-bit, 24-bit, 32-bit float, stereo and a WAVE_FORMAT_EXTENSIBLE-free short file.
for name, width, ch in [("u8", 1, 1), ("s24", 3, 2), ("s16_stereo", 2, 2)]:
    b = io.BytesIO()
    with wave.open(b, "wb") as w:
        w.setnchannels(ch); w.setsampwidth(width); w.setframerate(22050)
        w.writeframes(bytes(range(64)) * width * ch)
    pathlib.Path(f"fuzz/corpus/wav/{name}.wav").write_bytes(b.getvalue())
data = struct.pack("<4f", 0.0, 0.5, -0.5, 1.0)
fmt = struct.pack("<HHIIHH", 3, 1, 16000, 64000, 4, 32)
riff = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
pathlib.Path("fuzz/corpus/wav/f32.wav").write_bytes(b"RIFF" + struct.pack("<I", len(riff)) + riff)
PY
seed protocol
printf '%s' '{"type":"hello","token":"abcdefgh1234","client":"fuzz","protocol":1}' > fuzz/corpus/protocol/hello.json
printf '%s' '{"type":"continue","id":7,"messages":[{"role":"user","content":"why is the sky blue"}],"opener":"The sky looks blue","opener_complete":false,"max_tokens":64}' > fuzz/corpus/protocol/continue.json
printf '%s' '{"type":"cancel","id":7}' > fuzz/corpus/protocol/cancel.json
printf '%s' '{"type":"delta","id":7,"text":" because of"}' > fuzz/corpus/protocol/delta.json
printf '%s' '{"type":"done","id":7,"finish":"stop"}' > fuzz/corpus/protocol/done.json
seed config
cp configs/*.toml fuzz/corpus/config/
awk '/^\[vad\]/{f=1;next} /^\[/{f=0} f' configs/firstword.toml > fuzz/corpus/config/vad_table.toml
awk '/^\[tts\]/{f=1;next} /^\[/{f=0} f' configs/firstword.toml > fuzz/corpus/config/tts_table.toml
seed gguf_header
for f in models/mulm/model.gguf; do
  [ -f "$f" ] && head -c 65536 "$f" > "fuzz/corpus/gguf_header/$(basename "$(dirname "$f")").gguf"
done
seed tts_normalize
printf '%s' 'It is 3:45 pm on Dec. 2nd, 2026 — about 12.5°C & 80% humidity; call +1 (555) 010-2030, or see https://example.com/a?b=c.' > fuzz/corpus/tts_normalize/mixed.txt
printf '%s' '**Bold** _text_, `code`, 1st, 22nd, $4.99, 1/2, e.g. Dr. Smith vs. Mr. Jones...' > fuzz/corpus/tts_normalize/markdown.txt
seed seam_filter
printf 'The capital of France is\xffSure, continuing: The capital\xff of France is\xff Paris.' > fuzz/corpus/seam_filter/restate.bin
printf 'Use a small piece of\xff<repair> Actually, \xffboil the egg for nine minutes.' > fuzz/corpus/seam_filter/repair.bin

REV="$(git rev-parse --short HEAD)"
NIGHTLY="$(rustc +nightly --version)"
RESULTS=()
for t in "${TARGETS[@]}"; do
  echo "== fuzz $t ($RUNS runs)"
  log="fuzz/artifacts/$t.log"
  mkdir -p "fuzz/artifacts/$t"
  start=$(date +%s)
  # --sanitizer none: libFuzzer's coverage without ASan (the targets are safe Rust; a panic
  # aborts and is reported). -rss_limit_mb guards against input-driven allocations.
  if ! cargo +nightly fuzz run --fuzz-dir fuzz --sanitizer none "$t" "fuzz/corpus/$t" -- \
      -runs="$RUNS" -max_len=65536 -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 >"$log" 2>&1; then
    tail -40 "$log"
    echo "fuzz: $t failed; reproducer under fuzz/artifacts/$t/" >&2
    exit 1
  fi
  secs=$(( $(date +%s) - start ))
  done_runs=$(grep -o 'Done [0-9]* runs' "$log" | tail -1 | grep -o '[0-9]*')
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo 0)
  corpus=$(ls "fuzz/corpus/$t" | wc -l)
  echo "   $done_runs runs in $secs s, coverage $cov edges, corpus $corpus"
  RESULTS+=("{\"target\": \"$t\", \"runs\": $done_runs, \"seconds\": $secs, \"crashes\": 0, \"coverage_edges\": $cov, \"corpus_files\": $corpus}")
done

mkdir -p docs/results
{
  echo "{"
  echo "  \"date\": \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\","
  echo "  \"commit\": \"$REV\","
  echo "  \"toolchain\": \"$NIGHTLY\","
  echo "  \"engine\": \"libFuzzer (cargo-fuzz, --sanitizer none)\","
  echo "  \"targets\": ["
  for i in "${!RESULTS[@]}"; do
    sep=","; [ "$i" -eq $((${#RESULTS[@]} - 1)) ] && sep=""
    echo "    ${RESULTS[$i]}$sep"
  done
  echo "  ]"
  echo "}"
} > docs/results/fuzz.json
echo "fuzz: wrote docs/results/fuzz.json"
