//! Freed memory goes back to the system after connections end. glibc's allocator keeps the
//! heap it grew for a burst (a thousand hostile connections, a flood of large frames) in its
//! per-thread arenas long after the connections are gone, so a gateway's RSS stays at its peak;
//! `malloc_trim(0)` returns the free pages. It runs on a blocking thread, at most once per
//! [`TRIM_INTERVAL`] and only when connections ended since the last trim. Other C libraries
//! (musl) return memory on their own: there it does nothing.

use std::time::Duration;

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
