//! WAV in and out (hound), with every malformed-input case turned into a typed error.
//!
//! Accepted: PCM integer 8/16/24/32-bit and IEEE float 32-bit, 1–8 channels, 1 kHz–384 kHz.
//! Decoding downmixes to mono by averaging channels; [`load_wav_16k_mono`] also resamples to
//! [`crate::ASR_RATE_HZ`]. Format reference: Microsoft RIFF/WAVE (`fmt `/`data` chunks).

use std::io::Cursor;
use std::path::Path;

use crate::{resample, AudioError, ASR_RATE_HZ};

/// Highest sample rate accepted, in Hz (anything above is treated as a corrupt header).
pub const MAX_RATE_HZ: u32 = 384_000;
/// Lowest sample rate accepted, in Hz.
pub const MIN_RATE_HZ: u32 = 1_000;
/// Most channels accepted.
pub const MAX_CHANNELS: u16 = 8;

/// A decoded WAV file, downmixed to mono.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedWav {
    /// Sample rate of `mono`, in Hz (the file's own rate).
    pub rate_hz: u32,
    /// Channel count in the file (before the downmix).
    pub channels: u16,
    /// Bits per sample in the file.
    pub bits_per_sample: u16,
    /// True for IEEE float samples, false for PCM integer.
    pub float: bool,
    /// Mono samples in [-1, 1]; one per frame of the file.
    pub mono: Vec<f32>,
}

impl DecodedWav {
    /// Duration in milliseconds.
    pub fn duration_ms(&self) -> f64 {
        self.mono.len() as f64 * 1000.0 / self.rate_hz as f64
    }
}

/// Decodes a whole WAV file held in memory.
///
/// Errors: [`AudioError::Empty`] (0 bytes), [`AudioError::NotWav`] (no RIFF/WAVE header),
/// [`AudioError::BadHeader`] (inconsistent or absurd header fields),
/// [`AudioError::Unsupported`] (e.g. 12-bit or 64-bit float), [`AudioError::NoSamples`]
/// (header only), [`AudioError::Truncated`] (fewer samples than the header promises),
/// [`AudioError::NonFinite`] (NaN or infinity in float data).
pub fn decode_wav(bytes: &[u8]) -> Result<DecodedWav, AudioError> {
    if bytes.is_empty() {
        return Err(AudioError::Empty);
    }
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err(AudioError::NotWav("missing RIFF/WAVE signature".into()));
    }
    // hound has had panics on hostile headers; a decoder of untrusted input must not take the
    // daemon down, so the parse runs behind catch_unwind and any panic becomes BadHeader.
    match std::panic::catch_unwind(|| decode_checked(bytes)) {
        Ok(result) => result,
        Err(_) => Err(AudioError::BadHeader("the WAV parser rejected the header".into())),
    }
}

fn decode_checked(bytes: &[u8]) -> Result<DecodedWav, AudioError> {
    let reader = hound::WavReader::new(Cursor::new(bytes)).map_err(map_hound_header_error)?;
    let spec = reader.spec();
    if spec.channels == 0 || spec.channels > MAX_CHANNELS {
        return Err(AudioError::BadHeader(format!("{} channels (1 to {MAX_CHANNELS} supported)", spec.channels)));
    }
    if spec.sample_rate < MIN_RATE_HZ || spec.sample_rate > MAX_RATE_HZ {
        return Err(AudioError::BadHeader(format!("sample rate {} Hz (expected {MIN_RATE_HZ}..={MAX_RATE_HZ})", spec.sample_rate)));
    }
    let float = match (spec.sample_format, spec.bits_per_sample) {
        (hound::SampleFormat::Int, 8 | 16 | 24 | 32) => false,
        (hound::SampleFormat::Float, 32) => true,
        (fmt, bits) => return Err(AudioError::Unsupported(format!("{bits}-bit {fmt:?} samples"))),
    };
    let expected = reader.len() as u64;
    if expected == 0 {
        return Err(AudioError::NoSamples);
    }
    let channels = spec.channels as usize;
    // Never trust the header's length for an allocation: cap by what the bytes can hold.
    let cap = (expected as usize).min(bytes.len());
    let mut interleaved = Vec::with_capacity(cap);
    let mut reader = reader;
    if float {
        for s in reader.samples::<f32>() {
            match s {
                Ok(v) if v.is_finite() => interleaved.push(v),
                Ok(v) => return Err(AudioError::NonFinite { index: interleaved.len() / channels, value: v }),
                Err(_) => break,
            }
        }
    } else {
        let scale = 1.0 / (1u64 << (spec.bits_per_sample - 1)) as f32;
        for s in reader.samples::<i32>() {
            match s {
                Ok(v) => interleaved.push(v as f32 * scale),
                Err(_) => break,
            }
        }
    }
    let got = interleaved.len() as u64;
    if got < expected {
        return Err(AudioError::Truncated { expected, got });
    }
    let mono = resample::downmix(&interleaved, channels);
    Ok(DecodedWav { rate_hz: spec.sample_rate, channels: spec.channels, bits_per_sample: spec.bits_per_sample, float, mono })
}

fn map_hound_header_error(e: hound::Error) -> AudioError {
    match e {
        hound::Error::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            AudioError::BadHeader("file ends inside the header".into())
        }
        hound::Error::IoError(io) => AudioError::BadHeader(io.to_string()),
        hound::Error::FormatError(msg) => AudioError::BadHeader(msg.to_string()),
        hound::Error::Unsupported => AudioError::Unsupported("format not supported by the decoder".into()),
        hound::Error::TooWide => AudioError::Unsupported("sample wider than 32 bits".into()),
        hound::Error::UnfinishedSample => AudioError::BadHeader("unfinished sample".into()),
        hound::Error::InvalidSampleFormat => AudioError::Unsupported("invalid sample format".into()),
    }
}

/// Reads and decodes a WAV file; see [`decode_wav`] for the errors, plus [`AudioError::Io`].
pub fn read_wav(path: impl AsRef<Path>) -> Result<DecodedWav, AudioError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| AudioError::Io { path: path.to_path_buf(), source })?;
    decode_wav(&bytes)
}

/// Reads a WAV file and returns 16 kHz mono f32 samples ([`crate::ASR_RATE_HZ`]), resampled
/// with a band-limited resampler when the file has another rate.
pub fn load_wav_16k_mono(path: impl AsRef<Path>) -> Result<Vec<f32>, AudioError> {
    let wav = read_wav(path)?;
    resample::resample(&wav.mono, wav.rate_hz, ASR_RATE_HZ)
}

/// Encodes mono f32 samples as a 16-bit PCM WAV in memory. Samples are clipped to [-1, 1];
/// non-finite samples are written as 0.
pub fn encode_wav(samples: &[f32], rate_hz: u32) -> Result<Vec<u8>, AudioError> {
    let spec = hound::WavSpec { channels: 1, sample_rate: rate_hz, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    let mut buf = Cursor::new(Vec::with_capacity(44 + samples.len() * 2));
    {
        let mut w =
            hound::WavWriter::new(&mut buf, spec).map_err(|e| AudioError::Write { path: "<memory>".into(), message: e.to_string() })?;
        for &s in samples {
            let v = if s.is_finite() { (s.clamp(-1.0, 1.0) * 32767.0).round() as i16 } else { 0 };
            w.write_sample(v).map_err(|e| AudioError::Write { path: "<memory>".into(), message: e.to_string() })?;
        }
        w.finalize().map_err(|e| AudioError::Write { path: "<memory>".into(), message: e.to_string() })?;
    }
    Ok(buf.into_inner())
}

/// Writes mono f32 samples at `rate_hz` as a 16-bit PCM WAV file. The file is written under a
/// temporary name and renamed, so a reader never sees a half-written file.
pub fn write_wav(path: impl AsRef<Path>, samples: &[f32], rate_hz: u32) -> Result<(), AudioError> {
    let path = path.as_ref();
    let bytes = encode_wav(samples, rate_hz)?;
    let tmp = path.with_extension("wav.part");
    let werr = |e: std::io::Error| AudioError::Write { path: path.to_path_buf(), message: e.to_string() };
    std::fs::write(&tmp, &bytes).map_err(werr)?;
    std::fs::rename(&tmp, path).map_err(werr)
}
