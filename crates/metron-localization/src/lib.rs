//! Weakly supervised object localisation as WGOL does it (`../shared/specs/seed-systems.md`
//! s. 2): a VGG-16 classifier trained with image labels only, whose class maps, structure
//! maps (SPA), class-agnostic object map (SOS) and structure-aware self-attention (SA) say
//! where the object is; boxes from those maps, scored as the original scores them.
//!
//! | item | what it is |
//! |---|---|
//! | [`self_correlation`], [`structure_map`], [`edge_code`] | HSC first / high-order self-correlation, SPA's structure map, SA's edge code |
//! | [`MapHead`] | the `cls` (one map per class) and `sos` (one map) heads |
//! | [`StructureAttention`] | SA: multi-head attention biased by the edge code, no residual, no norm |
//! | [`WgolNet`], [`WgolMode`] | VGG-16 + heads wired as `spa`, `spa+sa`, `sos`, `sos+sa_v2`, `sos+sa_v3` |
//! | [`sos_target`], [`sos_bce_loss`], [`ra_loss`], [`WgolLoss`] | SOS pseudo ground truth and the training losses |
//! | [`box_from_map`], [`box_from_structure_map`], [`box_from_sos_map`] | CAM, SCG and SOS maps to boxes |
//! | [`PixelBox`] | inclusive pixel corners, area `(x2 - x1 + 1)(y2 - y1 + 1)` |
//! | [`LocalizationCounts`] | Top-1 / Top-5 / GT-known localisation accuracy over images |

#![warn(missing_docs)]

mod attention;
mod boxes;
mod error;
mod heads;
mod losses;
mod map;
mod metrics;
mod mode;
mod network;
mod self_correlation;
mod sos_target;

pub use attention::{StructureAttention, StructureAttentionConfig};
pub use boxes::PixelBox;
pub use error::{LocalizationError, Result};
pub use heads::{MapHead, MapHeadConfig, class_scores};
pub use losses::{RaLossConfig, ra_loss, sos_bce_loss};
pub use map::{
    box_from_map, box_from_sos_map, box_from_structure_map, min_max_normalize, resize_bilinear,
    sos_probability_map, structure_guided_map, union_box,
};
pub use metrics::{ErrorBreakdown, ImageOutcome, LocalizationCounts, LocalizationMiss, top1_miss};
pub use mode::WgolMode;
pub use network::{
    EdgeStages, Phase, WgolLoss, WgolLossConfig, WgolLosses, WgolNet, WgolNetConfig, WgolOutput,
};
pub use self_correlation::{
    HscConfig, StructureCorrelation, edge_code, self_correlation, structure_map,
};
pub use sos_target::{Segmentation, SosTargetConfig, sos_target};
