"""training/safety/harm_knn.py: the nearest-neighbour margin, the standardization on calibration
turns and the read-out at a held-out strength (on small hand-made embeddings).

    training/.venv/bin/python -m unittest training/tests/test_harm_knn.py
"""
from __future__ import annotations

import sys
import unittest
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "safety"))

import harm_knn as K  # noqa: E402


def unit(*rows):
    x = torch.tensor(rows, dtype=torch.float32)
    return x / x.norm(dim=1, keepdim=True)


class KnnMargin(unittest.TestCase):
    harmful = unit([1, 0, 0], [0.9, 0.1, 0])
    harmless = unit([0, 1, 0], [0, 0.9, 0.1], [0, 0, 1])

    def test_sign_follows_the_nearer_side(self):
        m = K.knn_margin(torch, unit([1, 0.05, 0], [0.05, 1, 0]), self.harmful, self.harmless, 1)
        self.assertGreater(m[0].item(), 0.5)
        self.assertLess(m[1].item(), -0.5)

    def test_k_averages_the_k_nearest(self):
        x = unit([0, 1, 0])
        m = K.knn_margin(torch, x, self.harmful, self.harmless, 2)
        near_harm = (x @ self.harmful.T).sort(descending=True).values[0, :2].mean()
        near_safe = (x @ self.harmless.T).sort(descending=True).values[0, :2].mean()
        self.assertAlmostEqual(m.item(), (near_harm - near_safe).item(), places=6)

    def test_k_larger_than_a_bank_uses_the_whole_bank(self):
        m = K.knn_margin(torch, unit([1, 0, 0]), self.harmful, self.harmless, 10)
        self.assertEqual(m.shape, (1,))


class ReadOut(unittest.TestCase):
    def test_standardized_has_zero_mean_unit_sd_on_calibration(self):
        calib = torch.tensor([1.0, 2.0, 3.0, 6.0])
        z = K.standardized(lambda x: x, calib)(calib)
        self.assertAlmostEqual(z.mean().item(), 0.0, places=6)
        self.assertAlmostEqual(z.std().item(), 1.0, places=6)

    def test_at_strength_takes_the_smallest_share_that_reaches_the_target(self):
        # A score that is its own input: calibration turns 0..99 (at share s the threshold is
        # 99 − ⌊100 s⌋), StrongREJECT one item at 85 and ten at 90..99.
        sets = {"calib": torch.arange(100.0), "strongreject": torch.tensor([85.0] + [90.0 + i for i in range(10)])}
        share, rates = K.at_strength(lambda x: x, sets, 1.0)
        self.assertEqual(share, 0.15)  # 0.14: threshold 85, and 85 does not fire
        self.assertEqual(rates["strongreject"], 1.0)
        share, rates = K.at_strength(lambda x: x, sets, 10 / 11)
        self.assertEqual(share, 0.1)
        self.assertAlmostEqual(rates["strongreject"], 10 / 11)

    def test_at_strength_is_none_when_no_share_reaches_it(self):
        sets = {"calib": torch.arange(100.0), "strongreject": torch.tensor([1.0, 2.0])}
        self.assertIsNone(K.at_strength(lambda x: x, sets, 1.0))


class WrittenTerm(unittest.TestCase):
    def test_quantized_rows_are_int8_within_half_a_step(self):
        bank = unit([1, -0.5, 0.25], [0.1, 0.2, -0.9])
        q, scale, rows = K.quantized(torch, bank)
        self.assertEqual(q.dtype, torch.int8)
        self.assertEqual(q.abs().amax(1).tolist(), [127, 127])
        self.assertTrue(torch.all((rows - bank).abs() <= scale[:, None] / 2 + 1e-7))

    def test_head_logit_adds_the_term_over_the_banks_beside_the_head(self):
        import json
        import tempfile
        from safetensors.torch import save_file
        harmful, harmless = unit([1, 0, 0]), unit([0, 1, 0], [0, 0, 1])
        head = {"weights": [0.5, 0.0, 0.0], "bias": -0.25}
        x = unit([1, 0, 0], [0, 1, 0])
        linear = K.head_logit(torch, head, Path("unused.json"))(x)
        self.assertEqual(linear.tolist(), [0.25, -0.25])
        with tempfile.TemporaryDirectory() as d:
            hq, hs, _ = K.quantized(torch, harmful)
            nq, ns, _ = K.quantized(torch, harmless)
            save_file({"harmful": hq, "harmful_scale": hs, "harmless": nq, "harmless_scale": ns}, f"{d}/knn.safetensors")
            head["knn"] = {"bank": "knn.safetensors", "k": 1, "scale": 2.0, "offset": 0.5}
            (Path(d) / "head.json").write_text(json.dumps(head))
            got = K.head_logit(torch, head, Path(d) / "head.json")(x)
        # knn margins: +1 (on the harmful row) and −1; the term is 2 · (m − 0.5).
        self.assertTrue(torch.allclose(got, torch.tensor([0.25 + 1.0, -0.25 - 3.0]), atol=1e-5), got)


if __name__ == "__main__":
    unittest.main()
