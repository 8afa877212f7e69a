//! Classification losses on normalised embeddings with learnable class weights: ArcFace,
//! CosFace, NormSoftmax (label-smoothed, with temperature) and Smooth-AP's `ams`.

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};

use crate::batch::{check_batch, class_indices, one_hot};
use crate::cross_entropy::smoothed_cross_entropy;
use crate::distance::l2_normalize;
use crate::{LossError, Result};

/// The checks every classifier loss makes: a valid batch, the weight's embedding size, and
/// labels that are class indices.
fn check_inputs(
    what: &'static str,
    embeddings: &Tensor<2>,
    labels: &[i64],
    dim: usize,
    classes: usize,
) -> Result<()> {
    check_batch(what, embeddings, Some(labels))?;
    if embeddings.dims()[1] != dim {
        return Err(LossError::Shape {
            what,
            expected: format!("[N, {dim}]"),
            got: embeddings.dims().to_vec(),
        });
    }
    class_indices(what, labels, classes, &embeddings.device())?;
    Ok(())
}

/// Cosine of every embedding with every column of `weight` `[D, C]`.
fn cosine_logits(embeddings: Tensor<2>, weight_dc: Tensor<2>) -> Tensor<2> {
    let w = l2_normalize(weight_dc.transpose()).transpose();
    l2_normalize(embeddings).matmul(w)
}

/// Additive angular margin (ArcFace, Deng et al. 2019), pytorch-metric-learning semantics:
/// the target logit is `s cos(theta + m)` while `theta <= pi - m`, else
/// `s (cos theta - m sin m)`; other logits `s cos theta`; mean cross entropy.
#[derive(Module, Debug)]
pub struct ArcFaceLoss {
    /// `[D, C]`: column c is class c's weight (pytorch-metric-learning's layout).
    pub weight: Param<Tensor<2>>,
    /// In radians.
    pub margin: f64,
    /// Factor multiplying every logit (cosine) before the softmax (PML default 64).
    pub scale: f64,
}

/// Additive cosine margin (CosFace / AM-Softmax): logits `s (cos - m onehot)`, mean cross
/// entropy.
#[derive(Module, Debug)]
pub struct CosFaceLoss {
    /// `[D, C]`.
    pub weight: Param<Tensor<2>>,
    /// Subtracted from the target class's cosine (PML default 0.35).
    pub margin: f64,
    /// Factor multiplying every logit before the softmax (PML default 64).
    pub scale: f64,
}

/// Normalised softmax with temperature and label smoothing: logits
/// `<x/|x|, w_c/|w_c|> / T`, targets `(1 - eps) onehot + eps / C`.
#[derive(Module, Debug)]
pub struct NormSoftmaxLoss {
    /// `[C, D]`: row c is class c's weight.
    pub weight: Param<Tensor<2>>,
    /// Temperature dividing the cosines before the softmax.
    pub temperature: f64,
    /// Label-smoothing mass `eps` spread uniformly over the C classes, in `[0, 1]`.
    pub label_smoothing: f64,
}

/// Smooth-AP's `ams`: a biased linear classifier on the (already normalised) embedding,
/// `CE(s (z - m onehot), y)`; the weights are not normalised.
#[derive(Module, Debug)]
pub struct AmsLoss {
    /// `[C, D]` (PyTorch `nn.Linear` layout).
    pub weight: Param<Tensor<2>>,
    /// `[C]`.
    pub bias: Param<Tensor<1>>,
    /// Subtracted from the target class's logit (Smooth-AP default 0.3).
    pub margin: f64,
    /// Factor multiplying every logit before the softmax (Smooth-AP default 30).
    pub scale: f64,
}

/// Shapes and hyper-parameters shared by the four classifiers' configurations.
#[derive(Debug, Clone)]
pub struct ClassifierLossConfig {
    /// Number of classes C: one weight vector per class.
    pub num_classes: usize,
    /// Embedding size D the weights are sized for.
    pub embedding_dim: usize,
    /// Seed of the weight initialisation; the same seed gives the same weights on every
    /// backend (default 0).
    pub seed: u64,
}

impl ClassifierLossConfig {
    /// C classes of D-dimensional embeddings, seed 0.
    pub fn new(num_classes: usize, embedding_dim: usize) -> Self {
        ClassifierLossConfig {
            num_classes,
            embedding_dim,
            seed: 0,
        }
    }

    /// ArcFace with margin in degrees (pytorch-metric-learning's default 28.6) and scale.
    /// Weights start N(0, 1), as pytorch-metric-learning's.
    pub fn arcface(&self, margin_degrees: f64, scale: f64, device: &Device) -> ArcFaceLoss {
        ArcFaceLoss {
            weight: crate::init::normal_param(
                self.embedding_dim,
                self.num_classes,
                1.0,
                self.seed,
                device,
            ),
            margin: margin_degrees.to_radians(),
            scale,
        }
    }

    /// CosFace (defaults in the literature: margin 0.35, scale 64).
    pub fn cosface(&self, margin: f64, scale: f64, device: &Device) -> CosFaceLoss {
        CosFaceLoss {
            weight: crate::init::normal_param(
                self.embedding_dim,
                self.num_classes,
                1.0,
                self.seed,
                device,
            ),
            margin,
            scale,
        }
    }

    /// NormSoftmax with temperature and label smoothing.
    pub fn norm_softmax(
        &self,
        temperature: f64,
        label_smoothing: f64,
        device: &Device,
    ) -> NormSoftmaxLoss {
        NormSoftmaxLoss {
            weight: crate::init::normal_param(
                self.num_classes,
                self.embedding_dim,
                1.0,
                self.seed,
                device,
            ),
            temperature,
            label_smoothing,
        }
    }

    /// Smooth-AP's `ams` (defaults margin 0.3, scale 30), with `nn.Linear`'s uniform
    /// initialisation bound 1/sqrt(D) replaced by a normal of the same variance.
    pub fn ams(&self, margin: f64, scale: f64, device: &Device) -> AmsLoss {
        let std = 1.0 / (3.0 * self.embedding_dim as f64).sqrt();
        AmsLoss {
            weight: crate::init::normal_param(
                self.num_classes,
                self.embedding_dim,
                std,
                self.seed,
                device,
            ),
            bias: Param::from_tensor(Tensor::zeros([self.num_classes], device)),
            margin,
            scale,
        }
    }
}

impl ArcFaceLoss {
    /// # Shapes
    /// - `embeddings`: `[N, D]`, `labels`: `[N]` in `0..C` -> scalar `[1]`
    pub fn forward(&self, embeddings: Tensor<2>, labels: &[i64]) -> Result<Tensor<1>> {
        let w = self.weight.val();
        let [dim, classes] = w.dims();
        check_inputs("ArcFaceLoss", &embeddings, labels, dim, classes)?;
        let onehot = one_hot(labels, classes, &embeddings);
        let cos = cosine_logits(embeddings, w);
        let target = (cos.clone() * onehot.clone()).sum_dim(1);
        let (sin_m, cos_m) = self.margin.sin_cos();
        // cos(theta + m) = cos(theta) cos(m) - sin(theta) sin(m), with sin(theta) >= 0.
        let sin_t = target
            .clone()
            .square()
            .neg()
            .add_scalar(1.0)
            .clamp_min(0.0)
            .sqrt();
        let plus_margin = target.clone().mul_scalar(cos_m) - sin_t.mul_scalar(sin_m);
        let fallback = target.clone().sub_scalar(self.margin * sin_m);
        // theta <= pi - m  <=>  cos(theta) >= -cos(m)
        let keep = target.clone().greater_equal_elem(-cos_m);
        let modified = fallback.mask_where(keep, plus_margin);
        let logits = (cos + onehot * (modified - target)).mul_scalar(self.scale);
        Ok(smoothed_cross_entropy(logits, labels, 0.0, 1.0))
    }
}

impl CosFaceLoss {
    /// # Shapes
    /// - `embeddings`: `[N, D]`, `labels`: `[N]` in `0..C` -> scalar `[1]`
    pub fn forward(&self, embeddings: Tensor<2>, labels: &[i64]) -> Result<Tensor<1>> {
        let w = self.weight.val();
        let [dim, classes] = w.dims();
        check_inputs("CosFaceLoss", &embeddings, labels, dim, classes)?;
        let onehot = one_hot(labels, classes, &embeddings);
        let cos = cosine_logits(embeddings, w);
        let logits = (cos - onehot.mul_scalar(self.margin)).mul_scalar(self.scale);
        Ok(smoothed_cross_entropy(logits, labels, 0.0, 1.0))
    }
}

impl NormSoftmaxLoss {
    /// # Shapes
    /// - `embeddings`: `[N, D]`, `labels`: `[N]` in `0..C` -> scalar `[1]`
    pub fn forward(&self, embeddings: Tensor<2>, labels: &[i64]) -> Result<Tensor<1>> {
        let w = self.weight.val();
        let [classes, dim] = w.dims();
        check_inputs("NormSoftmaxLoss", &embeddings, labels, dim, classes)?;
        let cos = cosine_logits(embeddings, w.transpose());
        Ok(smoothed_cross_entropy(
            cos,
            labels,
            self.label_smoothing,
            self.temperature,
        ))
    }
}

impl AmsLoss {
    /// # Shapes
    /// - `embeddings`: `[N, D]` (normalised by the model), `labels`: `[N]` in `0..C`
    ///   -> scalar `[1]`
    pub fn forward(&self, embeddings: Tensor<2>, labels: &[i64]) -> Result<Tensor<1>> {
        let w = self.weight.val();
        let [classes, dim] = w.dims();
        check_inputs("AmsLoss", &embeddings, labels, dim, classes)?;
        let onehot = one_hot(labels, classes, &embeddings);
        let z = embeddings.matmul(w.transpose()) + self.bias.val().unsqueeze_dim(0);
        let logits = (z - onehot.mul_scalar(self.margin)).mul_scalar(self.scale);
        Ok(smoothed_cross_entropy(logits, labels, 0.0, 1.0))
    }
}
