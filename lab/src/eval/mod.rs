//! `firstword eval …`: the paper's evaluation on firstword's own models (issue 7; the
//! measures of ../shared/paper.md), on evaluation sets from the package registries, with the
//! prompts flagged by the training recipe's contamination check excluded.
//!
//! - `eval mc`: zero-shot multiple choice scored as lm-eval-harness does (mc.rs);
//! - `eval openers`: opener quality against GPT-4 reference answers (openers.rs);
//! - `eval handoff`: opener + cloud continuation at 4, 8 and 16 words (handoff.rs);
//! - `eval safety`: Do-Not-Answer refusal rates (safety.rs);
//! - `eval followup`: follow-up questions with and without the conversation (followup.rs).

// Opener, handoff and safety evals and what they share.
mod compare;
mod continuator;
mod everyday;
mod followup;
mod handoff;
mod judge;
mod lm_args;
mod nll;
mod openers;
mod prompts;
mod registry_sets;
pub(crate) mod report_md;
mod safety;
mod text_checks;

// Zero-shot multiple choice (`eval mc`).
mod mc;
mod mc_data;
mod mc_models;
mod mc_paired;
mod mc_plot;
mod mc_report;
mod mc_score;

use anyhow::Result;
use clap::Subcommand;

use daemon::config::Config;

#[derive(Debug, Subcommand)]
pub enum EvalCmd {
    /// Zero-shot multiple choice (HellaSwag, PIQA, BoolQ, ARC-Challenge, OBQA): acc and
    /// acc_norm by log-likelihood, the paper's Table 4 layout.
    Mc(mc::McArgs),
    /// Greedy openers at 4 and 8 words on Vicuna-80 and short AlpacaEval prompts.
    Openers(openers::OpenersArgs),
    /// Opener + continuation from the configured cloud at 4, 8 and 16 words.
    Handoff(handoff::HandoffArgs),
    /// Do-Not-Answer: the μLM's refusal rate at 8 words.
    Safety(safety::SafetyArgs),
    /// Follow-up questions that depend on the first turn, with and without the history.
    Followup(followup::FollowupArgs),
    /// Held-out everyday questions: the share of 8-word openers on topic with no repeat.
    Everyday(everyday::EverydayArgs),
    /// A candidate μLM against the baseline: paired differences of the everyday, openers and
    /// safety reports two earlier runs wrote.
    Compare(compare::CompareArgs),
}

/// Options every eval takes.
#[derive(Debug, Clone, clap::Args)]
pub struct EvalArgs {
    /// Print the JSON report to stdout.
    #[arg(long)]
    pub json: bool,
    /// At most N items per task (quick runs).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Where the markdown report and plots go.
    #[arg(long, default_value = "docs/results")]
    pub out_dir: std::path::PathBuf,
}

pub fn run(cfg: &Config, cmd: EvalCmd) -> Result<()> {
    match cmd {
        EvalCmd::Mc(a) => mc::run(cfg, a),
        EvalCmd::Openers(a) => openers::run(cfg, &a),
        EvalCmd::Handoff(a) => handoff::run(cfg, &a),
        EvalCmd::Safety(a) => safety::run(cfg, &a),
        EvalCmd::Followup(a) => followup::run(cfg, &a),
        EvalCmd::Everyday(a) => everyday::run(cfg, &a),
        EvalCmd::Compare(a) => compare::run(&a),
    }
}
