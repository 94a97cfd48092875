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
    /// A bad client URL or request.
    #[error("client: {0}")]
    Client(String),
}
