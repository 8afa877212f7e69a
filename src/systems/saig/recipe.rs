//! The SAIG recipe behind `cargo run --release --example saig`: resolve a configuration (a
//! preset plus flags), train both branches on batches of view pairs, and report cross-view
//! Recall@K, top-1 % and hit rate of the trained model beside the untrained model and the
//! polar-correlation baseline.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use clap::{Args, ValueEnum};
use serde::{Deserialize, Serialize};
use serde_json::json;

use metron_datasets::{ImageSource, LoaderConfig, Pipeline, Split, Transform};
use metron_metrics::{KnnOptions, Similarity, knn};
use metron_samplers::{BatchSampler, CrossViewPairSampler, ShuffleSampler};
use metron_train::{
    Bar, CrossViewEvaluation, Evaluation, LrSchedule, OptimizerSetting, RunDir, SamSetting,
    StepUnit, Trainer, TrainerConfig, write_curves, write_embeddings,
};
use metron_viz::{GridRow, save_retrieval_grid_captioned};

use super::baseline::PolarCorrelationBaseline;
use super::model::{SaigLoss, SaigModelConfig, SaigPool};
use super::omniglot_task::{CrossViewPlaces, GroundViewConfig, aerial_view_step, ground_view_step};
use super::pairs::ViewPairs;
use crate::systems::SystemError;
use crate::systems::retrieval::{RunArgs, free_run_dir, load_registry, refuse_flags_on_resume};

/// SAIG's normalisation everywhere: mean = std = 0.5 per channel.
const HALF: [f32; 3] = [0.5, 0.5, 0.5];

/// Starting points for every setting; each one can be overridden by its flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Preset {
    /// Minutes on 2 CPU cores, on the Omniglot two-view task: a narrow SAIG (4 blocks of width
    /// 64, 4 heads, stem width 8) per view, ground 32 x 128, aerial 64 x 64, SMD heads, the
    /// soft-margin triplet, AdamW 1e-3 (weight decay 0.03) with per-step cosine decay, global
    /// norm clipping 1.0, batch 32, 30 epochs, evaluated every 5.
    Cpu,
    /// The seed spec's setting for `--dataset cvusa|cvact|vigor` (a GPU and, for the published
    /// numbers, ImageNet-pretrained SAIG weights): SAIG-S, GAP, the soft-margin triplet
    /// (alpha 10), AdamW 1e-4 (weight decay 0.03), per-step cosine to a 1e-6 floor without
    /// warmup, clipping 1.0, batch 32, 200 epochs (VIGOR 90); ground 128 x 512 and aerial
    /// 256 x 256 (polar: 128 x 512; VIGOR 320 x 640 and 320 x 320); mean = std = 0.5.
    Paper,
}

/// Which SAM runs over AdamW.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SamChoice {
    /// Plain AdamW steps.
    None,
    /// davda54/sam with `adaptive=True`: what SAIG's "ASAM" scripts run (rho 2.0).
    Adaptive,
    /// Foret et al.'s SAM (rho 0.05 by default).
    Sam,
    /// SamsungLabs/ASAM (rho 0.5, eta 0.01 by default).
    Asam,
}

/// The flags of `cargo run --example saig`.
#[derive(Debug, Clone, Args)]
pub struct SaigArgs {
    /// Data, run directory, device and output (`--dataset omniglot|cvusa|cvact|vigor`).
    #[command(flatten)]
    pub run: RunArgs,
    /// Starting point of every setting below.
    #[arg(long, value_enum)]
    pub preset: Option<Preset>,
    /// SAIG-S (11 blocks) or SAIG-D (22 blocks): `s` or `d`.
    #[arg(long)]
    pub variant: Option<String>,
    /// Attention blocks per branch (overrides --variant).
    #[arg(long)]
    pub depth: Option<usize>,
    /// Token width (cpu: 64, paper: 384).
    #[arg(long)]
    pub embed_dim: Option<usize>,
    /// Attention heads (cpu: 4, paper: 12).
    #[arg(long)]
    pub heads: Option<usize>,
    /// Channels of the first stem convolution (cpu: 8, paper: 64).
    #[arg(long)]
    pub stem_width: Option<usize>,
    /// Descriptor: gap or smd (cpu: smd, paper: gap).
    #[arg(long, value_enum)]
    pub pool: Option<SaigPool>,
    /// Loss: triplet, infonce or semi_soft_tri_hard (default triplet).
    #[arg(long)]
    pub loss: Option<String>,
    /// Scale inside the triplet losses' softplus (10).
    #[arg(long)]
    pub alpha: Option<f64>,
    /// InfoNCE temperature (0.02).
    #[arg(long)]
    pub temperature: Option<f64>,
    /// Ground image size HxW (cpu: 32x128; paper: 128x512, VIGOR 320x640).
    #[arg(long, value_parser = parse_size)]
    pub ground_size: Option<[usize; 2]>,
    /// Aerial image size HxW (cpu: 64x64; paper: 256x256, polar 128x512, VIGOR 320x320).
    #[arg(long, value_parser = parse_size)]
    pub aerial_size: Option<[usize; 2]>,
    /// CVUSA / CVACT: read the polar-transformed aerial images (CVUSA's bingmap/19, CVACT's
    /// polar_map1) (paper: false for CVUSA, true for CVACT).
    #[arg(long)]
    pub polar: Option<bool>,
    /// Rotate the two views of a pair by one random heading (CVUSA's `aug`; paper: on for
    /// polar CVUSA only).
    #[arg(long)]
    pub shared_shift: Option<bool>,
    /// VIGOR: same-area (true) or cross-area (false) split (paper: true).
    #[arg(long)]
    pub same_area: Option<bool>,
    /// Pairs per batch (32).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Training epochs (cpu: 30; paper: 200, VIGOR 90).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Learning rate of AdamW (cpu: 1e-3, paper: 1e-4).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Decoupled weight decay of AdamW (0.03).
    #[arg(long)]
    pub weight_decay: Option<f64>,
    /// Linear warmup steps before the cosine decay (0).
    #[arg(long)]
    pub warmup_steps: Option<usize>,
    /// Clip the gradients' global L2 norm to this (1.0; 0 turns clipping off; the paper's
    /// CVUSA/CVACT SAM scripts do not clip).
    #[arg(long)]
    pub clip_grad_norm: Option<f64>,
    /// Sharpness-aware minimisation over AdamW: none, adaptive (SAIG's "ASAM"), sam, asam.
    #[arg(long, value_enum)]
    pub sam: Option<SamChoice>,
    /// SAM's radius (adaptive: 2.0, sam: 0.05, asam: 0.5).
    #[arg(long)]
    pub rho: Option<f64>,
    /// SamsungLabs ASAM's eta (0.01).
    #[arg(long)]
    pub eta: Option<f64>,
    /// Evaluate every N epochs (cpu: 5, paper: 1); the best Recall@1 is checkpointed.
    #[arg(long)]
    pub eval_every: Option<usize>,
    /// Seed of initialisation, sampling, the training views and the evaluation views (0).
    #[arg(long)]
    pub seed: Option<u64>,
    /// The K of Recall@K, comma separated (1,5,10; VIGOR 1,5,10,100).
    #[arg(long, value_delimiter = ',')]
    pub recalls: Option<Vec<usize>>,
    /// Omniglot task: largest camera offset from the drawing's centre, as a fraction of the
    /// side (0.1).
    #[arg(long)]
    pub camera_jitter: Option<f64>,
    /// Omniglot task: visible radius range as fractions of half the side, "lo,hi" (0.85,1.15).
    #[arg(long, value_delimiter = ',')]
    pub radius_range: Option<Vec<f64>>,
    /// Omniglot task: drawings per evaluation character (all 20 by default).
    #[arg(long)]
    pub eval_drawers: Option<usize>,
    /// Omniglot task: size HxW at which the correlation baseline compares panoramas (16x64;
    /// the width must be a power of two).
    #[arg(long, value_parser = parse_size)]
    pub baseline_size: Option<[usize; 2]>,
    /// Omniglot task: only the first N characters of each half (all 121), for quick tries.
    #[arg(long)]
    pub characters: Option<usize>,
}

/// Parses `HxW` (e.g. `128x512`).
pub fn parse_size(s: &str) -> Result<[usize; 2], String> {
    let parts: Vec<&str> = s.split(['x', 'X']).collect();
    match parts.as_slice() {
        [h, w] => match (h.trim().parse(), w.trim().parse()) {
            (Ok(h), Ok(w)) if h > 0 && w > 0 => Ok([h, w]),
            _ => Err(format!("'{s}' is not a size HxW of positive numbers")),
        },
        _ => Err(format!("'{s}' is not a size HxW (e.g. 128x512)")),
    }
}

impl SaigArgs {
    /// The flags that set part of a run's configuration (refused with `--resume`).
    pub fn configuration_flags(&self) -> Vec<&'static str> {
        let a = self;
        [
            ("--preset", a.preset.is_some()),
            ("--variant", a.variant.is_some()),
            ("--depth", a.depth.is_some()),
            ("--embed-dim", a.embed_dim.is_some()),
            ("--heads", a.heads.is_some()),
            ("--stem-width", a.stem_width.is_some()),
            ("--pool", a.pool.is_some()),
            ("--loss", a.loss.is_some()),
            ("--alpha", a.alpha.is_some()),
            ("--temperature", a.temperature.is_some()),
            ("--ground-size", a.ground_size.is_some()),
            ("--aerial-size", a.aerial_size.is_some()),
            ("--polar", a.polar.is_some()),
            ("--shared-shift", a.shared_shift.is_some()),
            ("--same-area", a.same_area.is_some()),
            ("--batch-size", a.batch_size.is_some()),
            ("--epochs", a.epochs.is_some()),
            ("--lr", a.lr.is_some()),
            ("--weight-decay", a.weight_decay.is_some()),
            ("--warmup-steps", a.warmup_steps.is_some()),
            ("--clip-grad-norm", a.clip_grad_norm.is_some()),
            ("--sam", a.sam.is_some()),
            ("--rho", a.rho.is_some()),
            ("--eta", a.eta.is_some()),
            ("--eval-every", a.eval_every.is_some()),
            ("--seed", a.seed.is_some()),
            ("--recalls", a.recalls.is_some()),
            ("--camera-jitter", a.camera_jitter.is_some()),
            ("--radius-range", a.radius_range.is_some()),
            ("--eval-drawers", a.eval_drawers.is_some()),
            ("--baseline-size", a.baseline_size.is_some()),
            ("--characters", a.characters.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, given)| given.then_some(name))
        .collect::<Vec<_>>()
        .into_iter()
        .chain(self.run.configuration_flags())
        .collect()
    }
}

/// Which cross-view data a run reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CrossViewDataset {
    /// The two-view task made from Omniglot drawings ([`super::omniglot_task`]).
    Omniglot,
    /// CVUSA (aligned pairs; val 8,884).
    Cvusa,
    /// CVACT (aligned pairs; val 8,884).
    Cvact,
    /// VIGOR (panoramas against every satellite image of their cities).
    Vigor,
}

impl CrossViewDataset {
    fn parse(name: &str) -> Result<Self, SystemError> {
        match name {
            "omniglot" => Ok(CrossViewDataset::Omniglot),
            "cvusa" => Ok(CrossViewDataset::Cvusa),
            "cvact" => Ok(CrossViewDataset::Cvact),
            "vigor" => Ok(CrossViewDataset::Vigor),
            other => Err(SystemError::Usage(format!(
                "SAIG trains on omniglot (the two-view task), cvusa, cvact or vigor, not '{other}'"
            ))),
        }
    }
}

/// Everything a SAIG run is, stored as its `config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SaigRunConfig {
    /// The preset the flags were applied to.
    pub preset: Preset,
    /// The data.
    pub dataset: CrossViewDataset,
    /// The dataset's root folder.
    pub root: PathBuf,
    /// Both branches and the loss.
    pub model: SaigModelConfig,
    /// The training loop.
    pub trainer: TrainerConfig,
    /// Pairs per batch.
    pub batch_size: usize,
    /// CVUSA / CVACT: polar-transformed aerial images.
    pub polar: bool,
    /// One random heading for both views of a pair.
    pub shared_shift: bool,
    /// VIGOR: same-area split.
    pub same_area: bool,
    /// The K of Recall@K.
    pub recall_ks: Vec<usize>,
    /// Omniglot: how ground views are made.
    pub ground_view: GroundViewConfig,
    /// Omniglot: drawings per evaluation character (`None`: all).
    pub eval_drawers: Option<usize>,
    /// Omniglot: the baseline's comparison size.
    pub baseline_size: [usize; 2],
    /// Omniglot: only the first N characters of each half (`None`: all).
    pub characters: Option<usize>,
    /// Images per evaluation batch.
    pub eval_batch_size: usize,
    /// Leave undecodable images out of evaluation (training pairs are never skipped).
    pub skip_corrupt: bool,
}

fn set<T: Clone>(flag: &Option<T>, into: &mut T) {
    if let Some(v) = flag {
        *into = v.clone();
    }
}

impl SaigRunConfig {
    /// The preset with every given flag applied.
    pub fn resolve(args: &SaigArgs, root: PathBuf) -> Result<Self, SystemError> {
        if args.run.csv.is_some() {
            return Err(SystemError::Usage(
                "SAIG reads view pairs (--dataset omniglot|cvusa|cvact|vigor), not a CSV of \
                 labelled images"
                    .into(),
            ));
        }
        let preset = args.preset.unwrap_or(Preset::Cpu);
        let dataset = CrossViewDataset::parse(&args.run.dataset())?;
        let polar = args.polar.unwrap_or(dataset == CrossViewDataset::Cvact);
        let vigor = dataset == CrossViewDataset::Vigor;
        let mut model;
        let mut trainer;
        let mut recall_ks = vec![1, 5, 10];
        let mut eval_every;
        match preset {
            Preset::Cpu => {
                model = SaigModelConfig {
                    depth: 4,
                    embed_dim: 64,
                    heads: 4,
                    stem_width: 8,
                    pool: SaigPool::Smd,
                    ..SaigModelConfig::saig_s([32, 128], [64, 64])
                };
                trainer = TrainerConfig::new(30, OptimizerSetting::adamw(0.03), 1e-3);
                eval_every = 5;
            }
            Preset::Paper => {
                let (ground, aerial) = match (vigor, polar) {
                    (true, _) => ([320, 640], [320, 320]),
                    (false, true) => ([128, 512], [128, 512]),
                    (false, false) => ([128, 512], [256, 256]),
                };
                model = SaigModelConfig::saig_s(ground, aerial);
                let epochs = if vigor { 90 } else { 200 };
                trainer = TrainerConfig::new(epochs, OptimizerSetting::adamw(0.03), 1e-4);
                eval_every = 1;
                if vigor {
                    recall_ks = vec![1, 5, 10, 100];
                }
            }
        }
        trainer.schedule = LrSchedule::WarmupCosine {
            warmup: args.warmup_steps.unwrap_or(0),
            floor: 1e-6,
        };
        trainer.schedule_unit = StepUnit::Iteration;
        trainer.clip_grad_norm = Some(1.0);
        match args
            .variant
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None => {}
            Some("s" | "saig-s") => model.depth = 11,
            Some("d" | "saig-d") => model.depth = 22,
            Some(other) => {
                return Err(SystemError::Usage(format!(
                    "--variant is s (SAIG-S) or d (SAIG-D), not '{other}'"
                )));
            }
        }
        set(&args.depth, &mut model.depth);
        set(&args.embed_dim, &mut model.embed_dim);
        set(&args.heads, &mut model.heads);
        set(&args.stem_width, &mut model.stem_width);
        set(&args.pool, &mut model.pool);
        set(&args.ground_size, &mut model.ground_size);
        set(&args.aerial_size, &mut model.aerial_size);
        let loss_name = args.loss.as_deref().unwrap_or("triplet");
        model.loss =
            SaigLoss::from_name(loss_name, args.alpha, args.temperature).ok_or_else(|| {
                SystemError::Usage(format!(
                    "--loss is triplet, infonce or semi_soft_tri_hard, not '{loss_name}'"
                ))
            })?;
        set(&args.epochs, &mut trainer.epochs);
        set(&args.lr, &mut trainer.lr);
        if let Some(wd) = args.weight_decay {
            trainer.optimizer = OptimizerSetting::adamw(wd);
        }
        trainer.sam = match args.sam.unwrap_or(SamChoice::None) {
            SamChoice::None => None,
            SamChoice::Adaptive => Some(SamSetting::Adaptive {
                rho: args.rho.unwrap_or(2.0),
            }),
            SamChoice::Sam => Some(SamSetting::Sam {
                rho: args.rho.unwrap_or(0.05),
            }),
            SamChoice::Asam => Some(SamSetting::Asam {
                rho: args.rho.unwrap_or(0.5),
                eta: args.eta.unwrap_or(0.01),
            }),
        };
        // SAIG's CVUSA/CVACT SAM script steps without clipping; its VIGOR one clips.
        if preset == Preset::Paper && trainer.sam.is_some() && !vigor {
            trainer.clip_grad_norm = None;
        }
        if let Some(c) = args.clip_grad_norm {
            trainer.clip_grad_norm = (c > 0.0).then_some(c);
        }
        set(&args.eval_every, &mut eval_every);
        trainer.eval_every = eval_every;
        set(&args.seed, &mut trainer.seed);
        set(&args.recalls, &mut recall_ks);
        let mut ground_view = GroundViewConfig {
            size: [model.ground_size[0] as u32, model.ground_size[1] as u32],
            center_jitter: 0.1,
            radius: [0.85, 1.15],
            random_heading: true,
        };
        set(&args.camera_jitter, &mut ground_view.center_jitter);
        if let Some(r) = &args.radius_range {
            ground_view.radius = match r.as_slice() {
                [lo, hi] => [*lo, *hi],
                [r] => [*r, *r],
                _ => {
                    return Err(SystemError::Usage(
                        "--radius-range is 'lo,hi' (or one value)".into(),
                    ));
                }
            };
        }
        let config = SaigRunConfig {
            preset,
            dataset,
            root,
            model,
            trainer,
            batch_size: args.batch_size.unwrap_or(32),
            polar,
            shared_shift: args
                .shared_shift
                .unwrap_or(dataset == CrossViewDataset::Cvusa && polar),
            same_area: args.same_area.unwrap_or(true),
            recall_ks,
            ground_view,
            eval_drawers: args.eval_drawers,
            baseline_size: args.baseline_size.unwrap_or([16, 64]),
            characters: args.characters,
            eval_batch_size: 64,
            skip_corrupt: args.run.skip_corrupt,
        };
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), SystemError> {
        if self.batch_size < 2 {
            return Err(SystemError::Usage(
                "a cross-view batch needs at least 2 pairs (the other pairs are the negatives)"
                    .into(),
            ));
        }
        if self.recall_ks.is_empty() || self.recall_ks.contains(&0) {
            return Err(SystemError::Usage(
                "the K of Recall@K must be a non-empty list of positive numbers".into(),
            ));
        }
        for (what, size) in [
            ("--ground-size", self.model.ground_size),
            ("--aerial-size", self.model.aerial_size),
        ] {
            if size[0] < 16 || size[1] < 16 {
                return Err(SystemError::Usage(format!(
                    "{what} must be at least 16x16 (SAIG's stem has stride 16), got {}x{}",
                    size[0], size[1]
                )));
            }
        }
        if self.dataset == CrossViewDataset::Omniglot {
            self.ground_view.check()?;
            if self.model.aerial_size[0] != self.model.aerial_size[1] {
                return Err(SystemError::Usage(
                    "the Omniglot task's aerial views are square: give --aerial-size SxS".into(),
                ));
            }
        }
        if self.shared_shift && self.model.ground_size[1] != self.model.aerial_size[1] {
            return Err(SystemError::Usage(
                "--shared-shift rotates both views by one heading: it needs polar aerial images \
                 as wide as the ground images"
                    .into(),
            ));
        }
        Ok(())
    }

    /// One line per setting, for the report.
    pub fn setup(&self) -> serde_json::Value {
        let m = &self.model;
        let t = &self.trainer;
        json!({
            "preset": self.preset,
            "dataset": self.dataset,
            "model": format!(
                "2 x SAIG ({} attention-only blocks, width {}, {} heads, stem width {}), {} head ({}-d), unshared",
                m.depth, m.embed_dim, m.heads, m.stem_width,
                match m.pool { SaigPool::Gap => "GAP", SaigPool::Smd => "SMD" },
                m.embedding_dim()
            ),
            "loss": match m.loss {
                SaigLoss::Triplet { alpha } => format!("soft-margin weighted triplet (alpha {alpha})"),
                SaigLoss::InfoNce { temperature } => format!("InfoNCE (t {temperature})"),
                SaigLoss::SemiSoftTriHard { alpha } => format!("SemiSoftTriHard (alpha {alpha})"),
            },
            "views": format!(
                "ground {}x{}, aerial {}x{}{}{}",
                m.ground_size[0], m.ground_size[1], m.aerial_size[0], m.aerial_size[1],
                if self.polar { " (polar)" } else { "" },
                if self.shared_shift { ", one random heading per pair" } else { "" },
            ),
            "optimizer": format!(
                "AdamW lr {} (weight decay {}), cosine per step, {}{}",
                t.lr,
                match t.optimizer { OptimizerSetting::AdamW { weight_decay, .. } => weight_decay, _ => 0.0 },
                t.clip_grad_norm.map(|c| format!("clip {c}")).unwrap_or_else(|| "no clipping".into()),
                t.sam.map(|s| format!(", SAM {s:?}")).unwrap_or_default(),
            ),
            "epochs": t.epochs,
            "batch_size": self.batch_size,
            "seed": t.seed,
            "task": match self.dataset {
                CrossViewDataset::Omniglot => json!(format!(
                    "each Omniglot drawing is a place: aerial = the drawing, ground = its polar \
                     unrolling around a camera within {} of the centre, radius {}..{} of half \
                     the side, random heading; train on the first half of the characters, \
                     evaluate on the other half, other drawings of a character are semi-positives",
                    self.ground_view.center_jitter, self.ground_view.radius[0], self.ground_view.radius[1]
                )),
                _ => json!(null),
            },
        })
    }
}

/// The data of a run, ready for the loop and the evaluation.
struct RunData {
    train: ViewPairs,
    /// Per training pair, the satellites it involves (VIGOR: no two in a batch); empty: none.
    train_satellites: Vec<Vec<usize>>,
    evaluation: CrossViewEvaluation,
    /// The Omniglot evaluation places (for the baseline and the grid).
    places: Option<CrossViewPlaces>,
}

fn resize_pipeline(size: [usize; 2]) -> Pipeline {
    Pipeline::new(vec![Transform::Resize {
        size: [size[0] as u32, size[1] as u32],
    }])
    .with_normalization(HALF, HALF)
}

fn split_source(split: &Split) -> Arc<dyn ImageSource> {
    Arc::new(split.samples.clone())
}

fn read_data(config: &SaigRunConfig, quiet: bool) -> Result<RunData, SystemError> {
    let m = &config.model;
    let loader = LoaderConfig {
        prefetch: config.trainer.prefetch,
        skip_corrupt: config.skip_corrupt,
    };
    let evaluation = |queries: Arc<dyn ImageSource>,
                      references: Arc<dyn ImageSource>,
                      query_pipeline: Pipeline,
                      reference_pipeline: Pipeline,
                      positives: Vec<usize>,
                      semis: Arc<Vec<Vec<usize>>>| CrossViewEvaluation {
        queries,
        query_pipeline: Arc::new(query_pipeline),
        references,
        reference_pipeline: Arc::new(reference_pipeline),
        ks: config.recall_ks.clone(),
        positives: Arc::new(positives),
        semi_positives: semis,
        batch_size: config.eval_batch_size,
        loader,
    };
    match config.dataset {
        CrossViewDataset::Omniglot => {
            let data = metron_datasets::read_omniglot(&config.root)?;
            let first = |split: &Split| {
                let mut split = split.clone();
                if let Some(n) = config.characters {
                    split.samples.retain(|s| s.label < n);
                }
                split
            };
            let train = &first(data.split("train")?);
            let test = &first(data.split("test")?);
            if !quiet {
                eprintln!(
                    "rendering {} evaluation places (ground and aerial views)",
                    test.samples.len()
                );
            }
            let places = CrossViewPlaces::render(
                test,
                &config.ground_view,
                m.aerial_size[0] as u32,
                config.eval_drawers,
                split_seed_of(config.trainer.seed),
            )?;
            let plain = || Pipeline::new(vec![]).with_normalization(HALF, HALF);
            let source = split_source(train);
            Ok(RunData {
                train: ViewPairs {
                    ground: source.clone(),
                    aerial: source,
                    aerial_of: Vec::new(),
                    ground_pipeline: Arc::new(
                        Pipeline::new(vec![ground_view_step(config.ground_view)])
                            .with_normalization(HALF, HALF),
                    ),
                    aerial_pipeline: Arc::new(
                        Pipeline::new(vec![aerial_view_step(m.aerial_size[0] as u32)])
                            .with_normalization(HALF, HALF),
                    ),
                    shared_shift: config.shared_shift,
                },
                train_satellites: Vec::new(),
                evaluation: evaluation(
                    places.ground.clone(),
                    places.aerial.clone(),
                    plain(),
                    plain(),
                    Vec::new(),
                    places.semi_positives.clone(),
                ),
                places: Some(places),
            })
        }
        CrossViewDataset::Cvusa | CrossViewDataset::Cvact => {
            let splits = match config.dataset {
                CrossViewDataset::Cvusa => metron_datasets::read_cvusa(&config.root, config.polar)?,
                _ => metron_datasets::read_cvact(
                    &config.root,
                    if config.polar {
                        metron_datasets::CvactLayout::Polar
                    } else {
                        metron_datasets::CvactLayout::NonPolar
                    },
                )?,
            };
            let find = |name: &str| {
                splits
                    .iter()
                    .find(|s| s.name == name)
                    .ok_or_else(|| SystemError::Usage(format!("the dataset has no '{name}' split")))
            };
            let [train_ground, train_aerial] = find("train")?.to_splits();
            let [val_ground, val_aerial] = find("val")?.to_splits();
            Ok(RunData {
                train: ViewPairs {
                    ground: split_source(&train_ground),
                    aerial: split_source(&train_aerial),
                    aerial_of: Vec::new(),
                    ground_pipeline: Arc::new(resize_pipeline(m.ground_size)),
                    aerial_pipeline: Arc::new(resize_pipeline(m.aerial_size)),
                    shared_shift: config.shared_shift,
                },
                train_satellites: Vec::new(),
                evaluation: evaluation(
                    split_source(&val_ground),
                    split_source(&val_aerial),
                    resize_pipeline(m.ground_size),
                    resize_pipeline(m.aerial_size),
                    Vec::new(),
                    Arc::default(),
                ),
                places: None,
            })
        }
        CrossViewDataset::Vigor => {
            let splits = metron_datasets::read_vigor(&config.root, config.same_area)?;
            let find = |name: &str| {
                splits
                    .iter()
                    .find(|s| s.name == name)
                    .ok_or_else(|| SystemError::Usage(format!("VIGOR has no '{name}' split")))
            };
            let (train, test) = (find("train")?, find("test")?);
            let [train_ground, train_aerial] = train.to_splits();
            let [test_ground, test_aerial] = test.to_splits();
            Ok(RunData {
                train: ViewPairs {
                    ground: split_source(&train_ground),
                    aerial: split_source(&train_aerial),
                    aerial_of: train.panoramas.iter().map(|p| p.satellites[0]).collect(),
                    ground_pipeline: Arc::new(resize_pipeline(m.ground_size)),
                    aerial_pipeline: Arc::new(resize_pipeline(m.aerial_size)),
                    shared_shift: false,
                },
                train_satellites: train
                    .panoramas
                    .iter()
                    .map(|p| p.satellites.to_vec())
                    .collect(),
                evaluation: evaluation(
                    split_source(&test_ground),
                    split_source(&test_aerial),
                    resize_pipeline(m.ground_size),
                    resize_pipeline(m.aerial_size),
                    test.panoramas.iter().map(|p| p.satellites[0]).collect(),
                    Arc::new(
                        test.panoramas
                            .iter()
                            .map(|p| p.satellites[1..].to_vec())
                            .collect(),
                    ),
                ),
                places: None,
            })
        }
    }
}

/// `--pretrained`: one of the original's fine-tuned checkpoints (both branches and heads), or
/// its ImageNet-pretrained SAIG file (both backbones). Neither layout loading is an error that
/// says why for each.
fn load_pretrained(
    model: super::SaigModel,
    path: &Path,
    device: &burn::tensor::Device,
    quiet: bool,
) -> Result<super::SaigModel, SystemError> {
    let fine_tuned = match model.clone().load_original_checkpoint(path) {
        Ok((model, report)) => {
            if !quiet {
                eprintln!(
                    "loaded {} tensors (both branches and heads) from {}",
                    report.applied,
                    path.display()
                );
            }
            return Ok(model);
        }
        Err(e) => e,
    };
    match model.load_imagenet_backbones(path, device) {
        Ok((model, report)) => {
            if !quiet {
                eprintln!(
                    "loaded {} ImageNet-pretrained tensors into both backbones from {}",
                    report.applied,
                    path.display()
                );
            }
            Ok(model)
        }
        Err(imagenet) => Err(SystemError::Usage(format!(
            "{} is neither a SAIG fine-tuned checkpoint for this configuration ({fine_tuned}) \
             nor an ImageNet-pretrained SAIG file ({imagenet})",
            path.display()
        ))),
    }
}

/// The evaluation places' own seed stream, apart from the training's.
fn split_seed_of(seed: u64) -> u64 {
    metron_core::split_seed(seed, 0x5a16)
}

/// The cross-view metrics the report shows, under SAIG's names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CrossViewMetrics {
    /// Recall@1 (fraction).
    pub recall_at_1: Option<f64>,
    /// Recall@5.
    pub recall_at_5: Option<f64>,
    /// Recall@10.
    pub recall_at_10: Option<f64>,
    /// Recall at K = floor(0.01 N) + 1.
    pub top_1_percent: Option<f64>,
    /// Top-1 hits with the semi-positives left out (VIGOR, Omniglot task); `None` without.
    pub hit_rate: Option<f64>,
    /// Every metric the evaluation reported, by its own name.
    pub all: BTreeMap<String, f64>,
}

impl CrossViewMetrics {
    fn from(metrics: &BTreeMap<String, f64>) -> Self {
        CrossViewMetrics {
            recall_at_1: metrics.get("recall_at_1").copied(),
            recall_at_5: metrics.get("recall_at_5").copied(),
            recall_at_10: metrics.get("recall_at_10").copied(),
            top_1_percent: metrics.get("recall_at_top1_percent").copied(),
            hit_rate: metrics.get("hit_rate").copied(),
            all: metrics.clone(),
        }
    }
}

/// What a finished run reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SaigReport {
    /// The model after the last epoch.
    pub trained: CrossViewMetrics,
    /// The model before the first step.
    pub untrained: CrossViewMetrics,
    /// The polar-correlation baseline (Omniglot task only).
    pub baseline: Option<CrossViewMetrics>,
    /// `(epoch, Recall@1)` of the best evaluation.
    pub best_epoch: Option<(usize, f64)>,
    /// What ran.
    pub setup: serde_json::Value,
    /// The run directory.
    pub run_dir: PathBuf,
    /// Wall-clock seconds of this invocation.
    pub seconds: f64,
}

/// How a run ended.
#[derive(Debug)]
pub enum SaigOutcome {
    /// Trained to the last epoch and evaluated.
    Finished(Box<SaigReport>),
    /// Stopped on `--stop-after`; continue with `--resume`.
    Stopped {
        /// The run directory.
        run_dir: PathBuf,
        /// Epochs trained so far.
        epochs_done: usize,
    },
}

/// Trains and evaluates SAIG as `args` say.
pub fn run(args: &SaigArgs) -> Result<SaigOutcome, SystemError> {
    let started = Instant::now();
    let (config, existing) = match &args.run.resume {
        Some(dir) => {
            refuse_flags_on_resume(dir, &args.configuration_flags())?;
            let run = RunDir::open(dir)?;
            let config: SaigRunConfig = run.read_config()?;
            (config, Some(run))
        }
        None => {
            let registry = load_registry(args.run.registry.as_deref())?;
            let name = args.run.dataset();
            let root = registry.root(&name, args.run.root.as_deref())?;
            (SaigRunConfig::resolve(args, root)?, None)
        }
    };
    let quiet = args.run.quiet;
    if config.preset == Preset::Paper && args.run.pretrained.is_none() && !quiet {
        eprintln!(
            "warning: the published numbers start both branches from ImageNet-pretrained SAIG \
             weights; this run starts from random weights"
        );
    }
    let data = read_data(&config, quiet)?;
    let device = metron_core::parse_device(&args.run.device)?.autodiff();
    let mut model =
        metron_core::seeded_init(&device, config.trainer.seed, || config.model.init(&device))?;
    // Pretrained weights start a run that has no checkpoint yet; a checkpoint replaces them.
    let has_checkpoint = existing
        .as_ref()
        .is_some_and(|run| run.last_checkpoint().is_file());
    if let (Some(path), false) = (&args.run.pretrained, has_checkpoint) {
        model = load_pretrained(model, path, &device, quiet)?;
    }
    let sampler: Box<dyn BatchSampler> = if data.train_satellites.is_empty() {
        Box::new(ShuffleSampler::new(
            data.train.ground.len(),
            config.batch_size,
            true,
            config.trainer.seed,
        )?)
    } else {
        Box::new(CrossViewPairSampler::new(
            &data.train_satellites,
            config.batch_size,
            config.trainer.seed,
        )?)
    };
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
    let mut trainer = Trainer::new(config.trainer.clone(), run.clone());
    trainer.quiet = quiet;
    trainer.stop_after = args.run.stop_after;
    let outcome = trainer.fit(
        model,
        sampler.as_ref(),
        Arc::new(data.train),
        &data.evaluation,
        &device,
    )?;
    if !outcome.finished {
        return Ok(SaigOutcome::Stopped {
            run_dir: run.root().to_path_buf(),
            epochs_done: outcome.state.epochs_done,
        });
    }
    let history = &outcome.state.history;
    let trained = history.last().map(|r| r.test.clone()).unwrap_or_default();
    let untrained = history
        .iter()
        .find(|r| r.epoch == 0)
        .map(|r| r.test.clone())
        .unwrap_or_default();
    let embedded = match outcome.last_evaluation.and_then(|e| e.embeddings) {
        Some(e) => e,
        None => {
            let again = Evaluation::evaluate(&data.evaluation, &outcome.model, &device, quiet)?;
            again.embeddings.ok_or_else(|| {
                SystemError::Usage("the cross-view evaluation kept no embeddings".into())
            })?
        }
    };
    write_curves(&run.curves_path(), history)?;
    // Both views' embeddings, row i of the ground file matching its place's aerial row (or
    // `positives[i]`): the input of `metron eval --cross-view`.
    if let Some(aerial) = &embedded.gallery {
        let root = run.root();
        write_embeddings(
            &root.join("ground_embeddings.npy"),
            &root.join("ground_labels.npy"),
            &embedded.query,
        )?;
        write_embeddings(
            &root.join("aerial_embeddings.npy"),
            &root.join("aerial_labels.npy"),
            aerial,
        )?;
    }
    let baseline = match &data.places {
        Some(places) => {
            let bar = Bar::new(places.len(), "polar-correlation baseline", quiet);
            let [h, w] = config.baseline_size;
            let metrics = PolarCorrelationBaseline {
                size: [h as u32, w as u32],
            }
            .evaluate(
                &places.ground.images,
                &places.aerial.images,
                &places.semi_positives,
                &config.recall_ks,
            )?;
            bar.finish();
            write_cross_view_grid(&run.grid_path(), places, &embedded)?;
            Some(CrossViewMetrics::from(&metrics))
        }
        None => None,
    };
    let report = SaigReport {
        trained: CrossViewMetrics::from(&trained),
        untrained: CrossViewMetrics::from(&untrained),
        baseline,
        best_epoch: outcome.state.best,
        setup: config.setup(),
        run_dir: run.root().to_path_buf(),
        seconds: started.elapsed().as_secs_f64(),
    };
    run.write_json(&run.report_path(), &report)?;
    Ok(SaigOutcome::Finished(Box::new(report)))
}

/// Ground queries (rows spread over the places) beside their nearest aerial views: the place's
/// own aerial view is a hit, another drawing of its character is unjudged, the rest misses.
fn write_cross_view_grid(
    path: &Path,
    places: &CrossViewPlaces,
    embedded: &metron_train::Evaluated,
) -> Result<(), SystemError> {
    let Some(reference) = &embedded.gallery else {
        return Ok(());
    };
    let query = &embedded.query;
    let n = query.embeddings.nrows();
    let k = 8.min(reference.embeddings.nrows());
    let rows: Vec<usize> = (0..8.min(n)).map(|i| i * n / 8.min(n).max(1)).collect();
    if rows.is_empty() || k == 0 {
        return Ok(());
    }
    let q = query.embeddings.select(ndarray::Axis(0), &rows);
    let neighbors = knn(
        q.view(),
        reference.embeddings.view(),
        k,
        &KnnOptions::new(Similarity::Cosine),
    )?;
    let labels = &places.ground.labels;
    let grid: Vec<GridRow> = rows
        .iter()
        .enumerate()
        .map(|(qi, &row)| {
            let place = query.indices[row];
            neighbors.indices[qi * k..(qi + 1) * k].iter().fold(
                GridRow::new(places.ground.images[place].clone()),
                |r, &g| {
                    let other = reference.indices[g];
                    let image = places.aerial.images[other].clone();
                    if other == place {
                        r.with_result(image, true)
                    } else if labels[other] == labels[place] {
                        r.with_unjudged_result(image)
                    } else {
                        r.with_result(image, false)
                    }
                },
            )
        })
        .collect();
    save_retrieval_grid_captioned(
        path,
        &grid,
        96,
        "GREY: ANOTHER DRAWING OF THE CHARACTER (A SEMI-POSITIVE)",
    )
    .map_err(metron_train::TrainError::from)?;
    Ok(())
}

/// The report as the JSON object `--json` prints: `trained`, `untrained`, `baseline` (null
/// off the Omniglot task) and `setup`, each metric set with `recall_at_1`, `recall_at_5`,
/// `recall_at_10`, `top_1_percent` and `hit_rate` (fractions; null where not measured).
pub fn report_json(report: &SaigReport) -> serde_json::Value {
    let metrics = |m: &CrossViewMetrics| {
        json!({
            "recall_at_1": m.recall_at_1,
            "recall_at_5": m.recall_at_5,
            "recall_at_10": m.recall_at_10,
            "top_1_percent": m.top_1_percent,
            "hit_rate": m.hit_rate,
        })
    };
    json!({
        "trained": metrics(&report.trained),
        "untrained": metrics(&report.untrained),
        "baseline": report.baseline.as_ref().map(metrics),
        "setup": report.setup,
        "best_epoch": report.best_epoch,
        "run_dir": report.run_dir,
        "seconds": report.seconds,
    })
}

/// The Ks of the report's `recall_at_K` entries, in order.
pub fn recall_ks(report: &SaigReport) -> Vec<usize> {
    let mut ks: Vec<usize> = report
        .trained
        .all
        .keys()
        .filter_map(|k| k.strip_prefix("recall_at_")?.parse().ok())
        .collect();
    ks.sort_unstable();
    ks
}

/// What a finished run leaves in its directory.
pub fn describe_outputs(run_dir: &Path) -> String {
    format!(
        "run directory {}: report.json, metrics.jsonl, curves.png, retrieval_grid.png, \
         {{ground,aerial}}_embeddings.npy (+ _labels.npy), checkpoints/{{last,best}}.ckpt",
        run_dir.display()
    )
}

/// The report as a table: Recall@K, top-1 % and hit rate, in percent.
pub fn format_table(report: &SaigReport, ks: &[usize]) -> String {
    let mut out = format!("{:<28}", "cross-view (%)");
    for k in ks {
        out.push_str(&format!("{:>8}", format!("R@{k}")));
    }
    out.push_str(&format!("{:>8}{:>8}\n", "top-1%", "hit"));
    let rows = [
        ("trained (SAIG)", Some(&report.trained)),
        ("untrained", Some(&report.untrained)),
        ("polar correlation", report.baseline.as_ref()),
    ];
    for (name, metrics) in rows {
        let Some(m) = metrics else { continue };
        out.push_str(&format!("{name:<28}"));
        let cell = |v: Option<f64>| match v {
            Some(v) => format!("{:>8.2}", 100.0 * v),
            None => format!("{:>8}", "-"),
        };
        for k in ks {
            out.push_str(&cell(m.all.get(&format!("recall_at_{k}")).copied()));
        }
        out.push_str(&cell(m.top_1_percent));
        out.push_str(&cell(m.hit_rate));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: SaigArgs,
    }

    fn resolve(argv: &[&str]) -> Result<SaigRunConfig, SystemError> {
        let args = Cli::parse_from(std::iter::once("saig").chain(argv.iter().copied())).args;
        SaigRunConfig::resolve(&args, PathBuf::from("root"))
    }

    fn cosine(t: &TrainerConfig) -> (usize, f64) {
        match t.schedule {
            LrSchedule::WarmupCosine { warmup, floor } => (warmup, floor),
            ref other => panic!("{other:?}"),
        }
    }

    /// `--preset paper` is section 1 of the seed spec, setting by setting.
    #[test]
    fn the_paper_preset_is_the_published_configuration() {
        let c = resolve(&["--preset", "paper", "--dataset", "cvusa"]).unwrap();
        let m = &c.model;
        assert_eq!(
            (m.depth, m.embed_dim, m.heads, m.stem_width),
            (11, 384, 12, 64)
        );
        assert_eq!((m.ground_size, m.aerial_size), ([128, 512], [256, 256]));
        assert_eq!(
            (m.pool, m.loss),
            (SaigPool::Gap, SaigLoss::Triplet { alpha: 10.0 })
        );
        let t = &c.trainer;
        assert_eq!(t.optimizer, OptimizerSetting::adamw(0.03));
        assert_eq!((t.lr, t.epochs, t.clip_grad_norm), (1e-4, 200, Some(1.0)));
        assert_eq!(cosine(t), (0, 1e-6));
        assert_eq!(t.schedule_unit, StepUnit::Iteration, "stepped per batch");
        assert_eq!((t.sam, c.batch_size), (None, 32));
        assert_eq!(c.recall_ks, vec![1, 5, 10]);
        assert!(!c.polar && !c.shared_shift);
        // CVUSA polar: aerial unrolled to 128 x 512 and one heading per pair (`aug`).
        let c = resolve(&["--preset", "paper", "--dataset", "cvusa", "--polar", "true"]).unwrap();
        assert_eq!(c.model.aerial_size, [128, 512]);
        assert!(c.polar && c.shared_shift);
        // CVACT: polar, without `aug`.
        let c = resolve(&["--preset", "paper", "--dataset", "cvact"]).unwrap();
        assert!(c.polar && !c.shared_shift);
        assert_eq!(c.model.aerial_size, [128, 512]);
        // VIGOR: 320 x 640 / 320 x 320, 90 epochs, same-area, R@100 too.
        let c = resolve(&["--preset", "paper", "--dataset", "vigor"]).unwrap();
        assert_eq!(
            (c.model.ground_size, c.model.aerial_size),
            ([320, 640], [320, 320])
        );
        assert_eq!((c.trainer.epochs, c.same_area), (90, true));
        assert_eq!(c.recall_ks, vec![1, 5, 10, 100]);
        // "ASAM" is adaptive SAM with rho 2 over AdamW; CVUSA's script then stops clipping,
        // VIGOR's keeps it.
        let c = resolve(&[
            "--preset",
            "paper",
            "--dataset",
            "cvusa",
            "--sam",
            "adaptive",
        ])
        .unwrap();
        assert_eq!(c.trainer.sam, Some(SamSetting::Adaptive { rho: 2.0 }));
        assert_eq!(c.trainer.clip_grad_norm, None);
        let c = resolve(&[
            "--preset",
            "paper",
            "--dataset",
            "vigor",
            "--sam",
            "adaptive",
        ])
        .unwrap();
        assert_eq!(c.trainer.clip_grad_norm, Some(1.0));
        let c = resolve(&["--preset", "paper", "--dataset", "vigor", "--variant", "d"]).unwrap();
        assert_eq!(c.model.depth, 22);
    }

    #[test]
    fn every_setting_is_overridable_by_its_flag() {
        let c = resolve(&[
            "--preset",
            "paper",
            "--dataset",
            "vigor",
            "--depth",
            "3",
            "--embed-dim",
            "96",
            "--heads",
            "6",
            "--stem-width",
            "16",
            "--pool",
            "smd",
            "--loss",
            "infonce",
            "--temperature",
            "0.05",
            "--ground-size",
            "64x256",
            "--aerial-size",
            "64x64",
            "--same-area",
            "false",
            "--batch-size",
            "16",
            "--epochs",
            "5",
            "--lr",
            "0.001",
            "--weight-decay",
            "0.1",
            "--warmup-steps",
            "7",
            "--clip-grad-norm",
            "0",
            "--sam",
            "asam",
            "--rho",
            "0.3",
            "--eta",
            "0.02",
            "--eval-every",
            "3",
            "--seed",
            "9",
            "--recalls",
            "1,2",
        ])
        .unwrap();
        let m = &c.model;
        assert_eq!(
            (m.depth, m.embed_dim, m.heads, m.stem_width),
            (3, 96, 6, 16)
        );
        assert_eq!(
            (m.pool, m.loss),
            (SaigPool::Smd, SaigLoss::InfoNce { temperature: 0.05 })
        );
        assert_eq!((m.ground_size, m.aerial_size), ([64, 256], [64, 64]));
        assert!(!c.same_area);
        let t = &c.trainer;
        assert_eq!((c.batch_size, t.epochs, t.lr), (16, 5, 1e-3));
        assert_eq!(t.optimizer, OptimizerSetting::adamw(0.1));
        assert_eq!(cosine(t).0, 7);
        assert_eq!(t.clip_grad_norm, None);
        assert_eq!(
            t.sam,
            Some(SamSetting::Asam {
                rho: 0.3,
                eta: 0.02
            })
        );
        assert_eq!((t.eval_every, t.seed), (3, 9));
        assert_eq!(c.recall_ks, vec![1, 2]);
        let c = resolve(&["--loss", "semi_soft_tri_hard", "--alpha", "4"]).unwrap();
        assert_eq!(c.model.loss, SaigLoss::SemiSoftTriHard { alpha: 4.0 });
        let c = resolve(&[
            "--camera-jitter",
            "0.2",
            "--radius-range",
            "0.5,1.5",
            "--eval-drawers",
            "4",
        ])
        .unwrap();
        assert_eq!(
            (c.ground_view.center_jitter, c.ground_view.radius),
            (0.2, [0.5, 1.5])
        );
        assert_eq!(c.eval_drawers, Some(4));
    }

    #[test]
    fn the_cpu_preset_is_a_narrow_saig_on_the_omniglot_task_and_bad_flags_are_refused() {
        let c = resolve(&[]).unwrap();
        assert_eq!(c.dataset, CrossViewDataset::Omniglot);
        assert_eq!(
            (c.model.depth, c.model.embed_dim, c.model.stem_width),
            (4, 64, 8)
        );
        assert_eq!(c.ground_view.size, [32, 128]);
        assert_eq!(c.trainer.clip_grad_norm, Some(1.0));
        for bad in [
            &["--loss", "arcface"][..],
            &["--variant", "xl"],
            &["--batch-size", "1"],
            &["--aerial-size", "64x32"],
            &["--radius-range", "1,0.5"],
            &["--shared-shift", "true"],
            &["--dataset", "cub"],
        ] {
            assert!(resolve(bad).is_err(), "{bad:?}");
        }
        assert!(parse_size("128x512").is_ok() && parse_size("128").is_err());
    }
}
