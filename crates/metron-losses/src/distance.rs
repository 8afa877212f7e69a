//! Pairwise distances and similarities between embedding rows.

use burn::tensor::Tensor;

/// How a loss compares two embeddings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Distance {
    /// Euclidean distance `|x - y|`, optionally of the L2-normalised vectors
    /// (pytorch-metric-learning's `LpDistance(p=2, power=1)`, whose default normalises).
    Euclidean { normalize: bool },
    /// Cosine similarity (higher is closer).
    Cosine,
    /// Raw inner product (higher is closer).
    DotProduct,
}

impl Default for Distance {
    /// pytorch-metric-learning's default for triplet and contrastive losses.
    fn default() -> Self {
        Distance::Euclidean { normalize: true }
    }
}

pub use metron_core::tensor::l2_normalize;

/// Euclidean distances between the rows of `x` and `y`.
///
/// The squared distance is clamped at 1e-12 before the square root so that the gradient at
/// a zero distance (an item against itself) is finite; such entries are masked out by every
/// loss, and a NaN would survive the masking.
///
/// # Shapes
/// - `x`: `[N, D]`, `y`: `[M, D]` -> `[N, M]`
pub fn euclidean(x: Tensor<2>, y: Tensor<2>) -> Tensor<2> {
    let xx = x.clone().square().sum_dim(1);
    let yy = y.clone().square().sum_dim(1).transpose();
    let xy = x.matmul(y.transpose());
    (xx + yy - xy.mul_scalar(2.0)).clamp_min(1e-12).sqrt()
}

impl Distance {
    /// Whether larger values mean closer (similarities) rather than farther (distances).
    pub fn is_similarity(&self) -> bool {
        !matches!(self, Distance::Euclidean { .. })
    }

    /// The `[N, M]` matrix between the rows of `x` and `y`.
    pub fn matrix(&self, x: Tensor<2>, y: Tensor<2>) -> Tensor<2> {
        match self {
            Distance::Euclidean { normalize: true } => euclidean(l2_normalize(x), l2_normalize(y)),
            Distance::Euclidean { normalize: false } => euclidean(x, y),
            Distance::Cosine => l2_normalize(x).matmul(l2_normalize(y).transpose()),
            Distance::DotProduct => x.matmul(y.transpose()),
        }
    }

    /// How far `a` falls short of beating `b` as a neighbour: `a - b` for distances, `b - a`
    /// for similarities (pytorch-metric-learning's `distance.margin`).
    pub fn margin<const D: usize>(&self, a: Tensor<D>, b: Tensor<D>) -> Tensor<D> {
        if self.is_similarity() { b - a } else { a - b }
    }
}
