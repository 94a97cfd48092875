//! Live audio: the microphone and speaker through cpal ([`Capture`], [`Playback`]), or a
//! simulated pair fed from a WAV file ([`SimDuplex`]), both behind the same lock-free rings
//! ([`CaptureReader`] for the worker that listens, [`PlaybackQueue`] for the one that speaks).
//!
//! Real-time rule: the device callbacks only move samples between the device buffer and a
//! ring; they never block, lock or allocate. Trouble is counted in [`AudioCounters`].

mod cpal_io;
mod echo_path;
mod ring;
mod sim;

use std::path::PathBuf;

pub use cpal_io::{check_device, Capture, DeviceOptions, Playback};
pub use echo_path::{EchoPath, EchoPathConfig};
pub use ring::{
    capture_ring, playback_ring, ring_samples, AudioCounters, CaptureFeed, CaptureReader, PlaybackControl, PlaybackDrain, PlaybackQueue,
    PushOutcome, ReferenceReader, REFERENCE_RING_S,
};
pub use sim::{load_sim_input, SimDuplex, SimOptions, SimSpeaker, SIM_MAX_RECORD_S, SIM_PERIOD_MS};

use crate::AudioError;

/// Which way audio flows through a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Capture (microphone).
    Input,
    /// Playback (speaker).
    Output,
}

impl std::fmt::Display for Direction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Direction::Input => "input",
            Direction::Output => "output",
        })
    }
}

/// Why a device could not be used. Every variant names the device as configured.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("{direction} audio device {name:?} not found (available: {available})")]
    NotFound { name: String, direction: Direction, available: String },
    #[error("{direction} audio device {name:?}: cannot read its configuration: {message}")]
    Config { name: String, direction: Direction, message: String },
    #[error("{direction} audio device {name:?}: unsupported sample format {format}")]
    UnsupportedFormat { name: String, direction: Direction, format: String },
    #[error("{direction} audio device {name:?}: cannot open a stream: {message}")]
    Open { name: String, direction: Direction, message: String },
    #[error("{direction} audio device {name:?}: cannot start the stream: {message}")]
    Start { name: String, direction: Direction, message: String },
    #[error("simulated audio devices: cannot start their thread: {0}")]
    SimThread(String),
    #[error("simulated speaker output {path}: {source}")]
    SimOutput { path: PathBuf, source: AudioError },
    /// A device error about the device a config key names (`audio.input_device`).
    #[error("{key}: {source}")]
    AtKey { key: &'static str, source: Box<DeviceError> },
    #[error("simulated microphone input {path}: {source}")]
    SimInput { path: PathBuf, source: AudioError },
}

impl DeviceError {
    /// This error, about the device that config `key` names (`audio.input_device`).
    pub fn at_key(self, key: &'static str) -> Self {
        DeviceError::AtKey { key, source: Box::new(self) }
    }
}
