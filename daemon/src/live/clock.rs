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

/// Liveness of the two worker threads, for the systemd watchdog. A thread is alive when it
/// beat within the watchdog's limit, or when it declared a long step (Whisper on a long
/// utterance) with [`Heartbeat::busy`] and that step is still inside its budget: a busy
/// thread keeps the pings going, a stuck one (past its budget) stops them.
#[derive(Debug)]
pub struct Heartbeat {
    clock: Clock,
    conversation_ms: AtomicU64,
    /// The conversation loop's current step may run until here (ms; 0 = no step declared).
    conversation_busy_until_ms: AtomicU64,
    listener_ms: AtomicU64,
}

/// A long step of the conversation loop in progress; dropping it beats and ends the step.
#[must_use = "the step ends when the guard is dropped"]
pub struct BusyStep<'a>(&'a Heartbeat);

impl Drop for BusyStep<'_> {
    fn drop(&mut self) {
        self.0.conversation();
    }
}

/// A listener heartbeat that never goes stale (the listener finished normally).
const FOREVER: u64 = u64::MAX;

impl Heartbeat {
    /// Both threads alive as of now.
    pub fn new(clock: Clock) -> Arc<Self> {
        Arc::new(Self {
            clock,
            conversation_ms: AtomicU64::new(0),
            conversation_busy_until_ms: AtomicU64::new(0),
            listener_ms: AtomicU64::new(0),
        })
    }

    /// The conversation loop is alive (and any declared step is over).
    pub fn conversation(&self) {
        self.conversation_at(self.clock.now_ms() as u64);
    }

    fn conversation_at(&self, now_ms: u64) {
        self.conversation_ms.store(now_ms, Ordering::Relaxed);
        self.conversation_busy_until_ms.store(0, Ordering::Relaxed);
    }

    /// The conversation loop starts a step that may take up to `budget` (beyond the
    /// watchdog's limit): it counts as alive until the guard is dropped or the budget runs
    /// out, whichever comes first.
    pub fn busy(&self, budget: Duration) -> BusyStep<'_> {
        self.busy_at(self.clock.now_ms() as u64, budget);
        BusyStep(self)
    }

    fn busy_at(&self, now_ms: u64, budget: Duration) {
        self.conversation_ms.store(now_ms, Ordering::Relaxed);
        let until = now_ms.saturating_add(u64::try_from(budget.as_millis()).unwrap_or(u64::MAX));
        self.conversation_busy_until_ms.store(until, Ordering::Relaxed);
    }

    /// The listener is alive.
    pub fn listener(&self) {
        self.listener_ms.store(self.clock.now_ms() as u64, Ordering::Relaxed);
    }

    /// The listener ended normally (its input ended): it no longer has to beat.
    pub fn listener_done(&self) {
        self.listener_ms.store(FOREVER, Ordering::Relaxed);
    }

    /// True when both threads beat within `max_age` (the conversation loop: or is inside a
    /// declared step's budget).
    pub fn fresh(&self, max_age: Duration) -> bool {
        self.fresh_at(self.clock.now_ms() as u64, max_age)
    }

    fn fresh_at(&self, now_ms: u64, max_age: Duration) -> bool {
        let max = u64::try_from(max_age.as_millis()).unwrap_or(u64::MAX);
        let ok = |beat: u64| beat == FOREVER || now_ms.saturating_sub(beat) <= max;
        let busy = now_ms <= self.conversation_busy_until_ms.load(Ordering::Relaxed);
        (busy || ok(self.conversation_ms.load(Ordering::Relaxed))) && ok(self.listener_ms.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: Duration = Duration::from_secs(30);

    #[test]
    fn a_busy_step_keeps_the_pings_until_its_budget_runs_out() {
        let h = Heartbeat::new(Clock::start());
        h.conversation_at(1_000);
        h.listener_done(); // the listener is not the subject here
        assert!(h.fresh_at(31_000, LIMIT));
        assert!(!h.fresh_at(31_001, LIMIT), "a silent loop past the limit is stuck");
        // Whisper on a long utterance, declared for 90 s at t = 40 s.
        h.busy_at(40_000, Duration::from_secs(90));
        assert!(h.fresh_at(100_000, LIMIT), "busy, inside its budget: still alive");
        assert!(h.fresh_at(130_000, LIMIT));
        assert!(!h.fresh_at(130_001, LIMIT), "past its budget: stuck, the pings stop");
        // The step ends: an ordinary beat again, the budget is gone.
        h.conversation_at(120_000);
        assert!(h.fresh_at(150_000, LIMIT));
        assert!(!h.fresh_at(150_001, LIMIT));
    }

    #[test]
    fn a_stuck_listener_stops_the_pings_even_while_the_loop_is_busy() {
        let h = Heartbeat::new(Clock::start());
        h.listener_ms.store(0, Ordering::Relaxed);
        h.busy_at(0, Duration::from_secs(600));
        assert!(h.fresh_at(30_000, LIMIT));
        assert!(!h.fresh_at(30_001, LIMIT), "the listener stopped beating");
        h.listener_done();
        assert!(h.fresh_at(500_000, LIMIT), "a listener that finished never goes stale");
    }

    #[test]
    fn the_guard_ends_the_step() {
        let h = Heartbeat::new(Clock::start());
        h.listener_done();
        {
            let _step = h.busy(Duration::from_secs(3_600));
            assert!(h.conversation_busy_until_ms.load(Ordering::Relaxed) >= 3_600_000);
        }
        assert_eq!(h.conversation_busy_until_ms.load(Ordering::Relaxed), 0);
    }
}
