//! Freed memory goes back to the system after connections end. glibc's allocator keeps the
//! heap it grew for a burst (a thousand hostile connections, a flood of large frames) in its
//! per-thread arenas long after the connections are gone, so a gateway's RSS stays at its peak;
//! `malloc_trim(0)` returns the free pages. It runs on a blocking thread, at most once per
//! [`TRIM_INTERVAL`] and only when connections ended since the last trim. Other C libraries
//! (musl) return memory on their own: there it does nothing.
//!
//! `malloc_trim` cannot reach glibc's per-thread caches (tcache: up to 7 freed chunks per size
//! class per thread), and those freed chunks keep scattered pages resident: after a burst of a
//! thousand connections 1.5–4.5 MiB stayed above the baseline (measured 2026-12-03). The
//! gateway's service unit therefore starts it with the tcache off
//! ([`SERVICE_GLIBC_TUNABLES`]); with it the RSS returns to its baseline after the burst.

use std::time::Duration;

/// The `GLIBC_TUNABLES` value `configs/firstword-cloud.service` starts the gateway with:
/// no per-thread caches, so freed memory can go back to the system (see the module docs).
/// glibc reads it at process start only; `firstword-lab bench gateway-abuse` runs itself
/// again with it to measure the gateway as deployed.
pub const SERVICE_GLIBC_TUNABLES: &str = "glibc.malloc.tcache_count=0";

/// How often the gateway looks whether to trim.
pub(crate) const TRIM_INTERVAL: Duration = Duration::from_secs(5);

/// Counts ended connections and trims when some ended since the last trim.
#[derive(Debug, Default)]
pub(crate) struct Trimmer {
    ended: u64,
    trimmed_at: u64,
}

impl Trimmer {
    /// A connection task ended.
    pub(crate) fn connection_ended(&mut self) {
        self.ended += 1;
    }

    /// The interval elapsed: trim if connections ended since the last trim. Returns whether
    /// it trimmed.
    pub(crate) fn tick(&mut self) -> bool {
        if self.ended == self.trimmed_at {
            return false;
        }
        self.trimmed_at = self.ended;
        tokio::task::spawn_blocking(release_free_memory);
        true
    }
}

/// Returns free heap pages to the system (glibc); a no-op elsewhere.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks and releases the allocator's own free lists; it takes
    // the arena locks itself and may be called from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gateway_service_starts_with_these_tunables() {
        let unit = include_str!("../../../configs/firstword-cloud.service");
        let line = format!("Environment=GLIBC_TUNABLES={SERVICE_GLIBC_TUNABLES}");
        assert!(unit.lines().any(|l| l.trim() == line), "configs/firstword-cloud.service lacks {line}");
    }

    #[tokio::test]
    async fn trims_only_after_connections_ended() {
        let mut t = Trimmer::default();
        assert!(!t.tick(), "nothing ended yet");
        t.connection_ended();
        t.connection_ended();
        assert!(t.tick());
        assert!(!t.tick(), "nothing new since the last trim");
        t.connection_ended();
        assert!(t.tick());
    }
}
