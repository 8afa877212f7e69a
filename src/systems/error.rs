//! What running or loading a system can fail with: the crates' own errors, kept typed up to
//! the binary, and the few that belong to the systems layer.

use std::path::PathBuf;

/// An error of a system's recipe or of loading a checkpoint by kind.
#[derive(Debug, thiserror::Error)]
pub enum SystemError {
    #[error(transparent)]
    Train(#[from] metron_train::TrainError),
    #[error(transparent)]
    Dataset(#[from] metron_datasets::DatasetError),
    #[error(transparent)]
    Core(#[from] metron_core::Error),
    #[error(transparent)]
    Sampler(#[from] metron_samplers::SamplerError),
    #[error("--pretrained {path}: {source}")]
    Pretrained {
        path: PathBuf,
        #[source]
        source: metron_backbones::BackboneError,
    },
    #[error(
        "{path}: the checkpoint holds a '{kind}' model, which no system of this build knows (known: {known})"
    )]
    UnknownKind {
        path: PathBuf,
        kind: String,
        known: String,
    },
    /// Flags that contradict each other or the stored run.
    #[error("{0}")]
    Usage(String),
}
