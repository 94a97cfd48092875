//! Deterministic backend for tests, demos and benchmarks.
//!
//! The reply is chosen by the first rule whose conditions match the request, else
//! by the echo rule (`" — you asked: <query>."`). Replies are split into
//! word-sized deltas (`"Paris,"`, `" on"`, `" the"` …) that are sent instantly or
//! paced (`first_token_ms`, then `token_ms` between deltas). Cancellation is
//! checked before every delta, so generation stops within one token.
//!
//! For overhead measurements the backend can record, per request id, when it was
//! asked and when it yielded its first delta ([`ScriptedBackend::record_first_tokens`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::mpsc;

use super::{approx_tokens, receiver_stream, Backend, BackendEvent, BackendRequest, DeltaStream, STREAM_CHANNEL};
use crate::protocol::{FinishReason, RequestId, Usage};

/// One scripted reply.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ScriptRule {
    /// Match if the last user message contains this (case-insensitive).
    #[serde(default)]
    pub when_query_contains: Option<String>,
    /// Match if the opener contains this (case-insensitive).
    #[serde(default)]
    pub when_opener_contains: Option<String>,
    /// Raw model output to stream (may contain `<repair>` or a `Correction:` line).
    pub reply: String,
}

/// `[backend] kind = "scripted"` settings.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ScriptedConfig {
    /// Rules tried in order; the first match wins.
    #[serde(default)]
    pub rules: Vec<ScriptRule>,
    /// Delay before the first delta, ms (backend-side "prefill").
    #[serde(default)]
    pub first_token_ms: u64,
    /// Delay between deltas, ms (backend-side decode pace).
    #[serde(default)]
    pub token_ms: u64,
}

/// When the scripted backend served one request (monotonic clock of this process).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FirstTokenTimes {
    /// The gateway asked for the stream ([`Backend::stream`] was called).
    pub started: Instant,
    /// The first delta was handed to the gateway (just before it entered the stream).
    pub first_token: Instant,
}

/// First-token log: request id → times (the latest request with that id wins).
type FirstTokenLog = Arc<Mutex<HashMap<RequestId, FirstTokenTimes>>>;

/// The scripted backend.
#[derive(Debug, Clone)]
pub struct ScriptedBackend {
    config: Arc<ScriptedConfig>,
    emitted: Arc<AtomicU64>,
    first_tokens: Option<FirstTokenLog>,
}

/// Split a reply into word-sized deltas; each delta starts with the whitespace
/// that precedes its word (like BPE tokens), so concatenation gives the reply back.
pub fn split_deltas(reply: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    for c in reply.chars() {
        if c.is_whitespace() && in_word {
            out.push(std::mem::take(&mut cur));
            in_word = false;
        } else if !c.is_whitespace() {
            in_word = true;
        }
        cur.push(c);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn contains_ci(hay: &str, needle: &str) -> bool {
    hay.to_lowercase().contains(&needle.to_lowercase())
}

impl ScriptedBackend {
    /// New scripted backend.
    pub fn new(config: ScriptedConfig) -> Self {
        Self { config: Arc::new(config), emitted: Arc::new(AtomicU64::new(0)), first_tokens: None }
    }

    /// Also record, for every request, when it started and when its first delta
    /// was yielded (read with [`ScriptedBackend::first_token_times`]). Off by
    /// default because the log grows by one entry per distinct request id; clones
    /// share the log.
    pub fn record_first_tokens(mut self) -> Self {
        self.first_tokens = Some(Arc::new(Mutex::new(HashMap::new())));
        self
    }

    /// Start and first-delta times of request `id`; `None` if recording is off,
    /// the request yielded no delta, or no such request was served.
    pub fn first_token_times(&self, id: RequestId) -> Option<FirstTokenTimes> {
        let log = self.first_tokens.as_ref()?;
        log.lock().ok()?.get(&id).copied()
    }

    /// Instant backend that always streams `reply` (benchmarks, simple tests).
    pub fn fixed(reply: &str) -> Self {
        Self::new(ScriptedConfig { rules: vec![ScriptRule { reply: reply.to_string(), ..Default::default() }], ..Default::default() })
    }

    /// Total deltas produced by this backend so far (across requests); lets tests
    /// check that cancellation stops generation upstream.
    pub fn tokens_emitted(&self) -> u64 {
        self.emitted.load(Ordering::SeqCst)
    }

    /// The raw reply for a request (first matching rule, else the echo rule).
    pub fn reply_for(&self, req: &crate::protocol::ContinueRequest) -> String {
        for r in &self.config.rules {
            let q_ok = r.when_query_contains.as_deref().is_none_or(|w| contains_ci(req.query(), w));
            let o_ok = r.when_opener_contains.as_deref().is_none_or(|w| contains_ci(&req.opener, w));
            if q_ok && o_ok {
                return r.reply.clone();
            }
        }
        format!(" — you asked: {}.", req.query().trim_end_matches(['?', '.', '!']))
    }
}

impl Backend for ScriptedBackend {
    fn kind(&self) -> &'static str {
        "scripted"
    }

    fn stream(&self, req: BackendRequest) -> DeltaStream {
        let deltas = split_deltas(&self.reply_for(&req.request));
        let prompt_tokens =
            req.request.messages.iter().map(|m| approx_tokens(&m.content)).sum::<u32>() + approx_tokens(&req.request.opener);
        let max = req.request.max_tokens as usize;
        let (first_ms, token_ms) = (self.config.first_token_ms, self.config.token_ms);
        let emitted = self.emitted.clone();
        let (id, started) = (req.request.id, Instant::now());
        let log = self.first_tokens.clone();
        let cancel = req.cancel;
        let (tx, rx) = mpsc::channel(STREAM_CHANNEL);
        tokio::spawn(async move {
            let mut sent = 0u32;
            let mut reason = FinishReason::Stop;
            for (i, d) in deltas.into_iter().enumerate() {
                if i >= max {
                    reason = FinishReason::Length;
                    break;
                }
                let wait = if i == 0 { first_ms } else { token_ms };
                if wait > 0 {
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(wait)) => {}
                        _ = cancel.cancelled() => {}
                    }
                }
                if cancel.is_cancelled() {
                    reason = FinishReason::Cancelled;
                    break;
                }
                emitted.fetch_add(1, Ordering::SeqCst);
                if i == 0 {
                    if let Some(Ok(mut m)) = log.as_ref().map(|l| l.lock()) {
                        let first_token = Instant::now();
                        m.insert(id, FirstTokenTimes { started, first_token });
                    }
                }
                sent += 1;
                if tx.send(Ok(BackendEvent::Delta(d))).await.is_err() {
                    return; // consumer gone: stop generating
                }
            }
            let usage = Usage { prompt_tokens, completion_tokens: sent };
            let _ = tx.send(Ok(BackendEvent::Finished { reason, usage })).await;
        });
        receiver_stream(rx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::CancelToken;
    use crate::protocol::{ContinueRequest, Message, RecoveryMode};
    use futures_util::StreamExt;

    fn request(id: RequestId) -> BackendRequest {
        BackendRequest {
            request: ContinueRequest {
                id,
                messages: vec![Message::user("Where is Paris?")],
                opener: "Paris is".into(),
                opener_complete: false,
                mode: RecoveryMode::Natural,
                max_tokens: 8,
            },
            cancel: CancelToken::new(),
        }
    }

    #[tokio::test]
    async fn records_first_token_times_only_when_asked() {
        let plain = ScriptedBackend::fixed(" in France.");
        let timed = ScriptedBackend::new(ScriptedConfig { first_token_ms: 30, ..ScriptedConfig::default() }).record_first_tokens();
        let before = Instant::now();
        for b in [&plain, &timed] {
            let mut s = b.stream(request(7));
            while s.next().await.is_some() {}
        }
        assert_eq!(plain.first_token_times(7), None);
        let t = timed.first_token_times(7).expect("recorded");
        assert!(t.started >= before);
        // The 30 ms "prefill" lies between the request and its first token.
        assert!(t.first_token - t.started >= Duration::from_millis(30), "{t:?}");
        assert_eq!(timed.first_token_times(8), None);
    }

    #[test]
    fn deltas_concatenate_to_reply() {
        let r = " Paris,  on the\nSeine. ";
        let d = split_deltas(r);
        assert_eq!(d.concat(), r);
        assert_eq!(d[0], " Paris,");
        assert_eq!(d[1], "  on");
    }
}
