//! Architecture hyper-parameters and the paper's named variants (paper §"μLM architecture").
//!
//! The paper gives hidden size, layer count and parameter count for five variants and the full
//! head layout only for 512-8 (8 query heads, 2 KV heads, intermediate 1408). Solving the
//! parameter counts for the other four shows they all use **8 query heads and 2 KV heads**, so
//! head_dim = hidden / 8 (32, 48 or 64). A fixed head_dim of 64 does *not* reproduce the paper:
//! 384-8 would come out at 16.91M (1 KV head) or 17.31M (2 KV heads) instead of 17.11M.

use serde::{Deserialize, Serialize};

use crate::error::{LmError, Result};

/// Vocabulary size of the paper's BPE tokenizer (tokens).
pub const PAPER_VOCAB: usize = 12_288;
/// RoPE base θ used by every μLM (paper §architecture).
pub const PAPER_ROPE_THETA: f64 = 1.0e6;
/// RMSNorm epsilon used by every μLM (paper §architecture).
pub const PAPER_RMS_EPS: f64 = 1.0e-5;
/// Training sequence length (tokens, paper §training recipe); also the runtime context window.
pub const PAPER_MAX_SEQ_LEN: usize = 1024;

/// SwiGLU intermediate size: 8/3 · hidden rounded **up** to a multiple of 64 (paper §architecture).
/// 512 → 1408, 384 → 1024, 256 → 704, 64 → 192.
pub fn swiglu_intermediate(hidden: usize) -> usize {
    let raw = (8 * hidden).div_ceil(3);
    raw.div_ceil(64) * 64
}

/// Decoder-only μLM hyper-parameters. Shapes below use d = `hidden`, h = `heads`,
/// g = `kv_heads`, hd = `head_dim()`, f = `intermediate`, V = `vocab`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// Model width d.
    pub hidden: usize,
    /// Number of transformer blocks.
    pub layers: usize,
    /// Query heads h.
    pub heads: usize,
    /// Key/value heads g (grouped-query attention; h must be a multiple of g).
    pub kv_heads: usize,
    /// SwiGLU intermediate size f.
    pub intermediate: usize,
    /// Vocabulary size V (tokens); may exceed the tokenizer's size (extra rows are never produced by
    /// the tokenizer).
    pub vocab: usize,
    /// RoPE base θ.
    pub rope_theta: f64,
    /// RMSNorm epsilon.
    pub rms_eps: f64,
    /// Context window (tokens); sizes the KV cache and the RoPE tables.
    pub max_seq_len: usize,
}

impl ModelConfig {
    /// Per-head width hd = d / h.
    pub fn head_dim(&self) -> usize {
        self.hidden / self.heads
    }
    /// Width of the concatenated query projection, h · hd (= d).
    pub fn q_dim(&self) -> usize {
        self.heads * self.head_dim()
    }
    /// Width of one of the key/value projections, g · hd.
    pub fn kv_dim(&self) -> usize {
        self.kv_heads * self.head_dim()
    }

    /// Check the invariants the runtime relies on.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(LmError::InvalidConfig(m));
        if self.hidden == 0 || self.layers == 0 || self.heads == 0 || self.kv_heads == 0 {
            return bad("hidden, layers, heads and kv_heads must be > 0".into());
        }
        if self.hidden % self.heads != 0 {
            return bad(format!("hidden {} not divisible by heads {}", self.hidden, self.heads));
        }
        if self.heads % self.kv_heads != 0 {
            return bad(format!("heads {} not a multiple of kv_heads {}", self.heads, self.kv_heads));
        }
        if self.head_dim() % 2 != 0 {
            return bad(format!("head_dim {} must be even for RoPE", self.head_dim()));
        }
        if self.vocab == 0 || self.intermediate == 0 || self.max_seq_len == 0 {
            return bad("vocab, intermediate and max_seq_len must be > 0".into());
        }
        if !(self.rms_eps > 0.0) || !(self.rope_theta > 0.0) {
            return bad("rms_eps and rope_theta must be > 0".into());
        }
        Ok(())
    }

    /// Exact parameter count: tied embedding V·d, per block q/o d·d, k/v d·g·hd each,
    /// gate/up/down 3·d·f, two RMSNorm vectors, plus the final norm. No biases.
    pub fn parameter_count(&self) -> usize {
        let d = self.hidden;
        let attn = 2 * d * self.q_dim() + 2 * d * self.kv_dim();
        let mlp = 3 * d * self.intermediate;
        let norms = 2 * d;
        self.vocab * d + self.layers * (attn + mlp + norms) + d
    }
}

/// The paper's five μLM variants plus a tiny one for tests (paper §architecture, "Five variants").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Preset {
    /// Test-only: d 64, 2 layers, 4 heads / 2 KV heads, f 192, V 512. Not in the paper.
    Tiny64x2,
    /// d 256, 8 layers: 8.79M parameters.
    M256x8,
    /// d 256, 16 layers: 14.43M parameters.
    M256x16,
    /// d 384, 8 layers: 17.11M parameters.
    M384x8,
    /// d 384, 16 layers: 29.50M parameters.
    M384x16,
    /// d 512, 8 layers: 28.85M parameters (the released "Swen-28M", best on benchmarks).
    M512x8,
}

impl Preset {
    /// All presets, smallest first.
    pub const ALL: [Preset; 6] = [Preset::Tiny64x2, Preset::M256x8, Preset::M256x16, Preset::M384x8, Preset::M384x16, Preset::M512x8];

    /// Canonical "hidden-layers" name as used in the paper ("512-8").
    pub fn name(self) -> &'static str {
        match self {
            Preset::Tiny64x2 => "64-2",
            Preset::M256x8 => "256-8",
            Preset::M256x16 => "256-16",
            Preset::M384x8 => "384-8",
            Preset::M384x16 => "384-16",
            Preset::M512x8 => "512-8",
        }
    }

    /// Parse "512-8" (also accepts "512x8" and "mulm-512-8").
    pub fn from_name(name: &str) -> Result<Preset> {
        let norm = name.trim().to_ascii_lowercase().replace('x', "-");
        let norm = norm.strip_prefix("mulm-").unwrap_or(&norm);
        Preset::ALL.into_iter().find(|p| p.name() == norm).ok_or_else(|| LmError::UnknownPreset(name.to_string()))
    }

    /// Parameter count the paper reports (None for the test preset).
    pub fn paper_parameter_count(self) -> Option<f64> {
        match self {
            Preset::Tiny64x2 => None,
            Preset::M256x8 => Some(8.79e6),
            Preset::M256x16 => Some(14.43e6),
            Preset::M384x8 => Some(17.11e6),
            Preset::M384x16 => Some(29.50e6),
            Preset::M512x8 => Some(28.85e6),
        }
    }

    /// The full hyper-parameters of this variant.
    pub fn config(self) -> ModelConfig {
        let (hidden, layers) = match self {
            Preset::Tiny64x2 => (64, 2),
            Preset::M256x8 => (256, 8),
            Preset::M256x16 => (256, 16),
            Preset::M384x8 => (384, 8),
            Preset::M384x16 => (384, 16),
            Preset::M512x8 => (512, 8),
        };
        let (heads, kv_heads, vocab, max_seq_len) = match self {
            // Small vocabulary and context keep tests fast; 4/2 heads still exercises GQA.
            Preset::Tiny64x2 => (4, 2, 512, 256),
            _ => (8, 2, PAPER_VOCAB, PAPER_MAX_SEQ_LEN),
        };
        ModelConfig {
            hidden,
            layers,
            heads,
            kv_heads,
            intermediate: swiglu_intermediate(hidden),
            vocab,
            rope_theta: PAPER_ROPE_THETA,
            rms_eps: PAPER_RMS_EPS,
            max_seq_len,
        }
    }
}

impl std::fmt::Display for Preset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Preset {
    type Err = LmError;
    fn from_str(s: &str) -> Result<Self> {
        Preset::from_name(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intermediate_rounding() {
        assert_eq!(swiglu_intermediate(512), 1408);
        assert_eq!(swiglu_intermediate(384), 1024);
        assert_eq!(swiglu_intermediate(256), 704);
        assert_eq!(swiglu_intermediate(64), 192);
    }

    #[test]
    fn names_round_trip() {
        for p in Preset::ALL {
            assert_eq!(Preset::from_name(p.name()).unwrap(), p);
        }
        assert_eq!(Preset::from_name("512x8").unwrap(), Preset::M512x8);
        assert!(Preset::from_name("512-9").is_err());
    }
}
