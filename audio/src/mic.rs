//! What the listener hears: the microphone at 16 kHz with the speaker's echo cancelled
//! (AEC3, with what the speaker played as the time-aligned reference), optionally gated
//! half-duplex, and with the time a lost microphone was gone filled with silence so that
//! sample positions stay on the stream clock.
//!
//! Runs on the listener thread (never in an audio callback). Alignment: the playback
//! callback copies every sample it plays (silence included) into the reference ring, so
//! the `n`-th reference sample went out while the `n`-th capture sample came in, up to the
//! devices' fixed latencies, which AEC3's delay estimator finds.

use std::cell::RefCell;
use std::time::{Duration, Instant};

use crate::aec::{Convergence, EchoCanceller, Pairing, AEC_FRAME, AEC_RATE_HZ, LINEAR_LATENCY_SAMPLES, OUTPUT_LATENCY_SAMPLES};
use crate::device::{CaptureReader, DeviceError, ReferenceReader};
use crate::resample_stream::StreamResampler;

use crate::half_duplex::HalfDuplexGate;
use crate::settings::AudioSection;
use crate::AudioError;

thread_local! {
    /// The canceller of the thread that reads the microphone (the listener). It lives here
    /// because `aec3`'s processing graph is not `Send`: it is built on the thread that uses
    /// it, at the first frame, and never moves.
    static CANCELLER: RefCell<Option<EchoCanceller>> = const { RefCell::new(None) };
}

/// Cancels one frame with this thread's canceller (built at the first call): the full
/// output into `out`, the linear filter's into `linear`; false when AEC3 gave no linear
/// output for this frame (`linear` untouched).
fn cancel_frame(mic: &[f32], reference: &[f32], out: &mut [f32], linear: &mut [f32]) -> Result<bool, crate::aec::AecError> {
    CANCELLER.with_borrow_mut(|slot| {
        if slot.is_none() {
            *slot = Some(EchoCanceller::new(None)?);
        }
        let Some(c) = slot.as_mut() else {
            return Ok(false);
        };
        c.process(mic, reference, out)?;
        Ok(c.linear_into(linear))
    })
}

/// The microphone is held back at most this long waiting for the reference, in ms.
const MAX_REFERENCE_WAIT_MS: usize = 200;
/// Silence inserted per read for a lost microphone's gap, in device samples (bounded work
/// per call; a long gap is filled over several reads).
const GAP_CHUNK: usize = 4_800;

/// First wait before reopening a lost microphone; it doubles up to [`REOPEN_MAX`].
pub const REOPEN_FIRST: Duration = Duration::from_millis(250);
/// Longest wait between reopen attempts. A device plugged back in is in use within this
/// long: with 4 s, cli_echo's speaker, back 1 s before the next question, was reopened
/// 2.8 s after it returned, after the question had begun (2026-12-06). An open attempt
/// costs well under a millisecond of CPU.
pub const REOPEN_MAX: Duration = Duration::from_secs(1);

/// Opens the microphone again (drops the old stream first); returns its new ring.
pub type Reopen = Box<dyn FnMut() -> Result<CaptureReader, DeviceError> + Send>;

/// Exponential backoff between reopen attempts (pure: the caller passes the time).
#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    wait: Duration,
    next: Option<Instant>,
    /// Failed attempts since the loss.
    failures: u32,
}

impl Backoff {
    /// Waits `first`, then twice as long each failure, at most `max`.
    pub fn new(first: Duration, max: Duration) -> Self {
        Self { first, max, wait: first, next: None, failures: 0 }
    }

    /// True when an attempt is due at `now` (the first one is due `first` after the loss).
    pub fn due(&mut self, now: Instant) -> bool {
        let next = *self.next.get_or_insert(now + self.first);
        now >= next
    }

    /// The attempt at `now` failed: the next waits longer. Returns the failures since the
    /// loss (1 for the first).
    pub fn failed(&mut self, now: Instant) -> u32 {
        self.wait = (self.wait * 2).min(self.max);
        self.next = Some(now + self.wait);
        self.failures = self.failures.saturating_add(1);
        self.failures
    }

    /// Whether failure number `n` is worth a warning: the 1st, 2nd, 4th, 8th, … (a device
    /// gone for an hour logs 12 warnings at the 1 s cap, not 3,600; the rest go to debug).
    pub fn worth_reporting(n: u32) -> bool {
        n.is_power_of_two()
    }

    /// Logs failed attempt `n` to reopen `device` ("microphone", "speaker") with its error:
    /// a warning when [`Backoff::worth_reporting`], else debug.
    pub fn log_failure(device: &str, n: u32, e: &dyn std::fmt::Display) {
        if Self::worth_reporting(n) {
            tracing::warn!(attempts = n, "{device} still gone: {e}");
        } else {
            tracing::debug!(attempts = n, "{device} still gone: {e}");
        }
    }

    /// The device is back: the next loss starts from the first wait again.
    pub fn reset(&mut self) {
        self.wait = self.first;
        self.next = None;
        self.failures = 0;
    }
}

/// A lost microphone being reopened.
struct Reopening {
    reopen: Reopen,
    backoff: Backoff,
    /// When the loss was noticed (its time is filled with silence once it is back).
    since: Option<Instant>,
}

/// The listener's microphone (see the module docs).
pub struct Mic {
    reader: CaptureReader,
    /// Real devices: how to reopen the microphone when it goes away.
    reopening: Option<Reopening>,
    /// Silence still owed for the time a reopened microphone was gone, device samples.
    owed_silence: u64,
    /// Echo cancellation or half-duplex need the reference; plain capture does not.
    processing: Option<Processing>,
    capture_rs: StreamResampler,
    raw: Vec<f32>,
    s16: Vec<f32>,
    /// Processed 16 kHz samples not yet handed out.
    ready: Ready,
    /// Lost samples already filled with silence.
    gap_filled: u64,
}

struct Processing {
    reference: ReferenceReader,
    reference_rs: StreamResampler,
    pairing: Pairing,
    /// Echo cancellation on (the canceller itself is thread-local: see [`CANCELLER`]).
    aec: bool,
    gate: Option<HalfDuplexGate>,
    cancelled: Vec<f32>,
    /// The canceller's linear output of the current frame (Whisper's stream).
    linear: Vec<f32>,
    /// How much audible reference the canceller has seen.
    convergence: Convergence,
    aec_failed: bool,
    /// The speaker was gone at the last read (its return realigns the reference).
    speaker_was_lost: bool,
    /// Reference silence still owed to microphone samples of a speaker outage, 16 kHz.
    reference_owed: u64,
    /// Samples still to drop from the start of the VAD's and Whisper's streams: the
    /// canceller's latencies, so that both stay on the capture clock (positions are shared
    /// with the push-to-talk key and the stream's timeline; Whisper-tiny's transcript of
    /// an utterance changes with a 4 ms shift of its boundaries).
    skip: (usize, usize),
}

/// Drops up to `n` samples of `buf` from position `from` on; returns how many it dropped.
fn drop_from(buf: &mut Vec<f32>, from: usize, n: usize) -> usize {
    let k = n.min(buf.len() - from);
    buf.drain(from..from + k);
    k
}

/// Processed 16 kHz audio waiting to be read: the VAD's stream and Whisper's, same length.
#[derive(Default)]
struct Ready {
    vad: Vec<f32>,
    asr: Vec<f32>,
}

impl Ready {
    /// The same samples for both streams.
    fn both(&mut self, s: &[f32]) {
        self.vad.extend_from_slice(s);
        self.asr.extend_from_slice(s);
    }
}

impl Mic {
    /// The microphone as `[audio]` asks: `reference` is the speaker's (needed when echo
    /// cancellation or half-duplex is on). Errors: resampler or canceller set-up.
    /// With `reopen`, a microphone whose stream fails is reopened with backoff.
    pub fn new(
        reader: CaptureReader,
        reference: Option<ReferenceReader>,
        reopen: Option<Reopen>,
        a: &AudioSection,
    ) -> Result<Self, AudioError> {
        let capture_rs = StreamResampler::new(reader.rate_hz(), AEC_RATE_HZ)?;
        let processing = match reference {
            Some(reference) if a.echo_cancellation || a.half_duplex => {
                let reference_rs = StreamResampler::new(reference.rate_hz(), AEC_RATE_HZ)?;
                // No delay hint, even for the simulated path whose delay is known: the daemon
                // must find it the way it would on real hardware. Built once here to fail
                // at start-up rather than on the listener thread.
                if a.echo_cancellation {
                    drop(EchoCanceller::new(None).map_err(|e| AudioError::EchoCanceller(e.to_string()))?);
                }
                let aec = a.echo_cancellation;
                let gate = a.half_duplex.then(|| HalfDuplexGate::new(a.half_duplex_onset_dbfs, a.half_duplex_onset_ms));
                Some(Processing {
                    reference,
                    reference_rs,
                    pairing: Pairing::new(MAX_REFERENCE_WAIT_MS * AEC_RATE_HZ as usize / 1000),
                    aec,
                    gate,
                    cancelled: vec![0.0; AEC_FRAME],
                    linear: vec![0.0; AEC_FRAME],
                    convergence: Convergence::default(),
                    aec_failed: false,
                    speaker_was_lost: false,
                    reference_owed: 0,
                    skip: match (aec, a.half_duplex) {
                        (false, _) => (0, 0),
                        // Half-duplex gates the suppressed output and hands it to both.
                        (true, true) => (OUTPUT_LATENCY_SAMPLES, OUTPUT_LATENCY_SAMPLES),
                        (true, false) => (OUTPUT_LATENCY_SAMPLES, LINEAR_LATENCY_SAMPLES),
                    },
                })
            }
            _ => None,
        };
        let reopening = reopen.map(|reopen| Reopening { reopen, backoff: Backoff::new(REOPEN_FIRST, REOPEN_MAX), since: None });
        Ok(Self {
            reader,
            reopening,
            owed_silence: 0,
            processing,
            capture_rs,
            raw: vec![0.0; 4096],
            s16: Vec::with_capacity(4096),
            ready: Ready { vad: Vec::with_capacity(8192), asr: Vec::with_capacity(8192) },
            gap_filled: 0,
        })
    }

    /// True when the microphone is echo-cancelled and the canceller has converged (seen
    /// [`crate::aec::CONVERGED_AFTER_S`] of audible reference): the VAD's barge-in onset
    /// profile is safe from the reply's residual echo only then.
    pub fn echo_converged(&self) -> bool {
        self.processing.as_ref().is_some_and(|p| p.aec && !p.aec_failed && p.convergence.converged())
    }

    /// Sample rate of what [`Mic::read`] returns, in Hz (16 kHz).
    pub fn rate_hz(&self) -> u32 {
        AEC_RATE_HZ
    }

    /// True when the capture source ended and everything was handed out.
    pub fn is_ended(&self) -> bool {
        self.reader.is_ended() && self.ready.vad.is_empty()
    }

    /// Moves up to `vad.len()` processed 16 kHz samples into `vad` (the VAD's stream) and
    /// the same span of Whisper's stream into `asr` (at least as long as `vad`); returns
    /// how many. Never blocks. A canceller failure is logged once and the microphone passes
    /// through.
    pub fn read(&mut self, vad: &mut [f32], asr: &mut [f32]) -> usize {
        if self.ready.vad.is_empty() {
            if let Err(e) = self.pull() {
                tracing::error!("microphone processing: {e:#}");
            }
        }
        let n = vad.len().min(asr.len()).min(self.ready.vad.len()).min(self.ready.asr.len());
        vad[..n].copy_from_slice(&self.ready.vad[..n]);
        asr[..n].copy_from_slice(&self.ready.asr[..n]);
        self.ready.vad.drain(..n);
        self.ready.asr.drain(..n);
        n
    }

    /// A lost microphone with a way to reopen it: tries when the backoff allows. True
    /// while it is still gone.
    fn reopen_if_lost(&mut self) -> bool {
        let Some(r) = self.reopening.as_mut() else {
            return false;
        };
        let counters = self.reader.counters().clone();
        if !counters.capture_lost() {
            return false;
        }
        let now = Instant::now();
        let since = *r.since.get_or_insert(now);
        if !r.backoff.due(now) {
            return true;
        }
        match (r.reopen)() {
            Ok(reader) => {
                let gone = since.elapsed();
                tracing::info!("microphone reopened after {:.1} s", gone.as_secs_f64());
                // Its time passes as silence: positions stay on the stream clock.
                self.owed_silence += (gone.as_secs_f64() * self.reader.rate_hz() as f64) as u64;
                if reader.rate_hz() != self.reader.rate_hz() {
                    match StreamResampler::new(reader.rate_hz(), AEC_RATE_HZ) {
                        Ok(rs) => self.capture_rs = rs,
                        Err(e) => tracing::error!("microphone resampler for the reopened device: {e}"),
                    }
                }
                self.reader = reader;
                self.gap_filled = 0;
                r.backoff.reset();
                r.since = None;
                counters.set_capture_lost(false);
                false
            }
            Err(e) => {
                Backoff::log_failure("microphone", r.backoff.failed(now), &e);
                true
            }
        }
    }

    /// Reads the device (and its lost-time gap), resamples, cancels, gates.
    fn pull(&mut self) -> Result<(), AudioError> {
        if self.reopen_if_lost() {
            return Ok(());
        }
        let lost = self.reader.lost_samples();
        let n = if lost > self.gap_filled || self.owed_silence > 0 {
            // The microphone was gone: its time passes as silence.
            let owed = (lost - self.gap_filled.min(lost)) + self.owed_silence;
            let k = (owed as usize).min(GAP_CHUNK).min(self.raw.len());
            let from_ring = (k as u64).min(lost.saturating_sub(self.gap_filled));
            self.gap_filled += from_ring;
            self.owed_silence -= k as u64 - from_ring;
            self.raw[..k].fill(0.0);
            k
        } else {
            self.reader.read(&mut self.raw)
        };
        self.s16.clear();
        if n > 0 {
            self.capture_rs.process(&self.raw[..n], &mut self.s16)?;
        }
        let Some(p) = self.processing.as_mut() else {
            self.ready.both(&self.s16);
            return Ok(());
        };
        p.pairing.push_mic(&self.s16);
        if p.speaker_was_lost && !self.reader.counters().playback_lost() {
            // Back since the last read. The reference ring holds only what was played since
            // the reopen, while microphone samples of the outage may still wait (in the
            // pairing and the capture ring: a listener busy when it came back). Silence is
            // owed for those, or the resumed reference would pair with them, ahead of its
            // echo, which the canceller cannot find (cli_echo under load, 2026-12-06).
            // `played` is read first: a period that completes in between then counts as
            // microphone only, erring toward a late reference, which AEC3's delay
            // estimate absorbs.
            let played = p.reference.available() as u64 * u64::from(AEC_RATE_HZ) / u64::from(p.reference.rate_hz());
            let waiting = self.reader.available() as u64 * u64::from(AEC_RATE_HZ) / u64::from(self.reader.rate_hz());
            p.reference_owed = (p.pairing.unpaired_mic() as u64 + waiting).saturating_sub(played);
            tracing::debug!(
                played,
                waiting,
                unpaired = p.pairing.unpaired_mic(),
                owed = p.reference_owed,
                "speaker back: reference realigned"
            );
            // A reopened speaker may be another device with another echo path: the
            // canceller must converge again before the VAD's sensitive barge-in onset
            // applies, or the echo it still leaks interrupts the reply (cli_echo: the
            // daemon heard its own "Sure." after a 5 s outage, 2026-12-06).
            p.convergence = Convergence::default();
            CANCELLER.with_borrow_mut(|slot| *slot = None);
        }
        if p.reference_owed > 0 {
            let owed = usize::try_from(p.reference_owed).unwrap_or(usize::MAX);
            p.reference_owed -= p.pairing.fill_reference_up_to(owed) as u64;
        }
        // The reference: as much as pairs with the microphone so far (device rate); none
        // while silence is still owed for microphone samples not read yet.
        let room = match p.reference_owed {
            0 => p.pairing.reference_room() * p.reference.rate_hz() as usize / AEC_RATE_HZ as usize,
            _ => 0,
        };
        let want = room.min(self.raw.len());
        let got = p.reference.read(&mut self.raw[..want]);
        self.s16.clear();
        if got > 0 {
            p.reference_rs.process(&self.raw[..got], &mut self.s16)?;
        }
        p.pairing.push_reference(&self.s16);
        p.speaker_was_lost = self.reader.counters().playback_lost();
        if p.speaker_was_lost {
            p.pairing.fill_reference();
        }
        let ready = &mut self.ready;
        let (aec, gate, cancelled, aec_failed) = (&p.aec, &mut p.gate, &mut p.cancelled, &mut p.aec_failed);
        let (linear_buf, skip, convergence) = (&mut p.linear, &mut p.skip, &mut p.convergence);
        p.pairing.drain_frames(|mic, reference| {
            let mut linear: Option<&[f32]> = None;
            convergence.push_reference(reference);
            let heard: &[f32] = if *aec && !*aec_failed {
                match cancel_frame(mic, reference, &mut cancelled[..], linear_buf) {
                    Ok(has_linear) => {
                        linear = has_linear.then_some(&linear_buf[..]);
                        &cancelled[..]
                    }
                    Err(e) => {
                        tracing::error!("echo cancellation off from now on: {e}");
                        *aec_failed = true;
                        mic
                    }
                }
            } else {
                mic
            };
            let (vad_from, asr_from) = (ready.vad.len(), ready.asr.len());
            match gate.as_mut() {
                // Half-duplex holds back and drops audio: both streams get its output.
                Some(g) => {
                    g.push(heard, reference, &mut ready.vad);
                    let (v, a) = (&ready.vad, &mut ready.asr);
                    a.extend_from_slice(&v[vad_from..]);
                }
                None => {
                    ready.vad.extend_from_slice(heard);
                    ready.asr.extend_from_slice(linear.unwrap_or(heard));
                }
            }
            skip.0 -= drop_from(&mut ready.vad, vad_from, skip.0);
            skip.1 -= drop_from(&mut ready.asr, asr_from, skip.1);
            Ok::<(), AudioError>(())
        })?;
        // The input ended: what waits for a reference that will not come is let through.
        if self.reader.is_ended() && self.ready.vad.is_empty() {
            let mut rest = Vec::new();
            p.pairing.flush_mic(&mut rest);
            self.ready.both(&rest);
        }
        Ok(())
    }
}

impl Drop for Mic {
    /// Drops this thread's canceller while the thread is still running: `aec3` returns its
    /// buffers to a thread-local pool on drop, which is gone once thread-local storage is
    /// being torn down (dropping the canceller then would abort the process).
    fn drop(&mut self) {
        let canceller = CANCELLER.try_with(|c| c.borrow_mut().take()).ok().flatten();
        drop(canceller);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::{capture_ring, AudioCounters};
    use std::sync::{Arc, Mutex};

    #[test]
    fn backoff_doubles_up_to_its_cap_and_resets() {
        let t0 = Instant::now();
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(300));
        assert!(!b.due(t0));
        assert!(b.due(t0 + Duration::from_millis(100)));
        assert_eq!(b.failed(t0 + Duration::from_millis(100)), 1);
        assert!(!b.due(t0 + Duration::from_millis(250)));
        assert!(b.due(t0 + Duration::from_millis(300)));
        assert_eq!(b.failed(t0 + Duration::from_millis(300)), 2);
        assert!(!b.due(t0 + Duration::from_millis(550)), "capped at 300 ms, not 400");
        assert!(b.due(t0 + Duration::from_millis(600)));
        b.reset();
        let t1 = t0 + Duration::from_secs(10);
        assert!(!b.due(t1));
        assert_eq!(b.failed(t1), 1, "a new loss counts from one");
    }

    #[test]
    fn failed_attempts_are_warned_about_at_powers_of_two() {
        let warned: Vec<u32> = (1..=3_600).filter(|&n| Backoff::worth_reporting(n)).collect();
        assert_eq!(warned, vec![1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1_024, 2_048]);
    }

    #[test]
    fn a_speaker_back_after_an_outage_starts_the_canceller_again() {
        use crate::device::playback_ring;
        let counters = AudioCounters::new();
        let (mut feed, reader) = capture_ring(16_000, 1, 32_000, counters.clone());
        let (mut queue, mut drain) = playback_ring(16_000, 1, 64_000, counters.clone());
        let reference = queue.take_reference();
        let a = AudioSection { echo_cancellation: true, ..Default::default() };
        let mut mic = Mic::new(reader, reference, None, &a).unwrap();
        let (mut out, mut asr, mut played) = (vec![0.0f32; 64_000], vec![0.0f32; 64_000], vec![0.0f32; 160]);
        let mut x = 1u32;
        // `ms` of 10 ms periods: the speaker plays noise (unless gone), the microphone hears
        // it at half amplitude, then the listener reads.
        let mut run = |ms: usize, speaker: bool, mic: &mut Mic| {
            for _ in 0..ms / 10 {
                if speaker {
                    let noise: Vec<f32> = (0..160)
                        .map(|_| {
                            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                            (x >> 8) as f32 / (1u32 << 24) as f32 * 0.4 - 0.2
                        })
                        .collect();
                    queue.push(&noise);
                    drain.fill_interleaved(&mut played);
                } else {
                    played.fill(0.0);
                }
                let heard: Vec<f32> = played.iter().map(|v| v * 0.5).collect();
                feed.push_interleaved(&heard);
                while mic.read(&mut out, &mut asr) > 0 {}
            }
        };
        run(2_500, true, &mut mic);
        assert!(mic.echo_converged(), "2.5 s of audible reference");
        counters.set_playback_lost(true);
        run(1_000, false, &mut mic);
        assert!(mic.echo_converged(), "the outage alone changes nothing");
        counters.set_playback_lost(false);
        run(500, true, &mut mic);
        assert!(!mic.echo_converged(), "back: the canceller starts again");
        run(2_000, true, &mut mic);
        assert!(mic.echo_converged(), "and converges again");
    }

    fn plain() -> AudioSection {
        AudioSection { echo_cancellation: false, ..Default::default() }
    }

    #[test]
    fn a_lost_microphone_is_reopened_and_its_time_filled_with_silence() {
        let counters = AudioCounters::new();
        let (_feed, reader) = capture_ring(16_000, 1, 16_000, counters.clone());
        let attempts = Arc::new(Mutex::new(0));
        let (a2, c2) = (attempts.clone(), counters.clone());
        let next_feed = Arc::new(Mutex::new(None));
        let nf = next_feed.clone();
        let reopen: Reopen = Box::new(move || {
            let mut n = a2.lock().unwrap();
            *n += 1;
            if *n == 1 {
                return Err(DeviceError::SimThread("still unplugged".into()));
            }
            let (mut feed, reader) = capture_ring(16_000, 1, 16_000, c2.clone());
            feed.push_interleaved(&[0.5f32; 160]);
            *nf.lock().unwrap() = Some(feed);
            Ok(reader)
        });
        let mut mic = Mic::new(reader, None, Some(reopen), &plain()).unwrap();
        mic.reopening.as_mut().unwrap().backoff = Backoff::new(Duration::ZERO, Duration::ZERO);
        counters.set_capture_lost(true);
        let (mut out, mut asr) = (vec![0.0f32; 64_000], vec![0.0f32; 64_000]);
        assert_eq!(mic.read(&mut out, &mut asr), 0, "first attempt fails");
        assert!(counters.capture_lost());
        std::thread::sleep(Duration::from_millis(20));
        let mut got = Vec::new();
        for _ in 0..50 {
            let n = mic.read(&mut out, &mut asr);
            assert_eq!(out[..n], asr[..n], "without echo cancellation both streams are the microphone");
            got.extend_from_slice(&out[..n]);
        }
        assert_eq!(*attempts.lock().unwrap(), 2);
        assert!(!counters.capture_lost(), "back");
        assert_eq!(counters.device_losses(), 1);
        let ones = got.iter().filter(|v| **v == 0.5).count();
        assert_eq!(ones, 160, "the reopened device's audio");
        let silent = got.iter().position(|v| *v == 0.5).unwrap();
        assert!(silent >= 320, "≥ 20 ms of silence for the time it was gone, got {silent}");
    }
}
