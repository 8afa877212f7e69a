//! WGOL, weakly supervised object localisation (SPA / SOS / SA, the "WGOL-TPAMI" code): a
//! VGG-16 classifier trained with image labels only, whose class maps (CAM), structure maps
//! (SPA), class-agnostic object map (SOS) and structure-aware self-attention say where the
//! object is; evaluated by box localisation.
//!
//! Trained here on canvases made from Omniglot drawings ([`canvas`]): one glyph of a known
//! character at a random position and scale among distractor glyphs, its ink box the ground
//! truth, because neither CUB nor ILSVRC can be downloaded.

pub mod canvas;
mod evaluate;
mod images;
mod localize;
mod model;
mod picture;
mod recipe;
mod weights;

pub use evaluate::{
    LocalizationEvaluation, LocalizationSet, MapKind, MapResult, Prediction, SetOutcome, Truth,
    counts_of_boxes, evaluate_set, flat_metrics, full_map, picture_indices,
};
pub use images::{EvalImages, ImageSizes, LoadedImage, TrainImages, image_batch};
pub use localize::{
    ClassScore, ImageLocalization, MapBox, box_in_image, chosen_thresholds, load_wgol_checkpoint,
    localize,
};
pub use model::{
    CanvasBatch, CanvasSource, IMAGENET_MEAN, IMAGENET_STD, WgolModel, WgolModelConfig,
    canvas_pixels,
};
pub use picture::write_localisation_picture;
pub use recipe::{
    LocalizationRow, Preset, WgolArgs, WgolInit, WgolOutcome, WgolReport, WgolRunConfig,
    centred_box, describe_outputs, format_table, ilsvrc_warmup, param_groups, report_json,
    row_name, run,
};
pub use weights::{load_imagenet_vgg16, load_original_checkpoint, original_checkpoint_keys};

/// The kind recorded in WGOL checkpoints.
pub const KIND: &str = "wgol";
