"""Unit tests for scripts/ct2_to_ggml.py that need no real model.

Run from the repo root:
    python -m unittest scripts/test_ct2_to_ggml.py
"""

from __future__ import annotations

import json
import struct
import sys
import tempfile
import unittest
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import ct2_to_ggml as conv  # noqa: E402


def _ct2_string(s: str) -> bytes:
    raw = s.encode("utf-8") + b"\0"
    return struct.pack("<H", len(raw)) + raw


def write_ct2(
    path: Path,
    variables: list[tuple[str, np.ndarray, int]],
    aliases: dict[str, str] | None = None,
    version: int = 6,
    spec: str = "WhisperSpec",
) -> None:
    """Write a CT2 model.bin by hand: (name, array, CT2 type id) triples."""
    out = bytearray()
    out += struct.pack("<I", version)
    out += _ct2_string(spec)
    out += struct.pack("<I", 3)
    out += struct.pack("<I", len(variables))
    for name, arr, type_id in variables:
        out += _ct2_string(name)
        out += struct.pack("<B", arr.ndim)
        out += struct.pack(f"<{arr.ndim}I", *arr.shape)
        out += struct.pack("<B", type_id)
        data = np.ascontiguousarray(arr).tobytes()
        out += struct.pack("<I", len(data))
        out += data
    if aliases is not None:
        out += struct.pack("<I", len(aliases))
        for a, target in aliases.items():
            out += _ct2_string(a) + _ct2_string(target)
    path.write_bytes(bytes(out))


class Ct2ReaderTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = Path(self.tmp.name)
        self.f16 = (np.arange(24, dtype=np.float32).reshape(2, 3, 4) / 8).astype("<f2")
        self.f32 = np.array([1.5, -2.25, 3.0], dtype="<f4")
        self.heads = np.array(6, dtype="<i2")  # rank-0 scalar
        self.flag = np.array(1, dtype="i1")
        self.vars = [
            ("encoder/conv1/weight", self.f16, 4),
            ("encoder/conv1/bias", self.f32, 0),
            ("encoder/num_heads", self.heads, 2),
            ("decoder/pre_norm", self.flag, 1),
        ]

    def tearDown(self):
        self.tmp.cleanup()

    def test_reads_variables_scalars_and_aliases(self):
        p = self.dir / "model.bin"
        write_ct2(p, self.vars, aliases={"decoder/projection/weight": "encoder/conv1/weight"})
        m = conv.read_ct2_model(p)
        self.assertEqual((m.version, m.spec_name, m.revision), (6, "WhisperSpec", 3))
        self.assertEqual(list(m.variables), [v[0] for v in self.vars])
        w = m.variables["encoder/conv1/weight"]
        self.assertEqual(w.dtype, np.float16)
        self.assertEqual(w.shape, (2, 3, 4))
        np.testing.assert_array_equal(w, self.f16)
        b = m.variables["encoder/conv1/bias"]
        self.assertEqual(b.dtype, np.float32)
        np.testing.assert_array_equal(b, self.f32)
        heads = m.variables["encoder/num_heads"]
        self.assertEqual(heads.shape, ())
        self.assertEqual(int(heads), 6)
        self.assertEqual(int(m.variables["decoder/pre_norm"]), 1)
        self.assertEqual(m.aliases, {"decoder/projection/weight": "encoder/conv1/weight"})

    def test_missing_alias_table_is_empty(self):
        p = self.dir / "model.bin"
        write_ct2(p, self.vars, aliases=None)
        self.assertEqual(conv.read_ct2_model(p).aliases, {})

    def test_bad_version_is_rejected(self):
        p = self.dir / "model.bin"
        write_ct2(p, self.vars, version=99)
        with self.assertRaisesRegex(conv.ConversionError, "version 99"):
            conv.read_ct2_model(p)

    def test_truncated_file_is_rejected(self):
        p = self.dir / "model.bin"
        write_ct2(p, self.vars, aliases={})
        p.write_bytes(p.read_bytes()[:60])
        with self.assertRaisesRegex(conv.ConversionError, "truncated"):
            conv.read_ct2_model(p)

    def test_unknown_dtype_is_rejected(self):
        p = self.dir / "model.bin"
        write_ct2(p, [("x", np.zeros(2, dtype="<f2"), 5)])  # 5 = bfloat16
        with self.assertRaisesRegex(conv.ConversionError, "dtype id 5"):
            conv.read_ct2_model(p)

    def test_convert_reports_missing_file(self):
        with self.assertRaisesRegex(conv.ConversionError, "missing required file model.bin"):
            conv.convert(self.dir, self.dir / "out.bin")
        self.assertFalse((self.dir / "out.bin").exists())

    def test_missing_tensor_is_named(self):
        vars_ = {name: arr for name, arr, _ in self.vars}
        with self.assertRaisesRegex(conv.ConversionError, "decoder/embeddings/weight"):
            conv.derive_hparams(vars_)


class SplitTest(unittest.TestCase):
    def test_qkv_split_rows_in_order(self):
        n = 4
        q = np.full((n, n), 1.0)
        k = np.full((n, n), 2.0)
        v = np.full((n, n), 3.0)
        parts = conv.split_fused(np.concatenate([q, k, v]), 3, "w")
        self.assertEqual(len(parts), 3)
        for got, want in zip(parts, (q, k, v)):
            np.testing.assert_array_equal(got, want)

    def test_split_bias(self):
        parts = conv.split_fused(np.arange(6.0), 3, "b")
        self.assertEqual([p.tolist() for p in parts], [[0, 1], [2, 3], [4, 5]])

    def test_uneven_split_is_rejected(self):
        with self.assertRaisesRegex(conv.ConversionError, "shape"):
            conv.split_fused(np.zeros((7, 4)), 3, "w")

    def test_nonzero_key_bias_is_rejected(self):
        n = 2
        vars_ = {
            "l/weight": np.zeros((3 * n, n), dtype=np.float16),
            "l/bias": np.array([0, 0, 1, 0, 0, 0], dtype=np.float16),
        }
        out = {}
        with self.assertRaisesRegex(conv.ConversionError, "key bias"):
            conv._split_linear(out, vars_, "l", ["q", "k", "v"], key_index=1)

    def test_key_gets_no_bias(self):
        n = 2
        vars_ = {
            "l/weight": np.arange(3 * n * n, dtype=np.float32).reshape(3 * n, n),
            "l/bias": np.array([1, 2, 0, 0, 5, 6], dtype=np.float32),
        }
        out = {}
        conv._split_linear(out, vars_, "l", ["q", "k", "v"], key_index=1)
        self.assertEqual(sorted(out), ["k.weight", "q.bias", "q.weight", "v.bias", "v.weight"])
        np.testing.assert_array_equal(out["v.bias"], [5, 6])
        np.testing.assert_array_equal(out["k.weight"], [[4, 5], [6, 7]])


class MapTensorsTest(unittest.TestCase):
    def _tiny_vars(self, weight_dtype=np.float16):
        """A complete CT2 variable set for a 1+1 layer, state-4 model."""
        n, f = 4, np.float16
        v = {
            "encoder/conv1/weight": np.zeros((n, 2, 3), f),
            "encoder/conv1/bias": np.zeros(n, f),
            "encoder/conv2/weight": np.zeros((n, n, 3), f),
            "encoder/conv2/bias": np.zeros(n, f),
            "encoder/position_encodings/encodings": np.zeros((5, n), f),
            "encoder/num_heads": np.array(2, np.int16),
            "decoder/num_heads": np.array(2, np.int16),
            "decoder/embeddings/weight": np.zeros((7, n), f),
            "decoder/position_encodings/encodings": np.zeros((3, n), f),
        }
        for side in ("encoder", "decoder"):
            v[f"{side}/layer_norm/gamma"] = np.ones(n, f)
            v[f"{side}/layer_norm/beta"] = np.zeros(n, f)
            pre = f"{side}/layer_0"
            lin = {"self_attention/linear_0": 3 * n, "self_attention/linear_1": n,
                   "ffn/linear_0": 4 * n}
            if side == "decoder":
                lin.update({"attention/linear_0": n, "attention/linear_1": 2 * n,
                            "attention/linear_2": n})
                v[f"{pre}/attention/layer_norm/gamma"] = np.ones(n, f)
                v[f"{pre}/attention/layer_norm/beta"] = np.zeros(n, f)
            for name, rows in lin.items():
                v[f"{pre}/{name}/weight"] = np.zeros((rows, n), weight_dtype)
                v[f"{pre}/{name}/bias"] = np.zeros(rows, f)
            v[f"{pre}/ffn/linear_1/weight"] = np.zeros((n, 4 * n), weight_dtype)
            v[f"{pre}/ffn/linear_1/bias"] = np.zeros(n, f)
            for ln in ("self_attention", "ffn"):
                v[f"{pre}/{ln}/layer_norm/gamma"] = np.ones(n, f)
                v[f"{pre}/{ln}/layer_norm/beta"] = np.zeros(n, f)
        return v

    def test_maps_complete_model(self):
        v = self._tiny_vars()
        hp = conv.derive_hparams(v)
        self.assertEqual(
            (hp.n_vocab, hp.n_audio_ctx, hp.n_audio_state, hp.n_audio_head,
             hp.n_audio_layer, hp.n_text_ctx, hp.n_text_layer, hp.n_mels),
            (7, 5, 4, 2, 1, 3, 1, 2),
        )
        out = conv.map_tensors(v, hp)
        self.assertEqual(set(out), set(conv.expected_shapes(hp)))
        self.assertEqual(out["encoder.conv2.bias"].shape, (4, 1))

    def test_missing_tensor_is_named(self):
        v = self._tiny_vars()
        del v["decoder/layer_0/attention/linear_2/bias"]
        with self.assertRaisesRegex(conv.ConversionError, "attention/linear_2/bias"):
            conv.map_tensors(v, conv.derive_hparams(v))

    def test_wrong_shape_is_named(self):
        v = self._tiny_vars()
        v["encoder/layer_0/ffn/linear_1/weight"] = np.zeros((4, 15), np.float16)
        with self.assertRaisesRegex(conv.ConversionError, "encoder.blocks.0.mlp.2.weight"):
            conv.map_tensors(v, conv.derive_hparams(v))

    def test_quantized_weights_are_rejected(self):
        v = self._tiny_vars(weight_dtype=np.int8)
        with self.assertRaisesRegex(conv.ConversionError, "quantized"):
            conv.map_tensors(v, conv.derive_hparams(v))


class ByteDecoderTest(unittest.TestCase):
    def test_table_is_a_bijection_over_bytes(self):
        table = conv.gpt2_bytes_to_unicode()
        self.assertEqual(sorted(table), list(range(256)))
        self.assertEqual(len(set(table.values())), 256)

    def test_known_tokens(self):
        # 'Ġ' (U+0120) is GPT-2's stand-in for the space byte, 'Ċ' for '\n'.
        self.assertEqual(conv.decode_token("Ġthe"), b" the")
        self.assertEqual(conv.decode_token("Ċ"), b"\n")
        self.assertEqual(conv.decode_token("hello"), b"hello")
        # Non-ASCII: 'é' is UTF-8 C3 A9, spelled with the chars for 0xC3 0xA9.
        self.assertEqual(conv.decode_token("Ã©"), "é".encode("utf-8"))

    def test_foreign_char_is_rejected(self):
        with self.assertRaisesRegex(conv.ConversionError, "byte alphabet"):
            conv.decode_token("a\u4e00")

    def test_base_vocab_drops_added_tokens(self):
        tok = {
            "model": {"type": "BPE", "vocab": {"!": 0, "Ġa": 1, "<|endoftext|>": 2}},
            "added_tokens": [
                {"id": 2, "content": "<|endoftext|>", "special": True},
                {"id": 3, "content": "<|startoftranscript|>", "special": True},
            ],
        }
        with tempfile.TemporaryDirectory() as d:
            p = Path(d) / "tokenizer.json"
            p.write_text(json.dumps(tok), encoding="utf-8")
            self.assertEqual(conv.load_base_vocab(p), [b"!", b" a"])


class MelFilterbankTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.f = conv.mel_filterbank(sr=16000, n_fft=400, n_mels=80)

    def test_shape_and_dtype(self):
        self.assertEqual(self.f.shape, (80, 201))
        self.assertEqual(self.f.dtype, np.float32)

    def test_non_negative_and_every_filter_used(self):
        self.assertTrue(np.all(self.f >= 0))
        self.assertFalse(np.any(np.signbit(self.f)))  # no -0.0 either
        self.assertTrue(np.all(self.f.max(axis=1) > 0))

    def test_peaks_move_up_with_filter_index(self):
        # Adjacent low filters are 36.8 Hz apart but FFT bins are 40 Hz apart,
        # so librosa's bank really has two pairs sharing a peak bin (6/7 and
        # 20/21); peaks are therefore non-decreasing, not strictly increasing.
        peaks = self.f.argmax(axis=1)
        self.assertTrue(np.all(np.diff(peaks) >= 0))
        self.assertGreaterEqual(len(set(peaks.tolist())), 78)
        self.assertEqual(peaks[0], 1)
        # Each peak sits within one bin of the filter's centre frequency.
        edges = conv.mel_to_hz(np.linspace(0, conv.hz_to_mel(8000.0), 82))
        centre_bins = edges[1:-1] / 40.0
        self.assertTrue(np.all(np.abs(peaks - centre_bins) <= 1.0))

    def test_slaney_area_normalisation(self):
        # On a fine frequency grid each triangle has unit area in Hz
        # (Slaney norm); at n_fft=400 the sampled sums are only roughly 1.
        fine = conv.mel_filterbank(sr=16000, n_fft=40000, n_mels=80)
        bin_hz = 16000 / 40000
        np.testing.assert_allclose(fine.sum(axis=1) * bin_hz, 1.0, rtol=2e-3)

    def test_matches_librosa_reference_points(self):
        # Values of librosa.filters.mel(sr=16000, n_fft=400, n_mels=80)
        # (== OpenAI's mel_filters.npz), [filter, bin, value].
        for i, j, want in [
            (0, 0, 0.0),
            (0, 1, 0.02486259490251541),
            (1, 1, 0.001990821911022067),
            (1, 2, 0.022871771827340126),
            (2, 2, 0.003981643822044134),
            (9, 10, 0.006945197004824877),
            (39, 41, 0.011486922390758991),
            (69, 131, 0.00487553421407938),
            (79, 190, 0.0022320549469441175),
            (79, 199, 0.0004487590049393475),
        ]:
            self.assertAlmostEqual(float(self.f[i, j]), want, places=8, msg=f"[{i},{j}]")

    def test_mel_scale_round_trip(self):
        hz = np.array([0.0, 500.0, 1000.0, 4000.0, 8000.0])
        np.testing.assert_allclose(conv.mel_to_hz(conv.hz_to_mel(hz)), hz, rtol=1e-12)
        self.assertAlmostEqual(float(conv.hz_to_mel(1000.0)), 15.0)


class ExpectedShapesTest(unittest.TestCase):
    def test_tensor_count_matches_whisper_cpp(self):
        hp = conv.Hparams(51864, 1500, 384, 6, 4, 448, 384, 6, 4, 80)
        shapes = conv.expected_shapes(hp)
        # whisper.cpp: 11 top-level + 15 per encoder block + 24 per decoder block
        self.assertEqual(len(shapes), 11 + 15 * 4 + 24 * 4)
        self.assertEqual(shapes["encoder.conv1.bias"], (384, 1))
        self.assertEqual(shapes["decoder.blocks.3.cross_attn.key.weight"], (384, 384))
        self.assertNotIn("encoder.blocks.0.attn.key.bias", shapes)

    def test_ggml_types(self):
        self.assertEqual(conv.ggml_type_for("encoder.conv1.bias", np.zeros((4, 1))), conv.GGML_F32)
        self.assertEqual(
            conv.ggml_type_for("decoder.positional_embedding", np.zeros((4, 4))), conv.GGML_F32
        )
        self.assertEqual(conv.ggml_type_for("x.mlp.0.bias", np.zeros(4)), conv.GGML_F32)
        self.assertEqual(conv.ggml_type_for("encoder.conv1.weight", np.zeros((4, 2, 3))), conv.GGML_F16)


if __name__ == "__main__":
    unittest.main()
