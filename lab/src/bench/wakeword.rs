//! `firstword bench wakeword`: how well a wake-word reference works (detection rate on voices
//! it was not built from, false activations per hour of speech without the phrase; sets from
//! scripts/make_wakeword.sh).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use std::collections::HashMap;

use asr::wake_check::{check_window, WakeCheck};
use audio::wakeword::{spot_all, WakeDetection, WakeSettings, WakeSpotter};
use serde::Serialize;

use daemon::config::Config;

/// `firstword bench wakeword` options.
#[derive(clap::Args)]
pub struct BenchArgs {
    /// The sets from scripts/make_wakeword.sh (tune/ and test/, each with pos/ and neg/).
    #[arg(long, default_value = "out/wakeword")]
    data: PathBuf,
    /// The reference (default: `[activation] wake_word`).
    #[arg(long)]
    reference: Option<PathBuf>,
    /// Sweep thresholds on the tune set and print them (the test set is not touched).
    #[arg(long)]
    tune: bool,
    /// Write the report here (JSON).
    #[arg(long, default_value = "docs/results/bench_wakeword.json")]
    out: PathBuf,
    /// The spotter alone: no Whisper confirmation of its detections (default: as
    /// `[activation] wake_confirm` says).
    #[arg(long)]
    no_confirm: bool,
    /// `--tune`: the spotter thresholds to try.
    #[arg(long, value_delimiter = ',', default_values_t = [0.35, 0.40, 0.45, 0.50, 0.55])]
    thresholds: Vec<f32>,
    /// `--tune`: the `min_scores` values to try.
    #[arg(long, value_delimiter = ',', default_values_t = [3, 5])]
    min_scores: Vec<usize>,
}

/// One positive recording's outcome.
#[derive(Debug, Serialize)]
struct PositiveResult {
    file: String,
    detected: bool,
    score: Option<f32>,
    /// Estimated phrase end minus the true one, in ms.
    end_error_ms: Option<f64>,
}

#[derive(Debug, Serialize)]
struct SetResult {
    positives: usize,
    detected: usize,
    detection_rate: f64,
    alone_rate: f64,
    with_question_rate: f64,
    noisy_rate: f64,
    negative_minutes: f64,
    false_activations: usize,
    false_activations_per_hour: f64,
    /// Spotter detections in the speech without the phrase, before the Whisper check.
    spotter_false_detections: usize,
    /// Positives the spotter found but Whisper did not confirm.
    refused_by_check: usize,
    end_error_ms_p50: Option<f64>,
    end_error_ms_p10: Option<f64>,
    end_error_ms_p90: Option<f64>,
    seconds_of_compute_per_hour: f64,
    misses: Vec<String>,
}

fn wavs(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {} (run scripts/make_wakeword.sh)", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "wav"))
        .collect();
    v.sort();
    Ok(v)
}

fn rate(n: usize, d: usize) -> f64 {
    if d == 0 {
        f64::NAN
    } else {
        n as f64 / d as f64
    }
}

/// Loaded sets: positives (file, samples, true phrase end in s), negatives (file, samples).
struct Sets {
    pos: Vec<(String, Vec<f32>, f64)>,
    neg: Vec<(String, Vec<f32>)>,
}

fn load(dir: &Path) -> Result<Sets> {
    let mut pos = Vec::new();
    for p in wavs(&dir.join("pos"))? {
        let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(p.with_extension("json"))?)?;
        let end = meta["phrase_end_s"].as_f64().context("phrase_end_s")?;
        pos.push((p.file_stem().unwrap_or_default().to_string_lossy().into_owned(), audio::load_wav_16k_mono(&p)?, end));
    }
    let mut neg = Vec::new();
    for p in wavs(&dir.join("neg"))? {
        neg.push((p.file_name().unwrap_or_default().to_string_lossy().into_owned(), audio::load_wav_16k_mono(&p)?));
    }
    Ok(Sets { pos, neg })
}

/// Whisper's verdict on detections, memoized by (file, phrase end to 50 ms): a tuning sweep
/// asks about the same stretches again and again.
struct Confirmer {
    check: WakeCheck,
    seen: HashMap<(String, u64), bool>,
}

impl Confirmer {
    /// Whether the detection ending at `end_sample` of `samples` (file `name`) is confirmed
    /// (what the listener does: the window before the estimated end).
    fn confirms(&mut self, name: &str, samples: &[f32], d: &WakeDetection) -> Result<bool> {
        let key = (name.to_owned(), d.end_sample / 800);
        if let Some(&v) = self.seen.get(&key) {
            return Ok(v);
        }
        let (from, to) = check_window(d.end_sample, d.detected_sample.min(samples.len() as u64));
        let (from, to) = (from as usize, to as usize);
        let v = from < to && self.check.check(&samples[from..to])?.confirmed;
        self.seen.insert(key, v);
        Ok(v)
    }
}

fn measure(
    reference: &[u8],
    settings: &WakeSettings,
    sets: &Sets,
    with_negatives: bool,
    mut confirmer: Option<&mut Confirmer>,
) -> Result<SetResult> {
    let t0 = Instant::now();
    let mut results = Vec::new();
    let mut refused = 0;
    for (name, s, end_s) in &sets.pos {
        // A detection counts when it puts the phrase's end within 1 s of the truth (a
        // detection in the question is a false one, not a hit).
        let found = spot_all(reference, settings, s)?;
        let mut hit = found.iter().map(|d| (d, d.end_sample as f64 / 16.0 - end_s * 1000.0)).find(|(_, e)| e.abs() <= 1_000.0);
        if let (Some((d, _)), Some(c)) = (hit, confirmer.as_deref_mut()) {
            if !c.confirms(name, s, d)? {
                refused += 1;
                hit = None;
            }
        }
        results.push(PositiveResult {
            file: name.clone(),
            detected: hit.is_some(),
            score: hit.map(|(d, _)| d.score),
            end_error_ms: hit.map(|(_, e)| e),
        });
    }
    let mut neg_s = 0.0;
    let (mut fa, mut spotted) = (0, 0);
    if with_negatives {
        for (name, s) in &sets.neg {
            neg_s += s.len() as f64 / 16_000.0;
            for d in spot_all(reference, settings, s)? {
                spotted += 1;
                let confirmed = match confirmer.as_deref_mut() {
                    Some(c) => c.confirms(name, s, &d)?,
                    None => true,
                };
                fa += usize::from(confirmed);
            }
        }
    }
    let audio_s = neg_s + sets.pos.iter().map(|(_, s, _)| s.len() as f64 / 16_000.0).sum::<f64>();
    let sub = |f: &dyn Fn(&str) -> bool| {
        let v: Vec<_> = results.iter().filter(|r| f(&r.file)).collect();
        rate(v.iter().filter(|r| r.detected).count(), v.len())
    };
    let mut errs: Vec<f64> = results.iter().filter_map(|r| r.end_error_ms).collect();
    errs.sort_by(f64::total_cmp);
    let pct = |q: f64| (!errs.is_empty()).then(|| errs[((errs.len() - 1) as f64 * q).round() as usize]);
    let detected = results.iter().filter(|r| r.detected).count();
    Ok(SetResult {
        positives: results.len(),
        detected,
        detection_rate: rate(detected, results.len()),
        alone_rate: sub(&|f| f.contains("_alone")),
        with_question_rate: sub(&|f| f.contains("_q")),
        noisy_rate: sub(&|f| f.contains("_noise")),
        negative_minutes: neg_s / 60.0,
        false_activations: fa,
        false_activations_per_hour: if neg_s > 0.0 { fa as f64 * 3600.0 / neg_s } else { f64::NAN },
        spotter_false_detections: spotted,
        refused_by_check: refused,
        end_error_ms_p50: pct(0.5),
        end_error_ms_p10: pct(0.1),
        end_error_ms_p90: pct(0.9),
        seconds_of_compute_per_hour: t0.elapsed().as_secs_f64() * 3600.0 / audio_s.max(1e-9),
        misses: results.iter().filter(|r| !r.detected).map(|r| r.file.clone()).collect(),
    })
}

/// Runs `bench wakeword`.
pub fn run(cfg: &Config, args: &BenchArgs) -> Result<()> {
    let path = args.reference.clone().unwrap_or_else(|| cfg.activation.wake_word.clone());
    let reference = std::fs::read(&path).with_context(|| format!("reading the reference {}", path.display()))?;
    let base =
        WakeSettings { threshold: cfg.activation.wake_threshold, min_scores: cfg.activation.wake_min_scores, ..WakeSettings::default() };
    let mut confirmer = match cfg.activation.wake_confirm && !args.no_confirm {
        true => {
            let phrase = WakeSpotter::from_bytes(&reference, &base)?.phrase().to_owned();
            Some(Confirmer {
                check: WakeCheck::new(asr::Asr::load(&cfg.asr).context("loading Whisper for the check")?, &phrase),
                seen: HashMap::new(),
            })
        }
        false => None,
    };
    if args.tune {
        let sets = load(&args.data.join("tune"))?;
        println!(
            "tune set: {} positives, {:.1} min without the phrase",
            sets.pos.len(),
            sets.neg.iter().map(|(_, s)| s.len()).sum::<usize>() as f64 / 16_000.0 / 60.0
        );
        for &min_scores in &args.min_scores {
            for &t in &args.thresholds {
                let s = WakeSettings { threshold: t, min_scores, ..base };
                let r = measure(&reference, &s, &sets, true, confirmer.as_mut())?;
                println!(
                    "threshold {t:.2} min_scores {min_scores}: detected {:.3} (alone {:.3}, question {:.3}; {} refused by the check), false/h {:.2} ({} in {:.1} min; spotter alone {}), end error p50 {:?} ms",
                    r.detection_rate, r.alone_rate, r.with_question_rate, r.refused_by_check, r.false_activations_per_hour, r.false_activations, r.negative_minutes, r.spotter_false_detections, r.end_error_ms_p50
                );
            }
        }
        return Ok(());
    }
    let sets = load(&args.data.join("test"))?;
    let r = measure(&reference, &base, &sets, true, confirmer.as_mut())?;
    let report = serde_json::json!({
        "bench": "wakeword",
        "date": crate::provenance::utc_now(),
        "machine": crate::provenance::Provenance::now().machine(),
        "git_commit": crate::provenance::git_commit(),
        "reference": path.display().to_string(),
        "threshold": base.threshold,
        "min_scores": base.min_scores,
        "confirmed_by_asr": confirmer.is_some(),
        "goals": {"detection_rate": ">= 0.90", "false_activations_per_hour": "<= 1"},
        "test": r,
    });
    let text = crate::provenance::report_json(&report)?;
    println!("{text}");
    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&args.out, text + "\n").with_context(|| format!("writing {}", args.out.display()))?;
    eprintln!("wrote {}", args.out.display());
    Ok(())
}
