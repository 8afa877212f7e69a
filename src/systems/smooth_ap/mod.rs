//! Smooth-AP, "Smooth-AP: Smoothing the Path Towards Large-Scale Image Retrieval" (Brown et al.
//! 2020), in the variant of PSS ("Progressive Sample Selection for Open-World Visual
//! Representation Learning", Cao et al. 2022): a ResNet with frozen BatchNorm (or a DINO ViT)
//! trained to maximise a sigmoid-smoothed average precision over class-contiguous batches; and
//! the PSS loop ([`pss`]) that grows the training set with pseudo-labelled unlabelled images.

mod model;
pub mod pss;
mod recipe;

use std::path::Path;

use burn::tensor::Device;

use metron_backbones::{LoadMode, LoadReport, VisionTransformer, load_pytorch_any_layout};

pub use model::{SmoothApLossKind, SmoothApModel, SmoothApModelConfig, SmoothApTrunk};
pub use recipe::{
    BaselineReport, Preset, SmoothApArgs, SmoothApOutcome, SmoothApReport, SmoothApRunConfig,
    TrainCrop, paper_trainer, run, train_one,
};

use super::{System, SystemError};

/// The kind recorded in Smooth-AP checkpoints.
pub const KIND: &str = "smooth_ap";

/// Smooth-AP in the systems table.
#[derive(Debug, Clone, Copy)]
pub struct SmoothAp;

impl System for SmoothAp {
    const KIND: &'static str = KIND;
    const DESCRIPTION: &'static str = "Smooth-AP (Brown et al. 2020) as PSS trains it (Cao et al. 2022): frozen-BN ResNet \
         or DINO ViT, smoothed-AP loss on class-contiguous batches; PSS pseudo-label loop";
    const PRESETS: &'static [&'static str] = &["cpu", "paper"];
    type ModelConfig = SmoothApModelConfig;
    type Model = SmoothApModel;

    fn build(config: &SmoothApModelConfig, device: &Device) -> Result<SmoothApModel, SystemError> {
        Ok(config.init(device)?)
    }

    fn embedding_dim(config: &SmoothApModelConfig) -> usize {
        config.embed_dim
    }
}

/// DINO ViT weights into `vit`: the official `*_pretrain.pth` files (timm's names), or a full
/// DINO training checkpoint, whose `teacher` entry is used with its `backbone.` prefix
/// stripped, as Smooth-AP's ViT code loads them. Every ViT tensor must come from the file;
/// only DINO's projection head (`head.`) may go unused.
pub fn load_dino_vit(
    vit: VisionTransformer,
    path: &Path,
) -> Result<(VisionTransformer, LoadReport), SystemError> {
    let keys = [(r"^backbone\.", "")];
    load_pytorch_any_layout(vit, path, &keys, LoadMode::StrictIgnoringUnused(&["head."])).map_err(
        |source| SystemError::Pretrained {
            path: path.to_path_buf(),
            source,
        },
    )
}
