//! Push-to-talk key sources for the listener: a Linux input device (evdev: a headset's
//! play/pause key, a GPIO button exposed as a key) or a simulated key with press/release
//! times on the simulated microphone's clock (`activation.ptt_simulated`, for tests).
//!
//! The listener polls [`KeySource::poll`] once per audio chunk with the stream time; a change
//! is reported once, at the stream time of the poll that saw it (the evdev thread's events
//! are at most one chunk, ~10 ms, late on the stream clock).

use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::AudioError;

/// A push-to-talk key.
pub trait KeySource: Send {
    /// The key's state at `stream_ms` if it changed since the last poll.
    fn poll(&mut self, stream_ms: f64) -> Option<bool>;
}

/// A key pressed and released at fixed stream times (ms), e.g. from the config.
pub struct SimulatedKey {
    presses: Vec<[f64; 2]>,
    held: bool,
}

impl SimulatedKey {
    /// `presses`: `[press_ms, release_ms]` pairs (validated by the config).
    pub fn new(mut presses: Vec<[f64; 2]>) -> Self {
        presses.sort_by(|a, b| a[0].total_cmp(&b[0]));
        Self { presses, held: false }
    }
}

impl KeySource for SimulatedKey {
    fn poll(&mut self, stream_ms: f64) -> Option<bool> {
        let held = self.presses.iter().any(|[p, r]| (*p..*r).contains(&stream_ms));
        (held != self.held).then(|| {
            self.held = held;
            held
        })
    }
}

/// A key on a Linux input device, read on its own thread (blocking reads).
pub struct EvdevKey {
    held: Arc<AtomicBool>,
    last: bool,
}

impl EvdevKey {
    /// Opens `device` and watches `key` ("KEY_PLAYPAUSE", "BTN_0", …). The reader thread ends
    /// with the process (or when the device goes away: the key then reads as released).
    pub fn open(device: &Path, key: &str) -> Result<Self, AudioError> {
        let code = evdev::KeyCode::from_str(key.trim()).map_err(|_| {
            AudioError::invalid_config(
                "activation.ptt_key",
                format!(" = {key:?}: not an evdev key name (e.g. \"KEY_PLAYPAUSE\", \"BTN_0\")"),
            )
        })?;
        let mut dev = evdev::Device::open(device).map_err(|e| {
            AudioError::PushToTalk(format!(
                "activation.ptt_device: cannot open {}: {e} (is the user in the `input` group?)",
                device.display()
            ))
        })?;
        if !dev.supported_keys().is_some_and(|k| k.contains(code)) {
            return Err(AudioError::invalid_config("activation.ptt_key", format!(" = {key:?}: {} has no such key", device.display())));
        }
        let held = Arc::new(AtomicBool::new(false));
        let h = held.clone();
        let name = device.display().to_string();
        std::thread::Builder::new()
            .name("ptt".into())
            .spawn(move || loop {
                match dev.fetch_events() {
                    Ok(events) => {
                        for ev in events {
                            if let evdev::EventSummary::Key(_, c, v) = ev.destructure() {
                                // 1 = down, 0 = up, 2 = autorepeat (still down).
                                if c == code {
                                    h.store(v != 0, Ordering::Release);
                                }
                            }
                        }
                    }
                    Err(e) => {
                        tracing::error!("push-to-talk device {name}: {e}");
                        h.store(false, Ordering::Release);
                        return;
                    }
                }
            })
            .map_err(|e| AudioError::PushToTalk(format!("cannot start its thread: {e}")))?;
        Ok(Self { held, last: false })
    }
}

impl KeySource for EvdevKey {
    fn poll(&mut self, _stream_ms: f64) -> Option<bool> {
        let held = self.held.load(Ordering::Acquire);
        (held != self.last).then(|| {
            self.last = held;
            held
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulated_key_reports_each_change_once() {
        let mut k = SimulatedKey::new(vec![[3_000.0, 5_000.0], [1_000.0, 2_000.0]]);
        let seen: Vec<(f64, bool)> = (0..70).map(|i| i as f64 * 100.0).filter_map(|t| k.poll(t).map(|h| (t, h))).collect();
        assert_eq!(seen, vec![(1_000.0, true), (2_000.0, false), (3_000.0, true), (5_000.0, false)]);
    }

    #[test]
    fn a_missing_device_or_bad_key_is_named() {
        let e = EvdevKey::open(Path::new("/nonexistent/event0"), "KEY_PLAYPAUSE").err().unwrap();
        assert!(format!("{e:#}").contains("activation.ptt_device"));
        let e = EvdevKey::open(Path::new("/nonexistent/event0"), "KEY_NONSENSE").err().unwrap();
        assert!(format!("{e:#}").contains("activation.ptt_key"));
    }
}
