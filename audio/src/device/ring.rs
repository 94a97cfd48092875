//! The real-time half of live audio: what the device callbacks do, and the worker-side ends
//! of the same lock-free SPSC rings ([`ringbuf`]).
//!
//! The callback ends ([`CaptureFeed`], [`PlaybackDrain`]) never block, lock or allocate: they
//! copy samples between the device buffer and a ring, and count trouble in atomics. The cpal
//! streams and the simulated device both call exactly these.
//!
//! Rings hold mono f32 samples at the device's rate; the callbacks downmix capture frames and
//! copy each playback sample to every output channel.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cpal::{FromSample, Sample};
use ringbuf::traits::{Consumer, Observer, Producer, Split};
use ringbuf::{HeapCons, HeapProd, HeapRb};

/// Trouble counters shared by the capture and playback sides (monotonic, for metrics).
#[derive(Debug, Default)]
pub struct AudioCounters {
    overruns: AtomicU64,
    underruns: AtomicU64,
    stream_errors: AtomicU64,
    failed: AtomicBool,
    /// The microphone is gone right now (unplugged, dropout); cleared when it is back.
    capture_lost: AtomicBool,
    /// The speaker is gone right now; cleared when it is reopened.
    playback_lost: AtomicBool,
    /// Times a device went away (each loss counted once).
    device_losses: AtomicU64,
    /// Of those, the microphone's.
    capture_losses: AtomicU64,
}

impl AudioCounters {
    /// A fresh set of counters, shared between both directions.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Capture callbacks that found the ring full and dropped samples (the worker fell
    /// behind), plus xruns the capture device reported.
    pub fn overruns(&self) -> u64 {
        self.overruns.load(Ordering::Relaxed)
    }

    /// Playback callbacks that ran dry while a reply was still being produced (audio arrived
    /// late), plus xruns the playback device reported.
    pub fn underruns(&self) -> u64 {
        self.underruns.load(Ordering::Relaxed)
    }

    /// Stream errors reported by the audio backend (xruns included).
    pub fn stream_errors(&self) -> u64 {
        self.stream_errors.load(Ordering::Relaxed)
    }

    /// True once a stream reported an error it cannot recover from (the audio host itself
    /// went away; a lost device is [`AudioCounters::capture_lost`] /
    /// [`AudioCounters::playback_lost`] instead, and is reopened).
    pub fn failed(&self) -> bool {
        self.failed.load(Ordering::Relaxed)
    }

    /// True while the microphone is gone (a loss reported by the device, not yet over).
    pub fn capture_lost(&self) -> bool {
        self.capture_lost.load(Ordering::Acquire)
    }

    /// True while the speaker is gone (a loss reported by the device or noticed as a
    /// stall, not yet reopened).
    pub fn playback_lost(&self) -> bool {
        self.playback_lost.load(Ordering::Acquire)
    }

    /// Marks the speaker gone (counted once per loss) or back.
    pub fn set_playback_lost(&self, lost: bool) {
        self.mark_lost(&self.playback_lost, lost);
    }

    /// Sets a device's lost flag; true (and one more device loss) when it was not lost.
    fn mark_lost(&self, flag: &AtomicBool, lost: bool) -> bool {
        let was = flag.swap(lost, Ordering::AcqRel);
        let newly = lost && !was;
        if newly {
            self.device_losses.fetch_add(1, Ordering::Relaxed);
        }
        newly
    }

    /// Times a device went away since start (monotonic, for metrics).
    pub fn device_losses(&self) -> u64 {
        self.device_losses.load(Ordering::Relaxed)
    }

    /// Marks the microphone gone (counted once per loss) or back.
    pub fn set_capture_lost(&self, lost: bool) {
        if self.mark_lost(&self.capture_lost, lost) {
            self.capture_losses.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Times the microphone went away since start (monotonic; a loss that is already over
    /// still counts, so a poller never misses one).
    pub fn capture_losses(&self) -> u64 {
        self.capture_losses.load(Ordering::Relaxed)
    }

    pub(crate) fn count_overrun(&self) {
        self.overruns.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_underrun(&self) {
        self.underruns.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_stream_error(&self, fatal: bool) {
        self.stream_errors.fetch_add(1, Ordering::Relaxed);
        if fatal {
            self.failed.store(true, Ordering::Relaxed);
        }
    }
}

/// Length of the echo-reference ring, in seconds (as long as the default capture ring would
/// be pointless: the canceller only needs the last few hundred ms; a listener that falls
/// this far behind loses reference samples, counted in [`ReferenceReader::dropped`]).
pub const REFERENCE_RING_S: usize = 10;

/// Ring capacity in samples for `ms` milliseconds at `rate_hz` (at least one 10 ms block).
pub fn ring_samples(rate_hz: u32, ms: u32) -> usize {
    ((rate_hz as u64 * ms as u64 / 1000) as usize).max(rate_hz as usize / 100).max(1)
}

struct CaptureShared {
    counters: Arc<AudioCounters>,
    /// The source has no more samples (the simulated input ended).
    ended: AtomicBool,
    /// Samples the device lost while it was gone (the reader fills them with silence so that
    /// sample positions stay on the stream clock).
    lost_samples: AtomicU64,
}

/// Callback end of the capture ring.
pub struct CaptureFeed {
    prod: HeapProd<f32>,
    channels: usize,
    shared: Arc<CaptureShared>,
}

/// Worker end of the capture ring: mono samples at [`CaptureReader::rate_hz`].
pub struct CaptureReader {
    cons: HeapCons<f32>,
    rate_hz: u32,
    shared: Arc<CaptureShared>,
}

/// A capture ring of `capacity` mono samples for a device delivering `channels`-channel
/// frames at `rate_hz`.
pub fn capture_ring(rate_hz: u32, channels: u16, capacity: usize, counters: Arc<AudioCounters>) -> (CaptureFeed, CaptureReader) {
    let (prod, cons) = HeapRb::<f32>::new(capacity.max(1)).split();
    let shared = Arc::new(CaptureShared { counters, ended: AtomicBool::new(false), lost_samples: AtomicU64::new(0) });
    (CaptureFeed { prod, channels: channels.max(1) as usize, shared: shared.clone() }, CaptureReader { cons, rate_hz, shared })
}

impl CaptureFeed {
    /// The capture callback: downmixes interleaved frames to mono and pushes them. When the
    /// ring is full the rest of the block is dropped and one overrun is counted. Never
    /// blocks or allocates.
    pub fn push_interleaved<T>(&mut self, data: &[T])
    where
        T: Sample,
        f32: FromSample<T>,
    {
        let ch = self.channels;
        let frames = data.len() / ch;
        let inv = 1.0 / ch as f32;
        let pushed = self.prod.push_iter(data.chunks_exact(ch).map(|f| f.iter().map(|s| s.to_sample::<f32>()).sum::<f32>() * inv));
        if pushed < frames {
            self.shared.counters.count_overrun();
        }
    }

    /// Marks the end of the input (no more samples will come).
    pub fn end(&self) {
        self.shared.ended.store(true, Ordering::Release);
    }

    /// The device is gone: `samples` mono samples of its time went by without audio.
    /// Marks the capture side lost in the counters. Never blocks or allocates.
    pub fn lose(&self, samples: usize) {
        self.shared.counters.set_capture_lost(true);
        self.shared.lost_samples.fetch_add(samples as u64, Ordering::AcqRel);
    }

    /// The device is back (after [`CaptureFeed::lose`]).
    pub fn recover(&self) {
        self.shared.counters.set_capture_lost(false);
    }
}

impl CaptureReader {
    /// Sample rate of the samples in the ring, in Hz.
    pub fn rate_hz(&self) -> u32 {
        self.rate_hz
    }

    /// Moves up to `out.len()` samples out of the ring; returns how many. Never blocks.
    pub fn read(&mut self, out: &mut [f32]) -> usize {
        self.cons.pop_slice(out)
    }

    /// Samples waiting to be read. Never blocks.
    pub fn available(&self) -> usize {
        self.cons.occupied_len()
    }

    /// Drops every sample the ring holds now (audio from before a prompt). Never blocks.
    pub fn drain(&mut self) {
        let mut buf = [0.0f32; 1024];
        while self.read(&mut buf) > 0 {}
    }

    /// Records `seconds` of audio from now, at [`CaptureReader::rate_hz`], polling the ring
    /// every 10 ms (blocks the caller: for command-line recording, never an audio thread).
    /// Gives up after three times as long, returning what came (a device that stalls).
    pub fn record(&mut self, seconds: f64) -> Vec<f32> {
        let want = (seconds.max(0.0) * f64::from(self.rate_hz)) as usize;
        let (mut got, mut buf) = (Vec::with_capacity(want), vec![0.0f32; 4096]);
        let t0 = std::time::Instant::now();
        while got.len() < want && t0.elapsed().as_secs_f64() < seconds * 3.0 {
            let n = self.read(&mut buf);
            if n == 0 {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            got.extend_from_slice(&buf[..n]);
        }
        got.truncate(want);
        got
    }

    /// True when the source ended and every sample has been read.
    pub fn is_ended(&self) -> bool {
        self.shared.ended.load(Ordering::Acquire) && self.cons.is_empty()
    }

    /// Samples lost while the device was gone, since the start (monotonic).
    pub fn lost_samples(&self) -> u64 {
        self.shared.lost_samples.load(Ordering::Acquire)
    }

    /// The counters this ring reports into.
    pub fn counters(&self) -> &Arc<AudioCounters> {
        &self.shared.counters
    }
}

struct PlaybackShared {
    counters: Arc<AudioCounters>,
    /// Incremented by [`PlaybackControl::stop`]; the callback clears the ring when it sees a
    /// new value and publishes it in `cleared_gen`.
    stop_gen: AtomicU64,
    cleared_gen: AtomicU64,
    /// While set, pushed audio is dropped (a stopped reply must not resume).
    gate_closed: AtomicBool,
    /// More audio of the current reply is on its way: running dry now is an underrun.
    streaming: AtomicBool,
    /// Samples (mono) of real audio played so far.
    played: AtomicU64,
    /// Echo-reference samples the callback could not hand over (reference ring full).
    reference_dropped: AtomicU64,
}

/// Callback end of the playback ring.
pub struct PlaybackDrain {
    cons: HeapCons<f32>,
    /// Output channels of the device it feeds (a reopened device may have other ones).
    channels: usize,
    seen_gen: u64,
    shared: Arc<PlaybackShared>,
    /// Everything the callback plays (zero-fill included), for echo cancellation.
    reference: HeapProd<f32>,
}

/// Worker end of the playback ring: mono samples at [`PlaybackQueue::rate_hz`].
pub struct PlaybackQueue {
    prod: HeapProd<f32>,
    rate_hz: u32,
    shared: Arc<PlaybackShared>,
    /// The reading end of the echo reference, until [`PlaybackQueue::take_reference`].
    reference: Option<ReferenceReader>,
}

/// Worker end of the echo-reference ring: every mono sample the playback callback wrote to
/// the device, in order, zero-fill included (so sample `n` here went out one sample after
/// sample `n - 1`: the stream has no gaps while the device runs).
pub struct ReferenceReader {
    cons: HeapCons<f32>,
    rate_hz: u32,
    shared: Arc<PlaybackShared>,
}

impl ReferenceReader {
    /// Sample rate of the reference, in Hz (the playback ring's).
    pub fn rate_hz(&self) -> u32 {
        self.rate_hz
    }

    /// Moves up to `out.len()` samples out of the ring; returns how many. Never blocks.
    pub fn read(&mut self, out: &mut [f32]) -> usize {
        self.cons.pop_slice(out)
    }

    /// Samples waiting to be read.
    pub fn available(&self) -> usize {
        self.cons.occupied_len()
    }

    /// Drops up to `n` of the oldest samples; returns how many were dropped.
    pub fn skip(&mut self, n: usize) -> usize {
        self.cons.skip(n)
    }

    /// Samples the callback dropped because this ring was full (the reader fell behind).
    pub fn dropped(&self) -> u64 {
        self.shared.reference_dropped.load(Ordering::Relaxed)
    }
}

/// Stops and resumes playback from any thread (cheap to clone).
#[derive(Clone)]
pub struct PlaybackControl {
    shared: Arc<PlaybackShared>,
}

/// What became of audio handed to [`PlaybackQueue::push_all`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushOutcome {
    /// Every sample is in the ring.
    Queued,
    /// Playback was stopped (barge-in, shutdown): the rest was dropped.
    Stopped,
    /// The ring stayed full for longer than the timeout: the device stopped consuming.
    Stalled,
}

/// A playback ring of `capacity` mono samples for a device playing `channels`-channel frames
/// at `rate_hz`.
///
/// The drain also copies everything it plays into an echo-reference ring of
/// [`REFERENCE_RING_S`] seconds, read through [`PlaybackQueue::take_reference`].
pub fn playback_ring(rate_hz: u32, channels: u16, capacity: usize, counters: Arc<AudioCounters>) -> (PlaybackQueue, PlaybackDrain) {
    let (prod, cons) = HeapRb::<f32>::new(capacity.max(1)).split();
    let (ref_prod, ref_cons) = HeapRb::<f32>::new((rate_hz as usize * REFERENCE_RING_S).max(1)).split();
    let shared = Arc::new(PlaybackShared {
        counters,
        stop_gen: AtomicU64::new(0),
        cleared_gen: AtomicU64::new(0),
        gate_closed: AtomicBool::new(false),
        streaming: AtomicBool::new(false),
        played: AtomicU64::new(0),
        reference_dropped: AtomicU64::new(0),
    });
    let reference = ReferenceReader { cons: ref_cons, rate_hz, shared: shared.clone() };
    (
        PlaybackQueue { prod, rate_hz, shared: shared.clone(), reference: Some(reference) },
        PlaybackDrain { cons, channels: channels.max(1) as usize, seen_gen: 0, shared, reference: ref_prod },
    )
}

impl PlaybackDrain {
    /// The device it feeds now has `channels` output channels (a reopened device).
    pub fn set_channels(&mut self, channels: u16) {
        self.channels = channels.max(1) as usize;
    }

    /// The playback callback: honours a pending stop (drops everything queued), pops mono
    /// samples into every channel of `out` and zero-fills what the ring cannot supply.
    /// Running dry while the worker flags the reply as streaming counts one underrun.
    /// Never blocks or allocates.
    pub fn fill_interleaved<T>(&mut self, out: &mut [T])
    where
        T: Sample + FromSample<f32>,
    {
        let gen = self.shared.stop_gen.load(Ordering::Acquire);
        if gen != self.seen_gen {
            self.cons.clear();
            self.seen_gen = gen;
            self.shared.cleared_gen.store(gen, Ordering::Release);
        }
        let ch = self.channels;
        let frames = out.len() / ch;
        let mut scratch = [0.0f32; 256];
        let mut written = 0;
        while written < frames {
            let want = (frames - written).min(scratch.len());
            let n = self.cons.pop_slice(&mut scratch[..want]);
            for (i, &v) in scratch[..n].iter().enumerate() {
                let s = T::from_sample(v);
                out[(written + i) * ch..(written + i + 1) * ch].fill(s);
            }
            let kept = self.reference.push_slice(&scratch[..n]);
            if kept < n {
                self.shared.reference_dropped.fetch_add((n - kept) as u64, Ordering::Relaxed);
            }
            written += n;
            if n < want {
                break;
            }
        }
        out[written * ch..].fill(T::EQUILIBRIUM);
        let silent = frames - written;
        let kept = self.reference.push_iter(std::iter::repeat_n(0.0f32, silent));
        if kept < silent {
            self.shared.reference_dropped.fetch_add((silent - kept) as u64, Ordering::Relaxed);
        }
        self.shared.played.fetch_add(written as u64, Ordering::Relaxed);
        if written < frames && self.shared.streaming.load(Ordering::Relaxed) {
            self.shared.counters.count_underrun();
        }
    }
}

impl PlaybackQueue {
    /// Sample rate the ring plays at, in Hz.
    pub fn rate_hz(&self) -> u32 {
        self.rate_hz
    }

    /// The echo reference (what the callback plays, sample for sample, from the stream's
    /// start); None after the first call. Take it before the device has run for
    /// [`REFERENCE_RING_S`] seconds, or the newest copies are dropped (and counted).
    pub fn take_reference(&mut self) -> Option<ReferenceReader> {
        self.reference.take()
    }

    /// A handle that stops and resumes this queue's playback.
    pub fn control(&self) -> PlaybackControl {
        PlaybackControl { shared: self.shared.clone() }
    }

    /// Samples waiting to be played.
    pub fn queued(&self) -> usize {
        self.prod.occupied_len()
    }

    /// Pushes what fits without waiting; returns the number of samples taken. While
    /// playback is stopped everything is taken and dropped; while a stop is still pending in
    /// the callback nothing is taken.
    pub fn push(&mut self, samples: &[f32]) -> usize {
        if self.shared.gate_closed.load(Ordering::Acquire) {
            return samples.len();
        }
        if self.shared.stop_gen.load(Ordering::Acquire) != self.shared.cleared_gen.load(Ordering::Acquire) {
            return 0;
        }
        self.prod.push_slice(samples)
    }

    /// Pushes all of `samples`, waiting (in 5 ms sleeps) while the ring is full. Gives up
    /// when playback is stopped, or when no sample was taken for `stall_timeout`.
    pub fn push_all(&mut self, mut samples: &[f32], stall_timeout: Duration) -> PushOutcome {
        let mut last_progress = Instant::now();
        loop {
            if self.shared.gate_closed.load(Ordering::Acquire) {
                return PushOutcome::Stopped;
            }
            let n = self.push(samples);
            samples = &samples[n..];
            if samples.is_empty() {
                return PushOutcome::Queued;
            }
            if n > 0 {
                last_progress = Instant::now();
            } else if last_progress.elapsed() > stall_timeout {
                return PushOutcome::Stalled;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl PlaybackControl {
    /// Stops playback now: the callback drops everything queued at its next call (one device
    /// period, ~10-20 ms), and pushes are dropped until [`PlaybackControl::resume`].
    pub fn stop(&self) {
        self.shared.gate_closed.store(true, Ordering::Release);
        self.shared.stop_gen.fetch_add(1, Ordering::AcqRel);
        self.shared.streaming.store(false, Ordering::Relaxed);
    }

    /// Accepts pushed audio again (the next reply).
    pub fn resume(&self) {
        self.shared.gate_closed.store(false, Ordering::Release);
    }

    /// True between [`PlaybackControl::stop`] and [`PlaybackControl::resume`].
    pub fn is_stopped(&self) -> bool {
        self.shared.gate_closed.load(Ordering::Acquire)
    }

    /// Declares whether more audio of the current reply is being produced right now (so
    /// that running dry is an underrun, not the end of the reply).
    pub fn set_streaming(&self, on: bool) {
        self.shared.streaming.store(on, Ordering::Relaxed);
    }

    /// Mono samples of real (not zero-filled) audio played so far.
    pub fn played_samples(&self) -> u64 {
        self.shared.played.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_downmixes_and_counts_overruns() {
        let counters = AudioCounters::new();
        let (mut feed, mut reader) = capture_ring(48_000, 2, 4, counters.clone());
        feed.push_interleaved(&[1.0f32, 0.0, 0.5, 0.5, -1.0, 1.0]);
        assert_eq!(counters.overruns(), 0);
        // 3 frames in, room for 1 more: the second block overflows.
        feed.push_interleaved(&[0.2f32, 0.2, 0.4, 0.4]);
        assert_eq!(counters.overruns(), 1);
        let mut out = [9.0f32; 8];
        assert_eq!(reader.read(&mut out), 4);
        assert_eq!(&out[..4], &[0.5, 0.5, 0.0, 0.2]);
        assert!(!reader.is_ended());
        feed.end();
        assert!(reader.is_ended());
    }

    #[test]
    fn capture_converts_integer_samples() {
        let (mut feed, mut reader) = capture_ring(16_000, 1, 8, AudioCounters::new());
        feed.push_interleaved(&[i16::MAX, 0, i16::MIN]);
        let mut out = [0.0f32; 3];
        assert_eq!(reader.read(&mut out), 3);
        assert!((out[0] - 1.0).abs() < 1e-3 && out[1] == 0.0 && (out[2] + 1.0).abs() < 1e-3, "{out:?}");
    }

    #[test]
    fn playback_copies_to_every_channel_and_zero_fills() {
        let counters = AudioCounters::new();
        let (mut q, mut drain) = playback_ring(48_000, 2, 16, counters.clone());
        assert_eq!(q.push(&[0.5, -0.5]), 2);
        let mut out = [7.0f32; 6];
        drain.fill_interleaved(&mut out);
        assert_eq!(out, [0.5, 0.5, -0.5, -0.5, 0.0, 0.0]);
        // Running dry between replies is not an underrun...
        assert_eq!(counters.underruns(), 0);
        // ...but it is while the reply is still being produced.
        q.control().set_streaming(true);
        drain.fill_interleaved(&mut out);
        assert_eq!(counters.underruns(), 1);
        assert_eq!(q.control().played_samples(), 2);
    }

    #[test]
    fn stop_drops_queued_audio_until_resume() {
        let (mut q, mut drain) = playback_ring(16_000, 1, 64, AudioCounters::new());
        let ctl = q.control();
        assert_eq!(q.push(&[0.25; 10]), 10);
        ctl.stop();
        // Pushed while stopped: taken and dropped.
        assert_eq!(q.push(&[0.5; 4]), 4);
        assert_eq!(q.push_all(&[0.5; 4], Duration::from_millis(50)), PushOutcome::Stopped);
        ctl.resume();
        // The callback has not cleared the ring yet: nothing is taken before it does.
        assert_eq!(q.push(&[0.75; 4]), 0);
        let mut out = [1.0f32; 12];
        drain.fill_interleaved(&mut out);
        assert_eq!(out, [0.0; 12], "stopped audio played");
        assert_eq!(q.push(&[0.75; 4]), 4);
        drain.fill_interleaved(&mut out[..4]);
        assert_eq!(&out[..4], &[0.75; 4]);
    }

    #[test]
    fn the_reference_holds_every_sample_played_zero_fill_included() {
        let (mut q, mut drain) = playback_ring(16_000, 2, 16, AudioCounters::new());
        let mut r = q.take_reference().unwrap();
        assert!(q.take_reference().is_none());
        q.push(&[0.5, -0.25]);
        let mut out = [1.0f32; 8];
        drain.fill_interleaved(&mut out);
        let mut got = [9.0f32; 8];
        assert_eq!(r.read(&mut got), 4, "4 frames played: 4 reference samples");
        assert_eq!(&got[..4], &[0.5, -0.25, 0.0, 0.0]);
        assert_eq!(r.dropped(), 0);
    }

    #[test]
    fn push_all_reports_a_stalled_device() {
        let (mut q, _drain) = playback_ring(16_000, 1, 4, AudioCounters::new());
        assert_eq!(q.push_all(&[0.1; 8], Duration::from_millis(20)), PushOutcome::Stalled);
        assert_eq!(q.queued(), 4);
    }
}
