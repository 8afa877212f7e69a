use std::path::PathBuf;

/// Result alias used across metron-core.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in metron-core. Each variant names the file (and where it
/// applies the line or field) so the message alone tells the user what to fix.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be opened, read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A file exists but its content is not what its format promises.
    #[error("{path}: {what}")]
    Format { path: PathBuf, what: String },

    /// One line of a text file could not be parsed.
    #[error("{path}:{line}: {what}")]
    Line {
        path: PathBuf,
        line: usize,
        what: String,
    },

    /// An array has a dtype this reader does not accept.
    #[error("{path}: unsupported dtype {dtype} ({expected})")]
    Dtype {
        path: PathBuf,
        dtype: String,
        expected: &'static str,
    },

    /// An array has the wrong number of dimensions or the wrong extent.
    #[error("{context}: expected shape {expected}, got {got:?}")]
    Shape {
        context: String,
        expected: String,
        got: Vec<usize>,
    },

    /// A value is NaN or infinite where finite numbers are required.
    #[error("{context}: row {row}, column {col} is {value} (NaN/Inf embeddings are not allowed)")]
    NonFinite {
        context: String,
        row: usize,
        col: usize,
        value: f64,
    },

    /// A device string names an unknown backend or a backend that was not compiled in.
    #[error("device '{spec}': {why}")]
    Device { spec: String, why: String },

    /// A caller-supplied argument is out of range.
    #[error("{0}")]
    InvalidArgument(String),
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn format(path: impl Into<PathBuf>, what: impl Into<String>) -> Self {
        Error::Format {
            path: path.into(),
            what: what.into(),
        }
    }
}
