//! AntiMetric, meta-class ensembles (leftthomas/CGD @ c03691e; spec s. 5): a ResNet whose
//! stem and first stages are shared, then E learners with their own copies of the rest; each
//! learner classifies the training classes into its own small set of meta-classes (balanced,
//! unique codes), and retrieval averages the learners' cosine similarities.

mod model;
mod recipe;

use burn::tensor::Device;

pub use model::{AntiMetricModel, AntiMetricModelConfig, ParameterCount};
pub use recipe::{
    AntiMetricArgs, AntiMetricOutcome, AntiMetricReport, AntiMetricRunConfig, Preset, run,
};

use super::{System, SystemError};

/// The kind recorded in AntiMetric checkpoints.
pub const KIND: &str = "antimetric";

/// AntiMetric in the systems table.
#[derive(Debug, Clone, Copy)]
pub struct AntiMetric;

impl System for AntiMetric {
    const KIND: &'static str = KIND;
    const DESCRIPTION: &'static str = "AntiMetric meta-class ensembles: shared ResNet trunk, E \
         learners each classifying into its own meta-classes, averaged cosine retrieval";
    const PRESETS: &'static [&'static str] = &["cpu", "paper"];
    type ModelConfig = AntiMetricModelConfig;
    type Model = AntiMetricModel;

    fn build(
        config: &AntiMetricModelConfig,
        device: &Device,
    ) -> Result<AntiMetricModel, SystemError> {
        Ok(config.init(device)?)
    }

    fn embedding_dim(config: &AntiMetricModelConfig) -> usize {
        config.embedding_dim().unwrap_or(0)
    }
}
