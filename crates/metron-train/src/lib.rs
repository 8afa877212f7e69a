//! Training and evaluation for metron: the loop the examples configure, with a seeded data
//! pipeline, optional SAM, per-epoch retrieval evaluation, atomic checkpoints and exact resume,
//! and a run directory holding the config, a JSON-lines metrics log, the report, the test
//! embeddings, the loss / Recall@1 curves and a retrieval grid.
//!
//! The loop is metron's own rather than burn-train's `Learner`; [`Trainer`] says why.

mod artifacts;
mod cgd;
mod checkpoint;
mod embed;
mod error;
mod model;
mod progress;
mod run_dir;
mod trainer;

pub use artifacts::{write_curves, write_embeddings, write_retrieval_grid};
pub use cgd::{CgdModel, CgdModelConfig};
pub use checkpoint::{CheckpointBytes, read_checkpoint, save_checkpoint};
pub use embed::{EmbeddedSplit, batch_tensor, embed_samples, pixel_embeddings};
pub use error::{Result, TrainError};
pub use model::{LossOutput, TrainModel};
pub use progress::Bar;
pub use run_dir::RunDir;
pub use trainer::{
    EpochRecord, Evaluated, OptimizerSetting, PipelineSpec, TrainData, TrainOutcome, TrainState,
    Trainer, TrainerConfig, embedding_spread, evaluate_embeddings,
};
