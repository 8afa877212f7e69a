//! Seeded parameter initialisation: the same seed gives the same weights on every backend.

use burn::module::Param;
use burn::tensor::{Device, Tensor, TensorData};
use rand_distr::{Distribution, Normal};

/// A `[rows, cols]` parameter with i.i.d. `N(0, std^2)` entries drawn from `seed`.
pub(crate) fn normal_param(
    rows: usize,
    cols: usize,
    std: f64,
    seed: u64,
    device: &Device,
) -> Param<Tensor<2>> {
    let mut rng = metron_core::rng_from_seed(seed);
    let normal = Normal::new(0.0, std).expect("std is finite and positive");
    let data: Vec<f32> = (0..rows * cols)
        .map(|_| normal.sample(&mut rng) as f32)
        .collect();
    Param::from_tensor(Tensor::from_data(
        TensorData::new(data, [rows, cols]),
        device,
    ))
}
