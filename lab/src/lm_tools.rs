//! `firstword-lab lm …`: the μLM's model tools, for development and training, not the device:
//! a random-weight checkpoint of the real shapes (`dev-checkpoint`, for plumbing and speed
//! until a trained one exists) and the GGUF export of a trained checkpoint (`export-gguf`,
//! run by `make -C training export`). `firstword lm …` runs them from beside the daemon.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Subcommand;

/// `firstword-lab lm …`
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
        /// Weight type of the matrices: q8_0, q4_k (Q4_K where a row is a multiple of 256
        /// weights, else Q8_0: a 512-8 at about 2/3 of its Q8_0 size), f16 or f32.
        #[arg(long, default_value = "q8_0")]
        r#type: String,
    },
}

/// Runs one model tool.
pub fn run(cmd: LmCmd) -> Result<()> {
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
            let ty = lm::ExportType::from_name(&r#type).with_context(|| format!("--type {type_name}", type_name = r#type))?;
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
