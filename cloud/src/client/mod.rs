//! Device-side client for the gateway.
//!
//! [`CloudClient::connect`] starts a background task that connects at start-up
//! and stays connected (pre-warmed: TCP, TLS and `hello` are done before the
//! first question), keeps the link alive with pings, and reconnects with
//! exponential backoff and jitter. [`CloudClient::continue_`] sends a request
//! and returns a receiver of [`CloudEvent`]s.

mod connection;
mod options;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

pub use options::{ClientOptions, ClientStats, CloudErrorKind, CloudEvent, ContinueParams};

use crate::backend::CancelToken;
use crate::error::CloudError;
use crate::protocol::{ClientFrame, ContinueRequest, RequestId};

/// A request in flight.
pub(crate) struct Pending {
    pub(crate) tx: mpsc::UnboundedSender<CloudEvent>,
    pub(crate) got_delta: bool,
}

/// State shared between the handles and the connection task.
pub(crate) struct Shared {
    pub(crate) pending: Mutex<HashMap<RequestId, Pending>>,
    pub(crate) connected: watch::Sender<bool>,
    pub(crate) stats: Mutex<ClientStats>,
    pub(crate) shutdown: CancelToken,
}

impl Shared {
    /// End every request in flight with an error event.
    pub(crate) fn fail_all(&self, kind: CloudErrorKind, message: &str) {
        if let Ok(mut p) = self.pending.lock() {
            for (_, req) in p.drain() {
                let _ = req.tx.send(CloudEvent::Error { kind, message: message.to_string() });
            }
        }
    }
}

/// Handle to the cloud gateway; cheap to clone. Dropping the last handle closes
/// the connection.
#[derive(Clone)]
pub struct CloudClient {
    shared: Arc<Shared>,
    cmd: mpsc::UnboundedSender<ClientFrame>,
    next_id: Arc<AtomicU64>,
    opts: Arc<ClientOptions>,
    _closer: Arc<Closer>,
}

/// Stops the connection task when the last [`CloudClient`] clone is dropped.
struct Closer(CancelToken);
impl Drop for Closer {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// The events of one request.
pub struct Continuation {
    /// Id assigned by the client (use it for [`CloudClient::cancel`]).
    pub id: RequestId,
    /// Events in order; closes after the terminal event.
    pub events: mpsc::UnboundedReceiver<CloudEvent>,
}

impl CloudClient {
    /// Start the client for `url` (`ws://` or `wss://`) with the gateway `token`.
    ///
    /// Waits up to `opts.connect_timeout_ms` for the first session so that the
    /// link is warm when this returns; if the gateway is unreachable it still
    /// returns `Ok` and keeps reconnecting in the background (the device must
    /// work without the cloud) — check [`CloudClient::is_connected`]. Errors only
    /// for an invalid URL ([`CloudError::Client`]) or an unusable
    /// `opts.tls_ca_file` ([`CloudError::Config`]). `wss://` trusts the public web
    /// roots plus the certificates of `opts.tls_ca_file`.
    pub async fn connect(url: &str, token: &str, opts: ClientOptions) -> Result<Self, CloudError> {
        if !(url.starts_with("ws://") || url.starts_with("wss://")) {
            return Err(CloudError::Client(format!("URL must start with ws:// or wss://, got {url:?}")));
        }
        opts.validate()?;
        if url.starts_with("ws://") && !opts.allow_insecure && !is_loopback_url(url) {
            return Err(CloudError::Config(format!(
                "{url}: ws:// would send the token in clear to a non-loopback host; use wss:// \
                 (or allow_insecure = true on a network you trust)"
            )));
        }
        // rustls needs a process-wide crypto provider for wss://; ring is the one compiled in.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let tls = match &opts.tls_ca_file {
            Some(path) => Some(tokio_tungstenite::Connector::Rustls(crate::tls::client_config(path)?)),
            None => None,
        };
        let (connected, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            pending: Mutex::new(HashMap::new()),
            connected,
            stats: Mutex::new(ClientStats::default()),
            shutdown: CancelToken::new(),
        });
        let (cmd, cmd_rx) = mpsc::unbounded_channel();
        let opts = Arc::new(opts);
        tokio::spawn(connection::run(url.to_string(), token.to_string(), tls, opts.clone(), shared.clone(), cmd_rx));
        let client = Self {
            shared: shared.clone(),
            cmd,
            next_id: Arc::new(AtomicU64::new(1)),
            opts: opts.clone(),
            _closer: Arc::new(Closer(shared.shutdown.clone())),
        };
        client.wait_connected(Duration::from_millis(opts.connect_timeout_ms)).await;
        Ok(client)
    }

    /// Whether a session is open right now.
    pub fn is_connected(&self) -> bool {
        *self.shared.connected.borrow()
    }

    /// Wait until a session is open; `false` on timeout.
    pub async fn wait_connected(&self, timeout: Duration) -> bool {
        let mut rx = self.shared.connected.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|c| *c)).await.is_ok_and(|r| r.is_ok())
    }

    /// Connection counters.
    pub fn stats(&self) -> ClientStats {
        self.shared.stats.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Ask the cloud to continue an opener. Never blocks. If there is no session,
    /// the receiver yields one `Error { kind: NotConnected }` and closes, so the
    /// caller can fall back to local generation at once.
    pub fn continue_(&self, params: ContinueParams) -> Continuation {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, events) = mpsc::unbounded_channel();
        if !self.is_connected() {
            let _ = tx.send(CloudEvent::Error { kind: CloudErrorKind::NotConnected, message: "not connected".into() });
            return Continuation { id, events };
        }
        if let Ok(mut p) = self.shared.pending.lock() {
            p.insert(id, Pending { tx: tx.clone(), got_delta: false });
        }
        let req = ContinueRequest {
            id,
            messages: params.messages,
            opener: params.opener,
            opener_complete: params.opener_complete,
            mode: params.mode,
            max_tokens: params.max_tokens,
        };
        if self.cmd.send(ClientFrame::Continue(req)).is_err() {
            self.finish_with(id, CloudErrorKind::NotConnected, "client is shut down");
            return Continuation { id, events };
        }
        // First-delta watchdog: report (not cancel) a slow cloud.
        let shared = self.shared.clone();
        let wait = Duration::from_millis(self.opts.first_delta_timeout_ms);
        tokio::spawn(async move {
            let t0 = Instant::now();
            tokio::time::sleep(wait).await;
            if let Ok(p) = shared.pending.lock() {
                if let Some(req) = p.get(&id).filter(|r| !r.got_delta) {
                    let waited_ms = t0.elapsed().as_millis() as u64;
                    let _ = req.tx.send(CloudEvent::FirstDeltaTimeout { waited_ms });
                }
            }
        });
        Continuation { id, events }
    }

    /// Stop a request; the gateway stops generation within one token and the
    /// events end with `Done { finish_reason: Cancelled }`.
    pub fn cancel(&self, id: RequestId) {
        let _ = self.cmd.send(ClientFrame::Cancel { id });
    }

    /// Close the connection and stop reconnecting; requests in flight end with
    /// `ConnectionLost`.
    pub fn close(&self) {
        self.shared.shutdown.cancel();
    }

    fn finish_with(&self, id: RequestId, kind: CloudErrorKind, message: &str) {
        if let Ok(mut p) = self.shared.pending.lock() {
            if let Some(req) = p.remove(&id) {
                let _ = req.tx.send(CloudEvent::Error { kind, message: message.to_string() });
            }
        }
    }
}

/// Whether a `ws://` / `wss://` URL names a loopback host (`127.0.0.0/8`, `::1`,
/// `localhost`). Hosts are not resolved: a name other than `localhost` is not loopback.
pub fn is_loopback_url(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host_port.rsplit_once(':').map_or(host_port, |(h, _)| h)
    };
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::is_loopback_url;

    #[test]
    fn loopback_urls() {
        for u in ["ws://127.0.0.1:8787", "ws://localhost/x", "ws://[::1]:1", "ws://127.3.4.5"] {
            assert!(is_loopback_url(u), "{u}");
        }
        for u in ["ws://10.0.0.1:8787", "ws://gateway.example", "ws://[::2]:1", "ws://127.0.0.1.evil.com"] {
            assert!(!is_loopback_url(u), "{u}");
        }
    }
}
