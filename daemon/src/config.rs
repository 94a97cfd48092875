//! The daemon's configuration: one TOML file, one table per stage
//! (documented key by key in configs/firstword.toml).

use std::path::Path;

use anyhow::{bail, Context, Result};
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
    pub turn: crate::turn::TurnConfig,
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
    pub fn validate(&self) -> Result<()> {
        self.vad.validate().map_err(anyhow::Error::msg)?;
        self.turn.validate().map_err(anyhow::Error::msg)?;
        if self.asr.threads > 256 {
            bail!("asr.threads = {} (at most 256)", self.asr.threads);
        }
        if !(0.25..=4.0).contains(&self.tts.length_scale) {
            bail!("tts.length_scale = {} (must be in 0.25..4.0)", self.tts.length_scale);
        }
        Ok(())
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
        assert!(err("[asr\n").to_lowercase().contains("line 1"));
    }

    #[test]
    fn shipped_config_is_valid() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/firstword.toml");
        Config::load(&p).unwrap();
    }
}
