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
    LrSchedule, OptimizerSetting, ParamGroupSetting, RunDir, Trainer, TrainerConfig, write_curves,
};

use super::canvas::{CanvasConfig, CanvasGlyphs, fixed_canvases, render_canvas};
use super::evaluate::{LocalizationEvaluation, MapKind, MapResult, Prediction, counts_of_boxes};
use super::model::{CanvasSource, WgolModelConfig};
use super::picture::write_localisation_picture;
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
    /// One seed for canvases, initialisation and batches.
    #[arg(long)]
    pub seed: Option<u64>,
}

impl WgolArgs {
    /// The given flags that fix part of the configuration (refused with `--resume`).
    pub fn configuration_flags(&self) -> Vec<&'static str> {
        let mut given = self.run.configuration_flags();
        let flags: [(&str, bool); 30] = [
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
    /// Fraction of each network's epochs after which its learning rate drops 10x.
    pub lr_decay_at: f64,
}

/// The 10x step after `fraction` of `epochs` (at least one epoch in).
fn decay_schedule(epochs: usize, fraction: f64) -> LrSchedule {
    let at = ((epochs as f64 * fraction).round() as usize).clamp(1, epochs.max(1));
    LrSchedule::MultiStep {
        milestones: vec![at],
        gamma: 0.1,
    }
}

/// The original's parameter groups (spec s. 2.5) as multiples of the base rate `lr`:
/// backbone biases 2x, cls weights `cls`x (10 in the original) and biases `2 cls`x, SOS and
/// SA at their own rates (biases 2x). Groups of heads the network lacks are left out.
pub fn param_groups(
    mode: WgolMode,
    lr: f64,
    cls: f64,
    sos_lr: f64,
    sa_lr: f64,
) -> Vec<ParamGroupSetting> {
    let mut g = vec![
        ParamGroupSetting::new("net.backbone.**.bias").with_lr_multiplier(2.0),
        ParamGroupSetting::new("net.cls.**.weight").with_lr_multiplier(cls),
        ParamGroupSetting::new("net.cls.**.bias").with_lr_multiplier(2.0 * cls),
    ];
    if mode.has_sos() {
        g.push(ParamGroupSetting::new("net.sos.**.weight").with_lr_multiplier(sos_lr / lr));
        g.push(ParamGroupSetting::new("net.sos.**.bias").with_lr_multiplier(2.0 * sos_lr / lr));
    }
    if mode.has_sa() {
        g.push(ParamGroupSetting::new("net.sa.**.weight").with_lr_multiplier(sa_lr / lr));
        g.push(ParamGroupSetting::new("net.sa.**.bias").with_lr_multiplier(2.0 * sa_lr / lr));
    }
    g
}

impl WgolRunConfig {
    /// The preset's settings with every given flag applied, checked.
    pub fn resolve(args: &WgolArgs, root: PathBuf) -> Result<Self, SystemError> {
        let dataset = args.run.dataset();
        if dataset != "omniglot" {
            return Err(SystemError::Usage(format!(
                "WGOL trains on the Omniglot canvases (--dataset omniglot); '{dataset}' is not \
                 supported by this build yet"
            )));
        }
        let preset = args.preset.unwrap_or(Preset::Cpu);
        let modes: Vec<String> = args
            .modes
            .clone()
            .unwrap_or_else(|| vec!["spa".into(), "sos".into(), "sos+sa_v3".into()]);
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
        canvas.check()?;
        if !size.is_multiple_of(16) {
            return Err(SystemError::Usage(format!(
                "--canvas-size must be a multiple of 16 (VGG-16's stride at conv5), got {size}"
            )));
        }
        let lr = args.lr.unwrap_or(0.01);
        let sos_lr = args.sos_lr.unwrap_or(0.01);
        let sa_lr = args.sa_lr.unwrap_or(0.02);
        for (name, v) in [("--lr", lr), ("--sos-lr", sos_lr), ("--sa-lr", sa_lr)] {
            if !(v.is_finite() && v > 0.0) {
                return Err(SystemError::Usage(format!(
                    "{name} must be positive, got {v}"
                )));
            }
        }
        let epochs = args.epochs.unwrap_or(20);
        let switch = 10.min(epochs.saturating_sub(1));
        let first = modes[0].parse::<WgolMode>().expect("checked above");
        let mut model = WgolModelConfig::new(args.classes.unwrap_or(20), first);
        model.width_divisor = args.width_divisor.unwrap_or(8);
        model.sa_heads = args.sa_heads.unwrap_or(2);
        model.batch_norm = match args.batch_norm.as_deref().unwrap_or("on") {
            "on" => true,
            "off" => false,
            other => {
                return Err(SystemError::Usage(format!(
                    "--batch-norm is on or off, not '{other}'"
                )));
            }
        };
        model.sos_start = args.sos_start.unwrap_or(switch);
        model.sa_start = args.sa_start.unwrap_or(switch);
        model.ram_start = Some(args.ram_start.unwrap_or(switch));
        model.ra_weight = args.ra_weight.unwrap_or(1.0);
        model.sos_fg = args.sos_fg.unwrap_or(0.7);
        model.sos_bg = args.sos_bg.unwrap_or(0.5);
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
        let mut trainer = TrainerConfig::new(epochs, optimizer, lr);
        let lr_decay_at = args.lr_decay_at.unwrap_or(0.75);
        if !(lr_decay_at.is_finite() && lr_decay_at > 0.0 && lr_decay_at <= 1.0) {
            return Err(SystemError::Usage(format!(
                "--lr-decay-at must be a fraction in (0, 1], got {lr_decay_at}"
            )));
        }
        trainer.schedule = decay_schedule(epochs, lr_decay_at);
        trainer.seed = args.seed.unwrap_or(0);
        trainer.eval_every = args.eval_every.unwrap_or(10);
        trainer.evaluate_untrained = true;
        trainer.check()?;
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
            finetune_epochs: Some(args.finetune_epochs.unwrap_or(8)),
            batch_size: args.batch_size.unwrap_or(32),
            cls_lr_multiplier: args.cls_lr_multiplier.unwrap_or(1.0),
            sos_lr,
            sa_lr,
            trainer,
            lr_decay_at,
            thresholds: args
                .thresholds
                .clone()
                .unwrap_or_else(|| (1..20).map(|i| 0.05 * i as f32).collect()),
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
        Ok(config)
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

/// The task's canvases.
struct CanvasData {
    train: CanvasSource,
    evaluation: LocalizationEvaluation,
    /// The mean ground-truth box side `[w, h]` over training canvases.
    mean_box: [f64; 2],
}

fn read_data(config: &WgolRunConfig) -> Result<CanvasData, SystemError> {
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
    Ok(CanvasData {
        train: CanvasSource::Fresh {
            config: config.canvas,
            glyphs: glyphs.train.clone(),
            distractors: glyphs.distractors.clone(),
            repeats: config.canvases_per_glyph,
        },
        evaluation: LocalizationEvaluation {
            validation: Arc::new(validation),
            test: Arc::new(test),
            thresholds: config.thresholds.clone(),
            batch_size: config.batch_size,
            primary: String::new(),
        },
        mean_box: [sum[0] / draws as f64, sum[1] / draws as f64],
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
            let root = registry.root("omniglot", args.run.root.as_deref())?;
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
                .unwrap_or_else(|| free_run_dir(super::KIND, "omniglot"));
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
        if config.finetune_epochs == Some(0) {
            return Err(SystemError::Usage(
                "--finetune-epochs must be at least 1".into(),
            ));
        }
        trainer_config.param_groups = param_groups(
            mode,
            config.trainer.lr,
            config.cls_lr_multiplier,
            config.sos_lr,
            config.sa_lr,
        );
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
        trainer.quiet = quiet;
        trainer.stop_after = args.run.stop_after;
        let outcome = trainer.fit(
            model,
            &sampler,
            Arc::new(data.train.clone()),
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
        let (results, predictions) = data
            .evaluation
            .results(&outcome.model.net, &device, quiet)?;
        if i == 0 {
            first_net = Some(outcome.model.net.clone());
        }
        trained.push((mode_name.clone(), results, predictions));
    }

    let mut rows = BTreeMap::new();
    let mut order = Vec::new();
    let (_, first_results, first_predictions) = &trained[0];
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
    let test = &data.evaluation.test;
    let size = config.canvas.size;
    let whole = PixelBox::new(0, 0, i64::from(size) - 1, i64::from(size) - 1);
    rows.insert(
        "whole_canvas".into(),
        LocalizationRow::of(&counts_of_boxes(first_predictions, test, |_| whole), None),
    );
    let centred = centred_box(size, data.mean_box);
    rows.insert(
        "centred_box".into(),
        LocalizationRow::of(&counts_of_boxes(first_predictions, test, |_| centred), None),
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
    let sos_predictions: Option<&Vec<Prediction>> = trained
        .iter()
        .find(|(_, r, _)| r.contains_key(&MapKind::Sos))
        .map(|(_, _, p)| p);
    let thresholds: BTreeMap<MapKind, f32> = trained
        .iter()
        .flat_map(|(_, r, _)| r.iter().map(|(k, v)| (*k, v.threshold)))
        .collect();
    write_localisation_picture(
        &run.root().join("localisation.png"),
        test,
        first_predictions,
        sos_predictions.map(Vec::as_slice),
        &thresholds,
        8,
    )?;
    let setup = json!({
        "task": "omniglot canvases",
        "classes": config.classes,
        "canvas_size": size,
        "distractors": config.canvas.distractors,
        "train_glyphs": data.train.len() / config.canvases_per_glyph.max(1),
        "validation_canvases": data.evaluation.validation.len(),
        "test_canvases": test.len(),
        "modes": config.modes,
        "width_divisor": config.model.width_divisor,
        "epochs": config.trainer.epochs,
        "batch_size": config.batch_size,
        "device": args.run.device,
        "seconds": started.elapsed().as_secs_f64(),
    });
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
    fn parameter_groups_are_the_originals_cub_rates() {
        // CUB (spec s. 2.5): lr 1e-3, sos_lr 5e-5, sa_lr 5e-3; backbone biases 2x, cls weights
        // 10x and biases 20x, SOS and SA biases twice their weights.
        let (lr, sos, sa) = (1e-3, 5e-5, 5e-3);
        let groups = param_groups(WgolMode::SosSaV3, lr, 10.0, sos, sa);
        let rates: Vec<(&str, f64)> = groups
            .iter()
            .map(|g| (g.params.as_str(), lr * g.lr_multiplier))
            .collect();
        let want = [
            ("net.backbone.**.bias", 2e-3),
            ("net.cls.**.weight", 1e-2),
            ("net.cls.**.bias", 2e-2),
            ("net.sos.**.weight", 5e-5),
            ("net.sos.**.bias", 1e-4),
            ("net.sa.**.weight", 5e-3),
            ("net.sa.**.bias", 1e-2),
        ];
        assert_eq!(rates.len(), want.len());
        for ((p, r), (wp, wr)) in rates.iter().zip(want) {
            assert_eq!(*p, wp);
            assert!((r - wr).abs() < 1e-12 * wr, "{p}: {r} vs {wr}");
        }
        // A network without SOS or SA has no groups for them.
        assert_eq!(param_groups(WgolMode::Spa, lr, 10.0, sos, sa).len(), 3);
        assert!(groups.iter().all(|g| !g.frozen && !g.no_weight_decay));
    }
}
