//! One error type for the whole public API. Every message says what was wrong and, where it
//! helps, what to do about it.

use std::fmt;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no GPU adapter found: {0}")]
    NoAdapter(String),

    #[error(
        "the GPU adapter '{adapter}' lacks a required limit: {limit} needs {needed}, the device offers {available}"
    )]
    Limit { adapter: String, limit: &'static str, needed: u64, available: u64 },

    #[error("could not open the GPU device: {0}")]
    Device(String),

    #[error("the GPU device was lost ({0}); create a new session")]
    DeviceLost(String),

    #[error("GPU error: {0}")]
    Gpu(String),

    #[error("{path}: {message}")]
    File { path: String, message: String },

    #[error("config.json: {0}")]
    Config(String),

    #[error("checkpoint {file}: {message}")]
    Checkpoint { file: String, message: String },

    #[error("tensor '{name}': expected shape {expected:?}, found {found:?}")]
    Shape { name: String, expected: Vec<usize>, found: Vec<usize> },

    #[error("tokenizer: {0}")]
    Tokenizer(String),

    #[error("invalid input: {0}")]
    Input(String),

    #[error("invalid option: {0}")]
    Options(String),

    #[error("cancelled")]
    Cancelled,
}

impl Error {
    pub(crate) fn checkpoint(file: impl fmt::Display, message: impl fmt::Display) -> Self {
        Error::Checkpoint { file: file.to_string(), message: message.to_string() }
    }
    pub(crate) fn config(message: impl fmt::Display) -> Self {
        Error::Config(message.to_string())
    }
    pub(crate) fn input(message: impl fmt::Display) -> Self {
        Error::Input(message.to_string())
    }
    pub(crate) fn options(message: impl fmt::Display) -> Self {
        Error::Options(message.to_string())
    }
}
