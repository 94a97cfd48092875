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


if __name__ == "__main__":
    unittest.main()
