//! What the training loop needs from a model.

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor};

use metron_datasets::Batch;

use crate::Result;

/// The loss of one batch: the total that is differentiated, and named parts for the log.
#[derive(Debug, Clone)]
pub struct LossOutput {
    /// Scalar `[1]`.
    pub total: Tensor<1>,
    /// E.g. `("cross_entropy", ..)`, `("triplet", ..)`; scalars `[1]`.
    pub parts: Vec<(&'static str, Tensor<1>)>,
}

/// A model the loop can train: it computes its own loss from its own kind of batch (as
/// burn-train's `TrainStep`), so the loop stays the same for every system.
pub trait TrainModel: Module + 'static {
    /// What one step consumes ([`metron_datasets::ImageBatch`] for images with class labels;
    /// a system's own type for two views plus pair ids, images plus boxes, ...).
    type Batch: Batch;

    /// The loss of `batch`, computed on `device` (autodiff).
    fn loss(&self, batch: &Self::Batch, device: &Device) -> Result<LossOutput>;

    /// The loss of `batch` and its gradient for every parameter. The default differentiates
    /// [`TrainModel::loss`] in one backward pass; a model whose graph is too large to hold at
    /// once (an ensemble's learners) may compute the same gradients in pieces.
    fn loss_and_grads(
        &self,
        batch: &Self::Batch,
        device: &Device,
    ) -> Result<(LossOutput, GradientsParams)>
    where
        Self: Sized,
    {
        let out = self.loss(batch, device)?;
        let grads = GradientsParams::from_grads(out.total.backward(), self);
        Ok((out, grads))
    }

    /// The model as it trains epoch `epoch` (0-based), called before the epoch's first step:
    /// for losses and forward passes that change with the epoch (WGOL's `sos_start`,
    /// `sa_start`, `ram_start`). The default ignores it.
    fn at_epoch(self, epoch: usize) -> Self
    where
        Self: Sized,
    {
        let _ = epoch;
        self
    }

    /// The configuration that rebuilds this architecture, as `{"kind": .., "config": ..}`:
    /// stored in checkpoints so that `metron embed` and `metron search` find the system (by
    /// `kind`) and rebuild the model without other input.
    fn architecture(&self) -> serde_json::Value;
}

/// A model that maps images to retrieval embeddings (compared with cosine similarity).
pub trait EmbeddingModel: Module {
    /// # Shapes
    /// - `images`: `[B, 3, H, W]` -> `[B, D]`
    fn embed(&self, images: Tensor<4>) -> Tensor<2>;
}
