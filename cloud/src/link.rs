//! The device's link to the cloud continuator: the daemon's `[cloud]` config table, and a connected
//! client — to the configured `url`, or to a gateway started in-process with the local
//! Gemma backend when no URL is configured (the offline default).

use std::path::PathBuf;

use crate::client::{ClientOptions, CloudClient};
use crate::gateway::{GatewayConfig, GatewayHandle};
use crate::protocol::RecoveryMode;
use crate::CloudError;
use serde::Deserialize;

/// `[cloud]` settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CloudSection {
    /// Gateway address (`ws://` or `wss://`). None: start the local gateway in-process.
    pub url: Option<String>,
    /// Token presented in `hello` (and as a bearer header).
    pub token: String,
    /// Recovery mode when the opener went wrong.
    pub mode: RecoveryMode,
    /// No continuation text this long after the request: fall back locally (ms).
    pub first_delta_timeout_ms: u64,
    /// Most continuation tokens per turn.
    pub max_tokens: u32,
    /// Local gateway: the Gemma 3 270M GGUF.
    pub local_model: PathBuf,
    /// Local gateway: injected delay before the first delta (ms; demos and benchmarks).
    pub local_latency_ms: f64,
    /// Local gateway: spread of that delay (ms, uniform half-width).
    pub local_latency_jitter_ms: f64,
    /// Allow `ws://` (the token in clear) to a host that is not loopback; off: such a
    /// `url` is refused, use `wss://`.
    pub allow_insecure: bool,
}

impl Default for CloudSection {
    fn default() -> Self {
        Self {
            url: None,
            token: "firstword-local".into(),
            mode: RecoveryMode::Natural,
            first_delta_timeout_ms: 5_000,
            max_tokens: 80,
            local_model: PathBuf::from("models/gemma/gemma-3-270m-q4_k_m.gguf"),
            local_latency_ms: 0.0,
            local_latency_jitter_ms: 0.0,
            allow_insecure: false,
        }
    }
}

impl CloudSection {
    /// Range checks; messages name the key.
    pub fn validate(&self) -> Result<(), CloudError> {
        if let Some(u) = &self.url {
            if !(u.starts_with("ws://") || u.starts_with("wss://")) {
                return Err(CloudError::invalid_config("cloud.url", format!(" = {u:?} (must start with ws:// or wss://)")));
            }
        }
        if self.token.is_empty() {
            return Err(CloudError::invalid_config("cloud.token", " must not be empty".into()));
        }
        if !(100..=120_000).contains(&self.first_delta_timeout_ms) {
            return Err(CloudError::invalid_config(
                "cloud.first_delta_timeout_ms",
                format!(" = {} (must be 100..120000)", self.first_delta_timeout_ms),
            ));
        }
        if !(1..=4096).contains(&self.max_tokens) {
            return Err(CloudError::invalid_config("cloud.max_tokens", format!(" = {} (must be 1..4096)", self.max_tokens)));
        }
        // `contains` is false for NaN, so non-finite values fail here too.
        if !(0.0..=60_000.0).contains(&self.local_latency_ms) {
            return Err(CloudError::invalid_config(
                "cloud.local_latency_ms",
                format!(" = {} (must be a finite number in 0..60000)", self.local_latency_ms),
            ));
        }
        if !(0.0..=60_000.0).contains(&self.local_latency_jitter_ms) {
            return Err(CloudError::invalid_config(
                "cloud.local_latency_jitter_ms",
                format!(" = {} (must be a finite number in 0..60000)", self.local_latency_jitter_ms),
            ));
        }
        if let Some(u) = &self.url {
            if u.starts_with("ws://") && !self.allow_insecure && !crate::client::is_loopback_url(u) {
                return Err(CloudError::invalid_config(
                    "cloud.url",
                    format!(" = {u:?} sends the token in clear to a non-loopback host: use wss:// (or cloud.allow_insecure = true)"),
                ));
            }
        }
        Ok(())
    }
}

/// A connected client, and the in-process gateway behind it if there is one.
pub struct CloudLink {
    pub client: CloudClient,
    gateway: Option<GatewayHandle>,
}

impl CloudLink {
    /// Connects (pre-warmed: waits for the first session). `latency_ms` overrides the local
    /// gateway's injected first-delta delay.
    pub async fn start(sec: &CloudSection, latency_ms: Option<f64>) -> Result<Self, CloudError> {
        let opts = ClientOptions {
            first_delta_timeout_ms: sec.first_delta_timeout_ms,
            allow_insecure: sec.allow_insecure,
            ..ClientOptions::default()
        };
        if let Some(url) = &sec.url {
            if latency_ms.is_some() {
                tracing::warn!("--cloud-latency-ms applies to the local gateway only; ignored for {url}");
            }
            let client = CloudClient::connect(url, &sec.token, opts).await?;
            if !client.is_connected() {
                tracing::warn!(%url, "cloud not reachable yet; turns fall back locally until it is");
            }
            return Ok(Self { client, gateway: None });
        }
        if !sec.local_model.is_file() {
            return Err(CloudError::invalid_config(
                "cloud.local_model",
                format!(" = {} is missing (run scripts/setup.sh, or set cloud.url)", sec.local_model.display()),
            ));
        }
        let latency = latency_ms.unwrap_or(sec.local_latency_ms);
        if !(0.0..=60_000.0).contains(&latency) {
            return Err(CloudError::invalid_config("--cloud-latency-ms", format!(" = {latency} (must be a finite number in 0..60000)")));
        }
        let toml = format!(
            "listen = \"127.0.0.1:0\"\ntoken = {token:?}\n[backend]\nkind = \"local\"\nmodel_path = {model:?}\nthreads = 1\n\
             [latency]\nfirst_delta_ms = {latency}\nfirst_delta_jitter_ms = {jitter}\n",
            token = sec.token,
            model = sec.local_model.display().to_string(),
            jitter = sec.local_latency_jitter_ms,
        );
        Self::start_gateway(sec, &toml).await
    }

    /// Starts an in-process gateway from a gateway config (TOML text, as for
    /// `firstword cloud serve`; `listen` should be `127.0.0.1:0`) and connects to it.
    /// Benchmarks use this with the scripted backend.
    pub async fn start_gateway(sec: &CloudSection, gateway_toml: &str) -> Result<Self, CloudError> {
        let opts = ClientOptions { first_delta_timeout_ms: sec.first_delta_timeout_ms, ..ClientOptions::default() };
        let gcfg = GatewayConfig::from_toml_str(gateway_toml)?;
        let token = gcfg.token.clone();
        let gateway = crate::gateway::spawn(gcfg).await?;
        let client = CloudClient::connect(&gateway.url(), &token, opts).await?;
        Ok(Self { client, gateway: Some(gateway) })
    }

    /// Closes the client and stops the in-process gateway.
    pub async fn shutdown(self) {
        self.client.close();
        if let Some(g) = self.gateway {
            g.shutdown().await;
        }
    }
}
