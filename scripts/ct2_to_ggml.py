#!/usr/bin/env python3
"""Convert a Whisper model in CTranslate2 format to whisper.cpp's ggml format.

Usage: python scripts/ct2_to_ggml.py CT2_DIR OUT_FILE

CT2_DIR must hold ``model.bin``, ``config.json``, ``tokenizer.json`` and
``vocabulary.txt`` (the layout produced by ``ct2-transformers-converter`` for
Whisper, e.g. faster-whisper's tiny.en). OUT_FILE is written exactly as given
(the setup script passes a ``.part`` name and renames it afterwards).

Only Python 3.11 and numpy are needed. The output layout follows what
whisper.cpp's ``whisper_model_load`` reads (it checks every tensor's name,
element count, shape and byte size, so it is the reference):

    i32 magic 0x67676d6c ("ggml")
    11 x i32 hparams: n_vocab, n_audio_ctx, n_audio_state, n_audio_head,
        n_audio_layer, n_text_ctx, n_text_state, n_text_head, n_text_layer,
        n_mels, ftype (1 = f16 for the big matrices)
    mel filterbank: i32 n_mels, i32 n_fft_bins, f32[n_mels * n_fft_bins]
    vocab: i32 count, then per token i32 byte length + raw bytes
    tensors until EOF: i32 n_dims, i32 name length, i32 ftype (0 f32, 1 f16),
        i32 dims[n_dims] (innermost first, i.e. numpy shape reversed),
        name bytes, raw little-endian data

All integers and floats are little-endian.
"""

from __future__ import annotations

import json
import os
import struct
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

GGML_MAGIC = 0x67676D6C

# CTranslate2 binary versions this reader understands. Version 5 introduced
# the alias table that follows the variables; 6 is the current one (config
# moved to config.json). Older versions store dtypes as strings, which we do
# not support.
CT2_SUPPORTED_VERSIONS = (5, 6)

# CTranslate2 DataType ids (ctranslate2/types.h) -> numpy dtype. bfloat16 (5)
# has no numpy equivalent; a bf16 model would need widening by hand, and the
# tiny.en model we ship is f16, so we reject it with a clear message instead.
CT2_DTYPES = {
    0: np.dtype("<f4"),
    1: np.dtype("i1"),
    2: np.dtype("<i2"),
    3: np.dtype("<i4"),
    4: np.dtype("<f2"),
}

# ggml tensor type ids as stored in the file header of each tensor.
GGML_F32 = 0
GGML_F16 = 1


class ConversionError(Exception):
    """Bad or unexpected input; the message names the problem."""


# --------------------------------------------------------------------------
# CTranslate2 reader
# --------------------------------------------------------------------------


@dataclass
class Ct2Model:
    """Parsed CTranslate2 model.bin.

    variables: name -> numpy array with the stored dtype and shape (rank-0
        scalars come back as 0-d arrays).
    aliases: alias name -> target variable name (e.g. the decoder output
        projection aliases the token embedding).
    """

    version: int
    spec_name: str
    revision: int
    variables: dict[str, np.ndarray]
    aliases: dict[str, str]


class _Reader:
    """Little-endian cursor over a bytes buffer with bounds checks."""

    def __init__(self, buf: bytes, source: str):
        self.buf = buf
        self.pos = 0
        self.source = source

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.buf):
            raise ConversionError(
                f"{self.source}: truncated file (wanted {n} bytes at offset "
                f"{self.pos}, file is {len(self.buf)} bytes)"
            )
        out = self.buf[self.pos : self.pos + n]
        self.pos += n
        return out

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return struct.unpack("<H", self.take(2))[0]

    def u32(self) -> int:
        return struct.unpack("<I", self.take(4))[0]

    def string(self) -> str:
        """CT2 string: u16 length (including the trailing NUL) + bytes."""
        raw = self.take(self.u16())
        if raw.endswith(b"\0"):
            raw = raw[:-1]
        return raw.decode("utf-8")

    def at_end(self) -> bool:
        return self.pos >= len(self.buf)


def read_ct2_model(path: Path) -> Ct2Model:
    """Parse a CTranslate2 ``model.bin``.

    Returns every variable as a numpy array (dtype as stored: f32, i8, i16,
    i32 or f16; shape as stored, rank 0 for scalars) plus the alias table.
    Raises ConversionError on a bad version, unknown dtype, size mismatch or
    truncation.
    """
    try:
        buf = path.read_bytes()
    except OSError as e:
        raise ConversionError(f"cannot read {path}: {e.strerror}") from e
    r = _Reader(buf, str(path))

    version = r.u32()
    if version not in CT2_SUPPORTED_VERSIONS:
        raise ConversionError(
            f"{path}: unsupported CTranslate2 binary version {version} "
            f"(supported: {', '.join(map(str, CT2_SUPPORTED_VERSIONS))}); "
            "is this really a CTranslate2 model.bin?"
        )
    spec_name = r.string()
    revision = r.u32()
    count = r.u32()

    variables: dict[str, np.ndarray] = {}
    for _ in range(count):
        name = r.string()
        rank = r.u8()
        shape = tuple(r.u32() for _ in range(rank))
        type_id = r.u8()
        nbytes = r.u32()
        if type_id not in CT2_DTYPES:
            raise ConversionError(
                f"{path}: variable {name!r} has unsupported dtype id {type_id} "
                "(supported: 0 f32, 1 i8, 2 i16, 3 i32, 4 f16)"
            )
        dtype = CT2_DTYPES[type_id]
        expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if nbytes != expected:
            raise ConversionError(
                f"{path}: variable {name!r} declares {nbytes} bytes but shape "
                f"{shape} of {dtype} needs {expected}"
            )
        # frombuffer gives a read-only view; copy so later reshapes/splits are
        # free to do what they like and the big file buffer can be released.
        data = np.frombuffer(r.take(nbytes), dtype=dtype).reshape(shape).copy()
        variables[name] = data

    # Binary versions >= 5 append an alias table. Treat a missing table (file
    # ends right after the variables) as empty rather than failing: aliases
    # only matter for tied weights we can find under their real name anyway.
    aliases: dict[str, str] = {}
    if not r.at_end():
        for _ in range(r.u32()):
            alias = r.string()
            aliases[alias] = r.string()
    if not r.at_end():
        raise ConversionError(
            f"{path}: {len(buf) - r.pos} unexpected trailing bytes after the "
            "alias table"
        )
    return Ct2Model(version, spec_name, revision, variables, aliases)


# --------------------------------------------------------------------------
# Tensor mapping CT2 -> whisper.cpp
# --------------------------------------------------------------------------


def split_fused(weight: np.ndarray, parts: int, name: str) -> list[np.ndarray]:
    """Split a fused projection along its output rows.

    weight: [parts * n, ...] (a [out, in] matrix or an [out] bias).
    Returns ``parts`` arrays of shape [n, ...], in order (Q|K|V or K|V): CT2
    fuses the separate PyTorch projections by concatenating them on axis 0.
    """
    if weight.ndim < 1 or weight.shape[0] % parts != 0:
        raise ConversionError(
            f"tensor {name!r} has shape {weight.shape}; cannot split its first "
            f"axis into {parts} equal parts"
        )
    return list(np.split(weight, parts, axis=0))


@dataclass
class Hparams:
    """Whisper dimensions, derived from the CT2 tensors themselves."""

    n_vocab: int
    n_audio_ctx: int
    n_audio_state: int
    n_audio_head: int
    n_audio_layer: int
    n_text_ctx: int
    n_text_state: int
    n_text_head: int
    n_text_layer: int
    n_mels: int


def _require(vars_: dict[str, np.ndarray], name: str) -> np.ndarray:
    if name not in vars_:
        raise ConversionError(f"model.bin: missing tensor {name!r}")
    return vars_[name]


def _count_layers(vars_: dict[str, np.ndarray], prefix: str) -> int:
    n = 0
    while any(k.startswith(f"{prefix}/layer_{n}/") for k in vars_):
        n += 1
    return n


def derive_hparams(vars_: dict[str, np.ndarray]) -> Hparams:
    """Read model dimensions off tensor shapes (CT2 config.json lacks them)."""
    emb = _require(vars_, "decoder/embeddings/weight")
    enc_pe = _require(vars_, "encoder/position_encodings/encodings")
    dec_pe = _require(vars_, "decoder/position_encodings/encodings")
    conv1 = _require(vars_, "encoder/conv1/weight")
    for name, arr, rank in (
        ("decoder/embeddings/weight", emb, 2),
        ("encoder/position_encodings/encodings", enc_pe, 2),
        ("decoder/position_encodings/encodings", dec_pe, 2),
        ("encoder/conv1/weight", conv1, 3),
    ):
        if arr.ndim != rank:
            raise ConversionError(
                f"model.bin: tensor {name!r} has shape {arr.shape}, expected rank {rank}"
            )
    return Hparams(
        n_vocab=emb.shape[0],
        n_audio_ctx=enc_pe.shape[0],
        n_audio_state=enc_pe.shape[1],
        n_audio_head=int(_require(vars_, "encoder/num_heads")),
        n_audio_layer=_count_layers(vars_, "encoder"),
        n_text_ctx=dec_pe.shape[0],
        n_text_state=emb.shape[1],
        n_text_head=int(_require(vars_, "decoder/num_heads")),
        n_text_layer=_count_layers(vars_, "decoder"),
        n_mels=conv1.shape[1],
    )


def expected_shapes(hp: Hparams) -> dict[str, tuple[int, ...]]:
    """Every tensor whisper.cpp's loader creates, as numpy shapes.

    Mirrors whisper_model_load: ggml's ne[] is the reverse of these, and the
    loader refuses unknown names, missing names and any shape difference.
    """
    a, t = hp.n_audio_state, hp.n_text_state
    shapes: dict[str, tuple[int, ...]] = {
        "encoder.positional_embedding": (hp.n_audio_ctx, a),
        "encoder.conv1.weight": (a, hp.n_mels, 3),
        "encoder.conv1.bias": (a, 1),
        "encoder.conv2.weight": (a, a, 3),
        "encoder.conv2.bias": (a, 1),
        "encoder.ln_post.weight": (a,),
        "encoder.ln_post.bias": (a,),
        "decoder.positional_embedding": (hp.n_text_ctx, t),
        "decoder.token_embedding.weight": (hp.n_vocab, t),
        "decoder.ln.weight": (t,),
        "decoder.ln.bias": (t,),
    }

    def block(prefix: str, n: int, cross: bool) -> None:
        shapes[f"{prefix}.mlp_ln.weight"] = (n,)
        shapes[f"{prefix}.mlp_ln.bias"] = (n,)
        shapes[f"{prefix}.mlp.0.weight"] = (4 * n, n)
        shapes[f"{prefix}.mlp.0.bias"] = (4 * n,)
        shapes[f"{prefix}.mlp.2.weight"] = (n, 4 * n)
        shapes[f"{prefix}.mlp.2.bias"] = (n,)
        attns = ["attn", "cross_attn"] if cross else ["attn"]
        for att in attns:
            shapes[f"{prefix}.{att}_ln.weight"] = (n,)
            shapes[f"{prefix}.{att}_ln.bias"] = (n,)
            shapes[f"{prefix}.{att}.query.weight"] = (n, n)
            shapes[f"{prefix}.{att}.query.bias"] = (n,)
            shapes[f"{prefix}.{att}.key.weight"] = (n, n)  # Whisper: no key bias
            shapes[f"{prefix}.{att}.value.weight"] = (n, n)
            shapes[f"{prefix}.{att}.value.bias"] = (n,)
            shapes[f"{prefix}.{att}.out.weight"] = (n, n)
            shapes[f"{prefix}.{att}.out.bias"] = (n,)

    for i in range(hp.n_audio_layer):
        block(f"encoder.blocks.{i}", a, cross=False)
    for i in range(hp.n_text_layer):
        block(f"decoder.blocks.{i}", t, cross=True)
    return shapes


def _ln(out: dict, vars_: dict, src: str, dst: str) -> None:
    # CT2 names layer-norm scale/shift gamma/beta; PyTorch weight/bias.
    out[f"{dst}.weight"] = _require(vars_, f"{src}/gamma")
    out[f"{dst}.bias"] = _require(vars_, f"{src}/beta")


def _linear(out: dict, vars_: dict, src: str, dst: str) -> None:
    out[f"{dst}.weight"] = _require(vars_, f"{src}/weight")
    out[f"{dst}.bias"] = _require(vars_, f"{src}/bias")


def _split_linear(
    out: dict, vars_: dict, src: str, dsts: list[str], key_index: int
) -> None:
    """Split fused CT2 projection ``src`` into ``dsts``.

    The key projection (position ``key_index``) gets no bias: Whisper's key
    Linear has bias=False and CT2 stores zeros in its slot of the fused bias.
    """
    ws = split_fused(_require(vars_, f"{src}/weight"), len(dsts), f"{src}/weight")
    bs = split_fused(_require(vars_, f"{src}/bias"), len(dsts), f"{src}/bias")
    for i, (dst, w, b) in enumerate(zip(dsts, ws, bs)):
        out[f"{dst}.weight"] = w
        if i == key_index:
            # Dropping a non-zero bias would silently change the model.
            if np.any(b.astype(np.float32) != 0):
                raise ConversionError(
                    f"model.bin: {src}/bias has a non-zero key bias; "
                    "whisper.cpp has no slot for it"
                )
        else:
            out[f"{dst}.bias"] = b


def map_tensors(vars_: dict[str, np.ndarray], hp: Hparams) -> dict[str, np.ndarray]:
    """Rename/split CT2 variables into whisper.cpp tensors (numpy shapes).

    Values keep their CT2 dtype here; conversion to f16/f32 happens on write.
    """
    out: dict[str, np.ndarray] = {}

    for k in (1, 2):
        out[f"encoder.conv{k}.weight"] = _require(vars_, f"encoder/conv{k}/weight")
        # whisper.cpp declares conv biases as 2-D [1, n_state] (ggml ne) so
        # they broadcast over time in ggml_add; numpy shape [n_state, 1].
        bias = _require(vars_, f"encoder/conv{k}/bias")
        out[f"encoder.conv{k}.bias"] = bias.reshape(-1, 1)
    out["encoder.positional_embedding"] = _require(
        vars_, "encoder/position_encodings/encodings"
    )
    _ln(out, vars_, "encoder/layer_norm", "encoder.ln_post")

    for i in range(hp.n_audio_layer):
        src, dst = f"encoder/layer_{i}", f"encoder.blocks.{i}"
        _ln(out, vars_, f"{src}/self_attention/layer_norm", f"{dst}.attn_ln")
        _split_linear(
            out,
            vars_,
            f"{src}/self_attention/linear_0",
            [f"{dst}.attn.query", f"{dst}.attn.key", f"{dst}.attn.value"],
            key_index=1,
        )
        _linear(out, vars_, f"{src}/self_attention/linear_1", f"{dst}.attn.out")
        _ln(out, vars_, f"{src}/ffn/layer_norm", f"{dst}.mlp_ln")
        _linear(out, vars_, f"{src}/ffn/linear_0", f"{dst}.mlp.0")
        _linear(out, vars_, f"{src}/ffn/linear_1", f"{dst}.mlp.2")

    out["decoder.token_embedding.weight"] = _require(vars_, "decoder/embeddings/weight")
    out["decoder.positional_embedding"] = _require(
        vars_, "decoder/position_encodings/encodings"
    )
    _ln(out, vars_, "decoder/layer_norm", "decoder.ln")

    for i in range(hp.n_text_layer):
        src, dst = f"decoder/layer_{i}", f"decoder.blocks.{i}"
        _ln(out, vars_, f"{src}/self_attention/layer_norm", f"{dst}.attn_ln")
        _split_linear(
            out,
            vars_,
            f"{src}/self_attention/linear_0",
            [f"{dst}.attn.query", f"{dst}.attn.key", f"{dst}.attn.value"],
            key_index=1,
        )
        _linear(out, vars_, f"{src}/self_attention/linear_1", f"{dst}.attn.out")
        _ln(out, vars_, f"{src}/attention/layer_norm", f"{dst}.cross_attn_ln")
        _linear(out, vars_, f"{src}/attention/linear_0", f"{dst}.cross_attn.query")
        # Cross-attention K|V are fused because both project the encoder output.
        _split_linear(
            out,
            vars_,
            f"{src}/attention/linear_1",
            [f"{dst}.cross_attn.key", f"{dst}.cross_attn.value"],
            key_index=0,
        )
        _linear(out, vars_, f"{src}/attention/linear_2", f"{dst}.cross_attn.out")
        _ln(out, vars_, f"{src}/ffn/layer_norm", f"{dst}.mlp_ln")
        _linear(out, vars_, f"{src}/ffn/linear_0", f"{dst}.mlp.0")
        _linear(out, vars_, f"{src}/ffn/linear_1", f"{dst}.mlp.2")

    expected = expected_shapes(hp)
    for name, shape in expected.items():
        if name not in out:
            raise ConversionError(f"missing tensor {name!r} after mapping")
        if tuple(out[name].shape) != shape:
            raise ConversionError(
                f"tensor {name!r} has shape {tuple(out[name].shape)}, "
                f"whisper.cpp expects {shape}"
            )
    for name, arr in out.items():
        # int8/int16 CT2 weights are quantized and need their *_scale tensors
        # applied; casting them straight to f16 would load fine and produce
        # garbage, so refuse instead.
        if arr.dtype.kind != "f":
            raise ConversionError(
                f"tensor {name!r} is stored as {arr.dtype} (a quantized CT2 "
                "model); convert the model with float16 or float32 weights"
            )
    extra = set(out) - set(expected)
    if extra:  # would make the loader fail with "unknown tensor"
        raise ConversionError(f"unexpected tensors after mapping: {sorted(extra)}")
    return out


def ggml_type_for(name: str, arr: np.ndarray) -> int:
    """f32 for 1-D tensors, conv biases and positional embeddings, else f16.

    whisper.cpp allocates exactly these as GGML_TYPE_F32 and checks the byte
    size on load, so this must match its declarations, not our preference.
    """
    if arr.ndim < 2 or name in (
        "encoder.conv1.bias",
        "encoder.conv2.bias",
        "encoder.positional_embedding",
        "decoder.positional_embedding",
    ):
        return GGML_F32
    return GGML_F16


# --------------------------------------------------------------------------
# Mel filterbank (librosa.filters.mel, htk=False, norm="slaney")
# --------------------------------------------------------------------------

# Slaney mel scale: linear below 1 kHz (3 mels per 200 Hz), logarithmic above.
_F_SP = 200.0 / 3
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = np.log(6.4) / 27.0


def hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney (Auditory Toolbox) Hz -> mel, float64, elementwise."""
    hz = np.asarray(hz, dtype=np.float64)
    mel = hz / _F_SP
    log_region = hz >= _MIN_LOG_HZ
    # np.maximum keeps log() away from zero in the branch np.where discards.
    mel = np.where(
        log_region,
        _MIN_LOG_MEL + np.log(np.maximum(hz, _MIN_LOG_HZ) / _MIN_LOG_HZ) / _LOGSTEP,
        mel,
    )
    return mel


def mel_to_hz(mel: np.ndarray) -> np.ndarray:
    """Inverse of hz_to_mel (float64, elementwise)."""
    mel = np.asarray(mel, dtype=np.float64)
    return np.where(
        mel >= _MIN_LOG_MEL,
        _MIN_LOG_HZ * np.exp(_LOGSTEP * (mel - _MIN_LOG_MEL)),
        mel * _F_SP,
    )


def mel_filterbank(sr: int = 16000, n_fft: int = 400, n_mels: int = 80) -> np.ndarray:
    """Slaney-normalized triangular mel filters, float32 [n_mels, n_fft//2+1].

    Same construction as librosa.filters.mel(sr, n_fft, n_mels) with fmin=0,
    fmax=sr/2, htk=False, norm="slaney" -- the filters OpenAI shipped in
    mel_filters.npz and whisper.cpp reads from the model file.
    """
    fft_freqs = np.linspace(0.0, sr / 2, n_fft // 2 + 1)
    # n_mels + 2 edges: filter i rises from edge i, peaks at i+1, falls to i+2.
    edges = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(sr / 2), n_mels + 2))
    widths = np.diff(edges)
    ramps = edges[:, None] - fft_freqs[None, :]
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    # Slaney norm: scale each triangle to unit area in Hz so wide high
    # filters do not dominate the energy of narrow low ones.
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    # Adding +0.0 turns the -0.0 that the ramp at 0 Hz produces into +0.0,
    # so the bytes match the reference table exactly.
    return (weights + 0.0).astype(np.float32)


# --------------------------------------------------------------------------
# Vocabulary
# --------------------------------------------------------------------------


def gpt2_bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable unicode char table (256 entries).

    Printable Latin-1 bytes map to themselves; the rest (control chars,
    space, ...) are shifted to U+0100 and up so BPE tokens never contain
    whitespace. Tokens in tokenizer.json are spelled with these chars.
    """
    keep = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    table = {b: chr(b) for b in keep}
    shifted = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + shifted)
            shifted += 1
    return table


_BYTE_DECODER = {c: b for b, c in gpt2_bytes_to_unicode().items()}


def decode_token(token: str) -> bytes:
    """Map a tokenizer.json token string back to its raw bytes."""
    try:
        return bytes(_BYTE_DECODER[c] for c in token)
    except KeyError as e:
        raise ConversionError(
            f"tokenizer.json: token {token!r} has character {e.args[0]!r} "
            "outside GPT-2's byte alphabet"
        ) from None


def load_base_vocab(path: Path) -> list[bytes]:
    """Base BPE tokens from tokenizer.json, as bytes, ordered by id.

    Special tokens (<|endoftext|>, <|startoftranscript|>, languages,
    timestamps...) are left out, as whisper.cpp's own converter does: the
    loader synthesises names for ids >= the count written, and ids from
    <|endoftext|> (50256 for .en) up are all special.
    """
    try:
        tok = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ConversionError(f"cannot read {path}: {e}") from e
    vocab = tok.get("model", {}).get("vocab")
    if not isinstance(vocab, dict) or not vocab:
        raise ConversionError(f"{path}: no model.vocab mapping (not a BPE tokenizer.json?)")
    # Anything registered as an added token is Whisper-special, whatever its
    # "special" flag says; <|endoftext|> is the one that also sits in the BPE
    # vocab and must be dropped.
    added = {t["content"] for t in tok.get("added_tokens", [])}
    base = {tok_str: idx for tok_str, idx in vocab.items() if tok_str not in added}
    ids = sorted(base.values())
    if ids != list(range(len(ids))):
        raise ConversionError(
            f"{path}: base vocabulary ids are not contiguous from 0 "
            f"({len(ids)} tokens, max id {ids[-1]})"
        )
    by_id = sorted(base.items(), key=lambda kv: kv[1])
    return [decode_token(s) for s, _ in by_id]


# --------------------------------------------------------------------------
# Writer
# --------------------------------------------------------------------------


def write_ggml(
    out_path: Path,
    hp: Hparams,
    filters: np.ndarray,
    vocab: list[bytes],
    tensors: dict[str, np.ndarray],
) -> None:
    """Write the ggml file (layout in the module docstring) to out_path.

    A partially written file is removed on failure so nothing downstream
    mistakes it for a model.
    """
    try:
        _write_ggml(out_path, hp, filters, vocab, tensors)
    except BaseException as e:
        try:
            out_path.unlink()
        except OSError:
            pass
        if isinstance(e, OSError):
            raise ConversionError(f"cannot write {out_path}: {e.strerror or e}") from e
        raise


def _write_ggml(
    out_path: Path,
    hp: Hparams,
    filters: np.ndarray,
    vocab: list[bytes],
    tensors: dict[str, np.ndarray],
) -> None:
    """Unguarded writer behind write_ggml.

    filters: float32 [n_mels, n_fft_bins]; vocab: raw token bytes in id
    order; tensors: name -> array in PyTorch (numpy) shape, any float dtype,
    written in insertion order as f32 or f16 per ggml_type_for.
    """
    with open(out_path, "wb") as f:
        f.write(struct.pack("<i", GGML_MAGIC))
        f.write(
            struct.pack(
                "<11i",
                hp.n_vocab,
                hp.n_audio_ctx,
                hp.n_audio_state,
                hp.n_audio_head,
                hp.n_audio_layer,
                hp.n_text_ctx,
                hp.n_text_state,
                hp.n_text_head,
                hp.n_text_layer,
                hp.n_mels,
                1,  # ftype: big matrices stored as f16
            )
        )
        f.write(struct.pack("<ii", *filters.shape))
        f.write(np.ascontiguousarray(filters, dtype="<f4").tobytes())

        f.write(struct.pack("<i", len(vocab)))
        for token in vocab:
            f.write(struct.pack("<i", len(token)))
            f.write(token)

        for name, arr in tensors.items():
            ttype = ggml_type_for(name, arr)
            data = arr.astype("<f4" if ttype == GGML_F32 else "<f2", copy=False)
            encoded = name.encode("utf-8")
            f.write(struct.pack("<iii", data.ndim, len(encoded), ttype))
            f.write(struct.pack(f"<{data.ndim}i", *reversed(data.shape)))
            f.write(encoded)
            f.write(np.ascontiguousarray(data).tobytes())


def convert(ct2_dir: Path, out_path: Path) -> Hparams:
    """Full conversion; raises ConversionError on any input problem."""
    if not ct2_dir.is_dir():
        raise ConversionError(f"{ct2_dir}: not a directory")
    for fname in ("model.bin", "config.json", "tokenizer.json", "vocabulary.txt"):
        if not (ct2_dir / fname).is_file():
            raise ConversionError(f"{ct2_dir}: missing required file {fname}")

    model = read_ct2_model(ct2_dir / "model.bin")
    if model.spec_name != "WhisperSpec":
        raise ConversionError(
            f"model.bin: spec is {model.spec_name!r}, expected 'WhisperSpec'"
        )
    hp = derive_hparams(model.variables)
    tensors = map_tensors(model.variables, hp)

    vocab = load_base_vocab(ct2_dir / "tokenizer.json")
    # vocabulary.txt is CT2's id-ordered list of all n_vocab tokens; use it to
    # catch a tokenizer.json that does not belong to this model.
    n_lines = len((ct2_dir / "vocabulary.txt").read_text(encoding="utf-8").splitlines())
    if n_lines != hp.n_vocab:
        raise ConversionError(
            f"vocabulary.txt has {n_lines} tokens but the model's embedding has "
            f"{hp.n_vocab} rows"
        )
    if len(vocab) > hp.n_vocab:
        raise ConversionError(
            f"tokenizer.json has {len(vocab)} base tokens, more than n_vocab {hp.n_vocab}"
        )

    filters = mel_filterbank(n_mels=hp.n_mels)
    write_ggml(out_path, hp, filters, vocab, tensors)
    return hp


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(f"usage: {argv[0]} CT2_DIR OUT_FILE", file=sys.stderr)
        return 2
    ct2_dir, out_path = Path(argv[1]), Path(argv[2])
    t0 = time.monotonic()
    try:
        hp = convert(ct2_dir, out_path)
    except ConversionError as e:
        print(f"ct2_to_ggml: error: {e}", file=sys.stderr)
        return 1
    size = os.path.getsize(out_path)
    print(
        f"ct2_to_ggml: wrote {out_path} ({size / 1e6:.1f} MB; n_vocab={hp.n_vocab}, "
        f"{hp.n_audio_layer}+{hp.n_text_layer} layers, state {hp.n_audio_state}) "
        f"in {time.monotonic() - t0:.1f}s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
