"""paired_loss.py: the paired validation-loss difference of two μLMs and its standard error.

    training/.venv/bin/python -m unittest training/tests/test_paired_loss.py

CPU only, a few seconds (tiny 64-2 models, a tiny tokenizer).
"""
from __future__ import annotations

import json
import math
import sys
import tempfile
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import model as M  # noqa: E402
import paired_loss as P  # noqa: E402
import parity  # noqa: E402
import train as T  # noqa: E402
from test_train_export import dialogues, write_jsonl  # noqa: E402

torch.set_num_threads(1)


class Statistics(unittest.TestCase):
    def test_difference_and_error_by_hand(self):
        a, b, n = np.array([10.0, 20.0, 30.0]), np.array([12.0, 19.0, 33.0]), np.array([5.0, 10.0, 10.0])
        r = P.paired_difference(a, b, n)
        self.assertAlmostEqual(r["loss_a"], 60 / 25)
        self.assertAlmostEqual(r["loss_b"], 64 / 25)
        self.assertAlmostEqual(r["diff"], 4 / 25)
        # residuals (b − a) − 0.16·n = 2 − 0.8, −1 − 1.6, 3 − 1.6
        resid = np.array([1.2, -2.6, 1.4])
        self.assertAlmostEqual(r["se"], math.sqrt(3 / 2 * float((resid ** 2).sum())) / 25)
        self.assertEqual((r["dialogues_better"], r["dialogues_worse"]), (1, 2))

    def test_identical_models_differ_by_nothing(self):
        a, n = np.array([3.0, 4.0, 8.0]), np.array([1.0, 2.0, 3.0])
        r = P.paired_difference(a, a.copy(), n)
        self.assertEqual((r["diff"], r["se"]), (0.0, 0.0))

    def test_dialogues_without_tokens_are_left_out_and_one_is_too_few(self):
        r = P.paired_difference(np.array([1.0, 0.0, 2.0]), np.array([2.0, 0.0, 2.0]), np.array([1.0, 0.0, 1.0]))
        self.assertEqual(r["dialogues"], 2)
        with self.assertRaisesRegex(ValueError, "1 dialogues"):
            P.paired_difference(np.array([1.0, 0.0]), np.array([2.0, 0.0]), np.array([1.0, 0.0]))


class TinyModels(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        d = Path(self.tmp.name)
        tok = parity.tiny_tokenizer(512)
        self.mulm = M.mulm_for_tokenizer("64-2", tok)
        self.fmt = M.ChatFormat(self.mulm, tok)
        self.a = M.MuLM(M.preset_config("64-2")).init_weights(seed=1).eval()
        self.b = M.MuLM(M.preset_config("64-2")).init_weights(seed=2).eval()
        self.ds = dialogues(12, seed=4)
        self.dirs = []
        for name, m in (("a", self.a), ("b", self.b)):
            md = d / name
            md.mkdir()
            from safetensors.torch import save_file

            save_file({k: v.contiguous() for k, v in m.state_dict().items()}, str(md / "model.safetensors"))
            (md / "mulm.json").write_text(json.dumps(self.mulm))
            tok.save(str(md / "tokenizer.json"))
            self.dirs.append(md)
        self.valid = d / "valid.jsonl"
        write_jsonl(self.valid, self.ds)

    def tearDown(self):
        self.tmp.cleanup()

    def test_pooled_loss_is_the_training_logs_valid_assistant(self):
        loss, n = P.dialogue_sums(self.a, self.fmt, self.ds, 64)
        w = T.Windows.build(self.ds, self.fmt, 64)
        ref = T.windows_loss(self.a, w, "sft", self.fmt.pad_id, torch.device("cpu"))
        self.assertAlmostEqual(float(loss.sum() / n.sum()), ref, places=4)

    def test_main_compares_two_model_dirs(self):
        out = Path(self.tmp.name) / "r.json"
        r = P.main(["--model", str(self.dirs[0]), "--model", str(self.dirs[1]), "--valid", str(self.valid),
                    "--seq", "64", "--out", str(out)])
        self.assertEqual(json.loads(out.read_text())["diff"], r["diff"])
        la, n = P.dialogue_sums(self.a, self.fmt, self.ds, 64)
        lb, _ = P.dialogue_sums(self.b, self.fmt, self.ds, 64)
        self.assertAlmostEqual(r["diff"], float((lb - la).sum() / n.sum()), places=6)
        self.assertGreater(r["se"], 0.0)
        self.assertEqual(r["dialogues"], 12)
        # A against itself: no difference
        r0 = P.main(["--model", str(self.dirs[0]), "--model", str(self.dirs[0]), "--valid", str(self.valid), "--seq", "64"])
        self.assertEqual((r0["diff"], r0["se"]), (0.0, 0.0))

    def test_different_tokenizers_are_refused(self):
        parity.tiny_tokenizer(300).save(str(self.dirs[1] / "tokenizer.json"))
        with self.assertRaisesRegex(SystemExit, "different tokenizers"):
            P.main(["--model", str(self.dirs[0]), "--model", str(self.dirs[1]), "--valid", str(self.valid)])

    def test_a_dir_without_weights_is_named(self):
        (self.dirs[1] / "model.safetensors").unlink()
        with self.assertRaisesRegex(FileNotFoundError, str(self.dirs[1])):
            P.load_model_dir(self.dirs[1])


if __name__ == "__main__":
    unittest.main()
