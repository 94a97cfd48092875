//! `firstword asr FILE.wav [--json]`

use std::path::Path;

use anyhow::{Context, Result};

use crate::config::Config;

pub fn run(cfg: &Config, file: &Path, json: bool) -> Result<()> {
    let samples = audio::load_wav_16k_mono(file).with_context(|| format!("cannot use {}", file.display()))?;
    let mut asr = asr::Asr::load(&cfg.asr).context("loading Whisper")?;
    let t = asr.transcribe(&samples).with_context(|| format!("transcribing {}", file.display()))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&t)?);
    } else {
        println!("{}", t.text);
    }
    Ok(())
}
