//! Cross-entropy variants on logits: label smoothing with temperature (CGD) and the
//! meta-class ensemble cross entropy (AntiMetric).

use burn::tensor::Tensor;
use burn::tensor::activation::log_softmax;

use crate::Result;
use crate::batch::{check_batch, check_shape, class_indices, one_hot};

/// `mean_i sum_c -q_ic log softmax(logits_i / T)_c` with `q = (1 - eps) onehot + eps / C`.
pub(crate) fn smoothed_cross_entropy(
    logits: Tensor<2>,
    labels: &[i64],
    epsilon: f64,
    temperature: f64,
) -> Tensor<1> {
    let [n, classes] = logits.dims();
    let target = one_hot(labels, classes, &logits)
        .mul_scalar(1.0 - epsilon)
        .add_scalar(epsilon / classes as f64);
    let logp = log_softmax(logits.mul_scalar(1.0 / temperature), 1);
    (logp * target).sum().neg().mul_scalar(1.0 / (n as f64))
}

/// CGD's classification loss: cross entropy of `logits / T` with label smoothing `eps`
/// (defaults T = 0.5, eps = 0.1), i.e.
/// `mean_b [(1 - eps)(-log p_{b,y}) + eps * mean_c(-log p_{b,c})]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LabelSmoothingCrossEntropy {
    /// Label-smoothing mass spread uniformly over all classes, in `[0, 1]` (default 0.1).
    pub epsilon: f64,
    /// Temperature dividing the logits before the softmax (default 0.5).
    pub temperature: f64,
}

impl Default for LabelSmoothingCrossEntropy {
    fn default() -> Self {
        LabelSmoothingCrossEntropy {
            epsilon: 0.1,
            temperature: 0.5,
        }
    }
}

impl LabelSmoothingCrossEntropy {
    /// # Shapes
    /// - `logits`: `[N, C]`, `labels`: `[N]` in `0..C` -> scalar `[1]`
    pub fn forward(&self, logits: Tensor<2>, labels: &[i64]) -> Result<Tensor<1>> {
        check_batch("LabelSmoothingCrossEntropy", &logits, Some(labels))?;
        class_indices(
            "LabelSmoothingCrossEntropy",
            labels,
            logits.dims()[1],
            &logits.device(),
        )?;
        Ok(smoothed_cross_entropy(
            logits,
            labels,
            self.epsilon,
            self.temperature,
        ))
    }
}

/// AntiMetric's loss: every branch e of the ensemble classifies the sample into its own
/// meta-class `labels[b, e]`; cross entropy averaged over batch and branches.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct MetaClassCrossEntropy;

impl MetaClassCrossEntropy {
    /// # Shapes
    /// - `logits`: `[B, E, M]`; `labels`: row-major `[B, E]` (length B * E) in `0..M`
    ///   -> scalar `[1]`
    pub fn forward(&self, logits: Tensor<3>, labels: &[i64]) -> Result<Tensor<1>> {
        let [b, e, m] = logits.dims();
        check_batch("MetaClassCrossEntropy", &logits, None)?;
        if labels.len() != b * e {
            return Err(crate::LossError::LabelCount {
                what: "MetaClassCrossEntropy (B * E meta-labels)",
                labels: labels.len(),
                rows: b * e,
            });
        }
        let flat = logits.reshape([b * e, m]);
        check_shape("MetaClassCrossEntropy", &flat, &[b * e, m])?;
        class_indices("MetaClassCrossEntropy", labels, m, &flat.device())?;
        Ok(smoothed_cross_entropy(flat, labels, 0.0, 1.0))
    }
}
