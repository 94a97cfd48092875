//! A simulated microphone + speaker pair for machines without a sound card (CI, tests): a WAV
//! file is fed through the capture callback logic at real-time pace and the playback
//! callback's output is recorded, both on one "hardware" thread in 10 ms periods, the way a
//! full-duplex device would call them.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::ring::{capture_ring, playback_ring, ring_samples, AudioCounters, CaptureReader, PlaybackQueue};
use super::DeviceError;

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
    pub fn start(input: Vec<f32>, rate_hz: u32, capture_ring_ms: u32, playback_ring_ms: u32, counters: Arc<AudioCounters>) -> Result<(SimDuplex, CaptureReader, PlaybackQueue), DeviceError> {
        let (mut feed, reader) = capture_ring(rate_hz, 1, ring_samples(rate_hz, capture_ring_ms), counters.clone());
        let (queue, mut drain) = playback_ring(rate_hz, 1, ring_samples(rate_hz, playback_ring_ms), counters);
        let stop = Arc::new(AtomicBool::new(false));
        let input_done = Arc::new(AtomicBool::new(false));
        let period = (rate_hz * SIM_PERIOD_MS / 1000).max(1) as usize;
        let max_record = rate_hz as usize * SIM_MAX_RECORD_S as usize;
        let (stop2, done2) = (stop.clone(), input_done.clone());
        let thread = std::thread::Builder::new()
            .name("sim-audio".into())
            .spawn(move || {
                let mut recorded = Vec::with_capacity(input.len() + rate_hz as usize * 30);
                let mut out = vec![0.0f32; period];
                let t0 = Instant::now();
                let mut pos = 0usize;
                let mut tick: u64 = 0;
                while !stop2.load(Ordering::Acquire) {
                    // One period: the microphone delivers, the speaker consumes.
                    if pos < input.len() {
                        let end = (pos + period).min(input.len());
                        feed.push_interleaved(&input[pos..end]);
                        pos = end;
                        if pos == input.len() {
                            feed.end();
                            done2.store(true, Ordering::Release);
                        }
                    }
                    drain.fill_interleaved(&mut out);
                    if recorded.len() < max_record {
                        recorded.extend_from_slice(&out);
                    }
                    tick += 1;
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
        Ok((SimDuplex { thread: Some(thread), stop, input_done, rate_hz }, reader, queue))
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
}
