"""What the GPU run carries there and back (issue 12 §1): pre-tokenized dialogues (pretok.py), a
time-budgeted schedule (train.py --schedule-minutes) and weights split into bounded files
(shards.py).

    training/.venv/bin/python -m unittest training/tests/test_gpu_carry.py
"""
from __future__ import annotations

import json
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
import parity  # noqa: E402
import pretok  # noqa: E402
import shards  # noqa: E402
import train as T  # noqa: E402
from test_train_export import dialogues, write_jsonl  # noqa: E402

torch.set_num_threads(1)


def canon(turn_lists):
    return sorted(json.dumps(t) for t in turn_lists)


class Pretokenized(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        d = cls.d = Path(cls.tmp.name)
        cls.tok = parity.tiny_tokenizer(512)
        cls.tok.save(str(d / "tokenizer.json"))
        rows = dialogues(40)
        rows += [rows[3], rows[7], rows[3], {"id": "empty", "messages": []}]  # repeats, as the mix has
        rows[5]["messages"][0]["content"] = "  padded with spaces  "
        cls.rows = rows
        write_jsonl(d / "train.jsonl", rows)
        cls.fmt = M.ChatFormat(M.mulm_for_tokenizer("64-2", cls.tok), cls.tok)
        arrays = pretok.encode_file(d / "train.jsonl", cls.tok)
        cls.arrays = arrays
        pretok.write(arrays, d / "tokenizer.json", d / "train.turns.xz")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_turns_equal_encode_turns_with_repeats(self):
        want = [self.fmt.encode_turns(r["messages"]) for r in self.rows if r["messages"]]
        got = list(pretok.iter_turns(self.d / "train.turns.xz", self.fmt, self.d / "tokenizer.json"))
        self.assertEqual(len(got), 43)
        self.assertEqual(canon(got), canon(want))
        distinct = {json.dumps(r["messages"]) for r in self.rows if r["messages"]}
        self.assertEqual(len(self.arrays["dlg_turns"]), len(distinct))  # each stored once
        self.assertLess(len(distinct), 42)
        self.assertEqual(int(self.arrays["reps"].sum()), 43)

    def test_windows_from_turns_file_equal_windows_from_jsonl(self):
        for opener in (None, (64, 24)):
            a = T.load_windows(self.d / "train.jsonl", self.fmt, 128, None, None, self.d / "tokenizer.json", opener)
            b = T.load_windows(self.d / "train.turns.xz", self.fmt, 128, None, None, self.d / "tokenizer.json", opener)
            wa = sorted((a.get(i)[0].tolist(), a.get(i)[1].tolist()) for i in range(len(a)))
            wb = sorted((b.get(i)[0].tolist(), b.get(i)[1].tolist()) for i in range(len(b)))
            self.assertEqual(wa, wb)
            self.assertGreater(len(wa), 40)

    def test_another_tokenizer_is_refused(self):
        other = parity.tiny_tokenizer(300)
        other.save(str(self.d / "other.json"))
        with self.assertRaisesRegex(ValueError, "another tokenizer"):
            next(pretok.iter_turns(self.d / "train.turns.xz", self.fmt, self.d / "other.json"))

    def test_schedule_minutes_run_stops_and_refuses_resume(self):
        common = ["--preset", "64-2", "--train", str(self.d / "train.turns.xz"),
                  "--valid", str(self.d / "train.turns.xz"), "--tokenizer", str(self.d / "tokenizer.json"),
                  "--batch-size", "4", "--seq-len", "128", "--no-cache", "--log-every", "1",
                  "--schedule-minutes", "0.002", "--min-warmup", "2", "--out", str(self.d / "timed")]
        r = T.main(common)
        self.assertGreaterEqual(r["step"], 1)
        self.assertLess(r["step"], 10**9)
        self.assertTrue((self.d / "timed" / "ckpt.pt").exists())
        with self.assertRaises(SystemExit):
            T.main(common)


class PackedPretraining(unittest.TestCase):
    def test_packed_rows_give_the_loss_of_padded_windows(self):
        tok = parity.tiny_tokenizer(512)
        fmt = M.ChatFormat(M.mulm_for_tokenizer("64-2", tok), tok)
        w = T.Windows.build(dialogues(6, seed=4), fmt, 128)
        model = M.MuLM(M.preset_config("64-2")).init_weights(seed=1).eval()
        idx = np.arange(int(np.searchsorted(np.cumsum(w.lengths()), 256, side="right")))  # one row's worth
        self.assertGreaterEqual(len(idx), 3)
        for stage in ("pretrain", "sft"):
            x, y, m = T.collate(w, idx, fmt.pad_id, stage)
            xp, yp, mp, pos, seg = T.collate_packed(w, [idx], fmt.pad_id, stage)
            self.assertEqual(float(m.sum()), float(mp.sum()))
            with torch.no_grad():
                a = float(model.loss(x, y, m, denom=1.0))
                b = float(model.loss(xp, yp, mp, denom=1.0, pos=pos, seg=seg))
            self.assertAlmostEqual(a, b, delta=1e-5 * abs(a))  # without the isolation: 3e-4 off

    def test_pack_rows_run(self):
        with tempfile.TemporaryDirectory() as d:
            d = Path(d)
            tok = parity.tiny_tokenizer(512)
            tok.save(str(d / "tok.json"))
            write_jsonl(d / "train.jsonl", dialogues(60))
            r = T.main(["--preset", "64-2", "--train", str(d / "train.jsonl"), "--valid", str(d / "train.jsonl"),
                        "--tokenizer", str(d / "tok.json"), "--batch-size", "2", "--seq-len", "128", "--no-cache",
                        "--steps", "6", "--lr", "3e-3", "--pack-rows", "--out", str(d / "run")])
            self.assertEqual(r["step"], 6)
            run = json.loads((d / "run" / "run.json").read_text())
            self.assertLess(run["total_steps"], 10)


class TimeSchedule(unittest.TestCase):
    def test_lr_by_time(self):
        peak, budget = 5e-4, 300.0
        self.assertAlmostEqual(T.lr_by_time(0, 0.0, budget, peak, 100), peak / 100)
        self.assertAlmostEqual(T.lr_by_time(99, 1.0, budget, peak, 100), peak, delta=peak * 1e-4)
        self.assertAlmostEqual(T.lr_by_time(5000, budget, budget, peak, 100), 0.1 * peak)
        self.assertAlmostEqual(T.lr_by_time(5000, 2 * budget, budget, peak, 100), 0.1 * peak)  # clamped
        self.assertAlmostEqual(T.lr_by_time(5000, budget / 2, budget, peak, 100), peak * 0.55)
        lrs = [T.lr_by_time(100 + s, s, budget, peak, 100) for s in range(0, 301, 10)]
        self.assertTrue(all(a >= b for a, b in zip(lrs, lrs[1:])))


class Shards(unittest.TestCase):
    def test_split_join_bounded_and_exact_to_bf16(self):
        g = torch.Generator().manual_seed(0)
        state = {"emb": torch.randn(300, 64, generator=g), "w": torch.randn(64, 64, generator=g),
                 "norm": torch.ones(64), "step_buf": torch.tensor([3], dtype=torch.int64)}
        with tempfile.TemporaryDirectory() as d:
            d = Path(d)
            torch.save({"model": state, "mulm": {"preset": "x"}, "step": 7, "args": {"lr": 1e-3, "obj": [1]}},
                       d / "ckpt.pt")
            max_mib = 0.02  # 20 KiB − the header's room: forces the 38 KB embedding into pieces
            paths = shards.split(d / "ckpt.pt", d / "out", max_mib=max_mib)
            self.assertGreater(len(paths), 2)
            for p in paths:
                self.assertLessEqual(p.stat().st_size, max_mib * 2**20)
            ck = shards.join(d / "out", d / "joined.pt")
            self.assertEqual(ck["step"], 7)
            self.assertEqual(ck["mulm"], {"preset": "x"})
            self.assertEqual(ck["args"], {"lr": 1e-3})
            for k, t in state.items():
                want = t.to(torch.bfloat16).float() if t.is_floating_point() else t
                self.assertTrue(torch.equal(ck["model"][k], want), k)
            self.assertEqual(ck["model"]["emb"].dtype, torch.float32)


if __name__ == "__main__":
    unittest.main()
