//! Multi-Similarity loss (Wang et al. 2019), as pytorch-metric-learning computes it.

use burn::tensor::Tensor;

use crate::Result;
use crate::batch::{LabelPairs, check_batch};
use crate::distance::l2_normalize;
use crate::logsumexp::masked_logsumexp;

/// Per anchor i, with cosine similarity s:
/// `(1/alpha) log(1 + sum_p e^{-alpha (s_ip - base)}) + (1/beta) log(1 + sum_n e^{beta (s_in - base)})`,
/// averaged over all anchors (an anchor without positives contributes only its negative term).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MultiSimilarityLoss {
    pub alpha: f64,
    pub beta: f64,
    pub base: f64,
}

impl Default for MultiSimilarityLoss {
    fn default() -> Self {
        MultiSimilarityLoss {
            alpha: 2.0,
            beta: 50.0,
            base: 0.5,
        }
    }
}

impl MultiSimilarityLoss {
    /// # Shapes
    /// - `embeddings`: `[N, D]`, `labels`: `[N]` -> scalar `[1]`
    pub fn forward(&self, embeddings: Tensor<2>, labels: &[i64]) -> Result<Tensor<1>> {
        check_batch("MultiSimilarityLoss", &embeddings, Some(labels))?;
        let pairs = LabelPairs::new(labels, &embeddings);
        let x = l2_normalize(embeddings);
        let s = x.clone().matmul(x.transpose());
        let pos = masked_logsumexp(
            s.clone().sub_scalar(self.base).mul_scalar(-self.alpha),
            pairs.positive,
            true,
        )
        .mul_scalar(1.0 / self.alpha);
        let neg = masked_logsumexp(
            s.sub_scalar(self.base).mul_scalar(self.beta),
            pairs.negative,
            true,
        )
        .mul_scalar(1.0 / self.beta);
        Ok((pos + neg).mean())
    }
}
