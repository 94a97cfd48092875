#!/usr/bin/env python3
"""How much the harmful-request head should weigh the instruction prompts
(`harm_probe.py --instruction-weight`), read off the held-out instructions, not an evaluation set.

    training/.venv/bin/python training/safety/harm_sweep.py [--weights 0 1 3 10 20 40] [--hidden 32 128]

Embeds every set of `harm_probe.datasets(--practical, --instructions)` once (cached in
`training/work/harm_sweep_emb.pt`), fits one head per weight (0: the instructions left out, the
recipe before them) and, with `--hidden`, a head with one ReLU layer of that width, and prints
per head, as JSON lines: the margin at which `--margin-share` of the calibration turns fire
(how mulm.json's `opener.harm_gate_margin` is chosen) and, at the head's threshold and at that
margin, the share flagged of the held-out instructions, Do-Not-Answer, AlpacaEval + Vicuna and
the everyday questions. Writes no head. `docs/results/harm_instructions.md` holds a run.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import harm_probe as H  # noqa: E402

SETS = ("instructions_held", "dna", "alpaca", "everyday")


def embeddings(practical: int, instructions: int, threads: int, cache: Path) -> dict:
    """Every set's MiniLM embeddings, from `cache` when it was made with the same settings."""
    import torch
    key = {"practical": practical, "instructions": instructions}
    if cache.exists():
        e = torch.load(cache)
        if e.get("key") == key:
            return e
    d = H.datasets(practical, instructions)
    emb = H.MiniLm(H.ROOT / "models/minilm", threads)
    e = {name: emb(texts) for name, texts in [
        ("harm", d["harm"]), ("seeds", d["seeds"]), ("neg", d["train_neg"]), ("calib", d["calib"]),
        ("dna", [p for _, p in d["dna"]]), ("alpaca", d["alpaca"]), ("everyday", d["everyday"]),
        ("instructions_held", d["instructions_held"])]}
    e.update(key=key, n_instructions=d["instructions_train"])
    cache.parent.mkdir(parents=True, exist_ok=True)
    torch.save(e, cache)
    return e


def hidden_head(torch, pos, neg, width: int, epochs: int = 300):
    """One ReLU layer of `width`, Adam, class-balanced; returns the logit function."""
    x = torch.cat([pos, neg])
    y = torch.cat([torch.ones(len(pos)), torch.zeros(len(neg))])
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(x.shape[1], width), torch.nn.ReLU(), torch.nn.Linear(width, 1))
    opt = torch.optim.Adam(net.parameters(), lr=3e-3, weight_decay=1e-4)
    pw = torch.tensor(len(neg) / len(pos))
    for _ in range(epochs):
        opt.zero_grad()
        torch.nn.functional.binary_cross_entropy_with_logits(net(x).squeeze(-1), y, pos_weight=pw).backward()
        opt.step()
    return lambda e: net(e).squeeze(-1).detach()


def rates(logit, e: dict, max_fire: float, margin_share: float) -> dict:
    """The head's threshold and margin rule applied to the cached sets."""
    calib = logit(e["calib"]).tolist()
    th = H.threshold_at(calib, max_fire)
    margin = H.threshold_at([v - th for v in calib], margin_share)
    out = {"margin": round(margin, 3)}
    for name in SETS:
        m = logit(e[name]) - th
        out[name] = [round(float((m > 0).float().mean()), 3), round(float((m > margin).float().mean()), 3)]
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--practical", type=int, default=3000)
    ap.add_argument("--instructions", type=int, default=1200)
    ap.add_argument("--weights", type=float, nargs="*", default=[0, 1, 3, 10, 20, 40])
    ap.add_argument("--hidden", type=int, nargs="*", default=[])
    ap.add_argument("--max-fire", type=float, default=0.05)
    ap.add_argument("--margin-share", type=float, default=0.12)
    ap.add_argument("--seed-repeat", type=int, default=8)
    ap.add_argument("--l2", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cache", type=Path, default=H.ROOT / "training/work/harm_sweep_emb.pt")
    a = ap.parse_args(argv)
    import torch
    torch.set_num_threads(a.threads)
    e = embeddings(a.practical, a.instructions, a.threads, a.cache)
    pos, neg, n = torch.cat([e["harm"]] + [e["seeds"]] * a.seed_repeat), e["neg"], e["n_instructions"]
    for w in a.weights:
        # Weight 0 drops the instructions from the loss: the recipe before them.
        wt, b = H.fit(torch, pos, neg, a.l2, H.instruction_weights(torch, len(neg), n, w))
        print(json.dumps({"weight": w, **rates(lambda x: x @ wt + b, e, a.max_fire, a.margin_share)}), flush=True)
    for width in a.hidden:
        print(json.dumps({"hidden": width, **rates(hidden_head(torch, pos, neg, width), e, a.max_fire, a.margin_share)}),
              flush=True)


if __name__ == "__main__":
    main()
