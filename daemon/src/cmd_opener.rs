//! `firstword opener QUESTION`: the μLM's first words for a question, as the daemon would
//! write them (`--json`: with tokens and timings). The model tools (`lm dev-checkpoint`,
//! `lm export-gguf`) belong to the lab (`firstword-lab lm …`).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use serde::Serialize;

use crate::config::Config;
use lm::checkpoint::load_checkpoint;

/// Arguments of `firstword opener`.
#[derive(Args, Debug)]
pub struct OpenerArgs {
    /// The user's question.
    pub question: String,
    /// Opener length in words (1..=16; default: mulm.json's opener.default_words).
    #[arg(long)]
    pub words: Option<usize>,
    /// Checkpoint directory (default: config lm.model_dir).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Print JSON: text, words, tokens, timings (ms), model.
    #[arg(long)]
    pub json: bool,
}

/// What `opener --json` prints.
#[derive(Serialize)]
struct OpenerReport<'a> {
    text: &'a str,
    words: &'a [String],
    tokens: &'a [u32],
    prompt_tokens: usize,
    stop: &'a lm::StopReason,
    /// The harmful-request check's margin for the question (> 0: flagged; absent: check off).
    harm_margin: Option<f32>,
    /// Prefill forward + first sample (ms from the start of the call).
    prefill_ms: f64,
    /// First generated token's text available (ms).
    first_token_ms: f64,
    /// Whole opener call (ms).
    total_ms: f64,
    /// When each word was finished (ms).
    word_ms: &'a [f64],
    model: ModelInfo,
}

/// Identity of a loaded model for reports.
#[derive(Serialize, Clone)]
pub struct ModelInfo {
    /// Preset name from mulm.json ("512-8", …).
    pub name: String,
    /// Weight storage ("q8_0", "f32", "gguf:q8_0", …).
    pub precision: String,
    pub parameters: usize,
    pub dir: String,
    /// Checkpoint load time (ms).
    pub load_ms: f64,
}

pub fn run(cfg: &Config, args: &OpenerArgs) -> Result<()> {
    let dir = args.model.clone().unwrap_or_else(|| cfg.lm.model_dir.clone());
    let m = load_checkpoint(&dir, cfg.lm.quant, cfg.lm.threads)?;
    if let Some(w) = args.words {
        if !(1..=lm::opener::MAX_WORDS).contains(&w) {
            bail!("--words {w}: must be in 1..={}", lm::opener::MAX_WORDS);
        }
    }
    // The margin sets the prompt bias where the checkpoint limits it (opener.prompt_bias_max_harm).
    let harm =
        lm::harm::HarmClassifier::from_config(&cfg.gate, m.mulm.opener.harm_check).context("loading the gate's harmful-request check")?;
    let harm_margin = harm.as_ref().map(|h| h.margin(&args.question)).transpose().context("the harmful-request check")?;
    let mut engine = lm::OpenerEngine::new(&m.model, &m.tok)?;
    let o = engine
        .opener_for_harm(lm::OpenerInput::Query(&args.question), args.words, harm_margin, |_, _| {})
        .context("generating the opener")?;
    if args.json {
        let r = OpenerReport {
            text: &o.text,
            words: &o.words,
            tokens: &o.tokens,
            prompt_tokens: o.prompt_tokens,
            stop: &o.stop,
            harm_margin,
            prefill_ms: o.timings.prefill_ms,
            first_token_ms: o.timings.first_token_ms,
            total_ms: o.timings.total_ms,
            word_ms: &o.timings.word_ms,
            model: ModelInfo {
                name: m.mulm.preset.clone(),
                precision: m.model.format().to_string(),
                parameters: m.model.config().parameter_count(),
                dir: dir.display().to_string(),
                load_ms: m.load_ms,
            },
        };
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        println!("{}", o.text);
    }
    Ok(())
}
