//! The polar transform of cross-view geo-localisation: an aerial (satellite) image, centred on
//! the camera, unrolled into a panorama-shaped image whose columns are compass directions and
//! whose rows are distances from the centre, so that it lines up with a ground panorama.
//!
//! This is the transform that made the polar aerial files of CVUSA and CVACT (SAFA, Shi et al.
//! NeurIPS 2019, `script/data_preparation.py` of `shiyujiao/cross_view_localization_SAFA`),
//! reproduced value for value: the same sample positions, and the same bilinear rule, quirks
//! included (truncation toward zero, zero outside the image). `tests/parity/polar_reference.py`
//! is an independent NumPy version the parity test compares against.

use std::f64::consts::PI;
use std::path::Path;

use image::RgbImage;

use crate::{DatasetError, Result};

/// Aerial image -> `[height, width]` polar panorama.
///
/// Output pixel `(i, j)` samples the aerial image at
///
/// ```text
/// r     = radius / height * (height - 1 - i)       (row 0 is the far edge, the last row the centre)
/// theta = 2 pi j / width
/// x     = center_row + r cos(theta)                 (x indexes the aerial image's rows)
/// y     = center_col - r sin(theta)                 (y indexes its columns)
/// ```
///
/// so column 0 looks straight down the image (towards the bottom edge) and the columns sweep
/// clockwise as seen; rotating the aerial image by 90 degrees counterclockwise shifts the
/// panorama's columns left by `width / 4`. Pixel `(x, y)` is sampled at integer coordinates
/// (`x = 2` is the centre of row 2).
///
/// Defaults, for an input of `rows x cols` pixels: the centre is `(rows / 2, cols / 2)` and the
/// radius `min(rows, cols) / 2`, which for SAFA's square `S x S` inputs is its `S / 2` for
/// both. (`S / 2` is half a pixel past the image's geometric centre `(S - 1) / 2`; the
/// defaults keep it so the output matches the published polar files.)
///
/// Sampling is SAFA's `sample_bilinear`: the four neighbours `trunc(x) + {0, 1}`,
/// `trunc(y) + {0, 1}` (truncation toward zero, as NumPy's `astype(int)`), each read as 0 when
/// outside the image, weighted bilinearly. For coordinates in `(-1, 0)` truncation is not the
/// floor, so the weights there leave `[0, 1]`; [`PolarTransform::apply`] clamps for that
/// reason.
///
/// ```
/// # use metron_datasets::PolarTransform;
/// let aerial = image::RgbImage::new(750, 750);
/// let polar = PolarTransform::new(128, 512).apply(&aerial).unwrap();
/// assert_eq!(polar.dimensions(), (512, 128));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PolarTransform {
    /// Output height (rows): the number of distance steps from the far edge to the centre.
    pub height: u32,
    /// Output width (columns): the number of directions over the full circle.
    pub width: u32,
    /// The centre `[row, col]` in input pixels; `None`: `[rows / 2, cols / 2]`.
    pub center: Option<[f64; 2]>,
    /// The radius in input pixels that row 0 is (almost) at; `None`: `min(rows, cols) / 2`.
    pub radius: Option<f64>,
}

impl PolarTransform {
    /// A `height x width` output with the default centre and radius.
    pub fn new(height: u32, width: u32) -> Self {
        Self {
            height,
            width,
            center: None,
            radius: None,
        }
    }

    /// Centre the transform at `[row, col]` (input pixels, fractional allowed).
    pub fn with_center(mut self, center: [f64; 2]) -> Self {
        self.center = Some(center);
        self
    }

    /// The radius in input pixels covered by the output's rows.
    pub fn with_radius(mut self, radius: f64) -> Self {
        self.radius = Some(radius);
        self
    }

    /// Checks what does not depend on the input: a non-zero output size, a finite centre and a
    /// positive finite radius. [`Self::apply_f64`] and [`Self::apply`] call it; call it early
    /// to reject a bad configuration before any image is read.
    pub fn validate(&self) -> Result<()> {
        if self.height == 0 || self.width == 0 {
            return Err(invalid(
                "PolarTransform.height/width",
                format!(
                    "the output size must be non-zero, got {}x{}",
                    self.height, self.width
                ),
            ));
        }
        if let Some(c) = self.center
            && !(c[0].is_finite() && c[1].is_finite())
        {
            return Err(invalid(
                "PolarTransform.center",
                format!("must be finite, got [{}, {}]", c[0], c[1]),
            ));
        }
        if let Some(r) = self.radius
            && !(r.is_finite() && r > 0.0)
        {
            return Err(invalid(
                "PolarTransform.radius",
                format!("must be a positive finite number of pixels, got {r}"),
            ));
        }
        Ok(())
    }

    /// The centre `[row, col]` and radius used for a `rows x cols` input.
    pub fn geometry(&self, rows: usize, cols: usize) -> ([f64; 2], f64) {
        let center = self
            .center
            .unwrap_or([rows as f64 / 2.0, cols as f64 / 2.0]);
        let radius = self.radius.unwrap_or(rows.min(cols) as f64 / 2.0);
        (center, radius)
    }

    /// Transforms a float image.
    ///
    /// # Shapes
    /// - `pixels`: `[rows, cols, channels]`, row-major (HWC), `rows * cols * channels` values
    /// - returns: `[height, width, channels]`, row-major
    ///
    /// A zero-size input, a buffer of the wrong length or an invalid configuration (see
    /// [`Self::validate`]) is a [`DatasetError::InvalidArgument`].
    pub fn apply_f64(
        &self,
        pixels: &[f64],
        rows: usize,
        cols: usize,
        channels: usize,
    ) -> Result<Vec<f64>> {
        self.validate()?;
        if rows == 0 || cols == 0 || channels == 0 {
            return Err(invalid(
                "PolarTransform input",
                format!("the image must be non-empty, got {rows}x{cols}x{channels}"),
            ));
        }
        let want = rows.checked_mul(cols).and_then(|n| n.checked_mul(channels));
        if want != Some(pixels.len()) {
            return Err(invalid(
                "PolarTransform input",
                format!(
                    "{} values for a {rows}x{cols}x{channels} image",
                    pixels.len()
                ),
            ));
        }
        let (h, w) = (self.height as usize, self.width as usize);
        let len = h
            .checked_mul(w)
            .and_then(|n| n.checked_mul(channels))
            .ok_or_else(|| {
                invalid(
                    "PolarTransform.height/width",
                    format!("a {h}x{w}x{channels} output does not fit in memory"),
                )
            })?;
        let ([cx, cy], radius) = self.geometry(rows, cols);
        let image = Image {
            pixels,
            rows,
            cols,
            channels,
        };

        // The operations are grouped as in SAFA's NumPy expression, `(R / H * (H - 1 - i)) *
        // cos(2 pi j / W)`, so the sample positions agree with the reference to the last bit
        // (up to the libm's cos/sin).
        let directions: Vec<(f64, f64)> = (0..w)
            .map(|j| {
                let theta = 2.0 * PI * j as f64 / w as f64;
                (theta.cos(), theta.sin())
            })
            .collect();
        let step = radius / h as f64;
        let mut out = vec![0.0; len];
        for (i, row) in out.chunks_exact_mut(w * channels).enumerate() {
            let r = step * (h - 1 - i) as f64;
            for (px, &(cos, sin)) in row.chunks_exact_mut(channels).zip(&directions) {
                image.sample_bilinear(cx + r * cos, cy - r * sin, px);
            }
        }
        Ok(out)
    }

    /// Transforms an 8-bit RGB image (`rows` = its height, `cols` = its width) into a
    /// `width x height` one, rounding each value to the nearest integer and clamping to
    /// `0..=255`.
    pub fn apply(&self, img: &RgbImage) -> Result<RgbImage> {
        let (rows, cols) = (img.height() as usize, img.width() as usize);
        let pixels: Vec<f64> = img.as_raw().iter().map(|&v| f64::from(v)).collect();
        let out = self.apply_f64(&pixels, rows, cols, 3)?;
        let bytes: Vec<u8> = out
            .iter()
            .map(|&v| v.round().clamp(0.0, 255.0) as u8)
            .collect();
        // `apply_f64` returned exactly width * height * 3 values.
        Ok(RgbImage::from_raw(self.width, self.height, bytes).expect("3 values per pixel"))
    }

    /// Decodes the PNG or JPEG at `path` and transforms it with [`Self::apply`]. Unreadable or
    /// corrupt files are a [`DatasetError::Io`] or [`DatasetError::Image`] naming the file.
    pub fn apply_file(&self, path: &Path) -> Result<RgbImage> {
        let bytes = std::fs::read(path).map_err(|e| DatasetError::io(path, e))?;
        let img = image::load_from_memory(&bytes).map_err(|e| DatasetError::Image {
            path: path.to_path_buf(),
            why: e.to_string(),
        })?;
        self.apply(&img.to_rgb8())
    }
}

fn invalid(field: &str, why: String) -> DatasetError {
    DatasetError::InvalidArgument {
        field: field.to_string(),
        why,
    }
}

/// A borrowed HWC float image.
struct Image<'a> {
    pixels: &'a [f64],
    rows: usize,
    cols: usize,
    channels: usize,
}

impl Image<'_> {
    /// Channel `c` of pixel `(x, y)`, or 0 outside the image. The indices stay floats until
    /// they are known to be in range, so far-off positions cannot overflow a cast.
    fn at(&self, x: f64, y: f64, c: usize) -> f64 {
        if x >= 0.0 && x < self.rows as f64 && y >= 0.0 && y < self.cols as f64 {
            self.pixels[(x as usize * self.cols + y as usize) * self.channels + c]
        } else {
            0.0
        }
    }

    /// SAFA's `sample_bilinear` at row `x`, column `y`, into `out` (one value per channel).
    fn sample_bilinear(&self, x: f64, y: f64, out: &mut [f64]) {
        // Truncation toward zero, not the floor: the reference's `astype(int)`.
        let (x0, y0) = (x.trunc(), y.trunc());
        let (x1, y1) = (x0 + 1.0, y0 + 1.0);
        for (c, v) in out.iter_mut().enumerate() {
            let fx1 = (x1 - x) * self.at(x0, y0, c) + (x - x0) * self.at(x1, y0, c);
            let fx2 = (x1 - x) * self.at(x0, y1, c) + (x - x0) * self.at(x1, y1, c);
            *v = (y1 - y) * fx1 + (y - y0) * fx2;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `rows x cols x channels` image of distinct, irregular values.
    fn image(rows: usize, cols: usize, channels: usize) -> Vec<f64> {
        (0..rows * cols * channels)
            .map(|k| ((k * 7919 + 13) % 251) as f64 + 0.125 * (k % 3) as f64)
            .collect()
    }

    fn px(img: &[f64], cols: usize, channels: usize, x: usize, y: usize) -> &[f64] {
        &img[(x * cols + y) * channels..][..channels]
    }

    fn assert_close(a: &[f64], b: &[f64], tol: f64) {
        assert_eq!(a.len(), b.len());
        for (k, (x, y)) in a.iter().zip(b).enumerate() {
            assert!((x - y).abs() <= tol, "value {k}: {x} vs {y}");
        }
    }

    #[test]
    fn hand_computed_samples_of_a_4x4_image() {
        // S = 4: centre (2, 2), radius 2. With H = 2 the top row is at r = 2 * 1 / 2 = 1.
        let (s, ch) = (4, 2);
        let img = image(s, s, ch);
        let out = PolarTransform::new(2, 8).apply_f64(&img, s, s, ch).unwrap();
        let at = |i: usize, j: usize| &out[(i * 8 + j) * ch..][..ch];
        // The last row is r = 0: the centre pixel (2, 2) in every direction.
        for j in 0..8 {
            assert_close(at(1, j), px(&img, s, ch, 2, 2), 1e-12);
        }
        // Column 0 of the top row looks down: (cx + R (H-1)/H, cy) = (3, 2).
        assert_close(at(0, 0), px(&img, s, ch, 3, 2), 1e-12);
        // A quarter turn later (theta = pi/2) it looks left: (2, 2 - 1) = (2, 1).
        assert_close(at(0, 2), px(&img, s, ch, 2, 1), 1e-12);
        // Half a turn: up, (1, 2); three quarters: right, (2, 3).
        assert_close(at(0, 4), px(&img, s, ch, 1, 2), 1e-12);
        assert_close(at(0, 6), px(&img, s, ch, 2, 3), 1e-12);
    }

    #[test]
    fn between_pixels_and_past_the_edge() {
        // H = 4: the top row is at r = 2 * 3 / 4 = 1.5.
        let (s, ch) = (4, 1);
        let img = image(s, s, ch);
        let out = PolarTransform::new(4, 8).apply_f64(&img, s, s, ch).unwrap();
        let p = |x: usize, y: usize| px(&img, s, ch, x, y)[0];
        // Down: x = 3.5, halfway between row 3 and row 4, which is outside and reads 0.
        assert!((out[0] - 0.5 * p(3, 2)).abs() < 1e-12, "{}", out[0]);
        // Up: x = 0.5, halfway between rows 0 and 1.
        let want = 0.5 * p(0, 2) + 0.5 * p(1, 2);
        assert!((out[4] - want).abs() < 1e-9, "{} vs {want}", out[4]);
        // Diagonal down-left (theta = pi/4): (x, y) = (2 + d, 2 - d) = (3.06, 0.94) with
        // d = 1.5 / sqrt 2: rows 3 and 4 (outside: 0), columns 0 and 1.
        let d = 1.5 / 2f64.sqrt();
        let (wx, wy) = (2.0 + d - 3.0, 2.0 - d);
        let want = (1.0 - wy) * (1.0 - wx) * p(3, 0) + wy * (1.0 - wx) * p(3, 1);
        assert!((out[1] - want).abs() < 1e-9, "{} vs {want}", out[1]);
    }

    #[test]
    fn rotating_the_aerial_image_a_quarter_turn_shifts_the_panorama_a_quarter() {
        // Centred on the geometric centre (S - 1) / 2, a 90-degree rotation maps the pixel grid
        // (and the image's bounds) onto itself, and bilinear sampling commutes with it; with
        // W divisible by 4 the rotated directions are columns of the panorama.
        let (s, ch, h, w) = (9, 3, 5usize, 16usize);
        let c = (s - 1) as f64 / 2.0;
        let t = PolarTransform::new(h as u32, w as u32)
            .with_center([c, c])
            .with_radius(c);
        let img = image(s, s, ch);
        // Counterclockwise as seen: new[i][j] = old[j][S - 1 - i] (NumPy's rot90).
        let mut rotated = vec![0.0; img.len()];
        for i in 0..s {
            for j in 0..s {
                let src = px(&img, s, ch, j, s - 1 - i).to_vec();
                rotated[(i * s + j) * ch..][..ch].copy_from_slice(&src);
            }
        }
        let before = t.apply_f64(&img, s, s, ch).unwrap();
        let after = t.apply_f64(&rotated, s, s, ch).unwrap();
        let mut shifted = vec![0.0; before.len()];
        for i in 0..h {
            for j in 0..w {
                let src = &before[(i * w + (j + w / 4) % w) * ch..][..ch];
                shifted[(i * w + j) * ch..][..ch].copy_from_slice(src);
            }
        }
        assert_close(&after, &shifted, 1e-9);
        // Not vacuous: the panorama is not constant along its columns.
        assert!((before[0] - before[ch]).abs() > 1e-3);
    }

    #[test]
    fn non_square_defaults_centre_and_shorter_side() {
        let t = PolarTransform::new(4, 8);
        assert_eq!(t.geometry(6, 10), ([3.0, 5.0], 3.0));
        let t = t.with_center([1.5, 2.0]).with_radius(7.0);
        assert_eq!(t.geometry(6, 10), ([1.5, 2.0], 7.0));
    }

    #[test]
    fn rgb_output_is_rounded_and_sized_width_by_height() {
        let img = RgbImage::from_fn(6, 4, |x, y| image::Rgb([(x * 40) as u8, (y * 60) as u8, 7]));
        let t = PolarTransform::new(3, 12);
        let out = t.apply(&img).unwrap();
        assert_eq!(out.dimensions(), (12, 3));
        let pixels: Vec<f64> = img.as_raw().iter().map(|&v| f64::from(v)).collect();
        let f = t.apply_f64(&pixels, 4, 6, 3).unwrap();
        for (got, want) in out.as_raw().iter().zip(&f) {
            assert_eq!(f64::from(*got), want.round().clamp(0.0, 255.0));
        }
        // The bottom row is the centre pixel (row 2, column 3).
        assert_eq!(out.get_pixel(5, 2).0, [120, 120, 7]);
    }

    #[test]
    fn bad_configurations_and_inputs_are_typed_errors() {
        let img = vec![0.0; 4 * 4 * 3];
        let cases = [
            (PolarTransform::new(0, 8), "height/width"),
            (PolarTransform::new(8, 0), "height/width"),
            (PolarTransform::new(8, 8).with_radius(f64::NAN), "radius"),
            (PolarTransform::new(8, 8).with_radius(0.0), "radius"),
            (PolarTransform::new(8, 8).with_radius(-2.0), "radius"),
            (
                PolarTransform::new(8, 8).with_center([f64::INFINITY, 1.0]),
                "center",
            ),
        ];
        for (t, field) in cases {
            let err = t.apply_f64(&img, 4, 4, 3).unwrap_err();
            assert!(
                matches!(err, DatasetError::InvalidArgument { .. })
                    && err.to_string().contains(field),
                "{err}"
            );
        }
        let t = PolarTransform::new(8, 8);
        for (rows, cols, ch) in [(0, 4, 3), (4, 0, 3), (4, 4, 0)] {
            let err = t.apply_f64(&[], rows, cols, ch).unwrap_err();
            assert!(err.to_string().contains("non-empty"), "{err}");
        }
        let err = t.apply_f64(&img, 4, 5, 3).unwrap_err();
        assert!(err.to_string().contains("48 values for a 4x5x3"), "{err}");
        assert!(t.apply(&RgbImage::new(0, 3)).is_err());
    }
}
