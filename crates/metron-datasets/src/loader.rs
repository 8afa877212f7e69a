//! Batches of decoded, transformed images: decoded in parallel (rayon), produced ahead of the
//! consumer by a background thread with a bounded queue.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, sync_channel};
use std::thread::JoinHandle;

use rayon::prelude::*;

use metron_core::{rng_from_seed, split_seed};

use crate::{DatasetError, Pipeline, Result, Sample};

/// A batch ready for a network: `images` is `[len, 3, height, width]` row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageBatch {
    pub images: Vec<f32>,
    /// `[batch, 3, height, width]`.
    pub shape: [usize; 4],
    pub labels: Vec<i64>,
    /// Dataset indices of the images, in batch order.
    pub indices: Vec<usize>,
    /// Images left out because they could not be decoded (only with
    /// [`LoaderConfig::skip_corrupt`]): path and reason.
    pub skipped: Vec<(PathBuf, String)>,
}

impl ImageBatch {
    pub fn len(&self) -> usize {
        self.shape[0]
    }

    pub fn is_empty(&self) -> bool {
        self.shape[0] == 0
    }
}

/// How a [`BatchLoader`] works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoaderConfig {
    /// Batches decoded ahead of the consumer (memory bound: `prefetch + 1` batches in flight).
    pub prefetch: usize,
    /// Leave undecodable images out of their batch and report them in
    /// [`ImageBatch::skipped`], instead of failing. Off by default: a corrupt file usually means
    /// a broken download that should be fixed, not silently trained around.
    pub skip_corrupt: bool,
}

impl Default for LoaderConfig {
    fn default() -> Self {
        LoaderConfig {
            prefetch: 2,
            skip_corrupt: false,
        }
    }
}

/// The random stream of the image at `position` of epoch `epoch`: a pure function, so a resumed
/// run sees the same augmentation as an uninterrupted one.
pub fn augmentation_seed(seed: u64, epoch: u64, position: u64) -> u64 {
    split_seed(split_seed(seed, epoch), position)
}

fn load_rgb(path: &Path) -> Result<image::RgbImage> {
    let bytes = std::fs::read(path).map_err(|e| DatasetError::io(path, e))?;
    let img = image::load_from_memory(&bytes).map_err(|e| DatasetError::Image {
        path: path.to_path_buf(),
        why: e.to_string(),
    })?;
    Ok(img.to_rgb8())
}

/// Decodes and transforms `indices` of `samples` in parallel. Image `i` of the batch uses the
/// random stream `seeds[i]`.
pub fn decode_batch(
    samples: &[Sample],
    indices: &[usize],
    seeds: &[u64],
    pipeline: &Pipeline,
    skip_corrupt: bool,
) -> Result<ImageBatch> {
    let decoded: Vec<Result<(Vec<f32>, [u32; 2])>> = indices
        .par_iter()
        .zip(seeds.par_iter())
        .map(|(&i, &seed)| {
            let sample = samples.get(i).ok_or_else(|| DatasetError::Layout {
                path: PathBuf::from("<batch>"),
                what: format!(
                    "index {i} is past the {} samples of the split",
                    samples.len()
                ),
            })?;
            let img = load_rgb(&sample.path)?;
            Ok(pipeline.apply(img, sample.bbox, &mut rng_from_seed(seed)))
        })
        .collect();
    let mut batch = ImageBatch {
        images: Vec::new(),
        shape: [0, 3, 0, 0],
        labels: Vec::with_capacity(indices.len()),
        indices: Vec::with_capacity(indices.len()),
        skipped: Vec::new(),
    };
    for (&i, result) in indices.iter().zip(decoded) {
        let (pixels, [h, w]) = match result {
            Ok(v) => v,
            Err(DatasetError::Image { path, why }) if skip_corrupt => {
                batch.skipped.push((path, why));
                continue;
            }
            Err(e) => return Err(e),
        };
        let (h, w) = (h as usize, w as usize);
        if batch.shape[0] == 0 {
            batch.shape[2] = h;
            batch.shape[3] = w;
            batch.images.reserve(indices.len() * 3 * h * w);
        } else if [h, w] != [batch.shape[2], batch.shape[3]] {
            return Err(DatasetError::Layout {
                path: samples[i].path.clone(),
                what: format!(
                    "transformed to {h} x {w} but the batch is {} x {}: end the pipeline with a \
                     resize or crop to a fixed size",
                    batch.shape[2], batch.shape[3]
                ),
            });
        }
        batch.images.extend_from_slice(&pixels);
        batch.labels.push(samples[i].label as i64);
        batch.indices.push(i);
        batch.shape[0] += 1;
    }
    Ok(batch)
}

/// An iterator over the batches of one epoch, decoded on a background thread up to
/// [`LoaderConfig::prefetch`] batches ahead. Dropping it stops the thread.
#[derive(Debug)]
pub struct BatchLoader {
    receiver: Option<Receiver<Result<ImageBatch>>>,
    worker: Option<JoinHandle<()>>,
    remaining: usize,
    expected: usize,
}

impl BatchLoader {
    pub fn new(
        samples: Arc<Vec<Sample>>,
        batches: Vec<Vec<usize>>,
        pipeline: Arc<Pipeline>,
        seed: u64,
        epoch: u64,
        config: LoaderConfig,
    ) -> Self {
        let remaining = batches.len();
        let (tx, rx) = sync_channel(config.prefetch.max(1));
        let worker = std::thread::spawn(move || {
            let mut position = 0u64;
            for indices in batches {
                let seeds: Vec<u64> = (0..indices.len() as u64)
                    .map(|k| augmentation_seed(seed, epoch, position + k))
                    .collect();
                position += indices.len() as u64;
                let batch =
                    decode_batch(&samples, &indices, &seeds, &pipeline, config.skip_corrupt);
                let failed = batch.is_err();
                if tx.send(batch).is_err() || failed {
                    return;
                }
            }
        });
        BatchLoader {
            receiver: Some(rx),
            worker: Some(worker),
            remaining,
            expected: remaining,
        }
    }

    pub fn remaining(&self) -> usize {
        self.remaining
    }

    /// Why the worker hung up early: its panic message when it panicked.
    fn worker_failure(&mut self) -> DatasetError {
        let why = match self.worker.take().map(JoinHandle::join) {
            Some(Err(payload)) => {
                let message = payload
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "no message".into());
                format!("the decoding thread panicked: {message}")
            }
            _ => "the decoding thread ended early".into(),
        };
        DatasetError::LoaderStopped {
            delivered: self.expected - self.remaining,
            expected: self.expected,
            why,
        }
    }
}

impl Iterator for BatchLoader {
    type Item = Result<ImageBatch>;

    /// Every batch in order; an error ends the sequence. A worker that stops before the last
    /// batch is an error, never a silently shorter epoch.
    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        let item = match self.receiver.as_ref()?.recv() {
            Ok(item) => item,
            Err(_) => Err(self.worker_failure()),
        };
        self.remaining = if item.is_err() { 0 } else { self.remaining - 1 };
        Some(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.remaining))
    }
}

impl Drop for BatchLoader {
    fn drop(&mut self) {
        // Closing the queue first makes a worker blocked on a full queue return.
        self.receiver.take();
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Transform;
    use image::{Rgb, RgbImage};

    fn write_images(dir: &Path, n: usize) -> Vec<Sample> {
        (0..n)
            .map(|i| {
                let path = dir.join(format!("{i}.png"));
                RgbImage::from_fn(10 + i as u32, 8, |x, y| {
                    Rgb([i as u8 * 10, x as u8, y as u8])
                })
                .save(&path)
                .unwrap();
                Sample {
                    path,
                    label: i % 3,
                    bbox: None,
                }
            })
            .collect()
    }

    fn pipeline() -> Pipeline {
        Pipeline::new(vec![
            Transform::RandomCrop { size: [6, 6] },
            Transform::HorizontalFlip { p: 0.5 },
        ])
        .with_normalization([0.0; 3], [1.0; 3])
    }

    #[test]
    fn batches_hold_the_requested_images_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let samples = write_images(dir.path(), 5);
        let b = decode_batch(&samples, &[4, 1], &[1, 2], &pipeline(), false).unwrap();
        assert_eq!(b.shape, [2, 3, 6, 6]);
        assert_eq!(b.labels, vec![1, 1]);
        assert_eq!(b.indices, vec![4, 1]);
        // Red channel of image i is the constant 10 i / 255.
        assert!((b.images[0] - 40.0 / 255.0).abs() < 1e-6);
        assert!((b.images[3 * 36] - 10.0 / 255.0).abs() < 1e-6);
    }

    #[test]
    fn the_loader_yields_every_batch_and_is_reproducible() {
        let dir = tempfile::tempdir().unwrap();
        let samples = Arc::new(write_images(dir.path(), 6));
        let batches = vec![vec![0, 1], vec![2, 3], vec![4, 5]];
        let run = |seed| {
            BatchLoader::new(
                samples.clone(),
                batches.clone(),
                Arc::new(pipeline()),
                seed,
                3,
                LoaderConfig::default(),
            )
            .collect::<Result<Vec<_>>>()
            .unwrap()
        };
        let a = run(9);
        assert_eq!(a.len(), 3);
        assert_eq!(a, run(9));
        assert_ne!(a, run(10));
        // The stream of position p is independent of how the epoch is cut into batches.
        let whole = decode_batch(
            &samples,
            &[0, 1, 2, 3, 4, 5],
            &(0..6)
                .map(|p| augmentation_seed(9, 3, p))
                .collect::<Vec<_>>(),
            &pipeline(),
            false,
        )
        .unwrap();
        let joined: Vec<f32> = a.iter().flat_map(|b| b.images.clone()).collect();
        assert_eq!(joined, whole.images);
    }

    #[test]
    fn a_corrupt_image_is_an_error_naming_it_or_skipped_on_request() {
        let dir = tempfile::tempdir().unwrap();
        let mut samples = write_images(dir.path(), 3);
        let bad = dir.path().join("bad.png");
        std::fs::write(&bad, b"\x89PNG\r\n\x1a\nnot really").unwrap();
        samples[1].path = bad.clone();
        let err = decode_batch(&samples, &[0, 1, 2], &[0, 0, 0], &pipeline(), false).unwrap_err();
        assert!(err.to_string().contains("bad.png"), "{err}");
        let b = decode_batch(&samples, &[0, 1, 2], &[0, 0, 0], &pipeline(), true).unwrap();
        assert_eq!(b.indices, vec![0, 2]);
        assert_eq!(b.skipped.len(), 1);
        assert_eq!(b.skipped[0].0, bad);
        // A missing file is not "corrupt": it stays an error even when skipping.
        samples[2].path = dir.path().join("gone.png");
        let err = decode_batch(&samples, &[2], &[0], &pipeline(), true).unwrap_err();
        assert!(err.to_string().contains("gone.png"), "{err}");
    }

    #[test]
    fn differing_output_sizes_are_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let samples = write_images(dir.path(), 2);
        let p = Pipeline::new(vec![]);
        let err = decode_batch(&samples, &[0, 1], &[0, 0], &p, false).unwrap_err();
        assert!(err.to_string().contains("1.png"), "{err}");
    }

    #[test]
    fn the_loader_stops_at_the_first_error_and_drops_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let mut samples = write_images(dir.path(), 4);
        samples[2].path = dir.path().join("missing.png");
        let mut loader = BatchLoader::new(
            Arc::new(samples),
            vec![vec![0, 1], vec![2, 3], vec![0, 1]],
            Arc::new(pipeline()),
            0,
            0,
            LoaderConfig::default(),
        );
        assert!(loader.next().unwrap().is_ok());
        assert!(loader.next().unwrap().is_err());
        assert!(loader.next().is_none());
        // A loader dropped early joins its worker without hanging.
        let samples = Arc::new(write_images(dir.path(), 4));
        let mut early = BatchLoader::new(
            samples,
            vec![vec![0]; 20],
            Arc::new(pipeline()),
            0,
            0,
            LoaderConfig::default(),
        );
        early.next();
        drop(early);
    }

    /// A pipeline that panics on the image of one sample (a custom transform here).
    pub(crate) fn panicking_pipeline(on_width: u32) -> Pipeline {
        let boom = crate::CustomTransform::new(
            "boom",
            move |img: image::RgbImage, _rng: &mut metron_core::seed::Rng| {
                assert!(
                    img.width() != on_width,
                    "transform failed on a {on_width}-wide image"
                );
                img
            },
        );
        let mut p = pipeline();
        p.steps.insert(0, Transform::Custom(boom));
        p
    }

    #[test]
    fn a_worker_that_dies_is_an_error_with_its_cause_not_a_short_epoch() {
        let dir = tempfile::tempdir().unwrap();
        // Sample i is 10 + i pixels wide: sample 3 is the one that panics.
        let samples = Arc::new(write_images(dir.path(), 6));
        let batches = vec![vec![0, 1], vec![2, 3], vec![4, 5]];
        let out: Vec<Result<ImageBatch>> = BatchLoader::new(
            samples,
            batches,
            Arc::new(panicking_pipeline(13)),
            0,
            0,
            LoaderConfig::default(),
        )
        .collect();
        assert_eq!(out.len(), 2, "one good batch, then the error, then nothing");
        assert!(out[0].is_ok());
        let err = out[1].as_ref().unwrap_err().to_string();
        assert!(err.contains("after 1 of 3 batches"), "{err}");
        assert!(err.contains("transform failed on a 13-wide image"), "{err}");
    }
}
