#!/usr/bin/env python3
"""llama.cpp side of `firstword bench lm --vs-llama-cpp` (run by the daemon, not by hand).

Runs llama.cpp (through the prebuilt `xllamacpp` wheel installed by scripts/bench-setup.sh)
on a GGUF exported by the `lm` crate and measures what lm::bench measures, the same way:
warm-up runs, then single-turn inference repeated over a fixed time window, means over runs.

Fairness rules (mirroring the Rust side):
- the prompt is passed as token ids (no llama.cpp tokenizer involved), same ids as ours;
- greedy (temperature 0, top-k 1), end-of-generation ignored, exactly --n-gen tokens;
- one thread for prompt and generation, no prompt cache between runs (every run prefills);
- times come from llama.cpp's own per-token timings (measured inside its server loop, so
  request/JSON/callback overhead of the Python binding is excluded: generous to llama.cpp).
  Client-side wall-clock numbers (including that overhead) are reported as `client_*`.

Definitions (ms / tokens per second, per run, then averaged):
  prefill_ms            = prompt_ms: prompt forward + first token sampled
  ttft_ms               = prefill_ms (first token text is produced at the same point)
  first_token_decode_ms = predicted_ms when token 2 exists (first single-token decode step)
  time_to_K_words_ms    = prompt_ms + predicted_ms when token marks[K] exists
  decode_ms_per_token   = predicted_ms(last) / (n_gen - 1)
  prompt_tok_s          = prompt tokens / prefill time
  generation_tok_s      = (n_gen - 1) decode steps / decode time
  end_to_end_tok_s      = n_gen / (prompt_ms + predicted_ms(last))

Prints one JSON object on stdout; diagnostics go to stderr.
"""

import argparse
import json
import os
import sys
import time


def peak_rss_mib():
    """This process's peak resident set (MiB, VmHWM), or None."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--gguf", required=True, help="GGUF exported by lm::export_gguf")
    p.add_argument("--prompt-ids", required=True, help="comma-separated prompt token ids")
    p.add_argument("--n-gen", type=int, required=True, help="tokens to generate per run")
    p.add_argument("--marks", default="", help="token counts at which words 4 and 8 are finished, e.g. 5,9")
    p.add_argument("--window-s", type=float, default=10.0, help="measurement window (seconds)")
    p.add_argument("--warmup", type=int, default=3, help="untimed runs before the window")
    p.add_argument("--threads", type=int, default=1, help="llama.cpp threads (prompt and generation)")
    p.add_argument("--n-ctx", type=int, default=1024, help="context size (tokens)")
    return p.parse_args()


def make_server(xlc, a):
    params = xlc.CommonParams()
    params.model.path = a.gguf
    params.n_ctx = a.n_ctx
    params.n_batch = max(512, len(a.ids))
    params.n_ubatch = max(512, len(a.ids))
    params.n_parallel = 1
    params.n_gpu_layers = 0
    params.cpuparams.n_threads = a.threads
    params.cpuparams_batch.n_threads = a.threads
    # Every run must prefill the whole prompt, like ours: no prompt reuse across requests.
    params.cache_prompt = False
    for name in ("cache_ram_mib",):
        if hasattr(params, name):
            setattr(params, name, 0)
    return xlc.Server(params)


def one_run(server, a):
    """One request; returns per-run numbers (ms) from llama.cpp's timings and the client clock."""
    req = {
        "prompt": a.ids,
        "n_predict": a.n_gen,
        "ignore_eos": True,
        "temperature": 0.0,
        "top_k": 1,
        "samplers": ["top_k"],
        "cache_prompt": False,
        "stream": True,
        "timings_per_token": True,
    }
    chunks = []
    t0 = time.perf_counter()

    def cb(chunk):
        chunks.append((time.perf_counter() - t0, chunk))
        return False  # keep streaming

    server.handle_completions(req, cb)
    t_end = time.perf_counter() - t0
    # per_token[n-1] = (client_ms, prompt_ms, predicted_ms) when token n existed. The binding
    # streams OpenAI-style chunks (text only, no ids); timings.predicted_n counts tokens.
    per_token = []
    prompt_n, final = None, None
    for t, c in chunks:
        if not isinstance(c, dict):
            continue
        if "code" in c and "message" in c:
            raise RuntimeError(f"llama.cpp error: {c}")
        if "error" in c:
            raise RuntimeError(f"llama.cpp error: {c['error']}")
        tim = c.get("timings") or {}
        if not tim:
            continue
        prompt_n, final = tim.get("prompt_n", prompt_n), tim
        n = tim.get("predicted_n", 0)
        while len(per_token) < n:
            per_token.append((t * 1e3, tim.get("prompt_ms"), tim.get("predicted_ms")))
    if final is None:
        raise RuntimeError(f"llama.cpp returned no timings ({len(chunks)} chunks)")
    return {
        "per_token": per_token,
        "prompt_n": prompt_n,
        "prompt_ms": final["prompt_ms"],
        "predicted_ms": final["predicted_ms"],
        "predicted_n": final["predicted_n"],
        "client_total_ms": t_end * 1e3,
    }


def mean(xs):
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None


def main():
    a = parse_args()
    a.ids = [int(x) for x in a.prompt_ids.split(",") if x.strip()]
    marks = [int(x) for x in a.marks.split(",") if x.strip()]
    if not a.ids or a.n_gen < 1:
        sys.exit("need --prompt-ids and --n-gen >= 1")
    try:
        import xllamacpp as xlc
    except ImportError as e:
        sys.exit(f"xllamacpp is not installed in {sys.executable} ({e}); run scripts/bench-setup.sh")

    t_load = time.perf_counter()
    server = make_server(xlc, a)
    load_ms = (time.perf_counter() - t_load) * 1e3
    for _ in range(a.warmup):
        one_run(server, a)
    runs = []
    start = time.perf_counter()
    while not runs or time.perf_counter() - start < a.window_s:
        runs.append(one_run(server, a))

    r0 = runs[0]
    if r0["predicted_n"] != a.n_gen or len(r0["per_token"]) != a.n_gen:
        sys.exit(f"llama.cpp generated {r0['predicted_n']} tokens ({len(r0['per_token'])} timed), expected {a.n_gen}")
    if r0["prompt_n"] is not None and r0["prompt_n"] != len(a.ids):
        sys.exit(f"llama.cpp processed {r0['prompt_n']} prompt tokens, expected {len(a.ids)} (prompt cache reuse?)")

    def at_token(r, n, client=False):
        """ms from the start of the run until token n (1-based) existed."""
        if n < 1 or n > len(r["per_token"]):
            return None
        c, _pm, pred = r["per_token"][n - 1]
        if client:
            return c
        return r["prompt_ms"] + (pred if pred is not None else 0.0)

    steps = a.n_gen - 1
    decode_ms = sum(r["predicted_ms"] for r in runs)
    prefill_ms = sum(r["prompt_ms"] for r in runs)
    total_ms = sum(r["prompt_ms"] + r["predicted_ms"] for r in runs)
    out = {
        "runtime": "llama.cpp",
        "binding": f"xllamacpp {getattr(xlc, '__version__', '?')}",
        "llama_cpp_build": {k: str(v) for k, v in getattr(xlc, "BUILD_INFO", {}).items()},
        "gguf": os.path.basename(a.gguf),
        "threads": a.threads,
        "timing_source": "llama.cpp server per-token timings (internal); client_* = Python wall clock",
        "load_ms": load_ms,
        "prompt_tokens": len(a.ids),
        "prefill_ms": prefill_ms / len(runs),
        "ttft_ms": prefill_ms / len(runs),
        "first_token_decode_ms": mean([at_token(r, 2) - r["prompt_ms"] if at_token(r, 2) else None for r in runs]),
        "time_to_4_words_ms": mean([at_token(r, marks[0]) for r in runs]) if len(marks) > 0 else None,
        "time_to_8_words_ms": mean([at_token(r, marks[1]) for r in runs]) if len(marks) > 1 else None,
        "decode_ms_per_token": decode_ms / (steps * len(runs)) if steps > 0 else 0.0,
        "prompt_tok_s": len(a.ids) * len(runs) / (prefill_ms / 1e3),
        "generation_tok_s": steps * len(runs) / (decode_ms / 1e3) if decode_ms > 0 else 0.0,
        "end_to_end_tok_s": a.n_gen * len(runs) / (total_ms / 1e3),
        "generated_tokens_per_run": mean([r["predicted_n"] for r in runs]),
        "client_ttft_ms": mean([at_token(r, 1, True) for r in runs]),
        "client_time_to_4_words_ms": mean([at_token(r, marks[0], True) for r in runs]) if len(marks) > 0 else None,
        "client_time_to_8_words_ms": mean([at_token(r, marks[1], True) for r in runs]) if len(marks) > 1 else None,
        "client_total_ms": mean([r["client_total_ms"] for r in runs]),
        "runs": len(runs),
        "window_s": a.window_s,
        "warmup_runs": a.warmup,
        "peak_rss_mib": peak_rss_mib(),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
