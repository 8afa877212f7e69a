//! The published systems, one folder each, and the table that lists them.
//!
//! A system is a model (what it computes, its loss: [`metron_train::TrainModel`]), a typed
//! configuration with named presets (`cpu`: minutes on two CPU cores; `paper`: the published
//! setting), and a recipe that picks the sampler, the data, the evaluation and the report. The
//! training loop ([`metron_train::Trainer`]) and the retrieval plumbing shared by the retrieval
//! systems ([`retrieval`]) are not copied into any of them.
//!
//! # Adding a system
//!
//! 1. A folder `src/systems/<name>/` with `mod.rs` (the `KIND` recorded in checkpoints and the
//!    [`System`] impl), `model.rs` (the model, its `XConfig` + `init(&device)`, its
//!    `TrainModel` and, for retrieval, `EmbeddingModel` impls) and `recipe.rs` (flags, presets,
//!    the run: sampler + data + [`retrieval::train_and_report`] or its own loop plumbing).
//! 2. One row in [`SYSTEMS`]: `entry::<name::TheSystem>()`. `metron embed` and `metron
//!    search` then load its checkpoints by the kind recorded in them.
//! 3. `examples/<name>.rs`: parse the recipe's flags, call its `run`, print the report.

use std::path::Path;

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::de::DeserializeOwned;

use metron_datasets::{ImageSource, LoaderConfig};
use metron_train::{
    Bar, CheckpointBytes, EmbeddedSplit, EmbeddingModel, TrainModel, TrainState, read_checkpoint,
};

pub mod antimetric;
pub mod cgd;
mod error;
pub mod retrieval;
pub mod saig;
pub mod smooth_ap;
pub mod wgol;

pub use error::SystemError;

/// What the systems table needs to know of a system, typed.
pub trait System: 'static {
    /// The name recorded in checkpoints (`architecture.kind`) and shown in the table.
    const KIND: &'static str;
    /// One line: the paper and what the system does.
    const DESCRIPTION: &'static str;
    /// The named presets of its recipe (`cpu` first).
    const PRESETS: &'static [&'static str];
    /// What rebuilds the model (`architecture.config` in checkpoints).
    type ModelConfig: DeserializeOwned;
    /// The network [`System::build`] returns: trainable, and able to embed images.
    type Model: TrainModel + EmbeddingModel;

    /// The model with random weights.
    fn build(config: &Self::ModelConfig, device: &Device) -> Result<Self::Model, SystemError>;

    /// The width of the model's embeddings.
    fn embedding_dim(config: &Self::ModelConfig) -> usize;
}

/// One row of [`SYSTEMS`].
#[derive(Debug, Clone, Copy)]
pub struct SystemEntry {
    /// [`System::KIND`]: the name recorded in checkpoints.
    pub kind: &'static str,
    /// [`System::DESCRIPTION`]: the paper and what the system does.
    pub description: &'static str,
    /// [`System::PRESETS`]: the named presets of its recipe.
    pub presets: &'static [&'static str],
    load: fn(&CheckpointBytes, &Path, TrainState, &Device) -> Result<LoadedModel, SystemError>,
}

/// The table row of system `S`.
pub const fn entry<S: System>() -> SystemEntry {
    SystemEntry {
        kind: S::KIND,
        description: S::DESCRIPTION,
        presets: S::PRESETS,
        load: load_model::<S>,
    }
}

/// Every system of this build.
pub static SYSTEMS: &[SystemEntry] = &[
    entry::<cgd::Cgd>(),
    entry::<antimetric::AntiMetric>(),
    entry::<smooth_ap::SmoothAp>(),
];

/// A trained model loaded from a checkpoint by the kind recorded in it, ready to embed images.
pub struct LoadedModel {
    /// The system kind recorded in the checkpoint.
    pub kind: &'static str,
    /// The run state saved with the checkpoint (history, best epoch, test pipeline).
    pub state: TrainState,
    /// The width of the model's embeddings.
    pub embedding_dim: usize,
    embed: Box<dyn Fn(Tensor<4>) -> Tensor<2>>,
    device: Device,
}

impl std::fmt::Debug for LoadedModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedModel")
            .field("kind", &self.kind)
            .field("embedding_dim", &self.embedding_dim)
            .finish_non_exhaustive()
    }
}

fn load_model<S: System>(
    ck: &CheckpointBytes,
    path: &Path,
    state: TrainState,
    device: &Device,
) -> Result<LoadedModel, SystemError> {
    let config: S::ModelConfig = serde_json::from_value(state.architecture["config"].clone())
        .map_err(|e| {
            metron_train::TrainError::run_file(path, format!("{} model config: {e}", S::KIND))
        })?;
    let model = ck.load_model(S::build(&config, device)?, path)?.valid();
    Ok(LoadedModel {
        kind: S::KIND,
        state,
        embedding_dim: S::embedding_dim(&config),
        embed: Box::new(move |images| model.embed(images)),
        device: device.clone(),
    })
}

/// Loads the checkpoint at `path` (`RUN/checkpoints/best.ckpt` or `last.ckpt`) with the system
/// of `table` whose kind it records. A kind the table does not hold is an error listing the
/// kinds it does.
pub fn load_checkpoint(
    path: &Path,
    device: &Device,
    table: &[SystemEntry],
) -> Result<LoadedModel, SystemError> {
    let ck = read_checkpoint(path)?;
    let state: TrainState = ck.state(path)?;
    let kind = state.architecture["kind"]
        .as_str()
        .unwrap_or("(none recorded)")
        .to_string();
    let entry = table
        .iter()
        .find(|e| e.kind == kind)
        .ok_or_else(|| SystemError::UnknownKind {
            path: path.to_path_buf(),
            kind,
            known: table.iter().map(|e| e.kind).collect::<Vec<_>>().join(", "),
        })?;
    (entry.load)(&ck, path, state, device)
}

impl LoadedModel {
    /// Embeds `images` with the checkpoint's own test-time preprocessing.
    pub fn embed_images(
        &self,
        images: std::sync::Arc<dyn ImageSource>,
        batch_size: usize,
        loader: LoaderConfig,
        bar: &Bar,
    ) -> Result<EmbeddedSplit, SystemError> {
        let pipeline = self.state.eval_pipeline.as_ref().ok_or_else(|| {
            SystemError::Usage(format!(
                "this {} checkpoint records no test-time preprocessing, so it cannot embed images",
                self.kind
            ))
        })?;
        Ok(metron_train::embed_with(
            &*self.embed,
            images,
            std::sync::Arc::new(pipeline.pipeline()),
            batch_size.max(1),
            loader,
            &self.device,
            bar,
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_in_the_table_are_unique_and_every_system_has_a_cpu_preset() {
        let mut kinds: Vec<&str> = SYSTEMS.iter().map(|e| e.kind).collect();
        kinds.sort_unstable();
        kinds.dedup();
        assert_eq!(kinds.len(), SYSTEMS.len());
        assert!(SYSTEMS.iter().all(|e| e.presets.first() == Some(&"cpu")));
    }
}
