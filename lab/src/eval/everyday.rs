//! `firstword eval everyday` (issue 12's first measure): held-out everyday questions
//! (`fixtures/everyday/questions.toml`, firstword's own, in no training source) answered by the
//! μLM's greedy opener at 8 words. An opener counts when it is on topic (shares a content word
//! with the question, [`lm::gate::topical`]) and repeats nothing ([`lm::gate::repeats`]).
//! The opener gate's score and decision at the threshold in force are reported beside it: the
//! share of good openers among those the daemon would speak is what a user hears.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::lm_args::{gate_thresholds, harm_check, harm_margin, opener, ModelArgs};
use super::report_md::{self as rep, RunMeta};
use super::text_checks as tc;
use super::EvalArgs;
use daemon::config::Config;

/// The set shipped with the repository.
pub const EVERYDAY_SET: &str = "fixtures/everyday/questions.toml";

/// Options of `eval everyday`.
#[derive(Debug, Clone, clap::Args)]
pub struct EverydayArgs {
    #[command(flatten)]
    pub common: EvalArgs,
    #[command(flatten)]
    pub model: ModelArgs,
    /// The question set (TOML, `[[question]]` tables with `id` and `text`).
    #[arg(long, default_value = EVERYDAY_SET)]
    pub set: PathBuf,
    /// Opener budget (words).
    #[arg(long, default_value_t = 8)]
    pub words: usize,
    /// Report file stem in `--out-dir` (`.md` and `.json`), e.g. to keep two checkpoints apart.
    #[arg(long, default_value = "eval_everyday")]
    pub name: String,
}

/// One question of the set.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Question {
    pub id: String,
    pub text: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetFile {
    question: Vec<Question>,
}

/// Reads a question set; errors name the file and an empty or duplicate item.
pub fn load_set(path: &Path) -> Result<Vec<Question>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let set: SetFile = toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let mut seen = std::collections::HashSet::new();
    for q in &set.question {
        if q.text.trim().is_empty() || !seen.insert(q.id.as_str()) {
            anyhow::bail!("{}: question {:?} is empty or its id is repeated", path.display(), q.id);
        }
    }
    Ok(set.question)
}

/// One question's opener and its checks.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Answered {
    pub id: String,
    pub question: String,
    pub opener: String,
    pub on_topic: bool,
    pub repeats: bool,
    /// On topic and no repeat: what the issue counts.
    pub good: bool,
    pub gate_score: f32,
    pub gate_fired: bool,
    /// The harmful-request check's margin for the question (> 0: flagged; absent: check off).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub harm_score: Option<f32>,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub meta: RunMeta,
    pub set: String,
    pub words: usize,
    pub gate_min_score: f32,
    /// The harmful-request margin above which the check alone fires the gate.
    pub harm_gate_margin: f32,
    pub n: usize,
    /// Share of openers on topic with no repeat (all openers, gate ignored).
    pub good_rate: f64,
    pub on_topic_rate: f64,
    pub repeat_rate: f64,
    pub gate_fire_rate: f64,
    /// Share of good openers among those the gate lets through (None when it fired on all).
    pub good_rate_spoken: Option<f64>,
    pub items: Vec<Answered>,
}

/// Checks one opener against its question; `harm` is the harmful-request check's margin for
/// the question (None: check off), and the gate fires on it alone above `harm_gate_margin`.
pub fn judge(question: &Question, opener_text: &str, logprobs: &[f32], gate: (f32, f32), harm: Option<f32>) -> Answered {
    let (min_score, harm_gate_margin) = gate;
    let on_topic = lm::gate::topical(&question.text, opener_text);
    let repeats = lm::gate::repeats(opener_text);
    let s = lm::gate::score(&question.text, opener_text, logprobs).with_harm(harm).with_harm_gate_margin(harm_gate_margin);
    Answered {
        id: question.id.clone(),
        question: question.text.clone(),
        opener: opener_text.to_string(),
        on_topic,
        repeats,
        good: on_topic && !repeats,
        gate_score: s.score,
        gate_fired: lm::gate::fires(&s, min_score),
        harm_score: harm,
    }
}

/// Aggregates the answered set into the report.
pub fn summarize(meta: RunMeta, set: String, words: usize, gate: (f32, f32), items: Vec<Answered>) -> Report {
    let (gate_min_score, harm_gate_margin) = gate;
    let n = items.len();
    let count = |f: fn(&Answered) -> bool| items.iter().filter(|a| f(a)).count();
    let spoken: Vec<&Answered> = items.iter().filter(|a| !a.gate_fired).collect();
    Report {
        meta,
        set,
        words,
        gate_min_score,
        harm_gate_margin,
        n,
        good_rate: tc::rate(count(|a| a.good), n),
        on_topic_rate: tc::rate(count(|a| a.on_topic), n),
        repeat_rate: tc::rate(count(|a| a.repeats), n),
        gate_fire_rate: tc::rate(count(|a| a.gate_fired), n),
        good_rate_spoken: (!spoken.is_empty()).then(|| tc::rate(spoken.iter().filter(|a| a.good).count(), spoken.len())),
        items,
    }
}

pub fn run(cfg: &Config, args: &EverydayArgs) -> Result<()> {
    if !(1..=lm::opener::MAX_WORDS).contains(&args.words) {
        anyhow::bail!("--words {}: must be in 1..={}", args.words, lm::opener::MAX_WORDS);
    }
    let mut questions = load_set(&args.set)?;
    if let Some(n) = args.common.limit {
        questions.truncate(n);
    }
    let (m, dir) = args.model.load(cfg)?;
    let gate = gate_thresholds(cfg, &m);
    let mut engine = lm::OpenerEngine::new(&m.model, &m.tok)?;
    let harm = harm_check(cfg, &m)?;
    let mut items = Vec::with_capacity(questions.len());
    for q in &questions {
        let margin = harm_margin(harm.as_ref(), &q.text)?;
        let o = opener(&mut engine, &q.text, args.words, margin).with_context(|| q.id.clone())?;
        items.push(judge(q, &o.text, &o.token_logprobs, gate, margin));
    }
    let report = summarize(RunMeta::new(&m, &dir), args.set.display().to_string(), args.words, gate, items);
    let path = rep::write_file(&args.common.out_dir, &format!("{}.md", args.name), &markdown(&report))?;
    rep::write_file(&args.common.out_dir, &format!("{}.json", args.name), &crate::provenance::report_json(&report)?)?;
    rep::emit(&report, args.common.json, &path)
}

fn markdown(r: &Report) -> String {
    let mut s = format!("# eval everyday\n\n{}", r.meta.markdown(r.n));
    s += &format!(
        "- set: `{}` (held-out everyday questions, in no training source)\n- opener: {} words, greedy\n- gate threshold: {:.2}\n\n",
        r.set, r.words, r.gate_min_score
    );
    s += "## Results\n\n| n | on topic, no repeat | on topic | repeats | gate fired | on topic, no repeat, among spoken |\n|---|---|---|---|---|---|\n";
    s += &format!(
        "| {} | {} | {} | {} | {} | {} |\n\n",
        r.n,
        rep::pct(r.good_rate),
        rep::pct(r.on_topic_rate),
        rep::pct(r.repeat_rate),
        rep::pct(r.gate_fire_rate),
        r.good_rate_spoken.map_or("–".into(), rep::pct)
    );
    s += "- **on topic**: the opener shares a content word with the question (stemmed; `gate::topical`).\n\
          - **repeats**: a repeated word pair or a content word three times (`gate::repeats`).\n\n";
    s += "## Items\n\n| id | question | opener | on topic | repeats | gate score | gated |\n|---|---|---|---|---|---|---|\n";
    for it in &r.items {
        s += &format!(
            "| {} | {} | {} | {} | {} | {:.2} | {} |\n",
            it.id,
            rep::cell(&it.question),
            rep::cell(&it.opener),
            if it.on_topic { "yes" } else { "no" },
            if it.repeats { "yes" } else { "no" },
            it.gate_score,
            if it.gate_fired { "yes" } else { "no" }
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(text: &str) -> Question {
        Question { id: "x".into(), text: text.into() }
    }

    #[test]
    fn an_opener_counts_when_on_topic_and_not_repeating() {
        let sky = q("Why is the sky blue?");
        assert!(judge(&sky, "The sky looks blue because air scatters", &[-0.5; 8], (-0.8, 0.0), None).good);
        assert!(!judge(&sky, "The answer is a person.", &[-0.5; 6], (-0.8, 0.0), None).good, "off topic");
        let r = judge(&sky, "The sky is a good way to a good way", &[-0.5; 10], (-0.8, 0.0), None);
        assert!(r.on_topic && r.repeats && !r.good);
        // The gate decides from the log-probabilities too.
        assert!(judge(&sky, "The answer is a person.", &[-4.0; 6], (-0.8, 0.0), None).gate_fired);
        // A question the harmful-request check flags gates even a good opener.
        let flagged = judge(&sky, "The sky looks blue because air scatters", &[-0.5; 8], (-0.8, 0.0), Some(0.3));
        assert!(flagged.good && flagged.gate_fired && flagged.harm_score == Some(0.3));
        // A checkpoint's harm gate margin fires it under the head's threshold too.
        assert!(!judge(&sky, "The sky looks blue because air scatters", &[-0.5; 8], (-0.8, 0.0), Some(-0.3)).gate_fired);
        assert!(judge(&sky, "The sky looks blue because air scatters", &[-0.5; 8], (-0.8, -0.6), Some(-0.3)).gate_fired);
    }

    #[test]
    fn the_shipped_set_loads_and_is_not_in_the_training_data() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let set = load_set(&root.join(EVERYDAY_SET)).unwrap();
        assert!(set.len() >= 40, "{} questions", set.len());
        // The prepared corpus exists only where the training recipe ran (training/data is
        // not committed); where it does, no question may occur in it.
        let train = root.join("training/data/train.jsonl");
        if let Ok(text) = std::fs::read_to_string(&train) {
            let text = text.to_lowercase();
            for q in &set {
                assert!(!text.contains(&q.text.to_lowercase()), "{:?} is in {}", q.text, train.display());
            }
        }
    }

    #[test]
    fn the_summary_counts_spoken_openers_apart() {
        let sky = q("Why is the sky blue?");
        let items = vec![
            judge(&sky, "The sky looks blue because air scatters", &[-0.2; 8], (-0.8, 0.0), None),
            judge(&sky, "The answer is a person.", &[-4.0; 6], (-0.8, 0.0), None),
        ];
        let meta = RunMeta {
            date: String::new(),
            commit: String::new(),
            model: String::new(),
            precision: String::new(),
            parameters: 0,
            model_dir: String::new(),
        };
        let r = summarize(meta, "s".into(), 8, (-0.8, 0.0), items);
        assert_eq!((r.good_rate, r.gate_fire_rate, r.good_rate_spoken), (0.5, 0.5, Some(1.0)));
    }
}
