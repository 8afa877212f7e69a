//! The WGOL recipe behind `cargo run --release --example wgol`: resolve a configuration (a
//! preset plus flags), train one network per mode on the Omniglot canvases, localise the test
//! canvases with the CAM, SPA and SOS maps, and report classification and localisation
//! accuracy beside the baselines (the whole canvas, a centred box of the mean size, the
//! untrained network).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use clap::{Args, ValueEnum};
use serde::{Deserialize, Serialize};
use serde_json::json;

use metron_core::{rng_from_seed, split_seed};
use metron_datasets::LoadBatch;
use metron_localization::{LocalizationCounts, PixelBox, WgolMode};
use metron_samplers::ShuffleSampler;
use metron_train::{
    GroupWarmupStage, LossTriggeredDecay, LrSchedule, OptimizerSetting, ParamGroupSetting,
    PipelineSpec, RunDir, Trainer, TrainerConfig, write_curves,
};

use super::canvas::{CanvasConfig, CanvasGlyphs, fixed_canvases, render_canvas};
use super::evaluate::{
    LocalizationEvaluation, LocalizationSet, MapKind, MapResult, Truth, counts_of_boxes,
    picture_indices,
};
use super::images::{EvalImages, ImageSizes, TrainImages};
use super::model::{CanvasSource, IMAGENET_MEAN, IMAGENET_STD, WgolModelConfig};
use super::picture::write_localisation_picture;
use super::weights::{load_imagenet_vgg16, load_original_checkpoint};
use crate::systems::SystemError;
use crate::systems::retrieval::{RunArgs, free_run_dir, load_registry, refuse_flags_on_resume};

/// Starting points for every setting; each one can be overridden by its flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Preset {
    /// Minutes on 2 CPU cores, on the Omniglot canvases: 20 characters, 96 x 96 canvases with
    /// 3 distractors, VGG-16-BN at 1/8 width from scratch; the `spa` network 20 epochs (RA
    /// from epoch 10), then `sos` and `sos+sa_v3` fine-tuned from it for 8 epochs each;
    /// SGD (Nesterov, momentum 0.9, weight decay 5e-4) at 0.01 with the original's parameter
    /// groups (cls at 1x: nothing is pretrained), SOS 0.01, SA 0.02, batch 32, SOS targets
    /// at 0.7 / 0.5, thresholds 0.05-0.95 chosen on validation canvases.
    Cpu,
    /// The original's scripts (spec s. 2.5-2.6) on `--dataset cub` (`train_sst_cub.sh`:
    /// sos+sa_v3 from ImageNet VGG-16, lr 1e-3 / SOS 5e-5 / SA 5e-3, 150 epochs at most,
    /// batch 64, SA and RA from epoch 20, the RA-triggered decay) or `--dataset ilsvrc`
    /// (`train_sst_ilsvrc.sh`: from the SPA classifier, backbone and cls at lr 0, SOS 5e-5 /
    /// SA 1e-3, 15 epochs, decay at 12 and 14, per-group warmup, SA and RA from epoch 3):
    /// Resize 256 / RandomCrop 224 / flip, TenCrop classification, 224 localisation images,
    /// thresholds 0.10-0.50.
    Paper,
}

/// The flags of `cargo run --example wgol`.
#[derive(Debug, Clone, Args)]
pub struct WgolArgs {
    /// Data, run directory, device and output (`--dataset omniglot`).
    #[command(flatten)]
    pub run: RunArgs,
    /// Starting point of every setting below.
    #[arg(long, value_enum)]
    pub preset: Option<Preset>,
    /// Networks to train, comma-separated: spa, spa+sa, sos, sos+sa_v2, sos+sa_v3 (cpu: spa,
    /// sos, sos+sa_v3; CAM and SPA boxes come from the first, SOS boxes from the others).
    #[arg(long, value_delimiter = ',')]
    pub modes: Option<Vec<String>>,
    /// Characters to classify (cpu: 20).
    #[arg(long)]
    pub classes: Option<usize>,
    /// Drawers per character whose drawings train (the others test; cpu: 15 of 20).
    #[arg(long)]
    pub train_drawers: Option<usize>,
    /// Canvas side in pixels (cpu: 96).
    #[arg(long)]
    pub canvas_size: Option<u32>,
    /// Distractor glyphs per canvas (cpu: 3).
    #[arg(long)]
    pub distractors: Option<usize>,
    /// VGG-16 and head widths divided by this (cpu: 8; 1 is the original network).
    #[arg(long)]
    pub width_divisor: Option<usize>,
    /// VGG-16 with a BatchNorm after every convolution (`vgg16_bn`): `on` or `off` (cpu: on,
    /// training from scratch; the original fine-tunes the plain network).
    #[arg(long)]
    pub batch_norm: Option<String>,
    /// Attention heads (cpu: 2; the original: 8).
    #[arg(long)]
    pub sa_heads: Option<usize>,
    /// Epochs of the first network (cpu: 20).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Canvases per batch (cpu: 32).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// `sgd` (the original's: momentum 0.9, Nesterov, weight decay 5e-4) or `adam` (same
    /// decay; what a from-scratch network needs on a CPU budget).
    #[arg(long)]
    pub optimizer: Option<String>,
    /// Base learning rate (backbone weights; backbone biases 2x; the cls head at
    /// --cls-lr-multiplier).
    #[arg(long)]
    pub lr: Option<f64>,
    /// The cls head's weights train at this multiple of --lr, its biases at twice that (the
    /// original: 10, for a head on a pretrained backbone; cpu: 1, everything from scratch).
    #[arg(long)]
    pub cls_lr_multiplier: Option<f64>,
    /// Learning rate of the SOS head's weights (biases 2x).
    #[arg(long)]
    pub sos_lr: Option<f64>,
    /// Learning rate of the self-attention's weights (biases 2x).
    #[arg(long)]
    pub sa_lr: Option<f64>,
    /// First epoch (0-based) of the SOS loss.
    #[arg(long)]
    pub sos_start: Option<usize>,
    /// First epoch of the self-attention.
    #[arg(long)]
    pub sa_start: Option<usize>,
    /// First epoch of the RA loss.
    #[arg(long)]
    pub ram_start: Option<usize>,
    /// SOS target: locations at or above this (batch-normalised) become foreground
    /// (the original: 0.2).
    #[arg(long)]
    pub sos_fg: Option<f64>,
    /// SOS target: locations at or below this become background (the original: 0.1).
    #[arg(long)]
    pub sos_bg: Option<f64>,
    /// Epochs of every network after the first, which starts from the first's trained
    /// backbone and cls head with SOS, SA and RA on from its first epoch (ILSVRC's
    /// `load_finetune`, `sos_start` 0; cpu: 8).
    #[arg(long)]
    pub finetune_epochs: Option<usize>,
    /// Weight of the RA loss.
    #[arg(long)]
    pub ra_weight: Option<f64>,
    /// Training canvases per glyph and epoch (cpu: 4).
    #[arg(long)]
    pub canvases_per_glyph: Option<usize>,
    /// Validation canvases (training drawers, other placements) that pick the thresholds.
    #[arg(long)]
    pub val_canvases: Option<usize>,
    /// Test canvases (the other drawers).
    #[arg(long)]
    pub test_canvases: Option<usize>,
    /// Each network's learning rate drops 10x after this fraction of its epochs (cpu: 0.75;
    /// ILSVRC's milestones 12 and 14 of 15 are 0.8 and 0.93).
    #[arg(long)]
    pub lr_decay_at: Option<f64>,
    /// Map thresholds swept, comma-separated; each map's threshold is the one with the best
    /// GT-known localisation on the validation canvases (cpu: 0.05, 0.10, ..., 0.95; the
    /// original sweeps 0.10, 0.15, ..., 0.50 and picks by hand).
    #[arg(long, value_delimiter = ',')]
    pub thresholds: Option<Vec<f32>>,
    /// Evaluate every this many epochs (and after the last).
    #[arg(long)]
    pub eval_every: Option<usize>,
    /// The learning rate drops 10x at these epochs (ILSVRC: 12,14; `none` for no step);
    /// replaces --lr-decay-at.
    #[arg(long, value_delimiter = ',')]
    pub milestones: Option<Vec<String>>,
    /// The original's ILSVRC warmup: `on` ramps the SOS groups over epochs 0-2, the SA
    /// groups over 3-5 and every group over 6-8 (others at 0 meanwhile), or `off`.
    #[arg(long)]
    pub warmup: Option<String>,
    /// CUB's decay rule: once the RA loss's epoch mean reaches this (0.35) ...
    #[arg(long)]
    pub ra_decay_threshold: Option<f64>,
    /// ... after an epoch at or past this one (65), every rate drops 10x ...
    #[arg(long)]
    pub ra_decay_from: Option<usize>,
    /// ... and training ends this many epochs later (20).
    #[arg(long)]
    pub ra_decay_extra: Option<usize>,
    /// An original WGOL checkpoint to start the network from (ILSVRC's `load_finetune` from
    /// the SPA classifier, `ilsvrc_epoch_20.pth.tar`; strict key check, missing SOS / SA heads
    /// start fresh).
    #[arg(long)]
    pub finetune_from: Option<PathBuf>,
    /// Photographs: the side every image is resized to before cropping (paper: 256).
    #[arg(long)]
    pub resize: Option<u32>,
    /// Photographs: the training crop and the ten test crops (paper: 224).
    #[arg(long)]
    pub crop: Option<u32>,
    /// Photographs: the side of the test image the maps and boxes come from (paper: 224).
    #[arg(long)]
    pub loc_size: Option<u32>,
    /// Photographs: classify by the mean softmax of ten crops (`on`, the original) or by the
    /// localisation image (`off`).
    #[arg(long)]
    pub ten_crop: Option<String>,
    /// Where each map's threshold is chosen: `validation` canvases, or the `test` images (the
    /// original picks by hand on the test set; paper preset, reported as such).
    #[arg(long)]
    pub thresholds_on: Option<String>,
    /// One seed for canvases, initialisation and batches.
    #[arg(long)]
    pub seed: Option<u64>,
}

impl WgolArgs {
    /// The given flags that fix part of the configuration (refused with `--resume`).
    pub fn configuration_flags(&self) -> Vec<&'static str> {
        let mut given = self.run.configuration_flags();
        let flags = [
            ("--preset", self.preset.is_some()),
            ("--modes", self.modes.is_some()),
            ("--classes", self.classes.is_some()),
            ("--train-drawers", self.train_drawers.is_some()),
            ("--canvas-size", self.canvas_size.is_some()),
            ("--distractors", self.distractors.is_some()),
            ("--width-divisor", self.width_divisor.is_some()),
            ("--sa-heads", self.sa_heads.is_some()),
            ("--batch-norm", self.batch_norm.is_some()),
            ("--epochs", self.epochs.is_some()),
            ("--batch-size", self.batch_size.is_some()),
            ("--lr", self.lr.is_some()),
            ("--optimizer", self.optimizer.is_some()),
            ("--cls-lr-multiplier", self.cls_lr_multiplier.is_some()),
            ("--sos-lr", self.sos_lr.is_some()),
            ("--sa-lr", self.sa_lr.is_some()),
            ("--sos-start", self.sos_start.is_some()),
            ("--sa-start", self.sa_start.is_some()),
            ("--ram-start", self.ram_start.is_some()),
            ("--ra-weight", self.ra_weight.is_some()),
            ("--sos-fg", self.sos_fg.is_some()),
            ("--sos-bg", self.sos_bg.is_some()),
            ("--finetune-epochs", self.finetune_epochs.is_some()),
            ("--canvases-per-glyph", self.canvases_per_glyph.is_some()),
            ("--val-canvases", self.val_canvases.is_some()),
            ("--test-canvases", self.test_canvases.is_some()),
            ("--eval-every", self.eval_every.is_some()),
            ("--thresholds", self.thresholds.is_some()),
            ("--lr-decay-at", self.lr_decay_at.is_some()),
            ("--milestones", self.milestones.is_some()),
            ("--warmup", self.warmup.is_some()),
            ("--ra-decay-threshold", self.ra_decay_threshold.is_some()),
            ("--ra-decay-from", self.ra_decay_from.is_some()),
            ("--ra-decay-extra", self.ra_decay_extra.is_some()),
            ("--finetune-from", self.finetune_from.is_some()),
            ("--resize", self.resize.is_some()),
            ("--crop", self.crop.is_some()),
            ("--loc-size", self.loc_size.is_some()),
            ("--ten-crop", self.ten_crop.is_some()),
            ("--thresholds-on", self.thresholds_on.is_some()),
            ("--seed", self.seed.is_some()),
        ];
        given.extend(flags.iter().filter(|(_, g)| *g).map(|(n, _)| *n));
        given
    }
}

/// A whole WGOL run's configuration (`config.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WgolRunConfig {
    /// The preset the flags started from.
    pub preset: Preset,
    /// Omniglot's root.
    pub root: PathBuf,
    /// The networks, in training order.
    pub modes: Vec<String>,
    /// Characters.
    pub classes: usize,
    /// Drawers per character that train.
    pub train_drawers: usize,
    /// Characters (of Omniglot's other half) whose drawings are distractors.
    pub distractor_classes: usize,
    /// How canvases are drawn.
    pub canvas: CanvasConfig,
    /// Training canvases per glyph and epoch.
    pub canvases_per_glyph: usize,
    /// Validation canvases.
    pub val_canvases: usize,
    /// Test canvases.
    pub test_canvases: usize,
    /// The network and loss of the first mode (the others differ in `mode` only).
    pub model: WgolModelConfig,
    /// Epochs of the networks after the first, fine-tuned from it; `None`: every network
    /// trains from scratch.
    pub finetune_epochs: Option<usize>,
    /// Canvases per batch.
    pub batch_size: usize,
    /// The cls head's learning-rate multiple (biases twice it).
    pub cls_lr_multiplier: f64,
    /// SOS head learning rate.
    pub sos_lr: f64,
    /// Self-attention learning rate.
    pub sa_lr: f64,
    /// The loop's settings (optimizer, groups, epochs, seed).
    pub trainer: TrainerConfig,
    /// Thresholds swept.
    pub thresholds: Vec<f32>,
    /// Fraction of each network's epochs after which its learning rate drops 10x (when no
    /// `milestones` are given).
    pub lr_decay_at: f64,
    /// The dataset: `omniglot` (canvases), `cub` or `ilsvrc` (photographs).
    #[serde(default = "omniglot")]
    pub dataset: String,
    /// How photographs are prepared (`None` for canvases).
    #[serde(default)]
    pub images: Option<ImageSizes>,
    /// Where the first network's weights come from.
    #[serde(default)]
    pub init: WgolInit,
    /// The backbone's rate when it differs from the trainer's base rate (0: the backbone and
    /// the cls head are frozen, ILSVRC).
    #[serde(default)]
    pub backbone_lr: Option<f64>,
    /// Epochs at which the first network's rate drops 10x (instead of `lr_decay_at`).
    #[serde(default)]
    pub milestones: Option<Vec<usize>>,
    /// Choose thresholds on the test images (no validation set).
    #[serde(default)]
    pub thresholds_on_test: bool,
}

fn omniglot() -> String {
    "omniglot".into()
}

/// Where a run's first network starts.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum WgolInit {
    /// Seeded random initialisation.
    #[default]
    Scratch,
    /// torchvision's ImageNet VGG-16 in the backbone, fresh heads.
    Imagenet(PathBuf),
    /// An original WGOL checkpoint (SPA classifier).
    Finetune(PathBuf),
}

/// The dataset a `--dataset` value names: `omniglot`, `cub` (also `cub-wgol`) or `ilsvrc`
/// (also `ilsvrc-wgol`, the registry's names).
fn wgol_dataset(name: &str) -> Result<&'static str, SystemError> {
    match name {
        "omniglot" => Ok("omniglot"),
        "cub" | "cub-wgol" => Ok("cub"),
        "ilsvrc" | "ilsvrc-wgol" => Ok("ilsvrc"),
        other => Err(SystemError::Usage(format!(
            "WGOL trains on omniglot (canvases), cub or ilsvrc (the original's lists); not \
             '{other}'"
        ))),
    }
}

/// The 10x step after `fraction` of `epochs` (at least one epoch in).
fn decay_schedule(epochs: usize, fraction: f64) -> LrSchedule {
    let at = ((epochs as f64 * fraction).round() as usize).clamp(1, epochs.max(1));
    LrSchedule::MultiStep {
        milestones: vec![at],
        gamma: 0.1,
    }
}

/// The original's parameter groups (spec s. 2.5) as multiples of the trainer's base rate
/// `base`: backbone weights at `lr` (the default group; `base` must equal `lr` unless `lr`
/// is 0) and biases at 2 `lr`, cls weights at `cls` x `lr` (10 in the original) and biases at
/// twice that, SOS and SA at their own rates (biases 2x). An `lr` of 0 (ILSVRC) freezes the
/// backbone and the cls head. Groups of heads the network lacks are left out.
pub fn param_groups(
    mode: WgolMode,
    base: f64,
    lr: f64,
    cls: f64,
    sos_lr: f64,
    sa_lr: f64,
) -> Vec<ParamGroupSetting> {
    let mut g = if lr == 0.0 {
        vec![
            ParamGroupSetting::new("net.backbone.**").frozen(),
            ParamGroupSetting::new("net.cls.**").frozen(),
        ]
    } else {
        vec![
            ParamGroupSetting::new("net.backbone.**.bias").with_lr_multiplier(2.0 * lr / base),
            ParamGroupSetting::new(CLS_WEIGHTS).with_lr_multiplier(cls * lr / base),
            ParamGroupSetting::new("net.cls.**.bias").with_lr_multiplier(2.0 * cls * lr / base),
        ]
    };
    if mode.has_sos() {
        g.push(ParamGroupSetting::new(SOS_WEIGHTS).with_lr_multiplier(sos_lr / base));
        g.push(ParamGroupSetting::new(SOS_BIASES).with_lr_multiplier(2.0 * sos_lr / base));
    }
    if mode.has_sa() {
        g.push(ParamGroupSetting::new(SA_WEIGHTS).with_lr_multiplier(sa_lr / base));
        g.push(ParamGroupSetting::new(SA_BIASES).with_lr_multiplier(2.0 * sa_lr / base));
    }
    g
}

const CLS_WEIGHTS: &str = "net.cls.**.weight";
const SOS_WEIGHTS: &str = "net.sos.**.weight";
const SOS_BIASES: &str = "net.sos.**.bias";
const SA_WEIGHTS: &str = "net.sa.**.weight";
const SA_BIASES: &str = "net.sa.**.bias";

/// The original's ILSVRC warmup (`GradualWarmupScheduler`, periods 2, 2, 2 at epochs 0, 3,
/// 6): the SOS groups, then the SA groups, then every group; groups `mode` lacks left out.
pub fn ilsvrc_warmup(mode: WgolMode) -> Vec<GroupWarmupStage> {
    let mut stages = Vec::new();
    if mode.has_sos() {
        stages.push(GroupWarmupStage {
            start: 0,
            period: 2,
            groups: vec![SOS_WEIGHTS.into(), SOS_BIASES.into()],
        });
    }
    if mode.has_sa() {
        stages.push(GroupWarmupStage {
            start: 3,
            period: 2,
            groups: vec![SA_WEIGHTS.into(), SA_BIASES.into()],
        });
    }
    stages.push(GroupWarmupStage {
        start: 6,
        period: 2,
        groups: vec!["*".into()],
    });
    stages
}

impl WgolRunConfig {
    /// The preset's settings with every given flag applied, checked.
    pub fn resolve(args: &WgolArgs, root: PathBuf) -> Result<Self, SystemError> {
        let dataset = wgol_dataset(&args.run.dataset())?;
        let preset = args.preset.unwrap_or(match dataset {
            "omniglot" => Preset::Cpu,
            _ => Preset::Paper,
        });
        let paper = preset == Preset::Paper;
        let photos = dataset != "omniglot";
        if paper != photos {
            return Err(SystemError::Usage(format!(
                "--preset {} is for {}; --dataset {dataset} needs --preset {}",
                if paper { "paper" } else { "cpu" },
                if paper {
                    "cub and ilsvrc"
                } else {
                    "the omniglot canvases"
                },
                if photos { "paper" } else { "cpu" },
            )));
        }
        let ilsvrc = dataset == "ilsvrc";
        let on_off = |flag: &str, v: Option<&String>, default: bool| match v.map(String::as_str) {
            None => Ok(default),
            Some("on") => Ok(true),
            Some("off") => Ok(false),
            Some(other) => Err(SystemError::Usage(format!(
                "{flag} is on or off, not '{other}'"
            ))),
        };
        let modes: Vec<String> = args.modes.clone().unwrap_or_else(|| {
            if paper {
                vec!["sos+sa_v3".into()]
            } else {
                vec!["spa".into(), "sos".into(), "sos+sa_v3".into()]
            }
        });
        if modes.is_empty() {
            return Err(SystemError::Usage("--modes needs at least one mode".into()));
        }
        for m in &modes {
            m.parse::<WgolMode>()
                .map_err(|e| SystemError::Usage(format!("--modes: {e}")))?;
        }
        let size = args.canvas_size.unwrap_or(96);
        let canvas = CanvasConfig {
            size,
            target_side: [size / 3, size * 5 / 8],
            distractors: args.distractors.unwrap_or(3),
            distractor_side: [size / 5, size * 3 / 8],
        };
        if !photos {
            canvas.check()?;
            if !size.is_multiple_of(16) {
                return Err(SystemError::Usage(format!(
                    "--canvas-size must be a multiple of 16 (VGG-16's stride at conv5), got {size}"
                )));
            }
        }
        let images = if photos {
            let sizes = ImageSizes {
                resize: args.resize.unwrap_or(256),
                crop: args.crop.unwrap_or(224),
                loc: args.loc_size.unwrap_or(224),
                ten_crop: on_off("--ten-crop", args.ten_crop.as_ref(), true)?,
            };
            if sizes.crop > sizes.resize
                || !sizes.crop.is_multiple_of(16)
                || !sizes.loc.is_multiple_of(16)
            {
                return Err(SystemError::Usage(format!(
                    "--crop ({}) must fit in --resize ({}), and --crop and --loc-size ({}) must be \
                     multiples of 16",
                    sizes.crop, sizes.resize, sizes.loc
                )));
            }
            Some(sizes)
        } else {
            None
        };
        // The original's rates per dataset (spec s. 2.5); the cpu preset's from scratch.
        let (lr0, sos0, sa0) = match (paper, ilsvrc) {
            (false, _) => (0.01, 0.01, 0.02),
            (true, false) => (1e-3, 5e-5, 5e-3),
            (true, true) => (0.0, 5e-5, 1e-3),
        };
        let lr = args.lr.unwrap_or(lr0);
        let sos_lr = args.sos_lr.unwrap_or(sos0);
        let sa_lr = args.sa_lr.unwrap_or(sa0);
        if !(lr.is_finite() && lr >= 0.0) {
            return Err(SystemError::Usage(format!(
                "--lr must be 0 or positive, got {lr}"
            )));
        }
        for (name, v) in [("--sos-lr", sos_lr), ("--sa-lr", sa_lr)] {
            if !(v.is_finite() && v > 0.0) {
                return Err(SystemError::Usage(format!(
                    "{name} must be positive, got {v}"
                )));
            }
        }
        let epochs = args.epochs.unwrap_or(match (paper, ilsvrc) {
            (false, _) => 20,
            (true, false) => 150,
            (true, true) => 15,
        });
        let switch = 10.min(epochs.saturating_sub(1));
        let first = modes[0].parse::<WgolMode>().expect("checked above");
        let classes = args.classes.unwrap_or(match (paper, ilsvrc) {
            (false, _) => 20,
            (true, false) => 200,
            (true, true) => 1000,
        });
        let mut model = WgolModelConfig::new(classes, first);
        model.width_divisor = args.width_divisor.unwrap_or(if paper { 1 } else { 8 });
        model.sa_heads = args.sa_heads.unwrap_or(if paper { 8 } else { 2 });
        model.batch_norm = on_off("--batch-norm", args.batch_norm.as_ref(), !paper)?;
        let (sos_start, sa_start, ra_weight, sos_fg, sos_bg) = match (paper, ilsvrc) {
            (false, _) => (switch, switch, 1.0, 0.7, 0.5),
            (true, false) => (0, 20, 1.0, 0.2, 0.1),
            (true, true) => (0, 3, 0.5, 0.2, 0.1),
        };
        model.sos_start = args.sos_start.unwrap_or(sos_start);
        model.sa_start = args.sa_start.unwrap_or(sa_start);
        model.ram_start = Some(args.ram_start.unwrap_or(sa_start));
        model.ra_weight = args.ra_weight.unwrap_or(ra_weight);
        model.sos_fg = args.sos_fg.unwrap_or(sos_fg);
        model.sos_bg = args.sos_bg.unwrap_or(sos_bg);
        model.net()?;
        let optimizer = match args.optimizer.as_deref().unwrap_or("sgd") {
            "sgd" => OptimizerSetting::Sgd {
                momentum: 0.9,
                weight_decay: 5e-4,
                dampening: 0.0,
                nesterov: true,
            },
            "adam" => OptimizerSetting::adam(5e-4),
            other => {
                return Err(SystemError::Usage(format!(
                    "--optimizer is sgd or adam, not '{other}'"
                )));
            }
        };
        // With the backbone frozen (lr 0) the trainer's base rate is the SA rate; the groups
        // say every rate relative to it.
        let base = if lr > 0.0 { lr } else { sa_lr };
        let mut trainer = TrainerConfig::new(epochs, optimizer, base);
        let lr_decay_at = args.lr_decay_at.unwrap_or(0.75);
        if !(lr_decay_at.is_finite() && lr_decay_at > 0.0 && lr_decay_at <= 1.0) {
            return Err(SystemError::Usage(format!(
                "--lr-decay-at must be a fraction in (0, 1], got {lr_decay_at}"
            )));
        }
        let milestones: Option<Vec<usize>> = match &args.milestones {
            Some(list) if list.len() == 1 && list[0] == "none" => Some(Vec::new()),
            Some(list) => Some(
                list.iter()
                    .map(|m| {
                        m.trim().parse::<usize>().map_err(|_| {
                            SystemError::Usage(format!(
                                "--milestones takes epochs (or none), not '{m}'"
                            ))
                        })
                    })
                    .collect::<Result<_, _>>()?,
            ),
            None if paper && ilsvrc => Some(vec![12, 14]),
            None if paper => Some(Vec::new()),
            None => None,
        };
        trainer.schedule = match &milestones {
            Some(m) => LrSchedule::MultiStep {
                milestones: m.clone(),
                gamma: 0.1,
            },
            None => decay_schedule(epochs, lr_decay_at),
        };
        trainer.param_groups = param_groups(
            first,
            base,
            lr,
            args.cls_lr_multiplier
                .unwrap_or(if paper { 10.0 } else { 1.0 }),
            sos_lr,
            sa_lr,
        );
        if on_off("--warmup", args.warmup.as_ref(), paper && ilsvrc)? {
            trainer.group_warmup = ilsvrc_warmup(first);
        }
        let ra_decay = (
            args.ra_decay_threshold
                .or((paper && !ilsvrc).then_some(0.35)),
            args.ra_decay_from.unwrap_or(65),
            args.ra_decay_extra.unwrap_or(20),
        );
        if let (Some(threshold), from, extra) = ra_decay {
            trainer.decay_on_loss = Some(LossTriggeredDecay {
                part: "ra".into(),
                threshold,
                min_epoch: from,
                gamma: 0.1,
                extra_epochs: extra,
            });
        }
        trainer.seed = args.seed.unwrap_or(0);
        trainer.eval_every = args.eval_every.unwrap_or(match (paper, ilsvrc) {
            (false, _) | (true, false) => 10,
            (true, true) => 4,
        });
        trainer.evaluate_untrained = true;
        trainer.check()?;
        let init = match (&args.run.pretrained, &args.finetune_from) {
            (Some(_), Some(_)) => {
                return Err(SystemError::Usage(
                    "give --pretrained or --finetune-from, not both".into(),
                ));
            }
            (Some(p), None) => WgolInit::Imagenet(p.clone()),
            (None, Some(p)) => WgolInit::Finetune(p.clone()),
            (None, None) if paper => {
                return Err(SystemError::Usage(if ilsvrc {
                    "--preset paper --dataset ilsvrc starts from the SPA classifier: give \
                     --finetune-from PATH (the original's ilsvrc_epoch_20.pth.tar)"
                        .into()
                } else {
                    "--preset paper --dataset cub starts from ImageNet: give --pretrained PATH \
                     (torchvision's vgg16-397923af.pth)"
                        .into()
                }));
            }
            (None, None) => WgolInit::Scratch,
        };
        let thresholds_on_test = match args.thresholds_on.as_deref() {
            None => paper,
            Some("test") => true,
            Some("validation") if photos => {
                return Err(SystemError::Usage(
                    "--thresholds-on validation needs the omniglot canvases (cub and ilsvrc \
                     have no validation split)"
                        .into(),
                ));
            }
            Some("validation") => false,
            Some(other) => {
                return Err(SystemError::Usage(format!(
                    "--thresholds-on is validation or test, not '{other}'"
                )));
            }
        };
        let config = WgolRunConfig {
            preset,
            root,
            modes,
            classes: model.classes,
            train_drawers: args.train_drawers.unwrap_or(15),
            distractor_classes: 60,
            canvas,
            canvases_per_glyph: args.canvases_per_glyph.unwrap_or(4),
            val_canvases: args.val_canvases.unwrap_or(200),
            test_canvases: args.test_canvases.unwrap_or(400),
            model,
            finetune_epochs: if paper {
                args.finetune_epochs
            } else {
                Some(args.finetune_epochs.unwrap_or(8))
            },
            batch_size: args.batch_size.unwrap_or(if paper { 64 } else { 32 }),
            cls_lr_multiplier: args
                .cls_lr_multiplier
                .unwrap_or(if paper { 10.0 } else { 1.0 }),
            sos_lr,
            sa_lr,
            trainer,
            lr_decay_at,
            thresholds: args.thresholds.clone().unwrap_or_else(|| {
                if paper {
                    (2..=10).map(|i| 0.05 * i as f32).collect()
                } else {
                    (1..20).map(|i| 0.05 * i as f32).collect()
                }
            }),
            dataset: dataset.to_string(),
            images,
            init,
            backbone_lr: (lr != base).then_some(lr),
            milestones,
            thresholds_on_test,
        };
        if config.thresholds.is_empty()
            || config
                .thresholds
                .iter()
                .any(|t| !(t.is_finite() && (0.0..=1.0).contains(t)))
        {
            return Err(SystemError::Usage(format!(
                "--thresholds must be values in [0, 1], got {:?}",
                config.thresholds
            )));
        }
        if config.batch_size < 2 {
            return Err(SystemError::Usage("--batch-size must be at least 2".into()));
        }
        if config.finetune_epochs == Some(0) {
            return Err(SystemError::Usage(
                "--finetune-epochs must be at least 1".into(),
            ));
        }
        Ok(config)
    }

    /// The backbone's learning rate (may be 0).
    pub fn backbone_lr(&self) -> f64 {
        self.backbone_lr.unwrap_or(self.trainer.lr)
    }

    /// The model configuration of `mode`.
    pub fn model_of(&self, mode: &str) -> Result<WgolModelConfig, SystemError> {
        let mut m = self.model.clone();
        m.mode = mode.to_string();
        m.net()?;
        Ok(m)
    }
}

/// One row of the report: classification and localisation, fractions in [0, 1].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LocalizationRow {
    /// Top-1 classification accuracy.
    pub top1_cls: f64,
    /// Top-1 localisation (class and box right).
    pub top1_loc: f64,
    /// Top-5 localisation.
    pub top5_loc: f64,
    /// GT-known localisation (box right).
    pub gt_known_loc: f64,
    /// The map threshold used (chosen on the validation canvases), if any.
    pub threshold: Option<f64>,
}

impl LocalizationRow {
    fn of(c: &LocalizationCounts, threshold: Option<f32>) -> Self {
        LocalizationRow {
            top1_cls: c.top1_cls_accuracy(),
            top1_loc: c.top1_loc(),
            top5_loc: c.top5_loc(),
            gt_known_loc: c.gt_known_loc(),
            threshold: threshold.map(f64::from),
        }
    }

    fn of_result(r: &MapResult) -> Self {
        Self::of(&r.test, Some(r.threshold))
    }
}

/// What a finished run reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WgolReport {
    /// Where the run's files are.
    pub run_dir: PathBuf,
    /// Rows by name: `cam`, `spa` (first network), `sos_sa_v3` (or the SOS network's mode),
    /// `whole_canvas`, `centred_box`, `untrained`.
    pub rows: BTreeMap<String, LocalizationRow>,
    /// Order of `rows` in the table.
    pub order: Vec<String>,
    /// What was run.
    pub setup: serde_json::Value,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// How a run ended.
#[derive(Debug)]
pub enum WgolOutcome {
    /// Trained and reported.
    Finished(Box<WgolReport>),
    /// Stopped by `--stop-after`, resumable.
    Stopped {
        /// The run directory.
        run_dir: PathBuf,
        /// Epochs done in the network that stopped.
        epochs_done: usize,
    },
}

/// The task's data: training batches and the evaluation.
struct TaskData {
    train: Arc<dyn LoadBatch<Batch = super::model::CanvasBatch>>,
    evaluation: LocalizationEvaluation,
    /// The mean ground-truth box side `[w, h]` over training canvases (photographs: over
    /// the test boxes, known only after evaluation).
    mean_box: Option<[f64; 2]>,
    /// Side of the (square) images the maps cover.
    side: u32,
    /// What `setup` says about the data.
    setup: serde_json::Value,
}

fn read_data(config: &WgolRunConfig) -> Result<TaskData, SystemError> {
    match (&config.images, config.dataset.as_str()) {
        (Some(sizes), name) => read_photographs(config, sizes, name),
        (None, _) => read_canvases(config),
    }
}

fn read_photographs(
    config: &WgolRunConfig,
    sizes: &ImageSizes,
    name: &str,
) -> Result<TaskData, SystemError> {
    let set = if name == "ilsvrc" {
        metron_datasets::WgolSet::Ilsvrc
    } else {
        metron_datasets::WgolSet::Cub
    };
    let data = metron_datasets::read_wgol(&config.root, set)?;
    let train = data.dataset.split("train")?.samples.clone();
    let eval_name = if name == "ilsvrc" { "val" } else { "test" };
    let test = EvalImages {
        samples: data.dataset.split(eval_name)?.samples.clone(),
        boxes: data.boxes.clone(),
        sizes: *sizes,
    };
    if let Some(s) = train
        .iter()
        .chain(&test.samples)
        .find(|s| s.label >= config.classes)
    {
        return Err(SystemError::Usage(format!(
            "{} has class {} but the network has {} (--classes)",
            s.path.display(),
            s.label,
            config.classes
        )));
    }
    let setup = json!({
        "task": name,
        "train_images": train.len(),
        "test_images": test.len(),
        "image_sizes": sizes,
    });
    let keep = picture_indices(test.len(), 8);
    Ok(TaskData {
        train: Arc::new(TrainImages::new(train, sizes)),
        evaluation: LocalizationEvaluation {
            validation: None,
            test: LocalizationSet::Images(Arc::new(test)),
            thresholds: config.thresholds.clone(),
            batch_size: config.batch_size,
            primary: String::new(),
            keep,
        },
        mean_box: None,
        side: sizes.loc,
        setup,
    })
}

fn read_canvases(config: &WgolRunConfig) -> Result<TaskData, SystemError> {
    let data = metron_datasets::read_omniglot(&config.root)?;
    let glyphs = CanvasGlyphs::read(
        data.split("train")?,
        config.classes,
        config.train_drawers,
        data.split("test")?,
        config.distractor_classes,
    )?;
    let seed = config.trainer.seed;
    let validation = fixed_canvases(
        &config.canvas,
        &glyphs.train,
        &glyphs.distractors,
        config.val_canvases,
        split_seed(seed, 0x0076_616c),
    );
    let test = fixed_canvases(
        &config.canvas,
        &glyphs.test,
        &glyphs.distractors,
        config.test_canvases,
        split_seed(seed, 0x7465_7374),
    );
    // The centred baseline's size: the mean box of training canvases (fresh draws).
    let mut sum = [0.0f64; 2];
    let draws = 512;
    let mut rng = rng_from_seed(split_seed(seed, 0x6d65_616e));
    for i in 0..draws {
        let c = render_canvas(
            &config.canvas,
            &glyphs.train[i % glyphs.train.len()],
            &glyphs.distractors,
            &mut rng,
        );
        sum[0] += (c.gt_box.x2 - c.gt_box.x1 + 1) as f64;
        sum[1] += (c.gt_box.y2 - c.gt_box.y1 + 1) as f64;
    }
    let train = CanvasSource::Fresh {
        config: config.canvas,
        glyphs: glyphs.train.clone(),
        distractors: glyphs.distractors.clone(),
        repeats: config.canvases_per_glyph,
    };
    let setup = json!({
        "task": "omniglot canvases",
        "canvas_size": config.canvas.size,
        "distractors": config.canvas.distractors,
        "train_glyphs": glyphs.train.len(),
        "validation_canvases": validation.len(),
        "test_canvases": test.len(),
    });
    let keep = picture_indices(test.len(), 8);
    Ok(TaskData {
        train: Arc::new(train),
        evaluation: LocalizationEvaluation {
            validation: Some(LocalizationSet::Canvases(Arc::new(validation))),
            test: LocalizationSet::Canvases(Arc::new(test)),
            thresholds: config.thresholds.clone(),
            batch_size: config.batch_size,
            primary: String::new(),
            keep,
        },
        mean_box: Some([sum[0] / draws as f64, sum[1] / draws as f64]),
        side: config.canvas.size,
        setup,
    })
}

/// The centred box of size `[w, h]` on a `size` x `size` canvas.
pub fn centred_box(size: u32, [w, h]: [f64; 2]) -> PixelBox {
    let s = f64::from(size);
    let (x1, y1) = (
        ((s - w) / 2.0).round() as i64,
        ((s - h) / 2.0).round() as i64,
    );
    PixelBox::new(
        x1.max(0),
        y1.max(0),
        (x1 + w.round() as i64 - 1).min(i64::from(size) - 1),
        (y1 + h.round() as i64 - 1).min(i64::from(size) - 1),
    )
}

/// The mean `[w, h]` of each image's first ground-truth box.
fn mean_first_box(truths: &[Truth]) -> [f64; 2] {
    let mut sum = [0.0f64; 2];
    let mut n = 0usize;
    for b in truths.iter().filter_map(|t| t.boxes.first()) {
        sum[0] += (b.x2 - b.x1 + 1) as f64;
        sum[1] += (b.y2 - b.y1 + 1) as f64;
        n += 1;
    }
    [sum[0] / n.max(1) as f64, sum[1] / n.max(1) as f64]
}

/// The report's name of a mode's SOS row: `sos_sa_v3` for `sos+sa_v3`.
pub fn row_name(mode: &str) -> String {
    mode.replace('+', "_")
}

/// Trains every configured network, evaluates and reports.
pub fn run(args: &WgolArgs) -> Result<WgolOutcome, SystemError> {
    let started = Instant::now();
    let (config, existing) = match &args.run.resume {
        Some(dir) => {
            refuse_flags_on_resume(dir, &args.configuration_flags())?;
            let run = RunDir::open(dir)?;
            let config: WgolRunConfig = run.read_config()?;
            (config, Some(run))
        }
        None => {
            let registry = load_registry(args.run.registry.as_deref())?;
            let name = match wgol_dataset(&args.run.dataset())? {
                "omniglot" => "omniglot",
                "cub" => "cub-wgol",
                _ => "ilsvrc-wgol",
            };
            let root = registry.root(name, args.run.root.as_deref())?;
            (WgolRunConfig::resolve(args, root)?, None)
        }
    };
    let quiet = args.run.quiet;
    let run = match existing {
        Some(run) => run,
        None => {
            let dir = args
                .run
                .run_dir
                .clone()
                .unwrap_or_else(|| free_run_dir(super::KIND, &config.dataset));
            RunDir::create(&dir, &config)?
        }
    };
    let mut data = read_data(&config)?;
    let device = metron_core::parse_device(&args.run.device)?.autodiff();

    let mut trained = Vec::new();
    let mut first_net: Option<metron_localization::WgolNet> = None;
    let mut untrained: Option<BTreeMap<String, f64>> = None;
    for (i, mode_name) in config.modes.iter().enumerate() {
        let mut model_config = config.model_of(mode_name)?;
        if i > 0 && config.finetune_epochs.is_some() {
            // Fine-tuned from the first network: its heads start at once (ILSVRC's
            // sos_start 0; the classifier is trained already).
            model_config.sos_start = 0;
            model_config.sa_start = 0;
            model_config.ram_start = model_config.ram_start.map(|_| 0);
        }
        let mode = model_config.mode()?;
        let sub = run.root().join(row_name(mode_name));
        let sub_run = if sub.join("config.json").is_file() {
            RunDir::open(&sub)?
        } else {
            RunDir::create(&sub, &model_config)?
        };
        let mut trainer_config = config.trainer.clone();
        trainer_config.param_groups = param_groups(
            mode,
            config.trainer.lr,
            config.backbone_lr(),
            config.cls_lr_multiplier,
            config.sos_lr,
            config.sa_lr,
        );
        if !config.trainer.group_warmup.is_empty() {
            trainer_config.group_warmup = ilsvrc_warmup(mode);
        }
        trainer_config.evaluate_untrained = i == 0;
        data.evaluation.primary = if mode.has_sos() {
            "sos_top1_loc".into()
        } else {
            "spa_top1_loc".into()
        };
        let mut model =
            metron_core::seeded_init(&device, split_seed(config.trainer.seed, i as u64), || {
                model_config.init(&device)
            })?;
        // A resumed network's checkpoint replaces the starting weights anyway.
        if i == 0 && !sub_run.last_checkpoint().is_file() {
            match &config.init {
                WgolInit::Scratch => {}
                WgolInit::Imagenet(path) => {
                    model.net = load_imagenet_vgg16(model.net, path)?;
                }
                WgolInit::Finetune(path) => {
                    let (net, fresh) = load_original_checkpoint(model.net, path)?;
                    model.net = net;
                    if !quiet && !fresh.is_empty() {
                        eprintln!(
                            "{}: backbone and cls loaded; {} start fresh",
                            path.display(),
                            fresh.join(" and ")
                        );
                    }
                }
            }
        }
        if let (Some(epochs), Some(first)) = (config.finetune_epochs, &first_net) {
            // ILSVRC's recipe: the SOS / SA network starts from the trained classifier.
            trainer_config.epochs = epochs;
            trainer_config.schedule = decay_schedule(epochs, config.lr_decay_at);
            trainer_config.eval_every = trainer_config.eval_every.min(epochs);
            model.net.backbone = first.backbone.clone();
            model.net.cls = first.cls.clone();
        }
        let sampler = ShuffleSampler::new(
            data.train.len(),
            config.batch_size,
            true,
            split_seed(config.trainer.seed, 100 + i as u64),
        )?;
        if !quiet {
            eprintln!(
                "training the {mode_name} network ({} epochs)",
                trainer_config.epochs
            );
        }
        let mut trainer = Trainer::new(trainer_config, sub_run.clone());
        // What `metron localize` resizes a user's images to.
        trainer.eval_pipeline = Some(PipelineSpec::resize(
            [data.side, data.side],
            IMAGENET_MEAN,
            IMAGENET_STD,
        ));
        trainer.quiet = quiet;
        trainer.stop_after = args.run.stop_after;
        let outcome = trainer.fit(
            model,
            &sampler,
            data.train.clone(),
            &data.evaluation,
            &device,
        )?;
        if !outcome.finished {
            return Ok(WgolOutcome::Stopped {
                run_dir: run.root().to_path_buf(),
                epochs_done: outcome.state.epochs_done,
            });
        }
        write_curves(&sub_run.curves_path(), &outcome.state.history)?;
        if i == 0 {
            untrained = outcome
                .state
                .history
                .iter()
                .find(|r| r.epoch == 0)
                .map(|r| r.test.clone());
        }
        let (results, pass) = data
            .evaluation
            .results(&outcome.model.net, &device, quiet)?;
        if i == 0 {
            first_net = Some(outcome.model.net.clone());
        }
        trained.push((mode_name.clone(), results, pass));
    }

    let mut rows = BTreeMap::new();
    let mut order = Vec::new();
    let (_, first_results, first_pass) = &trained[0];
    for kind in [MapKind::Cam, MapKind::Spa] {
        if let Some(r) = first_results.get(&kind) {
            rows.insert(kind.name().to_string(), LocalizationRow::of_result(r));
            order.push(kind.name().to_string());
        }
    }
    for (mode, results, _) in &trained {
        if let Some(r) = results.get(&MapKind::Sos) {
            let name = row_name(mode);
            if !rows.contains_key(&name) {
                rows.insert(name.clone(), LocalizationRow::of_result(r));
                order.push(name);
            }
        }
    }
    let size = data.side;
    let whole = PixelBox::new(0, 0, i64::from(size) - 1, i64::from(size) - 1);
    let (top5, truths) = (&first_pass.top5, &first_pass.truths);
    rows.insert(
        "whole_canvas".into(),
        LocalizationRow::of(&counts_of_boxes(top5, truths, |_| whole), None),
    );
    let mean_box = data.mean_box.unwrap_or_else(|| mean_first_box(truths));
    let centred = centred_box(size, mean_box);
    rows.insert(
        "centred_box".into(),
        LocalizationRow::of(&counts_of_boxes(top5, truths, |_| centred), None),
    );
    order.extend(["whole_canvas".to_string(), "centred_box".to_string()]);
    if let Some(m) = &untrained {
        let get = |k: &str| m.get(k).copied().unwrap_or(0.0);
        rows.insert(
            "untrained".into(),
            LocalizationRow {
                top1_cls: get("top1_cls"),
                top1_loc: get("cam_top1_loc"),
                top5_loc: get("cam_top5_loc"),
                gt_known_loc: get("cam_gt_known_loc"),
                threshold: m.get("cam_threshold").copied(),
            },
        );
        order.push("untrained".into());
    }
    let sos_kept = trained
        .iter()
        .find(|(_, r, _)| r.contains_key(&MapKind::Sos))
        .map(|(_, _, p)| p.kept.as_slice());
    let thresholds: BTreeMap<MapKind, f32> = trained
        .iter()
        .flat_map(|(_, r, _)| r.iter().map(|(k, v)| (*k, v.threshold)))
        .collect();
    write_localisation_picture(
        &run.root().join("localisation.png"),
        &first_pass.kept,
        sos_kept,
        &thresholds,
        true,
    )?;
    let mut setup = data.setup.clone();
    let extra = json!({
        "dataset": config.dataset,
        "preset": config.preset,
        "classes": config.classes,
        "modes": config.modes,
        "width_divisor": config.model.width_divisor,
        "epochs": config.trainer.epochs,
        "batch_size": config.batch_size,
        "thresholds_chosen_on": if config.thresholds_on_test { "test" } else { "validation" },
        "device": args.run.device,
        "seconds": started.elapsed().as_secs_f64(),
    });
    if let (Some(o), serde_json::Value::Object(e)) = (setup.as_object_mut(), extra) {
        o.extend(e);
    }
    let report = WgolReport {
        run_dir: run.root().to_path_buf(),
        rows,
        order,
        setup,
        seconds: started.elapsed().as_secs_f64(),
    };
    run.write_json(&run.report_path(), &report_json(&report))?;
    Ok(WgolOutcome::Finished(Box::new(report)))
}

/// The report as one JSON object: a row object per mode and baseline, plus `setup`.
pub fn report_json(report: &WgolReport) -> serde_json::Value {
    let mut o = serde_json::Map::new();
    for name in &report.order {
        if let Some(r) = report.rows.get(name) {
            o.insert(
                name.clone(),
                serde_json::to_value(r).expect("plain numbers"),
            );
        }
    }
    o.insert("setup".into(), report.setup.clone());
    serde_json::Value::Object(o)
}

/// The report as a table (percentages).
pub fn format_table(report: &WgolReport) -> String {
    let mut s = format!(
        "{:<14} {:>9} {:>10} {:>10} {:>10} {:>9}\n",
        "", "top-1 cls", "top-1 loc", "top-5 loc", "GT-known", "threshold"
    );
    for name in &report.order {
        let Some(r) = report.rows.get(name) else {
            continue;
        };
        let t = r
            .threshold
            .map(|t| format!("{t:.2}"))
            .unwrap_or_else(|| "-".into());
        s.push_str(&format!(
            "{:<14} {:>9.2} {:>10.2} {:>10.2} {:>10.2} {:>9}\n",
            name,
            100.0 * r.top1_cls,
            100.0 * r.top1_loc,
            100.0 * r.top5_loc,
            100.0 * r.gt_known_loc,
            t
        ));
    }
    s
}

/// Where the run's files are.
pub fn describe_outputs(run_dir: &Path) -> String {
    format!(
        "run files: {} (report.json, localisation.png, one folder per network with its \
         checkpoints, metrics.jsonl and curves)",
        run_dir.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_groups_follow_the_networks_heads() {
        // The rates of the full set are checked against the spec in tests/wgol_paper.rs.
        let (lr, sos, sa) = (1e-3, 5e-5, 5e-3);
        let groups = param_groups(WgolMode::SosSaV3, lr, lr, 10.0, sos, sa);
        assert_eq!(groups.len(), 7);
        // A network without SOS or SA has no groups for them.
        assert_eq!(param_groups(WgolMode::Spa, lr, lr, 10.0, sos, sa).len(), 3);
        assert!(groups.iter().all(|g| !g.frozen && !g.no_weight_decay));
        // lr 0 freezes the backbone and the cls head; the heads keep their own rates.
        let frozen = param_groups(WgolMode::Sos, sa, 0.0, 10.0, sos, sa);
        let flags: Vec<(&str, bool)> = frozen
            .iter()
            .map(|g| (g.params.as_str(), g.frozen))
            .collect();
        assert_eq!(
            flags,
            [
                ("net.backbone.**", true),
                ("net.cls.**", true),
                ("net.sos.**.weight", false),
                ("net.sos.**.bias", false)
            ]
        );
    }
}
