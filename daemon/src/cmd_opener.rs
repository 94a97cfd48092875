//! `firstword opener QUESTION` (the μLM's first words) and `firstword lm dev-checkpoint`
//! (a random-weight checkpoint of the real shapes, for development until a trained one exists).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
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

/// `firstword lm …`
#[derive(Subcommand, Debug)]
pub enum LmCmd {
    /// Write a random-weight checkpoint of a paper preset's real shapes (mulm.json, a BPE
    /// tokenizer trained on built-in text, model.safetensors) so everything runs end to end.
    /// Its openers are gibberish: it is for plumbing and speed, not quality.
    DevCheckpoint {
        /// Output directory (created).
        #[arg(long)]
        out: PathBuf,
        /// Paper preset: 256-8, 256-16, 384-8, 384-16, 512-8 (or the test preset 64-2).
        #[arg(long, default_value = "512-8")]
        preset: String,
        /// Seed of the random weights.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Export a safetensors checkpoint directory (from training/export.py) as a GGUF of
    /// llama.cpp's `llama` architecture: the deployable form the daemon prefers.
    ExportGguf {
        /// Checkpoint directory: mulm.json, tokenizer.json, model.safetensors.
        #[arg(long)]
        model: PathBuf,
        /// Output file (default: MODEL/model.gguf, which the daemon then loads).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Weight type of the matrices: q8_0, f16 or f32.
        #[arg(long, default_value = "q8_0")]
        r#type: String,
    },
}

/// What `opener --json` prints.
#[derive(Serialize)]
struct OpenerReport<'a> {
    text: &'a str,
    words: &'a [String],
    tokens: &'a [u32],
    prompt_tokens: usize,
    stop: &'a lm::StopReason,
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
    let mut engine = lm::OpenerEngine::new(&m.model, &m.tok)?;
    let o = engine.opener(lm::OpenerInput::Query(&args.question), args.words, |_, _| {}).context("generating the opener")?;
    if args.json {
        let r = OpenerReport {
            text: &o.text,
            words: &o.words,
            tokens: &o.tokens,
            prompt_tokens: o.prompt_tokens,
            stop: &o.stop,
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

pub fn run_lm(cmd: LmCmd) -> Result<()> {
    match cmd {
        LmCmd::DevCheckpoint { out, preset, seed } => {
            let p = lm::Preset::from_name(&preset).with_context(|| format!("--preset {preset}"))?;
            let t0 = Instant::now();
            lm::dev::write_dev_checkpoint(&out, p.name(), &p.config(), seed)
                .with_context(|| format!("writing a development checkpoint to {}", out.display()))?;
            eprintln!(
                "wrote random-weight μLM-{} to {} in {:.1} s (development only: its words are random)",
                p.name(),
                out.display(),
                t0.elapsed().as_secs_f64()
            );
            Ok(())
        }
        LmCmd::ExportGguf { model, out, r#type } => {
            let ty = match r#type.as_str() {
                "q8_0" => lm::ExportType::Q8_0,
                "f16" => lm::ExportType::F16,
                "f32" => lm::ExportType::F32,
                other => bail!("--type {other:?}: expected q8_0, f16 or f32"),
            };
            let mulm_path = model.join(lm::mulm_file::MULM_JSON);
            if !mulm_path.is_file() {
                return Err(lm::LmError::MissingCheckpoint { dir: model }.into());
            }
            let mulm = lm::MulmFile::load(&mulm_path).with_context(|| format!("loading {}", mulm_path.display()))?;
            let st = model.join(lm::load::SAFETENSORS_FILE);
            let weights = lm::Weights::load_safetensors(&st, &mulm.model).with_context(|| format!("loading {}", st.display()))?;
            let out = out.unwrap_or_else(|| model.join(lm::load::GGUF_FILE));
            let s = lm::export_gguf(&weights, &mulm, &model.join("tokenizer.json"), &out, ty)
                .with_context(|| format!("exporting {}", out.display()))?;
            eprintln!("wrote {} ({:.1} MB, {} tensors)", out.display(), s.bytes as f64 / 1e6, s.tensor_types.len());
            Ok(())
        }
    }
}
