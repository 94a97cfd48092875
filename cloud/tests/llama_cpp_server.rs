//! The OpenAI-compatible backend against a real third-party server: llama.cpp's HTTP
//! server (the prebuilt `xllamacpp` wheel of scripts/bench-setup.sh, started by
//! scripts/llama_server.py) serving Gemma 3 270M Q4_K_M, reached through a gateway.
//!
//! Opener placement: `opener_mode = "continue_final_message"`, i.e. the opener is a
//! final `assistant` message. llama.cpp ignores the vLLM fields
//! (`continue_final_message`, `add_generation_prompt`) but continues a final
//! assistant message on its own ("assistant prefill", on by default) when it renders
//! the chat template with Jinja, which the launcher keeps on; the test checks that on
//! the server itself (`/apply-template`) before generating.
//!
//! Needs ~/.cache/firstword/bench-venv (or $FIRSTWORD_BENCH_VENV) with xllamacpp and
//! models/gemma/gemma-3-270m-q4_k_m.gguf. Missing either skips with a note, or fails
//! when models are required (testkit's rule; scripts/test.sh requires them).

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use cloud::backend::openai::{OpenAiBackend, OpenAiConfig, OpenerMode};
use cloud::backend::{Backend, BackendConfig, BackendEvent, BackendRequest, DeltaStream};
use cloud::gateway::{spawn_with_backend, GatewayConfig};
use cloud::protocol::*;
use common::*;
use futures_util::StreamExt;
use serde_json::{json, Value};

const QUESTION: &str = "What is the capital of France?";
const OPENER: &str = "The capital of France is";
/// Name the server reports for the model (sent as `model` in requests).
const MODEL_NAME: &str = "gemma-3-270m";
/// Kept small so the test stays quick on a shared CPU.
const MAX_TOKENS: u32 = 24;

/// The model the server serves, relative to the repository root.
const MODEL: &str = "models/gemma/gemma-3-270m-q4_k_m.gguf";

fn venv_python() -> PathBuf {
    let venv = std::env::var_os("FIRSTWORD_BENCH_VENV").map(PathBuf::from).unwrap_or_else(|| {
        let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
        home.join(".cache/firstword/bench-venv")
    });
    venv.join("bin/python")
}

/// The venv's python and the model, or `None` under testkit's rule: skip with a note, or
/// panic when models are required.
fn prerequisites() -> Option<(PathBuf, PathBuf)> {
    let python = venv_python();
    let mut missing = Vec::new();
    if !python.is_file() {
        missing.push(format!("llama.cpp venv python {} not found (run scripts/bench-setup.sh)", python.display()));
    } else {
        let ok = Command::new(&python)
            .args(["-c", "import xllamacpp"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            missing.push(format!("{} cannot import xllamacpp (run scripts/bench-setup.sh)", python.display()));
        }
    }
    missing.extend(testkit::missing(&[MODEL]).iter().map(|m| format!("model {} not found", m.display())));
    if missing.is_empty() {
        return Some((python, testkit::root().join(MODEL)));
    }
    testkit::skip_or_fail(&format!("the llama.cpp server test cannot run: {}", missing.join("; ")));
    None
}

/// scripts/llama_server.py as a child process; killed when dropped.
struct LlamaServer {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    base: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl LlamaServer {
    /// Start the server and wait for its ready line (model loaded, listening).
    fn start(python: &Path, model: &Path) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("llama-server.log");
        let child = Command::new(python)
            .arg(testkit::root().join("scripts/llama_server.py"))
            .arg("--model")
            .arg(model)
            .args(["--port", "0", "--threads", "2", "--n-ctx", "2048"])
            .args(["--alias", MODEL_NAME])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start scripts/llama_server.py");
        let mut server = Self { child, base: String::new(), log, _dir: dir };
        let stdout = server.child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.strip_prefix("READY ") {
                    let _ = tx.send(addr.trim().to_string());
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(180)) {
            Ok(addr) => server.base = addr,
            Err(e) => panic!("llama.cpp server not ready ({e}); its log:\n{}", server.log_tail()),
        }
        assert!(server.base.starts_with("http://127.0.0.1:"), "{}", server.base);
        server
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let start = text.len().saturating_sub(3000);
        let start = (start..text.len()).find(|&i| text.is_char_boundary(i)).unwrap_or(0);
        text[start..].to_string()
    }

    /// Poll `GET /health` until it answers 200.
    async fn wait_healthy(&self, http: &reqwest::Client) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let r = http.get(format!("{}/health", self.base)).send().await;
            if r.as_ref().is_ok_and(|r| r.status().is_success()) {
                return;
            }
            assert!(Instant::now() < deadline, "llama.cpp /health not OK after 60 s ({r:?}); log:\n{}", self.log_tail());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The OpenAI backend, also keeping the raw text it streams (before the gateway's
/// seam filter, which would hide a restarted opener).
struct Recording {
    inner: OpenAiBackend,
    raw: Arc<Mutex<String>>,
}

impl Backend for Recording {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    fn stream(&self, req: BackendRequest) -> DeltaStream {
        let raw = self.raw.clone();
        Box::pin(self.inner.stream(req).inspect(move |ev| {
            if let Ok(BackendEvent::Delta(t)) = ev {
                raw.lock().unwrap().push_str(t);
            }
        }))
    }
}

fn normalized(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llama_cpp_server_continues_the_opener_through_the_gateway() {
    let Some((python, model)) = prerequisites() else {
        return;
    };
    let server = tokio::task::spawn_blocking(move || LlamaServer::start(&python, &model)).await.unwrap();
    let http = reqwest::Client::new();
    server.wait_healthy(&http).await;

    let cfg = OpenAiConfig {
        base_url: format!("{}/v1", server.base),
        model: MODEL_NAME.into(),
        api_key_env: None,
        api_key_file: None,
        opener_mode: OpenerMode::ContinueFinalMessage,
        temperature: Some(0.0),
        include_usage: true,
        connect_timeout_ms: 2_000,
        request_timeout_ms: 120_000,
        idle_timeout_ms: 60_000,
    };
    let backend = OpenAiBackend::new(cfg.clone()).unwrap();
    let req = ContinueRequest {
        id: 1,
        messages: vec![Message::user(QUESTION)],
        opener: OPENER.into(),
        opener_complete: false,
        mode: RecoveryMode::Natural,
        max_tokens: MAX_TOKENS,
    };

    // The placement: the opener is the last (assistant) message, and llama.cpp renders
    // it as an open turn, so generation continues right after the opener's last word.
    let body = backend.request_body(&req);
    assert_eq!(body["continue_final_message"], json!(true));
    let messages = body["messages"].as_array().unwrap();
    let last = messages.last().unwrap();
    assert_eq!((last["role"].as_str(), last["content"].as_str()), (Some("assistant"), Some(OPENER)));
    let rendered: Value = http
        .post(format!("{}/apply-template", server.base))
        .json(&json!({ "messages": messages }))
        .send()
        .await
        .expect("POST /apply-template")
        .json()
        .await
        .expect("JSON answer");
    let prompt = rendered["prompt"].as_str().expect("prompt string");
    assert!(
        prompt.ends_with(OPENER),
        "llama.cpp closed the assistant turn instead of continuing it; prompt ends {:?}",
        &prompt[prompt.len().saturating_sub(80)..]
    );

    // One continuation through a gateway.
    let raw = Arc::new(Mutex::new(String::new()));
    let gw = spawn_with_backend(
        GatewayConfig::new("127.0.0.1:0", TOKEN, BackendConfig::Openai(cfg)),
        Arc::new(Recording { inner: backend, raw: raw.clone() }),
    )
    .await
    .expect("gateway starts");
    let mut ws = session(&gw.url()).await;
    send_frame(&mut ws, &ClientFrame::Continue(req)).await;
    let out = collect(&mut ws, &[1]).await.remove(&1).unwrap();
    let raw = raw.lock().unwrap().clone();
    let joined = format!("{OPENER}{}", out.text);
    println!("raw continuation: {raw:?}\njoined: {joined:?}\n{out:?}");

    assert!(out.errors.is_empty(), "error frames: {:?}; log:\n{}", out.errors, server.log_tail());
    assert!(out.deltas >= 1, "no delta arrived: {out:?}");
    assert!(matches!(out.done, Some(FinishReason::Stop | FinishReason::Length)), "{out:?}");
    let usage = out.usage.unwrap();
    assert!(usage.prompt_tokens > 0, "usage comes from llama.cpp: {usage:?}");
    assert!((1..=MAX_TOKENS).contains(&usage.completion_tokens), "max_tokens is honoured: {usage:?}");
    assert!(out.timings.unwrap().first_delta_ms.is_some());

    // The joined answer: opener + a non-empty continuation that does not start over.
    assert!(!out.text.trim().is_empty(), "empty continuation: {out:?}");
    assert!(!normalized(&raw).starts_with(&normalized(OPENER)), "the server restarted the opener: {raw:?}");
    assert!(!normalized(&out.text).starts_with(&normalized(OPENER)), "{joined:?}");
    assert!(
        out.text.starts_with(|c: char| c.is_whitespace() || c.is_ascii_punctuation()),
        "the continuation joins the opener's last word: {joined:?}"
    );
    gw.shutdown().await;
}
