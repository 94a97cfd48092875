#!/usr/bin/env bash
# Issue 12 §1: the one prepared GPU run — μLM-512-8 from scratch in bf16 on the whole training mix,
# then the paper's SFT stage, then the opener stage, in ≤ 10 minutes of a lent GPU machine.
#
# Here (prepares the carried data, ≈ 15 MB; needs data/train_mix.jsonl, data/valid.jsonl):
#   training/gpu_run.sh prepare
# There (through the device tool, carry ["training/work/gpu-data"], timeout_s 590):
#   bash training/gpu_run.sh train
# Back here, with the files it wrote to $OUT (4 weight shards, weights.json, logs):
#   training/gpu_run.sh join DIR        # → training/work/runs/512-8-gpu/ckpt.pt for export.py
#   make -C training export RUN=work/runs/512-8-gpu EXPORT_DIR=../models/mulm-512-8 TYPE=q4_k
#                                       # 19.5 MB instead of Q8_0's 31.0: small enough to commit
#
# Minutes per stage (PRE_MIN, SFT_MIN, OPEN_MIN) are training time; packing, evaluation and the
# split take the rest of the ≤ 10 minutes. SMOKE=1 runs the same steps on the CPU in ~2 minutes
# (preset 256-8, batch 4, a few hundred dialogues) to check the script before a lease is spent on it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

DATA=training/work/gpu-data
TOK=models/mulm/tokenizer.json
PY=${PY:-python3}

prepare() {
  local py=training/.venv/bin/python
  $py training/pretok.py training/data/train_mix.jsonl "$DATA/train_mix.turns.xz" --tokenizer "$TOK"
  $py training/pretok.py training/data/valid.jsonl "$DATA/valid.turns.xz" --tokenizer "$TOK"
  du -b "$DATA"/*
}

train() {
  local out=${OUT:?OUT: where the weights and logs go back}
  local work=${WORK:-/tmp/fw-gpu} preset=${PRESET:-512-8} dev=(--device "${DEVICE:-auto}")
  local pre=${PRE_MIN:-5.0} sft=${SFT_MIN:-1.0} opn=${OPEN_MIN:-1.0} lim=() bs=64 ea=500 dense=()
  # Dense rows for pretraining and SFT (train.py --pack-rows); the 2026-12-04 run had none
  # (PACK_ROWS=0), and its H200 waited on batches of ≈ 19k tokens.
  if [ "${PACK_ROWS:-1}" = 1 ]; then dense=(--pack-rows); fi
  export PYTHONUNBUFFERED=1
  if [ "${SMOKE:-0}" = 1 ]; then
    preset=256-8 pre=0.1 sft=0.05 opn=0.05 lim=(--limit 300 --valid-limit 50) dev=(--device cpu) bs=4 ea=20
  fi
  mkdir -p "$work" "$out"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true
  $PY -c 'import torch, numpy, tokenizers; print("torch", torch.__version__, "cuda", torch.cuda.is_available())'
  stage() {  # stage NAME ARGS… → $work/NAME; on success its weights and all logs go to $out
    local name=$1 rc
    shift
    set +e
    $PY training/train.py "${common[@]}" --stage "$name" --out "$work/$name" "$@" 2>&1 | tee "$work/$name.log"
    rc=${PIPESTATUS[0]}
    set -e
    echo "gpu_run: stage $name exit $rc at $SECONDS s"
    [ "$rc" = 0 ] || return 1
    rm -f "$out"/weights-*.safetensors
    $PY training/shards.py split "$work/$name/ckpt.pt" "$out" --max-mib 15 || return 1
    echo "$name" > "$out/stage.txt"
    (cd "$work" && shopt -s nullglob && tar -czf "$out/logs.tgz" ./*.log ./*/log.jsonl ./*/run.json)
  }
  local common=(--preset "$preset" --train "$DATA/train_mix.turns.xz" --valid "$DATA/valid.turns.xz"
                --tokenizer "$TOK" --batch-size "$bs" --seq-len 1024 --log-every 50 --eval-batches 8
                --eval-assistant "$ea" --no-eval-at-start --ckpt-every 1000000 "${dev[@]}" "${lim[@]}")
  local opener=(--opener-context 128 --opener-tokens 24)
  # The opener examples are packed on another core while the GPU pretrains.
  $PY training/train.py "${common[@]}" "${opener[@]}" --stage opener --out "$work/opener" --pack-only \
    > "$work/pack-opener.log" 2>&1 &
  local packer=$! last=""
  # Each stage that finishes sends its weights back at once (a later failure or the lease's end
  # still returns the last good stage); a failed stage ends the chain.
  if stage pretrain "${dense[@]}" --lr "${PRE_LR:-8e-4}" --min-warmup 150 --eval-every 1000 --schedule-minutes "$pre"; then
    last=pretrain
    if stage sft "${dense[@]}" --init-from "$work/pretrain/ckpt.pt" --lr 2e-4 --min-warmup 20 --eval-every 1000 \
        --schedule-minutes "$sft"; then
      last=sft
      if wait "$packer" && stage opener "${opener[@]}" --init-from "$work/sft/ckpt.pt" --lr 1e-4 --min-warmup 20 \
          --eval-every 1000 --schedule-minutes "$opn"; then
        last=opener
      fi
    fi
  fi
  cat "$work/pack-opener.log"
  echo "gpu_run: last finished stage: ${last:-none} ($SECONDS s)"
  [ -n "$last" ]
  ls -l "$out"
}

join() {
  local run=training/work/runs/512-8-gpu
  training/.venv/bin/python training/shards.py join "${1:?DIR of the returned files}" "$run/ckpt.pt"
  cp "$TOK" "$run/tokenizer.json"
  [ -f "$1/logs.tgz" ] && tar -xzf "$1/logs.tgz" -C "$run"
  echo "$run/ckpt.pt"
}

case "${1:-}" in
  prepare) prepare ;;
  train) train ;;
  join) join "${2:-}" ;;
  *) echo "usage: $0 prepare | train | join DIR" >&2; exit 2 ;;
esac
