//! Utterances of a whole recorded buffer (replay of a fixture), with semantic endpointing at
//! each pause: the VAD's events frame by frame, where the caller may judge each pause from the
//! audio so far and set its hangover before the next frame is pushed (as the live listener
//! does between two reads).

use super::{utterance_span, Vad, VadEvent, FRAME_SAMPLES};
use crate::{sample_ms as ms, AudioError};

/// One utterance found by the VAD, in ms on the input clock (16 kHz samples / 16).
/// `J` is the caller's judgement of the pause that ended it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Utterance<J> {
    /// The VAD's speech start (before pre-roll).
    pub start_ms: f64,
    /// When the VAD confirmed speech (`vad.min_speech_ms` after the start): barge-in time.
    pub confirmed_ms: f64,
    pub last_voiced_ms: f64,
    /// Where the hangover ran out and the utterance ended.
    pub endpoint_ms: f64,
    /// The pause that the endpoint confirmed (speculative work may start there).
    pub pause_ms: Option<f64>,
    /// The judgement of that pause, when it set the hangover.
    pub judged: Option<J>,
}

/// Runs `vad` (reset first) over the whole 16 kHz `input` and returns its utterances. At
/// each pause, `on_pause` gets the utterance's audio so far (from `pre_roll` samples before
/// its start to the pause) and may set that pause's hangover: `Some((ms, judgement))`; None
/// keeps the VAD's own. `min_speech_ms` is the VAD's confirmation delay
/// (`vad.min_speech_ms`), which places `confirmed_ms`.
///
/// Errors: the detector's ([`AudioError`], converted into `E`), or `on_pause`'s own.
pub fn utterances<J, E: From<AudioError>>(
    vad: &mut Vad,
    input: &[f32],
    min_speech_ms: u32,
    pre_roll: u64,
    mut on_pause: impl FnMut(&[f32]) -> Result<Option<(u32, J)>, E>,
) -> Result<Vec<Utterance<J>>, E> {
    vad.reset();
    let mut out = Vec::new();
    let mut cur: Option<(u64, Utterance<J>)> = None;
    // Frame by frame, then the end of the stream: a pause's decision (which may end the
    // utterance at once) must come before the next frame is pushed.
    for chunk in input.chunks(FRAME_SAMPLES).map(Some).chain(std::iter::once(None)) {
        let mut events = match chunk {
            Some(c) => vad.push(c)?,
            None => vad.finish(),
        };
        events.reverse(); // popped in order
        while let Some(e) = events.pop() {
            match e {
                VadEvent::SpeechStart { sample } => {
                    let s = ms(sample);
                    let u = Utterance {
                        start_ms: s,
                        confirmed_ms: s + f64::from(min_speech_ms),
                        last_voiced_ms: s,
                        endpoint_ms: s,
                        pause_ms: None,
                        judged: None,
                    };
                    cur = Some((sample, u));
                }
                VadEvent::Pause { at_sample, .. } => {
                    if let Some((start, u)) = cur.as_mut() {
                        u.pause_ms = Some(ms(at_sample));
                        if let Some((hangover, why)) = on_pause(&input[utterance_span(*start, at_sample, pre_roll, input.len())])? {
                            u.judged = Some(why);
                            events.extend(vad.set_pause_hangover_ms(hangover));
                        }
                    }
                }
                VadEvent::Resume { .. } => {
                    if let Some((_, u)) = cur.as_mut() {
                        u.pause_ms = None;
                        u.judged = None;
                    }
                }
                VadEvent::SpeechEnd { last_voiced_sample, endpoint_sample } => {
                    if let Some((_, mut u)) = cur.take() {
                        u.last_voiced_ms = ms(last_voiced_sample);
                        u.endpoint_ms = ms(endpoint_sample);
                        out.push(u);
                    }
                }
            }
        }
    }
    Ok(out)
}

/// The 16 kHz samples of utterance `u` in `input`: from `pre_roll_ms` before the VAD's
/// speech start (clamped to the input's start) to its endpoint. The VAD confirms a start
/// only after its first voiced frame, so without pre-roll an abrupt onset ("How…") is cut.
pub fn utterance_audio<'a, J>(input: &'a [f32], u: &Utterance<J>, pre_roll_ms: u32) -> &'a [f32] {
    let at = crate::ms_sample;
    &input[utterance_span(at(u.start_ms), at(u.endpoint_ms), at(f64::from(pre_roll_ms)), input.len())]
}
