#!/usr/bin/env python3
"""The μLM in PyTorch, computing exactly what the Rust runtime (`lm` crate) computes.

Architecture (shared/paper.md §"μLM architecture", lm/src/model.rs): pre-norm decoder blocks,
RMSNorm (eps from mulm.json, 1e-5), rotary embeddings θ = 1e6 in the Hugging Face half-split
("neox_half") layout, grouped-query attention, SwiGLU MLP (gate/up/down, SiLU), no biases,
input embedding tied to the LM head (there is no `lm_head.weight`).

Parameter names are Hugging Face Llama names (`model.embed_tokens.weight`,
`model.layers.N.self_attn.q_proj.weight`, …, `model.norm.weight`), so `model.state_dict()`
written with safetensors loads in Rust unchanged (lm/SCHEMA.md "Checkpoint tensors").

mulm.json is the single source of truth for the shape, special tokens and chat template; the
helpers below read and write it with the schema of the Rust `lm::mulm_file::MulmFile`.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

PAPER_VOCAB = 12_288
PAPER_ROPE_THETA = 1.0e6
PAPER_RMS_EPS = 1.0e-5
PAPER_MAX_SEQ_LEN = 1024
REFERENCE_PARAMS = 28.85e6  # μLM-512-8: the FLOPs-matching reference (paper §training recipe)


def swiglu_intermediate(hidden: int) -> int:
    """8/3·d rounded up to a multiple of 64 (lm/src/config.rs `swiglu_intermediate`)."""
    raw = -(-8 * hidden // 3)
    return -(-raw // 64) * 64


@dataclass(frozen=True)
class ModelConfig:
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    intermediate: int
    vocab: int
    rope_theta: float = PAPER_ROPE_THETA
    rms_eps: float = PAPER_RMS_EPS
    max_seq_len: int = PAPER_MAX_SEQ_LEN

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    def validate(self) -> None:
        assert self.hidden % self.heads == 0, "hidden not divisible by heads"
        assert self.heads % self.kv_heads == 0, "heads not a multiple of kv_heads"
        assert self.head_dim % 2 == 0, "head_dim must be even for RoPE"

    def parameter_count(self) -> int:
        d, hd = self.hidden, self.head_dim
        attn = 2 * d * self.heads * hd + 2 * d * self.kv_heads * hd
        mlp = 3 * d * self.intermediate
        return self.vocab * d + self.layers * (attn + mlp + 2 * d) + d


def _preset(hidden: int, layers: int) -> ModelConfig:
    return ModelConfig(hidden, layers, 8, 2, swiglu_intermediate(hidden), PAPER_VOCAB)


# Names and shapes exactly as lm/src/config.rs `Preset::config`.
PRESETS: dict[str, ModelConfig] = {
    # Test-only `Tiny64x2`: d 64, 2 layers, 4 heads / 2 KV heads, f 192, V 512, context 256.
    "64-2": ModelConfig(64, 2, 4, 2, swiglu_intermediate(64), 512, max_seq_len=256),
    "256-8": _preset(256, 8),
    "256-16": _preset(256, 16),
    "384-8": _preset(384, 8),
    "384-16": _preset(384, 16),
    "512-8": _preset(512, 8),
}
PAPER_PARAMS = {"256-8": 8.79e6, "256-16": 14.43e6, "384-8": 17.11e6, "384-16": 29.50e6, "512-8": 28.85e6}


def preset_config(name: str) -> ModelConfig:
    norm = name.strip().lower().replace("x", "-")
    norm = norm[len("mulm-"):] if norm.startswith("mulm-") else norm
    if norm not in PRESETS:
        raise KeyError(f"unknown preset {name!r} (known: {', '.join(PRESETS)})")
    return PRESETS[norm]


# ---------------------------------------------------------------------------------------------
# mulm.json (lm/SCHEMA.md; Rust `MulmFile`)
# ---------------------------------------------------------------------------------------------

# Default special tokens of the Rust side (name, content); ids come from the tokenizer.
# Shared with the Rust runtime (lm/src/mulm_file.rs): one file, so both write the same mulm.json.
_DEFAULTS = json.loads((Path(__file__).resolve().parents[1] / "lm" / "mulm_defaults.json").read_text())
DEFAULT_SPECIALS = [tuple(x) for x in _DEFAULTS["special_tokens"]]
DEFAULT_OPENER = dict(_DEFAULTS["opener"])


def make_mulm(preset: str, cfg: ModelConfig, special_ids: dict[str, tuple[str, int]]) -> dict:
    """A mulm.json document. `special_ids`: name → (content, id), ids as in tokenizer.json.

    Required: bos, end, user, assistant. The `system` role is only templated when the tokenizer
    has a `<|system|>` token (every name in the template must resolve, or Rust rejects the file).
    """
    for need in ("bos", "end", "user", "assistant"):
        if need not in special_ids:
            raise ValueError(f"tokenizer lacks the special token for {need!r}")
    roles = {r: {"prefix": [r], "suffix": ["end"]} for r in ("system", "user", "assistant") if r in special_ids}
    m = {
        "format": "mulm",
        "format_version": 1,
        "preset": preset,
        **{k: v for k, v in asdict(cfg).items()},
        "rope_style": "neox_half",
        "tie_embeddings": True,
        "special_tokens": {n: {"content": c, "id": int(i)} for n, (c, i) in sorted(special_ids.items())},
        "chat_template": {
            "begin": ["bos"],
            "roles": dict(sorted(roles.items())),
            "generation_prefix": ["assistant"],
            "stop": ["end"],
            "trim_content": True,
        },
        "opener": dict(DEFAULT_OPENER),
    }
    m["rope_theta"] = float(m["rope_theta"])
    m["rms_eps"] = float(m["rms_eps"])
    return m


def special_ids_from_tokenizer(tok) -> dict[str, tuple[str, int]]:
    """name → (content, id) for each default special token present in a `tokenizers.Tokenizer`."""
    out = {}
    for name, content in DEFAULT_SPECIALS:
        i = tok.token_to_id(content)
        if i is not None:
            out[name] = (content, i)
    return out


def mulm_for_tokenizer(preset: str, tok, cfg: ModelConfig | None = None) -> dict:
    cfg = cfg or preset_config(preset)
    size = tok.get_vocab_size(with_added_tokens=True)
    if size > cfg.vocab:
        raise ValueError(f"tokenizer has {size} tokens > model vocab {cfg.vocab}")
    return make_mulm(preset, cfg, special_ids_from_tokenizer(tok))


def config_from_mulm(m: dict) -> ModelConfig:
    if m.get("format") != "mulm" or m.get("format_version") != 1:
        raise ValueError("not a mulm.json format_version 1 document")
    if m.get("rope_style") != "neox_half" or not m.get("tie_embeddings"):
        raise ValueError("only rope_style neox_half with tied embeddings is supported")
    cfg = ModelConfig(**{k: m[k] for k in ModelConfig.__dataclass_fields__})
    cfg.validate()
    if m.get("preset") in PRESETS and PRESETS[m["preset"]] != cfg:
        raise ValueError(f"preset {m['preset']!r} does not match the listed hyper-parameters")
    return cfg


def load_mulm(path) -> dict:
    return json.loads(Path(path).read_text())


def save_mulm(m: dict, path) -> None:
    Path(path).write_text(json.dumps(m, indent=2, ensure_ascii=False) + "\n")


class ChatFormat:
    """Chat serialization from mulm.json (same algorithm as Rust `ChatTokenizer::encode_chat`)."""

    def __init__(self, mulm: dict, tok):
        self.mulm, self.tok = mulm, tok
        sp = mulm["special_tokens"]
        for t in sp.values():  # same check as the Rust loader
            if tok.token_to_id(t["content"]) != t["id"]:
                raise ValueError(f"special token {t['content']!r}: id {t['id']} in mulm.json, "
                                 f"{tok.token_to_id(t['content'])} in tokenizer.json")
        ids = lambda names: [sp[n]["id"] for n in names]  # noqa: E731
        t = mulm["chat_template"]
        self.begin = ids(t["begin"])
        self.gen = ids(t["generation_prefix"])
        self.stop = ids(t["stop"])
        self.roles = {r: (ids(f["prefix"]), ids(f["suffix"])) for r, f in t["roles"].items()}
        self.trim = t.get("trim_content", True)
        self.pad_id = sp["pad"]["id"] if "pad" in sp else sp["end"]["id"]

    def encode_turns(self, messages) -> list[tuple[str, list[int], list[int]]]:
        """[(role, ids, loss_mask_if_sft)] per turn: prefix + content + suffix; the SFT mask is 1
        on assistant content and its suffix (<|end|>: the model must learn to stop)."""
        texts = [m["content"].strip() if self.trim else m["content"] for m in messages]
        encs = self.tok.encode_batch(texts, add_special_tokens=False) if texts else []
        out = []
        for m, e in zip(messages, encs):
            pre, suf = self.roles[m["role"]]
            body = list(e.ids)
            a = 1 if m["role"] == "assistant" else 0
            out.append((m["role"], pre + body + suf, [0] * len(pre) + [a] * (len(body) + len(suf))))
        return out

    def encode_prompt(self, messages) -> list[int]:
        """Inference prompt: begin + turns + generation prefix (no turn dropping)."""
        ids = list(self.begin)
        for _, t, _ in self.encode_turns(messages):
            ids += t
        return ids + self.gen


# ---------------------------------------------------------------------------------------------
# The network
# ---------------------------------------------------------------------------------------------


class RMSNorm(nn.Module):
    def __init__(self, d: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        xf = x.float()
        y = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return (y * self.weight.float()).to(x.dtype)


def rope_tables(cfg: ModelConfig, n: int | None = None):
    """cos/sin [n, hd/2], computed in f64 then rounded to f32 exactly like the Rust runtime."""
    n = n or cfg.max_seq_len
    hd = cfg.head_dim
    i = torch.arange(hd // 2, dtype=torch.float64)
    inv = cfg.rope_theta ** (-(2.0 * i) / hd)
    a = torch.arange(n, dtype=torch.float64)[:, None] * inv[None, :]
    return a.cos().float(), a.sin().float()


def apply_rope(x, cos, sin):
    """x [b, h, s, hd]; half-split: dim j rotates with j + hd/2 (HF `rotate_half`)."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    c, s = cos.to(x.dtype), sin.to(x.dtype)
    return torch.cat([x1 * c - x2 * s, x2 * c + x1 * s], dim=-1)


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        d, hd = cfg.hidden, cfg.head_dim
        self.h, self.g, self.hd = cfg.heads, cfg.kv_heads, hd
        self.q_proj = nn.Linear(d, cfg.heads * hd, bias=False)
        self.k_proj = nn.Linear(d, cfg.kv_heads * hd, bias=False)
        self.v_proj = nn.Linear(d, cfg.kv_heads * hd, bias=False)
        self.o_proj = nn.Linear(cfg.heads * hd, d, bias=False)

    def forward(self, x, cos, sin, attn_mask=None):
        """attn_mask: None = causal over the whole row; else a bool [b, 1, s, s] (True = may
        attend), e.g. causal within each packed example (`packed_attention_mask`)."""
        b, s, _ = x.shape
        q = self.q_proj(x).view(b, s, self.h, self.hd).transpose(1, 2)
        k = self.k_proj(x).view(b, s, self.g, self.hd).transpose(1, 2)
        v = self.v_proj(x).view(b, s, self.g, self.hd).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        # query head i reads KV head i // (h/g) (HF repeat_kv, Rust causal_gqa)
        rep = self.h // self.g
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        if attn_mask is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        return self.o_proj(y.transpose(1, 2).reshape(b, s, self.h * self.hd))


class MLP(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.gate_proj = nn.Linear(cfg.hidden, cfg.intermediate, bias=False)
        self.up_proj = nn.Linear(cfg.hidden, cfg.intermediate, bias=False)
        self.down_proj = nn.Linear(cfg.intermediate, cfg.hidden, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.hidden, cfg.rms_eps)
        self.self_attn = Attention(cfg)
        self.post_attention_layernorm = RMSNorm(cfg.hidden, cfg.rms_eps)
        self.mlp = MLP(cfg)

    def forward(self, x, cos, sin, attn_mask=None):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, attn_mask)
        return x + self.mlp(self.post_attention_layernorm(x))


class Backbone(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg.vocab, cfg.hidden)
        self.layers = nn.ModuleList(Block(cfg) for _ in range(cfg.layers))
        self.norm = RMSNorm(cfg.hidden, cfg.rms_eps)


class MuLM(nn.Module):
    """state_dict keys == Hugging Face Llama names (no lm_head: tied to model.embed_tokens)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.model = Backbone(cfg)
        cos, sin = rope_tables(cfg)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)

    def init_weights(self, seed: int | None = None, std: float = 0.02) -> "MuLM":
        """GPT-2/Llama-style init: N(0, 0.02) for matrices and embedding, output projections
        (o_proj, down_proj) scaled by 1/sqrt(2·layers); norm gains 1."""
        g = torch.Generator().manual_seed(seed) if seed is not None else None
        out_std = std / math.sqrt(2 * self.cfg.layers)
        with torch.no_grad():
            for name, p in self.named_parameters():
                if p.dim() == 1:
                    p.fill_(1.0)
                else:
                    s = out_std if name.endswith(("o_proj.weight", "down_proj.weight")) else std
                    p.copy_(torch.randn(p.shape, generator=g) * s)
        return self

    def hidden_states(self, ids, pos=None, seg=None):
        """pos/seg [b, s] (optional, packed rows): RoPE position of each token and the id of the
        example it belongs to; attention then stays causal *within* each example."""
        s = ids.shape[1]
        if s > self.cfg.max_seq_len:
            raise ValueError(f"sequence of {s} tokens > max_seq_len {self.cfg.max_seq_len}")
        x = self.model.embed_tokens(ids)
        mask = None
        if pos is None:
            cos, sin = self.rope_cos[:s], self.rope_sin[:s]
        else:
            cos, sin = self.rope_cos[pos].unsqueeze(1), self.rope_sin[pos].unsqueeze(1)  # [b, 1, s, hd/2]
        if seg is not None:
            mask = packed_attention_mask(seg)
        for blk in self.model.layers:
            x = blk(x, cos, sin, mask)
        return self.model.norm(x)

    def forward(self, ids, pos=None, seg=None):
        """ids [b, s] → logits [b, s, V] (tied head)."""
        x = self.hidden_states(ids, pos, seg)
        return F.linear(x, self.model.embed_tokens.weight.to(x.dtype))

    def loss(self, ids, targets, mask, denom=None, pos=None, seg=None):
        """Cross-entropy summed over positions with mask > 0 (targets already shifted), divided by
        `denom` (default: the mask's own count → the mean; gradient accumulation passes the whole
        batch's count). The tied head is applied only at the masked positions (same value and
        gradient; the opener stage learns from ~1/4 of the positions, so this saves the head's
        work on the rest)."""
        x = self.hidden_states(ids, pos, seg)
        m = mask.reshape(-1) > 0
        h = x.reshape(-1, x.shape[-1])[m]
        logits = F.linear(h, self.model.embed_tokens.weight.to(h.dtype))
        ce = F.cross_entropy(logits.float(), targets.reshape(-1)[m], reduction="sum")
        n = m.sum().float().clamp(min=1.0)
        return ce / (n if denom is None else denom)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    @torch.no_grad()
    def greedy(self, prompt: list[int], stop: list[int], max_new: int = 48, no_repeat_ngram: int = 0) -> list[int]:
        """Greedy decoding without a KV cache (fine for openers of a few dozen tokens).
        no_repeat_ngram ≥ 2 never picks a token that repeats a token n-gram of the generated
        tokens (the prompt not counted), as mulm.json's `opener.no_repeat_ngram` does in Rust
        (lm::sampler::repeated_ngram_continuations)."""
        ids = list(prompt)
        out = []
        for _ in range(max_new):
            if len(ids) >= self.cfg.max_seq_len:
                break
            x = torch.tensor([ids], dtype=torch.long, device=self.rope_cos.device)
            logits = self(x)[0, -1].float()
            banned = repeated_ngram_continuations(out, no_repeat_ngram)
            if banned:
                logits[banned] = float("-inf")
            nxt = int(logits.argmax())
            if nxt in stop:
                break
            out.append(nxt)
            ids.append(nxt)
        return out


def repeated_ngram_continuations(generated: list[int], n: int) -> list[int]:
    """Tokens that would repeat a token n-gram of `generated` if chosen next: those that
    followed an earlier occurrence of its last n − 1 tokens (n < 2: none). Mirrors the Rust
    runtime's lm::sampler::repeated_ngram_continuations."""
    if n < 2 or len(generated) < n:
        return []
    k = n - 1
    suffix = generated[-k:]
    return [generated[i + k] for i in range(len(generated) - k) if generated[i:i + k] == suffix]


def packed_attention_mask(seg):
    """seg [b, s] example ids → bool [b, 1, s, s]: query t may attend key u iff u ≤ t and both
    belong to the same example (padding gets its own ids, so every row attends at least itself)."""
    s = seg.shape[1]
    causal = torch.ones(s, s, dtype=torch.bool, device=seg.device).tril()
    return (seg[:, :, None] == seg[:, None, :]).unsqueeze(1) & causal


def param_groups(model: nn.Module, weight_decay: float):
    """Weight decay on matrices (incl. the tied embedding), none on RMSNorm gains."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def save_safetensors(model: MuLM, path) -> None:
    """f32 safetensors with exactly the HF names of lm/SCHEMA.md."""
    from safetensors.torch import save_file

    sd = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in model.state_dict().items()}
    assert "lm_head.weight" not in sd
    save_file(sd, str(path), metadata={"format": "pt"})
    Path(path).chmod(0o644)  # safetensors creates the file 0600


def load_safetensors(path, cfg: ModelConfig) -> MuLM:
    from safetensors.torch import load_file

    m = MuLM(cfg)
    m.load_state_dict(load_file(str(path)), strict=True)
    return m


if __name__ == "__main__":
    for name, cfg in PRESETS.items():
        n = cfg.parameter_count()
        paper = PAPER_PARAMS.get(name)
        print(f"{name:>7}: {n:>11,} params" + (f"  (paper {paper / 1e6:.2f}M, {100 * (n / paper - 1):+.2f}%)" if paper else ""))
