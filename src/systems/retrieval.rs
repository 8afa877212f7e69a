//! What every retrieval system's recipe shares: reading a registry dataset or a CSV into
//! train / test (/ gallery) splits, starting or resuming a run directory, training through the
//! generic [`Trainer`], and the report that sets the trained network beside the untrained one
//! and raw pixels, with the run's curves, embeddings and retrieval grid.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use metron_backbones::{LoadMode, load_pytorch_any_layout};
use metron_datasets::{
    DatasetError, ImageBatch, ImageBatches, ImageSource, LoaderConfig, Pipeline, Registry, Split,
    check_counts,
};
use metron_samplers::BatchSampler;
use metron_train::{
    Bar, EmbeddingModel, Evaluated, PipelineSpec, RetrievalEvaluation, RunDir, TrainModel, Trainer,
    TrainerConfig, pixel_embeddings, write_curves, write_embeddings, write_retrieval_grid,
};

use super::SystemError;

/// The flags every retrieval system's example takes: where the data is, where the run goes,
/// the device and the output (flattened into each system's own flags).
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// A dataset of datasets.toml: omniglot (default; real images beside the checkout), cub,
    /// cars196, sop, inshop (evaluated query -> gallery).
    #[arg(long, conflicts_with = "csv")]
    pub dataset: Option<String>,
    /// A dataset of one's own as a CSV (`path,label,split` with splits `train` and `test`, or
    /// `is_query,is_gallery` columns; image paths relative to the CSV's folder), instead of
    /// --dataset: no registry entry needed.
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
    /// Dataset root (default: the registry entry's environment variable, then its root).
    #[arg(long)]
    pub root: Option<PathBuf>,
    /// The registry file (default: ./datasets.toml, else metron's own).
    #[arg(long)]
    pub registry: Option<PathBuf>,
    /// cpu, wgpu, tch, tch:cuda:N or cuda:N (backends other than cpu need their cargo feature).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Where the run writes its files (default: runs/SYSTEM-DATASET, numbered if taken).
    #[arg(long)]
    pub run_dir: Option<PathBuf>,
    /// Continue the interrupted run in this directory with its saved configuration.
    #[arg(long, value_name = "RUN_DIR", conflicts_with = "run_dir")]
    pub resume: Option<PathBuf>,
    /// Stop after this many epochs of this invocation (continue later with --resume).
    #[arg(long)]
    pub stop_after: Option<usize>,
    /// torchvision weights (.pth or .safetensors) to start the backbone from (ResNet; VGG-16
    /// for WGOL).
    #[arg(long)]
    pub pretrained: Option<PathBuf>,
    /// Leave undecodable images out (counted) instead of stopping.
    #[arg(long)]
    pub skip_corrupt: bool,
    /// Print the report as one JSON object on the last line.
    #[arg(long)]
    pub json: bool,
    /// No progress bars or per-epoch lines.
    #[arg(long)]
    pub quiet: bool,
}

impl RunArgs {
    /// The dataset's name: the flag, the CSV file's stem, or omniglot.
    pub fn dataset(&self) -> String {
        match (&self.dataset, &self.csv) {
            (Some(d), _) => d.clone(),
            (None, Some(csv)) => csv
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "csv".into()),
            (None, None) => "omniglot".into(),
        }
    }

    /// The given flags among these that fix part of a run's configuration (with `--resume`
    /// the stored configuration is the run's, so they would be silently ignored).
    pub fn configuration_flags(&self) -> Vec<&'static str> {
        [
            ("--dataset", self.dataset.is_some()),
            ("--csv", self.csv.is_some()),
            ("--root", self.root.is_some()),
            ("--run-dir", self.run_dir.is_some()),
            ("--pretrained", self.pretrained.is_some()),
            ("--skip-corrupt", self.skip_corrupt),
        ]
        .into_iter()
        .filter_map(|(name, given)| given.then_some(name))
        .collect()
    }
}

/// Prints how to continue a run stopped by `--stop-after`.
pub fn print_stopped(run_dir: &Path, epochs_done: usize) {
    println!(
        "stopped after epoch {epochs_done}; continue with --resume {}",
        run_dir.display()
    );
}

/// The dataset registry: `path`, else `./datasets.toml`, else metron's own.
pub fn load_registry(path: Option<&Path>) -> Result<Registry, DatasetError> {
    let path = match path {
        Some(p) => p.to_path_buf(),
        None if Path::new("datasets.toml").is_file() => PathBuf::from("datasets.toml"),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("datasets.toml"),
    };
    Registry::load(&path)
}

/// Where a run's images come from; part of its `config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSource {
    /// A registry name, or the CSV file's stem.
    pub dataset: String,
    /// The dataset's root folder (the CSV's folder for a CSV).
    pub root: PathBuf,
    /// The CSV the data came from, read directly rather than through the registry.
    #[serde(default)]
    pub csv: Option<PathBuf>,
}

impl DataSource {
    /// `--dataset NAME [--root DIR]` through the registry, or `--csv FILE`.
    pub fn resolve(
        registry: &Registry,
        dataset: &str,
        root: Option<&Path>,
        csv: Option<&Path>,
    ) -> Result<Self, SystemError> {
        let root = match csv {
            Some(csv) => csv.parent().unwrap_or(Path::new(".")).to_path_buf(),
            None => registry.root(dataset, root)?,
        };
        Ok(DataSource {
            dataset: dataset.to_string(),
            root,
            csv: csv.map(Path::to_path_buf),
        })
    }

    /// Reads the splits: `train`, and `test` (self-retrieval) or `query` + `gallery`
    /// (In-shop). Registry datasets are checked against their expected counts (a warning per
    /// mismatch, unless `quiet`).
    pub fn read(&self, registry: &Registry, quiet: bool) -> Result<RetrievalData, SystemError> {
        let data = match &self.csv {
            Some(file) => metron_datasets::read_csv(file)?,
            None => registry.read(&self.dataset, Some(&self.root))?,
        };
        if let (None, Ok(entry), false) = (&self.csv, registry.entry(&self.dataset), quiet) {
            for m in check_counts(&data, entry) {
                eprintln!("warning: {m}");
            }
        }
        let train = data.split("train")?.clone();
        let (test, gallery) = match data.split("query") {
            Ok(query) => (query.clone(), Some(data.split("gallery")?.clone())),
            Err(_) => (data.split("test")?.clone(), None),
        };
        Ok(RetrievalData {
            train,
            test,
            gallery,
        })
    }
}

/// The splits of a retrieval run.
#[derive(Debug, Clone)]
pub struct RetrievalData {
    /// The training images.
    pub train: Split,
    /// Evaluated by self-retrieval, or, with `gallery`, the queries searched in the gallery.
    pub test: Split,
    /// The gallery the queries are searched in (In-shop); `None` for self-retrieval.
    pub gallery: Option<Split>,
}

/// How a retrieval system is evaluated and what its run leaves behind; part of its
/// `config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetrievalSettings {
    /// The K of Recall@K.
    pub recall_ks: Vec<usize>,
    /// Images per batch when embedding the test (and gallery) split (default 128).
    pub eval_batch_size: usize,
    /// Skip undecodable images (counted) instead of stopping.
    pub skip_corrupt: bool,
    /// `Some(seed)`: also report NMI and AMI of a seeded k-means clustering of the test
    /// embeddings (Smooth-AP's tables); `None` skips the clustering.
    #[serde(default)]
    pub clustering_seed: Option<u64>,
    /// Queries and neighbours shown in `retrieval_grid.png`.
    pub grid_queries: usize,
    /// Neighbours shown per query in `retrieval_grid.png`.
    pub grid_k: usize,
}

impl RetrievalSettings {
    /// Recall at `ks`, batches of 128, 8 queries x 8 neighbours in the grid.
    pub fn new(recall_ks: Vec<usize>) -> Self {
        RetrievalSettings {
            recall_ks,
            eval_batch_size: 128,
            skip_corrupt: false,
            clustering_seed: None,
            grid_queries: 8,
            grid_k: 8,
        }
    }

    fn check(&self) -> Result<(), SystemError> {
        if self.recall_ks.is_empty() || self.recall_ks.contains(&0) {
            return Err(SystemError::Usage(
                "the K of Recall@K must be a non-empty list of positive numbers".into(),
            ));
        }
        if self.eval_batch_size == 0 {
            return Err(SystemError::Usage(
                "the evaluation batch size must be >= 1".into(),
            ));
        }
        Ok(())
    }
}

/// With `--resume` the stored configuration is the run's: any configuration flag would be
/// silently ignored, so it is refused. `given` are the flags given.
pub fn refuse_flags_on_resume(dir: &Path, given: &[&str]) -> Result<(), SystemError> {
    if given.is_empty() {
        return Ok(());
    }
    Err(SystemError::Usage(format!(
        "--resume continues {} with its stored configuration (config.json); {} would be \
         ignored: drop {} or start a new run",
        dir.display(),
        given.join(", "),
        if given.len() == 1 { "it" } else { "them" }
    )))
}

/// `runs/<system>-<dataset>`, numbered (`-2`, `-3`, ...) when taken.
pub fn free_run_dir(system: &str, dataset: &str) -> PathBuf {
    let base = PathBuf::from("runs").join(format!("{system}-{dataset}"));
    (1..)
        .map(|i| {
            if i == 1 {
                base.clone()
            } else {
                PathBuf::from(format!("{}-{i}", base.display()))
            }
        })
        .find(|p| !p.join("config.json").exists())
        .expect("an unused run directory name")
}

/// torchvision ResNet weights into the backbone, keys renamed by the backbone table's map:
/// every backbone tensor must come from the file, and only the ImageNet classifier (`fc.`, or
/// `last_linear.` in Cadene's `pretrainedmodels` layout) may go unused. Nested (`state_dict`, `model`) and DataParallel (`module.`) layouts are
/// accepted.
pub fn load_pretrained_resnet(
    backbone: metron_backbones::ResNet,
    entry: &metron_backbones::BackboneEntry,
    path: &Path,
) -> Result<(metron_backbones::ResNet, metron_backbones::LoadReport), SystemError> {
    let keys = (entry.key_map)();
    let keys: Vec<(&str, &str)> = keys.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    load_pytorch_any_layout(
        backbone,
        path,
        &keys,
        // `last_linear.`: the classifier of Cadene's `pretrainedmodels` ResNets (Smooth-AP's).
        LoadMode::StrictIgnoringUnused(&["fc.", "last_linear."]),
    )
    .map_err(|source| SystemError::Pretrained {
        path: path.to_path_buf(),
        source,
    })
}

/// Recall@K (and the other retrieval metrics) of the embeddings a run compares.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RetrievalReport {
    /// Metrics of the trained network (its last epoch), `metric name -> value`.
    pub trained: BTreeMap<String, f64>,
    /// Metrics of the network before training (empty when it was not evaluated).
    pub untrained: BTreeMap<String, f64>,
    /// Metrics of the raw test-time pixels as embeddings, the baseline.
    pub pixels: BTreeMap<String, f64>,
    /// `(epoch, Recall@1)` of the best evaluated epoch.
    pub best_epoch: Option<(usize, f64)>,
    /// What a reader needs to compare the numbers (backbone, sizes, augmentation, ...).
    pub setup: serde_json::Value,
    /// The run directory holding the checkpoints, curves and embeddings.
    pub run_dir: PathBuf,
    /// Wall-clock time of this invocation, data loading to report, in seconds.
    pub seconds: f64,
}

/// What a retrieval run ended with.
#[derive(Debug)]
pub enum RetrievalOutcome {
    /// Every epoch trained; the report (also written to `report.json`).
    Finished(Box<RetrievalReport>),
    /// Stopped early by `--stop-after`; resume from the run directory.
    Stopped {
        /// The run directory to pass to `--resume`.
        run_dir: PathBuf,
        /// Epochs finished so far, over all invocations.
        epochs_done: usize,
    },
}

/// Everything [`train_and_report`] needs, already resolved by a system's recipe.
pub struct RetrievalJob<'a, M> {
    /// The run directory, created or opened for a resume.
    pub run: RunDir,
    /// How to train.
    pub trainer: TrainerConfig,
    /// Freshly initialised (pretrained weights loaded); a checkpoint in `run` replaces it.
    pub model: M,
    /// Draws each epoch's training batches.
    pub sampler: &'a dyn BatchSampler,
    /// The train, test (and gallery) splits.
    pub data: &'a RetrievalData,
    /// The training transform (augmentation and normalisation).
    pub train_pipeline: Pipeline,
    /// The deterministic test-time transform, also saved in the checkpoints.
    pub test_pipeline: PipelineSpec,
    /// Recall@K, evaluation batch size and the retrieval grid.
    pub settings: &'a RetrievalSettings,
    /// What a reader needs to compare the numbers (backbone, sizes, augmentation, ...).
    pub setup: serde_json::Value,
    /// Hide progress bars and per-epoch lines.
    pub quiet: bool,
    /// Stop (after checkpointing) once this invocation has trained this many epochs.
    pub stop_after: Option<usize>,
    /// When the invocation started, for the report's `seconds`.
    pub started: Instant,
}

impl<M> std::fmt::Debug for RetrievalJob<'_, M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RetrievalJob")
            .field("run", &self.run)
            .field("trainer", &self.trainer)
            .field("setup", &self.setup)
            .finish_non_exhaustive()
    }
}

fn samples_of(split: &Split) -> Arc<dyn ImageSource> {
    Arc::new(split.samples.clone())
}

/// Trains `job.model` on the training split with `job.sampler`'s batches, evaluates retrieval
/// on the test split (or query -> gallery), compares with raw pixels, and writes the run's
/// report, curves, embeddings and retrieval grid.
pub fn train_and_report<M>(
    job: RetrievalJob<'_, M>,
    device: &Device,
) -> Result<RetrievalOutcome, SystemError>
where
    M: TrainModel<Batch = ImageBatch> + EmbeddingModel,
{
    let settings = job.settings;
    settings.check()?;
    let loader = LoaderConfig {
        prefetch: job.trainer.prefetch,
        skip_corrupt: settings.skip_corrupt,
    };
    let test_pipeline = Arc::new(job.test_pipeline.pipeline());
    let evaluation = RetrievalEvaluation {
        query: samples_of(&job.data.test),
        gallery: job.data.gallery.as_ref().map(samples_of),
        pipeline: test_pipeline.clone(),
        ks: settings.recall_ks.clone(),
        batch_size: settings.eval_batch_size,
        loader,
        clustering_seed: settings.clustering_seed,
    };
    let train = Arc::new(ImageBatches::new(
        samples_of(&job.data.train),
        Arc::new(job.train_pipeline),
        settings.skip_corrupt,
    ));
    let mut trainer = Trainer::new(job.trainer, job.run.clone());
    trainer.quiet = job.quiet;
    trainer.stop_after = job.stop_after;
    trainer.eval_pipeline = Some(job.test_pipeline.clone());
    let outcome = trainer.fit(job.model, job.sampler, train, &evaluation, device)?;
    let run = &job.run;
    if !outcome.finished {
        return Ok(RetrievalOutcome::Stopped {
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

    let pixels_of = |source: Arc<dyn ImageSource>| {
        let bar = Bar::new(source.len(), "raw pixels", job.quiet);
        let out = pixel_embeddings(source, test_pipeline.clone(), 256, loader, &bar);
        bar.finish();
        out
    };
    let pixel_embedded = Evaluated {
        query: pixels_of(evaluation.query.clone())?,
        gallery: evaluation.gallery.clone().map(pixels_of).transpose()?,
    };
    let pixels = evaluation.metrics_of(&pixel_embedded, job.quiet)?;

    // A resumed finished run evaluated nothing in this invocation: embed again.
    let embedded = match outcome.last_evaluation.and_then(|e| e.embeddings) {
        Some(e) => e,
        None => evaluation.embed(&outcome.model, device, job.quiet)?,
    };
    write_embeddings(&run.embeddings_path(), &run.labels_path(), &embedded.query)?;
    write_curves(&run.curves_path(), history)?;
    write_retrieval_grid(
        &run.grid_path(),
        (&embedded.query, &job.data.test.samples),
        embedded
            .gallery
            .as_ref()
            .zip(job.data.gallery.as_ref())
            .map(|(e, g)| (e, g.samples.as_slice())),
        settings.grid_queries,
        settings.grid_k,
    )?;
    let report = RetrievalReport {
        trained,
        untrained,
        pixels,
        best_epoch: outcome.state.best,
        setup: job.setup,
        run_dir: run.root().to_path_buf(),
        seconds: job.started.elapsed().as_secs_f64(),
    };
    run.write_json(&run.report_path(), &report)?;
    Ok(RetrievalOutcome::Finished(Box::new(report)))
}

/// The report as a table: one row per embedding (`trained` named `trained_name`, then
/// `extra` rows such as a baseline of the system's own), one column per Recall@K, and an NMI
/// column when the trained metrics have one.
pub fn format_table(
    report: &RetrievalReport,
    ks: &[usize],
    trained_name: &str,
    extra: &[(&str, &BTreeMap<String, f64>)],
) -> String {
    // NMI when the run clustered its embeddings (Smooth-AP's tables).
    let nmi = report.trained.contains_key("nmi");
    let mut out = format!("{:<24}", "Recall@K (%)");
    for k in ks {
        out.push_str(&format!("{:>8}", format!("R@{k}")));
    }
    if nmi {
        out.push_str(&format!("{:>8}", "NMI"));
    }
    out.push('\n');
    for (name, values) in [
        (trained_name, &report.trained),
        ("untrained network", &report.untrained),
        ("raw pixels", &report.pixels),
    ]
    .into_iter()
    .chain(extra.iter().copied())
    {
        out.push_str(&format!("{name:<24}"));
        for k in ks {
            match values.get(&format!("recall_at_{k}")) {
                Some(v) => out.push_str(&format!("{:>8.2}", 100.0 * v)),
                None => out.push_str(&format!("{:>8}", "-")),
            }
        }
        if nmi {
            match values.get("nmi") {
                Some(v) => out.push_str(&format!("{:>8.2}", 100.0 * v)),
                None => out.push_str(&format!("{:>8}", "-")),
            }
        }
        out.push('\n');
    }
    out
}

/// The K of the `recall_at_K` entries of `metrics`, ascending.
pub fn recall_ks(metrics: &BTreeMap<String, f64>) -> Vec<usize> {
    let mut ks: Vec<usize> = metrics
        .keys()
        .filter_map(|k| k.strip_prefix("recall_at_")?.parse().ok())
        .collect();
    ks.sort_unstable();
    ks
}

/// The JSON object `--json` prints: `trained`, `untrained`, `pixels` (each with
/// `recall_at_K`), plus the setup and run directory.
pub fn report_json(report: &RetrievalReport) -> serde_json::Value {
    serde_json::to_value(report).unwrap_or_else(|_| serde_json::json!({}))
}

/// Where to look for the files of a finished run.
pub fn describe_outputs(run_dir: &Path) -> String {
    format!(
        "run directory {}: report.json, metrics.jsonl, curves.png, retrieval_grid.png, \
         embeddings.npy, checkpoints/{{last,best}}.ckpt",
        run_dir.display()
    )
}
