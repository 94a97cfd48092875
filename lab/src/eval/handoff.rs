//! `firstword eval handoff`: the μLM's opener + the configured cloud's continuation at 4, 8
//! and 16 words on the opener prompts (paper §"Results": handoff correction rate 3.7 % / 8.4 % /
//! 16.4 %, stitched-response judge scores).
//!
//! Measures per budget: handoff correction rate (turns with a `repair`), seam overlap of the raw
//! continuation (text_checks::seam_overlap, before the gateway's seam hygiene), how often the
//! seam filter removed an overlap, overlap left in what the device hears, and with a judge the
//! four stitched-response criteria.

use anyhow::{Context, Result};
use serde::Serialize;

use super::continuator::{seam_stripped, Continuator, Continued};
use super::judge::{Judge, JudgeArgs};
use super::lm_args::{self, runtime, ModelArgs};
use super::prompts::{continuation_prompt, CONTINUATION_CRITERIA};
use super::registry_sets as sets;
use super::report_md::{self as rep, RunMeta};
use super::text_checks::{self as tc, SeamOverlapKind};
use super::EvalArgs;
use daemon::config::Config;

/// Prompts when `--limit` is not given (the local Gemma writes ~10 tokens/s on a busy CPU).
pub const DEFAULT_LIMIT: usize = 40;

/// Options of `eval handoff`.
#[derive(Debug, Clone, clap::Args)]
pub struct HandoffArgs {
    #[command(flatten)]
    pub common: EvalArgs,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Opener budgets (words), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "4,8,16")]
    pub words: Vec<usize>,
    /// Most continuation tokens (default: config cloud.max_tokens).
    #[arg(long)]
    pub max_tokens: Option<u32>,
    #[command(flatten)]
    pub judge: JudgeArgs,
}

/// One turn.
#[derive(Debug, Clone, Serialize)]
pub struct Turn {
    pub id: String,
    pub words: usize,
    pub prompt: String,
    pub opener: String,
    pub continuation: Continued,
    /// Seam overlap of the raw continuation (None: no overlap, or no raw text).
    pub raw_overlap: Option<(SeamOverlapKind, usize)>,
    /// The seam filter removed an overlap (None without raw text).
    pub seam_stripped: Option<bool>,
    /// Seam overlap left in the delivered text.
    pub delivered_overlap: Option<(SeamOverlapKind, usize)>,
    /// Judge scores, [`CONTINUATION_CRITERIA`] order.
    pub rubric: Option<Vec<u8>>,
}

/// Aggregates of one budget.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub words: usize,
    pub n: usize,
    /// Turns whose continuation failed (excluded from the rates below).
    pub errors: usize,
    /// Share of turns with a `repair` event (the paper's handoff correction rate).
    pub correction_rate: f64,
    /// Share of raw continuations that restart or echo the opener (None without raw text).
    pub raw_overlap_rate: Option<f64>,
    pub raw_restart_rate: Option<f64>,
    pub raw_echo_rate: Option<f64>,
    /// Share where the gateway's seam filter removed an overlap.
    pub stripped_rate: Option<f64>,
    /// Share of delivered continuations still repeating the opener.
    pub delivered_overlap_rate: f64,
    /// Mean words of the delivered continuation.
    pub continuation_words: Option<f64>,
    pub rubric_means: Option<Vec<f64>>,
    pub rubric_overall: Option<f64>,
    pub judged: usize,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub meta: RunMeta,
    pub cloud: String,
    pub mode: String,
    pub max_tokens: u32,
    pub excluded_contaminated: Option<usize>,
    pub judge: Option<String>,
    pub summaries: Vec<Summary>,
    pub turns: Vec<Turn>,
}

pub fn run(cfg: &Config, args: &HandoffArgs) -> Result<()> {
    for &w in &args.words {
        if !(1..=lm::opener::MAX_WORDS).contains(&w) {
            anyhow::bail!("--words {w}: must be in 1..={}", lm::opener::MAX_WORDS);
        }
    }
    let limit = Some(args.common.limit.unwrap_or(DEFAULT_LIMIT));
    let (prompts, _, excluded) = super::openers::select(sets::load_alpaca()?, limit)?;
    let (m, dir) = args.model.load(cfg)?;
    let judge = Judge::from_args(&args.judge)?;
    let rt = runtime()?;
    let cloud = rt.block_on(Continuator::start(&cfg.cloud)).context("starting the cloud")?;
    let max_tokens = args.max_tokens.unwrap_or(cfg.cloud.max_tokens);
    let mut engine = lm::OpenerEngine::new(&m.model, &m.tok)?;
    // The margin only steers the opener here (the prompt bias's harm limit), as in the daemon.
    let harm = lm_args::harm_check(cfg, &m)?;
    let mut turns = Vec::new();
    for (k, it) in prompts.iter().enumerate() {
        let margin = lm_args::harm_margin(harm.as_ref(), &it.instruction)?;
        for &w in &args.words {
            let o = lm_args::opener(&mut engine, &it.instruction, w, margin).with_context(|| it.id.clone())?;
            let complete = o.stop == lm::StopReason::EndOfTurn;
            let c = rt.block_on(cloud.run(&it.instruction, &o.text, complete, cfg.cloud.mode, max_tokens));
            let rubric = match (&judge, &c.error) {
                (Some(j), None) => {
                    rt.block_on(j.scores(&continuation_prompt(&it.instruction, &o.text, &c.text), &CONTINUATION_CRITERIA))?
                }
                _ => None,
            };
            turns.push(Turn {
                id: it.id.clone(),
                words: w,
                prompt: it.instruction.clone(),
                raw_overlap: c.raw.as_deref().and_then(|r| tc::seam_overlap(&o.text, r)),
                seam_stripped: c.raw.as_deref().map(|r| seam_stripped(&o.text, r)),
                delivered_overlap: tc::seam_overlap(&o.text, &c.text),
                opener: o.text,
                continuation: c,
                rubric,
            });
        }
        eprintln!("eval handoff: {}/{}", k + 1, prompts.len());
    }
    let description = cloud.describe(&cfg.cloud);
    rt.block_on(cloud.shutdown());
    let report = Report {
        meta: RunMeta::new(&m, &dir),
        cloud: description,
        mode: format!("{:?}", cfg.cloud.mode).to_lowercase(),
        max_tokens,
        excluded_contaminated: excluded,
        judge: judge.as_ref().map(Judge::describe),
        summaries: args.words.iter().map(|&w| summarize(&turns, w)).collect(),
        turns,
    };
    let path = rep::write_file(&args.common.out_dir, "eval_handoff.md", &markdown(&report))?;
    rep::write_file(&args.common.out_dir, "eval_handoff.json", &crate::provenance::report_json(&report)?)?;
    let series: Vec<(String, Vec<f64>)> = report
        .summaries
        .iter()
        .map(|x| {
            let v = [x.correction_rate, x.raw_overlap_rate.unwrap_or(0.0), x.stripped_rate.unwrap_or(0.0), x.delivered_overlap_rate];
            (format!("{} words", x.words), v.to_vec())
        })
        .collect();
    let cloud = if cfg.cloud.url.is_some() { "gateway" } else { "local Gemma" };
    let title = format!("eval handoff: μLM-{} + {cloud}", report.meta.model);
    let groups = ["correction", "raw overlap", "stripped", "overlap heard"];
    rep::png_bars(&args.common.out_dir, "eval_handoff.png", &title, &groups, &series)?;
    rep::emit(&report, args.common.json, &path)
}

/// Aggregates the turns of budget `words`.
pub fn summarize(turns: &[Turn], words: usize) -> Summary {
    let all: Vec<&Turn> = turns.iter().filter(|t| t.words == words).collect();
    let ok: Vec<&Turn> = all.iter().copied().filter(|t| t.continuation.error.is_none()).collect();
    let n = ok.len();
    let raw: Vec<&Turn> = ok.iter().copied().filter(|t| t.continuation.raw.is_some()).collect();
    let raw_rate = |f: &dyn Fn(&Turn) -> bool| (!raw.is_empty()).then(|| tc::rate(raw.iter().filter(|t| f(t)).count(), raw.len()));
    let judged: Vec<&Vec<u8>> = ok.iter().filter_map(|t| t.rubric.as_ref()).collect();
    let rubric_means = (!judged.is_empty()).then(|| {
        (0..CONTINUATION_CRITERIA.len()).map(|c| judged.iter().map(|r| r[c] as f64).sum::<f64>() / judged.len() as f64).collect::<Vec<_>>()
    });
    Summary {
        words,
        n,
        errors: all.len() - n,
        correction_rate: tc::rate(ok.iter().filter(|t| t.continuation.repaired).count(), n),
        raw_overlap_rate: raw_rate(&|t| t.raw_overlap.is_some()),
        raw_restart_rate: raw_rate(&|t| matches!(t.raw_overlap, Some((SeamOverlapKind::Restart, _)))),
        raw_echo_rate: raw_rate(&|t| matches!(t.raw_overlap, Some((SeamOverlapKind::Echo, _)))),
        stripped_rate: raw_rate(&|t| t.seam_stripped == Some(true)),
        delivered_overlap_rate: tc::rate(ok.iter().filter(|t| t.delivered_overlap.is_some()).count(), n),
        continuation_words: tc::mean(ok.iter().map(|t| t.continuation.text.split_whitespace().count() as f64)),
        rubric_overall: rubric_means.as_ref().and_then(|m| tc::mean(m.iter().copied())),
        rubric_means,
        judged: judged.len(),
    }
}

fn markdown(r: &Report) -> String {
    let n_prompts = r.turns.iter().map(|t| &t.id).collect::<std::collections::HashSet<_>>().len();
    let mut s = format!("# eval handoff\n\n{}", r.meta.markdown(n_prompts));
    s += &format!(
        "- cloud: {} (recovery mode {}, max {} tokens)\n- prompts: spread over the opener set (Vicuna-80 ∪ AlpacaEval ≤ 15 words), {}\n\n",
        r.cloud,
        r.mode,
        r.max_tokens,
        match r.excluded_contaminated {
            Some(n) => format!("{n} contamination-flagged prompts excluded first"),
            None => "no contamination list found".into(),
        }
    );
    s += "## Results\n\n| words | n | errors | correction rate | raw seam overlap (restart / echo) | stripped by gateway | overlap heard | continuation words | judge overall |\n|---|---|---|---|---|---|---|---|---|\n";
    for x in &r.summaries {
        let raw = match (x.raw_overlap_rate, x.raw_restart_rate, x.raw_echo_rate) {
            (Some(a), Some(b), Some(c)) => format!("{} ({} / {})", rep::pct(a), rep::pct(b), rep::pct(c)),
            _ => "n/a (remote gateway)".into(),
        };
        s += &format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            x.words,
            x.n,
            x.errors,
            rep::pct(x.correction_rate),
            raw,
            x.stripped_rate.map_or("n/a".into(), rep::pct),
            rep::pct(x.delivered_overlap_rate),
            rep::opt(x.continuation_words, 1),
            rep::opt(x.rubric_overall, 2)
        );
    }
    s += "\nPaper: handoff correction 3.7 % at 4 words, 8.4 % at 8, 16.4 % at 16; stitched-response judge best 4.67 (μLM-28M + Qwen2.5-72B, 4 words).\n\n";
    match &r.judge {
        Some(j) => {
            s += &format!("Judge: {j}; per-criterion means ({}):\n\n", CONTINUATION_CRITERIA.join(", "));
            for x in &r.summaries {
                s += &format!("- {} words: {:?} over {} judged\n", x.words, x.rubric_means.as_deref().unwrap_or(&[]), x.judged);
            }
            s += "\n";
        }
        None => s += "**Judge criteria not run** (no `--judge-url`): fluency, coherence, redundancy and style are absent.\n\n",
    }
    s += "## Definitions\n\n\
- **correction rate**: share of turns whose continuation emitted a `repair` event (a `<repair>` marker or a `Correction:` line, \
detected by the gateway's filter).\n\
- **raw seam overlap**: over lower-cased alphanumeric words, the raw continuation's first k ≥ 2 words equal the opener's first k \
words (restart; a fully repeated opener counts here) or its last k words (echo); measured before seam hygiene.\n\
- **stripped by gateway**: the seam filter's output differs in words from the same filter without an opener, i.e. it removed \
words that repeat the opener.\n\
- **overlap heard**: the same overlap test on the text the device speaks after the opener.\n";
    s += "\n## Examples\n\n| words | prompt | opener | continuation | repair |\n|---|---|---|---|---|\n";
    for t in r.turns.iter().take(9) {
        let c: String = t.continuation.text.chars().take(160).collect();
        s += &format!(
            "| {} | {} | {} | {} | {} |\n",
            t.words,
            rep::cell(&t.prompt),
            rep::cell(&t.opener),
            rep::cell(&c),
            t.continuation.repaired
        );
    }
    s + "\nPlot: `eval_handoff.png`; every turn: `eval_handoff.json`.\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(words: usize, raw: Option<&str>, text: &str, repaired: bool, error: bool) -> Turn {
        let opener = "The capital of France is";
        Turn {
            id: "x".into(),
            words,
            prompt: "q".into(),
            opener: opener.into(),
            raw_overlap: raw.and_then(|r| tc::seam_overlap(opener, r)),
            seam_stripped: raw.map(|r| seam_stripped(opener, r)),
            delivered_overlap: tc::seam_overlap(opener, text),
            continuation: Continued { raw: raw.map(str::to_string), text: text.into(), repaired, error: error.then(|| "boom".to_string()) },
            rubric: None,
        }
    }

    #[test]
    fn rates_over_turns() {
        let t = vec![
            turn(4, Some(" France is Paris."), " Paris.", false, false),
            turn(4, Some("The capital of France is Paris."), " Paris.", false, false),
            turn(4, Some(" Paris. <repair> Sorry, Lyon."), " Paris. Sorry, Lyon.", true, false),
            turn(4, Some(" Lyon."), " Lyon.", false, false),
            turn(4, None, "", false, true),
            turn(8, None, " is is", false, false),
        ];
        let s = summarize(&t, 4);
        assert_eq!((s.n, s.errors), (4, 1));
        assert_eq!(s.correction_rate, 0.25);
        assert_eq!(s.raw_overlap_rate, Some(0.5));
        assert_eq!(s.raw_restart_rate, Some(0.25));
        assert_eq!(s.raw_echo_rate, Some(0.25));
        assert_eq!(s.stripped_rate, Some(0.5));
        assert_eq!(s.delivered_overlap_rate, 0.0);
        let s8 = summarize(&t, 8);
        assert_eq!((s8.n, s8.raw_overlap_rate), (1, None));
    }
}
