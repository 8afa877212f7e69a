//! SAIG, "Cross-view geo-localization with a Simple Attention-based Image Geo-localization
//! network" (Zhu et al.): two unshared attention-only transformers (a convolutional stem and
//! blocks without MLPs) embed a ground panorama and the aerial image of the same place; GAP or
//! the spatial-mixing SMD descriptor; soft-margin triplet, InfoNCE or SemiSoftTriHard over the
//! in-batch pairs; AdamW with per-step cosine decay, clipping and optionally adaptive SAM.
//!
//! Trained here on a two-view task made from Omniglot drawings ([`omniglot_task`]) because no
//! cross-view dataset can be downloaded; `--preset paper --dataset cvusa|cvact|vigor` reads the
//! real ones.

mod baseline;
mod model;
pub mod omniglot_task;
mod pairs;
mod recipe;

pub use baseline::PolarCorrelationBaseline;
pub use model::{SaigHead, SaigLoss, SaigModel, SaigModelConfig, SaigPool};
pub use pairs::{ViewPairBatch, ViewPairs};
pub use recipe::{
    CrossViewDataset, CrossViewMetrics, Preset, SaigArgs, SaigOutcome, SaigReport, SaigRunConfig,
    SamChoice, describe_outputs, format_table, parse_size, recall_ks, report_json, run,
};

/// The kind recorded in SAIG checkpoints.
pub const KIND: &str = "saig";
