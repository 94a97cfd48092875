"""Issue 12: `run_cpu.sh` trains the weights it is given, or says why it cannot.

    training/.venv/bin/python -m unittest training/tests/test_run_cpu.py

A SOURCE given by hand once fell back to the shipped model without a word when it held only
export.py's `model.safetensors` (no `model.gguf`), so a run named for one checkpoint trained
another. Both cases stop before any data or training step, so these run in well under a second.
"""
from __future__ import annotations

import os
import subprocess
import tempfile
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "training" / "run_cpu.sh"


def run_with_source(source: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, SOURCE=str(source), RUN=str(source / "run"))
    return subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60)


class SourceTest(unittest.TestCase):
    def test_a_source_without_weights_is_named_not_replaced_by_the_shipped_model(self):
        with tempfile.TemporaryDirectory() as d:
            done = run_with_source(Path(d))
            self.assertEqual(done.returncode, 1)
            self.assertIn(f"SOURCE={d} holds no model.safetensors or model.gguf", done.stderr)
            self.assertFalse((Path(d) / "run").exists())

    def test_a_source_with_only_safetensors_is_the_one_read(self):
        with tempfile.TemporaryDirectory() as d:
            (Path(d) / "model.safetensors").write_bytes(b"\0" * 8)
            done = run_with_source(Path(d))
            # The next thing the script reads is the source's own mulm.json (its preset); this one
            # has none, so it stops there, which shows the source was not swapped for models/mulm.
            self.assertNotEqual(done.returncode, 0)
            self.assertIn(f"{d}/mulm.json", done.stderr)
            self.assertNotIn("holds no model", done.stderr)


if __name__ == "__main__":
    unittest.main()
