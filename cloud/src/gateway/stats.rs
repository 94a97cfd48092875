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
            handoff_correction_rate: if total == 0 {
                0.0
            } else {
                repairs as f64 / total as f64
            },
        }
    }

    pub(crate) fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}
