//! Retrieval grids: one row per query, the query's thumbnail, a gap, then its top-K results
//! framed green (same label as the query) or red (another label). The picture a reader checks
//! first when Recall@1 looks too good or too bad.

use std::path::{Path, PathBuf};

use image::imageops::FilterType;
use image::{DynamicImage, Rgb, RgbImage};

use crate::draw::{fill_rect, frame};
use crate::png::save_png;
use crate::{Result, VizError, colour, size};

/// The smallest thumbnail that still shows a picture inside its border.
pub const MIN_THUMB: u32 = 16;

/// A picture to place in the grid: a PNG/JPEG file to decode, or an image the caller already
/// holds (so an evaluation that decoded its images need not read them again).
#[derive(Debug, Clone, PartialEq)]
pub enum GridImage {
    /// A PNG/JPEG file, decoded when the grid is drawn (transparency shown over white).
    Path(PathBuf),
    /// An image already in memory, drawn as is.
    Rgb(RgbImage),
}

impl From<PathBuf> for GridImage {
    fn from(p: PathBuf) -> Self {
        GridImage::Path(p)
    }
}

impl From<&Path> for GridImage {
    fn from(p: &Path) -> Self {
        GridImage::Path(p.to_path_buf())
    }
}

impl From<RgbImage> for GridImage {
    fn from(img: RgbImage) -> Self {
        GridImage::Rgb(img)
    }
}

/// How a result relates to its query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Match {
    /// Same label as the query (green frame).
    Hit,
    /// Another label (red frame).
    Miss,
    /// The query's label is not known (grey frame, and a caption saying so): a query from
    /// outside the labelled set is never coloured by assumption.
    Unjudged,
}

impl From<bool> for Match {
    fn from(hit: bool) -> Self {
        if hit { Match::Hit } else { Match::Miss }
    }
}

/// One query and its ranked results, each marked [`Match`].
#[derive(Debug, Clone, PartialEq)]
pub struct GridRow {
    /// The query's picture, drawn first in the row.
    pub query: GridImage,
    /// The results, best-ranked first, each with how it relates to the query.
    pub results: Vec<(GridImage, Match)>,
}

impl GridRow {
    /// A row for `query` with no results yet; add them with [`GridRow::with_result`].
    pub fn new(query: impl Into<GridImage>) -> Self {
        Self {
            query: query.into(),
            results: Vec::new(),
        }
    }

    /// Appends the next-ranked result (builder style); `hit`: same label as the query.
    pub fn with_result(mut self, image: impl Into<GridImage>, hit: bool) -> Self {
        self.results.push((image.into(), hit.into()));
        self
    }

    /// Appends the next-ranked result of a query whose label is unknown.
    pub fn with_unjudged_result(mut self, image: impl Into<GridImage>) -> Self {
        self.results.push((image.into(), Match::Unjudged));
        self
    }
}

/// Geometry of a grid with thumbnails of side `thumb`, all in pixels.
///
/// The picture is `2 * margin + thumb` wide plus, when any row has results,
/// `query_gap + K * thumb + (K - 1) * gap` (K = the most results of any row); and
/// `2 * margin + rows * thumb + (rows - 1) * gap` high. Rows with fewer than K results leave
/// their last cells blank.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GridLayout {
    /// Side of each square thumbnail cell, frame included (at least [`MIN_THUMB`]).
    pub thumb: u32,
    /// Width of the coloured frame inside each thumbnail cell: `max(3, thumb / 12)`.
    pub border: u32,
    /// Space between neighbouring results and between rows: `max(2, thumb / 16)`.
    pub gap: u32,
    /// Space between the query and its first result: `max(6, thumb / 4)`.
    pub query_gap: u32,
    /// Blank edge around the whole grid (equal to `gap`).
    pub margin: u32,
}

impl GridLayout {
    /// The layout for thumbnails of side `thumb` (at least [`MIN_THUMB`]).
    pub fn new(thumb: u32) -> Result<Self> {
        if thumb < MIN_THUMB {
            return Err(VizError::InvalidArgument(format!(
                "thumbnail size {thumb} is too small (at least {MIN_THUMB} pixels)"
            )));
        }
        let gap = (thumb / 16).max(2);
        Ok(Self {
            thumb,
            border: (thumb / 12).max(3),
            gap,
            query_gap: (thumb / 4).max(6),
            margin: gap,
        })
    }

    /// Top-left corner of the query cell of `row`.
    pub fn query_origin(&self, row: usize) -> (u64, u64) {
        (u64::from(self.margin), self.row_top(row))
    }

    /// Top-left corner of the cell of result `rank` (0 = best) in `row`.
    pub fn result_origin(&self, row: usize, rank: usize) -> (u64, u64) {
        let x = u64::from(self.margin)
            + u64::from(self.thumb)
            + u64::from(self.query_gap)
            + rank as u64 * (u64::from(self.thumb) + u64::from(self.gap));
        (x, self.row_top(row))
    }

    fn row_top(&self, row: usize) -> u64 {
        u64::from(self.margin) + row as u64 * (u64::from(self.thumb) + u64::from(self.gap))
    }

    /// Picture size for `rows` rows of up to `k` results, checked against
    /// [`crate::MAX_PIXELS`].
    pub fn picture_size(&self, rows: usize, k: usize) -> Result<(u32, u32)> {
        let (t, g, m) = (
            u64::from(self.thumb),
            u64::from(self.gap),
            u64::from(self.margin),
        );
        let (rows, k) = (rows as u64, k as u64);
        let mut w = 2 * m + t;
        if k > 0 {
            w += u64::from(self.query_gap) + k * t + (k - 1) * g;
        }
        let h = 2 * m + rows * t + rows.saturating_sub(1) * g;
        let (w, h) = (
            size::checked_extent(w, "grid width")?,
            size::checked_extent(h, "grid height")?,
        );
        size::check_pixels(w, h)?;
        Ok((w, h))
    }
}

/// Renders the grid (see [`GridLayout`] for the geometry). Thumbnails keep their aspect
/// ratio, letterboxed on light grey inside a frame: blue for the query, green for a hit, red for
/// a miss, grey (with a caption below the grid) where the query's label is unknown. Files are decoded with `image` (PNG or JPEG; grey and alpha become RGB, alpha over
/// white).
///
/// Errors: [`VizError::Empty`] for no rows, [`VizError::Read`] / [`VizError::Image`] naming a
/// file that cannot be read or decoded, [`VizError::InvalidArgument`] for a thumbnail below
/// [`MIN_THUMB`] or a picture above [`crate::MAX_PIXELS`].
pub fn render_retrieval_grid(rows: &[GridRow], thumb: u32) -> Result<RgbImage> {
    render_retrieval_grid_captioned(rows, thumb, UNJUDGED_CAPTION)
}

/// [`render_retrieval_grid`] whose grey frames mean what `unjudged_caption` says (cross-view
/// grids mark a place's near-matches grey, not unknown classes).
pub fn render_retrieval_grid_captioned(
    rows: &[GridRow],
    thumb: u32,
    unjudged_caption: &str,
) -> Result<RgbImage> {
    if rows.is_empty() {
        return Err(VizError::Empty("no retrieval rows given"));
    }
    let layout = GridLayout::new(thumb)?;
    let k = rows.iter().map(|r| r.results.len()).max().unwrap_or(0);
    let (w, h) = layout.picture_size(rows.len(), k)?;
    let mut img = RgbImage::from_pixel(w, h, colour::BACKGROUND);
    for (r, row) in rows.iter().enumerate() {
        let (x, y) = layout.query_origin(r);
        draw_cell(&mut img, &layout, (x, y), &row.query, colour::QUERY)?;
        for (rank, (image, m)) in row.results.iter().enumerate() {
            let c = match m {
                Match::Hit => colour::HIT,
                Match::Miss => colour::MISS,
                Match::Unjudged => colour::UNJUDGED,
            };
            draw_cell(&mut img, &layout, layout.result_origin(r, rank), image, c)?;
        }
    }
    let unjudged = rows
        .iter()
        .flat_map(|r| &r.results)
        .any(|(_, m)| *m == Match::Unjudged);
    Ok(if unjudged {
        with_caption(&img, unjudged_caption)
    } else {
        img
    })
}

/// The legend of grey frames.
pub const UNJUDGED_CAPTION: &str = "GREY: QUERY CLASS UNKNOWN, NOT JUDGED";

/// `img` with a line of text below it, widened if the text needs it.
fn with_caption(img: &RgbImage, text: &str) -> RgbImage {
    const SCALE: u32 = 2;
    let pad = 4 * SCALE;
    let w = img
        .width()
        .max(crate::font::text_width(text, SCALE) + 2 * pad);
    let h = img.height() + crate::font::text_height(SCALE) + 2 * pad;
    let mut out = RgbImage::from_pixel(w, h, colour::BACKGROUND);
    image::imageops::replace(&mut out, img, 0, 0);
    crate::font::draw_text(
        &mut out,
        i64::from(pad),
        i64::from(img.height() + pad),
        text,
        SCALE,
        colour::TEXT,
    );
    out
}

/// [`render_retrieval_grid`], then encodes the picture as PNG and writes it atomically to
/// `path` (the parent directory must exist).
pub fn save_retrieval_grid(path: &Path, rows: &[GridRow], thumb: u32) -> Result<()> {
    save_retrieval_grid_captioned(path, rows, thumb, UNJUDGED_CAPTION)
}

/// [`render_retrieval_grid_captioned`], written atomically to `path` as PNG.
pub fn save_retrieval_grid_captioned(
    path: &Path,
    rows: &[GridRow],
    thumb: u32,
    unjudged_caption: &str,
) -> Result<()> {
    let img = render_retrieval_grid_captioned(rows, thumb, unjudged_caption)?;
    save_png(path, &img)
}

/// Draws one cell: letterbox, fitted picture, frame.
fn draw_cell(
    img: &mut RgbImage,
    layout: &GridLayout,
    (x, y): (u64, u64),
    source: &GridImage,
    border: Rgb<u8>,
) -> Result<()> {
    let (x, y) = (x as i64, y as i64);
    let t = i64::from(layout.thumb);
    let b = i64::from(layout.border);
    let inner = layout.thumb - 2 * layout.border;
    fill_rect(img, x, y, t, t, colour::LETTERBOX);
    let decoded;
    let picture = match source {
        GridImage::Rgb(p) => p,
        GridImage::Path(path) => {
            decoded = decode(path)?;
            &decoded
        }
    };
    if picture.width() > 0 && picture.height() > 0 {
        let fitted = fit(picture, inner);
        let ox = x + b + i64::from(inner - fitted.width()) / 2;
        let oy = y + b + i64::from(inner - fitted.height()) / 2;
        image::imageops::replace(img, &fitted, ox, oy);
    }
    frame(img, x, y, t, t, b, border);
    Ok(())
}

/// Reads and decodes a PNG/JPEG into RGB; errors name the file.
fn decode(path: &Path) -> Result<RgbImage> {
    let bytes = std::fs::read(path).map_err(|source| VizError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let dynamic = image::load_from_memory(&bytes).map_err(|e| VizError::Image {
        path: path.to_path_buf(),
        why: e.to_string(),
    })?;
    Ok(to_rgb_over_white(dynamic))
}

/// RGB with grey replicated; transparent pixels composited over white (a bare `to_rgb8`
/// would show whatever colour hides under alpha 0, often black).
fn to_rgb_over_white(img: DynamicImage) -> RgbImage {
    if !img.color().has_alpha() {
        return img.to_rgb8();
    }
    let rgba = img.to_rgba8();
    RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let p = rgba.get_pixel(x, y).0;
        let a = u32::from(p[3]);
        let over = |c: u8| ((u32::from(c) * a + 255 * (255 - a) + 127) / 255) as u8;
        Rgb([over(p[0]), over(p[1]), over(p[2])])
    })
}

/// Scales `img` to fit a `side` x `side` box, keeping its aspect ratio (at least 1 px each way).
fn fit(img: &RgbImage, side: u32) -> RgbImage {
    let (w, h) = (f64::from(img.width()), f64::from(img.height()));
    let scale = f64::from(side) / w.max(h);
    let nw = ((w * scale).round() as u32).clamp(1, side);
    let nh = ((h * scale).round() as u32).clamp(1, side);
    if (nw, nh) == img.dimensions() {
        return img.clone();
    }
    image::imageops::resize(img, nw, nh, FilterType::Triangle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn solid(w: u32, h: u32, c: [u8; 3]) -> GridImage {
        GridImage::Rgb(RgbImage::from_pixel(w, h, Rgb(c)))
    }

    #[test]
    fn layout_numbers_for_a_64_pixel_thumbnail() {
        let l = GridLayout::new(64).unwrap();
        assert_eq!((l.border, l.gap, l.query_gap, l.margin), (5, 4, 16, 4));
        // 2 rows x (1 + 3) cells: 4 + 64 + 16 + 3*64 + 2*4 + 4 = 288; 4 + 2*64 + 4 + 4 = 140.
        assert_eq!(l.picture_size(2, 3).unwrap(), (288, 140));
        assert_eq!(l.picture_size(1, 0).unwrap(), (72, 72));
        assert_eq!(l.result_origin(1, 2), (4 + 64 + 16 + 2 * 68, 4 + 68));
    }

    #[test]
    fn tall_picture_is_letterboxed_left_and_right() {
        let rows = [GridRow::new(solid(10, 40, [0, 0, 0]))];
        let img = render_retrieval_grid(&rows, 64).unwrap();
        let l = GridLayout::new(64).unwrap();
        let (x, y) = l.query_origin(0);
        let (x, y) = (x as u32, y as u32);
        let inner = 64 - 2 * l.border; // 54: the picture becomes 14 x 54 (10/40*54 = 13.5)
        let (cx, cy) = (x + 32, y + 32);
        assert_eq!(*img.get_pixel(cx, cy), Rgb([0, 0, 0]));
        assert_eq!(*img.get_pixel(x + l.border + 2, cy), colour::LETTERBOX);
        assert_eq!(
            *img.get_pixel(x + l.border + inner - 3, cy),
            colour::LETTERBOX
        );
        assert_eq!(*img.get_pixel(cx, y + l.border), Rgb([0, 0, 0]));
    }

    #[test]
    fn fit_keeps_aspect_ratio() {
        let wide = RgbImage::new(300, 100);
        assert_eq!(fit(&wide, 60).dimensions(), (60, 20));
        let needle = RgbImage::new(1, 1000);
        assert_eq!(fit(&needle, 60).dimensions(), (1, 60));
        let small = RgbImage::new(3, 2);
        assert_eq!(fit(&small, 60).dimensions(), (60, 40));
    }

    #[test]
    fn alpha_composites_over_white() {
        let mut rgba = image::RgbaImage::new(2, 1);
        rgba.put_pixel(0, 0, image::Rgba([0, 0, 0, 0]));
        rgba.put_pixel(1, 0, image::Rgba([10, 20, 30, 255]));
        let rgb = to_rgb_over_white(DynamicImage::ImageRgba8(rgba));
        assert_eq!(*rgb.get_pixel(0, 0), Rgb([255, 255, 255]));
        assert_eq!(*rgb.get_pixel(1, 0), Rgb([10, 20, 30]));
    }

    #[test]
    fn bad_arguments_are_errors() {
        assert!(matches!(
            render_retrieval_grid(&[], 64),
            Err(VizError::Empty(_))
        ));
        let rows = [GridRow::new(solid(4, 4, [1, 2, 3]))];
        assert!(matches!(
            render_retrieval_grid(&rows, MIN_THUMB - 1),
            Err(VizError::InvalidArgument(_))
        ));
        assert!(matches!(
            render_retrieval_grid(&rows, u32::MAX),
            Err(VizError::InvalidArgument(_))
        ));
        // An in-memory picture with no pixels leaves a framed empty cell.
        let rows = [GridRow::new(GridImage::Rgb(RgbImage::new(0, 0)))];
        let img = render_retrieval_grid(&rows, 32).unwrap();
        assert_eq!(*img.get_pixel(2 + 16, 2 + 16), colour::LETTERBOX);
    }
}
