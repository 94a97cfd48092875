//! The one way a config value is refused (issue 17 §7): every section's `validate()` returns a
//! typed error that names the TOML key — [`ConfigError`] here, `audio::AudioError::InvalidConfig`,
//! `cloud::CloudError::InvalidConfig` and `lm::LmError::Setting` in the stage crates — and `Config::validate` runs
//! them all. `firstword check-config` prints the first one.

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

    /// The TOML key the error names, where it is one of this crate's (the stage crates'
    /// errors name theirs in their message).
    pub fn key(&self) -> Option<&str> {
        match self {
            Self::Invalid { key, .. } => Some(key),
            Self::Audio(audio::AudioError::InvalidConfig { key, .. }) => Some(key),
            Self::Cloud(cloud::CloudError::InvalidConfig { key, .. }) => Some(key),
            Self::Lm(lm::LmError::Setting { key, .. }) => Some(key),
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
}
