//! WGOL on real photographs (CUB-200-2011, ILSVRC) as the original prepares them (spec s. 2.6):
//! training images resized to `resize x resize`, a random `crop x crop` window and a mirror;
//! test images resized to `loc x loc` for the maps (aspect not kept, ground-truth boxes scaled
//! the same way, floored and clipped) and, for classification, the ten `crop` windows of the
//! `resize x resize` image (TenCrop, softmax per crop, averaged).

use std::sync::Arc;

use image::RgbImage;
use serde::{Deserialize, Serialize};

use metron_datasets::{
    ImageBatch, ImageBatches, LoadBatch, Pipeline, Sample, Transform, load_rgb, ten_crop,
};
use metron_localization::PixelBox;

use super::model::{CanvasBatch, IMAGENET_MEAN, IMAGENET_STD, canvas_pixels};

/// The image sizes of the original's preprocessing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageSizes {
    /// Side of the square every image is resized to before cropping (256).
    pub resize: u32,
    /// Side of the training crop and of the ten test crops (224).
    pub crop: u32,
    /// Side of the square test image the maps and boxes come from (224).
    pub loc: u32,
    /// Classify test images by the mean softmax over the ten crops (the original), or by the
    /// `loc` image's own scores.
    pub ten_crop: bool,
}

impl ImageSizes {
    /// The original's sizes: 256, 224, 224, TenCrop on.
    pub fn paper() -> Self {
        ImageSizes {
            resize: 256,
            crop: 224,
            loc: 224,
            ten_crop: true,
        }
    }

    /// The training pipeline: `Resize((r, r))`, `RandomCrop(c)`, `RandomHorizontalFlip`.
    pub fn train_pipeline(&self) -> Pipeline {
        Pipeline::new(vec![
            Transform::Resize {
                size: [self.resize, self.resize],
            },
            Transform::RandomCrop {
                size: [self.crop, self.crop],
            },
            Transform::HorizontalFlip { p: 0.5 },
        ])
        .with_normalization(IMAGENET_MEAN, IMAGENET_STD)
    }
}

/// Training images as WGOL batches (their boxes are not used in training: zero boxes).
#[derive(Debug, Clone)]
pub struct TrainImages {
    inner: ImageBatches,
}

impl TrainImages {
    /// `samples` through `sizes`' training pipeline.
    pub fn new(samples: Vec<Sample>, sizes: &ImageSizes) -> Self {
        TrainImages {
            inner: ImageBatches::new(Arc::new(samples), Arc::new(sizes.train_pipeline()), false),
        }
    }
}

impl LoadBatch for TrainImages {
    type Batch = CanvasBatch;

    fn len(&self) -> usize {
        self.inner.len()
    }

    fn load(&self, indices: &[usize], seeds: &[u64]) -> metron_datasets::Result<CanvasBatch> {
        let images = self.inner.load(indices, seeds)?;
        let n = images.len();
        Ok(CanvasBatch {
            images,
            boxes: vec![PixelBox::new(0, 0, 0, 0); n],
        })
    }
}

/// Test images with their ground-truth boxes (in the file's pixels).
#[derive(Debug, Clone)]
pub struct EvalImages {
    /// The images and their classes.
    pub samples: Vec<Sample>,
    /// Every ground-truth box of each image, `[x1, y1, x2, y2]` inclusive.
    pub boxes: Vec<Vec<[f32; 4]>>,
    /// How they are prepared.
    pub sizes: ImageSizes,
}

/// One test image as the evaluation sees it.
#[derive(Debug, Clone)]
pub struct LoadedImage {
    /// The `loc x loc` image.
    pub image: RgbImage,
    /// Its ground-truth boxes in the `loc x loc` image.
    pub boxes: Vec<PixelBox>,
    /// The ten crops (when TenCrop is on).
    pub crops: Vec<RgbImage>,
}

/// `Resize((side, side))` as the training pipeline does it (anti-aliased bilinear).
pub(crate) fn resized(img: &RgbImage, side: u32) -> RgbImage {
    let resize = Transform::Resize { size: [side, side] };
    resize.apply(img.clone(), &mut metron_core::rng_from_seed(0))
}

impl EvalImages {
    /// Test images.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Image `i` prepared for the network; a file that cannot be decoded is an error naming it.
    pub fn load(&self, i: usize) -> metron_datasets::Result<LoadedImage> {
        let sample = &self.samples[i];
        let img = load_rgb(&sample.path)?;
        let (w, h) = img.dimensions();
        let loc = self.sizes.loc;
        let boxes = self.boxes[i]
            .iter()
            .map(|b| PixelBox::rescaled(*b, [w, h], [loc, loc]))
            .collect();
        let crops = if self.sizes.ten_crop {
            ten_crop(
                &resized(&img, self.sizes.resize),
                [self.sizes.crop, self.sizes.crop],
            )
        } else {
            Vec::new()
        };
        Ok(LoadedImage {
            image: resized(&img, loc),
            boxes,
            crops,
        })
    }
}

/// Images of one size as a normalised batch with `labels`.
pub fn image_batch(images: &[&RgbImage], labels: Vec<i64>) -> ImageBatch {
    let (w, h) = images.first().map(|i| i.dimensions()).unwrap_or((0, 0));
    let mut pixels = Vec::with_capacity(images.len() * 3 * (w * h) as usize);
    for img in images {
        canvas_pixels(img, &mut pixels);
    }
    ImageBatch {
        images: pixels,
        shape: [images.len(), 3, h as usize, w as usize],
        labels,
        indices: (0..images.len()).collect(),
        seeds: vec![0; images.len()],
        skipped: Vec::new(),
    }
}
