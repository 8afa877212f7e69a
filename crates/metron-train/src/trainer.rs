//! The training loop: sampler -> batches built ahead on a background thread -> model loss ->
//! optimizer (parameter groups, clipping, SAM optional) -> evaluation every N epochs ->
//! atomic checkpoint.
//!
//! Written here rather than on burn-train's `Learner` because three things metron promises do
//! not fit it: SAM needs two forward/backward passes per step (the Learner's `TrainStep` gives
//! one), a resumed run must see exactly the batches and augmentations of an uninterrupted one
//! (our samplers and loader are pure functions of seed and epoch; the Learner's data loader
//! keeps its own shuffling state), and checkpoints must be written atomically as one file.
//!
//! The loop knows no system: the batches come from any [`BatchSampler`] and any
//! [`LoadBatch`], the loss from the model ([`TrainModel`]), the metrics from an
//! [`Evaluation`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use burn::optim::GradientsParams;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use metron_datasets::{Batch, LoadBatch, Loader, Pipeline};
use metron_samplers::BatchSampler;

use crate::checkpoint::{read_checkpoint, save_checkpoint};
use crate::optimizer::{
    GroupWarmupStage, GroupedOptimizer, LossTriggeredDecay, LrSchedule, OptimizerSetting,
    ParamGroupSetting, SamSetting, StepUnit, group_warmup_factor,
};
use crate::{Bar, EvalOutcome, Evaluation, Result, RunDir, TrainError, TrainModel};

/// How a run trains (the loop's part; the model, data and evaluation are the system's).
/// Serialised into the run's `config.json` by the systems.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainerConfig {
    /// Epochs to train in total (at least 1).
    pub epochs: usize,
    /// The optimizer and its settings.
    pub optimizer: OptimizerSetting,
    /// The base learning rate (of the default parameter group).
    pub lr: f64,
    /// The learning rate over training, as a multiple of `lr`.
    pub schedule: LrSchedule,
    /// Whether `schedule` counts epochs or optimizer steps.
    #[serde(default)]
    pub schedule_unit: StepUnit,
    /// Parameter groups, first match wins ([`ParamGroupSetting`]).
    #[serde(default)]
    pub param_groups: Vec<ParamGroupSetting>,
    /// A per-group gradual warmup by epoch, on top of `schedule` ([`GroupWarmupStage`]).
    #[serde(default)]
    pub group_warmup: Vec<GroupWarmupStage>,
    /// A decay triggered by a loss part's epoch mean, which also shortens training
    /// ([`LossTriggeredDecay`]).
    #[serde(default)]
    pub decay_on_loss: Option<LossTriggeredDecay>,
    /// Clip the gradients to this joint L2 norm before each step
    /// (`torch.nn.utils.clip_grad_norm_`).
    #[serde(default)]
    pub clip_grad_norm: Option<f64>,
    /// Train with sharpness-aware minimisation.
    #[serde(default)]
    pub sam: Option<SamSetting>,
    /// Let SAM's second (perturbed) pass update BatchNorm running statistics too. Off by
    /// default, as davda54/sam recommends: each batch then enters the statistics once.
    #[serde(default)]
    pub sam_second_pass_updates_batch_norm: bool,
    /// One seed for initialisation, sampling and augmentation.
    pub seed: u64,
    /// Evaluate after every this many epochs (and always after the last).
    #[serde(default = "every_epoch")]
    pub eval_every: usize,
    /// Evaluate the network before the first step (the "untrained" baseline).
    pub evaluate_untrained: bool,
    /// Batches built ahead of the model.
    pub prefetch: usize,
}

fn every_epoch() -> usize {
    1
}

impl TrainerConfig {
    /// `epochs` epochs of `optimizer` at a constant `lr`, evaluated every epoch and before the
    /// first; seed 0.
    pub fn new(epochs: usize, optimizer: OptimizerSetting, lr: f64) -> Self {
        TrainerConfig {
            epochs,
            optimizer,
            lr,
            schedule: LrSchedule::Constant,
            schedule_unit: StepUnit::Epoch,
            param_groups: Vec::new(),
            group_warmup: Vec::new(),
            decay_on_loss: None,
            clip_grad_norm: None,
            sam: None,
            sam_second_pass_updates_batch_norm: false,
            seed: 0,
            eval_every: 1,
            evaluate_untrained: true,
            prefetch: 2,
        }
    }

    /// Checks the settings the loop relies on; a bad one is a [`TrainError::Config`].
    pub fn check(&self) -> Result<()> {
        let bad = |what: &str| Err(TrainError::Config(what.to_string()));
        if self.epochs == 0 {
            return bad("epochs must be at least 1");
        }
        if self.eval_every == 0 {
            return bad("eval_every must be at least 1");
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad("lr must be a positive number");
        }
        self.optimizer.check()?;
        if let Some(rho) = self.sam.map(|s| s.rho())
            && !(rho.is_finite() && rho > 0.0)
        {
            return bad("SAM's rho must be positive");
        }
        if let Some(c) = self.clip_grad_norm
            && !(c.is_finite() && c > 0.0)
        {
            return bad("clip_grad_norm must be positive");
        }
        if let Some(stage) = self.group_warmup.iter().find(|s| s.period == 0) {
            return Err(TrainError::Config(format!(
                "the warmup stage at epoch {} needs a period of at least 1",
                stage.start
            )));
        }
        for stage in &self.group_warmup {
            for g in &stage.groups {
                if g != "*" && !self.param_groups.iter().any(|p| &p.params == g) {
                    return Err(TrainError::Config(format!(
                        "the warmup stage at epoch {} lists '{g}', which is no parameter group",
                        stage.start
                    )));
                }
            }
        }
        if let Some(d) = &self.decay_on_loss
            && !(d.gamma.is_finite() && d.gamma > 0.0 && d.threshold.is_finite())
        {
            return bad("the loss-triggered decay needs a positive gamma and a finite threshold");
        }
        match &self.schedule {
            LrSchedule::MultiStep { gamma, .. } if !(gamma.is_finite() && *gamma > 0.0) => {
                bad("the schedule's gamma must be positive")
            }
            LrSchedule::LinearWarmup { warmup: 0 } => bad("a linear warmup needs warmup >= 1"),
            _ => Ok(()),
        }
    }

    fn evaluates_after(&self, epoch: usize, total: usize) -> bool {
        epoch.is_multiple_of(self.eval_every) || epoch == total
    }

    /// The epochs a run with `state` trains in all: `epochs`, or fewer once a
    /// [`LossTriggeredDecay`] has triggered.
    pub fn total_epochs(&self, state: &TrainState) -> usize {
        match (&self.decay_on_loss, state.decayed_after) {
            (Some(d), Some(n)) => self.epochs.min(n + d.extra_epochs),
            _ => self.epochs,
        }
    }
}

/// What one epoch did; one line of `metrics.jsonl`. Epoch 0 is the untrained network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// The epoch, 1-based (0: the untrained network).
    pub epoch: usize,
    /// The learning rate of the epoch's first step.
    pub lr: f64,
    /// Mean training loss over the epoch's steps (`None` for epoch 0).
    pub loss: Option<f64>,
    /// Mean of each named part of the loss over the epoch's steps (empty for epoch 0).
    pub loss_parts: BTreeMap<String, f64>,
    /// The evaluation's metrics (empty when the epoch was not evaluated, see
    /// [`TrainerConfig::eval_every`]).
    pub test: BTreeMap<String, f64>,
    /// Items of the epoch and its evaluation that could not be decoded.
    pub images_skipped: usize,
    /// Wall-clock time of the epoch, its evaluation included, in seconds.
    pub seconds: f64,
}

/// The run state saved with each checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Epochs finished so far; a resume continues with the next one.
    pub epochs_done: usize,
    /// Optimizer steps scheduled so far (batches, across epochs): the position of a
    /// per-iteration schedule.
    #[serde(default)]
    pub iterations_done: usize,
    /// The record of every epoch so far (epoch 0 first when the untrained network was evaluated).
    pub history: Vec<EpochRecord>,
    /// `(epoch, value)` of the evaluation's primary metric at the best epoch so far.
    pub best: Option<(usize, f64)>,
    /// What rebuilds the model ([`TrainModel::architecture`]).
    pub architecture: serde_json::Value,
    /// The test-time preprocessing, so a checkpoint alone can embed new images.
    pub eval_pipeline: Option<PipelineSpec>,
    /// The finished epoch (1-based) after which a [`LossTriggeredDecay`] triggered.
    #[serde(default)]
    pub decayed_after: Option<usize>,
}

/// A serialisable description of a deterministic test-time pipeline: optionally crop to the
/// dataset's box, resize to `size` (or resize the shorter side and centre-crop `size`, as
/// torchvision's `Resize(int)` + `CenterCrop`), then normalise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineSpec {
    /// The `[height, width]` of the network input, in pixels.
    pub size: [u32; 2],
    /// Per-channel (RGB) mean subtracted after scaling to [0, 1].
    pub mean: [f32; 3],
    /// Per-channel (RGB) standard deviation divided by after the mean.
    pub std: [f32; 3],
    /// `Some(s)`: resize the shorter side to `s` (keeping the aspect ratio), then centre-crop
    /// `size`; `None`: resize straight to `size`.
    #[serde(default)]
    pub shorter_side: Option<u32>,
    /// Crop each image to its dataset box first (the "cropped" protocols).
    #[serde(default)]
    pub crop_to_box: bool,
}

impl PipelineSpec {
    /// Resize straight to `size`, then normalise.
    pub fn resize(size: [u32; 2], mean: [f32; 3], std: [f32; 3]) -> Self {
        PipelineSpec {
            size,
            mean,
            std,
            shorter_side: None,
            crop_to_box: false,
        }
    }

    /// The pipeline this describes.
    pub fn pipeline(&self) -> Pipeline {
        let steps = match self.shorter_side {
            Some(side) => vec![
                metron_datasets::Transform::ResizeShorter { size: side },
                metron_datasets::Transform::CenterCrop { size: self.size },
            ],
            None => vec![metron_datasets::Transform::Resize { size: self.size }],
        };
        Pipeline::new(steps)
            .with_normalization(self.mean, self.std)
            .with_crop_to_box(self.crop_to_box)
    }
}

/// What [`Trainer::fit`] returns.
#[derive(Debug)]
pub struct TrainOutcome<M> {
    /// The model after the last trained epoch.
    pub model: M,
    /// The run state, as in the last checkpoint.
    pub state: TrainState,
    /// The last evaluation of this invocation (of `model` when `finished`).
    pub last_evaluation: Option<EvalOutcome>,
    /// `false` when the run stopped early on request ([`Trainer::stop_after`]).
    pub finished: bool,
}

/// Runs a [`TrainerConfig`] in a [`RunDir`].
#[derive(Debug)]
pub struct Trainer {
    /// How to train.
    pub config: TrainerConfig,
    /// Where the run's config, metrics and checkpoints live.
    pub run: RunDir,
    /// Hide progress bars.
    pub quiet: bool,
    /// Stop (after checkpointing) once this invocation has trained this many epochs: a
    /// time-boxed job continues later with a resume.
    pub stop_after: Option<usize>,
    /// Saved in the checkpoints so that they can embed new images alone.
    pub eval_pipeline: Option<PipelineSpec>,
}

fn scalar(t: &burn::tensor::Tensor<1>) -> f64 {
    t.clone().into_scalar::<f64>()
}

impl Trainer {
    /// A trainer of `config` in `run`, with progress bars, no early stop and no saved pipeline.
    pub fn new(config: TrainerConfig, run: RunDir) -> Self {
        Trainer {
            config,
            run,
            quiet: false,
            stop_after: None,
            eval_pipeline: None,
        }
    }

    /// Trains `model` (freshly initialised; replaced by the checkpoint's weights when the run
    /// directory has one, which resumes the run after its last finished epoch) on the batches
    /// `sampler` draws from `train`, measured by `evaluation`.
    ///
    /// The sampler must be a pure function of (its seed, epoch), as metron's are, for a resumed
    /// run to equal an uninterrupted one; its indices address `train` (an index past it is the
    /// loader's error, naming it).
    pub fn fit<M: TrainModel>(
        &self,
        mut model: M,
        sampler: &dyn BatchSampler,
        train: Arc<dyn LoadBatch<Batch = M::Batch>>,
        evaluation: &dyn Evaluation<M>,
        device: &Device,
    ) -> Result<TrainOutcome<M>> {
        let cfg = &self.config;
        cfg.check()?;
        let last = self.run.last_checkpoint();
        let checkpoint = if last.is_file() {
            Some(read_checkpoint(&last)?)
        } else {
            None
        };
        let mut state = match &checkpoint {
            Some(ck) => {
                let state: TrainState = ck.state(&last)?;
                if state.architecture != model.architecture() {
                    return Err(TrainError::run_file(
                        &last,
                        "the checkpoint was trained with another architecture than the one configured",
                    ));
                }
                model = ck.load_model(model, &last)?;
                state
            }
            None => TrainState {
                epochs_done: 0,
                iterations_done: 0,
                history: Vec::new(),
                best: None,
                architecture: model.architecture(),
                eval_pipeline: self.eval_pipeline.clone(),
                decayed_after: None,
            },
        };
        // Groups are resolved on the loaded model: the optimizer state is keyed by its ids.
        let (groups, mut optimizer) =
            GroupedOptimizer::new(&cfg.optimizer, &cfg.param_groups, &model)?;
        if let Some(ck) = &checkpoint {
            optimizer = ck.load_optimizer(optimizer, &last)?;
        }
        model = groups.freeze(model);
        let mut sam = cfg.sam.map(|s| s.config().init(optimizer.clone()));

        let steps_per_epoch = sampler.batches_per_epoch();
        let total_units = match cfg.schedule_unit {
            StepUnit::Epoch => cfg.epochs,
            StepUnit::Iteration => cfg.epochs * steps_per_epoch,
        };
        let lr_at = |epoch: usize, iteration: usize, decayed_after: Option<usize>| {
            let t = match cfg.schedule_unit {
                StepUnit::Epoch => epoch,
                StepUnit::Iteration => iteration,
            };
            let decay = match (&cfg.decay_on_loss, decayed_after) {
                (Some(d), Some(n)) if epoch >= n => d.gamma,
                _ => 1.0,
            };
            cfg.schedule.lr(cfg.lr, t, total_units) * decay
        };

        let mut last_evaluation = None;
        if state.epochs_done == 0 && state.history.is_empty() && cfg.evaluate_untrained {
            let t = Instant::now();
            let eval = evaluation.evaluate(&model, device, self.quiet)?;
            let record = EpochRecord {
                epoch: 0,
                lr: lr_at(0, 0, None),
                loss: None,
                loss_parts: BTreeMap::new(),
                test: eval.metrics.clone(),
                images_skipped: eval.items_skipped,
                seconds: t.elapsed().as_secs_f64(),
            };
            self.report_epoch(&record, evaluation);
            state.history.push(record);
            last_evaluation = Some(eval);
        }
        self.run.write_metrics(&state.history)?;

        let mut trained_now = 0;
        while state.epochs_done < cfg.total_epochs(&state) {
            if self.stop_after.is_some_and(|n| trained_now >= n) {
                return Ok(TrainOutcome {
                    model,
                    state,
                    last_evaluation,
                    finished: false,
                });
            }
            let epoch = state.epochs_done; // 0-based index of the epoch being trained
            model = model.at_epoch(epoch);
            let t = Instant::now();
            let batches = sampler.epoch(epoch as u64);
            let batch_count = batches.len();
            let total_items: usize = batches.iter().map(Vec::len).sum();
            let bar = Bar::new(
                total_items,
                &format!("epoch {}/{}", epoch + 1, cfg.total_epochs(&state)),
                self.quiet,
            );
            let first_lr = lr_at(epoch, state.iterations_done, state.decayed_after);
            let mut loss_sum = 0.0;
            let mut part_sums: BTreeMap<String, f64> = BTreeMap::new();
            let mut steps = 0usize;
            let mut skipped = 0usize;
            let mut arrived = 0usize;
            let loader = Loader::new(train.clone(), batches, cfg.seed, epoch as u64, cfg.prefetch);
            for (position, batch) in loader.enumerate() {
                let batch = batch?;
                let iteration = state.iterations_done + position;
                skipped += batch.skipped();
                arrived += batch.items() + batch.skipped();
                bar.inc(batch.items() + batch.skipped());
                if batch.items() < 2 {
                    continue;
                }
                let lr = groups
                    .learning_rate_with(lr_at(epoch, iteration, state.decayed_after), |params| {
                        group_warmup_factor(&cfg.group_warmup, epoch, params)
                    });
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
                let (out, grads) = model.loss_and_grads(&batch, device)?;
                let value = scalar(&out.total);
                check_finite(value)?;
                for (name, part) in &out.parts {
                    *part_sums.entry((*name).to_string()).or_default() += scalar(part);
                }
                let clip = |model: &M, grads: GradientsParams| match cfg.clip_grad_norm {
                    Some(max) => metron_optim::clip_grad_norm(model, grads, max).0,
                    None => grads,
                };
                model = match &mut sam {
                    None => {
                        let grads = clip(&model, grads);
                        optimizer.step(lr, model, grads)
                    }
                    Some(sam) => {
                        let (perturbed, undo) = sam.ascend(model, &grads);
                        let (second, grads) = if cfg.sam_second_pass_updates_batch_norm {
                            perturbed.loss_and_grads(&batch, device)?
                        } else {
                            metron_ops::without_running_stat_updates(|| {
                                perturbed.loss_and_grads(&batch, device)
                            })?
                        };
                        check_finite(scalar(&second.total))?;
                        let grads = clip(&perturbed, grads);
                        sam.descend(lr, perturbed, undo, grads)
                    }
                };
                loss_sum += value;
                steps += 1;
                bar.set_message(format!("loss {:.4}", loss_sum / steps as f64));
            }
            bar.finish();
            if arrived != total_items {
                return Err(TrainError::IncompleteData {
                    what: format!("training epoch {}", epoch + 1),
                    got: arrived,
                    expected: total_items,
                });
            }
            state.iterations_done += batch_count;
            let per_step = |s: f64| s / steps.max(1) as f64;
            let mut record = EpochRecord {
                epoch: epoch + 1,
                lr: first_lr,
                loss: Some(per_step(loss_sum)),
                loss_parts: part_sums
                    .into_iter()
                    .map(|(k, v)| (k, per_step(v)))
                    .collect(),
                test: BTreeMap::new(),
                images_skipped: skipped,
                seconds: 0.0,
            };
            if let Some(d) = &cfg.decay_on_loss
                && state.decayed_after.is_none()
                && d.triggers(epoch + 1, &record.loss_parts)
            {
                state.decayed_after = Some(epoch + 1);
                if !self.quiet {
                    eprintln!(
                        "{} {:.4} >= {} after epoch {}: learning rates x{}, {} more epochs",
                        d.part,
                        record.loss_parts[&d.part],
                        d.threshold,
                        epoch + 1,
                        d.gamma,
                        cfg.total_epochs(&state) - (epoch + 1)
                    );
                }
            }
            let mut improved = false;
            if cfg.evaluates_after(epoch + 1, cfg.total_epochs(&state)) {
                let eval = evaluation.evaluate(&model, device, self.quiet)?;
                record.test = eval.metrics.clone();
                record.images_skipped += eval.items_skipped;
                let primary = evaluation.primary_metric();
                let value = eval.metrics.get(primary).copied().ok_or_else(|| {
                    TrainError::Config(format!(
                        "the evaluation reports no '{primary}', its primary metric"
                    ))
                })?;
                improved = state.best.is_none_or(|(_, b)| value > b);
                if improved {
                    state.best = Some((epoch + 1, value));
                }
                last_evaluation = Some(eval);
            }
            record.seconds = t.elapsed().as_secs_f64();
            self.report_epoch(&record, evaluation);
            state.history.push(record);
            state.epochs_done = epoch + 1;
            let optimizer_now = match &sam {
                Some(sam) => sam.base(),
                None => &optimizer,
            };
            save_checkpoint(&last, &state, &model, Some(optimizer_now))?;
            if improved {
                save_checkpoint(&self.run.best_checkpoint(), &state, &model, None)?;
            }
            self.run.write_metrics(&state.history)?;
            trained_now += 1;
        }
        Ok(TrainOutcome {
            model,
            state,
            last_evaluation,
            finished: true,
        })
    }

    fn report_epoch<M>(&self, r: &EpochRecord, evaluation: &dyn Evaluation<M>) {
        if self.quiet {
            return;
        }
        let loss = r
            .loss
            .map(|l| format!("loss {l:.4}  "))
            .unwrap_or_else(|| "untrained  ".into());
        let test = if r.test.is_empty() {
            "(not evaluated)".to_string()
        } else {
            evaluation.summary(&r.test)
        };
        eprintln!("epoch {:>3}  {loss}{test}  ({:.1} s)", r.epoch, r.seconds);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_are_checked() {
        let ok = TrainerConfig::new(2, OptimizerSetting::adam(0.0), 1e-3);
        assert!(ok.check().is_ok());
        let c = TrainerConfig {
            epochs: 0,
            ..ok.clone()
        };
        assert!(c.check().unwrap_err().to_string().contains("epochs"));
        let c = TrainerConfig {
            sam: Some(SamSetting::Sam { rho: -1.0 }),
            ..ok.clone()
        };
        assert!(c.check().unwrap_err().to_string().contains("rho"));
        let c = TrainerConfig {
            clip_grad_norm: Some(0.0),
            ..ok.clone()
        };
        assert!(c.check().is_err());
        let c = TrainerConfig {
            eval_every: 0,
            ..ok.clone()
        };
        assert!(c.check().is_err());
    }

    #[test]
    fn evaluation_happens_every_n_epochs_and_after_the_last() {
        let c = TrainerConfig {
            eval_every: 3,
            ..TrainerConfig::new(7, OptimizerSetting::adam(0.0), 1e-3)
        };
        let evaluated: Vec<usize> = (1..=7).filter(|&e| c.evaluates_after(e, 7)).collect();
        assert_eq!(evaluated, vec![3, 6, 7]);
    }
}
