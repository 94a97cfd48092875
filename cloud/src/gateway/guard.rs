//! Admission control at accept: per-address connection counts, the failed-auth
//! throttle, and a token bucket for requests within a session.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Most addresses the failed-auth table remembers; beyond it new failures are
/// still counted in the stats and logged, but not remembered (bounded memory
/// under a flood from many addresses).
const MAX_TRACKED_ADDRESSES: usize = 65_536;
/// The failed-auth window.
const AUTH_WINDOW: Duration = Duration::from_secs(60);

/// Open connections per IP address.
#[derive(Debug, Default)]
pub(crate) struct ConnCounts {
    counts: Mutex<HashMap<IpAddr, usize>>,
}

/// Holds one connection's place in [`ConnCounts`]; released on drop.
#[derive(Debug)]
pub(crate) struct ConnSlot {
    owner: Arc<ConnCounts>,
    ip: IpAddr,
}

impl ConnCounts {
    /// Take a slot for `ip`, or `None` if it already has `cap` connections
    /// (`cap == 0`: no cap).
    pub(crate) fn acquire(self: &Arc<Self>, ip: IpAddr, cap: usize) -> Option<ConnSlot> {
        let mut m = self.counts.lock().ok()?;
        let n = m.entry(ip).or_insert(0);
        if cap > 0 && *n >= cap {
            return None;
        }
        *n += 1;
        Some(ConnSlot { owner: self.clone(), ip })
    }

    /// Open connections from `ip` (tests).
    #[cfg(test)]
    pub(crate) fn count(&self, ip: IpAddr) -> usize {
        self.counts.lock().map(|m| m.get(&ip).copied().unwrap_or(0)).unwrap_or(0)
    }
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        if let Ok(mut m) = self.owner.counts.lock() {
            if let Some(n) = m.get_mut(&self.ip) {
                *n -= 1;
                if *n == 0 {
                    m.remove(&self.ip);
                }
            }
        }
    }
}

/// Failed `hello`s per address in a sliding minute.
#[derive(Debug, Default)]
pub(crate) struct AuthThrottle {
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

impl AuthThrottle {
    /// Record a failed `hello` from `ip` at `now`.
    pub(crate) fn record(&self, ip: IpAddr, now: Instant) {
        let Ok(mut m) = self.failures.lock() else {
            return;
        };
        if m.len() >= MAX_TRACKED_ADDRESSES && !m.contains_key(&ip) {
            m.retain(|_, (_, last)| now.duration_since(*last) < AUTH_WINDOW);
            if m.len() >= MAX_TRACKED_ADDRESSES {
                return;
            }
        }
        let e = m.entry(ip).or_insert((0, now));
        if now.duration_since(e.1) >= AUTH_WINDOW {
            e.0 = 0;
        }
        e.0 = e.0.saturating_add(1);
        e.1 = now;
    }

    /// Whether `ip` had at least `limit` failures, the last one less than a minute
    /// before `now` (`limit == 0`: never).
    pub(crate) fn blocked(&self, ip: IpAddr, limit: u32, now: Instant) -> bool {
        if limit == 0 {
            return false;
        }
        let Ok(m) = self.failures.lock() else {
            return false;
        };
        m.get(&ip).is_some_and(|(n, last)| *n >= limit && now.duration_since(*last) < AUTH_WINDOW)
    }
}

/// Token bucket: `rate` tokens per second up to `burst`.
#[derive(Debug, Clone)]
pub(crate) struct Bucket {
    tokens: f64,
    rate: f64,
    burst: f64,
    last: Instant,
}

impl Bucket {
    /// A full bucket.
    pub(crate) fn new(rate: f64, burst: u32, now: Instant) -> Self {
        Self { tokens: burst as f64, rate, burst: burst as f64, last: now }
    }

    /// Take one token at `now` if there is one.
    pub(crate) fn take(&mut self, now: Instant) -> bool {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + dt * self.rate).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_address_cap_and_release() {
        let c = Arc::new(ConnCounts::default());
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let a = c.acquire(ip, 2).unwrap();
        let _b = c.acquire(ip, 2).unwrap();
        assert!(c.acquire(ip, 2).is_none());
        assert!(c.acquire("10.0.0.2".parse().unwrap(), 2).is_some());
        drop(a);
        assert_eq!(c.count(ip), 1);
        assert!(c.acquire(ip, 2).is_some());
    }

    #[test]
    fn auth_throttle_blocks_for_a_minute_after_the_limit() {
        let t = AuthThrottle::default();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(!t.blocked(ip, 3, t0));
            t.record(ip, t0);
        }
        assert!(t.blocked(ip, 3, t0 + Duration::from_secs(59)));
        assert!(!t.blocked(ip, 3, t0 + Duration::from_secs(61)));
        assert!(!t.blocked(ip, 0, t0), "0 = no throttle");
    }

    #[test]
    fn bucket_allows_the_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut b = Bucket::new(2.0, 3, t0);
        assert!((0..3).all(|_| b.take(t0)));
        assert!(!b.take(t0));
        assert!(b.take(t0 + Duration::from_millis(500)));
        assert!(!b.take(t0 + Duration::from_millis(500)));
    }
}
