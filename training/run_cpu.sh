#!/usr/bin/env bash
# Issue 12 §1: the resumable CPU run that continues the shipped μLM (models/mulm/model.gguf)
# on the new training mix. Rerunning the SAME command resumes from $RUN/ckpt.pt (model, optimizer,
# step, RNG); --max-minutes only bounds this invocation, the schedule (--steps) spans all of them.
#
#   training/run_cpu.sh                                    # foreground
#   setsid nohup training/run_cpu.sh > /dev/null 2>&1 &    # detached (log: $RUN/stdout.log)
#   THREADS=2 MAX_MIN=300 training/run_cpu.sh              # both cores when nothing else runs
#
# Stop: kill "$(cat training/work/runs/512-8-opener/train.pid)" — a kill loses at most the steps
# since the last checkpoint (every CKPT steps ≈ 10 min on one thread); a run that reaches
# --max-minutes stops with a checkpoint. Export/evaluate any time:
#   training/.venv/bin/python training/export.py --ckpt $RUN/ckpt.pt --out models/mulm-512-8-opener
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PY=training/.venv/bin/python
STAGE=${STAGE:-opener}
THREADS=${THREADS:-1}
MAX_MIN=${MAX_MIN:-110}
STEPS=${STEPS:-3000}      # ≈ 1 epoch of the opener examples at batch 32 (≈ 6–7 CPU-hours on one loaded thread)
LR=${LR:-3e-4}            # peak; the shipped run ended at 1e-4, 5e-4 disturbed it more in a 4-min probe
CKPT=${CKPT:-75}
# Where the weights start when $RUN has no ckpt.pt yet (a new machine: training/work is not
# committed): the committed candidate of the previous session's run (models/mulm-candidate, the
# Q8_0 export of its last checkpoint; the optimizer state and schedule position start afresh),
# else the shipped model.
SOURCE=${SOURCE:-models/mulm-candidate}
[ -s "$SOURCE/model.gguf" ] || SOURCE=models/mulm
# The preset is the source's (models/mulm is μLM-512-8 since 2026-12-04, the GPU run).
PRESET=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["preset"])' "$SOURCE/mulm.json")
INIT=training/work/init/$(basename "$SOURCE")-$PRESET.pt
RUN=${RUN:-training/work/runs/$PRESET-$STAGE}

[ -s training/data/train.jsonl ] || make -C training prepare
[ -s training/data/train_mix.jsonl ] || $PY training/mix.py
[ -s "$INIT" ] || { mkdir -p "$(dirname "$INIT")"; $PY training/ggufload.py "$SOURCE/model.gguf" --out "$INIT"; }
mkdir -p "$RUN"
echo $$ > "$RUN/train.pid"
echo "== $(date -u '+%F %T UTC') start/resume: stage $STAGE, threads $THREADS, max $MAX_MIN min" >> "$RUN/stdout.log"
exec nice -n 10 $PY training/train.py --preset "$PRESET" --stage "$STAGE" --out "$RUN" \
  --train training/data/train_mix.jsonl --valid training/data/valid.jsonl \
  --tokenizer models/mulm/tokenizer.json --init-from "$INIT" \
  --batch-size 32 --seq-len 256 --opener-context 128 --opener-tokens 24 \
  --steps "$STEPS" --lr "$LR" --min-warmup 20 --threads "$THREADS" \
  --log-every 5 --eval-every 200 --eval-batches 4 --eval-assistant 500 --ckpt-every "$CKPT" \
  --max-minutes "$MAX_MIN" >> "$RUN/stdout.log" 2>&1
