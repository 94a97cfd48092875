//! Helpers shared by the CLI tests: the repository root, running the binary there, the
//! model/fixture check (the workspace's one skip-or-fail rule, `testkit::present`),
//! and the audio helpers of the live-daemon tests (16 kHz input, 48 kHz simulated speaker).
// Each test binary uses a subset of these.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

#[allow(unused_imports)] // each test binary uses a subset
pub use testkit::{present as assets_present, root};

/// Runs `firstword ARGS` from the repository root.
pub fn firstword(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_firstword")).args(args).current_dir(root()).output().expect("run firstword")
}

/// The simulated speaker's rate (the default `audio.sim_rate_hz`), in Hz.
pub const OUT_RATE: usize = 48_000;

/// A fixture (relative to the root) as 16 kHz mono.
pub fn load(rel: &str) -> Vec<f32> {
    audio::load_wav_16k_mono(root().join(rel)).unwrap()
}

/// `s` seconds of 16 kHz silence.
pub fn silence(s: f64) -> Vec<f32> {
    vec![0.0; (s * 16_000.0) as usize]
}

/// Duration of 16 kHz samples, in seconds.
pub fn secs(v: &[f32]) -> f64 {
    v.len() as f64 / 16_000.0
}

/// Writes the concatenation of `parts` (16 kHz) as `dir/in.wav`; returns its path.
pub fn input_wav(dir: &Path, parts: &[Vec<f32>]) -> PathBuf {
    let path = dir.join("in.wav");
    audio::write_wav(&path, &parts.concat(), 16_000).unwrap();
    path
}

/// Seconds of the speaker's output (48 kHz) after `from_s` whose 50 ms blocks are audible.
pub fn audible_s(out: &[f32], from_s: f64) -> f64 {
    let blk = OUT_RATE / 20;
    let a = ((from_s * OUT_RATE as f64) as usize).min(out.len());
    out[a..].chunks(blk).filter(|c| (c.iter().map(|v| v * v).sum::<f32>() / c.len() as f32).sqrt() > 0.01).count() as f64 * 0.05
}
