use std::path::PathBuf;

/// Result alias of metron-backbones.
pub type Result<T, E = BackboneError> = std::result::Result<T, E>;

/// What can go wrong building a backbone or loading its weights.
#[derive(Debug, thiserror::Error)]
pub enum BackboneError {
    /// A backbone name that is not in the registry was asked for.
    #[error("unknown backbone '{name}' (known: {known})")]
    UnknownName {
        /// The name that was asked for.
        name: String,
        /// The registry's names, comma-separated, for the message.
        known: String,
    },

    /// The checkpoint file is missing or cannot be read or decoded.
    #[error("{path}: cannot read the checkpoint: {why}")]
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What the reader reported.
        why: String,
    },

    /// A strict load found model parameters that the checkpoint does not provide.
    #[error(
        "{path}: {count} parameter(s) of the model are missing from the checkpoint, first: {first} (load with partial loading to allow this)"
    )]
    MissingKeys {
        /// The checkpoint file.
        path: PathBuf,
        /// How many model parameters are missing.
        count: usize,
        /// The first missing parameter's key, in metron's naming.
        first: String,
    },

    /// A strict load found checkpoint tensors that match no model parameter (and no tolerated
    /// prefix).
    #[error(
        "{path}: {count} tensor(s) of the checkpoint match no parameter of the model, first: {first} (load with partial loading to allow this)"
    )]
    UnusedKeys {
        /// The checkpoint file.
        path: PathBuf,
        /// How many checkpoint tensors went unused.
        count: usize,
        /// The first unused tensor's key, after renaming.
        first: String,
    },

    /// A checkpoint tensor could not be applied to its parameter, typically a shape mismatch
    /// (an error in every [`crate::LoadMode`]).
    #[error("{path}: {why}")]
    Mismatch {
        /// The checkpoint file.
        path: PathBuf,
        /// The first failure (key and both shapes), and how many more there were.
        why: String,
    },

    /// A configuration or argument is unusable: zero sizes, heads not dividing the width, an
    /// unknown stage name, an invalid key pattern. The message says which.
    #[error("{0}")]
    InvalidConfig(String),
}
