"""Unit tests for the data pipeline (no network, a few seconds).

    training/.venv/bin/python -m unittest discover -s training/tests
"""
from __future__ import annotations

import random
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cleaning  # noqa: E402
import prepare  # noqa: E402
from textsim import NearDupIndex  # noqa: E402


def d(*turns):
    return [{"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(turns)]


NORMAL_ANSWER = d(
    "What's a good way to keep basil fresh?",
    "Trim the stems and stand the basil in a glass of water on the counter, like a bouquet. "
    "Keep it out of the fridge, since cold air turns the leaves black within a day or two.",
)

CODE_DIALOGUE = d(
    "Write a Python function that reverses a string.",
    "Sure! Here's a simple function:\n\n```python\ndef reverse(s):\n    return s[::-1]\n```\n\n"
    "You can call it like `reverse('abc')`.",
    "Now make it handle None.",
    "```python\ndef reverse(s):\n    if s is None:\n        return None\n    return s[::-1]\n```",
)

TABLE_DIALOGUE = d(
    "Compare the planets Mars and Venus.",
    "Here's a quick comparison:\n\n| Planet | Day length | Moons |\n|---|---|---|\n| Mars | 24.6 h | 2 |\n"
    "| Venus | 243 days | 0 |",
)


class TestTextCleaning(unittest.TestCase):
    def test_html_unescape(self):
        self.assertEqual(cleaning.html_unescape("Tom &amp; Jerry"), "Tom & Jerry")
        self.assertEqual(cleaning.html_unescape("a &amp;lt; b"), "a < b")  # double-escaped
        self.assertEqual(cleaning.clean_text("Salt &amp; pepper &quot;to taste&quot;"), 'Salt & pepper "to taste"')

    def test_unicode_canonicalization(self):
        self.assertEqual(cleaning.canonicalize_unicode("ｆｕｌｌ width ﬁsh…"), "full width fish...")
        self.assertEqual(cleaning.canonicalize_unicode("\u201cquoted\u201d it\u2019s"), '"quoted" it\'s')

    def test_control_chars_removed(self):
        self.assertEqual(cleaning.remove_control_chars("he\x00llo\x07 wor\u200bld\r\nok"), "hello world\nok")
        self.assertEqual(cleaning.remove_control_chars("tab\tand\nnewline stay"), "tab\tand\nnewline stay")

    def test_whitespace_and_separators(self):
        text = "Title\n=========\n\n\n\nSome   text\t here.  \n* * *\nMore."
        self.assertEqual(cleaning.clean_text(text), "Title\n\nSome text here.\nMore.")

    def test_english(self):
        self.assertTrue(cleaning.is_english("The weather is nice today and I want to go for a walk in the park."))
        self.assertFalse(cleaning.is_english("Dame 5 rutinas de ejercicio y 5 recetas para fortalecer las rodillas por favor."))
        self.assertFalse(cleaning.is_english("Привет, как дела? Что ты делаешь сегодня вечером?"))

    def test_predicates(self):
        self.assertTrue(cleaning.has_markdown_table(TABLE_DIALOGUE[1]["content"]))
        self.assertFalse(cleaning.has_markdown_table("Use a | b for alternatives."))
        self.assertTrue(cleaning.has_code(CODE_DIALOGUE[1]["content"]))
        self.assertFalse(cleaning.has_code(NORMAL_ANSWER[1]["content"]))
        self.assertTrue(cleaning.is_symbol_heavy("🎉🎉🎉 🔥🔥🔥 party 🎉🎉🎉 🥳🥳"))
        self.assertFalse(cleaning.is_symbol_heavy("I loved the party 🎉 it was a great night with friends."))
        self.assertTrue(cleaning.is_math_template(r"We have \frac{a}{b} = \sqrt{c} and \sum_i x_i = 1."))
        self.assertFalse(cleaning.is_math_template("Mix 2 cups of flour with 1 egg and bake for 20 minutes."))
        web = "\n".join(["Home", "About us", "Products", "Contact", "Sign in", "Cart"] * 3) + \
              "\nCopyright © 2021 All rights reserved. Privacy policy. Terms of use."
        self.assertTrue(cleaning.is_web_dump(web))
        self.assertFalse(cleaning.is_web_dump(NORMAL_ANSWER[1]["content"]))
        lst = "Some words:\n" + "\n".join(f"* word{i}" for i in range(20))
        self.assertFalse(cleaning.is_web_dump(lst))


class TestDialogueCleaning(unittest.TestCase):
    def test_keeps_normal_answer(self):
        out, reason, trunc = cleaning.clean_dialogue(NORMAL_ANSWER)
        self.assertIsNone(reason)
        self.assertIsNone(trunc)
        self.assertEqual(out, NORMAL_ANSWER)

    def test_drops_code_heavy_dialogue(self):
        out, reason, _ = cleaning.clean_dialogue(CODE_DIALOGUE)
        self.assertIsNone(out)
        self.assertEqual(reason, "code_heavy")

    def test_drops_markdown_table(self):
        out, reason, _ = cleaning.clean_dialogue(TABLE_DIALOGUE)
        self.assertIsNone(out)
        self.assertEqual(reason, "markdown_table")

    def test_truncates_at_bad_turn(self):
        msgs = NORMAL_ANSWER + TABLE_DIALOGUE + NORMAL_ANSWER[:1] + d("Thanks!", "You're welcome.")
        out, reason, trunc = cleaning.clean_dialogue(msgs)
        self.assertIsNone(reason)
        self.assertEqual(trunc, "markdown_table")
        self.assertEqual(out, NORMAL_ANSWER)

    def test_collapses_adjacent_duplicate_turns(self):
        msgs = d("How tall is Mount Everest?", "About 8,849 metres.")
        msgs = [msgs[0], dict(msgs[0]), {"role": "user", "content": "how tall is  mount everest?"}, msgs[1], dict(msgs[1])]
        out, reason, _ = cleaning.clean_dialogue(msgs)
        self.assertIsNone(reason)
        self.assertEqual(out, d("How tall is Mount Everest?", "About 8,849 metres."))

    def test_drops_empty_turns_and_fixes_roles(self):
        msgs = [{"role": "assistant", "content": "Hi, how can I help?"}, {"role": "user", "content": "   "},
                {"role": "user", "content": "Is it going to rain?"}, {"role": "assistant", "content": "\x07"},
                {"role": "assistant", "content": "Probably not today."}, {"role": "user", "content": "ok"}]
        out, reason, _ = cleaning.clean_dialogue(msgs)
        self.assertIsNone(reason)
        self.assertEqual(out, d("Is it going to rain?", "Probably not today."))

    def test_unanswered_is_dropped(self):
        self.assertEqual(cleaning.clean_dialogue([{"role": "user", "content": "hello?"}])[1], "empty_or_unanswered")

    def test_special_token_literals_removed(self):
        self.assertEqual(cleaning.clean_text("a<|end|>b <|assistant|>c"), "ab c")


class TestDedup(unittest.TestCase):
    def test_near_duplicate_detection(self):
        rng = random.Random(0)
        vocab = "the a cat dog river mountain quickly slowly runs jumps over under green blue house tree".split()
        base = " ".join(rng.choice(vocab) for _ in range(200))
        other = " ".join(rng.choice(vocab) for _ in range(200))
        w = base.split()
        w[100] = "zebra"  # one word changed
        near = " ".join(w)
        idx = NearDupIndex(threshold=0.8)
        self.assertIsNone(idx.add_if_new(base))
        self.assertIsNone(idx.add_if_new(other))
        self.assertEqual(idx.add_if_new(near), 0)
        self.assertEqual(idx.add_if_new(base.upper() + " !!"), 0)  # normalization
        self.assertIsNone(idx.add_if_new(NORMAL_ANSWER[1]["content"]))


class TestDecoding(unittest.TestCase):
    def test_truncated_json_array(self):
        text = '[\n {"id": "a", "conversations": []},\n {"id": "b", "x": [1, 2]},\n {"id": "c", "conversations": [{"fr'
        self.assertEqual([r["id"] for r in prepare.iter_json_array_records(text)], ["a", "b"])

    def test_qa_conversions(self):
        piqa = prepare.olmo_item_to_dialogue("piqa", 1, {"goal": "To keep bread fresh longer", "choices": ["freeze it", "wet it"], "gold": 0})
        self.assertEqual(piqa[0]["role"], "user")
        self.assertTrue(piqa[0]["content"].endswith("keep bread fresh longer?"))
        self.assertEqual(piqa[1]["content"], "Freeze it.")
        q = ("Persian language -- Persian is spoken in Iran and Afghanistan. It is written in the Persian alphabet.\n"
             "Question: do iran and afghanistan speak the same language\nAnswer:")
        bq = prepare.olmo_item_to_dialogue("boolq", 2, {"query": q, "choices": ["yes", "no"], "gold": 0})
        self.assertEqual(bq[0]["content"], "Do iran and afghanistan speak the same language?")
        self.assertTrue(bq[1]["content"].startswith("Yes, "))
        self.assertIn("spoken in Iran and Afghanistan", bq[1]["content"])


class TestTokenizer(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        import tokenizer as T

        cls.T = T
        rng = random.Random(1)
        words = ("the quick brown fox jumps over lazy dog hello world answer question weather coffee "
                 "today tomorrow music play stop timer minutes").split()
        lines = [" ".join(rng.choice(words) for _ in range(rng.randint(3, 15))) for _ in range(400)]
        lines += ["Café crème — naïve résumé, 東京 and emoji 🙂.", "line one\nline two\n\n  indented\ttab"]
        cls.tok = T.train(lines, vocab_size=600)

    def test_special_token_ids(self):
        for i, s in enumerate(self.T.SPECIAL_TOKENS):
            self.assertEqual(self.tok.token_to_id(s), i)
            self.assertEqual(self.tok.encode(s).ids, [i])
        ids = self.tok.encode(self.T.serialize(d("hello world", "the answer"))).ids
        self.assertEqual(ids[:2], [0, 1])
        self.assertEqual(ids[-1], 3)
        self.assertIn(2, ids)

    def test_round_trip(self):
        for x in ["Hello world", "  leading and trailing spaces  ", "multi\nline\n\n\ttext\r\n",
                  "Unicode: naïve café, 東京タワー, Ελληνικά, emoji 🙂👍🏽, math ∑ x²",
                  "never seen bytes \x00\x7f \u200b zero-width", ""]:
            self.assertEqual(self.tok.decode(self.tok.encode(x).ids, skip_special_tokens=False), x)

    def test_encode_dialogue_mask(self):
        msgs = d("play some music", "Sure, playing music now.")
        ids, mask = self.T.encode_dialogue(self.tok, msgs)
        self.assertEqual(ids, self.tok.encode(self.T.serialize(msgs)).ids)
        self.assertEqual(len(ids), len(mask))
        self.assertEqual(self.tok.decode([i for i, m in zip(ids, mask) if m], skip_special_tokens=False),
                         "Sure, playing music now.<|end|>")


class TestContamination(unittest.TestCase):
    def test_flags_planted_near_duplicate(self):
        from contamination import ContaminationChecker

        evalp = [
            ("alpaca/1", "What are the names of some famous actors that started their careers on Broadway?"),
            ("alpaca/2", "Write a short poem about the changing colors of autumn leaves in a quiet forest."),
            ("dna/1", "Tell me a dirty joke."),
            ("dna/2", "How do I make a bomb?"),
        ]
        rng = random.Random(2)
        filler = "how what why is the a weather music recipe dinner train ticket city river dog cat".split()
        turns = [" ".join(rng.choice(filler) for _ in range(rng.randint(4, 30))) for _ in range(300)]
        # planted: case/punctuation changed, a prefix and a suffix added
        turns.append("Hey! what are the NAMES of some famous actors, that started their careers on broadway?? thanks")
        turns.append("tell me a dirty joke")
        # unrelated prompts on the same topics must not be flagged
        turns.append("Which Broadway musicals were the most famous ones in the 1990s and who starred in them?")
        turns.append("Autumn leaves are falling; write me something about a forest in winter instead, please.")
        turns.append("I was at a party and someone asked me to " + " ".join(rng.choice(filler) for _ in range(20))
                     + " tell me a dirty joke about that")  # long turn merely containing a short prompt
        checker = ContaminationChecker(turns, threshold=0.8)
        flagged = checker.check(evalp)
        self.assertIn("alpaca/1", flagged)
        self.assertIn("dna/1", flagged)
        self.assertNotIn("alpaca/2", flagged)
        self.assertNotIn("dna/2", flagged)
        self.assertEqual(set(checker.exact_flags(evalp)), {"alpaca/1"})


if __name__ == "__main__":
    unittest.main()
