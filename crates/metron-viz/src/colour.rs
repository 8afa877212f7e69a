//! The palette. Fixed, named colours so that callers and tests can refer to "the hit green"
//! instead of an RGB triple copied around.

use image::Rgb;

/// Picture background.
pub const BACKGROUND: Rgb<u8> = Rgb([255, 255, 255]);
/// Titles, labels, legends.
pub const TEXT: Rgb<u8> = Rgb([33, 33, 33]);
/// Plot frame and tick marks.
pub const AXIS: Rgb<u8> = Rgb([90, 90, 90]);
/// Grid lines behind the curves.
pub const GRID: Rgb<u8> = Rgb([228, 228, 228]);
/// Border of a retrieved image with the query's label.
pub const HIT: Rgb<u8> = Rgb([0, 170, 60]);
/// Border of a retrieved image with another label.
pub const MISS: Rgb<u8> = Rgb([220, 30, 40]);
/// Border of a retrieved image when the query's label is not known: neither hit nor miss.
pub const UNJUDGED: Rgb<u8> = Rgb([150, 150, 150]);
/// Border of the query image: neutral blue, so it reads as neither hit nor miss.
pub const QUERY: Rgb<u8> = Rgb([40, 90, 200]);
/// Bars around a letterboxed thumbnail whose aspect ratio is not square.
pub const LETTERBOX: Rgb<u8> = Rgb([236, 236, 236]);

/// Series colours (Tableau 10: distinct in hue and brightness, readable on white).
pub const SERIES: [Rgb<u8>; 10] = [
    Rgb([31, 119, 180]),
    Rgb([255, 127, 14]),
    Rgb([44, 160, 44]),
    Rgb([214, 39, 40]),
    Rgb([148, 103, 189]),
    Rgb([140, 86, 75]),
    Rgb([227, 119, 194]),
    Rgb([127, 127, 127]),
    Rgb([188, 189, 34]),
    Rgb([23, 190, 207]),
];

/// Colour of series `i` within a plot; the palette repeats after ten series.
pub fn series(i: usize) -> Rgb<u8> {
    SERIES[i % SERIES.len()]
}

/// The palette as one public name (re-exported at the crate root): the colours metron's
/// figures are drawn in, for tests and tools that read the PNGs back.
#[derive(Debug, Clone, Copy)]
pub struct Palette;

impl Palette {
    /// Picture background.
    pub const BACKGROUND: Rgb<u8> = BACKGROUND;
    /// Titles, labels, legends.
    pub const TEXT: Rgb<u8> = TEXT;
    /// Plot frame and tick marks.
    pub const AXIS: Rgb<u8> = AXIS;
    /// Grid lines behind the curves.
    pub const GRID: Rgb<u8> = GRID;
    /// Border of a retrieved image with the query's label.
    pub const HIT: Rgb<u8> = HIT;
    /// Border of a retrieved image with another label.
    pub const MISS: Rgb<u8> = MISS;
    /// Border of a retrieved image when the query's label is not known: neither hit nor miss.
    pub const UNJUDGED: Rgb<u8> = UNJUDGED;
    /// Border of the query image: neutral blue, so it reads as neither hit nor miss.
    pub const QUERY: Rgb<u8> = QUERY;
    /// Bars around a letterboxed thumbnail whose aspect ratio is not square.
    pub const LETTERBOX: Rgb<u8> = LETTERBOX;

    /// Colour of series `i` within a plot; the palette repeats after ten series.
    pub fn series(i: usize) -> Rgb<u8> {
        series(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_colours_are_distinct_and_unlike_the_chrome() {
        for (i, a) in SERIES.iter().enumerate() {
            for b in &SERIES[i + 1..] {
                assert_ne!(a, b);
            }
            for chrome in [BACKGROUND, TEXT, AXIS, GRID] {
                assert_ne!(*a, chrome);
            }
        }
        assert_eq!(series(10), series(0));
        assert_ne!(HIT, MISS);
        assert_ne!(QUERY, HIT);
    }
}
