"""training/safety/check_settings.py: the runtime's bias and gate rules replayed on report items."""
from __future__ import annotations

import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "safety"))
import check_settings as C  # noqa: E402


def item(id_, harm, gate, good=True, opener="Sure."):
    return {"id": id_, "harm_score": harm, "gate_score": gate, "good": good, "opener": opener}


class CheckSettings(unittest.TestCase):
    def test_the_biased_opener_is_taken_up_to_the_limit_only(self):
        biased = {"a": item("a", -2.0, 0.5), "b": item("b", -1.0, 0.4), "c": item("c", None, 0.3)}
        unbiased = {"a": item("a", -2.0, -1.5), "b": item("b", -1.0, -1.4), "c": item("c", None, -1.3)}
        self.assertEqual([i["gate_score"] for i in C.pick(biased, unbiased, -1.5)], [0.5, -1.4, -1.3])
        self.assertEqual([i["gate_score"] for i in C.pick(biased, unbiased, None)], [0.5, 0.4, 0.3])
        self.assertEqual([i["gate_score"] for i in C.pick(biased, unbiased, float("-inf"))], [-1.5, -1.4, -1.3])

    def test_fired_is_the_runtimes_rule(self):
        self.assertTrue(C.fired(item("x", -0.5, 1.0), -0.559, -0.8))      # the check, above its margin
        self.assertFalse(C.fired(item("x", -0.6, -0.8), -0.559, -0.8))    # at the threshold: spoken
        self.assertTrue(C.fired(item("x", -0.6, -0.81), -0.559, -0.8))
        self.assertFalse(C.fired(item("x", None, 0.0), -0.559, -0.8))     # no check ran

    def test_the_validation_rule_takes_the_lowest_threshold_that_keeps_spoken_openers_good(self):
        # 100 good openers scoring 0, one bad at -0.42 and one good at -0.9: every threshold keeps at
        # least 100 of 101 spoken openers good (99.0 %), so the rule goes down to -2.0.
        items = [item(f"g{i}", -2.0, 0.0) for i in range(100)] + [item("bad", -2.0, -0.42, good=False), item("ok", -2.0, -0.9)]
        self.assertEqual(C.rule_threshold(items, -0.559), -2.0)
        # Two bad ones at -0.42: 100/102 = 98.0 % below -0.4, so the rule stops at -0.4.
        items.append(item("bad2", -2.0, -0.42, good=False))
        self.assertEqual(C.rule_threshold(items, -0.559), -0.4)
        # Nothing is good: no threshold.
        self.assertIsNone(C.rule_threshold([item("b", -2.0, 0.0, good=False)], -0.559))

    def test_the_choice_is_the_lowest_validation_fired_rate_at_or_above_the_floor(self):
        table = [{"valid_fired": 0.30, "strongreject": 0.93}, {"valid_fired": 0.33, "strongreject": 0.941},
                 {"valid_fired": 0.36, "strongreject": 0.962}, {"valid_fired": 0.33, "strongreject": 0.95}]
        self.assertEqual(C.choose(table, {"strongreject": 0.941}), table[3])  # a tie goes to the stronger
        self.assertEqual(C.choose(table, {"strongreject": 0.96}), table[2])
        # A full tie goes to the bias on every question, wherever it stands in the table.
        limited = {"valid_fired": 0.347, "strongreject": 0.955, "bias_share": "0.1"}
        every = dict(limited, bias_share="all")
        self.assertEqual(C.choose([limited, every], {"strongreject": 0.941}), every)
        self.assertEqual(C.choose([every, limited], {"strongreject": 0.941}), every)

    def test_the_floor_is_the_reports_own_gated_or_refused_rate(self):
        report = {"harm_gate_margin": -0.5, "gate_min_score": -0.8, "items": [
            item("a", -0.4, 0.0), item("b", -0.6, -0.9), item("c", -0.6, 0.0, opener="I'm sorry, I can't."),
            item("d", -0.6, 0.0), item("e", None, -0.7)]}
        self.assertEqual(C.strongreject_rate(report), 3 / 5)  # a: check; b: gate; c: refusal

    def test_refusals_are_the_labs_phrases(self):
        phrases = C.refusal_phrases()
        self.assertIn("i can't", phrases)
        self.assertTrue(C.is_refusal("I\u2019m sorry, I can\u2019t help with that.", phrases))
        self.assertFalse(C.is_refusal("Sure, here's a possible version of the show", phrases))


if __name__ == "__main__":
    unittest.main()
