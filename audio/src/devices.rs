//! Which devices `[audio]` asks for: cpal's microphone and speaker, or the simulated pair
//! when an input WAV is given (`--input-wav` / `[audio] input_wav`). Errors are
//! [`DeviceError`]s that name the device; a configured device's carry its TOML key.

use std::path::PathBuf;
use std::sync::Arc;

use crate::device::{
    check_device, AudioCounters, Capture, CaptureReader, DeviceError, DeviceOptions, Direction, Playback, PlaybackQueue, SimDuplex,
    SimOptions,
};

use crate::settings::AudioSection;

/// The devices to open, decided (and the simulated input loaded) before the models load.
pub enum Plan {
    /// cpal devices by name.
    Real { input: DeviceOptions, output: DeviceOptions },
    /// The simulated pair: `input` already at `rate_hz`.
    Sim { input: Vec<f32>, rate_hz: u32, output_wav: Option<PathBuf>, capture_ms: u32, playback_ms: u32, opts: SimOptions },
}

/// Opens the speaker again after it went away, playing the same ring (see
/// `crate::device::Playback::reopen`); it holds the live output stream.
pub type ReopenSpeaker = Box<dyn FnMut() -> Result<(), DeviceError> + Send>;

/// Running devices. [`Running::close`] stops them (and writes the simulated speaker's WAV).
pub enum Running {
    Real { _capture: Capture },
    Sim { sim: SimDuplex, output_wav: Option<PathBuf> },
}

/// The worker ends of the running devices' rings.
pub struct Opened {
    pub running: Running,
    pub reader: CaptureReader,
    /// Real devices: reopens the microphone after it went away (the listener calls it).
    pub reopen_capture: Option<crate::mic::Reopen>,
    pub queue: PlaybackQueue,
    /// Reopens the speaker (the conversation loop calls it when the speaker is lost).
    pub reopen_speaker: ReopenSpeaker,
    /// How the devices were opened, for the log.
    pub description: String,
}

impl Plan {
    /// Reads `[audio]` (with the command line's input/output WAV already merged in).
    pub fn from_config(a: &AudioSection) -> Result<Self, DeviceError> {
        if let Some(path) = &a.input_wav {
            let input = crate::device::load_sim_input(path, a.sim_rate_hz)?;
            return Ok(Plan::Sim {
                input,
                rate_hz: a.sim_rate_hz,
                output_wav: a.output_wav.clone(),
                capture_ms: a.capture_buffer_ms,
                playback_ms: a.playback_buffer_ms,
                opts: SimOptions {
                    echo: a.simulated_echo.clone(),
                    mic_outages: a.sim_mic_outages.iter().map(|[f, t]| (*f, *t)).collect(),
                    speaker_outages: a.sim_speaker_outages.iter().map(|[f, t]| (*f, *t)).collect(),
                    discard_playback: a.output_wav.is_none(),
                },
            });
        }
        // Fail on a wrong device name now, not after the models have loaded.
        check_device(&a.input_device, Direction::Input).map_err(|e| e.at_key("audio.input_device"))?;
        check_device(&a.output_device, Direction::Output).map_err(|e| e.at_key("audio.output_device"))?;
        let frames = (a.buffer_frames > 0).then_some(a.buffer_frames);
        Ok(Plan::Real {
            input: DeviceOptions { name: a.input_device.clone(), buffer_frames: frames, ring_ms: a.capture_buffer_ms },
            output: DeviceOptions { name: a.output_device.clone(), buffer_frames: frames, ring_ms: a.playback_buffer_ms },
        })
    }

    /// Opens and starts the devices.
    pub fn open(self, counters: Arc<AudioCounters>) -> Result<Opened, DeviceError> {
        match self {
            Plan::Real { input, output } => {
                let (capture, reader) = Capture::open(&input, counters.clone()).map_err(|e| e.at_key("audio.input_device"))?;
                let (playback, queue) = Playback::open(&output, counters.clone()).map_err(|e| e.at_key("audio.output_device"))?;
                let ((ir, ic), (or, oc)) = (capture.format(), playback.format());
                let description =
                    format!("microphone {:?} ({ir} Hz, {ic} ch), speaker {:?} ({or} Hz, {oc} ch)", capture.name(), playback.name());
                // The first stream stays in `Running` (dead streams are harmless); each
                // reopened one lives in the closure until the next reopen replaces it.
                let mut current: Option<Capture> = None;
                let reopen_capture: crate::mic::Reopen = Box::new(move || {
                    drop(current.take());
                    let (c, r) = Capture::open(&input, counters.clone())?;
                    current.replace(c);
                    Ok(r)
                });
                let mut playback: Playback = playback;
                Ok(Opened {
                    running: Running::Real { _capture: capture },
                    reader,
                    reopen_capture: Some(reopen_capture),
                    queue,
                    reopen_speaker: Box::new(move || playback.reopen()),
                    description,
                })
            }
            Plan::Sim { input, rate_hz, output_wav, capture_ms, playback_ms, opts } => {
                let secs = input.len() as f64 / rate_hz as f64;
                let echo = match &opts.echo {
                    Some(e) => format!(", echo path {} ms at {} dB", e.delay_ms, e.gain_db),
                    None => String::new(),
                };
                let (sim, reader, queue) = SimDuplex::start_with(input, rate_hz, capture_ms, playback_ms, counters, opts)?;
                let description = format!("simulated microphone ({secs:.1} s of input) and speaker at {rate_hz} Hz{echo}");
                // The simulated microphone comes back by itself (its outage schedule); the
                // speaker once reopened after its outage.
                let speaker = sim.speaker();
                Ok(Opened {
                    running: Running::Sim { sim, output_wav },
                    reader,
                    reopen_capture: None,
                    queue,
                    reopen_speaker: Box::new(move || speaker.reopen()),
                    description,
                })
            }
        }
    }
}

impl Running {
    /// Stops the streams; the simulated speaker's recording goes to its output WAV.
    /// Returns that WAV's path and length in seconds, if one was written.
    /// Errors: [`DeviceError::SimOutput`] when the WAV cannot be written.
    pub fn close(self) -> Result<Option<(PathBuf, f64)>, DeviceError> {
        match self {
            Running::Real { .. } => Ok(None),
            Running::Sim { sim, output_wav } => {
                let rate = sim.rate_hz();
                let played = sim.stop();
                let Some(path) = output_wav else {
                    return Ok(None);
                };
                crate::write_wav(&path, &played, rate).map_err(|source| DeviceError::SimOutput { path: path.clone(), source })?;
                Ok(Some((path, played.len() as f64 / rate as f64)))
            }
        }
    }
}
