//! Properties of the turn machine over random event sequences (issue 17): whatever order the
//! drivers, the cloud and the clock deliver events in, a turn ends exactly once and says
//! nothing after that, sends its cloud request before the first opener word, cancels only a
//! request it sent, and asks the μLM to finish exactly what was spoken.

use proptest::prelude::*;

use super::*;

const WORDS: [&str; 8] = [" Paris", " is", " big,", " and", " old.", " the", " river", " Seine"];

/// One random event: a kind, a time step in ms and a text choice.
fn event(kind: u8, at_ms: f64, pick: usize) -> Event {
    let text = |n: usize| (0..n).map(|i| WORDS[(pick + i) % WORDS.len()]).collect::<String>();
    match kind % 12 {
        0 => Event::SpeechStarted { at_ms },
        1 => Event::SpeechEnded { last_voiced_ms: at_ms - 1.0, endpoint_ms: at_ms },
        2 => Event::Transcript { text: if pick.is_multiple_of(7) { String::new() } else { "Where is Paris?".into() }, at_ms },
        3 => {
            let score = lm::gate::GateScore {
                mean_logprob: -1.0,
                topical: true,
                repeats: false,
                score: -(pick as f32) / 2.0,
                harm: None,
                harm_gate_margin: 0.0,
            };
            Event::Opener { text: text(1 + pick % 6).trim().to_string(), complete: pick.is_multiple_of(5), at_ms, score: Some(score) }
        }
        4 | 5 => Event::CloudDelta { text: text(1 + pick % 3), at_ms },
        6 => Event::CloudRepair { at_ms },
        7 => Event::CloudDone { at_ms },
        8 => Event::CloudFailed { reason: "x".into(), at_ms },
        9 => Event::CloudTimedOut { waited_ms: 5_000.0, at_ms },
        10 => Event::LocalFinish { text: text(pick % 3), at_ms },
        _ => {
            if pick.is_multiple_of(2) {
                Event::PlaybackIdle { at_ms }
            } else {
                Event::Tick { at_ms }
            }
        }
    }
}

fn steps() -> impl Strategy<Value = Vec<(u8, u16, usize)>> {
    prop::collection::vec((any::<u8>(), 0u16..4_000, 0usize..64), 0..60)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn every_turn_ends_exactly_once_and_keeps_its_order(seq in steps(), gated in any::<bool>(), cloud_only in any::<bool>()) {
        let cfg = TurnConfig { local_opener: !cloud_only, ..TurnConfig::default() };
        let d = Deadlines { first_delta_ms: 5_000.0, stall_ms: 2_500.0, wall_ms: 60_000.0 };
        let gate = gated.then(|| GatePolicy { min_score: -10.0, bridge: "Good question.".into() });
        let mut t = Turn::new(cfg, 6).with_gate(gate).with_deadlines(d);
        let mut now = 0.0;
        let mut actions = Vec::new();
        for &(kind, dt, pick) in &seq {
            now += dt as f64;
            actions.extend(t.on(event(kind, now, pick)));
        }
        // Closing: the utterance ends (if it has not), then time runs out.
        actions.extend(t.on(Event::SpeechEnded { last_voiced_ms: now, endpoint_ms: now }));
        actions.extend(t.on(Event::Tick { at_ms: now + 2.0 * d.wall_ms }));

        let ends: Vec<usize> = actions.iter().enumerate().filter(|(_, a)| **a == Action::EndTurn).map(|(i, _)| i).collect();
        prop_assert_eq!(ends.len(), 1, "{:?}", actions);
        prop_assert_eq!(ends[0], actions.len() - 1, "nothing after EndTurn: {:?}", actions);
        prop_assert!(t.is_done());

        let sends: Vec<usize> = actions.iter().enumerate().filter(|(_, a)| matches!(a, Action::SendContinue { .. })).map(|(i, _)| i).collect();
        prop_assert!(sends.len() <= 1);
        let first_opener = actions.iter().position(|a| matches!(a, Action::Speak { part: Part::Opener, .. }));
        if let Some(i) = first_opener {
            prop_assert!(sends.first().is_some_and(|&s| s < i), "SendContinue before the opener: {:?}", actions);
        }
        for (i, a) in actions.iter().enumerate() {
            match a {
                Action::CancelCloud => prop_assert!(sends.first().is_some_and(|&s| s < i), "cancel without a request: {:?}", actions),
                Action::Speak { part: Part::Continuation, .. } => prop_assert!(sends.first().is_some_and(|&s| s < i)),
                Action::FinishLocally { prefix, .. } => {
                    // Exactly what was spoken of the answer so far (no filler).
                    let said: Vec<&str> = actions[..i]
                        .iter()
                        .filter_map(|x| match x {
                            Action::Speak { text, part: Part::Opener | Part::Continuation } => Some(text.as_str()),
                            _ => None,
                        })
                        .collect();
                    let said = said.join(" ").split_whitespace().collect::<Vec<_>>().join(" ");
                    prop_assert_eq!(prefix, &said);
                }
                _ => {}
            }
        }
        prop_assert!(actions.iter().filter(|a| matches!(a, Action::CancelCloud)).count() <= 1);
        prop_assert!(t.record().ignored_events.len() <= MAX_IGNORED_EVENTS);
    }
}
