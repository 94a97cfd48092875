//! The models `eval mc` scores, behind [`LogProbModel`]: the μLM (lm crate) and Gemma 3 270M
//! base ([`lm::gemma3`], tokenized by the cloud crate's Gemma tokenizer), each computing the
//! context once and reusing its KV cache for every choice.
//!
//! Both get a BOS token before the context. lm-eval-harness adds none for most Hugging Face
//! models, but it does for Gemma (`add_bos_token` is forced on: Gemma breaks without it), and
//! the μLM never saw a sequence without `<|bos|>` at position 0 (training/tokenizer.py: one
//! `<|bos|>` per dialogue), so BOS is the in-distribution choice for both. Multiple choice uses
//! plain text, no chat template.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use cloud::backend::local::tokenizer::GemmaTokenizer;
use lm::gemma3::Gemma3;

use super::mc_score::{log_softmax_at, LogProbModel};

/// What the report says about a scored model.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ModelInfo {
    /// Row label, e.g. "μLM-256-8".
    pub label: String,
    /// "mulm" or "gemma".
    pub kind: String,
    /// Checkpoint directory or file.
    pub path: PathBuf,
    /// Parameters (tied embeddings counted once), when known.
    pub parameters: Option<usize>,
    /// Weight format as loaded ("f32", "gguf:q8_0", "gguf Q4_K_M").
    pub format: String,
    /// The token put before every context.
    pub prefix_token: String,
}

/// A μLM checkpoint directory as a [`LogProbModel`].
pub struct MulmScorer {
    model: lm::Model,
    tok: lm::ChatTokenizer,
    cache: lm::Cache,
    bos: u32,
    info: ModelInfo,
}

impl MulmScorer {
    /// Loads `dir` (mulm.json, tokenizer.json, model.safetensors or model.gguf). The
    /// safetensors weights are preferred and kept in f32 (the trained numerics); a GGUF-only
    /// directory is scored in the type it was exported with.
    pub fn load(dir: &Path, threads: usize) -> Result<Self> {
        let mulm_path = dir.join("mulm.json");
        if !mulm_path.is_file() {
            bail!("no μLM checkpoint in {} (mulm.json missing)", dir.display());
        }
        let mulm = lm::MulmFile::load(&mulm_path).with_context(|| format!("reading {}", mulm_path.display()))?;
        let st = dir.join("model.safetensors");
        let mut model = if st.is_file() {
            lm::load_safetensors(&st, &mulm, None).with_context(|| format!("loading {}", st.display()))?
        } else {
            lm::load_dir(dir).with_context(|| format!("loading the μLM from {}", dir.display()))?.0
        };
        model.set_threads(threads).context("μLM thread pool")?;
        let tok = lm::ChatTokenizer::from_file(&dir.join("tokenizer.json"), &mulm)
            .with_context(|| format!("loading {}", dir.join("tokenizer.json").display()))?;
        let bos = mulm.special_id("bos").context("mulm.json: special token bos")?;
        let cache = model.new_cache().context("μLM KV cache")?;
        let info = ModelInfo {
            label: format!("μLM-{}", mulm.preset),
            kind: "mulm".into(),
            path: dir.to_path_buf(),
            parameters: Some(model.config().parameter_count()),
            format: model.format().to_string(),
            prefix_token: tok.inner().id_to_token(bos).unwrap_or_else(|| bos.to_string()),
        };
        Ok(Self { model, tok, cache, bos, info })
    }

    /// Label, path and format for the report.
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// The loaded model (for tests that recompute log-probs independently).
    #[cfg(test)]
    pub fn model(&self) -> &lm::Model {
        &self.model
    }
}

impl LogProbModel for MulmScorer {
    fn encode(&self, text: &str) -> Result<Vec<u32>> {
        self.tok.encode_text(text).context("μLM tokenizer")
    }

    fn prefix_token(&self) -> Option<u32> {
        Some(self.bos)
    }

    fn max_len(&self) -> usize {
        self.model.config().max_seq_len
    }

    fn continuation_log_likelihoods(&mut self, context: &[u32], conts: &[Vec<u32>]) -> Result<Vec<f64>> {
        let (model, cache) = (&self.model, &mut self.cache);
        model
            .install(|| {
                cache.reset();
                let last: Vec<f32> = model.forward(context, cache, false)?.to_vec1()?;
                let n = cache.len();
                let mut out = Vec::with_capacity(conts.len());
                for cont in conts {
                    let mut ll = log_softmax_at(&last, cont[0]);
                    if cont.len() > 1 {
                        cache.truncate(n);
                        let rows: Vec<Vec<f32>> = model.forward(&cont[..cont.len() - 1], cache, true)?.to_vec2()?;
                        ll += rows.iter().zip(&cont[1..]).map(|(row, &t)| log_softmax_at(row, t)).sum::<f64>();
                    }
                    out.push(ll);
                }
                Ok::<_, anyhow::Error>(out)
            })
            .context("μLM forward")
    }
}

/// Gemma 3 (GGUF) as a [`LogProbModel`], on [`lm::gemma3::Gemma3`].
pub struct GemmaScorer {
    model: Gemma3,
    tok: GemmaTokenizer,
    info: ModelInfo,
}

/// Positions Gemma's rotary tables are built for (BoolQ passages stay well below).
const GEMMA_MAX_CONTEXT: usize = 2048;

impl GemmaScorer {
    /// Loads the GGUF at `path` (the Q4_K_M file from scripts/setup.sh by default).
    pub fn load(path: &Path) -> Result<Self> {
        let mut file = std::fs::File::open(path).with_context(|| format!("opening {} (scripts/setup.sh fetches it)", path.display()))?;
        lm::gguf_check::check_gguf_alignment(&mut file)
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("reading GGUF {}", path.display()))?;
        let ct = candle_core::quantized::gguf_file::Content::read(&mut file).with_context(|| format!("reading GGUF {}", path.display()))?;
        let tok = GemmaTokenizer::from_gguf(&ct).with_context(|| format!("Gemma tokenizer in {}", path.display()))?;
        let model = Gemma3::from_gguf(&ct, &mut file, &Device::Cpu, GEMMA_MAX_CONTEXT)
            .with_context(|| format!("loading Gemma 3 from {}", path.display()))?;
        let parameters = ct.tensor_infos.values().map(|t| t.shape.elem_count()).sum();
        let info = ModelInfo {
            label: "Gemma 3 270M base".into(),
            kind: "gemma".into(),
            path: path.to_path_buf(),
            parameters: Some(parameters),
            format: "gguf Q4_K_M (Q5_0 matrices as Q8_0)".into(),
            prefix_token: "<bos>".into(),
        };
        Ok(Self { model, tok, info })
    }

    /// Label, path and format for the report.
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// Whole-sequence log-probs straight from [`Gemma3::token_log_probs`] (for tests).
    #[cfg(test)]
    pub fn token_log_probs(&mut self, tokens: &[u32]) -> Result<Vec<f32>> {
        Ok(self.model.token_log_probs(tokens)?)
    }
}

impl LogProbModel for GemmaScorer {
    fn encode(&self, text: &str) -> Result<Vec<u32>> {
        Ok(self.tok.encode(text, false))
    }

    fn prefix_token(&self) -> Option<u32> {
        Some(self.tok.bos)
    }

    fn max_len(&self) -> usize {
        self.model.max_context()
    }

    fn continuation_log_likelihoods(&mut self, context: &[u32], conts: &[Vec<u32>]) -> Result<Vec<f64>> {
        let input = Tensor::new(context, &Device::Cpu)?.unsqueeze(0)?;
        let last: Vec<f32> = self.model.forward(&input, 0).context("Gemma forward")?.squeeze(0)?.to_vec1()?;
        let mut out = Vec::with_capacity(conts.len());
        for cont in conts {
            let mut ll = log_softmax_at(&last, cont[0]);
            if cont.len() > 1 {
                // Continuing at `context.len()` discards the previous choice's positions: the
                // context's KV cache is reused without a snapshot.
                let input = Tensor::new(&cont[..cont.len() - 1], &Device::Cpu)?.unsqueeze(0)?;
                let rows: Vec<Vec<f32>> = self.model.forward_all(&input, context.len()).context("Gemma forward")?.to_vec2()?;
                ll += rows.iter().zip(&cont[1..]).map(|(row, &t)| log_softmax_at(row, t)).sum::<f64>();
            }
            out.push(ll);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::mc_data::McItem;
    use crate::eval::mc_score::score_item;

    fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
    }

    /// The committed tiny checkpoint with PyTorch logits (training/parity.py).
    fn tiny() -> (MulmScorer, serde_json::Value) {
        let dir = root().join("lm/tests/fixtures/parity-tiny");
        let parity = serde_json::from_str(&std::fs::read_to_string(dir.join("parity.json")).unwrap()).unwrap();
        (MulmScorer::load(&dir, 1).unwrap(), parity)
    }

    /// LL of `cont` after `ctx` by a fresh forward over the whole sequence (no cache reuse).
    fn ll_full_forward(m: &MulmScorer, ctx: &[u32], cont: &[u32]) -> f64 {
        let seq: Vec<u32> = ctx.iter().chain(cont).copied().collect();
        let mut cache = m.model().new_cache().unwrap();
        let rows: Vec<Vec<f32>> = m.model().forward(&seq[..seq.len() - 1], &mut cache, true).unwrap().to_vec2().unwrap();
        (0..cont.len()).map(|j| log_softmax_at(&rows[ctx.len() - 1 + j], cont[j])).sum()
    }

    #[test]
    fn mulm_log_likelihoods_match_pytorch() {
        let (mut m, parity) = tiny();
        let case = parity["cases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c.get("logits_all").is_some())
            .expect("a case with every position's logits");
        let ids: Vec<u32> = case["ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
        let logits: Vec<Vec<f32>> = case["logits_all"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect())
            .collect();
        let k = 10;
        let (ctx, cont) = ids.split_at(k);
        // PyTorch: position i's logits predict token i+1.
        let expected: f64 = (0..cont.len()).map(|j| log_softmax_at(&logits[k - 1 + j], cont[j])).sum();
        // Score a decoy first, so the real continuation runs on a rolled-back cache.
        let decoy: Vec<u32> = cont.iter().rev().copied().collect();
        let got = m.continuation_log_likelihoods(ctx, &[decoy.clone(), cont.to_vec()]).unwrap();
        assert!((got[1] - expected).abs() < 1e-3, "μLM {} vs PyTorch {expected}", got[1]);
        assert!((got[0] - ll_full_forward(&m, ctx, &decoy)).abs() < 1e-3);
        assert!(expected < -1.0, "a random tiny model is unsure: {expected}");
    }

    #[test]
    fn harness_on_the_tiny_model_matches_an_independent_softmax() {
        let (mut m, _) = tiny();
        // With these seeded weights the short answer has the higher LL and the long one the
        // higher LL per character: acc and acc_norm disagree (checked against an independent
        // full forward below, so the case cannot pass by accident).
        let item = McItem {
            id: "tiny/0".into(),
            doc_id: 0,
            context: "Question: What is the capital of France?\nAnswer:".into(),
            choices: vec!["Paris".into(), "the capital of France is Paris, of course".into()],
            gold: 1,
        };
        let s = score_item(&mut m, &item).unwrap();
        let mut lls = Vec::new();
        for choice in &item.choices {
            let (ctx, cont) = crate::eval::mc_score::encode_pair(&m, &item.context, &format!(" {choice}")).unwrap();
            assert_eq!(ctx[0], 0, "BOS first");
            lls.push(ll_full_forward(&m, &ctx, &cont));
        }
        for (a, b) in s.lls.iter().zip(&lls) {
            assert!((a - b).abs() < 1e-3, "{:?} vs {lls:?}", s.lls);
        }
        let per_char: Vec<f64> = lls.iter().zip(&item.choices).map(|(l, c)| l / c.chars().count() as f64).collect();
        assert_eq!(s.pred, crate::eval::mc_score::argmax(&lls));
        assert_eq!(s.pred_norm, crate::eval::mc_score::argmax(&per_char));
        assert_eq!((s.pred, s.pred_norm), (0, 1), "LL {lls:?}, per char {per_char:?}");
        assert_eq!((s.acc(), s.acc_norm()), (0.0, 1.0));
    }

    /// Gemma, or None (skip; a failure in CI: [`testkit::require`]).
    fn gemma() -> Option<GemmaScorer> {
        let p = testkit::require(cloud::backend::local::DEFAULT_MODEL_PATH)?;
        lm::configure_candle_threads(1);
        Some(GemmaScorer::load(&p).unwrap())
    }

    #[test]
    fn gemma_cached_scoring_matches_whole_sequence_log_probs() {
        let Some(mut g) = gemma() else { return };
        let item = McItem {
            id: "g/0".into(),
            doc_id: 0,
            context: "The capital of France is".into(),
            choices: vec!["a banana.".into(), "Paris.".into()],
            gold: 1,
        };
        let s = score_item(&mut g, &item).unwrap();
        for (i, choice) in item.choices.iter().enumerate() {
            let (ctx, cont) = crate::eval::mc_score::encode_pair(&g, &item.context, &format!(" {choice}")).unwrap();
            assert_eq!(ctx[0], 2, "Gemma's <bos>");
            let seq: Vec<u32> = ctx.iter().chain(&cont).copied().collect();
            let lp = g.token_log_probs(&seq).unwrap();
            let expected: f64 = lp[ctx.len() - 1..].iter().map(|&x| f64::from(x)).sum();
            assert!((s.lls[i] - expected).abs() < 1e-2, "{choice}: {} vs {expected}", s.lls[i]);
        }
        assert_eq!((s.pred, s.pred_norm), (1, 1), "Gemma knows Paris: {:?}", s.lls);
    }
}
