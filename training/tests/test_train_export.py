"""training/train.py + export.py + parity.py: packing, loss masks, LR schedule, step budgets, a tiny
training run (loss falls, resume is exact), export to a model dir the Rust runtime loads.

    training/.venv/bin/python -m unittest training/tests/test_train_export.py

The Rust side of "the runtime loads the export" is lm/tests/parity_pytorch.rs: it loads the
committed fixture written by parity.py (checked here to be reproducible with the current code)
and compares logits within 1e-4. Set FIRSTWORD_RUST_CHECK=1 to also run that cargo test on the
directory exported in this test (slow: needs a built `lm` crate).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
TRAINING = HERE.parent
ROOT = TRAINING.parent
sys.path.insert(0, str(TRAINING))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import export  # noqa: E402
import model as M  # noqa: E402
import parity  # noqa: E402
import train as T  # noqa: E402

torch.set_num_threads(1)

QA = [
    ("What is the capital of France?", "The capital of France is Paris."),
    ("How far is the moon?", "The moon is about three hundred eighty four thousand kilometers away."),
    ("Tell me a joke.", "Why did the scarecrow win an award? Because he was outstanding in his field."),
    ("Why is the sky blue?", "The sky looks blue because air scatters blue sunlight more than red."),
    ("What should I cook tonight?", "A simple pasta with tomatoes, garlic and olive oil is quick and tasty."),
    ("How do I keep bread fresh longer?", "Keep it in a bread box or freeze slices you will not eat soon."),
]


def dialogues(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        k = int(rng.integers(1, 4))
        msgs = []
        for j in rng.integers(0, len(QA), k):
            q, a = QA[int(j)]
            msgs += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
        out.append({"id": f"t/{i}", "source": "test", "messages": msgs})
    return out


def write_jsonl(path: Path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def turns(spec):
    """spec: [(role, length)] → synthetic turns with distinct token values per turn."""
    out = []
    for t, (role, n) in enumerate(spec):
        ids = [1000 * (t + 1) + i for i in range(n)]
        out.append((role, ids, [1 if role == "assistant" else 0] * n))
    return out


class Packing(unittest.TestCase):
    BEGIN = [7]

    def check_windows(self, spec, max_len):
        ts = turns(spec)
        ws = T.pack_dialogue(ts, self.BEGIN, max_len)
        budget = max_len - len(self.BEGIN)
        fresh = []
        for ids, fl in ws:
            self.assertLessEqual(len(ids), max_len)
            self.assertEqual(ids[: len(self.BEGIN)], self.BEGIN)
            self.assertTrue(all(f == 0 for f in fl[: len(self.BEGIN)]))
            fresh += [t for t, f in zip(ids, fl) if f & T.FRESH]
            # every window is whole turns, except segments of turns longer than the budget
            body = ids[len(self.BEGIN):]
            pos = 0
            while pos < len(body):
                t = body[pos] // 1000 - 1
                n = spec[t][1]
                run = 0
                while pos + run < len(body) and body[pos + run] // 1000 - 1 == t:
                    run += 1
                if n <= budget:
                    self.assertEqual(body[pos:pos + run], ts[t][1], "a turn that fits was split")
                else:  # a segment of an over-long turn: starts at a multiple of the budget
                    self.assertEqual((body[pos] % 1000) % budget, 0)
                pos += run
        # each token is learned exactly once, in order: nothing truncated, nothing duplicated
        self.assertEqual(fresh, [x for _, ids, _ in ts for x in ids])
        return ws

    def test_short_dialogue_is_one_window(self):
        ws = self.check_windows([("user", 5), ("assistant", 9)], 64)
        self.assertEqual(len(ws), 1)

    def test_split_at_turn_boundaries(self):
        ws = self.check_windows([("user", 20), ("assistant", 30), ("user", 25), ("assistant", 30), ("user", 10),
                                 ("assistant", 40)], 64)
        self.assertGreater(len(ws), 1)

    def test_overlong_turn_becomes_pseudo_turns(self):
        ws = self.check_windows([("user", 10), ("assistant", 150), ("user", 5), ("assistant", 8)], 64)
        self.assertGreaterEqual(len(ws), 3)

    def test_short_tail_gets_context(self):
        # 60-token turns fill windows; a final 4-token turn would be a near-empty window: it gets
        # the previous turn(s) prepended as loss-free context
        ws = self.check_windows([("user", 30), ("assistant", 32), ("user", 4)], 64)
        ids, fl = ws[-1]
        self.assertGreater(len(ids), 1 + 4)
        self.assertEqual(sum(1 for f in fl if f & T.FRESH), 4)

    def test_loss_mask_is_exactly_assistant_tokens(self):
        tok = parity.tiny_tokenizer(512)
        mulm = M.mulm_for_tokenizer("64-2", tok)
        fmt = M.ChatFormat(mulm, tok)
        msgs = dialogues(1, seed=3)[0]["messages"]
        (ids, fl), = T.pack_dialogue(fmt.encode_turns(msgs), fmt.begin, 256)
        self.assertEqual(ids, fmt.encode_prompt(msgs)[: -len(fmt.gen)])  # same serialization as inference
        sft = T.loss_mask(np.array(fl, np.uint8), "sft")
        want = []
        sp = {n: t["id"] for n, t in mulm["special_tokens"].items()}
        role = None
        for t in ids:
            if t in (sp["user"], sp["assistant"]):
                role = t
                want.append(False)
            elif t == sp["bos"]:
                want.append(False)
            else:  # content or <|end|>: assistant iff inside an assistant turn
                want.append(role == sp["assistant"])
        self.assertEqual(list(sft), want)
        n_assist = sum(len(tok.encode(m["content"], add_special_tokens=False).ids) + 1
                       for m in msgs if m["role"] == "assistant")
        self.assertEqual(int(sft.sum()), n_assist)
        pre = T.loss_mask(np.array(fl, np.uint8), "pretrain")
        self.assertEqual(int(pre.sum()), len(ids) - 1)  # everything but <|bos|>
        # collate shifts: mask[t] is the mask of target ids[t+1]
        w = T.Windows(np.array(ids, np.int32), np.array(fl, np.uint8), np.array([0, len(ids)]))
        x, y, m = T.collate(w, [0], fmt.pad_id, "sft")
        self.assertEqual(y[0].tolist(), ids[1:])
        self.assertEqual(m[0].bool().tolist(), want[1:])


class MicroBatches(unittest.TestCase):
    def test_accumulated_gradient_equals_whole_batch(self):
        rng = np.random.default_rng(0)
        lens = rng.integers(5, 60, 10)
        ids = rng.integers(5, 512, int(lens.sum())).astype(np.int32)
        fl = np.where(rng.random(len(ids)) < 0.5, T.FRESH | T.ASSIST, T.FRESH).astype(np.uint8)
        w = T.Windows(ids, fl, np.concatenate([[0], np.cumsum(lens)]))
        idx = np.arange(10)
        parts = T.micro_batches(w, idx, 100)
        self.assertEqual(sorted(np.concatenate(parts).tolist()), idx.tolist())
        self.assertTrue(all(len(p) == 1 or len(p) * w.lengths()[p].max() <= 100 for p in parts))
        self.assertGreater(len(parts), 1)
        torch.manual_seed(0)
        m = M.MuLM(M.preset_config("64-2")).init_weights(seed=0)

        def grads(chunks):
            m.zero_grad()
            cs = [T.collate(w, c, 4, "sft") for c in chunks]
            denom = sum(float(c[2].sum()) for c in cs)
            tot = 0.0
            for x, y, mk in cs:
                loss = m.loss(x, y, mk, denom=denom)
                loss.backward()
                tot += float(loss)
            return tot, [p.grad.clone() for p in m.parameters()]

        l1, g1 = grads([idx])
        l2, g2 = grads(parts)
        self.assertAlmostEqual(l1, l2, places=5)
        for a, b in zip(g1, g2):
            self.assertLess(float((a - b).abs().max()), 1e-5)


class Schedule(unittest.TestCase):
    def test_lr_schedule(self):
        total = 1000
        w = T.warmup_steps(total)
        self.assertEqual(w, 20)  # 2 %
        self.assertEqual(T.warmup_steps(100), 10)  # min 10
        self.assertAlmostEqual(T.lr_at(0, total), 5e-4 / 20)
        self.assertAlmostEqual(T.lr_at(w - 1, total), 5e-4)  # warmup end: peak
        self.assertAlmostEqual(T.lr_at(w, total), 5e-4)
        self.assertAlmostEqual(T.lr_at(total - 1, total), 5e-5)  # end: 10 % of peak
        mid = w + (total - 1 - w) // 2
        self.assertAlmostEqual(T.lr_at(mid, total), 5e-5 + 4.5e-4 * 0.5, delta=1e-6)
        lrs = [T.lr_at(s, total) for s in range(w, total)]
        self.assertTrue(all(a >= b for a, b in zip(lrs, lrs[1:])))

    def test_flops_matched_steps(self):
        ref = 10_000
        for name in M.PAPER_PARAMS:
            n = M.preset_config(name).parameter_count()
            self.assertEqual(T.flops_matched_steps(ref, n), round(ref * 28.85e6 / n))
        self.assertAlmostEqual(T.flops_matched_steps(ref, M.preset_config("256-8").parameter_count()) / ref, 3.28, 2)

    def test_interleaved_steps_split_the_schedule_between_two_streams(self):
        self.assertEqual([T.interleaved_step(s, 0) for s in range(4)], [("main", s) for s in range(4)])
        self.assertEqual([T.interleaved_step(s, 3) for s in range(7)],
                         [("main", 0), ("main", 1), ("sft", 0), ("main", 2), ("main", 3), ("sft", 1), ("main", 4)])
        for every in (1, 2, 3, 5):
            seen = {"main": [], "sft": []}
            for s in range(60):
                name, i = T.interleaved_step(s, every)
                seen[name].append(i)
            # each stream walks its own batches 0, 1, 2, … with none skipped or repeated
            self.assertEqual(seen["sft"], list(range(60 // every)), every)
            self.assertEqual(seen["main"], list(range(60 - 60 // every)), every)

    def test_png_writer(self):
        with tempfile.TemporaryDirectory() as d:
            p = Path(d) / "x.png"
            T.plot_losses(p, [(1, 6.0), (2, 5.0), (3, 4.5)], [(3, 4.8)])
            self.assertEqual(p.read_bytes()[:8], b"\x89PNG\r\n\x1a\n")


class TinyRun(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        d = Path(cls.tmp.name)
        cls.d = d
        # The tiny preset needs a ≤ 512-token tokenizer, so the test makes its own tokenizer and
        # its own small dialogue list (independent of whether training/data exists).
        tok = parity.tiny_tokenizer(512)
        tok.save(str(d / "tokenizer.json"))
        write_jsonl(d / "train.jsonl", dialogues(160))
        write_jsonl(d / "valid.jsonl", dialogues(20, seed=9))
        cls.common = ["--preset", "64-2", "--train", str(d / "train.jsonl"), "--valid", str(d / "valid.jsonl"),
                      "--tokenizer", str(d / "tokenizer.json"), "--batch-size", "8", "--seq-len", "128",
                      "--lr", "3e-3", "--log-every", "5", "--eval-every", "20", "--eval-batches", "2",
                      "--no-cache", "--threads", "1"]

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def run_train(self, name, *extra):
        return T.main(self.common + ["--out", str(self.d / name), *extra])

    def test_loss_falls_resume_is_exact_and_export(self):
        a = self.run_train("a", "--steps", "40", "--ckpt-every", "20")
        first, last = a["train_pts"][0][1], a["train_pts"][-1][1]
        self.assertLess(last, first - 1.0, a["train_pts"])
        self.assertLess(a["valid_loss"], a["train_pts"][0][1])
        self.assertTrue((self.d / "a" / "loss.png").exists())

        # interrupted after one step (checkpoint written), then resumed: identical weights
        b1 = self.run_train("b", "--steps", "40", "--ckpt-every", "20", "--max-minutes", "0")
        self.assertEqual(b1["step"], 1)
        b2 = self.run_train("b", "--steps", "40", "--ckpt-every", "20")
        self.assertEqual(b2["step"], 40)
        sa = torch.load(self.d / "a" / "ckpt.pt", weights_only=False)["model"]
        sb = torch.load(self.d / "b" / "ckpt.pt", weights_only=False)["model"]
        for k in sa:
            self.assertTrue(torch.equal(sa[k], sb[k]), k)

        # --stop-at: a branch stops at step 25 of the 40-step schedule (with a checkpoint), a rerun
        # with the same flag trains nothing, and going on to 40 gives run a's weights exactly
        c1 = self.run_train("c", "--steps", "40", "--ckpt-every", "20", "--stop-at", "25")
        self.assertEqual(c1["step"], 25)
        self.assertEqual(torch.load(self.d / "c" / "ckpt.pt", weights_only=False)["step"], 25)
        self.assertEqual(self.run_train("c", "--steps", "40", "--ckpt-every", "20", "--stop-at", "25")["step"], 25)
        self.assertEqual(self.run_train("c", "--steps", "40", "--ckpt-every", "20")["step"], 40)
        sc = torch.load(self.d / "c" / "ckpt.pt", weights_only=False)["model"]
        for k in sa:
            self.assertTrue(torch.equal(sa[k], sc[k]), k)

        # SFT stage from the pretrained weights
        s = self.run_train("sft", "--steps", "10", "--stage", "sft", "--init-from", str(self.d / "a" / "ckpt.pt"))
        self.assertEqual(s["step"], 10)

        # The opener stage with every 2nd step an SFT step: both losses are logged apart, and an
        # interrupted run resumes both streams exactly (same weights as one uninterrupted run).
        mixed = ["--steps", "12", "--ckpt-every", "20", "--stage", "opener", "--sft-every", "2",
                 "--opener-context", "64", "--opener-tokens", "24", "--init-from", str(self.d / "a" / "ckpt.pt")]
        self.run_train("mix-a", *mixed)
        log = [json.loads(line) for line in (self.d / "mix-a" / "log.jsonl").read_text().splitlines()]
        steps = [r for r in log if "lr" in r]
        self.assertTrue(steps and all("loss" in r and "loss_sft" in r for r in steps), steps)
        self.assertEqual(self.run_train("mix-b", *mixed, "--max-minutes", "0")["step"], 1)
        self.assertEqual(self.run_train("mix-b", *mixed)["step"], 12)
        ma = torch.load(self.d / "mix-a" / "ckpt.pt", weights_only=False)["model"]
        mb = torch.load(self.d / "mix-b" / "ckpt.pt", weights_only=False)["model"]
        for k in ma:
            self.assertTrue(torch.equal(ma[k], mb[k]), k)
        # …and the SFT steps do train: the same run without them ends elsewhere
        self.run_train("mix-none", *[a for a in mixed if a not in ("--sft-every", "2")])
        mn = torch.load(self.d / "mix-none" / "ckpt.pt", weights_only=False)["model"]
        self.assertFalse(all(torch.equal(ma[k], mn[k]) for k in ma))
        with self.assertRaises(SystemExit):  # interleaving belongs to the opener stage
            self.run_train("mix-bad", "--steps", "2", "--stage", "sft", "--sft-every", "2")

        # export
        out = self.d / "model"
        export.main(["--ckpt", str(self.d / "a" / "ckpt.pt"), "--out", str(out), "--valid-limit", "20"])
        for f in ("model.safetensors", "mulm.json", "tokenizer.json", "parity.json", "MODEL_CARD.md"):
            self.assertTrue((out / f).exists(), f)
        from safetensors.torch import load_file

        sd = load_file(str(out / "model.safetensors"))
        self.assertTrue(all(v.dtype == torch.float32 for v in sd.values()))
        mulm = M.load_mulm(out / "mulm.json")
        cfg = M.config_from_mulm(mulm)
        m = M.load_safetensors(out / "model.safetensors", cfg).eval()
        doc = json.loads((out / "parity.json").read_text())
        self.assertEqual(doc["tolerance"], 1e-4)
        for c in doc["cases"]:
            with torch.no_grad():
                got = m(torch.tensor([c["ids"]]))[0, -1]
            self.assertLess(float((got - torch.tensor(c["logits_last"])).abs().max()), 1e-5)
        self.assertNotIn("harm_check", mulm["opener"])  # off unless asked for
        card = (out / "MODEL_CARD.md").read_text()
        self.assertIn("validation loss", card)
        # --harm-check: the export asks the runtime for the gate's harmful-request check.
        out2 = self.d / "model-harm"
        export.main(["--ckpt", str(self.d / "a" / "ckpt.pt"), "--out", str(out2), "--valid", "none", "--no-card",
                     "--harm-check"])
        self.assertIs(json.loads((out2 / "mulm.json").read_text())["opener"]["harm_check"], True)
        self.assertEqual(sum(1 for line in card.splitlines() if line.startswith("| ") and line[2:3].isdigit()), 30)

        if os.environ.get("FIRSTWORD_RUST_CHECK") == "1":
            env = dict(os.environ, FIRSTWORD_PARITY_DIR=str(out))
            r = subprocess.run(["cargo", "test", "--release", "-p", "lm", "--test", "parity_pytorch"], cwd=ROOT,
                               env=env, capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stdout[-3000:] + r.stderr[-3000:])


class Fixture(unittest.TestCase):
    def test_committed_parity_fixture_is_reproducible(self):
        fix = ROOT / "lm" / "tests" / "fixtures" / "parity-tiny"
        if not (fix / "parity.json").exists():
            self.skipTest("no committed fixture (run training/parity.py)")
        with tempfile.TemporaryDirectory() as d:
            s = parity.write_fixture(Path(d), json.loads((fix / "parity.json").read_text())["seed"])
            self.assertLess(s["bytes"], 1_000_000)
            new = json.loads((Path(d) / "parity.json").read_text())
            old = json.loads((fix / "parity.json").read_text())
            for a, b in zip(new["cases"], old["cases"]):
                self.assertEqual(a["ids"], b["ids"])
                self.assertLess(max(abs(x - y) for x, y in zip(a["logits_last"], b["logits_last"])), 1e-5)
            self.assertEqual(json.loads((Path(d) / "mulm.json").read_text()), json.loads((fix / "mulm.json").read_text()))


if __name__ == "__main__":
    unittest.main()
