#!/usr/bin/env python3
"""Export a training checkpoint to a model directory the Rust runtime (`lm::load_dir`) loads.

    training/.venv/bin/python training/export.py --ckpt training/work/runs/256-8/ckpt.pt \
        --out models/mulm-256-8 [--tokenizer training/work/tokenizer.json] [--no-card]

Writes into --out:
- model.safetensors  f32, Hugging Face Llama names, no lm_head (lm/SCHEMA.md)
- mulm.json          the run's mulm.json (shape, special-token ids of tokenizer.json, chat template)
- tokenizer.json     copied from the run
- parity.json        PyTorch f32 logits of the last position for a few chats (full vector, top-20,
                     sha256 of the f32 bytes; every position too for small models): check with
                     `FIRSTWORD_PARITY_DIR=<out> cargo test --release -p lm --test parity_pytorch`
- MODEL_CARD.md      validation loss, training summary, greedy openers for 30 held-out everyday
                     questions (greedy decoding in PyTorch f32, same prompt serialization as Rust)

GGUF (Q8_0 etc.) is produced by the Rust side from this directory (`lm::export_gguf`: needs the
f32 weights, mulm.json and tokenizer.json written here).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from model import DEFAULT_OPENER, ChatFormat, MuLM, config_from_mulm, save_mulm, save_safetensors  # noqa: E402

# Everyday voice-assistant questions written for this card (not taken from the training data
# sources); the openers are what the μLM would speak first.
EVERYDAY_QUESTIONS = [
    "What's a good way to fall asleep faster?",
    "How long should I boil an egg for a soft yolk?",
    "Why do cats purr?",
    "What should I pack for a weekend camping trip?",
    "How can I make my phone battery last longer?",
    "What is the difference between weather and climate?",
    "Can you suggest a quick vegetarian dinner?",
    "How do I get a red wine stain out of a carpet?",
    "Why is the ocean salty?",
    "What are some tips for a job interview?",
    "How often should I water a cactus?",
    "What's the best way to learn a new language?",
    "Why do leaves change color in the fall?",
    "How do I start running if I'm out of shape?",
    "What can I do on a rainy afternoon with kids?",
    "How does a microwave heat food?",
    "Is it better to rent or buy a house?",
    "How do I politely say no to a friend?",
    "What causes hiccups?",
    "How many cups of coffee a day is too much?",
    "What's a nice gift for my grandmother's birthday?",
    "How do airplanes stay in the air?",
    "Why do we dream?",
    "How can I save money on groceries?",
    "What should I do if I get stung by a bee?",
    "How do I keep bread fresh longer?",
    "What's the easiest houseplant to take care of?",
    "How can I be more productive working from home?",
    "Why does the moon change shape?",
    "How do I cool down a room without air conditioning?",
]

# Chats whose logits go into parity.json (single turn, multi turn, whitespace trimming).
PARITY_CHATS = [
    ("single_turn", [{"role": "user", "content": "What is the capital of France?"}]),
    ("everyday", [{"role": "user", "content": "How do I keep bread fresh longer?"}]),
    ("multi_turn", [
        {"role": "user", "content": "Hi there"},
        {"role": "assistant", "content": "Hello! How can I help you today?"},
        {"role": "user", "content": "  Why is the sky blue?  "},
    ]),
    ("longer", [{"role": "user", "content": "Tell me a joke about a scarecrow, then explain why the moon is "
                 "about three hundred eighty four thousand kilometers from the Earth, and what I should cook tonight."}]),
]


def first_words(text: str, n: int) -> str:
    return " ".join(text.split()[:n])


def f32(v) -> float:
    """Shortest decimal that round-trips the f32 value (JSON stays small, parsing is exact)."""
    return float(repr(np.float32(v)).removeprefix("np.float32(").removesuffix(")"))


def f32_list(t) -> list[float]:
    return [f32(v) for v in t.numpy().astype(np.float32)]


@torch.no_grad()
def parity_cases(model: MuLM, fmt: ChatFormat, chats=PARITY_CHATS, all_positions: bool | None = None) -> list[dict]:
    """all_positions: also store every position's logits for the multi-turn case (default: for
    small vocabularies only, to keep the committed fixture < 1 MB)."""
    model.eval()
    if all_positions is None:
        all_positions = model.cfg.vocab <= 1024
    cases = []
    for name, msgs in chats:
        ids = fmt.encode_prompt(msgs)
        logits = model(torch.tensor([ids]))[0].float()
        last = logits[-1]
        top = torch.topk(last, 20)
        c = {
            "name": name,
            "messages": msgs,
            "ids": ids,
            "logits_last": f32_list(last),
            "top": [[int(i), f32(v)] for v, i in zip(top.values.tolist(), top.indices.tolist())],
            "logits_sha256": hashlib.sha256(last.numpy().astype("<f4").tobytes()).hexdigest(),
        }
        if all_positions and name == "multi_turn":
            c["logits_all"] = [f32_list(row) for row in logits]
        cases.append(c)
    return cases


def write_parity(model: MuLM, fmt: ChatFormat, path: Path, preset: str, extra: dict | None = None) -> dict:
    doc = {
        "format": "mulm-parity",
        "version": 1,
        "preset": preset,
        "dtype": "f32",
        "tolerance": 1e-4,
        "torch": torch.__version__,
        **(extra or {}),
        "cases": parity_cases(model, fmt),
    }
    path.write_text(json.dumps(doc) + "\n")
    return doc


@torch.no_grad()
def greedy_openers(model: MuLM, fmt: ChatFormat, questions, words: int, max_new: int,
                   no_repeat_ngram: int = 0) -> list[dict]:
    model.eval()
    out = []
    for q in questions:
        ids = fmt.encode_prompt([{"role": "user", "content": q}])
        t0 = time.time()
        gen = model.greedy(ids, fmt.stop, max_new, no_repeat_ngram)
        text = fmt.tok.decode(gen, skip_special_tokens=True)
        out.append({"question": q, "opener": first_words(text, words), "greedy": text,
                    "tokens": len(gen), "seconds": round(time.time() - t0, 3)})
    return out


def write_model_dir(model: MuLM, mulm: dict, tokenizer_path, out: Path, *, card: dict | None = None,
                    parity_extra: dict | None = None, openers: bool = True) -> dict:
    """The common part of export.py and parity.py; returns a summary."""
    from tokenizers import Tokenizer

    out.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer.from_file(str(tokenizer_path))
    fmt = ChatFormat(mulm, tok)
    model = model.float().cpu().eval()
    save_safetensors(model, out / "model.safetensors")
    save_mulm(mulm, out / "mulm.json")
    if Path(tokenizer_path).resolve() != (out / "tokenizer.json").resolve():
        shutil.copyfile(tokenizer_path, out / "tokenizer.json")
    write_parity(model, fmt, out / "parity.json", mulm["preset"], parity_extra)
    summary = {"dir": str(out), "params": model.num_parameters()}
    if card is not None:
        ops = greedy_openers(model, fmt, EVERYDAY_QUESTIONS, mulm["opener"]["default_words"],
                             mulm["opener"]["max_new_tokens"],
                             mulm["opener"].get("no_repeat_ngram", 0)) if openers else []
        summary["openers"] = ops
        (out / "MODEL_CARD.md").write_text(model_card(mulm, model.num_parameters(), card, ops))
    return summary


def model_card(mulm: dict, params: int, card: dict, ops: list[dict]) -> str:
    vl = card.get("valid_loss")
    lines = [
        f"# μLM-{mulm['preset']} (firstword)",
        "",
        f"Decoder-only μLM (shared/paper.md): hidden {mulm['hidden']}, {mulm['layers']} layers, "
        f"{mulm['heads']} query / {mulm['kv_heads']} KV heads, SwiGLU {mulm['intermediate']}, vocab {mulm['vocab']}, "
        f"RoPE θ {mulm['rope_theta']:g}, tied embeddings: **{params:,} parameters**.",
        "",
        "| | |",
        "|---|---|",
        f"| training stage | {card.get('stage', '?')} |",
        f"| optimizer steps | {card.get('step', '?')} "
        f"{'(a time-scheduled run)' if card.get('total_steps') is None else 'of ' + str(card['total_steps'])} |",
        f"| batch × window | {card.get('batch_size', '?')} × ≤{card.get('seq_len', '?')} tokens |",
        f"| validation loss | {vl:.4f} nats/token (ppl {np.exp(vl):.1f}) |" if vl is not None else "| validation loss | n/a |",
        f"| validation loss mask | {card.get('valid_mask', card.get('stage', '?'))} tokens |",
        f"| source checkpoint | `{card.get('ckpt', '?')}` |",
        f"| exported | {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} |",
        "",
        "Files: `model.safetensors` (f32, HF Llama names), `mulm.json`, `tokenizer.json`, `parity.json` "
        "(PyTorch logits; `FIRSTWORD_PARITY_DIR=<this dir> cargo test --release -p lm --test parity_pytorch`). "
        "Make the deployable Q8_0 GGUF with the Rust exporter (`lm::export_gguf`).",
        "",
    ]
    if ops:
        lines += [
            f"## Greedy openers ({len(ops)} held-out everyday questions)",
            "",
            f"Greedy decoding in PyTorch f32; the opener is the first {mulm['opener']['default_words']} words "
            "(mulm.json `opener.default_words`); the last column is everything up to `<|end|>` or "
            f"{mulm['opener']['max_new_tokens']} tokens, never repeating a token "
            f"{mulm['opener'].get('no_repeat_ngram', 0)}-gram (`opener.no_repeat_ngram`; 0: no such rule).",
            "",
            "| # | question | opener | greedy continuation |",
            "|---|---|---|---|",
        ]
        esc = lambda s: s.replace("|", "\\|").replace("\n", " ")  # noqa: E731
        for i, o in enumerate(ops, 1):
            lines.append(f"| {i} | {esc(o['question'])} | {esc(o['opener'])} | {esc(o['greedy'])} |")
        lines.append("")
    return "\n".join(lines)


@torch.no_grad()
def validation_loss(model: MuLM, mulm: dict, tok_path, valid_path, seq_len: int, stage: str, limit: int | None,
                    batch_size: int = 8) -> float:
    from tokenizers import Tokenizer

    import train

    fmt = ChatFormat(mulm, Tokenizer.from_file(str(tok_path)))
    w = train.Windows.build(train.read_jsonl(valid_path, limit), fmt, seq_len)
    tot, n = train.windows_loss_sums(model, w, stage, fmt.pad_id, batch_size=batch_size)
    return tot / max(n, 1.0)


def run_tokenizer(ckpt: Path, targs: dict) -> str:
    """The tokenizer a run trained with: the copy train.py keeps beside its checkpoint, else
    the run's `--tokenizer` (relative to training/ when `make` ran it), else work/."""
    beside = ckpt.parent / "tokenizer.json"
    if beside.is_file():
        return str(beside)
    t = targs.get("tokenizer")
    if t:
        p = Path(t)
        return str(p if p.is_absolute() or p.exists() else HERE / p)
    return str(HERE / "work" / "tokenizer.json")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt", required=True, help="ckpt.pt written by train.py")
    ap.add_argument("--out", required=True, help="model directory to write")
    ap.add_argument("--tokenizer", help="tokenizer.json (default: the one the run trained with)")
    ap.add_argument("--valid", help="validation JSONL to recompute the loss on (default: the run's; "
                                    "'none' keeps the last eval from the checkpoint)")
    ap.add_argument("--valid-limit", type=int, default=500, help="dialogues of --valid to use")
    ap.add_argument("--no-card", action="store_true", help="skip MODEL_CARD.md (and the greedy openers)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--harm-check", action="store_true",
                    help="this checkpoint's gate needs the harmful-request check: mulm.json opener.harm_check, "
                         "which turns the check on in the runtime unless its config says harm_check = false")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    ck = torch.load(args.ckpt, map_location="cpu", weights_only=False)
    mulm = ck["mulm"]
    # Opener settings added to lm/mulm_defaults.json after the run began (no_repeat_ngram) reach
    # the export; those the checkpoint carries (a calibrated gate_min_score) are kept.
    mulm["opener"] = {**DEFAULT_OPENER, **mulm.get("opener", {})}
    if args.harm_check:
        mulm["opener"]["harm_check"] = True
    cfg = config_from_mulm(mulm)
    model = MuLM(cfg)
    model.load_state_dict(ck["model"])
    model.float().eval()
    targs = ck.get("args", {})
    tok_path = args.tokenizer or run_tokenizer(Path(args.ckpt), targs)
    stage = targs.get("stage", "pretrain")
    valid_loss, valid_mask = ck.get("valid_loss"), stage
    vpath = args.valid or targs.get("valid")
    if vpath and vpath != "none" and Path(vpath).exists():
        # SFT-style loss (assistant tokens) is what the openers are about; report that one.
        valid_mask = "assistant"
        valid_loss = validation_loss(model, mulm, tok_path, vpath, targs.get("seq_len") or min(1024, cfg.max_seq_len),
                                     "sft", args.valid_limit)
    card = {"stage": stage, "step": ck.get("step"), "total_steps": ck.get("total_steps"),
            "batch_size": targs.get("batch_size"), "seq_len": targs.get("seq_len"), "valid_loss": valid_loss,
            "valid_mask": valid_mask, "ckpt": args.ckpt}
    s = write_model_dir(model, mulm, tok_path, Path(args.out), card=None if args.no_card else card,
                        parity_extra={"source_checkpoint": str(args.ckpt), "step": ck.get("step")})
    print(json.dumps({"out": args.out, "params": s["params"], "step": ck.get("step"), "valid_loss": valid_loss}))
    for o in s.get("openers", [])[:5]:
        print(f"  {o['question']!r} -> {o['opener']!r}")


if __name__ == "__main__":
    main()
