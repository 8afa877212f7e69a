//! Multi-Similarity loss (Wang et al. 2019), as pytorch-metric-learning computes it.

use std::sync::Arc;

use burn::tensor::Tensor;

use crate::Result;
use crate::batch::{LabelPairs, check_batch, float_mask};
use crate::distance::l2_normalize;
use crate::logsumexp::masked_logsumexp;
use crate::miner::{Miner, MinerInput};
use crate::{Distance, triplet::host_matrix};

/// Per anchor i, with cosine similarity s:
/// `(1/alpha) log(1 + sum_p e^{-alpha (s_ip - base)}) + (1/beta) log(1 + sum_n e^{beta (s_in - base)})`,
/// averaged over all anchors (an anchor without positives contributes only its negative term).
/// Over every pair by default, or over the pairs a miner keeps
/// (`MultiSimilarityLoss::default().with_miner(MultiSimilarityMiner::new(0.1))`, the paper's
/// pairing).
#[derive(Debug, Clone)]
pub struct MultiSimilarityLoss {
    /// Sharpness of the positive term (PML default 2).
    pub alpha: f64,
    /// Sharpness of the negative term (PML default 50).
    pub beta: f64,
    /// Similarity offset `base` (the paper's lambda) both terms are measured from (PML default
    /// 0.5).
    pub base: f64,
    /// Miner choosing the pairs; `None` (the default) uses every pair.
    pub miner: Option<Arc<dyn Miner>>,
}

impl Default for MultiSimilarityLoss {
    fn default() -> Self {
        MultiSimilarityLoss {
            alpha: 2.0,
            beta: 50.0,
            base: 0.5,
            miner: None,
        }
    }
}

impl MultiSimilarityLoss {
    /// Uses only the pairs `miner` keeps (triplets count as their two pairs). Unlike
    /// pytorch-metric-learning, which returns 0 whenever at most one pair of each kind is
    /// mined, the loss of those pairs is computed.
    pub fn with_miner(mut self, miner: impl Miner + 'static) -> Self {
        self.miner = Some(Arc::new(miner));
        self
    }

    /// # Shapes
    /// - `embeddings`: `[N, D]`, `labels`: `[N]` -> scalar `[1]`
    pub fn forward(&self, embeddings: Tensor<2>, labels: &[i64]) -> Result<Tensor<1>> {
        check_batch("MultiSimilarityLoss", &embeddings, Some(labels))?;
        let n = labels.len();
        let x = l2_normalize(embeddings.clone());
        let s = x.clone().matmul(x.transpose());
        let (positive, negative) = match &self.miner {
            None => {
                let pairs = LabelPairs::new(labels, &embeddings);
                (pairs.positive, pairs.negative)
            }
            Some(miner) => {
                let host = host_matrix(&s);
                let pairs = miner
                    .mine(&MinerInput {
                        matrix: &host,
                        labels,
                        ref_labels: labels,
                        distance: Distance::Cosine,
                        same_set: true,
                    })
                    .into_pairs();
                let mut pos = vec![false; n * n];
                let mut neg = vec![false; n * n];
                for (&a, &p) in pairs.anchors_pos.iter().zip(&pairs.positives) {
                    pos[a * n + p] = true;
                }
                for (&a, &m) in pairs.anchors_neg.iter().zip(&pairs.negatives) {
                    neg[a * n + m] = true;
                }
                (
                    float_mask(n, n, &embeddings, |i, j| pos[i * n + j]),
                    float_mask(n, n, &embeddings, |i, j| neg[i * n + j]),
                )
            }
        };
        let pos = masked_logsumexp(
            s.clone().sub_scalar(self.base).mul_scalar(-self.alpha),
            positive,
            true,
        )
        .mul_scalar(1.0 / self.alpha);
        let neg = masked_logsumexp(
            s.sub_scalar(self.base).mul_scalar(self.beta),
            negative,
            true,
        )
        .mul_scalar(1.0 / self.beta);
        Ok((pos + neg).mean())
    }
}
