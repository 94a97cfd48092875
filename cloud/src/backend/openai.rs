//! OpenAI-compatible chat backend: `POST {base_url}/chat/completions` with
//! `stream: true`, read as Server-Sent Events.
//!
//! Works with OpenAI, vLLM, llama.cpp's server, Ollama (`/v1`), DeepSeek and
//! Mistral. The opener reaches the model in one of three ways
//! ([`OpenerMode`]): quoted in an instruction (any server), or as a final
//! assistant message that the server continues — vLLM's
//! `continue_final_message` or the `prefix: true` message flag of
//! DeepSeek/Mistral — which makes the join exact.

use std::path::PathBuf;
use std::time::Duration;

use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::sse::SseParser;
use super::{receiver_stream, Backend, BackendError, BackendEvent, BackendRequest, DeltaStream, STREAM_CHANNEL};
use crate::continuation::{chat_messages, OpenerPlacement};
use crate::protocol::{FinishReason, Usage};

/// How the opener is given to the model.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OpenerMode {
    /// Quote the opener in a final user instruction (works everywhere).
    #[default]
    Instruction,
    /// vLLM: final assistant message + `continue_final_message: true`,
    /// `add_generation_prompt: false`.
    ContinueFinalMessage,
    /// DeepSeek / Mistral: final assistant message with `"prefix": true`.
    Prefix,
}

/// `[backend] kind = "openai"` settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenAiConfig {
    /// API root including `/v1`, e.g. `https://api.openai.com/v1` or `http://127.0.0.1:8080/v1`.
    pub base_url: String,
    /// Model name sent in the request.
    pub model: String,
    /// Environment variable holding the API key (e.g. `OPENAI_API_KEY`).
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// File holding the API key (first line); used if `api_key_env` is unset or empty.
    #[serde(default)]
    pub api_key_file: Option<PathBuf>,
    /// How the opener is passed (see [`OpenerMode`]).
    #[serde(default)]
    pub opener_mode: OpenerMode,
    /// Sampling temperature; server default if absent.
    #[serde(default)]
    pub temperature: Option<f32>,
    /// Ask for a final usage chunk (`stream_options.include_usage`); turn off for
    /// servers that reject the field.
    #[serde(default = "default_true")]
    pub include_usage: bool,
    /// TCP/TLS connect timeout, ms.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Deadline for a whole request (connect, response headers, every chunk): a
    /// stuck upstream cannot hold a task and a socket longer than this, ms.
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// Longest wait for the response headers or the next chunk of the stream, ms.
    #[serde(default = "default_idle_timeout_ms")]
    pub idle_timeout_ms: u64,
}

impl OpenAiConfig {
    /// Range checks; errors name the key (`backend.temperature`, ...).
    pub fn validate(&self) -> Result<(), crate::error::CloudError> {
        if let Some(t) = self.temperature {
            super::check_range("backend.temperature", t as f64, 0.0, 100.0)?;
        }
        if self.connect_timeout_ms == 0 || self.request_timeout_ms == 0 || self.idle_timeout_ms == 0 {
            return Err(crate::error::CloudError::invalid_config(
                "backend.connect_timeout_ms",
                ", request_timeout_ms and idle_timeout_ms must be > 0".into(),
            ));
        }
        Ok(())
    }
}

fn default_true() -> bool {
    true
}
fn default_connect_timeout_ms() -> u64 {
    5_000
}
fn default_request_timeout_ms() -> u64 {
    120_000
}
fn default_idle_timeout_ms() -> u64 {
    30_000
}

/// The OpenAI-compatible backend.
#[derive(Debug, Clone)]
pub struct OpenAiBackend {
    config: OpenAiConfig,
    api_key: Option<String>,
    http: reqwest::Client,
}

/// Read the API key from the configured env var, else the configured file.
fn load_api_key(c: &OpenAiConfig) -> Result<Option<String>, BackendError> {
    if let Some(var) = &c.api_key_env {
        if let Ok(v) = std::env::var(var) {
            if !v.trim().is_empty() {
                return Ok(Some(v.trim().to_string()));
            }
        }
    }
    if let Some(path) = &c.api_key_file {
        let s = std::fs::read_to_string(path).map_err(|e| BackendError::Config(format!("api_key_file {}: {e}", path.display())))?;
        let key = s.lines().next().unwrap_or("").trim().to_string();
        if key.is_empty() {
            return Err(BackendError::Config(format!("api_key_file {} is empty", path.display())));
        }
        return Ok(Some(key));
    }
    if let Some(var) = &c.api_key_env {
        return Err(BackendError::Config(format!("environment variable {var} is not set")));
    }
    // Local servers (llama.cpp, vLLM, Ollama) usually need no key.
    Ok(None)
}

impl OpenAiBackend {
    /// Build the backend (reads the API key now, so a missing key fails at start-up).
    pub fn new(config: OpenAiConfig) -> Result<Self, BackendError> {
        let api_key = load_api_key(&config)?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(config.connect_timeout_ms))
            .tcp_nodelay(true)
            .build()
            .map_err(|e| BackendError::Config(format!("HTTP client: {e}")))?;
        Ok(Self { config, api_key, http })
    }

    /// The JSON body for a request (public for inspection in tests).
    pub fn request_body(&self, req: &crate::protocol::ContinueRequest) -> Value {
        let placement = match self.config.opener_mode {
            OpenerMode::Instruction => OpenerPlacement::Instruction,
            _ => OpenerPlacement::AssistantPrefix,
        };
        let mut messages: Vec<Value> =
            chat_messages(req, placement).into_iter().map(|m| json!({"role": m.role, "content": m.content})).collect();
        let mut body = json!({
            "model": self.config.model,
            "messages": [],
            "stream": true,
            "max_tokens": req.max_tokens,
        });
        let prefix_mode = placement == OpenerPlacement::AssistantPrefix && !req.opener.is_empty();
        match self.config.opener_mode {
            OpenerMode::Prefix if prefix_mode => {
                if let Some(last) = messages.last_mut() {
                    last["prefix"] = json!(true);
                }
            }
            OpenerMode::ContinueFinalMessage if prefix_mode => {
                body["continue_final_message"] = json!(true);
                body["add_generation_prompt"] = json!(false);
            }
            _ => {}
        }
        body["messages"] = Value::Array(messages);
        if let Some(t) = self.config.temperature {
            body["temperature"] = json!(t);
        }
        if self.config.include_usage {
            body["stream_options"] = json!({"include_usage": true});
        }
        body
    }
}

/// What one SSE chunk of a chat completion carries.
#[derive(Debug, Default, PartialEq)]
pub struct ChunkInfo {
    /// `choices[0].delta.content`.
    pub text: Option<String>,
    /// `choices[0].finish_reason`.
    pub finish: Option<FinishReason>,
    /// Top-level `usage`.
    pub usage: Option<Usage>,
}

/// Parse one `data:` payload of a streaming chat completion.
pub fn parse_chunk(data: &str) -> Result<ChunkInfo, BackendError> {
    let v: Value = serde_json::from_str(data).map_err(|e| BackendError::Protocol(format!("bad chunk JSON: {e}")))?;
    if let Some(err) = v.get("error") {
        return Err(BackendError::Protocol(format!("upstream error: {err}")));
    }
    let mut info = ChunkInfo::default();
    if let Some(choice) = v.get("choices").and_then(|c| c.get(0)) {
        info.text = choice.pointer("/delta/content").and_then(|t| t.as_str()).map(str::to_string);
        info.finish = choice.get("finish_reason").and_then(|f| f.as_str()).map(|f| match f {
            "length" => FinishReason::Length,
            _ => FinishReason::Stop,
        });
    }
    if let Some(u) = v.get("usage").filter(|u| !u.is_null()) {
        let n = |k: &str| u.get(k).and_then(|x| x.as_u64()).unwrap_or(0) as u32;
        info.usage = Some(Usage { prompt_tokens: n("prompt_tokens"), completion_tokens: n("completion_tokens") });
    }
    Ok(info)
}

impl Backend for OpenAiBackend {
    fn kind(&self) -> &'static str {
        "openai"
    }

    fn stream(&self, req: BackendRequest) -> DeltaStream {
        let body = self.request_body(&req.request);
        let url = format!("{}/chat/completions", self.config.base_url.trim_end_matches('/'));
        let mut builder = self.http.post(url).json(&body);
        if let Some(k) = &self.api_key {
            builder = builder.bearer_auth(k);
        }
        let cancel = req.cancel;
        let (tx, rx) = mpsc::channel(STREAM_CHANNEL);
        let deadline = tokio::time::Instant::now() + Duration::from_millis(self.config.request_timeout_ms);
        let idle = Duration::from_millis(self.config.idle_timeout_ms);
        tokio::spawn(async move {
            let run = async {
                let resp = tokio::time::timeout(idle, builder.send())
                    .await
                    .map_err(|_| BackendError::Timeout("no response headers within idle_timeout_ms".into()))?
                    .map_err(|e| BackendError::Transport(e.to_string()))?;
                let status = resp.status();
                if !status.is_success() {
                    let body = tokio::time::timeout(idle, resp.text()).await.ok().and_then(Result::ok).unwrap_or_default();
                    return Err(BackendError::Http { status: status.as_u16(), body: body.chars().take(500).collect() });
                }
                let mut bytes = resp.bytes_stream();
                let mut sse = SseParser::default();
                let mut finish: Option<FinishReason> = None;
                let mut usage = Usage::default();
                let mut completion = 0u32;
                // Returning drops the response, which closes the connection: that is
                // how vLLM / llama.cpp notice a cancelled request and stop decoding.
                loop {
                    let chunk = tokio::time::timeout(idle, bytes.next())
                        .await
                        .map_err(|_| BackendError::Timeout("no chunk within idle_timeout_ms".into()))?;
                    let ended = chunk.is_none();
                    let events = match chunk {
                        Some(Ok(b)) => sse.push(&b).map_err(BackendError::Protocol)?,
                        Some(Err(e)) => return Err(BackendError::Transport(e.to_string())),
                        None => sse.finish().into_iter().collect(),
                    };
                    for data in events {
                        if data.trim() == "[DONE]" {
                            if usage.completion_tokens == 0 {
                                usage.completion_tokens = completion;
                            }
                            return Ok((finish.unwrap_or(FinishReason::Stop), usage));
                        }
                        let info = parse_chunk(&data)?;
                        if let Some(t) = info.text.filter(|t| !t.is_empty()) {
                            completion += 1;
                            if tx.send(Ok(BackendEvent::Delta(t))).await.is_err() {
                                return Ok((FinishReason::Cancelled, usage));
                            }
                        }
                        if info.finish.is_some() {
                            finish = info.finish;
                        }
                        if let Some(u) = info.usage {
                            usage = u;
                        }
                    }
                    if ended {
                        if usage.completion_tokens == 0 {
                            usage.completion_tokens = completion;
                        }
                        return Ok((finish.unwrap_or(FinishReason::Stop), usage));
                    }
                }
            };
            // Every await above (connect, headers, each chunk, each hand-off to the
            // gateway) races the cancel token and the request's deadline; leaving
            // drops the request, which closes its socket.
            let result = tokio::select! {
                biased;
                _ = cancel.cancelled() => Ok((FinishReason::Cancelled, Usage::default())),
                r = tokio::time::timeout_at(deadline, run) => r.unwrap_or_else(|_| {
                    Err(BackendError::Timeout("request_timeout_ms passed".into()))
                }),
            };
            let item = result.map(|(reason, usage)| BackendEvent::Finished { reason, usage });
            // The last hand-off is bounded too: a consumer that stopped reading
            // must not keep this task alive.
            let _ = tokio::time::timeout(idle, tx.send(item)).await;
        });
        receiver_stream(rx)
    }
}
