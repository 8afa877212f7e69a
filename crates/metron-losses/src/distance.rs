//! Pairwise distances and similarities between embedding rows.

use burn::tensor::Tensor;

/// How a loss compares two embeddings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Distance {
    /// Euclidean distance `|x - y|`, optionally of the L2-normalised vectors
    /// (pytorch-metric-learning's `LpDistance(p=2, power=1)`, whose default normalises).
    Euclidean {
        /// L2-normalise both sets of rows before measuring (PML default `true`).
        normalize: bool,
    },
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

pub use metron_core::l2_normalize;

/// Euclidean distances between the rows of `x` and `y`.
///
/// Exact where it matters for the losses: two bit-identical rows (an item against itself, or
/// a duplicated image) are at distance exactly 0, whatever the rounding of the
/// `|x|^2 + |y|^2 - 2 x.y` form, and a zero distance has a zero gradient (as `torch.cdist`'s)
/// rather than an infinite one. A clamp at a small epsilon instead would put duplicates at
/// ~1e-6 and count them as non-zero terms in mean-over-non-zero reductions.
///
/// # Shapes
/// - `x`: `[N, D]`, `y`: `[M, D]` -> `[N, M]`
pub fn euclidean(x: Tensor<2>, y: Tensor<2>) -> Tensor<2> {
    let identical = identical_rows(&x, &y);
    let xx = x.clone().square().sum_dim(1);
    let yy = y.clone().square().sum_dim(1).transpose();
    let xy = x.matmul(y.transpose());
    let mut squared = (xx + yy - xy.mul_scalar(2.0)).clamp_min(0.0);
    if let Some(identical) = identical {
        squared = squared * (identical.neg().add_scalar(1.0));
    }
    // sqrt(s + 1) * 0 where s == 0: the value 0 with a zero gradient; sqrt(s) elsewhere.
    // (s >= 0, so its sign is 0 or 1; sign keeps the float type, f64 stays f64.)
    let zero = squared.clone().sign().neg().add_scalar(1.0).detach();
    (squared + zero.clone()).sqrt() * zero.neg().add_scalar(1.0)
}

/// `[N, M]` 0/1 mask of the pairs of bit-identical rows of `x` and `y`, or `None` when there
/// is none. O((N + M) D) on the host: rows are grouped by their bytes.
fn identical_rows(x: &Tensor<2>, y: &Tensor<2>) -> Option<Tensor<2>> {
    let [n, _] = x.dims();
    let [m, _] = y.dims();
    let xd = x.clone().detach().into_data();
    let yd = y.clone().detach().into_data();
    /// The `count` equal-width rows of a row-major buffer (empty rows for zero columns).
    fn rows(bytes: &[u8], count: usize) -> impl Iterator<Item = &[u8]> {
        let width = bytes.len() / count.max(1);
        (0..count).map(move |r| &bytes[r * width..(r + 1) * width])
    }
    let mut ids = std::collections::HashMap::new();
    let x_ids: Vec<usize> = rows(xd.as_bytes(), n)
        .map(|r| {
            let next = ids.len();
            *ids.entry(r).or_insert(next)
        })
        .collect();
    let y_ids: Vec<Option<usize>> = rows(yd.as_bytes(), m)
        .map(|r| ids.get(r).copied())
        .collect();
    if !y_ids.iter().any(Option::is_some) {
        return None;
    }
    Some(crate::batch::float_mask(n, m, x, |i, j| {
        y_ids[j] == Some(x_ids[i])
    }))
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
