#!/usr/bin/env python3
"""Carry a train.py checkpoint's weights back from a GPU machine in files of bounded size (the
device tool returns at most 8 files of 16 MiB each, 64 MiB together; issue 12 §1: "split the
weights").

    python3 training/shards.py split RUN/ckpt.pt OUTDIR [--max-mib 15]   # on the GPU machine
    training/.venv/bin/python training/shards.py join OUTDIR RUN/ckpt.pt # here → export.py

`split` writes `weights-K.safetensors` (bf16, each ≤ --max-mib; a tensor larger than that is
cut along its first dimension into pieces named `NAME@i`) and `weights.json` (the checkpoint's
metadata: mulm, preset, step, args, valid_loss — no optimizer). bf16 keeps 8 significant bits,
as many as the Q8_0 export that ships; the PyTorch↔Rust parity is measured on the joined f32
weights. `join` writes a checkpoint that export.py reads (model weights in f32, no optimizer).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

META_KEYS = ("mulm", "preset", "step", "args", "valid_loss", "total_steps")


def pieces(name: str, t: torch.Tensor, max_bytes: int):
    """(name, tensor) pieces of ≤ max_bytes each (rows of dim 0; one row may not be cut)."""
    if t.numel() * t.element_size() <= max_bytes or t.dim() == 0:
        return [(name, t)]
    row = t[0].numel() * t.element_size()
    per = max(1, max_bytes // row)
    return [(f"{name}@{i}", t[s:s + per]) for i, s in enumerate(range(0, t.shape[0], per))]


def split(ckpt, out_dir, max_mib: float = 15.0) -> list[Path]:
    ck = torch.load(ckpt, map_location="cpu", weights_only=False)
    limit = int(max_mib * 2**20)
    max_bytes = limit - min(64 * 1024, limit // 8)  # room for the safetensors header
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    shards, cur, size = [], {}, 0
    for name, t in ck["model"].items():
        t = t.detach().to(torch.bfloat16 if t.is_floating_point() else t.dtype).contiguous()
        for pname, p in pieces(name, t, max_bytes):
            n = p.numel() * p.element_size()
            if cur and size + n > max_bytes:
                shards.append(cur)
                cur, size = {}, 0
            cur[pname] = p.clone()
            size += n
    if cur:
        shards.append(cur)
    paths = []
    for k, sd in enumerate(shards):
        paths.append(out_dir / f"weights-{k}.safetensors")
        save_file(sd, str(paths[-1]))
    meta = {k: ck.get(k) for k in META_KEYS}
    meta["args"] = {k: v for k, v in (meta["args"] or {}).items() if isinstance(v, (int, float, str, bool, type(None)))}
    meta["shards"] = [p.name for p in paths]
    (out_dir / "weights.json").write_text(json.dumps(meta, indent=1))
    return paths


def join(in_dir, ckpt) -> dict:
    in_dir = Path(in_dir)
    meta = json.loads((in_dir / "weights.json").read_text())
    parts: dict[str, list] = {}
    state = {}
    for name in meta["shards"]:
        for k, t in load_file(str(in_dir / name)).items():
            base, _, idx = k.partition("@")
            if idx:
                parts.setdefault(base, []).append((int(idx), t))
            else:
                state[k] = t
    for base, ps in parts.items():
        state[base] = torch.cat([t for _, t in sorted(ps, key=lambda x: x[0])])
    state = {k: (t.float() if t.is_floating_point() else t) for k, t in state.items()}
    ck = {k: meta.get(k) for k in META_KEYS}
    ck["model"] = state
    Path(ckpt).parent.mkdir(parents=True, exist_ok=True)
    torch.save(ck, ckpt)
    return ck


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("split")
    s.add_argument("ckpt")
    s.add_argument("out_dir")
    s.add_argument("--max-mib", type=float, default=15.0)
    j = sub.add_parser("join")
    j.add_argument("in_dir")
    j.add_argument("ckpt")
    a = ap.parse_args(argv)
    if a.cmd == "split":
        for p in split(a.ckpt, a.out_dir, a.max_mib):
            print(p, p.stat().st_size)
    else:
        ck = join(a.in_dir, a.ckpt)
        print(f"{a.ckpt}: {len(ck['model'])} tensors, step {ck.get('step')}")


if __name__ == "__main__":
    main()
