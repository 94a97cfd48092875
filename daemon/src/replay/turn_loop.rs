//! One replayed turn: drives the pure [`crate::turn::Turn`] state machine with real work
//! (Whisper, the μLM, Piper, the cloud) and places everything on the input's clock.

use std::collections::VecDeque;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use cloud::client::CloudEvent;

use super::clock::{ClockMode, CostModel, TurnClock, Work};
use super::outputs::{Segment, TurnTimeline};
use super::Models;
use super::Utterance;
use crate::config::Config;
use crate::conversation::{is_end_phrase, Conversation};
use crate::turn::{Action, Event, Part, Turn};
use crate::turn_shared::{
    cloud_event, cloud_history, continue_params, deadlines, gate_policy, mulm_history, request_tokens, scored_opener, seam_gap_ms,
    LOCAL_FINISH_TOKENS,
};
use cloud::link::CloudLink;

/// What one replayed turn needs: config, the utterance (times in ms on the input clock), its
/// audio and the opener word budget.
pub struct TurnContext<'a> {
    pub cfg: &'a Config,
    pub utterance: Utterance,
    /// The utterance's 16 kHz samples (speech start to endpoint).
    pub audio: &'a [f32],
    pub words: usize,
    pub index: usize,
    /// End the turn as soon as the first continuation chunk is queued (benchmarks: what
    /// follows the handoff does not change its measures), cancelling the cloud request.
    pub stop_at_handoff: bool,
    /// The conversation before this turn (sent to the cloud and the μLM). An end phrase in
    /// this turn's transcript sets `conversation_end` and the turn goes without it.
    pub history: &'a Conversation,
    /// How the device's work is placed on the timeline: as it took here, or modeled (tests).
    pub clock: ClockMode,
}

/// One replayed turn through the state machine; its timeline on the input's clock.
pub fn run_turn(rt: &tokio::runtime::Runtime, link: &CloudLink, models: &mut Models, ctx: &TurnContext<'_>) -> Result<TurnTimeline> {
    let Models { asr, voice, mulm, harm } = models;
    // The cloud client spawns tokio tasks (watchdogs), so calls must run inside the runtime.
    let _rt_guard = rt.enter();
    let cfg = ctx.cfg;
    let u = ctx.utterance;
    let speculative = cfg.turn.speculative && u.pause_ms.is_some();
    // Speculation: the work starts at the pause the endpoint later confirmed (the audio after
    // it is silence, so the result is the same); audio still cannot play before the endpoint.
    let mut turn = Turn::new(cfg.turn.clone(), ctx.words).with_gate(gate_policy(cfg, mulm, ctx.index)).with_deadlines(deadlines(cfg));
    let mut tl = TurnTimeline::new(ctx.index, &u, speculative, ctx.words);
    let mut clock = TurnClock::new(ctx.clock, CostModel::default(), tl.work_start_ms, Instant::now());
    let mut queue: VecDeque<Action> = turn.on(Event::SpeechEnded { last_voiced_ms: u.last_voiced_ms, endpoint_ms: u.endpoint_ms }).into();
    let mut cursor = u.endpoint_ms;
    let mut cloud_rx: Option<mpsc::Receiver<(Instant, CloudEvent)>> = None;
    let mut cloud_id = None;
    let mut idle_notified = false;
    let rate = voice.sample_rate_hz();
    let mut handed_off = false;
    let fresh = Conversation::new();
    let mut history = ctx.history;

    loop {
        while let Some(action) = queue.pop_front() {
            match action {
                Action::Transcribe => {
                    let t0 = Instant::now();
                    let t = asr.transcribe(ctx.audio).with_context(|| format!("turn {}: ASR", ctx.index))?;
                    clock.worked(Work::Asr { audio_ms: ctx.audio.len() as f64 * 1000.0 / f64::from(audio::ASR_RATE_HZ) }, t0.elapsed());
                    if is_end_phrase(&t.text, &cfg.turn.conversation_end_phrases) {
                        tl.conversation_end = Some("phrase");
                        history = &fresh;
                    }
                    queue.extend(turn.on(Event::Transcript { text: t.text, at_ms: clock.now() }));
                }
                Action::WriteOpener { transcript, words } => {
                    let t0 = Instant::now();
                    let (turns, k) = mulm_history(cfg, mulm, history, &transcript)?;
                    let (o, score) = scored_opener(mulm, harm.as_ref(), &turns, &transcript, words)?;
                    clock.worked(Work::Mulm, t0.elapsed());
                    tl.context.mulm_context_turns = k;
                    tl.context.mulm_prompt_tokens = o.prompt_tokens;
                    queue.extend(turn.on(Event::Opener { text: o.text, complete: o.complete, at_ms: clock.now(), score: Some(score) }));
                }
                Action::SendContinue { transcript, opener, opener_complete } => {
                    let (messages, k) = cloud_history(cfg, history, &transcript);
                    let params = continue_params(cfg, messages, opener, opener_complete);
                    tl.context.context_turns = k;
                    tl.context.cloud_messages = params.messages.len();
                    tl.context.cloud_request_tokens = request_tokens(&params);
                    let cont = link.client.continue_(params);
                    cloud_id = Some(cont.id);
                    // Stamp each event on arrival, while this thread synthesizes speech.
                    let (tx, rx) = mpsc::channel();
                    let mut events = cont.events;
                    rt.spawn(async move {
                        while let Some(e) = events.recv().await {
                            if tx.send((Instant::now(), e)).is_err() {
                                break;
                            }
                        }
                    });
                    cloud_rx = Some(rx);
                }
                Action::Speak { text, part } => {
                    let spoken = tts::normalize::for_speech(&text);
                    if spoken.trim().is_empty() {
                        continue;
                    }
                    let t0 = Instant::now();
                    let pcm = voice.synthesize(&spoken).with_context(|| format!("turn {}: TTS", ctx.index))?;
                    let dur = pcm.samples.len() as f64 * 1000.0 / rate as f64;
                    clock.worked(Work::Tts { audio_ms: dur }, t0.elapsed());
                    let ready = clock.now();
                    let gap = tl.segments.last().map(|s| seam_gap_ms(cfg, &s.text)).unwrap_or(0.0);
                    let start = ready.max(cursor + gap);
                    tl.segments.push(Segment { part, text, start_ms: start, end_ms: start + dur, ready_ms: ready, samples: pcm.samples });
                    cursor = start + dur;
                    idle_notified = false;
                    handed_off |= part == Part::Continuation;
                }
                Action::FinishLocally { transcript, prefix } => {
                    let t0 = Instant::now();
                    let (turns, _) = mulm_history(cfg, mulm, history, &transcript)?;
                    let text = mulm.finish_sentence(&turns, &prefix, LOCAL_FINISH_TOKENS)?;
                    clock.worked(Work::Mulm, t0.elapsed());
                    queue.extend(turn.on(Event::LocalFinish { text, at_ms: clock.now() }));
                }
                Action::CancelCloud => {
                    if let Some(id) = cloud_id {
                        link.client.cancel(id);
                    }
                }
                Action::StopPlayback | Action::EndTurn => {}
            }
        }
        if turn.is_done() {
            break;
        }
        if ctx.stop_at_handoff && handed_off {
            if let Some(id) = cloud_id {
                link.client.cancel(id);
            }
            break;
        }
        // Wait for a cloud event, the playback queue draining, or the next tick.
        let now = clock.now();
        let wait_ms = if !idle_notified && cursor > now { (cursor - now).clamp(1.0, 50.0) } else { 50.0 };
        let wait = Duration::from_secs_f64(wait_ms / 1000.0);
        let received = match &cloud_rx {
            Some(rx) => match rx.recv_timeout(wait) {
                Ok(x) => Some(x),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => {
                    cloud_rx = None;
                    None
                }
            },
            None => {
                std::thread::sleep(wait);
                None
            }
        };
        if let Some((t, e)) = received {
            let at_ms = clock.at(t);
            queue.extend(turn.on(cloud_event(e, at_ms)));
        }
        let now = clock.now();
        if queue.is_empty() && !idle_notified && now >= cursor {
            idle_notified = true;
            queue.extend(turn.on(Event::PlaybackIdle { at_ms: cursor }));
        }
        // The turn's deadlines (first delta, stall, wall limit) are its own decisions.
        queue.extend(turn.on(Event::Tick { at_ms: now }));
    }
    tl.fill_from(turn.record());
    Ok(tl)
}
