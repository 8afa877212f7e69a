//! Metric-learning losses on Burn autodiff tensors, on any device.
//!
//! Every loss takes `(embeddings [N, D], labels [N])` (cross-view losses take the two views'
//! `[B, D]` embeddings, row i of one matching row i of the other; classification losses take
//! logits) and returns a scalar `[1]` tensor to call `backward` on. A loss is a distance or
//! similarity ([`Distance`]), a choice of tuples ([`TripletSelection`], or any [`Miner`] as in
//! pytorch-metric-learning) and a [`Reducer`]:
//!
//! ```
//! use burn::tensor::{Tensor, TensorData};
//! use metron_losses::{TripletMarginLoss, TripletSelection};
//! let device = metron_core::parse_device("cpu").unwrap().autodiff();
//! let x = Tensor::<2>::from_data(
//!     TensorData::new(vec![1.0f32, 0.0, 0.9, 0.1, 0.0, 1.0, 0.1, 0.9], [4, 2]),
//!     &device,
//! ).require_grad();
//! let loss = TripletMarginLoss::new(0.2)
//!     .with_selection(TripletSelection::BatchHard)
//!     .forward(x.clone(), &[0, 0, 1, 1])
//!     .unwrap();
//! let grads = loss.backward();
//! assert!(x.grad(&grads).is_some());
//! ```
//!
//! Labels are host slices: the sampler that built the batch has them, and miners read them
//! there. Degenerate batches (no positive pair, one class, one item) give a loss of 0 with a
//! zero gradient; wrong label counts, NaN/Inf inputs and malformed layouts are errors.

#![warn(missing_docs)]

mod batch;
mod contrastive;
mod cross_entropy;
mod cross_view;
mod distance;
mod error;
mod init;
mod logsumexp;
mod margin_softmax;
mod miner;
mod multi_similarity;
mod ntxent;
mod proxy_anchor;
mod reducer;
mod smooth_ap;
mod triplet;

pub use contrastive::ContrastiveLoss;
pub use cross_entropy::{LabelSmoothingCrossEntropy, MetaClassCrossEntropy};
pub use cross_view::{CrossViewInfoNce, SemiSoftTriHardLoss, SoftMarginTripletLoss};
pub use distance::{Distance, euclidean, l2_normalize};
pub use error::{LossError, Result};
pub use margin_softmax::{
    AmsLoss, ArcFaceLoss, ClassifierLossConfig, CosFaceLoss, NormSoftmaxLoss,
};
pub use miner::{
    BatchAllMiner, BatchHardMiner, FaceNetSemiHardMiner, Miner, MinerInput, MultiSimilarityMiner,
    Pairs, TripletSelection, Triplets, Tuples,
};
pub use multi_similarity::MultiSimilarityLoss;
pub use ntxent::NtXentLoss;
pub use proxy_anchor::{ProxyAnchorLoss, ProxyAnchorLossConfig};
pub use reducer::Reducer;
pub use smooth_ap::SmoothApLoss;
pub use triplet::TripletMarginLoss;

// Note for contributors: write `x.mul_scalar(1.0 / t)`, not `x.div_scalar(t)`. In Burn 0.22
// the backward pass of `div_scalar` uses an f32 reciprocal of the scalar (measured: 1e-8
// relative error of f64 gradients), while `mul_scalar` keeps it exact.
