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
    /// One deadline from accept to a valid `hello` (TLS handshake, WebSocket upgrade
    /// and `hello` together): a connection that has not authenticated by then is
    /// closed, so a silent or stalling peer cannot hold a session slot, ms.
    #[serde(default = "default_hello_timeout_ms")]
    pub hello_timeout_ms: u64,
    /// Most open connections (authenticated or not) from one IP address; more are
    /// closed at accept, before any work. 0 = no cap.
    #[serde(default = "default_max_connections_per_ip")]
    pub max_connections_per_ip: usize,
    /// The gateway sends a WebSocket ping after this much silence from the client, ms.
    #[serde(default = "default_ping_interval_ms")]
    pub ping_interval_ms: u64,
    /// A session from which nothing (not even a pong) arrived for
    /// `ping_interval_ms + pong_timeout_ms` is closed as half-open, ms.
    #[serde(default = "default_pong_timeout_ms")]
    pub pong_timeout_ms: u64,
    /// TCP keepalive idle time before the kernel's first probe, s (0 = off). Reaps
    /// connections whose device vanished behind a NAT even when no frame is due.
    #[serde(default = "default_tcp_keepalive_s")]
    pub tcp_keepalive_s: u64,
    /// Kernel send buffer of each accepted socket, bytes (Linux doubles it; 0 = the
    /// kernel's autotuned default, up to several MB). Bounds the memory a client that
    /// stops reading can pin in the kernel, and lets the write deadline notice it after
    /// that much output instead of after megabytes.
    #[serde(default = "default_send_buffer_bytes")]
    pub send_buffer_bytes: usize,
    /// Frames queued per session for the client; with `write_timeout_ms`, what a
    /// client that stops reading may hold back before its session is dropped.
    #[serde(default = "default_send_queue_frames")]
    pub send_queue_frames: usize,
    /// Longest wait for one frame to be written to the socket (or queued for it):
    /// a client that stops reading is dropped after this, and nobody else waits, ms.
    #[serde(default = "default_write_timeout_ms")]
    pub write_timeout_ms: u64,
    /// Server cap on `continue.max_tokens`: larger requests are served with this cap.
    #[serde(default = "default_max_tokens_cap")]
    pub max_tokens_cap: u32,
    /// Sustained `continue` requests per second allowed on one session (token
    /// bucket); over it a request is refused with `rate_limited`.
    #[serde(default = "default_requests_per_s")]
    pub requests_per_s: f64,
    /// Burst size of that token bucket, requests.
    #[serde(default = "default_request_burst")]
    pub request_burst: u32,
    /// Failed `hello`s (bad token or version) allowed per IP address per minute;
    /// beyond that the address's connections are closed at accept until a minute
    /// after the last failure. 0 = no throttle.
    #[serde(default = "default_auth_failures_per_min")]
    pub auth_failures_per_min: u32,
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
fn default_max_connections_per_ip() -> usize {
    64
}
fn default_ping_interval_ms() -> u64 {
    15_000
}
fn default_pong_timeout_ms() -> u64 {
    10_000
}
fn default_tcp_keepalive_s() -> u64 {
    30
}
fn default_send_buffer_bytes() -> usize {
    64 * 1024
}
fn default_send_queue_frames() -> usize {
    1024
}
fn default_write_timeout_ms() -> u64 {
    10_000
}
fn default_max_tokens_cap() -> u32 {
    1024
}
fn default_requests_per_s() -> f64 {
    5.0
}
fn default_request_burst() -> u32 {
    20
}
fn default_auth_failures_per_min() -> u32 {
    10
}

/// Tokens shipped in example configs and demos: refused on non-loopback listeners.
pub const WELL_KNOWN_TOKENS: [&str; 2] = ["change-me", "firstword-local"];
/// Shortest token accepted on a non-loopback listener, bytes.
pub const MIN_PUBLIC_TOKEN_LEN: usize = 16;

/// Whether `listen` (`HOST:PORT`) binds only the loopback interface (`127.0.0.0/8`,
/// `::1`, `localhost`). Anything else, including unparseable hosts, counts as public.
pub fn is_loopback_listen(listen: &str) -> bool {
    if let Ok(a) = listen.parse::<std::net::SocketAddr>() {
        return a.ip().is_loopback();
    }
    let host = listen.rsplit_once(':').map_or(listen, |(h, _)| h);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// `Err` naming `key` unless `v` is finite and at least 0.
fn non_negative(key: &str, v: f64) -> Result<(), CloudError> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(CloudError::invalid_config(key, format!(" = {v} (must be a finite number >= 0)")))
    }
}

/// Largest injected delay accepted in `[latency]`, ms (one hour).
pub const MAX_LATENCY_MS: f64 = 3_600_000.0;

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
        let text = std::fs::read_to_string(p).map_err(|e| CloudError::Config(format!("{}: {e}", p.display())))?;
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
            return Err(CloudError::invalid_config("token", " must not be empty".into()));
        }
        if !is_loopback_listen(&self.listen) {
            if WELL_KNOWN_TOKENS.contains(&self.token.as_str()) {
                return Err(CloudError::invalid_config(
                    "token",
                    format!(
                        " {:?} is a well-known example token; listen = {:?} is not loopback: set a secret token",
                        self.token, self.listen
                    ),
                ));
            }
            if self.token.len() < MIN_PUBLIC_TOKEN_LEN {
                return Err(CloudError::invalid_config(
                    "token",
                    format!(
                        " is {} bytes; listen = {:?} is not loopback: use at least {MIN_PUBLIC_TOKEN_LEN}",
                        self.token.len(),
                        self.listen
                    ),
                ));
            }
        }
        if self.max_frame_bytes < 256 {
            return Err(CloudError::invalid_config("max_frame_bytes", " must be at least 256".into()));
        }
        if self.max_sessions == 0 || self.max_requests_per_session == 0 {
            return Err(CloudError::invalid_config("max_sessions", " and max_requests_per_session must be > 0".into()));
        }
        if self.hello_timeout_ms == 0 {
            return Err(CloudError::invalid_config("hello_timeout_ms", " must be > 0".into()));
        }
        if self.ping_interval_ms == 0 || self.pong_timeout_ms == 0 {
            return Err(CloudError::invalid_config("ping_interval_ms", " and pong_timeout_ms must be > 0".into()));
        }
        if self.send_queue_frames == 0 || self.write_timeout_ms == 0 {
            return Err(CloudError::invalid_config("send_queue_frames", " and write_timeout_ms must be > 0".into()));
        }
        if self.max_tokens_cap == 0 {
            return Err(CloudError::invalid_config("max_tokens_cap", " must be > 0".into()));
        }
        if !(self.requests_per_s.is_finite() && self.requests_per_s > 0.0) {
            return Err(CloudError::invalid_config("requests_per_s", format!(" = {} (must be a finite number > 0)", self.requests_per_s)));
        }
        if self.request_burst == 0 {
            return Err(CloudError::invalid_config("request_burst", " must be > 0".into()));
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(CloudError::invalid_config("tls_cert", " and tls_key must be set together".into()));
        }
        if let Some(l) = &self.latency {
            non_negative("latency.first_delta_ms", l.first_delta_ms)?;
            non_negative("latency.first_delta_jitter_ms", l.first_delta_jitter_ms)?;
            // Durations are built from these: keep them far from Duration's limits.
            if l.first_delta_ms > MAX_LATENCY_MS || l.first_delta_jitter_ms > MAX_LATENCY_MS {
                return Err(CloudError::invalid_config(
                    "latency.first_delta_ms",
                    format!(" / first_delta_jitter_ms must be at most {MAX_LATENCY_MS}"),
                ));
            }
            if let Some(r) = l.tokens_per_s {
                if !(r.is_finite() && r >= 0.001) {
                    return Err(CloudError::invalid_config("latency.tokens_per_s", format!(" = {r} (must be a finite number >= 0.001)")));
                }
            }
        }
        self.backend.validate()?;
        Ok(())
    }

    /// A config for tests and embedding: given listen address, token and backend,
    /// defaults for everything else (no TLS, no injected latency).
    pub fn new(listen: impl Into<String>, token: impl Into<String>, backend: BackendConfig) -> Self {
        Self {
            listen: listen.into(),
            token: token.into(),
            max_frame_bytes: default_max_frame_bytes(),
            max_sessions: default_max_sessions(),
            max_requests_per_session: default_max_requests_per_session(),
            hello_timeout_ms: default_hello_timeout_ms(),
            max_connections_per_ip: default_max_connections_per_ip(),
            ping_interval_ms: default_ping_interval_ms(),
            pong_timeout_ms: default_pong_timeout_ms(),
            tcp_keepalive_s: default_tcp_keepalive_s(),
            send_buffer_bytes: default_send_buffer_bytes(),
            send_queue_frames: default_send_queue_frames(),
            write_timeout_ms: default_write_timeout_ms(),
            max_tokens_cap: default_max_tokens_cap(),
            requests_per_s: default_requests_per_s(),
            request_burst: default_request_burst(),
            auth_failures_per_min: default_auth_failures_per_min(),
            backend,
            latency: None,
            tls_cert: None,
            tls_key: None,
        }
    }
}
