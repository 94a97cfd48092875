#!/usr/bin/env python3
"""Run llama.cpp's OpenAI-compatible HTTP server on 127.0.0.1 for tests and local use.

Uses the prebuilt `xllamacpp` wheel (llama.cpp compiled in) that scripts/bench-setup.sh
installs into ~/.cache/firstword/bench-venv; run this script with that venv's python:

    ~/.cache/firstword/bench-venv/bin/python scripts/llama_server.py \
        --model models/gemma/gemma-3-270m-q4_k_m.gguf [--port 0] [--threads 2] [--n-ctx 2048]

Once the model is loaded and the server listens, one line goes to stdout:

    READY http://127.0.0.1:PORT

(the OpenAI API is under `/v1`, e.g. `/v1/chat/completions`; `/health` answers 200).
It then serves until stdin closes or the process gets SIGTERM / SIGINT, and exits 0.
llama.cpp's own log goes to stderr. Errors (missing model, xllamacpp not installed) exit 1
with one line on stderr and nothing on stdout.

llama.cpp continues a final `assistant` message instead of answering after it ("assistant
prefill", on by default) when it formats the chat with its Jinja template engine, which is
the default and is kept on here (`use_jinja`); see docs/protocol.md for how the gateway's
OpenAI backend uses that.
"""

import argparse
import os
import signal
import sys
import threading


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="GGUF model file")
    p.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0: a free one)")
    p.add_argument("--n-ctx", type=int, default=2048, help="context size, tokens")
    p.add_argument("--threads", type=int, default=2, help="CPU threads (prompt and generation)")
    p.add_argument("--alias", default=None, help="model name reported by /v1/models")
    a = p.parse_args()
    if not 0 <= a.port <= 65535:
        p.error("--port must be in 0..65535")
    if a.n_ctx < 64 or a.threads < 1:
        p.error("--n-ctx must be >= 64 and --threads >= 1")
    return a


def main():
    a = parse_args()
    if not os.path.isfile(a.model):
        sys.exit(f"llama_server: model {a.model} not found")
    try:
        import xllamacpp as xlc
    except ImportError as e:
        sys.exit(f"llama_server: xllamacpp is not installed in {sys.executable} ({e}); "
                 "run scripts/bench-setup.sh")

    params = xlc.CommonParams()
    params.model.path = a.model
    if a.alias:
        params.model_alias = a.alias
    params.hostnames = ["127.0.0.1"]
    params.port = a.port
    params.n_ctx = a.n_ctx
    params.n_parallel = 1
    params.n_gpu_layers = 0
    params.cpuparams.n_threads = a.threads
    params.cpuparams_batch.n_threads = a.threads
    params.use_jinja = True  # needed for assistant prefill (see the module docstring)

    stop = threading.Event()

    def on_signal(_signum, _frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    # The constructor loads the model and starts the HTTP server on background threads.
    server = xlc.Server(params)
    address = server.listening_address
    if not address:
        sys.exit("llama_server: llama.cpp server did not start (see the log above)")
    print(f"READY {address}", flush=True)

    def wait_stdin():
        try:
            while sys.stdin.buffer.read(4096):
                pass
        except (OSError, ValueError):
            pass
        stop.set()

    threading.Thread(target=wait_stdin, daemon=True).start()
    while not stop.wait(0.2):
        pass
    sys.stderr.flush()
    # llama.cpp's server threads are not designed to be torn down from Python: leave at once.
    os._exit(0)


if __name__ == "__main__":
    main()
