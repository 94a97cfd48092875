//! Wake-word spotting with rustpotter: a reference built from a few recordings of the phrase
//! (MFCC templates compared by DTW), run over the 16 kHz stream in 30 ms frames.
//!
//! Runs on the listener thread (never the audio callback): [`WakeSpotter::push`] allocates a
//! frame per 30 ms. rustpotter reports a detection once the match has stopped improving, half
//! a template's length after the phrase; [`WakeDetection::end_sample`] takes that lag back
//! out, so the caller knows where the phrase ended and the question begins.

use std::collections::HashMap;
use std::path::Path;

use rustpotter::{Rustpotter, RustpotterConfig, WakewordLoad, WakewordRef, WakewordRefBuildFromBuffers, WakewordSave};

use crate::AudioError;

/// Samples per rustpotter frame at 16 kHz (30 ms).
const FRAME: usize = 480;
/// Samples per MFCC shift at 16 kHz (10 ms): rustpotter's unit of time.
const SHIFT: u64 = 160;
/// MFCC coefficients per frame in the references we build (rustpotter's own default).
const MFCC_SIZE: u16 = 16;
/// Level under which a recording's edges count as silence when building a reference (RMS
/// of 10 ms blocks, relative to the loudest block).
const TRIM_REL: f32 = 0.05;

/// Detection thresholds (rustpotter's detector config; scores are in 0..1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WakeSettings {
    /// Score a window must reach against one recording of the reference to count.
    pub threshold: f32,
    /// Score against the averaged recordings below which a window is not compared further.
    pub avg_threshold: f32,
    /// Windows over `threshold` needed (10 ms apart) before a detection fires.
    pub min_scores: usize,
}

impl Default for WakeSettings {
    fn default() -> Self {
        Self { threshold: 0.5, avg_threshold: 0.2, min_scores: 5 }
    }
}

/// One detection, positions in 16 kHz samples since the spotter started.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WakeDetection {
    /// Where the phrase ended (estimated: the detection minus rustpotter's lag).
    pub end_sample: u64,
    /// When the detection fired.
    pub detected_sample: u64,
    /// Best score of the phrase against the reference's recordings (0..1).
    pub score: f32,
}

/// A rustpotter detector for one reference, fed 16 kHz mono f32.
pub struct WakeSpotter {
    rp: Rustpotter,
    /// The reference's name: its phrase ("hey firstword").
    phrase: String,
    pending: Vec<f32>,
    /// Samples consumed so far (fed to rustpotter).
    pos: u64,
    /// rustpotter's lag from the phrase's end to its detection, in samples.
    lag: u64,
}

fn err(e: impl std::fmt::Display) -> AudioError {
    AudioError::WakeWord(e.to_string())
}

impl WakeSpotter {
    /// Loads a reference (`.rpw`) from `path`.
    ///
    /// # Errors
    /// [`AudioError::Io`] when the file cannot be read, [`AudioError::WakeWord`] when it is not
    /// a rustpotter reference.
    pub fn from_file(path: &Path, settings: &WakeSettings) -> Result<Self, AudioError> {
        let bytes = std::fs::read(path).map_err(|source| AudioError::Io { path: path.to_path_buf(), source })?;
        Self::from_bytes(&bytes, settings).map_err(|e| AudioError::WakeWord(format!("{}: {e}", path.display())))
    }

    /// Loads a reference from its bytes.
    ///
    /// # Errors
    /// [`AudioError::WakeWord`] when the bytes are not a rustpotter reference.
    pub fn from_bytes(bytes: &[u8], settings: &WakeSettings) -> Result<Self, AudioError> {
        let wakeword = WakewordRef::load_from_buffer(bytes).map_err(err)?;
        check_reference(&wakeword)?;
        let phrase = wakeword.name.clone();
        let frames = wakeword.samples_features.values().map(Vec::len).max().unwrap_or(0) as u64;
        let mut config = RustpotterConfig::default();
        config.fmt.sample_rate = crate::ASR_RATE_HZ as usize;
        config.detector.threshold = settings.threshold;
        config.detector.avg_threshold = settings.avg_threshold;
        config.detector.min_scores = settings.min_scores;
        let mut rp = Rustpotter::new(&config).map_err(err)?;
        rp.add_wakeword_ref("wake", wakeword).map_err(err)?;
        if rp.get_samples_per_frame() != FRAME {
            return Err(err(format!("rustpotter frame of {} samples, expected {FRAME}", rp.get_samples_per_frame())));
        }
        // The detection fires when no window has scored for half a template (rustpotter's
        // countdown), and the last scoring window ends about where the phrase does.
        Ok(Self { rp, phrase, pending: Vec::with_capacity(FRAME), pos: 0, lag: frames / 2 * SHIFT })
    }

    /// Feeds 16 kHz samples; returns the detections that fired in them (usually none).
    pub fn push(&mut self, samples: &[f32]) -> Vec<WakeDetection> {
        let mut found = Vec::new();
        let mut rest = samples;
        while !rest.is_empty() {
            let take = (FRAME - self.pending.len()).min(rest.len());
            self.pending.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.pending.len() == FRAME {
                let frame = std::mem::replace(&mut self.pending, Vec::with_capacity(FRAME));
                self.pos += FRAME as u64;
                if let Some(d) = self.rp.process_samples(frame) {
                    found.push(WakeDetection { end_sample: self.pos.saturating_sub(self.lag), detected_sample: self.pos, score: d.score });
                }
            }
        }
        found
    }

    /// The phrase the reference was built for (its name, as given to [`build_reference`]).
    pub fn phrase(&self) -> &str {
        &self.phrase
    }

    /// Samples fed so far.
    pub fn position(&self) -> u64 {
        self.pos + self.pending.len() as u64
    }

    /// How long after the phrase's end a detection fires, in samples.
    pub fn lag_samples(&self) -> u64 {
        self.lag
    }
}

/// Runs a fresh spotter over a whole recording (16 kHz) and returns its detections.
/// A reference rustpotter can use without panicking: it indexes the first frame of the first
/// recording (its MFCC size) and compares frames of one size, so a well-formed CBOR file with
/// no recordings, an empty recording or mixed frame sizes would panic inside it.
fn check_reference(w: &WakewordRef) -> Result<(), AudioError> {
    let size = usize::from(w.mfcc_size);
    let frames = w.samples_features.values().chain(w.avg_features.iter());
    let mut any = false;
    for f in frames {
        any = true;
        if f.is_empty() || f.iter().any(|frame| frame.len() != size || frame.iter().any(|v| !v.is_finite())) {
            return Err(err(format!("a recording has no frames, frames that are not {size} finite MFCCs each, or both")));
        }
    }
    if !any || size == 0 {
        return Err(err("the reference holds no recordings (or an MFCC size of 0)"));
    }
    Ok(())
}

pub fn spot_all(reference: &[u8], settings: &WakeSettings, samples: &[f32]) -> Result<Vec<WakeDetection>, AudioError> {
    let mut s = WakeSpotter::from_bytes(reference, settings)?;
    let mut found = s.push(samples);
    // Flush: half a template of silence lets a phrase at the very end fire.
    found.extend(s.push(&vec![0.0; s.lag as usize + 2 * FRAME]));
    Ok(found)
}

/// `samples` without their quiet edges (10 ms blocks under 5 % of the loudest block's RMS),
/// keeping 50 ms either side.
pub fn trim_silence(samples: &[f32]) -> &[f32] {
    let blk = (SHIFT as usize).max(1);
    let rms: Vec<f32> = samples.chunks(blk).map(|c| (c.iter().map(|v| v * v).sum::<f32>() / c.len() as f32).sqrt()).collect();
    let peak = rms.iter().copied().fold(0.0f32, f32::max);
    if peak <= 0.0 {
        return &samples[..0];
    }
    let loud = |r: &&f32| **r >= peak * TRIM_REL;
    let first = rms.iter().position(|r| loud(&r)).unwrap_or(0);
    let last = rms.iter().rposition(|r| loud(&r)).unwrap_or(rms.len() - 1);
    let a = first.saturating_sub(5) * blk;
    let b = ((last + 6) * blk).min(samples.len());
    &samples[a..b]
}

/// Reads recordings of the phrase for [`build_reference`]: each WAV (any rate, 1–8 channels)
/// at 16 kHz mono, keyed by its file name.
///
/// # Errors
/// The first WAV that cannot be read or decoded, named.
pub fn load_recordings(wavs: &[std::path::PathBuf]) -> Result<Vec<(String, Vec<f32>)>, AudioError> {
    wavs.iter()
        .map(|w| {
            let name = w.file_name().map_or_else(|| w.display().to_string(), |n| n.to_string_lossy().into_owned());
            Ok((name, crate::load_wav_16k_mono(w)?))
        })
        .collect()
}

/// Builds a reference named `name` from recordings of the phrase (16 kHz mono each, one
/// phrase per recording; quiet edges are trimmed), as the bytes of a `.rpw` file.
///
/// # Errors
/// [`AudioError::WakeWord`] when there are no recordings, one is silent or shorter than
/// 200 ms, or rustpotter fails.
pub fn build_reference(name: &str, recordings: &[(String, Vec<f32>)]) -> Result<Vec<u8>, AudioError> {
    if recordings.is_empty() {
        return Err(err("no recordings of the phrase"));
    }
    let mut buffers = HashMap::new();
    for (key, samples) in recordings {
        let phrase = trim_silence(samples);
        if phrase.len() < crate::ASR_RATE_HZ as usize / 5 {
            return Err(err(format!("{key}: no phrase found (silent or under 200 ms)")));
        }
        let mut bytes = std::io::Cursor::new(Vec::new());
        let spec =
            hound::WavSpec { channels: 1, sample_rate: crate::ASR_RATE_HZ, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
        let mut w = hound::WavWriter::new(&mut bytes, spec).map_err(err)?;
        for v in phrase {
            w.write_sample((v.clamp(-1.0, 1.0) * 32767.0) as i16).map_err(err)?;
        }
        w.finalize().map_err(err)?;
        buffers.insert(key.clone(), bytes.into_inner());
    }
    let r = WakewordRef::new_from_sample_buffers(name.to_string(), None, None, buffers, MFCC_SIZE).map_err(err)?;
    r.save_to_buffer().map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trimming_keeps_the_loud_part_with_margins() {
        let mut s = vec![0.0f32; 16_000];
        for (i, v) in s[8_000..9_600].iter_mut().enumerate() {
            *v = (i as f32 * 0.3).sin() * 0.5;
        }
        let t = trim_silence(&s);
        assert_eq!(t.len(), 1_600 + 10 * 160);
        assert!(trim_silence(&[0.0; 1000]).is_empty());
    }

    #[test]
    fn bad_references_and_recordings_are_errors() {
        assert!(WakeSpotter::from_bytes(b"not a reference", &WakeSettings::default()).is_err());
        // Well-formed files whose contents would panic inside rustpotter.
        let hostile = |samples: Vec<Vec<Vec<f32>>>, mfcc_size: u16| {
            let w = WakewordRef {
                name: "x".into(),
                avg_features: None,
                samples_features: samples.into_iter().enumerate().map(|(i, f)| (i.to_string(), f)).collect(),
                threshold: None,
                avg_threshold: None,
                rms_level: 0.1,
                mfcc_size,
            };
            WakeSpotter::from_bytes(&w.save_to_buffer().unwrap(), &WakeSettings::default()).err().map(|e| e.to_string())
        };
        for (samples, size) in
            [(vec![], 16), (vec![vec![]], 16), (vec![vec![vec![0.5; 16]], vec![vec![0.5; 8]]], 16), (vec![vec![vec![0.5; 16]]], 0)]
        {
            let e = hostile(samples, size).expect("refused");
            assert!(e.contains("recording") || e.contains("MFCC"), "{e}");
        }
        assert!(build_reference("x", &[]).is_err());
        assert!(build_reference("x", &[("silent".into(), vec![0.0; 16_000])]).is_err());
    }
}
