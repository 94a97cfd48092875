//! Log setup: tracing to stderr as plain lines — no ANSI colours unless stderr is a
//! terminal, and no timestamps under systemd (journald stamps each line itself).

use std::io::IsTerminal;

/// Installs the global subscriber. `RUST_LOG` overrides `default_filter` ("warn", "info").
pub fn init(default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| default_filter.into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(std::io::stderr().is_terminal());
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        builder.without_time().init();
    } else {
        builder.init();
    }
}
