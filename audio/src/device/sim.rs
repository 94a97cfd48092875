//! A simulated microphone + speaker pair for machines without a sound card (CI, tests): a WAV
//! file is fed through the capture callback logic at real-time pace and the playback
//! callback's output is recorded, both on one "hardware" thread in 10 ms periods, the way a
//! full-duplex device would call them.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::echo_path::{EchoPath, EchoPathConfig};
use super::ring::{capture_ring, playback_ring, ring_samples, AudioCounters, CaptureReader, PlaybackQueue};
use super::DeviceError;

/// What the simulated pair does besides playing the input: an acoustic echo path from the
/// speaker to the microphone, and times when the microphone is gone.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SimOptions {
    /// The speaker's sound reaches the microphone through this path (None: no echo).
    pub echo: Option<EchoPathConfig>,
    /// `[from_s, to_s)` windows (seconds since start) in which the microphone is gone: no
    /// samples reach the capture ring, the counters mark it lost, the input moves on.
    pub mic_outages: Vec<(f64, f64)>,
    /// `[from_s, to_s)` windows (seconds since start) in which the speaker is gone: it stops
    /// taking audio and the counters mark it lost; after the window it plays again only
    /// once reopened ([`SimSpeaker::reopen`]), the way a real device must be.
    pub speaker_outages: Vec<(f64, f64)>,
    /// Keep none of the speaker's audio (nobody asked for an output WAV): without it the
    /// recording grows by one second per second, up to [`SIM_MAX_RECORD_S`], and a long
    /// run's memory with it. [`SimDuplex::stop`] then returns an empty vector.
    pub discard_playback: bool,
}

impl SimOptions {
    fn mic_gone(&self, t_s: f64) -> bool {
        self.mic_outages.iter().any(|&(a, b)| t_s >= a && t_s < b)
    }

    fn speaker_gone(&self, t_s: f64) -> bool {
        self.speaker_outages.iter().any(|&(a, b)| t_s >= a && t_s < b)
    }
}

/// State the simulated speaker shares with its [`SimSpeaker`] handles.
struct SpeakerShared {
    opts: SimOptions,
    /// Periods elapsed on the hardware thread.
    ticks: std::sync::atomic::AtomicU64,
    /// A reopen succeeded: the hardware thread plays again.
    reopened: AtomicBool,
    counters: Arc<AudioCounters>,
}

/// Reopens the simulated speaker after an outage (what `Playback::reopen` is for a real one).
#[derive(Clone)]
pub struct SimSpeaker {
    shared: Arc<SpeakerShared>,
}

impl SimSpeaker {
    /// Succeeds once the outage window is over (clearing
    /// [`AudioCounters::playback_lost`]); errors while the speaker is still "unplugged".
    pub fn reopen(&self) -> Result<(), DeviceError> {
        let t_s = self.shared.ticks.load(Ordering::Acquire) as f64 * SIM_PERIOD_MS as f64 / 1000.0;
        if self.shared.opts.speaker_gone(t_s) {
            return Err(DeviceError::Open {
                name: "simulated speaker".into(),
                direction: super::Direction::Output,
                message: "unplugged".into(),
            });
        }
        self.shared.reopened.store(true, Ordering::Release);
        self.shared.counters.set_playback_lost(false);
        Ok(())
    }
}

/// Length of one simulated device period, in ms.
pub const SIM_PERIOD_MS: u32 = 10;
/// Most speaker audio the simulator records, in seconds (longer runs keep the first part).
pub const SIM_MAX_RECORD_S: u32 = 600;

/// A running simulated device pair. Dropping it stops the hardware thread.
pub struct SimDuplex {
    thread: Option<JoinHandle<Vec<f32>>>,
    stop: Arc<AtomicBool>,
    input_done: Arc<AtomicBool>,
    rate_hz: u32,
    speaker: SimSpeaker,
}

/// Reads `path` (any rate, 1-8 channels), downmixes and resamples it to `rate_hz`.
pub fn load_sim_input(path: &Path, rate_hz: u32) -> Result<Vec<f32>, DeviceError> {
    let err = |source| DeviceError::SimInput { path: path.to_path_buf(), source };
    let wav = crate::read_wav(path).map_err(err)?;
    crate::resample::resample(&wav.mono, wav.rate_hz, rate_hz).map_err(err)
}

impl SimDuplex {
    /// Starts the pair at `rate_hz` (mono both ways). `input` (mono samples at `rate_hz`)
    /// plays into the capture ring in real time; when it is exhausted the capture side is
    /// marked ended. The speaker keeps being recorded until [`SimDuplex::stop`].
    /// Errors: [`DeviceError::SimThread`] when the OS refuses the device thread.
    pub fn start(
        input: Vec<f32>,
        rate_hz: u32,
        capture_ring_ms: u32,
        playback_ring_ms: u32,
        counters: Arc<AudioCounters>,
    ) -> Result<(SimDuplex, CaptureReader, PlaybackQueue), DeviceError> {
        Self::start_with(input, rate_hz, capture_ring_ms, playback_ring_ms, counters, SimOptions::default())
    }

    /// [`SimDuplex::start`] with an echo path and microphone outages. Each period the
    /// speaker plays first and the microphone then hears the input plus the echo of what
    /// was played (the echo path's delay is counted from the sample's playback).
    pub fn start_with(
        input: Vec<f32>,
        rate_hz: u32,
        capture_ring_ms: u32,
        playback_ring_ms: u32,
        counters: Arc<AudioCounters>,
        opts: SimOptions,
    ) -> Result<(SimDuplex, CaptureReader, PlaybackQueue), DeviceError> {
        let (mut feed, reader) = capture_ring(rate_hz, 1, ring_samples(rate_hz, capture_ring_ms), counters.clone());
        let (queue, mut drain) = playback_ring(rate_hz, 1, ring_samples(rate_hz, playback_ring_ms), counters.clone());
        let speaker = SimSpeaker {
            shared: Arc::new(SpeakerShared {
                opts: opts.clone(),
                ticks: std::sync::atomic::AtomicU64::new(0),
                reopened: AtomicBool::new(false),
                counters,
            }),
        };
        let speaker2 = speaker.shared.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let input_done = Arc::new(AtomicBool::new(false));
        let period = (rate_hz * SIM_PERIOD_MS / 1000).max(1) as usize;
        let max_record = rate_hz as usize * SIM_MAX_RECORD_S as usize;
        let (stop2, done2) = (stop.clone(), input_done.clone());
        let thread = std::thread::Builder::new()
            .name("sim-audio".into())
            .spawn(move || {
                let mut recorded = match opts.discard_playback {
                    true => Vec::new(),
                    false => Vec::with_capacity(input.len() + rate_hz as usize * 30),
                };
                let mut out = vec![0.0f32; period];
                let mut mic = vec![0.0f32; period];
                let mut echo = opts.echo.as_ref().map(|c| EchoPath::new(c, rate_hz));
                let mut gone = false;
                let mut speaker_down = false;
                let t0 = Instant::now();
                let mut pos = 0usize;
                let mut tick: u64 = 0;
                while !stop2.load(Ordering::Acquire) {
                    // One period: the speaker consumes, the microphone delivers (hearing it).
                    let t_s = tick as f64 * SIM_PERIOD_MS as f64 / 1000.0;
                    if opts.speaker_gone(t_s) && !speaker_down {
                        speaker_down = true;
                        speaker2.reopened.store(false, Ordering::Release);
                        speaker2.counters.set_playback_lost(true);
                    } else if speaker_down && speaker2.reopened.load(Ordering::Acquire) {
                        speaker_down = false;
                    }
                    if speaker_down {
                        out.fill(0.0);
                    } else {
                        drain.fill_interleaved(&mut out);
                    }
                    if !opts.discard_playback && recorded.len() < max_record {
                        recorded.extend_from_slice(&out);
                    }
                    if pos < input.len() {
                        let end = (pos + period).min(input.len());
                        let n = end - pos;
                        mic[..n].copy_from_slice(&input[pos..end]);
                        if let Some(e) = echo.as_mut() {
                            e.apply(&out[..n], &mut mic[..n]);
                        }
                        let now_gone = opts.mic_gone(pos as f64 / rate_hz as f64);
                        if now_gone {
                            feed.lose(n);
                        } else {
                            if gone {
                                feed.recover();
                            }
                            feed.push_interleaved(&mic[..n]);
                        }
                        gone = now_gone;
                        pos = end;
                        if pos == input.len() {
                            if gone {
                                feed.recover();
                            }
                            feed.end();
                            done2.store(true, Ordering::Release);
                        }
                    }
                    tick += 1;
                    speaker2.ticks.store(tick, Ordering::Release);
                    // Real-time pace on an absolute schedule (a late period is caught up).
                    let due = t0 + Duration::from_micros(tick * SIM_PERIOD_MS as u64 * 1000);
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                }
                if input.is_empty() {
                    feed.end();
                }
                recorded
            })
            .map_err(|e| DeviceError::SimThread(e.to_string()))?;
        Ok((SimDuplex { thread: Some(thread), stop, input_done, rate_hz, speaker }, reader, queue))
    }

    /// The handle that reopens the simulated speaker after an outage.
    pub fn speaker(&self) -> SimSpeaker {
        self.speaker.clone()
    }

    /// True once every input sample has been delivered to the capture ring.
    pub fn input_finished(&self) -> bool {
        self.input_done.load(Ordering::Acquire)
    }

    /// Sample rate of both directions, in Hz.
    pub fn rate_hz(&self) -> u32 {
        self.rate_hz
    }

    /// Stops the hardware thread; returns what the speaker played (mono at
    /// [`SimDuplex::rate_hz`]), sample 0 aligned with the input's first sample.
    pub fn stop(mut self) -> Vec<f32> {
        self.halt()
    }

    fn halt(&mut self) -> Vec<f32> {
        self.stop.store(true, Ordering::Release);
        self.thread.take().and_then(|t| t.join().ok()).unwrap_or_default()
    }
}

impl Drop for SimDuplex {
    fn drop(&mut self) {
        self.halt();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_reaches_the_reader_and_queued_audio_is_recorded() {
        let rate = 8_000;
        let input: Vec<f32> = (0..rate as usize / 5).map(|i| (i % 7) as f32 / 10.0).collect(); // 200 ms
        let (sim, mut reader, mut queue) = SimDuplex::start(input.clone(), rate, 1_000, 1_000, AudioCounters::new()).unwrap();
        assert_eq!(queue.push(&[0.5; 80]), 80);
        let mut got = Vec::new();
        let mut buf = [0.0f32; 256];
        while !reader.is_ended() {
            let n = reader.read(&mut buf);
            got.extend_from_slice(&buf[..n]);
            std::thread::sleep(Duration::from_millis(2));
        }
        assert!(sim.input_finished());
        assert_eq!(got, input);
        let rec = sim.stop();
        assert!(rec.len() >= input.len(), "recorded {} samples", rec.len());
        assert_eq!(rec.iter().filter(|&&v| v == 0.5).count(), 80, "the queued audio is played exactly once");
    }

    #[test]
    fn discarded_playback_is_still_played_and_heard_but_not_kept() {
        let rate = 8_000;
        let echo = EchoPathConfig { delay_ms: 0.0, gain_db: 0.0, room_ms: 0.0, noise_dbfs: -200.0, ..Default::default() };
        let opts = SimOptions { echo: Some(echo), discard_playback: true, ..Default::default() };
        let (sim, mut reader, mut queue) = SimDuplex::start_with(vec![0.0; 1_600], rate, 1_000, 1_000, AudioCounters::new(), opts).unwrap();
        queue.push(&[0.5; 80]);
        let got = read_all(&mut reader);
        assert_eq!(got.iter().filter(|&&v| v == 0.5).count(), 80, "the speaker still plays into the echo path");
        assert!(sim.stop().is_empty(), "nothing recorded");
    }

    fn read_all(reader: &mut CaptureReader) -> Vec<f32> {
        let mut got = Vec::new();
        let mut buf = [0.0f32; 256];
        while !reader.is_ended() {
            let n = reader.read(&mut buf);
            got.extend_from_slice(&buf[..n]);
            std::thread::sleep(Duration::from_millis(2));
        }
        got
    }

    #[test]
    fn the_microphone_hears_the_speaker_through_the_echo_path() {
        let rate = 8_000;
        let echo = EchoPathConfig { delay_ms: 20.0, gain_db: 0.0, room_ms: 0.0, noise_dbfs: -200.0, ..Default::default() };
        let opts = SimOptions { echo: Some(echo), ..Default::default() };
        let (sim, mut reader, mut queue) = SimDuplex::start_with(vec![0.0; 1_600], rate, 1_000, 1_000, AudioCounters::new(), opts).unwrap();
        let mut reference = queue.take_reference().unwrap();
        queue.push(&[0.5; 80]);
        let got = read_all(&mut reader);
        let rec = sim.stop();
        let first_played = rec.iter().position(|&v| v == 0.5).unwrap();
        let first_heard = got.iter().position(|&v| v != 0.0).unwrap();
        assert_eq!(first_heard, first_played + 160, "20 ms later at 8 kHz");
        assert_eq!(got.iter().filter(|&&v| v == 0.5).count(), 80);
        // The reference is what was played, on the microphone's sample clock.
        let mut r = vec![0.0f32; 1_600];
        let n = reference.read(&mut r);
        assert!(n >= 1_600 - 80);
        assert_eq!(r.iter().position(|&v| v == 0.5), Some(first_played));
    }

    #[test]
    fn an_outage_loses_the_input_and_marks_the_microphone_lost_until_it_returns() {
        let rate = 8_000;
        let counters = AudioCounters::new();
        let opts = SimOptions { mic_outages: vec![(0.05, 0.1)], ..Default::default() };
        let input = vec![0.25f32; 1_600]; // 200 ms
        let (sim, mut reader, _queue) = SimDuplex::start_with(input, rate, 1_000, 1_000, counters.clone(), opts).unwrap();
        let mut saw_lost = false;
        let mut got = Vec::new();
        let mut buf = [0.0f32; 256];
        while !reader.is_ended() {
            saw_lost |= counters.capture_lost();
            let n = reader.read(&mut buf);
            got.extend_from_slice(&buf[..n]);
            std::thread::sleep(Duration::from_millis(1));
        }
        drop(sim);
        assert!(saw_lost);
        assert!(!counters.capture_lost(), "back after the outage");
        assert_eq!(counters.device_losses(), 1);
        assert_eq!(reader.lost_samples(), 400, "50 ms at 8 kHz");
        assert_eq!(got.len(), 1_200);
    }

    #[test]
    fn a_lost_speaker_plays_nothing_until_it_is_reopened_after_its_outage() {
        let rate = 8_000;
        let counters = AudioCounters::new();
        let opts = SimOptions { speaker_outages: vec![(0.0, 0.1)], ..Default::default() };
        let (sim, _reader, mut queue) = SimDuplex::start_with(vec![0.0; 4_000], rate, 1_000, 1_000, counters.clone(), opts).unwrap();
        let speaker = sim.speaker();
        while !counters.playback_lost() {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(speaker.reopen().is_err(), "still unplugged");
        queue.push(&[0.5; 80]);
        std::thread::sleep(Duration::from_millis(150));
        assert!(counters.playback_lost(), "a device that came back stays lost until reopened");
        assert_eq!(queue.queued(), 80, "nothing was played while lost");
        speaker.reopen().unwrap();
        assert!(!counters.playback_lost());
        while queue.queued() > 0 {
            std::thread::sleep(Duration::from_millis(2));
        }
        let rec = sim.stop();
        assert_eq!(rec.iter().filter(|&&v| v == 0.5).count(), 80, "played once it was back");
        assert_eq!(counters.device_losses(), 1);
    }
}
