//! `firstword bench lm`: μLM latency and throughput with the paper's method (warm-up, then
//! single-turn inference repeated for a fixed time window; `lm::bench::run_with`), per preset
//! and precision (f32, Q8_0), optionally against llama.cpp on the very same GGUF files.
//!
//! Both runtimes load the same exported GGUF (F32 and Q8_0), get the same prompt token ids,
//! decode greedily with the same thread count (`--threads`, default 1), ignore end-of-turn and generate the same number of tokens.
//!
//! Ratios (documented in the JSON as `ratio_convention`): below 1.0 always means firstword
//! is faster. `ttft_ratio_vs_llama_cpp` = ours / theirs (times);
//! `generation_ratio_vs_llama_cpp` = theirs / ours (tokens per second).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use serde::Serialize;
use serde_json::{json, Value};

use ::lm::bench::{run_with, BenchOptions, BenchReport};
use ::lm::{ChatMessage, ChatTokenizer, ExportType, Model, MulmFile, Preset};

use daemon::config::Config;

/// Candidate questions; the one closest to the paper's mean query length (14 μLM tokens) with
/// the checkpoint's tokenizer is used, and its real token count is reported.
/// (With the development tokenizer the second one is exactly 14 tokens.)
const QUESTIONS: [&str; 7] = [
    "What should I cook for dinner tonight with chicken and rice?",
    "Could you recommend a good book about the Seine river in France?",
    "What should I cook tonight with tomatoes and garlic?",
    "How far is the moon from the Earth?",
    "Can you recommend a good book about the Seine river?",
    "Could you tell me quickly why cats purr when people pet them?",
    "Why is the sky blue?",
];
/// The paper's mean query length (μLM tokens).
const TARGET_QUERY_TOKENS: usize = 14;

/// Arguments of `firstword bench lm`.
#[derive(Args, Debug)]
pub struct LmBenchArgs {
    /// Print the JSON report (otherwise a table).
    #[arg(long)]
    pub json: bool,
    /// Measurement window per model and precision (seconds; the paper used 90).
    #[arg(long, default_value_t = 10.0)]
    pub window_s: f64,
    /// Untimed warm-up runs before each window.
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    /// Comma-separated presets. A preset whose trained checkpoint is in lm.model_dir uses it;
    /// the others use random-init weights of the real shapes.
    #[arg(long, default_value = "512-8")]
    pub presets: String,
    /// Comma-separated GGUF weight types each preset's safetensors weights are exported to and
    /// measured in: f32, f16, q8_0, q4_k (Q4_K where a row is a multiple of 256 weights, else
    /// Q8_0; candle's kernels, not `lm::q8`).
    #[arg(long, default_value = "f32,q8_0")]
    pub precisions: String,
    /// Checkpoint directory (default: config lm.model_dir).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Also run llama.cpp (scripts/bench_llama_cpp.py in the venv of scripts/bench-setup.sh)
    /// on the same GGUF files and report ratios.
    #[arg(long)]
    pub vs_llama_cpp: bool,
    /// Python of the bench venv (default ~/.cache/firstword/bench-venv/bin/python).
    #[arg(long)]
    pub python: Option<PathBuf>,
    /// The llama.cpp driver script.
    #[arg(long, default_value = "scripts/bench_llama_cpp.py")]
    pub llama_script: PathBuf,
    /// Threads for both runtimes (the μLM's pool and llama.cpp's `--threads`).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub threads: u16,
}

/// Removes a scratch directory on drop (exports and random checkpoints are large).
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new(tag: &str) -> Result<ScratchDir> {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let p = std::env::temp_dir().join(format!("firstword-bench-lm-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&p).with_context(|| format!("creating {}", p.display()))?;
        Ok(ScratchDir(p))
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Where the weights of one preset come from.
struct Source {
    /// f32 weights to export at each benchmarked precision; None for a GGUF-only checkpoint
    /// (the shipped form), which is benchmarked as it is.
    weights: Option<::lm::Weights>,
    /// The checkpoint's own GGUF, when it ships one.
    shipped_gguf: Option<PathBuf>,
    mulm: MulmFile,
    tokenizer_json: PathBuf,
    /// "trained" or "random-init".
    kind: &'static str,
    note: String,
}

fn source_for(preset: Preset, model_dir: &Path, scratch: &Path) -> Result<Source> {
    let mulm_path = model_dir.join(::lm::mulm_file::MULM_JSON);
    let st = model_dir.join(::lm::load::SAFETENSORS_FILE);
    let gguf = model_dir.join(::lm::load::GGUF_FILE);
    if mulm_path.is_file() {
        let mulm = MulmFile::load(&mulm_path).with_context(|| format!("loading {}", mulm_path.display()))?;
        if mulm.preset == preset.name() && !st.is_file() && gguf.is_file() {
            return Ok(Source {
                weights: None,
                shipped_gguf: Some(gguf),
                tokenizer_json: model_dir.join("tokenizer.json"),
                mulm,
                kind: "trained",
                note: format!("shipped GGUF {} (benchmarked as is)", model_dir.display()),
            });
        }
        if mulm.preset == preset.name() && st.is_file() {
            let weights = ::lm::Weights::load_safetensors(&st, &mulm.model).with_context(|| format!("loading {}", st.display()))?;
            return Ok(Source {
                weights: Some(weights),
                shipped_gguf: None,
                tokenizer_json: model_dir.join("tokenizer.json"),
                mulm,
                kind: "trained",
                note: format!("checkpoint {}", model_dir.display()),
            });
        }
    }
    let dir = scratch.join(format!("random-{}", preset.name()));
    let (ck, weights, mulm) = ::lm::dev::write_dev_checkpoint(&dir, preset.name(), &preset.config(), 1)
        .with_context(|| format!("writing random-init {} weights", preset.name()))?;
    Ok(Source {
        weights: Some(weights),
        shipped_gguf: None,
        mulm,
        tokenizer_json: ck.tokenizer_json,
        kind: "random-init",
        note: format!(
            "no trained {} checkpoint with model.safetensors in {}: random-init weights of the real shapes, \
             dev tokenizer; one token counted per word (forced), end-of-turn ignored",
            preset.name(),
            model_dir.display()
        ),
    })
}

/// The candidate question closest to 14 query tokens: (question, query tokens).
fn pick_question(tok: &ChatTokenizer) -> Result<(&'static str, usize)> {
    let mut best: Option<(usize, &str, usize)> = None;
    for q in QUESTIONS {
        let n = tok.encode_text(q)?.len();
        let d = n.abs_diff(TARGET_QUERY_TOKENS);
        if best.is_none_or(|b| d < b.0) {
            best = Some((d, q, n));
        }
    }
    let (_, q, n) = best.context("no candidate question")?;
    Ok((q, n))
}

/// Token counts at which a greedy run finishes 4 and 8 words, and the run's length; the
/// llama.cpp driver timestamps the same token counts. Mirrors lm::bench's stopping rule.
struct Marks {
    n_gen: usize,
    at_4_words: usize,
    at_8_words: usize,
}

fn word_marks(model: &Model, tok: &ChatTokenizer, ids: &[u32], o: &BenchOptions) -> Result<Marks> {
    if let Some(k) = o.forced_tokens_per_word {
        // lm::bench: word n is finished when token n·k + 1 exists.
        let k = k.max(1);
        return Ok(Marks { n_gen: (8 * k + 1).min(o.max_new_tokens), at_4_words: 4 * k + 1, at_8_words: 8 * k + 1 });
    }
    let mut dec = ::lm::Decoder::new(model, ::lm::SamplingParams::default())?;
    let mut next = dec.prefill(ids)?;
    let mut stream = ::lm::tokenizer::TextStream::new();
    let mut wb = ::lm::WordBoundary::new(8);
    let (mut n, mut at4) = (0usize, 0usize);
    loop {
        n += 1;
        wb.push(&stream.push(tok, next)?);
        if wb.words().len() >= 4 && at4 == 0 {
            at4 = n;
        }
        if wb.words().len() >= 8 || n >= o.max_new_tokens || dec.remaining() == 0 {
            break;
        }
        next = dec.step(next)?;
    }
    Ok(Marks { n_gen: n, at_4_words: if at4 == 0 { n } else { at4 }, at_8_words: n })
}

/// One precision of one preset.
#[derive(Serialize)]
struct Entry {
    model: String,
    precision: String,
    weights: &'static str,
    weights_note: String,
    gguf_bytes: u64,
    /// Our measurement (lm::bench), flattened: ttft_ms, time_to_4_words_ms, generation_tok_s, …
    #[serde(flatten)]
    ours: BenchReport,
    /// Process peak RSS (MiB, VmHWM) after this measurement: cumulative over the run.
    peak_rss_mib: Option<f64>,
    /// Resident set now (MiB, VmRSS), with this model loaded.
    rss_mib: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    llama_cpp: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ttft_ratio_vs_llama_cpp: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    time_to_4_words_ratio_vs_llama_cpp: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    generation_ratio_vs_llama_cpp: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    prompt_ratio_vs_llama_cpp: Option<f64>,
}

/// Current resident set (MiB, `VmRSS`).
fn rss_now_mib() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: f64 = s.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn default_python() -> PathBuf {
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/root"));
    home.join(".cache/firstword/bench-venv/bin/python")
}

/// Run scripts/bench_llama_cpp.py on `gguf`; returns its JSON report.
fn run_llama_cpp(args: &LmBenchArgs, gguf: &Path, ids: &[u32], marks: &Marks) -> Result<Value> {
    let python = args.python.clone().unwrap_or_else(default_python);
    if !python.is_file() {
        bail!("llama.cpp bench venv missing: {} does not exist; run scripts/bench-setup.sh", python.display());
    }
    if !args.llama_script.is_file() {
        bail!("{} not found (run from the repository root or pass --llama-script)", args.llama_script.display());
    }
    let ids_s = ids.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
    let out = Command::new(&python)
        .arg(&args.llama_script)
        .args(["--gguf", &gguf.display().to_string()])
        .args(["--prompt-ids", &ids_s])
        .args(["--n-gen", &marks.n_gen.to_string()])
        .args(["--marks", &format!("{},{}", marks.at_4_words, marks.at_8_words)])
        .args(["--window-s", &args.window_s.to_string()])
        .args(["--warmup", &args.warmup.to_string()])
        .args(["--threads", &args.threads.to_string()])
        .output()
        .with_context(|| format!("running {} {}", python.display(), args.llama_script.display()))?;
    if !out.status.success() {
        bail!(
            "{} failed ({}): {}",
            args.llama_script.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .rev()
                .take(15)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    serde_json::from_slice(&out.stdout)
        .with_context(|| format!("{} printed no JSON: {}", args.llama_script.display(), String::from_utf8_lossy(&out.stdout)))
}

fn ratio(num: Option<f64>, den: Option<f64>) -> Option<f64> {
    match (num, den) {
        (Some(a), Some(b)) if b > 0.0 && a.is_finite() => Some(a / b),
        _ => None,
    }
}

/// The non-empty, trimmed items of a comma-separated option ("512-8, 256-8").
fn comma_list(s: &str) -> impl Iterator<Item = &str> {
    s.split(',').map(str::trim).filter(|s| !s.is_empty())
}

pub fn run(cfg: &Config, args: &LmBenchArgs) -> Result<()> {
    // NaN fails too.
    if args.window_s.is_nan() || args.window_s < 0.0 {
        bail!("--window-s {}: must be ≥ 0", args.window_s);
    }
    let presets: Vec<Preset> =
        comma_list(&args.presets).map(|s| Preset::from_name(s).with_context(|| format!("--presets: {s:?}"))).collect::<Result<_>>()?;
    if presets.is_empty() {
        bail!("--presets is empty (e.g. 512-8,256-8)");
    }
    let precisions: Vec<(String, ExportType)> = comma_list(&args.precisions)
        .map(|s| Ok((s.to_ascii_lowercase(), ExportType::from_name(s).with_context(|| format!("--precisions: {s:?}"))?)))
        .collect::<Result<_>>()?;
    if precisions.is_empty() {
        bail!("--precisions is empty (e.g. f32,q8_0,q4_k)");
    }
    let model_dir = args.model.clone().unwrap_or_else(|| cfg.lm.model_dir.clone());
    let load_at_start = crate::provenance::load_average_now();
    let t_start = Instant::now();
    let mut entries = Vec::new();
    let mut prompts = Vec::new();
    for preset in presets {
        let scratch = ScratchDir::new(preset.name())?;
        let src = source_for(preset, &model_dir, &scratch.0)?;
        let tok = ChatTokenizer::from_file(&src.tokenizer_json, &src.mulm)
            .with_context(|| format!("loading {}", src.tokenizer_json.display()))?;
        let (question, query_tokens) = pick_question(&tok)?;
        let o = BenchOptions {
            window_s: args.window_s,
            warmup_runs: args.warmup,
            max_new_tokens: 64,
            forced_tokens_per_word: (src.kind == "random-init").then_some(1),
            ignore_eos: true,
        };
        let ids = tok.encode_chat(&[ChatMessage::user(question)], src.mulm.model.max_seq_len.saturating_sub(o.max_new_tokens))?.ids;
        prompts.push(json!({
            "model": format!("μLM-{}", preset.name()), "question": question,
            "query_tokens": query_tokens, "prompt_tokens": ids.len(), "prompt_ids": ids,
        }));
        // Both runtimes load the same exported files (the deployment path).
        // (precision, GGUF file, exported here so removed after): both runtimes load the same file.
        let mut files: Vec<(String, PathBuf, bool)> = Vec::new();
        if let Some(g) = &src.shipped_gguf {
            let (m, _) = ::lm::load_gguf(g, Some(&src.mulm)).with_context(|| format!("loading {}", g.display()))?;
            files.push((m.format().trim_start_matches("gguf:").to_string(), g.clone(), false));
        }
        if let Some(w) = &src.weights {
            for (precision, ty) in &precisions {
                let gguf = scratch.0.join(format!("model-{precision}.gguf"));
                ::lm::export_gguf(w, &src.mulm, &src.tokenizer_json, &gguf, *ty)
                    .with_context(|| format!("exporting {}", gguf.display()))?;
                files.push((precision.clone(), gguf, true));
            }
        }
        for (precision, gguf, exported) in files {
            let gguf_bytes = std::fs::metadata(&gguf).map(|m| m.len()).unwrap_or(0);
            let (mut model, _) = ::lm::load_gguf(&gguf, Some(&src.mulm)).with_context(|| format!("loading {}", gguf.display()))?;
            model.set_threads(args.threads as usize).context("setting the μLM's threads")?;
            let ours = run_with(&model, &tok, question, &o).with_context(|| format!("benchmarking {} {precision}", preset.name()))?;
            let marks = word_marks(&model, &tok, &ids, &o)?;
            let (peak_rss_mib, rss_mib) = (crate::rss::peak_rss_mib(), rss_now_mib());
            drop(model);
            let llama = if args.vs_llama_cpp { Some(run_llama_cpp(args, &gguf, &ids, &marks)?) } else { None };
            let theirs = |k: &str| llama.as_ref().and_then(|v| v[k].as_f64());
            entries.push(Entry {
                model: format!("μLM-{}", preset.name()),
                precision,
                weights: src.kind,
                weights_note: src.note.clone(),
                gguf_bytes,
                ttft_ratio_vs_llama_cpp: ratio(Some(ours.ttft_ms), theirs("ttft_ms")),
                time_to_4_words_ratio_vs_llama_cpp: ratio(ours.time_to_4_words_ms, theirs("time_to_4_words_ms")),
                generation_ratio_vs_llama_cpp: ratio(theirs("generation_tok_s"), Some(ours.generation_tok_s)),
                prompt_ratio_vs_llama_cpp: ratio(theirs("prompt_tok_s"), Some(ours.prompt_tok_s)),
                ours,
                peak_rss_mib,
                rss_mib,
                llama_cpp: llama,
            });
            if exported {
                let _ = std::fs::remove_file(&gguf);
            }
        }
    }
    let report = json!({
        "bench": "lm",
        "method": "paper: warm-up runs, then single-turn inference repeated for a fixed window; means over runs",
        "window_s": args.window_s,
        "warmup_runs": args.warmup,
        "threads": args.threads,
        "q8_0_kernel": ::lm::q8::Q8Kernel::selected().map(|k| format!("lm::q8 {}", k.name())).unwrap_or_else(|| "candle".into()),
        "ratio_convention": "below 1.0 = firstword faster: ttft/time_to_4_words ratios = ours/theirs (ms); generation/prompt ratios = theirs/ours (tok/s)",
        "load_avg_start": load_at_start,
        "load_avg_end": crate::provenance::load_average_now(),
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "wall_s": t_start.elapsed().as_secs_f64(),
        "prompts": prompts,
        "results": entries,
        "peak_rss_mib": crate::rss::peak_rss_mib(),
    });
    if args.json {
        println!("{}", crate::provenance::report_json(&report)?);
    } else {
        print_table(&entries);
    }
    Ok(())
}

fn print_table(entries: &[Entry]) {
    let f = |x: Option<f64>| x.map(|v| format!("{v:.2}")).unwrap_or_else(|| "-".into());
    println!(
        "{:<10} {:<5} {:<11} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9} {:>9} {:>7}",
        "model", "prec", "weights", "prefill", "ttft", "4 words", "8 words", "1st dec", "prompt/s", "gen/s", "e2e/s", "RSS MiB"
    );
    for e in entries {
        let r = &e.ours;
        println!(
            "{:<10} {:<5} {:<11} {:>8.2} {:>8.2} {:>8} {:>8} {:>8.2} {:>9.0} {:>9.0} {:>9.0} {:>7}",
            e.model,
            e.precision,
            e.weights,
            r.prefill_ms,
            r.ttft_ms,
            f(r.time_to_4_words_ms),
            f(r.time_to_8_words_ms),
            r.first_token_decode_ms,
            r.prompt_tok_s,
            r.generation_tok_s,
            r.end_to_end_tok_s,
            f(e.peak_rss_mib)
        );
        if let Some(l) = &e.llama_cpp {
            let g = |k: &str| l[k].as_f64();
            println!(
                "{:<10} {:<5} {:<11} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9} {:>9} {:>7}",
                "  llama.cpp",
                e.precision,
                "",
                f(g("prefill_ms")),
                f(g("ttft_ms")),
                f(g("time_to_4_words_ms")),
                f(g("time_to_8_words_ms")),
                f(g("first_token_decode_ms")),
                f(g("prompt_tok_s")),
                f(g("generation_tok_s")),
                f(g("end_to_end_tok_s")),
                f(g("peak_rss_mib"))
            );
            println!(
                "  ratios (<1 = firstword faster): ttft {}  4 words {}  generation {}",
                f(e.ttft_ratio_vs_llama_cpp),
                f(e.time_to_4_words_ratio_vs_llama_cpp),
                f(e.generation_ratio_vs_llama_cpp)
            );
        }
    }
}
