#!/usr/bin/env bash
# Issue 12 §1: the resumable CPU run that continues the shipped μLM (models/mulm/model.gguf)
# on the new training mix. Rerunning the SAME command resumes from $RUN/ckpt.pt (model, optimizer,
# step, RNG); --max-minutes only bounds this invocation, the schedule (--steps) spans all of them.
#
#   training/run_cpu.sh                                    # foreground
#   setsid nohup training/run_cpu.sh > /dev/null 2>&1 &    # detached (log: $RUN/stdout.log)
#   THREADS=2 MAX_MIN=300 training/run_cpu.sh              # both cores when nothing else runs
#   SOURCE=models/mulm-512-8 REFUSALS=10 STEPS=500 LR=1e-4 THREADS=2 MAX_MIN=80 CKPT=50 EVAL_EVERY=250 \
#     training/run_cpu.sh                                  # the GPU run's 512-8 taught to refuse (2026-12-05)
#   TOPICAL=1 THREADS=2 STEPS=3600 LR=1.5e-4 training/run_cpu.sh  # learn only on-topic openers (topical.py)
#   TOPICAL=1 KEEP_OFF=0.3 …                              # … and from 30 % of the off-topic ones
#   STOP_AT=3000 …                                         # stop there; the schedule still spans STEPS
#   TEACHER=4 TOPICAL=1 …                                  # … and Gemma's on-topic openers ×4 (teacher.py)
#   SFT_EVERY=2 …                                          # every 2nd step an SFT batch (all assistant tokens)
#
# Stop: kill "$(cat $RUN/train.pid)" (training/work/runs/<preset>-opener[-refusal][-teacher][-topical[-kSHARE]][-sftN]) — a kill loses at most the steps
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
# A SOURCE given by hand must hold weights (export.py's model.safetensors or a model.gguf): falling
# back silently would train the shipped model under the wrong name.
has_weights() { [ -s "$1/model.safetensors" ] || [ -s "$1/model.gguf" ]; }
if [ -n "${SOURCE:-}" ]; then
  has_weights "$SOURCE" || { echo "SOURCE=$SOURCE holds no model.safetensors or model.gguf" >&2; exit 1; }
else
  SOURCE=models/mulm-candidate
  has_weights "$SOURCE" || SOURCE=models/mulm
fi
# REFUSALS=N adds training/safety/refusals.py's dialogues (harmful prompt → short refusal) N
# times over to the mix (issue 12 §2); 0 trains on the mix alone.
REFUSALS=${REFUSALS:-0}
# TOPICAL=1 learns only from replies whose first 8 words share a content word with the user turn
# (training/topical.py marks the others `"opener": false`; they stay as context).
TOPICAL=${TOPICAL:-0}
# TEACHER=N adds training/teacher.py's dialogues (a mix question → the first sentence of Gemma 3
# 270M's few-shot reply, on topic) N times over to the mix; run teacher.py first (resumable).
TEACHER=${TEACHER:-0}
# KEEP_OFF=SHARE (with TOPICAL=1) also learns from that share of the off-topic replies: on-topic
# openers weighted up rather than learned from alone (topical.py --keep-off-topic).
KEEP_OFF=${KEEP_OFF:-0}
# SFT_EVERY=N (opener stage): every Nth step trains on SFT windows of the same dialogues (loss on
# every assistant token), so the opener stage keeps the SFT stage's assistant-token loss
# (TRAINING.md: run in turn, each stage undid the other's gain within a few hundred steps).
SFT_EVERY=${SFT_EVERY:-0}
EVAL_EVERY=${EVAL_EVERY:-200}
# The preset is the source's (the shipped models/mulm is μLM-256-8; an export of the GPU run,
# models/mulm-512-8, continues as 512-8).
PRESET=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["preset"])' "$SOURCE/mulm.json")
KSUF=$([ "$TOPICAL" = 0 ] || [ "$KEEP_OFF" = 0 ] || echo "-k$KEEP_OFF")
SUFFIX=$([ "$REFUSALS" = 0 ] || echo "-refusal")$([ "$TEACHER" = 0 ] || echo "-teacher")$([ "$TOPICAL" = 0 ] || echo "-topical")$KSUF
SUFFIX=$SUFFIX$([ "$SFT_EVERY" = 0 ] || echo "-sft$SFT_EVERY")
RUN=${RUN:-training/work/runs/$PRESET-$STAGE$SUFFIX}

[ -s training/data/train.jsonl ] || make -C training prepare
[ -s training/data/train_mix.jsonl ] || $PY training/mix.py
if [ -s "$SOURCE/model.safetensors" ]; then
  INIT=$SOURCE/model.safetensors  # export.py's f32 weights: no Q8_0 round trip
else
  INIT=training/work/init/$(basename "$SOURCE")-$PRESET.pt
  [ -s "$INIT" ] || { mkdir -p "$(dirname "$INIT")"; $PY training/ggufload.py "$SOURCE/model.gguf" --out "$INIT"; }
fi
MIX=training/data/train_mix.jsonl
if [ "$TOPICAL" != 0 ]; then
  MIX=training/work/train_mix_topical$KSUF.jsonl
  # rebuilt when the mix or the rule changed
  { [ "$MIX" -nt training/data/train_mix.jsonl ] && [ "$MIX" -nt training/topical.py ]; } ||
    $PY training/topical.py training/data/train_mix.jsonl --out "$MIX" --keep-off-topic "$KEEP_OFF" \
      > "training/work/topical_stats$KSUF.json"
fi
TRAIN=$MIX
# Appended after topical.py: a refusal shares no word with its request, and teacher.py keeps
# only on-topic replies already.
if [ "$REFUSALS" != 0 ] || [ "$TEACHER" != 0 ]; then
  TRAIN=training/work/train_mix$SUFFIX.jsonl
  if [ "$REFUSALS" != 0 ] && [ ! -s training/work/refusals.jsonl ]; then
    $PY training/safety/refusals.py --out training/work/refusals.jsonl
  fi
  if [ "$TEACHER" != 0 ]; then
    # A new machine: the committed archive (training/archive/, `teacher.py --archive`) first.
    [ -s training/work/teacher.jsonl ] || $PY training/teacher.py --restore > /dev/null
    if [ ! -s training/work/teacher.jsonl ]; then
      echo "TEACHER=$TEACHER: training/work/teacher.jsonl is missing; run training/teacher.py first" >&2
      exit 1
    fi
    # The mix's 1 % cap on a 3-word reply opening, within the teacher's replies too (Gemma opens
    # 5 % of them "A good way …"): topical.py marks the excess, so the union stays under it.
    $PY training/topical.py training/work/teacher.jsonl --out training/work/teacher_capped.jsonl \
      > training/work/teacher_stats.json
  fi
  { cat "$MIX"
    for _ in $(seq "$REFUSALS"); do cat training/work/refusals.jsonl; done
    for _ in $(seq "$TEACHER"); do cat training/work/teacher_capped.jsonl; done; } > "$TRAIN"
fi
mkdir -p "$RUN"
echo $$ > "$RUN/train.pid"
# `nice` below orders processes within one session only: the kernel's autogroup scheduling
# shares the CPU between sessions first, so a detached run (setsid, its own session) at nice 10
# still took half the CPU from a CI run beside it (its 2-minute soak fell behind real time,
# 2026-12-06). A run that leads its own session lowers that session's share instead.
if [ "$(ps -o sid= -p $$ | tr -d ' ')" = "$$" ] && [ -w /proc/self/autogroup ]; then
  echo 19 > /proc/self/autogroup 2>/dev/null || true
fi
echo "== $(date -u '+%F %T UTC') start/resume: stage $STAGE, threads $THREADS, max $MAX_MIN min" >> "$RUN/stdout.log"
exec nice -n 10 $PY training/train.py --preset "$PRESET" --stage "$STAGE" --out "$RUN" \
  --train "$TRAIN" --valid training/data/valid.jsonl \
  --tokenizer models/mulm/tokenizer.json --init-from "$INIT" \
  --batch-size 32 --seq-len 256 --opener-context 128 --opener-tokens 24 \
  --steps "$STEPS" --lr "$LR" --min-warmup 20 --threads "$THREADS" --sft-every "$SFT_EVERY" \
  --log-every 5 --eval-every "$EVAL_EVERY" --eval-batches 4 --eval-assistant 500 --ckpt-every "$CKPT" \
  --max-minutes "$MAX_MIN" ${STOP_AT:+--stop-at "$STOP_AT"} >> "$RUN/stdout.log" 2>&1
