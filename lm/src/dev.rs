//! Development helpers for working without a trained checkpoint (brief item 8): a tiny
//! byte-level BPE tokenizer trained on a built-in corpus with the μLM special tokens, and a
//! writer for a complete random-weight model directory (mulm.json, tokenizer.json,
//! model.safetensors) so tests and benchmarks run end to end.

use std::path::{Path, PathBuf};

use candle_core::DType;
use tokenizers::models::bpe::{BpeTrainerBuilder, BPE};
use tokenizers::models::TrainerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::AddedToken;

use crate::config::ModelConfig;
use crate::error::{LmError, Result};
use crate::load::SAFETENSORS_FILE;
use crate::mulm_file::{MulmFile, MULM_JSON};
use crate::weights::Weights;

/// A few chat-style paragraphs; enough for a few hundred BPE merges.
pub const DEV_CORPUS: &str = "\
What is the capital of France? The capital of France is Paris, a city on the Seine river.
How do plants make food? Plants make food through photosynthesis, using sunlight, water and carbon dioxide.
Can you recommend a good book? Sure! A good choice is a classic novel that many readers enjoy.
What time is it in Tokyo? I cannot check the clock, but Tokyo is usually eight or nine hours ahead of Europe.
Tell me a joke. Why did the scarecrow win an award? Because he was outstanding in his field.
How far is the moon? The moon is about three hundred eighty four thousand kilometers from the Earth.
What should I cook tonight? A simple pasta with tomatoes, garlic and olive oil is quick and tasty.
Why is the sky blue? The sky looks blue because air scatters short blue wavelengths of sunlight more than red ones.
How do I stay focused? Try working in short blocks of time, remove distractions, and take regular breaks.
What is a language model? A language model predicts the next word of a text from the words before it.
Is it going to rain tomorrow? I do not have live weather data, but a forecast app can tell you.
Who wrote Hamlet? Hamlet was written by William Shakespeare around the year sixteen hundred.
";

/// Train a byte-level BPE tokenizer (GPT-2 style: ByteLevel pre-tokenizer without a prefix
/// space, ByteLevel decoder) on `texts`, with `specials` added first so they get ids
/// 0..specials.len(). `vocab_size` is an upper bound (tokens).
pub fn train_bpe_tokenizer(texts: &[&str], vocab_size: usize, specials: &[String]) -> Result<tokenizers::Tokenizer> {
    let mut tok = tokenizers::Tokenizer::new(BPE::default());
    // add_prefix_space = false matches llama.cpp's gpt2 pre-tokenizer; use_regex = true is the
    // GPT-2 split regex.
    tok.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)));
    tok.with_decoder(Some(ByteLevel::default()));
    let specials: Vec<AddedToken> = specials.iter().map(|s| AddedToken::from(s.clone(), true)).collect();
    let mut trainer: TrainerWrapper = BpeTrainerBuilder::new()
        .vocab_size(vocab_size)
        .min_frequency(1)
        .show_progress(false)
        .special_tokens(specials)
        .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
        .build()
        .into();
    tok.train(&mut trainer, texts.iter()).map_err(LmError::tok)?;
    Ok(tok)
}

/// Special-token contents of `mulm` in id order; ids must be 0..n so a trainer can assign them.
pub fn specials_in_id_order(mulm: &MulmFile) -> Result<Vec<String>> {
    let mut v: Vec<(u32, String)> = mulm.special_tokens.values().map(|t| (t.id, t.content.clone())).collect();
    v.sort();
    for (i, (id, c)) in v.iter().enumerate() {
        if *id as usize != i {
            return Err(LmError::InvalidConfig(format!("special token {c:?} has id {id}; dev tokenizer needs ids 0..n")));
        }
    }
    Ok(v.into_iter().map(|(_, c)| c).collect())
}

/// Tokenizer trained on [`DEV_CORPUS`] for `mulm` (vocab ≤ mulm.model.vocab).
pub fn dev_tokenizer(mulm: &MulmFile) -> Result<tokenizers::Tokenizer> {
    let lines: Vec<&str> = DEV_CORPUS.lines().collect();
    train_bpe_tokenizer(&lines, mulm.model.vocab, &specials_in_id_order(mulm)?)
}

/// Paths of a development model directory.
#[derive(Debug, Clone)]
pub struct DevCheckpoint {
    /// The directory.
    pub dir: PathBuf,
    /// `mulm.json`.
    pub mulm_json: PathBuf,
    /// `tokenizer.json`.
    pub tokenizer_json: PathBuf,
    /// `model.safetensors` (f32).
    pub safetensors: PathBuf,
}

/// Write random weights (seeded) for `cfg` plus mulm.json and a dev tokenizer into `dir`.
pub fn write_dev_checkpoint(dir: &Path, preset_name: &str, cfg: &ModelConfig, seed: u64) -> Result<(DevCheckpoint, Weights, MulmFile)> {
    std::fs::create_dir_all(dir).map_err(|e| LmError::io(dir, e))?;
    let mulm = MulmFile::for_config(preset_name, cfg.clone());
    mulm.validate()?;
    let weights = Weights::random_init(cfg, seed)?;
    let ck = DevCheckpoint {
        dir: dir.to_path_buf(),
        mulm_json: dir.join(MULM_JSON),
        tokenizer_json: dir.join("tokenizer.json"),
        safetensors: dir.join(SAFETENSORS_FILE),
    };
    mulm.save(&ck.mulm_json)?;
    weights.save_safetensors(&ck.safetensors, DType::F32)?;
    dev_tokenizer(&mulm)?.save(&ck.tokenizer_json, true).map_err(LmError::tok)?;
    Ok((ck, weights, mulm))
}
