//! The WebSocket gateway: accepts device connections and serves continuations.
//!
//! Start it in-process with [`spawn`] (returns a [`GatewayHandle`] with the bound
//! address, live [`StatsSnapshot`] and shutdown) or run it forever with [`serve`].
//! With `tls_cert` and `tls_key` in the [`GatewayConfig`] it terminates TLS itself
//! (`wss://`); otherwise it speaks plain `ws://`.

mod config;
mod guard;
mod latency;
pub(crate) mod memory;
mod request;
mod session;
mod stats;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::{JoinHandle, JoinSet};

pub use config::{is_loopback_listen, Distribution, GatewayConfig, LatencyConfig, MIN_PUBLIC_TOKEN_LEN, WELL_KNOWN_TOKENS};
pub use memory::SERVICE_GLIBC_TUNABLES;
pub use stats::{GatewayStats, StatsSnapshot};

use crate::backend::Backend;
use crate::error::CloudError;

/// State shared by all sessions of one gateway.
pub(crate) struct Shared {
    pub(crate) config: GatewayConfig,
    pub(crate) backend: Arc<dyn Backend>,
    pub(crate) stats: Arc<GatewayStats>,
    pub(crate) auth: guard::AuthThrottle,
}

/// Connections over `max_sessions` that may at the same time be upgraded just to
/// be told `too_many_sessions`; beyond these, extra connections are closed at once.
const MAX_REFUSALS_IN_FLIGHT: usize = 64;
/// Longest time a refused connection is served to say `too_many_sessions`.
const REFUSAL_DEADLINE: Duration = Duration::from_secs(1);

/// Socket options of an accepted connection: no Nagle delay, TCP keepalive so the
/// kernel notices a peer that vanished (`tcp_keepalive_s`, 0 = off), and a bounded
/// kernel send buffer (`send_buffer_bytes`, 0 = the kernel's default).
pub fn configure_socket(tcp: &tokio::net::TcpStream, keepalive_s: u64, send_buffer_bytes: usize) -> std::io::Result<()> {
    tcp.set_nodelay(true)?;
    if send_buffer_bytes > 0 {
        socket2::SockRef::from(tcp).set_send_buffer_size(send_buffer_bytes)?;
    }
    if keepalive_s > 0 {
        let idle = Duration::from_secs(keepalive_s);
        let ka =
            socket2::TcpKeepalive::new().with_time(idle).with_interval(Duration::from_secs(keepalive_s.div_ceil(3).max(1))).with_retries(3);
        socket2::SockRef::from(tcp).set_tcp_keepalive(&ka)?;
    }
    Ok(())
}

/// A running gateway.
pub struct GatewayHandle {
    local_addr: SocketAddr,
    tls: bool,
    stats: Arc<GatewayStats>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl GatewayHandle {
    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// URL of this gateway: `wss://ADDR` when it serves TLS, else `ws://ADDR`
    /// (ADDR is the bound IP address and port, so a TLS certificate must name that
    /// IP for a client to accept it under this URL).
    pub fn url(&self) -> String {
        let scheme = if self.tls { "wss" } else { "ws" };
        format!("{scheme}://{}", self.local_addr)
    }

    /// Current counters (sessions, requests, repairs, handoff correction rate).
    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    /// Shared counters, to read them after the handle is gone.
    pub fn stats_handle(&self) -> Arc<GatewayStats> {
        self.stats.clone()
    }

    /// Stop at once: close the listener and drop every connection without a
    /// goodbye (what clients see when a server dies), cancelling all requests.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }

    /// Wait until the gateway stops (it only stops through [`GatewayHandle::shutdown`]).
    pub async fn join(self) {
        let _ = self.task.await;
    }
}

/// Build the configured backend and start the gateway in the background.
/// Loading the local model happens on a blocking thread.
pub async fn spawn(config: GatewayConfig) -> Result<GatewayHandle, CloudError> {
    config.validate()?;
    let bc = config.backend.clone();
    let backend = tokio::task::spawn_blocking(move || bc.build())
        .await
        .map_err(|e| CloudError::Config(format!("backend loader panicked: {e}")))??;
    spawn_with_backend(config, backend).await
}

/// Start the gateway with an already-built backend (ignores `config.backend`);
/// tests use this to keep a handle on a scripted backend's counters.
///
/// Errors: invalid settings or unusable TLS files ([`CloudError::Config`]), or the
/// address cannot be bound ([`CloudError::Io`]).
pub async fn spawn_with_backend(config: GatewayConfig, backend: Arc<dyn Backend>) -> Result<GatewayHandle, CloudError> {
    config.validate()?;
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => Some(crate::tls::server_acceptor(cert, key)?),
        _ => None,
    };
    let listener = TcpListener::bind(&config.listen).await?;
    let local_addr = listener.local_addr()?;
    let stats = Arc::new(GatewayStats::default());
    let permits = Arc::new(Semaphore::new(config.max_sessions));
    let refusals = Arc::new(Semaphore::new(MAX_REFUSALS_IN_FLIGHT));
    let conns = Arc::new(guard::ConnCounts::default());
    let shared = Arc::new(Shared { config, backend, stats: stats.clone(), auth: guard::AuthThrottle::default() });
    let (stop, mut stop_rx) = watch::channel(false);
    let hello_limit = Duration::from_millis(shared.config.hello_timeout_ms);
    let tls_on = tls.is_some();
    tracing::info!(%local_addr, tls = tls_on, backend = shared.backend.kind(), "gateway listening");
    let task = tokio::spawn(async move {
        // Sessions live in this set so that shutdown drops them all at once.
        let mut sessions = JoinSet::new();
        let mut memory = memory::Trimmer::default();
        let mut trim_tick = tokio::time::interval(memory::TRIM_INTERVAL);
        trim_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop_rx.changed() => break,
                Some(_) = sessions.join_next(), if !sessions.is_empty() => memory.connection_ended(),
                _ = trim_tick.tick() => {
                    memory.tick();
                }
                accepted = listener.accept() => match accepted {
                    Ok((tcp, peer)) => {
                        // Everything until a valid hello shares this one deadline.
                        let now = tokio::time::Instant::now();
                        let cfg = &shared.config;
                        if shared.auth.blocked(peer.ip(), cfg.auth_failures_per_min, now.into_std()) {
                            GatewayStats::inc(&shared.stats.connections_refused);
                            tracing::debug!(%peer, "refused: too many failed hellos from this address");
                            continue;
                        }
                        let Some(slot) = conns.acquire(peer.ip(), cfg.max_connections_per_ip) else {
                            GatewayStats::inc(&shared.stats.connections_refused);
                            tracing::debug!(%peer, "refused: max_connections_per_ip");
                            continue;
                        };
                        tracing::debug!(%peer, "connection");
                        if let Err(e) = configure_socket(&tcp, cfg.tcp_keepalive_s, cfg.send_buffer_bytes) {
                            tracing::debug!(%peer, error = %e, "socket options");
                        }
                        let (permit, deadline, refusal) = match permits.clone().try_acquire_owned() {
                            Ok(p) => (Some(p), now + hello_limit, None),
                            // Over the limit: answered at once (never holding a session slot),
                            // and only as many at a time as MAX_REFUSALS_IN_FLIGHT.
                            Err(_) => match refusals.clone().try_acquire_owned() {
                                Ok(r) => (None, now + hello_limit.min(REFUSAL_DEADLINE), Some(r)),
                                Err(_) => {
                                    GatewayStats::inc(&shared.stats.connections_refused);
                                    GatewayStats::inc(&shared.stats.sessions_rejected);
                                    continue;
                                }
                            },
                        };
                        let ctx = session::Admission { peer, deadline, permit, _slot: slot, _refusal: refusal };
                        match &tls {
                            None => {
                                sessions.spawn(session::run_session(tcp, shared.clone(), ctx));
                            }
                            Some(acceptor) => {
                                let (acceptor, shared) = (acceptor.clone(), shared.clone());
                                sessions.spawn(async move {
                                    match tokio::time::timeout_at(ctx.deadline, acceptor.accept(tcp)).await {
                                        Ok(Ok(stream)) => session::run_session(stream, shared, ctx).await,
                                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                                    }
                                });
                            }
                        }
                    }
                    Err(e) => {
                        // Usually EMFILE: back off briefly instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                },
            }
        }
        sessions.shutdown().await;
    });
    Ok(GatewayHandle { local_addr, tls: tls_on, stats, stop, task })
}

/// Run a gateway until the process ends (the `firstword cloud serve` entry point).
pub async fn serve(config: GatewayConfig) -> Result<(), CloudError> {
    let handle = spawn(config).await?;
    handle.join().await;
    Ok(())
}
