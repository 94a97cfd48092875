//! Shared gateway counters (cheap atomics), including the paper's handoff
//! correction rate (share of continuations that had to repair the opener).

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

/// Live counters, shared by all sessions.
#[derive(Debug, Default)]
pub struct GatewayStats {
    pub(crate) sessions_active: AtomicU64,
    pub(crate) sessions_total: AtomicU64,
    pub(crate) sessions_rejected: AtomicU64,
    pub(crate) requests_total: AtomicU64,
    pub(crate) requests_completed: AtomicU64,
    pub(crate) requests_cancelled: AtomicU64,
    pub(crate) requests_failed: AtomicU64,
    pub(crate) repairs: AtomicU64,
    pub(crate) protocol_errors: AtomicU64,
    pub(crate) connections_refused: AtomicU64,
    pub(crate) auth_failures: AtomicU64,
    pub(crate) slow_readers_dropped: AtomicU64,
    pub(crate) half_open_closed: AtomicU64,
    pub(crate) rate_limited: AtomicU64,
    pub(crate) requests_panicked: AtomicU64,
}

/// A consistent-enough copy of the counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct StatsSnapshot {
    /// Open sessions now.
    pub sessions_active: u64,
    /// Sessions that completed `hello` since start.
    pub sessions_total: u64,
    /// Connections refused (bad token, version, too many sessions, no hello).
    pub sessions_rejected: u64,
    /// `continue` requests accepted.
    pub requests_total: u64,
    /// Requests that ended with `stop` or `length`.
    pub requests_completed: u64,
    /// Requests cancelled (by `cancel` or a vanished client).
    pub requests_cancelled: u64,
    /// Requests that ended with a backend error.
    pub requests_failed: u64,
    /// Requests whose continuation began a recovery (`repair` sent).
    pub repairs: u64,
    /// Error frames sent for bad frames, unknown types, oversize, etc.
    pub protocol_errors: u64,
    /// Connections closed at accept (per-address cap, auth throttle, or over the
    /// session limit with no room left even to say so).
    pub connections_refused: u64,
    /// `hello`s with a bad token or version.
    pub auth_failures: u64,
    /// Sessions dropped because the client stopped reading (write deadline passed).
    pub slow_readers_dropped: u64,
    /// Sessions closed because nothing, not even a pong, arrived in time.
    pub half_open_closed: u64,
    /// `continue`s refused by the per-session rate limit.
    pub rate_limited: u64,
    /// Requests that ended because their task panicked (a bug; the session lives on).
    pub requests_panicked: u64,
    /// `repairs / requests_total` (0 when no requests): the handoff correction
    /// rate (paper: 3.7 % at 4-word openers, 8.4 % at 8).
    pub handoff_correction_rate: f64,
}

impl GatewayStats {
    /// Read all counters.
    pub fn snapshot(&self) -> StatsSnapshot {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let total = g(&self.requests_total);
        let repairs = g(&self.repairs);
        StatsSnapshot {
            sessions_active: g(&self.sessions_active),
            sessions_total: g(&self.sessions_total),
            sessions_rejected: g(&self.sessions_rejected),
            requests_total: total,
            requests_completed: g(&self.requests_completed),
            requests_cancelled: g(&self.requests_cancelled),
            requests_failed: g(&self.requests_failed),
            repairs,
            protocol_errors: g(&self.protocol_errors),
            connections_refused: g(&self.connections_refused),
            auth_failures: g(&self.auth_failures),
            slow_readers_dropped: g(&self.slow_readers_dropped),
            half_open_closed: g(&self.half_open_closed),
            rate_limited: g(&self.rate_limited),
            requests_panicked: g(&self.requests_panicked),
            handoff_correction_rate: if total == 0 { 0.0 } else { repairs as f64 / total as f64 },
        }
    }

    pub(crate) fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}
