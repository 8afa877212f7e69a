use std::path::PathBuf;

/// Result alias of metron-train.
pub type Result<T, E = TrainError> = std::result::Result<T, E>;

/// What can stop a run. Variants from the crates below keep their messages (which name the
/// file, line or field); the run's own problems name the run directory's file.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Core(#[from] metron_core::Error),
    #[error(transparent)]
    Dataset(#[from] metron_datasets::DatasetError),
    #[error(transparent)]
    Backbone(#[from] metron_backbones::BackboneError),
    #[error(transparent)]
    Descriptor(#[from] metron_descriptors::DescriptorError),
    #[error(transparent)]
    Loss(#[from] metron_losses::LossError),
    #[error(transparent)]
    Sampler(#[from] metron_samplers::SamplerError),
    #[error("evaluation: {0}")]
    Metrics(#[from] metron_metrics::Error),
    #[error(transparent)]
    Viz(#[from] metron_viz::VizError),

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A checkpoint, config or log in a run directory that cannot be used.
    #[error("{path}: {why}")]
    RunFile { path: PathBuf, why: String },

    #[error("invalid configuration: {0}")]
    Config(String),

    /// Fewer images arrived than the epoch or split holds: results over a part would pass for
    /// results over the whole.
    #[error("{what}: {got} of {expected} images arrived from the loader")]
    IncompleteData {
        what: String,
        got: usize,
        expected: usize,
    },

    /// The loss stopped being a number. The last checkpoint written (if any) is untouched.
    #[error(
        "the loss is {value} at epoch {epoch}, step {step}: training stopped{}. Lower the \
         learning rate, check the inputs for NaN, or resume from the checkpoint with other settings",
        match .checkpoint { Some(p) => format!("; the last good checkpoint is {}", p.display()), None => String::new() }
    )]
    NonFiniteLoss {
        epoch: usize,
        step: usize,
        value: f64,
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
