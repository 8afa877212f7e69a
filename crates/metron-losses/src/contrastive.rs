//! pytorch-metric-learning's `ContrastiveLoss`.

use burn::tensor::Tensor;

use crate::batch::{LabelPairs, check_batch};
use crate::{Distance, Reducer, Result};

/// Positive pairs pay `relu(d - pos_margin)`, negative pairs `relu(neg_margin - d)`; each set
/// is reduced on its own (mean over non-zero by default) and the two are added.
#[derive(Debug, Clone, PartialEq)]
pub struct ContrastiveLoss {
    /// Distance below which a positive pair costs nothing (PML default 0); for a similarity,
    /// the similarity above which it costs nothing.
    pub pos_margin: f64,
    /// Distance beyond which a negative pair costs nothing (PML default 1); for a similarity,
    /// the similarity below which it costs nothing.
    pub neg_margin: f64,
    /// How embeddings are compared (default normalised Euclidean distance).
    pub distance: Distance,
    /// Reduction applied to the positive and to the negative terms separately (default mean
    /// over non-zero terms).
    pub reducer: Reducer,
}

impl Default for ContrastiveLoss {
    /// pytorch-metric-learning's defaults: margins 0 and 1, normalised Euclidean distance.
    fn default() -> Self {
        ContrastiveLoss {
            pos_margin: 0.0,
            neg_margin: 1.0,
            distance: Distance::default(),
            reducer: Reducer::MeanNonZero,
        }
    }
}

impl ContrastiveLoss {
    /// The given margins with the default distance and reducer.
    pub fn new(pos_margin: f64, neg_margin: f64) -> Self {
        ContrastiveLoss {
            pos_margin,
            neg_margin,
            ..Default::default()
        }
    }

    /// # Shapes
    /// - `embeddings`: `[N, D]`, `labels`: `[N]` -> scalar `[1]`
    pub fn forward(&self, embeddings: Tensor<2>, labels: &[i64]) -> Result<Tensor<1>> {
        check_batch("ContrastiveLoss", &embeddings, Some(labels))?;
        let pairs = LabelPairs::new(labels, &embeddings);
        let d = self.distance.matrix(embeddings.clone(), embeddings);
        let (pos, neg) = if self.distance.is_similarity() {
            (
                d.clone().neg().add_scalar(self.pos_margin),
                d.sub_scalar(self.neg_margin),
            )
        } else {
            (
                d.clone().sub_scalar(self.pos_margin),
                d.neg().add_scalar(self.neg_margin),
            )
        };
        let pos = pos.clamp_min(0.0) * pairs.positive.clone();
        let neg = neg.clamp_min(0.0) * pairs.negative.clone();
        Ok(self.reducer.reduce(pos, pairs.positive) + self.reducer.reduce(neg, pairs.negative))
    }
}
