//! The μLM options of the opener, handoff and safety evals, and the runtime they share.

use std::path::PathBuf;

use anyhow::{Context, Result};

use daemon::config::Config;
use lm::checkpoint::{load_checkpoint, LoadedLm};

/// Which μLM checkpoint to evaluate.
#[derive(Debug, Clone, clap::Args)]
pub struct ModelArgs {
    /// μLM checkpoint directory (default: config lm.model_dir).
    #[arg(long)]
    pub model: Option<PathBuf>,
}

impl ModelArgs {
    /// Loads the checkpoint (config lm.quant and lm.threads apply); returns it and its directory.
    pub fn load(&self, cfg: &Config) -> Result<(LoadedLm, PathBuf)> {
        let dir = self.model.clone().unwrap_or_else(|| cfg.lm.model_dir.clone());
        let m = load_checkpoint(&dir, cfg.lm.quant, cfg.lm.threads)?;
        Ok((m, dir))
    }
}

/// The opener gate's harmful-request check when it is on for this checkpoint (`[gate]
/// harm_check`, `harm_head`, or mulm.json `opener.harm_check`), so that the evals gate as the
/// daemon does.
pub fn harm_check(cfg: &Config, model: &LoadedLm) -> Result<Option<lm::harm::HarmClassifier>> {
    lm::harm::HarmClassifier::from_config(&cfg.gate, model.tok.mulm().opener.harm_check).context("loading the gate's harmful-request check")
}

/// Where the gate fires for this checkpoint, as the daemon decides it: (score threshold from
/// `[gate] min_score`, else mulm.json `opener.gate_min_score`, else the default; the
/// harmful-request margin above which the check alone fires, mulm.json
/// `opener.harm_gate_margin`, else 0).
pub fn gate_thresholds(cfg: &Config, model: &LoadedLm) -> (f32, f32) {
    let o = &model.tok.mulm().opener;
    (cfg.gate.min_score.or(o.gate_min_score).unwrap_or(lm::gate::DEFAULT_MIN_SCORE), o.harm_gate_margin())
}

/// The harmful-request check's margin for `prompt` (None when the check is off).
pub fn harm_margin(check: Option<&lm::harm::HarmClassifier>, prompt: &str) -> Result<Option<f32>> {
    check.map(|c| c.margin(prompt)).transpose().context("harmful-request check")
}

/// A small tokio runtime for the judge's HTTP calls and the cloud continuations.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().context("tokio runtime")
}

/// The greedy opener for `query` at `words` words, its prompt bias withheld as the daemon
/// withholds it for the harmful-request margin `harm` ([`lm::OpenerEngine::opener_for_harm`];
/// None: the check is off). A query too long for the μLM's context is answered with
/// mulm.json's generic fallback opener (what the runtime does above `max_query_tokens`), not
/// an error, so one long prompt does not stop an eval.
pub fn opener(engine: &mut lm::OpenerEngine<'_>, query: &str, words: usize, harm: Option<f32>) -> Result<lm::Opener> {
    match engine.opener_for_harm(lm::OpenerInput::Query(query), Some(words), harm, |_, _| {}) {
        Err(lm::LmError::PromptTooLong { tokens, .. }) => {
            let text = engine.settings.fallback_opener.trim().to_string();
            Ok(lm::Opener {
                words: text.split_whitespace().map(str::to_string).collect(),
                text,
                tokens: Vec::new(),
                token_logprobs: Vec::new(),
                prompt_tokens: tokens,
                stop: lm::StopReason::Fallback,
                timings: Default::default(),
            })
        }
        r => r.context("μLM opener"),
    }
}
