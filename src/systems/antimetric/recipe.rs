//! The AntiMetric recipe behind `cargo run --release --example antimetric`: resolve a
//! configuration (a preset plus flags), train the ensemble, then one learner alone with the
//! same budget, and report Recall@K of both beside the untrained ensemble and raw pixels.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::{Args, ValueEnum};
use serde::{Deserialize, Serialize};
use serde_json::json;

use metron_datasets::{Pipeline, Sample, Transform};
use metron_samplers::ShuffleSampler;
use metron_train::{LrSchedule, OptimizerSetting, PipelineSpec, RunDir, TrainerConfig};

use super::{AntiMetricModel, AntiMetricModelConfig};
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
    /// Minutes on 2 CPU cores: 4 learners of a narrow ResNet-18 (base width 16, layer1
    /// shared) from scratch at 64 x 64, 12 meta-classes, no fc (128-d pooled features as
    /// logits), batch 64, Adam 1e-3, 12 epochs.
    Cpu,
    /// The paper's setting (needs a GPU and ImageNet weights via --pretrained): 48 learners of
    /// ResNet-18 sharing layer1, M = 12 (Cars, CUB) / 512 (SOP) / 192 (In-shop), no fc, batch
    /// 32, Adam 1e-4, 20 epochs (40 for SOP, In-shop) with 10x drops at 50% and 70%, 256 x 256
    /// (resize the shorter side to 256, random crop 256, flips; test: centre crop), the
    /// dataset's own mean and std, at most 300 training images per class.
    Paper,
}

/// Flags of the `antimetric` example.
#[derive(Debug, Clone, Args)]
pub struct AntiMetricArgs {
    /// Data, run directory, device and output: the flags every retrieval example takes.
    #[command(flatten)]
    pub run: RunArgs,
    /// cpu (default) or paper.
    #[arg(long, value_enum)]
    pub preset: Option<Preset>,
    /// The ResNet: resnet18 (both presets), resnet34, resnet50 or resnext50_32x4d.
    #[arg(long)]
    pub backbone: Option<String>,
    /// Stem / stage-1 width of the ResNet (64 = torchvision; cpu preset: 16).
    #[arg(long)]
    pub base_width: Option<usize>,
    /// Where the shared trunk ends: maxpool, layer1 (default), layer2, layer3 or layer4.
    #[arg(long)]
    pub share: Option<String>,
    /// Number of learners E (cpu: 4, paper: 48).
    #[arg(long)]
    pub ensemble_size: Option<usize>,
    /// Meta-classes per learner M (cpu: 12; paper: 12 Cars/CUB, 512 SOP, 192 In-shop).
    #[arg(long)]
    pub meta_classes: Option<usize>,
    /// A fully connected layer per learner (default false: the pooled feature is the logit
    /// vector, as the original).
    #[arg(long)]
    pub with_fc: Option<bool>,
    /// Random branch weights in training, softmax of uniform noise per image (default false).
    #[arg(long)]
    pub with_random: Option<bool>,
    /// Network input size in pixels, square (cpu: 64, paper: 256).
    #[arg(long)]
    pub image_size: Option<u32>,
    /// Training images' shorter side is resized to this, then randomly cropped to
    /// --image-size (cpu: 72, paper: 256).
    #[arg(long)]
    pub resize_size: Option<u32>,
    /// The "cropped" protocol: crop every image to its dataset box, resize to the square input.
    #[arg(long)]
    pub cropped: Option<bool>,
    /// Random horizontal flips in training (off for handwriting).
    #[arg(long)]
    pub flip: Option<bool>,
    /// Images per batch (cpu: 64, paper: 32).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Learning rate of Adam (cpu: 1e-3, paper: 1e-4).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Training epochs (cpu: 12; paper: 20 Cars/CUB, 40 SOP/In-shop).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Epochs at which the learning rate drops 10x, comma separated (default 50% and 70%).
    #[arg(long, value_delimiter = ',')]
    pub milestones: Option<Vec<usize>>,
    /// At most this many training images per class, a seeded subsample (paper: 300; 0: all).
    #[arg(long)]
    pub per_class_cap: Option<usize>,
    /// Also train one learner alone (E = 1, the same budget) as a baseline (default true).
    #[arg(long)]
    pub single_learner: Option<bool>,
    /// Seed of initialisation, meta-class codes, sampling and augmentation (default 0).
    #[arg(long)]
    pub seed: Option<u64>,
    /// The K of Recall@K, comma separated.
    #[arg(long, value_delimiter = ',')]
    pub recalls: Option<Vec<usize>>,
}

impl AntiMetricArgs {
    /// The flags that set part of a run's configuration (refused with `--resume`).
    pub fn configuration_flags(&self) -> Vec<&'static str> {
        let a = self;
        [
            ("--preset", a.preset.is_some()),
            ("--backbone", a.backbone.is_some()),
            ("--base-width", a.base_width.is_some()),
            ("--share", a.share.is_some()),
            ("--ensemble-size", a.ensemble_size.is_some()),
            ("--meta-classes", a.meta_classes.is_some()),
            ("--with-fc", a.with_fc.is_some()),
            ("--with-random", a.with_random.is_some()),
            ("--image-size", a.image_size.is_some()),
            ("--resize-size", a.resize_size.is_some()),
            ("--cropped", a.cropped.is_some()),
            ("--flip", a.flip.is_some()),
            ("--batch-size", a.batch_size.is_some()),
            ("--lr", a.lr.is_some()),
            ("--epochs", a.epochs.is_some()),
            ("--milestones", a.milestones.is_some()),
            ("--per-class-cap", a.per_class_cap.is_some()),
            ("--single-learner", a.single_learner.is_some()),
            ("--seed", a.seed.is_some()),
            ("--recalls", a.recalls.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, given)| given.then_some(name))
        .chain(a.run.configuration_flags())
        .collect()
    }
}

/// Everything an AntiMetric run was configured with; saved as the run's `config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AntiMetricRunConfig {
    /// Where the images come from.
    pub data: DataSource,
    /// The preset the flags were applied to.
    pub preset: Preset,
    /// Network input size in pixels (square).
    pub image_size: u32,
    /// Training images' shorter side before the random crop (ignored when `cropped`).
    pub resize_size: u32,
    /// Crop to the dataset's boxes, then resize to the square input.
    pub cropped: bool,
    /// Random horizontal flips in training.
    pub flip: bool,
    /// Per-channel (RGB) normalisation mean.
    pub mean: [f32; 3],
    /// Per-channel (RGB) normalisation standard deviation.
    pub std: [f32; 3],
    /// torchvision weights the ResNet started from; `None` for random initialisation.
    pub pretrained: Option<PathBuf>,
    /// The ensemble, its meta-class codes included.
    pub model: AntiMetricModelConfig,
    /// Images per training batch (a seeded shuffle of the training split).
    pub batch_size: usize,
    /// At most this many training images per class (a seeded subsample); `None`: all.
    pub per_class_cap: Option<usize>,
    /// Also train one learner alone with the same budget.
    pub single_learner: bool,
    /// Optimizer, schedule, epochs and seed.
    pub trainer: TrainerConfig,
    /// Recall@K, evaluation batch size and the retrieval grid.
    pub evaluation: RetrievalSettings,
}

/// AntiMetric's schedule for `epochs` epochs: Adam (PyTorch's defaults) at `lr`, divided by
/// 10 at `floor(0.5 E)` and `floor(0.7 E)`.
pub fn paper_trainer(epochs: usize, lr: f64) -> TrainerConfig {
    TrainerConfig {
        schedule: LrSchedule::MultiStep {
            milestones: vec![epochs / 2, epochs * 7 / 10],
            gamma: 0.1,
        },
        ..TrainerConfig::new(epochs, OptimizerSetting::adam(0.0), lr)
    }
}

/// The per-dataset normalisation of the original (spec s. 5.3), for the datasets it names.
fn dataset_normalization(dataset: &str) -> Option<([f32; 3], [f32; 3])> {
    Some(match dataset {
        "cars196" | "car" => ([0.4853, 0.4965, 0.4295], [0.2237, 0.2193, 0.2568]),
        "cub" => ([0.4707, 0.4601, 0.4549], [0.2767, 0.2760, 0.2850]),
        "sop" => ([0.5807, 0.5396, 0.5044], [0.2901, 0.2974, 0.3095]),
        "inshop" | "isc" => ([0.8324, 0.8109, 0.8041], [0.2206, 0.2378, 0.2444]),
        _ => return None,
    })
}

/// The paper's meta-class count and epochs for a dataset (README: Cars/CUB 12 and 20 epochs,
/// SOP 512 and 40, In-shop 192 and 40).
fn paper_sizes(dataset: &str) -> (usize, usize) {
    match dataset {
        "sop" => (512, 40),
        "inshop" | "isc" => (192, 40),
        _ => (12, 20),
    }
}

fn set<T: Clone>(flag: &Option<T>, into: &mut T) {
    if let Some(v) = flag {
        *into = v.clone();
    }
}

impl AntiMetricRunConfig {
    /// The preset with the flags applied, for `num_classes` training classes (the meta-class
    /// codes are drawn here, from the seed).
    pub fn resolve(
        args: &AntiMetricArgs,
        data: DataSource,
        num_classes: usize,
    ) -> Result<Self, SystemError> {
        let preset = args.preset.unwrap_or(Preset::Cpu);
        let dataset = data.dataset.clone();
        let seed = args.seed.unwrap_or(0);
        let (mut backbone, mut base_width, mut ensemble_size, mut meta_classes) =
            ("resnet18".to_string(), 64, 48, paper_sizes(&dataset).0);
        let (mut epochs, mut batch_size, mut lr) = (paper_sizes(&dataset).1, 32, 1e-4);
        let (mut image_size, mut resize_size, mut flip) = (256, 256, true);
        let mut per_class_cap = Some(300);
        if preset == Preset::Cpu {
            base_width = 16;
            ensemble_size = 4;
            meta_classes = 12;
            epochs = 12;
            batch_size = 64;
            lr = 1e-3;
            (image_size, resize_size) = (64, 72);
            flip = dataset != "omniglot";
            per_class_cap = None;
        }
        set(&args.backbone, &mut backbone);
        set(&args.base_width, &mut base_width);
        set(&args.ensemble_size, &mut ensemble_size);
        set(&args.meta_classes, &mut meta_classes);
        set(&args.epochs, &mut epochs);
        set(&args.batch_size, &mut batch_size);
        set(&args.lr, &mut lr);
        set(&args.image_size, &mut image_size);
        set(&args.flip, &mut flip);
        resize_size = args.resize_size.unwrap_or(if args.image_size.is_some() {
            image_size * 9 / 8
        } else {
            resize_size
        });
        if let Some(cap) = args.per_class_cap {
            per_class_cap = (cap > 0).then_some(cap);
        }
        let mut model =
            AntiMetricModelConfig::new(&backbone, ensemble_size, meta_classes, num_classes, seed)?;
        model.base_width = base_width;
        set(&args.share, &mut model.share);
        set(&args.with_fc, &mut model.with_fc);
        set(&args.with_random, &mut model.with_random);
        let mut trainer = paper_trainer(epochs, lr);
        trainer.seed = seed;
        if let (Some(m), LrSchedule::MultiStep { milestones, .. }) =
            (&args.milestones, &mut trainer.schedule)
        {
            *milestones = m.clone();
        }
        let mut evaluation = RetrievalSettings::new(vec![1, 2, 4, 8]);
        set(&args.recalls, &mut evaluation.recall_ks);
        evaluation.skip_corrupt = args.run.skip_corrupt;
        let (mean, std) = dataset_normalization(&dataset)
            .or_else(|| {
                metron_backbones::preprocessing(&backbone)
                    .ok()
                    .map(|p| (p.mean, p.std))
            })
            .unwrap_or((metron_core::IMAGENET_MEAN, metron_core::IMAGENET_STD));
        Ok(AntiMetricRunConfig {
            data,
            preset,
            image_size,
            resize_size,
            cropped: args.cropped.unwrap_or(false),
            flip,
            mean,
            std,
            pretrained: args.run.pretrained.clone(),
            model,
            batch_size,
            per_class_cap,
            single_learner: args.single_learner.unwrap_or(true),
            trainer,
            evaluation,
        })
    }

    fn train_pipeline(&self) -> Pipeline {
        let s = self.image_size;
        let mut steps = if self.cropped {
            vec![Transform::Resize { size: [s, s] }]
        } else {
            vec![
                Transform::ResizeShorter {
                    size: self.resize_size,
                },
                Transform::RandomCrop { size: [s, s] },
            ]
        };
        if self.flip {
            steps.push(Transform::HorizontalFlip { p: 0.5 });
        }
        Pipeline::new(steps)
            .with_normalization(self.mean, self.std)
            .with_crop_to_box(self.cropped)
    }

    fn test_pipeline(&self) -> PipelineSpec {
        let s = self.image_size;
        PipelineSpec {
            shorter_side: (!self.cropped).then_some(s),
            crop_to_box: self.cropped,
            ..PipelineSpec::resize([s, s], self.mean, self.std)
        }
    }

    /// The baseline: one learner with the same trunk, budget and schedule. E = 1 cannot give
    /// more classes than meta-classes distinct codes, so it classifies the classes themselves
    /// (M = C: a plain softmax classifier), with a fully connected layer when the pooled
    /// feature is narrower than C.
    pub fn single_learner_config(&self) -> Result<Self, SystemError> {
        let classes = self.model.codes.len();
        let mut model = AntiMetricModelConfig::new(
            &self.model.backbone,
            1,
            classes,
            classes,
            self.trainer.seed,
        )?;
        model.base_width = self.model.base_width;
        model.share = self.model.share.clone();
        let width = model.resnet_config()?.out_channels();
        model.with_fc = self.model.with_fc || width < classes;
        Ok(AntiMetricRunConfig {
            model,
            single_learner: false,
            ..self.clone()
        })
    }

    /// What a reader of the numbers needs to compare them.
    pub fn setup(&self) -> serde_json::Value {
        let m = &self.model;
        json!({
            "dataset": self.data.dataset,
            "backbone": format!("{} (base width {}{})", m.backbone, m.base_width,
                match &self.pretrained { Some(_) => ", pretrained", None => ", random init" }),
            "ensemble": format!("{} learners sharing up to {}, {} meta-classes, {}{}", m.ensemble_size,
                m.share, m.meta_classes, if m.with_fc { "fc" } else { "pooled feature as logits" },
                if m.with_random { ", random branch weights" } else { "" }),
            "embedding_dim": m.embedding_dim().unwrap_or(0),
            "image_size": self.image_size,
            "augmentation": if self.cropped {
                format!("box crop, resize {s}x{s}{}", if self.flip { ", horizontal flip" } else { "" }, s = self.image_size)
            } else {
                format!("shorter side {r}, random crop {s}x{s}{}", if self.flip { ", horizontal flip" } else { "" },
                    r = self.resize_size, s = self.image_size)
            },
            "epochs": self.trainer.epochs,
            "batch_size": self.batch_size,
            "per_class_cap": self.per_class_cap,
        })
    }
}

/// At most `cap` samples of each class: a seeded subsample, kept in the split's order.
fn cap_per_class(samples: &[Sample], cap: usize, seed: u64) -> Vec<Sample> {
    use rand::seq::SliceRandom;
    let mut by_class: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, s) in samples.iter().enumerate() {
        by_class.entry(s.label).or_default().push(i);
    }
    let mut rng = metron_core::rng_from_seed(metron_core::split_seed(seed, 0xCA9));
    let mut keep: Vec<usize> = Vec::with_capacity(samples.len());
    for (_, mut members) in by_class {
        if members.len() > cap {
            members.shuffle(&mut rng);
            members.truncate(cap);
        }
        keep.extend(members);
    }
    keep.sort_unstable();
    keep.into_iter().map(|i| samples[i].clone()).collect()
}

/// What `--json` prints: the retrieval report plus the single learner's metrics.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AntiMetricReport {
    /// Trained / untrained ensemble, raw pixels, setup and run directory.
    #[serde(flatten)]
    pub ensemble: RetrievalReport,
    /// The single learner's metrics (absent with `--single-learner false`).
    pub single_learner: Option<BTreeMap<String, f64>>,
}

/// What [`run`] ended with.
#[derive(Debug)]
pub enum AntiMetricOutcome {
    /// Both runs finished.
    Finished(Box<AntiMetricReport>),
    /// Stopped early by `--stop-after`; resume from the run directory.
    Stopped {
        /// The run directory to resume.
        run_dir: PathBuf,
        /// Epochs of the ensemble trained so far.
        epochs_done: usize,
    },
}

/// Trains one configuration in `run` (new or resumed).
fn train_one(
    config: &AntiMetricRunConfig,
    run: RunDir,
    data: &RetrievalData,
    args: &AntiMetricArgs,
    started: Instant,
) -> Result<RetrievalOutcome, SystemError> {
    let device = metron_core::parse_device(&args.run.device)?.autodiff();
    let has_checkpoint = run.last_checkpoint().is_file();
    let model: AntiMetricModel = metron_core::seeded_init(&device, config.trainer.seed, || {
        let mut resnet = config.model.resnet_config()?.init(&device)?;
        // The pretrained weights start every run without a checkpoint; one replaces them.
        if let (Some(path), false) = (&config.pretrained, has_checkpoint) {
            let entry = metron_backbones::backbone_entry(&config.model.backbone)?;
            let (loaded, report) = load_pretrained_resnet(resnet, entry, path)?;
            resnet = loaded;
            if !args.run.quiet {
                eprintln!("loaded {} tensors from {}", report.applied, path.display());
            }
        }
        Ok::<_, SystemError>(config.model.from_resnet(resnet, &device)?)
    })?;
    let sampler = ShuffleSampler::new(
        data.train.samples.len(),
        config.batch_size,
        false,
        config.trainer.seed,
    )?;
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
            quiet: args.run.quiet,
            stop_after: args.run.stop_after,
            started,
        },
        &device,
    )
}

fn open_or_create(dir: &Path, config: &AntiMetricRunConfig) -> Result<RunDir, SystemError> {
    Ok(if dir.join("config.json").is_file() {
        RunDir::open(dir)?
    } else {
        RunDir::create(dir, config)?
    })
}

/// Trains and evaluates an AntiMetric ensemble (and the single-learner baseline) as `args`
/// say.
pub fn run(args: &AntiMetricArgs) -> Result<AntiMetricOutcome, SystemError> {
    let started = Instant::now();
    let registry = load_registry(args.run.registry.as_deref())?;
    let (config, existing, mut data) = match &args.run.resume {
        Some(dir) => {
            refuse_flags_on_resume(dir, &args.configuration_flags())?;
            let run = RunDir::open(dir)?;
            let config: AntiMetricRunConfig = run.read_config()?;
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
            // The class count fixes the meta-class codes.
            let classes = splits.train.classes.len();
            (
                AntiMetricRunConfig::resolve(args, source, classes)?,
                None,
                splits,
            )
        }
    };
    if data.train.classes.len() != config.model.codes.len() {
        return Err(SystemError::Usage(format!(
            "the training split has {} classes but the run's meta-class codes cover {}",
            data.train.classes.len(),
            config.model.codes.len()
        )));
    }
    if let Some(cap) = config.per_class_cap {
        data.train.samples = cap_per_class(&data.train.samples, cap, config.trainer.seed);
    }
    if config.preset == Preset::Paper && config.pretrained.is_none() && !args.run.quiet {
        eprintln!(
            "warning: --preset paper starts from ImageNet weights in the paper; without \
             --pretrained the ResNet starts from random weights"
        );
    }
    // Both configurations must build before anything is written.
    let single = config
        .single_learner
        .then(|| config.single_learner_config())
        .transpose()?;
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
    let ensemble = match train_one(&config, run, &data, args, started)? {
        RetrievalOutcome::Finished(report) => *report,
        RetrievalOutcome::Stopped {
            run_dir,
            epochs_done,
        } => {
            return Ok(AntiMetricOutcome::Stopped {
                run_dir,
                epochs_done,
            });
        }
    };
    let single_learner = match &single {
        Some(single) => {
            if !args.run.quiet {
                eprintln!("single learner (E = 1) with the same budget:");
            }
            let dir = root.join("single_learner");
            match train_one(single, open_or_create(&dir, single)?, &data, args, started)? {
                RetrievalOutcome::Finished(report) => Some(report.trained),
                RetrievalOutcome::Stopped { .. } => None,
            }
        }
        None => None,
    };
    let mut ensemble = ensemble;
    ensemble.seconds = started.elapsed().as_secs_f64();
    let report = AntiMetricReport {
        ensemble,
        single_learner,
    };
    let run = RunDir::open(&root)?;
    run.write_json(&run.report_path(), &report)?;
    Ok(AntiMetricOutcome::Finished(Box::new(report)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: AntiMetricArgs,
    }

    fn resolve(argv: &[&str], classes: usize) -> AntiMetricRunConfig {
        let args = Cli::parse_from(std::iter::once("antimetric").chain(argv.iter().copied())).args;
        let data = DataSource {
            dataset: args.run.dataset(),
            root: PathBuf::from("root"),
            csv: None,
        };
        AntiMetricRunConfig::resolve(&args, data, classes).unwrap()
    }

    /// `--preset paper` is section 5 of the seed spec, setting by setting.
    #[test]
    fn the_paper_preset_is_the_published_configuration() {
        for (dataset, m, epochs) in [
            ("cars196", 12, 20),
            ("cub", 12, 20),
            ("sop", 512, 40),
            ("inshop", 192, 40),
        ] {
            let c = resolve(&["--preset", "paper", "--dataset", dataset], 98);
            let model = &c.model;
            assert_eq!(
                (model.backbone.as_str(), model.base_width),
                ("resnet18", 64)
            );
            assert_eq!(model.share, "layer1");
            assert_eq!(
                (model.ensemble_size, model.meta_classes),
                (48, m),
                "{dataset}"
            );
            assert!(!model.with_fc && !model.with_random);
            assert_eq!(model.codes.len(), 98);
            let t = &c.trainer;
            assert_eq!(t.optimizer, OptimizerSetting::adam(0.0));
            assert_eq!((t.lr, t.epochs), (1e-4, epochs));
            assert_eq!(
                t.schedule,
                LrSchedule::MultiStep {
                    milestones: vec![epochs / 2, epochs * 7 / 10],
                    gamma: 0.1
                }
            );
            assert_eq!((c.batch_size, c.per_class_cap), (32, Some(300)));
            assert_eq!(
                (c.image_size, c.resize_size, c.flip, c.cropped),
                (256, 256, true, false)
            );
            // Test: resize the shorter side to 256, centre crop 256.
            assert_eq!(c.test_pipeline().pipeline().steps.len(), 2);
        }
        let cars = resolve(&["--preset", "paper", "--dataset", "cars196"], 98);
        assert_eq!(cars.mean, [0.4853, 0.4965, 0.4295]);
        assert_eq!(cars.std, [0.2237, 0.2193, 0.2568]);
        let isc = resolve(&["--preset", "paper", "--dataset", "inshop"], 98);
        assert_eq!(isc.mean, [0.8324, 0.8109, 0.8041]);
        // 20 epochs: drops at 10 and 14.
        assert_eq!(
            paper_trainer(20, 1e-4).schedule,
            LrSchedule::MultiStep {
                milestones: vec![10, 14],
                gamma: 0.1
            }
        );
    }

    #[test]
    fn every_setting_is_overridable_by_its_flag() {
        let c = resolve(
            &[
                "--preset",
                "paper",
                "--backbone",
                "resnet34",
                "--base-width",
                "32",
                "--share",
                "layer2",
                "--ensemble-size",
                "8",
                "--meta-classes",
                "16",
                "--with-fc",
                "true",
                "--with-random",
                "true",
                "--image-size",
                "128",
                "--cropped",
                "true",
                "--flip",
                "false",
                "--batch-size",
                "16",
                "--lr",
                "0.01",
                "--epochs",
                "10",
                "--milestones",
                "3,6",
                "--per-class-cap",
                "0",
                "--single-learner",
                "false",
                "--seed",
                "5",
                "--recalls",
                "1,10",
            ],
            98,
        );
        let m = &c.model;
        assert_eq!(
            (m.backbone.as_str(), m.base_width, m.share.as_str()),
            ("resnet34", 32, "layer2")
        );
        assert_eq!(
            (m.ensemble_size, m.meta_classes, m.with_fc, m.with_random),
            (8, 16, true, true)
        );
        assert_eq!(
            (c.image_size, c.resize_size, c.cropped, c.flip),
            (128, 144, true, false)
        );
        assert_eq!(
            (c.batch_size, c.trainer.lr, c.trainer.epochs),
            (16, 0.01, 10)
        );
        assert_eq!(
            c.trainer.schedule,
            LrSchedule::MultiStep {
                milestones: vec![3, 6],
                gamma: 0.1
            }
        );
        assert_eq!(
            (c.per_class_cap, c.single_learner, c.trainer.seed),
            (None, false, 5)
        );
        assert_eq!(c.evaluation.recall_ks, vec![1, 10]);
        // The cropped protocol crops to the box at test time too.
        assert!(c.test_pipeline().crop_to_box && c.test_pipeline().shorter_side.is_none());
    }

    #[test]
    fn codes_are_balanced_unique_and_follow_the_seed() {
        let c = resolve(&["--seed", "3"], 121);
        let codes = &c.model.codes;
        assert_eq!(codes.len(), 121);
        let mut distinct = codes.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), 121, "every class has its own code");
        for e in 0..c.model.ensemble_size {
            let mut counts = vec![0usize; c.model.meta_classes];
            for code in codes {
                counts[code[e]] += 1;
            }
            // 121 classes over 12 meta-classes: 10 or 11 each.
            assert!(
                counts.iter().all(|&n| n == 10 || n == 11),
                "learner {e}: {counts:?}"
            );
        }
        assert_eq!(resolve(&["--seed", "3"], 121).model.codes, *codes);
        assert_ne!(resolve(&["--seed", "4"], 121).model.codes, *codes);
        // The single learner classifies the classes themselves.
        let single = c.single_learner_config().unwrap();
        assert_eq!(
            (single.model.ensemble_size, single.model.meta_classes),
            (1, 121)
        );
        assert!(
            !single.model.with_fc,
            "the 128-d pooled feature holds 121 logits"
        );
    }

    #[test]
    fn the_per_class_cap_keeps_a_seeded_subsample_in_order() {
        let samples: Vec<Sample> = (0..10)
            .map(|i| Sample {
                path: PathBuf::from(format!("{i}.png")),
                label: usize::from(i >= 7),
                bbox: None,
            })
            .collect();
        let kept = cap_per_class(&samples, 3, 1);
        assert_eq!(kept.iter().filter(|s| s.label == 0).count(), 3);
        assert_eq!(kept.iter().filter(|s| s.label == 1).count(), 3);
        let names: Vec<&PathBuf> = kept.iter().map(|s| &s.path).collect();
        let mut sorted = names.clone();
        sorted.sort_by_key(|p| {
            p.to_string_lossy()
                .trim_end_matches(".png")
                .parse::<u32>()
                .unwrap()
        });
        assert_eq!(names, sorted);
        assert_eq!(cap_per_class(&samples, 3, 1), kept);
    }
}
