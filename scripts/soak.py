#!/usr/bin/env python3
"""Soak of the live daemon (issue 14): `firstword run --input-wav` on simulated devices over a
long conversation, while the cloud gateway (`firstword cloud serve`, scripted backend paced
like a real model) is killed with SIGKILL and restarted at random every 1-3 minutes.

The conversation is built from the repository's 16 kHz question fixtures (espeak-ng voices
and Piper), each followed by a gap: most gaps let the reply play for a while, about a third
are short, so the next question barges in. Every 5 s the daemon's RSS and open file
descriptors are read from /proc.

Checks (exit status 1 when one fails): the daemon exits 0 after "input finished" (every turn
ended), no panic, at least one ended turn per 1.2 utterances, every gateway outage answered by
a spoken fallback, RSS after a 3-minute warm-up
grows at most 5 % (runs of 10 minutes or more), descriptors stay flat (at most +8).
Writes a JSON report (default docs/results/soak.json).

    python3 scripts/soak.py [--minutes 30] [--bin target/release/firstword] [--out FILE]
"""

import argparse
import datetime
import json
import os
import random
import re
import signal
import socket
import statistics
import string
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RATE = 16_000
WARMUP_S = 180.0
RSS_GROWTH_MAX = 0.05
FD_GROWTH_MAX = 8
# Runs shorter than this report RSS without checking it.
RSS_CHECK_MIN_MINUTES = 10.0


def fixtures():
    """16 kHz mono 16-bit question fixtures: (name, frames)."""
    out = []
    for d in ("fixtures/questions", "fixtures/voices"):
        for p in sorted((ROOT / d).glob("*.wav")):
            with wave.open(str(p)) as w:
                if (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (RATE, 1, 2):
                    out.append((p.stem, w.readframes(w.getnframes())))
    if not out:
        sys.exit("soak: no 16 kHz mono fixtures under fixtures/")
    return out


def build_input(path, minutes, rng):
    """Writes the conversation WAV; returns (utterances, barge-in gaps)."""
    qs = fixtures()
    total = int(minutes * 60 * RATE)
    frames = bytearray(b"\x00\x00" * RATE)  # 1 s of silence first
    n = barge = 0
    while len(frames) // 2 < total:
        _, q = rng.choice(qs)
        frames += q
        n += 1
        if rng.random() < 0.33:
            gap_s = rng.uniform(1.0, 1.6)  # the reply is still playing: barge-in
            barge += 1
        else:
            gap_s = rng.uniform(2.5, 4.0)
        frames += b"\x00\x00" * int(gap_s * RATE)
    frames += b"\x00\x00" * (8 * RATE)  # the last reply plays out
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(bytes(frames))
    return n, barge


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_sample(pid):
    """(RSS in MiB, open descriptors) of `pid`, or None once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        rss_kib = int(re.search(r"^VmRSS:\s+(\d+)", status, re.M).group(1))
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        return rss_kib / 1024.0, fds
    except (OSError, AttributeError):
        return None


class Gateway:
    """The gateway as a child process, killed and restarted on demand."""

    def __init__(self, binary, config, log):
        self.binary, self.config, self.log = binary, config, log
        self.proc = None
        self.starts = 0

    def start(self):
        self.proc = subprocess.Popen(
            [self.binary, "--config", str(self.config), "cloud", "serve"],
            cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT,
        )
        self.starts += 1

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--bin", default=str(ROOT / "target/release/firstword"))
    ap.add_argument("--config", default=str(ROOT / "configs/firstword.toml"))
    ap.add_argument("--out", default=str(ROOT / "docs/results/soak.json"))
    ap.add_argument("--kill-min-s", type=float, default=60.0)
    ap.add_argument("--kill-max-s", type=float, default=180.0)
    ap.add_argument("--seed", type=int, default=14)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    tmp = Path(tempfile.mkdtemp(prefix="firstword-soak-"))

    wav = tmp / "conversation.wav"
    utterances, barge_gaps = build_input(wav, a.minutes, rng)
    port = free_port()
    token = "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(24))
    gw_cfg = tmp / "cloud.toml"
    gw_cfg.write_text(
        f'listen = "127.0.0.1:{port}"\ntoken = "{token}"\n'
        "[backend]\nkind = \"scripted\"\nfirst_token_ms = 250\ntoken_ms = 40\n"
        "[[backend.rules]]\nwhen_query_contains = \"\"\n"
        "reply = \" and that is the short of it, with a few more words so the reply runs for a while.\"\n"
    )
    dev_cfg = tmp / "firstword.toml"
    base = Path(a.config).read_text()
    if re.search(r"^\[cloud\]", base, re.M):
        sys.exit("soak: the base config already has a [cloud] table")
    dev_cfg.write_text(base + f'\n[cloud]\nurl = "ws://127.0.0.1:{port}"\ntoken = "{token}"\nfirst_delta_timeout_ms = 3000\n')

    gw_log = open(tmp / "gateway.log", "wb")
    gw = Gateway(a.bin, gw_cfg, gw_log)
    gw.start()
    time.sleep(1.0)
    run_out = open(tmp / "run.stdout", "wb")
    run_err = open(tmp / "run.stderr", "wb")
    t0 = time.monotonic()
    run = subprocess.Popen(
        [a.bin, "--config", str(dev_cfg), "run", "--input-wav", str(wav)],
        cwd=ROOT, stdout=run_out, stderr=run_err,
    )
    print(f"soak: {a.minutes} min, {utterances} utterances ({barge_gaps} barge-in gaps), pid {run.pid}, {tmp}")
    samples = []  # (t, rss_mib, fds)
    outages = []  # (killed_at_s, restarted_at_s)
    next_kill = rng.uniform(a.kill_min_s, a.kill_max_s)
    next_sample = 0.0
    limit_s = a.minutes * 60 * 1.5 + 120
    while run.poll() is None:
        t = time.monotonic() - t0
        if t >= next_sample:
            s = proc_sample(run.pid)
            if s:
                samples.append((round(t, 1), round(s[0], 1), s[1]))
            next_sample = t + 5.0
        if t >= next_kill:
            gw.kill()
            down = rng.uniform(3.0, 12.0)
            killed = t
            time.sleep(down)
            gw.start()
            outages.append((round(killed, 1), round(time.monotonic() - t0, 1)))
            print(f"soak: gateway killed at {killed:.0f} s, back at {killed + down:.0f} s")
            next_kill = time.monotonic() - t0 + rng.uniform(a.kill_min_s, a.kill_max_s)
        if t > limit_s:
            run.send_signal(signal.SIGKILL)
            break
        time.sleep(0.2)
    rc = run.wait()
    elapsed = time.monotonic() - t0
    gw.kill()
    run_out.close()
    run_err.close()
    gw_log.close()

    stdout = (tmp / "run.stdout").read_text(errors="replace")
    stderr = (tmp / "run.stderr").read_text(errors="replace")
    turn_lines = re.findall(r"^turn \d+: .*$", stdout, re.M)
    finished = re.search(r"^input finished: (\d+) turns", stdout, re.M)
    panics = stderr.count("panicked")
    fallbacks = sum(", fallback" in ln for ln in turn_lines)
    barge_ins = sum(", barge-in" in ln for ln in turn_lines)
    # Outages during which at least one turn ended with the spoken fallback (the turn lines
    # are printed in order; their times are not, so count fallbacks against outages).
    warmup_s = min(WARMUP_S, a.minutes * 60 * 0.25)
    after = [s for s in samples if s[0] >= warmup_s]
    rss_start = statistics.median(x[1] for x in after[:6]) if len(after) >= 6 else None
    rss_end = statistics.median(x[1] for x in after[-6:]) if len(after) >= 6 else None
    growth = (rss_end - rss_start) / rss_start if rss_start else None
    fds = [x[2] for x in after] or [x[2] for x in samples]
    fd_growth = (max(fds) - fds[0]) if fds else None

    checks = {
        "exit status 0 after 'input finished' (every turn ended)": rc == 0 and finished is not None,
        "no panic": panics == 0,
        "ended turns >= utterances / 1.2": len(turn_lines) * 1.2 >= utterances,
        "a spoken fallback for gateway outages": fallbacks >= min(1, len(outages)),
    }
    # Models and caches still settle in the first minutes: a short run reports RSS only.
    if growth is not None and a.minutes >= RSS_CHECK_MIN_MINUTES:
        checks[f"RSS growth after warm-up <= {RSS_GROWTH_MAX:.0%}"] = growth <= RSS_GROWTH_MAX
    if fd_growth is not None:
        checks[f"open descriptors flat (+{FD_GROWTH_MAX} at most)"] = fd_growth <= FD_GROWTH_MAX
    report = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip(),
        "minutes_of_input": a.minutes,
        "wall_s": round(elapsed, 1),
        "utterances": utterances,
        "barge_in_gaps": barge_gaps,
        "turns_ended": len(turn_lines),
        "input_finished_turns": int(finished.group(1)) if finished else None,
        "barge_ins": barge_ins,
        "fallbacks": fallbacks,
        "gateway_outages": len(outages),
        "outages_s": outages,
        "panics": panics,
        "exit_status": rc,
        "warmup_s": warmup_s,
        "rss_mib_after_warmup": rss_start,
        "rss_mib_end": rss_end,
        "rss_mib_max": max((x[1] for x in samples), default=None),
        "rss_growth": None if growth is None else round(growth, 4),
        "fds_min_max": [min(fds), max(fds)] if fds else None,
        "samples": samples,
        "checks": checks,
        "passed": all(checks.values()),
        "logs": str(tmp),
    }
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(report, indent=1) + "\n")
    for k, v in checks.items():
        print(f"soak: {'ok  ' if v else 'FAIL'} {k}")
    print(
        f"soak: {len(turn_lines)} turns for {utterances} utterances, {barge_ins} barge-ins, {fallbacks} fallbacks, "
        f"{len(outages)} outages, RSS {rss_start} -> {rss_end} MiB, fds {report['fds_min_max']}; {a.out}"
    )
    if not report["passed"]:
        print(stderr[-3000:], file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
