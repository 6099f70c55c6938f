//! The one error type of edgeseek. Every variant says what went wrong and where
//! (file, tensor, limit), in words a user can act on.

use std::fmt;
use std::path::{Path, PathBuf};

/// Everything that can go wrong while loading or running a model.
#[derive(Debug)]
pub enum Error {
    /// The file could not be opened or read.
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is not what it claims to be: truncated, inconsistent, out of bounds.
    BadFile { path: PathBuf, problem: String },
    /// The file is well formed but asks for something edgeseek does not support
    /// (an architecture, a weight type, a hyperparameter combination).
    Unsupported { path: PathBuf, what: String },
    /// No usable GPU adapter, or the adapter lacks something we need.
    Gpu(String),
    /// The model does not fit a device limit or a budget the caller set.
    Limit {
        what: String,
        needed: u64,
        limit: u64,
        /// What `needed` and `limit` count: "bytes", "workgroups", "queries".
        unit: &'static str,
    },
    /// A caller-supplied option or input is invalid.
    Invalid(String),
    /// A fault inside edgeseek: something its own code should have ruled out. Please
    /// report it with the message.
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn bad_file(path: &Path, problem: impl Into<String>) -> Self {
        Error::BadFile {
            path: path.to_path_buf(),
            problem: problem.into(),
        }
    }
    pub fn unsupported(path: &Path, what: impl Into<String>) -> Self {
        Error::Unsupported {
            path: path.to_path_buf(),
            what: what.into(),
        }
    }
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { path, source } => write!(f, "{}: {source}", path.display()),
            Error::BadFile { path, problem } => {
                write!(f, "{}: bad file: {problem}", path.display())
            }
            Error::Unsupported { path, what } => {
                write!(f, "{}: unsupported: {what}", path.display())
            }
            Error::Gpu(msg) => write!(f, "GPU: {msg}"),
            Error::Limit {
                what,
                needed,
                limit,
                unit,
            } => {
                write!(
                    f,
                    "{what} needs {needed} {unit} but the limit is {limit} {unit}"
                )
            }
            Error::Invalid(msg) => write!(f, "invalid input: {msg}"),
            Error::Internal(msg) => write!(f, "internal error (a bug in edgeseek): {msg}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
