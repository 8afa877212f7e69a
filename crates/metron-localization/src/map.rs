//! Heat map to box: the steps of WGOL's `localization_quick.py`.

use ndarray::{Array1, Array2, ArrayView2};

use crate::{LocalizationError, PixelBox, Result};

fn check(what: &'static str, map: &ArrayView2<'_, f32>) -> Result<()> {
    let (rows, cols) = map.dim();
    if rows == 0 || cols == 0 {
        return Err(LocalizationError::EmptySize { what, rows, cols });
    }
    if let Some(((row, col), _)) = map.indexed_iter().find(|(_, v)| !v.is_finite()) {
        return Err(LocalizationError::NonFinite { what, row, col });
    }
    Ok(())
}

/// `(map - min) / (max - min)`. A constant map has no extent to scale and becomes all zeros
/// (the original divides by zero there, which leaves no pixel above any threshold: the same
/// box in the end).
pub fn min_max_normalize(map: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
    check("min-max normalisation", &map)?;
    let min = map.iter().copied().fold(f32::INFINITY, f32::min);
    let max = map.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let range = max - min;
    Ok(if range > 0.0 {
        map.mapv(|v| (v - min) / range)
    } else {
        Array2::zeros(map.dim())
    })
}

/// Source position and weight of the right/lower neighbour for output index `d` of `out`
/// samples over `input` (OpenCV's `INTER_LINEAR`: pixel centres aligned, edges clamped).
fn source(d: usize, input: usize, out: usize) -> (usize, usize, f32) {
    let scale = input as f64 / out as f64;
    let f = (d as f64 + 0.5) * scale - 0.5;
    let lo = f.floor();
    let (mut i0, mut w) = (lo as i64, (f - lo) as f32);
    if i0 < 0 {
        i0 = 0;
        w = 0.0;
    }
    let last = input as i64 - 1;
    if i0 >= last {
        return (last as usize, last as usize, 0.0);
    }
    (i0 as usize, i0 as usize + 1, w)
}

/// Bilinear resize of a `[rows, cols]` map to `out = [rows, cols]`, as `cv2.resize` with
/// `INTER_LINEAR` computes float maps: output pixel centres mapped onto input pixel centres,
/// neighbours past the edge clamped to it.
pub fn resize_bilinear(map: ArrayView2<'_, f32>, out: [usize; 2]) -> Result<Array2<f32>> {
    check("resize input", &map)?;
    if out[0] == 0 || out[1] == 0 {
        return Err(LocalizationError::EmptySize {
            what: "resize output",
            rows: out[0],
            cols: out[1],
        });
    }
    let (rows, cols) = map.dim();
    let xs: Vec<_> = (0..out[1]).map(|x| source(x, cols, out[1])).collect();
    Ok(Array2::from_shape_fn((out[0], out[1]), |(y, x)| {
        let (y0, y1, wy) = source(y, rows, out[0]);
        let (x0, x1, wx) = xs[x];
        let top = map[[y0, x0]] * (1.0 - wx) + map[[y0, x1]] * wx;
        let bottom = map[[y1, x0]] * (1.0 - wx) + map[[y1, x1]] * wx;
        top * (1.0 - wy) + bottom * wy
    }))
}

/// The tight box around every pixel `>= threshold` (all of them together: the original's
/// "union" box, not the largest connected component), or [`PixelBox::NO_FOREGROUND`].
pub fn union_box(map: ArrayView2<'_, f32>, threshold: f32) -> PixelBox {
    let mut b: Option<PixelBox> = None;
    for ((y, x), &v) in map.indexed_iter() {
        if v >= threshold {
            let (x, y) = (x as i64, y as i64);
            b = Some(match b {
                None => PixelBox::new(x, y, x, y),
                Some(b) => PixelBox::new(b.x1.min(x), b.y1.min(y), b.x2.max(x), b.y2.max(y)),
            });
        }
    }
    b.unwrap_or(PixelBox::NO_FOREGROUND)
}

/// A class activation map's box (spec s. 2.7, CAM): min-max normalise the (already ReLU'd)
/// map, resize it bilinearly to the image's `[rows, cols]`, keep the pixels `>= threshold`,
/// box them all.
///
/// # Shapes
/// - `map`: `[h, w]` (14 x 14 for VGG16 at 224) -> a box in `out` pixels
pub fn box_from_map(map: ArrayView2<'_, f32>, out: [usize; 2], threshold: f32) -> Result<PixelBox> {
    let normalized = min_max_normalize(map)?;
    let full = resize_bilinear(normalized.view(), out)?;
    Ok(union_box(full.view(), threshold))
}

/// SPA's structure-guided map (SCG, spec s. 2.7): the class activation map spread along the
/// structure map, `ReLU(vec(minmax(cam))^T S)`, min-max normalised.
///
/// # Shapes
/// - `cam`: `[h, w]` (ReLU'd class map), `structure`: `[h w, h w]` -> `[h, w]`
pub fn structure_guided_map(
    cam: ArrayView2<'_, f32>,
    structure: ArrayView2<'_, f32>,
) -> Result<Array2<f32>> {
    let (h, w) = cam.dim();
    let n = h * w;
    check("structure map", &structure)?;
    if structure.dim() != (n, n) {
        return Err(LocalizationError::Shape {
            what: "structure_guided_map",
            why: format!(
                "structure map {:?} for a {h} x {w} class map (expected [{n}, {n}])",
                structure.dim()
            ),
        });
    }
    let cam = min_max_normalize(cam)?;
    let flat = Array1::from_iter(cam.iter().copied());
    let spread = flat.dot(&structure).mapv(|v| v.max(0.0));
    min_max_normalize(
        spread
            .into_shape_with_order((h, w))
            .expect("h w values")
            .view(),
    )
}

/// SPA's box: [`structure_guided_map`], resized to `out`, thresholded, union box.
pub fn box_from_structure_map(
    cam: ArrayView2<'_, f32>,
    structure: ArrayView2<'_, f32>,
    out: [usize; 2],
    threshold: f32,
) -> Result<PixelBox> {
    let m = structure_guided_map(cam, structure)?;
    let full = resize_bilinear(m.view(), out)?;
    Ok(union_box(full.view(), threshold))
}

/// SOS's object probability at full size: `max(0, resize(sigmoid(logits)))` (no min-max:
/// the probability is thresholded as it is).
pub fn sos_probability_map(logits: ArrayView2<'_, f32>, out: [usize; 2]) -> Result<Array2<f32>> {
    check("SOS map", &logits)?;
    let p = logits.mapv(|v| 1.0 / (1.0 + (-v).exp()));
    Ok(resize_bilinear(p.view(), out)?.mapv(|v| v.max(0.0)))
}

/// SOS's box (spec s. 2.7): [`sos_probability_map`] thresholded, union box; the same box
/// serves every predicted class.
pub fn box_from_sos_map(
    logits: ArrayView2<'_, f32>,
    out: [usize; 2],
    threshold: f32,
) -> Result<PixelBox> {
    let p = sos_probability_map(logits, out)?;
    Ok(union_box(p.view(), threshold))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn resizing_matches_opencvs_inter_linear_by_hand() {
        // 2 x 2 -> 4 x 4: output centres at input -0.25, 0.25, 0.75, 1.25 -> clamped 0,
        // then weights 0.25 and 0.75, then the last pixel.
        let m = array![[0.0f32, 4.0], [8.0, 12.0]];
        let r = resize_bilinear(m.view(), [4, 4]).unwrap();
        assert_eq!(r.row(0).to_vec(), vec![0.0, 1.0, 3.0, 4.0]);
        assert_eq!(r.column(0).to_vec(), vec![0.0, 2.0, 6.0, 8.0]);
        assert_eq!(r[[1, 1]], 3.0); // 0.75 * (0.75 * 0 + 0.25 * 4) + 0.25 * (0.75 * 8 + 0.25 * 12)
        assert_eq!(r[[3, 3]], 12.0);
        // Same size: the identity.
        assert_eq!(resize_bilinear(m.view(), [2, 2]).unwrap(), m);
    }

    #[test]
    fn the_box_covers_every_pixel_over_the_threshold() {
        let mut m = Array2::<f32>::zeros((6, 8));
        m[[1, 2]] = 1.0;
        m[[4, 6]] = 0.5;
        m[[3, 3]] = 0.2;
        assert_eq!(union_box(m.view(), 0.5), PixelBox::new(2, 1, 6, 4));
        assert_eq!(union_box(m.view(), 0.9), PixelBox::new(2, 1, 2, 1));
        assert_eq!(union_box(m.view(), 2.0), PixelBox::NO_FOREGROUND);
        // Min-max first: a map from 10 to 20 thresholds like one from 0 to 1.
        let shifted = m.mapv(|v| 10.0 + 10.0 * v);
        assert_eq!(
            box_from_map(shifted.view(), [6, 8], 0.5).unwrap(),
            PixelBox::new(2, 1, 6, 4)
        );
        // A constant map has no foreground.
        let flat = Array2::<f32>::from_elem((3, 3), 7.0);
        assert_eq!(
            box_from_map(flat.view(), [6, 6], 0.1).unwrap(),
            PixelBox::NO_FOREGROUND
        );
    }

    #[test]
    fn empty_and_non_finite_maps_are_refused() {
        let empty = Array2::<f32>::zeros((0, 3));
        assert!(matches!(
            box_from_map(empty.view(), [4, 4], 0.5),
            Err(LocalizationError::EmptySize { .. })
        ));
        let nan = array![[0.0f32, f32::NAN]];
        assert_eq!(
            min_max_normalize(nan.view()).unwrap_err(),
            LocalizationError::NonFinite {
                what: "min-max normalisation",
                row: 0,
                col: 1
            }
        );
        assert!(resize_bilinear(array![[1.0f32]].view(), [0, 2]).is_err());
    }
}
