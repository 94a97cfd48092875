"""Issue 12: `teacher.py` picks the mix's questions, cleans Gemma's replies and keeps only the
ones the opener stage should learn from.

    training/.venv/bin/python -m unittest training/tests/test_teacher.py

CPU only, under a second; Gemma itself is not loaded (requirements-teacher.txt is not needed).
"""
from __future__ import annotations

import contextlib
import io
import json
import sys
import tempfile
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
TRAINING = HERE.parent
ROOT = TRAINING.parent
sys.path.insert(0, str(TRAINING))

sys.path.insert(0, str(TRAINING / "safety"))

import harm_probe as H  # noqa: E402
import teacher as TE  # noqa: E402


def line(id_, source, *turns):
    roles = ["user", "assistant"] * len(turns)
    msgs = [{"role": r, "content": c} for r, c in zip(roles, turns)]
    return json.dumps({"id": id_, "source": source, "messages": msgs}) + "\n"


class Picks(unittest.TestCase):
    def test_only_short_plain_first_questions_of_the_chosen_sources(self):
        self.assertEqual(TE.pick(json.loads(line("a", "olmo_piqa", "How do I boil potatoes?", "x"))),
                         "How do I boil potatoes?")
        for source, q in [("olmo_csqa", "Where would you put a plate?"),  # multiple choice
                          ("wordnet", "What does 'ephemeral' mean?"),  # glosses
                          ("sharegpt", "Fix this: ```x = 1```"),  # code
                          ("sharegpt", "Summarize\nthis text"),  # more than one line
                          ("chitchat", "hi"),  # under 3 words
                          ("sharegpt", " ".join(["word"] * 31))]:  # over 30 words
            self.assertIsNone(TE.pick(json.loads(line("a", source, q, "x"))), (source, q))
        self.assertIsNone(TE.pick({"source": "sharegpt", "messages": [{"role": "assistant", "content": "Hello there you"}]}))

    def test_questions_are_deduplicated_stably_ordered_and_a_broken_line_is_named(self):
        with tempfile.TemporaryDirectory() as d:
            mix = Path(d) / "mix.jsonl"
            mix.write_text(line("s/1", "sharegpt", "What is a good name for a dog?", "Rex.")
                           + line("s/2", "sharegpt", "what is a  good name for a dog?", "Max.")
                           + "\n" + line("p/1", "olmo_piqa", "How do you peel a mango?", "With a knife.")
                           + line("w/1", "wordnet", "What does 'mango' mean?", "A fruit."))
            qs = TE.questions(mix)
            self.assertEqual(sorted(i for i, _ in qs), ["p/1", "s/1"])
            self.assertEqual([i for i, _ in qs], sorted(["p/1", "s/1"], key=TE.stable_order))
            mix.write_text(line("s/1", "sharegpt", "What is a good name for a dog?", "Rex.") + "{broken\n")
            with self.assertRaises(SystemExit) as e:
                TE.questions(mix)
            self.assertIn("mix.jsonl:2", str(e.exception))


class CleansAndKeeps(unittest.TestCase):
    def test_clean_takes_the_first_line_and_cuts_long_replies_at_a_sentence_end(self):
        self.assertEqual(TE.clean(" Jane Austen wrote it.\n\nUser: next"), "Jane Austen wrote it.")
        long = "Eggs take ten minutes. Then cool them in cold water for a while so they peel easily later on"
        self.assertEqual(TE.clean(long), "Eggs take ten minutes.")
        no_end = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen"
        self.assertEqual(TE.clean(no_end).split(), no_end.split()[:TE.MAX_WORDS])

    def test_opener8_is_the_first_8_words_of_the_first_line(self):
        self.assertEqual(TE.opener8(" Boil an egg for 10 minutes, then boil it again.\nUser: x"),
                         "Boil an egg for 10 minutes, then boil")

    def test_repeats_is_the_gates_rule(self):
        self.assertTrue(TE.repeats("a good way to make a good way to make"))  # a pair twice
        self.assertTrue(TE.repeats("Plants, more plants and a plant"))  # a content word 3 times (stemmed)
        self.assertFalse(TE.repeats("the cat and the dog"))  # "the" twice, no pair twice
        self.assertFalse(TE.repeats("To boil potatoes, cover them with cold water."))

    def test_keep_wants_four_words_on_topic_without_repeats_or_a_new_turn(self):
        q = "How long should I boil potatoes?"
        self.assertTrue(TE.keep(q, "Boil potatoes for about fifteen minutes."))
        self.assertFalse(TE.keep(q, "About fifteen minutes."))  # 3 words
        self.assertFalse(TE.keep(q, "It depends on how hungry you are."))  # off topic
        self.assertFalse(TE.keep(q, "Boil potatoes, boil potatoes, boil potatoes."))  # repeats
        self.assertFalse(TE.keep(q, "User: how long do I boil potatoes"))  # Gemma wrote the next turn

    def test_record_is_a_mix_dialogue(self):
        r = TE.record("olmo/piqa/7", "How do you peel a mango?", "Peel a mango with a sharp knife.")
        self.assertEqual(r["id"], "teacher/olmo/piqa/7")
        self.assertEqual([m["role"] for m in r["messages"]], ["user", "assistant"])


class Resumes(unittest.TestCase):
    def test_done_ids_are_the_seen_list_and_the_kept_replies(self):
        with tempfile.TemporaryDirectory() as d:
            out = Path(d) / "teacher.jsonl"
            self.assertEqual(TE.done_ids(out), set())
            out.write_text(json.dumps(TE.record("p/1", "q", "r")) + "\n")
            Path(f"{out}.seen").write_text("s/1\ns/2\n")
            self.assertEqual(TE.done_ids(out), {"p/1", "s/1", "s/2"})
            with open(out, "a") as f:
                f.write('{"id": "teacher/p/2", "mess')  # a write cut by a kill
            with self.assertRaises(SystemExit) as e:
                TE.done_ids(out)
            self.assertIn(f"{out}:2", str(e.exception))


    def test_a_rerun_with_nothing_left_loads_no_model_and_bad_arguments_are_named(self):
        with tempfile.TemporaryDirectory() as d:
            mix, out = Path(d) / "mix.jsonl", Path(d) / "teacher.jsonl"
            mix.write_text(line("p/1", "olmo_piqa", "How do you peel a mango?", "With a knife."))
            Path(f"{out}.seen").write_text("p/1\n")
            missing = Path(d) / "no-such.gguf"  # would be a named exit if it were loaded
            with contextlib.redirect_stdout(io.StringIO()):
                summary = TE.main(["--mix", str(mix), "--out", str(out), "--gguf", str(missing)])
            self.assertEqual(summary["left"], 0)
            with self.assertRaises(SystemExit) as e:
                TE.main(["--mix", str(mix), "--out", str(out), "--batch", "0"])
            self.assertIn("--batch", str(e.exception))


class Archives(unittest.TestCase):
    def test_an_archive_restores_on_a_new_machine_and_never_overwrites_work_done_there(self):
        with tempfile.TemporaryDirectory() as d:
            d = Path(d)
            mix, out, arch = d / "mix.jsonl", d / "a/teacher.jsonl", d / "archive"
            mix.write_text(line("p/1", "olmo_piqa", "How do you peel a mango?", "With a knife.")
                           + line("s/1", "sharegpt", "What is a good name for a dog?", "Rex."))
            out.parent.mkdir()
            kept = json.dumps(TE.record("p/1", "How do you peel a mango?", "To peel a mango, use a knife.")) + "\n"
            out.write_text(kept)
            Path(f"{out}.seen").write_text("s/1\n")  # p/1's batch was killed before its seen line
            with self.assertRaises(SystemExit):  # nothing answered yet is named, no archive made
                TE.archive(d / "none.jsonl", arch)
            self.assertFalse(arch.exists())
            self.assertEqual(TE.archive(out, arch), {"answered": 2, "kept": 1, "archive": str(arch)})

            new = d / "b/teacher.jsonl"  # a new machine: neither file is there
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                summary = TE.main(["--mix", str(mix), "--out", str(new), "--archive-dir", str(arch),
                                   "--gguf", str(d / "no-such.gguf")])
            self.assertEqual(summary["left"], 0)  # both questions were answered: no model loaded
            self.assertEqual(new.read_text(), kept)
            self.assertEqual(Path(f"{new}.seen").read_text().split(), ["p/1", "s/1"])

            new.write_text("")  # work done here is kept: restore only fills a missing output
            self.assertIsNone(TE.restore(new, arch))
            self.assertEqual(new.read_text(), "")

            (arch / "teacher.seen.xz").write_bytes(b"not xz")
            with self.assertRaises(SystemExit) as e:
                TE.restore(d / "c/teacher.jsonl", arch)
            self.assertIn("teacher.seen.xz", str(e.exception))
            self.assertFalse((d / "c/teacher.jsonl").exists())


class ScoresEveryday(unittest.TestCase):
    def test_every_everyday_question_is_asked_and_scored_by_the_gates_rule(self):
        class Echo:  # stands in for Gemma: repeats the question back, or says nothing on topic
            def __init__(self, on_topic):
                self.on_topic, self.asked = on_topic, []

            def replies(self, qs):
                self.asked += qs
                return [q if self.on_topic else "I have no idea at all." for q in qs]

        for on_topic, share in ((False, 0.0), (True, 1.0)):
            fake = Echo(on_topic)
            with contextlib.redirect_stdout(io.StringIO()):
                summary = TE.score_everyday(fake, batch=16)
            self.assertEqual(fake.asked, H.everyday_prompts())
            self.assertEqual((summary["everyday"], summary["share"]), (40, share))


class FewShot(unittest.TestCase):
    def test_no_few_shot_question_is_an_everyday_question_and_every_answer_is_kept(self):
        everyday = {q.lower() for q in H.everyday_prompts()}
        for q, a in TE.FEW_SHOT:
            self.assertNotIn(q.lower(), everyday)
            self.assertTrue(TE.keep(q, a), (q, a))
        prefix = TE.few_shot_prefix()
        self.assertTrue(prefix.endswith("\n\n") and prefix.count("User: ") == len(TE.FEW_SHOT))
        self.assertEqual(TE.turn_text("Why?"), "User: Why?\nAssistant:")


if __name__ == "__main__":
    unittest.main()
