//! VAD on real recordings (fixtures fetched by scripts/setup.sh), frame by frame.

use std::path::PathBuf;

use audio::vad::{EnergyDetector, Vad, VadConfig, VadEvent, FRAME_SAMPLES};

/// Path of a fetched fixture or model (relative to the repository root); `None` when it is
/// missing, under testkit's rule: the test skips with a message, or fails when models are
/// required (`testkit::models_required`, as in CI).
fn asset(rel: &str) -> Option<PathBuf> {
    testkit::require(rel)
}

fn silero_cfg() -> Option<VadConfig> {
    let model = asset("models/silero/silero_vad.onnx")?;
    // ORT_DYLIB_PATH (onnxruntime's own variable) wins: the aarch64 library under qemu-user.
    let lib = match std::env::var_os("ORT_DYLIB_PATH") {
        Some(p) => PathBuf::from(p),
        None => asset("models/onnxruntime/libonnxruntime.so.1.24.2")?,
    };
    Some(VadConfig { model, onnxruntime_lib: Some(lib), ..VadConfig::default() })
}

#[test]
fn silero_finds_the_speech_in_jfk() {
    let (Some(cfg), Some(wav)) = (silero_cfg(), asset("fixtures/audio/fetched/jfk.wav")) else { return };
    let x = audio::load_wav_16k_mono(wav).unwrap();
    let mut vad = Vad::new(&cfg).unwrap();
    assert_eq!(vad.detector_name(), "silero");
    let segs = vad.segments(&x).unwrap();
    assert!(!segs.is_empty());
    // jfk.wav: 11 s; speech starts near 0.3 s and ends near 10.5 s with pauses between phrases.
    let first = segs[0].start as f64 / 16_000.0;
    let last = segs.last().unwrap().end as f64 / 16_000.0;
    assert!(first < 1.0, "speech starts at {first:.2} s");
    assert!((9.5..=11.0).contains(&last), "speech ends at {last:.2} s");
    let voiced: u64 = segs.iter().map(|s| s.end - s.start).sum();
    let frac = voiced as f64 / x.len() as f64;
    assert!((0.5..0.95).contains(&frac), "voiced fraction {frac:.2}");
}

#[test]
fn silero_ignores_silence_and_noise_then_catches_speech() {
    let (Some(cfg), Some(wav)) = (silero_cfg(), asset("fixtures/audio/fetched/speech_orig_16k.wav")) else { return };
    let speech = audio::load_wav_16k_mono(wav).unwrap();
    // 2 s of low white noise (deterministic LCG), then the four Harvard sentences.
    let mut seed = 12345u32;
    let mut x: Vec<f32> = (0..32_000)
        .map(|_| {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            ((seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5) * 0.01
        })
        .collect();
    x.extend_from_slice(&speech);
    let mut vad = Vad::new(&cfg).unwrap();
    let mut events = Vec::new();
    // Feed in odd-sized chunks, as a capture callback would.
    for chunk in x.chunks(333) {
        events.extend(vad.push(chunk).unwrap());
    }
    events.extend(vad.finish());
    let starts: Vec<u64> =
        events.iter().filter_map(|e| if let VadEvent::SpeechStart { sample } = e { Some(*sample) } else { None }).collect();
    assert!(!starts.is_empty());
    assert!(starts[0] >= 32_000 - FRAME_SAMPLES as u64, "noise triggered speech at {}", starts[0]);
    let ends = events.iter().filter(|e| matches!(e, VadEvent::SpeechEnd { .. })).count();
    assert_eq!(starts.len(), ends, "{events:?}");
    // Four sentences with pauses: between 1 and 6 utterances at the default hangover.
    assert!((1..=6).contains(&starts.len()), "{} utterances", starts.len());
}

#[test]
fn energy_fallback_when_model_missing() {
    let cfg = VadConfig { model: "/nonexistent/silero.onnx".into(), ..VadConfig::default() };
    let mut vad = Vad::new(&cfg).unwrap();
    assert_eq!(vad.detector_name(), "energy");
    let mut x = vec![0.0f32; 16_000];
    x.extend((0..16_000).map(|i| (i as f32 * 0.05).sin() * 0.3));
    x.extend(vec![0.0f32; 16_000]);
    let segs = vad.segments(&x).unwrap();
    assert_eq!(segs.len(), 1, "{segs:?}");
    assert!((segs[0].start as i64 - 16_000).abs() <= 512);
    assert!((segs[0].end as i64 - 32_000).abs() <= 512);
}

#[test]
fn wrong_frame_size_is_an_error() {
    use audio::vad::SpeechDetector;
    let mut d = EnergyDetector::new(-38.0);
    assert!(d.speech_prob(&[0.0; 100]).is_err());
}

#[test]
fn eight_khz_codec2_clip_resamples() {
    let Some(wav) = asset("fixtures/audio/fetched/big_dog_8k.wav") else { return };
    let d = audio::read_wav(&wav).unwrap();
    assert_eq!(d.rate_hz, 8_000);
    let x = audio::load_wav_16k_mono(&wav).unwrap();
    assert_eq!(x.len(), d.mono.len() * 2);
}

/// Replay's whole-buffer utterances on an espeak-ng voice that pauses 550 ms mid-sentence
/// ("Set a timer for … twelve minutes please."): with the VAD's own 300 ms hangover the pause
/// splits it in two; a pause judged unfinished (1 s hangover) keeps it one utterance, whose
/// audio with pre-roll starts before the VAD's start and holds both parts.
#[test]
fn a_pause_judged_unfinished_keeps_the_sentence_one_utterance() {
    let (Some(cfg), Some(wav)) = (silero_cfg(), asset("fixtures/voices/timer.wav")) else { return };
    let x = audio::load_wav_16k_mono(wav).unwrap();
    let mut vad = Vad::new(&cfg).unwrap();
    let fixed = audio::vad::utterances::<(), audio::AudioError>(&mut vad, &x, cfg.min_speech_ms, 0, |_| Ok(None)).unwrap();
    assert_eq!(fixed.len(), 2, "{fixed:?}");
    assert!(fixed.iter().all(|u| u.judged.is_none() && u.start_ms < u.last_voiced_ms && u.last_voiced_ms < u.endpoint_ms));

    let pre_roll = Vad::pre_roll_samples(&cfg);
    let mut pauses = Vec::new();
    let judged = audio::vad::utterances::<&str, audio::AudioError>(&mut vad, &x, cfg.min_speech_ms, pre_roll, |audio| {
        pauses.push(audio.len());
        Ok(Some((1_000, "unfinished")))
    })
    .unwrap();
    assert_eq!(judged.len(), 1, "{judged:?}");
    let u = &judged[0];
    assert!(!pauses.is_empty(), "the pause was never judged");
    // The whole first part was handed over at the mid-sentence pause: at least the first
    // utterance above (a 32 ms dip inside a word may raise an earlier, shorter pause).
    let first_part = (fixed[0].last_voiced_ms - fixed[0].start_ms) * 16.0;
    assert!(pauses.iter().any(|&p| p as f64 >= first_part && (p as f64) < first_part + 16.0 * 1_000.0), "{pauses:?}");
    assert!((u.start_ms - fixed[0].start_ms).abs() < 1.0 && (u.last_voiced_ms - fixed[1].last_voiced_ms).abs() < 1.0, "{u:?} vs {fixed:?}");
    assert_eq!(u.confirmed_ms, u.start_ms + f64::from(cfg.min_speech_ms));
    assert_eq!(u.judged, Some("unfinished"), "the last pause judged is kept");
    let audio = audio::vad::utterance_audio(&x, u, cfg.pre_roll_ms);
    let expected = ((u.endpoint_ms - u.start_ms) * 16.0) as usize + pre_roll as usize;
    assert!(audio.len().abs_diff(expected) <= 16, "{} samples, expected {expected}", audio.len());
}
