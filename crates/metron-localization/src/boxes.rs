//! Boxes in pixel coordinates with inclusive corners, as WGOL's evaluation counts them.

/// An axis-aligned box whose corners are pixels: it covers columns `x1..=x2` and rows
/// `y1..=y2`, so its area is `(x2 - x1 + 1) (y2 - y1 + 1)` (the "+1" convention of the
/// original evaluation; a box with `x2 < x1` or `y2 < y1` is empty).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PixelBox {
    /// Left column.
    pub x1: i64,
    /// Top row.
    pub y1: i64,
    /// Right column (inclusive).
    pub x2: i64,
    /// Bottom row (inclusive).
    pub y2: i64,
}

impl PixelBox {
    /// The box with these inclusive corners.
    pub fn new(x1: i64, y1: i64, x2: i64, y2: i64) -> Self {
        PixelBox { x1, y1, x2, y2 }
    }

    /// What the original returns for a map with no pixel above the threshold: `(0, 0, 0, 0)`,
    /// which under the +1 convention is the single top-left pixel (kept, because it is what
    /// the published numbers scored).
    pub const NO_FOREGROUND: PixelBox = PixelBox {
        x1: 0,
        y1: 0,
        x2: 0,
        y2: 0,
    };

    /// Pixels covered: `(x2 - x1 + 1)(y2 - y1 + 1)`, 0 for an empty box.
    pub fn area(&self) -> i64 {
        let w = self.x2 - self.x1 + 1;
        let h = self.y2 - self.y1 + 1;
        if w > 0 && h > 0 { w * h } else { 0 }
    }

    /// Intersection over union, both areas with the +1 convention; 0 when the boxes do not
    /// overlap.
    pub fn iou(&self, other: &PixelBox) -> f64 {
        let iw = self.x2.min(other.x2) - self.x1.max(other.x1) + 1;
        let ih = self.y2.min(other.y2) - self.y1.max(other.y1) + 1;
        if iw <= 0 || ih <= 0 {
            return 0.0;
        }
        let inter = (iw * ih) as f64;
        let union = (self.area() + other.area()) as f64 - inter;
        if union <= 0.0 { 0.0 } else { inter / union }
    }

    /// A dataset box `[x1, y1, x2, y2]` (pixels of an image `from = [width, height]`) in the
    /// pixels of the same image resized to `to = [width, height]`: each coordinate scaled,
    /// floored and clipped to the image, as the original evaluation rescales ground truth.
    pub fn rescaled(bbox: [f32; 4], from: [u32; 2], to: [u32; 2]) -> PixelBox {
        let scale = |v: f32, axis: usize| {
            let s = f64::from(v) * f64::from(to[axis]) / f64::from(from[axis].max(1));
            (s.floor() as i64).clamp(0, i64::from(to[axis]) - 1)
        };
        PixelBox::new(
            scale(bbox[0], 0),
            scale(bbox[1], 1),
            scale(bbox[2], 0),
            scale(bbox[3], 1),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iou_counts_corner_pixels_as_the_original() {
        // 10 x 10 and 10 x 10 boxes overlapping in 5 x 10: 50 / (100 + 100 - 50).
        let a = PixelBox::new(0, 0, 9, 9);
        let b = PixelBox::new(5, 0, 14, 9);
        assert_eq!((a.area(), b.area()), (100, 100));
        assert!((a.iou(&b) - 50.0 / 150.0).abs() < 1e-12);
        assert_eq!(a.iou(&b), b.iou(&a));
        assert_eq!(a.iou(&a), 1.0);
        // Touching at one column still overlaps by one pixel column under +1.
        let c = PixelBox::new(9, 0, 9, 9);
        assert!((a.iou(&c) - 10.0 / 100.0).abs() < 1e-12);
        assert_eq!(a.iou(&PixelBox::new(10, 0, 12, 9)), 0.0);
        assert_eq!(PixelBox::NO_FOREGROUND.area(), 1);
        assert_eq!(PixelBox::new(3, 3, 2, 5).area(), 0);
    }

    #[test]
    fn ground_truth_is_scaled_floored_and_clipped() {
        // A 448 x 224 image to 224 x 224: x halves, y stays; 447.9 clips to 223.
        let b = PixelBox::rescaled([11.0, 20.5, 447.9, 300.0], [448, 224], [224, 224]);
        assert_eq!(b, PixelBox::new(5, 20, 223, 223));
    }
}
