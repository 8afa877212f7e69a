//! PSS, "Progressive Sample Selection for Open-World Visual Representation Learning" (Cao et
//! al. 2022; seed spec s.3.7), behind `cargo run --release --example pss`: train Smooth-AP on
//! the labelled images, embed every training image (labelled, unlabelled from the same
//! classes, unlabelled from unseen classes), cluster the embeddings, keep the unlabelled images
//! in dense regions with their cluster as a pseudo-label, fine-tune on labelled + selected, and
//! repeat.
//!
//! # The clustering is a stand-in
//!
//! PSS clusters with Hi-LANDER, a GNN whose edge and density predictions need trained GNN
//! weights. This loop uses [`metron_metrics::density_peak_clusters`] instead: Hi-LANDER's
//! inference rule (each node links to its most similar kNN neighbour of higher density; peaks
//! start clusters; repeated on cluster means) with raw cosine similarities where the GNN
//! predicts edge probabilities, on metron's exact kNN (memory O(N k)). The selection is
//! Hi-LANDER's `selectbydensity`: an unlabelled image is kept when its density exceeds a
//! threshold.
//!
//! # Files
//!
//! The run directory holds `config.json` (this loop's configuration), `report.json`, and one
//! Smooth-AP run per iteration, `iter_K/`, with its checkpoints, curves and, in
//! `iter_K/features/`, what PSS's `get_features.py` + Hi-LANDER write, readable from Python
//! (`numpy.load`, `json.load`): `features.npy` (`[N, D]` f32, every training image in the order
//! labelled, unlabelled-seen, unlabelled-unseen), `pred_labels.npy` (i64: the labelled class,
//! or a pseudo-label offset past the labelled classes, or -1 = not selected),
//! `gt_labels.npy` (i64: the hidden true class), `masks.npy` (i64: 0 labelled or selected
//! before, 1 newly selected, 2 not selected), `density.npy` (f64) and `paths.json`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use clap::Args;
use ndarray::{Array1, Array2};
use rand::seq::SliceRandom as _;
use serde::{Deserialize, Serialize};

use metron_datasets::{LoaderConfig, Sample, Split};
use metron_metrics::{
    DensityPeakConfig, KnnOptions, Similarity, density_peak_clusters, knn_self, nmi,
    pairwise_scores,
};
use metron_train::{Bar, LrSchedule, OptimizerSetting, RunDir};

use super::recipe::{SmoothApArgs, SmoothApRunConfig};
use crate::systems::SystemError;
use crate::systems::retrieval::{
    DataSource, RetrievalData, RetrievalOutcome, free_run_dir, load_registry,
    refuse_flags_on_resume,
};

/// Flags of the `pss` example: Smooth-AP's own (for iteration 0) plus the loop's.
#[derive(Debug, Clone, Args)]
pub struct PssArgs {
    /// Smooth-AP's flags: data, run directory, device, output, the network and its training
    /// (iteration 0). No baseline is trained.
    #[command(flatten)]
    pub smooth_ap: SmoothApArgs,
    /// Fine-tuning iterations after iteration 0 (default 2).
    #[arg(long)]
    pub iterations: Option<usize>,
    /// Epochs of each fine-tuning iteration (cpu: 6, paper: 400).
    #[arg(long)]
    pub finetune_epochs: Option<usize>,
    /// Learning rate of fine-tuning (cpu: 3e-4, paper: 1e-5).
    #[arg(long)]
    pub finetune_lr: Option<f64>,
    /// Adam's L2 weight decay when fine-tuning (cpu: 0, paper: 1e-3 as `finetune_1head.py`).
    #[arg(long)]
    pub finetune_weight_decay: Option<f64>,
    /// Neighbours of the kNN graph the clustering runs on (Hi-LANDER: 10).
    #[arg(long)]
    pub knn: Option<usize>,
    /// A node links to a denser neighbour only when their cosine similarity is at least this;
    /// default: the median similarity of the labelled images to their k-th neighbour.
    #[arg(long)]
    pub link_threshold: Option<f64>,
    /// Keep an unlabelled image when its density (mean cosine similarity to its kNN) exceeds
    /// this; default: the median density of the labelled images.
    #[arg(long)]
    pub select_density: Option<f64>,
    /// Fraction of the training classes that are seen, i.e. have labelled images (0.5).
    #[arg(long)]
    pub seen_fraction: Option<f64>,
    /// Fraction of each seen class's images that are labelled; the rest are unlabelled (0.5).
    #[arg(long)]
    pub labelled_fraction: Option<f64>,
    /// Also fine-tune the same number of iterations on the labelled images alone, so the
    /// report separates what the pseudo-labels add from what more epochs add (default true).
    #[arg(long)]
    pub control: Option<bool>,
}

impl PssArgs {
    /// The flags that fix part of a run's configuration (refused with `--resume`).
    pub fn configuration_flags(&self) -> Vec<&'static str> {
        let a = self;
        [
            ("--iterations", a.iterations.is_some()),
            ("--finetune-epochs", a.finetune_epochs.is_some()),
            ("--finetune-lr", a.finetune_lr.is_some()),
            ("--finetune-weight-decay", a.finetune_weight_decay.is_some()),
            ("--knn", a.knn.is_some()),
            ("--link-threshold", a.link_threshold.is_some()),
            ("--select-density", a.select_density.is_some()),
            ("--seen-fraction", a.seen_fraction.is_some()),
            ("--labelled-fraction", a.labelled_fraction.is_some()),
            ("--control", a.control.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, given)| given.then_some(name))
        .chain(a.smooth_ap.configuration_flags())
        .collect()
    }
}

/// How the training split is divided when the dataset has no PSS splits of its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Partition {
    /// Fraction of the training classes that are seen (have labelled images).
    pub seen_fraction: f64,
    /// Fraction of a seen class's images that are labelled.
    pub labelled_fraction: f64,
    /// Seed of the choice of seen classes and labelled images.
    pub seed: u64,
}

/// Everything a PSS run was configured with; saved as the run's `config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PssConfig {
    /// Iteration 0: Smooth-AP on the labelled images.
    pub initial: SmoothApRunConfig,
    /// Fine-tuning iterations after iteration 0.
    pub iterations: usize,
    /// Each fine-tuning iteration: the same network and loss, its own budget and optimiser;
    /// it starts from the previous iteration's best checkpoint.
    pub finetune: SmoothApRunConfig,
    /// The kNN-graph clustering (its `link_threshold` is replaced by `link_threshold`).
    pub clustering: DensityPeakConfig,
    /// The clustering's link threshold; `None`: the median cosine similarity of the labelled
    /// images to their k-th neighbour at that iteration (the scale of a class's neighbourhood).
    pub link_threshold: Option<f64>,
    /// The density an unlabelled image must exceed to be selected; `None`: the median
    /// density of the labelled images at that iteration.
    pub select_density: Option<f64>,
    /// How the training split is divided (unused when the dataset has PSS splits).
    pub partition: Partition,
    /// Also fine-tune on the labelled images alone, iteration for iteration.
    pub control: bool,
}

impl PssConfig {
    /// The preset with the flags applied, for `seen_classes` labelled classes.
    pub fn resolve(
        args: &PssArgs,
        data: DataSource,
        seen_classes: usize,
    ) -> Result<Self, SystemError> {
        let mut sa = args.smooth_ap.clone();
        sa.no_baseline = true;
        sa.baseline = None;
        let initial = SmoothApRunConfig::resolve(&sa, data, seen_classes)?;
        let paper = initial.preset == super::Preset::Paper;
        let mut finetune = initial.clone();
        let epochs = args.finetune_epochs.unwrap_or(if paper { 400 } else { 6 });
        finetune.trainer.epochs = epochs;
        finetune.trainer.lr = args.finetune_lr.unwrap_or(if paper { 1e-5 } else { 3e-4 });
        let decay = args
            .finetune_weight_decay
            .unwrap_or(if paper { 1e-3 } else { 0.0 });
        finetune.trainer.optimizer = OptimizerSetting::adam(decay);
        if !paper {
            finetune.trainer.schedule = LrSchedule::MultiStep {
                milestones: vec![epochs * 6 / 10, epochs * 8 / 10],
                gamma: 0.1,
            };
        }
        let clustering = DensityPeakConfig::new(args.knn.unwrap_or(10)).with_levels(10);
        let partition = Partition {
            seen_fraction: args.seen_fraction.unwrap_or(0.5),
            labelled_fraction: args.labelled_fraction.unwrap_or(0.5),
            seed: initial.trainer.seed,
        };
        for (name, f) in [
            ("--seen-fraction", partition.seen_fraction),
            ("--labelled-fraction", partition.labelled_fraction),
        ] {
            if !(f > 0.0 && f < 1.0) {
                return Err(SystemError::Usage(format!(
                    "{name} must be strictly between 0 and 1, got {f}"
                )));
            }
        }
        if clustering.k == 0 {
            return Err(SystemError::Usage("--knn must be at least 1".into()));
        }
        Ok(PssConfig {
            initial,
            iterations: args.iterations.unwrap_or(2),
            finetune,
            clustering,
            link_threshold: args.link_threshold,
            select_density: args.select_density,
            partition,
            control: args.control.unwrap_or(true),
        })
    }
}

/// The training images divided as PSS divides them, in PSS's order (labelled, unlabelled
/// seen, unlabelled unseen), with the hidden true classes.
#[derive(Debug, Clone, PartialEq)]
pub struct PssData {
    /// Every training image: labelled first, then unlabelled from seen classes, then
    /// unlabelled from unseen classes.
    pub images: Vec<Sample>,
    /// True class of each image, in one id space across the three parts.
    pub gt_labels: Vec<i64>,
    /// Images `0..labelled` are labelled.
    pub labelled: usize,
    /// Images `labelled..labelled + unlabelled_seen` are unlabelled images of seen classes;
    /// the rest are of unseen classes.
    pub unlabelled_seen: usize,
    /// The labelled images' classes, dense `0..seen_classes` (the training labels).
    pub labelled_classes: Vec<i64>,
    /// Number of seen (labelled) classes: the pseudo-labels start here.
    pub seen_classes: usize,
    /// The held-out test split (classes disjoint from training).
    pub test: Split,
}

impl PssData {
    /// Divides `train` by `partition`: a seeded `seen_fraction` of its classes are seen, and a
    /// seeded `labelled_fraction` of each seen class's images (at least one, at most all but
    /// one) are labelled.
    pub fn partition(
        train: &Split,
        test: Split,
        partition: &Partition,
    ) -> Result<Self, SystemError> {
        let mut rng = metron_core::rng_from_seed(metron_core::split_seed(partition.seed, 0x9055));
        let classes = train.classes.len();
        let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); classes];
        for (i, s) in train.samples.iter().enumerate() {
            by_class[s.label].push(i);
        }
        let mut present: Vec<usize> = (0..classes).filter(|&c| by_class[c].len() >= 2).collect();
        present.shuffle(&mut rng);
        let seen = ((present.len() as f64 * partition.seen_fraction).round() as usize)
            .clamp(1, present.len().saturating_sub(1).max(1));
        if present.len() < 2 {
            return Err(SystemError::Usage(format!(
                "PSS needs at least 2 training classes with 2 images, the training split has {}",
                present.len()
            )));
        }
        let mut seen_classes: Vec<usize> = present[..seen].to_vec();
        seen_classes.sort_unstable();
        let (mut labelled, mut unlabelled_seen) = (Vec::new(), Vec::new());
        let mut labelled_classes = Vec::new();
        for (dense, &c) in seen_classes.iter().enumerate() {
            let mut members = by_class[c].clone();
            members.shuffle(&mut rng);
            let n = ((members.len() as f64 * partition.labelled_fraction).round() as usize)
                .clamp(1, members.len() - 1);
            let (l, u) = members.split_at(n);
            let mut l = l.to_vec();
            l.sort_unstable();
            labelled_classes.extend(std::iter::repeat_n(dense as i64, l.len()));
            labelled.extend(l);
            unlabelled_seen.extend_from_slice(u);
        }
        unlabelled_seen.sort_unstable();
        let is_seen: Vec<bool> = (0..classes)
            .map(|c| seen_classes.binary_search(&c).is_ok())
            .collect();
        let unseen: Vec<usize> = (0..train.samples.len())
            .filter(|&i| !is_seen[train.samples[i].label])
            .collect();
        let order: Vec<usize> = labelled
            .iter()
            .chain(&unlabelled_seen)
            .chain(&unseen)
            .copied()
            .collect();
        Ok(PssData {
            images: order.iter().map(|&i| train.samples[i].clone()).collect(),
            gt_labels: order
                .iter()
                .map(|&i| train.samples[i].label as i64)
                .collect(),
            labelled: labelled.len(),
            unlabelled_seen: unlabelled_seen.len(),
            labelled_classes,
            seen_classes: seen_classes.len(),
            test,
        })
    }

    /// The training split of an iteration: the labelled images with their classes, then the
    /// selected unlabelled images with their pseudo-labels (`pred[i] >= 0`).
    pub fn training_split(&self, pred: Option<&[i64]>) -> Split {
        let mut samples: Vec<Sample> = self.images[..self.labelled]
            .iter()
            .zip(&self.labelled_classes)
            .map(|(s, &c)| Sample {
                label: c as usize,
                ..s.clone()
            })
            .collect();
        if let Some(pred) = pred {
            for (s, &p) in self.images.iter().zip(pred).skip(self.labelled) {
                if p >= 0 {
                    samples.push(Sample {
                        label: p as usize,
                        ..s.clone()
                    });
                }
            }
        }
        let classes = samples.iter().map(|s| s.label + 1).max().unwrap_or(0);
        Split {
            name: "train".into(),
            samples,
            classes: (0..classes)
                .map(|c| {
                    if c < self.seen_classes {
                        format!("labelled-{c}")
                    } else {
                        format!("pseudo-{}", c - self.seen_classes)
                    }
                })
                .collect(),
        }
    }
}

/// The pseudo-labels one clustering gives, with the files PSS writes.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    /// Per training image: the labelled class, a pseudo-label `>= seen_classes`, or -1.
    pub pred_labels: Vec<i64>,
    /// 0 labelled or selected before, 1 newly selected, 2 not selected.
    pub masks: Vec<i64>,
    /// The level-1 density of every image (mean cosine similarity to its kNN).
    pub density: Vec<f64>,
    /// The threshold the unlabelled images' density had to exceed.
    pub threshold: f64,
    /// The similarity a link needed.
    pub link_threshold: f64,
}

/// Clusters `features` (one row per training image of `data`) and selects the unlabelled
/// images denser than the threshold; `previous` are the last iteration's labels (for the
/// masks). `link_threshold: None` derives the clustering's link threshold from the labelled
/// images (see [`PssConfig::link_threshold`]).
pub fn select(
    features: &Array2<f32>,
    data: &PssData,
    clustering: &DensityPeakConfig,
    link_threshold: Option<f64>,
    select_density: Option<f64>,
    previous: Option<&[i64]>,
) -> Result<Selection, SystemError> {
    let link_threshold = match link_threshold {
        Some(t) => t,
        None => {
            let k = clustering.k.min(features.nrows().saturating_sub(1)).max(1);
            let nn = knn_self(features.view(), k, &KnnOptions::new(Similarity::Cosine))?;
            let kth: Vec<f64> = (0..data.labelled)
                .map(|i| nn.row_values(i)[k - 1] as f64)
                .collect();
            median(&kth)
        }
    };
    let clustering = clustering.clone().with_link_threshold(link_threshold);
    let clusters = density_peak_clusters(features.view(), &clustering)?;
    let threshold = match select_density {
        Some(t) => t,
        None => median(&clusters.density[..data.labelled]),
    };
    let mut pred_labels = Vec::with_capacity(data.images.len());
    let mut masks = Vec::with_capacity(data.images.len());
    for i in 0..data.images.len() {
        if i < data.labelled {
            pred_labels.push(data.labelled_classes[i]);
            masks.push(0);
        } else if clusters.density[i] > threshold {
            pred_labels.push((data.seen_classes + clusters.labels[i]) as i64);
            let before = previous.is_some_and(|p| p[i] >= 0);
            masks.push(if before { 0 } else { 1 });
        } else {
            pred_labels.push(-1);
            masks.push(2);
        }
    }
    Ok(Selection {
        pred_labels,
        masks,
        density: clusters.density,
        threshold,
        link_threshold,
    })
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::INFINITY,
        n if n % 2 == 1 => v[n / 2],
        n => 0.5 * (v[n / 2 - 1] + v[n / 2]),
    }
}

/// How good the selected pseudo-labels are against the hidden true classes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PseudoLabelQuality {
    /// Unlabelled images selected.
    pub selected: usize,
    /// Of them, images of seen classes.
    pub selected_seen: usize,
    /// Of them, images of unseen classes.
    pub selected_unseen: usize,
    /// Pairwise precision of the pseudo-labels on the selected images.
    pub pseudo_precision: f64,
    /// Pairwise recall of the pseudo-labels on the selected images.
    pub pseudo_recall: f64,
    /// NMI of the pseudo-labels and the true classes on the selected images.
    pub pseudo_nmi: f64,
    /// The density threshold used.
    pub density_threshold: f64,
    /// The clustering's link threshold used.
    pub link_threshold: f64,
}

/// The quality of `selection` on the unlabelled images of `data`.
pub fn pseudo_label_quality(
    selection: &Selection,
    data: &PssData,
) -> Result<PseudoLabelQuality, SystemError> {
    let picked: Vec<usize> = (data.labelled..data.images.len())
        .filter(|&i| selection.pred_labels[i] >= 0)
        .collect();
    let seen_end = data.labelled + data.unlabelled_seen;
    let selected_seen = picked.iter().filter(|&&i| i < seen_end).count();
    let (precision, recall, nmi_value) = if picked.is_empty() {
        (0.0, 0.0, 0.0)
    } else {
        let truth: Vec<i64> = picked.iter().map(|&i| data.gt_labels[i]).collect();
        let pred: Vec<i64> = picked.iter().map(|&i| selection.pred_labels[i]).collect();
        let p = pairwise_scores(&truth, &pred)?;
        (p.precision, p.recall, nmi(&truth, &pred)?)
    };
    Ok(PseudoLabelQuality {
        selected: picked.len(),
        selected_seen,
        selected_unseen: picked.len() - selected_seen,
        pseudo_precision: precision,
        pseudo_recall: recall,
        pseudo_nmi: nmi_value,
        density_threshold: selection.threshold,
        link_threshold: selection.link_threshold,
    })
}

/// PSS's feature export: the features of every training image with the labels it trains on
/// next. See the module docs for the files.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureExport {
    /// The image files, in row order.
    pub paths: Vec<PathBuf>,
    /// `[N, D]`.
    pub features: Array2<f32>,
    /// Labelled class, pseudo-label or -1.
    pub pred_labels: Vec<i64>,
    /// The true classes.
    pub gt_labels: Vec<i64>,
    /// 0 labelled or selected before, 1 newly selected, 2 not selected.
    pub masks: Vec<i64>,
    /// Density of each row.
    pub density: Vec<f64>,
    /// The density an unlabelled image had to exceed, and the clustering's link threshold
    /// (`selection.json`).
    pub thresholds: Thresholds,
}

/// The two thresholds of a selection.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    /// The density an unlabelled image had to exceed to be selected.
    pub density: f64,
    /// The similarity a link between two images needed.
    pub link: f64,
}

impl FeatureExport {
    /// Writes the six files into `dir` (created), each atomically.
    pub fn write(&self, dir: &Path) -> Result<(), SystemError> {
        std::fs::create_dir_all(dir).map_err(|source| metron_core::Error::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        metron_core::write_npy(dir.join("features.npy"), &self.features)?;
        let ints = |v: &[i64]| Array1::from(v.to_vec());
        metron_core::write_npy(dir.join("pred_labels.npy"), &ints(&self.pred_labels))?;
        metron_core::write_npy(dir.join("gt_labels.npy"), &ints(&self.gt_labels))?;
        metron_core::write_npy(dir.join("masks.npy"), &ints(&self.masks))?;
        metron_core::write_npy(dir.join("density.npy"), &Array1::from(self.density.clone()))?;
        let paths: Vec<String> = self
            .paths
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        let json = serde_json::to_vec_pretty(&paths).expect("strings serialise");
        metron_core::atomic_write(dir.join("paths.json"), &json)?;
        let json = serde_json::to_vec_pretty(&self.thresholds).expect("numbers serialise");
        metron_core::atomic_write(dir.join("selection.json"), &json)?;
        Ok(())
    }

    /// Reads what [`FeatureExport::write`] wrote.
    pub fn read(dir: &Path) -> Result<Self, SystemError> {
        let features = metron_core::read_embeddings(dir.join("features.npy"))?.to_f32();
        let ints = |name: &str| -> Result<Vec<i64>, SystemError> {
            Ok(metron_core::read_npy_i64(dir.join(name))?
                .iter()
                .copied()
                .collect())
        };
        let density: Vec<f64> = metron_core::read_npy_f64(dir.join("density.npy"))?
            .iter()
            .copied()
            .collect();
        let paths: Vec<PathBuf> = read_json(&dir.join("paths.json"), "a JSON list of paths")?;
        let thresholds: Thresholds = read_json(
            &dir.join("selection.json"),
            "an object with `density` and `link`",
        )?;
        let export = FeatureExport {
            paths,
            features,
            pred_labels: ints("pred_labels.npy")?,
            gt_labels: ints("gt_labels.npy")?,
            masks: ints("masks.npy")?,
            density,
            thresholds,
        };
        let n = export.features.nrows();
        for (name, len) in [
            ("paths.json", export.paths.len()),
            ("pred_labels.npy", export.pred_labels.len()),
            ("gt_labels.npy", export.gt_labels.len()),
            ("masks.npy", export.masks.len()),
            ("density.npy", export.density.len()),
        ] {
            if len != n {
                return Err(SystemError::Usage(format!(
                    "{}: {len} entries for {n} feature rows",
                    dir.join(name).display()
                )));
            }
        }
        Ok(export)
    }
}

fn read_json<T: serde::de::DeserializeOwned>(file: &Path, what: &str) -> Result<T, SystemError> {
    let text = std::fs::read(file).map_err(|source| metron_core::Error::Io {
        path: file.to_path_buf(),
        source,
    })?;
    Ok(
        serde_json::from_slice(&text).map_err(|e| metron_core::Error::Format {
            path: file.to_path_buf(),
            what: format!("not {what}: {e}"),
        })?,
    )
}

/// One row of the PSS report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PssIteration {
    /// 0 = trained on the labelled images only.
    pub iteration: usize,
    /// Images the iteration trained on (labelled + selected).
    pub trained_on: usize,
    /// The quality of the pseudo-labels it trained on (`None` at iteration 0).
    #[serde(flatten)]
    pub pseudo: Option<PseudoLabelQuality>,
    /// Held-out retrieval of the iteration's model (`recall_at_K`, `nmi`, `ami`).
    #[serde(flatten)]
    pub test: BTreeMap<String, f64>,
}

/// What `--json` prints and `report.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PssReport {
    /// One row per iteration.
    pub iterations: Vec<PssIteration>,
    /// The control: fine-tuning iterations 1.. on the labelled images alone (empty without
    /// `--control`).
    pub control: Vec<PssIteration>,
    /// The untrained network's held-out metrics.
    pub untrained: BTreeMap<String, f64>,
    /// Raw pixels' held-out metrics.
    pub pixels: BTreeMap<String, f64>,
    /// Labelled, unlabelled-seen and unlabelled-unseen images, and the seen classes.
    pub partition: serde_json::Value,
    /// The Smooth-AP setup of iteration 0.
    pub setup: serde_json::Value,
    /// The run directory.
    pub run_dir: PathBuf,
    /// Wall-clock time of this invocation, in seconds.
    pub seconds: f64,
}

/// What [`run`] ended with.
#[derive(Debug)]
pub enum PssOutcome {
    /// Every iteration finished.
    Finished(Box<PssReport>),
    /// Stopped early by `--stop-after`; resume from the run directory.
    Stopped {
        /// The PSS run directory to resume.
        run_dir: PathBuf,
        /// The iteration that stopped.
        iteration: usize,
        /// Its epochs trained so far.
        epochs_done: usize,
    },
}

fn open_or_create(dir: &Path, config: &SmoothApRunConfig) -> Result<RunDir, SystemError> {
    Ok(if dir.join("config.json").is_file() {
        RunDir::open(dir)?
    } else {
        RunDir::create(dir, config)?
    })
}

/// The PSS data of a dataset: its own `labelled` / `unlabelled_seen` / `unlabelled_unseen` /
/// `test` splits when it has them (the PSS iNaturalist lists), else its training split divided
/// by `partition`.
pub fn read_pss_data(
    source: &DataSource,
    registry: &metron_datasets::Registry,
    partition: &Partition,
    quiet: bool,
) -> Result<PssData, SystemError> {
    let dataset = match &source.csv {
        Some(file) => metron_datasets::read_csv(file)?,
        None => registry.read(&source.dataset, Some(&source.root))?,
    };
    if let (Ok(l), Ok(u), Ok(o)) = (
        dataset.split("labelled"),
        dataset.split("unlabelled_seen"),
        dataset.split("unlabelled_unseen"),
    ) {
        return Ok(from_pss_splits(l, u, o, dataset.split("test")?.clone()));
    }
    let data = source.read(registry, quiet)?;
    PssData::partition(&data.train, data.test, partition)
}

/// Joins PSS's own three lists, naming classes across them by their class names.
fn from_pss_splits(l: &Split, u: &Split, o: &Split, test: Split) -> PssData {
    let mut names: BTreeMap<&str, i64> = BTreeMap::new();
    for split in [l, u, o] {
        for c in &split.classes {
            let next = names.len() as i64;
            names.entry(c.as_str()).or_insert(next);
        }
    }
    let gt = |s: &Split| -> Vec<i64> {
        s.samples
            .iter()
            .map(|x| names[s.classes[x.label].as_str()])
            .collect()
    };
    let mut seen: BTreeMap<usize, i64> = BTreeMap::new();
    for x in &l.samples {
        let next = seen.len() as i64;
        seen.entry(x.label).or_insert(next);
    }
    let images: Vec<Sample> = [l, u, o].iter().flat_map(|s| s.samples.clone()).collect();
    PssData {
        gt_labels: [gt(l), gt(u), gt(o)].concat(),
        labelled: l.samples.len(),
        unlabelled_seen: u.samples.len(),
        labelled_classes: l.samples.iter().map(|x| seen[&x.label]).collect(),
        seen_classes: seen.len(),
        images,
        test,
    }
}

/// Embeds every training image with the checkpoint at `ckpt`.
fn embed_all(
    ckpt: &Path,
    data: &PssData,
    config: &SmoothApRunConfig,
    device_name: &str,
    quiet: bool,
) -> Result<Array2<f32>, SystemError> {
    let device = metron_core::parse_device(device_name)?;
    let model = crate::systems::load_checkpoint(ckpt, &device, crate::systems::SYSTEMS)?;
    let bar = Bar::new(data.images.len(), "embedding the training images", quiet);
    let embedded = model.embed_images(
        Arc::new(data.images.clone()),
        config.evaluation.eval_batch_size,
        LoaderConfig {
            prefetch: config.trainer.prefetch,
            skip_corrupt: false,
        },
        &bar,
    )?;
    bar.finish();
    Ok(embedded.embeddings)
}

/// Trains one iteration in `dir` (new or resumed): iteration 0 (`from: None`) with the
/// initial configuration, later ones fine-tuned from `from`'s checkpoint. `Err(epochs)` when
/// it stopped early.
#[allow(clippy::too_many_arguments)]
fn train_iteration(
    config: &PssConfig,
    from: Option<&Path>,
    dir: &Path,
    train: Split,
    data: &PssData,
    run_args: &crate::systems::retrieval::RunArgs,
    started: Instant,
) -> Result<Result<Box<crate::systems::retrieval::RetrievalReport>, usize>, SystemError> {
    let mut c = match from {
        None => config.initial.clone(),
        Some(_) => config.finetune.clone(),
    };
    c.init_checkpoint = from.map(handed_on);
    let retrieval = RetrievalData {
        train,
        test: data.test.clone(),
        gallery: None,
    };
    Ok(
        match super::train_one(&c, open_or_create(dir, &c)?, &retrieval, run_args, started)? {
            RetrievalOutcome::Finished(report) => Ok(report),
            RetrievalOutcome::Stopped { epochs_done, .. } => Err(epochs_done),
        },
    )
}

/// The checkpoint an iteration hands on: its best, else its last.
fn handed_on(run: &Path) -> PathBuf {
    let best = run.join("checkpoints").join("best.ckpt");
    if best.is_file() {
        best
    } else {
        run.join("checkpoints").join("last.ckpt")
    }
}

/// Runs (or resumes) the PSS loop as `args` say.
pub fn run(args: &PssArgs) -> Result<PssOutcome, SystemError> {
    let started = Instant::now();
    let run_args = &args.smooth_ap.run;
    let registry = load_registry(run_args.registry.as_deref())?;
    let (config, root, data) = match &run_args.resume {
        Some(dir) => {
            refuse_flags_on_resume(dir, &args.configuration_flags())?;
            let run = RunDir::open(dir)?;
            let config: PssConfig = run.read_config()?;
            let data = read_pss_data(
                &config.initial.data,
                &registry,
                &config.partition,
                run_args.quiet,
            )?;
            (config, run.root().to_path_buf(), data)
        }
        None => {
            let source = DataSource::resolve(
                &registry,
                &run_args.dataset(),
                run_args.root.as_deref(),
                run_args.csv.as_deref(),
            )?;
            // The partition's seed is the run's: resolve once for it, then divide.
            let probe = PssConfig::resolve(args, source.clone(), 1)?;
            let data = read_pss_data(&source, &registry, &probe.partition, run_args.quiet)?;
            let config = PssConfig::resolve(args, source, data.seen_classes)?;
            // Everything must build before anything is written.
            let device = metron_core::parse_device(&run_args.device)?;
            config.initial.model.init(&device)?;
            config.initial.sampler(
                &data
                    .training_split(None)
                    .samples
                    .iter()
                    .map(|s| s.label)
                    .collect::<Vec<_>>(),
            )?;
            let dir = run_args
                .run_dir
                .clone()
                .unwrap_or_else(|| free_run_dir("pss", &run_args.dataset()));
            let run = RunDir::create(&dir, &config)?;
            (config, run.root().to_path_buf(), data)
        }
    };
    if !run_args.quiet {
        eprintln!(
            "PSS: {} labelled images of {} seen classes, {} unlabelled of seen classes, {} of unseen classes",
            data.labelled,
            data.seen_classes,
            data.unlabelled_seen,
            data.images.len() - data.labelled - data.unlabelled_seen
        );
    }
    let mut rows = Vec::new();
    let mut previous: Option<Selection> = None;
    let mut first: Option<Box<crate::systems::retrieval::RetrievalReport>> = None;
    let stopped = |iteration, epochs_done| PssOutcome::Stopped {
        run_dir: root.clone(),
        iteration,
        epochs_done,
    };
    for iteration in 0..=config.iterations {
        let dir = root.join(format!("iter_{iteration}"));
        let pred = previous.as_ref().map(|s| s.pred_labels.as_slice());
        let train = data.training_split(pred);
        if !run_args.quiet {
            eprintln!(
                "PSS iteration {iteration}: training on {} images",
                train.samples.len()
            );
        }
        let from = (iteration > 0).then(|| root.join(format!("iter_{}", iteration - 1)));
        let report = match train_iteration(
            &config,
            from.as_deref(),
            &dir,
            train.clone(),
            &data,
            run_args,
            started,
        )? {
            Ok(report) => report,
            Err(epochs_done) => return Ok(stopped(iteration, epochs_done)),
        };
        let pseudo = previous
            .as_ref()
            .map(|s| pseudo_label_quality(s, &data))
            .transpose()?;
        rows.push(PssIteration {
            iteration,
            trained_on: train.samples.len(),
            pseudo,
            test: report.trained.clone(),
        });
        if first.is_none() {
            first = Some(report);
        }
        // The last iteration's model hands nothing on: no clustering after it.
        if iteration == config.iterations {
            break;
        }
        let export_dir = dir.join("features");
        let selection = match FeatureExport::read(&export_dir) {
            // Already clustered before an interruption: the same labels, not recomputed.
            Ok(done) if done.paths.len() == data.images.len() => Selection {
                pred_labels: done.pred_labels,
                masks: done.masks,
                density: done.density,
                threshold: done.thresholds.density,
                link_threshold: done.thresholds.link,
            },
            _ => {
                let c = &config.finetune;
                let features =
                    embed_all(&handed_on(&dir), &data, c, &run_args.device, run_args.quiet)?;
                let selection = select(
                    &features,
                    &data,
                    &config.clustering,
                    config.link_threshold,
                    config.select_density,
                    previous.as_ref().map(|s| s.pred_labels.as_slice()),
                )?;
                FeatureExport {
                    paths: data.images.iter().map(|s| s.path.clone()).collect(),
                    features,
                    pred_labels: selection.pred_labels.clone(),
                    gt_labels: data.gt_labels.clone(),
                    masks: selection.masks.clone(),
                    density: selection.density.clone(),
                    thresholds: Thresholds {
                        density: selection.threshold,
                        link: selection.link_threshold,
                    },
                }
                .write(&export_dir)?;
                selection
            }
        };
        previous = Some(selection);
    }
    // The control: the same fine-tuning chain on the labelled images alone.
    let mut control = Vec::new();
    if config.control {
        for iteration in 1..=config.iterations {
            let dir = root.join(format!("control_iter_{iteration}"));
            let from = match iteration {
                1 => root.join("iter_0"),
                i => root.join(format!("control_iter_{}", i - 1)),
            };
            if !run_args.quiet {
                eprintln!("control iteration {iteration}: the labelled images only");
            }
            let train = data.training_split(None);
            let report = match train_iteration(
                &config,
                Some(&from),
                &dir,
                train.clone(),
                &data,
                run_args,
                started,
            )? {
                Ok(report) => report,
                Err(epochs_done) => return Ok(stopped(iteration, epochs_done)),
            };
            control.push(PssIteration {
                iteration,
                trained_on: train.samples.len(),
                pseudo: None,
                test: report.trained.clone(),
            });
        }
    }
    let first = first.expect("iteration 0 ran");
    let report = PssReport {
        iterations: rows,
        control,
        untrained: first.untrained.clone(),
        pixels: first.pixels.clone(),
        partition: serde_json::json!({
            "labelled": data.labelled,
            "unlabelled_seen": data.unlabelled_seen,
            "unlabelled_unseen": data.images.len() - data.labelled - data.unlabelled_seen,
            "seen_classes": data.seen_classes,
        }),
        setup: first.setup.clone(),
        run_dir: root.clone(),
        seconds: started.elapsed().as_secs_f64(),
    };
    let run = RunDir::open(&root)?;
    run.write_json(&run.report_path(), &report)?;
    Ok(PssOutcome::Finished(Box::new(report)))
}

/// The report as a table: one row per iteration.
pub fn format_pss_table(report: &PssReport, ks: &[usize]) -> String {
    let mut out = format!(
        "{:<5}{:>8}{:>10}{:>8}{:>8}{:>8}{:>8}",
        "iter", "images", "selected", "seen", "P", "R", "NMI"
    );
    for k in ks {
        out.push_str(&format!("{:>8}", format!("R@{k}")));
    }
    out.push_str(&format!("{:>8}\n", "NMI"));
    let pct = |v: Option<&f64>| match v {
        Some(v) => format!("{:>8.2}", 100.0 * v),
        None => format!("{:>8}", "-"),
    };
    for row in &report.iterations {
        out.push_str(&format!("{:<5}{:>8}", row.iteration, row.trained_on));
        match &row.pseudo {
            Some(p) => out.push_str(&format!(
                "{:>10}{:>8}{}{}{}",
                p.selected,
                p.selected_seen,
                pct(Some(&p.pseudo_precision)),
                pct(Some(&p.pseudo_recall)),
                pct(Some(&p.pseudo_nmi))
            )),
            None => out.push_str(&format!(
                "{:>10}{:>8}{:>8}{:>8}{:>8}",
                "-", "-", "-", "-", "-"
            )),
        }
        for k in ks {
            out.push_str(&pct(row.test.get(&format!("recall_at_{k}"))));
        }
        out.push_str(&pct(row.test.get("nmi")));
        out.push('\n');
    }
    // The control rows: the same fine-tuning without the pseudo-labelled images.
    for row in &report.control {
        out.push_str(&format!(
            "{:<5}{:>8}{:>10}{:>8}{:>8}{:>8}{:>8}",
            format!("{}c", row.iteration),
            row.trained_on,
            "-",
            "-",
            "-",
            "-",
            "-"
        ));
        for k in ks {
            out.push_str(&pct(row.test.get(&format!("recall_at_{k}"))));
        }
        out.push_str(&pct(row.test.get("nmi")));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(classes: usize, per_class: usize) -> Split {
        Split {
            name: "train".into(),
            samples: (0..classes * per_class)
                .map(|i| Sample {
                    path: PathBuf::from(format!("img{i}.png")),
                    label: i % classes,
                    bbox: None,
                })
                .collect(),
            classes: (0..classes).map(|c| format!("c{c}")).collect(),
        }
    }

    fn partition(seed: u64) -> Partition {
        Partition {
            seen_fraction: 0.5,
            labelled_fraction: 0.5,
            seed,
        }
    }

    #[test]
    fn the_partition_divides_seen_classes_by_image_and_keeps_unseen_classes_whole() {
        let train = split(10, 8);
        let test = split(3, 2);
        let d = PssData::partition(&train, test, &partition(4)).unwrap();
        assert_eq!((d.images.len(), d.gt_labels.len()), (80, 80));
        assert_eq!((d.labelled, d.unlabelled_seen, d.seen_classes), (20, 20, 5));
        // Every image once, with its own class as ground truth.
        let mut paths: Vec<_> = d.images.iter().map(|s| s.path.clone()).collect();
        paths.sort();
        paths.dedup();
        assert_eq!(paths.len(), 80);
        assert!(
            d.images
                .iter()
                .zip(&d.gt_labels)
                .all(|(s, &g)| s.label as i64 == g)
        );
        let classes = |r: std::ops::Range<usize>| {
            let mut c: Vec<i64> = d.gt_labels[r].to_vec();
            c.sort_unstable();
            c.dedup();
            c
        };
        let (seen, unl, unseen) = (classes(0..20), classes(20..40), classes(40..80));
        assert_eq!(
            seen, unl,
            "unlabelled-seen images come from the seen classes"
        );
        assert!(seen.iter().all(|c| !unseen.contains(c)));
        assert_eq!((seen.len(), unseen.len()), (5, 5));
        // Labelled training labels are dense over the seen classes, 4 images each.
        let mut counts = [0; 5];
        d.labelled_classes
            .iter()
            .for_each(|&c| counts[c as usize] += 1);
        assert_eq!(counts, [4; 5]);
        // The same seed draws the same partition; another seed another one.
        assert_eq!(
            d,
            PssData::partition(&train, split(3, 2), &partition(4)).unwrap()
        );
        assert_ne!(
            d.images,
            PssData::partition(&train, split(3, 2), &partition(5))
                .unwrap()
                .images
        );
    }

    #[test]
    fn the_training_split_adds_only_selected_images_with_their_pseudo_labels() {
        let d = PssData::partition(&split(4, 4), split(2, 2), &partition(0)).unwrap();
        let base = d.training_split(None);
        assert_eq!(base.samples.len(), d.labelled);
        let mut pred: Vec<i64> = vec![-1; d.images.len()];
        pred[..d.labelled].copy_from_slice(&d.labelled_classes);
        let (a, b) = (d.labelled, d.images.len() - 1);
        pred[a] = d.seen_classes as i64 + 3;
        pred[b] = d.seen_classes as i64;
        let grown = d.training_split(Some(&pred));
        assert_eq!(grown.samples.len(), d.labelled + 2);
        assert_eq!(grown.samples[d.labelled].path, d.images[a].path);
        assert_eq!(grown.samples[d.labelled].label, d.seen_classes + 3);
        assert_eq!(grown.samples[d.labelled + 1].label, d.seen_classes);
        assert_eq!(grown.classes.len(), d.seen_classes + 4);
        assert_eq!(grown.classes[d.seen_classes], "pseudo-0");
    }

    /// Three tight groups in 8-d: seen classes 0 and 1 (labelled and unlabelled images), an
    /// unseen class 2, and one isolated outlier of class 2 far from everything.
    fn planted() -> (PssData, Array2<f32>) {
        let groups: [(usize, usize, usize); 3] = [(0, 0, 6), (1, 2, 6), (2, 4, 5)];
        let mut rows: Vec<(Vec<f32>, i64)> = Vec::new();
        for &(class, axis, n) in &groups {
            for j in 0..n {
                let mut v = vec![0.0f32; 8];
                v[axis] = 1.0;
                v[axis + 1] = 0.02 * j as f32;
                rows.push((v, class as i64));
            }
        }
        let mut outlier = vec![0.0f32; 8];
        outlier[6] = 1.0;
        outlier[7] = 1.0;
        outlier[0] = 0.3;
        rows.push((outlier, 2));
        // Labelled: the first 3 of classes 0 and 1; then their other 3; then class 2.
        let order: Vec<usize> =
            [0, 1, 2, 6, 7, 8, 3, 4, 5, 9, 10, 11, 12, 13, 14, 15, 16, 17].to_vec();
        let images: Vec<Sample> = order
            .iter()
            .map(|&i| Sample {
                path: PathBuf::from(format!("{i}.png")),
                label: rows[i].1 as usize,
                bbox: None,
            })
            .collect();
        let features = Array2::from_shape_fn((order.len(), 8), |(r, c)| rows[order[r]].0[c]);
        let data = PssData {
            gt_labels: order.iter().map(|&i| rows[i].1).collect(),
            labelled_classes: vec![0, 0, 0, 1, 1, 1],
            labelled: 6,
            unlabelled_seen: 6,
            seen_classes: 2,
            images,
            test: split(1, 1),
        };
        (data, features)
    }

    #[test]
    fn selection_offsets_cluster_labels_past_the_seen_classes_and_leaves_sparse_images_out() {
        let (data, features) = planted();
        let clustering = DensityPeakConfig::new(3).with_link_threshold(0.5);
        let s = select(&features, &data, &clustering, Some(0.5), None, None).unwrap();
        assert_eq!(s.link_threshold, 0.5);
        assert_eq!(&s.pred_labels[..6], &[0, 0, 0, 1, 1, 1]);
        assert_eq!(&s.masks[..6], &[0; 6]);
        // The outlier (last) is the least dense image: never selected.
        assert_eq!((s.pred_labels[17], s.masks[17]), (-1, 2));
        for i in 6..17 {
            if s.pred_labels[i] >= 0 {
                assert!(
                    s.pred_labels[i] >= 2,
                    "pseudo-labels start past the seen classes"
                );
                assert!(s.density[i] > s.threshold);
                assert_eq!(s.masks[i], 1, "newly selected");
            } else {
                assert!(s.density[i] <= s.threshold);
                assert_eq!(s.masks[i], 2);
            }
        }
        // A threshold of -1 keeps every unlabelled image, in three pure clusters.
        let all = select(
            &features,
            &data,
            &clustering,
            Some(0.5),
            Some(-1.0),
            Some(&s.pred_labels),
        )
        .unwrap();
        // Without a link threshold, the labelled images' median k-th-neighbour similarity:
        // their 3rd neighbours are the other two of their group and one more, all near 1.
        let derived = select(&features, &data, &clustering, None, None, None).unwrap();
        assert!(derived.link_threshold > 0.9, "{}", derived.link_threshold);
        assert!(all.pred_labels.iter().all(|&p| p >= 0));
        for i in 6..18 {
            let before = s.pred_labels[i] >= 0;
            assert_eq!(all.masks[i], if before { 0 } else { 1 });
        }
        let q = pseudo_label_quality(&all, &data).unwrap();
        assert_eq!((q.selected, q.selected_seen, q.selected_unseen), (12, 6, 6));
        // The outlier joins class 2's cluster or stands alone; the groups never mix.
        assert_eq!(q.pseudo_precision, 1.0);
        assert!(q.pseudo_recall > 0.7, "{q:?}");
    }

    #[test]
    fn the_feature_export_round_trips_and_names_a_short_file() {
        let dir = tempfile::tempdir().unwrap();
        let export = FeatureExport {
            paths: vec![PathBuf::from("a/b.png"), PathBuf::from("c.png")],
            features: Array2::from_shape_vec((2, 3), vec![0.5, -1.0, 2.0, 0.0, 1e-3, 7.0]).unwrap(),
            pred_labels: vec![3, -1],
            gt_labels: vec![10, 11],
            masks: vec![1, 2],
            density: vec![0.25, -0.5],
            thresholds: Thresholds {
                density: 0.75,
                link: 0.875,
            },
        };
        let out = dir.path().join("features");
        export.write(&out).unwrap();
        assert_eq!(FeatureExport::read(&out).unwrap(), export);
        // A file of another length is an error naming it.
        metron_core::write_npy(out.join("masks.npy"), &Array1::from(vec![1i64])).unwrap();
        let err = FeatureExport::read(&out).unwrap_err().to_string();
        assert!(
            err.contains("masks.npy") && err.contains("1 entries for 2"),
            "{err}"
        );
    }
}

#[cfg(test)]
mod config_tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: PssArgs,
    }

    fn resolve(argv: &[&str]) -> PssConfig {
        let args = Cli::parse_from(std::iter::once("pss").chain(argv.iter().copied())).args;
        let data = DataSource {
            dataset: "inaturalist-pss".into(),
            root: PathBuf::from("root"),
            csv: None,
        };
        PssConfig::resolve(&args, data, 948).unwrap()
    }

    /// `finetune_1head.py`: the same Adam at 1e-5 with weight decay 1e-3, 400 epochs; Hi-LANDER
    /// on a 10-NN graph.
    #[test]
    fn the_paper_preset_fine_tunes_as_finetune_1head() {
        let c = resolve(&["--preset", "paper"]);
        assert_eq!(c.initial.trainer.optimizer, OptimizerSetting::adam(4e-4));
        let f = &c.finetune.trainer;
        assert_eq!(f.optimizer, OptimizerSetting::adam(1e-3));
        assert_eq!((f.lr, f.epochs), (1e-5, 400));
        assert_eq!(
            f.schedule,
            LrSchedule::MultiStep {
                milestones: vec![40, 70],
                gamma: 0.3
            }
        );
        assert_eq!(c.clustering.k, 10);
        assert_eq!((c.link_threshold, c.select_density), (None, None));
        assert_eq!(c.initial.baseline, None, "the loop trains no baseline");
        assert!(c.control);
    }

    #[test]
    fn loop_flags_override_and_bad_fractions_are_refused() {
        let c = resolve(&[
            "--iterations",
            "4",
            "--finetune-epochs",
            "3",
            "--finetune-lr",
            "0.01",
            "--finetune-weight-decay",
            "0.5",
            "--knn",
            "5",
            "--link-threshold",
            "0.9",
            "--select-density",
            "0.8",
            "--seen-fraction",
            "0.25",
            "--labelled-fraction",
            "0.75",
            "--control",
            "false",
            "--seed",
            "3",
        ]);
        assert_eq!(c.iterations, 4);
        let f = &c.finetune.trainer;
        assert_eq!(
            (f.epochs, f.lr, f.optimizer.clone()),
            (3, 0.01, OptimizerSetting::adam(0.5))
        );
        assert_eq!(c.clustering.k, 5);
        assert_eq!((c.link_threshold, c.select_density), (Some(0.9), Some(0.8)));
        assert_eq!(
            c.partition,
            Partition {
                seen_fraction: 0.25,
                labelled_fraction: 0.75,
                seed: 3
            }
        );
        assert!(!c.control);
        let args = Cli::parse_from(["pss", "--seen-fraction", "1"]).args;
        let data = DataSource {
            dataset: "omniglot".into(),
            root: PathBuf::from("root"),
            csv: None,
        };
        let err = PssConfig::resolve(&args, data, 10).unwrap_err().to_string();
        assert!(err.contains("--seen-fraction"), "{err}");
    }
}
