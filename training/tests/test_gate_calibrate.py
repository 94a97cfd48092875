"""training/gate_calibrate.py: the validation prompt set and the threshold choice.

    training/.venv/bin/python -m unittest training/tests/test_gate_calibrate.py
"""
from __future__ import annotations

import json
import sys
import tempfile
import tomllib
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import gate_calibrate as G  # noqa: E402


class ValidationSet(unittest.TestCase):
    def test_spoken_questions_only_capped_per_source_no_wordnet(self):
        rows = [("a", "How do I keep bread fresh longer?"), ("a", "Why?"), ("a", "Tell me about the sea."),
                ("a", "What is this code doing?\nfoo"), ("wordnet", 'What does "state" mean today?'),
                ("b", "How far away is the moon from here?"), ("a", "How do I keep bread fresh longer?"),
                ("a", "Is it illegal to pump and dump stocks?"), ("a", "Which bus goes to the harbour today?")]
        with tempfile.TemporaryDirectory() as d:
            p = Path(d) / "valid.jsonl"
            p.write_text("".join(json.dumps({"source": s, "messages": [{"role": "user", "content": q},
                                                                        {"role": "assistant", "content": "x"}]}) + "\n"
                                 for s, q in rows))
            items = G.make_set(p, per_source=2)
            self.assertEqual([i["text"] for i in items], ["How do I keep bread fresh longer?",
                                                          "How far away is the moon from here?",
                                                          "Is it illegal to pump and dump stocks?"])
            parsed = tomllib.loads(G.toml_set(items))["question"]
            self.assertEqual([q["text"] for q in parsed], [i["text"] for i in items])
            self.assertEqual(len({q["id"] for q in parsed}), 3)
            refs = G.refs_set(items)
            self.assertEqual([(r["instruction"], r["output"], r["dataset"]) for r in refs],
                             [(i["text"], "x", s) for i, s in zip(items, ["a", "b", "a"])])
            self.assertEqual([r["id"] for r in refs], [i["id"] for i in items])


class Choose(unittest.TestCase):
    def test_highest_threshold_within_the_fire_rate(self):
        items = [{"gate_score": s, "good": s > 0} for s in (-2.0, -1.5, -1.02, -0.5, 0.1, 0.3, 0.8, 1.0)]
        self.assertEqual(G.choose(items, 0.25), -1.05)  # fires on −2.0 and −1.5: 2 of 8
        self.assertEqual(G.choose(items, 0.4), -0.5)  # and −1.02: 3 of 8
        self.assertEqual(G.choose(items, 0.0), -2.0)
        self.assertEqual(G.choose(items, 1.0), 1.05)  # ends: fires on all
        rows = G.sweep(items, [-1.05])
        self.assertEqual(rows[0]["fire_rate"], 0.25)
        self.assertEqual((rows[0]["good_spoken"], rows[0]["good_gated"]), (4 / 6, 0.0))


if __name__ == "__main__":
    unittest.main()
