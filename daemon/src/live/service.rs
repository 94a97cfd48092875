//! Running under systemd (`Type=notify`): READY / STOPPING / STATUS notifications, watchdog
//! pings at half of `WATCHDOG_USEC` while both worker threads are alive, and SIGTERM /
//! SIGINT turned into a shutdown message for the conversation loop. Without `NOTIFY_SOCKET`
//! (not under systemd) the notifications are no-ops.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result};
use sd_notify::NotifyState;
use tokio::signal::unix::{signal, SignalKind};

use super::clock::Heartbeat;
use super::inbox::Inbox;

static STOPPING_SENT: AtomicBool = AtomicBool::new(false);

fn notify(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!("sd_notify: {e}");
    }
}

/// Tells systemd the daemon is ready (models loaded, cloud link up, devices running).
pub fn notify_ready(status: &str) {
    notify(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// Updates the status line `systemctl status` shows.
pub fn notify_status(status: &str) {
    notify(&[NotifyState::Status(status)]);
}

/// Tells systemd the daemon is stopping (sent once).
pub fn notify_stopping() {
    if !STOPPING_SENT.swap(true, Ordering::AcqRel) {
        notify(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
    }
}

/// Installs SIGTERM and SIGINT handlers on `rt`; each signal sends [`Inbox::Shutdown`].
pub fn install_signal_handlers(rt: &tokio::runtime::Runtime, tx: Sender<Inbox>) -> Result<()> {
    let (mut term, mut int) = rt.block_on(async {
        let term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
        let int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
        anyhow::Ok((term, int))
    })?;
    rt.spawn(async move {
        loop {
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            };
            if tx.send(Inbox::Shutdown { signal: name }).is_err() {
                break;
            }
        }
    });
    Ok(())
}

/// The watchdog pinger thread (only when systemd asked for one).
pub struct Watchdog {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Watchdog {
    /// Starts pinging every `WATCHDOG_USEC / 2` while `heartbeat` is fresh (both worker
    /// threads beat within `WATCHDOG_USEC`); None when the watchdog is off.
    pub fn start(heartbeat: Arc<Heartbeat>) -> Option<Self> {
        let limit = sd_notify::watchdog_enabled()?;
        let interval = limit / 2;
        tracing::info!("systemd watchdog: {limit:?}, pinging every {interval:?}");
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = std::thread::Builder::new()
            .name("watchdog".into())
            .spawn(move || {
                let step = Duration::from_millis(10).min(interval);
                let mut waited = Duration::ZERO;
                while !stop2.load(Ordering::Acquire) {
                    std::thread::sleep(step);
                    waited += step;
                    if waited < interval {
                        continue;
                    }
                    waited = Duration::ZERO;
                    if heartbeat.fresh(limit) {
                        notify(&[NotifyState::Watchdog]);
                    } else {
                        tracing::error!("a worker thread is stuck: not pinging the systemd watchdog");
                    }
                }
            })
            .ok()?;
        Some(Self { stop, thread: Some(thread) })
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
