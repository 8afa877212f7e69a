//! A 5x7 bitmap font, so titles, tick labels and legends need no font crate or font file.
//!
//! Each glyph is seven rows of five bits (bit 4 is the leftmost column). Lower-case letters
//! are drawn as upper case; a character outside the table is drawn as `?`, so unexpected
//! input stays visible instead of vanishing.

use image::{Rgb, RgbImage};

use crate::draw::put;

/// Glyph width in font pixels.
pub const GLYPH_WIDTH: u32 = 5;
/// Glyph height in font pixels.
pub const GLYPH_HEIGHT: u32 = 7;
/// Horizontal distance from one glyph to the next (glyph plus one blank column).
pub const ADVANCE: u32 = GLYPH_WIDTH + 1;

/// The seven rows of `c` (bit 4 = leftmost column). Lower case maps to upper case; anything
/// not in the table maps to `?`.
pub fn glyph(c: char) -> [u8; 7] {
    match c.to_ascii_uppercase() {
        '0' => [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
        '1' => [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        '2' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
        '3' => [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        '4' => [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
        '5' => [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        '6' => [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
        '7' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
        '9' => [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        'A' => [0x0E, 0x11, 0x11, 0x11, 0x1F, 0x11, 0x11],
        'B' => [0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E],
        'C' => [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E],
        'D' => [0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C],
        'E' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F],
        'F' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10],
        'G' => [0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F],
        'H' => [0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'I' => [0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E],
        'J' => [0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C],
        'K' => [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11],
        'L' => [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F],
        'M' => [0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11],
        'N' => [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11],
        'O' => [0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'P' => [0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10],
        'Q' => [0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D],
        'R' => [0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11],
        'S' => [0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E],
        'T' => [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        'U' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'V' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04],
        'W' => [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A],
        'X' => [0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11],
        'Y' => [0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04],
        'Z' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F],
        ' ' => [0x00; 7],
        '.' => [0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C],
        ',' => [0x00, 0x00, 0x00, 0x00, 0x0C, 0x04, 0x08],
        '-' => [0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00],
        '_' => [0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F],
        ':' => [0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00],
        '/' => [0x00, 0x01, 0x02, 0x04, 0x08, 0x10, 0x00],
        '%' => [0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03],
        '@' => [0x0E, 0x11, 0x01, 0x0D, 0x15, 0x15, 0x0E],
        '(' => [0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02],
        ')' => [0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08],
        '[' => [0x0E, 0x08, 0x08, 0x08, 0x08, 0x08, 0x0E],
        ']' => [0x0E, 0x02, 0x02, 0x02, 0x02, 0x02, 0x0E],
        '+' => [0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00],
        '=' => [0x00, 0x00, 0x1F, 0x00, 0x1F, 0x00, 0x00],
        '#' => [0x0A, 0x0A, 0x1F, 0x0A, 0x1F, 0x0A, 0x0A],
        '*' => [0x00, 0x04, 0x15, 0x0E, 0x15, 0x04, 0x00],
        '<' => [0x02, 0x04, 0x08, 0x10, 0x08, 0x04, 0x02],
        '>' => [0x08, 0x04, 0x02, 0x01, 0x02, 0x04, 0x08],
        '!' => [0x04, 0x04, 0x04, 0x04, 0x04, 0x00, 0x04],
        '\'' => [0x04, 0x04, 0x08, 0x00, 0x00, 0x00, 0x00],
        _ => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04], // '?'
    }
}

/// Width in pixels of `text` drawn at `scale` (no trailing blank column).
pub fn text_width(text: &str, scale: u32) -> u32 {
    let n = text.chars().count() as u32;
    if n == 0 { 0 } else { (n * ADVANCE - 1) * scale }
}

/// Height in pixels of one line of text at `scale`.
pub fn text_height(scale: u32) -> u32 {
    GLYPH_HEIGHT * scale
}

/// Draws `text` with its top-left corner at `(x, y)`, each font pixel a `scale` x `scale`
/// square. Pixels outside the image are clipped, so long labels never panic.
pub fn draw_text(img: &mut RgbImage, x: i64, y: i64, text: &str, scale: u32, colour: Rgb<u8>) {
    let s = i64::from(scale.max(1));
    for (i, c) in text.chars().enumerate() {
        let gx0 = x + i as i64 * i64::from(ADVANCE) * s;
        for_each_set(c, |col, row| {
            for dy in 0..s {
                for dx in 0..s {
                    put(img, gx0 + col * s + dx, y + row * s + dy, colour);
                }
            }
        });
    }
}

/// Draws `text` turned 90 degrees counter-clockwise (reading bottom to top, as a y-axis label
/// does). `(x, y)` is the bottom-left corner of the turned text: the text occupies columns
/// `x .. x + 7*scale` and rows `y - width + 1 ..= y`.
pub fn draw_text_up(img: &mut RgbImage, x: i64, y: i64, text: &str, scale: u32, colour: Rgb<u8>) {
    let s = i64::from(scale.max(1));
    for (i, c) in text.chars().enumerate() {
        let along = i as i64 * i64::from(ADVANCE) * s;
        for_each_set(c, |col, row| {
            // Unturned (col, row) -> turned: rows become columns, columns run upwards.
            for dy in 0..s {
                for dx in 0..s {
                    put(img, x + row * s + dy, y - (along + col * s + dx), colour);
                }
            }
        });
    }
}

/// Calls `f(column, row)` for every set pixel of the glyph of `c`.
fn for_each_set(c: char, mut f: impl FnMut(i64, i64)) {
    for (row, bits) in glyph(c).iter().enumerate() {
        for col in 0..GLYPH_WIDTH {
            if bits & (1 << (GLYPH_WIDTH - 1 - col)) != 0 {
                f(i64::from(col), row as i64);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INK: Rgb<u8> = Rgb([0, 0, 0]);
    const PAPER: Rgb<u8> = Rgb([255, 255, 255]);

    fn set_pixels(img: &RgbImage) -> Vec<(u32, u32)> {
        img.enumerate_pixels()
            .filter(|(_, _, p)| **p == INK)
            .map(|(x, y, _)| (x, y))
            .collect()
    }

    #[test]
    fn one_sets_exactly_its_glyph_pixels() {
        let mut img = RgbImage::from_pixel(10, 10, PAPER);
        draw_text(&mut img, 2, 1, "1", 1, INK);
        // '1' = 0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E; origin (2, 1).
        let mut expected = vec![(4, 1), (3, 2), (4, 2)];
        for y in 3..=6 {
            expected.push((4, y));
        }
        expected.extend([(3, 7), (4, 7), (5, 7)]);
        let mut got = set_pixels(&img);
        got.sort_by_key(|&(x, y)| (y, x));
        expected.sort_by_key(|&(x, y)| (y, x));
        assert_eq!(got, expected);
    }

    #[test]
    fn scale_two_doubles_every_pixel() {
        let mut one = RgbImage::from_pixel(8, 8, PAPER);
        draw_text(&mut one, 0, 0, "-", 1, INK);
        assert_eq!(
            set_pixels(&one),
            vec![(0, 3), (1, 3), (2, 3), (3, 3), (4, 3)]
        );
        let mut two = RgbImage::from_pixel(16, 16, PAPER);
        draw_text(&mut two, 0, 0, "-", 2, INK);
        let got = set_pixels(&two);
        assert_eq!(got.len(), 20);
        assert!(got.iter().all(|&(x, y)| x < 10 && (y == 6 || y == 7)));
    }

    #[test]
    fn lower_case_is_drawn_as_upper_case_and_unknown_as_question_mark() {
        assert_eq!(glyph('a'), glyph('A'));
        assert_eq!(glyph('z'), glyph('Z'));
        assert_eq!(glyph('~'), glyph('?'));
        assert_eq!(glyph('é'), glyph('?'));
        assert_eq!(glyph(' '), [0; 7]);
    }

    #[test]
    fn every_required_character_has_its_own_glyph() {
        let required = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ.,-_:/%@()+=#";
        let unknown = glyph('~');
        for c in required.chars() {
            assert_ne!(glyph(c), unknown, "{c} falls back to '?'");
            assert!(
                glyph(c).iter().all(|r| *r < 32),
                "{c} is wider than 5 columns"
            );
        }
        // All distinct: no copy-paste slip made two characters look the same.
        let glyphs: Vec<_> = required.chars().map(glyph).collect();
        for i in 0..glyphs.len() {
            for j in i + 1..glyphs.len() {
                assert_ne!(glyphs[i], glyphs[j], "glyphs {i} and {j} are identical");
            }
        }
    }

    #[test]
    fn text_outside_the_image_is_clipped() {
        let mut img = RgbImage::from_pixel(4, 4, PAPER);
        draw_text(&mut img, -3, -3, "#####", 3, INK);
        draw_text_up(&mut img, 2, 100, "HELLO", 2, INK);
        draw_text(&mut img, 1_000_000, 5, "X", 1, INK);
        assert!(!set_pixels(&img).is_empty());
    }

    #[test]
    fn turned_text_reads_upwards() {
        // '-' row 3 becomes column x + 3; its five columns run upwards from y.
        let mut img = RgbImage::from_pixel(10, 10, PAPER);
        draw_text_up(&mut img, 1, 8, "-", 1, INK);
        let mut got = set_pixels(&img);
        got.sort();
        assert_eq!(got, vec![(4, 4), (4, 5), (4, 6), (4, 7), (4, 8)]);
    }

    #[test]
    fn widths() {
        assert_eq!(text_width("", 1), 0);
        assert_eq!(text_width("A", 1), 5);
        assert_eq!(text_width("AB", 1), 11);
        assert_eq!(text_width("AB", 2), 22);
        assert_eq!(text_height(2), 14);
    }
}
