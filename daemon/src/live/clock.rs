//! The live loop's clock: ms since the audio devices started. The listener's VAD positions
//! (16 kHz samples since the microphone's first sample) are on the same clock, up to the
//! capture latency (one device period plus the ring's fill).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The stream clock.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    t0: Instant,
}

impl Clock {
    /// Starts the clock now (call when the devices start).
    pub fn start() -> Self {
        Self { t0: Instant::now() }
    }

    /// Now, in ms since the start.
    pub fn now_ms(&self) -> f64 {
        self.ms_of(Instant::now())
    }

    /// `t` in ms since the start (0 for earlier instants).
    pub fn ms_of(&self, t: Instant) -> f64 {
        t.saturating_duration_since(self.t0).as_secs_f64() * 1000.0
    }
}

/// Liveness of the two worker threads, for the systemd watchdog.
#[derive(Debug)]
pub struct Heartbeat {
    clock: Clock,
    conversation_ms: AtomicU64,
    listener_ms: AtomicU64,
}

/// A listener heartbeat that never goes stale (the listener finished normally).
const FOREVER: u64 = u64::MAX;

impl Heartbeat {
    /// Both threads alive as of now.
    pub fn new(clock: Clock) -> Arc<Self> {
        Arc::new(Self { clock, conversation_ms: AtomicU64::new(0), listener_ms: AtomicU64::new(0) })
    }

    /// The conversation loop is alive.
    pub fn conversation(&self) {
        self.conversation_ms.store(self.clock.now_ms() as u64, Ordering::Relaxed);
    }

    /// The listener is alive.
    pub fn listener(&self) {
        self.listener_ms.store(self.clock.now_ms() as u64, Ordering::Relaxed);
    }

    /// The listener ended normally (its input ended): it no longer has to beat.
    pub fn listener_done(&self) {
        self.listener_ms.store(FOREVER, Ordering::Relaxed);
    }

    /// True when both threads beat within `max_age`.
    pub fn fresh(&self, max_age: Duration) -> bool {
        let now = self.clock.now_ms() as u64;
        let max = max_age.as_millis() as u64;
        let ok = |beat: u64| beat == FOREVER || now.saturating_sub(beat) <= max;
        ok(self.conversation_ms.load(Ordering::Relaxed)) && ok(self.listener_ms.load(Ordering::Relaxed))
    }
}
