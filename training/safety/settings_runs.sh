#!/usr/bin/env bash
# The two report directories `check_settings.py` reads, for the weights in MODEL_DIR with the
# check `configs/firstword.toml` names: OUT-biased (the prompt bias on every question) and
# OUT-unbiased (no bias). Each gets eval everyday, openers and safety, the gate's validation set
# (gate_valid) and the held-out StrongREJECT prompts (sr).
#
#   bash training/safety/settings_runs.sh models/mulm /tmp/settings
#   training/.venv/bin/python training/safety/check_settings.py /tmp/settings-biased /tmp/settings-unbiased \
#       --margins docs/results/harm_margins_knn.json --floor-from SHIPPED_REPORTS/sr.json
#
# Needs `cargo build --release -p lab`, `harm_probe.py --strongreject-set
# training/work/strongreject.toml` and `gate_calibrate.py set … training/work/gate_valid.toml`.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ $# -eq 2 ] || { echo "usage: $0 MODEL_DIR OUT" >&2; exit 2; }
SRC=$1; OUT=$2
LAB=target/release/firstword-lab
for f in "$LAB" training/work/gate_valid.toml training/work/strongreject.toml; do
  [ -e "$f" ] || { echo "missing $f (see the header of $0)" >&2; exit 1; }
done
for v in biased unbiased; do
  model=$(mktemp -d); reports=$OUT-$v
  rm -rf "$reports"; mkdir -p "$reports"
  cp "$SRC"/model.gguf "$SRC"/tokenizer.json "$SRC"/mulm.json "$model"/
  python3 - "$model/mulm.json" "$v" <<'PY'
import json, sys
path, variant = sys.argv[1], sys.argv[2]
m = json.load(open(path))
m["opener"].pop("prompt_bias_max_harm", None)
m["opener"]["prompt_bias"] = (m["opener"].get("prompt_bias") or 4.0) if variant == "biased" else 0.0
json.dump(m, open(path, "w"), indent=2)
PY
  for e in everyday openers safety; do
    "$LAB" eval "$e" --model "$model" --out-dir "$reports" > "$reports/$e.log" 2>&1
  done
  "$LAB" eval everyday --set training/work/gate_valid.toml --name gate_valid --model "$model" --out-dir "$reports" > "$reports/gv.log" 2>&1
  "$LAB" eval everyday --set training/work/strongreject.toml --name sr --model "$model" --out-dir "$reports" > "$reports/sr.log" 2>&1
  rm -rf "$model"
  echo "$reports"
done
