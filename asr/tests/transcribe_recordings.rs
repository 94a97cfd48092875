//! Whisper tiny.en (converted by `firstword setup`, assets::whisper_ggml) on real recordings.

use std::path::PathBuf;
use std::sync::Mutex;

use asr::{wer::wer, Asr, AsrConfig, AsrError};

/// Path of a fetched fixture or model (relative to the repository root); `None` when it is
/// missing, under testkit's rule: the test skips with a message, or fails when models are
/// required (`testkit::models_required`, as in CI).
fn asset(rel: &str) -> Option<PathBuf> {
    testkit::require(rel)
}

/// One model for all tests in this binary (loading is the slow part; tests run in parallel).
static ASR: Mutex<Option<Asr>> = Mutex::new(None);

fn with_asr<R>(f: impl FnOnce(&mut Asr) -> R) -> Option<R> {
    let model = asset("models/whisper/ggml-tiny.en.bin")?;
    let mut guard = ASR.lock().unwrap_or_else(|p| p.into_inner());
    if guard.is_none() {
        *guard = Some(Asr::load(&AsrConfig { model, ..AsrConfig::default() }).expect("load converted tiny.en"));
    }
    Some(f(guard.as_mut().unwrap()))
}

fn check(wav: &str, reference: &str, max_wer: f64) {
    let Some(path) = asset(wav) else { return };
    let x = audio::load_wav_16k_mono(&path).unwrap();
    let Some(t) = with_asr(|a| a.transcribe(&x).unwrap()) else { return };
    let w = wer(reference, &t.text);
    eprintln!("{wav}: {:?} (WER {:.3}, {:.0} ms, RTF {:.3})", t.text, w.wer, t.timings.total_ms, t.timings.rtf);
    assert!(w.wer <= max_wer, "{wav}: WER {:.3} > {max_wer}: {:?}", w.wer, t.text);
    assert!(!t.segments.is_empty());
    let last = t.segments.last().unwrap();
    assert!(last.end_ms as f64 <= t.timings.audio_ms + 1.0);
}

#[test]
fn jfk() {
    check(
        "fixtures/audio/fetched/jfk.wav",
        "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country.",
        0.10,
    );
}

#[test]
fn harvard_sentences() {
    // codec2's speech_orig_16k.wav: four Harvard sentences (list 1: 1, 2, 3 and 10).
    check(
        "fixtures/audio/fetched/speech_orig_16k.wav",
        "The birch canoe slid on the smooth planks. Glue the sheet to the dark blue background. \
         It's easy to tell the depth of a well. Four hours of steady work faced us.",
        0.10,
    );
}

#[test]
fn eight_khz_clip_is_resampled_and_transcribed() {
    // codec2's big_dog.wav (8 kHz): "A bit of a big dog..." is not guaranteed; check that the
    // 8 kHz file goes through the resampler and yields real English words.
    let Some(path) = asset("fixtures/audio/fetched/big_dog_8k.wav") else { return };
    let d = audio::read_wav(&path).unwrap();
    assert_eq!(d.rate_hz, 8_000);
    let x = audio::load_wav_16k_mono(&path).unwrap();
    let Some(t) = with_asr(|a| a.transcribe(&x).unwrap()) else { return };
    eprintln!("big_dog_8k: {:?}", t.text);
    let words = asr::wer::normalize_words(&t.text);
    assert!(words.len() >= 3, "{:?}", t.text);
    assert!(words.iter().any(|w| w == "dog"), "{:?}", t.text);
}

#[test]
fn bad_input_and_bad_models_are_errors() {
    let _ = with_asr(|a| {
        assert!(matches!(a.transcribe(&[]), Err(AsrError::BadInput(_))));
        assert!(matches!(a.transcribe(&[0.0, f32::NAN]), Err(AsrError::BadInput(_))));
    });
    let missing = Asr::load(&AsrConfig { model: "/nonexistent/ggml.bin".into(), ..AsrConfig::default() });
    assert!(matches!(missing, Err(AsrError::ModelMissing(_))));
    let dir = std::env::temp_dir().join(format!("asr-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let junk = dir.join("junk.bin");
    std::fs::write(&junk, b"this is not a model at all").unwrap();
    let e = Asr::load(&AsrConfig { model: junk, ..AsrConfig::default() }).err().expect("junk must not load");
    assert!(matches!(e, AsrError::ModelInvalid { .. }), "{e}");
    assert!(e.to_string().contains("junk.bin"));
}

/// A run whose stop condition turns true gives up mid-run with `Cancelled` (whisper.cpp
/// asked many times, not once at the end); one that is never stopped transcribes as
/// `transcribe` does, and the recognizer is unharmed by a cancelled run.
#[test]
fn a_cancelled_run_gives_up_midway_and_leaves_the_recognizer_working() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let Some(path) = asset("fixtures/audio/fetched/jfk.wav") else { return };
    let x = audio::load_wav_16k_mono(&path).unwrap();
    with_asr(|a| {
        let plain = a.transcribe(&x).unwrap().text;
        let asked = Arc::new(AtomicUsize::new(0));
        let counter = asked.clone();
        let r = a.transcribe_unless(&x, move || counter.fetch_add(1, Ordering::Relaxed) >= 20);
        assert!(matches!(r, Err(AsrError::Cancelled)), "{r:?}");
        // It asked 21 times before the answer turned to yes, and stopped there (a question
        // or two after, at most, and the check that classifies the error).
        let n = asked.load(Ordering::Relaxed);
        assert!((22..=24).contains(&n), "asked {n} times");
        assert_eq!(a.transcribe_unless(&x, || false).unwrap().text, plain);
        assert!(matches!(a.transcribe_unless(&x, || true), Err(AsrError::Cancelled)));
        assert_eq!(a.transcribe(&x).unwrap().text, plain);
    });
}
