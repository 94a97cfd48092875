//! The shipped wake-word reference (configs/wakeword/hey_firstword.rpw, "hey firstword") on
//! committed espeak-ng recordings in voices it was not built from (fixtures/wakeword, made by
//! scripts/make_wakeword_fixtures.sh): the phrase is found, alone and before a question, with
//! its end placed where the question starts; a question with "first" and "word" in it is not.

use audio::wakeword::{spot_all, WakeSettings};
use testkit::root;

fn spot(name: &str) -> Vec<audio::wakeword::WakeDetection> {
    let reference = std::fs::read(root().join("configs/wakeword/hey_firstword.rpw")).unwrap();
    let s = audio::load_wav_16k_mono(root().join("fixtures/wakeword").join(name)).unwrap();
    spot_all(&reference, &WakeSettings::default(), &s).unwrap()
}

#[test]
fn the_phrase_before_a_question_is_found_where_it_ends() {
    let d = spot("phrase_question.wav");
    assert!(!d.is_empty(), "{d:?}");
    // The phrase runs from 0.40 s to 1.31 s; the question starts 120 ms later. (A second,
    // weaker detection inside the question happens with this voice: the activation state
    // keeps the first one's end.)
    let end_ms = d[0].end_sample as f64 / 16.0;
    assert!((1_100.0..=1_700.0).contains(&end_ms), "phrase end estimated at {end_ms} ms: {d:?}");
}

#[test]
fn the_phrase_alone_is_found() {
    assert_eq!(spot("phrase_alone.wav").len(), 1);
}

#[test]
fn speech_without_the_phrase_is_not() {
    assert!(spot("no_phrase.wav").is_empty());
    assert!(spot("followup.wav").is_empty());
}
