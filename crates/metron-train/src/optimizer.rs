//! What the loop steps with: the optimizer (PyTorch's defaults), parameter groups (learning-rate
//! multipliers, weight-decay exemption, freezing), learning-rate schedules stepped per epoch or
//! per iteration, and SAM's variants.

use std::collections::BTreeMap;

use burn::module::{Module, ModuleMapper, Param, ParamGroup, ParamId};
use burn::optim::lr_scheduler::module_lr_scheduler::{ModuleLearningRate, ModuleLrScheduler};
use burn::optim::{
    AdamConfig, AdamWConfig, ModuleOptimizer, SgdConfig, decay::WeightDecayConfig,
    momentum::MomentumConfig,
};
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use metron_optim::SamConfig;
pub use metron_optim::param_paths;

use crate::{Result, TrainError};

/// The optimizer the loop steps with. Every setting is explicit and defaults to PyTorch's
/// (`torch.optim.Adam` / `AdamW` / `SGD`), where the published recipes come from: Burn's own
/// defaults differ (Adam epsilon 1e-5 against 1e-8, momentum dampening 0.1 against 0).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum OptimizerSetting {
    /// Adam with L2 weight decay added to the gradient (`torch.optim.Adam`, not AdamW).
    Adam {
        /// L2 penalty coefficient added to the gradient (0 for none).
        weight_decay: f64,
        /// Decay rates of the first and second moment estimates (default `[0.9, 0.999]`).
        #[serde(default = "torch_adam_betas")]
        betas: [f64; 2],
        /// Term added to the denominator for numerical stability (default 1e-8).
        #[serde(default = "torch_adam_epsilon")]
        epsilon: f64,
    },
    /// AdamW, decay decoupled from the gradient (`torch.optim.AdamW`: the parameter shrinks by
    /// `lr * weight_decay` of itself before the Adam step).
    AdamW {
        /// Decoupled decay coefficient (PyTorch's default is 0.01).
        weight_decay: f64,
        /// Decay rates of the first and second moment estimates (PyTorch: `[0.9, 0.999]`).
        betas: [f64; 2],
        /// Term added to the denominator for numerical stability (PyTorch: 1e-8).
        epsilon: f64,
    },
    /// SGD with momentum (`torch.optim.SGD`).
    Sgd {
        /// Momentum factor (0 for plain SGD).
        momentum: f64,
        /// L2 penalty coefficient added to the gradient (0 for none).
        weight_decay: f64,
        /// Dampening of the momentum (default 0, as in PyTorch).
        #[serde(default)]
        dampening: f64,
        /// Nesterov momentum (default off; needs momentum > 0 and zero dampening).
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

/// One Burn optimizer of any kind, before it is wrapped for a module.
enum RawOptimizer {
    Adam(burn::optim::Adam),
    AdamW(burn::optim::AdamW),
    Sgd(burn::optim::Sgd),
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

    /// The same optimizer without weight decay (a "no decay" parameter group).
    pub fn without_weight_decay(&self) -> Self {
        let mut out = self.clone();
        match &mut out {
            OptimizerSetting::Adam { weight_decay, .. }
            | OptimizerSetting::AdamW { weight_decay, .. }
            | OptimizerSetting::Sgd { weight_decay, .. } => *weight_decay = 0.0,
        }
        out
    }

    fn raw(&self) -> RawOptimizer {
        let decay = |wd: f64| (wd > 0.0).then(|| WeightDecayConfig::new(wd as f32));
        match *self {
            OptimizerSetting::Adam {
                weight_decay,
                betas,
                epsilon,
            } => RawOptimizer::Adam(
                AdamConfig::new()
                    .with_beta_1(betas[0] as f32)
                    .with_beta_2(betas[1] as f32)
                    .with_epsilon(epsilon as f32)
                    .with_weight_decay(decay(weight_decay))
                    .build(),
            ),
            OptimizerSetting::AdamW {
                weight_decay,
                betas,
                epsilon,
            } => RawOptimizer::AdamW(
                AdamWConfig::new()
                    .with_beta_1(betas[0] as f32)
                    .with_beta_2(betas[1] as f32)
                    .with_epsilon(epsilon as f32)
                    .with_weight_decay(weight_decay as f32)
                    .build(),
            ),
            OptimizerSetting::Sgd {
                momentum,
                weight_decay,
                dampening,
                nesterov,
            } => RawOptimizer::Sgd(
                SgdConfig::new()
                    .with_momentum((momentum > 0.0).then(|| {
                        MomentumConfig::new()
                            .with_momentum(momentum)
                            .with_dampening(dampening)
                            .with_nesterov(nesterov)
                    }))
                    .with_weight_decay(decay(weight_decay))
                    .build(),
            ),
        }
    }

    /// The Burn optimizer with exactly these settings, for every parameter.
    pub fn init(&self) -> ModuleOptimizer {
        match self.raw() {
            RawOptimizer::Adam(o) => o.into(),
            RawOptimizer::AdamW(o) => o.into(),
            RawOptimizer::Sgd(o) => o.into(),
        }
    }

    fn add_group(&self, optimizer: ModuleOptimizer, group: ParamGroup) -> ModuleOptimizer {
        match self.raw() {
            RawOptimizer::Adam(o) => optimizer.with_group(group, o, None),
            RawOptimizer::AdamW(o) => optimizer.with_group(group, o, None),
            RawOptimizer::Sgd(o) => optimizer.with_group(group, o, None),
        }
    }

    pub(crate) fn check(&self) -> Result<()> {
        let bad = |what: &str| Err(TrainError::Config(what.to_string()));
        match *self {
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
        Ok(())
    }
}

/// A parameter group, as PyTorch's `optimizer.param_groups` entries: the parameters whose
/// dotted path (`head.classifier.weight`, `backbone.layer1.0.conv1.weight`; list them with
/// [`param_paths`]) matches `params`, with their own learning-rate multiplier, no weight
/// decay, or frozen. A parameter belongs to the first group that matches it, else to the
/// default group (multiplier 1, the optimizer's decay).
///
/// `params` is one or more patterns separated by `|`. A pattern is dot-separated segments:
/// `**` matches any number of segments, `*` inside a segment any characters, and `{a-b}` a
/// whole-number segment from `a` to `b` inclusive. E.g. "head x10": `head.**`; "bias x2, no
/// decay": `**.bias`; "ViT blocks 0-10 frozen": `blocks.{0-10}.**`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamGroupSetting {
    /// The `|`-separated path patterns that select the group's parameters.
    pub params: String,
    /// Factor on the learning rate for these parameters (default 1, must be >= 0).
    #[serde(default = "one")]
    pub lr_multiplier: f64,
    /// Train these parameters without weight decay (default off).
    #[serde(default)]
    pub no_weight_decay: bool,
    /// No gradient is computed for these parameters and they never change.
    #[serde(default)]
    pub frozen: bool,
}

fn one() -> f64 {
    1.0
}

impl ParamGroupSetting {
    /// The parameters matching `params`, trained at `lr_multiplier` times the rate.
    pub fn new(params: impl Into<String>) -> Self {
        ParamGroupSetting {
            params: params.into(),
            lr_multiplier: 1.0,
            no_weight_decay: false,
            frozen: false,
        }
    }

    /// Trains the group at `multiplier` times the learning rate.
    pub fn with_lr_multiplier(mut self, multiplier: f64) -> Self {
        self.lr_multiplier = multiplier;
        self
    }

    /// Exempts the group from weight decay.
    pub fn with_no_weight_decay(mut self) -> Self {
        self.no_weight_decay = true;
        self
    }

    /// Freezes the group: no gradient, the parameters never change.
    pub fn frozen(mut self) -> Self {
        self.frozen = true;
        self
    }

    /// Whether the dotted parameter path `path` is in this group.
    pub fn matches(&self, path: &str) -> bool {
        let path: Vec<&str> = path.split('.').collect();
        self.params.split('|').any(|pattern| {
            let pattern: Vec<&str> = pattern.trim().split('.').collect();
            segments_match(&pattern, &path)
        })
    }
}

fn segments_match(pattern: &[&str], path: &[&str]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((&"**", rest)) => (0..=path.len()).any(|skip| segments_match(rest, &path[skip..])),
        Some((first, rest)) => {
            !path.is_empty() && segment_matches(first, path[0]) && segments_match(rest, &path[1..])
        }
    }
}

fn segment_matches(pattern: &str, segment: &str) -> bool {
    if let Some(range) = pattern.strip_prefix('{').and_then(|p| p.strip_suffix('}'))
        && let Some((lo, hi)) = range.split_once('-')
        && let (Ok(lo), Ok(hi)) = (lo.trim().parse::<u64>(), hi.trim().parse::<u64>())
    {
        return segment.parse::<u64>().is_ok_and(|v| (lo..=hi).contains(&v));
    }
    wildcard_match(pattern.as_bytes(), segment.as_bytes())
}

fn wildcard_match(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) => (0..=text.len()).any(|skip| wildcard_match(rest, &text[skip..])),
        Some((&c, rest)) => text.first() == Some(&c) && wildcard_match(rest, &text[1..]),
    }
}

/// The parameter groups of one model resolved to parameter ids: the optimizer built for them
/// and the learning rate of each group.
#[derive(Clone)]
pub struct GroupedOptimizer {
    /// Per trained group: its `params` pattern, ids and multiplier.
    groups: Vec<(String, Vec<ParamId>, f64)>,
    frozen: Vec<ParamId>,
}

impl std::fmt::Debug for GroupedOptimizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupedOptimizer")
            .field(
                "group_sizes",
                &self
                    .groups
                    .iter()
                    .map(|(_, ids, _)| ids.len())
                    .collect::<Vec<_>>(),
            )
            .field("frozen", &self.frozen.len())
            .finish()
    }
}

impl GroupedOptimizer {
    /// Resolves `settings` against `model`'s parameters and builds the optimizer. A group that
    /// matches no parameter is an error naming it (a typo would otherwise train everything
    /// with the defaults).
    pub fn new<M: Module>(
        optimizer: &OptimizerSetting,
        settings: &[ParamGroupSetting],
        model: &M,
    ) -> Result<(Self, ModuleOptimizer)> {
        let mut members: Vec<Vec<ParamId>> = vec![Vec::new(); settings.len()];
        for (id, path) in param_paths(model) {
            if let Some(g) = settings.iter().position(|s| s.matches(&path)) {
                members[g].push(id);
            }
        }
        let mut built = optimizer.init();
        let mut groups = Vec::new();
        let mut frozen = Vec::new();
        for (setting, ids) in settings.iter().zip(members) {
            if ids.is_empty() {
                let names: Vec<String> = param_paths(model)
                    .into_iter()
                    .take(6)
                    .map(|(_, p)| p)
                    .collect();
                return Err(TrainError::Config(format!(
                    "parameter group '{}' matches no parameter of the model (its parameters \
                     are named like {}, ...)",
                    setting.params,
                    names.join(", ")
                )));
            }
            if !(setting.lr_multiplier.is_finite() && setting.lr_multiplier >= 0.0) {
                return Err(TrainError::Config(format!(
                    "parameter group '{}': lr_multiplier must be a number >= 0",
                    setting.params
                )));
            }
            if setting.frozen {
                frozen.extend(ids);
                continue;
            }
            let group_optimizer = if setting.no_weight_decay {
                optimizer.without_weight_decay()
            } else {
                optimizer.clone()
            };
            built = group_optimizer.add_group(built, ParamGroup::from_ids(ids.clone()));
            groups.push((setting.params.clone(), ids, setting.lr_multiplier));
        }
        Ok((GroupedOptimizer { groups, frozen }, built))
    }

    /// The learning rate of every parameter when the schedule says `lr`.
    pub fn learning_rate(&self, lr: f64) -> ModuleLearningRate {
        self.learning_rate_with(lr, |_| 1.0)
    }

    /// [`GroupedOptimizer::learning_rate`] with each group's rate also multiplied by
    /// `factor(params)`, where `params` is the group's pattern (`None`: the default group).
    pub fn learning_rate_with(
        &self,
        lr: f64,
        factor: impl Fn(Option<&str>) -> f64,
    ) -> ModuleLearningRate {
        let mut policy = ModuleLrScheduler::new(lr * factor(None));
        for (params, ids, multiplier) in &self.groups {
            policy = policy.with_group(
                ParamGroup::from_ids(ids.clone()),
                lr * multiplier * factor(Some(params)),
            );
        }
        policy.step()
    }

    /// `model` with the frozen groups' parameters excluded from autodiff.
    pub fn freeze<M: Module>(&self, model: M) -> M {
        if self.frozen.is_empty() {
            return model;
        }
        struct Freeze<'a>(&'a [ParamId]);
        impl ModuleMapper for Freeze<'_> {
            fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
                if self.0.contains(&param.id) {
                    param.set_require_grad(false)
                } else {
                    param
                }
            }
        }
        model.map(&mut Freeze(&self.frozen))
    }
}

/// When a schedule advances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum StepUnit {
    /// Once per epoch (PyTorch schedulers stepped after each epoch).
    #[default]
    Epoch,
    /// Once per optimizer step (schedulers stepped after each batch).
    Iteration,
}

/// The learning rate over training, as a multiple of the base rate. Counts (`milestones`,
/// `warmup`) are in the schedule's [`StepUnit`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum LrSchedule {
    /// The base rate throughout.
    Constant,
    /// `MultiStepLR`: times `gamma` at each milestone reached.
    MultiStep {
        /// Positions at which the rate is multiplied by `gamma`.
        milestones: Vec<usize>,
        /// Factor applied at each milestone, e.g. 0.1.
        gamma: f64,
    },
    /// Linear warmup from 0, then cosine decay to `floor` at the end of training (SAIG's
    /// `WarmupCosineSchedule`; [`metron_optim::WarmupCosine`]).
    WarmupCosine {
        /// Length of the linear warmup.
        warmup: usize,
        /// Lower bound of the multiplier after warmup (SAIG: 1e-6).
        floor: f64,
    },
    /// Linear warmup from 0 over `warmup` units, then constant.
    LinearWarmup {
        /// Length of the linear warmup.
        warmup: usize,
    },
}

impl LrSchedule {
    /// The rate at position `t` (0-based, in the schedule's unit) of `total`.
    pub fn lr(&self, base: f64, t: usize, total: usize) -> f64 {
        match self {
            LrSchedule::Constant => base,
            LrSchedule::MultiStep { milestones, gamma } => {
                metron_optim::MultiStep::new(base, milestones.clone(), *gamma).lr(t)
            }
            LrSchedule::WarmupCosine { warmup, floor } => metron_optim::WarmupCosine {
                base_lr: base,
                warmup_steps: *warmup,
                total_steps: total,
                floor: *floor,
            }
            .lr(t),
            LrSchedule::LinearWarmup { warmup } => {
                if t < *warmup {
                    base * t as f64 / *warmup as f64
                } else {
                    base
                }
            }
        }
    }
}

/// One stage of a per-group gradual warmup (WGOL's `GradualWarmupScheduler` on ILSVRC): during
/// epochs `start ..= start + period` (the original's inclusive bound) the listed groups train at
/// `(epoch - start) / period` of their rate and every other group at 0; outside every stage
/// all groups train at their full rate. Stages are looked up in order, the first one whose
/// epochs contain the current epoch applies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupWarmupStage {
    /// First epoch (0-based) of the stage.
    pub start: usize,
    /// Epochs of the ramp (at least 1); the stage's last epoch is `start + period`.
    pub period: usize,
    /// The warmed-up groups, by their [`ParamGroupSetting::params`] pattern; `*` lists every
    /// group, the default one included.
    pub groups: Vec<String>,
}

impl GroupWarmupStage {
    /// The factor on the rate of the group `params` (`None`: the default group) at `epoch`,
    /// or `None` when the stage does not cover `epoch`.
    pub fn factor(&self, epoch: usize, params: Option<&str>) -> Option<f64> {
        if epoch < self.start || epoch > self.start + self.period {
            return None;
        }
        let listed = self
            .groups
            .iter()
            .any(|g| g == "*" || Some(g.as_str()) == params);
        Some(if listed {
            (epoch - self.start) as f64 / self.period as f64
        } else {
            0.0
        })
    }
}

/// The factor of a per-group warmup (`stages`) on group `params` at `epoch`: the first stage
/// covering the epoch decides, 1 outside all of them.
pub fn group_warmup_factor(stages: &[GroupWarmupStage], epoch: usize, params: Option<&str>) -> f64 {
    stages
        .iter()
        .find_map(|s| s.factor(epoch, params))
        .unwrap_or(1.0)
}

/// A decay triggered by the training loss (WGOL on CUB, `decay_points=none`): after the first
/// epoch `n` (1-based) with `n >= min_epoch` whose mean of the loss part `part` is at least
/// `threshold`, every group's rate is multiplied by `gamma` and training ends `extra_epochs`
/// later (after epoch `n + extra_epochs`), unless the configured epochs end it first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LossTriggeredDecay {
    /// The name of the loss part watched (e.g. `ra`).
    pub part: String,
    /// The epoch mean at or above which the decay triggers.
    pub threshold: f64,
    /// The first epoch (1-based, counting finished epochs) that may trigger it.
    pub min_epoch: usize,
    /// Factor on every rate after the trigger.
    pub gamma: f64,
    /// Epochs trained after the trigger.
    pub extra_epochs: usize,
}

impl LossTriggeredDecay {
    /// Whether finished epoch `epoch` (1-based) with these loss parts triggers the decay.
    pub fn triggers(&self, epoch: usize, parts: &BTreeMap<String, f64>) -> bool {
        epoch >= self.min_epoch && parts.get(&self.part).is_some_and(|v| *v >= self.threshold)
    }
}

/// Sharpness-aware minimisation, chosen by configuration ([`metron_optim::SamVariant`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "variant", rename_all = "snake_case", deny_unknown_fields)]
pub enum SamSetting {
    /// Foret et al. (davda54/sam, `adaptive=False`).
    Sam {
        /// Radius of the perturbation (0.05 in the paper).
        rho: f64,
    },
    /// davda54/sam with `adaptive=True` (SAIG's "ASAM", rho 2.0).
    Adaptive {
        /// Radius of the perturbation, scaled by `|w|` (SAIG: 2.0).
        rho: f64,
    },
    /// SamsungLabs/ASAM (rho 0.5, eta 0.01 there).
    Asam {
        /// Radius of the perturbation (0.5 there).
        rho: f64,
        /// Offset of the scaling `|w| + eta` of weight parameters (0.01 there).
        eta: f64,
    },
}

impl SamSetting {
    /// The [`SamConfig`] of this variant.
    pub fn config(&self) -> SamConfig {
        match *self {
            SamSetting::Sam { rho } => SamConfig::sam(rho),
            SamSetting::Adaptive { rho } => SamConfig::adaptive(rho),
            SamSetting::Asam { rho, eta } => SamConfig::asam(rho, eta),
        }
    }

    /// The perturbation radius, whichever the variant.
    pub fn rho(&self) -> f64 {
        match *self {
            SamSetting::Sam { rho }
            | SamSetting::Adaptive { rho }
            | SamSetting::Asam { rho, .. } => rho,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_dotted_paths() {
        let g = |p: &str| ParamGroupSetting::new(p);
        assert!(g("head.**").matches("head.classifier.weight"));
        assert!(!g("head.**").matches("backbone.head.weight"));
        assert!(g("**.bias").matches("backbone.layer1.0.bn1.bias"));
        assert!(g("**.bias").matches("bias"));
        assert!(!g("**.bias").matches("backbone.biasx"));
        assert!(g("blocks.{0-10}.**").matches("blocks.10.attn.qkv.weight"));
        assert!(!g("blocks.{0-10}.**").matches("blocks.11.attn.qkv.weight"));
        assert!(g("layer*.**").matches("layer3.1.conv2.weight"));
        assert!(g("fc.weight | **.bias").matches("fc.weight"));
        assert!(g("fc.weight | **.bias").matches("fc.bias"));
        assert!(!g("fc.weight | **.bias").matches("conv.weight"));
    }

    #[test]
    fn schedules_follow_their_definitions() {
        let s = LrSchedule::MultiStep {
            milestones: vec![2, 4],
            gamma: 0.1,
        };
        assert_eq!(s.lr(1.0, 1, 6), 1.0);
        assert!((s.lr(1.0, 2, 6) - 0.1).abs() < 1e-15);
        assert!((s.lr(1.0, 5, 6) - 0.01).abs() < 1e-15);
        let w = LrSchedule::WarmupCosine {
            warmup: 2,
            floor: 0.0,
        };
        assert_eq!(w.lr(1.0, 0, 10), 0.0);
        assert_eq!(w.lr(1.0, 1, 10), 0.5);
        assert_eq!(w.lr(1.0, 2, 10), 1.0);
        // Half-way through the 8 decay steps: cos(pi / 2) = 0, so half the rate.
        assert!((w.lr(1.0, 6, 10) - 0.5).abs() < 1e-12);
        let l = LrSchedule::LinearWarmup { warmup: 4 };
        assert_eq!(l.lr(2.0, 1, 100), 0.5);
        assert_eq!(l.lr(2.0, 40, 100), 2.0);
    }
}

#[cfg(test)]
mod warmup_tests {
    use super::*;

    #[test]
    fn the_ilsvrc_warmup_table() {
        // WGOL's ILSVRC stages: periods [2, 2, 2] at [0, 3, 6] for [sos], [sa], [all]; the
        // original's bound `start <= epoch <= start + period` is inclusive.
        let stages = vec![
            GroupWarmupStage {
                start: 0,
                period: 2,
                groups: vec!["sos".into()],
            },
            GroupWarmupStage {
                start: 3,
                period: 2,
                groups: vec!["sa".into()],
            },
            GroupWarmupStage {
                start: 6,
                period: 2,
                groups: vec!["*".into()],
            },
        ];
        let sos: Vec<f64> = (0..10)
            .map(|e| group_warmup_factor(&stages, e, Some("sos")))
            .collect();
        let sa: Vec<f64> = (0..10)
            .map(|e| group_warmup_factor(&stages, e, Some("sa")))
            .collect();
        let default: Vec<f64> = (0..10)
            .map(|e| group_warmup_factor(&stages, e, None))
            .collect();
        assert_eq!(sos, [0.0, 0.5, 1.0, 0.0, 0.0, 0.0, 0.0, 0.5, 1.0, 1.0]);
        assert_eq!(sa, [0.0, 0.0, 0.0, 0.0, 0.5, 1.0, 0.0, 0.5, 1.0, 1.0]);
        assert_eq!(default, [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.5, 1.0, 1.0]);
    }

    #[test]
    fn a_loss_decay_triggers_on_its_part_from_its_epoch() {
        let d = LossTriggeredDecay {
            part: "ra".into(),
            threshold: 0.35,
            min_epoch: 65,
            gamma: 0.1,
            extra_epochs: 20,
        };
        let parts = |v: f64| BTreeMap::from([("ra".to_string(), v)]);
        assert!(!d.triggers(64, &parts(0.9)));
        assert!(!d.triggers(65, &parts(0.34)));
        assert!(d.triggers(65, &parts(0.35)));
        assert!(!d.triggers(70, &BTreeMap::new()));
    }
}
