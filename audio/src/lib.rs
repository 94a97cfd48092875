//! Audio plumbing for firstword: WAV in and out, resampling to the 16 kHz mono f32 that
//! Whisper and Silero expect, voice activity detection with endpointing, and the shared
//! onnxruntime loader (Silero VAD here, Piper in the `tts` crate), and live device I/O
//! (cpal microphone/speaker or a simulated pair, behind lock-free rings, opened as
//! `[audio]` says), the echo-cancelled microphone the listener reads and its recent-audio
//! history, and activation: wake-word
//! spotting (rustpotter), push-to-talk keys and the activation state machine.
//!
//! Sample conventions everywhere: f32 in [-1, 1], mono unless a type says otherwise,
//! positions and lengths in samples at the stated rate.

pub mod activation;
pub mod activation_gate;
pub mod aec;
pub mod device;
pub mod device_watch;
pub mod devices;
pub mod earcon;
pub mod error;
pub mod half_duplex;
pub mod history;
pub mod mic;
pub mod onnx;
pub mod ptt;
pub mod resample;
pub mod resample_stream;
pub mod settings;
pub mod vad;
pub mod wakeword;
pub mod wav;

pub use error::AudioError;
pub use wav::{decode_wav, load_wav_16k_mono, read_wav, write_wav, DecodedWav};

/// The rate every model in the pipeline listens at (Whisper, Silero VAD), in Hz.
pub const ASR_RATE_HZ: u32 = 16_000;

/// Sample position (or count) `sample` of a 16 kHz stream ([`ASR_RATE_HZ`]) in ms.
pub fn sample_ms(sample: u64) -> f64 {
    sample as f64 * 1000.0 / f64::from(ASR_RATE_HZ)
}

/// `ms` as a 16 kHz sample position (or count), rounded down; negative or NaN gives 0.
pub fn ms_sample(ms: f64) -> u64 {
    (ms * f64::from(ASR_RATE_HZ) / 1000.0) as u64
}

#[cfg(test)]
mod tests {
    #[test]
    fn samples_and_ms_convert_at_16_khz() {
        assert_eq!(super::sample_ms(16_000), 1000.0);
        assert_eq!(super::sample_ms(16), 1.0);
        assert_eq!(super::ms_sample(64.0), 1024);
        assert_eq!(super::ms_sample(0.03), 0, "rounded down");
        assert_eq!(super::ms_sample(-5.0), 0);
        assert_eq!(super::ms_sample(f64::NAN), 0);
    }
}
