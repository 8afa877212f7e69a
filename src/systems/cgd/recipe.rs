//! The CGD recipe behind `cargo run --release --example cgd`: resolve a configuration (a
//! preset plus flags), train in a run directory, and report Recall@K of the trained network
//! beside the untrained network and raw pixels.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use serde::{Deserialize, Serialize};
use serde_json::json;

use metron_datasets::{Pipeline, Transform};
use metron_samplers::MPerClassSampler;
use metron_train::{LrSchedule, OptimizerSetting, PipelineSpec, RunDir, SamSetting, TrainerConfig};

use super::{CgdModel, CgdModelConfig};
use crate::systems::SystemError;
use crate::systems::retrieval::{
    DataSource, RetrievalJob, RetrievalOutcome, RetrievalSettings, RunArgs, free_run_dir,
    load_pretrained_resnet, load_registry, refuse_flags_on_resume, train_and_report,
};

/// Starting points for every setting; each one can be overridden by its flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Preset {
    /// Minutes on 2 CPU cores: a narrow ResNet-18 (base width 32) from scratch at 64 x 64,
    /// 128-d SG embedding, batch 64 (4 per class), Adam 1e-3, 12 epochs.
    Cpu,
    /// The paper's setting (needs a GPU and ImageNet weights via --pretrained): ResNet-50 with
    /// layer3 stride 1 and frozen BatchNorm, SG, 1536-d, batch 128 (4 per class), label
    /// smoothing 0.1, temperature 0.5, margin 0.1, Adam 1e-4, 20 epochs (milestones 12, 16),
    /// 252 -> 224 random crops with horizontal flips.
    Paper,
}

/// Flags of the `cgd` example.
#[derive(Debug, Clone, Args)]
pub struct CgdArgs {
    /// Data, run directory, device and output: the flags every retrieval example takes.
    #[command(flatten)]
    pub run: RunArgs,
    /// cpu (default) or paper.
    #[arg(long, value_enum)]
    pub preset: Option<Preset>,
    /// The ResNet trunk: resnet18 (cpu preset), resnet34, resnet50 (paper) or resnext50_32x4d.
    #[arg(long)]
    pub backbone: Option<String>,
    /// Stem / stage-1 width of the ResNet (64 = torchvision; cpu preset: 32).
    #[arg(long)]
    pub base_width: Option<usize>,
    /// Network input size (square).
    #[arg(long)]
    pub image_size: Option<u32>,
    /// Training images are resized to this, then randomly cropped to --image-size.
    #[arg(long)]
    pub resize_size: Option<u32>,
    /// Global descriptors (S, M, G combinations, e.g. SG, MG, SMG).
    #[arg(long)]
    pub gd_config: Option<String>,
    /// Embedding size, split evenly among the descriptors (cpu: 128, paper: 1536).
    #[arg(long)]
    pub feature_dim: Option<usize>,
    /// Images per batch (cpu: 64, paper: 128).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Images per class in a batch.
    #[arg(long)]
    pub samples_per_class: Option<usize>,
    /// Learning rate of Adam (cpu: 1e-3, paper: 1e-4).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Training epochs (cpu: 12, paper: 20).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Epochs at which the learning rate drops 10x, comma separated (default 60% and 80%).
    #[arg(long, value_delimiter = ',')]
    pub milestones: Option<Vec<usize>>,
    /// Label smoothing of the classifier's cross entropy, in [0, 1) (default 0.1).
    #[arg(long)]
    pub label_smoothing: Option<f64>,
    /// Temperature dividing the classifier's logits (default 0.5).
    #[arg(long)]
    pub temperature: Option<f64>,
    /// Margin of the batch-hard triplet loss (default 0.1).
    #[arg(long)]
    pub margin: Option<f64>,
    /// Normalise with BatchNorm's running statistics while training: true or false (cpu:
    /// false, paper: true).
    #[arg(long)]
    pub frozen_batch_norm: Option<bool>,
    /// Keep layer3 at stride 1 for a larger feature map: true or false (cpu: false, paper: true).
    #[arg(long)]
    pub layer3_stride_1: Option<bool>,
    /// Random horizontal flips in training (off for handwriting, where a mirror image is
    /// another character).
    #[arg(long)]
    pub flip: Option<bool>,
    /// Train with SAM of this radius.
    #[arg(long)]
    pub sam_rho: Option<f64>,
    /// Seed of initialisation, sampling and augmentation (default 0).
    #[arg(long)]
    pub seed: Option<u64>,
    /// The K of Recall@K, comma separated.
    #[arg(long, value_delimiter = ',')]
    pub recalls: Option<Vec<usize>>,
}

impl CgdArgs {
    /// The flags that set part of a run's configuration: with `--resume` the stored
    /// configuration is the run's, so any of them would be silently ignored.
    pub fn configuration_flags(&self) -> Vec<&'static str> {
        let a = self;
        [
            ("--preset", a.preset.is_some()),
            ("--backbone", a.backbone.is_some()),
            ("--base-width", a.base_width.is_some()),
            ("--image-size", a.image_size.is_some()),
            ("--resize-size", a.resize_size.is_some()),
            ("--gd-config", a.gd_config.is_some()),
            ("--feature-dim", a.feature_dim.is_some()),
            ("--batch-size", a.batch_size.is_some()),
            ("--samples-per-class", a.samples_per_class.is_some()),
            ("--lr", a.lr.is_some()),
            ("--epochs", a.epochs.is_some()),
            ("--milestones", a.milestones.is_some()),
            ("--label-smoothing", a.label_smoothing.is_some()),
            ("--temperature", a.temperature.is_some()),
            ("--margin", a.margin.is_some()),
            ("--frozen-batch-norm", a.frozen_batch_norm.is_some()),
            ("--layer3-stride-1", a.layer3_stride_1.is_some()),
            ("--flip", a.flip.is_some()),
            ("--sam-rho", a.sam_rho.is_some()),
            ("--seed", a.seed.is_some()),
            ("--recalls", a.recalls.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, given)| given.then_some(name))
        .chain(a.run.configuration_flags())
        .collect()
    }
}

/// Everything a CGD run was configured with; saved as the run's `config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CgdRunConfig {
    /// Where the images come from.
    pub data: DataSource,
    /// The preset the flags were applied to.
    pub preset: Preset,
    /// Network input size in pixels (square): training crops and test resizes.
    pub image_size: u32,
    /// Training images are resized to this square size, then randomly cropped to `image_size`.
    pub resize_size: u32,
    /// Random horizontal flips in training.
    pub flip: bool,
    /// Per-channel (RGB) normalisation mean, on the [0, 1] scale (the backbone's own).
    pub mean: [f32; 3],
    /// Per-channel (RGB) normalisation standard deviation (the backbone's own).
    pub std: [f32; 3],
    /// torchvision weights the backbone started from; `None` for random initialisation.
    pub pretrained: Option<PathBuf>,
    /// The network and its loss.
    pub model: CgdModelConfig,
    /// Images per training batch.
    pub batch_size: usize,
    /// Images per class in a batch (the M-per-class sampler).
    pub samples_per_class: usize,
    /// Optimizer, schedule, epochs and seed of the training loop.
    pub trainer: TrainerConfig,
    /// Recall@K, evaluation batch size and the retrieval grid.
    pub evaluation: RetrievalSettings,
}

/// CGD's training recipe (section 4.4 of the seed spec) for `epochs` epochs: Adam (PyTorch's
/// defaults) at 1e-4, divided by 10 at 60% and 80% of the epochs.
pub fn paper_trainer(epochs: usize) -> TrainerConfig {
    TrainerConfig {
        schedule: LrSchedule::MultiStep {
            milestones: vec![epochs * 6 / 10, epochs * 8 / 10],
            gamma: 0.1,
        },
        ..TrainerConfig::new(epochs, OptimizerSetting::adam(0.0), 1e-4)
    }
}

impl CgdRunConfig {
    /// The preset with the flags applied, for `num_classes` training classes.
    pub fn resolve(args: &CgdArgs, data: DataSource, num_classes: usize) -> Self {
        let preset = args.preset.unwrap_or(Preset::Cpu);
        let mut model = CgdModelConfig::paper(num_classes);
        let epochs;
        let mut trainer;
        let mut batch_size = 128;
        let (image_size, resize_size, flip);
        match preset {
            Preset::Cpu => {
                model.backbone = "resnet18".into();
                model.base_width = 32;
                model.layer3_stride_1 = false;
                // From random weights BatchNorm must learn its statistics.
                model.frozen_batch_norm = false;
                model.feature_dim = 128;
                epochs = args.epochs.unwrap_or(12);
                trainer = paper_trainer(epochs);
                batch_size = 64;
                trainer.lr = 1e-3;
                (image_size, resize_size) = (64, 72);
                flip = data.dataset != "omniglot";
            }
            Preset::Paper => {
                epochs = args.epochs.unwrap_or(20);
                trainer = paper_trainer(epochs);
                (image_size, resize_size, flip) = (224, 252, true);
            }
        }
        let mut evaluation = RetrievalSettings::new(vec![1, 2, 4, 8]);
        let mut samples_per_class = 4;
        set(&args.backbone, &mut model.backbone);
        set(&args.base_width, &mut model.base_width);
        set(&args.gd_config, &mut model.descriptors);
        set(&args.feature_dim, &mut model.feature_dim);
        set(&args.label_smoothing, &mut model.label_smoothing);
        set(&args.temperature, &mut model.temperature);
        set(&args.margin, &mut model.margin);
        set(&args.frozen_batch_norm, &mut model.frozen_batch_norm);
        set(&args.layer3_stride_1, &mut model.layer3_stride_1);
        set(&args.batch_size, &mut batch_size);
        set(&args.samples_per_class, &mut samples_per_class);
        set(&args.lr, &mut trainer.lr);
        if let (Some(m), LrSchedule::MultiStep { milestones, .. }) =
            (&args.milestones, &mut trainer.schedule)
        {
            *milestones = m.clone();
        }
        set(&args.seed, &mut trainer.seed);
        set(&args.recalls, &mut evaluation.recall_ks);
        if let Some(rho) = args.sam_rho {
            trainer.sam = Some(SamSetting::Sam { rho });
        }
        evaluation.skip_corrupt = args.run.skip_corrupt;
        let image_size = args.image_size.unwrap_or(image_size);
        let resize_size = args.resize_size.unwrap_or(if args.image_size.is_some() {
            image_size * 9 / 8
        } else {
            resize_size
        });
        // The backbone's own normalisation (an unknown name fails at init, with the list).
        let (mean, std) = metron_backbones::preprocessing(&model.backbone)
            .map(|p| (p.mean, p.std))
            .unwrap_or((metron_core::IMAGENET_MEAN, metron_core::IMAGENET_STD));
        CgdRunConfig {
            data,
            preset,
            image_size,
            resize_size,
            flip: args.flip.unwrap_or(flip),
            mean,
            std,
            pretrained: args.run.pretrained.clone(),
            model,
            batch_size,
            samples_per_class,
            trainer,
            evaluation,
        }
    }

    fn train_pipeline(&self) -> Pipeline {
        let mut steps = vec![
            Transform::Resize {
                size: [self.resize_size; 2],
            },
            Transform::RandomCrop {
                size: [self.image_size; 2],
            },
        ];
        if self.flip {
            steps.push(Transform::HorizontalFlip { p: 0.5 });
        }
        Pipeline::new(steps).with_normalization(self.mean, self.std)
    }

    fn test_pipeline(&self) -> PipelineSpec {
        PipelineSpec::resize([self.image_size; 2], self.mean, self.std)
    }

    /// What a reader of the numbers needs to compare them (backbone, embedding size, image
    /// size, augmentation).
    pub fn setup(&self) -> serde_json::Value {
        json!({
            "dataset": self.data.dataset,
            "backbone": format!("{} (base width {}{}{})", self.model.backbone, self.model.base_width,
                if self.model.layer3_stride_1 { ", layer3 stride 1" } else { "" },
                match &self.pretrained { Some(_) => ", pretrained", None => ", random init" }),
            "descriptors": self.model.descriptors,
            "embedding_dim": self.model.feature_dim,
            "image_size": self.image_size,
            "augmentation": format!("resize {r}x{r}, random crop {s}x{s}{}", if self.flip { ", horizontal flip" } else { "" },
                r = self.resize_size, s = self.image_size),
            "epochs": self.trainer.epochs,
            "batch_size": self.batch_size,
        })
    }
}

fn set<T: Clone>(flag: &Option<T>, into: &mut T) {
    if let Some(v) = flag {
        *into = v.clone();
    }
}

/// Trains and evaluates a CGD model as `args` say.
pub fn run(args: &CgdArgs) -> Result<RetrievalOutcome, SystemError> {
    let started = std::time::Instant::now();
    let registry = load_registry(args.run.registry.as_deref())?;
    let (config, existing, data) = match &args.run.resume {
        Some(dir) => {
            refuse_flags_on_resume(dir, &args.configuration_flags())?;
            let run = RunDir::open(dir)?;
            let config: CgdRunConfig = run.read_config()?;
            let data = config.data.read(&registry, args.run.quiet)?;
            (config, Some(run), data)
        }
        None => {
            let data = DataSource::resolve(
                &registry,
                &args.run.dataset(),
                args.run.root.as_deref(),
                args.run.csv.as_deref(),
            )?;
            let splits = data.read(&registry, args.run.quiet)?;
            // The class count fixes the classifier's width.
            let classes = splits.train.classes_present();
            (CgdRunConfig::resolve(args, data, classes), None, splits)
        }
    };
    if config.preset == Preset::Paper && config.pretrained.is_none() && !args.run.quiet {
        eprintln!(
            "warning: --preset paper starts from ImageNet weights in the paper; without \
             --pretrained the ResNet starts from random weights"
        );
    }

    let device = metron_core::parse_device(&args.run.device)?.autodiff();
    let mut model: CgdModel =
        metron_core::seeded_init(&device, config.trainer.seed, || config.model.init(&device))?;
    // The pretrained weights start every run that has no checkpoint yet, a resumed one too
    // (stopped before its first epoch ended); a checkpoint replaces them in `fit`.
    let has_checkpoint = existing
        .as_ref()
        .is_some_and(|run| run.last_checkpoint().is_file());
    if let (Some(path), false) = (&config.pretrained, has_checkpoint) {
        let entry = config.model.backbone_entry()?;
        let (backbone, report) = load_pretrained_resnet(model.backbone, entry, path)?;
        model.backbone = backbone;
        if !args.run.quiet {
            eprintln!(
                "loaded {} tensors from {}{}",
                report.applied,
                path.display(),
                if report.unused.is_empty() {
                    String::new()
                } else {
                    format!(" (classifier not used: {})", report.unused.join(", "))
                }
            );
        }
    }
    let labels: Vec<usize> = data.train.samples.iter().map(|s| s.label).collect();
    let sampler = MPerClassSampler::new(
        &labels,
        config.batch_size,
        config.samples_per_class,
        config.trainer.seed,
    )?;
    // The run directory is made only once the configuration has built a model, its
    // pretrained weights have loaded and its sampler exists: a failed start leaves nothing.
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
    train_and_report(
        RetrievalJob {
            run,
            trainer: config.trainer.clone(),
            model,
            sampler: &sampler,
            data: &data,
            train_pipeline: config.train_pipeline(),
            test_pipeline: config.test_pipeline(),
            settings: &config.evaluation,
            setup: config.setup(),
            quiet: args.run.quiet,
            stop_after: args.run.stop_after,
            started,
        },
        &device,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: CgdArgs,
    }

    fn resolve(argv: &[&str]) -> CgdRunConfig {
        let args = Cli::parse_from(std::iter::once("cgd").chain(argv.iter().copied())).args;
        let data = DataSource {
            dataset: args.run.dataset(),
            root: PathBuf::from("root"),
            csv: None,
        };
        CgdRunConfig::resolve(&args, data, 98)
    }

    /// `--preset paper` is section 4 of the seed spec, setting by setting.
    #[test]
    fn the_paper_preset_is_the_published_configuration() {
        let c = resolve(&["--preset", "paper", "--dataset", "cub"]);
        let m = &c.model;
        assert_eq!(m.backbone, "resnet50");
        assert_eq!(m.base_width, 64);
        assert!(m.layer3_stride_1 && m.frozen_batch_norm);
        assert_eq!(
            (m.descriptors.as_str(), m.feature_dim, m.num_classes),
            ("SG", 1536, 98)
        );
        assert_eq!(
            (m.label_smoothing, m.temperature, m.margin),
            (0.1, 0.5, 0.1)
        );
        let t = &c.trainer;
        assert_eq!((c.batch_size, c.samples_per_class), (128, 4));
        assert_eq!(
            t.optimizer,
            metron_train::OptimizerSetting::Adam {
                weight_decay: 0.0,
                betas: [0.9, 0.999],
                epsilon: 1e-8,
            },
            "PyTorch's Adam defaults, not Burn's (epsilon 1e-5)"
        );
        assert_eq!((t.lr, t.epochs), (1e-4, 20));
        assert_eq!(
            t.schedule,
            LrSchedule::MultiStep {
                milestones: vec![12, 16],
                gamma: 0.1
            }
        );
        assert_eq!(t.schedule_unit, metron_train::StepUnit::Epoch);
        assert!(t.param_groups.is_empty() && t.clip_grad_norm.is_none());
        assert_eq!(t.sam, None);
        assert_eq!(c.evaluation.recall_ks, vec![1, 2, 4, 8]);
        assert_eq!((c.resize_size, c.image_size, c.flip), (252, 224, true));
        // Normalisation and checkpoint keys come from the backbone table.
        let entry = metron_backbones::backbone_entry("resnet50").unwrap();
        assert_eq!(
            (c.mean, c.std),
            (entry.preprocessing.mean, entry.preprocessing.std)
        );
        assert_eq!(c.mean, metron_core::IMAGENET_MEAN);
    }

    #[test]
    fn every_setting_is_overridable_by_its_flag() {
        let c = resolve(&[
            "--preset",
            "paper",
            "--backbone",
            "resnext50_32x4d",
            "--gd-config",
            "MG",
            "--feature-dim",
            "512",
            "--batch-size",
            "64",
            "--samples-per-class",
            "8",
            "--lr",
            "0.001",
            "--epochs",
            "30",
            "--milestones",
            "10,20",
            "--label-smoothing",
            "0.2",
            "--temperature",
            "1.0",
            "--margin",
            "0.2",
            "--frozen-batch-norm",
            "false",
            "--layer3-stride-1",
            "false",
            "--flip",
            "false",
            "--sam-rho",
            "0.05",
            "--seed",
            "7",
            "--image-size",
            "128",
            "--recalls",
            "1,10",
        ]);
        assert_eq!(c.model.backbone, "resnext50_32x4d");
        assert_eq!(
            (c.model.descriptors.as_str(), c.model.feature_dim),
            ("MG", 512)
        );
        assert_eq!((c.batch_size, c.samples_per_class), (64, 8));
        assert_eq!((c.trainer.lr, c.trainer.epochs), (0.001, 30));
        let milestones = |c: &CgdRunConfig| match &c.trainer.schedule {
            LrSchedule::MultiStep { milestones, .. } => milestones.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(milestones(&c), vec![10, 20]);
        assert_eq!(
            (c.model.label_smoothing, c.model.temperature, c.model.margin),
            (0.2, 1.0, 0.2)
        );
        assert!(!c.model.frozen_batch_norm && !c.model.layer3_stride_1 && !c.flip);
        assert_eq!(
            (c.trainer.sam, c.trainer.seed),
            (Some(SamSetting::Sam { rho: 0.05 }), 7)
        );
        // A new --image-size keeps CGD's 9/8 resize-then-crop ratio unless --resize-size is given.
        assert_eq!((c.image_size, c.resize_size), (128, 144));
        assert_eq!(c.evaluation.recall_ks, vec![1, 10]);
        // Milestones follow --epochs when not given.
        let c = resolve(&["--preset", "paper", "--epochs", "10"]);
        assert_eq!(milestones(&c), vec![6, 8]);
    }

    #[test]
    fn the_cpu_preset_trains_from_scratch_without_flips_on_handwriting() {
        let c = resolve(&[]);
        assert_eq!(
            (c.model.backbone.as_str(), c.model.base_width),
            ("resnet18", 32)
        );
        assert!(
            !c.model.frozen_batch_norm,
            "random BatchNorm statistics must be learned"
        );
        assert!(!c.flip);
        assert!(resolve(&["--dataset", "cub"]).flip);
    }
}
