//! Embedding a split with a model, and the raw-pixel baseline.

use std::sync::Arc;

use burn::tensor::{Device, Tensor, TensorData};
use ndarray::Array2;

use metron_datasets::{BatchLoader, ImageBatch, ImageSource, LoaderConfig, Pipeline};

use crate::{Bar, EmbeddingModel, Result, TrainError};

/// Embeddings of a list of samples, in sample order.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddedSplit {
    /// `[N, D]`, one row per sample that could be decoded.
    pub embeddings: Array2<f32>,
    /// Class label of each row.
    pub labels: Vec<i64>,
    /// Sample index of each row.
    pub indices: Vec<usize>,
    /// Images that were skipped as undecodable (only with `skip_corrupt`).
    pub skipped: Vec<(std::path::PathBuf, String)>,
}

/// A batch's images as a tensor on `device`, consuming the batch.
///
/// # Shapes
/// - `[B, 3, H, W]`
pub fn batch_tensor(batch: ImageBatch, device: &Device) -> Tensor<4> {
    Tensor::from_data(TensorData::new(batch.images, batch.shape), device)
}

/// [`batch_tensor`] of a borrowed batch (a loss computed twice, as SAM does, reads it twice).
pub fn batch_images(batch: &ImageBatch, device: &Device) -> Tensor<4> {
    Tensor::from_data(TensorData::new(batch.images.clone(), batch.shape), device)
}

fn contiguous_batches(n: usize, batch_size: usize) -> Vec<Vec<usize>> {
    (0..n)
        .step_by(batch_size.max(1))
        .map(|s| (s..(s + batch_size.max(1)).min(n)).collect())
        .collect()
}

fn collect_rows(
    samples: Arc<dyn ImageSource>,
    pipeline: Arc<Pipeline>,
    batch_size: usize,
    loader: LoaderConfig,
    bar: &Bar,
    mut rows: impl FnMut(ImageBatch) -> Result<Vec<f32>>,
) -> Result<EmbeddedSplit> {
    let expected = samples.len();
    let batches = contiguous_batches(expected, batch_size);
    let mut data = Vec::new();
    let (mut labels, mut indices, mut skipped) = (Vec::new(), Vec::new(), Vec::new());
    let mut dim = 0;
    for batch in BatchLoader::images(samples, batches, pipeline, 0, 0, loader) {
        let mut batch = batch?;
        let n = batch.len() + batch.skipped.len();
        skipped.append(&mut batch.skipped);
        labels.extend_from_slice(&batch.labels);
        indices.extend_from_slice(&batch.indices);
        if !batch.is_empty() {
            let len = batch.len();
            let out = rows(batch)?;
            dim = out.len() / len;
            data.extend(out);
        }
        bar.inc(n);
    }
    if labels.len() + skipped.len() != expected {
        return Err(TrainError::IncompleteData {
            what: "embedding".into(),
            got: labels.len() + skipped.len(),
            expected,
        });
    }
    let embeddings = Array2::from_shape_vec((labels.len(), dim), data)
        .map_err(|e| TrainError::Config(format!("embedding rows of unequal length: {e}")))?;
    Ok(EmbeddedSplit {
        embeddings,
        labels,
        indices,
        skipped,
    })
}

/// Embeds the images of `samples` (files, images in memory, generated ones; transformed by
/// `pipeline`, which should be deterministic) with `model` in evaluation mode on the plain
/// (non-autodiff) version of `device`.
pub fn embed_samples<M: EmbeddingModel>(
    model: &M,
    samples: Arc<dyn ImageSource>,
    pipeline: Arc<Pipeline>,
    batch_size: usize,
    loader: LoaderConfig,
    device: &Device,
    bar: &Bar,
) -> Result<EmbeddedSplit> {
    let model = model.valid();
    let device = device.clone().inner();
    embed_with(
        &|images| model.embed(images),
        samples,
        pipeline,
        batch_size,
        loader,
        &device,
        bar,
    )
}

/// [`embed_samples`] with any embedding function (e.g. a model loaded by kind from a
/// checkpoint, behind a trait object), run on `device` as given.
pub fn embed_with(
    embed: &dyn Fn(Tensor<4>) -> Tensor<2>,
    samples: Arc<dyn ImageSource>,
    pipeline: Arc<Pipeline>,
    batch_size: usize,
    loader: LoaderConfig,
    device: &Device,
    bar: &Bar,
) -> Result<EmbeddedSplit> {
    collect_rows(samples, pipeline, batch_size, loader, bar, |batch| {
        let e = embed(batch_tensor(batch, device));
        e.into_data()
            .try_into_vec_as::<f32>()
            .map_err(|e| TrainError::Config(format!("embedding readback: {e:?}")))
    })
}

/// The baseline every learned embedding must beat: the transformed image's pixels, flattened
/// (compared with cosine similarity like the learned embeddings).
pub fn pixel_embeddings(
    samples: Arc<dyn ImageSource>,
    pipeline: Arc<Pipeline>,
    batch_size: usize,
    loader: LoaderConfig,
    bar: &Bar,
) -> Result<EmbeddedSplit> {
    collect_rows(samples, pipeline, batch_size, loader, bar, |batch| {
        Ok(batch.images)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contiguous_batches_cover_every_index_once() {
        let b = contiguous_batches(7, 3);
        assert_eq!(b, vec![vec![0, 1, 2], vec![3, 4, 5], vec![6]]);
        assert!(contiguous_batches(0, 3).is_empty());
    }
}
