#!/usr/bin/env bash
# Regenerates fixtures/voices/*.wav from fixtures/voices/voices.toml with espeak-ng and sox
# (Debian packages; installed here when missing). Each WAV: 400 ms of silence, the question
# (optionally two parts around a `pause_after` ms silence), 900 ms of silence; then
# resampled to the fixture's `rate` and `channels`, with white noise at amplitude `noise`
# mixed in when given. espeak-ng is deterministic, so a rerun gives the same audio.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if ! command -v espeak-ng >/dev/null || ! command -v sox >/dev/null; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends espeak-ng sox >/dev/null
fi
python3 - <<'PY'
import pathlib, subprocess, tempfile, tomllib

d = pathlib.Path("fixtures/voices")
for f in tomllib.load(open(d / "voices.toml", "rb"))["fixture"]:
    with tempfile.TemporaryDirectory() as t:
        t = pathlib.Path(t)
        def speak(text, out):
            subprocess.run(["espeak-ng", "-v", f["voice"], "-s", str(f["speed"]), "-w", str(out), text], check=True)
            # espeak-ng writes 22,050 Hz mono; its own leading/trailing silence is trimmed so
            # the onset is abrupt and the padding below is exact.
            subprocess.run(["sox", str(out), str(out.with_suffix(".t.wav")), "silence", "1", "0.001", "0.1%",
                            "reverse", "silence", "1", "0.001", "0.1%", "reverse"], check=True)
            return out.with_suffix(".t.wav")
        parts = [speak(f["text"], t / "a.wav")]
        if "pause_after" in f:
            gap = t / "gap.wav"
            subprocess.run(["sox", "-n", "-r", "22050", "-c", "1", "-b", "16", str(gap), "trim", "0",
                            str(f["pause_after"] / 1000)], check=True)
            parts += [gap, speak(f["rest"], t / "b.wav")]
        joined = t / "joined.wav"
        subprocess.run(["sox", *map(str, parts), str(joined), "pad", "0.4", "0.9"], check=True)
        out = d / f"{f['id']}.wav"
        fmt = ["-r", str(f["rate"]), "-c", str(f["channels"]), "-b", "16"]
        if "noise" in f:
            noise = t / "noise.wav"
            dur = subprocess.run(["soxi", "-D", str(joined)], check=True, capture_output=True, text=True).stdout.strip()
            subprocess.run(["sox", "-n", "-r", "22050", "-c", "1", "-b", "16", str(noise), "synth", dur,
                            "whitenoise", "vol", str(f["noise"])], check=True)
            subprocess.run(["sox", "-m", str(joined), str(noise), *fmt, str(out)], check=True)
        else:
            subprocess.run(["sox", str(joined), *fmt, str(out)], check=True)
        print(out, subprocess.run(["soxi", "-D", str(out)], capture_output=True, text=True).stdout.strip(), "s")
PY
