//! Paired differences between two μLM runs of `eval mc` on the same items (issue 12's
//! "ship a checkpoint that beats the shipped one, never one that is worse").
//!
//! Two checkpoints scored on the same items differ on only a few of them, so the standard error
//! of their *difference* is much smaller than that of either score: per task, d_i = correct_i
//! (candidate) − correct_i (baseline) ∈ {−1, 0, 1} for the reported metric (acc_norm, BoolQ acc);
//! the difference is mean(d) and its standard error the sample std of d / √n. The Table 4 mean's
//! difference is the mean of the five task differences, its standard error √(Σ se²) / 5 (the tasks'
//! items are disjoint, so their differences are independent).

use anyhow::{bail, Result};
use serde::Serialize;

use super::mc_report::RunReport;

/// One task's paired difference (candidate − baseline) on the reported metric.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PairedTask {
    /// `McTask::key`.
    pub task: String,
    /// Items both runs scored.
    pub n: usize,
    /// Items the candidate gets right and the baseline wrong.
    pub gained: usize,
    /// Items the baseline gets right and the candidate wrong.
    pub lost: usize,
    /// mean(d), in accuracy units (−1..1).
    pub diff: f64,
    /// Sample std of d / √n.
    pub se: f64,
}

/// A candidate run against the baseline run (the first μLM given to `eval mc`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PairedRun {
    /// The baseline's checkpoint directory.
    pub baseline: String,
    /// The candidate's checkpoint directory.
    pub candidate: String,
    /// Per task, in the paper's column order (tasks both runs scored).
    pub tasks: Vec<PairedTask>,
    /// Difference of the Table 4 means (only when all five tasks were compared).
    pub mean_diff: Option<f64>,
    /// Its standard error.
    pub mean_se: Option<f64>,
}

/// The paired difference of two per-item correctness vectors of the same items in the same order.
///
/// Errors: vectors of different lengths (not the same items).
pub fn paired_task(task: &str, baseline: &[bool], candidate: &[bool]) -> Result<PairedTask> {
    let as_f64 = |v: &[bool]| v.iter().map(|&x| f64::from(u8::from(x))).collect::<Vec<_>>();
    paired_values(task, &as_f64(baseline), &as_f64(candidate))
}

/// The paired difference of two per-item scores (a correctness 0/1, a cosine) of the same items in
/// the same order: mean(candidate − baseline) and its standard error; `gained` / `lost` count the
/// items the candidate scores higher / lower.
///
/// Errors: vectors of different lengths (not the same items).
pub fn paired_values(task: &str, baseline: &[f64], candidate: &[f64]) -> Result<PairedTask> {
    if baseline.len() != candidate.len() {
        bail!(
            "{task}: the baseline scored {} items and the candidate {}; a paired difference needs the same items",
            baseline.len(),
            candidate.len()
        );
    }
    let n = baseline.len();
    let d: Vec<f64> = baseline.iter().zip(candidate).map(|(b, c)| c - b).collect();
    let gained = d.iter().filter(|&&x| x > 0.0).count();
    let lost = d.iter().filter(|&&x| x < 0.0).count();
    let diff = if n == 0 { 0.0 } else { d.iter().sum::<f64>() / n as f64 };
    let se = if n > 1 {
        let var = d.iter().map(|x| (x - diff).powi(2)).sum::<f64>() / (n as f64 - 1.0);
        (var / n as f64).sqrt()
    } else {
        0.0
    };
    Ok(PairedTask { task: task.into(), n, gained, lost, diff, se })
}

/// `candidate` against `baseline` on every task both scored.
///
/// Errors: a task both scored with different item counts (different `--limit`s).
pub fn compare(baseline: &RunReport, candidate: &RunReport, all_tasks: usize) -> Result<PairedRun> {
    let mut tasks = Vec::new();
    for c in &candidate.tasks {
        if let Some(b) = baseline.tasks.iter().find(|b| b.task == c.task) {
            tasks.push(paired_task(&c.task, &b.correct, &c.correct)?);
        }
    }
    let complete = tasks.len() == all_tasks && all_tasks > 0;
    let k = tasks.len() as f64;
    let mean_diff = complete.then(|| tasks.iter().map(|t| t.diff).sum::<f64>() / k);
    let mean_se = complete.then(|| tasks.iter().map(|t| t.se * t.se).sum::<f64>().sqrt() / k);
    Ok(PairedRun {
        baseline: baseline.model.path.display().to_string(),
        candidate: candidate.model.path.display().to_string(),
        tasks,
        mean_diff,
        mean_se,
    })
}

/// A signed difference with three decimals and its standard error: "+.003 ± .002", "−.001 ± .003",
/// ".000 ± .002".
pub fn fmt_diff(diff: f64, se: f64) -> String {
    let abs = format!("{:.3}", diff.abs());
    // A difference that rounds to zero gets no sign ("−.000" would claim a direction).
    let sign = if abs == "0.000" {
        ""
    } else if diff < 0.0 {
        "−"
    } else {
        "+"
    };
    let se = format!("{se:.3}");
    format!("{sign}{} ± {}", abs.trim_start_matches('0'), se.trim_start_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::super::mc_data::McTask;
    use super::super::mc_models::ModelInfo;
    use super::super::mc_report::{markdown, McReport, TaskResult};
    use super::*;

    /// A run whose tasks answered as `correct` says (the other fields do not enter the difference).
    fn run(path: &str, correct: &[(&str, Vec<bool>)]) -> RunReport {
        let info = ModelInfo {
            label: "μLM-256-8".into(),
            kind: "mulm".into(),
            path: path.into(),
            parameters: None,
            format: "f32".into(),
            prefix_token: "<bos>".into(),
        };
        let tasks = correct
            .iter()
            .map(|(key, c)| TaskResult {
                task: (*key).into(),
                split: "val".into(),
                metric: "acc_norm".into(),
                n: c.len(),
                excluded: 0,
                acc: 0.0,
                acc_norm: 0.0,
                acc_stderr: 0.0,
                acc_norm_stderr: 0.0,
                score: 0.0,
                seconds: 0.0,
                correct: c.clone(),
            })
            .collect();
        RunReport { model: info, limit: None, tasks, mean: None, seconds: 0.0 }
    }

    #[test]
    fn the_table_4_mean_difference_is_the_mean_of_the_task_differences() {
        let keys: Vec<&str> = McTask::ALL.iter().map(|t| t.key()).collect();
        let base: Vec<(&str, Vec<bool>)> = keys.iter().map(|k| (*k, vec![true, false, true, false])).collect();
        // The candidate gains one item on the first task and loses one on the second.
        let mut cand = base.clone();
        cand[0].1[1] = true;
        cand[1].1[0] = false;
        let p = compare(&run("models/mulm", &base), &run("models/cand", &cand), keys.len()).unwrap();
        assert_eq!((p.tasks[0].diff, p.tasks[1].diff, p.tasks[2].diff), (0.25, -0.25, 0.0));
        assert_eq!(p.mean_diff, Some(0.0));
        let se1 = (0.25f64 / 4.0).sqrt(); // d = [0, 1, 0, 0]: sample variance .25
        assert!((p.mean_se.unwrap() - (2.0 * se1 * se1).sqrt() / 5.0).abs() < 1e-12);
        // Only four tasks compared: no mean.
        let p4 = compare(&run("a", &base[..4]), &run("b", &cand), keys.len()).unwrap();
        assert_eq!((p4.tasks.len(), p4.mean_diff), (4, None));
        // The report names both checkpoints and the items gained and lost.
        let report = McReport {
            date: "2026-12-06 12:00 UTC".into(),
            commit: "x".into(),
            wheel: "w".into(),
            contamination: "c".into(),
            runs: vec![],
            paper: vec![],
            paired: vec![p],
        };
        let md = markdown(&report);
        assert!(md.contains("| `models/cand` − `models/mulm` | +.250 ± .250 | −.250 ± .250 | .000 ± .000"), "{md}");
        assert!(md.contains("| 1 / 1 |"), "{md}");
    }

    #[test]
    fn paired_difference_and_its_standard_error_by_hand() {
        // d = [0, +1, −1, +1]: mean .25, sample variance 2.75 / 3, se = √(0.9167 / 4) = .4787.
        let t = paired_task("piqa", &[true, false, true, false], &[true, true, false, true]).unwrap();
        assert_eq!((t.n, t.gained, t.lost), (4, 2, 1));
        assert!((t.diff - 0.25).abs() < 1e-12);
        assert!((t.se - (2.75f64 / 3.0 / 4.0).sqrt()).abs() < 1e-12);
    }

    #[test]
    fn identical_answers_differ_by_zero_with_zero_error() {
        let v = [true, false, false, true, true];
        let t = paired_task("boolq", &v, &v).unwrap();
        assert_eq!((t.diff, t.se, t.gained, t.lost), (0.0, 0.0, 0, 0));
    }

    #[test]
    fn different_item_counts_are_named() {
        let e = paired_task("arc_challenge", &[true, false], &[true]).unwrap_err().to_string();
        assert!(e.contains("arc_challenge") && e.contains("2 items") && e.contains("candidate 1"), "{e}");
    }

    #[test]
    fn differences_print_signed_without_leading_zero() {
        assert_eq!(fmt_diff(-0.0021, 0.0049), "−.002 ± .005");
        assert_eq!(fmt_diff(0.0126, 0.004), "+.013 ± .004");
        assert_eq!(fmt_diff(-0.0004, 0.002), ".000 ± .002");
    }
}
