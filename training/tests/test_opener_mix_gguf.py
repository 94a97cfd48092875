"""Issue 12 §1: the opener stage's packing, the data-mix caps and the GGUF loader.

    training/.venv/bin/python -m unittest training/tests/test_opener_mix_gguf.py

CPU only, a few seconds. Tests that read prepared data (data/train_mix.jsonl, work/mix_stats.json)
or the shipped model (models/mulm/model.gguf + parity.json) skip when those files are absent.
"""
from __future__ import annotations

import json
import sys
import tempfile
import unittest
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
TRAINING = HERE.parent
ROOT = TRAINING.parent
sys.path.insert(0, str(TRAINING))
sys.path.insert(0, str(HERE))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import ggufload  # noqa: E402
import mix  # noqa: E402
import model as M  # noqa: E402
import parity  # noqa: E402
import train as T  # noqa: E402
from test_train_export import dialogues  # noqa: E402

torch.set_num_threads(1)


def synthetic_turns(spec, pre=1, suf=1):
    """spec: [(role, content length)] → ChatFormat-like turns: prefix (id 1/2) + content + <|end|> (3)."""
    out = []
    for t, (role, n) in enumerate(spec):
        body = [1000 * (t + 1) + i for i in range(n)]
        p = [2 if role == "assistant" else 1] * pre
        a = 1 if role == "assistant" else 0
        out.append((role, p + body + [3] * suf, [0] * pre + [a] * (n + suf)))
    return out


class OpenerExamples(unittest.TestCase):
    BEGIN = [0]

    def test_mask_is_exactly_the_first_n_assistant_tokens(self):
        spec = [("user", 5), ("assistant", 40), ("user", 7), ("assistant", 10), ("user", 3), ("assistant", 30)]
        ts = synthetic_turns(spec)
        exs = T.opener_examples(ts, self.BEGIN, max_ctx=64, n_target=24)
        self.assertEqual(len(exs), 3)
        for (ids, fl), t in zip(exs, (1, 3, 5)):
            body = ts[t][1][1:]  # content + <|end|>
            want = body[:24]  # a reply shorter than 24 keeps its <|end|>
            learned = [x for x, f in zip(ids, fl) if f]
            self.assertEqual(learned, want)
            self.assertTrue(all(f == T.FRESH | T.ASSIST for f in fl[len(ids) - len(want):]))
            self.assertTrue(all(f == 0 for f in fl[:len(ids) - len(want)]))
            # the context ends with the whole preceding user turn, then the assistant prefix
            ctx = ids[:len(ids) - len(want)]
            self.assertEqual(ctx[-1], 2)
            self.assertEqual(ctx[-1 - len(ts[t - 1][1]):-1], ts[t - 1][1])
            self.assertEqual(ctx[:1], self.BEGIN)
            self.assertLessEqual(len(ctx) - 1, 64)  # ≤ max_ctx before the assistant prefix
        # the 10-token reply: its <|end|> is learned (the model must learn to stop early)
        self.assertEqual([x for x, f in zip(*exs[1]) if f][-1], 3)
        self.assertEqual(sum(1 for f in exs[0][1] if f), 24)

    def test_old_turns_dropped_whole_and_long_user_turn_cut(self):
        ts = synthetic_turns([("user", 30), ("assistant", 30), ("user", 20), ("assistant", 5)])
        (ids, fl), = T.opener_examples(ts, self.BEGIN, max_ctx=40, n_target=8)[1:]
        ctx = ids[:len(ids) - 6]  # 5 content + <|end|>
        self.assertEqual(ctx, self.BEGIN + ts[2][1] + [2])  # earlier turns did not fit: dropped whole
        ts = synthetic_turns([("user", 100), ("assistant", 5)])
        (ids, fl), = T.opener_examples(ts, self.BEGIN, max_ctx=33, n_target=8)
        ctx = ids[:len(ids) - 6]
        self.assertEqual(len(ctx), 33 + 1)
        self.assertEqual(ctx[1:17], ts[0][1][:16])  # head (with the <|user|> prefix) …
        self.assertEqual(ctx[17:-1], ts[0][1][-16:])  # … and tail (ending with <|end|>)

    def test_real_serialization_matches_inference_prompt(self):
        tok = parity.tiny_tokenizer(512)
        mulm = M.mulm_for_tokenizer("64-2", tok)
        fmt = M.ChatFormat(mulm, tok)
        msgs = dialogues(1, seed=5)[0]["messages"]
        exs = T.opener_examples(fmt.encode_turns(msgs), fmt.begin, max_ctx=1000, n_target=6)
        self.assertEqual(len(exs), sum(1 for m in msgs if m["role"] == "assistant"))
        for k, (ids, fl) in enumerate(exs):
            t = 2 * k + 1
            prompt = fmt.encode_prompt(msgs[:t])  # what the runtime feeds before generating
            reply = tok.encode(msgs[t]["content"].strip(), add_special_tokens=False).ids
            self.assertEqual(ids, prompt + reply[:6])
            self.assertEqual([i for i, f in zip(ids, fl) if f], reply[:6])


class Packing(unittest.TestCase):
    def test_rows_cover_every_example_once_and_fit(self):
        rng = np.random.default_rng(0)
        lens = rng.integers(8, 150, 3000)
        rows = T.pack_rows(lens, 256, seed=1, epoch=0, group=1000)
        flat = np.concatenate(rows)
        self.assertEqual(sorted(flat.tolist()), list(range(3000)))
        fill = [int(lens[r].sum()) for r in rows]
        self.assertTrue(all(f <= 256 for f in fill))
        self.assertGreater(sum(fill) / (256 * len(rows)), 0.95)  # dense
        self.assertNotEqual([r.tolist() for r in rows], [r.tolist() for r in T.pack_rows(lens, 256, 1, 1, 1000)])

    def test_packed_rows_equal_examples_alone(self):
        """Positions restart and attention stays inside each example: the loss of a packed row
        is exactly the sum of the examples' own losses, on exactly their reply tokens."""
        ts = [synthetic_turns([("user", n), ("assistant", a)]) for n, a in ((5, 30), (9, 4), (3, 12))]
        exs = [T.opener_examples(t, [0], 64, 8)[0] for t in ts]
        exs = [([x % 500 + 5 if x >= 1000 else x for x in ids], fl) for ids, fl in exs]  # vocab 512
        lens = [len(i) for i, _ in exs]
        w = T.Windows(np.concatenate([np.array(i, np.int32) for i, _ in exs]),
                      np.concatenate([np.array(f, np.uint8) for _, f in exs]), np.concatenate([[0], np.cumsum(lens)]))
        x, y, m, pos, seg = T.collate_packed(w, [np.array([0, 1, 2])], pad_id=4)
        self.assertEqual(int(m.sum()), sum(sum(1 for f in fl if f) for _, fl in exs))
        self.assertEqual(y[0][m[0] > 0].tolist(), [i for ids, fl in exs for i, f in zip(ids, fl) if f])
        self.assertEqual(pos[0].tolist(), [p for n in lens for p in range(n)][:-1])
        torch.manual_seed(0)
        net = M.MuLM(M.preset_config("64-2")).init_weights(seed=0)
        for p in net.parameters():  # larger weights: attention far from uniform
            p.data.mul_(5.0)
        with torch.no_grad():
            packed = float(net.loss(x, y, m, denom=1.0, pos=pos, seg=seg))
            alone = 0.0
            for k in range(3):
                xa, ya, ma = T.collate(w, [k], 4, "opener")
                alone += float(net.loss(xa, ya, ma, denom=1.0))
            # without the example mask the result differs (the test would notice a leak)
            leak = float(net.loss(x, y, m, denom=1.0))
        self.assertAlmostEqual(packed, alone, places=3)
        self.assertGreater(abs(leak - alone), 1e-3)

    def test_micro_batches_keep_rows(self):
        rng = np.random.default_rng(1)
        lens = rng.integers(10, 60, 200)
        w = T.Windows(np.zeros(int(lens.sum()), np.int32), np.zeros(int(lens.sum()), np.uint8),
                      np.concatenate([[0], np.cumsum(lens)]))
        rows = T.pack_rows(lens, 128, 0, 0)
        parts = T.packed_micro_batches(w, rows, 512)
        self.assertEqual(sorted(tuple(r.tolist()) for p in parts for r in p), sorted(tuple(r.tolist()) for r in rows))
        self.assertTrue(all(len(p) * max(int(lens[r].sum()) for r in p) <= 512 or len(p) == 1 for p in parts))


class OpenerStageRun(unittest.TestCase):
    def test_tiny_opener_run_learns_and_resumes(self):
        with tempfile.TemporaryDirectory() as d:
            d = Path(d)
            tok = parity.tiny_tokenizer(512)
            tok.save(str(d / "tokenizer.json"))
            for name, rows in (("train", dialogues(120)), ("valid", dialogues(20, seed=9))):
                (d / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
            common = ["--preset", "64-2", "--train", str(d / "train.jsonl"), "--valid", str(d / "valid.jsonl"),
                      "--tokenizer", str(d / "tokenizer.json"), "--batch-size", "8", "--seq-len", "128",
                      "--lr", "3e-3", "--log-every", "5", "--eval-every", "15", "--eval-batches", "2", "--no-cache",
                      "--threads", "1", "--stage", "opener", "--opener-context", "64", "--opener-tokens", "8",
                      "--steps", "30", "--ckpt-every", "15"]
            a = T.main(common + ["--out", str(d / "a"), "--eval-assistant", "10"])
            self.assertLess(a["train_pts"][-1][1], a["train_pts"][0][1] - 1.0)
            log = [json.loads(x) for x in (d / "a" / "log.jsonl").read_text().splitlines()]
            self.assertIn("valid_assistant", log[0])  # the starting point is measured too
            self.assertEqual(log[0]["step"], 0)
            b1 = T.main(common + ["--out", str(d / "b"), "--max-minutes", "0"])
            self.assertEqual(b1["step"], 1)
            T.main(common + ["--out", str(d / "b")])
            sa = torch.load(d / "a" / "ckpt.pt", weights_only=False)["model"]
            sb = torch.load(d / "b" / "ckpt.pt", weights_only=False)["model"]
            for k in sa:
                self.assertTrue(torch.equal(sa[k], sb[k]), k)


class Mix(unittest.TestCase):
    def corpus(self):
        ds = []
        for i in range(400):  # templated QA
            ds.append({"id": f"olmo/csqa/{i}", "source": "olmo_csqa",
                       "messages": [{"role": "user", "content": f"Where is thing {i}?"},
                                    {"role": "assistant", "content": f"The answer is place{i}."}]})
        for i in range(300):
            yn = "Yes" if i % 2 else "No"
            ds.append({"id": f"olmo/boolq/{i}", "source": "olmo_boolq",
                       "messages": [{"role": "user", "content": f"Is item {i} real?"},
                                    {"role": "assistant", "content": f"{yn}, according to the article on Item {i}: "
                                                                     f"Item{i} was made in year {i}."}]})
        for i in range(3000):  # many short glosses
            ds.append({"id": f"wordnet/noun/{i}", "source": "wordnet",
                       "messages": [{"role": "user", "content": f"What is w{i}?"},
                                    {"role": "assistant", "content": f"W{i} is a kind of thing number {i} here."}]})
        for i in range(200):  # real conversations, some with a stock opening
            ds.append({"id": f"sharegpt/{i}", "source": "sharegpt",
                       "messages": [{"role": "user", "content": f"Write about topic {i}."},
                                    {"role": "assistant", "content": ("Sure, here are some notes: " if i % 20 == 0 else
                                                                      f"Topic{i} matters because ") + "word " * 60}]})
        for i in range(200):
            ds.append({"id": f"chitchat/{i}", "source": "chitchat",
                       "messages": [{"role": "user", "content": f"hey how was day {i}"},
                                    {"role": "assistant", "content": f"day{i} went well thanks"},
                                    {"role": "user", "content": "nice"},
                                    {"role": "assistant", "content": f"and yours{i} friend?"}]})
        return ds

    @staticmethod
    def counts(ds):  # (tokens, assistant, opener, turns) from words, no tokenizer needed
        out = []
        for d in ds:
            tot, ast, op, turns = 1, 0, 0, 0
            for m in d["messages"]:
                n = len(m["content"].split())
                tot += n + 2
                if m["role"] == "assistant":
                    ast += n + 1
                    op += min(24, n + 1)
                    turns += 1
            out.append((tot, ast, op, turns))
        return out

    def test_rewrites(self):
        self.assertEqual(mix.rewrite_answer("x", "olmo_csqa", "The answer is a bank."), "A bank.")
        self.assertIsNone(mix.rewrite_answer("x", "sharegpt", "The answer is 42."))
        outs = {mix.rewrite_answer(f"b{i}", "olmo_boolq", "Yes, according to the article on Tea: Tea is a drink.")
                for i in range(30)}
        self.assertEqual(outs, {"Yes. Tea is a drink.", "Yes, tea is a drink.", "Tea is a drink."})
        self.assertEqual(mix.opening("  \"Sure, here's a list!"), "sure here's a")

    def test_caps(self):
        ds = self.corpus()
        out, mult, _, st = mix.build_mix(ds, self.counts(ds), {"sharegpt": 3, "chitchat": 2}, 0.05, 0.01, self.counts)
        sh = mix.shares([(d["source"], c) for d, c in zip(out, self.counts(out))], mult)
        for k in ("tokens_share", "assistant_tokens_share", "opener_tokens_share"):
            self.assertLessEqual(sh["wordnet"][k], 0.05, k)
        self.assertGreater(sh["wordnet"]["dialogues"], 0)
        ops = Counter()
        for d, k in zip(out, mult):
            for m in d["messages"]:
                if m["role"] == "assistant":
                    ops[mix.opening(m["content"])] += k
        n = sum(ops.values())
        self.assertLessEqual(ops.most_common(1)[0][1] / n, 0.01, ops.most_common(3))
        self.assertEqual(ops["the answer is"], 0)
        # real conversations are weighted up and never dropped entirely
        byid = {d["id"]: k for d, k in zip(out, mult)}
        self.assertTrue(all(byid[f"sharegpt/{i}"] >= 1 and byid[f"chitchat/{i}"] >= 1 for i in range(200)))
        self.assertEqual(byid["sharegpt/1"], 3)
        self.assertLess(byid["sharegpt/0"] + byid["sharegpt/20"] + byid["sharegpt/40"], 9)  # capped repeats
        self.assertEqual(byid["chitchat/1"], 2)

    def test_prepared_mix_meets_caps(self):
        st_path, mix_path = TRAINING / "work" / "mix_stats.json", TRAINING / "data" / "train_mix.jsonl"
        if not (st_path.exists() and mix_path.exists()):
            self.skipTest("no prepared mix (run training/mix.py)")
        st = json.loads(st_path.read_text())
        for k in ("tokens_share", "assistant_tokens_share", "opener_tokens_share"):
            self.assertLessEqual(st["after"]["wordnet"][k], 0.05)
        self.assertLessEqual(st["top_openings_after"][0][2], 0.01)
        ops, n = Counter(), 0
        with open(mix_path) as f:
            for line in f:
                for m in json.loads(line)["messages"]:
                    if m["role"] == "assistant":
                        ops[mix.opening(m["content"])] += 1
                        n += 1
        self.assertLessEqual(ops.most_common(1)[0][1] / n, 0.01)


def write_test_gguf(path, model: M.MuLM, mulm: dict, q8: bool):
    """A μLM GGUF the way the Rust exporter lays it out, written with the `gguf` package."""
    import gguf

    w = gguf.GGUFWriter(str(path), "llama")
    w.add_string("general.name", "test")
    w.add_uint32("llama.block_count", model.cfg.layers)
    w.add_string(ggufload.MULM_KEY, json.dumps(mulm))
    names = {v: k for k, v in {n: ggufload.gguf_to_hf_name(n) for n in gguf_names(model.cfg.layers)}.items()}
    for hf, t in model.state_dict().items():
        a = t.detach().float().numpy()
        if hf.endswith("q_proj.weight"):
            a = ggufload.to_gguf_rows(a, model.cfg.heads)
        elif hf.endswith("k_proj.weight"):
            a = ggufload.to_gguf_rows(a, model.cfg.kv_heads)
        if q8 and a.ndim == 2:
            w.add_tensor(names[hf], gguf.quants.quantize(a, gguf.GGMLQuantizationType.Q8_0),
                         raw_dtype=gguf.GGMLQuantizationType.Q8_0)
        else:
            w.add_tensor(names[hf], np.ascontiguousarray(a, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def gguf_names(layers):
    out = ["token_embd.weight", "output_norm.weight"]
    for i in range(layers):
        out += [f"blk.{i}.{t}.weight" for t in ("attn_norm", "attn_q", "attn_k", "attn_v", "attn_output",
                                                 "ffn_norm", "ffn_gate", "ffn_up", "ffn_down")]
    return out


class GgufLoader(unittest.TestCase):
    def setUp(self):
        try:
            import gguf  # noqa: F401
        except ImportError:
            self.skipTest("gguf package not installed (requirements-torch.txt)")
        tok = parity.tiny_tokenizer(512)
        self.mulm = M.mulm_for_tokenizer("64-2", tok)
        torch.manual_seed(0)
        self.model = M.MuLM(M.preset_config("64-2")).init_weights(seed=3).eval()
        with torch.no_grad():
            for p in self.model.parameters():
                p.mul_(4.0)

    def test_permutation_round_trip(self):
        a = np.arange(64 * 3, dtype=np.float32).reshape(64, 3)
        self.assertTrue(np.array_equal(ggufload.from_gguf_rows(ggufload.to_gguf_rows(a, 4), 4), a))
        g = ggufload.to_gguf_rows(a, 4)  # GGUF row h·hd + 2j + i = HF row h·hd + i·hd/2 + j (hd 16)
        self.assertTrue(np.array_equal(g[16 + 2 * 3 + 1], a[16 + 8 + 3]))

    def test_f32_round_trip_is_exact(self):
        with tempfile.TemporaryDirectory() as d:
            p = Path(d) / "m.gguf"
            write_test_gguf(p, self.model, self.mulm, q8=False)
            m2, mulm2 = ggufload.load_gguf_model(p)
            self.assertEqual(mulm2, self.mulm)
            for k, v in self.model.state_dict().items():
                self.assertTrue(torch.equal(v, m2.state_dict()[k]), k)

    def test_q8_round_trip_and_reader_matches_gguf_package(self):
        import gguf

        with tempfile.TemporaryDirectory() as d:
            p = Path(d) / "m.gguf"
            write_test_gguf(p, self.model, self.mulm, q8=True)
            m2, _ = ggufload.load_gguf_model(p)
            for k, v in self.model.state_dict().items():
                err = float((v - m2.state_dict()[k]).abs().max())
                scale = float(v.abs().max())
                self.assertLessEqual(err, scale / 127 + 1e-6, k)  # Q8_0: half a step of max/127 per block
            ids = torch.tensor([[0, 1, 50, 60, 70, 3, 2]])
            with torch.no_grad():
                a, b = self.model(ids)[0, -1], m2(ids)[0, -1]
            self.assertEqual(int(a.argmax()), int(b.argmax()))
            # the own reader dequantizes exactly like the gguf package
            _, mine = ggufload.read_gguf(p)
            for t in gguf.GGUFReader(str(p)).tensors:
                ref = gguf.quants.dequantize(t.data, t.tensor_type).reshape(mine[t.name].shape)
                self.assertTrue(np.array_equal(ref, mine[t.name]), t.name)

    def test_parity_from_a_gguf_is_pytorch_on_its_dequantized_weights(self):
        with tempfile.TemporaryDirectory() as d:
            p, tokp = Path(d) / "m.gguf", Path(d) / "tokenizer.json"
            write_test_gguf(p, self.model, self.mulm, q8=True)
            parity.tiny_tokenizer(512).save(str(tokp))
            ggufload.main([str(p), "--parity", str(Path(d) / "parity.json")])
            doc = json.loads((Path(d) / "parity.json").read_text())
            self.assertIn("Q8_0 dequantized", doc["source_checkpoint"])
            self.assertGreaterEqual(len(doc["cases"]), 3)
            m2, _ = ggufload.load_gguf_model(p)
            for c in doc["cases"]:
                with torch.no_grad():
                    got = m2(torch.tensor([c["ids"]]))[0, -1].numpy()
                self.assertTrue(np.allclose(got, np.array(c["logits_last"], np.float32), atol=1e-5), c["name"])
            # the f32 model's logits differ by the quantization error: the fixture is the GGUF's
            with torch.no_grad():
                f32 = self.model(torch.tensor([doc["cases"][0]["ids"]]))[0, -1].numpy()
            self.assertGreater(float(np.abs(f32 - np.array(doc["cases"][0]["logits_last"], np.float32)).max()), 1e-4)

    def test_shipped_model_reproduces_parity_json(self):
        gg, pj = ROOT / "models" / "mulm" / "model.gguf", ROOT / "models" / "mulm" / "parity.json"
        if not (gg.exists() and pj.exists()):
            self.skipTest("no shipped model")
        m, mulm = ggufload.load_gguf_model(gg)
        doc = json.loads(pj.read_text())
        self.assertEqual(doc["preset"], mulm["preset"])
        for c in doc["cases"]:
            with torch.no_grad():
                got = m(torch.tensor([c["ids"]]))[0, -1].numpy()
            ref = np.array(c["logits_last"], np.float32)
            # parity.json holds the f32 checkpoint's logits; the GGUF is Q8_0 (max |Δ| 0.077 measured)
            drift = float(np.abs(got - ref).max())
            self.assertLess(drift, 0.25, c["name"])
            self.assertEqual(int(got.argmax()), int(ref.argmax()), c["name"])  # the greedy token
            # The top-5 sets agree, except where two tokens at the edge are closer than the
            # drift can reorder (the shipped "everyday" case has 8.350 vs 8.349 at ranks 5–6).
            fifth = float(np.sort(ref)[-5])
            for t in set(np.argsort(-got)[:5]) ^ set(np.argsort(-ref)[:5]):
                self.assertLessEqual(abs(float(ref[t]) - fifth), 2 * drift, (c["name"], int(t)))


if __name__ == "__main__":
    unittest.main()
