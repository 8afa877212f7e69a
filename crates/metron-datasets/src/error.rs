use std::path::PathBuf;

/// Result alias of metron-datasets.
pub type Result<T, E = DatasetError> = std::result::Result<T, E>;

/// What can be wrong with a dataset on disk. Every variant names the file (and line) so the
/// message alone says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// The dataset's root folder does not exist (or is not a folder).
    #[error(
        "{path}: dataset root not found (set it with --root or the {env} environment variable)"
    )]
    MissingRoot {
        /// The root folder that was looked for.
        path: PathBuf,
        /// The environment variable that sets this dataset's root, e.g. `METRON_CVUSA_ROOT`.
        env: String,
    },

    /// A file could not be opened or read.
    #[error("{path}: {source}")]
    Io {
        /// The file that could not be read.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },

    /// One line of a text file (a split list, a label file) could not be parsed.
    #[error("{path}:{line}: {what}")]
    Line {
        /// The text file holding the bad line.
        path: PathBuf,
        /// The bad line's number, counted from 1.
        line: usize,
        /// What is wrong with the line.
        what: String,
    },

    /// A file or folder exists but its content or structure is not what the dataset's layout
    /// promises (a missing variable, mismatched counts, a corrupt archive).
    #[error("{path}: {what}")]
    Layout {
        /// The file or folder that does not match the layout.
        path: PathBuf,
        /// What is wrong with it.
        what: String,
    },

    /// An image file's bytes are corrupt or in an unsupported format.
    #[error("{path}: cannot decode the image: {why}")]
    Image {
        /// The image file that failed to decode.
        path: PathBuf,
        /// The decoder's message.
        why: String,
    },

    /// The dataset registry (`datasets.toml`) cannot be parsed, has no entry by the name asked
    /// for, or an entry's reader does not fit the request; the message names the entry at fault.
    #[error("datasets.toml: {0}")]
    Registry(String),

    /// The decoding thread ended before delivering every batch (it panicked, for instance in
    /// a transform): an epoch with missing batches is never passed off as a full one.
    #[error("the batch loader stopped after {delivered} of {expected} batches: {why}")]
    LoaderStopped {
        /// How many batches were delivered before the loader stopped.
        delivered: usize,
        /// How many batches the epoch should have had.
        expected: usize,
        /// Why the decoding thread stopped: its panic message when it panicked.
        why: String,
    },

    /// A split was asked for by a name the dataset does not have.
    #[error("{dataset}: unknown split '{split}' (known: {known})")]
    UnknownSplit {
        /// The dataset that was searched.
        dataset: String,
        /// The split name that was asked for.
        split: String,
        /// The dataset's split names, comma-separated.
        known: String,
    },

    /// A transform's parameter, or the input it is given, is out of range (a zero size, a
    /// radius that is not positive and finite, a pixel buffer of the wrong length).
    #[error("{field}: {why}")]
    InvalidArgument {
        /// The parameter or argument at fault, e.g. `PolarTransform.radius`.
        field: String,
        /// What is wrong with it and what was given.
        why: String,
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
