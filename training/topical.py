#!/usr/bin/env python3
"""Marks the training mix's off-topic replies so that the opener stage skips them (issue 12: a
μLM whose first words are right).

    training/.venv/bin/python training/topical.py training/data/train_mix.jsonl \
        --out training/work/train_mix_topical.jsonl

Why: 49 % of the mix's assistant turns open (first 8 words) without one content word of the
user turn before them: chit-chat small talk ("haha me too"), multiple-choice letters, replies
that answer a question other than the one asked. The opener stage teaches the μLM to start a
reply from the question, so those examples teach it to start anywhere. This script keeps every
dialogue whole (the off-topic turns stay as context for later ones) and adds `"opener": false`
to each assistant turn whose opener is off topic; `train.py --stage opener` then makes no
example of it. Nothing else reads the key.

"On topic" is the runtime gate's own rule (`lm/src/gate.rs::topical`, mirrored here and checked
against the same cases in `tests/test_topical.py`): the reply's first 8 words share a content
word (≥ 3 letters, not a function word, crude-stemmed) with the user turn.

`--keep-off-topic SHARE` also keeps a stable draw of that share of the off-topic replies: it
weights on-topic openers up instead of learning from them alone (the on-topic-only branch of
2026-12-05 learned openers faster but lost assistant-token loss on the whole mix).

The caps of the data mix (issue 12 §1) hold for the kept examples too: no 3-word reply opening
above 1 % of them ("Sure, here are" would be 1.2 %) and WordNet glosses (99.8 % on topic) at
most 5 % of them; the excess is marked off by a stable hash of the turn, so every machine writes
the same file.

Writes one JSON summary line to stdout: turns, kept, and the kept share per source.
"""
from __future__ import annotations

import argparse
import collections
import hashlib
import json
import os
import sys
from pathlib import Path

# `lm/src/gate.rs::STOP_WORDS`, word for word.
STOP_WORDS = frozenset("""
the and for are but not you your yours with this that these those from have has had was were what
when where which who whom why how can could should would will shall may might must does did doing
about into onto there their they them then than some any all its it's our out get got one just very
really also here his her she him way good best make like know let yes sure okay well much many more
most tell give want need use i'm what's there's that's don't because been being each other such
only own same
""".split())

OPENER_WORDS = 8  # the runtime's opener length (`eval everyday` scores 8-word openers)


def words(text: str) -> list[str]:
    """Whitespace words, trimmed of non-alphanumerics but the apostrophe, lower-cased, ’ → '."""
    out = []
    for w in text.split():
        w = w.strip("".join(c for c in set(w) if not (c.isalnum() or c == "'")))
        if w:
            out.append(w.lower().replace("’", "'"))
    return out


def stem(w: str) -> str:
    """`gate.rs::stem`: drop "'s" and a plural "s" (not "ss"), then the first 5 letters of words
    of 6 or more."""
    if w.endswith("'s"):
        w = w[:-2]
    if len(w.encode()) > 3 and w.endswith("s") and not w.endswith("ss"):
        w = w[:-1]
    return w[:5] if len(w) >= 6 else w


def is_content(w: str) -> bool:
    return sum(c.isalpha() for c in w) >= 3 and w not in STOP_WORDS


def topical(question: str, reply: str, n_words: int = OPENER_WORDS) -> bool:
    """True when the first `n_words` words of `reply` share a content word (stemmed) with
    `question`."""
    asked = {stem(w) for w in words(question) if is_content(w)}
    return any(stem(w) in asked for w in words(reply)[:n_words] if is_content(w))


def opening(reply: str) -> str:
    """The reply's first 3 words, lower-cased: the unit of the mix's 1 % template cap."""
    return " ".join(reply.split()[:3]).lower()


def stable_fraction(question: str, reply: str, salt: str = "") -> float:
    """A number in [0, 1) fixed by the turn's text: which turns a cap keeps. A different `salt`
    gives an independent draw (the off-topic sample of `--keep-off-topic` must not favour the
    turns a cap keeps)."""
    h = hashlib.blake2b(f"{salt}{question}\x00{reply}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "big") / 2**64


def candidate(question: str, reply: str, keep_off_topic: float = 0.0) -> bool:
    """A turn the opener stage may learn from before the caps: on topic, or one of the
    `keep_off_topic` share of the off-topic turns (a stable draw). 0 learns from on-topic
    replies only; 1 from every reply, which makes on-topic ones no more frequent than in the mix."""
    return topical(question, reply) or stable_fraction(question, reply, "off-topic") < keep_off_topic


def reply_turns(dialogue: dict):
    """(user turn, assistant turn) message pairs: the turns the opener stage learns from."""
    msgs = dialogue.get("messages") or []
    return [(p, m) for p, m in zip(msgs, msgs[1:]) if m.get("role") == "assistant" and p.get("role") == "user"]


def keep_thresholds(candidates: list[tuple[str, str, float]], max_opening: float,
                    source_caps: dict[str, float]) -> tuple[dict, dict]:
    """candidates: (opening, source, stable_fraction) of every `candidate` turn. → ({opening: t},
    {source: t}) for the capped ones: a turn of such a group is kept only when its stable
    fraction is below t. Every group ends at or under its share of the turns kept: a cap that
    cuts a group shrinks the total, which can push another group over, so the caps are
    tightened until none is over (k only falls, so this ends)."""
    def groups(o, src):
        return [("o", o)] + ([("s", src)] if src in source_caps else [])

    def share(g):
        return max_opening if g[0] == "o" else source_caps[g[1]]

    fracs = collections.defaultdict(list)
    for o, src, f in candidates:
        for g in groups(o, src):
            fracs[g].append(f)
    for fs in fracs.values():
        fs.sort()
    limit = {}  # group → fraction threshold; absent = keep all
    while True:
        counts, total = collections.Counter(), 0
        for o, src, f in candidates:
            gs = groups(o, src)
            if all(f < limit.get(g, 2.0) for g in gs):
                total += 1
                counts.update(gs)
        over = [g for g, n in counts.items() if n > share(g) * total]
        if not over:
            break
        for g in over:  # keep the int(share × total) smallest fractions of g
            limit[g] = fracs[g][int(share(g) * total)]
    return ({g[1]: t for g, t in limit.items() if g[0] == "o"},
            {g[1]: t for g, t in limit.items() if g[0] == "s"})


def mark(dialogue: dict, by_opening: dict | None = None, by_source: dict | None = None,
         keep_off_topic: float = 0.0) -> tuple[int, int]:
    """Adds `"opener": false` to each assistant turn that follows a user turn and is not a
    `candidate` or is over a cap, in place (and drops a stale mark from the others). → (such
    turns, of which kept)."""
    by_opening, by_source = by_opening or {}, by_source or {}
    src_limit = by_source.get(dialogue.get("source"), 1.0)
    n = kept = 0
    for prev, m in reply_turns(dialogue):
        n += 1
        q, r = prev.get("content", ""), m.get("content", "")
        limit = min(src_limit, by_opening.get(opening(r), 1.0))  # 1.0: not capped
        if candidate(q, r, keep_off_topic) and (limit >= 1.0 or stable_fraction(q, r) < limit):
            kept += 1
            m.pop("opener", None)
        else:
            m["opener"] = False
    return n, kept


def parse_dialogue(line: str, where: str) -> dict:
    """One JSONL line of the mix → its dialogue; anything else (broken JSON, messages that are
    not a list of objects with string content) is an error naming `where` (file:line)."""
    try:
        d = json.loads(line)
    except json.JSONDecodeError as e:
        raise SystemExit(f"{where}: not a JSON dialogue ({e})") from None
    msgs = d.get("messages", []) if isinstance(d, dict) else None
    if not isinstance(msgs, list) or not all(isinstance(m, dict) and isinstance(m.get("content", ""), str) for m in msgs):
        raise SystemExit(f"{where}: want {{\"messages\": [{{\"role\": …, \"content\": \"…\"}}, …]}}")
    return d


def parse_caps(items: list[str]) -> dict[str, float]:
    """["wordnet=0.05"] → {"wordnet": 0.05}; a share outside (0, 1] is an error naming it."""
    caps = {}
    for it in items:
        name, _, val = it.partition("=")
        try:
            share = float(val)
        except ValueError:
            share = float("nan")
        if not name or not 0.0 < share <= 1.0:
            raise SystemExit(f"--max-source-share {it!r}: want SOURCE=SHARE with 0 < SHARE <= 1")
        caps[name] = share
    return caps


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("mix", type=Path, help="the training mix (JSONL dialogues)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--max-opening-share", type=float, default=0.01,
                    help="largest share of the kept turns one 3-word reply opening may have")
    ap.add_argument("--max-source-share", nargs="*", default=["wordnet=0.05"], metavar="SOURCE=SHARE",
                    help="largest share of the kept turns a source may have")
    ap.add_argument("--keep-off-topic", type=float, default=0.0, metavar="SHARE",
                    help="also learn from this share of the off-topic replies (a stable draw): weights on-topic "
                         "openers up instead of learning from them alone")
    args = ap.parse_args(argv)
    if not 0.0 < args.max_opening_share <= 1.0:
        raise SystemExit(f"--max-opening-share {args.max_opening_share}: want 0 < share <= 1")
    if not 0.0 <= args.keep_off_topic <= 1.0:  # also catches nan
        raise SystemExit(f"--keep-off-topic {args.keep_off_topic}: want 0 <= share <= 1")
    caps = parse_caps(args.max_source_share)

    def dialogues():
        with open(args.mix) as src:
            for n, line in enumerate(src, 1):
                if line.strip():
                    yield parse_dialogue(line, f"{args.mix}:{n}")

    candidates = []
    for d in dialogues():  # pass 1: the candidates, by opening and by source
        for prev, m in reply_turns(d):
            q, r = prev.get("content", ""), m.get("content", "")
            if candidate(q, r, args.keep_off_topic):
                candidates.append((opening(r), d.get("source"), stable_fraction(q, r)))
    by_opening, by_source = keep_thresholds(candidates, args.max_opening_share, caps)
    turns, kept = collections.Counter(), collections.Counter()
    tmp = args.out.with_suffix(".tmp")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(tmp, "w") as dst:
        for d in dialogues():  # pass 2: mark
            n, k = mark(d, by_opening, by_source, args.keep_off_topic)
            turns[d.get("source", "?")] += n
            kept[d.get("source", "?")] += k
            dst.write(json.dumps(d, ensure_ascii=False) + "\n")
    os.replace(tmp, args.out)  # never a half-written mix under the final name
    summary = {"turns": sum(turns.values()), "kept": sum(kept.values()), "keep_off_topic": args.keep_off_topic,
               "capped_openings": sorted(by_opening), "capped_sources": sorted(by_source),
               "kept_share_by_source": {s: round(kept[s] / turns[s], 3) for s in sorted(turns, key=lambda s: -turns[s])}}
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    sys.exit(main() and 0)
