//! The real microphone and speaker through cpal (ALSA on Linux). Each stream's callback is
//! one of the ring ends of [`super::ring`]; dropping [`Capture`] / [`Playback`] stops it.

use std::sync::{Arc, Mutex};

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{BufferSize, ErrorKind, SampleFormat, StreamConfig};

use super::ring::{capture_ring, playback_ring, ring_samples, AudioCounters, CaptureReader, PlaybackDrain, PlaybackQueue};
use super::{DeviceError, Direction};

/// How to open a device.
#[derive(Debug, Clone)]
pub struct DeviceOptions {
    /// `"default"`, a cpal device id (`"alsa:hw:1,0"`), an id on the default host
    /// (`"hw:1,0"`, `"plughw:1,0"`, `"null"`), or a device's description name.
    pub name: String,
    /// Frames per callback to request; `None` keeps the device's default.
    pub buffer_frames: Option<u32>,
    /// Ring capacity between the callback and the worker, in ms of audio.
    pub ring_ms: u32,
}

/// A running capture stream (the microphone). Dropping it stops the stream.
pub struct Capture {
    stream: cpal::Stream,
    name: String,
    rate_hz: u32,
    channels: u16,
}

/// A running playback stream (the speaker). Dropping it stops the stream.
pub struct Playback {
    /// None between a failed reopen and the next attempt.
    stream: Option<cpal::Stream>,
    name: String,
    rate_hz: u32,
    channels: u16,
    opts: DeviceOptions,
    counters: Arc<AudioCounters>,
    /// The ring's callback end, shared by the stream of the moment: a reopened stream plays
    /// the same ring, so the worker's queue, stop control and echo reference stay valid.
    /// The callback only `try_lock`s it (never waits): the lock is contended only while a
    /// dead stream is replaced, and then the callback plays silence.
    drain: Arc<Mutex<PlaybackDrain>>,
}

fn find_device(host: &cpal::Host, name: &str, dir: Direction) -> Result<cpal::Device, DeviceError> {
    let not_found = |available: String| DeviceError::NotFound { name: name.to_string(), direction: dir, available };
    if name == "default" {
        let d = match dir {
            Direction::Input => host.default_input_device(),
            Direction::Output => host.default_output_device(),
        };
        return d.ok_or_else(|| not_found("no default device".into()));
    }
    let id = name.parse::<cpal::DeviceId>().unwrap_or_else(|_| cpal::DeviceId::new(host.id(), name));
    if let Some(d) = host.device_by_id(&id) {
        return Ok(d);
    }
    let devices = host.devices().map_err(|e| not_found(format!("cannot list devices: {e}")))?;
    let mut seen = Vec::new();
    for d in devices {
        let fits = match dir {
            Direction::Input => d.supports_input(),
            Direction::Output => d.supports_output(),
        };
        if !fits {
            continue;
        }
        let desc = d.description().map(|x| x.name().to_string()).unwrap_or_default();
        if desc == name || d.to_string() == name {
            return Ok(d);
        }
        seen.push(d.id().map(|i| i.to_string()).unwrap_or(desc));
    }
    Err(not_found(if seen.is_empty() { "none".into() } else { seen.join(", ") }))
}

/// Checks that `name` names a device for `dir` on the default host, without opening a
/// stream (start-up validation before the models load).
pub fn check_device(name: &str, dir: Direction) -> Result<(), DeviceError> {
    find_device(&cpal::default_host(), name, dir).map(|_| ())
}

/// The stream configuration: the device's default, with the requested callback size.
fn stream_config(
    device: &cpal::Device,
    name: &str,
    dir: Direction,
    buffer_frames: Option<u32>,
) -> Result<(StreamConfig, SampleFormat), DeviceError> {
    let sup = match dir {
        Direction::Input => device.default_input_config(),
        Direction::Output => device.default_output_config(),
    }
    .map_err(|e| DeviceError::Config { name: name.to_string(), direction: dir, message: e.to_string() })?;
    let mut cfg = sup.config();
    if let Some(f) = buffer_frames {
        cfg.buffer_size = BufferSize::Fixed(f);
    }
    Ok((cfg, sup.sample_format()))
}

/// The error callback: counts, logs (this is not the audio callback), and marks a device
/// that went away as failed.
fn on_stream_error(counters: Arc<AudioCounters>, name: String, dir: Direction) -> impl FnMut(cpal::Error) + Send + 'static {
    move |e: cpal::Error| {
        let kind = e.kind();
        let fatal = matches!(kind, ErrorKind::DeviceNotAvailable | ErrorKind::StreamInvalidated | ErrorKind::HostUnavailable);
        // A device that goes away is reopened (the microphone by its reader, the speaker by
        // the conversation loop): it is marked lost instead of failing the daemon; only the
        // audio host itself going away is fatal.
        counters.count_stream_error(kind == ErrorKind::HostUnavailable);
        match (fatal, dir) {
            (true, Direction::Input) => counters.set_capture_lost(true),
            (true, Direction::Output) => counters.set_playback_lost(true),
            _ => {}
        }
        match (kind, dir) {
            (ErrorKind::Xrun, Direction::Input) => counters.count_overrun(),
            (ErrorKind::Xrun, Direction::Output) => counters.count_underrun(),
            _ => tracing::warn!(device = %name, direction = %dir, fatal, "audio stream error: {e}"),
        }
    }
}

impl Capture {
    /// Opens the input device, starts capturing into a ring of `opts.ring_ms`, and returns
    /// the stream and the worker's end of the ring (mono at the device's rate).
    pub fn open(opts: &DeviceOptions, counters: Arc<AudioCounters>) -> Result<(Capture, CaptureReader), DeviceError> {
        let dir = Direction::Input;
        let name = opts.name.clone();
        let host = cpal::default_host();
        let device = find_device(&host, &name, dir)?;
        let (cfg, format) = stream_config(&device, &name, dir, opts.buffer_frames)?;
        let (rate_hz, channels) = (cfg.sample_rate, cfg.channels);
        let (mut feed, reader) = capture_ring(rate_hz, channels, ring_samples(rate_hz, opts.ring_ms), counters.clone());
        let err = on_stream_error(counters, name.clone(), dir);
        let built = match format {
            SampleFormat::F32 => device.build_input_stream::<f32, _, _>(cfg, move |d, _| feed.push_interleaved(d), err, None),
            SampleFormat::I16 => device.build_input_stream::<i16, _, _>(cfg, move |d, _| feed.push_interleaved(d), err, None),
            SampleFormat::I32 => device.build_input_stream::<i32, _, _>(cfg, move |d, _| feed.push_interleaved(d), err, None),
            SampleFormat::U16 => device.build_input_stream::<u16, _, _>(cfg, move |d, _| feed.push_interleaved(d), err, None),
            other => return Err(DeviceError::UnsupportedFormat { name, direction: dir, format: other.to_string() }),
        };
        let stream = built.map_err(|e| DeviceError::Open { name: name.clone(), direction: dir, message: e.to_string() })?;
        stream.play().map_err(|e| DeviceError::Start { name: name.clone(), direction: dir, message: e.to_string() })?;
        Ok((Capture { stream, name, rate_hz, channels }, reader))
    }

    /// The device's name as configured.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The device's sample rate in Hz and channel count.
    pub fn format(&self) -> (u32, u16) {
        (self.rate_hz, self.channels)
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.stream.pause();
    }
}

impl Playback {
    /// Opens the output device and starts playing from a ring of `opts.ring_ms`; returns the
    /// stream and the worker's end of the ring (mono at the device's rate).
    pub fn open(opts: &DeviceOptions, counters: Arc<AudioCounters>) -> Result<(Playback, PlaybackQueue), DeviceError> {
        let dir = Direction::Output;
        let name = opts.name.clone();
        let host = cpal::default_host();
        let device = find_device(&host, &name, dir)?;
        let (cfg, format) = stream_config(&device, &name, dir, opts.buffer_frames)?;
        let (rate_hz, channels) = (cfg.sample_rate, cfg.channels);
        let (queue, drain) = playback_ring(rate_hz, channels, ring_samples(rate_hz, opts.ring_ms), counters.clone());
        let drain = Arc::new(Mutex::new(drain));
        let stream = start_output(&device, cfg, format, &name, drain.clone(), counters.clone())?;
        let playback = Playback { stream: Some(stream), name, rate_hz, channels, opts: opts.clone(), counters, drain };
        Ok((playback, queue))
    }

    /// Opens the output device again after it went away (unplugged, Bluetooth dropout, a
    /// PipeWire restart), playing the same ring; clears
    /// [`AudioCounters::playback_lost`] on success. Errors: the device is still missing or
    /// will not start, or it came back at another sample rate than the ring's
    /// ([`DeviceError::Config`]).
    pub fn reopen(&mut self) -> Result<(), DeviceError> {
        let dir = Direction::Output;
        // The dead stream goes first: its callback holds the other handle on the drain.
        drop(self.stream.take());
        let host = cpal::default_host();
        let device = find_device(&host, &self.name, dir)?;
        let (cfg, format) = stream_config(&device, &self.name, dir, self.opts.buffer_frames)?;
        if cfg.sample_rate != self.rate_hz {
            return Err(DeviceError::Config {
                name: self.name.clone(),
                direction: dir,
                message: format!("came back at {} Hz; the playback ring plays at {} Hz", cfg.sample_rate, self.rate_hz),
            });
        }
        if let Ok(mut d) = self.drain.lock() {
            d.set_channels(cfg.channels);
        }
        self.channels = cfg.channels;
        self.stream = Some(start_output(&device, cfg, format, &self.name, self.drain.clone(), self.counters.clone())?);
        self.counters.set_playback_lost(false);
        Ok(())
    }

    /// The device's name as configured.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The device's sample rate in Hz and channel count.
    pub fn format(&self) -> (u32, u16) {
        (self.rate_hz, self.channels)
    }
}

impl Drop for Playback {
    fn drop(&mut self) {
        if let Some(s) = &self.stream {
            let _ = s.pause();
        }
    }
}

/// Builds and starts an output stream whose callback plays `drain`.
fn start_output(
    device: &cpal::Device,
    cfg: StreamConfig,
    format: SampleFormat,
    name: &str,
    drain: Arc<Mutex<PlaybackDrain>>,
    counters: Arc<AudioCounters>,
) -> Result<cpal::Stream, DeviceError> {
    let dir = Direction::Output;
    let err = on_stream_error(counters, name.to_string(), dir);
    fn play<T: cpal::SizedSample + cpal::FromSample<f32>>(drain: &Mutex<PlaybackDrain>, out: &mut [T]) {
        match drain.try_lock() {
            Ok(mut d) => d.fill_interleaved(out),
            // Only while a dead stream is being replaced.
            Err(_) => out.fill(T::EQUILIBRIUM),
        }
    }
    let built = match format {
        SampleFormat::F32 => device.build_output_stream::<f32, _, _>(cfg, move |d, _| play(&drain, d), err, None),
        SampleFormat::I16 => device.build_output_stream::<i16, _, _>(cfg, move |d, _| play(&drain, d), err, None),
        SampleFormat::I32 => device.build_output_stream::<i32, _, _>(cfg, move |d, _| play(&drain, d), err, None),
        SampleFormat::U16 => device.build_output_stream::<u16, _, _>(cfg, move |d, _| play(&drain, d), err, None),
        other => return Err(DeviceError::UnsupportedFormat { name: name.to_string(), direction: dir, format: other.to_string() }),
    };
    let stream = built.map_err(|e| DeviceError::Open { name: name.to_string(), direction: dir, message: e.to_string() })?;
    stream.play().map_err(|e| DeviceError::Start { name: name.to_string(), direction: dir, message: e.to_string() })?;
    Ok(stream)
}
