//! What running or loading a system can fail with: the crates' own errors, kept typed up to
//! the binary, and the few that belong to the systems layer.

use std::path::PathBuf;

/// An error of a system's recipe or of loading a checkpoint by kind.
#[derive(Debug, thiserror::Error)]
pub enum SystemError {
    /// Training, a checkpoint or a run directory failed.
    #[error(transparent)]
    Train(#[from] metron_train::TrainError),
    /// A dataset or registry that cannot be read.
    #[error(transparent)]
    Dataset(#[from] metron_datasets::DatasetError),
    /// A file, format, shape or device problem reported by metron-core.
    #[error(transparent)]
    Core(#[from] metron_core::Error),
    /// A batch sampler configuration the training split cannot satisfy.
    #[error(transparent)]
    Sampler(#[from] metron_samplers::SamplerError),
    /// Clustering or a metric failed (empty sets, NaN embeddings, K larger than the set).
    #[error(transparent)]
    Metrics(#[from] metron_metrics::Error),
    /// A backbone could not be built or found in the backbone table.
    #[error(transparent)]
    Backbone(#[from] metron_backbones::BackboneError),
    /// The `--pretrained` weights cannot be read or do not fit the backbone.
    #[error("--pretrained {path}: {source}")]
    Pretrained {
        /// The weights file given with `--pretrained`.
        path: PathBuf,
        /// Why loading it failed.
        #[source]
        source: metron_backbones::BackboneError,
    },
    /// A checkpoint whose model kind no system of this build knows.
    #[error(
        "{path}: the checkpoint holds a '{kind}' model, which no system of this build knows (known: {known})"
    )]
    UnknownKind {
        /// The checkpoint.
        path: PathBuf,
        /// The model kind it records.
        kind: String,
        /// The kinds this build knows, comma-separated.
        known: String,
    },
    /// Flags that contradict each other or the stored run.
    #[error("{0}")]
    Usage(String),
}
