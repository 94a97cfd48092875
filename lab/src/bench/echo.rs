//! `firstword bench echo`: open-ear audio, offline and deterministic. Replies synthesized
//! with the Piper voice pass through the simulated echo path (several delays, rooms, noise)
//! into a simulated microphone; AEC3 cancels them with the reply as the reference, exactly
//! as the live listener does (16 kHz, 10 ms frames); Silero VAD with the daemon's settings
//! listens to the result.
//!
//! Measures: echo return loss enhancement on the daemon's own speech; replies that would
//! stop themselves (a VAD speech start during a reply or its echo tail); user interruptions
//! (espeak-ng voices from fixtures/voices spoken over a reply at 0 dB echo) detected, and
//! how long after the user's onset; and Whisper's WER on the interrupting words (double-talk).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use audio::aec::{erle_db, Convergence, EchoCanceller, AEC_FRAME};
use audio::device::{EchoPath, EchoPathConfig};
use audio::vad::{Vad, VadEvent, FRAME_SAMPLES};
use serde::{Deserialize, Serialize};

use super::stats::{summarize, Summary};
use daemon::config::Config;

const RATE: usize = 16_000;

/// Replies of the length and style the daemon speaks (opener + continuation).
const REPLIES: &[&str] = &[
    "The sky looks blue because air scatters short blue wavelengths of sunlight more than red ones.",
    "Boil the egg for about seven minutes if you like the yolk just set, then cool it in cold water.",
    "Tokyo is nine hours ahead of London, so it is early evening there right now.",
    "Penguins live almost entirely in the southern hemisphere, from Antarctica to the Galapagos.",
    "To get rid of hiccups, try holding your breath for ten seconds and then sipping cold water.",
    "The pharmacy on Main Street closes at nine tonight and opens again at eight tomorrow.",
    "Bread rises because yeast eats the sugars in the dough and releases carbon dioxide.",
    "The moon is about three hundred and eighty four thousand kilometres from the Earth.",
    "Paris is the capital of France, and it sits on the river Seine in the north of the country.",
    "Cats sleep for twelve to sixteen hours a day, mostly in short naps.",
    "A good rule for dinner is a protein, a vegetable and something warm, like a simple stir fry.",
    "Your timer is set for twelve minutes, and I will tell you when it is done.",
    "Tomorrow looks cloudy in the morning with light rain after lunch and a high of fourteen degrees.",
    "For a weekend trip, pack layers, comfortable shoes, a charger and a small bag for toiletries.",
    "The book you asked about was written in the nineteen sixties and won several prizes.",
    "Water boils at one hundred degrees Celsius at sea level, and a little lower up a mountain.",
    "The quickest route avoids the motorway this morning because of roadworks near the bridge.",
    "Sure, I can help with that. Let me walk you through it one step at a time.",
    "A kilometre is a little more than six tenths of a mile, so ten kilometres is about six miles.",
    "Good question. The short answer is yes, but it depends on how long you let it rest.",
];

/// `firstword bench echo` options.
#[derive(Debug, clap::Args)]
pub struct EchoBenchArgs {
    /// Print the JSON report (otherwise a summary).
    #[arg(long)]
    pub json: bool,
    /// Replies played with echo at `--gain-db` for the self-interruption count.
    #[arg(long, default_value_t = 100)]
    pub replies: usize,
    /// Echo gain for the self-interruption count, dB.
    #[arg(long, default_value_t = -6.0, allow_hyphen_values = true)]
    pub gain_db: f32,
    /// Interruption trials per voice fixture (the user starts at different points of the
    /// reply), echo at 0 dB.
    #[arg(long, default_value_t = 3)]
    pub trials_per_voice: usize,
    /// The voice fixtures (TOML with `[[fixture]]` id/text; WAVs `<id>.wav` beside it).
    #[arg(long, default_value = "fixtures/voices/voices.toml")]
    pub voices: PathBuf,
    /// Also write the JSON report to this file.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Deserialize)]
struct VoiceFile {
    fixture: Vec<VoiceFixture>,
}

#[derive(Deserialize)]
struct VoiceFixture {
    id: String,
    text: String,
}

#[derive(Serialize)]
struct SelfReport {
    replies: usize,
    gain_db: f32,
    delays_ms: Vec<f32>,
    room_ms: f32,
    noise_dbfs: f32,
    /// Replies during which (or in whose 0.5 s echo tail) the VAD started an utterance.
    self_interruptions_aec: usize,
    self_interruptions_no_aec: usize,
    per_100_replies_aec: f64,
}

#[derive(Serialize)]
struct ErleReport {
    /// ERLE over each reply (echo only, no noise), dB; the first reply of each echo path
    /// (the canceller converging) is in `first_reply_db`, the rest in `converged_db`.
    converged_db: Summary,
    first_reply_db: Summary,
    /// The same with −60 dBFS background noise in the microphone (the noise floor caps it).
    with_noise_db: Summary,
}

#[derive(Serialize)]
struct NoEchoPathReport {
    /// The same trials (after the warm-up reply): detected, and within 150 ms.
    detected: usize,
    detected_within_150ms: usize,
    latency_ms: Option<Summary>,
    /// The same users talking over the first reply a fresh canceller hears (0.6-2 s in,
    /// before transparent mode can switch on): detected, and within 150 ms.
    first_reply_detected: usize,
    first_reply_within_150ms: usize,
}

#[derive(Serialize)]
struct InterruptReport {
    trials: usize,
    gain_db: f32,
    detected: usize,
    detected_within_150ms: usize,
    detected_share: f64,
    within_150ms_share: f64,
    /// User's speech onset (first 10 ms above −40 dBFS) → the VAD's speech start
    /// confirmation, ms (the listener stops playback at that moment).
    latency_ms: Option<Summary>,
    /// The same users without any echo or canceller (the VAD's own onset latency: Silero's
    /// frames and the barge-in profile's minimum speech), for comparison.
    no_echo_latency_ms: Option<Summary>,
    no_echo_within_150ms: usize,
    /// Earbuds or a headset: the canceller on, the reply playing, no echo path at all (the
    /// microphone hears the user alone). The suppressor must find there is nothing to
    /// cancel (AEC3's transparent mode) or it takes the user for echo.
    no_echo_path: NoEchoPathReport,
    /// Trials where the reply's echo started an utterance before the user spoke.
    self_triggers_before_onset: usize,
    /// Whisper on the cancelled microphone during double-talk: mean WER over trials.
    double_talk_wer: f64,
    /// Whisper on the same words without any echo (the voices' own difficulty).
    clean_wer: f64,
    /// Whisper on the same words through the canceller while nothing plays (silent
    /// reference): what echo cancellation costs a user who does not talk over a reply.
    clean_through_aec_wer: f64,
    /// Whisper on the canceller's linear output (before residual echo suppression) during
    /// double-talk, and on clean speech while nothing plays.
    double_talk_linear_wer: f64,
    clean_through_linear_wer: f64,
}

#[derive(Serialize)]
struct Report {
    bench: &'static str,
    date: String,
    machine: String,
    aec: &'static str,
    vad: String,
    erle: ErleReport,
    self_interruption: SelfReport,
    interruptions: InterruptReport,
    /// Canceller cost on this machine: processing time / audio time.
    aec_rtf: f64,
    wall_s: f64,
}

/// Runs the canceller over a whole stream: `mic` heard while `reference` played.
fn cancel(mic: &[f32], reference: &[f32], aec: &mut EchoCanceller, cost: &mut (f64, f64)) -> Result<Vec<f32>> {
    Ok(cancel_both(mic, reference, aec, cost)?.0)
}

/// [`cancel`], also returning the linear filter's output (before residual suppression).
fn cancel_both(mic: &[f32], reference: &[f32], aec: &mut EchoCanceller, cost: &mut (f64, f64)) -> Result<(Vec<f32>, Vec<f32>)> {
    let t0 = Instant::now();
    let mut out = vec![0.0f32; mic.len()];
    let mut lin = vec![0.0f32; mic.len()];
    let frames = mic.len().min(reference.len()) / AEC_FRAME;
    for k in 0..frames {
        let r = k * AEC_FRAME..(k + 1) * AEC_FRAME;
        aec.process(&mic[r.clone()], &reference[r.clone()], &mut out[r.clone()])?;
        aec.linear_into(&mut lin[r]);
    }
    cost.0 += t0.elapsed().as_secs_f64();
    cost.1 += mic.len() as f64 / RATE as f64;
    Ok((out, lin))
}

/// Speech starts the VAD confirms in `x`: (VAD start sample, confirmation sample). Inside
/// `replying` (sample ranges where a reply plays) the VAD's barge-in onset profile is on, as
/// the live listener turns it on while a reply plays.
fn speech_starts(vad: &mut Vad, x: &[f32], replying: &[(usize, usize)]) -> Result<Vec<(u64, u64)>> {
    vad.reset();
    let mut starts = Vec::new();
    for (i, f) in x.chunks(FRAME_SAMPLES).enumerate() {
        let at = i * FRAME_SAMPLES;
        vad.set_barge_in(replying.iter().any(|&(a, b)| (a..b).contains(&at)));
        for ev in vad.push(f)? {
            if let VadEvent::SpeechStart { sample } = ev {
                starts.push((sample, (i * FRAME_SAMPLES + f.len()) as u64));
            }
        }
    }
    vad.finish();
    Ok(starts)
}

/// Where a fresh canceller fed `reference` has converged ([`Convergence`]): the live
/// listener turns the barge-in onset profile on only from there.
fn converged_at(reference: &[f32]) -> usize {
    let mut c = Convergence::default();
    for (k, f) in reference.chunks(AEC_FRAME).enumerate() {
        c.push_reference(f);
        if c.converged() {
            return (k + 1) * AEC_FRAME;
        }
    }
    reference.len()
}

/// ms from `speech_at` to the first confirmed speech start within 1 s after it.
fn onset_latency_ms(starts: &[(u64, u64)], speech_at: usize) -> Option<f64> {
    starts
        .iter()
        .map(|&(_, c)| c as usize)
        .find(|&c| c >= speech_at && c < speech_at + RATE)
        .map(|c| (c - speech_at) as f64 * 1000.0 / RATE as f64)
}

/// The parts of `spans` (where a reply plays) from `from` on.
fn from_sample(spans: &[(usize, usize)], from: usize) -> Vec<(usize, usize)> {
    spans.iter().map(|&(a, b)| (a.max(from), b)).filter(|&(a, b)| a < b).collect()
}

fn echo_of(stream: &[f32], cfg: &EchoPathConfig) -> Vec<f32> {
    let mut path = EchoPath::new(cfg, RATE as u32);
    let mut mic = vec![0.0f32; stream.len()];
    path.apply(stream, &mut mic);
    mic
}

fn silence(s: f64) -> Vec<f32> {
    vec![0.0; (s * RATE as f64) as usize]
}

/// First sample of `x` whose 10 ms block is above −40 dBFS.
fn onset(x: &[f32]) -> usize {
    x.chunks(160).position(|c| 10.0 * (c.iter().map(|v| v * v).sum::<f32>() / c.len() as f32).max(1e-12).log10() > -40.0).unwrap_or(0) * 160
}

pub fn run(cfg: &Config, args: &EchoBenchArgs) -> Result<()> {
    let t_start = Instant::now();
    let mut voice = tts::Tts::load(&cfg.tts).context("loading the Piper voice")?;
    let mut vad = Vad::new(&cfg.vad).context("loading the VAD")?;
    let mut asr = asr::Asr::load(&cfg.asr).context("loading Whisper")?;
    eprintln!("synthesizing {} replies", REPLIES.len());
    let mut replies = Vec::new();
    for text in REPLIES {
        let pcm = voice.synthesize(text)?;
        replies.push(audio::resample::resample(&pcm.samples, pcm.rate_hz, RATE as u32)?);
    }
    let mut cost = (0.0, 0.0);

    // 1. Self-interruption and ERLE: per echo delay, a conversation of replies 1 s apart.
    let delays = [10.0f32, 40.0, 80.0, 120.0];
    let per_delay = args.replies.div_ceil(delays.len()).max(1);
    let (mut self_aec, mut self_raw, mut played) = (0usize, 0usize, 0usize);
    let (mut erle_conv, mut erle_first, mut erle_noisy) = (Vec::new(), Vec::new(), Vec::new());
    for (di, &delay_ms) in delays.iter().enumerate() {
        let n = per_delay.min(args.replies - played);
        if n == 0 {
            break;
        }
        let mut stream = silence(0.5);
        let mut spans = Vec::new();
        for k in 0..n {
            let r = &replies[(di * 7 + k) % replies.len()];
            spans.push((stream.len(), stream.len() + r.len()));
            stream.extend_from_slice(r);
            stream.extend(silence(1.0));
        }
        played += n;
        let path = |noise_dbfs: f32| EchoPathConfig {
            delay_ms,
            gain_db: args.gain_db,
            room_ms: 60.0,
            reflections_db: -10.0,
            noise_dbfs,
            seed: di as u64 + 1,
        };
        let clean_mic = echo_of(&stream, &path(-200.0));
        let clean_out = cancel(&clean_mic, &stream, &mut EchoCanceller::new(None)?, &mut cost)?;
        let noisy_mic = echo_of(&stream, &path(-60.0));
        let noisy_out = cancel(&noisy_mic, &stream, &mut EchoCanceller::new(None)?, &mut cost)?;
        let tail = RATE / 2;
        for (k, &(a, b)) in spans.iter().enumerate() {
            let e = erle_db(&clean_mic[a..b + tail], &clean_out[a..b + tail]).unwrap_or(0.0);
            if k == 0 {
                erle_first.push(e)
            } else {
                erle_conv.push(e)
            }
            erle_noisy.extend(erle_db(&noisy_mic[a..b + tail], &noisy_out[a..b + tail]));
        }
        let hits = |starts: &[(u64, u64)]| {
            spans.iter().filter(|&&(a, b)| starts.iter().any(|&(_, c)| c as usize >= a && (c as usize) < b + tail)).count()
        };
        let barge_in = from_sample(&spans, converged_at(&stream));
        self_aec += hits(&speech_starts(&mut vad, &noisy_out, &barge_in)?);
        self_raw += hits(&speech_starts(&mut vad, &noisy_mic, &barge_in)?);
        eprintln!("echo {delay_ms} ms: {n} replies, self-interruptions {self_aec} (AEC) / {self_raw} (none) so far");
    }

    // 2. Interruptions: a voice fixture over a reply, echo at 0 dB (after a warm-up reply).
    let voices_dir = args.voices.parent().unwrap_or(Path::new("."));
    let vf: VoiceFile =
        toml::from_str(&std::fs::read_to_string(&args.voices).with_context(|| format!("reading {}", args.voices.display()))?)
            .with_context(|| format!("parsing {}", args.voices.display()))?;
    let (mut trials, mut detected, mut fast, mut self_before) = (0usize, 0usize, 0usize, 0usize);
    let (mut lat, mut wers, mut clean_wers, mut aec_clean_wers) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut lin_wers, mut lin_clean_wers) = (Vec::new(), Vec::new());
    let (mut base_lat, mut base_fast) = (Vec::new(), 0usize);
    let (mut np_lat, mut np_fast, mut np_first, mut np_first_fast) = (Vec::new(), 0usize, 0usize, 0usize);
    for (vi, fx) in vf.fixture.iter().enumerate() {
        let user = audio::load_wav_16k_mono(voices_dir.join(format!("{}.wav", fx.id)))?;
        let user_onset = onset(&user);
        clean_wers.push(asr::wer::wer(&fx.text, &asr.transcribe(&user)?.text).wer);
        let mut padded = silence(0.5);
        padded.extend_from_slice(&user);
        padded.extend(silence(0.5));
        let (through, through_lin) = cancel_both(&padded, &vec![0.0; padded.len()], &mut EchoCanceller::new(None)?, &mut cost)?;
        aec_clean_wers.push(asr::wer::wer(&fx.text, &asr.transcribe(&through)?.text).wer);
        lin_clean_wers.push(asr::wer::wer(&fx.text, &asr.transcribe(&through_lin)?.text).wer);
        for t in 0..args.trials_per_voice {
            let warm = &replies[(vi + 3) % replies.len()];
            let reply = &replies[(vi * 3 + t) % replies.len()];
            let mut stream = warm.clone();
            stream.extend(silence(0.5));
            let reply_at = stream.len();
            stream.extend_from_slice(reply);
            stream.extend(silence(1.0));
            let delay_ms = [20.0f32, 60.0, 100.0][t % 3];
            let path = EchoPathConfig {
                delay_ms,
                gain_db: 0.0,
                room_ms: 60.0,
                reflections_db: -10.0,
                noise_dbfs: -60.0,
                seed: (vi * 10 + t) as u64,
            };
            let mut mic = echo_of(&stream, &path);
            // The user starts 0.6-2.0 s into the reply (before it ends).
            let offset = (reply.len() / 4 + t * reply.len() / 5).min(reply.len().saturating_sub(RATE / 2));
            let user_at = reply_at + offset;
            let end = (user_at + user.len()).min(mic.len());
            for (m, u) in mic[user_at..end].iter_mut().zip(&user) {
                *m += u;
            }
            let (out, lin) = cancel_both(&mic, &stream, &mut EchoCanceller::new(None)?, &mut cost)?;
            let replying = from_sample(&[(0, warm.len()), (reply_at, reply_at + reply.len())], converged_at(&stream));
            let starts = speech_starts(&mut vad, &out, &replying)?;
            let speech_at = user_at + user_onset;
            // Baseline: the user alone (no reply playing).
            let mut alone = vec![0.0f32; mic.len()];
            for (m, u) in alone[user_at..end].iter_mut().zip(&user) {
                *m += u;
            }
            if let Some(ms) = onset_latency_ms(&speech_starts(&mut vad, &alone, &replying)?, speech_at) {
                base_fast += usize::from(ms <= 150.0);
                base_lat.push(ms);
            }
            // No echo path: the user alone in the microphone, the reply as the reference.
            let (np_out, _) = cancel_both(&alone, &stream, &mut EchoCanceller::new(None)?, &mut cost)?;
            if let Some(ms) = onset_latency_ms(&speech_starts(&mut vad, &np_out, &replying)?, speech_at) {
                np_fast += usize::from(ms <= 150.0);
                np_lat.push(ms);
            }
            let first = &stream[reply_at - RATE / 2..];
            let (np_first_out, _) = cancel_both(&alone[reply_at - RATE / 2..], first, &mut EchoCanceller::new(None)?, &mut cost)?;
            let first_replying = from_sample(&[(RATE / 2, RATE / 2 + reply.len())], converged_at(first));
            if let Some(ms) = onset_latency_ms(&speech_starts(&mut vad, &np_first_out, &first_replying)?, speech_at - (reply_at - RATE / 2))
            {
                np_first += 1;
                np_first_fast += usize::from(ms <= 150.0);
            }
            trials += 1;
            if starts.iter().any(|&(_, c)| (c as usize) < speech_at && c as usize >= reply_at) {
                self_before += 1;
            }
            if let Some(ms) = onset_latency_ms(&starts, speech_at) {
                detected += 1;
                if ms <= 150.0 {
                    fast += 1;
                }
                lat.push(ms);
            }
            let span = &out[speech_at.saturating_sub(RATE / 5)..(user_at + user.len() + RATE / 5).min(out.len())];
            wers.push(asr::wer::wer(&fx.text, &asr.transcribe(span)?.text).wer);
            let lin_span = &lin[speech_at.saturating_sub(RATE / 5)..(user_at + user.len() + RATE / 5).min(lin.len())];
            lin_wers.push(asr::wer::wer(&fx.text, &asr.transcribe(lin_span)?.text).wer);
        }
        eprintln!("voice {}: {trials} trials, {detected} detected", fx.id);
    }

    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let provenance = crate::provenance::Provenance::now();
    let report = Report {
        bench: "echo",
        date: provenance.date.clone(),
        machine: provenance.machine(),
        aec: "aec3 0.4.0 (WebRTC AEC3 in Rust): AEC3 alone (no high-pass, NS, AGC), transparent mode by the HMM classifier, 16 kHz, no delay hint",
        vad: format!(
            "{}; while a reply plays, once the canceller has converged: threshold {}, min speech {} ms (vad.barge_in_*)",
            vad.detector_name(),
            cfg.vad.barge_in_threshold,
            cfg.vad.barge_in_min_speech_ms
        ),
        erle: ErleReport {
            converged_db: summarize(&erle_conv).context("no converged replies (need 2 per delay)")?,
            first_reply_db: summarize(&erle_first).context("no replies")?,
            with_noise_db: summarize(&erle_noisy).context("no replies")?,
        },
        self_interruption: SelfReport {
            replies: played,
            gain_db: args.gain_db,
            delays_ms: delays.to_vec(),
            room_ms: 60.0,
            noise_dbfs: -60.0,
            self_interruptions_aec: self_aec,
            self_interruptions_no_aec: self_raw,
            per_100_replies_aec: self_aec as f64 * 100.0 / played.max(1) as f64,
        },
        interruptions: InterruptReport {
            trials,
            gain_db: 0.0,
            detected,
            detected_within_150ms: fast,
            detected_share: detected as f64 / trials.max(1) as f64,
            within_150ms_share: fast as f64 / trials.max(1) as f64,
            latency_ms: summarize(&lat),
            no_echo_latency_ms: summarize(&base_lat),
            no_echo_within_150ms: base_fast,
            no_echo_path: NoEchoPathReport {
                detected: np_lat.len(),
                detected_within_150ms: np_fast,
                latency_ms: summarize(&np_lat),
                first_reply_detected: np_first,
                first_reply_within_150ms: np_first_fast,
            },
            self_triggers_before_onset: self_before,
            double_talk_wer: mean(&wers),
            clean_wer: mean(&clean_wers),
            clean_through_aec_wer: mean(&aec_clean_wers),
            double_talk_linear_wer: mean(&lin_wers),
            clean_through_linear_wer: mean(&lin_clean_wers),
        },
        aec_rtf: cost.0 / cost.1.max(1e-9),
        wall_s: t_start.elapsed().as_secs_f64(),
    };
    let text = crate::provenance::report_json(&report)?;
    if let Some(p) = &args.out {
        std::fs::write(p, format!("{text}\n")).with_context(|| format!("writing {}", p.display()))?;
    }
    if args.json {
        println!("{text}");
    } else {
        let (e, s, i) = (&report.erle, &report.self_interruption, &report.interruptions);
        println!(
            "ERLE on own speech: p50 {:.1} dB (min {:.1}), first reply p50 {:.1} dB, with noise p50 {:.1} dB",
            e.converged_db.p50, e.converged_db.min, e.first_reply_db.p50, e.with_noise_db.p50
        );
        println!(
            "self-interruptions at {} dB: {} of {} replies with AEC, {} without",
            s.gain_db, s.self_interruptions_aec, s.replies, s.self_interruptions_no_aec
        );
        println!(
            "interruptions at 0 dB: {}/{} detected, {} within 150 ms, latency p50 {:.0} ms (no echo: p50 {:.0} ms, {} within 150 ms); double-talk WER {:.2} (clean {:.2}, clean through the canceller {:.2})",
            i.detected,
            i.trials,
            i.detected_within_150ms,
            i.latency_ms.as_ref().map(|l| l.p50).unwrap_or(f64::NAN),
            i.no_echo_latency_ms.as_ref().map(|l| l.p50).unwrap_or(f64::NAN),
            i.no_echo_within_150ms,
            i.double_talk_wer,
            i.clean_wer,
            i.clean_through_aec_wer
        );
        let np = &i.no_echo_path;
        println!(
            "no echo path (earbuds), canceller on: {}/{} detected, {} within 150 ms; over a fresh canceller's first reply {} detected, {} within 150 ms",
            np.detected, i.trials, np.detected_within_150ms, np.first_reply_detected, np.first_reply_within_150ms
        );
        println!("linear output: double-talk WER {:.2}, clean through it {:.2}", i.double_talk_linear_wer, i.clean_through_linear_wer);
        println!("AEC real-time factor {:.3}; wall {:.0} s", report.aec_rtf, report.wall_s);
    }
    Ok(())
}
