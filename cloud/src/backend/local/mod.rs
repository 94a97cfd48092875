//! Local backend: Gemma 3 270M *base* (GGUF, Q4_K_M) on the CPU with candle
//! ([`lm::gemma3`]).
//!
//! It stands in for a cloud LLM on machines without network. Being a base model,
//! it gets a plain-text transcript (few-shot examples, then the conversation,
//! then `Assistant: <opener>`) and simply keeps writing; see
//! [`crate::continuation::base_model_prompt`]. Generation runs on one dedicated
//! thread (requests queue; the CPU is the bottleneck anyway) and stops on cancel,
//! `max_tokens`, end-of-sequence, a blank line or the next `User:` turn.
//!
//! The few-shot prefix is the same for every request of a recovery mode, so its
//! KV cache is computed once and reused (prefix caching), which keeps the
//! time-to-first-token proportional to the conversation, not the prompt.

pub mod tokenizer;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::mpsc as std_mpsc;
use std::time::Instant;

use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};
use candle_transformers::generation::{LogitsProcessor, Sampling};
use serde::Deserialize;
use tokio::sync::mpsc;

use super::{receiver_stream, Backend, BackendError, BackendEvent, BackendRequest, CancelToken, DeltaStream, STREAM_CHANNEL};
use crate::continuation::{base_model_prompt_prefix, base_model_prompt_tail, STOP_SEQUENCES};
use crate::protocol::{ContinueRequest, FinishReason, RecoveryMode, Usage};
use lm::gemma3::{Gemma3, KvSnapshot};
use tokenizer::{GemmaTokenizer, StreamDecoder};

/// Default location of the model inside the workspace.
pub const DEFAULT_MODEL_PATH: &str = "models/gemma/gemma-3-270m-q4_k_m.gguf";

/// `[backend] kind = "local"` settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalConfig {
    /// GGUF file (Gemma 3, any quantization candle reads).
    #[serde(default = "default_model_path")]
    pub model_path: PathBuf,
    /// Most tokens (prompt + continuation) per request; also sizes the rotary tables.
    #[serde(default = "default_max_context")]
    pub max_context: usize,
    /// Sampling temperature; 0 = greedy (deterministic).
    #[serde(default)]
    pub temperature: f64,
    /// Nucleus sampling mass when `temperature > 0`.
    #[serde(default = "default_top_p")]
    pub top_p: f64,
    /// Penalty on recently used tokens (a 270M model loops easily); 1.0 = off.
    #[serde(default = "default_repeat_penalty")]
    pub repeat_penalty: f32,
    /// How many recent tokens the repeat penalty looks at.
    #[serde(default = "default_repeat_last_n")]
    pub repeat_last_n: usize,
    /// Sampling seed.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Reuse the KV cache of the few-shot prefix across requests.
    #[serde(default = "default_true")]
    pub prefix_cache: bool,
    /// Worker threads for candle's quantized matmuls (its process-wide pool, sized
    /// once from `CANDLE_NUM_THREADS`). Set before the model loads, and only if
    /// that variable is not already set. Why: the pool's workers spin at a barrier
    /// after every matmul; on a busy machine (other processes on the same cores)
    /// one descheduled worker stalls each of the ~130 matmuls per token — measured
    /// here on 2 shared cores: ~100 ms/token with 1 thread vs ~500+ ms with 2.
    /// `None` keeps candle's default (all physical cores).
    #[serde(default)]
    pub threads: Option<usize>,
    /// Requests waiting for the single worker beyond the one it is generating; a
    /// request that finds the queue full is refused at once with `busy`.
    #[serde(default = "default_queue_depth")]
    pub queue_depth: usize,
}

fn default_queue_depth() -> usize {
    4
}

impl LocalConfig {
    /// Range checks; errors name the key (`backend.temperature`, …), non-finite
    /// numbers included.
    pub fn validate(&self) -> Result<(), crate::error::CloudError> {
        use super::check_range;
        check_range("backend.temperature", self.temperature, 0.0, 100.0)?;
        check_range("backend.top_p", self.top_p, 0.0, 1.0)?;
        check_range("backend.repeat_penalty", self.repeat_penalty as f64, 0.01, 100.0)?;
        if !(16..=131_072).contains(&self.max_context) {
            return Err(crate::error::CloudError::invalid_config("backend.max_context", " must be in 16..=131072".into()));
        }
        if self.queue_depth == 0 || self.queue_depth > 4096 {
            return Err(crate::error::CloudError::invalid_config("backend.queue_depth", " must be in 1..=4096".into()));
        }
        Ok(())
    }
}

fn default_model_path() -> PathBuf {
    PathBuf::from(DEFAULT_MODEL_PATH)
}
fn default_max_context() -> usize {
    2048
}
fn default_top_p() -> f64 {
    0.9
}
fn default_repeat_penalty() -> f32 {
    1.15
}
fn default_repeat_last_n() -> usize {
    64
}
fn default_seed() -> u64 {
    299_792_458
}
fn default_true() -> bool {
    true
}

impl Default for LocalConfig {
    fn default() -> Self {
        Self {
            model_path: default_model_path(),
            max_context: default_max_context(),
            temperature: 0.0,
            top_p: default_top_p(),
            repeat_penalty: default_repeat_penalty(),
            repeat_last_n: default_repeat_last_n(),
            seed: default_seed(),
            prefix_cache: true,
            threads: None,
            queue_depth: default_queue_depth(),
        }
    }
}

struct Job {
    request: ContinueRequest,
    cancel: CancelToken,
    tx: mpsc::Sender<Result<BackendEvent, BackendError>>,
}

/// The worker's bounded job queue: submitting never blocks; a full queue is
/// [`BackendError::Busy`], a stopped worker [`BackendError::Unavailable`].
pub(crate) struct JobQueue<T> {
    tx: std_mpsc::SyncSender<T>,
}

impl<T> std::fmt::Debug for JobQueue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JobQueue")
    }
}

impl<T> JobQueue<T> {
    /// A queue holding at most `depth` waiting jobs, and its receiving end.
    pub(crate) fn new(depth: usize) -> (Self, std_mpsc::Receiver<T>) {
        let (tx, rx) = std_mpsc::sync_channel(depth);
        (Self { tx }, rx)
    }

    /// Queue `job` or refuse it at once.
    pub(crate) fn submit(&self, job: T) -> Result<(), BackendError> {
        self.tx.try_send(job).map_err(|e| match e {
            std_mpsc::TrySendError::Full(_) => BackendError::Busy("the local model's queue is full; retry later".into()),
            std_mpsc::TrySendError::Disconnected(_) => BackendError::Unavailable("Gemma worker thread has stopped".into()),
        })
    }
}

/// The local Gemma backend (cheap to share; the model lives on its worker thread).
#[derive(Debug)]
pub struct LocalBackend {
    jobs: JobQueue<Job>,
    max_context: usize,
    /// Time to load the model, ms.
    pub load_ms: f64,
}

/// Hand one event to the gateway without ever blocking the worker: every job's
/// channel holds all the events it can produce (see [`LocalBackend::stream`]),
/// so a full channel means the consumer is gone or broken; `false` ends the job.
fn deliver(tx: &mpsc::Sender<Result<BackendEvent, BackendError>>, item: Result<BackendEvent, BackendError>) -> bool {
    tx.try_send(item).is_ok()
}

fn model_err(e: impl std::fmt::Display) -> BackendError {
    BackendError::Model(e.to_string())
}

impl LocalBackend {
    /// Load the model and tokenizer (blocking, ~1 s) and start the worker thread.
    pub fn load(config: &LocalConfig) -> Result<Self, BackendError> {
        if let Some(n) = config.threads.filter(|n| *n > 0) {
            if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
                // Must happen before candle's thread pool is first used (it reads the
                // variable once); done here, at start-up, before any inference.
                std::env::set_var("CANDLE_NUM_THREADS", n.to_string());
            }
        }
        let t0 = Instant::now();
        let path = &config.model_path;
        let mut file = std::fs::File::open(path).map_err(|e| BackendError::Config(format!("model file {}: {e}", path.display())))?;
        // candle panics on some malformed headers (`general.alignment = 0` divides
        // by zero): check what it would trip on first, and keep any other panic of
        // its parser a load error rather than a crash.
        check_gguf_alignment(&mut file).map_err(|e| model_err(format!("{}: {e}", path.display())))?;
        let ct = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| gguf_file::Content::read(&mut file)))
            .map_err(|_| model_err(format!("{}: GGUF parser panicked", path.display())))?
            .map_err(|e| model_err(format!("{}: {e}", path.display())))?;
        let tokenizer = GemmaTokenizer::from_gguf(&ct).map_err(model_err)?;
        let model = Gemma3::from_gguf(&ct, &mut file, &Device::Cpu, config.max_context).map_err(model_err)?;
        let load_ms = t0.elapsed().as_secs_f64() * 1e3;
        let (jobs, rx) = JobQueue::<Job>::new(config.queue_depth.max(1));
        let mut worker = Worker { model, tokenizer, config: config.clone(), prefix_cache: HashMap::new() };
        // Compute the default mode's few-shot prefix before the backend counts as ready, so
        // the first request does not pay for it (~150 tokens of prefill, seconds on 2 cores)
        // and it does not compete with the device's first turn (Whisper, μLM) for the cores.
        if worker.config.prefix_cache {
            if let Err(e) = worker.warm_prefix(RecoveryMode::default()) {
                tracing::warn!(error = %e, "prefix warm-up failed");
            }
        }
        std::thread::Builder::new()
            .name("gemma-worker".into())
            .spawn(move || {
                while let Ok(job) = rx.recv() {
                    worker.run(job);
                }
            })
            .map_err(|e| BackendError::Unavailable(format!("spawn worker: {e}")))?;
        tracing::info!(model = %path.display(), load_ms, "local Gemma backend ready");
        Ok(Self { jobs, max_context: config.max_context, load_ms })
    }
}

impl Backend for LocalBackend {
    fn kind(&self) -> &'static str {
        "local"
    }

    fn stream(&self, req: BackendRequest) -> DeltaStream {
        // One delta per generated token at most, plus the final item: sized so the
        // worker never has to wait for the gateway (see `deliver`).
        let most = (req.request.max_tokens as usize).min(self.max_context) + 2;
        let (tx, rx) = mpsc::channel(most.max(STREAM_CHANNEL));
        let job = Job { request: req.request, cancel: req.cancel, tx: tx.clone() };
        if let Err(e) = self.jobs.submit(job) {
            let _ = tx.try_send(Err(e));
        }
        receiver_stream(rx)
    }
}

/// Cached model state after a mode's few-shot prefix.
struct PrefixState {
    tokens: Vec<u32>,
    kv: KvSnapshot,
}

struct Worker {
    model: Gemma3,
    tokenizer: GemmaTokenizer,
    config: LocalConfig,
    prefix_cache: HashMap<RecoveryMode, PrefixState>,
}

/// Longest suffix of `text` that is a proper prefix of a stop sequence (held back).
fn stop_hold(text: &str) -> usize {
    let mut hold = 0;
    for stop in STOP_SEQUENCES {
        for n in (1..stop.len()).rev() {
            if n > hold && text.ends_with(&stop[..n]) {
                hold = n;
                break;
            }
        }
    }
    hold
}

impl Worker {
    fn run(&mut self, job: Job) {
        let tx = job.tx.clone();
        // A panic inside candle or the tokenizer ends this request, not the worker
        // (which would leave every later request `unavailable`).
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.generate(job)))
            .unwrap_or_else(|_| Err(BackendError::Model("generation panicked".into())));
        let item = result.map(|(reason, usage)| BackendEvent::Finished { reason, usage });
        let _ = deliver(&tx, item);
    }

    /// Compute and keep the KV cache of `mode`'s few-shot prefix (no-op if present).
    fn warm_prefix(&mut self, mode: RecoveryMode) -> candle_core::Result<()> {
        if !self.prefix_cache.contains_key(&mode) {
            let tokens = self.tokenizer.encode(&base_model_prompt_prefix(mode), true);
            let t = Tensor::new(tokens.as_slice(), &Device::Cpu)?.unsqueeze(0)?;
            self.model.forward(&t, 0)?;
            self.prefix_cache.insert(mode, PrefixState { tokens, kv: self.model.kv_snapshot()? });
        }
        Ok(())
    }

    /// Prefill the prompt, returning the logits of its last position.
    fn prefill(&mut self, mode: RecoveryMode, full: &[u32]) -> candle_core::Result<Tensor> {
        if self.config.prefix_cache {
            self.warm_prefix(mode)?;
            if let Some(p) = self.prefix_cache.get(&mode) {
                // Reuse only if the full prompt tokenizes to prefix + rest.
                if full.len() > p.tokens.len() && full.starts_with(&p.tokens) {
                    self.model.restore_kv(&p.kv)?;
                    let rest = Tensor::new(&full[p.tokens.len()..], &Device::Cpu)?.unsqueeze(0)?;
                    return self.model.forward(&rest, p.tokens.len());
                }
            }
        }
        let t = Tensor::new(full, &Device::Cpu)?.unsqueeze(0)?;
        self.model.forward(&t, 0)
    }

    fn generate(&mut self, job: Job) -> Result<(FinishReason, Usage), BackendError> {
        let req = &job.request;
        let prompt = base_model_prompt_prefix(req.mode) + &base_model_prompt_tail(req);
        // Cheap bound first: no token covers more than `max_piece_bytes` bytes, so a
        // prompt longer than that many per position cannot fit; refuse it before
        // spending any time on it.
        let limit = self.model.max_context().saturating_mul(self.tokenizer.max_piece_bytes());
        if prompt.len() > limit {
            return Err(BackendError::Model(format!(
                "prompt of {} bytes cannot fit max_context {} tokens",
                prompt.len(),
                self.model.max_context()
            )));
        }
        let mut tokens = self.tokenizer.encode(&prompt, true);
        let prompt_len = tokens.len();
        let room = self.model.max_context().saturating_sub(prompt_len);
        if room < 2 {
            return Err(BackendError::Model(format!(
                "prompt of {prompt_len} tokens does not fit max_context {}",
                self.model.max_context()
            )));
        }
        let max_new = (req.max_tokens as usize).min(room - 1);
        let mut usage = Usage { prompt_tokens: prompt_len as u32, completion_tokens: 0 };
        if job.cancel.is_cancelled() {
            return Ok((FinishReason::Cancelled, usage));
        }
        let mut logits = self.prefill(req.mode, &tokens).map_err(model_err)?;
        let sampling = if self.config.temperature <= 0.0 {
            Sampling::ArgMax
        } else {
            Sampling::TopP { p: self.config.top_p, temperature: self.config.temperature }
        };
        let mut sampler = LogitsProcessor::from_sampling(self.config.seed, sampling);
        let mut decoder = StreamDecoder::default();
        let mut text = String::new();
        let mut sent = 0usize;
        loop {
            if job.cancel.is_cancelled() {
                return Ok((FinishReason::Cancelled, usage));
            }
            let l = logits.squeeze(0).and_then(|l| l.to_dtype(candle_core::DType::F32)).map_err(model_err)?;
            let l = if self.config.repeat_penalty != 1.0 {
                let start = tokens.len().saturating_sub(self.config.repeat_last_n);
                candle_transformers::utils::apply_repeat_penalty(&l, self.config.repeat_penalty, &tokens[start..]).map_err(model_err)?
            } else {
                l
            };
            let next = sampler.sample(&l).map_err(model_err)?;
            if next == self.tokenizer.eos || Some(next) == self.tokenizer.end_of_turn {
                return self.flush(&job, &text, sent, FinishReason::Stop, usage);
            }
            tokens.push(next);
            usage.completion_tokens += 1;
            text.push_str(&decoder.push(&self.tokenizer, next));
            if let Some(pos) = STOP_SEQUENCES.iter().filter_map(|s| text[sent..].find(s).map(|p| sent + p)).min() {
                return self.flush(&job, &text[..pos], sent, FinishReason::Stop, usage);
            }
            let safe = text.len() - stop_hold(&text);
            if safe > sent {
                if !deliver(&job.tx, Ok(BackendEvent::Delta(text[sent..safe].to_string()))) {
                    return Ok((FinishReason::Cancelled, usage));
                }
                sent = safe;
            }
            if usage.completion_tokens as usize >= max_new {
                return self.flush(&job, &text, sent, FinishReason::Length, usage);
            }
            let input = Tensor::new(&[next], &Device::Cpu).and_then(|t| t.unsqueeze(0)).map_err(model_err)?;
            let tf = Instant::now();
            logits = self.model.forward(&input, tokens.len() - 1).map_err(model_err)?;
            tracing::trace!(forward_ms = tf.elapsed().as_secs_f64() * 1e3, "decode step");
        }
    }

    /// Send what is left of `text` after `sent`, then report `reason`.
    fn flush(&self, job: &Job, text: &str, sent: usize, reason: FinishReason, usage: Usage) -> Result<(FinishReason, Usage), BackendError> {
        if text.len() > sent && !deliver(&job.tx, Ok(BackendEvent::Delta(text[sent..].to_string()))) {
            return Ok((FinishReason::Cancelled, usage));
        }
        Ok((reason, usage))
    }
}

/// The GGUF header check candle needs (general.alignment 0 divides by zero in its parser);
/// one implementation, in the μLM crate.
pub use lm::gguf_check::check_gguf_alignment;

#[cfg(test)]
mod tests {
    use super::{check_gguf_alignment, deliver, stop_hold, JobQueue};
    use crate::backend::{BackendError, BackendEvent};

    /// A GGUF v3 header with one string and one u32 `general.alignment` entry.
    fn header(alignment: u32) -> Vec<u8> {
        let mut b = b"GGUF".to_vec();
        b.extend(3u32.to_le_bytes());
        b.extend(0u64.to_le_bytes());
        b.extend(2u64.to_le_bytes());
        let key = |b: &mut Vec<u8>, k: &str| {
            b.extend((k.len() as u64).to_le_bytes());
            b.extend(k.as_bytes());
        };
        key(&mut b, "general.name");
        b.extend(8u32.to_le_bytes());
        b.extend(3u64.to_le_bytes());
        b.extend(b"abc");
        key(&mut b, "general.alignment");
        b.extend(4u32.to_le_bytes());
        b.extend(alignment.to_le_bytes());
        b
    }

    #[test]
    fn zero_alignment_is_refused_before_candle_reads_it() {
        let e = check_gguf_alignment(&mut std::io::Cursor::new(header(0))).unwrap_err();
        assert!(e.contains("general.alignment = 0"), "{e}");
        assert!(check_gguf_alignment(&mut std::io::Cursor::new(header(3))).is_err());
        let mut ok = std::io::Cursor::new(header(32));
        check_gguf_alignment(&mut ok).unwrap();
        assert_eq!(ok.position(), 0, "reader rewound for candle");
        // What the check protects against: candle itself panics on this header.
        let panicked =
            std::panic::catch_unwind(|| candle_core::quantized::gguf_file::Content::read(&mut std::io::Cursor::new(header(0))).map(|_| ()));
        assert!(panicked.is_err(), "candle no longer panics: the check may go");
        assert!(check_gguf_alignment(&mut std::io::Cursor::new(b"GGUF\x03".to_vec())).is_err());
    }

    #[test]
    fn a_full_job_queue_answers_busy_at_once() {
        let (q, _rx) = JobQueue::<u32>::new(2);
        q.submit(1).unwrap();
        q.submit(2).unwrap();
        assert!(matches!(q.submit(3), Err(BackendError::Busy(_))));
        drop(_rx);
        assert!(matches!(q.submit(4), Err(BackendError::Unavailable(_))));
    }

    #[test]
    fn the_worker_never_waits_for_a_full_stream() {
        let (tx, _rx) = tokio::sync::mpsc::channel(1);
        assert!(deliver(&tx, Ok(BackendEvent::Delta("a".into()))));
        // Full: refused at once (the old blocking_send waited here forever).
        assert!(!deliver(&tx, Ok(BackendEvent::Delta("b".into()))));
    }

    #[test]
    fn holds_possible_stop_prefixes() {
        assert_eq!(stop_hold("Paris.\n"), 1);
        assert_eq!(stop_hold("Paris.\nUs"), 3);
        assert_eq!(stop_hold("Paris."), 0);
    }
}
