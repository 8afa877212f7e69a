//! Training and evaluation for metron: one loop for every system, with a seeded data pipeline
//! (any sampler, any batch type), parameter groups, per-epoch or per-iteration schedules,
//! gradient clipping, optional SAM, evaluation plug-ins, atomic checkpoints and exact resume,
//! and a run directory holding the config, a JSON-lines metrics log, the report, the test
//! embeddings, the loss / metric curves and a retrieval grid.
//!
//! The loop is metron's own rather than burn-train's `Learner`; [`Trainer`] says why.

#![warn(missing_docs)]

mod artifacts;
mod checkpoint;
mod embed;
mod error;
mod evaluation;
mod model;
mod optimizer;
mod progress;
mod run_dir;
mod trainer;

pub use artifacts::{write_curves, write_embeddings, write_retrieval_grid};
pub use checkpoint::{CheckpointBytes, read_checkpoint, save_checkpoint};
pub use embed::{
    EmbeddedSplit, batch_images, batch_tensor, embed_samples, embed_with, pixel_embeddings,
};
pub use error::{Result, TrainError};
pub use evaluation::{
    CrossViewEvaluation, CrossViewModel, EvalOutcome, Evaluated, Evaluation, RetrievalEvaluation,
    embedding_spread, evaluate_embeddings,
};
pub use model::{EmbeddingModel, LossOutput, TrainModel};
pub use optimizer::{
    GroupWarmupStage, GroupedOptimizer, LossTriggeredDecay, LrSchedule, OptimizerSetting,
    ParamGroupSetting, SamSetting, StepUnit, group_warmup_factor, param_paths,
};
pub use progress::Bar;
pub use run_dir::RunDir;
pub use trainer::{EpochRecord, PipelineSpec, TrainOutcome, TrainState, Trainer, TrainerConfig};
