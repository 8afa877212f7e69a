//! A cross-view task that can be trained here, made from real Omniglot drawings, because no
//! cross-view dataset can be downloaded: every drawing is a "place"; its aerial view is the
//! drawing itself and its ground view is the drawing unrolled around a point near its centre
//! (the polar transform that relates an aerial image to the street-level panorama taken below
//! it), with the camera's position, the visible radius and the heading random. The other
//! drawers' drawings of the same character look alike from above: they are the place's
//! semi-positives, as VIGOR's neighbouring satellite tiles.

use std::sync::Arc;

use image::imageops::{self, FilterType};
use image::{Rgb, RgbImage};
use rand::Rng as _;
use serde::{Deserialize, Serialize};

use metron_core::{Rng, rng_from_seed, split_seed};
use metron_datasets::{
    CustomTransform, ImageSource, InMemoryImages, PolarTransform, Split, Transform,
};

use super::super::SystemError;

/// How a ground view is made from a drawing.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroundViewConfig {
    /// `[height, width]` of the panorama, in pixels.
    pub size: [u32; 2],
    /// Largest offset of the camera from the drawing's centre along each axis, as a fraction
    /// of the drawing's side (uniform in `[-jitter, jitter]`).
    pub center_jitter: f64,
    /// The visible radius, as a fraction of half the drawing's side: uniform in
    /// `[radius[0], radius[1]]`.
    pub radius: [f64; 2],
    /// Turn the camera to a uniformly random heading (a circular shift of the columns).
    pub random_heading: bool,
}

/// The random choices behind one ground view.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GroundViewParams {
    /// Camera offset from the centre, `(row, column)`, as fractions of the side.
    pub center_offset: [f64; 2],
    /// Visible radius as a fraction of half the side.
    pub radius: f64,
    /// Columns the panorama is rotated by.
    pub heading: u32,
}

impl GroundViewConfig {
    /// Refuses sizes and ranges that make no view.
    pub fn check(&self) -> Result<(), SystemError> {
        let [lo, hi] = self.radius;
        let bad = |what: String| Err(SystemError::Usage(what));
        if self.size[0] == 0 || self.size[1] == 0 {
            return bad(format!(
                "the ground view needs a positive size, got {:?}",
                self.size
            ));
        }
        if !(self.center_jitter.is_finite() && (0.0..0.5).contains(&self.center_jitter)) {
            return bad(format!(
                "the camera jitter must be in [0, 0.5) of the side, got {}",
                self.center_jitter
            ));
        }
        if !(lo.is_finite() && hi.is_finite() && lo > 0.0 && lo <= hi) {
            return bad(format!(
                "the visible radius must be a range 0 < lo <= hi, got {lo}..{hi}"
            ));
        }
        Ok(())
    }

    /// Draws the camera of one view from `rng`.
    pub fn draw(&self, rng: &mut Rng) -> GroundViewParams {
        let j = self.center_jitter;
        let mut offset = || {
            if j > 0.0 {
                rng.random_range(-j..=j)
            } else {
                0.0
            }
        };
        let center_offset = [offset(), offset()];
        let [lo, hi] = self.radius;
        let radius = if hi > lo {
            rng.random_range(lo..=hi)
        } else {
            lo
        };
        let heading = if self.random_heading {
            rng.random_range(0..self.size[1])
        } else {
            0
        };
        GroundViewParams {
            center_offset,
            radius,
            heading,
        }
    }

    /// The ground view of `drawing` (black ink on white, as Omniglot's files) taken with
    /// `camera`: strokes bright on black, so that what lies beyond the drawing reads as empty.
    pub fn render(&self, drawing: &RgbImage, camera: &GroundViewParams) -> RgbImage {
        let (w, h) = drawing.dimensions();
        let side = f64::from(w.min(h));
        let center = [
            f64::from(h) / 2.0 + camera.center_offset[0] * side,
            f64::from(w) / 2.0 + camera.center_offset[1] * side,
        ];
        let [ph, pw] = self.size;
        let panorama = PolarTransform::new(ph, pw)
            .with_center(center)
            .with_radius(camera.radius * side / 2.0)
            .apply(&inverted(drawing))
            // Only an empty drawing fails (the configuration was checked): an empty view.
            .unwrap_or_else(|_| RgbImage::new(pw, ph));
        roll_columns(&panorama, camera.heading)
    }
}

/// Strokes bright on black.
pub fn inverted(img: &RgbImage) -> RgbImage {
    let mut out = img.clone();
    for p in out.pixels_mut() {
        *p = Rgb([255 - p[0], 255 - p[1], 255 - p[2]]);
    }
    out
}

/// The aerial view of a drawing: inverted and resized to `side` x `side`.
pub fn aerial_view(drawing: &RgbImage, side: u32) -> RgbImage {
    imageops::resize(&inverted(drawing), side, side, FilterType::Triangle)
}

fn roll_columns(img: &RgbImage, shift: u32) -> RgbImage {
    let (w, h) = img.dimensions();
    if w == 0 || shift.is_multiple_of(w) {
        return img.clone();
    }
    RgbImage::from_fn(w, h, |x, y| *img.get_pixel((x + shift) % w, y))
}

/// The training-time ground view as a pipeline step: a fresh camera per image and epoch,
/// drawn from the loader's per-image generator (so a resumed run sees the same views).
pub fn ground_view_step(config: GroundViewConfig) -> Transform {
    Transform::Custom(CustomTransform::new(
        "omniglot ground view",
        move |img, rng| config.render(&img, &config.draw(rng)),
    ))
}

/// The training-time aerial view as a pipeline step.
pub fn aerial_view_step(side: u32) -> Transform {
    Transform::Custom(CustomTransform::new(
        "omniglot aerial view",
        move |img, _| aerial_view(&img, side),
    ))
}

/// The evaluation places of a split, rendered once: place `i` is drawing `i`, its ground view
/// taken with a camera drawn from `(seed, i)` alone.
#[derive(Debug, Clone)]
pub struct CrossViewPlaces {
    /// Ground views (queries), place `i` at index `i`; labels are the characters.
    pub ground: Arc<InMemoryImages>,
    /// Aerial views (references), place `i` at index `i`.
    pub aerial: Arc<InMemoryImages>,
    /// Per place, the other places of its character (semi-positives).
    pub semi_positives: Arc<Vec<Vec<usize>>>,
}

impl CrossViewPlaces {
    /// Renders every drawing of `split` (or the first `per_class` drawings of each character
    /// when given), deterministically in `seed`. An unreadable drawing is an error naming it.
    pub fn render(
        split: &Split,
        ground: &GroundViewConfig,
        aerial_side: u32,
        per_class: Option<usize>,
        seed: u64,
    ) -> Result<Self, SystemError> {
        let mut taken = vec![0usize; split.classes.len()];
        let chosen: Vec<usize> = (0..split.samples.len())
            .filter(|&i| {
                let label = split.samples[i].label;
                taken[label] += 1;
                per_class.is_none_or(|k| taken[label] <= k)
            })
            .collect();
        let source: &dyn ImageSource = &split.samples;
        let mut grounds = Vec::with_capacity(chosen.len());
        let mut aerials = Vec::with_capacity(chosen.len());
        let mut labels = Vec::with_capacity(chosen.len());
        for (place, &i) in chosen.iter().enumerate() {
            let drawing = source.image(i)?;
            let mut rng = rng_from_seed(split_seed(seed, place as u64));
            grounds.push(ground.render(&drawing, &ground.draw(&mut rng)));
            aerials.push(aerial_view(&drawing, aerial_side));
            labels.push(source.label(i));
        }
        let semi_positives = (0..labels.len())
            .map(|i| {
                (0..labels.len())
                    .filter(|&j| j != i && labels[j] == labels[i])
                    .collect()
            })
            .collect();
        Ok(CrossViewPlaces {
            ground: Arc::new(InMemoryImages::new(
                format!("{} ground views", split.name),
                grounds,
                labels.clone(),
            )?),
            aerial: Arc::new(InMemoryImages::new(
                format!("{} aerial views", split.name),
                aerials,
                labels,
            )?),
            semi_positives: Arc::new(semi_positives),
        })
    }

    /// Number of places.
    pub fn len(&self) -> usize {
        self.ground.images.len()
    }

    /// Whether there is no place.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drawing() -> RgbImage {
        // A white square with a black cross: ink where row == col or row + col == 19.
        RgbImage::from_fn(20, 20, |x, y| {
            if x == y || x + y == 19 {
                Rgb([0, 0, 0])
            } else {
                Rgb([255, 255, 255])
            }
        })
    }

    fn config() -> GroundViewConfig {
        GroundViewConfig {
            size: [8, 32],
            center_jitter: 0.1,
            radius: [0.8, 1.2],
            random_heading: true,
        }
    }

    #[test]
    fn a_camera_is_a_function_of_its_seed_and_stays_in_range() {
        let c = config();
        let draw = |s| c.draw(&mut rng_from_seed(s));
        assert_eq!(draw(3), draw(3));
        assert_ne!(draw(3), draw(4));
        for s in 0..200 {
            let p = draw(s);
            assert!(p.center_offset.iter().all(|o| o.abs() <= 0.1));
            assert!((0.8..=1.2).contains(&p.radius) && p.heading < 32);
        }
    }

    #[test]
    fn the_heading_rotates_the_panorama_and_ink_becomes_bright() {
        let c = config();
        let still = GroundViewParams {
            center_offset: [0.0, 0.0],
            radius: 1.0,
            heading: 0,
        };
        let turned = GroundViewParams {
            heading: 5,
            ..still
        };
        let a = c.render(&drawing(), &still);
        let b = c.render(&drawing(), &turned);
        assert_eq!(a.dimensions(), (32, 8));
        for y in 0..8 {
            for x in 0..32 {
                assert_eq!(b.get_pixel(x, y), a.get_pixel((x + 5) % 32, y));
            }
        }
        // Ink (the cross through the centre) is bright: the bottom row samples the centre.
        assert!(a.get_pixel(0, 7)[0] > 128, "{:?}", a.get_pixel(0, 7));
        let aerial = aerial_view(&drawing(), 10);
        assert_eq!(aerial.dimensions(), (10, 10));
        assert!(aerial.get_pixel(0, 0)[0] > aerial.get_pixel(0, 5)[0]);
    }
}
