//! The one error type of the experiments' entry points.

use core::fmt;
use std::path::{Path, PathBuf};

use burn_nalu::ConfigError;

/// Why an experiment could not start, or its results could not be written or read.
#[derive(Debug)]
pub enum ExperimentError {
    /// An invalid setting; the message names it (`TrainConfig.budget …`).
    Config(ConfigError),
    /// Runs that cannot train as one population (no runs, different input widths or training
    /// row counts), or data that does not fit the training loop.
    Data(String),
    /// A file or directory could not be read or written.
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// A file's contents could not be parsed, or a value could not be written in its format.
    Format {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A run cannot be resumed from its directory (other settings, another task).
    Resume(String),
    /// A setting that its protocol does not take, or that contradicts another: both named.
    Setting(String),
}

impl ExperimentError {
    /// An I/O error on `path`.
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// A format error in `path`.
    pub(crate) fn format(path: &Path, message: impl fmt::Display) -> Self {
        Self::Format {
            path: path.to_path_buf(),
            message: message.to_string(),
        }
    }
}

impl fmt::Display for ExperimentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Config(err) => err.fmt(f),
            Self::Data(message) | Self::Resume(message) | Self::Setting(message) => {
                f.write_str(message)
            }
            Self::Io { path, source } => write!(f, "{}: {source}", path.display()),
            Self::Format { path, message } => write!(f, "{}: {message}", path.display()),
        }
    }
}

impl std::error::Error for ExperimentError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Config(err) => Some(err),
            Self::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<ConfigError> for ExperimentError {
    fn from(err: ConfigError) -> Self {
        Self::Config(err)
    }
}
