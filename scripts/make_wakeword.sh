#!/usr/bin/env bash
# The wake word's data: the reference shipped in configs/wakeword/ and the sets
# `firstword bench wakeword` measures it on. Every voice is synthetic or a registry recording,
# so the whole thing reruns on a fresh machine (espeak-ng, sox and the Asterisk prompts are
# Debian packages; Piper is the project's own voice via `firstword say`).
#
#   scripts/make_wakeword.sh            # out/wakeword/{build,tune,test}/ + the reference
#
# Voices are split three ways and never shared between the sets:
#   build  the reference's recordings: 6 espeak-ng voices x 2 speeds + Piper joe x 2 speeds
#   tune   threshold tuning: 4 other espeak-ng voices, phrase alone and before a question,
#          plus the odd-numbered Asterisk prompts and half of the espeak-ng sentence set
#   test   what the figures report: 8 further voices/variants, 3 speeds, some with noise, phrase
#          alone and before a question; negatives = the even-numbered Asterisk prompts, jfk.wav,
#          codec2's speech sample and the other half of the sentences
# Positives carry `<name>.json` with the phrase's true start and end (s) in the file.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
OUT="${1:-out/wakeword}"
FW="${FIRSTWORD:-target/release/firstword}"
[ -x "$FW" ] || FW=target/debug/firstword
if ! command -v espeak-ng >/dev/null || ! command -v sox >/dev/null; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends espeak-ng sox >/dev/null
fi
AST="${FIRSTWORD_CACHE:-$HOME/.cache/firstword}/asterisk"
if [ ! -d "$AST/usr/share/asterisk/sounds" ]; then
  mkdir -p "$AST" && (cd "$AST" && apt-get download asterisk-core-sounds-en-wav >/dev/null && dpkg-deb -x asterisk-core-sounds-en-wav_*.deb .)
fi
rm -rf "$OUT" && mkdir -p "$OUT"
OUT="$OUT" FW="$FW" AST="$AST/usr/share/asterisk/sounds" python3 - <<'PY'
import json, os, pathlib, random, subprocess, tempfile

out, fw, ast = pathlib.Path(os.environ["OUT"]), os.environ["FW"], pathlib.Path(os.environ["AST"])
PHRASE = "hey firstword"
QUESTIONS = ["what is the capital of France?", "how long should I boil an egg?", "set a timer for ten minutes.",
             "what's the weather like tomorrow?", "tell me a joke about cats.", "how far away is the moon?"]
BUILD = [("en-us", 150), ("en-us", 175), ("en-us+f2", 150), ("en-us+f2", 175), ("en-gb+m3", 150), ("en-gb+m3", 175),
         ("en-gb-x-rp+f4", 150), ("en-gb-x-rp+f4", 175), ("en-029+m2", 150), ("en-029+m2", 175),
         ("en-us+m7", 150), ("en-us+m7", 175)]
TUNE = ["en-gb-scotland+m4", "en-us+f3", "en-us-nyc+m5", "en-gb+f1"]
TEST = ["en-gb-x-gbclan+m1", "en-us+f4", "en-gb-x-gbcwmd+m6", "en-us+f5", "en-gb-x-rp+m8", "en-029+f1",
        "en-us+Andy", "en-gb+klatt2"]
rng = random.Random(7)

def sh(*a):
    subprocess.run([str(x) for x in a], check=True, stdout=subprocess.DEVNULL)

def dur(p):
    return float(subprocess.run(["soxi", "-D", str(p)], check=True, capture_output=True, text=True).stdout)

def espeak(text, voice, speed, dst):
    """espeak-ng → 16 kHz mono, its own leading/trailing silence trimmed."""
    with tempfile.TemporaryDirectory() as t:
        raw = pathlib.Path(t) / "r.wav"
        sh("espeak-ng", "-v", voice, "-s", speed, "-w", raw, text)
        sh("sox", raw, "-r", 16000, "-c", 1, "-b", 16, dst, "silence", 1, 0.001, "0.1%", "reverse", "silence", 1, 0.001, "0.1%", "reverse")

def piper(text, length_scale, dst):
    with tempfile.TemporaryDirectory() as t:
        cfg, raw = pathlib.Path(t) / "c.toml", pathlib.Path(t) / "r.wav"
        cfg.write_text(f"[tts]\nlength_scale = {length_scale}\n")
        sh(fw, "say", text, "--out", raw, "--rate", 16000, "--pad-ms", 0, "--config", cfg)
        sh("sox", raw, dst, "silence", 1, 0.001, "0.1%", "reverse", "silence", 1, 0.001, "0.1%", "reverse")

def positive(d, name, voice, speed, question, noise, gap_s):
    """0.5 s, the phrase, gap_s, maybe a question, 0.8 s; returns the phrase's span."""
    with tempfile.TemporaryDirectory() as t:
        t = pathlib.Path(t)
        espeak(PHRASE, voice, speed, t / "p.wav")
        parts = [t / "p.wav"]
        if question:
            sh("sox", "-n", "-r", 16000, "-c", 1, "-b", 16, t / "g.wav", "trim", 0, gap_s)
            espeak(question, voice, speed, t / "q.wav")
            parts += [t / "g.wav", t / "q.wav"]
        sh("sox", *parts, t / "j.wav", "pad", 0.5, 0.8)
        dst = d / f"{name}.wav"
        if noise:
            sh("sox", "-n", "-r", 16000, "-c", 1, "-b", 16, t / "n.wav", "synth", dur(t / "j.wav"), "whitenoise", "vol", noise)
            sh("sox", "-m", t / "j.wav", t / "n.wav", dst)
        else:
            sh("cp", t / "j.wav", dst)
        span = {"phrase_start_s": 0.5, "phrase_end_s": 0.5 + dur(t / "p.wav"), "voice": voice, "speed": speed,
                "question": question, "noise": noise}
        (d / f"{name}.json").write_text(json.dumps(span))

# The reference's recordings.
b = out / "build"; b.mkdir(parents=True)
for i, (v, s) in enumerate(BUILD):
    espeak(PHRASE, v, s, b / f"{i:02d}_{v.replace('+', '_')}_{s}.wav")
for ls in (1.0, 1.15):
    piper(PHRASE, ls, b / f"piper_joe_{ls}.wav")

# Positives: every voice at each speed, alone and before a question (with a 0–200 ms gap);
# a third of the test ones with white noise.
for split, voices, speeds in (("tune", TUNE, (150, 175)), ("test", TEST, (140, 165, 190))):
    d = out / split / "pos"; d.mkdir(parents=True)
    for v in voices:
        for s in speeds:
            for q in (None, rng.choice(QUESTIONS)):
                noise = (0.02 if rng.random() < 0.33 else None) if split == "test" else None
                name = f"{v.replace('+', '_')}_{s}_{'q' if q else 'alone'}{'_noise' if noise else ''}"
                positive(d, name, v, s, q, noise, rng.uniform(0.0, 0.2))

# Negatives: speech without the phrase. Asterisk's prompts (Allison, recorded), split by index;
# registry recordings; and a registry text read by espeak-ng voices (GPL-3's words include
# "first" and "word" often enough to tempt the spotter).
prompts = sorted(ast.rglob("*.wav"))
for split, sel in (("tune", prompts[1::2]), ("test", prompts[0::2])):
    d = out / split / "neg"; d.mkdir(parents=True)
    sh("sox", *sel, "-r", 16000, "-c", 1, "-b", 16, d / "asterisk.wav")
fetched = pathlib.Path("fixtures/audio/fetched")
for f in ("jfk.wav", "speech_orig_16k.wav"):
    if (fetched / f).exists():
        sh("sox", fetched / f, "-r", 16000, "-c", 1, "-b", 16, out / "test" / "neg" / f)
text = pathlib.Path("/usr/share/common-licenses/GPL-3").read_text()
paras = [" ".join(p.split()) for p in text.split("\n\n") if len(p.split()) > 8]
half = len(paras) // 2
for split, ps, voices in (("tune", paras[:half], ("en-us", "en-gb+f2")), ("test", paras[half:], ("en-us+m3", "en-gb-x-rp+f4", "en-029+f3"))):
    for v in voices:
        dst = out / split / "neg" / f"gpl_{v.replace('+', '_')}.wav"
        with tempfile.NamedTemporaryFile("w", suffix=".txt") as tf:
            tf.write("\n\n".join(ps)); tf.flush()
            with tempfile.TemporaryDirectory() as t:
                raw = pathlib.Path(t) / "r.wav"
                sh("espeak-ng", "-v", v, "-s", 165, "-f", tf.name, "-w", raw)
                sh("sox", raw, "-r", 16000, "-c", 1, "-b", 16, dst)
for split in ("tune", "test"):
    neg = sum(dur(p) for p in (out / split / "neg").glob("*.wav"))
    pos = len(list((out / split / "pos").glob("*.wav")))
    print(f"{split}: {pos} positives, {neg / 60:.1f} min of speech without the phrase")
PY
REF="configs/wakeword/hey_firstword.rpw"
"$FW" wakeword build --name "hey firstword" --out "$REF" "$OUT"/build/*.wav
echo "wrote $REF"
