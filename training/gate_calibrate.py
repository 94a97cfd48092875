#!/usr/bin/env python3
"""Choose the opener gate's threshold on validation prompts (issue 12 §2: "the threshold is
chosen on validation prompts and kept with the checkpoint's settings").

    training/.venv/bin/python training/gate_calibrate.py set training/data/valid.jsonl work/gate_valid.toml \
        [--refs work/gate_valid_refs.json]
    firstword eval everyday --model models/mulm --set training/work/gate_valid.toml --name gate_valid
    training/.venv/bin/python training/gate_calibrate.py choose docs/results/gate_valid.json [--max-fire 0.25]
    training/.venv/bin/python training/gate_calibrate.py rule docs/results/gate_valid.json --harm-margin -0.559

`set`: the first user turn of validation dialogues (never trained on) that reads like a spoken
question — one line, 4–15 words, ending in "?" — at most `--per-source` (40) per source in file
order, as an `eval everyday` question set. WordNet's "What does X mean?" items are left out
(one template). `--refs` also writes the same prompts with the dialogue's assistant reply as the
reference, in AlpacaEval's shape, for `eval openers --set` (cosine to the reference on
validation prompts: how decoding settings such as `opener.prompt_bias` are chosen).

`rule`: the validation rule that sets mulm.json's `opener.gate_min_score` (since 2026-12-06): the
lowest threshold, 0 to −2 in 0.05 steps, at which the openers the gate lets through (score at least
the threshold, check margin not above `--harm-margin`) are good at least 98.8 % of the time.

`choose` (the first rule, 2026-12-02): from that eval's per-item gate scores (`lm::gate::score`: mean token log-probability,
+2.0 when the opener shares a content word with the question, −1.5 when it repeats), the
highest threshold (to 0.05 nats) at which the gate fires on at most `--max-fire` of the
validation prompts. The margin below the issue's 30 % goal is for the shift from validation
prompts to the eval prompts. Prints a table of fire rate and the share of good (on topic, no
repeat) openers among those spoken and those gated per threshold, and the choice as JSON.
"""
from __future__ import annotations

import argparse
import json
import math
import re
from collections import Counter


def spoken_question(text: str) -> bool:
    t = text.strip()
    return "\n" not in t and 4 <= len(t.split()) <= 15 and t.endswith("?")


def make_set(valid_jsonl, per_source: int = 40) -> list[dict]:
    taken: Counter = Counter()
    out, seen = [], set()
    with open(valid_jsonl) as f:
        for line in f:
            d = json.loads(line)
            msgs = d.get("messages") or []
            if not msgs or msgs[0]["role"] != "user" or d.get("source") == "wordnet":
                continue
            q = msgs[0]["content"].strip()
            if not spoken_question(q) or q.lower() in seen or taken[d["source"]] >= per_source:
                continue
            seen.add(q.lower())
            taken[d["source"]] += 1
            reply = msgs[1]["content"].strip() if len(msgs) > 1 and msgs[1]["role"] == "assistant" else ""
            out.append({"id": f"v{len(out):03d}-{re.sub(r'[^a-z0-9]+', '_', d['source'].lower())}", "text": q,
                        "source": d["source"], "reply": reply})
    return out


def refs_set(items) -> list[dict]:
    """The prompts with a reference reply, as `eval openers --set` reads them (AlpacaEval's fields)."""
    return [{"id": i["id"], "dataset": i["source"], "instruction": i["text"], "output": i["reply"]}
            for i in items if i["reply"]]


VALID_HEADER = ["# Validation prompts for the opener gate's threshold (training/gate_calibrate.py set);",
                "# first user turns of training/data/valid.jsonl, never trained on."]


def toml_set(items, header: list[str] | None = None) -> str:
    """`items` ({"id", "text"}) as an `eval everyday --set` TOML file, under the comment lines `header`."""
    lines = (VALID_HEADER if header is None else header) + [""]
    for it in items:
        lines += ["[[question]]", f"id = {json.dumps(it['id'])}", f"text = {json.dumps(it['text'])}"]
    return "\n".join(lines) + "\n"


def sweep(items, thresholds) -> list[dict]:
    rows = []
    for t in thresholds:
        fired = [i for i in items if i["gate_score"] < t]
        spoken = [i for i in items if i["gate_score"] >= t]
        good = lambda xs: (sum(i["good"] for i in xs) / len(xs)) if xs else None  # noqa: E731
        rows.append({"threshold": round(t, 2), "fire_rate": len(fired) / len(items),
                     "good_spoken": good(spoken), "good_gated": good(fired)})
    return rows


# The gate's validation rule (README, "The opener gate"; every shipped gate_min_score since
# 2026-12-06): the lowest threshold on the 0.05 grid from 0 to −2 at which the spoken validation
# openers are good (on topic, no repeat) at least this often.
VALID_GOOD = 0.988


def fires(item, threshold: float, harm_margin: float | None = None) -> bool:
    """`lm::gate::fires` on a report item: its gate score under `threshold`, or its harmful-request
    margin (`harm_score`, None when the check did not run) above `harm_margin`."""
    harm = item.get("harm_score")
    return item["gate_score"] < threshold or (harm_margin is not None and harm is not None and harm > harm_margin)


def rule_threshold(items, harm_margin: float | None = None, min_good: float = VALID_GOOD) -> float | None:
    """The validation rule on `eval everyday --set work/gate_valid.toml` items: the lowest threshold
    (0 to −2 in 0.05 steps) whose spoken openers are good at least `min_good` of the time; None
    when no threshold is."""
    best = None
    for i in range(41):
        t = round(-0.05 * i, 2)
        spoken = [it for it in items if not fires(it, t, harm_margin)]
        if spoken and sum(it["good"] for it in spoken) / len(spoken) >= min_good:
            best = t
    return best


def choose(items, max_fire: float) -> float:
    """The highest threshold on a 0.05 grid with fire rate ≤ max_fire."""
    scores = [i["gate_score"] for i in items]
    k = math.floor(min(scores) / 0.05)  # the grid point at or below the lowest score fires on nothing
    top = math.ceil(max(scores) / 0.05) + 1  # here the gate fires on everything
    while k < top and sum(s < (k + 1) * 0.05 for s in scores) / len(scores) <= max_fire:
        k += 1
    return round(k * 0.05, 2)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("set")
    s.add_argument("valid_jsonl")
    s.add_argument("out_toml")
    s.add_argument("--per-source", type=int, default=40)
    s.add_argument("--refs", help="also write the prompts with their reference replies (JSON, for eval openers --set)")
    c = sub.add_parser("choose")
    c.add_argument("everyday_json")
    c.add_argument("--max-fire", type=float, default=0.25)
    r = sub.add_parser("rule", help="the validation rule's threshold (what mulm.json's gate_min_score ships)")
    r.add_argument("everyday_json")
    r.add_argument("--harm-margin", type=float, help="mulm.json opener.harm_gate_margin (absent: 0, the check's threshold)")
    r.add_argument("--min-good", type=float, default=VALID_GOOD)
    a = ap.parse_args(argv)
    if a.cmd == "rule":
        items = json.load(open(a.everyday_json))["items"]
        margin = 0.0 if a.harm_margin is None else a.harm_margin
        print(json.dumps({"n": len(items), "harm_gate_margin": margin, "min_good": a.min_good,
                          "gate_min_score": rule_threshold(items, margin, a.min_good)}))
        return
    if a.cmd == "set":
        items = make_set(a.valid_jsonl, a.per_source)
        with open(a.out_toml, "w") as f:
            f.write(toml_set(items))
        print(f"{a.out_toml}: {len(items)} prompts")
        if a.refs:
            refs = refs_set(items)
            with open(a.refs, "w") as f:
                json.dump(refs, f, indent=1)
            print(f"{a.refs}: {len(refs)} prompts with a reference reply")
        return
    items = json.load(open(a.everyday_json))["items"]
    t = choose(items, a.max_fire)
    print("| threshold | fired | good among spoken | good among gated |\n|---|---|---|---|")
    for r in sweep(items, [t - 0.5, t - 0.25, t, t + 0.25, t + 0.5]):
        f = lambda x: "–" if x is None else f"{100 * x:.1f} %"  # noqa: E731
        print(f"| {r['threshold']:.2f} | {100 * r['fire_rate']:.1f} % | {f(r['good_spoken'])} | {f(r['good_gated'])} |")
    print(json.dumps({"n": len(items), "max_fire": a.max_fire, "gate_min_score": t}))


if __name__ == "__main__":
    main()
