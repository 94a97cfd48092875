//! Typed errors of the μLM runtime. Every checkpoint problem names the tensor or key involved,
//! so a bad export is diagnosable from the message alone.

use std::path::PathBuf;

/// Everything that can go wrong in the `lm` crate.
#[derive(Debug, thiserror::Error)]
pub enum LmError {
    /// A preset name that is not one of the paper's five variants (or the test preset).
    #[error("unknown μLM preset {0:?}; expected one of 64-2, 256-8, 256-16, 384-8, 384-16, 512-8")]
    UnknownPreset(String),
    /// The model config is internally inconsistent (e.g. hidden not divisible by heads).
    #[error("invalid model config: {0}")]
    InvalidConfig(String),
    /// A tensor the architecture needs is absent from the checkpoint.
    #[error("missing tensor `{name}` in {file}")]
    MissingTensor { name: String, file: String },
    /// The checkpoint holds a tensor the architecture does not use (e.g. an untied `lm_head.weight`).
    #[error("unexpected tensor `{name}` in {file} (the μLM has no such weight; tied embeddings mean no separate LM head)")]
    UnexpectedTensor { name: String, file: String },
    /// A tensor has the wrong shape for the configured architecture.
    #[error("tensor `{name}`: expected shape {expected:?}, found {found:?}")]
    ShapeMismatch { name: String, expected: Vec<usize>, found: Vec<usize> },
    /// A tensor is stored in a dtype the loader does not handle.
    #[error("tensor `{name}`: unsupported dtype {dtype}")]
    UnsupportedDtype { name: String, dtype: String },
    /// mulm.json and the checkpoint (GGUF metadata, tokenizer) disagree.
    #[error("config mismatch for `{key}`: mulm.json says {expected}, {source_name} says {found}")]
    ConfigMismatch { key: String, expected: String, found: String, source_name: String },
    /// A metadata key that the GGUF reader needs is absent or has the wrong type.
    #[error("GGUF metadata `{key}`: {problem}")]
    GgufMetadata { key: String, problem: String },
    /// A special token listed in mulm.json is missing from tokenizer.json or has another id.
    #[error("special token {content:?}: mulm.json id {expected}, tokenizer.json id {found:?}")]
    SpecialTokenMismatch { content: String, expected: u32, found: Option<u32> },
    /// A chat template refers to a special-token name that `special_tokens` does not define.
    #[error("chat template refers to unknown special token name {0:?}")]
    UnknownSpecialName(String),
    /// Filesystem errors, with the path involved.
    #[error("I/O error on {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    /// mulm.json could not be parsed or written.
    #[error("JSON error in {path}: {source}")]
    Json { path: PathBuf, source: serde_json::Error },
    /// tokenizers-crate errors (loading, encoding, decoding, training).
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// The prompt does not fit the context window (tokens).
    #[error("prompt of {tokens} tokens does not fit the context of {max} tokens")]
    PromptTooLong { tokens: usize, max: usize },
    /// A caller-supplied argument is out of range.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A config value of an `lm` section (`[gate]`, `[endpoint]`): `key` is its TOML key
    /// and the message reads `{key}{problem}` (`gate.min_score = NaN (must be finite)`).
    #[error("{key}{problem}")]
    Setting { key: String, problem: String },
    /// No μLM checkpoint in `dir` (its mulm.json is missing).
    #[error(
        "no μLM checkpoint in {dir}: {dir}/mulm.json does not exist. The trained default ships in the \
         repository's models/mulm (`git checkout -- models/mulm`); pass --model DIR or set lm.model_dir \
         for another one, or write a random-weight development checkpoint with \
         `firstword lm dev-checkpoint --out {dir}`",
        dir = dir.display()
    )]
    MissingCheckpoint { dir: PathBuf },
    /// An error while loading the checkpoint file `path`.
    #[error("loading {path}: {source}", path = path.display())]
    Loading { path: PathBuf, source: Box<LmError> },
    /// A checkpoint directory with mulm.json but no weights file.
    #[error("μLM checkpoint {dir} has mulm.json but neither model.gguf nor model.safetensors", dir = dir.display())]
    NoWeights { dir: PathBuf },
    /// The chat template in mulm.json lacks what a runtime feature needs.
    #[error("mulm.json chat_template: {0}")]
    Template(String),
    /// Errors from candle's tensor operations.
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
}

/// Result alias for the crate.
pub type Result<T> = std::result::Result<T, LmError>;

impl LmError {
    /// Wrap an `std::io::Error` with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        LmError::Io { path: path.into(), source }
    }
    /// A closure that wraps an error as [`LmError::Loading`] of `path`.
    pub fn loading(path: &std::path::Path) -> impl FnOnce(LmError) -> LmError + '_ {
        move |e| LmError::Loading { path: path.to_path_buf(), source: Box::new(e) }
    }
    /// Config `key` refused because of `problem` (the rest of the message after the key).
    pub fn setting(key: &str, problem: String) -> Self {
        LmError::Setting { key: key.to_owned(), problem }
    }
    /// The TOML key a [`LmError::Setting`] names.
    pub fn key(&self) -> Option<&str> {
        match self {
            LmError::Setting { key, .. } => Some(key),
            _ => None,
        }
    }
    /// Wrap any tokenizers error (they are boxed `dyn Error`s) as text.
    pub fn tok(e: impl std::fmt::Display) -> Self {
        LmError::Tokenizer(e.to_string())
    }
}
