#!/usr/bin/env python3
"""What `eval openers`' cosine gives for restating the question (README, "A prompt bias for the
opener"): the MiniLM cosine between each prompt's first 8 words and the reference's first
sentence, beside the report's own openers recomputed the same way (a check that the embedding
matches `lm/src/minilm.rs`: mean-pooled, L2-normalized all-MiniLM-L6-v2).

    training/.venv/bin/pip install -r training/requirements-safety.txt
    training/.venv/bin/python training/echo_cosine.py /tmp/ev/eval_openers.json [--words 8]

2026-12-06: 0.552 on the 385 AlpacaEval/Vicuna prompts (GPT-4 references), 0.448 on the 213
validation prompts (`eval openers --set`), while the best opener rows are 0.376 and 0.422.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "training" / "safety"))
from harm_probe import MiniLm  # noqa: E402  (built from the extracted files by name)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("report", help="an eval_openers.json")
    ap.add_argument("--words", type=int, default=8)
    ap.add_argument("--minilm", default=str(ROOT / "models" / "minilm"))
    a = ap.parse_args(argv)
    # The directory scripts/setup.sh extracts from the registry (PyPI); never a model hub.
    emb = MiniLm(Path(a.minilm), threads=2)
    items = json.loads(Path(a.report).read_text())["items"]
    refs = emb([i["reference_sentence"] for i in items])
    echo = emb([" ".join(i["prompt"].split()[:a.words]) for i in items])
    openers = [next(o for o in i["openers"] if o["words"] == a.words) for i in items]
    ours = emb([o["text"] for o in openers])
    res = {"report": a.report, "items": len(items), "words": a.words,
           "echo_cosine": float((echo * refs).sum(-1).mean()),
           "opener_cosine_recomputed": float((ours * refs).sum(-1).mean()),
           "opener_cosine_reported": sum(o["cosine"] for o in openers) / len(openers)}
    print(json.dumps(res, indent=1))
    return res


if __name__ == "__main__":
    main()
