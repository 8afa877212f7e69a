//! The training loop: sampler -> seeded decode + transforms -> model loss -> optimizer (SAM
//! optional) -> per-epoch evaluation -> atomic checkpoint.
//!
//! Written here rather than on burn-train's `Learner` because three things metron promises do
//! not fit it: SAM needs two forward/backward passes per step (the Learner's `TrainStep` gives
//! one), a resumed run must see exactly the batches and augmentations of an uninterrupted one
//! (our samplers and loader are pure functions of seed and epoch; the Learner's data loader
//! keeps its own shuffling state), and checkpoints must be written atomically as one file.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use burn::optim::{
    AdamConfig, GradientsParams, ModuleOptimizer, SgdConfig, momentum::MomentumConfig,
};
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use metron_datasets::{LoaderConfig, Pipeline, Sample, Split};
use metron_metrics::{RetrievalConfig, evaluate_retrieval};
use metron_optim::{MultiStep, SamConfig};
use metron_samplers::{BatchSampler, MPerClassSampler};

use crate::checkpoint::{read_checkpoint, save_checkpoint};
use crate::embed::{EmbeddedSplit, batch_tensor, embed_samples};
use crate::{Bar, Result, RunDir, TrainError, TrainModel};

/// The optimizer the loop steps with. Every setting is explicit and defaults to PyTorch's
/// (`torch.optim.Adam` / `torch.optim.SGD`), where the published recipes come from: Burn's own
/// defaults differ (Adam epsilon 1e-5 against 1e-8, momentum dampening 0.1 against 0).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum OptimizerSetting {
    /// Adam with L2 weight decay added to the gradient (`torch.optim.Adam`, not AdamW).
    Adam {
        weight_decay: f64,
        #[serde(default = "torch_adam_betas")]
        betas: [f64; 2],
        #[serde(default = "torch_adam_epsilon")]
        epsilon: f64,
    },
    /// AdamW, decay decoupled from the gradient (`torch.optim.AdamW`: the parameter shrinks by
    /// `lr * weight_decay` of itself before the Adam step).
    AdamW {
        weight_decay: f64,
        betas: [f64; 2],
        epsilon: f64,
    },
    /// SGD with momentum (`torch.optim.SGD`).
    Sgd {
        momentum: f64,
        weight_decay: f64,
        #[serde(default)]
        dampening: f64,
        #[serde(default)]
        nesterov: bool,
    },
}

fn torch_adam_betas() -> [f64; 2] {
    [0.9, 0.999]
}

fn torch_adam_epsilon() -> f64 {
    1e-8
}

impl OptimizerSetting {
    /// `torch.optim.Adam(weight_decay=weight_decay)`.
    pub fn adam(weight_decay: f64) -> Self {
        OptimizerSetting::Adam {
            weight_decay,
            betas: torch_adam_betas(),
            epsilon: torch_adam_epsilon(),
        }
    }

    /// `torch.optim.AdamW(weight_decay=weight_decay)` (PyTorch's default decay is 0.01).
    pub fn adamw(weight_decay: f64) -> Self {
        OptimizerSetting::AdamW {
            weight_decay,
            betas: torch_adam_betas(),
            epsilon: torch_adam_epsilon(),
        }
    }

    /// `torch.optim.SGD(momentum=momentum, weight_decay=weight_decay)`: no dampening, no
    /// Nesterov.
    pub fn sgd(momentum: f64, weight_decay: f64) -> Self {
        OptimizerSetting::Sgd {
            momentum,
            weight_decay,
            dampening: 0.0,
            nesterov: false,
        }
    }

    /// The Burn optimizer with exactly these settings.
    pub fn init(&self) -> ModuleOptimizer {
        let decay =
            |wd: f64| (wd > 0.0).then(|| burn::optim::decay::WeightDecayConfig::new(wd as f32));
        match *self {
            OptimizerSetting::Adam {
                weight_decay,
                betas,
                epsilon,
            } => AdamConfig::new()
                .with_beta_1(betas[0] as f32)
                .with_beta_2(betas[1] as f32)
                .with_epsilon(epsilon as f32)
                .with_weight_decay(decay(weight_decay))
                .init(),
            OptimizerSetting::AdamW {
                weight_decay,
                betas,
                epsilon,
            } => burn::optim::AdamWConfig::new()
                .with_beta_1(betas[0] as f32)
                .with_beta_2(betas[1] as f32)
                .with_epsilon(epsilon as f32)
                .with_weight_decay(weight_decay as f32)
                .init(),
            OptimizerSetting::Sgd {
                momentum,
                weight_decay,
                dampening,
                nesterov,
            } => SgdConfig::new()
                .with_momentum((momentum > 0.0).then(|| {
                    MomentumConfig::new()
                        .with_momentum(momentum)
                        .with_dampening(dampening)
                        .with_nesterov(nesterov)
                }))
                .with_weight_decay(decay(weight_decay))
                .init(),
        }
    }
}

/// How a run trains. Serialised into the run's `config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainerConfig {
    pub epochs: usize,
    pub batch_size: usize,
    /// Images per class in a batch (CGD's M-per-class sampler).
    pub samples_per_class: usize,
    pub optimizer: OptimizerSetting,
    pub lr: f64,
    /// Epochs (0-based) at which the learning rate is multiplied by `gamma`.
    pub milestones: Vec<usize>,
    pub gamma: f64,
    /// SAM's rho; `None` trains without SAM.
    pub sam_rho: Option<f64>,
    /// Let SAM's second (perturbed) pass update BatchNorm running statistics too. Off by
    /// default, as davda54/sam recommends: each batch then enters the statistics once.
    #[serde(default)]
    pub sam_second_pass_updates_batch_norm: bool,
    /// One seed for initialisation, sampling and augmentation.
    pub seed: u64,
    /// The K of Recall@K reported every epoch.
    pub recall_ks: Vec<usize>,
    pub eval_batch_size: usize,
    /// Evaluate the network before the first step (the "untrained" baseline).
    pub evaluate_untrained: bool,
    /// Skip undecodable images (counted per epoch) instead of stopping.
    pub skip_corrupt: bool,
    /// Batches decoded ahead of the model.
    pub prefetch: usize,
    /// Queries and neighbours shown in `retrieval_grid.png`.
    pub grid_queries: usize,
    pub grid_k: usize,
}

impl TrainerConfig {
    /// CGD's training recipe (section 4.4 of the seed spec) for `epochs` epochs.
    pub fn cgd(epochs: usize) -> Self {
        TrainerConfig {
            epochs,
            batch_size: 128,
            samples_per_class: 4,
            optimizer: OptimizerSetting::adam(0.0),
            lr: 1e-4,
            milestones: vec![epochs * 6 / 10, epochs * 8 / 10],
            gamma: 0.1,
            sam_rho: None,
            sam_second_pass_updates_batch_norm: false,
            seed: 0,
            recall_ks: vec![1, 2, 4, 8],
            eval_batch_size: 128,
            evaluate_untrained: true,
            skip_corrupt: false,
            prefetch: 2,
            grid_queries: 8,
            grid_k: 8,
        }
    }

    fn check(&self) -> Result<()> {
        let bad = |what: &str| Err(TrainError::Config(what.to_string()));
        if self.epochs == 0 {
            return bad("epochs must be at least 1");
        }
        if self.eval_batch_size == 0 {
            return bad("eval_batch_size must be at least 1");
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad("lr must be a positive number");
        }
        if self.recall_ks.is_empty() || self.recall_ks.contains(&0) {
            return bad("recall_ks must be a non-empty list of positive K");
        }
        match self.optimizer {
            OptimizerSetting::Adam { betas, epsilon, .. }
            | OptimizerSetting::AdamW { betas, epsilon, .. } => {
                if !betas.iter().all(|b| (0.0..1.0).contains(b)) {
                    return bad("Adam betas must lie in [0, 1)");
                }
                if !(epsilon.is_finite() && epsilon > 0.0) {
                    return bad("Adam epsilon must be positive");
                }
            }
            OptimizerSetting::Sgd {
                momentum,
                dampening,
                nesterov,
                ..
            } => {
                if nesterov && (momentum <= 0.0 || dampening != 0.0) {
                    return bad("Nesterov momentum needs a momentum > 0 and zero dampening");
                }
            }
        }
        if let Some(rho) = self.sam_rho
            && !(rho.is_finite() && rho > 0.0)
        {
            return bad("sam_rho must be positive");
        }
        Ok(())
    }
}

/// What one epoch did; one line of `metrics.jsonl`. Epoch 0 is the untrained network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub lr: f64,
    /// Mean training loss over the epoch's steps (`None` for epoch 0).
    pub loss: Option<f64>,
    pub loss_parts: BTreeMap<String, f64>,
    /// `recall_at_K` and the other retrieval metrics of the test split.
    pub test: BTreeMap<String, f64>,
    /// Mean squared distance between test embeddings (unit vectors: 2 when spread out, 0 when
    /// collapsed onto one point).
    pub embedding_spread: f64,
    pub images_skipped: usize,
    pub seconds: f64,
}

/// The run state saved with each checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    pub epochs_done: usize,
    pub history: Vec<EpochRecord>,
    /// `(epoch, Recall@1)` of the best epoch so far.
    pub best: Option<(usize, f64)>,
    /// What rebuilds the model ([`TrainModel::architecture`]).
    pub architecture: serde_json::Value,
    /// The test-time preprocessing, so a checkpoint alone can embed new images.
    pub eval_pipeline: PipelineSpec,
}

/// A serialisable description of a deterministic test-time pipeline: resize to `size`, then
/// normalise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineSpec {
    pub size: [u32; 2],
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl PipelineSpec {
    pub fn pipeline(&self) -> Pipeline {
        Pipeline::new(vec![metron_datasets::Transform::Resize { size: self.size }])
            .with_normalization(self.mean, self.std)
    }
}

/// The data of a run.
#[derive(Debug, Clone)]
pub struct TrainData {
    pub train: Split,
    /// Evaluated by self-retrieval (each image against all others), or, with `gallery`, the
    /// queries searched in the gallery (In-shop).
    pub test: Split,
    pub gallery: Option<Split>,
    pub train_pipeline: Pipeline,
    pub test_pipeline: PipelineSpec,
}

/// What [`Trainer::fit`] returns.
#[derive(Debug)]
pub struct TrainOutcome<M> {
    pub model: M,
    pub state: TrainState,
    /// The test embeddings of `model` (the last epoch's).
    pub test_embeddings: Option<Evaluated>,
    /// `false` when the run stopped early on request ([`Trainer::stop_after`]).
    pub finished: bool,
}

/// The embeddings one evaluation computed.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluated {
    pub query: EmbeddedSplit,
    /// `None` for self-retrieval.
    pub gallery: Option<EmbeddedSplit>,
}

/// What is embedded for an evaluation, and how.
struct EvalSet {
    query: Arc<Vec<Sample>>,
    gallery: Option<Arc<Vec<Sample>>>,
    pipeline: Arc<Pipeline>,
    loader: LoaderConfig,
}

/// Runs a [`TrainerConfig`] in a [`RunDir`].
#[derive(Debug)]
pub struct Trainer {
    pub config: TrainerConfig,
    pub run: RunDir,
    /// Hide progress bars.
    pub quiet: bool,
    /// Stop (after checkpointing) once this invocation has trained this many epochs: a
    /// time-boxed job continues later with a resume.
    pub stop_after: Option<usize>,
}

enum StepRule {
    Plain(ModuleOptimizer),
    Sam(metron_optim::Sam),
}

impl StepRule {
    fn optimizer(&self) -> &ModuleOptimizer {
        match self {
            StepRule::Plain(o) => o,
            StepRule::Sam(s) => s.base(),
        }
    }
}

fn scalar(t: &burn::tensor::Tensor<1>) -> f64 {
    t.clone().into_scalar::<f64>()
}

impl Trainer {
    pub fn new(config: TrainerConfig, run: RunDir) -> Self {
        Trainer {
            config,
            run,
            quiet: false,
            stop_after: None,
        }
    }

    /// Trains `model` (freshly initialised; replaced by the checkpoint's weights when the run
    /// directory has one, which resumes the run after its last finished epoch).
    pub fn fit<M: TrainModel>(
        &self,
        model: M,
        data: &TrainData,
        device: &Device,
    ) -> Result<TrainOutcome<M>> {
        let cfg = &self.config;
        let train_labels: Vec<usize> = data.train.samples.iter().map(|s| s.label).collect();
        let sampler = MPerClassSampler::new(
            &train_labels,
            cfg.batch_size,
            cfg.samples_per_class,
            cfg.seed,
        )?;
        self.fit_with_sampler(model, &sampler, data, device)
    }

    /// [`Trainer::fit`] with the batches of any [`BatchSampler`] over `data.train` (its
    /// indices are positions in `data.train.samples`); `batch_size` and `samples_per_class`
    /// of the config are then the sampler's business. The sampler must be a pure function of
    /// (its seed, epoch), as metron's are, for a resumed run to equal an uninterrupted one. An
    /// index past the data is the loader's error, naming it.
    pub fn fit_with_sampler<M: TrainModel>(
        &self,
        mut model: M,
        sampler: &dyn BatchSampler,
        data: &TrainData,
        device: &Device,
    ) -> Result<TrainOutcome<M>> {
        let cfg = &self.config;
        cfg.check()?;
        let schedule = MultiStep::new(cfg.lr, cfg.milestones.clone(), cfg.gamma);
        let mut optimizer = cfg.optimizer.init();

        let last = self.run.last_checkpoint();
        let mut state = if last.is_file() {
            let ck = read_checkpoint(&last)?;
            let state: TrainState = ck.state(&last)?;
            if state.architecture != model.architecture() {
                return Err(TrainError::run_file(
                    &last,
                    "the checkpoint was trained with another architecture than the one configured",
                ));
            }
            model = ck.load_model(model, &last)?;
            optimizer = ck.load_optimizer(optimizer, &last)?;
            state
        } else {
            TrainState {
                epochs_done: 0,
                history: Vec::new(),
                best: None,
                architecture: model.architecture(),
                eval_pipeline: data.test_pipeline.clone(),
            }
        };
        let mut rule = match cfg.sam_rho {
            Some(rho) => StepRule::Sam(SamConfig::sam(rho).init(optimizer)),
            None => StepRule::Plain(optimizer),
        };
        let train_samples = Arc::new(data.train.samples.clone());
        let train_pipeline = Arc::new(data.train_pipeline.clone());
        let loader = LoaderConfig {
            prefetch: cfg.prefetch,
            skip_corrupt: cfg.skip_corrupt,
        };
        let eval_set = EvalSet {
            query: Arc::new(data.test.samples.clone()),
            gallery: data.gallery.as_ref().map(|g| Arc::new(g.samples.clone())),
            pipeline: Arc::new(data.test_pipeline.pipeline()),
            loader,
        };

        let mut test_embeddings = None;
        if state.epochs_done == 0 && state.history.is_empty() && cfg.evaluate_untrained {
            let t = Instant::now();
            let (record, emb) = self.evaluate(&model, &eval_set, device, 0, schedule.lr(0))?;
            let record = EpochRecord {
                seconds: t.elapsed().as_secs_f64(),
                ..record
            };
            self.report_epoch(&record);
            state.history.push(record);
            test_embeddings = Some(emb);
        }
        self.run.write_metrics(&state.history)?;

        let mut trained_now = 0;
        while state.epochs_done < cfg.epochs {
            if self.stop_after.is_some_and(|n| trained_now >= n) {
                return Ok(TrainOutcome {
                    model,
                    state,
                    test_embeddings,
                    finished: false,
                });
            }
            let epoch = state.epochs_done; // 0-based index of the epoch being trained
            let lr = schedule.lr(epoch);
            let t = Instant::now();
            let batches = sampler.epoch(epoch as u64);
            let total_images: usize = batches.iter().map(Vec::len).sum();
            let bar = Bar::new(
                total_images,
                &format!("epoch {}/{}", epoch + 1, cfg.epochs),
                self.quiet,
            );
            let mut loss_sum = 0.0;
            let mut part_sums: BTreeMap<String, f64> = BTreeMap::new();
            let mut steps = 0usize;
            let mut skipped = 0usize;
            let mut arrived = 0usize;
            let loader_it = metron_datasets::BatchLoader::new(
                train_samples.clone(),
                batches,
                train_pipeline.clone(),
                cfg.seed,
                epoch as u64,
                loader,
            );
            for batch in loader_it {
                let batch = batch?;
                skipped += batch.skipped.len();
                arrived += batch.len() + batch.skipped.len();
                bar.inc(batch.len() + batch.skipped.len());
                if batch.len() < 2 {
                    continue;
                }
                let labels = batch.labels.clone();
                let images = batch_tensor(batch, device);
                // Both of SAM's passes are checked: a NaN at w + e(w) would reach the weights.
                let check_finite = |value: f64| {
                    if value.is_finite() {
                        return Ok(());
                    }
                    bar.finish();
                    Err(TrainError::NonFiniteLoss {
                        epoch: epoch + 1,
                        step: steps + 1,
                        value,
                        checkpoint: last.is_file().then(|| last.clone()),
                    })
                };
                let out = model.loss(images.clone(), &labels)?;
                let value = scalar(&out.total);
                check_finite(value)?;
                for (name, part) in &out.parts {
                    *part_sums.entry((*name).to_string()).or_default() += scalar(part);
                }
                let grads = GradientsParams::from_grads(out.total.backward(), &model);
                model = match &mut rule {
                    StepRule::Plain(o) => o.step(lr, model, grads),
                    StepRule::Sam(sam) => {
                        let (perturbed, undo) = sam.ascend(model, &grads);
                        let second = if cfg.sam_second_pass_updates_batch_norm {
                            perturbed.loss(images, &labels)?
                        } else {
                            metron_ops::batch_norm::without_running_stat_updates(|| {
                                perturbed.loss(images, &labels)
                            })?
                        }
                        .total;
                        check_finite(scalar(&second))?;
                        let grads = GradientsParams::from_grads(second.backward(), &perturbed);
                        sam.descend(lr, perturbed, undo, grads)
                    }
                };
                loss_sum += value;
                steps += 1;
                bar.set_message(format!("loss {:.4}", loss_sum / steps as f64));
            }
            bar.finish();
            if arrived != total_images {
                return Err(TrainError::IncompleteData {
                    what: format!("training epoch {}", epoch + 1),
                    got: arrived,
                    expected: total_images,
                });
            }
            let (mut record, emb) = self.evaluate(&model, &eval_set, device, epoch + 1, lr)?;
            let per_step = |s: f64| s / steps.max(1) as f64;
            record.loss = Some(per_step(loss_sum));
            record.loss_parts = part_sums
                .into_iter()
                .map(|(k, v)| (k, per_step(v)))
                .collect();
            record.images_skipped += skipped;
            record.seconds = t.elapsed().as_secs_f64();
            self.report_epoch(&record);
            let r1 = record.test.get("recall_at_1").copied().unwrap_or(0.0);
            state.history.push(record);
            state.epochs_done = epoch + 1;
            let improved = state.best.is_none_or(|(_, b)| r1 > b);
            if improved {
                state.best = Some((epoch + 1, r1));
            }
            save_checkpoint(&last, &state, &model, Some(rule.optimizer()))?;
            if improved {
                save_checkpoint(&self.run.best_checkpoint(), &state, &model, None)?;
            }
            self.run.write_metrics(&state.history)?;
            test_embeddings = Some(emb);
            trained_now += 1;
        }
        Ok(TrainOutcome {
            model,
            state,
            test_embeddings,
            finished: true,
        })
    }

    fn evaluate<M: TrainModel>(
        &self,
        model: &M,
        set: &EvalSet,
        device: &Device,
        epoch: usize,
        lr: f64,
    ) -> Result<(EpochRecord, Evaluated)> {
        let embed = |samples: &Arc<Vec<Sample>>, what: &str| {
            let bar = Bar::new(samples.len(), what, self.quiet);
            let out = embed_samples(
                model,
                samples.clone(),
                set.pipeline.clone(),
                self.config.eval_batch_size,
                set.loader,
                device,
                &bar,
            );
            bar.finish();
            out
        };
        let query = embed(&set.query, "embedding test split")?;
        let gallery = match &set.gallery {
            Some(g) => Some(embed(g, "embedding gallery")?),
            None => None,
        };
        let bar = Bar::new(query.labels.len(), "retrieval (kNN)", self.quiet);
        let test = evaluate_embeddings(&query, gallery.as_ref(), &self.config.recall_ks, &bar)?;
        bar.finish();
        let skipped = query.skipped.len() + gallery.as_ref().map_or(0, |g| g.skipped.len());
        Ok((
            EpochRecord {
                epoch,
                lr,
                loss: None,
                loss_parts: BTreeMap::new(),
                test,
                embedding_spread: embedding_spread(&query.embeddings),
                images_skipped: skipped,
                seconds: 0.0,
            },
            Evaluated { query, gallery },
        ))
    }

    fn report_epoch(&self, r: &EpochRecord) {
        if self.quiet {
            return;
        }
        let recalls: Vec<String> = self
            .config
            .recall_ks
            .iter()
            .filter_map(|k| {
                r.test
                    .get(&format!("recall_at_{k}"))
                    .map(|v| format!("R@{k} {:.2}", 100.0 * v))
            })
            .collect();
        let loss = r
            .loss
            .map(|l| format!("loss {l:.4}  "))
            .unwrap_or_else(|| "untrained  ".into());
        eprintln!(
            "epoch {:>3}  {loss}{}  spread {:.3}  ({:.1} s)",
            r.epoch,
            recalls.join("  "),
            r.embedding_spread,
            r.seconds
        );
        // Embeddings may legitimately fill only a narrow cone (ReLU features are non-negative),
        // so only a spread at rounding level counts as a collapse onto one point.
        if r.epoch > 0 && r.embedding_spread < COLLAPSED_SPREAD {
            eprintln!(
                "warning: the test embeddings have collapsed onto one point (mean squared \
                 distance {:.2e}): the loss is likely stuck at its margin; try a lower learning rate",
                r.embedding_spread
            );
        }
    }
}

/// Below this mean squared distance, unit embeddings are one point up to rounding.
const COLLAPSED_SPREAD: f64 = 1e-6;

/// Retrieval metrics (cosine similarity) of `query` searched in `gallery`, or, without a
/// gallery, of each query among the other queries (its own row excluded), as
/// `metric name -> value`.
pub fn evaluate_embeddings(
    query: &EmbeddedSplit,
    gallery: Option<&EmbeddedSplit>,
    ks: &[usize],
    progress: &dyn metron_metrics::Progress,
) -> Result<BTreeMap<String, f64>> {
    let config = RetrievalConfig {
        ks: ks.to_vec(),
        clustering_seed: None,
        ..RetrievalConfig::default()
    };
    let report = evaluate_retrieval(
        query.embeddings.view(),
        &query.labels,
        gallery.map(|g| (g.embeddings.view(), g.labels.as_slice())),
        &config,
        progress,
    )?;
    Ok(report.metrics().into_iter().collect())
}

/// Mean squared Euclidean distance over all pairs of L2-normalised rows, from the mean row:
/// `2 - 2 |mean|^2` scaled to exclude the zero self-distances. O(N D), no N x N matrix.
pub fn embedding_spread(e: &ndarray::Array2<f32>) -> f64 {
    let n = e.nrows();
    if n < 2 {
        return 0.0;
    }
    let mut mean = vec![0.0f64; e.ncols()];
    for row in e.rows() {
        let norm = row
            .iter()
            .map(|&v| f64::from(v) * f64::from(v))
            .sum::<f64>()
            .sqrt()
            .max(1e-12);
        for (m, &v) in mean.iter_mut().zip(row.iter()) {
            *m += f64::from(v) / norm;
        }
    }
    let nf = n as f64;
    let mean_sq: f64 = mean.iter().map(|m| (m / nf) * (m / nf)).sum();
    // sum_{i != j} |x_i - x_j|^2 = 2 n^2 (1 - |mean|^2) for unit rows.
    2.0 * nf * nf * (1.0 - mean_sq) / (nf * (nf - 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use metron_metrics::NoProgress;
    use ndarray::array;

    #[test]
    fn spread_matches_the_pairwise_mean() {
        let e = array![[1.0f32, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.6, 0.8]];
        let n = e.nrows();
        let mut total = 0.0;
        for i in 0..n {
            for j in 0..n {
                if i != j {
                    total += e
                        .row(i)
                        .iter()
                        .zip(e.row(j).iter())
                        .map(|(a, b)| f64::from(a - b).powi(2))
                        .sum::<f64>();
                }
            }
        }
        let want = total / (n * (n - 1)) as f64;
        assert!((embedding_spread(&e) - want).abs() < 1e-6);
        let collapsed = array![[0.6f32, 0.8], [0.6, 0.8], [0.6, 0.8]];
        assert!(embedding_spread(&collapsed).abs() < 1e-9);
    }

    fn split_of(rows: &[[f32; 2]], labels: &[i64]) -> EmbeddedSplit {
        EmbeddedSplit {
            embeddings: ndarray::Array2::from_shape_fn((rows.len(), 2), |(i, j)| rows[i][j]),
            labels: labels.to_vec(),
            indices: (0..rows.len()).collect(),
            skipped: vec![],
        }
    }

    #[test]
    fn query_gallery_evaluation_searches_the_gallery_only() {
        // q0 -> g1 (cos 0.995, same label), q1 -> g0 (cos 0.8, other label) then g1.
        let q = split_of(&[[1.0, 0.0], [0.0, 1.0]], &[0, 0]);
        let g = split_of(&[[0.6, 0.8], [1.0, 0.1]], &[1, 0]);
        let m = evaluate_embeddings(&q, Some(&g), &[1, 2], &NoProgress).unwrap();
        assert_eq!(m["recall_at_1"], 0.5);
        assert_eq!(m["recall_at_2"], 1.0);
        // Self-retrieval over the queries: each one's only neighbour is the other (same label).
        let m = evaluate_embeddings(&q, None, &[1], &NoProgress).unwrap();
        assert_eq!(m["recall_at_1"], 1.0);
    }

    #[test]
    fn configs_are_checked() {
        let mut c = TrainerConfig::cgd(2);
        c.epochs = 0;
        assert!(c.check().unwrap_err().to_string().contains("epochs"));
        let mut c = TrainerConfig::cgd(2);
        c.recall_ks = vec![1, 0];
        assert!(c.check().is_err());
        let mut c = TrainerConfig::cgd(2);
        c.sam_rho = Some(-1.0);
        assert!(c.check().is_err());
        assert_eq!(TrainerConfig::cgd(20).milestones, vec![12, 16]);
    }
}
