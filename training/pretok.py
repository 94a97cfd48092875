#!/usr/bin/env python3
"""Pre-tokenized dialogues: the training corpus in a form small enough to carry to a GPU machine
(issue 12 §1: "data carried compressed"; the device tool takes ≤ 64 MiB per call) and ready to
pack there without re-tokenizing.

    training/.venv/bin/python training/pretok.py training/data/train_mix.jsonl \
        training/work/gpu-data/train_mix.turns.xz --tokenizer models/mulm/tokenizer.json

Format (`.turns.xz`): an LZMA-compressed NumPy .npz with
- `body`  uint16 [tokens]: the content tokens of every turn of every *distinct* dialogue
  (the tokenizer's vocabulary must be < 65,536), no chat-template tokens;
- `turn_len` uint32 [turns], `turn_role` uint8 [turns] (0 user, 1 assistant);
- `dlg_turns` uint32 [dialogues]: turns per distinct dialogue;
- `reps` uint16 [dialogues]: how often the dialogue occurs in the source file (the training mix
  repeats real conversations, `mix.py`), so the carried file holds each once;
- `tokenizer_sha256`: of the tokenizer.json the bodies were made with; `iter_turns` refuses
  another.

`iter_turns` yields what `ChatFormat.encode_turns` yields for the source dialogues (template
tokens re-added from mulm.json), so packing from this file equals packing from the JSONL.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import lzma
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

ROLES = ("user", "assistant")
SUFFIX = ".turns.xz"


def is_turns_file(path) -> bool:
    return str(path).endswith(SUFFIX)


def file_sha256(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def encode_file(jsonl, tok) -> dict[str, np.ndarray]:
    """Distinct dialogues of a JSONL file (by their messages) → the arrays of the format. Contents
    are stripped first, as the shipped chat template does (mulm.json `trim_content`)."""
    order, reps = [], {}
    with open(jsonl) as f:
        for line in f:
            if not line.strip():
                continue
            msgs = json.loads(line).get("messages") or []
            if not msgs:
                continue
            key = json.dumps([[m["role"], m["content"]] for m in msgs], ensure_ascii=False)
            if key not in reps:
                order.append(msgs)
                reps[key] = 0
            reps[key] += 1
    bodies, lens, roles, dlg, counts = [], [], [], [], []
    for msgs in order:
        texts = [m["content"].strip() for m in msgs]
        for m, e in zip(msgs, tok.encode_batch(texts, add_special_tokens=False)):
            bodies.append(np.asarray(e.ids, dtype=np.uint16))
            lens.append(len(e.ids))
            roles.append(ROLES.index(m["role"]))
        dlg.append(len(msgs))
        key = json.dumps([[m["role"], m["content"]] for m in msgs], ensure_ascii=False)
        counts.append(min(reps[key], np.iinfo(np.uint16).max))
    return {"body": np.concatenate(bodies) if bodies else np.zeros(0, np.uint16),
            "turn_len": np.asarray(lens, np.uint32), "turn_role": np.asarray(roles, np.uint8),
            "dlg_turns": np.asarray(dlg, np.uint32), "reps": np.asarray(counts, np.uint16)}


def write(arrays: dict, tokenizer_path, out) -> int:
    """Write the arrays (+ the tokenizer's hash) as `.turns.xz`; → bytes written."""
    buf = io.BytesIO()
    np.savez(buf, tokenizer_sha256=np.array(file_sha256(tokenizer_path)), **arrays)
    data = lzma.compress(buf.getvalue(), preset=9 | lzma.PRESET_EXTREME)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(out)
    return len(data)


def load(path) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(lzma.decompress(Path(path).read_bytes()))) as z:
        return {k: z[k] for k in z.files}


def iter_turns(path, fmt, tokenizer_path):
    """Yield one `fmt.encode_turns`-shaped list [(role, ids, sft_mask)] per dialogue occurrence
    (a dialogue with reps k is yielded k times). Raises ValueError when the file was made with
    another tokenizer or is inconsistent."""
    a = load(path)
    if not fmt.trim:
        raise ValueError(f"{path} holds stripped contents; this chat template keeps whitespace (trim_content false)")
    if str(a["tokenizer_sha256"]) != file_sha256(tokenizer_path):
        raise ValueError(f"{path} was tokenized with another tokenizer than {tokenizer_path}")
    lens, roles = a["turn_len"].astype(np.int64), a["turn_role"]
    if int(lens.sum()) != len(a["body"]) or int(a["dlg_turns"].sum()) != len(lens):
        raise ValueError(f"{path}: lengths do not add up")
    starts = np.concatenate([[0], np.cumsum(lens)])
    t = 0
    for n, k in zip(a["dlg_turns"].tolist(), a["reps"].tolist()):
        turns = []
        for j in range(t, t + n):
            role = ROLES[int(roles[j])]
            pre, suf = fmt.roles[role]
            body = a["body"][starts[j]:starts[j + 1]].tolist()
            am = 1 if role == "assistant" else 0
            turns.append((role, pre + body + suf, [0] * len(pre) + [am] * (len(body) + len(suf))))
        t += n
        for _ in range(k):
            yield turns


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("jsonl")
    ap.add_argument("out", help=f"output path ending in {SUFFIX}")
    ap.add_argument("--tokenizer", required=True)
    args = ap.parse_args(argv)
    if not is_turns_file(args.out):
        raise SystemExit(f"output must end in {SUFFIX}")
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(args.tokenizer)
    if tok.get_vocab_size() > 65536:
        raise SystemExit("vocabulary too large for uint16 bodies")
    arrays = encode_file(args.jsonl, tok)
    n = write(arrays, args.tokenizer, args.out)
    print(json.dumps({"out": args.out, "bytes": n, "dialogues": len(arrays["dlg_turns"]),
                      "occurrences": int(arrays["reps"].sum()), "body_tokens": len(arrays["body"])}))


if __name__ == "__main__":
    main()
