//! Checks and label masks shared by every loss.
//!
//! Labels live on the host: the sampler that built the batch produced them. Masks are built
//! there once and uploaded as 0/1 float tensors, which every backend multiplies the same way.

use burn::tensor::{Bool, DType, Device, FloatDType, Int, Tensor, TensorData};

use crate::{LossError, Result};

/// Fails on a wrong label count, an empty batch or non-finite values.
pub(crate) fn check_batch<const D: usize>(
    what: &'static str,
    x: &Tensor<D>,
    labels: Option<&[i64]>,
) -> Result<()> {
    let rows = x.dims()[0];
    if rows == 0 {
        return Err(LossError::EmptyBatch { what });
    }
    if let Some(labels) = labels
        && labels.len() != rows
    {
        return Err(LossError::LabelCount {
            what,
            labels: labels.len(),
            rows,
        });
    }
    check_finite(what, x)
}

pub(crate) fn check_finite<const D: usize>(what: &'static str, x: &Tensor<D>) -> Result<()> {
    let finite: bool = x.clone().is_finite().all().into_scalar::<bool>();
    if finite {
        Ok(())
    } else {
        Err(LossError::NonFinite { what })
    }
}

pub(crate) fn check_shape<const D: usize>(
    what: &'static str,
    x: &Tensor<D>,
    expected: &[usize],
) -> Result<()> {
    let got = x.dims().to_vec();
    if got != expected {
        return Err(LossError::Shape {
            what,
            expected: format!("{expected:?}"),
            got,
        });
    }
    Ok(())
}

/// A `[rows, cols]` 0/1 float tensor from a host predicate, on `like`'s device and in its
/// float type (so f64 inputs stay f64 throughout).
pub(crate) fn float_mask<const D: usize>(
    rows: usize,
    cols: usize,
    like: &Tensor<D>,
    f: impl Fn(usize, usize) -> bool,
) -> Tensor<2> {
    let data: Vec<f32> = (0..rows * cols)
        .map(|k| if f(k / cols, k % cols) { 1.0 } else { 0.0 })
        .collect();
    upload_mask(data, [rows, cols], like)
}

fn upload_mask<const D: usize>(data: Vec<f32>, shape: [usize; 2], like: &Tensor<D>) -> Tensor<2> {
    let mask = Tensor::<2>::from_data(TensorData::new(data, shape), &like.device());
    match like.dtype() {
        DType::F32 => mask,
        other => mask.cast(FloatDType::from(other)),
    }
}

/// `values` as a `[rows, cols]` tensor on `like`'s device in its float type (built in f64
/// only where `like` is f64: not every device has f64).
pub(crate) fn float_tensor<const D: usize>(
    values: Vec<f64>,
    shape: [usize; 2],
    like: &Tensor<D>,
) -> Tensor<2> {
    match like.dtype() {
        DType::F64 => {
            Tensor::<2>::from_data(TensorData::new(values, shape), (&like.device(), DType::F64))
        }
        _ => upload_mask(values.into_iter().map(|v| v as f32).collect(), shape, like),
    }
}

/// A `[rows, cols]` boolean tensor from a host predicate.
pub(crate) fn bool_mask(
    rows: usize,
    cols: usize,
    device: &Device,
    f: impl Fn(usize, usize) -> bool,
) -> Tensor<2, Bool> {
    let data: Vec<bool> = (0..rows * cols).map(|k| f(k / cols, k % cols)).collect();
    Tensor::from_data(TensorData::new(data, [rows, cols]), device)
}

/// Pairwise label relations of one batch: `positive` = same label, different row;
/// `negative` = different label.
pub(crate) struct LabelPairs {
    pub(crate) positive: Tensor<2>,
    pub(crate) negative: Tensor<2>,
    pub(crate) num_positive: usize,
}

impl LabelPairs {
    pub(crate) fn new<const D: usize>(labels: &[i64], like: &Tensor<D>) -> Self {
        let n = labels.len();
        let mut positive = vec![0.0f32; n * n];
        let mut negative = vec![0.0f32; n * n];
        let mut num_positive = 0;
        for (i, &li) in labels.iter().enumerate() {
            for (j, &lj) in labels.iter().enumerate() {
                if li != lj {
                    negative[i * n + j] = 1.0;
                } else if i != j {
                    positive[i * n + j] = 1.0;
                    num_positive += 1;
                }
            }
        }
        LabelPairs {
            positive: upload_mask(positive, [n, n], like),
            negative: upload_mask(negative, [n, n], like),
            num_positive,
        }
    }
}

/// Class indices as an Int tensor, checking `0 <= label < classes`.
pub(crate) fn class_indices(
    what: &'static str,
    labels: &[i64],
    classes: usize,
    device: &Device,
) -> Result<Tensor<1, Int>> {
    if let Some((row, &label)) = labels
        .iter()
        .enumerate()
        .find(|&(_, &l)| l < 0 || l as usize >= classes)
    {
        return Err(LossError::LabelOutOfRange {
            what,
            label,
            row,
            classes,
        });
    }
    Ok(Tensor::from_data(
        TensorData::new(labels.to_vec(), [labels.len()]),
        device,
    ))
}

/// `[n, classes]` one-hot float matrix of already-checked labels, like `like`.
pub(crate) fn one_hot<const D: usize>(
    labels: &[i64],
    classes: usize,
    like: &Tensor<D>,
) -> Tensor<2> {
    float_mask(labels.len(), classes, like, |i, c| labels[i] as usize == c)
}

/// A zero that is still connected to `x`'s graph, so `backward` works on a loss with no terms.
pub(crate) fn zero_like_loss<const D: usize>(x: &Tensor<D>) -> Tensor<1> {
    x.clone().sum().mul_scalar(0.0)
}
