//! Small tensor helpers every model-side crate needs.

use burn::tensor::Tensor;

/// Rows divided by their L2 norm (norm clamped at 1e-12, as `torch.nn.functional.normalize`).
///
/// # Shapes
/// - `x`: `[N, D]` -> `[N, D]`
pub fn l2_normalize(x: Tensor<2>) -> Tensor<2> {
    let norm = x.clone().square().sum_dim(1).sqrt().clamp_min(1e-12);
    x / norm
}
