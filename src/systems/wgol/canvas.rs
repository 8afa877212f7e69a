//! A localisation task that can be trained here, made from real Omniglot drawings, because
//! neither CUB nor ILSVRC can be downloaded: each image is a canvas holding one glyph of a
//! known character (the class) at a random position and scale, and distractor glyphs of
//! other characters around it. The ground-truth box is exact: the box of the target glyph's
//! ink as drawn on the canvas.

use std::sync::Arc;

use image::imageops::{self, FilterType};
use image::{GrayImage, Luma, Rgb, RgbImage};
use rand::Rng as _;
use serde::{Deserialize, Serialize};

use metron_core::{Rng, rng_from_seed, split_seed};
use metron_datasets::{ImageSource, Split};
use metron_localization::PixelBox;

use crate::systems::SystemError;

/// Ink is a pixel darker than this (Omniglot's files are black strokes on white).
const INK: u8 = 128;

/// How canvases are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CanvasConfig {
    /// Side of the square canvas, in pixels.
    pub size: u32,
    /// The target glyph's longer ink side, uniform in `[lo, hi]` pixels.
    pub target_side: [u32; 2],
    /// Distractor glyphs per canvas.
    pub distractors: usize,
    /// A distractor's longer ink side, uniform in `[lo, hi]` pixels.
    pub distractor_side: [u32; 2],
}

impl CanvasConfig {
    /// Refuses sizes that cannot be drawn.
    pub fn check(&self) -> Result<(), SystemError> {
        let bad = |what: String| Err(SystemError::Usage(what));
        for (name, [lo, hi]) in [
            ("target", self.target_side),
            ("distractor", self.distractor_side),
        ] {
            if lo < 4 || lo > hi || hi > self.size {
                return bad(format!(
                    "the {name} glyph side must be a range 4 <= lo <= hi <= canvas size {}, \
                     got {lo}..{hi}",
                    self.size
                ));
            }
        }
        Ok(())
    }
}

/// One drawing, cropped to its ink: dark ink (0) on white (255).
#[derive(Debug, Clone)]
pub struct Glyph {
    /// The ink crop.
    pub ink: GrayImage,
    /// Its character's class.
    pub label: usize,
}

/// The box of the pixels darker than [`INK`], or `None` for an image without ink.
fn ink_box(img: &GrayImage) -> Option<PixelBox> {
    let mut b: Option<PixelBox> = None;
    for (x, y, p) in img.enumerate_pixels() {
        if p[0] < INK {
            let (x, y) = (i64::from(x), i64::from(y));
            b = Some(match b {
                None => PixelBox::new(x, y, x, y),
                Some(b) => PixelBox::new(b.x1.min(x), b.y1.min(y), b.x2.max(x), b.y2.max(y)),
            });
        }
    }
    b
}

impl Glyph {
    /// The drawing cropped to its ink, or `None` when it has none.
    pub fn from_drawing(drawing: &RgbImage, label: usize) -> Option<Glyph> {
        let gray = GrayImage::from_fn(drawing.width(), drawing.height(), |x, y| {
            let p = drawing.get_pixel(x, y);
            Luma([((u32::from(p[0]) + u32::from(p[1]) + u32::from(p[2])) / 3) as u8])
        });
        let b = ink_box(&gray)?;
        let ink = imageops::crop_imm(
            &gray,
            b.x1 as u32,
            b.y1 as u32,
            (b.x2 - b.x1 + 1) as u32,
            (b.y2 - b.y1 + 1) as u32,
        )
        .to_image();
        Some(Glyph { ink, label })
    }

    /// The glyph scaled so that its longer side is `side`, ink made binary (0 or 255).
    fn scaled(&self, side: u32) -> GrayImage {
        let (w, h) = self.ink.dimensions();
        let long = w.max(h).max(1);
        let sw = (u64::from(w) * u64::from(side) / u64::from(long)).max(1) as u32;
        let sh = (u64::from(h) * u64::from(side) / u64::from(long)).max(1) as u32;
        let mut s = imageops::resize(&self.ink, sw, sh, FilterType::Triangle);
        for p in s.pixels_mut() {
            p[0] = if p[0] < INK { 0 } else { 255 };
        }
        s
    }
}

/// One canvas: the image, the target's class and the box of its ink.
#[derive(Debug, Clone)]
pub struct Canvas {
    /// White canvas, black ink.
    pub image: RgbImage,
    /// The target glyph's class.
    pub label: usize,
    /// The box of the target's ink on the canvas (inclusive pixels).
    pub gt_box: PixelBox,
}

fn boxes_touch(a: &PixelBox, b: &PixelBox, margin: i64) -> bool {
    a.x1 - margin <= b.x2 && b.x1 - margin <= a.x2 && a.y1 - margin <= b.y2 && b.y1 - margin <= a.y2
}

fn paste_min(canvas: &mut GrayImage, glyph: &GrayImage, x0: u32, y0: u32) {
    for (x, y, p) in glyph.enumerate_pixels() {
        let c = canvas.get_pixel_mut(x0 + x, y0 + y);
        c[0] = c[0].min(p[0]);
    }
}

fn side_in(rng: &mut Rng, [lo, hi]: [u32; 2]) -> u32 {
    if hi > lo {
        rng.random_range(lo..=hi)
    } else {
        lo
    }
}

/// Draws a canvas for `target` with distractors drawn from `distractors`, every choice from
/// `rng`. Distractors never come within 2 pixels of the target's box, so the box holds the
/// target's ink and nothing else; one that finds no place in 50 tries is left out.
pub fn render_canvas(
    config: &CanvasConfig,
    target: &Glyph,
    distractors: &[Glyph],
    rng: &mut Rng,
) -> Canvas {
    let size = config.size;
    let mut canvas = GrayImage::from_pixel(size, size, Luma([255]));
    let t = target.scaled(side_in(rng, config.target_side));
    let (tw, th) = t.dimensions();
    let tx = rng.random_range(0..=size - tw);
    let ty = rng.random_range(0..=size - th);
    paste_min(&mut canvas, &t, tx, ty);
    // The scaled glyph keeps ink at its edges (it was cropped to ink before scaling), but the
    // binarisation may thin an edge away: the box is measured on what was drawn.
    let local = ink_box(&t).unwrap_or(PixelBox::new(0, 0, i64::from(tw) - 1, i64::from(th) - 1));
    let gt_box = PixelBox::new(
        local.x1 + i64::from(tx),
        local.y1 + i64::from(ty),
        local.x2 + i64::from(tx),
        local.y2 + i64::from(ty),
    );
    if !distractors.is_empty() {
        for _ in 0..config.distractors {
            let d = &distractors[rng.random_range(0..distractors.len())];
            let g = d.scaled(side_in(rng, config.distractor_side));
            let (gw, gh) = g.dimensions();
            for _ in 0..50 {
                let x = rng.random_range(0..=size - gw);
                let y = rng.random_range(0..=size - gh);
                let b = PixelBox::new(
                    i64::from(x),
                    i64::from(y),
                    i64::from(x + gw) - 1,
                    i64::from(y + gh) - 1,
                );
                if !boxes_touch(&b, &gt_box, 2) {
                    paste_min(&mut canvas, &g, x, y);
                    break;
                }
            }
        }
    }
    let image = RgbImage::from_fn(size, size, |x, y| {
        let v = canvas.get_pixel(x, y)[0];
        Rgb([v, v, v])
    });
    Canvas {
        image,
        label: target.label,
        gt_box,
    }
}

/// The glyphs of the task: targets of `classes` characters split by drawer, and distractors
/// from other characters.
#[derive(Debug, Clone)]
pub struct CanvasGlyphs {
    /// Training targets (the first `train_drawers` drawings of each character).
    pub train: Arc<Vec<Glyph>>,
    /// Test targets (the character's other drawings).
    pub test: Arc<Vec<Glyph>>,
    /// Distractors: drawings of characters that are not classes.
    pub distractors: Arc<Vec<Glyph>>,
    /// The class names (`Alphabet/characterNN`).
    pub class_names: Vec<String>,
}

fn glyphs_of(source: &dyn ImageSource, indices: &[usize]) -> Result<Vec<Glyph>, SystemError> {
    let mut out = Vec::with_capacity(indices.len());
    for &i in indices {
        // An empty drawing has nothing to localise: it is left out.
        if let Some(g) = Glyph::from_drawing(&source.image(i)?, source.label(i)) {
            out.push(g);
        }
    }
    Ok(out)
}

impl CanvasGlyphs {
    /// The first `classes` characters of `targets` (drawings `0..train_drawers` of each for
    /// training, the rest for test) and the drawings of the first `distractor_classes`
    /// characters of `others`.
    pub fn read(
        targets: &Split,
        classes: usize,
        train_drawers: usize,
        others: &Split,
        distractor_classes: usize,
    ) -> Result<Self, SystemError> {
        if classes == 0 || classes > targets.classes.len() {
            return Err(SystemError::Usage(format!(
                "--classes must be in 1..={} (the characters of {}), got {classes}",
                targets.classes.len(),
                targets.name
            )));
        }
        let mut seen = vec![0usize; classes];
        let (mut train, mut test) = (Vec::new(), Vec::new());
        for (i, s) in targets.samples.iter().enumerate() {
            if s.label < classes {
                seen[s.label] += 1;
                if seen[s.label] <= train_drawers {
                    train.push(i);
                } else {
                    test.push(i);
                }
            }
        }
        if let Some(c) = seen.iter().position(|&n| n <= train_drawers) {
            return Err(SystemError::Usage(format!(
                "character {} has {} drawings: --train-drawers {train_drawers} leaves none for test",
                targets.classes[c], seen[c]
            )));
        }
        let distractor_idx: Vec<usize> = (0..others.samples.len())
            .filter(|&i| others.samples[i].label < distractor_classes)
            .collect();
        let (ts, os): (&dyn ImageSource, &dyn ImageSource) = (&targets.samples, &others.samples);
        Ok(CanvasGlyphs {
            train: Arc::new(glyphs_of(ts, &train)?),
            test: Arc::new(glyphs_of(ts, &test)?),
            distractors: Arc::new(glyphs_of(os, &distractor_idx)?),
            class_names: targets.classes[..classes].to_vec(),
        })
    }
}

/// Fixed canvases (an evaluation set): canvas `i` shows glyph `i % glyphs` drawn with the
/// generator of `(seed, i)` alone.
pub fn fixed_canvases(
    config: &CanvasConfig,
    glyphs: &[Glyph],
    distractors: &[Glyph],
    count: usize,
    seed: u64,
) -> Vec<Canvas> {
    (0..count)
        .map(|i| {
            let mut rng = rng_from_seed(split_seed(seed, i as u64));
            render_canvas(config, &glyphs[i % glyphs.len()], distractors, &mut rng)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stroke(w: u32, h: u32, f: impl Fn(u32, u32) -> bool) -> Glyph {
        let img = RgbImage::from_fn(
            w,
            h,
            |x, y| if f(x, y) { Rgb([0; 3]) } else { Rgb([255; 3]) },
        );
        Glyph::from_drawing(&img, 3).unwrap()
    }

    fn config() -> CanvasConfig {
        CanvasConfig {
            size: 64,
            target_side: [16, 30],
            distractors: 3,
            distractor_side: [10, 20],
        }
    }

    #[test]
    fn glyphs_are_cropped_to_their_ink() {
        // Ink on columns 5..=9 of rows 2..=11 of a 20 x 20 drawing.
        let g = stroke(20, 20, |x, y| (5..=9).contains(&x) && (2..=11).contains(&y));
        assert_eq!(g.ink.dimensions(), (5, 10));
        let blank = RgbImage::from_pixel(8, 8, Rgb([255; 3]));
        assert!(Glyph::from_drawing(&blank, 0).is_none());
    }

    #[test]
    fn canvases_are_a_function_of_the_seed_and_the_box_is_the_targets_ink() {
        // Strokes 3 pixels wide, as Omniglot's (a 1-pixel line fades below the ink level
        // when scaled down).
        let target = stroke(30, 30, |x, y| {
            x.abs_diff(y) <= 1 || (x + y).abs_diff(29) <= 1
        });
        let distractors = vec![stroke(20, 20, |x, _| x % 5 == 0)];
        let draw = |s| render_canvas(&config(), &target, &distractors, &mut rng_from_seed(s));
        let (a, b, c) = (draw(7), draw(7), draw(8));
        assert_eq!(a.image, b.image);
        assert_eq!(a.gt_box, b.gt_box);
        assert!(a.image != c.image);
        for s in 0..40 {
            let canvas = draw(s);
            let g = canvas.gt_box;
            assert_eq!(canvas.label, 3);
            // Redraw the target alone with the same generator: its ink box is the box.
            let alone = render_canvas(&config(), &target, &[], &mut rng_from_seed(s));
            let gray = GrayImage::from_fn(64, 64, |x, y| Luma([alone.image.get_pixel(x, y)[0]]));
            assert_eq!(ink_box(&gray), Some(g), "seed {s}");
            // Every ink pixel inside the box (grown by the 2-pixel margin) is the target's.
            for y in (g.y1 - 2).max(0)..=(g.y2 + 2).min(63) {
                for x in (g.x1 - 2).max(0)..=(g.x2 + 2).min(63) {
                    let (x, y) = (x as u32, y as u32);
                    assert_eq!(
                        canvas.image.get_pixel(x, y),
                        alone.image.get_pixel(x, y),
                        "seed {s} at ({x}, {y})"
                    );
                }
            }
            let long = (g.x2 - g.x1 + 1).max(g.y2 - g.y1 + 1);
            assert!((15..=30).contains(&long), "seed {s}: {g:?}");
        }
    }

    #[test]
    fn impossible_sizes_are_refused() {
        let mut c = config();
        c.target_side = [30, 80];
        assert!(
            c.check()
                .unwrap_err()
                .to_string()
                .contains("target glyph side")
        );
        assert!(config().check().is_ok());
    }
}
