//! Gateway configuration, deserialized from TOML (`configs/cloud.toml`).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::backend::BackendConfig;
use crate::error::CloudError;

/// Top-level gateway settings.
///
/// ```toml
/// listen = "127.0.0.1:8787"
/// token = "change-me"
/// [backend]
/// kind = "scripted"
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// Address to listen on, `HOST:PORT` (port 0 picks a free port).
    pub listen: String,
    /// Shared secret every client must present in `hello.token`.
    pub token: String,
    /// Largest accepted text frame, bytes; larger frames get `frame_too_large`.
    #[serde(default = "default_max_frame_bytes")]
    pub max_frame_bytes: usize,
    /// Most concurrent sessions (connections); more get `too_many_sessions`.
    #[serde(default = "default_max_sessions")]
    pub max_sessions: usize,
    /// Most requests in flight on one session.
    #[serde(default = "default_max_requests_per_session")]
    pub max_requests_per_session: usize,
    /// A connection that has not sent a valid `hello` within this time is closed, ms.
    #[serde(default = "default_hello_timeout_ms")]
    pub hello_timeout_ms: u64,
    /// The continuation backend.
    pub backend: BackendConfig,
    /// Artificial latency for demos and benchmarks (absent: none).
    #[serde(default)]
    pub latency: Option<LatencyConfig>,
    /// PEM file with the server certificate chain (leaf first). With `tls_key` set
    /// too, the gateway speaks TLS itself and devices connect with `wss://`; absent:
    /// plain `ws://` (put a TLS proxy in front). Relative paths are relative to the
    /// working directory.
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    /// PEM file with the private key of `tls_cert` (PKCS#8, PKCS#1 or SEC1).
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
}

fn default_max_frame_bytes() -> usize {
    64 * 1024
}
fn default_max_sessions() -> usize {
    512
}
fn default_max_requests_per_session() -> usize {
    16
}
fn default_hello_timeout_ms() -> u64 {
    5_000
}

/// Shape of the first-delta delay distribution.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Distribution {
    /// Uniform in `[first_delta_ms - jitter, first_delta_ms + jitter]`.
    #[default]
    Uniform,
    /// Normal with mean `first_delta_ms` and standard deviation `jitter`, clipped at 0.
    Normal,
}

/// Injected latency (`[latency]` table), emulating a slow cloud (paper: 0.2–5 s
/// before the first token): the first delta is released no earlier than the
/// sampled delay after `continue` arrived, later deltas at most `tokens_per_s`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LatencyConfig {
    /// Mean delay before the first delta, ms.
    #[serde(default)]
    pub first_delta_ms: f64,
    /// Spread of that delay, ms (half-width for uniform, σ for normal).
    #[serde(default)]
    pub first_delta_jitter_ms: f64,
    /// Distribution of the delay.
    #[serde(default)]
    pub distribution: Distribution,
    /// Cap on the delta rate after the first one, deltas (≈ tokens) per second.
    #[serde(default)]
    pub tokens_per_s: Option<f64>,
}

impl GatewayConfig {
    /// Parse from TOML text.
    pub fn from_toml_str(text: &str) -> Result<Self, CloudError> {
        let c: Self = toml::from_str(text).map_err(|e| CloudError::Config(e.to_string()))?;
        c.validate()?;
        Ok(c)
    }

    /// Read and parse a TOML file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, CloudError> {
        let p = path.as_ref();
        let text = std::fs::read_to_string(p)
            .map_err(|e| CloudError::Config(format!("{}: {e}", p.display())))?;
        Self::from_toml_str(&text)
    }

    /// Whether the gateway serves TLS (`wss://`): both `tls_cert` and `tls_key` are set.
    pub fn tls_enabled(&self) -> bool {
        self.tls_cert.is_some() && self.tls_key.is_some()
    }

    /// Reject settings that cannot work (the TLS files themselves are read when the
    /// gateway starts).
    pub fn validate(&self) -> Result<(), CloudError> {
        if self.token.is_empty() {
            return Err(CloudError::Config("token must not be empty".into()));
        }
        if self.max_frame_bytes < 256 {
            return Err(CloudError::Config(
                "max_frame_bytes must be at least 256".into(),
            ));
        }
        if self.max_sessions == 0 || self.max_requests_per_session == 0 {
            return Err(CloudError::Config(
                "max_sessions and max_requests_per_session must be > 0".into(),
            ));
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(CloudError::Config(
                "tls_cert and tls_key must be set together".into(),
            ));
        }
        if let Some(l) = &self.latency {
            if l.first_delta_ms < 0.0
                || l.first_delta_jitter_ms < 0.0
                || l.tokens_per_s.is_some_and(|r| r <= 0.0)
            {
                return Err(CloudError::Config("latency values must be positive".into()));
            }
        }
        Ok(())
    }

    /// A config for tests and embedding: given listen address, token and backend,
    /// defaults for everything else (no TLS, no injected latency).
    pub fn new(
        listen: impl Into<String>,
        token: impl Into<String>,
        backend: BackendConfig,
    ) -> Self {
        Self {
            listen: listen.into(),
            token: token.into(),
            max_frame_bytes: default_max_frame_bytes(),
            max_sessions: default_max_sessions(),
            max_requests_per_session: default_max_requests_per_session(),
            hello_timeout_ms: default_hello_timeout_ms(),
            backend,
            latency: None,
            tls_cert: None,
            tls_key: None,
        }
    }
}
