//! The one way a config value is refused (issue 17 §7): every section's `validate()` returns a
//! typed error that names the TOML key — [`ConfigError`] here, `audio::AudioError::InvalidConfig`,
//! `cloud::CloudError::InvalidConfig`, `lm::LmError::Setting`, `asr::AsrError::Setting` and
//! `tts::TtsError::Setting` in the stage crates — and `Config::validate` runs
//! them all. `firstword check-config` prints the first one.

use std::ops::RangeInclusive;

/// A config value the types cannot refuse (a range, a relation between keys, a path that
/// must be set).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A value of this crate's sections: `key` is its TOML key (`turn.opener_words`), and
    /// the message reads `{key}{problem}` (`turn.opener_words = 0 (must be 1..16)`).
    #[error("{key}{problem}")]
    Invalid { key: String, problem: String },
    /// A value of an audio section (`[vad]`, `[audio.simulated_echo]`).
    #[error(transparent)]
    Audio(#[from] audio::AudioError),
    /// A value of the `[asr]` table.
    #[error(transparent)]
    Asr(#[from] asr::AsrError),
    /// A value of the `[tts]` table.
    #[error(transparent)]
    Tts(#[from] tts::TtsError),
    /// A value of the cloud client's section.
    #[error(transparent)]
    Cloud(#[from] cloud::CloudError),
    /// A value of a μLM section (`[gate]`, `[endpoint]`).
    #[error(transparent)]
    Lm(#[from] lm::LmError),
}

impl ConfigError {
    /// `key` refused because of `problem` (the rest of the message after the key).
    pub fn invalid(key: &str, problem: String) -> Self {
        Self::Invalid { key: key.to_owned(), problem }
    }

    /// `key = value` must lie in `range` (a NaN never does): the message reads
    /// `{key} = {value} (must be {lo}..{hi})`.
    pub fn check_range<T: PartialOrd + std::fmt::Display>(key: &str, value: T, range: RangeInclusive<T>) -> Result<(), Self> {
        if range.contains(&value) {
            return Ok(());
        }
        Err(Self::invalid(key, format!(" = {value} (must be {}..{})", range.start(), range.end())))
    }

    /// The TOML key the error names, where it is one of this crate's (the stage crates'
    /// errors name theirs in their message).
    pub fn key(&self) -> Option<&str> {
        match self {
            Self::Invalid { key, .. } => Some(key),
            Self::Audio(audio::AudioError::InvalidConfig { key, .. }) => Some(key),
            Self::Cloud(cloud::CloudError::InvalidConfig { key, .. }) => Some(key),
            Self::Lm(lm::LmError::Setting { key, .. }) => Some(key),
            Self::Asr(asr::AsrError::Setting { key, .. }) | Self::Tts(tts::TtsError::Setting { key, .. }) => Some(key),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_starts_with_the_key() {
        let e = ConfigError::invalid("turn.opener_words", " = 0 (must be 1..16)".into());
        assert_eq!(e.to_string(), "turn.opener_words = 0 (must be 1..16)");
        assert_eq!(e.key(), Some("turn.opener_words"));
    }

    #[test]
    fn a_range_check_refuses_what_is_outside_and_nan() {
        assert!(ConfigError::check_range("a", 1.0, 0.0..=1.0).is_ok());
        let e = ConfigError::check_range("turn.filler_after_ms", 1e9, 0.0..=60_000.0).unwrap_err();
        assert_eq!(e.to_string(), "turn.filler_after_ms = 1000000000 (must be 0..60000)");
        assert!(ConfigError::check_range("a", f64::NAN, 0.0..=1.0).is_err());
        assert!(ConfigError::check_range("n", 17usize, 1..=16).is_err());
    }
}
