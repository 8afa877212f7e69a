//! Proxy-Anchor loss (Kim et al. 2020) with learnable proxies.

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};

use crate::batch::{check_batch, class_indices, one_hot};
use crate::distance::l2_normalize;
use crate::logsumexp::masked_logsumexp;
use crate::{LossError, Result};

/// Configuration of [`ProxyAnchorLoss`]; defaults are the paper's (margin 0.1, alpha 32).
#[derive(Debug, Clone)]
pub struct ProxyAnchorLossConfig {
    /// Number of classes C: one proxy per class.
    pub num_classes: usize,
    /// Embedding size D of the proxies.
    pub embedding_dim: usize,
    /// Cosine margin `m` (default 0.1).
    pub margin: f64,
    /// Scale `alpha` of the cosines in the log-sum-exps (default 32).
    pub alpha: f64,
    /// Seed of the proxies' Kaiming-normal initialisation (fan-out mode, as
    /// pytorch-metric-learning).
    pub seed: u64,
}

impl ProxyAnchorLossConfig {
    /// C classes of D-dimensional embeddings with the paper's margin and alpha, seed 0.
    pub fn new(num_classes: usize, embedding_dim: usize) -> Self {
        ProxyAnchorLossConfig {
            num_classes,
            embedding_dim,
            margin: 0.1,
            alpha: 32.0,
            seed: 0,
        }
    }

    /// The loss with `[C, D]` proxies drawn `N(0, 2 / C)` from `seed` on `device`.
    pub fn init(&self, device: &Device) -> ProxyAnchorLoss {
        let std = (2.0 / self.num_classes as f64).sqrt();
        ProxyAnchorLoss {
            proxies: crate::init::normal_param(
                self.num_classes,
                self.embedding_dim,
                std,
                self.seed,
                device,
            ),
            margin: self.margin,
            alpha: self.alpha,
        }
    }
}

/// Proxy-Anchor loss:
///
/// ```text
/// sum_{c in C+} log(1 + sum_{i in P_c} e^{-alpha (cos_ic - m)}) / |C+|
///   + sum_c log(1 + sum_{i not in P_c} e^{alpha (cos_ic + m)}) / C
/// ```
///
/// where C+ are the classes present in the batch and cos is between embeddings and proxies.
#[derive(Module, Debug)]
pub struct ProxyAnchorLoss {
    /// `[C, D]`, one proxy per class (normalised inside the loss).
    pub proxies: Param<Tensor<2>>,
    /// Cosine margin `m`.
    pub margin: f64,
    /// Scale `alpha` of the cosines in the log-sum-exps.
    pub alpha: f64,
}

impl ProxyAnchorLoss {
    /// Uses the given proxies (e.g. loaded from a checkpoint).
    pub fn from_proxies(proxies: Tensor<2>, margin: f64, alpha: f64) -> Self {
        ProxyAnchorLoss {
            proxies: Param::from_tensor(proxies),
            margin,
            alpha,
        }
    }

    /// # Shapes
    /// - `embeddings`: `[N, D]`, `labels`: `[N]` in `0..C` -> scalar `[1]`
    pub fn forward(&self, embeddings: Tensor<2>, labels: &[i64]) -> Result<Tensor<1>> {
        check_batch("ProxyAnchorLoss", &embeddings, Some(labels))?;
        let proxies = self.proxies.val();
        let [classes, dim] = proxies.dims();
        if embeddings.dims()[1] != dim {
            return Err(LossError::Shape {
                what: "ProxyAnchorLoss embeddings",
                expected: format!("[N, {dim}]"),
                got: embeddings.dims().to_vec(),
            });
        }
        let device = embeddings.device();
        class_indices("ProxyAnchorLoss", labels, classes, &device)?;
        let present = {
            let mut seen = vec![false; classes];
            labels.iter().for_each(|&l| seen[l as usize] = true);
            seen.iter().filter(|&&s| s).count()
        };
        // Class-major [C, N] so that each proxy's sums run along dim 1.
        let pos_mask = one_hot(labels, classes, &embeddings).transpose();
        let cos = l2_normalize(proxies).matmul(l2_normalize(embeddings).transpose());
        let neg_mask = pos_mask.clone().neg().add_scalar(1.0);
        let pos = masked_logsumexp(
            cos.clone().sub_scalar(self.margin).mul_scalar(-self.alpha),
            pos_mask,
            true,
        );
        let neg = masked_logsumexp(
            cos.add_scalar(self.margin).mul_scalar(self.alpha),
            neg_mask,
            true,
        );
        Ok(pos.sum().mul_scalar(1.0 / (present as f64))
            + neg.sum().mul_scalar(1.0 / (classes as f64)))
    }
}
