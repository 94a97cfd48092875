//! `firstword say "TEXT" --out FILE.wav [--rate HZ] [--pad-ms MS]`
//!
//! `--rate 16000 --pad-ms 600` makes a spoken-question fixture for replay and the pipeline
//! benchmark: the voice resampled to the ASR rate with silence before and after.

use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::config::Config;

/// What `say` writes.
pub struct SayOptions<'a> {
    pub text: &'a str,
    pub out: &'a Path,
    /// Output sample rate in Hz (None: the voice's own rate, 22050 Hz for medium voices).
    pub rate_hz: Option<u32>,
    /// Silence before and after the speech, ms.
    pub pad_ms: u32,
}

pub fn run(cfg: &Config, o: &SayOptions<'_>) -> Result<()> {
    let spoken = tts::normalize::for_speech(o.text);
    if spoken.trim().is_empty() {
        bail!("nothing to say: the text has no speakable words");
    }
    let mut voice = tts::Tts::load(&cfg.tts).context("loading the Piper voice")?;
    let pcm = voice.synthesize(&spoken).context("synthesizing")?;
    let rate = o.rate_hz.unwrap_or(pcm.rate_hz);
    if !(8_000..=48_000).contains(&rate) {
        bail!("--rate {rate} Hz is out of range (8000..48000)");
    }
    let speech = if rate == pcm.rate_hz { pcm.samples } else { audio::resample::resample(&pcm.samples, pcm.rate_hz, rate)? };
    let pad = vec![0.0f32; (o.pad_ms as u64 * rate as u64 / 1000) as usize];
    let samples: Vec<f32> = pad.iter().chain(speech.iter()).chain(pad.iter()).copied().collect();
    audio::write_wav(o.out, &samples, rate).with_context(|| format!("writing {}", o.out.display()))?;
    eprintln!("{}: {:.2} s at {} Hz", o.out.display(), samples.len() as f64 / rate as f64, rate);
    Ok(())
}
