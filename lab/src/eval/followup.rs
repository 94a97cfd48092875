//! `firstword eval followup` (issue 18): second turns that depend on the first ("How many
//! people live there?"), answered with and without the conversation before them.
//!
//! The set is firstword's own (`fixtures/followups/followups.toml`, 30 items in the style of
//! MT-Bench's second turns): a first question, the reply the user heard, a follow-up, topic
//! words and a reference answer. For each item the μLM writes the follow-up's opener after
//! `[user q1, assistant a1, user q2]` (with history) and after `[user q2]` alone (without),
//! and the configured cloud continues it with the same `messages`. Measures per condition:
//! opener topicality (a topic word in the opener; MiniLM cosine of opener vs reference), the
//! answer's topicality (opener + continuation), and the handoff correction rate (`repair`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use cloud::protocol::Message;
use serde::{Deserialize, Serialize};

use super::continuator::{Continuator, Continued};
use super::lm_args::{self, runtime, ModelArgs};
use super::report_md::{self as rep, RunMeta};
use super::text_checks as tc;
use super::EvalArgs;
use daemon::config::Config;
use lm::minilm::{MiniLm, MINILM_DIR};

/// The follow-up set shipped with the repository.
pub const FOLLOWUP_SET: &str = "fixtures/followups/followups.toml";

/// Options of `eval followup`.
#[derive(Debug, Clone, clap::Args)]
pub struct FollowupArgs {
    #[command(flatten)]
    pub common: EvalArgs,
    #[command(flatten)]
    pub model: ModelArgs,
    /// The multi-turn set (TOML, `[[item]]` tables).
    #[arg(long, default_value = FOLLOWUP_SET)]
    pub set: PathBuf,
    /// all-MiniLM-L6-v2 directory (scripts/setup.sh extracts it).
    #[arg(long, default_value = MINILM_DIR)]
    pub minilm: PathBuf,
    /// Opener budget (words).
    #[arg(long, default_value_t = 8)]
    pub words: usize,
    /// Openers only: no cloud continuation (no correction rate, no answer topicality).
    #[arg(long)]
    pub no_cloud: bool,
    /// Most continuation tokens (default: config cloud.max_tokens).
    #[arg(long)]
    pub max_tokens: Option<u32>,
}

/// One item of the set.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Item {
    pub id: String,
    pub first: String,
    pub first_reply: String,
    pub follow_up: String,
    /// Lower-case words an on-topic answer mentions (any one counts).
    pub topic: Vec<String>,
    pub reference: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetFile {
    item: Vec<Item>,
}

/// Reads and checks a follow-up set.
pub fn load_set(path: &Path) -> Result<Vec<Item>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let set: SetFile = toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    for it in &set.item {
        if it.topic.is_empty() || [&it.first, &it.first_reply, &it.follow_up, &it.reference].iter().any(|s| s.trim().is_empty()) {
            anyhow::bail!("{}: item {:?} has an empty field", path.display(), it.id);
        }
    }
    Ok(set.item)
}

/// True when a word of `text` (normalized as [`tc::norm_words`]) is one of `topic`.
pub fn on_topic(text: &str, topic: &[String]) -> bool {
    tc::norm_words(text).iter().any(|w| topic.iter().any(|t| t == w))
}

/// The follow-up answered in one condition.
#[derive(Debug, Clone, Serialize)]
pub struct Answer {
    pub opener: String,
    pub opener_prompt_tokens: usize,
    /// The μLM's prefill of that prompt (ms, this machine).
    pub opener_prefill_ms: f64,
    pub opener_on_topic: bool,
    pub opener_cosine: f64,
    pub continuation: Option<Continued>,
    /// Opener + continuation mention the topic (None without the cloud).
    pub answer_on_topic: Option<bool>,
}

/// One item, both conditions.
#[derive(Debug, Clone, Serialize)]
pub struct ItemResult {
    pub id: String,
    pub follow_up: String,
    pub with_history: Answer,
    pub without_history: Answer,
}

/// Aggregates of one condition.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub condition: &'static str,
    pub n: usize,
    pub opener_on_topic_rate: f64,
    pub opener_cosine_mean: f64,
    pub answer_on_topic_rate: Option<f64>,
    pub correction_rate: Option<f64>,
    pub cloud_errors: usize,
    pub opener_prompt_tokens_mean: f64,
    pub opener_prefill_ms_p50: f64,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub meta: RunMeta,
    pub set: String,
    pub words: usize,
    pub cloud: Option<String>,
    pub mode: String,
    pub max_tokens: u32,
    pub summaries: Vec<Summary>,
    pub items: Vec<ItemResult>,
}

pub fn run(cfg: &Config, args: &FollowupArgs) -> Result<()> {
    if !(1..=lm::opener::MAX_WORDS).contains(&args.words) {
        anyhow::bail!("--words {}: must be in 1..={}", args.words, lm::opener::MAX_WORDS);
    }
    let mut items = load_set(&args.set)?;
    if let Some(n) = args.common.limit {
        items.truncate(n);
    }
    let (m, dir) = args.model.load(cfg)?;
    let minilm = MiniLm::load(&args.minilm).with_context(|| format!("loading MiniLM from {}", args.minilm.display()))?;
    let rt = runtime()?;
    let cloud = if args.no_cloud { None } else { Some(rt.block_on(Continuator::start(&cfg.cloud)).context("starting the cloud")?) };
    let max_tokens = args.max_tokens.unwrap_or(cfg.cloud.max_tokens);
    let mut engine = lm::OpenerEngine::new(&m.model, &m.tok)?;
    // The margin only steers the opener here (the prompt bias's harm limit), as in the daemon.
    let harm = lm_args::harm_check(cfg, &m)?;
    let mut results = Vec::with_capacity(items.len());
    for (k, it) in items.iter().enumerate() {
        let reference = minilm.embed(&it.reference)?;
        let mut answer = |history: bool| -> Result<Answer> {
            let (turns, messages) = if history {
                (
                    vec![
                        lm::ChatMessage::user(it.first.as_str()),
                        lm::ChatMessage::assistant(it.first_reply.as_str()),
                        lm::ChatMessage::user(it.follow_up.as_str()),
                    ],
                    vec![
                        Message::user(it.first.as_str()),
                        Message::assistant(it.first_reply.as_str()),
                        Message::user(it.follow_up.as_str()),
                    ],
                )
            } else {
                (vec![lm::ChatMessage::user(it.follow_up.as_str())], vec![Message::user(it.follow_up.as_str())])
            };
            let margin = lm_args::harm_margin(harm.as_ref(), &it.follow_up)?;
            let o = engine
                .opener_for_harm(lm::OpenerInput::History(&turns), Some(args.words), margin, |_, _| {})
                .with_context(|| it.id.clone())?;
            let complete = o.stop == lm::StopReason::EndOfTurn;
            let continuation = cloud.as_ref().map(|c| rt.block_on(c.run_messages(messages, &o.text, complete, cfg.cloud.mode, max_tokens)));
            let answer_on_topic = continuation.as_ref().map(|c| on_topic(&format!("{} {}", o.text, c.text), &it.topic));
            Ok(Answer {
                opener_on_topic: on_topic(&o.text, &it.topic),
                opener_cosine: tc::cosine(&minilm.embed(&o.text)?, &reference),
                opener_prompt_tokens: o.prompt_tokens,
                opener_prefill_ms: o.timings.prefill_ms,
                opener: o.text,
                continuation,
                answer_on_topic,
            })
        };
        let with_history = answer(true)?;
        let without_history = answer(false)?;
        results.push(ItemResult { id: it.id.clone(), follow_up: it.follow_up.clone(), with_history, without_history });
        eprintln!("eval followup: {}/{}", k + 1, items.len());
    }
    let description = cloud.as_ref().map(|c| c.describe(&cfg.cloud));
    if let Some(c) = cloud {
        rt.block_on(c.shutdown());
    }
    let report = Report {
        meta: RunMeta::new(&m, &dir),
        set: args.set.display().to_string(),
        words: args.words,
        cloud: description,
        mode: format!("{:?}", cfg.cloud.mode).to_lowercase(),
        max_tokens,
        summaries: vec![
            summarize(&results, "with history", |r| &r.with_history),
            summarize(&results, "without history", |r| &r.without_history),
        ],
        items: results,
    };
    let path = rep::write_file(&args.common.out_dir, "eval_followup.md", &markdown(&report))?;
    rep::write_file(&args.common.out_dir, "eval_followup.json", &crate::provenance::report_json(&report)?)?;
    rep::emit(&report, args.common.json, &path)
}

/// Aggregates one condition of `items`.
pub fn summarize(items: &[ItemResult], condition: &'static str, pick: impl Fn(&ItemResult) -> &Answer) -> Summary {
    let answers: Vec<&Answer> = items.iter().map(pick).collect();
    let n = answers.len();
    let ok: Vec<&Continued> = answers.iter().filter_map(|a| a.continuation.as_ref()).filter(|c| c.error.is_none()).collect();
    let cloud_ran = answers.iter().any(|a| a.continuation.is_some());
    let errors = answers.iter().filter(|a| a.continuation.as_ref().is_some_and(|c| c.error.is_some())).count();
    Summary {
        condition,
        n,
        opener_on_topic_rate: tc::rate(answers.iter().filter(|a| a.opener_on_topic).count(), n),
        opener_cosine_mean: tc::mean(answers.iter().map(|a| a.opener_cosine)).unwrap_or(0.0),
        answer_on_topic_rate: cloud_ran.then(|| {
            let judged: Vec<bool> = answers
                .iter()
                .filter(|a| a.continuation.as_ref().is_some_and(|c| c.error.is_none()))
                .filter_map(|a| a.answer_on_topic)
                .collect();
            tc::rate(judged.iter().filter(|x| **x).count(), judged.len())
        }),
        correction_rate: cloud_ran.then(|| tc::rate(ok.iter().filter(|c| c.repaired).count(), ok.len())),
        cloud_errors: errors,
        opener_prompt_tokens_mean: tc::mean(answers.iter().map(|a| a.opener_prompt_tokens as f64)).unwrap_or(0.0),
        opener_prefill_ms_p50: {
            let mut v: Vec<f64> = answers.iter().map(|a| a.opener_prefill_ms).collect();
            v.sort_by(f64::total_cmp);
            v.get(v.len() / 2).copied().unwrap_or(0.0)
        },
    }
}

fn markdown(r: &Report) -> String {
    let mut s = format!("# eval followup\n\n{}", r.meta.markdown(r.items.len()));
    s += &format!(
        "- set: `{}` (follow-ups that depend on the first turn; the first reply is given as heard)\n- opener: {} words, greedy\n- cloud: {} (recovery mode {}, max {} tokens)\n\n",
        r.set,
        r.words,
        r.cloud.as_deref().unwrap_or("none (--no-cloud)"),
        r.mode,
        r.max_tokens,
    );
    s += "## Results\n\n| condition | n | opener on topic | opener cosine (MiniLM) | answer on topic | correction rate | cloud errors | μLM prompt tokens | μLM prefill p50 |\n|---|---|---|---|---|---|---|---|---|\n";
    for x in &r.summaries {
        s += &format!(
            "| {} | {} | {} | {:.3} | {} | {} | {} | {:.0} | {:.1} ms |\n",
            x.condition,
            x.n,
            rep::pct(x.opener_on_topic_rate),
            x.opener_cosine_mean,
            x.answer_on_topic_rate.map_or("–".into(), rep::pct),
            x.correction_rate.map_or("–".into(), rep::pct),
            x.cloud_errors,
            x.opener_prompt_tokens_mean,
            x.opener_prefill_ms_p50,
        );
    }
    s += "\n- **on topic**: a word of the text (lower case, letters and digits) is one of the item's topic words.\n\
          - **cosine**: all-MiniLM-L6-v2, opener vs the item's reference answer.\n\
          - **correction rate**: continuations with a `repair` event (the cloud recovered from a wrong opener).\n\n";
    s += "## Items\n\n| id | follow-up | opener with history | opener without |\n|---|---|---|---|\n";
    for it in &r.items {
        s += &format!(
            "| {} | {} | {} | {} |\n",
            it.id,
            rep::cell(&it.follow_up),
            rep::cell(&it.with_history.opener),
            rep::cell(&it.without_history.opener)
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_set_loads_and_every_reference_is_on_topic() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(FOLLOWUP_SET);
        let items = load_set(&p).unwrap();
        assert_eq!(items.len(), 30);
        let mut ids: Vec<&str> = items.iter().map(|i| i.id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 30, "ids are unique");
        for it in &items {
            assert!(on_topic(&it.reference, &it.topic), "{}: reference off its own topic", it.id);
        }
    }

    #[test]
    fn topic_words_match_whole_normalized_words() {
        let t = vec!["paris".to_string()];
        assert!(on_topic("It's Paris, of course.", &t));
        assert!(!on_topic("Parisian streets", &t));
    }
}
