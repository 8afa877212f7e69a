//! Sharpness-aware minimisation around any Burn optimizer.

use std::collections::{HashMap, HashSet};

use burn::module::{Module, ParamId};
use burn::optim::lr_scheduler::module_lr_scheduler::ModuleLearningRate;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::Tensor;

use crate::params::{map_params, scaled_grad_norm, weight_ids};

/// Which perturbation `e(w) = rho * T(w)^2 * g / (||T(w) g|| + eps)` is used, the norm being
/// taken jointly over all parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SamVariant {
    /// Foret et al.: `T(w) = 1` (davda54/sam with `adaptive=False`).
    Sam,
    /// Adaptive SAM as davda54/sam implements it (`adaptive=True`): `T(w) = |w|` for every
    /// parameter, biases included. SAIG's "ASAM" is this with rho = 2.0.
    Adaptive,
    /// ASAM as SamsungLabs/ASAM implements it: `T(w) = |w| + eta` for the parameters whose
    /// PyTorch name contains `weight` (convolution and linear weights, normalisation scales:
    /// Burn's `gamma`), 1 for everything else (biases, class tokens, position embeddings,
    /// GeM's p, proxies); eps 1e-16, and the ascent is undone by subtracting `e` rather than
    /// restoring `w`.
    Asam {
        /// Offset added to `|w|` so that zero weights are still perturbed (SamsungLabs: 0.01).
        eta: f64,
    },
}

/// Configuration of [`Sam`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamConfig {
    /// Radius of the ascent: `e(w) / T(w)` has norm `rho` (0.05 in SAM's paper).
    pub rho: f64,
    /// Which perturbation, see [`SamVariant`].
    pub variant: SamVariant,
}

impl SamConfig {
    /// Plain SAM (rho 0.05 in the paper).
    pub fn sam(rho: f64) -> Self {
        SamConfig {
            rho,
            variant: SamVariant::Sam,
        }
    }

    /// davda54's adaptive SAM (SAIG uses rho = 2.0).
    pub fn adaptive(rho: f64) -> Self {
        SamConfig {
            rho,
            variant: SamVariant::Adaptive,
        }
    }

    /// SamsungLabs' ASAM (their defaults: rho 0.5, eta 0.01).
    pub fn asam(rho: f64, eta: f64) -> Self {
        SamConfig {
            rho,
            variant: SamVariant::Asam { eta },
        }
    }

    /// Wraps `base`, the optimizer that takes the actual step from the perturbed gradients.
    pub fn init(self, base: ModuleOptimizer) -> Sam {
        Sam { config: self, base }
    }
}

/// What [`Sam::ascend`] did to the weights, so that [`Sam::descend`] can undo it.
#[derive(Debug)]
pub struct Perturbation {
    /// Per parameter: the original weights (SAM, adaptive) or `e` (ASAM), flattened.
    undo: HashMap<ParamId, Tensor<1>>,
    /// The joint gradient norm `||T(w) g||` of the first pass.
    pub grad_norm: f64,
}

/// SAM around a Burn optimizer. One training step is two forward/backward passes:
///
/// ```
/// use burn::module::Module;
/// use burn::nn::{Linear, LinearConfig};
/// use burn::optim::{GradientsParams, SgdConfig};
/// use burn::tensor::{Tensor, TensorData};
/// use metron_optim::SamConfig;
///
/// let device = metron_core::parse_device("cpu").unwrap().autodiff();
/// let mut model: Linear = LinearConfig::new(2, 1).init(&device);
/// let mut sam = SamConfig::sam(0.05).init(SgdConfig::new().init());
/// let x = Tensor::<2>::from_data(TensorData::new(vec![1.0f32, 2.0, 3.0, 4.0], [2, 2]), &device);
/// let loss = |m: &Linear| m.forward(x.clone()).square().mean();
///
/// // 1. gradient at w, 2. climb to w + e(w), 3. gradient there, 4. step from w with it.
/// let grads = GradientsParams::from_grads(loss(&model).backward(), &model);
/// let (perturbed, undo) = sam.ascend(model, &grads);
/// let grads = GradientsParams::from_grads(loss(&perturbed).backward(), &perturbed);
/// model = sam.descend(0.1, perturbed, undo, grads);
///
/// // Or both passes in one call:
/// let (model, loss_at_w) = sam.step(0.1, model, loss);
/// assert!(loss_at_w.is_finite());
/// ```
#[derive(Clone)]
pub struct Sam {
    /// The radius and variant of the perturbation.
    pub config: SamConfig,
    base: ModuleOptimizer,
}

impl std::fmt::Debug for Sam {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sam")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Sam {
    /// The wrapped optimizer (e.g. to save its state).
    pub fn base(&self) -> &ModuleOptimizer {
        &self.base
    }

    /// First pass: moves the weights to `w + e(w)` using the gradients at `w`.
    pub fn ascend<M: Module>(&self, model: M, grads: &GradientsParams) -> (M, Perturbation) {
        let rho = self.config.rho;
        let (weights, eta, eps) = match self.config.variant {
            SamVariant::Sam => (HashSet::new(), 0.0, 1e-12),
            SamVariant::Adaptive => (HashSet::new(), 0.0, 1e-12),
            SamVariant::Asam { eta } => (weight_ids(&model), eta, 1e-16),
        };
        let variant = self.config.variant;
        // T(w), or None where it is 1.
        let scale = |id: ParamId, w: Tensor<1>| -> Option<Tensor<1>> {
            match variant {
                SamVariant::Sam => None,
                SamVariant::Adaptive => Some(w.abs()),
                SamVariant::Asam { .. } => weights.contains(&id).then(|| w.abs().add_scalar(eta)),
            }
        };
        let norm = scaled_grad_norm(&model, grads, &scale);
        let factor = rho / (norm + eps);
        let restore = !matches!(variant, SamVariant::Asam { .. });
        let mut undo = HashMap::new();
        let model = map_params(model, Some(grads), &mut |id, w, g| {
            let g = g?;
            // e = rho * T(w)^2 * g / (||T(w) g|| + eps)
            let e = match scale(id, w.clone()) {
                Some(t) => t.square() * g,
                None => g,
            }
            .mul_scalar(factor);
            undo.insert(id, if restore { w.clone() } else { e.clone() });
            Some(w + e)
        });
        (
            model,
            Perturbation {
                undo,
                grad_norm: norm,
            },
        )
    }

    /// Second pass: undoes the ascent and steps the base optimizer from `w` with the gradients
    /// taken at `w + e(w)`. `lr` is one rate, or per parameter group (Burn's
    /// `ModuleLearningRate`).
    pub fn descend<M: Module>(
        &mut self,
        lr: impl Into<ModuleLearningRate>,
        model: M,
        perturbation: Perturbation,
        grads: GradientsParams,
    ) -> M {
        let restore = !matches!(self.config.variant, SamVariant::Asam { .. });
        let mut undo = perturbation.undo;
        let model = map_params(model, None, &mut |id, w, _| {
            let saved = undo.remove(&id)?;
            Some(if restore { saved } else { w - saved })
        });
        self.base.step(lr, model, grads)
    }

    /// A whole SAM step: `loss` is evaluated (and differentiated) at `w` and at `w + e(w)`,
    /// the second time without BatchNorm running-statistics updates
    /// ([`metron_ops::without_running_stat_updates`]). Returns the updated model
    /// and the loss at `w`.
    pub fn step<M: Module>(
        &mut self,
        lr: f64,
        model: M,
        loss: impl Fn(&M) -> Tensor<1>,
    ) -> (M, f64) {
        let first = loss(&model);
        let value = first.clone().into_scalar::<f64>();
        let grads = GradientsParams::from_grads(first.backward(), &model);
        let (perturbed, undo) = self.ascend(model, &grads);
        // Each batch enters BatchNorm's running statistics once (davda54/sam's advice).
        let second = metron_ops::without_running_stat_updates(|| loss(&perturbed));
        let grads = GradientsParams::from_grads(second.backward(), &perturbed);
        (self.descend(lr, perturbed, undo, grads), value)
    }
}
