//! CGD, "Combination of Multiple Global Descriptors for Image Retrieval" (Jun et al. 2019):
//! a ResNet, several global descriptors (SPoC, MAC, GeM) each projected and normalised, then
//! concatenated; trained with label-smoothed cross entropy on an auxiliary classifier plus a
//! batch-hard triplet loss, on M-per-class batches.

mod model;
mod recipe;

use burn::tensor::Device;

pub use model::{CgdModel, CgdModelConfig};
pub use recipe::{CgdArgs, CgdRunConfig, Preset, run};

use super::{System, SystemError};

/// The kind recorded in CGD checkpoints.
pub const KIND: &str = "cgd";

/// CGD in the systems table.
#[derive(Debug, Clone, Copy)]
pub struct Cgd;

impl System for Cgd {
    const KIND: &'static str = KIND;
    const DESCRIPTION: &'static str = "Combination of Global Descriptors (Jun et al. 2019): ResNet + SPoC/MAC/GeM heads, \
         label-smoothed CE + batch-hard triplet";
    const PRESETS: &'static [&'static str] = &["cpu", "paper"];
    type ModelConfig = CgdModelConfig;
    type Model = CgdModel;

    fn build(config: &CgdModelConfig, device: &Device) -> Result<CgdModel, SystemError> {
        Ok(config.init(device)?)
    }

    fn embedding_dim(config: &CgdModelConfig) -> usize {
        config.feature_dim
    }
}
