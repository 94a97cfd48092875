#!/usr/bin/env python3
"""Write the PyTorch ↔ Rust parity fixture: a tiny-preset (64-2, vocab 512) model directory with
seeded random weights, a small byte-level BPE tokenizer (the special tokens and order of
training/tokenizer.py), mulm.json and parity.json (PyTorch f32 logits).

    training/.venv/bin/python training/parity.py [--out lm/tests/fixtures/parity-tiny] [--seed 20260422]
    cargo test --release -p lm --test parity_pytorch      # Rust must match within 1e-4

Weights are drawn like the Rust `Weights::random_init` (matrices N(0, 1/in), norm gains
1 + N(0, 0.1²)) rather than the training init, so logits are O(1), attention is far from
uniform and a RoPE/GQA/norm mix-up changes the output visibly. The fixture stays < 1 MB.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import torch  # noqa: E402

from model import MuLM, mulm_for_tokenizer, preset_config  # noqa: E402

# Special tokens exactly as training/tokenizer.py assigns them (ids 0..4); mulm.json takes the ids
# from tokenizer.json, so the fixture also checks that non-default ids flow through.
SPECIALS = ["<|bos|>", "<|user|>", "<|assistant|>", "<|end|>", "<|pad|>"]

CORPUS = """\
What is the capital of France? The capital of France is Paris, a city on the Seine river.
How do plants make food? Plants make food through photosynthesis, using sunlight, water and carbon dioxide.
Can you recommend a good book? Sure! A good choice is a classic novel that many readers enjoy.
Tell me a joke. Why did the scarecrow win an award? Because he was outstanding in his field.
How far is the moon? The moon is about three hundred eighty four thousand kilometers from the Earth.
What should I cook tonight? A simple pasta with tomatoes, garlic and olive oil is quick and tasty.
Why is the sky blue? The sky looks blue because air scatters short blue wavelengths of sunlight more than red ones.
How do I keep bread fresh longer? Keep it in a bread box or freeze slices you will not eat soon.
Hello! How can I help you today? Hi there, I have a question about the weather tomorrow.
""".splitlines()


def tiny_tokenizer(vocab: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab, min_frequency=1, special_tokens=SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(CORPUS, trainer=trainer)
    for i, s in enumerate(SPECIALS):
        assert tok.token_to_id(s) == i
    return tok


def rust_like_init(model: MuLM, seed: int) -> MuLM:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, p in sorted(model.named_parameters()):
            if p.dim() == 1:
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g, dtype=torch.float64).float())
            else:
                p.copy_((torch.randn(p.shape, generator=g, dtype=torch.float64) / p.shape[-1] ** 0.5).float())
    return model


def write_fixture(out: Path, seed: int = 20260422, preset: str = "64-2") -> dict:
    from export import write_model_dir

    torch.manual_seed(seed)
    cfg = preset_config(preset)
    tok = tiny_tokenizer(cfg.vocab)
    out.mkdir(parents=True, exist_ok=True)
    tok.save(str(out / "tokenizer.json"), pretty=False)
    mulm = mulm_for_tokenizer(preset, tok, cfg)
    model = rust_like_init(MuLM(cfg), seed)
    write_model_dir(model, mulm, out / "tokenizer.json", out, card=None,
                    parity_extra={"seed": seed, "generator": "training/parity.py"})
    size = sum(f.stat().st_size for f in out.iterdir())
    return {"dir": str(out), "bytes": size, "params": model.num_parameters()}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "lm" / "tests" / "fixtures" / "parity-tiny"))
    ap.add_argument("--seed", type=int, default=20260422)
    args = ap.parse_args()
    torch.set_num_threads(1)
    s = write_fixture(Path(args.out), args.seed)
    print(json.dumps(s))
    if s["bytes"] > 1_000_000:
        sys.exit(f"fixture is {s['bytes']} bytes (> 1 MB)")


if __name__ == "__main__":
    main()
