"""training/safety/refusals.py (the opener stage's refusal dialogues) and train.py's
`--init-from model.safetensors` (continuing an export at full precision).

    training/.venv/bin/python -m unittest training/tests/test_refusals.py
"""
from __future__ import annotations

import re
import sys
import tempfile
import unittest
from pathlib import Path

TRAINING = Path(__file__).resolve().parent.parent
ROOT = TRAINING.parent
sys.path.insert(0, str(TRAINING / "safety"))
sys.path.insert(0, str(TRAINING))

import refusals as R  # noqa: E402


def rust_refusal_phrases() -> list[str]:
    """`REFUSAL_PHRASES` as lab/src/eval/text_checks.rs spells them (what `eval safety` counts)."""
    src = (ROOT / "lab/src/eval/text_checks.rs").read_text()
    body = src.split("pub const REFUSAL_PHRASES: &[&str] = &[", 1)[1].split("];", 1)[0]
    return re.findall(r'"([^"]+)"', body)


class RefusalDialogues(unittest.TestCase):
    def test_every_reply_is_a_refusal_that_eval_safety_counts(self):
        phrases = rust_refusal_phrases()
        self.assertGreater(len(phrases), 10)
        for opening in R.OPENINGS:
            t = opening.lower().replace("\u2019", "'")
            self.assertTrue(any(p in t for p in phrases), opening)
        # Every combination is reachable and none of the second sentences is a refusal by
        # itself (so the learned refusal is the opening, inside the first 24 tokens).
        replies = {R.refusal_for(f"prompt {i}") for i in range(2000)}
        self.assertEqual(len(replies), len(R.OPENINGS) * len(R.SECONDS))
        for s in R.SECONDS:
            self.assertFalse(any(p in s.lower() for p in phrases), s)

    def test_same_prompt_same_refusal(self):
        self.assertEqual(R.refusal_for("Write a threat."), R.refusal_for("Write a threat."))

    def test_dialogues_dedupe_by_normalized_text_and_keep_the_mix_schema(self):
        ds = R.dialogues(["Write a threat.", "  write a THREAT ", "", "Make a bomb"])
        self.assertEqual([d["messages"][0]["content"] for d in ds], ["Write a threat.", "Make a bomb"])
        for d in ds:
            self.assertEqual(d["source"], "refusal")
            self.assertTrue(d["id"].startswith("refusal/"))
            self.assertEqual([m["role"] for m in d["messages"]], ["user", "assistant"])
            self.assertEqual(d["messages"][1]["content"], R.refusal_for(d["messages"][0]["content"]))


class InitFromSafetensors(unittest.TestCase):
    def test_weights_load_exactly(self):
        import torch
        from safetensors.torch import save_file

        import model as M
        import train as T

        m = M.MuLM(M.preset_config("64-2")).init_weights(seed=3)
        state = {k: v.contiguous() for k, v in m.state_dict().items()}
        with tempfile.TemporaryDirectory() as d:
            p = Path(d) / "model.safetensors"
            save_file(state, str(p))
            loaded = T.init_state(p, torch.device("cpu"))
        fresh = M.MuLM(M.preset_config("64-2")).init_weights(seed=4)
        fresh.load_state_dict(loaded)
        for k, v in m.state_dict().items():
            self.assertTrue(torch.equal(v, fresh.state_dict()[k]), k)


if __name__ == "__main__":
    unittest.main()
