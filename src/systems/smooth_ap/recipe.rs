//! The Smooth-AP recipe behind `cargo run --release --example smooth_ap`: resolve a
//! configuration (a preset plus flags), train on class-contiguous batches, and report Recall@K
//! and NMI of the trained network beside the untrained network, raw pixels and the same
//! network trained with a classification loss (`ams` by default).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::tensor::Device;
use clap::{Args, ValueEnum};
use serde::{Deserialize, Serialize};
use serde_json::json;

use metron_datasets::{Pipeline, Transform};
use metron_samplers::ClassContiguousSampler;
use metron_train::{
    LrSchedule, OptimizerSetting, ParamGroupSetting, PipelineSpec, RunDir, TrainerConfig,
};

use super::{SmoothApLossKind, SmoothApModel, SmoothApModelConfig};
use crate::systems::SystemError;
use crate::systems::retrieval::{
    DataSource, RetrievalData, RetrievalJob, RetrievalOutcome, RetrievalReport, RetrievalSettings,
    RunArgs, free_run_dir, load_pretrained_resnet, load_registry, refuse_flags_on_resume,
    train_and_report,
};

/// Starting points for every setting; each one can be overridden by its flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Preset {
    /// Minutes on 2 CPU cores: a narrow ResNet-18 (base width 32) from scratch at 64 x 64
    /// without frozen BatchNorm (random statistics cannot be frozen), 128-d, batch 64 = 16
    /// classes x 4, Adam 1e-3, 12 epochs, resize 72 + random 64 crops.
    Cpu,
    /// The seed spec's setting (needs a GPU and ImageNet weights via --pretrained): ResNet-50
    /// with frozen BatchNorm, 128-d, batch 384 = 96 classes x 4, Adam 1e-5 with weight decay
    /// 4e-4, `last_linear` as its own group (fc_lr_mul 1), milestones 40 and 70 (gamma 0.3),
    /// 400 epochs, RandomResizedCrop(224) + flip, test Resize(256) + CenterCrop(224),
    /// evaluation every 5 epochs, seed 1.
    Paper,
}

/// How training images are cropped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrainCrop {
    /// torchvision's `RandomResizedCrop(image_size, scale)` (the paper: scale 0.08..1).
    RandomResized {
        /// `[min, max]` area fraction of the window.
        scale: [f64; 2],
    },
    /// Resize to `resize` x `resize`, then a random `image_size` window (the CPU preset: a
    /// gentle crop that keeps the whole character).
    ResizeThenCrop {
        /// The square size the image is resized to first.
        resize: u32,
    },
}

/// Flags of the `smooth_ap` example.
#[derive(Debug, Clone, Args)]
pub struct SmoothApArgs {
    /// Data, run directory, device and output: the flags every retrieval example takes.
    #[command(flatten)]
    pub run: RunArgs,
    /// cpu (default) or paper.
    #[arg(long, value_enum)]
    pub preset: Option<Preset>,
    /// The training loss: smoothap (default), ams or ce.
    #[arg(long, value_enum)]
    pub loss: Option<SmoothApLossKind>,
    /// The loss of the baseline trained beside it with the same network and budget (default
    /// ams; `--no-baseline` skips it).
    #[arg(long, value_enum)]
    pub baseline: Option<SmoothApLossKind>,
    /// Train no baseline.
    #[arg(long, conflicts_with = "baseline")]
    pub no_baseline: bool,
    /// resnet18 (cpu), resnet34, resnet50 (paper), resnext50_32x4d, vit_small_patch16 or
    /// vit_base_patch16 (DINO; only the last block, the final norm and the tokens train).
    #[arg(long)]
    pub backbone: Option<String>,
    /// Stem / stage-1 width of a ResNet (64 = torchvision; cpu preset: 32).
    #[arg(long)]
    pub base_width: Option<usize>,
    /// Normalise with BatchNorm's running statistics while training: true or false (cpu:
    /// false, paper: true).
    #[arg(long)]
    pub frozen_batch_norm: Option<bool>,
    /// Network input size (square; paper: 224, 227 for a ViT).
    #[arg(long)]
    pub image_size: Option<u32>,
    /// Test images: shorter side resized to this, then centre-cropped to --image-size
    /// (paper: 256); 0 resizes straight to --image-size (cpu).
    #[arg(long)]
    pub test_resize: Option<u32>,
    /// Embedding size (`last_linear`'s output; 128; a ViT's is its width).
    #[arg(long)]
    pub embed_dim: Option<usize>,
    /// Images per batch (cpu: 64, paper: 384).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Images per class block in a batch (4).
    #[arg(long)]
    pub samples_per_class: Option<usize>,
    /// Learning rate of Adam (cpu: 1e-3, paper: 1e-5).
    #[arg(long)]
    pub lr: Option<f64>,
    /// L2 weight decay of Adam (cpu: 0, paper: 4e-4).
    #[arg(long)]
    pub weight_decay: Option<f64>,
    /// Learning-rate factor of `last_linear` as its own parameter group; 0 puts every
    /// parameter in one group (paper: 1).
    #[arg(long)]
    pub fc_lr_mul: Option<f64>,
    /// Training epochs (cpu: 12, paper: 400).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Epochs at which the learning rate is multiplied by --gamma, comma separated (paper:
    /// 40,70; cpu: 60% and 80% of the epochs).
    #[arg(long, value_delimiter = ',')]
    pub milestones: Option<Vec<usize>>,
    /// Factor of the learning rate at each milestone (paper: 0.3, cpu: 0.1).
    #[arg(long)]
    pub gamma: Option<f64>,
    /// Sigmoid temperature of Smooth-AP (0.01).
    #[arg(long)]
    pub temperature: Option<f64>,
    /// Count the query among its own positives, as the official code does (true).
    #[arg(long)]
    pub include_query: Option<bool>,
    /// Margin of `ams` (0.3).
    #[arg(long)]
    pub ams_margin: Option<f64>,
    /// Scale of `ams` (30).
    #[arg(long)]
    pub ams_scale: Option<f64>,
    /// Stochastic depth of a ViT's last block (0.1 for ViTs, unused by ResNets).
    #[arg(long)]
    pub drop_path: Option<f64>,
    /// Evaluate every N epochs (paper: 5, cpu: 2); the best Recall@1 is checkpointed.
    #[arg(long)]
    pub eval_every: Option<usize>,
    /// Random horizontal flips in training (paper: true; off for handwriting).
    #[arg(long)]
    pub flip: Option<bool>,
    /// Seed of initialisation, sampling, augmentation and the NMI k-means (cpu: 0, paper: 1).
    #[arg(long)]
    pub seed: Option<u64>,
    /// The K of Recall@K, comma separated (1,4,16,32).
    #[arg(long, value_delimiter = ',')]
    pub recalls: Option<Vec<usize>>,
}

impl SmoothApArgs {
    /// The flags that set part of a run's configuration: with `--resume` the stored
    /// configuration is the run's, so any of them would be silently ignored.
    pub fn configuration_flags(&self) -> Vec<&'static str> {
        let a = self;
        [
            ("--preset", a.preset.is_some()),
            ("--loss", a.loss.is_some()),
            ("--baseline", a.baseline.is_some()),
            ("--no-baseline", a.no_baseline),
            ("--backbone", a.backbone.is_some()),
            ("--base-width", a.base_width.is_some()),
            ("--frozen-batch-norm", a.frozen_batch_norm.is_some()),
            ("--image-size", a.image_size.is_some()),
            ("--test-resize", a.test_resize.is_some()),
            ("--embed-dim", a.embed_dim.is_some()),
            ("--batch-size", a.batch_size.is_some()),
            ("--samples-per-class", a.samples_per_class.is_some()),
            ("--lr", a.lr.is_some()),
            ("--weight-decay", a.weight_decay.is_some()),
            ("--fc-lr-mul", a.fc_lr_mul.is_some()),
            ("--epochs", a.epochs.is_some()),
            ("--milestones", a.milestones.is_some()),
            ("--gamma", a.gamma.is_some()),
            ("--temperature", a.temperature.is_some()),
            ("--include-query", a.include_query.is_some()),
            ("--ams-margin", a.ams_margin.is_some()),
            ("--ams-scale", a.ams_scale.is_some()),
            ("--drop-path", a.drop_path.is_some()),
            ("--eval-every", a.eval_every.is_some()),
            ("--flip", a.flip.is_some()),
            ("--seed", a.seed.is_some()),
            ("--recalls", a.recalls.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, given)| given.then_some(name))
        .chain(a.run.configuration_flags())
        .collect()
    }
}

/// Everything a Smooth-AP run was configured with; saved as the run's `config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmoothApRunConfig {
    /// Where the images come from.
    pub data: DataSource,
    /// The preset the flags were applied to.
    pub preset: Preset,
    /// Network input size in pixels (square).
    pub image_size: u32,
    /// How training images are cropped to `image_size`.
    pub train_crop: TrainCrop,
    /// `Some(s)`: test images are resized so the shorter side is `s`, then centre-cropped;
    /// `None`: resized straight to `image_size`.
    pub test_resize: Option<u32>,
    /// Random horizontal flips in training.
    pub flip: bool,
    /// Per-channel (RGB) normalisation mean (the backbone's own).
    pub mean: [f32; 3],
    /// Per-channel (RGB) normalisation standard deviation (the backbone's own).
    pub std: [f32; 3],
    /// torchvision (ResNet) or DINO (ViT) weights the backbone started from.
    pub pretrained: Option<PathBuf>,
    /// A metron checkpoint of this system the whole model starts from (PSS fine-tuning);
    /// applied after `pretrained`.
    #[serde(default)]
    pub init_checkpoint: Option<PathBuf>,
    /// The network and its loss.
    pub model: SmoothApModelConfig,
    /// Images per training batch (`classes x samples_per_class`, class-contiguous).
    pub batch_size: usize,
    /// The loss of the baseline trained beside the model, if any.
    pub baseline: Option<SmoothApLossKind>,
    /// Optimizer, groups, schedule, epochs, evaluation cadence and seed.
    pub trainer: TrainerConfig,
    /// Recall@K, NMI (clustering seed), evaluation batch size and the retrieval grid.
    pub evaluation: RetrievalSettings,
}

/// Smooth-AP's optimiser (seed spec s.3.5): Adam at `lr` with L2 `weight_decay`, MultiStep
/// milestones 40 and 70 with gamma 0.3, `epochs` epochs, evaluated every 5, seed 1.
pub fn paper_trainer(epochs: usize, lr: f64, weight_decay: f64) -> TrainerConfig {
    TrainerConfig {
        schedule: LrSchedule::MultiStep {
            milestones: vec![40, 70],
            gamma: 0.3,
        },
        eval_every: 5,
        seed: 1,
        ..TrainerConfig::new(epochs, OptimizerSetting::adam(weight_decay), lr)
    }
}

impl SmoothApRunConfig {
    /// The preset with the flags applied, for `num_classes` training classes.
    pub fn resolve(
        args: &SmoothApArgs,
        data: DataSource,
        num_classes: usize,
    ) -> Result<Self, SystemError> {
        let preset = args.preset.unwrap_or(Preset::Cpu);
        let mut model = SmoothApModelConfig::paper(num_classes);
        set(&args.backbone, &mut model.backbone);
        let vit = model.is_vit()?;
        if vit {
            // A ViT's embedding is its CLS token; DINO trains with stochastic depth 0.1.
            let vit_defaults = SmoothApModelConfig::paper_vit(num_classes);
            if let metron_backbones::Architecture::Vit(c) = model.backbone_entry()?.architecture {
                model.embed_dim = c(vit_defaults.image_size).embed_dim;
            }
            model.drop_path = vit_defaults.drop_path;
            model.frozen_batch_norm = false;
        }
        let mut trainer;
        let mut batch_size;
        let mut fc_lr_mul;
        let (mut image_size, mut train_crop, mut test_resize, mut flip);
        let mut evaluation = RetrievalSettings::new(vec![1, 4, 16, 32]);
        match preset {
            Preset::Cpu => {
                if args.backbone.is_none() {
                    model.backbone = "resnet18".into();
                }
                model.base_width = 32;
                // From random weights BatchNorm must learn its statistics.
                model.frozen_batch_norm = false;
                let epochs = args.epochs.unwrap_or(12);
                trainer = TrainerConfig {
                    schedule: LrSchedule::MultiStep {
                        milestones: vec![epochs * 6 / 10, epochs * 8 / 10],
                        gamma: 0.1,
                    },
                    eval_every: 2,
                    ..TrainerConfig::new(epochs, OptimizerSetting::adam(0.0), 1e-3)
                };
                batch_size = 64;
                fc_lr_mul = 0.0;
                image_size = 64;
                train_crop = TrainCrop::ResizeThenCrop { resize: 72 };
                test_resize = None;
                flip = data.dataset != "omniglot";
            }
            Preset::Paper => {
                trainer = paper_trainer(args.epochs.unwrap_or(400), 1e-5, 4e-4);
                batch_size = 384;
                // The ViT runs keep one group (fc_lr_mul 0): they have no `last_linear`.
                fc_lr_mul = if vit { 0.0 } else { 1.0 };
                // Smooth-AP's datasets crop 227 whenever the network is not the ResNet-50.
                image_size = if vit { 227 } else { 224 };
                train_crop = TrainCrop::RandomResized { scale: [0.08, 1.0] };
                test_resize = Some(256);
                flip = true;
            }
        }
        set(&args.base_width, &mut model.base_width);
        set(&args.frozen_batch_norm, &mut model.frozen_batch_norm);
        set(&args.embed_dim, &mut model.embed_dim);
        set(&args.loss, &mut model.loss);
        set(&args.temperature, &mut model.temperature);
        set(&args.samples_per_class, &mut model.samples_per_class);
        set(&args.include_query, &mut model.include_query);
        set(&args.ams_margin, &mut model.ams_margin);
        set(&args.ams_scale, &mut model.ams_scale);
        set(&args.drop_path, &mut model.drop_path);
        set(&args.batch_size, &mut batch_size);
        set(&args.fc_lr_mul, &mut fc_lr_mul);
        set(&args.lr, &mut trainer.lr);
        set(&args.eval_every, &mut trainer.eval_every);
        set(&args.seed, &mut trainer.seed);
        set(&args.recalls, &mut evaluation.recall_ks);
        set(&args.flip, &mut flip);
        if let Some(wd) = args.weight_decay {
            trainer.optimizer = OptimizerSetting::adam(wd);
        }
        if let LrSchedule::MultiStep { milestones, gamma } = &mut trainer.schedule {
            set(&args.milestones, milestones);
            set(&args.gamma, gamma);
        }
        if let Some(s) = args.image_size {
            image_size = s;
            if let TrainCrop::ResizeThenCrop { resize } = &mut train_crop {
                *resize = s * 9 / 8;
            }
        }
        if let Some(r) = args.test_resize {
            test_resize = (r > 0).then_some(r);
        }
        model.image_size = image_size as usize;
        if !vit {
            model.drop_path = args.drop_path.unwrap_or(0.0);
        }
        // Smooth-AP's ViT runs freeze all but the last block; `last_linear` (ResNets) may be
        // its own group.
        if let Some(frozen) = model.frozen_vit_params()? {
            trainer
                .param_groups
                .push(ParamGroupSetting::new(frozen).frozen());
        }
        if fc_lr_mul > 0.0 && !vit {
            trainer
                .param_groups
                .push(ParamGroupSetting::new("last_linear.**").with_lr_multiplier(fc_lr_mul));
        }
        evaluation.clustering_seed = Some(trainer.seed);
        evaluation.skip_corrupt = args.run.skip_corrupt;
        // A baseline with the model's own loss would only repeat it.
        let baseline = if args.no_baseline {
            None
        } else {
            Some(args.baseline.unwrap_or(SmoothApLossKind::Ams)).filter(|b| *b != model.loss)
        };
        let (mean, std) = metron_backbones::preprocessing(&model.backbone)
            .map(|p| (p.mean, p.std))
            .unwrap_or((metron_core::IMAGENET_MEAN, metron_core::IMAGENET_STD));
        Ok(SmoothApRunConfig {
            data,
            preset,
            image_size,
            train_crop,
            test_resize,
            flip,
            mean,
            std,
            pretrained: args.run.pretrained.clone(),
            init_checkpoint: None,
            model,
            batch_size,
            baseline,
            trainer,
            evaluation,
        })
    }

    /// The training transform: the crop, an optional flip, the backbone's normalisation.
    pub fn train_pipeline(&self) -> Pipeline {
        let s = self.image_size;
        let mut steps = match &self.train_crop {
            TrainCrop::RandomResized { scale } => vec![Transform::RandomResizedCrop {
                size: [s, s],
                scale: *scale,
                ratio: [3.0 / 4.0, 4.0 / 3.0],
            }],
            TrainCrop::ResizeThenCrop { resize } => vec![
                Transform::Resize { size: [*resize; 2] },
                Transform::RandomCrop { size: [s, s] },
            ],
        };
        if self.flip {
            steps.push(Transform::HorizontalFlip { p: 0.5 });
        }
        Pipeline::new(steps).with_normalization(self.mean, self.std)
    }

    /// The deterministic test transform, saved in the checkpoints.
    pub fn test_pipeline(&self) -> PipelineSpec {
        PipelineSpec {
            shorter_side: self.test_resize,
            ..PipelineSpec::resize([self.image_size; 2], self.mean, self.std)
        }
    }

    /// The same run with `loss` in place of the model's loss (the baseline), without a
    /// baseline of its own.
    pub fn with_loss(&self, loss: SmoothApLossKind) -> Self {
        let mut c = self.clone();
        c.model.loss = loss;
        c.baseline = None;
        c
    }

    /// The class-contiguous sampler over `labels` (one per training image).
    pub fn sampler(&self, labels: &[usize]) -> Result<ClassContiguousSampler, SystemError> {
        Ok(ClassContiguousSampler::new(
            labels,
            self.batch_size,
            self.model.samples_per_class,
            self.trainer.seed,
        )?)
    }

    /// The model with random weights, then the pretrained weights and the starting checkpoint
    /// (unless `load_pretrained` is false: a run's own checkpoint will replace them).
    pub fn build_model(
        &self,
        device: &Device,
        load_pretrained: bool,
        quiet: bool,
    ) -> Result<SmoothApModel, SystemError> {
        let mut model: SmoothApModel =
            metron_core::seeded_init(device, self.trainer.seed, || self.model.init(device))?;
        if let (Some(path), true) = (&self.pretrained, load_pretrained) {
            model.trunk = match model.trunk {
                super::SmoothApTrunk::ResNet(resnet) => {
                    let entry = self.model.backbone_entry()?;
                    let (resnet, report) = load_pretrained_resnet(resnet, entry, path)?;
                    if !quiet {
                        eprintln!("loaded {} tensors from {}", report.applied, path.display());
                    }
                    super::SmoothApTrunk::ResNet(resnet)
                }
                super::SmoothApTrunk::Vit(vit) => {
                    let (vit, report) = super::load_dino_vit(vit, path)?;
                    if !quiet {
                        eprintln!("loaded {} tensors from {}", report.applied, path.display());
                    }
                    super::SmoothApTrunk::Vit(vit)
                }
            };
        }
        if let (Some(path), true) = (&self.init_checkpoint, load_pretrained) {
            model = metron_train::read_checkpoint(path)?.load_model(model, path)?;
        }
        Ok(model)
    }

    /// What a reader of the numbers needs to compare them.
    pub fn setup(&self) -> serde_json::Value {
        let m = &self.model;
        let vit = m.is_vit().unwrap_or(false);
        json!({
            "dataset": self.data.dataset,
            "loss": match m.loss {
                SmoothApLossKind::Smoothap => format!(
                    "smoothap (tau {}, {} per class, query {})",
                    m.temperature, m.samples_per_class,
                    if m.include_query { "included" } else { "excluded" }),
                SmoothApLossKind::Ams => format!("ams (m {}, s {})", m.ams_margin, m.ams_scale),
                SmoothApLossKind::Ce => "ce".to_string(),
            },
            "backbone": if vit {
                format!("{} (CLS, drop path {}{})", m.backbone, m.drop_path,
                    if self.pretrained.is_some() { ", pretrained" } else { ", random init" })
            } else {
                format!("{} (base width {}, BatchNorm {}{})", m.backbone, m.base_width,
                    if m.frozen_batch_norm { "frozen" } else { "trained" },
                    if self.pretrained.is_some() { ", pretrained" } else { ", random init" })
            },
            "embedding_dim": m.embed_dim,
            "image_size": self.image_size,
            "augmentation": format!("{}{}",
                match &self.train_crop {
                    TrainCrop::RandomResized { scale } => format!("random resized crop {s}x{s} (scale {}-{})", scale[0], scale[1], s = self.image_size),
                    TrainCrop::ResizeThenCrop { resize } => format!("resize {r}x{r}, random crop {s}x{s}", r = resize, s = self.image_size),
                },
                if self.flip { ", horizontal flip" } else { "" }),
            "batch": format!("{} = {} classes x {}", self.batch_size,
                self.batch_size / m.samples_per_class.max(1), m.samples_per_class),
            "epochs": self.trainer.epochs,
            "optimizer": format!("{:?}, lr {}", self.trainer.optimizer, self.trainer.lr),
        })
    }
}

fn set<T: Clone>(flag: &Option<T>, into: &mut T) {
    if let Some(v) = flag {
        *into = v.clone();
    }
}

/// What `--json` prints: the retrieval report plus the baseline's metrics.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SmoothApReport {
    /// Trained / untrained network, raw pixels, setup and run directory.
    #[serde(flatten)]
    pub main: RetrievalReport,
    /// The baseline's loss and metrics (absent with `--no-baseline`).
    pub baseline: Option<BaselineReport>,
}

/// The same network trained with another loss.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BaselineReport {
    /// The baseline's loss.
    pub loss: SmoothApLossKind,
    /// Its metrics on the test split (`recall_at_K`, `nmi`, `ami`).
    pub metrics: BTreeMap<String, f64>,
}

/// What [`run`] ended with.
#[derive(Debug)]
pub enum SmoothApOutcome {
    /// Both runs finished.
    Finished(Box<SmoothApReport>),
    /// Stopped early by `--stop-after`; resume from the run directory.
    Stopped {
        /// The run directory to resume.
        run_dir: PathBuf,
        /// Epochs trained so far (of the run that stopped).
        epochs_done: usize,
    },
}

/// Trains `config` in `run` (new or resumed) on `data`.
pub fn train_one(
    config: &SmoothApRunConfig,
    run: RunDir,
    data: &RetrievalData,
    run_args: &RunArgs,
    started: Instant,
) -> Result<RetrievalOutcome, SystemError> {
    let device = metron_core::parse_device(&run_args.device)?.autodiff();
    let has_checkpoint = run.last_checkpoint().is_file();
    let model = config.build_model(&device, !has_checkpoint, run_args.quiet)?;
    let labels: Vec<usize> = data.train.samples.iter().map(|s| s.label).collect();
    let sampler = config.sampler(&labels)?;
    train_and_report(
        RetrievalJob {
            run,
            trainer: config.trainer.clone(),
            model,
            sampler: &sampler,
            data,
            train_pipeline: config.train_pipeline(),
            test_pipeline: config.test_pipeline(),
            settings: &config.evaluation,
            setup: config.setup(),
            quiet: run_args.quiet,
            stop_after: run_args.stop_after,
            started,
        },
        &device,
    )
}

fn open_or_create(dir: &Path, config: &SmoothApRunConfig) -> Result<RunDir, SystemError> {
    Ok(if dir.join("config.json").is_file() {
        RunDir::open(dir)?
    } else {
        RunDir::create(dir, config)?
    })
}

/// Trains and evaluates a Smooth-AP model (and its baseline) as `args` say.
pub fn run(args: &SmoothApArgs) -> Result<SmoothApOutcome, SystemError> {
    let started = Instant::now();
    let registry = load_registry(args.run.registry.as_deref())?;
    let (config, existing, data) = match &args.run.resume {
        Some(dir) => {
            refuse_flags_on_resume(dir, &args.configuration_flags())?;
            let run = RunDir::open(dir)?;
            let config: SmoothApRunConfig = run.read_config()?;
            let data = config.data.read(&registry, args.run.quiet)?;
            (config, Some(run), data)
        }
        None => {
            let source = DataSource::resolve(
                &registry,
                &args.run.dataset(),
                args.run.root.as_deref(),
                args.run.csv.as_deref(),
            )?;
            let splits = source.read(&registry, args.run.quiet)?;
            // The class count fixes the width of the ams / ce classifier.
            let classes = splits.train.classes.len();
            (
                SmoothApRunConfig::resolve(args, source, classes)?,
                None,
                splits,
            )
        }
    };
    if config.preset == Preset::Paper && config.pretrained.is_none() && !args.run.quiet {
        eprintln!(
            "warning: --preset paper fine-tunes ImageNet (ResNet) or DINO (ViT) weights; \
             without --pretrained the network starts from random weights"
        );
    }
    // Both configurations and the sampler must build before anything is written.
    let device = metron_core::parse_device(&args.run.device)?;
    let baseline = config.baseline.map(|loss| config.with_loss(loss));
    for c in std::iter::once(&config).chain(&baseline) {
        c.model.init(&device)?;
    }
    let labels: Vec<usize> = data.train.samples.iter().map(|s| s.label).collect();
    config.sampler(&labels)?;
    let run = match existing {
        Some(run) => run,
        None => {
            let dir = args
                .run
                .run_dir
                .clone()
                .unwrap_or_else(|| free_run_dir(super::KIND, &args.run.dataset()));
            RunDir::create(&dir, &config)?
        }
    };
    let root = run.root().to_path_buf();
    let main = match train_one(&config, run, &data, &args.run, started)? {
        RetrievalOutcome::Finished(report) => *report,
        RetrievalOutcome::Stopped {
            run_dir,
            epochs_done,
        } => {
            return Ok(SmoothApOutcome::Stopped {
                run_dir,
                epochs_done,
            });
        }
    };
    let baseline = match &baseline {
        Some(b) => {
            if !args.run.quiet {
                eprintln!(
                    "baseline: the same network trained with {}:",
                    b.model.loss.name()
                );
            }
            let dir = root.join(format!("baseline_{}", b.model.loss.name()));
            match train_one(b, open_or_create(&dir, b)?, &data, &args.run, started)? {
                RetrievalOutcome::Finished(report) => Some(BaselineReport {
                    loss: b.model.loss,
                    metrics: report.trained,
                }),
                // `--resume` takes the main run's directory, which resumes the baseline too.
                RetrievalOutcome::Stopped { epochs_done, .. } => {
                    return Ok(SmoothApOutcome::Stopped {
                        run_dir: root,
                        epochs_done,
                    });
                }
            }
        }
        None => None,
    };
    let mut main = main;
    main.seconds = started.elapsed().as_secs_f64();
    let report = SmoothApReport { main, baseline };
    let run = RunDir::open(&root)?;
    run.write_json(&run.report_path(), &report)?;
    Ok(SmoothApOutcome::Finished(Box::new(report)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: SmoothApArgs,
    }

    fn resolve(argv: &[&str]) -> SmoothApRunConfig {
        let args = Cli::parse_from(std::iter::once("smooth_ap").chain(argv.iter().copied())).args;
        let data = DataSource {
            dataset: args.run.dataset(),
            root: PathBuf::from("root"),
            csv: None,
        };
        SmoothApRunConfig::resolve(&args, data, 948).unwrap()
    }

    fn milestones(c: &SmoothApRunConfig) -> (Vec<usize>, f64) {
        match &c.trainer.schedule {
            LrSchedule::MultiStep { milestones, gamma } => (milestones.clone(), *gamma),
            other => panic!("{other:?}"),
        }
    }

    /// `--preset paper` is section 3 of the seed spec, setting by setting.
    #[test]
    fn the_paper_preset_is_the_published_configuration() {
        let c = resolve(&["--preset", "paper", "--dataset", "inaturalist-smoothap"]);
        let m = &c.model;
        assert_eq!((m.backbone.as_str(), m.base_width), ("resnet50", 64));
        assert!(m.frozen_batch_norm, "every BatchNorm frozen (s.3.1)");
        assert_eq!((m.embed_dim, m.loss), (128, SmoothApLossKind::Smoothap));
        assert_eq!((m.temperature, m.samples_per_class), (0.01, 4));
        assert!(
            m.include_query,
            "the official code counts the query (s.3.2)"
        );
        assert_eq!((m.ams_margin, m.ams_scale, m.num_classes), (0.3, 30.0, 948));
        assert_eq!(m.drop_path, 0.0);
        let t = &c.trainer;
        assert_eq!(
            t.optimizer,
            OptimizerSetting::adam(4e-4),
            "torch Adam, L2 4e-4"
        );
        assert_eq!((t.lr, t.epochs, t.seed, t.eval_every), (1e-5, 400, 1, 5));
        assert_eq!(milestones(&c), (vec![40, 70], 0.3));
        assert_eq!(t.schedule_unit, metron_train::StepUnit::Epoch);
        // fc_lr_mul 1: `last_linear` is its own group at the base rate.
        assert_eq!(
            t.param_groups,
            vec![ParamGroupSetting::new("last_linear.**").with_lr_multiplier(1.0)]
        );
        assert_eq!(c.batch_size, 384);
        assert_eq!(c.batch_size / m.samples_per_class, 96);
        assert_eq!(c.image_size, 224);
        assert_eq!(
            c.train_crop,
            TrainCrop::RandomResized { scale: [0.08, 1.0] }
        );
        assert!(c.flip);
        assert_eq!(c.test_resize, Some(256));
        let spec = c.test_pipeline();
        assert_eq!((spec.shorter_side, spec.size), (Some(256), [224, 224]));
        assert_eq!(c.evaluation.recall_ks, vec![1, 4, 16, 32]);
        assert_eq!(c.evaluation.clustering_seed, Some(1), "NMI reported");
        assert_eq!(
            (c.mean, c.std),
            (metron_core::IMAGENET_MEAN, metron_core::IMAGENET_STD)
        );
        assert_eq!(c.baseline, Some(SmoothApLossKind::Ams));
    }

    #[test]
    fn the_paper_vit_is_dino_vit_b16_with_all_but_the_last_block_frozen() {
        let c = resolve(&["--preset", "paper", "--backbone", "vit_base_patch16"]);
        let m = &c.model;
        assert_eq!((m.embed_dim, m.drop_path, m.image_size), (768, 0.1, 227));
        assert_eq!(
            c.image_size, 227,
            "Smooth-AP crops 227 whenever the arch is not resnet50"
        );
        // fc_lr_mul 0 for the ViT: one group, less the frozen parameters.
        assert_eq!(
            c.trainer.param_groups,
            vec![
                ParamGroupSetting::new("trunk.Vit.patch_embed.**|trunk.Vit.blocks.{0-10}.**")
                    .frozen()
            ]
        );
    }

    #[test]
    fn every_setting_is_overridable_by_its_flag() {
        let c = resolve(&[
            "--preset",
            "paper",
            "--loss",
            "ams",
            "--baseline",
            "ce",
            "--backbone",
            "resnet34",
            "--base-width",
            "32",
            "--frozen-batch-norm",
            "false",
            "--image-size",
            "128",
            "--test-resize",
            "0",
            "--embed-dim",
            "64",
            "--batch-size",
            "32",
            "--samples-per-class",
            "8",
            "--lr",
            "0.01",
            "--weight-decay",
            "0.1",
            "--fc-lr-mul",
            "10",
            "--epochs",
            "30",
            "--milestones",
            "10,20",
            "--gamma",
            "0.5",
            "--temperature",
            "0.05",
            "--include-query",
            "false",
            "--ams-margin",
            "0.2",
            "--ams-scale",
            "16",
            "--eval-every",
            "3",
            "--flip",
            "false",
            "--seed",
            "7",
            "--recalls",
            "1,2",
        ]);
        let m = &c.model;
        assert_eq!(
            (m.loss, c.baseline),
            (SmoothApLossKind::Ams, Some(SmoothApLossKind::Ce))
        );
        assert_eq!(
            (m.backbone.as_str(), m.base_width, m.frozen_batch_norm),
            ("resnet34", 32, false)
        );
        assert_eq!((c.image_size, c.test_resize, m.embed_dim), (128, None, 64));
        assert_eq!((c.batch_size, m.samples_per_class), (32, 8));
        let t = &c.trainer;
        assert_eq!(
            (t.lr, t.optimizer.clone()),
            (0.01, OptimizerSetting::adam(0.1))
        );
        assert_eq!(t.param_groups[0].lr_multiplier, 10.0);
        assert_eq!((t.epochs, t.eval_every, t.seed), (30, 3, 7));
        assert_eq!(milestones(&c), (vec![10, 20], 0.5));
        assert_eq!((m.temperature, m.include_query), (0.05, false));
        assert_eq!((m.ams_margin, m.ams_scale), (0.2, 16.0));
        assert!(!c.flip);
        assert_eq!(c.evaluation.recall_ks, vec![1, 2]);
        assert_eq!(c.evaluation.clustering_seed, Some(7));
        // A baseline with the model's own loss would repeat it: none is trained.
        assert_eq!(
            resolve(&["--loss", "ams", "--baseline", "ams"]).baseline,
            None
        );
        assert_eq!(resolve(&["--no-baseline"]).baseline, None);
    }

    #[test]
    fn the_cpu_preset_trains_a_narrow_resnet_from_scratch_without_flips_on_handwriting() {
        let c = resolve(&[]);
        let m = &c.model;
        assert_eq!((m.backbone.as_str(), m.base_width), ("resnet18", 32));
        assert!(
            !m.frozen_batch_norm,
            "random BatchNorm statistics must be learned"
        );
        assert_eq!((c.image_size, c.batch_size), (64, 64));
        assert_eq!(c.train_crop, TrainCrop::ResizeThenCrop { resize: 72 });
        assert!(!c.flip && c.test_resize.is_none());
        assert!(c.trainer.param_groups.is_empty());
        assert_eq!(c.baseline, Some(SmoothApLossKind::Ams));
    }
}
