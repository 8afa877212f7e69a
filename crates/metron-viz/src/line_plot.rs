//! Line plots of per-epoch curves (loss, Recall@1, ...), one panel per plot, side by side.

use std::path::Path;

use image::{Rgb, RgbImage};

use crate::draw::{disc, fill_rect, frame, line};
use crate::font::{ADVANCE, GLYPH_HEIGHT, draw_text, draw_text_up, text_width};
use crate::png::save_png;
use crate::ticks::{self, Ticks};
use crate::{Result, VizError, colour, size};

/// Blank border around everything in a panel.
const PAD: i64 = 8;
/// Length of a tick mark outside the frame.
const TICK: i64 = 4;
/// Space between a tick mark and its label.
const LABEL_GAP: i64 = 3;
/// Height of one legend line.
const LEGEND_LINE: i64 = 11;
/// Length of the coloured stroke in front of a legend name.
const SWATCH: i64 = 14;
/// Half-width of a curve (the brush is `2 * LINE_RADIUS + 1` pixels wide).
const LINE_RADIUS: i64 = 1;
/// Series with at most this many points get a marker on every point, so a short run's
/// individual epochs stay visible; longer ones are drawn as plain lines.
const MARK_ALL_UP_TO: usize = 25;
/// Radius of a marker on a point of a short series.
const MARKER_RADIUS: i64 = 2;
/// Radius of the marker on an isolated point (no finite neighbour to draw a line to).
const LONE_RADIUS: i64 = 3;
/// The smallest plot area (inside the frame) worth drawing.
const MIN_PLOT: i64 = 16;

/// One named curve: `(x, y)` points drawn in the given order. Non-finite points are skipped
/// and break the line there, so a missing epoch shows as a gap rather than a false segment.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Series {
    /// The name shown in the panel's legend.
    pub name: String,
    /// The `(x, y)` points, in drawing order.
    pub points: Vec<(f64, f64)>,
}

impl Series {
    /// The curve `name` through `points`, drawn in the order given.
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self {
            name: name.into(),
            points,
        }
    }

    /// One value per epoch, epochs numbered from 1 (as a training log counts them).
    pub fn per_epoch(name: impl Into<String>, values: &[f64]) -> Self {
        let points = values
            .iter()
            .enumerate()
            .map(|(i, &v)| ((i + 1) as f64, v))
            .collect();
        Self::new(name, points)
    }
}

/// One panel: a title, axis labels and any number of series sharing the axes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LinePlot {
    /// The heading at the top of the panel; none is drawn when empty.
    pub title: String,
    /// The label under the horizontal axis (e.g. `epoch`).
    pub x_label: String,
    /// The label along the vertical axis (e.g. `Recall@1`).
    pub y_label: String,
    /// The curves drawn on the shared axes, each in its own colour.
    pub series: Vec<Series>,
}

impl LinePlot {
    /// An empty panel with these title and axis labels; add curves with
    /// [`LinePlot::with_series`].
    pub fn new(
        title: impl Into<String>,
        x_label: impl Into<String>,
        y_label: impl Into<String>,
    ) -> Self {
        Self {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            series: Vec::new(),
        }
    }

    /// Adds a series (builder style).
    pub fn with_series(mut self, series: Series) -> Self {
        self.series.push(series);
        self
    }
}

/// Renders the plots side by side, each in a `panel_width` x `panel_height` panel, so the
/// picture is `plots.len() * panel_width` x `panel_height`.
///
/// Each panel has a title, a legend (one entry per series, in its colour), a frame with four to
/// six round ticks per axis (see [`crate::nice_ticks`]), grid lines and axis labels. Both axes
/// span exactly their first to last tick. NaN/infinite points are skipped; a series with no
/// finite point is only listed in the legend; a point with no finite neighbour is drawn as a
/// dot; all-equal values get a small range around them.
///
/// Errors: [`VizError::Empty`] for no plots, [`VizError::InvalidArgument`] for a panel too
/// small to hold its labels or a picture too large to allocate.
pub fn render_line_plots(
    plots: &[LinePlot],
    panel_width: u32,
    panel_height: u32,
) -> Result<RgbImage> {
    if plots.is_empty() {
        return Err(VizError::Empty("no line plots given"));
    }
    let width = size::checked_extent(u64::from(panel_width) * plots.len() as u64, "plot width")?;
    size::check_pixels(width, panel_height)?;
    let mut img = RgbImage::from_pixel(width, panel_height, colour::BACKGROUND);
    for (i, plot) in plots.iter().enumerate() {
        let panel = render_panel(plot, panel_width, panel_height)?;
        image::imageops::replace(&mut img, &panel, i as i64 * i64::from(panel_width), 0);
    }
    Ok(img)
}

/// [`render_line_plots`], then encodes the picture as PNG and writes it atomically to `path`
/// (the parent directory must exist).
pub fn save_line_plots(
    path: &Path,
    plots: &[LinePlot],
    panel_width: u32,
    panel_height: u32,
) -> Result<()> {
    let img = render_line_plots(plots, panel_width, panel_height)?;
    save_png(path, &img)
}

/// Where everything of one panel goes. The plot area is the inclusive pixel box
/// `x0..=x1` x `y0..=y1`: the data range's corners land exactly on its corners.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Layout {
    pub x0: i64,
    pub y0: i64,
    pub x1: i64,
    pub y1: i64,
    pub title_scale: u32,
    /// Legend entries per line: `(series index, x of the swatch)`, and the first line's top.
    pub legend: Vec<Vec<(usize, i64)>>,
    pub legend_top: i64,
    pub x_ticks: Ticks,
    pub y_ticks: Ticks,
}

impl Layout {
    pub(crate) fn new(plot: &LinePlot, width: u32, height: u32) -> Result<Self> {
        let (w, h) = (i64::from(width), i64::from(height));
        let (x_ticks, y_ticks) = axis_ticks(plot);
        let glyph_h = i64::from(GLYPH_HEIGHT);

        let title_scale = if text_width(&plot.title, 2) as i64 <= w - 2 * PAD {
            2
        } else {
            1
        };
        let mut top = PAD;
        if !plot.title.is_empty() {
            top += glyph_h * i64::from(title_scale) + 6;
        }
        let legend_top = top;
        let legend = legend_lines(plot, w - 2 * PAD);
        if !legend.is_empty() {
            top += legend.len() as i64 * LEGEND_LINE + 3;
        }
        // Half a label above the top tick, plus the frame.
        let y0 = top + glyph_h / 2 + 2;

        let mut bottom = h - 1 - PAD;
        if !plot.x_label.is_empty() {
            bottom -= glyph_h + 5;
        }
        let y1 = bottom - glyph_h - LABEL_GAP - TICK - 1;

        let widest_y = y_ticks
            .labels
            .iter()
            .map(|l| text_width(l, 1) as i64)
            .max()
            .unwrap_or(0);
        let mut left = PAD;
        if !plot.y_label.is_empty() {
            left += glyph_h + 6;
        }
        let x0 = left + widest_y + LABEL_GAP + TICK + 1;
        let last_x = x_ticks.labels.last().map_or(0, |l| text_width(l, 1) as i64);
        let x1 = w - 1 - PAD.max(last_x / 2 + 2) - 1;

        if x1 - x0 < MIN_PLOT || y1 - y0 < MIN_PLOT {
            return Err(VizError::InvalidArgument(format!(
                "a {width}x{height} panel is too small for the plot '{}': its labels leave a \
                 plot area of {}x{} pixels (at least {MIN_PLOT}x{MIN_PLOT} needed)",
                plot.title,
                (x1 - x0 + 1).max(0),
                (y1 - y0 + 1).max(0)
            )));
        }
        Ok(Self {
            x0,
            y0,
            x1,
            y1,
            title_scale,
            legend,
            legend_top,
            x_ticks,
            y_ticks,
        })
    }

    /// Pixel column of the data value `x`.
    pub(crate) fn px(&self, x: f64) -> i64 {
        self.x0 + (fraction(x, self.x_ticks.range()) * (self.x1 - self.x0) as f64).round() as i64
    }

    /// Pixel row of the data value `y` (rows grow downwards, values upwards).
    pub(crate) fn py(&self, y: f64) -> i64 {
        self.y1 - (fraction(y, self.y_ticks.range()) * (self.y1 - self.y0) as f64).round() as i64
    }
}

/// Where `v` lies in `[lo, hi]`, 0 to 1. Computed on halves so that ranges near f64's limits
/// (where `hi - lo` overflows) still place points correctly.
fn fraction(v: f64, (lo, hi): (f64, f64)) -> f64 {
    ((v / 2.0 - lo / 2.0) / (hi / 2.0 - lo / 2.0)).clamp(0.0, 1.0)
}

fn finite(&(x, y): &(f64, f64)) -> bool {
    x.is_finite() && y.is_finite()
}

/// Ticks of both axes, covering every finite point of every series ([0, 1] when none).
fn axis_ticks(plot: &LinePlot) -> (Ticks, Ticks) {
    let mut xr = (f64::INFINITY, f64::NEG_INFINITY);
    let mut yr = xr;
    for p in plot
        .series
        .iter()
        .flat_map(|s| &s.points)
        .filter(|p| finite(p))
    {
        xr = (xr.0.min(p.0), xr.1.max(p.0));
        yr = (yr.0.min(p.1), yr.1.max(p.1));
    }
    if xr.0 > xr.1 {
        xr = (0.0, 1.0);
        yr = (0.0, 1.0);
    }
    (ticks::compute(xr.0, xr.1), ticks::compute(yr.0, yr.1))
}

/// Lays the legend entries out in lines no wider than `avail`, each line centred.
fn legend_lines(plot: &LinePlot, avail: i64) -> Vec<Vec<(usize, i64)>> {
    let entry_w = |s: &Series| SWATCH + 4 + text_width(&s.name, 1) as i64;
    let spacing = 2 * i64::from(ADVANCE);
    let mut lines: Vec<Vec<(usize, i64)>> = Vec::new();
    let mut current: Vec<(usize, i64)> = Vec::new();
    let mut used = 0;
    for (i, s) in plot.series.iter().enumerate() {
        let ew = entry_w(s);
        if !current.is_empty() && used + spacing + ew > avail {
            lines.push(std::mem::take(&mut current));
            used = 0;
        }
        let x = if current.is_empty() {
            0
        } else {
            used + spacing
        };
        current.push((i, x));
        used = x + ew;
    }
    if !current.is_empty() {
        lines.push(current);
    }
    // Centre each line in the panel.
    for line in &mut lines {
        let (last, last_x) = line[line.len() - 1];
        let line_w = last_x + entry_w(&plot.series[last]);
        let shift = PAD + ((avail - line_w) / 2).max(0);
        for entry in line.iter_mut() {
            entry.1 += shift;
        }
    }
    lines
}

fn render_panel(plot: &LinePlot, width: u32, height: u32) -> Result<RgbImage> {
    let l = Layout::new(plot, width, height)?;
    let mut img = RgbImage::from_pixel(width, height, colour::BACKGROUND);
    let glyph_h = i64::from(GLYPH_HEIGHT);
    let (pw, ph) = (l.x1 - l.x0 + 1, l.y1 - l.y0 + 1);

    // Grid lines first, so everything else draws over them.
    for &v in &l.x_ticks.values {
        fill_rect(&mut img, l.px(v), l.y0, 1, ph, colour::GRID);
    }
    for &v in &l.y_ticks.values {
        fill_rect(&mut img, l.x0, l.py(v), pw, 1, colour::GRID);
    }
    // The frame sits just outside the plot area, so no data pixel is hidden under it.
    frame(
        &mut img,
        l.x0 - 1,
        l.y0 - 1,
        pw + 2,
        ph + 2,
        1,
        colour::AXIS,
    );

    for (&v, label) in l.x_ticks.values.iter().zip(&l.x_ticks.labels) {
        let x = l.px(v);
        fill_rect(&mut img, x, l.y1 + 2, 1, TICK, colour::AXIS);
        let tw = text_width(label, 1) as i64;
        let ty = l.y1 + 2 + TICK + LABEL_GAP;
        draw_text(&mut img, x - tw / 2, ty, label, 1, colour::TEXT);
    }
    for (&v, label) in l.y_ticks.values.iter().zip(&l.y_ticks.labels) {
        let y = l.py(v);
        fill_rect(&mut img, l.x0 - 1 - TICK, y, TICK, 1, colour::AXIS);
        let tw = text_width(label, 1) as i64;
        let tx = l.x0 - 1 - TICK - LABEL_GAP - tw;
        draw_text(&mut img, tx, y - glyph_h / 2, label, 1, colour::TEXT);
    }
    if !plot.x_label.is_empty() {
        let tw = text_width(&plot.x_label, 1) as i64;
        let y = i64::from(height) - 1 - PAD - glyph_h + 1;
        let x = (l.x0 + l.x1) / 2 - tw / 2;
        draw_text(&mut img, x, y, &plot.x_label, 1, colour::TEXT);
    }
    if !plot.y_label.is_empty() {
        let tw = text_width(&plot.y_label, 1) as i64;
        let y = (l.y0 + l.y1) / 2 + tw / 2;
        draw_text_up(&mut img, PAD, y, &plot.y_label, 1, colour::TEXT);
    }

    for (i, s) in plot.series.iter().enumerate() {
        draw_series(&mut img, &l, s, colour::series(i));
    }

    if !plot.title.is_empty() {
        let s = l.title_scale;
        let tw = text_width(&plot.title, s) as i64;
        let x = ((i64::from(width) - tw) / 2).max(PAD);
        draw_text(&mut img, x, PAD, &plot.title, s, colour::TEXT);
    }
    for (row, entries) in l.legend.iter().enumerate() {
        let top = l.legend_top + row as i64 * LEGEND_LINE;
        for &(i, x) in entries {
            let c = colour::series(i);
            let mid = top + glyph_h / 2;
            line(
                &mut img,
                (x + 1, mid),
                (x + SWATCH - 2, mid),
                LINE_RADIUS,
                c,
            );
            draw_text(
                &mut img,
                x + SWATCH + 4,
                top,
                &plot.series[i].name,
                1,
                colour::TEXT,
            );
        }
    }
    Ok(img)
}

fn draw_series(img: &mut RgbImage, l: &Layout, s: &Series, c: Rgb<u8>) {
    let pts = &s.points;
    let mark_all = pts.len() <= MARK_ALL_UP_TO;
    for (k, p) in pts.iter().enumerate() {
        if !finite(p) {
            continue;
        }
        let here = (l.px(p.0), l.py(p.1));
        let next = pts.get(k + 1).filter(|q| finite(q));
        if let Some(q) = next {
            line(img, here, (l.px(q.0), l.py(q.1)), LINE_RADIUS, c);
        }
        let prev = k.checked_sub(1).map(|j| &pts[j]).filter(|q| finite(q));
        if prev.is_none() && next.is_none() {
            disc(img, here.0, here.1, LONE_RADIUS, c);
        } else if mark_all {
            disc(img, here.0, here.1, MARKER_RADIUS, c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diagonal() -> LinePlot {
        LinePlot::new("diag", "x", "y").with_series(Series::new("a", vec![(0.0, 0.0), (1.0, 1.0)]))
    }

    #[test]
    fn data_corners_land_on_plot_area_corners() {
        let plot = diagonal();
        let l = Layout::new(&plot, 300, 200).unwrap();
        assert_eq!((l.px(0.0), l.py(0.0)), (l.x0, l.y1));
        assert_eq!((l.px(1.0), l.py(1.0)), (l.x1, l.y0));
        let img = render_line_plots(&[plot], 300, 200).unwrap();
        let c = colour::series(0);
        assert_eq!(*img.get_pixel(l.x0 as u32, l.y1 as u32), c);
        assert_eq!(*img.get_pixel(l.x1 as u32, l.y0 as u32), c);
        // The segment passes through the middle of the plot area (Bresenham: within 1 px of
        // the ideal diagonal, and the brush is 3 px wide).
        let t = 0.5;
        let mx = l.x0 as f64 + t * (l.x1 - l.x0) as f64;
        let my = l.y1 as f64 - t * (l.y1 - l.y0) as f64;
        assert_eq!(*img.get_pixel(mx.round() as u32, my.round() as u32), c);
        // Far from the line, inside the plot area: not the series colour.
        assert_ne!(*img.get_pixel((l.x0 + 3) as u32, (l.y0 + 3) as u32), c);
    }

    #[test]
    fn layout_is_inside_the_panel_and_leaves_room_for_labels() {
        let plot = diagonal();
        let l = Layout::new(&plot, 640, 400).unwrap();
        assert!(l.x0 > PAD && l.y0 > PAD && l.x1 < 640 - PAD && l.y1 < 400 - PAD);
        assert_eq!(l.title_scale, 2);
        assert_eq!(l.legend.len(), 1);
        assert_eq!(l.x_ticks.values, vec![0.0, 0.2, 0.4, 0.6, 0.8, 1.0]);
    }

    #[test]
    fn long_legends_wrap() {
        let mut plot = LinePlot::new("t", "", "");
        for i in 0..12 {
            plot.series
                .push(Series::new(format!("series number {i}"), vec![(0.0, 1.0)]));
        }
        let l = Layout::new(&plot, 400, 400).unwrap();
        assert!(l.legend.len() > 1);
        let listed: usize = l.legend.iter().map(Vec::len).sum();
        assert_eq!(listed, 12);
        for line in &l.legend {
            assert!(line.iter().all(|&(_, x)| (PAD..400 - PAD).contains(&x)));
        }
    }

    #[test]
    fn too_small_panel_is_an_error_not_a_panic() {
        let err = render_line_plots(&[diagonal()], 40, 30).unwrap_err();
        assert!(matches!(err, VizError::InvalidArgument(_)), "{err}");
        assert!(err.to_string().contains("40x30"), "{err}");
        for (w, h) in [(0, 0), (1, 1), (0, 500), (500, 0)] {
            assert!(render_line_plots(&[diagonal()], w, h).is_err());
        }
    }

    #[test]
    fn no_plots_is_empty() {
        assert!(matches!(
            render_line_plots(&[], 300, 200),
            Err(VizError::Empty(_))
        ));
    }

    #[test]
    fn isolated_point_gets_a_dot_and_nan_breaks_the_line() {
        let plot = LinePlot::new("", "", "").with_series(Series::new(
            "s",
            vec![
                (0.0, 0.0),
                (f64::NAN, 5.0),
                (0.5, 0.5),
                (1.0, f64::INFINITY),
                (1.0, 1.0),
            ],
        ));
        let l = Layout::new(&plot, 300, 200).unwrap();
        let img = render_panel(&plot, 300, 200).unwrap();
        let c = colour::series(0);
        // Three isolated points, each a dot of radius 3 at its place.
        for (x, y) in [(0.0, 0.0), (0.5, 0.5), (1.0, 1.0)] {
            let (px, py) = (l.px(x), l.py(y));
            assert_eq!(*img.get_pixel(px as u32, py as u32), c);
            assert_eq!(*img.get_pixel((px - 3).max(0) as u32, py as u32), c);
        }
        // No segment between them: a quarter of the way along the diagonal is empty.
        let (qx, qy) = (l.px(0.25), l.py(0.25));
        assert_ne!(*img.get_pixel(qx as u32, qy as u32), c);
    }
}
