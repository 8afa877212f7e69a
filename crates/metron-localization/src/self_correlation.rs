//! High-order self-correlation (HSC, spec s. 2.2): which locations of a feature map belong
//! together, the structure SPA localises with, SOS learns from and the self-attention is
//! biased by.

use burn::tensor::Tensor;
use burn::tensor::activation::relu;

/// Thresholds and order of [`self_correlation`]; the defaults are the original scripts'.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HscConfig {
    /// First-order cosines below this become 0 (`scg_fosc_th`, 0.2).
    pub first_order_threshold: f64,
    /// High-order entries below `high_order_threshold / (h w)` become 0 (`scg_sosc_th`, 1).
    pub high_order_threshold: f64,
    /// Power of the propagation matrix (`scg_order`, 2).
    pub order: usize,
    /// Weight of the high-order map against the first-order one in
    /// [`StructureCorrelation::structure_map`] (`scg_so_weight`, 1).
    pub high_order_weight: f64,
}

impl Default for HscConfig {
    fn default() -> Self {
        HscConfig {
            first_order_threshold: 0.2,
            high_order_threshold: 1.0,
            order: 2,
            high_order_weight: 1.0,
        }
    }
}

/// The two self-correlations of one stage's features, detached from the graph.
///
/// Entry `[b, i, j]` relates location `i` to location `j` (locations row-major, `i = y w + x`);
/// every column is normalised to sum to 1 (up to the original's epsilons).
#[derive(Debug, Clone)]
pub struct StructureCorrelation {
    /// First order `FO`: thresholded ReLU cosines, column-normalised.
    pub first: Tensor<3>,
    /// High order `SO`: the diagonal-free first order, column-normalised, raised to `order`
    /// with renormalisation after each product, small entries zeroed.
    pub high: Tensor<3>,
}

/// Column normalisation: each `[b, :, j]` divided by its sum plus `eps`.
fn column_normalized(a: Tensor<3>, eps: f64) -> Tensor<3> {
    let sums = a.clone().sum_dim(1).add_scalar(eps);
    a / sums
}

/// `a` with the entries below `threshold` set to 0.
fn zero_below(a: Tensor<3>, threshold: f64) -> Tensor<3> {
    let mask = a.clone().lower_elem(threshold);
    a.mask_fill(mask, 0.0)
}

/// The self-correlations of one stage (`hsc` in the original), computed without gradient.
///
/// The original first resizes non-14x14 features to 14x14; here the features are used at
/// their own size (the same thing at the original's 224-pixel input, and what keeps the map
/// aligned with the class map at any other input size).
///
/// # Shapes
/// - `features`: `[B, C, h, w]` -> `first`, `high`: `[B, h w, h w]`
pub fn self_correlation(features: Tensor<4>, config: &HscConfig) -> StructureCorrelation {
    let [b, c, h, w] = features.dims();
    let n = h * w;
    let device = features.device();
    let f = features.detach().reshape([b, c, n]).swap_dims(1, 2); // [B, n, C]
    let norms = f.clone().powi_scalar(2).sum_dim(2).sqrt().add_scalar(1e-10);
    let f = f / norms;
    let cosines = relu(f.clone().matmul(f.swap_dims(1, 2)));
    let a = zero_below(cosines, config.first_order_threshold);
    let first = column_normalized(a.clone(), 1e-5);

    let off_diagonal = Tensor::<2>::ones([n, n], &device)
        .sub(Tensor::eye(n, &device))
        .cast(a.dtype())
        .reshape([1, n, n]);
    let p = column_normalized(a * off_diagonal, 1e-5);
    let mut high = p.clone();
    for _ in 1..config.order {
        high = column_normalized(high.matmul(p.clone()), 1e-10);
    }
    let high = zero_below(high, config.high_order_threshold / n as f64);
    StructureCorrelation { first, high }
}

impl StructureCorrelation {
    /// One stage's structure map `colnorm(max(FO, weight SO))` (+1e-10), SPA's `S_s`.
    ///
    /// # Shapes
    /// -> `[B, n, n]`
    pub fn structure_map(&self, high_order_weight: f64) -> Tensor<3> {
        let mixed = self
            .first
            .clone()
            .max_pair(self.high.clone().mul_scalar(high_order_weight));
        column_normalized(mixed, 1e-10)
    }

    /// One stage's edge code `max(FO, SO)`, not renormalised (the self-attention's bias).
    pub fn edge(&self) -> Tensor<3> {
        self.first.clone().max_pair(self.high.clone())
    }
}

/// SPA's combined structure map `S = sum_s S_s` over the stages given (f4 and f5 in the
/// original).
///
/// # Shapes
/// - each stage `[B, n, n]` -> `[B, n, n]`
pub fn structure_map(stages: &[StructureCorrelation], high_order_weight: f64) -> Tensor<3> {
    stages
        .iter()
        .map(|s| s.structure_map(high_order_weight))
        .reduce(|a, b| a + b)
        .expect("structure_map needs at least one stage")
}

/// The self-attention's edge code `E = sum_s max(FO_s, SO_s)` (`cal_edge`), detached.
///
/// # Shapes
/// - each stage `[B, n, n]` -> `[B, n, n]`
pub fn edge_code(stages: &[StructureCorrelation]) -> Tensor<3> {
    stages
        .iter()
        .map(StructureCorrelation::edge)
        .reduce(|a, b| a + b)
        .expect("edge_code needs at least one stage")
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    fn features(device: &Device) -> Tensor<4> {
        // Three 2-d feature vectors on a 1 x 3 map: (1, 0), (1, 1), (0, 1).
        Tensor::from_data(
            TensorData::new(vec![1.0f32, 1.0, 0.0, 0.0, 1.0, 1.0], [1, 2, 1, 3]),
            device,
        )
    }

    #[test]
    fn first_and_high_order_by_hand() {
        let device = Device::flex();
        let s = self_correlation(
            features(&device),
            &HscConfig {
                first_order_threshold: 0.8,
                high_order_threshold: 1.0,
                order: 2,
                high_order_weight: 1.0,
            },
        );
        // Cosines: 1 on the diagonal, 1/sqrt(2) ~ 0.707 between neighbours, 0 between the
        // ends; a 0.8 threshold keeps the diagonal only, and the columns sum to 1 already.
        let first = s.first.into_data().try_into_vec_as::<f32>().unwrap();
        let eps = 1.0 / (1.0 + 1e-5);
        let want = [eps, 0.0, 0.0, 0.0, eps, 0.0, 0.0, 0.0, eps];
        for (g, w) in first.iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{first:?}");
        }
        // Without the diagonal nothing is left: the high order is all zero.
        let high = s.high.into_data().try_into_vec_as::<f32>().unwrap();
        assert!(high.iter().all(|&v| v == 0.0), "{high:?}");
    }

    #[test]
    fn high_order_propagates_along_the_chain() {
        let device = Device::flex();
        let s = self_correlation(features(&device), &HscConfig::default());
        // Off-diagonal cosines: c = 1/sqrt(2) between 0-1 and 1-2. Columns of P: column 0 =
        // (0, 1, 0), column 1 = (1/2, 0, 1/2), column 2 = (0, 1, 0). P^2 column 0 = P (0,1,0)
        // = column 1 of P = (1/2, 0, 1/2); column 1 = (0, 1, 0); column 2 = (1/2, 0, 1/2).
        // Entries below 1/3 are zeroed: all of these are 0 or >= 1/2.
        let high = s.high.into_data().try_into_vec_as::<f32>().unwrap();
        let want = [0.5f32, 0.0, 0.5, 0.0, 1.0, 0.0, 0.5, 0.0, 0.5];
        for (g, w) in high.iter().zip(want) {
            assert!((g - w).abs() < 1e-4, "{high:?}");
        }
    }
}
