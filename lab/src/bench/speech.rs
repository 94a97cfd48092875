//! `firstword bench speech`: the cost of hearing and speaking on this machine.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use serde::Serialize;

use super::stats::{summarize, Summary};
use daemon::config::Config;

/// The spoken question (synthesized with the Piper voice, then resampled to 16 kHz).
const QUESTION: &str = "What time does the pharmacy on Main Street close tonight?";
/// A 6-word opener, the unit the daemon speaks first.
const OPENER: &str = "The pharmacy closes at nine tonight.";
/// A continuation-sized text for the TTS real-time factor.
const PARAGRAPH: &str = "The pharmacy on Main Street closes at nine tonight, \
    and it opens again at eight tomorrow morning. If you need something sooner, \
    the hospital pharmacy across town is open around the clock.";

#[derive(Serialize)]
struct AsrReport {
    input: String,
    audio_ms: f64,
    audio_ctx: usize,
    threads: usize,
    latency_ms: Summary,
    rtf: Summary,
    transcript: String,
    wer: f64,
}

#[derive(Serialize)]
struct TtsReport {
    phrase: String,
    phrase_words: usize,
    time_to_first_audio_ms: Summary,
    phrase_audio_ms: f64,
    paragraph_audio_ms: f64,
    paragraph_synth_ms: Summary,
    rtf: Summary,
    rate_hz: u32,
}

#[derive(Serialize)]
struct Report {
    bench: &'static str,
    runs: usize,
    asr_question: AsrReport,
    asr_jfk: Option<AsrReport>,
    tts: TtsReport,
    peak_rss_mib: Option<f64>,
}

fn time_asr(asr: &mut asr::Asr, input: &str, samples: &[f32], reference: &str, runs: usize) -> Result<AsrReport> {
    let warm = asr.transcribe(samples)?;
    let (mut lat, mut rtf) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let t = asr.transcribe(samples)?;
        lat.push(t.timings.total_ms);
        rtf.push(t.timings.rtf);
    }
    Ok(AsrReport {
        input: input.into(),
        audio_ms: warm.timings.audio_ms,
        audio_ctx: warm.timings.audio_ctx,
        threads: asr.config().effective_threads(),
        latency_ms: summarize(&lat).context("no runs")?,
        rtf: summarize(&rtf).context("no runs")?,
        wer: asr::wer::wer(reference, &warm.text).wer,
        transcript: warm.text,
    })
}

pub fn run(cfg: &Config, json: bool, runs: usize) -> Result<()> {
    let mut voice = tts::Tts::load(&cfg.tts).context("loading the Piper voice")?;
    let mut asr = asr::Asr::load(&cfg.asr).context("loading Whisper")?;

    // The question: Piper's voice at 22.05 kHz -> 16 kHz, with 200 ms of silence either side.
    let q = voice.synthesize(QUESTION)?;
    let mut question = vec![0.0f32; 3200];
    question.extend(audio::resample::resample(&q.samples, q.rate_hz, asr::SAMPLE_RATE_HZ)?);
    question.extend(vec![0.0f32; 3200]);
    let asr_question = time_asr(&mut asr, "piper:question", &question, QUESTION, runs)?;

    let jfk = Path::new("fixtures/audio/fetched/jfk.wav");
    let asr_jfk = if jfk.is_file() {
        let x = audio::load_wav_16k_mono(jfk)?;
        let reference = "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country.";
        Some(time_asr(&mut asr, "jfk.wav", &x, reference, runs)?)
    } else {
        None
    };

    // TTS: time to the first phrase of audio for the opener, and RTF on a paragraph.
    let mut first = Vec::new();
    let mut phrase_audio_ms = 0.0;
    for i in 0..=runs {
        let t0 = Instant::now();
        let mut t_first = None;
        let mut total_ms = 0.0;
        voice.synthesize_phrases(OPENER, |p| {
            t_first.get_or_insert_with(|| t0.elapsed().as_secs_f64() * 1000.0);
            total_ms += p.pcm.duration_ms();
            std::ops::ControlFlow::Continue(())
        })?;
        phrase_audio_ms = total_ms;
        if i > 0 {
            first.extend(t_first);
        }
    }
    let (mut synth, mut rtf) = (Vec::new(), Vec::new());
    let mut paragraph_audio_ms = 0.0;
    for i in 0..=runs {
        let t0 = Instant::now();
        let pcm = voice.synthesize(PARAGRAPH)?;
        let ms = t0.elapsed().as_secs_f64() * 1000.0;
        paragraph_audio_ms = pcm.duration_ms();
        if i > 0 {
            synth.push(ms);
            rtf.push(ms / pcm.duration_ms());
        }
    }
    let report = Report {
        bench: "speech",
        runs,
        asr_question,
        asr_jfk,
        tts: TtsReport {
            phrase: OPENER.into(),
            phrase_words: OPENER.split_whitespace().count(),
            time_to_first_audio_ms: summarize(&first).context("no runs")?,
            phrase_audio_ms,
            paragraph_audio_ms,
            paragraph_synth_ms: summarize(&synth).context("no runs")?,
            rtf: summarize(&rtf).context("no runs")?,
            rate_hz: voice.sample_rate_hz(),
        },
        peak_rss_mib: crate::rss::peak_rss_mib(),
    };
    if json {
        println!("{}", crate::provenance::report_json(&report)?);
    } else {
        let a = &report.asr_question;
        println!(
            "ASR  {:<16} {:>6.0} ms audio  p50 {:>6.1} ms  RTF {:.3}  WER {:.2}  {:?}",
            a.input, a.audio_ms, a.latency_ms.p50, a.rtf.p50, a.wer, a.transcript
        );
        if let Some(a) = &report.asr_jfk {
            println!(
                "ASR  {:<16} {:>6.0} ms audio  p50 {:>6.1} ms  RTF {:.3}  WER {:.2}",
                a.input, a.audio_ms, a.latency_ms.p50, a.rtf.p50, a.wer
            );
        }
        let t = &report.tts;
        println!("TTS  first audio for {:?}: p50 {:.1} ms (audio {:.0} ms)", t.phrase, t.time_to_first_audio_ms.p50, t.phrase_audio_ms);
        println!("TTS  paragraph {:.0} ms audio: synth p50 {:.1} ms  RTF {:.3}", t.paragraph_audio_ms, t.paragraph_synth_ms.p50, t.rtf.p50);
        println!("peak RSS {:.0} MiB", report.peak_rss_mib.unwrap_or(f64::NAN));
    }
    Ok(())
}
