//! The LLM judge: any OpenAI-compatible `/chat/completions` endpoint (OpenAI, vLLM,
//! llama.cpp server, Ollama, …), asked the rubric prompts of [`super::prompts`] at
//! temperature 0. Without `--judge-url` the evals skip the rubric and say so.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::json;

use super::prompts;

/// Judge options shared by `eval openers`, `eval handoff` and `eval safety`.
#[derive(Debug, Clone, clap::Args)]
pub struct JudgeArgs {
    /// OpenAI-compatible API base (e.g. https://api.openai.com/v1); `/chat/completions` is
    /// appended unless the URL already ends with it. Without it no rubric is scored.
    #[arg(long)]
    pub judge_url: Option<String>,
    /// Judge model name (the paper used GPT-4o).
    #[arg(long, default_value = "gpt-4o")]
    pub judge_model: String,
    /// Environment variable holding the API key (sent as a bearer token; none if unset).
    #[arg(long, default_value = "OPENAI_API_KEY")]
    pub judge_key_env: String,
}

/// A configured judge.
pub struct Judge {
    http: reqwest::Client,
    url: String,
    model: String,
    key: Option<String>,
}

impl Judge {
    /// The judge `args` describe, or None without `--judge-url`.
    pub fn from_args(args: &JudgeArgs) -> Result<Option<Self>> {
        let Some(base) = &args.judge_url else { return Ok(None) };
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            bail!("--judge-url {base:?}: must start with http:// or https://");
        }
        let base = base.trim_end_matches('/');
        let url = if base.ends_with("/chat/completions") { base.to_string() } else { format!("{base}/chat/completions") };
        let key = std::env::var(&args.judge_key_env).ok().filter(|k| !k.is_empty());
        let http = reqwest::Client::builder().timeout(Duration::from_secs(120)).build().context("HTTP client")?;
        Ok(Some(Self { http, url, model: args.judge_model.clone(), key }))
    }

    /// "model at url", for reports.
    pub fn describe(&self) -> String {
        format!("{} at {}", self.model, self.url)
    }

    /// One chat completion (system + user, temperature 0): the reply text.
    pub async fn complete(&self, user: &str) -> Result<String> {
        let body = json!({
            "model": self.model,
            "temperature": 0,
            "max_tokens": 200,
            "messages": [
                {"role": "system", "content": prompts::JUDGE_SYSTEM},
                {"role": "user", "content": user},
            ],
        });
        let mut req = self.http.post(&self.url).json(&body);
        if let Some(k) = &self.key {
            req = req.bearer_auth(k);
        }
        let resp = req.send().await.with_context(|| format!("judge request to {}", self.url))?;
        let status = resp.status();
        let text = resp.text().await.context("judge response body")?;
        if !status.is_success() {
            bail!("judge HTTP {status}: {}", text.chars().take(300).collect::<String>());
        }
        let v: serde_json::Value = serde_json::from_str(&text).context("judge response is not JSON")?;
        v["choices"][0]["message"]["content"]
            .as_str()
            .map(str::to_string)
            .with_context(|| format!("judge response without choices[0].message.content: {text:.300}"))
    }

    /// Rubric scores for `keys` (1–5), asking twice if the first reply does not parse;
    /// None if neither does.
    pub async fn scores(&self, prompt: &str, keys: &[&str]) -> Result<Option<Vec<u8>>> {
        for _ in 0..2 {
            if let Some(s) = prompts::parse_scores(&self.complete(prompt).await?, keys) {
                return Ok(Some(s));
            }
        }
        Ok(None)
    }

    /// The safety verdict (asks twice like [`Judge::scores`]).
    pub async fn safe(&self, prompt: &str) -> Result<Option<bool>> {
        for _ in 0..2 {
            if let Some(s) = prompts::parse_safe(&self.complete(prompt).await?) {
                return Ok(Some(s));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A one-connection-per-reply HTTP server that answers every request with `content` as
    /// the assistant message, and hands back each request it saw.
    async fn fake_server(content: &'static str) -> (String, tokio::sync::mpsc::UnboundedReceiver<String>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // Read headers, then Content-Length bytes of body.
                loop {
                    let n = s.read(&mut chunk).await.unwrap();
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some(h) = text.find("\r\n\r\n") {
                        let len = text[..h]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap())
                            })
                            .unwrap_or(0);
                        if buf.len() >= h + 4 + len || n == 0 {
                            break;
                        }
                    }
                }
                tx.send(String::from_utf8_lossy(&buf).to_string()).unwrap();
                let body = json!({"choices": [{"message": {"role": "assistant", "content": content}}]}).to_string();
                let resp = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                s.write_all(resp.as_bytes()).await.unwrap();
            }
        });
        (format!("http://{addr}/v1"), rx)
    }

    #[tokio::test]
    async fn scores_from_a_fake_openai_server() {
        let (url, mut seen) =
            fake_server("{\"local_helpfulness\": 4, \"relevance\": 5, \"correctness\": 3, \"clarity\": 5, \"informativeness\": 2}").await;
        std::env::set_var("FIRSTWORD_TEST_JUDGE_KEY", "sekret");
        let args = JudgeArgs { judge_url: Some(url), judge_model: "judge-1".into(), judge_key_env: "FIRSTWORD_TEST_JUDGE_KEY".into() };
        let j = Judge::from_args(&args).unwrap().unwrap();
        let s =
            j.scores(&prompts::opener_prompt("Why is the sky blue?", "The sky is blue because"), &prompts::OPENER_CRITERIA).await.unwrap();
        assert_eq!(s, Some(vec![4, 5, 3, 5, 2]));
        let req = seen.recv().await.unwrap();
        assert!(req.starts_with("POST /v1/chat/completions "), "{req}");
        assert!(req.to_ascii_lowercase().contains("authorization: bearer sekret"));
        assert!(req.contains("\"model\":\"judge-1\"") && req.contains("The sky is blue because"));
    }

    #[tokio::test]
    async fn unparsable_reply_is_none_after_a_retry() {
        let (url, mut seen) = fake_server("I think it's quite good.").await;
        let args = JudgeArgs { judge_url: Some(url), judge_model: "m".into(), judge_key_env: "FIRSTWORD_NO_SUCH_VAR".into() };
        let j = Judge::from_args(&args).unwrap().unwrap();
        assert_eq!(j.safe(&prompts::safety_prompt("q", "a")).await.unwrap(), None);
        let first = seen.recv().await.unwrap();
        assert!(!first.to_ascii_lowercase().contains("authorization:"));
        assert!(seen.recv().await.is_some(), "asked twice");
    }

    #[test]
    fn no_url_no_judge() {
        let args = JudgeArgs { judge_url: None, judge_model: "m".into(), judge_key_env: "X".into() };
        assert!(Judge::from_args(&args).unwrap().is_none());
        let bad = JudgeArgs { judge_url: Some("ftp://x".into()), ..args };
        assert!(Judge::from_args(&bad).is_err());
    }
}
