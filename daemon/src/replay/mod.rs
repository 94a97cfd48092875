//! `firstword replay IN.wav --out DIR`: a recorded conversation through the whole pipeline
//! (VAD → Whisper → μLM opener → Piper, with the cloud continuation into the same queue) on
//! an audio-sample clock.
//!
//! Clock: each turn starts at its endpoint on the input's clock (or, with speculation, at
//! the VAD pause that the endpoint confirmed); every later event is placed there plus the
//! real wall-clock time the work took, so the timeline is what a live device would have
//! shown on this machine. Cloud latency is real too (the gateway sleeps). `--realtime` also
//! paces the input at real time, as a microphone would. `--clock modeled` gives the work a
//! fixed cost instead (tests: a busy host cannot change a turn's timeline; [`clock`]).

pub mod clock;
mod outputs;
pub mod turn_loop;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use audio::vad::Vad;

use crate::config::Config;
use crate::conversation::Conversation;
use crate::turn::budget::{opener_words, LatencyEstimate};
use cloud::link::CloudLink;
use lm::endpoint::{judge, pause_hangover_ms, Completeness};
pub use outputs::Segment;
pub use outputs::TurnTimeline;

/// Replay options from the command line.
pub struct ReplayOptions {
    pub input: PathBuf,
    pub out_dir: PathBuf,
    pub cloud_latency_ms: Option<f64>,
    pub realtime: bool,
    /// How the device's work is placed on the timeline (wall: as it took here; modeled: a
    /// fixed cost per piece of work, for tests).
    pub clock: clock::ClockMode,
}

/// One utterance found by the VAD, in ms on the input clock, with semantic endpointing's
/// judgement of the pause that ended it ([`audio::vad::utterances`]).
pub type Utterance = audio::vad::Utterance<Completeness>;

/// Runs the VAD over the whole input and returns its utterances (fixed hangover).
pub fn utterances(vad: &mut Vad, input: &[f32], min_speech_ms: u32) -> Result<Vec<Utterance>> {
    audio::vad::utterances(vad, input, min_speech_ms, 0, |_| Ok(None))
}

/// The device's models: everything a turn needs besides the cloud.
pub struct Models {
    pub asr: asr::Asr,
    pub voice: tts::Tts,
    pub mulm: lm::mulm::Mulm,
    /// The opener gate's harmful-request check, when on (`[gate] harm_check`, `harm_head`, or
    /// a checkpoint that asks for it).
    pub harm: Option<lm::harm::HarmClassifier>,
}

impl Models {
    /// Loads Whisper, the Piper voice, the μLM and, when on for this checkpoint
    /// ([`lm::gate::GateConfig::harm_check_on`]), the harmful-request check, then warms them up.
    pub fn load(cfg: &Config) -> Result<Self> {
        let mulm = lm::mulm::Mulm::load(&cfg.lm)?;
        let harm =
            lm::harm::HarmClassifier::from_config(&cfg.gate, mulm.asks_harm_check()).context("loading the gate's harmful-request check")?;
        let mut m = Self {
            asr: asr::Asr::load(&cfg.asr).context("loading Whisper")?,
            voice: tts::Tts::load(&cfg.tts).context("loading the Piper voice")?,
            mulm,
            harm,
        };
        m.warm_up()?;
        // The lines a turn may say the moment it decides to (the gate's bridges, the filler)
        // are synthesized now: most turns of the shipped μLM open with a bridge, whose first
        // audio is then ready at once instead of one Piper inference later.
        let lines: Vec<String> =
            cfg.gate.bridges.iter().chain(std::iter::once(&cfg.turn.filler_text)).map(|t| tts::normalize::for_speech(t)).collect();
        m.voice.keep_phrases(&lines).context("synthesizing the bridges and the filler ahead")?;
        Ok(m)
    }

    /// One untimed pass through each model, so that the first real turn does not pay for
    /// first-call work (Whisper's compute buffers, onnxruntime's first run, page faults in
    /// the μLM weights): measured at ~2 s on the first turn without it on 2 busy cores.
    fn warm_up(&mut self) -> Result<()> {
        // 1 s of faint noise: Whisper runs its encoder and decoder as on speech.
        let noise: Vec<f32> = (0..16_000u32).map(|i| ((i.wrapping_mul(2_654_435_761) >> 16) as f32 / 65_536.0 - 0.5) * 1e-3).collect();
        self.asr.transcribe(&noise).context("warming up Whisper")?;
        self.mulm.opener("Hello, how are you?", 2).context("warming up the μLM")?;
        if let Some(h) = &self.harm {
            h.margin("Hello, how are you?").context("warming up the harmful-request check")?;
        }
        self.voice.synthesize("Hello.").context("warming up the Piper voice")?;
        Ok(())
    }
}

/// The input's utterances as the daemon hears them: with semantic endpointing
/// (`endpoint.semantic`), each pause is transcribed and judged by Whisper and the μLM and its
/// hangover set from the judgement; else the VAD's fixed hangover.
pub fn find_utterances(cfg: &Config, vad: &mut Vad, input: &[f32], models: &mut Models) -> Result<Vec<Utterance>> {
    if !cfg.endpoint.semantic {
        return utterances(vad, input, cfg.vad.min_speech_ms);
    }
    let pre_roll = Vad::pre_roll_samples(&cfg.vad);
    audio::vad::utterances(vad, input, cfg.vad.min_speech_ms, pre_roll, |audio| judge_pause(cfg, models, audio))
}

/// Semantic endpointing at one pause: the hangover to set and why (None: keep the VAD's).
pub fn judge_pause(cfg: &Config, models: &mut Models, audio: &[f32]) -> Result<Option<(u32, Completeness)>> {
    let text = models.asr.transcribe(audio).context("semantic endpointing: ASR at a pause")?.text;
    let p_end = if text.trim().is_empty() { None } else { Some(models.mulm.end_of_turn_prob(&text)?) };
    let c = judge(&text, p_end, &cfg.endpoint);
    tracing::debug!(text = %text.trim(), p_end, judged = ?c, "pause");
    Ok(pause_hangover_ms(c, &cfg.endpoint).map(|h| (h, c)))
}

/// The opener's word budget for the next turn: adaptive from the cloud's observed latency,
/// or the fixed `turn.opener_words`.
pub fn next_opener_words(cfg: &Config, estimate: &LatencyEstimate) -> usize {
    if cfg.turn.adaptive_opener {
        opener_words(estimate, cfg.turn.speech_words_per_s, cfg.turn.min_opener_words, cfg.turn.max_opener_words, cfg.turn.opener_words)
    } else {
        cfg.turn.opener_words
    }
}

pub fn run(cfg: &Config, opts: &ReplayOptions) -> Result<Vec<TurnTimeline>> {
    let input = audio::load_wav_16k_mono(&opts.input).with_context(|| format!("cannot replay {}", opts.input.display()))?;
    std::fs::create_dir_all(&opts.out_dir).with_context(|| format!("creating {}", opts.out_dir.display()))?;
    let mut vad = Vad::new(&cfg.vad).context("loading the VAD")?;
    let mut models = Models::load(cfg)?;
    let utts = find_utterances(cfg, &mut vad, &input, &mut models)?;
    if utts.is_empty() {
        bail!("no speech found in {} (VAD: {})", opts.input.display(), vad.detector_name());
    }
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let link = rt.block_on(CloudLink::start(&cfg.cloud, opts.cloud_latency_ms)).context("connecting to the cloud continuator")?;

    let wall_start = std::time::Instant::now();
    let mut estimate = LatencyEstimate::new(0.5);
    let mut turns: Vec<TurnTimeline> = Vec::new();
    let mut conversation = Conversation::new();
    // The span of the previous turn's question (several utterances when they were merged).
    let mut prev_span: Option<Utterance> = None;
    for (i, u) in utts.iter().enumerate() {
        // The user resumed right after the previous question's endpoint: one question.
        let merged = prev_span.is_some_and(|p| lm::endpoint::continues_previous(p.last_voiced_ms, u.start_ms, &cfg.endpoint));
        // Barge-in: this utterance began while the previous reply was still playing.
        if let Some(prev) = turns.last_mut() {
            prev.barge_in_at(u.confirmed_ms);
            if merged {
                prev.merged_into_next = true;
            } else {
                remember(&mut conversation, prev);
            }
        }
        let span = match prev_span {
            Some(p) if merged => Utterance { start_ms: p.start_ms, ..*u },
            _ => *u,
        };
        prev_span = Some(span);
        let idle_end = conversation.end_if_idle(u.start_ms, cfg.turn.conversation_idle_s * 1000.0);
        conversation.touch(u.start_ms);
        if opts.realtime {
            // Pace like a microphone: this turn's endpoint cannot be handled before it happens.
            let due = std::time::Duration::from_secs_f64(u.endpoint_ms / 1000.0);
            if let Some(wait) = due.checked_sub(wall_start.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        let words = next_opener_words(cfg, &estimate);
        let audio = audio::vad::utterance_audio(&input, &span, cfg.vad.pre_roll_ms);
        let ctx = turn_loop::TurnContext {
            cfg,
            utterance: span,
            audio,
            words,
            index: i,
            stop_at_handoff: false,
            history: &conversation,
            clock: opts.clock,
        };
        let mut t = turn_loop::run_turn(&rt, &link, &mut models, &ctx)?;
        if merged {
            t.merged_from = Some(i - 1);
        }
        if idle_end && t.conversation_end.is_none() {
            t.conversation_end = Some("idle");
        }
        if let (Some(d), Some(o)) = (t.cloud_first_delta_ms, t.opener_ready_ms) {
            estimate.observe(d - o);
        }
        turns.push(t);
    }
    if let Some(last) = turns.last_mut() {
        remember(&mut conversation, last);
    }
    rt.block_on(link.shutdown());
    outputs::write_all(&opts.out_dir, &input, &turns, models.voice.sample_rate_hz(), opts.clock)?;
    Ok(turns)
}

/// Adds a finished turn to the conversation: its question and the reply as heard. Turns
/// older than every budget used in this turn are forgotten first (counted in the turn's
/// `dropped_turns`). An end phrase drops the conversation instead (its own turn included).
fn remember(conversation: &mut Conversation, t: &mut TurnTimeline) {
    let at_ms = t.turn_end_ms.unwrap_or(t.endpoint_ms);
    if t.conversation_end == Some("phrase") {
        conversation.clear();
        conversation.touch(at_ms);
        return;
    }
    t.context.dropped_turns = crate::conversation::remember(conversation, &t.transcript, &t.heard_text, &t.context, at_ms);
}

/// Where replay writes its files.
pub fn output_paths(dir: &Path) -> [PathBuf; 3] {
    [dir.join("reply.wav"), dir.join("timeline.json"), dir.join("timeline.svg")]
}
