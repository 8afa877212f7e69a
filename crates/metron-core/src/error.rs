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
        /// The file (or directory) being accessed.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// A file exists but its content is not what its format promises.
    #[error("{path}: {what}")]
    Format {
        /// The malformed file.
        path: PathBuf,
        /// What is wrong with its content.
        what: String,
    },

    /// One line of a text file could not be parsed.
    #[error("{path}:{line}: {what}")]
    Line {
        /// The text file.
        path: PathBuf,
        /// The offending line, 1-based.
        line: usize,
        /// Why the line was rejected.
        what: String,
    },

    /// An array has a dtype this reader does not accept.
    #[error("{path}: unsupported dtype {dtype} ({expected})")]
    Dtype {
        /// The file holding the array.
        path: PathBuf,
        /// The dtype found, as the file spells it (e.g. `<i8` in `.npy`, `I32` in safetensors).
        dtype: String,
        /// The dtypes this reader accepts, worded for the message.
        expected: &'static str,
    },

    /// An array has the wrong number of dimensions or the wrong extent.
    #[error("{context}: expected shape {expected}, got {got:?}")]
    Shape {
        /// What was being read, e.g. `embeddings in <file>`.
        context: String,
        /// The accepted shape, e.g. `[N, D] (rank 2)`.
        expected: String,
        /// The shape found.
        got: Vec<usize>,
    },

    /// A value is NaN or infinite where finite numbers are required.
    #[error("{context}: row {row}, column {col} is {value} (NaN/Inf embeddings are not allowed)")]
    NonFinite {
        /// What was being checked, typically the file name.
        context: String,
        /// Row (0-based) of the first non-finite value in row-major order.
        row: usize,
        /// Column (0-based) of that value.
        col: usize,
        /// The value found: NaN or an infinity.
        value: f64,
    },

    /// A device string names an unknown backend or a backend that was not compiled in.
    #[error("device '{spec}': {why}")]
    Device {
        /// The device string as given, e.g. `cuda:0`.
        spec: String,
        /// Why it was rejected, with the accepted forms or the cargo feature to enable.
        why: String,
    },

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
