//! The daemon's configuration: one TOML file, one table per stage
//! (documented key by key in configs/firstword.toml).

use std::path::Path;

use anyhow::{Context, Result};

pub use crate::config_error::ConfigError;
use serde::Deserialize;

/// Path used when `--config` is not given and the file exists.
pub const DEFAULT_CONFIG: &str = "configs/firstword.toml";

/// Whole-daemon settings. Every table and key is optional; unknown keys are errors.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub asr: asr::AsrConfig,
    pub tts: tts::TtsConfig,
    pub vad: audio::vad::VadConfig,
    pub endpoint: lm::endpoint::EndpointConfig,
    pub gate: lm::gate::GateConfig,
    pub turn: crate::turn::TurnConfig,
    pub cloud: cloud::link::CloudSection,
    pub lm: lm::checkpoint::LmSection,
    pub audio: audio::settings::AudioSection,
    pub metrics: crate::live::settings::MetricsSection,
    pub log: crate::live::settings::LogSection,
    pub activation: audio::activation::ActivationConfig,
}

impl Config {
    /// Parses and validates `path`. Errors name the file and the key (TOML line/column
    /// and serde's field path for type and unknown-key errors).
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read config {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("invalid config {}", path.display()))
    }

    /// Parses and validates TOML text.
    pub fn parse(text: &str) -> Result<Self> {
        let cfg: Config = toml::from_str(text).map_err(|e| anyhow::anyhow!("{}", e.to_string().trim_end()))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// `path` if given, else [`DEFAULT_CONFIG`] if it exists, else the built-in defaults.
    pub fn load_or_default(path: Option<&Path>) -> Result<Self> {
        match path {
            Some(p) => Self::load(p),
            None if Path::new(DEFAULT_CONFIG).is_file() => Self::load(Path::new(DEFAULT_CONFIG)),
            None => Ok(Self::default()),
        }
    }

    /// Range checks that the types cannot express; messages name the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.vad.validate()?;
        self.endpoint.validate()?;
        self.gate.validate()?;
        self.turn.validate()?;
        self.cloud.validate()?;
        self.asr.validate()?;
        self.tts.validate()?;
        self.audio.validate()?;
        self.metrics.validate()?;
        self.activation.validate()?;
        Ok(self.lm.validate()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        format!("{:#}", Config::parse(text).unwrap_err())
    }

    #[test]
    fn empty_config_is_all_defaults() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.asr, asr::AsrConfig::default());
        assert_eq!(c.vad, audio::vad::VadConfig::default());
    }

    #[test]
    fn errors_name_the_key() {
        assert!(err("[asr]\nthreds = 2\n").contains("threds"));
        assert!(err("[asr]\nthreads = \"two\"\n").contains("threads"));
        assert!(err("[vad]\nthreshold = 1.5\n").contains("vad.threshold"));
        assert!(err("[vad]\nhangover_ms = 5\n").contains("vad.hangover_ms"));
        assert!(err("[tts]\nlength_scale = 9.0\n").contains("tts.length_scale"));
        assert!(err("[nonsense]\n").contains("nonsense"));
        assert!(err("[lm]\nthreads = 0\n").contains("lm.threads"));
        assert!(err("[lm]\nmodel_dir = \"\"\n").contains("lm.model_dir"));
        assert!(err("[lm]\nquant = \"q4\"\n").contains("quant"));
        assert!(err("[lm]\nthread = 1\n").contains("thread"));
        assert!(err("[asr\n").to_lowercase().contains("line 1"));
        assert!(err("[audio]\nbuffer_frames = 3\n").contains("audio.buffer_frames"));
        assert!(err("[audio]\ninput_device = \"\"\n").contains("audio.input_device"));
        assert!(err("[audio]\ncapture_buffer_ms = 10\n").contains("audio.capture_buffer_ms"));
        assert!(err("[audio]\noutput_wav = \"o.wav\"\n").contains("audio.output_wav"));
        assert!(err("[audio]\nsim_rate_hz = 100\n").contains("audio.sim_rate_hz"));
        assert!(err("[audio.simulated_echo]\ngain_db = 40\n").contains("audio.simulated_echo.gain_db"));
        assert!(err("[audio]\nsim_mic_outages = [[8.0, 3.0]]\n").contains("audio.sim_mic_outages"));
        assert!(err("[audio]\nsim_speaker_outages = [[-1.0, 3.0]]\n").contains("audio.sim_speaker_outages"));
        assert!(err("[audio]\nhalf_duplex_onset_ms = 5\n").contains("audio.half_duplex_onset_ms"));
        assert!(err("[audio]\ninput_devise = \"hw:0\"\n").contains("input_devise"));
        assert!(err("[metrics]\nlisten = \"localhost\"\n").contains("metrics.listen"));
        assert!(err("[log]\ntranscripts = \"yes\"\n").contains("transcripts"));
        assert!(err("[turn]\nconversation_idle_s = -1\n").contains("turn.conversation_idle_s"));
        assert!(err("[turn]\nconversation_end_phrases = [\"\"]\n").contains("turn.conversation_end_phrases"));
        assert!(err("[turn]\ncloud_history_turns = 65\n").contains("turn.cloud_history_turns"));
        assert!(err("[turn]\ncloud_history_tokens = 5000\n").contains("turn.cloud_history_tokens"));
        assert!(err("[turn]\nmulm_history_tokens = 5000\n").contains("turn.mulm_history_tokens"));
        assert!(err("[tts]\nclause_silence_ms = 4000000000\n").contains("tts.clause_silence_ms"));
        assert!(err("[tts]\nsentence_silence_ms = 100000\n").contains("tts.sentence_silence_ms"));
        assert!(err("[tts]\nnoise_w = nan\n").contains("tts.noise_w"));
        assert!(err("[cloud]\nlocal_latency_jitter_ms = nan\n").contains("cloud.local_latency_jitter_ms"));
        assert!(err("[cloud]\nlocal_latency_ms = inf\n").contains("cloud.local_latency_ms"));
        assert!(err("[cloud]\nurl = \"ws://10.1.2.3:8787\"\n").contains("cloud.url"));
        Config::parse("[cloud]\nurl = \"ws://10.1.2.3:8787\"\nallow_insecure = true\n").unwrap();
        Config::parse("[cloud]\nurl = \"ws://127.0.0.1:8787\"\n").unwrap();
        assert!(err("[activation]\nmode = \"sometimes\"\n").contains("mode"));
        assert!(err("[activation]\nwake_threshold = 0\n").contains("activation.wake_threshold"));
        assert!(err("[activation]\nmode = \"push_to_talk\"\n").contains("activation.ptt_device"));
    }

    #[test]
    fn shipped_config_is_valid() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/firstword.toml");
        Config::load(&p).unwrap();
    }
}
