"""training/model.py: presets, parameter counts, tensor names, mulm.json, RoPE/GQA/causality.

    training/.venv/bin/python -m unittest training/tests/test_model.py
"""
from __future__ import annotations

import math
import sys
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import torch  # noqa: E402

import model as M  # noqa: E402

torch.set_num_threads(1)


def hf_names(cfg: M.ModelConfig) -> dict[str, tuple[int, ...]]:
    """The tensor list of lm/src/weights.rs `tensor_specs` (HF names, [out, in])."""
    d, q, kv, f = cfg.hidden, cfg.heads * cfg.head_dim, cfg.kv_heads * cfg.head_dim, cfg.intermediate
    out = {"model.embed_tokens.weight": (cfg.vocab, d), "model.norm.weight": (d,)}
    for i in range(cfg.layers):
        p = f"model.layers.{i}."
        out.update({
            p + "input_layernorm.weight": (d,),
            p + "self_attn.q_proj.weight": (q, d),
            p + "self_attn.k_proj.weight": (kv, d),
            p + "self_attn.v_proj.weight": (kv, d),
            p + "self_attn.o_proj.weight": (d, q),
            p + "post_attention_layernorm.weight": (d,),
            p + "mlp.gate_proj.weight": (f, d),
            p + "mlp.up_proj.weight": (f, d),
            p + "mlp.down_proj.weight": (d, f),
        })
    return out


class FakeTok:
    """Just enough of tokenizers.Tokenizer for mulm/ChatFormat (ids of special tokens)."""

    def __init__(self, specials, size=512):
        self.v = {s: i for i, s in enumerate(specials)}
        self.size = size

    def token_to_id(self, s):
        return self.v.get(s)

    def get_vocab_size(self, with_added_tokens=True):
        return self.size


class Presets(unittest.TestCase):
    def test_parameter_counts_match_paper(self):
        for name, paper in M.PAPER_PARAMS.items():
            cfg = M.preset_config(name)
            n = cfg.parameter_count()
            self.assertLess(abs(n / paper - 1), 0.005, f"{name}: {n} vs paper {paper}")
            with torch.device("meta"):
                m = M.MuLM(cfg)
            self.assertEqual(m.num_parameters(), n, name)

    def test_shapes_as_rust(self):
        # lm/src/config.rs: intermediate rounding, 8/2 heads, head_dim = hidden/8, vocab 12,288
        self.assertEqual([M.swiglu_intermediate(d) for d in (512, 384, 256, 64)], [1408, 1024, 704, 192])
        for name in ("256-8", "256-16", "384-8", "384-16", "512-8"):
            c = M.preset_config(name)
            self.assertEqual((c.heads, c.kv_heads, c.vocab, c.max_seq_len), (8, 2, 12288, 1024))
            self.assertEqual(c.head_dim, c.hidden // 8)
            self.assertEqual((c.rope_theta, c.rms_eps), (1e6, 1e-5))
        t = M.preset_config("64-2")  # Rust Preset::Tiny64x2
        self.assertEqual((t.hidden, t.layers, t.heads, t.kv_heads, t.intermediate, t.vocab, t.max_seq_len),
                         (64, 2, 4, 2, 192, 512, 256))
        self.assertEqual(M.preset_config("mulm-512x8"), M.preset_config("512-8"))

    def test_tensor_names_are_hf_llama(self):
        for name in ("64-2", "256-8"):
            cfg = M.preset_config(name)
            with torch.device("meta"):
                m = M.MuLM(cfg)
            sd = {k: tuple(v.shape) for k, v in m.state_dict().items()}
            self.assertEqual(sd, hf_names(cfg))
            self.assertNotIn("lm_head.weight", sd)


class MulmJson(unittest.TestCase):
    def test_schema_and_ids_from_tokenizer(self):
        specials = ["<|bos|>", "<|user|>", "<|assistant|>", "<|end|>", "<|pad|>"]
        m = M.mulm_for_tokenizer("64-2", FakeTok(specials))
        for k in ("format", "format_version", "preset", "hidden", "layers", "heads", "kv_heads", "intermediate",
                  "vocab", "rope_theta", "rms_eps", "max_seq_len", "rope_style", "tie_embeddings",
                  "special_tokens", "chat_template", "opener"):
            self.assertIn(k, m)
        self.assertEqual(m["special_tokens"]["end"], {"content": "<|end|>", "id": 3})
        self.assertEqual(m["special_tokens"]["bos"]["id"], 0)
        self.assertNotIn("system", m["chat_template"]["roles"])  # no <|system|> token → no system role
        self.assertEqual(m["chat_template"]["roles"]["user"], {"prefix": ["user"], "suffix": ["end"]})
        self.assertEqual(M.config_from_mulm(m), M.preset_config("64-2"))
        bad = dict(m, intermediate=128)
        with self.assertRaises(ValueError):
            M.config_from_mulm(bad)

    def test_default_specials_like_rust_for_preset(self):
        # A tokenizer with the Rust default specials gives Rust's MulmFile::for_preset ids 0..5.
        m = M.mulm_for_tokenizer("512-8", FakeTok([c for _, c in M.DEFAULT_SPECIALS], 12288))
        self.assertEqual({n: t["id"] for n, t in m["special_tokens"].items()},
                         {"pad": 0, "bos": 1, "end": 2, "user": 3, "assistant": 4, "system": 5})
        self.assertEqual(sorted(m["chat_template"]["roles"]), ["assistant", "system", "user"])
        self.assertEqual(m["opener"], {"default_words": 6, "max_query_tokens": 64,
                                       "fallback_opener": "Let me think about that.", "max_new_tokens": 48,
                                       "no_repeat_ngram": 2})


class Forward(unittest.TestCase):
    def setUp(self):
        torch.manual_seed(0)
        self.cfg = M.preset_config("64-2")
        self.m = M.MuLM(self.cfg).init_weights(seed=1, std=0.2).eval()

    def test_greedy_no_repeat_ngram(self):
        # The rule itself, on hand-made sequences (the Rust unit test's cases).
        self.assertEqual(M.repeated_ngram_continuations([1, 2, 3, 1, 2], 2), [3])
        self.assertEqual(M.repeated_ngram_continuations([1, 3, 1, 2, 1], 2), [3, 2])
        self.assertEqual(M.repeated_ngram_continuations([1, 2, 3, 1, 2], 4), [])
        self.assertEqual(M.repeated_ngram_continuations([1, 1, 1], 1), [])
        # Random weights repeat themselves; with the rule no token pair repeats, and the
        # tokens before the first repeat are the plain greedy ones.
        plain = self.m.greedy([1, 2, 3], stop=[], max_new=40)
        pairs = list(zip(plain, plain[1:]))
        first = next(i + 1 for i in range(len(pairs)) if pairs[i] in pairs[:i])
        ruled = self.m.greedy([1, 2, 3], stop=[], max_new=40, no_repeat_ngram=2)
        self.assertEqual(ruled[:first], plain[:first])
        self.assertNotEqual(ruled[first], plain[first])
        ruled_pairs = list(zip(ruled, ruled[1:]))
        self.assertEqual(len(set(ruled_pairs)), len(ruled_pairs))

    def test_rope_half_split(self):
        hd = self.cfg.head_dim
        cos, sin = M.rope_tables(self.cfg, 10)
        x = torch.randn(1, 1, 10, hd)
        y = M.apply_rope(x, cos, sin)
        for p in range(10):
            for j in range(hd // 2):
                a = p * self.cfg.rope_theta ** (-2 * j / hd)
                z = complex(x[0, 0, p, j], x[0, 0, p, j + hd // 2]) * complex(math.cos(a), math.sin(a))
                self.assertAlmostEqual(float(y[0, 0, p, j]), z.real, places=5)
                self.assertAlmostEqual(float(y[0, 0, p, j + hd // 2]), z.imag, places=5)

    def test_attention_matches_naive_gqa(self):
        att = self.m.model.layers[0].self_attn
        s, hd, h, g = 7, self.cfg.head_dim, self.cfg.heads, self.cfg.kv_heads
        x = torch.randn(1, s, self.cfg.hidden)
        cos, sin = M.rope_tables(self.cfg, s)
        with torch.no_grad():
            got = att(x, cos, sin)
            q = M.apply_rope(att.q_proj(x).view(s, h, hd).transpose(0, 1), cos, sin)
            k = M.apply_rope(att.k_proj(x).view(s, g, hd).transpose(0, 1), cos, sin)
            v = att.v_proj(x).view(s, g, hd).transpose(0, 1)
            out = torch.zeros(s, h * hd)
            for i in range(h):
                kv = i // (h // g)  # query head i reads KV head i / (h/g)
                for t in range(s):
                    w = torch.softmax(q[i, t] @ k[kv, : t + 1].T / math.sqrt(hd), -1)
                    out[t, i * hd:(i + 1) * hd] = w @ v[kv, : t + 1]
            want = att.o_proj(out)
        self.assertLess(float((got[0] - want).abs().max()), 1e-5)

    def test_causal_and_tied_head(self):
        ids = torch.randint(0, self.cfg.vocab, (1, 12))
        ids2 = ids.clone()
        ids2[0, 8:] = (ids2[0, 8:] + 1) % self.cfg.vocab
        with torch.no_grad():
            a, b = self.m(ids), self.m(ids2)
        self.assertLess(float((a[0, :8] - b[0, :8]).abs().max()), 1e-6)
        self.assertGreater(float((a[0, 8:] - b[0, 8:]).abs().max()), 1e-4)
        with torch.no_grad():
            h = self.m.hidden_states(ids)
            self.assertTrue(torch.allclose(h @ self.m.model.embed_tokens.weight.T, a, atol=1e-5))

    def test_rmsnorm(self):
        n = M.RMSNorm(8, 1e-5)
        with torch.no_grad():
            n.weight.copy_(torch.arange(1, 9.0))
        x = torch.randn(3, 8)
        want = x / torch.sqrt((x * x).mean(-1, keepdim=True) + 1e-5) * torch.arange(1, 9.0)
        self.assertTrue(torch.allclose(n(x), want, atol=1e-6))


if __name__ == "__main__":
    unittest.main()
