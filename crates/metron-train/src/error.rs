use std::path::PathBuf;

/// Result alias of metron-train.
pub type Result<T, E = TrainError> = std::result::Result<T, E>;

/// What can stop a run. Variants from the crates below keep their messages (which name the
/// file, line or field); the run's own problems name the run directory's file.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A file, format, shape or device problem reported by metron-core.
    #[error(transparent)]
    Core(#[from] metron_core::Error),
    /// A dataset that cannot be read or loaded.
    #[error(transparent)]
    Dataset(#[from] metron_datasets::DatasetError),
    /// A backbone that cannot be built or loaded.
    #[error(transparent)]
    Backbone(#[from] metron_backbones::BackboneError),
    /// A descriptor head with invalid settings or inputs.
    #[error(transparent)]
    Descriptor(#[from] metron_descriptors::DescriptorError),
    /// A loss with invalid settings or inputs.
    #[error(transparent)]
    Loss(#[from] metron_losses::LossError),
    /// A batch sampler configuration the training split cannot satisfy.
    #[error(transparent)]
    Sampler(#[from] metron_samplers::SamplerError),
    /// The retrieval evaluation refused its inputs (empty set, bad K, NaN embeddings).
    #[error("evaluation: {0}")]
    Metrics(#[from] metron_metrics::Error),
    /// A plot or image grid that cannot be drawn or written.
    #[error(transparent)]
    Viz(#[from] metron_viz::VizError),

    /// Reading or writing a file or directory failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },

    /// A checkpoint, config or log in a run directory that cannot be used.
    #[error("{path}: {why}")]
    RunFile {
        /// The file in the run directory.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },

    /// A setting that is out of range or inconsistent with the model; the message names it.
    #[error("invalid configuration: {0}")]
    Config(String),

    /// Fewer images arrived than the epoch or split holds: results over a part would pass for
    /// results over the whole.
    #[error("{what}: {got} of {expected} images arrived from the loader")]
    IncompleteData {
        /// The pass that came up short, e.g. `training epoch 3` or `embedding`.
        what: String,
        /// Images that arrived (decoded or skipped).
        got: usize,
        /// Images the epoch or split holds.
        expected: usize,
    },

    /// The loss stopped being a number. The last checkpoint written (if any) is untouched.
    #[error(
        "the loss is {value} at epoch {epoch}, step {step}: training stopped{}. Lower the \
         learning rate, check the inputs for NaN, or resume from the checkpoint with other settings",
        match .checkpoint { Some(p) => format!("; the last good checkpoint is {}", p.display()), None => String::new() }
    )]
    NonFiniteLoss {
        /// The epoch that failed, 1-based.
        epoch: usize,
        /// The training step within that epoch, 1-based.
        step: usize,
        /// The loss value (NaN or infinite).
        value: f64,
        /// The last checkpoint on disk, if one was written.
        checkpoint: Option<PathBuf>,
    },
}

impl TrainError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        TrainError::Io {
            path: path.into(),
            source,
        }
    }

    /// A run file (checkpoint, config, log) that is wrong in the way `why` says.
    pub fn run_file(path: impl Into<PathBuf>, why: impl Into<String>) -> Self {
        TrainError::RunFile {
            path: path.into(),
            why: why.into(),
        }
    }
}
