//! `eval compare`: a candidate μLM against the baseline on the same items of `eval everyday`,
//! `eval openers` and `eval safety`, as paired differences with standard errors (issue 12: "ship a
//! new checkpoint whenever it beats the shipped one, never one that is worse"; `eval mc` does the
//! same for Table 4 in mc_paired.rs).
//!
//! It reads the JSON reports two earlier runs wrote (`--out-dir` of each), matches items by id,
//! and per measure gives mean(candidate − baseline) over the matched items with the sample
//! std / √n of the per-item differences. Each run's gate counts at the threshold that run was
//! evaluated with (its `gate_min_score`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::everyday::Answered;
use super::mc_paired::{fmt_diff, paired_values, PairedTask};
use super::openers::OpenerScore;
use super::report_md::{self as rep, pct};
use crate::provenance::{git_commit, utc_now};

/// Options of `eval compare`.
#[derive(Debug, Clone, clap::Args)]
pub struct CompareArgs {
    /// The baseline's report directory (the `--out-dir` of its evals): `eval_everyday.json`,
    /// `eval_openers.json` and `eval_safety.json`; a report missing from either side is skipped.
    #[arg(long)]
    pub baseline: PathBuf,
    /// The candidate's report directory.
    #[arg(long)]
    pub candidate: PathBuf,
    /// Opener budget of the `eval openers` rows (words; that eval writes 4 and 8).
    #[arg(long, default_value_t = 8)]
    pub words: usize,
    /// Where the markdown and JSON go.
    #[arg(long, default_value = "docs/results")]
    pub out_dir: PathBuf,
    /// Report file stem in `--out-dir` (`.md` and `.json`).
    #[arg(long, default_value = "eval_compare")]
    pub name: String,
    /// Print the JSON report to stdout.
    #[arg(long)]
    pub json: bool,
}

/// The parts of a report's `meta` the comparison names.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct RunId {
    pub date: String,
    pub commit: String,
    pub model_dir: String,
}

#[derive(Debug, Deserialize)]
struct EverydayFile {
    meta: RunId,
    gate_min_score: f32,
    /// Absent from reports written before `opener.harm_gate_margin`: the head's threshold.
    #[serde(default)]
    harm_gate_margin: f32,
    items: Vec<Answered>,
}

#[derive(Debug, Deserialize)]
struct OpenersItem {
    id: String,
    openers: Vec<OpenerScore>,
}

#[derive(Debug, Deserialize)]
struct OpenersFile {
    meta: RunId,
    gate_min_score: f32,
    /// Absent from reports written before `opener.harm_gate_margin`: the head's threshold.
    #[serde(default)]
    harm_gate_margin: f32,
    items: Vec<OpenersItem>,
}

#[derive(Debug, Deserialize)]
struct SafetyItem {
    id: String,
    gated: bool,
    refused: bool,
}

#[derive(Debug, Deserialize)]
struct SafetyFile {
    meta: RunId,
    gate_min_score: f32,
    /// Absent from reports written before `opener.harm_gate_margin`: the head's threshold.
    #[serde(default)]
    harm_gate_margin: f32,
    items: Vec<SafetyItem>,
}

/// One measure: both runs' means over the matched items and their paired difference.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Row {
    /// What is measured (the README's row name).
    pub measure: String,
    /// The eval it comes from (`everyday`, `openers`, `safety`).
    pub eval: String,
    /// True when the value is a share (printed as a percentage), false for a mean score.
    pub share: bool,
    pub baseline: f64,
    pub candidate: f64,
    /// Items of one run with no match in the other (left out).
    pub unmatched: usize,
    pub paired: PairedTask,
}

/// Where the gate of one run on the `eval openers` prompts spoke and where it fired.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct GateSplit {
    pub spoken: usize,
    /// Share of the spoken openers on topic (None: none spoken).
    pub spoken_on_topic: Option<f64>,
    pub gated: usize,
    pub gated_on_topic: Option<f64>,
}

/// One eval's runs as compared.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Source {
    pub eval: String,
    pub baseline: RunId,
    pub baseline_gate: f32,
    /// The harmful-request margin above which the baseline's gate fired on the check alone.
    pub baseline_harm_gate_margin: f32,
    pub candidate: RunId,
    pub candidate_gate: f32,
    pub candidate_harm_gate_margin: f32,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub date: String,
    pub commit: String,
    pub baseline_dir: String,
    pub candidate_dir: String,
    pub sources: Vec<Source>,
    pub rows: Vec<Row>,
    /// `eval openers`' gate split, baseline then candidate.
    pub gate_split: Option<(GateSplit, GateSplit)>,
}

/// Per-item scores of the items both runs have, in the candidate's order: → (baseline values,
/// candidate values, unmatched count).
///
/// Errors: no item id in common (different sets).
pub fn matched<T>(
    what: &str,
    baseline: &[(String, T)],
    candidate: &[(String, T)],
    value: impl Fn(&T) -> f64,
) -> Result<(Vec<f64>, Vec<f64>, usize)> {
    let by_id: HashMap<&str, &T> = baseline.iter().map(|(id, v)| (id.as_str(), v)).collect();
    let (mut b, mut c) = (Vec::new(), Vec::new());
    for (id, v) in candidate {
        if let Some(bv) = by_id.get(id.as_str()) {
            b.push(value(bv));
            c.push(value(v));
        }
    }
    if b.is_empty() {
        bail!("{what}: the two reports share no item id (different sets?)");
    }
    let unmatched = baseline.len() + candidate.len() - 2 * b.len();
    Ok((b, c, unmatched))
}

fn row<T>(
    measure: &str,
    eval: &str,
    share: bool,
    baseline: &[(String, T)],
    candidate: &[(String, T)],
    value: impl Fn(&T) -> f64,
) -> Result<Row> {
    let (b, c, unmatched) = matched(measure, baseline, candidate, value)?;
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    Ok(Row {
        measure: measure.into(),
        eval: eval.into(),
        share,
        baseline: mean(&b),
        candidate: mean(&c),
        unmatched,
        paired: paired_values(measure, &b, &c)?,
    })
}

fn read<T: serde::de::DeserializeOwned>(p: &Path) -> Result<T> {
    let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}: not an eval report this build reads", p.display()))
}

/// Both runs' `file`, or None when either run has none.
fn read_pair<T: serde::de::DeserializeOwned>(baseline: &Path, candidate: &Path, file: &str) -> Result<Option<(T, T)>> {
    let (b, c) = (baseline.join(file), candidate.join(file));
    if !(b.exists() && c.exists()) {
        return Ok(None);
    }
    Ok(Some((read(&b)?, read(&c)?)))
}

/// The gate column: the score threshold, and the check's margin when it is not the head's.
fn gate_cell(min_score: f32, harm_gate_margin: f32) -> String {
    if harm_gate_margin == 0.0 {
        format!("{min_score:.2}")
    } else {
        format!("{min_score:.2}; check > {harm_gate_margin:.2}")
    }
}

fn b01(x: bool) -> f64 {
    f64::from(u8::from(x))
}

/// The openers of `words` words, keyed by item id, with the gate decided at `gate`: → (id,
/// (cosine, fired, on topic)).
fn opener_scores(f: &OpenersFile, words: usize) -> Vec<(String, (f64, bool, bool))> {
    f.items
        .iter()
        .filter_map(|it| {
            let o = it.openers.iter().find(|o| o.words == words)?;
            Some((it.id.clone(), (o.cosine, o.gated(f.gate_min_score, f.harm_gate_margin), o.topical)))
        })
        .collect()
}

fn gate_split(scores: &[(String, (f64, bool, bool))]) -> GateSplit {
    let part = |fired: bool| {
        let v: Vec<bool> = scores.iter().filter(|(_, s)| s.1 == fired).map(|(_, s)| s.2).collect();
        let rate = (!v.is_empty()).then(|| v.iter().filter(|&&t| t).count() as f64 / v.len() as f64);
        (v.len(), rate)
    };
    let ((spoken, spoken_on_topic), (gated, gated_on_topic)) = (part(false), part(true));
    GateSplit { spoken, spoken_on_topic, gated, gated_on_topic }
}

/// Compares the reports in two directories.
///
/// Errors: a report that does not parse, a pair of reports with no item in common, or no eval
/// reported on both sides.
pub fn compare(baseline: &Path, candidate: &Path, words: usize) -> Result<Report> {
    let mut rows = Vec::new();
    let mut sources = Vec::new();
    let mut gate = None;
    let source = |eval: &str, b: &RunId, bg: (f32, f32), c: &RunId, cg: (f32, f32)| Source {
        eval: eval.into(),
        baseline: b.clone(),
        baseline_gate: bg.0,
        baseline_harm_gate_margin: bg.1,
        candidate: c.clone(),
        candidate_gate: cg.0,
        candidate_harm_gate_margin: cg.1,
    };
    if let Some((b, c)) = read_pair::<EverydayFile>(baseline, candidate, "eval_everyday.json")? {
        let keyed = |f: &EverydayFile| f.items.iter().map(|a| (a.id.clone(), a.clone())).collect::<Vec<_>>();
        let (kb, kc) = (keyed(&b), keyed(&c));
        rows.push(row("everyday: on topic, no repeat", "everyday", true, &kb, &kc, |a| b01(a.good))?);
        rows.push(row("everyday: gate fired", "everyday", true, &kb, &kc, |a| b01(a.gate_fired))?);
        sources.push(source("everyday", &b.meta, (b.gate_min_score, b.harm_gate_margin), &c.meta, (c.gate_min_score, c.harm_gate_margin)));
    }
    if let Some((b, c)) = read_pair::<OpenersFile>(baseline, candidate, "eval_openers.json")? {
        let (sb, sc) = (opener_scores(&b, words), opener_scores(&c, words));
        if sb.is_empty() || sc.is_empty() {
            bail!("eval_openers.json: no {words}-word openers in one of the reports (--words)");
        }
        rows.push(row(&format!("openers: cosine, {words} words"), "openers", false, &sb, &sc, |s| s.0)?);
        rows.push(row("openers: gate fired", "openers", true, &sb, &sc, |s| b01(s.1))?);
        rows.push(row("openers: on topic", "openers", true, &sb, &sc, |s| b01(s.2))?);
        gate = Some((gate_split(&sb), gate_split(&sc)));
        sources.push(source("openers", &b.meta, (b.gate_min_score, b.harm_gate_margin), &c.meta, (c.gate_min_score, c.harm_gate_margin)));
    }
    if let Some((b, c)) = read_pair::<SafetyFile>(baseline, candidate, "eval_safety.json")? {
        let keyed = |f: &SafetyFile| f.items.iter().map(|i| (i.id.clone(), i.gated || i.refused)).collect::<Vec<_>>();
        rows.push(row("Do-Not-Answer: gated or refused", "safety", true, &keyed(&b), &keyed(&c), |&x| b01(x))?);
        sources.push(source("safety", &b.meta, (b.gate_min_score, b.harm_gate_margin), &c.meta, (c.gate_min_score, c.harm_gate_margin)));
    }
    if rows.is_empty() {
        bail!("no eval_everyday.json, eval_openers.json or eval_safety.json in both {} and {}", baseline.display(), candidate.display());
    }
    Ok(Report {
        date: utc_now(),
        commit: git_commit(),
        baseline_dir: baseline.display().to_string(),
        candidate_dir: candidate.display().to_string(),
        sources,
        rows,
        gate_split: gate,
    })
}

/// The markdown report.
pub fn markdown(r: &Report) -> String {
    let mut s = format!(
        "# Paired comparison: candidate − baseline\n\n- date: {}\n- commit: `{}`\n- baseline reports: `{}`\n- candidate reports: `{}`\n\n",
        r.date, r.commit, r.baseline_dir, r.candidate_dir
    );
    s += "| eval | baseline model (run) | gate | candidate model (run) | gate |\n|---|---|---|---|---|\n";
    for src in &r.sources {
        s += &format!(
            "| {} | `{}` ({}) | {} | `{}` ({}) | {} |\n",
            src.eval,
            src.baseline.model_dir,
            src.baseline.date,
            gate_cell(src.baseline_gate, src.baseline_harm_gate_margin),
            src.candidate.model_dir,
            src.candidate.date,
            gate_cell(src.candidate_gate, src.candidate_harm_gate_margin)
        );
    }
    s += "\n| measure | items | baseline | candidate | candidate − baseline (± SE) | items up / down | unmatched |\n|---|---|---|---|---|---|---|\n";
    for row in &r.rows {
        let v = |x: f64| if row.share { pct(x) } else { format!("{x:.3}") };
        s += &format!(
            "| {} | {} | {} | {} | {} | {} / {} | {} |\n",
            rep::cell(&row.measure),
            row.paired.n,
            v(row.baseline),
            v(row.candidate),
            fmt_diff(row.paired.diff, row.paired.se),
            row.paired.gained,
            row.paired.lost,
            row.unmatched
        );
    }
    if let Some((b, c)) = &r.gate_split {
        s += "\n`eval openers`: on-topic rate of the openers each gate lets through and of those it replaces.\n\n| run | spoken | on topic | gated | on topic |\n|---|---|---|---|---|\n";
        for (name, g) in [("baseline", b), ("candidate", c)] {
            let o = |x: Option<f64>| x.map_or("–".into(), pct);
            s += &format!("| {name} | {} | {} | {} | {} |\n", g.spoken, o(g.spoken_on_topic), g.gated, o(g.gated_on_topic));
        }
    }
    s += "\nDifferences are means over the items both runs have; the SE is the sample std of the per-item differences / √n.\n";
    s
}

/// `eval compare`.
pub fn run(args: &CompareArgs) -> Result<()> {
    let report = compare(&args.baseline, &args.candidate, args.words)?;
    let path = rep::write_file(&args.out_dir, &format!("{}.md", args.name), &markdown(&report))?;
    rep::write_file(&args.out_dir, &format!("{}.json", args.name), &crate::provenance::report_json(&report)?)?;
    rep::emit(&report, args.json, &path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn meta(dir: &str) -> serde_json::Value {
        json!({"date": "2026-12-06 18:00 UTC", "commit": "abc", "model": "256-8", "precision": "q8_0",
               "parameters": 1, "model_dir": dir})
    }

    fn everyday(dir: &Path, model: &str, good: &[(&str, bool)]) {
        let items: Vec<_> = good
            .iter()
            .map(|(id, g)| {
                json!({"id": id, "question": "q?", "opener": "o", "on_topic": g, "repeats": false,
                                  "good": g, "gate_score": 0.0, "gate_fired": !g})
            })
            .collect();
        let doc = json!({"meta": meta(model), "set": "s", "words": 8, "gate_min_score": -0.8, "n": items.len(),
                         "items": items});
        std::fs::write(dir.join("eval_everyday.json"), doc.to_string()).unwrap();
    }

    /// (id, cosine, gate score, harm score) of 8-word openers; on topic when the cosine is over .2.
    fn openers(dir: &Path, gate: f32, rows: &[(&str, f64, f32, Option<f32>)]) {
        let items: Vec<_> = rows
            .iter()
            .map(|(id, cos, score, harm)| {
                let o = |words: usize| {
                    let mut v = json!({"words": words, "text": "t", "fallback": false, "cosine": cos, "repeats": false,
                                       "non_english": false, "gate_score": score, "topical": *cos > 0.2, "rubric": null});
                    if let Some(h) = harm {
                        v["harm_score"] = json!(h);
                    }
                    v
                };
                json!({"id": id, "prompt": "p", "openers": [o(4), o(8)]})
            })
            .collect();
        let doc = json!({"meta": meta("m"), "gate_min_score": gate, "items": items});
        std::fs::write(dir.join("eval_openers.json"), doc.to_string()).unwrap();
    }

    /// A temporary directory with an empty baseline (`b`) and candidate (`c`) report directory.
    fn report_dirs() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
        let t = tempfile::tempdir().unwrap();
        let (b, c) = (t.path().join("b"), t.path().join("c"));
        std::fs::create_dir_all(&b).unwrap();
        std::fs::create_dir_all(&c).unwrap();
        (t, b, c)
    }

    #[test]
    fn paired_rows_by_hand() {
        let (_t, b, c) = report_dirs();
        // Everyday: the candidate gains q2 and q3, loses q4; q5 only in the baseline.
        everyday(&b, "models/mulm", &[("q1", true), ("q2", false), ("q3", false), ("q4", true), ("q5", true)]);
        everyday(&c, "models/cand", &[("q4", false), ("q3", true), ("q2", true), ("q1", true)]);
        // Openers: baseline gate 0 fires on a (score −1) and on c (harm check); candidate gate −2
        // fires on none.
        openers(&b, 0.0, &[("a", 0.1, -1.0, None), ("b", 0.3, 1.0, None), ("c", 0.5, 1.0, Some(0.5))]);
        openers(&c, -2.0, &[("a", 0.4, -1.0, None), ("b", 0.3, 1.0, None), ("c", 0.2, 1.0, Some(-0.5))]);
        let r = compare(&b, &c, 8).unwrap();
        assert_eq!(r.sources.len(), 2);
        let good = &r.rows[0];
        // matched q1..q4: d = [0, +1, +1, −1] (candidate order q4, q3, q2, q1): mean .25
        assert_eq!((good.paired.n, good.unmatched, good.paired.gained, good.paired.lost), (4, 1, 2, 1));
        assert!((good.paired.diff - 0.25).abs() < 1e-12);
        assert!((good.paired.se - (2.75f64 / 3.0 / 4.0).sqrt()).abs() < 1e-12);
        assert_eq!((good.baseline, good.candidate), (0.5, 0.75));
        let cosine = r.rows.iter().find(|x| x.measure == "openers: cosine, 8 words").unwrap();
        assert!((cosine.paired.diff - 0.0).abs() < 1e-12); // +.3, 0, −.3
        let fired = r.rows.iter().find(|x| x.measure == "openers: gate fired").unwrap();
        assert_eq!((fired.baseline, fired.candidate, fired.paired.lost), (2.0 / 3.0, 0.0, 2));
        let (gb, gc) = r.gate_split.clone().unwrap();
        assert_eq!((gb.spoken, gb.spoken_on_topic, gb.gated, gb.gated_on_topic), (1, Some(1.0), 2, Some(0.5)));
        assert_eq!((gc.spoken, gc.gated, gc.gated_on_topic), (3, 0, None));
        let md = markdown(&r);
        assert!(md.contains("| everyday: on topic, no repeat | 4 | 50.0 % | 75.0 % | +.250 ± .479 | 2 / 1 | 1 |"), "{md}");
        assert!(md.contains("| openers | `m` (2026-12-06 18:00 UTC) | 0.00 | `m` (2026-12-06 18:00 UTC) | -2.00 |"), "{md}");
    }

    /// A report written with `opener.harm_gate_margin` gates a prompt whose margin is above
    /// it, under the head's threshold too; the gate column names the margin.
    #[test]
    fn a_reports_harm_gate_margin_decides_its_gate() {
        let (_t, b, c) = report_dirs();
        let rows = [("a", 0.4, 1.0, Some(-0.3)), ("b", 0.3, 1.0, Some(-0.9)), ("c", 0.2, 1.0, None)];
        openers(&b, -0.8, &rows);
        openers(&c, -0.8, &rows);
        let path = c.join("eval_openers.json");
        let mut doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        doc["harm_gate_margin"] = json!(-0.6);
        std::fs::write(&path, doc.to_string()).unwrap();
        let r = compare(&b, &c, 8).unwrap();
        let fired = r.rows.iter().find(|x| x.measure == "openers: gate fired").unwrap();
        assert_eq!((fired.baseline, fired.candidate, fired.paired.gained), (0.0, 1.0 / 3.0, 1));
        assert!(markdown(&r).contains("| -0.80 | `m` (2026-12-06 18:00 UTC) | -0.80; check > -0.60 |"), "{}", markdown(&r));
    }

    #[test]
    fn reports_with_no_common_item_or_none_at_all_are_named() {
        let (_t, b, c) = report_dirs();
        let e = compare(&b, &c, 8).unwrap_err().to_string();
        assert!(e.contains("no eval_everyday.json"), "{e}");
        everyday(&b, "x", &[("q1", true)]);
        everyday(&c, "y", &[("q9", true)]);
        let e = compare(&b, &c, 8).unwrap_err().to_string();
        assert!(e.contains("share no item id"), "{e}");
        std::fs::write(c.join("eval_everyday.json"), "{\"meta\": 3}").unwrap();
        let e = format!("{:#}", compare(&b, &c, 8).unwrap_err());
        assert!(e.contains("eval_everyday.json") && e.contains("not an eval report"), "{e}");
    }
}
