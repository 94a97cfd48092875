//! `firstword run`: the live daemon. Microphone → listener thread (resample to 16 kHz, VAD,
//! endpointing) → conversation loop (the turn state machine with Whisper, the μLM, the cloud
//! and Piper) → speaker ring → playback. With `--input-wav` the devices are simulated: the
//! WAV plays into the same capture path in real time and the speaker's output is recorded.
//!
//! Start-up order: signal handlers, metrics endpoint, models, cloud link (pre-warmed),
//! devices, then `READY=1` to systemd. Shutdown (SIGTERM/SIGINT): `STOPPING=1`, the cloud
//! request is cancelled, the current reply plays for up to 1 s, playback stops, exit 0.

mod active_turn;
mod clock;
mod conversation;
mod inbox;
mod listener;
mod service;
pub mod settings;
mod speaker;
mod speculation;

use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use audio::device::AudioCounters;
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::metrics::{http, Metrics};
use crate::replay::Models;
use asr::wake_check::{check_window, WakeCheck};
use clock::{Clock, Heartbeat};
use cloud::link::CloudLink;
use conversation::{Conversation, Ending};
use listener::{Listener, ListenerParts};
use speaker::Speaker;

/// Ended utterances that may wait for the conversation loop; more are dropped (see
/// [`inbox::UtteranceQueue`]). With `vad.max_utterance_ms` at most 60 s, the inbox then holds
/// at most 4 × 60 s of 16 kHz audio (15 MB).
const MAX_QUEUED_UTTERANCES: usize = 4;

/// Most turns [`TurnLog`] keeps; later ones are counted, not kept (a daemon that runs for
/// months with `--report-json` must not grow without bound: 100,000 entries ≈ 10 MB in memory,
/// ≈ 30 MB of JSON).
const MAX_LOGGED_TURNS: usize = 100_000;

pub use active_turn::TurnSummary;

/// The ended turns' timings of one run, written by `--report-json` when the run ends.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct TurnLog {
    pub turns: Vec<TurnSummary>,
    /// Turns past [`MAX_LOGGED_TURNS`], counted only.
    pub turns_not_kept: usize,
}

impl TurnLog {
    fn push(&mut self, t: TurnSummary) {
        if self.turns.len() < MAX_LOGGED_TURNS {
            self.turns.push(t);
        } else {
            self.turns_not_kept += 1;
        }
    }
}

/// `firstword run` options from the command line (they override `[audio]`).
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Simulated microphone: this WAV, at real-time pace.
    pub input_wav: Option<PathBuf>,
    /// Simulated speaker: write what it played here on exit.
    pub output_wav: Option<PathBuf>,
    /// With a simulated input: keep running after it ends, until SIGTERM/SIGINT.
    pub keep_running: bool,
    /// Write each ended turn's timings ([`TurnLog`], JSON) here when the run ends.
    pub report_json: Option<PathBuf>,
}

/// Runs the daemon until a signal (or, with simulated devices, the end of the input).
pub fn run(cfg: &Config, opts: &RunOptions) -> Result<()> {
    let mut audio_cfg = cfg.audio.clone();
    if opts.input_wav.is_some() {
        audio_cfg.input_wav = opts.input_wav.clone();
    }
    if opts.output_wav.is_some() {
        audio_cfg.output_wav = opts.output_wav.clone();
    }
    if audio_cfg.output_wav.is_some() && audio_cfg.input_wav.is_none() {
        bail!("--output-wav needs --input-wav (the simulated speaker comes with the simulated microphone)");
    }
    if opts.keep_running && audio_cfg.input_wav.is_none() {
        bail!("--keep-running applies to a simulated input (--input-wav); real devices always run until a signal");
    }

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().context("tokio runtime")?;
    let (tx, inbox) = std::sync::mpsc::channel();
    service::install_signal_handlers(&rt, tx.clone())?;

    let metrics = Arc::new(Metrics::new());
    let metrics_task = match cfg.metrics.addr()? {
        Some(addr) => {
            let (listener, local) = rt.block_on(http::bind(addr))?;
            println!("metrics: http://{local}/metrics");
            Some(rt.spawn(http::serve(listener, metrics.clone())))
        }
        None => None,
    };

    let plan = audio::devices::Plan::from_config(&audio_cfg)?;
    let mut gate =
        audio::activation_gate::ActivationGate::from_config(&cfg.activation, cfg.turn.conversation_idle_s, audio_cfg.input_wav.is_some())?;
    service::notify_status("loading models");
    let vad = audio::vad::Vad::new(&cfg.vad).context("loading the VAD")?;
    let models = Models::load(cfg)?;
    if let Some(g) = gate.as_mut().filter(|_| cfg.activation.wake_confirm) {
        if let Some(phrase) = g.spotter.as_ref().map(|s| s.phrase().to_owned()) {
            let mut check = WakeCheck::new(models.asr.fork().context("the wake-word check's Whisper state")?, &phrase);
            g.confirm = Some(Box::new(move |hist, end| {
                let (from, to) = check_window(end, hist.end());
                check.check(&hist.slice(from, to)).map(|c| c.confirmed).map_err(|e| e.to_string())
            }));
            tracing::info!(%phrase, "activation: wake-word detections confirmed by ASR");
        }
    }
    service::notify_status("connecting to the cloud");
    let link = rt.block_on(CloudLink::start(&cfg.cloud, None)).context("connecting to the cloud continuator")?;
    if !link.client.is_connected() {
        tracing::warn!("cloud not connected yet: turns fall back locally until it is");
    }

    let counters = AudioCounters::new();
    let mut opened = plan.open(counters.clone())?;
    let reference = opened.queue.take_reference();
    let mic = audio::mic::Mic::new(opened.reader, reference, opened.reopen_capture.take(), &audio_cfg)?;
    let clock = Clock::start();
    let heartbeat = Heartbeat::new(clock);
    heartbeat.conversation();
    heartbeat.listener();
    let speaker = Speaker::new(opened.queue, clock);
    let replying = Arc::new(AtomicBool::new(false));
    let verdict = Arc::new(inbox::PauseVerdict::default());
    let resumed = Arc::new(inbox::PauseResumed::default());
    let pauses = Arc::new(inbox::PauseSlot::default());
    let utterances = Arc::new(inbox::UtteranceQueue::new(MAX_QUEUED_UTTERANCES));
    let mut listener = Listener::spawn(ListenerParts {
        reader: mic,
        vad,
        playback: speaker.control(),
        replying: replying.clone(),
        barge_in_profile: audio_cfg.echo_cancellation,
        tx: tx.clone(),
        heartbeat: heartbeat.clone(),
        pre_roll_samples: audio::vad::Vad::pre_roll_samples(&cfg.vad),
        verdict: verdict.clone(),
        resumed: resumed.clone(),
        pauses: pauses.clone(),
        utterances: utterances.clone(),
        gate,
    })?;
    let watchdog = service::Watchdog::start(heartbeat.clone());
    let running = opened.running;
    let echo = match (audio_cfg.echo_cancellation, audio_cfg.half_duplex) {
        (true, false) => "echo cancellation on",
        (true, true) => "echo cancellation on, half-duplex",
        (false, true) => "half-duplex",
        (false, false) => "echo cancellation off",
    };
    tracing::info!("listening: {} ({echo})", opened.description);
    service::notify_ready(&format!("listening: {}", opened.description));
    println!("ready: {}", opened.description);

    let turn_log = RefCell::new(TurnLog::default());
    let conversation = Conversation {
        cfg,
        models,
        link: &link,
        rt: &rt,
        speaker,
        metrics: metrics.clone(),
        counters,
        inbox,
        inbox_tx: tx,
        clock,
        heartbeat,
        replying,
        verdict,
        resumed,
        pauses,
        utterances,
        keep_running: opts.keep_running,
        reopen_speaker: opened.reopen_speaker,
        turn_log: opts.report_json.as_ref().map(|_| &turn_log),
    };
    let ending = conversation.run();
    service::notify_stopping();
    drop(watchdog);
    listener.stop();
    let closed = running.close();
    rt.block_on(link.shutdown());
    if let Some(task) = metrics_task {
        task.abort();
    }
    if let Some(path) = &opts.report_json {
        let json = serde_json::to_string_pretty(&turn_log.into_inner()).context("encoding the turn report")?;
        std::fs::write(path, json).with_context(|| format!("writing the turn report {}", path.display()))?;
    }
    let ending = ending?;
    if let Some((path, secs)) = closed.context("closing the audio devices")? {
        println!("wrote {} ({secs:.1} s)", path.display());
    }
    tracing::info!("stopped ({})", if ending == Ending::Signal { "signal" } else { "input finished" });
    Ok(())
}
