//! Batches for the training loop, built on a background thread with a bounded queue so that
//! decoding overlaps the model's work.
//!
//! Two layers: [`Loader`] runs any [`LoadBatch`] (a system's own batch type: two views plus
//! pair ids, images plus boxes) over the index lists of a sampler; [`ImageBatches`] is the
//! common case, images with class labels from an [`ImageSource`]: files on disk (a
//! `Vec<Sample>`), images held in memory ([`InMemoryImages`]: IDX arrays, composed canvases)
//! or images made on demand ([`GeneratedImages`]). Every item draws its augmentation from
//! [`augmentation_seed`], a pure function of (seed, epoch, position), so a resumed run sees
//! the batches of an uninterrupted one.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, sync_channel};
use std::thread::JoinHandle;

use image::RgbImage;
use rayon::prelude::*;

use metron_core::{rng_from_seed, split_seed};

use crate::{DatasetError, IdxSplit, Pipeline, Result, Sample};

/// A batch ready for a network: `images` is `[len, 3, height, width]` row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageBatch {
    /// The normalised pixels of every image ([`Pipeline::normalize`]), laid out as `shape`.
    pub images: Vec<f32>,
    /// `[batch, 3, height, width]`.
    pub shape: [usize; 4],
    /// Class index of each image, in batch order.
    pub labels: Vec<i64>,
    /// Dataset indices of the images, in batch order.
    pub indices: Vec<usize>,
    /// The random stream each image was augmented with ([`augmentation_seed`]), in batch
    /// order: a model that draws per-sample noise (AntiMetric's random branch weights) seeds
    /// it from here, so a resumed run draws the same.
    pub seeds: Vec<u64>,
    /// Images left out because they could not be decoded (only with
    /// [`LoaderConfig::skip_corrupt`]): name and reason.
    pub skipped: Vec<(PathBuf, String)>,
}

impl ImageBatch {
    /// Number of images in the batch (skipped ones not counted).
    pub fn len(&self) -> usize {
        self.shape[0]
    }

    /// Whether the batch holds no image (every one was skipped, or none was asked for).
    pub fn is_empty(&self) -> bool {
        self.shape[0] == 0
    }
}

/// What the training loop needs to know of any batch: how many items it holds and how many
/// were left out, so that a short epoch is noticed.
pub trait Batch: Send + 'static {
    /// Items in the batch.
    fn items(&self) -> usize;
    /// Items of the sampler's index list left out (undecodable, with `skip_corrupt`).
    fn skipped(&self) -> usize {
        0
    }
}

impl Batch for ImageBatch {
    fn items(&self) -> usize {
        self.len()
    }

    fn skipped(&self) -> usize {
        self.skipped.len()
    }
}

/// Builds the batch of a list of indices. `seeds[i]` is the random stream of item `i`
/// ([`augmentation_seed`]); the result must depend on nothing else, for exact resume.
pub trait LoadBatch: Send + Sync + 'static {
    /// The batch type [`LoadBatch::load`] builds.
    type Batch: Batch;

    /// Items the indices may address (`0..len`).
    fn len(&self) -> usize;

    /// Whether there is no item to address.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The batch of the items `indices`, item `indices[i]` drawing its randomness from
    /// `seeds[i]`. An error ends the epoch.
    fn load(&self, indices: &[usize], seeds: &[u64]) -> Result<Self::Batch>;
}

/// Where the images of a split come from. An error of kind [`DatasetError::Image`] means
/// "this item cannot be decoded" (skippable with `skip_corrupt`); any other error stops the
/// run.
pub trait ImageSource: Send + Sync + 'static {
    /// Number of items; valid indices are `0..len`.
    fn len(&self) -> usize;

    /// Whether the source holds no item.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Class index of item `index`.
    fn label(&self, index: usize) -> usize;

    /// Box `[x1, y1, x2, y2]` of item `index` in pixels, where the data has one.
    fn bbox(&self, _index: usize) -> Option<[f32; 4]> {
        None
    }

    /// The image of item `index`.
    fn image(&self, index: usize) -> Result<RgbImage>;

    /// What names item `index` in errors and skip lists: its file, or `<source>#index`.
    fn name(&self, index: usize) -> PathBuf;
}

/// Decodes the image file `path` as 8-bit RGB; unreadable or corrupt files are errors naming it.
pub fn load_rgb(path: &Path) -> Result<RgbImage> {
    let bytes = std::fs::read(path).map_err(|e| DatasetError::io(path, e))?;
    let img = image::load_from_memory(&bytes).map_err(|e| DatasetError::Image {
        path: path.to_path_buf(),
        why: e.to_string(),
    })?;
    Ok(img.to_rgb8())
}

/// Image files on disk, decoded when loaded.
impl ImageSource for Vec<Sample> {
    fn len(&self) -> usize {
        self.as_slice().len()
    }

    fn label(&self, index: usize) -> usize {
        self[index].label
    }

    fn bbox(&self, index: usize) -> Option<[f32; 4]> {
        self[index].bbox
    }

    fn image(&self, index: usize) -> Result<RgbImage> {
        load_rgb(&self[index].path)
    }

    fn name(&self, index: usize) -> PathBuf {
        self[index].path.clone()
    }
}

/// Images held in memory: arrays read from IDX files, canvases composed by a system.
#[derive(Debug, Clone, PartialEq)]
pub struct InMemoryImages {
    /// Names the items in messages (`<name>#<index>`).
    pub name: String,
    /// The images, item `i` at `images[i]`.
    pub images: Vec<RgbImage>,
    /// Class index of each image, as long as `images`.
    pub labels: Vec<usize>,
    /// One box per image, or none at all.
    pub boxes: Option<Vec<[f32; 4]>>,
}

impl InMemoryImages {
    /// `labels[i]` is the class of `images[i]`; unequal lengths are an error.
    pub fn new(name: impl Into<String>, images: Vec<RgbImage>, labels: Vec<usize>) -> Result<Self> {
        let name = name.into();
        if images.len() != labels.len() {
            return Err(DatasetError::Layout {
                path: PathBuf::from(format!("<{name}>")),
                what: format!("{} images but {} labels", images.len(), labels.len()),
            });
        }
        Ok(InMemoryImages {
            name,
            images,
            labels,
            boxes: None,
        })
    }

    /// The grey images of an IDX split (MNIST, Fashion-MNIST) as RGB, with their labels.
    pub fn from_idx(name: impl Into<String>, split: &IdxSplit) -> Result<Self> {
        let (h, w) = (split.height, split.width);
        let images = split
            .images
            .chunks_exact(h * w)
            .take(split.count)
            .map(|grey| {
                RgbImage::from_fn(w as u32, h as u32, |x, y| {
                    let v = grey[y as usize * w + x as usize];
                    image::Rgb([v, v, v])
                })
            })
            .collect();
        let labels = split.labels.iter().map(|&l| usize::from(l)).collect();
        InMemoryImages::new(name, images, labels)
    }
}

impl ImageSource for InMemoryImages {
    fn len(&self) -> usize {
        self.images.len()
    }

    fn label(&self, index: usize) -> usize {
        self.labels[index]
    }

    fn bbox(&self, index: usize) -> Option<[f32; 4]> {
        self.boxes.as_ref().map(|b| b[index])
    }

    fn image(&self, index: usize) -> Result<RgbImage> {
        Ok(self.images[index].clone())
    }

    fn name(&self, index: usize) -> PathBuf {
        PathBuf::from(format!("<{}>#{index}", self.name))
    }
}

/// The signature of [`GeneratedImages`]' image function.
pub type MakeImage = dyn Fn(usize) -> Result<RgbImage> + Send + Sync;

/// Images made on demand by a function of the index (generated views, synthetic data): nothing
/// is held in memory but the labels.
#[derive(Clone)]
pub struct GeneratedImages {
    /// Names the items in messages (`<name>#<index>`).
    pub name: String,
    /// Class index of each item; its length is the number of items.
    pub labels: Vec<usize>,
    make: Arc<MakeImage>,
}

impl std::fmt::Debug for GeneratedImages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneratedImages")
            .field("name", &self.name)
            .field("len", &self.labels.len())
            .finish_non_exhaustive()
    }
}

impl GeneratedImages {
    /// Item `i` is `make(i)` with class `labels[i]`; `make` must be a pure function of `i`.
    pub fn new(
        name: impl Into<String>,
        labels: Vec<usize>,
        make: impl Fn(usize) -> Result<RgbImage> + Send + Sync + 'static,
    ) -> Self {
        GeneratedImages {
            name: name.into(),
            labels,
            make: Arc::new(make),
        }
    }
}

impl ImageSource for GeneratedImages {
    fn len(&self) -> usize {
        self.labels.len()
    }

    fn label(&self, index: usize) -> usize {
        self.labels[index]
    }

    fn image(&self, index: usize) -> Result<RgbImage> {
        (self.make)(index)
    }

    fn name(&self, index: usize) -> PathBuf {
        PathBuf::from(format!("<{}>#{index}", self.name))
    }
}

/// How a [`Loader`] works.
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

/// Decodes and transforms `indices` of `source` in parallel. Image `i` of the batch uses the
/// random stream `seeds[i]`.
pub fn decode_batch(
    source: &dyn ImageSource,
    indices: &[usize],
    seeds: &[u64],
    pipeline: &Pipeline,
    skip_corrupt: bool,
) -> Result<ImageBatch> {
    let decoded: Vec<Result<(Vec<f32>, [u32; 2])>> = indices
        .par_iter()
        .zip(seeds.par_iter())
        .map(|(&i, &seed)| {
            if i >= source.len() {
                return Err(DatasetError::Layout {
                    path: PathBuf::from("<batch>"),
                    what: format!(
                        "index {i} is past the {} samples of the split",
                        source.len()
                    ),
                });
            }
            let img = source.image(i)?;
            Ok(pipeline.apply(img, source.bbox(i), &mut rng_from_seed(seed)))
        })
        .collect();
    let mut batch = ImageBatch {
        images: Vec::new(),
        shape: [0, 3, 0, 0],
        labels: Vec::with_capacity(indices.len()),
        indices: Vec::with_capacity(indices.len()),
        seeds: Vec::with_capacity(indices.len()),
        skipped: Vec::new(),
    };
    for ((&i, &seed), result) in indices.iter().zip(seeds).zip(decoded) {
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
                path: source.name(i),
                what: format!(
                    "transformed to {h} x {w} but the batch is {} x {}: end the pipeline with a \
                     resize or crop to a fixed size",
                    batch.shape[2], batch.shape[3]
                ),
            });
        }
        batch.images.extend_from_slice(&pixels);
        batch.labels.push(source.label(i) as i64);
        batch.indices.push(i);
        batch.seeds.push(seed);
        batch.shape[0] += 1;
    }
    Ok(batch)
}

/// Images with class labels: the [`LoadBatch`] of most retrieval systems.
#[derive(Clone)]
pub struct ImageBatches {
    /// Where the images and labels come from.
    pub source: Arc<dyn ImageSource>,
    /// The transforms and normalisation every image goes through.
    pub pipeline: Arc<Pipeline>,
    /// Leave undecodable images out of their batch instead of failing (see
    /// [`LoaderConfig::skip_corrupt`]).
    pub skip_corrupt: bool,
}

impl std::fmt::Debug for ImageBatches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageBatches")
            .field("len", &self.source.len())
            .field("skip_corrupt", &self.skip_corrupt)
            .finish_non_exhaustive()
    }
}

impl ImageBatches {
    /// Batches of `source` through `pipeline`, skipping undecodable images when `skip_corrupt`.
    pub fn new(source: Arc<dyn ImageSource>, pipeline: Arc<Pipeline>, skip_corrupt: bool) -> Self {
        ImageBatches {
            source,
            pipeline,
            skip_corrupt,
        }
    }
}

impl LoadBatch for ImageBatches {
    type Batch = ImageBatch;

    fn len(&self) -> usize {
        self.source.len()
    }

    fn load(&self, indices: &[usize], seeds: &[u64]) -> Result<ImageBatch> {
        decode_batch(
            self.source.as_ref(),
            indices,
            seeds,
            &self.pipeline,
            self.skip_corrupt,
        )
    }
}

/// An iterator over the batches of one epoch, built on a background thread up to `prefetch`
/// batches ahead. Dropping it stops the thread.
#[derive(Debug)]
pub struct Loader<B> {
    receiver: Option<Receiver<Result<B>>>,
    worker: Option<JoinHandle<()>>,
    remaining: usize,
    expected: usize,
}

/// The loader of images with labels.
pub type BatchLoader = Loader<ImageBatch>;

impl<B: Send + 'static> Loader<B> {
    /// Loads `batches` (index lists) of `source` in order; the item at position `p` of the
    /// epoch draws from `augmentation_seed(seed, epoch, p)`.
    pub fn new<S: LoadBatch<Batch = B> + ?Sized>(
        source: Arc<S>,
        batches: Vec<Vec<usize>>,
        seed: u64,
        epoch: u64,
        prefetch: usize,
    ) -> Self {
        let remaining = batches.len();
        let (tx, rx) = sync_channel(prefetch.max(1));
        let worker = std::thread::spawn(move || {
            let mut position = 0u64;
            for indices in batches {
                let seeds: Vec<u64> = (0..indices.len() as u64)
                    .map(|k| augmentation_seed(seed, epoch, position + k))
                    .collect();
                position += indices.len() as u64;
                let batch = source.load(&indices, &seeds);
                let failed = batch.is_err();
                if tx.send(batch).is_err() || failed {
                    return;
                }
            }
        });
        Loader {
            receiver: Some(rx),
            worker: Some(worker),
            remaining,
            expected: remaining,
        }
    }

    /// Batches not yet delivered this epoch (0 after an error).
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

impl Loader<ImageBatch> {
    /// Images of `source` transformed by `pipeline`, with their labels.
    pub fn images(
        source: Arc<dyn ImageSource>,
        batches: Vec<Vec<usize>>,
        pipeline: Arc<Pipeline>,
        seed: u64,
        epoch: u64,
        config: LoaderConfig,
    ) -> Self {
        let load = Arc::new(ImageBatches::new(source, pipeline, config.skip_corrupt));
        Loader::new(load, batches, seed, epoch, config.prefetch)
    }
}

impl<B: Send + 'static> Iterator for Loader<B> {
    type Item = Result<B>;

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

impl<B> Drop for Loader<B> {
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
            BatchLoader::images(
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
            &*samples,
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
        let mut loader = BatchLoader::images(
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
        let mut early = BatchLoader::images(
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
            move |img: image::RgbImage, _rng: &mut metron_core::Rng| {
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
        let out: Vec<Result<ImageBatch>> = BatchLoader::images(
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

    /// The same pictures as files, as images in memory and as generated images: the loader
    /// gives the same batches from all three.
    #[test]
    fn images_in_memory_and_generated_ones_load_like_files() {
        let dir = tempfile::tempdir().unwrap();
        let files = write_images(dir.path(), 6);
        let pictures: Vec<RgbImage> = files
            .iter()
            .map(|s| image::open(&s.path).unwrap().to_rgb8())
            .collect();
        let labels: Vec<usize> = files.iter().map(|s| s.label).collect();
        let memory = InMemoryImages::new("mem", pictures.clone(), labels.clone()).unwrap();
        let generated =
            GeneratedImages::new("gen", labels.clone(), move |i| Ok(pictures[i].clone()));
        let batches = vec![vec![5, 0], vec![3, 1, 2]];
        let load = |source: Arc<dyn ImageSource>| {
            BatchLoader::images(
                source,
                batches.clone(),
                Arc::new(pipeline()),
                4,
                1,
                LoaderConfig::default(),
            )
            .collect::<Result<Vec<_>>>()
            .unwrap()
        };
        let from_files = load(Arc::new(files));
        assert_eq!(from_files[1].labels, vec![0, 1, 2]);
        assert_eq!(load(Arc::new(memory.clone())), from_files);
        assert_eq!(load(Arc::new(generated)), from_files);
        // Bad shapes and indices are errors that name the source.
        assert!(InMemoryImages::new("mem", vec![], vec![1]).is_err());
        let err = decode_batch(&memory, &[9], &[0], &pipeline(), false).unwrap_err();
        assert!(err.to_string().contains("past the 6 samples"), "{err}");
        let odd = GeneratedImages::new("odd", vec![0, 0], |i| Ok(RgbImage::new(6 + i as u32, 6)));
        let err = decode_batch(&odd, &[0, 1], &[0, 0], &Pipeline::new(vec![]), false).unwrap_err();
        assert!(err.to_string().contains("<odd>#1"), "{err}");
    }

    #[test]
    fn idx_arrays_become_grey_rgb_images() {
        let split = IdxSplit {
            images: vec![0, 10, 20, 30, 40, 50, 60, 70],
            labels: vec![3, 7],
            count: 2,
            height: 2,
            width: 2,
        };
        let m = InMemoryImages::from_idx("fashion", &split).unwrap();
        assert_eq!(m.labels, vec![3, 7]);
        // Row-major: pixel (x 1, y 0) of image 1 is byte 4 + 1.
        assert_eq!(m.images[1].get_pixel(1, 0).0, [50, 50, 50]);
        assert_eq!(m.images[0].get_pixel(0, 1).0, [20, 20, 20]);
    }

    /// A system's own batch type (two "views" of each index) through the same loader.
    #[test]
    fn any_batch_type_flows_through_the_loader_with_its_seeds() {
        #[derive(Debug, PartialEq)]
        struct Pairs(Vec<(usize, u64)>);
        impl Batch for Pairs {
            fn items(&self) -> usize {
                self.0.len()
            }
        }
        struct MakePairs;
        impl LoadBatch for MakePairs {
            type Batch = Pairs;
            fn len(&self) -> usize {
                10
            }
            fn load(&self, indices: &[usize], seeds: &[u64]) -> Result<Pairs> {
                Ok(Pairs(
                    indices.iter().copied().zip(seeds.iter().copied()).collect(),
                ))
            }
        }
        let out: Vec<Pairs> = Loader::new(Arc::new(MakePairs), vec![vec![3, 4], vec![9]], 7, 2, 1)
            .collect::<Result<_>>()
            .unwrap();
        assert_eq!(out[1].0, vec![(9, augmentation_seed(7, 2, 2))]);
        assert_eq!(out[0].items(), 2);
    }
}
