//! Reducers turn per-term losses into the scalar that is differentiated.

use burn::tensor::Tensor;

/// How per-term losses become one scalar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reducer {
    /// Mean over all terms.
    Mean,
    /// Mean over the terms that are > 0 (pytorch-metric-learning's `AvgNonZeroReducer`, the
    /// default of its triplet and contrastive losses); 0 when none is.
    #[default]
    MeanNonZero,
    /// Plain sum.
    Sum,
}

impl Reducer {
    /// Reduces `terms` where `valid` (0/1, same shape) marks the terms that exist; invalid
    /// entries must already be 0 in `terms`.
    pub fn reduce<const D: usize>(&self, terms: Tensor<D>, valid: Tensor<D>) -> Tensor<1> {
        match self {
            Reducer::Sum => terms.sum(),
            Reducer::Mean => terms.sum() / valid.sum().clamp_min(1.0),
            Reducer::MeanNonZero => {
                // 1 where a term is > 0, in the terms' own float type.
                let nonzero = terms.clone().sign().clamp_min(0.0).detach();
                terms.sum() / nonzero.sum().clamp_min(1.0)
            }
        }
    }
}
