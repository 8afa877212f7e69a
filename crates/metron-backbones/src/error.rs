use std::path::PathBuf;

/// Result alias of metron-backbones.
pub type Result<T, E = BackboneError> = std::result::Result<T, E>;

/// What can go wrong building a backbone or loading its weights.
#[derive(Debug, thiserror::Error)]
pub enum BackboneError {
    #[error("unknown backbone '{name}' (known: {known})")]
    UnknownName { name: String, known: String },

    #[error("{path}: cannot read the checkpoint: {why}")]
    Checkpoint { path: PathBuf, why: String },

    #[error(
        "{path}: {count} parameter(s) of the model are missing from the checkpoint, first: {first} (load with partial loading to allow this)"
    )]
    MissingKeys {
        path: PathBuf,
        count: usize,
        first: String,
    },

    #[error(
        "{path}: {count} tensor(s) of the checkpoint match no parameter of the model, first: {first} (load with partial loading to allow this)"
    )]
    UnusedKeys {
        path: PathBuf,
        count: usize,
        first: String,
    },

    #[error("{path}: {why}")]
    Mismatch { path: PathBuf, why: String },

    #[error("{0}")]
    InvalidConfig(String),
}
