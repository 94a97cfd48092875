//! The turn's cases, driven by events alone: normal, late cloud, failed cloud before and
//! after text, repair, barge-in, empty transcript, and several turns; the deadlines the turn
//! owns, in `deadlines.rs`; properties over random event sequences in `properties.rs`.

use super::*;

fn speaks(actions: &[Action]) -> Vec<(Part, String)> {
    actions.iter().filter_map(|a| if let Action::Speak { text, part } = a { Some((*part, text.clone())) } else { None }).collect()
}

/// Runs a turn up to the opener being queued; returns the turn and all actions so far.
fn to_opener(opener: &str, complete: bool) -> (Turn, Vec<Action>) {
    let mut t = Turn::new(TurnConfig::default(), 6);
    let mut acts = t.on(Event::SpeechStarted { at_ms: 100.0 });
    acts.extend(t.on(Event::SpeechEnded { last_voiced_ms: 2_000.0, endpoint_ms: 2_480.0 }));
    assert_eq!(acts, vec![Action::Transcribe]);
    let a = t.on(Event::Transcript { text: " What is the capital of France? ".into(), at_ms: 2_600.0 });
    assert_eq!(a, vec![Action::WriteOpener { transcript: "What is the capital of France?".into(), words: 6 }]);
    acts.extend(a);
    let a = t.on(Event::Opener { text: opener.into(), complete, at_ms: 2_615.0, score: None });
    acts.extend(a);
    (t, acts)
}

#[test]
fn cloud_request_goes_out_before_the_opener_is_spoken() {
    let (t, acts) = to_opener("The capital of France is", false);
    let i_send = acts.iter().position(|a| matches!(a, Action::SendContinue { .. })).unwrap();
    let i_speak = acts.iter().position(|a| matches!(a, Action::Speak { .. })).unwrap();
    assert!(i_send < i_speak);
    assert_eq!(
        acts[i_send],
        Action::SendContinue {
            transcript: "What is the capital of France?".into(),
            opener: "The capital of France is".into(),
            opener_complete: false
        }
    );
    assert!(t.is_replying());
}

#[test]
fn normal_turn_streams_the_continuation_in_chunks_and_ends_when_drained() {
    let (mut t, _) = to_opener("The capital of France is", false);
    let mut spoken = Vec::new();
    for (i, d) in [" Paris,", " a city on the Seine.", " It has been the capital", " since 987."].iter().enumerate() {
        spoken.extend(speaks(&t.on(Event::CloudDelta { text: d.to_string(), at_ms: 3_000.0 + i as f64 * 50.0 })));
    }
    spoken.extend(speaks(&t.on(Event::CloudDone { at_ms: 3_300.0 })));
    let text: String = spoken.iter().map(|(_, s)| s.as_str()).collect::<Vec<_>>().join(" ");
    assert_eq!(text.split_whitespace().collect::<Vec<_>>().join(" "), "Paris, a city on the Seine. It has been the capital since 987.");
    assert!(spoken.iter().all(|(p, _)| *p == Part::Continuation));
    assert!(spoken.len() >= 2, "chunked: {spoken:?}");
    assert!(!t.is_done());
    assert_eq!(t.on(Event::PlaybackIdle { at_ms: 9_000.0 }), vec![Action::EndTurn]);
    let r = t.record();
    assert_eq!(r.cloud_first_delta_ms, Some(3_000.0));
    assert_eq!(
        (r.speech_end_ms, r.endpoint_ms, r.asr_done_ms, r.opener_ready_ms),
        (Some(2_000.0), Some(2_480.0), Some(2_600.0), Some(2_615.0))
    );
    assert_eq!(r.turn_end_ms, Some(9_000.0));
    assert!(!r.fallback && !r.repair && !r.filler);
}

#[test]
fn first_continuation_chunk_is_spoken_after_five_words_without_waiting_for_a_comma() {
    let (mut t, _) = to_opener("A simple way to fall asleep", false);
    let deltas = [" is to", " keep the same", " bedtime every", " night and to avoid", " screens late."];
    let mut when = Vec::new();
    for (i, d) in deltas.iter().enumerate() {
        for (_, text) in speaks(&t.on(Event::CloudDelta { text: d.to_string(), at_ms: 3_000.0 + i as f64 * 25.0 })) {
            when.push((i, text));
        }
    }
    // "same" is a complete fifth word once the space before "bedtime" arrives (delta 2).
    assert_eq!(when.first(), Some(&(2, "is to keep the same".to_string())));
    // With the cut off, nothing is spoken before the sentence ends.
    let cfg = TurnConfig { continuation_first_words: 0, ..TurnConfig::default() };
    let mut t = Turn::new(cfg, 6);
    t.on(Event::SpeechEnded { last_voiced_ms: 2_000.0, endpoint_ms: 2_480.0 });
    t.on(Event::Transcript { text: "How do I fall asleep?".into(), at_ms: 2_600.0 });
    t.on(Event::Opener { text: "A simple way to fall asleep".into(), complete: false, at_ms: 2_615.0, score: None });
    let early: Vec<_> = deltas[..4].iter().flat_map(|d| speaks(&t.on(Event::CloudDelta { text: d.to_string(), at_ms: 3_000.0 }))).collect();
    assert!(early.is_empty(), "{early:?}");
    assert!(
        TurnConfig { continuation_first_words: 65, ..TurnConfig::default() }.validate().unwrap_err().key()
            == Some("turn.continuation_first_words")
    );
}

#[test]
fn a_long_opener_is_spoken_in_two_chunks_a_short_one_in_one() {
    let (_, acts) = to_opener("The best way to keep basil alive is", false);
    assert_eq!(speaks(&acts), vec![(Part::Opener, "The best way to".to_string()), (Part::Opener, "keep basil alive is".to_string())]);
    // A clause ending inside the first words is the natural cut.
    assert_eq!(split_opener("Yes, it is a good idea to", 4), ["Yes,", "it is a good idea to"]);
    // Five words: a one-word tail is not split off; 0 turns splitting off.
    assert_eq!(split_opener("The capital of France is", 4), ["The capital of France is"]);
    assert_eq!(split_opener("The best way to keep basil alive is", 0), ["The best way to keep basil alive is"]);
}

#[test]
fn late_cloud_gets_one_filler_and_the_queue_waits() {
    let (mut t, _) = to_opener("Good question, let me see", false);
    assert!(t.on(Event::PlaybackIdle { at_ms: 4_000.0 }).is_empty(), "must wait for the cloud, not end");
    assert!(t.on(Event::Tick { at_ms: 5_000.0 }).is_empty());
    let a = t.on(Event::Tick { at_ms: 5_200.0 });
    assert_eq!(speaks(&a), vec![(Part::Filler, "Let me think about that.".to_string())]);
    assert!(t.on(Event::Tick { at_ms: 7_000.0 }).is_empty(), "filler at most once");
    let mut a = t.on(Event::CloudDelta { text: " the answer is forty-two.".into(), at_ms: 9_100.0 });
    a.extend(t.on(Event::CloudDone { at_ms: 9_200.0 }));
    assert_eq!(speaks(&a), vec![(Part::Continuation, "the answer is forty-two.".to_string())]);
    assert!(t.record().filler);
}

#[test]
fn cloud_failure_mid_sentence_finishes_locally_then_falls_back() {
    let (mut t, _) = to_opener("The capital of France is", false);
    t.on(Event::CloudDelta { text: " Paris, which".into(), at_ms: 3_000.0 });
    let a = t.on(Event::CloudFailed { reason: "disconnected".into(), at_ms: 3_100.0 });
    assert!(
        a.contains(&Action::Speak { text: "Paris,".into(), part: Part::Continuation })
            || speaks(&a).iter().any(|(_, s)| s.contains("Paris"))
    );
    let fin = a.iter().find_map(|x| if let Action::FinishLocally { prefix, .. } = x { Some(prefix.clone()) } else { None }).unwrap();
    assert_eq!(fin, "The capital of France is Paris, which");
    let a = t.on(Event::LocalFinish { text: "is known for the Eiffel Tower".into(), at_ms: 3_150.0 });
    assert_eq!(
        speaks(&a),
        vec![(Part::LocalFinish, "is known for the Eiffel Tower.".to_string()), (Part::Fallback, TurnConfig::default().fallback_text),]
    );
    // Late cloud text after the failure is ignored.
    assert!(t.on(Event::CloudDelta { text: " zombie".into(), at_ms: 3_200.0 }).is_empty());
    assert_eq!(t.on(Event::PlaybackIdle { at_ms: 8_000.0 }), vec![Action::EndTurn]);
    assert!(t.record().fallback);
}

#[test]
fn cloud_failure_after_a_full_sentence_only_adds_the_fallback() {
    let (mut t, _) = to_opener("Paris is the capital of France.", true);
    let a = t.on(Event::CloudFailed { reason: "first delta timeout".into(), at_ms: 5_000.0 });
    assert_eq!(speaks(&a), vec![(Part::Fallback, TurnConfig::default().fallback_text)]);
    assert!(!a.iter().any(|x| matches!(x, Action::FinishLocally { .. })));
}

#[test]
fn repair_is_recorded_and_the_bridge_is_spoken_like_any_chunk() {
    let (mut t, _) = to_opener("TFLite Micro is a company that specializes in", false);
    t.on(Event::CloudDelta { text: " tiny sensors.".into(), at_ms: 3_000.0 });
    t.on(Event::CloudRepair { at_ms: 3_010.0 });
    let a = t.on(Event::CloudDelta { text: " Actually, it's a framework for microcontrollers.".into(), at_ms: 3_050.0 });
    let b = t.on(Event::CloudDone { at_ms: 3_100.0 });
    let all: Vec<_> = speaks(&a).into_iter().chain(speaks(&b)).collect();
    assert!(all.iter().any(|(p, s)| *p == Part::Continuation && s.contains("framework")), "{all:?}");
    assert!(t.record().repair);
}

#[test]
fn barge_in_stops_playback_and_cancels_the_cloud() {
    let (mut t, _) = to_opener("The capital of France is", false);
    t.on(Event::CloudDelta { text: " Paris.".into(), at_ms: 3_000.0 });
    let a = t.on(Event::SpeechStarted { at_ms: 3_500.0 });
    assert_eq!(a, vec![Action::StopPlayback, Action::CancelCloud, Action::EndTurn]);
    assert!(t.record().barged_in);
    assert!(t.on(Event::CloudDelta { text: " more".into(), at_ms: 3_600.0 }).is_empty());
}

#[test]
fn barge_in_after_the_cloud_finished_does_not_cancel() {
    let (mut t, _) = to_opener("The capital of France is", false);
    t.on(Event::CloudDelta { text: " Paris.".into(), at_ms: 3_000.0 });
    t.on(Event::CloudDone { at_ms: 3_100.0 });
    assert_eq!(t.on(Event::SpeechStarted { at_ms: 3_500.0 }), vec![Action::StopPlayback, Action::EndTurn]);
}

#[test]
fn empty_transcript_ends_without_a_reply() {
    let mut t = Turn::new(TurnConfig::default(), 6);
    t.on(Event::SpeechEnded { last_voiced_ms: 500.0, endpoint_ms: 980.0 });
    assert_eq!(t.on(Event::Transcript { text: "  ".into(), at_ms: 1_000.0 }), vec![Action::EndTurn]);
    assert!(t.is_done());
}

#[test]
fn several_turns_adapt_the_opener_budget() {
    let mut est = budget::LatencyEstimate::new(0.5);
    let mut budgets = Vec::new();
    for latency in [3_000.0, 3_000.0, 400.0, 400.0, 400.0] {
        let words = budget::opener_words(&est, 2.5, 4, 8, 6);
        budgets.push(words);
        let mut t = Turn::new(TurnConfig::default(), words);
        t.on(Event::SpeechEnded { last_voiced_ms: 0.0, endpoint_ms: 480.0 });
        let a = t.on(Event::Transcript { text: "hi".into(), at_ms: 600.0 });
        assert_eq!(a, vec![Action::WriteOpener { transcript: "hi".into(), words }]);
        t.on(Event::Opener { text: "Hello there".into(), complete: false, at_ms: 610.0, score: None });
        t.on(Event::CloudDelta { text: ", friend.".into(), at_ms: 610.0 + latency });
        t.on(Event::CloudDone { at_ms: 700.0 + latency });
        t.on(Event::PlaybackIdle { at_ms: 5_000.0 });
        assert!(t.is_done());
        est.observe(t.record().cloud_first_delta_ms.unwrap() - t.record().opener_ready_ms.unwrap());
    }
    assert_eq!(budgets, vec![6, 8, 8, 5, 4]);
}

#[test]
fn config_validation_names_the_key() {
    let c = TurnConfig { max_opener_words: 40, ..TurnConfig::default() };
    assert_eq!(c.validate().unwrap_err().key(), Some("turn.max_opener_words"));
    let c = TurnConfig { min_opener_words: 7, max_opener_words: 5, ..TurnConfig::default() };
    assert_eq!(c.validate().unwrap_err().key(), Some("turn.min_opener_words/max_opener_words"));
    let c = TurnConfig { cloud_stall_ms: f64::NAN, ..TurnConfig::default() };
    assert_eq!(c.validate().unwrap_err().key(), Some("turn.cloud_stall_ms"));
    assert!(TurnConfig::default().validate().is_ok());
}

#[test]
fn cloud_only_baseline_sends_no_opener_and_speaks_only_the_cloud() {
    let cfg = TurnConfig { local_opener: false, ..TurnConfig::default() };
    let mut t = Turn::new(cfg, 6);
    assert_eq!(t.on(Event::SpeechEnded { last_voiced_ms: 1_000.0, endpoint_ms: 1_300.0 }), vec![Action::Transcribe]);
    let a = t.on(Event::Transcript { text: "Why is the sky blue?".into(), at_ms: 1_400.0 });
    assert_eq!(a, vec![Action::SendContinue { transcript: "Why is the sky blue?".into(), opener: String::new(), opener_complete: false }]);
    // Silence while the cloud thinks: no filler in the baseline (until the first-delta deadline).
    assert!(t.on(Event::PlaybackIdle { at_ms: 1_400.0 }).is_empty());
    assert!(t.on(Event::Tick { at_ms: 6_300.0 }).is_empty());
    let mut s = speaks(&t.on(Event::CloudDelta { text: "Sunlight scatters off the air.".into(), at_ms: 3_400.0 }));
    s.extend(speaks(&t.on(Event::CloudDelta { text: " Blue".into(), at_ms: 3_420.0 })));
    assert_eq!(s, vec![(Part::Continuation, "Sunlight scatters off the air.".to_string())]);
    assert_eq!(t.record().cloud_first_delta_ms, Some(3_400.0));
    assert_eq!(t.record().opener_ready_ms, None);
}

#[test]
fn cloud_only_failure_ends_with_the_fallback_line_only() {
    let cfg = TurnConfig { local_opener: false, ..TurnConfig::default() };
    let mut t = Turn::new(cfg.clone(), 6);
    t.on(Event::SpeechEnded { last_voiced_ms: 1_000.0, endpoint_ms: 1_300.0 });
    t.on(Event::Transcript { text: "Why is the sky blue?".into(), at_ms: 1_400.0 });
    let a = t.on(Event::CloudFailed { reason: "timeout".into(), at_ms: 6_400.0 });
    assert_eq!(speaks(&a), vec![(Part::Fallback, cfg.fallback_text.clone())]);
    assert!(!a.iter().any(|x| matches!(x, Action::FinishLocally { .. })));
    assert!(t.record().fallback);
}

fn gated_turn(score: f32) -> (Turn, Vec<Action>) {
    gated_turn_with_harm(score, None)
}

fn gated_turn_with_harm(score: f32, harm: Option<f32>) -> (Turn, Vec<Action>) {
    let policy = GatePolicy { min_score: -2.5, bridge: "Good question.".into() };
    let mut t = Turn::new(TurnConfig::default(), 6).with_gate(Some(policy));
    t.on(Event::SpeechEnded { last_voiced_ms: 2_000.0, endpoint_ms: 2_480.0 });
    t.on(Event::Transcript { text: "Why is the sky blue?".into(), at_ms: 2_600.0 });
    let s = lm::gate::GateScore { mean_logprob: score, topical: false, repeats: false, score, harm, harm_gate_margin: 0.0 };
    let a = t.on(Event::Opener { text: "The answer is a person.".into(), complete: true, at_ms: 2_615.0, score: Some(s) });
    (t, a)
}

#[test]
fn a_gated_opener_is_replaced_by_the_bridge_in_speech_and_in_the_cloud_request() {
    let (t, a) = gated_turn(-3.2);
    assert_eq!(
        a[0],
        Action::SendContinue { transcript: "Why is the sky blue?".into(), opener: "Good question.".into(), opener_complete: false }
    );
    assert_eq!(speaks(&a), vec![(Part::Opener, "Good question.".to_string())]);
    let r = t.record();
    assert!(r.gate_fired);
    assert_eq!((r.opener_text.as_str(), r.mulm_opener.as_str(), r.gate_score), ("Good question.", "The answer is a person.", Some(-3.2)));
}

#[test]
fn a_transcript_flagged_as_harmful_gates_even_a_confident_opener() {
    let (t, a) = gated_turn_with_harm(-0.1, Some(0.4));
    assert_eq!(speaks(&a), vec![(Part::Opener, "Good question.".to_string())]);
    assert!(t.record().gate_fired);
    assert_eq!((t.record().gate_score, t.record().harm_score), (Some(-0.1), Some(0.4)));
    // A margin at or below zero is not a flag.
    let (t, a) = gated_turn_with_harm(-0.1, Some(-0.4));
    assert_eq!(speaks(&a), vec![(Part::Opener, "The answer is a person.".to_string())]);
    assert!(!t.record().gate_fired);
    assert_eq!(t.record().harm_score, Some(-0.4));
}

#[test]
fn an_opener_at_or_above_the_threshold_is_spoken_as_written() {
    let (t, a) = gated_turn(-2.5);
    assert_eq!(speaks(&a), vec![(Part::Opener, "The answer is a person.".to_string())]);
    assert!(!t.record().gate_fired);
    assert_eq!(t.record().gate_score, Some(-2.5));
    // Without a policy a score is recorded but never acted on.
    let mut t = Turn::new(TurnConfig::default(), 6);
    t.on(Event::SpeechEnded { last_voiced_ms: 2_000.0, endpoint_ms: 2_480.0 });
    t.on(Event::Transcript { text: "Why is the sky blue?".into(), at_ms: 2_600.0 });
    let s = lm::gate::GateScore { mean_logprob: -9.0, topical: false, repeats: false, score: -9.0, harm: None, harm_gate_margin: 0.0 };
    let a = t.on(Event::Opener { text: "Blue light scatters".into(), complete: false, at_ms: 2_615.0, score: Some(s) });
    assert_eq!(speaks(&a), vec![(Part::Opener, "Blue light scatters".to_string())]);
}

mod deadlines;
mod properties;
