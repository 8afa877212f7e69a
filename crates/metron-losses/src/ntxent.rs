//! NT-Xent / InfoNCE over labels (pytorch-metric-learning's `NTXentLoss`).

use burn::tensor::Tensor;

use crate::Result;
use crate::batch::{LabelPairs, check_batch, zero_like_loss};
use crate::distance::l2_normalize;
use crate::logsumexp::masked_logsumexp;

/// For every ordered positive pair (a, p):
/// `-log(e^{s_ap/t} / (e^{s_ap/t} + sum_{n: y_n != y_a} e^{s_an/t}))`, averaged over the
/// pairs; `s` is cosine similarity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NtXentLoss {
    /// Temperature `t` dividing the cosine similarities (PML default 0.07).
    pub temperature: f64,
}

impl Default for NtXentLoss {
    fn default() -> Self {
        NtXentLoss { temperature: 0.07 }
    }
}

impl NtXentLoss {
    /// A loss with the given temperature.
    pub fn new(temperature: f64) -> Self {
        NtXentLoss { temperature }
    }

    /// # Shapes
    /// - `embeddings`: `[N, D]`, `labels`: `[N]` -> scalar `[1]`
    pub fn forward(&self, embeddings: Tensor<2>, labels: &[i64]) -> Result<Tensor<1>> {
        check_batch("NtXentLoss", &embeddings, Some(labels))?;
        let pairs = LabelPairs::new(labels, &embeddings);
        if pairs.num_positive == 0 {
            return Ok(zero_like_loss(&embeddings));
        }
        let x = l2_normalize(embeddings);
        let s = x
            .clone()
            .matmul(x.transpose())
            .mul_scalar(1.0 / self.temperature);
        // log of the negatives' sum per anchor, then log(e^{s_ap} + e^{neg}) per pair.
        let neg = masked_logsumexp(s.clone(), pairs.negative, false);
        let n = s.dims()[0];
        let neg = neg.expand([n, n]);
        let m = s.clone().max_pair(neg.clone()).detach();
        let denom = ((s.clone() - m.clone()).exp() + (neg - m.clone()).exp()).log() + m;
        let terms = (denom - s) * pairs.positive.clone();
        Ok(terms.sum().mul_scalar(1.0 / (pairs.num_positive as f64)))
    }
}
