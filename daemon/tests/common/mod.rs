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

/// True when a block of the speaker's output is audible: RMS above 0.01 (−40 dBFS).
pub fn audible_block(block: &[f32]) -> bool {
    (block.iter().map(|v| v * v).sum::<f32>() / block.len() as f32).sqrt() > 0.01
}

/// Seconds of the speaker's output (48 kHz) after `from_s` whose 50 ms blocks are audible.
pub fn audible_s(out: &[f32], from_s: f64) -> f64 {
    let blk = OUT_RATE / 20;
    let a = ((from_s * OUT_RATE as f64) as usize).min(out.len());
    out[a..].chunks(blk).filter(|c| audible_block(c)).count() as f64 * 0.05
}

/// Why a barge-in attempt cannot test barge-in: the first reply (audible from `reply_from_s`
/// on) was not playing when the user started talking at `onset_s`, or had not played long
/// enough for a fresh echo canceller to converge. Before convergence the listener keeps the
/// VAD's normal onset profile on the cancelled stream, which can miss the start of speech
/// over the reply (`audio::aec::CONVERGED_AFTER_S`; on a loaded machine the reply starts
/// late and the user's question fell into that window: heard "for tonight.", 2026-12-07).
/// None when the attempt is valid; the caller tries a longer gap otherwise.
pub fn barge_in_precondition(out: &[f32], reply_from_s: f64, onset_s: f64) -> Option<String> {
    // 0.5 s over the canceller's count: it counts reference above −50 dBFS at 16 kHz, this
    // counts 50 ms blocks above −40 dBFS at 48 kHz.
    let needed_s = audio::aec::CONVERGED_AFTER_S + 0.5;
    let before_s = audible_s(out, reply_from_s) - audible_s(out, onset_s);
    // Phrase pauses are shorter than 0.6 s: silence over all of it means the reply ended.
    let at_onset_s = audible_s(out, onset_s - 0.6) - audible_s(out, onset_s);
    if before_s < needed_s {
        Some(format!("the reply played {before_s:.2} s before the user spoke at {onset_s:.2} s (needs {needed_s:.1} s)"))
    } else if at_onset_s < 0.1 {
        Some(format!("the reply was not playing in the 0.6 s before the user spoke at {onset_s:.2} s"))
    } else {
        None
    }
}

/// When playback stopped after `onset_s`: the end of the last audible 50 ms block between
/// `onset_s` and `until_s`, or `onset_s` when nothing played in that span.
pub fn playback_stopped_s(out: &[f32], onset_s: f64, until_s: f64) -> f64 {
    let blk = OUT_RATE / 20;
    let first = (onset_s * OUT_RATE as f64) as usize / blk;
    let last = ((until_s * OUT_RATE as f64) as usize).min(out.len()) / blk;
    (first..last).rev().find(|&b| audible_block(&out[b * blk..(b + 1) * blk])).map_or(onset_s, |b| (b + 1) as f64 * 0.05)
}
