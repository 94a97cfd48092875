#!/usr/bin/env python3
"""Load a μLM GGUF (the Rust exporter's output, e.g. models/mulm/model.gguf) back into the
PyTorch model, so training can continue from a shipped checkpoint that exists only as GGUF.

    training/.venv/bin/python training/ggufload.py models/mulm/model.gguf --out ckpt.pt
    training/.venv/bin/python training/ggufload.py models/mulm/model.gguf --parity models/mulm/parity.json

The layout (lm/SCHEMA.md, lm/src/gguf_export.rs): GGUF v3, `general.architecture = "llama"`,
llama.cpp tensor names (`token_embd`, `blk.{i}.attn_q|attn_k|attn_v|attn_output|attn_norm|
ffn_gate|ffn_up|ffn_down|ffn_norm`, `output_norm`; no `output`: the head is tied), matrices in
F32/F16/Q8_0, norms F32, and the rows of `attn_q` (per query head) and `attn_k` (per KV head)
permuted from the half-split RoPE layout to llama.cpp's interleaved one:
GGUF row `h·hd + 2j + i` = HF row `h·hd + i·hd/2 + j`. The loader undoes that permutation.
mulm.json is embedded under the metadata key `mulm.config_json`.

The reader is self-contained (NumPy only); the tests cross-check it against the `gguf` PyPI
package. Q8_0 dequantization is exact (d · q per block of 32), so the loaded weights are the
quantized ones: logits differ from the f32 training checkpoint's by the quantization error.

`--out` writes a checkpoint that `train.py --init-from` accepts ({"model": state_dict,
"mulm": …, "step": 0, "source": …}).
"""
from __future__ import annotations

import argparse
import json
import struct
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

GGUF_MAGIC = b"GGUF"
MULM_KEY = "mulm.config_json"
# ggml types used by the exporter
GGML_F32, GGML_F16, GGML_Q8_0 = 0, 1, 8
Q8_0_BLOCK = 32

_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}


class _Buf:
    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def take(self, fmt: str):
        v = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return v[0] if len(v) == 1 else v

    def string(self) -> str:
        n = self.take("<Q")
        s = self.data[self.pos:self.pos + n].decode("utf-8")
        self.pos += n
        return s

    def value(self, ty: int):
        if ty in _SCALARS:
            return self.take(_SCALARS[ty])
        if ty == 8:
            return self.string()
        if ty == 9:
            et, n = self.take("<I"), self.take("<Q")
            return [self.value(et) for _ in range(n)]
        raise ValueError(f"unknown GGUF metadata type {ty}")


def read_gguf(path) -> tuple[dict, dict]:
    """→ (metadata {key: value}, tensors {name: np.float32 array, shape [rows, cols] like HF})."""
    data = Path(path).read_bytes()
    b = _Buf(data)
    if data[:4] != GGUF_MAGIC:
        raise ValueError(f"{path}: not a GGUF file")
    b.pos = 4
    version = b.take("<I")
    if version not in (2, 3):
        raise ValueError(f"{path}: GGUF version {version} not supported")
    n_tensors, n_kv = b.take("<Q"), b.take("<Q")
    meta = {}
    for _ in range(n_kv):
        k = b.string()
        meta[k] = b.value(b.take("<I"))
    infos = []
    for _ in range(n_tensors):
        name = b.string()
        nd = b.take("<I")
        dims = [b.take("<Q") for _ in range(nd)]
        ty, off = b.take("<I"), b.take("<Q")
        infos.append((name, dims, ty, off))
    align = int(meta.get("general.alignment", 32))
    base = -(-b.pos // align) * align
    tensors = {}
    for name, dims, ty, off in infos:
        n = int(np.prod(dims))
        start = base + off
        if ty == GGML_F32:
            a = np.frombuffer(data, np.float32, n, start).copy()
        elif ty == GGML_F16:
            a = np.frombuffer(data, np.float16, n, start).astype(np.float32)
        elif ty == GGML_Q8_0:
            if dims[0] % Q8_0_BLOCK:
                raise ValueError(f"{name}: row length {dims[0]} not a multiple of {Q8_0_BLOCK}")
            nb = n // Q8_0_BLOCK
            blk = np.frombuffer(data, np.uint8, nb * 34, start).reshape(nb, 34)
            d = blk[:, :2].copy().view(np.float16).astype(np.float32)  # [nb, 1]
            q = blk[:, 2:].copy().view(np.int8).astype(np.float32)  # [nb, 32]
            a = (d * q).reshape(-1)
        else:
            raise ValueError(f"{name}: ggml type {ty} not supported (F32, F16, Q8_0)")
        # GGUF dims are innermost first: [cols, rows] → HF [rows, cols]
        tensors[name] = a.reshape(list(reversed(dims)))
    return meta, tensors


def from_gguf_rows(w: np.ndarray, heads: int) -> np.ndarray:
    """Undo the exporter's Q/K row permutation: HF row h·hd + i·hd/2 + j = GGUF row h·hd + 2j + i."""
    rows, cols = w.shape
    hd = rows // heads
    return w.reshape(heads, hd // 2, 2, cols).transpose(0, 2, 1, 3).reshape(rows, cols)


def to_gguf_rows(w: np.ndarray, heads: int) -> np.ndarray:
    """The exporter's permutation (HF half-split → llama.cpp interleaved), for tests/writers."""
    rows, cols = w.shape
    hd = rows // heads
    return w.reshape(heads, 2, hd // 2, cols).transpose(0, 2, 1, 3).reshape(rows, cols)


def gguf_to_hf_name(name: str) -> str:
    if name == "token_embd.weight":
        return "model.embed_tokens.weight"
    if name == "output_norm.weight":
        return "model.norm.weight"
    if name == "output.weight":
        raise ValueError("GGUF has an untied output.weight; the μLM ties its head")
    parts = name.split(".")
    if parts[0] != "blk":
        raise ValueError(f"unexpected tensor {name}")
    i, t = parts[1], parts[2]
    m = {"attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
         "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
         "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
         "ffn_down": "mlp.down_proj"}
    return f"model.layers.{i}.{m[t]}.weight"


def load_gguf_state(path) -> tuple[dict, dict]:
    """→ (mulm.json dict, HF-named state dict of torch f32 tensors)."""
    import torch

    from model import config_from_mulm

    meta, tensors = read_gguf(path)
    if meta.get("general.architecture") != "llama":
        raise ValueError(f"{path}: architecture {meta.get('general.architecture')!r}, expected 'llama'")
    if MULM_KEY not in meta:
        raise ValueError(f"{path}: no {MULM_KEY} metadata (not written by the μLM exporter)")
    mulm = json.loads(meta[MULM_KEY])
    cfg = config_from_mulm(mulm)
    sd = {}
    for name, a in tensors.items():
        hf = gguf_to_hf_name(name)
        if name.endswith("attn_q.weight"):
            a = from_gguf_rows(a, cfg.heads)
        elif name.endswith("attn_k.weight"):
            a = from_gguf_rows(a, cfg.kv_heads)
        sd[hf] = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))
    return mulm, sd


def load_gguf_model(path):
    """→ (MuLM in f32 with the GGUF's weights, mulm.json dict)."""
    from model import MuLM, config_from_mulm

    mulm, sd = load_gguf_state(path)
    m = MuLM(config_from_mulm(mulm))
    m.load_state_dict(sd, strict=True)
    return m.float().eval(), mulm


def write_init_checkpoint(gguf_path, out) -> dict:
    """A checkpoint for `train.py --init-from` (weights only)."""
    import torch

    mulm, sd = load_gguf_state(gguf_path)
    ck = {"model": sd, "mulm": mulm, "preset": mulm["preset"], "step": 0, "source": str(gguf_path)}
    torch.save(ck, out)
    return ck


def write_gguf_parity(gguf_path, tokenizer_path, out) -> dict:
    """parity.json for a checkpoint that exists only as GGUF: PyTorch f32 logits of the
    dequantized weights (exact, see above) on export.py's parity chats, so
    lm/tests/shipped_checkpoint.rs checks the Rust runtime against PyTorch on the very weights
    it runs (only the activation rounding of the Q8_0 kernels differs)."""
    from tokenizers import Tokenizer

    from export import write_parity
    from model import ChatFormat

    model, mulm = load_gguf_model(gguf_path)
    fmt = ChatFormat(mulm, Tokenizer.from_file(str(tokenizer_path)))
    extra = {"source_checkpoint": f"{gguf_path} (Q8_0 dequantized by training/ggufload.py)", "step": None}
    return write_parity(model, fmt, Path(out), mulm["preset"], extra)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("gguf")
    ap.add_argument("--out", help="checkpoint (.pt) for train.py --init-from")
    ap.add_argument("--parity", help="write parity.json (PyTorch logits of the GGUF's weights) here")
    ap.add_argument("--tokenizer", help="tokenizer.json for --parity (default: beside the GGUF)")
    a = ap.parse_args(argv)
    if not a.out and not a.parity:
        ap.error("give --out, --parity or both")
    if a.parity:
        tok = a.tokenizer or str(Path(a.gguf).with_name("tokenizer.json"))
        doc = write_gguf_parity(a.gguf, tok, a.parity)
        print(json.dumps({"parity": a.parity, "cases": len(doc["cases"])}))
    if not a.out:
        return
    ck = write_init_checkpoint(a.gguf, a.out)
    n = sum(int(v.numel()) for v in ck["model"].values())
    print(json.dumps({"out": a.out, "preset": ck["preset"], "params": n}))


if __name__ == "__main__":
    main()
