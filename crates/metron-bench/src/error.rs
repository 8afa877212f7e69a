use std::path::{Path, PathBuf};

/// What can go wrong in a benchmark run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A file or process could not be read, written or started.
    #[error("{path}: {source}")]
    Io {
        /// The file, directory or program.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A job could not be set up or failed while running.
    #[error("job failed: {0}")]
    Job(String),
    /// A process did not print a valid measurement, or exited with an error.
    #[error("measurement protocol: {0}")]
    Protocol(String),
    /// The previous report's data block is malformed.
    #[error("{path}: {message}")]
    Report {
        /// The report file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// metron-core's I/O or device errors (they name their file).
    #[error(transparent)]
    Core(#[from] metron_core::Error),
    /// A picture could not be drawn or written.
    #[error("chart: {0}")]
    Chart(#[from] metron_viz::VizError),
    /// Bad arguments.
    #[error("{0}")]
    Usage(String),
}

impl BenchError {
    /// An I/O error on `path`.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        BenchError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// `Result` with a [`BenchError`].
pub type Result<T> = std::result::Result<T, BenchError>;
