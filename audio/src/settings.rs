//! `[audio]`, the audio stage's config table: the live microphone and speaker (devices,
//! buffers, echo cancellation, half-duplex) and the simulated devices of `--input-wav`.
//! Every value is checked by [`AudioSection::validate`], whose error names the TOML key.

use std::path::PathBuf;

use serde::Deserialize;

use crate::AudioError;

/// `[audio]`: the live microphone and speaker.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AudioSection {
    /// Capture device: "default", a cpal id ("alsa:hw:1,0"), an ALSA PCM name ("hw:1,0",
    /// "plughw:1,0") or a device's description name.
    pub input_device: String,
    /// Playback device, named the same ways.
    pub output_device: String,
    /// Frames per device callback to request; 0 = the device's default.
    pub buffer_frames: u32,
    /// Capture ring between the callback and the listener, in ms of audio.
    pub capture_buffer_ms: u32,
    /// Playback ring between the speaker worker and the callback, in ms of audio.
    pub playback_buffer_ms: u32,
    /// Simulated devices: play this WAV as the microphone (real-time pace) instead of cpal.
    pub input_wav: Option<PathBuf>,
    /// Simulated devices: write what the speaker played here on exit (needs input_wav).
    pub output_wav: Option<PathBuf>,
    /// Simulated devices: their sample rate, in Hz (48000 exercises the resamplers the way a
    /// real sound card does).
    pub sim_rate_hz: u32,
    /// Cancel the speaker's echo in the microphone signal (AEC3 on the listener thread, with
    /// what the speaker played as the reference). On by default: open-ear devices need it,
    /// and Whisper hears the canceller's linear output, so speech over the earcon or a reply
    /// stays intelligible (`live::mic`).
    pub echo_cancellation: bool,
    /// Half-duplex fallback for hardware where cancellation cannot keep up: while the reply
    /// plays the microphone is ignored, except for a loud, sustained onset (barge-in).
    pub half_duplex: bool,
    /// Half-duplex: the level (dBFS RMS over 10 ms) an onset must reach.
    pub half_duplex_onset_dbfs: f32,
    /// Half-duplex: how long the onset must stay that loud, in ms (the microphone's audio
    /// is held back this long while the reply plays).
    pub half_duplex_onset_ms: u32,
    /// Simulated devices: an echo path from the speaker to the microphone (absent: none).
    pub simulated_echo: Option<crate::device::EchoPathConfig>,
    /// Simulated devices: `[from_s, to_s]` windows (seconds of input) in which the
    /// microphone is gone, e.g. `[[3.0, 8.0]]`.
    pub sim_mic_outages: Vec<[f64; 2]>,
    /// Simulated devices: `[from_s, to_s]` windows (seconds since start) in which the
    /// speaker is gone; after one it plays again once the daemon reopens it.
    pub sim_speaker_outages: Vec<[f64; 2]>,
}

impl Default for AudioSection {
    fn default() -> Self {
        Self {
            input_device: "default".into(),
            output_device: "default".into(),
            buffer_frames: 0,
            capture_buffer_ms: 10_000,
            playback_buffer_ms: 60_000,
            input_wav: None,
            output_wav: None,
            sim_rate_hz: 48_000,
            echo_cancellation: true,
            half_duplex: false,
            half_duplex_onset_dbfs: -20.0,
            half_duplex_onset_ms: 200,
            simulated_echo: None,
            sim_mic_outages: Vec::new(),
            sim_speaker_outages: Vec::new(),
        }
    }
}

impl AudioSection {
    /// Range checks; messages name the key.
    pub fn validate(&self) -> Result<(), AudioError> {
        if self.input_device.trim().is_empty() {
            return Err(AudioError::invalid_config("audio.input_device", " is empty (\"default\" for the system default)".into()));
        }
        if self.output_device.trim().is_empty() {
            return Err(AudioError::invalid_config("audio.output_device", " is empty (\"default\" for the system default)".into()));
        }
        if self.buffer_frames != 0 && !(16..=16_384).contains(&self.buffer_frames) {
            return Err(AudioError::invalid_config(
                "audio.buffer_frames",
                format!(" = {} (0 for the device default, or 16..=16384)", self.buffer_frames),
            ));
        }
        if !(500..=120_000).contains(&self.capture_buffer_ms) {
            return Err(AudioError::invalid_config(
                "audio.capture_buffer_ms",
                format!(" = {} (must be 500..=120000)", self.capture_buffer_ms),
            ));
        }
        if !(1_000..=600_000).contains(&self.playback_buffer_ms) {
            return Err(AudioError::invalid_config(
                "audio.playback_buffer_ms",
                format!(" = {} (must be 1000..=600000)", self.playback_buffer_ms),
            ));
        }
        if !(8_000..=192_000).contains(&self.sim_rate_hz) {
            return Err(AudioError::invalid_config("audio.sim_rate_hz", format!(" = {} (must be 8000..=192000)", self.sim_rate_hz)));
        }
        if let Some(e) = &self.simulated_echo {
            // The echo path's keys sit under `[audio]` in this config.
            e.validate().map_err(|e| match e {
                AudioError::InvalidConfig { key, problem } => AudioError::invalid_config(&format!("audio.{key}"), problem),
                other => other,
            })?;
        }
        if !(-60.0..=0.0).contains(&self.half_duplex_onset_dbfs) {
            return Err(AudioError::invalid_config(
                "audio.half_duplex_onset_dbfs",
                format!(" = {} (must be -60..=0)", self.half_duplex_onset_dbfs),
            ));
        }
        if !(20..=1_000).contains(&self.half_duplex_onset_ms) {
            return Err(AudioError::invalid_config(
                "audio.half_duplex_onset_ms",
                format!(" = {} (must be 20..=1000)", self.half_duplex_onset_ms),
            ));
        }
        for (key, windows) in [("audio.sim_mic_outages", &self.sim_mic_outages), ("audio.sim_speaker_outages", &self.sim_speaker_outages)] {
            if let Some([a, b]) = windows.iter().find(|[a, b]| !(a.is_finite() && b.is_finite() && *a >= 0.0 && a < b)) {
                return Err(AudioError::invalid_config(key, format!(": [{a}, {b}] (need 0 <= from < to, in seconds)")));
            }
        }
        if self.output_wav.is_some() && self.input_wav.is_none() {
            return Err(AudioError::invalid_config(
                "audio.output_wav",
                " is set but audio.input_wav is not (the simulated speaker needs the simulated microphone)".into(),
            ));
        }
        Ok(())
    }
}
