//! What the kernels' tests share.

use burn::tensor::Tensor;

/// The largest absolute difference between `a` and `b`, relative to `b`'s largest magnitude
/// (so entries near zero are judged at the scale of the whole tensor).
pub(crate) fn max_rel_diff<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> f64 {
    let scale = b.clone().abs().max().into_scalar::<f64>().max(1e-12);
    (a - b).abs().max().into_scalar::<f64>() / scale
}
