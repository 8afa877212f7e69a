//! Numerically stable masked log-sum-exp, the core of the pair and proxy losses.

use burn::tensor::Tensor;

/// `log(sum_j mask_ij * exp(x_ij))` along dim 1, plus `exp(0)` inside the sum when
/// `add_one` (pytorch-metric-learning's `logsumexp(..., add_one=True)`). Rows with an empty
/// mask give `log(1) = 0` with `add_one`, and a very negative number without.
///
/// # Shapes
/// - `x`, `mask`: `[N, M]` -> `[N, 1]`
pub(crate) fn masked_logsumexp(x: Tensor<2>, mask: Tensor<2>, add_one: bool) -> Tensor<2> {
    // Masked-out entries are lowered far enough to vanish in exp but stay finite, so no
    // inf - inf appears in the backward pass.
    let lowered = x.clone() * mask.clone() + (mask.clone().neg().add_scalar(1.0)).mul_scalar(-1e30);
    let mut shift = lowered.clone().max_dim(1);
    if add_one {
        shift = shift.clamp_min(0.0);
    }
    let shift = shift.detach();
    let mut sum = ((lowered - shift.clone()).exp() * mask).sum_dim(1);
    if add_one {
        sum = sum + shift.clone().neg().exp();
    }
    // An empty row without `add_one` sums to 0: clamp so its log (and gradient) stay finite.
    sum.clamp_min(1e-30).log() + shift
}

/// `log(1 + e^x)`, computed as `max(x, 0) + log(1 + e^{-|x|})`: exact for every x (no
/// switch to the identity above a threshold, unlike `burn::tensor::activation::softplus`),
/// so values and gradients match the original code's `log(1 + exp(x))`.
pub(crate) fn softplus<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    x.clone().clamp_min(0.0) + x.abs().neg().exp().log1p()
}
