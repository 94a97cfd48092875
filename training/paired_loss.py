"""Paired validation loss of two μLMs (issue 12's "validation loss, assistant tokens" row).

Two checkpoints of one lineage differ on the validation set by a few hundredths of a nat, and
whether that is a difference at all depends on how much it varies from one dialogue to the
next. This scores both models on the same dialogues, with the measure `run_cpu.sh` logs as
`valid_assistant` (`train.windows_loss`: the first --dialogues of --valid as packed windows of
--seq tokens, loss on assistant tokens only), and reports the difference B − A with its standard
error, dialogues as the units (a ratio estimator: tokens of one dialogue are not independent).

    training/.venv/bin/python training/paired_loss.py --model models/mulm --model models/mulm-candidate \
        --out docs/results/paired_loss_candidate.json

A model directory holds `model.gguf` (what the runtime loads; preferred) or an export's
`model.safetensors` with `mulm.json`, and `tokenizer.json`; both models must share the tokenizer.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import train  # noqa: E402
from model import ChatFormat, MuLM, config_from_mulm  # noqa: E402


def load_model_dir(d: Path) -> tuple[MuLM, dict, str]:
    """→ (f32 model in eval mode, mulm.json dict, which weights file). Raises FileNotFoundError
    naming the directory when it holds neither weights file."""
    gg, st = d / "model.gguf", d / "model.safetensors"
    if gg.is_file():
        import ggufload

        m, mulm = ggufload.load_gguf_model(gg)
        return m, mulm, gg.name
    if st.is_file():
        from safetensors.torch import load_file

        mulm = json.loads((d / "mulm.json").read_text())
        m = MuLM(config_from_mulm(mulm))
        m.load_state_dict(load_file(str(st)), strict=True)
        return m.float().eval(), mulm, st.name
    raise FileNotFoundError(f"{d} holds no model.gguf or model.safetensors")


@torch.no_grad()
def dialogue_sums(model: MuLM, fmt: ChatFormat, dialogues: list[dict], seq: int) -> tuple[np.ndarray, np.ndarray]:
    """Per dialogue: (summed cross-entropy in nats, assistant tokens scored), over its packed
    windows of `seq` tokens with the SFT mask. Dialogues without messages score (0, 0)."""
    loss, n = np.zeros(len(dialogues)), np.zeros(len(dialogues))
    for i, d in enumerate(dialogues):
        loss[i], n[i] = train.windows_loss_sums(model, train.Windows.build([d], fmt, seq), "sft", fmt.pad_id)
    return loss, n


def paired_difference(a: np.ndarray, b: np.ndarray, n: np.ndarray) -> dict:
    """Pooled losses ΣA/Σn and ΣB/Σn, their difference and its standard error with the
    dialogues as units (ratio estimator: residuals (b − a) − diff·n). Raises ValueError when
    fewer than two dialogues score tokens."""
    keep = n > 0
    a, b, n = a[keep], b[keep], n[keep]
    k = len(n)
    if k < 2:
        raise ValueError(f"{k} dialogues with assistant tokens: a standard error needs at least 2")
    tot = float(n.sum())
    diff = float((b - a).sum()) / tot
    resid = (b - a) - diff * n
    se = math.sqrt(k / (k - 1) * float((resid ** 2).sum())) / tot
    per_dialogue = (b - a) / n
    return {"dialogues": k, "tokens": int(tot), "loss_a": float(a.sum()) / tot, "loss_b": float(b.sum()) / tot,
            "diff": diff, "se": se, "dialogues_better": int((per_dialogue < 0).sum()),
            "dialogues_worse": int((per_dialogue > 0).sum())}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", required=True, help="model directory; give it twice (A, then B)")
    ap.add_argument("--valid", default=str(HERE / "data" / "valid.jsonl"))
    ap.add_argument("--dialogues", type=int, default=500, help="the first N of --valid (run_cpu.sh: 500)")
    ap.add_argument("--seq", type=int, default=256, help="window length in tokens (run_cpu.sh: 256)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", help="write the result as JSON here")
    args = ap.parse_args(argv)
    if len(args.model) != 2:
        raise SystemExit(f"--model twice (A, then B), got {len(args.model)}")
    torch.set_num_threads(args.threads)
    dirs = [Path(m) for m in args.model]
    toks = [hashlib.sha256((d / "tokenizer.json").read_bytes()).hexdigest() for d in dirs]
    if toks[0] != toks[1]:
        raise SystemExit(f"{dirs[0]} and {dirs[1]} have different tokenizers: their losses are not comparable")
    from tokenizers import Tokenizer

    ds = [d for d in train.read_jsonl(args.valid, args.dialogues) if d.get("messages")]
    sums, files = [], []
    t0 = time.time()
    for d in dirs:
        model, mulm, f = load_model_dir(d)
        fmt = ChatFormat(mulm, Tokenizer.from_file(str(d / "tokenizer.json")))
        sums.append(dialogue_sums(model, fmt, ds, args.seq))
        files.append(str(d / f))
    if not np.array_equal(sums[0][1], sums[1][1]):
        raise SystemExit("the two models scored different tokens (chat templates differ)")
    res = paired_difference(sums[0][0], sums[1][0], sums[0][1])
    res.update({"model_a": files[0], "model_b": files[1], "valid": args.valid, "seq": args.seq,
                "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "seconds": round(time.time() - t0, 1)})
    print(json.dumps(res, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(res, indent=2) + "\n")
    return res


if __name__ == "__main__":
    main()
