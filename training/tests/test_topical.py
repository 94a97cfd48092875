"""Issue 12: `topical.py` marks off-topic replies and the opener stage skips them.

    training/.venv/bin/python -m unittest training/tests/test_topical.py

CPU only, under a second.
"""
from __future__ import annotations

import io
import json
import re
import sys
import tempfile
import unittest
from contextlib import redirect_stdout
from pathlib import Path

HERE = Path(__file__).resolve().parent
TRAINING = HERE.parent
ROOT = TRAINING.parent
sys.path.insert(0, str(TRAINING))
sys.path.insert(0, str(HERE))

import model as M  # noqa: E402
import parity  # noqa: E402
import topical as TP  # noqa: E402
import train as T  # noqa: E402
from test_opener_mix_gguf import synthetic_turns  # noqa: E402


def dialogue(source, *turns):
    roles = ["user", "assistant"] * len(turns)
    return {"id": "t", "source": source, "messages": [{"role": r, "content": c} for r, c in zip(roles, turns)]}


class SameRuleAsTheGate(unittest.TestCase):
    def test_stop_words_are_the_runtime_gates(self):
        src = (ROOT / "lm/src/gate.rs").read_text()
        block = re.search(r"const STOP_WORDS: &\[&str\] = &\[(.*?)\];", src, re.S).group(1)
        self.assertEqual(set(re.findall(r'"([^"]+)"', block)), set(TP.STOP_WORDS))

    def test_the_gates_own_cases(self):
        # lm/src/gate.rs: topical_matches_stems_and_ignores_function_words
        self.assertTrue(TP.topical("Why is the sky blue?", "The sky looks blue because"))
        self.assertTrue(TP.topical("How do I bake bread?", "Breads take about an hour"))
        self.assertFalse(TP.topical("Why is the sky blue?", "The answer is a person."))
        self.assertFalse(TP.topical("What should I do?", "You should do what you can"))

    def test_stems_apostrophes_and_the_eight_word_window(self):
        self.assertTrue(TP.topical("Is my cat’s fur healthy?", "Cats shed more in spring"))
        self.assertTrue(TP.topical("How do vaccines work?", "A vaccination teaches the body"))  # "vacci"
        self.assertTrue(TP.topical("Do glasses help?", "Glass is made from sand"))  # both stem to "glass"
        self.assertFalse(TP.topical("How do I boil pasta?", "Boiling takes ten minutes"))  # "boili" ≠ "boil", as in Rust
        self.assertFalse(TP.topical("Why is ice slippery?", "One two three four five six seven eight ice"))
        self.assertTrue(TP.topical("Why is ice slippery?", "One two three four five six seven ice"))


class Marking(unittest.TestCase):
    def test_off_topic_turns_are_marked_and_stale_marks_dropped(self):
        d = dialogue("chitchat", "Why is the sky blue?", "Sunlight scatters and the sky looks blue.",
                     "haha ok", "Do you like pizza?", "What makes bread rise?", "Yeast makes bread rise.")
        d["messages"][5]["opener"] = False  # stale: on topic now
        self.assertEqual(TP.mark(d), (3, 2))
        self.assertEqual([m.get("opener") for m in d["messages"]], [None, None, None, False, None, None])

    def test_a_reply_that_follows_no_user_turn_is_not_counted(self):
        d = {"source": "x", "messages": [{"role": "system", "content": "sky"},
                                         {"role": "assistant", "content": "The sky"}]}
        self.assertEqual(TP.mark(d), (0, 0))
        self.assertNotIn("opener", d["messages"][1])

    def test_caps_hold_among_what_is_kept(self):
        # 100 on-topic turns: 30 from "wordnet" (cap 10 %), 20 opening "sure here are" (cap 5 %)
        rows = [("sure here are", "sharegpt", TP.stable_fraction(str(i), "a")) for i in range(20)]
        rows += [(f"word {i}", "wordnet", TP.stable_fraction(str(i), "b")) for i in range(30)]
        rows += [(f"other {i}", "sharegpt", TP.stable_fraction(str(i), "c")) for i in range(50)]
        by_opening, by_source = TP.keep_thresholds(rows, 0.05, {"wordnet": 0.10})
        kept = [r for r in rows if r[2] < min(by_opening.get(r[0], 2.0), by_source.get(r[1], 2.0))]
        n = len(kept)
        self.assertLessEqual(sum(r[0] == "sure here are" for r in kept), 0.05 * n)
        self.assertLessEqual(sum(r[1] == "wordnet" for r in kept), 0.10 * n)
        self.assertEqual(sum(r[0].startswith("other") for r in kept), 50)  # uncapped: all kept
        # the kept ones of a capped group are its smallest fractions: the same on every machine
        wn = sorted(r[2] for r in rows if r[1] == "wordnet")
        self.assertEqual(sorted(r[2] for r in kept if r[1] == "wordnet"), wn[:sum(r[1] == "wordnet" for r in kept)])

    def test_cli_writes_every_dialogue_and_rejects_a_bad_cap(self):
        with tempfile.TemporaryDirectory() as tmp:
            src, out = Path(tmp) / "mix.jsonl", Path(tmp) / "topical.jsonl"
            ds = [dialogue("sharegpt", "How do I boil an egg?", "Boil the egg for nine minutes."),
                  dialogue("chitchat", "hey there", "Do you like dogs?")]
            src.write_text("".join(json.dumps(d) + "\n" for d in ds))
            with redirect_stdout(io.StringIO()) as o:
                TP.main([str(src), "--out", str(out), "--max-opening-share", "1", "--max-source-share"])
            summary = json.loads(o.getvalue())
            self.assertEqual((summary["turns"], summary["kept"]), (2, 1))
            got = [json.loads(line) for line in out.read_text().splitlines()]
            self.assertEqual([m["content"] for d in got for m in d["messages"]],
                             [m["content"] for d in ds for m in d["messages"]])
            self.assertEqual([d["messages"][1].get("opener") for d in got], [None, False])
            for bad in (["wordnet=0"], ["wordnet=x"], ["=0.1"], ["wordnet=nan"]):
                with self.assertRaises(SystemExit) as e:
                    TP.main([str(src), "--out", str(out), "--max-source-share", *bad])
                self.assertIn(bad[0], str(e.exception))


class KeepOffTopic(unittest.TestCase):
    def test_a_stable_share_of_off_topic_turns_is_kept(self):
        # 400 off-topic and 100 on-topic replies; keeping 25 % of the off-topic ones keeps ≈ 100 of them
        off = [dialogue("chitchat", f"Do you like dogs {i}?", "haha me too") for i in range(400)]
        on = [dialogue("sharegpt", f"How do I boil egg number {i}?", "Boil the egg for nine minutes.")
              for i in range(100)]
        kept = [sum(TP.mark(d, keep_off_topic=share)[1] for d in off + on) for share in (0.0, 0.25, 1.0)]
        self.assertEqual(kept[0], 100)
        self.assertTrue(170 <= kept[1] <= 230, kept[1])  # 100 + 25 % of 400, ± 3 σ
        self.assertEqual(kept[2], 500)
        # stable: the same turns on every call, and a larger share keeps a superset
        ids = lambda share: {i for i, d in enumerate(off) if TP.mark(d, keep_off_topic=share)[1]}
        self.assertEqual(ids(0.25), ids(0.25))
        self.assertLessEqual(ids(0.1), ids(0.25))
        # the draw is independent of the caps' (an unsalted fraction below 0.25 is no guide to it)
        unsalted = {i for i, d in enumerate(off) if TP.stable_fraction(d["messages"][0]["content"], "haha me too") < 0.25}
        self.assertNotEqual(unsalted, ids(0.25))

    def test_cli_keeps_off_topic_turns_and_rejects_a_bad_share(self):
        with tempfile.TemporaryDirectory() as tmp:
            src, out = Path(tmp) / "mix.jsonl", Path(tmp) / "topical.jsonl"
            ds = [dialogue("chitchat", f"hey there {i}", "Do you like dogs?") for i in range(50)]
            src.write_text("".join(json.dumps(d) + "\n" for d in ds))
            for share, want in (("0", 0), ("1", 50)):
                with redirect_stdout(io.StringIO()) as o:
                    TP.main([str(src), "--out", str(out), "--max-opening-share", "1", "--keep-off-topic", share])
                summary = json.loads(o.getvalue())
                self.assertEqual((summary["kept"], summary["keep_off_topic"]), (want, float(share)))
            for bad in ("-0.1", "1.5", "nan"):
                with self.assertRaises(SystemExit) as e:
                    TP.main([str(src), "--out", str(out), "--keep-off-topic", bad])
                self.assertIn("--keep-off-topic", str(e.exception))


class BadMix(unittest.TestCase):
    def test_a_broken_line_is_an_error_naming_it(self):
        with tempfile.TemporaryDirectory() as tmp:
            src, out = Path(tmp) / "mix.jsonl", Path(tmp) / "topical.jsonl"
            good = json.dumps(dialogue("x", "Why is the sky blue?", "The sky scatters light."))
            for bad in ('{"messages": [', '[1, 2]', '{"messages": "hi"}', '{"messages": [{"role": "user", "content": null}]}'):
                src.write_text(good + "\n\n" + bad + "\n")
                with self.assertRaises(SystemExit) as e:
                    TP.main([str(src), "--out", str(out)])
                self.assertIn(f"{src}:3", str(e.exception))
                self.assertFalse(out.exists())  # no half-written mix

    def test_the_trainer_and_the_tokenizer_builder_name_a_broken_line_too(self):
        import tokenizer as TK

        with tempfile.TemporaryDirectory() as tmp:
            src = Path(tmp) / "train.jsonl"
            good = json.dumps(dialogue("x", "Why is the sky blue?", "The sky scatters light."))
            src.write_text(good + "\n\n" + good + "\n")
            self.assertEqual(len(T.read_jsonl(src)), 2)
            self.assertEqual(len(list(TK.iter_jsonl(src))), 2)
            src.write_text(good + "\n" + '{"messages": [' + "\n")
            for read in (T.read_jsonl, lambda p: list(TK.iter_jsonl(p))):
                with self.assertRaises(SystemExit) as e:
                    read(src)
                self.assertIn(f"{src}:2", str(e.exception))


class OpenerStageSkips(unittest.TestCase):
    BEGIN = [0]

    def test_skipped_turns_make_no_example_but_stay_as_context(self):
        ts = synthetic_turns([("user", 5), ("assistant", 6), ("user", 4), ("assistant", 7)])
        all_ex = T.opener_examples(ts, self.BEGIN, max_ctx=64, n_target=24)
        (ids, fl), = T.opener_examples(ts, self.BEGIN, max_ctx=64, n_target=24, skip=frozenset({1}))
        self.assertEqual((ids, fl), all_ex[1])  # the second reply's example, unchanged
        self.assertTrue(set(ts[1][1][1:-1]) <= set(ids))  # the skipped reply is still in the context
        self.assertEqual(T.opener_skips([{"role": "user"}, {"role": "assistant", "opener": False},
                                         {"role": "assistant", "opener": True}]), frozenset({1}))

    def test_marked_dialogues_through_build_opener(self):
        tok = parity.tiny_tokenizer(512)
        fmt = M.ChatFormat(M.mulm_for_tokenizer("64-2", tok), tok)
        d = dialogue("x", "Why is the sky blue?", "The sky scatters blue light.", "ok", "Pizza is great.")
        TP.mark(d)
        w = T.Windows.build_opener([d], fmt, max_ctx=100, n_target=6)
        self.assertEqual(len(w), 1)
        learned = [int(i) for i, f in zip(w.ids, w.flags) if f]
        reply = tok.encode("The sky scatters blue light.", add_special_tokens=False).ids
        self.assertEqual(learned, reply[:6])


if __name__ == "__main__":
    unittest.main()
