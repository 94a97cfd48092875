//! The config tables of `firstword run` that belong to the daemon itself: `[metrics]` (the
//! Prometheus endpoint) and `[log]` (what may be logged). `[audio]` is the audio stage's
//! ([`audio::settings::AudioSection`]).

use std::net::SocketAddr;

use crate::config::ConfigError;
use serde::Deserialize;

/// `[metrics]`: Prometheus text exposition over HTTP.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSection {
    /// `HOST:PORT` to serve `/metrics` on (keep it on localhost); empty or absent = off.
    /// Port 0 picks a free port (printed at start-up).
    pub listen: Option<String>,
}

impl MetricsSection {
    /// The address to listen on, if metrics are on.
    pub fn addr(&self) -> Result<Option<SocketAddr>, ConfigError> {
        match self.listen.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some(s) => match s.parse::<SocketAddr>() {
                Ok(a) => Ok(Some(a)),
                Err(_) => Err(ConfigError::invalid(
                    "metrics.listen",
                    format!(" = {s:?} (need HOST:PORT with a numeric host, e.g. \"127.0.0.1:9464\", or \"\" for off)"),
                )),
            },
        }
    }

    /// Range checks; messages name the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.addr().map(|_| ())
    }
}

/// `[log]`: what the daemon may write to its log.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSection {
    /// Log what was said and answered (transcript, opener, continuation). Off by default:
    /// the journal then holds timings and counts only.
    pub transcripts: bool,
}
