//! The conversation loop (the daemon's main thread): one [`Turn`] per utterance, driven
//! exactly as the state machine expects — `SpeechEnded` → `Transcribe` → `WriteOpener` →
//! `SendContinue` + `Speak` …, cloud events as they arrive, `PlaybackIdle` when the speaker
//! drains, `Tick`s for the filler, and `SpeechStarted` during the reply as barge-in.
//!
//! Whisper, the μLM and Piper run on this thread; the listener keeps hearing meanwhile
//! (its ring buffers the microphone) and applies barge-in itself (see `listener`).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use audio::device::AudioCounters;

use super::active_turn::{action_name, ActiveTurn};
use super::clock::{Clock, Heartbeat};
use super::inbox::{Heard, Inbox, PauseResumed, PauseSlot, PauseVerdict, UtteranceQueue};
use super::service;
use super::speaker::{PlaybackStalled, Speaker};
use super::speculation::{ResumedQuestion, Speculation, SpeculativeOpener};
use crate::config::Config;
use crate::conversation::{is_end_phrase, remember};
use crate::metrics::Metrics;
use crate::replay::{next_opener_words, Models};
use crate::turn::budget::LatencyEstimate;
use crate::turn::{Action, Event, Turn};
use crate::turn_shared::{
    cloud_event, cloud_history, continue_params, deadlines, gate_policy, mulm_history, request_tokens, scored_opener, LOCAL_FINISH_TOKENS,
};
use audio::device_watch::{DeviceChange, DeviceWatch};
use cloud::link::CloudLink;

/// Longest wait for a message before housekeeping (idle check, filler tick), in ms.
const TICK_MS: u64 = 20;
/// On shutdown, the current reply may play this long before playback stops.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);
/// Whisper's budget before the watchdog counts the conversation loop as stuck: this much,
/// plus [`ASR_BUSY_PER_AUDIO_S`] per second of audio. Whisper runs faster than real time on
/// the targets (README, bench asr), so a run 2.5× slower than real time is taken as hung.
const ASR_BUSY_BASE_S: f64 = 10.0;
/// See [`ASR_BUSY_BASE_S`]: seconds of budget per second of audio.
const ASR_BUSY_PER_AUDIO_S: f64 = 2.5;
/// How often cloud and audio counters are copied into the metrics.
const COUNTER_SYNC: Duration = Duration::from_millis(500);

/// Everything the loop works with.
pub struct Conversation<'a> {
    pub cfg: &'a Config,
    pub models: Models,
    pub link: &'a CloudLink,
    pub rt: &'a tokio::runtime::Runtime,
    pub speaker: Speaker,
    pub metrics: Arc<Metrics>,
    pub counters: Arc<AudioCounters>,
    pub inbox: Receiver<Inbox>,
    pub inbox_tx: Sender<Inbox>,
    pub clock: Clock,
    pub heartbeat: Arc<Heartbeat>,
    /// Mirrors `Turn::is_replying` for the listener's immediate barge-in.
    pub replying: Arc<AtomicBool>,
    /// Semantic endpointing's hangover for the listener's current pause.
    pub verdict: Arc<PauseVerdict>,
    /// The latest pause the user spoke on after (a speculative run for it is stale).
    pub resumed: Arc<PauseResumed>,
    /// The latest pause's audio, for speculative work.
    pub pauses: Arc<PauseSlot>,
    /// Ended utterances the listener has queued for this loop (released as they are taken).
    pub utterances: Arc<UtteranceQueue>,
    /// After the simulated input ends, keep running until a signal.
    pub keep_running: bool,
    /// Reopens a lost speaker (see `device_health`).
    pub reopen_speaker: audio::devices::ReopenSpeaker,
    /// Where ended turns' timings go for `--report-json` (None: not kept).
    pub turn_log: Option<&'a std::cell::RefCell<super::TurnLog>>,
}

/// How the loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The simulated input ended and the last turn was over.
    InputFinished,
    /// SIGTERM / SIGINT.
    Signal,
}

struct LoopState {
    /// Messages already taken from the inbox (to look ahead) and not yet handled.
    backlog: VecDeque<Inbox>,
    estimate: LatencyEstimate,
    spec: Speculation,
    active: Option<ActiveTurn>,
    turns: usize,
    input_ended: bool,
    announced_idle: bool,
    stopping: Option<Instant>,
    force_stop: bool,
    last_sync: Instant,
    /// The conversation so far (memory only).
    history: crate::conversation::Conversation,
    /// Earlier turns and prompt tokens of the speculative opener, if one is stored.
    spec_mulm: (usize, usize),
    /// Device losses handled so far, the lost speaker's reopen backoff (see `device_health`).
    devices: DeviceWatch,
    /// Where the open utterance's speech began (ms on the stream clock).
    utterance_start_ms: f64,
    /// The open utterance continues the question of the turn it interrupted.
    resumed: Option<ResumedQuestion>,
}

impl Conversation<'_> {
    /// Runs until the input ends (simulated devices) or a signal; returns why it ended.
    pub fn run(mut self) -> Result<Ending> {
        let _rt = self.rt.enter(); // the cloud client spawns tokio tasks
        let mut st = LoopState {
            backlog: VecDeque::new(),
            estimate: LatencyEstimate::new(0.5),
            spec: Speculation::default(),
            active: None,
            turns: 0,
            input_ended: false,
            announced_idle: false,
            stopping: None,
            force_stop: false,
            last_sync: Instant::now(),
            history: crate::conversation::Conversation::new(),
            spec_mulm: (0, 0),
            devices: DeviceWatch::default(),
            utterance_start_ms: 0.0,
            resumed: None,
        };
        loop {
            self.heartbeat.conversation();
            let next = match st.backlog.pop_front() {
                Some(msg) => Ok(msg),
                None => self.inbox.recv_timeout(Duration::from_millis(TICK_MS)),
            };
            match next {
                Ok(msg) => self.handle(&mut st, msg)?,
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    bail!("the conversation loop's inbox closed")
                }
            }
            self.housekeeping(&mut st)?;
            if let Some(since) = st.stopping {
                let drained = self.speaker.is_idle();
                if st.force_stop || drained || since.elapsed() >= SHUTDOWN_GRACE {
                    self.speaker.stop();
                    if let Some(t) = st.active.take() {
                        self.cancel_cloud(&t);
                        tracing::info!(turn = t.number, "shutdown: turn cut short");
                        self.finish_turn(&mut st, t);
                    }
                    self.sync_counters();
                    return Ok(Ending::Signal);
                }
                continue;
            }
            if st.input_ended && st.active.is_none() && self.speaker.is_idle() && !st.announced_idle {
                st.announced_idle = true;
                self.sync_counters();
                println!("input finished: {} turns", st.turns);
                if !self.keep_running {
                    return Ok(Ending::InputFinished);
                }
            }
        }
    }

    fn handle(&mut self, st: &mut LoopState, msg: Inbox) -> Result<()> {
        if st.stopping.is_some() {
            if let Inbox::Shutdown { signal } = msg {
                tracing::warn!("{signal} again: stopping now");
                st.force_stop = true;
            }
            return Ok(());
        }
        match msg {
            Inbox::Heard(Heard::SpeechStart { start_ms, confirmed_ms }) => {
                tracing::debug!(start_ms, confirmed_ms, "speech started");
                st.spec.clear();
                st.utterance_start_ms = start_ms;
                st.resumed = None;
                if let Some(t) = st.active.as_mut() {
                    if lm::endpoint::continues_previous(t.last_voiced_ms, start_ms, &self.cfg.endpoint) {
                        tracing::info!(turn = t.number, "the user resumed: the next turn answers both parts as one question");
                        t.merged_into_next = true;
                        st.resumed = Some(ResumedQuestion { audio: t.audio.clone(), end_ms: t.endpoint_ms });
                    }
                }
                self.end_if_idle(st, start_ms);
                st.history.touch(start_ms);
                self.drive(st, Event::SpeechStarted { at_ms: confirmed_ms })?;
            }
            Inbox::Heard(Heard::Pause { seq }) => {
                // Speculate only when it can still help: no turn in progress, this is the
                // latest pause (a newer one replaced its audio), and the VAD has not already
                // moved on (work done while the loop was busy is queued).
                let Some(pause) = self.pauses.take(seq) else {
                    tracing::debug!(seq, "pause overtaken by a newer one: no speculation");
                    return Ok(());
                };
                tracing::debug!(pause.last_voiced_ms, at_ms = self.clock.now_ms() as u64, "pause");
                if st.active.is_none() && self.cfg.turn.speculative && !self.heard_since(st, false) {
                    let audio = match &st.resumed {
                        Some(q) => q.join(&pause.audio, self.audio_start_ms(st.utterance_start_ms)),
                        None => pause.audio,
                    };
                    if let Err(e) = self.speculate(st, seq, pause.last_voiced_ms, &audio) {
                        tracing::warn!("speculative ASR/opener failed: {e:#}");
                        st.spec.clear();
                    }
                }
            }
            Inbox::Heard(Heard::Resume) => st.spec.clear(),
            Inbox::Heard(Heard::SpeechEnd { start_ms, last_voiced_ms, endpoint_ms, audio }) => {
                self.utterances.release();
                tracing::debug!(start_ms, last_voiced_ms, endpoint_ms, at_ms = self.clock.now_ms() as u64, "speech ended");
                if self.heard_since(st, true) {
                    // A newer utterance already ended while this loop was busy: the newer
                    // question wins, and this one is not worth a Whisper run.
                    tracing::info!(start_ms = start_ms as u64, "utterance overtaken by a newer one before its turn began");
                    return Ok(());
                }
                if st.active.is_some() {
                    // Speech over a turn that is not replying yet: the newer question wins.
                    self.drive(st, Event::SpeechStarted { at_ms: start_ms })?;
                    if let Some(t) = st.active.take() {
                        self.abandon(st, t, "a newer utterance ended first");
                    }
                }
                let audio = match st.resumed.take() {
                    Some(q) => q.join(&audio, self.audio_start_ms(start_ms)),
                    None => audio,
                };
                if st.devices.speaker_lost() {
                    tracing::warn!(start_ms = start_ms as u64, "speaker gone: utterance not answered");
                    return Ok(());
                }
                self.start_turn(st, last_voiced_ms, endpoint_ms, audio)?;
            }
            Inbox::Cloud { request, at, event } => {
                if st.active.as_ref().is_some_and(|t| t.cloud == Some(request)) {
                    self.drive(st, cloud_event(event, self.clock.ms_of(at)))?;
                }
            }
            Inbox::InputEnded => st.input_ended = true,
            Inbox::Shutdown { signal } => {
                tracing::info!("{signal}: finishing the current sentence, then stopping");
                service::notify_stopping();
                st.stopping = Some(Instant::now());
                st.spec.clear();
                if let Some(t) = st.active.as_mut() {
                    if let Some(id) = t.cloud.take() {
                        self.link.client.cancel(id);
                    }
                }
            }
            Inbox::ListenerFailed(e) => bail!("listening failed: {e}"),
            Inbox::Listening => self.listening(st),
        }
        Ok(())
    }

    /// Where the listener's audio of an utterance whose speech began at `start_ms` begins:
    /// `vad.pre_roll_ms` earlier (ms on the stream clock).
    fn audio_start_ms(&self, start_ms: f64) -> f64 {
        start_ms - f64::from(self.cfg.vad.pre_roll_ms)
    }

    /// Moves what waits in the inbox to the backlog and says whether the listener has moved
    /// on since the message in hand: another ended utterance (`ended_only`), or any speech
    /// event (speech start, resume, end).
    fn heard_since(&self, st: &mut LoopState, ended_only: bool) -> bool {
        while let Ok(m) = self.inbox.try_recv() {
            st.backlog.push_back(m);
        }
        st.backlog.iter().any(|m| match m {
            Inbox::Heard(Heard::SpeechEnd { .. }) => true,
            Inbox::Heard(Heard::Resume | Heard::SpeechStart { .. }) => !ended_only,
            _ => false,
        })
    }

    /// Idle and tick events for the active turn, its wall-clock limit, counters, device health.
    fn housekeeping(&mut self, st: &mut LoopState) -> Result<()> {
        if self.counters.failed() {
            bail!("the audio host went away (see the log above)");
        }
        self.device_health(st);
        if st.last_sync.elapsed() >= COUNTER_SYNC {
            st.last_sync = Instant::now();
            self.sync_counters();
        }
        if st.stopping.is_some() {
            return Ok(());
        }
        let now = self.clock.now_ms();
        if st.active.is_none() {
            self.end_if_idle(st, now);
        }
        // A reply stopped by the listener (barge-in) drains at once: its `SpeechStarted` is on
        // the way, and an idle event first would end the turn as if it had played out.
        let idle = match st.active.as_mut() {
            Some(t) if !t.idle_notified && self.speaker.is_idle() && !self.speaker.is_stopped() => {
                t.idle_notified = true;
                true
            }
            _ => false,
        };
        if idle {
            self.drive(st, Event::PlaybackIdle { at_ms: now })?;
        }
        // The turn's deadlines (first delta, stall, wall limit) are its own decisions.
        self.drive(st, Event::Tick { at_ms: now })
    }

    /// A microphone that went away ends the turn in progress (its question or reply can no
    /// longer be followed); the listener keeps running and hears again once it is back. A lost
    /// speaker (unplugged, Bluetooth dropout, PipeWire restart, or a ring that stopped moving)
    /// ends it too, utterances are not answered while it is gone, and it is reopened with
    /// backoff ([`DeviceWatch`]); the loop, and so the watchdog's pings, go on meanwhile.
    fn device_health(&mut self, st: &mut LoopState) {
        for change in st.devices.poll(&self.counters, Instant::now(), &mut self.reopen_speaker) {
            let device = match change {
                DeviceChange::MicLost => "microphone",
                DeviceChange::SpeakerLost => "speaker",
                DeviceChange::MicBack => {
                    tracing::info!("microphone back: listening again");
                    continue;
                }
                DeviceChange::SpeakerBack { gone } => {
                    tracing::info!("speaker back after {:.1} s: answering again", gone.as_secs_f64());
                    continue;
                }
            };
            tracing::warn!("{device} gone: ending the turn in progress until it is back");
            self.sync_counters();
            st.spec.clear();
            if let Some(t) = st.active.take() {
                self.abandon(st, t, &format!("the {device} went away"));
            }
        }
    }

    fn sync_counters(&self) {
        Metrics::sync_counter(&self.metrics.audio_device_losses, self.counters.device_losses());
        Metrics::sync_counter(&self.metrics.audio_overruns, self.counters.overruns());
        Metrics::sync_counter(&self.metrics.audio_underruns, self.counters.underruns());
        let connects = self.link.client.stats().connects;
        Metrics::sync_counter(&self.metrics.cloud_reconnects, connects.saturating_sub(1));
    }

    fn start_turn(&mut self, st: &mut LoopState, last_voiced_ms: f64, endpoint_ms: f64, audio: Vec<f32>) -> Result<()> {
        let words = next_opener_words(self.cfg, &st.estimate);
        let number = st.turns + 1;
        let mut turn = Turn::new(self.cfg.turn.clone(), words)
            .with_gate(gate_policy(self.cfg, &self.models.mulm, number))
            .with_deadlines(deadlines(self.cfg));
        let actions = turn.on(Event::SpeechEnded { last_voiced_ms, endpoint_ms });
        let t = ActiveTurn::new(turn, number, last_voiced_ms, endpoint_ms, audio);
        self.speaker.begin_reply();
        self.step(st, t, actions)
    }

    /// Feeds `ev` to the active turn (if any) and performs its actions.
    fn drive(&mut self, st: &mut LoopState, ev: Event) -> Result<()> {
        let Some(mut t) = st.active.take() else {
            return Ok(());
        };
        let actions = t.turn.on(ev);
        self.step(st, t, actions)
    }

    fn step(&mut self, st: &mut LoopState, mut t: ActiveTurn, actions: Vec<Action>) -> Result<()> {
        let result = self.perform(st, &mut t, actions);
        self.replying.store(t.turn.is_replying(), Ordering::Release);
        match result {
            Ok(()) if t.turn.is_done() => self.finish_turn(st, t),
            Ok(()) => st.active = Some(t),
            Err(e) => {
                self.abandon(st, t, &format!("{e:#}"));
                if e.chain().any(|c| c.is::<PlaybackStalled>()) {
                    // A device that stopped taking audio without an error: reopen it.
                    self.counters.set_playback_lost(true);
                }
            }
        }
        Ok(())
    }

    /// Performs actions in order; actions that produce events feed them back at once.
    fn perform(&mut self, st: &mut LoopState, t: &mut ActiveTurn, actions: Vec<Action>) -> Result<()> {
        let mut queue: VecDeque<Action> = actions.into();
        while let Some(action) = queue.pop_front() {
            tracing::debug!(turn = t.number, at_ms = self.clock.now_ms() as u64, "{}", action_name(&action));
            match action {
                Action::Transcribe => {
                    let text = match st.spec.take_transcript(t.last_voiced_ms) {
                        Some(text) => text,
                        None => self.transcribe(&t.audio)?,
                    };
                    if self.cfg.log.transcripts {
                        tracing::info!(turn = t.number, "heard: {text:?}");
                    }
                    if is_end_phrase(&text, &self.cfg.turn.conversation_end_phrases) {
                        t.end_phrase = true;
                        let n = st.history.clear();
                        self.metrics.conversations_ended.inc();
                        tracing::info!(turn = t.number, "conversation ended by an end phrase ({n} turns forgotten)");
                    }
                    queue.extend(t.turn.on(Event::Transcript { text, at_ms: self.clock.now_ms() }));
                }
                Action::WriteOpener { transcript, words } => {
                    let (text, complete, score) = match st.spec.take_opener(&transcript, words) {
                        Some(o) if !t.end_phrase => {
                            (t.context.mulm_context_turns, t.context.mulm_prompt_tokens) = st.spec_mulm;
                            o
                        }
                        _ => {
                            let (o, k, tokens) = self.write_opener(&st.history, &transcript, words)?;
                            (t.context.mulm_context_turns, t.context.mulm_prompt_tokens) = (k, tokens);
                            o
                        }
                    };
                    queue.extend(t.turn.on(Event::Opener { text, complete, at_ms: self.clock.now_ms(), score }));
                }
                Action::SendContinue { transcript, opener, opener_complete } => {
                    let (messages, k) = cloud_history(self.cfg, &st.history, &transcript);
                    let params = continue_params(self.cfg, messages, opener, opener_complete);
                    t.context.context_turns = k;
                    t.context.cloud_messages = params.messages.len();
                    t.context.cloud_request_tokens = request_tokens(&params);
                    let cont = self.link.client.continue_(params);
                    t.cloud = Some(cont.id);
                    t.cloud_sent_ms = Some(self.clock.now_ms());
                    let (tx, id, mut events) = (self.inbox_tx.clone(), cont.id, cont.events);
                    self.rt.spawn(async move {
                        while let Some(event) = events.recv().await {
                            if tx.send(Inbox::Cloud { request: id, at: Instant::now(), event }).is_err() {
                                break;
                            }
                        }
                    });
                }
                Action::Speak { text, part } => {
                    if let Some(p) = self
                        .speaker
                        .speak(&mut self.models.voice, self.cfg, &text)
                        .with_context(|| format!("turn {}: speaking", t.number))?
                    {
                        t.segments.push((part, p));
                        t.idle_notified = false;
                    }
                }
                Action::FinishLocally { transcript, prefix } => {
                    let (turns, _) = mulm_history(self.cfg, &self.models.mulm, &st.history, &transcript)?;
                    let text = self.models.mulm.finish_sentence(&turns, &prefix, LOCAL_FINISH_TOKENS)?;
                    queue.extend(t.turn.on(Event::LocalFinish { text, at_ms: self.clock.now_ms() }));
                }
                Action::StopPlayback => self.speaker.stop(),
                Action::CancelCloud => self.cancel_cloud(t),
                Action::EndTurn => {}
            }
        }
        Ok(())
    }

    fn cancel_cloud(&self, t: &ActiveTurn) {
        if let Some(id) = t.cloud {
            self.link.client.cancel(id);
        }
    }

    fn transcribe(&mut self, audio: &[f32]) -> Result<String> {
        Ok(self.transcribe_unless_resumed(audio, None)?.unwrap_or_default())
    }

    /// Whisper on `audio`. For the speculative run at pause `Some(seq)`, None when the user
    /// spoke on meanwhile: Whisper stops as soon as the listener hears it, so the next
    /// pause's run does not wait for a stale one.
    fn transcribe_unless_resumed(&mut self, audio: &[f32], pause: Option<u32>) -> Result<Option<String>> {
        let t0 = Instant::now();
        // Whisper's time grows with the audio (up to `vad.max_utterance_ms`): a long run is
        // declared to the watchdog, so only a run past this budget counts as stuck.
        let audio_s = audio.len() as f64 / audio::ASR_RATE_HZ as f64;
        let _step = self.heartbeat.busy(Duration::from_secs_f64(ASR_BUSY_BASE_S + ASR_BUSY_PER_AUDIO_S * audio_s));
        let ran = match pause {
            Some(seq) => {
                let resumed = self.resumed.clone();
                self.models.asr.transcribe_unless(audio, move || resumed.after(seq))
            }
            None => self.models.asr.transcribe(audio),
        };
        match ran {
            Ok(tr) => {
                Metrics::observe_ms(&self.metrics.asr, t0.elapsed().as_secs_f64() * 1000.0);
                Ok(Some(tr.text))
            }
            Err(asr::AsrError::Cancelled) => Ok(None),
            Err(e) => Err(anyhow::Error::new(e).context("Whisper")),
        }
    }

    /// The opener after the conversation so far, with its gate score; also the earlier turns
    /// in its prompt and the prompt's tokens.
    fn write_opener(
        &mut self,
        history: &crate::conversation::Conversation,
        transcript: &str,
        words: usize,
    ) -> Result<(SpeculativeOpener, usize, usize)> {
        let t0 = Instant::now();
        let (turns, k) = mulm_history(self.cfg, &self.models.mulm, history, transcript)?;
        let (o, score) = scored_opener(&self.models.mulm, self.models.harm.as_ref(), &turns, transcript, words)?;
        Metrics::observe_ms(&self.metrics.opener, t0.elapsed().as_secs_f64() * 1000.0);
        Ok(((o.text, o.complete, Some(score)), k, o.prompt_tokens))
    }

    /// Listening started: the earcon (unless a reply is playing) and the LED hook.
    fn listening(&mut self, st: &LoopState) {
        let a = &self.cfg.activation;
        if a.earcon && st.active.is_none() && self.speaker.earcon() {
            tracing::debug!("earcon played");
        }
        if let Some(cmd) = a.listening_command.as_deref() {
            match std::process::Command::new("sh").arg("-c").arg(cmd).stdin(std::process::Stdio::null()).spawn() {
                // Reaped on a thread: the hook is never waited for here.
                Ok(mut child) => {
                    let _ = std::thread::Builder::new().name("listening-hook".into()).spawn(move || child.wait());
                }
                Err(e) => tracing::warn!("activation.listening_command: {e}"),
            }
        }
    }

    /// Ends the conversation if nothing was said for `turn.conversation_idle_s` before `now_ms`.
    fn end_if_idle(&self, st: &mut LoopState, now_ms: f64) {
        if st.history.end_if_idle(now_ms, self.cfg.turn.conversation_idle_s * 1000.0) {
            self.metrics.conversations_ended.inc();
            tracing::info!("conversation ended: {} s without speech", self.cfg.turn.conversation_idle_s);
        }
    }

    /// ASR (and the opener) on the audio up to a pause, kept for the endpoint; with semantic
    /// endpointing, the pause's hangover is judged from that transcript and posted to the
    /// listener before the opener is written.
    fn speculate(&mut self, st: &mut LoopState, seq: u32, last_voiced_ms: f64, audio: &[f32]) -> Result<()> {
        let Some(text) = self.transcribe_unless_resumed(audio, Some(seq))? else {
            tracing::debug!(seq, "speech resumed: speculative ASR stopped");
            return Ok(());
        };
        let heard = text.trim().to_string();
        if self.cfg.endpoint.semantic && !heard.is_empty() {
            let p_end = self.models.mulm.end_of_turn_prob(&heard)?;
            let judged = lm::endpoint::judge(&heard, Some(p_end), &self.cfg.endpoint);
            tracing::debug!(p_end, ?judged, "pause judged");
            if let Some(ms) = lm::endpoint::pause_hangover_ms(judged, &self.cfg.endpoint) {
                self.verdict.set(seq, ms);
            }
        }
        st.spec.store_transcript(last_voiced_ms, text);
        if !heard.is_empty() && self.cfg.turn.local_opener {
            let words = next_opener_words(self.cfg, &st.estimate);
            let (o, k, tokens) = self.write_opener(&st.history, &heard, words)?;
            st.spec_mulm = (k, tokens);
            st.spec.store_opener(&heard, words, o);
        }
        Ok(())
    }

    /// Ends a turn that failed or was overtaken: cloud cancelled, playback stopped.
    fn abandon(&mut self, st: &mut LoopState, t: ActiveTurn, why: &str) {
        tracing::error!(turn = t.number, "turn abandoned: {why}");
        self.cancel_cloud(&t);
        self.speaker.stop();
        self.finish_turn(st, t);
    }

    /// Metrics, the latency estimate for the next opener budget, and the turn's log line.
    fn finish_turn(&mut self, st: &mut LoopState, mut t: ActiveTurn) {
        self.replying.store(false, Ordering::Release);
        st.turns += 1;
        // The conversation keeps the question and the reply as heard (memory only).
        let now = self.clock.now_ms();
        if t.merged_into_next {
            // The next turn answers this question with its continuation: keeping both would
            // put half a question and a cut-off reply in the history.
        } else if t.end_phrase {
            st.history.clear();
            st.history.touch(now);
        } else {
            let heard = self.speaker.heard_text();
            if self.cfg.log.transcripts {
                tracing::info!(turn = t.number, "heard of the reply: {heard:?}");
            }
            t.context.dropped_turns = remember(&mut st.history, &t.turn.record().transcript, &heard, &t.context, now);
            self.metrics.conversation_turns_dropped.inc_by(t.context.dropped_turns as u64);
            // While the user has not spoken yet: the next opener then prefills only its question.
            match crate::turn_shared::warm_mulm(self.cfg, &self.models.mulm, &st.history) {
                Ok(n) => tracing::debug!(turn = t.number, tokens = n, "μLM cache warmed"),
                Err(e) => tracing::warn!("{e:#}"),
            }
        }
        if let Some(log) = self.turn_log {
            log.borrow_mut().push(t.summary());
        }
        if let Some(ms) = t.report(&self.metrics, self.cfg.log.transcripts) {
            st.estimate.observe(ms);
        }
    }
}
