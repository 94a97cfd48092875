//! The cloud continuation for the handoff and safety evals, with its raw text when it can be had.
//!
//! Without `cloud.url` (the offline default) the local Gemma 3 270M backend runs in-process
//! and its *raw* output is run through the same seam/repair filter the gateway applies
//! (`cloud::continuation::ContinuationFilter`), so the eval sees both what the model wrote and
//! what the device would hear. With `cloud.url` the configured gateway is used through
//! [`CloudLink`]; only the filtered text exists then.

use std::sync::Arc;

use anyhow::{Context, Result};
use cloud::backend::{Backend, BackendEvent, BackendRequest, CancelToken};
use cloud::client::{CloudEvent, ContinueParams};
use cloud::continuation::{ContinuationFilter, FilterEvent};
use cloud::protocol::{ContinueRequest, Message, RecoveryMode};
use futures_util::StreamExt;

use cloud::link::{CloudLink, CloudSection};

/// Where continuations come from.
pub enum Continuator {
    /// The local backend in-process (raw text available).
    Local(Arc<dyn Backend>),
    /// A gateway at `cloud.url` (filtered text only).
    Gateway(CloudLink),
}

/// One continuation.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Continued {
    /// The model's raw output before seam hygiene (None through a remote gateway).
    pub raw: Option<String>,
    /// What the device receives and speaks after the opener (join space included).
    pub text: String,
    /// The continuation began a recovery (a `repair` event: the paper's handoff correction).
    pub repaired: bool,
    /// The request failed (then `text` holds what came before the failure).
    pub error: Option<String>,
}

impl Continuator {
    /// The configured cloud: a remote gateway when `sec.url` is set, else the local backend.
    pub async fn start(sec: &CloudSection) -> Result<Self> {
        if sec.url.is_some() {
            return Ok(Self::Gateway(CloudLink::start(sec, Some(0.0)).await?));
        }
        if !sec.local_model.is_file() {
            anyhow::bail!("local cloud model {} missing (run scripts/setup.sh, or set cloud.url)", sec.local_model.display());
        }
        let toml = format!("model_path = {:?}\nthreads = 1\n", sec.local_model.display().to_string());
        let cfg: cloud::backend::local::LocalConfig = toml::from_str(&toml).context("local backend config")?;
        let path = sec.local_model.clone();
        let backend = tokio::task::spawn_blocking(move || cloud::backend::local::LocalBackend::load(&cfg))
            .await
            .context("loading the local backend")?
            .with_context(|| format!("loading {}", path.display()))?;
        Ok(Self::Local(Arc::new(backend)))
    }

    /// "local Gemma (raw)" or the gateway URL, for reports.
    pub fn describe(&self, sec: &CloudSection) -> String {
        match self {
            Self::Local(_) => {
                format!("local backend {} in-process (raw text + gateway seam filter)", sec.local_model.display())
            }
            Self::Gateway(_) => format!("gateway {} (filtered text only)", sec.url.as_deref().unwrap_or("?")),
        }
    }

    /// Continues `opener` as the answer to `question`.
    pub async fn run(&self, question: &str, opener: &str, opener_complete: bool, mode: RecoveryMode, max_tokens: u32) -> Continued {
        self.run_messages(vec![Message::user(question)], opener, opener_complete, mode, max_tokens).await
    }

    /// Continues `opener` as the answer to the last of `messages` (the conversation so far).
    pub async fn run_messages(
        &self,
        messages: Vec<Message>,
        opener: &str,
        opener_complete: bool,
        mode: RecoveryMode,
        max_tokens: u32,
    ) -> Continued {
        match self {
            Self::Local(b) => {
                let request = ContinueRequest { id: 1, messages, opener: opener.to_string(), opener_complete, mode, max_tokens };
                let mut stream = b.stream(BackendRequest { request, cancel: CancelToken::new() });
                let mut out = Continued { raw: Some(String::new()), ..Default::default() };
                let mut filter = ContinuationFilter::new(opener);
                let mut events = Vec::new();
                while let Some(item) = stream.next().await {
                    match item {
                        Ok(BackendEvent::Delta(t)) => {
                            out.raw.get_or_insert_with(String::new).push_str(&t);
                            events.extend(filter.push(&t));
                        }
                        Ok(BackendEvent::Finished { .. }) => break,
                        Err(e) => {
                            out.error = Some(e.to_string());
                            break;
                        }
                    }
                }
                events.extend(filter.finish());
                for e in events {
                    match e {
                        FilterEvent::Text(t) => out.text.push_str(&t),
                        FilterEvent::Repair => out.repaired = true,
                    }
                }
                out
            }
            Self::Gateway(link) => {
                let mut p = ContinueParams::new(String::new(), opener);
                p.messages = messages;
                p.opener_complete = opener_complete;
                p.mode = mode;
                p.max_tokens = max_tokens;
                let mut c = link.client.continue_(p);
                let mut out = Continued::default();
                while let Some(e) = c.events.recv().await {
                    match e {
                        CloudEvent::Delta(t) => out.text.push_str(&t),
                        CloudEvent::Repair(_) => out.repaired = true,
                        CloudEvent::Done { .. } => break,
                        CloudEvent::Error { kind, message } => {
                            out.error = Some(format!("{kind:?}: {message}"));
                            break;
                        }
                        _ => {}
                    }
                }
                out
            }
        }
    }

    /// Stops the gateway link (the local backend stops when dropped).
    pub async fn shutdown(self) {
        if let Self::Gateway(link) = self {
            link.shutdown().await;
        }
    }
}

/// Whether the gateway's seam hygiene removed words that repeat the opener: the filtered word
/// sequence of `raw` differs from the one a filter without an opener produces (meta-phrase and
/// marker removal do not depend on the opener, overlap removal does).
pub fn seam_stripped(opener: &str, raw: &str) -> bool {
    let with = cloud::continuation::filter_complete(opener, raw).0;
    let without = cloud::continuation::filter_complete("", raw).0;
    super::text_checks::norm_words(&with) != super::text_checks::norm_words(&without)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seam_stripping_is_detected() {
        assert!(seam_stripped("The capital of France is", " France is Paris."));
        assert!(seam_stripped("The capital of France is", "Sure, continuing: The capital of France is Paris."));
        assert!(!seam_stripped("The capital of France is", " Paris, on the Seine."));
        assert!(!seam_stripped("The capital of France is", "Sure, continuing: Paris."));
    }

    #[tokio::test]
    async fn scripted_backend_raw_and_filtered() {
        // The scripted backend through the same code path as the local one.
        let cfg: cloud::backend::scripted::ScriptedConfig =
            toml::from_str("[[rules]]\nreply = \"France is Paris. <repair> Or rather, Lyon.\"").unwrap();
        let c = Continuator::Local(Arc::new(cloud::backend::scripted::ScriptedBackend::new(cfg)));
        let r = c.run("What is the capital of France?", "The capital of France is", false, RecoveryMode::Natural, 50).await;
        assert_eq!(r.raw.as_deref(), Some("France is Paris. <repair> Or rather, Lyon."));
        assert!(r.repaired);
        assert!(r.text.starts_with(" Paris.") && !r.text.contains("<repair>"), "{:?}", r.text);
        assert!(r.error.is_none());
    }
}
