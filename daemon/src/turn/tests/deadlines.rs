//! The deadlines the turn owns (first delta, a cloud that stalls mid-reply, the wall limit),
//! the events it records when they do not apply, and the barge-in and failure cases between
//! the usual ones.

use super::*;

fn finish_prefix(actions: &[Action]) -> Option<String> {
    actions.iter().find_map(|a| if let Action::FinishLocally { prefix, .. } = a { Some(prefix.clone()) } else { None })
}

#[test]
fn no_first_delta_by_the_deadline_cancels_and_finishes_locally() {
    // Opener at 2_615 ms; the default first-delta deadline is 5 s.
    let (mut t, _) = to_opener("The capital of France is", false);
    assert!(t.on(Event::Tick { at_ms: 7_600.0 }).iter().all(|a| !matches!(a, Action::CancelCloud)));
    let a = t.on(Event::Tick { at_ms: 7_615.0 });
    assert_eq!(a[0], Action::CancelCloud);
    assert_eq!(finish_prefix(&a).as_deref(), Some("The capital of France is"));
    assert!(t.record().cloud_failure.as_deref().unwrap().contains("no first delta after 5000 ms"));
    // The cloud's late text no longer counts.
    assert!(t.on(Event::CloudDelta { text: " Paris.".into(), at_ms: 7_700.0 }).is_empty());
    assert_eq!(t.record().ignored_events, vec!["cloud_delta in finishing_locally".to_string()]);
}

#[test]
fn the_client_timer_is_answered_with_a_cancel_too() {
    let (mut t, _) = to_opener("Paris is the capital of France.", true);
    let a = t.on(Event::CloudTimedOut { waited_ms: 5_000.0, at_ms: 7_600.0 });
    assert_eq!(a, vec![Action::CancelCloud, Action::Speak { text: TurnConfig::default().fallback_text, part: Part::Fallback }]);
}

#[test]
fn a_cloud_that_goes_quiet_mid_reply_is_given_up_after_the_stall_deadline() {
    let (mut t, mut spoken) = to_opener("The capital of France is", false);
    for (i, d) in [" Paris,", " a city", " on the"].iter().enumerate() {
        spoken.extend(t.on(Event::CloudDelta { text: d.to_string(), at_ms: 3_000.0 + 10.0 * i as f64 }));
    }
    // Still playing at 6 s: no stall, however long since the last delta.
    assert!(t.on(Event::Tick { at_ms: 6_000.0 }).is_empty());
    assert!(t.on(Event::PlaybackIdle { at_ms: 6_500.0 }).is_empty());
    assert!(t.on(Event::Tick { at_ms: 8_999.0 }).is_empty(), "2 499 ms of silence");
    let a = t.on(Event::Tick { at_ms: 9_000.0 });
    assert_eq!(a[0], Action::CancelCloud);
    spoken.extend(a.clone());
    // What the μLM finishes is exactly what was spoken: opener, chunks and the held-back tail.
    let said: Vec<String> = speaks(&spoken).into_iter().map(|(_, s)| s).collect();
    assert_eq!(finish_prefix(&a).unwrap(), said.join(" "));
    assert_eq!(finish_prefix(&a).unwrap(), "The capital of France is Paris, a city on the");
    assert!(t.record().cloud_failure.as_deref().unwrap().contains("stalled"));
    assert!(!t.record().filler, "no filler after the first delta");
}

#[test]
fn a_delta_while_silent_restarts_the_stall_clock() {
    let (mut t, _) = to_opener("The capital of France is", false);
    t.on(Event::CloudDelta { text: " Paris, which".into(), at_ms: 3_000.0 });
    t.on(Event::PlaybackIdle { at_ms: 4_000.0 });
    // A delta that completes no chunk: still silent, but the cloud is alive.
    assert!(speaks(&t.on(Event::CloudDelta { text: " is".into(), at_ms: 6_000.0 })).is_empty());
    assert!(t.on(Event::Tick { at_ms: 8_000.0 }).is_empty(), "2 s since the last delta");
    assert_eq!(t.on(Event::Tick { at_ms: 8_500.0 })[0], Action::CancelCloud);
}

#[test]
fn the_stall_deadline_comes_from_the_config() {
    let cfg = TurnConfig { cloud_stall_ms: 800.0, ..TurnConfig::default() };
    let mut t = Turn::new(cfg, 6);
    t.on(Event::SpeechEnded { last_voiced_ms: 0.0, endpoint_ms: 300.0 });
    t.on(Event::Transcript { text: "hi".into(), at_ms: 400.0 });
    t.on(Event::Opener { text: "Hello there".into(), complete: false, at_ms: 410.0, score: None });
    t.on(Event::CloudDelta { text: ", my".into(), at_ms: 600.0 });
    t.on(Event::PlaybackIdle { at_ms: 1_000.0 });
    assert!(t.on(Event::Tick { at_ms: 1_799.0 }).is_empty());
    assert_eq!(t.on(Event::Tick { at_ms: 1_800.0 })[0], Action::CancelCloud);
    assert!(TurnConfig { cloud_stall_ms: f64::NAN, ..TurnConfig::default() }.validate().unwrap_err().key() == Some("turn.cloud_stall_ms"));
}

#[test]
fn the_wall_limit_ends_a_cloud_that_never_stops_and_twice_it_ends_the_turn() {
    let d = Deadlines { first_delta_ms: 5_000.0, stall_ms: 2_500.0, wall_ms: 10_000.0 };
    let mut t = Turn::new(TurnConfig::default(), 6).with_deadlines(d);
    t.on(Event::SpeechEnded { last_voiced_ms: 0.0, endpoint_ms: 300.0 });
    t.on(Event::Transcript { text: "Tell me a story".into(), at_ms: 400.0 });
    t.on(Event::Opener { text: "Once upon a time".into(), complete: false, at_ms: 410.0, score: None });
    // The cloud talks on and on, and playback never drains.
    for i in 0..20 {
        t.on(Event::CloudDelta { text: " and then".into(), at_ms: 500.0 + 490.0 * i as f64 });
    }
    assert!(t.on(Event::Tick { at_ms: 10_299.0 }).is_empty());
    let a = t.on(Event::Tick { at_ms: 10_300.0 });
    assert_eq!(a[0], Action::CancelCloud);
    assert!(finish_prefix(&a).is_some());
    assert_eq!(t.record().cloud_failure.as_deref(), Some("turn wall-clock limit"));
    // The local finish never comes: at twice the limit the turn stops whatever is left.
    assert!(t.on(Event::Tick { at_ms: 20_299.0 }).is_empty());
    assert_eq!(t.on(Event::Tick { at_ms: 20_300.0 }), vec![Action::StopPlayback, Action::EndTurn]);
    assert!(t.is_done());
}

#[test]
fn events_that_do_not_apply_are_recorded_not_lost_and_the_record_is_bounded() {
    let mut t = Turn::new(TurnConfig::default(), 6);
    t.on(Event::CloudDelta { text: "early".into(), at_ms: 1.0 });
    t.on(Event::SpeechEnded { last_voiced_ms: 0.0, endpoint_ms: 300.0 });
    t.on(Event::Opener { text: "Too soon".into(), complete: false, at_ms: 301.0, score: None });
    assert_eq!(t.record().ignored_events, vec!["cloud_delta in listening".to_string(), "opener in transcribing".to_string()]);
    for i in 0..100 {
        t.on(Event::LocalFinish { text: "x".into(), at_ms: 302.0 + i as f64 });
        t.on(Event::Tick { at_ms: 302.0 + i as f64 });
    }
    assert_eq!(t.record().ignored_events.len(), MAX_IGNORED_EVENTS);
}

#[test]
fn a_repair_right_after_the_opener_is_spoken_as_the_continuation() {
    let (mut t, _) = to_opener("The Eiffel Tower is in Rome,", false);
    t.on(Event::CloudRepair { at_ms: 2_900.0 });
    let mut a = t.on(Event::CloudDelta { text: " or so you'd think, but it stands in Paris.".into(), at_ms: 2_950.0 });
    a.extend(t.on(Event::CloudDone { at_ms: 3_000.0 }));
    let s = speaks(&a);
    assert!(s.iter().all(|(p, _)| *p == Part::Continuation) && s.iter().any(|(_, x)| x.contains("Paris")), "{s:?}");
    assert!(t.record().repair);
    assert_eq!(t.record().cloud_first_delta_ms, Some(2_950.0));
}

#[test]
fn barge_in_during_the_opener_alone_cancels_the_cloud() {
    let (mut t, _) = to_opener("The capital of France is", false);
    assert_eq!(t.on(Event::SpeechStarted { at_ms: 2_800.0 }), vec![Action::StopPlayback, Action::CancelCloud, Action::EndTurn]);
    assert!(t.record().barged_in);
}

#[test]
fn barge_in_during_the_filler_cancels_the_cloud() {
    let (mut t, _) = to_opener("Good question, let me see", false);
    t.on(Event::PlaybackIdle { at_ms: 4_000.0 });
    assert_eq!(speaks(&t.on(Event::Tick { at_ms: 5_200.0 }))[0].0, Part::Filler);
    assert_eq!(t.on(Event::SpeechStarted { at_ms: 5_400.0 }), vec![Action::StopPlayback, Action::CancelCloud, Action::EndTurn]);
}

#[test]
fn barge_in_during_the_local_finish_only_stops_playback() {
    let (mut t, _) = to_opener("The capital of France is", false);
    let a = t.on(Event::CloudFailed { reason: "disconnected".into(), at_ms: 3_000.0 });
    assert!(finish_prefix(&a).is_some());
    // The request is over already: nothing to cancel.
    assert_eq!(t.on(Event::SpeechStarted { at_ms: 3_100.0 }), vec![Action::StopPlayback, Action::EndTurn]);
    assert!(t.on(Event::LocalFinish { text: "Paris".into(), at_ms: 3_200.0 }).is_empty());
}

#[test]
fn barge_in_in_cloud_only_mode_cancels_the_cloud() {
    let cfg = TurnConfig { local_opener: false, ..TurnConfig::default() };
    let mut t = Turn::new(cfg, 6);
    t.on(Event::SpeechEnded { last_voiced_ms: 1_000.0, endpoint_ms: 1_300.0 });
    t.on(Event::Transcript { text: "Why is the sky blue?".into(), at_ms: 1_400.0 });
    // Nothing is playing yet, but the request is open: talking again ends this turn.
    assert_eq!(t.on(Event::SpeechStarted { at_ms: 1_500.0 }), vec![Action::StopPlayback, Action::CancelCloud, Action::EndTurn]);
}

#[test]
fn a_filler_followed_by_a_failure_finishes_the_opener_not_the_filler() {
    // Five words: one opener chunk.
    let (mut t, mut all) = to_opener("Good question, the answer is", false);
    t.on(Event::PlaybackIdle { at_ms: 4_000.0 });
    all.extend(t.on(Event::Tick { at_ms: 5_200.0 }));
    let a = t.on(Event::CloudFailed { reason: "disconnected".into(), at_ms: 6_000.0 });
    assert_eq!(finish_prefix(&a).as_deref(), Some("Good question, the answer is"));
    let a = t.on(Event::LocalFinish { text: "forty-two".into(), at_ms: 6_100.0 });
    all.extend(a);
    let parts: Vec<Part> = speaks(&all).into_iter().map(|(p, _)| p).collect();
    assert_eq!(parts, vec![Part::Opener, Part::Filler, Part::LocalFinish, Part::Fallback]);
    assert!(t.record().filler && t.record().fallback);
}
