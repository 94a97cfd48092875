#!/usr/bin/env python3
"""Step "mix": turn the prepared training split into the training *mix* (issue 12 §1).

    training/.venv/bin/python training/mix.py [--tokenizer models/mulm/tokenizer.json]

Reads data/train.jsonl, writes data/train_mix.jsonl (+ work/mix_stats.json, rendered into
DATA_CARD.md by datacard.py). data/valid.jsonl is left as it is, so validation losses stay
comparable with earlier runs (the shipped model's 5.32 on assistant tokens).

1. **Template rewrites** of the QA conversions whose answers all open alike:
   "The answer is X." (CSQA/OBQA/ARC) → "X."; BoolQ "Yes/No, according to the article on T: S"
   → "Yes." / "No." + S, or S alone, or "Yes, S'" (chosen by a hash of the id).
2. **Weights**: ShareGPT and chit-chat are the only real conversations: each dialogue is
   repeated (`--weight sharegpt=3,chitchat=2,…`; fractional parts by a stable hash); WordNet
   glosses are subsampled so that they are ≤ `--wordnet-cap` (5 %) of the mix's tokens, of its
   assistant tokens and of its opener tokens (the first ≤ 24 tokens of each reply).
3. **Opening cap**: no 3-word assistant opening (lower-cased, punctuation stripped) may cover
   more than `--opening-cap` (1 %) of the mix's assistant turns: copies of dialogues with an
   over-represented opening are removed, repeats first, then single-turn QA/WordNet items
   (multi-turn conversations keep at least one copy), until every opening is under the cap.

Everything is deterministic (stable hashes of the ids).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

os.environ.setdefault("RAYON_RS_NUM_THREADS", "1")
os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
DATA = HERE / "data"
WORK = HERE / "work"
ROOT = HERE.parent

DEFAULT_WEIGHTS = {"sharegpt": 3.0, "chitchat": 2.0, "chatterbot": 2.0}  # others 1, wordnet capped
OPENER_TOKENS = 24


def stable(s: str) -> int:
    return int(hashlib.md5(s.encode()).hexdigest()[:8], 16)


def opening(text: str, n: int = 3) -> str:
    """The first n words, lower-cased, without surrounding punctuation/quotes."""
    out = []
    for w in text.split():
        w = re.sub(r"^[\"'(\[*_-]+|[^\w']+$", "", w.lower())
        if w:
            out.append(w)
        if len(out) == n:
            break
    return " ".join(out)


# ------------------------------------------------------------------ template rewrites

_ANSWER_IS = re.compile(r"^The answer is (.+?)\.?$", re.S)
_BOOLQ = re.compile(r"^(Yes|No), according to the article on (.+?): (.+)$", re.S)


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:] if s else s


def _end(s: str) -> str:
    s = s.strip()
    return s if s[-1:] in ".!?" else s + "."


def rewrite_answer(did: str, source: str, text: str) -> str | None:
    """A QA conversion's templated answer → a less uniform one (None: no change)."""
    if source in ("olmo_csqa", "olmo_openbookqa", "olmo_arc_easy"):
        m = _ANSWER_IS.match(text)
        if m:
            return _end(_cap(m.group(1).strip()))
    if source == "olmo_boolq":
        m = _BOOLQ.match(text)
        if m:
            yn, _title, sent = m.group(1), m.group(2), m.group(3).strip()
            k = stable("boolq-style:" + did) % 3
            if k == 0:
                return f"{yn}. {_cap(sent)}"
            if k == 1:
                return f"{yn}, {sent[:1].lower() + sent[1:] if sent[:2] != sent[:2].upper() else sent}"
            return _cap(sent) if yn == "Yes" else f"No. {_cap(sent)}"
    return None


def rewrite_dialogue(d: dict) -> tuple[dict, int]:
    n = 0
    msgs = []
    for m in d["messages"]:
        if m["role"] == "assistant":
            r = rewrite_answer(d["id"], d["source"], m["content"])
            if r is not None and r != m["content"]:
                m = {"role": "assistant", "content": r}
                n += 1
        msgs.append(m)
    return ({**d, "messages": msgs} if n else d), n


# ------------------------------------------------------------------ token counts


class Counts:
    """Per dialogue: tokens (serialized like ChatFormat: begin + prefix/content/suffix per turn),
    assistant tokens (content + <|end|>), opener tokens (min(24, content + 1) per reply)."""

    def __init__(self, tok_path):
        from tokenizers import Tokenizer

        self.tok = Tokenizer.from_file(str(tok_path))

    def __call__(self, dialogues) -> list[tuple[int, int, int, int]]:
        texts = [m["content"].strip() for d in dialogues for m in d["messages"]]
        encs = self.tok.encode_batch(texts, add_special_tokens=False)
        out, k = [], 0
        for d in dialogues:
            tot, ast, op, turns = 1, 0, 0, 0
            for m in d["messages"]:
                n = len(encs[k].ids)
                k += 1
                tot += n + 2
                if m["role"] == "assistant":
                    ast += n + 1
                    op += min(OPENER_TOKENS, n + 1)
                    turns += 1
            out.append((tot, ast, op, turns))
        return out


def shares(rows, mult=None) -> dict:
    """rows: [(source, (tokens, assistant, opener, turns))] → per source totals and shares."""
    agg = defaultdict(lambda: [0, 0, 0, 0, 0])
    for i, (src, c) in enumerate(rows):
        w = 1 if mult is None else mult[i]
        a = agg[src]
        a[0] += w
        for j in range(4):
            a[j + 1] += w * c[j]
    tot = [sum(a[j] for a in agg.values()) for j in range(5)]
    names = ["dialogues", "tokens", "assistant_tokens", "opener_tokens", "assistant_turns"]
    return {s: {**{n: a[j] for j, n in enumerate(names)},
                **{f"{n}_share": a[j] / max(tot[j], 1) for j, n in enumerate(names) if j}}
            for s, a in sorted(agg.items())} | {"**total**": dict(zip(names, tot))}


def top_openings(dialogues, mult=None, k: int = 20) -> tuple[list, int]:
    c = Counter()
    src = defaultdict(Counter)
    n = 0
    for i, d in enumerate(dialogues):
        w = 1 if mult is None else mult[i]
        if not w:
            continue
        for m in d["messages"]:
            if m["role"] == "assistant":
                o = opening(m["content"])
                c[o] += w
                src[o][d["source"]] += w
                n += w
    return [(o, v, v / max(n, 1), dict(src[o].most_common(2))) for o, v in c.most_common(k)], n


# ------------------------------------------------------------------ the mix


def base_multiplicity(did: str, weight: float) -> int:
    whole = int(weight)
    frac = weight - whole
    return whole + (1 if frac > 0 and (stable("mix:" + did) % 10_000) < frac * 10_000 else 0)


def wordnet_weight(rows, weights: dict, cap: float) -> float:
    """Largest WordNet weight ≤ 1 that keeps WordNet ≤ cap of tokens, assistant and opener tokens."""
    tot = [0.0, 0.0, 0.0]
    wn = [0.0, 0.0, 0.0]
    for src, c in rows:
        w = weights.get(src, 1.0)
        for j in range(3):
            if src == "wordnet":
                wn[j] += c[j]
            else:
                tot[j] += w * c[j]
    # wn·x / (tot + wn·x) ≤ cap  ⇔  x ≤ cap·tot / ((1 − cap)·wn)
    x = min(cap * tot[j] / ((1 - cap) * wn[j]) for j in range(3) if wn[j])
    return min(1.0, x * 0.98)  # a little headroom for the hash sampling


def enforce_opening_cap(dialogues, mult: list[int], cap: float, protected=("sharegpt", "chitchat")) -> dict:
    """Remove copies until no opening covers > cap of the assistant turns (in place on mult)."""
    removed = Counter()
    for _ in range(10):
        c = Counter()
        where = defaultdict(list)
        n = 0
        for i, d in enumerate(dialogues):
            if not mult[i]:
                continue
            for m in d["messages"]:
                if m["role"] == "assistant":
                    o = opening(m["content"])
                    c[o] += mult[i]
                    n += mult[i]
                    where[o].append(i)
        limit = int(cap * n * 0.97)  # headroom: removals shrink n too
        over = [(o, v) for o, v in c.items() if v > limit]
        if not over:
            break
        for o, v in over:
            excess = v - limit
            idx = sorted(set(where[o]), key=lambda i: stable("cap:" + dialogues[i]["id"]))
            # pass 1: repeats (keep one copy); pass 2: whole single-turn items of unprotected
            # sources; pass 3 (last resort): any remaining copy
            for pas in (1, 2, 3):
                for i in idx:
                    if excess <= 0:
                        break
                    d = dialogues[i]
                    floor = 1 if pas == 1 or (pas == 2 and (d["source"] in protected or len(d["messages"]) > 2)) else 0
                    k = sum(1 for m in d["messages"] if m["role"] == "assistant" and opening(m["content"]) == o)
                    while mult[i] > floor and excess > 0:
                        mult[i] -= 1
                        excess -= k
                        removed[o] += 1
    return dict(removed)


def build_mix(dialogues, counts, weights: dict, wordnet_cap: float, opening_cap: float, count_fn=None):
    """counts: per dialogue (tokens, assistant, opener, turns); count_fn recounts rewritten ones.
    → (rewritten dialogues, multiplicities, counts of the rewritten dialogues, stats)."""
    rewritten, n_rw, changed = [], Counter(), []
    for i, d in enumerate(dialogues):
        d2, n = rewrite_dialogue(d)
        rewritten.append(d2)
        if n:
            n_rw[d["source"]] += n
            changed.append(i)
    counts = list(counts)
    if count_fn and changed:
        for i, c in zip(changed, count_fn([rewritten[i] for i in changed])):
            counts[i] = c
    rows = [(d["source"], c) for d, c in zip(rewritten, counts)]
    w = dict(weights)
    if any(d["source"] == "wordnet" for d in rewritten):
        w["wordnet"] = wordnet_weight(rows, w, wordnet_cap)
    mult = [base_multiplicity(d["id"], w.get(d["source"], 1.0)) for d in rewritten]
    removed, wn_dropped = Counter(), 0
    for _ in range(5):  # each cap's removals shift the other's shares a little: repeat until both hold
        r = enforce_opening_cap(rewritten, mult, opening_cap)
        removed.update(r)
        k = enforce_source_cap(rewritten, counts, mult, "wordnet", wordnet_cap)
        wn_dropped += k
        if not r and not k:
            break
    return rewritten, mult, counts, {"weights": w, "rewritten_turns": dict(n_rw), "cap_removed_copies": dict(removed),
                             "wordnet_cap_dropped": wn_dropped}


def enforce_source_cap(dialogues, counts, mult: list[int], source: str, cap: float) -> int:
    """Drop copies of `source` (stable hash order) until it is ≤ cap of tokens, assistant tokens
    and opener tokens. Token counts are those of the original text (rewrites only touch QA)."""
    src = [0.0, 0.0, 0.0]
    other = [0.0, 0.0, 0.0]
    mine = []
    for i, (d, c) in enumerate(zip(dialogues, counts)):
        for j in range(3):
            (src if d["source"] == source else other)[j] += mult[i] * c[j]
        if d["source"] == source and mult[i]:
            mine.append(i)
    allowed = [cap / (1 - cap) * other[j] for j in range(3)]
    dropped = 0
    for i in sorted(mine, key=lambda i: stable("srccap:" + dialogues[i]["id"])):
        if all(src[j] <= allowed[j] for j in range(3)):
            break
        while mult[i] and any(src[j] > allowed[j] for j in range(3)):
            mult[i] -= 1
            dropped += 1
            for j in range(3):
                src[j] -= counts[i][j]
    return dropped


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", default=str(DATA / "train.jsonl"))
    ap.add_argument("--out", default=str(DATA / "train_mix.jsonl"))
    ap.add_argument("--tokenizer", default=str(ROOT / "models" / "mulm" / "tokenizer.json"),
                    help="for the token shares (default: the shipped model's, which training continues from)")
    ap.add_argument("--weight", default=",".join(f"{k}={v:g}" for k, v in DEFAULT_WEIGHTS.items()),
                    help="source=weight,… (others 1; WordNet is set by --wordnet-cap)")
    ap.add_argument("--wordnet-cap", type=float, default=0.05)
    ap.add_argument("--opening-cap", type=float, default=0.01)
    ap.add_argument("--seed-shuffle", type=int, default=0, help="shuffle the output lines with this seed (0: keep order)")
    a = ap.parse_args(argv)
    t0 = time.time()
    weights = {k: float(v) for k, v in (kv.split("=") for kv in a.weight.split(",") if kv)}
    dialogues = [json.loads(line) for line in open(a.train) if line.strip()]
    counter = Counts(a.tokenizer)
    counts = counter(dialogues)
    print(f"counted {len(dialogues):,} dialogues in {time.time() - t0:.0f}s", flush=True)
    before = shares([(d["source"], c) for d, c in zip(dialogues, counts)])
    top_before, turns_before = top_openings(dialogues)
    mixed, mult, counts2, st = build_mix(dialogues, counts, weights, a.wordnet_cap, a.opening_cap, counter)
    after = shares([(d["source"], c) for d, c in zip(mixed, counts2)], mult)
    top_after, turns_after = top_openings(mixed, mult)
    out = Path(a.out)
    tmp = out.with_suffix(".tmp")
    with open(tmp, "w") as f:
        for d, k in zip(mixed, mult):
            for r in range(k):
                f.write(json.dumps({**d, "copy": r} if r else d, ensure_ascii=False) + "\n")
    os.replace(tmp, out)
    stats = {"args": vars(a), **st, "before": before, "after": after,
             "top_openings_before": top_before, "top_openings_after": top_after,
             "assistant_turns_before": turns_before, "assistant_turns_after": turns_after,
             "dialogues_out": sum(mult), "seconds": round(time.time() - t0, 1)}
    WORK.mkdir(exist_ok=True)
    (WORK / "mix_stats.json").write_text(json.dumps(stats, indent=2))
    import datacard

    datacard.write()
    for s in after:
        if not s.startswith("**"):
            b, x = before[s], after[s]
            print(f"{s:16s} tokens {b['tokens_share']:6.1%} → {x['tokens_share']:6.1%}   "
                  f"opener tokens {b['opener_tokens_share']:6.1%} → {x['opener_tokens_share']:6.1%}")
    print("top opening after:", top_after[0][:3], f"; {sum(mult):,} dialogues, {time.time() - t0:.0f}s")


if __name__ == "__main__":
    main()
