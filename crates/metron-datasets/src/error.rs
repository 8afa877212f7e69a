use std::path::PathBuf;

/// Result alias of metron-datasets.
pub type Result<T, E = DatasetError> = std::result::Result<T, E>;

/// What can be wrong with a dataset on disk. Every variant names the file (and line) so the
/// message alone says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error(
        "{path}: dataset root not found (set it with --root or the {env} environment variable)"
    )]
    MissingRoot { path: PathBuf, env: String },

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{path}:{line}: {what}")]
    Line {
        path: PathBuf,
        line: usize,
        what: String,
    },

    #[error("{path}: {what}")]
    Layout { path: PathBuf, what: String },

    #[error("{path}: cannot decode the image: {why}")]
    Image { path: PathBuf, why: String },

    #[error("datasets.toml: {0}")]
    Registry(String),

    /// The decoding thread ended before delivering every batch (it panicked, for instance in
    /// a transform): an epoch with missing batches is never passed off as a full one.
    #[error("the batch loader stopped after {delivered} of {expected} batches: {why}")]
    LoaderStopped {
        delivered: usize,
        expected: usize,
        why: String,
    },

    #[error("{dataset}: unknown split '{split}' (known: {known})")]
    UnknownSplit {
        dataset: String,
        split: String,
        known: String,
    },
}

impl DatasetError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DatasetError::Io {
            path: path.into(),
            source,
        }
    }
}
