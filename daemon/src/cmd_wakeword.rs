//! `firstword wakeword record | build`: make your own wake-word reference (how well one works:
//! `firstword bench wakeword`, `bench/wakeword.rs`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use audio::device::{AudioCounters, Capture, DeviceOptions};
use audio::wakeword::{build_reference, load_recordings};
use clap::Subcommand;

use crate::config::Config;

#[derive(Subcommand)]
pub enum WakewordCmd {
    /// Record N samples of the phrase from the microphone (`[audio] input_device`), one WAV
    /// (16 kHz) each, after a countdown printed on the terminal.
    Record {
        /// Folder for the WAVs (sample_01.wav …).
        #[arg(long)]
        out_dir: PathBuf,
        /// How many samples (8 is plenty; vary your distance and tone a little).
        #[arg(long, default_value_t = 8)]
        count: usize,
        /// Seconds recorded per sample.
        #[arg(long, default_value_t = 2.5)]
        seconds: f64,
    },
    /// Build a reference (`.rpw`) from recordings of the phrase (WAVs, any rate; quiet edges
    /// are trimmed). Point `[activation] wake_word` at it.
    Build {
        /// The phrase, for the record.
        #[arg(long, default_value = "hey firstword")]
        name: String,
        #[arg(long)]
        out: PathBuf,
        #[arg(required = true)]
        wavs: Vec<PathBuf>,
    },
}

/// Runs a `wakeword` subcommand.
pub fn run(cfg: &Config, cmd: WakewordCmd) -> Result<()> {
    match cmd {
        WakewordCmd::Build { name, out, wavs } => {
            let bytes = build_reference(&name, &load_recordings(&wavs)?)?;
            if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            }
            std::fs::write(&out, bytes).with_context(|| format!("writing {}", out.display()))?;
            println!("{}: {name:?} from {} recordings", out.display(), wavs.len());
            Ok(())
        }
        WakewordCmd::Record { out_dir, count, seconds } => record(cfg, &out_dir, count, seconds),
    }
}

fn record(cfg: &Config, dir: &Path, count: usize, seconds: f64) -> Result<()> {
    if !(1..=100).contains(&count) || !(0.5..=10.0).contains(&seconds) {
        bail!("--count must be 1..=100 and --seconds 0.5..=10");
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let opts = DeviceOptions { name: cfg.audio.input_device.clone(), buffer_frames: None, ring_ms: cfg.audio.capture_buffer_ms };
    let (_capture, mut reader) = Capture::open(&opts, AudioCounters::new()).context("audio.input_device")?;
    for i in 1..=count {
        println!("sample {i}/{count}: say the phrase after the beep…");
        std::thread::sleep(Duration::from_millis(700));
        reader.drain(); // what came before the prompt
        println!("  recording");
        let s16 = audio::resample::resample(&reader.record(seconds), reader.rate_hz(), audio::ASR_RATE_HZ)?;
        let path = dir.join(format!("sample_{i:02}.wav"));
        audio::write_wav(&path, &s16, audio::ASR_RATE_HZ)?;
        println!("  wrote {}", path.display());
    }
    println!("now: firstword wakeword build --out my_wakeword.rpw {}/*.wav", dir.display());
    Ok(())
}
