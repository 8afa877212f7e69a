//! Seeded image transforms: the geometric steps the five systems use, then normalisation.
//!
//! Geometry runs on 8-bit RGB images (as PIL does in the originals, and 4x less memory traffic
//! than floats); only the last step converts to the planar, normalised `f32` layout a network
//! takes. Every random choice comes from the generator passed in, so one seed per sample makes a
//! whole epoch of augmentation reproducible.

use image::imageops::{self, FilterType};
use image::{Rgb, RgbImage};
use rand::Rng as _;

use metron_core::Rng;

/// One geometric step.
#[derive(Debug, Clone, PartialEq)]
pub enum Transform {
    /// Resize to exactly `[height, width]` (torchvision `Resize((h, w))`), bilinear with
    /// anti-aliasing when shrinking.
    Resize {
        /// The output `[height, width]` in pixels.
        size: [u32; 2],
    },
    /// Resize so the shorter side is `size`, keeping the aspect ratio (torchvision
    /// `Resize(int)`).
    ResizeShorter {
        /// The length in pixels the shorter side is resized to.
        size: u32,
    },
    /// A uniformly placed `[height, width]` window; images smaller than the window are padded
    /// with black first, as torchvision's `pad_if_needed`.
    RandomCrop {
        /// The window's `[height, width]` in pixels.
        size: [u32; 2],
    },
    /// The centred `[height, width]` window, black-padded when the image is smaller.
    CenterCrop {
        /// The window's `[height, width]` in pixels.
        size: [u32; 2],
    },
    /// torchvision's `RandomResizedCrop`: a window of random area fraction in `scale` and
    /// aspect ratio (log-uniform) in `ratio`, resized to `size`; after ten failed draws, the
    /// largest centred window whose ratio is within bounds.
    RandomResizedCrop {
        /// The output `[height, width]` in pixels.
        size: [u32; 2],
        /// `[min, max]` fraction of the image's area the window covers (torchvision: 0.08, 1).
        scale: [f64; 2],
        /// `[min, max]` width / height of the window (torchvision: 3/4, 4/3).
        ratio: [f64; 2],
    },
    /// Mirror left-right with probability `p`.
    HorizontalFlip {
        /// Probability of mirroring, in [0, 1].
        p: f64,
    },
    /// Rotate a 360-degree panorama about the vertical axis: a circular shift of the columns by
    /// a uniform offset, which keeps it a valid panorama (SAIG / cross-view training).
    CircularShift,
    /// A step of the user's own, seeded by the same per-image generator as the built-in ones.
    Custom(CustomTransform),
}

/// The function behind [`Transform::Custom`].
pub type CustomTransformFn = dyn Fn(RgbImage, &mut Rng) -> RgbImage + Send + Sync;

/// A named user-supplied step. Two are equal when they share the same function.
#[derive(Clone)]
pub struct CustomTransform {
    /// Names the step in `Debug` output.
    pub name: String,
    /// The step: takes the image and the per-image generator, returns the new image.
    pub apply: std::sync::Arc<CustomTransformFn>,
}

impl CustomTransform {
    /// The step `apply` under `name`; all its randomness should come from the generator passed
    /// in, so the augmentation stays reproducible.
    pub fn new(
        name: impl Into<String>,
        apply: impl Fn(RgbImage, &mut Rng) -> RgbImage + Send + Sync + 'static,
    ) -> Self {
        CustomTransform {
            name: name.into(),
            apply: std::sync::Arc::new(apply),
        }
    }
}

impl std::fmt::Debug for CustomTransform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CustomTransform({:?})", self.name)
    }
}

impl PartialEq for CustomTransform {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.apply, &other.apply)
    }
}

impl Transform {
    /// torchvision's `RandomResizedCrop(size)` defaults: scale (0.08, 1), ratio (3/4, 4/3).
    pub fn random_resized_crop(size: [u32; 2]) -> Self {
        Transform::RandomResizedCrop {
            size,
            scale: [0.08, 1.0],
            ratio: [3.0 / 4.0, 4.0 / 3.0],
        }
    }

    /// Applies the step. Deterministic steps ignore `rng`.
    pub fn apply(&self, img: RgbImage, rng: &mut Rng) -> RgbImage {
        match *self {
            Transform::Custom(ref custom) => (custom.apply)(img, rng),
            Transform::Resize { size: [h, w] } => resize(img, h, w),
            Transform::ResizeShorter { size } => {
                let (w, h) = img.dimensions();
                let (nh, nw) = if h <= w {
                    (size, scaled(w, size, h))
                } else {
                    (scaled(h, size, w), size)
                };
                resize(img, nh, nw)
            }
            Transform::RandomCrop { size: [h, w] } => {
                let img = pad_to(img, h, w);
                let (iw, ih) = img.dimensions();
                let y = rng.random_range(0..=ih - h);
                let x = rng.random_range(0..=iw - w);
                crop(&img, x, y, w, h)
            }
            Transform::CenterCrop { size: [h, w] } => center_crop(img, h, w),
            Transform::RandomResizedCrop { size, scale, ratio } => {
                let window = resized_crop_window(img.width(), img.height(), scale, ratio, rng);
                resize_window(img, window, size[0], size[1])
            }
            Transform::HorizontalFlip { p } => {
                if rng.random::<f64>() < p {
                    imageops::flip_horizontal(&img)
                } else {
                    img
                }
            }
            Transform::CircularShift => {
                let shift = rng.random_range(0..img.width().max(1));
                roll_columns(&img, shift)
            }
        }
    }
}

/// `round(long * short_target / short)`, torchvision's size rule for `Resize(int)`.
fn scaled(long: u32, target: u32, short: u32) -> u32 {
    ((f64::from(long) * f64::from(target) / f64::from(short.max(1))).round() as u32).max(1)
}

fn resize(img: RgbImage, h: u32, w: u32) -> RgbImage {
    let window = (0, 0, img.width(), img.height());
    resize_window(img, window, h, w)
}

thread_local! {
    /// The resizer keeps its scratch buffers between calls; one per decoding thread.
    static RESIZER: std::cell::RefCell<fast_image_resize::Resizer> =
        std::cell::RefCell::new(fast_image_resize::Resizer::new());
}

/// Resizes the window `(x, y, w, h)` of `img` to `out_h x out_w` in one pass, with Pillow's
/// anti-aliased bilinear filter (what torchvision's `Resize` / `RandomResizedCrop` run), in
/// SIMD fixed point: several times faster than `image::imageops::resize`, and no intermediate
/// crop.
fn resize_window(img: RgbImage, window: (u32, u32, u32, u32), out_h: u32, out_w: u32) -> RgbImage {
    use fast_image_resize::{
        FilterType as Filter, PixelType, ResizeAlg, ResizeOptions, images::Image,
    };
    let (x, y, w, h) = window;
    let (out_w, out_h) = (out_w.max(1), out_h.max(1));
    let (iw, ih) = img.dimensions();
    if (x, y, w, h) == (0, 0, iw, ih) && (iw, ih) == (out_w, out_h) {
        return img;
    }
    // The image crate's filter, for the (unexpected) case that the fast path refuses.
    let fallback = |img: &RgbImage| {
        let cropped = imageops::crop_imm(img, x, y, w, h).to_image();
        imageops::resize(&cropped, out_w, out_h, FilterType::Triangle)
    };
    let src = match Image::from_vec_u8(iw, ih, img.into_raw(), PixelType::U8x3) {
        Ok(src) => src,
        Err(_) => unreachable!("a w x h x 3 buffer is a valid U8x3 image"),
    };
    let mut dst = Image::new(out_w, out_h, PixelType::U8x3);
    let options = ResizeOptions::new()
        .resize_alg(ResizeAlg::Convolution(Filter::Bilinear))
        .crop(f64::from(x), f64::from(y), f64::from(w), f64::from(h));
    match RESIZER.with(|r| r.borrow_mut().resize(&src, &mut dst, &options)) {
        Ok(()) => RgbImage::from_raw(out_w, out_h, dst.into_vec())
            .unwrap_or_else(|| unreachable!("the output buffer is out_w x out_h x 3")),
        Err(_) => {
            let img = RgbImage::from_raw(iw, ih, src.into_vec())
                .unwrap_or_else(|| unreachable!("the source buffer is iw x ih x 3"));
            fallback(&img)
        }
    }
}

fn crop(img: &RgbImage, x: u32, y: u32, w: u32, h: u32) -> RgbImage {
    imageops::crop_imm(img, x, y, w, h).to_image()
}

/// Black-pads `img` (centred) so it is at least `h x w`.
fn pad_to(img: RgbImage, h: u32, w: u32) -> RgbImage {
    let (iw, ih) = img.dimensions();
    if iw >= w && ih >= h {
        return img;
    }
    let (nw, nh) = (iw.max(w), ih.max(h));
    let mut out = RgbImage::from_pixel(nw, nh, Rgb([0, 0, 0]));
    imageops::replace(
        &mut out,
        &img,
        i64::from((nw - iw) / 2),
        i64::from((nh - ih) / 2),
    );
    out
}

fn center_crop(img: RgbImage, h: u32, w: u32) -> RgbImage {
    let img = pad_to(img, h, w);
    let (iw, ih) = img.dimensions();
    // torchvision rounds the offset: int(round((H - h) / 2)).
    let y = ((f64::from(ih - h)) / 2.0).round() as u32;
    let x = ((f64::from(iw - w)) / 2.0).round() as u32;
    crop(&img, x, y, w, h)
}

fn roll_columns(img: &RgbImage, shift: u32) -> RgbImage {
    let (w, h) = img.dimensions();
    RgbImage::from_fn(w, h, |x, y| *img.get_pixel((x + shift) % w, y))
}

/// torchvision's `RandomResizedCrop.get_params`: `(x, y, w, h)` of the window.
fn resized_crop_window(
    width: u32,
    height: u32,
    scale: [f64; 2],
    ratio: [f64; 2],
    rng: &mut Rng,
) -> (u32, u32, u32, u32) {
    let area = f64::from(width) * f64::from(height);
    let (log_lo, log_hi) = (ratio[0].ln(), ratio[1].ln());
    for _ in 0..10 {
        let target = area * uniform(rng, scale[0], scale[1]);
        let aspect = uniform(rng, log_lo, log_hi).exp();
        let w = (target * aspect).sqrt().round();
        let h = (target / aspect).sqrt().round();
        if w > 0.0 && h > 0.0 && w <= f64::from(width) && h <= f64::from(height) {
            let (w, h) = (w as u32, h as u32);
            let y = rng.random_range(0..=height - h);
            let x = rng.random_range(0..=width - w);
            return (x, y, w, h);
        }
    }
    let in_ratio = f64::from(width) / f64::from(height.max(1));
    let (w, h) = if in_ratio < ratio[0] {
        (width, (f64::from(width) / ratio[0]).round() as u32)
    } else if in_ratio > ratio[1] {
        ((f64::from(height) * ratio[1]).round() as u32, height)
    } else {
        (width, height)
    };
    let (w, h) = (w.clamp(1, width.max(1)), h.clamp(1, height.max(1)));
    ((width - w) / 2, (height - h) / 2, w, h)
}

fn uniform(rng: &mut Rng, lo: f64, hi: f64) -> f64 {
    if hi > lo {
        rng.random_range(lo..hi)
    } else {
        lo
    }
}

/// Crops `img` to a bounding box `[x1, y1, x2, y2]` as PIL's `crop((int(x1), int(y1), int(x2),
/// int(y2)))` does in CGD (coordinates truncated, clamped to the image), so "cropped" dataset
/// variants match the originals.
pub fn crop_to_box(img: &RgbImage, bbox: [f32; 4]) -> RgbImage {
    let (w, h) = img.dimensions();
    let clamp = |v: f32, hi: u32| (v.max(0.0) as u32).min(hi);
    let (x1, y1) = (clamp(bbox[0], w), clamp(bbox[1], h));
    let (x2, y2) = (clamp(bbox[2], w).max(x1), clamp(bbox[3], h).max(y1));
    if x2 == x1 || y2 == y1 {
        // A degenerate box keeps the image rather than producing an empty one.
        return img.clone();
    }
    crop(img, x1, y1, x2 - x1, y2 - y1)
}

/// Maps a box given in an image of `from` `[height, width]` to the same box after resizing the
/// image to `to` (WGOL evaluates boxes at the network's input size).
pub fn rescale_box(bbox: [f32; 4], from: [u32; 2], to: [u32; 2]) -> [f32; 4] {
    let sy = to[0] as f32 / from[0].max(1) as f32;
    let sx = to[1] as f32 / from[1].max(1) as f32;
    [bbox[0] * sx, bbox[1] * sy, bbox[2] * sx, bbox[3] * sy]
}

/// The ten-crop test-time augmentation: the four corner and the centre `size` windows, then the
/// same five of the mirrored image (torchvision `TenCrop` order).
pub fn ten_crop(img: &RgbImage, size: [u32; 2]) -> Vec<RgbImage> {
    let [h, w] = size;
    let five = |img: RgbImage| {
        let img = pad_to(img, h, w);
        let (iw, ih) = img.dimensions();
        vec![
            crop(&img, 0, 0, w, h),
            crop(&img, iw - w, 0, w, h),
            crop(&img, 0, ih - h, w, h),
            crop(&img, iw - w, ih - h, w, h),
            center_crop(img, h, w),
        ]
    };
    let mut out = five(img.clone());
    out.extend(five(imageops::flip_horizontal(img)));
    out
}

/// A list of geometric steps followed by `(x / 255 - mean) / std` per channel.
#[derive(Debug, Clone, PartialEq)]
pub struct Pipeline {
    /// The geometric steps, applied in order.
    pub steps: Vec<Transform>,
    /// Per-channel (RGB) mean subtracted after scaling to [0, 1]; ImageNet's by default.
    pub mean: [f32; 3],
    /// Per-channel (RGB) standard deviation divided by after the mean; ImageNet's by default.
    pub std: [f32; 3],
    /// Crop to the sample's bounding box (when it has one) before the steps.
    pub crop_to_box: bool,
}

impl Pipeline {
    /// ImageNet statistics, the default of every ImageNet-pretrained backbone.
    pub const IMAGENET_MEAN: [f32; 3] = metron_core::IMAGENET_MEAN;
    /// ImageNet per-channel standard deviations, the default `std`.
    pub const IMAGENET_STD: [f32; 3] = metron_core::IMAGENET_STD;

    /// `steps` with ImageNet normalisation and no box crop.
    pub fn new(steps: Vec<Transform>) -> Self {
        Pipeline {
            steps,
            mean: Self::IMAGENET_MEAN,
            std: Self::IMAGENET_STD,
            crop_to_box: false,
        }
    }

    /// Normalises with `mean` and `std` (per RGB channel, on the [0, 1] scale) instead.
    pub fn with_normalization(mut self, mean: [f32; 3], std: [f32; 3]) -> Self {
        self.mean = mean;
        self.std = std;
        self
    }

    /// With `on`, crops each image to its sample's bounding box (where it has one) before the
    /// steps; off by default.
    pub fn with_crop_to_box(mut self, on: bool) -> Self {
        self.crop_to_box = on;
        self
    }

    /// The `[height, width]` every output has, when the steps fix it (a final resize or crop).
    pub fn output_size(&self) -> Option<[u32; 2]> {
        self.steps.iter().rev().find_map(|s| match *s {
            Transform::Resize { size }
            | Transform::RandomCrop { size }
            | Transform::CenterCrop { size }
            | Transform::RandomResizedCrop { size, .. } => Some(size),
            _ => None,
        })
    }

    /// Runs the geometric steps only.
    pub fn geometry(&self, mut img: RgbImage, bbox: Option<[f32; 4]>, rng: &mut Rng) -> RgbImage {
        if let (true, Some(b)) = (self.crop_to_box, bbox) {
            img = crop_to_box(&img, b);
        }
        for step in &self.steps {
            img = step.apply(img, rng);
        }
        img
    }

    /// The planar `[3, height, width]` normalised floats of `img`.
    pub fn normalize(&self, img: &RgbImage) -> Vec<f32> {
        let (w, h) = img.dimensions();
        let plane = (w * h) as usize;
        let mut out = vec![0.0f32; 3 * plane];
        let scale: [f32; 3] = std::array::from_fn(|c| 1.0 / (255.0 * self.std[c]));
        let shift: [f32; 3] = std::array::from_fn(|c| self.mean[c] / self.std[c]);
        for (i, px) in img.pixels().enumerate() {
            for c in 0..3 {
                out[c * plane + i] = f32::from(px[c]) * scale[c] - shift[c];
            }
        }
        out
    }

    /// Geometry, then normalisation: `([3, h, w] floats, [h, w])`.
    pub fn apply(
        &self,
        img: RgbImage,
        bbox: Option<[f32; 4]>,
        rng: &mut Rng,
    ) -> (Vec<f32>, [u32; 2]) {
        let img = self.geometry(img, bbox, rng);
        (self.normalize(&img), [img.height(), img.width()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use metron_core::rng_from_seed;

    fn gradient(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| Rgb([x as u8, y as u8, (x + y) as u8]))
    }

    #[test]
    fn center_crop_takes_the_middle_window() {
        let out =
            Transform::CenterCrop { size: [2, 4] }.apply(gradient(8, 6), &mut rng_from_seed(0));
        assert_eq!(out.dimensions(), (4, 2));
        // offsets round((8-4)/2) = 2, round((6-2)/2) = 2
        assert_eq!(out.get_pixel(0, 0).0, [2, 2, 4]);
        assert_eq!(out.get_pixel(3, 1).0, [5, 3, 8]);
    }

    #[test]
    fn center_crop_pads_small_images_with_black() {
        let out =
            Transform::CenterCrop { size: [4, 4] }.apply(gradient(2, 2), &mut rng_from_seed(0));
        assert_eq!(out.dimensions(), (4, 4));
        assert_eq!(out.get_pixel(0, 0).0, [0, 0, 0]);
        assert_eq!(out.get_pixel(2, 2).0, [1, 1, 2]);
    }

    #[test]
    fn random_crop_is_a_window_of_the_input_and_seeded() {
        let img = gradient(20, 10);
        let t = Transform::RandomCrop { size: [4, 5] };
        let a = t.apply(img.clone(), &mut rng_from_seed(3));
        let b = t.apply(img.clone(), &mut rng_from_seed(3));
        assert_eq!(a, b);
        let (x0, y0) = (a.get_pixel(0, 0)[0], a.get_pixel(0, 0)[1]);
        assert!(x0 <= 15 && y0 <= 6);
        for (x, y, p) in a.enumerate_pixels() {
            assert_eq!(p.0, img.get_pixel(x0 as u32 + x, y0 as u32 + y).0);
        }
        let offsets: std::collections::HashSet<_> = (0..50)
            .map(|s| {
                let c = t.apply(img.clone(), &mut rng_from_seed(s));
                (c.get_pixel(0, 0)[0], c.get_pixel(0, 0)[1])
            })
            .collect();
        assert!(offsets.len() > 10, "offsets should vary with the seed");
    }

    #[test]
    fn flip_mirrors_columns_at_p_one_and_never_at_p_zero() {
        let img = gradient(5, 3);
        let f = Transform::HorizontalFlip { p: 1.0 }.apply(img.clone(), &mut rng_from_seed(1));
        assert_eq!(f.get_pixel(0, 2).0, img.get_pixel(4, 2).0);
        let n = Transform::HorizontalFlip { p: 0.0 }.apply(img.clone(), &mut rng_from_seed(1));
        assert_eq!(n, img);
    }

    #[test]
    fn circular_shift_is_a_column_rotation() {
        let img = gradient(7, 2);
        let out = Transform::CircularShift.apply(img.clone(), &mut rng_from_seed(5));
        let shift = out.get_pixel(0, 0)[0] as u32;
        for (x, y, p) in out.enumerate_pixels() {
            assert_eq!(p.0, img.get_pixel((x + shift) % 7, y).0);
        }
    }

    #[test]
    fn resize_shorter_keeps_the_aspect_ratio() {
        let out =
            Transform::ResizeShorter { size: 10 }.apply(gradient(40, 20), &mut rng_from_seed(0));
        assert_eq!(out.dimensions(), (20, 10));
        let out =
            Transform::ResizeShorter { size: 10 }.apply(gradient(15, 45), &mut rng_from_seed(0));
        assert_eq!(out.dimensions(), (10, 30));
    }

    #[test]
    fn resize_of_a_constant_image_stays_constant() {
        let img = RgbImage::from_pixel(50, 30, Rgb([10, 200, 77]));
        let out = Transform::Resize { size: [7, 9] }.apply(img, &mut rng_from_seed(0));
        assert_eq!(out.dimensions(), (9, 7));
        assert!(out.pixels().all(|p| p.0 == [10, 200, 77]));
    }

    #[test]
    fn random_resized_crop_windows_respect_scale_and_ratio() {
        let mut rng = rng_from_seed(11);
        for _ in 0..200 {
            let (x, y, w, h) =
                resized_crop_window(100, 80, [0.08, 1.0], [0.75, 4.0 / 3.0], &mut rng);
            assert!(x + w <= 100 && y + h <= 80 && w > 0 && h > 0);
            let frac = f64::from(w * h) / 8000.0;
            assert!((0.06..=1.0).contains(&frac), "area fraction {frac}");
            let r = f64::from(w) / f64::from(h);
            // Rounding w and h to integers moves the ratio a little past the bounds.
            assert!((0.7..=1.43).contains(&r), "ratio {r}");
        }
        let out = Transform::random_resized_crop([16, 16]).apply(gradient(100, 80), &mut rng);
        assert_eq!(out.dimensions(), (16, 16));
    }

    #[test]
    fn random_resized_crop_falls_back_to_a_centred_window() {
        // A 1000 x 10 strip cannot hold any window with ratio <= 4/3 and area >= 50%.
        let (x, y, w, h) = resized_crop_window(
            1000,
            10,
            [0.5, 1.0],
            [0.75, 4.0 / 3.0],
            &mut rng_from_seed(0),
        );
        assert_eq!((w, h), (13, 10));
        assert_eq!((x, y), (493, 0));
    }

    #[test]
    fn ten_crop_gives_corners_centre_and_their_mirrors() {
        let img = gradient(10, 8);
        let crops = ten_crop(&img, [4, 4]);
        assert_eq!(crops.len(), 10);
        assert_eq!(crops[0].get_pixel(0, 0).0[..2], [0, 0]);
        assert_eq!(crops[1].get_pixel(0, 0).0[..2], [6, 0]);
        assert_eq!(crops[2].get_pixel(0, 0).0[..2], [0, 4]);
        assert_eq!(crops[3].get_pixel(0, 0).0[..2], [6, 4]);
        assert_eq!(crops[4].get_pixel(0, 0).0[..2], [3, 2]);
        // The mirrored top-left crop is the flipped top-right corner of the original.
        assert_eq!(crops[5].get_pixel(0, 0).0[..2], [9, 0]);
        for c in &crops {
            assert_eq!(c.dimensions(), (4, 4));
        }
    }

    #[test]
    fn box_crop_truncates_coordinates_like_pil() {
        let img = gradient(20, 20);
        let out = crop_to_box(&img, [2.7, 3.2, 9.9, 7.5]);
        assert_eq!(out.dimensions(), (7, 4));
        assert_eq!(out.get_pixel(0, 0).0[..2], [2, 3]);
        // Out-of-image and degenerate boxes never panic.
        assert_eq!(
            crop_to_box(&img, [-5.0, -5.0, 50.0, 50.0]).dimensions(),
            (20, 20)
        );
        assert_eq!(
            crop_to_box(&img, [5.0, 5.0, 5.0, 9.0]).dimensions(),
            (20, 20)
        );
    }

    #[test]
    fn box_rescaling_scales_each_axis() {
        let b = rescale_box([10.0, 20.0, 30.0, 40.0], [100, 50], [200, 200]);
        assert_eq!(b, [40.0, 40.0, 120.0, 80.0]);
    }

    #[test]
    fn normalization_is_planar_and_uses_mean_and_std() {
        let img = RgbImage::from_fn(2, 1, |x, _| {
            if x == 0 {
                Rgb([255, 0, 51])
            } else {
                Rgb([0, 255, 102])
            }
        });
        let p = Pipeline::new(vec![]).with_normalization([0.5, 0.5, 0.0], [0.5, 0.25, 0.2]);
        let v = p.normalize(&img);
        let want = [1.0, -1.0, -2.0, 2.0, 1.0, 2.0];
        for (a, b) in v.iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{v:?}");
        }
    }

    #[test]
    fn pipeline_reports_its_output_size() {
        let p = Pipeline::new(vec![
            Transform::Resize { size: [36, 36] },
            Transform::RandomCrop { size: [32, 32] },
            Transform::HorizontalFlip { p: 0.5 },
        ]);
        assert_eq!(p.output_size(), Some([32, 32]));
        let (v, hw) = p.apply(gradient(50, 40), None, &mut rng_from_seed(0));
        assert_eq!(hw, [32, 32]);
        assert_eq!(v.len(), 3 * 32 * 32);
    }
}
