//! SOS's pseudo ground truth (`get_scm`, spec s. 2.4): the ground-truth class's activation
//! spread along the structure map, normalised over the whole batch and cut into
//! foreground / uncertain / background.

use burn::tensor::activation::relu;
use burn::tensor::{Int, Tensor, TensorData};

use crate::{LocalizationError, Result};

/// How the normalised map becomes a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segmentation {
    /// Three classes: `>= fg` -> 1, `<= bg` -> 0, values in between kept (`TC`).
    Ternary,
    /// Two classes: `>= fg` -> 1, the rest 0 (`BC`).
    Binary,
}

/// Configuration of [`sos_target`]; defaults are the original scripts'.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SosTargetConfig {
    /// Foreground threshold (`sos_fg_th`, 0.2).
    pub foreground: f64,
    /// Background threshold (`sos_bg_th`, 0.1), used by [`Segmentation::Ternary`].
    pub background: f64,
    /// `sos_seg_method`.
    pub segmentation: Segmentation,
}

impl Default for SosTargetConfig {
    fn default() -> Self {
        SosTargetConfig {
            foreground: 0.2,
            background: 0.1,
            segmentation: Segmentation::Ternary,
        }
    }
}

/// Checks `labels` against a `[B, K, ..]` class map and returns them as an index tensor.
pub(crate) fn label_indices(
    what: &'static str,
    labels: &[i64],
    batch: usize,
    classes: usize,
    device: &burn::tensor::Device,
) -> Result<Tensor<1, Int>> {
    if labels.len() != batch {
        return Err(LocalizationError::Shape {
            what,
            why: format!("{} labels for a batch of {batch}", labels.len()),
        });
    }
    if let Some((sample, &label)) = labels
        .iter()
        .enumerate()
        .find(|(_, l)| **l < 0 || **l >= classes as i64)
    {
        return Err(LocalizationError::Label {
            what,
            sample,
            label,
            classes,
        });
    }
    Ok(Tensor::from_data(
        TensorData::new(labels.to_vec(), [batch]),
        device,
    ))
}

/// Each sample's map of its own class: `maps[b, labels[b]]`.
///
/// # Shapes
/// - `maps`: `[B, K, h, w]` -> `[B, h, w]`
pub(crate) fn class_map_of(maps: Tensor<4>, labels: Tensor<1, Int>) -> Tensor<3> {
    let [b, _, h, w] = maps.dims();
    let index = labels.reshape([b, 1, 1, 1]).expand([b, 1, h, w]);
    maps.gather(1, index).reshape([b, h, w])
}

/// Per-sample min-max over the last two axes: `(x - min) / (max - min + eps)`.
pub(crate) fn min_max_per_sample(x: Tensor<3>, eps: f64) -> Tensor<3> {
    let [b, h, w] = x.dims();
    let flat = x.reshape([b, h * w]);
    let min = flat.clone().min_dim(1);
    let max = flat.clone().max_dim(1);
    ((flat - min.clone()) / (max - min).add_scalar(eps)).reshape([b, h, w])
}

/// The SOS target, without gradient: `cam = minmax_b(ReLU(cls_maps[b, y_b]))` (per image),
/// `m = ReLU(vec(cam)^T S)`, min-max over the **whole batch** (the original's choice, kept:
/// a weak image's target is scaled by the strongest image of its batch), then segmented.
///
/// # Shapes
/// - `cls_maps`: `[B, K, h, w]`, `labels`: `[B]`, `structure`: `[B, h w, h w]` -> `[B, h, w]`
pub fn sos_target(
    cls_maps: Tensor<4>,
    labels: &[i64],
    structure: Tensor<3>,
    config: &SosTargetConfig,
) -> Result<Tensor<3>> {
    let [b, k, h, w] = cls_maps.dims();
    let n = h * w;
    if structure.dims() != [b, n, n] {
        return Err(LocalizationError::Shape {
            what: "sos_target structure map",
            why: format!(
                "{:?} for class maps {:?} (expected [{b}, {n}, {n}])",
                structure.dims(),
                [b, k, h, w]
            ),
        });
    }
    let device = cls_maps.device();
    let index = label_indices("sos_target", labels, b, k, &device)?;
    let cam = min_max_per_sample(class_map_of(relu(cls_maps.detach()), index), 1e-10);
    let spread = relu(cam.reshape([b, 1, n]).matmul(structure.detach()));
    let (min, max) = (spread.clone().min(), spread.clone().max());
    let m = (spread - min.clone().reshape([1, 1, 1]))
        / (max - min).add_scalar(1e-10).reshape([1, 1, 1]);
    let m = m.reshape([b, h, w]);
    let fg = m.clone().greater_equal_elem(config.foreground);
    Ok(match config.segmentation {
        Segmentation::Binary => m.zeros_like().mask_fill(fg, 1.0),
        Segmentation::Ternary => {
            let m = m.mask_fill(fg, 1.0);
            let bg = m.clone().lower_equal_elem(config.background);
            m.mask_fill(bg, 0.0)
        }
    })
}
