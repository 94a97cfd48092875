//! Synthesis with the real joe voice. Skips (with a printed reason) only when
//! the model files are absent and models are not required (testkit's rule).

mod common;

use std::ops::ControlFlow;
use std::time::Instant;

use common::{longest_inner_gap_ms, rms, shared};
use tts::{Pcm, Tts, TRIM_KEEP_MS, TRIM_THRESHOLD};

macro_rules! voice {
    () => {
        match shared() {
            Some(m) => m.lock().unwrap_or_else(|e| e.into_inner()),
            None => return,
        }
    };
}

#[test]
fn tts_is_send() {
    fn assert_send<T: Send>() {}
    assert_send::<Tts>();
}

#[test]
fn a_sentence_gives_plausible_audio() {
    let mut tts = voice!();
    let text = "The quick brown fox jumps over the lazy dog by the river.";
    let pcm = tts.synthesize(text).unwrap();
    assert_eq!(pcm.rate_hz, 22_050);
    assert_eq!(tts.sample_rate_hz(), 22_050);
    let ms = pcm.duration_ms();
    assert!((1500.0..6000.0).contains(&ms), "12 words took {ms} ms of audio");
    let r = rms(&pcm.samples);
    assert!(r > 0.02, "audio is near silent: rms {r}");
    assert!(pcm.samples.iter().all(|s| s.is_finite() && s.abs() <= 1.5));
}

#[test]
fn comma_gives_a_pause_that_is_absent_without_it() {
    let mut tts = voice!();
    let with = tts.synthesize("Hello there, world.").unwrap();
    let without = tts.synthesize("Hello there world.").unwrap();
    let thresh = 0.1 * rms(&with.samples);
    let gap_with = longest_inner_gap_ms(&with.samples, with.rate_hz, thresh);
    let gap_without = longest_inner_gap_ms(&without.samples, without.rate_hz, thresh);
    eprintln!("gap with comma {gap_with} ms, without {gap_without} ms");
    assert!(gap_with >= 80.0, "no pause at the comma: longest gap {gap_with} ms");
    assert!(gap_without < 80.0, "unexpected pause without a comma: {gap_without} ms");
    assert!(with.duration_ms() > without.duration_ms() + 60.0);
}

/// Piper's VITS sampling noise makes its raw edges random (a clause can end
/// on a loud sample), so a test on the sampled voice could only assert what
/// happens to hold that run. With `noise_scale = noise_w = 0` synthesis is
/// deterministic: the trimmed audio must be exactly the raw audio of the same
/// voice cut to [first loud − keep, last loud + keep].
#[test]
fn silence_is_trimmed_at_both_ends() {
    let Some(mut cfg) = common::config() else {
        return;
    };
    cfg.noise_scale = Some(0.0);
    cfg.noise_w = Some(0.0);
    let mut trimming = Tts::load(&cfg).unwrap();
    cfg.trim_silence = false;
    let mut raw_voice = Tts::load(&cfg).unwrap();
    let keep = (TRIM_KEEP_MS * 22.05).round() as usize;
    // Single clauses: trimming works per clause, and clause gaps are added after it.
    for text in ["Okay.", "Sure thing.", "Let me check that for you."] {
        let raw = raw_voice.synthesize(text).unwrap().samples;
        let loud = |s: &f32| s.abs() > TRIM_THRESHOLD;
        let first = raw.iter().position(loud).unwrap();
        let last = raw.iter().rposition(loud).unwrap();
        let expected = &raw[first.saturating_sub(keep)..(last + 1 + keep).min(raw.len())];
        let trimmed = trimming.synthesize(text).unwrap().samples;
        assert_eq!(trimmed.len(), expected.len(), "{text:?}: raw {} samples, loud {first}..={last}", raw.len());
        let worst = trimmed.iter().zip(expected).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(worst <= 1e-6, "{text:?}: trimmed audio differs from raw by {worst}");
        // Something was cut: Piper leaves more than the kept margin of silence.
        assert!(trimmed.len() < raw.len(), "{text:?}: nothing trimmed from {} samples", raw.len());
        let first_loud = trimmed.iter().position(loud).unwrap();
        let trail = trimmed.len() - 1 - trimmed.iter().rposition(loud).unwrap();
        assert!(first_loud <= keep && trail <= keep, "{text:?}: margins {first_loud}/{trail}");
    }
}

#[test]
fn untrimmed_output_is_longer() {
    let Some(mut cfg) = common::config() else {
        return;
    };
    cfg.trim_silence = false;
    let mut raw = Tts::load(&cfg).unwrap();
    let untrimmed = raw.synthesize("Okay.").unwrap();
    let lead = untrimmed.samples.iter().position(|s| s.abs() > TRIM_THRESHOLD).unwrap();
    let trail = untrimmed.samples.len() - 1 - untrimmed.samples.iter().rposition(|s| s.abs() > TRIM_THRESHOLD).unwrap();
    eprintln!("piper's own silence: {:.0} ms lead, {:.0} ms trail", lead as f32 / 22.05, trail as f32 / 22.05);
    assert!(lead + trail > (2.0 * TRIM_KEEP_MS * 22.05) as usize, "the voice leaves no silence to trim; the trim test proves nothing");
}

#[test]
fn phrases_stream_per_clause_and_add_up_to_the_whole() {
    let mut tts = voice!();
    let text = "The sun is out today. Let's walk to the park, then have lunch.";
    let start = Instant::now();
    let mut phrases = Vec::new();
    let mut first_at = None;
    tts.synthesize_phrases(text, |p| {
        first_at.get_or_insert_with(|| start.elapsed());
        phrases.push(p);
        ControlFlow::Continue(())
    })
    .unwrap();
    let total = start.elapsed();
    let texts: Vec<&str> = phrases.iter().map(|p| p.text.as_str()).collect();
    assert_eq!(texts, ["The sun is out today.", "Let's walk to the park,", "then have lunch."]);
    assert_eq!(phrases.iter().map(|p| p.is_sentence_end).collect::<Vec<_>>(), [true, false, true]);
    let first_at = first_at.unwrap();
    assert!(first_at < total.mul_f32(0.8), "first phrase at {first_at:?} of {total:?}: not streaming");

    // Concatenated phrases ≈ synthesize() (VITS samples noise, so equal
    // only in length, within a margin).
    let joined: usize = phrases.iter().map(|p| p.pcm.samples.len()).sum();
    let whole = tts.synthesize(text).unwrap();
    let ratio = joined as f64 / whole.samples.len() as f64;
    assert!((0.85..1.15).contains(&ratio), "phrases {joined} samples vs whole {}", whole.samples.len());
    // The configured gaps are where they should be: sentence > clause.
    let tail_silence = |p: &Pcm| p.samples.iter().rev().take_while(|s| **s == 0.0).count();
    assert!(tail_silence(&phrases[0].pcm) >= 250 * 22_050 / 1000);
    assert!(tail_silence(&phrases[1].pcm) >= 120 * 22_050 / 1000);
    assert!(tail_silence(&phrases[1].pcm) < 250 * 22_050 / 1000);
    assert_eq!(tail_silence(&phrases[2].pcm), 0, "no silence after the last phrase");
}

#[test]
fn streaming_can_stop_early() {
    let mut tts = voice!();
    let mut n = 0;
    tts.synthesize_phrases("One, two, three, four.", |_| {
        n += 1;
        ControlFlow::Break(())
    })
    .unwrap();
    assert_eq!(n, 1);
}

#[test]
fn any_text_is_safe() {
    let mut tts = voice!();
    for text in ["", "   ", "...", "?!", "🎉🎉🎉", "(((", "\u{0}\u{7}", "-", "3.5 km/h at 10:30, e.g. 1,000 m", "你好", "a"] {
        let pcm = tts.synthesize(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
        assert_eq!(pcm.rate_hz, 22_050);
    }
    assert!(tts.synthesize("").unwrap().samples.is_empty());
    assert!(tts.synthesize("...").unwrap().samples.is_empty());
    // A long answer without any punctuation is split, not one giant inference.
    let long = "and then we kept walking along the old road ".repeat(12);
    let mut count = 0;
    tts.synthesize_phrases(&long, |_| {
        count += 1;
        ControlFlow::Continue(())
    })
    .unwrap();
    assert!(count >= 2, "{count} phrases for {} bytes", long.len());
}

#[test]
fn kept_phrases_are_spoken_from_memory_as_synthesized() {
    // Its own voice: keeping phrases changes what the shared one would say.
    let Some(cfg) = common::config() else { return };
    let mut tts = Tts::load(&cfg).unwrap();
    // Piper samples noise on every inference, so the same text twice differs...
    let (a, b) = (tts.synthesize("Let me think.").unwrap(), tts.synthesize("Let me think.").unwrap());
    assert_ne!(a.samples, b.samples, "Piper's output no longer varies: this test cannot tell kept audio from new");
    // ...and once kept, every later request plays the kept audio.
    assert_eq!(tts.keep_phrases(&["Let me think.", "Sure, go on."]).unwrap(), 3);
    let kept = tts.synthesize("Let me think.").unwrap();
    assert_eq!(kept.samples, tts.synthesize("Let me think.").unwrap().samples);
    assert!(rms(&kept.samples) > 0.02 && kept.duration_ms() > 300.0, "{} ms", kept.duration_ms());
    // A text made of kept clauses is those clauses, with the usual clause silence between.
    let sure = tts.synthesize("Sure, go on.").unwrap();
    let first: Vec<Pcm> = {
        let mut v = Vec::new();
        tts.synthesize_phrases("Sure, go on.", |p| {
            v.push(p.pcm);
            ControlFlow::Continue(())
        })
        .unwrap();
        v
    };
    assert_eq!(first.len(), 2);
    assert_eq!(sure.samples, [first[0].samples.clone(), first[1].samples.clone()].concat());
    // Keeping again adds nothing, and the store is bounded.
    assert_eq!(tts.keep_phrases(&["Let me think."]).unwrap(), 3);
    let many: Vec<String> = (0..40).map(|i| format!("Number {i}.")).collect();
    assert_eq!(tts.keep_phrases(&many).unwrap(), tts::MAX_KEPT_CLAUSES);
}
