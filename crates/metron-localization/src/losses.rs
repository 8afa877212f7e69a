//! WGOL's two localisation losses (spec s. 2.4): SOS's binary cross entropy against its
//! pseudo ground truth, and the RA loss that pushes the class map toward the regions where
//! the class distribution is peaked.

use burn::tensor::Tensor;
use burn::tensor::activation::{relu, sigmoid, softmax};

use crate::sos_target::{class_map_of, label_indices, min_max_per_sample};
use crate::{LocalizationError, Result};

/// `mean(max(x, 0) - x t + log(1 + exp(-|x|)))`, PyTorch's
/// `binary_cross_entropy_with_logits` with mean reduction (the numerically stable form).
///
/// # Shapes
/// - `logits`, `targets`: `[B, h, w]` -> `[1]`
pub fn sos_bce_loss(logits: Tensor<3>, targets: Tensor<3>) -> Result<Tensor<1>> {
    if logits.dims() != targets.dims() {
        return Err(LocalizationError::Shape {
            what: "sos_bce_loss",
            why: format!("logits {:?}, targets {:?}", logits.dims(), targets.dims()),
        });
    }
    let softplus = logits.clone().abs().neg().exp().log1p();
    Ok((relu(logits.clone()) - logits * targets.detach() + softplus).mean())
}

/// The RA loss's thresholds; defaults are the original scripts'.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RaLossConfig {
    /// Locations whose normalised class variance is below this are background
    /// (`ram_th_bg`, 0.1).
    pub background: f64,
    /// Foreground starts `gap` above the background threshold (`ram_bg_fg_gap`, 0.2).
    pub gap: f64,
}

impl Default for RaLossConfig {
    fn default() -> Self {
        RaLossConfig {
            background: 0.1,
            gap: 0.2,
        }
    }
}

/// `mean(s bg + (1 - s) fg)` with `s = sigmoid(cls_maps[b, y_b])` and the masks from the
/// per-image min-max-normalised unbiased variance of the softmax over classes (`get_ra_loss`).
/// Gradients flow through `s` only (the masks are comparisons).
///
/// # Shapes
/// - `cls_maps`: `[B, K, h, w]`, `labels`: `[B]` -> `[1]`
pub fn ra_loss(cls_maps: Tensor<4>, labels: &[i64], config: &RaLossConfig) -> Result<Tensor<1>> {
    let [b, k, h, w] = cls_maps.dims();
    if k < 2 {
        return Err(LocalizationError::Shape {
            what: "ra_loss",
            why: format!("{k} class map(s): the variance over classes needs at least 2"),
        });
    }
    let index = label_indices("ra_loss", labels, b, k, &cls_maps.device())?;
    let p = softmax(cls_maps.clone().detach(), 1);
    let variance = p.var(1).reshape([b, h, w]);
    let v = min_max_per_sample(variance, 1e-15);
    let zeros = v.zeros_like();
    let bg = zeros
        .clone()
        .mask_fill(v.clone().lower_elem(config.background), 1.0);
    let fg = zeros.mask_fill(v.greater_elem(config.background + config.gap), 1.0);
    let s = sigmoid(class_map_of(cls_maps, index));
    Ok((s.clone() * bg + s.neg().add_scalar(1.0) * fg).mean())
}
