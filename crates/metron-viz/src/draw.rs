//! Pixel primitives on an [`RgbImage`]: every one clips to the image, so callers can pass
//! coordinates that run off the edge (a long label, a marker on the border) without checks.
//!
//! Nothing is anti-aliased: each primitive writes exactly its colour, which keeps the pictures
//! crisp at small sizes and lets tests assert exact RGB values.

use image::{Rgb, RgbImage};

/// Sets one pixel if `(x, y)` lies inside the image.
pub fn put(img: &mut RgbImage, x: i64, y: i64, colour: Rgb<u8>) {
    if x >= 0 && y >= 0 && x < i64::from(img.width()) && y < i64::from(img.height()) {
        img.put_pixel(x as u32, y as u32, colour);
    }
}

/// Fills the rectangle with top-left `(x, y)` and size `w` x `h` (clipped).
pub fn fill_rect(img: &mut RgbImage, x: i64, y: i64, w: i64, h: i64, colour: Rgb<u8>) {
    let x0 = x.max(0);
    let y0 = y.max(0);
    let x1 = (x + w).min(i64::from(img.width()));
    let y1 = (y + h).min(i64::from(img.height()));
    for yy in y0..y1 {
        for xx in x0..x1 {
            img.put_pixel(xx as u32, yy as u32, colour);
        }
    }
}

/// Draws a frame `thickness` pixels wide just inside the rectangle `(x, y, w, h)`.
pub fn frame(img: &mut RgbImage, x: i64, y: i64, w: i64, h: i64, thickness: i64, colour: Rgb<u8>) {
    let t = thickness.min(w).min(h).max(0);
    fill_rect(img, x, y, w, t, colour);
    fill_rect(img, x, y + h - t, w, t, colour);
    fill_rect(img, x, y, t, h, colour);
    fill_rect(img, x + w - t, y, t, h, colour);
}

/// Draws a straight line from `(x0, y0)` to `(x1, y1)` (Bresenham), stamping a square brush
/// of side `2 * radius + 1` centred on every step, so both end points are covered exactly.
pub fn line(
    img: &mut RgbImage,
    (x0, y0): (i64, i64),
    (x1, y1): (i64, i64),
    radius: i64,
    colour: Rgb<u8>,
) {
    let dx = (x1 - x0).abs();
    let dy = -(y1 - y0).abs();
    let sx = if x0 < x1 { 1 } else { -1 };
    let sy = if y0 < y1 { 1 } else { -1 };
    let (mut x, mut y, mut err) = (x0, y0, dx + dy);
    loop {
        fill_rect(
            img,
            x - radius,
            y - radius,
            2 * radius + 1,
            2 * radius + 1,
            colour,
        );
        if x == x1 && y == y1 {
            break;
        }
        let e2 = 2 * err;
        if e2 >= dy {
            err += dy;
            x += sx;
        }
        if e2 <= dx {
            err += dx;
            y += sy;
        }
    }
}

/// Fills a disc of `radius` centred on `(cx, cy)`.
pub fn disc(img: &mut RgbImage, cx: i64, cy: i64, radius: i64, colour: Rgb<u8>) {
    // r^2 + r - 1 gives rounder small discs than r^2 alone (radius 2 is not a diamond).
    let r2 = (radius * radius + radius - 1).max(0);
    for dy in -radius..=radius {
        for dx in -radius..=radius {
            if dx * dx + dy * dy <= r2 {
                put(img, cx + dx, cy + dy, colour);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: Rgb<u8> = Rgb([255, 255, 255]);
    const K: Rgb<u8> = Rgb([0, 0, 0]);

    fn count(img: &RgbImage, c: Rgb<u8>) -> usize {
        img.pixels().filter(|p| **p == c).count()
    }

    #[test]
    fn diagonal_line_hits_every_diagonal_pixel_only() {
        let mut img = RgbImage::from_pixel(5, 5, W);
        line(&mut img, (0, 0), (4, 4), 0, K);
        for i in 0..5 {
            assert_eq!(*img.get_pixel(i, i), K);
        }
        assert_eq!(count(&img, K), 5);
    }

    #[test]
    fn line_is_symmetric_in_its_end_points_for_axis_aligned_lines() {
        let mut a = RgbImage::from_pixel(7, 3, W);
        let mut b = a.clone();
        line(&mut a, (1, 1), (5, 1), 1, K);
        line(&mut b, (5, 1), (1, 1), 1, K);
        assert_eq!(a, b);
        assert_eq!(count(&a, K), 7 * 3);
    }

    #[test]
    fn frame_leaves_the_inside_alone() {
        let mut img = RgbImage::from_pixel(10, 8, W);
        frame(&mut img, 0, 0, 10, 8, 2, K);
        assert_eq!(count(&img, W), 6 * 4);
        assert_eq!(*img.get_pixel(2, 2), W);
        assert_eq!(*img.get_pixel(1, 1), K);
        assert_eq!(*img.get_pixel(9, 7), K);
    }

    #[test]
    fn everything_clips() {
        let mut img = RgbImage::from_pixel(3, 3, W);
        line(&mut img, (-10, -10), (20, 20), 2, K);
        disc(&mut img, -1, -1, 3, K);
        fill_rect(&mut img, -5, -5, 100, 1, K);
        frame(&mut img, -1, -1, 50, 50, 5, K);
        assert_eq!(*img.get_pixel(1, 1), K);
    }

    #[test]
    fn small_disc_is_a_plus_with_corners_filled_from_radius_two() {
        let mut img = RgbImage::from_pixel(7, 7, W);
        disc(&mut img, 3, 3, 1, K);
        assert_eq!(count(&img, K), 5);
        let mut img = RgbImage::from_pixel(7, 7, W);
        disc(&mut img, 3, 3, 2, K);
        assert_eq!(*img.get_pixel(2, 2), K);
        assert_eq!(*img.get_pixel(1, 1), W);
    }
}
