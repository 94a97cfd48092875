//! `firstword bench pipeline`: the headline measure of the product. Spoken questions
//! (fixtures/questions, the Piper voice) go through the whole pipeline — VAD endpointing,
//! Whisper, the μLM opener, Piper — with the cloud's first delta delayed by each injected
//! latency, and again in cloud-only mode (no μLM: ASR → cloud → TTS) as the baseline.
//!
//! Measures, on the input audio's clock (replay's virtual clock: real compute time, real
//! cloud waits): voice-to-voice latency (last voiced sample of the question → first reply
//! sample) and the handoff gap (end of the opener's audio → start of the continuation's).
//! The cloud is by default the scripted backend behind an in-process gateway (a remote
//! cloud costs the device nothing); `--cloud local` uses the local Gemma gateway instead,
//! which shares the device's cores.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::stats::{summarize, Summary};
use audio::vad::utterance_audio;
use cloud::link::CloudLink;
use daemon::config::Config;
use daemon::replay::turn_loop::{run_turn, TurnContext};
use daemon::replay::{find_utterances, next_opener_words, Models, Segment, TurnTimeline};
use daemon::turn::budget::LatencyEstimate;
use daemon::turn::Part;

/// Which cloud answers during the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BenchCloud {
    /// Scripted replies per question behind an in-process gateway (no device compute).
    Scripted,
    /// The local Gemma 3 270M gateway, in-process (shares the device's cores).
    Local,
}

/// `firstword bench pipeline` options.
#[derive(Debug, clap::Args)]
pub struct PipelineBenchArgs {
    /// Print the JSON report (otherwise a table).
    #[arg(long)]
    pub json: bool,
    /// Injected cloud first-delta latencies, ms (comma-separated).
    #[arg(long, value_delimiter = ',', default_values_t = vec![500.0, 1000.0, 2000.0, 3000.0])]
    pub latencies_ms: Vec<f64>,
    /// The question list (TOML, `[[question]]` tables); WAVs `<id>.wav` beside it.
    #[arg(long, default_value = "fixtures/questions/questions.toml")]
    pub questions: PathBuf,
    /// Use only the first N questions.
    #[arg(long)]
    pub limit: Option<usize>,
    /// The cloud's pace after its first delta, deltas (≈ tokens) per second.
    #[arg(long, default_value_t = 40.0)]
    pub cloud_tokens_per_s: f64,
    #[arg(long, value_enum, default_value_t = BenchCloud::Scripted)]
    pub cloud: BenchCloud,
    /// Also write the JSON report to this file.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Fixtures with a pause mid-sentence (`voices.toml`: entries with `pause_after`), replayed
    /// for the share of paused utterances answered as one sentence.
    #[arg(long, default_value = "fixtures/voices/voices.toml")]
    pub paused_fixtures: PathBuf,
    /// Leave out the paused-utterance measure.
    #[arg(long)]
    pub skip_paused: bool,
    /// Voices that are not the Piper voice (`voices.toml`: the entries without
    /// `pause_after`), replayed at every latency for voice-to-voice and for the pipeline's WER
    /// against whole-file ASR.
    #[arg(long, default_value = "fixtures/voices/voices.toml")]
    pub voices: PathBuf,
    /// Leave out the voice-fixture measures (and `--live`).
    #[arg(long)]
    pub skip_voices: bool,
    /// Also run the voice fixtures through `firstword run` on simulated devices (the live
    /// path at real-time pace: about 2 minutes per latency with the default gap), always
    /// against the scripted cloud (`--cloud` applies to the replayed rows).
    #[arg(long)]
    pub live: bool,
    /// Silence after each question in the live run's input (s): the reply must end before
    /// the next question, or it is a barge-in.
    #[arg(long, default_value_t = 9.0)]
    pub live_gap_s: f64,
}

/// One `[[question]]` of the fixture list.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Question {
    pub id: String,
    pub text: String,
    /// The scripted cloud answers with `cloud_reply` when the transcript contains this.
    pub keyword: String,
    pub cloud_reply: String,
}

#[derive(Deserialize)]
struct QuestionFile {
    question: Vec<Question>,
}

/// Reads the question list; errors name the file.
pub fn load_questions(path: &Path) -> Result<Vec<Question>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let f: QuestionFile = toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    if f.question.is_empty() {
        bail!("{}: no [[question]] entries", path.display());
    }
    Ok(f.question)
}

/// Gateway config for the scripted cloud: one rule per question, injected first-delta
/// latency, then a capped delta rate.
fn scripted_gateway_toml(questions: &[Question], latency_ms: f64, tokens_per_s: f64) -> Result<String> {
    #[derive(Serialize)]
    struct Rule<'a> {
        when_query_contains: &'a str,
        reply: &'a str,
    }
    #[derive(Serialize)]
    struct Backend<'a> {
        kind: &'static str,
        rules: Vec<Rule<'a>>,
    }
    #[derive(Serialize)]
    struct Latency {
        first_delta_ms: f64,
        first_delta_jitter_ms: f64,
        tokens_per_s: f64,
    }
    #[derive(Serialize)]
    struct Gateway<'a> {
        listen: &'static str,
        token: &'static str,
        backend: Backend<'a>,
        latency: Latency,
    }
    let g = Gateway {
        listen: "127.0.0.1:0",
        token: "bench",
        backend: Backend {
            kind: "scripted",
            rules: questions.iter().map(|q| Rule { when_query_contains: &q.keyword, reply: &q.cloud_reply }).collect(),
        },
        latency: Latency { first_delta_ms: latency_ms, first_delta_jitter_ms: 0.0, tokens_per_s },
    };
    Ok(toml::to_string(&g)?)
}

/// One measured turn.
#[derive(Debug, Clone, Serialize)]
pub struct TurnSample {
    pub question: String,
    /// What the fixture says, beside what Whisper heard.
    pub question_text: String,
    pub transcript: String,
    pub opener_text: String,
    pub opener_words: usize,
    pub voice_to_voice_ms: Option<f64>,
    pub handoff_gap_ms: Option<f64>,
    /// The cloud's first delta arrived before the opener's audio ended (the handoff goal
    /// applies to these turns).
    pub cloud_before_opener_end: bool,
    /// The endpoint decision (last voiced sample + hangover) gated the first audio.
    pub endpoint_ms_after_speech: f64,
    pub asr_done_ms_after_speech: Option<f64>,
    pub opener_ready_ms_after_speech: Option<f64>,
    pub cloud_first_delta_ms_after_speech: Option<f64>,
    pub filler: bool,
    pub fallback: bool,
    /// The longest silence inside a sentence of the reply beyond its designed seam gap
    /// ([`longest_stall_ms`]); None when the reply had no mid-sentence seam after the handoff
    /// (or the row stopped at the handoff).
    pub longest_stall_ms: Option<f64>,
}

/// The longest stall inside a reply, in ms: over consecutive pieces of speech after the
/// handoff (continuation, local finish, fallback), the silence between them beyond the seam
/// gap the player means to leave (`gap_ms(previous text)`: the word, clause or sentence gap of
/// [`daemon::turn_shared::seam_gap_ms`]), where the previous piece does not end a sentence. A
/// pause at a sentence end sounds natural, and the opener → continuation seam is the handoff
/// gap, reported on its own (issue 13 ask 4). None when no such seam exists; never negative.
pub fn longest_stall_ms(segments: &[Segment], gap_ms: impl Fn(&str) -> f64) -> Option<f64> {
    let after_handoff = |s: &Segment| matches!(s.part, Part::Continuation | Part::LocalFinish | Part::Fallback);
    segments
        .windows(2)
        .filter(|w| after_handoff(&w[0]) && after_handoff(&w[1]))
        .filter(|w| !w[0].text.trim_end().ends_with(['.', '!', '?']))
        .map(|w| (w[1].start_ms - w[0].end_ms - gap_ms(&w[0].text)).max(0.0))
        .reduce(f64::max)
}

impl TurnSample {
    fn from_timeline(cfg: &Config, q: &Question, t: &TurnTimeline) -> Self {
        let rel = |x: Option<f64>| x.map(|v| v - t.speech_end_ms);
        let opener_end = t.segments.iter().filter(|s| s.part == Part::Opener).map(|s| s.end_ms).reduce(f64::max);
        let cloud_before_opener_end = matches!((t.cloud_first_delta_ms, opener_end), (Some(c), Some(o)) if c < o);
        Self {
            question: q.id.clone(),
            question_text: q.text.clone(),
            transcript: t.transcript.clone(),
            opener_text: t.opener_text.clone(),
            opener_words: t.opener_words,
            voice_to_voice_ms: t.voice_to_voice_ms,
            handoff_gap_ms: t.handoff_gap_ms,
            cloud_before_opener_end,
            endpoint_ms_after_speech: t.endpoint_ms - t.speech_end_ms,
            asr_done_ms_after_speech: rel(t.asr_done_ms),
            opener_ready_ms_after_speech: rel(t.opener_ready_ms),
            cloud_first_delta_ms_after_speech: rel(t.cloud_first_delta_ms),
            filler: t.filler,
            fallback: t.fallback,
            longest_stall_ms: longest_stall_ms(&t.segments, |prev| daemon::turn_shared::seam_gap_ms(cfg, prev)),
        }
    }
}

/// Results for one mode at one injected latency.
#[derive(Debug, Serialize)]
pub struct Row {
    pub cloud_latency_ms: f64,
    /// `"mulm"` (the product), `"cloud_only"` (the baseline), or `"mulm_voices"` (the product on
    /// the voice fixtures, not the Piper voice).
    pub mode: &'static str,
    pub voice_to_voice_ms: Option<Summary>,
    /// Over the turns whose cloud first delta arrived before the opener ended.
    pub handoff_gap_ms: Option<Summary>,
    /// Over all turns with both an opener and a continuation.
    pub handoff_gap_all_ms: Option<Summary>,
    /// Per turn, the longest stall inside a sentence after the handoff (μLM rows, which play
    /// the whole reply; the cloud-only baseline stops at its first audio).
    pub longest_stall_ms: Option<Summary>,
    pub turns: Vec<TurnSample>,
}

/// The goals of the issues, checked on the rows. Each verdict is `None` ("not measured")
/// when no row has a qualifying measurement: a goal is never met by default (issue 17 §6).
#[derive(Debug, Serialize)]
pub struct Goals {
    /// p50 voice-to-voice ≤ 350 ms at every latency (μLM mode).
    pub voice_to_voice_p50_le_350ms: Option<bool>,
    /// p50 voice-to-voice ≤ 200 ms at every latency (μLM mode; issue 13).
    pub voice_to_voice_p50_le_200ms: Option<bool>,
    /// Cloud-only p50 / μLM p50 at 2 s (goal ≥ 5).
    pub speedup_at_2s: Option<f64>,
    pub speedup_at_2s_ge_5x: Option<bool>,
    /// Handoff gap p50 ≤ 150 ms (turns where the cloud beat the opener's end), at every
    /// latency that has such turns.
    pub handoff_gap_p50_le_150ms: Option<bool>,
    /// Paused utterances answered as one sentence ≥ 90 % (None: not measured).
    pub paused_kept_whole_ge_90pct: Option<bool>,
    /// The longest stall inside a reply, over every μLM turn at every latency (ms).
    pub longest_stall_ms: Option<f64>,
    /// That stall ≤ 80 ms (issue 13; None: no reply had a mid-sentence seam to measure).
    pub longest_stall_le_80ms: Option<bool>,
    /// Voice fixtures (not the Piper voice), replay: p50 voice-to-voice ≤ 200 ms at every
    /// latency (issue 13).
    pub voices_replay_v2v_p50_le_200ms: Option<bool>,
    /// Voice fixtures, `firstword run` on simulated devices: p50 ≤ 200 ms at every latency.
    pub voices_live_v2v_p50_le_200ms: Option<bool>,
    /// Pipeline WER − whole-file WER on the voice fixtures ≤ 2 points (issue 13).
    pub wer_gap_le_2_points: Option<bool>,
}

#[derive(Debug, Serialize)]
struct Report {
    bench: &'static str,
    cloud: BenchCloud,
    questions: usize,
    cloud_tokens_per_s: f64,
    hangover_ms: u32,
    pause_ms: u32,
    speculative: bool,
    rows: Vec<Row>,
    #[serde(skip_serializing_if = "Option::is_none")]
    paused: Option<super::paused::PausedSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    voices: Option<VoicesReport>,
    goals: Goals,
}

/// The measures on voices that are not the Piper voice ([`super::voices`]).
#[derive(Debug, Serialize)]
struct VoicesReport {
    fixtures: usize,
    /// Replay, μLM mode, one row per latency.
    replay: Vec<Row>,
    /// The pipeline's transcripts (the first replay row) against whole-file ASR.
    wer: super::voices::WerReport,
    /// `firstword run` on simulated devices (with `--live`).
    #[serde(skip_serializing_if = "Option::is_none")]
    live: Option<Vec<super::live::LiveRow>>,
}

fn run_row(
    cfg: &Config,
    args: &PipelineBenchArgs,
    questions: &[(Question, Vec<f32>)],
    models: &mut Models,
    latency_ms: f64,
    local_opener: bool,
) -> Result<Row> {
    let mut cfg = cfg.clone();
    cfg.turn.local_opener = local_opener;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let qs: Vec<Question> = questions.iter().map(|(q, _)| q.clone()).collect();
    let link = match args.cloud {
        BenchCloud::Scripted => {
            rt.block_on(CloudLink::start_gateway(&cfg.cloud, &scripted_gateway_toml(&qs, latency_ms, args.cloud_tokens_per_s)?))?
        }
        BenchCloud::Local => rt.block_on(CloudLink::start(&cfg.cloud, Some(latency_ms)))?,
    };
    let mut estimate = LatencyEstimate::new(0.5);
    let mut turns = Vec::new();
    // The first question runs twice: once unmeasured, to warm caches and give the adaptive
    // opener budget its first observation of this cloud.
    for (i, (q, input)) in std::iter::once(&questions[0]).chain(questions.iter()).enumerate() {
        let mut vad = audio::vad::Vad::new(&cfg.vad).context("loading the VAD")?;
        let utts = find_utterances(&cfg, &mut vad, input, models)?;
        let Some(u) = utts.first() else { bail!("question {}: the VAD found no speech", q.id) };
        let ctx = TurnContext {
            cfg: &cfg,
            utterance: *u,
            audio: utterance_audio(input, u, cfg.vad.pre_roll_ms),
            words: next_opener_words(&cfg, &estimate),
            index: i,
            // The μLM rows play the whole reply, for the stalls inside it; the baseline's
            // measure ends at its first audio.
            stop_at_handoff: !local_opener,
            // Each question stands alone: the benchmark measures timing, not context.
            history: &daemon::conversation::Conversation::new(),
            // A benchmark measures this machine: the work takes the time it takes.
            clock: daemon::replay::clock::ClockMode::Wall,
        };
        let t = run_turn(&rt, &link, models, &ctx).with_context(|| format!("question {}", q.id))?;
        if let (Some(d), Some(o)) = (t.cloud_first_delta_ms, t.opener_ready_ms) {
            estimate.observe(d - o);
        }
        if i > 0 {
            turns.push(TurnSample::from_timeline(&cfg, q, &t));
        }
    }
    rt.block_on(link.shutdown());
    let v2v: Vec<f64> = turns.iter().filter_map(|t| t.voice_to_voice_ms).collect();
    let gap: Vec<f64> = turns.iter().filter(|t| t.cloud_before_opener_end).filter_map(|t| t.handoff_gap_ms).collect();
    let gap_all: Vec<f64> = turns.iter().filter_map(|t| t.handoff_gap_ms).collect();
    let stalls: Vec<f64> = turns.iter().filter_map(|t| t.longest_stall_ms).collect();
    Ok(Row {
        cloud_latency_ms: latency_ms,
        mode: if local_opener { "mulm" } else { "cloud_only" },
        voice_to_voice_ms: summarize(&v2v),
        handoff_gap_ms: summarize(&gap),
        handoff_gap_all_ms: summarize(&gap_all),
        longest_stall_ms: summarize(&stalls),
        turns,
    })
}

/// Every summary present and non-empty, and each p50 ≤ `limit`; None when any is missing.
fn all_p50_le<'a>(summaries: impl IntoIterator<Item = Option<&'a Summary>>, limit: f64) -> Option<bool> {
    let all: Option<Vec<f64>> = summaries.into_iter().map(|s| s.map(|s| s.p50)).collect();
    all.filter(|v| !v.is_empty()).map(|v| v.iter().all(|&x| x <= limit))
}

fn goals(rows: &[Row], paused: Option<&super::paused::PausedSummary>, voices: Option<&VoicesReport>) -> Goals {
    let p50 = |r: &Row| r.voice_to_voice_ms.as_ref().map(|s| s.p50);
    let mulm: Vec<&Row> = rows.iter().filter(|r| r.mode == "mulm").collect();
    let at = |mode: &str, l: f64| rows.iter().find(|r| r.mode == mode && (r.cloud_latency_ms - l).abs() < 1.0).and_then(p50);
    let speedup = match (at("cloud_only", 2000.0), at("mulm", 2000.0)) {
        (Some(c), Some(m)) if m > 0.0 => Some(c / m),
        _ => None,
    };
    let stall = mulm.iter().flat_map(|r| r.turns.iter().filter_map(|t| t.longest_stall_ms)).reduce(f64::max);
    // Every μLM row must have a measurement, else the verdict is "not measured".
    let v2v_le = |limit: f64| all_p50_le(mulm.iter().map(|r| r.voice_to_voice_ms.as_ref()), limit);
    let gaps: Vec<f64> = mulm.iter().filter_map(|r| r.handoff_gap_ms.as_ref().map(|s| s.p50)).collect();
    Goals {
        longest_stall_ms: stall,
        longest_stall_le_80ms: stall.map(|s| s <= 80.0),
        voice_to_voice_p50_le_350ms: v2v_le(350.0),
        voice_to_voice_p50_le_200ms: v2v_le(200.0),
        speedup_at_2s: speedup,
        speedup_at_2s_ge_5x: speedup.map(|s| s >= 5.0),
        handoff_gap_p50_le_150ms: (!gaps.is_empty()).then(|| gaps.iter().all(|&g| g <= 150.0)),
        paused_kept_whole_ge_90pct: paused.filter(|p| p.fixtures > 0).map(|p| p.share >= 0.9),
        voices_replay_v2v_p50_le_200ms: voices.and_then(|v| all_p50_le(v.replay.iter().map(|r| r.voice_to_voice_ms.as_ref()), 200.0)),
        voices_live_v2v_p50_le_200ms: voices
            .and_then(|v| v.live.as_ref())
            .and_then(|rows| all_p50_le(rows.iter().map(|r| r.voice_to_voice_ms.as_ref()), 200.0)),
        wer_gap_le_2_points: voices.filter(|v| v.wer.fixtures > 0).map(|v| v.wer.gap_points <= 2.0),
    }
}

/// Replays the voice fixtures at every latency, measures WER against whole-file ASR, and
/// with `--live` runs them through `firstword run`.
fn run_voices(cfg: &Config, config_path: Option<&Path>, args: &PipelineBenchArgs, models: &mut Models) -> Result<VoicesReport> {
    let voices = super::voices::load(&args.voices)?;
    let mut replay = Vec::new();
    for &l in &args.latencies_ms {
        let mut row = run_row(cfg, args, &voices, models, l, true)?;
        row.mode = "mulm_voices";
        if !args.json {
            print_row(&row);
        }
        replay.push(row);
    }
    let mut wer_rows = Vec::new();
    for (q, input) in &voices {
        let heard = replay[0].turns.iter().find(|t| t.question == q.id).map(|t| t.transcript.clone()).unwrap_or_default();
        let whole = models.asr.transcribe(input).with_context(|| format!("whole-file ASR of {}", q.id))?.text;
        wer_rows.push((q.id.clone(), q.text.clone(), heard, whole));
    }
    let wer = super::voices::WerReport::new(wer_rows);
    if !args.json {
        println!(
            "voices: pipeline WER {:.3}, whole-file WER {:.3} (gap {:+.1} points)",
            wer.pipeline_mean_wer, wer.whole_file_mean_wer, wer.gap_points
        );
    }
    let live = if args.live {
        let toml_for =
            |l: f64| scripted_gateway_toml(&voices.iter().map(|(q, _)| q.clone()).collect::<Vec<_>>(), l, args.cloud_tokens_per_s);
        let rows = super::live::run(config_path, &voices, args.live_gap_s, &args.latencies_ms, toml_for)?;
        if !args.json {
            for r in &rows {
                let f = |s: &Option<Summary>| {
                    s.as_ref().map_or("-".to_string(), |s| format!("p50 {:>6.0} p95 {:>6.0} (n {})", s.p50, s.p95, s.n))
                };
                println!("cloud {:>5.0} ms  live voices  voice-to-voice {}", r.cloud_latency_ms, f(&r.voice_to_voice_ms));
            }
        }
        Some(rows)
    } else {
        None
    };
    Ok(VoicesReport { fixtures: voices.len(), replay, wer, live })
}

/// Runs the benchmark; `config_path` is the config file the lab loaded (None: its default),
/// which the live run's daemon starts from.
pub fn run(cfg: &Config, config_path: Option<&Path>, args: &PipelineBenchArgs) -> Result<()> {
    if !(args.live_gap_s.is_finite() && (1.0..=60.0).contains(&args.live_gap_s)) {
        bail!("--live-gap-s must be within 1..60 s");
    }
    if args.latencies_ms.is_empty() {
        bail!("--latencies-ms needs at least one latency");
    }
    if args.live && args.skip_voices {
        bail!("--live runs the voice fixtures: drop --skip-voices");
    }
    if args.latencies_ms.iter().any(|l| !(0.0..=60_000.0).contains(l)) {
        bail!("--latencies-ms must be within 0..60000 ms");
    }
    // NaN fails too.
    if args.cloud_tokens_per_s.is_nan() || args.cloud_tokens_per_s <= 0.0 {
        bail!("--cloud-tokens-per-s must be positive");
    }
    let mut list = load_questions(&args.questions)?;
    if let Some(n) = args.limit {
        list.truncate(n.max(1));
    }
    let dir = args.questions.parent().unwrap_or(Path::new("."));
    let mut questions = Vec::new();
    for q in list {
        let wav = dir.join(format!("{}.wav", q.id));
        let input = audio::load_wav_16k_mono(&wav).with_context(|| format!("question {}", q.id))?;
        questions.push((q, input));
    }
    let mut models = Models::load(cfg)?;
    let mut rows = Vec::new();
    for &l in &args.latencies_ms {
        for local_opener in [true, false] {
            let row = run_row(cfg, args, &questions, &mut models, l, local_opener)?;
            if !args.json {
                print_row(&row);
            }
            rows.push(row);
        }
    }
    let paused = if args.skip_paused {
        None
    } else {
        let p = super::paused::run(cfg, &args.paused_fixtures)?;
        if !args.json {
            println!("paused utterances answered as one sentence: {}/{}", p.kept_whole, p.fixtures);
        }
        Some(p)
    };
    let voices = if args.skip_voices { None } else { Some(run_voices(cfg, config_path, args, &mut models)?) };
    let report = Report {
        bench: "pipeline",
        cloud: args.cloud,
        questions: questions.len(),
        cloud_tokens_per_s: args.cloud_tokens_per_s,
        hangover_ms: cfg.vad.hangover_ms,
        pause_ms: cfg.vad.pause_ms,
        speculative: cfg.turn.speculative,
        goals: goals(&rows, paused.as_ref(), voices.as_ref()),
        rows,
        paused,
        voices,
    };
    let json = crate::provenance::report_json(&report)?;
    if let Some(p) = &args.out {
        std::fs::write(p, &json).with_context(|| format!("writing {}", p.display()))?;
    }
    if args.json {
        println!("{json}");
    } else {
        println!("goals: {}", serde_json::to_string(&report.goals)?);
    }
    Ok(())
}

fn print_row(r: &Row) {
    let f = |s: &Option<Summary>| s.as_ref().map_or("-".to_string(), |s| format!("p50 {:>6.0} p95 {:>6.0} (n {})", s.p50, s.p95, s.n));
    println!(
        "cloud {:>5.0} ms  {:<10}  voice-to-voice {}  handoff gap {}  longest stall {}",
        r.cloud_latency_ms,
        r.mode,
        f(&r.voice_to_voice_ms),
        f(&r.handoff_gap_ms),
        f(&r.longest_stall_ms)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(v: f64) -> Option<Summary> {
        summarize(&[v])
    }

    fn row(latency_ms: f64, mode: &'static str, v2v: Option<f64>, gap: Option<f64>) -> Row {
        Row {
            cloud_latency_ms: latency_ms,
            mode,
            voice_to_voice_ms: v2v.and_then(summary),
            handoff_gap_ms: gap.and_then(summary),
            handoff_gap_all_ms: gap.and_then(summary),
            longest_stall_ms: None,
            turns: Vec::new(),
        }
    }

    #[test]
    fn goals_without_qualifying_measurements_read_not_measured() {
        // No rows at all, and rows without the measure: never "met".
        let g = goals(&[], None, None);
        assert_eq!(
            (g.voice_to_voice_p50_le_350ms, g.speedup_at_2s_ge_5x, g.handoff_gap_p50_le_150ms, g.longest_stall_le_80ms),
            (None, None, None, None)
        );
        assert_eq!(g.paused_kept_whole_ge_90pct, None);
        // A μLM row with no handoff turn (the cloud always later than the opener) and no 2 s row.
        let g = goals(&[row(3000.0, "mulm", Some(180.0), None), row(3000.0, "cloud_only", Some(3300.0), None)], None, None);
        assert_eq!(g.handoff_gap_p50_le_150ms, None);
        assert_eq!((g.speedup_at_2s, g.speedup_at_2s_ge_5x), (None, None));
        assert_eq!((g.voice_to_voice_p50_le_350ms, g.voice_to_voice_p50_le_200ms), (Some(true), Some(true)));
        // One μLM row without a voice-to-voice figure makes that goal unmeasured, not met.
        let g = goals(&[row(500.0, "mulm", Some(150.0), Some(40.0)), row(1000.0, "mulm", None, None)], None, None);
        assert_eq!(g.voice_to_voice_p50_le_350ms, None);
        assert_eq!(g.handoff_gap_p50_le_150ms, Some(true));
    }

    #[test]
    fn goals_are_checked_on_every_measured_row() {
        let rows = [
            row(500.0, "mulm", Some(190.0), Some(250.0)),
            row(2000.0, "mulm", Some(210.0), Some(40.0)),
            row(2000.0, "cloud_only", Some(2310.0), None),
        ];
        let g = goals(&rows, None, None);
        assert_eq!(g.voice_to_voice_p50_le_350ms, Some(true));
        assert_eq!(g.voice_to_voice_p50_le_200ms, Some(false), "210 ms at 2 s");
        assert_eq!(g.handoff_gap_p50_le_150ms, Some(false), "250 ms at 0.5 s");
        assert!((g.speedup_at_2s.unwrap() - 11.0).abs() < 1e-9);
        assert_eq!(g.speedup_at_2s_ge_5x, Some(true));
    }

    #[test]
    fn the_voice_goals_read_the_voice_rows_and_the_wer_gap() {
        let live = |v2v: Option<f64>| super::super::live::LiveRow {
            cloud_latency_ms: 1000.0,
            questions: 10,
            voice_to_voice_ms: v2v.and_then(summary),
            handoff_gap_ms: None,
            turns: Vec::new(),
        };
        let wer = |pipeline: &str| {
            super::super::voices::WerReport::new(vec![(
                "a".into(),
                "why is the sky blue".into(),
                pipeline.into(),
                "why is the sky blue".into(),
            )])
        };
        let v = VoicesReport {
            fixtures: 1,
            replay: vec![row(500.0, "mulm_voices", Some(190.0), None), row(1000.0, "mulm_voices", Some(230.0), None)],
            wer: wer("why is the sky blue"),
            live: Some(vec![live(Some(180.0))]),
        };
        let g = goals(&[row(500.0, "mulm", Some(150.0), None)], None, Some(&v));
        assert_eq!(g.voices_replay_v2v_p50_le_200ms, Some(false), "230 ms at 1 s");
        assert_eq!(g.voices_live_v2v_p50_le_200ms, Some(true));
        assert_eq!(g.wer_gap_le_2_points, Some(true));
        assert_eq!(g.voice_to_voice_p50_le_200ms, Some(true), "the Piper rows are judged apart");
        // One wrong word in five is 20 points; a live run without turns is not measured.
        let v = VoicesReport { wer: wer("why is the sky green"), live: Some(vec![live(None)]), ..v };
        let g = goals(&[], None, Some(&v));
        assert_eq!(g.voices_live_v2v_p50_le_200ms, None);
        assert_eq!(g.wer_gap_le_2_points, Some(false));
        assert_eq!(goals(&[], None, None).voices_replay_v2v_p50_le_200ms, None);
    }

    fn seg(part: Part, text: &str, start_ms: f64, end_ms: f64) -> Segment {
        Segment { part, text: text.into(), start_ms, end_ms, ready_ms: start_ms, samples: Vec::new() }
    }

    /// The seam gaps of the default `[tts]` settings (sentence 250, clause 120, word 40 ms).
    fn gap(prev: &str) -> f64 {
        daemon::turn_shared::seam_gap_ms(&Config::default(), prev)
    }

    #[test]
    fn a_late_chunk_inside_a_sentence_is_a_stall_beyond_its_word_gap() {
        // The demo: the next chunk of one sentence came 333 ms after the previous ended.
        let s = [
            seg(Part::Opener, "Sure, the sky", 0.0, 900.0),
            seg(Part::Continuation, "looks blue because air", 940.0, 2000.0),
            seg(Part::Continuation, "scatters blue light the most.", 2333.0, 3500.0),
        ];
        let stall = longest_stall_ms(&s, gap).unwrap();
        assert!((stall - (333.0 - 40.0)).abs() < 1e-9, "{stall}");
    }

    #[test]
    fn designed_pauses_sentence_ends_and_the_handoff_are_not_stalls() {
        let s = [
            // The handoff gap (opener → continuation) is measured on its own.
            seg(Part::Opener, "Well, it", 0.0, 800.0),
            seg(Part::Continuation, "depends,", 1500.0, 2000.0),
            // A clause gap of exactly 120 ms is the player's design.
            seg(Part::Continuation, "mostly on the weather.", 2120.0, 3000.0),
            // After a sentence end any pause sounds natural.
            seg(Part::Continuation, "Pack a coat", 3900.0, 4500.0),
            // Early is clamped: never negative.
            seg(Part::LocalFinish, "and boots.", 4510.0, 5000.0),
        ];
        assert_eq!(longest_stall_ms(&s, gap), Some(0.0));
    }

    #[test]
    fn the_longest_of_several_stalls_and_none_without_a_seam() {
        let s = [
            seg(Part::Continuation, "one two", 0.0, 500.0),
            seg(Part::Continuation, "three,", 640.0, 900.0),
            seg(Part::Continuation, "four five", 1200.0, 1500.0),
            seg(Part::Fallback, "six.", 1550.0, 1800.0),
        ];
        // 640-500-40 = 100; 1200-900-120 = 180; 1550-1500-40 = 10.
        assert_eq!(longest_stall_ms(&s, gap), Some(180.0));
        let lone = [seg(Part::Opener, "Sure.", 0.0, 500.0), seg(Part::Continuation, "Yes, it is.", 800.0, 1500.0)];
        assert_eq!(longest_stall_ms(&lone, gap), None);
        assert_eq!(longest_stall_ms(&[], gap), None);
    }
}
