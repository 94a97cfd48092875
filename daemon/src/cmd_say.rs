//! `firstword say "TEXT" --out FILE.wav`

use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::config::Config;

pub fn run(cfg: &Config, text: &str, out: &Path) -> Result<()> {
    let spoken = tts::normalize::for_speech(text);
    if spoken.trim().is_empty() {
        bail!("nothing to say: the text has no speakable words");
    }
    let mut voice = tts::Tts::load(&cfg.tts).context("loading the Piper voice")?;
    let pcm = voice.synthesize(&spoken).context("synthesizing")?;
    audio::write_wav(out, &pcm.samples, pcm.rate_hz).with_context(|| format!("writing {}", out.display()))?;
    eprintln!("{}: {:.2} s at {} Hz", out.display(), pcm.duration_ms() / 1000.0, pcm.rate_hz);
    Ok(())
}
