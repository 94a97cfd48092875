#!/usr/bin/env python3
"""Train a μLM (shared/paper.md §"Training recipe") on training/data/*.jsonl dialogues.

    training/.venv/bin/python training/train.py --preset 256-8 --out training/work/runs/256-8 \
        [--stage pretrain|sft] [--batch-size 64] [--seq-len 1024] [--steps N | --ref-steps N] \
        [--threads 1] [--init-from CKPT]

- Serialization: the chat template of mulm.json (the same algorithm as the Rust
  `ChatTokenizer::encode_chat`): begin + per turn (prefix + encode(content.strip()) + suffix).
  mulm.json is written into the run dir from the preset and tokenizer.json's special-token ids.
- Packing at turn boundaries: a dialogue longer than the window is split between turns into
  sub-dialogues, each starting with the begin tokens; a turn longer than a whole window is cut
  into token segments that are packed like turns (pseudo-turns); a short tail window gets
  the previous window's last turns prepended as context (loss-masked, so no token is learned
  twice) or is merged into the previous window where that fits. Windows are batched with
  length bucketing and padded with <|pad|>; padding never carries loss.
- Loss: `--stage pretrain` on every token; `--stage sft` only on assistant content + its <|end|>.
- AdamW β (0.9, 0.95), ε 1e-8, weight decay 0.1 (matrices only), grad clip 1.0, peak LR 5e-4,
  linear warmup 2 % of the steps (≥ 10), cosine decay to 10 % of peak; bf16 autocast on CUDA,
  f32 on CPU.
- Step budget: `--steps`, or FLOPs-matched: steps = ref_steps · 28.85M / params, with
  ref_steps = `--ref-steps` or `--ref-epochs` (3) epochs of the packed windows for the 512-8
  reference (one window per batch row, so an epoch is ceil(windows / batch) steps).
- Or a clock (`--schedule-minutes M`, a GPU lease): the cosine decay spans M minutes of
  training and the run ends with them; `--pack-only` packs and caches the windows and exits.
- `--train`/`--valid` may be JSONL or pre-tokenized `.turns.xz` files (pretok.py).
- Resumable: <out>/ckpt.pt holds model, optimizer, step, RNG states and the arguments; rerunning
  the same command continues from it. <out>/log.jsonl has one line per log step / eval,
  <out>/loss.png the loss curve.
"""
from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import math
import os
import random
import shutil
import sys
import time
import zlib
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("RAYON_RS_NUM_THREADS", "1")

import torch  # noqa: E402

import pretok  # noqa: E402
from topical import parse_dialogue  # noqa: E402
from model import REFERENCE_PARAMS, ChatFormat, MuLM, mulm_for_tokenizer, param_groups, preset_config, save_mulm  # noqa: E402

FRESH, ASSIST = 1, 2  # bits of the per-token flag array: token is learned here / is assistant text


# ---------------------------------------------------------------------------------------------
# Packing
# ---------------------------------------------------------------------------------------------


def pack_dialogue(turns, begin: list[int], max_len: int, min_tail: int | None = None):
    """turns: [(role, ids, assistant_mask)] → windows [(ids, flags)] of ≤ max_len tokens.

    flags per token: bit FRESH (1) = this window is where the token is learned (0 for the begin
    tokens and for context repeated from the previous window), bit ASSIST (2) = assistant text.
    """
    budget = max_len - len(begin)
    if budget <= 0:
        raise ValueError("max_len too small for the begin tokens")
    if min_tail is None:
        min_tail = max(8, budget // 8)
    pieces = []  # (ids, flags) of whole turns or segments of over-long turns
    for _, ids, am in turns:
        fl = [FRESH | (ASSIST if a else 0) for a in am]
        if len(ids) <= budget:
            pieces.append((list(ids), fl))
        else:
            for i in range(0, len(ids), budget):
                pieces.append((list(ids[i:i + budget]), fl[i:i + budget]))
    windows, cur, n = [], [], 0
    for p in pieces:
        if cur and n + len(p[0]) > budget:
            windows.append(cur)
            cur, n = [], 0
        cur.append(p)
        n += len(p[0])
    if cur:
        windows.append(cur)
    if len(windows) >= 2:
        tail, prev = windows[-1], windows[-2]
        tail_n, prev_n = sum(len(p[0]) for p in tail), sum(len(p[0]) for p in prev)
        if prev_n + tail_n <= budget:
            windows[-2:] = [prev + tail]
        elif tail_n < min_tail:
            ctx, n = [], tail_n
            for ids, fl in reversed(prev):  # whole previous pieces, latest first, as context
                if n + len(ids) > budget:
                    break
                ctx.insert(0, (ids, [f & ~FRESH for f in fl]))
                n += len(ids)
            windows[-1] = ctx + tail
    out = []
    for w in windows:
        ids, fl = list(begin), [0] * len(begin)
        for p_ids, p_fl in w:
            ids += p_ids
            fl += p_fl
        out.append((ids, fl))
    return out


def opener_skips(messages) -> frozenset[int]:
    """Indices of the assistant turns that `topical.py` marked `"opener": false` (off-topic
    openers): the opener stage makes no example of them, but they stay as context."""
    return frozenset(i for i, m in enumerate(messages) if m.get("opener") is False)


def opener_examples(turns, begin: list[int], max_ctx: int, n_target: int = 24, skip=frozenset()):
    """The opener stage's examples of one dialogue: for every assistant turn that follows a user
    turn and whose index is not in `skip`, (begin + the latest whole turns up to and including
    that user turn + the assistant prefix → the first ≤ n_target tokens of the reply). Flags:
    FRESH|ASSIST on exactly those reply tokens (content, plus the turn's suffix/<|end|> when the
    reply is shorter than n_target), 0 on everything else, so the loss covers only the opener.

    Context: at most max_ctx tokens before the assistant prefix (begin included); older turns are
    dropped whole, like the runtime does; a last user turn that alone does not fit keeps its
    prefix, the first and the last tokens of its content and its suffix.
    """
    out = []
    for t, (role, ids, am) in enumerate(turns):
        if role != "assistant" or t == 0 or turns[t - 1][0] != "user" or t in skip:
            continue
        npre = 0
        while npre < len(am) and not am[npre]:
            npre += 1
        target = list(ids[npre:npre + n_target])
        if not target:
            continue
        budget = max_ctx - len(begin)
        u_role, u_ids, u_am = turns[t - 1]
        if len(u_ids) > budget:  # the user turn alone is too long: head + tail of its content
            keep = max(2, budget)
            head = (keep + 1) // 2
            ctx = list(u_ids[:head]) + list(u_ids[len(u_ids) - (keep - head):])
        else:
            ctx, k = list(u_ids), t - 2
            while k >= 0 and len(ctx) + len(turns[k][1]) <= budget:
                ctx = list(turns[k][1]) + ctx
                k -= 1
        ex = list(begin) + ctx + list(ids[:npre]) + target
        fl = [0] * (len(ex) - len(target)) + [FRESH | ASSIST] * len(target)
        out.append((ex, fl))
    return out


def pack_rows(lengths: np.ndarray, row_len: int, seed: int, epoch: int, group: int = 4096) -> list[np.ndarray]:
    """Dense packing of short examples into rows of ≤ row_len tokens: shuffle (seed, epoch), then
    first-fit decreasing within groups of `group` examples. → rows (arrays of example indices),
    shuffled. An example longer than row_len gets a row of its own (collate rejects it)."""
    rng = np.random.default_rng([seed, epoch, 7])
    perm = rng.permutation(len(lengths))
    rows = []
    for g in range(0, len(perm), group):
        idx = perm[g:g + group]
        idx = idx[np.argsort(-lengths[idx], kind="stable")]
        space, members = [], []
        for i in idx:
            n = int(lengths[i])
            for r in range(len(space)):  # first fit
                if space[r] >= n:
                    space[r] -= n
                    members[r].append(i)
                    break
            else:
                space.append(row_len - n)
                members.append([i])
        rows += [np.asarray(m, dtype=np.int64) for m in members]
    order = rng.permutation(len(rows))
    return [rows[i] for i in order]


def packed_batches(lengths: np.ndarray, batch_size: int, row_len: int, seed: int, epoch: int) -> list[list]:
    """Batches of `batch_size` packed rows (length-bucketed like epoch_batches)."""
    rows = pack_rows(lengths, row_len, seed, epoch)
    rl = np.array([int(lengths[r].sum()) for r in rows])
    rng = np.random.default_rng([seed, epoch, 11])
    order = np.argsort(rl, kind="stable")
    batches = [[rows[i] for i in order[k:k + batch_size]] for k in range(0, len(order), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def collate_packed(w: "Windows", rows, pad_id: int, stage: str = "opener"):
    """rows: [array of example indices] → inputs, targets, mask [b, L-1] plus pos, seg [b, L-1]:
    each example restarts RoPE positions at 0 and attends only to itself (model.hidden_states);
    the loss mask is each example's own (flag of the target token), so the last token of one
    example never learns the first of the next (begin tokens carry no loss)."""
    lens = [int(sum(w.offsets[i + 1] - w.offsets[i] for i in r)) for r in rows]
    L = max(lens)
    b = len(rows)
    ids = np.full((b, L), pad_id, dtype=np.int64)
    m = np.zeros((b, L), dtype=np.float32)
    pos = np.zeros((b, L), dtype=np.int64)
    seg = np.full((b, L), -1, dtype=np.int64)
    for r, row in enumerate(rows):
        c = 0
        for k, i in enumerate(row):
            t, f = w.get(i)
            n = len(t)
            ids[r, c:c + n] = t
            m[r, c:c + n] = loss_mask(f, stage)
            pos[r, c:c + n] = np.arange(n)
            seg[r, c:c + n] = k
            c += n
        seg[r, c:] = len(row) + np.arange(L - c)  # padding: each its own segment
        pos[r, c:] = 0
    t_ = lambda a: torch.from_numpy(np.ascontiguousarray(a))  # noqa: E731
    ids_t = t_(ids)
    return (ids_t[:, :-1].contiguous(), ids_t[:, 1:].contiguous(), t_(m[:, 1:]), t_(pos[:, :-1]), t_(seg[:, :-1]))


def packed_micro_batches(w: "Windows", rows, max_tokens: int | None) -> list:
    """Split a batch of packed rows into chunks of ≤ max_tokens padded tokens (≥ 1 row)."""
    if not max_tokens:
        return [rows]
    ln = w.lengths()
    rl = [int(ln[r].sum()) for r in rows]
    order = np.argsort(rl, kind="stable")
    out, cur, longest = [], [], 0
    for i in order:
        if cur and (len(cur) + 1) * max(longest, rl[i]) > max_tokens:
            out.append(cur)
            cur, longest = [], 0
        cur.append(rows[i])
        longest = max(longest, rl[i])
    if cur:
        out.append(cur)
    return out


def loss_mask(flags: np.ndarray, stage: str) -> np.ndarray:
    """Mask over *target* positions for a window's flags (flags of tokens 1..n)."""
    fresh = (flags & FRESH) > 0
    return (fresh & ((flags & ASSIST) > 0)) if stage in ("sft", "opener") else fresh


class Windows:
    """All packed windows of a split: flat int32 ids + uint8 flags + offsets."""

    def __init__(self, ids: np.ndarray, flags: np.ndarray, offsets: np.ndarray):
        self.ids, self.flags, self.offsets = ids, flags, offsets

    def __len__(self):
        return len(self.offsets) - 1

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def get(self, i):
        a, b = self.offsets[i], self.offsets[i + 1]
        return self.ids[a:b], self.flags[a:b]

    @staticmethod
    def build(dialogues, fmt: ChatFormat, max_len: int) -> "Windows":
        return Windows.build_turns((fmt.encode_turns(d["messages"]) for d in dialogues if d.get("messages")),
                                   fmt.begin, max_len)

    @staticmethod
    def build_turns(turn_lists, begin: list[int], max_len: int) -> "Windows":
        """Packed windows (`pack_dialogue`) of dialogues given as `ChatFormat.encode_turns` lists."""
        parts = (w for turns in turn_lists for w in pack_dialogue(turns, begin, max_len))
        return Windows.from_parts(parts)

    @staticmethod
    def build_opener(dialogues, fmt: ChatFormat, max_ctx: int, n_target: int) -> "Windows":
        """Opener-stage examples (`opener_examples`) of every dialogue, one 'window' each."""
        ds = [d for d in dialogues if d.get("messages")]
        return Windows.build_opener_turns((fmt.encode_turns(d["messages"]) for d in ds), fmt.begin, max_ctx, n_target,
                                          (opener_skips(d["messages"]) for d in ds))

    @staticmethod
    def build_opener_turns(turn_lists, begin: list[int], max_ctx: int, n_target: int, skips=None) -> "Windows":
        """skips: per dialogue, the turn indices to make no example of (`opener_skips`); None = none."""
        skips = skips if skips is not None else itertools.repeat(frozenset())
        parts = (e for turns, skip in zip(turn_lists, skips) for e in opener_examples(turns, begin, max_ctx, n_target, skip))
        return Windows.from_parts(parts)

    @staticmethod
    def from_parts(parts) -> "Windows":
        """[(ids, flags)] → one flat Windows."""
        ids_parts, fl_parts, lens = [], [], []
        for ids, fl in parts:
            ids_parts.append(np.asarray(ids, dtype=np.int32))
            fl_parts.append(np.asarray(fl, dtype=np.uint8))
            lens.append(len(ids))
        offsets = np.zeros(len(lens) + 1, dtype=np.int64)
        offsets[1:] = np.cumsum(lens)
        ids = np.concatenate(ids_parts) if ids_parts else np.zeros(0, np.int32)
        fl = np.concatenate(fl_parts) if fl_parts else np.zeros(0, np.uint8)
        return Windows(ids, fl, offsets)

    def save(self, path):
        np.savez(path, ids=self.ids, flags=self.flags, offsets=self.offsets)

    @staticmethod
    def load(path) -> "Windows":
        z = np.load(path)
        return Windows(z["ids"], z["flags"], z["offsets"])


def read_jsonl(path, limit: int | None = None):
    """The dialogues of a JSONL file (at most `limit`); a broken line is an error naming
    file:line (`topical.parse_dialogue`)."""
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                out.append(parse_dialogue(line, f"{path}:{n}"))
                if limit and len(out) >= limit:
                    break
    return out


def file_digest(path) -> str:
    st = os.stat(path)
    return f"{st.st_size}-{int(st.st_mtime)}"


def load_windows(path, fmt: ChatFormat, max_len: int, cache_dir: Path | None, limit: int | None, tok_path,
                 opener: tuple[int, int] | None = None) -> Windows:
    """opener = (max_ctx, n_target): the opener stage's examples instead of packed windows.
    The cache key holds the tokenizer's content hash: each run dir snapshots the tokenizer, so
    runs that share a cache (stages of one GPU run) must not miss it on the copy's mtime."""
    okey = f"|opener{opener}" if opener else ""
    key = hashlib.sha1(f"{Path(path).resolve()}|{file_digest(path)}|{pretok.file_sha256(tok_path)}|{max_len}|{limit}{okey}|"
                       f"{json.dumps(fmt.mulm['chat_template'], sort_keys=True)}|{json.dumps(fmt.mulm['special_tokens'], sort_keys=True)}|v1"
                       .encode()).hexdigest()[:16]
    cache = cache_dir / f"windows-{Path(path).stem}-{key}.npz" if cache_dir else None
    if cache and cache.exists():
        return Windows.load(cache)
    t0 = time.time()
    skips = None  # a pre-tokenized corpus carries no `"opener": false` marks (topical.py)
    if pretok.is_turns_file(path):  # pre-tokenized (a GPU machine's carried corpus)
        turn_lists = itertools.islice(pretok.iter_turns(path, fmt, tok_path), limit)
    else:
        ds = [d for d in read_jsonl(path, limit) if d.get("messages")]
        turn_lists = (fmt.encode_turns(d["messages"]) for d in ds)
        skips = [opener_skips(d["messages"]) for d in ds]
    if opener:
        w = Windows.build_opener_turns(turn_lists, fmt.begin, opener[0], opener[1], skips)
    else:
        w = Windows.build_turns(turn_lists, fmt.begin, max_len)
    print(f"packed {path}: {len(w)} windows, {len(w.ids):,} tokens in {time.time() - t0:.0f}s", flush=True)
    if cache:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp.npz")
        w.save(tmp)
        os.replace(tmp, cache)
    return w


def epoch_batches(lengths: np.ndarray, batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    """Shuffled, length-bucketed batches of window indices (deterministic in seed, epoch)."""
    rng = np.random.default_rng([seed, epoch])
    perm = rng.permutation(len(lengths))
    group = batch_size * 64
    batches = []
    for g in range(0, len(perm), group):
        idx = perm[g:g + group]
        idx = idx[np.argsort(lengths[idx], kind="stable")]
        batches += [idx[i:i + batch_size] for i in range(0, len(idx), batch_size)]
    order = rng.permutation(len(batches))
    return [batches[i] for i in order]


def micro_batches(w: Windows, idx, max_tokens: int | None) -> list:
    """Split a batch (window indices) into consecutive chunks whose padded size rows × longest
    stays ≤ max_tokens (≥ 1 row each), for gradient accumulation with bounded memory: the
    logits alone are tokens × vocab × 4 bytes (64 × 1024 × 12,288 → 3.2 GB per copy)."""
    if not max_tokens:
        return [idx]
    lens = w.lengths()[idx]
    order = np.argsort(lens, kind="stable")
    idx, lens = np.asarray(idx)[order], lens[order]
    out, start = [], 0
    for i in range(1, len(idx) + 1):
        if i == len(idx) or (i + 1 - start) * int(lens[i]) > max_tokens:
            out.append(idx[start:i])
            start = i
    return out


def collate(w: Windows, idx, pad_id: int, stage: str):
    """→ inputs [b, L-1], targets [b, L-1], mask [b, L-1] (L = longest window of the batch)."""
    L = int(max(w.offsets[i + 1] - w.offsets[i] for i in idx))
    b = len(idx)
    ids = np.full((b, L), pad_id, dtype=np.int64)
    m = np.zeros((b, L), dtype=np.float32)
    for r, i in enumerate(idx):
        t, f = w.get(i)
        ids[r, :len(t)] = t
        m[r, :len(t)] = loss_mask(f, stage)
    ids_t = torch.from_numpy(ids)
    return ids_t[:, :-1].contiguous(), ids_t[:, 1:].contiguous(), torch.from_numpy(np.ascontiguousarray(m[:, 1:]))


def interleaved_step(step: int, sft_every: int) -> tuple[str, int]:
    """Which stream trains optimizer step `step` (0-based) when every `sft_every`-th step is an SFT
    step (`--sft-every`), and the step's index within that stream: → ("sft" | "main", index), "main"
    being the run's own stage (the opener stage). sft_every ≤ 0: main steps only. A function of the step alone, so a resumed run continues
    both streams exactly where they were."""
    if sft_every <= 0:
        return "main", step
    if step % sft_every == sft_every - 1:
        return "sft", step // sft_every
    return "main", step - (step + 1) // sft_every


class BatchStream:
    """One stream of training batches over `w` (`stage` sets the loss mask): padded windows, or
    rows of densely packed examples (`packed`), reshuffled each epoch deterministically in
    (seed, epoch). `batch(i)` → (epoch, [(x, y, m, pos, seg)] micro-batches of the i-th batch)."""

    def __init__(self, w: Windows, stage: str, packed: bool, batch_size: int, seq_len: int, seed: int,
                 micro_tokens: int | None, pad_id: int):
        self.w, self.stage, self.packed = w, stage, packed
        self.batch_size, self.seq_len, self.seed = batch_size, seq_len, seed
        self.micro_tokens, self.pad_id = micro_tokens, pad_id
        self.n_rows = len(pack_rows(w.lengths(), seq_len, seed, 0)) if packed else len(w)
        self.per_epoch = math.ceil(self.n_rows / batch_size)
        self._epoch, self._batches = -1, None

    def batch(self, i: int):
        epoch, k = divmod(i, self.per_epoch)
        if epoch != self._epoch:
            lengths = self.w.lengths()
            self._batches = (packed_batches(lengths, self.batch_size, self.seq_len, self.seed, epoch) if self.packed
                             else epoch_batches(lengths, self.batch_size, self.seed, epoch))
            self._epoch = epoch
        if self.packed:  # an epoch may pack into fewer rows than epoch 0
            b = self._batches[k % len(self._batches)]
            return epoch, [collate_packed(self.w, mb, self.pad_id, self.stage)
                           for mb in packed_micro_batches(self.w, b, self.micro_tokens)]
        return epoch, [collate(self.w, mb, self.pad_id, self.stage) + (None, None)
                       for mb in micro_batches(self.w, self._batches[k], self.micro_tokens)]


# ---------------------------------------------------------------------------------------------
# Schedule, budgets
# ---------------------------------------------------------------------------------------------


def warmup_steps(total: int, frac: float = 0.02, minimum: int = 10) -> int:
    return min(total, max(minimum, math.ceil(frac * total)))


def lr_at(step: int, total: int, peak: float = 5e-4, warmup: int | None = None, min_ratio: float = 0.1) -> float:
    """LR of optimizer step `step` (0-based): linear warmup to `peak` over `warmup` steps, then
    cosine decay reaching min_ratio·peak at the last step (total − 1)."""
    warmup = warmup_steps(total) if warmup is None else warmup
    if step < warmup:
        return peak * (step + 1) / warmup
    span = max(1, total - 1 - warmup)
    p = min(1.0, (step - warmup) / span) if total - 1 > warmup else 1.0
    return peak * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * p)))


def lr_by_time(step: int, elapsed_s: float, budget_s: float, peak: float, warmup: int, min_ratio: float = 0.1) -> float:
    """`--schedule-minutes`: linear warmup over `warmup` steps times a cosine decay over the
    wall-clock budget, reaching min_ratio·peak when elapsed_s reaches budget_s."""
    p = min(1.0, max(0.0, elapsed_s / budget_s))
    return peak * min(1.0, (step + 1) / max(1, warmup)) * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * p)))


def flops_matched_steps(ref_steps: int, params: int, ref_params: float = REFERENCE_PARAMS) -> int:
    """FLOPs ∝ N·D: a model with `params` gets ref_steps · ref_params / params steps."""
    return max(1, round(ref_steps * ref_params / params))


# ---------------------------------------------------------------------------------------------
# Loss-curve PNG (matplotlib when present, else a minimal own writer)
# ---------------------------------------------------------------------------------------------


def _png_bytes(rgb: np.ndarray) -> bytes:
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].tobytes() for y in range(h))

    def chunk(t, d):
        return len(d).to_bytes(4, "big") + t + d + zlib.crc32(t + d).to_bytes(4, "big")

    ihdr = w.to_bytes(4, "big") + h.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def plot_losses(path, train_pts, valid_pts, title=""):
    """train_pts / valid_pts: [(step, loss)]."""
    if not train_pts:
        return
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 4))
        ax.plot(*zip(*train_pts), label="train", lw=1)
        if valid_pts:
            ax.plot(*zip(*valid_pts), "o-", label="valid", ms=3)
        ax.set_xlabel("step")
        ax.set_ylabel("loss (nats/token)")
        ax.set_title(title)
        ax.legend()
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        return
    except ImportError:
        pass
    # Own writer: 640x360, blue train line, red valid dots, grey grid at every 0.5 nats; no text.
    W, H, m = 640, 360, 20
    img = np.full((H, W, 3), 255, np.uint8)
    xs = [s for s, _ in train_pts + valid_pts]
    ys = [v for _, v in train_pts + valid_pts if math.isfinite(v)]
    x0, x1 = min(xs), max(max(xs), min(xs) + 1)
    y0, y1 = math.floor(min(ys) * 2) / 2, math.ceil(max(ys) * 2) / 2 + 1e-9

    def px(s, v):
        return int(m + (s - x0) / (x1 - x0) * (W - 2 * m)), int(H - m - (v - y0) / (y1 - y0) * (H - 2 * m))

    g = y0
    while g <= y1:
        img[px(x0, g)[1], m:W - m] = 220
        g += 0.5
    img[H - m, m:W - m] = 0
    img[m:H - m, m] = 0
    prev = None
    for s, v in train_pts:
        p = px(s, v)
        if prev:
            n = max(abs(p[0] - prev[0]), abs(p[1] - prev[1]), 1)
            for t in range(n + 1):
                x = prev[0] + (p[0] - prev[0]) * t // n
                y = prev[1] + (p[1] - prev[1]) * t // n
                img[max(0, min(H - 1, y)), max(0, min(W - 1, x))] = (30, 80, 200)
        prev = p
    for s, v in valid_pts:
        x, y = px(s, v)
        img[max(0, y - 2):y + 3, max(0, x - 2):x + 3] = (220, 30, 30)
    Path(path).write_bytes(_png_bytes(img))


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------


def rng_state():
    st = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def set_rng_state(st):
    random.setstate(st["python"])
    np.random.set_state(st["numpy"])
    torch.set_rng_state(st["torch"])
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


def save_checkpoint(path: Path, model, opt, step: int, args: dict, extra: dict):
    tmp = path.with_suffix(".tmp")
    torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step, "rng": rng_state(),
                "args": args, **extra}, tmp)
    os.replace(tmp, path)


@torch.no_grad()
def evaluate(model, w: Windows, args, device, amp, max_batches: int) -> float:
    if args.stage == "opener":
        return evaluate_packed(model, w, args, device, amp, max_batches)
    model.eval()
    tot, n = 0.0, 0.0
    bs = args.batch_size
    order = np.argsort(w.lengths(), kind="stable")  # fixed subset, deterministic
    sel = order[:: max(1, len(order) // max(1, max_batches * bs))][: max_batches * bs]
    for i in range(0, len(sel), bs):
        for mb in micro_batches(w, sel[i:i + bs], args.micro_tokens):
            x, y, m = collate(w, mb, args.pad_id, args.stage)
            x, y, m = x.to(device), y.to(device), m.to(device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                tot += float(model.loss(x, y, m, denom=1.0))
            n += float(m.sum())
    model.train()
    return tot / max(n, 1.0)


@torch.no_grad()
def evaluate_packed(model, w: Windows, args, device, amp, max_batches: int | None) -> float:
    """Opener loss on a fixed packing (epoch 0) of the examples; max_batches None = all."""
    model.eval()
    tot, n = 0.0, 0.0
    batches = packed_batches(w.lengths(), args.batch_size, args.seq_len, args.seed, 0)
    batches = sorted(batches, key=lambda b: int(min(int(r[0]) for r in b)))  # deterministic subset
    for b in batches[: max_batches] if max_batches else batches:
        for mb in packed_micro_batches(w, b, args.micro_tokens):
            x, y, m, pos, seg = (t.to(device) for t in collate_packed(w, mb, args.pad_id, "opener"))
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                tot += float(model.loss(x, y, m, denom=1.0, pos=pos, seg=seg))
            n += float(m.sum())
    model.train()
    return tot / max(n, 1.0)


@torch.no_grad()
def windows_loss_sums(model, w: Windows, stage: str, pad_id: int, device="cpu", batch_size: int = 8) -> tuple[float, float]:
    """(summed cross-entropy in nats, tokens scored) over all windows of w with `stage`'s mask;
    leaves the model in eval mode."""
    model.eval()
    tot = n = 0.0
    for i in range(0, len(w), batch_size):
        x, y, m = (t.to(device) for t in collate(w, np.arange(i, min(i + batch_size, len(w))), pad_id, stage))
        tot += float(model.loss(x, y, m, denom=1.0))
        n += float(m.sum())
    return tot, n


def windows_loss(model, w: Windows, stage: str, pad_id: int, device, batch_size: int = 8) -> float:
    """Mean loss per scored token over all windows of w (the training log's `valid_assistant`
    when stage == "sft", export.validation_loss, paired_loss.py)."""
    tot, n = windows_loss_sums(model, w, stage, pad_id, device, batch_size)
    model.train()
    return tot / max(n, 1.0)


def init_state(path, device) -> dict:
    """Weights for --init-from: a train.py/ggufload.py checkpoint (.pt), a μLM GGUF, or an
    export.py `model.safetensors` (f32, the same HF Llama names: no quantization on the way)."""
    if str(path).endswith(".safetensors"):
        from safetensors.torch import load_file

        return load_file(str(path), device=str(device))
    if str(path).endswith(".gguf"):
        import ggufload

        return ggufload.load_gguf_state(path)[1]
    return torch.load(path, map_location=device, weights_only=False)["model"]


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="256-8")
    ap.add_argument("--train", default=str(HERE / "data" / "train.jsonl"))
    ap.add_argument("--valid", default=str(HERE / "data" / "valid.jsonl"))
    ap.add_argument("--tokenizer", default=str(HERE / "work" / "tokenizer.json"))
    ap.add_argument("--out", required=True, help="run directory (checkpoints, logs, mulm.json)")
    ap.add_argument("--stage", choices=["pretrain", "sft", "opener"], default="pretrain",
                    help="pretrain: loss on all tokens; sft: loss on assistant tokens only; opener: (context "
                         "up to a user turn → first --opener-tokens reply tokens), loss on those only, "
                         "examples packed densely into rows of --seq-len")
    ap.add_argument("--opener-tokens", type=int, default=24, help="opener stage: reply tokens learned per example")
    ap.add_argument("--opener-context", type=int, default=128,
                    help="opener stage: max context tokens before the assistant prefix")
    ap.add_argument("--sft-every", type=int, default=0,
                    help="opener stage: every Nth step trains on a batch of SFT windows of the same --train "
                         "dialogues (loss on every assistant token) instead, so neither stage undoes the "
                         "other's gain; 0 = opener steps only")
    ap.add_argument("--eval-assistant", type=int, default=0,
                    help="at each eval also report the assistant-token loss (export.py's measure: first N "
                         "--valid dialogues as windows of --eval-assistant-seq, SFT mask) and the opener loss "
                         "on the same dialogues")
    ap.add_argument("--eval-assistant-seq", type=int, default=256)
    ap.add_argument("--no-eval-at-start", action="store_true",
                    help="with --eval-assistant: skip the step-0 evaluation of the starting weights")
    ap.add_argument("--init-from", help="start from this checkpoint's weights (e.g. pretrain → sft, or a μLM "
                                        "model.gguf via ggufload.py); fresh optimizer")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--seq-len", type=int, default=None, help="window length in tokens (default min(1024, max_seq_len))")
    ap.add_argument("--steps", type=int, help="optimizer steps (overrides the FLOPs-matched budget)")
    ap.add_argument("--ref-steps", type=int, help="steps of the 28.85M reference; steps = ref · 28.85M / params")
    ap.add_argument("--ref-epochs", type=float, default=3.0, help="reference budget in epochs when --ref-steps is absent")
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--min-lr-ratio", type=float, default=0.1)
    ap.add_argument("--warmup-frac", type=float, default=0.02)
    ap.add_argument("--min-warmup", type=int, default=10)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--threads", type=int, default=1, help="CPU threads for torch")
    ap.add_argument("--micro-tokens", type=int, default=None,
                    help="max padded tokens per forward/backward (gradient accumulation within a step); "
                         "default 4096 on CPU (≈1.5 GB peak for 256-8), none on CUDA; 0 = whole batch")
    ap.add_argument("--device", default="auto", help="auto, cpu or cuda")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--limit", type=int, help="use only the first N training dialogues")
    ap.add_argument("--valid-limit", type=int, help="use only the first N validation dialogues")
    ap.add_argument("--log-every", type=int, default=10)
    ap.add_argument("--eval-every", type=int, default=200)
    ap.add_argument("--eval-batches", type=int, default=8)
    ap.add_argument("--ckpt-every", type=int, default=100)
    ap.add_argument("--max-minutes", type=float, help="stop (with a checkpoint) after this much wall time")
    ap.add_argument("--stop-at", type=int,
                    help="stop (with a checkpoint) after this step; the schedule still spans --steps, so two "
                         "branches from one checkpoint stop at the same point of it (an A/B of two data mixes)")
    ap.add_argument("--schedule-minutes", type=float,
                    help="a time budget instead of a step budget (a GPU lease): the cosine decay runs over "
                         "this many minutes of training, warmup over --min-warmup steps, and the run stops "
                         "(with a checkpoint) when they are over; not resumable")
    ap.add_argument("--pack-rows", action="store_true",
                    help="pretrain/sft: pack windows densely into rows of --seq-len (attention kept inside each "
                         "window, as the opener stage does) instead of one padded window per row; on a GPU a "
                         "batch then holds ~3x the tokens of the mix's short windows")
    ap.add_argument("--pack-only", action="store_true",
                    help="pack (and cache) the windows this command would train on, then exit")
    ap.add_argument("--no-cache", action="store_true", help="do not cache packed windows under <out>/../cache")
    return ap.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(max(1, args.threads))
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    amp = device.type == "cuda"
    if args.micro_tokens is None:
        args.micro_tokens = 0 if device.type == "cuda" else 4096

    from tokenizers import Tokenizer

    # Snapshot the tokenizer into the run dir (the data pipeline may retrain work/tokenizer.json
    # while a run is going); resuming and export use the snapshot.
    run_tok = out / "tokenizer.json"
    if not run_tok.exists():
        shutil.copyfile(args.tokenizer, run_tok)
    elif (out / "ckpt.pt").exists() is False and Path(args.tokenizer).resolve() != run_tok.resolve():
        shutil.copyfile(args.tokenizer, run_tok)
    args.tokenizer = str(run_tok)
    tok = Tokenizer.from_file(args.tokenizer)
    cfg = preset_config(args.preset)
    mulm = mulm_for_tokenizer(args.preset, tok, cfg)
    save_mulm(mulm, out / "mulm.json")
    fmt = ChatFormat(mulm, tok)
    args.pad_id = fmt.pad_id
    seq_len = args.seq_len or min(1024, cfg.max_seq_len)
    args.seq_len = seq_len
    if seq_len > cfg.max_seq_len:
        raise SystemExit(f"--seq-len {seq_len} > max_seq_len {cfg.max_seq_len}")

    cache_dir = None if args.no_cache else out.parent / "cache"
    opener = (args.opener_context, args.opener_tokens) if args.stage == "opener" else None
    if opener and args.opener_context + args.opener_tokens + 4 > seq_len:
        raise SystemExit("--seq-len must exceed --opener-context + --opener-tokens")
    if args.sft_every and not opener:
        raise SystemExit("--sft-every interleaves SFT steps into the opener stage: it needs --stage opener")
    train_w = load_windows(args.train, fmt, seq_len, cache_dir, args.limit, args.tokenizer, opener)
    # --sft-every: the same dialogues as SFT windows (loss on every assistant token)
    sft_w = load_windows(args.train, fmt, seq_len, cache_dir, args.limit, args.tokenizer) if args.sft_every else None
    valid_w = load_windows(args.valid, fmt, seq_len, cache_dir, args.valid_limit, args.tokenizer, opener)
    train_tokens = int(loss_mask(train_w.flags, "pretrain" if not opener else "opener").sum())
    if sft_w is not None:
        train_tokens += int(loss_mask(sft_w.flags, "sft").sum())
    extra_eval = None
    if args.eval_assistant:
        ea = load_windows(args.valid, fmt, args.eval_assistant_seq, cache_dir, args.eval_assistant, args.tokenizer)
        eo = load_windows(args.valid, fmt, seq_len, cache_dir, args.eval_assistant, args.tokenizer,
                          (args.opener_context, args.opener_tokens))
        extra_eval = (ea, eo)
    if args.pack_only:
        print(f"packed: {len(train_w)} train, {len(valid_w)} valid", flush=True)
        return {"step": 0, "train": len(train_w), "valid": len(valid_w)}

    torch.manual_seed(args.seed)
    random.seed(args.seed)
    np.random.seed(args.seed)
    model = MuLM(cfg).init_weights(seed=args.seed)
    params = model.num_parameters()
    packed = bool(opener) or args.pack_rows  # rows of several examples, attention kept inside each
    streams = {"main": BatchStream(train_w, args.stage, packed, args.batch_size, seq_len, args.seed,
                                     args.micro_tokens, args.pad_id)}
    if sft_w is not None:
        streams["sft"] = BatchStream(sft_w, "sft", args.pack_rows, args.batch_size, seq_len, args.seed,
                                     args.micro_tokens, args.pad_id)
    n_rows = streams["main"].n_rows
    if args.schedule_minutes:
        if (out / "ckpt.pt").exists():
            raise SystemExit(f"{out}/ckpt.pt exists: a --schedule-minutes run cannot resume (its schedule is this "
                             "invocation's clock); use a new --out")
        total = 10**9  # never reached: the clock ends the run
        args.max_minutes = args.schedule_minutes
        budget = f"time-scheduled: {args.schedule_minutes} min"
    elif args.steps:
        total = args.steps
        budget = "explicit"
    else:
        # one window (sub-dialogue, padded) or packed row per batch row: an epoch is ceil(rows / batch) steps
        ref = args.ref_steps or math.ceil(args.ref_epochs * n_rows / args.batch_size)
        total = flops_matched_steps(ref, params)
        budget = f"FLOPs-matched: ref {ref} steps × 28.85M / {params / 1e6:.2f}M"
    warm = args.min_warmup if args.schedule_minutes else warmup_steps(total, args.warmup_frac, args.min_warmup)
    model.to(device)
    opt = torch.optim.AdamW(param_groups(model, args.weight_decay), lr=args.lr, betas=(0.9, 0.95), eps=1e-8,
                            fused=device.type == "cuda")

    ckpt_path = out / "ckpt.pt"
    step = 0
    if ckpt_path.exists():
        ck = torch.load(ckpt_path, map_location=device, weights_only=False)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        step = ck["step"]
        set_rng_state(ck["rng"])
        print(f"resumed from {ckpt_path} at step {step}", flush=True)
    elif args.init_from:
        model.load_state_dict(init_state(args.init_from, device))
        print(f"initialized weights from {args.init_from}", flush=True)

    arg_dict = {k: v for k, v in vars(args).items()}
    print(f"μLM-{args.preset}: {params:,} params, stage {args.stage}, device {device}, threads {args.threads}; "
          f"{len(train_w)} train {'examples' if opener else 'windows'} ({train_tokens:,} tokens learned"
          f"{f', {n_rows} packed rows' if packed else ''}"
          f"{f'; 1 step in {args.sft_every} SFT on {len(sft_w)} windows' if sft_w is not None else ''}), "
          f"{len(valid_w)} valid; "
          f"batch {args.batch_size} × ≤{seq_len}; {total} steps ({budget}), warmup {warm}", flush=True)
    (out / "run.json").write_text(json.dumps({"args": arg_dict, "params": params, "total_steps": total,
                                               "warmup": warm, "budget": budget, "train_tokens": train_tokens}, indent=2))

    log_f = open(out / "log.jsonl", "a")
    train_pts, valid_pts = [], []
    if (out / "log.jsonl").stat().st_size:
        for line in (out / "log.jsonl").read_text().splitlines():
            r = json.loads(line)
            if r.get("step", 0) > step:
                continue
            if "loss" in r:
                train_pts.append((r["step"], r["loss"]))
            if "valid_loss" in r:
                valid_pts.append((r["step"], r["valid_loss"]))
    t_start = time.time()
    t_log, tok_log = time.time(), 0
    loss_acc = {name: [0.0, 0] for name in streams}  # stream → [sum of step losses, steps] since the last log
    epochs = {}  # stream → epoch of its latest batch
    last_valid = None
    if step == 0 and extra_eval and not args.no_eval_at_start:  # the starting point (e.g. the shipped model)
        rec = {"step": 0, "valid_loss": evaluate(model, valid_w, args, device, amp, args.eval_batches),
               "valid_assistant": windows_loss(model, extra_eval[0], "sft", args.pad_id, device),
               "valid_opener": evaluate_packed(model, extra_eval[1], args, device, amp, None)}
        print(json.dumps(rec), flush=True)
        log_f.write(json.dumps(rec) + "\n")
        log_f.flush()
    t_start = t_log = time.time()  # --max-minutes and tokens/s count training, not the start-up eval
    model.train()
    while step < total and (args.stop_at is None or step < args.stop_at):
        stream, k = interleaved_step(step, args.sft_every)
        epochs[stream], parts = streams[stream].batch(k)
        if args.schedule_minutes:
            lr = lr_by_time(step, time.time() - t_start, 60 * args.schedule_minutes, args.lr, warm, args.min_lr_ratio)
        else:
            lr = lr_at(step, total, args.lr, warm, args.min_lr_ratio)
        for g in opt.param_groups:
            g["lr"] = lr
        opt.zero_grad(set_to_none=True)
        denom = max(1.0, float(sum(float(p[2].sum()) for p in parts)))  # loss = mean over the whole batch
        loss_val = 0.0
        for x, y, m, pos, seg in parts:
            x, y, m = x.to(device, non_blocking=True), y.to(device, non_blocking=True), m.to(device, non_blocking=True)
            if pos is not None:
                pos, seg = pos.to(device), seg.to(device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                loss = model.loss(x, y, m, denom=denom, pos=pos, seg=seg)
            loss.backward()
            loss_val += float(loss.detach())
            tok_log += int((x != args.pad_id).sum())
        gnorm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip))
        opt.step()
        step += 1
        loss_acc[stream][0] += loss_val
        loss_acc[stream][1] += 1
        if step % args.log_every == 0 or step == total:
            dt = time.time() - t_log
            # "loss" stays the stage's own; interleaved SFT steps log theirs apart
            rec = {"step": step, **{("loss" if name == "main" else f"loss_{name}"): acc[0] / acc[1]
                                    for name, acc in loss_acc.items() if acc[1]},
                   "lr": lr, "grad_norm": gnorm, "tok_per_s": tok_log / max(dt, 1e-9),
                   **{("epoch" if name == "main" else f"epoch_{name}"): e for name, e in epochs.items()},
                   "elapsed_s": round(time.time() - t_start, 1)}
            if "loss" in rec:
                train_pts.append((step, rec["loss"]))
            print(json.dumps(rec), flush=True)
            log_f.write(json.dumps(rec) + "\n")
            log_f.flush()
            t_log, tok_log = time.time(), 0
            loss_acc = {name: [0.0, 0] for name in streams}
        stopping = (args.max_minutes is not None and time.time() - t_start > 60 * args.max_minutes) \
            or (args.stop_at is not None and step >= args.stop_at)
        if step % args.eval_every == 0 or step == total or stopping:
            last_valid = evaluate(model, valid_w, args, device, amp, args.eval_batches)
            rec = {"step": step, "valid_loss": last_valid}
            if extra_eval:
                rec["valid_assistant"] = windows_loss(model, extra_eval[0], "sft", args.pad_id, device)
                rec["valid_opener"] = evaluate_packed(model, extra_eval[1], args, device, amp, None)
            valid_pts.append((step, last_valid))
            print(json.dumps(rec), flush=True)
            log_f.write(json.dumps(rec) + "\n")
            log_f.flush()
        if step % args.ckpt_every == 0 or step == total or stopping:
            save_checkpoint(ckpt_path, model, opt, step, arg_dict,
                            {"preset": args.preset, "mulm": mulm, "valid_loss": last_valid,
                             "total_steps": None if args.schedule_minutes else total})
            plot_losses(out / "loss.png", train_pts, valid_pts, f"μLM-{args.preset} {args.stage}")
        if stopping:
            print(f"stopping at step {step} (--max-minutes {args.max_minutes}, --stop-at {args.stop_at})", flush=True)
            break
    log_f.close()
    return {"step": step, "total": total, "train_pts": train_pts, "valid_pts": valid_pts, "valid_loss": last_valid,
            "ckpt": str(ckpt_path)}


if __name__ == "__main__":
    main()
