//! Crate-level error type.

use crate::backend::BackendError;

/// Errors from the gateway and the client.
#[derive(Debug, thiserror::Error)]
pub enum CloudError {
    /// Invalid configuration (TOML, values).
    #[error("configuration: {0}")]
    Config(String),
    /// Socket / bind / accept failure.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The backend could not be built.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// A config value out of range or inconsistent: `key` is its TOML key
    /// (`backend.top_p`), and the message reads `configuration: {key}{problem}`.
    #[error("configuration: {key}{problem}")]
    InvalidConfig { key: String, problem: String },
    /// A bad client URL or request.
    #[error("client: {0}")]
    Client(String),
}

impl CloudError {
    /// [`CloudError::InvalidConfig`]: `key` refused because of `problem` (the message's rest).
    pub fn invalid_config(key: &str, problem: String) -> Self {
        Self::InvalidConfig { key: key.to_owned(), problem }
    }
}
