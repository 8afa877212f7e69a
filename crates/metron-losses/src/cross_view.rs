//! SAIG's cross-view losses between satellite and ground embeddings, `d_ij = 2 - 2 sat_i . grd_j`
//! (rows: satellite, columns: ground; row i of one view matches row i of the other).

use burn::tensor::Tensor;
use burn::tensor::activation::log_softmax;

use crate::Result;
use crate::batch::{bool_mask, check_batch, check_shape, float_mask};
use crate::logsumexp::softplus;
use crate::triplet::{gather_pairs, host_matrix};

fn pair_distances(sat: Tensor<2>, grd: Tensor<2>) -> Result<Tensor<2>> {
    check_batch("cross-view satellite", &sat, None)?;
    check_batch("cross-view ground", &grd, None)?;
    check_shape("cross-view ground", &grd, &sat.dims())?;
    Ok(sat.matmul(grd.transpose()).mul_scalar(-2.0).add_scalar(2.0))
}

/// SAIG's soft-margin weighted triplet (alpha 10): both anchor directions, every pair,
/// `1/2 [ sum_ij log(1 + e^{alpha (d_jj - d_ij)}) + sum_ij log(1 + e^{alpha (d_ii - d_ij)}) ] / (B (B - 1))`.
/// The diagonal terms (log 2 each, zero gradient) are kept, as in the original code.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SoftMarginTripletLoss {
    /// Scale of `d_pos - d_neg` inside the softplus; larger approaches a hard hinge at 0
    /// (SAIG default 10).
    pub alpha: f64,
}

impl Default for SoftMarginTripletLoss {
    fn default() -> Self {
        SoftMarginTripletLoss { alpha: 10.0 }
    }
}

impl SoftMarginTripletLoss {
    /// # Shapes
    /// - `sat`, `grd`: `[B, D]` -> scalar `[1]`
    pub fn forward(&self, sat: Tensor<2>, grd: Tensor<2>) -> Result<Tensor<1>> {
        let d = pair_distances(sat, grd)?;
        let b = d.dims()[0];
        let eye = float_mask(b, b, &d, |i, j| i == j);
        let pos = (d.clone() * eye).sum_dim(1); // d_ii as [B, 1]
        // Ground anchor j: positive d_jj (a row vector), negatives d_ij down column j.
        let ground = softplus((pos.clone().transpose() - d.clone()).mul_scalar(self.alpha));
        // Satellite anchor i: positive d_ii (a column vector), negatives d_ij along row i.
        let satellite = softplus((pos - d).mul_scalar(self.alpha));
        let norm = (b * b.saturating_sub(1)).max(1) as f64;
        Ok((ground.sum() + satellite.sum()).mul_scalar(1.0 / (2.0 * norm)))
    }
}

/// SAIG's cross-view InfoNCE (temperature 0.02): satellite row i scores its ground image
/// against all B ground images and the B - 1 other satellite images' scores with ground i,
/// `CE([S_i,: , S_:,i without S_ii] / t, target i)`, with `S = sat grd^T`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CrossViewInfoNce {
    /// Temperature dividing the similarities before the softmax (SAIG default 0.02).
    pub temperature: f64,
}

impl Default for CrossViewInfoNce {
    fn default() -> Self {
        CrossViewInfoNce { temperature: 0.02 }
    }
}

impl CrossViewInfoNce {
    /// # Shapes
    /// - `sat`, `grd`: `[B, D]` -> scalar `[1]`
    pub fn forward(&self, sat: Tensor<2>, grd: Tensor<2>) -> Result<Tensor<1>> {
        check_batch("CrossViewInfoNce satellite", &sat, None)?;
        check_batch("CrossViewInfoNce ground", &grd, None)?;
        check_shape("CrossViewInfoNce ground", &grd, &sat.dims())?;
        let s = sat
            .matmul(grd.transpose())
            .mul_scalar(1.0 / self.temperature);
        let b = s.dims()[0];
        let device = s.device();
        // The column part repeats the positive S_ii: drop it by pushing it out of the softmax.
        let diagonal = bool_mask(b, b, &device, |i, j| i == j);
        let column = s.clone().transpose().mask_fill(diagonal, -1e30);
        let s_like = s.clone();
        let logits = Tensor::cat(vec![s, column], 1);
        let logp = log_softmax(logits, 1);
        let target = float_mask(b, 2 * b, &s_like, |i, j| i == j);
        Ok((logp * target).sum().neg().mul_scalar(1.0 / (b as f64)))
    }
}

/// SAIG's `SemiSoftTriHard` (alpha 10): per anchor, the k = floor(sqrt(B)) closest negatives,
/// in both directions; `1/2 [mean softplus(alpha (d_pos - d_neg))_sat + mean (...)_grd]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SemiSoftTriHardLoss {
    /// Scale of `d_pos - d_neg` inside the softplus (SAIG default 10).
    pub alpha: f64,
}

impl Default for SemiSoftTriHardLoss {
    fn default() -> Self {
        SemiSoftTriHardLoss { alpha: 10.0 }
    }
}

/// Indices of the `k` smallest off-diagonal entries of each row of a row-major `[b, b]`
/// matrix (ties to the lower index).
fn hardest_off_diagonal(d: &[f32], b: usize, k: usize) -> Vec<Vec<usize>> {
    (0..b)
        .map(|i| {
            let mut js: Vec<usize> = (0..b).filter(|&j| j != i).collect();
            js.sort_by(|&x, &y| d[i * b + x].total_cmp(&d[i * b + y]).then(x.cmp(&y)));
            js.truncate(k);
            js
        })
        .collect()
}

impl SemiSoftTriHardLoss {
    /// # Shapes
    /// - `sat`, `grd`: `[B, D]`, B >= 2 -> scalar `[1]`
    pub fn forward(&self, sat: Tensor<2>, grd: Tensor<2>) -> Result<Tensor<1>> {
        let d = pair_distances(sat.clone(), grd)?;
        let b = d.dims()[0];
        if b < 2 {
            return Ok(crate::batch::zero_like_loss(&sat));
        }
        let k = ((b as f64).sqrt().floor() as usize).clamp(1, b - 1);
        let host = host_matrix(&d);
        let host_t: Vec<f32> = (0..b * b).map(|x| host[(x % b) * b + x / b]).collect();
        let direction = |m: Tensor<2>, host: &[f32]| -> Tensor<1> {
            let hard = hardest_off_diagonal(host, b, k);
            let rows: Vec<usize> = (0..b).flat_map(|i| std::iter::repeat_n(i, k)).collect();
            let cols: Vec<usize> = hard.into_iter().flatten().collect();
            let neg = gather_pairs(m.clone(), &rows, &cols);
            let pos = gather_pairs(m, &rows, &rows);
            softplus((pos - neg).mul_scalar(self.alpha)).mean()
        };
        let satellite = direction(d.clone(), &host);
        let ground = direction(d.transpose(), &host_t);
        Ok((satellite + ground).mul_scalar(1.0 / 2.0))
    }
}
