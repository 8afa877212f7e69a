//! What the training loop needs from a model.

use burn::module::Module;
use burn::tensor::Tensor;

use crate::Result;

/// The loss of one batch: the total that is differentiated, and named parts for the log.
#[derive(Debug, Clone)]
pub struct LossOutput {
    /// Scalar `[1]`.
    pub total: Tensor<1>,
    /// E.g. `("cross_entropy", ..)`, `("triplet", ..)`; scalars `[1]`.
    pub parts: Vec<(&'static str, Tensor<1>)>,
}

/// A model the loop can train and evaluate: it computes its own loss (as burn-train's
/// `TrainStep`), so the loop stays the same for every system.
pub trait TrainModel: Module + 'static {
    /// The loss of a batch of images with their class labels.
    ///
    /// # Shapes
    /// - `images`: `[B, 3, H, W]`, `labels`: `[B]`
    fn loss(&self, images: Tensor<4>, labels: &[i64]) -> Result<LossOutput>;

    /// Retrieval embeddings (compared with cosine similarity).
    ///
    /// # Shapes
    /// - `images`: `[B, 3, H, W]` -> `[B, D]`
    fn embed(&self, images: Tensor<4>) -> Tensor<2>;

    /// The configuration that rebuilds this architecture (stored in checkpoints so that
    /// `metron embed` and `metron search` can load them without other input).
    fn architecture(&self) -> serde_json::Value;
}
