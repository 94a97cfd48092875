//! Speaks a text into a WAV file and prints timings.
//!
//! ```text
//! cargo run --release -p tts --example speak -- "Hello there, world." out.wav
//! ```
//! Run from the repository root (the default config's model paths are
//! relative to it). Prints load time, time to first phrase, total synthesis
//! time and the real-time factor (synthesis time / audio duration).

use std::ops::ControlFlow;
use std::time::Instant;

use tts::{Tts, TtsConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let text = args.next().unwrap_or_else(|| "Hello there, this is a test.".into());
    let out = args.next().unwrap_or_else(|| "speak.wav".into());
    let threads: usize = std::env::var("TTS_THREADS").ok().and_then(|t| t.parse().ok()).unwrap_or(0);

    let t0 = Instant::now();
    let mut tts = Tts::load(&TtsConfig { threads, ..TtsConfig::default() })?;
    println!("load (incl. warm-up): {:.0} ms", t0.elapsed().as_secs_f64() * 1e3);

    let mut samples = Vec::new();
    let t1 = Instant::now();
    let mut first = None;
    tts.synthesize_phrases(&text, |p| {
        first.get_or_insert_with(|| t1.elapsed());
        println!("  +{:6.0} ms  {:6.0} ms audio  {:?}", t1.elapsed().as_secs_f64() * 1e3, p.pcm.duration_ms(), p.text);
        samples.extend_from_slice(&p.pcm.samples);
        ControlFlow::Continue(())
    })?;
    let total = t1.elapsed().as_secs_f64();
    let audio_s = samples.len() as f64 / tts.sample_rate_hz() as f64;
    println!(
        "first phrase {:.0} ms, total {:.0} ms, audio {:.2} s, RTF {:.3}",
        first.unwrap_or_default().as_secs_f64() * 1e3,
        total * 1e3,
        audio_s,
        total / audio_s.max(1e-9)
    );

    let spec =
        hound::WavSpec { channels: 1, sample_rate: tts.sample_rate_hz(), bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    let mut w = hound::WavWriter::create(&out, spec)?;
    for s in samples {
        w.write_sample((s.clamp(-1.0, 1.0) * i16::MAX as f32) as i16)?;
    }
    w.finalize()?;
    println!("wrote {out}");
    Ok(())
}
