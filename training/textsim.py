"""Text normalization, word shingles and MinHash signatures shared by the
near-duplicate filter (prepare.py / cleaning.py) and the contamination check
(contamination.py).

The MinHash is a small NumPy implementation (deterministic across runs and
machines: shingles are hashed with CRC-32, permutations are a*h+b mod p with a
fixed seed) so that near-duplicate removal needs no extra dependency and the
signatures can be handed to datasketch's LSH Ensemble unchanged.
"""
from __future__ import annotations

import re
import unicodedata
import zlib

import numpy as np

_WORD_RE = re.compile(r"[a-z0-9]+")
_PRIME = np.uint64(4294967311)  # smallest prime > 2**32
_MAXH = np.uint64(0xFFFFFFFF)


def normalize_for_match(text: str) -> str:
    """Lowercase, NFKC, strip punctuation, collapse whitespace."""
    text = unicodedata.normalize("NFKC", text).lower()
    return " ".join(_WORD_RE.findall(text))


def words(text: str) -> list[str]:
    return normalize_for_match(text).split()


def shingles(text: str, n: int, max_words: int | None = None) -> set[str]:
    """Word n-gram shingles of the normalized text.  A text shorter than n
    words yields one shingle (the whole text) so short prompts can still match."""
    w = words(text)
    if max_words is not None:
        w = w[:max_words]
    if not w:
        return set()
    if len(w) < n:
        return {" ".join(w)}
    return {" ".join(w[i : i + n]) for i in range(len(w) - n + 1)}


def hash_shingles(sh: set[str]) -> np.ndarray:
    return np.fromiter((zlib.crc32(s.encode("utf-8")) for s in sh), dtype=np.uint64, count=len(sh))


class MinHasher:
    def __init__(self, num_perm: int = 64, seed: int = 1):
        rng = np.random.RandomState(seed)
        self.num_perm = num_perm
        # a < 2**31 and h < 2**32 keep a*h + b below 2**64 (no overflow).
        self.a = rng.randint(1, 2**31 - 1, size=num_perm, dtype=np.int64).astype(np.uint64)
        self.b = rng.randint(0, 2**31 - 1, size=num_perm, dtype=np.int64).astype(np.uint64)

    def signature(self, sh: set[str]) -> np.ndarray:
        if not sh:
            return np.full(self.num_perm, _MAXH, dtype=np.uint64)
        h = hash_shingles(sh)[:, None]
        return (((h * self.a[None, :]) + self.b[None, :]) % _PRIME & _MAXH).min(axis=0)


def jaccard(a: set, b: set) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def containment(q: set, x: set) -> float:
    """|S(q) ∩ S(x)| / |S(q)|"""
    if not q:
        return 0.0
    return len(q & x) / len(q)


class NearDupIndex:
    """MinHash-LSH near-duplicate detector (banding, b bands x r rows).
    With 64 permutations split in 8 bands of 8 rows the S-curve threshold is
    about (1/8)**(1/8) ~ 0.77; candidates are then confirmed by the estimated
    Jaccard (fraction of equal signature rows) >= `threshold`."""

    def __init__(self, threshold: float = 0.8, num_perm: int = 64, bands: int = 8, shingle_n: int = 5,
                 max_words: int = 1000):
        assert num_perm % bands == 0
        self.threshold = threshold
        self.hasher = MinHasher(num_perm)
        self.bands = bands
        self.rows = num_perm // bands
        self.shingle_n = shingle_n
        self.max_words = max_words
        self.tables: list[dict[bytes, int]] = [dict() for _ in range(bands)]
        self.sigs: list[np.ndarray] = []

    def signature(self, text: str) -> np.ndarray:
        return self.hasher.signature(shingles(text, self.shingle_n, self.max_words))

    def add_if_new(self, text: str) -> int | None:
        """Return the index of an earlier near-duplicate, or None (and index the text)."""
        sig = self.signature(text)
        keys = [sig[i * self.rows : (i + 1) * self.rows].tobytes() for i in range(self.bands)]
        seen = set()
        for t, k in zip(self.tables, keys):
            j = t.get(k)
            if j is not None and j not in seen:
                seen.add(j)
                if float(np.mean(self.sigs[j] == sig)) >= self.threshold:
                    return j
        idx = len(self.sigs)
        self.sigs.append(sig)
        for t, k in zip(self.tables, keys):
            t.setdefault(k, idx)
        return None
