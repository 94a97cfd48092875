//! [`Tts`]: a loaded Piper voice that turns text into [`Pcm`], whole or
//! phrase by phrase.

use std::collections::HashSet;
use std::fs::File;
use std::ops::ControlFlow;
use std::path::Path;

use ort::session::Session;
use piper_rs::{ModelConfig, Piper};

use crate::pcm::{trim_silence, Pcm};
use crate::phonemize::{split_clauses, Clause, Phonemizer};
use crate::{runtime, TtsConfig, TtsError};

/// One clause of synthesized speech, ready to play.
#[derive(Debug, Clone, PartialEq)]
pub struct Phrase {
    /// The clause as written, with its punctuation.
    pub text: String,
    /// Its audio, trimmed if configured, followed by the configured clause or
    /// sentence silence (none after the last phrase of the text).
    pub pcm: Pcm,
    /// Whether a sentence ends with this phrase (`.` `?` `!`, a line break,
    /// or the end of the text).
    pub is_sentence_end: bool,
}

/// A loaded Piper voice. Loading takes a few hundred ms (model load plus one
/// warm-up inference); synthesis is then roughly proportional to the audio
/// length. `Send`, so it can live on a synthesis thread; synthesis takes
/// `&mut self` (piper-rs runs its onnxruntime session mutably), so one
/// request at a time per `Tts`.
pub struct Tts {
    piper: Piper,
    phonemizer: Phonemizer,
    cfg: TtsConfig,
    rate_hz: u32,
    noise_scale: f32,
    noise_w: f32,
    /// Clauses synthesized ahead of time ([`Tts::keep_phrases`]): phonemes → audio, before
    /// any clause or sentence silence. At most [`MAX_KEPT_CLAUSES`].
    kept: Vec<(String, Pcm)>,
}

/// Most clauses [`Tts::keep_phrases`] keeps (a few seconds of audio each, ≈ 100 KB).
pub const MAX_KEPT_CLAUSES: usize = 32;

impl std::fmt::Debug for Tts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tts").field("voice", &self.cfg.voice_onnx).field("rate_hz", &self.rate_hz).finish()
    }
}

impl Tts {
    /// Loads the voice: checks that every file exists (errors name the file),
    /// loads onnxruntime, the model and its config, and runs one warm-up
    /// inference so the first real request is not slowed by lazy setup.
    pub fn load(cfg: &TtsConfig) -> Result<Tts, TtsError> {
        for p in [&cfg.voice_onnx, &cfg.voice_json] {
            if !p.is_file() {
                return Err(TtsError::MissingModel { path: p.clone() });
            }
        }
        let model_config = read_voice_config(&cfg.voice_json)?;
        // Must precede any other ort call (see runtime::ensure_onnxruntime).
        runtime::ensure_onnxruntime(cfg.onnxruntime_lib.as_deref())?;
        let session = build_session(&cfg.voice_onnx, cfg.threads)?;

        let known: HashSet<char> = model_config.phoneme_id_map.keys().copied().collect();
        let phonemizer = Phonemizer::new(model_config.espeak.voice.clone(), known, cfg.espeak_data_dir.as_deref())?;
        let rate_hz = model_config.audio.sample_rate;
        let noise_scale = cfg.noise_scale.unwrap_or(model_config.inference.noise_scale);
        let noise_w = cfg.noise_w.unwrap_or(model_config.inference.noise_w);
        let mut tts = Tts {
            piper: Piper::from_session(session, model_config),
            phonemizer,
            cfg: cfg.clone(),
            rate_hz,
            noise_scale,
            noise_w,
            kept: Vec::new(),
        };

        // Warm-up: initializes espeak-ng (surfacing a missing data directory
        // here rather than mid-conversation) and onnxruntime's lazy kernels.
        let warm = tts.synthesize("Hello.")?;
        if warm.samples.is_empty() {
            return Err(TtsError::Synthesis("warm-up produced no audio".into()));
        }
        Ok(tts)
    }

    /// Output sample rate in Hz, from the voice config (22,050 for joe).
    pub fn sample_rate_hz(&self) -> u32 {
        self.rate_hz
    }

    /// The configuration this voice was loaded with.
    pub fn config(&self) -> &TtsConfig {
        &self.cfg
    }

    /// Synthesizes the clauses of `texts` now and keeps their audio, so that speaking them
    /// later costs no inference: for the fixed lines a turn may say at once (the daemon
    /// keeps the gate's bridges and the filler), whose first audio is then ready as soon as
    /// they are chosen. A kept clause always sounds the same (Piper samples its noise once).
    /// Clauses beyond [`MAX_KEPT_CLAUSES`] are not kept. Returns how many clauses are kept
    /// in all. Errors: as [`Tts::synthesize`].
    pub fn keep_phrases<S: AsRef<str>>(&mut self, texts: &[S]) -> Result<usize, TtsError> {
        for text in texts {
            for clause in split_clauses(text.as_ref()) {
                let Some(phonemes) = self.phonemizer.phonemes(&clause)? else { continue };
                if self.kept.len() >= MAX_KEPT_CLAUSES || self.kept.iter().any(|(p, _)| *p == phonemes) {
                    continue;
                }
                let pcm = self.infer(&phonemes)?;
                self.kept.push((phonemes, pcm));
            }
        }
        Ok(self.kept.len())
    }

    /// Speaks `text` (plain text; run Markdown through
    /// [`crate::normalize::for_speech`] first) and returns all of its audio:
    /// exactly the concatenation of [`Tts::synthesize_phrases`]' phrases.
    /// Text with nothing pronounceable gives empty audio, not an error.
    pub fn synthesize(&mut self, text: &str) -> Result<Pcm, TtsError> {
        let mut all = Pcm { samples: Vec::new(), rate_hz: self.rate_hz };
        self.synthesize_phrases(text, |p| {
            all.samples.extend_from_slice(&p.pcm.samples);
            ControlFlow::Continue(())
        })?;
        Ok(all)
    }

    /// Speaks `text` clause by clause, calling `on_phrase` as soon as each
    /// clause's audio is ready, so playback can start after the first clause
    /// (one inference) instead of the whole text. Return
    /// `ControlFlow::Break(())` to stop early (barge-in); the remaining
    /// clauses are not synthesized.
    pub fn synthesize_phrases<F>(&mut self, text: &str, mut on_phrase: F) -> Result<(), TtsError>
    where
        F: FnMut(Phrase) -> ControlFlow<()>,
    {
        // Phonemize everything first: it is cheap (well under 1 ms per
        // clause) and tells us which clause is the last audible one, which
        // gets no trailing silence.
        let mut spoken: Vec<(Clause, String)> = Vec::new();
        for clause in split_clauses(text) {
            match self.phonemizer.phonemes(&clause)? {
                Some(ph) => spoken.push((clause, ph)),
                None => {
                    // A silent clause still ends its sentence.
                    if clause.sentence_end {
                        if let Some((prev, _)) = spoken.last_mut() {
                            prev.sentence_end = true;
                        }
                    }
                }
            }
        }
        let n = spoken.len();
        for (i, (clause, phonemes)) in spoken.into_iter().enumerate() {
            let mut pcm = match self.kept.iter().find(|(p, _)| *p == phonemes) {
                Some((_, pcm)) => pcm.clone(),
                None => self.infer(&phonemes)?,
            };
            if i + 1 < n {
                let gap = if clause.sentence_end { self.cfg.sentence_silence_ms } else { self.cfg.clause_silence_ms };
                pcm.push_silence_ms(gap);
            }
            let phrase = Phrase { text: clause.text, pcm, is_sentence_end: clause.sentence_end };
            if on_phrase(phrase).is_break() {
                break;
            }
        }
        Ok(())
    }

    /// One Piper inference on a phoneme string.
    fn infer(&mut self, phonemes: &str) -> Result<Pcm, TtsError> {
        let (samples, rate_hz) = self
            .piper
            .create(phonemes, true, None, Some(self.cfg.length_scale), Some(self.noise_scale), Some(self.noise_w))
            .map_err(|e| TtsError::Synthesis(e.to_string()))?;
        let samples = if self.cfg.trim_silence { trim_silence(&samples, rate_hz).to_vec() } else { samples };
        Ok(Pcm { samples, rate_hz })
    }
}

/// Parses the voice's `.onnx.json` with piper-rs's own schema, so what we
/// accept is exactly what piper-rs can use.
fn read_voice_config(path: &Path) -> Result<ModelConfig, TtsError> {
    let bad = |reason: String| TtsError::BadVoiceConfig { path: path.to_path_buf(), reason };
    let file = File::open(path).map_err(|e| bad(e.to_string()))?;
    let cfg: ModelConfig = serde_json::from_reader(std::io::BufReader::new(file)).map_err(|e| bad(e.to_string()))?;
    if cfg.audio.sample_rate == 0 {
        return Err(bad("audio.sample_rate is 0".into()));
    }
    if cfg.phoneme_id_map.is_empty() {
        return Err(bad("phoneme_id_map is empty".into()));
    }
    Ok(cfg)
}

/// Builds the onnxruntime session ourselves (instead of `Piper::new`) to set
/// the thread count and stop idle worker threads from spinning: after each
/// inference onnxruntime's workers busy-wait by default, which would steal the
/// CPU the language model needs while the audio plays.
fn build_session(model: &Path, threads: usize) -> Result<Session, TtsError> {
    let err = |e: String| TtsError::ModelLoad { path: model.to_path_buf(), reason: e };
    let mut builder = Session::builder().map_err(|e| err(e.to_string()))?;
    if threads > 0 {
        builder = builder.with_intra_threads(threads).map_err(|e| err(e.to_string()))?;
    }
    builder = builder.with_inter_threads(1).map_err(|e| err(e.to_string()))?;
    builder = builder.with_config_entry("session.intra_op.allow_spinning", "0").map_err(|e| err(e.to_string()))?;
    builder.commit_from_file(model).map_err(|e| err(e.to_string()))
}
